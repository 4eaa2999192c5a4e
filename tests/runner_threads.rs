//! Plugins at once (`--threads`, `runner::run_all_threads`): the archive's files are written and
//! the records made in plan order whatever finishes first; each plugin keeps its own deadline and
//! its own read counts. The plugins here are defined by the test (sleeps, reads, writes), on the
//! synthetic kernel of tests/common/kernel.rs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmcore_report::addr::VirtAddr;
use vmcore_report::kernel::Kernel;
use vmcore_report::report::manifest::{PluginRecord, PluginStatus};
use vmcore_report::report::plugin::{OutputSink, Plugin, PluginContext, PluginError};
use vmcore_report::report::runner::{self, Planned, Progress};

/// Keeps what plugins write, in the order it was written.
#[derive(Default)]
struct OrderSink {
    writes: Vec<(String, Vec<u8>)>,
}

impl OutputSink for OrderSink {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.writes.push((path.to_string(), data.to_vec()));
        Ok(())
    }
}

/// Sleeps, then writes two files named after itself.
struct Naps(&'static str, u64);
impl Plugin for Naps {
    fn name(&self) -> &'static str {
        self.0
    }
    fn description(&self) -> &'static str {
        "sleeps, then writes"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        std::thread::sleep(Duration::from_millis(self.1));
        ctx.write_text("a.txt", self.0)?;
        ctx.write_text("b.txt", &self.1.to_string())
    }
}

/// Reads mapped kernel memory until its deadline.
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
            ctx.kernel.read_u64(VirtAddr(0x1000))?;
        }
    }
}

/// Waits (ms), then reads mapped memory `n` times, each read checked, and writes how it went.
struct ReadsLater(u64, u64);
impl Plugin for ReadsLater {
    fn name(&self) -> &'static str {
        "reads_later"
    }
    fn description(&self) -> &'static str {
        "reads after another plugin's deadline passed"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        std::thread::sleep(Duration::from_millis(self.0));
        for _ in 0..self.1 {
            ctx.kernel.read_u64(VirtAddr(0x1000))?;
        }
        ctx.write_text("reads_later.txt", "all read\n")
    }
}

/// Every read fails (an unmapped address); writes a file, so only its reads make it `empty`.
struct ReadsUnmapped;
impl Plugin for ReadsUnmapped {
    fn name(&self) -> &'static str {
        "reads_unmapped"
    }
    fn description(&self) -> &'static str {
        "every read fails"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        for _ in 0..50 {
            if let Err(e) = ctx.kernel.read_u64(VirtAddr(0xdead_0000_0000)) {
                ctx.record_error(PluginError::new("unreadable", e.to_string()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        ctx.write_text("tried.txt", "tried\n")
    }
}

fn k() -> Arc<Kernel> {
    Arc::new(common::kernel::kernel(&common::kernel::Spec::default()))
}

fn planned(p: &'static dyn Plugin, timeout: Option<Duration>) -> Planned<'static> {
    Planned {
        plugin: p,
        options: BTreeMap::new(),
        timeout,
    }
}

/// A record without what depends on timing.
fn timeless(r: &PluginRecord) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {}",
        r.status, r.files, r.errors, r.timeout, r.timeout_hit, r.errors_omitted
    )
}

#[test]
fn files_and_records_keep_the_plan_order_whatever_finishes_first() {
    static PLUGINS: [Naps; 5] = [
        Naps("slow", 300),
        Naps("quick", 1),
        Naps("middle", 120),
        Naps("quicker", 0),
        Naps("last", 60),
    ];
    let plan: Vec<Planned> = PLUGINS.iter().map(|p| planned(p, None)).collect();
    let kernel = k();
    let mut results = Vec::new();
    for threads in [1, 2, 4, 8] {
        let mut sink = OrderSink::default();
        let mut events = Vec::new();
        let t0 = Instant::now();
        let recs = runner::run_all_threads(&kernel, &plan, threads, &mut sink, &mut |ev| {
            events.push(match ev {
                Progress::Started { index, .. } => format!("start {index}"),
                Progress::Finished { index, .. } => format!("finish {index}"),
            })
        });
        let took = t0.elapsed();
        let finished: Vec<_> = events.iter().filter(|e| e.starts_with("finish")).collect();
        assert_eq!(
            finished,
            ["finish 0", "finish 1", "finish 2", "finish 3", "finish 4"],
            "threads {threads}"
        );
        let records: Vec<_> = recs.iter().map(|(n, r)| (n.clone(), timeless(r))).collect();
        // each plugin's time is its own, not its wait to be recorded behind the slow one
        assert!(
            recs["quick"].duration_s < 0.2,
            "threads {threads}: {}",
            recs["quick"].duration_s
        );
        if threads >= 4 {
            // 300 + 1 + 120 + 0 + 60 ms one after the other; at once the slow one alone
            assert!(
                took < Duration::from_millis(470),
                "threads {threads}: {took:?}"
            );
        }
        results.push((threads, sink.writes, records));
    }
    let first_writes = &results[0].1;
    let names: Vec<&str> = first_writes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["slow", "quick", "middle", "quicker", "last"]
            .iter()
            .flat_map(|p| [format!("plugins/{p}/a.txt"), format!("plugins/{p}/b.txt")])
            .collect::<Vec<_>>()
    );
    for (threads, writes, records) in &results[1..] {
        assert_eq!(
            writes, first_writes,
            "threads {threads}: write order or content"
        );
        assert_eq!(records, &results[0].2, "threads {threads}: records");
    }
}

#[test]
fn each_plugin_keeps_its_own_deadline() {
    let kernel = k();
    let plan = vec![
        planned(&Spins, Some(Duration::from_millis(100))),
        planned(&ReadsLater(300, 1000), Some(Duration::from_secs(60))),
    ];
    let mut sink = OrderSink::default();
    let t = Instant::now();
    let recs = runner::run_all_threads(&kernel, &plan, 2, &mut sink, &mut |_| {});
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let s = &recs["spins"];
    assert_eq!(s.status, PluginStatus::TimedOut);
    assert!(s.timeout_hit);
    assert_eq!(s.errors.last().map(|e| e.code.as_str()), Some("timed-out"));
    // it read after the spinner's deadline had passed, on its own thread: every read succeeded
    let r = &recs["reads_later"];
    assert_eq!(r.status, PluginStatus::Ok, "{:?}", r.errors);
    assert!(!r.timeout_hit);
    // and this thread (the runner's) has no deadline either
    assert!(kernel.read_u64(VirtAddr(0x1000)).is_ok());
}

#[test]
fn each_plugin_keeps_its_own_read_counts() {
    // the unmapped reader's reads all fail while the other reads successfully at the same
    // time: counted per plugin it is `empty` (every one of its reads failed), the other `ok`
    let kernel = k();
    let plan = vec![
        planned(&ReadsUnmapped, None),
        planned(&ReadsLater(0, 100_000), None),
    ];
    for threads in [1, 2] {
        let mut sink = OrderSink::default();
        let recs = runner::run_all_threads(&kernel, &plan, threads, &mut sink, &mut |_| {});
        assert_eq!(
            recs["reads_unmapped"].status,
            PluginStatus::Empty,
            "threads {threads}: {:?}",
            recs["reads_unmapped"].errors
        );
        assert_eq!(
            recs["reads_later"].status,
            PluginStatus::Ok,
            "threads {threads}"
        );
    }
}
