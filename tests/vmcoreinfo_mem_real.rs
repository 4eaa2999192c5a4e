//! Dumps without VMCOREINFO, made from the real fixtures: a copy of each set's ELF dump with its
//! VMCOREINFO note renamed (as a guest without QEMU's vmcoreinfo device is dumped), and of a
//! kdump-compressed dump with the sub-header's `offset_vmcoreinfo`/`size_vmcoreinfo` zeroed and
//! the note renamed among the header's ELF notes. With the vmlinux, the report must be the one the
//! intact dump gives, file for file (timestamps, durations and the VMCOREINFO source aside): the
//! text is found in memory (`src/dump/vmcoreinfo_mem.rs`).
//!
//! The copies are patched here from the formats' specifications, without the crate's readers:
//! ELF64 (`e_phoff` @32, `e_phnum` @56, `PT_NOTE` = 4, `Elf64_Nhdr`) and makedumpfile's
//! `disk_dump_header` (`block_size` @428) and `kdump_sub_header` (at `block_size`:
//! `offset_vmcoreinfo`/`size_vmcoreinfo` @32/@40, `offset_note`/`size_note` @48/@56).

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

fn u16_at(f: &File, off: u64) -> u16 {
    let mut b = [0u8; 2];
    f.read_exact_at(&mut b, off).unwrap();
    u16::from_le_bytes(b)
}
fn u32_at(f: &File, off: u64) -> u32 {
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, off).unwrap();
    u32::from_le_bytes(b)
}
fn u64_at(f: &File, off: u64) -> u64 {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, off).unwrap();
    u64::from_le_bytes(b)
}

/// Renames every `VMCOREINFO` note in `[off, off + len)` to `VMCOREINFX`; returns how many.
fn rename_notes(f: &File, off: u64, len: u64) -> usize {
    let mut n = 0;
    let (mut at, end) = (off, off + len);
    while at + 12 <= end {
        let (namesz, descsz) = (u32_at(f, at) as u64, u32_at(f, at + 4) as u64);
        let name_at = at + 12;
        if namesz == 11 {
            let mut name = [0u8; 11];
            f.read_exact_at(&mut name, name_at).unwrap();
            if &name == b"VMCOREINFO\0" {
                f.write_all_at(b"VMCOREINFX", name_at).unwrap();
                n += 1;
            }
        }
        at = name_at + namesz.div_ceil(4) * 4 + descsz.div_ceil(4) * 4;
    }
    n
}

/// A writable copy of `src` at `dst` with its VMCOREINFO removed as the module docs say.
fn strip_copy(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
    let mut perm = std::fs::metadata(dst).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(dst, perm).unwrap();
    let f = File::options().read(true).write(true).open(dst).unwrap();
    let mut magic = [0u8; 8];
    f.read_exact_at(&mut magic, 0).unwrap();
    let renamed = if magic.starts_with(b"\x7fELF") {
        let (phoff, phentsize, phnum) = (u64_at(&f, 32), u16_at(&f, 54), u16_at(&f, 56));
        assert_ne!(
            phnum,
            0xffff,
            "{}: PN_XNUM not expected here",
            src.display()
        );
        (0..phnum as u64)
            .map(|i| phoff + i * phentsize as u64)
            .filter(|ph| u32_at(&f, *ph) == 4)
            .map(|ph| rename_notes(&f, u64_at(&f, ph + 8), u64_at(&f, ph + 32)))
            .sum()
    } else {
        assert_eq!(&magic, b"KDUMP   ", "{}", src.display());
        let version = u32_at(&f, 8);
        let sub = u32_at(&f, 428) as u64;
        assert!(version >= 4, "{}: header_version {version}", src.display());
        f.write_all_at(&[0u8; 16], sub + 32).unwrap();
        1 + rename_notes(&f, u64_at(&f, sub + 48), u64_at(&f, sub + 56))
    };
    assert!(renamed >= 1, "{}: no VMCOREINFO to remove", src.display());
}

/// Runs the binary in `dir` on `dir/vmcore` (so both runs name the dump alike) with the set's
/// vmlinux; returns the exit code and the archive's directory.
/// Without a vmlinux (`None`), from the dump alone (`--dump-only`), into `out-dump-only`.
fn report(dir: &Path, vmlinux: Option<&Path>) -> (i32, PathBuf) {
    let sub = if vmlinux.is_some() {
        "out"
    } else {
        "out-dump-only"
    };
    let out = dir.join(sub);
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(["--vmcore", "vmcore"]);
    match vmlinux {
        Some(v) => cmd.arg("--vmlinux").arg(v),
        None => cmd.arg("--dump-only"),
    };
    let o = cmd
        .args(["--tmp-dir", sub, "--build", "--batch"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code().unwrap_or(-1);
    let root = find_archive(&out).unwrap_or_else(|| panic!("no archive ({code}): {err}"));
    (code, root)
}

fn find_archive(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.join("sos_reports").is_dir() {
            return Some(p);
        }
        if p.is_dir()
            && let Some(r) = find_archive(&p)
        {
            return Some(r);
        }
    }
    None
}

/// Every file of an archive by relative path, minus the logs and the HTML page (they hold the
/// run's times); the manifest without times, durations and the command line, `sos.txt` without
/// its duration lines. The manifest's `dump.vmcoreinfo` is returned apart.
fn contents(root: &Path) -> (BTreeMap<String, Vec<u8>>, serde_json::Value) {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(root, &p, out);
            } else if !(rel.starts_with("sos_logs/") || rel == "sos_reports/sos.html") {
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    fn scrub(v: &mut serde_json::Value) {
        const TIMES: &[&str] = &[
            "start_time",
            "end_time",
            "run_time",
            "run_time_s",
            "setup_start",
            "setup_end",
            "setup_time",
            "duration_s",
            "cmdline",
        ];
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !TIMES.contains(&k.as_str()));
                m.values_mut().for_each(scrub);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    let m = files.get_mut("sos_reports/manifest.json").unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(m).unwrap();
    let source = json["dump"]
        .as_object_mut()
        .unwrap()
        .remove("vmcoreinfo")
        .unwrap();
    scrub(&mut json);
    *m = serde_json::to_vec_pretty(&json).unwrap();
    if let Some(t) = files.get_mut("sos_reports/sos.txt") {
        let s = String::from_utf8_lossy(t);
        *t = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("duration:"))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
    }
    (files, source)
}

/// The set's ELF dump and one kdump-compressed dump (plain `KDUMP`, not flattened), among those
/// its recipe produces.
fn dumps_of(dir: &Path) -> Vec<PathBuf> {
    let all = common::fixtures::dumps(dir);
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| all.iter().find(|p| p.file_name().is_some_and(|f| f == *n)))
            .cloned()
    };
    [
        pick(&["vmcore.elf", "vmcore.raw"]),
        pick(&["qemu.kdump-zlib", "mdf.zlib-d31"]),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn dumps_without_vmcoreinfo_give_the_intact_dumps_report() {
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        if set.starts_with("s390x-") {
            // QEMU's s390x dumps carry no VMCOREINFO note to remove: every report on them reads
            // it from memory already (tests/s390x_lowcore.rs, the real-set tests)
            eprintln!("NOTE: {set}: its dumps have no VMCOREINFO note; nothing to remove");
            continue;
        }
        let vmlinux = dir.join("vmlinux");
        for path in dumps_of(&dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let ctx = format!("{set}/{name}");
            let intact = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(&path, intact.path().join("vmcore")).unwrap();
            let stripped = tempfile::tempdir().unwrap();
            strip_copy(&path, &stripped.path().join("vmcore"));

            for with_vmlinux in [true, false] {
                let vmlinux = with_vmlinux.then_some(vmlinux.as_path());
                let ctx = format!(
                    "{ctx} ({})",
                    if with_vmlinux {
                        "with the vmlinux"
                    } else {
                        "dump-only"
                    }
                );
                let (code_a, root_a) = report(intact.path(), vmlinux);
                let t = std::time::Instant::now();
                let (code_b, root_b) = report(stripped.path(), vmlinux);
                eprintln!("{ctx}: report without VMCOREINFO in {:.2?}", t.elapsed());
                assert_eq!(code_a, code_b, "{ctx}: exit codes");
                // the manifest naming a VMCOREINFO found in memory is valid against the schema
                let raw = std::fs::read(root_b.join("sos_reports/manifest.json")).unwrap();
                support::validate_against_schema(&serde_json::from_slice(&raw).unwrap());
                let (files_a, source_a) = contents(&root_a);
                let (files_b, source_b) = contents(&root_b);
                assert_eq!(source_a["from"], "note", "{ctx}");
                assert_eq!(source_b["from"], "memory", "{ctx}: {source_b}");
                eprintln!("{ctx}: {source_b}");
                assert_eq!(
                    files_a.keys().collect::<Vec<_>>(),
                    files_b.keys().collect::<Vec<_>>(),
                    "{ctx}: the archives hold different files"
                );
                for (rel, a) in &files_a {
                    if a != &files_b[rel] {
                        panic!(
                            "{ctx}: {rel} differs:\n--- intact\n{}\n--- without VMCOREINFO\n{}",
                            String::from_utf8_lossy(a),
                            String::from_utf8_lossy(&files_b[rel])
                        );
                    }
                }
                // the archive names the crashed host alike (the random suffix aside)
                let stem = |p: &Path| {
                    let n = p.file_name().unwrap().to_string_lossy().into_owned();
                    n[..n.rfind('-').unwrap()].to_string()
                };
                assert_eq!(stem(&root_a), stem(&root_b), "{ctx}");
            }
        }
    }
}
