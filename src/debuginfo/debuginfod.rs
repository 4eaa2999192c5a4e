//! Fetching the vmlinux from debuginfod servers, by the dump's build-id, into the cache the
//! elfutils client (`libdebuginfod`, `debuginfod-find`, gdb, drgn) shares.
//!
//! The protocol (elfutils `doc/debuginfod.8`): `GET <server>/buildid/<hex>/debuginfo` answers
//! 200 with the ELF file holding the debug info of the object with that GNU build-id (lowercase
//! hex), or 404 when the server does not know it. Servers come from `--debuginfod URL` (in the
//! order given) and then `DEBUGINFOD_URLS` (space-separated, as `libdebuginfod` reads it); each
//! is asked in turn until one delivers.
//!
//! The client's environment, with `libdebuginfod`'s meaning (elfutils
//! `debuginfod/debuginfod-client.c`, `doc/debuginfod-client-config.7`):
//!
//! - cache: `$DEBUGINFOD_CACHE_PATH`; else `$HOME/.debuginfod_client_cache` when it exists (the
//!   legacy place); else `$XDG_CACHE_HOME/debuginfod_client`; else
//!   `$HOME/.cache/debuginfod_client`. A file lives at `<cache>/<build-id>/debuginfo`; a
//!   non-empty one there is used without asking any server (an empty one is `libdebuginfod`'s
//!   negative-cache mark and is ignored here). Downloads go to a temporary file in the same
//!   directory and are renamed into place only once complete and verified, so neither client
//!   ever sees a partial file.
//! - `DEBUGINFOD_TIMEOUT` (seconds, default 90): the time to connect, the time to the response
//!   headers, the longest silence between two reads; and the download must make 100 KiB of
//!   progress in every window of that many seconds (libdebuginfod's low-speed rule).
//! - `DEBUGINFOD_MAXTIME` (seconds): the whole transfer from one server; none by default.
//! - `DEBUGINFOD_MAXSIZE` (bytes): sent to the server as `X-DEBUGINFOD-MAXSIZE`, and the body is
//!   cut off past it.
//!
//! A downloaded file is trusted only when it is an ELF file whose own `.note.gnu.build-id` is the
//! build-id asked for: a server (or a cache) that returns something else is reported and the file
//! discarded. The caller then proves the match against the dump as for any other vmlinux.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::debuginfo::elf::Vmlinux;

/// `libdebuginfod`'s default `DEBUGINFOD_TIMEOUT`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
/// The progress a transfer must make in every `timeout` window.
const MIN_PROGRESS: u64 = 100 << 10;

/// Where and how to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebuginfodOptions {
    /// Server base URLs, in the order asked.
    pub urls: Vec<String>,
    pub cache_dir: PathBuf,
    pub timeout: Duration,
    pub max_time: Option<Duration>,
    pub max_size: Option<u64>,
}

impl DebuginfodOptions {
    /// The options from the command line's URLs and the environment (`env` reads a variable);
    /// `None` when no server is named.
    pub fn from_env(cli_urls: &[String], env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let mut urls: Vec<String> = Vec::new();
        let from_env = env("DEBUGINFOD_URLS").unwrap_or_default();
        for u in cli_urls
            .iter()
            .map(String::as_str)
            .chain(from_env.split_whitespace())
        {
            let u = u.trim().trim_end_matches('/');
            if !u.is_empty() && !urls.iter().any(|x| x == u) {
                urls.push(u.to_string());
            }
        }
        if urls.is_empty() {
            return None;
        }
        let number = |name: &str| {
            env(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&s| s > 0)
        };
        Some(DebuginfodOptions {
            urls,
            cache_dir: cache_dir(env),
            timeout: number("DEBUGINFOD_TIMEOUT").map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            max_time: number("DEBUGINFOD_MAXTIME").map(Duration::from_secs),
            max_size: number("DEBUGINFOD_MAXSIZE"),
        })
    }
}

/// The client cache directory, chosen as `libdebuginfod` chooses it (module docs).
pub fn cache_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = nonempty("DEBUGINFOD_CACHE_PATH") {
        return PathBuf::from(p);
    }
    let home = PathBuf::from(nonempty("HOME").unwrap_or_else(|| "/".into()));
    let legacy = home.join(".debuginfod_client_cache");
    if legacy.exists() {
        return legacy;
    }
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache"))
        .join("debuginfod_client")
}

/// Where the debug file of `build_id` lives in the cache. `None` for a build-id that is not a
/// plain hex string (it comes from the dump and must not name another path).
pub fn cache_path(cache_dir: &Path, build_id: &str) -> Option<PathBuf> {
    let ok = (2..=128).contains(&build_id.len()) && build_id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| {
        cache_dir
            .join(build_id.to_ascii_lowercase())
            .join("debuginfo")
    })
}

/// A debug file obtained from debuginfod.
pub struct Fetched {
    pub path: PathBuf,
    pub vmlinux: Vmlinux,
    /// The server it came from; `None` when the cache had it.
    pub server: Option<String>,
}

/// The cached file for `build_id`, else the first server's that delivers a file with that
/// build-id. On failure, one line per place tried, saying what went wrong.
pub fn fetch(opts: &DebuginfodOptions, build_id: &str) -> Result<Fetched, Vec<String>> {
    let build_id = build_id.to_ascii_lowercase();
    let Some(target) = cache_path(&opts.cache_dir, &build_id) else {
        return Err(vec![format!(
            "debuginfod: the dump's build-id {build_id:?} is not a hex string"
        )]);
    };
    let mut why = Vec::new();
    if std::fs::metadata(&target).is_ok_and(|m| m.len() > 0) {
        match checked(&target, &build_id) {
            Ok(vmlinux) => {
                tracing::info!("debuginfod: {} (cached)", target.display());
                return Ok(Fetched {
                    path: target,
                    vmlinux,
                    server: None,
                });
            }
            Err(e) => {
                tracing::warn!("debuginfod cache: {}: {e}", target.display());
                why.push(format!("debuginfod cache: {}: {e}", target.display()));
            }
        }
    }
    for server in &opts.urls {
        let url = format!("{server}/buildid/{build_id}/debuginfo");
        let started = Instant::now();
        // a vmlinux is hundreds of MB: say why the run waits
        crate::ui!(" Fetching the vmlinux (build-id {build_id}) from {server} ...");
        match download(opts, &url, &target, &build_id) {
            Ok(vmlinux) => {
                tracing::info!(
                    "debuginfod: fetched {url} into {} in {:.1?}",
                    target.display(),
                    started.elapsed()
                );
                return Ok(Fetched {
                    path: target,
                    vmlinux,
                    server: Some(server.clone()),
                });
            }
            Err(e) => {
                tracing::warn!("debuginfod: {e}");
                why.push(format!("debuginfod: {e}"));
            }
        }
    }
    Err(why)
}

/// Opens `path` and checks that its build-id is `build_id`.
fn checked(path: &Path, build_id: &str) -> Result<Vmlinux, String> {
    let vm = Vmlinux::open(path).map_err(|e| format!("not a usable ELF file: {e}"))?;
    match vm.build_id() {
        Some(b) if b.eq_ignore_ascii_case(build_id) => Ok(vm),
        Some(b) => Err(format!("its build-id is {b}, not {build_id}")),
        None => Err(format!("it has no build-id (expected {build_id})")),
    }
}

/// One server's answer, written to a temporary file beside `target` and renamed into place once
/// verified.
fn download(
    opts: &DebuginfodOptions,
    url: &str,
    target: &Path,
    build_id: &str,
) -> Result<Vmlinux, String> {
    let t = opts.timeout;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(t))
        .timeout_recv_response(Some(t))
        .timeout_per_read(Some(t))
        .timeout_global(opts.max_time)
        .http_status_as_error(false)
        .user_agent(concat!("vmcore-report/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(m) = opts.max_size {
        req = req.header("X-DEBUGINFOD-MAXSIZE", m.to_string());
    }
    let resp = req.call().map_err(|e| describe(url, t, &e))?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(format!(
                "{url}: the server has no file for this build-id (404)"
            ));
        }
        s => return Err(format!("{url}: HTTP {s}")),
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix("debuginfo.")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let mut body = resp.into_body();
    let mut reader = body
        .with_config()
        .limit(opts.max_size.unwrap_or(u64::MAX))
        .reader();
    let (mut total, mut window_start, mut window_bytes) = (0u64, Instant::now(), 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(format!(
                    "{url}: the transfer failed after {total} bytes: {}",
                    io_reason(t, &e)
                ));
            }
        };
        tmp.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
        total += n as u64;
        window_bytes += n as u64;
        if window_start.elapsed() >= t {
            if window_bytes < MIN_PROGRESS {
                return Err(format!(
                    "{url}: too slow: {window_bytes} bytes in the last {} s (DEBUGINFOD_TIMEOUT \
                     asks for 100 KiB per window)",
                    t.as_secs()
                ));
            }
            (window_start, window_bytes) = (Instant::now(), 0);
        }
    }
    tmp.flush()
        .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
    checked(tmp.path(), build_id).map_err(|e| format!("{url} returned a wrong file: {e}"))?;
    tmp.persist(target)
        .map_err(|e| format!("cannot rename into {}: {e}", target.display()))?;
    checked(target, build_id).map_err(|e| format!("{}: {e}", target.display()))
}

fn describe(url: &str, timeout: Duration, e: &ureq::Error) -> String {
    let what = match e {
        ureq::Error::Timeout(kind) => format!(
            "timed out: no answer within {} s ({kind}; DEBUGINFOD_TIMEOUT)",
            timeout.as_secs()
        ),
        ureq::Error::Io(io) => io_reason(timeout, io),
        ureq::Error::HostNotFound => "unreachable: the host name does not resolve".to_string(),
        ureq::Error::ConnectionFailed => "unreachable: cannot connect".to_string(),
        other => other.to_string(),
    };
    format!("{url}: {what}")
}

fn io_reason(timeout: Duration, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "unreachable: connection refused".to_string(),
        TimedOut | WouldBlock => format!(
            "timed out: nothing for {} s (DEBUGINFOD_TIMEOUT)",
            timeout.as_secs()
        ),
        _ => match e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
            Some(ureq::Error::Timeout(kind)) => format!(
                "timed out ({kind}) after {} s (DEBUGINFOD_TIMEOUT)",
                timeout.as_secs()
            ),
            _ => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn urls_come_from_the_command_line_then_the_environment() {
        let env = env_of(&[
            ("DEBUGINFOD_URLS", " https://a.example/  https://b.example "),
            ("DEBUGINFOD_CACHE_PATH", "/c"),
            ("DEBUGINFOD_TIMEOUT", "7"),
            ("DEBUGINFOD_MAXTIME", "0"),
        ]);
        let cli = ["http://x:1".to_string(), "https://b.example".to_string()];
        let o = DebuginfodOptions::from_env(&cli, &env).unwrap();
        assert_eq!(
            o.urls,
            ["http://x:1", "https://b.example", "https://a.example"]
        );
        assert_eq!(o.cache_dir, PathBuf::from("/c"));
        assert_eq!(o.timeout, Duration::from_secs(7));
        assert_eq!(o.max_time, None);
        let none = env_of(&[("DEBUGINFOD_URLS", " ")]);
        assert!(DebuginfodOptions::from_env(&[], &none).is_none());
    }

    #[test]
    fn the_cache_is_where_libdebuginfod_puts_it() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_str().unwrap();
        assert_eq!(
            cache_dir(&env_of(&[("HOME", h), ("XDG_CACHE_HOME", "/x")])),
            PathBuf::from("/x/debuginfod_client")
        );
        assert_eq!(
            cache_dir(&env_of(&[("HOME", h)])),
            home.path().join(".cache/debuginfod_client")
        );
        std::fs::create_dir(home.path().join(".debuginfod_client_cache")).unwrap();
        assert_eq!(
            cache_dir(&env_of(&[("HOME", h), ("XDG_CACHE_HOME", "/x")])),
            home.path().join(".debuginfod_client_cache")
        );
        assert_eq!(
            cache_dir(&env_of(&[("HOME", h), ("DEBUGINFOD_CACHE_PATH", "/d")])),
            PathBuf::from("/d")
        );
    }

    #[test]
    fn a_build_id_from_the_dump_cannot_name_another_path() {
        assert_eq!(
            cache_path(Path::new("/c"), "ABcd01"),
            Some(PathBuf::from("/c/abcd01/debuginfo"))
        );
        assert_eq!(cache_path(Path::new("/c"), "../etc"), None);
        assert_eq!(cache_path(Path::new("/c"), ""), None);
    }
}
