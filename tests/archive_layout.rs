//! The archive, end to end at library level: `app::produce_report` on a kernel made from parts.
//!
//! Checked against independent tools where the system has them: `tar` lists and unpacks,
//! `sha256sum` checks the checksum file, Python's `jsonschema` validates the manifest (besides
//! the small validator in report_support, which reads the schema file itself).

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vmcore_report::app;
use vmcore_report::report::archive::{BuildDir, Compression};

use common::kernel::Spec;
use support::*;

#[test]
fn the_schema_validator_rejects_what_it_should() {
    // the validator must be able to fail, or the schema checks prove nothing
    let s = schema();
    let mut errs = Vec::new();
    check(&s, &s, &serde_json::json!({"version": 1}), "$", &mut errs);
    assert!(
        errs.iter().any(|e| e.contains("missing required cmdline")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("$.version")), "{errs:?}");
}

#[test]
fn xz_archive_has_the_sos_name_layout_order_and_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["--label", "case 42/x"]);
    let o = run(&cfg, &Spec::default());
    let path = o.archive.clone().unwrap();
    assert_eq!(path.parent().unwrap(), tmp.path());
    let file = path.file_name().unwrap().to_str().unwrap();
    let name = file.strip_suffix(".tar.xz").expect("xz by default");
    // "crashed-host_01.example.com" loses the underscore; the label its space and slash
    assert!(
        is_name(name, "crashed-host01.example.com", Some("case42x")),
        "{name}"
    );
    // xz magic
    assert_eq!(&std::fs::read(&path).unwrap()[..6], b"\xfd7zXZ\0");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let sum = std::fs::read_to_string(format!("{}.sha256", path.display())).unwrap();
    assert_eq!(sum, format!("{}\n", sha256sum(&path)));
    assert_eq!(o.checksum.as_deref(), Some(sum.trim_end()));
    assert_eq!(o.size, Some(std::fs::metadata(&path).unwrap().len()));

    let list = tar_list(&path);
    assert_eq!(list[0], format!("{name}/"));
    assert_eq!(list[1], format!("{name}/version.txt"));
    let pos = |p: &str| {
        list.iter()
            .position(|l| l == &format!("{name}/{p}"))
            .unwrap_or_else(|| panic!("{p} missing from {list:?}"))
    };
    assert!(pos("sos_reports/") < pos("sos_reports/manifest.json"));
    assert!(pos("sos_reports/manifest.json") < pos("sos_logs/"));
    assert!(pos("sos_logs/sos.log") < pos("plugins/"));
    assert!(pos("sos_logs/ui.log") < pos("plugins/uts/uname.txt"));
    assert!(pos("sos_logs/ui.log") < pos("sys/kernel/debug/sched/debug"));

    let out = tempfile::tempdir().unwrap();
    untar(&path, out.path());
    let m = check_tree(&out.path().join(name));
    assert_eq!(m["nodename"], "crashed-host_01.example.com");
    assert_eq!(m["kernel_release"], "6.1.0-test-amd64");
    assert_eq!(m["architecture"], "x86_64");
    assert_eq!(m["compression"], "xz");
    assert_eq!(m["dump"]["format"], "elf");
    assert!(m["dump"]["sha256"].is_null());
    let plugins = &m["components"]["report"]["plugins"];
    assert_eq!(plugins["uts"]["status"], "ok");
    assert_eq!(
        plugins["uts"]["files"],
        serde_json::json!(["plugins/uts/uname.txt", "sys/kernel/debug/sched/debug"])
    );
    assert_eq!(plugins["uts"]["timeout"], 300);
    assert_eq!(plugins["broken"]["status"], "skipped");
    assert_eq!(plugins["broken"]["skip_reason"], "optional");
    assert_eq!(
        m["components"]["report"]["enabled_plugins"],
        serde_json::json!(["uts"])
    );
    assert_eq!(
        m["components"]["report"]["disabled_plugins"],
        serde_json::json!(["broken"])
    );
    assert_eq!(o.exit_code(), 0);
    // the private build tree is gone; only the archive and its checksum remain
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn gzip_and_plain_tar() {
    for (flag, ext, magic) in [
        ("gzip", ".tar.gz", &b"\x1f\x8b"[..]),
        ("none", ".tar", &b""[..]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let o = run(&config(tmp.path(), &["-z", flag]), &Spec::default());
        let path = o.archive.unwrap();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let name = file
            .strip_suffix(ext)
            .unwrap_or_else(|| panic!("{file} {ext}"));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(magic));
        if flag == "none" {
            // ustar magic of the first header
            assert_eq!(&bytes[257..262], b"ustar");
        }
        let out = tempfile::tempdir().unwrap();
        untar(&path, out.path());
        let m = check_tree(&out.path().join(name));
        assert_eq!(m["compression"], flag);
        assert_eq!(
            std::fs::read_to_string(format!("{}.sha256", path.display())).unwrap(),
            format!("{}\n", sha256sum(&path))
        );
    }
}

#[test]
fn build_leaves_a_private_directory_and_no_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&config(tmp.path(), &["--build"]), &Spec::default());
    assert!(o.archive.is_none());
    let dir = o.build_dir.unwrap();
    assert!(dir.starts_with(tmp.path()));
    let name = dir.file_name().unwrap().to_str().unwrap();
    assert!(is_name(name, "crashed-host01.example.com", None), "{name}");
    check_tree(&dir);
    // nothing packed
    assert!(
        std::fs::read_dir(tmp.path())
            .unwrap()
            .all(|e| e.unwrap().path().is_dir())
    );
    fn walk(p: &Path) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            if e.file_type().unwrap().is_dir() {
                assert_eq!(mode, 0o700, "{}", e.path().display());
                walk(&e.path());
            } else {
                assert_eq!(mode, 0o600, "{}", e.path().display());
            }
        }
    }
    walk(dir.parent().unwrap());
    assert_eq!(
        std::fs::metadata(dir.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn failed_plugins_give_their_exit_code_and_are_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&config(tmp.path(), &["-e", "broken"]), &Spec::default());
    assert_eq!(o.failed_plugins, ["broken"]);
    assert_eq!(o.exit_code(), app::exit::PLUGINS_FAILED);
    let b = &o.manifest.components.report.plugins["broken"];
    assert_eq!(b.errors[0].code, "test-failure");
    assert!(o.archive.unwrap().is_file());
}

#[test]
fn nodename_falls_back_to_the_header_then_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = Spec {
        kernel_nodename: None,
        header_nodename: Some("hdr host".into()),
        ..Spec::default()
    };
    let o = run(&config(tmp.path(), &["--build"]), &spec);
    let name = o
        .build_dir
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(is_name(&name, "hdrhost", None), "{name}");
    assert_eq!(o.manifest.dump.format, "kdump");

    let spec = Spec {
        kernel_nodename: None,
        header_nodename: Some(String::new()),
        ..Spec::default()
    };
    let o = run(&config(tmp.path(), &["--build"]), &spec);
    let name = o
        .build_dir
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(is_name(&name, "unknown", None), "{name}");
}

#[test]
fn bad_archive_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(BuildDir::create(tmp.path(), "a/b").is_err());
    assert!(BuildDir::create(tmp.path(), "..").is_err());
    let b = BuildDir::create(tmp.path(), "sosvmcore-x-2026-01-01-abcdefg").unwrap();
    for bad in ["../escape", "/etc/passwd", "a//b", "plugins/./x", ""] {
        let e = b.write_file(bad, b"x").unwrap_err();
        assert_eq!(e.code(), "bad-path", "{bad}");
    }
    assert!(!tmp.path().join("escape").exists());
    b.write_file("plugins/p/deep/er/file", b"ok").unwrap();
    assert!(b.dir().join("plugins/p/deep/er/file").is_file());
}

#[test]
fn deterministic_packing_fixes_mtimes_and_owners() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BuildDir::create(tmp.path(), "sosvmcore-x-2026-01-01-abcdefg").unwrap();
    b.write_file("plugins/p/z.txt", b"z").unwrap();
    b.write_file("plugins/p/a.txt", b"a").unwrap();
    let p = b
        .pack_with(tmp.path(), Compression::None, Some(1_700_000_000))
        .unwrap();
    let mut ar = tar::Archive::new(std::fs::File::open(&p).unwrap());
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        names.push(e.path().unwrap().display().to_string());
    }
    let r = "sosvmcore-x-2026-01-01-abcdefg";
    assert_eq!(
        names,
        [
            format!("{r}/"),
            format!("{r}/version.txt"),
            format!("{r}/sos_reports/"),
            format!("{r}/sos_logs/"),
            format!("{r}/plugins/"),
            format!("{r}/plugins/p/"),
            format!("{r}/plugins/p/a.txt"),
            format!("{r}/plugins/p/z.txt"),
        ]
    );
}

/// sos's root symlinks (`ps -> sos_commands/process/ps_auxwwwm`): stored as symlinks in the
/// tree and the tar, relative, and never pointing above the archive root.
#[test]
fn symlinks_stay_inside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BuildDir::create(tmp.path(), "sosvmcore-x-2026-01-01-abcdefg").unwrap();
    b.write_file("sos_commands/process/ps_auxwwwm", b"USER\n")
        .unwrap();
    b.write_symlink("ps", "sos_commands/process/ps_auxwwwm")
        .unwrap();
    b.write_symlink("a/b/up", "../../version.txt").unwrap();
    for (path, target) in [
        ("x", "../outside"),
        ("a/y", "../../outside"),
        ("z", "/etc/passwd"),
        ("../w", "version.txt"),
    ] {
        let e = b.write_symlink(path, target).unwrap_err();
        assert_eq!(e.code(), "bad-path", "{path} -> {target}");
    }
    assert_eq!(
        std::fs::read(b.dir().join("ps")).unwrap(),
        b"USER\n",
        "the link resolves inside the tree"
    );
    let p = b
        .pack_with(tmp.path(), Compression::None, Some(1_700_000_000))
        .unwrap();
    let mut ar = tar::Archive::new(std::fs::File::open(&p).unwrap());
    let links: Vec<(String, String)> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type() == tar::EntryType::Symlink)
        .map(|e| {
            (
                e.path().unwrap().display().to_string(),
                e.link_name().unwrap().unwrap().display().to_string(),
            )
        })
        .collect();
    let r = "sosvmcore-x-2026-01-01-abcdefg";
    assert_eq!(
        links,
        [
            (format!("{r}/a/b/up"), "../../version.txt".to_string()),
            (
                format!("{r}/ps"),
                "sos_commands/process/ps_auxwwwm".to_string()
            ),
        ]
    );
}
