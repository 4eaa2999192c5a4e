//! Every task of the dumped kernel, found by several independent structures, so that a page
//! missing from a filtered dump loses only the task that lived on it.
//!
//! `for_each_process_thread` walks one list (`init_task.tasks`, then each process's threads). In a
//! dump filtered by makedumpfile a task's page may be missing (makedumpfile 1.7.2 misjudges some
//! in-use slab pages of kernels newer than it knows as free), and a list with two such breaks
//! hides every task between them from a walk that starts at the head. The kernel links each task
//! into several structures, and [`Kernel::tasks`] walks all of them and merges what they reach:
//!
//! | source | structure | reaches |
//! |---|---|---|
//! | [`TaskSources::TASK_LIST`] | `init_task.tasks`, a circular `list_head` | every thread-group leader (kernel/fork.c `copy_process()` links only leaders) |
//! | [`TaskSources::CHILDREN`] | `task->children` / `task->sibling` from `init_task` | every leader, by parentage |
//! | [`TaskSources::THREADS`] | `signal->thread_head` / `task->thread_node` (3.14+); `thread_group` before 6.7 | every thread of a process |
//! | [`TaskSources::PID_IDR`] | `init_pid_ns.idr`, an XArray of `struct pid *` indexed by pid number (4.20+) | every task with a pid: `pid->tasks[PIDTYPE_PID]` is an hlist whose node is the task's `pid_links[PIDTYPE_PID]` (4.19+; `pids[].node` before) |
//! | [`TaskSources::RUNQUEUE`] | each CPU's `runqueues.curr` and `rq->cfs_tasks` (`se.group_node`) | the running and the runnable CFS tasks |
//!
//! The lists are walked with [`Kernel::list_ring`], which re-enters a list between two breaks
//! from any node another structure found: a leader found through its pid has `tasks` links that
//! lead to its neighbours on the task list. Only a leader's `tasks` links are followed: a thread's
//! are a stale copy of its creator's (`dup_task_struct()` copies the whole struct).
//!
//! A task is listed when its whole `task_struct` is in the dump ([`Kernel::check_dumped`]) and
//! plausible (a pid in `1..=PID_MAX_LIMIT`, a thread-group id too, a non-NULL group leader); its
//! fields are then as readable as the kernel left them. A task a structure points at that fails
//! this is *lost*: reported with the pid when its pid's IDR entry, or its own page holding `pid`,
//! names it, the structures that pointed at it, and the error. An IDR pid whose `struct pid`
//! cannot be read and that no listed task has is lost too (its task is not known).
//!
//! The idle tasks (pid 0: `init_task`, `swapper/0`, and each CPU's idle thread) are not listed,
//! as neither `for_each_process_thread` nor `ps` lists them; they are on no list and in no IDR
//! (`copy_process()` links a task only `if (likely(p->pid))`). A task only a runqueue names and
//! whose `exit_state` has `EXIT_DEAD` (0x10, include/linux/sched.h) is skipped: it is running its
//! last schedule after `release_task()` unhashed it.
//!
//! Order: processes in task-list order (see [`crate::kernel::ListRing::nodes`] for how breaks
//! are crossed), each followed by its threads in thread-list order, as `for_each_process_thread`
//! visits them; tasks no list placed follow, by thread-group id and pid. Every walk is bounded
//! by [`crate::kernel::DEFAULT_WALK_CAP`] and visits each node once; each task is read once.
//! Only the deadline ([`KernelError::TimedOut`]) or a kernel without `init_task` or
//! `struct task_struct` fails the call.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::addr::VirtAddr;
use crate::kernel::walk::fatal_or;
use crate::kernel::{DEFAULT_WALK_CAP, Kernel, KernelError, Object};

/// `PID_MAX_LIMIT` on 64-bit kernels (include/linux/threads.h: 4M).
const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;
/// `EXIT_DEAD` (include/linux/sched.h).
const EXIT_DEAD: u64 = 0x10;
/// Walk errors kept; the rest are only counted.
const MAX_ERRORS: usize = 64;
/// Rounds of "walk the task list from every known leader, then the thread lists": a thread list
/// can name a leader no list reached, whose task-list neighbours are then worth a second walk.
const MAX_ROUNDS: usize = 4;

/// The structures a task was found through (a bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskSources(pub u8);

impl TaskSources {
    pub const TASK_LIST: TaskSources = TaskSources(1);
    pub const CHILDREN: TaskSources = TaskSources(2);
    pub const THREADS: TaskSources = TaskSources(4);
    pub const PID_IDR: TaskSources = TaskSources(8);
    pub const RUNQUEUE: TaskSources = TaskSources(16);
    const NAMES: [(TaskSources, &'static str); 5] = [
        (TaskSources::TASK_LIST, "the task list"),
        (TaskSources::CHILDREN, "its parent's children"),
        (TaskSources::THREADS, "its thread list"),
        (TaskSources::PID_IDR, "the pid IDR"),
        (TaskSources::RUNQUEUE, "a runqueue"),
    ];

    pub fn contains(self, other: TaskSources) -> bool {
        self.0 & other.0 == other.0
    }
    fn add(&mut self, other: TaskSources) {
        self.0 |= other.0;
    }
}

impl std::fmt::Display for TaskSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = TaskSources::NAMES
            .iter()
            .filter(|(s, _)| self.contains(*s))
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            return f.write_str("nothing");
        }
        f.write_str(&names.join(", "))
    }
}

/// A listed task: its `task_struct` address, pid and thread-group id (in the initial pid
/// namespace, as `task->pid` and `task->tgid` hold them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskRef {
    pub addr: VirtAddr,
    pub pid: i32,
    pub tgid: i32,
    /// Which structures reached it.
    pub sources: TaskSources,
}

impl TaskRef {
    /// The task as a `struct task_struct` object.
    pub fn object<'k>(&self, k: &'k Kernel) -> Result<Object<'k>, KernelError> {
        k.object_of(self.addr, "struct task_struct")
    }
}

/// A task known to exist that cannot be listed.
#[derive(Debug)]
pub struct LostTask {
    /// Its pid, when the pid IDR or the task's own page names it.
    pub pid: Option<i32>,
    /// Its `task_struct` address, when a structure pointed at it (`None`: only its pid is
    /// known, its `struct pid` being unreadable).
    pub task: Option<VirtAddr>,
    pub seen_in: TaskSources,
    /// Why it cannot be listed (code `not-dumped` for a page the dump lacks).
    pub error: KernelError,
}

impl std::fmt::Display for LostTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, self.task) {
            (Some(p), Some(a)) => write!(f, "task pid {p} (task_struct at {a})")?,
            (None, Some(a)) => write!(f, "task at {a} (pid unknown)")?,
            (Some(p), None) => write!(f, "task pid {p} (its struct pid unreadable, task unknown)")?,
            (None, None) => f.write_str("task")?,
        }
        write!(f, ", seen in {}: {}", self.seen_in, self.error)
    }
}

/// A problem of the walk, with the structure it was met in.
#[derive(Debug)]
pub struct TaskWalkError {
    /// The structure: "the task list", "the thread list of tgid 412", "the pid IDR", …
    pub what: String,
    pub error: KernelError,
}

impl std::fmt::Display for TaskWalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

/// What [`Kernel::tasks`] found.
#[derive(Debug, Default)]
pub struct TaskWalk {
    /// Every listed task, processes and threads, idle tasks excluded (module documentation).
    pub tasks: Vec<TaskRef>,
    /// Tasks known to exist whose `task_struct` is not (wholly) in the dump or is implausible,
    /// by pid then address.
    pub lost: Vec<LostTask>,
    /// Problems met on the way (broken lists, unreadable IDR nodes, …), at most 64.
    pub errors: Vec<TaskWalkError>,
    /// Errors beyond the ones kept.
    pub errors_dropped: usize,
}

/// Offsets probed once per walk. Optional members are the ones some kernel versions lack.
struct Layout {
    size: u64,
    tasks: u64,
    pid: u64,
    /// Every kernel has `tgid` and `group_leader`; a debuginfo without them (a minimal
    /// description) makes each task its own process.
    tgid: Option<u64>,
    group_leader: Option<u64>,
    exit_state: Option<u64>,
    signal: Option<u64>,
    children: Option<u64>,
    sibling: Option<u64>,
    /// `task->thread_node` and `signal->thread_head` (3.14+).
    thread_node: Option<(u64, u64)>,
    /// `task->thread_group` (removed in 6.7), used without `thread_node`.
    thread_group: Option<u64>,
    /// Offset of the task's PIDTYPE_PID hlist node: `pid_links[0]` (4.19+), `pids[0].node`.
    pid_link: Option<u64>,
}

fn opt(r: Result<u64, KernelError>) -> Result<Option<u64>, KernelError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Layout {
    fn probe(k: &Kernel) -> Result<Layout, KernelError> {
        const T: &str = "struct task_struct";
        let thread_node = match (
            opt(k.offset_of(T, "thread_node"))?,
            opt(k.offset_of("struct signal_struct", "thread_head"))?,
        ) {
            (Some(n), Some(h)) => Some((n, h)),
            _ => None,
        };
        let pid_link = match opt(k.offset_of(T, "pid_links[0]"))? {
            Some(o) => Some(o),
            None => opt(k.offset_of(T, "pids[0].node"))?,
        };
        Ok(Layout {
            size: k.size_of(T)?,
            tasks: k.offset_of(T, "tasks")?,
            pid: k.offset_of(T, "pid")?,
            tgid: opt(k.offset_of(T, "tgid"))?,
            group_leader: opt(k.offset_of(T, "group_leader"))?,
            exit_state: opt(k.offset_of(T, "exit_state"))?,
            signal: opt(k.offset_of(T, "signal"))?,
            children: opt(k.offset_of(T, "children"))?,
            sibling: opt(k.offset_of(T, "sibling"))?,
            thread_node,
            thread_group: opt(k.offset_of(T, "thread_group"))?,
            pid_link,
        })
    }
}

/// A readable, plausible task.
#[derive(Clone, Copy)]
struct Info {
    pid: i32,
    tgid: i32,
    leader: VirtAddr,
    signal: VirtAddr,
    exit_dead: bool,
}

enum Exam {
    Task(Info),
    /// pid 0: an idle task.
    Idle,
    Bad(KernelError),
}

struct Walker<'k> {
    k: &'k Kernel,
    lay: Layout,
    exams: HashMap<VirtAddr, Exam>,
    sources: HashMap<VirtAddr, TaskSources>,
    /// Pid numbers the IDR gives task addresses.
    idr_pid: HashMap<VirtAddr, i32>,
    /// IDR pids whose `struct pid` could not be read.
    idr_unreadable: Vec<(i32, KernelError)>,
    errors: Vec<TaskWalkError>,
    errors_dropped: usize,
}

impl<'k> Walker<'k> {
    fn note(&mut self, what: impl FnOnce() -> String, error: KernelError) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(TaskWalkError {
                what: what(),
                error,
            });
        } else {
            self.errors_dropped += 1;
        }
    }

    /// Records an error unless it is the deadline, which ends the walk.
    fn keep(&mut self, what: impl FnOnce() -> String, e: KernelError) -> Result<(), KernelError> {
        fatal_or(e, |e| self.note(what, e))
    }

    fn examine(&self, addr: VirtAddr) -> Result<Exam, KernelError> {
        let k = self.k;
        let l = &self.lay;
        let bad = |what: String| {
            Ok(Exam::Bad(KernelError::Corrupt(format!(
                "task_struct at {addr}: {what}"
            ))))
        };
        if addr.0 == 0 {
            return bad("NULL".into());
        }
        match k.check_dumped(addr, l.size) {
            Ok(()) => {}
            Err(KernelError::TimedOut) => return Err(KernelError::TimedOut),
            Err(e) => return Ok(Exam::Bad(e)),
        }
        let read = || -> Result<Info, KernelError> {
            let pid = k.read_u32(addr.add(l.pid))? as i32;
            let tgid = match l.tgid {
                Some(o) => k.read_u32(addr.add(o))? as i32,
                None => pid,
            };
            let leader = match l.group_leader {
                Some(o) => k.read_ptr(addr.add(o))?,
                None => addr,
            };
            let signal = match l.signal {
                Some(o) => k.read_ptr(addr.add(o))?,
                None => VirtAddr(0),
            };
            let exit_state = match l.exit_state {
                Some(o) => k.read_u32(addr.add(o))?,
                None => 0,
            };
            Ok(Info {
                pid,
                tgid,
                leader,
                signal,
                exit_dead: u64::from(exit_state) & EXIT_DEAD != 0,
            })
        };
        let i = match read() {
            Ok(i) => i,
            Err(e) => {
                fatal_or(e, |_| {})?;
                return bad("unreadable".into());
            }
        };
        if i.pid == 0 {
            return Ok(Exam::Idle);
        }
        let plausible = |v: i32| (1..=PID_MAX_LIMIT).contains(&i64::from(v));
        if !plausible(i.pid) || !plausible(i.tgid) {
            return bad(format!("pid {} tgid {} out of range", i.pid, i.tgid));
        }
        if i.leader.0 == 0 {
            return bad(format!("pid {} has a NULL group_leader", i.pid));
        }
        Ok(Exam::Task(i))
    }

    /// Notes that `source` points at a task at `addr`; true when it is a listed task.
    fn offer(&mut self, addr: VirtAddr, source: TaskSources) -> Result<Option<Info>, KernelError> {
        self.sources.entry(addr).or_default().add(source);
        if !self.exams.contains_key(&addr) {
            let e = self.examine(addr)?;
            self.exams.insert(addr, e);
        }
        Ok(match &self.exams[&addr] {
            Exam::Task(i) => Some(*i),
            _ => None,
        })
    }

    /// The task at `addr` if it is listed: readable, plausible, and not a released task that
    /// only a runqueue still names (module documentation).
    fn live(&self, addr: VirtAddr) -> Option<Info> {
        match self.exams.get(&addr) {
            Some(Exam::Task(i))
                if !(i.exit_dead && self.sources.get(&addr) == Some(&TaskSources::RUNQUEUE)) =>
            {
                Some(*i)
            }
            _ => None,
        }
    }

    /// The listed tasks, by address (a deterministic order).
    fn live_tasks(&self) -> Vec<(VirtAddr, Info)> {
        let mut v: Vec<(VirtAddr, Info)> = self
            .exams
            .keys()
            .filter_map(|a| Some((*a, self.live(*a)?)))
            .collect();
        v.sort_unstable_by_key(|(a, _)| *a);
        v
    }

    /// A list of tasks: the readable nodes are offered, the broken ones too (they become lost
    /// tasks: the list says a task is there). Returns the tasks in list order.
    fn ring(
        &mut self,
        what: impl Fn() -> String,
        head: VirtAddr,
        seeds: &[VirtAddr],
        member_off: u64,
        source: TaskSources,
    ) -> Result<Vec<VirtAddr>, KernelError> {
        let ring = self.k.list_ring(head, seeds, DEFAULT_WALK_CAP)?;
        for e in ring.errors {
            self.note(&what, e);
        }
        let mut out = Vec::with_capacity(ring.nodes.len());
        for n in ring.nodes {
            let t = VirtAddr(n.0.wrapping_sub(member_off));
            if self.offer(t, source)?.is_some() {
                out.push(t);
            }
        }
        for (n, e) in ring.broken {
            let t = VirtAddr(n.0.wrapping_sub(member_off));
            self.sources.entry(t).or_default().add(source);
            self.exams.entry(t).or_insert(Exam::Bad(e));
        }
        Ok(out)
    }

    /// `children`/`sibling` from `init_task`, breadth first; each parent once.
    fn children_tree(&mut self, init: VirtAddr) -> Result<(), KernelError> {
        let (Some(ch), Some(sib)) = (self.lay.children, self.lay.sibling) else {
            return Ok(());
        };
        let mut queue = std::collections::VecDeque::from([init]);
        let mut parents = HashSet::from([init]);
        while let Some(p) = queue.pop_front() {
            let what = || format!("the children of the task at {p}");
            for c in self.ring(what, p.add(ch), &[], sib, TaskSources::CHILDREN)? {
                if parents.len() < DEFAULT_WALK_CAP && parents.insert(c) {
                    queue.push_back(c);
                }
            }
        }
        Ok(())
    }

    /// The initial pid namespace's IDR: each `struct pid`'s PIDTYPE_PID task.
    fn pid_idr(&mut self) -> Result<(), KernelError> {
        let k = self.k;
        let Some(link) = self.lay.pid_link else {
            return Ok(());
        };
        let found = (|| -> Result<(VirtAddr, u64, u64, Option<u64>), KernelError> {
            let ns = k.symbol_address("init_pid_ns")?;
            let head = k.offset_of("struct pid_namespace", "idr.idr_rt.xa_head")?;
            let base = opt(k.offset_of("struct pid_namespace", "idr.idr_base"))?;
            let tasks = k.offset_of("struct pid", "tasks[0]")?;
            let first = k.offset_of("struct hlist_head", "first").unwrap_or(0);
            Ok((ns, head, tasks + first, base))
        })();
        let what = || "the pid IDR (init_pid_ns.idr)".to_string();
        let (ns, head, first, base) = match found {
            Ok(v) => v,
            // a kernel before the XArray-backed pid IDR (4.20): the other sources remain
            Err(e) if e.is_missing() => return Ok(()),
            Err(e) => return self.keep(what, e),
        };
        let base = match base.map(|b| k.read_u32(ns.add(b))) {
            None => 0,
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                self.keep(what, e)?;
                0
            }
        };
        let xa = k.xarray_entries(ns.add(head), DEFAULT_WALK_CAP)?;
        for e in xa.errors {
            self.note(what, e);
        }
        for (index, pid) in xa.entries {
            let nr = (index + u64::from(base)) as i32;
            match k.read_ptr_dumped(pid.add(first)) {
                Ok(VirtAddr(0)) => {} // a pid no task holds as its own (a group or session id)
                Ok(node) => {
                    let t = VirtAddr(node.0.wrapping_sub(link));
                    self.idr_pid.insert(t, nr);
                    self.offer(t, TaskSources::PID_IDR)?;
                }
                Err(e) => {
                    fatal_or(e, |e| self.idr_unreadable.push((nr, e)))?;
                }
            }
        }
        Ok(())
    }

    /// Each CPU's current task and the runnable CFS tasks on `rq->cfs_tasks`.
    fn runqueues(&mut self) -> Result<(), KernelError> {
        let k = self.k;
        let what = || "the runqueues".to_string();
        let cpus = match k.possible_cpus() {
            Ok(c) => c,
            Err(e) if e.is_missing() => return Ok(()),
            Err(e) => return self.keep(what, e),
        };
        let rq_var = match k.variable("runqueues") {
            Ok(v) => v,
            Err(e) if e.is_missing() => return Ok(()),
            Err(e) => return self.keep(what, e),
        };
        let curr = opt(k.offset_of("struct rq", "curr"))?;
        let cfs_tasks = opt(k.offset_of("struct rq", "cfs_tasks"))?;
        let group_node = opt(k.offset_of("struct task_struct", "se.group_node"))?;
        for cpu in cpus {
            let rq = match k.per_cpu_ptr(rq_var.address(), cpu) {
                Ok(a) => a,
                Err(e) => {
                    self.keep(|| format!("the runqueue of CPU {cpu}"), e)?;
                    continue;
                }
            };
            if let Some(c) = curr {
                match k.read_ptr_dumped(rq.add(c)) {
                    Ok(t) if t.0 != 0 => {
                        self.offer(t, TaskSources::RUNQUEUE)?;
                    }
                    Ok(_) => {}
                    Err(e) => self.keep(|| format!("rq->curr of CPU {cpu}"), e)?,
                }
            }
            if let (Some(h), Some(g)) = (cfs_tasks, group_node) {
                let what = || format!("rq->cfs_tasks of CPU {cpu}");
                self.ring(what, rq.add(h), &[], g, TaskSources::RUNQUEUE)?;
            }
        }
        Ok(())
    }

    /// The head of the thread list a task is on: `signal->thread_head`, or before 3.14 the
    /// leader's own `thread_group` node (that list has no separate head).
    fn thread_head(&self, t: &Info) -> Option<VirtAddr> {
        if let Some((_, head)) = self.lay.thread_node {
            return (t.signal.0 != 0).then(|| t.signal.add(head));
        }
        Some(t.leader.add(self.lay.thread_group?))
    }
}

impl Kernel {
    /// Every task, processes and threads, found through every structure that reaches tasks and
    /// merged, with the tasks known to exist that cannot be read: see the [module
    /// documentation](self) for the sources, the order and what counts as lost.
    pub fn tasks(&self) -> Result<TaskWalk, KernelError> {
        let lay = Layout::probe(self)?;
        let init = self.symbol_address("init_task")?;
        let mut w = Walker {
            k: self,
            lay,
            exams: HashMap::new(),
            sources: HashMap::new(),
            idr_pid: HashMap::new(),
            idr_unreadable: Vec::new(),
            errors: Vec::new(),
            errors_dropped: 0,
        };
        w.children_tree(init)?;
        w.pid_idr()?;
        w.runqueues()?;

        let tasks_off = w.lay.tasks;
        let list_head = init.add(tasks_off);
        let mut process_order: Vec<VirtAddr> = Vec::new();
        let mut on_list: HashSet<VirtAddr> = HashSet::new();
        // thread-list head → its tasks in list order
        let mut thread_lists: HashMap<VirtAddr, Vec<VirtAddr>> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let leaders = w.leaders();
            if !process_order.is_empty() && leaders.iter().all(|l| on_list.contains(l)) {
                break;
            }
            let seeds: Vec<VirtAddr> = leaders.iter().map(|l| l.add(tasks_off)).collect();
            let what = || "the task list (init_task.tasks)".to_string();
            process_order = w.ring(what, list_head, &seeds, tasks_off, TaskSources::TASK_LIST)?;
            on_list = process_order.iter().copied().collect();
            w.thread_lists(&mut thread_lists)?;
        }
        Ok(w.assemble(&process_order, &thread_lists))
    }
}

impl Walker<'_> {
    /// The listed leaders found so far, by address (a deterministic seed order).
    fn leaders(&self) -> Vec<VirtAddr> {
        self.live_tasks()
            .into_iter()
            .filter(|(a, i)| i.leader == *a)
            .map(|(a, _)| a)
            .collect()
    }

    /// Walks each thread list that a listed task is on, once, seeded with the group's members.
    fn thread_lists(
        &mut self,
        done: &mut HashMap<VirtAddr, Vec<VirtAddr>>,
    ) -> Result<(), KernelError> {
        let node_off = match (self.lay.thread_node, self.lay.thread_group) {
            (Some((n, _)), _) => n,
            (None, Some(g)) => g,
            (None, None) => return Ok(()),
        };
        let mut groups: BTreeMap<VirtAddr, Vec<VirtAddr>> = BTreeMap::new();
        for (a, i) in self.live_tasks() {
            if let Some(h) = self.thread_head(&i) {
                groups.entry(h).or_default().push(a.add(node_off));
            }
        }
        for (head, seeds) in groups {
            if done.contains_key(&head) {
                continue;
            }
            let tgid = seeds
                .first()
                .and_then(|n| self.live(VirtAddr(n.0.wrapping_sub(node_off))))
                .map_or(0, |i| i.tgid);
            let what = || format!("the thread list of tgid {tgid} (head at {head})");
            let mut order = self.ring(what, head, &seeds, node_off, TaskSources::THREADS)?;
            if self.lay.thread_node.is_none() {
                // thread_group: the head is the leader's own node
                let leader = VirtAddr(head.0.wrapping_sub(node_off));
                self.offer(leader, TaskSources::THREADS)?;
                order.insert(0, leader);
            }
            done.insert(head, order);
        }
        Ok(())
    }

    fn assemble(
        self,
        process_order: &[VirtAddr],
        thread_lists: &HashMap<VirtAddr, Vec<VirtAddr>>,
    ) -> TaskWalk {
        let mut out: Vec<TaskRef> = Vec::with_capacity(self.exams.len());
        let mut emitted: HashSet<VirtAddr> = HashSet::with_capacity(self.exams.len());
        let listable = |a: &VirtAddr| -> Option<TaskRef> {
            let i = self.live(*a)?;
            Some(TaskRef {
                addr: *a,
                pid: i.pid,
                tgid: i.tgid,
                sources: self.sources.get(a).copied().unwrap_or_default(),
            })
        };
        let push = |a: &VirtAddr, out: &mut Vec<TaskRef>, emitted: &mut HashSet<VirtAddr>| {
            if !emitted.contains(a)
                && let Some(t) = listable(a)
            {
                emitted.insert(*a);
                out.push(t);
            }
        };
        for p in process_order {
            let threads = self
                .live(*p)
                .and_then(|i| self.thread_head(&i))
                .and_then(|h| thread_lists.get(&h));
            if !threads.is_some_and(|t| t.contains(p)) {
                push(p, &mut out, &mut emitted);
            }
            for t in threads.into_iter().flatten() {
                push(t, &mut out, &mut emitted);
            }
        }
        let mut rest: Vec<(i32, i32, VirtAddr)> = self
            .live_tasks()
            .into_iter()
            .filter(|(a, _)| !emitted.contains(a))
            .map(|(a, i)| (i.tgid, i.pid, a))
            .collect();
        rest.sort_unstable();
        for (_, _, a) in rest {
            push(&a, &mut out, &mut emitted);
        }

        let listed_pids: HashSet<i32> = out.iter().map(|t| t.pid).collect();
        let mut lost: Vec<LostTask> = Vec::new();
        let mut exams: Vec<(VirtAddr, Exam)> = self.exams.into_iter().collect();
        exams.sort_unstable_by_key(|(a, _)| *a);
        for (a, e) in exams {
            let Exam::Bad(error) = e else { continue };
            let pid = self.idr_pid.get(&a).copied().or_else(|| {
                // the task's own page may hold `pid` even when another page of it is missing
                let at = a.add(self.lay.pid);
                self.k.check_dumped(at, 4).ok()?;
                let p = self.k.read_u32(at).ok()? as i32;
                (1..=PID_MAX_LIMIT).contains(&i64::from(p)).then_some(p)
            });
            lost.push(LostTask {
                pid,
                task: Some(a),
                seen_in: self.sources.get(&a).copied().unwrap_or_default(),
                error,
            });
        }
        for (nr, error) in self.idr_unreadable {
            if !listed_pids.contains(&nr) && !lost.iter().any(|l| l.pid == Some(nr)) {
                lost.push(LostTask {
                    pid: Some(nr),
                    task: None,
                    seen_in: TaskSources::PID_IDR,
                    error,
                });
            }
        }
        lost.sort_by_key(|l| (l.pid.unwrap_or(i32::MAX), l.task));
        TaskWalk {
            tasks: out,
            lost,
            errors: self.errors,
            errors_dropped: self.errors_dropped,
        }
    }
}
