//! The demo dump shipped in fixtures/demo/ (the README's first command runs on it).
//!
//! 1. The committed `fixtures/demo/vmcore` and `fixtures/demo/vmlinux` are byte-identical to what
//!    the generator (tests/common/synthkernel.rs, `demo`) builds, so they cannot drift from it.
//!    `VMCORE_REGEN_DEMO=1 cargo test --test demo_fixture` rewrites them.
//! 2. The binary on the committed files, with `--build`: both default plugins `ok`, and the
//!    report shows what the generator put in (nodename, release, taint, the tasks per CPU with
//!    each CPU's current task marked `>R`). Expected values come from the generator's inputs.
//! 3. The crate's translator finds every object the generator placed where the generator's own
//!    page map has it.
//! 4. The same kernel written as a kdump file gives the same report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::synthkernel::demo;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

fn generate() -> (Vec<u8>, Vec<u8>) {
    demo::kernel().build()
}

#[test]
fn generation_is_deterministic() {
    let a = generate();
    let b = generate();
    assert!(a.0 == b.0, "vmcore differs between two generations");
    assert!(a.1 == b.1, "vmlinux differs between two generations");
}

#[test]
fn committed_files_match_the_generator() {
    let (vmcore, vmlinux) = generate();
    let dir = demo_dir();
    if std::env::var("VMCORE_REGEN_DEMO").as_deref() == Ok("1") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmcore"), &vmcore).unwrap();
        std::fs::write(dir.join("vmlinux"), &vmlinux).unwrap();
        eprintln!(
            "rewrote {} ({} bytes) and vmlinux ({} bytes)",
            dir.join("vmcore").display(),
            vmcore.len(),
            vmlinux.len()
        );
    }
    for (name, want) in [("vmcore", &vmcore), ("vmlinux", &vmlinux)] {
        let path = dir.join(name);
        let got = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with VMCORE_REGEN_DEMO=1 cargo test --test demo_fixture",
                path.display()
            )
        });
        assert!(
            got == *want,
            "{} ({} bytes) differs from the generator's output ({} bytes); \
             regenerate with VMCORE_REGEN_DEMO=1 cargo test --test demo_fixture",
            path.display(),
            got.len(),
            want.len()
        );
        assert!(
            got.len() < 1 << 20,
            "{name} is {} bytes: keep the demo small",
            got.len()
        );
    }
}

/// The crate's reader and translator, on the committed vmcore, find every object the generator
/// placed (image globals under KASLR, per-CPU areas and heap objects in the randomized direct
/// map) at the physical address the generator wrote it to, with the bytes it wrote.
#[test]
fn every_placed_object_translates_to_where_it_was_written() {
    use vmcore_report::addr::VirtAddr;
    let k = demo::kernel();
    let cfg = k.cfg.clone();
    let placed = k.placed().to_vec();
    // The generator's own page map (before the tables are added) is the oracle.
    let pages = k.vmcore.pages().clone();
    let dump = vmcore_report::dump::open(&[demo_dir().join("vmcore")]).unwrap();
    let tcfg = vmcore_report::arch::config_from_dump(&dump);
    assert_eq!(tcfg.kaslr_offset, demo::KASLR_OFFSET);
    let space = vmcore_report::arch::address_space(&dump, &tcfg).unwrap();
    assert!(placed.len() > 40, "{} objects", placed.len());
    for (what, va, size) in &placed {
        for at in [*va, va + size.saturating_sub(1)] {
            let t = space
                .translate(VirtAddr(at))
                .unwrap_or_else(|e| panic!("{what} at {at:#x}: {e}"));
            assert_eq!(t.phys.0, cfg.pa(at), "{what} at {at:#x}");
        }
        let mut got = vec![0u8; *size as usize];
        space.read(VirtAddr(*va), &mut got).unwrap();
        let want: Vec<u8> = (*va..va + size)
            .map(|a| {
                let pa = cfg.pa(a);
                pages[&(pa / 4096)][(pa % 4096) as usize]
            })
            .collect();
        assert!(got == want, "{what} at {va:#x}: bytes differ");
    }
}

/// Runs the binary on a dump with `--build`; returns the report tree.
fn build_report(vmcore: &Path, vmlinux: &Path, out: &Path) -> PathBuf {
    let o = Command::new(BIN)
        .arg("--vmcore")
        .arg(vmcore)
        .arg("--vmlinux")
        .arg(vmlinux)
        .arg("--build")
        .arg("--tmp-dir")
        .arg(out)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SOS_VMCORE_SCHED_DEBUG")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // --build leaves the tree in a private directory under --tmp-dir.
    let mut trees = Vec::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        for c in std::iter::once(p.clone()).chain(
            std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .map(|e| e.unwrap().path()),
        ) {
            if c.join("sos_reports/manifest.json").is_file() {
                trees.push(c);
            }
        }
    }
    assert_eq!(trees.len(), 1, "one report tree: {trees:?}");
    trees.pop().unwrap()
}

fn json(path: &Path) -> Value {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn report_on_the_committed_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = demo_dir();
    let root = build_report(&dir.join("vmcore"), &dir.join("vmlinux"), tmp.path());
    let name = root.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("sosvmcore-{}-", demo::NODENAME)),
        "archive name {name}"
    );

    // Both default plugins ran cleanly.
    let m = json(&root.join("sos_reports/manifest.json"));
    let plugins = &m["components"]["report"]["plugins"];
    for p in ["kernel_info", "sched_debug"] {
        assert_eq!(
            plugins[p]["status"],
            "ok",
            "plugin {p}: {}",
            serde_json::to_string_pretty(&plugins[p]).unwrap()
        );
    }

    // kernel_info: what init_uts_ns and tainted_mask hold.
    let uts = json(&root.join("plugins/kernel_info/uts.json"));
    assert_eq!(uts["nodename"], demo::NODENAME);
    assert_eq!(uts["release"], demo::RELEASE);
    assert_eq!(uts["version"], demo::VERSION);
    assert_eq!(uts["machine"], "x86_64");
    let taints = json(&root.join("plugins/kernel_info/taints.json"));
    assert_eq!(taints["mask"], demo::TAINTED_MASK);
    let letters: Vec<String> = taints["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("taints.json: {taints}"))
        .iter()
        .map(|f| f["letter"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(letters, ["O"], "{taints}");
    let banner =
        std::fs::read_to_string(root.join("plugins/kernel_info/banner.txt")).unwrap_or_default();
    assert_eq!(banner.trim_end(), demo::BANNER.trim_end());

    // sched_debug: one block per CPU, each task in its CPU's table, `>R` on the current ones.
    let sd = std::fs::read_to_string(root.join("sys/kernel/debug/sched/debug")).unwrap();
    let blocks = cpu_blocks(&sd);
    assert_eq!(
        blocks.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        (0..demo::NR_CPUS).collect::<Vec<_>>(),
        "{sd}"
    );
    assert!(sd.starts_with(&format!(
        "Sched Debug Version: v0.11, {} {}\n",
        demo::RELEASE,
        demo::VERSION.split(' ').next().unwrap()
    )));
    for (cpu, body) in &blocks {
        let rows = task_rows(body);
        let want: Vec<_> = demo::TASKS.iter().filter(|t| t.cpu == *cpu).collect();
        let mut got_pids: Vec<u32> = rows.iter().map(|r| r.pid).collect();
        got_pids.sort_unstable();
        let mut want_pids: Vec<u32> = want.iter().map(|t| t.pid).collect();
        want_pids.sort_unstable();
        assert_eq!(got_pids, want_pids, "tasks of cpu#{cpu}:\n{body}");
        for t in want {
            let r = rows.iter().find(|r| r.pid == t.pid).unwrap();
            assert_eq!(r.comm, t.comm, "cpu#{cpu} pid {}", t.pid);
            let marker = match (t.current, t.state) {
                (true, _) => ">R",
                (false, demo::RUNNING) => " R",
                (false, demo::SLEEPING) => " S",
                (false, demo::IDLE) => " I",
                (false, s) => panic!("state {s:#x} not in the demo"),
            };
            assert_eq!(r.marker, marker, "cpu#{cpu} pid {} row: {}", t.pid, r.line);
            assert_eq!(r.prio, t.prio, "{}", r.line);
        }
        let current: Vec<_> = demo::TASKS
            .iter()
            .filter(|t| t.cpu == *cpu && t.current)
            .collect();
        assert_eq!(current.len(), 1);
        // The runqueue lines the generator's numbers give (`SPLIT_NS`: ms.ns-remainder).
        let st = demo::RQ[*cpu as usize];
        let runnable = demo::TASKS
            .iter()
            .filter(|t| t.cpu == *cpu && (t.current || t.queued))
            .count();
        let split_ns = |ns: u64| format!("{}.{:06}", ns / 1_000_000, ns % 1_000_000);
        for (name, value) in [
            ("nr_running", runnable.to_string()),
            ("nr_switches", st.nr_switches.to_string()),
            ("clock", split_ns(st.clock)),
            ("min_vruntime", split_ns(st.min_vruntime)),
        ] {
            assert!(
                body.contains(&format!("  .{name:<30}: {value}\n")),
                "cpu#{cpu}: no `.{name}: {value}` in\n{body}"
            );
        }
        assert!(
            body.contains(&format!("  .{:<30}: {}\n", "curr->pid", current[0].pid)),
            "{body}"
        );
    }
}

/// `(cpu, text)` of each `cpu#N` block.
fn cpu_blocks(sd: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in sd.lines() {
        if let Some(rest) = line.strip_prefix("cpu#") {
            let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            out.push((n.parse().unwrap(), String::new()));
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

struct Row {
    marker: String,
    comm: String,
    pid: u32,
    prio: i32,
    line: String,
}

/// The rows under `runnable tasks:` (after the dash line): ` S%15s %5d …` with the prio 5th.
fn task_rows(block: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in block.lines() {
        if line.starts_with("----") {
            in_table = true;
            continue;
        }
        if !in_table || line.trim().is_empty() {
            continue;
        }
        let marker = line[..2].to_string();
        let comm = line[2..18].trim_start().to_string();
        let rest: Vec<&str> = line[18..].split_whitespace().collect();
        rows.push(Row {
            marker,
            comm,
            pid: rest[0].parse().unwrap(),
            prio: rest[3].parse().unwrap(),
            line: line.to_string(),
        });
    }
    rows
}

/// The same kernel written as a kdump-compressed (zstd) file reports the same scheduler text
/// and identity: the generator is not tied to one dump format.
#[test]
fn the_demo_as_a_kdump_file_reports_the_same() {
    use common::vmcore::{KdumpOpts, SynthCodec};
    let tmp = tempfile::tempdir().unwrap();
    let kernel = demo::kernel();
    let phys_base = kernel.cfg.phys_base();
    let (b, vmlinux) = kernel.finish();
    let kdump = b.build_kdump(&KdumpOpts {
        codec: SynthCodec::Zstd,
        phys_base,
        ..KdumpOpts::default()
    });
    let (dump_path, vmlinux_path) = (tmp.path().join("vmcore.kdump"), tmp.path().join("vmlinux"));
    kdump.write_sparse(&dump_path);
    std::fs::write(&vmlinux_path, vmlinux).unwrap();
    let out_k = tmp.path().join("k");
    let out_e = tmp.path().join("e");
    std::fs::create_dir(&out_k).unwrap();
    std::fs::create_dir(&out_e).unwrap();
    let dir = demo_dir();
    let k = build_report(&dump_path, &vmlinux_path, &out_k);
    let e = build_report(&dir.join("vmcore"), &dir.join("vmlinux"), &out_e);
    let m = json(&k.join("sos_reports/manifest.json"));
    for p in ["kernel_info", "sched_debug"] {
        assert_eq!(
            m["components"]["report"]["plugins"][p]["status"], "ok",
            "{p}"
        );
    }
    for f in [
        "sys/kernel/debug/sched/debug",
        "plugins/kernel_info/uts.json",
    ] {
        assert_eq!(
            std::fs::read_to_string(k.join(f)).unwrap(),
            std::fs::read_to_string(e.join(f)).unwrap(),
            "{f}"
        );
    }
}
