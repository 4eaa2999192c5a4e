//! Helpers shared by the report-level archive tests: two small plugins, the config built from a
//! command line, tree and manifest checks, and a small JSON Schema validator.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use clap::Parser;
use serde_json::Value;
use vmcore_report::app::{self, Outcome};
use vmcore_report::cli::{Cli, Config};
use vmcore_report::report::log::{self, Captured};
use vmcore_report::report::plugin::{Plugin, PluginContext, PluginError};

use crate::common::kernel::{Spec, kernel};

pub struct Uts;
impl Plugin for Uts {
    fn name(&self) -> &'static str {
        "uts"
    }
    fn description(&self) -> &'static str {
        "writes a file and an extra path"
    }
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        ctx.write_text("uname.txt", "Linux\n")?;
        ctx.write_archive_path("sys/kernel/debug/sched/debug", b"sched\n")
    }
}

pub struct Broken;
impl Plugin for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn description(&self) -> &'static str {
        "optional, fails"
    }
    fn default_enabled(&self) -> bool {
        false
    }
    fn collect(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Err(PluginError::new("test-failure", "broken on purpose"))
    }
}

pub static PLUGINS: [&dyn Plugin; 2] = [&Uts, &Broken];

pub fn captured() -> &'static Captured {
    static C: OnceLock<Captured> = OnceLock::new();
    C.get_or_init(|| {
        log::init(log::Settings {
            verbosity: 1,
            quiet: true,
        })
    })
}

pub fn config(tmp: &Path, extra: &[&str]) -> Config {
    let mut args: Vec<OsString> = [
        "vmcore-report",
        "--vmcore",
        "/nonexistent/vmcore",
        "--tmp-dir",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(tmp.into());
    args.extend(extra.iter().map(OsString::from));
    let cli = Cli::try_parse_from(&args).expect("valid command line");
    Config::from_cli(cli, &args, &PLUGINS, &|_| None)
        .expect("valid config")
        .0
}

pub fn run(cfg: &Config, spec: &Spec) -> Outcome {
    let k = std::sync::Arc::new(kernel(spec));
    app::produce_report(
        cfg,
        &k,
        None,
        &PLUGINS,
        captured(),
        chrono::Local::now(),
        Instant::now(),
    )
    .expect("report written")
}

/// `tar -t` listing, in stored order.
pub fn tar_list(path: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn untar(path: &Path, into: &Path) {
    let st = Command::new("tar")
        .arg("-xf")
        .arg(path)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar");
    assert!(st.success());
}

pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

pub fn is_name(name: &str, host: &str, label: Option<&str>) -> bool {
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let prefix = match label {
        Some(l) => format!("sosvmcore-{host}-{l}-{date}-"),
        None => format!("sosvmcore-{host}-{date}-"),
    };
    name.strip_prefix(&prefix)
        .is_some_and(|s| s.len() == 7 && s.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Checks the sos layout of an unpacked or built tree, and returns the manifest.
pub fn check_tree(root: &Path) -> Value {
    assert_eq!(
        std::fs::read_to_string(root.join("plugins/uts/uname.txt")).unwrap(),
        "Linux\n"
    );
    assert_eq!(
        std::fs::read(root.join("sys/kernel/debug/sched/debug")).unwrap(),
        b"sched\n"
    );
    check_layout(root)
}

/// Checks `version.txt`, `sos_logs/` and `sos_reports/manifest.json` (validated against the
/// schema), and returns the manifest.
pub fn check_layout(root: &Path) -> Value {
    let version = std::fs::read_to_string(root.join("version.txt")).unwrap();
    assert_eq!(
        version,
        format!("vmcore-report: {}\n", env!("CARGO_PKG_VERSION"))
    );
    let sos_log = std::fs::read_to_string(root.join("sos_logs/sos.log")).unwrap();
    assert!(root.join("sos_logs/ui.log").is_file());
    // `<date> <time> <LEVEL>: <message>`
    let first = sos_log.lines().next().expect("sos.log has lines");
    let mut parts = first.splitn(3, ' ');
    let (d, t, rest) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok(),
        "{first}"
    );
    assert!(t.contains(':'), "{first}");
    assert!(
        ["ERROR:", "WARNING:", "INFO:", "DEBUG:", "TRACE:"]
            .iter()
            .any(|l| rest.starts_with(l)),
        "{first}"
    );
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("sos_reports/manifest.json")).unwrap(),
    )
    .unwrap();
    validate_against_schema(&m);
    m
}

pub fn schema() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A small JSON Schema validator for the keywords docs/manifest.schema.json uses: type,
/// required, properties, additionalProperties, items, enum, minimum, oneOf and local $ref.
pub fn check(root: &Value, s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local ref");
        return check(root, &root["$defs"][name], v, at, errs);
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let ok = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                check(root, a, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if ok != 1 {
            errs.push(format!("{at}: matches {ok} of oneOf"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |ty: &str| match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            errs.push(format!("{at}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in enum"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errs.push(format!("{at}: {n} < {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errs.push(format!("{at}: missing required {r}"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, val, &here, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{here}: not allowed")),
                    Some(ap @ Value::Object(_)) => check(root, ap, val, &here, errs),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, it) in arr.iter().enumerate() {
            check(root, items, it, &format!("{at}[{i}]"), errs);
        }
    }
}

pub fn validate_against_schema(m: &Value) {
    validate_with_schema("docs/manifest.schema.json", m);
}

/// Validates `v` against the JSON Schema at `schema_rel` (relative to the crate root) with the
/// small validator above, and, where installed, with Python's jsonschema (required under
/// VMCORE_REQUIRE_FIXTURES=1: `.ci/run` installs it).
pub fn validate_with_schema(schema_rel: &str, v: &Value) {
    let sp = Path::new(env!("CARGO_MANIFEST_DIR")).join(schema_rel);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
    let mut errs = Vec::new();
    check(&s, &s, v, "$", &mut errs);
    assert!(
        errs.is_empty(),
        "{schema_rel}: the JSON does not match: {errs:#?}"
    );
    let py = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !py {
        crate::common::fixtures::skip("python3 cannot import jsonschema (pip install jsonschema)");
    } else {
        let dir = tempfile::tempdir().unwrap();
        let mp = dir.path().join("v.json");
        std::fs::write(&mp, v.to_string()).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
            ])
            .arg(&mp)
            .arg(&sp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python jsonschema ({schema_rel}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
