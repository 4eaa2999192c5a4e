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
use common::vmcore::{ElfOpts, KdumpOpts, SynthArch, VmcoreBuilder};
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
    /// `init_uts_ns.name.nodename` (at most 64 bytes).
    nodename: &'static str,
    /// A kdump-compressed file whose header says the capture did not finish, instead of ELF.
    kdump_incomplete: bool,
}

const FULL: DumpOpts = DumpOpts {
    build_id: true,
    uts_offset: true,
    nodename: NODENAME,
    kdump_incomplete: false,
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
    assert!(opts.nodename.len() <= 64);
    for (i, f) in [
        "Linux",
        opts.nodename,
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
    let bytes = if opts.kdump_incomplete {
        let k = KdumpOpts {
            incomplete_drop: Some(0),
            phys_base: 0,
            ..KdumpOpts::default()
        };
        b.build_kdump(&k).to_vec()
    } else {
        b.build_elf(&ElfOpts::default())
    };
    std::fs::write(&path, bytes).unwrap();
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

/// [`run`] without sched_debug: the synthetic kernel has no runqueues, so sched_debug comes out
/// partial (`no-such-symbol`) and the run exits 5; these tests are about everything else.
fn run_complete(s: &Setup, extra: &[&str]) -> Output {
    let mut v = extra.to_vec();
    v.extend(["-n", "sched_debug"]);
    run(s, &v)
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
    let o = run_complete(&s, &with_vmlinux(&s, &[]));
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
    let o = run_complete(
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
    let o = run_complete(&s, &with_vmlinux(&s, &["--build"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // only the private build directory, holding the tree
    let root = build_root(&s.out);
    let name = root.file_name().unwrap().to_str().unwrap();
    assert!(is_name(name, "synth-host7", None), "{name}");
    assert!(text(&o.stdout).contains(root.to_str().unwrap()));
    let m = check_layout(&root);
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
    let o = run_complete(
        &s,
        &["--vmlinux", other.to_str().unwrap(), "--force-vmlinux"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    let (_d, m) = unpack(&archive, &name);
    assert_eq!(m["vmlinux"]["forced"], true);
    assert_eq!(m["vmlinux"]["proof"], "forced");

    // nothing to be found (an empty debuginfo dir and no such release installed here): no
    // refusal, the report is made from the dump alone; this synthetic dump holds neither
    // kallsyms nor BTF, so only what VMCOREINFO describes is read, the manifest says why, and
    // the exit code says plugins are missing
    let s = setup();
    let empty = tempfile::tempdir().unwrap();
    let o = run_complete(&s, &["--debuginfo-dir", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(RELEASE), "{}", text(&o.stderr));
    let (archive, name) = the_archive(&s.out, ".tar.xz");
    let (_d, m) = unpack(&archive, &name);
    assert!(m["vmlinux"].is_null());
    assert_eq!(m["debuginfo"]["types"], "none");
    let notes = m["debuginfo"]["notes"].to_string();
    assert!(
        notes.contains("no vmlinux") && notes.contains(RELEASE),
        "{notes}"
    );
}

#[test]
fn utsname_offset_from_dwarf_and_a_banner_proven_vmlinux() {
    // no OFFSET(uts_namespace.name): the member offset comes from the vmlinux's DWARF;
    // no BUILD-ID: the vmlinux is matched by release and the banner read from the dump
    let s = setup_with(DumpOpts {
        build_id: false,
        uts_offset: false,
        ..FULL
    });
    let o = run_complete(&s, &with_vmlinux(&s, &[]));
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
    let o = run_complete(&s, &["--debuginfo-dir", di.path().to_str().unwrap()]);
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

/// The manifest of the one archive a run left in `out`.
fn manifest_of(out: &Path) -> (tempfile::TempDir, Value, String) {
    let (archive, name) = the_archive(out, ".tar.xz");
    let (d, m) = unpack(&archive, &name);
    (d, m, name)
}

/// Each documented exit code from a run that earns it; the manifest says why.
#[cfg(feature = "test-plugins")]
#[test]
fn exit_codes_tell_a_pipeline_the_truth() {
    // 5: the default plugins; sched_debug finds no runqueues in the synthetic kernel and comes
    // out partial for a reason other than filtering
    let s = setup();
    let o = run(&s, &with_vmlinux(&s, &[]));
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let (_d, m, _) = manifest_of(&s.out);
    let p = &m["components"]["report"]["plugins"];
    assert_eq!(p["sched_debug"]["status"], "partial");
    assert_eq!(p["kernel_info"]["status"], "ok");
    assert_eq!(m["dump"]["health"]["complete"], true);

    // 7: only filtered-out pages are missing, from a whole dump
    let s = setup();
    let o = run_complete(&s, &with_vmlinux(&s, &["-e", "test_partial"]));
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    let (_d, m, _) = manifest_of(&s.out);
    let tp = &m["components"]["report"]["plugins"]["test_partial"];
    assert_eq!(tp["status"], "partial");
    assert_eq!(tp["error_causes"][0]["code"], "not-dumped");

    // 5: a plugin that finished without writing anything is empty, a failure
    let s = setup();
    let o = run_complete(
        &s,
        &with_vmlinux(&s, &["-e", "test_sleep", "-k", "test_sleep.ms=1"]),
    );
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let (_d, m, _) = manifest_of(&s.out);
    let ts = &m["components"]["report"]["plugins"]["test_sleep"];
    assert_eq!(ts["status"], "empty");
    assert_eq!(ts["errors"][0]["code"], "empty");

    // 8: a dump whose header says the capture did not finish, whatever the plugins did; the
    // first line on the terminal says so, once
    let s = setup_with(DumpOpts {
        kdump_incomplete: true,
        ..FULL
    });
    let o = run_complete(&s, &with_vmlinux(&s, &["-e", "test_partial"]));
    assert_eq!(o.status.code(), Some(8), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap_or("")
            .contains("the dump is damaged"),
        "{err}"
    );
    assert_eq!(err.matches("the dump is damaged").count(), 1, "{err}");
    let (_d, m, _) = manifest_of(&s.out);
    assert_eq!(m["dump"]["format"], "kdump");
    assert_eq!(m["dump"]["health"]["complete"], false);
    assert_eq!(m["dump"]["health"]["flagged_incomplete_by_header"], true);
    assert!(m["dump"]["health"]["truncated"].is_null());
    assert_eq!(m["dump"]["format_details"]["incomplete"], true);
}

/// Three hundred failures of one kind: one line on the terminal and in the log, the manifest
/// keeps the first hundred and counts the rest.
#[cfg(feature = "test-plugins")]
#[test]
fn repeated_failures_make_one_message_per_cause() {
    let s = setup();
    let o = run_complete(
        &s,
        &with_vmlinux(
            &s,
            &[
                "-e",
                "test_partial",
                "-k",
                "test_partial.count=300",
                "--build",
            ],
        ),
    );
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("test_partial")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(
            "300 errors not-dumped, first at 0xffff888000100000, last at 0xffff88800022b000"
        ),
        "{}",
        lines[0]
    );
    let root = build_root(&s.out);
    let m: Value =
        serde_json::from_slice(&std::fs::read(root.join("sos_reports/manifest.json")).unwrap())
            .unwrap();
    let tp = &m["components"]["report"]["plugins"]["test_partial"];
    assert_eq!(tp["errors"].as_array().unwrap().len(), 100);
    assert_eq!(tp["errors_omitted"], 200);
    assert_eq!(tp["error_causes"][0]["count"], 300);
    assert_eq!(tp["error_causes"][0]["first_address"], "0xffff888000100000");
    assert_eq!(tp["error_causes"][0]["last_address"], "0xffff88800022b000");
    let ui = std::fs::read_to_string(root.join("sos_logs/ui.log")).unwrap();
    assert_eq!(ui.matches("not-dumped").count(), 1, "{ui}");
}

/// The kept tree of a `--build` run: `<out>/vmcore-report.XXXXXX/<name>`.
fn build_root(out: &Path) -> PathBuf {
    let private: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(private.len(), 1, "{private:?}");
    let inner: Vec<PathBuf> = std::fs::read_dir(&private[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(inner.len(), 1, "{inner:?}");
    inner.into_iter().next().unwrap()
}

/// No byte a terminal would act on: controls other than the newline ending each line and tab.
fn assert_inert(what: &str, bytes: &[u8]) {
    let bad: Vec<(usize, u8)> = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f)
        .map(|(i, &b)| (i, b))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control bytes {bad:?} in {}",
        text(bytes)
    );
    // C1 controls and bidi overrides, as UTF-8
    let t = text(bytes);
    assert!(
        !t.chars()
            .any(|c| ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{202e}'),
        "{what}: {t}"
    );
}

#[test]
fn hostile_strings_from_the_dump_stay_inert() {
    const HOSTILE: &str = "../../e\x1b[31mRED\x1b]0;title\x07\nERROR: forged\r\u{9b}2J\u{202e}x";
    let s = setup_with(DumpOpts {
        nodename: HOSTILE,
        ..FULL
    });
    let o = run_complete(&s, &with_vmlinux(&s, &["--build", "-v"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_inert("stdout", &o.stdout);
    assert_inert("stderr", &o.stderr);
    // the message that carried the name is there, escaped
    assert!(
        text(&o.stdout).contains("../../e\\x1b[31mRED\\x1b]0;title\\x07\\nERROR: forged"),
        "{}",
        text(&o.stdout)
    );
    let root = build_root(&s.out);
    let name = root.file_name().unwrap().to_str().unwrap();
    // sanitized: one component directly in the private directory, nothing a terminal acts on
    assert!(
        name.starts_with("sosvmcore-") && !name.chars().any(char::is_control),
        "{name}"
    );
    for log in ["sos_logs/ui.log", "sos_logs/sos.log"] {
        let b = std::fs::read(root.join(log)).unwrap();
        assert_inert(log, &b);
        // no line was forged
        assert!(
            !text(&b).lines().any(|l| l.starts_with("ERROR: forged")),
            "{log}"
        );
    }
    // the manifest keeps the name exactly (JSON escapes it)
    let m: Value =
        serde_json::from_slice(&std::fs::read(root.join("sos_reports/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["nodename"], HOSTILE);
}

/// A plugin computing without reading the dump is abandoned at its timeout (plus the runner's
/// grace); its late file is not in the archive.
#[cfg(feature = "test-plugins")]
#[test]
fn a_plugin_spinning_without_reads_stops_at_its_timeout() {
    let s = setup();
    let t = std::time::Instant::now();
    let o = run_complete(
        &s,
        &with_vmlinux(
            &s,
            &[
                "-e",
                "test_spin",
                "-k",
                "test_spin.ms=60000",
                "-k",
                "test_spin.timeout=1",
            ],
        ),
    );
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    let (d, m, name) = manifest_of(&s.out);
    let ts = &m["components"]["report"]["plugins"]["test_spin"];
    assert_eq!(ts["status"], "timed-out");
    assert_eq!(ts["timeout_hit"], true);
    assert!(!d.path().join(&name).join("plugins/test_spin").exists());
    assert_eq!(
        m["components"]["report"]["plugins"]["kernel_info"]["status"],
        "ok"
    );
}

/// SIGINT and SIGTERM mid-run: the conventional code, and nothing left in --tmp-dir.
#[cfg(feature = "test-plugins")]
#[test]
fn an_interrupted_run_leaves_nothing_behind() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let s = setup();
        let child = Command::new(BIN)
            .arg("--vmcore")
            .arg(&s.dump)
            .arg("--vmlinux")
            .arg(&s.vmlinux)
            .arg("--tmp-dir")
            .arg(&s.out)
            .args(["-e", "test_sleep", "-k", "test_sleep.ms=30000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // wait until the private build directory exists: the plugins are running
        let t = std::time::Instant::now();
        while std::fs::read_dir(&s.out).unwrap().count() == 0 {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(20),
                "no build dir"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let k = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(k.success());
        let o = child.wait_with_output().unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(o.status.code(), Some(code), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("interrupted"),
            "{}",
            text(&o.stderr)
        );
        let left: Vec<PathBuf> = std::fs::read_dir(&s.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "SIG{signal} left {left:?}");
    }
}
