//! Chooses the tasks to trace and reads their traces through [`KernelAccess`].
//!
//! The order is how a crash is read: the task current on the CPU that panicked first, then each
//! other CPU's current task by CPU number (idle tasks included, as `crash`'s `bt -a` shows
//! them), then every task in uninterruptible sleep (`D`, the hung-task suspects) in task-list
//! order, then, with `-k backtrace.all=on`, every other task. A task appears once, under the
//! first reason that names it. The CPUs' current tasks come from the kernel view's
//! [`KernelAccess::cpu_contexts`] (`runqueues.curr`), the others from
//! [`KernelAccess::tasks`].

use std::collections::{BTreeMap, HashSet};

use super::record::{
    BacktraceReport, CpuRecord, FrameRecord, Group, Reason, SCHEMA, TaskInfo, Trace,
};
use crate::kernel::stack::{CpuContext, StackTrace};
use crate::kernel::task_state::{TaskStateTable, task_state_char};
use crate::kernel::{AccessError, KernelAccess, KernelAccessExt};

/// `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;
/// A group signature keeps at most this many functions (a trace is bounded by the unwinder;
/// this only keeps `stacks.txt` readable).
const SIGNATURE_MAX: usize = 64;

pub struct Collected {
    pub report: BacktraceReport,
    pub errors: Vec<AccessError>,
}

/// Collects the traces; `all` adds every task. `Err` when this kernel cannot be unwound at all
/// (the architecture has no unwinder): the plugin then writes nothing.
pub fn collect<K: KernelAccess>(k: &K, all: bool) -> Result<Collected, AccessError> {
    let cpus = k.cpu_contexts()?;
    let mut errors = Vec::new();
    let states = TaskStateTable::read(k);
    let mut report = BacktraceReport {
        schema: SCHEMA,
        all_tasks: all,
        cpus: cpus
            .iter()
            .map(|c| CpuRecord {
                cpu: c.cpu,
                task: c.task,
                regs_source: c.regs_source,
                regs_missing: c.regs_missing.clone(),
                is_panic: c.is_panic,
            })
            .collect(),
        ..Default::default()
    };
    let mut seen: HashSet<u64> = HashSet::new();

    // the CPUs' current tasks: the panic CPU first
    let mut order: Vec<&CpuContext> = cpus.iter().filter(|c| c.task.is_some()).collect();
    order.sort_by_key(|c| (!c.is_panic, c.cpu));
    let current = current_tasks(k, &mut errors);
    for c in order {
        let Some(addr) = c.task else { continue };
        let Some(obj) = current.get(&addr) else {
            errors.push(AccessError::new(
                "not-dumped",
                format!("CPU {}: its current task {addr:#x} cannot be read", c.cpu),
            ));
            continue;
        };
        if !seen.insert(addr) {
            continue;
        }
        let reason = if c.is_panic {
            Reason::PanicCpu
        } else {
            Reason::Cpu
        };
        let mut info = match task_info(k, obj, &states) {
            Ok(i) => i,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        info.running = true;
        info.is_panic = c.is_panic;
        info.cpu = Some(c.cpu);
        report.traces.push(trace(k, obj, info, reason));
    }

    // the blocked tasks, then (all) the rest
    let (tasks, problems) = match k.tasks() {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            (Vec::new(), Vec::new())
        }
    };
    errors.extend(problems);
    let mut rest = Vec::new();
    for t in &tasks {
        let addr = k.address(t);
        if seen.contains(&addr) {
            continue;
        }
        let info = match task_info(k, t, &states) {
            Ok(i) => i,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if info.state == 'D' {
            seen.insert(addr);
            report.traces.push(trace(k, t, info, Reason::Blocked));
        } else if all {
            rest.push((t, info));
        }
    }
    for (t, info) in rest {
        report.traces.push(trace(k, t, info, Reason::All));
    }
    report.groups = groups(&report.traces);
    Ok(Collected { report, errors })
}

/// Each CPU's current task object, by address (`runqueues.curr`, idle tasks included).
fn current_tasks<K: KernelAccess>(k: &K, errors: &mut Vec<AccessError>) -> BTreeMap<u64, K::Obj> {
    let mut out = BTreeMap::new();
    let rq = match k.var("runqueues") {
        Ok(Some(rq)) => rq,
        Ok(None) => return out,
        Err(e) => {
            errors.push(e);
            return out;
        }
    };
    let cpus = k
        .cpumask("__cpu_possible_mask")
        .ok()
        .flatten()
        .unwrap_or_default();
    for cpu in cpus {
        match k.per_cpu(&rq, cpu).and_then(|r| k.deref_at(&r, "curr")) {
            Ok(Some(t)) => {
                out.insert(k.address(&t), t);
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    out
}

fn task_info<K: KernelAccess>(
    k: &K,
    t: &K::Obj,
    states: &TaskStateTable,
) -> Result<TaskInfo, AccessError> {
    let addr = k.address(t);
    let pid = k.int_at(t, "pid")?.unwrap_or(0);
    let tgid = k.int_at(t, "tgid")?.unwrap_or(pid);
    let comm = match k.member(t, "comm")? {
        Some(c) => k.cstr(&c, COMM_LEN)?,
        None => Vec::new(),
    };
    let state = k.int_any(t, &["__state", "state"])?.unwrap_or(0) as u32;
    let exit_state = k.int_at(t, "exit_state")?.unwrap_or(0) as u32;
    let cpu = k
        .int_any(t, &["cpu", "thread_info.cpu"])
        .ok()
        .flatten()
        .map(|c| c as u32);
    Ok(TaskInfo {
        addr,
        pid,
        tgid,
        comm,
        state: task_state_char(states, state, exit_state),
        cpu,
        running: false,
        is_panic: false,
        is_idle: pid == 0,
    })
}

fn trace<K: KernelAccess>(k: &K, t: &K::Obj, task: TaskInfo, reason: Reason) -> Trace {
    match k.stack_trace(t) {
        Ok(st) => from_stack_trace(task, reason, st),
        Err(e) => Trace {
            task,
            reason,
            start: None,
            complete: false,
            stop: None,
            error: Some(e.to_string()),
            frames: Vec::new(),
        },
    }
}

fn from_stack_trace(task: TaskInfo, reason: Reason, st: StackTrace) -> Trace {
    let frames = st
        .frames
        .into_iter()
        .enumerate()
        .map(|(index, frame)| FrameRecord { index, frame })
        .collect();
    Trace {
        task,
        reason,
        start: Some(st.start),
        complete: st.stop.is_complete(),
        stop: Some(st.stop),
        error: None,
        frames,
    }
}

/// A trace's signature: its function names, innermost first.
pub fn signature(t: &Trace) -> Vec<String> {
    t.frames
        .iter()
        .take(SIGNATURE_MAX)
        .map(|f| f.frame.symbol.clone().unwrap_or_else(|| "?".into()))
        .collect()
}

/// Traces with identical signatures, the largest group first (ties: the first seen first).
/// Traces that could not start are not grouped.
pub fn groups(traces: &[Trace]) -> Vec<Group> {
    let mut by_sig: Vec<(Vec<String>, Vec<&Trace>)> = Vec::new();
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for t in traces.iter().filter(|t| t.error.is_none()) {
        let sig = signature(t);
        match index.get(&sig) {
            Some(&i) => by_sig[i].1.push(t),
            None => {
                index.insert(sig.clone(), by_sig.len());
                by_sig.push((sig, vec![t]));
            }
        }
    }
    let mut groups: Vec<Group> = by_sig
        .into_iter()
        .map(|(signature, ts)| {
            let mut states: BTreeMap<char, usize> = BTreeMap::new();
            for t in &ts {
                *states.entry(t.task.state).or_default() += 1;
            }
            Group {
                signature,
                count: ts.len(),
                pids: ts.iter().map(|t| t.task.pid).collect(),
                states,
            }
        })
        .collect();
    // stable: equal counts keep first-seen order
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}
