//! sched_debug through the production `KernelAccess` (`Kernel::access`) on a synthetic vmlinux
//! (tests/common/dwarf.rs) describing a 6.12-like EEVDF scheduler, and a sparse memory written
//! here. CPU 1's per-CPU area is left out of the memory: its block must be a placeholder while
//! CPU 0's is complete. Expected text: the output of a C program calling printf with 6.12.117's
//! format strings on the values written below; the EEVDF numbers follow fair.c by hand.

mod common;

use std::sync::Arc;

use common::dwarf::{ContainerTypes, VmlinuxBuilder, field};
use common::kernel::{OffsetTranslator, SparseMem};
use vmcore_report::addr::{Arch, Endian};
use vmcore_report::arch::AddressSpace;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::debuginfo::{CombinedTypes, TypeSource};
use vmcore_report::dump::{DumpFormat, DumpInfo};
use vmcore_report::kernel::Kernel;
use vmcore_report::plugins::sched_debug::collect::collect;
use vmcore_report::plugins::sched_debug::record::CpuBody;
use vmcore_report::plugins::sched_debug::render::render;

const VBASE: u64 = 0xffff_ffff_8000_0000;
const HEAP: u64 = 0xffff_ffff_9000_0000;
const PERCPU0: u64 = 0xffff_ffff_9800_0000;
const PERCPU1: u64 = 0xffff_ffff_9900_0000;
const RUNQUEUES: u64 = 0x2_c000;

/// Kernel memory written by virtual address (`va - VBASE` physical).
#[derive(Default)]
struct Mem(SparseMem);

impl Mem {
    fn put(&mut self, va: u64, bytes: &[u8]) {
        self.0.write(va - VBASE, bytes);
    }
    fn u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    fn u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
    /// A circular list: `head` and the nodes, linked in order.
    fn list(&mut self, head: u64, nodes: &[u64]) {
        let all: Vec<u64> = std::iter::once(head).chain(nodes.iter().copied()).collect();
        for (i, &n) in all.iter().enumerate() {
            self.u64(n, all[(i + 1) % all.len()]);
            self.u64(n + 8, all[(i + all.len() - 1) % all.len()]);
        }
    }
}

// Offsets of the synthetic layout (the builder's records: the oracle).
mod off {
    pub const SE_LOAD: u64 = 0;
    pub const SE_RUN_NODE: u64 = 16;
    pub const SE_DEADLINE: u64 = 40;
    pub const SE_MIN_VRUNTIME: u64 = 48;
    pub const SE_ON_RQ: u64 = 56;
    pub const SE_CUSTOM_SLICE: u64 = 57;
    pub const SE_SUM_EXEC: u64 = 64;
    pub const SE_VRUNTIME: u64 = 72;
    pub const SE_SLICE: u64 = 80;
    pub const SE_CFS_RQ: u64 = 88;

    pub const T_CPU: u64 = 8;
    pub const T_STATE: u64 = 16;
    pub const T_PID: u64 = 24;
    pub const T_PRIO: u64 = 28;
    pub const T_COMM: u64 = 32;
    pub const T_NVCSW: u64 = 48;
    pub const T_SE: u64 = 64;
    pub const T_TASKS: u64 = 248;
    pub const T_SIGNAL: u64 = 264;
    pub const T_THREAD_NODE: u64 = 272;
    pub const T_TG: u64 = 288;

    pub const CFS_LOAD: u64 = 0;
    pub const CFS_NR_RUNNING: u64 = 16;
    pub const CFS_AVG_VRUNTIME: u64 = 40;
    pub const CFS_AVG_LOAD: u64 = 48;
    pub const CFS_ZERO: u64 = 56;
    pub const CFS_ROOT: u64 = 64;
    pub const CFS_LEFTMOST: u64 = 72;
    pub const CFS_CURR: u64 = 80;
    pub const CFS_TG: u64 = 168;
    pub const CFS_LEAF: u64 = 176;

    pub const RQ_NR_RUNNING: u64 = 0;
    pub const RQ_CURR: u64 = 32;
    pub const RQ_CLOCK: u64 = 40;
    pub const RQ_CFS: u64 = 128;
    pub const RQ_RD: u64 = 544;
    pub const RQ_LEAF: u64 = 552;
}

fn vmlinux() -> VmlinuxBuilder {
    let mut b = VmlinuxBuilder::new();
    let u32t = b.base("unsigned int", 4, false);
    let int = b.base("int", 4, true);
    let u64t = b.base("long long unsigned int", 8, false);
    let s64 = b.base("long long int", 8, true);
    let ulong = b.base("long unsigned int", 8, false);
    let long = b.base("long int", 8, true);
    let uchar = b.base("unsigned char", 1, false);
    let ch = b.char_type();
    let charp = b.pointer(Some(ch));

    let ContainerTypes {
        list_head,
        rb_node,
        rb_root_cached: rb_cached,
        ..
    } = b.container_types(ulong);
    let lw = b.structure(
        Some("load_weight"),
        16,
        vec![field("weight", ulong, 0), field("inv_weight", u32t, 8)],
    );
    let avg = b.structure(
        Some("sched_avg"),
        40,
        vec![
            field("load_avg", ulong, 0),
            field("runnable_avg", ulong, 8),
            field("util_avg", ulong, 16),
            field("util_est", u32t, 24),
        ],
    );
    let cfs_rq = b.forward("cfs_rq");
    let cfsp = b.pointer(Some(cfs_rq));
    let se = b.structure(
        Some("sched_entity"),
        160,
        vec![
            field("load", lw, off::SE_LOAD),
            field("run_node", rb_node, off::SE_RUN_NODE),
            field("deadline", u64t, off::SE_DEADLINE),
            field("min_vruntime", u64t, off::SE_MIN_VRUNTIME),
            field("on_rq", uchar, off::SE_ON_RQ),
            field("custom_slice", uchar, off::SE_CUSTOM_SLICE),
            field("sum_exec_runtime", u64t, off::SE_SUM_EXEC),
            field("vruntime", u64t, off::SE_VRUNTIME),
            field("slice", u64t, off::SE_SLICE),
            field("cfs_rq", cfsp, off::SE_CFS_RQ),
        ],
    );
    let sep = b.pointer(Some(se));
    let sepp = b.pointer(Some(sep));
    let removed = b.structure(
        None,
        32,
        vec![
            field("load_avg", ulong, 0),
            field("util_avg", ulong, 8),
            field("runnable_avg", ulong, 16),
        ],
    );
    let atomic_long = b.structure(None, 8, vec![field("counter", long, 0)]);
    let kn = b.forward("kernfs_node");
    let knp = b.pointer(Some(kn));
    b.define(
        kn,
        16,
        vec![field("parent", knp, 0), field("name", charp, 8)],
    );
    let cgroup = b.structure(Some("cgroup"), 8, vec![field("kn", knp, 0)]);
    let cgp = b.pointer(Some(cgroup));
    let css = b.structure(
        Some("cgroup_subsys_state"),
        8,
        vec![field("cgroup", cgp, 0)],
    );
    let autogroup = b.structure(Some("autogroup"), 8, vec![field("id", ulong, 0)]);
    let agp = b.pointer(Some(autogroup));
    let tg = b.structure(
        Some("task_group"),
        32,
        vec![
            field("css", css, 0),
            field("se", sepp, 8),
            field("load_avg", atomic_long, 16),
            field("autogroup", agp, 24),
        ],
    );
    let tgp = b.pointer(Some(tg));
    b.define(
        cfs_rq,
        400,
        vec![
            field("load", lw, off::CFS_LOAD),
            field("nr_running", u32t, off::CFS_NR_RUNNING),
            field("h_nr_queued", u32t, 20),
            field("h_nr_runnable", u32t, 24),
            field("idle_nr_running", u32t, 28),
            field("idle_h_nr_running", u32t, 32),
            field("h_nr_delayed", u32t, 36),
            field("avg_vruntime", s64, off::CFS_AVG_VRUNTIME),
            field("avg_load", u64t, off::CFS_AVG_LOAD),
            field("zero_vruntime", u64t, off::CFS_ZERO),
            field("tasks_timeline", rb_cached, off::CFS_ROOT),
            field("curr", sep, off::CFS_CURR),
            field("avg", avg, 88),
            field("removed", removed, 128),
            field("tg_load_avg_contrib", ulong, 160),
            field("tg", tgp, off::CFS_TG),
            field("leaf_cfs_rq_list", list_head, off::CFS_LEAF),
            field("throttled", int, 192),
            field("throttle_count", int, 196),
        ],
    );
    let rt_rq = b.structure(Some("rt_rq"), 8, vec![field("rt_nr_running", u32t, 0)]);
    let dl_rq = b.structure(Some("dl_rq"), 8, vec![field("dl_nr_running", u32t, 0)]);
    let dl_bw = b.structure(
        Some("dl_bw"),
        16,
        vec![field("bw", u64t, 0), field("total_bw", u64t, 8)],
    );
    let rd = b.structure(Some("root_domain"), 16, vec![field("dl_bw", dl_bw, 0)]);
    let rdp = b.pointer(Some(rd));
    let task = b.forward("task_struct");
    let taskp = b.pointer(Some(task));
    let rq = b.structure(
        Some("rq"),
        1024,
        vec![
            field("nr_running", u32t, off::RQ_NR_RUNNING),
            field("nr_switches", u64t, 8),
            field("nr_uninterruptible", ulong, 16),
            field("next_balance", ulong, 24),
            field("curr", taskp, off::RQ_CURR),
            field("clock", u64t, off::RQ_CLOCK),
            field("clock_task", u64t, 48),
            field("avg_idle", u64t, 56),
            field("max_idle_balance_cost", u64t, 64),
            field("cfs", cfs_rq, off::RQ_CFS),
            field("rt", rt_rq, 528),
            field("dl", dl_rq, 536),
            field("rd", rdp, off::RQ_RD),
            field("leaf_cfs_rq_list", list_head, off::RQ_LEAF),
        ],
    );
    let ti = b.structure(
        Some("thread_info"),
        16,
        vec![field("flags", ulong, 0), field("cpu", u32t, 8)],
    );
    let stats = b.structure(
        Some("sched_statistics"),
        24,
        vec![
            field("wait_sum", u64t, 0),
            field("sum_sleep_runtime", u64t, 8),
            field("sum_block_runtime", u64t, 16),
        ],
    );
    let signal = b.structure(
        Some("signal_struct"),
        16,
        vec![field("thread_head", list_head, 0)],
    );
    let sigp = b.pointer(Some(signal));
    let comm = b.array(ch, Some(16));
    b.define(
        task,
        512,
        vec![
            field("thread_info", ti, 0),
            field("__state", u32t, off::T_STATE),
            field("exit_state", int, 20),
            field("pid", int, off::T_PID),
            field("prio", int, off::T_PRIO),
            field("comm", comm, off::T_COMM),
            field("nvcsw", ulong, off::T_NVCSW),
            field("nivcsw", ulong, 56),
            field("se", se, off::T_SE),
            field("stats", stats, 224),
            field("tasks", list_head, off::T_TASKS),
            field("signal", sigp, off::T_SIGNAL),
            field("thread_node", list_head, off::T_THREAD_NODE),
            field("sched_task_group", tgp, off::T_TG),
        ],
    );
    let name65 = b.array(ch, Some(65));
    let utsname = b.structure(
        Some("new_utsname"),
        390,
        vec![
            field("sysname", name65, 0),
            field("nodename", name65, 65),
            field("release", name65, 130),
            field("version", name65, 195),
            field("machine", name65, 260),
            field("domainname", name65, 325),
        ],
    );
    let uts_ns = b.structure(Some("uts_namespace"), 392, vec![field("name", utsname, 0)]);
    let bits = b.array(ulong, Some(1));
    let cpumask = b.structure(Some("cpumask"), 8, vec![field("bits", bits, 0)]);
    let pco = b.array(ulong, Some(2));
    b.variable("init_uts_ns", uts_ns, 0xffff_ffff_8260_0000, 392);
    b.variable("init_task", task, 0xffff_ffff_8261_0000, 512);
    b.variable("nr_cpu_ids", u32t, 0xffff_ffff_8262_0000, 4);
    b.variable("__cpu_online_mask", cpumask, 0xffff_ffff_8262_0100, 8);
    b.variable("__per_cpu_offset", pco, 0xffff_ffff_8262_1000, 16);
    b.variable("jiffies", ulong, 0xffff_ffff_8262_2000, 8);
    b.variable("sysctl_sched_base_slice", u32t, 0xffff_ffff_8262_3000, 4);
    b.variable("sysctl_sched_features", u32t, 0xffff_ffff_8262_3010, 4);
    b.variable(
        "sysctl_sched_tunable_scaling",
        u32t,
        0xffff_ffff_8262_3020,
        4,
    );
    b.variable("runqueues", rq, RUNQUEUES, 1024);
    b
}

const Z: u64 = 1_000_000_000;

/// (pid, comm, cpu, state, vruntime, sum_exec, nvcsw, custom slice)
type TaskSpec = (u32, &'static str, u32, u32, u64, u64, u64, bool);

#[test]
fn eevdf_through_the_kernel_view_with_cpu1_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = vmlinux().write_to(dir.path(), "vmlinux");
    let vm = Arc::new(Vmlinux::open(&path).unwrap());
    let syms = Arc::new(SymbolTable::from_vmlinux(&vm, 0));
    let types: Arc<dyn TypeSource> = Arc::new(CombinedTypes::new(vm).unwrap());

    let mut m = Mem::default();
    let uts = 0xffff_ffff_8260_0000;
    m.put(uts + 130, b"6.12.117-synthetic\0");
    m.put(uts + 195, b"#1 SMP PREEMPT_DYNAMIC Debian\0");
    m.u32(0xffff_ffff_8262_0000, 2);
    m.u64(0xffff_ffff_8262_0100, 0b11);
    m.u64(0xffff_ffff_8262_1000, PERCPU0);
    m.u64(0xffff_ffff_8262_1008, PERCPU1);
    m.u64(0xffff_ffff_8262_2000, 4_294_967_296);
    m.u32(0xffff_ffff_8262_3000, 3_000_000);
    m.u32(0xffff_ffff_8262_3010, 6_237_751);
    m.u32(0xffff_ffff_8262_3020, 1);

    // The root task group: cgroup → kernfs root (no parent) → path "/".
    let kn = HEAP;
    let cg = HEAP + 0x100;
    let tg = HEAP + 0x200;
    m.u64(cg, kn);
    m.u64(tg, cg);
    let rd = HEAP + 0x300;
    m.u64(rd, 996_147);

    let rq0 = RUNQUEUES + PERCPU0;
    let cfs = rq0 + off::RQ_CFS;
    let init = 0xffff_ffff_8261_0000;
    let t = [HEAP + 0x1000, HEAP + 0x2000, HEAP + 0x3000, HEAP + 0x4000];
    let sig = HEAP + 0x800;
    let specs: [TaskSpec; 4] = [
        (1, "init", 0, 1, Z - 5000, 11, 3, false),
        (2, "spin", 0, 0, Z + 1000, 22, 5, false),
        (3, "worker", 0, 0, Z + 3000, 33, 7, true),
        (4, "other", 1, 1, Z, 44, 9, false),
    ];
    for (i, &(pid, comm, cpu, state, vr, exec, sw, custom)) in specs.iter().enumerate() {
        let a = t[i];
        m.u32(a + off::T_CPU, cpu);
        m.u32(a + off::T_STATE, state);
        m.u32(a + off::T_PID, pid);
        m.u32(a + off::T_PRIO, 120);
        m.put(a + off::T_COMM, format!("{comm}\0").as_bytes());
        m.u64(a + off::T_NVCSW, sw);
        let se = a + off::T_SE;
        m.u64(se + off::SE_LOAD, 1_048_576);
        m.u64(se + off::SE_VRUNTIME, vr);
        m.u64(se + off::SE_MIN_VRUNTIME, vr);
        m.u64(se + off::SE_DEADLINE, vr + 3_000_000);
        m.u64(se + off::SE_SLICE, if custom { 100_000 } else { 3_000_000 });
        m.put(se + off::SE_CUSTOM_SLICE, &[u8::from(custom)]);
        m.put(se + off::SE_ON_RQ, &[1]);
        m.u64(se + off::SE_SUM_EXEC, exec);
        m.u64(se + off::SE_CFS_RQ, cfs);
        m.u64(a + off::T_SIGNAL, sig + i as u64 * 0x10);
        m.list(sig + i as u64 * 0x10, &[a + off::T_THREAD_NODE]);
        m.u64(a + off::T_TG, tg);
    }
    m.list(init + off::T_TASKS, &t.map(|a| a + off::T_TASKS));

    // CPU 0: spin (pid 2) running, worker (pid 3) queued alone in the tree.
    m.u32(rq0 + off::RQ_NR_RUNNING, 2);
    m.u64(rq0 + off::RQ_CURR, t[1]);
    m.u64(rq0 + off::RQ_CLOCK, 3_541_116_020);
    m.u64(rq0 + off::RQ_RD, rd);
    m.list(rq0 + off::RQ_LEAF, &[cfs + off::CFS_LEAF]);
    m.u64(cfs + off::CFS_LOAD, 2_097_152);
    m.u32(cfs + off::CFS_NR_RUNNING, 2);
    m.u64(cfs + off::CFS_AVG_VRUNTIME, 3000 * 1024);
    m.u64(cfs + off::CFS_AVG_LOAD, 1024);
    m.u64(cfs + off::CFS_ZERO, Z);
    let worker_node = t[2] + off::T_SE + off::SE_RUN_NODE;
    m.u64(cfs + off::CFS_ROOT, worker_node);
    m.u64(cfs + off::CFS_LEFTMOST, worker_node);
    m.u64(cfs + off::CFS_CURR, t[1] + off::T_SE);
    m.u64(cfs + off::CFS_TG, tg);
    // CPU 1's per-CPU area is not written: not in the dump.

    let info = DumpInfo {
        paths: vec![],
        file_size: 0,
        format: DumpFormat::Elf {
            endian: Endian::Little,
        },
        arch: Some(Arch::X86_64),
        endian: Endian::Little,
        page_size: 4096,
        vmcoreinfo: None,
        vmcoreinfo_source: vmcore_report::dump::VmcoreinfoSource::Absent,
        cpus: vec![],
        header_utsname: None,
        header_timestamp: None,
        phys_base: None,
        dump_level: None,
        nr_cpus: None,
        health: Default::default(),
    };
    let space = AddressSpace::new(
        Arc::new(m.0),
        Box::new(OffsetTranslator(VBASE)),
        Endian::Little,
        0,
    );
    let kernel = Kernel::new(space, syms, types, info);
    let out = collect(&kernel.access());
    assert!(
        out.errors.iter().all(|e| e.code == "not-dumped"),
        "{:?}",
        out.errors
    );
    assert!(!out.errors.is_empty());
    assert!(matches!(out.sched.cpus[1].body, CpuBody::Missing { .. }));
    let text = String::from_utf8(render(&out.sched, false)).unwrap();
    // V = Z + (3000·1024 + 1000·1024) / 2048 = Z + 2000; worker: 3000·2048 > 4096000 → N.
    let expected_cfs = "\
cfs_rq[0]:/
  .left_deadline                 : 1003.003000
  .left_vruntime                 : 1000.003000
  .zero_vruntime                 : 1000.000000
  .avg_vruntime                  : 1000.002000
  .right_vruntime                : 1000.003000
  .spread                        : 0.000000
  .nr_running                    : 2
  .h_nr_runnable                 : 0
  .h_nr_queued                   : 0
  .h_nr_delayed                  : 0
  .idle_nr_running               : 0
  .idle_h_nr_running             : 0
  .load                          : 2097152
";
    assert!(text.contains(expected_cfs), "{text}");
    for line in [
        "Sched Debug Version: v0.11, 6.12.117-synthetic #1\n",
        "  .sysctl_sched_base_slice                 : 3.000000\n",
        "  .curr->pid                     : 2\n",
        "  .dl_bw->bw                     : 996147\n",
        "rt_rq[0]:\n  .rt_nr_running                 : 0\n\n",
        // printf output of 6.12.117's print_task() formats on these values:
        " S            init     1       999.995000   E        1002.995000           3.000000         0.000011         3     120         0.000000         0.000000         0.000000        /\n",
        ">R            spin     2      1000.001000   E        1003.001000           3.000000         0.000022         5     120         0.000000         0.000000         0.000000        /\n",
        " R          worker     3      1000.003000   N        1003.003000 S         0.100000         0.000033         7     120         0.000000         0.000000         0.000000        /\n",
        "\ncpu#1\n  (not available in this dump: runqueue of CPU 1 unreadable",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains(" other "),
        "task 4 is on CPU 1, whose block is missing"
    );
}
