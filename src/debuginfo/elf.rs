//! The vmlinux file: memory-mapped ELF, section access, build-id, `.rodata` reads.
//!
//! The file is mapped once and never copied. Debug sections may be compressed, either the
//! standard way (`SHF_COMPRESSED`, an `Elf64_Chdr` header then zlib/zstd) or the legacy GNU way
//! (`.zdebug_*` sections starting with `ZLIB` and a big-endian size); the `object` crate decodes
//! both, and a decompressed section is kept here for the life of the file so that the DWARF
//! reader can borrow it like the mapped bytes.
//!
//! Relocations: a distribution vmlinux is linked with `--emit-relocs`, so it carries
//! `.rela.debug_info` and friends (the Debian 6.1 x86_64 vmlinux does: 255 MB of them). In an
//! `ET_EXEC` file those records describe relocations the linker has *already applied*: each
//! stored value already equals `S + A` (debug sections have address 0). Applying them again is
//! pointless work over ten million records, so they are ignored for `ET_EXEC`/`ET_DYN`; the
//! real-fixture test `debuginfo_real::rela_debug_info_is_already_applied` samples them to prove
//! it. Only relocatable objects (`ET_REL`, i.e. kernel modules, not a vmlinux) would need them,
//! and those are refused.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memmap2::Mmap;
use object::{Object, ObjectSection, ObjectSymbol};

use crate::addr::{Arch, Endian};
use crate::debuginfo::DebugInfoError;

/// A memory-mapped vmlinux. Always held in an `Arc`: the DWARF and BTF readers borrow its bytes.
pub struct Vmlinux {
    path: PathBuf,
    file: object::File<'static, &'static [u8]>,
    /// Decompressed debug sections, boxed so their addresses never move.
    decompressed: Mutex<Vec<(String, Box<[u8]>)>>,
    // Declared last so it is dropped last: `file` and every slice handed out borrow it.
    map: Mmap,
}

impl std::fmt::Debug for Vmlinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vmlinux").field("path", &self.path).finish()
    }
}

impl Vmlinux {
    /// Maps and parses the ELF headers of a vmlinux. Nothing else is read yet.
    pub fn open(path: &Path) -> Result<Vmlinux, DebugInfoError> {
        let io = |source| DebugInfoError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; a vmlinux being rewritten while we read it would give
        // garbage values (caught as parse errors), which is the accepted risk of every mmap reader.
        let map = unsafe { Mmap::map(&f) }.map_err(io)?;
        // Access is random (a symbol here, a DIE there): without this hint each page fault
        // reads ahead and maps neighbouring pages, inflating the resident set for nothing.
        #[cfg(unix)]
        if let Err(e) = map.advise(memmap2::Advice::Random) {
            tracing::debug!("madvise(MADV_RANDOM) on {}: {e}", path.display());
        }
        // SAFETY: the mapping lives in `self.map`, which is dropped after `file` and is never
        // remapped; the slice address is stable for the life of this struct.
        let data: &'static [u8] = unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) };
        let file = object::File::parse(data)
            .map_err(|e| DebugInfoError::BadElf(format!("{}: {e}", path.display())))?;
        if file.kind() == object::ObjectKind::Relocatable {
            return Err(DebugInfoError::BadElf(format!(
                "{} is a relocatable object (a kernel module?), not a vmlinux",
                path.display()
            )));
        }
        Ok(Vmlinux {
            path: path.to_path_buf(),
            file,
            decompressed: Mutex::new(Vec::new()),
            map,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn object(&self) -> &object::File<'static, &'static [u8]> {
        &self.file
    }

    pub fn endian(&self) -> Endian {
        if self.file.is_little_endian() {
            Endian::Little
        } else {
            Endian::Big
        }
    }

    /// The architecture of the vmlinux, `None` for one vmcore-report does not know.
    pub fn arch(&self) -> Option<Arch> {
        match self.file.architecture() {
            object::Architecture::X86_64 => Some(Arch::X86_64),
            object::Architecture::Aarch64 => Some(Arch::Aarch64),
            object::Architecture::S390x => Some(Arch::S390x),
            _ => None,
        }
    }

    /// The GNU build-id (`.note.gnu.build-id` / `NT_GNU_BUILD_ID`) as lowercase hex.
    pub fn build_id(&self) -> Option<String> {
        self.file.build_id().ok().flatten().map(hex::encode)
    }

    /// The bytes of a section, decompressed if needed, or `None` if the file has no such
    /// section. `name` is the standard name (`.debug_info`); `.zdebug_info` is found too.
    pub fn section(&self, name: &str) -> Result<Option<&[u8]>, DebugInfoError> {
        self.section_static(name)
    }

    /// Like [`Vmlinux::section`], with the lifetime widened to `'static` for readers that keep
    /// an `Arc<Vmlinux>` alongside the slice.
    pub(crate) fn section_static(
        &self,
        name: &str,
    ) -> Result<Option<&'static [u8]>, DebugInfoError> {
        let Some(sec) = self.file.section_by_name(name) else {
            return Ok(None);
        };
        if sec.kind() == object::SectionKind::UninitializedData {
            return Ok(None);
        }
        let bad = |e: object::Error| DebugInfoError::BadElf(format!("section {name}: {e}"));
        let compressed = sec.compressed_data().map_err(bad)?;
        if compressed.format == object::CompressionFormat::None {
            return Ok(Some(compressed.data));
        }
        let mut cache = self.decompressed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, b)) = cache.iter().find(|(n, _)| n == name) {
            // SAFETY: boxes in the cache are never removed or moved until `self` drops.
            return Ok(Some(unsafe { widen(b) }));
        }
        let bytes = match compressed.decompress().map_err(bad)? {
            Cow::Borrowed(b) => return Ok(Some(b)),
            Cow::Owned(v) => v.into_boxed_slice(),
        };
        // SAFETY: as above; the box's heap allocation does not move when the Vec grows.
        let out = unsafe { widen(&bytes) };
        cache.push((name.to_string(), bytes));
        Ok(Some(out))
    }

    /// The link-time address of a section (`.eh_frame`'s pc-relative pointers need it).
    pub fn section_address(&self, name: &str) -> Option<u64> {
        self.file.section_by_name(name).map(|s| s.address())
    }

    /// Reads `len` bytes at a link-time virtual address from the file's allocated sections
    /// (`.rodata`, `.data`, …), e.g. the `linux_banner` string.
    pub fn read_at_address(&self, addr: u64, len: u64) -> Option<&[u8]> {
        for sec in self.file.sections() {
            let start = sec.address();
            let end = start.checked_add(sec.size())?;
            if addr >= start && addr < end {
                return sec.data_range(addr, len.min(end - addr)).ok().flatten();
            }
        }
        None
    }

    /// The `linux_banner` string as the vmlinux holds it (without the trailing NUL).
    pub fn linux_banner(&self) -> Option<Vec<u8>> {
        let sym = self
            .file
            .symbols()
            .find(|s| s.name() == Ok("linux_banner"))?;
        let size = if sym.size() > 0 { sym.size() } else { 512 };
        let bytes = self.read_at_address(sym.address(), size)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        bytes.get(..end).map(<[u8]>::to_vec)
    }

    /// Asks the kernel to read the file pages under `bytes` (a slice of this file's mapping, as
    /// [`Vmlinux::section`] hands out) now, in large sequential pieces (`MADV_WILLNEED` starts
    /// the readahead and returns). The mapping is `MADV_RANDOM`, so without this a cold page
    /// cache is read one 4 KiB fault at a time; with it, a range read whole is one request.
    /// Bytes that are not in the mapping (a decompressed section) are ignored.
    pub fn will_need(&self, bytes: &[u8]) {
        let base = self.map.as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).wrapping_sub(base);
        if bytes.is_empty() || start >= self.map.len() {
            return;
        }
        let end = start.saturating_add(bytes.len()).min(self.map.len());
        let page = 4096;
        let aligned = start - start % page;
        // One request per chunk: Linux caps a single MADV_WILLNEED's readahead at the device's
        // largest I/O (mm/readahead.c, force_page_cache_ra), so a large range is asked in pieces.
        #[cfg(unix)]
        for from in (aligned..end).step_by(WILL_NEED_CHUNK) {
            let len = WILL_NEED_CHUNK.min(end - from);
            if let Err(e) = self.map.advise_range(memmap2::Advice::WillNeed, from, len) {
                tracing::debug!("madvise(MADV_WILLNEED) on {}: {e}", self.path.display());
                return;
            }
        }
    }

    /// [`Vmlinux::will_need`] for whole sections by name (absent ones are skipped).
    pub fn will_need_sections(&self, names: &[&str]) {
        for name in names {
            if let Some(sec) = self.file.section_by_name(name)
                && let Ok(data) = sec.data()
            {
                self.will_need(data);
            }
        }
    }

    /// The size of the mapped file.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The piece [`Vmlinux::will_need`] asks for at a time (a multiple of the page size).
const WILL_NEED_CHUNK: usize = 1 << 20;

/// # Safety
/// The caller guarantees the bytes outlive every use of the returned slice.
unsafe fn widen(b: &[u8]) -> &'static [u8] {
    // SAFETY: forwarded to the caller.
    unsafe { std::slice::from_raw_parts(b.as_ptr(), b.len()) }
}
