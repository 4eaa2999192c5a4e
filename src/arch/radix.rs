//! A radix page-table walk described as data, walked by one shared walker.
//!
//! x86_64 (4- and 5-level) and aarch64 (every granule and VA size) share one shape: a virtual
//! address is cut into an index per level (`(va >> shift) & (2^bits - 1)`), each index selects a
//! fixed-width entry in a table whose physical address the previous level gave, and an entry is
//! either invalid, a pointer to the next table, or a leaf that maps a page or a larger block
//! ("huge page") covering `2^shift` bytes. What differs is the geometry ([`Level`]) and how an
//! entry's bits are decoded ([`EntryDecoder`]), so each paging mode is a [`RadixFormat`] value and
//! the walk itself lives here once. s390x tables carry per-entry type and length fields that do not
//! fit this shape and have their own walker (`s390x.rs`).

use crate::addr::{Endian, PhysAddr, VirtAddr};
use crate::dump::{DumpError, PhysMem};

use super::{TranslateError, Translation};

/// One level of a radix table: the VA bits `[shift, shift + bits)` index it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Lowest VA bit this level indexes; a leaf at this level maps `2^shift` bytes.
    pub shift: u32,
    /// Number of VA bits this level indexes (the table has `2^bits` entries).
    pub bits: u32,
    /// Whether a leaf (huge page / block) is architecturally allowed at this level. The last
    /// level always maps pages.
    pub leaf_allowed: bool,
}

/// What an entry means, once decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Invalid,
    /// The next-level table's physical address.
    Table(u64),
    /// A leaf: the physical address of the start of the page or block.
    Leaf(u64),
}

/// Decodes the raw entries of one paging mode.
pub trait EntryDecoder: Send + Sync {
    /// `level` is the index into [`RadixFormat::levels`] (0 = top); `last` is true at the page
    /// level; `leaf_allowed` is that level's [`Level::leaf_allowed`].
    fn decode(&self, raw: u64, level: &Level, last: bool) -> Entry;
}

/// A paging mode as data.
pub struct RadixFormat {
    /// Top level first.
    pub levels: Vec<Level>,
    pub entry_size: u64,
    pub endian: Endian,
    pub decoder: Box<dyn EntryDecoder>,
}

impl RadixFormat {
    /// Level numbers in errors count from the top, 1-based, as people say "level 1" for the root.
    fn level_number(&self, idx: usize) -> u8 {
        (idx + 1) as u8
    }

    /// Reads one entry. A missing table page is reported as such, not as "unmapped".
    fn read_entry(
        &self,
        mem: &dyn PhysMem,
        table: u64,
        index: u64,
        va: VirtAddr,
        level_idx: usize,
    ) -> Result<u64, TranslateError> {
        let addr = index
            .checked_mul(self.entry_size)
            .and_then(|o| table.checked_add(o))
            .ok_or(TranslateError::TableNotDumped {
                va,
                level: self.level_number(level_idx),
                table: PhysAddr(table),
            })?;
        let mut b = [0u8; 8];
        let n = self.entry_size.min(8) as usize;
        let buf = b.get_mut(..n).unwrap_or(&mut []);
        match mem.read_phys(PhysAddr(addr), buf) {
            Ok(()) => Ok(self.endian.uint(&b, n).unwrap_or(0)),
            Err(DumpError::NotDumped { .. }) | Err(DumpError::OutOfRange { .. }) => {
                Err(TranslateError::TableNotDumped {
                    va,
                    level: self.level_number(level_idx),
                    table: PhysAddr(table),
                })
            }
            Err(source) => Err(TranslateError::Memory {
                va,
                phys: PhysAddr(addr),
                source,
            }),
        }
    }

    /// Walks the tables from `root` (physical) for `va`. The caller has checked that `va` is
    /// canonical for this mode.
    pub fn walk(
        &self,
        mem: &dyn PhysMem,
        root: u64,
        va: VirtAddr,
    ) -> Result<Translation, TranslateError> {
        let mut table = root;
        let last = self.levels.len().saturating_sub(1);
        for (i, level) in self.levels.iter().enumerate() {
            let mask = if level.bits >= 64 {
                u64::MAX
            } else {
                (1u64 << level.bits) - 1
            };
            let index = (va.0 >> level.shift) & mask;
            let raw = self.read_entry(mem, table, index, va, i)?;
            match self.decoder.decode(raw, level, i == last) {
                Entry::Invalid => {
                    return Err(TranslateError::NotMapped {
                        va,
                        level: self.level_number(i),
                    });
                }
                Entry::Table(next) if i != last => table = next,
                Entry::Table(_) => {
                    // a decoder bug or a corrupt entry: a table pointer where a page must be
                    return Err(TranslateError::NotMapped {
                        va,
                        level: self.level_number(i),
                    });
                }
                Entry::Leaf(base) => {
                    if i != last && !level.leaf_allowed {
                        return Err(TranslateError::NotMapped {
                            va,
                            level: self.level_number(i),
                        });
                    }
                    let size = 1u64 << level.shift;
                    let phys = (base & !(size - 1)) | (va.0 & (size - 1));
                    return Ok(Translation {
                        phys: PhysAddr(phys),
                        mapping_size: size,
                    });
                }
            }
        }
        Err(TranslateError::NotMapped {
            va,
            level: self.level_number(last),
        })
    }

    /// Number of VA bits the walk resolves (the top level's `shift + bits`).
    pub fn va_bits(&self) -> u32 {
        self.levels.first().map(|l| l.shift + l.bits).unwrap_or(0)
    }
}

/// True when `va` is sign-extended from bit `va_bits - 1` (bits 63..va_bits-1 all equal).
pub fn is_canonical(va: u64, va_bits: u32) -> bool {
    if va_bits >= 64 {
        return true;
    }
    let top = (va as i64) >> (va_bits - 1);
    top == 0 || top == -1
}

/// Address intervals `[start, end)` (virtual) proved to be mapped linearly, sorted and merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinearIntervals {
    /// `pa = va - delta` (wrapping) inside every interval.
    pub delta: u64,
    intervals: Vec<(u64, u64)>,
}

impl LinearIntervals {
    pub fn new(delta: u64) -> LinearIntervals {
        LinearIntervals {
            delta,
            intervals: Vec::new(),
        }
    }
    pub fn contains(&self, va: u64) -> bool {
        let i = self.intervals.partition_point(|&(s, _)| s <= va);
        i > 0 && self.intervals.get(i - 1).is_some_and(|&(_, e)| va < e)
    }
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.intervals
    }
    /// Total bytes covered.
    pub fn len_bytes(&self) -> u64 {
        self.intervals.iter().map(|&(s, e)| e - s).sum()
    }
    fn push(&mut self, s: u64, e: u64) {
        if let Some(last) = self.intervals.last_mut() {
            if last.1 == s {
                last.1 = e;
                return;
            }
        }
        self.intervals.push((s, e));
    }
    fn finish(&mut self) {
        self.intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.intervals.len());
        for &(s, e) in &self.intervals {
            match merged.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.intervals = merged;
    }
}

impl RadixFormat {
    /// Finds which parts of `[lo, hi)` (virtual, canonical, not wrapping) the tables map at
    /// `pa = va - delta`, reading whole tables rather than walking address by address, so the
    /// cost is one read per table page covering the range. A table page missing from the dump
    /// just leaves its part out. This is what makes an arithmetic fast path exactly agree with
    /// the walk.
    pub fn scan_linear(
        &self,
        mem: &dyn PhysMem,
        root: u64,
        ranges: &[(u64, u64)],
        delta: u64,
    ) -> LinearIntervals {
        let mut out = LinearIntervals::new(delta);
        if let Some(top) = self.levels.first() {
            let span_bits = top.shift + top.bits;
            for &(lo, hi) in ranges {
                if lo >= hi {
                    continue;
                }
                let base = if span_bits >= 64 {
                    0
                } else {
                    lo & !((1u64 << span_bits) - 1)
                };
                self.scan_table(mem, root, 0, base, lo, hi, &mut out);
            }
        }
        out.finish();
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_table(
        &self,
        mem: &dyn PhysMem,
        table: u64,
        level_idx: usize,
        base: u64,
        lo: u64,
        hi: u64,
        out: &mut LinearIntervals,
    ) {
        let Some(level) = self.levels.get(level_idx) else {
            return;
        };
        let last = level_idx + 1 == self.levels.len();
        let size = 1u64 << level.shift;
        let nmask = if level.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << level.bits) - 1
        };
        let first = (lo.wrapping_sub(base) >> level.shift) & nmask;
        let last_idx = (hi.wrapping_sub(1).wrapping_sub(base) >> level.shift) & nmask;
        if last_idx < first {
            return;
        }
        let n = (last_idx - first + 1) as usize;
        let es = self.entry_size as usize;
        let mut buf = vec![0u8; n * es];
        let Some(start) = first
            .checked_mul(self.entry_size)
            .and_then(|o| table.checked_add(o))
        else {
            return;
        };
        if mem.read_phys(PhysAddr(start), &mut buf).is_err() {
            return;
        }
        for (k, chunk) in buf.chunks_exact(es).enumerate() {
            let raw = self.endian.uint(chunk, es).unwrap_or(0);
            let va = base.wrapping_add((first + k as u64) << level.shift);
            let (s, e) = (
                va.max(lo),
                va.wrapping_add(size).wrapping_sub(1).min(hi - 1),
            );
            match self.decoder.decode(raw, level, last) {
                Entry::Invalid => {}
                Entry::Leaf(pa) => {
                    if (last || level.leaf_allowed) && pa == va.wrapping_sub(out.delta) {
                        out.push(s, e + 1);
                    }
                }
                Entry::Table(next) if !last => {
                    self.scan_table(mem, next, level_idx + 1, va, s, e + 1, out);
                }
                Entry::Table(_) => {}
            }
        }
    }
}
