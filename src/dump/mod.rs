//! Dump readers: physical memory and metadata from a vmcore file.
//!
//! Every format (ELF, kdump-compressed, makedumpfile's flattened stream) is opened behind one
//! object-safe trait, [`PhysMem`], that reads physical bytes. The metadata a dump carries
//! (VMCOREINFO, per-CPU register notes, the kdump header's utsname and timestamp) is gathered into
//! [`DumpInfo`]. The format is detected from the file's content, never from its name.
//!
//! The bytes are untrusted: every offset and length read from the file is checked before use, and
//! decompression output is bounded by the page size.

pub mod vmcoreinfo;

use std::path::PathBuf;
use std::sync::Arc;

use crate::addr::{Arch, Endian, Pfn, PhysAddr};
pub use vmcoreinfo::VmcoreInfo;

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
    pub page_size: u64,
    pub vmcoreinfo: Option<VmcoreInfo>,
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
}

/// An opened dump: its physical memory and its metadata.
pub struct Dump {
    pub mem: Arc<dyn PhysMem>,
    pub info: DumpInfo,
}

/// Opens a dump, detecting its format from its content. Several paths are the pieces of a split
/// dump (`makedumpfile --split`).
pub fn open(paths: &[PathBuf]) -> Result<Dump, DumpError> {
    Err(DumpError::Unsupported(format!(
        "reader not implemented yet for {paths:?}"
    )))
}
