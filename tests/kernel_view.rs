//! The kernel view (Kernel, Object, walkers, per-CPU data, cpumasks, errors, deadline) over a
//! synthetic vmlinux (tests/common/dwarf.rs) and a tiny in-test physical memory with an offset
//! translator. Expected values are the ones the test writes into memory.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dwarf::{KernelVersion, SampleLayout, addrs, sample_kernel};
use common::kernel::{OffsetTranslator, SparseMem};
use vmcore_report::addr::{Arch, Endian, VirtAddr};
use vmcore_report::arch::AddressSpace;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::debuginfo::{CombinedTypes, TypeSource};
use vmcore_report::dump::{DumpFormat, DumpInfo, VmcoreInfo};
use vmcore_report::kernel::{Kernel, KernelAccess, KernelAccessExt, KernelError};

const KASLR: u64 = 0x0a00_0000;
/// Kernel virtual addresses map to physical ones by subtracting this (a direct offset map).
const VBASE: u64 = 0xffff_ffff_8000_0000;
/// Link-time addresses of heap objects (not in the symbol table): shifted like the image.
const HEAP: u64 = 0xffff_ffff_9000_0000;
const PERCPU_BASE: u64 = 0xffff_ffff_9800_0000;

/// Writes kernel memory by virtual address.
struct Writer {
    mem: SparseMem,
}

impl Writer {
    fn put(&mut self, va: u64, bytes: &[u8]) {
        self.mem.write(va - VBASE, bytes);
    }
    fn u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    fn u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
}

struct Fixture {
    kernel: Kernel,
    layout: SampleLayout,
    _dir: tempfile::TempDir,
}

/// A task at a heap address (runtime, KASLR-shifted).
fn task_addr(i: u64) -> u64 {
    HEAP + KASLR + i * 0x1000
}

fn build(version: KernelVersion, corrupt_list: bool) -> Fixture {
    build_dropping(version, corrupt_list, None)
}

/// Like [`build`], with the page of one task (by index on the list) left out of the dump.
fn build_dropping(version: KernelVersion, corrupt_list: bool, drop_task: Option<u64>) -> Fixture {
    let (b, l) = sample_kernel(version);
    let dir = tempfile::tempdir().unwrap();
    let path = b.write_to(dir.path(), "vmlinux");
    let vm = Arc::new(Vmlinux::open(&path).unwrap());
    let syms = Arc::new(SymbolTable::from_vmlinux(&vm, KASLR));
    let types: Arc<dyn TypeSource> = Arc::new(CombinedTypes::new(vm).unwrap());
    let mut w = Writer {
        mem: SparseMem::default(),
    };

    // init_uts_ns.name.{sysname,release}
    let uts = addrs::INIT_UTS_NS + KASLR + l.uts_name_offset;
    w.put(uts, b"Linux\0");
    let mut rel = b"6.1.0-synthetic".to_vec();
    rel.resize(65, b'x'); // no NUL inside the array: the read must stop at 65 bytes
    w.put(uts + l.utsname_release_offset, &rel);
    w.put(uts + 65, b"host\xff\xfename\0"); // nodename with non-UTF-8 bytes, kept lossless

    // init_task + three tasks on the circular `tasks` list
    let init = addrs::INIT_TASK + KASLR;
    let tasks = [init, task_addr(1), task_addr(2), task_addr(3)];
    for (i, &t) in tasks.iter().enumerate() {
        let next = tasks[(i + 1) % tasks.len()] + l.tasks_offset;
        let prev = tasks[(i + tasks.len() - 1) % tasks.len()] + l.tasks_offset;
        w.u64(t + l.tasks_offset, next);
        w.u64(t + l.tasks_offset + 8, prev);
        w.u32(t + l.pid_offset, i as u32 * 100);
        w.put(t + l.comm_offset, format!("task{i}\0").as_bytes());
        if l.state_size == 8 {
            w.u64(t + l.state_offset, (-1i64) as u64); // old kernels: long state, -1 unrunnable
        } else {
            w.u32(t + l.state_offset, 0x402);
        }
        w.u32(t + l.prio_offset, 120 + i as u32);
    }
    if corrupt_list {
        // task3.next -> task1 instead of init: a cycle that never returns to the head
        w.u64(task_addr(3) + l.tasks_offset, task_addr(1) + l.tasks_offset);
    }
    // bitfields of init_task: reset_on_fork=1, contributes=0, in_iowait=5, signed_bits=-3
    // bit 0 = 1, bit 1 = 0
    let word: u32 = 1 | (5 << 2) | ((-3i32 as u32 & 0xf) << 5);
    w.u32(init + 216, word);
    w.u32(init + 220, 2); // pid_kind = PIDTYPE_PGID
    w.u64(init + 248, 0xdead_beef); // anonymous union flags_anon

    // cpus: nr_cpu_ids = 4, online {0,1,3}, possible {0..3}, present {0,1,3}
    w.u32(addrs::NR_CPU_IDS + KASLR, 4);
    w.u64(addrs::CPU_ONLINE_MASK + KASLR, 0b1011 | (1 << 9)); // bit 9 beyond nr_cpu_ids: ignored
    w.u64(addrs::CPU_POSSIBLE_MASK + KASLR, 0b1111);
    w.u64(addrs::CPU_PRESENT_MASK + KASLR, 0b1011);
    for cpu in 0..addrs::NR_CPUS {
        let off = PERCPU_BASE + cpu * 0x10_0000;
        w.u64(addrs::PER_CPU_OFFSET + KASLR + cpu * 8, off);
        if cpu < 4 {
            // runqueues.nr_running at offset 0 of struct rq
            w.u32(addrs::RUNQUEUES + off, 10 + cpu as u32);
        }
    }
    w.u64(addrs::JIFFIES + KASLR, 4_294_967_296 + 5);

    let mut info_vi = VmcoreInfo {
        kerneloffset: Some(KASLR),
        page_size: Some(16384),
        ..Default::default()
    };
    info_vi
        .symbols
        .insert("only_in_vmcoreinfo".into(), 0xffff_ffff_8123_4000);
    info_vi.offsets.insert("printk_info.seq".into(), 0);
    let info = DumpInfo {
        paths: vec![],
        file_size: 0,
        format: DumpFormat::Elf {
            endian: Endian::Little,
        },
        arch: Some(Arch::X86_64),
        endian: Endian::Little,
        page_size: 4096,
        vmcoreinfo: Some(info_vi),
        vmcoreinfo_source: vmcore_report::dump::VmcoreinfoSource::Note,
        cpus: vec![],
        header_utsname: None,
        header_timestamp: None,
        phys_base: None,
        dump_level: None,
        nr_cpus: None,
        health: Default::default(),
    };
    if let Some(i) = drop_task {
        w.mem.pages.remove(&((task_addr(i) - VBASE) / 4096));
    }
    let space = AddressSpace::new(
        Arc::new(w.mem),
        Box::new(OffsetTranslator(VBASE)),
        Endian::Little,
        KASLR,
    );
    Fixture {
        kernel: Kernel::new(space, syms, types, info),
        layout: l,
        _dir: dir,
    }
}

#[test]
fn uts_release_is_bounded_and_lossless() {
    let f = build(KernelVersion::New, false);
    let k = &f.kernel;
    let uts = k.variable("init_uts_ns").unwrap();
    assert_eq!(uts.address(), VirtAddr(addrs::INIT_UTS_NS + KASLR));
    let release = uts.member("name.release").unwrap();
    let mut expect = b"6.1.0-synthetic".to_vec();
    expect.resize(65, b'x');
    assert_eq!(release.cstring(1000).unwrap(), expect);
    assert_eq!(release.cstring(5).unwrap(), b"6.1.0");
    assert_eq!(
        uts.member("name.sysname").unwrap().cstring(65).unwrap(),
        b"Linux"
    );
    assert_eq!(
        uts.member("name.nodename").unwrap().cstring(65).unwrap(),
        b"host\xff\xfename"
    );
    assert_eq!(
        k.offset_of("struct uts_namespace", "name.release").unwrap(),
        134
    );
}

fn walk_tasks(version: KernelVersion) {
    let f = build(version, false);
    let k = &f.kernel;
    let init = k.variable("init_task").unwrap();
    let head = init.member("tasks").unwrap().address();
    let tasks = k
        .list_entries(head, "struct task_struct", "tasks", 100)
        .unwrap();
    assert_eq!(tasks.len(), 3);
    for (i, t) in tasks.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(t.address(), VirtAddr(task_addr(n)));
        assert_eq!(t.member("pid").unwrap().i64().unwrap(), n as i64 * 100);
        assert_eq!(
            t.member("comm").unwrap().cstring(16).unwrap(),
            format!("task{n}").as_bytes()
        );
        assert_eq!(t.member("prio").unwrap().u64().unwrap(), 120 + n);
        // renamed member: `__state` since 5.14, `state` before
        let st = t.task_state().unwrap();
        if version == KernelVersion::New {
            assert_eq!(st, 0x402);
        } else {
            assert_eq!(st as i64, -1, "old `long state` is signed");
        }
    }
    // container_of from a list node back to its task
    let node = init.member("tasks.next").unwrap();
    let t1 = node.container_of("struct task_struct", "tasks").unwrap();
    assert_eq!(t1.address(), VirtAddr(task_addr(1)));
    // deref a pointer member: tasks.next -> struct list_head
    let lh = node.deref().unwrap();
    assert_eq!(lh.address(), VirtAddr(task_addr(1) + f.layout.tasks_offset));
    assert!(init.has_member(f.layout.state_name).unwrap());
}

#[test]
fn task_list_new_kernel() {
    walk_tasks(KernelVersion::New);
}

#[test]
fn task_list_old_kernel() {
    walk_tasks(KernelVersion::Old);
}

#[test]
fn list_cycle_is_corrupt_not_a_hang() {
    let f = build(KernelVersion::New, true);
    let k = &f.kernel;
    let head = k
        .variable("init_task")
        .unwrap()
        .member("tasks")
        .unwrap()
        .address();
    let e = k.list_nodes(head, 1000).unwrap_err();
    assert_eq!(e.code(), "corrupt-data", "{e}");
    // the cap is enforced too
    let f = build(KernelVersion::New, false);
    let head = f
        .kernel
        .variable("init_task")
        .unwrap()
        .member("tasks")
        .unwrap()
        .address();
    assert_eq!(
        f.kernel.list_nodes(head, 2).unwrap_err().code(),
        "corrupt-data"
    );
}

#[test]
fn a_list_broken_by_a_missing_page_is_salvaged_backwards() {
    // task 2's page is not in the dump: the forward walk stops there, the backward walk
    // from the head (init.prev = task 3) recovers task 3
    let f = build_dropping(KernelVersion::New, false, Some(2));
    let k = &f.kernel;
    let head = k
        .variable("init_task")
        .unwrap()
        .member("tasks")
        .unwrap()
        .address();
    let strict = k.list_nodes(head, 100).unwrap_err();
    assert!(strict.is_not_dumped(), "{strict}");
    let (nodes, err) = k.list_nodes_salvaged(head, 100);
    let off = f.layout.tasks_offset;
    // task 2 itself is unreadable: it is the break, reported, not an entry
    let expect: Vec<VirtAddr> = [1, 3].map(|i| VirtAddr(task_addr(i) + off)).to_vec();
    assert_eq!(nodes, expect);
    let err = err.expect("the break is reported");
    assert!(err.is_not_dumped(), "{err}");
    let (tasks, _) = k
        .list_entries_salvaged(head, "struct task_struct", "tasks", 100)
        .unwrap();
    let pids: Vec<i64> = tasks
        .iter()
        .map(|t| t.member("pid").unwrap().i64().unwrap())
        .collect();
    assert_eq!(pids, [100, 300]);

    // an intact list: same nodes as the strict walk, no error
    let f = build(KernelVersion::New, false);
    let head = f
        .kernel
        .variable("init_task")
        .unwrap()
        .member("tasks")
        .unwrap()
        .address();
    let (nodes, err) = f.kernel.list_nodes_salvaged(head, 100);
    assert!(err.is_none());
    assert_eq!(nodes, f.kernel.list_nodes(head, 100).unwrap());

    // a cycle that never returns to the head: the forward part, then the backward walk
    // (init.prev = task 3, already seen) adds nothing; the error is kept
    let f = build(KernelVersion::New, true);
    let head = f
        .kernel
        .variable("init_task")
        .unwrap()
        .member("tasks")
        .unwrap()
        .address();
    let (nodes, err) = f.kernel.list_nodes_salvaged(head, 100);
    assert_eq!(nodes.len(), 3);
    assert_eq!(err.unwrap().code(), "corrupt-data");
}

#[test]
fn bitfields_enums_anonymous_members() {
    let f = build(KernelVersion::New, false);
    let init = f.kernel.variable("init_task").unwrap();
    assert_eq!(
        init.member("sched_reset_on_fork").unwrap().u64().unwrap(),
        1
    );
    assert!(
        !init
            .member("sched_contributes_to_load")
            .unwrap()
            .bool()
            .unwrap()
    );
    assert_eq!(init.member("in_iowait").unwrap().u64().unwrap(), 5);
    assert_eq!(init.member("signed_bits").unwrap().i64().unwrap(), -3);
    let (v, name) = init.member("pid_kind").unwrap().enum_value().unwrap();
    assert_eq!((v, name.as_deref()), (2, Some("PIDTYPE_PGID")));
    assert_eq!(f.kernel.enumerator("PIDTYPE_MAX").unwrap(), 4);
    assert_eq!(
        init.member("flags_anon").unwrap().u64().unwrap(),
        0xdead_beef
    );
    // volatile unsigned long at full width
    assert_eq!(
        f.kernel.variable("jiffies").unwrap().u64().unwrap(),
        4_294_967_301
    );
}

#[test]
fn per_cpu_and_cpumasks() {
    let f = build(KernelVersion::New, false);
    let k = &f.kernel;
    assert_eq!(k.nr_cpu_ids().unwrap(), 4);
    assert_eq!(k.online_cpus().unwrap(), vec![0, 1, 3]);
    assert_eq!(k.possible_cpus().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(k.present_cpus().unwrap(), vec![0, 1, 3]);
    for cpu in k.online_cpus().unwrap() {
        let rq = k.per_cpu("runqueues", cpu).unwrap();
        assert_eq!(
            rq.address(),
            VirtAddr(addrs::RUNQUEUES + PERCPU_BASE + u64::from(cpu) * 0x10_0000)
        );
        assert_eq!(
            rq.member("nr_running").unwrap().u64().unwrap(),
            10 + u64::from(cpu)
        );
    }
}

#[test]
fn error_kinds_are_distinct() {
    let f = build(KernelVersion::Old, false);
    let k = &f.kernel;
    let e = k.variable("no_such_global").unwrap_err();
    assert_eq!(e.code(), "no-such-symbol");
    assert!(e.is_missing());
    let init = k.variable("init_task").unwrap();
    let e = init.member("__state").unwrap_err();
    assert!(matches!(e, KernelError::NoMember { .. }), "{e}");
    assert_eq!(e.code(), "no-such-member");
    // `parent` is NULL-free garbage: points at an address that is not in the dump
    let t1 = k
        .object_of(VirtAddr(task_addr(1)), "struct task_struct")
        .unwrap();
    let far = k.object(VirtAddr(HEAP + KASLR + 0x0800_0000), t1.type_id());
    let e = far.member("pid").unwrap().u64().unwrap_err();
    assert_eq!(e.code(), "not-dumped");
    assert!(e.is_not_dumped());
    let e = k.read_u64(VirtAddr(0x1000)).unwrap_err();
    assert_eq!(e.code(), "not-mapped");
    assert_eq!(
        init.member("pid").unwrap().deref().unwrap_err().code(),
        "wrong-type"
    );
    // a path through a scalar is a member this kernel does not have (the kernel changed a
    // struct into an integer); through a pointer it is the caller's mistake; and asking an
    // integer object itself for a member is the caller's mistake too
    let e = init.member("pid.level").unwrap_err();
    assert!(matches!(e, KernelError::NoMember { .. }), "{e}");
    assert!(!init.has_member("pid.level").unwrap());
    assert_eq!(
        init.member("tasks.next.next").unwrap_err().code(),
        "wrong-type"
    );
    assert_eq!(
        init.member("pid")
            .unwrap()
            .member("level")
            .unwrap_err()
            .code(),
        "wrong-type"
    );
    assert_eq!(
        k.find_type("struct nope").unwrap_err().code(),
        "no-such-type"
    );
}

#[test]
fn deadline_stops_reads() {
    let f = build(KernelVersion::New, false);
    let k = &f.kernel;
    k.set_deadline(Some(Instant::now() - Duration::from_secs(1)));
    let e = k.variable("nr_cpu_ids").unwrap().u64().unwrap_err();
    assert!(matches!(e, KernelError::TimedOut));
    assert_eq!(e.code(), "timed-out");
    k.set_deadline(Some(Instant::now() + Duration::from_secs(3600)));
    assert_eq!(k.variable("nr_cpu_ids").unwrap().u64().unwrap(), 4);
    k.set_deadline(None);
    assert_eq!(k.variable("nr_cpu_ids").unwrap().u64().unwrap(), 4);
}

#[test]
fn symbolize_and_array_index() {
    let f = build(KernelVersion::New, false);
    let k = &f.kernel;
    assert_eq!(
        k.symbolize(VirtAddr(0xffff_ffff_8100_1000 + KASLR + 4))
            .as_deref(),
        Some("schedule+0x4")
    );
    let pco = k.variable("__per_cpu_offset").unwrap();
    assert_eq!(pco.array_len().unwrap(), Some(addrs::NR_CPUS));
    assert_eq!(
        pco.index(2).unwrap().u64().unwrap(),
        PERCPU_BASE + 0x20_0000
    );
    assert_eq!(
        pco.member("[3]").unwrap().u64().unwrap(),
        PERCPU_BASE + 0x30_0000
    );
    assert_eq!(pco.member("x]").unwrap_err().code(), "wrong-type");
    assert_eq!(pco.index(addrs::NR_CPUS).unwrap_err().code(), "wrong-type");
    let mask = k.variable("__cpu_online_mask").unwrap();
    assert_eq!(
        mask.member("bits[0]").unwrap().u64().unwrap(),
        0b1011 | (1 << 9)
    );
}

/// The production `KernelAccess` (`Kernel::access`) maps onto the kernel view: absent things are
/// `Ok(None)`, unreadable memory an error with the address, a read length beyond the bound refused.
#[test]
fn access_maps_the_kernel_view() {
    let f = build(KernelVersion::New, false);
    let a = f.kernel.access();
    assert_eq!(
        a.read(addrs::JIFFIES + KASLR, 8).unwrap(),
        (4_294_967_296u64 + 5).to_le_bytes()
    );
    let e = a.read(0x1000, 8).unwrap_err();
    assert_eq!(e.code, "not-mapped");
    assert!(e.what.contains("0x1000"), "{}", e.what);
    let e = a
        .read(
            addrs::JIFFIES + KASLR,
            vmcore_report::kernel::access::MAX_READ_LEN + 1,
        )
        .unwrap_err();
    assert_eq!(e.code, "too-large");
    assert_eq!(a.symbol("jiffies").unwrap(), Some(addrs::JIFFIES + KASLR));
    assert_eq!(
        a.symbol("only_in_vmcoreinfo").unwrap(),
        Some(0xffff_ffff_8123_4000)
    );
    assert_eq!(a.symbol("no_such_global").unwrap(), None);
    assert_eq!(
        a.symbolize(0xffff_ffff_8100_1000 + KASLR + 4).as_deref(),
        Some("schedule+0x4")
    );
    assert_eq!(
        a.offset_of("struct uts_namespace", "name.release").unwrap(),
        Some(134)
    );
    assert_eq!(a.offset_of("struct uts_namespace", "nope").unwrap(), None);
    assert_eq!(a.offset_of("struct nope", "x").unwrap(), None);
    assert_eq!(a.type_size("struct nope").unwrap(), None);
    assert_eq!(
        a.type_size("struct uts_namespace").unwrap(),
        Some(f.kernel.size_of("struct uts_namespace").unwrap())
    );
    assert_eq!(a.enumerator("PIDTYPE_MAX").unwrap(), Some(4));
    assert_eq!(a.enumerator("NO_SUCH_ENUMERATOR").unwrap(), None);
    assert_eq!(a.page_size(), 16384);
    assert_eq!(a.endian(), Endian::Little);
    assert_eq!(a.vmcoreinfo("PAGESIZE").as_deref(), Some("16384"));
    assert_eq!(a.vmcoreinfo_u64("OFFSET(printk_info.seq)"), Some(0));
    assert_eq!(
        a.vmcoreinfo_symbol("only_in_vmcoreinfo"),
        Some(0xffff_ffff_8123_4000)
    );
    assert_eq!(a.vmcoreinfo("SYMBOL(prb)"), None);
}
