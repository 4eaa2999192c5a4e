//! meminfo: `/proc/meminfo` as the kernel would have printed it at the crash.
//!
//! Outputs:
//! - `proc/meminfo`: every line the dump's counters determine, in the kernel's order and format,
//!   and nothing else (parsers such as insights-core's `MemInfo` reject any other line);
//! - `plugins/meminfo/meminfo.json`: the same values, each line this kernel prints but the dump
//!   could not determine with the reason it was left out, and notes on how values were derived.
//!
//! [`collect`] documents each line's source; [`render`] the format; docs/plugins/meminfo.md the
//! reasoning and the checks against the live file.

pub mod collect;
pub mod record;
pub mod render;

use crate::report::plugin::{Plugin, PluginContext, PluginError};

/// Where sos puts the copied `/proc/meminfo`.
pub const PROC_PATH: &str = "proc/meminfo";

pub struct MeminfoPlugin;

impl Plugin for MeminfoPlugin {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn description(&self) -> &'static str {
        "memory counters as /proc/meminfo printed them (free, cached, slab, commit, huge pages)"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let c = collect::collect(&ctx.kernel.access());
        // a kernel without any of the counters (a synthetic or foreign one) gets no empty file
        if !c.meminfo.lines.is_empty() {
            ctx.write_archive_path(PROC_PATH, render::proc_meminfo(&c.meminfo).as_bytes())?;
        }
        ctx.write_json("meminfo.json", &c.meminfo)?;
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
