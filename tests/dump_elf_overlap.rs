//! ELF vmcores whose `PT_LOAD` segments overlap, as a real `/proc/vmcore` and `makedumpfile -E`
//! output do: the kernel-image segment (`p_vaddr = _text`) describes bytes a RAM segment
//! (`p_vaddr = __va(start)`) describes too. Every byte any segment describes must read, from the
//! file if any segment has it there.
//!
//! The oracle is the builder's memory plus the segment list: a byte inside some segment reads as
//! the builder's memory and is dumped if some segment has it within `p_filesz`; otherwise it reads
//! as zero and is not dumped. Nothing here asks the parser what to expect.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::vmcore::{ElfOpts, SynthArch, SynthLoad, VmcoreBuilder, random_page};
use vmcore_report::addr::{PhysAddr, VirtAddr};
use vmcore_report::dump::{self, Dump, DumpError, HeaderMapping, PhysMem, PhysRange};

const PS: u64 = 4096;
/// `p_vaddr - p_paddr` of RAM segments (a randomized x86_64 direct map).
const DIRECT: u64 = 0xffff_8c44_c000_0000;
/// `p_vaddr - p_paddr` of the kernel-image segment (`_text - __pa_symbol(_text)`).
const IMAGE: u64 = 0xffff_ffff_9560_0000 - 0x38_0000;
const RAM: u64 = 0x10_0000;
const RAM_LEN: u64 = 64 * PS;
/// Not a whole number of pages: `_end - _text` need not be.
const TEXT_LEN: u64 = 5 * PS + 0x123;

fn ram(paddr: u64, memsz: u64) -> SynthLoad {
    SynthLoad {
        paddr,
        vaddr: DIRECT + paddr,
        memsz,
        filesz: memsz,
        patches: Vec::new(),
    }
}

fn text(paddr: u64, memsz: u64) -> SynthLoad {
    SynthLoad {
        vaddr: IMAGE.wrapping_add(paddr),
        ..ram(paddr, memsz)
    }
}

/// A machine whose every page from 0 to well past the RAM segment holds distinct random bytes.
fn machine(arch: SynthArch) -> VmcoreBuilder {
    let mut b = VmcoreBuilder::new(arch);
    for pfn in 0..(RAM + RAM_LEN) / PS + 16 {
        b.page(pfn, &random_page(pfn * 31 + 7, PS as usize));
    }
    b.vmcoreinfo("OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\n");
    b
}

/// What a byte must read as: `None` outside every segment, else `(value, dumped)`.
fn oracle(b: &VmcoreBuilder, loads: &[SynthLoad], addr: u64) -> Option<(u8, bool)> {
    let inside = |l: &SynthLoad, n: u64| addr >= l.paddr && addr - l.paddr < n;
    if !loads.iter().any(|l| inside(l, l.memsz)) {
        return None;
    }
    if loads.iter().any(|l| inside(l, l.filesz)) {
        Some((b.mem(addr, 1)[0], true))
    } else {
        Some((0, false))
    }
}

/// The union of the segments' ranges, merged and sorted.
fn union(loads: &[SynthLoad]) -> Vec<PhysRange> {
    let mut spans: Vec<(u64, u64)> = loads
        .iter()
        .filter(|l| l.memsz > 0)
        .map(|l| (l.paddr, l.paddr + l.memsz))
        .collect();
    spans.sort();
    let mut out: Vec<PhysRange> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(r) if r.end.0 >= s => r.end = PhysAddr(r.end.0.max(e)),
            _ => out.push(PhysRange {
                start: PhysAddr(s),
                end: PhysAddr(e),
            }),
        }
    }
    out
}

/// Reads `[addr, addr + len)` and compares it with the oracle: equal bytes when every byte is
/// inside a segment, else `out-of-range` naming the first byte outside.
fn check_read(b: &VmcoreBuilder, loads: &[SynthLoad], d: &Dump, addr: u64, len: u64, ctx: &str) {
    let mut buf = vec![0xeeu8; len as usize];
    let got = d.mem.read_phys(PhysAddr(addr), &mut buf);
    let first_outside = (addr..addr + len).find(|&a| oracle(b, loads, a).is_none());
    match (first_outside, got) {
        (None, Ok(())) => {
            for (i, &byte) in buf.iter().enumerate() {
                let a = addr + i as u64;
                let want = oracle(b, loads, a).map(|(v, _)| v);
                assert_eq!(
                    Some(byte),
                    want,
                    "{ctx}: byte at {a:#x} of read {addr:#x}+{len:#x}"
                );
            }
        }
        (Some(out), Err(DumpError::OutOfRange { addr: at })) => {
            assert_eq!(
                at.0, out,
                "{ctx}: out-of-range address of read {addr:#x}+{len:#x}"
            )
        }
        (want, got) => {
            panic!("{ctx}: read {addr:#x}+{len:#x}: first byte outside {want:x?}, got {got:?}")
        }
    }
}

/// Every boundary of every segment (start, end of file bytes, end): reads of several widths
/// across it, and `is_dumped` on both sides; the whole union read at once and page by page;
/// `ranges()` equal to the union.
fn check_all(b: &VmcoreBuilder, loads: &[SynthLoad], ctx: &str) -> Dump {
    let d = dump::open_bytes(b.build_elf_loads(loads, &ElfOpts::default()))
        .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    let want_ranges = union(loads);
    assert_eq!(d.mem.ranges(), &want_ranges[..], "{ctx}: ranges()");
    let mut bounds: Vec<u64> = loads
        .iter()
        .flat_map(|l| [l.paddr, l.paddr + l.filesz, l.paddr + l.memsz])
        .collect();
    bounds.sort();
    bounds.dedup();
    for &x in &bounds {
        for w in [1u64, 7, 300, PS + 5] {
            let lo = x.saturating_sub(w);
            check_read(b, loads, &d, lo, 2 * w, &format!("{ctx}: across {x:#x}"));
            check_read(b, loads, &d, lo, w, &format!("{ctx}: up to {x:#x}"));
            check_read(b, loads, &d, x, w, &format!("{ctx}: from {x:#x}"));
        }
        for a in [x.saturating_sub(1), x, x + 1] {
            let want = oracle(b, loads, a).is_some_and(|(_, dumped)| dumped);
            assert_eq!(
                d.mem.is_dumped(PhysAddr(a)),
                want,
                "{ctx}: is_dumped({a:#x})"
            );
        }
    }
    for r in &want_ranges {
        let (s, e) = (r.start.0, r.end.0);
        check_read(b, loads, &d, s, e - s, &format!("{ctx}: whole range"));
        let mut a = s;
        while a < e {
            let next = ((a / PS + 1) * PS).min(e);
            check_read(b, loads, &d, a, next - a, &format!("{ctx}: page"));
            a = next;
        }
    }
    d
}

/// The four placements of the issue, each also with the segments in swapped program-header order
/// (the kernel writes the image segment first; makedumpfile and other tools may not).
#[test]
fn text_segment_at_start_inside_end_and_straddling_a_ram_segment_in_both_orders() {
    let placements = [
        ("at the start", RAM, TEXT_LEN),
        ("inside", RAM + 8 * PS + 0x40, TEXT_LEN),
        ("at the end", RAM + RAM_LEN - TEXT_LEN, TEXT_LEN),
        (
            "straddling the end",
            RAM + RAM_LEN - 2 * PS - 0x10,
            TEXT_LEN,
        ),
        ("covering exactly", RAM, RAM_LEN),
    ];
    for arch in [SynthArch::X86_64, SynthArch::S390x] {
        let b = machine(arch);
        for (name, at, len) in placements {
            for text_first in [true, false] {
                let mut loads = vec![text(at, len), ram(RAM, RAM_LEN)];
                if !text_first {
                    loads.reverse();
                }
                let ctx = format!("{arch:?} text {name}, text first: {text_first}");
                let d = check_all(&b, &loads, &ctx);
                let maps = d.mem.header_mappings();
                assert_eq!(maps.len(), 2, "{ctx}");
                for m in maps {
                    let want_direct = m.vaddr.0.wrapping_sub(m.paddr.0) == DIRECT;
                    assert_eq!(m.direct_map, want_direct, "{ctx}: {m:?}");
                }
            }
        }
    }
}

/// The layout, scaled down: the kernel's text segment first, then RAM ranges, with the
/// text inside the second range.
#[test]
fn proc_vmcore_layout_keeps_the_whole_ram_range() {
    let b = machine(SynthArch::X86_64);
    let t = RAM + 40 * PS;
    let loads = [
        text(t, 3 * PS),
        ram(PS, t - 8 * PS - PS),
        ram(t - 8 * PS, RAM + RAM_LEN - (t - 8 * PS)),
    ];
    let d = check_all(&b, &loads, "proc/vmcore layout");
    let covered: u64 = d.mem.ranges().iter().map(|r| r.end.0 - r.start.0).sum();
    assert_eq!(covered, RAM + RAM_LEN - PS);
}

/// `makedumpfile -E` splits both segments at excluded pages, so pairs start at the same address
/// several times and the excluded pages are holes.
#[test]
fn makedumpfile_e_split_pairs() {
    let b = machine(SynthArch::X86_64);
    let t = RAM + 16 * PS;
    let pieces = [
        (t, t + 4 * PS),
        (t + 5 * PS, t + 9 * PS),
        (t + 10 * PS, t + 12 * PS),
    ];
    let ram_pieces = [
        (RAM, t + 4 * PS),
        (t + 5 * PS, t + 9 * PS),
        (t + 10 * PS, RAM + RAM_LEN),
    ];
    for text_first in [true, false] {
        let texts = pieces.iter().map(|&(s, e)| text(s, e - s));
        let rams = ram_pieces.iter().map(|&(s, e)| ram(s, e - s));
        let loads: Vec<SynthLoad> = if text_first {
            texts.chain(rams).collect()
        } else {
            rams.chain(texts).collect()
        };
        let d = check_all(&b, &loads, &format!("-E pairs, text first: {text_first}"));
        assert_eq!(d.mem.ranges().len(), 3);
    }
}

/// `p_filesz < p_memsz` tails inside overlaps: a byte one segment has in the file and another
/// only in its zero-filled tail reads from the file and is dumped; a byte only in tails reads as
/// zero and is not dumped.
#[test]
fn zero_filled_tails_inside_overlaps() {
    let b = machine(SynthArch::X86_64);
    let ram_tail = SynthLoad {
        filesz: RAM_LEN - 8 * PS - 0x30,
        ..ram(RAM, RAM_LEN)
    };
    let cases: Vec<(&str, Vec<SynthLoad>)> = vec![
        (
            "text file bytes over the RAM tail's start",
            vec![
                text(RAM + RAM_LEN - 10 * PS + 0x80, 5 * PS),
                ram_tail.clone(),
            ],
        ),
        (
            "text with a tail over RAM file bytes",
            vec![
                SynthLoad {
                    filesz: 2 * PS + 0x10,
                    ..text(RAM + 4 * PS, 6 * PS)
                },
                ram(RAM, RAM_LEN),
            ],
        ),
        (
            "tail over tail, partly over the RAM file bytes",
            vec![
                SynthLoad {
                    filesz: 3 * PS,
                    ..text(RAM + RAM_LEN - 9 * PS, 6 * PS)
                },
                ram_tail.clone(),
            ],
        ),
        (
            "text without file bytes inside the RAM tail",
            vec![
                SynthLoad {
                    filesz: 0,
                    ..text(RAM + RAM_LEN - 6 * PS, 2 * PS)
                },
                ram_tail.clone(),
            ],
        ),
        (
            "text straddling the end, its tail past the RAM segment",
            vec![
                SynthLoad {
                    filesz: 2 * PS,
                    ..text(RAM + RAM_LEN - 3 * PS, 6 * PS)
                },
                ram(RAM, RAM_LEN),
            ],
        ),
    ];
    for (name, loads) in cases {
        for reversed in [false, true] {
            let mut loads = loads.clone();
            if reversed {
                loads.reverse();
            }
            check_all(&b, &loads, &format!("{name}, reversed: {reversed}"));
        }
    }
}

/// Runs `f` with debug logging captured; returns its result and the log text.
fn with_debug_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

/// Where the two copies disagree, the RAM segment's is read, whichever header comes first, and
/// the debug log says so; copies that agree log no disagreement.
#[test]
fn disagreeing_copies_read_the_ram_segment_and_say_so() {
    let b = machine(SynthArch::X86_64);
    let at = RAM + 8 * PS + 0x40;
    let mut liar = text(at, TEXT_LEN);
    let flipped: Vec<u8> = b.mem(at, TEXT_LEN).iter().map(|x| x ^ 0x5a).collect();
    liar.patches.push((0, flipped));
    // RAM as one segment, and as one-page segments each smaller than the image segment (so
    // neither size nor order can be what makes RAM win).
    let one_page_rams: Vec<SynthLoad> = (RAM / PS..(RAM + RAM_LEN) / PS)
        .map(|pfn| ram(pfn * PS, PS))
        .collect();
    let layouts = [
        ("one RAM segment", vec![ram(RAM, RAM_LEN)]),
        ("one-page RAM segments", one_page_rams),
    ];
    for ((layout, rams), text_first) in layouts.iter().flat_map(|l| [(l, true), (l, false)]) {
        let mut loads = vec![liar.clone()];
        loads.extend(rams.iter().cloned());
        if !text_first {
            loads.reverse();
        }
        let ctx = format!("disagreeing, {layout}, text first: {text_first}");
        let (_, log) = with_debug_log(|| check_all(&b, &loads, &ctx));
        assert!(log.contains("disagree"), "{ctx}: log was: {log}");
        assert!(log.contains(&format!("{at:#x}")), "{ctx}: log was: {log}");
        assert!(
            log.contains("direct-map (RAM) segment"),
            "{ctx}: log was: {log}"
        );
    }
    let loads = [text(at, TEXT_LEN), ram(RAM, RAM_LEN)];
    let (_, log) = with_debug_log(|| check_all(&b, &loads, "agreeing"));
    assert!(!log.contains("disagree"), "agreeing copies: {log}");
    assert!(
        log.contains("describe some memory twice"),
        "agreeing copies: {log}"
    );
}

/// Random segment sets in a small window (byte-granular edges, any order, any mix of direct-map,
/// image and zero `p_vaddr`, tails): always the oracle.
#[test]
fn random_overlapping_segments_match_the_oracle() {
    let b = machine(SynthArch::X86_64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..150 {
        let nseg = 1 + next(5);
        let loads: Vec<SynthLoad> = (0..nseg)
            .map(|_| {
                let granule = if next(2) == 0 { PS } else { 1 };
                let paddr = RAM + next(24 * PS / granule) * granule;
                let memsz = (1 + next(8 * PS / granule)) * granule;
                let filesz = match next(3) {
                    0 => memsz,
                    1 => next(memsz + 1),
                    _ => 0,
                };
                let vaddr = match next(3) {
                    0 => DIRECT + paddr,
                    1 => IMAGE.wrapping_add(paddr),
                    _ => 0,
                };
                SynthLoad {
                    paddr,
                    vaddr,
                    memsz,
                    filesz,
                    patches: Vec::new(),
                }
            })
            .collect();
        check_all(&b, &loads, &format!("round {round}: {loads:x?}"));
    }
}

/// `PN_XNUM` with a count of 2^32 - 1 in section header 0: refused as truncated (the table cannot
/// fit in the file) before anything is allocated per program header.
#[test]
fn huge_pn_xnum_count_is_bounded_by_the_file() {
    let b = machine(SynthArch::X86_64);
    let mut bytes = b.build_elf_loads(
        &[ram(RAM, RAM_LEN)],
        &ElfOpts {
            phdrs_after_shdrs: true,
            pn_xnum: true,
        },
    );
    bytes[64 + 44..64 + 48].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = dump::open_bytes(bytes).err().expect("refused");
    assert_eq!(err.code(), "truncated", "{err}");
}

/// For every pair of overlapping `PT_LOAD`s of an x86_64 or arm64 ELF vmcore (the kernel-image
/// segment and a RAM segment), the bytes the dump reader returns equal the RAM segment's raw
/// file bytes. The kernel-image segment is the one mapped at the kernel image's addresses: x86_64
/// `p_vaddr >= __START_KERNEL_map`; arm64 (48-bit VA, 5.4+) the upper half of the kernel space,
/// `p_vaddr >= PAGE_END` = 0xffff_8000_0000_0000, where the image lies in the vmalloc area above
/// the linear map (arch/arm64/include/asm/memory.h). The program headers are parsed here,
/// independently of the reader. Returns the number of overlapping bytes compared.
fn check_real_overlaps(path: &Path) -> u64 {
    // Mapped, not read: a raw capture is as large as the machine's RAM.
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: read-only map of a fixture file nothing writes while the test runs.
    let raw = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let u = |at: usize, n: usize| -> u64 {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&raw[at..at + n]);
        u64::from_le_bytes(v)
    };
    assert_eq!(&raw[..4], b"\x7fELF", "{}", path.display());
    // e_machine: EM_X86_64 62, EM_AARCH64 183
    let kernel_image_start: u64 = match u(18, 2) {
        62 => 0xffff_ffff_8000_0000,
        183 => 0xffff_8000_0000_0000,
        m => panic!(
            "{}: e_machine {m}: only x86_64 and arm64 are checked",
            path.display()
        ),
    };
    let (phoff, phentsize) = (u(32, 8) as usize, u(54, 2) as usize);
    let mut phnum = u(56, 2) as usize;
    if phnum == 0xffff {
        phnum = u(u(40, 8) as usize + 44, 4) as usize;
    }
    // (vaddr, paddr, offset, filesz) of every PT_LOAD.
    let loads: Vec<(u64, u64, u64, u64)> = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u(ph, 4) == 1)
        .map(|ph| (u(ph + 16, 8), u(ph + 24, 8), u(ph + 8, 8), u(ph + 32, 8)))
        .collect();
    let d = dump::open_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut compared = 0u64;
    let mut differing = 0u64;
    for img in loads.iter().filter(|l| l.0 >= kernel_image_start) {
        for r in loads.iter().filter(|l| l.0 < kernel_image_start) {
            let lo = img.1.max(r.1);
            let hi = (img.1 + img.3).min(r.1 + r.3);
            if lo >= hi {
                continue;
            }
            let ram_off = (r.2 + (lo - r.1)) as usize;
            let img_off = (img.2 + (lo - img.1)) as usize;
            let len = (hi - lo) as usize;
            let mut buf = vec![0u8; len];
            d.mem
                .read_phys(PhysAddr(lo), &mut buf)
                .unwrap_or_else(|e| panic!("{}: overlap {lo:#x}..{hi:#x}: {e}", path.display()));
            assert!(
                buf == raw[ram_off..ram_off + len],
                "{}: overlap {lo:#x}..{hi:#x} does not read as the RAM segment's bytes",
                path.display()
            );
            assert!(d.mem.is_dumped(PhysAddr(lo)) && d.mem.is_dumped(PhysAddr(hi - 1)));
            differing += buf
                .iter()
                .zip(&raw[img_off..img_off + len])
                .filter(|(a, b)| a != b)
                .count() as u64;
            compared += len as u64;
        }
    }
    eprintln!(
        "{}: {compared:#x} overlapping bytes read as the RAM segment's; {differing} differ from \
         the image segment's copy",
        path.display()
    );
    compared
}

/// The real-capture check itself, on a synthetic capture whose image copy disagrees.
#[test]
fn real_capture_check_on_a_synthetic_capture() {
    let b = machine(SynthArch::X86_64);
    let at = RAM + 8 * PS + 0x40;
    let mut liar = text(at, TEXT_LEN);
    liar.patches.push((0x10, vec![0xa5; 0x20]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vmcore.raw");
    let loads = [liar, ram(RAM, RAM_LEN)];
    std::fs::write(&path, b.build_elf_loads(&loads, &ElfOpts::default())).unwrap();
    assert_eq!(check_real_overlaps(&path), TEXT_LEN);
}

/// Real kdump captures (`/proc/vmcore` copied raw, `makedumpfile -E`) in the fixture cache.
#[test]
fn real_kdump_captures_read_overlaps_from_the_ram_segment() {
    const FILES: &[&str] = &["vmcore.raw", "mdf.E-d31"];
    let root = common::fixtures::root();
    let mut found = 0;
    for set in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in FILES {
            let p = set.path().join(f);
            if p.exists() {
                assert!(
                    check_real_overlaps(&p) > 0,
                    "{}: no overlap found",
                    p.display()
                );
                found += 1;
            }
        }
    }
    if std::env::var("VMCORE_REQUIRE_FIXTURES").as_deref() == Ok("1") {
        for set in common::fixtures::SETS
            .iter()
            .filter(|s| s.contains("kdump"))
        {
            assert!(
                FILES.iter().any(|f| root.join(set).join(f).exists()),
                "kdump fixture set {set} has none of {FILES:?} under {}",
                root.display()
            );
        }
    }
    if found == 0 {
        eprintln!(
            "SKIP: no {FILES:?} in any fixture set under {}",
            root.display()
        );
    }
}

/// Physical memory with chosen header mappings, over the page-table builder's memory.
struct WithHeaders {
    mem: common::pagetable::SynthMem,
    maps: Vec<HeaderMapping>,
}

impl PhysMem for WithHeaders {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        self.mem.read_phys(addr, buf)
    }
    fn ranges(&self) -> &[PhysRange] {
        self.mem.ranges()
    }
    fn is_dumped(&self, addr: PhysAddr) -> bool {
        self.mem.is_dumped(addr)
    }
    fn header_mappings(&self) -> &[HeaderMapping] {
        &self.maps
    }
}

/// The program headers' mappings are checked against the page tables (first and last page of
/// each), and a disagreement is reported with the tables' answer, not acted on.
#[test]
fn header_mappings_cross_check_the_page_tables() {
    use common::pagetable::{Builder, Mode};
    use vmcore_report::arch::{HeaderCheck, cross_check_header_mappings, x86_64::X86_64};
    const M2: u64 = 2 << 20;
    let (image_va, image_pa) = (0xffff_ffff_9560_0000u64, 0x3800_0000u64);
    let mut pt = Builder::new(Mode::X86 { l5: false, sme: 0 }, &[(0, 1 << 30)], 0x100_0000);
    pt.map_range(image_va, image_pa, 8 * M2, M2);
    pt.map_range(DIRECT, 0, 1 << 30, M2);
    let mapping = |vaddr: u64, paddr: u64, len: u64, direct_map: bool| HeaderMapping {
        vaddr: VirtAddr(vaddr),
        paddr: PhysAddr(paddr),
        len,
        direct_map,
    };
    let t = X86_64::new(
        pt.root,
        false,
        0,
        image_pa.wrapping_sub(image_va - 0xffff_ffff_8000_0000),
    );
    let good = vec![
        mapping(image_va, image_pa, 5 * M2 + 0x123, false),
        mapping(DIRECT + 0x10_0000, 0x10_0000, 0x27f0_0000, true),
    ];
    let mut mem = WithHeaders {
        mem: pt.mem,
        maps: good,
    };
    assert_eq!(
        cross_check_header_mappings(&mem, &t),
        HeaderCheck {
            checked: 4,
            ..Default::default()
        }
    );
    // An image segment claiming the wrong physical address: the tables' address is reported.
    mem.maps[0].paddr = PhysAddr(image_pa + M2);
    let check = cross_check_header_mappings(&mem, &t);
    assert_eq!(check.disagreeing, 2);
    assert_eq!(
        check.first_disagreement,
        Some((
            VirtAddr(image_va),
            PhysAddr(image_pa + M2),
            PhysAddr(image_pa)
        ))
    );
    // A mapping the tables lack (a user address) is counted, not an error.
    mem.maps = vec![mapping(0x40_0000, 0x20_0000, 0x1000, false)];
    let check = cross_check_header_mappings(&mem, &t);
    assert_eq!(
        (check.checked, check.unmapped, check.disagreeing),
        (1, 1, 0)
    );
}
