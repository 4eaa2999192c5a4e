//! Runs the selected plugins one after the other, each isolated from the others.
//!
//! A plugin that returns `Err` is recorded `failed`; one that panics is caught
//! (`catch_unwind`), its panic message goes to the log instead of the terminal (a panic hook
//! that is active only while a plugin runs on this thread), and it is recorded `failed` with code
//! `panic`. Either way the next plugin runs: one broken plugin must not cost the whole report.
//!
//! Timeouts: plugins read the dump synchronously, so they are not killed; instead the kernel view
//! is given a deadline ([`arm_deadline`]) after which its reads fail, which makes a plugin stuck
//! in a long walk return promptly. A plugin that ends after its timeout is recorded `timed-out`
//! with `timeout_hit`, whatever it returned, and the run goes on.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::{Duration, Instant};

use chrono::Local;

use super::manifest::{ErrorRecord, PluginRecord, PluginStatus, sos_duration, sos_time};
use super::plugin::{OptionValue, OutputSink, Plugin, PluginContext, PluginError};
use crate::kernel::Kernel;

/// A plugin chosen to run, with its resolved options and timeout.
pub struct Planned<'p> {
    pub plugin: &'p dyn Plugin,
    pub options: BTreeMap<String, OptionValue>,
    pub timeout: Option<Duration>,
}

/// What the runner tells its caller as it goes (progress display).
#[derive(Debug)]
pub enum Progress<'a> {
    Started {
        index: usize,
        total: usize,
        name: &'a str,
    },
    Finished {
        index: usize,
        total: usize,
        name: &'a str,
        record: &'a PluginRecord,
    },
}

/// Gives the kernel view the deadline after which its reads fail with `timed-out`
/// (`None`: none).
pub fn arm_deadline(kernel: &Kernel, deadline: Option<Instant>) {
    kernel.set_deadline(deadline);
}

thread_local! {
    /// The plugin running on this thread, if any: the panic hook logs its panics.
    static CURRENT_PLUGIN: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// The last panic's message and location, taken by the runner after `catch_unwind`.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that, while a plugin runs on the current thread, records and logs
/// the panic instead of printing it; other panics go to the previous hook unchanged.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(plugin) = CURRENT_PLUGIN.with(Cell::get) else {
                previous(info);
                return;
            };
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            let text = match info.location() {
                Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
                None => msg,
            };
            tracing::error!(plugin, "plugin panicked: {text}");
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
        }));
    });
}

/// Calls `f` with panics caught; a panic becomes a `PluginError` with code `panic`.
fn guarded<T>(
    plugin: &'static str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> Result<T, PluginError> {
    install_panic_hook();
    CURRENT_PLUGIN.with(|c| c.set(Some(plugin)));
    let r = catch_unwind(AssertUnwindSafe(f));
    CURRENT_PLUGIN.with(|c| c.set(None));
    match r {
        Ok(r) => r,
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "panicked".to_string());
            Err(PluginError::new("panic", format!("plugin panicked: {msg}")))
        }
    }
}

/// A plugin's `check_enabled`, with a panic counted as "does not apply" and logged like any
/// plugin panic.
pub fn check_enabled(plugin: &dyn Plugin, kernel: &Kernel) -> bool {
    guarded(plugin.name(), || Ok(plugin.check_enabled(kernel))).unwrap_or_else(|e| {
        tracing::error!(plugin = plugin.name(), "check_enabled: {}", e.message);
        false
    })
}

fn err_record(e: &PluginError, phase: &str) -> ErrorRecord {
    ErrorRecord {
        code: e.code.clone(),
        message: e.message.clone(),
        phase: phase.to_string(),
    }
}

/// Runs one plugin: setup, then collect, each guarded, timed and recorded.
pub fn run_one(kernel: &Kernel, planned: &Planned<'_>, sink: &mut dyn OutputSink) -> PluginRecord {
    let plugin = planned.plugin;
    let name = plugin.name();
    let t0 = Instant::now();
    arm_deadline(kernel, planned.timeout.map(|t| t0 + t));

    let setup_start = Local::now();
    let mut ctx = PluginContext::new(kernel, name, &planned.options, sink);
    let mut errors = Vec::new();
    let setup = guarded(name, || plugin.setup(&mut ctx));
    let setup_end = Local::now();
    let setup_elapsed = t0.elapsed();
    let mut failed = false;
    if let Err(e) = &setup {
        tracing::error!(plugin = name, code = %e.code, "setup failed: {}", e.message);
        errors.push(err_record(e, "setup"));
        failed = true;
    }

    let start = Local::now();
    let t1 = Instant::now();
    if !failed {
        tracing::debug!(plugin = name, "collecting");
        if let Err(e) = guarded(name, || plugin.collect(&mut ctx)) {
            tracing::error!(plugin = name, code = %e.code, "collect failed: {}", e.message);
            errors.push(err_record(&e, "collect"));
            failed = true;
        }
    }
    let end = Local::now();
    let collect_elapsed = t1.elapsed();
    let total = t0.elapsed();
    arm_deadline(kernel, None);

    let (files, recorded) = ctx.finish();
    // errors the plugin recorded come first: they happened before any final failure
    let mut all: Vec<ErrorRecord> = recorded.iter().map(|e| err_record(e, "collect")).collect();
    all.append(&mut errors);

    let timeout_hit = planned.timeout.is_some_and(|t| total > t);
    let status = if timeout_hit {
        tracing::error!(
            plugin = name,
            "plugin ran {:.1}s, over its timeout of {}s",
            total.as_secs_f64(),
            planned.timeout.map_or(0, |t| t.as_secs())
        );
        PluginStatus::TimedOut
    } else if failed {
        PluginStatus::Failed
    } else if !all.is_empty() {
        PluginStatus::Partial
    } else {
        PluginStatus::Ok
    };
    tracing::info!(
        plugin = name,
        "finished: {} in {:.3}s, {} files, {} errors",
        status.as_str(),
        total.as_secs_f64(),
        files.len(),
        all.len()
    );

    PluginRecord {
        enabled: true,
        status,
        skip_reason: None,
        description: plugin.description().to_string(),
        start_time: Some(sos_time(start)),
        end_time: Some(sos_time(end)),
        run_time: Some(sos_duration(collect_elapsed)),
        setup_start: Some(sos_time(setup_start)),
        setup_end: Some(sos_time(setup_end)),
        setup_time: Some(sos_duration(setup_elapsed)),
        timeout: planned.timeout.map(|t| t.as_secs()),
        timeout_hit,
        duration_s: total.as_secs_f64(),
        options: planned.options.clone(),
        files,
        errors: all,
    }
}

/// Runs every planned plugin in order and returns their records, by name.
pub fn run_all(
    kernel: &Kernel,
    planned: &[Planned<'_>],
    sink: &mut dyn OutputSink,
    progress: &mut dyn FnMut(Progress<'_>),
) -> BTreeMap<String, PluginRecord> {
    let total = planned.len();
    let mut out = BTreeMap::new();
    for (i, p) in planned.iter().enumerate() {
        let name = p.plugin.name();
        progress(Progress::Started {
            index: i,
            total,
            name,
        });
        tracing::info!(plugin = name, "starting plugin {}/{}", i + 1, total);
        let record = run_one(kernel, p, sink);
        progress(Progress::Finished {
            index: i,
            total,
            name,
            record: &record,
        });
        out.insert(name.to_string(), record);
    }
    out
}
