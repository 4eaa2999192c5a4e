//! ELF64 vmcores: `/proc/vmcore` copies, `makedumpfile -E` output and QEMU `dump-guest-memory`.
//!
//! Layout used (all integers in the byte order `e_ident[EI_DATA]` names):
//!
//! - ELF header: `e_phoff` u64 @32, `e_shoff` u64 @40, `e_phentsize` u16 @54, `e_phnum` u16 @56,
//!   `e_shentsize` u16 @58. Program headers sit wherever `e_phoff` says: QEMU writes them after
//!   two section headers, so nothing may assume they follow the ELF header.
//! - `e_phnum == PN_XNUM (0xffff)`: the real count is `sh_info` (u32 @44) of section header 0,
//!   which large QEMU dumps (more than 65534 RAM ranges) need.
//! - Program header (56 bytes): `p_type` u32 @0, `p_offset` @8, `p_paddr` @24, `p_filesz` @32,
//!   `p_memsz` @40. `PT_LOAD` maps `[p_paddr, p_paddr + p_memsz)`; only the first `p_filesz`
//!   bytes are in the file, the rest reads as zeros but is not "dumped" (makedumpfile -E shortens
//!   `p_filesz` for excluded pages at the end of a range).
//! - `PT_NOTE` segments hold the notes (see [`super::notes`]).
//!
//! ELF32 vmcores (i386, arm32) are refused: vmcore-report targets 64-bit kernels only.

use crate::addr::{Arch, Endian, PhysAddr};

use super::notes::NoteInfo;
use super::source::ByteSource;
use super::{DumpError, PhysMem, PhysRange};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: u64 = 0xffff;
const ET_CORE: u64 = 4;
const PHDR_SIZE: u64 = 56;

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
struct Segment {
    paddr: u64,
    filesz: u64,
    memsz: u64,
    offset: u64,
}

/// Physical memory of an ELF vmcore.
#[derive(Debug)]
pub struct ElfMem {
    src: ByteSource,
    /// Sorted by `paddr`, non-overlapping (later overlapping segments are dropped).
    segments: Vec<Segment>,
    ranges: Vec<PhysRange>,
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
    let table = src.slice(e_phoff, table_len, "program header table")?;

    let mut segments = Vec::new();
    let mut notes = NoteInfo::default();
    for i in 0..e_phnum {
        let at = (i * e_phentsize) as usize;
        let ph = table.get(at..at + PHDR_SIZE as usize).unwrap_or(&[]);
        let f = |off: usize, w: usize| endian.uint(ph.get(off..).unwrap_or(&[]), w).unwrap_or(0);
        let ph_off = e_phoff + at as u64;
        match f(0, 4) as u32 {
            PT_LOAD => {
                let seg = Segment {
                    offset: f(8, 8),
                    paddr: f(24, 8),
                    filesz: f(32, 8),
                    memsz: f(40, 8),
                };
                if seg.filesz > seg.memsz {
                    return Err(bad(ph_off, "PT_LOAD with p_filesz larger than p_memsz"));
                }
                if seg.paddr.checked_add(seg.memsz).is_none() {
                    return Err(bad(ph_off, "PT_LOAD physical range wraps around"));
                }
                // The file must hold the bytes the header promises.
                src.slice(seg.offset, seg.filesz, "PT_LOAD contents")?;
                if seg.memsz > 0 {
                    segments.push(seg);
                }
            }
            PT_NOTE => {
                let buf = src.slice(f(8, 8), f(32, 8), "PT_NOTE contents")?;
                notes.collect(buf, endian);
            }
            _ => {}
        }
    }
    segments.sort_by_key(|s| s.paddr);
    // Drop segments overlapping an earlier one: a well-formed vmcore has none, and keeping the
    // table disjoint makes the binary search exact.
    let mut disjoint: Vec<Segment> = Vec::with_capacity(segments.len());
    for s in segments {
        match disjoint.last() {
            Some(prev) if s.paddr < prev.paddr + prev.memsz => {
                tracing::warn!(
                    paddr = s.paddr,
                    "ignoring PT_LOAD overlapping an earlier one"
                );
            }
            _ => disjoint.push(s),
        }
    }
    let mut ranges: Vec<PhysRange> = Vec::new();
    for s in &disjoint {
        let end = s.paddr + s.memsz;
        match ranges.last_mut() {
            Some(r) if r.end.0 == s.paddr => r.end = PhysAddr(end),
            _ => ranges.push(PhysRange {
                start: PhysAddr(s.paddr),
                end: PhysAddr(end),
            }),
        }
    }
    Ok(ElfDump {
        mem: ElfMem {
            src,
            segments: disjoint,
            ranges,
        },
        endian,
        machine_arch,
        notes,
    })
}

impl ElfMem {
    fn segment(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.paddr <= addr);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (addr - s.paddr < s.memsz).then_some(s)
    }
}

impl PhysMem for ElfMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr
                .0
                .checked_add(done as u64)
                .ok_or(DumpError::OutOfRange { addr })?;
            let seg = self
                .segment(at)
                .ok_or(DumpError::OutOfRange { addr: PhysAddr(at) })?;
            let rel = at - seg.paddr;
            let want = (buf.len() - done) as u64;
            let n = want.min(seg.memsz - rel);
            let out = &mut buf[done..done + n as usize];
            if rel < seg.filesz {
                let from_file = n.min(seg.filesz - rel);
                let bytes = self
                    .src
                    .slice(seg.offset + rel, from_file, "PT_LOAD page")?;
                out[..from_file as usize].copy_from_slice(bytes);
                out[from_file as usize..].fill(0);
            } else {
                out.fill(0);
            }
            done += n as usize;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn is_dumped(&self, addr: PhysAddr) -> bool {
        self.segment(addr.0)
            .is_some_and(|s| addr.0 - s.paddr < s.filesz)
    }
}
