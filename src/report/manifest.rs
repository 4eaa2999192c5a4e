//! `sos_reports/manifest.json`: what ran, for how long, what it wrote and what went wrong.
//!
//! The shape follows sos's manifest (sos/report/__init__.py, `report_md`): top-level `version`,
//! `cmdline`, `start_time`, `end_time`, `run_time`, `compression`, `tmpdir`, `tmpdir_fs_type`,
//! `policy`, `components`; under `components.report` the `enabled_plugins`, `disabled_plugins` and
//! one block per plugin with `start_time`, `end_time`, `run_time`, `setup_start`, `setup_end`,
//! `setup_time`, `timeout`, `timeout_hit` and `files`. Times are written as sos writes them
//! (Python's `str(datetime)` and `str(timedelta)`, local time) so that tools reading sos manifests
//! read these; every duration is also given in seconds (`*_s`) for machines.
//!
//! vmcore-report adds what a dump analysis needs: the dump, the vmlinux, the kernel release and
//! architecture, and per plugin a status, a skip reason and errors with stable codes. The
//! format is documented in `docs/manifest-schema.md` and `docs/manifest.schema.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Local};
use serde::Serialize;

pub use crate::assemble::{DebuginfoRecord, VmlinuxRecord};

use super::select::SkipReason;

/// The manifest format version, bumped when a key changes meaning or disappears.
pub const MANIFEST_VERSION: &str = "1";

/// A point in time as sos writes it: `2026-11-22 07:57:11.123456`.
pub fn sos_time(t: DateTime<Local>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A duration as sos writes it (Python's `str(timedelta)`): `0:00:01.234567`.
pub fn sos_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let micros = d.subsec_micros();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if micros == 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}.{micros:06}")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// vmcore-report's version (sos puts its own version here).
    pub version: String,
    pub manifest_version: String,
    pub cmdline: String,
    pub start_time: String,
    pub end_time: String,
    pub run_time: String,
    pub run_time_s: f64,
    pub compression: String,
    pub tmpdir: String,
    pub tmpdir_fs_type: String,
    /// sos names its distribution policy; the analysis host's distribution here.
    pub policy: String,
    pub dump: DumpRecord,
    pub vmlinux: Option<VmlinuxRecord>,
    /// Where the symbols and types came from (a vmlinux, or the dump alone).
    pub debuginfo: Option<DebuginfoRecord>,
    pub kernel_release: Option<String>,
    pub architecture: Option<String>,
    pub nodename: String,
    pub components: Components,
}

#[derive(Clone, Debug, Serialize)]
pub struct Components {
    pub report: ReportComponent,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportComponent {
    pub enabled_plugins: Vec<String>,
    pub disabled_plugins: Vec<String>,
    /// `-k` as given, `plugin.option=value`.
    pub tunables: BTreeMap<String, String>,
    pub plugins: BTreeMap<String, PluginRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DumpRecord {
    pub paths: Vec<String>,
    pub size: u64,
    pub format: String,
    /// The format's details (`kind`, compression, flattened, …).
    pub format_details: serde_json::Value,
    pub page_size: u64,
    pub nr_cpus: Option<u32>,
    pub dump_level: Option<i32>,
    /// One digest per path, only with `--sha256-dump`.
    pub sha256: Option<Vec<String>>,
    /// Whether the dump is whole (see [`crate::dump::DumpHealth`]).
    pub health: HealthRecord,
    /// Where VMCOREINFO came from: the dump's note, or its memory (dumps without the note).
    pub vmcoreinfo: crate::dump::VmcoreinfoSource,
}

/// The dump's damage, as the readers found it.
#[derive(Clone, Debug, Serialize)]
pub struct HealthRecord {
    /// Neither truncated nor flagged incomplete.
    pub complete: bool,
    pub truncated: Option<crate::dump::Truncation>,
    pub flagged_incomplete_by_header: bool,
}

impl From<&crate::dump::DumpHealth> for HealthRecord {
    fn from(h: &crate::dump::DumpHealth) -> HealthRecord {
        HealthRecord {
            complete: h.is_complete(),
            truncated: h.truncated,
            flagged_incomplete_by_header: h.flagged_incomplete_by_header,
        }
    }
}

/// How a plugin's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginStatus {
    /// Finished and recorded no error.
    Ok,
    /// Finished but recorded errors (for example memory excluded from the dump).
    Partial,
    /// Returned an error or panicked.
    Failed,
    /// Ran over its timeout.
    TimedOut,
    /// Finished without producing anything usable: it wrote no file, or every one of its reads
    /// of the dump failed.
    Empty,
    /// Did not run; see `skip_reason`.
    Skipped,
}

impl PluginStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginStatus::Ok => "ok",
            PluginStatus::Partial => "partial",
            PluginStatus::Failed => "failed",
            PluginStatus::TimedOut => "timed-out",
            PluginStatus::Empty => "empty",
            PluginStatus::Skipped => "skipped",
        }
    }

    /// Whether this status makes the run's exit code "some plugins failed".
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            PluginStatus::Failed | PluginStatus::TimedOut | PluginStatus::Empty
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorRecord {
    pub code: String,
    pub message: String,
    /// `setup` or `collect`.
    pub phase: String,
}

/// Every error of one code a plugin recorded, counted: the log and the terminal show one line
/// per cause, the manifest keeps the first [`MAX_ERRORS`] errors themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCause {
    pub code: String,
    pub count: u64,
    /// The address of the first and the last error that had one, written as `0x…` strings
    /// (kernel addresses do not fit a JSON number's exact range).
    #[serde(serialize_with = "crate::addr::ser_opt_hex")]
    pub first_address: Option<u64>,
    #[serde(serialize_with = "crate::addr::ser_opt_hex")]
    pub last_address: Option<u64>,
    /// The first error's message.
    pub example: String,
}

impl ErrorCause {
    /// Whether the cause is only memory that a filtered dump leaves out (`makedumpfile -d`).
    pub fn is_filtering(&self) -> bool {
        matches!(self.code.as_str(), "not-dumped" | "page-table-not-dumped")
    }
}

/// The most errors kept per plugin in the manifest; the rest are counted in `errors_omitted`.
pub const MAX_ERRORS: usize = 100;

#[derive(Clone, Debug, Serialize)]
pub struct PluginRecord {
    pub enabled: bool,
    pub status: PluginStatus,
    pub skip_reason: Option<SkipReason>,
    pub description: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub run_time: Option<String>,
    pub setup_start: Option<String>,
    pub setup_end: Option<String>,
    pub setup_time: Option<String>,
    /// Seconds; `None` when there is none (sos writes -1 for "default", here it is resolved).
    pub timeout: Option<u64>,
    pub timeout_hit: bool,
    /// Seconds spent in setup and collect together.
    pub duration_s: f64,
    pub options: BTreeMap<String, super::plugin::OptionValue>,
    pub files: Vec<String>,
    /// At most [`MAX_ERRORS`], in the order they happened.
    pub errors: Vec<ErrorRecord>,
    /// Errors recorded beyond [`MAX_ERRORS`].
    pub errors_omitted: u64,
    /// The recorded errors, one entry per code.
    pub error_causes: Vec<ErrorCause>,
}

impl PluginRecord {
    /// The record of a plugin that did not run.
    pub fn skipped(description: &str, reason: SkipReason) -> PluginRecord {
        PluginRecord {
            enabled: false,
            status: PluginStatus::Skipped,
            skip_reason: Some(reason),
            description: description.to_string(),
            start_time: None,
            end_time: None,
            run_time: None,
            setup_start: None,
            setup_end: None,
            setup_time: None,
            timeout: None,
            timeout_hit: false,
            duration_s: 0.0,
            options: BTreeMap::new(),
            files: Vec::new(),
            errors: Vec::new(),
            errors_omitted: 0,
            error_causes: Vec::new(),
        }
    }
}

impl Manifest {
    /// Indented JSON with a trailing newline, as sos writes it.
    pub fn to_json(&self) -> String {
        // serializing plain data with string keys cannot fail
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!("{{\"error\": \"manifest could not be serialized: {e}\"}}")
        });
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::sos_duration;
    use std::time::Duration;

    #[test]
    fn durations_print_like_python_timedelta() {
        // str(timedelta(seconds=1, microseconds=234567)) == '0:00:01.234567'
        assert_eq!(
            sos_duration(Duration::from_micros(1_234_567)),
            "0:00:01.234567"
        );
        // str(timedelta(hours=1, minutes=2, seconds=3)) == '1:02:03'
        assert_eq!(sos_duration(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(sos_duration(Duration::ZERO), "0:00:00");
    }
}
