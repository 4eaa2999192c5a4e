//! Benchmark: from process start to the first member read of `init_uts_ns.name.release`.
//!
//! `cargo run --release --example first_read -- VMCORE VMLINUX [--dwarf-only]`
//!
//! It does what the CLI does before the first plugin reads anything: open the dump, build the
//! address space, map the vmlinux, prove it matches the dump, read the symbol table, open the
//! type source (BTF with a lazy DWARF fallback, or DWARF alone with `--dwarf-only`), then read the
//! string. Compare with `drgn -c VMCORE -s VMLINUX -e "print(prog['init_uts_ns'].name.release)"`
//! under `/usr/bin/time -v` (see docs/debuginfo.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vmcore_report::debuginfo::dwarf::DwarfTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::locate::{DumpIdentity, verify};
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::debuginfo::{CombinedTypes, TypeSource};
use vmcore_report::kernel::Kernel;

/// Peak and current resident set from /proc (Linux), for the phase report.
fn rss() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    format!("rss {} KB, peak {} KB", get("VmRSS:"), get("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let (Some(core), Some(vmlinux)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: first_read VMCORE VMLINUX [--dwarf-only]");
        std::process::exit(2);
    };
    let dwarf_only = args.iter().any(|a| a == "--dwarf-only");
    let dump = vmcore_report::dump::open(&[PathBuf::from(core)])?;
    let t_dump = t0.elapsed();
    let verbose = std::env::var_os("FIRST_READ_PHASES").is_some();
    let phase = |what: &str| {
        if verbose {
            eprintln!(
                "{:>8.1} ms {what}: {}",
                t0.elapsed().as_secs_f64() * 1e3,
                rss()
            );
        }
    };
    phase("dump opened");
    let vm = Arc::new(Vmlinux::open(vmlinux.as_ref())?);
    let id = DumpIdentity::from_vmcoreinfo(dump.info.vmcoreinfo.as_ref(), dump.info.arch);
    let proof = verify(&vm, &id, false)?;
    phase("vmlinux mapped and verified");
    let mut cfg = vmcore_report::arch::config_from_dump(&dump);
    let syms = SymbolTable::from_vmlinux(&vm, cfg.kaslr_offset);
    phase("symbols read");
    if cfg.pgd_va.is_none() {
        cfg.pgd_va = ["init_top_pgt", "swapper_pg_dir"]
            .iter()
            .find_map(|s| syms.address(s))
            .map(|a| a.0);
    }
    let space = vmcore_report::arch::address_space(&dump, &cfg)?;
    let t_space = t0.elapsed();
    phase("address space");
    let types: Arc<dyn TypeSource> = if dwarf_only {
        Arc::new(DwarfTypes::new(vm.clone())?)
    } else {
        Arc::new(CombinedTypes::new(vm.clone())?)
    };
    phase("type source");
    let kernel = Kernel::new(space, Arc::new(syms), types, dump.info.clone());
    let release = kernel
        .variable("init_uts_ns")?
        .member("name.release")?
        .cstring(65)?;
    let total = t0.elapsed();
    phase("first read");
    println!("{}", String::from_utf8_lossy(&release));
    eprintln!(
        "first_read: {:.1} ms total (dump {:.1} ms, address space {:.1} ms, types+read {:.1} ms); match: {proof:?}",
        total.as_secs_f64() * 1e3,
        t_dump.as_secs_f64() * 1e3,
        (t_space - t_dump).as_secs_f64() * 1e3,
        (total - t_space).as_secs_f64() * 1e3
    );
    Ok(())
}
