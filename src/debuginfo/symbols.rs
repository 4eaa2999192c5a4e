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
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

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

/// A symbol as stored: the name borrows the vmlinux's `.strtab` (kept alive by `_owner`) or the
/// table's own arena, so reading 120 000 symbols allocates no strings.
#[derive(Clone, Copy, Debug)]
struct Entry {
    name: &'static str,
    address: u64,
    size: u64,
    kind: SymKind,
    global: bool,
}

impl Entry {
    fn to_symbol(self) -> Symbol {
        Symbol {
            name: self.name.to_string(),
            address: VirtAddr(self.address),
            size: self.size,
            kind: self.kind,
            global: self.global,
        }
    }
}

/// Name ↔ address lookups over the vmlinux symbols.
pub struct SymbolTable {
    by_addr: Vec<Entry>,
    by_name: HashMap<&'static str, u32, foldhash::fast::RandomState>,
    kaslr_offset: u64,
    // Declared last: the names above borrow from these.
    _arena: Vec<Box<str>>,
    _owner: Option<Arc<Vmlinux>>,
}

impl std::fmt::Debug for SymbolTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTable")
            .field("symbols", &self.by_addr.len())
            .field("kaslr_offset", &self.kaslr_offset)
            .finish()
    }
}

/// Link-time addresses below this are not in the kernel image (per-CPU offsets, absolute
/// constants) and are not shifted by KASLR. Every supported architecture links the kernel image
/// in the top half of the address space.
const KERNEL_IMAGE_MIN: u64 = 0x8000_0000_0000_0000;

fn shift(addr: u64, kaslr_offset: u64) -> u64 {
    if addr >= KERNEL_IMAGE_MIN {
        addr.wrapping_add(kaslr_offset)
    } else {
        addr
    }
}

impl SymbolTable {
    /// Reads the `.symtab` of the vmlinux.
    pub fn from_vmlinux(vmlinux: &Arc<Vmlinux>, kaslr_offset: u64) -> SymbolTable {
        let file = vmlinux.object();
        // The exact room up front (an ELF symbol is 24 bytes on 64-bit, 16 on 32-bit): growing
        // by doubling would copy the list several times and fault in twice its pages.
        let entry = if file.is_64() { 24 } else { 16 };
        let count = file
            .section_by_name(".symtab")
            .map_or(0, |s| s.size() / entry);
        let mut list = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24));
        for s in file.symbols() {
            // `file` is an `object::File<'static>` over the map `vmlinux` owns, so the names
            // are `&'static` already; the `Arc` held below keeps them valid.
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || s.is_undefined() {
                continue;
            }
            let kind = match s.kind() {
                SymbolKind::Section | SymbolKind::File => continue,
                SymbolKind::Text => SymKind::Text,
                SymbolKind::Data => SymKind::Data,
                _ => SymKind::Other,
            };
            list.push(Entry {
                name,
                address: shift(s.address(), kaslr_offset),
                size: s.size(),
                kind,
                global: s.is_global(),
            });
        }
        SymbolTable::index(list, kaslr_offset, Vec::new(), Some(vmlinux.clone()))
    }

    /// Builds a table from `(name, link-time address, size, kind, global)` tuples.
    pub fn from_parts(
        list: Vec<(String, u64, u64, SymKind, bool)>,
        kaslr_offset: u64,
    ) -> SymbolTable {
        let arena: Vec<Box<str>> = list.iter().map(|t| t.0.clone().into_boxed_str()).collect();
        let entries = list
            .iter()
            .zip(&arena)
            .map(|((_, addr, size, kind, global), name)| Entry {
                // SAFETY: the boxed strings live in `_arena` for as long as the table and their
                // heap buffers never move.
                name: unsafe { &*(name.as_ref() as *const str) },
                address: shift(*addr, kaslr_offset),
                size: *size,
                kind: *kind,
                global: *global,
            })
            .collect();
        SymbolTable::index(entries, kaslr_offset, arena, None)
    }

    fn index(
        mut by_addr: Vec<Entry>,
        kaslr_offset: u64,
        arena: Vec<Box<str>>,
        owner: Option<Arc<Vmlinux>>,
    ) -> SymbolTable {
        by_addr.sort_unstable_by(|a, b| {
            // `then_with`: the names are compared only on a tie (an eager `then` would
            // compare two names in `.strtab` on every one of the ~2 million comparisons).
            a.address
                .cmp(&b.address)
                .then_with(|| b.size.cmp(&a.size))
                .then_with(|| a.name.cmp(b.name))
        });
        let mut by_name: HashMap<&'static str, u32, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(by_addr.len(), Default::default());
        for (i, s) in by_addr.iter().enumerate() {
            let i = i as u32;
            by_name
                .entry(s.name)
                .and_modify(|j| {
                    let old = &by_addr[*j as usize];
                    let better = (s.global && !old.global)
                        || (s.global == old.global && old.size == 0 && s.size > 0);
                    if better {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
        SymbolTable {
            by_addr,
            by_name,
            kaslr_offset,
            _arena: arena,
            _owner: owner,
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

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name
            .get(name)
            .and_then(|&i| self.by_addr.get(i as usize))
    }

    /// The symbol of that name (KASLR-shifted).
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.entry(name).map(|e| e.to_symbol())
    }

    /// The KASLR-shifted address of a symbol.
    pub fn address(&self, name: &str) -> Option<VirtAddr> {
        self.entry(name).map(|s| VirtAddr(s.address))
    }

    /// The symbol containing `addr` and the offset into it: the closest symbol at or below the
    /// address, accepted if the address is inside its size (or, when every symbol there has no
    /// size, the nearest one).
    pub fn symbolize(&self, addr: VirtAddr) -> Option<(Symbol, u64)> {
        let idx = self.by_addr.partition_point(|s| s.address <= addr.0);
        let candidates = self.by_addr.get(..idx)?;
        let last = candidates.last()?;
        let same = candidates
            .iter()
            .rev()
            .take_while(|s| s.address == last.address);
        let off = addr.0 - last.address;
        let covering = same
            .clone()
            .filter(|s| off < s.size)
            .max_by_key(|s| (s.global, s.kind != SymKind::Other));
        match covering {
            Some(s) => Some((s.to_symbol(), off)),
            None if same.clone().all(|s| s.size == 0) => Some((last.to_symbol(), off)),
            None => None,
        }
    }

    /// `name+0xoff` for an address, or `None` if no symbol covers it.
    pub fn format_address(&self, addr: VirtAddr) -> Option<String> {
        self.symbolize(addr).map(|(s, off)| {
            if off == 0 {
                s.name
            } else {
                format!("{}+{:#x}", s.name, off)
            }
        })
    }

    /// Every symbol, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.by_addr.iter().map(|e| e.to_symbol())
    }
}
