//! The sys plugin without a dump: its formats, the log rules, and the collector on the
//! in-memory kernel (tests/common/fake_kernel.rs). Expected values are worked out by hand from
//! the kernel's and the tools' rules, cited at each test.

mod common;

use common::fake_kernel::{FakeKernel, Node, int, ptr, s, st};
use vmcore_report::addr::Arch;
use vmcore_report::dump::CpuState;
use vmcore_report::plugins::sys::collect::{
    SysInput, collect, date_string, last_oops_block, loadavg_figure, panic_message,
};
use vmcore_report::plugins::sys::render::{cpulist, sos_files, uname_a};

/// `%*pbl` (lib/bitmap.c `bitmap_print_to_pagebuf`, list form).
#[test]
fn cpu_lists_print_as_the_kernel_does() {
    assert_eq!(cpulist(&[0, 1, 2, 3, 5]), "0-3,5");
    assert_eq!(cpulist(&[7]), "7");
    assert_eq!(cpulist(&[0, 2, 4, 5, 6, 9, 10]), "0,2,4-6,9-10");
    assert_eq!(cpulist(&[]), "");
}

/// fs/proc/loadavg.c: `LOAD_INT(a + FIXED_1/200)`, `LOAD_FRAC(…)` with FSHIFT 11.
#[test]
fn load_average_figures() {
    assert_eq!(loadavg_figure(0), "0.00");
    // 1.5 × 2048 = 3072; + 10 → 3082: int 1, frac (1034 × 100) >> 11 = 50
    assert_eq!(loadavg_figure(3072), "1.50");
    // 655 + 10 = 665: frac (665 × 100) >> 11 = 32
    assert_eq!(loadavg_figure(655), "0.32");
}

/// `date` in the C locale (`%a %b %e %H:%M:%S %Z %Y`): GNU date printed this for the epoch.
#[test]
fn date_as_date_prints_it() {
    assert_eq!(
        date_string(1_796_165_541).as_deref(),
        Some("Tue Dec  1 22:52:21 UTC 2026")
    );
}

fn lines(t: &str) -> Vec<String> {
    t.lines().map(String::from).collect()
}

/// kernel/panic.c prints the message twice; the first form wins, the end marker is a fallback.
#[test]
fn the_panic_message_comes_from_the_log() {
    let log = lines(
        "[    7.064074] sysrq: Trigger a crash\n\
         [    7.064396] Kernel panic - not syncing: sysrq triggered crash\n\
         [    7.065421] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n",
    );
    assert_eq!(
        panic_message(&log).as_deref(),
        Some("sysrq triggered crash")
    );
    let end_only =
        lines("[    7.065421] ---[ end Kernel panic - not syncing: Fatal exception ]---\n");
    assert_eq!(panic_message(&end_only).as_deref(), Some("Fatal exception"));
    assert_eq!(panic_message(&lines("[ 1.0] hello\n")), None);
}

/// The last block: an earlier WARNING (closed by its end-trace marker) is not it; the BUG's
/// first line and the `Oops:` line that follows it belong to one block.
#[test]
fn the_last_oops_block() {
    let log = lines(
        "[ 1.0] WARNING: CPU: 0 PID: 5 at mm/x.c:1 f+0x1/0x2\n\
         [ 1.1] ---[ end trace 0000000000000000 ]---\n\
         [ 2.0] fixture: about to fault\n\
         [ 2.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n\
         [ 2.2] #PF: supervisor write access in kernel mode\n\
         [ 2.3] Oops: 0002 [#1] PREEMPT SMP NOPTI\n\
         [ 2.4] RIP: 0010:trigger_write+0x20/0x30\n\
         [ 2.5] ---[ end trace 0000000000000000 ]---\n\
         [ 2.6] Kernel panic - not syncing: Fatal exception\n",
    );
    let b = last_oops_block(&log).unwrap();
    assert_eq!(
        b.first().unwrap(),
        "[ 2.1] BUG: kernel NULL pointer dereference, address: 0000000000000000"
    );
    assert_eq!(
        b.last().unwrap(),
        "[ 2.5] ---[ end trace 0000000000000000 ]---"
    );
    assert_eq!(b.len(), 5);
    assert_eq!(last_oops_block(&lines("[ 1.0] hello\n")), None);
}

fn uts() -> Node {
    st(vec![(
        "name",
        st(vec![
            ("sysname", s("Linux")),
            ("nodename", s("web01")),
            ("release", s("6.1.0-57-cloud-amd64")),
            (
                "version",
                s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"),
            ),
            ("machine", s("x86_64")),
            ("domainname", s("(none)")),
        ]),
    )])
}

/// A panic on CPU 1 of a 2-CPU kernel, whose CPU 1 runs `khungtaskd` (pid 39).
fn fake() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.var("init_uts_ns", uts());
    k.var(
        "linux_proc_banner",
        s("%s version %s (debian-kernel@lists.debian.org) (gcc-12) %s\n"),
    );
    k.var("saved_command_line", s("console=ttyS0 panic=0"));
    k.var("tainted_mask", int(4096));
    k.var("avenrun", Node::Array(vec![int(655), int(3072), int(0)]));
    k.var("nr_threads", int(58));
    k.var("_totalram_pages", st(vec![("counter", int(1000))]));
    k.var("panic_cpu", st(vec![("counter", int(1))]));
    k.var("panic_on_oops", int(0));
    let t0 = k.alloc(st(vec![
        ("pid", int(1)),
        ("comm", s("init")),
        ("__state", int(0)),
    ]));
    let t1 = k.alloc(st(vec![
        ("pid", int(39)),
        ("comm", s("khungtaskd")),
        ("__state", int(0)),
        ("exit_state", int(0)),
    ]));
    let rq0 = k.alloc(st(vec![("curr", ptr(t0, ""))]));
    let rq1 = k.alloc(st(vec![("curr", ptr(t1, ""))]));
    k.var("runqueues", Node::PerCpu(vec![Some(rq0), Some(rq1)]));
    for m in [
        "__cpu_possible_mask",
        "__cpu_present_mask",
        "__cpu_active_mask",
    ] {
        k.cpumasks.insert(m.into(), vec![0, 1]);
    }
    k.cpumasks.insert("__cpu_online_mask".into(), vec![1]);
    k
}

fn note(index: usize, pid: u32, first: u64) -> CpuState {
    CpuState {
        index,
        pid,
        regs: (0..27).map(|i| first + i).collect(),
        ..Default::default()
    }
}

#[test]
fn collector_and_sos_files() {
    let k = fake();
    let mut input = SysInput {
        arch: Some(Arch::X86_64),
        // QEMU writes the vCPU number + 1 as pr_pid: note 1 is CPU 1's, whatever its pid says.
        notes: vec![note(0, 1, 0x100), note(1, 2, 0x200)],
        log: Some(lines(
            "[ 9.0] Kernel panic - not syncing: hung_task: blocked tasks\n",
        )),
        ..Default::default()
    };
    input.facts.crash_time = Some(1_796_165_541);
    input.facts.page_size = Some(4096);
    let c = collect(&k, &input);
    let sys = &c.sys;
    let p = &sys.panic;
    assert_eq!(p.panic_cpu, Some(1));
    let t = p.task.as_ref().unwrap();
    assert_eq!((t.pid, &t.comm[..], t.cpu), (39, &b"khungtaskd"[..], 1));
    assert_eq!(p.message.as_deref(), Some("hung_task: blocked tasks"));
    let r = p.registers.as_ref().unwrap();
    assert_eq!(r.note_index, 1);
    assert_eq!(
        r.regs[16],
        ("rip".to_string(), format!("{:016x}", 0x200 + 16))
    );
    assert_eq!(
        sys.load_average.as_ref().unwrap(),
        &["0.32", "1.50", "0.00"]
    );
    assert_eq!(sys.mem_total, Some(1000 * 4096));
    assert_eq!(sys.nr_threads, Some(58));
    let files: std::collections::BTreeMap<&str, String> = sos_files(sys)
        .into_iter()
        .map(|(p, d)| (p, String::from_utf8(d).unwrap()))
        .collect();
    assert_eq!(
        files["sos_commands/kernel/uname_-a"],
        "Linux web01 6.1.0-57-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26) x86_64 GNU/Linux\n"
    );
    assert_eq!(
        files["proc/version"],
        "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n"
    );
    assert_eq!(files["proc/cmdline"], "console=ttyS0 panic=0\n");
    assert_eq!(files["proc/sys/kernel/tainted"], "4096\n");
    assert_eq!(files["proc/sys/kernel/hostname"], "web01\n");
    assert_eq!(files["proc/sys/kernel/osrelease"], "6.1.0-57-cloud-amd64\n");
    assert_eq!(files["sys/devices/system/cpu/online"], "1\n");
    assert_eq!(files["sys/devices/system/cpu/possible"], "0-1\n");
    assert_eq!(
        files["sos_commands/date/date"],
        "Tue Dec  1 22:52:21 UTC 2026\n"
    );
    assert!(uname_a(sys).is_some());
}

/// Without the log, a crash time or utsname, the files that need them are not written and
/// `missing` says why; nothing is invented.
#[test]
fn what_the_dump_lacks_is_left_out_and_said() {
    let k = FakeKernel::new();
    let input = SysInput {
        log_missing: "this kernel has no printk ring".into(),
        ..Default::default()
    };
    let c = collect(&k, &input);
    let files: Vec<&str> = sos_files(&c.sys).into_iter().map(|(p, _)| p).collect();
    assert!(files.is_empty(), "{files:?}");
    assert!(
        c.sys.missing.iter().any(|m| m.contains("printk ring")),
        "{:?}",
        c.sys.missing
    );
    assert!(
        c.sys.missing.iter().any(|m| m.starts_with("uts")),
        "{:?}",
        c.sys.missing
    );
    assert!(c.sys.panic.task.is_none());
}
