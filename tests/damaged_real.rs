//! Damaged copies of the real fixture dumps, run through the release binary: truncated at many
//! points, bytes flipped in headers, bitmaps, descriptors, compressed pages and kernel data (the
//! task list, the printk ring, the module list), a vmlinux of another build, and files that are
//! not dumps.
//!
//! Every case runs `vmcore-report --batch -z none` with a timeout. It must not panic (no
//! "panicked" on stderr, exit code not 101) nor hang, and must end either with a salvaged archive
//! flagged as damaged ([`flagged_damaged`]) or with a one-line error naming the problem. Flips of
//! kernel data may also end clean (exit 0, nothing flagged): the plugins that run may not read
//! the bytes flipped. The counts (cases, salvaged, refused, clean, panics, hangs) are printed and
//! recorded in docs/testing.md.
//!
//! The copies are made in the test from the cached fixtures: a truncation copies only the prefix,
//! a flip copies the file (the ~15 and ~65 MiB makedumpfile outputs, never the 285 MiB
//! `vmcore.elf`) and patches it. Kernel data is found the way a reader finds it: the symbol's
//! address through the kernel view gives the physical address, the ELF reader the file offset.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures;
use vmcore_report::addr::VirtAddr;
use vmcore_report::dump::{ByteSource, elf};

const SET: &str = "x86_64-6.1-l5";
const TIMEOUT: Duration = Duration::from_secs(60);

/// How a case may end besides a flagged archive or a refusal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// Damage the dump layer sees: the archive must be flagged.
    Flagged,
    /// Kernel data: a clean run is honest when nothing run reads the bytes.
    MayBeClean,
    /// Not a dump or not its kernel: refused.
    Refused,
}

struct Case {
    name: String,
    vmcore: PathBuf,
    vmlinux: PathBuf,
    extra: Vec<&'static str>,
    allowed: Allowed,
}

#[derive(Debug)]
enum Outcome {
    Salvaged { code: i32, flagged: bool },
    Refused { code: i32, line: String },
    Clean,
    Panic(String),
    Hang,
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Salvaged { code, flagged } => {
                format!("archive, exit {code}, flagged as damaged: {flagged}")
            }
            Outcome::Refused { code, line } => format!("refused, exit {code}: {line}"),
            Outcome::Clean => "archive, exit 0, nothing flagged".into(),
            Outcome::Panic(stderr) => format!("PANIC: {stderr}"),
            Outcome::Hang => format!("HANG (killed after {TIMEOUT:?})"),
        }
    }
}

/// Whether an archive's run says the dump was damaged: a non-zero exit code, or a damage marker
/// in the manifest's dump record (the header's `incomplete` flag today; further markers are
/// added to `MANIFEST_DAMAGE_KEYS`).
fn flagged_damaged(code: i32, manifest: Option<&serde_json::Value>) -> bool {
    code != 0 || manifest.is_some_and(manifest_marks_damage)
}

/// Keys of the manifest's `dump` record that mark a damaged dump when present and not
/// `false`/`null`/`"complete"`.
const MANIFEST_DAMAGE_KEYS: &[&str] = &["incomplete", "truncation", "damage"];

fn manifest_marks_damage(m: &serde_json::Value) -> bool {
    let Some(dump) = m.get("dump") else {
        return false;
    };
    let set = |v: &serde_json::Value| {
        !(v.is_null() || *v == serde_json::json!(false) || *v == serde_json::json!("complete"))
    };
    MANIFEST_DAMAGE_KEYS
        .iter()
        .filter_map(|k| dump.get(*k).or_else(|| dump.get("format")?.get(*k)))
        .any(set)
}

/// kdump flips the reader absorbs, so a clean run is honest there: a `max_mapnr_64` past the
/// bitmaps is bounded by them; the notes' size is checked against the file and the sub-header's
/// own VMCOREINFO pointer still reads; a page the dumpable bitmap holds but the RAM bitmap lacks
/// is read as RAM (with a warning in the log); the flipped descriptors (pages 100, 500 and 1000
/// of the dump, low memory) describe pages no default plugin reads.
const TOLERATED_KDUMP_FLIPS: &[&str] = &[
    "kdump max_mapnr_64 huge",
    "kdump note size huge",
    "kdump RAM bitmap zeroed",
    "kdump descriptor offsets",
    "kdump descriptor flags",
];

/// Whether a manifest's dump record says the dump is truncated (`dump.health`).
fn manifest_says_truncated(m: &Option<serde_json::Value>) -> bool {
    m.as_ref().is_some_and(|m| {
        m["dump"]["health"]["complete"] == serde_json::json!(false)
            && m["dump"]["health"]["truncated"]["pages_lost"].as_u64() > Some(0)
    })
}

/// The manifest inside a `-z none` archive.
fn manifest_of(dir: &Path) -> Option<serde_json::Value> {
    let tar_path = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tar"))?;
    let mut ar = tar::Archive::new(File::open(tar_path).ok()?);
    for entry in ar.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.ends_with("sos_reports/manifest.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return serde_json::from_str(&text).ok();
        }
    }
    None
}

fn has_archive(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("sosvmcore-") && !n.ends_with(".sha256")
        })
    })
}

fn run(case: &Case, work: &Path) -> Outcome {
    let out = work.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let stderr_path = work.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmcore-report"))
        .arg("--vmcore")
        .arg(&case.vmcore)
        .arg("--vmlinux")
        .arg(&case.vmlinux)
        .args(["--batch", "-z", "none", "--tmp-dir"])
        .arg(&out)
        .args(&case.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Hang;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let code = status.code().unwrap_or(-1);
    if stderr.contains("panicked") || code == 101 || status.code().is_none() {
        return Outcome::Panic(stderr.lines().take(5).collect::<Vec<_>>().join(" | "));
    }
    if has_archive(&out) {
        let manifest = manifest_of(&out);
        if code == 0 && !manifest.as_ref().is_some_and(manifest_marks_damage) {
            return Outcome::Clean;
        }
        return Outcome::Salvaged {
            code,
            flagged: flagged_damaged(code, manifest.as_ref()),
        };
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    Outcome::Refused {
        code,
        line: match errors[..] {
            [one] => one.to_string(),
            _ => format!("{} error lines: {stderr}", errors.len()),
        },
    }
}

/// A copy of the first `len` bytes of `src`.
fn prefix(src: &Path, len: u64, to: &Path) -> PathBuf {
    let mut out = File::create(to).unwrap();
    std::io::copy(&mut File::open(src).unwrap().take(len), &mut out).unwrap();
    to.to_path_buf()
}

/// Bytes written over a copy of a dump: (file offset, bytes).
type Patches = Vec<(u64, Vec<u8>)>;

/// A copy of `src` with `patches` written over it.
fn patched(src: &Path, patches: &Patches, to: &Path) -> PathBuf {
    std::fs::copy(src, to).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(to).unwrap();
    for (at, bytes) in patches {
        f.write_all_at(bytes, *at).unwrap();
    }
    to.to_path_buf()
}

fn le(file: &Path, at: u64, n: usize) -> u64 {
    let mut b = [0u8; 8];
    File::open(file)
        .unwrap()
        .read_exact_at(&mut b[..n], at)
        .unwrap();
    u64::from_le_bytes(b)
}

/// The file offsets (`p_offset`) of an ELF dump's segments of type `p_type`, read from its
/// program headers (little-endian, 56 bytes each).
fn elf_segments(file: &Path, p_type: u64) -> Vec<u64> {
    let (phoff, phnum) = (le(file, 32, 8), le(file, 56, 2));
    (0..phnum)
        .filter(|i| le(file, phoff + 56 * i, 4) == p_type)
        .map(|i| le(file, phoff + 56 * i + 8, 8))
        .collect()
}

/// File offset just past an ELF dump's headers and notes: the first `PT_LOAD`'s data.
fn elf_first_load(file: &Path) -> u64 {
    elf_segments(file, 1).into_iter().min().unwrap()
}

/// File offset of an ELF dump's first `PT_NOTE` data.
fn elf_notes(file: &Path) -> u64 {
    elf_segments(file, 4)[0]
}

/// Block-aligned offsets of a kdump file's regions: (block size, bitmap 1, bitmap 2,
/// descriptors).
fn kdump_layout(file: &Path, base: u64) -> (u64, u64, u64, u64) {
    let bs = le(file, base + 428, 4);
    let sub = le(file, base + 432, 4);
    let bitmap_blocks = le(file, base + 436, 4);
    let b1 = (1 + sub) * bs;
    (bs, b1, b1 + bitmap_blocks / 2 * bs, b1 + bitmap_blocks * bs)
}

/// The compressed data, (file offset, size), of the kdump file's pages that hold data every
/// report reads: `init_uts_ns` (kernel_info, sys) and the printk descriptor ring (dmesg). A
/// page's descriptor is found as makedumpfile lays them out: one 24-byte descriptor per page
/// set in the dumpable bitmap (bitmap 2, bit `pfn % 8` of byte `pfn / 8`), in pfn order.
fn kernel_data_pages(kd: &Path, vmlinux: &Path, descs: u64, b2: u64) -> Vec<(u64, u64)> {
    let k = common::kernel::open(kd, vmlinux);
    let page = k.page_size();
    let mut vas = Vec::new();
    if let Ok(u) = k.symbol_address("init_uts_ns") {
        vas.push(u.0);
    }
    if let Ok(prb) = k.symbol_address("prb")
        && let Ok(ring) = k.read_u64(prb)
    {
        vas.push(ring);
    }
    let mut out = Vec::new();
    for va in vas {
        let phys = k
            .space()
            .translate(VirtAddr(va))
            .expect("translates")
            .phys
            .0;
        let pfn = phys / page;
        let mut bitmap = vec![0u8; usize::try_from(pfn / 8 + 1).unwrap()];
        File::open(kd)
            .unwrap()
            .read_exact_at(&mut bitmap, b2)
            .unwrap();
        let byte = (pfn / 8) as usize;
        assert!(
            bitmap[byte] & (1 << (pfn % 8)) != 0,
            "pfn {pfn:#x} is in the dump"
        );
        let before: u64 = bitmap[..byte]
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum::<u64>()
            + u64::from((bitmap[byte] & ((1u8 << (pfn % 8)) - 1)).count_ones());
        let d = descs + 24 * before;
        out.push((le(kd, d, 8), le(kd, d + 8, 4)));
    }
    assert_eq!(out.len(), 2, "init_uts_ns and the printk ring found");
    out
}

/// File offsets in the ELF dump `path` of kernel data: (name, offset, length to flip).
fn kernel_data_offsets(path: &Path, vmlinux: &Path) -> Vec<(&'static str, u64, usize)> {
    let k = common::kernel::open(path, vmlinux);
    let mem = elf::open(ByteSource::open(path).unwrap()).unwrap().mem;
    let file_of = |va: u64| {
        let phys = k.space().translate(VirtAddr(va)).ok()?.phys;
        mem.file_offset(phys)
    };
    let mut out = Vec::new();
    // init_task.tasks.next: the head of the task list.
    if let (Ok(t), Ok(off)) = (
        k.symbol_address("init_task"),
        k.offset_of("struct task_struct", "tasks"),
    ) && let Some(f) = file_of(t.0 + off)
    {
        out.push(("task list head (init_task.tasks.next)", f, 8));
    }
    // The second task's tasks.next too: the walk breaks mid-list.
    if let Ok(t) = k.symbol_address("init_task")
        && let Ok(off) = k.offset_of("struct task_struct", "tasks")
        && let Ok(next) = k.read_u64(VirtAddr(t.0 + off))
        && let Some(f) = file_of(next)
    {
        out.push(("task list, second entry", f, 8));
    }
    // The printk ring: the descriptor ring behind `prb` (its count_bits and descs pointer).
    if let Ok(prb) = k.symbol_address("prb")
        && let Ok(ring) = k.read_u64(prb)
        && let Some(f) = file_of(ring)
    {
        out.push(("printk ring (*prb)", f, 32));
    }
    // The module list head.
    if let Ok(m) = k.symbol_address("modules")
        && let Some(f) = file_of(m.0)
    {
        out.push(("module list head (modules.next)", f, 8));
    }
    out
}

#[test]
fn damaged_copies_of_real_dumps_are_salvaged_or_refused() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let vmlinux = dir.join("vmlinux");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let case = |name: String, vmcore: PathBuf, allowed| Case {
        name,
        vmcore,
        vmlinux: vmlinux.clone(),
        extra: Vec::new(),
        allowed,
    };

    // Truncations: copies of a prefix, made lazily (vmcore.elf is 285 MiB).
    let dumps = [
        "vmcore.elf",
        "mdf.zlib-d31",
        "mdf.flat-zlib-d31",
        "mdf.elf-d31",
    ];
    let mut cuts: Vec<(String, PathBuf, u64)> = Vec::new();
    for name in dumps {
        let src = dir.join(name);
        if !src.exists() {
            fixtures::skip(format_args!("{SET} lacks {name}"));
            continue;
        }
        let len = src.metadata().unwrap().len();
        let past_headers = match name {
            "vmcore.elf" | "mdf.elf-d31" => elf_first_load(&src) + 100,
            "mdf.zlib-d31" => kdump_layout(&src, 0).1 + 100,
            _ => 4096 + 16 + 200,
        };
        cuts.push((
            format!("{name} just past its headers"),
            src.clone(),
            past_headers,
        ));
        for pct in [1u64, 30, 70, 97] {
            cuts.push((
                format!("{name} cut at {pct} %"),
                src.clone(),
                len * pct / 100,
            ));
        }
        cuts.push((format!("{name} short by 100 bytes"), src.clone(), len - 100));
    }

    // Flips in the kdump file's structures.
    let kd = dir.join("mdf.zlib-d31");
    let (bs, b1, b2, descs) = kdump_layout(&kd, 0);
    let ones = |n: usize| vec![0xffu8; n];
    let kdump_flips: Vec<(&str, Patches)> = vec![
        ("kdump header_version", vec![(8, ones(4))]),
        ("kdump block_size", vec![(428, vec![0, 0, 0, 0x40])]),
        ("kdump bitmap_blocks huge", vec![(436, ones(4))]),
        ("kdump sub_hdr_size huge", vec![(432, ones(4))]),
        ("kdump max_mapnr_64 huge", vec![(bs + 96, ones(8))]),
        ("kdump note size huge", vec![(bs + 56, ones(8))]),
        (
            "kdump split flag and start_pfn",
            vec![(bs + 12, vec![1]), (bs + 80, ones(8))],
        ),
        ("kdump RAM bitmap zeroed", vec![(b1, vec![0; 4096])]),
        ("kdump dumped bitmap all set", vec![(b2, ones(4096))]),
        (
            "kdump descriptor offsets",
            vec![
                (descs + 24 * 100, ones(8)),
                (descs + 24 * 1000 + 8, ones(4)),
            ],
        ),
        (
            "kdump descriptor flags",
            vec![(descs + 24 * 500 + 12, ones(4))],
        ),
        (
            "kdump descriptor table zeroed",
            vec![(descs, vec![0; 64 * 1024])],
        ),
        (
            "kdump compressed pages",
            kernel_data_pages(&kd, &dir.join("vmlinux"), descs, b2)
                .into_iter()
                .map(|(off, size)| (off + size / 2, ones(16)))
                .collect(),
        ),
    ];
    // (name, source dump, patches, allowed); each copy is made when its case runs.
    let mut flips: Vec<(String, PathBuf, Patches, Allowed)> = kdump_flips
        .into_iter()
        .map(|(name, p)| {
            let allowed = if TOLERATED_KDUMP_FLIPS.contains(&name) {
                Allowed::MayBeClean
            } else {
                Allowed::Flagged
            };
            (name.to_string(), kd.clone(), p, allowed)
        })
        .collect();

    // Flips in an ELF dump: its headers, and kernel data found through the kernel view.
    let ed = dir.join("mdf.elf-d31");
    let (phoff, first_load) = (le(&ed, 32, 8), elf_first_load(&ed));
    let elf_flips: Vec<(String, Patches, Allowed)> = vec![
        (
            "ELF e_phnum = PN_XNUM".into(),
            vec![(56, ones(2))],
            Allowed::Flagged,
        ),
        (
            "ELF e_phoff huge".into(),
            vec![(32, ones(8))],
            Allowed::Flagged,
        ),
        (
            "ELF first PT_LOAD p_filesz huge".into(),
            vec![(phoff + 56 + 32, ones(8))],
            Allowed::Flagged,
        ),
        // Zeroed note headers read as no notes: a reader cannot tell them from a dump without
        // notes, so the run may end clean.
        (
            "ELF notes zeroed".into(),
            vec![(elf_notes(&ed), vec![0; 64])],
            Allowed::MayBeClean,
        ),
        (
            "ELF first page of RAM".into(),
            vec![(first_load, ones(4096))],
            Allowed::MayBeClean,
        ),
    ]
    .into_iter()
    .chain(
        kernel_data_offsets(&ed, &vmlinux)
            .into_iter()
            .map(|(what, at, n)| {
                (
                    format!("ELF {what}"),
                    vec![(at, vec![0x41; n])],
                    Allowed::MayBeClean,
                )
            }),
    )
    .collect();
    assert!(
        elf_flips.len() >= 9,
        "the task list, printk ring and module list were not all found: {:?}",
        elf_flips.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    flips.extend(elf_flips.into_iter().map(|(n, p, a)| (n, ed.clone(), p, a)));

    // Another build's vmlinux (with and without --force-vmlinux), and files that are not dumps.
    let other = fixtures::SETS
        .iter()
        .filter(|s| **s != SET && s.contains("6.12"))
        .map(|s| fixtures::root().join(s).join("vmlinux"))
        .find(|p| p.exists());
    let mut tail: Vec<Case> = Vec::new();
    if let Some(other) = other {
        for force in [false, true] {
            tail.push(Case {
                name: format!(
                    "vmlinux of another build{}",
                    if force { ", forced" } else { "" }
                ),
                vmcore: kd.clone(),
                vmlinux: other.clone(),
                extra: if force {
                    vec!["--force-vmlinux"]
                } else {
                    vec![]
                },
                allowed: if force {
                    Allowed::MayBeClean
                } else {
                    Allowed::Refused
                },
            });
        }
    } else {
        fixtures::skip("no x86_64-6.12 set for another build's vmlinux");
    }
    let text = w.join("notes.txt");
    std::fs::write(&text, "this is a text file\n").unwrap();
    let empty = w.join("empty");
    File::create(&empty).unwrap();
    let gz = w.join("vmcore.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"a compressed vmcore would go here").unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    for (name, path) in [
        ("the vmlinux given as the dump", vmlinux.clone()),
        ("a text file", text),
        ("an empty file", empty),
        ("a gzip file", gz),
        ("truth.txt", dir.join("truth.txt")),
    ] {
        tail.push(case(name.into(), path, Allowed::Refused));
    }

    // Run everything.
    let mut counts = [0usize; 6]; // cases, salvaged, refused, clean, panics, hangs
    let mut failures: Vec<String> = Vec::new();
    let mut report = |name: &str, allowed: Allowed, o: Outcome| {
        counts[0] += 1;
        let bad = match &o {
            Outcome::Salvaged { flagged, .. } => {
                counts[1] += 1;
                !flagged || allowed == Allowed::Refused
            }
            Outcome::Refused { line, .. } => {
                counts[2] += 1;
                line.contains("error lines")
            }
            Outcome::Clean => {
                counts[3] += 1;
                allowed != Allowed::MayBeClean
            }
            Outcome::Panic(_) => {
                counts[4] += 1;
                true
            }
            Outcome::Hang => {
                counts[5] += 1;
                true
            }
        };
        let what = o.describe();
        eprintln!("{} {name}: {what}", if bad { "FAIL" } else { "ok  " });
        if bad {
            failures.push(format!("{name}: {what}"));
        }
    };
    for (name, src, len) in cuts {
        let copy = prefix(&src, len, &w.join("cut"));
        // The reader reports the cut, from the headers alone.
        if let Ok(d) = vmcore_report::dump::open(std::slice::from_ref(&copy)) {
            let t = d.info.health.truncated;
            let t = t.unwrap_or_else(|| panic!("{name}: opens without a truncation"));
            assert_eq!(t.actual_size, len, "{name}");
            assert!(t.expected_size.is_none_or(|e| e > len), "{name}: {t:?}");
            assert!(t.pages_lost > 0, "{name}: {t:?}");
            eprintln!("     {name}: {t:?}");
        }
        let c = case(name, copy, Allowed::Flagged);
        let o = match run(&c, w) {
            // an archive of a cut file is the damaged-dump case: exit 8 and the manifest's
            // dump.health says so (docs/user-guide.md, exit codes)
            Outcome::Salvaged { code, .. } => Outcome::Salvaged {
                code,
                flagged: code == 8 && manifest_says_truncated(&manifest_of(&w.join("out"))),
            },
            other => other,
        };
        report(&c.name, c.allowed, o);
        let _ = std::fs::remove_file(w.join("cut"));
    }
    for (name, src, patches, allowed) in flips {
        let c = case(name, patched(&src, &patches, &w.join("flip")), allowed);
        let o = run(&c, w);
        report(&c.name, c.allowed, o);
        let _ = std::fs::remove_file(w.join("flip"));
    }
    for c in &tail {
        let o = run(c, w);
        report(&c.name, c.allowed, o);
    }
    let [n, salvaged, refused, clean, panics, hangs] = counts;
    eprintln!(
        "damaged_real: {n} cases, {salvaged} salvaged (flagged), {refused} refused, {clean} clean, \
         {panics} panics, {hangs} hangs"
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
