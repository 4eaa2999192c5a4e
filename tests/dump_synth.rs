//! Round trips through every format, codec and header version, with the synthetic builder's own
//! page map as the oracle.

mod common;

use common::vmcore::{
    ElfOpts, KdumpOpts, SynthArch, SynthCodec, VmcoreBuilder, compressible_page, random_page,
};
use vmcore_report::addr::{Arch, Endian, PhysAddr};
use vmcore_report::dump::{self, Dump, DumpFormat};

const PS: u64 = 4096;

fn vmcoreinfo_for(arch: SynthArch) -> String {
    let mut s = String::from("OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\nKERNELOFFSET=1e000000\n");
    match arch {
        SynthArch::X86_64 => s.push_str("SYMBOL(init_top_pgt)=ffffffff8260a000\n"),
        SynthArch::Aarch64 => s.push_str("NUMBER(VA_BITS)=48\n"),
        SynthArch::S390x => s.push_str("SYMBOL(lowcore_ptr)=1c0a0\n"),
    }
    s
}

/// A machine with pages of every kind: compressible, random, zero, excluded, a hole, and the
/// last PFN.
fn machine(arch: SynthArch) -> VmcoreBuilder {
    let mut b = VmcoreBuilder::new(arch);
    for pfn in 0..40u64 {
        match pfn % 5 {
            0 | 1 => b.page(pfn, &compressible_page(pfn, PS as usize)),
            2 => b.page(pfn, &random_page(pfn, PS as usize)),
            3 => b.page(pfn, &vec![0; PS as usize]),
            _ => b.exclude(pfn),
        };
    }
    // A hole (PFNs 40..100 are not RAM), then RAM up to the last PFN.
    for pfn in 100..110u64 {
        b.page(pfn, &compressible_page(pfn * 7, PS as usize));
    }
    b.page(299, &random_page(299, PS as usize));
    b.max_pfn(300);
    b.vmcoreinfo(&vmcoreinfo_for(arch));
    let nregs = match arch {
        SynthArch::X86_64 => 27,
        SynthArch::Aarch64 => 34,
        SynthArch::S390x => 18,
    };
    for cpu in 0..2u64 {
        let regs: Vec<u64> = (0..nregs).map(|i| 0x1000 * (cpu + 1) + i).collect();
        b.prstatus(100 + cpu as u32, &regs);
    }
    b
}

fn expected_pc_sp(arch: SynthArch, cpu: u64) -> (u64, u64) {
    let r = |i: u64| 0x1000 * (cpu + 1) + i;
    match arch {
        SynthArch::X86_64 => (r(16), r(19)),
        SynthArch::Aarch64 => (r(32), r(31)),
        SynthArch::S390x => (r(1), r(17)),
    }
}

fn arch_of(a: SynthArch) -> Arch {
    match a {
        SynthArch::X86_64 => Arch::X86_64,
        SynthArch::Aarch64 => Arch::Aarch64,
        SynthArch::S390x => Arch::S390x,
    }
}

/// Every page the builder dumped reads back exactly; excluded pages are `not-dumped`; holes and
/// pages past the end are `out-of-range`; a read across two pages works.
fn check_memory(b: &VmcoreBuilder, d: &Dump, ctx: &str) {
    let mut buf = vec![0u8; PS as usize];
    for (&pfn, page) in b.pages() {
        let addr = PhysAddr(pfn * PS);
        assert!(d.mem.is_dumped(addr), "{ctx}: pfn {pfn} not dumped");
        d.mem
            .read_phys(addr, &mut buf)
            .unwrap_or_else(|e| panic!("{ctx}: pfn {pfn}: {e}"));
        assert!(&buf == page, "{ctx}: pfn {pfn} differs");
    }
    for &pfn in b.excluded() {
        let addr = PhysAddr(pfn * PS);
        assert!(!d.mem.is_dumped(addr), "{ctx}: excluded pfn {pfn} dumped");
        if matches!(d.info.format, DumpFormat::Kdump { .. }) {
            let e = d.mem.read_phys(addr, &mut buf).unwrap_err();
            assert_eq!(e.code(), "not-dumped", "{ctx}: pfn {pfn}: {e}");
        } else {
            // ELF: inside a PT_LOAD past p_filesz: zero-filled.
            d.mem.read_phys(addr, &mut buf).unwrap();
            assert!(buf.iter().all(|&x| x == 0), "{ctx}: pfn {pfn} not zero");
        }
    }
    for pfn in [50u64, 300, 1 << 40] {
        let e = d.mem.read_phys(PhysAddr(pfn * PS), &mut buf).unwrap_err();
        assert_eq!(e.code(), "out-of-range", "{ctx}: pfn {pfn}: {e}");
    }
    // Across pages 0 and 1.
    let mut two = vec![0u8; 100];
    d.mem.read_phys(PhysAddr(PS - 50), &mut two).unwrap();
    assert_eq!(&two[..50], &b.pages()[&0][PS as usize - 50..], "{ctx}");
    assert_eq!(&two[50..], &b.pages()[&1][..50], "{ctx}");
}

fn check_info(arch: SynthArch, d: &Dump, ctx: &str, with_notes: bool) {
    assert_eq!(d.info.arch, Some(arch_of(arch)), "{ctx}: arch");
    let endian = if arch.big_endian() {
        Endian::Big
    } else {
        Endian::Little
    };
    assert_eq!(d.info.endian, endian, "{ctx}");
    assert_eq!(d.info.page_size, PS, "{ctx}");
    let vi = d.info.vmcoreinfo.as_ref().expect("vmcoreinfo");
    assert_eq!(vi.osrelease.as_deref(), Some("6.1.0-synthetic"), "{ctx}");
    assert_eq!(vi.kerneloffset, Some(0x1e000000), "{ctx}");
    if with_notes {
        assert_eq!(d.info.cpus.len(), 2, "{ctx}");
        for (i, c) in d.info.cpus.iter().enumerate() {
            assert_eq!(c.pid, 100 + i as u32, "{ctx}");
            let (pc, sp) = expected_pc_sp(arch, i as u64);
            assert_eq!((c.pc, c.sp), (Some(pc), Some(sp)), "{ctx}: cpu {i}");
        }
    }
}

#[test]
fn elf_both_endiannesses_qemu_layout_and_pn_xnum() {
    for arch in [SynthArch::X86_64, SynthArch::Aarch64, SynthArch::S390x] {
        for (phdrs_after_shdrs, pn_xnum) in [(true, false), (false, false), (true, true)] {
            let mut b = machine(arch);
            if arch == SynthArch::X86_64 {
                b.qemu_cr3(0x1234_5000).qemu_cr3(0x6789_a000);
            }
            let ctx = format!("elf {arch:?} after_shdrs={phdrs_after_shdrs} xnum={pn_xnum}");
            let bytes = b.build_elf(&ElfOpts {
                phdrs_after_shdrs,
                pn_xnum,
            });
            let d = dump::open_bytes(bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(matches!(d.info.format, DumpFormat::Elf { .. }));
            check_memory(&b, &d, &ctx);
            check_info(arch, &d, &ctx, true);
            if arch == SynthArch::X86_64 {
                assert_eq!(d.info.cpus[0].page_table_root, Some(0x1234_5000));
                assert_eq!(d.info.cpus[1].page_table_root, Some(0x6789_a000));
            }
            // Ranges are sorted even though the builder wrote PT_LOADs back to front.
            let r = d.mem.ranges();
            assert!(r.windows(2).all(|w| w[0].end <= w[1].start), "{ctx}: {r:?}");
            assert_eq!(r.first().unwrap().start, PhysAddr(0));
            assert_eq!(r.last().unwrap().end, PhysAddr(300 * PS));
        }
    }
}

#[test]
fn kdump_every_codec_and_header_version_both_endiannesses() {
    for arch in [SynthArch::X86_64, SynthArch::S390x] {
        let b = machine(arch);
        for codec in SynthCodec::ALL {
            for version in 1..=6 {
                let ctx = format!("kdump {arch:?} {codec:?} v{version}");
                let opts = KdumpOpts {
                    codec,
                    header_version: version,
                    ..Default::default()
                };
                let d = dump::open_bytes(b.build_kdump(&opts).to_vec())
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                check_memory(&b, &d, &ctx);
                match &d.info.format {
                    DumpFormat::Kdump {
                        header_version,
                        compression,
                        flattened,
                        incomplete,
                    } => {
                        assert_eq!(*header_version, version, "{ctx}");
                        assert_eq!(compression.as_deref(), codec.name(), "{ctx}");
                        assert!(!flattened && !incomplete, "{ctx}");
                    }
                    f => panic!("{ctx}: {f:?}"),
                }
                assert_eq!(d.info.phys_base, Some(0x1_0000_0000), "{ctx}");
                assert_eq!(d.info.dump_level, Some(31), "{ctx}");
                assert_eq!(d.info.header_timestamp, Some(1_700_000_000), "{ctx}");
                let uts = d.info.header_utsname.as_ref().unwrap();
                assert_eq!(uts.machine, arch.uname_machine(), "{ctx}");
                assert_eq!(uts.release, "6.1.0-synthetic", "{ctx}");
                if version >= 3 {
                    check_info(arch, &d, &ctx, version >= 4);
                } else {
                    assert!(d.info.vmcoreinfo.is_none(), "{ctx}");
                }
                let r = d.mem.ranges();
                assert_eq!(r.first().unwrap().start, PhysAddr(0), "{ctx}");
                assert_eq!(r.last().unwrap().end, PhysAddr(300 * PS), "{ctx}");
            }
        }
    }
}

#[test]
fn kdump_empty_utsname_takes_arch_from_vmcoreinfo() {
    for arch in [SynthArch::X86_64, SynthArch::Aarch64, SynthArch::S390x] {
        let b = machine(arch);
        let opts = KdumpOpts {
            empty_utsname: true,
            ..Default::default()
        };
        let d = dump::open_bytes(b.build_kdump(&opts).to_vec()).unwrap();
        assert_eq!(d.info.header_utsname.as_ref().unwrap().machine, "");
        assert_eq!(d.info.arch, Some(arch_of(arch)), "{arch:?}");
        check_info(arch, &d, &format!("{arch:?}"), true);
    }
}

#[test]
fn diskdump_signature_reads_like_kdump() {
    let b = machine(SynthArch::X86_64);
    let opts = KdumpOpts {
        signature: *b"DISKDUMP",
        codec: SynthCodec::Raw,
        ..Default::default()
    };
    let d = dump::open_bytes(b.build_kdump(&opts).to_vec()).unwrap();
    check_memory(&b, &d, "diskdump");
}

#[test]
fn flattened_every_codec_records_split_and_overwritten() {
    let b = machine(SynthArch::X86_64);
    for codec in SynthCodec::ALL {
        for record in [1000usize, 3 * 4096 + 17, 1 << 20] {
            let ctx = format!("flat {codec:?} record {record}");
            let img = b.build_kdump(&KdumpOpts {
                codec,
                ..Default::default()
            });
            let flat = VmcoreBuilder::flatten(&img, record);
            let d = dump::open_bytes(flat).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(
                matches!(
                    d.info.format,
                    DumpFormat::Kdump {
                        flattened: true,
                        ..
                    }
                ),
                "{ctx}"
            );
            check_memory(&b, &d, &ctx);
            check_info(SynthArch::X86_64, &d, &ctx, true);
        }
    }
}

#[test]
fn kdump_data_past_4_gib_in_a_sparse_file() {
    let b = machine(SynthArch::X86_64);
    let dir = tempfile::tempdir().unwrap();
    for (name, flat) in [("far.kdump", false), ("far.flat", true)] {
        let img = b.build_kdump(&KdumpOpts {
            codec: SynthCodec::Zstd,
            data_offset: Some(5 << 30),
            ..Default::default()
        });
        let path = dir.path().join(name);
        if flat {
            // The flattened stream stays small: records carry their 64-bit target offsets.
            let mut recs = vec![0u8; 4096];
            recs[..12].copy_from_slice(b"makedumpfile");
            recs[16..24].copy_from_slice(&1i64.to_be_bytes());
            recs[24..32].copy_from_slice(&1i64.to_be_bytes());
            for (off, c) in &img.chunks {
                recs.extend_from_slice(&(*off as i64).to_be_bytes());
                recs.extend_from_slice(&(c.len() as i64).to_be_bytes());
                recs.extend_from_slice(c);
            }
            recs.extend_from_slice(&[0xff; 16]);
            std::fs::write(&path, recs).unwrap();
        } else {
            img.write_sparse(&path);
            assert!(std::fs::metadata(&path).unwrap().len() > 5 << 30);
        }
        let d = dump::open(&[path]).unwrap();
        check_memory(&b, &d, name);
    }
}

#[test]
fn split_dump_pieces_merge_in_any_order() {
    let b = machine(SynthArch::X86_64);
    let dir = tempfile::tempdir().unwrap();
    for version in [2, 6] {
        let pieces = b.build_split(
            &KdumpOpts {
                header_version: version,
                codec: SynthCodec::Lzo,
                ..Default::default()
            },
            3,
        );
        let mut paths = Vec::new();
        for (i, p) in pieces.iter().enumerate().rev() {
            let path = dir.path().join(format!("v{version}-piece{i}"));
            std::fs::write(&path, p.to_vec()).unwrap();
            paths.push(path);
        }
        let d = dump::open(&paths).unwrap();
        check_memory(&b, &d, &format!("split v{version}"));
        // One piece alone reads its own range; the rest belongs to pieces not given: not dumped.
        let one = dump::open(&paths[2..]).unwrap();
        let mut buf = vec![0u8; PS as usize];
        one.mem.read_phys(PhysAddr(0), &mut buf).unwrap();
        assert_eq!(
            one.mem
                .read_phys(PhysAddr(299 * PS), &mut buf)
                .unwrap_err()
                .code(),
            "not-dumped"
        );
        assert_eq!(
            one.mem
                .read_phys(PhysAddr(300 * PS), &mut buf)
                .unwrap_err()
                .code(),
            "out-of-range"
        );
    }
    // Several files that are not split pieces: a clear error.
    let whole = dir.path().join("whole");
    std::fs::write(&whole, b.build_kdump(&KdumpOpts::default()).to_vec()).unwrap();
    let e = dump::open(&[whole.clone(), whole]).err().unwrap();
    assert_eq!(e.code(), "unsupported", "{e}");
}

/// An empty split piece starting where another piece starts (given after it) is not an overlap;
/// the PFNs no piece covers read as not dumped.
#[test]
fn split_dump_with_an_empty_piece_and_a_gap() {
    let b = machine(SynthArch::X86_64);
    let dir = tempfile::tempdir().unwrap();
    let pieces = b.build_split(&KdumpOpts::default(), 3); // PFNs 0..100, 100..200, 200..300
    let mut paths = Vec::new();
    for i in [2usize, 1, 0] {
        let mut bytes = pieces[i].to_vec();
        if i == 1 {
            // start_pfn = end_pfn = 200, in the v2 and the v6 fields of the sub-header
            for off in [16, 24, 80, 88] {
                let at = PS as usize + off;
                bytes[at..at + 8].copy_from_slice(&200u64.to_le_bytes());
            }
        }
        let path = dir.path().join(format!("piece{i}"));
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    let d = dump::open(&paths).unwrap_or_else(|e| panic!("empty piece: {e}"));
    let mut buf = vec![0u8; PS as usize];
    for (&pfn, page) in b.pages() {
        let got = d.mem.read_phys(PhysAddr(pfn * PS), &mut buf);
        if (100..200).contains(&pfn) {
            assert_eq!(got.unwrap_err().code(), "not-dumped", "pfn {pfn}");
        } else {
            got.unwrap_or_else(|e| panic!("pfn {pfn}: {e}"));
            assert_eq!(&buf, page, "pfn {pfn}");
        }
    }
}

/// A page set in bitmap 2 (dumped) but not in bitmap 1 (RAM) reads, and `ranges()` holds it.
#[test]
fn kdump_page_dumped_but_not_marked_ram() {
    let b = machine(SynthArch::X86_64);
    let img = b.build_kdump(&KdumpOpts::default());
    let pfn = 102u64; // dumped, alone in its bitmap byte's run: 100..110 are RAM
    let mut bytes = img.to_vec();
    let at = (img.bitmap1 + pfn / 8) as usize;
    bytes[at] &= !(1 << (pfn % 8));
    let d = dump::open_bytes(bytes).unwrap();
    let addr = PhysAddr(pfn * PS);
    assert!(
        d.mem
            .ranges()
            .iter()
            .any(|r| r.start <= addr && addr < r.end),
        "{:?}",
        d.mem.ranges()
    );
    assert!(d.mem.is_dumped(addr));
    let mut buf = vec![0u8; PS as usize];
    d.mem.read_phys(addr, &mut buf).unwrap();
    assert_eq!(&buf, &b.pages()[&pfn]);
}

#[test]
fn incomplete_dump_reports_missing_pages_as_not_dumped() {
    let b = machine(SynthArch::X86_64);
    let img = b.build_kdump(&KdumpOpts {
        incomplete_drop: Some(3),
        ..Default::default()
    });
    let dropped: Vec<u64> = img.desc_pfns[img.desc_pfns.len() - 3..].to_vec();
    let d = dump::open_bytes(img.to_vec()).unwrap();
    assert!(matches!(
        d.info.format,
        DumpFormat::Kdump {
            incomplete: true,
            ..
        }
    ));
    let mut buf = vec![0u8; PS as usize];
    for (&pfn, page) in b.pages() {
        let r = d.mem.read_phys(PhysAddr(pfn * PS), &mut buf);
        if dropped.contains(&pfn) {
            assert_eq!(r.unwrap_err().code(), "not-dumped", "pfn {pfn}");
        } else {
            r.unwrap();
            assert!(&buf == page, "pfn {pfn}");
        }
    }
}

#[test]
fn concurrent_reads_share_the_page_cache() {
    let b = machine(SynthArch::X86_64);
    let d = dump::open_bytes(
        b.build_kdump(&KdumpOpts {
            codec: SynthCodec::Snappy,
            ..Default::default()
        })
        .to_vec(),
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (mem, pages) = (d.mem.clone(), b.pages());
            s.spawn(move || {
                let mut buf = vec![0u8; PS as usize];
                for round in 0..20 {
                    for (&pfn, page) in pages.iter().skip((t + round) % 3) {
                        mem.read_phys(PhysAddr(pfn * PS), &mut buf).unwrap();
                        assert!(&buf == page);
                    }
                }
            });
        }
    });
}

/// Regenerates the fuzz seed corpora (small dumps with 1 KiB pages):
/// `cargo test --test dump_synth -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let small = |arch: SynthArch| {
        let mut b = VmcoreBuilder::new(arch);
        b.page_size = 1024;
        b.write_phys(0, &compressible_page(1, 1024));
        b.write_phys(1024, &random_page(2, 1024));
        b.write_phys(5 * 1024, &compressible_page(3, 1024));
        b.exclude(3);
        b.vmcoreinfo("OSRELEASE=6.1.0\nPAGESIZE=1024\nSYMBOL(init_top_pgt)=ffffffff8260a000\n");
        b.prstatus(1, &[0x1111; 18]);
        b
    };
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let x86 = small(SynthArch::X86_64);
    let s390 = small(SynthArch::S390x);
    write("elf", "qemu-le", &x86.build_elf(&ElfOpts::default()));
    write(
        "elf",
        "xnum-be",
        &s390.build_elf(&ElfOpts {
            phdrs_after_shdrs: true,
            pn_xnum: true,
        }),
    );
    for codec in SynthCodec::ALL {
        let opts = KdumpOpts {
            codec,
            ..Default::default()
        };
        let name = codec.name().unwrap_or("raw");
        write("kdump", name, &x86.build_kdump(&opts).to_vec());
        write(
            "flattened",
            name,
            &VmcoreBuilder::flatten(&x86.build_kdump(&opts), 700),
        );
    }
    for v in [1, 3, 5] {
        let opts = KdumpOpts {
            header_version: v,
            ..Default::default()
        };
        write(
            "kdump",
            &format!("be-v{v}"),
            &s390.build_kdump(&opts).to_vec(),
        );
    }
    write(
        "vmcoreinfo",
        "x86_64",
        b"OSRELEASE=6.1.0-28-cloud-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8260a000\n\
          OFFSET(list_head.next)=0\nSIZE(page)=64\nLENGTH(free_area)=11\nNUMBER(phys_base)=0\n\
          KERNELOFFSET=1e000000\nCRASHTIME=1700000000\n",
    );
    write(
        "vmcoreinfo",
        "aarch64",
        b"OSRELEASE=6.1.0\nNUMBER(VA_BITS)=48\nNUMBER(kimage_voffset)=0xffff800008000000\n",
    );
}

/// Where each dumped page whose content is unique in `file` lies in it (searched in the bytes,
/// not asked of the reader); zero pages and other repeated content are left out.
fn unique_page_offsets(b: &VmcoreBuilder, file: &[u8]) -> Vec<(u64, usize)> {
    let find = |page: &[u8]| -> Vec<usize> {
        file.windows(page.len())
            .enumerate()
            .filter(|(_, w)| *w == page)
            .map(|(i, _)| i)
            .take(2)
            .collect()
    };
    b.pages()
        .iter()
        .filter(|(_, p)| p.iter().any(|&x| x != 0))
        .filter_map(|(&pfn, p)| match find(p)[..] {
            [one] => Some((pfn, one)),
            _ => None,
        })
        .collect()
}

/// Reads `pfn`: `Ok(true)` if it reads the builder's bytes, `Ok(false)` if not dumped; any other
/// outcome (an error of another kind, wrong bytes) fails the test.
fn read_or_not_dumped(b: &VmcoreBuilder, d: &Dump, pfn: u64, ctx: &str) -> bool {
    let mut buf = vec![0u8; PS as usize];
    let addr = PhysAddr(pfn * PS);
    match d.mem.read_phys(addr, &mut buf) {
        Ok(()) => {
            assert!(buf == b.pages()[&pfn], "{ctx}: pfn {pfn} reads wrong bytes");
            assert!(
                d.mem.is_dumped(addr),
                "{ctx}: pfn {pfn} reads but is not dumped"
            );
            true
        }
        Err(e) => {
            assert_eq!(e.code(), "not-dumped", "{ctx}: pfn {pfn}: {e}");
            assert!(
                !d.mem.is_dumped(addr),
                "{ctx}: pfn {pfn} fails but is dumped"
            );
            false
        }
    }
}

/// An ELF cut inside a segment: the pages before the cut read, the rest are not dumped, and the
/// truncation is reported with the sizes the headers imply.
#[test]
fn elf_cut_inside_a_segment_reads_the_present_part() {
    let b = machine(SynthArch::X86_64);
    let full = b.build_elf(&ElfOpts::default());
    let offsets = unique_page_offsets(&b, &full);
    let last = offsets.iter().map(|&(_, o)| o).max().unwrap();
    let first = offsets.iter().map(|&(_, o)| o).min().unwrap();
    assert!(offsets.len() > 20, "{}", offsets.len());
    // Mid-page, mid-file, and just past the first page's data.
    for cut in [last + 100, (first + last) / 2 + 1234, first + PS as usize] {
        let ctx = format!("elf cut at {cut:#x}");
        let d = dump::open_bytes(full[..cut].to_vec()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let t = d
            .info
            .health
            .truncated
            .unwrap_or_else(|| panic!("{ctx}: no truncation"));
        assert_eq!(t.expected_size, Some(full.len() as u64), "{ctx}");
        assert_eq!(t.actual_size, cut as u64, "{ctx}");
        let mut lost = 0;
        for &(pfn, off) in &offsets {
            let read = read_or_not_dumped(&b, &d, pfn, &ctx);
            assert_eq!(
                read,
                off + PS as usize <= cut,
                "{ctx}: pfn {pfn} at {off:#x}"
            );
            lost += !read as u64;
        }
        assert!(
            lost > 0 && t.pages_lost >= lost,
            "{ctx}: {t:?}, {lost} lost"
        );
        // Notes and VMCOREINFO sit before the data: still there.
        assert_eq!(d.info.cpus.len(), 2, "{ctx}");
        assert!(d.info.vmcoreinfo.is_some(), "{ctx}");
    }
    // The complete file reports nothing.
    assert_eq!(dump::open_bytes(full).unwrap().info.health.truncated, None);
}

/// The file offset and size of each dumped page's data, from the image's own descriptors.
fn kdump_data_extents(img: &common::vmcore::KdumpImage) -> Vec<(u64, u64, u64)> {
    let bytes = img.to_vec();
    let le = |at: u64, n: usize| {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&bytes[at as usize..at as usize + n]);
        u64::from_le_bytes(v)
    };
    img.desc_pfns
        .iter()
        .enumerate()
        .map(|(i, &pfn)| {
            let d = img.desc_table + 24 * i as u64;
            (pfn, le(d, 8), le(d + 8, 4))
        })
        .collect()
}

/// A kdump file cut inside its page data, its descriptors or its bitmaps: what is there reads,
/// the rest is not dumped, and the loss is counted exactly (the builder shares no zero page).
#[test]
fn kdump_cut_inside_the_page_data_descriptors_and_bitmaps() {
    let b = machine(SynthArch::X86_64);
    let img = b.build_kdump(&KdumpOpts::default());
    let full = img.to_vec();
    let extents = kdump_data_extents(&img);
    let data_start = extents.iter().map(|e| e.1).min().unwrap();
    let desc_mid = img.desc_table + 24 * 5 + 7;
    let cuts = [
        full.len() as u64 - 1,
        (data_start + full.len() as u64) / 2,
        data_start + 10,
        desc_mid,
        img.bitmap2 + 3,
    ];
    for cut in cuts {
        let ctx = format!("kdump cut at {cut:#x}");
        let d = dump::open_bytes(full[..cut as usize].to_vec())
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let mut lost = 0;
        for (i, &(pfn, off, size)) in extents.iter().enumerate() {
            let desc_end = img.desc_table + 24 * (i as u64 + 1);
            let bit_present = img.bitmap2 + pfn / 8 < cut;
            let present = bit_present && desc_end <= cut && off + size <= cut;
            assert_eq!(
                read_or_not_dumped(&b, &d, pfn, &ctx),
                present,
                "{ctx}: pfn {pfn}"
            );
            lost += !present as u64;
        }
        let t = d
            .info
            .health
            .truncated
            .unwrap_or_else(|| panic!("{ctx}: no truncation"));
        assert_eq!(t.actual_size, cut, "{ctx}");
        assert!(t.expected_size.unwrap() > cut, "{ctx}: {t:?}");
        let desc_end = img.desc_table + 24 * extents.len() as u64;
        if cut >= img.desc_table {
            assert_eq!(t.pages_lost, lost, "{ctx}: {t:?}");
            // Without the last descriptor, the end of the table is all the headers tell.
            let expected = if cut >= desc_end {
                full.len() as u64
            } else {
                desc_end
            };
            assert_eq!(t.expected_size, Some(expected), "{ctx}");
        } else {
            // Cut inside the bitmap: every bit lost counts, RAM or not (an upper bound).
            assert!(t.pages_lost >= lost, "{ctx}: {t:?}");
        }
        assert_eq!(d.info.cpus.len(), 2, "{ctx}: the notes precede the bitmaps");
    }
    assert_eq!(dump::open_bytes(full).unwrap().info.health.truncated, None);
}

/// A flattened stream cut inside a record: the records before the cut (and the part of the cut
/// record that is there) read, pages never written are not dumped.
#[test]
fn flattened_cut_mid_record() {
    let b = machine(SynthArch::X86_64);
    let img = b.build_kdump(&KdumpOpts::default());
    let extents = kdump_data_extents(&img);
    let record = 1000usize;
    let flat = VmcoreBuilder::flatten_in_order(&img, record);
    // The stream offset of kdump offset `k`: the 4096-byte header, then per record 16 + record.
    let rec = record as u64;
    let stream_of = |k: u64| 4096 + (k / rec) * (16 + rec) + 16 + k % rec;
    let data_start = extents.iter().map(|e| e.1).min().unwrap();
    for kcut in [img.len - 1500, (data_start + img.len) / 2] {
        let cut = stream_of(kcut);
        let ctx = format!("flattened cut at stream {cut:#x} (kdump {kcut:#x})");
        let d = dump::open_bytes(flat[..cut as usize].to_vec())
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let (mut read, mut lost) = (0, 0);
        for &(pfn, off, size) in &extents {
            let present = off + size <= kcut;
            assert_eq!(
                read_or_not_dumped(&b, &d, pfn, &ctx),
                present,
                "{ctx}: pfn {pfn}"
            );
            if present { read += 1 } else { lost += 1 }
        }
        assert!(read > 0 && lost > 0, "{ctx}");
        let t = d
            .info
            .health
            .truncated
            .unwrap_or_else(|| panic!("{ctx}: no truncation"));
        assert_eq!(t.actual_size, cut, "{ctx}");
        // The cut record's header says how long the stream should have been at least.
        let r = kcut / record as u64;
        let rec_len = (record as u64).min(img.len - r * record as u64);
        let rec_end = 4096 + r * (16 + record as u64) + 16 + rec_len;
        assert_eq!(t.expected_size, Some(rec_end), "{ctx}");
        assert_eq!(t.pages_lost, lost, "{ctx}: {t:?}");
    }
    // Cut at a record boundary: no end marker, so cut, at an unknown size.
    let boundary = (data_start / rec + 3) * rec;
    let at = stream_of(boundary) - 16;
    let d = dump::open_bytes(flat[..at as usize].to_vec()).unwrap();
    let t = d
        .info
        .health
        .truncated
        .expect("a stream without end marker is cut");
    assert_eq!((t.expected_size, t.actual_size), (None, at));
    assert!(t.pages_lost > 0, "{t:?}");
}

/// A split dump given without its middle piece: the other pieces read, the missing piece's PFNs
/// are not dumped, and the truncation says a piece is missing (no expected size).
#[test]
fn split_dump_missing_its_middle_piece() {
    let b = machine(SynthArch::X86_64);
    let dir = tempfile::tempdir().unwrap();
    let pieces = b.build_split(&KdumpOpts::default(), 3); // PFNs 0..100, 100..200, 200..300
    let mut paths = Vec::new();
    for i in [2usize, 0] {
        let path = dir.path().join(format!("piece{i}"));
        std::fs::write(&path, pieces[i].to_vec()).unwrap();
        paths.push(path);
    }
    let d = dump::open(&paths).unwrap();
    for &pfn in b.pages().keys() {
        let read = read_or_not_dumped(&b, &d, pfn, "split without piece 1");
        assert_eq!(read, !(100..200).contains(&pfn), "pfn {pfn}");
    }
    let t = d
        .info
        .health
        .truncated
        .expect("a missing piece is reported");
    assert_eq!(t.expected_size, None);
    assert_eq!(t.pages_lost, 100, "{t:?}");
    let size = pieces[0].len + pieces[2].len;
    assert_eq!(t.actual_size, size);
    // All three pieces: complete.
    let mut all = paths.clone();
    let p1 = dir.path().join("piece1");
    std::fs::write(&p1, pieces[1].to_vec()).unwrap();
    all.push(p1);
    assert_eq!(dump::open(&all).unwrap().info.health.truncated, None);
    // A lone piece knows the others are missing.
    let one = dump::open(&paths[1..]).unwrap();
    assert_eq!(one.info.health.truncated.map(|t| t.pages_lost), Some(200));
}
