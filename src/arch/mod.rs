//! Address translation: kernel virtual addresses to physical ones, from the dump alone.
//!
//! One [`Translator`] per architecture and paging mode, configured from VMCOREINFO and the dump's
//! metadata ([`TranslationConfig`]). [`AddressSpace`] pairs a translator with the dump's physical
//! memory and offers the read helpers the layers above use.
//!
//! * [`radix`]: a radix walk described as data (levels, bits per level, huge-page levels, entry
//!   decoding) and the one walker x86_64 and aarch64 share.
//! * [`x86_64`]: 4- and 5-level paging, KASLR, `phys_base`, the randomized direct map.
//! * [`aarch64`]: 4K/16K/64K granules, 39..52-bit VAs, the 5.4 linear-map flip, PAC bits.
//! * [`s390x`]: region/segment/page tables with their own walker, big-endian entries.
//!
//! The architecture always comes from the dump ([`TranslationConfig::arch`]), never the host.
//! docs/paging.md describes each scheme and docs/add-an-architecture.md the steps to add one.

pub mod aarch64;
pub mod radix;
pub mod s390x;
pub mod x86_64;

use std::sync::Arc;

use crate::addr::{Arch, Endian, PhysAddr, VirtAddr};
use crate::dump::{Dump, DumpError, PhysMem};

/// Errors of address translation and of virtual reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    #[error("{va} is not mapped (no valid entry at page-table level {level})")]
    NotMapped { va: VirtAddr, level: u8 },
    #[error("page-table page at {table} for {va} (level {level}) is not in the dump")]
    TableNotDumped {
        va: VirtAddr,
        level: u8,
        table: PhysAddr,
    },
    #[error("{va} is not a canonical address")]
    NonCanonical { va: VirtAddr },
    #[error("reading {va} ({phys}): {source}")]
    Memory {
        va: VirtAddr,
        phys: PhysAddr,
        source: DumpError,
    },
    #[error("cannot set up address translation: {0}")]
    Config(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl TranslateError {
    /// A stable machine-readable code for the manifest.
    pub fn code(&self) -> &'static str {
        match self {
            TranslateError::NotMapped { .. } => "not-mapped",
            TranslateError::TableNotDumped { .. } => "page-table-not-dumped",
            TranslateError::NonCanonical { .. } => "non-canonical",
            TranslateError::Memory { source, .. } => source.code(),
            TranslateError::Config(_) => "translation-config",
            TranslateError::Unsupported(_) => "unsupported",
        }
    }

    /// True when the bytes are simply absent from the dump (filtered, or a page-table page
    /// that was not dumped), as opposed to an unmapped address or a corrupt dump.
    pub fn is_not_dumped(&self) -> bool {
        matches!(
            self,
            TranslateError::TableNotDumped { .. }
                | TranslateError::Memory {
                    source: DumpError::NotDumped { .. },
                    ..
                }
        )
    }
}

/// A successful translation: the physical address, and the size of the page or block mapping
/// that contains the virtual address (so a reader knows how far it may read contiguously).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub phys: PhysAddr,
    pub mapping_size: u64,
}

/// What a translator needs to know, taken from VMCOREINFO and the dump's metadata, optionally
/// completed by the glue with symbol addresses from the vmlinux when the dump lacks them.
#[derive(Clone, Debug, Default)]
pub struct TranslationConfig {
    pub arch: Option<Arch>,
    pub page_size: u64,
    /// KASLR offset of the kernel image (VMCOREINFO `KERNELOFFSET`).
    pub kaslr_offset: u64,
    /// Virtual address of the kernel's top-level page table (`init_top_pgt`, `swapper_pg_dir`,
    /// s390x: from the lowcore), already shifted by the KASLR offset.
    pub pgd_va: Option<u64>,
    /// A physical page-table root known directly (QEMU's CR3 note), used if `pgd_va` is absent.
    pub pgd_phys: Option<u64>,
    /// x86_64 `phys_base`.
    pub phys_base: Option<u64>,
    /// Every `NUMBER(...)` from VMCOREINFO, for the architecture-specific keys.
    pub numbers: std::collections::BTreeMap<String, i64>,
    /// Every `SYMBOL(...)` from VMCOREINFO.
    pub symbols: std::collections::BTreeMap<String, u64>,
    /// Every other VMCOREINFO key, verbatim (s390x's `KERNELOFFPHYS`, `IDENTITYBASE`).
    pub other: std::collections::BTreeMap<String, String>,
}

/// One architecture's page-table walk.
pub trait Translator: Send + Sync {
    fn arch(&self) -> Arch;
    fn translate(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError>;
    /// A translator for one process's address space, whose top-level table is at `root` (the
    /// physical address of its `mm->pgd`), in this translator's paging mode; `None` where the
    /// architecture's walker cannot walk user tables.
    fn user_space(&self, root: PhysAddr) -> Option<Box<dyn Translator>> {
        let _ = root;
        None
    }
}

/// Kernel virtual memory of the dumped machine: a translator over physical memory.
pub struct AddressSpace {
    mem: Arc<dyn PhysMem>,
    translator: Box<dyn Translator>,
    endian: Endian,
    kaslr_offset: u64,
}

impl AddressSpace {
    pub fn new(
        mem: Arc<dyn PhysMem>,
        translator: Box<dyn Translator>,
        endian: Endian,
        kaslr_offset: u64,
    ) -> AddressSpace {
        AddressSpace {
            mem,
            translator,
            endian,
            kaslr_offset,
        }
    }

    pub fn arch(&self) -> Arch {
        self.translator.arch()
    }
    pub fn endian(&self) -> Endian {
        self.endian
    }
    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr_offset
    }
    pub fn phys(&self) -> &Arc<dyn PhysMem> {
        &self.mem
    }

    pub fn translate(&self, va: VirtAddr) -> Result<Translation, TranslateError> {
        self.translator.translate(&*self.mem, va)
    }

    /// The address space of one process, over the same memory: its tables start at `root`
    /// (see [`Translator::user_space`]).
    pub fn user_space(&self, root: PhysAddr) -> Option<AddressSpace> {
        Some(AddressSpace {
            mem: Arc::clone(&self.mem),
            translator: self.translator.user_space(root)?,
            endian: self.endian,
            kaslr_offset: self.kaslr_offset,
        })
    }

    /// Reads `buf.len()` bytes at `va`, translating each page it spans.
    pub fn read(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), TranslateError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.add(done as u64);
            let t = self.translate(cur)?;
            let size = t.mapping_size.max(1);
            let in_mapping = size - (cur.0 % size);
            let n = in_mapping.min((buf.len() - done) as u64) as usize;
            self.mem
                .read_phys(t.phys, &mut buf[done..done + n])
                .map_err(|source| TranslateError::Memory {
                    va: cur,
                    phys: t.phys,
                    source,
                })?;
            done += n;
        }
        Ok(())
    }

    pub fn read_u8(&self, va: VirtAddr) -> Result<u8, TranslateError> {
        let mut b = [0u8; 1];
        self.read(va, &mut b)?;
        Ok(b[0])
    }
    pub fn read_u16(&self, va: VirtAddr) -> Result<u16, TranslateError> {
        let mut b = [0u8; 2];
        self.read(va, &mut b)?;
        Ok(self.endian.u16(b))
    }
    pub fn read_u32(&self, va: VirtAddr) -> Result<u32, TranslateError> {
        let mut b = [0u8; 4];
        self.read(va, &mut b)?;
        Ok(self.endian.u32(b))
    }
    pub fn read_u64(&self, va: VirtAddr) -> Result<u64, TranslateError> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(self.endian.u64(b))
    }
    /// Reads a pointer (all supported architectures are 64-bit).
    pub fn read_ptr(&self, va: VirtAddr) -> Result<VirtAddr, TranslateError> {
        self.read_u64(va).map(VirtAddr)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (the NUL excluded). Stops at the
    /// first unreadable page and returns what it has if at least one byte was read before it.
    pub fn read_cstr(&self, va: VirtAddr, max: usize) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 64];
        while out.len() < max {
            let cur = va.add(out.len() as u64);
            // do not let one chunk cross a 4 KiB boundary, so a string ending just before an
            // unmapped page still reads
            let to_page = 4096 - (cur.0 & 4095) as usize;
            let n = chunk.len().min(max - out.len()).min(to_page);
            self.read(cur, &mut chunk[..n])?;
            if let Some(p) = chunk[..n].iter().position(|&c| c == 0) {
                out.extend_from_slice(&chunk[..p]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }
}

/// Builds the translation config from a dump's metadata.
pub fn config_from_dump(dump: &Dump) -> TranslationConfig {
    let vi = dump.info.vmcoreinfo.clone().unwrap_or_default();
    let kaslr_offset = vi.kerneloffset.unwrap_or(0);
    TranslationConfig {
        arch: dump.info.arch,
        page_size: vi.page_size.unwrap_or(dump.info.page_size),
        kaslr_offset,
        pgd_va: None,
        pgd_phys: dump.info.cpus.iter().find_map(|c| c.page_table_root),
        phys_base: vi
            .number("phys_base")
            .map(|v| v as u64)
            .or(dump.info.phys_base),
        numbers: vi.numbers.clone(),
        symbols: vi.symbols.clone(),
        other: vi.other.clone(),
    }
}

/// Builds the address space of the dumped kernel.
pub fn address_space(dump: &Dump, cfg: &TranslationConfig) -> Result<AddressSpace, TranslateError> {
    let translator = translator(&*dump.mem, cfg)?;
    let check = cross_check_header_mappings(&*dump.mem, &*translator);
    if let Some((va, claimed, walked)) = check.first_disagreement {
        tracing::warn!(
            checked = check.checked,
            disagreeing = check.disagreeing,
            "the page tables map {va} to {walked} but the dump's program headers say {claimed}; \
             the page tables are used"
        );
    } else if check.checked > check.unmapped {
        tracing::debug!(
            checked = check.checked,
            unmapped = check.unmapped,
            "the dump's program headers agree with the page tables"
        );
    } else if check.checked > 0 {
        tracing::debug!(
            checked = check.checked,
            "no virtual address of the dump's program headers is mapped by the kernel page \
             tables (QEMU writes physical addresses there): nothing to cross-check"
        );
    }
    let endian = translator.arch().endian();
    Ok(AddressSpace::new(
        Arc::clone(&dump.mem),
        translator,
        endian,
        cfg.kaslr_offset,
    ))
}

/// How the mappings a dump's headers claim ([`PhysMem::header_mappings`]) compare with the page
/// tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderCheck {
    /// Addresses translated.
    pub checked: usize,
    /// Addresses the tables do not map (user or stale mappings, or pages the dump lacks).
    pub unmapped: usize,
    pub disagreeing: usize,
    /// `(va, header's pa, tables' pa)` of the first disagreement.
    pub first_disagreement: Option<(VirtAddr, PhysAddr, PhysAddr)>,
}

/// Mappings of each kind (direct map, other) whose first and last pages are checked.
const HEADER_MAPPINGS_CHECKED: usize = 8;

/// Translates the first and last page of a few header-claimed mappings of each kind through the
/// page tables: evidence that the translator (or the dump) is wrong, never a substitute for the
/// walk. Bounded: at most `4 * HEADER_MAPPINGS_CHECKED` walks.
pub fn cross_check_header_mappings(mem: &dyn PhysMem, t: &dyn Translator) -> HeaderCheck {
    let maps = mem.header_mappings();
    let direct = maps
        .iter()
        .filter(|m| m.direct_map)
        .take(HEADER_MAPPINGS_CHECKED);
    let other = maps
        .iter()
        .filter(|m| !m.direct_map)
        .take(HEADER_MAPPINGS_CHECKED);
    let mut check = HeaderCheck::default();
    for m in other.chain(direct).filter(|m| m.len > 0) {
        let last = (m.len - 1) & !4095;
        let offsets: &[u64] = if last == 0 { &[0] } else { &[0, last] };
        for &off in offsets {
            let (va, claimed) = (m.vaddr.add(off), m.paddr.add(off));
            check.checked += 1;
            match t.translate(mem, va) {
                Ok(tr) if tr.phys == claimed => {}
                Ok(tr) => {
                    check.disagreeing += 1;
                    check
                        .first_disagreement
                        .get_or_insert((va, claimed, tr.phys));
                }
                Err(_) => check.unmapped += 1,
            }
        }
    }
    check
}

/// Builds the translator `cfg.arch` calls for over `mem` (some set-up reads page tables).
pub fn translator(
    mem: &dyn PhysMem,
    cfg: &TranslationConfig,
) -> Result<Box<dyn Translator>, TranslateError> {
    let arch = cfg.arch.ok_or_else(|| {
        TranslateError::Config("the dump does not say which architecture it is from".into())
    })?;
    Ok(match arch {
        Arch::X86_64 => Box::new(x86_64::X86_64::from_config(mem, cfg)?),
        Arch::Aarch64 => Box::new(aarch64::Aarch64::from_config(mem, cfg)?),
        Arch::S390x => Box::new(s390x::S390x::from_config(mem, cfg)?),
    })
}
