//! The vmlinux ELF symbol table, shifted by the dump's KASLR offset.
//!
//! Read eagerly: a 6.1 vmlinux has about 120 000 symbols, a few milliseconds of work. Symbols are
//! kept sorted by address for address → `symbol+offset` lookups, and hashed by name. Where a name
//! occurs more than once (static functions in several files), name lookup prefers a global symbol,
//! then the first data/text symbol with a size.
//!
//! KASLR: every kernel-image symbol (text, data, bss, per-CPU section *offsets* excepted) moves by
//! the same offset, VMCOREINFO `KERNELOFFSET`. Absolute symbols (`SHN_ABS`, e.g. the per-CPU
//! section's zero-based symbols on x86_64 are in `.data..percpu` whose addresses start at 0) do not
//! move: a symbol whose link-time address is below the kernel image is left unshifted.

use std::collections::HashMap;

use object::{Object, ObjectSymbol, SymbolKind};

use crate::addr::VirtAddr;
use crate::debuginfo::elf::Vmlinux;

/// One symbol, with its address already shifted by the KASLR offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub address: VirtAddr,
    pub size: u64,
    pub kind: SymKind,
    pub global: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymKind {
    Text,
    Data,
    Other,
}

/// Name ↔ address lookups over the vmlinux symbols.
#[derive(Debug, Default)]
pub struct SymbolTable {
    by_addr: Vec<Symbol>,
    by_name: HashMap<String, usize>,
    kaslr_offset: u64,
}

/// Link-time addresses below this are not in the kernel image (per-CPU offsets, absolute
/// constants) and are not shifted by KASLR. Every supported architecture links the kernel image
/// in the top half of the address space.
const KERNEL_IMAGE_MIN: u64 = 0x8000_0000_0000_0000;

impl SymbolTable {
    /// Reads the `.symtab` (or, failing that, `.dynsym`) of the vmlinux.
    pub fn from_vmlinux(vmlinux: &Vmlinux, kaslr_offset: u64) -> SymbolTable {
        let file = vmlinux.object();
        let mut list = Vec::new();
        for s in file.symbols() {
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || s.is_undefined() {
                continue;
            }
            if matches!(s.kind(), SymbolKind::Section | SymbolKind::File) {
                continue;
            }
            let kind = match s.kind() {
                SymbolKind::Text => SymKind::Text,
                SymbolKind::Data => SymKind::Data,
                _ => SymKind::Other,
            };
            list.push((name.to_string(), s.address(), s.size(), kind, s.is_global()));
        }
        SymbolTable::from_parts(list, kaslr_offset)
    }

    /// Builds a table from `(name, link-time address, size, kind, global)` tuples.
    pub fn from_parts(
        list: Vec<(String, u64, u64, SymKind, bool)>,
        kaslr_offset: u64,
    ) -> SymbolTable {
        let mut by_addr: Vec<Symbol> = list
            .into_iter()
            .map(|(name, addr, size, kind, global)| {
                let address = if addr >= KERNEL_IMAGE_MIN {
                    VirtAddr(addr.wrapping_add(kaslr_offset))
                } else {
                    VirtAddr(addr)
                };
                Symbol {
                    name,
                    address,
                    size,
                    kind,
                    global,
                }
            })
            .collect();
        by_addr.sort_by(|a, b| a.address.cmp(&b.address).then(b.size.cmp(&a.size)));
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(by_addr.len());
        for (i, s) in by_addr.iter().enumerate() {
            match by_name.get(&s.name) {
                Some(&j) => {
                    let old = &by_addr[j];
                    let better = (s.global && !old.global)
                        || (s.global == old.global && old.size == 0 && s.size > 0);
                    if better {
                        by_name.insert(s.name.clone(), i);
                    }
                }
                None => {
                    by_name.insert(s.name.clone(), i);
                }
            }
        }
        SymbolTable {
            by_addr,
            by_name,
            kaslr_offset,
        }
    }

    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr_offset
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The symbol of that name (KASLR-shifted).
    pub fn lookup(&self, name: &str) -> Option<&Symbol> {
        self.by_name.get(name).and_then(|&i| self.by_addr.get(i))
    }

    /// The KASLR-shifted address of a symbol.
    pub fn address(&self, name: &str) -> Option<VirtAddr> {
        self.lookup(name).map(|s| s.address)
    }

    /// The symbol containing `addr` and the offset into it: the closest symbol at or below the
    /// address, accepted if the address is inside its size (or it has no size and it is the
    /// last symbol before the address).
    pub fn symbolize(&self, addr: VirtAddr) -> Option<(&Symbol, u64)> {
        let idx = self.by_addr.partition_point(|s| s.address <= addr);
        let candidates = self.by_addr.get(..idx)?;
        // Several symbols may share an address; prefer one whose extent covers addr.
        let last = candidates.last()?;
        let same: Vec<&Symbol> = candidates
            .iter()
            .rev()
            .take_while(|s| s.address == last.address)
            .collect();
        let off = addr.0 - last.address.0;
        let covering = same
            .iter()
            .copied()
            .filter(|s| off < s.size)
            .max_by_key(|s| (s.global, s.kind == SymKind::Text || s.kind == SymKind::Data));
        match covering {
            Some(s) => Some((s, off)),
            None if same.iter().all(|s| s.size == 0) => Some((last, off)),
            None => None,
        }
    }

    /// `name+0xoff` for an address, or `None` if no symbol covers it.
    pub fn format_address(&self, addr: VirtAddr) -> Option<String> {
        self.symbolize(addr).map(|(s, off)| {
            if off == 0 {
                s.name.clone()
            } else {
                format!("{}+{:#x}", s.name, off)
            }
        })
    }

    /// Every symbol, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = &Symbol> {
        self.by_addr.iter()
    }
}
