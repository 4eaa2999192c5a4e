//! kernel_info: who the dumped kernel was and in what state it died.
//!
//! Outputs under `plugins/kernel_info/`:
//! - `uts.json`, `uts.txt`: `init_uts_ns.name` (sysname, nodename, release, version, machine,
//!   domainname), read from the kernel's memory, not from the dump header (QEMU leaves it empty).
//! - `banner.txt`: `linux_banner`, the `/proc/version` line, when the symbol exists.
//! - `taints.json`: the raw `tainted_mask`, the taint string exactly as `print_tainted()` builds it
//!   for oops lines (`Tainted: G           O      `; `Not tainted` for 0), and one entry per set
//!   flag with its letter and name.
//! - `kernel_info.json`: all of the above plus the dump's architecture, page size, KASLR offset,
//!   CPU counts, crash time (VMCOREINFO `CRASHTIME`) and uptime.
//!
//! Strings from the dump are bytes; in JSON and text they are kept losslessly (invalid UTF-8 as
//! `\xNN`, a backslash doubled), never dropped.
//!
//! The taint letters come from the kernel's own `taint_flags[]` (`struct taint_flag {c_true,
//! c_false, module}`, plus `desc` since 6.4) when the dump has it, because the table grows
//! across versions (17 flags in 4.18, 19 in 6.1); otherwise from the table documented in
//! Documentation/admin-guide/tainted-kernels.rst.

pub mod collect;
pub mod taint;

use serde::Serialize;

use crate::kernel::Kernel;
use crate::plugins::sched_debug::record::escape_bytes;
use crate::report::plugin::{Plugin, PluginContext, PluginError};

/// `struct new_utsname`, raw bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uts {
    pub sysname: Vec<u8>,
    pub nodename: Vec<u8>,
    pub release: Vec<u8>,
    pub version: Vec<u8>,
    pub machine: Vec<u8>,
    pub domainname: Vec<u8>,
}

impl Uts {
    /// The fields in `struct new_utsname` order, with their C names.
    pub fn fields(&self) -> [(&'static str, &[u8]); 6] {
        [
            ("sysname", &self.sysname),
            ("nodename", &self.nodename),
            ("release", &self.release),
            ("version", &self.version),
            ("machine", &self.machine),
            ("domainname", &self.domainname),
        ]
    }

    /// `uts.txt`: one `name: value` line per field.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (n, v) in self.fields() {
            s.push_str(n);
            s.push_str(": ");
            s.push_str(&escape_bytes(v));
            s.push('\n');
        }
        s
    }
}

impl Serialize for Uts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(6))?;
        for (n, v) in self.fields() {
            m.serialize_entry(n, &escape_bytes(v))?;
        }
        m.end()
    }
}

/// CPU counts from the kernel's masks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuCounts {
    /// After a panic only the panicking CPU is left online: the others stop themselves.
    pub online: Option<u32>,
    /// Not cleared by the panic: the CPUs that were online while the system ran.
    pub active: Option<u32>,
    pub present: Option<u32>,
    pub possible: Option<u32>,
    pub nr_cpu_ids: Option<u32>,
    /// PRSTATUS notes in the dump (one per CPU that was online when it was taken).
    pub in_dump_notes: Option<u32>,
}

/// How long the kernel had been up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Uptime {
    pub seconds: f64,
    /// `timekeeper` (CLOCK_BOOTTIME from `tk_core`, as `/proc/uptime`) or `jiffies` (with `HZ`
    /// derived from `tick_nsec`).
    pub source: &'static str,
}

/// What the dump container says, independent of the kernel's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DumpFacts {
    pub arch: Option<String>,
    pub page_size: Option<u64>,
    pub kaslr_offset: Option<u64>,
    /// VMCOREINFO `CRASHTIME`, seconds since the epoch (written by the crashing kernel for
    /// kexec/kdump; absent from hypervisor-taken dumps).
    pub crash_time: Option<i64>,
    /// The kdump header's timestamp: when the dump was written (makedumpfile, QEMU), which is
    /// not the crash time.
    pub dump_time: Option<i64>,
    pub format: Option<String>,
    pub cpu_notes: Option<u32>,
}

/// `kernel_info.json`.
#[derive(Clone, Debug, Serialize)]
pub struct KernelInfo {
    pub uts: Option<Uts>,
    #[serde(serialize_with = "ser_opt_bytes")]
    pub banner: Option<Vec<u8>>,
    pub taints: Option<taint::Taints>,
    pub arch: Option<String>,
    pub page_size: Option<u64>,
    /// Hex string (`0x…`): KASLR offsets are read as addresses.
    pub kaslr_offset: Option<String>,
    pub cpus: CpuCounts,
    pub crash_time: Option<i64>,
    /// `crash_time` as RFC 3339 UTC.
    pub crash_time_utc: Option<String>,
    pub dump_time: Option<i64>,
    pub dump_time_utc: Option<String>,
    pub uptime: Option<Uptime>,
    pub dump_format: Option<String>,
}

fn ser_opt_bytes<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_some(&escape_bytes(b)),
        None => s.serialize_none(),
    }
}

/// The files the plugin writes, relative to `plugins/kernel_info/`, rendered from one record.
pub fn render_outputs(
    info: &KernelInfo,
) -> Result<Vec<(&'static str, Vec<u8>)>, serde_json::Error> {
    let json = |v: &dyn erased::Json| -> Result<Vec<u8>, serde_json::Error> {
        let mut s = v.to_json()?;
        s.push('\n');
        Ok(s.into_bytes())
    };
    let mut out = Vec::new();
    if let Some(uts) = &info.uts {
        out.push(("uts.json", json(uts)?));
        out.push(("uts.txt", uts.to_text().into_bytes()));
    }
    if let Some(b) = &info.banner {
        let mut b = b.clone();
        if b.last() != Some(&b'\n') {
            b.push(b'\n');
        }
        out.push(("banner.txt", b));
    }
    if let Some(t) = &info.taints {
        out.push(("taints.json", json(t)?));
    }
    out.push(("kernel_info.json", json(info)?));
    Ok(out)
}

/// Pretty JSON for the few record types, without generic closures over `Serialize`.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Result<String, serde_json::Error>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, serde_json::Error> {
            serde_json::to_string_pretty(self)
        }
    }
}

impl DumpFacts {
    /// What the dump container and the address space say.
    pub fn from_kernel(k: &Kernel) -> DumpFacts {
        let info = k.info();
        let vi = info.vmcoreinfo.as_ref();
        DumpFacts {
            arch: info.arch.map(|a| a.uname_machine().to_string()),
            page_size: vi.and_then(|v| v.page_size).or(Some(info.page_size)),
            kaslr_offset: Some(k.space().kaslr_offset()),
            crash_time: vi.and_then(|v| v.crashtime),
            dump_time: info.header_timestamp.filter(|&t| t > 0),
            format: Some(info.format.name().to_string()),
            cpu_notes: u32::try_from(info.cpus.len()).ok().filter(|&n| n > 0),
        }
    }
}

pub struct KernelInfoPlugin;

impl Plugin for KernelInfoPlugin {
    fn name(&self) -> &'static str {
        "kernel_info"
    }

    fn description(&self) -> &'static str {
        "kernel identity (uname, banner), taints, architecture, CPUs, crash time and uptime"
    }

    fn collect(&self, ctx: &mut PluginContext<'_>) -> Result<(), PluginError> {
        let facts = DumpFacts::from_kernel(ctx.kernel);
        let c = collect::collect(&ctx.kernel.access(), &facts);
        let files = render_outputs(&c.info).map_err(|e| PluginError::new("json", e.to_string()))?;
        for (name, data) in files {
            ctx.write_bytes(name, &data)?;
        }
        for e in c.errors {
            ctx.record_error(e);
        }
        Ok(())
    }
}
