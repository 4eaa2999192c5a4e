//! Logging: everything goes through `tracing`; two captures become `sos_logs/`.
//!
//! - `sos.log` holds every event at INFO and above (DEBUG with `-v`, TRACE with `-vv`), one line
//!   each: `<time> <LEVEL>: <message>`, as sos's log.
//! - `ui.log` holds what the user saw: the messages the tool printed for the user (events with
//!   target [`UI_TARGET`], printed to stdout) and the warnings and errors printed to stderr.
//!
//! On the console: user messages unless `--quiet`; warnings and errors (only errors with
//! `--quiet`); INFO events with `-v`, DEBUG with `-vv`. While a progress bar is shown, lines are
//! printed above it.
//!
//! The log is captured in memory, not in a file, because the archive's build tree (named after
//! the crashed host) exists only once the dump has been opened; the logs are small.
//!
//! Strings from the dump (host names, kernel strings, paths) are hostile: an escape sequence
//! would reach the user's terminal, a newline would forge a log line. Rather than trusting every
//! call site to wrap them, the layer itself makes every line inert before it is printed or
//! captured ([`inert`]): control characters (newlines included; tab excepted) and the Unicode
//! characters that reorder or break lines become visible escapes. So every message is one line;
//! a message that wants a blank line is logged as an empty message.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The target of messages meant for the user (progress, summary).
pub const UI_TARGET: &str = "vmcore_report::ui";

/// Prints a message for the user (stdout, unless `--quiet`) and records it in both logs.
#[macro_export]
macro_rules! ui {
    ($($arg:tt)*) => {
        ::tracing::info!(target: $crate::report::log::UI_TARGET, $($arg)*)
    };
}

/// The captured logs.
#[derive(Clone, Default)]
pub struct Captured {
    sos: Arc<Mutex<Vec<u8>>>,
    ui: Arc<Mutex<Vec<u8>>>,
}

fn lock(m: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    // a panic while holding the lock leaves only a half-written line; keep logging
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Captured {
    /// `sos_logs/sos.log` so far.
    pub fn sos_log(&self) -> Vec<u8> {
        lock(&self.sos).clone()
    }
    /// `sos_logs/ui.log` so far.
    pub fn ui_log(&self) -> Vec<u8> {
        lock(&self.ui).clone()
    }
}

/// Console settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub verbosity: u8,
    pub quiet: bool,
}

static PROGRESS: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Sets (or clears) the progress bar that console lines must be printed above.
pub fn set_progress(bar: Option<indicatif::ProgressBar>) {
    *PROGRESS.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

fn print_line(line: &str, to_stdout: bool) {
    let bar = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let print = || {
        if to_stdout {
            let _ = writeln!(std::io::stdout(), "{line}");
        } else {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    };
    match bar {
        Some(b) if !b.is_hidden() => b.suspend(print),
        _ => print(),
    }
}

/// Installs the global subscriber and returns the captures. If a subscriber is already installed
/// (a second call, or a test harness), the captures stay empty.
pub fn init(settings: Settings) -> Captured {
    let captured = Captured::default();
    let file_level = match settings.verbosity {
        0 => Level::INFO,
        1 => Level::DEBUG,
        _ => Level::TRACE,
    };
    let subscriber = tracing_subscriber::registry().with(CaptureLayer {
        captured: captured.clone(),
        file_level,
        settings,
    });
    let _ = tracing::subscriber::set_global_default(subscriber);
    captured
}

struct CaptureLayer {
    captured: Captured,
    file_level: Level,
    settings: Settings,
}

#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "plugin" => self.plugin = Some(format!("{value:?}").trim_matches('"').to_string()),
            n => {
                let _ = write!(self.rest, " {n}={value:?}");
            }
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "plugin" => self.plugin = Some(value.to_string()),
            n => {
                let _ = write!(self.rest, " {n}={value}");
            }
        }
    }
}

/// Whether `c` must not reach a terminal or a log raw: C0 and C1 controls except tab (ESC starts
/// terminal sequences, CR and LF forge lines), and the Unicode line separators and bidirectional
/// controls that make text display other than it reads.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` with every hostile character replaced by a visible escape (`\x1b`, `\n`, `\u{202e}`).
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_hostile(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_hostile(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn level_word(l: Level) -> &'static str {
    match l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    /// Nothing finer than the file's level is kept or shown (the console shows a subset of it:
    /// UI messages are INFO), so finer events are disabled at their call site instead of being
    /// formatted and dropped (a report emits hundreds of DEBUG events, each with a timestamp).
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(
            self.file_level,
        ))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = *meta.level();
        let is_ui = meta.target() == UI_TARGET;
        let mut f = Fields::default();
        event.record(&mut f);
        let mut msg = String::new();
        if let Some(p) = &f.plugin {
            let _ = write!(msg, "[plugin:{p}] ");
        }
        msg.push_str(&f.message);
        if !f.rest.is_empty() {
            let _ = write!(msg, " ({})", f.rest.trim_start());
        }
        // the one place every message passes: nothing below sees a raw control character
        let msg = inert(&msg).into_owned();
        let time = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
        let line = format!("{time} {}: {msg}\n", level_word(level));

        if level <= self.file_level {
            lock(&self.captured.sos).extend_from_slice(line.as_bytes());
        }

        // what reaches the console, and so ui.log
        let s = self.settings;
        let shown = if is_ui {
            !s.quiet
        } else if level == Level::ERROR {
            true
        } else if s.quiet {
            false
        } else {
            level == Level::WARN
                || (level == Level::INFO && s.verbosity >= 1)
                || (level == Level::DEBUG && s.verbosity >= 2)
                || s.verbosity >= 3
        };
        if is_ui && s.quiet {
            // the user did not see it, but ui.log still records what the tool had to say
            lock(&self.captured.ui).extend_from_slice(line.as_bytes());
            return;
        }
        if shown {
            lock(&self.captured.ui).extend_from_slice(line.as_bytes());
            if is_ui {
                print_line(&msg, true);
            } else {
                print_line(
                    &format!("{}: {msg}", level_word(level).to_lowercase()),
                    false,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn hostile_characters_become_visible_escapes() {
        assert_eq!(inert("plain host-1\tok"), "plain host-1\tok");
        assert_eq!(
            inert("../../e\x1b[31mred\nINFO: forged\r\u{7f}\u{9b}"),
            "../../e\\x1b[31mred\\nINFO: forged\\r\\x7f\\x9b"
        );
        assert_eq!(inert("a\u{202e}b\u{2028}c"), "a\\u{202e}b\\u{2028}c");
        assert_eq!(inert("h\u{e9}te \u{1f600}"), "h\u{e9}te \u{1f600}");
    }
}
