//! x86_64 translation against page tables built by tests/common/pagetable.rs, whose own map is
//! the oracle: 4- and 5-level, 1 GiB / 2 MiB / 4 KiB pages, KASLR with a wrapped phys_base,
//! the randomized direct map, the fast path, SME bits, missing table pages, reads across pages.

mod common;

use std::sync::Arc;

use common::pagetable::{Builder, Mode, Rng};
use vmcore_report::addr::{Arch, Endian, VirtAddr};
use vmcore_report::arch::x86_64::{START_KERNEL_MAP, X86_64};
use vmcore_report::arch::{AddressSpace, TranslateError, TranslationConfig, Translator};

const G: u64 = 1 << 30;
const M2: u64 = 1 << 21;
const K4: u64 = 4096;

/// RAM is [0, 5 GiB + 8 MiB).
const RAM_END: u64 = 5 * G + 4 * M2;
/// KASLR-shifted image: VA 0xffffffff9f000000 at PA 0x5200000, so phys_base wraps below zero.
const IMAGE_VA: u64 = 0xffff_ffff_9f00_0000;
const IMAGE_PA: u64 = 0x520_0000;
const IMAGE_LEN: u64 = 16 * M2;

struct Layout {
    b: Builder,
    pob: u64,
    phys_base: u64,
    pgd_va: u64,
}

fn build(l5: bool, sme: u64) -> Layout {
    // tables inside the image, so the root has a kernel-image address like init_top_pgt
    let mut b = Builder::new(Mode::X86 { l5, sme }, &[(0, RAM_END)], IMAGE_PA + 12 * M2);
    let phys_base = IMAGE_PA.wrapping_sub(IMAGE_VA - START_KERNEL_MAP);
    let pgd_va = b
        .root
        .wrapping_sub(phys_base)
        .wrapping_add(START_KERNEL_MAP);
    b.map_range(IMAGE_VA, IMAGE_PA, IMAGE_LEN, M2);
    // a randomized direct map: 1 GiB pages, then 2 MiB, then 4 KiB pages
    let pob = if l5 {
        0xff11_0000_0000_0000 + 0x37 * (1u64 << 39) + 5 * G
    } else {
        0xffff_8880_0000_0000 + 0x1d * (1u64 << 39) + 3 * G
    };
    b.map_range(pob, 0, 4 * G, G);
    b.map_range(pob + 4 * G, 4 * G, G, M2);
    b.map_range(pob + 5 * G, 5 * G, 4 * M2, K4);
    // vmalloc: scattered 4 KiB pages with a hole in the middle
    let vmalloc = if l5 {
        0xffa0_0000_0000_0000
    } else {
        0xffff_c900_0000_0000
    };
    let mut rng = Rng(7);
    for i in 0..64u64 {
        if i == 40 {
            continue;
        }
        let pa = (rng.below(RAM_END / K4 - 1)) * K4;
        b.map(vmalloc + i * K4, pa, K4);
    }
    // vmemmap with 2 MiB pages
    let vmemmap = if l5 {
        0xffd4_0000_0000_0000
    } else {
        0xffff_ea00_0000_0000
    };
    b.map_range(vmemmap, 3 * G, 4 * M2, M2);
    Layout {
        b,
        pob,
        phys_base,
        pgd_va,
    }
}

fn canonical(l5: bool) -> impl Fn(u64) -> bool {
    let bits = if l5 { 57 } else { 48 };
    move |va: u64| {
        let top = va >> (bits - 1);
        top == 0 || top == (1u64 << (65 - bits)) - 1
    }
}

fn code(r: Result<vmcore_report::arch::Translation, TranslateError>) -> Result<(u64, u64), String> {
    r.map(|t| (t.phys.0, t.mapping_size))
        .map_err(|e| e.code().to_string())
}

fn random_kernel_addresses(rng: &mut Rng, l5: bool, lay: &Layout, n: usize) -> Vec<u64> {
    let mut v = Vec::new();
    for _ in 0..n {
        // near mappings (hits and near misses) and anywhere in the kernel half
        let m = lay.b.maps[rng.below(lay.b.maps.len() as u64) as usize];
        v.push(
            m.va.wrapping_add(rng.below(4 * m.size))
                .wrapping_sub(m.size),
        );
        let any = if l5 {
            0xff00_0000_0000_0000 | rng.next()
        } else {
            0xffff_8000_0000_0000 | rng.next()
        };
        v.push(any);
        v.push(rng.next());
    }
    v
}

#[test]
fn walk_matches_builder_map_4_and_5_level() {
    for l5 in [false, true] {
        for sme in [0, 1u64 << 47] {
            let lay = build(l5, sme);
            let t = X86_64::new(lay.b.root, l5, sme, lay.phys_base);
            let mut rng = Rng(0x5eed ^ l5 as u64);
            let extra = random_kernel_addresses(&mut rng, l5, &lay, 3000);
            let n =
                common::pagetable::check_oracle(&lay.b, &mut rng, &extra, &canonical(l5), &|va| {
                    code(t.walk(&lay.b.mem, VirtAddr(va)))
                });
            assert!(n > 9000);
        }
    }
}

#[test]
fn non_canonical_addresses_are_rejected() {
    let l4 = build(false, 0);
    let t4 = X86_64::new(l4.b.root, false, 0, l4.phys_base);
    for va in [
        0x0000_8000_0000_0000u64,
        0xffff_7fff_ffff_ffff,
        0xff11_0000_0000_0000,
        0x1234_5678_9abc_def0,
    ] {
        let e = t4.translate(&l4.b.mem, VirtAddr(va)).unwrap_err();
        assert!(
            matches!(e, TranslateError::NonCanonical { .. }),
            "{va:#x}: {e}"
        );
    }
    let l5 = build(true, 0);
    let t5 = X86_64::new(l5.b.root, true, 0, l5.phys_base);
    for va in [0x0100_0000_0000_0000u64, 0xfeff_ffff_ffff_ffff] {
        let e = t5.translate(&l5.b.mem, VirtAddr(va)).unwrap_err();
        assert!(
            matches!(e, TranslateError::NonCanonical { .. }),
            "{va:#x}: {e}"
        );
    }
    // canonical under 5-level, not mapped
    let e = t5
        .translate(&l5.b.mem, VirtAddr(0xff00_0000_0000_0000))
        .unwrap_err();
    assert!(
        matches!(e, TranslateError::NotMapped { level: 1, .. }),
        "{e}"
    );
}

fn config(lay: &Layout, l5: bool, with_phys_base: bool, with_symbol: bool) -> TranslationConfig {
    let mut cfg = TranslationConfig {
        arch: Some(Arch::X86_64),
        page_size: 4096,
        ..Default::default()
    };
    cfg.numbers
        .insert("pgtable_l5_enabled".into(), if l5 { 1 } else { 0 });
    cfg.numbers.insert("KERNEL_IMAGE_SIZE".into(), 1 << 30);
    if with_phys_base {
        cfg.phys_base = Some(lay.phys_base);
    }
    if with_symbol {
        cfg.symbols.insert("init_top_pgt".into(), lay.pgd_va);
    } else {
        // QEMU's CR3: PCID bits in the low 12 bits must be ignored
        cfg.pgd_phys = Some(lay.b.root | 0x5);
    }
    cfg
}

#[test]
fn config_finds_root_phys_base_and_direct_map() {
    for l5 in [false, true] {
        let lay = build(l5, 0);
        for (with_pb, with_sym) in [(true, true), (false, true), (true, false), (false, false)] {
            let cfg = config(&lay, l5, with_pb, with_sym);
            let t = X86_64::from_config(&lay.b.mem, &cfg).unwrap();
            assert_eq!(t.root(), lay.b.root, "l5={l5} pb={with_pb} sym={with_sym}");
            assert_eq!(t.la57(), l5);
            assert_eq!(t.phys_base(), lay.phys_base);
            assert_eq!(t.page_offset_base(), Some(lay.pob));
        }
    }
}

#[test]
fn fast_path_agrees_with_walk() {
    for l5 in [false, true] {
        let lay = build(l5, 0);
        let t = X86_64::from_config(&lay.b.mem, &config(&lay, l5, true, true)).unwrap();
        let mut rng = Rng(99);
        let mut fast_hits = 0;
        for i in 0..20000u64 {
            let va = match i % 3 {
                0 => lay.pob + rng.below(RAM_END + G),
                1 => START_KERNEL_MAP + rng.below(1 << 30),
                _ => IMAGE_VA + rng.below(IMAGE_LEN + M2) - M2 / 2,
            };
            let walk = t.walk(&lay.b.mem, VirtAddr(va));
            if let Some(fast) = t.fast_translate(VirtAddr(va)) {
                fast_hits += 1;
                let w = walk.unwrap_or_else(|e| panic!("fast path maps {va:#x}, walk says {e}"));
                assert_eq!(fast.phys, w.phys, "{va:#x}");
                assert!(fast.mapping_size <= w.mapping_size);
            }
            // and the translator's answer is the oracle's
            let want = lay.b.expect(va);
            let got = t.translate(&lay.b.mem, VirtAddr(va)).ok().map(|t| t.phys.0);
            assert_eq!(got, want.map(|w| w.0), "{va:#x}");
        }
        assert!(fast_hits > 10000, "fast path used {fast_hits} times");
    }
}

#[test]
fn missing_table_page_is_reported_as_not_dumped() {
    let mut lay = build(false, 0);
    let t = X86_64::new(lay.b.root, false, 0, lay.phys_base);
    let va = 0xffff_c900_0000_0000u64 + 3 * K4;
    // the page table (level 4) of the vmalloc mapping
    let pt = t.walk(&lay.b.mem, VirtAddr(va)).unwrap();
    assert_eq!(pt.mapping_size, K4);
    let level4_tables: Vec<u64> = lay
        .b
        .tables
        .iter()
        .filter(|(l, _)| *l == 4)
        .map(|&(_, pa)| pa)
        .collect();
    for pa in level4_tables {
        lay.b.mem.drop_page(pa);
    }
    let e = t.walk(&lay.b.mem, VirtAddr(va)).unwrap_err();
    assert!(
        matches!(e, TranslateError::TableNotDumped { level: 4, .. }),
        "{e}"
    );
    assert!(e.is_not_dumped());
    assert_eq!(e.code(), "page-table-not-dumped");
    // a 1 GiB mapping needs no level-4 table and still translates
    assert!(t.walk(&lay.b.mem, VirtAddr(lay.pob + 5)).is_ok());
}

#[test]
fn reads_cross_pages_and_mapping_sizes() {
    for l5 in [false, true] {
        let mut lay = build(l5, 0);
        let cfg = config(&lay, l5, true, true);
        let t = X86_64::from_config(&lay.b.mem, &cfg).unwrap();
        let mem = std::mem::replace(&mut lay.b.mem, common::pagetable::SynthMem::new(&[]));
        let mem = Arc::new(mem);
        let aspace = AddressSpace::new(mem.clone(), Box::new(t), Endian::Little, 0);
        let vmalloc = if l5 {
            0xffa0_0000_0000_0000
        } else {
            0xffff_c900_0000_0000
        };
        let expect = |va: u64| mem.expected(lay.b.expect(va).unwrap().0);
        // scattered vmalloc pages: a read spanning 5 pages
        let start = vmalloc + 2 * K4 - 100;
        let mut buf = vec![0u8; 4 * 4096 + 200];
        aspace.read(VirtAddr(start), &mut buf).unwrap();
        for (i, &byte) in buf.iter().enumerate() {
            assert_eq!(byte, expect(start + i as u64), "offset {i}");
        }
        // across a 1 GiB -> 2 MiB boundary of the direct map, and 2 MiB -> 4 KiB
        for edge in [lay.pob + 4 * G, lay.pob + 5 * G] {
            let mut buf = vec![0u8; 9000];
            aspace.read(VirtAddr(edge - 4500), &mut buf).unwrap();
            for (i, &byte) in buf.iter().enumerate() {
                assert_eq!(byte, expect(edge - 4500 + i as u64));
            }
        }
        // a read running into the vmalloc hole fails at the hole
        let mut buf = vec![0u8; 200];
        let e = aspace
            .read(VirtAddr(vmalloc + 40 * K4 - 100), &mut buf)
            .unwrap_err();
        match e {
            TranslateError::NotMapped { va, .. } => assert_eq!(va.0, vmalloc + 40 * K4),
            other => panic!("{other}"),
        }
        let v = aspace.read_u64(VirtAddr(IMAGE_VA + M2 - 4)).unwrap();
        let want: Vec<u8> = (0..8).map(|i| expect(IMAGE_VA + M2 - 4 + i)).collect();
        assert_eq!(v, u64::from_le_bytes(want.try_into().unwrap()));
    }
}

#[test]
fn pti_user_cr3_falls_back_to_the_kernel_table() {
    // the builder's root is 8 KiB-aligned only by luck; build a layout and put an empty
    // "user" table right above an 8 KiB-aligned copy of the root
    let mut lay = build(false, 0);
    let mut kernel_root = [0u8; 4096];
    vmcore_report::dump::PhysMem::read_phys(
        &lay.b.mem,
        vmcore_report::addr::PhysAddr(lay.b.root),
        &mut kernel_root,
    )
    .unwrap();
    let k = 0x7000_0000u64; // 8 KiB-aligned, inside RAM, away from data the test reads
    lay.b.mem.write(k, &kernel_root);
    lay.b.mem.write(k + 0x1000, &[0u8; 4096]);
    let mut cfg = config(&lay, false, false, false);
    cfg.pgd_phys = Some(k + 0x1000 + 0x3); // user PGD + PCID
    let t = X86_64::from_config(&lay.b.mem, &cfg).unwrap();
    assert_eq!(t.root(), k);
    assert_eq!(t.phys_base(), lay.phys_base);
    let va = lay.pob + 4 * G + 12345;
    assert_eq!(
        t.translate(&lay.b.mem, VirtAddr(va)).unwrap().phys.0,
        lay.b.expect(va).unwrap().0
    );
}

#[test]
fn dispatcher_needs_an_architecture() {
    let lay = build(false, 0);
    let mut cfg = config(&lay, false, true, true);
    cfg.arch = None;
    let e = vmcore_report::arch::translator(&lay.b.mem, &cfg)
        .err()
        .unwrap();
    assert_eq!(e.code(), "translation-config");
    cfg.arch = Some(Arch::X86_64);
    let t = vmcore_report::arch::translator(&lay.b.mem, &cfg).unwrap();
    assert_eq!(t.arch(), Arch::X86_64);
}
