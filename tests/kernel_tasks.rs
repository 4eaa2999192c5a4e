//! The task enumeration ([`Kernel::tasks`]) over whole synthetic kernels (tests/common/
//! synthkernel.rs): 35 tasks (30 processes, two of them with threads) linked the way a 6.x kernel
//! links them (the task list, parentage, thread lists, the pid IDR as a two-level XArray, the
//! runqueues), written as ELF and kdump-compressed dumps from which chosen pages are left out.
//! The expected lists come from the scenario the test writes, never from the walker.

mod common;

use std::collections::BTreeSet;

use common::synthkernel::{KernelConfig, Obj, SynthKernel, T};
use common::vmcore::{KdumpOpts, SynthCodec};
use vmcore_report::addr::VirtAddr;
use vmcore_report::kernel::{Kernel, TaskSources};

/// Tasks 0..30 are processes (pids 1, 2, then spread so that the IDR needs two levels); 30..33
/// are threads of process 9, 33..35 threads of process 19.
const NPROC: usize = 30;
const NTASK: usize = 35;
/// `EXIT_DEAD`.
const EXIT_DEAD: u64 = 0x10;
/// A pid only a runqueue names: released (`EXIT_DEAD`), not to be listed.
const GHOST_PID: u64 = 4000;

fn pid(i: usize) -> i32 {
    if i < 2 {
        i as i32 + 1
    } else {
        10 + i as i32 * 113
    }
}

fn leader_of(i: usize) -> usize {
    match i {
        30..=32 => 9,
        33 | 34 => 19,
        _ => i,
    }
}

fn threads_of(p: usize) -> Vec<usize> {
    (NPROC..NTASK).filter(|&t| leader_of(t) == p).collect()
}

#[derive(Default, Clone)]
struct Scenario {
    /// Tasks whose first page (links, pid) the dump lacks: wholly unreadable.
    drop_first: Vec<usize>,
    /// Tasks whose second page (`comm`) the dump lacks: links readable, the task not whole.
    drop_second: Vec<usize>,
    /// Tasks whose `struct pid` page the dump lacks.
    drop_pid: Vec<usize>,
    /// No `init_pid_ns` and no children lists: only the lists and the runqueues remain.
    lists_only: bool,
    /// `tasks.next` of process `.0` points back at process `.1`.
    cycle: Option<(usize, usize)>,
    /// `tasks.next` of this process is a wild pointer.
    wild_next: Option<usize>,
    /// One IDR node slot points back at the root node.
    idr_cycle: bool,
    kdump: bool,
}

struct Types {
    task: T,
    signal: T,
    pid: T,
    pid_ns: T,
    xa_node: T,
    rq: T,
    cpumask: T,
    uint: T,
    ulong: T,
}

fn declare(k: &mut SynthKernel) -> Types {
    let chr = k.int("char", 1, true);
    let uchar = k.int("unsigned char", 1, false);
    let int = k.int("int", 4, true);
    let uint = k.int("unsigned int", 4, false);
    let ulong = k.int("long unsigned int", 8, false);
    let pid_t = k.typedef("pid_t", int);
    let voidp = k.ptr(None);
    let lh = k.forward("list_head");
    let lhp = k.ptr(Some(lh));
    k.define(lh, &[("next", lhp), ("prev", lhp)]);
    let hn = k.forward("hlist_node");
    let hnp = k.ptr(Some(hn));
    let hnpp = k.ptr(Some(hnp));
    k.define(hn, &[("next", hnp), ("pprev", hnpp)]);
    let hh = k.structure(Some("hlist_head"), &[("first", hnp)]);
    let bits = k.array(ulong, 1);
    let cpumask = k.structure(Some("cpumask"), &[("bits", bits)]);
    let signal = k.structure(
        Some("signal_struct"),
        &[("nr_threads", int), ("thread_head", lh)],
    );
    let signalp = k.ptr(Some(signal));
    let se = k.structure(Some("sched_entity"), &[("group_node", lh), ("on_rq", uint)]);
    let task = k.forward("task_struct");
    let taskp = k.ptr(Some(task));
    let links = k.array(hn, 4);
    let pad0 = k.array(chr, 2000);
    let pad1 = k.array(chr, 5000);
    let comm = k.array(chr, 16);
    // Two pages: the links and ids in the first, `comm` in the second.
    k.define(
        task,
        &[
            ("__state", uint),
            ("flags", uint),
            ("pad0", pad0),
            ("tasks", lh),
            ("exit_state", int),
            ("pid", pid_t),
            ("tgid", pid_t),
            ("real_parent", taskp),
            ("parent", taskp),
            ("children", lh),
            ("sibling", lh),
            ("group_leader", taskp),
            ("pid_links", links),
            ("thread_node", lh),
            ("se", se),
            ("signal", signalp),
            ("pad1", pad1),
            ("comm", comm),
        ],
    );
    let upid = k.structure(Some("upid"), &[("nr", int), ("ns", voidp)]);
    let upids = k.array(upid, 1);
    let pid_tasks = k.array(hh, 4);
    let pid = k.structure(
        Some("pid"),
        &[
            ("count", int),
            ("level", uint),
            ("tasks", pid_tasks),
            ("numbers", upids),
        ],
    );
    let xarray = k.structure(
        Some("xarray"),
        &[("xa_lock", uint), ("xa_flags", uint), ("xa_head", voidp)],
    );
    let idr = k.structure(
        Some("idr"),
        &[("idr_rt", xarray), ("idr_base", uint), ("idr_next", uint)],
    );
    let pid_ns = k.structure(Some("pid_namespace"), &[("idr", idr), ("level", uint)]);
    let xa_node = k.forward("xa_node");
    let xa_nodep = k.ptr(Some(xa_node));
    let slots = k.array(voidp, 64);
    k.define(
        xa_node,
        &[
            ("shift", uchar),
            ("offset", uchar),
            ("count", uchar),
            ("nr_values", uchar),
            ("parent", xa_nodep),
            ("array", voidp),
            ("private_list", lh),
            ("slots", slots),
        ],
    );
    let rq = k.structure(
        Some("rq"),
        &[
            ("curr", taskp),
            ("idle", taskp),
            ("cfs_tasks", lh),
            ("cpu", int),
        ],
    );
    Types {
        task,
        signal,
        pid,
        pid_ns,
        xa_node,
        rq,
        cpumask,
        uint,
        ulong,
    }
}

/// The kernel of a scenario: every structure written, then the chosen pages left out. Returns
/// the kernel view, the task addresses (by task index), and the temporary files.
fn build(s: &Scenario) -> (Kernel, Vec<u64>, tempfile::TempDir) {
    let mut k = SynthKernel::new(KernelConfig {
        nr_cpus: 2,
        ..KernelConfig::default()
    });
    let ty = declare(&mut k);
    let init = k.global("init_task", ty.task);
    let idle1 = k.alloc_aligned(ty.task, 4096);
    let tasks: Vec<Obj> = (0..NTASK).map(|_| k.alloc_aligned(ty.task, 4096)).collect();
    let ghost = k.alloc_aligned(ty.task, 4096);
    let pids: Vec<Obj> = (0..NTASK).map(|_| k.alloc_aligned(ty.pid, 4096)).collect();
    let signals: Vec<Obj> = (0..NPROC).map(|_| k.alloc(ty.signal)).collect();
    let at = |k: &SynthKernel, o: &Obj, m: &str| k.at(o, m).va;

    for (o, p, c) in [(&init, 0, "swapper/0"), (&idle1, 0, "swapper/1")] {
        k.set_all(o, &[("pid", p), ("tgid", p), ("group_leader", o.va)]);
        k.set_str(o, "comm", c);
        for l in ["children", "sibling", "thread_node", "tasks"] {
            let h = at(&k, o, l);
            k.link_list(h, &[]);
        }
    }
    for i in 0..NTASK {
        let t = tasks[i];
        let lead = leader_of(i);
        let parent = match lead {
            0 | 1 => init.va,
            2..=15 => tasks[1].va,
            _ => tasks[0].va,
        };
        k.set_all(
            &t,
            &[
                ("pid", pid(i) as u64),
                ("tgid", pid(lead) as u64),
                ("real_parent", parent),
                ("parent", parent),
                ("group_leader", tasks[lead].va),
                ("signal", signals[lead].va),
            ],
        );
        k.set_str(&t, "comm", &format!("task{i}"));
        // a thread's `tasks` links are a stale copy of its creator's: point them somewhere
        // harmless, as the walker must never follow them
        if lead != i {
            let stale = at(&k, &tasks[lead], "tasks");
            k.set(&t, "tasks.next", stale);
            k.set(&t, "tasks.prev", stale);
        }
        let ch = at(&k, &t, "children");
        let children: Vec<u64> = if s.lists_only {
            Vec::new()
        } else {
            (0..NPROC)
                .filter(|&c| {
                    (i == 1 && (2..=15).contains(&c)) || (i == 0 && (16..NPROC).contains(&c))
                })
                .map(|c| at(&k, &tasks[c], "sibling"))
                .collect()
        };
        k.link_list(ch, &children);
    }
    // init_task's children: pid 1 and pid 2
    let init_children: Vec<u64> = if s.lists_only {
        Vec::new()
    } else {
        vec![at(&k, &tasks[0], "sibling"), at(&k, &tasks[1], "sibling")]
    };
    let ich = at(&k, &init, "children");
    k.link_list(ich, &init_children);
    // the task list: the processes in creation order
    let procs: Vec<u64> = (0..NPROC).map(|p| at(&k, &tasks[p], "tasks")).collect();
    let head = at(&k, &init, "tasks");
    k.link_list(head, &procs);
    // thread lists: the leader, then its threads
    for (p, sig) in signals.iter().enumerate() {
        let members: Vec<u64> = std::iter::once(p)
            .chain(threads_of(p))
            .map(|t| at(&k, &tasks[t], "thread_node"))
            .collect();
        k.set(sig, "nr_threads", members.len() as u64);
        let h = at(&k, sig, "thread_head");
        k.link_list(h, &members);
    }
    // the pid IDR: struct pid per task, in a two-level XArray (root shift 6, leaves shift 0)
    if !s.lists_only {
        let ns = k.global("init_pid_ns", ty.pid_ns);
        let root = k.alloc(ty.xa_node);
        k.set(&root, "shift", 6);
        let mut leaves: std::collections::BTreeMap<u64, Obj> = Default::default();
        for i in 0..NTASK {
            let nr = pid(i) as u64;
            let p = pids[i];
            k.set(&p, "numbers[0].nr", nr);
            let link = at(&k, &tasks[i], "pid_links[0]");
            k.set(&p, "tasks[0].first", link);
            let first = at(&k, &p, "tasks[0].first");
            k.set(&tasks[i], "pid_links[0].pprev", first);
            let leaf = *leaves.entry(nr >> 6).or_insert_with(|| {
                let n = k.alloc(ty.xa_node);
                k.set(&n, "offset", nr >> 6);
                k.set(&n, "parent", root.va);
                n
            });
            let slot = k.at(&leaf, &format!("slots[{}]", nr & 63));
            k.set(&slot, "", p.va);
        }
        for (hi, leaf) in &leaves {
            let slot = k.at(&root, &format!("slots[{hi}]"));
            k.set(&slot, "", leaf.va | 2);
        }
        if s.idr_cycle {
            let slot = k.at(&root, "slots[63]");
            k.set(&slot, "", root.va | 2);
        }
        k.set(&ns, "idr.idr_rt.xa_head", root.va | 2);
        // a zero entry (an id allocated with a NULL pointer) and a value entry: not pids
        let leaf0 = leaves[&0];
        let s60 = k.at(&leaf0, "slots[60]");
        k.set(&s60, "", (257 << 2) | 2);
        let s61 = k.at(&leaf0, "slots[61]");
        k.set(&s61, "", (7 << 1) | 1);
    }
    // a released task that only CPU 1's runqueue still names
    k.set_all(
        &ghost,
        &[
            ("pid", GHOST_PID),
            ("tgid", GHOST_PID),
            ("group_leader", ghost.va),
            ("exit_state", EXIT_DEAD),
        ],
    );
    // the runqueues: CPU 0 idle (init_task current) with processes 4, 6 and thread 30 runnable
    let nr_cpu_ids = k.global("nr_cpu_ids", ty.uint);
    k.set(&nr_cpu_ids, "", 2);
    let possible = k.global("__cpu_possible_mask", ty.cpumask);
    k.set(&possible, "bits[0]", 3);
    k.per_cpu_offsets(ty.ulong);
    let rqs = k.percpu("runqueues", ty.rq);
    let rq0 = k.on_cpu(&rqs, 0);
    let rq1 = k.on_cpu(&rqs, 1);
    k.set_all(&rq0, &[("curr", init.va), ("idle", init.va), ("cpu", 0)]);
    k.set_all(&rq1, &[("curr", ghost.va), ("idle", idle1.va), ("cpu", 1)]);
    let runnable: Vec<u64> = [4usize, 6, 30]
        .iter()
        .map(|&t| at(&k, &tasks[t], "se.group_node"))
        .collect();
    let h0 = at(&k, &rq0, "cfs_tasks");
    k.link_list(h0, &runnable);
    let h1 = at(&k, &rq1, "cfs_tasks");
    k.link_list(h1, &[]);

    if let Some((from, to)) = s.cycle {
        let target = at(&k, &tasks[to], "tasks");
        k.set(&tasks[from], "tasks.next", target);
    }
    if let Some(w) = s.wild_next {
        k.set(&tasks[w], "tasks.next", 0xdead_0000_0000_0100);
    }

    let cfg = k.cfg.clone();
    let pfn = |va: u64| cfg.pa(va) / 4096;
    let mut gone = BTreeSet::new();
    for &i in &s.drop_first {
        gone.insert(pfn(tasks[i].va));
    }
    for &i in &s.drop_second {
        gone.insert(pfn(tasks[i].va + 4096));
    }
    for &i in &s.drop_pid {
        gone.insert(pfn(pids[i].va));
    }
    let addrs: Vec<u64> = tasks.iter().map(|t| t.va).collect();
    let (mut b, vmlinux) = k.finish();
    for p in gone {
        b.exclude(p);
    }
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("vmcore");
    if s.kdump {
        b.build_kdump(&KdumpOpts {
            codec: SynthCodec::Zlib,
            phys_base: cfg.phys_base(),
            ..KdumpOpts::default()
        })
        .write_sparse(&dump);
    } else {
        std::fs::write(&dump, b.build_elf(&Default::default())).unwrap();
    }
    let vm = dir.path().join("vmlinux");
    std::fs::write(&vm, vmlinux).unwrap();
    (common::kernel::open(&dump, &vm), addrs, dir)
}

/// `for_each_process_thread` of the scenario without the tasks it makes unreadable: each
/// process and its threads; the threads of an unreadable leader last, by (tgid, pid).
fn expected_order(s: &Scenario) -> Vec<i32> {
    let gone: BTreeSet<usize> = s.drop_first.iter().chain(&s.drop_second).copied().collect();
    let mut out = Vec::new();
    let mut orphans = Vec::new();
    for p in 0..NPROC {
        let members = std::iter::once(p).chain(threads_of(p));
        if gone.contains(&p) {
            orphans.extend(members.filter(|t| !gone.contains(t)));
        } else {
            out.extend(members.filter(|t| !gone.contains(t)));
        }
    }
    orphans.sort_by_key(|&t| (pid(leader_of(t)), pid(t)));
    out.extend(orphans);
    out.into_iter().map(pid).collect()
}

/// Runs the walk and checks: exactly the readable tasks, in order; the unreadable ones lost,
/// each named by its pid (the IDR names every one) and its address, for a page not in the dump.
fn check(s: &Scenario) {
    let (k, addrs, _dir) = build(s);
    let w = k.tasks().unwrap();
    let got: Vec<i32> = w.tasks.iter().map(|t| t.pid).collect();
    assert_eq!(got, expected_order(s), "lost: {:?}", w.lost);
    for t in &w.tasks {
        let i = (0..NTASK).find(|&i| pid(i) == t.pid).unwrap();
        assert_eq!(t.addr, VirtAddr(addrs[i]));
        assert_eq!(t.tgid, pid(leader_of(i)));
        let comm = t.object(&k).unwrap().member("comm").unwrap();
        assert_eq!(comm.string_lossy(16).unwrap(), format!("task{i}"));
    }
    let mut gone: Vec<usize> = s.drop_first.iter().chain(&s.drop_second).copied().collect();
    gone.sort_by_key(|&i| pid(i));
    let lost: Vec<(Option<i32>, Option<VirtAddr>)> =
        w.lost.iter().map(|l| (l.pid, l.task)).collect();
    let want: Vec<(Option<i32>, Option<VirtAddr>)> = gone
        .iter()
        .map(|&i| {
            let named = !s.lists_only || s.drop_second.contains(&i);
            (named.then(|| pid(i)), Some(VirtAddr(addrs[i])))
        })
        .collect();
    assert_eq!(lost, want, "{:?}", w.lost);
    for l in &w.lost {
        assert_eq!(l.error.code(), "not-dumped", "{l}");
        if !s.lists_only {
            assert!(l.seen_in.contains(TaskSources::PID_IDR), "{l}");
        }
    }
    // a break at a missing task page is that lost task, not a separate problem
    assert!(w.errors.is_empty(), "{:?}", w.errors);
}

fn scenario(first: &[usize], kdump: bool) -> Scenario {
    Scenario {
        drop_first: first.to_vec(),
        kdump,
        ..Scenario::default()
    }
}

#[test]
fn an_intact_kernel_lists_every_task_once_in_for_each_process_thread_order() {
    let (k, _addrs, _dir) = build(&Scenario::default());
    let w = k.tasks().unwrap();
    assert_eq!(w.tasks.len(), NTASK);
    assert!(w.lost.is_empty(), "{:?}", w.lost);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    // every source reaches what it should: leaders on the task list and in the children tree,
    // everyone in the IDR and on a thread list, the runnable ones on a runqueue
    for t in &w.tasks {
        let i = (0..NTASK).find(|&i| pid(i) == t.pid).unwrap();
        let leader = leader_of(i) == i;
        assert_eq!(t.sources.contains(TaskSources::TASK_LIST), leader, "{t:?}");
        assert_eq!(t.sources.contains(TaskSources::CHILDREN), leader, "{t:?}");
        assert!(t.sources.contains(TaskSources::THREADS), "{t:?}");
        assert!(t.sources.contains(TaskSources::PID_IDR), "{t:?}");
        assert_eq!(
            t.sources.contains(TaskSources::RUNQUEUE),
            [4, 6, 30].contains(&i),
            "{t:?}"
        );
    }
    check(&Scenario::default());
}

#[test]
fn two_missing_task_pages_lose_only_those_two() {
    // far apart (the case: the 19 tasks between the breaks were lost), first and last,
    // adjacent, a leader with threads
    for drops in [[5, 25], [0, 29], [12, 13], [9, 20]] {
        check(&scenario(&drops, false));
        check(&scenario(&drops, true));
    }
}

#[test]
fn five_missing_task_pages_lose_only_those_five() {
    for drops in [
        [0, 7, 8, 9, 29],
        [3, 10, 17, 24, 31],
        [1, 2, 3, 4, 5],
        [25, 26, 27, 28, 29],
        [0, 14, 19, 33, 34],
    ] {
        check(&scenario(&drops, false));
        check(&scenario(&drops, true));
    }
}

#[test]
fn a_task_missing_its_second_page_is_lost_with_its_own_pid() {
    check(&Scenario {
        drop_first: vec![8],
        drop_second: vec![3, 16, 31],
        ..Scenario::default()
    });
}

#[test]
fn a_missing_struct_pid_loses_nothing_the_lists_reach() {
    let s = Scenario {
        drop_pid: vec![4, 5, 30],
        ..Scenario::default()
    };
    check(&s);
    let (k, _a, _d) = build(&s);
    assert!(k.tasks().unwrap().lost.is_empty());
}

#[test]
fn with_only_the_lists_a_runqueue_task_reopens_the_segment_between_two_breaks() {
    // no IDR, no children: the tasks between the breaks at 5 and 20 are reachable only from
    // process 6 (runnable on CPU 0), whose links lead to its neighbours
    check(&Scenario {
        drop_first: vec![5, 20],
        lists_only: true,
        ..Scenario::default()
    });
}

#[test]
fn a_cycle_in_the_task_list_is_recorded_and_every_task_still_found() {
    let s = Scenario {
        cycle: Some((12, 7)),
        ..Scenario::default()
    };
    let (k, _a, _d) = build(&s);
    let w = k.tasks().unwrap();
    assert_eq!(w.tasks.len(), NTASK);
    assert!(w.lost.is_empty(), "{:?}", w.lost);
    assert!(
        w.errors.iter().any(|e| e.to_string().contains("cycle")),
        "{:?}",
        w.errors
    );
}

#[test]
fn a_wild_pointer_in_the_task_list_is_one_unreadable_entry_and_nothing_else_is_lost() {
    let s = Scenario {
        wild_next: Some(12),
        idr_cycle: true,
        ..Scenario::default()
    };
    let (k, _a, _d) = build(&s);
    let w = k.tasks().unwrap();
    let got: Vec<i32> = w.tasks.iter().map(|t| t.pid).collect();
    assert_eq!(got, expected_order(&Scenario::default()));
    // the wild node is reported, without a pid, not as a missing page
    assert_eq!(w.lost.len(), 1, "{:?}", w.lost);
    assert_eq!(w.lost[0].pid, None);
    assert_ne!(w.lost[0].error.code(), "not-dumped");
    assert_eq!(w.lost[0].seen_in, TaskSources::TASK_LIST);
    // the IDR node reached twice is recorded, not walked again
    assert!(
        w.errors
            .iter()
            .any(|e| e.to_string().contains("reached twice")),
        "{:?}",
        w.errors
    );
}

#[test]
fn the_deadline_stops_the_walk() {
    let (k, _a, _d) = build(&Scenario::default());
    k.set_deadline(Some(std::time::Instant::now()));
    assert!(matches!(
        k.tasks(),
        Err(vmcore_report::kernel::KernelError::TimedOut)
    ));
}
