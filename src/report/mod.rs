//! The plugin framework, the runner, the manifest and the sos-layout archive.

pub mod plugin;
