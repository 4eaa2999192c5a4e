//! The backtrace tests' oracles (`tests/common/stacks.rs`): the parsers on excerpts copied from
//! real fixture files, and, on every set present, a check of the oracles against each other:
//! every task whose live `/proc/PID/stack` truth.txt holds is in drgn's stacks.txt, and for the
//! tasks that cannot have run between the live capture and the crash (the `sleep` tasks and the
//! shell waiting for one), drgn's physical frames contain the live kernel's, in order, with the
//! same `func+0xOFF/0xSIZE`. This validates the oracles themselves, not vmcore-report.

mod common;

use common::fixtures;
use common::stacks::{self, Frame, console_traces, drgn_stacks, live_stacks, subsequence_mismatch};

// x86_64-6.1-smp4-hung, truth.txt (6.1.0-57-cloud-amd64), with the kernel message that stood
// amid aarch64-6.1's section
const LIVE: &str = "\
---cpuinfo---
processor	: 0
---stacks---
116 sleep
[<0>] hrtimer_nanosleep+0x9e/0x170
[<0>] common_nsleep+0x3f/0x50
[<0>] __x64_sys_clock_nanosleep+0xdb/0x140
[<0>] do_syscall_64+0x5d/0x90
[<0>] entry_SYSCALL_64_after_hwframe+0x6e/0xd8
124 touch
[<0>] percpu_rwsem_wait+0x116/0x140
[<0>] mnt_want_write+0x8b/0xc0
[<0>] path_openat+0xb00/0x1260
[  115.167374] hrtimer: interrupt took 72149104 ns
2 kthreadd
[<0>] kthreadd+0x2bc/0x2d0
[<0>] ret_from_fork+0x22/0x30
---sched-debug---
Sched Debug Version: v0.11, 6.1.0-57-cloud-amd64 #1
";

#[test]
fn live_stacks_parse_a_real_section() {
    let got = live_stacks(LIVE).expect("section present").unwrap();
    let heads: Vec<(i64, &str)> = got.iter().map(|s| (s.pid, s.comm.as_str())).collect();
    assert_eq!(heads, [(116, "sleep"), (124, "touch"), (2, "kthreadd")]);
    assert_eq!(
        got[0].functions(),
        [
            "hrtimer_nanosleep",
            "common_nsleep",
            "__x64_sys_clock_nanosleep",
            "do_syscall_64",
            "entry_SYSCALL_64_after_hwframe"
        ]
    );
    let f = &got[1].frames[2];
    assert_eq!(
        (f.offset, f.size, f.module.as_deref()),
        (Some(0xb00), Some(0x1260), None)
    );
    assert!(
        got.iter()
            .all(|s| !s.unreadable && s.frames.iter().all(|f| f.reliable && f.pc.is_none()))
    );
    // a module frame, an unreadable file, a section without the task header
    let t = "---stacks---\n7 insmod\n[<0>] trigger_write+0x20/0x30 [fixture_oops]\n8 x\n! unreadable\n---ps---\n";
    let got = live_stacks(t).unwrap().unwrap();
    assert_eq!(got[0].frames[0].module.as_deref(), Some("fixture_oops"));
    assert!(got[1].unreadable && got[1].frames.is_empty());
    assert!(
        live_stacks("---stacks---\n[<0>] f+0x1/0x2\n")
            .unwrap()
            .is_err()
    );
    assert!(live_stacks("uname: x\n---ps---\n").is_none());
}

// x86_64-6.1-smp4-hung, console.log: the hung-task report, then the panic from khungtaskd
const CONSOLE_HUNG: &str = "\
[   46.525476] INFO: task touch:126 blocked for more than 2 seconds.\r
[   46.529443]       Tainted: G           O       6.1.0-57-cloud-amd64 #1 Debian 6.1.192-3\r
[   46.529882] task:touch           state:D stack:0     pid:126   ppid:1      flags:0x00000002\r
[   46.530199] Call Trace:\r
[   46.530772]  <TASK>\r
[   46.533104]  __schedule+0x34d/0xa00\r
[   46.537061]  schedule+0x5a/0xd0\r
[   46.539107]  percpu_rwsem_wait+0x116/0x140\r
[   46.539206]  ? __percpu_rwsem_trylock.part.0+0x60/0x60\r
[   46.539279]  __percpu_down_read+0x64/0x120\r
[   46.539766]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8\r
[   46.539948] RIP: 0033:0x47b5e1\r
[   46.540204] RSP: 002b:00007ffcc84e1080 EFLAGS: 00000202 ORIG_RAX: 0000000000000101\r
[   46.540742]  </TASK>\r
[   46.547226] Kernel panic - not syncing: hung_task: blocked tasks\r
[   46.549137] CPU: 1 PID: 38 Comm: khungtaskd Tainted: G           O       6.1.0-57-cloud-amd64 #1  Debian 6.1.192-3\r
[   46.549267] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014\r
[   46.549379] Call Trace:\r
[   46.549461]  <TASK>\r
[   46.549499]  dump_stack_lvl+0x44/0x5c\r
[   46.549551]  panic+0x118/0x2f4\r
[   46.549598]  watchdog.cold+0xc/0xbb\r
[   46.549640]  ? proc_dohung_task_timeout_secs+0x30/0x30\r
[   46.549692]  kthread+0xda/0x100\r
[   46.549735]  ? kthread_complete_and_exit+0x20/0x20\r
[   46.549788]  ret_from_fork+0x22/0x30\r
[   46.549862]  </TASK>\r
[   46.551019] Kernel Offset: 0x14400000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)\r
";

// x86_64-6.1-oops, console.log: the faulting RIP before the trace, a module frame
const CONSOLE_OOPS: &str = "\
[   24.099316] BUG: kernel NULL pointer dereference, address: 0000000000000000
[   24.100090] Oops: 0002 [#1] PREEMPT SMP NOPTI
[   24.101000] CPU: 1 PID: 1 Comm: init Tainted: G           OE      6.1.0-57-cloud-amd64 #1  Debian 6.1.192-3
[   24.101000] RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]
[   24.101000] Code: Unable to access opcode bytes at 0xffffffffc04c6ff6.
[   24.101000] PKRU: 55555554
[   24.101000] Call Trace:
[   24.101000]  <TASK>
[   24.101000]  full_proxy_write+0x53/0x80
[   24.101000]  vfs_write+0xc7/0x3f0
[   24.101000]  ? syscall_exit_to_user_mode+0x1e/0x40
[   24.101000]  ksys_write+0x6b/0xf0
[   24.101000]  do_syscall_64+0x5d/0x90
[   24.101000]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8
[   24.101000] RIP: 0033:0x47b7a0
[   24.101000]  </TASK>
[   24.101000] Modules linked in: fixture_oops(OE) qemu_fw_cfg
[   24.125082] Kernel panic - not syncing: Fatal exception
";

// aarch64-6.1, console.log: `Call trace:`, no brackets
const CONSOLE_ARM64: &str = "\
[   88.673624] sysrq: Trigger a crash
[   88.685968] Kernel panic - not syncing: sysrq triggered crash
[   88.689129] CPU: 1 PID: 1 Comm: init Tainted: G           O       6.1.0-57-cloud-arm64 #1  Debian 6.1.192-3
[   88.690057] Call trace:
[   88.690369]  dump_backtrace+0xe4/0x140
[   88.691877]  dump_stack+0x18/0x34
[   88.691877]  panic+0x184/0x364
[   88.692185]  sysrq_reset_seq_param_set+0x0/0xa0
[   88.692464]  __handle_sysrq+0x90/0x19c
[   88.702110]  el0t_64_sync+0x18c/0x190
[   88.702700] SMP: stopping secondary CPUs
";

#[test]
fn console_traces_parse_real_blocks() {
    let t = console_traces(CONSOLE_HUNG);
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].pid, t[0].comm.as_deref(), t[0].cpu),
        (Some(126), Some("touch"), None)
    );
    assert!(!t[0].is_panic() && t[0].causes[0].starts_with("INFO: task touch:126"));
    assert_eq!(
        t[0].frames.len(),
        6,
        "the user RIP/RSP lines inside <TASK> are not frames"
    );
    assert!(!t[0].frames[3].reliable);
    assert_eq!(t[0].frames[3].function, "__percpu_rwsem_trylock.part.0");
    assert!(t[0].frames.iter().all(|f| f.context == "TASK"));
    assert_eq!(t[0].line, 4);
    assert!(t[1].is_panic());
    assert_eq!(
        (t[1].pid, t[1].comm.as_deref(), t[1].cpu),
        (Some(38), Some("khungtaskd"), Some(1))
    );
    assert_eq!(
        t[1].reliable_functions(),
        [
            "dump_stack_lvl",
            "panic",
            "watchdog.cold",
            "kthread",
            "ret_from_fork"
        ]
    );

    let t = console_traces(CONSOLE_OOPS);
    assert_eq!(t.len(), 1);
    let rip = t[0].rip.as_ref().unwrap();
    assert_eq!(
        (
            rip.function.as_str(),
            rip.offset,
            rip.size,
            rip.module.as_deref()
        ),
        (
            "trigger_write",
            Some(0x20),
            Some(0x30),
            Some("fixture_oops")
        )
    );
    assert_eq!(
        t[0].reliable_functions(),
        [
            "trigger_write",
            "full_proxy_write",
            "vfs_write",
            "ksys_write",
            "do_syscall_64",
            "entry_SYSCALL_64_after_hwframe"
        ]
    );
    assert!(!t[0].is_panic(), "the panic line comes after this trace");
    assert_eq!(t[0].causes.len(), 2);

    let t = console_traces(CONSOLE_ARM64);
    assert_eq!(t.len(), 1);
    assert!(t[0].is_panic() && t[0].rip.is_none());
    assert_eq!(
        t[0].frames.len(),
        6,
        "the trace ends at the first line that is no entry"
    );
    assert!(
        t[0].frames
            .iter()
            .all(|f| f.reliable && f.context.is_empty())
    );
    assert_eq!(t[0].frames[3].offset, Some(0));
}

// x86_64-6.1-smp4-hung and x86_64-6.1-oops, drgn/stacks.txt (the error line is made up: no
// set has one)
const DRGN: &str = "\
symbols kallsyms,module_kallsyms,elf
cpu 0 curr 0xff2e67e6c2a70000 idle 0xffffffff9341aa40 panic no regs prstatus
cpu 3 curr 0xff2e67e6c1a9a0c0 idle 0xff2e67e6c12a0000 panic yes regs prstatus
task 0xff2e67e6c1a9a0c0 pid 39 comm khungtaskd cpu 3 running yes
0 0xffffffff923c3643 0xff3eddef00167e38 inline __preempt_count_add delay_tsc+0x33/0xa0 - interrupted
1 0xffffffff923c3643 0xff3eddef00167e38 phys delay_tsc delay_tsc+0x33/0xa0 - interrupted
2 0xffffffff923cd21a 0xff3eddef00167e40 phys panic panic+0x2e9/0x2f4 - -
3 0xffffffff923d773d 0xff3eddef00167ec0 inline check_hung_uninterruptible_tasks watchdog.cold+0xc/0xbb - -
4 0xffffffff923d773d 0xff3eddef00167ec0 phys watchdog watchdog.cold+0xc/0xbb - -
5 0xffffffff91abfbfa 0xff3eddef00167f20 phys kthread kthread+0xda/0x100 - -
6 0xffffffff91a032f2 0xff3eddef00167f58 phys ret_from_fork ret_from_fork+0x22/0x30 - -
task 0xff39621181204180 pid 1 comm init cpu - running no
8 0xffffffffc04c7020 0xff5fd69a80013b28 phys trigger_write trigger_write+0x20/0x30 fixture_oops interrupted
12 0x4bfde3 0x7ffd08f9a108 phys ? - - interrupted
task 0xff2e67e6c1a9a0c1 pid 5 comm kworker/0:0 spaced cpu - running no
error: FaultError: could not read memory at 0xff3eddef00167e38
";

#[test]
fn drgn_stacks_parse_real_lines() {
    let d = drgn_stacks(DRGN).unwrap();
    assert_eq!(d.symbols, ["kallsyms", "module_kallsyms", "elf"]);
    assert_eq!(d.cpus.len(), 2);
    assert_eq!(
        (d.cpus[1].cpu, d.cpus[1].panic, d.cpus[1].regs.as_str()),
        (3, true, "prstatus")
    );
    assert_eq!(d.cpus[1].curr, Some(0xff2e67e6c1a9a0c0));
    let k = d.by_pid(39).unwrap();
    assert_eq!(
        (k.cpu, k.running, k.addr),
        (Some(3), true, 0xff2e67e6c1a9a0c0)
    );
    assert_eq!(k.frames.len(), 7);
    assert_eq!(k.functions()[3], "check_hung_uninterruptible_tasks");
    assert_eq!(
        k.physical_symbols(),
        [
            "delay_tsc",
            "panic",
            "watchdog.cold",
            "kthread",
            "ret_from_fork"
        ]
    );
    let f: &Frame = &k.frames[0];
    assert!(f.inline && f.interrupted && f.pc == Some(0xffffffff923c3643));
    assert_eq!((f.offset, f.size), (Some(0x33), Some(0xa0)));
    let init = d.by_pid(1).unwrap();
    assert_eq!(init.frames[0].module.as_deref(), Some("fixture_oops"));
    assert_eq!(
        (
            init.frames[1].function.as_str(),
            init.frames[1].symbol.as_deref()
        ),
        ("?", None)
    );
    let w = d.by_pid(5).unwrap();
    assert_eq!(w.comm, "kworker/0:0 spaced");
    assert!(w.error.as_deref().unwrap().starts_with("FaultError"));
    assert!(
        drgn_stacks("0 0x1 0x2 phys f - - -\n").is_err(),
        "a frame before any task"
    );
    assert!(
        drgn_stacks("task 0x1 pid 1 comm a cpu - running no\n0 0x1 0x2 odd f - - -\n").is_err()
    );
}

#[test]
fn subsequence_allows_gaps_not_reordering() {
    assert_eq!(
        subsequence_mismatch(&["b", "d"], &["a", "b", "c", "d"]),
        None
    );
    assert_eq!(
        subsequence_mismatch(&["d", "b"], &["a", "b", "c", "d"]),
        Some(1)
    );
    assert_eq!(subsequence_mismatch(&["x"], &[]), Some(0));
}

/// The live stacks that cannot have changed before the crash: a `sleep` task stays in
/// clock_nanosleep and the waiting shell in wait4 (its child sleeps for hours); kthreadd and
/// khungtaskd may wake (a new kernel thread, the hung-task scan) and are not compared.
fn cannot_have_moved(s: &stacks::LiveStack) -> bool {
    s.comm == "sleep" || s.comm == "sh"
}

#[test]
fn live_and_drgn_stacks_agree_on_every_set() {
    for set in fixtures::SETS {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let st = stacks::read_set(&dir);
        let (Some(live), Some(drgn)) = (st.live, st.drgn) else {
            continue;
        };
        let busy = fixtures::workload(&dir) == "busy";
        assert_eq!(
            drgn.symbols.first().map(String::as_str),
            Some("kallsyms"),
            "{set}: drgn/stacks.txt names frames by the ELF symbol table, not the kernel's kallsyms (see its symbols line and build.log)"
        );
        let count = |c: &str| live.iter().filter(|s| s.comm == c).count();
        assert_eq!(count("sleep"), 3, "{set}: the three sleep tasks");
        assert_eq!(
            (count("sh"), count("kthreadd")),
            (1, 1),
            "{set}: the waiting shell, kthreadd"
        );
        assert_eq!(
            count("touch"),
            usize::from(busy),
            "{set}: the blocked writer"
        );
        for s in &live {
            assert!(
                !s.unreadable && !s.frames.is_empty(),
                "{set}: /proc/{}/stack was empty or unreadable",
                s.pid
            );
            let d = drgn
                .by_pid(s.pid)
                .unwrap_or_else(|| panic!("{set}: pid {} not in drgn/stacks.txt", s.pid));
            assert_eq!(d.comm, s.comm, "{set}: pid {}", s.pid);
            // `func+0xOFF/0xSIZE`: the same return addresses, named the same way
            let form = |f: &Frame| {
                format!(
                    "{}+{:#x}/{:#x}",
                    f.symbol_name(),
                    f.offset.unwrap_or(0),
                    f.size.unwrap_or(0)
                )
            };
            let want: Vec<String> = s.frames.iter().map(form).collect();
            let have: Vec<String> = d.frames.iter().filter(|f| !f.inline).map(form).collect();
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            let have: Vec<&str> = have.iter().map(String::as_str).collect();
            let mismatch = subsequence_mismatch(&want, &have);
            if !cannot_have_moved(s) {
                if mismatch.is_some() {
                    eprintln!(
                        "{set}: pid {} {} ran after the live capture: {want:?} then {have:?}",
                        s.pid, s.comm
                    );
                }
                continue;
            }
            assert!(
                d.error.is_none(),
                "{set}: drgn could not unwind pid {}: {:?}",
                s.pid,
                d.error
            );
            if let Some(i) = mismatch {
                panic!(
                    "{set}: pid {} {}: live frame {i} ({}) not found in order in drgn's physical frames\n live: {want:?}\n drgn: {have:?}",
                    s.pid, s.comm, want[i]
                );
            }
        }
        let errors = drgn.tasks.iter().filter(|t| t.error.is_some()).count();
        eprintln!(
            "{set}: {} live stacks, all in drgn; the {} that cannot have moved agree frame for frame; drgn: {} tasks, {errors} with an error",
            live.len(),
            live.iter().filter(|s| cannot_have_moved(s)).count(),
            drgn.tasks.len()
        );
    }
}

/// Whether a console entry names the same return address as a drgn frame. x86 prints `%pB`
/// (the symbol of the address minus one, as drgn's frame.symbol() looks it up); arm64 prints
/// `%pS` (arch/arm64/kernel/stacktrace.c), the symbol of the address itself, so a call that
/// never returns, the last instruction of its function, is named after the next function at
/// `+0x0` (`sysrq_reset_seq_param_set+0x0/0xa0` for the return into sysrq_handle_crash), where
/// drgn has the caller at an offset equal to its size.
fn console_matches(c: &Frame, d: &Frame) -> bool {
    c.function == d.symbol_name()
        || (c.offset == Some(0) && d.offset.is_some() && d.offset == d.size)
}

#[test]
fn console_and_drgn_stacks_agree_on_every_set() {
    for set in fixtures::SETS {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let st = stacks::read_set(&dir);
        let Some(drgn) = st.drgn else { continue };
        let crash = st.console.iter().rfind(|t| t.is_panic()).or_else(|| {
            st.console.iter().rfind(|t| {
                t.causes
                    .iter()
                    .any(|c| c.starts_with("Oops:") || c.starts_with("Internal error:"))
            })
        });
        let crash =
            crash.unwrap_or_else(|| panic!("{set}: no panic or oops Call Trace in console.log"));
        let mut checked = 0;
        for t in &st.console {
            // the crash's trace from `panic` outwards (an oops: from the faulting function), and
            // the hung-task report's trace of a task blocked in D state until the crash
            let frames: Vec<&Frame> = if std::ptr::eq(t, crash) {
                let all: Vec<&Frame> = t
                    .rip
                    .iter()
                    .chain(t.frames.iter().filter(|f| f.reliable))
                    .collect();
                let from = all.iter().position(|f| f.function == "panic").unwrap_or(0);
                all[from..].to_vec()
            } else if t.causes.iter().any(|c| c.starts_with("INFO: task ")) {
                t.frames.iter().filter(|f| f.reliable).collect()
            } else {
                continue;
            };
            let pid = t.pid.unwrap_or_else(|| {
                panic!("{set}: console line {}: no pid before the trace", t.line)
            });
            let d = match (pid, t.cpu) {
                (0, Some(cpu)) => {
                    let curr = drgn.cpus.iter().find(|c| c.cpu == cpu).and_then(|c| c.curr);
                    drgn.tasks.iter().find(|d| Some(d.addr) == curr)
                }
                _ => drgn.by_pid(pid),
            };
            let d = d.unwrap_or_else(|| {
                panic!(
                    "{set}: pid {pid} of console line {} not in drgn/stacks.txt",
                    t.line
                )
            });
            let phys: Vec<&Frame> = d.frames.iter().filter(|f| !f.inline).collect();
            let mut rest = phys.iter();
            for (i, c) in frames.iter().enumerate() {
                assert!(
                    rest.any(|f| console_matches(c, f)),
                    "{set}: console line {}, pid {pid}: entry {i} {:?} not found in order in drgn's physical frames {:?}",
                    t.line,
                    c.function,
                    phys.iter().map(|f| f.symbol_name()).collect::<Vec<_>>()
                );
            }
            checked += 1;
        }
        eprintln!("{set}: {checked} console trace(s) agree with drgn");
    }
}
