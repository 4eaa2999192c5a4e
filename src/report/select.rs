//! Plugin selection and plugin options, with `sos report`'s meaning.
//!
//! sos decides per plugin, in this order (sos/report/__init__.py, `load_plugins`):
//!
//! 1. named by `-n/--skip-plugins` → skipped, reason `skipped`;
//! 2. not applicable to the system (`check_enabled` false) and not named by `-e` or `-o` →
//!    `inactive`;
//! 3. not enabled by default and not named by `-e` or `-o` → `optional`;
//! 4. `-o` given and the plugin not in it → `not specified`.
//!
//! sos hides experimental plugins entirely without `--experimental`. Here they are listed and
//! skipped with reason `experimental` unless `--experimental` is given or they are named with
//! `-o`/`-e`, which is the more useful behaviour for a tool whose plugin set is fixed at build
//! time (the check comes right after `-n`).
//!
//! Names given to `-o`/`-e` that no plugin has are fatal; with `-n` they only warn.
//!
//! `-k PLUG.OPT[=VAL]` values are typed by [`OptionValue::parse`]. An option unknown to a plugin
//! that will run is fatal; options for plugins that will not run are warned about and ignored, as
//! sos does. `PLUG.timeout=N` is the per-plugin timeout every plugin accepts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::plugin::{OptionValue, Plugin};

/// The selection flags, lists already split at commas.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub enable: Vec<String>,
    pub skip: Vec<String>,
    pub experimental: bool,
}

/// Why a plugin does not run. The strings are sos's where sos has the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SkipReason {
    #[serde(rename = "skipped")]
    Skipped,
    #[serde(rename = "experimental")]
    Experimental,
    #[serde(rename = "inactive")]
    Inactive,
    #[serde(rename = "optional")]
    Optional,
    #[serde(rename = "not specified")]
    NotSpecified,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Skipped => "skipped",
            SkipReason::Experimental => "experimental",
            SkipReason::Inactive => "inactive",
            SkipReason::Optional => "optional",
            SkipReason::NotSpecified => "not specified",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of selection and option handling; all are usage errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("a non-existing plugin ({name}) was specified with {flag}; known plugins: {known}")]
    UnknownPlugin {
        name: String,
        flag: &'static str,
        known: String,
    },
    #[error("bad plugin option {arg:?}: expected PLUGIN.OPTION[=VALUE]")]
    BadOptionSyntax { arg: String },
    #[error("no such option \"{option}\" for plugin ({plugin}); it accepts: {accepted}")]
    UnknownOption {
        plugin: String,
        option: String,
        accepted: String,
    },
    #[error("plugin option {plugin}.{option} takes a {want}, not {got:?}")]
    OptionType {
        plugin: String,
        option: String,
        want: &'static str,
        got: String,
    },
}

impl SelectError {
    pub fn code(&self) -> &'static str {
        match self {
            SelectError::UnknownPlugin { .. } => "unknown-plugin",
            SelectError::BadOptionSyntax { .. } => "bad-plugin-option",
            SelectError::UnknownOption { .. } => "unknown-plugin-option",
            SelectError::OptionType { .. } => "plugin-option-type",
        }
    }
}

/// Checks the names given to `-o`, `-e` and `-n` against the known plugins. Returns the warnings
/// (unknown names given to `-n`).
pub fn check_names(sel: &Selection, known: &[&str]) -> Result<Vec<String>, SelectError> {
    let known_list = || {
        if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        }
    };
    for (flag, list) in [
        ("-o/--only-plugins", &sel.only),
        ("-e/--enable-plugins", &sel.enable),
    ] {
        for name in list {
            if !known.contains(&name.as_str()) {
                return Err(SelectError::UnknownPlugin {
                    name: name.clone(),
                    flag,
                    known: known_list(),
                });
            }
        }
    }
    Ok(sel
        .skip
        .iter()
        .filter(|n| !known.contains(&n.as_str()))
        .map(|n| format!("requested to skip non-existing plugin '{n}'"))
        .collect())
}

/// Decides whether one plugin runs. `applicable` is the plugin's `check_enabled` on this dump, or
/// `None` when there is no dump to ask (`--list-plugins` alone), which counts as applicable.
pub fn decide(
    plugin: &dyn Plugin,
    sel: &Selection,
    applicable: Option<bool>,
) -> Result<(), SkipReason> {
    let name = plugin.name();
    let named = |list: &[String]| list.iter().any(|n| n == name);
    let asked = named(&sel.only) || named(&sel.enable);
    if named(&sel.skip) {
        return Err(SkipReason::Skipped);
    }
    if plugin.experimental() && !sel.experimental && !asked {
        return Err(SkipReason::Experimental);
    }
    if applicable == Some(false) && !asked {
        return Err(SkipReason::Inactive);
    }
    if !plugin.default_enabled() && !asked {
        return Err(SkipReason::Optional);
    }
    if !sel.only.is_empty() && !named(&sel.only) {
        return Err(SkipReason::NotSpecified);
    }
    Ok(())
}

/// One `-k PLUG.OPT[=VAL]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionArg {
    pub plugin: String,
    pub option: String,
    pub value: OptionValue,
}

/// Parses `PLUG.OPT[=VAL]`. The value may itself contain `=` and `.`; the plugin name ends at the
/// first `.` before the `=`.
pub fn parse_option_arg(arg: &str) -> Result<OptionArg, SelectError> {
    let bad = || SelectError::BadOptionSyntax {
        arg: arg.to_string(),
    };
    let (key, value) = match arg.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (arg, None),
    };
    let (plugin, option) = key.split_once('.').ok_or_else(bad)?;
    if plugin.is_empty() || option.is_empty() || option.contains('.') {
        return Err(bad());
    }
    Ok(OptionArg {
        plugin: plugin.to_string(),
        option: option.to_string(),
        value: OptionValue::parse(value),
    })
}

/// A plugin's options after defaults and `-k` were applied, and its timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedOptions {
    pub values: BTreeMap<String, OptionValue>,
    /// `None`: no timeout.
    pub timeout: Option<Duration>,
}

/// The option every plugin accepts.
pub const TIMEOUT_OPTION: &str = "timeout";

/// Applies the `-k` arguments to one plugin that will run. `default_timeout` is
/// `--plugin-timeout` (`None`: no timeout). A `timeout` of 0 means none, as with
/// `--plugin-timeout 0`.
pub fn resolve_options(
    plugin: &dyn Plugin,
    args: &[OptionArg],
    default_timeout: Option<Duration>,
) -> Result<ResolvedOptions, SelectError> {
    let declared = plugin.options();
    let mut values: BTreeMap<String, OptionValue> = declared
        .iter()
        .map(|o| (o.name.to_string(), o.default.clone()))
        .collect();
    let mut timeout = default_timeout;
    for a in args.iter().filter(|a| a.plugin == plugin.name()) {
        if a.option == TIMEOUT_OPTION {
            match a.value {
                OptionValue::Int(n) if n >= 0 => {
                    timeout = (n > 0).then(|| Duration::from_secs(n.unsigned_abs()));
                }
                _ => {
                    return Err(SelectError::OptionType {
                        plugin: a.plugin.clone(),
                        option: a.option.clone(),
                        want: "non-negative integer (seconds)",
                        got: a.value.to_string(),
                    });
                }
            }
            continue;
        }
        let Some(decl) = declared.iter().find(|o| o.name == a.option) else {
            let mut accepted: Vec<&str> = declared.iter().map(|o| o.name).collect();
            accepted.push(TIMEOUT_OPTION);
            return Err(SelectError::UnknownOption {
                plugin: a.plugin.clone(),
                option: a.option.clone(),
                accepted: accepted.join(", "),
            });
        };
        // like sos's set_value: the value must have the default's type; a string option takes
        // any value in its textual form
        let value = match (&decl.default, &a.value) {
            (OptionValue::Bool(_), OptionValue::Bool(b)) => OptionValue::Bool(*b),
            (OptionValue::Int(_), OptionValue::Int(n)) => OptionValue::Int(*n),
            (OptionValue::Str(_), v) => OptionValue::Str(match v {
                OptionValue::Str(s) => s.clone(),
                other => raw_text(other),
            }),
            (want, got) => {
                return Err(SelectError::OptionType {
                    plugin: a.plugin.clone(),
                    option: a.option.clone(),
                    want: want.type_name(),
                    got: got.to_string(),
                });
            }
        };
        values.insert(a.option.clone(), value);
    }
    Ok(ResolvedOptions { values, timeout })
}

fn raw_text(v: &OptionValue) -> String {
    match v {
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(n) => n.to_string(),
        OptionValue::Str(s) => s.clone(),
    }
}

/// The `-k` arguments naming plugins that will not run (unknown or not selected): sos warns about
/// them and goes on.
pub fn unused_option_warnings(args: &[OptionArg], running: &[&str]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for a in args {
        if !running.contains(&a.plugin.as_str()) && !seen.contains(&a.plugin.as_str()) {
            seen.push(&a.plugin);
            out.push(format!(
                "unable to set option for disabled or non-existing plugin ({})",
                a.plugin
            ));
        }
    }
    out
}
