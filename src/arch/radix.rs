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
