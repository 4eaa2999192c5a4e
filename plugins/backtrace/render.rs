//! The text renderings: `bt.txt` in the layout of `crash`'s `bt` (crash's help for `bt`, its
//! header `PID: %-7ld  TASK: %-16lx  CPU: %-3s  COMMAND: "%s"` and frame lines
//! ` #N [stack address] function at pc`), with the symbol's offset and size the way the kernel
//! prints a backtrace entry (`%pB`: `function+0xoff/0xsize [module]`), and `stacks.txt`, the
//! traces grouped by identical function sequence.
//!
//! Deviations from crash, each because a dump reader needs it: the header adds the task's state
//! letter and marks the panic task; the `[…]` column is the frame's stack pointer (crash prints
//! the stack slot its scanner found the return address in); a frame found by a heuristic is
//! prefixed `? ` as the kernel's own traces do; inlined functions and source lines follow their
//! frame; a trace that did not reach the end of the stack ends with the reason.

use std::fmt::Write;

use super::record::{BacktraceReport, FrameRecord, Trace};
use crate::plugins::sched_debug::record::escape_bytes;
use crate::unwind::{StackKind, StopReason};

/// `bt.txt`.
pub fn bt_txt(r: &BacktraceReport) -> String {
    let mut out = String::new();
    for (i, t) in r.traces.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        trace(&mut out, t);
    }
    out
}

fn trace(out: &mut String, t: &Trace) {
    let cpu = t.task.cpu.map_or("-".to_string(), |c| c.to_string());
    let _ = write!(
        out,
        "PID: {:<7}  TASK: {:<16x}  CPU: {:<3}  COMMAND: \"{}\"  STATE: {}",
        t.task.pid,
        t.task.addr,
        cpu,
        escape_bytes(&t.task.comm),
        t.task.state
    );
    if t.task.is_panic {
        out.push_str("  PANIC");
    }
    out.push('\n');
    if let Some(e) = &t.error {
        let _ = writeln!(out, "    (no backtrace: {e})");
        return;
    }
    for (i, f) in t.frames.iter().enumerate() {
        frame(out, f);
        // leaving a stack other than the task's: name the stack left, as crash does
        if let Some(next) = t.frames.get(i + 1)
            && next.frame.stack != f.frame.stack
            && f.frame.stack != StackKind::Task
        {
            let _ = writeln!(out, "--- <{} stack> ---", stack_name(f.frame.stack));
        }
    }
    if let Some(stop) = &t.stop
        && !stop.is_complete()
    {
        let _ = writeln!(out, "    (unwind stopped: {})", stop_text(stop));
    }
}

fn frame(out: &mut String, r: &FrameRecord) {
    let f = &r.frame;
    let unreliable = if f.reliable { "" } else { "? " };
    let func = match &f.symbol {
        Some(s) => format!("{s}+{:#x}/{:#x}", f.offset, f.size),
        None => "?".to_string(),
    };
    let module = f
        .module
        .as_ref()
        .map_or(String::new(), |m| format!(" [{m}]"));
    // an interrupted frame past the first is where an exception or interrupt entered
    if r.index > 0
        && f.interrupted
        && let Some(regs) = &f.regs
    {
        let _ = writeln!(out, "    [exception RIP: {func}]");
        registers(out, regs);
    }
    let _ = writeln!(
        out,
        "{:>3} [{:016x}] {unreliable}{func} at {:016x}{module}",
        format!("#{}", r.index),
        f.sp,
        f.pc
    );
    for inl in &f.inlined {
        let at = inl
            .source
            .as_ref()
            .map_or(String::new(), |s| format!("  {}: {}", s.file, s.line));
        let _ = writeln!(out, "    (inlined) {}{at}", inl.function);
    }
    if let Some(s) = &f.source {
        let _ = writeln!(out, "    {}: {}", s.file, s.line);
    }
    if r.index == 0
        && let Some(regs) = &f.regs
    {
        registers(out, regs);
    }
}

/// Registers three to a line, as crash prints an exception frame.
fn registers(out: &mut String, regs: &[(&'static str, u64)]) {
    for chunk in regs.chunks(3) {
        out.push_str("    ");
        let line: Vec<String> = chunk
            .iter()
            .map(|(n, v)| format!("{}: {v:016x}", n.to_uppercase()))
            .collect();
        out.push_str(&line.join("  "));
        out.push('\n');
    }
}

fn stack_name(k: StackKind) -> &'static str {
    match k {
        StackKind::Task => "task",
        StackKind::Irq => "IRQ",
        StackKind::SoftIrq => "softirq",
        StackKind::Nmi => "NMI exception",
        StackKind::Exception => "exception",
        StackKind::Entry => "entry trampoline",
        StackKind::User => "user",
        StackKind::Unknown => "unknown",
    }
}

/// One line for a stop reason.
pub fn stop_text(s: &StopReason) -> String {
    match s {
        StopReason::EndOfStack => "end of stack".into(),
        StopReason::UserMode { pc } => format!("user mode at {pc:#x}"),
        StopReason::NoUnwindInfo { pc } => format!("no unwind information for {pc:#x}"),
        StopReason::Memory { addr, why } => format!("stack memory at {addr:#x}: {why}"),
        StopReason::Loop { sp } => format!("the stack pointer {sp:#x} went back (a loop)"),
        StopReason::BadAddress { pc } => format!("return address {pc:#x} is not kernel text"),
        StopReason::MaxDepth => format!("{} frames", crate::unwind::MAX_FRAMES),
        StopReason::Unsupported { pc, what } => format!("at {pc:#x}: {what}"),
    }
}

/// `stacks.txt`: one block per group of identical traces, the largest first.
pub fn stacks_txt(r: &BacktraceReport) -> String {
    let mut out = String::new();
    for (i, g) in r.groups.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let states: Vec<String> = g.states.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let pids: Vec<String> = g.pids.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "{} task{} ({}): pids {}",
            g.count,
            if g.count == 1 { "" } else { "s" },
            states.join(", "),
            pids.join(" ")
        );
        for f in &g.signature {
            let _ = writeln!(out, "    {f}");
        }
    }
    out
}
