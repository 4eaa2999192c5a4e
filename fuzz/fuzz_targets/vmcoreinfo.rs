//! Fuzzes the VMCOREINFO text parser and the architecture guess built on it.
#![no_main]

use vmcore_report::dump::{VmcoreInfo, notes};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let vi = VmcoreInfo::parse(&String::from_utf8_lossy(data));
    let _ = notes::arch_from_vmcoreinfo(&vi);
});
