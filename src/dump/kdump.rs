//! makedumpfile's kdump-compressed format (`KDUMP   `), also written by QEMU, and the older
//! `DISKDUMP` variant.
//!
//! The file is a sequence of blocks of `block_size` bytes (the dumped kernel's page size). Every
//! integer is in the dumped machine's byte order (s390x is big-endian) and word size; only 64-bit
//! targets are read. Layout:
//!
//! | block | content |
//! |---|---|
//! | 0 | `disk_dump_header`: `signature[8]` @0, `header_version` i32 @8, utsname 6 x `char[65]` @12, `timestamp` {tv_sec, tv_usec} @408, `status` u32 @424, `block_size` @428, `sub_hdr_size` @432 (blocks), `bitmap_blocks` @436, `max_mapnr` u32 @440 (obsolete), `nr_cpus` @460 |
//! | 1 .. 1+sub_hdr_size | `kdump_sub_header` (fields by version, below), then the crashed kernel's ELF notes and VMCOREINFO |
//! | then `bitmap_blocks` | two bitmaps of equal size: 1st = RAM pages, 2nd = dumped pages; bit `pfn & 7` of byte `pfn >> 3` |
//! | then | one 24-byte `page_desc_t` {`offset` i64 @0, `size` u32 @8, `flags` u32 @12, `page_flags` u64 @16} per set bit of the 2nd bitmap, in PFN order |
//! | then | page data |
//!
//! `kdump_sub_header`: `phys_base` @0 (all versions), `dump_level` i32 @8 (>= 1), `split` i32 @12
//! and `start_pfn`/`end_pfn` @16/@24 (>= 2), `offset_vmcoreinfo`/`size_vmcoreinfo` @32/@40 (>= 3),
//! `offset_note`/`size_note` @48/@56 (>= 4), `offset_eraseinfo`/`size_eraseinfo` @64/@72 (>= 5),
//! `start_pfn_64`/`end_pfn_64`/`max_mapnr_64` @80/@88/@96 (>= 6).
//!
//! A page's descriptor is found by the rank of its PFN among the set bits of the 2nd bitmap. The
//! bitmap is copied once into words with a cumulative popcount every 512 bits, so the rank (and
//! the descriptor) of any PFN is found in constant time. In a split dump (`makedumpfile --split`)
//! each file holds the descriptors of its own `[start_pfn, end_pfn)` only, so the rank is counted
//! from `start_pfn`.
//!
//! # Truncated files
//!
//! A file cut short (a capture that ran out of disk, an upload cut) is read, not refused: a
//! bitmap cut short reads as zeros past the end (those pages are not dumped), and a page whose
//! descriptor or data lies past the end of the file (or, in a cut flattened stream, was never
//! written) is not in the dump: `NotDumped`, like a filtered page. The loss is estimated at open
//! from the headers ([`PhysMem::truncation`]): makedumpfile and QEMU write the page data in
//! descriptor order, except the pages that share one zero page (the first data block), so a
//! binary search over the descriptors finds the first one whose data is gone, in O(log n) reads;
//! the descriptors from there on (up to 2^20 of them) are then checked one by one, so the pages
//! sharing the zero page are not counted as lost. Past that, `pages_lost` is an upper bound.
//!
//! A descriptor's flags name the codec (see [`super::codec`]); a page without codec flag whose size
//! equals the block size is stored raw. `DUMP_DH_COMPRESSED_INCOMPLETE` in the header status means
//! the dump ran out of space: descriptors past that point are zero or missing, and such pages are
//! reported as not dumped rather than corrupt.

use std::borrow::Cow;
use std::path::Path;

use crate::addr::{Endian, Pfn, PhysAddr};

use super::cache::PageCache;
use super::codec::{self, Codec};
use super::notes::NoteInfo;
use super::source::ByteSource;
use super::{DumpError, HeaderUtsname, PhysMem, PhysRange, Truncation};

/// A kdump file's bytes: the file itself, or a flattened stream seen through its index.
pub trait KdumpFile: Send + Sync + std::fmt::Debug {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn path(&self) -> &Path;
    /// `len` bytes at kdump-file `offset`.
    fn read(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, DumpError>;
    /// Whether the file really holds `[offset, offset + len)`: false past the end of a truncated
    /// file, or where a cut flattened stream never wrote.
    fn written(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|e| e <= self.len())
    }
    /// See [`super::PhysMem::release_resident`].
    fn release_resident(&self) {}
    /// The size of the file on disk and, for a stream cut inside a record, the size it should
    /// have at least.
    fn stored_size(&self) -> (u64, Option<u64>) {
        (self.len(), None)
    }
    /// Whether the file is known to be cut short by its own framing (a flattened stream without
    /// its end marker).
    fn cut(&self) -> bool {
        false
    }
}

impl KdumpFile for ByteSource {
    fn len(&self) -> u64 {
        ByteSource::len(self)
    }
    fn path(&self) -> &Path {
        ByteSource::path(self)
    }
    fn read(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, DumpError> {
        self.slice(offset, len, what).map(Cow::Borrowed)
    }
    fn release_resident(&self) {
        ByteSource::release_resident(self)
    }
}

const HEADER_SIZE: u64 = 464;
const SUB_HEADER_SIZE: u64 = 104;
const DESC_SIZE: u64 = 24;
/// Metadata areas larger than this are refused as corrupt rather than read.
const MAX_META: u64 = 64 << 20;

/// `disk_dump_header`, with its makedumpfile field names.
#[derive(Clone, Debug)]
pub struct DiskDumpHeader {
    pub signature: [u8; 8],
    pub header_version: i32,
    pub utsname: HeaderUtsname,
    pub timestamp_sec: i64,
    pub status: u32,
    pub block_size: u32,
    pub sub_hdr_size: u32,
    pub bitmap_blocks: u32,
    pub max_mapnr: u32,
    pub nr_cpus: i32,
}

/// `kdump_sub_header`; fields absent in the file's header version are `None`.
#[derive(Clone, Debug, Default)]
pub struct KdumpSubHeader {
    pub phys_base: u64,
    pub dump_level: Option<i32>,
    pub split: bool,
    pub start_pfn: Option<u64>,
    pub end_pfn: Option<u64>,
    pub vmcoreinfo: Option<(u64, u64)>,
    pub note: Option<(u64, u64)>,
    pub eraseinfo: Option<(u64, u64)>,
    pub max_mapnr_64: Option<u64>,
}

fn corrupt(offset: u64, what: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        offset,
        what: what.into(),
    }
}

fn sane(version: u32, block_size: u32) -> bool {
    version <= 64 && block_size.is_power_of_two() && (512..=(1 << 20)).contains(&block_size)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(&[])).into_owned()
}

/// Parses the main header, detecting the byte order from which reading makes `header_version`
/// and `block_size` sane.
pub fn parse_header(file: &dyn KdumpFile) -> Result<(DiskDumpHeader, Endian), DumpError> {
    let h = file.read(0, HEADER_SIZE, "kdump disk_dump_header")?;
    let h: &[u8] = &h;
    let u32at = |e: Endian, off: usize| e.uint(h.get(off..).unwrap_or(&[]), 4).unwrap_or(0);
    let endian = [Endian::Little, Endian::Big]
        .into_iter()
        .find(|&e| sane(u32at(e, 8) as u32, u32at(e, 428) as u32));
    let Some(endian) = endian else {
        // A 32-bit target has an 8-byte timeval, moving block_size to @416.
        if [Endian::Little, Endian::Big]
            .into_iter()
            .any(|e| sane(u32at(e, 8) as u32, u32at(e, 416) as u32))
        {
            return Err(DumpError::Unsupported(
                "kdump file of a 32-bit kernel; only 64-bit dumps are supported".into(),
            ));
        }
        return Err(corrupt(
            8,
            "kdump header_version/block_size are not sane in either byte order",
        ));
    };
    let rd = |off: usize, w: usize| endian.uint(h.get(off..).unwrap_or(&[]), w).unwrap_or(0);
    let mut signature = [0u8; 8];
    signature.copy_from_slice(h.get(..8).unwrap_or(&[0; 8]));
    let uts = |i: usize| cstr(h.get(12 + 65 * i..12 + 65 * (i + 1)).unwrap_or(&[]));
    let hdr = DiskDumpHeader {
        signature,
        header_version: rd(8, 4) as i32,
        utsname: HeaderUtsname {
            sysname: uts(0),
            nodename: uts(1),
            release: uts(2),
            version: uts(3),
            machine: uts(4),
            domainname: uts(5),
        },
        timestamp_sec: rd(408, 8) as i64,
        status: rd(424, 4) as u32,
        block_size: rd(428, 4) as u32,
        sub_hdr_size: rd(432, 4) as u32,
        bitmap_blocks: rd(436, 4) as u32,
        max_mapnr: rd(440, 4) as u32,
        nr_cpus: rd(460, 4) as i32,
    };
    Ok((hdr, endian))
}

/// Parses the sub-header at block 1, reading only the fields the header version defines.
pub fn parse_sub_header(
    file: &dyn KdumpFile,
    hdr: &DiskDumpHeader,
    endian: Endian,
) -> Result<KdumpSubHeader, DumpError> {
    let at = hdr.block_size as u64;
    let s = file.read(at, SUB_HEADER_SIZE, "kdump_sub_header")?;
    let rd = |off: usize, w: usize| endian.uint(s.get(off..).unwrap_or(&[]), w).unwrap_or(0);
    let v = hdr.header_version;
    let pair = |off: usize| {
        let (o, n) = (rd(off, 8), rd(off + 8, 8));
        (n != 0).then_some((o, n))
    };
    Ok(KdumpSubHeader {
        phys_base: rd(0, 8),
        dump_level: (v >= 1).then(|| rd(8, 4) as i32),
        split: v >= 2 && rd(12, 4) != 0,
        start_pfn: if v >= 6 {
            Some(rd(80, 8))
        } else {
            (v >= 2).then(|| rd(16, 8))
        },
        end_pfn: if v >= 6 {
            Some(rd(88, 8))
        } else {
            (v >= 2).then(|| rd(24, 8))
        },
        vmcoreinfo: if v >= 3 { pair(32) } else { None },
        note: if v >= 4 { pair(48) } else { None },
        eraseinfo: if v >= 5 { pair(64) } else { None },
        max_mapnr_64: (v >= 6).then(|| rd(96, 8)),
    })
}

/// A bitmap held as little-endian words, with a cumulative popcount every 8 words.
#[derive(Debug)]
struct Bitmap {
    words: Vec<u64>,
    /// `ranks[k]` = set bits in `words[..8k]`.
    ranks: Vec<u64>,
    nbits: u64,
}

impl Bitmap {
    fn new(bytes: &[u8], nbits: u64, with_rank: bool) -> Bitmap {
        let words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect();
        let mut ranks = Vec::new();
        if with_rank {
            let mut total = 0u64;
            for block in words.chunks(8) {
                ranks.push(total);
                total += block.iter().map(|w| w.count_ones() as u64).sum::<u64>();
            }
            // The count of the whole bitmap: `rank(nbits)` when nbits ends a block of 8 words.
            ranks.push(total);
        }
        Bitmap {
            words,
            ranks,
            nbits,
        }
    }

    fn get(&self, bit: u64) -> bool {
        bit < self.nbits
            && self
                .words
                .get((bit / 64) as usize)
                .is_some_and(|w| w >> (bit % 64) & 1 == 1)
    }

    /// Set bits strictly below `bit` (`bit <= nbits`). Past the words held (a bitmap cut short)
    /// every bit is clear, so the rank stays the whole count: ranks never decrease.
    fn rank(&self, bit: u64) -> u64 {
        let w = (bit / 64) as usize;
        let sb = w / 8;
        if sb >= self.ranks.len() {
            return self.ranks.last().copied().unwrap_or(0);
        }
        let mut r = self.ranks[sb];
        for i in sb * 8..w {
            r += self.words.get(i).map_or(0, |x| x.count_ones() as u64);
        }
        let rem = bit % 64;
        if rem > 0 {
            r += self
                .words
                .get(w)
                .map_or(0, |x| (x & ((1u64 << rem) - 1)).count_ones() as u64);
        }
        r
    }

    /// Runs of set bits within `[lo, hi)`, as half-open bit ranges.
    fn runs(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        // Past the words held (a bitmap cut short by the end of the file) every bit is clear:
        // the loop stops there rather than walking the 2^32 bits a header can claim.
        let held = (self.words.len() as u64).saturating_mul(64);
        let hi = hi.min(self.nbits).min(held);
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut bit = lo;
        while bit < hi {
            let w = self.words.get((bit / 64) as usize).copied().unwrap_or(0);
            // Skip whole empty or full words quickly.
            if bit % 64 == 0 && (w == 0 || w == u64::MAX) && bit + 64 <= hi {
                if w == u64::MAX {
                    push_run(&mut out, bit, bit + 64);
                }
                bit += 64;
                continue;
            }
            if w >> (bit % 64) & 1 == 1 {
                push_run(&mut out, bit, bit + 1);
            }
            bit += 1;
        }
        out
    }
}

fn push_run(out: &mut Vec<(u64, u64)>, s: u64, e: u64) {
    match out.last_mut() {
        Some(last) if last.1 == s => last.1 = e,
        _ => out.push((s, e)),
    }
}

/// Physical memory of one kdump-compressed file (or one piece of a split dump).
#[derive(Debug)]
pub struct KdumpMem {
    file: Box<dyn KdumpFile>,
    block_size: u64,
    endian: Endian,
    ram: Bitmap,
    dumped: Bitmap,
    /// PFNs this file describes: `[pfn_lo, pfn_hi)`.
    pfn_lo: u64,
    pfn_hi: u64,
    /// Rank of `pfn_lo` in the dumped bitmap (non-zero only in split pieces).
    rank_base: u64,
    desc_base: u64,
    incomplete: bool,
    ranges: Vec<PhysRange>,
    cache: PageCache,
    /// PFNs the bitmaps can describe (`max_mapnr` bounded by the bitmap size).
    nbits: u64,
    truncation: Option<Truncation>,
}

/// The parse result: memory plus what the headers and notes said.
#[derive(Debug)]
pub struct KdumpDump {
    pub mem: KdumpMem,
    pub header: DiskDumpHeader,
    pub sub: Option<KdumpSubHeader>,
    pub endian: Endian,
    pub notes: NoteInfo,
    pub vmcoreinfo: Option<String>,
    pub max_mapnr: u64,
}

/// Opens a kdump-compressed file (the signature was already checked by the caller).
pub fn open(file: Box<dyn KdumpFile>) -> Result<KdumpDump, DumpError> {
    let (header, endian) = parse_header(&*file)?;
    let bs = header.block_size as u64;
    let is_kdump = &header.signature == b"KDUMP   ";
    let sub = if is_kdump {
        Some(parse_sub_header(&*file, &header, endian)?)
    } else {
        None
    };
    let max_mapnr = sub
        .as_ref()
        .and_then(|s| s.max_mapnr_64)
        .unwrap_or(header.max_mapnr as u64);

    let bitmap_off = (1 + header.sub_hdr_size as u64) * bs;
    if header.bitmap_blocks % 2 != 0 {
        return Err(corrupt(
            436,
            format!("odd bitmap_blocks {}", header.bitmap_blocks),
        ));
    }
    let half = header.bitmap_blocks as u64 / 2 * bs;
    let nbits = max_mapnr.min(half.saturating_mul(8));
    if nbits < max_mapnr {
        tracing::warn!(
            max_mapnr,
            nbits,
            "bitmaps are shorter than max_mapnr; pages past them are out of range"
        );
    }
    // The bitmaps are read into memory: 1/32768 of the RAM they describe, each.
    if half > MAX_META * 8 {
        return Err(corrupt(436, format!("bitmaps of {half:#x} bytes each")));
    }
    // A file cut inside its bitmaps keeps what is there: the missing bits read as zero (not
    // dumped), and they count as lost pages.
    let (dumped_bytes, dumped_cut) =
        read_prefix(&*file, bitmap_off + half, half, "second (dumped) bitmap")?;
    let dumped = Bitmap::new(&dumped_bytes, nbits, true);
    drop(dumped_bytes);
    let (ram_bytes, _) = read_prefix(&*file, bitmap_off, half, "first (RAM) bitmap")?;
    let mut ram = Bitmap::new(&ram_bytes, nbits, false);
    drop(ram_bytes);
    // A dumped page is RAM even if bitmap 1 forgot it: otherwise it would read but lie outside
    // `ranges()`.
    let mut only_dumped = 0u64;
    for (r, d) in ram.words.iter_mut().zip(&dumped.words) {
        only_dumped += (d & !*r).count_ones() as u64;
        *r |= d;
    }
    if only_dumped > 0 {
        tracing::warn!(
            only_dumped,
            "pages marked dumped in bitmap 2 but not RAM in bitmap 1; counted as RAM"
        );
    }
    let desc_base = bitmap_off + 2 * half;

    let (pfn_lo, pfn_hi) = match &sub {
        Some(s) if s.split => {
            let lo = s.start_pfn.unwrap_or(0);
            let hi = s.end_pfn.unwrap_or(max_mapnr).min(nbits);
            if lo > hi {
                return Err(corrupt(
                    bs + 80,
                    format!("split piece with start_pfn {lo:#x} above end_pfn {hi:#x}"),
                ));
            }
            (lo, hi)
        }
        _ => (0, nbits),
    };
    let rank_base = dumped.rank(pfn_lo);
    let ranges = ram
        .runs(pfn_lo, pfn_hi)
        .into_iter()
        .map(|(s, e)| PhysRange {
            start: PhysAddr(s * bs),
            end: PhysAddr(e * bs),
        })
        .collect();

    let mut mem = KdumpMem {
        file,
        block_size: bs,
        endian,
        ram,
        dumped,
        pfn_lo,
        pfn_hi,
        rank_base,
        desc_base,
        incomplete: header.status & codec::DUMP_DH_COMPRESSED_INCOMPLETE != 0,
        ranges,
        cache: PageCache::new(bs as usize),
        nbits,
        truncation: None,
    };
    mem.truncation = mem.find_truncation(dumped_cut.min(nbits));
    let file: &dyn KdumpFile = &*mem.file;

    let mut notes = NoteInfo::default();
    let mut vmcoreinfo = None;
    if let Some(s) = &sub {
        if let Some((off, size)) = s.note {
            match read_meta(file, off, size, "ELF notes") {
                Ok(buf) => notes.collect(&buf, endian),
                Err(e) => tracing::warn!("kdump notes unreadable: {e}"),
            }
        }
        if let Some((off, size)) = s.vmcoreinfo {
            match read_meta(file, off, size, "VMCOREINFO") {
                Ok(buf) => {
                    vmcoreinfo = Some(
                        String::from_utf8_lossy(&buf)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                }
                Err(e) => tracing::warn!("kdump VMCOREINFO unreadable: {e}"),
            }
        }
    }
    if vmcoreinfo.is_none() {
        vmcoreinfo = notes.vmcoreinfo.clone();
    }

    Ok(KdumpDump {
        mem,
        header,
        sub,
        endian,
        notes,
        vmcoreinfo,
        max_mapnr,
    })
}

/// Up to `len` bytes at `off`: those the file holds (a file cut short gives fewer), and how many
/// bits of a bitmap that length loses.
fn read_prefix<'a>(
    file: &'a dyn KdumpFile,
    off: u64,
    len: u64,
    what: &str,
) -> Result<(Cow<'a, [u8]>, u64), DumpError> {
    let present = len.min(file.len().saturating_sub(off));
    if present < len {
        tracing::debug!(
            off,
            len,
            present,
            "kdump {what} cut short by the end of the file"
        );
    }
    let bits_lost = (len - present).saturating_mul(8);
    if present == 0 {
        // The file ends before the area starts (an offset past the end cannot even be sliced).
        return Ok((Cow::Borrowed(&[]), bits_lost));
    }
    Ok((file.read(off, present, what)?, bits_lost))
}

fn read_meta(file: &dyn KdumpFile, off: u64, size: u64, what: &str) -> Result<Vec<u8>, DumpError> {
    if size > MAX_META {
        return Err(corrupt(off, format!("{what} of {size:#x} bytes")));
    }
    Ok(file.read(off, size, what)?.into_owned())
}

/// A page's bytes: borrowed from the file (raw pages) or a cached decompressed copy.
pub enum Page<'a> {
    Borrowed(Cow<'a, [u8]>),
    Cached(std::sync::Arc<[u8]>),
}

impl std::ops::Deref for Page<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Page::Borrowed(c) => c,
            Page::Cached(a) => a,
        }
    }
}

impl KdumpMem {
    pub fn pfn_range(&self) -> (u64, u64) {
        (self.pfn_lo, self.pfn_hi)
    }

    /// PFNs the bitmaps describe (the whole machine, also in a split piece).
    pub fn pfn_limit(&self) -> u64 {
        self.nbits
    }

    /// The size of the file on disk.
    pub fn file_size(&self) -> u64 {
        self.file.stored_size().0
    }

    /// File offset of this file's `idx`-th descriptor.
    fn desc_offset(&self, idx: u64) -> Result<u64, DumpError> {
        idx.checked_mul(DESC_SIZE)
            .and_then(|o| o.checked_add(self.desc_base))
            .ok_or_else(|| corrupt(self.desc_base, "descriptor offset overflows"))
    }

    /// `(offset, size, flags)` of the descriptor at `desc_off`.
    fn descriptor(&self, desc_off: u64) -> Result<(u64, u64, u64), DumpError> {
        let desc = self.file.read(desc_off, DESC_SIZE, "page descriptor")?;
        let e = self.endian;
        let field = |off: usize, w: usize| e.uint(desc.get(off..).unwrap_or(&[]), w).unwrap_or(0);
        Ok((field(0, 8), field(8, 4), field(12, 4)))
    }

    /// Whether the `idx`-th descriptor's page is lost: `Some(true)` when the descriptor or its
    /// data is not in the file (or the descriptor is zero in an incomplete dump), `Some(false)`
    /// when both are, `None` for a descriptor pointing into the first data block (the zero page
    /// many descriptors share), which says nothing about where the file ends.
    fn lost(&self, idx: u64, data_start: u64) -> Option<bool> {
        let desc_off = self.desc_offset(idx).ok()?;
        if !self.file.written(desc_off, DESC_SIZE) {
            return Some(true);
        }
        let (offset, size, _) = self.descriptor(desc_off).ok()?;
        if size == 0 && offset == 0 {
            return Some(true);
        }
        if offset < data_start.saturating_add(self.block_size) || size > self.block_size {
            return None;
        }
        Some(!self.file.written(offset, size))
    }

    /// Whether the descriptor and the data of dumped page `pfn` are in the file.
    fn stored(&self, pfn: u64) -> bool {
        let Ok(desc_off) = self.desc_offset(self.dumped.rank(pfn).saturating_sub(self.rank_base))
        else {
            return false;
        };
        self.file.written(desc_off, DESC_SIZE)
            && self.descriptor(desc_off).is_ok_and(|(offset, size, _)| {
                (1..=self.block_size).contains(&size) && self.file.written(offset, size)
            })
    }

    /// The truncation of this file, from its headers and O(log n) descriptors (see the module
    /// doc); `bitmap_bits_lost` bits of the dumped bitmap were past the end of the file.
    fn find_truncation(&self, bitmap_bits_lost: u64) -> Option<Truncation> {
        /// Descriptors looked at from a probe to find one not pointing at the shared zero page.
        const WINDOW: u64 = 64;
        let n = self.dumped.rank(self.pfn_hi).saturating_sub(self.rank_base);
        let data_start = self.desc_offset(n).ok()?;
        // The size the headers imply: the end of the data of the last descriptor that does not
        // point at the shared zero page (looked for among the last TAIL), or at least the end of
        // the descriptor table. `None`: the last descriptor itself is past the end.
        const TAIL: u64 = 4096;
        let last_desc_written = n
            .checked_sub(1)
            .and_then(|i| self.desc_offset(i).ok())
            .is_none_or(|d| self.file.written(d, DESC_SIZE));
        let last_data_end = last_desc_written.then(|| {
            (n.saturating_sub(TAIL)..n)
                .rev()
                .filter_map(|i| self.descriptor(self.desc_offset(i).ok()?).ok())
                .find(|&(o, sz, _)| o >= data_start.saturating_add(self.block_size) || sz == 0)
                .and_then(|(o, sz, _)| o.checked_add(sz))
                .unwrap_or(0)
        });
        let kdump_end = data_start.max(last_data_end.unwrap_or(0));
        let short = kdump_end > self.file.len() || last_data_end.is_none();
        if !short && !self.file.cut() && bitmap_bits_lost == 0 {
            return None;
        }
        let mut lo = 0u64;
        if self.file.written(data_start, 1) || n == 0 {
            // Invariant: every descriptor below `lo` (pointing past the zero page) is intact.
            let mut hi = n;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let probe = (mid..hi.min(mid.saturating_add(WINDOW)))
                    .find_map(|j| self.lost(j, data_start).map(|l| (j, l)));
                match probe {
                    Some((j, false)) => lo = j + 1,
                    _ => hi = mid,
                }
            }
        }
        // The descriptors from `lo` on are checked one by one, up to EXACT of them: pages
        // sharing the zero page (still present) are not lost. Past EXACT, every descriptor
        // counts (the upper bound).
        const EXACT: u64 = 1 << 20;
        let checked = (n - lo).min(EXACT);
        let lost_checked = (lo..lo + checked)
            .filter(|&j| {
                self.desc_offset(j).is_ok_and(|d| {
                    !self.file.written(d, DESC_SIZE)
                        || self.descriptor(d).is_ok_and(|(o, sz, _)| {
                            sz == 0 || sz > self.block_size || !self.file.written(o, sz)
                        })
                })
            })
            .count() as u64;
        let pages_lost = (n - lo - checked + lost_checked).saturating_add(bitmap_bits_lost);
        let (actual_size, stream_expected) = self.file.stored_size();
        // In a flattened stream the kdump offsets say nothing of the stream's size: only a
        // record cut short tells it. `None`: a stream cut at a record boundary.
        let expected_size = if self.file.cut() {
            stream_expected
        } else {
            Some(kdump_end.max(actual_size))
        };
        Some(Truncation {
            expected_size,
            actual_size,
            pages_lost,
        })
    }

    pub fn page_size(&self) -> u64 {
        self.block_size
    }

    /// Reads (and if needed decompresses) the page `pfn`.
    pub fn page(&self, pfn: u64) -> Result<Page<'_>, DumpError> {
        let addr = PhysAddr(pfn.wrapping_mul(self.block_size));
        if pfn < self.pfn_lo || pfn >= self.pfn_hi {
            return Err(DumpError::OutOfRange { addr });
        }
        if !self.dumped.get(pfn) {
            return Err(if self.ram.get(pfn) {
                DumpError::NotDumped { addr }
            } else {
                DumpError::OutOfRange { addr }
            });
        }
        if let Some(p) = self.cache.get(pfn) {
            return Ok(Page::Cached(p));
        }
        let idx = self.dumped.rank(pfn).saturating_sub(self.rank_base);
        let desc_off = self.desc_offset(idx)?;
        // A descriptor past the end of a truncated file: the page is not in the dump.
        if !self.file.written(desc_off, DESC_SIZE) {
            return Err(DumpError::NotDumped { addr });
        }
        let (offset, size, flags) = self.descriptor(desc_off)?;
        if size == 0 && offset == 0 && self.incomplete {
            return Err(DumpError::NotDumped { addr });
        }
        if size == 0 || size > self.block_size {
            return Err(corrupt(
                desc_off,
                format!("page descriptor of {} has size {size:#x}", Pfn(pfn)),
            ));
        }
        let codec = Codec::from_flags(flags as u32).map_err(|more| {
            corrupt(
                desc_off,
                format!(
                    "page descriptor of {} names several codecs ({more:#x})",
                    Pfn(pfn)
                ),
            )
        })?;
        if !self.file.written(offset, size) {
            return Err(DumpError::NotDumped { addr });
        }
        let data = self.file.read(offset, size, "page data")?;
        match codec {
            None => {
                if size != self.block_size {
                    return Err(corrupt(
                        desc_off,
                        format!(
                            "uncompressed page {} stored in {size:#x} bytes, not one page",
                            Pfn(pfn)
                        ),
                    ));
                }
                Ok(Page::Borrowed(data))
            }
            Some(c) => {
                let page = codec::decompress(c, &data, self.block_size as usize, Pfn(pfn))?;
                let page: std::sync::Arc<[u8]> = page.into();
                self.cache.insert(pfn, page.clone());
                Ok(Page::Cached(page))
            }
        }
    }
}

impl PhysMem for KdumpMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        read_paged(self.block_size, addr, buf, |pfn| self.page(pfn))
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn is_dumped(&self, addr: PhysAddr) -> bool {
        let pfn = addr.0 / self.block_size;
        if !(pfn >= self.pfn_lo && pfn < self.pfn_hi && self.dumped.get(pfn)) {
            return false;
        }
        // In a truncated file, a page is dumped only if its descriptor and data are there.
        self.truncation.is_none() || self.stored(pfn)
    }

    fn truncation(&self) -> Option<Truncation> {
        self.truncation
    }

    fn release_resident(&self) {
        self.file.release_resident()
    }
}

/// Reads `buf` page by page through `page`.
pub fn read_paged<'a, F>(
    page_size: u64,
    addr: PhysAddr,
    buf: &mut [u8],
    page: F,
) -> Result<(), DumpError>
where
    F: Fn(u64) -> Result<Page<'a>, DumpError>,
{
    let mut done = 0usize;
    while done < buf.len() {
        let at = addr
            .0
            .checked_add(done as u64)
            .ok_or(DumpError::OutOfRange { addr })?;
        let pfn = at / page_size;
        let in_page = (at % page_size) as usize;
        let p = page(pfn)?;
        let n = (buf.len() - done).min(page_size as usize - in_page);
        let src = p
            .get(in_page..in_page + n)
            .ok_or_else(|| corrupt(0, format!("page {} shorter than the page size", Pfn(pfn))))?;
        buf[done..done + n].copy_from_slice(src);
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_matches_a_naive_count() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let bytes: Vec<u8> = (0..1000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mix dense, sparse, empty and full stretches.
                match (i / 100) % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => x as u8,
                    _ => (x as u8) & (x >> 8) as u8,
                }
            })
            .collect();
        let nbits = bytes.len() as u64 * 8 - 3;
        let bm = Bitmap::new(&bytes, nbits, true);
        let bit = |i: u64| bytes[(i / 8) as usize] >> (i % 8) & 1 == 1;
        let mut naive = 0u64;
        for i in 0..nbits {
            assert_eq!(bm.rank(i), naive, "rank({i})");
            assert_eq!(bm.get(i), bit(i), "get({i})");
            naive += bit(i) as u64;
        }
        assert!(!bm.get(nbits));
        assert_eq!(bm.rank(nbits), naive, "rank(nbits)");
        // Past the words held, the rank is the whole count (a bitmap cut short).
        let held: u64 = bytes.iter().map(|b| b.count_ones() as u64).sum();
        assert_eq!(bm.rank(nbits + 100_000), held);
        // A bitmap ending exactly at a block of 8 words: its full count too.
        let full = Bitmap::new(&[0xff; 128], 1024, true);
        assert_eq!(full.rank(1024), 1024);
        assert_eq!(full.rank(512), 512);
        let runs = bm.runs(0, nbits);
        let from_runs: u64 = runs.iter().map(|(s, e)| e - s).sum();
        assert_eq!(from_runs, naive);
        assert!(runs.windows(2).all(|w| w[0].1 < w[1].0));
    }
}
