//! The meminfo plugin: its renderer and line table against `/proc/meminfo` as live guests
//! printed it (tests/data/live: 6.1 on x86_64 and aarch64, 6.12 on x86_64), and its collector
//! on in-memory kernels (tests/common/fake_kernel.rs) whose counters were chosen so that the
//! kernel's formulas, worked by hand in the comments, give the live 6.1 file; then variations:
//! counters moved between the zone and node enums, configuration-dependent lines, and counters
//! the dump cannot give, which must be left out and listed, never stubbed.

mod common;

use common::fake_kernel::*;
use vmcore_report::plugins::meminfo::collect::collect;
use vmcore_report::plugins::meminfo::record::{Line, Meminfo, ORDER, Unit, format_of};
use vmcore_report::plugins::meminfo::render::proc_meminfo;

/// 5.10: no `SecPageTables` (6.2 added it).
const SETS: [&str; 5] = [
    "x86_64-6.1-l5",
    "aarch64-6.1",
    "x86_64-6.12",
    "x86_64-5.10",
    "aarch64-5.10",
];

fn live(set: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/live/meminfo-{set}.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// `Key:   123 kB` → (key, value, has kB), by this test's own splitting.
fn parse(text: &str) -> Vec<(String, u64, bool)> {
    text.lines()
        .map(|l| {
            let (k, rest) = l.split_once(':').unwrap();
            let mut it = rest.split_whitespace();
            let v = it.next().unwrap().parse().unwrap();
            (k.to_string(), v, it.next() == Some("kB"))
        })
        .collect()
}

/// Every line the live kernels printed is in the table, in the table's order, with the unit the
/// kernel printed; rendering the parsed values gives the live bytes back.
#[test]
fn renders_the_live_files_byte_for_byte() {
    for set in SETS {
        let text = live(set);
        let mut m = Meminfo::default();
        let mut last = 0;
        for (key, value, kb) in parse(&text) {
            let pos = ORDER
                .iter()
                .position(|k| *k == key)
                .unwrap_or_else(|| panic!("{set}: {key} is not in ORDER"));
            assert!(pos >= last, "{set}: {key} out of order");
            last = pos;
            let key: &'static str = ORDER[pos];
            let unit = format_of(key).unit;
            assert_eq!(unit == Unit::Kb, kb, "{set}: unit of {key}");
            m.lines.push(Line { key, value, unit });
        }
        assert_eq!(proc_meminfo(&m), text, "{set}");
    }
}

/// Widths the live files did not show: a value wider than its column is not cut, and the
/// 19-wide labels of the `%5lu` lines.
#[test]
fn wide_values_and_the_five_wide_lines() {
    let line = |key: &'static str, value| Line {
        key,
        value,
        unit: format_of(key).unit,
    };
    let m = Meminfo {
        lines: vec![
            line("MemTotal", 1_234_567_890),
            line("ShadowCallStack", 12),
            line("EarlyMemtestBad", 0),
            line("HardwareCorrupted", 123_456),
            line("HugePages_Total", 1024),
            line("Hugetlb", 4_194_304),
        ],
        ..Default::default()
    };
    assert_eq!(
        proc_meminfo(&m),
        "MemTotal:       1234567890 kB\n\
         ShadowCallStack:      12 kB\n\
         EarlyMemtestBad:       0 kB\n\
         HardwareCorrupted: 123456 kB\n\
         HugePages_Total:    1024\n\
         Hugetlb:         4194304 kB\n"
    );
}

// ---- the collector on in-memory kernels ------------------------------------------------------

/// `enum zone_stat_item` and `enum node_stat_item` of a 6.1 kernel (the subset meminfo reads;
/// the values are this test's, the collector must take them from the enums, not assume them).
const ZONE_ITEMS: &[&str] = &[
    "NR_FREE_PAGES",
    "NR_MLOCK",
    "NR_BOUNCE",
    "NR_FREE_CMA_PAGES",
];
const NODE_ITEMS: &[&str] = &[
    "NR_INACTIVE_ANON",
    "NR_ACTIVE_ANON",
    "NR_INACTIVE_FILE",
    "NR_ACTIVE_FILE",
    "NR_UNEVICTABLE",
    "NR_SLAB_RECLAIMABLE_B",
    "NR_SLAB_UNRECLAIMABLE_B",
    "NR_FILE_PAGES",
    "NR_FILE_DIRTY",
    "NR_WRITEBACK",
    "NR_ANON_MAPPED",
    "NR_FILE_MAPPED",
    "NR_SHMEM",
    "NR_KERNEL_MISC_RECLAIMABLE",
    "NR_KERNEL_STACK_KB",
    "NR_PAGETABLE",
    "NR_SECONDARY_PAGETABLE",
    "NR_WRITEBACK_TEMP",
    "NR_ANON_THPS",
    "NR_SHMEM_THPS",
    "NR_SHMEM_PMDMAPPED",
    "NR_FILE_THPS",
    "NR_FILE_PMDMAPPED",
    "NR_SWAPCACHE",
];

/// Counter values by item name.
type Counters = Vec<(&'static str, i64)>;

/// The counters of the x86_64 6.1 guest (tests/data/live/meminfo-x86_64-6.1-l5.txt), in pages
/// (kB / 4) unless named `_KB`: (zone items, node items).
fn counters_61() -> (Counters, Counters) {
    let zone = vec![("NR_FREE_PAGES", 48780)]; // MemFree 195120 kB
    let node = vec![
        ("NR_INACTIVE_ANON", 101),         // 404 kB
        ("NR_ACTIVE_ANON", 465),           // 1860 kB
        ("NR_SLAB_RECLAIMABLE_B", 2277),   // 9108 kB
        ("NR_SLAB_UNRECLAIMABLE_B", 1692), // 6768 kB
        ("NR_FILE_PAGES", 495),            // Cached 1980 kB: 495 - 0 swap cache - 0 buffers
        ("NR_ANON_MAPPED", 80),            // 320 kB
        ("NR_FILE_MAPPED", 400),           // 1600 kB
        ("NR_SHMEM", 495),                 // 1980 kB
        ("NR_KERNEL_STACK_KB", 960),       // already kB
        ("NR_PAGETABLE", 39),              // 156 kB
    ];
    (zone, node)
}

/// An atomic_long_t array with `values` at the enum's indexes, zero elsewhere, plus `extra`
/// unused slots (the kernel's arrays have more items than meminfo reads).
fn stat_array(items: &[&str], values: &[(&str, i64)]) -> Node {
    Node::Array(
        (0..items.len() + 3)
            .map(|i| {
                let v = items
                    .get(i)
                    .and_then(|n| values.iter().find(|(k, _)| k == n))
                    .map_or(0, |(_, v)| *v);
                st(vec![("counter", int(v))])
            })
            .collect(),
    )
}

fn set_enum(k: &mut FakeKernel, enum_name: &str, items: &[&str]) {
    k.set_enum(
        enum_name,
        &items
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as i64))
            .collect::<Vec<_>>(),
    );
}

/// The vmstat enums, and the watermark and page-level enums meminfo also reads.
fn set_enums(k: &mut FakeKernel, zone_items: &[&str], node_items: &[&str]) {
    set_enum(k, "zone_stat_item", zone_items);
    set_enum(k, "node_stat_item", node_items);
    k.set_enum(
        "zone_watermarks",
        &[("WMARK_MIN", 0), ("WMARK_LOW", 1), ("WMARK_HIGH", 2)],
    );
    k.set_enum(
        "pg_level",
        &[
            ("PG_LEVEL_NONE", 0),
            ("PG_LEVEL_4K", 1),
            ("PG_LEVEL_2M", 2),
            ("PG_LEVEL_1G", 3),
        ],
    );
}

fn zone(low: i64, boost: i64) -> Node {
    st(vec![
        (
            "_watermark",
            Node::Array(vec![int(low / 2), int(low), int(low * 3 / 2)]),
        ),
        ("watermark_boost", int(boost)),
    ])
}

/// A whole 6.1 x86_64 kernel as the l5 guest had it.
fn kernel_61() -> FakeKernel {
    kernel_61_without(&[])
}

/// The same, without the variables named in `skip` (a kernel configured without them).
fn kernel_61_without(skip: &[&str]) -> FakeKernel {
    let mut fk = FakeKernel::new();
    let k = &mut Builder { k: &mut fk, skip };
    set_enums(k, ZONE_ITEMS, NODE_ITEMS);
    let (zv, nv) = counters_61();
    k.var("vm_zone_stat", stat_array(ZONE_ITEMS, &zv));
    k.var("vm_node_stat", stat_array(NODE_ITEMS, &nv));
    k.var("_totalram_pages", st(vec![("counter", int(55593))])); // 222372 kB
    // MemAvailable 198412 kB = 49603 pages = free 48780 - reserve 316 + file LRU 0
    //   + reclaimable 2277 - min(2277 / 2 = 1138, low watermarks 1240)
    k.var("totalreserve_pages", int(316));
    let pgdat = k.alloc(st(vec![(
        "node_zones",
        Node::Array(vec![zone(40, 0), zone(1190, 10), zone(0, 0), zone(0, 0)]),
    )]));
    k.var(
        "node_data",
        Node::Array(vec![ptr(pgdat, ""), null(), null()]),
    );
    // Buffers: one block device inode with no cached pages
    let inode = k.reserve();
    k.set(
        inode,
        st(vec![
            ("i_sb_list", int(0)),
            ("i_mapping", ptr(inode, "i_data")),
            ("i_data", st(vec![("nrpages", int(0))])),
        ]),
    );
    let sb = k.alloc(st(vec![(
        "s_inodes",
        Node::List(vec![(inode, String::new())]),
    )]));
    k.var("blockdev_superblock", ptr(sb, ""));
    k.var("total_swap_pages", int(0));
    k.var("nr_swap_pages", st(vec![("counter", int(0))]));
    k.var("nr_swapfiles", int4(0));
    // CommitLimit 111184 kB = 27796 pages = (55593 - 0 huge) * 50 / 100 + 0 swap
    k.var("sysctl_overcommit_kbytes", int(0));
    k.var("sysctl_overcommit_ratio", int(50));
    // Committed_AS 4332 kB = 1083 pages = 1000 + 50 (CPU 0) + 33 (CPU 1, offline after the panic)
    let c0 = k.alloc(int4(50));
    let c1 = k.alloc(int4(33));
    let pc = k.alloc(Node::PerCpu(vec![Some(c0), Some(c1)]));
    k.var(
        "vm_committed_as",
        st(vec![("count", int(1000)), ("counters", ptr(pc, ""))]),
    );
    k.cpumasks.insert("__cpu_possible_mask".into(), vec![0, 1]);
    k.cpumasks.insert("__cpu_online_mask".into(), vec![0]);
    // VmallocTotal: x86_64 with 5-level paging
    k.symbols.insert("vmalloc_base".into(), 0xffffffff82000000);
    k.set_vmcoreinfo("NUMBER(pgtable_l5_enabled)", "1");
    k.var("nr_vmalloc_pages", st(vec![("counter", int(1303))])); // 5212 kB
    k.var("pcpu_nr_populated", int4(64)); // Percpu 512 kB = 64 * 2 units
    k.var("pcpu_nr_units", int4(2));
    k.symbols
        .insert("transparent_hugepage_flags".into(), 0xffffffff83000000);
    // every build has totalcma_pages; without CONFIG_CMA (no cma_areas) nothing is printed
    k.var("totalcma_pages", int(0));
    let hstate = |order| {
        st(vec![
            ("order", int4(order)),
            ("nr_huge_pages", int(0)),
            ("free_huge_pages", int(0)),
            ("resv_huge_pages", int(0)),
            ("surplus_huge_pages", int(0)),
        ])
    };
    k.var("hstates", Node::Array(vec![hstate(9), hstate(0)]));
    k.var("hugetlb_max_hstate", int4(1));
    k.var("default_hstate_idx", int4(0));
    // DirectMap4k 26492 kB = 6623 4k pages; DirectMap2M 235520 kB = 115 2M pages
    k.var(
        "direct_pages_count",
        Node::Array(vec![int(0), int(6623), int(115), int(0), int(0)]),
    );
    k.var("direct_gbpages", int4(1));
    fk
}

/// Sets variables unless they are to be skipped; everything else goes to the fake kernel.
struct Builder<'a> {
    k: &'a mut FakeKernel,
    skip: &'a [&'a str],
}

impl std::ops::Deref for Builder<'_> {
    type Target = FakeKernel;
    fn deref(&self) -> &FakeKernel {
        self.k
    }
}

impl std::ops::DerefMut for Builder<'_> {
    fn deref_mut(&mut self) -> &mut FakeKernel {
        self.k
    }
}

impl Builder<'_> {
    fn var(&mut self, name: &str, node: Node) {
        if !self.skip.contains(&name) {
            self.k.var(name, node);
        }
    }
}

#[test]
fn a_61_kernel_gives_the_live_file() {
    let c = collect(&kernel_61());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.meminfo.left_out.is_empty(), "{:?}", c.meminfo.left_out);
    assert_eq!(proc_meminfo(&c.meminfo), live("x86_64-6.1-l5"));
    assert!(
        c.meminfo
            .notes
            .iter()
            .any(|n| n.contains("2 possible CPUs")),
        "{:?}",
        c.meminfo.notes
    );
}

/// Items that live in the other enum on another kernel are read from that enum's array: here
/// the 5.8 layout, where the kernel stack and page tables were zone items.
#[test]
fn counters_are_read_from_the_array_their_enum_names() {
    let mut k = kernel_61();
    let zone_items: Vec<&str> = ZONE_ITEMS
        .iter()
        .copied()
        .chain(["NR_KERNEL_STACK_KB", "NR_PAGETABLE"])
        .collect();
    let node_items: Vec<&str> = NODE_ITEMS
        .iter()
        .copied()
        .filter(|n| !["NR_KERNEL_STACK_KB", "NR_PAGETABLE"].contains(n))
        .collect();
    k.enumerators.clear();
    k.enum_types.clear();
    set_enums(&mut k, &zone_items, &node_items);
    let (mut zv, mut nv) = counters_61();
    nv.retain(|(n, _)| !["NR_KERNEL_STACK_KB", "NR_PAGETABLE"].contains(n));
    zv.push(("NR_KERNEL_STACK_KB", 960));
    zv.push(("NR_PAGETABLE", 39));
    k.var("vm_zone_stat", stat_array(&zone_items, &zv));
    k.var("vm_node_stat", stat_array(&node_items, &nv));
    let c = collect(&k);
    assert_eq!(c.meminfo.get("KernelStack"), Some(960));
    assert_eq!(c.meminfo.get("PageTables"), Some(156));
    assert_eq!(proc_meminfo(&c.meminfo), live("x86_64-6.1-l5"));
}

/// What the dump cannot give is left out and listed with its reason; every line left is one
/// insights-core's MemInfo accepts (`Key: <int>[ kB]`).
#[test]
fn missing_and_unreadable_counters_are_left_out_and_listed() {
    let mut k = kernel_61();
    // the vmalloc page count is unreadable
    k.var("nr_vmalloc_pages", Node::Bad);
    // CPU 1's per-CPU area is not in the dump
    let c0 = k.alloc(int4(50));
    let pc = k.alloc(Node::PerCpu(vec![Some(c0), None]));
    k.var(
        "vm_committed_as",
        st(vec![("count", int(1000)), ("counters", ptr(pc, ""))]),
    );
    // the block device list is unreadable
    k.var("blockdev_superblock", Node::Bad);
    let c = collect(&k);
    let out = proc_meminfo(&c.meminfo);
    let left: Vec<&str> = c.meminfo.left_out.iter().map(|l| l.key).collect();
    for key in ["VmallocUsed", "Committed_AS", "Buffers", "Cached"] {
        assert!(left.contains(&key), "{key} not listed: {left:?}");
        assert!(
            !out.lines().any(|l| l.starts_with(&format!("{key}:"))),
            "{key} printed:\n{out}"
        );
    }
    let committed = c
        .meminfo
        .left_out
        .iter()
        .find(|l| l.key == "Committed_AS")
        .unwrap();
    assert!(committed.reason.contains("CPU 1"), "{}", committed.reason);
    assert!(!c.errors.is_empty(), "unreadable memory is recorded");
    for l in out.lines() {
        let (k, v) = l.split_once(':').expect("a key");
        let mut it = v.split_whitespace();
        it.next()
            .unwrap()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{k}: {l}"));
        assert!(matches!(it.next(), None | Some("kB")), "{l}");
    }
    assert_eq!(c.meminfo.get("MemTotal"), Some(222372));
}

/// Lines that depend on the configuration: zswap (empty pool list: 0; pools: left out), CMA,
/// unaccepted memory, the memory-test line, the 4-level vmalloc size, VMCOREINFO's vmalloc
/// range, and no THP, huge-page or direct-map lines where the kernel has none.
#[test]
fn configuration_dependent_lines() {
    let mut k = kernel_61();
    k.symbols
        .insert("zswap_stored_pages".into(), 0xffffffff84000000);
    k.var("zswap_stored_pages", st(vec![("counter", int(3))]));
    k.var("zswap_pools", Node::List(vec![]));
    k.var("totalcma_pages", int(16384));
    k.symbols.insert("cma_areas".into(), 0xffffffff85000000);
    k.enum_types
        .get_mut("zone_stat_item")
        .unwrap()
        .insert("NR_UNACCEPTED".into(), 6);
    k.var("early_memtest_done", Node::Int(1, 1));
    k.var("early_memtest_bad_size", int(100)); // under 1 kB but not zero: printed as 1
    k.set_vmcoreinfo("NUMBER(pgtable_l5_enabled)", "0");
    k.symbols.remove("transparent_hugepage_flags");
    let c = collect(&k);
    let m = &c.meminfo;
    assert_eq!(m.get("Zswap"), Some(0));
    assert_eq!(m.get("Zswapped"), Some(12));
    assert_eq!(m.get("CmaTotal"), Some(65536));
    assert_eq!(m.get("CmaFree"), Some(0));
    assert_eq!(m.get("Unaccepted"), Some(0));
    assert_eq!(m.get("EarlyMemtestBad"), Some(1));
    assert_eq!(m.get("VmallocTotal"), Some(34359738367));
    assert_eq!(m.get("AnonHugePages"), None);
    let keys: Vec<&str> = m.lines.iter().map(|l| l.key).collect();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(pos("SwapFree") < pos("Zswap") && pos("Zswapped") < pos("Dirty"));
    assert!(pos("Percpu") < pos("EarlyMemtestBad"));
    assert!(pos("CmaFree") < pos("Unaccepted") && pos("Unaccepted") < pos("HugePages_Total"));

    let mut k = kernel_61_without(&["hstates", "direct_pages_count"]);
    let pool = k.alloc(st(vec![("list", int(0))]));
    k.symbols
        .insert("zswap_stored_pages".into(), 0xffffffff84000000);
    k.var("zswap_stored_pages", st(vec![("counter", int(3))]));
    k.var("zswap_pools", Node::List(vec![(pool, String::new())]));
    // arm64 exports its vmalloc range
    k.set_vmcoreinfo("NUMBER(VMALLOC_START)", "0xffff800008000000");
    k.set_vmcoreinfo("NUMBER(VMALLOC_END)", "0xfffffbfff0000000");
    let c = collect(&k);
    assert!(c.meminfo.left_out.iter().any(|l| l.key == "Zswap"));
    assert_eq!(c.meminfo.get("VmallocTotal"), Some(133143592960));
    for key in ["HugePages_Total", "Hugetlb", "DirectMap4k", "DirectMap1G"] {
        assert_eq!(c.meminfo.get(key), None, "{key}");
    }
    assert!(c.errors.is_empty(), "{:?}", c.errors);
}
