//! The log as text and JSON. Pure functions of the records.
//!
//! util-linux dmesg (sys-utils/dmesg.c, `print_record` and `safe_fwrite`), default options:
//! the timestamp `[%5ld.%06ld] ` (seconds and microseconds of `ts_nsec`), then the text; a
//! newline inside the text that is followed by more text is written and followed by as many
//! spaces as the timestamp took (the continuation lines are indented under the text); a record
//! with no text is an empty line, without a timestamp. dmesg escapes bytes that are not
//! printable in the locale as `\xNN` unless `--noescape`; here the bytes are written as the
//! kernel stored them (a dump's log is evidence: nothing rewritten).

use serde::Serialize;

use crate::kernel::printk::{KernelLog, LOG_CONT, LOG_NEWLINE, LogRecord};
use crate::plugins::sched_debug::record::escape_bytes;

/// util-linux's facility names, by number.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "res0", "res1", "res2", "res3", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
/// util-linux's level names, by number.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `[%5ld.%06ld] ` for a timestamp in nanoseconds.
pub fn timestamp(ts_nsec: u64) -> String {
    format!(
        "[{:5}.{:06}] ",
        ts_nsec / 1_000_000_000,
        ts_nsec % 1_000_000_000 / 1000
    )
}

/// Appends `prefix`, then `text` with every inner line indented by the prefix's width, then a
/// newline (an empty text: only the newline).
fn push_record(out: &mut Vec<u8>, prefix: &str, text: &[u8]) {
    if text.is_empty() {
        out.push(b'\n');
        return;
    }
    out.extend_from_slice(prefix.as_bytes());
    let indent = prefix.len();
    for (i, &c) in text.iter().enumerate() {
        out.push(c);
        if c == b'\n' && i + 1 < text.len() {
            out.extend(std::iter::repeat_n(b' ', indent));
        }
    }
    out.push(b'\n');
}

/// `sos_commands/kernel/dmesg`: what `dmesg` prints.
pub fn dmesg(records: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        push_record(&mut out, &timestamp(r.ts_nsec), &r.text);
    }
    out
}

fn facility_name(f: u8) -> String {
    FACILITIES
        .get(usize::from(f))
        .map_or_else(|| f.to_string(), |s| s.to_string())
}

/// `plugins/dmesg/dmesg.txt`: `dmesg -x` (`%-6s:%-6s: ` facility and level names before the
/// timestamp) with printk's caller field (`[%6s] `) after it when the kernel stores the caller.
pub fn human(records: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let mut prefix = format!(
            "{:<6}:{:<6}: {}",
            facility_name(r.facility),
            LEVELS[usize::from(r.level & 7)],
            timestamp(r.ts_nsec)
        );
        if let Some(c) = r.caller() {
            prefix.push_str(&format!("[{c:>6}] "));
        }
        push_record(&mut out, &prefix, &r.text);
    }
    out
}

/// One record in `dmesg.json`.
#[derive(Serialize)]
pub struct JsonRecord {
    pub seq: Option<u64>,
    pub timestamp_ns: u64,
    pub level: u8,
    pub facility: u8,
    pub flags: u8,
    /// `LOG_CONT`: a fragment of a line another record began.
    pub continuation: bool,
    /// `LOG_NEWLINE`: the text ended with a newline.
    pub newline: bool,
    pub caller: Option<String>,
    pub text: String,
    pub subsystem: Option<String>,
    pub device: Option<String>,
    /// The newest record, still committed (its writer could have appended to it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

#[derive(Serialize)]
pub struct JsonMissing {
    pub address: String,
    pub length: u64,
}

#[derive(Serialize)]
pub struct JsonGap {
    pub first_missing: u64,
    pub last_missing: u64,
}

/// The summary in `dmesg.json`.
#[derive(Serialize)]
pub struct JsonSummary {
    /// `lockless` or `legacy`.
    pub format: crate::kernel::printk::LogFormat,
    /// Where the layout came from: `vmcoreinfo`, `debuginfo` or both.
    pub layout_from: String,
    pub ring_address: String,
    pub count_bits: Option<u32>,
    pub size_bits: Option<u32>,
    pub buf_len: Option<u64>,
    pub records: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Overwritten by newer records before the dump (normal): the oldest record's sequence
    /// number.
    pub lost_before_first: Option<u64>,
    /// Missing inside the range shown (not normal).
    pub lost_inside: u64,
    pub gaps: Vec<JsonGap>,
    pub states: Option<crate::kernel::printk::DescStates>,
    /// Pages of the ring not in the dump.
    pub missing_pages: Vec<JsonMissing>,
}

#[derive(Serialize)]
pub struct JsonLog {
    pub summary: JsonSummary,
    pub issues: Vec<crate::kernel::printk::LogIssue>,
    pub records: Vec<JsonRecord>,
}

fn opt_bytes(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| escape_bytes(b))
}

/// `plugins/dmesg/dmesg.json`.
pub fn json(log: &KernelLog) -> JsonLog {
    JsonLog {
        summary: JsonSummary {
            format: log.format,
            layout_from: log.layout_from.clone(),
            ring_address: format!("{:#x}", log.ring.address),
            count_bits: log.ring.count_bits,
            size_bits: log.ring.size_bits,
            buf_len: log.ring.buf_len,
            records: log.records.len(),
            first_seq: log.first_seq(),
            last_seq: log.last_seq(),
            lost_before_first: log.lost_before(),
            lost_inside: log.lost_inside(),
            gaps: log
                .gaps
                .iter()
                .map(|g| JsonGap {
                    first_missing: g.after + 1,
                    last_missing: g.before - 1,
                })
                .collect(),
            states: log.states.clone(),
            missing_pages: log
                .missing
                .iter()
                .map(|&(a, l)| JsonMissing {
                    address: format!("{a:#x}"),
                    length: l,
                })
                .collect(),
        },
        issues: log.issues.clone(),
        records: log
            .records
            .iter()
            .map(|r| JsonRecord {
                seq: r.seq,
                timestamp_ns: r.ts_nsec,
                level: r.level,
                facility: r.facility,
                flags: r.flags,
                continuation: r.flags & LOG_CONT != 0,
                newline: r.flags & LOG_NEWLINE != 0,
                caller: r.caller(),
                text: escape_bytes(&r.text),
                subsystem: opt_bytes(&r.subsystem),
                device: opt_bytes(&r.device),
                open: r.open,
            })
            .collect(),
    }
}
