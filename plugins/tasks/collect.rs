//! Reads every task through [`KernelAccess`] into [`Task`] records.
//!
//! Each value is what `fs/proc/array.c` would have put in `/proc/<pid>/stat` or `status` for the
//! task, taken from the same `task_struct` members (include/linux/sched.h), probed by name so one
//! collector serves 4.x to 6.x:
//! - state: `__state` (5.14+) or `state`, with `exit_state`, through the dump's
//!   `task_state_array` ([`task_state_char`]);
//! - CPU: `thread_info.cpu` (THREAD_INFO_IN_TASK) or `cpu`;
//! - start: `start_boottime` (5.5+), else `real_start_time` (boot-based, ns);
//! - uid/gid: `real_cred` (what `/proc` shows; `cred` only when `real_cred` is absent);
//! - process group and session: `signal->pids[PIDTYPE_PGID/SID]` (4.19+), else the group
//!   leader's `pids[].pid` (the pre-4.19 numbering, PGID 1 and SID 2);
//! - RSS: `get_mm_rss()` = file + anon + shmem pages (`MM_FILEPAGES` 0, `MM_ANONPAGES` 1,
//!   `MM_SHMEMPAGES` 3): `mm->rss_stat[i].count` (a `percpu_counter`, 6.2+; its approximate
//!   global count, as `get_mm_counter()` reads it) or `mm->rss_stat.count[i].counter` before.
//!
//! A task whose `task_struct` cannot be read is kept in [`Unreadable`] with its address; a
//! member that cannot be read leaves its field `None` with the reason in `Task::missing`.

use super::record::{Blocked, MmInfo, Task, TasksReport, Unreadable};
use crate::kernel::task_state::{TaskStateTable, task_state_char};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};

/// `PF_KTHREAD` (include/linux/sched.h; 0x00200000 since 2.6.x, unchanged to 6.12).
const PF_KTHREAD: i64 = 0x0020_0000;
/// `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;
/// `struct tty_struct.name` is `char[64]`.
const TTY_NAME_LEN: usize = 64;
/// The `mm_counter` indexes `get_mm_rss()` adds (include/linux/mm_types_task.h: MM_FILEPAGES,
/// MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES; stable since 4.5), when the debuginfo has no
/// enumerators.
const RSS_COUNTERS: [u64; 3] = [0, 1, 3];

/// The kernel facts the collector needs beside the tasks.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Wall clock at the crash, seconds since the epoch.
    pub now_epoch: Option<i64>,
    /// CLOCK_BOOTTIME at the crash, seconds.
    pub uptime_s: Option<f64>,
    pub page_size: u64,
}

/// The tasks to read: every task reachable, and those known but unreadable.
pub struct Listed<O> {
    pub tasks: Vec<O>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads a process's user memory: `(mm->pgd, user address, length)`.
pub type ReadUser<'a> = &'a dyn Fn(u64, u64, usize) -> AResult<Vec<u8>>;

/// The most bytes of a command line read (the kernel's `ARG_MAX` is 32 pages; ps reads all).
const CMDLINE_MAX: u64 = 128 << 10;

pub struct Collected {
    pub report: TasksReport,
    pub errors: Vec<AccessError>,
}

/// Per-CPU runqueue facts: the running task and the runqueue clock.
struct Rq {
    curr: Option<u64>,
    clock: Option<u64>,
}

/// Reads every listed task; `read_user`, when given, reads command lines from user memory.
pub fn collect<K: KernelAccess>(
    k: &K,
    listed: Listed<K::Obj>,
    clock: &Clock,
    read_user: Option<ReadUser<'_>>,
) -> Collected {
    let mut errors = Vec::new();
    let states = TaskStateTable::read(k);
    let rqs = read_runqueues(k, &mut errors);
    let mut report = TasksReport {
        now_epoch: clock.now_epoch,
        uptime_s: clock.uptime_s,
        page_size: clock.page_size,
        unreadable: listed.unreadable,
        ..Default::default()
    };
    report.mem_total_kb = match mem_total_pages(k) {
        Ok(p) => p.map(|p| p.saturating_mul(clock.page_size) / 1024),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let hz = hz(k).ok().flatten();
    let jiffies = k
        .var_int("jiffies_64")
        .ok()
        .flatten()
        .or_else(|| k.var_int("jiffies").ok().flatten());
    for t in &listed.tasks {
        match read_task(k, t, &states, &rqs, read_user) {
            Ok(task) => report.tasks.push(task),
            Err(e) => report.unreadable.push(Unreadable {
                task: Some(format!("{:#x}", k.address(t))),
                error: e.to_string(),
            }),
        }
    }
    // The idle tasks (pid 0, one per CPU) are on no list; crash's ps shows them, /proc does not.
    if let Ok(Some(rq)) = k.var("runqueues") {
        for (cpu, _) in rqs.iter().enumerate() {
            let idle = k
                .per_cpu(&rq, cpu as u32)
                .and_then(|r| k.deref_at(&r, "idle"));
            if let Ok(Some(t)) = idle
                && let Ok(mut task) = read_task(k, &t, &states, &rqs, None)
            {
                task.idle = true;
                report.tasks.push(task);
            }
        }
    }
    report
        .tasks
        .sort_by_key(|t| (t.idle, t.tgid, t.pid != t.tgid, t.pid));
    report.blocked = blocked(&report.tasks, &rqs, jiffies, hz);
    let no_cmdline = report
        .tasks
        .iter()
        .filter(|t| t.mm.is_some() && t.cmdline.is_none())
        .count();
    report.notes = vec![
        match read_user {
            None => "cmdline: a task's command line lives in its user pages, read through its own \
                     page tables (mm->pgd), which this architecture's walker does not support: \
                     COMMAND shows the comm"
                .into(),
            Some(_) => format!(
                "cmdline: read from the user pages through each task's page tables; {no_cmdline} \
                 user task(s) without it (pages not in the dump, see each task's `missing`), \
                 whose COMMAND shows the comm"
            ),
        },
        "USER/UID: numeric, because user names live in /etc/passwd, which a dump does not hold"
            .into(),
        "WCHAN: '-', because the wait channel needs a stack unwind".into(),
        "TTY: the controlling terminal's tty_struct name (pts0 printed as pts/0)".into(),
        "times: %CPU, C, START, STIME, TIME are computed at the crash time (now_epoch, uptime_s), \
         in UTC"
            .into(),
    ];
    Collected { report, errors }
}

fn read_runqueues<K: KernelAccess>(k: &K, errors: &mut Vec<AccessError>) -> Vec<Rq> {
    let cpus = match k.cpumask("__cpu_possible_mask") {
        Ok(Some(c)) => c,
        Ok(None) => Vec::new(),
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let Ok(Some(rq)) = k.var("runqueues") else {
        return Vec::new();
    };
    let n = cpus.iter().max().map_or(0, |&m| m as usize + 1);
    let mut out: Vec<Rq> = (0..n)
        .map(|_| Rq {
            curr: None,
            clock: None,
        })
        .collect();
    for cpu in cpus {
        let r = k.per_cpu(&rq, cpu).and_then(|r| {
            let curr = k.member(&r, "curr")?.map(|c| k.int(&c)).transpose()?;
            let clock = k.int_at(&r, "clock")?;
            Ok((curr, clock))
        });
        match r {
            Ok((curr, clock)) => {
                out[cpu as usize] = Rq {
                    curr: curr.map(|c| c as u64).filter(|&c| c != 0),
                    clock: clock.map(|c| c as u64),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

/// `totalram_pages()`: `_totalram_pages` (atomic_long_t, 5.0+) or `totalram_pages`.
fn mem_total_pages<K: KernelAccess>(k: &K) -> AResult<Option<u64>> {
    if let Some(v) = k.var("_totalram_pages")? {
        return Ok(k.int_at(&v, "counter")?.map(|p| p as u64));
    }
    Ok(k.var_int("totalram_pages")?.map(|p| p as u64))
}

/// HZ from `tick_nsec` (kernel/time/ntp.c: `TICK_NSEC` rounded from NSEC_PER_SEC / HZ).
pub fn hz<K: KernelAccess>(k: &K) -> AResult<Option<u64>> {
    Ok(k.var_int("tick_nsec")?
        .filter(|&t| t > 0)
        .map(|t| ((1_000_000_000 + t / 2) / t) as u64))
}

fn read_task<K: KernelAccess>(
    k: &K,
    t: &K::Obj,
    states: &TaskStateTable,
    rqs: &[Rq],
    read_user: Option<ReadUser<'_>>,
) -> AResult<Task> {
    let addr = k.address(t);
    let req = |path: &str| -> AResult<i64> {
        k.int_at(t, path)?
            .ok_or_else(|| AccessError::new("no-member", format!("task_struct has no {path}")))
    };
    let pid = req("pid")?;
    let tgid = req("tgid")?;
    let comm = match k.member(t, "comm")? {
        Some(c) => k.cstr(&c, COMM_LEN)?,
        None => Vec::new(),
    };
    let state_raw = k.int_any(t, &["__state", "state"])?.unwrap_or(0) as u64;
    let exit_state = k.int_at(t, "exit_state")?.unwrap_or(0) as u64;
    let flags = k.int_at(t, "flags")?.unwrap_or(0);
    let mut task = Task {
        task: format!("{addr:#x}"),
        pid,
        tgid,
        comm,
        state: task_state_char(states, state_raw as u32, exit_state as u32),
        state_raw,
        exit_state,
        flags: flags as u64,
        ..Default::default()
    };
    let mut missing = Vec::new();
    macro_rules! opt {
        ($field:literal, $e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    missing.push(format!("{}: {e}", $field));
                    None
                }
            }
        };
    }
    task.cpu = opt!("cpu", k.int_any(t, &["thread_info.cpu", "cpu"])).map(|c| c as u32);
    task.prio = opt!("prio", k.int_at(t, "prio"));
    task.static_prio = opt!("static_prio", k.int_at(t, "static_prio"));
    task.rt_priority = opt!("rt_priority", k.int_at(t, "rt_priority"));
    task.policy = opt!("policy", k.int_at(t, "policy"));
    task.ppid = opt!(
        "ppid",
        k.deref_at(t, "real_parent")
            .and_then(|p| p.map(|p| k.int_at(&p, "tgid")).transpose())
            .map(Option::flatten)
    )
    .unwrap_or(0);
    if let Some(cred) = opt!("uid", cred(k, t)) {
        let id = |m: &str| k.int_any(&cred, &[&format!("{m}.val"), m]);
        task.uid = opt!("uid", id("uid")).map(|v| v as u32);
        task.euid = opt!("euid", id("euid")).map(|v| v as u32);
        task.gid = opt!("gid", id("gid")).map(|v| v as u32);
        task.egid = opt!("egid", id("egid")).map(|v| v as u32);
    }
    task.start_boottime_ns = opt!(
        "start_boottime",
        k.int_any(t, &["start_boottime", "real_start_time"])
    )
    .map(|v| v as u64);
    task.utime_ns = opt!("utime", k.int_at(t, "utime")).map(|v| v as u64);
    task.stime_ns = opt!("stime", k.int_at(t, "stime")).map(|v| v as u64);
    task.sum_exec_runtime_ns =
        opt!("sum_exec_runtime", k.int_at(t, "se.sum_exec_runtime")).map(|v| v as u64);
    task.last_arrival_ns =
        opt!("last_arrival", k.int_at(t, "sched_info.last_arrival")).map(|v| v as u64);
    task.last_switch_time =
        opt!("last_switch_time", k.int_at(t, "last_switch_time")).map(|v| v as u64);
    let signal = opt!("signal", k.deref_at(t, "signal"));
    if let Some(sig) = &signal {
        task.nr_threads = opt!("nr_threads", k.int_at(sig, "nr_threads"));
        let (pgrp, session) = opt!("pgrp", pgrp_session(k, t, sig).map(Some)).unwrap_or_default();
        task.pgrp = pgrp;
        task.session = session;
        match opt!("tty", k.deref_at(sig, "tty")) {
            Some(tty) => {
                task.tty = opt!(
                    "tty",
                    k.member(&tty, "name")
                        .and_then(|n| n.map(|n| k.cstr(&n, TTY_NAME_LEN)).transpose())
                );
                task.tpgid = opt!(
                    "tpgid",
                    k.deref_at(&tty, "pgrp")
                        .and_then(|p| p.map(|p| pid_nr(k, &p)).transpose())
                        .map(Option::flatten)
                );
            }
            None => task.tpgid = Some(-1),
        }
    }
    let mm = opt!("mm", k.deref_at(t, "mm"));
    task.kthread = flags & PF_KTHREAD != 0 || mm.is_none();
    if let Some(mm) = mm.filter(|_| flags & PF_KTHREAD == 0) {
        task.mm = opt!("mm", read_mm(k, &mm).map(Some));
        if let (Some(ru), Some(info)) = (read_user, &task.mm) {
            task.cmdline = opt!("cmdline", read_cmdline(k, &mm, info, ru));
        }
    }
    if let Some(cpu) = task.cpu
        && let Some(rq) = rqs.get(cpu as usize)
    {
        task.on_cpu = rq.curr == Some(addr);
    }
    task.missing = missing;
    Ok(task)
}

/// `__task_cred()`: `real_cred`, or `cred` on kernels without the split.
fn cred<K: KernelAccess>(k: &K, t: &K::Obj) -> AResult<Option<K::Obj>> {
    match k.deref_at(t, "real_cred")? {
        Some(c) => Ok(Some(c)),
        None => k.deref_at(t, "cred"),
    }
}

/// `pid_nr()`: the pid number in the initial namespace, `numbers[0].nr`.
fn pid_nr<K: KernelAccess>(k: &K, pid: &K::Obj) -> AResult<Option<i64>> {
    let Some(nums) = k.member(pid, "numbers")? else {
        return Ok(None);
    };
    let first = k.index(&nums, 0)?;
    k.int_at(&first, "nr")
}

/// The process group and session ids.
fn pgrp_session<K: KernelAccess>(
    k: &K,
    t: &K::Obj,
    sig: &K::Obj,
) -> AResult<(Option<i64>, Option<i64>)> {
    let pgid_ix = k.enumerator("PIDTYPE_PGID")?;
    let sid_ix = k.enumerator("PIDTYPE_SID")?;
    // 4.19+: signal->pids[PIDTYPE_PGID = 2], [PIDTYPE_SID = 3] (struct pid *).
    if let Some(pids) = k.member(sig, "pids")? {
        let at = |i: u64| -> AResult<Option<i64>> {
            match k.deref(&k.index(&pids, i)?)? {
                Some(p) => pid_nr(k, &p),
                None => Ok(None),
            }
        };
        return Ok((
            at(pgid_ix.unwrap_or(2) as u64)?,
            at(sid_ix.unwrap_or(3) as u64)?,
        ));
    }
    // Before: the group leader's pids[PIDTYPE_PGID = 1].pid, [PIDTYPE_SID = 2].pid.
    let leader = k.deref_at(t, "group_leader")?.unwrap_or_else(|| t.clone());
    let Some(pids) = k.member(&leader, "pids")? else {
        return Ok((None, None));
    };
    let at = |i: u64| -> AResult<Option<i64>> {
        match k.deref_at(&k.index(&pids, i)?, "pid")? {
            Some(p) => pid_nr(k, &p),
            None => Ok(None),
        }
    };
    Ok((
        at(pgid_ix.unwrap_or(1) as u64)?,
        at(sid_ix.unwrap_or(2) as u64)?,
    ))
}

/// `get_mm_cmdline()` (fs/proc/base.c): the bytes `arg_start..arg_end`; when the last of them is
/// not NUL the process rewrote its arguments (setproctitle), and the string runs on into the
/// environment up to the first NUL.
fn read_cmdline<K: KernelAccess>(
    k: &K,
    mm: &K::Obj,
    info: &MmInfo,
    read_user: ReadUser<'_>,
) -> AResult<Option<Vec<u8>>> {
    let Some(pgd) = k.int_at(mm, "pgd")? else {
        return Ok(None);
    };
    if info.arg_end <= info.arg_start {
        return Ok(Some(Vec::new()));
    }
    let len = (info.arg_end - info.arg_start).min(CMDLINE_MAX);
    let mut b = read_user(pgd as u64, info.arg_start, len as usize)?;
    if b.last() != Some(&0) {
        let env_start = k.int_at(mm, "env_start")?.unwrap_or(0) as u64;
        let env_end = k.int_at(mm, "env_end")?.unwrap_or(0) as u64;
        if env_end > env_start {
            let n = (env_end - env_start).min(CMDLINE_MAX);
            b.extend(read_user(pgd as u64, env_start, n as usize)?);
        }
        if let Some(z) = b.iter().position(|&c| c == 0) {
            b.truncate(z);
        }
    }
    Ok(Some(b))
}

fn read_mm<K: KernelAccess>(k: &K, mm: &K::Obj) -> AResult<MmInfo> {
    let u = |p: &str| -> AResult<u64> { Ok(k.int_at(mm, p)?.unwrap_or(0) as u64) };
    Ok(MmInfo {
        mm: format!("{:#x}", k.address(mm)),
        total_vm: u("total_vm")?,
        locked_vm: u("locked_vm")?,
        rss_pages: rss_pages(k, mm)?,
        arg_start: u("arg_start")?,
        arg_end: u("arg_end")?,
    })
}

/// `get_mm_rss()`.
fn rss_pages<K: KernelAccess>(k: &K, mm: &K::Obj) -> AResult<Option<u64>> {
    let Some(stats) = k.member(mm, "rss_stat")? else {
        return Ok(None);
    };
    let mut counters = RSS_COUNTERS;
    for (c, name) in counters
        .iter_mut()
        .zip(["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"])
    {
        if let Some(v) = k.enumerator(name)?.filter(|v| (0..16).contains(v)) {
            *c = v as u64;
        }
    }
    let mut total: i64 = 0;
    // An array's length is known; a struct has none (the kernel view calls it a wrong type).
    if matches!(k.array_len(&stats), Ok(Some(_))) {
        // 6.2+: struct percpu_counter rss_stat[NR_MM_COUNTERS]; percpu_counter_read_positive()
        // reads the shared count, a negative one as 0.
        for i in counters {
            let c = k.index(&stats, i)?;
            total += k.int_at(&c, "count")?.unwrap_or(0).max(0);
        }
        return Ok(Some(total as u64));
    }
    // Before: struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }.
    let Some(counts) = k.member(&stats, "count")? else {
        return Ok(None);
    };
    for i in counters {
        let c = k.index(&counts, i)?;
        total += k.int_at(&c, "counter")?.unwrap_or(0).max(0);
    }
    Ok(Some(total as u64))
}

/// The D-state tasks, longest blocked first.
fn blocked(tasks: &[Task], rqs: &[Rq], jiffies: Option<i64>, hz: Option<u64>) -> Vec<Blocked> {
    let mut out: Vec<Blocked> = tasks
        .iter()
        .filter(|t| t.state == 'D' && !t.idle)
        .map(|t| {
            let now = t
                .cpu
                .and_then(|c| rqs.get(c as usize))
                .and_then(|r| r.clock);
            let blocked_ns = match (now, t.last_arrival_ns) {
                (Some(n), Some(a)) if a > 0 && n >= a => Some(n - a),
                _ => None,
            };
            let since_last_switch_s = match (jiffies, t.last_switch_time, hz) {
                (Some(j), Some(s), Some(hz)) if s > 0 && hz > 0 => {
                    Some((j as u64).wrapping_sub(s) as f64 / hz as f64)
                }
                _ => None,
            };
            Blocked {
                pid: t.pid,
                tgid: t.tgid,
                comm: t.comm.clone(),
                task: t.task.clone(),
                cpu: t.cpu,
                blocked_ns,
                since_last_switch_s,
            }
        })
        .collect();
    out.sort_by(|a, b| b.blocked_ns.cmp(&a.blocked_ns).then(a.pid.cmp(&b.pid)));
    out
}

/// Every task the kernel view's enumeration reaches (the task list, thread lists, children, the
/// pid IDR, the runqueues: [`KernelAccess::tasks`]), and each task or structure it reports lost.
pub fn list_tasks<K: KernelAccess>(k: &K) -> Listed<K::Obj> {
    match k.tasks() {
        Ok((tasks, problems)) => Listed {
            tasks,
            unreadable: problems
                .into_iter()
                .map(|e| Unreadable {
                    task: None,
                    error: format!("{}: {}", e.code, e.what),
                })
                .collect(),
        },
        Err(e) => Listed {
            tasks: Vec::new(),
            unreadable: vec![Unreadable {
                task: None,
                error: format!("the task enumeration failed: {}: {}", e.code, e.what),
            }],
        },
    }
}
