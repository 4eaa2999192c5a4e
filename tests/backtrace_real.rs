//! Every task's backtrace on every real fixture set against drgn's `stack_trace()` of the same
//! dump (`drgn/stacks.txt`, written by `fixtures/peer-drgn.py` when the set is built: the command
//! is in docs/testing.md): the same physical frames, pc for pc, for every task drgn could trace,
//! on every dump format the set's recipe produces (ELF, QEMU's and makedumpfile's
//! kdump-compressed, flattened, makedumpfile's filtered dumps, whose kernel stacks `-d 31`
//! keeps; not the lossy 6.12 dump, which loses task_structs by design).
//!
//! Differences are counted and must be explained, not hidden. Two are accepted:
//! - drgn goes on past the kernel stack into user space (the user pc from the syscall or
//!   interrupt entry's `pt_regs`, then whatever its frame-pointer guess finds on the user stack),
//!   where our trace ends at that `pt_regs` with the stop reason "user mode at PC": accepted when
//!   drgn's frames are ours followed by frames whose first is a user address equal to our stop's
//!   pc;
//! - arm64 before the final frame record of 5.16 (aarch64-5.10): an idle task's stack ends in a
//!   zero frame record `{fp 0, lr 0}` (the entry code, `__primary_switched` and
//!   `__secondary_switched`, zeroes x29 and x30 before branching to `start_kernel` or
//!   `secondary_start_kernel`, whose prologue stores them), where the kernel's own unwinder
//!   (`unwind_frame()`: "only terminate where both are NULL") stops; drgn reports it as a frame
//!   at pc 0 and one more at 0 - 4. Accepted when drgn's frames are ours followed by exactly
//!   those two and our trace ended at the end of the stack.
//!
//! Every other difference fails the test with both traces printed.

mod common;

use common::stacks::{DrgnStacks, drgn_stacks};
use vmcore_report::addr::VirtAddr;
use vmcore_report::kernel::stack::Backtracer;
use vmcore_report::unwind::StopReason;

/// The lowest kernel address on the 64-bit architectures here (user space is below).
const KERNEL_HALF: u64 = 0x8000_0000_0000_0000;

/// drgn's trace is ours, then user-space frames starting at the user pc our trace stopped at.
fn user_tail(ours: &[u64], stop: &StopReason, drgn: &[u64]) -> bool {
    let StopReason::UserMode { pc } = stop else {
        return false;
    };
    drgn.len() > ours.len()
        && drgn.starts_with(ours)
        && drgn[ours.len()] == *pc
        && *pc < KERNEL_HALF
}

/// drgn's trace is ours, then the zero frame record that ends an arm64 idle task's stack before
/// 5.16: pc 0 (the record's lr) and 0 - 4.
fn zero_record_tail(ours: &[u64], stop: &StopReason, drgn: &[u64]) -> bool {
    matches!(stop, StopReason::EndOfStack)
        && drgn.starts_with(ours)
        && drgn[ours.len()..] == [0, 0u64.wrapping_sub(4)]
}

fn check_dump(
    set: &str,
    dump: &std::path::Path,
    dir: &std::path::Path,
    oracle: &DrgnStacks,
) -> (usize, usize, usize) {
    let k = common::kernel::open(dump, &dir.join("vmlinux"));
    let bt = Backtracer::new(&k).unwrap_or_else(|e| panic!("{set}: no backtracer: {e}"));
    let name = dump.file_name().unwrap().to_string_lossy();
    let (mut same, mut user, mut zero, mut failures) = (0usize, 0usize, 0usize, Vec::new());
    for t in &oracle.tasks {
        if t.error.is_some() || t.frames.is_empty() {
            continue;
        }
        let drgn: Vec<u64> = t
            .frames
            .iter()
            .filter(|f| !f.inline)
            .filter_map(|f| f.pc)
            .collect();
        let (ours, stop) = match bt.trace(VirtAddr(t.addr)) {
            Ok(tr) => (
                tr.frames.iter().map(|f| f.pc).collect::<Vec<u64>>(),
                tr.stop,
            ),
            Err(e) => {
                failures.push(format!("pid {} {}: no trace: {e}", t.pid, t.comm));
                continue;
            }
        };
        if ours == drgn {
            same += 1;
        } else if user_tail(&ours, &stop, &drgn) {
            user += 1;
        } else if zero_record_tail(&ours, &stop, &drgn) {
            zero += 1;
        } else {
            failures.push(format!(
                "pid {} {} (running {}, our stop {stop:?}):\n  ours {:x?}\n  drgn {:x?}",
                t.pid, t.comm, t.running, ours, drgn
            ));
        }
    }
    eprintln!(
        "{set}/{name}: {} tasks, {same} identical to drgn, {user} identical up to user mode (drgn goes on into user space), {zero} up to the zero frame record (drgn reads it as two frames), {} different",
        same + user + zero + failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{set}/{name}: {}", failures.join("\n"));
    (same, user, failures.len())
}

#[test]
fn every_task_equals_drgns_stack_trace() {
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let Some(text) = common::fixtures::drgn_oracle(&dir, "stacks.txt") else {
            continue;
        };
        let oracle = drgn_stacks(&text).unwrap_or_else(|e| panic!("{set}: stacks.txt: {e}"));
        // every dump format the set's recipe produces (common::fixtures::dumps)
        for dump in common::fixtures::dumps(&dir) {
            check_dump(set, &dump, &dir, &oracle);
        }
    }
}

/// The live stacks that cannot have changed before the crash (`---stacks---` in truth.txt): a
/// `sleep` task stays in clock_nanosleep, the waiting shell in wait4 (its child sleeps for
/// hours). kthreadd and khungtaskd may wake in between and are left out.
fn cannot_have_moved(s: &common::stacks::LiveStack) -> bool {
    s.comm == "sleep" || s.comm == "sh"
}

/// Our backtrace of every task whose live stack cannot have moved holds the live frames in
/// order (gaps allowed: /proc/PID/stack leaves out the scheduler's own functions), each named
/// as the live kernel named it: `%pB`, the symbol of `pc - 1` with the offset of `pc`,
/// `func+0xOFF`. The `/0xSIZE` is not compared: kallsyms' size runs to the next symbol, the
/// vmlinux symbol table's ends at the function's last instruction (alignment padding between).
/// On every dump of every set: the direct check against the live kernel, and on the sets
/// without drgn's oracle (s390x) the only one.
#[test]
fn live_stacks_are_in_our_backtraces() {
    use common::stacks::{live_stacks, subsequence_mismatch};
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
        let Some(live) = live_stacks(&truth) else {
            common::fixtures::skip(format_args!("{set}: truth.txt has no ---stacks---"));
            continue;
        };
        let live = live.unwrap_or_else(|e| panic!("{set}: ---stacks---: {e}"));
        let live: Vec<_> = live.iter().filter(|s| cannot_have_moved(s)).collect();
        assert_eq!(
            live.len(),
            4,
            "{set}: three sleep tasks and the waiting shell"
        );
        for dump in common::fixtures::dumps(&dir) {
            let name = dump.file_name().unwrap().to_string_lossy().to_string();
            let k = common::kernel::open(&dump, &dir.join("vmlinux"));
            let bt = Backtracer::new(&k).unwrap_or_else(|e| panic!("{set}: no backtracer: {e}"));
            let tasks = k
                .tasks()
                .unwrap_or_else(|e| panic!("{set}/{name}: tasks: {e}"));
            for s in &live {
                let task = tasks
                    .tasks
                    .iter()
                    .find(|t| i64::from(t.pid) == s.pid)
                    .unwrap_or_else(|| panic!("{set}/{name}: pid {} not listed", s.pid));
                let tr = bt
                    .trace(task.addr)
                    .unwrap_or_else(|e| panic!("{set}/{name}: pid {}: {e}", s.pid));
                let have: Vec<String> = tr
                    .frames
                    .iter()
                    .map(|f| {
                        let probe = if f.interrupted { f.pc } else { f.pc - 1 };
                        match k.symbols().symbolize(VirtAddr(probe)) {
                            Some((sym, off)) => format!("{}+{:#x}", sym.name, off + f.pc - probe),
                            None => format!("{:#x}", f.pc),
                        }
                    })
                    .collect();
                let want: Vec<String> = s
                    .frames
                    .iter()
                    .map(|f| format!("{}+{:#x}", f.symbol_name(), f.offset.unwrap_or(0)))
                    .collect();
                let want: Vec<&str> = want.iter().map(String::as_str).collect();
                let have: Vec<&str> = have.iter().map(String::as_str).collect();
                if let Some(i) = subsequence_mismatch(&want, &have) {
                    panic!(
                        "{set}/{name}: pid {} {}: live frame {i} ({}) not in order in ours\n live: {want:?}\n ours: {have:?} ({:?})",
                        s.pid, s.comm, want[i], tr.stop
                    );
                }
            }
            eprintln!(
                "{set}/{name}: the {} live stacks that cannot have moved are in our backtraces",
                live.len()
            );
        }
    }
}
