//! sched_debug: `sys/kernel/debug/sched/debug` as the live kernel would have printed it.
//!
//! The plugin reads the scheduler's state once into plain records ([`record`]), then renders them
//! as the kernel's text file ([`render`]) and as JSON. The text follows the dump's kernel: each
//! line exists when the struct member it prints exists in the dump's DWARF ([`collect`]), so a
//! 4.18 dump gets the older `/proc/sched_debug` layout, a 6.1 dump the CFS layout and a 6.12 dump
//! the EEVDF one, without reading the version string.
//!
//! What a dump cannot give exactly, because the live file reads clocks at `cat` time (`ktime`,
//! `sched_clk`, `cpu_clk`), is taken from the dump and listed in comment lines at the top when
//! `SOS_VMCORE_SCHED_DEBUG=1`; without it the file looks exactly like the kernel's.
//!
//! Research notes (field lists per version, formats, pitfalls): docs/plugins/sched_debug.md.

pub mod collect;
pub mod record;
pub mod render;
pub mod state;

use crate::report::plugin::{Plugin, PluginContext, PluginError};

/// Where the kernel keeps the file (debugfs, 5.13+; `/proc/sched_debug` before).
pub const ARCHIVE_PATH: &str = "sys/kernel/debug/sched/debug";

/// The environment variable that adds the approximation notes at the top of the file.
pub const ANNOTATE_ENV: &str = "SOS_VMCORE_SCHED_DEBUG";

pub struct SchedDebugPlugin;

impl Plugin for SchedDebugPlugin {
    fn name(&self) -> &'static str {
        "sched_debug"
    }

    fn description(&self) -> &'static str {
        "scheduler state as /sys/kernel/debug/sched/debug printed it (runqueues, cfs/rt/dl, tasks)"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let c = collect::collect(&ctx.kernel.access());
        let annotate = std::env::var(ANNOTATE_ENV).as_deref() == Ok("1");
        let text = render::render(&c.sched, annotate);
        ctx.write_archive_path(ARCHIVE_PATH, &text)?;
        ctx.write_json("sched_debug.json", &c.sched)?;
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
