//! The two text files, byte for byte as their producers write them.
//!
//! `/proc/modules` is `m_show()` (kernel/module/procfs.c; kernel/module.c before 5.19), one line
//! per module in `modules` list order, unformed modules skipped:
//!
//! ```text
//! <name> <size>[ <refcount> <users>| - -] <Live|Loading|Unloading> 0x<base>[ (<taints>[-|+])]
//! ```
//!
//! - `<size>` is `%u` of every memory region's size (core and init);
//! - with `CONFIG_MODULE_UNLOAD`, `<refcount>` is `%i` of `module_refcount()` and `<users>` each
//!   user's name followed by a comma (`a,b,`), then `[permanent],` for a module with an init but
//!   no exit function, or `-` when neither printed anything; without it, ` - -`;
//! - `<base>` is `%px` of the core text base: 16 lowercase hex digits on a 64-bit kernel (a
//!   reader without `CAP_SYSLOG` sees zeros; the dump holds the real address, as root saw it);
//! - the taint block, only when the module has taint bits: `(`, `module_flags_taint()`'s
//!   letters, `-` when unloading or `+` when loading, `)`.
//!
//! `sos_commands/kernel/lsmod` is kmod's `lsmod` (tools/lsmod.c): the header
//! `Module                  Size  Used by`, then `%-19s %8ld  %d` of the name, the size
//! `/sys/module/<name>/coresize` reports (core regions only) and `/sys/module/<name>/refcnt`,
//! then the holders, the first after a space and the rest after commas. lsmod takes the holders
//! from the `/sys/module/<name>/holders/` directory, whose entries are exactly the
//! `source_list` modules; their order there is sysfs' (a name hash), here the list's.

use std::fmt::Write;

use super::record::{ModuleState, Modules, text_name};

/// `/proc/modules`.
pub fn proc_modules(m: &Modules) -> String {
    let mut out = String::new();
    for md in &m.modules {
        if md.state == ModuleState::Unformed {
            continue;
        }
        let _ = write!(out, "{} {}", text_name(&md.name), md.size as u32);
        match (m.unload, md.refcount) {
            (true, Some(rc)) => {
                let _ = write!(out, " {} ", rc as i32);
                for u in &md.users {
                    out.push_str(&text_name(u));
                    out.push(',');
                }
                if md.permanent {
                    out.push_str("[permanent],");
                }
                if md.users.is_empty() && !md.permanent {
                    out.push('-');
                }
            }
            _ => out.push_str(" - -"),
        }
        let _ = write!(out, " {} 0x{:016x}", md.state.proc_word(), md.base);
        if md.taints != 0 {
            out.push_str(" (");
            out.push_str(&md.taint_letters);
            match md.state {
                ModuleState::Unloading => out.push('-'),
                ModuleState::Loading => out.push('+'),
                _ => {}
            }
            out.push(')');
        }
        out.push('\n');
    }
    out
}

/// The header line kmod's `lsmod` prints first.
pub const LSMOD_HEADER: &str = "Module                  Size  Used by";

/// `lsmod`.
pub fn lsmod(m: &Modules) -> String {
    let mut out = String::from(LSMOD_HEADER);
    out.push('\n');
    for md in &m.modules {
        if md.state == ModuleState::Unformed {
            continue;
        }
        // kmod reads /sys/module/<name>/refcnt, which exists only with CONFIG_MODULE_UNLOAD;
        // without it the read fails and lsmod prints the negated errno (-ENOENT).
        let rc = match (m.unload, md.refcount) {
            (true, Some(rc)) => rc as i32,
            _ => -2,
        };
        let _ = write!(
            out,
            "{:<19} {:>8}  {}",
            text_name(&md.name),
            md.core_size,
            rc
        );
        for (i, u) in md.users.iter().enumerate() {
            out.push(if i == 0 { ' ' } else { ',' });
            out.push_str(&text_name(u));
        }
        out.push('\n');
    }
    out
}
