//! Address translation on the real vmcores (Debian 5.10 and 6.1 under QEMU): for every dump format of each
//! set, `init_uts_ns` is read through the page tables and its release and nodename are compared
//! with the `uname:` line the live guest printed (truth.txt); the fast path and the full walk are
//! compared on thousands of addresses. Skips with one line when the fixtures are absent
//! (the sets `fixtures/build.sh` builds).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::fixtures;
use common::pagetable::Rng;
use vmcore_report::addr::{Arch, VirtAddr};
use vmcore_report::arch::aarch64::Aarch64;
use vmcore_report::arch::x86_64::{START_KERNEL_MAP, X86_64};
use vmcore_report::arch::{self, AddressSpace, TranslateError, TranslationConfig};
use vmcore_report::debuginfo::btf::BtfTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::{TypeSource, find_member};
use vmcore_report::dump::{self, Dump};

/// `__NEW_UTS_LEN + 1`: each field of `struct new_utsname`.
const UTS_FIELD: u64 = 65;

/// (sysname, nodename, release) from truth.txt's `uname: …` line (`uname -a` order).
fn truth_uname(dir: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("uname: "))
        .expect("truth.txt has a uname line");
    let mut f = line.split_whitespace().map(str::to_string);
    (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
}

fn cstr(aspace: &AddressSpace, va: u64) -> String {
    let b = aspace.read_cstr(VirtAddr(va), UTS_FIELD as usize).unwrap();
    String::from_utf8(b).unwrap()
}

/// The translation config of a dump; a dump without VMCOREINFO's `SYMBOL(init_uts_ns)` (none
/// here today) would need the vmlinux symbols, which this layer-level test does not load.
fn config(dump: &Dump, name: &str) -> Option<TranslationConfig> {
    let cfg = arch::config_from_dump(dump);
    if cfg.symbols.contains_key("init_uts_ns") {
        Some(cfg)
    } else {
        fixtures::skip(format_args!(
            "{name}: no VMCOREINFO SYMBOL(init_uts_ns) to translate"
        ));
        None
    }
}

fn check_uts(dir: &Path, dump: &Dump, cfg: &TranslationConfig, name: &str) {
    let (sysname, nodename, release) = truth_uname(dir);
    let aspace = arch::address_space(dump, cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    let uts_ns = cfg.symbols["init_uts_ns"];
    // where `name` sits in struct uts_namespace: VMCOREINFO says (since 5.11, whose
    // `uts_namespace` lost the `kref` that came first), else the vmlinux's BTF (5.10: after the
    // 4-byte kref); the bytes must agree
    let off = dump
        .info
        .vmcoreinfo
        .as_ref()
        .and_then(|v| v.offset("uts_namespace.name"))
        .unwrap_or_else(|| uts_name_offset(dir));
    let uts = uts_ns + off;
    assert_eq!(cstr(&aspace, uts), sysname, "{name}: sysname");
    assert_eq!(cstr(&aspace, uts + UTS_FIELD), nodename, "{name}: nodename");
    assert_eq!(
        cstr(&aspace, uts + 2 * UTS_FIELD),
        release,
        "{name}: release"
    );
    eprintln!("{name}: init_uts_ns reads {sysname} {nodename} {release}");
}

/// The byte offset of `name` in the vmlinux's `struct uts_namespace`, from its BTF.
fn uts_name_offset(dir: &Path) -> u64 {
    let vmlinux = Arc::new(Vmlinux::open(&dir.join("vmlinux")).unwrap());
    let btf = BtfTypes::from_vmlinux(vmlinux)
        .unwrap()
        .expect("a vmlinux with BTF");
    let ty = btf.find_type("struct uts_namespace").unwrap().unwrap();
    find_member(&btf, ty, "name").unwrap().unwrap().bit_offset / 8
}

/// Compares the fast path with the walk at `n` sampled addresses: direct-map addresses of RAM
/// the dump describes and kernel-image addresses. Returns (fast answers, walk-only answers).
fn x86_fast_vs_walk(dump: &Dump, cfg: &TranslationConfig, name: &str, n: usize) -> (usize, usize) {
    let mem = &*dump.mem;
    let t0 = std::time::Instant::now();
    let t = X86_64::from_config(mem, cfg).unwrap();
    let setup = t0.elapsed();
    let pob = t
        .page_offset_base()
        .unwrap_or_else(|| panic!("{name}: page_offset_base not found"));
    // the direct map starts at a 1 GiB-aligned address and maps physical 0
    assert_eq!(pob % (1 << 30), 0, "{name}");
    let ranges = mem.ranges().to_vec();
    let total: u64 = ranges.iter().map(|r| r.end.0 - r.start.0).sum();
    let mut rng = Rng(0xa11ce);
    let (mut fast, mut slow) = (0, 0);
    let (mut t_fast, mut t_walk) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for i in 0..n {
        let va = if i % 4 == 3 {
            START_KERNEL_MAP + rng.below(1 << 30)
        } else {
            // a uniformly chosen byte of RAM, through the direct map
            let mut k = rng.below(total);
            let mut pa = 0;
            for r in &ranges {
                let len = r.end.0 - r.start.0;
                if k < len {
                    pa = r.start.0 + k;
                    break;
                }
                k -= len;
            }
            pob + pa
        };
        let t1 = std::time::Instant::now();
        let walk = t.walk(mem, VirtAddr(va));
        let t2 = std::time::Instant::now();
        let f = t.fast_translate(VirtAddr(va));
        t_walk += t2 - t1;
        t_fast += t2.elapsed();
        match (f, walk) {
            (Some(f), Ok(w)) => {
                assert_eq!(f.phys, w.phys, "{name}: {va:#x}");
                fast += 1;
            }
            (Some(f), Err(e)) => panic!("{name}: fast path maps {va:#x} to {}, walk: {e}", f.phys),
            (None, Ok(_)) => slow += 1,
            (None, Err(TranslateError::NotMapped { .. })) => {}
            (None, Err(e)) => panic!("{name}: {va:#x}: {e}"),
        }
    }
    let (img, direct) = t.fast_path_coverage();
    eprintln!(
        "{name}: set-up {setup:?}; fast path covers {} MiB of image, {} MiB of direct map; \
         {n} walks {t_walk:?}, {n} fast lookups {t_fast:?}",
        img >> 20,
        direct >> 20
    );
    (fast, slow)
}

fn aarch64_fast_vs_walk(dump: &Dump, cfg: &TranslationConfig, name: &str, n: usize) -> usize {
    let mem = &*dump.mem;
    let t = Aarch64::from_config(mem, cfg).unwrap();
    let ranges = mem.ranges().to_vec();
    let first = ranges.first().unwrap().start.0;
    let lin = t
        .phys_to_linear(first)
        .unwrap_or_else(|| panic!("{name}: linear map not proved"));
    let total: u64 = ranges.iter().map(|r| r.end.0 - r.start.0).sum();
    let mut rng = Rng(0xa64);
    let mut fast = 0;
    for _ in 0..n {
        let mut k = rng.below(total);
        let mut pa = first;
        for r in &ranges {
            let len = r.end.0 - r.start.0;
            if k < len {
                pa = r.start.0 + k;
                break;
            }
            k -= len;
        }
        let va = lin + (pa - first);
        let f = t
            .fast_translate(VirtAddr(va))
            .expect("RAM is in the linear map");
        let w = t
            .walk(mem, VirtAddr(va))
            .unwrap_or_else(|e| panic!("{name}: {va:#x}: {e}"));
        assert_eq!(f.phys, w.phys, "{name}: {va:#x}");
        assert_eq!(f.phys.0, pa);
        fast += 1;
    }
    // the kernel image: every mapped address of the scanned window agrees
    let kv = cfg.numbers["kimage_voffset"] as u64;
    let stext = cfg.symbols["_stext"];
    let (lin_bytes, image_bytes) = t.fast_path_coverage();
    assert!(
        image_bytes > 8 << 20,
        "{name}: image coverage {image_bytes}"
    );
    for _ in 0..n {
        let va = (stext & !0x1f_ffff) + rng.below(64 << 20);
        let w = t.walk(mem, VirtAddr(va));
        match (t.fast_translate(VirtAddr(va)), w) {
            (Some(f), Ok(w)) => {
                assert_eq!(f.phys, w.phys, "{name}: {va:#x}");
                assert_eq!(f.phys.0, va.wrapping_sub(kv));
                fast += 1;
            }
            (None, Err(_)) => {}
            (f, w) => panic!("{name}: {va:#x}: fast {f:?} walk {w:?}"),
        }
    }
    eprintln!(
        "{name}: fast path covers {} MiB of linear map, {} MiB of image",
        lin_bytes >> 20,
        image_bytes >> 20
    );
    fast
}

fn run_set(set: &str) {
    let Some(dir) = fixtures::set(set) else {
        return;
    };
    let dumps = fixtures::dumps(&dir);
    assert!(!dumps.is_empty(), "{set}: no dumps");
    for path in dumps {
        let name = format!("{set}/{}", path.file_name().unwrap().to_string_lossy());
        let dump =
            dump::open(std::slice::from_ref(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(cfg) = config(&dump, &name) else {
            continue;
        };
        check_uts(&dir, &dump, &cfg, &name);
        match cfg.arch {
            Some(Arch::X86_64) => {
                let (fast, slow) = x86_fast_vs_walk(&dump, &cfg, &name, 4000);
                eprintln!(
                    "{name}: fast path agreed with the walk at {fast} addresses ({slow} walk-only)"
                );
                assert!(fast > 2000, "{name}: fast path answered only {fast} times");
                // with phys_base withheld, it is derived and equals the dump's
                if let Some(pb) = cfg.phys_base {
                    let mut c = cfg.clone();
                    c.phys_base = None;
                    let t = X86_64::from_config(&*dump.mem, &c).unwrap();
                    assert_eq!(t.phys_base(), pb, "{name}: derived phys_base");
                }
            }
            Some(Arch::Aarch64) => {
                let fast = aarch64_fast_vs_walk(&dump, &cfg, &name, 4000);
                eprintln!(
                    "{name}: fast path (linear map and image) agreed with the walk at {fast} addresses"
                );
            }
            other => panic!("{name}: unexpected arch {other:?}"),
        }
    }
}

#[test]
fn x86_64_5_level() {
    run_set("x86_64-6.1-l5");
}

#[test]
fn x86_64_4_level() {
    run_set("x86_64-6.1-l4");
}

#[test]
fn aarch64() {
    run_set("aarch64-6.1");
}

#[test]
fn x86_64_5_10() {
    run_set("x86_64-5.10");
}

#[test]
fn aarch64_5_10() {
    run_set("aarch64-5.10");
}

// the kdump-captured sets: 5-level x86_64 and arm64 through a capture kernel's /proc/vmcore
kdump_set_tests!(run_set);
