//! The records the meminfo plugin collects once and renders twice (`/proc/meminfo` and JSON).

use serde::Serialize;

/// Every line `meminfo_proc_show()` (fs/proc/meminfo.c), `hugetlb_report_meminfo()`
/// (mm/hugetlb.c) and x86's `arch_report_meminfo()` (arch/x86/mm/pat/set_memory.c) can print,
/// in the order they print them, across 4.18 – 6.12. Which of them a kernel prints depends on
/// its configuration (`CONFIG_ZSWAP`, `CONFIG_CMA`, …); the collector probes that and emits a
/// subset, in this order. Left out on purpose: `HighTotal`/`HighFree`/`LowTotal`/`LowFree`
/// (32-bit `CONFIG_HIGHMEM`) and `MmapCopy` (no-MMU kernels).
pub const ORDER: &[&str] = &[
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active(anon)",
    "Inactive(anon)",
    "Active(file)",
    "Inactive(file)",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Zswap",
    "Zswapped",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "KReclaimable",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "ShadowCallStack",
    "PageTables",
    "SecPageTables",
    "NFS_Unstable",
    "Bounce",
    "WritebackTmp",
    "CommitLimit",
    "Committed_AS",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "Percpu",
    "EarlyMemtestBad",
    "HardwareCorrupted",
    "AnonHugePages",
    "ShmemHugePages",
    "ShmemPmdMapped",
    "FileHugePages",
    "FilePmdMapped",
    "CmaTotal",
    "CmaFree",
    "Unaccepted",
    "Balloon",
    "HugePages_Total",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "Hugepagesize",
    "Hugetlb",
    "DirectMap4k",
    "DirectMap2M",
    "DirectMap1G",
    // s390x (arch/s390/mm/pageattr.c)
    "DirectMap1M",
    "DirectMap2G",
];

/// What a line's number counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Kibibytes, printed with ` kB`.
    Kb,
    /// A plain count (the `HugePages_*` lines: huge pages of the default size).
    Count,
}

/// How the kernel prints a line: the label's padded width, the number's width, the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineFormat {
    pub label_width: usize,
    pub value_width: usize,
    pub unit: Unit,
}

/// `show_val_kb()` and the `"%-16s%8lu kB"`-shaped `seq_printf`s: the label (key and colon)
/// padded to 16, the number right-aligned in 8, ` kB`. Three families differ: the 19-wide labels
/// of `HardwareCorrupted: %5lu kB` and `EarlyMemtestBad:   %5lu kB`, and the `HugePages_*:   %5lu`
/// counts without a unit.
pub fn format_of(key: &str) -> LineFormat {
    match key {
        "HardwareCorrupted" | "EarlyMemtestBad" => LineFormat {
            label_width: 19,
            value_width: 5,
            unit: Unit::Kb,
        },
        "HugePages_Total" | "HugePages_Free" | "HugePages_Rsvd" | "HugePages_Surp" => LineFormat {
            label_width: 19,
            value_width: 5,
            unit: Unit::Count,
        },
        _ => LineFormat {
            label_width: 16,
            value_width: 8,
            unit: Unit::Kb,
        },
    }
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    pub key: &'static str,
    /// In kB, or a count for [`Unit::Count`] lines.
    pub value: u64,
    pub unit: Unit,
}

/// A line this kernel prints that the dump could not determine, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub key: &'static str,
    pub reason: String,
}

/// `meminfo.json`, and the source of `proc/meminfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Meminfo {
    /// In the kernel's order.
    pub lines: Vec<Line>,
    /// Lines left out of the file, with the reason.
    pub left_out: Vec<LeftOut>,
    /// How values were derived where the dump differs from a live read (per-CPU sums, the CPUs
    /// a panic took offline), one sentence each.
    pub notes: Vec<String>,
    pub page_size: u64,
}

impl Meminfo {
    /// The value of a line, if it is in the file.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.lines.iter().find(|l| l.key == key).map(|l| l.value)
    }
}
