//! The backtrace plugin without a dump: which tasks it traces and in what order, the text and
//! JSON it writes, over an in-memory kernel (tests/common/fake_kernel.rs) whose traces are given
//! (the unwinders have their own tests: tests/unwind_*.rs).

mod common;
#[path = "report_support/mod.rs"]
mod report_support;

use common::fake_kernel::{FakeKernel, Node, int, ptr, s, st};
use vmcore_report::kernel::AccessError;
use vmcore_report::kernel::stack::{
    CpuContext, InlinedFrame, RegsSource, SourceLoc, StackTrace, StartKind, TraceFrame,
};
use vmcore_report::plugins::backtrace::collect::collect;
use vmcore_report::plugins::backtrace::record::Reason;
use vmcore_report::plugins::backtrace::render::{bt_txt, stacks_txt};
use vmcore_report::unwind::{Method, StackKind, StopReason};

fn frame(pc: u64, sp: u64, sym: &str, off: u64, size: u64) -> TraceFrame {
    TraceFrame {
        pc,
        sp,
        cfa: None,
        symbol: Some(sym.to_string()),
        offset: off,
        size,
        module: None,
        source: None,
        inlined: Vec::new(),
        interrupted: false,
        reliable: true,
        method: Method::Orc,
        stack: StackKind::Task,
        regs: None,
    }
}

fn sleeping(task: u64, base: u64) -> StackTrace {
    let mut f0 = frame(0xffff_ffff_81a3_c5e5, base, "__schedule", 0x2f5, 0x8f0);
    f0.method = Method::Start;
    f0.source = Some(SourceLoc {
        file: "kernel/sched/core.c".into(),
        line: 6672,
        column: Some(2),
    });
    f0.inlined = vec![InlinedFrame {
        function: "context_switch".into(),
        source: Some(SourceLoc {
            file: "kernel/sched/core.c".into(),
            line: 5401,
            column: None,
        }),
    }];
    StackTrace {
        task,
        cpu: None,
        start: StartKind::InactiveTaskFrame,
        frames: vec![
            f0,
            frame(0xffff_ffff_81a3_ce1d, base + 0x60, "schedule", 0x5d, 0xe0),
            frame(
                0xffff_ffff_8133_0a10,
                base + 0x80,
                "percpu_rwsem_wait",
                0x110,
                0x150,
            ),
        ],
        stop: StopReason::EndOfStack,
    }
}

struct Fixture {
    k: FakeKernel,
    idle: u64,
    bash: u64,
    blocked: [u64; 2],
    sleeper: u64,
}

/// Two CPUs: CPU 1 panicked running `bash` (pid 99), CPU 0 was idle. Tasks 50 and 51 are
/// blocked (D) on the same stack, 1 and 60 sleep (S).
fn fixture() -> Fixture {
    let mut k = FakeKernel::new();
    let t = |k: &mut FakeKernel, pid: i64, comm: &str, state: i64, cpu: i64| {
        k.alloc(st(vec![
            ("pid", int(pid)),
            ("tgid", int(pid)),
            ("comm", s(comm)),
            ("__state", int(state)),
            ("exit_state", int(0)),
            ("cpu", int(cpu)),
        ]))
    };
    let idle = t(&mut k, 0, "swapper/0", 0, 0);
    let init = t(&mut k, 1, "init", 1, 0);
    let bash = t(&mut k, 99, "bash", 0, 1);
    let b1 = t(&mut k, 50, "touch", 2, 0);
    let b2 = t(&mut k, 51, "touch", 2, 1);
    let sleeper = t(&mut k, 60, "sleep", 1, 1);
    k.var(
        "init_task",
        st(vec![
            ("pid", int(0)),
            (
                "tasks",
                Node::List(
                    [init, bash, b1, b2, sleeper]
                        .iter()
                        .map(|&a| (a, String::new()))
                        .collect(),
                ),
            ),
        ]),
    );
    let rq0 = k.alloc(st(vec![("curr", ptr(idle, ""))]));
    let rq1 = k.alloc(st(vec![("curr", ptr(bash, ""))]));
    k.var("runqueues", Node::PerCpu(vec![Some(rq0), Some(rq1)]));
    k.cpumasks.insert("__cpu_possible_mask".into(), vec![0, 1]);
    k.cpu_contexts = Some(vec![
        CpuContext {
            cpu: 0,
            task: Some(idle),
            regs_source: Some(RegsSource::PrstatusCpu),
            is_panic: false,
            ..Default::default()
        },
        CpuContext {
            cpu: 1,
            task: Some(bash),
            regs_source: Some(RegsSource::PrstatusCpu),
            is_panic: true,
            ..Default::default()
        },
    ]);
    // the panic: sysrq-c's write, entered from user space
    let mut p0 = frame(
        0xffff_ffff_8110_2a3b,
        0xffff_c900_0040_bd00,
        "panic",
        0x13b,
        0x2f0,
    );
    p0.method = Method::Start;
    p0.interrupted = true;
    p0.regs = Some(vec![
        ("rip", 0xffff_ffff_8110_2a3b),
        ("rsp", 0xffff_c900_0040_bd00),
    ]);
    let mut p1 = frame(
        0xffff_ffff_c040_1016,
        0xffff_c900_0040_bd90,
        "fixture_write",
        0x16,
        0x40,
    );
    p1.module = Some("fixture_oops".into());
    k.traces.insert(
        bash,
        Ok(StackTrace {
            task: bash,
            cpu: Some(1),
            start: StartKind::Prstatus,
            frames: vec![p0, p1],
            stop: StopReason::UserMode { pc: 0x7f00_1234 },
        }),
    );
    // the idle CPU: interrupted in the IRQ stack, then back on the task stack, cut short
    let mut i0 = frame(
        0xffff_ffff_81a4_c6ae,
        0xffff_c900_0000_3f80,
        "native_safe_halt",
        0xe,
        0x10,
    );
    i0.stack = StackKind::Irq;
    i0.method = Method::Start;
    let mut i1 = frame(
        0xffff_ffff_81a4_c8f0,
        0xffff_ffff_8260_3e70,
        "default_idle",
        0x10,
        0x20,
    );
    i1.interrupted = true;
    i1.method = Method::PtRegs;
    i1.regs = Some(vec![
        ("rip", 0xffff_ffff_81a4_c8f0),
        ("rsp", 0xffff_ffff_8260_3e70),
        ("rflags", 0x246),
        ("rax", 0),
    ]);
    let mut i2 = frame(
        0xffff_ffff_8110_0000,
        0xffff_ffff_8260_3e98,
        "do_idle",
        0x1e0,
        0x2b0,
    );
    i2.reliable = false;
    i2.method = Method::FramePointer;
    k.traces.insert(
        idle,
        Ok(StackTrace {
            task: idle,
            cpu: Some(0),
            start: StartKind::Prstatus,
            frames: vec![i0, i1, i2],
            stop: StopReason::Memory {
                addr: 0xffff_ffff_8260_3ea0,
                why: "not in the dump".into(),
            },
        }),
    );
    k.traces.insert(b1, Ok(sleeping(b1, 0xffff_c900_0050_bd00)));
    k.traces.insert(b2, Ok(sleeping(b2, 0xffff_c900_0060_bd00)));
    k.traces.insert(
        sleeper,
        Err(AccessError::new(
            "not-dumped",
            "thread.sp 0x10: page not in the dump",
        )),
    );
    Fixture {
        k,
        idle,
        bash,
        blocked: [b1, b2],
        sleeper,
    }
}

#[test]
fn panic_cpu_first_then_cpus_then_blocked() {
    let f = fixture();
    let c = collect(&f.k, false).unwrap();
    let order: Vec<(u64, Reason)> = c
        .report
        .traces
        .iter()
        .map(|t| (t.task.addr, t.reason))
        .collect();
    assert_eq!(
        order,
        vec![
            (f.bash, Reason::PanicCpu),
            (f.idle, Reason::Cpu),
            (f.blocked[0], Reason::Blocked),
            (f.blocked[1], Reason::Blocked),
        ]
    );
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let bash = &c.report.traces[0];
    assert!(bash.task.is_panic && bash.task.running);
    assert_eq!(bash.task.cpu, Some(1));
    assert!(bash.complete, "user mode ends a complete trace");
    let idle = &c.report.traces[1];
    assert!(idle.task.is_idle && !idle.complete);
}

#[test]
fn all_adds_every_other_task_once() {
    let f = fixture();
    let c = collect(&f.k, true).unwrap();
    let pids: Vec<i64> = c.report.traces.iter().map(|t| t.task.pid).collect();
    assert_eq!(pids, vec![99, 0, 50, 51, 1, 60]);
    let sleeper = c
        .report
        .traces
        .iter()
        .find(|t| t.task.addr == f.sleeper)
        .unwrap();
    assert_eq!(sleeper.reason, Reason::All);
    assert!(sleeper.frames.is_empty());
    assert_eq!(
        sleeper.error.as_deref(),
        Some("thread.sp 0x10: page not in the dump")
    );
}

#[test]
fn bt_txt_is_crash_like() {
    let f = fixture();
    let c = collect(&f.k, false).unwrap();
    let expected = "\
PID: 99       TASK: ffff888000020000  CPU: 1    COMMAND: \"bash\"  STATE: R  PANIC
 #0 [ffffc9000040bd00] panic+0x13b/0x2f0 at ffffffff81102a3b
    RIP: ffffffff81102a3b  RSP: ffffc9000040bd00
 #1 [ffffc9000040bd90] fixture_write+0x16/0x40 at ffffffffc0401016 [fixture_oops]

PID: 0        TASK: ffff888000000000  CPU: 0    COMMAND: \"swapper/0\"  STATE: R
 #0 [ffffc90000003f80] native_safe_halt+0xe/0x10 at ffffffff81a4c6ae
--- <IRQ stack> ---
    [exception RIP: default_idle+0x10/0x20]
    RIP: ffffffff81a4c8f0  RSP: ffffffff82603e70  RFLAGS: 0000000000000246
    RAX: 0000000000000000
 #1 [ffffffff82603e70] default_idle+0x10/0x20 at ffffffff81a4c8f0
 #2 [ffffffff82603e98] ? do_idle+0x1e0/0x2b0 at ffffffff81100000
    (unwind stopped: stack memory at 0xffffffff82603ea0: not in the dump)

PID: 50       TASK: ffff888000030000  CPU: 0    COMMAND: \"touch\"  STATE: D
 #0 [ffffc9000050bd00] __schedule+0x2f5/0x8f0 at ffffffff81a3c5e5
    (inlined) context_switch  kernel/sched/core.c: 5401
    kernel/sched/core.c: 6672
 #1 [ffffc9000050bd60] schedule+0x5d/0xe0 at ffffffff81a3ce1d
 #2 [ffffc9000050bd80] percpu_rwsem_wait+0x110/0x150 at ffffffff81330a10

PID: 51       TASK: ffff888000040000  CPU: 1    COMMAND: \"touch\"  STATE: D
 #0 [ffffc9000060bd00] __schedule+0x2f5/0x8f0 at ffffffff81a3c5e5
    (inlined) context_switch  kernel/sched/core.c: 5401
    kernel/sched/core.c: 6672
 #1 [ffffc9000060bd60] schedule+0x5d/0xe0 at ffffffff81a3ce1d
 #2 [ffffc9000060bd80] percpu_rwsem_wait+0x110/0x150 at ffffffff81330a10
";
    assert_eq!(bt_txt(&c.report), expected);
}

#[test]
fn stacks_txt_groups_identical_traces_largest_first() {
    let f = fixture();
    let c = collect(&f.k, true).unwrap();
    let expected = "\
2 tasks (D: 2): pids 50 51
    __schedule
    schedule
    percpu_rwsem_wait

1 task (R: 1): pids 99
    panic
    fixture_write

1 task (R: 1): pids 0
    native_safe_halt
    default_idle
    do_idle
";
    assert_eq!(stacks_txt(&c.report), expected);
}

#[test]
fn unsupported_kernel_is_an_error_not_an_empty_report() {
    let mut f = fixture();
    f.k.cpu_contexts = None;
    let e = collect(&f.k, false)
        .err()
        .expect("no CPU contexts: no report");
    assert_eq!(e.code, "unsupported");
}

#[test]
fn json_matches_its_schema() {
    let f = fixture();
    let mut c = collect(&f.k, true).unwrap();
    c.report.arch = Some("x86_64");
    let v = serde_json::to_value(&c.report).unwrap();
    assert_eq!(v["schema"], "vmcore-report/backtrace/1");
    assert_eq!(v["traces"][0]["frames"][0]["pc"], "0xffffffff81102a3b");
    assert_eq!(
        v["traces"][0]["frames"][0]["regs"]["rip"],
        "0xffffffff81102a3b"
    );
    assert_eq!(v["traces"][1]["stop"]["kind"], "memory");
    assert_eq!(v["traces"][1]["stop"]["addr"], "0xffffffff82603ea0");
    assert_eq!(
        v["traces"][2]["frames"][0]["inlined"][0]["function"],
        "context_switch"
    );
    assert_eq!(v["groups"][0]["count"], 2);
    report_support::validate_with_schema("docs/backtrace.schema.json", &v);
}
