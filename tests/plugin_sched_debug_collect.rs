//! The sched_debug collector on in-memory kernels (tests/common/fake_kernel.rs): which lines each layout
//! prints, the values they carry, the order of sections and tasks, and how it degrades. Expected
//! values are the builder's own numbers and the kernel's rules stated next to each assertion.

mod common;

use common::fake_kernel::*;
use vmcore_report::plugins::sched_debug::collect::collect;
use vmcore_report::plugins::sched_debug::record::*;
use vmcore_report::plugins::sched_debug::render::render;

struct Task {
    pid: i64,
    comm: &'static str,
    cpu: i64,
    state: i64,
    vruntime: i64,
    sum_exec: i64,
    tg: u64,
}

fn task_node(k: &FakeKernel, t: &Task, signal: u64, cfs_rq: (u64, &str), eevdf: bool) -> Node {
    let _ = k;
    let mut se = vec![
        ("load", st(vec![("weight", int(1_048_576))])),
        (
            "run_node",
            st(vec![("rb_right", null()), ("rb_left", null())]),
        ),
        ("on_rq", int4(1)),
        ("exec_start", int(0)),
        ("sum_exec_runtime", int(t.sum_exec)),
        ("vruntime", int(t.vruntime)),
        ("cfs_rq", ptr(cfs_rq.0, cfs_rq.1)),
    ];
    if eevdf {
        se.push(("deadline", int(t.vruntime + 3_000_000)));
        se.push(("min_vruntime", int(t.vruntime)));
        se.push(("slice", int(3_000_000)));
        se.push(("custom_slice", Node::Int(i64::from(t.pid == 300), 1)));
    }
    st(vec![
        ("thread_info", st(vec![("cpu", int4(t.cpu))])),
        ("__state", int4(t.state)),
        ("exit_state", int4(0)),
        ("pid", int4(t.pid)),
        ("prio", int4(120)),
        ("comm", s(t.comm)),
        ("nvcsw", int(t.pid * 2)),
        ("nivcsw", int(1)),
        ("se", st(se)),
        (
            "stats",
            st(vec![
                ("wait_sum", int(7)),
                ("sum_sleep_runtime", int(8)),
                ("sum_block_runtime", int(9)),
            ]),
        ),
        ("numa_group", null()),
        ("sched_task_group", ptr(t.tg, "")),
        ("signal", ptr(signal, "")),
    ])
}

struct Built {
    k: FakeKernel,
}

/// A 6.1-like kernel (CFS, group scheduling, schedstats off) with two CPUs, a child task group
/// `/system.slice` queued on CPU 0, and a two-thread process whose threads sit on different CPUs.
/// `eevdf` turns it into a 6.12-like one. `cpu1_missing` leaves CPU 1's runqueue out of the dump.
fn build(eevdf: bool, cpu1_missing: bool, rq_symbol: Option<&str>) -> Built {
    let mut k = FakeKernel::new();
    k.var(
        "init_uts_ns",
        st(vec![(
            "name",
            st(vec![
                ("sysname", s("Linux")),
                ("nodename", s("lab-guest")),
                ("release", s("6.1.0-56-cloud-amd64")),
                (
                    "version",
                    s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"),
                ),
            ]),
        )]),
    );
    k.var(
        "tk_core",
        st(vec![(
            "timekeeper",
            st(vec![(
                "tkr_mono",
                st(vec![
                    ("base", int(3_560_000_000)),
                    ("xtime_nsec", int(721_150 << 8)),
                    ("shift", int4(8)),
                ]),
            )]),
        )]),
    );
    k.var("jiffies", int(4_294_893_186));
    k.var(
        "__sched_clock_stable",
        st(vec![(
            "key",
            st(vec![("enabled", st(vec![("counter", int4(0))]))]),
        )]),
    );
    k.var(
        "sched_schedstats",
        st(vec![(
            "key",
            st(vec![("enabled", st(vec![("counter", int4(0))]))]),
        )]),
    );
    if eevdf {
        k.var("sysctl_sched_base_slice", int4(3_000_000));
    } else {
        k.var("sysctl_sched_latency", int4(12_000_000));
        k.var("sysctl_sched_min_granularity", int4(1_500_000));
        k.var("sysctl_sched_idle_min_granularity", int4(750_000));
        k.var("sysctl_sched_wakeup_granularity", int4(2_000_000));
        k.var("sysctl_sched_child_runs_first", int4(0));
    }
    k.var("sysctl_sched_features", int4(125_703_739));
    k.var("sysctl_sched_tunable_scaling", int4(1));
    k.var("cpu_khz", int4(2_442_571));
    k.cpumasks.insert("__cpu_online_mask".into(), vec![0, 1]);

    let kn_root = k.alloc(st(vec![("parent", null()), ("name", s(""))]));
    let kn_child = k.alloc(st(vec![
        ("parent", ptr(kn_root, "")),
        ("name", s("system.slice")),
    ]));
    let cg_root = k.alloc(st(vec![("kn", ptr(kn_root, ""))]));
    let cg_child = k.alloc(st(vec![("kn", ptr(kn_child, ""))]));
    let tg_root = k.alloc(st(vec![
        ("css", st(vec![("cgroup", ptr(cg_root, ""))])),
        ("load_avg", st(vec![("counter", int(0))])),
        ("se", null()),
        ("autogroup", null()),
    ]));
    let gse0 = k.alloc(st(vec![
        ("load", st(vec![("weight", int(1_048_576))])),
        ("exec_start", int(3_541_000_000)),
        ("vruntime", int(2_090_000_000)),
        ("sum_exec_runtime", int(12_345_678)),
        (
            "avg",
            st(vec![
                ("load_avg", int(1024)),
                ("util_avg", int(10)),
                ("runnable_avg", int(11)),
            ]),
        ),
    ]));
    let se_arr = k.alloc(Node::Array(vec![ptr(gse0, ""), null()]));
    let tg_child = k.alloc(st(vec![
        ("css", st(vec![("cgroup", ptr(cg_child, ""))])),
        ("load_avg", st(vec![("counter", int(1024))])),
        ("se", ptr(se_arr, "")),
        ("autogroup", null()),
    ]));

    let tasks = [
        Task {
            pid: 1,
            comm: "init",
            cpu: 0,
            state: 1,
            vruntime: 2_072_781_712,
            sum_exec: 1_209_942_824,
            tg: tg_root,
        },
        Task {
            pid: 7,
            comm: "kworker/0:0",
            cpu: 0,
            state: 0x402,
            vruntime: 641_566_332,
            sum_exec: 1_975_620,
            tg: tg_root,
        },
        Task {
            pid: 92,
            comm: "init",
            cpu: 1,
            state: 0,
            vruntime: 1_989_170_182,
            sum_exec: 744_420_281,
            tg: tg_root,
        },
        Task {
            pid: 94,
            comm: "init",
            cpu: 0,
            state: 0,
            vruntime: 2_098_211_775,
            sum_exec: 785_434_764,
            tg: tg_root,
        },
        Task {
            pid: 102,
            comm: "cat",
            cpu: 0,
            state: 0,
            vruntime: 2_095_254_768,
            sum_exec: 14_768_427,
            tg: tg_root,
        },
        Task {
            pid: 199,
            comm: "daemon",
            cpu: 0,
            state: 0,
            vruntime: 5_000_000,
            sum_exec: 1,
            tg: tg_child,
        },
        Task {
            pid: 200,
            comm: "daemon-thr",
            cpu: 1,
            state: 2,
            vruntime: 6_000_000,
            sum_exec: 2,
            tg: tg_child,
        },
    ];
    let bases: Vec<u64> = tasks.iter().map(|_| k.reserve()).collect();
    let rq0 = k.reserve();
    let rq1 = k.reserve();
    let child_cfs0 = k.reserve();
    let rd = k.alloc(st(vec![(
        "dl_bw",
        st(vec![("bw", int(996_147)), ("total_bw", int(0))]),
    )]));
    // One signal_struct per process; thread 200 belongs to process 199.
    let mut signals = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let threads: Vec<(u64, String)> = match t.pid {
            199 => vec![(bases[5], String::new()), (bases[6], String::new())],
            200 => vec![],
            _ => vec![(bases[i], String::new())],
        };
        signals.push(k.alloc(st(vec![("thread_head", Node::List(threads))])));
    }
    signals[6] = signals[5];
    for (i, t) in tasks.iter().enumerate() {
        let cfs = match (t.cpu, t.tg == tg_child) {
            (0, true) => (child_cfs0, ""),
            (0, false) => (rq0, "cfs"),
            _ => (rq1, "cfs"),
        };
        let n = task_node(&k, t, signals[i], cfs, eevdf);
        k.set(bases[i], n);
    }
    let procs: Vec<(u64, String)> = [0usize, 1, 2, 3, 4, 5]
        .iter()
        .map(|&i| (bases[i], String::new()))
        .collect();
    // init_task is a whole task_struct (swapper/0); the layout is probed on it.
    let swapper = Task {
        pid: 0,
        comm: "swapper/0",
        cpu: 0,
        state: 0,
        vruntime: 0,
        sum_exec: 0,
        tg: tg_root,
    };
    let Node::Struct(mut init) = task_node(&k, &swapper, signals[0], (rq0, "cfs"), eevdf) else {
        unreachable!("task_node builds a struct")
    };
    init.push(("tasks".to_string(), Node::List(procs)));
    k.var("init_task", Node::Struct(init));
    let states = [
        "R (running)",
        "S (sleeping)",
        "D (disk sleep)",
        "T (stopped)",
        "t (tracing stop)",
        "X (dead)",
        "Z (zombie)",
        "P (parked)",
        "I (idle)",
    ];
    k.var(
        "task_state_array",
        Node::Array(states.iter().map(|x| s(x)).collect()),
    );

    let cfs_rq = |min_vruntime: i64, leftmost: Node, root: Node, tg: u64, curr: Node, nr: i64| {
        let mut m = vec![
            ("load", st(vec![("weight", int(2_097_152))])),
            ("nr_running", int4(nr)),
        ];
        if eevdf {
            m.push(("h_nr_queued", int4(nr)));
            m.push(("h_nr_runnable", int4(nr)));
            m.push(("idle_nr_running", int4(0)));
            m.push(("idle_h_nr_running", int4(0)));
            m.push(("h_nr_delayed", int4(0)));
            // One queued nice-0 entity 2000 ns right of zero: Σ key·w = 2000·1024.
            m.push(("avg_vruntime", int(2000 * 1024)));
            m.push(("avg_load", int(1024)));
            m.push(("zero_vruntime", int(min_vruntime)));
        } else {
            m.push(("h_nr_running", int4(nr)));
            m.push(("idle_nr_running", int4(0)));
            m.push(("idle_h_nr_running", int4(0)));
            m.push(("exec_clock", int(0)));
            m.push(("min_vruntime", int(min_vruntime)));
            m.push(("nr_spread_over", int4(0)));
        }
        m.push((
            "tasks_timeline",
            st(vec![
                ("rb_root", st(vec![("rb_node", root)])),
                ("rb_leftmost", leftmost),
            ]),
        ));
        m.push(("curr", curr));
        m.push((
            "avg",
            st(vec![
                ("load_avg", int(2122)),
                ("runnable_avg", int(1656)),
                ("util_avg", int(895)),
                if eevdf {
                    ("util_est", int4(0))
                } else {
                    (
                        "util_est",
                        st(vec![("enqueued", int4(0)), ("ewma", int4(0))]),
                    )
                },
            ]),
        ));
        m.push((
            "removed",
            st(vec![
                ("nr", int4(0)),
                ("load_avg", int(0)),
                ("util_avg", int(0)),
                ("runnable_avg", int(0)),
            ]),
        ));
        m.push(("tg_load_avg_contrib", int(0)));
        m.push(("tg", ptr(tg, "")));
        m.push(("throttled", int4(0)));
        m.push(("throttle_count", int4(0)));
        st(m)
    };
    let rt = |with_throttle: bool| {
        let mut m = vec![("rt_nr_running", int4(0))];
        if !eevdf {
            m.push(("rt_nr_migratory", int4(0)));
        }
        if with_throttle {
            m.push(("rt_throttled", int4(0)));
            m.push(("rt_time", int(0)));
            m.push(("rt_runtime", int(950_000_000)));
        }
        st(m)
    };
    let dl = || {
        let mut m = vec![("dl_nr_running", int4(0))];
        if !eevdf {
            m.push(("dl_nr_migratory", int4(0)));
        }
        st(m)
    };
    let rq = |nr_unint: i64, curr: u64, clock: i64, cfs: Node, leaf: Vec<(u64, String)>| {
        st(vec![
            ("nr_running", int4(2)),
            ("nr_switches", int(862)),
            ("nr_uninterruptible", int(nr_unint)),
            ("next_balance", int(4_294_893_198)),
            ("curr", ptr(curr, "")),
            ("clock", int(clock)),
            ("clock_task", int(clock)),
            ("avg_idle", int(1_203_264)),
            ("max_idle_balance_cost", int(594_581)),
            ("cfs", cfs),
            ("leaf_cfs_rq_list", Node::List(leaf)),
            ("rt", rt(!eevdf)),
            ("dl", dl()),
            ("rd", ptr(rd, "")),
        ])
    };
    // CPU 0: root cfs_rq has task 94 queued (102 is running), the child group has 199.
    let rq0_node = rq(
        8,
        bases[4],
        3_541_116_020,
        cfs_rq(
            2_095_254_768,
            ptr(bases[3], "se.run_node"),
            ptr(bases[3], "se.run_node"),
            tg_root,
            ptr(bases[4], "se"),
            2,
        ),
        vec![(child_cfs0, String::new()), (rq0, "cfs".into())],
    );
    k.set(rq0, rq0_node);
    k.set(
        child_cfs0,
        cfs_rq(
            4_000_000,
            ptr(bases[5], "se.run_node"),
            ptr(bases[5], "se.run_node"),
            tg_child,
            null(),
            1,
        ),
    );
    let rq1_node = rq(
        -8,
        bases[2],
        3_581_002_409,
        cfs_rq(
            1_989_170_182,
            null(),
            null(),
            tg_root,
            ptr(bases[2], "se"),
            1,
        ),
        vec![(rq1, "cfs".into())],
    );
    k.set(rq1, rq1_node);
    let name = rq_symbol.unwrap_or("runqueues");
    k.var(
        name,
        Node::PerCpu(vec![Some(rq0), if cpu1_missing { None } else { Some(rq1) }]),
    );
    Built { k }
}

fn names(fields: &[Field]) -> Vec<&str> {
    fields.iter().map(|f| f.name.as_str()).collect()
}

fn value(fields: &[Field], name: &str) -> i64 {
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .value
}

fn present(c: &CpuBlock) -> &RqBlock {
    match &c.body {
        CpuBody::Present(b) => b,
        CpuBody::Missing { reason } => panic!("cpu {} missing: {reason}", c.cpu),
    }
}

#[test]
fn cfs_layout_follows_6_1() {
    let b = build(false, false, None);
    let out = collect(&b.k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let sd = out.sched;
    assert_eq!(sd.header.release, b"6.1.0-56-cloud-amd64");
    assert_eq!(
        names(&sd.header.clocks),
        [
            "ktime",
            "sched_clk",
            "cpu_clk",
            "jiffies",
            "sched_clock_stable()"
        ]
    );
    assert_eq!(value(&sd.header.clocks, "ktime"), 3_560_721_150);
    // The most recent runqueue clock is CPU 1's.
    assert_eq!(value(&sd.header.clocks, "sched_clk"), 3_581_002_409);
    assert_eq!(
        names(&sd.header.sysctls),
        [
            "sysctl_sched_latency",
            "sysctl_sched_min_granularity",
            "sysctl_sched_idle_min_granularity",
            "sysctl_sched_wakeup_granularity",
            "sysctl_sched_child_runs_first",
            "sysctl_sched_features"
        ]
    );
    assert_eq!(sd.cpus.len(), 2);
    assert_eq!(sd.cpus[0].khz, Some(2_442_571));
    let c0 = present(&sd.cpus[0]);
    assert_eq!(
        names(&c0.rq),
        [
            "nr_running",
            "nr_switches",
            "nr_uninterruptible",
            "next_balance",
            "curr->pid",
            "clock",
            "clock_task",
            "avg_idle",
            "max_idle_balance_cost"
        ]
    );
    assert_eq!(value(&c0.rq, "curr->pid"), 102);
    // Leaf list order: the child group first, then the root.
    assert_eq!(c0.cfs.len(), 2);
    assert_eq!(c0.cfs[0].path.as_deref(), Some(&b"/system.slice"[..]));
    assert_eq!(c0.cfs[1].path.as_deref(), Some(&b"/"[..]));
    let root = &c0.cfs[1].fields;
    assert_eq!(
        names(root),
        [
            "exec_clock",
            "MIN_vruntime",
            "min_vruntime",
            "max_vruntime",
            "spread",
            "spread0",
            "nr_spread_over",
            "nr_running",
            "h_nr_running",
            "idle_nr_running",
            "idle_h_nr_running",
            "load",
            "load_avg",
            "runnable_avg",
            "util_avg",
            "util_est_enqueued",
            "removed.load_avg",
            "removed.util_avg",
            "removed.runnable_avg",
            "tg_load_avg_contrib",
            "tg_load_avg",
            "throttled",
            "throttle_count"
        ]
    );
    // MIN/max: the only queued entity (task 94); spread0 against CPU 0's own root: 0.
    assert_eq!(value(root, "MIN_vruntime"), 2_098_211_775);
    assert_eq!(value(root, "max_vruntime"), 2_098_211_775);
    assert_eq!(value(root, "spread0"), 0);
    // The child group prints its entity's stats after throttle_count.
    let child = &c0.cfs[0].fields;
    assert_eq!(value(child, "spread0"), 4_000_000 - 2_095_254_768);
    assert_eq!(
        names(&child[child.len() - 7..]),
        [
            "se->exec_start",
            "se->vruntime",
            "se->sum_exec_runtime",
            "se->load.weight",
            "se->avg.load_avg",
            "se->avg.util_avg",
            "se->avg.runnable_avg"
        ]
    );
    assert_eq!(value(child, "tg_load_avg"), 1024);
    assert_eq!(
        names(&c0.rt[0].fields),
        [
            "rt_nr_running",
            "rt_nr_migratory",
            "rt_throttled",
            "rt_time",
            "rt_runtime"
        ]
    );
    assert_eq!(c0.rt[0].path, None);
    assert_eq!(
        names(&c0.dl[0].fields),
        [
            "dl_nr_running",
            "dl_nr_migratory",
            "dl_bw->bw",
            "dl_bw->total_bw"
        ]
    );
    assert_eq!(value(&c0.dl[0].fields, "dl_bw->bw"), 996_147);
    // Tasks: every thread whose task_cpu is 0, in for_each_process_thread order, sleeping ones
    // included; `>R` only for rq->curr; the idle kworker reads I.
    assert_eq!(c0.tasks.columns, TaskColumns::Cfs);
    let rows: Vec<(i32, char, bool)> = c0
        .tasks
        .rows
        .iter()
        .map(|r| (r.pid, r.state, r.current))
        .collect();
    assert_eq!(
        rows,
        [
            (1, 'S', false),
            (7, 'I', false),
            (94, 'R', false),
            (102, 'R', true),
            (199, 'R', false)
        ]
    );
    let daemon = &c0.tasks.rows[4];
    assert_eq!(daemon.group_path.as_deref(), Some(&b"/system.slice"[..]));
    // Schedstats are off: schedstat_val_or_zero() gives 0 although the members hold values.
    assert_eq!(
        (daemon.wait_sum, daemon.sum_sleep, daemon.sum_block),
        (0, 0, Some(0))
    );
    assert_eq!(daemon.numa, Some((0, 0)));
    let c1 = present(&sd.cpus[1]);
    let rows1: Vec<(i32, char, bool)> = c1
        .tasks
        .rows
        .iter()
        .map(|r| (r.pid, r.state, r.current))
        .collect();
    assert_eq!(rows1, [(92, 'R', true), (200, 'D', false)]);
    assert_eq!(value(&c1.rq, "nr_uninterruptible"), -8);
    // Empty timeline: MIN and max are -1, spread0 is relative to CPU 0's min_vruntime.
    let r1 = &c1.cfs[0].fields;
    assert_eq!(value(r1, "MIN_vruntime"), -1);
    assert_eq!(value(r1, "spread0"), 1_989_170_182 - 2_095_254_768);

    let text = String::from_utf8(render(&sd, false)).unwrap();
    for line in [
        "Sched Debug Version: v0.11, 6.1.0-56-cloud-amd64 #1\n",
        "ktime                                   : 3560.721150\n",
        "cpu#0, 2442.571 MHz\n",
        "  .nr_uninterruptible            : -8\n",
        "\ncfs_rq[0]:/system.slice\n",
        "  .spread0                       : -106.084586\n",
        "  .MIN_vruntime                  : 0.000001\n",
        "  .sysctl_sched_tunable_scaling            : 1 (logarithmic)\n",
        " S            init     1      2072.781712         3   120         0.000000      1209.942824         0.000000         0.000000 0 0 /\n",
        ">R             cat   102      2095.254768       205   120         0.000000        14.768427         0.000000         0.000000 0 0 /\n",
        " D      daemon-thr   200         6.000000       401   120         0.000000         0.000002         0.000000         0.000000 0 0 /system.slice\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        text.starts_with("Sched Debug Version"),
        "no annotation without asking"
    );
}

#[test]
fn eevdf_layout_follows_6_12() {
    let b = build(true, false, None);
    let out = collect(&b.k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let sd = out.sched;
    assert_eq!(
        names(&sd.header.sysctls),
        ["sysctl_sched_base_slice", "sysctl_sched_features"]
    );
    let c0 = present(&sd.cpus[0]);
    let root = &c0.cfs[1].fields;
    assert_eq!(
        names(&root[..12]),
        [
            "left_deadline",
            "left_vruntime",
            "zero_vruntime",
            "avg_vruntime",
            "right_vruntime",
            "spread",
            "nr_running",
            "h_nr_runnable",
            "h_nr_queued",
            "h_nr_delayed",
            "idle_nr_running",
            "idle_h_nr_running"
        ]
    );
    // Builder: zero = 2_095_254_768, Σkey·w = 2000·1024 over avg_load 1024; the running task 102
    // sits at key 0 with weight 1024 → V = zero + 2000·1024 / 2048 = zero + 1000.
    assert_eq!(value(root, "avg_vruntime"), 2_095_254_768 + 1000);
    // left edge: the root entity's min_vruntime (task 94), deadline of the leftmost (94).
    assert_eq!(value(root, "left_vruntime"), 2_098_211_775);
    assert_eq!(value(root, "left_deadline"), 2_098_211_775 + 3_000_000);
    assert!(root.iter().any(|f| f.name == "util_est" && f.fmt == Fmt::U));
    assert_eq!(names(&c0.rt[0].fields), ["rt_nr_running"]);
    assert_eq!(
        names(&c0.dl[0].fields),
        ["dl_nr_running", "dl_bw->bw", "dl_bw->total_bw"]
    );
    assert_eq!(
        c0.tasks.columns,
        TaskColumns::Eevdf {
            numa: true,
            cgroup: true
        }
    );
    // Eligibility by vruntime_eligible(): avg = 2000·1024 + 0 (curr), load = 2048.
    // task 94: key 2_956_... ≫ 0 → N. task 102 (curr, key 0): 0 ≤ avg → E.
    // task 1 (key < 0) → E.
    let el: Vec<(i32, bool)> = c0
        .tasks
        .rows
        .iter()
        .map(|r| (r.pid, r.eevdf.unwrap().eligible))
        .collect();
    assert_eq!(el[0], (1, true));
    assert_eq!(el[2], (94, false));
    assert_eq!(el[3], (102, true));
    let r94 = &c0.tasks.rows[2];
    assert_eq!(r94.eevdf.unwrap().deadline, 2_098_211_775 + 3_000_000);
    assert_eq!(r94.eevdf.unwrap().slice, 3_000_000);
}

#[test]
fn runqueue_symbol_falls_back_to_rq() {
    let b = build(false, false, Some("rq"));
    let out = collect(&b.k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(matches!(out.sched.cpus[0].body, CpuBody::Present(_)));
}

#[test]
fn without_runqueue_debuginfo_every_cpu_gets_a_placeholder() {
    let b = build(false, false, Some("not_a_runqueue"));
    let out = collect(&b.k);
    assert_eq!(out.sched.cpus.len(), 2);
    assert!(out.errors.iter().any(|e| e.code == "no-such-symbol"));
    for c in &out.sched.cpus {
        assert!(matches!(c.body, CpuBody::Missing { .. }));
    }
    let text = String::from_utf8(render(&out.sched, false)).unwrap();
    assert!(text.contains("cpu#1, 2442.571 MHz\n  (not available in this dump: no `runqueues` variable in the debuginfo)\n"));
}

#[test]
fn a_cpu_whose_pages_are_missing_is_a_placeholder_and_the_rest_continues() {
    let b = build(false, true, None);
    let out = collect(&b.k);
    let sd = &out.sched;
    assert!(matches!(sd.cpus[0].body, CpuBody::Present(_)));
    match &sd.cpus[1].body {
        CpuBody::Missing { reason } => assert!(reason.contains("CPU 1"), "{reason}"),
        _ => panic!("CPU 1 should be missing"),
    }
    assert!(out.errors.iter().any(|e| e.code == "not-dumped"));
    let text = String::from_utf8(render(sd, false)).unwrap();
    assert!(text.contains(
        "\ncpu#1, 2442.571 MHz\n  (not available in this dump: runqueue of CPU 1 unreadable"
    ));
}

#[test]
fn cpus_fall_back_from_online_to_present_mask() {
    let mut b = build(false, false, None);
    b.k.cpumasks.clear();
    b.k.cpumasks.insert("__cpu_present_mask".into(), vec![1]);
    let out = collect(&b.k);
    assert_eq!(out.sched.cpus.len(), 1);
    assert_eq!(out.sched.cpus[0].cpu, 1);
    assert!(
        out.sched
            .notes
            .iter()
            .any(|n| n.contains("__cpu_present_mask"))
    );
    b.k.cpumasks.clear();
    let out = collect(&b.k);
    assert_eq!(out.sched.cpus.len(), 1);
    assert_eq!(out.sched.cpus[0].cpu, 0);
}

/// A panic clears the stopped CPUs from cpu_online_mask but not from cpu_active_mask: the file
/// lists the CPUs that were online while the system ran.
#[test]
fn cpus_stopped_by_the_panic_are_listed_from_the_active_mask() {
    let mut b = build(false, false, None);
    b.k.cpumasks.insert("__cpu_online_mask".into(), vec![0]);
    b.k.cpumasks.insert("__cpu_active_mask".into(), vec![0, 1]);
    let out = collect(&b.k);
    let cpus: Vec<u32> = out.sched.cpus.iter().map(|c| c.cpu).collect();
    assert_eq!(cpus, [0, 1]);
    assert!(
        out.sched
            .notes
            .iter()
            .any(|n| n.contains("cpu_active_mask"))
    );
}

/// A 4.18/5.4-like kernel: `state` (not `__state`), `task_struct.cpu`, `se.statistics`,
/// `thread_group`, rq `load`/`nr_load_updates`/`cpu_load[]`/`wake_list`, cfs_rq
/// `runnable_weight`/`avg.runnable_load_avg`/`removed.runnable_sum`, no group scheduling.
/// Expected task lines: output of a C program calling printf with 5.4's print_task() format
/// strings (`" %c"`, `"%15s %5d %9Ld.%06ld %9Ld %5d "`, three `"%9Ld.%06ld"`, `" %d %d"`,
/// `" %s"`) and print_rq()'s header, on the same values.
#[test]
fn pre_5_8_layout() {
    let mut k = FakeKernel::new();
    k.var(
        "init_uts_ns",
        st(vec![(
            "name",
            st(vec![("release", s("5.4.0")), ("version", s("#1 SMP"))]),
        )]),
    );
    k.cpumasks.insert("__cpu_online_mask".into(), vec![0]);
    let t1 = k.reserve();
    let t2 = k.reserve();
    let rq0 = k.reserve();
    let kn_root = k.alloc(st(vec![("parent", null()), ("name", s(""))]));
    let kn_init = k.alloc(st(vec![
        ("parent", ptr(kn_root, "")),
        ("name", s("init.scope")),
    ]));
    let kn_user = k.alloc(st(vec![
        ("parent", ptr(kn_root, "")),
        ("name", s("user.slice")),
    ]));
    let cg_init = k.alloc(st(vec![("kn", ptr(kn_init, ""))]));
    let cg_user = k.alloc(st(vec![("kn", ptr(kn_user, ""))]));
    let tg_init = k.alloc(st(vec![
        ("css", st(vec![("cgroup", ptr(cg_init, ""))])),
        ("autogroup", null()),
    ]));
    let tg_user = k.alloc(st(vec![
        ("css", st(vec![("cgroup", ptr(cg_user, ""))])),
        ("autogroup", null()),
    ]));
    // No thread_head in this era: threads hang on the leader's thread_group.
    let sig = k.alloc(st(vec![("nr_threads", int4(1))]));
    let task =
        |pid: i64, comm: &str, state: i64, vr: i64, sw: i64, stats: (i64, i64, i64), tg: u64| {
            st(vec![
                ("cpu", int4(0)),
                ("state", int(state)),
                ("exit_state", int4(0)),
                ("pid", int4(pid)),
                ("prio", int4(120)),
                ("comm", s(comm)),
                ("nvcsw", int(sw)),
                ("nivcsw", int(0)),
                (
                    "se",
                    st(vec![
                        ("vruntime", int(vr)),
                        ("sum_exec_runtime", int(stats.1)),
                        (
                            "statistics",
                            st(vec![
                                ("wait_sum", int(stats.0)),
                                ("sum_sleep_runtime", int(stats.2)),
                            ]),
                        ),
                    ]),
                ),
                ("numa_group", null()),
                ("sched_task_group", ptr(tg, "")),
                ("signal", ptr(sig, "")),
                ("thread_group", Node::List(vec![])),
            ])
        };
    // Schedstats on: the statistics columns carry values.
    k.var(
        "sched_schedstats",
        st(vec![(
            "key",
            st(vec![("enabled", st(vec![("counter", int4(1))]))]),
        )]),
    );
    k.set(
        t1,
        task(1, "systemd", 1, 12_345_678, 25, (1, 2, 3), tg_init),
    );
    k.set(
        t2,
        task(4242, "bash", 0, -500, 3, (0, 7_000_000, 0), tg_user),
    );
    let Node::Struct(mut init) = task(0, "swapper/0", 0, 0, 0, (0, 0, 0), tg_init) else {
        unreachable!("task builds a struct")
    };
    init.push((
        "tasks".to_string(),
        Node::List(vec![(t1, String::new()), (t2, String::new())]),
    ));
    k.var("init_task", Node::Struct(init));
    k.set(
        rq0,
        st(vec![
            ("nr_running", int4(1)),
            ("load", st(vec![("weight", int(1024))])),
            ("nr_switches", int(10)),
            ("nr_load_updates", int(11)),
            ("nr_uninterruptible", int(0)),
            ("next_balance", int(4_295_000_000)),
            ("curr", ptr(t2, "")),
            ("clock", int(1)),
            ("clock_task", int(1)),
            (
                "cpu_load",
                Node::Array(vec![int(1), int(2), int(3), int(4), int(5)]),
            ),
            ("avg_idle", int(1)),
            ("max_idle_balance_cost", int(2)),
            ("yld_count", int4(0)),
            ("sched_count", int4(1)),
            ("sched_goidle", int4(2)),
            ("ttwu_count", int4(3)),
            ("ttwu_local", int4(4)),
            ("wake_list", st(vec![("first", null())])),
            (
                "cfs",
                st(vec![
                    ("exec_clock", int(0)),
                    ("min_vruntime", int(0)),
                    (
                        "tasks_timeline",
                        st(vec![
                            ("rb_root", st(vec![("rb_node", null())])),
                            ("rb_leftmost", null()),
                        ]),
                    ),
                    ("nr_spread_over", int4(0)),
                    ("nr_running", int4(0)),
                    ("h_nr_running", int4(0)),
                    ("load", st(vec![("weight", int(0))])),
                    ("runnable_weight", int(0)),
                    (
                        "avg",
                        st(vec![
                            ("load_avg", int(0)),
                            ("runnable_load_avg", int(0)),
                            ("util_avg", int(0)),
                            ("util_est", st(vec![("enqueued", int4(0))])),
                        ]),
                    ),
                    (
                        "removed",
                        st(vec![
                            ("load_avg", int(0)),
                            ("util_avg", int(0)),
                            ("runnable_sum", int(0)),
                        ]),
                    ),
                ]),
            ),
            (
                "rt",
                st(vec![
                    ("rt_nr_running", int4(0)),
                    ("rt_nr_migratory", int4(0)),
                    ("rt_throttled", int4(0)),
                    ("rt_time", int(0)),
                    ("rt_runtime", int(950_000_000)),
                ]),
            ),
            (
                "dl",
                st(vec![
                    ("dl_nr_running", int4(0)),
                    ("dl_nr_migratory", int4(0)),
                    ("dl_bw", st(vec![("bw", int(1)), ("total_bw", int(0))])),
                ]),
            ),
            ("rd", null()),
        ]),
    );
    k.var("runqueues", Node::PerCpu(vec![Some(rq0)]));
    let out = collect(&k);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let c0 = present(&out.sched.cpus[0]);
    assert_eq!(
        names(&c0.rq),
        [
            "nr_running",
            "load",
            "nr_switches",
            "nr_load_updates",
            "nr_uninterruptible",
            "next_balance",
            "curr->pid",
            "clock",
            "clock_task",
            "cpu_load[0]",
            "cpu_load[1]",
            "cpu_load[2]",
            "cpu_load[3]",
            "cpu_load[4]",
            "avg_idle",
            "max_idle_balance_cost",
            "yld_count",
            "sched_count",
            "sched_goidle",
            "ttwu_count",
            "ttwu_local"
        ]
    );
    // No group scheduling: the root cfs_rq alone, without a path. cfs_rq has h_nr_running, but
    // print_cfs_rq() of 5.4 (and 5.10: the x86_64-5.10 and aarch64-5.10 sets' live files) goes
    // from nr_running to load: the member was printed from 5.15 on, with idle_nr_running.
    assert_eq!(c0.cfs.len(), 1);
    assert_eq!(c0.cfs[0].path, None);
    assert_eq!(
        names(&c0.cfs[0].fields),
        [
            "exec_clock",
            "MIN_vruntime",
            "min_vruntime",
            "max_vruntime",
            "spread",
            "spread0",
            "nr_spread_over",
            "nr_running",
            "load",
            "runnable_weight",
            "load_avg",
            "runnable_load_avg",
            "util_avg",
            "util_est_enqueued",
            "removed.load_avg",
            "removed.util_avg",
            "removed.runnable_sum"
        ]
    );
    // Without a root domain, dl_bw is the dl_rq's own.
    assert_eq!(value(&c0.dl[0].fields, "dl_bw->bw"), 1);
    assert_eq!(c0.tasks.columns, TaskColumns::CfsOld);
    let text = String::from_utf8(render(&out.sched, false)).unwrap();
    let expected = "
runnable tasks:
 S           task   PID         tree-key  switches  prio     wait-time             sum-exec        sum-sleep
-----------------------------------------------------------------------------------------------------------
 S        systemd     1        12.345678        25   120         0.000001         0.000002         0.000003 0 0 /init.scope
>R           bash  4242         0.000500         3   120         0.000000         7.000000         0.000000 0 0 /user.slice

";
    assert!(text.ends_with(expected), "{text}");
}
