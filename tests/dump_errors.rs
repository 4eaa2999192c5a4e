//! Bad input gives a clear typed error, never a panic: non-dumps, truncated files, corrupt
//! descriptors, undecodable pages, and byte flips anywhere in a dump.

mod common;

use std::io::Write;

use common::vmcore::{
    ElfOpts, KdumpImage, KdumpOpts, SynthArch, SynthCodec, VmcoreBuilder, compressible_page,
    random_page,
};
use vmcore_report::addr::PhysAddr;
use vmcore_report::dump::{self, DumpError};

const PS: u64 = 4096;

fn machine() -> VmcoreBuilder {
    let mut b = VmcoreBuilder::new(SynthArch::X86_64);
    for pfn in 0..24u64 {
        if pfn % 2 == 0 {
            b.page(pfn, &compressible_page(pfn, PS as usize));
        } else {
            b.page(pfn, &random_page(pfn, PS as usize));
        }
    }
    b.exclude(24);
    b.vmcoreinfo("OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8260a000\n");
    b.prstatus(1, &[7; 27]);
    b
}

fn err(bytes: Vec<u8>) -> DumpError {
    match dump::open_bytes(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Reads every page of the builder's map (and a few more); errors are fine, panics are not.
fn read_all(d: &dump::Dump) -> Vec<Result<(), DumpError>> {
    let mut buf = vec![0u8; PS as usize];
    (0..30u64)
        .map(|pfn| d.mem.read_phys(PhysAddr(pfn * PS), &mut buf))
        .collect()
}

#[test]
fn non_dumps_are_named() {
    let e = err(Vec::new());
    assert_eq!(e.code(), "not-a-dump");
    assert!(e.to_string().contains("empty"), "{e}");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"not a vmcore").unwrap();
    let e = err(gz.finish().unwrap());
    assert!(e.to_string().contains("gzip"), "{e}");

    let e = err(b"hello world, this is text".to_vec());
    assert_eq!(e.code(), "not-a-dump");
    assert!(e.to_string().contains("unknown format"), "{e}");

    // An ELF executable: this test binary itself.
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let e = err(exe);
    assert_eq!(e.code(), "not-a-dump");
    assert!(e.to_string().contains("executable"), "{e}");

    // ELF32 core.
    let mut elf32 = vec![0u8; 52];
    elf32[..4].copy_from_slice(b"\x7fELF");
    elf32[4] = 1;
    elf32[5] = 1;
    let e = err(elf32);
    assert_eq!(e.code(), "unsupported");
    assert!(e.to_string().contains("ELF32"), "{e}");

    // A truncated header of each kind.
    let e = err(b"\x7fEL".to_vec());
    assert!(e.to_string().contains("truncated header"), "{e}");
    let e = err(b"\x7fELF\x02\x01\x01".to_vec());
    assert_eq!(e.code(), "truncated", "{e}");
    let e = err(b"KDUMP   \x06\0\0\0".to_vec());
    assert_eq!(e.code(), "truncated", "{e}");
    let e = err(b"makedumpfile\0\0\0\0".to_vec());
    assert_eq!(e.code(), "truncated", "{e}");
}

#[test]
fn truncated_files_give_errors_not_panics() {
    let b = machine();
    let elf = b.build_elf(&ElfOpts::default());
    let kd = b.build_kdump(&KdumpOpts::default()).to_vec();
    let flat = VmcoreBuilder::flatten(&b.build_kdump(&KdumpOpts::default()), 777);
    for (name, full) in [("elf", elf), ("kdump", kd), ("flat", flat)] {
        for cut in (0..full.len()).step_by(97).chain([full.len() - 1]) {
            let bytes = full[..cut].to_vec();
            if let Ok(d) = dump::open_bytes(bytes) {
                let results = read_all(&d);
                // The last dumped page's bytes are gone in every cut before the end.
                if cut < full.len() - PS as usize && name != "flat" {
                    assert!(
                        results.iter().any(|r| r.is_err()),
                        "{name} cut at {cut}: every page still reads"
                    );
                }
            }
        }
    }
    // An ELF whose PT_LOAD goes past the end opens; the lost page is not dumped and the
    // truncation is reported.
    let elf = b.build_elf(&ElfOpts::default());
    let d = dump::open_bytes(elf[..elf.len() - 10].to_vec()).unwrap();
    let t = d.info.health.truncated.expect("truncation reported");
    assert_eq!(t.expected_size, Some(elf.len() as u64));
    assert_eq!((t.actual_size, t.pages_lost), (elf.len() as u64 - 10, 1));
    let lost: Vec<_> = read_all(&d).into_iter().filter_map(|r| r.err()).collect();
    assert!(lost.iter().any(|e| e.code() == "not-dumped"), "{lost:?}");
    // Cut inside the program header table: nothing can be placed, a clear error.
    let e = err(elf[..70].to_vec());
    assert_eq!(e.code(), "truncated", "{e}");
}

fn kdump_image(codec: SynthCodec) -> (VmcoreBuilder, KdumpImage) {
    let b = machine();
    let img = b.build_kdump(&KdumpOpts {
        codec,
        ..Default::default()
    });
    (b, img)
}

fn patch(bytes: &mut [u8], at: u64, with: &[u8]) {
    bytes[at as usize..at as usize + with.len()].copy_from_slice(with);
}

fn read_pfn(bytes: Vec<u8>, pfn: u64) -> Result<(), DumpError> {
    let d = dump::open_bytes(bytes).unwrap();
    let mut buf = vec![0u8; PS as usize];
    d.mem.read_phys(PhysAddr(pfn * PS), &mut buf)
}

#[test]
fn corrupt_descriptors_are_reported_with_their_offset() {
    let (_, img) = kdump_image(SynthCodec::Zlib);
    let desc = img.desc_offset(2);

    // Offset far past the end of the file: the page is not in the file, as in a truncated one.
    let e = read_pfn(img.with_desc(2, Some(1 << 50), None, None), 2).unwrap_err();
    assert_eq!(e.code(), "not-dumped", "{e}");

    // Size larger than a page.
    let e = read_pfn(img.with_desc(2, None, Some(PS as u32 * 2), None), 2).unwrap_err();
    assert_eq!(e.code(), "corrupt", "{e}");
    assert!(e.to_string().contains(&format!("{desc:#x}")), "{e}");

    // Size zero in a complete dump.
    let bytes = img.with_desc(2, None, Some(0), None);
    assert_eq!(read_pfn(bytes, 2).unwrap_err().code(), "corrupt");

    // Two codec flags at once.
    let bytes = img.with_desc(2, None, None, Some(0x3));
    assert_eq!(read_pfn(bytes, 2).unwrap_err().code(), "corrupt");

    // The same in a big-endian (s390x) dump, where the descriptor is big-endian too.
    let mut be = VmcoreBuilder::new(SynthArch::S390x);
    be.write_phys(0, &compressible_page(9, PS as usize));
    let img = be.build_kdump(&KdumpOpts::default());
    assert!(read_pfn(img.to_vec(), 0).is_ok());
    let e = read_pfn(img.with_desc(0, None, Some(PS as u32 * 2), None), 0).unwrap_err();
    assert_eq!(e.code(), "corrupt", "{e}");
    let e = read_pfn(img.with_garbage_page(0), 0).unwrap_err();
    assert_eq!(e.code(), "decompress", "{e}");

    // A raw page shorter than a page.
    let (_, raw) = kdump_image(SynthCodec::Raw);
    let bytes = raw.with_desc(3, None, Some(100), None);
    assert_eq!(read_pfn(bytes, 3).unwrap_err().code(), "corrupt");
}

#[test]
fn undecodable_pages_are_decompress_errors_for_every_codec() {
    for codec in [
        SynthCodec::Zlib,
        SynthCodec::Lzo,
        SynthCodec::Snappy,
        SynthCodec::Zstd,
    ] {
        let (_, img) = kdump_image(codec);
        let bad = img.with_garbage_page(0);
        let e = read_pfn(bad, 0).unwrap_err();
        assert_eq!(e.code(), "decompress", "{codec:?}: {e}");
    }
}

#[test]
fn pages_decompressing_to_more_or_less_than_a_page_are_refused() {
    let (_, img) = kdump_image(SynthCodec::Zlib);
    let desc = img.desc_offset(0);
    for len in [PS as usize * 2, PS as usize - 1, 1 << 20] {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; len]).unwrap();
        let payload = z.finish().unwrap();
        assert!(payload.len() < PS as usize);
        let mut bytes = img.to_vec();
        // Put the payload at the end of the file and point the descriptor at it.
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&payload);
        patch(&mut bytes, desc, &at.to_le_bytes());
        patch(&mut bytes, desc + 8, &(payload.len() as u32).to_le_bytes());
        let e = read_pfn(bytes, 0).unwrap_err();
        assert_eq!(e.code(), "decompress", "{len}: {e}");
    }
}

#[test]
fn bitmap_claiming_more_pages_than_descriptors() {
    let (b, img) = kdump_image(SynthCodec::Zlib);
    // Every PFN marked dumped: ranks now point past the real descriptors, into page data.
    let bytes = img.with_bitmap_mismatch();
    let d = dump::open_bytes(bytes).unwrap();
    let mut buf = vec![0u8; PS as usize];
    let mut errors = 0;
    for pfn in 0..b.pages().len() as u64 + 100 {
        if let Err(e) = d.mem.read_phys(PhysAddr(pfn * PS), &mut buf) {
            assert!(
                matches!(
                    e.code(),
                    "corrupt" | "truncated" | "decompress" | "out-of-range"
                ),
                "{e}"
            );
            errors += 1;
        }
    }
    assert!(errors > 0);
}

/// Deterministic byte flips over every part of each format: opening and reading never panic.
#[test]
fn byte_flips_never_panic() {
    let b = machine();
    let inputs = [
        ("elf", b.build_elf(&ElfOpts::default())),
        (
            "elf-be",
            VmcoreBuilder::new(SynthArch::S390x)
                .write_phys(0, &compressible_page(1, 8192))
                .vmcoreinfo("OSRELEASE=x\n")
                .prstatus(1, &[1; 18])
                .build_elf(&ElfOpts {
                    phdrs_after_shdrs: true,
                    pn_xnum: true,
                }),
        ),
        ("kdump-zlib", b.build_kdump(&KdumpOpts::default()).to_vec()),
        (
            "kdump-lzo",
            b.build_kdump(&KdumpOpts {
                codec: SynthCodec::Lzo,
                ..Default::default()
            })
            .to_vec(),
        ),
        (
            "kdump-snappy-v3",
            b.build_kdump(&KdumpOpts {
                codec: SynthCodec::Snappy,
                header_version: 3,
                ..Default::default()
            })
            .to_vec(),
        ),
        (
            "flat-zstd",
            VmcoreBuilder::flatten(
                &b.build_kdump(&KdumpOpts {
                    codec: SynthCodec::Zstd,
                    ..Default::default()
                }),
                1500,
            ),
        ),
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for (name, full) in inputs {
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bytes = full.clone();
            // Bias flips toward the headers, where most structure is.
            let pos = if x & 1 == 0 {
                (x >> 8) as usize % bytes.len().min(16384)
            } else {
                (x >> 8) as usize % bytes.len()
            };
            bytes[pos] ^= (x >> 3) as u8 | 1;
            if let Ok(d) = dump::open_bytes(bytes) {
                let _ = read_all(&d);
                let _ = d.mem.ranges();
                let _ = d.mem.is_dumped(PhysAddr(u64::MAX));
                let mut big = vec![0u8; 3 * PS as usize];
                let _ = d.mem.read_phys(PhysAddr(u64::MAX - 10), &mut big);
            }
            let _ = name;
        }
    }
}

/// Counts and sizes a header claims but the file does not hold drive no allocation or loop:
/// a kdump file claiming 256 MiB bitmaps for 2^40 PFNs, an ELF segment of 2^50 file bytes and a
/// flattened record of 2^62 bytes, each a few KiB long, open at once as truncated dumps.
#[test]
fn hostile_sizes_in_short_files_open_quickly_as_truncated() {
    let b = machine();
    let start = std::time::Instant::now();

    let img = b.build_kdump(&KdumpOpts::default());
    let mut kd = img.to_vec();
    patch(&mut kd, 436, &(2u32 * 65536).to_le_bytes()); // bitmap_blocks: 256 MiB each
    patch(&mut kd, PS + 96, &(1u64 << 40).to_le_bytes()); // max_mapnr_64
    let d = dump::open_bytes(kd).unwrap();
    let t = d.info.health.truncated.expect("kdump truncation");
    assert!(t.expected_size.unwrap() > t.actual_size, "{t:?}");
    // Bitmap 1 now spans the rest of the file: its runs are bounded by the bytes present.
    assert!(d.mem.ranges().len() as u64 <= t.actual_size * 4, "{t:?}");
    read_all(&d);

    let mut elf = b.build_elf(&ElfOpts::default());
    // The first program header after the PT_NOTE (QEMU layout or not, e_phoff says where).
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap());
    let ph = phoff + 56;
    assert_eq!(elf[ph as usize], 1, "a PT_LOAD");
    patch(&mut elf, ph + 32, &(1u64 << 50).to_le_bytes()); // p_filesz
    patch(&mut elf, ph + 40, &(1u64 << 50).to_le_bytes()); // p_memsz
    let d = dump::open_bytes(elf).unwrap();
    let t = d.info.health.truncated.expect("elf truncation");
    assert!(t.pages_lost > (1 << 38) - 64, "{t:?}");
    read_all(&d);

    let mut flat = VmcoreBuilder::flatten(&b.build_kdump(&KdumpOpts::default()), 777);
    let end = flat.len();
    flat.truncate(end - 16); // drop the end marker
    flat.extend_from_slice(&(1i64 << 20).to_be_bytes()); // past the kdump file's bytes
    flat.extend_from_slice(&(1i64 << 62).to_be_bytes());
    flat.extend_from_slice(&[0xa5; 100]);
    let d = dump::open_bytes(flat).unwrap();
    let t = d.info.health.truncated.expect("flattened truncation");
    assert!(t.expected_size.unwrap() > 1 << 62, "{t:?}");
    read_all(&d);

    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}

/// Inputs the fuzz targets found crashing, replayed: kdump files whose dumped bitmap is cut short
/// while `max_mapnr` reaches past it (the rank of a PFN past the bytes held went back to zero, and
/// the descriptor count underflowed).
#[test]
fn fuzz_regressions_open_and_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(d) = dump::open_bytes(std::fs::read(&path).unwrap()) {
            read_all(&d);
        }
        n += 1;
    }
    assert!(n >= 2, "{n} inputs in {}", dir.display());
}
