//! A synthetic vmlinux builder: an ELF with DWARF (written by `gimli::write`), a symbol table, an
//! optional `.rodata` (for `linux_banner`) and an optional GNU build-id note.
//!
//! Written independently of the reader in `src/debuginfo`: the builder's own records (the offsets
//! and sizes the test author passes in) are the oracle. Types are declared once and the builder
//! emits them; several compilation units can be used so that cross-unit references, declarations
//! in one unit and definitions in another, and the lazy index's unit-by-unit scan are exercised.
//!
//! ```ignore
//! let mut b = VmlinuxBuilder::new();
//! let ulong = b.base("long unsigned int", 8, false);
//! let lh = b.forward("list_head");
//! let lhp = b.pointer(Some(lh));
//! b.define(lh, 16, vec![field("next", lhp, 0), field("prev", lhp, 8)]);
//! b.variable("jiffies", ulong, 0xffffffff82000000, 8);
//! let elf = b.build();
//! ```
//!
//! [`sample_kernel`] builds a small kernel's worth of types (task_struct, rq, cfs_rq,
//! uts_namespace, list_head, rb_node, cpumask, …) in two "versions": the newer one renames
//! `task_struct.state` to `__state` and moves `prio`, as Linux 5.14 did to `state`.

use std::io::Write as _;

use gimli::write::{
    AttributeValue, DebugInfoRef, Dwarf, EndianVec, LineProgram, Sections, Unit, UnitEntryId,
    UnitId,
};

/// A type handle issued by the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ty(usize);

/// One struct or union member.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: Option<String>,
    pub ty: Ty,
    /// Byte offset of an ordinary member.
    pub offset: u64,
    /// For a bitfield: (absolute bit offset from the aggregate start, width in bits).
    pub bits: Option<(u64, u64)>,
}

pub fn field(name: &str, ty: Ty, offset: u64) -> Field {
    Field {
        name: Some(name.into()),
        ty,
        offset,
        bits: None,
    }
}

/// An anonymous struct or union member.
pub fn anon(ty: Ty, offset: u64) -> Field {
    Field {
        name: None,
        ty,
        offset,
        bits: None,
    }
}

/// A bitfield at an absolute bit offset, `width` bits wide, of an integer type.
pub fn bitfield(name: &str, ty: Ty, bit_offset: u64, width: u64) -> Field {
    Field {
        name: Some(name.into()),
        ty,
        offset: bit_offset / 8,
        bits: Some((bit_offset, width)),
    }
}

#[derive(Clone, Debug)]
enum Node {
    Base {
        name: String,
        size: u64,
        enc: gimli::DwAte,
    },
    Pointer(Option<Ty>),
    Typedef(String, Option<Ty>),
    Const(Option<Ty>),
    Volatile(Option<Ty>),
    Array(Ty, Vec<Option<u64>>),
    Enum {
        name: Option<String>,
        size: u64,
        values: Vec<(String, i64)>,
        signed: bool,
    },
    Aggregate {
        union: bool,
        name: Option<String>,
        def: Option<(u64, Vec<Field>)>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// `SHF_COMPRESSED` with an `Elf64_Chdr` and zlib.
    Zlib,
    /// Legacy GNU `.zdebug_*` sections (`ZLIB` + big-endian size + zlib stream).
    Gnu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
}

struct Var {
    name: String,
    ty: Ty,
    unit: usize,
    /// Emit an `extern` declaration in unit 0 and the definition (DW_AT_specification) here.
    split: bool,
}

/// How a symbol without DWARF is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymFlags {
    /// `STT_FUNC` in `.text` (else `STT_OBJECT` in `.data`/`.rodata`).
    pub text: bool,
    /// `STB_GLOBAL` (else `STB_LOCAL`).
    pub global: bool,
    /// `SHN_ABS`.
    pub absolute: bool,
}

impl SymFlags {
    pub const FUNC: SymFlags = SymFlags {
        text: true,
        global: true,
        absolute: false,
    };
    pub const LOCAL_FUNC: SymFlags = SymFlags {
        text: true,
        global: false,
        absolute: false,
    };
    pub const DATA: SymFlags = SymFlags {
        text: false,
        global: true,
        absolute: false,
    };
    pub const ABSOLUTE: SymFlags = SymFlags {
        text: false,
        global: true,
        absolute: true,
    };
}

/// Builds a vmlinux-like ELF.
pub struct VmlinuxBuilder {
    version: u16,
    compression: Compression,
    machine: Machine,
    build_id: Option<Vec<u8>>,
    legacy_bitfields: bool,
    nodes: Vec<(Node, usize)>,
    unit: usize,
    units: usize,
    vars: Vec<Var>,
    symbols: Vec<(String, u64, u64, SymFlags)>,
    rodata: Vec<(u64, Vec<u8>)>,
}

impl Default for VmlinuxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl VmlinuxBuilder {
    /// An x86_64 vmlinux with DWARF 5, uncompressed, no build-id.
    pub fn new() -> Self {
        VmlinuxBuilder {
            version: 5,
            compression: Compression::None,
            machine: Machine::X86_64,
            build_id: None,
            legacy_bitfields: false,
            nodes: Vec::new(),
            unit: 0,
            units: 1,
            vars: Vec::new(),
            symbols: Vec::new(),
            rodata: Vec::new(),
        }
    }
    pub fn dwarf_version(&mut self, v: u16) -> &mut Self {
        self.version = v;
        self
    }
    pub fn compression(&mut self, c: Compression) -> &mut Self {
        self.compression = c;
        self
    }
    pub fn machine(&mut self, m: Machine) -> &mut Self {
        self.machine = m;
        self
    }
    pub fn build_id(&mut self, id: &[u8]) -> &mut Self {
        self.build_id = Some(id.to_vec());
        self
    }
    /// Describe bitfields with DWARF 2/3's `DW_AT_bit_offset` + `DW_AT_byte_size`.
    pub fn legacy_bitfields(&mut self, on: bool) -> &mut Self {
        self.legacy_bitfields = on;
        self
    }
    /// Starts a new compilation unit; later types and variables go there.
    pub fn new_unit(&mut self) -> &mut Self {
        self.unit = self.units;
        self.units += 1;
        self
    }

    fn add(&mut self, n: Node) -> Ty {
        self.nodes.push((n, self.unit));
        Ty(self.nodes.len() - 1)
    }

    /// An integer base type.
    pub fn base(&mut self, name: &str, size: u64, signed: bool) -> Ty {
        let enc = if signed {
            gimli::DW_ATE_signed
        } else {
            gimli::DW_ATE_unsigned
        };
        self.add(Node::Base {
            name: name.into(),
            size,
            enc,
        })
    }
    /// `char` (signed, as on x86_64).
    pub fn char_type(&mut self) -> Ty {
        self.add(Node::Base {
            name: "char".into(),
            size: 1,
            enc: gimli::DW_ATE_signed_char,
        })
    }
    pub fn bool_type(&mut self) -> Ty {
        self.add(Node::Base {
            name: "_Bool".into(),
            size: 1,
            enc: gimli::DW_ATE_boolean,
        })
    }
    pub fn pointer(&mut self, target: Option<Ty>) -> Ty {
        self.add(Node::Pointer(target))
    }
    pub fn typedef(&mut self, name: &str, target: Ty) -> Ty {
        self.add(Node::Typedef(name.into(), Some(target)))
    }
    pub fn const_(&mut self, target: Ty) -> Ty {
        self.add(Node::Const(Some(target)))
    }
    pub fn volatile(&mut self, target: Ty) -> Ty {
        self.add(Node::Volatile(Some(target)))
    }
    /// An array; `None` is a flexible array member `x[]`.
    pub fn array(&mut self, element: Ty, count: Option<u64>) -> Ty {
        self.add(Node::Array(element, vec![count]))
    }
    /// A multi-dimensional array `element[d0][d1]…`, one DIE with several subranges.
    pub fn array_nd(&mut self, element: Ty, dims: &[u64]) -> Ty {
        self.add(Node::Array(
            element,
            dims.iter().map(|&d| Some(d)).collect(),
        ))
    }
    pub fn enumeration(&mut self, name: Option<&str>, size: u64, values: &[(&str, i64)]) -> Ty {
        let signed = values.iter().any(|(_, v)| *v < 0);
        self.add(Node::Enum {
            name: name.map(Into::into),
            size,
            values: values.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            signed,
        })
    }
    /// A struct defined right away.
    pub fn structure(&mut self, name: Option<&str>, size: u64, fields: Vec<Field>) -> Ty {
        self.add(Node::Aggregate {
            union: false,
            name: name.map(Into::into),
            def: Some((size, fields)),
        })
    }
    pub fn union(&mut self, name: Option<&str>, size: u64, fields: Vec<Field>) -> Ty {
        self.add(Node::Aggregate {
            union: true,
            name: name.map(Into::into),
            def: Some((size, fields)),
        })
    }
    /// A struct to be defined later with [`VmlinuxBuilder::define`] (for self-references).
    /// Left undefined it is emitted as a declaration (`struct name;`).
    pub fn forward(&mut self, name: &str) -> Ty {
        self.add(Node::Aggregate {
            union: false,
            name: Some(name.into()),
            def: None,
        })
    }
    /// A pure declaration `struct name;` in the current unit.
    pub fn declaration(&mut self, name: &str) -> Ty {
        self.forward(name)
    }
    pub fn define(&mut self, ty: Ty, size: u64, fields: Vec<Field>) {
        if let Some((Node::Aggregate { def, .. }, _)) = self.nodes.get_mut(ty.0) {
            *def = Some((size, fields));
        }
    }

    /// A global variable with a data symbol at `addr` (link-time, before KASLR).
    pub fn variable(&mut self, name: &str, ty: Ty, addr: u64, size: u64) {
        self.vars.push(Var {
            name: name.into(),
            ty,
            unit: self.unit,
            split: false,
        });
        self.symbols.push((name.into(), addr, size, SymFlags::DATA));
    }
    /// Like [`VmlinuxBuilder::variable`], with an `extern` declaration in the first unit and a
    /// definition that names it through `DW_AT_specification`, as GCC emits for globals
    /// declared in a header.
    pub fn variable_split(&mut self, name: &str, ty: Ty, addr: u64, size: u64) {
        self.vars.push(Var {
            name: name.into(),
            ty,
            unit: self.unit,
            split: true,
        });
        self.symbols.push((name.into(), addr, size, SymFlags::DATA));
    }
    /// A global symbol with no DWARF (`text`: a function).
    pub fn symbol(&mut self, name: &str, addr: u64, size: u64, text: bool) {
        let flags = if text { SymFlags::FUNC } else { SymFlags::DATA };
        self.symbols.push((name.into(), addr, size, flags));
    }
    /// A symbol with no DWARF, its kind, binding and section chosen.
    pub fn symbol_with(&mut self, name: &str, addr: u64, size: u64, flags: SymFlags) {
        self.symbols.push((name.into(), addr, size, flags));
    }
    /// Bytes placed at a link-time address in `.rodata` (e.g. `linux_banner`).
    pub fn rodata(&mut self, addr: u64, bytes: &[u8]) {
        self.rodata.push((addr, bytes.to_vec()));
    }
    /// `linux_banner` as a symbol with its string in `.rodata`.
    pub fn linux_banner(&mut self, addr: u64, banner: &str) {
        let mut b = banner.as_bytes().to_vec();
        b.push(0);
        self.symbols
            .push(("linux_banner".into(), addr, b.len() as u64, SymFlags::DATA));
        self.rodata(addr, &b);
    }

    fn dwarf(&self) -> Vec<(&'static str, Vec<u8>)> {
        let encoding = gimli::Encoding {
            format: gimli::Format::Dwarf32,
            version: self.version,
            address_size: 8,
        };
        let mut dwarf = Dwarf::new();
        let unit_ids: Vec<UnitId> = (0..self.units)
            .map(|_| dwarf.units.add(Unit::new(encoding, LineProgram::none())))
            .collect();
        for (i, u) in unit_ids.iter().enumerate() {
            let unit = dwarf.units.get_mut(*u);
            let root = unit.root();
            unit.get_mut(root).set(
                gimli::DW_AT_name,
                AttributeValue::String(format!("unit{i}.c").into_bytes()),
            );
        }
        // First pass: one DIE per node, so references can point anywhere.
        let mut ids: Vec<(UnitId, UnitEntryId)> = Vec::new();
        for (node, unit) in &self.nodes {
            let uid = unit_ids[*unit];
            let tag = match node {
                Node::Base { .. } => gimli::DW_TAG_base_type,
                Node::Pointer(_) => gimli::DW_TAG_pointer_type,
                Node::Typedef(..) => gimli::DW_TAG_typedef,
                Node::Const(_) => gimli::DW_TAG_const_type,
                Node::Volatile(_) => gimli::DW_TAG_volatile_type,
                Node::Array(..) => gimli::DW_TAG_array_type,
                Node::Enum { .. } => gimli::DW_TAG_enumeration_type,
                Node::Aggregate { union: true, .. } => gimli::DW_TAG_union_type,
                Node::Aggregate { union: false, .. } => gimli::DW_TAG_structure_type,
            };
            let unit = dwarf.units.get_mut(uid);
            let root = unit.root();
            ids.push((uid, unit.add(root, tag)));
        }
        let r = |from: UnitId, to: Ty| -> AttributeValue {
            let (tu, te) = ids[to.0];
            if tu == from {
                AttributeValue::UnitRef(te)
            } else {
                AttributeValue::DebugInfoRef(DebugInfoRef::Entry(tu, te))
            }
        };
        let name = |s: &str| AttributeValue::String(s.as_bytes().to_vec());
        let big = false;
        for (i, (node, _)) in self.nodes.iter().enumerate() {
            let (uid, eid) = ids[i];
            let mut children: Vec<(gimli::DwTag, Vec<(gimli::DwAt, AttributeValue)>)> = Vec::new();
            let mut attrs: Vec<(gimli::DwAt, AttributeValue)> = Vec::new();
            match node {
                Node::Base { name: n, size, enc } => {
                    attrs.push((gimli::DW_AT_name, name(n)));
                    attrs.push((gimli::DW_AT_byte_size, AttributeValue::Udata(*size)));
                    attrs.push((gimli::DW_AT_encoding, AttributeValue::Encoding(*enc)));
                }
                Node::Pointer(t) => {
                    attrs.push((gimli::DW_AT_byte_size, AttributeValue::Udata(8)));
                    if let Some(t) = t {
                        attrs.push((gimli::DW_AT_type, r(uid, *t)));
                    }
                }
                Node::Typedef(n, t) => {
                    attrs.push((gimli::DW_AT_name, name(n)));
                    if let Some(t) = t {
                        attrs.push((gimli::DW_AT_type, r(uid, *t)));
                    }
                }
                Node::Const(t) | Node::Volatile(t) => {
                    if let Some(t) = t {
                        attrs.push((gimli::DW_AT_type, r(uid, *t)));
                    }
                }
                Node::Array(elem, dims) => {
                    attrs.push((gimli::DW_AT_type, r(uid, *elem)));
                    for d in dims {
                        let mut a = Vec::new();
                        if let Some(n) = d {
                            // Alternate the two encodings GCC and clang use.
                            if n % 2 == 0 {
                                a.push((gimli::DW_AT_count, AttributeValue::Udata(*n)));
                            } else {
                                a.push((
                                    gimli::DW_AT_upper_bound,
                                    AttributeValue::Sdata(*n as i64 - 1),
                                ));
                            }
                        }
                        children.push((gimli::DW_TAG_subrange_type, a));
                    }
                }
                Node::Enum {
                    name: n,
                    size,
                    values,
                    signed,
                } => {
                    if let Some(n) = n {
                        attrs.push((gimli::DW_AT_name, name(n)));
                    }
                    attrs.push((gimli::DW_AT_byte_size, AttributeValue::Udata(*size)));
                    for (en, v) in values {
                        let val = if *signed {
                            AttributeValue::Sdata(*v)
                        } else {
                            AttributeValue::Udata(*v as u64)
                        };
                        children.push((
                            gimli::DW_TAG_enumerator,
                            vec![
                                (gimli::DW_AT_name, name(en)),
                                (gimli::DW_AT_const_value, val),
                            ],
                        ));
                    }
                }
                Node::Aggregate { name: n, def, .. } => {
                    if let Some(n) = n {
                        attrs.push((gimli::DW_AT_name, name(n)));
                    }
                    match def {
                        None => attrs.push((gimli::DW_AT_declaration, AttributeValue::Flag(true))),
                        Some((size, fields)) => {
                            attrs.push((gimli::DW_AT_byte_size, AttributeValue::Udata(*size)));
                            for f in fields {
                                let mut a = Vec::new();
                                if let Some(n) = &f.name {
                                    a.push((gimli::DW_AT_name, name(n)));
                                }
                                a.push((gimli::DW_AT_type, r(uid, f.ty)));
                                match f.bits {
                                    None => a.push((
                                        gimli::DW_AT_data_member_location,
                                        AttributeValue::Udata(f.offset),
                                    )),
                                    Some((bit, width)) if self.legacy_bitfields => {
                                        // DWARF 2/3: storage unit of the member type's size,
                                        // bit_offset counted from its most significant bit.
                                        let unit_bytes = self.size_of(f.ty);
                                        let unit_bits = unit_bytes * 8;
                                        let start = (bit / unit_bits) * unit_bytes;
                                        let within = bit - start * 8;
                                        let bo = if big {
                                            within
                                        } else {
                                            unit_bits - within - width
                                        };
                                        a.push((
                                            gimli::DW_AT_byte_size,
                                            AttributeValue::Udata(unit_bytes),
                                        ));
                                        a.push((
                                            gimli::DW_AT_bit_size,
                                            AttributeValue::Udata(width),
                                        ));
                                        a.push((
                                            gimli::DW_AT_bit_offset,
                                            AttributeValue::Udata(bo),
                                        ));
                                        a.push((
                                            gimli::DW_AT_data_member_location,
                                            AttributeValue::Udata(start),
                                        ));
                                    }
                                    Some((bit, width)) => {
                                        a.push((
                                            gimli::DW_AT_bit_size,
                                            AttributeValue::Udata(width),
                                        ));
                                        a.push((
                                            gimli::DW_AT_data_bit_offset,
                                            AttributeValue::Udata(bit),
                                        ));
                                    }
                                }
                                children.push((gimli::DW_TAG_member, a));
                            }
                        }
                    }
                }
            }
            let unit = dwarf.units.get_mut(uid);
            for (at, v) in attrs {
                unit.get_mut(eid).set(at, v);
            }
            for (tag, a) in children {
                let c = unit.add(eid, tag);
                for (at, v) in a {
                    unit.get_mut(c).set(at, v);
                }
            }
        }
        for v in &self.vars {
            let uid = unit_ids[v.unit];
            if v.split {
                let first = unit_ids[0];
                let decl = {
                    let u = dwarf.units.get_mut(first);
                    let root = u.root();
                    let d = u.add(root, gimli::DW_TAG_variable);
                    u.get_mut(d).set(gimli::DW_AT_name, name(&v.name));
                    u.get_mut(d).set(gimli::DW_AT_type, r(first, v.ty));
                    u.get_mut(d)
                        .set(gimli::DW_AT_declaration, AttributeValue::Flag(true));
                    d
                };
                let u = dwarf.units.get_mut(uid);
                let root = u.root();
                let d = u.add(root, gimli::DW_TAG_variable);
                let spec = if uid == first {
                    AttributeValue::UnitRef(decl)
                } else {
                    AttributeValue::DebugInfoRef(DebugInfoRef::Entry(first, decl))
                };
                u.get_mut(d).set(gimli::DW_AT_specification, spec);
            } else {
                let ty = r(uid, v.ty);
                let u = dwarf.units.get_mut(uid);
                let root = u.root();
                let d = u.add(root, gimli::DW_TAG_variable);
                u.get_mut(d).set(gimli::DW_AT_name, name(&v.name));
                u.get_mut(d).set(gimli::DW_AT_type, ty);
            }
        }
        let mut sections = Sections::new(EndianVec::new(gimli::LittleEndian));
        dwarf.write(&mut sections).expect("gimli::write failed");
        let mut out = Vec::new();
        sections
            .for_each(|id, data| -> Result<(), ()> {
                if !data.slice().is_empty() {
                    out.push((id.name(), data.slice().to_vec()));
                }
                Ok(())
            })
            .ok();
        out
    }

    fn size_of(&self, ty: Ty) -> u64 {
        match &self.nodes[ty.0].0 {
            Node::Base { size, .. } | Node::Enum { size, .. } => *size,
            Node::Pointer(_) => 8,
            Node::Typedef(_, Some(t)) | Node::Const(Some(t)) | Node::Volatile(Some(t)) => {
                self.size_of(*t)
            }
            Node::Aggregate {
                def: Some((s, _)), ..
            } => *s,
            Node::Array(e, dims) => {
                dims.iter().map(|d| d.unwrap_or(0)).product::<u64>() * self.size_of(*e)
            }
            _ => 0,
        }
    }

    /// The ELF image.
    pub fn build(&self) -> Vec<u8> {
        use object::write::{Object, Symbol, SymbolSection};
        use object::{
            Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind,
            SymbolScope,
        };
        let arch = match self.machine {
            Machine::X86_64 => Architecture::X86_64,
            Machine::Aarch64 => Architecture::Aarch64,
        };
        let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
        // Sections whose headers get patched afterwards: (name, sh_addr, extra sh_flags).
        let mut patches: Vec<(String, u64, u64)> = Vec::new();
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        obj.set_section_data(text, vec![0xcc; 16], 16);
        patches.push((".text".into(), 0xffff_ffff_8100_0000, 0));
        let data = obj.add_section(Vec::new(), b".data".to_vec(), SectionKind::Data);
        obj.set_section_data(data, vec![0u8; 16], 16);
        patches.push((".data".into(), 0xffff_ffff_8200_0000, 0));
        let mut rodata_sec = None;
        if !self.rodata.is_empty() {
            let start = self.rodata.iter().map(|(a, _)| *a).min().unwrap();
            let end = self
                .rodata
                .iter()
                .map(|(a, b)| a + b.len() as u64)
                .max()
                .unwrap();
            let mut bytes = vec![0u8; (end - start) as usize];
            for (a, b) in &self.rodata {
                let o = (a - start) as usize;
                bytes[o..o + b.len()].copy_from_slice(b);
            }
            let id = obj.add_section(Vec::new(), b".rodata".to_vec(), SectionKind::ReadOnlyData);
            obj.set_section_data(id, bytes, 1);
            patches.push((".rodata".into(), start, 0));
            rodata_sec = Some((id, start, end));
        }
        if let Some(bid) = &self.build_id {
            let mut note = Vec::new();
            note.extend_from_slice(&4u32.to_le_bytes());
            note.extend_from_slice(&(bid.len() as u32).to_le_bytes());
            note.extend_from_slice(&3u32.to_le_bytes()); // NT_GNU_BUILD_ID
            note.extend_from_slice(b"GNU\0");
            note.extend_from_slice(bid);
            while note.len() % 4 != 0 {
                note.push(0);
            }
            let id = obj.add_section(
                Vec::new(),
                b".note.gnu.build-id".to_vec(),
                SectionKind::Note,
            );
            obj.set_section_data(id, note, 4);
        }
        for (name, bytes) in self.dwarf() {
            let (sec_name, payload, flags) = match self.compression {
                Compression::None => (name.to_string(), bytes, 0),
                Compression::Zlib => {
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(&bytes).unwrap();
                    let mut p = Vec::new();
                    p.extend_from_slice(&1u32.to_le_bytes()); // ELFCOMPRESS_ZLIB
                    p.extend_from_slice(&0u32.to_le_bytes());
                    p.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    p.extend_from_slice(&1u64.to_le_bytes());
                    p.extend_from_slice(&z.finish().unwrap());
                    (name.to_string(), p, 1u64 << 11) // SHF_COMPRESSED
                }
                Compression::Gnu => {
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(&bytes).unwrap();
                    let mut p = b"ZLIB".to_vec();
                    p.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
                    p.extend_from_slice(&z.finish().unwrap());
                    (name.replacen(".debug_", ".zdebug_", 1), p, 0)
                }
            };
            let id = obj.add_section(
                Vec::new(),
                sec_name.clone().into_bytes(),
                SectionKind::Debug,
            );
            obj.set_section_data(id, payload, 1);
            if flags != 0 {
                patches.push((sec_name, 0, flags));
            }
        }
        for (name, addr, size, flags) in &self.symbols {
            let is_text = flags.text;
            let section = if flags.absolute {
                SymbolSection::Absolute
            } else if is_text {
                SymbolSection::Section(text)
            } else if let Some((id, s, e)) = rodata_sec.filter(|(_, s, e)| addr >= s && addr < e) {
                let _ = (s, e);
                SymbolSection::Section(id)
            } else {
                SymbolSection::Section(data)
            };
            obj.add_symbol(Symbol {
                name: name.clone().into_bytes(),
                value: *addr,
                size: *size,
                kind: if is_text {
                    SymbolKind::Text
                } else {
                    SymbolKind::Data
                },
                scope: if flags.global {
                    SymbolScope::Linkage
                } else {
                    SymbolScope::Compilation
                },
                weak: false,
                section,
                flags: SymbolFlags::None,
            });
        }
        let mut elf = obj.write().expect("object write failed");
        patch_elf(&mut elf, &patches);
        elf
    }

    /// Writes the ELF to `dir/vmlinux` (or another name) and returns the path.
    pub fn write_to(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, self.build()).unwrap();
        p
    }
}

/// Makes the relocatable object `object::write` produces look like a linked vmlinux:
/// `ET_EXEC`, allocated sections at kernel addresses, compressed-section flags.
fn patch_elf(elf: &mut [u8], patches: &[(String, u64, u64)]) {
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
    let shoff = u64_at(elf, 0x28) as usize;
    let shnum = u16_at(elf, 0x3c) as usize;
    let shstrndx = u16_at(elf, 0x3e) as usize;
    let strtab_off = u64_at(elf, shoff + shstrndx * 64 + 0x18) as usize;
    for i in 0..shnum {
        let h = shoff + i * 64;
        let name_off = strtab_off + u32_at(elf, h) as usize;
        let end = elf[name_off..].iter().position(|&c| c == 0).unwrap();
        let name = String::from_utf8(elf[name_off..name_off + end].to_vec()).unwrap();
        for (n, addr, flags) in patches {
            if *n == name {
                elf[h + 0x10..h + 0x18].copy_from_slice(&addr.to_le_bytes());
                let f = u64_at(elf, h + 8) | flags;
                elf[h + 8..h + 16].copy_from_slice(&f.to_le_bytes());
            }
        }
    }
}

/// Which "kernel version" [`sample_kernel`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelVersion {
    /// Before Linux 5.14: `long state` at offset 16, `prio` at 120.
    Old,
    /// Linux 5.14 and later: `unsigned int __state` at offset 24, `prio` moved to 108.
    New,
}

/// Link-time addresses of the sample kernel's globals.
pub mod addrs {
    pub const INIT_UTS_NS: u64 = 0xffff_ffff_8260_0000;
    pub const INIT_TASK: u64 = 0xffff_ffff_8261_0000;
    pub const NR_CPU_IDS: u64 = 0xffff_ffff_8262_0000;
    pub const CPU_ONLINE_MASK: u64 = 0xffff_ffff_8262_0100;
    pub const CPU_POSSIBLE_MASK: u64 = 0xffff_ffff_8262_0200;
    pub const CPU_PRESENT_MASK: u64 = 0xffff_ffff_8262_0300;
    pub const PER_CPU_OFFSET: u64 = 0xffff_ffff_8262_1000;
    pub const JIFFIES: u64 = 0xffff_ffff_8262_2000;
    pub const LINUX_BANNER: u64 = 0xffff_ffff_8270_0000;
    /// Per-CPU variables live in a zero-based section on x86_64.
    pub const RUNQUEUES: u64 = 0x2_c000;
    pub const NR_CPUS: u64 = 64;
}

/// The layout the sample kernel's types have, as the builder laid them out: the oracle tests
/// compare the reader against.
#[derive(Clone, Debug)]
pub struct SampleLayout {
    pub task_struct_size: u64,
    pub state_name: &'static str,
    pub state_offset: u64,
    pub state_size: u64,
    pub prio_offset: u64,
    pub pid_offset: u64,
    pub comm_offset: u64,
    pub tasks_offset: u64,
    /// `se` (struct sched_entity) and inside it `run_node` (rb_node) and `vruntime`.
    pub se_offset: u64,
    pub se_run_node_offset: u64,
    pub se_vruntime_offset: u64,
    /// Bitfields of task_struct: (name, absolute bit offset, width).
    pub bitfields: Vec<(&'static str, u64, u64)>,
    /// Offset of `flags_anon` inside an anonymous union member.
    pub anon_member_offset: u64,
    pub rq_size: u64,
    pub rq_nr_running_offset: u64,
    pub rq_cfs_offset: u64,
    pub cfs_tasks_timeline_offset: u64,
    pub cfs_nr_running_offset: u64,
    pub uts_name_offset: u64,
    pub utsname_release_offset: u64,
}

/// Handles of the kernel's generic containers, from [`VmlinuxBuilder::container_types`].
#[derive(Clone, Copy, Debug)]
pub struct ContainerTypes {
    pub list_head: Ty,
    pub hlist_node: Ty,
    pub hlist_head: Ty,
    pub rb_node: Ty,
    pub rb_root: Ty,
    pub rb_root_cached: Ty,
}

impl VmlinuxBuilder {
    /// Declares the kernel's generic containers, whose layout has not changed since 2.6 on
    /// 64-bit machines (include/linux/types.h, include/linux/rbtree_types.h): `list_head`,
    /// `hlist_node`/`hlist_head`, `rb_node`, `rb_root`, `rb_root_cached`. `ulong` is the
    /// builder's `long unsigned int`.
    pub fn container_types(&mut self, ulong: Ty) -> ContainerTypes {
        let list_head = self.forward("list_head");
        let lhp = self.pointer(Some(list_head));
        self.define(
            list_head,
            16,
            vec![field("next", lhp, 0), field("prev", lhp, 8)],
        );
        let hlist_node = self.forward("hlist_node");
        let hnp = self.pointer(Some(hlist_node));
        let hnpp = self.pointer(Some(hnp));
        self.define(
            hlist_node,
            16,
            vec![field("next", hnp, 0), field("pprev", hnpp, 8)],
        );
        let hlist_head = self.structure(Some("hlist_head"), 8, vec![field("first", hnp, 0)]);
        let rb_node = self.forward("rb_node");
        let rbp = self.pointer(Some(rb_node));
        self.define(
            rb_node,
            24,
            vec![
                field("__rb_parent_color", ulong, 0),
                field("rb_right", rbp, 8),
                field("rb_left", rbp, 16),
            ],
        );
        let rb_root = self.structure(Some("rb_root"), 8, vec![field("rb_node", rbp, 0)]);
        let rb_root_cached = self.structure(
            Some("rb_root_cached"),
            16,
            vec![field("rb_root", rb_root, 0), field("rb_leftmost", rbp, 8)],
        );
        ContainerTypes {
            list_head,
            hlist_node,
            hlist_head,
            rb_node,
            rb_root,
            rb_root_cached,
        }
    }
}

/// A small kernel's types and globals: list_head, rb_node/rb_root(_cached), cpumask,
/// new_utsname/uts_namespace, sched_entity, task_struct (old or new layout), cfs_rq, rq, an enum
/// `pid_type`, and the globals init_uts_ns, init_task, nr_cpu_ids, the three cpumasks,
/// __per_cpu_offset, jiffies (volatile), runqueues (per-CPU) and linux_banner.
pub fn sample_kernel(version: KernelVersion) -> (VmlinuxBuilder, SampleLayout) {
    let mut b = VmlinuxBuilder::new();
    let int = b.base("int", 4, true);
    let uint = b.base("unsigned int", 4, false);
    let long = b.base("long int", 8, true);
    let ulong = b.base("long unsigned int", 8, false);
    let ull = b.base("long long unsigned int", 8, false);
    let u64t = b.typedef("u64", ull);
    let chr = b.char_type();
    let pid_t = b.typedef("pid_t", int);

    let ContainerTypes {
        list_head: lh,
        rb_node: rbn,
        rb_root_cached: rbrc,
        ..
    } = b.container_types(ulong);
    let bits = b.array(ulong, Some(1));
    let cpumask = b.structure(Some("cpumask"), 8, vec![field("bits", bits, 0)]);
    b.typedef("cpumask_t", cpumask);

    let c65 = b.array(chr, Some(65));
    let uts = b.structure(
        Some("new_utsname"),
        390,
        vec![
            field("sysname", c65, 0),
            field("nodename", c65, 65),
            field("release", c65, 130),
            field("version", c65, 195),
            field("machine", c65, 260),
            field("domainname", c65, 325),
        ],
    );
    let uts_ns = b.structure(Some("uts_namespace"), 400, vec![field("name", uts, 4)]);

    let pid_type = b.enumeration(
        Some("pid_type"),
        4,
        &[
            ("PIDTYPE_PID", 0),
            ("PIDTYPE_TGID", 1),
            ("PIDTYPE_PGID", 2),
            ("PIDTYPE_SID", 3),
            ("PIDTYPE_MAX", 4),
        ],
    );
    let se = b.structure(
        Some("sched_entity"),
        64,
        vec![
            field("run_node", rbn, 0),
            field("group_node", lh, 24),
            field("on_rq", uint, 40),
            field("vruntime", u64t, 48),
        ],
    );
    let c16 = b.array(chr, Some(16));
    let ts = b.forward("task_struct");
    let tsp = b.pointer(Some(ts));
    // An anonymous union holding a flags word, as several kernel structs do.
    let anon_u = b.union(
        None,
        8,
        vec![field("flags_anon", ulong, 0), field("raw", long, 0)],
    );
    let (state_name, state_off, state_ty, state_size, prio_off) = match version {
        KernelVersion::Old => ("state", 16, long, 8, 120),
        KernelVersion::New => ("__state", 24, uint, 4, 108),
    };
    let mut fields = vec![
        field(state_name, state_ty, state_off),
        field("prio", int, prio_off),
        field("se", se, 128),
        field("tasks", lh, 192),
        field("pid", pid_t, 208),
        field("tgid", pid_t, 212),
        // bitfields: unsigned sched_reset_on_fork:1, sched_contributes_to_load:1, in_iowait:1
        bitfield("sched_reset_on_fork", uint, 216 * 8, 1),
        bitfield("sched_contributes_to_load", uint, 216 * 8 + 1, 1),
        bitfield("in_iowait", uint, 216 * 8 + 2, 3),
        bitfield("signed_bits", int, 216 * 8 + 5, 4),
        field("pid_kind", pid_type, 220),
        field("comm", c16, 224),
        field("parent", tsp, 240),
        anon(anon_u, 248),
        field("children", lh, 256),
    ];
    if version == KernelVersion::Old {
        fields.push(field("cpu", int, 272));
    } else {
        fields.push(field("cpu", int, 100));
    }
    b.define(ts, 288, fields);

    let sep = b.pointer(Some(se));
    let cfs = b.structure(
        Some("cfs_rq"),
        48,
        vec![
            field("load_weight", ulong, 0),
            field("nr_running", uint, 8),
            field("min_vruntime", u64t, 16),
            field("tasks_timeline", rbrc, 24),
            field("curr", sep, 40),
        ],
    );
    let rq = b.structure(
        Some("rq"),
        128,
        vec![
            field("nr_running", uint, 0),
            field("nr_switches", u64t, 8),
            field("cfs", cfs, 16),
            field("curr", tsp, 64),
            field("cpu", int, 72),
            field("clock", u64t, 80),
        ],
    );
    let vol_ulong = b.volatile(ulong);
    let upc = b.array(ulong, Some(addrs::NR_CPUS));
    b.new_unit();
    b.variable("init_uts_ns", uts_ns, addrs::INIT_UTS_NS, 400);
    b.variable_split("init_task", ts, addrs::INIT_TASK, 288);
    b.variable("nr_cpu_ids", uint, addrs::NR_CPU_IDS, 4);
    b.variable("__cpu_online_mask", cpumask, addrs::CPU_ONLINE_MASK, 8);
    b.variable("__cpu_possible_mask", cpumask, addrs::CPU_POSSIBLE_MASK, 8);
    b.variable("__cpu_present_mask", cpumask, addrs::CPU_PRESENT_MASK, 8);
    b.variable(
        "__per_cpu_offset",
        upc,
        addrs::PER_CPU_OFFSET,
        8 * addrs::NR_CPUS,
    );
    b.variable("jiffies", vol_ulong, addrs::JIFFIES, 8);
    b.variable("runqueues", rq, addrs::RUNQUEUES, 128);
    let bytes = b.array(chr, None);
    b.variable("linux_banner", bytes, addrs::LINUX_BANNER, 0);
    b.symbols.retain(|s| s.0 != "linux_banner");
    b.symbol("schedule", 0xffff_ffff_8100_1000, 0x200, true);
    let layout = SampleLayout {
        task_struct_size: 288,
        state_name,
        state_offset: state_off,
        state_size,
        prio_offset: prio_off,
        pid_offset: 208,
        comm_offset: 224,
        tasks_offset: 192,
        se_offset: 128,
        se_run_node_offset: 0,
        se_vruntime_offset: 48,
        bitfields: vec![
            ("sched_reset_on_fork", 216 * 8, 1),
            ("sched_contributes_to_load", 216 * 8 + 1, 1),
            ("in_iowait", 216 * 8 + 2, 3),
            ("signed_bits", 216 * 8 + 5, 4),
        ],
        anon_member_offset: 248,
        rq_size: 128,
        rq_nr_running_offset: 0,
        rq_cfs_offset: 16,
        cfs_tasks_timeline_offset: 24,
        cfs_nr_running_offset: 8,
        uts_name_offset: 4,
        utsname_release_offset: 130,
    };
    (b, layout)
}
