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
use crate::debuginfo::symbols::{RuntimeSymbol, SymKind, SymbolTable};
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

    // the names, with the 6.1+ two-byte lengths first; the other reading only if it matters
    let (names, ambiguous) = names(t.names, num, r, &tokens, true)?;
    let candidates: Vec<(Vec<(u8, String)>, bool)> = if ambiguous {
        let mut c = vec![(names, true)];
        if let Ok((short, _)) = self::names(t.names, num, r, &tokens, false) {
            c.push((short, false));
        }
        c
    } else {
        vec![(names, false)]
    };
    let addresses = AddressTables::read(t, r, endian, num)?;
    for (names, long) in candidates {
        let Some(i) = names.iter().position(|(_, n)| n == "_stext") else {
            continue;
        };
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
                long_lengths: long,
            });
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
    order.sort_by_key(|&i| symbols[i].address);
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
    /// The table behind the same interface the vmlinux symbols use. The nm letter gives the
    /// kind (`t`/`T`/`w`/`W` code, `d`/`D`/`b`/`B`/`r`/`R`/`g`/`G`/`s`/`S`/`v`/`V` data, `a`/`A`
    /// a constant) and, upper case, global binding; addresses are the running kernel's already.
    pub fn symbol_table(&self, kaslr_offset: u64) -> SymbolTable {
        let list = self
            .symbols
            .iter()
            .map(|s| RuntimeSymbol {
                name: s.name.clone(),
                address: s.address,
                size: s.size,
                kind: letter_kind(s.kind),
                global: s.kind.is_ascii_uppercase(),
                absolute: s.kind.eq_ignore_ascii_case(&b'a'),
            })
            .collect();
        SymbolTable::from_runtime(list, kaslr_offset)
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

/// Finds the tables without VMCOREINFO's `SYMBOL(kallsyms_*)` lines (kernels before 6.0): see
/// the module documentation.
pub fn scan(
    vi: &VmcoreInfo,
    r: ReadFn<'_>,
    endian: Endian,
) -> Result<KallsymsTables, KallsymsError> {
    let _ = (vi, r, endian);
    Err(KallsymsError::Corrupt(
        "VMCOREINFO names no kallsyms tables".into(),
    ))
}
