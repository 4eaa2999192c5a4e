//! gpg encryption of the archive, round-tripped with gpg itself in a throwaway GNUPGHOME.
//! One test in its own binary: it sets GNUPGHOME for the process, which must not race with
//! other tests' threads. Skips with one line when gpg is not installed (fails instead under
//! `VMCORE_REQUIRE_FIXTURES=1`).

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmcore_report::app;
use vmcore_report::report::archive::{self, Encryption};

use common::kernel::Spec;
use support::*;

fn have_gpg() -> bool {
    let ok = Command::new("gpg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::fixtures::skip("gpg is not installed");
    }
    ok
}

fn gpg_decrypt(home: &Path, input: &Path, output: &Path, pass: Option<&str>) {
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback"]);
    if let Some(p) = pass {
        cmd.args(["--passphrase", p]);
    }
    let out = cmd
        .arg("-o")
        .arg(output)
        .arg("-d")
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gpg_home() -> tempfile::TempDir {
    let h = tempfile::tempdir().unwrap();
    std::fs::set_permissions(h.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    h
}

fn passphrase_round_trip(home: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["--encrypt-pass", "correct horse"]);
    assert!(!cfg.cmdline.contains("correct horse"));
    let o = run(&cfg, &Spec::default());
    assert!(o.encryption_error.is_none(), "{:?}", o.encryption_error);
    let path = o.archive.unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    assert!(
        file.starts_with("secured-sosvmcore-") && file.ends_with(".tar.xz.gpg"),
        "{file}"
    );
    // the checksum covers the .gpg; the plain archive is gone
    assert_eq!(
        std::fs::read_to_string(format!("{}.sha256", path.display())).unwrap(),
        format!("{}\n", sha256sum(&path))
    );
    let plain_name = file
        .strip_prefix("secured-")
        .unwrap()
        .strip_suffix(".gpg")
        .unwrap();
    assert!(!tmp.path().join(plain_name).exists());

    let out = tempfile::tempdir().unwrap();
    let dec = out.path().join(plain_name);
    gpg_decrypt(home, &path, &dec, Some("correct horse"));
    untar(&dec, out.path());
    let root = out.path().join(plain_name.strip_suffix(".tar.xz").unwrap());
    let m = check_tree(&root);
    assert!(!m["cmdline"].as_str().unwrap().contains("correct horse"));
    for log in ["sos_logs/sos.log", "sos_logs/ui.log"] {
        let s = std::fs::read_to_string(root.join(log)).unwrap();
        assert!(!s.contains("correct horse"), "{log} leaks the passphrase");
    }
}

fn key_round_trip_and_bad_key(home: &Path) {
    let keygen = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "vmcore-report test <test@example.invalid>",
            "default",
            "default",
            "1d",
        ])
        .output()
        .unwrap();
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );

    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(
        tmp.path(),
        &["--encrypt-key", "test@example.invalid", "-z", "gzip"],
    );
    let o = run(&cfg, &Spec::default());
    assert!(o.encryption_error.is_none(), "{:?}", o.encryption_error);
    let path = o.archive.unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    assert!(
        file.starts_with("secured-") && file.ends_with(".tar.gz.gpg"),
        "{file}"
    );
    let out = tempfile::tempdir().unwrap();
    let plain_name = file
        .strip_prefix("secured-")
        .unwrap()
        .strip_suffix(".gpg")
        .unwrap();
    let dec = out.path().join(plain_name);
    gpg_decrypt(home, &path, &dec, None);
    untar(&dec, out.path());
    check_tree(&out.path().join(plain_name.strip_suffix(".tar.gz").unwrap()));

    // a key gpg does not know: a clear error, the plain archive kept, exit code 6
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["--encrypt-key", "nobody@example.invalid"]);
    let o = run(&cfg, &Spec::default());
    let e = o.encryption_error.as_ref().expect("encryption must fail");
    assert_eq!(e.code(), "gpg-failed");
    assert!(e.to_string().contains("unencrypted archive was kept"));
    assert_eq!(o.exit_code(), app::exit::ARCHIVE);
    let path = o.archive.unwrap();
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("sosvmcore-")
    );
    assert!(path.is_file());
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("gpg"))
    );
}

fn missing_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let missing: PathBuf = tmp.path().join("nope.tar.xz");
    let e = archive::encrypt(&missing, &Encryption::Pass("x".into())).unwrap_err();
    assert_eq!(e.code(), "gpg-failed");
    assert!(!archive::encrypted_path(&missing).exists());
}

#[test]
fn gpg_encryption() {
    if !have_gpg() {
        return;
    }
    let home = gpg_home();
    // SAFETY: this binary has this single test; no other thread reads the environment
    unsafe { std::env::set_var("GNUPGHOME", home.path()) };
    passphrase_round_trip(home.path());
    key_round_trip_and_bad_key(home.path());
    missing_archive();
}
