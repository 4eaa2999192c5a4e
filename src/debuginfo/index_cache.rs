//! The persisted type index: what a report asked the type source, kept on disk per vmlinux so the
//! next report on a dump of the same kernel answers from it instead of parsing `.BTF` and
//! walking DWARF again.
//!
//! A pipeline that analyses many dumps of a few kernels redoes the same look-ups every run: the
//! same ~100 globals' types, the same few hundred layouts (`task_struct`, `rq`, …). Every answer
//! of the [`TypeSource`] questions is a pure function of the vmlinux file, so [`IndexedTypes`]
//! records them (type by name, variable type by name, enumerator by name, layout by id, negative
//! answers included; errors are not recorded) and writes them when the run ends; the next run
//! loads them and asks the real source ([`CombinedTypes`]) only what the file lacks. Type ids are
//! the combined source's own (BTF ids, DWARF `.debug_info` offsets tagged with bit 63), stable
//! for a given file, so an id from the file and one from a live look-up mean the same type.
//!
//! **Key.** One file per vmlinux build-id, `DIR/<build-id>.idx`, holding the build-id, the file
//! size and the modification time of the vmlinux it was made from; a file whose key differs in
//! any of them is foreign and ignored (a rebuilt kernel with the same build-id and a different
//! file, a copy, a stripped variant). A vmlinux without a build-id gets no index. Nothing the dump
//! says goes into the key: the dump is matched to the vmlinux before (locate.rs), and the index
//! describes the vmlinux alone.
//!
//! **Format** (docs/debuginfo.md): an 8-byte magic `VRTYIDX\n`, the format version (u32 LE), the
//! payload length (u64 LE), the payload's SHA-256 (32 bytes), then the payload: JSON with the
//! key and the four maps. Loading checks magic, version, length (a truncated file), checksum (a
//! damaged one), the JSON and the key; any failure ignores the file (logged), the run asks the
//! real source, and its save replaces the file.
//!
//! **Writing** is atomic: a temporary file in the same directory, renamed over the index. Two runs
//! at once each write a complete file and the last rename wins; before writing, a run merges what
//! a valid file on disk holds by then, so neither loses the other's entries for long. A reader
//! never sees a partial file (it sees the old one or the new one). A run that answered everything
//! from the file writes nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use sha2::{Digest, Sha256};

use crate::debuginfo::combined::CombinedTypes;
use crate::debuginfo::elf::Vmlinux;
use crate::debuginfo::{DebugInfoError, Type, TypeId, TypeSource};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"VRTYIDX\n";
/// The format version; a file of another version is ignored and rewritten.
pub const VERSION: u32 = 1;
/// Magic, version, payload length, SHA-256.
const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// A larger file is not read (a full report's index is ~0.5 MB).
pub const MAX_FILE: u64 = 64 << 20;

/// What an index file belongs to: the vmlinux's build-id, size and modification time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexKey {
    /// Lowercase hex, as `Vmlinux::build_id` gives it.
    pub build_id: String,
    pub size: u64,
    /// Modification time: seconds and nanoseconds since the epoch (negative before it).
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
}

impl IndexKey {
    /// The key of a vmlinux file, `None` without a build-id (or one that is not plain hex) or
    /// when the file's metadata cannot be read.
    pub fn of(vmlinux: &Vmlinux) -> Option<IndexKey> {
        let build_id = vmlinux.build_id()?;
        if build_id.is_empty()
            || build_id.len() > 128
            || !build_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let meta = std::fs::metadata(vmlinux.path()).ok()?;
        let (mtime_secs, mtime_nanos) = match meta.modified().ok()? {
            t if t >= std::time::UNIX_EPOCH => {
                let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
                (i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
            }
            t => {
                let d = std::time::UNIX_EPOCH.duration_since(t).ok()?;
                (-i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
            }
        };
        Some(IndexKey {
            build_id,
            size: meta.len(),
            mtime_secs,
            mtime_nanos,
        })
    }

    /// The index file's name in the cache directory.
    pub fn file_name(&self) -> String {
        format!("{}.idx", self.build_id)
    }
}

/// The recorded answers.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entries {
    /// `find_type`: C name -> type id.
    pub types: BTreeMap<String, Option<u64>>,
    /// `variable_type`: variable name -> type id.
    pub variables: BTreeMap<String, Option<u64>>,
    /// `enumerator`: constant name -> value.
    pub enumerators: BTreeMap<String, Option<i64>>,
    /// `get`: type id -> layout.
    pub layouts: BTreeMap<u64, Type>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.types.len() + self.variables.len() + self.enumerators.len() + self.layouts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds what `other` has and `self` lacks.
    fn merge_missing(&mut self, other: Entries) {
        for (k, v) in other.types {
            self.types.entry(k).or_insert(v);
        }
        for (k, v) in other.variables {
            self.variables.entry(k).or_insert(v);
        }
        for (k, v) in other.enumerators {
            self.enumerators.entry(k).or_insert(v);
        }
        for (k, v) in other.layouts {
            self.layouts.entry(k).or_insert(v);
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    key: IndexKey,
    entries: Entries,
}

/// Why an index file was not used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {MAX_FILE} bytes")]
    TooLarge,
    #[error("not an index file (bad magic)")]
    Magic,
    #[error("format version {0}, this program reads {VERSION}")]
    Version(u32),
    #[error("truncated: payload of {want} bytes, {have} present")]
    Truncated { want: u64, have: u64 },
    #[error("checksum mismatch (damaged)")]
    Checksum,
    #[error("unreadable payload: {0}")]
    Payload(String),
    #[error("made from another vmlinux ({0})")]
    Foreign(String),
}

/// Encodes an index file.
pub fn encode(key: &IndexKey, entries: &Entries) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct PayloadRef<'a> {
        key: &'a IndexKey,
        entries: &'a Entries,
    }
    // serialization of plain maps and strings cannot fail
    let payload = serde_json::to_vec(&PayloadRef { key, entries }).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// Decodes and validates an index file's bytes against the key of the vmlinux at hand.
pub fn decode(bytes: &[u8], key: &IndexKey) -> Result<Entries, IndexError> {
    let (Some(magic), Some(version), Some(len), Some(sum)) = (
        bytes.get(..8),
        bytes.get(8..12),
        bytes.get(12..20),
        bytes.get(20..HEADER_LEN),
    ) else {
        return if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
            Err(IndexError::Truncated {
                want: HEADER_LEN as u64,
                have: bytes.len() as u64,
            })
        } else {
            Err(IndexError::Magic)
        };
    };
    if magic != MAGIC {
        return Err(IndexError::Magic);
    }
    let version = u32::from_le_bytes(version.try_into().unwrap_or_default());
    if version != VERSION {
        return Err(IndexError::Version(version));
    }
    let want = u64::from_le_bytes(len.try_into().unwrap_or_default());
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != want {
        return Err(IndexError::Truncated {
            want,
            have: payload.len() as u64,
        });
    }
    if Sha256::digest(payload).as_slice() != sum {
        return Err(IndexError::Checksum);
    }
    let p: Payload =
        serde_json::from_slice(payload).map_err(|e| IndexError::Payload(e.to_string()))?;
    if p.key != *key {
        return Err(IndexError::Foreign(format!(
            "build-id {}, {} bytes, mtime {}.{:09}",
            p.key.build_id, p.key.size, p.key.mtime_secs, p.key.mtime_nanos
        )));
    }
    Ok(p.entries)
}

/// Reads and validates the index file of `key` in `dir`.
pub fn read(dir: &Path, key: &IndexKey) -> Result<Entries, IndexError> {
    let path = dir.join(key.file_name());
    let f = std::fs::File::open(&path)?;
    if f.metadata()?.len() > MAX_FILE {
        return Err(IndexError::TooLarge);
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE + 1), &mut bytes)?;
    decode(&bytes, key)
}

/// Writes the index file of `key` in `dir` atomically (temporary file, then rename), creating
/// the directory (mode 0700) if needed.
pub fn write(dir: &Path, key: &IndexKey, entries: &Entries) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let path = dir.join(key.file_name());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".idx")
        .tempfile_in(dir)?;
    tmp.write_all(&encode(key, entries))?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// The default cache directory: `$XDG_CACHE_HOME/vmcore-report/index`, else
/// `$HOME/.cache/vmcore-report/index`; `None` when neither variable is set (absolute).
pub fn default_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = from("XDG_CACHE_HOME").or_else(|| from("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("vmcore-report").join("index"))
}

/// Counters of one run, for the log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Whether a valid index file was loaded.
    pub loaded: bool,
    /// Entries the loaded file held.
    pub entries: usize,
    /// Questions answered from the index.
    pub hits: u64,
    /// Questions passed to the real source (and recorded).
    pub misses: u64,
}

#[derive(Default)]
struct State {
    entries: Entries,
    layouts: std::collections::HashMap<u64, Arc<Type>>,
    dirty: bool,
}

/// A [`TypeSource`] answering from a persisted index, asking [`CombinedTypes`] what the index
/// lacks and recording it; the index is written when this value is dropped (the end of the run)
/// or by [`IndexedTypes::save`].
pub struct IndexedTypes {
    inner: CombinedTypes,
    /// Done before the first question the index does not answer: what `load()` does up front
    /// without an index (BTF parsed), so a recorded answer is the one a run without the index
    /// gives.
    prepared: OnceLock<()>,
    state: RwLock<State>,
    store: Option<(PathBuf, IndexKey)>,
    loaded: Option<usize>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl IndexedTypes {
    /// Wraps `inner`, with the index of `key` from `dir` when a valid one is there. `store`
    /// `None` keeps the answers in memory only.
    pub fn open(inner: CombinedTypes, store: Option<(PathBuf, IndexKey)>) -> IndexedTypes {
        let t0 = std::time::Instant::now();
        let entries = match &store {
            Some((dir, key)) => match read(dir, key) {
                Ok(e) => {
                    tracing::debug!(
                        entries = e.len(),
                        elapsed = ?t0.elapsed(),
                        "type index loaded from {}",
                        dir.join(key.file_name()).display()
                    );
                    Some(e)
                }
                Err(IndexError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    tracing::info!(
                        "ignoring the type index {} ({e}); it will be rebuilt",
                        dir.join(key.file_name()).display()
                    );
                    None
                }
            },
            None => None,
        };
        let loaded = entries.as_ref().map(Entries::len);
        let mut state = State {
            entries: entries.unwrap_or_default(),
            ..State::default()
        };
        state.layouts = std::mem::take(&mut state.entries.layouts)
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        IndexedTypes {
            inner,
            prepared: OnceLock::new(),
            state: RwLock::new(state),
            store,
            loaded,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The real source (for the glue that prepares it).
    pub fn inner(&self) -> &CombinedTypes {
        &self.inner
    }

    /// Whether a valid index file was loaded.
    pub fn loaded(&self) -> bool {
        self.loaded.is_some()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            loaded: self.loaded.is_some(),
            entries: self.loaded.unwrap_or(0),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The real source, prepared as without an index.
    fn miss(&self) -> &CombinedTypes {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.prepared.get_or_init(|| {
            self.inner.has_btf();
        });
        &self.inner
    }

    fn hit<T>(&self, v: T) -> T {
        self.hits.fetch_add(1, Ordering::Relaxed);
        v
    }

    /// Writes the index if this run added to it (merged with a valid file written meanwhile by
    /// another run). Returns the file written, `None` when there was nothing to write.
    pub fn save(&self) -> std::io::Result<Option<PathBuf>> {
        let Some((dir, key)) = &self.store else {
            return Ok(None);
        };
        let mut entries = {
            let mut st = self.write_state();
            if !st.dirty {
                return Ok(None);
            }
            st.dirty = false;
            let mut e = st.entries.clone();
            e.layouts = st
                .layouts
                .iter()
                .map(|(k, v)| (*k, Type::clone(v)))
                .collect();
            e
        };
        if let Ok(theirs) = read(dir, key) {
            entries.merge_missing(theirs);
        }
        let t0 = std::time::Instant::now();
        let path = write(dir, key, &entries)?;
        tracing::debug!(entries = entries.len(), elapsed = ?t0.elapsed(), "type index written to {}", path.display());
        Ok(Some(path))
    }
}

impl Drop for IndexedTypes {
    /// The end of the run for a caller that did not call [`TypeSource::save_index`]; does
    /// nothing when that wrote everything.
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            tracing::info!("cannot write the type index: {e}");
        }
    }
}

impl IndexedTypes {
    fn save_logged(&self) {
        let s = self.stats();
        tracing::debug!(
            loaded = s.loaded,
            entries = s.entries,
            hits = s.hits,
            misses = s.misses,
            "type index use"
        );
        if let Err(e) = self.save() {
            tracing::info!("cannot write the type index: {e}");
        }
    }
}

type Map<V> = BTreeMap<String, V>;

impl IndexedTypes {
    /// One map's look-up: the index's answer, else the real source's, recorded.
    fn answer<V: Copy>(
        &self,
        name: &str,
        map: fn(&Entries) -> &Map<V>,
        map_mut: fn(&mut Entries) -> &mut Map<V>,
        ask: impl FnOnce(&CombinedTypes) -> Result<V, DebugInfoError>,
    ) -> Result<V, DebugInfoError> {
        if let Some(v) = map(&self.read_state().entries).get(name) {
            return Ok(self.hit(*v));
        }
        let v = ask(self.miss())?;
        let mut st = self.write_state();
        map_mut(&mut st.entries).insert(name.to_string(), v);
        st.dirty = true;
        Ok(v)
    }
}

impl TypeSource for IndexedTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        let v = self.answer(
            name,
            |e| &e.types,
            |e| &mut e.types,
            |t| Ok(t.find_type(name)?.map(|id| id.0)),
        )?;
        Ok(v.map(TypeId))
    }

    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        if let Some(t) = self.read_state().layouts.get(&id.0) {
            return Ok(self.hit(t.clone()));
        }
        let t = self.miss().get(id)?;
        let mut st = self.write_state();
        st.layouts.insert(id.0, t.clone());
        st.dirty = true;
        Ok(t)
    }

    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        let v = self.answer(
            name,
            |e| &e.variables,
            |e| &mut e.variables,
            |t| Ok(t.variable_type(name)?.map(|id| id.0)),
        )?;
        Ok(v.map(TypeId))
    }

    fn save_index(&self) {
        self.save_logged();
    }

    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        self.answer(
            name,
            |e| &e.enumerators,
            |e| &mut e.enumerators,
            |t| t.enumerator(name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IndexKey {
        IndexKey {
            build_id: "0123abcd".into(),
            size: 42,
            mtime_secs: 1_700_000_000,
            mtime_nanos: 5,
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let mut e = Entries::default();
        e.types.insert("struct a".into(), Some(7));
        e.types.insert("struct nope".into(), None);
        e.enumerators.insert("X".into(), Some(-3));
        let bytes = encode(&key(), &e);
        assert_eq!(decode(&bytes, &key()).unwrap(), e);
        // truncated anywhere
        for cut in [0, 5, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], &key()).is_err(), "cut at {cut}");
        }
        // one byte flipped in the payload
        let mut bad = bytes.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(decode(&bad, &key()), Err(IndexError::Checksum)));
        // another version, another magic
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(decode(&v2, &key()), Err(IndexError::Version(2))));
        let mut m = bytes.clone();
        m[0] = b'X';
        assert!(matches!(decode(&m, &key()), Err(IndexError::Magic)));
        // the same file for a vmlinux of another size or mtime
        let mut other = key();
        other.size += 1;
        assert!(matches!(
            decode(&bytes, &other),
            Err(IndexError::Foreign(_))
        ));
        let mut other = key();
        other.mtime_nanos += 1;
        assert!(matches!(
            decode(&bytes, &other),
            Err(IndexError::Foreign(_))
        ));
    }
}
