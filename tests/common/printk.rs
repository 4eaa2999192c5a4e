//! Builders of printk ring buffers as a 64-bit little-endian kernel lays them out, written from
//! the kernel's documented layout (kernel/printk/printk_ringbuffer.h and .c: `data_alloc`,
//! `desc_reserve`, `desc_push_tail`, `data_push_tail`; printk.c of 3.5 – 5.9: `log_store`,
//! `log_make_free_space`), independently of the reader in src/kernel/printk.rs. Each builder
//! emulates the writer: new records push the oldest ones out, text blocks wrap, and it keeps
//! its own list of what a reader should find, which the tests compare against.

use super::fake_kernel::FakeKernel;

pub const ID_MASK: u64 = u64::MAX >> 2;
pub const FAILED_LPOS: u64 = 0x1;
pub const EMPTY_LINE_LPOS: u64 = 0x3;

/// The descriptor states (top two bits of `state_var`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Reserved = 0,
    Committed = 1,
    Finalized = 2,
    Reusable = 3,
}

#[derive(Clone, Debug, Default)]
pub struct Rec {
    pub text: Vec<u8>,
    pub ts: u64,
    pub level: u8,
    pub facility: u8,
    pub flags: u8,
    pub caller: u32,
    pub subsystem: Vec<u8>,
    pub device: Vec<u8>,
}

pub fn rec(text: &[u8], ts: u64) -> Rec {
    Rec {
        text: text.to_vec(),
        ts,
        level: 6,
        flags: 2,
        caller: 1,
        ..Rec::default()
    }
}

// struct sizes and offsets of a 64-bit 6.1 kernel (pahole of vmlinux-6.1, by hand)
pub const RB_SIZE: u64 = 88; // desc_ring 0 (48 bytes), text_data_ring 48 (32), fail 80
pub const DESC_SIZE: u64 = 24; // state_var 0, text_blk_lpos {begin 8, next 16}
pub const INFO_SIZE: u64 = 88; // seq 0, ts_nsec 8, text_len 16, facility 18, flags/level 19, caller_id 20, dev_info 24 {subsystem 0 [16], device 16 [48]}

/// A lockless ring, as the kernel's writer would leave it.
pub struct Prb {
    pub count_bits: u32,
    pub size_bits: u32,
    pub descs: Vec<u8>,
    pub infos: Vec<u8>,
    pub data: Vec<u8>,
    pub head_id: u64,
    pub tail_id: u64,
    pub head_lpos: u64,
    pub tail_lpos: u64,
    /// Every record pushed: (id, seq, begin, next, rec).
    pub pushed: Vec<(u64, u64, u64, u64, Rec)>,
    /// v6.19's "don't needlessly wrap data blocks around": a block that fits exactly up to the
    /// end of the array stays there.
    pub no_needless_wrap: bool,
    next_seq: u64,
}

fn put(b: &mut [u8], off: u64, bytes: &[u8]) {
    let o = off as usize;
    b[o..o + bytes.len()].copy_from_slice(bytes);
}
fn put64(b: &mut [u8], off: u64, v: u64) {
    put(b, off, &v.to_le_bytes());
}
fn get64(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

impl Prb {
    /// An empty ring, bootstrapped as `_DEFINE_PRINTKRB` does: head and tail at `DESC0_ID`
    /// (the last slot, reusable, data-less), `infos[0].seq = -count`, lpos at `BLK0_LPOS`.
    pub fn new(count_bits: u32, size_bits: u32) -> Prb {
        let count = 1u64 << count_bits;
        let size = 1u64 << size_bits;
        let mut p = Prb {
            count_bits,
            size_bits,
            descs: vec![0; (count * DESC_SIZE) as usize],
            infos: vec![0; (count * INFO_SIZE) as usize],
            data: vec![0; size as usize],
            head_id: 0,
            tail_id: 0,
            head_lpos: size.wrapping_neg(),
            tail_lpos: size.wrapping_neg(),
            pushed: Vec::new(),
            no_needless_wrap: false,
            next_seq: 0,
        };
        let desc0 = (count + 1).wrapping_neg() & ID_MASK;
        p.head_id = desc0;
        p.tail_id = desc0;
        p.set_desc(count - 1, desc0, State::Reusable, FAILED_LPOS, FAILED_LPOS);
        put64(&mut p.infos, 0, count.wrapping_neg());
        p
    }

    pub fn count(&self) -> u64 {
        1 << self.count_bits
    }
    pub fn size(&self) -> u64 {
        1 << self.size_bits
    }

    pub fn set_desc(&mut self, idx: u64, id: u64, state: State, begin: u64, next: u64) {
        let o = idx * DESC_SIZE;
        put64(&mut self.descs, o, id | (state as u64) << 62);
        put64(&mut self.descs, o + 8, begin);
        put64(&mut self.descs, o + 16, next);
    }

    /// Changes the state of an id's descriptor, keeping its id and lpos.
    pub fn set_state(&mut self, id: u64, state: State) {
        let o = (id & (self.count() - 1)) * DESC_SIZE;
        let sv = get64(&self.descs, o) & ID_MASK;
        put64(&mut self.descs, o, sv | (state as u64) << 62);
    }

    /// Overwrites a raw descriptor word (0 state_var, 1 begin, 2 next).
    pub fn poke_desc(&mut self, id: u64, word: u64, v: u64) {
        let o = (id & (self.count() - 1)) * DESC_SIZE + 8 * word;
        put64(&mut self.descs, o, v);
    }

    /// Overwrites the `text_len` of an id's info.
    pub fn poke_text_len(&mut self, id: u64, v: u16) {
        let o = (id & (self.count() - 1)) * INFO_SIZE + 16;
        put(&mut self.infos, o, &v.to_le_bytes());
    }

    fn index(&self, lpos: u64) -> u64 {
        lpos & (self.size() - 1)
    }
    fn wraps(&self, lpos: u64) -> u64 {
        lpos >> self.size_bits
    }

    /// Appends a finalized record, as `prb_reserve` + `prb_final_commit` would.
    pub fn push(&mut self, r: Rec) -> u64 {
        let count = self.count();
        let size = self.size();
        let id = self.head_id.wrapping_add(1) & ID_MASK;
        // desc_reserve: the slot's previous user must be the tail; push it out
        if id.wrapping_sub(count) & ID_MASK == self.tail_id {
            self.push_desc_tail();
        }
        // data_alloc
        let (begin, next) = if r.text.is_empty() {
            (EMPTY_LINE_LPOS, EMPTY_LINE_LPOS)
        } else {
            let blk = (r.text.len() as u64 + 8).div_ceil(8) * 8;
            let begin = self.head_lpos;
            let mut next = begin.wrapping_add(blk);
            let wraps = if self.no_needless_wrap {
                self.wraps(begin) != self.wraps(next.wrapping_sub(1))
            } else {
                self.wraps(begin) != self.wraps(next)
            };
            if wraps {
                // the next wrap's start, plus the block
                next = (next & !(size - 1)).wrapping_add(blk);
            }
            // data_push_tail: free the oldest blocks until the new one fits
            let mut guard = 0;
            while next.wrapping_sub(self.tail_lpos) > size {
                self.push_desc_tail();
                guard += 1;
                assert!(guard <= count + 1, "record larger than the ring");
            }
            let bi = self.index(begin);
            if wraps {
                put64(&mut self.data, bi, id);
                put64(&mut self.data, 0, id);
                put(&mut self.data, 8, &r.text);
            } else {
                put64(&mut self.data, bi, id);
                put(&mut self.data, bi + 8, &r.text);
            }
            self.head_lpos = next;
            (begin, next)
        };
        let idx = id & (count - 1);
        self.set_desc(idx, id, State::Finalized, begin, next);
        let seq = self.next_seq;
        self.next_seq += 1;
        let io = idx * INFO_SIZE;
        let mut info = vec![0u8; INFO_SIZE as usize];
        put64(&mut info, 0, seq);
        put64(&mut info, 8, r.ts);
        put(&mut info, 16, &(r.text.len() as u16).to_le_bytes());
        info[18] = r.facility;
        info[19] = (r.flags & 0x1f) | (r.level << 5);
        put(&mut info, 20, &r.caller.to_le_bytes());
        put(&mut info, 24, &r.subsystem);
        put(&mut info, 40, &r.device);
        put(&mut self.infos, io, &info);
        self.head_id = id;
        self.pushed.push((id, seq, begin, next, r));
        id
    }

    /// `desc_push_tail`: the tail descriptor becomes reusable and the tail moves on; the data
    /// tail moves past its block.
    fn push_desc_tail(&mut self) {
        let tail = self.tail_id;
        self.set_state(tail, State::Reusable);
        if let Some(&(_, _, begin, next, _)) = self.pushed.iter().find(|p| p.0 == tail)
            && begin & 1 == 0
        {
            self.tail_lpos = next;
        }
        self.tail_id = tail.wrapping_add(1) & ID_MASK;
        if self.tail_id == self.head_id.wrapping_add(1) & ID_MASK {
            // everything pushed out: the tail stays on the head
            self.tail_id = self.head_id;
        }
    }

    /// What a reader should show: the records from the tail to the head whose descriptor is
    /// still theirs (most recent `count`), in order.
    pub fn live(&self) -> Vec<(u64, Rec)> {
        let n = self.head_id.wrapping_sub(self.tail_id) & ID_MASK;
        let ids: Vec<u64> = (0..=n)
            .map(|i| self.tail_id.wrapping_add(i) & ID_MASK)
            .collect();
        self.pushed
            .iter()
            .filter(|p| ids.contains(&p.0))
            .filter(|p| {
                let sv = get64(&self.descs, (p.0 & (self.count() - 1)) * DESC_SIZE);
                sv == p.0 | (State::Finalized as u64) << 62
            })
            .map(|p| (p.1, p.4.clone()))
            .collect()
    }

    /// Maps the ring into a fake kernel: `prb` (a pointer) at `base`, the ring struct, the
    /// arrays, and the VMCOREINFO lines `log_buf_vmcoreinfo_setup` writes.
    pub fn install(&self, k: &mut FakeKernel, base: u64) -> Addrs {
        let a = Addrs {
            prb: base,
            rb: base + 0x100,
            descs: base + 0x1000,
            infos: base + 0x10_0000,
            data: base + 0x100_0000,
        };
        k.map(a.prb, a.rb.to_le_bytes().to_vec());
        let mut rb = vec![0u8; RB_SIZE as usize];
        put(&mut rb, 0, &self.count_bits.to_le_bytes());
        put64(&mut rb, 8, a.descs);
        put64(&mut rb, 16, a.infos);
        put64(&mut rb, 24, self.head_id);
        put64(&mut rb, 32, self.tail_id);
        put(&mut rb, 48, &self.size_bits.to_le_bytes());
        put64(&mut rb, 56, a.data);
        put64(&mut rb, 64, self.head_lpos);
        put64(&mut rb, 72, self.tail_lpos);
        k.map(a.rb, rb);
        k.map(a.descs, self.descs.clone());
        k.map(a.infos, self.infos.clone());
        k.map(a.data, self.data.clone());
        for (key, v) in vmcoreinfo_6_1() {
            k.set_vmcoreinfo(key, v);
        }
        k.set_vmcoreinfo("SYMBOL(prb)", &format!("{:x}", a.prb));
        a
    }
}

/// Where [`Prb::install`] put things.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub prb: u64,
    pub rb: u64,
    pub descs: u64,
    pub infos: u64,
    pub data: u64,
}

/// The printk VMCOREINFO lines of a 64-bit 6.1 kernel (without `SYMBOL(prb)`).
pub fn vmcoreinfo_6_1() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SIZE(printk_ringbuffer)", "88"),
        ("OFFSET(printk_ringbuffer.desc_ring)", "0"),
        ("OFFSET(printk_ringbuffer.text_data_ring)", "48"),
        ("OFFSET(printk_ringbuffer.fail)", "80"),
        ("SIZE(prb_desc_ring)", "48"),
        ("OFFSET(prb_desc_ring.count_bits)", "0"),
        ("OFFSET(prb_desc_ring.descs)", "8"),
        ("OFFSET(prb_desc_ring.infos)", "16"),
        ("OFFSET(prb_desc_ring.head_id)", "24"),
        ("OFFSET(prb_desc_ring.tail_id)", "32"),
        ("SIZE(prb_desc)", "24"),
        ("OFFSET(prb_desc.state_var)", "0"),
        ("OFFSET(prb_desc.text_blk_lpos)", "8"),
        ("SIZE(prb_data_blk_lpos)", "16"),
        ("OFFSET(prb_data_blk_lpos.begin)", "0"),
        ("OFFSET(prb_data_blk_lpos.next)", "8"),
        ("SIZE(printk_info)", "88"),
        ("OFFSET(printk_info.seq)", "0"),
        ("OFFSET(printk_info.ts_nsec)", "8"),
        ("OFFSET(printk_info.text_len)", "16"),
        ("OFFSET(printk_info.caller_id)", "20"),
        ("OFFSET(printk_info.dev_info)", "24"),
        ("SIZE(dev_printk_info)", "64"),
        ("OFFSET(dev_printk_info.subsystem)", "0"),
        ("LENGTH(printk_info_subsystem)", "16"),
        ("OFFSET(dev_printk_info.device)", "16"),
        ("LENGTH(printk_info_device)", "48"),
        ("SIZE(prb_data_ring)", "32"),
        ("OFFSET(prb_data_ring.size_bits)", "0"),
        ("OFFSET(prb_data_ring.data)", "8"),
        ("OFFSET(prb_data_ring.head_lpos)", "16"),
        ("OFFSET(prb_data_ring.tail_lpos)", "24"),
        ("SIZE(atomic_long_t)", "8"),
        ("OFFSET(atomic_long_t.counter)", "0"),
    ]
}

// ---- legacy -----------------------------------------------------------------------------------

/// A legacy `log_buf` of `struct printk_log` records (16 bytes: ts_nsec 0, len 8, text_len 10,
/// dict_len 12, facility 14, flags/level 15; 20 with caller_id 16), records aligned to 4 (the
/// x86 `LOG_ALIGN`).
pub struct Legacy {
    pub buf: Vec<u8>,
    pub hdr: u64,
    pub first_idx: u64,
    pub next_idx: u64,
    pub first_seq: u64,
    /// (seq, idx, rec) of the records in the buffer, oldest first.
    pub live: Vec<(u64, u64, Rec)>,
    next_seq: u64,
}

impl Legacy {
    pub fn new(len: usize, with_caller: bool) -> Legacy {
        Legacy {
            buf: vec![0; len],
            hdr: if with_caller { 20 } else { 16 },
            first_idx: 0,
            next_idx: 0,
            first_seq: 0,
            live: Vec::new(),
            next_seq: 0,
        }
    }

    fn len_at(&self, idx: u64) -> u64 {
        let o = idx as usize + 8;
        u16::from_le_bytes([self.buf[o], self.buf[o + 1]]) as u64
    }

    /// Drops the oldest record (`log_make_free_space`).
    fn drop_first(&mut self) {
        let mut len = self.len_at(self.first_idx);
        if len == 0 {
            self.first_idx = 0;
            len = self.len_at(0);
        }
        self.first_idx += len;
        self.first_seq += 1;
        self.live.remove(0);
    }

    /// `log_store`, with `dict` the `KEY=value\0…` dictionary.
    pub fn push(&mut self, r: Rec, dict: &[u8]) {
        let blen = self.buf.len() as u64;
        let size = (self.hdr + r.text.len() as u64 + dict.len() as u64).div_ceil(4) * 4;
        // make room: free space is what lies between next and first
        loop {
            let free = if self.live.is_empty() {
                blen
            } else if self.next_idx > self.first_idx {
                (blen - self.next_idx).max(self.first_idx)
            } else {
                self.first_idx - self.next_idx
            };
            if self.live.is_empty() || free >= size + self.hdr {
                break;
            }
            self.drop_first();
        }
        if self.next_idx + size + self.hdr > blen {
            // the end-of-buffer marker: a zeroed header
            let o = self.next_idx as usize;
            self.buf[o..o + self.hdr as usize].fill(0);
            self.next_idx = 0;
            while !self.live.is_empty() && self.first_idx < size + self.hdr {
                self.drop_first();
            }
        }
        let o = self.next_idx;
        let mut h = vec![0u8; self.hdr as usize];
        put64(&mut h, 0, r.ts);
        put(&mut h, 8, &(size as u16).to_le_bytes());
        put(&mut h, 10, &(r.text.len() as u16).to_le_bytes());
        put(&mut h, 12, &(dict.len() as u16).to_le_bytes());
        h[14] = r.facility;
        h[15] = (r.flags & 0x1f) | (r.level << 5);
        if self.hdr == 20 {
            put(&mut h, 16, &r.caller.to_le_bytes());
        }
        put(&mut self.buf, o, &h);
        put(&mut self.buf, o + self.hdr, &r.text);
        put(&mut self.buf, o + self.hdr + r.text.len() as u64, dict);
        if self.live.is_empty() {
            self.first_idx = o;
            self.first_seq = self.next_seq;
        }
        self.live.push((self.next_seq, o, r));
        self.next_seq += 1;
        self.next_idx = o + size;
    }

    /// Maps the buffer and its variables, with the VMCOREINFO lines of a 4.x kernel;
    /// `log_first_seq` is a plain symbol (not in VMCOREINFO).
    pub fn install(&self, k: &mut FakeKernel, base: u64) {
        let buf = base + 0x10000;
        k.map(base, buf.to_le_bytes().to_vec()); // log_buf
        k.map(base + 8, (self.buf.len() as u32).to_le_bytes().to_vec());
        k.map(base + 16, (self.first_idx as u32).to_le_bytes().to_vec());
        k.map(base + 24, (self.next_idx as u32).to_le_bytes().to_vec());
        k.map(base + 32, self.first_seq.to_le_bytes().to_vec());
        k.map(buf, self.buf.clone());
        k.set_vmcoreinfo("SYMBOL(log_buf)", &format!("{base:x}"));
        k.set_vmcoreinfo("SYMBOL(log_buf_len)", &format!("{:x}", base + 8));
        k.set_vmcoreinfo("SYMBOL(log_first_idx)", &format!("{:x}", base + 16));
        k.set_vmcoreinfo("SYMBOL(log_next_idx)", &format!("{:x}", base + 24));
        k.symbols.insert("log_first_seq".into(), base + 32);
        k.set_vmcoreinfo("SIZE(printk_log)", &self.hdr.to_string());
        k.set_vmcoreinfo("OFFSET(printk_log.ts_nsec)", "0");
        k.set_vmcoreinfo("OFFSET(printk_log.len)", "8");
        k.set_vmcoreinfo("OFFSET(printk_log.text_len)", "10");
        k.set_vmcoreinfo("OFFSET(printk_log.dict_len)", "12");
    }
}
