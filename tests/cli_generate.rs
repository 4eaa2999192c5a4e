//! `--generate`: the man page and the shell completions come from the same command definition
//! as `--help`, so every option `--help` lists must be in each, and each must be valid for the
//! program that reads it (groff for the man page, `bash -n`, `zsh -n`, `fish -n`; `.ci/run`
//! installs them; without them the check is skipped, and fails under VMCORE_REQUIRE_FIXTURES=1).

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcore-report"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("UTF-8"),
    )
}

/// The long options `--help` lists (`--name`), parsed from the help text.
fn help_options() -> Vec<String> {
    let (ok, help) = run(&["--help"]);
    assert!(ok);
    let mut v: Vec<String> = help
        .lines()
        .filter_map(|l| {
            // an option line: `  -o, --only-plugins <LIST>` or `      --vmcore <PATH>`
            let l = l.trim_start();
            if !l.starts_with('-') {
                return None;
            }
            let at = l.find("--")?;
            let name: String = l[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect();
    v.sort();
    v.dedup();
    assert!(v.len() >= 20, "too few options parsed from --help: {v:?}");
    v
}

/// Runs `tool args… FILE` on `text` written to a file; `None` when the tool is not installed.
fn check_with(tool: &str, args: &[&str], text: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(tool).args(args).arg(&path).output().ok()?;
    Some((
        out.status.success() && out.stderr.is_empty(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn man_page_lists_every_option_and_groff_accepts_it() {
    let (ok, man) = run(&["--generate", "man"]);
    assert!(ok);
    assert!(
        man.contains(".TH vmcore-report 1"),
        "not a section-1 man page"
    );
    for o in help_options() {
        let roff = format!("\\fB\\-\\-{}\\fR", o.replace('-', "\\-"));
        assert!(man.contains(&roff), "the man page lacks --{o}");
    }
    // the exit codes documented in --help are in the page too
    assert!(man.contains("Exit codes"), "no exit codes in the man page");
    match check_with("groff", &["-man", "-Tutf8", "-ww", "-z"], &man) {
        Some((true, _)) => {}
        Some((false, err)) => panic!("groff warns about the man page: {err}"),
        None => common::fixtures::skip("groff is not installed"),
    }
}

#[test]
fn completions_name_every_option_and_parse_in_their_shell() {
    let opts = help_options();
    for (kind, shell, args) in [
        ("complete-bash", "bash", vec!["-n"]),
        ("complete-zsh", "zsh", vec!["-n"]),
        ("complete-fish", "fish", vec!["--no-execute"]),
    ] {
        let (ok, script) = run(&["--generate", kind]);
        assert!(ok, "{kind}");
        for o in &opts {
            assert!(
                script.contains(&format!("--{o}"))
                    || script.contains(&format!("-l {o} "))
                    || script.contains(&format!("-l {o}\n")),
                "{kind} lacks --{o}"
            );
        }
        match check_with(shell, &args, &script) {
            Some((true, _)) => {}
            Some((false, err)) => panic!("{shell} rejects its completions: {err}"),
            None => common::fixtures::skip(format!("{shell} is not installed")),
        }
    }
}

#[test]
fn generate_needs_no_dump_and_rejects_unknown_kinds() {
    let (ok, _) = run(&["--generate", "complete-bash"]);
    assert!(ok, "--generate works without --vmcore");
    let (ok, _) = run(&["--generate", "powershell"]);
    assert!(!ok);
}
