//! The vmlinux ELF symbol table, shifted by the dump's KASLR offset.
//!
//! A 6.1 vmlinux has about 120 000 symbols. They are read once, in `.symtab` order, straight from
//! the ELF symbol records (`Elf64_Sym`/`Elf32_Sym`), with names borrowed from the mapped `.strtab`,
//! and hashed by name at once: every report looks globals up by name. Each symbol keeps its
//! `.symtab` index and whether its name is shared, so the DWARF placement of variables
//! ([`SymbolTable::sole_symtab_index`]) needs no name index of its own. The address-sorted order that address → `symbol+offset` lookups need is built only on
//! the first such lookup (sorting 120 000 symbols costs several milliseconds and most reports
//! never symbolize an address). Where a name occurs more than once (static functions in several
//! files), name lookup prefers a global symbol, then one with a size, then the lowest address
//! (and of those the largest size): the first of the best in address order.
//!
//! Code addresses (backtrace frames) are looked up by [`SymbolTable::code_symbol`], with the rules
//! of the kernel's own `%pB` printing adapted to an ELF symbol table: padding and CFI symbols
//! (`__pfx_*`, `__cfi_*`, `__kcfi_typeid_*`) and absolute symbols never name code, a global
//! function wins over other symbols at its address, and a symbol without a size extends to the
//! next symbol.
//!
//! KASLR: every kernel-image symbol (text, data, bss, per-CPU section *offsets* excepted) moves by
//! the same offset, VMCOREINFO `KERNELOFFSET`. Absolute symbols (`SHN_ABS`, e.g. the per-CPU
//! section's zero-based symbols on x86_64 are in `.data..percpu` whose addresses start at 0) do not
//! move: a symbol whose link-time address is below the kernel image is left unshifted.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

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

/// A symbol as stored: the name borrows the vmlinux's `.strtab` (kept alive by `owner`) or the
/// table's own arena, so reading 120 000 symbols allocates no strings.
#[derive(Clone, Copy, Debug)]
struct Entry {
    name: &'static str,
    address: u64,
    size: u64,
    kind: SymKind,
    global: bool,
    /// `SHN_ABS`: a constant, not an address in a section.
    absolute: bool,
    /// Whether another symbol has the same name.
    shared_name: bool,
    /// The index in `.symtab` (`u32::MAX` for a table not read from a vmlinux).
    symtab_index: u32,
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
    /// The names of a table not read from a vmlinux, one after another.
    _arena: String,
    owner: Option<Arc<Vmlinux>>,
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

/// A symbol for [`SymbolTable::from_parts`]: name, link-time address, size, kind, global.
pub type SymbolParts = (String, u64, u64, SymKind, bool);

/// A symbol for [`SymbolTable::from_runtime`], at its address in the running kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeSymbol {
    pub name: String,
    pub address: u64,
    pub size: u64,
    pub kind: SymKind,
    pub global: bool,
    /// A constant, not an address (`SHN_ABS`; nm's `A`).
    pub absolute: bool,
}

/// A code symbol found by [`SymbolTable::code_symbol`]: its name, start and extent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSymbol {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

/// How many symbols [`SymbolTable::code_symbol`] walks back over to find an eligible one.
const CODE_LOOKBACK: usize = 64;

/// Whether a symbol may name code in a backtrace: not absolute (kCFI type hashes, per-CPU
/// offsets), not the 16-byte padding before a function (`__pfx_`, x86 6.2+), not a kCFI preamble
/// (`__cfi_`, `__kcfi_typeid_`), not an ARM/RISC-V mapping symbol (`$x`, `$d`) or a local label (`.L*`, `L0*`), as
/// `is_mapping_symbol()` (include/linux/module_symbol.h) skips them.
pub fn code_eligible(name: &str, absolute: bool) -> bool {
    !absolute
        && !name.is_empty()
        && !name.starts_with("__pfx_")
        && !name.starts_with("__cfi_")
        && !name.starts_with("__kcfi_typeid_")
        && !name.starts_with('$')
        && !name.starts_with(".L")
        && !name.starts_with("L0")
}

/// Which of several symbols at one address names it: a global function first, then any
/// function, then a symbol with a size, then a global one.
pub fn code_rank(function: bool, global: bool, size: u64) -> (bool, bool, bool, bool) {
    (function && global, function, size > 0, global)
}

/// Link-time addresses below this are not in the kernel image (per-CPU offsets, absolute
/// constants) and are not shifted by KASLR. x86_64 and arm64 link the kernel image in the top
/// half of the address space; s390x links it low (its first loadable segment, [`image_min`]).
const KERNEL_IMAGE_MIN: u64 = 0x8000_0000_0000_0000;

fn shift_from(addr: u64, kaslr_offset: u64, min: u64) -> u64 {
    if addr >= min {
        addr.wrapping_add(kaslr_offset)
    } else {
        addr
    }
}

fn shift(addr: u64, kaslr_offset: u64) -> u64 {
    shift_from(addr, kaslr_offset, KERNEL_IMAGE_MIN)
}

/// The lowest link-time address of the kernel image: [`KERNEL_IMAGE_MIN`], but for s390x, whose
/// vmlinux is linked at 0x100000 and from 6.10 relocated as a whole to `KERNELOFFSET` (per-CPU
/// variables included: they lie in the image there), the start of its first `PT_LOAD`.
fn image_min<Elf: object::read::elf::FileHeader<Endian = object::Endianness>>(
    file: &object::read::elf::ElfFile<'static, Elf, &'static [u8]>,
) -> u64 {
    use object::read::elf::ProgramHeader;
    use object::{Object, elf};
    if file.architecture() != object::Architecture::S390x {
        return KERNEL_IMAGE_MIN;
    }
    let endian = file.endian();
    file.elf_program_headers()
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| p.p_vaddr(endian).into())
        .min()
        .unwrap_or(KERNEL_IMAGE_MIN)
}

/// The defined, named symbols of an ELF file's `.symtab` (sections and files left out), read
/// from the raw table: the same as `object`'s generic symbol API gives, without its per-symbol
/// dispatch, and with a name checked for UTF-8 only when it is not ASCII (kernel symbols are).
fn read_elf<Elf: object::read::elf::FileHeader<Endian = object::Endianness>>(
    file: &object::read::elf::ElfFile<'static, Elf, &'static [u8]>,
    kaslr_offset: u64,
) -> Vec<Entry> {
    use object::elf;
    use object::read::elf::Sym;
    let endian = file.endian();
    let table = file.elf_symbol_table();
    let strings = table.strings();
    // The exact room up front: growing by doubling would copy the list several times and
    // fault in twice its pages.
    let mut list = Vec::with_capacity(table.len().min(1 << 24));
    let min = image_min(file);
    for (index, sym) in table.enumerate().skip(1) {
        let kind = match sym.st_type() {
            elf::STT_SECTION | elf::STT_FILE => continue,
            elf::STT_OBJECT | elf::STT_COMMON => SymKind::Data,
            elf::STT_FUNC | elf::STT_GNU_IFUNC => SymKind::Text,
            _ => SymKind::Other,
        };
        if sym.is_undefined(endian) {
            continue;
        }
        let Ok(name) = strings.get(sym.st_name(endian)) else {
            continue;
        };
        let name = if name.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            unsafe { std::str::from_utf8_unchecked(name) }
        } else {
            match std::str::from_utf8(name) {
                Ok(n) => n,
                Err(_) => continue,
            }
        };
        if name.is_empty() {
            continue;
        }
        // A common symbol's value is its alignment, not an address.
        let address = if sym.is_common(endian) {
            0
        } else {
            sym.st_value(endian).into()
        };
        list.push(Entry {
            name,
            address: if sym.st_shndx(endian) == elf::SHN_ABS {
                shift(address, kaslr_offset)
            } else {
                shift_from(address, kaslr_offset, min)
            },
            size: sym.st_size(endian).into(),
            kind,
            global: !sym.is_local(),
            absolute: sym.st_shndx(endian) == elf::SHN_ABS,
            shared_name: false,
            symtab_index: u32::try_from(index.0).unwrap_or(u32::MAX),
        });
    }
    list
}

impl SymbolTable {
    /// Reads the `.symtab` of the vmlinux.
    pub fn from_vmlinux(vmlinux: &Arc<Vmlinux>, kaslr_offset: u64) -> SymbolTable {
        // `object::File<'static>` over the map `vmlinux` owns, so the names are `&'static`
        // already; the `Arc` held by the table keeps them valid.
        let list = match vmlinux.object() {
            object::File::Elf64(f) => read_elf(f, kaslr_offset),
            object::File::Elf32(f) => read_elf(f, kaslr_offset),
            _ => Vec::new(),
        };
        SymbolTable::index(list, kaslr_offset, String::new(), Some(vmlinux.clone()))
    }

    /// Builds a table from `(name, link-time address, size, kind, global)` tuples.
    pub fn from_parts(list: Vec<SymbolParts>, kaslr_offset: u64) -> SymbolTable {
        let list = list
            .into_iter()
            .map(|(name, addr, size, kind, global)| RuntimeSymbol {
                name,
                address: shift(addr, kaslr_offset),
                size,
                kind,
                global,
                absolute: false,
            });
        SymbolTable::from_runtime(list, kaslr_offset)
    }

    /// Builds a table from symbols whose addresses are the running kernel's already (decoded
    /// from the dump's kallsyms, or VMCOREINFO's `SYMBOL()` lines): nothing is shifted, and
    /// `kaslr_offset` is only recorded (it maps the vmlinux's link-time addresses, when one is
    /// used beside the table).
    pub fn from_runtime(
        list: impl IntoIterator<Item = RuntimeSymbol>,
        kaslr_offset: u64,
    ) -> SymbolTable {
        let list = list.into_iter();
        let mut arena = String::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(list.size_hint().0);
        let mut entries = Vec::with_capacity(list.size_hint().0);
        for s in list {
            spans.push((arena.len(), s.name.len()));
            arena.push_str(&s.name);
            entries.push(Entry {
                name: "",
                address: s.address,
                size: s.size,
                kind: s.kind,
                global: s.global,
                absolute: s.absolute,
                shared_name: false,
                symtab_index: u32::MAX,
            });
        }
        arena.shrink_to_fit();
        for (e, &(at, len)) in entries.iter_mut().zip(&spans) {
            // SAFETY: the arena is moved into the table, which keeps it, unchanged, for as long
            // as the entries; moving a `String` does not move the bytes it owns.
            e.name = unsafe { &*(arena.get(at..at + len).unwrap_or("") as *const str) };
        }
        SymbolTable::index(entries, kaslr_offset, arena, None)
    }

    fn index(
        entries: Vec<Entry>,
        kaslr_offset: u64,
        arena: String,
        owner: Option<Arc<Vmlinux>>,
    ) -> SymbolTable {
        // Indices are u32: more than 4 billion symbols is not a vmlinux; keep the first ones.
        let mut entries = entries;
        entries.truncate(u32::MAX as usize);
        let mut by_name: HashMap<&'static str, u32, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for i in 0..entries.len() {
            let Some(name) = entries.get(i).map(|e| e.name) else {
                break;
            };
            match by_name.entry(name) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i as u32);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let j = *o.get() as usize;
                    for k in [i, j] {
                        if let Some(e) = entries.get_mut(k) {
                            e.shared_name = true;
                        }
                    }
                    if let (Some(new), Some(old)) = (entries.get(i), entries.get(j))
                        && preferred(new, old)
                    {
                        o.insert(i as u32);
                    }
                }
            }
        }
        SymbolTable {
            entries,
            by_name,
            by_addr: OnceLock::new(),
            kaslr_offset,
            _arena: arena,
            owner,
        }
    }

    /// The entries in address order (see `by_addr`), sorted on first use.
    fn by_addr(&self) -> &[u32] {
        self.by_addr.get_or_init(|| {
            let e = &self.entries;
            let mut order: Vec<u32> = (0..e.len() as u32).collect();
            // A table read from the running kernel (kallsyms) keeps its own order among symbols
            // at one address, as the kernel's lookups do (the first alias is the one printed);
            // an ELF table has no meaningful order there, and is ordered by size and name.
            let table_order = self.owner.is_none();
            // a kallsyms table comes sorted by address: then its own order is the answer
            if table_order && e.windows(2).all(|w| w[0].address <= w[1].address) {
                return order;
            }
            order.sort_unstable_by(|&ia, &ib| {
                let (a, b) = (&e[ia as usize], &e[ib as usize]);
                // `then_with`: the names are compared only on a tie.
                a.address.cmp(&b.address).then_with(|| {
                    if table_order {
                        ia.cmp(&ib)
                    } else {
                        b.size.cmp(&a.size).then_with(|| a.name.cmp(b.name))
                    }
                })
            });
            order
        })
    }

    fn sorted(&self, i: u32) -> &Entry {
        // Every index in `by_addr` comes from `0..entries.len()`.
        &self.entries[i as usize]
    }

    /// The vmlinux the table was read from (`None` for a table built from parts): the unwinder
    /// reads its `.debug_frame`.
    pub fn vmlinux(&self) -> Option<&Arc<Vmlinux>> {
        self.owner.as_ref()
    }

    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr_offset
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

    /// The `.symtab` index of the one symbol named `name`: `None` if there is none, if several
    /// symbols share the name, or if the table was not read from a vmlinux.
    pub fn sole_symtab_index(&self, name: &str) -> Option<u32> {
        self.entry(name)
            .filter(|e| !e.shared_name && e.symtab_index != u32::MAX)
            .map(|e| e.symtab_index)
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

    /// The function (or other code symbol) an instruction address lies in, by the rules in the
    /// module documentation: the nearest eligible symbol at or below `addr` whose extent (its
    /// size, or for a symbol without one the distance to the next eligible symbol) covers it.
    /// The caller chooses the address: a return address is looked up one byte before it.
    pub fn code_symbol(&self, addr: VirtAddr) -> Option<CodeSymbol> {
        self.code_symbol_within(addr, None)
    }

    /// [`SymbolTable::code_symbol`] in a region ending at `end`: a symbol without a size
    /// extends to the next symbol or to `end`, whichever comes first (a module's text).
    pub fn code_symbol_within(&self, addr: VirtAddr, end: Option<u64>) -> Option<CodeSymbol> {
        let by_addr = self.by_addr();
        let idx = by_addr.partition_point(|&i| self.sorted(i).address <= addr.0);
        // The nearest eligible symbol below; the walk back skips a few padding symbols at most,
        // bounded so that an address below every eligible symbol costs little.
        let below = by_addr.get(..idx)?;
        let top = below
            .iter()
            .rev()
            .take(CODE_LOOKBACK)
            .map(|&i| self.sorted(i))
            .find(|e| code_eligible(e.name, e.absolute))?
            .address;
        let best = below
            .iter()
            .rev()
            .map(|&i| self.sorted(i))
            .skip_while(|e| e.address != top)
            .take_while(|e| e.address == top)
            .filter(|e| code_eligible(e.name, e.absolute))
            .max_by_key(|e| code_rank(e.kind == SymKind::Text, e.global, e.size))?;
        let size = match best.size {
            0 => {
                let next = by_addr
                    .get(idx..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&i| self.sorted(i))
                    .find(|e| code_eligible(e.name, e.absolute))
                    .map(|e| e.address);
                let limit = match (next, end) {
                    (Some(n), Some(e)) => n.min(e),
                    (n, e) => n.or(e)?,
                };
                limit.saturating_sub(top)
            }
            s => s,
        };
        (addr.0 - top < size).then(|| CodeSymbol {
            name: best.name.to_string(),
            start: top,
            size,
        })
    }

    /// Every symbol, sorted by address.
    /// The lowest symbol address above `addr`: where the object at `addr` ends at the latest
    /// when the table has no sizes (kallsyms).
    pub fn next_address_after(&self, addr: VirtAddr) -> Option<VirtAddr> {
        let by_addr = self.by_addr();
        let idx = by_addr.partition_point(|&i| self.sorted(i).address <= addr.0);
        by_addr.get(idx).map(|&i| VirtAddr(self.sorted(i).address))
    }

    pub fn iter(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.by_addr().iter().map(|&i| self.sorted(i).to_symbol())
    }
}
