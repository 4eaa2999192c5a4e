//! An s390x dump without a VMCOREINFO note (what QEMU writes: its vmcoreinfo device needs
//! fw_cfg, which s390x lacks): the kernel's VMCOREINFO is found through the absolute lowcore,
//! `os_info` entry 0 (checksummed) first, else the ELF note `vmcore_info` points at. The dumps
//! are synthetic ELF files (tests/common/vmcore.rs); the layouts and checksums are written here
//! from arch/s390/include/asm/{lowcore,os_info}.h, independently of the reader. Also QEMU's
//! s390x PRSTATUS notes, whose pr_pid QEMU before 9.1 wrote in the host's byte order.

mod common;

use common::vmcore::{ElfOpts, SynthArch, VmcoreBuilder};
use vmcore_report::addr::{Arch, PhysAddr};
use vmcore_report::arch::s390x::{VmcoreinfoFound, cksm, vmcoreinfo_in_memory};

const OS_INFO: u64 = 0x6000;
const ENTRY_TEXT: u64 = 0x9010;
const NOTE: u64 = 0xb000;
const TEXT: &str = "OSRELEASE=6.1.0-s390x-synthetic\nPAGESIZE=4096\nSYMBOL(lowcore_ptr)=1298208\n\
                    KERNELOFFSET=0\nSAMODE31=1673000\n";

/// The CKSM sum the other way round: all words added in 128 bits, then the carries folded.
fn sum32(bytes: &[u8]) -> u32 {
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(4) * 4, 0);
    let mut total: u128 = padded
        .chunks(4)
        .map(|w| u128::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
        .sum();
    while total >> 32 != 0 {
        total = (total & 0xffff_ffff) + (total >> 32);
    }
    total as u32
}

/// `struct os_info` (one page): magic, csum, version 1.1, crashkernel 0/0, entry 0 =
/// (addr, size, csum) when given.
fn os_info_page(entry: Option<(u64, u64, u32)>) -> Vec<u8> {
    let mut p = vec![0u8; 4096];
    p[0..8].copy_from_slice(b"OSINFOSZ");
    p[12..14].copy_from_slice(&1u16.to_be_bytes());
    p[14..16].copy_from_slice(&1u16.to_be_bytes());
    if let Some((addr, size, csum)) = entry {
        p[32..40].copy_from_slice(&addr.to_be_bytes());
        p[40..48].copy_from_slice(&size.to_be_bytes());
        p[48..52].copy_from_slice(&csum.to_be_bytes());
    }
    let csum = sum32(&p[12..]);
    p[8..12].copy_from_slice(&csum.to_be_bytes());
    p
}

/// An `Elf64_Nhdr` "VMCOREINFO" note holding `text`, big-endian.
fn note(text: &str) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&11u32.to_be_bytes());
    n.extend_from_slice(&(text.len() as u32).to_be_bytes());
    n.extend_from_slice(&0u32.to_be_bytes());
    n.extend_from_slice(b"VMCOREINFO\0\0");
    n.extend_from_slice(text.as_bytes());
    n
}

/// RAM from 0 to 64 KiB with the lowcore's two pointers set as asked.
fn machine(os_info: Option<&[u8]>, note_at: Option<u64>) -> VmcoreBuilder {
    let mut b = VmcoreBuilder::new(SynthArch::S390x);
    b.write_phys(0, &[0u8; 0x10000]);
    if let Some(page) = os_info {
        b.write_phys(0xe18, &OS_INFO.to_be_bytes());
        b.write_phys(OS_INFO, page);
    }
    if let Some(at) = note_at {
        b.write_phys(0xe0c, &at.to_be_bytes());
        b.write_phys(at, &note(TEXT));
    }
    b.prstatus(1, &[0; 18]);
    b
}

fn open(b: &VmcoreBuilder) -> vmcore_report::dump::Dump {
    vmcore_report::dump::open_bytes(b.build_elf(&ElfOpts::default())).expect("opens")
}

#[test]
fn cksm_is_the_ones_complement_word_sum() {
    for len in [0usize, 1, 3, 4, 7, 4084, 4095] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8 | 0x80).collect();
        assert_eq!(cksm(&bytes), sum32(&bytes), "{len} bytes");
    }
    // an all-ones word plus one carries round to 1
    assert_eq!(cksm(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]), 1);
}

#[test]
fn os_info_entry_is_read_and_checked() {
    let text = format!("{TEXT}CRASHTIME=1700000000\n");
    let page = os_info_page(Some((
        ENTRY_TEXT,
        text.len() as u64,
        sum32(text.as_bytes()),
    )));
    let mut b = machine(Some(&page), Some(NOTE));
    b.write_phys(ENTRY_TEXT, text.as_bytes());
    let d = open(&b);
    let (got, found) = vmcoreinfo_in_memory(&*d.mem).unwrap();
    assert_eq!(got, text);
    assert_eq!(found, VmcoreinfoFound::OsInfo(PhysAddr(ENTRY_TEXT)));
    // the open path fills the dump's VMCOREINFO from it
    let vi = d.info.vmcoreinfo.expect("VMCOREINFO from memory");
    assert_eq!(vi.osrelease.as_deref(), Some("6.1.0-s390x-synthetic"));
    assert_eq!(vi.crashtime, Some(1_700_000_000));
    assert_eq!(d.info.arch, Some(Arch::S390x));
}

#[test]
fn empty_os_info_entry_falls_back_to_the_lowcore_note() {
    // a kernel that never loaded a crash kernel leaves os_info's entries empty (both real
    // s390x fixture sets are so)
    let page = os_info_page(None);
    let d = open(&machine(Some(&page), Some(NOTE)));
    let (got, found) = vmcoreinfo_in_memory(&*d.mem).unwrap();
    assert_eq!(got, TEXT);
    assert_eq!(found, VmcoreinfoFound::LowcoreNote(PhysAddr(NOTE)));
    assert!(d.info.vmcoreinfo.is_some());
}

#[test]
fn a_bad_checksum_is_not_trusted() {
    let text = TEXT.to_string();
    // the entry's checksum is off by one: the note is used instead
    let page = os_info_page(Some((
        ENTRY_TEXT,
        text.len() as u64,
        sum32(text.as_bytes()) ^ 1,
    )));
    let mut b = machine(Some(&page), Some(NOTE));
    b.write_phys(ENTRY_TEXT, text.as_bytes());
    let d = open(&b);
    assert_eq!(
        vmcoreinfo_in_memory(&*d.mem).unwrap().1,
        VmcoreinfoFound::LowcoreNote(PhysAddr(NOTE))
    );
    // without the note, the error names the checksum
    let mut b = machine(Some(&page), None);
    b.write_phys(ENTRY_TEXT, text.as_bytes());
    let d = open(&b);
    let e = vmcoreinfo_in_memory(&*d.mem).unwrap_err();
    assert!(e.contains("checksum"), "{e}");
    assert!(d.info.vmcoreinfo.is_none());
    // a corrupt os_info block itself
    let mut page = os_info_page(None);
    page[20] ^= 0x40;
    let d = open(&machine(Some(&page), None));
    let e = vmcoreinfo_in_memory(&*d.mem).unwrap_err();
    assert!(e.contains("os_info at 0x6000: checksum"), "{e}");
}

#[test]
fn hostile_pointers_and_sizes_are_refused() {
    // a size far beyond the one-page VMCOREINFO buffer
    let page = os_info_page(Some((ENTRY_TEXT, 1 << 40, 0)));
    let e = vmcoreinfo_in_memory(&*open(&machine(Some(&page), None)).mem).unwrap_err();
    assert!(e.contains("claims"), "{e}");
    // an entry beyond the dump's memory
    let page = os_info_page(Some((0x7_0000_0000, 100, 0)));
    let e = vmcoreinfo_in_memory(&*open(&machine(Some(&page), None)).mem).unwrap_err();
    assert!(e.contains("cannot read"), "{e}");
    // an os_info pointer that is no page address, and a note pointer at something else
    let mut b = machine(None, None);
    b.write_phys(0xe18, &0x6010u64.to_be_bytes());
    b.write_phys(0xe0c, &0x8000u64.to_be_bytes());
    b.write_phys(0x8000, b"\0\0\0\x0b\xff\xff\xff\xff\0\0\0\0VMCOREINFX\0\0");
    let e = vmcoreinfo_in_memory(&*open(&b).mem).unwrap_err();
    assert!(e.contains("not a page address"), "{e}");
    assert!(e.contains("no VMCOREINFO note at 0x8000"), "{e}");
    // a note whose descriptor size is hostile
    let mut b = machine(None, None);
    b.write_phys(0xe0c, &0x8000u64.to_be_bytes());
    b.write_phys(0x8000, b"\0\0\0\x0b\xff\xff\xff\xff\0\0\0\0VMCOREINFO\0\0");
    let e = vmcoreinfo_in_memory(&*open(&b).mem).unwrap_err();
    assert!(e.contains("claims 4294967295 bytes"), "{e}");
}

#[test]
fn a_dump_with_its_note_is_left_alone() {
    let mut b = machine(Some(&os_info_page(None)), Some(NOTE));
    b.vmcoreinfo("OSRELEASE=from-the-note\nPAGESIZE=4096\n");
    let d = open(&b);
    assert_eq!(
        d.info.vmcoreinfo.unwrap().osrelease.as_deref(),
        Some("from-the-note")
    );
}

#[test]
fn qemu_prstatus_pid_in_host_order_is_the_cpu_number() {
    // QEMU before 9.1: pr_pid = CPU index + 1 stored little-endian in a big-endian note
    let mut b = machine(None, Some(NOTE));
    b.prstatus(2u32.swap_bytes(), &[0; 18]);
    let d = open(&b);
    let pids: Vec<u32> = d.info.cpus.iter().map(|c| c.pid).collect();
    assert_eq!(pids, [1, 2]);
}
