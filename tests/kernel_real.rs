//! The kernel view on the real vmcores, against the live ground truth the guest printed before it
//! crashed (truth.txt: uname, taint, nproc, ps) and drgn's reading of the same crash (drgn/
//! tasks.txt, written by fixtures/peer-drgn.py from the unfiltered ELF dump). Skipped, with one
//! line, when the fixtures are absent.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::fixtures;
use vmcore_report::addr::VirtAddr;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::locate::{self, DumpIdentity, MatchProof};
use vmcore_report::kernel::Kernel;

fn truth(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("truth.txt")).unwrap()
}

fn line<'a>(t: &'a str, key: &str) -> &'a str {
    t.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("truth.txt has no {key}"))
        .trim()
}

#[test]
fn real_dumps_match_live_truth() {
    for set in fixtures::SETS {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let t = truth(&dir);
        let uname = line(&t, "uname:");
        let tainted: u64 = line(&t, "tainted:").parse().unwrap();
        let nproc: usize = line(&t, "nproc:").parse().unwrap();
        let version_line = line(&t, "version:");
        for dump in fixtures::dumps(&dir) {
            let name = dump.file_name().unwrap().to_string_lossy().to_string();
            let k = common::kernel::open(&dump, &dir.join("vmlinux"));
            let uts = k.variable("init_uts_ns").unwrap().member("name").unwrap();
            let field = |f: &str| uts.member(f).unwrap().string_lossy(65).unwrap();
            let expect = format!(
                "{} {} {} {} {}",
                field("sysname"),
                field("nodename"),
                field("release"),
                field("version"),
                field("machine")
            );
            assert!(
                uname.starts_with(&expect),
                "{set}/{name}: {expect:?} vs {uname:?}"
            );
            // The oops set's truth is printed before the oops, which then sets TAINT_DIE (bit 7)
            // on its way to the panic: exactly that bit is added. Not in the kdump capture:
            // oops_end() (arch/x86/kernel/dumpstack.c) calls crash_kexec() before add_taint().
            let expect_taint = if set.contains("oops") && !fixtures::is_kdump_set(set) {
                tainted | 1 << 7
            } else {
                tainted
            };
            assert_eq!(
                k.variable("tainted_mask").unwrap().u64().unwrap(),
                expect_taint,
                "{set}/{name}"
            );
            // At panic the other CPUs are stopped and marked offline (x86 stop_this_cpu), so the
            // dump's online mask holds only the crashing CPU; drgn's for_each_online_cpu agrees.
            // The present and possible masks still show every CPU the guest had.
            assert!(!k.online_cpus().unwrap().is_empty());
            assert_eq!(k.present_cpus().unwrap().len(), nproc, "{set}/{name}");
            assert_eq!(k.possible_cpus().unwrap().len(), nproc, "{set}/{name}");
            assert_eq!(k.nr_cpu_ids().unwrap() as usize, nproc, "{set}/{name}");
            // per-CPU runqueues know their own CPU number
            for cpu in k.possible_cpus().unwrap() {
                let rq = k.per_cpu("runqueues", cpu).unwrap();
                assert_eq!(
                    rq.member("cpu").unwrap().i64().unwrap(),
                    i64::from(cpu),
                    "{name}"
                );
            }
            // the banner in the dump is the live `/proc/version` and proves the vmlinux
            let banner = k.variable("linux_banner").unwrap().cstring(1024).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&banner).trim(),
                version_line,
                "{name}"
            );
            let mut id = DumpIdentity::from_vmcoreinfo(k.vmcoreinfo(), k.info().arch);
            id.build_id = None;
            id.banner = Some(banner);
            let vm = Vmlinux::open(&dir.join("vmlinux")).unwrap();
            assert!(matches!(
                locate::verify(&vm, &id, false).unwrap(),
                MatchProof::ReleaseAndBanner(_)
            ));
        }
    }
}

/// One line of drgn/tasks.txt: a task drgn's `for_each_task()` found in the unfiltered dump.
struct DrgnTask {
    pid: i32,
    tgid: i32,
    addr: u64,
    size: u64,
    comm: String,
}

fn drgn_tasks(dir: &Path) -> Option<Vec<DrgnTask>> {
    let text = std::fs::read_to_string(dir.join("drgn/tasks.txt")).ok()?;
    let tasks = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ' ').collect();
            DrgnTask {
                pid: f[0].parse().unwrap(),
                tgid: f[1].parse().unwrap(),
                addr: u64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap(),
                size: f[3].parse().unwrap(),
                comm: f.get(4).unwrap_or(&"").to_string(),
            }
        })
        .collect();
    Some(tasks)
}

/// Whether the dump file stores every page of `[va, va + len)`: each 4 KiB page translated
/// through the kernel's page tables, then asked of the dump reader. A property of the file,
/// computed without the task walker.
fn stored(k: &Kernel, va: u64, len: u64) -> bool {
    let mut page = va & !4095;
    while page < va + len {
        match k.space().translate(VirtAddr(page)) {
            Ok(t) if k.space().phys().is_dumped(t.phys) => {}
            _ => return false,
        }
        page += 4096;
    }
    true
}

/// The task enumeration on every dump of every set. The oracle is drgn's task list of the same
/// crash (every dump of a set is taken from one crash) and the live `ps`:
/// - unfiltered dumps: exactly drgn's tasks, nothing lost; and exactly the pids `ps` printed,
///   less `ps` itself (it exited before the crash), plus the tasks started after it (a pid above
///   `ps`'s: pids are handed out in increasing order on these short-lived guests);
/// - filtered dumps (`mdf.*`): exactly drgn's tasks whose whole `task_struct` this file stores,
///   and every task reported lost is one of the others, with its pid right when it names one.
#[test]
fn the_task_enumeration_lists_what_each_dump_holds() {
    for set in fixtures::SETS {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        // a set drgn cannot read (fixtures::has_drgn_oracle): its unfiltered dumps against
        // the live `ps` only (it has no filtered ones)
        let drgn = if fixtures::has_drgn_oracle(set) {
            let Some(drgn) = drgn_tasks(&dir) else {
                eprintln!(
                    "{set}: no drgn/tasks.txt (fixtures/peer-drgn.py writes it): task checks skipped"
                );
                continue;
            };
            Some(drgn)
        } else {
            let _ = fixtures::drgn_oracle(&dir, "tasks.txt");
            None
        };
        let t = truth(&dir);
        let ps: Vec<(i32, String)> = t
            .split("---ps---")
            .nth(1)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.first()?.parse().ok()?, f.last()?.to_string()))
            })
            .collect();
        let ps_pid = ps
            .iter()
            .find(|(_, c)| c == "ps")
            .expect("ps in its own list")
            .0;
        let ps_pids: HashSet<i32> = ps.iter().map(|(p, _)| *p).collect();
        // pid 1 runs the initramfs's /init, a busybox script: 6.1 and later name the task after
        // the script (`init`), 5.10 after its interpreter (`busybox`)
        let init_comm = &ps.iter().find(|(p, _)| *p == 1).expect("pid 1 in ps").1;
        let all: Option<HashSet<(i32, i32, u64)>> = drgn
            .as_ref()
            .map(|d| d.iter().map(|d| (d.pid, d.tgid, d.addr)).collect());
        let mut missing_total = 0;
        let mut files = fixtures::dumps(&dir);
        files.extend(fixtures::lossy_dumps(&dir));
        for dump in files {
            let name = dump.file_name().unwrap().to_string_lossy().to_string();
            let k = common::kernel::open(&dump, &dir.join("vmlinux"));
            let t0 = std::time::Instant::now();
            let w = k.tasks().unwrap();
            let first = t0.elapsed();
            // again, the types now resolved: the walk's own cost
            let t0 = std::time::Instant::now();
            k.tasks().unwrap();
            let took = t0.elapsed();
            let took = format!("{first:.1?} (again: {took:.1?})");
            let got: HashSet<(i32, i32, u64)> =
                w.tasks.iter().map(|t| (t.pid, t.tgid, t.addr.0)).collect();
            assert_eq!(
                got.len(),
                w.tasks.len(),
                "{set}/{name}: a task listed twice"
            );
            for task in &w.tasks {
                let o = task.object(&k).unwrap();
                if task.pid == 1 {
                    assert_eq!(
                        o.member("comm").unwrap().cstring(16).unwrap(),
                        init_comm.as_bytes(),
                        "{set}/{name}"
                    );
                }
                // Linux 5.14 renamed `state` to `__state`: the helper reads either
                o.task_state().unwrap();
            }
            if !name.starts_with("mdf.") {
                if let Some(all) = &all {
                    assert_eq!(&got, all, "{set}/{name}: the task list is not drgn's");
                }
                assert!(w.lost.is_empty(), "{set}/{name}: {:?}", w.lost);
                assert!(w.errors.is_empty(), "{set}/{name}: {:?}", w.errors);
                eprintln!("{set}/{name}: {} tasks listed in {took}", w.tasks.len());
                let pids: HashSet<i32> = got.iter().map(|t| t.0).collect();
                let gone: Vec<i32> = ps_pids.difference(&pids).copied().collect();
                assert_eq!(gone, [ps_pid], "{set}/{name}: ps pids not in the dump");
                for p in pids.difference(&ps_pids) {
                    // not in ps: a thread (ps lists processes) or started after ps; the tgid
                    // is drgn's, else (no oracle) the dump's
                    let tgid = match &drgn {
                        Some(drgn) => drgn.iter().find(|d| d.pid == *p).unwrap().tgid,
                        None => w.tasks.iter().find(|t| t.pid == *p).unwrap().tgid,
                    };
                    assert!(
                        *p != tgid || *p > ps_pid,
                        "{set}/{name}: pid {p} is not in ps"
                    );
                }
                continue;
            }
            let drgn = drgn
                .as_ref()
                .expect("only sets with drgn's oracle have filtered dumps");
            let (present, missing): (Vec<&DrgnTask>, Vec<&DrgnTask>) =
                drgn.iter().partition(|d| stored(&k, d.addr, d.size));
            let want: HashSet<(i32, i32, u64)> =
                present.iter().map(|d| (d.pid, d.tgid, d.addr)).collect();
            assert_eq!(got, want, "{set}/{name}: lost {:?}", w.lost);
            // every lost task is a missing one: by address when the walk saw its task_struct,
            // by pid when the IDR or its own page named it, both agreeing
            for l in &w.lost {
                let m = match l.task {
                    Some(a) => missing.iter().find(|d| d.addr == a.0),
                    None => missing.iter().find(|d| Some(d.pid) == l.pid),
                };
                let m = m.unwrap_or_else(|| panic!("{set}/{name}: lost {l} is not a missing task"));
                assert!(l.pid.is_none_or(|p| p == m.pid), "{set}/{name}: {l}");
            }
            // and every missing task is named, by its address or its pid
            for m in &missing {
                assert!(
                    w.lost
                        .iter()
                        .any(|l| l.task == Some(VirtAddr(m.addr)) || l.pid == Some(m.pid)),
                    "{set}/{name}: pid {} ({}) missing and not reported lost",
                    m.pid,
                    m.comm
                );
            }
            missing_total += missing.len();
            eprintln!(
                "{set}/{name}: {} tasks listed in {took}, {} task_structs not wholly in the file, {} reported lost",
                w.tasks.len(),
                missing.len(),
                w.lost.len()
            );
        }
        eprintln!("{set}: {missing_total} missing task_structs over its filtered dumps");
    }
}
