//! The kernel's own symbol table, decoded from the dump's memory: what `/proc/kallsyms` prints,
//! with no vmlinux.
//!
//! The tables (kernel/kallsyms_internal.h; written at build time by scripts/kallsyms.c):
//! - `kallsyms_num_syms`: the number of symbols (u32);
//! - `kallsyms_names`: per symbol a length, then that many bytes, each an index into the token
//!   table; the expansion is the nm type letter followed by the name (scripts/kallsyms.c stores
//!   the type as the name's first character before compressing). Since 6.1 (commit 73bbb94466fd
//!   "kallsyms: support 'big' kernel symbols") a length with bit 7 set is two bytes of ULEB128;
//!   before, a byte ≥ 0x80 was a plain length. The bytes alone cannot tell the two apart: both
//!   are tried when the table has such a byte, and the one whose walk decodes `_stext` at
//!   VMCOREINFO's `SYMBOL(_stext)` is kept;
//! - `kallsyms_token_table`: 256 NUL-terminated strings; `kallsyms_token_index`: 256 u16
//!   offsets into it;
//! - the addresses, in one of four encodings (kernel/kallsyms.c `kallsyms_sym_address()` per
//!   version): `kallsyms_addresses[]` absolute (before 6.11, without BASE_RELATIVE);
//!   `kallsyms_relative_base + (u32)kallsyms_offsets[i]` (4.6–6.19); absolute-percpu (x86_64
//!   SMP 4.6–6.14: a non-negative offset is the value itself, a negative one
//!   `relative_base - 1 - offset`); place-relative (7.0: `&kallsyms_offsets[i] + offset`).
//!   VMCOREINFO does not say which; every candidate is computed for `_stext` and the one equal
//!   to `SYMBOL(_stext)` is used (the rule drgn and makedumpfile follow too).
//!
//! Since 6.0 (commits 5fd8fea935a1, f09bddbd8661) VMCOREINFO carries `SYMBOL()` lines for the
//! tables ([`KallsymsTables::from_vmcoreinfo`]). Sizes are not stored: a symbol's size is the
//! distance to the next address, capped at [`MAX_GUESSED_SIZE`].
//!
//! Every count and length read from the dump is bounded; a table that does not decode is an
//! error naming the address, never a panic.

use crate::addr::Endian;
use crate::debuginfo::symbols::{RuntimeSymbol, SymKind};
use crate::dump::VmcoreInfo;

/// The most symbols accepted (a 6.x distribution kernel has ~200 000).
pub const MAX_SYMS: u32 = 4 << 20;
/// `KSYM_NAME_LEN` since 6.1 (512); a longer expanded name is corrupt.
const KSYM_NAME_LEN: usize = 512;
/// A guessed size (distance to the next symbol) larger than this is capped: gaps between
/// sections are not part of the symbol before them.
pub const MAX_GUESSED_SIZE: u64 = 0x10000;
/// Bytes of `kallsyms_names` read per chunk.
const CHUNK: usize = 64 << 10;
/// The smallest page of the supported architectures: a readable byte's page is readable whole.
const PAGE: u64 = 4096;

/// Where the tables are (runtime addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KallsymsTables {
    pub num_syms: u64,
    pub names: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub offsets: Option<u64>,
    pub relative_base: Option<u64>,
    pub addresses: Option<u64>,
}

impl KallsymsTables {
    /// The tables VMCOREINFO names (6.0+, or a backport); `None` without the four core lines
    /// or without any address table.
    pub fn from_vmcoreinfo(vi: &VmcoreInfo) -> Option<KallsymsTables> {
        let t = KallsymsTables {
            num_syms: vi.symbol("kallsyms_num_syms")?,
            names: vi.symbol("kallsyms_names")?,
            token_table: vi.symbol("kallsyms_token_table")?,
            token_index: vi.symbol("kallsyms_token_index")?,
            offsets: vi.symbol("kallsyms_offsets"),
            relative_base: vi.symbol("kallsyms_relative_base"),
            addresses: vi.symbol("kallsyms_addresses"),
        };
        (t.offsets.is_some() || t.addresses.is_some()).then_some(t)
    }
}

/// How the addresses were encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressEncoding {
    Absolute,
    BaseRelative,
    AbsolutePercpu,
    PlaceRelative,
}

/// One decoded symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KallsymsSymbol {
    pub name: String,
    /// Runtime address.
    pub address: u64,
    /// The nm type letter (`T`, `t`, `D`, `b`, `A`, …).
    pub kind: u8,
    /// Distance to the next higher address, capped at [`MAX_GUESSED_SIZE`]; 0 for the last.
    pub size: u64,
}

/// The decoded table.
#[derive(Clone, Debug)]
pub struct Kallsyms {
    /// In the kernel's order (by address).
    pub symbols: Vec<KallsymsSymbol>,
    pub encoding: AddressEncoding,
    /// The names used two-byte lengths (6.1+).
    pub long_lengths: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KallsymsError {
    #[error("kallsyms: cannot read {what} at {addr:#x}: {why}")]
    Read {
        what: &'static str,
        addr: u64,
        why: String,
    },
    #[error("kallsyms: {0}")]
    Corrupt(String),
    #[error("kallsyms: no address encoding puts _stext at {stext:#x} (VMCOREINFO SYMBOL(_stext))")]
    NoEncoding { stext: u64 },
}

impl crate::error::ErrorCode for KallsymsError {
    fn code(&self) -> &'static str {
        match self {
            KallsymsError::Read { .. } => "not-dumped",
            _ => "corrupt-data",
        }
    }
}

/// Reads `len` bytes of kernel memory at an address.
pub type ReadFn<'a> = &'a dyn Fn(u64, usize) -> Result<Vec<u8>, String>;

fn read(
    r: ReadFn<'_>,
    what: &'static str,
    addr: u64,
    len: usize,
) -> Result<Vec<u8>, KallsymsError> {
    r(addr, len).map_err(|why| KallsymsError::Read { what, addr, why })
}

/// Decodes the table; `stext` is VMCOREINFO's `SYMBOL(_stext)`.
pub fn decode(
    t: &KallsymsTables,
    r: ReadFn<'_>,
    endian: Endian,
    stext: u64,
) -> Result<Kallsyms, KallsymsError> {
    let num = endian
        .uint(&read(r, "kallsyms_num_syms", t.num_syms, 4)?, 4)
        .unwrap_or(0);
    if num == 0 || num > u64::from(MAX_SYMS) {
        return Err(KallsymsError::Corrupt(format!(
            "kallsyms_num_syms is {num} (at most {MAX_SYMS} accepted)"
        )));
    }
    let num = num as usize;
    let tokens = tokens(t, r, endian)?;

    // the names, with the 6.1+ two-byte lengths first; the other reading only if the table
    // has a byte that reads both ways and the first reading does not place `_stext`
    let addresses = AddressTables::read(t, r, endian, num)?;
    for long in [true, false] {
        let Ok((names, ambiguous)) = names(t.names, num, r, &tokens, long) else {
            continue;
        };
        if let Some(i) = names.iter().position(|(_, n)| n == "_stext") {
            for enc in [
                AddressEncoding::BaseRelative,
                AddressEncoding::AbsolutePercpu,
                AddressEncoding::PlaceRelative,
                AddressEncoding::Absolute,
            ] {
                if addresses.address(enc, i) != Some(stext) {
                    continue;
                }
                let mut symbols: Vec<KallsymsSymbol> = names
                    .into_iter()
                    .enumerate()
                    .map(|(i, (kind, name))| KallsymsSymbol {
                        name,
                        address: addresses.address(enc, i).unwrap_or(0),
                        kind,
                        size: 0,
                    })
                    .collect();
                guess_sizes(&mut symbols);
                return Ok(Kallsyms {
                    symbols,
                    encoding: enc,
                    long_lengths: long && ambiguous,
                });
            }
        }
        if !ambiguous {
            break;
        }
    }
    Err(KallsymsError::NoEncoding { stext })
}

/// The 256 tokens.
fn tokens(
    t: &KallsymsTables,
    r: ReadFn<'_>,
    endian: Endian,
) -> Result<Vec<Vec<u8>>, KallsymsError> {
    let idx = read(r, "kallsyms_token_index", t.token_index, 512)?;
    let offsets: Vec<usize> = idx
        .chunks_exact(2)
        .map(|c| endian.uint(c, 2).unwrap_or(0) as usize)
        .collect();
    if offsets.first() != Some(&0) {
        return Err(KallsymsError::Corrupt(format!(
            "kallsyms_token_index at {:#x} does not start at 0",
            t.token_index
        )));
    }
    let max = offsets.iter().copied().max().unwrap_or(0);
    // the last token is at most a name long
    let table = read(
        r,
        "kallsyms_token_table",
        t.token_table,
        max + KSYM_NAME_LEN,
    )?;
    offsets
        .iter()
        .map(|&o| {
            let rest = table.get(o..).unwrap_or(&[]);
            let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                KallsymsError::Corrupt(format!("token at offset {o} has no terminating NUL"))
            })?;
            Ok(rest[..end].to_vec())
        })
        .collect()
}

/// A sequential reader of `kallsyms_names`, in chunks.
struct Names<'a> {
    r: ReadFn<'a>,
    base: u64,
    buf: Vec<u8>,
    /// Offset of `buf[0]` from `base`.
    at: usize,
    pos: usize,
}

impl Names<'_> {
    fn byte(&mut self) -> Result<u8, KallsymsError> {
        if self.pos >= self.at + self.buf.len() {
            self.at = self.pos;
            let addr = self.base.wrapping_add(self.pos as u64);
            // the last chunk may run past the table's mapping: shrink to the end of the page
            // the next byte is on (memory is mapped in whole pages), then fail
            let to_page_end = (PAGE - (addr % PAGE)) as usize;
            self.buf = match (self.r)(addr, CHUNK) {
                Ok(b) => b,
                Err(_) => (self.r)(addr, to_page_end).map_err(|why| KallsymsError::Read {
                    what: "kallsyms_names",
                    addr,
                    why,
                })?,
            };
        }
        let b = self.buf[self.pos - self.at];
        self.pos += 1;
        Ok(b)
    }
}

/// Walks `num` names; returns (type letter, name) per symbol and whether any length byte had
/// bit 7 set (the reading then depends on `long`).
fn names(
    base: u64,
    num: usize,
    r: ReadFn<'_>,
    tokens: &[Vec<u8>],
    long: bool,
) -> Result<(Vec<(u8, String)>, bool), KallsymsError> {
    let mut n = Names {
        r,
        base,
        buf: Vec::new(),
        at: 0,
        pos: 0,
    };
    let mut out = Vec::with_capacity(num);
    let mut ambiguous = false;
    let mut expanded = Vec::with_capacity(64);
    for i in 0..num {
        let b0 = n.byte()?;
        let len = if b0 & 0x80 != 0 {
            ambiguous = true;
            if long {
                let b1 = n.byte()?;
                if b1 & 0x80 != 0 {
                    return Err(KallsymsError::Corrupt(format!(
                        "symbol {i}: a length of more than two bytes"
                    )));
                }
                usize::from(b0 & 0x7f) | usize::from(b1) << 7
            } else {
                usize::from(b0)
            }
        } else {
            usize::from(b0)
        };
        if len == 0 {
            return Err(KallsymsError::Corrupt(format!(
                "symbol {i} has an empty name (at offset {})",
                n.pos - 1
            )));
        }
        expanded.clear();
        for _ in 0..len {
            let tok = &tokens[usize::from(n.byte()?)];
            expanded.extend_from_slice(tok);
            if expanded.len() > KSYM_NAME_LEN + 1 {
                return Err(KallsymsError::Corrupt(format!(
                    "symbol {i}: a name longer than {KSYM_NAME_LEN}"
                )));
            }
        }
        let Some((&kind, name)) = expanded.split_first() else {
            return Err(KallsymsError::Corrupt(format!(
                "symbol {i} expands to nothing"
            )));
        };
        out.push((kind, String::from_utf8_lossy(name).into_owned()));
    }
    Ok((out, ambiguous))
}

/// The raw address tables.
struct AddressTables {
    offsets: Option<(u64, Vec<i32>)>,
    relative_base: Option<u64>,
    addresses: Option<Vec<u64>>,
}

impl AddressTables {
    fn read(
        t: &KallsymsTables,
        r: ReadFn<'_>,
        endian: Endian,
        num: usize,
    ) -> Result<AddressTables, KallsymsError> {
        let offsets = match t.offsets {
            Some(at) => {
                let raw = read(r, "kallsyms_offsets", at, num * 4)?;
                let v = raw
                    .chunks_exact(4)
                    .map(|c| endian.uint(c, 4).unwrap_or(0) as u32 as i32)
                    .collect();
                Some((at, v))
            }
            None => None,
        };
        let relative_base = match t.relative_base {
            Some(at) => endian.uint(&read(r, "kallsyms_relative_base", at, 8)?, 8),
            None => None,
        };
        let addresses = match t.addresses {
            Some(at) => {
                let raw = read(r, "kallsyms_addresses", at, num * 8)?;
                Some(
                    raw.chunks_exact(8)
                        .map(|c| endian.uint(c, 8).unwrap_or(0))
                        .collect(),
                )
            }
            None => None,
        };
        Ok(AddressTables {
            offsets,
            relative_base,
            addresses,
        })
    }

    fn address(&self, enc: AddressEncoding, i: usize) -> Option<u64> {
        let off = || self.offsets.as_ref().and_then(|(_, v)| v.get(i).copied());
        match enc {
            AddressEncoding::Absolute => self.addresses.as_ref()?.get(i).copied(),
            AddressEncoding::BaseRelative => {
                Some(self.relative_base?.wrapping_add(u64::from(off()? as u32)))
            }
            AddressEncoding::AbsolutePercpu => {
                let o = off()?;
                if o >= 0 {
                    Some(o as u64)
                } else {
                    Some(
                        self.relative_base?
                            .wrapping_sub(1)
                            .wrapping_sub(o as i64 as u64),
                    )
                }
            }
            AddressEncoding::PlaceRelative => {
                let (at, _) = self.offsets.as_ref()?;
                let slot = at.wrapping_add(4 * i as u64);
                Some(slot.wrapping_add(off()? as i64 as u64))
            }
        }
    }
}

/// Sizes as the distance to the next higher address (symbols at one address share it), in one
/// pass over the address order.
fn guess_sizes(symbols: &mut [KallsymsSymbol]) {
    let mut order: Vec<usize> = (0..symbols.len()).collect();
    // the kernel's table is sorted by address already (scripts/kallsyms.c): checked, not assumed
    if !symbols.windows(2).all(|w| w[0].address <= w[1].address) {
        order.sort_by_key(|&i| symbols[i].address);
    }
    let (mut here, mut above): (Option<u64>, Option<u64>) = (None, None);
    for &i in order.iter().rev() {
        let a = symbols[i].address;
        if here != Some(a) {
            above = here;
            here = Some(a);
        }
        symbols[i].size = above.map_or(0, |b| (b - a).min(MAX_GUESSED_SIZE));
    }
}

impl Kallsyms {
    /// The symbols for the table behind the interface the vmlinux symbols use
    /// ([`SymbolTable::from_runtime`]). The nm letter gives the kind (`t`/`T`/`w`/`W` code,
    /// `d`/`D`/`b`/`B`/`r`/`R`/`g`/`G`/`s`/`S`/`v`/`V` data, `a`/`A` a constant) and, upper
    /// case, global binding; addresses are the running kernel's already.
    pub fn into_runtime_symbols(self) -> impl ExactSizeIterator<Item = RuntimeSymbol> {
        self.symbols.into_iter().map(|s| RuntimeSymbol {
            name: s.name,
            address: s.address,
            size: s.size,
            kind: letter_kind(s.kind),
            global: s.kind.is_ascii_uppercase(),
            absolute: s.kind.eq_ignore_ascii_case(&b'a'),
        })
    }
}

/// The symbol kind an nm letter stands for.
pub fn letter_kind(letter: u8) -> SymKind {
    match letter.to_ascii_lowercase() {
        b't' | b'w' => SymKind::Text,
        b'd' | b'b' | b'r' | b'g' | b's' | b'v' => SymKind::Data,
        _ => SymKind::Other,
    }
}

/// How far below the token table [`scan`] looks for the markers and the names.
const SCAN_BACK: u64 = 8 << 20;

/// Finds the tables in the kernel image, within `limit` bytes of `_stext`, without VMCOREINFO's
/// `SYMBOL(kallsyms_*)` lines (kernels before 6.0), proving each step by the tables' own structure, and the whole by
/// [`decode`] putting `_stext` at VMCOREINFO's `SYMBOL(_stext)`:
/// 1. the token table: every digit is a token of its own at its own code point, so the table
///    holds the run `"0\0" "1\0" … "9\0"`;
/// 2. the token index, just after the table: 256 increasing u16, the first 0, whose entries
///    for `'0'`…`'9'` are 2 apart and put `'0'` at that run, every token ending in a NUL;
/// 3. the markers, below the token table (only `kallsyms_seqs_of_names`, 3 bytes a symbol,
///    may lie between): u32 offsets into the names of every 256th symbol, the first 0;
/// 4. the names, ending where the markers begin, preceded by `kallsyms_num_syms`: walking that
///    many length-prefixed names must pass every marker and end at the markers;
/// 5. the addresses: `kallsyms_offsets` + `kallsyms_relative_base` (or `kallsyms_addresses`)
///    below `kallsyms_num_syms` (scripts/kallsyms.c's order since 4.20), or above the token
///    index (its later order); [`decode`] keeps the one that places `_stext` right, and its
///    decoding is returned with the tables (a scan's proof is a whole decode: not done twice).
///
/// Every table starts at a multiple of 8 (scripts/kallsyms.c aligns each label so on 64-bit
/// kernels).
pub fn scan(
    vi: &VmcoreInfo,
    r: ReadFn<'_>,
    endian: Endian,
    limit: u64,
) -> Result<(KallsymsTables, Kallsyms), KallsymsError> {
    let stext = vi
        .symbol("_stext")
        .ok_or_else(|| KallsymsError::Corrupt("no SYMBOL(_stext) to scan from".into()))?;
    let digits = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00";
    let hits = crate::debuginfo::memscan::find_all(r, stext, limit, digits, 1, 64);
    for p in &hits {
        let Some((table, index)) = token_tables(r, endian, *p) else {
            continue;
        };
        for cand in below_token_table(r, endian, table) {
            let (num_at, names, n) = cand;
            let mut t = KallsymsTables {
                num_syms: num_at,
                names,
                token_table: table,
                token_index: index,
                offsets: None,
                relative_base: None,
                addresses: None,
            };
            // the orders of the address tables: below num_syms, or above the token index
            let below_offsets = (num_at - 8).saturating_sub((4 * n).div_ceil(8) * 8);
            let above = index.saturating_add(512).div_ceil(8).saturating_mul(8);
            let layouts = [
                (Some(below_offsets), Some(num_at - 8), None),
                (None, None, Some(num_at.saturating_sub(8 * n))),
                (
                    Some(above),
                    Some(above.saturating_add((4 * n).div_ceil(8) * 8)),
                    None,
                ),
                (Some(above), None, None),
            ];
            for (offsets, relative_base, addresses) in layouts {
                t.offsets = offsets;
                t.relative_base = relative_base;
                t.addresses = addresses;
                if let Ok(decoded) = decode(&t, r, endian, stext) {
                    return Ok((t, decoded));
                }
            }
        }
    }
    Err(KallsymsError::Corrupt(format!(
        "no kallsyms tables found in {limit:#x} bytes from _stext {stext:#x} ({} token-table candidates)",
        hits.len()
    )))
}

/// Steps 1–2 of [`scan`]: the token table and index around a digit run at `p`.
fn token_tables(r: ReadFn<'_>, endian: Endian, p: u64) -> Option<(u64, u64)> {
    const WINDOW: usize = 64 << 10;
    let after = r(p, WINDOW)
        .or_else(|_| r(p, 4096 - (p % 4096) as usize))
        .ok()?;
    let u16s = |b: &[u8]| -> Vec<usize> {
        b.chunks_exact(2)
            .map(|c| endian.uint(c, 2).unwrap_or(0) as usize)
            .collect()
    };
    let mut q = (2 - (p % 2) as usize) % 2 + 20;
    while q + 512 <= after.len() {
        let idx = u16s(&after[q..q + 512]);
        let zero = idx[usize::from(b'0')];
        let ok = idx[0] == 0
            && (1..10).all(|d| idx[usize::from(b'0') + d] == zero + 2 * d)
            && idx.windows(2).all(|w| w[0] < w[1])
            && u64::try_from(zero).is_ok_and(|z| z <= p);
        if ok {
            let table = p - zero as u64;
            let last = idx[255];
            let bytes = r(table, last + KSYM_NAME_LEN).ok()?;
            let terminated = idx[1..].iter().all(|&o| bytes.get(o - 1) == Some(&0));
            let end = bytes.get(last..)?.iter().position(|&b| b == 0)? + last + 1;
            let index = p.saturating_add(q as u64);
            let table_end = table.saturating_add(end as u64);
            if terminated && index >= table_end && index - table_end < 16 {
                return Some((table, index));
            }
        }
        q += 2;
    }
    None
}

/// Steps 3–4 of [`scan`]: (address of `kallsyms_num_syms`, names, count) candidates below the
/// token table.
fn below_token_table(r: ReadFn<'_>, endian: Endian, table: u64) -> Vec<(u64, u64, u64)> {
    let base = table.saturating_sub(SCAN_BACK);
    let Some(mem) = crate::debuginfo::memscan::read_lenient(r, base, (table - base) as usize)
    else {
        return Vec::new();
    };
    let u32_at = |a: u64| -> Option<u64> {
        let o = usize::try_from(a.checked_sub(base)?).ok()?;
        endian.uint(mem.get(o..o + 4)?, 4)
    };
    let mut out = Vec::new();
    // markers: from each 8-aligned zero word below the table, a run of increasing offsets
    let mut m = table & !7;
    while m > base + 8 && out.len() < 4 {
        m -= 8;
        if u32_at(m) != Some(0) {
            continue;
        }
        let mut markers = vec![0u64];
        while let Some(v) = u32_at(m + 4 * markers.len() as u64) {
            let prev = *markers.last().unwrap_or(&0);
            if v <= prev || v - prev < 256 * 2 || v - prev > 256 * (KSYM_NAME_LEN as u64 + 2) {
                break;
            }
            markers.push(v);
        }
        let k = markers.len() as u64;
        let run_end = m + 4 * k;
        let gap = table.saturating_sub(run_end);
        if k < 2 || gap > 3 * 256 * k + 16 || (gap > 16 && gap < 3 * 256 * (k - 1)) {
            continue;
        }
        // names end at the markers (up to 7 bytes of padding); the last marker's symbol and
        // up to 255 more follow it
        let last = *markers.last().unwrap_or(&0);
        let hi = m.saturating_sub(last);
        let lo = hi
            .saturating_sub(256 * (KSYM_NAME_LEN as u64 + 2))
            .max(base + 8);
        let mut names = hi & !7;
        while names >= lo {
            for num_at in [names - 8, names - 4] {
                if let Some(n) = u32_at(num_at)
                    && n > 256 * (k - 1)
                    && n <= 256 * k
                    && names_walk_fits(&mem, base, names, n, &markers, m)
                {
                    out.push((num_at, names, n));
                }
            }
            names -= 8;
        }
    }
    out
}

/// Whether walking `n` names from `names` passes every marker and ends within 8 bytes of the
/// markers at `m`, with one-byte lengths or with the 6.1+ two-byte ones.
fn names_walk_fits(mem: &[u8], base: u64, names: u64, n: u64, markers: &[u64], m: u64) -> bool {
    let Some(start) = names.checked_sub(base).map(|o| o as usize) else {
        return false;
    };
    'encoding: for long in [true, false] {
        let mut pos = start;
        for i in 0..n as usize {
            if i % 256 == 0 && markers.get(i / 256) != Some(&((pos - start) as u64)) {
                continue 'encoding;
            }
            let Some(&b0) = mem.get(pos) else {
                continue 'encoding;
            };
            let len = if long && b0 & 0x80 != 0 {
                let Some(&b1) = mem.get(pos + 1) else {
                    continue 'encoding;
                };
                pos += 1;
                usize::from(b0 & 0x7f) | usize::from(b1) << 7
            } else {
                usize::from(b0)
            };
            if len == 0 {
                continue 'encoding;
            }
            pos += 1 + len;
        }
        let end = base + pos as u64;
        if end <= m && m - end < 8 {
            return true;
        }
    }
    false
}
