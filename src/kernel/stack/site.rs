//! Where a panic CPU's trace says the crash came from.
//!
//! - An oops (the trace passes through `oops_end()` or `die()`, arch/x86/kernel/dumpstack.c and
//!   arch/arm64/kernel/traps.c, on its way to `panic()`): the function the exception
//!   interrupted, the first interrupted frame past them (entered from the exception's saved
//!   registers).
//! - A kdump capture of an oops that went to `crash_kexec()` without `panic()` (the trace starts
//!   at the exception's registers, `crash_setup_regs()` copying them): the first frame.
//! - Any other panic: the first function past `panic()` that is not part of the crash machinery
//!   (`__crash_kexec()`, the delay loop `panic()` waits in, `dump_stack()`): the caller of
//!   `panic()`, e.g. `sysrq_handle_crash`, or khungtaskd's `watchdog`.

use super::{StackTrace, StartKind, TraceFrame};

/// The function's name without GCC's suffixes for split or cloned parts (`oops_end.cold`,
/// `watchdog.cold`, `foo.isra.0`, `foo.constprop.0`).
fn named(f: &TraceFrame) -> Option<&str> {
    f.symbol
        .as_deref()
        .map(|s| s.split('.').next().unwrap_or(s))
}

fn is_panic(s: &str) -> bool {
    matches!(s, "panic" | "vpanic" | "nmi_panic")
}

/// Functions that report an oops before it panics.
fn is_oops_reporter(s: &str) -> bool {
    matches!(
        s,
        "oops_end" | "die" | "die_body" | "__die" | "arm64_notify_die"
    )
}

/// Functions around `panic()` that are not where the crash came from.
fn is_machinery(s: &str) -> bool {
    is_panic(s)
        || matches!(
            s,
            "__crash_kexec"
                | "crash_kexec"
                | "crash_setup_regs"
                | "machine_crash_shutdown"
                | "native_machine_crash_shutdown"
                | "crash_save_cpu"
                | "dump_stack"
                | "dump_stack_lvl"
                | "show_stack"
                | "delay_tsc"
                | "__const_udelay"
                | "__udelay"
                | "__delay"
                | "panic_smp_self_stop"
                | "native_safe_halt"
                | "halt"
        )
}

/// The frame naming where the crash came from (see the module doc), or `None` when the trace
/// does not tell.
pub fn crash_site(t: &StackTrace) -> Option<&TraceFrame> {
    let frames = &t.frames;
    let panic_at = frames.iter().position(|f| named(f).is_some_and(is_panic));
    let oops_at = frames
        .iter()
        .position(|f| named(f).is_some_and(is_oops_reporter));
    if let Some(o) = oops_at {
        return frames[o + 1..].iter().find(|f| f.interrupted);
    }
    match panic_at {
        Some(p) => frames[p + 1..]
            .iter()
            .find(|f| named(f).is_some_and(|s| !is_machinery(s))),
        // no panic() on the stack: a kdump capture entered from an exception's registers
        None if t.start == StartKind::CrashNotes => frames.first().filter(|f| f.symbol.is_some()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::{Method, StackKind, StopReason};

    fn f(sym: &str, interrupted: bool) -> TraceFrame {
        TraceFrame {
            pc: 0x1000,
            sp: 0x2000,
            cfa: None,
            symbol: Some(sym.to_string()),
            offset: 0x10,
            size: 0x40,
            module: None,
            source: None,
            inlined: Vec::new(),
            interrupted,
            reliable: true,
            method: Method::Orc,
            stack: StackKind::Task,
            regs: None,
        }
    }

    fn trace(start: StartKind, frames: Vec<TraceFrame>) -> StackTrace {
        StackTrace {
            task: 1,
            cpu: Some(0),
            start,
            frames,
            stop: StopReason::EndOfStack,
        }
    }

    fn site(t: &StackTrace) -> Option<&str> {
        crash_site(t).and_then(|f| f.symbol.as_deref())
    }

    #[test]
    fn an_oops_is_where_the_exception_interrupted() {
        // x86_64 6.1, a NULL write in a module, panic_on_oops (the oops fixture's shape)
        let t = trace(
            StartKind::Prstatus,
            vec![
                f("delay_tsc", true),
                f("panic", false),
                f("oops_end.cold", false),
                f("page_fault_oops", false),
                f("exc_page_fault", false),
                f("asm_exc_page_fault", false),
                f("trigger_write", true),
                f("full_proxy_write", false),
            ],
        );
        assert_eq!(site(&t), Some("trigger_write"));
    }

    #[test]
    fn a_panic_is_its_caller_past_the_crash_machinery() {
        let t = trace(
            StartKind::CrashNotes,
            vec![
                f("__crash_kexec", true),
                f("panic", false),
                f("dump_stack_lvl", false),
                f("sysrq_handle_crash", false),
                f("__handle_sysrq", false),
            ],
        );
        assert_eq!(site(&t), Some("sysrq_handle_crash"));
        // an interrupt frame further down is not the site of a plain panic
        let t = trace(
            StartKind::Prstatus,
            vec![
                f("delay_tsc", true),
                f("panic", false),
                f("watchdog", false),
                f("asm_sysvec_apic_timer_interrupt", false),
                f("default_idle", true),
            ],
        );
        assert_eq!(site(&t), Some("watchdog"));
    }

    #[test]
    fn a_kdump_oops_without_panic_starts_at_the_fault() {
        let t = trace(
            StartKind::CrashNotes,
            vec![f("trigger_write", true), f("full_proxy_write", false)],
        );
        assert_eq!(site(&t), Some("trigger_write"));
        // the same shape from a hypervisor dump says nothing
        let t = trace(
            StartKind::Prstatus,
            vec![f("trigger_write", true), f("full_proxy_write", false)],
        );
        assert_eq!(site(&t), None);
    }
}
