//! Synthetic vmcore builder: "these physical pages with these bytes, this VMCOREINFO text, these
//! PRSTATUS notes, this format".
//!
//! Written from the format descriptions (makedumpfile's `diskdump_mod.h`/`makedumpfile.h`, the ELF
//! spec, QEMU's dump code as documented in docs/dump-formats.md) with its own byte-level writers; it
//! shares no struct or constant with the parser, so a misunderstanding in one does not hide in the
//! other. The builder's page map is the test oracle.
//!
//! ```ignore
//! let mut b = VmcoreBuilder::new(SynthArch::X86_64);
//! b.write_phys(0x1000, b"hello");                 // pages are created zero-filled as needed
//! b.vmcoreinfo("OSRELEASE=6.1.0\nPAGESIZE=4096\n");
//! b.prstatus(42, &[0; 27]);
//! let elf = b.build_elf(&ElfOpts::default());
//! let kdump = b.build_kdump(&KdumpOpts { codec: SynthCodec::Zstd, ..Default::default() }).to_vec();
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

/// The dumped machine's architecture: byte order, ELF machine, PRSTATUS shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthArch {
    X86_64,
    Aarch64,
    S390x,
}

impl SynthArch {
    pub fn big_endian(self) -> bool {
        self == SynthArch::S390x
    }
    fn e_machine(self) -> u16 {
        match self {
            SynthArch::X86_64 => 62,
            SynthArch::Aarch64 => 183,
            SynthArch::S390x => 22,
        }
    }
    /// `sizeof(struct elf_prstatus)` on the architecture.
    fn prstatus_size(self) -> usize {
        match self {
            SynthArch::X86_64 => 336,
            SynthArch::Aarch64 => 392,
            SynthArch::S390x => 336,
        }
    }
    pub fn uname_machine(self) -> &'static str {
        match self {
            SynthArch::X86_64 => "x86_64",
            SynthArch::Aarch64 => "aarch64",
            SynthArch::S390x => "s390x",
        }
    }
}

/// Page codecs of the kdump format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SynthCodec {
    #[default]
    Raw,
    Zlib,
    Lzo,
    Snappy,
    Zstd,
}

impl SynthCodec {
    pub const ALL: [SynthCodec; 5] = [
        SynthCodec::Raw,
        SynthCodec::Zlib,
        SynthCodec::Lzo,
        SynthCodec::Snappy,
        SynthCodec::Zstd,
    ];
    /// The `DUMP_DH_COMPRESSED_*` flag (makedumpfile.h / diskdump_mod.h).
    pub fn flag(self) -> u32 {
        match self {
            SynthCodec::Raw => 0,
            SynthCodec::Zlib => 1,
            SynthCodec::Lzo => 2,
            SynthCodec::Snappy => 4,
            SynthCodec::Zstd => 0x20,
        }
    }
    pub fn name(self) -> Option<&'static str> {
        match self {
            SynthCodec::Raw => None,
            SynthCodec::Zlib => Some("zlib"),
            SynthCodec::Lzo => Some("lzo"),
            SynthCodec::Snappy => Some("snappy"),
            SynthCodec::Zstd => Some("zstd"),
        }
    }
    /// Compresses with a different implementation than the reader decompresses with where one
    /// exists (lzokay-native writes, lzo1x reads).
    fn compress(self, page: &[u8]) -> Vec<u8> {
        match self {
            SynthCodec::Raw => page.to_vec(),
            SynthCodec::Zlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(page).unwrap();
                e.finish().unwrap()
            }
            SynthCodec::Lzo => lzokay_native::compress(page).unwrap(),
            SynthCodec::Snappy => snap::raw::Encoder::new().compress_vec(page).unwrap(),
            SynthCodec::Zstd => zstd::bulk::compress(page, 3).unwrap(),
        }
    }
}

/// One CPU's `NT_PRSTATUS`.
#[derive(Clone, Debug)]
pub struct Prstatus {
    pub pid: u32,
    pub regs: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct ElfOpts {
    /// Program headers after two section headers, as QEMU writes them.
    pub phdrs_after_shdrs: bool,
    /// `e_phnum = PN_XNUM`, the count in section header 0.
    pub pn_xnum: bool,
}

impl Default for ElfOpts {
    fn default() -> Self {
        ElfOpts {
            phdrs_after_shdrs: true,
            pn_xnum: false,
        }
    }
}

/// One `PT_LOAD` of [`VmcoreBuilder::build_elf_loads`].
#[derive(Clone, Debug, Default)]
pub struct SynthLoad {
    pub paddr: u64,
    pub vaddr: u64,
    pub memsz: u64,
    /// Bytes in the file (`<= memsz`); the rest of the segment is its zero-filled tail.
    pub filesz: u64,
    /// `(offset in the segment, bytes)` written over this segment's file copy only: a copy that
    /// disagrees with the builder's memory.
    pub patches: Vec<(u64, Vec<u8>)>,
}

#[derive(Clone, Debug)]
pub struct KdumpOpts {
    pub codec: SynthCodec,
    /// `header_version`, 1..=6.
    pub header_version: i32,
    /// `KDUMP   ` (default) or `DISKDUMP`.
    pub signature: [u8; 8],
    /// Page data starts at this file offset (e.g. past 4 GiB, written sparsely).
    pub data_offset: Option<u64>,
    /// Leave the header's utsname empty, as QEMU does.
    pub empty_utsname: bool,
    /// Set `DUMP_DH_COMPRESSED_INCOMPLETE` and drop the last `n` dumped pages (zero descriptors).
    pub incomplete_drop: Option<usize>,
    pub dump_level: i32,
    pub phys_base: u64,
}

impl Default for KdumpOpts {
    fn default() -> Self {
        KdumpOpts {
            codec: SynthCodec::Zlib,
            header_version: 6,
            signature: *b"KDUMP   ",
            data_offset: None,
            empty_utsname: false,
            incomplete_drop: None,
            dump_level: 31,
            phys_base: 0x1_0000_0000,
        }
    }
}

/// A built kdump file: byte chunks at file offsets (sparse between them).
#[derive(Clone, Debug)]
pub struct KdumpImage {
    pub chunks: Vec<(u64, Vec<u8>)>,
    pub len: u64,
    pub block_size: u64,
    /// File offset of the descriptor table.
    pub desc_table: u64,
    /// Dumped PFNs in descriptor order.
    pub desc_pfns: Vec<u64>,
    pub bitmap1: u64,
    pub bitmap2: u64,
    pub big_endian: bool,
}

impl KdumpImage {
    /// The whole file in memory (only for images without a far data offset).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len as usize];
        for (off, c) in &self.chunks {
            v[*off as usize..*off as usize + c.len()].copy_from_slice(c);
        }
        v
    }

    /// Writes the file sparsely: `set_len`, then each chunk at its offset.
    pub fn write_sparse(&self, path: &Path) {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::create(path).unwrap();
        f.set_len(self.len).unwrap();
        for (off, c) in &self.chunks {
            f.seek(SeekFrom::Start(*off)).unwrap();
            f.write_all(c).unwrap();
        }
    }

    /// The file with the descriptor of `pfn` rewritten: each `Some` field replaces the stored one
    /// (bad offset, bad size, bad flags).
    pub fn with_desc(
        &self,
        pfn: u64,
        offset: Option<u64>,
        size: Option<u32>,
        flags: Option<u32>,
    ) -> Vec<u8> {
        let mut v = self.to_vec();
        let d = self.desc_offset(pfn) as usize;
        let mut w = W {
            be: self.big_endian,
            buf: std::mem::take(&mut v),
        };
        if let Some(o) = offset {
            w.u64(d, o);
        }
        if let Some(n) = size {
            w.u32(d + 8, n);
        }
        if let Some(f) = flags {
            w.u32(d + 12, f);
        }
        w.buf
    }

    /// The file with the stored bytes of `pfn` overwritten by garbage (a decompression failure
    /// for a compressed page).
    pub fn with_garbage_page(&self, pfn: u64) -> Vec<u8> {
        let mut v = self.to_vec();
        let d = self.desc_offset(pfn) as usize;
        let rd = |b: &[u8]| -> u64 {
            let mut x = 0u64;
            for (i, &c) in b.iter().enumerate() {
                let shift = if self.big_endian {
                    8 * (b.len() - 1 - i)
                } else {
                    8 * i
                };
                x |= (c as u64) << shift;
            }
            x
        };
        let off = rd(&v[d..d + 8]) as usize;
        let size = rd(&v[d + 8..d + 12]) as usize;
        for (i, b) in v[off..off + size].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        v
    }

    /// The file cut to `len` bytes.
    pub fn truncated(&self, len: usize) -> Vec<u8> {
        let mut v = self.to_vec();
        v.truncate(len);
        v
    }

    /// The file with every PFN marked dumped in the 2nd bitmap: more set bits than descriptors.
    pub fn with_bitmap_mismatch(&self) -> Vec<u8> {
        let mut v = self.to_vec();
        for b in &mut v[self.bitmap2 as usize..self.desc_table as usize] {
            *b = 0xff;
        }
        v
    }

    /// File offset of the descriptor of `pfn`.
    pub fn desc_offset(&self, pfn: u64) -> u64 {
        let i = self
            .desc_pfns
            .iter()
            .position(|&p| p == pfn)
            .expect("pfn dumped");
        self.desc_table + 24 * i as u64
    }
}

/// A vmcore under construction.
#[derive(Clone, Debug)]
pub struct VmcoreBuilder {
    pub arch: SynthArch,
    pub page_size: u64,
    pages: BTreeMap<u64, Vec<u8>>,
    excluded: BTreeSet<u64>,
    max_pfn: Option<u64>,
    vmcoreinfo: Option<String>,
    prstatus: Vec<Prstatus>,
    qemu_cr3: Vec<u64>,
    pub release: String,
    pub timestamp: i64,
}

/// Byte writer in a fixed byte order.
struct W {
    be: bool,
    buf: Vec<u8>,
}

impl W {
    fn new(be: bool, len: usize) -> W {
        W {
            be,
            buf: vec![0; len],
        }
    }
    fn put(&mut self, off: usize, bytes: &[u8]) {
        if self.buf.len() < off + bytes.len() {
            self.buf.resize(off + bytes.len(), 0);
        }
        self.buf[off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn u16(&mut self, off: usize, v: u16) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.put(off, &b);
    }
    fn u32(&mut self, off: usize, v: u32) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.put(off, &b);
    }
    fn u64(&mut self, off: usize, v: u64) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.put(off, &b);
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl VmcoreBuilder {
    pub fn new(arch: SynthArch) -> VmcoreBuilder {
        VmcoreBuilder {
            arch,
            page_size: 4096,
            pages: BTreeMap::new(),
            excluded: BTreeSet::new(),
            max_pfn: None,
            vmcoreinfo: None,
            prstatus: Vec::new(),
            qemu_cr3: Vec::new(),
            release: "6.1.0-synthetic".into(),
            timestamp: 1_700_000_000,
        }
    }

    /// Writes `bytes` at physical `addr`; touched pages become dumped pages (zero-filled first).
    pub fn write_phys(&mut self, addr: u64, bytes: &[u8]) -> &mut Self {
        let ps = self.page_size;
        let mut done = 0usize;
        while done < bytes.len() {
            let a = addr + done as u64;
            let pfn = a / ps;
            let off = (a % ps) as usize;
            let n = (bytes.len() - done).min(ps as usize - off);
            self.excluded.remove(&pfn);
            let page = self
                .pages
                .entry(pfn)
                .or_insert_with(|| vec![0; ps as usize]);
            page[off..off + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
        self
    }

    /// Sets the whole page `pfn`.
    pub fn page(&mut self, pfn: u64, bytes: &[u8]) -> &mut Self {
        assert_eq!(bytes.len() as u64, self.page_size);
        self.write_phys(pfn * self.page_size, bytes)
    }

    /// Marks `pfn` as RAM that the dump excluded (filtered).
    pub fn exclude(&mut self, pfn: u64) -> &mut Self {
        self.pages.remove(&pfn);
        self.excluded.insert(pfn);
        self
    }

    /// Sets `max_mapnr` (default: one past the highest page).
    pub fn max_pfn(&mut self, n: u64) -> &mut Self {
        self.max_pfn = Some(n);
        self
    }

    pub fn vmcoreinfo(&mut self, text: &str) -> &mut Self {
        self.vmcoreinfo = Some(text.to_string());
        self
    }

    pub fn prstatus(&mut self, pid: u32, regs: &[u64]) -> &mut Self {
        self.prstatus.push(Prstatus {
            pid,
            regs: regs.to_vec(),
        });
        self
    }

    /// Adds a QEMU CPU-state note (x86_64 layout) carrying `cr3`.
    pub fn qemu_cr3(&mut self, cr3: u64) -> &mut Self {
        self.qemu_cr3.push(cr3);
        self
    }

    /// The dumped pages (the oracle).
    pub fn pages(&self) -> &BTreeMap<u64, Vec<u8>> {
        &self.pages
    }

    pub fn excluded(&self) -> &BTreeSet<u64> {
        &self.excluded
    }

    fn max_mapnr(&self) -> u64 {
        let hi = self
            .pages
            .keys()
            .chain(self.excluded.iter())
            .max()
            .map_or(0, |p| p + 1);
        self.max_pfn.unwrap_or(hi).max(hi)
    }

    fn note(w: &mut Vec<u8>, be: bool, name: &str, ntype: u32, desc: &[u8]) {
        let mut h = W::new(be, 12);
        h.u32(0, name.len() as u32 + 1);
        h.u32(4, desc.len() as u32);
        h.u32(8, ntype);
        w.extend_from_slice(&h.buf);
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        n.resize(align4(n.len()), 0);
        w.extend_from_slice(&n);
        let mut d = desc.to_vec();
        d.resize(align4(d.len()), 0);
        w.extend_from_slice(&d);
    }

    /// The ELF notes: PRSTATUS per CPU, QEMU CPU states, VMCOREINFO. Also returns the offset and
    /// size of the VMCOREINFO descriptor inside the buffer.
    pub fn notes(&self) -> (Vec<u8>, Option<(usize, usize)>) {
        let be = self.arch.big_endian();
        let mut out = Vec::new();
        for p in &self.prstatus {
            let mut d = W::new(be, self.arch.prstatus_size());
            d.u32(32, p.pid);
            for (i, r) in p.regs.iter().enumerate() {
                d.u64(112 + 8 * i, *r);
            }
            d.buf.truncate(self.arch.prstatus_size());
            Self::note(&mut out, be, "CORE", 1, &d.buf);
        }
        for cr3 in &self.qemu_cr3 {
            // QEMUCPUState: version, size, 18 regs, 10 segments of 24 bytes, cr[5], gs base.
            let size = 8 + 18 * 8 + 10 * 24 + 5 * 8 + 8;
            let mut d = W::new(be, size);
            d.u32(0, 1);
            d.u32(4, size as u32);
            d.u64(8 + 18 * 8 + 10 * 24 + 3 * 8, *cr3);
            Self::note(&mut out, be, "QEMU", 0, &d.buf);
        }
        let mut vi_at = None;
        if let Some(vi) = &self.vmcoreinfo {
            let start = out.len() + 12 + align4("VMCOREINFO".len() + 1);
            vi_at = Some((start, vi.len()));
            Self::note(&mut out, be, "VMCOREINFO", 0, vi.as_bytes());
        }
        (out, vi_at)
    }

    /// An ELF64 core file. Excluded pages become `PT_LOAD`s with `p_filesz = 0`.
    pub fn build_elf(&self, opts: &ElfOpts) -> Vec<u8> {
        let ps = self.page_size;
        // Runs of consecutive dumped pages, and of consecutive excluded pages.
        let mut runs: Vec<(u64, u64, bool)> = Vec::new();
        let all: BTreeMap<u64, bool> = self
            .pages
            .keys()
            .map(|&p| (p, true))
            .chain(self.excluded.iter().map(|&p| (p, false)))
            .collect();
        for (&pfn, &dumped) in &all {
            match runs.last_mut() {
                Some((s, n, d)) if *s + *n == pfn && *d == dumped => *n += 1,
                _ => runs.push((pfn, 1, dumped)),
            }
        }
        // Emit PT_LOADs in reverse physical order: a reader must sort them.
        let loads: Vec<SynthLoad> = runs
            .iter()
            .rev()
            .map(|&(start, n, dumped)| SynthLoad {
                paddr: start * ps,
                vaddr: 0xffff_8880_0000_0000 + start * ps,
                memsz: n * ps,
                filesz: if dumped { n * ps } else { 0 },
                patches: Vec::new(),
            })
            .collect();
        self.build_elf_loads(&loads, opts)
    }

    /// The builder's memory at `[addr, addr + len)`, zeros where no page was written.
    pub fn mem(&self, addr: u64, len: u64) -> Vec<u8> {
        let ps = self.page_size;
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let a = addr + out.len() as u64;
            let off = (a % ps) as usize;
            let n = (len - out.len() as u64).min(ps - off as u64) as usize;
            match self.pages.get(&(a / ps)) {
                Some(p) => out.extend_from_slice(&p[off..off + n]),
                None => out.resize(out.len() + n, 0),
            }
        }
        out
    }

    /// An ELF64 core file with exactly the `PT_LOAD`s given, in the order given (they may
    /// overlap, as the kernel-image and RAM segments of a `/proc/vmcore` do). Each segment's
    /// file copy is the builder's memory over its first `filesz` bytes, then its patches.
    pub fn build_elf_loads(&self, loads: &[SynthLoad], opts: &ElfOpts) -> Vec<u8> {
        let be = self.arch.big_endian();
        let ps = self.page_size;
        let (notes, _) = self.notes();
        let nph = loads.len() + 1;
        let shnum = if opts.phdrs_after_shdrs || opts.pn_xnum {
            2
        } else {
            0
        };
        let shoff = 64;
        let phoff = if shnum > 0 { 64 + 64 * shnum } else { 64 };
        let notes_off = phoff + 56 * nph;
        let data_off = (notes_off + notes.len()).div_ceil(ps as usize) * ps as usize;
        let mut w = W::new(be, data_off);
        w.put(0, b"\x7fELF");
        w.put(4, &[2, if be { 2 } else { 1 }, 1]);
        w.u16(16, 4); // ET_CORE
        w.u16(18, self.arch.e_machine());
        w.u32(20, 1);
        w.u64(32, phoff as u64);
        w.u64(40, if shnum > 0 { shoff as u64 } else { 0 });
        w.u16(52, 64);
        w.u16(54, 56);
        w.u16(56, if opts.pn_xnum { 0xffff } else { nph as u16 });
        w.u16(58, if shnum > 0 { 64 } else { 0 });
        w.u16(60, shnum as u16);
        if shnum > 0 && opts.pn_xnum {
            w.u32(shoff + 44, nph as u32); // sh_info of section 0
        }
        // PT_NOTE
        w.u32(phoff, 4);
        w.u64(phoff + 8, notes_off as u64);
        w.u64(phoff + 32, notes.len() as u64);
        w.u64(phoff + 40, notes.len() as u64);
        w.put(notes_off, &notes);
        let mut data = Vec::new();
        for (i, l) in loads.iter().enumerate() {
            let ph = phoff + 56 * (i + 1);
            let off = data_off + data.len();
            w.u32(ph, 1);
            w.u32(ph + 4, 7);
            w.u64(ph + 8, off as u64);
            w.u64(ph + 16, l.vaddr);
            w.u64(ph + 24, l.paddr);
            w.u64(ph + 32, l.filesz);
            w.u64(ph + 40, l.memsz);
            let mut copy = self.mem(l.paddr, l.filesz);
            for (at, bytes) in &l.patches {
                copy[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
            }
            data.extend_from_slice(&copy);
        }
        let mut out = w.buf;
        out.extend_from_slice(&data);
        out
    }

    /// A kdump-compressed file.
    pub fn build_kdump(&self, opts: &KdumpOpts) -> KdumpImage {
        self.build_kdump_piece(opts, None)
    }

    /// The pieces of a split dump: `n` files, each with `split = 1` and a PFN range.
    pub fn build_split(&self, opts: &KdumpOpts, n: u64) -> Vec<KdumpImage> {
        let max = self.max_mapnr();
        let step = max.div_ceil(n).max(1);
        (0..n)
            .map(|i| {
                let lo = (i * step).min(max);
                let hi = ((i + 1) * step).min(max);
                self.build_kdump_piece(opts, Some((lo, hi)))
            })
            .collect()
    }

    fn build_kdump_piece(&self, opts: &KdumpOpts, split: Option<(u64, u64)>) -> KdumpImage {
        let be = self.arch.big_endian();
        let bs = self.page_size;
        let v = opts.header_version;
        let max_mapnr = self.max_mapnr();
        let (notes, vi_at) = self.notes();
        let sub_len = 104usize;
        let notes_at = bs as usize + sub_len;
        let sub_hdr_size = (sub_len + notes.len()).div_ceil(bs as usize) as u64;
        let bitmap_len = (max_mapnr.div_ceil(8)).div_ceil(bs).max(1) * bs;
        let bitmap_blocks = 2 * bitmap_len / bs;
        let bitmap1 = (1 + sub_hdr_size) * bs;
        let bitmap2 = bitmap1 + bitmap_len;
        let desc_table = bitmap2 + bitmap_len;
        let (lo, hi) = split.unwrap_or((0, max_mapnr));
        let dumped: Vec<u64> = self.pages.keys().copied().collect();
        let mine: Vec<u64> = dumped
            .iter()
            .copied()
            .filter(|p| *p >= lo && *p < hi)
            .collect();
        let drop_from = opts
            .incomplete_drop
            .map(|n| mine.len().saturating_sub(n))
            .unwrap_or(usize::MAX);
        let desc_end = desc_table + 24 * mine.len() as u64;
        let data_base = opts.data_offset.unwrap_or(desc_end).max(desc_end);

        let mut status = opts.codec.flag();
        if opts.incomplete_drop.is_some() {
            status |= 8;
        }
        let mut h = W::new(be, bs as usize);
        h.put(0, &opts.signature);
        h.u32(8, v as u32);
        if !opts.empty_utsname {
            let uts = [
                "Linux",
                "synth-host",
                self.release.as_str(),
                "#1 SMP",
                self.arch.uname_machine(),
                "(none)",
            ];
            for (i, s) in uts.iter().enumerate() {
                h.put(12 + 65 * i, s.as_bytes());
            }
        }
        h.u64(408, self.timestamp as u64);
        h.u64(416, 0);
        h.u32(424, status);
        h.u32(428, bs as u32);
        h.u32(432, sub_hdr_size as u32);
        h.u32(436, bitmap_blocks as u32);
        h.u32(440, max_mapnr.min(u32::MAX as u64) as u32);
        h.u32(460, self.prstatus.len() as u32);
        let mut head = h.buf;
        // Sub-header: fields by version.
        let mut s = W::new(be, sub_len);
        s.u64(0, opts.phys_base);
        if v >= 1 {
            s.u32(8, opts.dump_level as u32);
        }
        if v >= 2 {
            s.u32(12, split.is_some() as u32);
            s.u64(16, lo);
            s.u64(24, hi);
        }
        if v >= 3
            && let Some((o, n)) = vi_at
        {
            s.u64(32, (notes_at + o) as u64);
            s.u64(40, n as u64);
        }
        if v >= 4 {
            s.u64(48, notes_at as u64);
            s.u64(56, notes.len() as u64);
        }
        if v >= 6 {
            s.u64(80, lo);
            s.u64(88, hi);
            s.u64(96, max_mapnr);
        }
        head.extend_from_slice(&s.buf);
        head.extend_from_slice(&notes);
        head.resize(bitmap1 as usize, 0);
        // Bitmaps: the whole machine's, in every piece.
        let mut b1 = vec![0u8; bitmap_len as usize];
        let mut b2 = vec![0u8; bitmap_len as usize];
        for &p in self.pages.keys().chain(self.excluded.iter()) {
            b1[(p / 8) as usize] |= 1 << (p % 8);
        }
        for &p in &dumped {
            b2[(p / 8) as usize] |= 1 << (p % 8);
        }
        head.extend_from_slice(&b1);
        head.extend_from_slice(&b2);
        // Descriptors and data.
        let mut descs = W::new(be, 24 * mine.len());
        let mut data = Vec::new();
        for (i, pfn) in mine.iter().enumerate() {
            if i >= drop_from {
                continue; // incomplete: descriptor stays zero, no data
            }
            let page = &self.pages[pfn];
            let c = opts.codec.compress(page);
            let (bytes, flag) = if opts.codec != SynthCodec::Raw && (c.len() as u64) < bs {
                (c, opts.codec.flag())
            } else {
                (page.clone(), 0)
            };
            let off = data_base + data.len() as u64;
            descs.u64(24 * i, off);
            descs.u32(24 * i + 8, bytes.len() as u32);
            descs.u32(24 * i + 12, flag);
            descs.u64(24 * i + 16, 0);
            data.extend_from_slice(&bytes);
        }
        head.extend_from_slice(&descs.buf);
        let len = data_base + data.len() as u64;
        KdumpImage {
            chunks: vec![(0, head), (data_base, data)],
            len,
            block_size: bs,
            desc_table,
            desc_pfns: mine,
            bitmap1,
            bitmap2,
            big_endian: be,
        }
    }

    /// makedumpfile's flattened format for `image` written front to back, as `makedumpfile -F`
    /// streams a dump: records of at most `record` bytes, then the end marker.
    pub fn flatten_in_order(image: &KdumpImage, record: usize) -> Vec<u8> {
        let file = image.to_vec();
        let mut out = flat_header();
        for (o, chunk) in file.chunks(record).enumerate() {
            flat_record(&mut out, (o * record) as u64, chunk);
        }
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out
    }

    /// makedumpfile's flattened format for `image`: records of at most `record` bytes, emitted
    /// back to front, with a garbage pass over the first 64 KiB that later records overwrite.
    pub fn flatten(image: &KdumpImage, record: usize) -> Vec<u8> {
        let file = image.to_vec();
        let mut out = flat_header();
        let rec = flat_record;
        // Garbage first: the real records below must win.
        let garbage_len = file.len().min(65536);
        for off in (0..garbage_len).step_by(1000) {
            let n = 1000.min(garbage_len - off);
            rec(&mut out, off as u64, &vec![0xa5; n]);
        }
        let chunks: Vec<(usize, usize)> = (0..file.len())
            .step_by(record)
            .map(|o| (o, record.min(file.len() - o)))
            .collect();
        for &(o, n) in chunks.iter().rev() {
            rec(&mut out, o as u64, &file[o..o + n]);
        }
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out
    }
}

/// The 4096-byte header of makedumpfile's flattened format: signature, type 1, version 1.
fn flat_header() -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    out[..12].copy_from_slice(b"makedumpfile");
    out[16..24].copy_from_slice(&1i64.to_be_bytes());
    out[24..32].copy_from_slice(&1i64.to_be_bytes());
    out
}

/// Appends one flattened record: big-endian offset and size, then the bytes.
fn flat_record(out: &mut Vec<u8>, off: u64, bytes: &[u8]) {
    out.extend_from_slice(&(off as i64).to_be_bytes());
    out.extend_from_slice(&(bytes.len() as i64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A page of bytes derived from `seed` that compresses well (so codecs are really exercised).
pub fn compressible_page(seed: u64, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size];
    for (i, chunk) in p.chunks_mut(64).enumerate() {
        let v = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(i as u64 / 8);
        chunk[..8].copy_from_slice(&v.to_le_bytes());
    }
    p
}

/// A page of pseudo-random bytes (incompressible: stored raw even with a codec).
pub fn random_page(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
