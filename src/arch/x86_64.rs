//! x86_64 paging: 4-level (48-bit VA) and 5-level (57-bit VA, LA57) radix tables.
//!
//! # Scheme
//! Each level indexes 9 VA bits into a 512-entry table of 8-byte little-endian entries:
//! PML5 (bits 48..56, 5-level only), PML4 (39..47), PDPT (30..38), PD (21..29), PT (12..20).
//! An entry is present when bit 0 is set. Bit 7 (PS) in a PDPT entry maps a 1 GiB page and in a
//! PD entry a 2 MiB page. The physical address is in bits 12..51; bits 52..62 are software and
//! protection-key bits and bit 63 is NX, all masked out. In a huge entry bit 12 is the PAT bit,
//! not an address bit, and the page-size alignment drops it. With AMD SME/SEV the encryption bit
//! (`NUMBER(sme_mask)`) is set in entries and is removed before decoding.
//!
//! # Where the kernel lives
//! * Kernel image: `__START_KERNEL_map` (0xffffffff80000000) maps the image at
//!   `pa = va - __START_KERNEL_map + phys_base`. VMCOREINFO symbols are already shifted by
//!   KASLR (`KERNELOFFSET`), so `SYMBOL(init_top_pgt)` converts with this formula directly.
//! * Direct map: `page_offset_base` (randomized by KASLR in 1 GiB steps; 0xffff888000000000 /
//!   0xff11000000000000 without KASLR) maps all RAM at `pa = va - page_offset_base`. VMCOREINFO
//!   does not carry it; it is read from the kernel variable when the symbol is known, else found
//!   from the tables themselves (the lowest mapping at or above the default base maps physical 0).
//! * vmalloc, vmemmap, modules, fixmap: only through the tables.
//!
//! # Fast path
//! Most reads hit the direct map or the kernel image, so [`X86_64::translate`] tries arithmetic
//! first. At set-up the tables covering the kernel image and the direct-map image of the dump's
//! memory are scanned once, whole table pages at a time ([`RadixFormat::scan_linear`]), and the
//! fast path answers only inside the intervals found mapped at the linear offset, so it agrees
//! with the walk by construction. Everything else (vmalloc, vmemmap, modules, holes) walks.

use crate::addr::{Arch, Endian, PhysAddr, VirtAddr};
use crate::dump::PhysMem;

use super::radix::{Entry, EntryDecoder, Level, LinearIntervals, RadixFormat, is_canonical};
use super::{TranslateError, Translation, TranslationConfig, Translator};

/// Virtual base of the kernel image mapping.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// `__PAGE_OFFSET_BASE_L4`: the direct map's base without KASLR, 4-level paging.
pub const PAGE_OFFSET_BASE_L4: u64 = 0xffff_8880_0000_0000;
/// `__PAGE_OFFSET_BASE_L5`: the direct map's base without KASLR, 5-level paging.
pub const PAGE_OFFSET_BASE_L5: u64 = 0xff11_0000_0000_0000;
/// Default `KERNEL_IMAGE_SIZE` with KASLR (1 GiB), used when VMCOREINFO lacks the number.
const DEFAULT_KERNEL_IMAGE_SIZE: u64 = 1 << 30;

const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;
/// Physical-address bits 12..51 of an entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

struct X86Entry {
    /// Memory-encryption bit(s) to clear before decoding.
    sme_mask: u64,
}

impl EntryDecoder for X86Entry {
    fn decode(&self, raw: u64, level: &Level, last: bool) -> Entry {
        let raw = raw & !self.sme_mask;
        if raw & PRESENT == 0 {
            return Entry::Invalid;
        }
        if last {
            return Entry::Leaf(raw & ADDR_MASK);
        }
        if raw & PS != 0 && level.leaf_allowed {
            // bit 12 is PAT in a huge entry; the size alignment in the walker drops it
            let size_mask = (1u64 << level.shift) - 1;
            return Entry::Leaf(raw & ADDR_MASK & !size_mask);
        }
        Entry::Table(raw & ADDR_MASK)
    }
}

/// The table geometry of 4-level (`la57 == false`) or 5-level paging.
pub fn format(la57: bool, sme_mask: u64) -> RadixFormat {
    let mut levels = Vec::new();
    if la57 {
        levels.push(Level {
            shift: 48,
            bits: 9,
            leaf_allowed: false,
        });
    }
    levels.extend([
        Level {
            shift: 39,
            bits: 9,
            leaf_allowed: false,
        },
        Level {
            shift: 30,
            bits: 9,
            leaf_allowed: true,
        },
        Level {
            shift: 21,
            bits: 9,
            leaf_allowed: true,
        },
        Level {
            shift: 12,
            bits: 9,
            leaf_allowed: false,
        },
    ]);
    RadixFormat {
        levels,
        entry_size: 8,
        endian: Endian::Little,
        decoder: Box::new(X86Entry { sme_mask }),
    }
}

/// The x86_64 translator.
pub struct X86_64 {
    format: RadixFormat,
    la57: bool,
    sme_mask: u64,
    root: u64,
    phys_base: u64,
    page_offset_base: Option<u64>,
    /// Kernel-image addresses the tables map at `va - __START_KERNEL_map + phys_base`.
    image: LinearIntervals,
    /// Direct-map addresses of the dump's memory that the tables map at `va - page_offset_base`.
    direct: LinearIntervals,
    fast_path: bool,
}

impl X86_64 {
    /// A translator over a known physical root. No fast path until
    /// [`X86_64::prepare_fast_path`] runs.
    pub fn new(root: u64, la57: bool, sme_mask: u64, phys_base: u64) -> X86_64 {
        X86_64 {
            format: format(la57, sme_mask),
            la57,
            sme_mask,
            root,
            phys_base,
            page_offset_base: None,
            image: LinearIntervals::default(),
            direct: LinearIntervals::default(),
            fast_path: true,
        }
    }

    /// Builds the translator from the dump's configuration: root from `pgd_va`,
    /// `SYMBOL(init_top_pgt)`, `SYMBOL(swapper_pg_dir)` or the QEMU CR3; `phys_base` from the
    /// config or derived; `page_offset_base` read or discovered.
    pub fn from_config(
        mem: &dyn PhysMem,
        cfg: &TranslationConfig,
    ) -> Result<X86_64, TranslateError> {
        let la57 = cfg.numbers.get("pgtable_l5_enabled").copied().unwrap_or(0) == 1;
        let sme_mask = cfg.numbers.get("sme_mask").copied().unwrap_or(0) as u64;
        let pgd_va = cfg
            .pgd_va
            .or_else(|| cfg.symbols.get("init_top_pgt").copied())
            .or_else(|| cfg.symbols.get("swapper_pg_dir").copied());
        let cr3 = cfg.pgd_phys.map(|c| c & ADDR_MASK & !sme_mask);

        let (root, phys_base) = match (pgd_va, cfg.phys_base, cr3) {
            (Some(va), Some(pb), _) => (image_pa(va, pb), pb),
            (Some(va), None, Some(cr3)) => {
                // derive phys_base by translating the root's own image address through CR3
                let probe = X86_64::new(
                    kernel_root_from_cr3(mem, cr3, la57, sme_mask),
                    la57,
                    sme_mask,
                    0,
                );
                let pa = probe.walk(mem, VirtAddr(va))?.phys.0;
                (pa, pa.wrapping_sub(va.wrapping_sub(START_KERNEL_MAP)))
            }
            (Some(va), None, None) => {
                let pb = find_phys_base(mem, va, la57, sme_mask).ok_or_else(|| {
                    TranslateError::Config(
                        "phys_base is absent from the dump and no self-mapping page table was found"
                            .into(),
                    )
                })?;
                (image_pa(va, pb), pb)
            }
            (None, pb, Some(cr3)) => {
                let root = kernel_root_from_cr3(mem, cr3, la57, sme_mask);
                let pb = match pb {
                    Some(pb) => pb,
                    None => phys_base_from_image_mapping(mem, root, la57, sme_mask).ok_or_else(
                        || {
                            TranslateError::Config(
                                "phys_base is absent and the kernel image mapping is empty".into(),
                            )
                        },
                    )?,
                };
                (root, pb)
            }
            (None, _, None) => {
                return Err(TranslateError::Config(
                    "no page-table root: VMCOREINFO has no init_top_pgt/swapper_pg_dir and the \
                     dump no CR3"
                        .into(),
                ));
            }
        };

        let mut t = X86_64::new(root, la57, sme_mask, phys_base);
        let image_size = cfg
            .numbers
            .get("KERNEL_IMAGE_SIZE")
            .map(|&v| v as u64)
            .filter(|&v| v > 0 && v <= 1 << 31)
            .unwrap_or(DEFAULT_KERNEL_IMAGE_SIZE);
        // page_offset_base: the kernel variable if the caller knows its address, else discovered
        let pob = cfg
            .symbols
            .get("page_offset_base")
            .and_then(|&sym| {
                let mut b = [0u8; 8];
                let pa = t.walk(mem, VirtAddr(sym)).ok()?.phys;
                mem.read_phys(pa, &mut b).ok()?;
                Some(u64::from_le_bytes(b))
            })
            .or_else(|| t.find_page_offset_base(mem));
        t.prepare_fast_path(mem, pob, image_size);
        Ok(t)
    }

    /// Enables or disables the arithmetic fast path (on by default).
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }

    pub fn root(&self) -> u64 {
        self.root
    }
    pub fn phys_base(&self) -> u64 {
        self.phys_base
    }
    pub fn la57(&self) -> bool {
        self.la57
    }
    /// The direct map's base, when known.
    pub fn page_offset_base(&self) -> Option<u64> {
        self.page_offset_base
    }

    /// Records the direct-map base and proves, from the tables, which kernel-image addresses
    /// and which direct-map addresses of the dump's memory are mapped at the linear offset, so
    /// the fast path answers exactly as the walk would. (Dumps may hold memory the kernel never
    /// mapped, such as a QEMU framebuffer, and the kernel unmaps some pages of its own.)
    pub fn prepare_fast_path(&mut self, mem: &dyn PhysMem, pob: Option<u64>, image_size: u64) {
        self.page_offset_base = pob;
        let image_end = START_KERNEL_MAP.saturating_add(image_size);
        self.image = self.format.scan_linear(
            mem,
            self.root,
            &[(START_KERNEL_MAP, image_end)],
            START_KERNEL_MAP.wrapping_sub(self.phys_base),
        );
        self.direct = match pob {
            Some(pob) => {
                let ranges: Vec<(u64, u64)> = mem
                    .ranges()
                    .iter()
                    .filter_map(|r| {
                        let s = pob.checked_add(r.start.0)?;
                        let e = pob.checked_add(r.end.0)?;
                        Some((s, e))
                    })
                    .collect();
                self.format.scan_linear(mem, self.root, &ranges, pob)
            }
            None => LinearIntervals::default(),
        };
    }

    /// Bytes of the kernel image and of the direct map the fast path covers.
    pub fn fast_path_coverage(&self) -> (u64, u64) {
        (self.image.len_bytes(), self.direct.len_bytes())
    }

    /// The arithmetic translation of direct-map and kernel-image addresses, or `None` where the
    /// tables do not map them linearly.
    pub fn fast_translate(&self, va: VirtAddr) -> Option<Translation> {
        for lin in [&self.image, &self.direct] {
            if lin.contains(va.0) {
                // intervals are page-aligned; promise no more than one page
                return Some(Translation {
                    phys: PhysAddr(va.0.wrapping_sub(lin.delta)),
                    mapping_size: 4096,
                });
            }
        }
        None
    }

    /// The full table walk (no fast path).
    pub fn walk(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        if !is_canonical(va.0, self.format.va_bits()) {
            return Err(TranslateError::NonCanonical { va });
        }
        self.format.walk(mem, self.root, va)
    }

    /// Finds `page_offset_base` from the tables: the direct map is the first region KASLR
    /// places at or above the default base, and its lowest address maps physical 0.
    pub fn find_page_offset_base(&self, mem: &dyn PhysMem) -> Option<u64> {
        let start = if self.la57 {
            PAGE_OFFSET_BASE_L5
        } else {
            PAGE_OFFSET_BASE_L4
        };
        let mut va = start;
        // step by 1 GiB through present upper levels; skip whole unmapped top-level slots
        let mut steps = 0u32;
        while va >= start && steps < 1 << 20 {
            steps += 1;
            match self.walk(mem, VirtAddr(va)) {
                Ok(t) => {
                    return (t.phys.0 == 0).then_some(va);
                }
                Err(TranslateError::NotMapped { level, .. }) => {
                    // the unmapped entry at `level` covers 2^shift bytes: skip to its end
                    let shift = self
                        .format
                        .levels
                        .get(usize::from(level).saturating_sub(1))
                        .map(|l| l.shift)
                        .unwrap_or(30)
                        .max(30);
                    let next = (va | ((1u64 << shift) - 1)).checked_add(1)?;
                    va = next;
                }
                Err(_) => return None,
            }
        }
        None
    }
}

impl Translator for X86_64 {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    /// A process's tables have the kernel's format; its user half is walked from its own PGD
    /// (with page-table isolation, `mm->pgd` is the kernel-mode PGD, which maps both halves).
    fn user_space(&self, root: PhysAddr) -> Option<Box<dyn Translator>> {
        let mut t = X86_64::new(root.0, self.la57, self.sme_mask, self.phys_base);
        t.set_fast_path(false);
        Some(Box::new(t))
    }

    fn translate(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        if self.fast_path {
            if let Some(t) = self.fast_translate(va) {
                return Ok(t);
            }
        }
        self.walk(mem, va)
    }
}

/// With page-table isolation the CPU may have been running on a process's user page table,
/// which sits 4 KiB above the kernel one (`PTI_USER_PGTABLE_BIT` is bit 12, the kernel one is
/// 8 KiB-aligned) and maps almost nothing of the kernel. When CR3 has bit 12 set, the page below
/// is used if it maps the kernel image and the given one does not.
pub fn kernel_root_from_cr3(mem: &dyn PhysMem, cr3: u64, la57: bool, sme_mask: u64) -> u64 {
    if cr3 & 0x1000 == 0 {
        return cr3;
    }
    let maps_image = |root: u64| phys_base_from_image_mapping(mem, root, la57, sme_mask).is_some();
    let below = cr3 & !0x1000;
    if !maps_image(cr3) && maps_image(below) {
        below
    } else {
        cr3
    }
}

/// `phys_base` read off the kernel image mapping itself: every mapped address of the
/// `__START_KERNEL_map` region satisfies `pa = va - __START_KERNEL_map + phys_base`, so the first
/// mapped 2 MiB slot gives it.
pub fn phys_base_from_image_mapping(
    mem: &dyn PhysMem,
    root: u64,
    la57: bool,
    sme_mask: u64,
) -> Option<u64> {
    let t = X86_64::new(root, la57, sme_mask, 0);
    (0..512u64).find_map(|slot| {
        let va = START_KERNEL_MAP + (slot << 21);
        let pa = t.walk(mem, VirtAddr(va)).ok()?.phys.0;
        Some(pa.wrapping_sub(va - START_KERNEL_MAP))
    })
}

/// Physical address of a kernel-image virtual address.
pub fn image_pa(va: u64, phys_base: u64) -> u64 {
    va.wrapping_sub(START_KERNEL_MAP).wrapping_add(phys_base)
}

/// When the dump names no `phys_base`: the kernel is loaded at a 2 MiB-aligned address
/// (`CONFIG_PHYSICAL_ALIGN`), so the root table's physical address is congruent to its image
/// offset modulo 2 MiB. The candidate whose table maps the root's own virtual address back to
/// itself is the one.
pub fn find_phys_base(mem: &dyn PhysMem, pgd_va: u64, la57: bool, sme_mask: u64) -> Option<u64> {
    const ALIGN: u64 = 1 << 21;
    let off = pgd_va.wrapping_sub(START_KERNEL_MAP);
    let rem = off % ALIGN;
    for r in mem.ranges() {
        let mut pa = r.start.0 - r.start.0 % ALIGN + rem;
        while pa < r.end.0 {
            if pa >= r.start.0 && mem.is_dumped(PhysAddr(pa)) {
                let t = X86_64::new(pa, la57, sme_mask, 0);
                if let Ok(tr) = t.walk(mem, VirtAddr(pgd_va)) {
                    if tr.phys.0 == pa {
                        return Some(pa.wrapping_sub(off));
                    }
                }
            }
            pa = pa.checked_add(ALIGN)?;
        }
    }
    None
}
