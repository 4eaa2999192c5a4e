//! The loaded modules' text and symbols, read from the dump, to symbolize the frames a vmlinux
//! cannot name (`trigger_write+0x20/0x30 [fixture_oops]`).
//!
//! The kernel keeps them itself, for `/proc/kallsyms` and `%pB` (kernel/module/kallsyms.c,
//! include/linux/module.h):
//! - the module list `modules` links each `struct module` by `list`; `name` is a
//!   `char[MODULE_NAME_LEN]`; a module still `MODULE_STATE_UNFORMED` is skipped, as the kernel
//!   skips it;
//! - its text: 6.4+ (ac3b43283923) `mem[MOD_TEXT]` and `mem[MOD_INIT_TEXT]`, each a
//!   `struct module_memory {base, size, …}` indexed by `enum mod_mem_type` (the enumerators
//!   come from the DWARF); 4.5–6.3 `core_layout` and `init_layout` (`struct module_layout
//!   {base, size, text_size, …}`, the text being the first `text_size` bytes); before 4.5
//!   `module_core`/`core_text_size` and `module_init`/`init_text_size`;
//! - its symbols: `mod->kallsyms` (4.5+, a `struct mod_kallsyms`: `symtab`, `num_symtab`,
//!   `strtab`), else `mod->symtab`/`num_symtab`/`strtab`. `symtab` is an array of `Elf64_Sym`
//!   (24 bytes: `st_name` u32, `st_info` u8, `st_other` u8, `st_shndx` u16, `st_value` u64,
//!   `st_size` u64) whose `st_value` is already the runtime address; `strtab` holds the names
//!   one after another. Before 5.0 `st_info` held the `nm` type letter instead of the ELF type
//!   and binding.
//!
//! Each table is read in two bulk reads (the symbols, then the names up to the last one), not a
//! read per symbol; `num_symtab` is bounded, and a table that cannot be read leaves its module
//! named with no symbols. The kernel names an address by the nearest symbol below it (skipping
//! undefined, unnamed and mapping symbols) with the size up to the next symbol or the end of
//! the text; here the module's symbols go into a [`SymbolTable`] and follow the vmlinux rules
//! ([`SymbolTable::code_symbol_within`]: a symbol's own size first), the end of the text
//! bounding a symbol without one.

use crate::addr::VirtAddr;
use crate::debuginfo::symbols::{CodeSymbol, SymKind, SymbolParts, SymbolTable, code_eligible};
use crate::kernel::{DEFAULT_WALK_CAP, Kernel, KernelError, Object};

use super::soft;

/// `MODULE_NAME_LEN` is 64 minus a pointer; 64 bounds it on every architecture.
const NAME_MAX: usize = 64;
/// `KSYM_NAME_LEN` (512 since 6.1, 128 before).
const KSYM_NAME_LEN: usize = 512;
/// `sizeof(Elf64_Sym)`.
const SYM_SIZE: usize = 24;
/// The largest modules (GPU drivers) keep some 40 000 symbols; more than this is corrupt.
pub const MAX_MODULE_SYMBOLS: u64 = 1 << 18;
/// `SHN_UNDEF`, `SHN_ABS`.
const SHN_UNDEF: u64 = 0;
const SHN_ABS: u64 = 0xfff1;
/// `STT_FUNC`, `STB_LOCAL`.
const STT_FUNC: u8 = 2;
const STB_LOCAL: u8 = 0;

/// One module's text and symbols.
#[derive(Debug)]
pub struct ModuleText {
    pub name: String,
    /// Its text regions, `[start, end)`.
    pub text: Vec<(u64, u64)>,
    symbols: SymbolTable,
    /// Why it has no symbols, when its table could not be read.
    pub symbols_error: Option<String>,
}

/// Every loaded module's text and symbols.
#[derive(Debug, Default)]
pub struct ModuleSymbols {
    pub modules: Vec<ModuleText>,
    /// Modules or list links that could not be read.
    pub problems: Vec<String>,
}

impl ModuleSymbols {
    /// The module whose text holds `addr`, and the region.
    pub fn module_at(&self, addr: u64) -> Option<(&ModuleText, (u64, u64))> {
        self.modules.iter().find_map(|m| {
            m.text
                .iter()
                .find(|&&(s, e)| s <= addr && addr < e)
                .map(|&r| (m, r))
        })
    }

    /// The module holding `addr` and the symbol naming it, when one does.
    pub fn code_symbol(&self, addr: u64) -> Option<(&str, Option<CodeSymbol>)> {
        let (m, (_, end)) = self.module_at(addr)?;
        Some((
            &m.name,
            m.symbols.code_symbol_within(VirtAddr(addr), Some(end)),
        ))
    }
}

/// Where this kernel keeps a module's text.
enum TextLayout {
    /// 6.4+: `mem[]` indices of the text regions.
    Mem(Vec<u64>),
    /// 4.5–6.3.
    Layout,
    /// Before 4.5.
    Flat,
}

impl TextLayout {
    fn probe(k: &Kernel) -> Result<TextLayout, KernelError> {
        const M: &str = "struct module";
        if k.has_member(M, "mem")? {
            let mut idx = vec![k.enumerator_in("mod_mem_type", "MOD_TEXT")? as u64];
            match k.enumerator_in("mod_mem_type", "MOD_INIT_TEXT") {
                Ok(v) => idx.push(v as u64),
                Err(e) if e.is_missing() => {}
                Err(e) => return Err(e),
            }
            return Ok(TextLayout::Mem(idx));
        }
        if k.has_member(M, "core_layout")? {
            return Ok(TextLayout::Layout);
        }
        Ok(TextLayout::Flat)
    }

    /// The module's text regions, `[start, end)`.
    fn regions(&self, m: &Object<'_>) -> Result<Vec<(u64, u64)>, KernelError> {
        let mut out = Vec::new();
        let mut push = |base: VirtAddr, size: u64| {
            let size = size & 0xffff_ffff; // `unsigned int` sizes
            if base.0 != 0 && size != 0 {
                out.push((base.0, base.0.saturating_add(size)));
            }
        };
        match self {
            TextLayout::Mem(idx) => {
                let mem = m.member("mem")?;
                for &i in idx {
                    let r = mem.index(i)?;
                    push(r.member("base")?.pointer()?, r.member("size")?.u64()?);
                }
            }
            TextLayout::Layout => {
                for l in ["core_layout", "init_layout"] {
                    let lay = m.member(l)?;
                    let size = match lay.member("text_size") {
                        Ok(s) => s.u64()?,
                        Err(e) if e.is_missing() => lay.member("size")?.u64()?,
                        Err(e) => return Err(e),
                    };
                    push(lay.member("base")?.pointer()?, size);
                }
            }
            TextLayout::Flat => {
                for (base, size) in [
                    ("module_core", "core_text_size"),
                    ("module_init", "init_text_size"),
                ] {
                    push(m.member(base)?.pointer()?, m.member(size)?.u64()?);
                }
            }
        }
        Ok(out)
    }
}

/// Reads every module. Only the deadline fails the call; other problems are recorded.
pub(crate) fn load(k: &Kernel) -> Result<ModuleSymbols, KernelError> {
    let mut out = ModuleSymbols::default();
    let head = match soft(k.symbol_address("modules"))? {
        Ok(h) => h,
        Err(e) if e.is_missing() => return Ok(out), // no CONFIG_MODULES
        Err(e) => {
            out.problems.push(format!("modules: {e}"));
            return Ok(out);
        }
    };
    let walked = soft(k.list_entries_salvaged(head, "struct module", "list", DEFAULT_WALK_CAP))?;
    let (mods, broke) = match walked {
        Ok(r) => r,
        Err(e) => {
            out.problems.push(format!("the module list: {e}"));
            return Ok(out);
        }
    };
    if let Some(e) = broke {
        out.problems.push(format!("the module list is broken: {e}"));
    }
    let layout = match soft(TextLayout::probe(k))? {
        Ok(l) => l,
        Err(e) => {
            out.problems.push(format!("struct module: {e}"));
            return Ok(out);
        }
    };
    let unformed = k.enumerator("MODULE_STATE_UNFORMED").ok();
    for m in &mods {
        match soft(read_module(k, m, &layout, unformed))? {
            Ok(Some(t)) => out.modules.push(t),
            Ok(None) => {}
            Err(e) => out.problems.push(format!("module at {}: {e}", m.address())),
        }
    }
    Ok(out)
}

fn read_module(
    k: &Kernel,
    m: &Object<'_>,
    layout: &TextLayout,
    unformed: Option<i64>,
) -> Result<Option<ModuleText>, KernelError> {
    if let Some(u) = unformed
        && let Ok(state) = m.member("state")
        && state.i64()? == u
    {
        return Ok(None);
    }
    let name = String::from_utf8_lossy(&m.member("name")?.cstring(NAME_MAX)?).into_owned();
    let text = layout.regions(m)?;
    let (symbols, symbols_error) = match soft(read_symbols(k, m, &text))? {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Ok(Some(ModuleText {
        name,
        text,
        symbols: SymbolTable::from_parts(symbols, 0),
        symbols_error,
    }))
}

/// The module's symbols that lie in its text, as `SymbolTable::from_parts` takes them.
fn read_symbols(
    k: &Kernel,
    m: &Object<'_>,
    text: &[(u64, u64)],
) -> Result<Vec<SymbolParts>, KernelError> {
    // 4.5+: the RCU-switched `kallsyms` pointer (the init copy while loading, the core copy
    // after); before, the fields of `struct module` itself.
    let table = match m.member("kallsyms") {
        Ok(p) => p.deref()?,
        Err(e) if e.is_missing() => *m,
        Err(e) => return Err(e),
    };
    let symtab = table.member("symtab")?.pointer()?;
    let num = table.member("num_symtab")?.u64()?;
    let strtab = table.member("strtab")?.pointer()?;
    if num > MAX_MODULE_SYMBOLS {
        return Err(KernelError::Corrupt(format!(
            "num_symtab {num} at {} exceeds {MAX_MODULE_SYMBOLS}",
            table.address()
        )));
    }
    if num == 0 || symtab.0 == 0 || strtab.0 == 0 {
        return Ok(Vec::new());
    }
    let endian = k.space().endian();
    let raw = k.read_bytes(symtab, num as usize * SYM_SIZE)?;
    struct Raw {
        name: u64,
        info: u8,
        value: u64,
        size: u64,
    }
    let syms: Vec<Raw> = raw
        .chunks_exact(SYM_SIZE)
        .filter_map(|s| {
            let shndx = endian.uint(s.get(6..)?, 2)?;
            let value = endian.uint(s.get(8..)?, 8)?;
            let keep = shndx != SHN_UNDEF
                && shndx != SHN_ABS
                && text.iter().any(|&(a, b)| a <= value && value < b);
            keep.then(|| {
                Some(Raw {
                    name: endian.uint(s, 4)?,
                    info: *s.get(4)?,
                    value,
                    size: endian.uint(s.get(16..)?, 8)?,
                })
            })?
        })
        .collect();
    // The names, in one read up to the start of the last one; that one (and any name that
    // runs past the bulk) read on its own.
    let last = syms.iter().map(|s| s.name).max().unwrap_or(0);
    let bound = (num as usize).saturating_mul(KSYM_NAME_LEN) as u64;
    let bulk = if last <= bound {
        k.read_bytes(strtab, last as usize).ok()
    } else {
        None
    };
    let mut out = Vec::with_capacity(syms.len());
    for s in &syms {
        if s.name > bound {
            continue;
        }
        let from_bulk = bulk.as_ref().and_then(|b| {
            let tail = b.get(s.name as usize..)?;
            let end = tail.iter().position(|&c| c == 0)?;
            Some(tail[..end].to_vec())
        });
        let name = match from_bulk {
            Some(n) => n,
            None => {
                match soft(k.read_cstr(VirtAddr(strtab.0.wrapping_add(s.name)), KSYM_NAME_LEN))? {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            }
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        if !code_eligible(&name, false) {
            continue;
        }
        let (function, global) = symbol_class(s.info);
        let kind = if function {
            SymKind::Text
        } else {
            SymKind::Other
        };
        out.push((name, s.value, s.size, kind, global));
    }
    Ok(out)
}

/// Whether a module symbol is a function and global, from `st_info`: the ELF type and binding,
/// or before 5.0 the `nm` letter (`T` global text, `t` local text).
fn symbol_class(info: u8) -> (bool, bool) {
    if info.is_ascii_alphabetic() && (info >> 4) > 2 {
        return (info.eq_ignore_ascii_case(&b't'), info.is_ascii_uppercase());
    }
    (info & 0xf == STT_FUNC, info >> 4 != STB_LOCAL)
}

impl Kernel {
    /// The loaded modules' text and symbols, read once (see the module documentation).
    pub fn module_symbols(&self) -> Result<std::sync::Arc<ModuleSymbols>, KernelError> {
        self.stack_cache()
            .modules
            .get_or_try(|| load(self).map(std::sync::Arc::new))
    }

    /// Whether `addr` is in a loaded module's text.
    pub fn is_module_text(&self, addr: u64) -> bool {
        self.module_symbols()
            .is_ok_and(|m| m.module_at(addr).is_some())
    }
}
