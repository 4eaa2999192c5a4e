//! Runs the selected plugins, one after the other or up to `--threads` at once, each isolated
//! from the others.
//!
//! A plugin that returns `Err` is recorded `failed`; one that panics is caught
//! (`catch_unwind`), its panic message goes to the log instead of the terminal (a panic hook
//! that is active only while a plugin runs on this thread), and it is recorded `failed` with code
//! `panic`. Either way the next plugin runs: one broken plugin must not cost the whole report.
//!
//! Timeouts: the plugin's thread is given a deadline ([`Kernel::set_thread_deadline`]) after
//! which its reads of the kernel view fail, which makes a plugin stuck in a long walk return
//! promptly. A plugin that ends after its
//! timeout is recorded `timed-out` with `timeout_hit`, whatever it returned, and the run goes on.
//! A plugin that computes without reading would never notice the deadline, so each plugin runs
//! on its own thread and the runner stops waiting [`TIMEOUT_GRACE`] after the timeout: the thread
//! is abandoned (threads cannot be killed safely), its files, held in memory until it returns,
//! never reach the archive, and its context refuses writes from that instant.
//!
//! Plugins at once ([`run_all_threads`], sos's `--threads`): up to N plugin threads run, started
//! in plan order; their results are taken in plan order too, so the archive's files are written
//! and the manifest's records made in the same order whatever finished first. Each plugin's
//! deadline and read counts are its own thread's ([`Kernel::set_thread_deadline`],
//! [`Kernel::thread_read_counts`]; no plugin reads the kernel from another thread), and its time
//! is measured on its thread, not while it waits for its turn to be recorded.
//!
//! A plugin that finishes but wrote no file, or all of whose reads of the dump failed, is
//! recorded `empty`, a failure. Recorded errors are counted by code and logged once per code
//! when the plugin ends; the manifest keeps the first [`MAX_ERRORS`] of them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};

use super::manifest::{
    ErrorCause, ErrorRecord, MAX_ERRORS, PluginRecord, PluginStatus, sos_duration, sos_time,
};
use super::plugin::{OptionValue, OutputSink, Plugin, PluginContext, PluginError, Recorded};
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

/// How long the runner still waits for a plugin past its timeout: a plugin that reads the dump
/// gets `timed-out` at its next read and needs a moment to return what it has. The context
/// refuses writes from the same instant.
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// The stack of a plugin's thread (the main thread's usual size: walks and DWARF lookups
/// recurse).
const PLUGIN_STACK: usize = 8 << 20;

/// What a plugin wrote at one path: a file's bytes, or a symbolic link's target.
enum Entry {
    File(Vec<u8>),
    Link(String),
}

/// A plugin's files and links, in the order written, held until it finishes in time.
#[derive(Default)]
struct Buffer {
    files: Vec<(String, Entry)>,
}

impl OutputSink for Buffer {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.files
            .push((path.to_string(), Entry::File(data.to_vec())));
        Ok(())
    }
    fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        self.files
            .push((path.to_string(), Entry::Link(target.to_string())));
        Ok(())
    }
}

/// What a plugin's thread hands back.
struct Finished {
    setup_start: DateTime<Local>,
    setup_end: DateTime<Local>,
    setup_elapsed: Duration,
    start: DateTime<Local>,
    end: DateTime<Local>,
    collect_elapsed: Duration,
    failure: Option<ErrorRecord>,
    files: Vec<String>,
    buffer: Buffer,
    recorded: Recorded,
    /// When collect returned (the plugin's time ends there, not when it is recorded).
    ended: Instant,
    /// The reads it made: (succeeded, failed).
    reads: (u64, u64),
}

/// Runs setup then collect on the calling thread (the plugin's own), each guarded and timed,
/// with `read_deadline` for the reads made on this thread.
fn setup_and_collect(
    kernel: &Kernel,
    plugin: &'static dyn Plugin,
    options: &BTreeMap<String, OptionValue>,
    read_deadline: Option<Instant>,
    write_deadline: Option<Instant>,
) -> Finished {
    Kernel::set_thread_deadline(read_deadline);
    let reads_before = Kernel::thread_read_counts();
    let name = plugin.name();
    let mut buffer = Buffer::default();
    let t0 = Instant::now();
    let setup_start = Local::now();
    let mut ctx =
        PluginContext::new(kernel, name, options, &mut buffer).with_deadline(write_deadline);
    let mut failure = None;
    if let Err(e) = guarded(name, || plugin.setup(&mut ctx)) {
        tracing::error!(plugin = name, code = %e.code, "setup failed: {}", e.message);
        failure = Some(err_record(&e, "setup"));
    }
    let setup_end = Local::now();
    let setup_elapsed = t0.elapsed();
    let start = Local::now();
    let t1 = Instant::now();
    if failure.is_none() {
        tracing::debug!(plugin = name, "collecting");
        if let Err(e) = guarded(name, || plugin.collect(&mut ctx)) {
            tracing::error!(plugin = name, code = %e.code, "collect failed: {}", e.message);
            failure = Some(err_record(&e, "collect"));
        }
    }
    let end = Local::now();
    let collect_elapsed = t1.elapsed();
    let (files, recorded) = ctx.finish_all();
    let reads_after = Kernel::thread_read_counts();
    Finished {
        ended: Instant::now(),
        reads: (
            reads_after.0 - reads_before.0,
            reads_after.1 - reads_before.1,
        ),
        setup_start,
        setup_end,
        setup_elapsed,
        start,
        end,
        collect_elapsed,
        failure,
        files,
        buffer,
        recorded,
    }
}

/// Logs one line per cause of the errors a plugin recorded.
fn log_causes(name: &str, causes: &[ErrorCause]) {
    for c in causes {
        if c.count == 1 {
            tracing::warn!(plugin = name, code = %c.code, "{}", c.example);
            continue;
        }
        let span = match (c.first_address, c.last_address) {
            (Some(a), Some(b)) => format!(", first at {a:#x}, last at {b:#x}"),
            _ => String::new(),
        };
        tracing::warn!(
            plugin = name,
            "{} errors {}{span}; the first: {}",
            c.count,
            c.code,
            c.example
        );
    }
}

/// Runs one plugin on its own thread: setup, then collect, each guarded, timed and recorded.
///
/// The plugin's files are held in memory and written to `sink` only if it returns before its
/// timeout plus [`TIMEOUT_GRACE`]. Past that the runner stops waiting, records `timed-out`, and
/// leaves the thread behind (a thread cannot be killed safely): whatever it does later reaches
/// neither the sink nor the manifest, and its context refuses writes.
pub fn run_one(
    kernel: &Arc<Kernel>,
    planned: &Planned<'static>,
    sink: &mut dyn OutputSink,
) -> PluginRecord {
    let started = start(kernel, planned);
    finish(started, planned, sink)
}

/// A plugin whose thread was started ([`start`]), to be recorded by [`finish`].
struct Started {
    t0: Instant,
    give_up: Option<Instant>,
    spawned: std::io::Result<std::thread::JoinHandle<()>>,
    rx: mpsc::Receiver<Finished>,
}

/// Starts a plugin on its own thread, its deadline counted from now.
fn start(kernel: &Arc<Kernel>, planned: &Planned<'static>) -> Started {
    let plugin = planned.plugin;
    let name = plugin.name();
    let t0 = Instant::now();
    let deadline = planned.timeout.map(|t| t0 + t);
    let give_up = deadline.map(|d| d + TIMEOUT_GRACE);
    let (tx, rx) = mpsc::channel();
    let spawned = {
        let kernel = Arc::clone(kernel);
        let options = planned.options.clone();
        std::thread::Builder::new()
            .name(format!("plugin {name}"))
            .stack_size(PLUGIN_STACK)
            .spawn(move || {
                let _ = tx.send(setup_and_collect(
                    &kernel, plugin, &options, deadline, give_up,
                ));
            })
    };
    Started {
        t0,
        give_up,
        spawned,
        rx,
    }
}

/// Waits for a started plugin (at most until its timeout and the grace), writes its files to
/// `sink` and makes its record.
fn finish(started: Started, planned: &Planned<'static>, sink: &mut dyn OutputSink) -> PluginRecord {
    let plugin = planned.plugin;
    let name = plugin.name();
    let Started {
        t0,
        give_up,
        spawned,
        rx,
    } = started;
    let got = match (spawned, give_up) {
        (Err(e), _) => Err(format!("cannot start the plugin's thread: {e}")),
        (Ok(_), Some(g)) => rx
            .recv_timeout(g.saturating_duration_since(Instant::now()))
            .map_err(|e| match e {
                RecvTimeoutError::Timeout => format!(
                    "still running {}s past its timeout; abandoned, its files are not in the \
                     archive",
                    TIMEOUT_GRACE.as_secs()
                ),
                RecvTimeoutError::Disconnected => {
                    "the plugin's thread ended without a result".into()
                }
            }),
        (Ok(_), None) => rx
            .recv()
            .map_err(|_| "the plugin's thread ended without a result".into()),
    };
    let total = match &got {
        Ok(f) => f.ended.saturating_duration_since(t0),
        Err(_) => t0.elapsed(),
    };

    let now = Local::now();
    let mut f = got.unwrap_or_else(|why| {
        let abandoned = planned.timeout.is_some_and(|t| total > t);
        let code = if abandoned { "timed-out" } else { "thread" };
        tracing::error!(plugin = name, "{why}");
        Finished {
            setup_start: now,
            setup_end: now,
            setup_elapsed: total,
            start: now,
            end: now,
            collect_elapsed: Duration::ZERO,
            failure: Some(ErrorRecord {
                code: code.to_string(),
                message: why,
                phase: "collect".to_string(),
            }),
            files: Vec::new(),
            buffer: Buffer::default(),
            recorded: Recorded::default(),
            ended: Instant::now(),
            reads: (0, 0),
        }
    });
    let (reads_ok, reads_failed) = f.reads;
    for (path, entry) in std::mem::take(&mut f.buffer.files) {
        let written = match &entry {
            Entry::File(data) => sink.write_file(&path, data),
            Entry::Link(target) => sink.write_symlink(&path, target),
        };
        if let Err(e) = written {
            tracing::error!(plugin = name, code = %e.code, "{}", e.message);
            f.files.retain(|p| p != &path);
            f.failure.get_or_insert_with(|| err_record(&e, "collect"));
        }
    }
    log_causes(name, &f.recorded.causes);

    // errors the plugin recorded come first: they happened before any final failure
    let mut all: Vec<ErrorRecord> = f
        .recorded
        .errors
        .iter()
        .map(|e| err_record(e, "collect"))
        .collect();
    let failed = f.failure.is_some();
    all.extend(f.failure.take());

    let timeout_hit = planned.timeout.is_some_and(|t| total > t);
    let empty = if f.files.is_empty() {
        Some("wrote no file".to_string())
    } else if reads_ok == 0 && reads_failed > 0 {
        Some(format!(
            "every one of its {reads_failed} reads of the dump failed"
        ))
    } else {
        None
    };
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
    } else if let Some(why) = empty {
        tracing::error!(plugin = name, "produced nothing usable: {why}");
        all.push(ErrorRecord {
            code: "empty".to_string(),
            message: format!("the plugin produced nothing usable: {why}"),
            phase: "collect".to_string(),
        });
        PluginStatus::Empty
    } else if !all.is_empty() {
        PluginStatus::Partial
    } else {
        PluginStatus::Ok
    };
    let omitted = f.recorded.omitted + all.len().saturating_sub(MAX_ERRORS) as u64;
    all.truncate(MAX_ERRORS);
    tracing::info!(
        plugin = name,
        "finished: {} in {:.3}s, {} files, {} errors, {} reads ({} failed)",
        status.as_str(),
        total.as_secs_f64(),
        f.files.len(),
        all.len() as u64 + omitted,
        reads_ok + reads_failed,
        reads_failed
    );

    PluginRecord {
        enabled: true,
        status,
        skip_reason: None,
        description: plugin.description().to_string(),
        start_time: Some(sos_time(f.start)),
        end_time: Some(sos_time(f.end)),
        run_time: Some(sos_duration(f.collect_elapsed)),
        setup_start: Some(sos_time(f.setup_start)),
        setup_end: Some(sos_time(f.setup_end)),
        setup_time: Some(sos_duration(f.setup_elapsed)),
        timeout: planned.timeout.map(|t| t.as_secs()),
        timeout_hit,
        duration_s: total.as_secs_f64(),
        options: planned.options.clone(),
        files: f.files,
        errors: all,
        errors_omitted: omitted,
        error_causes: f.recorded.causes,
    }
}

/// Runs every planned plugin in order, one at a time, and returns their records, by name.
pub fn run_all(
    kernel: &Arc<Kernel>,
    planned: &[Planned<'static>],
    sink: &mut dyn OutputSink,
    progress: &mut dyn FnMut(Progress<'_>),
) -> BTreeMap<String, PluginRecord> {
    run_all_threads(kernel, planned, 1, sink, progress)
}

/// Runs the planned plugins, up to `threads` at once (at least one), started in plan order and
/// recorded in plan order (files written to `sink`, progress reported), and returns their
/// records, by name. With one thread this is one plugin after the other.
pub fn run_all_threads(
    kernel: &Arc<Kernel>,
    planned: &[Planned<'static>],
    threads: usize,
    sink: &mut dyn OutputSink,
    progress: &mut dyn FnMut(Progress<'_>),
) -> BTreeMap<String, PluginRecord> {
    let total = planned.len();
    let threads = threads.max(1);
    let mut out = BTreeMap::new();
    let mut running = std::collections::VecDeque::with_capacity(threads);
    let mut next = planned.iter().enumerate();
    loop {
        while running.len() < threads {
            let Some((i, p)) = next.next() else {
                break;
            };
            let name = p.plugin.name();
            progress(Progress::Started {
                index: i,
                total,
                name,
            });
            tracing::info!(plugin = name, "starting plugin {}/{}", i + 1, total);
            running.push_back((i, p, start(kernel, p)));
        }
        let Some((i, p, started)) = running.pop_front() else {
            break;
        };
        let name = p.plugin.name();
        let record = finish(started, p, sink);
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
