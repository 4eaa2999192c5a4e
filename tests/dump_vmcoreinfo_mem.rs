//! VMCOREINFO recovered from memory (`src/dump/vmcoreinfo_mem.rs`) on synthetic dumps without the
//! note: the kernel's two copies laid out here as `crash_save_vmcoreinfo_init()` and
//! `update_vmcoreinfo_note()` lay them out (a page starting with the text; a page starting with an
//! `Elf_Nhdr`, the name `VMCOREINFO\0` padded to 12 bytes, then the text), beside decoys.

mod common;

use common::vmcore::{ElfOpts, KdumpOpts, SynthArch, VmcoreBuilder};
use vmcore_report::dump::vmcoreinfo_mem::{self, MemCopy, SearchLimits};
use vmcore_report::dump::{self, Dump, VmcoreinfoSource};

const X86_TEXT: &str = "OSRELEASE=6.1.0-synthetic\nBUILD-ID=0123456789abcdef0123456789abcdef01234567\n\
PAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a15380\nOFFSET(uts_namespace.name)=4\n\
NUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=1e000000\n";

/// A page holding the kernel's note buffer for `text` (little-endian `Elf_Nhdr`).
fn note_page(text: &str) -> Vec<u8> {
    let mut p = vec![0u8; 4096];
    p[0..4].copy_from_slice(&11u32.to_le_bytes());
    p[4..8].copy_from_slice(&(text.len() as u32).to_le_bytes());
    p[8..12].copy_from_slice(&0u32.to_le_bytes());
    p[12..23].copy_from_slice(b"VMCOREINFO\0");
    p[24..24 + text.len()].copy_from_slice(text.as_bytes());
    p
}

/// A page starting with `text` (the kernel's data page, or a decoy).
fn text_page(text: &str) -> Vec<u8> {
    let mut p = vec![0u8; 4096];
    p[..text.len()].copy_from_slice(text.as_bytes());
    p
}

/// An x86_64 machine of 64 pages without a VMCOREINFO note: decoys low (the `.rodata` format
/// string at a page start, an arm64 kernel's text, a note header whose length disagrees with its
/// text), then the note buffer at page `note` and the data page at page `data` when given.
fn machine(note: Option<u64>, data: Option<u64>) -> VmcoreBuilder {
    let mut b = VmcoreBuilder::new(SynthArch::X86_64);
    b.max_pfn(64);
    b.page(1, &text_page("OSRELEASE=%s\n"));
    b.page(
        2,
        &text_page("OSRELEASE=6.1.0-arm\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffff80000a000000\nNUMBER(VA_BITS)=48\n"),
    );
    let mut bad = note_page(X86_TEXT);
    bad[4..8].copy_from_slice(&((X86_TEXT.len() + 40) as u32).to_le_bytes());
    b.page(3, &bad);
    for pfn in 4..64 {
        b.page(pfn, &common::vmcore::compressible_page(pfn, 4096));
    }
    if let Some(n) = note {
        b.page(n, &note_page(X86_TEXT));
    }
    if let Some(d) = data {
        b.page(d, &text_page(X86_TEXT));
    }
    b.prstatus(1, &[0; 27]);
    b
}

fn both_formats(b: &VmcoreBuilder) -> Vec<(&'static str, Dump)> {
    vec![
        (
            "elf",
            dump::open_bytes(b.build_elf(&ElfOpts::default())).unwrap(),
        ),
        (
            "kdump",
            dump::open_bytes(b.build_kdump(&KdumpOpts::default()).to_vec()).unwrap(),
        ),
    ]
}

#[test]
fn the_note_buffer_is_found_and_preferred_over_the_data_page() {
    for (note, data) in [(10, 20), (30, 12)] {
        for (fmt, d) in both_formats(&machine(Some(note), Some(data))) {
            let ctx = format!("{fmt} note@{note} data@{data}");
            let vi = d.info.vmcoreinfo.as_ref().expect(&ctx);
            assert_eq!(vi.osrelease.as_deref(), Some("6.1.0-synthetic"), "{ctx}");
            assert_eq!(vi.kerneloffset, Some(0x1e00_0000), "{ctx}");
            assert_eq!(
                vi.symbol("init_uts_ns"),
                Some(0xffff_ffff_82a1_5380),
                "{ctx}"
            );
            let VmcoreinfoSource::Memory {
                paddr,
                copy,
                searched_bytes,
                ..
            } = d.info.vmcoreinfo_source
            else {
                panic!("{ctx}: {:?}", d.info.vmcoreinfo_source);
            };
            assert_eq!(
                (paddr, copy),
                (note * 4096 + 24, MemCopy::NoteBuffer),
                "{ctx}"
            );
            // it stopped at the second copy, not at the end of memory
            assert!(
                searched_bytes <= (note.max(data) + 1) * 4096,
                "{ctx}: {searched_bytes}"
            );
        }
    }
}

#[test]
fn the_data_page_alone_is_used() {
    for (fmt, d) in both_formats(&machine(None, Some(40))) {
        assert_eq!(
            d.info
                .vmcoreinfo
                .as_ref()
                .and_then(|v| v.osrelease.as_deref()),
            Some("6.1.0-synthetic"),
            "{fmt}"
        );
        assert!(
            matches!(
                d.info.vmcoreinfo_source,
                VmcoreinfoSource::Memory {
                    paddr: 0x28000,
                    copy: MemCopy::DataPage,
                    ..
                }
            ),
            "{fmt}: {:?}",
            d.info.vmcoreinfo_source
        );
    }
}

#[test]
fn decoys_alone_give_no_vmcoreinfo() {
    for (fmt, d) in both_formats(&machine(None, None)) {
        assert!(
            d.info.vmcoreinfo.is_none(),
            "{fmt}: {:?}",
            d.info.vmcoreinfo
        );
        assert_eq!(d.info.vmcoreinfo_source, VmcoreinfoSource::Absent, "{fmt}");
    }
}

#[test]
fn the_search_keeps_to_its_byte_limit() {
    let b = machine(Some(50), None);
    let d = dump::open_bytes(b.build_elf(&ElfOpts::default())).unwrap();
    assert!(d.info.vmcoreinfo.is_some());
    let arch = d.info.arch;
    // the pages from the start of memory up to the note's, excluded
    let before = 50 * 4096 - d.mem.ranges()[0].start.0;
    let small = SearchLimits {
        max_bytes: before,
        ..SearchLimits::default()
    };
    assert!(vmcoreinfo_mem::search(&*d.mem, arch, d.info.endian, &small).is_none());
    let enough = SearchLimits {
        max_bytes: before + 4096,
        ..SearchLimits::default()
    };
    assert!(vmcoreinfo_mem::search(&*d.mem, arch, d.info.endian, &enough).is_some());
    let no_time = SearchLimits {
        max_time: std::time::Duration::ZERO,
        ..SearchLimits::default()
    };
    assert!(vmcoreinfo_mem::search(&*d.mem, arch, d.info.endian, &no_time).is_none());
}

#[test]
fn a_dump_with_the_note_does_not_search() {
    let mut b = machine(None, None);
    b.vmcoreinfo(X86_TEXT);
    for (fmt, d) in both_formats(&b) {
        assert_eq!(d.info.vmcoreinfo_source, VmcoreinfoSource::Note, "{fmt}");
    }
}
