//! Page-table builders per paging mode, written from the architecture manuals independently of
//! `src/arch`, over a tiny synthetic physical memory.
//!
//! A [`Builder`] allocates table pages in a [`SynthMem`], writes entries in the mode's own
//! encoding, and records every mapping it makes (`va`, `pa`, `size`) — that record is the oracle
//! the tests compare translations against. Data pages are not stored: every physical byte that is
//! not a table reads as [`pattern`] of its address, so a test knows what any read must return.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use vmcore_report::addr::PhysAddr;
use vmcore_report::dump::{DumpError, PhysMem, PhysRange};

/// The byte a data page holds at physical address `pa`.
pub fn pattern(pa: u64) -> u8 {
    let x = pa.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (pa as u8)
}

/// Sparse physical memory: explicitly written 4 KiB pages (the tables), everything else in the
/// ranges reads as [`pattern`]; pages can be marked "not dumped".
pub struct SynthMem {
    pages: HashMap<u64, Vec<u8>>,
    ranges: Vec<PhysRange>,
    missing: HashSet<u64>,
}

impl SynthMem {
    pub fn new(ranges: &[(u64, u64)]) -> SynthMem {
        SynthMem {
            pages: HashMap::new(),
            ranges: ranges
                .iter()
                .map(|&(s, e)| PhysRange {
                    start: PhysAddr(s),
                    end: PhysAddr(e),
                })
                .collect(),
            missing: HashSet::new(),
        }
    }
    pub fn write(&mut self, pa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let a = pa + i as u64;
            let page = self
                .pages
                .entry(a & !0xfff)
                .or_insert_with(|| vec![0u8; 4096]);
            page[(a & 0xfff) as usize] = *b;
        }
    }
    /// Makes a page read as absent (as a filtered dump does).
    pub fn drop_page(&mut self, pa: u64) {
        self.missing.insert(pa & !0xfff);
    }
    /// The byte at a physical address as the test expects to read it (a table byte or the
    /// pattern); panics on an absent address.
    pub fn expected(&self, a: u64) -> u8 {
        self.byte(a).expect("address in the synthetic memory")
    }
    fn byte(&self, a: u64) -> Result<u8, DumpError> {
        if self.missing.contains(&(a & !0xfff)) {
            return Err(DumpError::NotDumped { addr: PhysAddr(a) });
        }
        if let Some(p) = self.pages.get(&(a & !0xfff)) {
            return Ok(p[(a & 0xfff) as usize]);
        }
        if self.ranges.iter().any(|r| a >= r.start.0 && a < r.end.0) {
            Ok(pattern(a))
        } else {
            Err(DumpError::OutOfRange { addr: PhysAddr(a) })
        }
    }
}

impl PhysMem for SynthMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte(addr.0 + i as u64)?;
        }
        Ok(())
    }
    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
    fn is_dumped(&self, addr: PhysAddr) -> bool {
        self.byte(addr.0).is_ok()
    }
}

/// The paging modes the builder knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// x86_64 4-level (`l5 == false`) or 5-level; `sme` is OR-ed into every entry.
    X86 { l5: bool, sme: u64 },
    /// aarch64 TTBR1 tables: granule in bytes, VA size of the table geometry, 52-bit PAs.
    Arm {
        granule: u64,
        va_bits: u32,
        pa52: bool,
    },
    /// s390x with the given top table: 3 region-first .. 0 segment.
    S390 { top: u8 },
}

/// One mapping the builder made: the oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: u64,
    pub pa: u64,
    pub size: u64,
}

pub struct Builder {
    pub mode: Mode,
    pub mem: SynthMem,
    pub root: u64,
    next_table: u64,
    pub maps: Vec<Mapping>,
    /// Table pages allocated, by level (1 = top), for tests that drop one.
    pub tables: Vec<(u8, u64)>,
}

/// Level geometry of a mode, top first: (shift, bits).
fn geometry(mode: Mode) -> Vec<(u32, u32)> {
    match mode {
        Mode::X86 { l5: true, .. } => vec![(48, 9), (39, 9), (30, 9), (21, 9), (12, 9)],
        Mode::X86 { .. } => vec![(39, 9), (30, 9), (21, 9), (12, 9)],
        Mode::Arm {
            granule, va_bits, ..
        } => {
            let p = granule.trailing_zeros();
            let per = p - 3;
            let mut v = Vec::new();
            let mut shift = p;
            while shift < va_bits {
                v.push((shift, per.min(va_bits - shift)));
                shift += per;
            }
            v.reverse();
            v
        }
        Mode::S390 { top } => {
            let all = [(53u32, 11u32), (42, 11), (31, 11), (20, 11), (12, 8)];
            all[(3 - top as usize)..].to_vec()
        }
    }
}

impl Builder {
    /// `ram` are the physical ranges; tables are allocated from `table_base` upward (keep it in
    /// a range and away from the data the test maps).
    pub fn new(mode: Mode, ram: &[(u64, u64)], table_base: u64) -> Builder {
        let mut b = Builder {
            mode,
            mem: SynthMem::new(ram),
            root: 0,
            next_table: table_base,
            maps: Vec::new(),
            tables: Vec::new(),
        };
        b.root = b.alloc_table(1);
        b
    }

    fn table_bytes(&self, level_idx: usize) -> u64 {
        match self.mode {
            Mode::X86 { .. } => 4096,
            Mode::Arm { granule, .. } => granule,
            Mode::S390 { .. } => {
                if level_idx + 1 == geometry(self.mode).len() {
                    2048
                } else {
                    16384
                }
            }
        }
    }

    fn alloc_table(&mut self, level: u8) -> u64 {
        let size = self.table_bytes(level as usize - 1);
        let align = size.max(4096);
        let pa = self.next_table.div_ceil(align) * align;
        self.next_table = pa + align;
        // empty tables: x86/arm zero = invalid; s390 needs the invalid bit in every entry
        let empty = match self.mode {
            Mode::S390 { .. } => {
                let inv: u64 = if size == 2048 { 0x400 } else { 0x20 };
                inv.to_be_bytes().repeat((size / 8) as usize)
            }
            _ => vec![0u8; size as usize],
        };
        self.mem.write(pa, &empty);
        self.tables.push((level, pa));
        pa
    }

    fn read_entry(&self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.mem.read_phys(PhysAddr(pa), &mut b).unwrap();
        match self.mode {
            Mode::S390 { .. } => u64::from_be_bytes(b),
            _ => u64::from_le_bytes(b),
        }
    }
    fn write_entry(&mut self, pa: u64, e: u64) {
        let b = match self.mode {
            Mode::S390 { .. } => e.to_be_bytes(),
            _ => e.to_le_bytes(),
        };
        self.mem.write(pa, &b);
    }

    /// Entry pointing at a next table.
    fn table_entry(&self, level_idx: usize, next: u64) -> u64 {
        match self.mode {
            Mode::X86 { sme, .. } => next | 0x67 | sme,
            Mode::Arm { .. } => self.arm_addr(next) | 0x3,
            Mode::S390 { top } => {
                let n = geometry(self.mode).len();
                if level_idx + 2 == n {
                    next // segment entry -> page table
                } else {
                    // region entry: TT of this region table, TL = 3 (full next table)
                    let tt = (top as usize - level_idx) as u64;
                    next | (tt << 2) | 3
                }
            }
        }
    }

    fn arm_addr(&self, pa: u64) -> u64 {
        match self.mode {
            Mode::Arm {
                granule: 65536,
                pa52: true,
                ..
            } => (pa & 0x0000_ffff_ffff_0000) | (((pa >> 48) & 0xf) << 12),
            Mode::Arm { pa52: true, .. } => (pa & 0x0003_ffff_ffff_f000) | (((pa >> 50) & 3) << 8),
            _ => pa,
        }
    }

    /// Leaf entry mapping `pa` at a level; noise bits the walker must ignore are set.
    fn leaf_entry(&self, level_idx: usize, pa: u64, last: bool) -> u64 {
        match self.mode {
            Mode::X86 { sme, .. } => {
                // NX, protection key bits 59..62, software bit 52; PAT (bit 12) in huge entries
                let noise = (1u64 << 63) | (0xfu64 << 59) | (1 << 52);
                if last {
                    pa | 0x63 | noise | sme
                } else {
                    pa | 0xe3 | (1 << 12) | noise | sme
                }
            }
            Mode::Arm { .. } => {
                // AF, inner shareable, PXN/UXN
                let attrs = 0x400 | (1 << 53) | (1 << 54);
                self.arm_addr(pa) | attrs | if last { 3 } else { 1 }
            }
            Mode::S390 { .. } => {
                let n = geometry(self.mode).len();
                if last {
                    pa
                } else if level_idx + 2 == n {
                    pa | 0x400 // large segment
                } else {
                    pa | 0x400 | (1 << 2) // region-third with FC
                }
            }
        }
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with one leaf of `size` bytes, which must be a
    /// leaf size of the mode. Panics on misuse (it is test code).
    pub fn map(&mut self, va: u64, pa: u64, size: u64) {
        let geo = geometry(self.mode);
        let target = geo
            .iter()
            .position(|&(s, _)| 1u64 << s == size)
            .expect("size is a leaf size of this mode");
        assert_eq!(va % size, 0);
        assert_eq!(pa % size, 0);
        let mut table = self.root;
        for (i, &(shift, bits)) in geo.iter().enumerate() {
            let index = (va >> shift) & ((1u64 << bits) - 1);
            let slot = table + index * 8;
            if i == target {
                let e = self.leaf_entry(i, pa, i + 1 == geo.len());
                self.write_entry(slot, e);
                break;
            }
            let e = self.read_entry(slot);
            let present = match self.mode {
                Mode::S390 { .. } => e & 0x20 == 0,
                _ => e & 1 != 0,
            };
            table = if present {
                match self.mode {
                    Mode::X86 { sme, .. } => (e & !sme) & 0x000f_ffff_ffff_f000,
                    Mode::Arm { .. } => self.next_from_arm(e),
                    Mode::S390 { .. } => {
                        if i + 2 == geo.len() {
                            e & !0x7ff
                        } else {
                            e & !0xfff
                        }
                    }
                }
            } else {
                let next = self.alloc_table(i as u8 + 2);
                let e = self.table_entry(i, next);
                self.write_entry(slot, e);
                next
            };
        }
        self.maps.push(Mapping { va, pa, size });
    }

    fn next_from_arm(&self, e: u64) -> u64 {
        match self.mode {
            Mode::Arm {
                granule: 65536,
                pa52: true,
                ..
            } => (e & 0x0000_ffff_ffff_0000) | (((e >> 12) & 0xf) << 48),
            Mode::Arm { pa52: true, .. } => (e & 0x0003_ffff_ffff_f000) | (((e >> 8) & 3) << 50),
            Mode::Arm { granule, .. } => e & 0x0000_ffff_ffff_ffff & !(granule - 1),
            _ => unreachable!(),
        }
    }

    /// Maps `len` bytes with pages of `size`, physically contiguous.
    pub fn map_range(&mut self, va: u64, pa: u64, len: u64, size: u64) {
        let mut off = 0;
        while off < len {
            self.map(va + off, pa + off, size);
            off += size;
        }
    }

    /// The oracle: the physical address and mapping size of `va`, if mapped.
    pub fn expect(&self, va: u64) -> Option<(u64, u64)> {
        self.maps
            .iter()
            .find(|m| va >= m.va && va - m.va < m.size)
            .map(|m| (m.pa + (va - m.va), m.size))
    }

    /// Leaf sizes of the mode, smallest first.
    pub fn leaf_sizes(&self) -> Vec<u64> {
        match self.mode {
            Mode::X86 { .. } => vec![1 << 12, 1 << 21, 1 << 30],
            Mode::Arm { granule: 4096, .. } => vec![1 << 12, 1 << 21, 1 << 30],
            Mode::Arm { granule: 16384, .. } => vec![1 << 14, 1 << 25],
            Mode::Arm {
                granule: 65536,
                pa52,
                ..
            } => {
                if pa52 {
                    vec![1 << 16, 1 << 29, 1 << 42]
                } else {
                    vec![1 << 16, 1 << 29]
                }
            }
            Mode::Arm { .. } => unreachable!(),
            Mode::S390 { top } => {
                if top >= 1 {
                    vec![1 << 12, 1 << 20, 1 << 31]
                } else {
                    vec![1 << 12, 1 << 20]
                }
            }
        }
    }
}

/// A small deterministic generator (splitmix64) so failures reproduce from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Checks a translation function against the builder's oracle: every mapping's first and last
/// byte and a random interior byte, the byte just past each mapping, and `extra` addresses
/// (mapped or not). `translate` returns `Ok((phys, mapping_size))` or the error's `code()`;
/// an unmapped address must give `not-mapped`, or `non-canonical` where `canonical` says so.
pub fn check_oracle(
    b: &Builder,
    rng: &mut Rng,
    extra: &[u64],
    canonical: &dyn Fn(u64) -> bool,
    translate: &dyn Fn(u64) -> Result<(u64, u64), String>,
) -> usize {
    let mut vas = Vec::new();
    for m in &b.maps {
        vas.push(m.va);
        vas.push(m.va + m.size - 1);
        vas.push(m.va + rng.below(m.size));
        vas.push(m.va.wrapping_add(m.size));
        vas.push(m.va.wrapping_sub(1));
    }
    vas.extend_from_slice(extra);
    for &va in &vas {
        let got = translate(va);
        match (b.expect(va), got) {
            (Some((pa, size)), Ok((gpa, gsize))) => {
                assert_eq!(
                    (gpa, gsize),
                    (pa, size),
                    "va {va:#x}: got {gpa:#x}/{gsize:#x}"
                );
            }
            (None, Err(e)) if canonical(va) && e == "not-mapped" => {}
            (None, Err(e)) if !canonical(va) && e == "non-canonical" => {}
            (want, got) => panic!("va {va:#x}: oracle {want:x?}, translator {got:x?}"),
        }
    }
    vas.len()
}
