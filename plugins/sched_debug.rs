//! sched_debug: `sys/kernel/debug/sched/debug` as the live kernel would have printed it.
//!
//! The plugin reads the scheduler's state once into plain records ([`record`]), then renders them
//! as the kernel's text file ([`render`]) and as JSON. The text follows the dump's kernel: each
//! line exists when the struct member it prints exists in the dump's DWARF ([`collect`]), so a
//! 4.18 dump gets the older `/proc/sched_debug` layout, a 6.1 dump the CFS layout and a 6.12 dump
//! the EEVDF one, without reading the version string.
//!
//! What a dump cannot give exactly, because the live file reads clocks at `cat` time (`ktime`,
//! `sched_clk`, `cpu_clk`), is taken from the dump and listed in comment lines at the top when
//! `SOS_VMCORE_SCHED_DEBUG=1`; without it the file looks exactly like the kernel's.
//!
//! Research notes (field lists per version, formats, pitfalls): docs/plugins/sched_debug.md.

pub mod access;
pub mod collect;
pub mod record;
pub mod render;
pub mod state;
