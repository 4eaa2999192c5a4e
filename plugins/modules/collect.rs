//! Reads [`Modules`] from the kernel's `modules` list through [`KernelAccess`].
//!
//! Every field is found by probing the dump's types, not by version:
//!
//! | what | 6.4+ | 4.5 – 6.3 | before 4.5 |
//! |---|---|---|---|
//! | regions | `mem[MOD_TEXT ..]` (`struct module_memory {base, size, ..}`) | `core_layout`, `init_layout` (+ `data_layout`) | `core_size`, `init_size` |
//! | text base | `mem[MOD_TEXT].base` | `core_layout.base` | `module_core` |
//!
//! `/proc/modules` sums every region (`module_total_size()`; init regions are zeroed once
//! `do_init_module()` has run), `/sys/module/*/coresize` (lsmod's size) only the core ones: the
//! text plus the core data regions on 6.4+, `core_layout.size` before. The reference count is
//! `refcnt` minus `MODULE_REF_BASE` (1) (`module_refcount()`, kernel/module/main.c, since 4.0's
//! atomic `refcnt`); users are the `struct module_use` entries on `source_list`, each naming
//! its `source` module. Both exist only with `CONFIG_MODULE_UNLOAD`. Taint letters are those of
//! `module_flags_taint()`: every `taint_flags[]` entry marked `module` whose bit is set in the
//! module's `taints`, in table order.

use super::record::{Layout, Module, ModuleState, Modules, Unreadable};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};
use crate::plugins::kernel_info::collect::taint_table;
use crate::plugins::kernel_info::taint::TaintFlagDef;

/// `MODULE_NAME_LEN` is 64 minus a pointer: 56 on 64-bit kernels, 60 on 32-bit ones.
const NAME_MAX: usize = 64;
/// `version` and `srcversion` are short strings (`srcversion` is 24 hex digits).
const VERSION_MAX: usize = 128;
/// `MODULE_REF_BASE` (kernel/module/main.c).
const MODULE_REF_BASE: i64 = 1;

pub struct Collected {
    /// `None` when the kernel has no `modules` list (built without `CONFIG_MODULES`).
    pub modules: Option<Modules>,
    pub errors: Vec<AccessError>,
}

/// The state enumerators, by name.
struct Enums {
    live: Option<i64>,
    coming: Option<i64>,
    going: Option<i64>,
    unformed: Option<i64>,
}

impl Enums {
    fn read<K: KernelAccess>(k: &K) -> AResult<Enums> {
        Ok(Enums {
            live: k.enumerator("MODULE_STATE_LIVE")?,
            coming: k.enumerator("MODULE_STATE_COMING")?,
            going: k.enumerator("MODULE_STATE_GOING")?,
            unformed: k.enumerator("MODULE_STATE_UNFORMED")?,
        })
    }

    fn state(&self, v: i64) -> ModuleState {
        if Some(v) == self.live {
            ModuleState::Live
        } else if Some(v) == self.coming {
            ModuleState::Loading
        } else if Some(v) == self.going {
            ModuleState::Unloading
        } else if Some(v) == self.unformed {
            ModuleState::Unformed
        } else {
            ModuleState::Unknown(v)
        }
    }
}

/// Walks `modules`; a module that cannot be read whole is listed as unreadable, a broken list
/// keeps what is reachable on both sides of the break.
pub fn collect<K: KernelAccess>(k: &K) -> Collected {
    let mut errors = Vec::new();
    let head = match k.var("modules") {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Collected {
                modules: None,
                errors,
            };
        }
        Err(e) => {
            errors.push(e);
            return Collected {
                modules: None,
                errors,
            };
        }
    };
    let enums = match Enums::read(k) {
        Ok(e) => e,
        Err(e) => {
            errors.push(e);
            return Collected {
                modules: None,
                errors,
            };
        }
    };
    let (flags, from_kernel) = taint_table(k);
    let (entries, list_error) = match k.list_salvaged(&head, "struct module", "list") {
        Ok((v, broke)) => (v, broke),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut out = Modules {
        modules: Vec::new(),
        unload: false,
        layout: None,
        taint_table: if from_kernel { "kernel" } else { "documented" },
        unreadable: Vec::new(),
        list_error: list_error.as_ref().map(|e| e.to_string()),
    };
    if let Some(e) = list_error {
        errors.push(e);
    }
    let mut mem_types = None;
    for m in &entries {
        match read_module(k, m, &enums, &mut mem_types, &flags) {
            Ok((md, layout, unload)) => {
                out.layout = Some(layout);
                out.unload |= unload;
                out.modules.push(md);
            }
            Err(e) => {
                let name = k
                    .member(m, "name")
                    .ok()
                    .flatten()
                    .and_then(|n| k.cstr(&n, NAME_MAX).ok());
                out.unreadable.push(Unreadable {
                    address: k.address(m),
                    name,
                    code: e.code.to_string(),
                    error: e.to_string(),
                });
                errors.push(e);
            }
        }
    }
    Collected {
        modules: Some(out),
        errors,
    }
}

/// `MOD_TEXT` and the init kinds (`MOD_INIT_*`) of 6.4+'s `enum mod_mem_type`, asked only of a
/// kernel whose `struct module` has `mem[]` (an enumerator the debug info lacks is slow to rule
/// out).
struct MemTypes {
    text: i64,
    init: Vec<i64>,
}

impl MemTypes {
    fn read<K: KernelAccess>(k: &K) -> AResult<MemTypes> {
        let text = k
            .enumerator_in("mod_mem_type", "MOD_TEXT")?
            .ok_or_else(|| {
                AccessError::new("no-enumerator", "struct module has mem[] but no MOD_TEXT")
            })?;
        let mut init = Vec::new();
        for n in ["MOD_INIT_TEXT", "MOD_INIT_DATA", "MOD_INIT_RODATA"] {
            if let Some(v) = k.enumerator_in("mod_mem_type", n)? {
                init.push(v);
            }
        }
        Ok(MemTypes { text, init })
    }
}

/// The sizes (all regions, core regions) and the text base.
fn regions<K: KernelAccess>(
    k: &K,
    m: &K::Obj,
    mem_types: &mut Option<MemTypes>,
) -> AResult<(u64, u64, u64, Layout)> {
    let int = |path: &str| -> AResult<u64> {
        k.int_at(m, path)?
            .map(|v| v as u64)
            .ok_or_else(|| AccessError::new("no-member", format!("struct module has no {path}")))
    };
    if let Some(mem) = k.member(m, "mem")? {
        let n = k.array_len(&mem)?.unwrap_or(0);
        if mem_types.is_none() {
            *mem_types = Some(MemTypes::read(k)?);
        }
        let types = mem_types.as_ref().expect("just read");
        let (mut total, mut core, mut base) = (0u64, 0u64, None);
        for i in 0..n.min(16) {
            let r = k.index(&mem, i)?;
            let size = k.int_at(&r, "size")?.unwrap_or(0) as u64 & 0xffff_ffff;
            total = total.wrapping_add(size);
            if !types.init.contains(&(i as i64)) {
                core = core.wrapping_add(size);
            }
            if i as i64 == types.text {
                base = k.int_at(&r, "base")?.map(|b| b as u64);
            }
        }
        let base = base.ok_or_else(|| AccessError::new("no-member", "mem[MOD_TEXT].base"))?;
        return Ok((total, core, base, Layout::Mem));
    }
    if k.member(m, "core_layout")?.is_some() {
        let core = int("core_layout.size")? & 0xffff_ffff;
        let init = int("init_layout.size")? & 0xffff_ffff;
        // only where the architecture keeps data apart (CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC)
        let data = k.int_at(m, "data_layout.size")?.unwrap_or(0) as u64 & 0xffff_ffff;
        let base = int("core_layout.base")?;
        return Ok((core + init + data, core, base, Layout::CoreLayout));
    }
    let core = int("core_size")? & 0xffff_ffff;
    let init = int("init_size")? & 0xffff_ffff;
    let base = int("module_core")?;
    Ok((core + init, core, base, Layout::CoreSize))
}

fn read_module<K: KernelAccess>(
    k: &K,
    m: &K::Obj,
    enums: &Enums,
    mem_types: &mut Option<MemTypes>,
    flags: &[TaintFlagDef],
) -> AResult<(Module, Layout, bool)> {
    let name = match k.member(m, "name")? {
        Some(n) => k.cstr(&n, NAME_MAX)?,
        None => return Err(AccessError::new("no-member", "struct module has no name")),
    };
    let state = enums.state(k.int_at(m, "state")?.unwrap_or(-1));
    let (size, core_size, base, layout) = regions(k, m, mem_types)?;
    // CONFIG_MODULE_UNLOAD: source_list and refcnt exist together (4.0+)
    let unload = k.member(m, "source_list")?.is_some();
    let refcount = match k.int_at(m, "refcnt.counter")? {
        Some(c) if unload => Some(c - MODULE_REF_BASE),
        _ => None,
    };
    let mut users = Vec::new();
    if let Some(src) = k.member(m, "source_list")? {
        for u in k.list(&src, "struct module_use", "source_list")? {
            match k.deref_at(&u, "source")? {
                Some(s) => match k.member(&s, "name")? {
                    Some(n) => users.push(k.cstr(&n, NAME_MAX)?),
                    None => return Err(AccessError::new("no-member", "module_use.source->name")),
                },
                None => {
                    return Err(AccessError::new(
                        "corrupt",
                        format!("module_use at {:#x} has no source", k.address(&u)),
                    ));
                }
            }
        }
    }
    let permanent =
        unload && k.int_at(m, "init")?.unwrap_or(0) != 0 && k.int_at(m, "exit")?.unwrap_or(0) == 0;
    let taints = k.int_at(m, "taints")?.unwrap_or(0) as u64;
    let taint_letters = flags
        .iter()
        .enumerate()
        .filter(|(i, f)| f.module && *i < 64 && taints & (1u64 << i) != 0)
        .map(|(_, f)| f.c_true)
        .collect();
    let string = |path: &str| -> AResult<Option<Vec<u8>>> {
        match k.member(m, path)? {
            Some(p) if k.int(&p)? != 0 => k.cstr(&p, VERSION_MAX).map(Some),
            _ => Ok(None),
        }
    };
    Ok((
        Module {
            address: k.address(m),
            name,
            state,
            size,
            core_size,
            refcount,
            users,
            permanent,
            base,
            taints,
            taint_letters,
            version: string("version")?,
            srcversion: string("srcversion")?,
        },
        layout,
        unload,
    ))
}
