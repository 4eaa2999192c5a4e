//! ELF notes a vmcore carries, in ELF `PT_NOTE` segments or in the kdump sub-header's note area.
//!
//! A note is `{namesz u32, descsz u32, type u32}`, then the name and the descriptor, each padded
//! to 4 bytes, all in the dumped machine's byte order. The notes that matter here:
//!
//! - owner `CORE`, type `NT_PRSTATUS` (1): one per CPU, written by the crashing kernel into its
//!   per-CPU `crash_notes` (or by QEMU for each vCPU). Layout of `struct elf_prstatus` on 64-bit
//!   targets: `pr_pid` at 32, `pr_reg` (the architecture's `elf_gregset_t`) at 112.
//! - owner `VMCOREINFO`: the VMCOREINFO text.
//! - owner `QEMU` (QEMU `dump-guest-memory`): a `QEMUCPUState` per vCPU. On x86_64 it holds the
//!   control registers: `version u32, size u32`, 18 general registers (rax…r15, rip, rflags),
//!   ten 24-byte segment descriptors, then `cr[5]`; so CR3 sits at offset 416.
//!
//! Notes are untrusted: every size is checked against the buffer and the iteration stops at the
//! first note that does not fit.

use crate::addr::{Arch, Endian};

use super::CpuState;

const NT_PRSTATUS: u32 = 1;
/// Offset of `pr_pid` in a 64-bit `struct elf_prstatus`.
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg` in a 64-bit `struct elf_prstatus`.
const PRSTATUS_REG: usize = 112;
/// Offset of `cr[3]` in QEMU's x86_64 `QEMUCPUState`.
const QEMU_X86_64_CR3: usize = 8 + 18 * 8 + 10 * 24 + 3 * 8;

/// One raw note.
#[derive(Clone, Debug)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub ntype: u32,
    pub desc: &'a [u8],
}

/// Iterates the notes of `buf`, stopping at the first malformed one.
pub fn iter(buf: &[u8], endian: Endian) -> impl Iterator<Item = Note<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let hdr = buf.get(pos..pos.checked_add(12)?)?;
        let namesz = endian.uint(hdr, 4)? as usize;
        let descsz = endian.uint(hdr.get(4..)?, 4)? as usize;
        let ntype = endian.uint(hdr.get(8..)?, 4)? as u32;
        let name_start = pos + 12;
        let name_end = name_start.checked_add(namesz)?;
        let desc_start = name_start.checked_add(pad4(namesz)?)?;
        let desc_end = desc_start.checked_add(descsz)?;
        let name = buf.get(name_start..name_end)?;
        let desc = buf.get(desc_start..desc_end)?;
        // The last note's padding may be cut off by a tight size; that is not an error.
        pos = desc_start.checked_add(pad4(descsz)?)?;
        // The name includes its NUL terminator; strip it (and any padding NULs).
        let name = match name.iter().position(|&b| b == 0) {
            Some(n) => name.get(..n)?,
            None => name,
        };
        Some(Note { name, ntype, desc })
    })
}

/// The largest pid a kernel hands out (include/linux/threads.h, 64-bit).
const PID_MAX_LIMIT: u32 = 4 << 20;

fn pad4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// What the notes of a dump told.
#[derive(Clone, Debug, Default)]
pub struct NoteInfo {
    pub vmcoreinfo: Option<String>,
    /// PRSTATUS descriptors in order, parsed later once the architecture is known.
    prstatus: Vec<Vec<u8>>,
    qemu: Vec<Vec<u8>>,
}

impl NoteInfo {
    /// Gathers the notes of `buf` into `self` (a dump may have several note segments).
    pub fn collect(&mut self, buf: &[u8], endian: Endian) {
        for note in iter(buf, endian) {
            match (note.name, note.ntype) {
                (b"CORE", NT_PRSTATUS) => self.prstatus.push(note.desc.to_vec()),
                (b"VMCOREINFO", _) => {
                    let text = String::from_utf8_lossy(note.desc);
                    self.vmcoreinfo = Some(text.trim_end_matches('\0').to_string());
                }
                (b"QEMU", _) => self.qemu.push(note.desc.to_vec()),
                _ => {}
            }
        }
    }

    pub fn nr_prstatus(&self) -> usize {
        self.prstatus.len()
    }

    /// Guesses the architecture from the shape of the PRSTATUS notes: each architecture's
    /// `elf_prstatus` has a distinct size (x86_64 336, aarch64 392, s390x 336 + big-endian).
    pub fn arch_hint(&self, endian: Endian) -> Option<Arch> {
        let len = self.prstatus.first()?.len();
        match (len, endian) {
            (336, Endian::Little) => Some(Arch::X86_64),
            (392, Endian::Little) => Some(Arch::Aarch64),
            (_, Endian::Big) => Some(Arch::S390x),
            _ => None,
        }
    }

    /// Decodes the per-CPU states once the architecture is known.
    pub fn cpus(&self, arch: Option<Arch>, endian: Endian) -> Vec<CpuState> {
        self.prstatus
            .iter()
            .enumerate()
            .map(|(index, desc)| {
                let mut pid = endian
                    .uint(desc.get(PRSTATUS_PID..).unwrap_or(&[]), 4)
                    .unwrap_or(0) as u32;
                // QEMU before 9.1 stores an s390x note's pr_pid (its CPU number + 1) in the
                // host's byte order, the other fields big-endian (s390x_write_elf64_prstatus in
                // target/s390x/arch_dump.c, fixed in June 2024); no pid exceeds PID_MAX_LIMIT
                // (2^22), so a larger one read big-endian is that number byte-swapped
                if arch == Some(Arch::S390x) && pid > PID_MAX_LIMIT {
                    pid = pid.swap_bytes();
                }
                let nregs = match arch {
                    // elf_gregset_t: x86_64 user_regs_struct (27), arm64 x0-x30/sp/pc/pstate (34),
                    // s390x psw mask/addr + 16 gprs (the access registers that follow are u32s).
                    Some(Arch::X86_64) => 27,
                    Some(Arch::Aarch64) => 34,
                    Some(Arch::S390x) => 18,
                    None => 0,
                };
                let regs: Vec<u64> = (0..nregs)
                    .map_while(|i| {
                        let off = PRSTATUS_REG.checked_add(i * 8)?;
                        endian.uint(desc.get(off..)?, 8)
                    })
                    .collect();
                let (pc, sp) = match arch {
                    Some(Arch::X86_64) => (regs.get(16), regs.get(19)),
                    Some(Arch::Aarch64) => (regs.get(32), regs.get(31)),
                    Some(Arch::S390x) => (regs.get(1), regs.get(2 + 15)),
                    None => (None, None),
                };
                let page_table_root = match arch {
                    Some(Arch::X86_64) => self.qemu.get(index).and_then(|q| {
                        let version = endian.uint(q, 4)?;
                        (version == 1).then_some(())?;
                        endian.uint(q.get(QEMU_X86_64_CR3..)?, 8)
                    }),
                    _ => None,
                };
                CpuState {
                    index,
                    pid,
                    pc: pc.copied(),
                    sp: sp.copied(),
                    regs,
                    page_table_root,
                }
            })
            .collect()
    }
}

/// The architecture VMCOREINFO implies: each architecture exports symbols or numbers of its own.
pub fn arch_from_vmcoreinfo(vi: &super::VmcoreInfo) -> Option<Arch> {
    if vi.symbol("init_top_pgt").is_some()
        || vi.number("pgtable_l5_enabled").is_some()
        || vi.number("phys_base").is_some()
    {
        Some(Arch::X86_64)
    } else if vi.number("VA_BITS").is_some()
        || vi.number("kimage_voffset").is_some()
        || vi.number("TCR_EL1_T1SZ").is_some()
    {
        Some(Arch::Aarch64)
    } else if vi.symbol("lowcore_ptr").is_some() || vi.other.contains_key("SAMODE31") {
        Some(Arch::S390x)
    } else {
        None
    }
}

/// The architecture a `uname -m` string names.
pub fn arch_from_machine(machine: &str) -> Option<Arch> {
    match machine {
        "x86_64" => Some(Arch::X86_64),
        "aarch64" | "arm64" => Some(Arch::Aarch64),
        "s390x" => Some(Arch::S390x),
        _ => None,
    }
}
