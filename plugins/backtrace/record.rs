//! The records the backtrace plugin collects once and renders three times (`bt.txt`,
//! `stacks.txt`, `backtrace.json`). The JSON layout is documented in docs/plugins/backtrace.md
//! and checked against docs/backtrace.schema.json by the test suite.
//!
//! Addresses are `"0x…"` strings: a kernel address does not fit JSON's exact integer range.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::addr::{ser_hex, ser_opt_hex};
use crate::kernel::stack::{RegsSource, StartKind, TraceFrame};
use crate::plugins::sched_debug::record::ser_bytes;
use crate::unwind::StopReason;

/// Version of the JSON layout, bumped on any incompatible change.
pub const SCHEMA: &str = "vmcore-report/backtrace/1";

/// Why a task is in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The current task of the CPU that panicked.
    PanicCpu,
    /// The current task of another CPU.
    Cpu,
    /// Blocked in uninterruptible sleep (state `D`).
    Blocked,
    /// Any other task (`-k backtrace.all=on`).
    All,
}

/// The task a trace belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskInfo {
    #[serde(serialize_with = "ser_hex")]
    pub addr: u64,
    pub pid: i64,
    pub tgid: i64,
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    /// The state letter `ps` prints.
    pub state: char,
    /// The CPU it ran on (`task_cpu()`), or the CPU whose current task it is.
    pub cpu: Option<u32>,
    /// It was some CPU's current task at the crash.
    pub running: bool,
    pub is_panic: bool,
    /// An idle task (pid 0).
    pub is_idle: bool,
}

/// One physical frame: its index in the trace and the kernel view's frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameRecord {
    pub index: usize,
    #[serde(flatten)]
    pub frame: TraceFrame,
}

/// One task's trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    pub task: TaskInfo,
    pub reason: Reason,
    /// Where the first registers came from; `None` when the trace could not start.
    pub start: Option<StartKind>,
    /// The unwind reached the end of the kernel stack (or user mode).
    pub complete: bool,
    /// Why the unwind stopped; `None` when it could not start.
    pub stop: Option<StopReason>,
    /// Why no trace could be made.
    pub error: Option<String>,
    pub frames: Vec<FrameRecord>,
}

/// Tasks whose traces name the same functions in the same order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The function names, innermost first (`?` for a pc no symbol covers).
    pub signature: Vec<String>,
    pub count: usize,
    pub pids: Vec<i64>,
    /// How many of the tasks are in each state, by letter.
    pub states: BTreeMap<char, usize>,
}

/// One CPU's context at the crash.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuRecord {
    pub cpu: u32,
    #[serde(serialize_with = "ser_opt_hex")]
    pub task: Option<u64>,
    pub regs_source: Option<RegsSource>,
    /// Why the dump has no registers for it.
    pub regs_missing: Option<String>,
    pub is_panic: bool,
}

/// Everything the plugin found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BacktraceReport {
    pub schema: &'static str,
    pub arch: Option<&'static str>,
    /// Every task was traced (`-k backtrace.all=on`), not only the CPUs' and the blocked ones.
    pub all_tasks: bool,
    pub cpus: Vec<CpuRecord>,
    pub traces: Vec<Trace>,
    pub groups: Vec<Group>,
}
