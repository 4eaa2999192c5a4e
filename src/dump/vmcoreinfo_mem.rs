//! VMCOREINFO recovered from the dumped memory, for dumps whose headers do not carry it.
//!
//! A hypervisor dump of a guest that has no QEMU `vmcoreinfo` device (`virsh dump`,
//! `dump-guest-memory` without `-device vmcoreinfo`) has CPU notes but no VMCOREINFO note. The
//! kernel keeps the text in its own memory all the same. `crash_save_vmcoreinfo_init()`
//! (kernel/crash_core.c up to 6.8, kernel/vmcore_info.c since) allocates, at boot:
//!
//! - `vmcoreinfo_data`: one zeroed page (`get_zeroed_page`; newer kernels
//!   `__get_free_pages(get_order(VMCOREINFO_BYTES))`) into which `vmcoreinfo_append_str()` writes
//!   the `KEY=value` lines from its first byte on, starting with `OSRELEASE=`; the rest of the
//!   page stays zero, so the text ends at the first NUL;
//! - `vmcoreinfo_note`: `alloc_pages_exact(VMCOREINFO_NOTE_SIZE)`, page-aligned, into which
//!   `update_vmcoreinfo_note()` writes one ELF note: `Elf_Nhdr` (`n_namesz` 11, `n_descsz` the
//!   text's length, `n_type` 0), the name `VMCOREINFO\0` padded to 12 bytes, then the text: the
//!   text starts at byte 24 of the page. This buffer is what `/proc/vmcore` and QEMU's device
//!   export, so it is the same bytes the missing note would have held (with `CRASHTIME` when
//!   `crash_save_vmcoreinfo()` ran; on a kexec crash it appends to a safe copy in the crash
//!   kernel's memory, leaving `vmcoreinfo_data` without it).
//!
//! Both copies therefore sit at the start of a page (4 KiB granules cover every page size), so
//! the search reads the first bytes of each dumped page, in ascending physical order: the pages
//! are among the first the page allocator hands out after boot (a subsys_initcall), which come
//! from low in the zone (observed 18 to 35 MiB above the start of RAM in the QEMU fixtures).
//! A candidate is used only when its text is printable, starts with `OSRELEASE=`, parses into a
//! release, a power-of-two `PAGESIZE` and `SYMBOL()` lines, names the dump's architecture (when
//! both tell), and, for the note buffer, its header matches the text's length. The note buffer is
//! preferred; the search stops once one copy is found and its partner (the other copy with the
//! same release and build-id) is found within [`PARTNER_WINDOW`] bytes, or at the limits; with
//! only a data page found it goes on for the note buffer (a data page may be stale: see
//! `search`).
//!
//! Bounds ([`SearchLimits`]): the physical bytes examined (default 64 GiB of address space) and
//! the wall time (default 20 s); what is not found by then is reported as not found. Reading the
//! first bytes of every page maps every page of the file: every 16 MiB examined the file pages
//! are unmapped again ([`PhysMem::release_resident`]), so the resident set stays small.

use std::time::{Duration, Instant};

use super::{PhysMem, VmcoreInfo};
use crate::addr::{Arch, Endian, PhysAddr};

/// The granule the copies are aligned to: every kernel page size is a multiple of it.
const GRANULE: u64 = 4096;
/// Byte offset of the text inside the note buffer: `Elf_Nhdr` (12) + `"VMCOREINFO\0"` padded (12).
const NOTE_TEXT: u64 = 24;
/// How far past the first copy found the search goes on looking for the other copy.
pub const PARTNER_WINDOW: u64 = 64 << 20;
/// How much memory the search examines between two releases of the file pages it mapped.
const RELEASE_EVERY: u64 = 16 << 20;
/// The longest text accepted (`VMCOREINFO_BYTES` is one page; 64 KiB pages exist).
const MAX_TEXT: usize = 64 << 10;

/// How much of the dump the search may look at.
#[derive(Clone, Copy, Debug)]
pub struct SearchLimits {
    /// Physical address space examined (dumped or not), in bytes.
    pub max_bytes: u64,
    /// Wall time.
    pub max_time: Duration,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_bytes: 64 << 30,
            max_time: Duration::from_secs(20),
        }
    }
}

/// Which of the kernel's two copies the text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemCopy {
    /// `vmcoreinfo_note`: the ELF note buffer.
    NoteBuffer,
    /// `vmcoreinfo_data`: the page the lines are appended to.
    DataPage,
}

/// Where a dump's VMCOREINFO came from, for the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum VmcoreinfoSource {
    /// The dump's VMCOREINFO note (ELF) or the kdump header's copy.
    #[default]
    Note,
    /// Found in the dumped memory by [`search`].
    Memory {
        /// Physical address of the text's first byte.
        paddr: u64,
        copy: MemCopy,
        /// Physical bytes examined before the search stopped, and how long it took.
        searched_bytes: u64,
        searched_ms: u64,
    },
    /// Neither the headers nor the memory search gave one.
    Absent,
}

/// A VMCOREINFO text found in memory.
#[derive(Clone, Debug)]
pub struct Found {
    pub text: String,
    pub info: VmcoreInfo,
    pub source: VmcoreinfoSource,
}

struct Candidate {
    paddr: u64,
    copy: MemCopy,
    text: String,
    info: VmcoreInfo,
}

impl Candidate {
    fn same_kernel(&self, o: &Candidate) -> bool {
        self.info.osrelease == o.info.osrelease
            && self.info.build_id == o.info.build_id
            && self.info.kerneloffset == o.info.kerneloffset
    }
}

/// Searches the dumped memory for the kernel's VMCOREINFO text (module docs). `arch`, when known
/// from the dump's headers, must agree with the one the text implies; `endian` is the dump's.
pub fn search(
    mem: &dyn PhysMem,
    arch: Option<Arch>,
    endian: Endian,
    limits: &SearchLimits,
) -> Option<Found> {
    let started = Instant::now();
    let mut examined = 0u64;
    let mut found: Vec<Candidate> = Vec::new();
    let mut head = [0u8; 64];
    'ranges: for r in mem.ranges() {
        let mut page = r.start.0.div_ceil(GRANULE) * GRANULE;
        while page < r.end.0 {
            if examined >= limits.max_bytes || started.elapsed() >= limits.max_time {
                tracing::debug!("VMCOREINFO search stopped at its limits, at {page:#x}");
                break 'ranges;
            }
            // Past the partner window only once the note buffer is found: a data page alone
            // may be stale (x86 kexec switches `vmcoreinfo_data` to a safe copy in the crash
            // kernel's reservation, and `crash_save_vmcoreinfo()` appends CRASHTIME there and to
            // the note buffer only; the original page, 800 MiB below the note on the kdump
            // fixtures, lacks it).
            if let Some(first) = found.first()
                && page.saturating_sub(first.paddr) > PARTNER_WINDOW
                && found.iter().any(|c| c.copy == MemCopy::NoteBuffer)
            {
                break 'ranges;
            }
            examined += GRANULE;
            if examined % RELEASE_EVERY == 0 {
                // the pass touches every page of the file: keep the resident set bounded
                mem.release_resident();
            }
            let addr = PhysAddr(page);
            page += GRANULE;
            if !mem.is_dumped(addr) || mem.read_phys(addr, &mut head).is_err() {
                continue;
            }
            let c = if head.starts_with(b"OSRELEASE=") {
                read_text(mem, addr.0, None).map(|t| (addr.0, MemCopy::DataPage, t))
            } else if let Some(len) = note_header(&head, endian) {
                read_text(mem, addr.0 + NOTE_TEXT, Some(len))
                    .map(|t| (addr.0 + NOTE_TEXT, MemCopy::NoteBuffer, t))
            } else {
                None
            };
            let Some((paddr, copy, text)) = c else {
                continue;
            };
            let Some(info) = validate(&text, arch) else {
                tracing::debug!("VMCOREINFO-like text at {paddr:#x} does not validate");
                continue;
            };
            tracing::debug!("VMCOREINFO {copy:?} at {paddr:#x}");
            let c = Candidate {
                paddr,
                copy,
                text,
                info,
            };
            let paired = found.iter().any(|o| o.copy != c.copy && o.same_kernel(&c));
            found.push(c);
            if paired || found.len() >= 8 {
                break 'ranges;
            }
        }
    }
    let elapsed = started.elapsed();
    tracing::info!(
        "VMCOREINFO search: {} copies found in {examined} bytes of physical memory, {:.1?}",
        found.len(),
        elapsed
    );
    // The note buffer is the exported copy; among several, the first (lowest) one.
    let pick = found
        .iter()
        .position(|c| c.copy == MemCopy::NoteBuffer)
        .unwrap_or(0);
    if found.len() > pick {
        let chosen = &found[pick];
        for o in &found {
            if !o.same_kernel(chosen) {
                tracing::warn!(
                    "another VMCOREINFO in memory at {:#x} names a different kernel ({:?}, \
                     build-id {:?}); using the one at {:#x}",
                    o.paddr,
                    o.info.osrelease,
                    o.info.build_id,
                    chosen.paddr
                );
            }
        }
    }
    let c = (found.len() > pick).then(|| found.swap_remove(pick))?;
    Some(Found {
        source: VmcoreinfoSource::Memory {
            paddr: c.paddr,
            copy: c.copy,
            searched_bytes: examined,
            searched_ms: elapsed.as_millis() as u64,
        },
        text: c.text,
        info: c.info,
    })
}

/// The text length an ELF note header at the start of `head` announces, if it is the
/// `VMCOREINFO` note (`n_namesz` 11, `n_type` 0, name `VMCOREINFO\0`).
fn note_header(head: &[u8], endian: Endian) -> Option<usize> {
    if &head[12..23] != b"VMCOREINFO\0" {
        return None;
    }
    let word = |o: usize| {
        let b: [u8; 4] = head[o..o + 4].try_into().ok()?;
        Some(match endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    };
    let (namesz, descsz, ntype) = (word(0)?, word(4)?, word(8)?);
    (namesz == 11 && ntype == 0 && descsz > 0 && (descsz as usize) <= MAX_TEXT)
        .then_some(descsz as usize)
}

/// Reads the text at `paddr`: exactly `len` bytes with no NUL among them (the note buffer), else
/// up to the first NUL within [`MAX_TEXT`] bytes (the data page), a page at a time.
fn read_text(mem: &dyn PhysMem, paddr: u64, len: Option<usize>) -> Option<String> {
    let want = len.unwrap_or(MAX_TEXT);
    let mut out = Vec::new();
    let mut at = paddr;
    while out.len() < want {
        let chunk = ((GRANULE - at % GRANULE) as usize).min(want - out.len());
        let mut buf = vec![0u8; chunk];
        mem.read_phys(PhysAddr(at), &mut buf).ok()?;
        if let Some(nul) = buf.iter().position(|&b| b == 0) {
            // the note's `n_descsz` is the text's length, without a NUL
            if len.is_some() {
                return None;
            }
            out.extend_from_slice(&buf[..nul]);
            break;
        }
        out.extend_from_slice(&buf);
        at += chunk as u64;
    }
    String::from_utf8(out).ok()
}

/// Parses a candidate text and checks that it is VMCOREINFO of a kernel of `arch`.
pub fn validate(text: &str, arch: Option<Arch>) -> Option<VmcoreInfo> {
    if !text.starts_with("OSRELEASE=")
        || !text
            .bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b))
    {
        return None;
    }
    let vi = VmcoreInfo::parse(text);
    let release_ok = vi
        .osrelease
        .as_deref()
        .is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace));
    let page_ok = vi
        .page_size
        .is_some_and(|p| p.is_power_of_two() && (4096..=(1 << 20)).contains(&p));
    let build_id_ok = vi
        .build_id
        .as_deref()
        .is_none_or(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !(release_ok && page_ok && build_id_ok && !vi.symbols.is_empty()) {
        return None;
    }
    if let (Some(a), Some(t)) = (arch, super::notes::arch_from_vmcoreinfo(&vi))
        && a != t
    {
        return None;
    }
    Some(vi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_what_is_not_vmcoreinfo() {
        let good = "OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a15380\n\
                    NUMBER(pgtable_l5_enabled)=1\n";
        assert!(validate(good, Some(Arch::X86_64)).is_some());
        assert!(validate(good, None).is_some());
        // the architecture it names must be the dump's
        assert!(validate(good, Some(Arch::Aarch64)).is_none());
        // the format string in .rodata, a page size that is no page size, no symbols
        assert!(validate("OSRELEASE=%s\n", None).is_none());
        assert!(validate(&good.replace("4096", "4000"), None).is_none());
        assert!(validate("OSRELEASE=6.1.0\nPAGESIZE=4096\n", None).is_none());
        assert!(validate(&good.replace("6.1.0", "6.1.0\u{1}"), None).is_none());
        assert!(validate(&format!("{good}BUILD-ID=xyz\n"), None).is_none());
    }

    #[test]
    fn note_header_must_name_vmcoreinfo() {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&11u32.to_le_bytes());
        h[4..8].copy_from_slice(&100u32.to_le_bytes());
        h[12..23].copy_from_slice(b"VMCOREINFO\0");
        assert_eq!(note_header(&h, Endian::Little), Some(100));
        assert_eq!(note_header(&h, Endian::Big), None);
        h[8] = 1;
        assert_eq!(note_header(&h, Endian::Little), None);
    }
}
