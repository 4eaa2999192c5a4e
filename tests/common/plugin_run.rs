//! Running one plugin on a real dump into memory: the kernel view over a fixture dump, and an
//! output sink that keeps every file and symbolic link the plugin writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::kernel::Kernel;
use vmcore_report::report::plugin::{OutputSink, Plugin, PluginContext, PluginError};

/// The files a plugin wrote (path → contents) and its symbolic links (path → target).
#[derive(Default)]
pub struct MemSink {
    pub files: BTreeMap<String, Vec<u8>>,
    pub links: BTreeMap<String, String>,
}

impl MemSink {
    /// A file's contents as text (panics when absent: the test names what it expected).
    pub fn text(&self, path: &str) -> String {
        let b = self
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} was not written"));
        String::from_utf8_lossy(b).into_owned()
    }
}

impl OutputSink for MemSink {
    fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.files.insert(path.to_string(), data.to_vec());
        Ok(())
    }
    fn write_symlink(&mut self, path: &str, target: &str) -> Result<(), PluginError> {
        self.links.insert(path.to_string(), target.to_string());
        Ok(())
    }
}

pub fn open_kernel(vm: &Arc<Vmlinux>, path: &Path) -> Kernel {
    super::kernel::open_with(vm, path)
}

/// Runs `p` on `k`; returns what it wrote and its recorded errors (`code: message`).
pub fn run(k: &Kernel, p: &dyn Plugin) -> (MemSink, Vec<String>) {
    let mut sink = MemSink::default();
    let opts = BTreeMap::new();
    let mut ctx = PluginContext::new(k, p.name(), &opts, &mut sink);
    p.collect(&mut ctx).expect("plugin runs");
    let (_, errors) = ctx.finish();
    let errors = errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect();
    (sink, errors)
}
