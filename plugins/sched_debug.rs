//! sched_debug: `/sys/kernel/debug/sched/debug` as the live kernel would have printed it.
//!
//! Placeholder module root; see the submodules.

pub mod record;
pub mod render;
