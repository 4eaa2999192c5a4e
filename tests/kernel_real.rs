//! The kernel view on the real Debian 6.1 x86_64 vmcores, against the live ground truth the
//! guest printed before it crashed (truth.txt: uname, taint, nproc, ps). Skipped, with one line,
//! when the fixtures are absent.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::fixtures;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::locate::{self, DumpIdentity, MatchProof};
use vmcore_report::kernel::DEFAULT_WALK_CAP;

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
        let ps_pids: HashSet<i64> = t
            .split("---ps---")
            .nth(1)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        for dump in fixtures::dumps(&dir) {
            let name = dump.file_name().unwrap().to_string_lossy().to_string();
            let k = fixtures::kernel(&dump, &dir.join("vmlinux"));
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
            // on its way to the panic: exactly that bit may be added.
            let expect_taint = if set.contains("oops") {
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
            // the task list: pid 1 is init, and (nearly) every pid ps saw is there
            let init = k.variable("init_task").unwrap();
            let head = init.member("tasks").unwrap().address();
            // A filtered dump may lack a page of the list (makedumpfile 1.7.2 on 6.12 drops a
            // task's page): the salvaging walk goes around the break, which must be a page
            // missing from a filtered dump, never corruption, and never in an unfiltered dump.
            let (tasks, broke) = k
                .list_entries_salvaged(head, "struct task_struct", "tasks", DEFAULT_WALK_CAP)
                .unwrap();
            if let Some(e) = broke {
                assert!(
                    name.starts_with("mdf.") && e.is_not_dumped(),
                    "{set}/{name}: task list broken: {e}"
                );
            }
            let mut pids = HashSet::new();
            for task in &tasks {
                let pid = task.member("pid").unwrap().i64().unwrap();
                if pid == 1 {
                    assert_eq!(task.member("comm").unwrap().cstring(16).unwrap(), b"init");
                }
                // Linux 5.14 renamed `state` to `__state`: the helper reads either
                task.task_state().unwrap();
                pids.insert(pid);
            }
            let found = ps_pids.iter().filter(|p| pids.contains(p)).count();
            assert!(
                found * 10 >= ps_pids.len() * 9,
                "{set}/{name}: {found} of {} ps pids in the task list",
                ps_pids.len()
            );
        }
    }
}
