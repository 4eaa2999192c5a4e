//! insights-core, Red Hat's sos-archive analysis framework, reads our archives of the real fixture
//! dumps with its own parsers (Uname, DmesgLineList, PsAuxww, PsAlxwww, LsMod, MemInfo, CmdLine,
//! CpuInfo) and gets the live values the guest printed before it crashed (truth.txt).
//!
//! The parsers run in `tests/insights/read_archive.py` under the Python that has insights-core:
//! `$VMCORE_PYTHON`, else the virtual environment `.ci/run` creates
//! (`~/.cache/vmcore-report/venv`), else `python3`. Without insights-core the test prints one
//! SKIP line, or fails under `VMCORE_REQUIRE_FIXTURES=1`. Each set's unfiltered dump
//! (`vmcore.elf`, or a kdump set's `vmcore.raw`) is read as an extracted directory and as the
//! `.tar.xz`; makedumpfile's zlib dump at the set's dump level as a directory (its missing pages may hide tasks, so only the values a filtered dump keeps are
//! compared there).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

fn required() -> bool {
    std::env::var("VMCORE_REQUIRE_FIXTURES").as_deref() == Ok("1")
}

/// The Python interpreter that can import insights-core, if any.
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("VMCORE_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(c) = cache {
        candidates.push(c.join("vmcore-report/venv/bin/python3"));
    }
    candidates.push(PathBuf::from("python3"));
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import insights"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn section<'a>(truth: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("---{name}---");
    truth
        .split(start.as_str())
        .nth(1)
        .unwrap_or_else(|| panic!("truth.txt has no {start} section"))
        .lines()
        .skip(1)
        .take_while(|l| !(l.starts_with("---") && l.ends_with("---") && l.len() > 6))
        .collect()
}

fn field<'a>(truth: &'a str, key: &str) -> &'a str {
    truth
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("truth.txt has no {key}"))
        .trim()
}

/// Runs the report on `dump` with an xz archive; returns (extracted root, archive path).
fn report(set_dir: &Path, dump: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let o = Command::new(BIN)
        .arg("--vmcore")
        .arg(dump)
        .arg("--vmlinux")
        .arg(set_dir.join("vmlinux"))
        .arg("--tmp-dir")
        .arg(out)
        .args(["-z", "xz", "--batch", "-q"])
        .output()
        .unwrap();
    // a filtered dump may exit with the "partial" code; the archive is what matters here
    let archive = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .unwrap_or_else(|| {
            panic!(
                "{}: no .tar.xz (exit {:?}): {}",
                dump.display(),
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            )
        });
    let x = out.join("x");
    std::fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success(), "tar -xJf {}", archive.display());
    let root = std::fs::read_dir(&x)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (root, archive)
}

fn insights(py: &Path, root: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/insights/read_archive.py");
    let o = Command::new(py).arg(script).arg(root).output().unwrap();
    assert!(
        o.status.success(),
        "read_archive.py {}: {}",
        root.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn parsed<'a>(v: &'a Value, parser: &str, what: &str) -> &'a Value {
    let p = &v[parser];
    assert!(
        p.get("error").is_none(),
        "{what}: insights-core's {parser} failed: {}",
        p["error"]
    );
    p
}

/// The pids of truth.txt's busybox `ps` (PID PPID STAT COMMAND) that outlive the capture: not
/// the capture's own commands, not kworkers (they come and go between capture and crash).
fn long_lived(truth: &str) -> BTreeMap<i64, i64> {
    section(truth, "ps")
        .iter()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let pid = w.first()?.parse().ok()?;
            let ppid = w.get(1)?.parse().ok()?;
            let cmd = w.get(3..)?.join(" ");
            let transient =
                cmd.starts_with("kworker/") || cmd.starts_with("ps") || cmd.contains("sh -c");
            (!transient).then_some((pid, ppid))
        })
        .collect()
}

fn check(set: &str, what: &str, v: &Value, truth: &str, unfiltered: bool) {
    let mut uname = field(truth, "uname:").split_whitespace();
    uname.next();
    let (node, release) = (uname.next().unwrap(), uname.next().unwrap());
    let u = parsed(v, "Uname", what);
    assert_eq!(u["kernel"], release, "{set} {what}: Uname.kernel");
    assert_eq!(u["nodename"], node, "{set} {what}: Uname.nodename");

    let memtotal_kb: u64 = section(truth, "meminfo")
        .iter()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .expect("truth meminfo has MemTotal");
    let m = parsed(v, "MemInfo", what);
    assert_eq!(
        m["total"],
        memtotal_kb * 1024,
        "{set} {what}: MemInfo.total"
    );

    let live_mods: BTreeMap<String, u64> = section(truth, "modules")
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect();
    let l = parsed(v, "LsMod", what);
    let ours: BTreeMap<String, u64> = l["modules"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, m)| {
            (
                k.clone(),
                m["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(ours, live_mods, "{set} {what}: LsMod names and sizes");

    let c = parsed(v, "CmdLine", what);
    assert_eq!(
        c["cmdline"],
        field(truth, "cmdline:"),
        "{set} {what}: CmdLine"
    );

    let d = parsed(v, "DmesgLineList", what);
    let version = field(truth, "version:");
    assert!(
        d["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains(version))),
        "{set} {what}: DmesgLineList has no line with the live /proc/version `{version}`"
    );

    if set.starts_with("s390x") {
        // the sys plugin writes /proc/cpuinfo for x86_64 and arm64 only (sys.json's `missing`
        // says so): insights-core finds no file, and says that
        let e = v["CpuInfo"]["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("missing") && e.contains("cpuinfo"),
            "{set} {what}: CpuInfo without proc/cpuinfo: {e:?}"
        );
        eprintln!("NOTE: {set} {what}: no proc/cpuinfo for s390x, CpuInfo not compared");
    } else {
        let cpu = parsed(v, "CpuInfo", what);
        let nproc: u64 = field(truth, "nproc:").parse().unwrap();
        assert_eq!(cpu["cpu_count"], nproc, "{set} {what}: CpuInfo.cpu_count");
    }

    if unfiltered {
        let live = long_lived(truth);
        for parser in ["PsAuxww", "PsAlxwww"] {
            let p = parsed(v, parser, what);
            let pids: BTreeSet<i64> = p["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["PID"].as_str()?.parse().ok())
                .collect();
            let missing: Vec<&i64> = live.keys().filter(|p| !pids.contains(p)).collect();
            assert!(
                missing.is_empty(),
                "{set} {what}: {parser} lacks live pids {missing:?}"
            );
        }
        let alx = parsed(v, "PsAlxwww", what);
        for r in alx["rows"].as_array().unwrap() {
            let (Some(pid), Some(ppid)) = (
                r["PID"].as_str().and_then(|p| p.parse::<i64>().ok()),
                r["PPID"].as_str().and_then(|p| p.parse::<i64>().ok()),
            ) else {
                continue;
            };
            if let Some(&live_ppid) = live.get(&pid) {
                assert_eq!(ppid, live_ppid, "{set} {what}: PsAlxwww PPID of {pid}");
            }
        }
    }
}

#[test]
fn insights_core_reads_live_values_from_our_archives() {
    let Some(py) = python() else {
        assert!(
            !required(),
            "insights-core is required (VMCORE_REQUIRE_FIXTURES=1) but no Python imports it: \
             .ci/run installs it in ~/.cache/vmcore-report/venv"
        );
        eprintln!("SKIP insights_real: no Python with insights-core (set VMCORE_PYTHON)");
        return;
    };
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
        // the unfiltered dump (QEMU's, or a kdump set's /proc/vmcore copy) and makedumpfile's
        // zlib dump at the set's dump level
        let whole = if common::fixtures::is_kdump_set(set) {
            "vmcore.raw"
        } else {
            "vmcore.elf"
        };
        let filtered = common::fixtures::mdf_level(set).map(|l| format!("mdf.zlib-d{l}"));
        let mut dumps = vec![(whole.to_string(), true)];
        dumps.extend(filtered.map(|f| (f, false)));
        for (dump, unfiltered) in dumps {
            let path = dir.join(&dump);
            if !path.exists() {
                common::fixtures::skip(format_args!("{set} lacks {dump}"));
                continue;
            }
            let out = tempfile::tempdir().unwrap();
            let (root, archive) = report(&dir, &path, out.path());
            let v = insights(&py, &root);
            assert_eq!(
                v["contexts"],
                serde_json::json!(["SosArchiveContext"]),
                "{set}/{dump}"
            );
            check(set, &format!("{dump} (directory)"), &v, &truth, unfiltered);
            if unfiltered {
                let v = insights(&py, &archive);
                check(set, &format!("{dump} (.tar.xz)"), &v, &truth, unfiltered);
            }
            eprintln!("{set}/{dump}: insights-core read the live values");
        }
    }
}
