//! The glue between the command line and the library: open the dump, build the kernel view, run
//! the plugins, write the archive, and turn the outcome into an exit code.
//!
//! ```text
//! Config ─► assemble::open_kernel (dump, translation, symbols and types: vmlinux or the dump)
//!        ─► select plugins ─► runner ─► manifest + logs ─► archive (tar, checksum, gpg)
//! ```
//!
//! Exit codes (documented in `docs/user-guide.md`): see [`exit`].

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use chrono::Local;

use crate::assemble::{self, DebuginfoRecord, OpenError};
use crate::cli::Config;
use crate::debuginfo;
use crate::dump::{DumpError, DumpInfo};
use crate::kernel::Kernel;
use crate::report::archive::{self, ArchiveError, BuildDir};
use crate::report::interrupt;
use crate::report::log::{self, Captured};
use crate::report::manifest::{
    self, Components, DumpRecord, MANIFEST_VERSION, Manifest, PluginRecord, PluginStatus,
    ReportComponent,
};
use crate::report::plugin::Plugin;
use crate::report::runner::{self, Planned, Progress};
use crate::report::select::{self, SelectError};
use crate::report::summary::{self, Summary};
use crate::ui;
use std::sync::Arc;

/// The process exit codes. A pipeline reads them as: 0 complete; 7 usable, only what the dump's
/// filtering left out is missing; 5 usable, some plugins' results are missing or incomplete; 8
/// usable as far as it goes, the dump itself is damaged; anything else no (usable) archive.
pub mod exit {
    /// The archive was written from a whole dump and every plugin that ran finished `ok`.
    pub const OK: u8 = 0;
    /// An unexpected internal error.
    pub const INTERNAL: u8 = 1;
    /// Bad usage (clap's code for parse errors; also unknown plugins or plugin options).
    pub const USAGE: u8 = 2;
    /// The dump could not be read, or its format or architecture is not supported.
    pub const DUMP: u8 = 3;
    /// No vmlinux was found, it does not match the dump, or it has no usable debug info.
    pub const DEBUGINFO: u8 = 4;
    /// The archive was written but at least one plugin failed, timed out or came out empty, or
    /// came out partial for a reason other than the dump's filtering.
    pub const PLUGINS_FAILED: u8 = 5;
    /// The archive could not be written (or could not be encrypted as asked).
    pub const ARCHIVE: u8 = 6;
    /// The archive was written from a whole dump, every plugin finished, and the only errors are
    /// reads of memory the dump's filtering (`makedumpfile -d`) left out.
    pub const FILTERED: u8 = 7;
    /// The archive was written from a damaged dump: truncated, or flagged incomplete by its
    /// header. What the file holds was read; the rest is missing.
    pub const DAMAGED_DUMP: u8 = 8;
    /// Interrupted by SIGINT (128 + 2); the build tree and any partial archive were removed.
    pub const INTERRUPTED: u8 = 130;
    /// Ended by SIGTERM (128 + 15); the build tree and any partial archive were removed.
    pub const TERMINATED: u8 = 143;
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Usage(#[from] SelectError),
    /// Opening the dump or building the kernel view (module [`crate::assemble`]).
    #[error("{0}")]
    Open(#[from] OpenError),
    #[error("cannot read the dump: {0}")]
    Dump(#[from] DumpError),
    #[error("cannot write the archive: {0}")]
    Archive(#[from] ArchiveError),
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Usage(_) => exit::USAGE,
            AppError::Open(OpenError::DebugInfo(_)) => exit::DEBUGINFO,
            AppError::Open(_) | AppError::Dump(_) => exit::DUMP,
            AppError::Archive(_) => exit::ARCHIVE,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Usage(e) => e.code(),
            AppError::Open(OpenError::Dump(e)) | AppError::Dump(e) => e.code(),
            AppError::Open(OpenError::Translate(e)) => e.code(),
            AppError::Open(OpenError::DebugInfo(e)) => e.code(),
            AppError::Archive(e) => e.code(),
        }
    }
}

/// The crashed kernel's `init_uts_ns.name`, read through the kernel view. The address is the
/// symbol's (vmlinux, else VMCOREINFO's `SYMBOL(init_uts_ns)`, both KASLR-shifted); the offset of
/// `name` comes from VMCOREINFO's `OFFSET(uts_namespace.name)` or else the type. `struct
/// new_utsname` is six `char[65]` fields (include/uapi/linux/utsname.h, `__NEW_UTS_LEN` 64), a
/// user-space ABI that does not change.
pub fn kernel_utsname(kernel: &Kernel) -> Option<[String; 6]> {
    const FIELD: u64 = 65;
    let base = kernel.symbol_address("init_uts_ns").ok()?;
    let name_off = match kernel
        .vmcoreinfo()
        .and_then(|v| v.offset("uts_namespace.name"))
    {
        Some(o) => o,
        None => {
            let ty = kernel.types().find_type("struct uts_namespace").ok()??;
            debuginfo::find_member(kernel.types(), ty, "name")
                .ok()??
                .byte_offset()
        }
    };
    let start = base.0.checked_add(name_off)?;
    let mut out: [String; 6] = Default::default();
    for (i, slot) in out.iter_mut().enumerate() {
        let va = crate::addr::VirtAddr(start.checked_add(FIELD * i as u64)?);
        let bytes = kernel.read_cstr(va, (FIELD - 1) as usize).ok()?;
        *slot = String::from_utf8_lossy(&bytes).into_owned();
    }
    Some(out)
}

/// The crashed host's name: the kernel's utsname, else the kdump header's, else `unknown`.
pub fn nodename(kernel: &Kernel) -> String {
    if let Some(u) = kernel_utsname(kernel) {
        if !u[1].is_empty() {
            return u[1].clone();
        }
    }
    kernel
        .info()
        .header_utsname
        .as_ref()
        .map(|u| u.nodename.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn kernel_release(kernel: &Kernel) -> Option<String> {
    if let Some(u) = kernel_utsname(kernel) {
        if !u[2].is_empty() {
            return Some(u[2].clone());
        }
    }
    kernel
        .vmcoreinfo()
        .and_then(|v| v.osrelease.clone())
        .or_else(|| {
            kernel
                .info()
                .header_utsname
                .as_ref()
                .map(|u| u.release.clone())
        })
        .filter(|r| !r.is_empty())
}

/// The analysis host's distribution (`PRETTY_NAME` of os-release), recorded as `policy`.
fn host_policy() -> String {
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("PRETTY_NAME=") {
                    return v.trim_matches('"').to_string();
                }
            }
        }
    }
    "unknown".to_string()
}

/// What one plugin's selection came to.
pub struct Decision<'p> {
    pub plugin: &'p dyn Plugin,
    pub applicable: Option<bool>,
    pub outcome: Result<(), select::SkipReason>,
}

/// Decides every plugin; `kernel` is `None` when there is no dump to ask.
pub fn decide_all<'p>(
    plugins: &[&'p dyn Plugin],
    config: &Config,
    kernel: Option<&Kernel>,
) -> Vec<Decision<'p>> {
    plugins
        .iter()
        .map(|p| {
            let applicable = kernel.map(|k| runner::check_enabled(*p, k));
            Decision {
                plugin: *p,
                applicable,
                outcome: select::decide(*p, &config.selection, applicable),
            }
        })
        .collect()
}

/// The `--list-plugins` text.
pub fn list_plugins(plugins: &[&dyn Plugin], config: &Config, kernel: Option<&Kernel>) -> String {
    let decisions = decide_all(plugins, config, kernel);
    let mut s = String::new();
    let kind = |p: &dyn Plugin| {
        if p.experimental() {
            "experimental"
        } else if p.default_enabled() {
            "default"
        } else {
            "optional"
        }
    };
    let on: Vec<&Decision> = decisions.iter().filter(|d| d.outcome.is_ok()).collect();
    let off: Vec<&Decision> = decisions.iter().filter(|d| d.outcome.is_err()).collect();
    if on.is_empty() {
        s.push_str("No plugin enabled.\n\n");
    } else {
        s.push_str("The following plugins are currently enabled:\n\n");
        for d in on {
            let applies = match d.applicable {
                Some(true) => "applies to this dump",
                Some(false) => "forced on (does not apply to this dump)",
                None => "",
            };
            s.push_str(&format!(
                " {:<20} {:<13} {}{}\n",
                d.plugin.name(),
                kind(d.plugin),
                d.plugin.description(),
                if applies.is_empty() {
                    String::new()
                } else {
                    format!(" [{applies}]")
                }
            ));
        }
        s.push('\n');
    }
    if !off.is_empty() {
        s.push_str("The following plugins are currently disabled:\n\n");
        for d in off {
            let reason = d.outcome.err().map(|r| r.as_str()).unwrap_or("");
            s.push_str(&format!(
                " {:<20} {:<13} {:<14} {}\n",
                d.plugin.name(),
                kind(d.plugin),
                reason,
                d.plugin.description()
            ));
        }
        s.push('\n');
    }
    s.push_str("The following options are available for ALL plugins:\n");
    s.push_str(&format!(
        " {:<35} {:<15} {}\n\n",
        "timeout",
        config
            .plugin_timeout
            .map_or_else(|| "0".to_string(), |t| t.as_secs().to_string()),
        "seconds a plugin may run (0: no limit)"
    ));
    let mut any = false;
    for p in plugins {
        // show the value in effect, as sos does: the default unless -k set it
        let effective = select::resolve_options(*p, &config.plugin_options, config.plugin_timeout)
            .map(|r| r.values)
            .unwrap_or_default();
        for o in p.options() {
            if !any {
                s.push_str("The following plugin options are available:\n");
                any = true;
            }
            s.push_str(&format!(
                " {:<35} {:<15} {}\n",
                format!("{}.{}", p.name(), o.name),
                effective.get(o.name).unwrap_or(&o.default).to_string(),
                o.description
            ));
        }
    }
    if !any {
        s.push_str("No plugin options available.\n");
    }
    s.push_str(&format!(
        "\n {} plugins, {} would run\n",
        plugins.len(),
        decisions.iter().filter(|d| d.outcome.is_ok()).count()
    ));
    s
}

/// What a finished report produced.
#[derive(Debug)]
pub struct Outcome {
    /// The archive (encrypted one if encryption succeeded); `None` with `--build`.
    pub archive: Option<PathBuf>,
    pub checksum: Option<String>,
    pub size: Option<u64>,
    /// The kept tree with `--build`.
    pub build_dir: Option<PathBuf>,
    pub failed_plugins: Vec<String>,
    pub partial_plugins: Vec<String>,
    /// Encryption was asked for and failed (the plain archive is kept).
    pub encryption_error: Option<ArchiveError>,
    pub manifest: Manifest,
    /// What `sos_reports/summary.json` holds.
    pub summary: Summary,
}

impl Outcome {
    /// The exit code, from the manifest: the worst of what it records, most urgent first (an
    /// archive not encrypted as asked, a damaged dump, failed plugins, filtered memory).
    pub fn exit_code(&self) -> u8 {
        let plugins = self.manifest.components.report.plugins.values();
        let ran: Vec<&PluginRecord> = plugins.filter(|r| r.enabled).collect();
        if self.encryption_error.is_some() {
            exit::ARCHIVE
        } else if !self.manifest.dump.health.complete {
            exit::DAMAGED_DUMP
        } else if ran.iter().any(|r| {
            r.status.is_failure()
                || (r.status == PluginStatus::Partial
                    && !r.error_causes.iter().all(|c| c.is_filtering()))
        }) {
            exit::PLUGINS_FAILED
        } else if (self.manifest.debuginfo.as_ref()).is_some_and(|d| !d.has_types()) {
            // Dump-only without kernel types: the plugins that need them did not run.
            exit::PLUGINS_FAILED
        } else if ran.iter().any(|r| r.status == PluginStatus::Partial) {
            exit::FILTERED
        } else {
            exit::OK
        }
    }
}

fn dump_record(config: &Config, info: &DumpInfo) -> Result<DumpRecord, AppError> {
    let sha256 = if config.sha256_dump {
        let mut v = Vec::new();
        for p in &info.paths {
            ui!("hashing {} ...", p.display());
            v.push(archive::sha256_file(p).map_err(AppError::Archive)?);
        }
        Some(v)
    } else {
        None
    };
    Ok(DumpRecord {
        paths: info.paths.iter().map(|p| p.display().to_string()).collect(),
        size: info.file_size,
        format: info.format.name().to_string(),
        format_details: serde_json::to_value(&info.format).unwrap_or(serde_json::Value::Null),
        page_size: info.page_size,
        nr_cpus: info.nr_cpus,
        dump_level: info.dump_level,
        sha256,
        health: (&info.health).into(),
        vmcoreinfo: info.vmcoreinfo_source.clone(),
    })
}

/// Logs (at debug level) this process's resident memory so far: the peak, and how much of the
/// current resident set is heap (anonymous) versus mapped file pages (the vmlinux's debug
/// sections, the dump), from `/proc/self/status` where it exists.
fn log_memory() {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    tracing::debug!(
        peak = field("VmHWM:"),
        anon = field("RssAnon:"),
        file = field("RssFile:"),
        "resident memory after the plugins"
    );
}

/// Runs the selected plugins on a built kernel view and writes the archive. This is everything
/// after the kernel view exists, so tests drive it with a kernel made from parts.
pub fn produce_report(
    config: &Config,
    kernel: &Arc<Kernel>,
    debuginfo: Option<DebuginfoRecord>,
    plugins: &[&'static dyn Plugin],
    captured: &Captured,
    started: chrono::DateTime<Local>,
    started_at: Instant,
) -> Result<Outcome, AppError> {
    let decisions = decide_all(plugins, config, Some(kernel));
    let running: Vec<&str> = decisions
        .iter()
        .filter(|d| d.outcome.is_ok())
        .map(|d| d.plugin.name())
        .collect();
    for w in select::unused_option_warnings(&config.plugin_options, &running) {
        tracing::warn!("{w}");
    }
    let mut planned = Vec::new();
    let mut records: BTreeMap<String, PluginRecord> = BTreeMap::new();
    for d in &decisions {
        match d.outcome {
            Ok(()) => {
                let r = select::resolve_options(
                    d.plugin,
                    &config.plugin_options,
                    config.plugin_timeout,
                )?;
                planned.push(Planned {
                    plugin: d.plugin,
                    options: r.values,
                    timeout: r.timeout,
                });
            }
            Err(reason) => {
                tracing::debug!(plugin = d.plugin.name(), "not running: {reason}");
                records.insert(
                    d.plugin.name().to_string(),
                    PluginRecord::skipped(d.plugin.description(), reason),
                );
            }
        }
    }

    let node = nodename(kernel);
    let date = match archive::deterministic_epoch() {
        Some(t) => chrono::DateTime::from_timestamp(i64::try_from(t).unwrap_or(0), 0)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string(),
        None => started.format("%Y-%m-%d").to_string(),
    };
    let name = archive::archive_name(
        &node,
        config.label.as_deref(),
        &date,
        &archive::random_suffix(),
    );
    let build = BuildDir::create(&config.tmp_dir, &name)?;
    tracing::info!("building {} in {}", name, build.dir().display());
    ui!(
        " Running {} plugins on the dump of {} ...",
        planned.len(),
        node
    );

    let show_bar = !config.quiet && std::io::stderr().is_terminal();
    let bar = if show_bar {
        let b = indicatif::ProgressBar::new(planned.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(" [{pos}/{len}] {wide_msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        log::set_progress(Some(b.clone()));
        Some(b)
    } else {
        None
    };
    let mut sink = build.sink();
    let ran =
        runner::run_all_threads(
            kernel,
            &planned,
            config.threads,
            &mut sink,
            &mut |ev| match ev {
                Progress::Started { name, .. } => {
                    if let Some(b) = &bar {
                        b.set_message(format!("Running plugin {name}"));
                    }
                }
                Progress::Finished {
                    index,
                    total,
                    name,
                    record,
                } => {
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                    // failures and recorded errors were logged as they happened
                    tracing::debug!(
                        "plugin {}/{} {name}: {}",
                        index + 1,
                        total,
                        record.status.as_str()
                    );
                }
            },
        );
    if let Some(b) = bar {
        b.finish_and_clear();
        log::set_progress(None);
    }
    let failed_plugins: Vec<String> = ran
        .iter()
        .filter(|(_, r)| r.status.is_failure())
        .map(|(n, _)| n.clone())
        .collect();
    let partial_plugins: Vec<String> = ran
        .iter()
        .filter(|(_, r)| r.status == PluginStatus::Partial)
        .map(|(n, _)| n.clone())
        .collect();
    records.extend(ran);

    // hashing a large dump is part of the run's time
    let dump = dump_record(config, kernel.info())?;
    let end = Local::now();
    let elapsed = started_at.elapsed();
    let manifest = Manifest {
        version: env!("CARGO_PKG_VERSION").to_string(),
        manifest_version: MANIFEST_VERSION.to_string(),
        cmdline: config.cmdline.clone(),
        start_time: manifest::sos_time(started),
        end_time: manifest::sos_time(end),
        run_time: manifest::sos_duration(elapsed),
        run_time_s: elapsed.as_secs_f64(),
        compression: if config.build {
            "none".to_string()
        } else {
            config.compression.name().to_string()
        },
        tmpdir: config.tmp_dir.display().to_string(),
        tmpdir_fs_type: archive::fs_type(&config.tmp_dir),
        policy: host_policy(),
        dump,
        vmlinux: debuginfo.as_ref().and_then(|d| d.vmlinux.clone()),
        debuginfo,
        kernel_release: kernel_release(kernel),
        architecture: Some(kernel.space().arch().uname_machine().to_string()),
        nodename: node,
        components: Components {
            report: ReportComponent {
                enabled_plugins: planned
                    .iter()
                    .map(|p| p.plugin.name().to_string())
                    .collect(),
                disabled_plugins: records
                    .iter()
                    .filter(|(_, r)| !r.enabled)
                    .map(|(n, _)| n.clone())
                    .collect(),
                tunables: config
                    .tunables
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (t.clone(), "true".to_string()),
                    })
                    .collect(),
                plugins: records,
            },
        },
    };
    build.write_file("sos_reports/manifest.json", manifest.to_json().as_bytes())?;
    tracing::info!("manifest written");
    // the summary reads what the plugins wrote, like any consumer of the archive
    let summary = summary::build(build.dir(), &manifest.components.report.plugins);
    build.write_file(
        "sos_reports/summary.txt",
        summary::render::summary_txt(&summary).as_bytes(),
    )?;
    build.write_file(
        "sos_reports/summary.json",
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    build.write_file(
        "sos_reports/sos.txt",
        summary::render::sos_txt(&summary, &manifest).as_bytes(),
    )?;
    build.write_file(
        "sos_reports/sos.html",
        summary::html::sos_html(&summary, &manifest).as_bytes(),
    )?;
    log_memory();

    // the logs go in last so they hold everything up to packing
    let write_logs = |b: &BuildDir| -> Result<(), AppError> {
        b.write_file("sos_logs/sos.log", &captured.sos_log())?;
        b.write_file("sos_logs/ui.log", &captured.ui_log())?;
        Ok(())
    };

    if config.build {
        ui!(
            " Leaving the archive's directory: {}",
            build.dir().display()
        );
        write_logs(&build)?;
        let dir = build.keep();
        return Ok(Outcome {
            archive: None,
            checksum: None,
            size: None,
            build_dir: Some(dir),
            failed_plugins,
            partial_plugins,
            encryption_error: None,
            manifest,
            summary,
        });
    }
    ui!(" Creating compressed archive ...");
    write_logs(&build)?;
    let mut path = build.pack(&config.tmp_dir, config.compression)?;
    // until the run ends, an interruption removes the archive: without its checksum and summary
    // it is not the run's result
    let mut finished_guard = interrupt::Guard::new(&path);
    let mut encryption_error = None;
    if let Some(how) = &config.encryption {
        match archive::encrypt(&path, how) {
            Ok(enc) => {
                // the plain archive must not stay beside the encrypted one
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("cannot remove the unencrypted {}: {e}", path.display());
                }
                path = enc;
                finished_guard = interrupt::Guard::new(&path);
            }
            Err(e) => {
                tracing::error!("encryption failed: {e}");
                encryption_error = Some(e);
            }
        }
    }
    let (digest, _) = archive::write_checksum(&path)?;
    let size = std::fs::metadata(&path)
        .map_err(|source| ArchiveError::Io {
            what: "cannot stat",
            path: path.clone(),
            source,
        })?
        .len();
    drop(finished_guard);
    Ok(Outcome {
        archive: Some(path),
        checksum: Some(digest),
        size: Some(size),
        build_dir: None,
        failed_plugins,
        partial_plugins,
        encryption_error,
        manifest,
        summary,
    })
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints the final summary (sos's closing lines, plus the plugins that did not finish well).
///
/// Every message is one line: the log layer escapes control characters, newlines included.
pub fn summarize(o: &Outcome) {
    ui!("");
    for line in summary::render::terminal_lines(&o.summary) {
        ui!(" {line}");
    }
    if let Some(dir) = &o.build_dir {
        ui!("");
        ui!(
            "  vmcore-report build tree is located at : {}",
            dir.display()
        );
        ui!("");
    }
    if let (Some(a), Some(sum), Some(size)) = (&o.archive, &o.checksum, o.size) {
        ui!("");
        ui!("Your vmcore report has been generated and saved in:");
        ui!("\t{}", a.display());
        ui!("");
        ui!(" Size\t{}", human_size(size));
        ui!(" sha256\t{}", sum);
        ui!("");
    }

    if !o.partial_plugins.is_empty() {
        ui!(
            " Partial (see the manifest's errors): {}",
            o.partial_plugins.join(", ")
        );
    }
    if !o.failed_plugins.is_empty() {
        tracing::error!(
            "plugins that failed, timed out or came out empty: {}",
            o.failed_plugins.join(", ")
        );
    }
    if let Some(e) = &o.encryption_error {
        tracing::error!("{e}");
    }
}

/// Opens the dump and builds the kernel view (module [`crate::assemble`]).
pub fn open_kernel(config: &Config) -> Result<(Kernel, DebuginfoRecord), AppError> {
    Ok(assemble::open_kernel(&config.open_options())?)
}

/// The whole run for a validated configuration. Returns the exit code.
pub fn run(config: &Config, plugins: &[&'static dyn Plugin], captured: &Captured) -> u8 {
    let started = Local::now();
    let started_at = Instant::now();
    tracing::info!(
        "vmcore-report {} ({})",
        env!("CARGO_PKG_VERSION"),
        config.cmdline
    );
    if config.list_plugins {
        let kernel = if config.vmcores.is_empty() {
            None
        } else {
            match open_kernel(config) {
                Ok((k, _)) => Some(k),
                Err(e) => {
                    tracing::error!("{e}");
                    print!("{}", list_plugins(plugins, config, None));
                    return e.exit_code();
                }
            }
        };
        print!("{}", list_plugins(plugins, config, kernel.as_ref()));
        return exit::OK;
    }
    let (kernel, debuginfo) = match open_kernel(config) {
        Ok((k, v)) => (Arc::new(k), v),
        Err(e) => {
            tracing::error!("{e}");
            return e.exit_code();
        }
    };
    match produce_report(
        config,
        &kernel,
        Some(debuginfo),
        plugins,
        captured,
        started,
        started_at,
    ) {
        Ok(o) => {
            // the plugins' threads may still hold the kernel: the index is written now
            kernel.types().save_index();
            summarize(&o);
            if config.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&o.summary).unwrap_or_default()
                );
            }
            o.exit_code()
        }
        Err(e) => {
            tracing::error!("{e}");
            e.exit_code()
        }
    }
}
