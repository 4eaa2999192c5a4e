//! Byte sources: the bytes of a dump file, memory-mapped or held in a `Vec`.
//!
//! Readers never load a whole dump: a file is memory-mapped and pages are sliced out of the map
//! on demand. Tests and fuzz targets hand in a `Vec<u8>` instead; both behave the same. Every
//! access is bounds-checked and reports the file offset it failed at.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DumpError;

enum Backing {
    Mmap(memmap2::Mmap),
    Vec(Vec<u8>),
}

/// An immutable, cheaply clonable view of one dump file's bytes.
#[derive(Clone)]
pub struct ByteSource {
    backing: Arc<Backing>,
    /// The file the bytes came from (`<memory>` for a `Vec`), for error messages.
    path: Arc<PathBuf>,
}

impl ByteSource {
    /// Memory-maps `path` read-only.
    pub fn open(path: &Path) -> Result<ByteSource, DumpError> {
        let io = |source| DumpError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let backing = if len == 0 {
            // Mapping an empty file fails on some platforms; an empty Vec says the same thing.
            Backing::Vec(Vec::new())
        } else {
            // SAFETY: the map is read-only. A dump modified by another process while we read it
            // can give inconsistent bytes, which every parser already treats as untrusted input;
            // truncation by another process is outside what a reader can defend against.
            Backing::Mmap(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Ok(ByteSource {
            backing: Arc::new(backing),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Wraps bytes already in memory (tests, fuzzing, small dumps).
    pub fn from_vec(bytes: Vec<u8>) -> ByteSource {
        ByteSource {
            backing: Arc::new(Backing::Vec(bytes)),
            path: Arc::new(PathBuf::from("<memory>")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops this process's mapping of the pages read so far (they stay in the page cache and
    /// are mapped again on the next access): after a pass over the whole file, such as the
    /// VMCOREINFO search, the resident set falls back to what the analysis itself touches.
    pub fn release_resident(&self) {
        if let Backing::Mmap(m) = &*self.backing {
            // SAFETY: the map is read-only and private and never written, so MADV_DONTNEED only
            // unmaps pages that the next access faults in again from the file, unchanged.
            if let Err(e) = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) } {
                tracing::debug!("madvise(MADV_DONTNEED) on {}: {e}", self.path.display());
            }
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &*self.backing {
            Backing::Mmap(m) => m,
            Backing::Vec(v) => v,
        }
    }

    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// `len` bytes at `offset`, or `Truncated` naming `what` was being read.
    pub fn slice(&self, offset: u64, len: u64, what: &str) -> Result<&[u8], DumpError> {
        let bytes = self.bytes();
        let end = offset.checked_add(len);
        match end {
            Some(end) if end <= bytes.len() as u64 => {
                // Both bounds fit in the slice length, hence in usize.
                Ok(&bytes[offset as usize..end as usize])
            }
            _ => Err(DumpError::Truncated(format!(
                "{what}: {len:#x} bytes at file offset {offset:#x} extend past the end of {} \
                 ({:#x} bytes)",
                self.path.display(),
                bytes.len()
            ))),
        }
    }
}

impl std::fmt::Debug for ByteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteSource")
            .field("path", &self.path)
            .field("len", &self.len())
            .finish()
    }
}
