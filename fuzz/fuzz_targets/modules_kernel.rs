//! The kernel the `modules` target reads the module list from: the production kernel view
//! (`Kernel`, `KView`) over one flat region of memory made of the input, with a fixed set of
//! types served by a small [`TypeSource`] of this file's own.
//!
//! Shared with its seed writer and check (`tests/plugin_modules.rs` includes this file), so the
//! seeds and the target agree on the layout below; the offsets are this file's record, the
//! test's oracle.
//!
//! Memory: virtual address [`VBASE`] + i is byte i of the memory, zero-padded to whole pages;
//! everything else is not in the dump. `modules` (a `list_head`) is at [`MODULES`], `taint_flags[19]` (3 bytes each) at
//! [`TAINT_FLAGS`]; the rest is the input's to fill. The shape (the mode byte) picks the 6.4+
//! `struct module` with `mem[MOD_MEM_NUM_TYPES]` or the 4.5 – 6.3 one with `core_layout` and
//! `init_layout` (bit 0), and a kernel with or without `CONFIG_MODULE_UNLOAD` (bit 1: without).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use vmcore_report::addr::{Arch, Endian, PhysAddr, VirtAddr};
use vmcore_report::arch::{AddressSpace, TranslateError, Translation, Translator};
use vmcore_report::debuginfo::symbols::{SymKind, SymbolTable};
use vmcore_report::debuginfo::{
    BaseEncoding, DebugInfoError, Member, Type, TypeId, TypeKind, TypeSource,
};
use vmcore_report::dump::{DumpError, DumpFormat, DumpInfo, PhysMem, PhysRange};
use vmcore_report::kernel::Kernel;

/// Where the memory starts (the module area of x86_64).
pub const VBASE: u64 = 0xffff_ffff_c000_0000;
/// `LIST_HEAD(modules)`.
pub const MODULES: u64 = VBASE;
/// `const struct taint_flag taint_flags[TAINT_FLAGS_COUNT]`.
pub const TAINT_FLAGS: u64 = VBASE + 16;
pub const TAINT_COUNT: u64 = 19;
/// The first byte no variable uses.
pub const FREE: u64 = VBASE + 128;

/// `struct module`'s members (both shapes share every offset but the regions').
pub mod module {
    pub const STATE: u64 = 0;
    pub const LIST: u64 = 8;
    pub const NAME: u64 = 24;
    pub const NAME_LEN: u64 = 56;
    pub const VERSION: u64 = 80;
    pub const SRCVERSION: u64 = 88;
    /// 6.4+: `struct module_memory mem[7]`, 16 bytes each (`base`, then `size`).
    pub const MEM: u64 = 96;
    pub const MEM_COUNT: u64 = 7;
    /// 4.5 – 6.3: `struct module_layout core_layout, init_layout` (`base`, then `size`).
    pub const CORE_LAYOUT: u64 = 96;
    pub const INIT_LAYOUT: u64 = 112;
    pub const TAINTS: u64 = 208;
    pub const SOURCE_LIST: u64 = 216;
    pub const TARGET_LIST: u64 = 232;
    pub const INIT: u64 = 248;
    pub const EXIT: u64 = 256;
    pub const REFCNT: u64 = 264;
    pub const SIZE: u64 = 272;
}

/// `struct module_memory` and `struct module_layout`: a base pointer, then a 32-bit size.
pub mod region {
    pub const BASE: u64 = 0;
    pub const SIZE_FIELD: u64 = 8;
    pub const SIZE: u64 = 16;
}

/// `struct module_use`.
pub mod module_use {
    pub const SOURCE_LIST: u64 = 0;
    pub const TARGET_LIST: u64 = 16;
    pub const SOURCE: u64 = 32;
    pub const TARGET: u64 = 40;
    pub const SIZE: u64 = 48;
}

/// `enum module_state`.
pub const MODULE_STATES: [(&str, i64); 4] = [
    ("MODULE_STATE_LIVE", 0),
    ("MODULE_STATE_COMING", 1),
    ("MODULE_STATE_GOING", 2),
    ("MODULE_STATE_UNFORMED", 3),
];

/// `enum mod_mem_type` (6.4+, include/linux/module.h).
pub const MOD_MEM_TYPES: [(&str, i64); 7] = [
    ("MOD_TEXT", 0),
    ("MOD_DATA", 1),
    ("MOD_RODATA", 2),
    ("MOD_RO_AFTER_INIT", 3),
    ("MOD_INIT_TEXT", 4),
    ("MOD_INIT_DATA", 5),
    ("MOD_INIT_RODATA", 6),
];

/// What the mode byte selects.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// 6.4+ `mem[]` rather than `core_layout`.
    pub mem: bool,
    /// `CONFIG_MODULE_UNLOAD`: `source_list`, `target_list` and `refcnt` exist.
    pub unload: bool,
}

impl Shape {
    pub fn from_mode(mode: u8) -> Shape {
        Shape {
            mem: mode & 1 == 0,
            unload: mode & 2 == 0,
        }
    }
    pub fn mode(self) -> u8 {
        u8::from(!self.mem) | u8::from(!self.unload) << 1
    }
}

#[derive(Default)]
struct Table {
    types: Vec<Arc<Type>>,
    by_name: HashMap<String, TypeId>,
    vars: HashMap<String, TypeId>,
    enumerators: HashMap<String, i64>,
}

impl Table {
    fn add(
        &mut self,
        key: Option<String>,
        name: Option<&str>,
        size: Option<u64>,
        kind: TypeKind,
    ) -> TypeId {
        let id = TypeId(self.types.len() as u64);
        self.types.push(Arc::new(Type {
            name: name.map(str::to_string),
            size,
            kind,
        }));
        if let Some(k) = key {
            self.by_name.insert(k, id);
        }
        id
    }
    fn base(&mut self, name: &str, size: u64, encoding: BaseEncoding) -> TypeId {
        self.add(
            Some(name.into()),
            Some(name),
            Some(size),
            TypeKind::Base { encoding },
        )
    }
    fn ptr(&mut self, target: Option<TypeId>) -> TypeId {
        self.add(None, None, Some(8), TypeKind::Pointer { target })
    }
    fn array(&mut self, element: TypeId, count: u64, element_size: u64) -> TypeId {
        let kind = TypeKind::Array {
            element,
            count: Some(count),
        };
        self.add(None, None, Some(count * element_size), kind)
    }
    /// Reserves an id for a struct defined later (pointers to it come first).
    fn reserve(&mut self) -> TypeId {
        self.add(None, None, None, TypeKind::Void)
    }
    fn define(
        &mut self,
        id: TypeId,
        name: Option<&str>,
        size: u64,
        members: &[(&str, TypeId, u64)],
    ) {
        let members = members
            .iter()
            .map(|&(n, ty, off)| Member {
                name: Some(n.to_string()),
                ty,
                bit_offset: off * 8,
                bit_size: None,
            })
            .collect();
        self.types[id.0 as usize] = Arc::new(Type {
            name: name.map(str::to_string),
            size: Some(size),
            kind: TypeKind::Struct {
                members,
                declaration: false,
            },
        });
        if let Some(n) = name {
            self.by_name.insert(format!("struct {n}"), id);
        }
    }
    fn structure(
        &mut self,
        name: Option<&str>,
        size: u64,
        members: &[(&str, TypeId, u64)],
    ) -> TypeId {
        let id = self.reserve();
        self.define(id, name, size, members);
        id
    }
    fn enumeration(&mut self, name: &str, items: &[(&str, i64)]) -> TypeId {
        for &(n, v) in items {
            self.enumerators.insert(n.to_string(), v);
        }
        let kind = TypeKind::Enum {
            signed: false,
            enumerators: items.iter().map(|&(n, v)| (n.to_string(), v)).collect(),
        };
        self.add(Some(format!("enum {name}")), Some(name), Some(4), kind)
    }
}

/// The types of a kernel of this shape.
fn types(shape: Shape) -> Table {
    use module as m;
    let mut t = Table::default();
    t.add(None, None, None, TypeKind::Void); // id 0: void
    let ulong = t.base("long unsigned int", 8, BaseEncoding::Unsigned);
    let uint = t.base("unsigned int", 4, BaseEncoding::Unsigned);
    let int = t.base("int", 4, BaseEncoding::Signed);
    let ch = t.base("char", 1, BaseEncoding::SignedChar);
    let boolean = t.base("_Bool", 1, BaseEncoding::Bool);
    let voidp = t.ptr(None);
    let charp = t.ptr(Some(ch));
    let func = t.add(None, None, None, TypeKind::Function);
    let funcp = t.ptr(Some(func));

    let list_head = t.reserve();
    let list_p = t.ptr(Some(list_head));
    t.define(
        list_head,
        Some("list_head"),
        16,
        &[("next", list_p, 0), ("prev", list_p, 8)],
    );
    let state = t.enumeration("module_state", &MODULE_STATES);
    let counter = t.structure(None, 4, &[("counter", int, 0)]);
    let atomic = t.add(
        Some("atomic_t".into()),
        Some("atomic_t"),
        Some(4),
        TypeKind::Typedef {
            target: Some(counter),
        },
    );
    let name = t.array(ch, m::NAME_LEN, 1);

    let module = t.reserve();
    let module_p = t.ptr(Some(module));
    let mut members = vec![
        ("state", state, m::STATE),
        ("list", list_head, m::LIST),
        ("name", name, m::NAME),
        ("version", charp, m::VERSION),
        ("srcversion", charp, m::SRCVERSION),
        ("taints", ulong, m::TAINTS),
        ("init", funcp, m::INIT),
        ("exit", funcp, m::EXIT),
    ];
    if shape.mem {
        t.enumeration("mod_mem_type", &MOD_MEM_TYPES);
        let mm = t.structure(
            Some("module_memory"),
            region::SIZE,
            &[
                ("base", voidp, region::BASE),
                ("size", uint, region::SIZE_FIELD),
            ],
        );
        let arr = t.array(mm, m::MEM_COUNT, region::SIZE);
        members.push(("mem", arr, m::MEM));
    } else {
        let ml = t.structure(
            Some("module_layout"),
            region::SIZE,
            &[
                ("base", voidp, region::BASE),
                ("size", uint, region::SIZE_FIELD),
            ],
        );
        members.push(("core_layout", ml, m::CORE_LAYOUT));
        members.push(("init_layout", ml, m::INIT_LAYOUT));
    }
    if shape.unload {
        members.push(("source_list", list_head, m::SOURCE_LIST));
        members.push(("target_list", list_head, m::TARGET_LIST));
        members.push(("refcnt", atomic, m::REFCNT));
    }
    members.sort_by_key(|&(_, _, off)| off);
    t.define(module, Some("module"), m::SIZE, &members);
    t.structure(
        Some("module_use"),
        module_use::SIZE,
        &[
            ("source_list", list_head, module_use::SOURCE_LIST),
            ("target_list", list_head, module_use::TARGET_LIST),
            ("source", module_p, module_use::SOURCE),
            ("target", module_p, module_use::TARGET),
        ],
    );
    let flag = t.structure(
        Some("taint_flag"),
        3,
        &[
            ("c_true", ch, 0),
            ("c_false", ch, 1),
            ("module", boolean, 2),
        ],
    );
    let flags = t.array(flag, TAINT_COUNT, 3);
    t.vars.insert("modules".into(), list_head);
    t.vars.insert("taint_flags".into(), flags);
    t
}

struct FixedTypes(Table);

impl TypeSource for FixedTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(self.0.by_name.get(name).copied())
    }
    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.0.types.get(i))
            .cloned()
            .ok_or(DebugInfoError::BadTypeId(id))
    }
    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(self.0.vars.get(name).copied())
    }
    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        Ok(self.0.enumerators.get(name).copied())
    }
}

/// The memory: physical address i is byte i.
struct Flat {
    bytes: Vec<u8>,
    ranges: [PhysRange; 1],
}

impl PhysMem for Flat {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        let src = usize::try_from(addr.0)
            .ok()
            .and_then(|a| self.bytes.get(a..a.checked_add(buf.len())?))
            .ok_or(DumpError::NotDumped { addr })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
    fn is_dumped(&self, addr: PhysAddr) -> bool {
        addr.0 < self.bytes.len() as u64
    }
}

/// Virtual address [`VBASE`] + i is physical i.
struct Linear;

impl Translator for Linear {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn translate(&self, _mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        if va.0 < VBASE {
            return Err(TranslateError::NotMapped { va, level: 4 });
        }
        Ok(Translation {
            phys: PhysAddr(va.0 - VBASE),
            mapping_size: 4096,
        })
    }
}

/// A kernel of the shape `mode` selects whose memory is `memory`.
/// The memory is zero-padded to whole 4 KiB pages, as a dump holds them.
pub fn kernel(mode: u8, mut memory: Vec<u8>) -> Kernel {
    memory.resize(memory.len().next_multiple_of(4096), 0);
    let types = FixedTypes(types(Shape::from_mode(mode)));
    let syms = SymbolTable::from_parts(
        vec![
            ("modules".into(), MODULES, 16, SymKind::Data, true),
            (
                "taint_flags".into(),
                TAINT_FLAGS,
                TAINT_COUNT * 3,
                SymKind::Data,
                true,
            ),
        ],
        0,
    );
    let len = memory.len() as u64;
    let mem = Flat {
        bytes: memory,
        ranges: [PhysRange {
            start: PhysAddr(0),
            end: PhysAddr(len),
        }],
    };
    let info = DumpInfo {
        paths: vec![],
        file_size: len,
        format: DumpFormat::Elf {
            endian: Endian::Little,
        },
        arch: Some(Arch::X86_64),
        endian: Endian::Little,
        page_size: 4096,
        vmcoreinfo: None,
        vmcoreinfo_source: vmcore_report::dump::VmcoreinfoSource::Absent,
        cpus: vec![],
        header_utsname: None,
        header_timestamp: None,
        phys_base: None,
        dump_level: None,
        nr_cpus: None,
        health: Default::default(),
    };
    let space = AddressSpace::new(Arc::new(mem), Box::new(Linear), Endian::Little, 0);
    Kernel::new(space, Arc::new(syms), Arc::new(types), info)
}
