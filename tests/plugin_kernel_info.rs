//! kernel_info on in-memory kernels: uts bytes kept losslessly, the taint table read from the
//! kernel (6.12 `desc`) or documented (6.1), uptime from the timekeeper or from jiffies, and the
//! files written. Expected values: the builder's numbers and the kernel's formulas by hand.

mod common;

use common::fake_kernel::*;
use vmcore_report::plugins::kernel_info::collect::collect;
use vmcore_report::plugins::kernel_info::{DumpFacts, render_outputs};

fn uts_node(nodename: Node) -> Node {
    st(vec![(
        "name",
        st(vec![
            ("sysname", s("Linux")),
            ("nodename", nodename),
            ("release", s("6.1.0-56-cloud-amd64")),
            (
                "version",
                s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"),
            ),
            ("machine", s("x86_64")),
            ("domainname", s("(none)")),
        ]),
    )])
}

fn flag(t: char, f: char, module: bool, desc: Option<&str>) -> Node {
    let mut m = vec![
        ("c_true", Node::Int(t as i64, 1)),
        ("c_false", Node::Int(f as i64, 1)),
        ("module", Node::Int(i64::from(module), 1)),
    ];
    if let Some(d) = desc {
        m.push(("desc", s(d)));
    }
    st(m)
}

fn facts() -> DumpFacts {
    DumpFacts {
        arch: Some("x86_64".into()),
        page_size: Some(4096),
        kaslr_offset: Some(0x2a00_0000),
        crash_time: Some(1_795_000_000),
        dump_time: Some(1_795_000_060),
        format: Some("elf".into()),
        cpu_notes: Some(2),
    }
}

#[test]
fn a_6_1_kernel_without_taint_desc_uses_the_documented_names() {
    let mut k = FakeKernel::new();
    k.var("init_uts_ns", uts_node(s("lab-guest")));
    k.var(
        "linux_banner",
        s("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1\n"),
    );
    k.var("tainted_mask", int(4096));
    // 6.1's table: 19 entries without desc; only the first two differ from spaces here.
    let mut flags = vec![flag('P', 'G', true, None), flag('F', ' ', true, None)];
    for c in "SRMBUDAWCIOELKXTN".chars() {
        flags.push(flag(c, ' ', false, None));
    }
    k.var("taint_flags", Node::Array(flags));
    k.var("jiffies_64", int(4_294_893_186));
    k.var("tick_nsec", int(4_000_000));
    k.cpumasks.insert("__cpu_online_mask".into(), vec![0, 1]);
    k.cpumasks.insert("__cpu_possible_mask".into(), vec![0, 1]);
    k.var("nr_cpu_ids", int4(2));

    let c = collect(&k, &facts());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let info = &c.info;
    let t = info.taints.as_ref().unwrap();
    // The 6.1 guest's panic line reads "Tainted: G           O      " for mask 4096.
    assert_eq!(t.string, "Tainted: G           O      ");
    assert_eq!(t.table, "kernel");
    assert_eq!(t.flags.len(), 1);
    assert_eq!((t.flags[0].bit, t.flags[0].letter), (12, 'O'));
    assert_eq!(t.flags[0].name, "OOT_MODULE");
    // HZ = 1e9 / tick_nsec = 250; INITIAL_JIFFIES = (u32)(-300·250) = 4294892296;
    // (4294893186 − 4294892296) / 250 = 3.56 s.
    let up = info.uptime.as_ref().unwrap();
    assert_eq!(up.source, "jiffies");
    assert!((up.seconds - 3.56).abs() < 1e-9, "{}", up.seconds);
    assert_eq!(info.cpus.online, Some(2));
    assert_eq!(info.cpus.present, None);
    assert_eq!(info.cpus.nr_cpu_ids, Some(2));
    // 1795000000 s after the epoch, per Python's datetime.
    assert_eq!(info.crash_time_utc.as_deref(), Some("2026-11-18T11:06:40Z"));
    assert_eq!(info.dump_time_utc.as_deref(), Some("2026-11-18T11:07:40Z"));

    let files = render_outputs(info).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "uts.json",
            "uts.txt",
            "banner.txt",
            "taints.json",
            "kernel_info.json"
        ]
    );
    let uts: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(uts["nodename"], "lab-guest");
    assert_eq!(uts["machine"], "x86_64");
    let txt = String::from_utf8(files[1].1.clone()).unwrap();
    assert!(
        txt.starts_with("sysname: Linux\nnodename: lab-guest\nrelease: 6.1.0-56-cloud-amd64\n")
    );
    let ki: serde_json::Value = serde_json::from_slice(&files[4].1).unwrap();
    assert_eq!(ki["kaslr_offset"], "0x2a000000");
    assert_eq!(ki["taints"]["mask"], 4096);
    assert_eq!(ki["page_size"], 4096);
}

#[test]
fn a_6_12_kernel_names_taints_from_desc_and_uptime_from_the_timekeeper() {
    let mut k = FakeKernel::new();
    k.var(
        "init_uts_ns",
        uts_node(Node::Str(b"caf\xe9\\host".to_vec())),
    );
    k.var("tainted_mask", int(1 | (1 << 9)));
    k.var(
        "taint_flags",
        Node::Array(vec![
            flag('P', 'G', true, Some("PROPRIETARY_MODULE")),
            flag('F', ' ', true, Some("FORCED_MODULE")),
            flag('S', ' ', false, Some("CPU_OUT_OF_SPEC")),
            flag('R', ' ', false, Some("FORCED_RMMOD")),
            flag('M', ' ', false, Some("MACHINE_CHECK")),
            flag('B', ' ', false, Some("BAD_PAGE")),
            flag('U', ' ', false, Some("USER")),
            flag('D', ' ', false, Some("DIE")),
            flag('A', ' ', false, Some("OVERRIDDEN_ACPI_TABLE")),
            flag('W', ' ', false, Some("WARN")),
        ]),
    );
    k.var(
        "tk_core",
        st(vec![(
            "timekeeper",
            st(vec![
                (
                    "tkr_mono",
                    st(vec![
                        ("base", int(3_560_000_000)),
                        ("xtime_nsec", int(721_150 << 8)),
                        ("shift", int4(8)),
                    ]),
                ),
                ("offs_boot", int(1_000_000_000)),
            ]),
        )]),
    );
    let c = collect(&k, &DumpFacts::default());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let t = c.info.taints.as_ref().unwrap();
    assert_eq!(t.string, "Tainted: P        W");
    let names: Vec<&str> = t.flags.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["PROPRIETARY_MODULE", "WARN"]);
    // boottime = 3.560721150 s monotonic + 1 s suspended.
    let up = c.info.uptime.as_ref().unwrap();
    assert_eq!(up.source, "timekeeper");
    assert!((up.seconds - 4.560_721_15).abs() < 1e-9);
    // Invalid UTF-8 kept as \xNN, the backslash doubled: nothing dropped.
    let files = render_outputs(&c.info).unwrap();
    let uts: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(uts["nodename"], "caf\\xe9\\\\host");
    assert!(files.iter().all(|(n, _)| *n != "banner.txt"));
}

#[test]
fn without_taint_flags_the_documented_table_is_used() {
    let mut k = FakeKernel::new();
    k.var("tainted_mask", int(0));
    let c = collect(&k, &DumpFacts::default());
    let t = c.info.taints.unwrap();
    assert_eq!(t.string, "Not tainted");
    assert_eq!(t.table, "documented");
    assert!(t.flags.is_empty());
    assert!(c.info.uts.is_none());
}

#[test]
fn an_unreadable_uts_is_reported_and_the_rest_continues() {
    let mut k = FakeKernel::new();
    k.var(
        "init_uts_ns",
        st(vec![("name", st(vec![("sysname", Node::Bad)]))]),
    );
    k.var("tainted_mask", int(4096));
    let c = collect(&k, &DumpFacts::default());
    assert!(c.info.uts.is_none());
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].code, "not-dumped");
    assert_eq!(c.info.taints.unwrap().mask, 4096);
}
