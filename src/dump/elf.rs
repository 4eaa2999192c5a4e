//! ELF64 vmcores: `/proc/vmcore` copies, `makedumpfile -E` output and QEMU `dump-guest-memory`.
//!
//! Layout used (all integers in the byte order `e_ident[EI_DATA]` names):
//!
//! - ELF header: `e_phoff` u64 @32, `e_shoff` u64 @40, `e_phentsize` u16 @54, `e_phnum` u16 @56,
//!   `e_shentsize` u16 @58. Program headers sit wherever `e_phoff` says: QEMU writes them after
//!   two section headers, so nothing may assume they follow the ELF header.
//! - `e_phnum == PN_XNUM (0xffff)`: the real count is `sh_info` (u32 @44) of section header 0,
//!   which large QEMU dumps (more than 65534 RAM ranges) need. The count is only trusted once the
//!   whole table it implies lies inside the file, so it can never size an allocation by itself.
//! - Program header (56 bytes): `p_type` u32 @0, `p_offset` @8, `p_vaddr` @16, `p_paddr` @24,
//!   `p_filesz` @32, `p_memsz` @40. `PT_LOAD` maps `[p_paddr, p_paddr + p_memsz)`; only the first
//!   `p_filesz` bytes are in the file, the rest reads as zeros but is not "dumped" (makedumpfile
//!   -E shortens `p_filesz` for excluded pages at the end of a range).
//! - `PT_NOTE` segments hold the notes (see [`super::notes`]).
//!
//! # Truncated files are read
//!
//! A capture that ran out of disk or a copy cut short leaves a file whose segments extend past its
//! end. Like `crash`, which opens such a file with a warning, the reader keeps what is there: the
//! bytes of a segment past the end of the file are "not in the dump" (`is_dumped` false, reads
//! fail with [`DumpError::NotDumped`], exactly as for a filtered page), the notes still present
//! are read (iteration stops at the first note cut short), and [`PhysMem::truncation`] reports the
//! size the headers imply, the real size and the pages lost. Only the ELF header and the whole
//! program header table must be in the file; without them nothing can be placed.
//!
//! # Overlapping `PT_LOAD` segments are normal
//!
//! The crash ELF header a kernel prepares for its capture kernel (`crash_prepare_elf64_headers`,
//! kernel/kexec_file.c up to 6.6, kernel/crash_core.c since) starts with the `PT_NOTE`s, then,
//! when the architecture asks for it (`need_kernel_map`: x86_64 in arch/x86/kernel/crash.c
//! `prepare_elf_headers`, arm64, riscv), one `PT_LOAD` for the kernel image: `p_vaddr = _text`,
//! `p_paddr = __pa_symbol(_text)`, `p_memsz = _end - _text`. Then comes one `PT_LOAD` per RAM
//! range with `p_vaddr = __va(start)`. The image lies inside RAM, so its bytes are described
//! twice; the capture kernel's `/proc/vmcore` gives each segment its own file copy, and
//! `makedumpfile -E` keeps the pairs (splitting both at excluded pages). A reader that keeps
//! only one segment per address loses whatever the other described.
//!
//! So the segments are flattened at open into a sorted, disjoint list of pieces, each read from
//! the one segment that wins its bytes (a sweep over the segment boundaries with the candidate
//! segments in an ordered set: O(n log n) to build, a binary search per read, no allocation).
//! A byte's winner is, in order:
//!
//! 1. a segment that has the byte in the file over one that only covers it with its zero-filled
//!    `p_memsz` tail, and that over one whose file bytes for it were lost to truncation (so the
//!    byte is dumped if any segment still holds it);
//! 2. a *direct-map* segment over any other. Every RAM segment's `p_vaddr - p_paddr` is the same
//!    number (the direct map's base), while the image segment's is `_text - __pa_symbol(_text)`;
//!    the difference that covers the most bytes is taken as the direct map's (a tie goes to the
//!    lower difference: the direct map lies below the kernel image on x86_64 and arm64). This
//!    needs no per-architecture address layout and survives makedumpfile's splitting. (QEMU writes
//!    `p_vaddr = 0` without paging; its segments never overlap, so the rule never decides there.)
//! 3. the larger segment, then the earlier program header (a deterministic tie-break only).
//!
//! The copies should hold the same bytes. At open, the first page of up to [`SAMPLED_OVERLAPS`]
//! overlaps where two segments both have file bytes is compared; a difference is logged once at
//! debug level, naming the address and that the direct-map copy is read. Nothing else of the
//! dump is read at open.
//!
//! The segments' virtual addresses are exported ([`PhysMem::header_mappings`]) only as a
//! cross-check for the page tables (see `arch::address_space`), never in their place.
//!
//! ELF32 vmcores (i386, arm32) are refused: vmcore-report targets 64-bit kernels only.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use crate::addr::{Arch, Endian, PhysAddr, VirtAddr};

use super::notes::NoteInfo;
use super::source::ByteSource;
use super::{DumpError, HeaderMapping, PhysMem, PhysRange, Truncation};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: u64 = 0xffff;
const ET_CORE: u64 = 4;
const PHDR_SIZE: u64 = 56;
/// Overlaps whose copies are compared at open (one page each, at most).
pub const SAMPLED_OVERLAPS: usize = 64;
const SAMPLE_BYTES: u64 = 4096;
/// The largest page size believed from VMCOREINFO when counting lost pages (a hostile
/// `PAGESIZE` must not make a page span the whole map).
const MAX_PAGE: u64 = 1 << 20;

/// One `PT_LOAD` segment, as its program header says.
#[derive(Clone, Copy, Debug)]
struct Segment {
    /// Position among the program headers.
    index: usize,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    offset: u64,
    /// How many of the `filesz` bytes the file really holds (less when it is truncated).
    present: u64,
}

/// Where the bytes of a piece come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The file, from this offset of the piece's start.
    File(u64),
    /// A zero-filled `p_memsz` tail: reads as zeros, not dumped.
    Zero,
    /// File bytes the header promises past the end of a truncated file: not dumped, and reads
    /// fail as `NotDumped`, like filtered pages.
    Missing,
}

impl Src {
    /// Rank of the kind among the parts covering a byte: file bytes, then a zero tail, then
    /// bytes lost to truncation.
    fn rank(self) -> u8 {
        match self {
            Src::File(_) => 0,
            Src::Zero => 1,
            Src::Missing => 2,
        }
    }
}

/// A piece of the flattened physical map: `[start, end)` read from one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: u64,
    end: u64,
    src: Src,
}

/// Physical memory of an ELF vmcore.
#[derive(Debug)]
pub struct ElfMem {
    src: ByteSource,
    /// Sorted, disjoint, non-empty; adjacent pieces from one contiguous file range are merged.
    pieces: Vec<Piece>,
    ranges: Vec<PhysRange>,
    mappings: Vec<HeaderMapping>,
    /// The file size the headers imply, when larger than the file.
    expected_size: Option<u64>,
    /// Page size `pages_lost` is counted in (the opener sets VMCOREINFO's `PAGESIZE`).
    pub(super) page_size: u64,
}

/// The parse result: memory plus what the headers and notes said.
pub struct ElfDump {
    pub mem: ElfMem,
    pub endian: Endian,
    pub machine_arch: Option<Arch>,
    pub notes: NoteInfo,
}

fn bad(offset: u64, what: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        offset,
        what: what.into(),
    }
}

/// Parses the ELF headers and notes of `src` (which starts with `\x7fELF`).
pub fn open(src: ByteSource) -> Result<ElfDump, DumpError> {
    let ident = src.slice(0, 16, "ELF identification")?;
    let endian = match ident.get(5) {
        Some(1) => Endian::Little,
        Some(2) => Endian::Big,
        other => return Err(bad(5, format!("unknown ELF data encoding {other:?}"))),
    };
    match ident.get(4) {
        Some(2) => {}
        Some(1) => {
            return Err(DumpError::Unsupported(
                "ELF32 vmcore (32-bit kernel); only 64-bit dumps are supported".into(),
            ));
        }
        other => return Err(bad(4, format!("unknown ELF class {other:?}"))),
    }
    let ehdr = src.slice(0, 64, "ELF64 header")?;
    let rd = |off: usize, w: usize| endian.uint(ehdr.get(off..).unwrap_or(&[]), w).unwrap_or(0);
    let e_type = rd(16, 2);
    if e_type != ET_CORE {
        let kind = match e_type {
            1 => "a relocatable object",
            2 => "an executable",
            3 => "a shared object or PIE executable",
            _ => "not a core file",
        };
        return Err(DumpError::NotADump(format!(
            "ELF file of type {e_type} ({kind}), not a core dump (ET_CORE)"
        )));
    }
    let machine_arch = match rd(18, 2) {
        62 => Some(Arch::X86_64),
        183 => Some(Arch::Aarch64),
        22 => Some(Arch::S390x),
        _ => None,
    };
    let e_phoff = rd(32, 8);
    let e_shoff = rd(40, 8);
    let e_phentsize = rd(54, 2);
    let mut e_phnum = rd(56, 2);
    let e_shentsize = rd(58, 2);
    if e_phnum == PN_XNUM {
        // The real count lives in sh_info of section header 0.
        if e_shoff == 0 || e_shentsize < 64 {
            return Err(bad(
                40,
                "e_phnum is PN_XNUM but there is no section header 0",
            ));
        }
        let sh0 = src.slice(e_shoff, 64, "section header 0 (PN_XNUM)")?;
        e_phnum = endian.uint(sh0.get(44..).unwrap_or(&[]), 4).unwrap_or(0);
    }
    if e_phnum == 0 {
        return Err(bad(56, "ELF core file without program headers"));
    }
    if e_phentsize < PHDR_SIZE {
        return Err(bad(
            54,
            format!("e_phentsize {e_phentsize} is smaller than an ELF64 program header"),
        ));
    }
    let table_len = e_phnum
        .checked_mul(e_phentsize)
        .ok_or_else(|| bad(56, "program header table size overflows"))?;
    // The table must lie in the file: this bounds e_phnum (up to 2^32 - 1 with PN_XNUM) by the
    // file size before anything is allocated per program header.
    let table = src.slice(e_phoff, table_len, "program header table")?;

    let mut segments = Vec::new();
    let mut notes = NoteInfo::default();
    let file_len = src.len();
    // The end of the last byte any header places in the file.
    let mut expected_end = e_phoff + table_len;
    for i in 0..e_phnum {
        let at = (i * e_phentsize) as usize;
        let ph = table.get(at..at + PHDR_SIZE as usize).unwrap_or(&[]);
        let f = |off: usize, w: usize| endian.uint(ph.get(off..).unwrap_or(&[]), w).unwrap_or(0);
        let ph_off = e_phoff + at as u64;
        match f(0, 4) as u32 {
            PT_LOAD => {
                let (offset, filesz) = (f(8, 8), f(32, 8));
                let Some(end) = offset.checked_add(filesz) else {
                    return Err(bad(ph_off, "PT_LOAD file range wraps around"));
                };
                let seg = Segment {
                    index: i as usize,
                    offset,
                    vaddr: f(16, 8),
                    paddr: f(24, 8),
                    filesz,
                    memsz: f(40, 8),
                    // A truncated file holds only a prefix (maybe nothing) of the segment.
                    present: filesz.min(file_len.saturating_sub(offset)),
                };
                if seg.filesz > seg.memsz {
                    return Err(bad(ph_off, "PT_LOAD with p_filesz larger than p_memsz"));
                }
                if seg.paddr.checked_add(seg.memsz).is_none() {
                    return Err(bad(ph_off, "PT_LOAD physical range wraps around"));
                }
                expected_end = expected_end.max(end);
                if seg.memsz > 0 {
                    segments.push(seg);
                }
            }
            PT_NOTE => {
                let (offset, size) = (f(8, 8), f(32, 8));
                let Some(end) = offset.checked_add(size) else {
                    return Err(bad(ph_off, "PT_NOTE file range wraps around"));
                };
                expected_end = expected_end.max(end);
                // The notes a truncated file still holds are read; iteration stops at the first
                // note cut short.
                let present = size.min(file_len.saturating_sub(offset));
                if present > 0 {
                    notes.collect(src.slice(offset, present, "PT_NOTE contents")?, endian);
                }
            }
            _ => {}
        }
    }
    let direct = direct_map_delta(&segments);
    let pieces = flatten(&src, &segments, direct);
    let mut ranges: Vec<PhysRange> = Vec::new();
    for p in &pieces {
        match ranges.last_mut() {
            Some(r) if r.end.0 == p.start => r.end = PhysAddr(p.end),
            _ => ranges.push(PhysRange {
                start: PhysAddr(p.start),
                end: PhysAddr(p.end),
            }),
        }
    }
    let mappings = segments
        .iter()
        .filter(|s| s.vaddr != 0)
        .map(|s| HeaderMapping {
            vaddr: VirtAddr(s.vaddr),
            paddr: PhysAddr(s.paddr),
            len: s.memsz,
            direct_map: Some(s.vaddr.wrapping_sub(s.paddr)) == direct,
        })
        .collect();
    if expected_end > file_len {
        tracing::debug!(
            expected_end,
            file_len,
            "ELF dump is truncated: segment bytes past the end of the file are not in the dump"
        );
    }
    Ok(ElfDump {
        mem: ElfMem {
            src,
            pieces,
            ranges,
            mappings,
            expected_size: (expected_end > file_len).then_some(expected_end),
            page_size: 4096,
        },
        endian,
        machine_arch,
        notes,
    })
}

/// The `p_vaddr - p_paddr` difference shared by the most bytes: the direct map's.
fn direct_map_delta(segments: &[Segment]) -> Option<u64> {
    let mut deltas: Vec<(u64, u64)> = segments
        .iter()
        .map(|s| (s.vaddr.wrapping_sub(s.paddr), s.memsz))
        .collect();
    deltas.sort_unstable();
    let mut best: Option<(u128, u64)> = None;
    for group in deltas.chunk_by(|a, b| a.0 == b.0) {
        let total: u128 = group.iter().map(|&(_, n)| n as u128).sum();
        if best.is_none_or(|(t, _)| total > t) {
            best = Some((total, group[0].0));
        }
    }
    best.map(|(_, d)| d)
}

/// Which of several segments covering a byte wins it: smaller is better (see the module doc).
type Rank = (u8, bool, Reverse<u64>, usize);

/// Flattens the segments into sorted, disjoint pieces, each read from the segment that wins it.
fn flatten(src: &ByteSource, segments: &[Segment], direct: Option<u64>) -> Vec<Piece> {
    // Each segment is a file part, a part lost to truncation and a zero-fill tail, ranked
    // separately.
    struct Part {
        start: u64,
        src: Src,
        rank: Rank,
    }
    let mut parts: Vec<Part> = Vec::with_capacity(3 * segments.len());
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(6 * segments.len());
    for s in segments {
        let indirect = Some(s.vaddr.wrapping_sub(s.paddr)) != direct;
        let present_end = s.paddr + s.present;
        let file_end = s.paddr + s.filesz;
        let end = s.paddr + s.memsz;
        for (start, stop, src) in [
            (s.paddr, present_end, Src::File(s.offset)),
            (present_end, file_end, Src::Missing),
            (file_end, end, Src::Zero),
        ] {
            if start < stop {
                events.push((start, true, parts.len()));
                events.push((stop, false, parts.len()));
                parts.push(Part {
                    start,
                    src,
                    rank: (src.rank(), indirect, Reverse(s.memsz), s.index),
                });
            }
        }
    }
    events.sort_unstable_by_key(|&(at, _, _)| at);

    let mut active: BTreeSet<(Rank, usize)> = BTreeSet::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut overlaps = Overlaps::default();
    let mut i = 0;
    while let Some(&(at, _, _)) = events.get(i) {
        while let Some(&(x, starts, id)) = events.get(i)
            && x == at
        {
            if starts {
                active.insert((parts[id].rank, id));
            } else {
                active.remove(&(parts[id].rank, id));
            }
            i += 1;
        }
        let Some(&(next, _, _)) = events.get(i) else {
            break;
        };
        let mut candidates = active.iter();
        let Some(&(_, won)) = candidates.next() else {
            continue;
        };
        let from = match parts[won].src {
            Src::File(o) => Src::File(o + (at - parts[won].start)),
            other => other,
        };
        push_piece(
            &mut pieces,
            Piece {
                start: at,
                end: next,
                src: from,
            },
        );
        if let (Src::File(f), Some(&(rank, lost))) = (from, candidates.next())
            && let Src::File(g) = parts[lost].src
        {
            overlaps.check(src, at, next, f, g + (at - parts[lost].start), !rank.1);
        }
    }
    overlaps.report();
    pieces
}

/// Appends `p`, merging it into the last piece when it continues it (in memory and in the file).
fn push_piece(pieces: &mut Vec<Piece>, p: Piece) {
    if let Some(last) = pieces.last_mut()
        && last.end == p.start
    {
        let len = last.end - last.start;
        let continues = match (last.src, p.src) {
            (Src::File(a), Src::File(b)) => a.checked_add(len) == Some(b),
            (a, b) => a == b,
        };
        if continues {
            last.end = p.end;
            return;
        }
    }
    pieces.push(p);
}

/// The comparison of doubly described bytes, bounded by [`SAMPLED_OVERLAPS`] pages.
#[derive(Default)]
struct Overlaps {
    count: u64,
    bytes: u64,
    sampled: usize,
    differing: u64,
    first_difference: Option<(u64, bool)>,
}

impl Overlaps {
    /// `[start, end)` is read from file offset `won` and also stored at `lost`.
    fn check(
        &mut self,
        src: &ByteSource,
        start: u64,
        end: u64,
        won: u64,
        lost: u64,
        loser_direct: bool,
    ) {
        self.count += 1;
        self.bytes += end - start;
        if self.sampled >= SAMPLED_OVERLAPS {
            return;
        }
        self.sampled += 1;
        let n = (end - start).min(SAMPLE_BYTES);
        let (Ok(a), Ok(b)) = (
            src.slice(won, n, "overlapping PT_LOAD"),
            src.slice(lost, n, "overlapping PT_LOAD"),
        ) else {
            return;
        };
        if let Some(k) = a.iter().zip(b).position(|(x, y)| x != y) {
            self.differing += 1;
            self.first_difference
                .get_or_insert((start + k as u64, loser_direct));
        }
    }

    fn report(&self) {
        if self.count == 0 {
            return;
        }
        tracing::debug!(
            overlaps = self.count,
            bytes = self.bytes,
            sampled = self.sampled,
            "PT_LOAD segments describe some memory twice (the kernel image and its RAM range); \
             each byte is read from one copy, the direct-map segment's"
        );
        if let Some((addr, loser_direct)) = self.first_difference {
            tracing::debug!(
                differing = self.differing,
                sampled = self.sampled,
                "overlapping PT_LOAD copies disagree, first at phys {addr:#x}; reading the \
                 direct-map (RAM) segment's copy{}",
                if loser_direct {
                    " (both copies are direct-map segments: the larger one wins)"
                } else {
                    ""
                }
            );
        }
    }
}

impl ElfMem {
    /// The file offset the byte at physical `addr` is read from, if the file holds it (for
    /// tools and tests that patch a dump in place).
    pub fn file_offset(&self, addr: PhysAddr) -> Option<u64> {
        let p = self.pieces[self.piece(addr.0)?];
        match p.src {
            Src::File(off) => Some(off + (addr.0 - p.start)),
            Src::Zero | Src::Missing => None,
        }
    }

    /// Index of the piece holding `addr`.
    fn piece(&self, addr: u64) -> Option<usize> {
        let i = self
            .pieces
            .partition_point(|p| p.start <= addr)
            .checked_sub(1)?;
        (addr < self.pieces[i].end).then_some(i)
    }
}

impl PhysMem for ElfMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut done = 0usize;
        let mut i = self.piece(addr.0).ok_or(DumpError::OutOfRange { addr })?;
        while done < buf.len() {
            let at = addr.0 + done as u64;
            // Pieces are sorted and disjoint: the next byte is in piece i or in none.
            let p = match self.pieces.get(i) {
                Some(p) if p.start <= at && at < p.end => *p,
                _ => return Err(DumpError::OutOfRange { addr: PhysAddr(at) }),
            };
            let rel = at - p.start;
            let n = ((buf.len() - done) as u64).min(p.end - at);
            let out = &mut buf[done..done + n as usize];
            match p.src {
                Src::File(off) => {
                    out.copy_from_slice(self.src.slice(off + rel, n, "PT_LOAD page")?)
                }
                Src::Zero => out.fill(0),
                Src::Missing => return Err(DumpError::NotDumped { addr: PhysAddr(at) }),
            }
            done += n as usize;
            i += 1;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn is_dumped(&self, addr: PhysAddr) -> bool {
        let Some(i) = self.piece(addr.0) else {
            return false;
        };
        if !matches!(self.pieces[i].src, Src::File(_)) {
            return false;
        }
        if self.expected_size.is_none() {
            return true;
        }
        // In a truncated file, a page partly cut off is not dumped: look at the pieces its
        // other bytes fall in.
        let ps = self.page_size.clamp(1, MAX_PAGE);
        let (lo, hi) = (addr.0 / ps * ps, (addr.0 / ps * ps).saturating_add(ps));
        let first = self.pieces.partition_point(|p| p.end <= lo);
        !self.pieces[first..]
            .iter()
            .take_while(|p| p.start < hi)
            .any(|p| p.src == Src::Missing)
    }

    fn header_mappings(&self) -> &[HeaderMapping] {
        &self.mappings
    }

    /// `pages_lost` counts the pages touched by the pieces no segment holds in the file (after
    /// the overlap resolution, so a page another segment still holds is not counted; a page
    /// partly present is).
    fn release_resident(&self) {
        self.src.release_resident()
    }

    fn truncation(&self) -> Option<Truncation> {
        let expected = self.expected_size?;
        let ps = self.page_size.clamp(1, MAX_PAGE);
        let pages_lost = self
            .pieces
            .iter()
            .filter(|p| p.src == Src::Missing)
            .map(|p| p.end.div_ceil(ps) - p.start / ps)
            .sum();
        Some(Truncation {
            expected_size: Some(expected),
            actual_size: self.src.len(),
            pages_lost,
        })
    }
}
