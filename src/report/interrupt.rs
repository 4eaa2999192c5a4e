//! Interruption: SIGINT and SIGTERM leave nothing behind.
//!
//! The build tree lives in a private directory (`<tmp-dir>/vmcore-report.XXXXXX/`) and the
//! archive is written to a hidden `.…part` file before its rename; both are registered here while
//! they exist ([`Guard`]). The first SIGINT or SIGTERM wakes a watcher thread that removes every
//! registered path and exits with the shell's convention, 128 + the signal number (130 for
//! SIGINT, 143 for SIGTERM). A second signal while that cleanup runs ends the process at once
//! with the same code (signal-hook's conditional shutdown, armed by the first signal).
//!
//! Without [`install`] (library use, tests) registration is harmless bookkeeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::{SIGINT, SIGTERM};

static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn paths() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PATHS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A path to remove if the run is interrupted, for as long as the guard lives.
#[derive(Debug)]
pub struct Guard {
    path: PathBuf,
}

impl Guard {
    /// Registers `path` (a file or a directory tree).
    pub fn new(path: &Path) -> Guard {
        paths().push(path.to_path_buf());
        Guard {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut v = paths();
        if let Some(i) = v.iter().rposition(|p| p == &self.path) {
            v.remove(i);
        }
    }
}

/// The exit code for a process ended by `signal`: 128 + its number.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// Removes every registered path (newest first). Called by the watcher thread.
fn clean_up() {
    let v: Vec<PathBuf> = paths().drain(..).rev().collect();
    for p in v {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(e) = r {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!("cannot remove {}: {e}", p.display());
            }
        }
    }
}

/// Installs the handlers: the first SIGINT/SIGTERM cleans up and exits, a second one exits at
/// once. Call once, early in `main`.
pub fn install() -> std::io::Result<()> {
    let armed = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // order matters: the shutdown checks the flag before the first signal sets it
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(exit_code(sig)),
            Arc::clone(&armed),
        )?;
        signal_hook::flag::register(sig, Arc::clone(&armed))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                tracing::error!("interrupted by {name}: removing the unfinished archive");
                clean_up();
                std::process::exit(i32::from(exit_code(sig)));
            }
        })?;
    Ok(())
}
