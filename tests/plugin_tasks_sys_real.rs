//! tasks and sys on the real fixture sets, every dump format, against what the live guest
//! printed before it crashed (`truth.txt`: busybox `ps -o pid,ppid,stat,comm`, `/proc/cmdline`,
//! `uname -a`, `/proc/version`, the CPU lists, and in sets built since the `---cmdlines---`
//! block, every process's command line, and since `---cpuinfo---`, `/proc/cpuinfo`) and against the console's panic lines (`console.log`).
//!
//! Run with `cargo test --release --test plugin_tasks_sys_real`.
//! busybox's ps has other columns than procps's, so fields are compared, not layouts (the layouts
//! are checked byte for byte by `plugin_tasks_render`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::fixtures;
use common::plugin_run::{open_kernel, run};
use serde_json::Value;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::plugins::sys::SysPlugin;
use vmcore_report::plugins::tasks::{PS_ALX, PS_AUX, PS_ELFL, TasksPlugin};

struct Truth {
    keys: BTreeMap<String, String>,
    /// pid → (ppid, stat, comm) from the busybox ps.
    ps: BTreeMap<i64, (i64, String, String)>,
    /// pid → command line, when the set has the block.
    cmdlines: Option<BTreeMap<i64, String>>,
    /// `/proc/cpuinfo`, when the set has the block.
    cpuinfo: Option<String>,
}

fn section<'a>(t: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("---{name}---\n");
    let start = t.find(&head)? + head.len();
    let end = t[start..]
        .find("\n---")
        .map_or(t.len(), |e| start + e + 1)
        .min(t.find("===FIXTURE-TRUTH-END===").unwrap_or(t.len()));
    Some(&t[start..end])
}

fn truth(dir: &Path) -> Truth {
    let t = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let keys = t
        .lines()
        .take_while(|l| !l.starts_with("---"))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut ps = BTreeMap::new();
    for l in section(&t, "ps").unwrap().lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 4
            && let (Ok(pid), Ok(ppid)) = (f[0].parse(), f[1].parse())
        {
            ps.insert(pid, (ppid, f[2].to_string(), f[3..].join(" ")));
        }
    }
    let cmdlines = section(&t, "cmdlines").map(|s| {
        s.lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(p, c)| Some((p.parse().ok()?, c.to_string())))
            .collect()
    });
    let cpuinfo = section(&t, "cpuinfo").map(String::from);
    Truth {
        keys,
        ps,
        cmdlines,
        cpuinfo,
    }
}

/// The console's last `CPU: n [UID: u ]PID: p Comm: c` line (the panic's dump_stack header).
fn console_panic_task(dir: &Path) -> (u32, i64, String) {
    let c = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let l = c
        .lines()
        .rfind(|l| l.contains(" PID: ") && l.contains(" Comm: "))
        .expect("a CPU/PID/Comm line on the console");
    let word_after = |k: &str| {
        let i = l.find(k).unwrap() + k.len();
        l[i..].split_whitespace().next().unwrap().to_string()
    };
    (
        word_after("CPU: ").parse().unwrap(),
        word_after("PID: ").parse().unwrap(),
        word_after("Comm: "),
    )
}

/// The console's panic message (after `Kernel panic - not syncing: `); `None` in a kdump set
/// crashed by an oops, where `oops_end()` went to the capture kernel before any `panic()`.
fn console_panic_message(dir: &Path) -> Option<String> {
    let c = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let p = "Kernel panic - not syncing: ";
    let m = c
        .lines()
        .find_map(|l| l.find(p).map(|i| l[i + p.len()..].trim_end().to_string()));
    let set = dir.file_name().unwrap().to_string_lossy();
    assert!(
        m.is_some() || (fixtures::is_kdump_set(&set) && fixtures::workload(dir) == "oops"),
        "{set}: a panic line on the console"
    );
    m
}

/// The console timestamp of the first `Kernel panic - not syncing` line (the crashing kernel's);
/// for an oops taken by kdump, which kexecs before `panic()` prints it, of the oops line.
fn panic_uptime(dir: &Path) -> f64 {
    let c = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let l = c
        .lines()
        .find(|l| l.contains("Kernel panic - not syncing"))
        .or_else(|| {
            let set = dir.file_name().unwrap_or_default().to_string_lossy();
            (fixtures::is_kdump_set(&set) && fixtures::workload(dir) == "oops")
                .then(|| c.lines().find(|l| l.contains("Oops:")))
                .flatten()
        })
        .expect("a panic line (or, for a kdump oops, an oops line) on the console");
    let ts = &l[l.find('[').unwrap() + 1..l.find(']').unwrap()];
    ts.trim().parse().unwrap()
}

/// The truth's `uptime:` (its first field, seconds since boot), printed beside `date_epoch`.
fn live_uptime(truth: &Truth) -> f64 {
    truth.keys["uptime"]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `task->comm` against busybox's comm, which for a workqueue worker is
/// `kworker/…-<workqueue>` (fs/proc's `wq_worker_comm()`), cut at 15 bytes, and the
/// workqueue part may have changed between the capture and the crash.
fn same_comm(ours: &str, live: &str) -> bool {
    ours == live || (ours.starts_with("kworker/") && live.starts_with(ours))
}

fn check_set(set: &str) {
    let Some(dir) = fixtures::set(set) else {
        return;
    };
    let truth = truth(&dir);
    let (cpu, pid, comm) = console_panic_task(&dir);
    let message = console_panic_message(&dir);
    let vm = Arc::new(Vmlinux::open(&dir.join("vmlinux")).unwrap());
    for dump in fixtures::dumps(&dir) {
        let name = dump.file_name().unwrap().to_string_lossy().into_owned();
        let k = open_kernel(&vm, &dump);

        // ---- tasks ----------------------------------------------------------------------------
        let (out, _errors) = run(&k, &TasksPlugin);
        let json: Value = serde_json::from_slice(&out.files["plugins/tasks/tasks.json"]).unwrap();
        let tasks = json["tasks"].as_array().unwrap();
        let by_pid: BTreeMap<i64, &Value> = tasks
            .iter()
            .filter(|t| !t["idle"].as_bool().unwrap())
            .map(|t| (t["pid"].as_i64().unwrap(), t))
            .collect();
        for (p, (ppid, stat, c)) in &truth.ps {
            // `ps` itself exited before the crash.
            if c == "ps" {
                continue;
            }
            let Some(t) = by_pid.get(p) else {
                // Only where the dump lost the task's page, and the report names the pid.
                let unreadable = json["unreadable"].as_array().unwrap();
                let named = format!("task pid {p} ");
                assert!(
                    name.starts_with("mdf.")
                        && unreadable
                            .iter()
                            .any(|u| u["error"].as_str().unwrap().contains(&named)),
                    "{set}/{name}: live pid {p} ({c}) missing and not reported: {unreadable:?}"
                );
                continue;
            };
            assert_eq!(
                t["ppid"].as_i64().unwrap(),
                *ppid,
                "{set}/{name}: ppid of {p}"
            );
            let ours = t["comm"].as_str().unwrap();
            assert!(
                same_comm(ours, c),
                "{set}/{name}: pid {p}: {ours:?} vs live {c:?}"
            );
            // A task blocked in D when the truth was printed stays blocked (the fs never thaws).
            if stat.starts_with('D') {
                assert_eq!(t["state"], "D", "{set}/{name}: pid {p} was in D");
                let blocked = json["blocked"].as_array().unwrap();
                assert!(
                    blocked.iter().any(|b| b["pid"].as_i64() == Some(*p)
                        && b["blocked_ns"].as_u64().is_some_and(|n| n > 1_000_000_000)),
                    "{set}/{name}: pid {p} listed as blocked for more than a second"
                );
            }
        }
        // Every process is a row of each ps file, with its pid and ppid in their columns.
        let alx = out.text(PS_ALX);
        let alx_rows: BTreeMap<i64, i64> = alx
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[2].parse().unwrap(), f[3].parse().unwrap())
            })
            .collect();
        let aux = out.text(PS_AUX);
        let elfl = out.text(PS_ELFL);
        for (p, (ppid, _, c)) in truth
            .ps
            .iter()
            .filter(|(p, (_, _, c))| c != "ps" && by_pid.contains_key(p))
        {
            assert_eq!(alx_rows.get(p), Some(ppid), "{set}/{name}: alx row of {p}");
            assert!(
                aux.lines()
                    .any(|l| l.split_whitespace().nth(1) == Some(&p.to_string())),
                "{set}/{name}: auxwwwm row of {p} ({c})"
            );
            assert!(
                elfl.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.get(3) == Some(&p.to_string().as_str()) && f.get(5) == f.get(3)
                }),
                "{set}/{name}: -elfL leader row of {p}"
            );
        }
        assert_eq!(out.links.get("ps").map(String::as_str), Some(PS_AUX));
        // Command lines: in full dumps the user pages are there (x86_64 walks user tables).
        let full = !name.starts_with("mdf.");
        if let Some(cmdlines) = &truth.cmdlines
            && full
            && set.starts_with("x86_64")
        {
            for (p, live) in cmdlines {
                let Some(t) = by_pid.get(p) else { continue };
                let args: Vec<&str> = t["cmdline"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{set}/{name}: no cmdline for {p}"))
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                assert_eq!(&args.join(" "), live, "{set}/{name}: cmdline of {p}");
            }
        }
        if full && set.starts_with("x86_64") {
            let init = by_pid[&1];
            assert!(
                init["cmdline"].as_array().is_some_and(|a| !a.is_empty()),
                "{set}/{name}: init's command line read from its user pages"
            );
        }

        // ---- sys ------------------------------------------------------------------------------
        let (out, _errors) = run(&k, &SysPlugin);
        let sys: Value = serde_json::from_slice(&out.files["plugins/sys/sys.json"]).unwrap();
        let panic = &sys["panic"];
        assert_eq!(
            panic["panic_cpu"].as_i64(),
            Some(i64::from(cpu)),
            "{set}/{name}"
        );
        assert_eq!(panic["task"]["pid"].as_i64(), Some(pid), "{set}/{name}");
        assert_eq!(
            panic["task"]["comm"].as_str(),
            Some(comm.as_str()),
            "{set}/{name}"
        );
        assert_eq!(
            panic["message"].as_str(),
            message.as_deref(),
            "{set}/{name}"
        );
        // The oops set died of an oops: its block starts at the console's `BUG:` line.
        if set.ends_with("-oops") {
            let block = panic["last_oops"].as_array().expect("an oops block");
            let first = block[0].as_str().unwrap();
            assert!(
                first.contains("BUG: kernel NULL pointer dereference"),
                "{first}"
            );
            assert!(block.iter().any(|l| l.as_str().unwrap().contains("Oops:")));
        }
        assert!(
            panic["registers"]["regs"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            "{set}/{name}: registers of the panicking CPU"
        );
        let key = |k: &str| format!("{}\n", truth.keys[k]);
        assert_eq!(out.text("proc/cmdline"), key("cmdline"), "{set}/{name}");
        assert_eq!(
            out.text("sos_commands/kernel/uname_-a"),
            key("uname"),
            "{set}/{name}"
        );
        assert_eq!(out.text("proc/version"), key("version"), "{set}/{name}");
        assert_eq!(
            out.text("proc/sys/kernel/hostname"),
            key("hostname"),
            "{set}/{name}"
        );
        // Taints only accumulate: an oops after the capture adds D (TAINT_DIE).
        let live: u64 = truth.keys["tainted"].parse().unwrap();
        let ours: u64 = out
            .text("proc/sys/kernel/tainted")
            .trim_end()
            .parse()
            .unwrap();
        assert_eq!(
            ours & live,
            live,
            "{set}/{name}: tainted {ours}, live {live}"
        );
        assert_eq!(
            out.text("sys/devices/system/cpu/possible"),
            key("cpus_possible"),
            "{set}/{name}"
        );
        let release = truth.keys["uname"].split(' ').nth(2).unwrap();
        assert_eq!(
            out.text("proc/sys/kernel/osrelease"),
            format!("{release}\n")
        );
        // The crash came as long after the truth's `date +%s` as the console's panic line
        // after the truth's uptime (seconds apart on fast guests, minutes on s390x TCG).
        let live: i64 = truth.keys["date_epoch"].parse().unwrap();
        let crash = sys["crash_time"].as_i64().unwrap();
        let expected = live + (panic_uptime(&dir) - live_uptime(&truth)).round() as i64;
        // Under TCG on a loaded host the console's clock (sched_clock) and the wall clock the
        // crash time comes from drift apart (74 s over 110 s seen on aarch64-5.10 built at a
        // load of 10-14): then the crash must at least lie between the truth and that bound.
        assert!(
            (crash - expected).abs() <= 3 || (live..=expected + 3).contains(&crash),
            "{set}/{name}: crash {crash}, live {live}, expected {expected}"
        );
        // /proc/cpuinfo, byte for byte, every line included: on x86_64 `cpu MHz` is `cpu_khz`
        // on these guests (QEMU TCG has no APERF/MPERF and the kernel no cpufreq driver) and
        // `bogomips` the per-CPU loops_per_jiffy, as the live kernel printed them; on arm64
        // BogoMIPS is the global loops_per_jiffy and the features elf_hwcap's.
        match out
            .files
            .get("proc/cpuinfo")
            .map(|b| String::from_utf8_lossy(b))
        {
            Some(ours) => match &truth.cpuinfo {
                Some(live) => assert_eq!(ours, live.as_str(), "{set}/{name}"),
                // sets built before the block: one stanza per CPU the guest ran
                None => assert_eq!(
                    ours.lines()
                        .filter(|l| l.starts_with("processor\t:"))
                        .count(),
                    truth.keys["nproc"].parse::<usize>().unwrap(),
                    "{set}/{name}"
                ),
            },
            // Only where makedumpfile left out a page the file needs (on 6.12, which bookworm's
            // makedumpfile does not know, it drops the page of CPU 0's cpu_core_map), and
            // sys.json says so; and on s390x, whose format the plugin does not write (yet).
            None => {
                let missing = sys["missing"].as_array().unwrap();
                let said = |what: &str| {
                    missing.iter().any(|m| {
                        let m = m.as_str().unwrap();
                        m.starts_with("cpuinfo:") && m.contains(what)
                    })
                };
                if set.starts_with("s390x") {
                    assert!(
                        said("x86_64 and arm64 kernels only"),
                        "{set}/{name}: {missing:?}"
                    );
                    eprintln!("NOTE: {set}/{name}: no proc/cpuinfo for s390x, not compared");
                } else {
                    assert!(
                        name.starts_with("mdf.") && said("not in the dump"),
                        "{set}/{name}: no proc/cpuinfo: {missing:?}"
                    );
                }
            }
        }
        assert_eq!(
            out.links.get("uname").map(String::as_str),
            Some("sos_commands/kernel/uname_-a")
        );
        assert_eq!(
            out.links.get("date").map(String::as_str),
            Some("sos_commands/date/date")
        );
    }
}

#[test]
fn x86_64_6_1_l5() {
    check_set("x86_64-6.1-l5");
}

#[test]
fn x86_64_6_1_l4() {
    check_set("x86_64-6.1-l4");
}

#[test]
fn aarch64_6_1() {
    check_set("aarch64-6.1");
}

#[test]
fn x86_64_6_1_smp4_hung() {
    check_set("x86_64-6.1-smp4-hung");
}

#[test]
fn x86_64_6_1_oops() {
    check_set("x86_64-6.1-oops");
}

#[test]
fn x86_64_6_12() {
    check_set("x86_64-6.12");
}

#[test]
fn x86_64_5_10() {
    check_set("x86_64-5.10");
}

#[test]
fn aarch64_5_10() {
    check_set("aarch64-5.10");
}

#[test]
fn s390x_6_1() {
    check_set("s390x-6.1");
}

#[test]
fn s390x_6_12() {
    check_set("s390x-6.12");
}

// the kdump-captured sets
kdump_set_tests!(check_set);
