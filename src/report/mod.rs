//! The plugin framework, the runner, the manifest and the sos-layout archive.
//!
//! - [`plugin`] — what a plugin implements and the context it writes through;
//! - [`select`] — which plugins run and with which options, as `sos report` decides;
//! - [`runner`] — runs them one by one, isolating failures, panics and overruns;
//! - [`manifest`] — `sos_reports/manifest.json`;
//! - [`archive`] — the build tree, the tarball, its checksum and gpg encryption;
//! - [`log`] — the tracing subscriber behind the console, `sos.log` and `ui.log`;
//! - [`interrupt`] — SIGINT/SIGTERM remove the unfinished build tree and archive.

pub mod archive;
pub mod interrupt;
pub mod log;
pub mod manifest;
pub mod plugin;
pub mod runner;
pub mod select;
pub mod summary;
