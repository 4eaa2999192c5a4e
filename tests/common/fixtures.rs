//! Access to the real-vmcore fixture sets built by `fixtures/build.sh`.
//!
//! The cache lives outside the repository: `$VMCORE_FIXTURES`, else
//! `~/.cache/vmcore-report/fixtures`. Each set is a directory (`x86_64-6.1-l5`, …) holding
//! `vmlinux`, the dumps (`vmcore.elf`, `vmcore.kdump-zlib`, `qemu.kdump-zlib`, `mdf.*`; the kdump
//! sets `vmcore.raw`, a copy of a capture kernel's /proc/vmcore, and makedumpfile's output made in
//! the capture kernel), `truth.txt`, `console.log` and `drgn/` (drgn's reading of `vmcore.elf`, or
//! of `vmcore.raw` in a kdump set: the independent oracle for values, [`drgn_oracle`]). Tests that
//! need a set call [`set`] and return early when it is
//! absent; the skip is printed as one clear line.
//!
//! With `VMCORE_REQUIRE_FIXTURES=1` (set by `.ci/run`) nothing a real-fixture or tool-dependent
//! test needs may be missing: an absent set, a dump format the set's recipe produces, a drgn
//! output file, gpg, Python's jsonschema, a VMCOREINFO entry. Each such case goes through
//! [`skip`], which fails the test there instead of printing and passing.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// QEMU's dumps, in every set QEMU dumped.
pub const QEMU_DUMPS: &[&str] = &["vmcore.elf", "vmcore.kdump-zlib", "qemu.kdump-zlib"];

/// makedumpfile's output formats: a set holds `mdf.<format>-d<level>` for each.
pub const MDF_FORMATS: &[&str] = &["zlib", "lzo", "raw", "elf", "flat-zlib"];

/// What a kdump-captured set holds: the capture kernel's `/proc/vmcore` copied raw, and
/// makedumpfile's `-E`, `-c` and `-l` output at dump level 31, all made in the capture kernel
/// (`kformats` in `set_params` of `fixtures/build.sh`); the oops and hung-task sets leave out
/// `-E`, the same ELF layout as `vmcore.raw`.
pub fn kdump_dumps(set: &str) -> &'static [&'static str] {
    match set {
        "x86_64-6.1-kdump-oops" | "x86_64-6.1-kdump-hung" | "aarch64-6.1-kdump" => {
            &["vmcore.raw", "mdf.zlib-d31", "mdf.lzo-d31"]
        }
        _ => &["vmcore.raw", "mdf.E-d31", "mdf.zlib-d31", "mdf.lzo-d31"],
    }
}

/// Whether a set was captured by kdump (a capture kernel's /proc/vmcore) rather than by QEMU.
pub fn is_kdump_set(set: &str) -> bool {
    set.contains("-kdump")
}

/// A set's workload and crash path (`fixtures/make-initramfs.sh`): `base` (sysrq), `busy`
/// (hung-task panic), `oops`; its `profile=` in `set.info`, with the kdump capture taken off
/// (`kdump` runs base's, `kdump-oops` oops's, `kdump-busy` busy's).
pub fn workload(dir: &Path) -> String {
    let info = std::fs::read_to_string(dir.join("set.info")).unwrap_or_default();
    let profile = info
        .lines()
        .find_map(|l| l.strip_prefix("profile="))
        .expect("set.info names the profile");
    match profile {
        "kdump" => "base",
        p => p.strip_prefix("kdump-").unwrap_or(p),
    }
    .to_string()
}

/// The fixture sets `fixtures/build.sh` builds: Debian 12's 6.1 on x86_64 with 5- and 4-level
/// paging and on aarch64, two 6.1 workload variations (4 vCPUs with a hung task; an oops),
/// Debian 13's 6.12 (EEVDF), and four 6.1 guests captured by kdump (a capture kernel's
/// /proc/vmcore and makedumpfile's output): the kernel-text PT_LOAD sharing its start with a RAM
/// PT_LOAD, and (nokaslr) lying inside one, with a sysrq panic; an oops and a hung-task panic;
/// and arm64's (kexec_load: kexec-tools' own crash headers, makedumpfile run on arm64);
/// Debian 11's 5.10 on x86_64 and aarch64 (the kernel before the `__state` rename and the
/// debugfs sched_debug, with the pre-6.4 ORC format); Debian 12's 6.1 and Debian 13's 6.12 on
/// s390x (no VMCOREINFO note: read from the kernel's memory; no drgn oracle, see
/// [`has_drgn_oracle`]).
pub const SETS: &[&str] = &[
    "x86_64-6.1-l5",
    "x86_64-6.1-l4",
    "aarch64-6.1",
    "x86_64-6.1-smp4-hung",
    "x86_64-6.1-oops",
    "x86_64-6.12",
    "x86_64-6.1-kdump",
    "x86_64-6.1-kdump-nokaslr",
    "x86_64-6.1-kdump-oops",
    "x86_64-6.1-kdump-hung",
    "aarch64-6.1-kdump",
    "x86_64-5.10",
    "aarch64-5.10",
    "s390x-6.1",
    "s390x-6.12",
];

/// Whether a set has drgn's reading (`drgn/`) as an oracle: `drgn=no` in its recipe
/// (`set_params` in `fixtures/build.sh`) says drgn cannot read its dumps. drgn 0.3.0 refuses
/// the s390x QEMU dumps outright ("core file is missing NT_AUXV"), so the s390x sets are
/// checked against their live truth (`truth.txt`) only; [`drgn_oracle`] says so for each
/// comparison it cannot make, under `VMCORE_REQUIRE_FIXTURES=1` too.
pub fn has_drgn_oracle(set: &str) -> bool {
    !set.starts_with("s390x-")
}

/// makedumpfile's dump level in a set's recipe (`mdf_level` in `set_params` of
/// `fixtures/build.sh`), `None` for a set without makedumpfile variants (`mdf=none`).
pub fn mdf_level(set: &str) -> Option<u32> {
    match set {
        // Debian's makedumpfile runs on its host's architecture only
        "aarch64-6.1" | "aarch64-5.10" | "s390x-6.1" | "s390x-6.12" => None,
        "x86_64-6.12" => Some(23),
        _ => Some(31),
    }
}

/// The dump files `fixtures/build.sh` writes for a set, in the order tests visit them: a kdump
/// set's [`kdump_dumps`]; else QEMU's three, then the five makedumpfile variants where its recipe asks for them (`mdf=required` or
/// `optional`).
pub fn expected_dumps(set: &str) -> Vec<String> {
    if is_kdump_set(set) {
        return kdump_dumps(set).iter().map(|s| s.to_string()).collect();
    }
    let mut out: Vec<String> = QEMU_DUMPS.iter().map(|s| s.to_string()).collect();
    if let Some(level) = mdf_level(set) {
        out.extend(MDF_FORMATS.iter().map(|f| format!("mdf.{f}-d{level}")));
    }
    out
}

/// A set's damaged dumps (`mdf_lossy` in `fixtures/build.sh`): makedumpfile files made at a dump
/// level where it drops pages the kernel was using. `x86_64-6.12`'s `mdf.zlib-d31`: makedumpfile
/// 1.7.2 takes some 6.10+ slab pages (task_structs among them) for user pages. Only the tests
/// that assert what is provable for the very file (the task enumeration) read them.
pub fn lossy_dumps(dir: &Path) -> Vec<PathBuf> {
    let set = dir.file_name().unwrap_or_default().to_string_lossy();
    let names: &[&str] = match &*set {
        "x86_64-6.12" => &["mdf.zlib-d31"],
        _ => &[],
    };
    let mut out = Vec::new();
    for f in names {
        let p = dir.join(f);
        if p.exists() {
            out.push(p);
        } else {
            skip(format_args!(
                "{set} lacks its damaged dump {f} (see its set.info)"
            ));
        }
    }
    out
}

/// Whether every real fixture and test tool is required (`VMCORE_REQUIRE_FIXTURES=1`).
pub fn required() -> bool {
    std::env::var("VMCORE_REQUIRE_FIXTURES").as_deref() == Ok("1")
}

/// A check that cannot run here for want of `why`: prints `SKIP: why` and returns, so the caller
/// goes on without it, or, under `VMCORE_REQUIRE_FIXTURES=1`, fails the test with `why`.
#[track_caller]
pub fn skip(why: impl Display) {
    if required() {
        panic!("VMCORE_REQUIRE_FIXTURES=1 and {why}");
    }
    eprintln!("SKIP: {why}");
}

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
    skip(format_args!(
        "real fixture set {name} not found under {} (build it with fixtures/build.sh)",
        root().display()
    ));
    None
}

/// The dumps of a set its recipe produces ([`expected_dumps`]); one that is missing goes
/// through [`skip`].
pub fn dumps(dir: &Path) -> Vec<PathBuf> {
    let set = dir.file_name().unwrap_or_default().to_string_lossy();
    let mut out = Vec::new();
    for f in expected_dumps(&set) {
        let p = dir.join(&f);
        if p.exists() {
            out.push(p);
        } else {
            skip(format_args!(
                "{set} lacks its dump {f} (see its set.info and build.log)"
            ));
        }
    }
    out
}

/// drgn's reading of a set's `vmcore.elf`: `<set>/drgn/<file>`, written by `fixtures/peer-drgn.py`
/// at build time (`layouts.txt`, `sched.txt`, ...), or `None` through [`skip`] when absent (drgn
/// not installed, or output of an older peer-drgn.py: `fixtures/build.sh` reruns it). For a set
/// without the oracle by recipe ([`has_drgn_oracle`]) `None` with a `NOTE:` line naming the
/// comparison left to truth.txt, never a failure.
pub fn drgn_oracle(dir: &Path, file: &str) -> Option<String> {
    let set = dir.file_name().unwrap_or_default().to_string_lossy();
    if !has_drgn_oracle(&set) {
        eprintln!(
            "NOTE: {set} has no drgn oracle (drgn cannot read its dumps): drgn/{file} not \
             compared; this set is checked against its truth.txt only"
        );
        return None;
    }
    let p = dir.join("drgn").join(file);
    match std::fs::read_to_string(&p) {
        Ok(text) => Some(text),
        Err(e) => {
            skip(format_args!(
                "no drgn oracle {}: {e} (run fixtures/build.sh with drgn installed)",
                p.display()
            ));
            None
        }
    }
}
