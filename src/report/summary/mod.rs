//! The crash story first: `sos_reports/summary.txt` and `summary.json`, the verdict a person
//! reads in ten seconds, then what else deserves a look, each finding naming the archive file
//! that proves it.
//!
//! The summary is a reader of the archive, like any other consumer: it is built after the
//! plugins ran, from the JSON files they wrote (`plugins/<name>/*.json`) and the manifest's
//! plugin records, never from the kernel. A plugin that did not run or wrote nothing only
//! removes the findings it would have backed. The rules that classify the crash are in
//! [`verdict`], each with the kernel source of the string it matches; the rules that pick
//! findings are heuristics and are marked so in the output.

pub mod html;
pub mod render;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::report::manifest::{PluginRecord, PluginStatus};
pub use verdict::Kind;

/// Version of `summary.json`'s layout.
pub const SCHEMA: &str = "vmcore-report/summary/1";

pub const SYS_JSON: &str = "plugins/sys/sys.json";
pub const DMESG: &str = "sos_commands/kernel/dmesg";
pub const DMESG_JSON: &str = "plugins/dmesg/dmesg.json";
pub const BT_TXT: &str = "plugins/backtrace/bt.txt";
pub const BT_JSON: &str = "plugins/backtrace/backtrace.json";
pub const STACKS_TXT: &str = "plugins/backtrace/stacks.txt";
pub const TASKS_JSON: &str = "plugins/tasks/tasks.json";
pub const BLOCKED_TXT: &str = "plugins/tasks/blocked.txt";
pub const MODULES: &str = "proc/modules";
pub const MODULES_JSON: &str = "plugins/modules/modules.json";
pub const MEMINFO: &str = "proc/meminfo";
pub const MEMINFO_JSON: &str = "plugins/meminfo/meminfo.json";
pub const TAINTS_JSON: &str = "plugins/kernel_info/taints.json";
pub const MANIFEST: &str = "sos_reports/manifest.json";

/// Warnings of the log kept as findings (the last ones).
const LAST_WARNINGS: usize = 8;
/// Frames of the panic CPU's trace shown.
const PANIC_FRAMES: usize = 24;

/// The panicking task.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PanicTask {
    pub pid: Option<i64>,
    pub comm: Option<String>,
    pub cpu: Option<i64>,
}

/// What happened, in one block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub kind: Kind,
    pub description: &'static str,
    /// `panic()`'s message.
    pub panic_string: Option<String>,
    /// The log line that says what went wrong (the oops's first line, the hung-task or
    /// soft-lockup report, the warning's site).
    pub headline: Option<String>,
    pub task: PanicTask,
    /// Where it happened: the faulting function of an oops, else the function that called
    /// `panic()`; `function+off/size`.
    pub function: Option<String>,
    pub module: Option<String>,
    /// Where `function` came from: `backtrace` (the sys plugin's `panic.site`, placed on the
    /// panic CPU's unwound trace) or `log` (the oops's `RIP:`/`pc :` line).
    pub function_from: Option<&'static str>,
    /// Set when the backtrace and the log name different functions.
    pub disagreement: Option<String>,
    pub cites: Vec<&'static str>,
}

/// Something else that deserves a look.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub title: String,
    pub detail: Vec<String>,
    /// The archive files that prove it.
    pub cites: Vec<&'static str>,
    /// The finding is a rule of thumb, not a fact read from the dump.
    pub heuristic: bool,
}

/// A plugin that did not finish well.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginTrouble {
    pub plugin: String,
    pub status: String,
    pub errors: usize,
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub verdict: Verdict,
    /// The panic CPU's backtrace, `function+off/size [module]` per frame.
    pub panic_backtrace: Vec<String>,
    /// The oops/BUG/WARNING block of the log, as logged.
    pub oops_block: Vec<String>,
    pub findings: Vec<Finding>,
    pub plugins: Vec<PluginTrouble>,
}

/// Reads `rel` under the archive root as JSON; `None` when absent or not JSON.
fn json(root: &Path, rel: &str) -> Option<Value> {
    let text = std::fs::read(root.join(rel)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The text of a logged line without its `[    1.234567] ` prefix.
fn log_text(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, t)) => t,
        None => line,
    }
}

/// A frame of backtrace.json as `function+off/size [module]`.
fn frame_text(f: &Value) -> String {
    let sym = f["symbol"].as_str().unwrap_or("?");
    let mut t = if f["symbol"].is_string() {
        format!(
            "{sym}+{}/{}",
            f["offset"].as_str().unwrap_or("?"),
            f["size"].as_str().unwrap_or("?")
        )
    } else {
        format!("? {}", f["pc"].as_str().unwrap_or(""))
    };
    if let Some(m) = f["module"].as_str() {
        t.push_str(&format!(" [{m}]"));
    }
    if f["reliable"] == Value::Bool(false) {
        t.insert_str(0, "? ");
    }
    t
}

/// Builds the summary of the archive under `root`; `plugins` are the manifest's plugin records.
pub fn build(root: &Path, plugins: &BTreeMap<String, PluginRecord>) -> Summary {
    let sys = json(root, SYS_JSON);
    let dmesg = json(root, DMESG_JSON);
    let bt = json(root, BT_JSON);
    let panic = sys
        .as_ref()
        .map(|s| s["panic"].clone())
        .unwrap_or(Value::Null);

    // the log's text lines, in order
    let log: Vec<String> = dmesg
        .as_ref()
        .and_then(|d| d["records"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| s(&r["text"]))
        .collect();

    let panic_string = s(&panic["message"]).or_else(|| {
        log.iter().rev().find_map(|l| {
            l.strip_prefix("Kernel panic - not syncing: ")
                .map(|m| m.trim_end().to_string())
        })
    });
    let oops_block: Vec<String> = panic["last_oops"]
        .as_array()
        .map(|a| a.iter().filter_map(s).collect())
        .unwrap_or_default();
    let oops_texts: Vec<&str> = oops_block.iter().map(|l| log_text(l)).collect();
    let mut kind = match &panic_string {
        Some(m) => verdict::kind_of_panic(m),
        None if verdict::oops_went_to_kdump(panic["panic_cpu"].as_i64(), &oops_texts) => Kind::Oops,
        None => Kind::NoPanic,
    };
    if kind == Kind::Oops && oops_texts.iter().any(|t| t.starts_with("kernel BUG at ")) {
        kind = Kind::Bug;
    }

    let mut cites: Vec<&'static str> = Vec::new();
    if sys.is_some() {
        cites.push(SYS_JSON);
    }
    if dmesg.is_some() {
        cites.push(DMESG);
    }
    let mut task = PanicTask {
        pid: panic["task"]["pid"].as_i64(),
        comm: s(&panic["task"]["comm"]),
        cpu: panic["panic_cpu"].as_i64(),
    };

    // the headline and the task the log names
    let headline = match kind {
        Kind::Oops | Kind::Bug => oops_texts
            .iter()
            .find_map(|t| verdict::oops_headline(t))
            .map(str::to_string),
        Kind::HungTask => log
            .iter()
            .rev()
            .find(|l| verdict::hung_task_line(l).is_some())
            .cloned(),
        Kind::SoftLockup => log
            .iter()
            .rev()
            .find(|l| verdict::soft_lockup_line(l).is_some())
            .cloned(),
        Kind::WarningAsPanic => log
            .iter()
            .rev()
            .find(|l| verdict::warning_site(l).is_some())
            .cloned(),
        _ => None,
    };

    // where: the log's RIP/pc line, and the backtrace
    let from_log = oops_texts.iter().find_map(|t| verdict::oops_location(t));
    let panic_trace = bt.as_ref().and_then(|b| {
        b["traces"]
            .as_array()?
            .iter()
            .find(|t| t["reason"] == "panic_cpu")
            .cloned()
    });
    // the sys plugin places the crash on the panic CPU's backtrace (kernel::stack::crash_site)
    let from_bt = s(&panic["site"]["function"]).map(|f| (f, s(&panic["site"]["module"])));
    let (function, module, function_from) = match (&from_bt, &from_log) {
        (Some((f, m)), _) => (Some(f.clone()), m.clone(), Some("backtrace")),
        (None, Some((f, m))) => (Some(f.clone()), m.clone(), Some("log")),
        (None, None) => (None, None, None),
    };
    let disagreement = match (&from_bt, &from_log) {
        (Some((b, _)), Some((l, _))) if b != l => Some(format!(
            "the backtrace names {b}, the oops's register line {l}"
        )),
        _ => None,
    };
    let panic_backtrace: Vec<String> = panic_trace
        .as_ref()
        .and_then(|t| t["frames"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .take(PANIC_FRAMES)
        .map(frame_text)
        .collect();
    if panic_trace.is_some() {
        cites.push(BT_TXT);
        if task.pid.is_none() {
            task.pid = panic_trace.as_ref().and_then(|t| t["task"]["pid"].as_i64());
            task.comm = panic_trace.as_ref().and_then(|t| s(&t["task"]["comm"]));
        }
    }

    let verdict = Verdict {
        kind,
        description: kind.describe(),
        panic_string,
        headline,
        task,
        function,
        module,
        function_from,
        disagreement,
        cites,
    };

    let mut findings = Vec::new();
    if let Some(f) = hung_task_finding(&log, bt.as_ref(), kind) {
        findings.push(f);
    }
    findings.extend(blocked_finding(root, bt.as_ref()));
    findings.extend(busy_cpus_finding(bt.as_ref()));
    findings.extend(taint_findings(root));
    findings.extend(memory_findings(root));
    let mut known: Vec<&str> = oops_texts.clone();
    if let Some(h) = &verdict.headline {
        known.push(h);
    }
    findings.extend(warnings_finding(&log, &known));

    let plugins = plugins
        .iter()
        .filter(|(_, r)| r.enabled && r.status != PluginStatus::Ok)
        .map(|(n, r)| PluginTrouble {
            plugin: n.clone(),
            status: r.status.as_str().to_string(),
            errors: r.errors.len() + r.errors_omitted as usize,
        })
        .collect();

    Summary {
        schema: SCHEMA,
        verdict,
        panic_backtrace,
        oops_block,
        findings,
        plugins,
    }
}

fn hung_task_finding(log: &[String], bt: Option<&Value>, kind: Kind) -> Option<Finding> {
    let lines: Vec<(String, i64, u64)> = log
        .iter()
        .filter_map(|l| verdict::hung_task_line(l))
        .collect();
    let (comm, pid, secs) = lines.last()?.clone();
    let mut detail = vec![format!(
        "{comm} (pid {pid}) was blocked for more than {secs} s when the hung-task detector reported it{}",
        if kind == Kind::HungTask {
            " and panicked"
        } else {
            ""
        }
    )];
    let mut cites = vec![DMESG];
    let trace = bt.and_then(|b| {
        b["traces"]
            .as_array()?
            .iter()
            .find(|t| t["task"]["pid"].as_i64() == Some(pid))
            .cloned()
    });
    if let Some(t) = trace {
        detail.push("its stack:".to_string());
        detail.extend(
            t["frames"]
                .as_array()
                .into_iter()
                .flatten()
                .take(PANIC_FRAMES)
                .map(|f| format!("  {}", frame_text(f))),
        );
        cites.push(BT_TXT);
    }
    if lines.len() > 1 {
        detail.push(format!("{} hung-task reports in the log", lines.len()));
    }
    Some(Finding {
        title: format!("hung task: {comm} (pid {pid})"),
        detail,
        cites,
        heuristic: false,
    })
}

/// Tasks in D state grouped by identical stack, with the longest wait.
fn blocked_finding(root: &Path, bt: Option<&Value>) -> Option<Finding> {
    let tasks = json(root, TASKS_JSON);
    let blocked = tasks
        .as_ref()
        .and_then(|t| t["blocked"].as_array().cloned())
        .unwrap_or_default();
    if blocked.is_empty() {
        return None;
    }
    let longest = blocked
        .iter()
        .filter_map(|b| Some((b["since_last_switch_s"].as_f64()?, b)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut detail = Vec::new();
    if let Some((secs, b)) = longest {
        detail.push(format!(
            "longest wait: {} (pid {}), {secs:.0} s since it last ran",
            b["comm"].as_str().unwrap_or("?"),
            b["pid"]
        ));
    }
    let mut cites = vec![BLOCKED_TXT];
    let groups: Vec<&Value> = bt
        .and_then(|b| b["groups"].as_array())
        .into_iter()
        .flatten()
        .filter(|g| g["states"]["D"].as_u64().unwrap_or(0) > 0)
        .collect();
    for g in groups.iter().take(5) {
        let sig: Vec<&str> = g["signature"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take(6)
            .collect();
        detail.push(format!(
            "{} task(s) in D with the stack {}",
            g["states"]["D"],
            sig.join(" < ")
        ));
    }
    if !groups.is_empty() {
        cites.push(STACKS_TXT);
    }
    Some(Finding {
        title: format!(
            "{} task(s) blocked in uninterruptible sleep (D)",
            blocked.len()
        ),
        detail,
        cites,
        heuristic: false,
    })
}

/// CPUs whose current task is not their idle task.
fn busy_cpus_finding(bt: Option<&Value>) -> Option<Finding> {
    let traces = bt?["traces"].as_array()?;
    let busy: Vec<String> = traces
        .iter()
        .filter(|t| {
            t["task"]["running"] == Value::Bool(true) && t["task"]["is_idle"] == Value::Bool(false)
        })
        .map(|t| {
            let top = t["frames"]
                .as_array()
                .and_then(|f| f.first())
                .map(frame_text)
                .unwrap_or_else(|| "no trace".into());
            format!(
                "CPU {}: {} (pid {}) at {top}{}",
                t["task"]["cpu"],
                t["task"]["comm"].as_str().unwrap_or("?"),
                t["task"]["pid"],
                if t["task"]["is_panic"] == Value::Bool(true) {
                    " (the panic CPU)"
                } else {
                    ""
                }
            )
        })
        .collect();
    if busy.is_empty() {
        return None;
    }
    Some(Finding {
        title: format!("{} CPU(s) were running a task other than idle", busy.len()),
        detail: busy,
        cites: vec![BT_TXT],
        heuristic: false,
    })
}

/// Taint flags with their meaning, and the modules that set the module taints.
fn taint_findings(root: &Path) -> Option<Finding> {
    let t = json(root, TAINTS_JSON)?;
    let flags = t["flags"].as_array()?;
    if flags.is_empty() {
        return None;
    }
    let mut detail: Vec<String> = flags
        .iter()
        .map(|f| {
            let letter = f["letter"].as_str().unwrap_or("?");
            let name = f["name"].as_str().unwrap_or("?");
            format!("{letter} {name}: {}", taint_meaning(name))
        })
        .collect();
    let mut cites = vec![TAINTS_JSON];
    let modules = json(root, MODULES_JSON);
    let tainting: Vec<String> = modules
        .as_ref()
        .and_then(|m| m["modules"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|m| m["taint_letters"].as_str().is_some_and(|l| !l.is_empty()))
        .map(|m| {
            format!(
                "{}({})",
                m["name"].as_str().unwrap_or("?"),
                m["taint_letters"].as_str().unwrap_or("")
            )
        })
        .collect();
    if !tainting.is_empty() {
        detail.push(format!("modules that taint: {}", tainting.join(", ")));
        cites.push(MODULES);
    }
    Some(Finding {
        title: format!(
            "the kernel is tainted: {}",
            t["string"].as_str().unwrap_or("").trim_end()
        ),
        detail,
        cites,
        heuristic: false,
    })
}

/// What a taint flag means (Documentation/admin-guide/tainted-kernels.rst).
fn taint_meaning(name: &str) -> &'static str {
    match name {
        "PROPRIETARY_MODULE" => "a proprietary module was loaded",
        "FORCED_MODULE" => "a module was force-loaded",
        "CPU_OUT_OF_SPEC" => "an SMP kernel on hardware not certified for it, or a CPU out of spec",
        "FORCED_RMMOD" => "a module was force-unloaded",
        "MACHINE_CHECK" => "a machine check exception occurred",
        "BAD_PAGE" => "a bad page was referenced or some unexpected page flags seen",
        "USER" => "taint requested by userspace",
        "DIE" => "the kernel died recently (an OOPS or BUG)",
        "OVERRIDDEN_ACPI_TABLE" => "an ACPI table was overridden",
        "WARN" => "a kernel warning occurred",
        "CRAP" => "a staging driver was loaded",
        "FIRMWARE_WORKAROUND" => "a workaround for a platform firmware bug was applied",
        "OOT_MODULE" => "an externally built (out-of-tree) module was loaded",
        "UNSIGNED_MODULE" => "an unsigned module was loaded",
        "SOFTLOCKUP" => "a soft lockup occurred",
        "LIVEPATCH" => "the kernel was live patched",
        "AUX" => "an auxiliary taint, defined by distributions",
        "RANDSTRUCT" => "the kernel was built with the struct randomization plugin",
        "TEST" => "a kernel test ran",
        _ => "see Documentation/admin-guide/tainted-kernels.rst",
    }
}

/// Memory pressure signs in /proc/meminfo: rules of thumb.
fn memory_findings(root: &Path) -> Option<Finding> {
    let m = json(root, MEMINFO_JSON)?;
    let kb: BTreeMap<String, u64> = m["lines"]
        .as_array()?
        .iter()
        .filter_map(|l| Some((s(&l["key"])?, l["value"].as_u64()?)))
        .collect();
    let total = *kb.get("MemTotal")?;
    let mut detail = Vec::new();
    if let Some(&avail) = kb.get("MemAvailable")
        && total > 0
        && avail * 100 < total * 5
    {
        detail.push(format!(
            "MemAvailable {avail} kB is under 5% of MemTotal {total} kB"
        ));
    }
    if let (Some(&st), Some(&sf)) = (kb.get("SwapTotal"), kb.get("SwapFree"))
        && st > 0
        && sf * 10 < st
    {
        detail.push(format!(
            "SwapFree {sf} kB is under 10% of SwapTotal {st} kB"
        ));
    }
    if let (Some(&c), Some(&l)) = (kb.get("Committed_AS"), kb.get("CommitLimit"))
        && c > l
    {
        detail.push(format!(
            "Committed_AS {c} kB exceeds CommitLimit {l} kB (matters with vm.overcommit_memory=2)"
        ));
    }
    if let (Some(&sl), true) = (kb.get("SUnreclaim"), total > 0)
        && sl * 100 > total * 30
    {
        detail.push(format!(
            "SUnreclaim {sl} kB is over 30% of MemTotal (a slab leak?)"
        ));
    }
    if detail.is_empty() {
        return None;
    }
    Some(Finding {
        title: "signs of memory pressure".to_string(),
        detail,
        cites: vec![MEMINFO],
        heuristic: true,
    })
}

/// The last warnings of the log, found by the kernel's own markers (`WARNING:`, `BUG:`,
/// `INFO:`, `watchdog:`, `rcu: INFO:`, `Out of memory`), the lines the verdict already shows
/// (`known`: the oops block, the headline) left out.
fn warnings_finding(log: &[String], known: &[&str]) -> Option<Finding> {
    const MARKERS: [&str; 6] = [
        "WARNING:",
        "BUG:",
        "INFO: ",
        "watchdog: ",
        "rcu: INFO:",
        "Out of memory",
    ];
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| MARKERS.iter().any(|m| l.starts_with(m)) && !known.contains(&l.as_str()))
        .collect();
    if warnings.is_empty() {
        return None;
    }
    let start = warnings.len().saturating_sub(LAST_WARNINGS);
    Some(Finding {
        title: format!("{} warning line(s) in the kernel log", warnings.len()),
        detail: warnings[start..].iter().map(|l| l.to_string()).collect(),
        cites: vec![DMESG],
        heuristic: true,
    })
}
