//! The kernel view from the dump alone: no vmlinux.
//!
//! - **Symbols**: the kernel's own kallsyms tables, decoded from memory
//!   ([`crate::debuginfo::kallsyms`]), found through VMCOREINFO's `SYMBOL(kallsyms_*)` lines
//!   (6.0+) or, without them, by scanning the kernel image ([`crate::debuginfo::kallsyms::scan`]).
//!   Without either, VMCOREINFO's own `SYMBOL()` lines are the whole table.
//! - **Types**: the kernel's BTF between `__start_BTF` and `__stop_BTF` in memory, with the
//!   well-known globals typed by [`crate::debuginfo::globals`]. Without BTF the view has no
//!   types: what VMCOREINFO describes (the log, the utsname) is still read, the plugins that
//!   need types are skipped with the reason.
//! - **Code**: x86_64 ORC tables are read from memory by the unwinder already; there is no CFI
//!   (`.debug_frame` lives only in the vmlinux file) and no source lines.

use std::sync::Arc;

use crate::addr::VirtAddr;
use crate::arch::AddressSpace;
use crate::debuginfo::TypeSource;
use crate::debuginfo::btf::BtfTypes;
use crate::debuginfo::globals::{DumpTypes, GlobalsReport, NoTypes};
use crate::debuginfo::kallsyms::{self, KallsymsTables};
use crate::debuginfo::symbols::{RuntimeSymbol, SymKind, SymbolTable};
use crate::dump::{Dump, VmcoreInfo};
use crate::kernel::Kernel;

use super::{DebuginfoRecord, OpenError};

/// How far past `_stext` the kernel image is searched for tables (a 6.12 distribution kernel's
/// text and read-only data span about 40 MiB).
const IMAGE_SCAN_LIMIT: u64 = 256 << 20;

/// The kallsyms table used, for the manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KallsymsRecord {
    /// `vmcoreinfo` (its `SYMBOL(kallsyms_*)` lines) or `scan` (found in the kernel image).
    pub found_by: String,
    pub symbols: usize,
    pub encoding: kallsyms::AddressEncoding,
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub names: u64,
}

/// The BTF used, for the manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BtfRecord {
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub address: u64,
    pub size: u64,
    pub types: usize,
    /// The well-known globals typed from it.
    pub globals: GlobalsReport,
}

/// Builds the view; `why` says why no vmlinux is used.
pub fn build(
    dump: Dump,
    space: AddressSpace,
    why: String,
) -> Result<(Kernel, DebuginfoRecord), OpenError> {
    let t0 = std::time::Instant::now();
    let mut notes = vec![format!("no vmlinux: {why}")];
    let kaslr = space.kaslr_offset();
    let read = |addr: u64, len: usize| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len];
        space
            .read(VirtAddr(addr), &mut buf)
            .map(|()| buf)
            .map_err(|e| e.to_string())
    };
    let vi = dump.info.vmcoreinfo.as_ref();

    let (kallsyms, ks_record) = match decode_kallsyms(vi, &read, &space) {
        Ok((ks, found_by, names)) => {
            let record = KallsymsRecord {
                found_by: found_by.into(),
                symbols: ks.symbols.len(),
                encoding: ks.encoding,
                names,
            };
            tracing::info!(
                "symbols: {} from the dump's kallsyms ({}, {:?})",
                record.symbols,
                record.found_by,
                record.encoding
            );
            (Some(ks), Some(record))
        }
        Err(e) => {
            tracing::warn!("{e}; only VMCOREINFO's SYMBOL() lines name symbols");
            notes.push(e);
            (None, None)
        }
    };
    tracing::debug!(elapsed = ?t0.elapsed(), "kallsyms decoded");
    let symbols = with_vmcoreinfo_symbols(kallsyms, vi, kaslr);
    tracing::debug!(elapsed = ?t0.elapsed(), "symbol table built");

    let (types, btf_record): (Arc<dyn TypeSource>, Option<BtfRecord>) =
        match btf_from_memory(&symbols, &read, space.endian() == crate::addr::Endian::Big) {
            Ok((btf, address, size)) => {
                tracing::debug!(elapsed = ?t0.elapsed(), "BTF read and parsed");
                let type_count = btf.type_count();
                let types = DumpTypes::new(btf, &symbols, &read);
                let globals = types.report().clone();
                tracing::info!(
                    "types: {type_count} from the dump's BTF ({size} bytes at {address:#x}); \
                     {} well-known globals typed, {} rejected",
                    globals.typed,
                    globals.rejected.len()
                );
                let record = BtfRecord {
                    address,
                    size,
                    types: type_count,
                    globals,
                };
                (Arc::new(types), Some(record))
            }
            Err(e) => {
                tracing::warn!("{e}; no kernel types: only what VMCOREINFO describes is read");
                notes.push(e);
                (Arc::new(NoTypes), None)
            }
        };
    tracing::debug!(elapsed = ?t0.elapsed(), "dump-only debuginfo assembled");

    let record = DebuginfoRecord {
        symbols: if ks_record.is_some() {
            "kallsyms"
        } else {
            "vmcoreinfo"
        }
        .into(),
        types: if btf_record.is_some() {
            "dump-btf"
        } else {
            "none"
        }
        .into(),
        vmlinux: None,
        kallsyms: ks_record,
        btf: btf_record,
        notes,
    };
    Ok((
        Kernel::new(space, Arc::new(symbols), types, dump.info),
        record,
    ))
}

/// The kallsyms table, found through VMCOREINFO or by scanning; with how it was found and where
/// its names table is.
fn decode_kallsyms(
    vi: Option<&VmcoreInfo>,
    read: kallsyms::ReadFn<'_>,
    space: &AddressSpace,
) -> Result<(kallsyms::Kallsyms, &'static str, u64), String> {
    let vi = vi.ok_or("no VMCOREINFO: kallsyms cannot be placed")?;
    let stext = vi
        .symbol("_stext")
        .ok_or("VMCOREINFO has no SYMBOL(_stext) to prove a kallsyms table against")?;
    let endian = space.endian();
    match KallsymsTables::from_vmcoreinfo(vi) {
        Some(t) => {
            let ks = kallsyms::decode(&t, read, endian, stext).map_err(|e| e.to_string())?;
            Ok((ks, "vmcoreinfo", t.names))
        }
        None => {
            let (t, ks) =
                kallsyms::scan(vi, read, endian, IMAGE_SCAN_LIMIT).map_err(|e| e.to_string())?;
            Ok((ks, "scan", t.names))
        }
    }
}

/// The table, completed by VMCOREINFO's `SYMBOL()` lines for the names it lacks (all of them
/// without kallsyms; the variables among them when kallsyms has no data symbols,
/// `CONFIG_KALLSYMS_ALL=n`). Those lines name variables (`init_uts_ns`, `prb`, `mem_section`,
/// …), except `_stext`.
fn with_vmcoreinfo_symbols(
    kallsyms: Option<kallsyms::Kallsyms>,
    vi: Option<&VmcoreInfo>,
    kaslr: u64,
) -> SymbolTable {
    // one pass over the table for the few VMCOREINFO names
    let mut missing: std::collections::BTreeMap<&str, u64> = vi
        .map(|vi| vi.symbols.iter().map(|(n, &a)| (n.as_str(), a)).collect())
        .unwrap_or_default();
    for s in kallsyms.iter().flat_map(|k| &k.symbols) {
        missing.remove(s.name.as_str());
    }
    let extra = missing.into_iter().map(|(name, address)| RuntimeSymbol {
        name: name.to_string(),
        address,
        size: 0,
        kind: if name == "_stext" {
            SymKind::Text
        } else {
            SymKind::Data
        },
        global: true,
        absolute: false,
    });
    let list = kallsyms.map(|k| k.into_runtime_symbols());
    SymbolTable::from_runtime(list.into_iter().flatten().chain(extra), kaslr)
}

/// The kernel's BTF from memory, with its address and size.
fn btf_from_memory(
    symbols: &SymbolTable,
    read: kallsyms::ReadFn<'_>,
    big_endian: bool,
) -> Result<(BtfTypes, u64, u64), String> {
    if let (Some(start), Some(stop)) = (
        symbols.address("__start_BTF"),
        symbols.address("__stop_BTF"),
    ) {
        let btf = BtfTypes::from_memory(read, start.0, stop.0)
            .map_err(|e| format!("the kernel's BTF in the dump: {e}"))?;
        return Ok((btf, start.0, stop.0 - start.0));
    }
    // A table without data symbols (CONFIG_KALLSYMS_ALL=n): search the kernel image.
    let start = symbols
        .address("_stext")
        .ok_or("the dump's symbols place neither the kernel's BTF nor _stext")?;
    BtfTypes::scan(read, start.0, IMAGE_SCAN_LIMIT, big_endian).map_err(|e| {
        format!("the dump's symbols do not place the kernel's BTF (__start_BTF), and {e}")
    })
}
