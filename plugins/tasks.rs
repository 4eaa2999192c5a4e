//! tasks: every task of the dumped kernel, as `ps` would have listed it.
//!
//! Outputs:
//! - `sos_commands/process/ps_auxwwwm`, `ps_alxwww`, `ps_-elfL`: the three `ps` runs of sos's
//!   process plugin, in procps-ng's layout ([`render`]), and the root symlink `ps` →
//!   `sos_commands/process/ps_auxwwwm` that sos makes;
//! - `plugins/tasks/tasks.json`: every task (threads and the per-CPU idle tasks included) with
//!   its ids, state, CPU, priority and policy, credentials, start and CPU times, memory, and the
//!   D-state tasks apart with how long each has been blocked; what a value could not be read
//!   for, and what the ps files leave out, is said there;
//! - `plugins/tasks/blocked.txt`: the D-state tasks for people.
//!
//! The records are read once ([`collect`]) and rendered from them ([`record`]).
//! Page: docs/plugins/tasks.md.

pub mod collect;
pub mod record;
pub mod render;

use crate::addr::VirtAddr;
use crate::kernel::AccessError;
use crate::kernel::Kernel;
use crate::plugins::kernel_info::DumpFacts;
use crate::plugins::kernel_info::collect::{read_uptime, read_wall_clock};
use crate::report::plugin::{Plugin, PluginContext, PluginError};

pub const PS_AUX: &str = "sos_commands/process/ps_auxwwwm";
pub const PS_ALX: &str = "sos_commands/process/ps_alxwww";
pub const PS_ELFL: &str = "sos_commands/process/ps_-elfL";

pub struct TasksPlugin;

impl Plugin for TasksPlugin {
    fn name(&self) -> &'static str {
        "tasks"
    }

    fn description(&self) -> &'static str {
        "every task as ps auxwwwm / alxwww / -elfL would list it, and the D-state tasks"
    }

    /// Applies to a kernel whose debuginfo describes `struct task_struct`.
    fn check_enabled(&self, kernel: &Kernel) -> bool {
        kernel.find_type("struct task_struct").is_ok()
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let view = ctx.kernel.access();
        let facts = DumpFacts::from_kernel(ctx.kernel);
        let clock = collect::Clock {
            now_epoch: facts
                .crash_time
                .or_else(|| read_wall_clock(&view).ok().flatten()),
            uptime_s: read_uptime(&view).ok().flatten().map(|u| u.seconds),
            page_size: facts.page_size.unwrap_or(4096),
        };
        let listed = collect::list_tasks(&view);
        let kernel = ctx.kernel;
        let read_user = |pgd: u64, addr: u64, len: usize| {
            kernel
                .read_user(VirtAddr(pgd), VirtAddr(addr), len)
                .map_err(|e| AccessError::new(e.code(), e.to_string()))
        };
        let supported = kernel.can_read_user();
        let c = collect::collect(&view, listed, &clock, supported.then_some(&read_user as _));
        let r = &c.report;
        ctx.write_archive_path(PS_AUX, render::ps_auxwwwm(r).as_bytes())?;
        ctx.write_archive_path(PS_ALX, render::ps_alxwww(r).as_bytes())?;
        ctx.write_archive_path(PS_ELFL, render::ps_elfl(r).as_bytes())?;
        ctx.write_symlink("ps", PS_AUX)?;
        ctx.write_json("tasks.json", r)?;
        ctx.write_text("blocked.txt", &render::blocked_txt(r))?;
        for u in &r.unreadable {
            ctx.record_error(PluginError::new("task-unreadable", u.error.clone()));
        }
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
