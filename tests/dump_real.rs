//! Real fixtures: every dump file of a set is read and compared with QEMU's ELF dump of the same
//! crash, and its VMCOREINFO with the release the live guest printed (`truth.txt`).
//!
//! Run with `cargo test --test dump_real`.

mod common;

use std::path::Path;

use vmcore_report::addr::{Arch, PhysAddr};
use vmcore_report::dump::{self, DumpFormat, PhysMem};

const PAGE: u64 = 4096;
/// Pages sampled per dump: enough to cover every region type, few enough to stay fast.
const SAMPLES: usize = 4000;

fn truth_release(dir: &Path) -> String {
    let truth = std::fs::read_to_string(dir.join("truth.txt")).expect("truth.txt readable");
    let uname = truth
        .lines()
        .find_map(|l| l.strip_prefix("uname: "))
        .expect("truth.txt has a uname: line");
    // `Linux <nodename> <release> …`
    uname
        .split_whitespace()
        .nth(2)
        .expect("uname line has a release")
        .to_string()
}

fn truth_nproc(dir: &Path) -> u32 {
    let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    truth
        .lines()
        .find_map(|l| l.strip_prefix("nproc: "))
        .expect("truth.txt has an nproc line")
        .trim()
        .parse()
        .unwrap()
}

/// A deterministic spread of page addresses over the reference dump's ranges.
fn sample_pages(mem: &dyn PhysMem) -> Vec<u64> {
    let total: u64 = mem
        .ranges()
        .iter()
        .map(|r| (r.end.0 - r.start.0) / PAGE)
        .sum();
    assert!(total > 0, "reference dump has no memory");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        // xorshift64: fixed seed, so a failure reproduces.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut n = x % total;
        for r in mem.ranges() {
            let pages = (r.end.0 - r.start.0) / PAGE;
            if n < pages {
                out.push(r.start.0 + n * PAGE);
                break;
            }
            n -= pages;
        }
    }
    out
}

fn check_set(set: &str, arch: Arch) {
    let Some(dir) = common::fixtures::set(set) else {
        return;
    };
    let release = truth_release(&dir);
    let reference = dump::open(&[dir.join("vmcore.elf")]).expect("vmcore.elf opens");
    let pages = sample_pages(&*reference.mem);
    // A page a filtered dump excluded may hold zeros in makedumpfile's ELF output (short excluded
    // runs are written as zero pages), so which pages are "present" in mdf.elf-dN is taken from
    // the kdump file makedumpfile wrote at the same dump level.
    let mdf_zlib = common::fixtures::mdf_level(set).map(|l| dir.join(format!("mdf.zlib-d{l}")));
    let mdf_kdump = mdf_zlib
        .filter(|p| p.exists())
        .map(|p| dump::open(&[p]).expect("mdf.zlib opens"));

    for path in common::fixtures::dumps(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let started = std::time::Instant::now();
        let d = dump::open(std::slice::from_ref(&path))
            .unwrap_or_else(|e| panic!("{set}/{name}: open failed: {e}"));
        let vi = d
            .info
            .vmcoreinfo
            .as_ref()
            .unwrap_or_else(|| panic!("{set}/{name}: no VMCOREINFO"));
        assert_eq!(
            vi.osrelease.as_deref(),
            Some(release.as_str()),
            "{set}/{name}"
        );
        assert_eq!(d.info.arch, Some(arch), "{set}/{name}: arch");
        assert_eq!(vi.page_size, Some(PAGE), "{set}/{name}: kernel page size");
        // QEMU writes aarch64 kdump files with 64 KiB blocks over a 4 KiB-page kernel.
        assert!(
            d.info.page_size % PAGE == 0,
            "{set}/{name}: dump page size {}",
            d.info.page_size
        );
        let n = truth_nproc(&dir);
        assert_eq!(d.info.cpus.len() as u32, n, "{set}/{name}: PRSTATUS notes");
        for cpu in &d.info.cpus {
            let pc = cpu.pc.unwrap_or(0);
            assert!(
                pc >> 47 == 0x1ffff,
                "{set}/{name}: cpu {} pc {pc:#x} not kernel",
                cpu.index
            );
        }
        if name == "vmcore.elf" && arch == Arch::X86_64 {
            // QEMU's CPU-state notes carry CR3: a page-table root inside RAM.
            for cpu in &d.info.cpus {
                let cr3 = cpu.page_table_root.expect("QEMU note gives CR3");
                let root = PhysAddr(cr3 & 0x000f_ffff_ffff_f000);
                assert!(
                    d.mem.is_dumped(root),
                    "{set}/{name}: cpu {} CR3 {cr3:#x}",
                    cpu.index
                );
            }
        }
        match &d.info.format {
            DumpFormat::Kdump { flattened, .. } => {
                assert_eq!(
                    *flattened,
                    name.contains("flat") || name == "vmcore.kdump-zlib"
                );
            }
            DumpFormat::Elf { .. } => assert!(name.contains("elf")),
        }
        let filtered = name.starts_with("mdf.");
        let presence: &dyn PhysMem = if name.starts_with("mdf.elf-") {
            match &mdf_kdump {
                Some(k) => &*k.mem,
                None => &*d.mem,
            }
        } else {
            &*d.mem
        };
        let (mut compared, mut excluded) = (0usize, 0usize);
        let mut a = vec![0u8; PAGE as usize];
        let mut b = vec![0u8; PAGE as usize];
        for &addr in &pages {
            let addr = PhysAddr(addr);
            if !reference.mem.is_dumped(addr) {
                continue;
            }
            if !presence.is_dumped(addr) || !d.mem.is_dumped(addr) {
                excluded += 1;
                if d.mem.is_dumped(addr) || name.starts_with("mdf.elf-") {
                    continue;
                }
                // Excluded pages must say so, distinctly from corruption.
                match d.mem.read_phys(addr, &mut b) {
                    Err(e) => assert!(
                        matches!(e.code(), "not-dumped" | "out-of-range"),
                        "{set}/{name}: {addr}: {e}"
                    ),
                    Ok(()) => panic!("{set}/{name}: {addr} excluded but readable"),
                }
                continue;
            }
            reference.mem.read_phys(addr, &mut a).unwrap();
            d.mem
                .read_phys(addr, &mut b)
                .unwrap_or_else(|e| panic!("{set}/{name}: {addr}: {e}"));
            assert!(a == b, "{set}/{name}: {addr} differs from vmcore.elf");
            compared += 1;
        }
        eprintln!(
            "{set}/{name}: {compared} pages identical to vmcore.elf, {excluded} excluded, {:?}",
            started.elapsed()
        );
        assert!(
            compared >= SAMPLES / 10,
            "{set}/{name}: only {compared} pages compared"
        );
        if !filtered {
            assert_eq!(excluded, 0, "{set}/{name}: unfiltered dump excludes pages");
        }
    }
}

#[test]
fn x86_64_l5_every_dump_matches_vmcore_elf() {
    check_set("x86_64-6.1-l5", Arch::X86_64);
}

#[test]
fn x86_64_l4_every_dump_matches_vmcore_elf() {
    check_set("x86_64-6.1-l4", Arch::X86_64);
}

#[test]
fn aarch64_every_dump_matches_vmcore_elf() {
    check_set("aarch64-6.1", Arch::Aarch64);
}

#[test]
fn x86_64_5_10_every_dump_matches_vmcore_elf() {
    check_set("x86_64-5.10", Arch::X86_64);
}

#[test]
fn aarch64_5_10_every_dump_matches_vmcore_elf() {
    check_set("aarch64-5.10", Arch::Aarch64);
}
