//! The binary, for everything that needs no readable dump: help, version, listing plugins,
//! usage errors and their exit codes, and an unreadable dump.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOSENCRYPTKEY")
        .env_remove("SOSENCRYPTPASS")
        .output()
        .expect("run vmcore-report")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_every_option_and_the_exit_codes() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    for opt in [
        "--vmcore",
        "--vmlinux",
        "--debuginfo-dir",
        "--force-vmlinux",
        "--only-plugins",
        "--enable-plugins",
        "--skip-plugins",
        "--experimental",
        "--list-plugins",
        "--plugin-option",
        "--label",
        "--build",
        "--tmp-dir",
        "--compression-type",
        "--encrypt-key",
        "--encrypt-pass",
        "--quiet",
        "--verbose",
        "--plugin-timeout",
        "--batch",
        "--sha256-dump",
        "--version",
    ] {
        assert!(out.contains(opt), "--help lacks {opt}:\n{out}");
    }
    assert!(out.contains("Exit codes"), "{out}");
    let codes = out.split("Exit codes").nth(1).unwrap_or("");
    for code in ["0 ", "5 ", "7 ", "8 ", "130/143"] {
        assert!(
            codes.contains(code),
            "--help lacks exit code {code}:\n{out}"
        );
    }
}

#[test]
fn version_prints_name_and_version() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o.stdout).trim(),
        format!("vmcore-report {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_dump_is_required_unless_listing() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--vmcore"), "{}", text(&o.stderr));
}

#[test]
fn list_plugins_without_a_dump() {
    let o = run(&["-l"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("The following options are available for ALL plugins:"),
        "{out}"
    );
    assert!(out.contains("timeout"), "{out}");
    assert!(out.contains(" 300 "), "default timeout shown: {out}");
    #[cfg(feature = "test-plugins")]
    {
        // test plugins are optional: listed as disabled with their reason and options
        assert!(
            out.contains("The following plugins are currently disabled:"),
            "{out}"
        );
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("test_fail "))
            .unwrap_or_else(|| panic!("test_fail not listed: {out}"));
        assert!(line.contains("optional"), "{line}");
        assert!(out.contains("test_sleep.ms"), "{out}");
        // -e moves it to the enabled list
        let o = run(&["-l", "-e", "test_fail"]);
        let out = text(&o.stdout);
        let enabled = out
            .split("The following plugins are currently disabled:")
            .next()
            .unwrap();
        assert!(enabled.contains("test_fail"), "{out}");
    }
}

#[test]
fn unknown_plugin_names_are_usage_errors_with_only_and_enable() {
    for flag in [
        "-o",
        "-e",
        "--plugins",
        "--only-plugins",
        "--enable-plugins",
    ] {
        let o = run(&["-l", flag, "no_such_plugin"]);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        let err = text(&o.stderr);
        assert!(err.contains("no_such_plugin"), "{flag}: {err}");
        assert!(err.contains("known plugins"), "{flag}: {err}");
    }
    // with -n it is a warning only
    let o = run(&["-l", "-n", "no_such_plugin"]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("no_such_plugin"),
        "{err}"
    );
}

#[test]
fn bad_plugin_options_are_usage_errors() {
    let o = run(&["-l", "-k", "nodot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("PLUGIN.OPTION"),
        "{}",
        text(&o.stderr)
    );
    #[cfg(feature = "test-plugins")]
    {
        let o = run(&["-l", "-k", "test_sleep.nosuch=1"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains("no such option"),
            "{}",
            text(&o.stderr)
        );
        let o = run(&["-l", "-k", "test_sleep.ms=lots"]);
        assert_eq!(o.status.code(), Some(2));
    }
}

#[test]
fn conflicting_options_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_str().unwrap();
    for args in [
        vec![
            "--vmcore",
            "x",
            "--build",
            "--encrypt-pass",
            "p",
            "--tmp-dir",
            t,
        ],
        vec![
            "--vmcore",
            "x",
            "--build",
            "--encrypt-key",
            "k",
            "--tmp-dir",
            t,
        ],
        vec![
            "--vmcore",
            "x",
            "--encrypt-key",
            "k",
            "--encrypt-pass",
            "p",
            "--tmp-dir",
            t,
        ],
        vec!["--vmcore", "x", "-z", "bzip2", "--tmp-dir", t],
        vec!["--vmcore", "x", "--tmp-dir", "/nonexistent/dir"],
        vec!["--vmcore", "x", "-q", "-v", "--tmp-dir", t],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn a_file_that_is_not_a_dump_gives_the_dump_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("notes.txt");
    std::fs::write(&f, "this is not a vmcore\n".repeat(100)).unwrap();
    let o = run(&[
        "--vmcore",
        f.to_str().unwrap(),
        "--tmp-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("cannot read the dump"), "{err}");
    // nothing left behind in the tmp dir but the input
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

    let missing = tmp.path().join("missing");
    let o = run(&[
        "--vmcore",
        missing.to_str().unwrap(),
        "--tmp-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

#[test]
fn quiet_hides_everything_but_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[
        "-q",
        "--vmcore",
        "/nonexistent/vmcore",
        "--tmp-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
    assert!(text(&o.stderr).starts_with("error:"), "{}", text(&o.stderr));
}
