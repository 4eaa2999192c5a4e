//! The vmlinux's own `.BTF` section as a fast [`TypeSource`].
//!
//! BTF (BPF Type Format, the kernel's `include/uapi/linux/btf.h`) is a compact, deduplicated type
//! description the kernel build (pahole) derives from DWARF. The section starts with a header:
//!
//! ```text
//! u16 magic = 0xeB9F   u8 version = 1   u8 flags   u32 hdr_len
//! u32 type_off  u32 type_len  u32 str_off  u32 str_len      (offsets from the end of the header)
//! ```
//!
//! The type section is a sequence of `struct btf_type { u32 name_off; u32 info; u32 size_or_type; }`
//! records, numbered from 1 (id 0 is `void`). `info` holds `vlen` in bits 0..16, the kind in bits
//! 24..29 and `kind_flag` in bit 31. Each record is followed by kind-specific data:
//! INT a `u32` (encoding in bits 24..28: 1 signed, 2 char, 4 bool; bit offset in 16..24; bit count
//! in 0..8), ARRAY `{type, index_type, nelems}`, STRUCT/UNION `vlen` × `{name_off, type, offset}`
//! (with `kind_flag`, `offset` packs the bitfield size in bits 24..32 and the bit offset below),
//! ENUM `vlen` × `{name_off, s32 val}`, ENUM64 `vlen` × `{name_off, lo32, hi32}`, FUNC_PROTO
//! `vlen` × `{name_off, type}`, VAR `{u32 linkage}`, DATASEC `vlen` × `{type, offset, size}`,
//! DECL_TAG `{s32 component_idx}`. Strings are NUL-terminated in the string section.
//!
//! Parsing is one pass that records where each type starts and indexes names (a 6.1 vmlinux has
//! about 130 000 types in 4 MB; a few milliseconds). Layouts are built on demand and memoized.
//! BTF lacks most global variables (only per-CPU ones get `VAR` records) and has no DWARF-only
//! details, so DWARF stays the authority; [`crate::debuginfo::CombinedTypes`] falls back to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::debuginfo::elf::Vmlinux;
use crate::debuginfo::{BaseEncoding, DebugInfoError, Member, Type, TypeId, TypeKind, TypeSource};

const BTF_MAGIC: u16 = 0xeb9f;
/// The largest BTF section read from a dump's memory (a 6.12 distribution kernel has about 6 MB).
pub const MAX_MEMORY_BTF: u64 = 64 << 20;

mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NameKind {
    Struct,
    Union,
    Enum,
    Plain,
    Var,
}

enum Bytes {
    Mapped(#[allow(dead_code)] Arc<Vmlinux>, &'static [u8]),
    Owned(Vec<u8>),
}

/// BTF types behind [`TypeSource`].
pub struct BtfTypes {
    bytes: Bytes,
    big_endian: bool,
    /// Start of the type records and of the strings, inside `bytes`.
    types_start: usize,
    strs: (usize, usize),
    /// Offset (from `types_start`) of each type record, indexed by id - 1.
    offsets: Vec<u32>,
    /// Per name, the type id and whether it is a forward declaration (a later definition
    /// replaces one while parsing).
    names: HashMap<(NameKind, String), (u32, bool), foldhash::fast::RandomState>,
    enumerators: HashMap<String, i64, foldhash::fast::RandomState>,
    layouts: Mutex<HashMap<u32, Arc<Type>>>,
}

fn bad(what: impl Into<String>) -> DebugInfoError {
    DebugInfoError::BadElf(format!("BTF: {}", what.into()))
}

struct Rec {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    size_type: u32,
    /// Offset of the kind-specific data.
    extra: usize,
}

impl Rec {
    /// The length of the kind-specific data after the record, `None` for an unknown kind.
    fn extra_len(&self) -> Option<usize> {
        Some(match self.kind {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::ARRAY => 12,
            kind::STRUCT | kind::UNION | kind::DATASEC => 12 * self.vlen,
            kind::ENUM | kind::FUNC_PROTO => 8 * self.vlen,
            kind::ENUM64 => 12 * self.vlen,
            kind::PTR
            | kind::FWD
            | kind::TYPEDEF
            | kind::VOLATILE
            | kind::CONST
            | kind::RESTRICT
            | kind::FUNC
            | kind::FLOAT
            | kind::TYPE_TAG => 0,
            _ => return None,
        })
    }

    /// Under which kind of name the type is looked up, if it is.
    fn name_kind(&self) -> Option<NameKind> {
        match self.kind {
            kind::STRUCT => Some(NameKind::Struct),
            kind::UNION => Some(NameKind::Union),
            kind::ENUM | kind::ENUM64 => Some(NameKind::Enum),
            kind::FWD if self.kind_flag => Some(NameKind::Union),
            kind::FWD => Some(NameKind::Struct),
            kind::TYPEDEF | kind::INT | kind::FLOAT => Some(NameKind::Plain),
            kind::VAR => Some(NameKind::Var),
            _ => None,
        }
    }
}

impl BtfTypes {
    /// The `.BTF` section of a vmlinux, or `None` if it has none.
    pub fn from_vmlinux(vm: Arc<Vmlinux>) -> Result<Option<BtfTypes>, DebugInfoError> {
        let Some(data) = vm.section_static(".BTF")? else {
            return Ok(None);
        };
        BtfTypes::parse(Bytes::Mapped(vm, data)).map(Some)
    }

    /// BTF from raw bytes (tests, or a BTF blob found elsewhere).
    pub fn from_bytes(data: Vec<u8>) -> Result<BtfTypes, DebugInfoError> {
        BtfTypes::parse(Bytes::Owned(data))
    }

    /// The running kernel's own BTF, read from the dump's memory between `__start_BTF` and
    /// `__stop_BTF` (the `.BTF` section is loaded with the read-only data on kernels built with
    /// `CONFIG_DEBUG_INFO_BTF`; include/asm-generic/vmlinux.lds.h). At most [`MAX_MEMORY_BTF`]
    /// bytes are read.
    pub fn from_memory(
        read: &dyn Fn(u64, usize) -> Result<Vec<u8>, String>,
        start: u64,
        stop: u64,
    ) -> Result<BtfTypes, DebugInfoError> {
        let len = stop
            .checked_sub(start)
            .filter(|l| (24..=MAX_MEMORY_BTF).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "__start_BTF {start:#x} .. __stop_BTF {stop:#x} is not a plausible section \
                     (24 bytes to {MAX_MEMORY_BTF} accepted)"
                ))
            })?;
        let data = read(start, len as usize)
            .map_err(|why| bad(format!("cannot read {len} bytes at {start:#x}: {why}")))?;
        BtfTypes::parse(Bytes::Owned(data))
    }

    /// Finds the kernel's BTF in the kernel image without `__start_BTF` (a kallsyms table
    /// without data symbols, `CONFIG_KALLSYMS_ALL=n`): the header's first eight bytes (magic,
    /// version 1, flags 0, `hdr_len` 24, in the dump's byte order) at a 4-byte boundary within
    /// `limit` bytes of `start`; the first candidate that parses and describes
    /// `struct task_struct` is the kernel's. Returns it with its address and size.
    pub fn scan(
        read: crate::debuginfo::memscan::ReadFn<'_>,
        start: u64,
        limit: u64,
        big_endian: bool,
    ) -> Result<(BtfTypes, u64, u64), DebugInfoError> {
        let magic: [u8; 8] = if big_endian {
            [0xeb, 0x9f, 1, 0, 0, 0, 0, 24]
        } else {
            [0x9f, 0xeb, 1, 0, 24, 0, 0, 0]
        };
        let hits = crate::debuginfo::memscan::find_all(read, start, limit, &magic, 4, 16);
        for at in &hits {
            let Ok(hdr) = read(*at, 24) else { continue };
            let field = |o: usize| u64::from(read_u32(&hdr, o, big_endian).unwrap_or(0));
            let len = 24 + (field(8) + field(12)).max(field(16) + field(20));
            let Some(end) = at.checked_add(len) else {
                continue;
            };
            let Ok(btf) = BtfTypes::from_memory(read, *at, end) else {
                continue;
            };
            if matches!(btf.find_type("struct task_struct"), Ok(Some(_))) {
                return Ok((btf, *at, len));
            }
        }
        Err(bad(format!(
            "no BTF header that parses in {limit:#x} bytes from {start:#x} ({} candidates)",
            hits.len()
        )))
    }

    fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(_, d) => d,
            Bytes::Owned(v) => v,
        }
    }

    fn parse(bytes: Bytes) -> Result<BtfTypes, DebugInfoError> {
        let data: &[u8] = match &bytes {
            Bytes::Mapped(_, d) => d,
            Bytes::Owned(v) => v,
        };
        let magic = data.get(..2).ok_or_else(|| bad("section too short"))?;
        let big_endian = match u16::from_le_bytes([magic[0], magic[1]]) {
            BTF_MAGIC => false,
            m if m.swap_bytes() == BTF_MAGIC => true,
            m => return Err(bad(format!("bad magic {m:#x}"))),
        };
        let rd =
            |off: usize| read_u32(data, off, big_endian).ok_or_else(|| bad("truncated header"));
        let hdr_len = rd(4)? as usize;
        let (type_off, type_len) = (rd(8)? as usize, rd(12)? as usize);
        let (str_off, str_len) = (rd(16)? as usize, rd(20)? as usize);
        let range = |off: usize, len: usize| {
            let s = hdr_len.checked_add(off)?;
            let e = s.checked_add(len)?;
            (e <= data.len()).then_some((s, e))
        };
        let (ts, te) =
            range(type_off, type_len).ok_or_else(|| bad("type section out of bounds"))?;
        let strs = range(str_off, str_len).ok_or_else(|| bad("string section out of bounds"))?;
        let mut me = BtfTypes {
            big_endian,
            types_start: ts,
            strs,
            offsets: Vec::new(),
            names: HashMap::default(),
            enumerators: HashMap::default(),
            layouts: Mutex::new(HashMap::new()),
            bytes: Bytes::Owned(Vec::new()),
        };
        // A counting pass first (the record headers only), so that the lists and maps below
        // are allocated once at their size instead of regrown (and copied) by doubling; it
        // stops at the first malformed record, which the pass after reports.
        let (mut types, mut named, mut enumerated) = (0usize, 0usize, 0usize);
        let mut pos = ts;
        while pos < te {
            let Ok(rec) = me.rec_in(data, pos) else { break };
            let Some(len) = rec.extra_len() else { break };
            types += 1;
            named += usize::from(rec.name_kind().is_some() && rec.name_off != 0);
            if matches!(rec.kind, kind::ENUM | kind::ENUM64) {
                enumerated += rec.vlen;
            }
            match rec.extra.checked_add(len).filter(|&e| e <= te) {
                Some(e) => pos = e,
                None => break,
            }
        }
        // Then record offsets, using the section data borrowed from `bytes`.
        let mut pos = ts;
        let mut offsets = Vec::with_capacity(types);
        let mut names: HashMap<_, _, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(named, Default::default());
        let mut enumerators: HashMap<_, _, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(enumerated, Default::default());
        while pos < te {
            let id = offsets.len() as u32 + 1;
            let rec = me.rec_in(data, pos)?;
            let extra_len = rec
                .extra_len()
                .ok_or_else(|| bad(format!("unknown kind {} at type {id}", rec.kind)))?;
            let nk = rec.name_kind();
            // Names are read only for the kinds looked up by name (most records are functions,
            // pointers and qualifiers).
            if let Some(nk) = nk
                && let Some(name) = me.str_in(data, rec.name_off).filter(|n| !n.is_empty())
            {
                let is_fwd = rec.kind == kind::FWD;
                names
                    .entry((nk, name.to_string()))
                    .and_modify(|old: &mut (u32, bool)| {
                        if old.1 && !is_fwd {
                            *old = (id, false);
                        }
                    })
                    .or_insert((id, is_fwd));
            }
            if matches!(rec.kind, kind::ENUM | kind::ENUM64) {
                let step = if rec.kind == kind::ENUM { 8 } else { 12 };
                for i in 0..rec.vlen {
                    let at = rec.extra + i * step;
                    let (Some(no), Some(lo)) = (
                        read_u32(data, at, big_endian),
                        read_u32(data, at + 4, big_endian),
                    ) else {
                        return Err(bad("truncated enum"));
                    };
                    let v = if rec.kind == kind::ENUM {
                        if rec.kind_flag {
                            i64::from(lo as i32)
                        } else {
                            i64::from(lo)
                        }
                    } else {
                        let hi = read_u32(data, at + 8, big_endian).ok_or_else(|| bad("enum64"))?;
                        ((u64::from(hi) << 32) | u64::from(lo)) as i64
                    };
                    if let Some(n) = me.str_in(data, no) {
                        enumerators.entry(n.to_string()).or_insert(v);
                    }
                }
            }
            offsets.push(u32::try_from(pos - ts).map_err(|_| bad("type section too large"))?);
            pos = rec
                .extra
                .checked_add(extra_len)
                .filter(|&e| e <= te)
                .ok_or_else(|| bad(format!("type {id} runs past the section")))?;
        }
        me.offsets = offsets;
        me.names = names;
        me.enumerators = enumerators;
        me.bytes = bytes;
        Ok(me)
    }

    fn rec_in(&self, data: &[u8], pos: usize) -> Result<Rec, DebugInfoError> {
        let r = |o: usize| {
            read_u32(data, pos + o, self.big_endian).ok_or_else(|| bad("truncated type"))
        };
        let info = r(4)?;
        Ok(Rec {
            name_off: r(0)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 != 0,
            size_type: r(8)?,
            extra: pos + 12,
        })
    }

    fn str_in<'a>(&self, data: &'a [u8], off: u32) -> Option<&'a str> {
        let (s, e) = self.strs;
        let start = s.checked_add(off as usize)?;
        let bytes = data.get(start..e)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        let name = bytes.get(..end)?;
        if name.is_ascii() {
            // SAFETY: ASCII is valid UTF-8 (and checking that is cheaper than a full UTF-8
            // validation of each of the tens of thousands of names).
            return Some(unsafe { std::str::from_utf8_unchecked(name) });
        }
        std::str::from_utf8(name).ok()
    }

    fn u32_at(&self, off: usize) -> Result<u32, DebugInfoError> {
        read_u32(self.data(), off, self.big_endian).ok_or_else(|| bad("truncated type data"))
    }

    fn rec(&self, id: u32) -> Result<Rec, DebugInfoError> {
        let off = id
            .checked_sub(1)
            .and_then(|i| self.offsets.get(i as usize))
            .ok_or(DebugInfoError::BadTypeId(TypeId(u64::from(id))))?;
        self.rec_in(self.data(), self.types_start + *off as usize)
    }

    fn name(&self, off: u32) -> Option<String> {
        self.str_in(self.data(), off)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Number of types (ids 1..=count).
    pub fn type_count(&self) -> usize {
        self.offsets.len()
    }

    fn opt_id(id: u32) -> Option<TypeId> {
        (id != 0).then_some(TypeId(u64::from(id)))
    }

    fn get_depth(&self, id: u32, depth: u32) -> Result<Arc<Type>, DebugInfoError> {
        if let Some(t) = self
            .layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(t.clone());
        }
        if depth > 64 {
            return Err(bad(format!("type {id}: chain too deep (cycle?)")));
        }
        let t = Arc::new(self.build(id, depth)?);
        self.layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, t.clone());
        Ok(t)
    }

    fn size_of(&self, id: u32, depth: u32) -> Result<Option<u64>, DebugInfoError> {
        if id == 0 {
            return Ok(None);
        }
        Ok(self.get_depth(id, depth + 1)?.size)
    }

    fn build(&self, id: u32, depth: u32) -> Result<Type, DebugInfoError> {
        if id == 0 {
            return Ok(Type {
                name: Some("void".into()),
                size: None,
                kind: TypeKind::Void,
            });
        }
        let r = self.rec(id)?;
        let name = self.name(r.name_off);
        Ok(match r.kind {
            kind::INT => {
                let enc = self.u32_at(r.extra)?;
                let e = (enc >> 24) & 0xf;
                let encoding = if e & 4 != 0 {
                    BaseEncoding::Bool
                } else if e & 2 != 0 {
                    if e & 1 != 0 {
                        BaseEncoding::SignedChar
                    } else {
                        BaseEncoding::UnsignedChar
                    }
                } else if e & 1 != 0 {
                    BaseEncoding::Signed
                } else {
                    BaseEncoding::Unsigned
                };
                Type {
                    name,
                    size: Some(u64::from(r.size_type)),
                    kind: TypeKind::Base { encoding },
                }
            }
            kind::FLOAT => Type {
                name,
                size: Some(u64::from(r.size_type)),
                kind: TypeKind::Base {
                    encoding: BaseEncoding::Float,
                },
            },
            kind::PTR => Type {
                name: None,
                size: Some(8),
                kind: TypeKind::Pointer {
                    target: Self::opt_id(r.size_type),
                },
            },
            kind::ARRAY => {
                let elem = self.u32_at(r.extra)?;
                let n = self.u32_at(r.extra + 8)?;
                // BTF writes both `x[]` and GNU `x[0]` as 0 elements: a flexible array.
                let count = (n != 0).then_some(u64::from(n));
                Type {
                    name: None,
                    size: match count {
                        Some(n) => self.size_of(elem, depth)?.and_then(|s| s.checked_mul(n)),
                        None => None,
                    },
                    kind: TypeKind::Array {
                        element: TypeId(u64::from(elem)),
                        count,
                    },
                }
            }
            kind::STRUCT | kind::UNION => {
                let mut members = Vec::with_capacity(r.vlen);
                for i in 0..r.vlen {
                    let at = r.extra + 12 * i;
                    let mname = self.u32_at(at)?;
                    let mty = self.u32_at(at + 4)?;
                    let off = self.u32_at(at + 8)?;
                    let (mut bit_offset, mut bit_size) = if r.kind_flag {
                        let bs = off >> 24;
                        (
                            u64::from(off & 0xff_ffff),
                            (bs != 0).then_some(u64::from(bs)),
                        )
                    } else {
                        (u64::from(off), None)
                    };
                    if !r.kind_flag {
                        // Old-style bitfield: an INT whose own encoding carries bit offset/width.
                        if let Ok(mr) = self.rec(mty)
                            && mr.kind == kind::INT
                        {
                            let enc = self.u32_at(mr.extra)?;
                            let nr_bits = u64::from(enc & 0xff);
                            if nr_bits != u64::from(mr.size_type) * 8 {
                                bit_offset += u64::from((enc >> 16) & 0xff);
                                bit_size = Some(nr_bits);
                            }
                        }
                    }
                    members.push(Member {
                        name: self.name(mname),
                        ty: TypeId(u64::from(mty)),
                        bit_offset,
                        bit_size,
                    });
                }
                let size = Some(u64::from(r.size_type));
                let kind = if r.kind == kind::UNION {
                    TypeKind::Union {
                        members,
                        declaration: false,
                    }
                } else {
                    TypeKind::Struct {
                        members,
                        declaration: false,
                    }
                };
                Type { name, size, kind }
            }
            kind::FWD => Type {
                name,
                size: None,
                kind: if r.kind_flag {
                    TypeKind::Union {
                        members: Vec::new(),
                        declaration: true,
                    }
                } else {
                    TypeKind::Struct {
                        members: Vec::new(),
                        declaration: true,
                    }
                },
            },
            kind::ENUM | kind::ENUM64 => {
                let step = if r.kind == kind::ENUM { 8 } else { 12 };
                let mut enumerators = Vec::with_capacity(r.vlen);
                for i in 0..r.vlen {
                    let at = r.extra + i * step;
                    let lo = self.u32_at(at + 4)?;
                    let v = if r.kind == kind::ENUM {
                        if r.kind_flag {
                            i64::from(lo as i32)
                        } else {
                            i64::from(lo)
                        }
                    } else {
                        ((u64::from(self.u32_at(at + 8)?) << 32) | u64::from(lo)) as i64
                    };
                    enumerators.push((self.name(self.u32_at(at)?).unwrap_or_default(), v));
                }
                Type {
                    name,
                    size: Some(u64::from(r.size_type)),
                    kind: TypeKind::Enum {
                        signed: r.kind_flag,
                        enumerators,
                    },
                }
            }
            kind::TYPEDEF => Type {
                name,
                size: self.size_of(r.size_type, depth)?,
                kind: TypeKind::Typedef {
                    target: Self::opt_id(r.size_type),
                },
            },
            kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                (*self.get_depth(r.size_type, depth + 1)?).clone()
            }
            kind::FUNC | kind::FUNC_PROTO => Type {
                name,
                size: None,
                kind: TypeKind::Function,
            },
            k => return Err(bad(format!("type {id} of kind {k} is not a data type"))),
        })
    }
}

fn read_u32(data: &[u8], off: usize, big: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

impl TypeSource for BtfTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        let (kw, bare) = crate::debuginfo::dwarf::split_c_name(name);
        let nk = match kw {
            Some("struct") => NameKind::Struct,
            Some("union") => NameKind::Union,
            Some("enum") => NameKind::Enum,
            _ if bare == "void" => return Ok(Some(TypeId(0))),
            _ => NameKind::Plain,
        };
        Ok(self
            .names
            .get(&(nk, bare.to_string()))
            .map(|&(id, _)| TypeId(u64::from(id))))
    }

    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        let id = u32::try_from(id.0).map_err(|_| DebugInfoError::BadTypeId(id))?;
        self.get_depth(id, 0)
    }

    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        match self.names.get(&(NameKind::Var, name.to_string())) {
            Some(&(id, _)) => Ok(Self::opt_id(self.rec(id)?.size_type)),
            None => Ok(None),
        }
    }

    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        Ok(self.enumerators.get(name).copied())
    }
}
