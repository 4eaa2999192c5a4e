//! The runner and plugin selection, at library level, on a kernel made from parts.
//!
//! Expected behaviour comes from sos's `load_plugins`/`_set_tunables` (sos/report/__init__.py)
//! and from the plugins' own definitions here, never from the code under test.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vmcore_report::kernel::Kernel;
use vmcore_report::report::manifest::PluginStatus;
use vmcore_report::report::plugin::{
    OptionValue, OutputSink, Plugin, PluginContext, PluginError, PluginOption,
};
use vmcore_report::report::runner::{self, Planned, Progress};
use vmcore_report::report::select::{self, Selection, SkipReason};

/// Keeps what plugins write.
#[derive(Default)]
struct MemSink {
    files: BTreeMap<String, Vec<u8>>,
}

impl OutputSink for MemSink {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.files.insert(path.to_string(), data.to_vec());
        Ok(())
    }
}

struct Writes;
impl Plugin for Writes {
    fn name(&self) -> &'static str {
        "writes"
    }
    fn description(&self) -> &'static str {
        "writes two files"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("a.txt", "a\n")?;
        ctx.write_archive_path("sys/kernel/debug/sched/debug", b"x\n")
    }
}

struct Fails;
impl Plugin for Fails {
    fn name(&self) -> &'static str {
        "fails"
    }
    fn description(&self) -> &'static str {
        "returns an error after writing one file"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("before.txt", "written before failing\n")?;
        Err(PluginError::new(
            "no-such-symbol",
            "symbol runqueues not found",
        ))
    }
}

struct Panics;
impl Plugin for Panics {
    fn name(&self) -> &'static str {
        "panics"
    }
    fn description(&self) -> &'static str {
        "panics"
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let v: Vec<u32> = Vec::new();
        // an out-of-bounds index, the typical plugin bug
        let i = v.len() + 3;
        let _ = v[i];
        Ok(())
    }
}

struct SetupFails;
impl Plugin for SetupFails {
    fn name(&self) -> &'static str {
        "setup_fails"
    }
    fn description(&self) -> &'static str {
        "fails in setup"
    }
    fn setup(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Err(PluginError::new("setup-broke", "cannot prepare"))
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("never.txt", "must not be written\n")
    }
}

struct Partial;
impl Plugin for Partial {
    fn name(&self) -> &'static str {
        "partial"
    }
    fn description(&self) -> &'static str {
        "records an error and goes on"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.record_error(PluginError::new("not-dumped", "page excluded"));
        ctx.write_text("rest.txt", "the rest\n")
    }
}

struct Sleeps(u64);
impl Plugin for Sleeps {
    fn name(&self) -> &'static str {
        "sleeps"
    }
    fn description(&self) -> &'static str {
        "sleeps"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        std::thread::sleep(Duration::from_millis(self.0));
        ctx.write_text("slept.txt", "awake\n")
    }
}

/// Reads kernel memory forever: only the kernel view's deadline stops it.
struct Spins;
impl Plugin for Spins {
    fn name(&self) -> &'static str {
        "spins"
    }
    fn description(&self) -> &'static str {
        "reads until the deadline"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        loop {
            ctx.kernel.read_u64(vmcore_report::addr::VirtAddr(0x1000))?;
        }
    }
}

struct EscapesArchive;
impl Plugin for EscapesArchive {
    fn name(&self) -> &'static str {
        "escapes"
    }
    fn description(&self) -> &'static str {
        "tries to write outside the archive"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("../../etc/passwd", "x")
    }
}

fn planned(p: &'static dyn Plugin, timeout: Option<Duration>) -> Planned<'static> {
    Planned {
        plugin: p,
        options: BTreeMap::new(),
        timeout,
    }
}

fn k() -> Arc<Kernel> {
    Arc::new(common::kernel::kernel(&common::kernel::Spec::default()))
}

#[test]
fn failing_and_panicking_plugins_are_recorded_and_the_run_goes_on() {
    let kernel = k();
    let plugins: Vec<&'static dyn Plugin> = vec![&Fails, &Panics, &SetupFails, &Writes];
    let plan: Vec<Planned> = plugins.iter().map(|p| planned(*p, None)).collect();
    let mut sink = MemSink::default();
    let mut started = Vec::new();
    let recs = runner::run_all(&kernel, &plan, &mut sink, &mut |ev| {
        if let Progress::Started { name, .. } = ev {
            started.push(name.to_string());
        }
    });
    assert_eq!(started, ["fails", "panics", "setup_fails", "writes"]);

    let fails = &recs["fails"];
    assert_eq!(fails.status, PluginStatus::Failed);
    assert_eq!(fails.errors.len(), 1);
    assert_eq!(fails.errors[0].code, "no-such-symbol");
    assert_eq!(fails.errors[0].phase, "collect");
    // what it wrote before failing is kept and listed
    assert_eq!(fails.files, ["plugins/fails/before.txt"]);

    let panics = &recs["panics"];
    assert_eq!(panics.status, PluginStatus::Failed);
    assert_eq!(panics.errors[0].code, "panic");
    assert!(
        panics.errors[0].message.contains("index out of bounds"),
        "{}",
        panics.errors[0].message
    );

    let setup = &recs["setup_fails"];
    assert_eq!(setup.status, PluginStatus::Failed);
    assert_eq!(setup.errors[0].phase, "setup");
    assert!(setup.files.is_empty());
    assert!(!sink.files.contains_key("plugins/setup_fails/never.txt"));

    // the plugin after all of them still ran, fully
    let w = &recs["writes"];
    assert_eq!(w.status, PluginStatus::Ok);
    assert_eq!(
        w.files,
        ["plugins/writes/a.txt", "sys/kernel/debug/sched/debug"]
    );
    assert_eq!(sink.files["plugins/writes/a.txt"], b"a\n");
    for r in recs.values() {
        assert!(r.enabled && r.start_time.is_some() && r.setup_time.is_some());
    }
}

#[test]
fn partial_results_are_partial() {
    let kernel = k();
    let mut sink = MemSink::default();
    let r = runner::run_one(&kernel, &planned(&Partial, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Partial);
    assert_eq!(r.errors[0].code, "not-dumped");
    assert_eq!(r.files, ["plugins/partial/rest.txt"]);
}

#[test]
fn overrunning_plugins_are_timed_out_and_the_next_runs() {
    let kernel = k();
    let plan = vec![
        planned(&Sleeps(250), Some(Duration::from_millis(50))),
        planned(&Writes, Some(Duration::from_secs(60))),
    ];
    let mut sink = MemSink::default();
    let recs = runner::run_all(&kernel, &plan, &mut sink, &mut |_| {});
    let s = &recs["sleeps"];
    assert_eq!(s.status, PluginStatus::TimedOut);
    assert!(s.timeout_hit);
    assert!(s.duration_s >= 0.25, "{}", s.duration_s);
    assert_eq!(recs["writes"].status, PluginStatus::Ok);
    assert!(!recs["writes"].timeout_hit);
    assert_eq!(recs["writes"].timeout, Some(60));
    // within its time: not timed out
    let r = runner::run_one(
        &kernel,
        &planned(&Sleeps(10), Some(Duration::from_secs(5))),
        &mut sink,
    );
    assert_eq!(r.status, PluginStatus::Ok);
    // no timeout at all
    let r = runner::run_one(&kernel, &planned(&Sleeps(10), None), &mut sink);
    assert_eq!((r.status, r.timeout), (PluginStatus::Ok, None));
}

#[test]
fn the_deadline_stops_a_plugin_stuck_reading_the_dump() {
    let kernel = k();
    let mut sink = MemSink::default();
    let t = std::time::Instant::now();
    let plan = vec![
        planned(&Spins, Some(Duration::from_millis(100))),
        planned(&Writes, Some(Duration::from_secs(60))),
    ];
    let recs = runner::run_all(&kernel, &plan, &mut sink, &mut |_| {});
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let s = &recs["spins"];
    assert_eq!(s.status, PluginStatus::TimedOut);
    assert!(s.timeout_hit);
    assert_eq!(s.errors.last().map(|e| e.code.as_str()), Some("timed-out"));
    // the deadline was cleared: the next plugin reads and writes normally
    assert_eq!(recs["writes"].status, PluginStatus::Ok);
    assert!(
        kernel
            .read_u64(vmcore_report::addr::VirtAddr(0x1000))
            .is_ok()
    );
}

#[test]
fn paths_escaping_the_archive_are_refused_and_recorded() {
    let kernel = k();
    let mut sink = MemSink::default();
    let r = runner::run_one(&kernel, &planned(&EscapesArchive, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Failed);
    assert_eq!(r.errors[0].code, "bad-path");
    assert!(sink.files.is_empty());
}

/// Computes without reading the dump, then writes: only the runner's own wait can stop it.
struct Computes;
impl Plugin for Computes {
    fn name(&self) -> &'static str {
        "computes"
    }
    fn description(&self) -> &'static str {
        "spins without reading, then writes late.txt"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let until = std::time::Instant::now() + Duration::from_secs(6);
        let mut x = 1u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.rotate_left(5) ^ 0x9e37);
        }
        ctx.write_text("late.txt", &format!("{x}\n"))
    }
}

#[test]
fn a_plugin_computing_without_reads_is_abandoned_at_its_timeout() {
    let kernel = k();
    let mut sink = MemSink::default();
    let t = std::time::Instant::now();
    let plan = vec![
        planned(&Computes, Some(Duration::from_millis(200))),
        planned(&Writes, Some(Duration::from_secs(60))),
    ];
    let recs = runner::run_all(&kernel, &plan, &mut sink, &mut |_| {});
    let waited = t.elapsed();
    // the timeout plus the grace, well before the 6 s the plugin would take
    assert!(
        waited >= Duration::from_millis(200) + runner::TIMEOUT_GRACE,
        "{waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let c = &recs["computes"];
    assert_eq!(c.status, PluginStatus::TimedOut);
    assert!(c.timeout_hit);
    assert_eq!(c.errors.last().map(|e| e.code.as_str()), Some("timed-out"));
    assert!(c.files.is_empty());
    assert_eq!(recs["writes"].status, PluginStatus::Ok);
    // the abandoned thread finishes later; its file never reaches the sink
    std::thread::sleep(
        Duration::from_secs(6).saturating_sub(t.elapsed()) + Duration::from_millis(300),
    );
    assert!(
        !sink.files.keys().any(|p| p.starts_with("plugins/computes")),
        "{:?}",
        sink.files.keys()
    );
}

#[test]
fn a_context_refuses_writes_past_its_deadline() {
    let kernel = k();
    let mut sink = MemSink::default();
    let opts = BTreeMap::new();
    let past = std::time::Instant::now();
    let mut ctx = PluginContext::new(&kernel, "late", &opts, &mut sink).with_deadline(Some(past));
    let e = ctx.write_text("x.txt", "x").unwrap_err();
    assert_eq!(e.code, "timed-out");
    assert!(ctx.files().is_empty());
    drop(ctx);
    assert!(sink.files.is_empty());
}

/// Records `n` not-dumped errors at successive pages, then writes a file.
struct ManyMisses(u64);
impl Plugin for ManyMisses {
    fn name(&self) -> &'static str {
        "misses"
    }
    fn description(&self) -> &'static str {
        "records many errors of one kind and one of another"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        for i in 0..self.0 {
            let va = 0xffff_8880_0000_0000 + i * 0x1000;
            ctx.record_error(
                PluginError::new("not-dumped", format!("page at {va:#x} excluded")).at(va),
            );
        }
        ctx.record_error(PluginError::new("corrupt-data", "a list cycle"));
        ctx.write_text("out.txt", "what was read\n")
    }
}

#[test]
fn repeated_errors_are_counted_by_cause_and_bounded() {
    let kernel = k();
    let mut sink = MemSink::default();
    let r = runner::run_one(&kernel, &planned(&ManyMisses(250), None), &mut sink);
    assert_eq!(r.status, PluginStatus::Partial);
    assert_eq!(r.errors.len(), vmcore_report::report::manifest::MAX_ERRORS);
    assert_eq!(r.errors_omitted, 251 - 100);
    assert!(r.errors.iter().all(|e| e.code == "not-dumped"));
    assert_eq!(r.error_causes.len(), 2);
    let c = &r.error_causes[0];
    assert_eq!((c.code.as_str(), c.count), ("not-dumped", 250));
    assert_eq!(c.first_address, Some(0xffff_8880_0000_0000));
    assert_eq!(c.last_address, Some(0xffff_8880_0000_0000 + 249 * 0x1000));
    assert!(c.is_filtering());
    let d = &r.error_causes[1];
    assert_eq!((d.code.as_str(), d.count), ("corrupt-data", 1));
    assert_eq!((d.first_address, d.last_address), (None, None));
    assert!(!d.is_filtering());
}

/// Writes nothing.
struct Silent;
impl Plugin for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn description(&self) -> &'static str {
        "finishes without writing"
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Every read fails (an address the synthetic kernel does not map); writes its placeholders.
struct AllReadsFail;
impl Plugin for AllReadsFail {
    fn name(&self) -> &'static str {
        "blind"
    }
    fn description(&self) -> &'static str {
        "reads only unmapped memory"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        for i in 0..3u64 {
            if let Err(e) = ctx
                .kernel
                .read_u64(vmcore_report::addr::VirtAddr(0xdead_0000_0000 + i * 8))
            {
                ctx.record_error(e);
            }
        }
        ctx.write_text("unknown.txt", "?\n")
    }
}

#[test]
fn a_plugin_that_wrote_nothing_or_read_nothing_is_empty() {
    let kernel = k();
    let mut sink = MemSink::default();
    let r = runner::run_one(&kernel, &planned(&Silent, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Empty);
    assert!(r.status.is_failure());
    assert_eq!(r.errors.last().map(|e| e.code.as_str()), Some("empty"));
    let r = runner::run_one(&kernel, &planned(&AllReadsFail, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Empty, "{:?}", r.errors);
    assert!(
        r.errors
            .last()
            .unwrap()
            .message
            .contains("every one of its 3 reads"),
        "{:?}",
        r.errors
    );
    // no read at all is not "every read failed": judged by its errors and files
    let r = runner::run_one(&kernel, &planned(&Partial, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Partial);
}

/// A plugin whose selection traits are given by the table.
struct Sel {
    name: &'static str,
    default: bool,
    experimental: bool,
    applies: bool,
}
impl Plugin for Sel {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "selection test"
    }
    fn default_enabled(&self) -> bool {
        self.default
    }
    fn experimental(&self) -> bool {
        self.experimental
    }
    fn check_enabled(&self, _k: &Kernel) -> bool {
        self.applies
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn sel(only: &[&str], enable: &[&str], skip: &[&str], experimental: bool) -> Selection {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    Selection {
        only: v(only),
        enable: v(enable),
        skip: v(skip),
        experimental,
    }
}

#[test]
fn selection_follows_sos() {
    use SkipReason::*;
    let dflt = Sel {
        name: "dflt",
        default: true,
        experimental: false,
        applies: true,
    };
    let opt = Sel {
        name: "opt",
        default: false,
        experimental: false,
        applies: true,
    };
    let inact = Sel {
        name: "inact",
        default: true,
        experimental: false,
        applies: false,
    };
    let exp = Sel {
        name: "exp",
        default: true,
        experimental: true,
        applies: true,
    };
    let all: [&Sel; 4] = [&dflt, &opt, &inact, &exp];
    type Row = (
        &'static str,
        Selection,
        [Result<(), SkipReason>; 4], // dflt, opt, inact, exp
    );
    let table: Vec<Row> = vec![
        (
            "no flags: defaults run, optional/inactive/experimental do not",
            sel(&[], &[], &[], false),
            [Ok(()), Err(Optional), Err(Inactive), Err(Experimental)],
        ),
        (
            "--experimental turns experimental plugins into ordinary ones",
            sel(&[], &[], &[], true),
            [Ok(()), Err(Optional), Err(Inactive), Ok(())],
        ),
        (
            "-e enables optional and inactive ones",
            sel(&[], &["opt", "inact"], &[], false),
            [Ok(()), Ok(()), Ok(()), Err(Experimental)],
        ),
        (
            "-e names an experimental one",
            sel(&[], &["exp"], &[], false),
            [Ok(()), Err(Optional), Err(Inactive), Ok(())],
        ),
        (
            "-o runs only these and forces them on",
            sel(&["opt", "inact"], &[], &[], false),
            [Err(NotSpecified), Ok(()), Ok(()), Err(Experimental)],
        ),
        (
            "-o with a default one",
            sel(&["dflt"], &[], &[], false),
            [Ok(()), Err(Optional), Err(Inactive), Err(Experimental)],
        ),
        (
            "-o with --experimental",
            sel(&["dflt"], &[], &[], true),
            [Ok(()), Err(Optional), Err(Inactive), Err(NotSpecified)],
        ),
        (
            "-n wins over everything",
            sel(&["dflt"], &["opt"], &["dflt", "opt"], true),
            [Err(Skipped), Err(Skipped), Err(Inactive), Err(NotSpecified)],
        ),
        (
            "-n on a default one",
            sel(&[], &[], &["dflt"], false),
            [
                Err(Skipped),
                Err(Optional),
                Err(Inactive),
                Err(Experimental),
            ],
        ),
        (
            "-e and -o together: -o still limits",
            sel(&["dflt"], &["opt"], &[], false),
            [Ok(()), Err(NotSpecified), Err(Inactive), Err(Experimental)],
        ),
    ];
    for (what, s, want) in table {
        for (p, w) in all.iter().zip(want) {
            assert_eq!(
                select::decide(*p, &s, Some(p.applies)),
                w,
                "{what}: plugin {}",
                p.name
            );
        }
    }
    // without a dump (-l alone) applicability is unknown and counts as applicable
    assert_eq!(
        select::decide(&inact, &sel(&[], &[], &[], false), None),
        Ok(())
    );
}

#[test]
fn unknown_names_are_fatal_with_only_and_enable_and_a_warning_with_skip() {
    let known = ["dflt", "opt"];
    let e = select::check_names(&sel(&["nope"], &[], &[], false), &known).unwrap_err();
    assert_eq!(e.code(), "unknown-plugin");
    let msg = e.to_string();
    assert!(msg.contains("nope") && msg.contains("dflt, opt"), "{msg}");
    assert!(select::check_names(&sel(&[], &["nope"], &[], false), &known).is_err());
    let w = select::check_names(&sel(&[], &[], &["nope", "opt"], false), &known).unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("nope"));
}

struct WithOpts;
impl Plugin for WithOpts {
    fn name(&self) -> &'static str {
        "ps"
    }
    fn description(&self) -> &'static str {
        "options test"
    }
    fn options(&self) -> Vec<PluginOption> {
        vec![
            PluginOption {
                name: "threads",
                description: "list threads",
                default: OptionValue::Bool(false),
            },
            PluginOption {
                name: "max",
                description: "limit",
                default: OptionValue::Int(100),
            },
            PluginOption {
                name: "comm",
                description: "filter",
                default: OptionValue::Str(String::new()),
            },
        ]
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}

#[test]
fn plugin_options_follow_sos_rules() {
    let args = |l: &[&str]| -> Vec<select::OptionArg> {
        l.iter()
            .map(|a| select::parse_option_arg(a).unwrap())
            .collect()
    };
    let default = Some(Duration::from_secs(300));
    let r = select::resolve_options(
        &WithOpts,
        &args(&["ps.threads", "ps.max=7", "ps.comm=42", "other.x=1"]),
        default,
    )
    .unwrap();
    assert_eq!(r.values["threads"], OptionValue::Bool(true));
    assert_eq!(r.values["max"], OptionValue::Int(7));
    // a string option keeps the text even when it looks like a number
    assert_eq!(r.values["comm"], OptionValue::Str("42".into()));
    assert_eq!(r.timeout, default);

    let r = select::resolve_options(
        &WithOpts,
        &args(&["ps.threads=off", "ps.timeout=5"]),
        default,
    )
    .unwrap();
    assert_eq!(r.values["threads"], OptionValue::Bool(false));
    assert_eq!(r.values["max"], OptionValue::Int(100));
    assert_eq!(r.timeout, Some(Duration::from_secs(5)));
    let r = select::resolve_options(&WithOpts, &args(&["ps.timeout=0"]), default).unwrap();
    assert_eq!(r.timeout, None);

    let e = select::resolve_options(&WithOpts, &args(&["ps.nosuch=1"]), default).unwrap_err();
    assert_eq!(e.code(), "unknown-plugin-option");
    assert!(e.to_string().contains("threads, max, comm, timeout"), "{e}");
    let e = select::resolve_options(&WithOpts, &args(&["ps.max=lots"]), default).unwrap_err();
    assert_eq!(e.code(), "plugin-option-type");
    let e = select::resolve_options(&WithOpts, &args(&["ps.threads=7"]), default).unwrap_err();
    assert_eq!(e.code(), "plugin-option-type");

    for bad in ["nodot", ".x", "ps.", "ps.a.b=1", "=1"] {
        assert!(select::parse_option_arg(bad).is_err(), "{bad}");
    }
    let a = select::parse_option_arg("ps.comm=a=b.c").unwrap();
    assert_eq!(a.value, OptionValue::Str("a=b.c".into()));

    let w = select::unused_option_warnings(&args(&["ps.max=1", "gone.x", "gone.y"]), &["ps"]);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("gone"));
}

/// Runs in a child process (see the next test): a panicking plugin, with the real logger.
#[test]
fn panic_child() {
    if std::env::var_os("VMCORE_REPORT_PANIC_CHILD").is_none() {
        return;
    }
    let captured = vmcore_report::report::log::init(vmcore_report::report::log::Settings {
        verbosity: 0,
        quiet: true,
    });
    let kernel = k();
    let mut sink = MemSink::default();
    let r = runner::run_one(&kernel, &planned(&Panics, None), &mut sink);
    assert_eq!(r.status, PluginStatus::Failed);
    println!("SOSLOG<<{}>>", String::from_utf8_lossy(&captured.sos_log()));
}

#[test]
fn a_plugin_panic_goes_to_the_log_not_to_the_default_hook() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "panic_child", "--nocapture", "--test-threads=1"])
        .env("VMCORE_REPORT_PANIC_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let log = stdout
        .split("SOSLOG<<")
        .nth(1)
        .and_then(|s| s.split(">>").next())
        .unwrap_or_else(|| panic!("no log in {stdout}"));
    assert!(
        log.contains("ERROR: [plugin:panics] plugin panicked: index out of bounds"),
        "{log}"
    );
    // the default hook's "thread '…' panicked at …" never printed
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(!stdout.contains("panicked at"), "{stdout}");
}
