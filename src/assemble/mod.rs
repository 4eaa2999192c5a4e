//! Open the dump and build the kernel view from whatever symbol and type sources exist.
//!
//! ```text
//! dump::open ─► arch::config_from_dump + arch::address_space (VMCOREINFO)
//!            ─► a vmlinux? (given, or found by build-id / release: debuginfo::locate)
//!                 yes ─► its symbol table + BTF, DWARF as the authority ─► Kernel
//!                 no  ─► dump-only: kallsyms decoded from memory (else VMCOREINFO's SYMBOL()
//!                        lines), the kernel's BTF read from memory + the well-known globals
//!                        (else no types) ─► Kernel
//! ```
//!
//! A vmlinux named with `--vmlinux` that does not match the dump stays an error: the user asked
//! for that file. A vmlinux that is not found, or found but not matching, is not: the run goes on
//! from the dump alone (`--dump-only` asks for that directly), and the manifest's `debuginfo`
//! record says where the symbols and types came from and what was not available.

mod dump_only;

use std::path::PathBuf;
use std::sync::Arc;

use crate::arch::{self, TranslateError};
use crate::debuginfo::locate::{self, DumpIdentity, LocateOptions, MatchProof};
use crate::debuginfo::{self, DebugInfoError};
use crate::dump::{self, Dump, DumpError};
use crate::kernel::Kernel;

pub use dump_only::{BtfRecord, KallsymsRecord};

/// What to open, and how to find the debuginfo.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub vmcores: Vec<PathBuf>,
    /// `--vmlinux`: this file, and an error if it does not match.
    pub vmlinux: Option<PathBuf>,
    pub debuginfo_dirs: Vec<PathBuf>,
    pub force_vmlinux: bool,
    /// The persisted type index's directory; `None`: no index.
    pub index_cache: Option<PathBuf>,
    /// debuginfod servers and client settings; `None`: none.
    pub debuginfod: Option<crate::debuginfo::debuginfod::DebuginfodOptions>,
    /// Do not look for a vmlinux at all.
    pub dump_only: bool,
}

/// Why the kernel view could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read the dump: {0}")]
    Dump(#[from] DumpError),
    #[error("cannot set up address translation for this dump: {0}")]
    Translate(#[from] TranslateError),
    #[error("{0}")]
    DebugInfo(#[from] DebugInfoError),
}

/// The vmlinux used, for the manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VmlinuxRecord {
    pub path: String,
    pub build_id: Option<String>,
    /// How it was found: `command-line`, `debuginfo-dir`, `build-id`, `standard-path`,
    /// `debuginfod`.
    pub found_by: String,
    /// How it was shown to match the dump: `build-id`, `release-and-banner`, `release-only`,
    /// `forced`.
    pub proof: String,
    /// Whether `--force-vmlinux` overrode a mismatch.
    pub forced: bool,
}

/// Where the kernel view's symbols and types came from, for the manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DebuginfoRecord {
    /// `vmlinux` (its ELF symbol table), `kallsyms` (the kernel's table, decoded from the
    /// dump's memory) or `vmcoreinfo` (only VMCOREINFO's `SYMBOL()` lines).
    pub symbols: String,
    /// `vmlinux-btf+dwarf`, `vmlinux-dwarf`, `dump-btf` (the kernel's BTF read from the dump's
    /// memory, with the well-known globals) or `none`.
    pub types: String,
    pub vmlinux: Option<VmlinuxRecord>,
    pub kallsyms: Option<KallsymsRecord>,
    pub btf: Option<BtfRecord>,
    /// Why no vmlinux was used, and what else was not available.
    pub notes: Vec<String>,
}

impl DebuginfoRecord {
    /// Whether the view has kernel types (plugins that need them can run).
    pub fn has_types(&self) -> bool {
        self.types != "none"
    }
}

/// Opens the dump and builds the kernel view.
pub fn open_kernel(opts: &OpenOptions) -> Result<(Kernel, DebuginfoRecord), OpenError> {
    tracing::info!("opening {:?}", opts.vmcores);
    let dump = dump::open(&opts.vmcores)?;
    if let Some(why) = dump.info.health.describe() {
        tracing::warn!("{why}; reading what is there");
    }
    tracing::info!(
        "dump: {} ({} bytes, arch {:?}, page size {})",
        dump.info.format.name(),
        dump.info.file_size,
        dump.info.arch,
        dump.info.page_size
    );
    build_kernel(opts, dump)
}

/// How the vmlinux was found, for the manifest.
fn found_by(opts: &OpenOptions, path: &std::path::Path) -> &'static str {
    if opts.vmlinux.is_some() {
        "command-line"
    } else if opts.debuginfo_dirs.iter().any(|d| path.starts_with(d)) {
        "debuginfo-dir"
    } else if path.components().any(|c| c.as_os_str() == ".build-id") {
        "build-id"
    } else {
        "standard-path"
    }
}

fn proof_name(p: &MatchProof) -> &'static str {
    match p {
        MatchProof::BuildId(_) => "build-id",
        MatchProof::ReleaseAndBanner(_) => "release-and-banner",
        MatchProof::ReleaseOnly(_) => "release-only",
        MatchProof::Forced(_) => "forced",
    }
}

/// The symbols a translator may need when VMCOREINFO lacks them, by architecture: the kernel's
/// top-level page table.
fn page_table_symbol(arch: Option<crate::addr::Arch>) -> &'static [&'static str] {
    match arch {
        Some(crate::addr::Arch::X86_64) => &["init_top_pgt", "swapper_pg_dir"],
        Some(_) => &["swapper_pg_dir"],
        None => &[],
    }
}

/// Builds the kernel view over an opened dump.
///
/// Order: the address space is built from the dump alone when VMCOREINFO allows (it usually
/// does); the vmlinux is located and verified by build-id, else by release (debuginfo's
/// `locate`). When only the release matched, the `linux_banner` in the dump's memory is compared
/// with the vmlinux's, which also tells two builds of one release apart. When the dump alone
/// could not set up translation, the page-table root symbol from the vmlinux completes it.
/// Without a usable vmlinux, the view is built from the dump alone ([`dump_only`]).
pub fn build_kernel(
    opts: &OpenOptions,
    dump: Dump,
) -> Result<(Kernel, DebuginfoRecord), OpenError> {
    let mut tcfg = arch::config_from_dump(&dump);
    let first_space = arch::address_space(&dump, &tcfg);
    let mut id = DumpIdentity::from_vmcoreinfo(dump.info.vmcoreinfo.as_ref(), dump.info.arch);
    if id.release.is_none() {
        id.release = dump
            .info
            .header_utsname
            .as_ref()
            .map(|u| u.release.clone())
            .filter(|r| !r.is_empty());
    }
    if opts.dump_only {
        let why = "--dump-only: no vmlinux looked for".to_string();
        return dump_only::build(dump, first_space?, why);
    }
    let lopts = LocateOptions {
        explicit: opts.vmlinux.clone(),
        debuginfo_dirs: opts.debuginfo_dirs.clone(),
        sysroot: None,
        no_standard_places: false,
        force: opts.force_vmlinux,
        debuginfod: opts.debuginfod.clone(),
    };
    let located = match locate::locate(&lopts, &id) {
        Ok(l) => l,
        // The file the user named is used or refused, never replaced.
        Err(e) if opts.vmlinux.is_some() => return Err(e.into()),
        Err(e) => {
            tracing::warn!("{e}; going on from the dump alone (kallsyms and BTF in its memory)");
            return dump_only::build(dump, first_space?, e.to_string());
        }
    };
    let found_by = match &located.via_debuginfod {
        Some(_) => "debuginfod",
        None => found_by(opts, &located.path),
    };
    let mut proof = located.proof.clone();
    tracing::info!(
        "vmlinux: {} ({}, found by {found_by})",
        located.path.display(),
        proof_name(&proof),
    );
    let (symbols, types) = debuginfo::load_indexed(
        Arc::clone(&located.vmlinux),
        tcfg.kaslr_offset,
        opts.index_cache.as_deref(),
    )?;

    let space = match first_space {
        Ok(s) => s,
        Err(first) => {
            let Some(va) = page_table_symbol(dump.info.arch)
                .iter()
                .find_map(|n| symbols.address(n))
            else {
                return Err(first.into());
            };
            tracing::info!(
                "VMCOREINFO lacks the page-table root; using the vmlinux's at {va} ({first})"
            );
            tcfg.pgd_va = Some(va.0);
            arch::address_space(&dump, &tcfg)?
        }
    };

    if matches!(proof, MatchProof::ReleaseOnly(_)) {
        if let Some(va) = symbols.address("linux_banner") {
            if let Ok(banner) = space.read_cstr(va, 512) {
                id.banner = Some(banner);
                proof = locate::verify(&located.vmlinux, &id, opts.force_vmlinux)?;
                tracing::info!("vmlinux banner check: {}", proof_name(&proof));
            }
        }
    }
    if let MatchProof::Forced(why) = &proof {
        tracing::warn!("using a vmlinux that does not match the dump (--force-vmlinux): {why}");
    }

    let vmlinux = VmlinuxRecord {
        path: located.path.display().to_string(),
        build_id: located.vmlinux.build_id(),
        found_by: found_by.to_string(),
        proof: proof_name(&proof).to_string(),
        forced: matches!(proof, MatchProof::Forced(_)),
    };
    let record = DebuginfoRecord {
        symbols: "vmlinux".into(),
        types: if located.vmlinux.section_address(".BTF").is_some() {
            "vmlinux-btf+dwarf"
        } else {
            "vmlinux-dwarf"
        }
        .into(),
        vmlinux: Some(vmlinux),
        kallsyms: None,
        btf: None,
        notes: Vec::new(),
    };
    Ok((Kernel::new(space, symbols, types, dump.info), record))
}
