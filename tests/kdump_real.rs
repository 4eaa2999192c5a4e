//! The kdump-captured sets (`fixtures/build.sh`, capture=kdump): what a capture kernel's dump
//! gives that a hypervisor's does not, checked on the binary's archive of every dump of every
//! such set.
//!
//! - **Crash time.** The crashing kernel's `crash_save_vmcoreinfo()` (kernel/crash_core.c)
//!   appends `CRASHTIME=<seconds since the epoch>` to VMCOREINFO. The report's crash time
//!   (`plugins/kernel_info/kernel_info.json` `crash_time`, and the sys plugin's `date`) must be
//!   that value, found here by a byte search of the dump file for `CRASHTIME=` (the note is
//!   stored uncompressed in the ELF and in makedumpfile's kdump format alike), and lie between
//!   the guest's `date_epoch` in truth.txt and a few minutes after.
//! - **The panic CPU's backtrace starts in the crash path the console printed.** Its registers
//!   are those `crash_save_cpu()` stored on the crash path: for a panic (sysrq, the hung-task
//!   detector) `crash_setup_regs()` inside `__crash_kexec()`, called by `panic()`; for an oops
//!   with `panic_on_oops`, `oops_end()` calls `crash_kexec(regs)` with the oops's own
//!   registers, before any `panic()`. So our trace of the panic CPU must begin with the
//!   console's faulting `RIP:` (an oops) or with `__crash_kexec` right before `panic` (a panic),
//!   and contain every reliable entry of the console's `Call Trace` from there outwards, in
//!   order, at the same return address (but `panic`'s own: the console's trace was taken where
//!   `panic()` called `dump_stack()`, ours where it called `__crash_kexec()`).
//!
//! Console names are kallsyms names and ours ELF symbols (`entry_SYSCALL_64_after_hwframe` is a
//! label inside `entry_SYSCALL_64`), so kernel-image entries are compared by address: the
//! console's `func+off` through the vmlinux symbol table (relocated by the dump's KASLR offset)
//! against our frame's pc; module entries by symbol, module and offset.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::fixtures;
use common::stacks::{ConsoleTrace, Frame, console_traces};
use serde_json::Value;
use vmcore_report::debuginfo::elf::Vmlinux;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

/// `CRASHTIME=` in the first 16 MiB of the file: the raw bytes of the VMCOREINFO note.
fn crashtime_bytes(dump: &Path) -> Option<i64> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(dump)
        .unwrap()
        .take(16 << 20)
        .read_to_end(&mut buf)
        .unwrap();
    let key = b"CRASHTIME=";
    let at = buf.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = buf[at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Runs the binary on `dump` with the tree kept; returns the tree.
fn report(vmlinux: &Path, dump: &Path, tmp: &Path) -> std::path::PathBuf {
    let out = Command::new(BIN)
        .arg("--vmcore")
        .arg(dump)
        .arg("--vmlinux")
        .arg(vmlinux)
        .arg("--tmp-dir")
        .arg(tmp)
        .args(["--build", "--batch", "-q"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 5 | 7 | 8)),
        "{}: exit {}: {}",
        dump.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("plugins/backtrace/backtrace.json").exists())
        .expect("a build tree with plugins/backtrace/backtrace.json")
}

fn json(tree: &Path, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(tree.join(file)).unwrap()).unwrap()
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The console's trace of the crash: the oops's (its `RIP:` and the trace after it) when the
/// kernel went to kdump from `oops_end`, else the panic's from `panic` outwards.
fn crash_trace(console: &str) -> (ConsoleTrace, Vec<Frame>) {
    let traces = console_traces(console);
    if let Some(t) = traces.iter().rfind(|t| t.is_panic()) {
        let reliable: Vec<Frame> = t.frames.iter().filter(|f| f.reliable).cloned().collect();
        let from = reliable
            .iter()
            .position(|f| f.function == "panic")
            .expect("panic in the console's panic trace");
        return (t.clone(), reliable[from..].to_vec());
    }
    let t = traces
        .iter()
        .rfind(|t| t.causes.iter().any(|c| c.starts_with("Oops:")))
        .expect("a panic or an oops trace on the console");
    let frames = t
        .rip
        .iter()
        .chain(t.frames.iter().filter(|f| f.reliable))
        .cloned()
        .collect();
    (t.clone(), frames)
}

#[test]
fn kdump_crash_time_and_panic_cpu_trace() {
    for set in fixtures::SETS.iter().filter(|s| fixtures::is_kdump_set(s)) {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
        let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
        let live_epoch: i64 = truth
            .lines()
            .find_map(|l| l.strip_prefix("date_epoch: "))
            .expect("date_epoch in truth.txt")
            .trim()
            .parse()
            .unwrap();
        let (ct, want) = crash_trace(&console);
        let oops = !ct.is_panic();
        let vm = Arc::new(Vmlinux::open(&dir.join("vmlinux")).unwrap());
        for dump in fixtures::dumps(&dir) {
            let name = dump.file_name().unwrap().to_string_lossy().into_owned();
            let what = format!("{set}/{name}");

            // ---- crash time ---------------------------------------------------------------
            let crashtime = crashtime_bytes(&dump)
                .unwrap_or_else(|| panic!("{what}: no CRASHTIME= in the dump's VMCOREINFO"));
            assert!(
                (live_epoch..live_epoch + 300).contains(&crashtime),
                "{what}: CRASHTIME {crashtime} not within 5 min after the live date {live_epoch}"
            );
            let tmp = tempfile::tempdir().unwrap();
            let tree = report(&dir.join("vmlinux"), &dump, tmp.path());
            let ki = json(&tree, "plugins/kernel_info/kernel_info.json");
            assert_eq!(
                ki["crash_time"].as_i64(),
                Some(crashtime),
                "{what}: kernel_info crash_time"
            );
            let sys = json(&tree, "plugins/sys/sys.json");
            assert_eq!(sys["crash_time"].as_i64(), Some(crashtime), "{what}: sys");
            assert_eq!(
                sys["crash_time_source"].as_str(),
                Some("vmcoreinfo CRASHTIME"),
                "{what}"
            );

            // ---- the panic CPU's trace ----------------------------------------------------
            let k = common::kernel::open_with(&vm, &dump);
            let bt = json(&tree, "plugins/backtrace/backtrace.json");
            let cpu = bt["cpus"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["is_panic"] == true)
                .unwrap_or_else(|| panic!("{what}: no panic CPU"));
            assert_eq!(cpu["cpu"].as_u64(), ct.cpu.map(u64::from), "{what}: CPU");
            assert_eq!(cpu["regs_source"], "crash_notes", "{what}");
            let trace = bt["traces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["reason"] == "panic_cpu")
                .unwrap_or_else(|| panic!("{what}: no trace of the panic CPU"));
            assert_eq!(trace["task"]["pid"].as_i64(), ct.pid, "{what}: the task");
            assert_eq!(trace["start"], "crash_notes", "{what}");
            let ours: &Vec<Value> = trace["frames"].as_array().unwrap();
            let names: Vec<&str> = ours
                .iter()
                .map(|f| f["symbol"].as_str().unwrap_or("?"))
                .collect();
            // does our frame `o` stand for the console's entry `c`?
            let same = |o: &Value, c: &Frame| match &c.module {
                Some(m) => {
                    o["module"].as_str() == Some(m.as_str())
                        && o["symbol"].as_str() == c.symbol.as_deref()
                        && hex(&o["offset"]) == c.offset.unwrap()
                }
                None => {
                    let start = k
                        .symbols()
                        .address(&c.function)
                        .unwrap_or_else(|| panic!("{what}: no symbol {}", c.function))
                        .0;
                    o["module"].is_null() && hex(&o["pc"]) == start + c.offset.unwrap()
                }
            };
            // where the trace starts: the faulting pc itself, or __crash_kexec then panic
            let first = if oops {
                assert!(
                    ours[0]["interrupted"] == true,
                    "{what}: frame 0 is the oops's registers"
                );
                0
            } else {
                assert_eq!(names[0], "__crash_kexec", "{what}: {names:?}");
                1
            };
            // the panic's own entry is where it called dump_stack(), ours where it called
            // __crash_kexec(): the same function at another offset; from its caller on, the
            // same return addresses
            let (head, tail) = want.split_at(1);
            let head_ok = if oops {
                same(&ours[first], &head[0])
            } else {
                names[first] == "panic"
            };
            assert!(
                head_ok,
                "{what}: our frame {first} {:?} is not the console's {:?}+{:#x} ({names:?})",
                names[first],
                head[0].function,
                head[0].offset.unwrap()
            );
            let mut rest = ours[first + 1..].iter();
            for c in tail {
                assert!(
                    rest.any(|o| same(o, c)),
                    "{what}: the console's {}+{:#x} not found in order in our trace {names:?}",
                    c.function,
                    c.offset.unwrap()
                );
            }
            eprintln!(
                "{what}: CRASHTIME {crashtime}; the panic CPU {} (pid {:?}) from {} holds the console's {} entries: {names:?}",
                cpu["cpu"],
                ct.pid,
                names[0],
                want.len()
            );
        }
    }
}
