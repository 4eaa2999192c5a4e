//! The persisted type index (src/debuginfo/index_cache.rs): answers are the same with and without
//! it; a damaged, truncated, foreign or stale file is ignored and rebuilt; runs at once share the
//! directory safely. Synthetic vmlinux files from tests/common/dwarf.rs (the expected answers are
//! those of the plain source, no index involved), and the binary on the real fixture sets (the
//! report's files compared byte for byte, the timestamps and durations aside).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::dwarf::{KernelVersion, sample_kernel};
use vmcore_report::debuginfo::combined::CombinedTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::index_cache::{self, IndexKey, IndexedTypes};
use vmcore_report::debuginfo::{TypeSource, find_member, strip_typedefs};

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");
const BUILD_ID: &[u8] = &[0x5a; 20];

/// What the tests ask: types by name (one absent), members through typedefs, variables (one
/// absent), enumerators (one absent). Every answer, rendered.
fn questions(t: &dyn TypeSource) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "struct task_struct",
        "struct uts_namespace",
        "struct rq",
        "cpumask_t",
        "enum pid_type",
        "struct not_in_this_kernel",
    ] {
        let id = t.find_type(name).unwrap();
        out.push(format!("{name}: {:?}", id.map(|i| t.get(i).unwrap())));
        if let Some(id) = id {
            for m in ["pid", "comm", "name", "bits", "nr_running"] {
                out.push(format!("{name}.{m}: {:?}", find_member(t, id, m).unwrap()));
            }
            out.push(format!("{:?}", strip_typedefs(t, id).unwrap()));
        }
    }
    for v in [
        "init_uts_ns",
        "init_task",
        "jiffies",
        "runqueues",
        "nr_cpu_ids",
        "no_such_global",
    ] {
        let id = t.variable_type(v).unwrap();
        out.push(format!("{v}: {:?}", id.map(|i| t.get(i).unwrap())));
    }
    for e in ["PIDTYPE_SID", "PIDTYPE_MAX", "NO_SUCH_CONSTANT"] {
        out.push(format!("{e}: {:?}", t.enumerator(e).unwrap()));
    }
    out
}

struct Synth {
    _dir: tempfile::TempDir,
    vmlinux: PathBuf,
    cache: PathBuf,
}

fn synth() -> Synth {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = sample_kernel(KernelVersion::New);
    b.build_id(BUILD_ID);
    let vmlinux = b.write_to(dir.path(), "vmlinux");
    let cache = dir.path().join("cache");
    Synth {
        _dir: dir,
        vmlinux,
        cache,
    }
}

fn open_vm(p: &Path) -> Arc<Vmlinux> {
    Arc::new(Vmlinux::open(p).unwrap())
}

fn indexed(s: &Synth) -> IndexedTypes {
    let vm = open_vm(&s.vmlinux);
    let key = IndexKey::of(&vm).expect("the synthetic vmlinux has a build-id");
    IndexedTypes::open(
        CombinedTypes::new(vm).unwrap(),
        Some((s.cache.clone(), key)),
    )
}

fn index_file(s: &Synth) -> PathBuf {
    s.cache.join(format!("{}.idx", hex(BUILD_ID)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The answers without any index.
fn plain(s: &Synth) -> Vec<String> {
    questions(&CombinedTypes::new(open_vm(&s.vmlinux)).unwrap())
}

/// A run: asks the questions, checks the answers against `want`, writes the index (drop).
fn run(s: &Synth, want: &[String]) -> index_cache::IndexStats {
    let t = indexed(s);
    assert_eq!(questions(&t), want);
    let stats = t.stats();
    drop(t);
    stats
}

/// The index file is valid for this vmlinux and holds answers.
fn assert_valid(s: &Synth) {
    let key = IndexKey::of(&open_vm(&s.vmlinux)).unwrap();
    let e = index_cache::read(&s.cache, &key).expect("a valid index file");
    assert!(e.layouts.len() > 5 && e.types.contains_key("struct task_struct"));
    assert_eq!(e.types.get("struct not_in_this_kernel"), Some(&None));
}

#[test]
fn the_index_answers_like_the_source_and_is_reused() {
    let s = synth();
    let want = plain(&s);
    let first = run(&s, &want);
    assert!(!first.loaded && first.misses > 0 && first.hits > 0);
    assert_valid(&s);
    let before = std::fs::read(index_file(&s)).unwrap();
    let second = run(&s, &want);
    assert!(second.loaded && second.entries > 0, "{second:?}");
    assert_eq!(second.misses, 0, "every answer from the index: {second:?}");
    // a run that added nothing does not rewrite the file
    assert_eq!(std::fs::read(index_file(&s)).unwrap(), before);
}

/// Damages the file, then checks the next run ignores it (answers as the source does, loads
/// nothing) and leaves a valid file behind.
fn ignored_and_rebuilt(what: &str, damage: impl Fn(&Synth, Vec<u8>) -> Vec<u8>) {
    let s = synth();
    let want = plain(&s);
    run(&s, &want);
    let good = std::fs::read(index_file(&s)).unwrap();
    std::fs::write(index_file(&s), damage(&s, good)).unwrap();
    let st = run(&s, &want);
    assert!(!st.loaded, "{what}: the file was used: {st:?}");
    assert!(st.misses > 0, "{what}");
    assert_valid(&s);
    let again = run(&s, &want);
    assert!(
        again.loaded && again.misses == 0,
        "{what}: not rebuilt: {again:?}"
    );
}

#[test]
fn a_damaged_index_is_ignored_and_rebuilt() {
    ignored_and_rebuilt("one payload byte flipped", |_, mut b| {
        let i = b.len() / 2;
        b[i] ^= 0x20;
        b
    });
    ignored_and_rebuilt("header length field changed", |_, mut b| {
        b[12] ^= 1;
        b
    });
    ignored_and_rebuilt("garbage", |_, b| vec![0x42; b.len()]);
    ignored_and_rebuilt("empty", |_, _| Vec::new());
}

#[test]
fn a_truncated_index_is_ignored_and_rebuilt() {
    for cut in [3, 20, 52, 100] {
        ignored_and_rebuilt(&format!("cut to {cut} bytes"), |_, b| b[..cut].to_vec());
    }
    ignored_and_rebuilt("last byte missing", |_, b| b[..b.len() - 1].to_vec());
}

#[test]
fn a_foreign_or_stale_index_is_ignored_and_rebuilt() {
    // a valid index of another vmlinux (other build-id, other size) under this one's name
    ignored_and_rebuilt("another vmlinux's", |_, _| {
        let other = IndexKey {
            build_id: "77".repeat(20),
            size: 12345,
            mtime_secs: 1,
            mtime_nanos: 0,
        };
        let mut e = index_cache::Entries::default();
        e.types.insert("struct task_struct".into(), Some(1));
        index_cache::encode(&other, &e)
    });
    // the same vmlinux path rewritten since (same build-id, new mtime): the old index is stale
    let s = synth();
    let want = plain(&s);
    run(&s, &want);
    let f = std::fs::File::options()
        .append(true)
        .open(&s.vmlinux)
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400))
        .unwrap();
    drop(f);
    let st = run(&s, &want);
    assert!(!st.loaded, "stale index used: {st:?}");
    assert_valid(&s);
}

#[test]
fn no_build_id_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = sample_kernel(KernelVersion::New);
    let p = b.write_to(dir.path(), "vmlinux");
    assert!(IndexKey::of(&open_vm(&p)).is_none());
    let cache = dir.path().join("cache");
    let (_, types) = vmcore_report::debuginfo::load_indexed(open_vm(&p), 0, Some(&cache)).unwrap();
    assert_eq!(
        questions(&*types),
        questions(&CombinedTypes::new(open_vm(&p)).unwrap())
    );
    drop(types);
    assert!(
        !cache.exists(),
        "an index was written for a vmlinux without build-id"
    );
}

#[test]
fn runs_at_once_share_the_index() {
    let s = synth();
    let want = plain(&s);
    // eight runs start together on an empty directory, then eight on the file they left
    for round in 0..2 {
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| run(&s, &want));
            }
        });
        assert_valid(&s);
        let leftovers: Vec<_> = std::fs::read_dir(&s.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy() != format!("{}.idx", hex(BUILD_ID)))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
    let st = run(&s, &want);
    assert!(st.loaded && st.misses == 0, "{st:?}");
}

// ---- the binary on the real fixtures ------------------------------------------------------------

/// Runs the binary with `--build` into a fresh directory; returns the exit code and the tree.
fn report(dir: &Path, dump: &str, out: &Path, extra: &[&str]) -> (i32, PathBuf) {
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new(BIN)
        .args(["--vmcore"])
        .arg(dir.join(dump))
        .arg("--vmlinux")
        .arg(dir.join("vmlinux"))
        .arg("--tmp-dir")
        .arg(out)
        .args(["--batch", "-q", "--build"])
        .args(extra)
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    let tree = find_tree(out).unwrap_or_else(|| {
        panic!(
            "no report tree in {} (exit {code}): {}",
            out.display(),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (code, tree)
}

fn find_tree(out: &Path) -> Option<PathBuf> {
    let build = std::fs::read_dir(out).ok()?.next()?.ok()?.path();
    Some(std::fs::read_dir(build).ok()?.next()?.ok()?.path())
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A file's content with what differs between two runs of the same report masked: the logs are
/// left out; in the manifest every time, duration, the command line and the build directory;
/// in the summaries (sos.txt, sos.html, which list each plugin's duration and the start time)
/// every digit.
fn comparable(root: &Path, rel: &Path) -> Option<Vec<u8>> {
    let name = rel.to_string_lossy();
    if name.starts_with("sos_logs/") {
        return None;
    }
    let bytes = std::fs::read(root.join(rel)).unwrap_or_else(|_| {
        std::fs::read_link(root.join(rel))
            .map(|l| l.to_string_lossy().into_owned().into_bytes())
            .unwrap()
    });
    if name == "sos_reports/manifest.json" {
        fn scrub(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.retain(|k, _| {
                        !(k.contains("time")
                            || k.contains("duration")
                            || k.ends_with("start")
                            || k.ends_with("end")
                            || k == "cmdline"
                            || k == "tmpdir")
                    });
                    m.values_mut().for_each(scrub);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
                _ => {}
            }
        }
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        scrub(&mut v);
        return Some(v.to_string().into_bytes());
    }
    if name == "sos_reports/sos.txt" || name == "sos_reports/sos.html" {
        return Some(
            bytes
                .iter()
                .map(|&b| if b.is_ascii_digit() { b'0' } else { b })
                .collect(),
        );
    }
    Some(bytes)
}

fn assert_same_report(a: &Path, b: &Path, what: &str) {
    let fa = files(a);
    assert_eq!(fa, files(b), "{what}: different file lists");
    assert!(fa.len() > 20, "{what}: only {} files", fa.len());
    for rel in &fa {
        assert!(
            comparable(a, rel) == comparable(b, rel),
            "{what}: {} differs",
            rel.display()
        );
    }
}

/// The sets the issue names, on the small filtered dump (the largest part of a report's time is
/// then the vmlinux, which is what the index is about).
const REAL: &[(&str, &str)] = &[
    ("x86_64-6.1-l5", "mdf.zlib-d31"),
    ("x86_64-6.12", "mdf.zlib-d23"),
];

#[test]
fn real_report_is_identical_with_and_without_the_index() {
    for (set, dump) in REAL {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let cache_arg = cache.to_str().unwrap();
        let (c0, plain) = report(&dir, dump, &tmp.path().join("plain"), &["--no-index-cache"]);
        assert!(!cache.exists());
        let (c1, first) = report(
            &dir,
            dump,
            &tmp.path().join("first"),
            &["--index-cache", cache_arg],
        );
        let idx: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(idx.len(), 1, "{set}: one index file");
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let written = inode(&idx[0]);
        let (c2, second) = report(
            &dir,
            dump,
            &tmp.path().join("second"),
            &["--index-cache", cache_arg],
        );
        assert_eq!((c0, c1, c2), (c0, c0, c0), "{set}: exit codes");
        assert_same_report(&plain, &first, &format!("{set}: building the index"));
        assert_same_report(&plain, &second, &format!("{set}: from the index"));
        // the second run answered everything from the file: it did not replace it (a run
        // that asks anything anew writes a new file, renamed over the old one)
        assert_eq!(
            inode(&idx[0]),
            written,
            "{set}: the second run rewrote the index"
        );
        let log = std::fs::read_to_string(second.join("sos_logs/sos.log")).unwrap();
        assert!(!log.contains("ignoring the type index"), "{set}: {log}");
    }
}

#[test]
fn real_runs_at_once_share_the_index_and_damage_is_survived() {
    let Some((set, dump)) = REAL
        .iter()
        .find(|(s, _)| common::fixtures::set(s).is_some())
    else {
        return;
    };
    let dir = common::fixtures::set(set).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().unwrap().to_string();
    let (c0, plain) = report(&dir, dump, &tmp.path().join("plain"), &["--no-index-cache"]);
    // two runs at once on an empty cache directory, then two on the file they left
    for round in 0..2 {
        let outs: Vec<(i32, PathBuf)> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let out = tmp.path().join(format!("r{round}-{i}"));
                    let (dir, cache_arg) = (&dir, &cache_arg);
                    sc.spawn(move || report(dir, dump, &out, &["--index-cache", cache_arg]))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (code, tree) in &outs {
            assert_eq!(*code, c0, "{set} round {round}");
            assert_same_report(&plain, tree, &format!("{set}: concurrent round {round}"));
        }
        let key = IndexKey::of(&Vmlinux::open(&dir.join("vmlinux")).unwrap()).unwrap();
        index_cache::read(&cache, &key).expect("a valid index after concurrent runs");
    }
    // damage the file: the next run ignores it, reports the same, and rewrites it
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&file).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&file, &b).unwrap();
    let out = tmp.path().join("after-damage");
    let (c, tree) = report(&dir, dump, &out, &["--index-cache", &cache_arg]);
    assert_eq!(c, c0);
    assert_same_report(&plain, &tree, &format!("{set}: after damage"));
    let log = std::fs::read_to_string(tree.join("sos_logs/sos.log")).unwrap();
    assert!(log.contains("ignoring the type index"), "{set}: {log}");
    let key = IndexKey::of(&Vmlinux::open(&dir.join("vmlinux")).unwrap()).unwrap();
    index_cache::read(&cache, &key).expect("rebuilt");
}
