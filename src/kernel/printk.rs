//! The kernel log (the printk ring buffer), read from a dump.
//!
//! Two formats, chosen by what the dump has:
//!
//! **The lockless ring (5.10+)**, kernel/printk/printk_ringbuffer.{h,c}. `prb` is a pointer to a
//! `struct printk_ringbuffer {desc_ring, text_data_ring, fail}`.
//! - `struct prb_desc_ring {count_bits, descs, infos, head_id, tail_id, …}`: `1 << count_bits`
//!   descriptors `struct prb_desc {state_var, text_blk_lpos {begin, next}}` and as many
//!   `struct printk_info {seq, ts_nsec, text_len, facility, flags:5, level:3, caller_id,
//!   dev_info {subsystem[16], device[48]}}`, both indexed by `id & (count - 1)`.
//! - `state_var` holds the descriptor's id in its low `BITS_PER_LONG - 2` bits and its state in
//!   the top two: 0 reserved (a writer is filling it), 1 committed (complete, but the writer may
//!   still append with `prb_reserve_in_last`), 2 finalized, 3 reusable (its text may already be
//!   overwritten). An id part that differs from the id looked for is the pseudo-state "miss":
//!   the slot was recycled.
//! - The records are the ids from `tail_id` to `head_id`, inclusive. The kernel's own readers
//!   (`prb_read_valid`, hence `/dev/kmsg` and `dmesg`) return only finalized records; the
//!   newest record may still be committed (open for continuation) when the machine died, and is
//!   shown too, as crash, drgn and vmcore-dmesg show it. A committed record that is not the
//!   newest, a reserved one, a reusable one and a miss are not shown, only counted.
//! - `struct prb_data_ring {size_bits, data, head_lpos, tail_lpos}`: the text lives in data
//!   blocks `{unsigned long id; char text[]}` at logical positions (lpos) `begin`..`next`, whose
//!   index in `data[1 << size_bits]` is `lpos & (size - 1)` and whose wrap count is
//!   `lpos >> size_bits`. A block is wrapped when `begin` and `next - 1` are in different wraps
//!   (`is_blk_wrapped`, a rule also right for the kernels before v6.19's "don't needlessly wrap
//!   data blocks around", whose blocks never end exactly at the end of the array): the
//!   writer then stored only the id at `begin` and the whole block again at `data[0]`, the text
//!   being `index(next) - sizeof(long)` bytes there (`data_alloc`, `get_data`). Both lpos with
//!   bit 0 set mean no data block: `0x3` an empty line, `0x1` (`FAILED_LPOS`) data lost.
//!   The text is `min(text_len, block size)` bytes, without the newline printk stripped.
//!
//! **The legacy ring (3.5 – 5.9)**, kernel/printk/printk.c of those versions. `log_buf` points
//! to `log_buf_len` bytes of `struct printk_log {ts_nsec, len, text_len, dict_len, facility,
//! flags:5, level:3[, caller_id]}` records (named `struct log` before 3.11), each followed by its
//! text and its dictionary (`KEY=value` strings separated by NUL: `SUBSYSTEM=`, `DEVICE=`), the
//! whole padded to `len`. The records run from `log_first_idx` to `log_next_idx`; a header with
//! `len == 0` marks the end of the buffer's used part: the next record is at index 0. Sequence
//! numbers start at `log_first_seq` (not in VMCOREINFO: from the symbol table when it has it).
//!
//! **Layouts** come from the dump's VMCOREINFO (`SYMBOL(prb)`, `SIZE(printk_ringbuffer)`,
//! `OFFSET(prb_desc_ring.count_bits)`, … as `log_buf_vmcoreinfo_setup` in printk.c writes them)
//! when it has them, so the log is readable from the dump alone (as makedumpfile
//! `--dump-dmesg` does); an entry it lacks comes from the debug info ([`KernelAccess::offset_of`],
//! [`KernelAccess::type_size`]). VMCOREINFO has no offset for `facility` and the `flags`/`level`
//! byte: they are the two bytes after `text_len` (lockless) or `dict_len` (legacy), the level in
//! the top three bits of the byte on little-endian machines and the bottom three on big-endian
//! ones (GCC allocates bit-fields from the low bit on little-endian targets, from the high bit on
//! big-endian ones).
//!
//! **Hostile data.** Everything read is bounded: `count_bits` ≤ 26 and `size_bits` ≤ 31 (the
//! largest ring `log_buf_len=` can make), at most [`MAX_RECORDS`] records, a block no larger than
//! the ring, a `text_len` no longer than its block, a legacy record inside the buffer and at most
//! one wrap. What does not hold is recorded in [`KernelLog::issues`] and the reader goes on with
//! the next record; a page of the ring missing from the dump (a filtered dump) is recorded in
//! [`KernelLog::missing`] with its address, and the records on it are counted as unreadable.
//! The ring parser itself ([`read_lockless`], [`read_legacy`]) only sees [`LogMemory`] and a
//! resolved layout, so it runs on synthetic bytes in the tests and under the fuzzer.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::access::{AResult, AccessError, KernelAccess, KernelAccessExt};
use crate::addr::Endian;

/// The most records one read returns (2 Mi: a 64 MiB ring of 32-byte records).
pub const MAX_RECORDS: u64 = 1 << 21;
/// The largest `count_bits` a kernel makes (`log_buf_len` ≤ 2 GiB, `PRB_AVGBITS` = 5).
pub const MAX_COUNT_BITS: u32 = 26;
/// The largest `size_bits` (`LOG_BUF_LEN_MAX` = 2 GiB).
pub const MAX_SIZE_BITS: u32 = 31;
/// Consecutive unreadable descriptors after which the descriptor array is taken as absent from
/// the dump (64 Ki: some 380 pages of descriptors, far beyond a filtered dump's holes).
const MAX_UNREADABLE_RUN: u64 = 1 << 16;
/// The largest structure size believed from a layout (a `printk_info` is 88 bytes).
const MAX_STRUCT: u64 = 4096;
/// The granule the ring is read in: one page of 4 KiB, so a missing page costs only itself.
const CHUNK: u64 = 4096;
/// Lpos of a data-less record whose text is an empty line (`NO_LPOS`, `EMPTY_LINE_LPOS`).
const EMPTY_LINE_LPOS: u64 = 0x3;
/// Lpos of a record whose data could not be stored or was lost (`FAILED_LPOS`).
const FAILED_LPOS: u64 = 0x1;

/// `LOG_NEWLINE`: the text ended with a newline.
pub const LOG_NEWLINE: u8 = 2;
/// `LOG_CONT`: a continuation fragment.
pub const LOG_CONT: u8 = 8;

/// Memory as the log reader sees it: bytes at a kernel virtual address. Every
/// [`KernelAccess`] is one; the tests and the fuzzer use [`RegionMemory`].
pub trait LogMemory {
    fn log_bytes(&self, addr: u64, len: usize) -> AResult<Vec<u8>>;
}

impl<K: KernelAccess> LogMemory for K {
    fn log_bytes(&self, addr: u64, len: usize) -> AResult<Vec<u8>> {
        self.read(addr, len)
    }
}

/// Memory made of a few regions (start address → bytes), for synthetic rings.
#[derive(Default, Clone, Debug)]
pub struct RegionMemory {
    pub regions: Vec<(u64, Vec<u8>)>,
}

impl LogMemory for RegionMemory {
    fn log_bytes(&self, addr: u64, len: usize) -> AResult<Vec<u8>> {
        for (start, bytes) in &self.regions {
            let Some(off) = addr.checked_sub(*start) else {
                continue;
            };
            let Ok(off) = usize::try_from(off) else {
                continue;
            };
            if let Some(end) = off.checked_add(len)
                && end <= bytes.len()
            {
                return Ok(bytes[off..end].to_vec());
            }
        }
        Err(AccessError::new(
            "not-dumped",
            format!("{len} bytes at {addr:#x} not in memory"),
        ))
    }
}

// ---- results -------------------------------------------------------------------------------

/// Which ring the log was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// The lockless `printk_ringbuffer` (5.10+).
    Lockless,
    /// The `log_buf` of `struct printk_log` records (3.5 – 5.9).
    Legacy,
}

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// The sequence number (`None`: a legacy ring whose `log_first_seq` is unknown).
    pub seq: Option<u64>,
    /// `ts_nsec`: `local_clock()` at store time, nanoseconds since boot.
    pub ts_nsec: u64,
    /// 0 (emerg) – 7 (debug).
    pub level: u8,
    /// 0 kernel, 1 user (`/dev/kmsg` writes), …
    pub facility: u8,
    /// `LOG_NEWLINE`, `LOG_CONT`, … (5 bits).
    pub flags: u8,
    /// Bit 31 clear: the task's pid; set: `0x80000000 + cpu` (interrupt context). `None`
    /// where the kernel does not store it (legacy rings without `CONFIG_PRINTK_CALLER`).
    pub caller_id: Option<u32>,
    /// The text, raw bytes (no trailing newline; embedded ones kept).
    #[serde(skip)]
    pub text: Vec<u8>,
    /// `dev_info.subsystem` / `SUBSYSTEM=`; empty if none.
    #[serde(skip)]
    pub subsystem: Vec<u8>,
    /// `dev_info.device` / `DEVICE=`; empty if none.
    #[serde(skip)]
    pub device: Vec<u8>,
    /// True for the newest record shown while still committed (the writer could have appended).
    pub open: bool,
}

impl LogRecord {
    /// `T<pid>` or `C<cpu>`, as printk's `[%6s]` caller field prints it.
    pub fn caller(&self) -> Option<String> {
        self.caller_id.map(|c| {
            if c & 0x8000_0000 != 0 {
                format!("C{}", c & !0x8000_0000)
            } else {
                format!("T{c}")
            }
        })
    }
}

/// How many descriptors between the tail and the head were found in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DescStates {
    pub reserved: u64,
    pub committed: u64,
    pub finalized: u64,
    pub reusable: u64,
    pub miss: u64,
    /// Descriptors or infos on pages missing from the dump.
    pub unreadable: u64,
}

/// Sequence numbers missing between two records shown (not the ones lost before the oldest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeqGap {
    /// The last sequence number shown before the gap.
    pub after: u64,
    /// The first shown after it.
    pub before: u64,
}

/// Something the reader found wrong and went past.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogIssue {
    /// `corrupt-data`, `not-dumped`, `bound`, …
    pub code: &'static str,
    pub what: String,
}

/// Where the ring is and how big.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RingInfo {
    /// `prb`'s target (lockless) or `log_buf` (legacy).
    pub address: u64,
    pub count_bits: Option<u32>,
    pub size_bits: Option<u32>,
    pub head_id: Option<u64>,
    pub tail_id: Option<u64>,
    /// Legacy: `log_buf_len`, `log_first_idx`, `log_next_idx`.
    pub buf_len: Option<u64>,
    pub first_idx: Option<u64>,
    pub next_idx: Option<u64>,
}

/// The log as read.
#[derive(Clone, Debug, Serialize)]
pub struct KernelLog {
    pub format: LogFormat,
    /// Where the layout came from: `vmcoreinfo`, `debuginfo` or `vmcoreinfo+debuginfo`.
    pub layout_from: String,
    pub ring: RingInfo,
    #[serde(skip)]
    pub records: Vec<LogRecord>,
    /// Lockless only.
    pub states: Option<DescStates>,
    /// Gaps inside the range shown (records lost there: not normal).
    pub gaps: Vec<SeqGap>,
    /// Pages of the ring not in the dump: (address, length).
    pub missing: Vec<(u64, u64)>,
    pub issues: Vec<LogIssue>,
}

impl KernelLog {
    fn new(format: LogFormat, layout_from: String, address: u64) -> KernelLog {
        KernelLog {
            format,
            layout_from,
            ring: RingInfo {
                address,
                ..RingInfo::default()
            },
            records: Vec::new(),
            states: None,
            gaps: Vec::new(),
            missing: Vec::new(),
            issues: Vec::new(),
        }
    }

    fn issue(&mut self, code: &'static str, what: impl Into<String>) {
        // a corrupt ring could repeat one problem per record: keep the first few hundred
        if self.issues.len() < 256 {
            self.issues.push(LogIssue {
                code,
                what: what.into(),
            });
        }
    }

    /// The sequence number of the oldest record shown.
    pub fn first_seq(&self) -> Option<u64> {
        self.records.iter().find_map(|r| r.seq)
    }
    pub fn last_seq(&self) -> Option<u64> {
        self.records.iter().rev().find_map(|r| r.seq)
    }
    /// Records lost before the oldest one shown (overwritten by newer ones: normal), when the
    /// sequence numbers are known.
    pub fn lost_before(&self) -> Option<u64> {
        self.first_seq()
    }
    /// Records missing inside the range shown.
    pub fn lost_inside(&self) -> u64 {
        self.gaps
            .iter()
            .map(|g| g.before.saturating_sub(g.after).saturating_sub(1))
            .sum()
    }

    /// Fills [`KernelLog::gaps`] from the records' sequence numbers.
    fn find_gaps(&mut self) {
        let mut prev: Option<u64> = None;
        let mut gaps = Vec::new();
        let mut backwards = 0u64;
        for s in self.records.iter().filter_map(|r| r.seq) {
            if let Some(p) = prev {
                if s > p.saturating_add(1) {
                    gaps.push(SeqGap {
                        after: p,
                        before: s,
                    });
                } else if s <= p {
                    backwards += 1;
                }
            }
            prev = Some(s);
        }
        self.gaps = gaps;
        if backwards > 0 {
            self.issue(
                "corrupt-data",
                format!("{backwards} records whose sequence number does not increase"),
            );
        }
    }
}

// ---- reading memory in pages ----------------------------------------------------------------

/// Reads through a page cache so each page of the ring is read once, and a page missing from
/// the dump is noted once.
struct Pages<'m, M: LogMemory + ?Sized> {
    mem: &'m M,
    pages: HashMap<u64, Option<Vec<u8>>>,
    missing: BTreeSet<u64>,
}

impl<'m, M: LogMemory + ?Sized> Pages<'m, M> {
    fn new(mem: &'m M) -> Self {
        Pages {
            mem,
            pages: HashMap::new(),
            missing: BTreeSet::new(),
        }
    }

    /// `len` bytes at `addr`, or the address of the first byte that is not in the dump.
    fn get(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, u64> {
        let mut out = Vec::with_capacity(len);
        let mut at = addr;
        while out.len() < len {
            let page = at & !(CHUNK - 1);
            let from = (at - page) as usize;
            let take = (CHUNK as usize - from).min(len - out.len());
            let mem = self.mem;
            let cached = self
                .pages
                .entry(page)
                .or_insert_with(|| mem.log_bytes(page, CHUNK as usize).ok());
            match cached {
                Some(bytes) => out.extend_from_slice(&bytes[from..from + take]),
                // the page as a whole is not readable; the bytes asked for may be (memory that
                // ends inside a page)
                None => match self.mem.log_bytes(at, take) {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(_) => {
                        self.missing.insert(page);
                        return Err(at);
                    }
                },
            }
            at = match at.checked_add(take as u64) {
                Some(a) => a,
                None if out.len() == len => break,
                None => return Err(u64::MAX),
            };
        }
        Ok(out)
    }

    fn missing_ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &p in &self.missing {
            match out.last_mut() {
                Some((a, l)) if a.wrapping_add(*l) == p => *l += CHUNK,
                _ => out.push((p, CHUNK)),
            }
        }
        out
    }
}

fn uint(e: Endian, b: &[u8], off: u64, width: usize) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    e.uint(b.get(off..off.checked_add(width)?)?, width)
}

/// A NUL-terminated string inside `b[off..off+len]`.
fn cstr_at(b: &[u8], off: u64, len: u64) -> Vec<u8> {
    let (Ok(off), Ok(len)) = (usize::try_from(off), usize::try_from(len)) else {
        return Vec::new();
    };
    let Some(s) = off
        .checked_add(len)
        .and_then(|end| b.get(off..end.min(b.len())))
    else {
        return Vec::new();
    };
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    s[..end].to_vec()
}

/// Splits the flags/level byte of `printk_info` / `printk_log` (`u8 flags:5, level:3`).
fn flags_level(e: Endian, byte: u8) -> (u8, u8) {
    match e {
        Endian::Little => (byte & 0x1f, byte >> 5),
        Endian::Big => (byte >> 3, byte & 0x7),
    }
}

// ---- layouts -------------------------------------------------------------------------------

/// Byte offsets and sizes of the lockless ring's structures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrbLayout {
    pub endian: Endian,
    /// `sizeof(long)`: 8 on the 64-bit machines this tool reads.
    pub word: usize,
    pub rb_size: u64,
    pub desc_ring: u64,
    pub text_data_ring: u64,
    pub count_bits: u64,
    pub descs: u64,
    pub infos: u64,
    pub head_id: u64,
    pub tail_id: u64,
    /// `atomic_long_t.counter`.
    pub counter: u64,
    pub desc_size: u64,
    pub state_var: u64,
    pub text_blk_lpos: u64,
    pub lpos_begin: u64,
    pub lpos_next: u64,
    pub size_bits: u64,
    pub data: u64,
    pub info_size: u64,
    pub seq: u64,
    pub ts_nsec: u64,
    pub text_len: u64,
    pub facility: u64,
    /// The `flags:5, level:3` byte.
    pub flags_level: u64,
    pub caller_id: Option<u64>,
    /// (`offset of dev_info.subsystem in printk_info`, length)
    pub subsystem: Option<(u64, u64)>,
    pub device: Option<(u64, u64)>,
}

/// Byte offsets and sizes of `struct printk_log` and the legacy variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLayout {
    pub endian: Endian,
    pub word: usize,
    pub hdr_size: u64,
    pub ts_nsec: u64,
    pub len: u64,
    pub text_len: u64,
    pub dict_len: u64,
    pub facility: u64,
    pub flags_level: u64,
    pub caller_id: Option<u64>,
}

/// Where the legacy ring's variables are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyVars {
    /// `char *log_buf` (the pointer variable).
    pub log_buf: u64,
    /// `u32 log_buf_len`.
    pub log_buf_len: u64,
    /// `u32 log_first_idx`, `u32 log_next_idx`.
    pub log_first_idx: u64,
    pub log_next_idx: u64,
    /// `u64 log_first_seq`, when known.
    pub log_first_seq: Option<u64>,
}

/// Resolves layout entries from VMCOREINFO first, then the debug info, and counts which.
struct Resolver<'k, K: KernelAccess> {
    k: &'k K,
    vmcoreinfo: usize,
    debuginfo: usize,
    missing: Vec<String>,
}

impl<'k, K: KernelAccess> Resolver<'k, K> {
    fn new(k: &'k K) -> Self {
        Resolver {
            k,
            vmcoreinfo: 0,
            debuginfo: 0,
            missing: Vec::new(),
        }
    }

    fn c_type(vi_name: &str) -> String {
        if vi_name.ends_with("_t") {
            vi_name.to_string()
        } else {
            format!("struct {vi_name}")
        }
    }

    /// `OFFSET(st.member)`, or the debug info's offset; `None` (and noted) without either.
    fn offset(&mut self, st: &str, member: &str) -> AResult<Option<u64>> {
        if let Some(v) = self.k.vmcoreinfo_u64(&format!("OFFSET({st}.{member})")) {
            self.vmcoreinfo += 1;
            return Ok(Some(v));
        }
        match self.k.offset_of(&Self::c_type(st), member)? {
            Some(v) => {
                self.debuginfo += 1;
                Ok(Some(v))
            }
            None => {
                self.missing.push(format!("OFFSET({st}.{member})"));
                Ok(None)
            }
        }
    }

    /// Like [`Resolver::offset`] but without noting absence (an optional member).
    fn offset_opt(&mut self, st: &str, member: &str) -> AResult<Option<u64>> {
        let before = self.missing.len();
        let r = self.offset(st, member)?;
        self.missing.truncate(before);
        Ok(r)
    }

    fn size(&mut self, st: &str) -> AResult<Option<u64>> {
        if let Some(v) = self.k.vmcoreinfo_u64(&format!("SIZE({st})")) {
            self.vmcoreinfo += 1;
            return Ok(Some(v));
        }
        match self.k.type_size(&Self::c_type(st))? {
            Some(v) => {
                self.debuginfo += 1;
                Ok(Some(v))
            }
            None => {
                self.missing.push(format!("SIZE({st})"));
                Ok(None)
            }
        }
    }

    fn source(&self) -> String {
        match (self.vmcoreinfo > 0, self.debuginfo > 0) {
            (true, false) => "vmcoreinfo".into(),
            (false, true) => "debuginfo".into(),
            (true, true) => "vmcoreinfo+debuginfo".into(),
            (false, false) => "none".into(),
        }
    }

    fn fail(&self, what: &str) -> AccessError {
        AccessError::new(
            "no-printk-layout",
            format!(
                "{what}: neither VMCOREINFO nor the debug info has {}",
                self.missing.join(", ")
            ),
        )
    }
}

/// A global's address: VMCOREINFO `SYMBOL()` first (the dump alone suffices), else the symbol
/// table.
fn global<K: KernelAccess>(k: &K, name: &str) -> AResult<Option<u64>> {
    match k.vmcoreinfo_symbol(name) {
        Some(a) => Ok(Some(a)),
        None => k.symbol(name),
    }
}

fn word_size<K: KernelAccess>(k: &K) -> AResult<usize> {
    let w = match k.vmcoreinfo_u64("SIZE(atomic_long_t)") {
        Some(w) => Some(w),
        None => k.type_size("atomic_long_t")?,
    };
    Ok(match w {
        Some(4) => 4,
        _ => 8,
    })
}

/// The lockless ring's layout, from VMCOREINFO and, for what it lacks, the debug info.
pub fn prb_layout<K: KernelAccess>(k: &K) -> AResult<(PrbLayout, String)> {
    let mut r = Resolver::new(k);
    let (rb, dr, d, lp) = (
        "printk_ringbuffer",
        "prb_desc_ring",
        "prb_desc",
        "prb_data_blk_lpos",
    );
    let (tr, pi, dv) = ("prb_data_ring", "printk_info", "dev_printk_info");
    // required entries: a missing one is noted (and reads as 0 until the check below)
    let req_off = |r: &mut Resolver<'_, K>, st: &str, m: &str| -> AResult<u64> {
        Ok(r.offset(st, m)?.unwrap_or(0))
    };
    let rb_size = r.size(rb)?.unwrap_or(0);
    let desc_size = r.size(d)?.unwrap_or(0);
    let info_size = r.size(pi)?.unwrap_or(0);
    let text_len = req_off(&mut r, pi, "text_len")?;
    let mut layout = PrbLayout {
        endian: k.endian(),
        word: word_size(k)?,
        rb_size,
        desc_ring: req_off(&mut r, rb, "desc_ring")?,
        text_data_ring: req_off(&mut r, rb, "text_data_ring")?,
        count_bits: req_off(&mut r, dr, "count_bits")?,
        descs: req_off(&mut r, dr, "descs")?,
        infos: req_off(&mut r, dr, "infos")?,
        head_id: req_off(&mut r, dr, "head_id")?,
        tail_id: req_off(&mut r, dr, "tail_id")?,
        // `atomic_long_t` has one member; its offset is 0 wherever it is not recorded
        counter: r.offset_opt("atomic_long_t", "counter")?.unwrap_or(0),
        desc_size,
        state_var: req_off(&mut r, d, "state_var")?,
        text_blk_lpos: req_off(&mut r, d, "text_blk_lpos")?,
        lpos_begin: req_off(&mut r, lp, "begin")?,
        lpos_next: req_off(&mut r, lp, "next")?,
        size_bits: req_off(&mut r, tr, "size_bits")?,
        data: req_off(&mut r, tr, "data")?,
        info_size,
        seq: req_off(&mut r, pi, "seq")?,
        ts_nsec: req_off(&mut r, pi, "ts_nsec")?,
        text_len,
        facility: k
            .offset_of("struct printk_info", "facility")?
            .unwrap_or(text_len.saturating_add(2)),
        flags_level: 0,
        caller_id: r.offset_opt(pi, "caller_id")?,
        subsystem: None,
        device: None,
    };
    if !r.missing.is_empty() {
        return Err(r.fail("the printk ring buffer's layout"));
    }
    layout.flags_level = layout.facility.saturating_add(1);
    // dev_info (5.10+): optional, each string's length from LENGTH() or the member offsets
    if let Some(dev_info) = r.offset_opt(pi, "dev_info")? {
        let sub_off = r.offset_opt(dv, "subsystem")?;
        let dev_off = r.offset_opt(dv, "device")?;
        let dv_size = r.size(dv)?;
        r.missing.clear();
        let sub_len = k
            .vmcoreinfo_u64("LENGTH(printk_info_subsystem)")
            .or_else(|| dev_off?.checked_sub(sub_off?));
        let dev_len = k
            .vmcoreinfo_u64("LENGTH(printk_info_device)")
            .or_else(|| dv_size?.checked_sub(dev_off?));
        let pair = |off: Option<u64>, len: Option<u64>| Some((dev_info.checked_add(off?)?, len?));
        layout.subsystem = pair(sub_off, sub_len);
        layout.device = pair(dev_off, dev_len);
    }
    Ok((layout, r.source()))
}

/// The legacy ring's layout (`struct printk_log`, or `struct log` before 3.11).
pub fn legacy_layout<K: KernelAccess>(k: &K) -> AResult<(LegacyLayout, String)> {
    let mut r = Resolver::new(k);
    let st = if k.vmcoreinfo("SIZE(printk_log)").is_some()
        || k.type_size("struct printk_log")?.is_some()
    {
        "printk_log"
    } else {
        "log"
    };
    let hdr = r.size(st)?;
    let ts = r.offset(st, "ts_nsec")?;
    let len = r.offset(st, "len")?;
    let text_len = r.offset(st, "text_len")?;
    let dict_len = r.offset(st, "dict_len")?;
    let (Some(hdr), Some(ts), Some(len), Some(text_len), Some(dict_len)) =
        (hdr, ts, len, text_len, dict_len)
    else {
        return Err(r.fail("the legacy log buffer's layout"));
    };
    let c_st = format!("struct {st}");
    let facility = k
        .offset_of(&c_st, "facility")?
        .unwrap_or(dict_len.saturating_add(2));
    // caller_id (CONFIG_PRINTK_CALLER, 5.1+) is the struct's last member, after the flags byte:
    // a 20-byte header has it at 16 when the debug info does not say
    let caller_id = match k.offset_of(&c_st, "caller_id")? {
        Some(o) => Some(o),
        None if hdr >= 20 && facility.saturating_add(2) <= 16 => Some(16),
        None => None,
    };
    Ok((
        LegacyLayout {
            endian: k.endian(),
            word: word_size(k)?,
            hdr_size: hdr,
            ts_nsec: ts,
            len,
            text_len,
            dict_len,
            facility,
            flags_level: facility.saturating_add(1),
            caller_id,
        },
        r.source(),
    ))
}

/// Whether the kernel has a ring this module reads (`prb`, or `log_buf`), by VMCOREINFO or the
/// symbol table; nothing is read from memory.
pub fn has_log<K: KernelAccess>(k: &K) -> bool {
    ["prb", "log_buf"]
        .iter()
        .any(|n| matches!(global(k, n), Ok(Some(_))))
}

/// Reads the kernel log of the dump: the lockless ring when the kernel has `prb`, else the
/// legacy `log_buf` ring. `Ok(None)` when it has neither (a kernel before 3.5, whose plain
/// character ring is not read).
pub fn read_kernel_log<K: KernelAccess>(k: &K) -> AResult<Option<KernelLog>> {
    if let Some(prb) = global(k, "prb")? {
        let (layout, from) = prb_layout(k)?;
        let ptr = k.read(prb, layout.word)?;
        let rb = uint(layout.endian, &ptr, 0, layout.word)
            .ok_or_else(|| AccessError::new("corrupt-data", "short read of prb"))?;
        if rb == 0 {
            return Err(AccessError::new(
                "corrupt-data",
                format!("prb (at {prb:#x}) is NULL"),
            ));
        }
        return Ok(Some(read_lockless(k, &layout, rb, from)));
    }
    if let Some(log_buf) = global(k, "log_buf")? {
        let (layout, from) = legacy_layout(k)?;
        let need = |name: &str| -> AResult<u64> {
            global(k, name)?.ok_or_else(|| {
                AccessError::new(
                    "no-printk-layout",
                    format!("the kernel has log_buf but no {name}"),
                )
            })
        };
        // not in VMCOREINFO: from the symbol table, when it has it
        let first_seq = match k.symbol("log_first_seq")? {
            Some(a) => k
                .read(a, 8)
                .ok()
                .and_then(|b| uint(layout.endian, &b, 0, 8)),
            None => None,
        };
        let vars = LegacyVars {
            log_buf,
            log_buf_len: need("log_buf_len")?,
            log_first_idx: need("log_first_idx")?,
            log_next_idx: need("log_next_idx")?,
            log_first_seq: first_seq,
        };
        return Ok(Some(read_legacy(k, &layout, &vars, from)));
    }
    Ok(None)
}

// ---- the lockless ring ---------------------------------------------------------------------

/// Reads the lockless ring whose `struct printk_ringbuffer` is at `rb`. Never fails: what
/// cannot be read is recorded in the result.
pub fn read_lockless<M: LogMemory + ?Sized>(
    mem: &M,
    l: &PrbLayout,
    rb: u64,
    layout_from: String,
) -> KernelLog {
    let mut log = KernelLog::new(LogFormat::Lockless, layout_from, rb);
    let mut pages = Pages::new(mem);
    lockless_into(&mut pages, l, rb, &mut log);
    log.missing = pages.missing_ranges();
    log.find_gaps();
    log
}

fn lockless_into<M: LogMemory + ?Sized>(
    pages: &mut Pages<'_, M>,
    l: &PrbLayout,
    rb: u64,
    log: &mut KernelLog,
) {
    let e = l.endian;
    let w = l.word;
    if l.rb_size > MAX_STRUCT
        || l.info_size > MAX_STRUCT
        || l.desc_size > MAX_STRUCT
        || l.info_size == 0
        || l.desc_size == 0
    {
        log.issue("corrupt-data", "implausible printk structure sizes");
        return;
    }
    let hdr = match pages.get(rb, l.rb_size as usize) {
        Ok(b) => b,
        Err(a) => {
            log.issue(
                "not-dumped",
                format!("the printk_ringbuffer at {rb:#x} is not in the dump (page {a:#x})"),
            );
            return;
        }
    };
    let dr = l.desc_ring;
    let tr = l.text_data_ring;
    let fields = (
        uint(e, &hdr, dr.saturating_add(l.count_bits), 4),
        uint(e, &hdr, dr.saturating_add(l.descs), w),
        uint(e, &hdr, dr.saturating_add(l.infos), w),
        uint(
            e,
            &hdr,
            dr.saturating_add(l.head_id).saturating_add(l.counter),
            w,
        ),
        uint(
            e,
            &hdr,
            dr.saturating_add(l.tail_id).saturating_add(l.counter),
            w,
        ),
        uint(e, &hdr, tr.saturating_add(l.size_bits), 4),
        uint(e, &hdr, tr.saturating_add(l.data), w),
    );
    let (
        Some(count_bits),
        Some(descs),
        Some(infos),
        Some(head_id),
        Some(tail_id),
        Some(size_bits),
        Some(data),
    ) = fields
    else {
        log.issue(
            "corrupt-data",
            "the layout puts printk_ringbuffer members past its size",
        );
        return;
    };
    let (count_bits, size_bits) = (count_bits as u32, size_bits as u32);
    log.ring.count_bits = Some(count_bits);
    log.ring.size_bits = Some(size_bits);
    log.ring.head_id = Some(head_id);
    log.ring.tail_id = Some(tail_id);
    if count_bits > MAX_COUNT_BITS || !(4..=MAX_SIZE_BITS).contains(&size_bits) {
        log.issue(
            "corrupt-data",
            format!("ring sizes out of bounds: count_bits {count_bits}, size_bits {size_bits}"),
        );
        return;
    }
    let bits = (w * 8) as u32;
    let id_mask = u64::MAX >> (66 - bits); // the low BITS_PER_LONG - 2 bits
    let count = 1u64 << count_bits;
    let ring = Ring {
        e,
        w,
        data,
        size_bits,
    };
    // the records are tail_id ..= head_id
    let span = head_id.wrapping_sub(tail_id) & id_mask;
    let (mut id, n) = if span >= count {
        log.issue(
            "corrupt-data",
            format!(
                "head_id {head_id:#x} is {span} descriptors ahead of tail_id {tail_id:#x}, more \
                 than the ring's {count}: reading the last {count}"
            ),
        );
        (head_id.wrapping_sub(count - 1) & id_mask, count)
    } else {
        (tail_id & id_mask, span + 1)
    };
    let n = if n > MAX_RECORDS {
        log.issue(
            "bound",
            format!("{n} descriptors: reading the newest {MAX_RECORDS}"),
        );
        id = head_id.wrapping_sub(MAX_RECORDS - 1) & id_mask;
        MAX_RECORDS
    } else {
        n
    };
    let head_id = head_id & id_mask;
    let mut states = DescStates::default();
    let mut lost_data = 0u64;
    let mut unreadable_run = 0u64;
    for _ in 0..n {
        if unreadable_run >= MAX_UNREADABLE_RUN {
            log.issue(
                "not-dumped",
                format!("{unreadable_run} descriptors in a row are not in the dump: stopped"),
            );
            break;
        }
        let idx = id & (count - 1);
        let is_head = id == head_id;
        let this = id;
        id = id.wrapping_add(1) & id_mask;
        let daddr = descs.wrapping_add(idx.wrapping_mul(l.desc_size));
        let desc = match pages.get(daddr, l.desc_size as usize) {
            Ok(b) => {
                unreadable_run = 0;
                b
            }
            Err(_) => {
                states.unreadable += 1;
                unreadable_run += 1;
                continue;
            }
        };
        let lp = l.text_blk_lpos;
        let (Some(sv), Some(begin), Some(next)) = (
            uint(e, &desc, l.state_var, w),
            uint(e, &desc, lp.saturating_add(l.lpos_begin), w),
            uint(e, &desc, lp.saturating_add(l.lpos_next), w),
        ) else {
            log.issue("corrupt-data", "prb_desc members past its size");
            return;
        };
        if sv & id_mask != this {
            states.miss += 1;
            continue;
        }
        match sv >> (bits - 2) {
            0 => {
                states.reserved += 1;
                continue;
            }
            1 => {
                states.committed += 1;
                if !is_head {
                    log.issue(
                        "committed",
                        format!("descriptor {this:#x} is committed but not the newest: not shown"),
                    );
                    continue;
                }
            }
            2 => states.finalized += 1,
            _ => {
                states.reusable += 1;
                continue;
            }
        }
        let iaddr = infos.wrapping_add(idx.wrapping_mul(l.info_size));
        let info = match pages.get(iaddr, l.info_size as usize) {
            Ok(b) => b,
            Err(_) => {
                states.unreadable += 1;
                continue;
            }
        };
        let (Some(seq), Some(ts), Some(text_len), Some(fac), Some(fl)) = (
            uint(e, &info, l.seq, 8),
            uint(e, &info, l.ts_nsec, 8),
            uint(e, &info, l.text_len, 2),
            uint(e, &info, l.facility, 1),
            uint(e, &info, l.flags_level, 1),
        ) else {
            log.issue("corrupt-data", "printk_info members past its size");
            return;
        };
        if seq & (count - 1) != idx {
            log.issue(
                "corrupt-data",
                format!(
                    "descriptor {this:#x} (index {idx}) holds sequence number {seq}, which \
                     belongs to index {}: not shown",
                    seq & (count - 1)
                ),
            );
            continue;
        }
        let text = match ring.text(pages, this, begin, next, text_len) {
            Ok(t) => t,
            Err(TextError::Lost) => {
                lost_data += 1;
                continue;
            }
            Err(TextError::NotDumped(a)) => {
                log.issue(
                    "not-dumped",
                    format!("the text of record {seq} at {a:#x} is not in the dump"),
                );
                continue;
            }
            Err(TextError::Corrupt(why)) => {
                log.issue("corrupt-data", format!("record {seq}: {why}: not shown"));
                continue;
            }
            Err(TextError::Truncated(t, avail)) => {
                log.issue(
                    "corrupt-data",
                    format!(
                        "record {seq}: text_len {text_len} exceeds its data block ({avail} \
                         bytes): truncated"
                    ),
                );
                t
            }
        };
        let (flags, level) = flags_level(e, fl as u8);
        let caller_id = l
            .caller_id
            .and_then(|o| uint(e, &info, o, 4))
            .map(|c| c as u32);
        let subsystem = l
            .subsystem
            .map(|(o, n)| cstr_at(&info, o, n))
            .unwrap_or_default();
        let device = l
            .device
            .map(|(o, n)| cstr_at(&info, o, n))
            .unwrap_or_default();
        log.records.push(LogRecord {
            seq: Some(seq),
            ts_nsec: ts,
            level,
            facility: fac as u8,
            flags,
            caller_id,
            text,
            subsystem,
            device,
            open: sv >> (bits - 2) == 1,
        });
    }
    if states.unreadable > 0 {
        log.issue(
            "not-dumped",
            format!(
                "{} descriptors are on pages missing from the dump",
                states.unreadable
            ),
        );
    }
    if lost_data > 0 {
        log.issue(
            "data-lost",
            format!("{lost_data} records whose text the kernel could not store (FAILED_LPOS)"),
        );
    }
    if states.reserved > 0 {
        log.issue(
            "reserved",
            format!(
                "{} records were being written when the dump was taken: not shown",
                states.reserved
            ),
        );
    }
    log.states = Some(states);
}

/// Why a record's text could not be taken.
enum TextError {
    /// `FAILED_LPOS`: the kernel lost it.
    Lost,
    NotDumped(u64),
    Corrupt(String),
    /// Shown, but shorter than `text_len`: (text, bytes available).
    Truncated(Vec<u8>, u64),
}

/// The text data ring.
struct Ring {
    e: Endian,
    w: usize,
    data: u64,
    size_bits: u32,
}

impl Ring {
    fn wraps(&self, lpos: u64) -> u64 {
        lpos >> self.size_bits
    }
    fn index(&self, lpos: u64) -> u64 {
        lpos & ((1u64 << self.size_bits) - 1)
    }
    /// `is_blk_wrapped`: `begin` and the block's last byte are in different wraps.
    fn is_wrapped(&self, begin: u64, next: u64) -> bool {
        self.wraps(begin) != self.wraps(next.wrapping_sub(1))
    }

    /// The text of descriptor `id` (`get_data` and `copy_data`).
    fn text<M: LogMemory + ?Sized>(
        &self,
        pages: &mut Pages<'_, M>,
        id: u64,
        begin: u64,
        next: u64,
        text_len: u64,
    ) -> Result<Vec<u8>, TextError> {
        let size = 1u64 << self.size_bits;
        let w = self.w as u64;
        if begin & 1 == 1 && next & 1 == 1 {
            return if begin == EMPTY_LINE_LPOS && next == EMPTY_LINE_LPOS {
                Ok(Vec::new())
            } else if begin == FAILED_LPOS && next == FAILED_LPOS {
                Err(TextError::Lost)
            } else {
                Err(TextError::Corrupt(format!(
                    "data-less lpos {begin:#x}..{next:#x}"
                )))
            };
        }
        let span = next.wrapping_sub(begin);
        if span == 0 || span > size {
            return Err(TextError::Corrupt(format!(
                "block {begin:#x}..{next:#x} is not inside a {size}-byte ring"
            )));
        }
        if begin % w != 0 || next % w != 0 {
            return Err(TextError::Corrupt(format!(
                "block {begin:#x}..{next:#x} is not aligned"
            )));
        }
        let (start, avail) = if !self.is_wrapped(begin, next) {
            (self.index(begin), span)
        } else if !self.is_wrapped(begin.wrapping_add(size), next) {
            // wrapped: the whole block again at data[0]
            (0, self.index(next))
        } else {
            return Err(TextError::Corrupt(format!(
                "block {begin:#x}..{next:#x} spans more than one wrap"
            )));
        };
        if avail < w || start + avail > size {
            return Err(TextError::Corrupt(format!(
                "block {begin:#x}..{next:#x} is too small"
            )));
        }
        let avail = avail - w;
        let block = self.data.wrapping_add(start);
        let blk_id = pages
            .get(block, self.w)
            .map_err(TextError::NotDumped)
            .and_then(|b| {
                uint(self.e, &b, 0, self.w).ok_or(TextError::Corrupt("short block".into()))
            })?;
        // the block's id word is the descriptor's id (`data_alloc`), else it was overwritten
        let id_mask = u64::MAX >> (66 - (self.w * 8) as u32);
        if blk_id & id_mask != id {
            return Err(TextError::Corrupt(format!(
                "data block at {block:#x} belongs to descriptor {blk_id:#x}, not {id:#x}"
            )));
        }
        let take = text_len.min(avail);
        let text = pages
            .get(block.wrapping_add(w), take as usize)
            .map_err(TextError::NotDumped)?;
        if text_len > avail {
            return Err(TextError::Truncated(text, avail));
        }
        Ok(text)
    }
}

// ---- the legacy ring -----------------------------------------------------------------------

/// Reads the legacy `log_buf` ring. Never fails: what cannot be read is recorded.
pub fn read_legacy<M: LogMemory + ?Sized>(
    mem: &M,
    l: &LegacyLayout,
    v: &LegacyVars,
    layout_from: String,
) -> KernelLog {
    let mut pages = Pages::new(mem);
    let mut log = KernelLog::new(LogFormat::Legacy, layout_from, 0);
    legacy_into(&mut pages, l, v, &mut log);
    log.missing = pages.missing_ranges();
    log.find_gaps();
    log
}

fn legacy_into<M: LogMemory + ?Sized>(
    pages: &mut Pages<'_, M>,
    l: &LegacyLayout,
    v: &LegacyVars,
    log: &mut KernelLog,
) {
    let e = l.endian;
    let read_var = |pages: &mut Pages<'_, M>, addr: u64, width: usize| {
        pages
            .get(addr, width)
            .ok()
            .and_then(|b| uint(e, &b, 0, width))
    };
    let (Some(buf), Some(buf_len), Some(first), Some(next)) = (
        read_var(pages, v.log_buf, l.word),
        read_var(pages, v.log_buf_len, 4),
        read_var(pages, v.log_first_idx, 4),
        read_var(pages, v.log_next_idx, 4),
    ) else {
        log.issue(
            "not-dumped",
            "log_buf, log_buf_len, log_first_idx or log_next_idx is not in the dump",
        );
        return;
    };
    log.ring.address = buf;
    log.ring.buf_len = Some(buf_len);
    log.ring.first_idx = Some(first);
    log.ring.next_idx = Some(next);
    let h = l.hdr_size;
    if !(16..=64).contains(&h) || buf_len > 1 << MAX_SIZE_BITS || first >= buf_len || next > buf_len
    {
        log.issue(
            "corrupt-data",
            format!(
                "implausible legacy ring: header {h}, log_buf_len {buf_len}, first {first}, \
                 next {next}"
            ),
        );
        return;
    }
    let mut seq = v.log_first_seq;
    let mut idx = first;
    let mut wrapped = false;
    let max_records = (buf_len / h + 2).min(MAX_RECORDS);
    let mut n = 0u64;
    while idx != next {
        if n >= max_records {
            log.issue("bound", format!("more than {max_records} records: stopped"));
            break;
        }
        n += 1;
        if idx + h > buf_len {
            log.issue(
                "corrupt-data",
                format!("record header at index {idx} runs past the {buf_len}-byte buffer"),
            );
            break;
        }
        let at = buf.wrapping_add(idx);
        let hdr = match pages.get(at, h as usize) {
            Ok(b) => b,
            Err(a) => {
                log.issue(
                    "not-dumped",
                    format!("the record at index {idx} (page {a:#x}) is not in the dump"),
                );
                break;
            }
        };
        let field = |off: u64, width: usize| uint(e, &hdr, off, width).unwrap_or(0);
        let len = field(l.len, 2);
        if len == 0 {
            // the end-of-buffer marker: continue at the start, once
            if wrapped || idx < next {
                log.issue(
                    "corrupt-data",
                    format!("a second wrap marker at index {idx}: stopped"),
                );
                break;
            }
            wrapped = true;
            idx = 0;
            continue;
        }
        let text_len = field(l.text_len, 2);
        let dict_len = field(l.dict_len, 2);
        if len < h || idx + len > buf_len {
            log.issue(
                "corrupt-data",
                format!("record at index {idx} has length {len}: stopped"),
            );
            break;
        }
        let body = len - h;
        let (text_len, dict_len) = if text_len + dict_len > body {
            log.issue(
                "corrupt-data",
                format!(
                    "record at index {idx}: text {text_len} + dict {dict_len} exceed its \
                     length {len}: truncated"
                ),
            );
            let t = text_len.min(body);
            (t, (body - t).min(dict_len))
        } else {
            (text_len, dict_len)
        };
        let rest = match pages.get(at.wrapping_add(h), (text_len + dict_len) as usize) {
            Ok(b) => b,
            Err(a) => {
                log.issue(
                    "not-dumped",
                    format!("the text at index {idx} (page {a:#x}) is not in the dump"),
                );
                idx += len;
                seq = seq.map(|s| s.wrapping_add(1));
                continue;
            }
        };
        let (text, dict) = rest.split_at(text_len as usize);
        let mut subsystem = Vec::new();
        let mut device = Vec::new();
        for kv in dict.split(|&c| c == 0) {
            if let Some(s) = kv.strip_prefix(b"SUBSYSTEM=") {
                subsystem = s.to_vec();
            } else if let Some(d) = kv.strip_prefix(b"DEVICE=") {
                device = d.to_vec();
            }
        }
        let (flags, level) = flags_level(e, field(l.flags_level, 1) as u8);
        log.records.push(LogRecord {
            seq,
            ts_nsec: field(l.ts_nsec, 8),
            level,
            facility: field(l.facility, 1) as u8,
            flags,
            caller_id: l.caller_id.map(|o| field(o, 4) as u32),
            text: text.to_vec(),
            subsystem,
            device,
            open: false,
        });
        seq = seq.map(|s| s.wrapping_add(1));
        idx += len;
    }
}
