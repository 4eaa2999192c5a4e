//! BTF first, DWARF as the authority for what BTF lacks.
//!
//! Types found in `.BTF` keep their BTF ids; types only DWARF knows (most global variables'
//! types: BTF describes only per-CPU variables) get DWARF ids tagged with bit 63, and every id
//! inside a DWARF type (members, targets) is tagged the same way, so each id always goes back to
//! the source that issued it. When a variable's DWARF type is a named struct, union, enum or
//! typedef that BTF also has, the BTF id is returned instead so that member lookups stay on the
//! fast path. The DWARF index itself is created on first need: a lookup BTF answers never touches
//! `.debug_info`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::debuginfo::btf::BtfTypes;
use crate::debuginfo::dwarf::DwarfTypes;
use crate::debuginfo::elf::Vmlinux;
use crate::debuginfo::{DebugInfoError, Member, Type, TypeId, TypeKind, TypeSource};

const DWARF_TAG: u64 = 1 << 63;

/// A [`TypeSource`] that answers from BTF when it can and from DWARF otherwise.
pub struct CombinedTypes {
    /// Parsed on first need (about 35 ms and 7 MB for a 6.1 vmlinux).
    btf: OnceLock<Option<BtfTypes>>,
    vmlinux: Arc<Vmlinux>,
    dwarf: OnceLock<Result<Arc<DwarfTypes>, String>>,
    retagged: Mutex<HashMap<u64, Arc<Type>>>,
}

impl CombinedTypes {
    /// Nothing is read yet: BTF is parsed on the first type lookup, DWARF indexed on the first
    /// question BTF cannot answer.
    pub fn new(vmlinux: Arc<Vmlinux>) -> Result<CombinedTypes, DebugInfoError> {
        Ok(CombinedTypes {
            btf: OnceLock::new(),
            vmlinux,
            dwarf: OnceLock::new(),
            retagged: Mutex::new(HashMap::new()),
        })
    }

    /// The vmlinux the types come from.
    pub fn vmlinux(&self) -> &Arc<Vmlinux> {
        &self.vmlinux
    }

    pub fn has_btf(&self) -> bool {
        self.btf().is_some()
    }

    fn btf(&self) -> Option<&BtfTypes> {
        let t0 = std::time::Instant::now();
        self.btf
            .get_or_init(|| match BtfTypes::from_vmlinux(self.vmlinux.clone()) {
                Ok(b) => {
                    tracing::debug!(elapsed = ?t0.elapsed(), found = b.is_some(), "BTF parsed");
                    b
                }
                Err(e) => {
                    tracing::warn!("ignoring unusable .BTF: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// The DWARF source, created on first use.
    pub fn dwarf(&self) -> Result<Arc<DwarfTypes>, DebugInfoError> {
        self.dwarf
            .get_or_init(|| {
                DwarfTypes::new(self.vmlinux.clone())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(DebugInfoError::NoDwarf)
    }

    fn tag(id: TypeId) -> TypeId {
        TypeId(id.0 | DWARF_TAG)
    }

    fn retag(t: &Type) -> Type {
        let tag = |o: &Option<TypeId>| o.map(Self::tag);
        let members = |ms: &[Member]| {
            ms.iter()
                .map(|m| Member {
                    ty: Self::tag(m.ty),
                    ..m.clone()
                })
                .collect()
        };
        let kind = match &t.kind {
            TypeKind::Pointer { target } => TypeKind::Pointer {
                target: tag(target),
            },
            TypeKind::Typedef { target } => TypeKind::Typedef {
                target: tag(target),
            },
            TypeKind::Array { element, count } => TypeKind::Array {
                element: Self::tag(*element),
                count: *count,
            },
            TypeKind::Struct {
                members: m,
                declaration,
            } => TypeKind::Struct {
                members: members(m),
                declaration: *declaration,
            },
            TypeKind::Union {
                members: m,
                declaration,
            } => TypeKind::Union {
                members: members(m),
                declaration: *declaration,
            },
            other => other.clone(),
        };
        Type {
            name: t.name.clone(),
            size: t.size,
            kind,
        }
    }

    /// The BTF id of the same named type, if BTF has it.
    fn btf_twin(&self, t: &Type) -> Result<Option<TypeId>, DebugInfoError> {
        // Only when BTF is already loaded: a single variable read should not pay for parsing it.
        let (Some(Some(btf)), Some(name)) = (self.btf.get(), &t.name) else {
            return Ok(None);
        };
        let c_name = match &t.kind {
            TypeKind::Struct {
                declaration: false, ..
            } => format!("struct {name}"),
            TypeKind::Union {
                declaration: false, ..
            } => format!("union {name}"),
            TypeKind::Enum { .. } => format!("enum {name}"),
            TypeKind::Typedef { .. } | TypeKind::Base { .. } => name.clone(),
            _ => return Ok(None),
        };
        btf.find_type(&c_name)
    }
}

impl TypeSource for CombinedTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        if let Some(btf) = self.btf()
            && let Some(id) = btf.find_type(name)?
        {
            // A forward declaration in BTF: DWARF may still have the definition.
            let t = btf.get(id)?;
            let decl = matches!(
                t.kind,
                TypeKind::Struct {
                    declaration: true,
                    ..
                } | TypeKind::Union {
                    declaration: true,
                    ..
                }
            );
            if !decl {
                return Ok(Some(id));
            }
        }
        let t0 = std::time::Instant::now();
        let found = self.dwarf()?.find_type(name)?;
        tracing::debug!(name, found = found.is_some(), elapsed = ?t0.elapsed(), "DWARF type lookup");
        Ok(found.map(Self::tag))
    }

    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        if id.0 & DWARF_TAG == 0 {
            return match self.btf() {
                Some(b) => b.get(id),
                None => Err(DebugInfoError::BadTypeId(id)),
            };
        }
        if let Some(t) = self
            .retagged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id.0)
        {
            return Ok(t.clone());
        }
        let t = self.dwarf()?.get(TypeId(id.0 & !DWARF_TAG))?;
        let t = Arc::new(Self::retag(&t));
        self.retagged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.0, t.clone());
        Ok(t)
    }

    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        // BTF describes only per-CPU variables; ask it only if it is loaded already.
        if let Some(Some(btf)) = self.btf.get()
            && let Some(id) = btf.variable_type(name)?
        {
            return Ok(Some(id));
        }
        let dwarf = self.dwarf()?;
        let t0 = std::time::Instant::now();
        let found = dwarf.variable_type(name)?;
        tracing::debug!(
            name,
            found = found.is_some(),
            elapsed = ?t0.elapsed(),
            units_scanned = dwarf.units_scanned(),
            "DWARF variable lookup"
        );
        let Some(id) = found else {
            return Ok(None);
        };
        let t = dwarf.get(id)?;
        if let Some(twin) = self.btf_twin(&t)? {
            return Ok(Some(twin));
        }
        Ok(Some(Self::tag(id)))
    }

    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        if let Some(btf) = self.btf()
            && let Some(v) = btf.enumerator(name)?
        {
            return Ok(Some(v));
        }
        let t0 = std::time::Instant::now();
        let found = self.dwarf()?.enumerator(name)?;
        tracing::debug!(name, found = found.is_some(), elapsed = ?t0.elapsed(), "DWARF enumerator lookup");
        Ok(found)
    }
}
