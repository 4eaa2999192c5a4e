//! The plugin interface: what a plugin implements and what it is given.
//!
//! A plugin reads kernel objects through [`Kernel`] and writes files through its
//! [`PluginContext`], which knows the plugin's directory (`plugins/<name>/`) and validates every
//! path so that nothing, not even a string read from the dump, can escape the archive root.

use std::collections::BTreeMap;

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
}

impl PluginError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> PluginError {
        PluginError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl<E: ErrorCode> From<E> for PluginError {
    fn from(e: E) -> PluginError {
        PluginError {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// Where a plugin's files go. Implemented by the report layer (a directory tree that becomes the
/// archive); tests may implement it in memory. `path` is relative to the archive root and has
/// already been validated by [`PluginContext`].
pub trait OutputSink {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError>;
    /// Makes `path` a symbolic link to `target` (relative to the link's directory; both already
    /// validated by [`PluginContext::symlink`]). Sinks that cannot hold links refuse.
    fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        let _ = target;
        Err(PluginError::new(
            "unsupported",
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
        }
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
        self.sink.write_file(&path, data)?;
        self.files.push(path);
        Ok(())
    }

    /// Makes `path` (relative to the archive root) a symbolic link to `target`, as sos's root
    /// symlinks (`lsmod` → `sos_commands/kernel/lsmod`). `target` is relative to the link's own
    /// directory and must stay inside the archive: [`validate_link_target`].
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        let path = validate_rel_path(path)?.to_string();
        validate_link_target(&path, target)?;
        self.sink.write_symlink(&path, target)?;
        self.files.push(path);
        Ok(())
    }

    /// Records a problem that did not stop the plugin: its status becomes `partial`.
    pub fn record_error(&mut self, err: impl Into<PluginError>) {
        let err = err.into();
        tracing::warn!(plugin = self.plugin, code = %err.code, "{}", err.message);
        self.errors.push(err);
    }

    /// The archive paths written so far.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The errors recorded so far.
    pub fn errors(&self) -> &[PluginError] {
        &self.errors
    }

    /// Consumes the context, returning the files written and the errors recorded.
    pub fn finish(self) -> (Vec<String>, Vec<PluginError>) {
        (self.files, self.errors)
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

/// Accepts a symbolic link's target when it is relative, made of normal components and `..`,
/// free of control characters, and, resolved from the directory of `link` (an already validated
/// archive path), stays inside the archive root: a reader that follows the link never leaves the
/// archive.
pub fn validate_link_target(link: &str, target: &str) -> Result<(), PluginError> {
    let bad = |why: &str| {
        PluginError::new(
            "bad-path",
            format!("refusing symbolic link {link:?} -> {target:?}: {why}"),
        )
    };
    if target.is_empty() {
        return Err(bad("empty target"));
    }
    if target.starts_with('/') {
        return Err(bad("absolute target"));
    }
    if target.chars().any(|c| c.is_control()) {
        return Err(bad("control character"));
    }
    // the link's directory depth, then walk the target's components
    let mut depth = link.split('/').count() - 1;
    for comp in target.split('/') {
        match comp {
            "" => return Err(bad("empty component")),
            "." => return Err(bad("relative component")),
            ".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("target leaves the archive"))?;
            }
            _ => depth += 1,
        }
    }
    Ok(())
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
    use super::{OptionValue, validate_link_target, validate_rel_path};

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
    fn link_targets_stay_in_the_archive() {
        for (link, target) in [
            ("lsmod", "sos_commands/kernel/lsmod"),
            ("a/b/c", "../x"),
            ("a/b/c", "../../x"),
            ("a/b", "../a/../b2"),
        ] {
            assert!(
                validate_link_target(link, target).is_ok(),
                "{link} -> {target} should be accepted"
            );
        }
        for (link, target) in [
            ("lsmod", ""),
            ("lsmod", "/etc/passwd"),
            ("lsmod", "../x"),
            ("a/b", "../../x"),
            ("a/b", "x/../../../y"),
            ("a", "./x"),
            ("a", "x//y"),
            ("a", "x\ny"),
        ] {
            assert!(
                validate_link_target(link, target).is_err(),
                "{link} -> {target} should be refused"
            );
        }
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
