//! The record the sys plugin collects once and renders as `sys.txt`, `sys.json` and the sos
//! files (`uname -a`, `/proc/version`, …).

use serde::Serialize;

use crate::plugins::kernel_info::Uts;
use crate::plugins::kernel_info::taint::Taints;
use crate::plugins::sched_debug::record::{ser_bytes, ser_opt_bytes};

/// `sys.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sys {
    pub uts: Option<Uts>,
    /// The dump file(s), format and size in bytes.
    pub dump_files: Vec<String>,
    pub dump_format: Option<String>,
    pub dump_size: u64,
    pub arch: Option<String>,
    pub page_size: u64,
    pub cpus: Cpus,
    /// Seconds since the epoch, and where it came from (`vmcoreinfo CRASHTIME` or
    /// `timekeeper xtime_sec`).
    pub crash_time: Option<i64>,
    pub crash_time_source: Option<&'static str>,
    /// `date`'s rendering of `crash_time` (UTC).
    pub date: Option<String>,
    pub uptime_s: Option<f64>,
    /// `avenrun[]` as `/proc/loadavg` prints it.
    pub load_average: Option<[String; 3]>,
    /// `nr_threads`: every task but the idle tasks (the `/proc/loadavg` denominator).
    pub nr_threads: Option<i64>,
    /// `totalram_pages() × PAGE_SIZE` (MemTotal), bytes.
    pub mem_total: Option<u64>,
    pub panic: Panic,
    pub taints: Option<Taints>,
    /// `saved_command_line`.
    #[serde(serialize_with = "ser_opt_bytes")]
    pub cmdline: Option<Vec<u8>>,
    /// `/proc/version` (`linux_proc_banner` filled with the utsname, as fs/proc/version.c does).
    #[serde(serialize_with = "ser_opt_bytes")]
    pub proc_version: Option<Vec<u8>>,
    /// `/proc/cpuinfo`'s stanzas (x86_64, arm64), one per active CPU.
    pub cpuinfo: Option<super::cpuinfo::CpuInfo>,
    /// What was left out, and why: `field: reason`.
    pub missing: Vec<String>,
}

/// The CPU masks (CPU numbers).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cpus {
    /// After a panic only the panicking CPU is still online: the others took themselves down.
    pub online: Option<Vec<u32>>,
    pub possible: Option<Vec<u32>>,
    pub present: Option<Vec<u32>>,
    /// Not cleared by the panic: the CPUs that ran the system.
    pub active: Option<Vec<u32>>,
    /// PRSTATUS notes in the dump.
    pub in_dump_notes: usize,
}

/// Why and where the kernel died.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Panic {
    /// `panic_cpu` (`-1`, PANIC_CPU_INVALID: `panic()` never ran).
    pub panic_cpu: Option<i64>,
    pub crash_kexec_post_notifiers: Option<bool>,
    pub panic_on_oops: Option<i64>,
    /// The text after `Kernel panic - not syncing: ` in the log.
    pub message: Option<String>,
    /// The last oops/BUG/WARNING block of the log.
    pub last_oops: Option<Vec<String>>,
    /// The running task of the panicking CPU (`runqueues.curr`).
    pub task: Option<PanicTask>,
    /// The register set of that CPU, from its PRSTATUS note.
    pub registers: Option<Registers>,
    /// Where the panic CPU's backtrace says the crash came from
    /// ([`crash_site`](crate::kernel::stack::crash_site)).
    pub site: Option<PanicSite>,
}

/// The function the crash came from, by the panic CPU's backtrace.
#[derive(Clone, Debug, Serialize)]
pub struct PanicSite {
    /// `function+0xoff/0xsize`, as the kernel prints a backtrace entry.
    pub function: String,
    pub module: Option<String>,
    /// The frame's index in the panic task's trace (`plugins/backtrace/bt.txt`).
    pub frame: usize,
    /// The frame's pc, hex.
    pub pc: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PanicTask {
    pub cpu: u32,
    pub pid: i64,
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    /// The `task_struct` address, hex.
    pub task: String,
    pub state: Option<char>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Registers {
    /// The note's index among the PRSTATUS notes, and its `pr_pid` (the running task's pid in a
    /// kexec dump; QEMU writes its vCPU number + 1).
    pub note_index: usize,
    pub pid: u32,
    /// `(name, value)` in the architecture's `elf_gregset_t` order.
    pub regs: Vec<(String, String)>,
}
