//! Dump readers: physical memory and metadata from a vmcore file.
//!
//! Every format (ELF, kdump-compressed, makedumpfile's flattened stream) is opened behind one
//! object-safe trait, [`PhysMem`], that reads physical bytes. The metadata a dump carries
//! (VMCOREINFO, per-CPU register notes, the kdump header's utsname and timestamp) is gathered into
//! [`DumpInfo`]. The format is detected from the file's content, never from its name.
//!
//! The bytes are untrusted: every offset and length read from the file is checked before use, and
//! decompression output is bounded by the page size.

pub mod cache;
pub mod codec;
pub mod elf;
pub mod flat;
pub mod health;
pub mod kdump;
pub mod notes;
pub mod source;
pub mod vmcoreinfo;
pub mod vmcoreinfo_mem;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::addr::{Arch, Endian, Pfn, PhysAddr, VirtAddr};
pub use health::DumpHealth;
pub use source::ByteSource;
pub use vmcoreinfo::VmcoreInfo;
pub use vmcoreinfo_mem::VmcoreinfoSource;

/// Errors of the dump layer. `NotDumped` is normal after filtering (`makedumpfile -d 31`) and is
/// kept apart from corruption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    #[error("{addr} is not in the dump (excluded when the dump was taken)")]
    NotDumped { addr: PhysAddr },
    #[error("{addr} is outside the memory the dump describes")]
    OutOfRange { addr: PhysAddr },
    #[error("corrupt dump at file offset {offset:#x}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("decompressing {pfn} ({codec}) failed: {what}")]
    Decompress {
        pfn: Pfn,
        codec: &'static str,
        what: String,
    },
    #[error("truncated dump: {0}")]
    Truncated(String),
    #[error("not a vmcore: {0}")]
    NotADump(String),
    #[error("unsupported dump: {0}")]
    Unsupported(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DumpError {
    /// A stable machine-readable code for the manifest.
    pub fn code(&self) -> &'static str {
        match self {
            DumpError::NotDumped { .. } => "not-dumped",
            DumpError::OutOfRange { .. } => "out-of-range",
            DumpError::Corrupt { .. } => "corrupt",
            DumpError::Decompress { .. } => "decompress",
            DumpError::Truncated(_) => "truncated",
            DumpError::NotADump(_) => "not-a-dump",
            DumpError::Unsupported(_) => "unsupported",
            DumpError::Io { .. } => "io",
        }
    }
}

/// A half-open range of physical addresses `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: PhysAddr,
    pub end: PhysAddr,
}

/// Physical memory of the dumped machine.
pub trait PhysMem: Send + Sync {
    /// Reads exactly `buf.len()` bytes starting at `addr`. A read may cross page boundaries.
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError>;
    /// The physical ranges the dump describes, sorted and non-overlapping. Pages inside them
    /// may still be excluded (see [`PhysMem::is_dumped`]).
    fn ranges(&self) -> &[PhysRange];
    /// Whether the page holding `addr` is stored in the dump.
    fn is_dumped(&self, addr: PhysAddr) -> bool;
    /// The virtual-to-physical mappings the dump's own headers state (ELF `p_vaddr`), for
    /// cross-checking the page tables; empty for formats that carry none.
    fn header_mappings(&self) -> &[HeaderMapping] {
        &[]
    }
    /// What is missing because the file ends before its headers say it should (or, for a split
    /// dump, because a piece is missing); `None` for a complete file. Computed at open from the
    /// headers, without reading every page.
    fn truncation(&self) -> Option<Truncation> {
        None
    }
    /// Unmaps the file pages read so far (see [`ByteSource::release_resident`]); a no-op for
    /// memory held in a `Vec`.
    fn release_resident(&self) {}
}

/// A dump shorter than its own headers promise (a capture that ran out of disk, an upload cut
/// short) or a split dump missing a piece. The pages the missing bytes held read as
/// [`DumpError::NotDumped`], exactly like pages filtered out when the dump was taken; everything
/// in the part that is present reads as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Truncation {
    /// The file size the headers imply (summed over the pieces of a split dump), when known: a
    /// lower bound, since only headers that are present can be consulted. `None` when a split
    /// piece is missing altogether (its size is nowhere written).
    pub expected_size: Option<u64>,
    /// The size of the file (summed over the pieces given).
    pub actual_size: u64,
    /// Pages (of the dump's page size) the headers describe as dumped that are no longer
    /// readable. An upper bound: it is computed from the headers (segment and descriptor
    /// positions, or the PFN span of a missing split piece), not by trying every page, so it can
    /// count a page that another copy still holds (ELF overlaps), one that several descriptors
    /// share (makedumpfile's single zero page), or, for a missing piece, PFNs that were never RAM.
    pub pages_lost: u64,
}

impl Truncation {
    /// Combines the truncations of several pieces (a split dump): sizes and losses add up.
    fn sum(parts: impl IntoIterator<Item = Truncation>) -> Option<Truncation> {
        parts.into_iter().reduce(|a, b| Truncation {
            expected_size: a.expected_size.zip(b.expected_size).map(|(x, y)| x + y),
            actual_size: a.actual_size + b.actual_size,
            pages_lost: a.pages_lost + b.pages_lost,
        })
    }
}

/// A mapping a dump's headers claim: `[vaddr, vaddr + len)` holds `[paddr, paddr + len)`. The
/// page tables stay the authority; this is evidence to check them against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderMapping {
    pub vaddr: VirtAddr,
    pub paddr: PhysAddr,
    pub len: u64,
    /// The segment belongs to the direct map (the most common `vaddr - paddr`), not to the
    /// kernel image or another mapping.
    pub direct_map: bool,
}

/// The container format of a dump, as detected from its content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DumpFormat {
    /// ELF64 core file (`/proc/vmcore`, `makedumpfile -E`, QEMU `dump-guest-memory`).
    Elf { endian: Endian },
    /// makedumpfile's kdump-compressed format (`KDUMP   `), also written by QEMU.
    Kdump {
        header_version: i32,
        /// The codec named in the header status (`zlib`, `lzo`, `snappy`, `zstd`), if any.
        compression: Option<String>,
        /// Read through makedumpfile's flattened stream (`makedumpfile -F`, QEMU before 8.2).
        flattened: bool,
        /// The header says the dump ran out of space (`DUMP_DH_COMPRESSED_INCOMPLETE`).
        incomplete: bool,
    },
}

impl DumpFormat {
    /// A short name for logs and the manifest: `elf`, `kdump`, `kdump-flattened`.
    pub fn name(&self) -> &'static str {
        match self {
            DumpFormat::Elf { .. } => "elf",
            DumpFormat::Kdump {
                flattened: false, ..
            } => "kdump",
            DumpFormat::Kdump {
                flattened: true, ..
            } => "kdump-flattened",
        }
    }
}

/// The utsname a kdump header carries (QEMU leaves some fields empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeaderUtsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// The register state of one CPU at the time of the dump, from an `NT_PRSTATUS` note (and, in
/// QEMU dumps, the QEMU CPU-state note).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuState {
    /// Index of the note among the PRSTATUS notes (the kernel writes one per online CPU).
    pub index: usize,
    /// `pr_pid`: the pid of the task running on this CPU (0 for the idle task).
    pub pid: u32,
    /// The general registers in the architecture's `elf_gregset_t` order.
    pub regs: Vec<u64>,
    pub pc: Option<u64>,
    pub sp: Option<u64>,
    /// Page-table root from the QEMU CPU-state note (x86_64 CR3), when present.
    pub page_table_root: Option<u64>,
}

/// Everything the dump tells besides its memory.
#[derive(Clone, Debug)]
pub struct DumpInfo {
    pub paths: Vec<PathBuf>,
    pub file_size: u64,
    pub format: DumpFormat,
    /// Architecture from the ELF machine, VMCOREINFO or the notes; `None` if nothing said.
    pub arch: Option<Arch>,
    pub endian: Endian,
    /// The dump's page granularity: the kdump block size (what `is_dumped` and the bitmaps are
    /// counted in), or for ELF the kernel's page size. It can exceed the kernel's page size (QEMU
    /// writes aarch64 kdump files with 64 KiB blocks for a 4 KiB-page kernel); page-table code
    /// should use VMCOREINFO `PAGESIZE`.
    pub page_size: u64,
    pub vmcoreinfo: Option<VmcoreInfo>,
    /// Where `vmcoreinfo` came from: the dump's note, or a search of its memory.
    pub vmcoreinfo_source: VmcoreinfoSource,
    pub cpus: Vec<CpuState>,
    /// The kdump header's utsname (ELF dumps have none).
    pub header_utsname: Option<HeaderUtsname>,
    /// The kdump header's timestamp (seconds since the epoch).
    pub header_timestamp: Option<i64>,
    /// `phys_base` from the kdump sub-header.
    pub phys_base: Option<u64>,
    /// makedumpfile's dump level (`-d`), when known.
    pub dump_level: Option<i32>,
    /// Number of CPUs the header claims (kdump) or PRSTATUS notes found (ELF).
    pub nr_cpus: Option<u32>,
    /// What is missing besides filtered pages (truncation, the header's incomplete flag).
    pub health: DumpHealth,
}

/// An opened dump: its physical memory and its metadata.
pub struct Dump {
    pub mem: Arc<dyn PhysMem>,
    pub info: DumpInfo,
}

/// Opens a dump, detecting its format from its content. Several paths are the pieces of a split
/// dump (`makedumpfile --split`), given in any order.
pub fn open(paths: &[PathBuf]) -> Result<Dump, DumpError> {
    let dump = match paths {
        [] => return Err(DumpError::NotADump("no dump file given".into())),
        [one] => open_source(ByteSource::open(one)?)?,
        many => {
            let sources = many
                .iter()
                .map(|p| ByteSource::open(p))
                .collect::<Result<Vec<_>, _>>()?;
            open_split(sources)?
        }
    };
    Ok(with_health(with_s390x_vmcoreinfo(dump)))
}

/// Opens a dump held in memory (tests, fuzzing).
pub fn open_bytes(bytes: Vec<u8>) -> Result<Dump, DumpError> {
    open_source(ByteSource::from_vec(bytes))
        .map(with_s390x_vmcoreinfo)
        .map(with_health)
}

/// An s390x dump without a VMCOREINFO note (QEMU's) gets the kernel's own copy, found through
/// the absolute lowcore (`arch::s390x::vmcoreinfo_in_memory`).
fn with_s390x_vmcoreinfo(mut dump: Dump) -> Dump {
    if dump.info.vmcoreinfo.is_some() || dump.info.arch != Some(Arch::S390x) {
        return dump;
    }
    match crate::arch::s390x::vmcoreinfo_in_memory(&*dump.mem) {
        Ok((text, found)) => {
            tracing::info!(
                "the dump has no VMCOREINFO note; read the kernel's from memory ({found:?})"
            );
            dump.info.vmcoreinfo = Some(VmcoreInfo::parse(&text));
        }
        Err(e) => {
            tracing::warn!("the dump has no VMCOREINFO note and none was found in memory: {e}")
        }
    }
    dump
}

/// Records in the dump's [`DumpHealth`] what its memory found missing at open (the readers'
/// [`PhysMem::truncation`]), beside the header's own incomplete flag.
fn with_health(mut dump: Dump) -> Dump {
    dump.info.health.truncated = dump.mem.truncation();
    dump
}

/// What the first bytes of a file say it is.
enum Detected {
    Elf,
    Kdump,
    Flattened,
}

fn detect(src: &ByteSource) -> Result<Detected, DumpError> {
    let b = src.bytes();
    let name = src.path().display();
    if b.is_empty() {
        return Err(DumpError::NotADump(format!("{name} is empty")));
    }
    let starts = |sig: &[u8]| b.starts_with(sig);
    if starts(b"\x7fELF") {
        return Ok(Detected::Elf);
    }
    if starts(b"KDUMP   ") || starts(b"DISKDUMP") {
        return Ok(Detected::Kdump);
    }
    if starts(flat::SIGNATURE) {
        return Ok(Detected::Flattened);
    }
    let what = if starts(&[0x1f, 0x8b]) {
        "a gzip-compressed file (decompress it first)".to_string()
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "an xz-compressed file (decompress it first)".to_string()
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "a zstd-compressed file (decompress it first)".to_string()
    } else if starts(b"BZh") {
        "a bzip2-compressed file (decompress it first)".to_string()
    } else if b"\x7fELF".starts_with(b) || b"KDUMP   ".starts_with(b) {
        format!("a truncated header ({} bytes)", b.len())
    } else {
        let head = &b[..b.len().min(16)];
        format!("an unknown format (first bytes {})", hex::encode(head))
    };
    Err(DumpError::NotADump(format!("{name} is {what}")))
}

/// Opens one dump from its bytes.
pub fn open_source(src: ByteSource) -> Result<Dump, DumpError> {
    let path = src.path().to_path_buf();
    let file_size = src.len();
    match detect(&src)? {
        Detected::Elf => open_elf(src, path, file_size),
        Detected::Kdump => {
            let k = kdump::open(Box::new(src))?;
            Ok(kdump_to_dump(vec![k], vec![path], file_size, false))
        }
        Detected::Flattened => {
            let view = flat::FlatView::index(src)?;
            check_kdump_signature(&view)?;
            let k = kdump::open(Box::new(view))?;
            Ok(kdump_to_dump(vec![k], vec![path], file_size, true))
        }
    }
}

fn check_kdump_signature(file: &dyn kdump::KdumpFile) -> Result<(), DumpError> {
    let sig = file.read(0, 8, "kdump signature inside the flattened stream")?;
    if &*sig == b"KDUMP   " || &*sig == b"DISKDUMP" {
        Ok(())
    } else {
        Err(DumpError::NotADump(format!(
            "the flattened stream of {} does not hold a kdump file (starts with {})",
            file.path().display(),
            hex::encode(&*sig)
        )))
    }
}

fn open_elf(src: ByteSource, path: PathBuf, file_size: u64) -> Result<Dump, DumpError> {
    let mut e = elf::open(src)?;
    let hint = e.machine_arch.or_else(|| e.notes.arch_hint(e.endian));
    let (vmcoreinfo, vmcoreinfo_source) =
        vmcoreinfo_or_search(e.notes.vmcoreinfo.as_deref(), &e.mem, hint, e.endian);
    let arch = e
        .machine_arch
        .or_else(|| vmcoreinfo.as_ref().and_then(notes::arch_from_vmcoreinfo))
        .or_else(|| e.notes.arch_hint(e.endian));
    let page_size = vmcoreinfo
        .as_ref()
        .and_then(|v| v.page_size)
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096);
    let cpus = e.notes.cpus(arch, e.endian);
    e.mem.page_size = page_size;
    let info = DumpInfo {
        paths: vec![path],
        file_size,
        format: DumpFormat::Elf { endian: e.endian },
        arch,
        endian: e.endian,
        page_size,
        vmcoreinfo,
        vmcoreinfo_source,
        nr_cpus: Some(cpus.len() as u32),
        cpus,
        header_utsname: None,
        header_timestamp: None,
        phys_base: None,
        dump_level: None,
        health: DumpHealth::default(),
    };
    Ok(Dump {
        mem: Arc::new(e.mem),
        info,
    })
}

fn kdump_to_dump(
    mut pieces: Vec<kdump::KdumpDump>,
    paths: Vec<PathBuf>,
    file_size: u64,
    flattened: bool,
) -> Dump {
    // By (start, end): an empty piece sorts before the piece starting where it does.
    pieces.sort_by_key(|p| p.mem.pfn_range());
    // Metadata is the same in every piece; take it from the first that has notes.
    let meta_idx = pieces
        .iter()
        .position(|p| p.vmcoreinfo.is_some() || p.notes.nr_prstatus() > 0)
        .unwrap_or(0);
    let (header, sub, endian, vmcoreinfo_text, note_info) = {
        let m = &pieces[meta_idx.min(pieces.len() - 1)];
        (
            m.header.clone(),
            m.sub.clone(),
            m.endian,
            m.vmcoreinfo.clone(),
            m.notes.clone(),
        )
    };
    // A lone piece of a split dump still goes through SplitMem, which knows the others are
    // missing.
    let split = pieces
        .iter()
        .any(|p| p.sub.as_ref().is_some_and(|s| s.split));
    let mem: Arc<dyn PhysMem> = if pieces.len() == 1 && !split {
        match pieces.pop() {
            Some(p) => Arc::new(p.mem),
            None => Arc::new(SplitMem::new(Vec::new())),
        }
    } else {
        Arc::new(SplitMem::new(pieces.into_iter().map(|p| p.mem).collect()))
    };
    let hint =
        notes::arch_from_machine(&header.utsname.machine).or_else(|| note_info.arch_hint(endian));
    let (vmcoreinfo, vmcoreinfo_source) =
        vmcoreinfo_or_search(vmcoreinfo_text.as_deref(), &*mem, hint, endian);
    let arch = notes::arch_from_machine(&header.utsname.machine)
        .or_else(|| vmcoreinfo.as_ref().and_then(notes::arch_from_vmcoreinfo))
        .or_else(|| note_info.arch_hint(endian));
    let cpus = note_info.cpus(arch, endian);
    let compression = codec::Codec::from_flags(header.status)
        .ok()
        .flatten()
        .map(|c| c.name().to_string());
    let nr_cpus = if header.nr_cpus > 0 {
        Some(header.nr_cpus as u32)
    } else {
        Some(cpus.len() as u32)
    };
    let flagged_incomplete = header.status & codec::DUMP_DH_COMPRESSED_INCOMPLETE != 0;
    let info = DumpInfo {
        paths,
        file_size,
        format: DumpFormat::Kdump {
            header_version: header.header_version,
            compression,
            flattened,
            incomplete: flagged_incomplete,
        },
        arch,
        endian,
        page_size: header.block_size as u64,
        vmcoreinfo,
        vmcoreinfo_source,
        cpus,
        header_utsname: Some(header.utsname.clone()),
        header_timestamp: Some(header.timestamp_sec),
        phys_base: sub.as_ref().map(|s| s.phys_base),
        dump_level: sub.as_ref().and_then(|s| s.dump_level),
        nr_cpus,
        health: DumpHealth {
            truncated: None,
            flagged_incomplete_by_header: flagged_incomplete,
        },
    };
    Dump { mem, info }
}

/// VMCOREINFO from the text the dump's headers carry, else from a bounded search of its memory
/// ([`vmcoreinfo_mem`]: dumps of guests without QEMU's vmcoreinfo device). `arch` is what the
/// headers say, for the search to check the text against.
fn vmcoreinfo_or_search(
    text: Option<&str>,
    mem: &dyn PhysMem,
    arch: Option<Arch>,
    endian: Endian,
) -> (Option<VmcoreInfo>, VmcoreinfoSource) {
    if let Some(t) = text {
        return (Some(VmcoreInfo::parse(t)), VmcoreinfoSource::Note);
    }
    // s390x says where its copy is: the lowcore's os_info entry (the text, `vmcoreinfo_data`) or
    // its VMCOREINFO note pointer; the search is for what that does not find
    if arch == Some(Arch::S390x) {
        match crate::arch::s390x::vmcoreinfo_in_memory(mem) {
            Ok((text, found)) => {
                tracing::info!(
                    "the dump has no VMCOREINFO note; read the kernel's from memory ({found:?})"
                );
                let (paddr, copy) = match found {
                    crate::arch::s390x::VmcoreinfoFound::OsInfo(a) => {
                        (a.0, vmcoreinfo_mem::MemCopy::DataPage)
                    }
                    crate::arch::s390x::VmcoreinfoFound::LowcoreNote(a) => {
                        (a.0, vmcoreinfo_mem::MemCopy::NoteBuffer)
                    }
                };
                let source = VmcoreinfoSource::Memory {
                    paddr,
                    copy,
                    searched_bytes: 0,
                    searched_ms: 0,
                };
                return (Some(VmcoreInfo::parse(&text)), source);
            }
            Err(e) => tracing::info!("the lowcore gives no VMCOREINFO ({e}); searching memory"),
        }
    }
    let limits = vmcoreinfo_mem::SearchLimits::default();
    let found = vmcoreinfo_mem::search(mem, arch, endian, &limits);
    mem.release_resident();
    match found {
        Some(found) => {
            tracing::info!(
                "the dump has no VMCOREINFO note; found the kernel's copy in its memory ({:?})",
                found.source
            );
            (Some(found.info), found.source)
        }
        None => {
            tracing::info!("the dump has no VMCOREINFO note, and none was found in its memory");
            (None, VmcoreinfoSource::Absent)
        }
    }
}

/// Opens the pieces of a split dump: each a kdump file with `split` set and its own PFN range.
fn open_split(sources: Vec<ByteSource>) -> Result<Dump, DumpError> {
    let paths: Vec<PathBuf> = sources.iter().map(|s| s.path().to_path_buf()).collect();
    let file_size = sources.iter().map(|s| s.len()).sum();
    let mut pieces = Vec::new();
    let mut flattened = false;
    for src in sources {
        let name = src.path().display().to_string();
        let k = match detect(&src)? {
            Detected::Kdump => kdump::open(Box::new(src))?,
            Detected::Flattened => {
                flattened = true;
                let view = flat::FlatView::index(src)?;
                check_kdump_signature(&view)?;
                kdump::open(Box::new(view))?
            }
            Detected::Elf => {
                return Err(DumpError::Unsupported(format!(
                    "{name} is an ELF dump; only kdump-compressed files can be pieces of a \
                     split dump"
                )));
            }
        };
        if !k.sub.as_ref().is_some_and(|s| s.split) {
            return Err(DumpError::Unsupported(format!(
                "several dump files given but {name} is not a piece of a split dump \
                 (its header has no split flag)"
            )));
        }
        pieces.push(k);
    }
    pieces.sort_by_key(|p| p.mem.pfn_range());
    for w in pieces.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.mem.pfn_range().1 < b.mem.pfn_range().0 {
            // Pages of the gap read as not dumped; say which piece seems to be missing.
            tracing::warn!(
                "split pieces leave PFNs {:#x}..{:#x} uncovered (a piece not given?)",
                a.mem.pfn_range().1,
                b.mem.pfn_range().0
            );
        }
        if a.mem.pfn_range().1 > b.mem.pfn_range().0 {
            return Err(DumpError::Corrupt {
                offset: 0,
                what: format!(
                    "split pieces overlap: PFNs {:#x}..{:#x} and {:#x}..{:#x}",
                    a.mem.pfn_range().0,
                    a.mem.pfn_range().1,
                    b.mem.pfn_range().0,
                    b.mem.pfn_range().1
                ),
            });
        }
        if a.header.block_size != b.header.block_size {
            return Err(DumpError::Corrupt {
                offset: 428,
                what: "split pieces disagree on the block size".into(),
            });
        }
    }
    Ok(kdump_to_dump(pieces, paths, file_size, flattened))
}

/// The pieces of a split dump, each covering its own PFN range. PFNs below the machine's
/// `max_mapnr` that no piece covers belong to a piece not given: they read as not dumped and
/// count in [`PhysMem::truncation`] (all of them, RAM or not: the missing piece's bitmap is
/// what would tell).
#[derive(Debug)]
pub struct SplitMem {
    pieces: Vec<kdump::KdumpMem>,
    ranges: Vec<PhysRange>,
    /// PFNs the pieces' bitmaps describe (the whole machine).
    pfn_limit: u64,
    truncation: Option<Truncation>,
}

impl SplitMem {
    /// `pieces` sorted by PFN range, not overlapping.
    fn new(pieces: Vec<kdump::KdumpMem>) -> SplitMem {
        let mut ranges: Vec<PhysRange> = Vec::new();
        for r in pieces.iter().flat_map(|p| p.ranges().iter()) {
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(*r),
            }
        }
        let pfn_limit = pieces.iter().map(|p| p.pfn_limit()).max().unwrap_or(0);
        let covered: u64 = pieces
            .iter()
            .map(|p| p.pfn_range().1.saturating_sub(p.pfn_range().0))
            .sum();
        let missing = pfn_limit.saturating_sub(covered);
        let sum = Truncation::sum(pieces.iter().map(|p| {
            p.truncation().unwrap_or(Truncation {
                expected_size: Some(p.file_size()),
                actual_size: p.file_size(),
                pages_lost: 0,
            })
        }));
        let truncation = sum
            .filter(|t| t.pages_lost > 0 || t.expected_size != Some(t.actual_size) || missing > 0)
            .map(|t| Truncation {
                expected_size: t.expected_size.filter(|_| missing == 0),
                pages_lost: t.pages_lost.saturating_add(missing),
                ..t
            });
        SplitMem {
            pieces,
            ranges,
            pfn_limit,
            truncation,
        }
    }

    fn piece(&self, pfn: u64) -> Option<&kdump::KdumpMem> {
        let i = self.pieces.partition_point(|p| p.pfn_range().0 <= pfn);
        let p = self.pieces.get(i.checked_sub(1)?)?;
        (pfn < p.pfn_range().1).then_some(p)
    }

    fn page_size(&self) -> u64 {
        self.pieces.first().map_or(4096, |p| p.page_size())
    }
}

impl PhysMem for SplitMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        let ps = self.page_size();
        kdump::read_paged(ps, addr, buf, |pfn| {
            let addr = PhysAddr(pfn.wrapping_mul(ps));
            match self.piece(pfn) {
                Some(p) => p.page(pfn),
                None if pfn < self.pfn_limit => Err(DumpError::NotDumped { addr }),
                None => Err(DumpError::OutOfRange { addr }),
            }
        })
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn is_dumped(&self, addr: PhysAddr) -> bool {
        self.piece(addr.0 / self.page_size())
            .is_some_and(|p| p.is_dumped(addr))
    }

    fn truncation(&self) -> Option<Truncation> {
        self.truncation
    }

    fn release_resident(&self) {
        self.pieces.iter().for_each(|p| p.release_resident());
    }
}

/// Convenience for callers holding one path.
pub fn open_path(path: &Path) -> Result<Dump, DumpError> {
    open(&[path.to_path_buf()])
}
