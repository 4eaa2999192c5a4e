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

/// One `#[test]` per fixture set, each calling `check(set)`, so a failing set is named by its
/// test: `set_tests!(check_set: x86_64_6_1_kdump => "x86_64-6.1-kdump", ...)`.
#[macro_export]
macro_rules! set_tests {
    ($check:ident: $($name:ident => $set:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($set);
            }
        )*
    };
}

/// [`set_tests!`] over the kdump-captured sets, tests named after the sets.
#[macro_export]
macro_rules! kdump_set_tests {
    ($check:ident) => {
        $crate::set_tests!($check:
            x86_64_6_1_kdump => "x86_64-6.1-kdump",
            x86_64_6_1_kdump_nokaslr => "x86_64-6.1-kdump-nokaslr",
            x86_64_6_1_kdump_oops => "x86_64-6.1-kdump-oops",
            x86_64_6_1_kdump_hung => "x86_64-6.1-kdump-hung",
            aarch64_6_1_kdump => "aarch64-6.1-kdump",
        );
    };
}
