//! The tasks plugin without a dump: the ps renderers byte for byte against procps-ng's own
//! output, and the collector against an in-memory kernel (tests/common/fake_kernel.rs).
//!
//! Expected ps lines are procps-ng 4.0.2 output captured on a Linux host (`ps auxwwwm`,
//! `ps alxwww`, `ps -elfL`), with the user name `root` written as the uid `0` (a dump has no
//! /etc/passwd; see docs/plugins/tasks.md) and the command line shortened; the task values were
//! chosen to be the ones that host reported in `/proc/<pid>/stat`.

mod common;

use common::fake_kernel::{FakeKernel, Node, int, null, ptr, s, st};
use vmcore_report::kernel::{AResult, AccessError};
use vmcore_report::plugins::tasks::collect::{Clock, collect, list_tasks};
use vmcore_report::plugins::tasks::record::{MmInfo, Task, TasksReport};
use vmcore_report::plugins::tasks::render::{blocked_txt, ps_alxwww, ps_auxwwwm, ps_elfl};

/// 2026-12-01 22:55:00 UTC, 300 s after boot (boot at 22:50:00).
const NOW: i64 = 1_796_165_700;

fn report(tasks: Vec<Task>) -> TasksReport {
    TasksReport {
        now_epoch: Some(NOW),
        uptime_s: Some(300.0),
        mem_total_kb: Some(26_000_000),
        page_size: 4096,
        tasks,
        ..Default::default()
    }
}

/// The host's pid 1: 13 threads, nice −10, locked pages, 1.5 s of CPU, started at boot.
fn process_api() -> Vec<Task> {
    let leader = Task {
        task: "0x1000".into(),
        pid: 1,
        tgid: 1,
        ppid: 0,
        comm: b"process_api".to_vec(),
        state: 'S',
        flags: 0x0040_0100,
        prio: Some(110),
        static_prio: Some(110),
        policy: Some(0),
        uid: Some(0),
        euid: Some(0),
        start_boottime_ns: Some(50_000_000),
        sum_exec_runtime_ns: Some(1_500_000_000),
        nr_threads: Some(13),
        pgrp: Some(0),
        session: Some(0),
        tpgid: Some(-1),
        mm: Some(MmInfo {
            total_vm: 12_250,
            locked_vm: 3,
            rss_pages: Some(4_498),
            ..Default::default()
        }),
        cmdline: Some(b"/process_api\0--firecracker-init\0".to_vec()),
        ..Default::default()
    };
    let thread = Task {
        task: "0x2000".into(),
        pid: 59,
        flags: 0x0040_0140,
        prio: Some(120),
        static_prio: Some(120),
        sum_exec_runtime_ns: Some(10_000_000),
        ..leader.clone()
    };
    vec![leader, thread]
}

#[test]
fn ps_alxwww_matches_procps() {
    let r = report(process_api());
    assert_eq!(
        ps_alxwww(&r),
        "F   UID   PID  PPID PRI  NI    VSZ   RSS WCHAN  STAT TTY        TIME COMMAND\n\
         4     0     1     0  10 -10  49000 17992 -      S<Ll ?          0:01 /process_api --firecracker-init\n"
    );
}

#[test]
fn ps_elfl_matches_procps() {
    let r = report(process_api());
    assert_eq!(
        ps_elfl(&r),
        "F S UID        PID  PPID   LWP  C NLWP PRI  NI ADDR SZ WCHAN  STIME TTY          TIME CMD\n\
         4 S 0            1     0     1  0   13  70 -10 - 12250 -      22:50 ?        00:00:01 /process_api --firecracker-init\n\
         5 S 0            1     0    59  0   13  80   0 - 12250 -      22:50 ?        00:00:00 /process_api --firecracker-init\n"
    );
}

#[test]
fn ps_auxwwwm_matches_procps() {
    let r = report(process_api());
    assert_eq!(
        ps_auxwwwm(&r),
        "USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n\
         0            1  0.5  0.0  49000 17992 ?        -    22:50   0:01 /process_api --firecracker-init\n\
         0            -  0.5    -      -     - -        S<Ll 22:50   0:01 -\n\
         0            -  0.0    -      -     - -        SLl  22:50   0:00 -\n"
    );
}

/// A value wider than its column pushes the row right and the next columns win the space back:
/// procps printed `742592 343320 ?       -` (RSS one wider, TTY's padding one shorter).
#[test]
fn overflowing_columns_catch_up_as_procps_does() {
    let mut t = process_api().remove(0);
    t.pid = 308;
    t.tgid = 308;
    t.nr_threads = Some(1);
    t.static_prio = Some(120);
    t.prio = Some(120);
    t.mm = Some(MmInfo {
        total_vm: 742_592 / 4,
        locked_vm: 0,
        rss_pages: Some(343_320 / 4),
        ..Default::default()
    });
    let out = ps_auxwwwm(&report(vec![t]));
    let row = out.lines().nth(1).unwrap();
    assert_eq!(
        row,
        "0          308  0.5  1.3 742592 343320 ?       -    22:50   0:01 /process_api --firecracker-init"
    );
}

/// Kernel threads print `[comm]`, zombies `[comm] <defunct>`, RT tasks `-` for NI (after a
/// PRI of `-100`, one wider than its column, which NI's padding absorbs), and a task started
/// two days ago its month and day.
#[test]
fn kernel_threads_zombies_rt_and_old_starts() {
    let base = Task {
        pid: 2,
        tgid: 2,
        comm: b"kthreadd".to_vec(),
        state: 'S',
        flags: 0x0020_8040,
        prio: Some(120),
        static_prio: Some(120),
        policy: Some(0),
        euid: Some(0),
        kthread: true,
        nr_threads: Some(1),
        ..Default::default()
    };
    let rt = Task {
        pid: 16,
        tgid: 16,
        comm: b"migration/0".to_vec(),
        prio: Some(0),
        policy: Some(1),
        rt_priority: Some(99),
        ..base.clone()
    };
    let zombie = Task {
        pid: 70,
        tgid: 70,
        ppid: 1,
        comm: b"sh".to_vec(),
        state: 'Z',
        kthread: false,
        flags: 0x0040_0044,
        ..base.clone()
    };
    let mut r = report(vec![base, rt, zombie]);
    r.now_epoch = Some(NOW + 86_400 * 2);
    r.uptime_s = Some(300.0 + 86_400.0 * 2.0);
    assert_eq!(
        ps_alxwww(&r),
        "F   UID   PID  PPID PRI  NI    VSZ   RSS WCHAN  STAT TTY        TIME COMMAND\n\
         1     0     2     0  20   0      0     0 -      S    ?          0:00 [kthreadd]\n\
         1     0    16     0 -100  -      0     0 -      S    ?          0:00 [migration/0]\n\
         1     0    70     1  20   0      0     0 -      Z    ?          0:00 [sh] <defunct>\n"
    );
    let elf = ps_elfl(&r);
    assert!(
        elf.contains(" Dec01 ?        00:00:00 [kthreadd]\n"),
        "{elf}"
    );
}

#[test]
fn blocked_tasks_listed_for_people() {
    let mut r = report(vec![]);
    r.blocked = vec![vmcore_report::plugins::tasks::record::Blocked {
        pid: 124,
        tgid: 124,
        comm: b"touch".to_vec(),
        task: "0xffff888001234000".into(),
        cpu: Some(0),
        blocked_ns: Some(10_524_000_000),
        since_last_switch_s: Some(2.048),
    }];
    let t = blocked_txt(&r);
    assert!(t.starts_with("1 task(s) in D state"), "{t}");
    assert!(
        t.ends_with("    124     124    0        10.524s        2.048s 0xffff888001234000 touch\n"),
        "{t}"
    );
}

// ---- the collector, on an in-memory kernel ----------------------------------------------------

/// A `struct pid` with `numbers[0].nr`.
fn pid_obj(k: &mut FakeKernel, nr: i64) -> u64 {
    k.alloc(st(vec![(
        "numbers",
        Node::Array(vec![st(vec![("nr", int(nr))])]),
    )]))
}

struct TaskSpec<'a> {
    pid: i64,
    tgid: i64,
    comm: &'a str,
    state: i64,
    parent: u64,
    signal: u64,
    mm: Option<u64>,
    cpu: i64,
    last_arrival: i64,
}

/// A `task_struct` whose scheduler state is the member `state_member` (`__state` since 5.14,
/// `state` before).
fn task(k: &mut FakeKernel, state_member: &'static str, at: u64, cred: u64, t: TaskSpec<'_>) {
    k.set(
        at,
        st(vec![
            (state_member, int(t.state)),
            ("exit_state", int(0)),
            (
                "flags",
                int(if t.mm.is_some() { 0x40_0000 } else { 0x20_0040 }),
            ),
            ("pid", int(t.pid)),
            ("tgid", int(t.tgid)),
            ("comm", s(t.comm)),
            ("cpu", int(t.cpu)),
            ("prio", int(120)),
            ("static_prio", int(120)),
            ("rt_priority", int(0)),
            ("policy", int(0)),
            ("real_parent", ptr(t.parent, "")),
            ("real_cred", ptr(cred, "")),
            ("start_boottime", int(1_000_000_000)),
            ("utime", int(0)),
            ("stime", int(0)),
            ("se", st(vec![("sum_exec_runtime", int(2_000_000_000))])),
            (
                "sched_info",
                st(vec![("last_arrival", int(t.last_arrival))]),
            ),
            ("last_switch_time", int(0)),
            ("signal", ptr(t.signal, "")),
            ("mm", t.mm.map_or(null(), |m| ptr(m, ""))),
            ("tasks", Node::List(vec![])),
            ("thread_node", Node::List(vec![])),
        ]),
    );
}

/// init (pid 1), kthreadd (2), a two-thread process (100, 101) whose 101 is blocked in D, on a
/// 2-CPU machine whose CPU 0 runs init; mm_struct with the 6.2+ `rss_stat[]` for 100, the older
/// `rss_stat.count[]` for init.
fn fake_kernel() -> FakeKernel {
    fake_kernel_with("__state")
}

/// [`fake_kernel`] with the tasks' state in `state_member`.
fn fake_kernel_with(state_member: &'static str) -> FakeKernel {
    let mut k = FakeKernel::new();
    for (n, v) in [
        ("PIDTYPE_PID", 0),
        ("PIDTYPE_TGID", 1),
        ("PIDTYPE_PGID", 2),
        ("PIDTYPE_SID", 3),
        ("MM_FILEPAGES", 0),
        ("MM_ANONPAGES", 1),
        ("MM_SWAPENTS", 2),
        ("MM_SHMEMPAGES", 3),
    ] {
        k.enumerators.insert(n.into(), v);
    }
    let cred = k.alloc(st(vec![
        ("uid", st(vec![("val", int(1000))])),
        ("gid", st(vec![("val", int(1000))])),
        ("euid", st(vec![("val", int(1000))])),
        ("egid", st(vec![("val", int(1000))])),
    ]));
    let (swapper, t1, t2, t100, t101) = (
        k.reserve(),
        k.reserve(),
        k.reserve(),
        k.reserve(),
        k.reserve(),
    );
    let p1 = pid_obj(&mut k, 1);
    let p100 = pid_obj(&mut k, 100);
    let sig = |k: &mut FakeKernel, threads: Vec<u64>, grp: u64| {
        let pids = Node::Array(vec![null(), null(), ptr(grp, ""), ptr(grp, "")]);
        k.alloc(st(vec![
            ("nr_threads", int(threads.len() as i64)),
            ("pids", pids),
            ("tty", null()),
            (
                "thread_head",
                Node::List(threads.into_iter().map(|t| (t, String::new())).collect()),
            ),
        ]))
    };
    let s0 = sig(&mut k, vec![], p1);
    let s1 = sig(&mut k, vec![t1], p1);
    let s2 = sig(&mut k, vec![t2], p1);
    let s100 = sig(&mut k, vec![t100, t101], p100);
    let counters =
        |v: [i64; 4]| Node::Array(v.iter().map(|&c| st(vec![("count", int(c))])).collect());
    let mm_new = k.alloc(st(vec![
        ("pgd", int(0xffff_8880_0bad_c000_u64 as i64)),
        ("total_vm", int(1000)),
        ("locked_vm", int(0)),
        ("rss_stat", counters([10, 20, 999, 3])),
        ("arg_start", int(0x7ffd_0000)),
        ("arg_end", int(0x7ffd_000c)),
        ("env_start", int(0x7ffd_000c)),
        ("env_end", int(0x7ffd_0020)),
    ]));
    let mm_old = k.alloc(st(vec![
        ("pgd", int(0xffff_8880_0bad_d000_u64 as i64)),
        ("total_vm", int(500)),
        ("locked_vm", int(0)),
        (
            "rss_stat",
            st(vec![(
                "count",
                Node::Array(
                    [5, 6, 7, 8]
                        .iter()
                        .map(|&c| st(vec![("counter", int(c))]))
                        .collect(),
                ),
            )]),
        ),
        ("arg_start", int(0)),
        ("arg_end", int(0)),
    ]));
    let spec = |pid, tgid, comm, state, parent, signal, mm, cpu, last_arrival| TaskSpec {
        pid,
        tgid,
        comm,
        state,
        parent,
        signal,
        mm,
        cpu,
        last_arrival,
    };
    task(
        &mut k,
        state_member,
        swapper,
        cred,
        spec(0, 0, "swapper/0", 0, swapper, s0, None, 0, 0),
    );
    task(
        &mut k,
        state_member,
        t1,
        cred,
        spec(1, 1, "init", 0, swapper, s1, Some(mm_old), 0, 9_000_000_000),
    );
    task(
        &mut k,
        state_member,
        t2,
        cred,
        spec(2, 2, "kthreadd", 1, swapper, s2, None, 1, 0),
    );
    task(
        &mut k,
        state_member,
        t100,
        cred,
        spec(100, 100, "app", 1, t1, s100, Some(mm_new), 1, 0),
    );
    task(
        &mut k,
        state_member,
        t101,
        cred,
        spec(
            101,
            100,
            "app-worker",
            2,
            t1,
            s100,
            Some(mm_new),
            1,
            6_500_000_000,
        ),
    );
    // init_task is the boot CPU's idle task; its `tasks` list holds the processes.
    k.var(
        "init_task",
        st(vec![
            ("pid", int(0)),
            (
                "tasks",
                Node::List(vec![
                    (t1, String::new()),
                    (t2, String::new()),
                    (t100, String::new()),
                ]),
            ),
        ]),
    );
    let rq0 = k.alloc(st(vec![
        ("curr", ptr(t1, "")),
        ("clock", int(10_000_000_000)),
        ("idle", ptr(swapper, "")),
    ]));
    let rq1 = k.alloc(st(vec![
        ("curr", ptr(t100, "")),
        ("clock", int(10_500_000_000)),
        ("idle", null()),
    ]));
    k.var("runqueues", Node::PerCpu(vec![Some(rq0), Some(rq1)]));
    k.cpumasks.insert("__cpu_possible_mask".into(), vec![0, 1]);
    k.var("_totalram_pages", st(vec![("counter", int(65536))]));
    k.var("tick_nsec", int(4_000_000));
    k.var("jiffies_64", int(0));
    k
}

fn clock() -> Clock {
    Clock {
        now_epoch: Some(NOW),
        uptime_s: Some(10.5),
        page_size: 4096,
    }
}

#[test]
fn collector_reads_every_task_as_proc_would() {
    let k = fake_kernel();
    let listed = list_tasks(&k);
    assert!(listed.unreadable.is_empty(), "{:?}", listed.unreadable);
    let c = collect(&k, listed, &clock(), None);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let r = &c.report;
    let by_pid = |p: i64| r.tasks.iter().find(|t| t.pid == p && !t.idle).unwrap();
    // pid, tgid, ppid (real_parent's tgid), state letters, uid from real_cred
    let ids: Vec<(i64, i64, i64, char)> = r
        .tasks
        .iter()
        .filter(|t| !t.idle)
        .map(|t| (t.pid, t.tgid, t.ppid, t.state))
        .collect();
    assert_eq!(
        ids,
        vec![
            (1, 1, 0, 'R'),
            (2, 2, 0, 'S'),
            (100, 100, 1, 'S'),
            (101, 100, 1, 'D')
        ]
    );
    assert_eq!(by_pid(100).uid, Some(1000));
    // RSS = file + anon + shmem, in both layouts; swap entries are not resident.
    assert_eq!(
        by_pid(100).mm.as_ref().unwrap().rss_pages,
        Some(10 + 20 + 3)
    );
    assert_eq!(by_pid(1).mm.as_ref().unwrap().rss_pages, Some(5 + 6 + 8));
    assert!(by_pid(2).kthread && by_pid(2).mm.is_none());
    // process group and session through signal->pids[]
    assert_eq!(
        (by_pid(101).pgrp, by_pid(101).session),
        (Some(100), Some(100))
    );
    // on-CPU tasks and the idle task
    assert!(by_pid(1).on_cpu && by_pid(100).on_cpu && !by_pid(101).on_cpu);
    let idle: Vec<i64> = r.tasks.iter().filter(|t| t.idle).map(|t| t.pid).collect();
    assert_eq!(idle, vec![0]);
    // MemTotal from _totalram_pages
    assert_eq!(r.mem_total_kb, Some(65536 * 4));
    // The D task: blocked since its last arrival, on its CPU's runqueue clock (10.5 s − 6.5 s).
    assert_eq!(r.blocked.len(), 1);
    assert_eq!(r.blocked[0].pid, 101);
    assert_eq!(r.blocked[0].blocked_ns, Some(4_000_000_000));
    // Without user memory, COMMAND is the comm, and the JSON says why.
    assert!(by_pid(100).cmdline.is_none());
    assert!(r.notes[0].starts_with("cmdline:"), "{:?}", r.notes);
    let alx = ps_alxwww(r);
    assert!(
        alx.contains("  100     1  20   0   4000   132 -      Ssl  ?          0:04 app\n"),
        "{alx}"
    );
}

/// Before 5.14 the state is `task_struct.state` (the x86_64-5.10 and aarch64-5.10 sets): the
/// same letters from it.
#[test]
fn the_state_member_before_5_14() {
    let k = fake_kernel_with("state");
    let c = collect(&k, list_tasks(&k), &clock(), None);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let states: Vec<(i64, char)> = c
        .report
        .tasks
        .iter()
        .filter(|t| !t.idle)
        .map(|t| (t.pid, t.state))
        .collect();
    assert_eq!(states, vec![(1, 'R'), (2, 'S'), (100, 'S'), (101, 'D')]);
    assert_eq!(c.report.blocked.len(), 1);
}

#[test]
fn command_lines_come_from_user_memory_through_the_tasks_page_tables() {
    let k = fake_kernel();
    let user = |pgd: u64, addr: u64, len: usize| -> AResult<Vec<u8>> {
        // Only app's page tables map its argument page.
        assert_eq!(pgd, 0xffff_8880_0bad_c000);
        let page = b"/bin/app\0-v\0\0HOME=/root\0PATH=/bin\0".to_vec();
        let off = (addr - 0x7ffd_0000) as usize;
        page.get(off..off + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| AccessError::new("not-dumped", format!("{addr:#x}")))
    };
    let c = collect(&k, list_tasks(&k), &clock(), Some(&user));
    let app = c.report.tasks.iter().find(|t| t.pid == 100).unwrap();
    assert_eq!(app.cmdline.as_deref(), Some(&b"/bin/app\0-v\0"[..]));
    let aux = ps_auxwwwm(&c.report);
    assert!(aux.lines().any(|l| l.ends_with(" /bin/app -v")), "{aux}");
    // init has an empty argument area: an empty command line, shown as its comm.
    let init = c.report.tasks.iter().find(|t| t.pid == 1).unwrap();
    assert_eq!(init.cmdline.as_deref(), Some(&b""[..]));
}

#[test]
fn an_unreadable_task_list_is_recorded_not_fatal() {
    let mut k = FakeKernel::new();
    k.var("init_task", st(vec![("pid", int(0)), ("tasks", Node::Bad)]));
    let listed = list_tasks(&k);
    assert_eq!(listed.tasks.len(), 0);
    assert_eq!(listed.unreadable.len(), 1);
    assert!(listed.unreadable[0].error.contains("task enumeration"));
    let c = collect(&k, listed, &clock(), None);
    assert_eq!(c.report.unreadable.len(), 1);
    // A task whose struct cannot be read is kept by address.
    let mut k = fake_kernel();
    let bad = k.alloc(Node::Bad);
    let mut listed = list_tasks(&k);
    listed.tasks.push(common::fake_kernel::Obj {
        base: bad,
        path: vec![],
        node: std::rc::Rc::new(Node::Bad),
    });
    let c = collect(&k, listed, &clock(), None);
    assert_eq!(c.report.unreadable.len(), 1);
    assert_eq!(
        c.report.unreadable[0].task.as_deref(),
        Some(&*format!("{bad:#x}"))
    );
}
