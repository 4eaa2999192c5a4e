//! Integrity of the real fixture sets built by `fixtures/build.sh`, checked with nothing but std:
//! every dump starts with its format's signature, `vmcore.elf` (the kdump sets: `vmcore.raw`, the
//! capture kernel's /proc/vmcore) is a core file for the right machine whose VMCOREINFO names the
//! kernel the live guest reported (s390x: the kernel's copy in memory, QEMU writes no note
//! there), with one PRSTATUS note per CPU the guest saw, and (x86_64, s390x) whose KERNELOFFSET
//! matches the `_text` address the guest read from /proc/kallsyms. These checks are independent of the crate's readers: when a reader test
//! fails on a set that passes here, the reader is at fault, not the fixture.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const KDUMP_SIGNATURE: &[u8] = b"KDUMP   ";
const FLAT_SIGNATURE: &[u8] = b"makedumpfile";
const ET_CORE: u16 = 4;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_S390: u16 = 22;
/// Where s390x links `_text` (arch/s390/kernel/vmlinux.lds.S, `TEXT_OFFSET`); KERNELOFFSET is
/// 0 before 6.10 and the image's virtual base from 6.10.
const S390X_LINKED_TEXT: u64 = 0x10_0000;
/// Where x86_64 links the kernel when KASLR does not move it (`__START_KERNEL_map` + 16 MiB).
const X86_64_DEFAULT_TEXT: u64 = 0xffff_ffff_8100_0000;

fn all_sets() -> impl Iterator<Item = &'static str> {
    common::fixtures::SETS.iter().copied()
}

fn head(path: &Path, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    let got = File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    buf.truncate(got);
    buf
}

thread_local! {
    /// The byte order of the ELF file being read (s390x's dumps are big-endian).
    static BIG_ENDIAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn uint_at(b: &[u8], off: usize, n: usize) -> u64 {
    let bytes = &b[off..off + n];
    let fold = |acc: u64, &x: &u8| (acc << 8) | u64::from(x);
    if BIG_ENDIAN.with(|e| e.get()) {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    }
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    uint_at(b, off, 2) as u16
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    uint_at(b, off, 4) as u32
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    uint_at(b, off, 8)
}

/// The `key: value` lines and `---name---` sections of truth.txt.
struct Truth {
    keys: HashMap<String, String>,
    sections: HashMap<String, Vec<String>>,
}

fn truth(dir: &Path) -> Truth {
    let text = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let mut keys = HashMap::new();
    let mut sections: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            if !name.is_empty() && !name.starts_with('-') {
                current = Some(name.to_string());
                sections.entry(name.to_string()).or_default();
                continue;
            }
        }
        match &current {
            Some(s) => sections.get_mut(s).unwrap().push(line.to_string()),
            None => {
                if let Some((k, v)) = line.split_once(": ") {
                    keys.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    Truth { keys, sections }
}

/// The program headers of an ELF64 file, one byte vector each (from `e_phoff`).
fn program_headers(path: &Path) -> Vec<Vec<u8>> {
    let eh = head(path, 64);
    let (phoff, phentsize, phnum) = (u64_at(&eh, 0x20), u16_at(&eh, 0x36), u16_at(&eh, 0x38));
    let mut ph = vec![0; usize::from(phentsize) * usize::from(phnum)];
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(phoff)).unwrap();
    f.read_exact(&mut ph).unwrap();
    ph.chunks(usize::from(phentsize))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The notes of an ELF64 core, either byte order: (name, type, descriptor).
fn elf_notes(path: &Path) -> (u16, Vec<(String, u32, Vec<u8>)>) {
    let mut f = File::open(path).unwrap();
    let eh = head(path, 64);
    assert_eq!(&eh[..4], b"\x7fELF", "{}: no ELF magic", path.display());
    assert_eq!(eh[4], 2, "{}: not ELFCLASS64", path.display());
    BIG_ENDIAN.with(|e| e.set(eh[5] == 2));
    assert_eq!(
        u16_at(&eh, 0x10),
        ET_CORE,
        "{}: not a core file",
        path.display()
    );
    let machine = u16_at(&eh, 0x12);
    let mut notes = Vec::new();
    for p in program_headers(path) {
        if u32_at(&p, 0) != PT_NOTE {
            continue;
        }
        let (off, size) = (u64_at(&p, 8), u64_at(&p, 32));
        let mut seg = vec![0; usize::try_from(size).unwrap()];
        f.seek(SeekFrom::Start(off)).unwrap();
        f.read_exact(&mut seg).unwrap();
        let mut at = 0;
        let align4 = |n: usize| (n + 3) & !3;
        while at + 12 <= seg.len() {
            let (namesz, descsz, ty) =
                (u32_at(&seg, at), u32_at(&seg, at + 4), u32_at(&seg, at + 8));
            let name_start = at + 12;
            let desc_start = name_start + align4(namesz as usize);
            let end = desc_start + align4(descsz as usize);
            if namesz == 0 && descsz == 0 || end > seg.len() {
                break;
            }
            let name = String::from_utf8_lossy(&seg[name_start..name_start + namesz as usize])
                .trim_end_matches('\0')
                .to_string();
            notes.push((
                name,
                ty,
                seg[desc_start..desc_start + descsz as usize].to_vec(),
            ));
            at = end;
        }
    }
    (machine, notes)
}

#[test]
fn every_dump_has_its_format_signature() {
    for name in all_sets() {
        let Some(dir) = common::fixtures::set(name) else {
            continue;
        };
        for dump in common::fixtures::dumps(&dir) {
            let file = dump.file_name().unwrap().to_str().unwrap();
            let h = head(&dump, 16);
            let want: &[u8] = match file {
                "vmcore.elf" | "vmcore.raw" | "mdf.E-d31" => b"\x7fELF",
                f if f.starts_with("mdf.elf-") => b"\x7fELF",
                "vmcore.kdump-zlib" => FLAT_SIGNATURE,
                f if f.starts_with("mdf.flat-zlib-") => FLAT_SIGNATURE,
                _ => KDUMP_SIGNATURE,
            };
            assert!(
                h.starts_with(want),
                "{name}/{file}: starts with {:?}",
                &h[..h.len().min(12)]
            );
        }
    }
}

/// The VMCOREINFO text of an s390x ELF dump's memory: the ELF note (`Elf64_Nhdr`, name
/// "VMCOREINFO") whose physical address the absolute lowcore holds at 0xe0c (`vmcore_info`,
/// arch/s390/include/asm/lowcore.h), read through the PT_LOADs' physical addresses.
fn s390x_lowcore_vmcoreinfo(path: &Path) -> String {
    let mut f = File::open(path).unwrap();
    let loads: Vec<(u64, u64, u64)> = program_headers(path)
        .iter()
        .filter(|p| u32_at(p, 0) == 1)
        .map(|p| (u64_at(p, 24), u64_at(p, 8), u64_at(p, 32)))
        .collect();
    let mut read = |pa: u64, n: usize| -> Vec<u8> {
        let (paddr, off, _) = loads
            .iter()
            .find(|(paddr, _, size)| (*paddr..paddr + size).contains(&pa))
            .unwrap_or_else(|| panic!("{}: physical {pa:#x} in no PT_LOAD", path.display()));
        let mut b = vec![0; n];
        f.seek(SeekFrom::Start(off + pa - paddr)).unwrap();
        f.read_exact(&mut b).unwrap();
        b
    };
    let at = u64_at(&read(0xe0c, 8), 0);
    let h = read(at, 24);
    assert_eq!(
        &h[12..23],
        b"VMCOREINFO\0",
        "{}: no note at {at:#x}",
        path.display()
    );
    let size = u32_at(&h, 4) as usize;
    assert!(
        size < 1 << 16,
        "{}: VMCOREINFO note of {size} bytes",
        path.display()
    );
    String::from_utf8_lossy(&read(at + 24, size)).to_string()
}

#[test]
fn vmcore_elf_matches_the_live_truth() {
    for name in all_sets() {
        let Some(dir) = common::fixtures::set(name) else {
            continue;
        };
        let t = truth(&dir);
        let uname = &t.keys["uname"];
        let release = uname
            .split_whitespace()
            .nth(2)
            .expect("uname -a has a release");
        // the QMP sets' ELF dump, else the kdump sets' copy of /proc/vmcore
        let elf = ["vmcore.elf", "vmcore.raw"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{name}: neither vmcore.elf nor vmcore.raw"));
        let (machine, notes) = elf_notes(&elf);
        let want_machine = if name.starts_with("aarch64") {
            EM_AARCH64
        } else if name.starts_with("s390x") {
            EM_S390
        } else {
            EM_X86_64
        };
        assert_eq!(machine, want_machine, "{name}: e_machine");

        let note = notes
            .iter()
            .find(|(n, _, _)| n == "VMCOREINFO")
            .map(|(_, _, d)| String::from_utf8_lossy(d).to_string());
        let vmcoreinfo = if machine == EM_S390 {
            // QEMU has no vmcoreinfo device on s390x: no note, the kernel's copy in memory
            assert!(
                note.is_none(),
                "{name}: an s390x QEMU dump with a VMCOREINFO note"
            );
            s390x_lowcore_vmcoreinfo(&elf)
        } else {
            note.unwrap_or_else(|| panic!("{name}: {} has no VMCOREINFO note", elf.display()))
        };
        let info: HashMap<&str, &str> = vmcoreinfo
            .lines()
            .filter_map(|l| l.split_once('='))
            .collect();
        assert_eq!(
            info.get("OSRELEASE"),
            Some(&release),
            "{name}: OSRELEASE vs live uname"
        );

        let nproc: usize = t.keys["nproc"].parse().unwrap();
        let prstatus = notes
            .iter()
            .filter(|(n, ty, _)| n == "CORE" && *ty == NT_PRSTATUS)
            .count();
        assert_eq!(
            prstatus, nproc,
            "{name}: one PRSTATUS per vCPU the guest saw"
        );

        // where the kernel links `_text`: KASLR (and s390x's 6.10+ relocation) moves it by
        // KERNELOFFSET
        let linked = match machine {
            EM_X86_64 => Some(X86_64_DEFAULT_TEXT),
            EM_S390 => Some(S390X_LINKED_TEXT),
            _ => None,
        };
        if let (Some(linked), Some(kallsyms)) = (linked, t.sections.get("kallsyms")) {
            let text = kallsyms
                .iter()
                .find_map(|l| {
                    let mut w = l.split_whitespace();
                    let addr = w.next()?;
                    (w.nth(1)? == "_text").then(|| u64::from_str_radix(addr, 16).unwrap())
                })
                .unwrap_or_else(|| panic!("{name}: no _text in the truth's kallsyms"));
            let offset = u64::from_str_radix(info["KERNELOFFSET"], 16).unwrap();
            // (s390x before 6.10 runs identity-mapped: KERNELOFFSET 0 with KASLR on)
            let nokaslr = t.keys["cmdline"].split_whitespace().any(|w| w == "nokaslr");
            if machine == EM_X86_64 && !nokaslr {
                assert_ne!(offset, 0, "{name}: KASLR was on, the offset cannot be 0");
            }
            assert_eq!(linked + offset, text, "{name}: KERNELOFFSET vs live _text");
        }
    }
}

#[test]
fn kernel_version_file_names_the_booted_kernel() {
    for name in all_sets() {
        let Some(dir) = common::fixtures::set(name) else {
            continue;
        };
        // sets from older recipes (the lab's) lack the file; fixtures/build.sh always writes it
        let kv = match std::fs::read_to_string(dir.join("kernel-version")) {
            Ok(kv) => kv,
            Err(e) => {
                common::fixtures::skip(format_args!(
                    "{name} has no kernel-version ({e}; not built by fixtures/build.sh)"
                ));
                continue;
            }
        };
        let package = kv.split_whitespace().next().unwrap();
        let release = package.strip_prefix("linux-image-").unwrap();
        let t = truth(&dir);
        assert!(
            t.keys["uname"].split_whitespace().nth(2) == Some(release),
            "{name}: kernel-version says {release}, the guest said {}",
            t.keys["uname"]
        );
    }
}

#[test]
fn busy_sets_have_their_workload() {
    // (set, vCPUs): the busy workload's CPU numbers wrap around on 2 vCPUs
    for (set, nproc) in [("x86_64-6.1-smp4-hung", 4), ("x86_64-6.1-kdump-hung", 2)] {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let t = truth(&dir);
        assert_eq!(t.keys["nproc"], nproc.to_string(), "{set}");
        let ps = &t.sections["ps"];
        assert!(
            ps.iter()
                .any(|l| l.split_whitespace().nth(2) == Some("D") && l.ends_with("touch")),
            "{set}: a touch in D state"
        );
        let group = format!("cfs_rq[{}]:/fixture", 2 % nproc);
        assert!(
            t.sections["sched-debug"]
                .iter()
                .any(|l| l.starts_with(&group)),
            "{set}: {group}"
        );
        let console = std::fs::read(dir.join("console.log")).unwrap();
        let console = String::from_utf8_lossy(&console);
        assert!(
            console.contains("Kernel panic - not syncing: hung_task: blocked tasks"),
            "{set}"
        );
    }
}

#[test]
fn oops_sets_crashed_by_an_oops_in_their_module() {
    for set in ["x86_64-6.1-oops", "x86_64-6.1-kdump-oops"] {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let t = truth(&dir);
        // O (out-of-tree, 4096) and E (unsigned, 8192) from loading the module; D comes with the
        // oops
        assert_eq!(t.keys["tainted"], "12288", "{set}");
        assert!(
            t.sections["modules"]
                .iter()
                .any(|l| l.starts_with("fixture_oops ") && l.ends_with("(OE)")),
            "{set}"
        );
        let console = std::fs::read(dir.join("console.log")).unwrap();
        let console = String::from_utf8_lossy(&console);
        assert!(console.contains("RIP: 0010:trigger_write+"), "{set}");
        // QEMU's guest panics in oops_end ("Fatal exception"); with a capture kernel loaded
        // oops_end kexecs into it first (crash_kexec), and no panic is printed
        let panicked = console.contains("Kernel panic - not syncing: Fatal exception");
        assert_eq!(panicked, !common::fixtures::is_kdump_set(set), "{set}");
    }
}

/// The PT_LOADs of an ELF64 little-endian core: (p_vaddr, p_paddr, p_memsz).
fn elf_loads(path: &Path) -> Vec<(u64, u64, u64)> {
    const PT_LOAD: u32 = 1;
    program_headers(path)
        .iter()
        .filter(|p| u32_at(p, 0) == PT_LOAD)
        .map(|p| (u64_at(p, 16), u64_at(p, 24), u64_at(p, 40)))
        .collect()
}

/// The kdump sets exist for the layout of the capture kernel's /proc/vmcore: the kernel's crash
/// headers add a kernel-text PT_LOAD over RAM that a RAM PT_LOAD also covers. In
/// x86_64-6.1-kdump the crashkernel reservation ends where the kernel text starts, so the text
/// PT_LOAD and a RAM PT_LOAD start at the same physical address; in -nokaslr the text lies
/// strictly inside a RAM PT_LOAD. Both against the guest's own /proc/iomem; and a kdump capture
/// carries CRASHTIME in VMCOREINFO (a QMP dump does not).
#[test]
fn kdump_sets_have_their_pt_load_layout() {
    const KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
    for (name, shared) in [
        ("x86_64-6.1-kdump", true),
        ("x86_64-6.1-kdump-nokaslr", false),
        ("x86_64-6.1-kdump-oops", false),
        ("x86_64-6.1-kdump-hung", false),
    ] {
        let Some(dir) = common::fixtures::set(name) else {
            continue;
        };
        let t = truth(&dir);
        let range = |what: &str| {
            let line = t.sections["iomem"]
                .iter()
                .find(|l| l.ends_with(&format!(" : {what}")))
                .unwrap_or_else(|| panic!("{name}: no {what} in the truth's iomem"));
            let span = line.split_whitespace().next().unwrap();
            let (a, b) = span.split_once('-').unwrap();
            (
                u64::from_str_radix(a, 16).unwrap(),
                u64::from_str_radix(b, 16).unwrap(),
            )
        };
        let (crash_start, crash_end) = range("Crash kernel");
        let (code_start, _) = range("Kernel code");
        assert_eq!(crash_end + 1 == code_start, shared, "{name}: live iomem");

        let raw = dir.join("vmcore.raw");
        let loads = elf_loads(&raw);
        let (text, ram): (Vec<(u64, u64, u64)>, Vec<_>) =
            loads.into_iter().partition(|l| l.0 >= KERNEL_MAP);
        assert_eq!(text.len(), 1, "{name}: one kernel-text PT_LOAD");
        assert_eq!(text[0].1, code_start, "{name}: text PT_LOAD at Kernel code");
        let starts_with_ram = ram.iter().any(|r| r.1 == code_start);
        let inside_ram = ram
            .iter()
            .any(|r| r.1 < code_start && code_start < r.1 + r.2);
        assert_eq!(starts_with_ram, shared, "{name}: text shares a RAM start");
        assert_eq!(inside_ram, !shared, "{name}: text inside a RAM PT_LOAD");
        assert!(
            ram.iter()
                .all(|r| r.1 + r.2 <= crash_start || r.1 > crash_end),
            "{name}: the crashkernel reservation is not dumped"
        );

        let (_, notes) = elf_notes(&raw);
        let info = notes
            .iter()
            .find(|(n, _, _)| n == "VMCOREINFO")
            .map(|(_, _, d)| String::from_utf8_lossy(d).to_string())
            .unwrap();
        let crashtime: i64 = info
            .lines()
            .find_map(|l| l.strip_prefix("CRASHTIME="))
            .unwrap_or_else(|| panic!("{name}: no CRASHTIME in VMCOREINFO"))
            .parse()
            .unwrap();
        let live: i64 = t.keys["date_epoch"].parse().unwrap();
        assert!(
            (live..live + 120).contains(&crashtime),
            "{name}: CRASHTIME {crashtime} vs the guest's date {live}"
        );
    }
}
