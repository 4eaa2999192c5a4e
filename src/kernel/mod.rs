//! The typed kernel view plugins use: variables by name, member paths, lists, per-CPU data.

use std::sync::Arc;

use crate::arch::AddressSpace;
use crate::debuginfo::TypeSource;
use crate::dump::DumpInfo;

/// Everything a plugin may look at: the kernel's address space, its types and symbols, and the
/// dump's metadata.
pub struct Kernel {
    pub space: AddressSpace,
    pub types: Arc<dyn TypeSource>,
    pub info: DumpInfo,
}
