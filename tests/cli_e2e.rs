//! The binary end to end on a synthetic x86_64 dump: an ELF vmcore from tests/common/vmcore.rs
//! whose kernel page tables come from tests/common/pagetable.rs, and a minimal vmlinux (ELF
//! header, build-id note, symbol table) written here byte by byte, independently of the
//! readers. Expected values come from what the test put in: the nodename and release written into
//! `init_uts_ns`, the build-id, the files' own SHA-256 (`sha256sum`), `tar`'s listing.

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::pagetable::{Builder, Mode};
use common::vmcore::{ElfOpts, SynthArch, VmcoreBuilder};
use serde_json::Value;
use support::{check_layout, is_name, sha256sum, tar_list, untar};

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
const RAM: u64 = 0x20_0000;
const UTS_PA: u64 = 0x3000;
const UTS_NAME_OFFSET: u64 = 4;
const NODENAME: &str = "synth-host_7";
const RELEASE: &str = "6.1.0-synth";
const BUILD_ID: &str = "0123456789abcdef0123456789abcdef01234567";

/// Writes the dump and returns its path. The kernel image (2 MiB at `START_KERNEL_MAP`) maps
/// physical 0 with `phys_base` 0; `init_uts_ns` lies in it.
fn write_dump(dir: &Path) -> PathBuf {
    let mut pt = Builder::new(Mode::X86 { l5: false, sme: 0 }, &[(0, RAM)], 0x10_0000);
    pt.map(START_KERNEL_MAP, 0, 0x20_0000);
    let mut b = VmcoreBuilder::new(SynthArch::X86_64);
    let mut tables: Vec<u64> = pt.tables.iter().map(|&(_, pa)| pa).collect();
    tables.push(pt.root);
    tables.sort_unstable();
    tables.dedup();
    for pa in tables {
        let bytes: Vec<u8> = (0..4096).map(|i| pt.mem.expected(pa + i)).collect();
        b.write_phys(pa, &bytes);
    }
    // struct new_utsname: six char[65] (include/uapi/linux/utsname.h)
    let mut uts = vec![0u8; (UTS_NAME_OFFSET + 6 * 65) as usize];
    for (i, f) in [
        "Linux",
        NODENAME,
        RELEASE,
        "#1 SMP synthetic",
        "x86_64",
        "(none)",
    ]
    .iter()
    .enumerate()
    {
        let at = UTS_NAME_OFFSET as usize + 65 * i;
        uts[at..at + f.len()].copy_from_slice(f.as_bytes());
    }
    b.write_phys(UTS_PA, &uts);
    b.max_pfn(RAM / 4096);
    b.vmcoreinfo(&format!(
        "OSRELEASE={RELEASE}\nBUILD-ID={BUILD_ID}\nPAGESIZE=4096\nKERNELOFFSET=0\n\
         SYMBOL(init_top_pgt)={:x}\nNUMBER(phys_base)=0\n\
         SYMBOL(init_uts_ns)={:x}\nOFFSET(uts_namespace.name)={UTS_NAME_OFFSET}\n",
        START_KERNEL_MAP + pt.root,
        START_KERNEL_MAP + UTS_PA,
    ));
    b.prstatus(1, &[0u64; 27]);
    let path = dir.join("vmcore");
    std::fs::write(&path, b.build_elf(&ElfOpts::default())).unwrap();
    path
}

/// A minimal x86_64 `ET_EXEC` vmlinux: `.note.gnu.build-id`, `.symtab`, `.strtab`, `.shstrtab`
/// (ELF-64 object file format, System V gABI).
fn write_vmlinux(path: &Path, build_id_hex: &str) {
    let build_id: Vec<u8> = (0..build_id_hex.len() / 2)
        .map(|i| u8::from_str_radix(&build_id_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes()); // namesz
    note.extend_from_slice(&(build_id.len() as u32).to_le_bytes()); // descsz
    note.extend_from_slice(&3u32.to_le_bytes()); // NT_GNU_BUILD_ID
    note.extend_from_slice(b"GNU\0");
    note.extend_from_slice(&build_id);

    let syms = [
        ("init_uts_ns", START_KERNEL_MAP + UTS_PA, 0x200u64),
        ("_stext", START_KERNEL_MAP + 0x1000, 0),
    ];
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24]; // the null symbol
    for (name, value, size) in syms {
        let off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&off.to_le_bytes()); // st_name
        symtab.push(0x11); // STB_GLOBAL << 4 | STT_OBJECT
        symtab.push(0); // st_other
        symtab.extend_from_slice(&0xfff1u16.to_le_bytes()); // SHN_ABS
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    }
    let mut shstrtab = vec![0u8];
    let mut name_of = |n: &str| {
        let off = shstrtab.len() as u32;
        shstrtab.extend_from_slice(n.as_bytes());
        shstrtab.push(0);
        off
    };
    let names = [
        name_of(".note.gnu.build-id"),
        name_of(".symtab"),
        name_of(".strtab"),
        name_of(".shstrtab"),
    ];

    let mut file = vec![0u8; 64];
    let place = |data: &[u8], file: &mut Vec<u8>| {
        while file.len() % 8 != 0 {
            file.push(0);
        }
        let off = file.len() as u64;
        file.extend_from_slice(data);
        off
    };
    let offs = [
        place(&note, &mut file),
        place(&symtab, &mut file),
        place(&strtab, &mut file),
        place(&shstrtab, &mut file),
    ];
    while file.len() % 8 != 0 {
        file.push(0);
    }
    let shoff = file.len() as u64;
    // (name, type, flags, offset, size, link, info, align, entsize)
    type Shdr = (u32, u32, u64, u64, u64, u32, u32, u64, u64);
    let shdrs: [Shdr; 5] = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0),
        (names[0], 7, 2, offs[0], note.len() as u64, 0, 0, 4, 0),
        (names[1], 2, 0, offs[1], symtab.len() as u64, 3, 1, 8, 24),
        (names[2], 3, 0, offs[2], strtab.len() as u64, 0, 0, 1, 0),
        (names[3], 3, 0, offs[3], shstrtab.len() as u64, 0, 0, 1, 0),
    ];
    for (name, ty, flags, off, size, link, info, align, entsize) in shdrs {
        file.extend_from_slice(&name.to_le_bytes());
        file.extend_from_slice(&ty.to_le_bytes());
        file.extend_from_slice(&flags.to_le_bytes());
        file.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
        file.extend_from_slice(&off.to_le_bytes());
        file.extend_from_slice(&size.to_le_bytes());
        file.extend_from_slice(&link.to_le_bytes());
        file.extend_from_slice(&info.to_le_bytes());
        file.extend_from_slice(&align.to_le_bytes());
        file.extend_from_slice(&entsize.to_le_bytes());
    }
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    h.extend_from_slice(&[0u8; 8]);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    h.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&shoff.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    h.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h.extend_from_slice(&5u16.to_le_bytes()); // e_shnum
    h.extend_from_slice(&4u16.to_le_bytes()); // e_shstrndx
    file[..64].copy_from_slice(&h);
    std::fs::write(path, file).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    dump: PathBuf,
    vmlinux: PathBuf,
    out: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_dump(dir.path());
    let vmlinux = dir.path().join("vmlinux");
    write_vmlinux(&vmlinux, BUILD_ID);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    Setup {
        _dir: dir,
        dump,
        vmlinux,
        out,
    }
}

fn run(s: &Setup, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--vmcore")
        .arg(&s.dump)
        .arg("--tmp-dir")
        .arg(&s.out)
        .args(extra)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn with_vmlinux<'a>(s: &'a Setup, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--vmlinux", s.vmlinux.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one archive in the output directory, and its name without the extension.
fn the_archive(out: &Path, ext: &str) -> (PathBuf, String) {
    let found: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(ext))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let p = found.into_iter().next().unwrap();
    let name = p
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .strip_suffix(ext)
        .unwrap()
        .to_string();
    (p, name)
}

fn unpack(archive: &Path, name: &str) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    untar(archive, dir.path());
    let m = check_layout(&dir.path().join(name));
    (dir, m)
}

#[test]
fn a_synthetic_dump_becomes_an_xz_archive() {
    let s = setup();
    let o = run(&s, &with_vmlinux(&s, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    assert!(is_name(&name, "synth-host7", None), "{name}");
    assert!(
        text(&o.stdout).contains(archive.to_str().unwrap()),
        "{}",
        text(&o.stdout)
    );
    let sum = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
    assert_eq!(sum, format!("{}\n", sha256sum(&archive)));
    assert!(
        text(&o.stdout).contains(sum.trim()),
        "the summary shows the checksum"
    );

    let list = tar_list(&archive);
    assert_eq!(list[0], format!("{name}/"));
    assert_eq!(list[1], format!("{name}/version.txt"));
    assert_eq!(list[2], format!("{name}/sos_reports/"));

    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["nodename"], NODENAME);
    assert_eq!(m["kernel_release"], RELEASE);
    assert_eq!(m["architecture"], "x86_64");
    assert_eq!(m["dump"]["format"], "elf");
    assert_eq!(m["dump"]["paths"][0], s.dump.to_str().unwrap());
    assert_eq!(m["dump"]["size"], std::fs::metadata(&s.dump).unwrap().len());
    assert!(m["dump"]["sha256"].is_null());
    assert_eq!(m["vmlinux"]["path"], s.vmlinux.to_str().unwrap());
    assert_eq!(m["vmlinux"]["build_id"], BUILD_ID);
    assert_eq!(m["vmlinux"]["found_by"], "command-line");
    assert_eq!(m["vmlinux"]["proof"], "build-id");
    assert_eq!(m["vmlinux"]["forced"], false);
    assert_eq!(m["compression"], "xz");
    // the private build directory is gone
    assert_eq!(std::fs::read_dir(&s.out).unwrap().count(), 2);
}

#[test]
fn gzip_build_and_dump_hash() {
    let s = setup();
    let o = run(
        &s,
        &with_vmlinux(&s, &["-z", "gzip", "--sha256-dump", "--label", "t1"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.gz");
    assert!(is_name(&name, "synth-host7", Some("t1")), "{name}");
    assert_eq!(
        std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap(),
        format!("{}\n", sha256sum(&archive))
    );
    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["compression"], "gzip");
    assert_eq!(m["dump"]["sha256"][0], sha256sum(&s.dump));

    let s = setup();
    let o = run(&s, &with_vmlinux(&s, &["--build"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let dirs: Vec<PathBuf> = std::fs::read_dir(&s.out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "only the private build directory: {dirs:?}");
    let inner: Vec<PathBuf> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(inner.len(), 1);
    let name = inner[0].file_name().unwrap().to_str().unwrap();
    assert!(is_name(name, "synth-host7", None), "{name}");
    assert!(text(&o.stdout).contains(inner[0].to_str().unwrap()));
    let m = check_layout(&inner[0]);
    assert_eq!(m["compression"], "none");
}

#[test]
fn list_plugins_with_a_dump() {
    let s = setup();
    let o = run(&s, &with_vmlinux(&s, &["-l"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("plugins"), "{}", text(&o.stdout));
    // nothing written
    assert_eq!(std::fs::read_dir(&s.out).unwrap().count(), 0);
}

#[test]
fn vmlinux_problems_give_the_debuginfo_exit_code() {
    let s = setup();
    let other = s.out.parent().unwrap().join("other-vmlinux");
    write_vmlinux(&other, "ffeeddccbbaa99887766554433221100ffeeddcc");
    let o = run(&s, &["--vmlinux", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("does not match") || err.contains("build-id"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&s.out).unwrap().count(), 0);

    // --force-vmlinux accepts it and says so in the manifest
    let o = run(
        &s,
        &["--vmlinux", other.to_str().unwrap(), "--force-vmlinux"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["vmlinux"]["forced"], true);
    assert_eq!(m["vmlinux"]["proof"], "forced");

    // nothing to be found: an empty debuginfo dir and no such release installed here
    let s = setup();
    let empty = tempfile::tempdir().unwrap();
    let o = run(&s, &["--debuginfo-dir", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(RELEASE), "{}", text(&o.stderr));
}

#[test]
fn the_vmlinux_is_found_in_a_debuginfo_dir() {
    let s = setup();
    let di = tempfile::tempdir().unwrap();
    std::fs::copy(&s.vmlinux, di.path().join(format!("vmlinux-{RELEASE}"))).unwrap();
    let o = run(&s, &["--debuginfo-dir", di.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["vmlinux"]["found_by"], "debuginfo-dir");
    assert_eq!(m["vmlinux"]["proof"], "build-id");
}

/// With the test-only plugins: failures, a panic and an overrun are recorded, the run goes on,
/// the archive is written and the exit code says some plugins failed.
#[cfg(feature = "test-plugins")]
#[test]
fn failing_plugins_are_recorded_and_the_archive_written() {
    let s = setup();
    let o = run(
        &s,
        &with_vmlinux(
            &s,
            &[
                "-e",
                "test_ok,test_fail,test_panic,test_partial",
                "-e",
                "test_sleep",
                "-k",
                "test_sleep.ms=1500",
                "-k",
                "test_sleep.timeout=1",
            ],
        ),
    );
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("panicked at"), "{err}");
    assert!(
        err.contains("test_fail") && err.contains("test_panic"),
        "{err}"
    );
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    let (d, m) = unpack(&archive, &name);
    let p = &m["components"]["report"]["plugins"];
    assert_eq!(p["test_ok"]["status"], "ok");
    assert_eq!(p["test_fail"]["status"], "failed");
    assert_eq!(p["test_fail"]["errors"][0]["code"], "test-failure");
    assert_eq!(p["test_panic"]["status"], "failed");
    assert_eq!(p["test_panic"]["errors"][0]["code"], "panic");
    assert_eq!(p["test_partial"]["status"], "partial");
    assert_eq!(p["test_sleep"]["status"], "timed-out");
    assert_eq!(p["test_sleep"]["timeout_hit"], true);
    assert_eq!(p["test_sleep"]["timeout"], 1);
    assert_eq!(p["test_sleep"]["options"]["ms"], 1500);
    assert_eq!(
        std::fs::read_to_string(d.path().join(&name).join("plugins/test_ok/hello.txt")).unwrap(),
        "hello\n"
    );
    let log = std::fs::read_to_string(d.path().join(&name).join("sos_logs/sos.log")).unwrap();
    assert!(log.contains("test_panic panics on purpose"), "{log}");
}
