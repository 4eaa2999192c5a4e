//! The debuginfo layer on the real fixtures (skipped, with one line, when absent).
//!
//! Expected layouts come from drgn (an independent DWARF reader): `fixtures/peer-drgn.py` writes
//! `<set>/drgn/layouts.txt` from each build's own vmlinux, so they follow the Debian kernel the
//! set was built from.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::fixtures;
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use vmcore_report::debuginfo::btf::BtfTypes;
use vmcore_report::debuginfo::dwarf::DwarfTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::locate::{self, DumpIdentity, LocateOptions, MatchProof};
use vmcore_report::debuginfo::{CombinedTypes, TypeId, TypeSource, find_member, strip_typedefs};

const SET: &str = "x86_64-6.1-l5";
/// One set per distinct vmlinux: Debian 12's x86_64 and arm64 6.1, Debian 13's 6.12, Debian
/// 11's x86_64 and arm64 5.10.
const LAYOUT_SETS: &[&str] = &[
    SET,
    "aarch64-6.1",
    "x86_64-6.12",
    "x86_64-5.10",
    "aarch64-5.10",
];

/// Offset (bytes) and size of a dotted member path, `None` when a member on it is absent.
fn member_layout(src: &dyn TypeSource, ty: TypeId, path: &str) -> Option<(u64, u64)> {
    let mut cur = ty;
    let mut off = 0;
    for part in path.split('.') {
        let m = find_member(src, cur, part).unwrap()?;
        off += m.bit_offset / 8;
        cur = m.ty;
    }
    let size = strip_typedefs(src, cur)
        .unwrap()
        .unwrap()
        .1
        .size
        .unwrap_or(0);
    Some((off, size))
}

/// Every line of drgn's `layouts.txt`: `TYPE|size|SIZE`, `TYPE|MEMBER|OFFSET|SIZE`,
/// `TYPE|MEMBER|absent`.
fn check_against_drgn(src: &dyn TypeSource, expected: &str, label: &str) {
    let mut checked = 0;
    for line in expected.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let ty = src
            .find_type(f[0])
            .unwrap()
            .unwrap_or_else(|| panic!("{label}: {} not found", f[0]));
        if f[1] == "size" {
            assert_eq!(
                src.get(ty).unwrap().size,
                Some(f[2].parse().unwrap()),
                "{label} {line}"
            );
        } else if f[2] == "absent" {
            assert_eq!(member_layout(src, ty, f[1]), None, "{label}: {line}");
        } else {
            let expect = (f[2].parse::<u64>().unwrap(), f[3].parse::<u64>().unwrap());
            assert_eq!(
                member_layout(src, ty, f[1]),
                Some(expect),
                "{label}: {line}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 50, "{label}: only {checked} expectations");
}

/// Each layout set with drgn's `layouts.txt` for its vmlinux.
fn layout_sets() -> Vec<(&'static str, std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for set in LAYOUT_SETS {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        if let Some(expected) = fixtures::drgn_oracle(&dir, "layouts.txt") {
            out.push((*set, dir, expected));
        }
    }
    out
}

fn vmlinux(dir: &Path) -> Arc<Vmlinux> {
    Arc::new(Vmlinux::open(&dir.join("vmlinux")).unwrap())
}

#[test]
fn dwarf_layouts_match_drgn() {
    for (set, dir, expected) in layout_sets() {
        let t = DwarfTypes::new(vmlinux(&dir)).unwrap();
        check_against_drgn(&t, &expected, &format!("{set} dwarf"));
    }
}

#[test]
fn btf_layouts_match_drgn() {
    for (set, dir, expected) in layout_sets() {
        let t = BtfTypes::from_vmlinux(vmlinux(&dir))
            .unwrap()
            .expect(".BTF");
        check_against_drgn(&t, &expected, &format!("{set} btf"));
        let c = CombinedTypes::new(vmlinux(&dir)).unwrap();
        check_against_drgn(&c, &expected, &format!("{set} combined"));
    }
}

/// Every member of the structs (and of their struct-typed members) agrees between BTF and
/// DWARF: name, bit offset, bitfield width, size.
#[test]
fn btf_agrees_with_dwarf() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let vm = vmlinux(&dir);
    let d = DwarfTypes::new(vm.clone()).unwrap();
    let b = BtfTypes::from_vmlinux(vm).unwrap().unwrap();
    let mut compared = 0;
    for name in [
        "struct task_struct",
        "struct rq",
        "struct cfs_rq",
        "struct new_utsname",
        "struct sched_entity",
        "struct mm_struct",
        "struct page",
        "struct printk_ringbuffer",
        "struct uts_namespace",
    ] {
        let di = d.find_type(name).unwrap().unwrap();
        let bi = b.find_type(name).unwrap().unwrap();
        let (dt, bt) = (d.get(di).unwrap(), b.get(bi).unwrap());
        assert_eq!(dt.size, bt.size, "{name}");
        assert_eq!(dt.members().len(), bt.members().len(), "{name}");
        for (dm, bm) in dt.members().iter().zip(bt.members()) {
            assert_eq!(dm.name, bm.name, "{name}");
            assert_eq!(dm.bit_offset, bm.bit_offset, "{name}.{:?}", dm.name);
            assert_eq!(dm.bit_size, bm.bit_size, "{name}.{:?}", dm.name);
            let ds = strip_typedefs(&d, dm.ty).unwrap().map(|t| t.1.size);
            let bs = strip_typedefs(&b, bm.ty).unwrap().map(|t| t.1.size);
            assert_eq!(ds, bs, "{name}.{:?} size", dm.name);
            compared += 1;
        }
    }
    assert!(compared > 300, "compared {compared}");
    // enumerators: both sources know them, with the same value
    for e in ["TASK_COMM_LEN", "PIDTYPE_PGID", "NR_CPUS"] {
        let (dv, bv) = (d.enumerator(e).unwrap(), b.enumerator(e).unwrap());
        assert_eq!(dv, bv, "{e}");
    }
    assert_eq!(b.enumerator("PIDTYPE_PGID").unwrap(), Some(2));
}

/// The Debian vmlinux is `ET_EXEC` with `.rela.debug_*` sections kept by `--emit-relocs`. Their
/// effect is already in the section bytes: for a sample of relocations the stored value equals
/// S + A. This is why the reader does not apply them (src/debuginfo/elf.rs).
#[test]
fn rela_debug_info_is_already_applied() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let vm = vmlinux(&dir);
    let file = vm.object();
    assert_eq!(file.kind(), object::ObjectKind::Executable);
    let info = file.section_by_name(".debug_info").unwrap().data().unwrap();
    let rela = file
        .section_by_name(".rela.debug_info")
        .expect("the Debian vmlinux carries .rela.debug_info")
        .data()
        .unwrap();
    let n = rela.len() / 24;
    assert!(n > 1_000_000, "{n} relocations");
    let mut checked = 0;
    for i in (0..n).step_by(9973) {
        let r = &rela[i * 24..i * 24 + 24];
        let off = u64::from_le_bytes(r[0..8].try_into().unwrap()) as usize;
        let info_w = u64::from_le_bytes(r[8..16].try_into().unwrap());
        let addend = i64::from_le_bytes(r[16..24].try_into().unwrap());
        let (sym, typ) = ((info_w >> 32) as usize, (info_w & 0xffff_ffff) as u32);
        let s = file
            .symbol_by_index(object::SymbolIndex(sym))
            .map(|s| s.address())
            .unwrap_or(0);
        let value = s.wrapping_add(addend as u64);
        match typ {
            1 => {
                // R_X86_64_64
                let got = u64::from_le_bytes(info[off..off + 8].try_into().unwrap());
                assert_eq!(got, value, "relocation {i} at {off:#x}");
            }
            10 | 11 => {
                // R_X86_64_32 / 32S
                let got = u32::from_le_bytes(info[off..off + 4].try_into().unwrap());
                assert_eq!(got, value as u32, "relocation {i} at {off:#x}");
            }
            0 => continue, // R_X86_64_NONE
            other => panic!("unexpected relocation type {other}"),
        }
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn kernel_globals_have_types() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let c = CombinedTypes::new(vmlinux(&dir)).unwrap();
    for (var, ty) in [
        ("init_uts_ns", "uts_namespace"),
        ("init_task", "task_struct"),
        ("runqueues", "rq"),
        ("__cpu_online_mask", "cpumask"),
    ] {
        let id = c
            .variable_type(var)
            .unwrap()
            .unwrap_or_else(|| panic!("{var}"));
        let t = strip_typedefs(&c, id).unwrap().unwrap().1;
        assert_eq!(t.name.as_deref(), Some(ty), "{var}");
    }
    let pco = c.variable_type("__per_cpu_offset").unwrap().unwrap();
    assert!(c.get(pco).unwrap().size.unwrap() >= 8 * 64);
}

fn dump_identity(dir: &Path) -> DumpIdentity {
    let dump = vmcore_report::dump::open(&[dir.join("vmcore.elf")]).unwrap();
    DumpIdentity::from_vmcoreinfo(dump.info.vmcoreinfo.as_ref(), dump.info.arch)
}

#[test]
fn the_right_vmlinux_matches_by_build_id_and_is_located() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let id = dump_identity(&dir);
    assert!(id.build_id.is_some() && id.release.is_some());
    let proof = locate::verify(&vmlinux(&dir), &id, false).unwrap();
    assert!(matches!(proof, MatchProof::BuildId(_)), "{proof:?}");
    // a --debuginfo-dir is searched by release (vmlinux-<release>) or for a plain `vmlinux`
    let real = std::fs::canonicalize(dir.join("vmlinux")).unwrap();
    let opts = LocateOptions {
        debuginfo_dirs: vec![real.parent().unwrap().to_path_buf()],
        no_standard_places: true,
        ..Default::default()
    };
    let found = locate::locate(&opts, &id).unwrap();
    assert_eq!(std::fs::canonicalize(&found.path).unwrap(), real);
    assert!(matches!(found.proof, MatchProof::BuildId(_)));
}

#[test]
fn another_architectures_vmlinux_is_a_mismatch() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let Some(arm) = fixtures::set("aarch64-6.1") else {
        return;
    };
    let id = dump_identity(&dir);
    let e = locate::verify(&vmlinux(&arm), &id, false).expect_err("mismatch");
    assert_eq!(e.code(), "vmlinux-mismatch");
    let msg = e.to_string();
    assert!(msg.contains(id.release.as_deref().unwrap()), "{msg}");
    assert!(msg.contains("arm64") || msg.contains("aarch64"), "{msg}");
    // --force accepts it, saying why
    let p = locate::verify(&vmlinux(&arm), &id, true).unwrap();
    assert!(matches!(p, MatchProof::Forced(_)));
}

/// Variables defined late in link order (statics and globals the early units do not declare)
/// are found through the symbol table's file grouping without scanning the units before them,
/// and the type found has the size the ELF symbol table (the linker's record) gives the object.
#[test]
fn late_variables_are_placed_by_the_symbol_table() {
    // aarch64: the symbols of patchable function entries sit before DW_AT_low_pc.
    for set in [SET, "aarch64-6.1", "x86_64-5.10", "aarch64-5.10"] {
        if let Some(dir) = fixtures::set(set) {
            late_variables_placed(&dir);
        }
    }
}

fn late_variables_placed(dir: &Path) {
    let v = vmlinux(dir);
    let dwarf = DwarfTypes::new(v.clone()).unwrap();
    for var in [
        "tainted_mask",
        "tk_core",
        "task_state_array",
        "__cpu_active_mask",
        "runqueues",
        "taint_flags",
        "sysctl_sched_features",
    ] {
        assert_sized_like_its_symbol(&v, &dwarf, var);
    }
    assert_eq!(dwarf.units_scanned(), 0, "no link-order scan was needed");
}

/// The DWARF type of `var` has the size its ELF symbol (the linker's record) gives the object.
fn assert_sized_like_its_symbol(v: &Vmlinux, dwarf: &DwarfTypes, var: &str) {
    let elf_size = v
        .object()
        .symbols()
        .find(|s| s.name() == Ok(var))
        .unwrap_or_else(|| panic!("{var} not in .symtab"))
        .size();
    let id = dwarf
        .variable_type(var)
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no type: {var}", v.path().display()));
    assert_eq!(dwarf.get(id).unwrap().size, Some(elf_size), "{var}");
}

/// An exported global far from any static of its own file (`jiffies_64` sits between
/// kernel/sched's and kernel/time/tick-broadcast.c's statics in `.data..cacheline_aligned`) is
/// placed in its exporting file's unit, found from the local `__kstrtab_` symbol in that file's
/// symbol group, not by walking every unit linked between the two neighbours. The type found
/// has the ELF symbol's size. On 6.12 (export tables generated into one object of their own)
/// the neighbours still find them.
#[test]
fn exported_globals_are_placed_in_the_exporting_unit() {
    for set in [
        SET,
        "aarch64-6.1",
        "x86_64-6.12",
        "x86_64-5.10",
        "aarch64-5.10",
    ] {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let v = vmlinux(&dir);
        for var in [
            "jiffies_64",
            "vm_zone_stat",
            "vm_node_stat",
            "blockdev_superblock",
        ] {
            let dwarf = DwarfTypes::new(v.clone()).unwrap();
            assert_sized_like_its_symbol(&v, &dwarf, var);
            assert_eq!(dwarf.units_scanned(), 0, "{set}: {var}: no link-order scan");
            if set != "x86_64-6.12" {
                assert!(
                    dwarf.units_located() <= 2,
                    "{set}: {var}: {} units read",
                    dwarf.units_located()
                );
            }
        }
    }
}

/// The symbol table's `.symtab` index of a name is given only for a name exactly one symbol
/// has, and it is that symbol's index (checked against `object`'s own symbol iterator).
#[test]
fn sole_symtab_index_names_one_symbol() {
    let Some(dir) = fixtures::set(SET) else {
        return;
    };
    let v = vmlinux(&dir);
    let table = vmcore_report::debuginfo::symbols::SymbolTable::from_vmlinux(&v, 0);
    let mut count: std::collections::HashMap<&str, (usize, usize)> = Default::default();
    for s in v.object().symbols() {
        if matches!(s.kind(), SymbolKind::File | SymbolKind::Section) || s.is_undefined() {
            continue;
        }
        if let Ok(n) = s.name()
            && !n.is_empty()
        {
            let e = count.entry(n).or_insert((0, s.index().0));
            e.0 += 1;
        }
    }
    let (mut unique, mut shared) = (0, 0);
    for (name, (n, index)) in &count {
        let got = table.sole_symtab_index(name);
        if *n == 1 {
            assert_eq!(got, Some(*index as u32), "{name}");
            unique += 1;
        } else {
            assert_eq!(got, None, "{name} is the name of {n} symbols");
            shared += 1;
        }
    }
    assert!(
        unique > 50_000 && shared > 100,
        "{unique} unique, {shared} shared"
    );
}
