//! aarch64 (arm64) stage-1 translation of kernel (TTBR1) addresses.
//!
//! # Scheme
//! The granule (4, 16 or 64 KiB, from `PAGESIZE`) fixes the page shift `p` (12, 14, 16); every
//! table is one granule of 8-byte little-endian descriptors, so each level indexes `p - 3` VA bits
//! (9, 11, 13). The number of levels follows from the VA size: `ceil((va_bits - p) / (p - 3))`,
//! the top level taking what is left. Descriptor bit 0 is "valid"; at levels above the last,
//! bit 1 set means "table" and clear means "block"; at the last level bit 1 must be set ("page").
//! Blocks exist at level 1 (1 GiB) and level 2 (2 MiB) with 4K pages, at level 2 (32 MiB) with
//! 16K pages, at level 2 (512 MiB) with 64K pages (and level 1, 4 TiB, with 52-bit PAs).
//! The output address is bits `[47:p]`; with 52-bit physical addresses the top bits move into
//! the descriptor: 64K granule (`ARM64_PA_BITS_52`, LPA): PA[51:48] in bits [15:12];
//! 4K/16K granule (LPA2, 6.9+): PA[51:50] in bits [9:8] and PA[49:p] in place.
//!
//! # Sizes and layout
//! `NUMBER(VA_BITS)` is the kernel's configured VA size; `NUMBER(TCR_EL1_T1SZ)` gives the size the
//! hardware actually used (`64 - T1SZ`; a 52-bit kernel on 48-bit hardware runs with 48). With
//! the 64K (and 16K) granule a 52-bit kernel keeps its 52-bit-sized `swapper_pg_dir` and points
//! TTBR1 at the part a 48-bit walk uses; indexing the 52-bit table with the sign-extended 48-bit
//! address selects exactly that part, so the walk uses the configured geometry. With the 4K
//! granule the top level is folded at run time and the walk uses the actual size.
//!
//! `swapper_pg_dir` is a kernel-image symbol: `pa = va - kimage_voffset` (VMCOREINFO
//! `NUMBER(kimage_voffset)`; symbols are already KASLR-shifted). The linear map moved in 5.4:
//! before, `PAGE_OFFSET = -(1 << (VA_BITS - 1))` (the top half of the kernel range) with the image
//! in the bottom half; from 5.4, `PAGE_OFFSET = -(1 << VA_BITS)` (the bottom half) with the image
//! in the top half. Either way `pa = va - PAGE_OFFSET + PHYS_OFFSET` (`NUMBER(PHYS_OFFSET)`,
//! which the kernel already adjusts for a 52-bit build on 48-bit hardware). The layout is told
//! apart by which half holds the image. The fast path answers only inside the parts of the
//! linear map a one-time scan of the tables found mapped at that offset, so it agrees with the
//! walk by construction (firmware "no-map" holes and unmapped pages fall back to the walk). Pointer-authentication bits (`NUMBER(KERNELPACMASK)`) are
//! stripped from kernel addresses before translation.

use crate::addr::{Arch, Endian, PhysAddr, VirtAddr};
use crate::dump::PhysMem;

use super::radix::{Entry, EntryDecoder, Level, LinearIntervals, RadixFormat};
use super::{TranslateError, Translation, TranslationConfig, Translator};

/// Layout parameters of an aarch64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aarch64Params {
    /// Page size: 4096, 16384 or 65536.
    pub page_size: u64,
    /// `CONFIG_ARM64_VA_BITS` (`NUMBER(VA_BITS)`).
    pub va_bits: u32,
    /// The VA size the hardware walked with (`64 - TCR_EL1_T1SZ`); equals `va_bits` on most
    /// systems.
    pub va_bits_actual: u32,
    /// Physical address size; 52 selects the LPA/LPA2 descriptor encodings.
    pub pa_bits: u32,
}

impl Aarch64Params {
    fn page_shift(&self) -> Option<u32> {
        match self.page_size {
            4096 => Some(12),
            16384 => Some(14),
            65536 => Some(16),
            _ => None,
        }
    }
    /// The VA size that sets the table geometry (see the module docs).
    fn walk_va_bits(&self) -> u32 {
        if self.page_size == 4096 {
            self.va_bits_actual
        } else {
            self.va_bits
        }
    }
}

struct Aarch64Entry {
    page_shift: u32,
    pa_bits: u32,
}

impl EntryDecoder for Aarch64Entry {
    fn decode(&self, raw: u64, level: &Level, last: bool) -> Entry {
        if raw & 1 == 0 {
            return Entry::Invalid;
        }
        let is_table_or_page = raw & 2 != 0;
        let addr = self.output_address(raw);
        if last {
            return if is_table_or_page {
                Entry::Leaf(addr)
            } else {
                Entry::Invalid
            };
        }
        if is_table_or_page {
            Entry::Table(addr)
        } else if level.leaf_allowed {
            Entry::Leaf(addr & !((1u64 << level.shift) - 1))
        } else {
            Entry::Invalid
        }
    }
}

impl Aarch64Entry {
    fn output_address(&self, raw: u64) -> u64 {
        let p = self.page_shift;
        if self.pa_bits >= 52 {
            if p == 16 {
                let low = raw & 0x0000_ffff_ffff_0000;
                let high = ((raw >> 12) & 0xf) << 48;
                return low | high;
            }
            let low = raw & (0x0003_ffff_ffff_ffff & !((1u64 << p) - 1));
            let high = ((raw >> 8) & 0x3) << 50;
            return low | high;
        }
        raw & (0x0000_ffff_ffff_ffff & !((1u64 << p) - 1))
    }
}

/// The table geometry for a granule and VA size.
pub fn format(params: &Aarch64Params) -> Result<RadixFormat, TranslateError> {
    let p = params.page_shift().ok_or_else(|| {
        TranslateError::Config(format!(
            "aarch64 page size {} is not 4K, 16K or 64K",
            params.page_size
        ))
    })?;
    for vb in [params.va_bits, params.va_bits_actual] {
        if !(36..=52).contains(&vb) {
            return Err(TranslateError::Config(format!(
                "aarch64 VA_BITS {vb} is out of range (36..=52)"
            )));
        }
    }
    let va_bits = params.walk_va_bits();
    let per = p - 3;
    let nlevels = (va_bits - p).div_ceil(per);
    let mut levels = Vec::new();
    for i in 0..nlevels {
        // i = 0 is the top level; hardware level number is 4 - nlevels + i
        let shift = p + per * (nlevels - 1 - i);
        let bits = if i == 0 { va_bits - shift } else { per };
        let hw_level = 4 + i - nlevels;
        let leaf_allowed = match (p, hw_level) {
            (12, 1) | (12, 2) => true,
            (14, 2) => true,
            (16, 2) => true,
            (16, 1) => params.pa_bits >= 52,
            _ => false,
        };
        levels.push(Level {
            shift,
            bits,
            leaf_allowed,
        });
    }
    Ok(RadixFormat {
        levels,
        entry_size: 8,
        endian: Endian::Little,
        decoder: Box::new(Aarch64Entry {
            page_shift: p,
            pa_bits: params.pa_bits,
        }),
    })
}

/// The aarch64 translator.
pub struct Aarch64 {
    params: Aarch64Params,
    format: RadixFormat,
    root: u64,
    pac_mask: u64,
    /// `(PAGE_OFFSET, PHYS_OFFSET)` of the linear map, when the walk confirmed the layout.
    linear: Option<(u64, u64)>,
    /// Linear-map addresses of the dump's memory the tables map at the linear offset.
    proved: LinearIntervals,
    /// Kernel-image addresses the tables map at `va - kimage_voffset`.
    image: LinearIntervals,
}

impl Aarch64 {
    pub fn new(params: Aarch64Params, root: u64) -> Result<Aarch64, TranslateError> {
        Ok(Aarch64 {
            format: format(&params)?,
            params,
            root,
            pac_mask: 0,
            linear: None,
            proved: LinearIntervals::default(),
            image: LinearIntervals::default(),
        })
    }

    /// Strips pointer-authentication bits from kernel addresses.
    pub fn set_pac_mask(&mut self, mask: u64) {
        self.pac_mask = mask;
    }

    pub fn params(&self) -> Aarch64Params {
        self.params
    }
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Builds the translator from VMCOREINFO: `PAGESIZE`, `NUMBER(VA_BITS)`,
    /// `NUMBER(TCR_EL1_T1SZ)`, `NUMBER(MAX_PHYSMEM_BITS)`, `NUMBER(kimage_voffset)`,
    /// `NUMBER(PHYS_OFFSET)`, `NUMBER(KERNELPACMASK)` and `SYMBOL(swapper_pg_dir)`.
    pub fn from_config(
        mem: &dyn PhysMem,
        cfg: &TranslationConfig,
    ) -> Result<Aarch64, TranslateError> {
        let num = |k: &str| cfg.numbers.get(k).map(|&v| v as u64);
        let va_bits = num("VA_BITS").unwrap_or(48) as u32;
        let va_bits_actual = num("TCR_EL1_T1SZ")
            .filter(|&t| (12..=28).contains(&t))
            .map(|t| 64 - t as u32)
            .unwrap_or(va_bits);
        let pa_bits = num("MAX_PHYSMEM_BITS").unwrap_or(48) as u32;
        let params = Aarch64Params {
            page_size: if cfg.page_size == 0 {
                4096
            } else {
                cfg.page_size
            },
            va_bits,
            va_bits_actual,
            pa_bits,
        };
        let kimage_voffset = num("kimage_voffset");
        let pgd_va = cfg
            .pgd_va
            .or_else(|| cfg.symbols.get("swapper_pg_dir").copied());
        let root = match (pgd_va, kimage_voffset, cfg.pgd_phys) {
            (Some(va), Some(kv), _) => va.wrapping_sub(kv),
            (_, _, Some(pa)) => pa & 0x0000_ffff_ffff_fffe,
            _ => {
                return Err(TranslateError::Config(
                    "aarch64 needs SYMBOL(swapper_pg_dir) and NUMBER(kimage_voffset), or a TTBR1 \
                     value"
                        .into(),
                ));
            }
        };
        let mut t = Aarch64::new(params, root)?;
        t.set_pac_mask(num("KERNELPACMASK").unwrap_or(0));
        if let Some(phys_offset) = num("PHYS_OFFSET") {
            let image = pgd_va.or_else(|| cfg.symbols.get("_stext").copied());
            t.prepare_fast_path(mem, phys_offset, image);
        }
        if let (Some(kv), Some(stext)) = (kimage_voffset, cfg.symbols.get("_stext").copied()) {
            t.prepare_image_fast_path(mem, stext, kv);
        }
        Ok(t)
    }

    /// Sets up the linear-map fast path: works out `PAGE_OFFSET` for the layout, then scans
    /// the tables for the parts of the dump's memory they map at the linear offset.
    pub fn prepare_fast_path(
        &mut self,
        mem: &dyn PhysMem,
        phys_offset: u64,
        image_va: Option<u64>,
    ) {
        let vb = self.params.va_bits;
        // 5.4 flip: the image sits in the top half of the kernel range from 5.4 on
        let flipped = image_va
            .map(|va| va & (1u64 << (vb - 1)) != 0)
            .unwrap_or(true);
        let (page_offset, end) = if flipped {
            // [PAGE_OFFSET, PAGE_END): PAGE_END = -(1 << (VA_BITS_MIN - 1)), VA_BITS_MIN being
            // 48 for a 52-bit build (it may run on 48-bit hardware)
            let va_bits_min = vb.min(48);
            (
                0u64.wrapping_sub(1u64 << vb),
                0u64.wrapping_sub(1u64 << (va_bits_min - 1)),
            )
        } else {
            (0u64.wrapping_sub(1u64 << (vb - 1)), u64::MAX)
        };
        let delta = page_offset.wrapping_sub(phys_offset);
        let ranges: Vec<(u64, u64)> = mem
            .ranges()
            .iter()
            .filter_map(|r| {
                let s = r.start.0.wrapping_add(delta);
                let e = r.end.0.wrapping_add(delta);
                // only the part inside [PAGE_OFFSET, PAGE_END) is linear-map
                let (s, e) = (
                    s.max(page_offset),
                    if end == u64::MAX { e } else { e.min(end) },
                );
                (s >= page_offset && s < e).then_some((s, e))
            })
            .collect();
        self.proved = self.format.scan_linear(mem, self.root, &ranges, delta);
        self.linear = (self.proved.len_bytes() > 0).then_some((page_offset, phys_offset));
    }

    /// Scans the kernel image's mapping: from `_stext` rounded down to 2 MiB over
    /// `IMAGE_SCAN` bytes (the 6.1 arm64 image is ~40 MiB), keeping what the tables map at
    /// `pa = va - kimage_voffset`.
    pub fn prepare_image_fast_path(&mut self, mem: &dyn PhysMem, stext: u64, kimage_voffset: u64) {
        const IMAGE_SCAN: u64 = 256 << 20;
        let start = stext & !((2 << 20) - 1);
        let Some(end) = start.checked_add(IMAGE_SCAN) else {
            return;
        };
        if start >> self.params.va_bits_actual != u64::MAX >> self.params.va_bits_actual {
            return;
        }
        self.image = self
            .format
            .scan_linear(mem, self.root, &[(start, end)], kimage_voffset);
    }

    /// Bytes of the linear map and of the kernel image the fast path covers.
    pub fn fast_path_coverage(&self) -> (u64, u64) {
        (self.proved.len_bytes(), self.image.len_bytes())
    }

    /// The linear-map address of a physical address, if the layout is known.
    pub fn phys_to_linear(&self, pa: u64) -> Option<u64> {
        let (po, phys_off) = self.linear?;
        Some(pa.wrapping_sub(phys_off).wrapping_add(po))
    }

    fn strip(&self, va: u64) -> u64 {
        // PAC bits only ever sit in kernel (bit 55 set) pointers
        if va & (1 << 55) != 0 {
            va | self.pac_mask
        } else {
            va
        }
    }

    /// Arithmetic translation of linear-map and kernel-image addresses, inside the intervals the
    /// set-up scan proved.
    pub fn fast_translate(&self, va: VirtAddr) -> Option<Translation> {
        let va = self.strip(va.0);
        [&self.proved, &self.image]
            .into_iter()
            .find(|lin| lin.contains(va))
            .map(|lin| Translation {
                phys: PhysAddr(va.wrapping_sub(lin.delta)),
                mapping_size: self.params.page_size,
            })
    }

    /// The full walk from `swapper_pg_dir`.
    pub fn walk(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        let stripped = VirtAddr(self.strip(va.0));
        // TTBR1 covers [2^64 - 2^vb, 2^64) (bits 63..vb all ones), TTBR0 [0, 2^vb)
        let vb = self.params.va_bits_actual;
        let high = stripped.0 >> vb;
        if high == 0 {
            return Err(TranslateError::Unsupported(format!(
                "{va} is a user-space (TTBR0) address; only kernel addresses are translated"
            )));
        }
        if high != u64::MAX >> vb {
            return Err(TranslateError::NonCanonical { va });
        }
        self.format.walk(mem, self.root, stripped)
    }
}

impl Translator for Aarch64 {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }
    fn translate(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        if let Some(t) = self.fast_translate(va) {
            return Ok(t);
        }
        self.walk(mem, va)
    }
}
