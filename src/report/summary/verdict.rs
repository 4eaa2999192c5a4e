//! The verdict: what kind of crash this was, from the panic string and the kernel log.
//!
//! Every rule is a heuristic over strings the kernel prints, named here with the kernel source
//! that prints them (checked in 6.1 and 6.12):
//! - `panic()` prints `Kernel panic - not syncing: <message>` (kernel/panic.c); the sys plugin
//!   reads the message from the log and from `panic()`'s buffer in memory;
//! - `sysrq triggered crash` — drivers/tty/sysrq.c `sysrq_handle_crash()`;
//! - `Fatal exception` / `Fatal exception in interrupt` — `oops_end()` (arch/x86/kernel/dumpstack.c)
//!   and arm64's `die()` (arch/arm64/kernel/traps.c) with `panic_on_oops` or in interrupt; the
//!   oops itself opens with `BUG: kernel NULL pointer dereference`, `BUG: unable to handle page
//!   fault`, `kernel BUG at FILE:LINE!` (lib/bug.c `report_bug()`), `general protection fault`,
//!   `Unable to handle kernel …` (arm64 mm/fault.c), `Internal error:` (arm64 `die()`); with a
//!   capture kernel loaded the oops goes to kdump before that panic, leaving no panic message
//!   ([`oops_went_to_kdump`]);
//! - `hung_task: blocked tasks` — kernel/hung_task.c `check_hung_uninterruptible_tasks()`, after
//!   `INFO: task COMM:PID blocked for more than N seconds.`;
//! - `softlockup: hung tasks` — kernel/watchdog.c, after `watchdog: BUG: soft lockup - CPU#N
//!   stuck for Ns! [COMM:PID]`;
//! - `Hard LOCKUP` — kernel/watchdog_perf.c (watchdog_hld.c before 6.6) `nmi_panic()`;
//! - `System is deadlocked on memory`, `Out of memory: … panic_on_oom is enabled`,
//!   `Out of memory and no killable processes` — mm/oom_kill.c;
//! - `panic_on_warn set ...` — kernel/panic.c `check_panic_on_warn()`, after a `WARNING: CPU: N
//!   PID: P at FILE:LINE FUNCTION` (kernel/panic.c `__warn()`);
//! - `Fatal machine check`, `Machine check` — arch/x86/kernel/cpu/mce/core.c `mce_panic()`;
//! - `Attempted to kill init!` — kernel/exit.c `do_exit()`;
//! - `VFS: Unable to mount root fs` — init/do_mounts.c.

use serde::Serialize;

/// The kind of crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A crash asked for with SysRq-c (`echo c > /proc/sysrq-trigger`).
    Sysrq,
    /// An oops (a fault or a BUG in the kernel) made fatal by `panic_on_oops` or by happening in
    /// an interrupt.
    Oops,
    /// A `BUG()`/`BUG_ON()` assertion.
    Bug,
    HungTask,
    SoftLockup,
    HardLockup,
    Oom,
    /// A `WARN()` made fatal by `panic_on_warn`.
    WarningAsPanic,
    MachineCheck,
    InitKilled,
    RootMount,
    /// A panic none of the rules names.
    Other,
    /// No panic found: the dump may have been taken from a running system.
    NoPanic,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Sysrq => "crash requested with SysRq-c",
            Kind::Oops => "kernel oops",
            Kind::Bug => "kernel BUG (assertion failed)",
            Kind::HungTask => "hung task (blocked beyond hung_task_timeout_secs)",
            Kind::SoftLockup => "soft lockup (a CPU stuck in the kernel)",
            Kind::HardLockup => "hard lockup (a CPU stuck with interrupts off)",
            Kind::Oom => "out of memory with nothing left to kill",
            Kind::WarningAsPanic => "kernel warning made fatal by panic_on_warn",
            Kind::MachineCheck => "machine check (hardware error)",
            Kind::InitKilled => "init exited or was killed",
            Kind::RootMount => "the root filesystem could not be mounted",
            Kind::Other => "kernel panic",
            Kind::NoPanic => "no panic recorded (a dump of a live system, or the log is missing)",
        }
    }
}

/// The kind a panic message names, before the log is consulted.
pub fn kind_of_panic(message: &str) -> Kind {
    let m = message.trim();
    let has = |s: &str| m.contains(s);
    if has("sysrq triggered crash") {
        Kind::Sysrq
    } else if has("hung_task: blocked tasks") {
        Kind::HungTask
    } else if has("softlockup: hung tasks") {
        Kind::SoftLockup
    } else if has("Hard LOCKUP") || has("hardlockup:") {
        Kind::HardLockup
    } else if has("deadlocked on memory") || has("Out of memory") {
        Kind::Oom
    } else if has("panic_on_warn set") {
        Kind::WarningAsPanic
    } else if has("achine check") {
        Kind::MachineCheck
    } else if has("Attempted to kill init") {
        Kind::InitKilled
    } else if has("Unable to mount root fs") {
        Kind::RootMount
    } else if has("Fatal exception") || has("Oops") {
        Kind::Oops
    } else {
        Kind::Other
    }
}

/// The line that opens an oops or BUG report, when `line` is one (the text after the log
/// prefix).
pub fn oops_headline(text: &str) -> Option<&str> {
    const OPENERS: [&str; 8] = [
        "BUG: kernel NULL pointer dereference",
        "BUG: unable to handle",
        "kernel BUG at ",
        "general protection fault",
        "Unable to handle kernel",
        "Internal error:",
        "BUG: stack guard page",
        "stack segment:",
    ];
    OPENERS.iter().any(|o| text.starts_with(o)).then_some(text)
}

/// Whether a crash without a panic message is an oops that went straight to the capture
/// kernel: with a crash kernel loaded, x86's `oops_end()` (arch/x86/kernel/dumpstack.c) and
/// arm64's `die()` call `crash_kexec(regs)` before any `panic()`, so no `Kernel panic` line is
/// printed; `crash_kexec()` (kernel/kexec_core.c) claims `panic_cpu` on its way. So: `panic_cpu`
/// set (`PANIC_CPU_INVALID` is -1) and the log's last report an oops (`oops_texts`, the sys
/// plugin's `panic.last_oops` without the log prefix). An old oops in the log of a dump taken
/// from a running system leaves `panic_cpu` at -1.
pub fn oops_went_to_kdump(panic_cpu: Option<i64>, oops_texts: &[&str]) -> bool {
    panic_cpu.is_some_and(|c| c >= 0)
        && oops_texts
            .iter()
            .any(|t| oops_headline(t).is_some() || t.starts_with("Oops: "))
}

/// The function an oops report names as where it happened: x86's `RIP: 0010:func+off/size
/// [mod]` (arch/x86/kernel/dumpstack.c `show_ip()`), arm64's `pc : func+off/size [mod]`
/// (arch/arm64/kernel/process.c `__show_regs()`), s390's `Krnl PSW : …` is not symbolized by
/// the kernel and is left out. Returns `(function+off/size, module)`.
pub fn oops_location(text: &str) -> Option<(String, Option<String>)> {
    let rest = if let Some(r) = text.strip_prefix("RIP: ") {
        // `0010:func+0x20/0x30 [mod]`; a user-mode RIP (`0033:0x47b7a0`) is not a location
        let (cs, r) = r.split_once(':')?;
        if cs != "0010" {
            return None;
        }
        r
    } else {
        text.strip_prefix("pc : ")?
    };
    let mut parts = rest.split_whitespace();
    let func = parts.next()?;
    if !func.contains('+') {
        return None;
    }
    let module = parts
        .next()
        .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
        .map(str::to_string);
    Some((func.to_string(), module))
}

/// `INFO: task COMM:PID blocked for more than N seconds.` → (comm, pid, seconds).
pub fn hung_task_line(text: &str) -> Option<(String, i64, u64)> {
    let rest = text.strip_prefix("INFO: task ")?;
    let (task, rest) = rest.split_once(" blocked for more than ")?;
    let (comm, pid) = task.rsplit_once(':')?;
    let secs = rest.split_whitespace().next()?.parse().ok()?;
    Some((comm.to_string(), pid.parse().ok()?, secs))
}

/// `watchdog: BUG: soft lockup - CPU#N stuck for Ns! [COMM:PID]` → (cpu, seconds, comm, pid).
pub fn soft_lockup_line(text: &str) -> Option<(u32, u64, String, i64)> {
    let rest = text.split_once("BUG: soft lockup - CPU#")?.1;
    let (cpu, rest) = rest.split_once(" stuck for ")?;
    let (secs, rest) = rest.split_once("s! [")?;
    let (comm, pid) = rest.strip_suffix(']')?.rsplit_once(':')?;
    Some((
        cpu.parse().ok()?,
        secs.parse().ok()?,
        comm.to_string(),
        pid.parse().ok()?,
    ))
}

/// `WARNING: CPU: N PID: P at FILE:LINE FUNCTION` → the text after `at `.
pub fn warning_site(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("WARNING: CPU: ")?;
    Some(rest.split_once(" at ")?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oops_without_a_panic_went_to_kdump_only_with_a_panic_cpu() {
        let oops = [
            "BUG: kernel NULL pointer dereference, address: 0",
            "Oops: 0002 [#1]",
        ];
        assert!(oops_went_to_kdump(Some(1), &oops));
        assert!(oops_went_to_kdump(Some(0), &oops[1..]));
        assert!(!oops_went_to_kdump(Some(-1), &oops));
        assert!(!oops_went_to_kdump(None, &oops));
        assert!(!oops_went_to_kdump(
            Some(0),
            &["WARNING: CPU: 0 PID: 1 at x.c:1 f"]
        ));
        assert!(!oops_went_to_kdump(Some(0), &[]));
    }

    #[test]
    fn kinds_from_the_kernels_own_messages() {
        assert_eq!(kind_of_panic("sysrq triggered crash"), Kind::Sysrq);
        assert_eq!(kind_of_panic("Fatal exception"), Kind::Oops);
        assert_eq!(kind_of_panic("Fatal exception in interrupt"), Kind::Oops);
        assert_eq!(kind_of_panic("hung_task: blocked tasks"), Kind::HungTask);
        assert_eq!(kind_of_panic("softlockup: hung tasks"), Kind::SoftLockup);
        assert_eq!(kind_of_panic("Hard LOCKUP"), Kind::HardLockup);
        assert_eq!(kind_of_panic("System is deadlocked on memory"), Kind::Oom);
        assert_eq!(
            kind_of_panic("Out of memory: compulsory panic_on_oom is enabled"),
            Kind::Oom
        );
        assert_eq!(kind_of_panic("panic_on_warn set ..."), Kind::WarningAsPanic);
        assert_eq!(
            kind_of_panic("kernel: panic_on_warn set ..."),
            Kind::WarningAsPanic
        );
        assert_eq!(kind_of_panic("Fatal machine check"), Kind::MachineCheck);
        assert_eq!(
            kind_of_panic("Attempted to kill init! exitcode=0x00000009"),
            Kind::InitKilled
        );
        assert_eq!(
            kind_of_panic("VFS: Unable to mount root fs on unknown-block(0,0)"),
            Kind::RootMount
        );
        assert_eq!(kind_of_panic("something else"), Kind::Other);
    }

    #[test]
    fn oops_lines() {
        assert_eq!(
            oops_location("RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]"),
            Some((
                "trigger_write+0x20/0x30".to_string(),
                Some("fixture_oops".to_string())
            ))
        );
        assert_eq!(oops_location("RIP: 0033:0x47b7a0"), None);
        assert_eq!(
            oops_location("pc : do_raw_spin_lock+0x14/0x120"),
            Some(("do_raw_spin_lock+0x14/0x120".to_string(), None))
        );
        assert!(oops_headline("BUG: kernel NULL pointer dereference, address: 0").is_some());
        assert!(oops_headline("kernel BUG at mm/slub.c:379!").is_some());
        assert!(oops_headline("Oops: 0002 [#1] PREEMPT SMP NOPTI").is_none());
        assert_eq!(
            hung_task_line("INFO: task touch:97 blocked for more than 2 seconds."),
            Some(("touch".to_string(), 97, 2))
        );
        assert_eq!(
            hung_task_line("INFO: task kworker/u4:1:53 blocked for more than 120 seconds."),
            Some(("kworker/u4:1".to_string(), 53, 120))
        );
        assert_eq!(
            soft_lockup_line("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:120]"),
            Some((1, 22, "spin".to_string(), 120))
        );
        assert_eq!(
            warning_site(
                "WARNING: CPU: 0 PID: 1 at kernel/locking/mutex.c:938 __mutex_lock+0xa10/0x1290"
            ),
            Some("kernel/locking/mutex.c:938 __mutex_lock+0xa10/0x1290")
        );
    }
}
