//! Access to the real-vmcore fixture sets built by `fixtures/build.sh`.
//!
//! The cache lives outside the repository: `$VMCORE_FIXTURES`, else
//! `~/.cache/vmcore-report/fixtures`. Each set is a directory (`x86_64-6.1-l5`, …) holding
//! `vmlinux`, the dumps (`vmcore.elf`, `vmcore.kdump-zlib`, `qemu.kdump-zlib`, `mdf.*`; the kdump
//! sets `vmcore.raw`, a copy of a capture kernel's /proc/vmcore, and `mdf.E-d31`), `truth.txt`
//! and `console.log`. Tests that need a set call [`set`] and return early when it is
//! absent; the skip is printed as one clear line.

use std::path::PathBuf;

/// Every dump file name a set may hold, in the order tests visit them.
pub const DUMP_FILES: &[&str] = &[
    "vmcore.elf",
    "vmcore.kdump-zlib",
    "qemu.kdump-zlib",
    "mdf.zlib-d31",
    "mdf.lzo-d31",
    "mdf.raw-d31",
    "mdf.elf-d31",
    "mdf.flat-zlib-d31",
    "vmcore.raw",
    "mdf.E-d31",
];

/// The fixture sets `fixtures/build.sh` builds: Debian 12's 6.1 on x86_64 with 5- and 4-level
/// paging and on aarch64, two 6.1 workload variations (4 vCPUs with a hung task; an oops),
/// Debian 13's 6.12 (EEVDF), and two 6.1 guests captured by kdump (a capture kernel's
/// /proc/vmcore and makedumpfile's output): the kernel-text PT_LOAD sharing its start with a RAM
/// PT_LOAD, and (nokaslr) lying inside one.
pub const SETS: &[&str] = &[
    "x86_64-6.1-l5",
    "x86_64-6.1-l4",
    "aarch64-6.1",
    "x86_64-6.1-smp4-hung",
    "x86_64-6.1-oops",
    "x86_64-6.12",
    "x86_64-6.1-kdump",
    "x86_64-6.1-kdump-nokaslr",
];

pub fn root() -> PathBuf {
    if let Some(p) = std::env::var_os("VMCORE_FIXTURES") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/vmcore-report/fixtures")
}

/// The directory of a complete fixture set, or `None` (after printing why) when it is absent.
/// With `VMCORE_REQUIRE_FIXTURES=1` (set by `.ci/run`) an absent set is a test failure instead.
pub fn set(name: &str) -> Option<PathBuf> {
    let dir = root().join(name);
    if dir.join("vmlinux").exists() && dir.join("truth.txt").exists() {
        return Some(dir);
    }
    if std::env::var("VMCORE_REQUIRE_FIXTURES").as_deref() == Ok("1") {
        panic!(
            "fixture set {name} is required but absent from {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: real fixture set {name} not found under {} (build it with fixtures/build.sh)",
        root().display()
    );
    None
}

/// The dumps of a set that exist (sets differ: aarch64 has no makedumpfile variants).
pub fn dumps(dir: &std::path::Path) -> Vec<PathBuf> {
    DUMP_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}
