//! sys: the system and panic summary (crash's `sys`, and more), and the system files of a live
//! sos report.
//!
//! Outputs:
//! - `plugins/sys/sys.txt` for people and `plugins/sys/sys.json` for pipelines: kernel, dump
//!   file and format, CPUs, crash date, uptime, load average, task count, utsname, memory, the
//!   panic message and the last oops block of the kernel log (read with
//!   [`crate::kernel::printk`], rendered as `dmesg` prints it), the panicking CPU and task, that CPU's
//!   registers, the taints with their names; what could not be determined, and why;
//! - `sos_commands/kernel/uname_-a`, `proc/version`, `proc/cmdline`, `proc/sys/kernel/tainted`,
//!   `proc/sys/kernel/hostname`, `proc/sys/kernel/osrelease`,
//!   `sys/devices/system/cpu/{online,possible,present}`, `sos_commands/date/date`,
//!   `proc/cpuinfo` (x86_64 and arm64, [`cpuinfo`]), and the root
//!   symlinks `uname` and `date` that sos makes. A file whose value the dump cannot give is not
//!   written.
//!
//! Page: docs/plugins/sys.md.

pub mod collect;
pub mod cpuinfo;
pub mod record;
pub mod render;

use crate::kernel::printk::read_kernel_log;
use crate::plugins::kernel_info::DumpFacts;
use crate::report::plugin::{Plugin, PluginContext, PluginError};

pub struct SysPlugin;

impl Plugin for SysPlugin {
    fn name(&self) -> &'static str {
        "sys"
    }

    fn description(&self) -> &'static str {
        "system and panic summary (crash's sys), uname, /proc/version, cmdline, CPU lists, date"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let k = ctx.kernel.access();
        let (log, log_missing) = match read_kernel_log(&k) {
            Ok(Some(l)) => {
                let text = crate::plugins::dmesg::render::dmesg(&l.records);
                let lines = String::from_utf8_lossy(&text)
                    .lines()
                    .map(String::from)
                    .collect();
                (Some(lines), String::new())
            }
            Ok(None) => (None, "this kernel has no printk ring".to_string()),
            Err(e) => (None, e.to_string()),
        };
        let info = ctx.kernel.info();
        let input = collect::SysInput {
            facts: DumpFacts::from_kernel(ctx.kernel),
            files: info.paths.iter().map(|p| p.display().to_string()).collect(),
            file_size: info.file_size,
            arch: info.arch,
            notes: info.cpus.clone(),
            log,
            log_missing,
        };
        let c = collect::collect(&k, &input);
        for (path, data) in render::sos_files(&c.sys) {
            ctx.write_archive_path(path, &data)?;
        }
        if ctx
            .files()
            .iter()
            .any(|f| f == "sos_commands/kernel/uname_-a")
        {
            ctx.write_symlink("uname", "sos_commands/kernel/uname_-a")?;
        }
        if ctx.files().iter().any(|f| f == "sos_commands/date/date") {
            ctx.write_symlink("date", "sos_commands/date/date")?;
        }
        ctx.write_text("sys.txt", &render::sys_txt(&c.sys))?;
        ctx.write_json("sys.json", &c.sys)?;
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
