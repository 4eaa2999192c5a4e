//! Shared test support: synthetic input builders (written independently of the parsers, in the
//! style of minidump-synth) and access to the real fixtures.
#![allow(dead_code)]

pub mod dwarf;
pub mod fake_kernel;
pub mod fixtures;
pub mod fp_arch;
pub mod kernel;
pub mod orc;
pub mod pagetable;
pub mod plugin_run;
pub mod printk;
pub mod stackmem;
pub mod stacks;
pub mod synthkernel;
pub mod vmcore;
