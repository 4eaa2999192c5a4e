//! aarch64 translation against tables built by tests/common/pagetable.rs: every granule with
//! its VA sizes, block mappings at each allowed level, 52-bit physical addresses (64K LPA),
//! a 52-bit kernel running with 48-bit VAs, the linear map before and after the 5.4 flip, PAC
//! bits, and reads across pages.

mod common;

use std::sync::Arc;

use common::pagetable::{Builder, Mode, Rng, check_oracle};
use vmcore_report::addr::{Arch, Endian, VirtAddr};
use vmcore_report::arch::aarch64::{Aarch64, Aarch64Params};
use vmcore_report::arch::{AddressSpace, TranslateError, TranslationConfig, Translator};

struct Case {
    granule: u64,
    va_bits: u32,
    /// VA size the "hardware" uses (64 - T1SZ).
    actual: u32,
    pa52: bool,
    /// Linear map in the bottom half of the kernel range (5.4 and later).
    flipped: bool,
}

struct Layout {
    b: Builder,
    phys_offset: u64,
    page_offset: u64,
    kimage_voffset: u64,
    swapper_va: u64,
    image_va: u64,
    ram_end: u64,
    vmalloc: u64,
}

fn build(c: &Case) -> Layout {
    let mode = Mode::Arm {
        granule: c.granule,
        va_bits: c.va_bits,
        pa52: c.pa52,
    };
    let phys_offset: u64 = if c.pa52 { 1 << 48 } else { 0x4000_0000 };
    // which leaf sizes the linear map uses: the two largest blocks and pages
    let probe = Builder::new(mode, &[], 0);
    let sizes = probe.leaf_sizes();
    drop(probe);
    let page = sizes[0];
    let mut layout_len: u64 = 0;
    let mut plan = Vec::new();
    for (i, &s) in sizes.iter().enumerate().rev() {
        // align to this size, then 2 leaves of it (3 for pages)
        layout_len = layout_len.div_ceil(s) * s;
        let n = if i == 0 { 5 } else { 2 };
        plan.push((layout_len, s, n));
        layout_len += n * s;
    }
    let ram_end = phys_offset + layout_len;
    let table_base = (ram_end + (1 << 30)).div_ceil(1 << 30) * (1 << 30);
    let mut b = Builder::new(mode, &[(phys_offset, ram_end)], table_base);
    let (page_offset, image_base) = if c.flipped {
        (
            // a 52-bit kernel on 48-bit hardware starts its linear map at -(1 << 48)
            0u64.wrapping_sub(1 << c.actual),
            0u64.wrapping_sub(1 << (c.actual - 1)),
        )
    } else {
        (
            0u64.wrapping_sub(1 << (c.va_bits - 1)),
            0u64.wrapping_sub(1 << c.va_bits),
        )
    };
    for &(off, s, n) in &plan {
        b.map_range(page_offset + off, phys_offset + off, n * s, s);
    }
    // the kernel image: 8 pages at 128 MiB into the image half, loaded at phys_offset + 2 pages
    let image_va = image_base + (128 << 20);
    let image_pa = phys_offset + 2 * page;
    b.map_range(image_va, image_pa, 8 * page, page);
    let kimage_voffset = image_va.wrapping_sub(image_pa);
    // vmalloc: scattered pages with a hole at index 20
    let vmalloc = image_base + (1 << 30);
    let mut rng = Rng(c.granule ^ c.va_bits as u64);
    for i in 0..32u64 {
        if i != 20 {
            let pa = phys_offset + rng.below(layout_len / page) * page;
            b.map(vmalloc + i * page, pa, page);
        }
    }
    let swapper_va = b.root.wrapping_add(kimage_voffset);
    Layout {
        b,
        phys_offset,
        page_offset,
        kimage_voffset,
        swapper_va,
        image_va,
        ram_end,
        vmalloc,
    }
}

/// `pac`: whether the kernel signs pointers (`NUMBER(KERNELPACMASK)`); with it, every address
/// with bit 55 set is a kernel address once stripped, so "non-canonical" cannot happen.
fn config_pac(c: &Case, lay: &Layout, pac: bool) -> TranslationConfig {
    let mut cfg = TranslationConfig {
        arch: Some(Arch::Aarch64),
        page_size: c.granule,
        ..Default::default()
    };
    cfg.numbers.insert("VA_BITS".into(), c.va_bits as i64);
    cfg.numbers
        .insert("TCR_EL1_T1SZ".into(), 64 - c.actual as i64);
    cfg.numbers
        .insert("MAX_PHYSMEM_BITS".into(), if c.pa52 { 52 } else { 48 });
    cfg.numbers
        .insert("kimage_voffset".into(), lay.kimage_voffset as i64);
    // the kernel lowers memstart_addr on a 52-bit build running with 48 bits so that
    // __pa(va) = va - PAGE_OFFSET(52) + PHYS_OFFSET stays right (arm64_memblock_init)
    let shift = (1u64 << c.va_bits) - (1u64 << c.actual);
    cfg.numbers.insert(
        "PHYS_OFFSET".into(),
        lay.phys_offset.wrapping_sub(shift) as i64,
    );
    if pac {
        cfg.numbers
            .insert("KERNELPACMASK".into(), (u64::MAX << c.actual) as i64);
    }
    cfg.symbols.insert("swapper_pg_dir".into(), lay.swapper_va);
    cfg.symbols.insert("_stext".into(), lay.image_va);
    cfg
}

fn config(c: &Case, lay: &Layout) -> TranslationConfig {
    config_pac(c, lay, false)
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (granule, va_bits, pa52) in [
        (4096, 39, false),
        (4096, 48, false),
        (16384, 36, false),
        (16384, 47, false),
        (16384, 48, false),
        (65536, 42, false),
        (65536, 48, false),
        (65536, 48, true),
        (65536, 52, true),
    ] {
        for flipped in [true, false] {
            v.push(Case {
                granule,
                va_bits,
                actual: va_bits,
                pa52,
                flipped,
            });
        }
    }
    // a 52-bit 64K kernel on 48-bit hardware (TCR_EL1.T1SZ = 16)
    v.push(Case {
        granule: 65536,
        va_bits: 52,
        actual: 48,
        pa52: true,
        flipped: true,
    });
    v
}

fn canonical(actual: u32) -> impl Fn(u64) -> bool {
    move |va: u64| {
        // TTBR1 addresses: bits 63..actual all ones
        va >> actual == (1u64 << (64 - actual)) - 1
    }
}

#[test]
fn walk_matches_builder_map_every_granule_and_va_size() {
    for c in cases() {
        let lay = build(&c);
        let t = Aarch64::from_config(&lay.b.mem, &config(&c, &lay)).unwrap();
        assert_eq!(t.root(), lay.b.root);
        let mut rng = Rng(c.va_bits as u64 * 31 + c.granule);
        let mut extra = Vec::new();
        for _ in 0..2000 {
            let m = lay.b.maps[rng.below(lay.b.maps.len() as u64) as usize];
            extra.push(
                m.va.wrapping_add(rng.below(3 * m.size))
                    .wrapping_sub(m.size),
            );
            extra.push(0u64.wrapping_sub(1 << c.actual) | rng.below(1 << c.actual));
        }
        let what = format!(
            "granule {} VA_BITS {} actual {} pa52 {} flipped {}",
            c.granule, c.va_bits, c.actual, c.pa52, c.flipped
        );
        eprintln!("{what}");
        let walk = |va: u64| {
            t.walk(&lay.b.mem, VirtAddr(va))
                .map(|t| (t.phys.0, t.mapping_size))
                .map_err(|e| e.code().to_string())
        };
        check_oracle(&lay.b, &mut rng, &extra, &canonical(c.actual), &walk);
        // the fast path must be on and agree with the walk wherever it answers
        assert!(t.phys_to_linear(lay.phys_offset).is_some(), "{what}");
        assert_eq!(
            t.phys_to_linear(lay.phys_offset),
            Some(lay.page_offset),
            "{what}"
        );
        let mut hits = 0;
        for _ in 0..3000 {
            let va = lay.page_offset + rng.below(lay.ram_end - lay.phys_offset + (1 << 20));
            if let Some(f) = t.fast_translate(VirtAddr(va)) {
                hits += 1;
                let w = t.walk(&lay.b.mem, VirtAddr(va)).unwrap();
                assert_eq!(f.phys, w.phys, "{what} {va:#x}");
            }
            let got = t.translate(&lay.b.mem, VirtAddr(va)).ok().map(|t| t.phys.0);
            assert_eq!(got, lay.b.expect(va).map(|e| e.0), "{what} {va:#x}");
        }
        assert!(hits > 2000, "{what}: {hits}");
        // the kernel image: 8 pages mapped at kimage_voffset, all served by the fast path
        let page = c.granule;
        assert_eq!(t.fast_path_coverage().1, 8 * page, "{what}");
        for va in [
            lay.image_va,
            lay.image_va + 8 * page - 1,
            lay.image_va + 8 * page,
        ] {
            let f = t.fast_translate(VirtAddr(va)).map(|t| t.phys.0);
            let w = t.walk(&lay.b.mem, VirtAddr(va)).ok().map(|t| t.phys.0);
            assert_eq!(f, w, "{what} {va:#x}");
            assert_eq!(w, lay.b.expect(va).map(|e| e.0), "{what} {va:#x}");
        }
    }
}

#[test]
fn user_and_non_canonical_addresses_are_rejected() {
    let c = Case {
        granule: 4096,
        va_bits: 48,
        actual: 48,
        pa52: false,
        flipped: true,
    };
    let lay = build(&c);
    let t = Aarch64::from_config(&lay.b.mem, &config(&c, &lay)).unwrap();
    let e = t
        .translate(&lay.b.mem, VirtAddr(0xfffe_0000_0000_0000))
        .unwrap_err();
    assert!(matches!(e, TranslateError::NonCanonical { .. }), "{e}");
    let e = t
        .translate(&lay.b.mem, VirtAddr(0x0000_7fff_0000_0000))
        .unwrap_err();
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn pac_bits_are_stripped_from_kernel_pointers() {
    let c = Case {
        granule: 4096,
        va_bits: 48,
        actual: 48,
        pa52: false,
        flipped: true,
    };
    let lay = build(&c);
    let t = Aarch64::from_config(&lay.b.mem, &config_pac(&c, &lay, true)).unwrap();
    let va = lay.vmalloc + 3 * 4096 + 8;
    // a signed pointer: PAC in bits 48..54 and 56..63, bit 55 still set
    let signed = (va & 0x0080_ffff_ffff_ffff) | 0x3a2c_0000_0000_0000 | (1 << 55);
    assert_eq!(
        t.translate(&lay.b.mem, VirtAddr(signed)).unwrap().phys.0,
        lay.b.expect(va).unwrap().0
    );
}

#[test]
fn missing_table_page_and_reads_across_pages() {
    for c in [
        Case {
            granule: 4096,
            va_bits: 48,
            actual: 48,
            pa52: false,
            flipped: true,
        },
        Case {
            granule: 65536,
            va_bits: 52,
            actual: 48,
            pa52: true,
            flipped: true,
        },
    ] {
        let mut lay = build(&c);
        let t = Aarch64::from_config(&lay.b.mem, &config(&c, &lay)).unwrap();
        let page = c.granule;
        let mem = std::mem::replace(&mut lay.b.mem, common::pagetable::SynthMem::new(&[]));
        let mem = Arc::new(mem);
        let aspace = AddressSpace::new(mem.clone(), Box::new(t), Endian::Little, 0);
        let start = lay.vmalloc + 2 * page - 77;
        let mut buf = vec![0u8; 3 * page as usize + 150];
        aspace.read(VirtAddr(start), &mut buf).unwrap();
        for (i, &byte) in buf.iter().enumerate() {
            let pa = lay.b.expect(start + i as u64).unwrap().0;
            assert_eq!(byte, mem.expected(pa), "offset {i}");
        }
        let mut buf = vec![0u8; 100];
        let e = aspace
            .read(VirtAddr(lay.vmalloc + 20 * page - 50), &mut buf)
            .unwrap_err();
        assert!(
            matches!(e, TranslateError::NotMapped { va, .. } if va.0 == lay.vmalloc + 20 * page)
        );

        // dropping the last-level tables: vmalloc fails as "not dumped", blocks still work
        drop(aspace);
        let mut mem2 = Arc::try_unwrap(mem).ok().unwrap();
        let deepest = lay.b.tables.iter().map(|t| t.0).max().unwrap();
        for &(l, pa) in &lay.b.tables {
            if l == deepest {
                for p in 0..page / 4096 {
                    mem2.drop_page(pa + p * 4096);
                }
            }
        }
        let t = Aarch64::from_config(&mem2, &config(&c, &lay)).unwrap();
        let e = t.walk(&mem2, VirtAddr(lay.vmalloc)).unwrap_err();
        assert!(e.is_not_dumped(), "{e}");
        let r = t.walk(&mem2, VirtAddr(lay.page_offset + 5));
        assert!(r.is_ok(), "{r:?}");
    }
}

#[test]
fn params_are_rejected_when_impossible() {
    let p = Aarch64Params {
        page_size: 8192,
        va_bits: 48,
        va_bits_actual: 48,
        pa_bits: 48,
    };
    assert_eq!(
        Aarch64::new(p, 0).err().unwrap().code(),
        "translation-config"
    );
    let cfg = TranslationConfig {
        arch: Some(Arch::Aarch64),
        page_size: 4096,
        ..Default::default()
    };
    let mem = common::pagetable::SynthMem::new(&[(0, 1 << 20)]);
    assert_eq!(
        Aarch64::from_config(&mem, &cfg).err().unwrap().code(),
        "translation-config"
    );
}

#[test]
fn hostile_va_bits_give_config_errors_not_panics() {
    let mem = common::pagetable::SynthMem::new(&[(0x4000_0000, 0x5000_0000)]);
    for (va_bits, t1sz) in [
        (0i64, 16i64),
        (64, 16),
        (48, 0),
        (48, 63),
        (-1, 16),
        (35, 29),
    ] {
        let mut cfg = TranslationConfig {
            arch: Some(Arch::Aarch64),
            page_size: 4096,
            ..Default::default()
        };
        cfg.numbers.insert("VA_BITS".into(), va_bits);
        cfg.numbers.insert("TCR_EL1_T1SZ".into(), t1sz);
        cfg.numbers.insert("kimage_voffset".into(), 0x1000);
        cfg.numbers.insert("PHYS_OFFSET".into(), 0x4000_0000);
        cfg.symbols.insert("swapper_pg_dir".into(), 0x4000_1000);
        match Aarch64::from_config(&mem, &cfg) {
            Ok(t) => assert!((36..=52).contains(&t.params().va_bits)),
            Err(e) => assert_eq!(e.code(), "translation-config"),
        }
    }
}
