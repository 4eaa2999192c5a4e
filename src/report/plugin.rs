//! The plugin interface: what a plugin implements and what it is given.
//!
//! A plugin reads kernel objects through [`Kernel`] and writes files through its
//! [`PluginContext`], which knows the plugin's directory (`plugins/<name>/`) and validates every
//! path so that nothing, not even a string read from the dump, can escape the archive root.

use std::collections::BTreeMap;
use std::time::Instant;

use super::manifest::{ErrorCause, MAX_ERRORS};
use crate::error::ErrorCode;
use crate::kernel::Kernel;

/// A value of a plugin option (`-k plugin.option=value`), typed by sos's rules: no value or
/// on/yes/true → true, off/no/false → false, else an integer if it parses, else a string.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum OptionValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl OptionValue {
    /// Types a `-k` value by sos's rules. `None` (no `=`) means true; the boolean words are
    /// matched case-insensitively (sos also accepts enable/enabled and disable/disabled); an
    /// integer is tried next; anything else is kept unmodified as a string.
    pub fn parse(value: Option<&str>) -> OptionValue {
        let Some(v) = value else {
            return OptionValue::Bool(true);
        };
        let lower = v.to_ascii_lowercase();
        match lower.as_str() {
            "on" | "enable" | "enabled" | "true" | "yes" => OptionValue::Bool(true),
            "off" | "disable" | "disabled" | "false" | "no" => OptionValue::Bool(false),
            _ => match lower.parse::<i64>() {
                Ok(n) => OptionValue::Int(n),
                Err(_) => OptionValue::Str(v.to_string()),
            },
        }
    }

    /// The type's name as error messages and `--list-plugins` show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            OptionValue::Bool(_) => "boolean",
            OptionValue::Int(_) => "integer",
            OptionValue::Str(_) => "string",
        }
    }
}

impl std::fmt::Display for OptionValue {
    /// Booleans print as sos prints them in `--list-plugins`: on/off.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Bool(true) => f.write_str("on"),
            OptionValue::Bool(false) => f.write_str("off"),
            OptionValue::Int(n) => write!(f, "{n}"),
            OptionValue::Str(s) => f.write_str(s),
        }
    }
}

/// An option a plugin accepts, listed by `--list-plugins`.
#[derive(Clone, Debug)]
pub struct PluginOption {
    pub name: &'static str,
    pub description: &'static str,
    pub default: OptionValue,
}

/// Why a plugin could not do (all of) its work. `code` is stable and goes into the manifest.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub code: String,
    pub message: String,
    /// The address the error is about, when it has one.
    pub address: Option<u64>,
}

impl PluginError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> PluginError {
        PluginError {
            code: code.into(),
            message: message.into(),
            address: None,
        }
    }

    /// The same error, about `address`.
    pub fn at(mut self, address: u64) -> PluginError {
        self.address = Some(address);
        self
    }
}

impl<E: ErrorCode> From<E> for PluginError {
    /// The address is the error's own, else the first `0x…` number in its message (errors of
    /// types that carry the address only in their text).
    fn from(e: E) -> PluginError {
        let message = e.to_string();
        PluginError {
            code: e.code().to_string(),
            address: e.address().or_else(|| address_in(&message)),
            message,
        }
    }
}

/// The first hexadecimal `0x…` number in `text`.
fn address_in(text: &str) -> Option<u64> {
    text.match_indices("0x").find_map(|(i, _)| {
        let digits: String = text[i + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        u64::from_str_radix(&digits, 16).ok()
    })
}

/// Where a plugin's files go. Implemented by the report layer (a directory tree that becomes the
/// archive); tests may implement it in memory. `path` is relative to the archive root and has
/// already been validated by [`PluginContext`].
pub trait OutputSink {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError>;
    /// Makes `path` a symbolic link to `target` (relative to the archive root, as sos's root
    /// symlinks `ps` → `sos_commands/process/ps_auxwwwm`). Sinks without links refuse it.
    fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        let _ = target;
        Err(PluginError::new(
            "no-symlink",
            format!("this output cannot hold the symbolic link {path}"),
        ))
    }
}

/// What a plugin is given while it runs.
pub struct PluginContext<'a> {
    pub kernel: &'a Kernel,
    plugin: &'static str,
    options: &'a BTreeMap<String, OptionValue>,
    sink: &'a mut dyn OutputSink,
    files: Vec<String>,
    errors: Vec<PluginError>,
    errors_omitted: u64,
    causes: Vec<ErrorCause>,
    deadline: Option<Instant>,
}

/// What a plugin's context gathered besides its files: the errors it recorded (at most
/// [`MAX_ERRORS`]), how many more there were, and all of them counted by code.
#[derive(Debug, Default)]
pub struct Recorded {
    pub errors: Vec<PluginError>,
    pub omitted: u64,
    pub causes: Vec<ErrorCause>,
}

impl<'a> PluginContext<'a> {
    pub fn new(
        kernel: &'a Kernel,
        plugin: &'static str,
        options: &'a BTreeMap<String, OptionValue>,
        sink: &'a mut dyn OutputSink,
    ) -> PluginContext<'a> {
        PluginContext {
            kernel,
            plugin,
            options,
            sink,
            files: Vec::new(),
            errors: Vec::new(),
            errors_omitted: 0,
            causes: Vec::new(),
            deadline: None,
        }
    }

    /// Refuses writes from `deadline` on: a plugin that overran its timeout and was left
    /// behind by the runner cannot add to the archive.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> PluginContext<'a> {
        self.deadline = deadline;
        self
    }

    pub fn plugin_name(&self) -> &'static str {
        self.plugin
    }

    /// The value of an option, after the defaults and the user's `-k` were applied.
    pub fn option(&self, name: &str) -> Option<&OptionValue> {
        self.options.get(name)
    }

    /// Writes `plugins/<name>/<rel>`.
    pub fn write_text(&mut self, rel: &str, text: &str) -> Result<(), PluginError> {
        self.write_bytes(rel, text.as_bytes())
    }

    /// Writes `plugins/<name>/<rel>` as indented JSON with a trailing newline.
    pub fn write_json<T: serde::Serialize>(
        &mut self,
        rel: &str,
        value: &T,
    ) -> Result<(), PluginError> {
        let mut s = serde_json::to_string_pretty(value)
            .map_err(|e| PluginError::new("json", e.to_string()))?;
        s.push('\n');
        self.write_bytes(rel, s.as_bytes())
    }

    /// Writes `plugins/<name>/<rel>`, one line per item.
    pub fn write_lines<I, S>(&mut self, rel: &str, lines: I) -> Result<(), PluginError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = String::new();
        for l in lines {
            s.push_str(l.as_ref());
            s.push('\n');
        }
        self.write_bytes(rel, s.as_bytes())
    }

    /// Writes `plugins/<name>/<rel>`.
    pub fn write_bytes(&mut self, rel: &str, data: &[u8]) -> Result<(), PluginError> {
        let path = format!("plugins/{}/{}", self.plugin, validate_rel_path(rel)?);
        self.write_archive_path(&path, data)
    }

    /// Writes a deliberate path elsewhere in the archive, such as `sys/kernel/debug/sched/debug`.
    pub fn write_archive_path(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        let path = validate_rel_path(path)?.to_string();
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PluginError::new(
                "timed-out",
                format!("not writing {path}: the plugin is past its timeout"),
            ));
        }
        self.sink.write_file(&path, data)?;
        self.files.push(path);
        Ok(())
    }

    /// Makes `path` (relative to the archive root) a symbolic link to `target` (also relative to
    /// the archive root; the link stores the path relative to the link's own directory, so it
    /// resolves inside the extracted archive).
    pub fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        let path = validate_rel_path(path)?.to_string();
        let target = validate_rel_path(target)?;
        let up = path.matches('/').count();
        let rel = format!("{}{target}", "../".repeat(up));
        self.sink.write_symlink(&path, &rel)?;
        self.files.push(path);
        Ok(())
    }

    /// Records a problem that did not stop the plugin: its status becomes `partial`. Errors are
    /// counted by code; the runner logs one line per code when the plugin ends (each error goes
    /// to `sos.log` at debug level as it happens), and the manifest keeps the first
    /// [`MAX_ERRORS`].
    pub fn record_error(&mut self, err: impl Into<PluginError>) {
        let err = err.into();
        tracing::debug!(plugin = self.plugin, code = %err.code, "{}", err.message);
        match self.causes.iter_mut().find(|c| c.code == err.code) {
            Some(c) => {
                c.count += 1;
                if err.address.is_some() {
                    c.first_address = c.first_address.or(err.address);
                    c.last_address = err.address;
                }
            }
            None => self.causes.push(ErrorCause {
                code: err.code.clone(),
                count: 1,
                first_address: err.address,
                last_address: err.address,
                example: err.message.clone(),
            }),
        }
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(err);
        } else {
            self.errors_omitted += 1;
        }
    }

    /// The archive paths written so far.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The errors recorded so far.
    pub fn errors(&self) -> &[PluginError] {
        &self.errors
    }

    /// Consumes the context, returning the files written and the errors recorded (at most
    /// [`MAX_ERRORS`]).
    pub fn finish(self) -> (Vec<String>, Vec<PluginError>) {
        (self.files, self.errors)
    }

    /// Consumes the context, returning the files written and everything recorded.
    pub fn finish_all(self) -> (Vec<String>, Recorded) {
        let recorded = Recorded {
            errors: self.errors,
            omitted: self.errors_omitted,
            causes: self.causes,
        };
        (self.files, recorded)
    }
}

/// Accepts a relative path made of normal components only: no `..`, no `.`, no empty component,
/// not absolute, no NUL or other control character.
pub fn validate_rel_path(path: &str) -> Result<&str, PluginError> {
    let bad =
        |why: &str| PluginError::new("bad-path", format!("refusing archive path {path:?}: {why}"));
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.starts_with('/') {
        return Err(bad("absolute"));
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(bad("control character"));
    }
    for comp in path.split('/') {
        match comp {
            "" => return Err(bad("empty component")),
            "." | ".." => return Err(bad("relative component")),
            _ => {}
        }
    }
    Ok(path)
}

/// A plugin. Implementations live in the top-level `plugins/` directory, one file each, and are
/// listed in its static registry.
pub trait Plugin: Send + Sync {
    /// The plugin's name: its directory under `plugins/` and its name for `-o/-e/-n/-k`.
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Whether it runs without being asked for.
    fn default_enabled(&self) -> bool {
        true
    }
    /// Whether it runs only with `--experimental` (or when named with `-o`/`-e`).
    fn experimental(&self) -> bool {
        false
    }
    /// The options it accepts (`-k name.option=value`).
    fn options(&self) -> Vec<PluginOption> {
        Vec::new()
    }
    /// Whether it applies to this dump (for example: the kernel has the structures it reads).
    fn check_enabled(&self, _kernel: &Kernel) -> bool {
        true
    }
    /// Work before `collect`, timed separately in the manifest.
    fn setup(&self, _ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
    /// The plugin's work. Returning `Err` marks it failed; errors recorded with
    /// [`PluginContext::record_error`] mark it partial.
    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError>;
}

#[cfg(test)]
mod tests {
    use super::{OptionValue, validate_rel_path};

    #[test]
    fn option_values_follow_sos_typing() {
        let cases: &[(Option<&str>, OptionValue)] = &[
            (None, OptionValue::Bool(true)),
            (Some("on"), OptionValue::Bool(true)),
            (Some("YES"), OptionValue::Bool(true)),
            (Some("Enabled"), OptionValue::Bool(true)),
            (Some("true"), OptionValue::Bool(true)),
            (Some("off"), OptionValue::Bool(false)),
            (Some("No"), OptionValue::Bool(false)),
            (Some("disable"), OptionValue::Bool(false)),
            (Some("false"), OptionValue::Bool(false)),
            (Some("42"), OptionValue::Int(42)),
            (Some("-7"), OptionValue::Int(-7)),
            (Some("0x10"), OptionValue::Str("0x10".into())),
            (Some("Some Text"), OptionValue::Str("Some Text".into())),
            (Some(""), OptionValue::Str(String::new())),
        ];
        for (input, want) in cases {
            assert_eq!(&OptionValue::parse(*input), want, "{input:?}");
        }
    }

    #[test]
    fn an_address_is_found_in_a_message() {
        assert_eq!(
            super::address_in("cannot read 8 bytes at 0xffff88800000a000: not in the dump"),
            Some(0xffff_8880_0000_a000)
        );
        assert_eq!(super::address_in("no address here, 0x"), None);
        assert_eq!(super::address_in("a 0xg then 0x1f"), Some(0x1f));
    }

    #[test]
    fn paths_that_escape_or_smuggle_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\0b",
            "a\nb",
        ] {
            assert!(validate_rel_path(bad).is_err(), "{bad:?} should be refused");
        }
        for good in [
            "uts.json",
            "sys/kernel/debug/sched/debug",
            "a/b.c/d-e_f",
            "..hidden",
            "x..",
        ] {
            assert!(
                validate_rel_path(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }
}
