//! Dump-only mode (no vmlinux) on the real fixture sets, every dump format: the archive equals the
//! one made with the set's vmlinux, file by file, except what docs/dump-only.md lists as needing
//! the vmlinux (source lines and inlined frames, ELF symbol sizes); and the kallsyms scan, on a
//! copy whose VMCOREINFO lacks the kallsyms lines, finds the tables VMCOREINFO names.
//!
//! A kernel built without `CONFIG_KALLSYMS_ALL` (Debian's arm64 kernel) has no data symbols in
//! kallsyms: there, what VMCOREINFO and the code symbols give (the log, the utsname, the modules'
//! names) must be equal, and the manifest must say the rest could not be typed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

/// Runs a report into `out`; returns the exit code and the build tree.
fn report(dump: &Path, vmlinux: Option<&Path>, out: &Path) -> (i32, PathBuf) {
    std::fs::create_dir_all(out).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--vmcore").arg(dump);
    match vmlinux {
        Some(v) => cmd.arg("--vmlinux").arg(v),
        None => cmd.arg("--dump-only"),
    };
    let st = cmd
        .args(["--build", "-q", "--tmp-dir"])
        .arg(out)
        .status()
        .unwrap();
    let tree = walk(out)
        .into_iter()
        .find(|p| p.ends_with("sos_reports/manifest.json"))
        .unwrap_or_else(|| panic!("{}: no archive written", dump.display()));
    (
        st.code().unwrap_or(-1),
        tree.parent().unwrap().parent().unwrap().to_path_buf(),
    )
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `sym+0x16/0x20` -> `sym+0x16`: the size after the slash is the ELF symbol's with a vmlinux,
/// the distance to the next symbol (the kernel's own `%pB` rule) without.
fn drop_sizes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/'
            && s[..i]
                .rfind("+0x")
                .is_some_and(|p| s[p + 3..i].bytes().all(|c| c.is_ascii_hexdigit()) && p + 3 < i)
            && s[i + 1..].starts_with("0x")
        {
            i += 3;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// A JSON value without what only the vmlinux gives: a frame's `source`, `inlined` and `size`;
/// and without run durations.
fn normalize_json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("pc") && m.contains_key("symbol") {
                for k in ["source", "inlined", "size"] {
                    m.remove(k);
                }
            }
            m.retain(|k, _| !k.contains("duration") && !k.contains("elapsed"));
            m.values_mut().for_each(normalize_json);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_json),
        Value::String(s) => *s = drop_sizes(s),
        _ => {}
    }
}

/// A text file without source-line and inlined-frame lines (bt.txt) and durations.
fn normalize_text(s: &str) -> String {
    s.lines()
        .filter(|l| {
            let t = l.trim_start();
            let source_line = l.starts_with("    ")
                && t.rsplit_once(": ").is_some_and(|(f, n)| {
                    !f.contains(' ') && n.bytes().all(|c| c.is_ascii_digit())
                });
            !(t.starts_with("(inlined) ") || source_line || t.starts_with("duration:"))
        })
        .map(drop_sizes)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The archive's files, normalized, by path (logs, the manifest and the HTML page aside).
fn files(tree: &Path, aliases: &Aliases) -> BTreeMap<String, String> {
    files_of(tree, None, aliases)
}

/// Code symbols sharing an address, each name to the alphabetically first of its address, from
/// the vmlinux's ELF symbol table (read with `object`, not our reader). Which alias names a
/// frame depends on the table: with a vmlinux the ELF rule (a sized function wins), without one
/// the kernel's own kallsyms order (the first alias, as `%pB` prints).
type Aliases = std::collections::HashMap<String, String>;

fn aliases(vmlinux: &Path) -> Aliases {
    use object::{Object, ObjectSymbol, SymbolKind};
    let data = std::fs::read(vmlinux).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let mut by_addr: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for sym in elf.symbols() {
        if matches!(sym.kind(), SymbolKind::Text | SymbolKind::Unknown)
            && sym.section_index().is_some()
            && let Ok(name) = sym.name()
            && !name.is_empty()
        {
            by_addr
                .entry(sym.address())
                .or_default()
                .push(name.to_string());
        }
    }
    let mut out = Aliases::new();
    for mut names in by_addr.into_values().filter(|n| n.len() > 1) {
        names.sort();
        names.dedup();
        for n in &names[1..] {
            out.insert(n.clone(), names[0].clone());
        }
    }
    out
}

/// Every identifier that is an alias replaced by its canonical name.
fn unalias(s: &str, aliases: &Aliases) -> String {
    if aliases.is_empty() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(aliases.get(word.as_str()).unwrap_or(word));
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// [`files`], with a dump path written as `DUMP` (two copies of one dump compared).
fn files_of(tree: &Path, dump: Option<&Path>, aliases: &Aliases) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in walk(tree) {
        let rel = p.strip_prefix(tree).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("sos_logs/") || rel.ends_with("manifest.json") || rel.ends_with(".html")
        {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(d) = dump {
            text = text.replace(&*d.to_string_lossy(), "DUMP");
        }
        let norm = if rel.ends_with(".json") {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            normalize_json(&mut v);
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            normalize_text(&text)
        };
        out.insert(rel, unalias(&norm, aliases));
    }
    out
}

fn manifest(tree: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(tree.join("sos_reports/manifest.json")).unwrap()).unwrap()
}

/// The first line where two texts differ.
fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: {x:?} vs {y:?}", i + 1);
        }
    }
    format!("{} vs {} lines", a.lines().count(), b.lines().count())
}

#[test]
fn dump_only_reports_equal_the_vmlinux_reports() {
    let tmp = std::env::temp_dir().join(format!("vmcore-dump-only-{}", std::process::id()));
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        // whether the kernel has BTF, from the vmlinux's sections (not from our reader)
        let has_btf = {
            use object::{Object, ObjectSection};
            let data = std::fs::read(dir.join("vmlinux")).unwrap();
            let elf = object::File::parse(&*data).unwrap();
            elf.section_by_name(".BTF").is_some_and(|s| s.size() > 0)
        };
        let aliases = aliases(&dir.join("vmlinux"));
        for dump in common::fixtures::dumps(&dir) {
            let name = format!("{set}/{}", dump.file_name().unwrap().to_string_lossy());
            let work = tmp.join(name.replace('/', "_"));
            let (code_v, with) = report(&dump, Some(&dir.join("vmlinux")), &work.join("v"));
            let (code_o, alone) = report(&dump, None, &work.join("o"));
            let m = manifest(&alone);
            let di = &m["debuginfo"];
            assert_eq!(di["symbols"], "kallsyms", "{name}: {di}");
            assert!(di["vmlinux"].is_null() && m["vmlinux"].is_null(), "{name}");
            let (a, b) = (files(&with, &aliases), files(&alone, &aliases));
            if !has_btf {
                // a kernel built without BTF (Debian 12's s390x): no types, the log and the
                // utsname from VMCOREINFO
                assert_eq!(di["types"], "none", "{name}: {di}");
                for path in [
                    "plugins/dmesg/dmesg.json",
                    "sos_commands/kernel/dmesg",
                    "plugins/kernel_info/uts.json",
                    "version.txt",
                ] {
                    assert!(
                        b.get(path) == Some(&a[path]),
                        "{name}: {path} differs or is missing"
                    );
                }
                assert_eq!(code_o, 5, "{name}: a report without types exits 5");
                eprintln!("{name}: no BTF in this kernel; the log and utsname equal");
                continue;
            }
            assert_eq!(di["types"], "dump-btf", "{name}: {di}");
            let typed = di["btf"]["globals"]["typed"].as_u64().unwrap();
            if typed > 20 {
                // kallsyms with data symbols: the whole archive
                assert_eq!(code_o, code_v, "{name}: exit codes");
                let only = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
                    x.keys()
                        .filter(|k| !y.contains_key(*k))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                assert!(
                    a.len() == b.len(),
                    "{name}: files only with the vmlinux {:?}, only without {:?}",
                    only(&a, &b),
                    only(&b, &a)
                );
                for (path, x) in &a {
                    let y = &b[path];
                    assert!(x == y, "{name}: {path} differs: {}", first_difference(x, y));
                }
                eprintln!("{name}: {} files equal, {typed} globals typed", a.len());
            } else {
                // no data symbols: the log, the utsname and the version equal; the rest is
                // recorded as not determined
                for path in [
                    "plugins/dmesg/dmesg.json",
                    "sos_commands/kernel/dmesg",
                    "plugins/kernel_info/uts.json",
                    "version.txt",
                ] {
                    let (x, y) = (&a[path], b.get(path));
                    assert!(y == Some(x), "{name}: {path} differs or is missing");
                }
                let plugins = &m["components"]["report"]["plugins"];
                let tasks = plugins["tasks"].to_string();
                assert!(
                    tasks.contains("init_task"),
                    "{name}: the tasks plugin does not say what it lacked: {tasks}"
                );
                assert_eq!(code_o, 5, "{name}: a partial report exits 5");
                eprintln!("{name}: no data symbols in kallsyms; the log and utsname equal");
            }
            std::fs::remove_dir_all(&work).ok();
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

/// A copy of the dump with `from` replaced by `to` (same length) in its first MiB, where the
/// VMCOREINFO note of the ELF dumps lies.
fn copy_with_note_edit(src: &Path, dst: &Path, from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    std::fs::copy(src, dst).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dst)
        .unwrap();
    use std::io::{Read, Seek, Write};
    let mut head = vec![0u8; 1 << 20];
    let n = f.read(&mut head).unwrap();
    head.truncate(n);
    let mut count = 0;
    let mut i = 0;
    while let Some(p) = head[i..].windows(from.len()).position(|w| w == from) {
        head[i + p..i + p + to.len()].copy_from_slice(to);
        i += p + from.len();
        count += 1;
    }
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&head).unwrap();
    count
}

#[test]
fn the_kallsyms_scan_finds_the_tables_vmcoreinfo_names() {
    let tmp = std::env::temp_dir().join(format!("vmcore-kallsyms-scan-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for set in ["x86_64-6.1-l5", "x86_64-6.12", "aarch64-6.1"] {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let copy = tmp.join(format!("{set}.elf"));
        let edits = copy_with_note_edit(
            &dir.join("vmcore.elf"),
            &copy,
            b"SYMBOL(kallsyms_",
            b"SYMBOL(xallsyms_",
        );
        assert!(edits >= 4, "{set}: {edits} kallsyms lines in VMCOREINFO");
        let (_, named) = report(&dir.join("vmcore.elf"), None, &tmp.join(format!("{set}-n")));
        let (_, scanned) = report(&copy, None, &tmp.join(format!("{set}-s")));
        let (mn, ms) = (manifest(&named), manifest(&scanned));
        assert_eq!(
            mn["debuginfo"]["kallsyms"]["found_by"], "vmcoreinfo",
            "{set}"
        );
        assert_eq!(ms["debuginfo"]["kallsyms"]["found_by"], "scan", "{set}");
        for key in ["names", "symbols", "encoding"] {
            assert_eq!(
                mn["debuginfo"]["kallsyms"][key], ms["debuginfo"]["kallsyms"][key],
                "{set}: {key}"
            );
        }
        let none = Aliases::new();
        let (a, b) = (
            files_of(&named, Some(&dir.join("vmcore.elf")), &none),
            files_of(&scanned, Some(&copy), &none),
        );
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{set}"
        );
        for (path, x) in &a {
            assert!(
                x == &b[path],
                "{set}: {path}: {}",
                first_difference(x, &b[path])
            );
        }
        eprintln!(
            "{set}: the scan found the tables at {}",
            ms["debuginfo"]["kallsyms"]["names"]
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn without_kallsyms_and_btf_the_log_and_utsname_are_still_written() {
    let Some(dir) = common::fixtures::set("x86_64-6.1-l5") else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!("vmcore-no-types-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // the kallsyms lines renamed, and every copy of the kallsyms token table's digit run and
    // of the BTF header zeroed in the file (found by their bytes, not by the reader)
    let copy = tmp.join("vmcore.elf");
    copy_with_note_edit(
        &dir.join("vmcore.elf"),
        &copy,
        b"SYMBOL(kallsyms_",
        b"SYMBOL(xallsyms_",
    );
    let data = std::fs::read(&copy).unwrap();
    let mut data = data;
    let mut zeroed = 0;
    for pat in [
        &b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"[..],
        &[0x9f, 0xeb, 1, 0, 24, 0, 0, 0][..],
    ] {
        let mut i = 0;
        while let Some(p) = data[i..].windows(pat.len()).position(|w| w == pat) {
            let at = i + p;
            data[at..at + pat.len()].fill(0);
            i = at + pat.len();
            zeroed += 1;
        }
    }
    assert!(zeroed >= 2, "{zeroed} places zeroed");
    std::fs::write(&copy, &data).unwrap();
    drop(data);
    let (code, tree) = report(&copy, None, &tmp.join("o"));
    let (_, intact) = report(&dir.join("vmcore.elf"), None, &tmp.join("i"));
    let m = manifest(&tree);
    assert_eq!(m["debuginfo"]["symbols"], "vmcoreinfo");
    assert_eq!(m["debuginfo"]["types"], "none");
    let notes = m["debuginfo"]["notes"].to_string();
    assert!(
        notes.contains("kallsyms") && notes.contains("BTF"),
        "{notes}"
    );
    assert_eq!(code, 5, "exit code without kernel types");
    let none = Aliases::new();
    let (a, b) = (files(&intact, &none), files(&tree, &none));
    for path in [
        "plugins/dmesg/dmesg.json",
        "sos_commands/kernel/dmesg",
        "version.txt",
    ] {
        assert!(b.get(path) == a.get(path), "{path} differs or is missing");
    }
    let uname = std::fs::read_to_string(tree.join("sos_commands/kernel/uname_-a")).unwrap();
    let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let release = uname.split_whitespace().nth(2).unwrap().to_string();
    assert!(truth.contains(&release), "uname -a {uname:?}");
    std::fs::remove_dir_all(&tmp).ok();
}
