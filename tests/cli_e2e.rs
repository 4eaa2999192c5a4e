//! The binary end to end on a synthetic x86_64 dump: an ELF vmcore from tests/common/vmcore.rs
//! whose kernel page tables come from tests/common/pagetable.rs, and a vmlinux with DWARF from
//! tests/common/dwarf.rs. Expected values come from what the test put in: the nodename and release written into
//! `init_uts_ns`, the build-id, the files' own SHA-256 (`sha256sum`), `tar`'s listing.

mod common;
#[path = "report_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::dwarf::{VmlinuxBuilder, field};
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
const BANNER_PA: u64 = 0x5000;
const BANNER: &str = "Linux version 6.1.0-synth (builder@synthetic) (gcc) #1 SMP synthetic";

/// What VMCOREINFO carries besides the essentials.
#[derive(Clone, Copy)]
struct DumpOpts {
    /// `BUILD-ID=` (else the vmlinux is matched by release and banner).
    build_id: bool,
    /// `OFFSET(uts_namespace.name)` (else the offset comes from the DWARF).
    uts_offset: bool,
}

const FULL: DumpOpts = DumpOpts {
    build_id: true,
    uts_offset: true,
};

/// Writes the dump and returns its path. The kernel image (2 MiB at `START_KERNEL_MAP`) maps
/// physical 0 with `phys_base` 0; `init_uts_ns` lies in it.
fn write_dump(dir: &Path, opts: DumpOpts) -> PathBuf {
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
    let mut banner = BANNER.as_bytes().to_vec();
    banner.push(0);
    b.write_phys(BANNER_PA, &banner);
    b.max_pfn(RAM / 4096);
    let mut vi = format!(
        "OSRELEASE={RELEASE}\nPAGESIZE=4096\nKERNELOFFSET=0\n\
         SYMBOL(init_top_pgt)={:x}\nNUMBER(phys_base)=0\nSYMBOL(init_uts_ns)={:x}\n",
        START_KERNEL_MAP + pt.root,
        START_KERNEL_MAP + UTS_PA,
    );
    if opts.build_id {
        vi.push_str(&format!("BUILD-ID={BUILD_ID}\n"));
    }
    if opts.uts_offset {
        vi.push_str(&format!("OFFSET(uts_namespace.name)={UTS_NAME_OFFSET}\n"));
    }
    b.vmcoreinfo(&vi);
    b.prstatus(1, &[0u64; 27]);
    let path = dir.join("vmcore");
    std::fs::write(&path, b.build_elf(&ElfOpts::default())).unwrap();
    path
}

/// The vmlinux, from the shared synthetic builder (tests/common/dwarf.rs): DWARF for
/// `struct uts_namespace { struct kref kref; struct new_utsname name; }` with `name` at
/// [`UTS_NAME_OFFSET`], the `init_uts_ns` variable, `linux_banner`, and a build-id note unless
/// `build_id` is `None`.
fn write_vmlinux(path: &Path, build_id_hex: Option<&str>) {
    let mut b = VmlinuxBuilder::new();
    let ch = b.char_type();
    let field65 = b.array(ch, Some(65));
    let uts = b.structure(
        Some("new_utsname"),
        6 * 65,
        [
            "sysname",
            "nodename",
            "release",
            "version",
            "machine",
            "domainname",
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| field(n, field65, 65 * i as u64))
        .collect(),
    );
    let uint = b.base("unsigned int", 4, false);
    let kref = b.structure(Some("kref"), 4, vec![field("refcount", uint, 0)]);
    let ns = b.structure(
        Some("uts_namespace"),
        UTS_NAME_OFFSET + 6 * 65,
        vec![field("kref", kref, 0), field("name", uts, UTS_NAME_OFFSET)],
    );
    b.variable(
        "init_uts_ns",
        ns,
        START_KERNEL_MAP + UTS_PA,
        UTS_NAME_OFFSET + 6 * 65,
    );
    b.linux_banner(START_KERNEL_MAP + BANNER_PA, BANNER);
    if let Some(hex) = build_id_hex {
        let id: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        b.build_id(&id);
    }
    std::fs::write(path, b.build()).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    dump: PathBuf,
    vmlinux: PathBuf,
    out: PathBuf,
}

fn setup() -> Setup {
    setup_with(FULL)
}

fn setup_with(opts: DumpOpts) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_dump(dir.path(), opts);
    let vmlinux = dir.path().join("vmlinux");
    write_vmlinux(&vmlinux, Some(BUILD_ID));
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
    write_vmlinux(&other, Some("ffeeddccbbaa99887766554433221100ffeeddcc"));
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
fn utsname_offset_from_dwarf_and_a_banner_proven_vmlinux() {
    // no OFFSET(uts_namespace.name): the member offset comes from the vmlinux's DWARF;
    // no BUILD-ID: the vmlinux is matched by release and the banner read from the dump
    let s = setup_with(DumpOpts {
        build_id: false,
        uts_offset: false,
    });
    let o = run(&s, &with_vmlinux(&s, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    assert!(is_name(&name, "synth-host7", None), "{name}");
    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["nodename"], NODENAME);
    assert_eq!(m["vmlinux"]["proof"], "release-and-banner");

    // a vmlinux of the same release whose banner differs is refused
    let other = s.out.parent().unwrap().join("other-vmlinux");
    {
        let mut b = VmlinuxBuilder::new();
        b.linux_banner(
            START_KERNEL_MAP + BANNER_PA,
            "Linux version 6.1.0-synth (someone@else) (gcc) #2 SMP another build",
        );
        std::fs::write(&other, b.build()).unwrap();
    }
    let out2 = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("--vmcore")
        .arg(&s.dump)
        .arg("--vmlinux")
        .arg(&other)
        .arg("--tmp-dir")
        .arg(out2.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
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
