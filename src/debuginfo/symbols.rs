//! The vmlinux ELF symbol table, shifted by the dump's KASLR offset.
//!
//! A 6.1 vmlinux has about 120 000 symbols. They are read once, in `.symtab` order, with names
//! borrowed from the mapped `.strtab`, and hashed by name at once: every report looks globals up
//! by name. The address-sorted order that address → `symbol+offset` lookups need is built only on
//! the first such lookup (sorting 120 000 symbols costs several milliseconds and most reports
//! never symbolize an address). Where a name occurs more than once (static functions in several
//! files), name lookup prefers a global symbol, then one with a size, then the lowest address
//! (and of those the largest size): the first of the best in address order.
//!
//! KASLR: every kernel-image symbol (text, data, bss, per-CPU section *offsets* excepted) moves by
//! the same offset, VMCOREINFO `KERNELOFFSET`. Absolute symbols (`SHN_ABS`, e.g. the per-CPU
//! section's zero-based symbols on x86_64 are in `.data..percpu` whose addresses start at 0) do not
//! move: a symbol whose link-time address is below the kernel image is left unshifted.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

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
    /// In `.symtab` order.
    entries: Vec<Entry>,
    /// Index into `entries` of the preferred symbol of each name.
    by_name: HashMap<&'static str, u32, foldhash::fast::RandomState>,
    /// Indices into `entries` sorted by address, then size (largest first), then name; built on
    /// the first address lookup.
    by_addr: OnceLock<Vec<u32>>,
    kaslr_offset: u64,
    // Declared last: the names above borrow from these.
    _arena: Vec<Box<str>>,
    _owner: Option<Arc<Vmlinux>>,
}

impl std::fmt::Debug for SymbolTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTable")
            .field("symbols", &self.entries.len())
            .field("kaslr_offset", &self.kaslr_offset)
            .finish()
    }
}

/// Whether `new` is preferred over `old`, a symbol of the same name: a global one, then one with
/// a size, then the lower address, then the larger size (the first in address order).
fn preferred(new: &Entry, old: &Entry) -> bool {
    let rank = |e: &Entry| (e.global, e.size > 0);
    match rank(new).cmp(&rank(old)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            (new.address, std::cmp::Reverse(new.size)) < (old.address, std::cmp::Reverse(old.size))
        }
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
        entries: Vec<Entry>,
        kaslr_offset: u64,
        arena: Vec<Box<str>>,
        owner: Option<Arc<Vmlinux>>,
    ) -> SymbolTable {
        // Indices are u32: more than 4 billion symbols is not a vmlinux; keep the first ones.
        let entries = {
            let mut entries = entries;
            entries.truncate(u32::MAX as usize);
            entries
        };
        let mut by_name: HashMap<&'static str, u32, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (i, s) in entries.iter().enumerate() {
            let i = i as u32;
            by_name
                .entry(s.name)
                .and_modify(|j| {
                    if let Some(old) = entries.get(*j as usize)
                        && preferred(s, old)
                    {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
        SymbolTable {
            entries,
            by_name,
            by_addr: OnceLock::new(),
            kaslr_offset,
            _arena: arena,
            _owner: owner,
        }
    }

    /// The entries in address order (see `by_addr`), sorted on first use.
    fn by_addr(&self) -> &[u32] {
        self.by_addr.get_or_init(|| {
            let e = &self.entries;
            let mut order: Vec<u32> = (0..e.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                let (a, b) = (&e[a as usize], &e[b as usize]);
                // `then_with`: the names are compared only on a tie.
                a.address
                    .cmp(&b.address)
                    .then_with(|| b.size.cmp(&a.size))
                    .then_with(|| a.name.cmp(b.name))
            });
            order
        })
    }

    fn sorted(&self, i: u32) -> &Entry {
        // Every index in `by_addr` comes from `0..entries.len()`.
        &self.entries[i as usize]
    }

    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr_offset
    }

    /// The vmlinux the table was read from, when it was (for its other sections).
    pub fn vmlinux(&self) -> Option<&Arc<Vmlinux>> {
        self._owner.as_ref()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name
            .get(name)
            .and_then(|&i| self.entries.get(i as usize))
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
        let by_addr = self.by_addr();
        let idx = by_addr.partition_point(|&i| self.sorted(i).address <= addr.0);
        let candidates = by_addr.get(..idx)?;
        let last = self.sorted(*candidates.last()?);
        let same = candidates
            .iter()
            .rev()
            .map(|&i| self.sorted(i))
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
        self.by_addr().iter().map(|&i| self.sorted(i).to_symbol())
    }
}
