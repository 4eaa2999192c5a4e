//! A lazy DWARF type index over the vmlinux (`gimli`), DWARF 4 and 5.
//!
//! A 6.1 vmlinux carries ~160 MB of `.debug_info` in ~2 800 compilation units, and every unit
//! repeats the declarations of the headers it includes. Nothing is parsed when the index is
//! created: the sections are borrowed from the memory map (or decompressed once when the file
//! ships them compressed) and only the unit headers are listed.
//!
//! A lookup by name scans the *top-level* DIEs of units, in link order, skipping each DIE's
//! children with `DW_AT_sibling` where the compiler emitted it, and records every named struct,
//! union, enum, typedef, base type and variable it passes. The scan stops at the first unit that
//! holds a complete definition of the name asked for; most kernel types and globals are defined in
//! the first few dozen units (`init/main.c`, `init/version.c` include most of the core headers),
//! so a typical lookup reads a few megabytes. After a few batches without success the scan goes on
//! in parallel rounds (a contiguous share of units per core, merged in unit order), still stopping
//! at the round that answers. A complete definition always wins over a declaration (`struct
//! foo;`); for a variable, an `extern` declaration with a complete type is enough.
//!
//! A variable the early units do not declare (a `static` such as `tainted_mask`, or a global
//! only its own subsystem declares) would cost a scan of most of the section. Before scanning,
//! the ELF symbol table places it: a static sits in its object file's group of local symbols
//! (after the `STT_FILE` symbol), whose static functions `.debug_aranges` maps to the unit; a
//! global exported with `EXPORT_SYMBOL` sits in the file of its local `__kstrtab_` symbol, and
//! any global lies, in link order, between the files of its nearest local data neighbours in its
//! section. Each candidate unit's variables located by `DW_OP_addr` are listed once (one walk of
//! its top-level DIEs, memoized) and the answer is the DIE at the symbol's address with the name
//! asked; otherwise the link-order scan decides, as before.
//!
//! Types are parsed from their DIE on first use and memoized, errors included, so a broken DIE
//! fails once, cheaply. Type ids are `.debug_info` offsets; the inner dimensions of a
//! multi-dimensional array are the array DIE's offset with the dimension in bits 48..56.
//!
//! Bitfields: DWARF 4+ gives `DW_AT_data_bit_offset` (bits from the start of the aggregate); DWARF
//! 2/3 gave `DW_AT_bit_offset`, counted from the most significant bit of a storage unit of
//! `DW_AT_byte_size` bytes at `DW_AT_data_member_location`. Both become one absolute bit offset.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use gimli::{AttributeValue, DebuggingInformationEntry, Reader, RunTimeEndian, Unit, UnitHeader};
use object::{Object, ObjectSymbol, SymbolKind};

use crate::addr::Endian;
use crate::debuginfo::elf::Vmlinux;
use crate::debuginfo::symbols::SymbolTable;
use crate::debuginfo::{BaseEncoding, DebugInfoError, Member, Type, TypeId, TypeKind, TypeSource};

pub(crate) type R = gimli::EndianSlice<'static, RunTimeEndian>;

/// The vmlinux's DWARF sections, borrowed from its map (or decompressed once); the caller keeps
/// the `Arc<Vmlinux>` alive as long as the result. `NoDwarf` without `.debug_info`.
pub(crate) fn load_sections(vmlinux: &Vmlinux) -> Result<gimli::Dwarf<R>, DebugInfoError> {
    let endian = match vmlinux.endian() {
        Endian::Little => RunTimeEndian::Little,
        Endian::Big => RunTimeEndian::Big,
    };
    if vmlinux.section_static(".debug_info")?.is_none() {
        return Err(DebugInfoError::NoDwarf(
            vmlinux.path().display().to_string(),
        ));
    }
    gimli::Dwarf::load(|id| -> Result<R, DebugInfoError> {
        let data = vmlinux.section_static(id.name())?.unwrap_or(&[]);
        Ok(gimli::EndianSlice::new(data, endian))
    })
}

/// How much of `.debug_abbrev` a unit's abbreviation table is read ahead with: the tables of the
/// kernel's units are a few KiB (their length is known only once parsed).
const ABBREV_READAHEAD: usize = 32 << 10;

/// Reads ahead (see [`Vmlinux::will_need`]) the start of the abbreviation table of a unit about
/// to be parsed, which is otherwise faulted in page by page on a cold page cache.
pub(crate) fn will_need_abbrevs(
    vmlinux: &Vmlinux,
    dwarf: &gimli::Dwarf<R>,
    header: &UnitHeader<R>,
) {
    let all = gimli::Section::reader(&dwarf.debug_abbrev).slice();
    let start = header.debug_abbrev_offset().0;
    if let Some(bytes) = all.get(start..all.len().min(start.saturating_add(ABBREV_READAHEAD))) {
        vmlinux.will_need(bytes);
    }
}

const DIM_SHIFT: u64 = 48;
const OFFSET_MASK: u64 = (1 << DIM_SHIFT) - 1;
/// Units scanned one after the other before the rest is scanned in parallel.
const SEQUENTIAL_UNITS: usize = 96;
const BATCH: usize = 8;
/// Units per thread in each parallel round after the sequential start.
const PARALLEL_BATCH: usize = 48;
/// Most units scanned between the link-order bounds the symbol table gives for a variable
/// (a wider gap means the bounds say little; the ordinary scan takes over).
const PLACED_MAX_UNITS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NameKind {
    Struct,
    Union,
    Enum,
    Typedef,
    Base,
    Variable,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    offset: u64,
    declaration: bool,
}

#[derive(Default)]
struct Index {
    names: HashMap<(NameKind, String), Entry, foldhash::fast::RandomState>,
    enumerators: HashMap<String, i64, foldhash::fast::RandomState>,
    next_unit: usize,
}

impl Index {
    fn add(&mut self, kind: NameKind, name: String, e: Entry) {
        match self.names.entry((kind, name)) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if o.get().declaration && !e.declaration {
                    o.insert(e);
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e);
            }
        }
    }

    fn merge(&mut self, other: Index) {
        for ((k, n), e) in other.names {
            self.add(k, n, e);
        }
        for (n, v) in other.enumerators {
            self.enumerators.entry(n).or_insert(v);
        }
    }
}

/// A data symbol of the ELF symbol table.
#[derive(Clone, Copy)]
struct DataSym {
    section: u32,
    addr: u64,
    size: u64,
    /// The `STT_FILE` group (1-based) of a local symbol, 0 for a global.
    group: u32,
    /// The index in `.symtab`.
    index: u32,
}

/// What [`DwarfTypes::data_symbol_bounds`] needs from the symbol table besides names (those go
/// through the [`SymbolTable`]'s name index), read in one pass that reads no name.
struct Placement {
    /// Data symbols, sorted by section, address and `.symtab` index.
    data: Vec<DataSym>,
    /// The `.symtab` indices of the `STT_FILE` symbols, ascending: group `g` (1-based) starts
    /// at `files[g - 1]`.
    files: Vec<u32>,
    /// Per `STT_FILE` group (index 0: before the first), an address inside its first static
    /// function.
    group_text: Vec<Option<u64>>,
}

impl Placement {
    fn new(file: &object::File<'static, &'static [u8]>) -> Placement {
        let mut files: Vec<u32> = Vec::new();
        let mut group_text: Vec<Option<u64>> = vec![None];
        let mut data: Vec<DataSym> = Vec::new();
        for s in file.symbols() {
            let Ok(index) = u32::try_from(s.index().0) else {
                break;
            };
            match s.kind() {
                SymbolKind::File => {
                    files.push(index);
                    group_text.push(None);
                }
                SymbolKind::Data => data.push(DataSym {
                    section: s.section_index().map_or(0, |i| i.0 as u32),
                    addr: s.address(),
                    size: s.size(),
                    group: if s.is_local() { files.len() as u32 } else { 0 },
                    index,
                }),
                SymbolKind::Text if s.is_local() && s.size() > 0 => {
                    if let Some(t @ None) = group_text.last_mut() {
                        // The middle of the function, not its symbol: on arm64 with
                        // patchable function entries the symbol sits on NOPs before the
                        // DW_AT_low_pc that .debug_aranges records.
                        *t = Some(s.address().saturating_add(s.size() / 2));
                    }
                }
                _ => {}
            }
        }
        data.sort_unstable_by_key(|d| (d.section, d.addr, d.index));
        Placement {
            data,
            files,
            group_text,
        }
    }

    /// The `STT_FILE` group of the local symbol at `.symtab` index `index` (0: before any).
    fn group_of(&self, index: u32) -> u32 {
        self.files.partition_point(|&f| f < index) as u32
    }
}

/// `.debug_aranges` in the two shapes the lookups need.
#[derive(Default)]
pub(crate) struct Aranges {
    /// `(start, end, unit offset)`, sorted.
    ranges: Vec<(u64, u64, u64)>,
    /// Every unit offset named, sorted and unique: known unit starts.
    units: Vec<u64>,
}

impl Aranges {
    /// Reads `.debug_aranges` (a corrupt header ends the reading; what was read is kept).
    pub(crate) fn read(dwarf: &gimli::Dwarf<R>) -> Aranges {
        let mut a = Aranges::default();
        let mut headers = dwarf.debug_aranges.headers();
        while let Ok(Some(h)) = headers.next() {
            let unit = h.debug_info_offset().0 as u64;
            a.units.push(unit);
            let mut entries = h.entries();
            while let Ok(Some(e)) = entries.next() {
                if e.length() > 0 {
                    let start = e.address();
                    a.ranges
                        .push((start, start.saturating_add(e.length()), unit));
                }
            }
        }
        a.ranges.sort_unstable();
        a.units.sort_unstable();
        a.units.dedup();
        a
    }

    /// The offset of the unit whose code covers the link-time address `addr`.
    pub(crate) fn unit_for_address(&self, addr: u64) -> Option<u64> {
        let i = self
            .ranges
            .partition_point(|r| r.0 <= addr)
            .checked_sub(1)?;
        let r = self.ranges.get(i)?;
        (addr < r.1).then_some(r.2)
    }
}

struct UnitSlot {
    offset: u64,
    end: u64,
    header: UnitHeader<R>,
    unit: OnceLock<Result<Arc<Unit<R>>, String>>,
    /// The unit's top-level variables located by a plain `DW_OP_addr`: link-time address ->
    /// DIE offset (see [`DwarfTypes::located_variables`]).
    located: OnceLock<HashMap<u64, u64, foldhash::fast::RandomState>>,
}

impl UnitSlot {
    fn new(header: UnitHeader<R>) -> UnitSlot {
        let offset = header.offset().0 as u64;
        UnitSlot {
            offset,
            end: offset.saturating_add(header.length_including_self() as u64),
            header,
            unit: OnceLock::new(),
            located: OnceLock::new(),
        }
    }
}

/// DWARF types of a vmlinux behind [`TypeSource`].
pub struct DwarfTypes {
    dwarf: gimli::Dwarf<R>,
    /// Unit headers listed so far, in section order. Listing is lazy too: reading every
    /// header touches a page per unit across the whole 160 MB section.
    units: RwLock<Vec<Arc<UnitSlot>>>,
    headers: Mutex<Option<gimli::DebugInfoUnitHeadersIter<R>>>,
    /// Units reached by offset beyond the listed ones, keyed by offset (see [`Self::slot_at`]).
    known: RwLock<BTreeMap<u64, Arc<UnitSlot>>>,
    index: Mutex<Index>,
    layouts: Mutex<HashMap<u64, Result<Arc<Type>, String>>>,
    /// `.debug_aranges`, read on first need.
    aranges: OnceLock<Aranges>,
    /// The symbol table's data symbols, read on the first variable the scan has not answered.
    placement: OnceLock<Placement>,
    /// The symbol table's name index (see [`Self::use_symbols`]).
    symbols: OnceLock<Arc<SymbolTable>>,
    /// How many units placement has read the located variables of.
    units_located: std::sync::atomic::AtomicUsize,
    /// Per variable name: the definition found in the unit the symbol table points to.
    placed: Mutex<HashMap<String, Option<Entry>>>,
    threads: usize,
    // Keeps the mapped (or decompressed) sections `dwarf` borrows alive.
    vmlinux: Arc<Vmlinux>,
}

fn derr(offset: u64, e: impl std::fmt::Display) -> DebugInfoError {
    DebugInfoError::Dwarf {
        offset,
        what: e.to_string(),
    }
}

impl DwarfTypes {
    /// Prepares the index: borrows the debug sections and lists the unit headers.
    pub fn new(vmlinux: Arc<Vmlinux>) -> Result<DwarfTypes, DebugInfoError> {
        let dwarf = load_sections(&vmlinux)?;
        let headers = dwarf.units();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        Ok(DwarfTypes {
            dwarf,
            units: RwLock::new(Vec::new()),
            headers: Mutex::new(Some(headers)),
            known: RwLock::new(BTreeMap::new()),
            index: Mutex::new(Index::default()),
            layouts: Mutex::new(HashMap::new()),
            aranges: OnceLock::new(),
            placement: OnceLock::new(),
            symbols: OnceLock::new(),
            units_located: Default::default(),
            placed: Mutex::new(HashMap::new()),
            threads,
            vmlinux,
        })
    }

    /// Builds what the first variable lookup needs whatever the name: the data-symbol
    /// placement index and `.debug_aranges` (see `placed_variable`). Lets a caller do this work
    /// while something else runs (the symbol table is read on another thread meanwhile).
    pub fn prepare_variable_lookups(&self) {
        self.placement();
        self.aranges();
    }

    /// Gives the placement of variables the vmlinux's symbol table (its name index) instead of
    /// reading one of its own on first need. The table must be the one of this vmlinux.
    pub fn use_symbols(&self, symbols: Arc<SymbolTable>) {
        let _ = self.symbols.set(symbols);
    }

    fn symbols(&self) -> &SymbolTable {
        self.symbols
            .get_or_init(|| Arc::new(SymbolTable::from_vmlinux(&self.vmlinux, 0)))
    }

    fn placement(&self) -> &Placement {
        self.placement
            .get_or_init(|| Placement::new(self.vmlinux.object()))
    }

    /// Number of compilation (and type) units (lists every unit header).
    pub fn unit_count(&self) -> usize {
        self.list_units(|_| false);
        self.read_units().len()
    }

    /// How many units the name index has scanned so far (for tests and diagnostics).
    pub fn units_scanned(&self) -> usize {
        self.lock_index().next_unit
    }

    /// How many units the placement of variables has read so far (for tests and diagnostics).
    pub fn units_located(&self) -> usize {
        self.units_located
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_units(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<UnitSlot>>> {
        self.units.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists more unit headers until `enough` holds or the section ends.
    fn list_units(&self, enough: impl Fn(&[Arc<UnitSlot>]) -> bool) {
        if enough(&self.read_units()) {
            return;
        }
        let mut headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        let mut units = self.units.write().unwrap_or_else(|p| p.into_inner());
        while !enough(&units) {
            let Some(iter) = headers.as_mut() else { return };
            let h = match iter.next() {
                Ok(Some(h)) => h,
                Ok(None) => {
                    *headers = None;
                    return;
                }
                Err(e) => {
                    // A corrupt header ends the listing; the units before it stay usable.
                    tracing::warn!("DWARF unit list ends early: {e}");
                    *headers = None;
                    return;
                }
            };
            let offset = h.offset().0 as u64;
            // A unit already reached by offset keeps its parsed state.
            let known = self
                .known
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&offset)
                .cloned();
            units.push(known.unwrap_or_else(|| Arc::new(UnitSlot::new(h))));
        }
    }

    fn slot(&self, idx: usize) -> Option<Arc<UnitSlot>> {
        self.list_units(|u| u.len() > idx);
        self.read_units().get(idx).cloned()
    }

    /// Parses a unit's header and abbreviations, first asking for the unit's bytes and the start
    /// of its abbreviations to be read ahead: its DIEs are read from one end to the other (the
    /// scan skips children by `DW_AT_sibling`, still touching most pages), which on a cold page
    /// cache would otherwise be one 4 KiB fault at a time.
    fn new_unit(&self, slot: &UnitSlot) -> gimli::Result<Unit<R>> {
        let start = usize::try_from(slot.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(slot.end).unwrap_or(usize::MAX);
        if let Some(bytes) = gimli::Section::reader(&self.dwarf.debug_info)
            .slice()
            .get(start..end)
        {
            self.vmlinux.will_need(bytes);
        }
        will_need_abbrevs(&self.vmlinux, &self.dwarf, &slot.header);
        Unit::new(&self.dwarf, slot.header)
    }

    fn parsed(&self, slot: &UnitSlot) -> Result<Arc<Unit<R>>, DebugInfoError> {
        slot.unit
            .get_or_init(|| self.new_unit(slot).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| derr(slot.offset, e))
    }

    /// The unit holding `offset`.
    ///
    /// Listing headers from the start to reach a unit deep in the section would touch (and, with
    /// the kernel's fault-around, map) most of the section before it. So when the listed units
    /// do not reach `offset`, the walk starts at the nearest known unit start below it instead:
    /// a unit `.debug_aranges` names, the end of a unit already reached, or the end of the
    /// listing; it goes from header to header until the unit containing `offset`. If that fails
    /// (a corrupt aranges entry), the plain listing decides.
    fn slot_at(&self, offset: u64) -> Result<Arc<UnitSlot>, DebugInfoError> {
        let listed_end = {
            let units = self.read_units();
            let i = units.partition_point(|u| u.offset <= offset);
            if let Some(u) = i.checked_sub(1).and_then(|i| units.get(i))
                && offset < u.end
            {
                return Ok(u.clone());
            }
            units.last().map_or(0, |u| u.end)
        };
        let below = {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            match known.range(..=offset).next_back() {
                Some((_, u)) if offset < u.end => return Ok(u.clone()),
                Some((_, u)) => Some(u.end),
                None => None,
            }
        };
        let aranges = &self.aranges().units;
        let from_aranges = aranges
            .partition_point(|&u| u <= offset)
            .checked_sub(1)
            .and_then(|i| aranges.get(i).copied());
        let mut start = [Some(listed_end), below, from_aranges]
            .into_iter()
            .flatten()
            .filter(|&s| s <= offset)
            .max()
            .unwrap_or(0);
        if start > listed_end {
            while let Ok(h) = self
                .dwarf
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(start as usize))
            {
                let slot = Arc::new(UnitSlot::new(h));
                if slot.end <= start {
                    break;
                }
                let slot = self
                    .known
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(slot.offset)
                    .or_insert(slot)
                    .clone();
                if offset < slot.end {
                    return Ok(slot);
                }
                start = slot.end;
            }
        }
        self.list_units(|u| u.last().is_some_and(|l| l.end > offset));
        let units = self.read_units();
        let i = units.partition_point(|u| u.offset <= offset);
        i.checked_sub(1)
            .and_then(|i| units.get(i))
            .filter(|u| offset < u.end)
            .cloned()
            .ok_or_else(|| derr(offset, "offset outside every unit"))
    }

    fn unit_of(&self, offset: u64) -> Result<Arc<Unit<R>>, DebugInfoError> {
        let slot = self.slot_at(offset)?;
        self.parsed(&slot)
    }

    // ---- name index -------------------------------------------------------------------------

    fn scan_unit(&self, idx: usize, out: &mut Index) -> Result<(), DebugInfoError> {
        let slot = self
            .slot(idx)
            .ok_or_else(|| derr(0, "unit index out of range"))?;
        self.scan_slot(&slot, out)
    }

    fn scan_slot(&self, slot: &UnitSlot, out: &mut Index) -> Result<(), DebugInfoError> {
        // A temporary unit: the scan must not pin every unit's abbreviations in memory.
        let unit = match slot.unit.get() {
            Some(Ok(u)) => u.clone(),
            _ => Arc::new(self.new_unit(slot).map_err(|e| derr(slot.offset, e))?),
        };
        let base = slot.offset;
        let mut c = unit.entries();
        if !c.next_entry().map_err(|e| derr(base, e))? {
            return Ok(());
        }
        match c.current() {
            Some(root) if root.has_children() => {}
            _ => return Ok(()),
        }
        c.next_entry().map_err(|e| derr(base, e))?;
        while let Some(e) = c.current() {
            let kind = match e.tag() {
                gimli::DW_TAG_structure_type => Some(NameKind::Struct),
                gimli::DW_TAG_union_type => Some(NameKind::Union),
                gimli::DW_TAG_enumeration_type => Some(NameKind::Enum),
                gimli::DW_TAG_typedef => Some(NameKind::Typedef),
                gimli::DW_TAG_base_type => Some(NameKind::Base),
                gimli::DW_TAG_variable => Some(NameKind::Variable),
                _ => None,
            };
            if let Some(kind) = kind {
                let off = base + e.offset().0 as u64;
                let declaration = flag(e, gimli::DW_AT_declaration);
                let mut name = self.name_of(&unit, e);
                if name.is_none() && kind == NameKind::Variable {
                    // A definition completing an `extern` declaration carries only
                    // DW_AT_specification; its name is the declaration's.
                    if let Some(spec) = e.attr_value(gimli::DW_AT_specification)
                        && let Some(t) = self.ref_offset(&unit, spec)
                        && let Ok(u2) = self.unit_of(t)
                        && let Some(d) = self.entry_in(&u2, t).ok()
                    {
                        name = self.name_of(&u2, &d);
                    }
                }
                if kind == NameKind::Enum && e.has_children() {
                    self.scan_enumerators(&unit, e.offset(), &mut out.enumerators);
                }
                if let Some(name) = name {
                    out.add(
                        kind,
                        name,
                        Entry {
                            offset: off,
                            declaration,
                        },
                    );
                }
            }
            c.next_sibling().map_err(|e| derr(base, e))?;
        }
        Ok(())
    }

    fn scan_enumerators(
        &self,
        unit: &Unit<R>,
        at: gimli::UnitOffset,
        out: &mut HashMap<String, i64, foldhash::fast::RandomState>,
    ) {
        let Ok(mut c) = unit.entries_at_offset(at) else {
            return;
        };
        if !matches!(c.next_entry(), Ok(true)) {
            return;
        }
        let Some(depth) = c.current().map(|e| e.depth()) else {
            return;
        };
        while let Ok(true) = c.next_entry() {
            let Some(e) = c.current() else {
                if c.depth() <= depth + 1 {
                    break;
                }
                continue;
            };
            if e.depth() <= depth {
                break;
            }
            if e.tag() == gimli::DW_TAG_enumerator
                && let Some(n) = self.name_of(unit, e)
                && let Some(v) = e
                    .attr_value(gimli::DW_AT_const_value)
                    .and_then(|v| const_value(&v))
            {
                out.entry(n).or_insert(v);
            }
        }
    }

    /// Scans more units until `done` says the index answers, or every unit is scanned.
    fn scan_until(&self, done: impl Fn(&Index) -> bool) -> Result<(), DebugInfoError> {
        let mut idx = self.lock_index();
        while !done(&idx) {
            let start = idx.next_unit;
            if self.slot(start).is_none() {
                break;
            }
            if start < SEQUENTIAL_UNITS || self.threads == 1 {
                let mut end = start;
                while end < start + BATCH && self.slot(end).is_some() {
                    end += 1;
                }
                for u in start..end {
                    let mut local = Index::default();
                    match self.scan_unit(u, &mut local) {
                        Ok(()) => idx.merge(local),
                        Err(e) => tracing::warn!("skipping a DWARF unit: {e}"),
                    }
                }
                idx.next_unit = end;
            } else {
                // A parallel round: the next PARALLEL_BATCH units per thread, one contiguous
                // share each, merged in unit order so the result does not depend on timing.
                // Rounds keep the early exit when the name turns up mid-way.
                let want = PARALLEL_BATCH * self.threads;
                let mut end = start;
                while end < start + want && self.slot(end).is_some() {
                    end += 1;
                }
                let rest: Vec<usize> = (start..end).collect();
                let share = rest.len().div_ceil(self.threads);
                let parts: Vec<Index> = std::thread::scope(|s| {
                    let handles: Vec<_> = rest
                        .chunks(share.max(1))
                        .map(|chunk| {
                            s.spawn(move || {
                                let mut local = Index::default();
                                for &u in chunk {
                                    if let Err(e) = self.scan_unit(u, &mut local) {
                                        tracing::warn!("skipping a DWARF unit: {e}");
                                    }
                                }
                                local
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_default())
                        .collect()
                });
                for p in parts {
                    idx.merge(p);
                }
                idx.next_unit = end;
            }
        }
        Ok(())
    }

    fn lookup(&self, kind: NameKind, name: &str) -> Result<Option<Entry>, DebugInfoError> {
        let key = (kind, name.to_string());
        self.scan_until(|idx| idx.names.get(&key).is_some_and(|e| !e.declaration))?;
        Ok(self.lock_index().names.get(&key).copied())
    }

    // ---- DIE helpers ------------------------------------------------------------------------

    /// Where in link order the data symbol `name` must be defined: its link-time address and
    /// pairs of code addresses whose units bound, inclusively, the unit that defines it, the
    /// likelier pair first.
    ///
    /// The ELF symbol table lists each object file's local symbols after an `STT_FILE` symbol
    /// naming the file, in link order, so a `static` variable's neighbours up to the next
    /// `STT_FILE` are the same file's static functions, whose addresses `.debug_aranges` maps to
    /// the unit (it lists code ranges only). A global has no file in the table (globals follow
    /// all locals), with two exceptions:
    ///
    /// - an exported one: `EXPORT_SYMBOL(x)` emits, in the object file that defines `x`, a local
    ///   `__kstrtab_x` (the name string in `__ksymtab_strings`; include/linux/export.h up to 6.4),
    ///   so `x`'s file is that symbol's group. From 6.5 the export tables are generated into one
    ///   object of their own (`.vmlinux.export.c`), and that guess fails verification;
    /// - the linker concatenates each output section from the object files in link order, so the
    ///   object holding a global lies, in link order, between the files of the nearest local data
    ///   symbols below and above it in its section.
    ///
    /// A file without a static function widens the bound to the nearest file that has one. Only
    /// a name that is exactly one symbol in the table qualifies: a name several files use is left
    /// to the link-order scan. The caller verifies the answer (the DIE must be located at the
    /// symbol's address).
    fn data_symbol_bounds(&self, name: &str) -> Option<(u64, Vec<(u64, u64)>)> {
        let p = self.placement();
        let symbols = self.symbols();
        let index = symbols.sole_symtab_index(name)?;
        let sym = self
            .vmlinux
            .object()
            .symbol_by_index(object::SymbolIndex(index as usize))
            .ok()?;
        if sym.kind() != SymbolKind::Data {
            return None;
        }
        let key = (sym.section_index().map_or(0, |i| i.0 as u32), sym.address());
        let i = p
            .data
            .partition_point(|d| (d.section, d.addr, d.index) < (key.0, key.1, index));
        let t = *p.data.get(i).filter(|d| d.index == index)?;
        let same_place = |d: &DataSym| d.section == t.section && d.addr == t.addr;
        // An alias (`jiffies = jiffies_64` in the linker script): DWARF defines the object
        // under the other name, so only the scan can answer.
        let before = p.data.get(..i)?.iter().rev().take_while(|d| same_place(d));
        let after = p.data.get(i + 1..)?.iter().take_while(|d| same_place(d));
        if before.chain(after).any(|d| d.size > 0) {
            return None;
        }
        // The code addresses of the nearest files with a static function at or below `low` and
        // at or above `high`.
        let text_bounds = |low: u32, high: u32| -> Option<(u64, u64)> {
            let (low, high) = (low as usize, high as usize);
            if low == 0 || low > high {
                return None;
            }
            let lo = p.group_text.get(1..=low)?.iter().rev().find_map(|t| *t)?;
            let hi = p.group_text.get(high..)?.iter().find_map(|t| *t)?;
            Some((lo, hi))
        };
        if t.group > 0 {
            return Some((t.addr, vec![text_bounds(t.group, t.group)?]));
        }
        let mut pairs = Vec::with_capacity(2);
        if let Some(k) = symbols.sole_symtab_index(&format!("__kstrtab_{name}"))
            && self
                .vmlinux
                .object()
                .symbol_by_index(object::SymbolIndex(k as usize))
                .is_ok_and(|s| s.is_local())
            && let Some(b) = text_bounds(p.group_of(k), p.group_of(k))
        {
            pairs.push(b);
        }
        // The files of the nearest local data symbols below and above, same section.
        let local = |d: &&DataSym| d.section == t.section && d.group > 0;
        let below = p.data.get(..i)?.iter().rev().find(local);
        let above = p
            .data
            .get(i + 1..)?
            .iter()
            .filter(local)
            .find(|d| d.addr > t.addr);
        if let (Some(below), Some(above)) = (below, above)
            && let Some(b) = text_bounds(below.group, above.group)
        {
            pairs.push(b);
        }
        (!pairs.is_empty()).then_some((t.addr, pairs))
    }

    /// The top-level variable DIEs of a unit whose location is a plain `DW_OP_addr`, by that
    /// link-time address: the definitions the unit holds. Read once per unit (a walk of the
    /// top-level DIEs, children skipped), without reading a name.
    fn located_variables<'a>(
        &self,
        slot: &'a UnitSlot,
    ) -> &'a HashMap<u64, u64, foldhash::fast::RandomState> {
        slot.located.get_or_init(|| {
            self.units_located
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut out = HashMap::default();
            // A temporary unit, as in `scan_slot`.
            let unit = match slot.unit.get() {
                Some(Ok(u)) => u.clone(),
                _ => match self.new_unit(slot) {
                    Ok(u) => Arc::new(u),
                    Err(e) => {
                        tracing::warn!("skipping a DWARF unit: {}", derr(slot.offset, e));
                        return out;
                    }
                },
            };
            let address_size = unit.header.address_size();
            let mut c = unit.entries();
            // The root, then its children; an error ends the walk with what it found.
            if !matches!(c.next_entry(), Ok(true))
                || !c.current().is_some_and(|root| root.has_children())
                || c.next_entry().is_err()
            {
                return out;
            }
            while let Some(e) = c.current() {
                if e.tag() == gimli::DW_TAG_variable
                    && let Some(AttributeValue::Exprloc(expr)) = e.attr_value(gimli::DW_AT_location)
                {
                    let mut r = expr.0;
                    if matches!(r.read_u8(), Ok(op) if op == gimli::DW_OP_addr.0)
                        && let Ok(addr) = r.read_address(address_size)
                        && r.is_empty()
                    {
                        out.entry(addr).or_insert(slot.offset + e.offset().0 as u64);
                    }
                }
                if let Err(e) = c.next_sibling() {
                    tracing::warn!("DWARF unit read in part: {}", derr(slot.offset, e));
                    break;
                }
            }
            out
        })
    }

    /// Whether the variable DIE at `offset` is named `name`, itself or through the declaration
    /// it completes (`DW_AT_specification`).
    fn variable_named(&self, offset: u64, name: &str) -> bool {
        let Ok(unit) = self.unit_of(offset) else {
            return false;
        };
        let Ok(e) = self.entry_in(&unit, offset) else {
            return false;
        };
        if e.tag() != gimli::DW_TAG_variable || flag(&e, gimli::DW_AT_declaration) {
            return false;
        }
        let own = self.name_of(&unit, &e);
        let named = match own {
            Some(n) => Some(n),
            None => e
                .attr_value(gimli::DW_AT_specification)
                .and_then(|v| self.ref_offset(&unit, v))
                .and_then(|t| {
                    let u2 = self.unit_of(t).ok()?;
                    let d = self.entry_in(&u2, t).ok()?;
                    self.name_of(&u2, &d)
                }),
        };
        named.as_deref() == Some(name)
    }

    fn aranges(&self) -> &Aranges {
        self.aranges.get_or_init(|| Aranges::read(&self.dwarf))
    }

    /// The offset of the unit whose code covers `addr`, from `.debug_aranges` (a few hundred KB,
    /// read once; it lists code ranges only, which is why a variable goes through a function).
    fn unit_for_address(&self, addr: u64) -> Option<u64> {
        self.aranges().unit_for_address(addr)
    }

    /// The definition of the variable `name` in the unit the symbol table and `.debug_aranges`
    /// point to, without scanning the units before it (a static or a global defined late in
    /// link order otherwise costs a scan of most of `.debug_info`). Accepted only when the DIE's
    /// location is the symbol's address and its name is `name`. `None` when the name does not
    /// qualify or the guess is wrong; the caller then scans in link order as before. Memoized,
    /// and so is each unit's list of located variables, which later names placed in the same
    /// unit reuse.
    fn placed_variable(&self, name: &str) -> Option<Entry> {
        if let Some(e) = self
            .placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return *e;
        }
        let found = (|| {
            let (addr, pairs) = self.data_symbol_bounds(name)?;
            let defined_in = |slot: &UnitSlot| {
                let offset = *self.located_variables(slot).get(&addr)?;
                self.variable_named(offset, name).then_some(Entry {
                    offset,
                    declaration: false,
                })
            };
            pairs.into_iter().find_map(|(lo, hi)| {
                let first = self.slot_at(self.unit_for_address(lo)?).ok()?;
                let last = self.slot_at(self.unit_for_address(hi)?).ok()?;
                // The unit of the upper bound is tried first: a global placed just below a
                // static of its own file (`blockdev_superblock` under block/bdev.c's
                // `bdev_cachep`) is found in one unit instead of after every unit linked
                // between the two files.
                if let Some(e) = defined_in(&last) {
                    return Some(e);
                }
                let mut slot = first;
                for _ in 0..=PLACED_MAX_UNITS {
                    if slot.offset >= last.offset {
                        return None;
                    }
                    if let Some(e) = defined_in(&slot) {
                        return Some(e);
                    }
                    slot = self.slot_at(slot.end).ok()?;
                }
                None
            })
        })();
        self.placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), found);
        found
    }

    fn name_of(&self, unit: &Unit<R>, e: &DebuggingInformationEntry<R>) -> Option<String> {
        let v = e.attr_value(gimli::DW_AT_name)?;
        let s = self.dwarf.attr_string(unit, v).ok()?;
        Some(s.to_string_lossy().into_owned())
    }

    fn ref_offset(&self, unit: &Unit<R>, v: AttributeValue<R>) -> Option<u64> {
        match v {
            AttributeValue::UnitRef(o) => Some(unit.header.offset().0 as u64 + o.0 as u64),
            AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
            _ => None,
        }
    }

    fn entry_in(
        &self,
        unit: &Unit<R>,
        offset: u64,
    ) -> Result<DebuggingInformationEntry<R>, DebugInfoError> {
        let base = unit.header.offset().0 as u64;
        let uo = offset
            .checked_sub(base)
            .ok_or_else(|| derr(offset, "offset before its unit"))?;
        unit.entry(gimli::UnitOffset(uo as usize))
            .map_err(|e| derr(offset, e))
    }

    fn type_ref(&self, unit: &Unit<R>, e: &DebuggingInformationEntry<R>) -> Option<TypeId> {
        e.attr_value(gimli::DW_AT_type)
            .and_then(|v| self.ref_offset(unit, v))
            .map(TypeId)
    }

    // ---- type parsing -----------------------------------------------------------------------

    fn get_depth(&self, id: TypeId, depth: u32) -> Result<Arc<Type>, DebugInfoError> {
        if let Some(r) = self
            .layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id.0)
        {
            return r.clone().map_err(|what| derr(id.0 & OFFSET_MASK, what));
        }
        if depth > 64 {
            return Err(derr(id.0, "type chain too deep (cycle?)"));
        }
        let parsed = self.parse(id, depth).map(Arc::new);
        let stored = match &parsed {
            Ok(t) => Ok(t.clone()),
            Err(DebugInfoError::Dwarf { what, .. }) => Err(what.clone()),
            Err(e) => Err(e.to_string()),
        };
        self.layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.0, stored);
        parsed
    }

    fn size_of(&self, id: Option<TypeId>, depth: u32) -> Result<Option<u64>, DebugInfoError> {
        match id {
            None => Ok(None),
            Some(id) => Ok(self.get_depth(id, depth + 1)?.size),
        }
    }

    fn parse(&self, id: TypeId, depth: u32) -> Result<Type, DebugInfoError> {
        let offset = id.0 & OFFSET_MASK;
        let dim = id.0 >> DIM_SHIFT;
        let unit = self.unit_of(offset)?;
        let e = self.entry_in(&unit, offset)?;
        let name = self.name_of(&unit, &e);
        let byte_size = e
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value());
        let target = self.type_ref(&unit, &e);
        let t = match e.tag() {
            gimli::DW_TAG_base_type => {
                let enc = match e.attr_value(gimli::DW_AT_encoding) {
                    Some(AttributeValue::Encoding(enc)) => enc,
                    _ => gimli::DW_ATE_unsigned,
                };
                let encoding = match enc {
                    gimli::DW_ATE_signed => BaseEncoding::Signed,
                    gimli::DW_ATE_signed_char => BaseEncoding::SignedChar,
                    gimli::DW_ATE_unsigned_char => BaseEncoding::UnsignedChar,
                    gimli::DW_ATE_boolean => BaseEncoding::Bool,
                    gimli::DW_ATE_float | gimli::DW_ATE_complex_float => BaseEncoding::Float,
                    _ => BaseEncoding::Unsigned,
                };
                Type {
                    name,
                    size: byte_size,
                    kind: TypeKind::Base { encoding },
                }
            }
            gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type => Type {
                name: None,
                size: Some(byte_size.unwrap_or(u64::from(unit.header.address_size()))),
                kind: TypeKind::Pointer { target },
            },
            gimli::DW_TAG_typedef => Type {
                name,
                size: self.size_of(target, depth)?,
                kind: TypeKind::Typedef { target },
            },
            gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type
            | gimli::DW_TAG_immutable_type => match target {
                // Qualifiers are transparent: the qualified type reads as its target.
                Some(t) => (*self.get_depth(t, depth + 1)?).clone(),
                None => Type {
                    name: Some("void".into()),
                    size: None,
                    kind: TypeKind::Void,
                },
            },
            gimli::DW_TAG_unspecified_type => Type {
                name,
                size: None,
                kind: TypeKind::Void,
            },
            gimli::DW_TAG_subroutine_type | gimli::DW_TAG_subprogram => Type {
                name,
                size: None,
                kind: TypeKind::Function,
            },
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type | gimli::DW_TAG_class_type => {
                let declaration = flag(&e, gimli::DW_AT_declaration);
                let members = self.members(&unit, offset, &e)?;
                let kind = if e.tag() == gimli::DW_TAG_union_type {
                    TypeKind::Union {
                        members,
                        declaration,
                    }
                } else {
                    TypeKind::Struct {
                        members,
                        declaration,
                    }
                };
                Type {
                    name,
                    size: if declaration { None } else { byte_size },
                    kind,
                }
            }
            gimli::DW_TAG_enumeration_type => {
                let underlying_signed = match target {
                    Some(t) => match self.get_depth(t, depth + 1)?.kind {
                        TypeKind::Base { encoding } => Some(encoding.is_signed()),
                        _ => None,
                    },
                    None => None,
                };
                let mut enumerators = Vec::new();
                let mut any_negative = false;
                self.for_children(&unit, offset, |u, c| {
                    if c.tag() == gimli::DW_TAG_enumerator
                        && let Some(n) = self.name_of(u, c)
                    {
                        let v = c
                            .attr_value(gimli::DW_AT_const_value)
                            .and_then(|v| const_value(&v))
                            .unwrap_or(0);
                        if matches!(
                            c.attr_value(gimli::DW_AT_const_value),
                            Some(AttributeValue::Sdata(x)) if x < 0
                        ) {
                            any_negative = true;
                        }
                        enumerators.push((n, v));
                    }
                })?;
                Type {
                    name,
                    size: byte_size,
                    kind: TypeKind::Enum {
                        signed: underlying_signed.unwrap_or(any_negative),
                        enumerators,
                    },
                }
            }
            gimli::DW_TAG_array_type => {
                let element = target.ok_or_else(|| derr(offset, "array without element type"))?;
                let mut dims: Vec<Option<u64>> = Vec::new();
                self.for_children(&unit, offset, |_, c| {
                    if matches!(
                        c.tag(),
                        gimli::DW_TAG_subrange_type | gimli::DW_TAG_enumeration_type
                    ) {
                        let count = c
                            .attr_value(gimli::DW_AT_count)
                            .and_then(|v| v.udata_value())
                            .or_else(|| {
                                c.attr_value(gimli::DW_AT_upper_bound)
                                    .and_then(|v| v.sdata_value())
                                    // upper bound -1: GCC's zero-length array
                                    .map(|ub| (ub + 1).max(0) as u64)
                            });
                        dims.push(count);
                    }
                })?;
                if dims.is_empty() {
                    dims.push(None);
                }
                let d = dim as usize;
                // GNU zero-length arrays (`x[0]`) are the old spelling of a flexible array
                // member and read like one (BTF cannot tell them apart either).
                let count = dims
                    .get(d)
                    .ok_or_else(|| derr(offset, "array dimension out of range"))?
                    .filter(|&n| n != 0);
                let element = if d + 1 < dims.len() {
                    TypeId(offset | ((dim + 1) << DIM_SHIFT))
                } else {
                    element
                };
                let size = match count {
                    Some(n) => self
                        .size_of(Some(element), depth)?
                        .and_then(|es| es.checked_mul(n)),
                    None => None,
                };
                Type {
                    name: None,
                    size,
                    kind: TypeKind::Array { element, count },
                }
            }
            other => {
                return Err(derr(offset, format!("DIE tag {other} is not a type")));
            }
        };
        Ok(t)
    }

    fn for_children(
        &self,
        unit: &Unit<R>,
        offset: u64,
        mut f: impl FnMut(&Unit<R>, &DebuggingInformationEntry<R>),
    ) -> Result<(), DebugInfoError> {
        let base = unit.header.offset().0 as u64;
        let uo = gimli::UnitOffset((offset - base) as usize);
        let mut c = unit.entries_at_offset(uo).map_err(|e| derr(offset, e))?;
        if !c.next_entry().map_err(|e| derr(offset, e))? {
            return Ok(());
        }
        let Some(parent) = c.current() else {
            return Ok(());
        };
        if !parent.has_children() {
            return Ok(());
        }
        c.next_entry().map_err(|e| derr(offset, e))?;
        while let Some(child) = c.current() {
            f(unit, child);
            c.next_sibling().map_err(|e| derr(offset, e))?;
        }
        Ok(())
    }

    fn members(
        &self,
        unit: &Unit<R>,
        offset: u64,
        _e: &DebuggingInformationEntry<R>,
    ) -> Result<Vec<Member>, DebugInfoError> {
        let big_endian = self.vmlinux.endian() == Endian::Big;
        let mut members = Vec::new();
        let mut bad = None;
        self.for_children(unit, offset, |u, c| {
            if c.tag() != gimli::DW_TAG_member {
                return;
            }
            let Some(ty) = self.type_ref(u, c) else {
                bad = Some("member without a type");
                return;
            };
            let name = self.name_of(u, c);
            let byte_loc = match c.attr_value(gimli::DW_AT_data_member_location) {
                None => 0,
                Some(v) => match v.udata_value() {
                    Some(n) => n,
                    None => match v {
                        // DWARF 2: a location expression, in practice DW_OP_plus_uconst N.
                        AttributeValue::Exprloc(expr) => {
                            let mut r = expr.0;
                            match r.read_u8() {
                                Ok(op) if op == gimli::DW_OP_plus_uconst.0 => {
                                    r.read_uleb128().unwrap_or(0)
                                }
                                _ => {
                                    bad = Some("unsupported member location expression");
                                    0
                                }
                            }
                        }
                        _ => 0,
                    },
                },
            };
            let bit_size = c
                .attr_value(gimli::DW_AT_bit_size)
                .and_then(|v| v.udata_value());
            let bit_offset = if let Some(dbo) = c
                .attr_value(gimli::DW_AT_data_bit_offset)
                .and_then(|v| v.udata_value())
            {
                dbo
            } else if let (Some(bo), Some(bs)) = (
                c.attr_value(gimli::DW_AT_bit_offset)
                    .and_then(|v| v.udata_value()),
                bit_size,
            ) {
                // Legacy: bit_offset counts from the MSB of the storage unit.
                let storage_bits = c
                    .attr_value(gimli::DW_AT_byte_size)
                    .and_then(|v| v.udata_value())
                    .unwrap_or(0)
                    * 8;
                let within = if big_endian {
                    bo
                } else {
                    storage_bits.saturating_sub(bo).saturating_sub(bs)
                };
                byte_loc * 8 + within
            } else {
                byte_loc * 8
            };
            members.push(Member {
                name,
                ty,
                bit_offset,
                bit_size,
            });
        })?;
        if let Some(what) = bad {
            return Err(derr(offset, what));
        }
        Ok(members)
    }

    fn variable_die_type(&self, offset: u64) -> Result<Option<TypeId>, DebugInfoError> {
        let mut off = offset;
        for _ in 0..4 {
            let unit = self.unit_of(off)?;
            let e = self.entry_in(&unit, off)?;
            if let Some(t) = self.type_ref(&unit, &e) {
                return Ok(Some(t));
            }
            let next = e
                .attr_value(gimli::DW_AT_specification)
                .or_else(|| e.attr_value(gimli::DW_AT_abstract_origin))
                .and_then(|v| self.ref_offset(&unit, v));
            match next {
                Some(n) => off = n,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

impl DwarfTypes {
    /// Whether the variable DIE's type has a known size (typedefs and qualifiers followed).
    fn complete_variable_type(&self, offset: u64) -> bool {
        let Ok(Some(mut id)) = self.variable_die_type(offset) else {
            return false;
        };
        for _ in 0..16 {
            let Ok(t) = self.get_depth(id, 0) else {
                return false;
            };
            match t.kind {
                TypeKind::Typedef { target: Some(next) } => id = next,
                TypeKind::Struct {
                    declaration: true, ..
                }
                | TypeKind::Union {
                    declaration: true, ..
                } => return false,
                TypeKind::Array { count: None, .. } => return false,
                _ => return t.size.is_some() || matches!(t.kind, TypeKind::Pointer { .. }),
            }
        }
        false
    }
}

fn flag(e: &DebuggingInformationEntry<R>, at: gimli::DwAt) -> bool {
    matches!(e.attr_value(at), Some(AttributeValue::Flag(true)))
}

fn const_value(v: &AttributeValue<R>) -> Option<i64> {
    match *v {
        AttributeValue::Sdata(x) => Some(x),
        AttributeValue::Udata(x) => Some(x as i64),
        AttributeValue::Data1(x) => Some(i64::from(x)),
        AttributeValue::Data2(x) => Some(i64::from(x)),
        AttributeValue::Data4(x) => Some(i64::from(x)),
        AttributeValue::Data8(x) => Some(x as i64),
        _ => None,
    }
}

/// Splits `"struct foo"` into the kind and the bare name; a bare name is a typedef or base type.
pub(crate) fn split_c_name(name: &str) -> (Option<&'static str>, &str) {
    let name = name.trim();
    for kw in ["struct", "union", "enum"] {
        if let Some(rest) = name.strip_prefix(kw)
            && rest.starts_with(' ')
        {
            return (Some(kw), rest.trim());
        }
    }
    (None, name)
}

impl TypeSource for DwarfTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        let (kw, bare) = split_c_name(name);
        let kinds: &[NameKind] = match kw {
            Some("struct") => &[NameKind::Struct],
            Some("union") => &[NameKind::Union],
            Some("enum") => &[NameKind::Enum],
            _ => &[NameKind::Typedef, NameKind::Base],
        };
        if kinds.len() == 1 {
            return Ok(self.lookup(kinds[0], bare)?.map(|e| TypeId(e.offset)));
        }
        // A bare name: either a typedef or a base type; scan until one is found.
        let keys: Vec<(NameKind, String)> = kinds.iter().map(|k| (*k, bare.to_string())).collect();
        self.scan_until(|idx| keys.iter().any(|k| idx.names.contains_key(k)))?;
        let idx = self.lock_index();
        Ok(keys
            .iter()
            .find_map(|k| idx.names.get(k))
            .map(|e| TypeId(e.offset)))
    }

    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        self.get_depth(id, 0)
    }

    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        // An `extern` declaration (from a header, seen in many early units) already carries the
        // type; the scan goes on to the definition only when the declared type is incomplete
        // (`extern char linux_banner[];`, a struct only declared in that unit).
        let key = (NameKind::Variable, name.to_string());
        let known = self.lock_index().names.get(&key).copied();
        let settled = known.filter(|e| !e.declaration || self.complete_variable_type(e.offset));
        if let Some(e) = settled.or_else(|| self.placed_variable(name)) {
            return self.variable_die_type(e.offset);
        }
        self.scan_until(|idx| match idx.names.get(&key) {
            Some(e) if !e.declaration => true,
            Some(e) => self.complete_variable_type(e.offset),
            None => false,
        })?;
        let found = self.lock_index().names.get(&key).copied();
        match found {
            Some(e) => self.variable_die_type(e.offset),
            None => Ok(None),
        }
    }

    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        self.scan_until(|idx| idx.enumerators.contains_key(name))?;
        Ok(self.lock_index().enumerators.get(name).copied())
    }
}
