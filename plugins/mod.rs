//! The plugins and their static registry.

pub mod kernel_info;
pub mod sched_debug;
