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
//! the ASCE's type is not in VMCOREINFO: it is read from the first valid entry's TT field.
//! From 6.10 (arch/s390/boot/startup.c `setup_kernel_memory_layout`, asm/page.h `__pa`) the
//! kernel image runs at a virtual base of its own, `__kaslr_offset` (randomized by KASLR, just
//! below the top of the address space), loaded at physical `__kaslr_offset_phys`, and the
//! direct map starts at `__identity_base` (which KASLR may randomize too): `pa = va -
//! __kaslr_offset + __kaslr_offset_phys` for an image address (`va >= __kaslr_offset`), `pa = va -
//! __identity_base` below. VMCOREINFO exports the three as `KERNELOFFSET`, `KERNELOFFPHYS` and
//! `IDENTITYBASE` (arch/s390/kernel/vmcore_info.c); the vmlinux is linked at 0, so `KERNELOFFSET`
//! is also the symbol shift. The layout is told by `KERNELOFFPHYS` being there, not by a version:
//! `swapper_pg_dir`'s physical address is then computed from it, and the walk does the rest. Each
//! CPU's first 8 KiB of real storage (its lowcore) is relocated by the prefix register; the
//! dump stores absolute storage, and `SYMBOL(lowcore_ptr)` lists each CPU's lowcore address.
//! [`S390x::set_prefix`] applies one CPU's prefixing (real 0..8K ↔ prefix) after translation,
//! for callers that read "address 0" as a given CPU saw it.
//!
//! # VMCOREINFO without the note
//! A dump QEMU takes of an s390x guest carries no VMCOREINFO note (QEMU's vmcoreinfo device
//! needs fw_cfg, which s390x lacks). The kernel's copy is in memory and reachable from the
//! absolute lowcore (the first 8 KiB of absolute storage, `struct lowcore` in
//! arch/s390/include/asm/lowcore.h), all big-endian ([`vmcoreinfo_in_memory`]):
//! - `os_info` (u64 at absolute 0xe18) is the physical address of the page-aligned
//!   `struct os_info` (arch/s390/include/asm/os_info.h, arch/s390/kernel/os_info.c): `magic`
//!   (u64, "OSINFOSZ"), `csum` (u32, over the rest of the 4 KiB page from `version_major` at
//!   offset 12), `version_major`/`version_minor` (u16 each), `crashkernel_addr`/`_size` (u64
//!   each), then packed 20-byte entries at offset 32: `addr` (u64, physical), `size` (u64),
//!   `csum` (u32, over the entry's bytes). Entry 0 (`OS_INFO_VMCOREINFO`) is the VMCOREINFO text;
//!   the kernel fills it for kdump (it is empty in a guest that never loaded a crash kernel).
//! - `vmcore_info` (u64 at absolute 0xe0c, set by `arch_crash_save_vmcoreinfo` in
//!   arch/s390/kernel/machine_kexec.c, vmcore_info.c from 6.9) is the physical address of the
//!   VMCOREINFO ELF note itself (`Elf64_Nhdr`, name "VMCOREINFO"); it has no checksum, so its text
//!   must at least name `OSRELEASE=`.
//!
//! The checksums are the s390 `csum_partial` (the CKSM instruction): the 32-bit one's-complement
//! sum (end-around carry) of the big-endian 4-byte words, a last partial word padded with zeros.

use crate::addr::{Arch, PhysAddr, VirtAddr};
use crate::dump::{DumpError, PhysMem};

use super::{TranslateError, Translation, TranslationConfig, Translator};

const INVALID_REGION: u64 = 0x20;
const INVALID_PAGE: u64 = 0x400;
const FC: u64 = 0x400;
const LOWCORE_SIZE: u64 = 0x2000;

/// Absolute lowcore: the physical address of `struct os_info`.
const LC_OS_INFO: u64 = 0xe18;
/// Absolute lowcore: the physical address of the VMCOREINFO ELF note.
const LC_VMCORE_INFO: u64 = 0xe0c;
/// `OS_INFO_MAGIC`, "OSINFOSZ".
const OS_INFO_MAGIC: u64 = 0x4f53_494e_464f_535a;
/// `struct os_info` fills one page; its checksum covers it from `version_major` on.
const OS_INFO_SIZE: usize = 4096;
const OS_INFO_CSUM_FROM: usize = 12;
const OS_INFO_ENTRIES: usize = 32;
/// The longest VMCOREINFO text accepted (the kernel's buffer is one page, `VMCOREINFO_BYTES`).
const VMCOREINFO_MAX: u64 = 64 << 10;

/// Where [`vmcoreinfo_in_memory`] found the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmcoreinfoFound {
    /// `os_info` entry 0, checksum verified.
    OsInfo(PhysAddr),
    /// The ELF note the lowcore's `vmcore_info` points at.
    LowcoreNote(PhysAddr),
}

/// The s390 `csum_partial` (CKSM) of `data`: the 32-bit one's-complement sum of its big-endian
/// words, a last partial word padded with zeros on the right.
pub fn cksm(data: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for w in data.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        sum += u64::from(u32::from_be_bytes(b));
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

fn read_be_u64(mem: &dyn PhysMem, addr: u64) -> Result<u64, String> {
    let mut b = [0u8; 8];
    mem.read_phys(PhysAddr(addr), &mut b)
        .map_err(|e| format!("cannot read {addr:#x}: {e}"))?;
    Ok(u64::from_be_bytes(b))
}

fn read_bounded(mem: &dyn PhysMem, addr: u64, len: u64, what: &str) -> Result<Vec<u8>, String> {
    if len == 0 || len > VMCOREINFO_MAX {
        return Err(format!("{what} at {addr:#x} claims {len} bytes"));
    }
    let mut buf = vec![0u8; len as usize];
    mem.read_phys(PhysAddr(addr), &mut buf)
        .map_err(|e| format!("cannot read {what} ({len} bytes at {addr:#x}): {e}"))?;
    Ok(buf)
}

/// VMCOREINFO from `os_info` entry 0 (see the module documentation): `Ok(None)` when the block
/// is valid but the entry is empty.
fn vmcoreinfo_from_os_info(mem: &dyn PhysMem) -> Result<Option<(String, PhysAddr)>, String> {
    let addr = read_be_u64(mem, LC_OS_INFO)?;
    if addr == 0 || addr % OS_INFO_SIZE as u64 != 0 {
        return Err(format!(
            "lowcore os_info pointer {addr:#x} is not a page address"
        ));
    }
    let mut page = vec![0u8; OS_INFO_SIZE];
    mem.read_phys(PhysAddr(addr), &mut page)
        .map_err(|e| format!("cannot read os_info at {addr:#x}: {e}"))?;
    let be64 = |o: usize| u64::from_be_bytes(page[o..o + 8].try_into().unwrap_or([0; 8]));
    let be32 = |o: usize| u32::from_be_bytes(page[o..o + 4].try_into().unwrap_or([0; 4]));
    if be64(0) != OS_INFO_MAGIC {
        return Err(format!("no os_info magic at {addr:#x}"));
    }
    let (want, got) = (be32(8), cksm(&page[OS_INFO_CSUM_FROM..]));
    if want != got {
        return Err(format!(
            "os_info at {addr:#x}: checksum {got:#x}, the block says {want:#x}"
        ));
    }
    let e = OS_INFO_ENTRIES;
    let (entry, size, csum) = (be64(e), be64(e + 8), be32(e + 16));
    if entry == 0 {
        return Ok(None);
    }
    let text = read_bounded(mem, entry, size, "os_info VMCOREINFO entry")?;
    let got = cksm(&text);
    if got != csum {
        return Err(format!(
            "os_info VMCOREINFO entry at {entry:#x}: checksum {got:#x}, os_info says {csum:#x}"
        ));
    }
    Ok(Some((
        String::from_utf8_lossy(&text)
            .trim_end_matches('\0')
            .to_string(),
        PhysAddr(entry),
    )))
}

/// VMCOREINFO from the ELF note the lowcore's `vmcore_info` points at.
fn vmcoreinfo_from_lowcore_note(mem: &dyn PhysMem) -> Result<(String, PhysAddr), String> {
    let addr = read_be_u64(mem, LC_VMCORE_INFO)?;
    if addr == 0 {
        return Err("lowcore vmcore_info pointer is 0".into());
    }
    let mut h = [0u8; 24];
    mem.read_phys(PhysAddr(addr), &mut h)
        .map_err(|e| format!("cannot read the VMCOREINFO note at {addr:#x}: {e}"))?;
    let namesz = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let descsz = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if namesz != 11 || &h[12..23] != b"VMCOREINFO\0" {
        return Err(format!("no VMCOREINFO note at {addr:#x}"));
    }
    let text = read_bounded(mem, addr + 24, u64::from(descsz), "VMCOREINFO note")?;
    let text = String::from_utf8_lossy(&text)
        .trim_end_matches('\0')
        .to_string();
    if !text.starts_with("OSRELEASE=") {
        return Err(format!(
            "the VMCOREINFO note at {addr:#x} does not start with OSRELEASE="
        ));
    }
    Ok((text, PhysAddr(addr)))
}

/// The kernel's VMCOREINFO text as it lies in an s390x dump's memory, for a dump without the
/// note: `os_info` entry 0 when the kernel filled it (checksums verified), else the note the
/// lowcore points at. Every pointer is bounded and checked; `Err` says why neither was usable.
pub fn vmcoreinfo_in_memory(mem: &dyn PhysMem) -> Result<(String, VmcoreinfoFound), String> {
    let os_info = match vmcoreinfo_from_os_info(mem) {
        Ok(Some((text, at))) => return Ok((text, VmcoreinfoFound::OsInfo(at))),
        Ok(None) => "os_info has no VMCOREINFO entry".to_string(),
        Err(e) => e,
    };
    match vmcoreinfo_from_lowcore_note(mem) {
        Ok((text, at)) => Ok((text, VmcoreinfoFound::LowcoreNote(at))),
        Err(e) => Err(format!("{os_info}; {e}")),
    }
}

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
        // from 6.10 the kernel image is not identity-mapped: VMCOREINFO's KERNELOFFPHYS says
        // where it lies in physical memory
        let root = match (cfg.pgd_phys, kernel_image_phys(cfg, root)) {
            (None, Some(pa)) => pa,
            _ => root,
        };
        let mem_end = mem.ranges().last().map(|r| r.end.0).unwrap_or(0);
        if cfg.pgd_phys.is_none() && root & !0xfff >= mem_end {
            return Err(TranslateError::Unsupported(format!(
                "s390x swapper_pg_dir {root:#x} is neither an identity-mapped address inside the \
                 dump's memory nor, for want of VMCOREINFO's KERNELOFFSET and KERNELOFFPHYS, \
                 translatable as a 6.10+ kernel-image address"
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

/// The physical address of a kernel-image address `va` in the 6.10+ layout (see the module
/// documentation): `None` without VMCOREINFO's `KERNELOFFPHYS` (an identity-mapped kernel) or for
/// an address below the image's base `KERNELOFFSET`.
pub fn kernel_image_phys(cfg: &TranslationConfig, va: u64) -> Option<u64> {
    let phys_base = cfg
        .other
        .get("KERNELOFFPHYS")
        .and_then(|v| u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok())?;
    let virt_base = cfg.kaslr_offset;
    (va >= virt_base).then(|| va - virt_base + phys_base)
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
