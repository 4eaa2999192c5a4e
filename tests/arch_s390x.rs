//! s390x translation against big-endian region/segment/page tables built by
//! tests/common/pagetable.rs: every top-level type, large (1 MiB) segments, 2 GiB region-third
//! frames, address-space limits, the top type read from the table, prefixing, missing tables,
//! the 6.10+ layout's page-table root (VMCOREINFO `KERNELOFFPHYS`). The real dumps of the
//! `s390x-6.1` and `s390x-6.12` fixture sets are read by the real-fixture tests.

mod common;

use std::sync::Arc;

use common::pagetable::{Builder, Mode, Rng, check_oracle};
use vmcore_report::addr::{Arch, Endian, VirtAddr};
use vmcore_report::arch::s390x::{S390x, TopLevel, kernel_image_phys};
use vmcore_report::arch::{AddressSpace, TranslateError, TranslationConfig, Translator};

const M1: u64 = 1 << 20;
const G2: u64 = 1 << 31;

struct Layout {
    b: Builder,
    /// Address-space size the top level allows.
    limit_bits: u32,
}

fn build(top: u8) -> Layout {
    let limit_bits = [31u32, 42, 53, 64][top as usize];
    let ram_end = if top >= 1 { 3 * G2 } else { G2 };
    let mut b = Builder::new(Mode::S390 { top }, &[(0, ram_end)], 0x10_0000);
    // identity map of the kernel: 4 KiB pages for the first MiB (lowcore, tables stay apart),
    // then 1 MiB segments, then (when the top allows) a 2 GiB region-third frame
    b.map_range(0, 0, M1, 4096);
    b.map_range(M1, M1, 63 * M1, M1);
    if top >= 1 {
        b.map(G2, G2, G2);
    }
    // a vmalloc-like area: scattered pages with a hole at index 9
    let vmalloc = if top >= 1 {
        3 * G2 + 0x1000_0000
    } else {
        G2 - 64 * M1
    };
    let mut rng = Rng(top as u64 + 1);
    for i in 0..24u64 {
        if i != 9 {
            b.map(vmalloc + i * 4096, rng.below(ram_end / 4096) * 4096, 4096);
        }
    }
    if top >= 2 {
        // high addresses reachable only through region-second / region-first tables
        let high = (1u64 << 45) + 7 * (1 << 42) + 5 * G2;
        b.map_range(high, 0x200_0000, 4 * M1, M1);
    }
    if top >= 3 {
        b.map(0xfff0_0000_0000_0000, 0x300_0000, 4096);
    }
    Layout { b, limit_bits }
}

fn asce(lay: &Layout, top: u8) -> u64 {
    lay.b.root | ((top as u64) << 2) | 3
}

#[test]
fn walk_matches_builder_map_every_top_level() {
    for top in 0..=3u8 {
        let lay = build(top);
        let t = S390x::from_asce(asce(&lay, top));
        assert_eq!(t.top_level(), TopLevel::from_dt(top as u64));
        let mut rng = Rng(0x390 + top as u64);
        let mut extra = Vec::new();
        for _ in 0..3000 {
            let m = lay.b.maps[rng.below(lay.b.maps.len() as u64) as usize];
            extra.push(
                m.va.wrapping_add(rng.below(3 * m.size))
                    .wrapping_sub(m.size),
            );
            extra.push(rng.next() >> rng.below(40));
        }
        let limit = lay.limit_bits;
        let fits = move |va: u64| limit >= 64 || va >> limit == 0;
        let walk = |va: u64| {
            t.walk(&lay.b.mem, VirtAddr(va))
                .map(|t| (t.phys.0, t.mapping_size))
                .map_err(|e| e.code().to_string())
        };
        let n = check_oracle(&lay.b, &mut rng, &extra, &fits, &walk);
        assert!(n > 6000);
    }
}

#[test]
fn config_reads_the_top_type_from_the_table() {
    for top in 0..=3u8 {
        let lay = build(top);
        let mut cfg = TranslationConfig {
            arch: Some(Arch::S390x),
            page_size: 4096,
            ..Default::default()
        };
        // identity-mapped kernel: the symbol value is the physical address
        cfg.symbols.insert("swapper_pg_dir".into(), lay.b.root);
        let t = S390x::from_config(&lay.b.mem, &cfg).unwrap();
        assert_eq!(t.top_level(), TopLevel::from_dt(top as u64), "top {top}");
        let va = 5 * M1 + 123;
        assert_eq!(
            t.translate(&lay.b.mem, VirtAddr(va)).unwrap().phys.0,
            lay.b.expect(va).unwrap().0
        );
    }
}

#[test]
fn big_endian_reads_across_pages_and_segments() {
    let mut lay = build(1);
    let t = S390x::from_asce(asce(&lay, 1));
    let mem = std::mem::replace(&mut lay.b.mem, common::pagetable::SynthMem::new(&[]));
    let mem = Arc::new(mem);
    let aspace = AddressSpace::new(mem.clone(), Box::new(t), Endian::Big, 0);
    let vmalloc = 3 * G2 + 0x1000_0000;
    let start = vmalloc + 4096 - 10;
    let mut buf = vec![0u8; 3 * 4096];
    aspace.read(VirtAddr(start), &mut buf).unwrap();
    for (i, &b) in buf.iter().enumerate() {
        assert_eq!(
            b,
            mem.expected(lay.b.expect(start + i as u64).unwrap().0),
            "{i}"
        );
    }
    // across the 4 KiB -> 1 MiB boundary at 1 MiB and the 2 GiB frame edge
    for edge in [M1, 64 * M1] {
        let mut buf = vec![0u8; 64];
        let r = aspace.read(VirtAddr(edge - 32), &mut buf);
        if edge == 64 * M1 {
            // 64 MiB is the end of the segment mappings: the read must stop there
            assert!(matches!(r, Err(TranslateError::NotMapped { va, .. }) if va.0 == edge));
        } else {
            r.unwrap();
            for (i, &b) in buf.iter().enumerate() {
                assert_eq!(b, mem.expected(edge - 32 + i as u64));
            }
        }
    }
    let v = aspace.read_u32(VirtAddr(G2 + 0x1234)).unwrap();
    let want: [u8; 4] = std::array::from_fn(|i| mem.expected(G2 + 0x1234 + i as u64));
    assert_eq!(v, u32::from_be_bytes(want));
}

#[test]
fn prefix_swaps_the_lowcore() {
    let lay = build(1);
    let prefix = 0x7_0000;
    let mut t = S390x::from_asce(asce(&lay, 1));
    t.set_prefix(Some(prefix));
    let m = &lay.b.mem;
    assert_eq!(
        t.translate(m, VirtAddr(0x10)).unwrap().phys.0,
        prefix + 0x10
    );
    assert_eq!(
        t.translate(m, VirtAddr(prefix + 0x1ff0)).unwrap().phys.0,
        0x1ff0
    );
    assert_eq!(t.translate(m, VirtAddr(0x2000)).unwrap().phys.0, 0x2000);
}

#[test]
fn missing_tables_and_limits() {
    let mut lay = build(2);
    let t = S390x::from_asce(asce(&lay, 2));
    // beyond a region-second table's reach
    let e = t.translate(&lay.b.mem, VirtAddr(1u64 << 53)).unwrap_err();
    assert!(matches!(e, TranslateError::NonCanonical { .. }), "{e}");
    // drop the page tables (deepest level): 4 KiB mappings fail as not dumped, segments work
    let deepest = lay.b.tables.iter().map(|t| t.0).max().unwrap();
    let pts: Vec<u64> = lay
        .b
        .tables
        .iter()
        .filter(|t| t.0 == deepest)
        .map(|t| t.1)
        .collect();
    for pa in pts {
        lay.b.mem.drop_page(pa);
    }
    let e = t.translate(&lay.b.mem, VirtAddr(0x3000)).unwrap_err();
    assert!(e.is_not_dumped(), "{e}");
    assert!(
        matches!(e, TranslateError::TableNotDumped { level: 4, .. }),
        "{e}"
    );
    assert!(t.translate(&lay.b.mem, VirtAddr(2 * M1 + 1)).is_ok());
}

#[test]
fn non_identity_mapped_kernel_is_refused_clearly() {
    let lay = build(1);
    let mut cfg = TranslationConfig {
        arch: Some(Arch::S390x),
        page_size: 4096,
        ..Default::default()
    };
    // a 6.10+ kernel-image address, far above the dump's memory
    cfg.symbols
        .insert("swapper_pg_dir".into(), 0x3ff_e000_0000 + lay.b.root);
    let e = S390x::from_config(&lay.b.mem, &cfg).err().unwrap();
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn the_6_10_layout_finds_its_root_through_kerneloffphys() {
    // the image runs at virtual `KERNELOFFSET` and was loaded at physical `KERNELOFFPHYS`:
    // swapper_pg_dir's symbol is the image's virtual base plus its offset in the image
    let lay = build(1);
    let (virt_base, phys_base) = (0x3ff_e000_0000u64, 0x10_0000u64);
    let mut cfg = TranslationConfig {
        arch: Some(Arch::S390x),
        page_size: 4096,
        kaslr_offset: virt_base,
        ..Default::default()
    };
    cfg.symbols.insert(
        "swapper_pg_dir".into(),
        virt_base + (lay.b.root - phys_base),
    );
    cfg.other
        .insert("KERNELOFFPHYS".into(), format!("{phys_base:x}"));
    assert_eq!(
        kernel_image_phys(&cfg, virt_base + 0x2345),
        Some(phys_base + 0x2345)
    );
    assert_eq!(kernel_image_phys(&cfg, virt_base - 1), None);
    let t = S390x::from_config(&lay.b.mem, &cfg).unwrap();
    assert_eq!(t.top_level(), TopLevel::RegionThird);
    for va in [0x5000u64, 3 * M1 + 0x123, G2 + 0x4567] {
        assert_eq!(
            t.translate(&lay.b.mem, VirtAddr(va)).unwrap().phys.0,
            va,
            "{va:#x}"
        );
    }
    // without KERNELOFFPHYS the same symbol is the refused non-identity address
    cfg.other.clear();
    let e = S390x::from_config(&lay.b.mem, &cfg).err().unwrap();
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn entry_of_the_wrong_table_type_is_not_followed() {
    // hardware raises a translation-specification exception when an entry's TT does not
    // match the table it sits in; a corrupt dump must not be walked through it
    let mut lay = build(3);
    let mut b = [0u8; 8];
    vmcore_report::dump::PhysMem::read_phys(
        &lay.b.mem,
        vmcore_report::addr::PhysAddr(lay.b.root),
        &mut b,
    )
    .unwrap();
    let e = u64::from_be_bytes(b);
    assert_eq!((e >> 2) & 3, 3, "region-first entry");
    lay.b
        .mem
        .write(lay.b.root, &(e & !0xc | (1 << 2)).to_be_bytes());
    let t = S390x::from_asce(asce(&lay, 3));
    let err = t.translate(&lay.b.mem, VirtAddr(0x5000)).unwrap_err();
    assert!(
        matches!(err, TranslateError::NotMapped { level: 1, .. }),
        "{err}"
    );
}
