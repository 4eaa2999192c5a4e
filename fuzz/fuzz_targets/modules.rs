//! Fuzzes the module list reader (plugins/modules/collect.rs over the kernel view's salvaging
//! list walk, `list_salvaged`) and the `/proc/modules` and `lsmod` renderers.
//!
//! The first byte picks the kernel's shape (`modules_kernel::Shape`: the 6.4+ `mem[]` layout or
//! the `core_layout` one, with or without module unloading); the rest is the kernel's memory,
//! holding the `modules` list head, `taint_flags[]` and whatever modules, `module_use` entries
//! and strings the input lays out, every pointer the input's own.
#![no_main]

#[path = "modules_kernel.rs"]
mod modules_kernel;

use vmcore_report::plugins::modules::collect::collect;
use vmcore_report::plugins::modules::render::{lsmod, proc_modules};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let kernel = modules_kernel::kernel(mode, rest.to_vec());
    let c = collect(&kernel.access());
    if let Some(m) = &c.modules {
        // one line per module at most, whatever the names hold
        let text = proc_modules(m);
        assert!(text.matches('\n').count() <= m.modules.len());
        let _ = lsmod(m);
    }
});
