//! dmesg: the kernel log, as `dmesg` printed it on the machine before it died.
//!
//! Reads the printk ring buffer through [`crate::kernel::printk`] (the lockless ring of 5.10+,
//! the `log_buf` ring of 3.5 – 5.9; from VMCOREINFO alone when the dump has the entries, the
//! debug info filling in what it lacks) and writes:
//! - `sos_commands/kernel/dmesg`, where sos puts the output of `dmesg`: one line per record in
//!   util-linux dmesg's default format, `[%5ld.%06ld] text` ([`render::dmesg`]);
//! - `plugins/dmesg/dmesg.txt` for people: the same with the facility and level as `dmesg -x`
//!   prints them and the caller (`[T123]`, `[C1]`) as printk's caller field shows it;
//! - `plugins/dmesg/dmesg.json`: every record (sequence number, timestamp, level, facility,
//!   flags, caller, text, device info) and a summary (first and last sequence number, records
//!   lost before the oldest one and inside the range, descriptor states, pages missing from the
//!   dump, what was found wrong).
//!
//! The text is the record's bytes: not decoded, not escaped in the text files, `\xNN` for bytes
//! that are not UTF-8 in the JSON. A page of the ring missing from the dump, a corrupt
//! descriptor or a gap in the sequence numbers inside the range shown is recorded as a plugin
//! error (status `partial`) and the records that could be read are written.
//!
//! Research notes (formats per version, states, what other tools print): docs/plugins/dmesg.md.

pub mod render;

use crate::kernel::printk::{self, KernelLog};
use crate::report::plugin::{Plugin, PluginContext, PluginError};

/// Where sos keeps the output of `dmesg`.
pub const ARCHIVE_PATH: &str = "sos_commands/kernel/dmesg";

pub struct DmesgPlugin;

impl Plugin for DmesgPlugin {
    fn name(&self) -> &'static str {
        "dmesg"
    }

    fn description(&self) -> &'static str {
        "the kernel log (printk ring buffer) as dmesg printed it, and as JSON"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let log = match printk::read_kernel_log(&ctx.kernel.access())? {
            Some(log) => log,
            None => {
                return Err(PluginError::new(
                    "no-printk-ring",
                    "the kernel has neither prb (5.10+) nor log_buf with log_first_idx (3.5+)",
                ));
            }
        };
        ctx.write_archive_path(ARCHIVE_PATH, &render::dmesg(&log.records))?;
        ctx.write_bytes("dmesg.txt", &render::human(&log.records))?;
        let json = render::json(&log);
        ctx.write_json("dmesg.json", &json)?;
        for e in recorded_errors(&log) {
            ctx.record_error(e);
        }
        Ok(())
    }
}

/// The findings that make the result partial: pages missing from the dump, corrupt data,
/// a bound hit, records lost inside the range shown. Records still being written, the open
/// newest record and records whose text the kernel itself lost are in the JSON only.
pub fn recorded_errors(log: &KernelLog) -> Vec<PluginError> {
    let mut out: Vec<PluginError> = log
        .issues
        .iter()
        .filter(|i| matches!(i.code, "not-dumped" | "corrupt-data" | "bound"))
        .map(|i| PluginError::new(i.code, i.what.clone()))
        .collect();
    if !log.gaps.is_empty() {
        let list: Vec<String> = log
            .gaps
            .iter()
            .take(8)
            .map(|g| format!("{}..{}", g.after + 1, g.before - 1))
            .collect();
        out.push(PluginError::new(
            "log-gap",
            format!(
                "{} records missing inside the log (sequence numbers {}{})",
                log.lost_inside(),
                list.join(", "),
                if log.gaps.len() > 8 { ", …" } else { "" }
            ),
        ));
    }
    out
}
