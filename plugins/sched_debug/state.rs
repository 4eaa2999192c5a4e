//! Task state letters, by the kernel's own rules (`__task_state_index()` and
//! `task_index_to_char()` in include/linux/sched.h).
//!
//! The letters come from the dump's `task_state_array` (fs/proc/array.c: `"R (running)"`,
//! `"S (sleeping)"`, …, `"I (idle)"`) when the symbol is there, else from the documented
//! `"RSDTtXZPI"`. The array's length also gives `TASK_REPORT`: its entries are index 0 (running),
//! one per reportable state bit, and the idle pseudo-state last, so
//! `TASK_REPORT = (1 << (len − 2)) − 1` and `TASK_REPORT_IDLE = TASK_REPORT + 1`.
//!
//! The state bits this needs have kept their values since 4.14: `TASK_UNINTERRUPTIBLE` 0x2,
//! `TASK_NOLOAD` 0x400 (so `TASK_IDLE` is 0x402), `TASK_RTLOCK_WAIT` 0x1000 (5.15+),
//! `TASK_FROZEN` 0x8000 (6.1+). On kernels that predate a bit, the bit is never set, so applying the
//! newest rule everywhere gives each kernel's own answer.

use crate::kernel::KernelAccess;

const TASK_UNINTERRUPTIBLE: u32 = 0x2;
const TASK_NOLOAD: u32 = 0x400;
const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;
const TASK_RTLOCK_WAIT: u32 = 0x1000;
const TASK_FROZEN: u32 = 0x8000;

/// The letters by state index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStateTable {
    pub letters: Vec<char>,
}

impl Default for TaskStateTable {
    fn default() -> TaskStateTable {
        TaskStateTable {
            letters: "RSDTtXZPI".chars().collect(),
        }
    }
}

impl TaskStateTable {
    /// Reads `task_state_array` from the dump; falls back to the documented table.
    pub fn read<K: KernelAccess>(k: &K) -> TaskStateTable {
        Self::try_read(k).unwrap_or_default()
    }

    fn try_read<K: KernelAccess>(k: &K) -> Option<TaskStateTable> {
        let arr = k.var("task_state_array").ok()??;
        let n = k.array_len(&arr).ok()??;
        if !(3..=32).contains(&n) {
            return None;
        }
        let mut letters = Vec::new();
        for i in 0..n {
            let s = k.cstr(&k.index(&arr, i).ok()?, 32).ok()?;
            letters.push(char::from(*s.first()?));
        }
        Some(TaskStateTable { letters })
    }

    fn report_mask(&self) -> u32 {
        let bits = self.letters.len().saturating_sub(2).min(31);
        (1u32 << bits) - 1
    }
}

/// `__task_state_index()` followed by `task_index_to_char()`.
pub fn task_state_char(t: &TaskStateTable, state: u32, exit_state: u32) -> char {
    let report = t.report_mask();
    let mut s = (state | exit_state) & report;
    if state & TASK_IDLE == TASK_IDLE {
        s = report + 1;
    }
    if state & TASK_RTLOCK_WAIT != 0 || state & TASK_FROZEN != 0 {
        s = TASK_UNINTERRUPTIBLE;
    }
    // fls(): 1-based index of the highest set bit, 0 for 0.
    let idx = (32 - s.leading_zeros()) as usize;
    t.letters.get(idx).copied().unwrap_or('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected letters from include/linux/sched.h (6.1) by hand: index = fls(state & 0x7f),
    /// TASK_IDLE → 'I', exit states through exit_state.
    #[test]
    fn letters_follow_the_kernel_rules() {
        let t = TaskStateTable::default();
        assert_eq!(task_state_char(&t, 0x0, 0), 'R');
        assert_eq!(task_state_char(&t, 0x1, 0), 'S');
        assert_eq!(task_state_char(&t, 0x2, 0), 'D');
        // TASK_KILLABLE = WAKEKILL | UNINTERRUPTIBLE
        assert_eq!(task_state_char(&t, 0x102, 0), 'D');
        // TASK_STOPPED = WAKEKILL | __TASK_STOPPED
        assert_eq!(task_state_char(&t, 0x104, 0), 'T');
        assert_eq!(task_state_char(&t, 0x8, 0), 't');
        assert_eq!(task_state_char(&t, 0x80, 0x10), 'X');
        assert_eq!(task_state_char(&t, 0x80, 0x20), 'Z');
        assert_eq!(task_state_char(&t, 0x40, 0), 'P');
        assert_eq!(task_state_char(&t, 0x402, 0), 'I');
        assert_eq!(task_state_char(&t, 0x1000, 0), 'D');
        // A frozen sleeper (TASK_FROZEN kept with the saved state bits) reads D.
        assert_eq!(task_state_char(&t, 0x8001, 0), 'D');
        // Freezable sleep (TASK_FREEZABLE | TASK_INTERRUPTIBLE) is still S.
        assert_eq!(task_state_char(&t, 0x2001, 0), 'S');
    }
}
