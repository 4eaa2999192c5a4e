//! Fetching the vmlinux from a real debuginfod server (elfutils' `debuginfod`, Debian package
//! `debuginfod`) on 127.0.0.1, serving a directory that holds a fixture set's vmlinux: the fetch
//! into the client cache (`DEBUGINFOD_CACHE_PATH`, `<build-id>/debuginfo`, which elfutils' own
//! `debuginfod-find` then finds), the cache hit of a second run with no server, a server without
//! the dump's build-id (404), a closed port, a server that never answers (`DEBUGINFOD_TIMEOUT`),
//! and a server that returns a file with another build-id (a small HTTP server in this test).
//! Skips, or fails under `VMCORE_REQUIRE_FIXTURES=1`, without `debuginfod` or the fixtures.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vmcore-report");

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over plain HTTP/1.0; the whole answer, or `None` if the server is not up.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The debuginfod server, killed (by its pid) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `debuginfod` over `dir` on `port` and waits until it has indexed the one file there.
fn start_debuginfod(bin: &Path, dir: &Path, db: &Path, port: u16) -> Server {
    let child = Command::new(bin)
        .args(["-F", "-L", "-t", "0", "-g", "0", "-c", "1", "-p"])
        .arg(port.to_string())
        .arg("-d")
        .arg(db)
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let t = Instant::now();
    loop {
        let metrics = http_get(port, "/metrics").unwrap_or_default();
        if metrics.contains("found_debuginfo_total{source=\"files\"} 1") {
            eprintln!("debuginfod indexed the vmlinux in {:.1?}", t.elapsed());
            return server;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "debuginfod did not index {} within 300 s",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Serves `body` with status 200 to every request on a port of its own; returns the port.
fn wrong_file_server(body: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// The binary on `dump` with no vmlinux reachable but through debuginfod at `url`.
fn run(dump: &Path, url: &str, cache: &Path, out: &Path, timeout: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--vmcore")
        .arg(dump)
        .args(["--debuginfod", url, "--tmp-dir"])
        .arg(out)
        .args(["--build", "--batch", "-v"])
        .env("DEBUGINFOD_CACHE_PATH", cache)
        .env_remove("DEBUGINFOD_URLS");
    if let Some(t) = timeout {
        c.env("DEBUGINFOD_TIMEOUT", t);
    }
    c.output().unwrap()
}

fn manifest(out: &Path) -> serde_json::Value {
    fn find(d: &Path) -> Option<PathBuf> {
        for e in std::fs::read_dir(d).ok()?.flatten() {
            let p = e.path();
            let m = p.join("sos_reports/manifest.json");
            if m.is_file() {
                return Some(m);
            }
            if let Some(m) = p.is_dir().then(|| find(&p)).flatten() {
                return Some(m);
            }
        }
        None
    }
    let m = find(out).expect("an archive with a manifest");
    serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap()
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        let mut m = 0;
        while m < n {
            let k = fb.read(&mut bb[m..n]).unwrap();
            if k == 0 {
                return false;
            }
            m += k;
        }
        if ba[..n] != bb[..n] {
            return false;
        }
        if n == 0 {
            return fb.read(&mut bb).unwrap() == 0;
        }
    }
}

#[test]
fn the_vmlinux_comes_from_a_real_debuginfod_server() {
    let Some(bin) = on_path("debuginfod") else {
        common::fixtures::skip("debuginfod is not installed (Debian package debuginfod)");
        return;
    };
    let (Some(set), Some(other)) = (
        common::fixtures::set("x86_64-6.1-l5"),
        common::fixtures::set("x86_64-6.12"),
    ) else {
        return;
    };
    let vmlinux = std::fs::canonicalize(set.join("vmlinux")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).unwrap();
    std::os::unix::fs::symlink(&vmlinux, served.join("vmlinux")).unwrap();
    let port = free_port();
    let server = start_debuginfod(&bin, &served, &tmp.path().join("db.sqlite"), port);
    let url = format!("http://127.0.0.1:{port}");
    let cache = tmp.path().join("cache");
    let out = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let (out_3, out_4, out_5, out_6) = (out("run3"), out("run4"), out("run5"), out("run6"));
    // what no server delivered is not a refusal: the report is made from the dump alone
    let dump_only = |r: &std::process::Output, dir: &Path| {
        assert_eq!(r.status.code(), Some(0), "{}", stderr(r));
        let m = manifest(dir);
        assert!(m["vmlinux"].is_null(), "{m}");
        assert_eq!(m["debuginfo"]["symbols"], "kallsyms", "{m}");
        assert!(
            m["debuginfo"]["notes"].to_string().contains("debuginfod"),
            "{}",
            m["debuginfo"]["notes"]
        );
    };

    // 1. fetched into the cache, verified, used
    let t = Instant::now();
    let o1 = out("run1");
    let r = run(&set.join("vmcore.elf"), &url, &cache, &o1, None);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    eprintln!("first run (download) in {:.1?}", t.elapsed());
    let m = manifest(&o1);
    let bid = m["vmlinux"]["build_id"].as_str().unwrap().to_string();
    let cached = cache.join(&bid).join("debuginfo");
    assert_eq!(m["vmlinux"]["found_by"], "debuginfod");
    assert_eq!(m["vmlinux"]["proof"], "build-id");
    assert_eq!(m["vmlinux"]["path"], cached.to_str().unwrap());
    assert!(
        same_bytes(&cached, &vmlinux),
        "the cached file is the served vmlinux"
    );
    assert!(stderr(&r).contains(&format!("fetched {url}/buildid/{bid}/debuginfo")));
    // elfutils' own client finds it in the cache without a server
    if let Some(find) = on_path("debuginfod-find") {
        let f = Command::new(find)
            .args(["debuginfo", &bid])
            .env("DEBUGINFOD_CACHE_PATH", &cache)
            .env(
                "DEBUGINFOD_URLS",
                format!("http://127.0.0.1:{}", free_port()),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&f.stdout).trim(),
            cached.to_str().unwrap(),
            "{}",
            String::from_utf8_lossy(&f.stderr)
        );
    }

    // 2. a second run uses the cache: the server is gone
    drop(server);
    let o2 = out("run2");
    let r = run(&set.join("vmcore.elf"), &url, &cache, &o2, None);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert!(stderr(&r).contains("(cached)"), "{}", stderr(&r));
    assert_eq!(manifest(&o2)["vmlinux"]["path"], cached.to_str().unwrap());

    // 3. a server without the dump's build-id: 404, said, and the run goes on from the dump
    let port2 = free_port();
    let server = start_debuginfod(&bin, &served, &tmp.path().join("db2.sqlite"), port2);
    let url2 = format!("http://127.0.0.1:{port2}");
    let r = run(&other.join("vmcore.elf"), &url2, &cache, &out_3, None);
    dump_only(&r, &out_3);
    assert!(
        stderr(&r).contains("the server has no file for this build-id (404)"),
        "{}",
        stderr(&r)
    );
    drop(server);

    // 4. nothing listens on the port
    let closed = format!("http://127.0.0.1:{}", free_port());
    let r = run(&other.join("vmcore.elf"), &closed, &cache, &out_4, None);
    dump_only(&r, &out_4);
    assert!(stderr(&r).contains("unreachable"), "{}", stderr(&r));

    // 5. a server that accepts and never answers: DEBUGINFOD_TIMEOUT ends the wait
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let t = Instant::now();
    let r = run(
        &other.join("vmcore.elf"),
        &silent_url,
        &cache,
        &out_5,
        Some("2"),
    );
    dump_only(&r, &out_5);
    assert!(stderr(&r).contains("timed out"), "{}", stderr(&r));
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    drop(silent);

    // 6. a server that returns another file: refused, nothing left in the cache
    let wrong = std::fs::read("/bin/true").unwrap();
    let wrong_url = format!("http://127.0.0.1:{}", wrong_file_server(wrong));
    let r = run(&other.join("vmcore.elf"), &wrong_url, &cache, &out_6, None);
    dump_only(&r, &out_6);
    assert!(
        stderr(&r).contains("returned a wrong file"),
        "{}",
        stderr(&r)
    );
    assert!(stderr(&r).contains("its build-id is"), "{}", stderr(&r));
    let other_bid = stderr(&r)
        .split("/buildid/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let left: Vec<_> = std::fs::read_dir(cache.join(&other_bid))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the cache: {left:?}");
}
