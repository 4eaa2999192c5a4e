//! The summary on every real fixture set: the verdict names the kind of crash the guest was made
//! to have (its profile: SysRq-c, an oops in a module, the hung-task detector) and the console's
//! own panic string (none for an oops taken to kdump, which never reaches `panic()`); on the oops
//! sets the oops's opening line and the faulting function the console's `RIP:` line names; on
//! the hung set the task the console's hung-task report names, with its stack (the console's
//! trace of it, in order); every file a finding cites exists
//! in the archive, and every link of `sos.html` resolves in the extracted tree; `-q` prints
//! nothing and `--json` prints the summary on stdout.
//!
//! The expected values come from the set's recipe (set.info `profile=`) and the serial console
//! (console.log), never from the archive.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

/// Runs the report on `dump`, keeping the tree (`--build`); returns its directory.
fn report(dir: &Path, dump: &Path, out: &Path) -> std::path::PathBuf {
    let tmp = out;
    let out = Command::new(BIN)
        .arg("--vmcore")
        .arg(dump)
        .arg("--vmlinux")
        .arg(dir.join("vmlinux"))
        .arg("--tmp-dir")
        .arg(tmp)
        .args(["--build", "--batch", "-q", "--json"])
        .output()
        .unwrap();
    let st = out.status;
    // exit 0 or one of the "archive written" codes
    assert!(
        matches!(st.code(), Some(0 | 5 | 7 | 8)),
        "{}: exit {st}",
        dump.display()
    );
    // -q: nothing but errors on the terminal; --json: the summary on stdout
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "{}: -q printed something",
        dump.display()
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    // `--build` keeps TMP/vmcore-report.XXXXXX/NAME
    let tree = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("sos_reports/summary.json").exists())
        .expect("a build tree with sos_reports/summary.json");
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(tree.join("sos_reports/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, written, "--json prints sos_reports/summary.json");
    tree
}

/// The console's panic message (`Kernel panic - not syncing: MSG`); `None` when there is none
/// (an oops in a kdump set: `oops_end()` went to the capture kernel before `panic()`).
fn console_panic(console: &str) -> Option<String> {
    console
        .lines()
        .find_map(|l| l.split_once("Kernel panic - not syncing: ").map(|(_, m)| m))
        .map(|m| m.trim_end().to_string())
}

/// The line that opens the console's oops (`BUG: kernel NULL pointer dereference, ...`).
fn console_oops_opener(console: &str) -> String {
    console
        .lines()
        .find_map(|l| {
            l.split_once("] BUG: ")
                .map(|(_, m)| format!("BUG: {}", m.trim_end()))
        })
        .expect("the console shows the oops")
}

/// The `href`s of a page.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().replace("&amp;", "&"))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn the_verdict_matches_the_console_on_every_set() {
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
        let dump = ["vmcore.elf", "vmcore.raw"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .expect("an unfiltered dump");
        let out = tempfile::tempdir().unwrap();
        let tree = report(&dir, &dump, out.path());
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(tree.join("sos_reports/summary.json")).unwrap(),
        )
        .unwrap();
        let v = &s["verdict"];
        let panic = console_panic(&console);
        assert!(
            panic.is_some() || common::fixtures::is_kdump_set(set),
            "{set}: the console shows the panic"
        );
        assert_eq!(
            v["panic_string"].as_str(),
            panic.as_deref(),
            "{set}: the panic string"
        );
        // what the page must show: the panic string, else the oops's opening line
        let shown = panic.unwrap_or_else(|| console_oops_opener(&console));
        let kind = v["kind"].as_str().unwrap();
        match common::fixtures::workload(&dir).as_str() {
            "base" => assert_eq!(kind, "sysrq", "{set}"),
            "oops" => {
                assert_eq!(kind, "oops", "{set}");
                assert_eq!(
                    v["headline"].as_str(),
                    Some(console_oops_opener(&console).as_str()),
                    "{set}: the oops's opening line"
                );
                // `RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]`
                let rip = console
                    .lines()
                    .find_map(|l| l.split_once("RIP: 0010:").map(|(_, r)| r))
                    .expect("the console's RIP line");
                let mut parts = rip.split_whitespace();
                assert_eq!(
                    v["function"].as_str(),
                    parts.next(),
                    "{set}: the faulting function"
                );
                assert_eq!(
                    v["module"].as_str().map(|m| format!("[{m}]")).as_deref(),
                    parts.next(),
                    "{set}: its module"
                );
            }
            "busy" => {
                assert_eq!(kind, "hung_task", "{set}");
                // `INFO: task touch:124 blocked for more than 2 seconds.`
                let hung = console
                    .lines()
                    .find_map(|l| l.split_once("INFO: task ").map(|(_, r)| r))
                    .expect("the console's hung-task report");
                let who = hung.split(" blocked").next().unwrap();
                let finding = s["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["title"].as_str().unwrap().starts_with("hung task: "))
                    .unwrap_or_else(|| panic!("{set}: no hung-task finding"));
                let (comm, pid) = who.rsplit_once(':').unwrap();
                assert_eq!(
                    finding["title"].as_str().unwrap(),
                    format!("hung task: {comm} (pid {pid})"),
                    "{set}"
                );
                // and its stack: the console's trace of the hung task, in order, in the finding
                let hung_trace = common::stacks::console_traces(&console)
                    .into_iter()
                    .find(|t| t.causes.iter().any(|c| c.starts_with("INFO: task ")))
                    .expect("the console's hung-task trace");
                let listed: Vec<String> = finding["detail"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|l| l.strip_prefix("  "))
                    .map(|l| l.split('+').next().unwrap().to_string())
                    .collect();
                let mut rest = listed.iter();
                for f in hung_trace.reliable_functions() {
                    assert!(
                        rest.any(|l| l == f),
                        "{set}: the hung task's stack in the summary {listed:?} lacks the console's {f} in order"
                    );
                }
                assert!(
                    finding["cites"]
                        .as_array()
                        .unwrap()
                        .contains(&Value::from("plugins/backtrace/bt.txt")),
                    "{set}: the hung-task finding cites the backtrace"
                );
            }
            p => panic!("{set}: unknown profile {p}"),
        }
        // every cited file exists
        let mut cited: Vec<&str> = v["cites"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for f in s["findings"].as_array().unwrap() {
            cited.extend(
                f["cites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str),
            );
        }
        for c in cited {
            assert!(
                tree.join(c).exists(),
                "{set}: the summary cites {c}, absent"
            );
        }
        // every link of sos.html resolves in the tree
        let html = std::fs::read_to_string(tree.join("sos_reports/sos.html")).unwrap();
        assert!(
            html.contains(shown.as_str()),
            "{set}: sos.html lacks {shown:?}"
        );
        let links = hrefs(&html);
        assert!(links.len() > 10, "{set}: too few links in sos.html");
        chromium_renders(set, &tree.join("sos_reports/sos.html"), &shown);
        for h in links {
            let rel = percent_decode(&h);
            let p = tree.join("sos_reports").join(&rel);
            assert!(
                p.exists() || p.symlink_metadata().is_ok(),
                "{set}: sos.html links {h}, absent"
            );
        }
    }
}

/// Headless Chromium (Debian's `chromium`, installed by `.ci/run`) loads the page from the
/// extracted tree with the network off and the DOM it builds holds the verdict and the panic
/// string.
fn chromium_renders(set: &str, page: &Path, panic: &str) {
    let Ok(out) = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            "--proxy-server=127.0.0.1:9",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
    else {
        common::fixtures::skip("chromium is not installed (apt install chromium)");
        return;
    };
    assert!(
        out.status.success(),
        "{set}: chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("id=\"verdict\""),
        "{set}: the rendered page has no verdict"
    );
    assert!(
        dom.contains(panic),
        "{set}: the rendered page lacks the panic string"
    );
    assert!(
        dom.contains("id=\"plugins\""),
        "{set}: the rendered page has no plugin table"
    );
}
