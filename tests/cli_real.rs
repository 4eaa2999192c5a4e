//! The binary on the real fixture dumps (Debian 6.1 under QEMU), checked against the live ground
//! truth recorded before the crash (`truth.txt`: `uname -a`). Skips with one line per set when
//! the fixtures are absent (fails under `VMCORE_REQUIRE_FIXTURES=1`).

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::{check_layout, is_name, sha256sum, untar};

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

/// `uname: Linux <nodename> <release> …` from truth.txt.
fn truth_uname(dir: &Path) -> (String, String) {
    let t = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let line = t
        .lines()
        .find_map(|l| l.strip_prefix("uname: "))
        .expect("truth.txt has a uname line");
    let mut w = line.split_whitespace();
    assert_eq!(w.next(), Some("Linux"));
    (w.next().unwrap().to_string(), w.next().unwrap().to_string())
}

#[test]
fn real_dumps_become_archives_named_after_the_crashed_host() {
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let (nodename, release) = truth_uname(&dir);
        // a plain kdump, QEMU's kdump with an empty header utsname, and a filtered one (among
        // the dumps the set's recipe produces: aarch64 has no makedumpfile variants)
        for path in common::fixtures::dumps(&dir) {
            let dump = path.file_name().unwrap().to_string_lossy().to_string();
            if !(["vmcore.kdump-zlib", "qemu.kdump-zlib"].contains(&dump.as_str())
                || dump.starts_with("mdf.zlib-"))
            {
                continue;
            }
            let out = tempfile::tempdir().unwrap();
            let t = std::time::Instant::now();
            let o = Command::new(BIN)
                .arg("--vmcore")
                .arg(&path)
                .arg("--vmlinux")
                .arg(dir.join("vmlinux"))
                .arg("--tmp-dir")
                .arg(out.path())
                .args(["-z", "none", "--batch"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{set}/{dump}: {err}");
            eprintln!("{set}/{dump}: report in {:.2?}", t.elapsed());
            let archive = std::fs::read_dir(out.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "tar"))
                .expect("a .tar");
            let name = archive.file_stem().unwrap().to_str().unwrap().to_string();
            assert!(is_name(&name, &nodename, None), "{set}/{dump}: {name}");
            assert_eq!(
                std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap(),
                format!("{}\n", sha256sum(&archive))
            );
            let x = tempfile::tempdir().unwrap();
            untar(&archive, x.path());
            let m = check_layout(&x.path().join(&name));
            assert_eq!(m["nodename"], nodename.as_str(), "{set}/{dump}");
            assert_eq!(m["kernel_release"], release.as_str(), "{set}/{dump}");
            assert_eq!(m["vmlinux"]["proof"], "build-id", "{set}/{dump}");
            assert!(m["dump"]["format"].as_str().unwrap().starts_with("kdump"));
        }
    }
}
