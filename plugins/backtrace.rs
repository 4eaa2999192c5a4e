//! backtrace: where each CPU was and where each stuck task waits.
//!
//! Outputs (docs/plugins/backtrace.md):
//! - `plugins/backtrace/bt.txt`: the panic CPU's task first, then every other CPU's current
//!   task, then every task in `D` state (and with `-k backtrace.all=on` every task), in the
//!   layout of `crash`'s `bt`;
//! - `plugins/backtrace/stacks.txt`: the same traces grouped by identical function sequence,
//!   the largest group first (how a thousand blocked tasks are read);
//! - `plugins/backtrace/backtrace.json`: the CPUs, every trace frame by frame, the groups
//!   (docs/backtrace.schema.json).
//!
//! [`collect`] chooses the tasks and reads the traces through the kernel interface (the
//! unwinding is the kernel view's), [`render`] writes the text, [`record`] holds the records.

pub mod collect;
pub mod record;
pub mod render;

use crate::kernel::Kernel;
use crate::report::plugin::{OptionValue, Plugin, PluginContext, PluginError, PluginOption};

pub struct BacktracePlugin;

impl Plugin for BacktracePlugin {
    fn name(&self) -> &'static str {
        "backtrace"
    }

    fn description(&self) -> &'static str {
        "stack traces of the panic CPU, every CPU's current task and every blocked (D) task"
    }

    /// Applies to a kernel whose debuginfo describes `struct task_struct` and whose architecture
    /// the crate can unwind.
    fn check_enabled(&self, kernel: &Kernel) -> bool {
        kernel.find_type("struct task_struct").is_ok()
            && kernel
                .info()
                .arch
                .and_then(crate::kernel::stack::arch_stack)
                .is_some()
    }

    fn options(&self) -> Vec<PluginOption> {
        vec![PluginOption {
            name: "all",
            description: "trace every task, not only the CPUs' current and the blocked ones",
            default: OptionValue::Bool(false),
        }]
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let all = matches!(ctx.option("all"), Some(OptionValue::Bool(true)));
        let k = ctx.kernel.access();
        let mut c = collect::collect(&k, all)?;
        c.report.arch = ctx.kernel.info().arch.map(|a| a.uname_machine());
        ctx.write_text("bt.txt", &render::bt_txt(&c.report))?;
        ctx.write_text("stacks.txt", &render::stacks_txt(&c.report))?;
        ctx.write_json("backtrace.json", &c.report)?;
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
