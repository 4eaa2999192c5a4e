//! Debuginfo: the vmlinux symbol table and kernel types.
//!
//! Types are served through the [`TypeSource`] trait so that several sources can answer: the DWARF
//! of the vmlinux is the authority; faster sources (the vmlinux's `.BTF`, a persisted index) may
//! answer the same questions. The type model keeps what dump analysis needs: sizes, member offsets
//! (bit-exact for bitfields), array bounds, pointer targets, enumerators, base-type encodings.
//! `const`/`volatile` and other qualifiers are stripped by the sources.
//!
//! - [`elf`]: the memory-mapped vmlinux (sections, compressed debug sections, build-id, banner).
//! - [`symbols`]: the ELF symbol table, KASLR-shifted.
//! - [`dwarf`]: the lazy DWARF index (the authority).
//! - [`btf`]: the vmlinux's `.BTF` (the fast path).
//! - [`combined`]: BTF first, DWARF for what BTF lacks; what [`load`] returns.
//! - [`kallsyms`], [`globals`]: without a vmlinux, the symbols and types the dump itself holds
//!   (the kernel's kallsyms tables, its BTF, and a table of well-known globals' types).
//! - [`locate`]: finding the vmlinux for a dump and proving it matches.
//! - [`index_cache`]: the persisted type index (answers kept on disk per vmlinux build-id).
//!
//! See docs/debuginfo.md for the design and the measurements.

pub mod btf;
pub mod combined;
pub mod debuginfod;
pub mod dwarf;
pub mod elf;
pub mod globals;
pub mod index_cache;
pub mod kallsyms;
pub mod locate;
pub mod memscan;
pub mod symbols;

use std::sync::Arc;

pub use combined::CombinedTypes;

/// Errors of the debuginfo layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebugInfoError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("not a usable vmlinux: {0}")]
    BadElf(String),
    #[error("DWARF error at {offset:#x}: {what}")]
    Dwarf { offset: u64, what: String },
    #[error("no DWARF debug information in {0} (install the kernel's debug symbols)")]
    NoDwarf(String),
    #[error("type {0:?} is not known to this source")]
    BadTypeId(TypeId),
    #[error("vmlinux does not match the dump: {0}")]
    Mismatch(String),
    #[error("no vmlinux found: {0}")]
    NotFound(String),
}

impl DebugInfoError {
    pub fn code(&self) -> &'static str {
        match self {
            DebugInfoError::Io { .. } => "io",
            DebugInfoError::BadElf(_) => "bad-vmlinux",
            DebugInfoError::Dwarf { .. } => "dwarf",
            DebugInfoError::NoDwarf(_) => "no-dwarf",
            DebugInfoError::BadTypeId(_) => "bad-type-id",
            DebugInfoError::Mismatch(_) => "vmlinux-mismatch",
            DebugInfoError::NotFound(_) => "vmlinux-not-found",
        }
    }
}

/// An opaque handle to a type, meaningful only to the [`TypeSource`] that issued it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TypeId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BaseEncoding {
    Signed,
    Unsigned,
    Bool,
    Float,
    SignedChar,
    UnsignedChar,
}

impl BaseEncoding {
    pub fn is_signed(self) -> bool {
        matches!(self, BaseEncoding::Signed | BaseEncoding::SignedChar)
    }
}

/// A struct or union member. Offsets are in bits from the start of the enclosing aggregate so that
/// bitfields and ordinary members share one representation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// `None` for an anonymous struct or union member.
    pub name: Option<String>,
    pub ty: TypeId,
    pub bit_offset: u64,
    /// `Some(width)` for a bitfield.
    pub bit_size: Option<u64>,
}

impl Member {
    pub fn byte_offset(&self) -> u64 {
        self.bit_offset / 8
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TypeKind {
    Void,
    Base {
        encoding: BaseEncoding,
    },
    Pointer {
        target: Option<TypeId>,
    },
    Struct {
        members: Vec<Member>,
        declaration: bool,
    },
    Union {
        members: Vec<Member>,
        declaration: bool,
    },
    Enum {
        signed: bool,
        enumerators: Vec<(String, i64)>,
    },
    /// `count: None` is a flexible or unknown-bound array. Multi-dimensional arrays nest.
    Array {
        element: TypeId,
        count: Option<u64>,
    },
    Typedef {
        target: Option<TypeId>,
    },
    Function,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Type {
    pub name: Option<String>,
    /// Size in bytes; `None` for incomplete types (void, declarations, functions, flexible arrays).
    pub size: Option<u64>,
    pub kind: TypeKind,
}

impl Type {
    pub fn members(&self) -> &[Member] {
        match &self.kind {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => members,
            _ => &[],
        }
    }
}

/// A source of kernel types.
pub trait TypeSource: Send + Sync {
    /// Finds a type by its C name: `"struct task_struct"`, `"union thread_union"`,
    /// `"enum pid_type"`, or a typedef or base-type name such as `"u64"`. A complete definition is
    /// preferred over a declaration.
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError>;
    /// The type behind a handle this source issued.
    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError>;
    /// The type of a global (or static) variable.
    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError>;
    /// The value of an enumerator constant, searched across all enums.
    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError>;
    /// Writes what this source keeps between runs, if anything (the persisted index of
    /// [`index_cache`]); called when a report is done. Nothing by default.
    fn save_index(&self) {}
}

/// Follows typedefs until a non-typedef type (or an untyped typedef, which yields `None`).
pub fn strip_typedefs(
    src: &dyn TypeSource,
    mut id: TypeId,
) -> Result<Option<(TypeId, Arc<Type>)>, DebugInfoError> {
    for _ in 0..64 {
        let t = src.get(id)?;
        match t.kind {
            TypeKind::Typedef { target: Some(next) } => id = next,
            TypeKind::Typedef { target: None } => return Ok(None),
            _ => return Ok(Some((id, t))),
        }
    }
    Err(DebugInfoError::Dwarf {
        offset: id.0,
        what: "typedef chain too long (cycle?)".into(),
    })
}

/// Finds a member by name as the C compiler does, descending into anonymous struct and union
/// members. Returns the member with its bit offset made relative to the outer aggregate.
///
/// Each aggregate is searched once: one already searched did not hold the name (else the
/// search would have ended), and one on the current path is a cycle only damaged debug info
/// has. Without this, types whose anonymous members lead back to the same types (k of them,
/// 16 levels deep) made k^16 searches.
pub fn find_member(
    src: &dyn TypeSource,
    aggregate: TypeId,
    name: &str,
) -> Result<Option<Member>, DebugInfoError> {
    fn walk(
        src: &dyn TypeSource,
        id: TypeId,
        name: &str,
        base_bits: u64,
        depth: u32,
        searched: &mut Vec<TypeId>,
    ) -> Result<Option<Member>, DebugInfoError> {
        if depth > 16 {
            return Ok(None);
        }
        let Some((id, t)) = strip_typedefs(src, id)? else {
            return Ok(None);
        };
        // (the outermost aggregate is not recorded: most lookups never descend, and stay
        // without an allocation)
        if depth > 0 {
            if searched.contains(&id) {
                return Ok(None);
            }
            searched.push(id);
        }
        for m in t.members() {
            match &m.name {
                Some(n) if n == name => {
                    let mut found = m.clone();
                    found.bit_offset += base_bits;
                    return Ok(Some(found));
                }
                None => {
                    let bits = base_bits.saturating_add(m.bit_offset);
                    if let Some(found) = walk(src, m.ty, name, bits, depth + 1, searched)? {
                        return Ok(Some(found));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
    walk(src, aggregate, name, 0, 0, &mut Vec::new())
}

/// The vmlinux sections every report reads whole: the symbol and string tables, and what the
/// backtraces' source lines start from (the unit index, the line programs' file names).
const SYMBOL_SECTIONS: &[&str] = &[".symtab", ".strtab", ".debug_aranges", ".debug_line_str"];

/// The vmlinux sections a report reads whole or nearly so when it asks the types from the
/// vmlinux (measured on the 6.1 fixture with a cold page cache: `.BTF` completely, `.debug_str`
/// half of it in ~170 scattered pieces). Not read ahead when a persisted index answers.
const TYPE_SECTIONS: &[&str] = &[".BTF", ".debug_str"];

/// The symbols and types of a located vmlinux, ready for [`crate::kernel::Kernel::new`]: the
/// symbol table shifted by the dump's KASLR offset, and BTF with a lazy DWARF fallback.
pub fn load(
    vmlinux: Arc<elf::Vmlinux>,
    kaslr_offset: u64,
) -> Result<(Arc<symbols::SymbolTable>, Arc<CombinedTypes>), DebugInfoError> {
    let types = combined::CombinedTypes::new(Arc::clone(&vmlinux))?;
    let (syms, ()) = read_symbols_while(&vmlinux, kaslr_offset, || prepare(&types));
    if let Ok(dwarf) = types.dwarf() {
        dwarf.use_symbols(Arc::clone(&syms));
    }
    Ok((syms, Arc::new(types)))
}

/// [`load`] with the persisted type index of [`index_cache`] in `index_dir` (`None`: no index,
/// exactly [`load`]). A vmlinux without a build-id gets no index. With a valid index file the
/// types are answered from it and `.BTF` and DWARF are read only for what it lacks.
pub fn load_indexed(
    vmlinux: Arc<elf::Vmlinux>,
    kaslr_offset: u64,
    index_dir: Option<&std::path::Path>,
) -> Result<(Arc<symbols::SymbolTable>, Arc<dyn TypeSource>), DebugInfoError> {
    let Some(dir) = index_dir else {
        return load(vmlinux, kaslr_offset).map(|(s, t)| (s, t as Arc<dyn TypeSource>));
    };
    let Some(key) = index_cache::IndexKey::of(&vmlinux) else {
        tracing::debug!("no type index: the vmlinux has no build-id");
        return load(vmlinux, kaslr_offset).map(|(s, t)| (s, t as Arc<dyn TypeSource>));
    };
    let types = combined::CombinedTypes::new(Arc::clone(&vmlinux))?;
    let (syms, types) = read_symbols_while(&vmlinux, kaslr_offset, || {
        let t = index_cache::IndexedTypes::open(types, Some((dir.to_path_buf(), key)));
        if !t.loaded() {
            prepare(t.inner());
        }
        t
    });
    if let Ok(dwarf) = types.inner().dwarf() {
        dwarf.use_symbols(Arc::clone(&syms));
    }
    Ok((syms, Arc::new(types)))
}

/// What a report reads of the types before its first question whatever it asks, when no index
/// answers: the BTF every plugin's first type lookup parses, and what the first DWARF variable
/// lookup builds whatever the name (the data-symbol placement index and `.debug_aranges`). The
/// sections behind them are read ahead first (cold start, see [`elf::Vmlinux::will_need`]).
fn prepare(types: &combined::CombinedTypes) {
    types.vmlinux().will_need_sections(TYPE_SECTIONS);
    let t0 = std::time::Instant::now();
    // Without DWARF (a BTF-only vmlinux) there is nothing to prepare; the error stays
    // cached and is reported where a variable is first asked, as before.
    if let Ok(dwarf) = types.dwarf() {
        dwarf.prepare_variable_lookups();
        tracing::debug!(elapsed = ?t0.elapsed(), "DWARF variable placement prepared");
    }
    types.has_btf();
}

/// Reads the symbol table on a second thread while `meanwhile` runs on this one: independent
/// reads of the vmlinux, all needed before the first global can be read. The symbol and string
/// tables are read ahead in large pieces first (a cold page cache otherwise serves them 4 KiB
/// fault by fault; warm, this is a no-op); the DWARF units are read ahead one unit at a time
/// when first parsed (dwarf.rs).
fn read_symbols_while<T>(
    vmlinux: &Arc<elf::Vmlinux>,
    kaslr_offset: u64,
    meanwhile: impl FnOnce() -> T,
) -> (Arc<symbols::SymbolTable>, T) {
    vmlinux.will_need_sections(SYMBOL_SECTIONS);
    let syms = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let t0 = std::time::Instant::now();
            let syms = symbols::SymbolTable::from_vmlinux(vmlinux, kaslr_offset);
            tracing::debug!(symbols = syms.len(), elapsed = ?t0.elapsed(), "symbol table read");
            syms
        });
        let other = meanwhile();
        (reader.join(), other)
    });
    match syms {
        (Ok(s), other) => (Arc::new(s), other),
        // The reader does not panic on any input; should it, fail like a panic here would.
        (Err(p), _) => std::panic::resume_unwind(p),
    }
}
