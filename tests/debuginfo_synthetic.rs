//! The DWARF reader, symbol table and vmlinux matching on synthetic vmlinux files built by
//! tests/common/dwarf.rs. Expected values come from the builder's own layout records.

mod common;

use std::sync::Arc;

use common::dwarf::{
    self, Compression, KernelVersion, Machine, VmlinuxBuilder, addrs, sample_kernel,
};
use vmcore_report::addr::VirtAddr;
use vmcore_report::debuginfo::dwarf::DwarfTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::debuginfo::{
    BaseEncoding, DebugInfoError, TypeKind, TypeSource, find_member, strip_typedefs,
};

fn open(b: &VmlinuxBuilder) -> (tempfile::TempDir, Arc<Vmlinux>) {
    let dir = tempfile::tempdir().unwrap();
    let p = b.write_to(dir.path(), "vmlinux");
    let vm = Arc::new(Vmlinux::open(&p).unwrap());
    (dir, vm)
}

fn check_layout(
    version: KernelVersion,
    dwarf_version: u16,
    compression: Compression,
    legacy: bool,
) {
    let (mut b, l) = sample_kernel(version);
    b.dwarf_version(dwarf_version)
        .compression(compression)
        .legacy_bitfields(legacy);
    let (_d, vm) = open(&b);
    let t = DwarfTypes::new(vm).unwrap();
    let ts = t
        .find_type("struct task_struct")
        .unwrap()
        .expect("task_struct");
    let ty = t.get(ts).unwrap();
    assert_eq!(ty.size, Some(l.task_struct_size));
    let m = |name: &str| {
        find_member(&t, ts, name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let st = m(l.state_name);
    assert_eq!(st.bit_offset, l.state_offset * 8);
    assert_eq!(t.get(st.ty).unwrap().size, Some(l.state_size));
    assert_eq!(m("prio").bit_offset, l.prio_offset * 8);
    assert_eq!(m("pid").bit_offset, l.pid_offset * 8);
    assert_eq!(m("comm").bit_offset, l.comm_offset * 8);
    assert_eq!(m("tasks").bit_offset, l.tasks_offset * 8);
    for (name, bit, width) in &l.bitfields {
        let f = m(name);
        assert_eq!(
            (f.bit_offset, f.bit_size),
            (*bit, Some(*width)),
            "bitfield {name}"
        );
    }
    // anonymous union member
    assert_eq!(m("flags_anon").bit_offset, l.anon_member_offset * 8);
    let other = if l.state_name == "state" {
        "__state"
    } else {
        "state"
    };
    assert!(find_member(&t, ts, other).unwrap().is_none());
    // comm is char[16]
    let comm = t.get(m("comm").ty).unwrap();
    assert_eq!(comm.size, Some(16));
    assert!(matches!(
        comm.kind,
        TypeKind::Array {
            count: Some(16),
            ..
        }
    ));
    // pid is a typedef of a signed int
    let (_, pid) = strip_typedefs(&t, m("pid").ty).unwrap().unwrap();
    assert_eq!(
        pid.kind,
        TypeKind::Base {
            encoding: BaseEncoding::Signed
        }
    );
    // rq / cfs_rq
    let rq = t.find_type("struct rq").unwrap().unwrap();
    assert_eq!(t.get(rq).unwrap().size, Some(l.rq_size));
    let cfs = find_member(&t, rq, "cfs").unwrap().unwrap();
    assert_eq!(cfs.bit_offset, l.rq_cfs_offset * 8);
    let tl = find_member(&t, cfs.ty, "tasks_timeline").unwrap().unwrap();
    assert_eq!(tl.bit_offset, l.cfs_tasks_timeline_offset * 8);
    // enum
    let pt = t.find_type("enum pid_type").unwrap().unwrap();
    match &t.get(pt).unwrap().kind {
        TypeKind::Enum {
            enumerators,
            signed,
        } => {
            assert!(!signed);
            assert_eq!(enumerators.len(), 5);
            assert_eq!(enumerators[2], ("PIDTYPE_PGID".to_string(), 2));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(t.enumerator("PIDTYPE_SID").unwrap(), Some(3));
    // typedef + variable types
    let u64t = t.find_type("u64").unwrap().unwrap();
    assert_eq!(t.get(u64t).unwrap().size, Some(8));
    let v = t.variable_type("init_uts_ns").unwrap().unwrap();
    assert_eq!(t.get(v).unwrap().name.as_deref(), Some("uts_namespace"));
    // split declaration/definition (DW_AT_specification)
    let it = t.variable_type("init_task").unwrap().unwrap();
    assert_eq!(t.get(it).unwrap().name.as_deref(), Some("task_struct"));
    // volatile stripped
    let j = t.variable_type("jiffies").unwrap().unwrap();
    assert_eq!(
        t.get(j).unwrap().kind,
        TypeKind::Base {
            encoding: BaseEncoding::Unsigned
        }
    );
    // flexible array
    let lb = t.variable_type("linux_banner").unwrap().unwrap();
    assert!(matches!(
        t.get(lb).unwrap().kind,
        TypeKind::Array { count: None, .. }
    ));
    assert_eq!(t.get(lb).unwrap().size, None);
    assert!(t.find_type("struct does_not_exist").unwrap().is_none());
    assert!(t.variable_type("nope").unwrap().is_none());
}

#[test]
fn layouts_dwarf5_new_kernel() {
    check_layout(KernelVersion::New, 5, Compression::None, false);
}

#[test]
fn layouts_dwarf4_old_kernel() {
    check_layout(KernelVersion::Old, 4, Compression::None, false);
}

#[test]
fn layouts_legacy_bit_offset_dwarf3() {
    check_layout(KernelVersion::New, 3, Compression::None, true);
}

#[test]
fn layouts_shf_compressed() {
    check_layout(KernelVersion::New, 5, Compression::Zlib, false);
}

#[test]
fn layouts_zdebug() {
    check_layout(KernelVersion::Old, 4, Compression::Gnu, false);
}

#[test]
fn definition_preferred_over_declaration_and_cross_unit_refs() {
    let mut b = VmlinuxBuilder::new();
    let int = b.base("int", 4, true);
    b.declaration("foo");
    let foo_decl_ptr = {
        let d = b.declaration("bar");
        b.pointer(Some(d))
    };
    b.structure(Some("holder"), 8, vec![dwarf::field("p", foo_decl_ptr, 0)]);
    b.new_unit();
    b.structure(
        Some("foo"),
        12,
        vec![dwarf::field("a", int, 0), dwarf::field("b", int, 8)],
    );
    let (_d, vm) = open(&b);
    let t = DwarfTypes::new(vm).unwrap();
    assert_eq!(t.unit_count(), 2);
    let foo = t.find_type("struct foo").unwrap().unwrap();
    assert_eq!(t.get(foo).unwrap().size, Some(12));
    // bar exists only as a declaration: returned, marked as such
    let bar = t.find_type("struct bar").unwrap().unwrap();
    assert!(matches!(
        t.get(bar).unwrap().kind,
        TypeKind::Struct {
            declaration: true,
            ..
        }
    ));
    // foo's member type lives in unit 0 (DW_FORM_ref_addr)
    let a = find_member(&t, foo, "b").unwrap().unwrap();
    assert_eq!(a.bit_offset, 64);
    assert_eq!(t.get(a.ty).unwrap().name.as_deref(), Some("int"));
}

#[test]
fn lazy_index_stops_at_the_defining_unit() {
    let mut b = VmlinuxBuilder::new();
    let int = b.base("int", 4, true);
    b.structure(Some("early"), 4, vec![dwarf::field("x", int, 0)]);
    for i in 0..40 {
        b.new_unit();
        let int = b.base("int", 4, true);
        b.structure(
            Some(&format!("filler{i}")),
            4,
            vec![dwarf::field("x", int, 0)],
        );
    }
    let (_d, vm) = open(&b);
    let t = DwarfTypes::new(vm).unwrap();
    assert_eq!(
        t.units_scanned(),
        0,
        "nothing parsed before the first lookup"
    );
    t.find_type("struct early").unwrap().unwrap();
    assert!(
        t.units_scanned() < t.unit_count(),
        "scanned {} of {}",
        t.units_scanned(),
        t.unit_count()
    );
    assert!(t.find_type("struct filler39").unwrap().is_some());
    assert!(t.find_type("struct missing").unwrap().is_none());
    assert_eq!(t.units_scanned(), t.unit_count());
}

#[test]
fn multi_dimensional_array() {
    let mut b = VmlinuxBuilder::new();
    let int = b.base("int", 4, true);
    let a = b.array_nd(int, &[3, 4]);
    b.structure(Some("grid"), 48, vec![dwarf::field("cells", a, 0)]);
    let (_d, vm) = open(&b);
    let t = DwarfTypes::new(vm).unwrap();
    let g = t.find_type("struct grid").unwrap().unwrap();
    let cells = find_member(&t, g, "cells").unwrap().unwrap();
    let outer = t.get(cells.ty).unwrap();
    assert_eq!(outer.size, Some(48));
    let TypeKind::Array { element, count } = outer.kind else {
        panic!()
    };
    assert_eq!(count, Some(3));
    let inner = t.get(element).unwrap();
    assert_eq!(inner.size, Some(16));
    assert!(matches!(inner.kind, TypeKind::Array { count: Some(4), .. }));
}

#[test]
fn no_dwarf_is_a_clear_error() {
    let mut b = VmlinuxBuilder::new();
    b.symbol("f", 0xffff_ffff_8100_0000, 16, true);
    // a builder with no types still writes a unit; strip it by writing a plain ELF instead
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notelf");
    std::fs::write(&p, b"not an elf at all").unwrap();
    assert!(matches!(Vmlinux::open(&p), Err(DebugInfoError::BadElf(_))));
    let missing = dir.path().join("missing");
    let e = Vmlinux::open(&missing).unwrap_err();
    assert_eq!(e.code(), "io");
}

#[test]
fn symbols_are_shifted_and_symbolized() {
    let (mut b, _) = sample_kernel(KernelVersion::New);
    b.linux_banner(addrs::LINUX_BANNER, "Linux version 6.1.0-test (x) #1 SMP\n");
    let (_d, vm) = open(&b);
    let kaslr = 0x1e00_0000;
    let s = SymbolTable::from_vmlinux(&vm, kaslr);
    assert_eq!(
        s.address("init_uts_ns"),
        Some(VirtAddr(addrs::INIT_UTS_NS + kaslr))
    );
    // per-CPU symbols (zero-based section) do not move
    assert_eq!(s.address("runqueues"), Some(VirtAddr(addrs::RUNQUEUES)));
    assert_eq!(
        s.format_address(VirtAddr(0xffff_ffff_8100_1000 + kaslr + 0x10))
            .as_deref(),
        Some("schedule+0x10")
    );
    assert_eq!(
        s.format_address(VirtAddr(0xffff_ffff_8100_1000 + kaslr + 0x200)),
        None
    );
    assert!(s.address("nope").is_none());
    assert_eq!(
        vm.linux_banner().as_deref(),
        Some(&b"Linux version 6.1.0-test (x) #1 SMP\n"[..])
    );
}

#[test]
fn aarch64_machine_is_reported() {
    let (mut b, _) = sample_kernel(KernelVersion::New);
    b.machine(Machine::Aarch64);
    let (_d, vm) = open(&b);
    assert_eq!(vm.arch(), Some(vmcore_report::addr::Arch::Aarch64));
}

mod locate_tests {
    use super::*;
    use vmcore_report::debuginfo::locate::{self, DumpIdentity, LocateOptions, MatchProof};
    use vmcore_report::dump::VmcoreInfo;

    const BANNER: &str = "Linux version 6.1.0-99-test (dev@example) #1 SMP Debian 6.1.1-1\n";

    fn vmlinux_with(build_id: Option<&[u8]>, banner: &str) -> VmlinuxBuilder {
        let (mut b, _) = sample_kernel(KernelVersion::New);
        if let Some(id) = build_id {
            b.build_id(id);
        }
        b.linux_banner(addrs::LINUX_BANNER, banner);
        b
    }

    fn identity(release: &str, build_id: Option<&str>) -> DumpIdentity {
        let text = format!(
            "OSRELEASE={release}\n{}",
            build_id
                .map(|b| format!("BUILD-ID={b}\n"))
                .unwrap_or_default()
        );
        DumpIdentity::from_vmcoreinfo(
            Some(&VmcoreInfo::parse(&text)),
            Some(vmcore_report::addr::Arch::X86_64),
        )
    }

    #[test]
    fn build_id_match_and_mismatch() {
        let id_a = [0xab_u8; 20];
        let (_d, vm) = open(&vmlinux_with(Some(&id_a), BANNER));
        let ok = locate::verify(
            &vm,
            &identity("6.1.0-99-test", Some(&hex::encode(id_a))),
            false,
        )
        .unwrap();
        assert_eq!(ok, MatchProof::BuildId(hex::encode(id_a)));
        let other = hex::encode([0xcd_u8; 20]);
        let e = locate::verify(&vm, &identity("6.1.0-99-test", Some(&other)), false).unwrap_err();
        assert_eq!(e.code(), "vmlinux-mismatch");
        let msg = e.to_string();
        assert!(
            msg.contains(&other) && msg.contains(&hex::encode(id_a)),
            "{msg}"
        );
        assert!(matches!(
            locate::verify(&vm, &identity("6.1.0-99-test", Some(&other)), true).unwrap(),
            MatchProof::Forced(_)
        ));
    }

    #[test]
    fn release_and_banner_without_build_id() {
        let (_d, vm) = open(&vmlinux_with(None, BANNER));
        let mut id = identity("6.1.0-99-test", None);
        assert_eq!(
            locate::verify(&vm, &id, false).unwrap(),
            MatchProof::ReleaseOnly("6.1.0-99-test".into())
        );
        id.banner = Some(BANNER.as_bytes().to_vec());
        assert_eq!(
            locate::verify(&vm, &id, false).unwrap(),
            MatchProof::ReleaseAndBanner("6.1.0-99-test".into())
        );
        id.banner =
            Some(b"Linux version 6.1.0-99-test (dev@example) #2 SMP Debian 6.1.1-2\n".to_vec());
        assert_eq!(
            locate::verify(&vm, &id, false).unwrap_err().code(),
            "vmlinux-mismatch"
        );
        let e = locate::verify(&vm, &identity("6.1.0-98-test", None), false).unwrap_err();
        assert!(
            e.to_string().contains("6.1.0-98-test") && e.to_string().contains("6.1.0-99-test"),
            "{e}"
        );
    }

    #[test]
    fn search_order_and_not_found_message() {
        let root = tempfile::tempdir().unwrap();
        let id_a = [0x11_u8; 20];
        let id_b = [0x22_u8; 20];
        // a wrong vmlinux under the release name in the first dir, the right one by build-id
        // in the sysroot's .build-id tree: the wrong one is skipped
        let d1 = root.path().join("d1");
        vmlinux_with(Some(&id_b), BANNER).write_to(&d1, "vmlinux-6.1.0-99-test");
        let sysroot = root.path().join("sysroot");
        let bid = hex::encode(id_a);
        vmlinux_with(Some(&id_a), BANNER).write_to(
            &sysroot.join("usr/lib/debug/.build-id").join(&bid[..2]),
            &format!("{}.debug", &bid[2..]),
        );
        let opts = LocateOptions {
            debuginfo_dirs: vec![d1.clone()],
            sysroot: Some(sysroot.clone()),
            ..Default::default()
        };
        let id = identity("6.1.0-99-test", Some(&bid));
        let found = locate::locate(&opts, &id).unwrap();
        assert!(found.path.starts_with(&sysroot), "{:?}", found.path);
        assert_eq!(found.proof, MatchProof::BuildId(bid.clone()));
        // explicit path wins, and is verified
        let explicit = LocateOptions {
            explicit: Some(d1.join("vmlinux-6.1.0-99-test")),
            ..opts.clone()
        };
        assert_eq!(
            locate::locate(&explicit, &id).err().unwrap().code(),
            "vmlinux-mismatch"
        );
        // nothing there: every path tried is named, with the packages to install
        let empty = LocateOptions {
            debuginfo_dirs: vec![root.path().join("nowhere")],
            sysroot: Some(root.path().join("empty-root")),
            ..Default::default()
        };
        let e = locate::locate(&empty, &identity("6.1.0-77-amd64", None))
            .err()
            .unwrap();
        assert_eq!(e.code(), "vmlinux-not-found");
        let msg = e.to_string();
        for needle in [
            "nowhere/vmlinux-6.1.0-77-amd64",
            "empty-root/usr/lib/debug/boot/vmlinux-6.1.0-77-amd64",
            "empty-root/usr/lib/debug/lib/modules/6.1.0-77-amd64/vmlinux",
            "empty-root/boot/vmlinux-6.1.0-77-amd64",
            "linux-image-6.1.0-77-amd64-dbg",
            "kernel-debuginfo-6.1.0-77-amd64",
            "linux-image-unsigned-6.1.0-77-amd64-dbgsym",
        ] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
        // a hostile release string cannot walk out of the search directories
        let c = locate::candidates(&empty, &identity("../../etc", None));
        assert!(
            c.iter().all(|p| !p.to_string_lossy().contains("..")),
            "{c:?}"
        );
    }
}
