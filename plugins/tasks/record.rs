//! The records the tasks plugin collects once and renders several times (three `ps` formats,
//! `blocked.txt`, `tasks.json`).
//!
//! Values are what `/proc/<pid>/stat` and `/proc/<pid>/status` would have reported, in the
//! kernel's own units (nanoseconds, pages, kB), so a renderer never needs the kernel again.
//! Anything the dump could not tell is `None`, with the reason in [`Task::missing`].

use serde::Serialize;

use crate::plugins::sched_debug::record::{escape_bytes, ser_bytes, ser_opt_bytes};

/// One task (a process's thread, the leader included).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Task {
    /// The `task_struct`'s address, hex.
    pub task: String,
    pub pid: i64,
    pub tgid: i64,
    /// `real_parent->tgid` (0 for the kernel's first tasks).
    pub ppid: i64,
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    /// The state letter (`task_state_array`), and the raw `__state`/`state` and `exit_state`.
    pub state: char,
    pub state_raw: u64,
    pub exit_state: u64,
    /// `PF_*` flags.
    pub flags: u64,
    pub cpu: Option<u32>,
    /// `task->prio`, `static_prio`, `rt_priority`, `policy` (SCHED_*).
    pub prio: Option<i64>,
    pub static_prio: Option<i64>,
    pub rt_priority: Option<i64>,
    pub policy: Option<i64>,
    /// `real_cred` (what /proc reports): uid, euid, gid, egid.
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub gid: Option<u32>,
    pub egid: Option<u32>,
    /// Boot-based start time (`start_boottime`, 5.5+; `real_start_time` before), ns since boot.
    pub start_boottime_ns: Option<u64>,
    /// `utime`, `stime` (ns), `se.sum_exec_runtime` (ns).
    pub utime_ns: Option<u64>,
    pub stime_ns: Option<u64>,
    pub sum_exec_runtime_ns: Option<u64>,
    /// `signal->nr_threads`.
    pub nr_threads: Option<i64>,
    /// Process group, session and the controlling terminal's foreground group (`-1`: none).
    pub pgrp: Option<i64>,
    pub session: Option<i64>,
    pub tpgid: Option<i64>,
    /// The controlling terminal (`signal->tty->name`).
    #[serde(serialize_with = "ser_opt_bytes")]
    pub tty: Option<Vec<u8>>,
    /// A kernel thread (`PF_KTHREAD`, or no `mm`).
    pub kthread: bool,
    /// The address space, user tasks only.
    pub mm: Option<MmInfo>,
    /// The command line (`argv` joined by NUL), when the user pages are in the dump.
    #[serde(serialize_with = "ser_opt_args")]
    pub cmdline: Option<Vec<u8>>,
    /// `sched_info.last_arrival` (rq clock, ns): when the task last started running.
    pub last_arrival_ns: Option<u64>,
    /// `last_switch_time` (jiffies), the hung-task detector's view.
    pub last_switch_time: Option<u64>,
    /// The task was the running task of its CPU (`rq->curr`) when the dump was taken.
    pub on_cpu: bool,
    /// The per-CPU idle task (pid 0), not a `/proc` entry.
    pub idle: bool,
    /// Why a field is absent: `field: reason`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// What ps reads from `mm`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MmInfo {
    pub mm: String,
    /// Pages.
    pub total_vm: u64,
    pub locked_vm: u64,
    /// Resident pages: file + anon + shmem (`get_mm_rss()`).
    pub rss_pages: Option<u64>,
    pub arg_start: u64,
    pub arg_end: u64,
}

/// A task in `D` state, for hung-task triage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Blocked {
    pub pid: i64,
    pub tgid: i64,
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    pub task: String,
    pub cpu: Option<u32>,
    /// `now − sched_info.last_arrival`, where now is the rq clock of the task's CPU.
    pub blocked_ns: Option<u64>,
    /// `(jiffies − last_switch_time) / HZ`, as `check_hung_task()` measures it.
    pub since_last_switch_s: Option<f64>,
}

/// A task that is known to exist but could not be read (a broken list, a page not in the dump).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The `task_struct` address of a task listed but unreadable; `None` for what the kernel
    /// view's enumeration reported lost (its message names the pid and address it knows).
    pub task: Option<String>,
    pub error: String,
}

/// `tasks.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TasksReport {
    /// The wall clock at the crash (s since the epoch), the uptime (s) and their source: the
    /// reference every relative time in the ps files is computed from.
    pub now_epoch: Option<i64>,
    pub uptime_s: Option<f64>,
    /// Total RAM in kB (`%MEM`).
    pub mem_total_kb: Option<u64>,
    pub page_size: u64,
    pub tasks: Vec<Task>,
    pub blocked: Vec<Blocked>,
    pub unreadable: Vec<Unreadable>,
    /// What every ps file leaves out or approximates, and why.
    pub notes: Vec<String>,
}

/// The command line as a list of arguments.
fn ser_opt_args<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => {
            let args: Vec<String> = split_args(b).map(escape_bytes).collect();
            s.serialize_some(&args)
        }
        None => s.serialize_none(),
    }
}

/// The NUL-separated arguments (a trailing NUL ends the last one).
pub fn split_args(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    b.split(|&c| c == 0)
}
