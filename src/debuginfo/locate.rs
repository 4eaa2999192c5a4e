//! Finding the vmlinux that belongs to a dump, and proving that it does.
//!
//! Order of search: an explicit `--vmlinux` path wins; else, for each `--debuginfo-dir` (taken as
//! a directory of vmlinux files or as a sysroot holding `usr/lib/debug/…`), then for the host's
//! standard places, the paths distributions install debug kernels to, named by the release and
//! the build-id VMCOREINFO gives (`OSRELEASE`, `BUILD-ID`):
//!
//! - `/usr/lib/debug/boot/vmlinux-<release>` (Debian, Ubuntu `-dbgsym`)
//! - `/usr/lib/debug/lib/modules/<release>/vmlinux` (Fedora, RHEL `kernel-debuginfo`)
//! - `/boot/vmlinux-<release>`, `/lib/modules/<release>/build/vmlinux` (self-built kernels)
//! - `/usr/lib/debug/.build-id/<xx>/<rest>.debug` (any distribution, by build-id)
//!
//! A candidate is used only once it is proven to match: by build-id when the vmlinux has a
//! `.note.gnu.build-id` and VMCOREINFO a `BUILD-ID`; otherwise by release, and by comparing the
//! `linux_banner` string in the dump's memory with the one in the vmlinux's `.rodata` (the banner
//! holds the release, the build number and the build time). A mismatch names both versions;
//! `force` accepts the file anyway. When nothing is found, the error lists every path tried and
//! the package that provides the file on common distributions.
//!
//! When no local file matches and debuginfod servers are configured (`--debuginfod`,
//! `DEBUGINFOD_URLS`), the file is fetched by the dump's build-id into the client cache
//! ([`debuginfod`]) and proven like any other; what each server answered joins the "not found"
//! message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::debuginfo::DebugInfoError;
use crate::debuginfo::debuginfod::{self, DebuginfodOptions};
use crate::debuginfo::elf::Vmlinux;
use crate::dump::VmcoreInfo;

/// What the dump says about its kernel, for matching.
#[derive(Clone, Debug, Default)]
pub struct DumpIdentity {
    pub release: Option<String>,
    pub build_id: Option<String>,
    pub arch: Option<crate::addr::Arch>,
    /// `linux_banner` as read from the dump's memory, if the caller could read it.
    pub banner: Option<Vec<u8>>,
}

impl DumpIdentity {
    pub fn from_vmcoreinfo(vi: Option<&VmcoreInfo>, arch: Option<crate::addr::Arch>) -> Self {
        DumpIdentity {
            release: vi.and_then(|v| v.osrelease.clone()),
            build_id: vi.and_then(|v| v.build_id.clone()),
            arch,
            banner: None,
        }
    }
}

/// How a vmlinux was shown to match the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchProof {
    /// The GNU build-ids are equal.
    BuildId(String),
    /// Same release and the same `linux_banner` in the dump and the vmlinux.
    ReleaseAndBanner(String),
    /// Same release; the dump's banner could not be read to confirm it.
    ReleaseOnly(String),
    /// Not proven (or disproven) and accepted because of `force`: the reason is kept.
    Forced(String),
}

/// A vmlinux found and verified.
pub struct Located {
    pub path: PathBuf,
    pub vmlinux: Arc<Vmlinux>,
    pub proof: MatchProof,
    /// Every path looked at, in order.
    pub tried: Vec<PathBuf>,
    /// Fetched through debuginfod: the server it came from, or `cache` for the client cache.
    pub via_debuginfod: Option<String>,
}

/// Options of the search.
#[derive(Clone, Debug, Default)]
pub struct LocateOptions {
    pub explicit: Option<PathBuf>,
    pub debuginfo_dirs: Vec<PathBuf>,
    /// Prefix for the standard places (tests point it at a scratch directory); `/` if `None`.
    pub sysroot: Option<PathBuf>,
    /// Skip the standard places (only explicit and `debuginfo_dirs`).
    pub no_standard_places: bool,
    pub force: bool,
    /// Ask these debuginfod servers (by the dump's build-id) when no local file matches.
    pub debuginfod: Option<DebuginfodOptions>,
}

/// The release a vmlinux's banner names: `Linux version <release> (…`.
pub fn banner_release(banner: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(banner).ok()?;
    let rest = s.strip_prefix("Linux version ")?;
    rest.split_whitespace().next().map(str::to_string)
}

fn release_paths(root: &Path, release: &str) -> Vec<PathBuf> {
    vec![
        root.join("usr/lib/debug/boot")
            .join(format!("vmlinux-{release}")),
        root.join("usr/lib/debug/lib/modules")
            .join(release)
            .join("vmlinux"),
        root.join("boot").join(format!("vmlinux-{release}")),
        root.join("lib/modules").join(release).join("build/vmlinux"),
    ]
}

fn build_id_path(root: &Path, build_id: &str) -> Option<PathBuf> {
    if build_id.len() < 3 || !build_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        root.join(".build-id")
            .join(&build_id[..2])
            .join(format!("{}.debug", &build_id[2..])),
    )
}

/// The candidate paths, in search order, for a dump's release and build-id.
pub fn candidates(opts: &LocateOptions, id: &DumpIdentity) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let release = id.release.as_deref().filter(|r| is_safe_component(r));
    let build_id = id.build_id.as_deref();
    for dir in &opts.debuginfo_dirs {
        if let Some(r) = release {
            out.push(dir.join(format!("vmlinux-{r}")));
            out.push(dir.join(r).join("vmlinux"));
            out.extend(release_paths(dir, r));
        }
        if let Some(b) = build_id {
            out.extend(build_id_path(dir, b));
            out.extend(build_id_path(&dir.join("usr/lib/debug"), b));
        }
        out.push(dir.join("vmlinux"));
    }
    if !opts.no_standard_places {
        let root = opts.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
        if let Some(r) = release {
            out.extend(release_paths(&root, r));
        }
        if let Some(b) = build_id {
            out.extend(build_id_path(&root.join("usr/lib/debug"), b));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// A release string from an untrusted dump must not walk out of the directories searched.
fn is_safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// Checks that a vmlinux belongs to the dump.
pub fn verify(vm: &Vmlinux, id: &DumpIdentity, force: bool) -> Result<MatchProof, DebugInfoError> {
    let vm_build_id = vm.build_id();
    // Finding `linux_banner` walks the symbol table: only when the build-ids do not decide.
    let banner_cell = std::cell::OnceCell::new();
    let vm_banner = || banner_cell.get_or_init(|| vm.linux_banner()).as_deref();
    let vm_release = || vm_banner().and_then(banner_release);
    let describe = |release: Option<&str>, bid: Option<&str>| {
        format!(
            "{} (build-id {})",
            release.unwrap_or("unknown release"),
            bid.unwrap_or("none")
        )
    };
    let mismatch = |why: &str| {
        let msg = format!(
            "{} is {} but the dump is {}: {why}",
            vm.path().display(),
            describe(vm_release().as_deref(), vm_build_id.as_deref()),
            describe(id.release.as_deref(), id.build_id.as_deref()),
        );
        if force {
            Ok(MatchProof::Forced(msg))
        } else {
            Err(DebugInfoError::Mismatch(format!(
                "{msg} (use --force-vmlinux to analyse with it anyway)"
            )))
        }
    };
    if let (Some(a), Some(d)) = (vm.arch(), id.arch)
        && a != d
    {
        return mismatch(&format!("the vmlinux is built for {a}, the dump is {d}"));
    }
    if let (Some(v), Some(d)) = (&vm_build_id, &id.build_id) {
        // VMCOREINFO's BUILD-ID may be the full 20-byte id or a prefix of it.
        return if v.eq_ignore_ascii_case(d) || (d.len() >= 16 && v.starts_with(d.as_str())) {
            Ok(MatchProof::BuildId(v.clone()))
        } else {
            mismatch("the build-ids differ")
        };
    }
    let vm_release = vm_release();
    match (&vm_release, &id.release) {
        (Some(v), Some(d)) if v == d => {}
        (Some(_), Some(_)) => return mismatch("the releases differ"),
        _ => {
            return if force {
                Ok(MatchProof::Forced(format!(
                    "cannot prove that {} matches the dump: no build-id and no release on one side",
                    vm.path().display()
                )))
            } else {
                Err(DebugInfoError::Mismatch(format!(
                    "cannot prove that {} is {}: no common build-id or release (use --force-vmlinux)",
                    vm.path().display(),
                    describe(id.release.as_deref(), id.build_id.as_deref())
                )))
            };
        }
    }
    let release = vm_release.clone().unwrap_or_default();
    match (&id.banner, vm_banner()) {
        (Some(d), Some(v)) if trim_banner(d) == trim_banner(v) => {
            Ok(MatchProof::ReleaseAndBanner(release))
        }
        (Some(_), Some(_)) => mismatch("same release but linux_banner differs (another build)"),
        _ => Ok(MatchProof::ReleaseOnly(release)),
    }
}

fn trim_banner(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let b = &b[..end];
    let mut e = b.len();
    while e > 0 && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    &b[..e]
}

/// The packages that provide the debug vmlinux, for the "not found" message.
pub fn install_hint(release: &str) -> String {
    format!(
        "install the kernel's debug symbols: Debian: linux-image-{release}-dbg; \
         Fedora/RHEL: kernel-debuginfo-{release}; Ubuntu: linux-image-unsigned-{release}-dbgsym \
         (or pass --vmlinux / --debuginfo-dir)"
    )
}

/// Finds and verifies the vmlinux for a dump.
pub fn locate(opts: &LocateOptions, id: &DumpIdentity) -> Result<Located, DebugInfoError> {
    if let Some(p) = &opts.explicit {
        let vm = Arc::new(Vmlinux::open(p)?);
        let proof = verify(&vm, id, opts.force)?;
        return Ok(Located {
            path: p.clone(),
            vmlinux: vm,
            proof,
            tried: vec![p.clone()],
            via_debuginfod: None,
        });
    }
    let cands = candidates(opts, id);
    let mut tried = Vec::new();
    let mut first_error: Option<DebugInfoError> = None;
    for p in cands {
        tried.push(p.clone());
        if !p.is_file() {
            continue;
        }
        let vm = match Vmlinux::open(&p) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        // Without force, keep looking past a mismatching file; with force, the first file
        // found is used only if no later one matches.
        match verify(&vm, id, false) {
            Ok(proof) => {
                return Ok(Located {
                    path: p,
                    vmlinux: vm,
                    proof,
                    tried,
                    via_debuginfod: None,
                });
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // debuginfod after the local places, as elfutils' tools do; only by build-id
    let mut remote_notes = Vec::new();
    if let (Some(d), Some(bid)) = (&opts.debuginfod, id.build_id.as_deref()) {
        match debuginfod::fetch(d, bid) {
            Ok(f) => {
                tried.push(f.path.clone());
                let vm = Arc::new(f.vmlinux);
                match verify(&vm, id, false) {
                    Ok(proof) => {
                        return Ok(Located {
                            path: f.path,
                            vmlinux: vm,
                            proof,
                            tried,
                            via_debuginfod: Some(f.server.unwrap_or_else(|| "cache".into())),
                        });
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(notes) => remote_notes = notes,
        }
    }
    if opts.force {
        for p in &tried {
            if p.is_file()
                && let Ok(vm) = Vmlinux::open(p)
            {
                let vm = Arc::new(vm);
                let proof = verify(&vm, id, true)?;
                return Ok(Located {
                    path: p.clone(),
                    vmlinux: vm,
                    proof,
                    tried,
                    via_debuginfod: None,
                });
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    let remote = if opts.debuginfod.is_some() && id.build_id.is_none() {
        "; debuginfod not asked: the dump names no build-id".to_string()
    } else {
        remote_notes.iter().map(|n| format!("; {n}")).collect()
    };
    Err(DebugInfoError::NotFound(format!(
        "tried {}{remote}; {}",
        if list.is_empty() {
            "no path (the dump names no release or build-id)".to_string()
        } else {
            list.join(", ")
        },
        install_hint(id.release.as_deref().unwrap_or("<release>"))
    )))
}
