//! The plugins and their static registry.
//!
//! Every plugin is one file in this directory, implementing
//! [`Plugin`](crate::report::plugin::Plugin), and one line in [`all`]. The order of [`all`] is the
//! order plugins run in. See `docs/plugin-guide.md` for the checklist.
//!
//! Test-only plugins (`testing.rs`) exist only with the `test-plugins` cargo feature, so a normal
//! build never ships them.

use crate::report::plugin::Plugin;

pub mod backtrace;
pub mod dmesg;
pub mod kernel_info;
pub mod meminfo;
pub mod modules;
pub mod sched_debug;
pub mod sys;
pub mod tasks;
#[cfg(feature = "test-plugins")]
pub mod testing;

/// Every plugin of this build, in run order.
pub fn all() -> Vec<&'static dyn Plugin> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn Plugin> = vec![
        // one line per plugin: &name::NamePlugin,
        &kernel_info::KernelInfoPlugin,
        &dmesg::DmesgPlugin,
        &sched_debug::SchedDebugPlugin,
        &sys::SysPlugin,
        &tasks::TasksPlugin,
        &modules::ModulesPlugin,
        &meminfo::MeminfoPlugin,
        &backtrace::BacktracePlugin,
    ];
    #[cfg(feature = "test-plugins")]
    v.extend_from_slice(testing::ALL);
    v
}
