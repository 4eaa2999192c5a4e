//! kernel_info
