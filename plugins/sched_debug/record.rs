//! The records the sched_debug plugin collects once from the kernel, and renders twice (the
//! kernel's text file, and JSON).
//!
//! The records mirror what `kernel/sched/debug.c` prints, section by section, but they do not know
//! any kernel version: a section is an ordered list of [`Field`]s whose names and C conversions
//! were chosen by the collector after probing which struct members the dump's DWARF has. The few
//! layout switches that cannot be expressed as "this member exists, print it" (the vruntime block
//! of CFS versus EEVDF, the columns of the task table) are explicit enums.

use serde::Serialize;

/// The C conversion the kernel's format string applies to a value.
///
/// Values are stored as `i64` holding the C value after conversion to `long` (sign-extended for
/// signed types, zero-extended for unsigned types narrower than 64 bits, bit-reinterpreted for
/// `u64`). Every conversion below is then exact: `%d` keeps the low 32 bits as signed, `%u` as
/// unsigned, `%ld`/`%Ld`/`%lld` print the `i64`, `%lu` the same bits as `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fmt {
    /// `%Ld.%06ld` through `SPLIT_NS`: milliseconds, a dot, the nanosecond remainder.
    Ns,
    /// `%d` (a 32-bit signed conversion).
    D,
    /// `%u`.
    U,
    /// `%ld`, `%Ld`, `%lld`.
    Ld,
    /// `%lu`.
    Lu,
}

/// One `name : value` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub fmt: Fmt,
    pub value: i64,
}

impl Field {
    pub fn new(name: impl Into<String>, fmt: Fmt, value: i64) -> Field {
        Field {
            name: name.into(),
            fmt,
            value,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchedDebug {
    pub header: Header,
    pub cpus: Vec<CpuBlock>,
    /// Lines stating which values are approximations of what the live kernel would have printed;
    /// rendered as a comment block at the top only when annotations are asked for.
    pub notes: Vec<String>,
}

/// `sched_debug_header()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Header {
    /// `init_uts_ns.name.release`, raw bytes.
    #[serde(serialize_with = "ser_bytes")]
    pub release: Vec<u8>,
    /// `init_uts_ns.name.version`, raw bytes; the kernel prints it up to the first space.
    #[serde(serialize_with = "ser_bytes")]
    pub version: Vec<u8>,
    /// `ktime`, `sched_clk`, `cpu_clk`, `jiffies`, `sched_clock_stable()`: `%-40s: …` lines.
    pub clocks: Vec<Field>,
    /// `  .%-40s: …` lines under `sysctl_sched`, without `sysctl_sched_tunable_scaling`.
    pub sysctls: Vec<Field>,
    /// `sysctl_sched_tunable_scaling` (printed `%d (%s)`), when the kernel has it.
    pub tunable_scaling: Option<i64>,
}

/// One CPU's block (`print_cpu()`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuBlock {
    pub cpu: u32,
    /// `cpu_khz` on x86 (the line reads `cpu#N, %u.%03u MHz`); `None` elsewhere (`cpu#N`).
    pub khz: Option<u32>,
    pub body: CpuBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum CpuBody {
    Present(Box<RqBlock>),
    /// The CPU's runqueue could not be read (for example its pages are not in the dump): the block
    /// holds one placeholder line saying why.
    Missing {
        reason: String,
    },
}

/// What `print_cpu()` prints after the `cpu#` line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RqBlock {
    /// `  .%-30s: …` lines of `struct rq` (with `curr->pid` in its place).
    pub rq: Vec<Field>,
    /// `cfs_rq[N]:<path>` sections in `rq->leaf_cfs_rq_list` order.
    pub cfs: Vec<Section>,
    /// `rt_rq[N]:` sections.
    pub rt: Vec<Section>,
    /// `dl_rq[N]:` section.
    pub dl: Vec<Section>,
    /// The `runnable tasks:` table.
    pub tasks: TaskTable,
    /// Problems met while collecting this CPU that did not stop it (shown only as annotations).
    pub problems: Vec<String>,
}

/// A `cfs_rq[N]:…`, `rt_rq[N]:…` or `dl_rq[N]:` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The task group's path after the colon (`/`, `/system.slice`, `/autogroup-12`), or `None`
    /// when the kernel prints none (no group scheduling for this class).
    #[serde(serialize_with = "ser_opt_bytes")]
    pub path: Option<Vec<u8>>,
    pub fields: Vec<Field>,
}

/// The column layout of the task table, which changed twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskColumns {
    /// Before Linux 5.8: `%15s` right after the state, a shorter header and dash line.
    CfsOld,
    /// 5.8 up to EEVDF: ` %15s`, `tree-key` header; `sum_block` appended when schedstats have it.
    #[default]
    Cfs,
    /// EEVDF (6.6+ with `se.deadline`): vruntime, eligible, deadline, slice columns.
    Eevdf {
        /// `CONFIG_NUMA_BALANCING`: the header names `node` and `group-id`.
        numa: bool,
        /// `CONFIG_CGROUP_SCHED`: the header names `group-path`.
        cgroup: bool,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskTable {
    pub columns: TaskColumns,
    pub rows: Vec<TaskRow>,
}

/// One task line (`print_task()`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    /// `rq->curr == p`: printed `>R` instead of a space and the state letter.
    pub current: bool,
    /// The letter `task_state_to_char()` gives.
    pub state: char,
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    pub pid: i32,
    pub vruntime: i64,
    /// `nvcsw + nivcsw`.
    pub switches: i64,
    pub prio: i32,
    pub wait_sum: i64,
    pub sum_exec: i64,
    pub sum_sleep: i64,
    /// `stats.sum_block_runtime` where the kernel prints it.
    pub sum_block: Option<i64>,
    /// The EEVDF columns.
    pub eevdf: Option<EevdfColumns>,
    /// `task_node(p)`, `task_numa_group_id(p)` under `CONFIG_NUMA_BALANCING`.
    pub numa: Option<(i32, i32)>,
    /// The task group's path under `CONFIG_CGROUP_SCHED`.
    #[serde(serialize_with = "ser_opt_bytes")]
    pub group_path: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EevdfColumns {
    /// `entity_eligible()`: `E` or `N`.
    pub eligible: bool,
    /// `se.deadline`.
    pub deadline: i64,
    /// `se.custom_slice`: the slice is prefixed `S`.
    pub custom_slice: bool,
    /// `se.slice`.
    pub slice: i64,
}

/// Serializes dump bytes losslessly ([`escape_bytes`]); shared by the plugins' records.
pub fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape_bytes(b))
}

/// [`ser_bytes`] for an optional value.
pub fn ser_opt_bytes<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_some(&escape_bytes(b)),
        None => s.serialize_none(),
    }
}

/// Bytes read from the dump as text, losslessly: valid UTF-8 is kept, every other byte becomes
/// `\xNN`, and a literal backslash is doubled so the escaping can be undone.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}
