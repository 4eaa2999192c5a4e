//! modules: the loaded kernel modules, as `/proc/modules` and `lsmod` showed them.
//!
//! Outputs:
//! - `proc/modules`: `m_show()`'s lines (name, size, reference count, users, state, text base,
//!   taint letters), in the kernel's list order;
//! - `sos_commands/kernel/lsmod` (and the root symlink `lsmod`, as sos makes it): kmod's
//!   `lsmod` table;
//! - `plugins/modules/modules.json`: every module with its fields, version and srcversion, the
//!   modules that could not be read, and whether the list walk was cut short.
//!
//! The module list is walked with the kernel view's salvaging walk: an unreadable node does not
//! lose the modules after it. [`record`] has the records, [`render`] the formats with their
//! kernel sources, [`collect`] the reading rules per kernel era; docs/plugins/modules.md the
//! reasoning and the checks against the live files.

pub mod collect;
pub mod record;
pub mod render;

use crate::report::plugin::{Plugin, PluginContext, PluginError};

/// Where sos puts the copied `/proc/modules`.
pub const PROC_PATH: &str = "proc/modules";
/// Where sos puts `lsmod`'s output.
pub const LSMOD_PATH: &str = "sos_commands/kernel/lsmod";
/// sos's root symlink to it.
pub const LSMOD_LINK: &str = "lsmod";

pub struct ModulesPlugin;

impl Plugin for ModulesPlugin {
    fn name(&self) -> &'static str {
        "modules"
    }

    fn description(&self) -> &'static str {
        "loaded modules as /proc/modules and lsmod showed them (size, users, state, taints)"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let c = collect::collect(&ctx.kernel.access());
        match &c.modules {
            Some(m) => {
                ctx.write_archive_path(PROC_PATH, render::proc_modules(m).as_bytes())?;
                ctx.write_archive_path(LSMOD_PATH, render::lsmod(m).as_bytes())?;
                if let Err(e) = ctx.write_symlink(LSMOD_LINK, LSMOD_PATH) {
                    ctx.record_error(e);
                }
                ctx.write_json("modules.json", m)?;
            }
            None if c.errors.is_empty() => {
                // a kernel built without CONFIG_MODULES has neither file
                ctx.write_json(
                    "modules.json",
                    &serde_json::json!({"modules": [], "supported": false}),
                )?;
            }
            None => {}
        }
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
