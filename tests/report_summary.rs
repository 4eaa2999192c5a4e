//! The summary over hand-written archive trees (the files the plugins would write, written here
//! by hand, not by the plugins): the verdict's kind, the panicking function from the sys
//! plugin's `panic.site` or from the oops's register line, their disagreement, the findings and
//! what they cite, and a tree without the plugins' files. (Where a trace places the crash is
//! `kernel::stack::crash_site`, tested in src/kernel/stack/site.rs.)

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use vmcore_report::report::manifest::{PluginRecord, PluginStatus};
use vmcore_report::report::select::SkipReason;
use vmcore_report::report::summary::{self, Kind};

fn write(root: &Path, rel: &str, v: &Value) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_vec(v).unwrap()).unwrap();
}

fn frame(sym: &str, off: &str, size: &str, module: Option<&str>, interrupted: bool) -> Value {
    json!({"index": 0, "pc": "0xffffffff81000000", "sp": "0xffffc90000000000", "cfa": null,
           "symbol": sym, "offset": off, "size": size, "module": module, "source": null,
           "inlined": [], "interrupted": interrupted, "reliable": true, "method": "orc",
           "stack": "task", "regs": null})
}

fn dmesg(lines: &[&str]) -> Value {
    json!({"records": lines.iter().map(|l| json!({"text": l})).collect::<Vec<_>>()})
}

fn trace(pid: i64, comm: &str, reason: &str, frames: Vec<Value>) -> Value {
    json!({"task": {"addr": "0x1", "pid": pid, "tgid": pid, "comm": comm, "state": "R",
                    "cpu": 1, "running": reason != "blocked", "is_panic": reason == "panic_cpu",
                    "is_idle": false},
           "reason": reason, "start": "prstatus", "complete": true,
           "stop": {"kind": "end_of_stack"}, "error": null, "frames": frames})
}

fn no_plugins() -> BTreeMap<String, PluginRecord> {
    BTreeMap::new()
}

#[test]
fn an_oops_is_placed_where_the_sys_plugin_places_it() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "plugins/sys/sys.json",
        &json!({"panic": {
        "message": "Fatal exception", "panic_cpu": 1,
        "task": {"pid": 7, "comm": "insmod", "cpu": 1},
        "site": {"function": "bad_func+0x20/0x30", "module": "badmod", "frame": 5, "pc": "0x1"},
        "last_oops": ["[    5.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000",
                      "[    5.000001] RIP: 0010:bad_func+0x20/0x30 [badmod]",
                      "[    5.000002] RIP: 0033:0x47b7a0"]}}),
    );
    write(
        r,
        "plugins/dmesg/dmesg.json",
        &dmesg(&["Kernel panic - not syncing: Fatal exception"]),
    );
    write(
        r,
        "plugins/backtrace/backtrace.json",
        &json!({"traces": [trace(7, "insmod", "panic_cpu", vec![
        frame("delay_tsc", "0x2c", "0x60", None, true),
        frame("panic", "0x13b", "0x2f0", None, false),
        frame("oops_end", "0x80", "0xb0", None, false),
        frame("exc_page_fault", "0x70", "0x160", None, false),
        frame("asm_exc_page_fault", "0x26", "0x30", None, false),
        frame("bad_func", "0x20", "0x30", Some("badmod"), true),
        frame("full_proxy_write", "0x53", "0x80", None, false),
    ])], "groups": []}),
    );
    let s = summary::build(r, &no_plugins());
    let v = &s.verdict;
    assert_eq!(v.kind, Kind::Oops);
    assert_eq!(v.panic_string.as_deref(), Some("Fatal exception"));
    assert_eq!(
        v.headline.as_deref(),
        Some("BUG: kernel NULL pointer dereference, address: 0000000000000000")
    );
    assert_eq!(v.function.as_deref(), Some("bad_func+0x20/0x30"));
    assert_eq!(v.module.as_deref(), Some("badmod"));
    assert_eq!(v.function_from, Some("backtrace"));
    assert_eq!(
        v.disagreement, None,
        "the log's RIP line names the same place"
    );
    assert_eq!((v.task.pid, v.task.cpu), (Some(7), Some(1)));
    assert_eq!(s.panic_backtrace[5], "bad_func+0x20/0x30 [badmod]");
    assert!(v.cites.contains(&"plugins/backtrace/bt.txt"));
    // the panic CPU ran a task: a finding
    assert!(s.findings.iter().any(|f| f.title.starts_with("1 CPU(s)")));
}

/// An oops with a capture kernel loaded: `oops_end()` kexecs before `panic()`, so there is no
/// panic message, but `crash_kexec()` set `panic_cpu` and the log's last report is the oops.
#[test]
fn an_oops_taken_to_kdump_without_a_panic_is_an_oops() {
    let oops = [
        "[   27.602719] BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "[   27.603515] Oops: 0002 [#1] PREEMPT SMP NOPTI",
        "[   27.603967] RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]",
    ];
    for (panic_cpu, kind) in [(json!(1), Kind::Oops), (json!(-1), Kind::NoPanic)] {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "plugins/sys/sys.json",
            &json!({"panic": {"message": null, "panic_cpu": panic_cpu, "last_oops": oops}}),
        );
        write(r, "plugins/dmesg/dmesg.json", &dmesg(&oops));
        let v = summary::build(r, &no_plugins()).verdict;
        assert_eq!(v.kind, kind, "panic_cpu {panic_cpu}");
        assert_eq!(v.panic_string, None);
        assert_eq!(
            v.headline.is_some(),
            kind == Kind::Oops,
            "panic_cpu {panic_cpu}: {:?}",
            v.headline
        );
        // the place comes from the oops's register line either way
        assert_eq!(v.function.as_deref(), Some("trigger_write+0x20/0x30"));
        assert_eq!(v.module.as_deref(), Some("fixture_oops"));
    }
}

#[test]
fn a_disagreeing_backtrace_is_said_and_the_log_is_the_fallback() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "plugins/sys/sys.json",
        &json!({"panic": {
        "message": "Fatal exception",
        "last_oops": ["[    5.0] kernel BUG at mm/slub.c:379!",
                      "[    5.1] RIP: 0010:kfree+0x20/0x30"]}}),
    );
    let s = summary::build(r, &no_plugins());
    assert_eq!(s.verdict.kind, Kind::Bug);
    assert_eq!(s.verdict.function.as_deref(), Some("kfree+0x20/0x30"));
    assert_eq!(s.verdict.function_from, Some("log"));

    write(
        r,
        "plugins/sys/sys.json",
        &json!({"panic": {
        "message": "Fatal exception",
        "site": {"function": "kmalloc+0x5/0x40", "module": null, "frame": 2, "pc": "0x1"},
        "last_oops": ["[    5.0] kernel BUG at mm/slub.c:379!",
                      "[    5.1] RIP: 0010:kfree+0x20/0x30"]}}),
    );
    let s = summary::build(r, &no_plugins());
    assert_eq!(s.verdict.function.as_deref(), Some("kmalloc+0x5/0x40"));
    assert_eq!(s.verdict.function_from, Some("backtrace"));
    assert_eq!(
        s.verdict.disagreement.as_deref(),
        Some("the backtrace names kmalloc+0x5/0x40, the oops's register line kfree+0x20/0x30")
    );
}

#[test]
fn a_panic_names_the_site_and_the_panic_cpus_task() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "plugins/sys/sys.json",
        &json!({"panic": {"message": "sysrq triggered crash",
            "site": {"function": "sysrq_handle_crash+0x16/0x20", "module": null, "frame": 3,
                     "pc": "0x1"}}}),
    );
    write(
        r,
        "plugins/backtrace/backtrace.json",
        &json!({"traces": [trace(99, "bash", "panic_cpu", vec![
        frame("native_safe_halt", "0xe", "0x10", None, true),
        frame("panic", "0x13b", "0x2f0", None, false),
        frame("dump_stack_lvl", "0x1", "0x10", None, false),
        frame("sysrq_handle_crash", "0x16", "0x20", None, false),
        frame("__handle_sysrq", "0x9e", "0x1c0", None, false),
    ])], "groups": []}),
    );
    let s = summary::build(r, &no_plugins());
    assert_eq!(s.verdict.kind, Kind::Sysrq);
    assert_eq!(
        s.verdict.function.as_deref(),
        Some("sysrq_handle_crash+0x16/0x20")
    );
    assert_eq!(
        (s.verdict.task.pid, s.verdict.task.comm.as_deref()),
        (Some(99), Some("bash"))
    );
}

#[test]
fn a_hung_task_is_named_with_its_stack_and_the_blocked_groups() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "plugins/sys/sys.json",
        &json!({"panic": {"message": "hung_task: blocked tasks"}}),
    );
    write(
        r,
        "plugins/dmesg/dmesg.json",
        &dmesg(&[
            "INFO: task touch:124 blocked for more than 2 seconds.",
            "      Tainted: G           O       6.1.0 #1",
            "Kernel panic - not syncing: hung_task: blocked tasks",
            "WARNING: CPU: 0 PID: 5 at fs/x.c:1 f+0x1/0x2",
        ]),
    );
    write(
        r,
        "plugins/tasks/tasks.json",
        &json!({"blocked": [
        {"pid": 124, "comm": "touch", "since_last_switch_s": 4.0},
        {"pid": 125, "comm": "touch", "since_last_switch_s": 9.0}]}),
    );
    write(
        r,
        "plugins/backtrace/backtrace.json",
        &json!({
        "traces": [trace(124, "touch", "blocked", vec![
            frame("__schedule", "0x2f5", "0x8f0", None, true),
            frame("percpu_rwsem_wait", "0x110", "0x150", None, false)])],
        "groups": [{"signature": ["__schedule", "percpu_rwsem_wait"], "count": 2,
                    "pids": [124, 125], "states": {"D": 2}}]}),
    );
    let s = summary::build(r, &no_plugins());
    assert_eq!(s.verdict.kind, Kind::HungTask);
    assert_eq!(
        s.verdict.headline.as_deref(),
        Some("INFO: task touch:124 blocked for more than 2 seconds.")
    );
    let titles: Vec<&str> = s.findings.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "hung task: touch (pid 124)",
            "2 task(s) blocked in uninterruptible sleep (D)",
            "1 warning line(s) in the kernel log",
        ]
    );
    let hung = &s.findings[0];
    assert!(
        hung.detail
            .contains(&"  __schedule+0x2f5/0x8f0".to_string())
    );
    assert_eq!(
        hung.cites,
        vec!["sos_commands/kernel/dmesg", "plugins/backtrace/bt.txt"]
    );
    let blocked = &s.findings[1];
    assert_eq!(
        blocked.detail[0],
        "longest wait: touch (pid 125), 9 s since it last ran"
    );
    assert_eq!(
        blocked.detail[1],
        "2 task(s) in D with the stack __schedule < percpu_rwsem_wait"
    );
    assert!(s.findings[2].heuristic);
    // the headline is not repeated as a warning
    assert_eq!(
        s.findings[2].detail,
        vec!["WARNING: CPU: 0 PID: 5 at fs/x.c:1 f+0x1/0x2"]
    );
}

#[test]
fn without_the_plugins_files_there_is_no_invented_verdict() {
    let t = tempfile::tempdir().unwrap();
    let mut plugins = BTreeMap::new();
    let mut failed = PluginRecord::skipped("x", SkipReason::Skipped);
    failed.enabled = true;
    failed.status = PluginStatus::Failed;
    plugins.insert("sys".to_string(), failed);
    let s = summary::build(t.path(), &plugins);
    assert_eq!(s.verdict.kind, Kind::NoPanic);
    assert!(s.verdict.function.is_none() && s.verdict.cites.is_empty());
    assert!(s.findings.is_empty());
    assert_eq!(s.plugins.len(), 1);
    assert_eq!(s.plugins[0].status, "failed");
    let text = summary::render::summary_txt(&s);
    assert!(text.starts_with("VERDICT: no panic recorded"));
    assert!(text.contains("sys: failed, 0 error(s)"));
}

#[test]
fn memory_pressure_is_a_named_heuristic() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let line = |k: &str, v: u64| json!({"key": k, "value": v, "unit": "kb"});
    write(
        r,
        "plugins/meminfo/meminfo.json",
        &json!({"lines": [
        line("MemTotal", 1_000_000), line("MemAvailable", 20_000),
        line("SwapTotal", 0), line("SwapFree", 0)]}),
    );
    let s = summary::build(r, &no_plugins());
    let f = &s.findings[0];
    assert!(f.heuristic);
    assert_eq!(f.cites, vec!["proc/meminfo"]);
    assert_eq!(
        f.detail,
        vec!["MemAvailable 20000 kB is under 5% of MemTotal 1000000 kB"]
    );
}
