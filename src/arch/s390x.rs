//! s390x (z/Architecture) dynamic address translation of kernel addresses.
//!
//! # Scheme
//! A 64-bit address is cut (counting from the least significant bit) into the region-first
//! index (bits 53..63), region-second (42..52), region-third (31..41), segment (20..30), page
//! (12..19) and byte (0..11) parts. Region and segment tables hold 2048 8-byte entries (16 KiB),
//! page tables 256 (2 KiB). All entries are big-endian.
//!
//! The address-space-control element (ASCE) names the top table: its origin (bits 12..63 of
//! the value), its designation type DT (`(asce >> 2) & 3`: 3 region-first, 2 region-second,
//! 1 region-third, 0 segment) and its length TL (`asce & 3`, in units of 512 entries). A top
//! level below region-first limits the address space (2^53, 2^42, 2^31 bytes); larger addresses
//! are an exception, reported here as non-canonical. Region entries carry their own table type
//! (TT, bits 2..3), an offset TF (bits 6..7) and length TL (bits 0..1) for the next table, and an
//! invalid bit (0x20). A region-third entry with FC (0x400) set maps a 2 GiB frame; a segment
//! entry with FC maps a 1 MiB frame; otherwise a segment entry points at a page table
//! (origin bits 11..63). A page-table entry is invalid when bit 0x400 is set.
//!
//! # The kernel's layout and the lowcore
//! Before 6.10 the kernel and its direct map are identity-mapped (virtual == physical), so the
//! kernel page table `swapper_pg_dir` is at the physical address equal to its symbol value, and
//! the ASCE's type is not in VMCOREINFO: it is read from the first valid entry's TT field. Each
//! CPU's first 8 KiB of real storage (its lowcore) is relocated by the prefix register; the
//! dump stores absolute storage, and `SYMBOL(lowcore_ptr)` lists each CPU's lowcore address.
//! [`S390x::set_prefix`] applies one CPU's prefixing (real 0..8K ↔ prefix) after translation,
//! for callers that read "address 0" as a given CPU saw it.

use crate::addr::{Arch, PhysAddr, VirtAddr};
use crate::dump::{DumpError, PhysMem};

use super::{TranslateError, Translation, TranslationConfig, Translator};

const INVALID_REGION: u64 = 0x20;
const INVALID_PAGE: u64 = 0x400;
const FC: u64 = 0x400;
const LOWCORE_SIZE: u64 = 0x2000;

/// The table levels, named by the ASCE designation type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopLevel {
    Segment = 0,
    RegionThird = 1,
    RegionSecond = 2,
    RegionFirst = 3,
}

impl TopLevel {
    pub fn from_dt(dt: u64) -> TopLevel {
        match dt & 3 {
            0 => TopLevel::Segment,
            1 => TopLevel::RegionThird,
            2 => TopLevel::RegionSecond,
            _ => TopLevel::RegionFirst,
        }
    }
    /// Bytes addressable from this top level.
    pub fn va_bits(self) -> u32 {
        match self {
            TopLevel::Segment => 31,
            TopLevel::RegionThird => 42,
            TopLevel::RegionSecond => 53,
            TopLevel::RegionFirst => 64,
        }
    }
}

/// The s390x translator.
pub struct S390x {
    origin: u64,
    top: TopLevel,
    /// Table length of the top table in units of 512 entries (TL + 1 quarters).
    top_len: u64,
    prefix: Option<u64>,
}

impl S390x {
    /// A translator from an ASCE value.
    pub fn from_asce(asce: u64) -> S390x {
        S390x {
            origin: asce & !0xfff,
            top: TopLevel::from_dt(asce >> 2),
            top_len: asce & 3,
            prefix: None,
        }
    }

    pub fn top_level(&self) -> TopLevel {
        self.top
    }

    /// Applies one CPU's prefix register to translated addresses below 8 KiB and in its lowcore.
    pub fn set_prefix(&mut self, prefix: Option<u64>) {
        self.prefix = prefix;
    }

    /// Builds the translator for an identity-mapped kernel: the root is `swapper_pg_dir` (or
    /// `pgd_va` / `pgd_phys`), its type read from its first valid entry.
    pub fn from_config(
        mem: &dyn PhysMem,
        cfg: &TranslationConfig,
    ) -> Result<S390x, TranslateError> {
        let root = cfg
            .pgd_phys
            .or(cfg.pgd_va)
            .or_else(|| cfg.symbols.get("swapper_pg_dir").copied())
            .ok_or_else(|| {
                TranslateError::Config(
                    "s390x needs SYMBOL(swapper_pg_dir) or a page-table root".into(),
                )
            })?;
        // from 6.10 the kernel is no longer identity-mapped (VMCOREINFO then carries
        // IDENTITYBASE and KERNELOFFPHYS); a symbol beyond the dump's memory is that layout
        let mem_end = mem.ranges().last().map(|r| r.end.0).unwrap_or(0);
        if cfg.pgd_phys.is_none() && root & !0xfff >= mem_end {
            return Err(TranslateError::Unsupported(format!(
                "s390x swapper_pg_dir {root:#x} is not an identity-mapped address inside the \
                 dump's memory (kernels from 6.10 map the kernel elsewhere)"
            )));
        }
        if root & 0xfff != 0 {
            // a full ASCE value
            return Ok(S390x::from_asce(root));
        }
        let dt = detect_top_level(mem, root)?;
        Ok(S390x::from_asce(root | ((dt as u64) << 2) | 3))
    }

    fn read_entry(
        &self,
        mem: &dyn PhysMem,
        table: u64,
        index: u64,
        va: VirtAddr,
        level: u8,
    ) -> Result<u64, TranslateError> {
        let mut b = [0u8; 8];
        let addr = table.wrapping_add(index * 8);
        match mem.read_phys(PhysAddr(addr), &mut b) {
            Ok(()) => Ok(u64::from_be_bytes(b)),
            Err(DumpError::NotDumped { .. }) | Err(DumpError::OutOfRange { .. }) => {
                Err(TranslateError::TableNotDumped {
                    va,
                    level,
                    table: PhysAddr(table),
                })
            }
            Err(source) => Err(TranslateError::Memory {
                va,
                phys: PhysAddr(addr),
                source,
            }),
        }
    }

    /// The walk, without prefixing.
    pub fn walk(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        let v = va.0;
        let top_bits = self.top.va_bits();
        if top_bits < 64 && v >> top_bits != 0 {
            return Err(TranslateError::NonCanonical { va });
        }
        // levels are numbered from the top table as 1
        let mut level: u8 = 1;
        let mut table = self.origin;
        // (table offset, table length) limits of the current table, in units of 512 entries
        let (mut tf, mut tl) = (0u64, self.top_len);
        let mut cur = self.top as u8 + 1; // 4 region-first .. 1 segment
        while cur >= 2 {
            let shift = 20 + 11 * u32::from(cur - 1);
            let index = (v >> shift) & 0x7ff;
            if index >> 9 < tf || index >> 9 > tl {
                return Err(TranslateError::NotMapped { va, level });
            }
            let e = self.read_entry(mem, table, index, va, level)?;
            if e & INVALID_REGION != 0 || (e >> 2) & 3 != u64::from(cur - 1) {
                return Err(TranslateError::NotMapped { va, level });
            }
            if cur == 2 && e & FC != 0 {
                // region-third entry with FC: a 2 GiB frame
                let size = 1u64 << 31;
                return Ok(Translation {
                    phys: PhysAddr((e & !(size - 1)) | (v & (size - 1))),
                    mapping_size: size,
                });
            }
            tf = (e >> 6) & 3;
            tl = e & 3;
            table = e & !0xfff;
            cur -= 1;
            level += 1;
        }
        // segment table
        let index = (v >> 20) & 0x7ff;
        if index >> 9 < tf || index >> 9 > tl {
            return Err(TranslateError::NotMapped { va, level });
        }
        let e = self.read_entry(mem, table, index, va, level)?;
        if e & INVALID_REGION != 0 || (e >> 2) & 3 != 0 {
            return Err(TranslateError::NotMapped { va, level });
        }
        if e & FC != 0 {
            let size = 1u64 << 20;
            return Ok(Translation {
                phys: PhysAddr((e & !(size - 1)) | (v & (size - 1))),
                mapping_size: size,
            });
        }
        let pt = e & !0x7ff;
        level += 1;
        let index = (v >> 12) & 0xff;
        let e = self.read_entry(mem, pt, index, va, level)?;
        if e & INVALID_PAGE != 0 {
            return Err(TranslateError::NotMapped { va, level });
        }
        Ok(Translation {
            phys: PhysAddr((e & !0xfff) | (v & 0xfff)),
            mapping_size: 4096,
        })
    }
}

/// Reads the designation type of a top table from the TT field of its first valid entry
/// (every entry of one table has the same type).
pub fn detect_top_level(mem: &dyn PhysMem, root: u64) -> Result<TopLevel, TranslateError> {
    let mut b = [0u8; 8];
    for i in 0..2048u64 {
        let addr = root.wrapping_add(i * 8);
        mem.read_phys(PhysAddr(addr), &mut b)
            .map_err(|_| TranslateError::TableNotDumped {
                va: VirtAddr(0),
                level: 1,
                table: PhysAddr(root),
            })?;
        let e = u64::from_be_bytes(b);
        if e & INVALID_REGION == 0 {
            return Ok(TopLevel::from_dt(e >> 2));
        }
    }
    Err(TranslateError::Config(format!(
        "s390x top table at {:#x} has no valid entry",
        root
    )))
}

impl Translator for S390x {
    fn arch(&self) -> Arch {
        Arch::S390x
    }
    fn translate(&self, mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        let mut t = self.walk(mem, va)?;
        if let Some(prefix) = self.prefix {
            // real-to-absolute: the first 8 KiB and the prefix area swap places
            let real = t.phys.0;
            if real < LOWCORE_SIZE {
                t.phys = PhysAddr(real + prefix);
                t.mapping_size = t.mapping_size.min(LOWCORE_SIZE);
            } else if real >= prefix && real < prefix + LOWCORE_SIZE {
                t.phys = PhysAddr(real - prefix);
                t.mapping_size = t.mapping_size.min(LOWCORE_SIZE);
            }
        }
        Ok(t)
    }
}
