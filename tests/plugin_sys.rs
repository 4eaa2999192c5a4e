//! The sys plugin without a dump: its formats, the log rules, and the collector on the
//! in-memory kernel (tests/common/fake_kernel.rs). Expected values are worked out by hand from
//! the kernel's and the tools' rules, cited at each test.

mod common;

use std::collections::BTreeMap;

use common::fake_kernel::{FakeKernel, Node, int, int4, null, ptr, s, st};
use vmcore_report::addr::Arch;
use vmcore_report::dump::CpuState;
use vmcore_report::plugins::sys::collect::{
    SysInput, collect, date_string, last_oops_block, loadavg_figure, panic_message,
};
use vmcore_report::plugins::sys::cpuinfo::{
    Arm64Cpu, CpuInfo, X86Cpu, X86Topology, render, render_x86,
};
use vmcore_report::plugins::sys::render::{cpulist, sos_files, uname_a};

/// `%*pbl` (lib/bitmap.c `bitmap_print_to_pagebuf`, list form).
#[test]
fn cpu_lists_print_as_the_kernel_does() {
    assert_eq!(cpulist(&[0, 1, 2, 3, 5]), "0-3,5");
    assert_eq!(cpulist(&[7]), "7");
    assert_eq!(cpulist(&[0, 2, 4, 5, 6, 9, 10]), "0,2,4-6,9-10");
    assert_eq!(cpulist(&[]), "");
}

/// fs/proc/loadavg.c: `LOAD_INT(a + FIXED_1/200)`, `LOAD_FRAC(…)` with FSHIFT 11.
#[test]
fn load_average_figures() {
    assert_eq!(loadavg_figure(0), "0.00");
    // 1.5 × 2048 = 3072; + 10 → 3082: int 1, frac (1034 × 100) >> 11 = 50
    assert_eq!(loadavg_figure(3072), "1.50");
    // 655 + 10 = 665: frac (665 × 100) >> 11 = 32
    assert_eq!(loadavg_figure(655), "0.32");
}

/// `date` in the C locale (`%a %b %e %H:%M:%S %Z %Y`): GNU date printed this for the epoch.
#[test]
fn date_as_date_prints_it() {
    assert_eq!(
        date_string(1_796_165_541).as_deref(),
        Some("Tue Dec  1 22:52:21 UTC 2026")
    );
}

fn lines(t: &str) -> Vec<String> {
    t.lines().map(String::from).collect()
}

/// kernel/panic.c prints the message twice; the first form wins, the end marker is a fallback.
#[test]
fn the_panic_message_comes_from_the_log() {
    let log = lines(
        "[    7.064074] sysrq: Trigger a crash\n\
         [    7.064396] Kernel panic - not syncing: sysrq triggered crash\n\
         [    7.065421] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n",
    );
    assert_eq!(
        panic_message(&log).as_deref(),
        Some("sysrq triggered crash")
    );
    let end_only =
        lines("[    7.065421] ---[ end Kernel panic - not syncing: Fatal exception ]---\n");
    assert_eq!(panic_message(&end_only).as_deref(), Some("Fatal exception"));
    assert_eq!(panic_message(&lines("[ 1.0] hello\n")), None);
}

/// The last block: an earlier WARNING (closed by its end-trace marker) is not it; the BUG's
/// first line and the `Oops:` line that follows it belong to one block.
#[test]
fn the_last_oops_block() {
    let log = lines(
        "[ 1.0] WARNING: CPU: 0 PID: 5 at mm/x.c:1 f+0x1/0x2\n\
         [ 1.1] ---[ end trace 0000000000000000 ]---\n\
         [ 2.0] fixture: about to fault\n\
         [ 2.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n\
         [ 2.2] #PF: supervisor write access in kernel mode\n\
         [ 2.3] Oops: 0002 [#1] PREEMPT SMP NOPTI\n\
         [ 2.4] RIP: 0010:trigger_write+0x20/0x30\n\
         [ 2.5] ---[ end trace 0000000000000000 ]---\n\
         [ 2.6] Kernel panic - not syncing: Fatal exception\n",
    );
    let b = last_oops_block(&log).unwrap();
    assert_eq!(
        b.first().unwrap(),
        "[ 2.1] BUG: kernel NULL pointer dereference, address: 0000000000000000"
    );
    assert_eq!(
        b.last().unwrap(),
        "[ 2.5] ---[ end trace 0000000000000000 ]---"
    );
    assert_eq!(b.len(), 5);
    assert_eq!(last_oops_block(&lines("[ 1.0] hello\n")), None);
}

fn uts() -> Node {
    st(vec![(
        "name",
        st(vec![
            ("sysname", s("Linux")),
            ("nodename", s("web01")),
            ("release", s("6.1.0-57-cloud-amd64")),
            (
                "version",
                s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"),
            ),
            ("machine", s("x86_64")),
            ("domainname", s("(none)")),
        ]),
    )])
}

/// A panic on CPU 1 of a 2-CPU kernel, whose CPU 1 runs `khungtaskd` (pid 39).
fn fake() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.var("init_uts_ns", uts());
    k.var(
        "linux_proc_banner",
        s("%s version %s (debian-kernel@lists.debian.org) (gcc-12) %s\n"),
    );
    k.var("saved_command_line", s("console=ttyS0 panic=0"));
    k.var("tainted_mask", int(4096));
    k.var("avenrun", Node::Array(vec![int(655), int(3072), int(0)]));
    k.var("nr_threads", int(58));
    k.var("_totalram_pages", st(vec![("counter", int(1000))]));
    k.var("panic_cpu", st(vec![("counter", int(1))]));
    k.var("panic_on_oops", int(0));
    let t0 = k.alloc(st(vec![
        ("pid", int(1)),
        ("comm", s("init")),
        ("__state", int(0)),
    ]));
    let t1 = k.alloc(st(vec![
        ("pid", int(39)),
        ("comm", s("khungtaskd")),
        ("__state", int(0)),
        ("exit_state", int(0)),
    ]));
    let rq0 = k.alloc(st(vec![("curr", ptr(t0, ""))]));
    let rq1 = k.alloc(st(vec![("curr", ptr(t1, ""))]));
    k.var("runqueues", Node::PerCpu(vec![Some(rq0), Some(rq1)]));
    for m in [
        "__cpu_possible_mask",
        "__cpu_present_mask",
        "__cpu_active_mask",
    ] {
        k.cpumasks.insert(m.into(), vec![0, 1]);
    }
    k.cpumasks.insert("__cpu_online_mask".into(), vec![1]);
    k
}

fn note(index: usize, pid: u32, first: u64) -> CpuState {
    CpuState {
        index,
        pid,
        regs: (0..27).map(|i| first + i).collect(),
        ..Default::default()
    }
}

#[test]
fn collector_and_sos_files() {
    let k = fake();
    let mut input = SysInput {
        arch: Some(Arch::X86_64),
        // QEMU writes the vCPU number + 1 as pr_pid: note 1 is CPU 1's, whatever its pid says.
        notes: vec![note(0, 1, 0x100), note(1, 2, 0x200)],
        log: Some(lines(
            "[ 9.0] Kernel panic - not syncing: hung_task: blocked tasks\n",
        )),
        ..Default::default()
    };
    input.facts.crash_time = Some(1_796_165_541);
    input.facts.page_size = Some(4096);
    let c = collect(&k, &input);
    let sys = &c.sys;
    let p = &sys.panic;
    assert_eq!(p.panic_cpu, Some(1));
    let t = p.task.as_ref().unwrap();
    assert_eq!((t.pid, &t.comm[..], t.cpu), (39, &b"khungtaskd"[..], 1));
    assert_eq!(p.message.as_deref(), Some("hung_task: blocked tasks"));
    let r = p.registers.as_ref().unwrap();
    assert_eq!(r.note_index, 1);
    assert_eq!(
        r.regs[16],
        ("rip".to_string(), format!("{:016x}", 0x200 + 16))
    );
    assert_eq!(
        sys.load_average.as_ref().unwrap(),
        &["0.32", "1.50", "0.00"]
    );
    assert_eq!(sys.mem_total, Some(1000 * 4096));
    assert_eq!(sys.nr_threads, Some(58));
    let files: std::collections::BTreeMap<&str, String> = sos_files(sys)
        .into_iter()
        .map(|(p, d)| (p, String::from_utf8(d).unwrap()))
        .collect();
    assert_eq!(
        files["sos_commands/kernel/uname_-a"],
        "Linux web01 6.1.0-57-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26) x86_64 GNU/Linux\n"
    );
    assert_eq!(
        files["proc/version"],
        "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n"
    );
    assert_eq!(files["proc/cmdline"], "console=ttyS0 panic=0\n");
    assert_eq!(files["proc/sys/kernel/tainted"], "4096\n");
    assert_eq!(files["proc/sys/kernel/hostname"], "web01\n");
    assert_eq!(files["proc/sys/kernel/osrelease"], "6.1.0-57-cloud-amd64\n");
    assert_eq!(files["sys/devices/system/cpu/online"], "1\n");
    assert_eq!(files["sys/devices/system/cpu/possible"], "0-1\n");
    assert_eq!(
        files["sos_commands/date/date"],
        "Tue Dec  1 22:52:21 UTC 2026\n"
    );
    assert!(uname_a(sys).is_some());
}

/// Without the log, a crash time or utsname, the files that need them are not written and
/// `missing` says why; nothing is invented.
#[test]
fn what_the_dump_lacks_is_left_out_and_said() {
    let k = FakeKernel::new();
    let input = SysInput {
        log_missing: "this kernel has no printk ring".into(),
        ..Default::default()
    };
    let c = collect(&k, &input);
    let files: Vec<&str> = sos_files(&c.sys).into_iter().map(|(p, _)| p).collect();
    assert!(files.is_empty(), "{files:?}");
    assert!(
        c.sys.missing.iter().any(|m| m.contains("printk ring")),
        "{:?}",
        c.sys.missing
    );
    assert!(
        c.sys.missing.iter().any(|m| m.starts_with("uts")),
        "{:?}",
        c.sys.missing
    );
    assert!(c.sys.panic.task.is_none());
}

/// A `/proc/cpuinfo` stanza's `key : value` lines, read the way insights-core's `CpuInfo` does.
fn stanza_fields(stanza: &str) -> BTreeMap<String, String> {
    stanza
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(':').expect("key : value");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// `show_cpuinfo()`'s format, byte for byte: the records are the values a live x86_64 6.1 guest
/// (QEMU TCG, `-cpu max`, 2 CPUs, HZ 250) printed in tests/data/live/cpuinfo-x86_64-6.1-l5.txt,
/// read back from that file; rendering them must give the file again.
#[test]
fn cpuinfo_renders_as_the_live_file() {
    let live = include_str!("data/live/cpuinfo-x86_64-6.1-l5.txt");
    let words = |v: &str| v.split_whitespace().map(String::from).collect::<Vec<_>>();
    let cpus: Vec<X86Cpu> = live
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|stanza| {
            let f = stanza_fields(stanza);
            let n = |k: &str| f[k].parse::<i64>().unwrap();
            let (mhz, khz_frac) = f["cpu MHz"].split_once('.').unwrap();
            // bogomips I.FF at HZ 250 is lpj / 2000 = I and (lpj / 20) % 100 = FF:
            // lpj = I × 2000 + FF × 20 is one such lpj
            let (bi, bf) = f["bogomips"].split_once('.').unwrap();
            let lpj = bi.parse::<u64>().unwrap() * 2000 + bf.parse::<u64>().unwrap() * 20;
            let addr = words(&f["address sizes"]);
            X86Cpu {
                processor: n("processor") as u32,
                vendor_id: f["vendor_id"].clone(),
                family: n("cpu family"),
                model: n("model"),
                model_name: f["model name"].clone(),
                stepping: n("stepping"),
                cpuid_level: n("cpuid level"),
                microcode: u64::from_str_radix(f["microcode"].trim_start_matches("0x"), 16)
                    .unwrap(),
                khz: Some(mhz.parse::<u64>().unwrap() * 1000 + khz_frac.parse::<u64>().unwrap()),
                cache_size_kb: f["cache size"].trim_end_matches(" KB").parse().unwrap(),
                topology: Some(X86Topology {
                    physical_id: n("physical id"),
                    siblings: n("siblings") as u32,
                    core_id: n("core id"),
                    cpu_cores: n("cpu cores"),
                    apicid: n("apicid"),
                    initial_apicid: n("initial apicid"),
                }),
                flags: words(&f["flags"]),
                vmx_flags: None,
                bugs: words(&f["bugs"]),
                loops_per_jiffy: lpj,
                hz: 250,
                tlb_size: words(&f["TLB size"])[0].parse().unwrap(),
                clflush_size: n("clflush size"),
                cache_alignment: n("cache_alignment"),
                phys_bits: addr[0].parse().unwrap(),
                virt_bits: addr[3].parse().unwrap(),
                power: Vec::new(),
            }
        })
        .collect();
    assert_eq!(cpus.len(), 2);
    assert_eq!(render_x86(&cpus), live);
}

/// The conditional lines: no microcode, cache size, TLB size or topology lines when zero or UP,
/// `stepping : unknown` (0 with cpuid_level < 0), `vmx flags`, power bits with names, an empty
/// name and an unnamed bit, and bogomips at HZ 1000 (lpj / 500, (lpj / 5) % 100).
#[test]
fn cpuinfo_conditional_lines() {
    let c = X86Cpu {
        processor: 3,
        vendor_id: "unknown".into(),
        family: 6,
        model: 85,
        model_name: "unknown".into(),
        stepping: 0,
        cpuid_level: -1,
        khz: None,
        flags: vec!["fpu".into(), "vmx".into()],
        vmx_flags: Some(vec!["vnmi".into(), "ept".into()]),
        loops_per_jiffy: 1_234_567,
        hz: 1000,
        clflush_size: 64,
        cache_alignment: 64,
        phys_bits: 46,
        virt_bits: 48,
        power: vec!["ts".into(), "".into(), "[9]".into()],
        ..Default::default()
    };
    assert_eq!(
        render_x86(&[c]),
        "processor\t: 3\nvendor_id\t: unknown\ncpu family\t: 6\nmodel\t\t: 85\n\
         model name\t: unknown\nstepping\t: unknown\n\
         fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: -1\nwp\t\t: yes\n\
         flags\t\t: fpu vmx\nvmx flags\t: vnmi ept\nbugs\t\t:\nbogomips\t: 2469.13\n\
         clflush size\t: 64\ncache_alignment\t: 64\n\
         address sizes\t: 46 bits physical, 48 bits virtual\n\
         power management: ts [9]\n\n"
    );
}

/// The collector's `proc/cpuinfo` on the fake, which it must read without an error.
fn collected_cpuinfo(k: &FakeKernel, arch: Arch) -> String {
    let input = SysInput {
        arch: Some(arch),
        ..Default::default()
    };
    let c = collect(k, &input);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let (_, file) = sos_files(&c.sys)
        .into_iter()
        .find(|(p, _)| *p == "proc/cpuinfo")
        .expect("proc/cpuinfo");
    String::from_utf8(file).unwrap()
}

/// A `const char *` table of `len` entries, NULL but for `named`.
fn name_table(k: &mut FakeKernel, len: usize, named: &[(usize, &str)]) -> Node {
    let mut v: Vec<Node> = (0..len).map(|_| null()).collect();
    for &(i, n) in named {
        let b = k.alloc(s(n));
        v[i] = ptr(b, "");
    }
    Node::Array(v)
}

/// The x86_64 collector on the 2-CPU fake: a 6.9+ `topo` layout, NCAPINTS 2 and NBUGINTS 1 (the
/// tables' lengths), HZ 250 from `tick_nsec`. CPU 1 has the `aperfmperf` flag: its live `cpu MHz`
/// was an APERF/MPERF estimate the dump does not hold, so its stanza has no such line.
#[test]
fn cpuinfo_collector_x86_64() {
    let mut k = fake();
    let caps = name_table(
        &mut k,
        64,
        &[(0, "fpu"), (4, "tsc"), (33, "lm"), (40, "aperfmperf")],
    );
    k.var("x86_cap_flags", caps);
    let bugs = name_table(&mut k, 32, &[(1, "spectre_v1")]);
    k.var("x86_bug_flags", bugs);
    let power = name_table(&mut k, 32, &[(0, "ts"), (1, "")]);
    k.var("x86_power_flags", power);
    k.var("tick_nsec", int(4_000_000));
    k.var("cpu_khz", int(2_599_996));
    k.var("nr_cpu_ids", int(2));
    let mut infos = Vec::new();
    let mut maps = Vec::new();
    for cpu in 0..2i64 {
        // word 0: fpu (0), tsc (4), bit 5 (unnamed); word 1: lm (33), on CPU 1 aperfmperf (40);
        // word 2 (bugs): bit 1 spectre_v1, bit 2 (unnamed)
        let w1 = (1 << 1) | if cpu == 1 { 1 << 8 } else { 0 };
        infos.push(k.alloc(st(vec![
            ("x86_vendor_id", s("GenuineIntel")),
            ("x86", int(6)),
            ("x86_model", int(85)),
            ("x86_model_id", s("Intel Xeon")),
            ("x86_stepping", int(7)),
            ("cpuid_level", int(22)),
            ("microcode", int(if cpu == 0 { 0 } else { 0x5003 })),
            ("x86_cache_size", int(if cpu == 0 { 0 } else { 16384 })),
            (
                "topo",
                st(vec![
                    ("pkg_id", int(0)),
                    ("core_id", int(cpu)),
                    ("apicid", int(cpu * 2)),
                    ("initial_apicid", int(cpu * 2)),
                ]),
            ),
            ("booted_cores", int(2)),
            (
                "x86_capability",
                Node::Array(vec![int4(0b11_0001), int4(w1), int4(0b110)]),
            ),
            ("x86_power", int((1 << 0) | (1 << 1) | (1 << 9))),
            ("loops_per_jiffy", int(10_399_998)),
            ("x86_tlbsize", int(0)),
            ("x86_clflush_size", int(64)),
            ("x86_cache_alignment", int(64)),
            ("x86_phys_bits", int(46)),
            ("x86_virt_bits", int(48)),
        ])));
        // an off-stack cpumask (a pointer); bit 2 is past nr_cpu_ids and not counted
        let mask = k.alloc(st(vec![("bits", Node::Array(vec![int(0b111)]))]));
        maps.push(k.alloc(ptr(mask, "")));
    }
    k.var(
        "cpu_info",
        Node::PerCpu(infos.into_iter().map(Some).collect()),
    );
    k.var(
        "cpu_core_map",
        Node::PerCpu(maps.into_iter().map(Some).collect()),
    );
    let ours = collected_cpuinfo(&k, Arch::X86_64);
    let common = |cpu: u32| {
        format!(
            "processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
             model name\t: Intel Xeon\nstepping\t: 7\n"
        )
    };
    let tail = |cpu: u32, flags: &str| {
        format!(
            "physical id\t: 0\nsiblings\t: 2\ncore id\t\t: {cpu}\ncpu cores\t: 2\n\
             apicid\t\t: {a}\ninitial apicid\t: {a}\n\
             fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 22\nwp\t\t: yes\n\
             flags\t\t: {flags}\nbugs\t\t: spectre_v1\nbogomips\t: 5199.99\n\
             clflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: 46 bits physical, 48 bits virtual\n\
             power management: ts [9]\n\n",
            a = cpu * 2
        )
    };
    let want = format!(
        "{}cpu MHz\t\t: 2599.996\n{}{}microcode\t: 0x5003\ncache size\t: 16384 KB\n{}",
        common(0),
        tail(0, "fpu tsc lm"),
        common(1),
        tail(1, "fpu tsc lm aperfmperf")
    );
    assert_eq!(ours, want);
}

/// Without the flag-name table (not an x86 kernel, or one built without it) there is no file,
/// and sys.json says why.
#[test]
fn cpuinfo_left_out_without_flag_names() {
    let mut k = fake();
    k.var("tick_nsec", int(4_000_000));
    let input = SysInput {
        arch: Some(Arch::X86_64),
        ..Default::default()
    };
    let c = collect(&k, &input);
    assert!(sos_files(&c.sys).iter().all(|(p, _)| *p != "proc/cpuinfo"));
    assert!(c.sys.missing.iter().any(|m| m.starts_with("cpuinfo:")));
}

/// arm64 `c_show()`, byte for byte: the live file of a QEMU TCG `-cpu max` guest (6.1, 2 CPUs,
/// HZ 250), read back into records. MIDR: implementer 0x00, variant 0, part 0x051, revision 0.
#[test]
fn cpuinfo_arm64_renders_as_the_live_file() {
    let live = include_str!("data/live/cpuinfo-aarch64-6.1.txt");
    let cpus: Vec<Arm64Cpu> = live
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|stanza| {
            let f = stanza_fields(stanza);
            let hex = |k: &str| u32::from_str_radix(f[k].trim_start_matches("0x"), 16).unwrap();
            let (bi, bf) = f["BogoMIPS"].split_once('.').unwrap();
            assert_eq!(f["CPU architecture"], "8");
            Arm64Cpu {
                processor: f["processor"].parse().unwrap(),
                loops_per_jiffy: bi.parse::<u64>().unwrap() * 2000
                    + bf.parse::<u64>().unwrap() * 20,
                hz: 250,
                features: f["Features"].split_whitespace().map(String::from).collect(),
                midr: hex("CPU implementer") << 24
                    | hex("CPU variant") << 20
                    | 0xf << 16
                    | hex("CPU part") << 4
                    | f["CPU revision"].parse::<u32>().unwrap(),
            }
        })
        .collect();
    assert_eq!(cpus.len(), 2);
    assert_eq!(render(&CpuInfo::Arm64(cpus)), live);
}

/// The arm64 collector: `elf_hwcap` as a bitmap of two words (bit 64 is in the second), names
/// from `hwcap_str[]` (bit 2 set but unnamed: nothing), MIDR 0x413fd0c1 (Neoverse N1 r3p1:
/// implementer 0x41, variant 3, part 0xd0c, revision 1), HZ 100: BogoMIPS lpj / 5000.
#[test]
fn cpuinfo_collector_arm64() {
    let mut k = fake();
    let table = name_table(&mut k, 66, &[(0, "fp"), (1, "asimd"), (64, "sve2p1")]);
    k.var("hwcap_str", table);
    k.var("elf_hwcap", Node::Array(vec![int(0b111), int(1)]));
    k.var("loops_per_jiffy", int(250_000));
    k.var("tick_nsec", int(10_000_000));
    let d0 = k.alloc(st(vec![("reg_midr", int4(0x413f_d0c1))]));
    let d1 = k.alloc(st(vec![("reg_midr", int4(0x413f_d0c1))]));
    k.var("cpu_data", Node::PerCpu(vec![Some(d0), Some(d1)]));
    let ours = collected_cpuinfo(&k, Arch::Aarch64);
    let stanza = |cpu: u32| {
        format!(
            "processor\t: {cpu}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve2p1\n\
             CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n\
             CPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
        )
    };
    assert_eq!(ours, format!("{}{}", stanza(0), stanza(1)));
}
