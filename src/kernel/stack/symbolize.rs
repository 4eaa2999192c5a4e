//! Naming a frame: its symbol, module, source line and inlined functions.
//!
//! The kernel prints a backtrace entry with `%pB` (lib/vsprintf.c → `sprint_backtrace()`,
//! kernel/kallsyms.c): a return address points after its call, and the call may be the last
//! instruction of a function (a call to a `noreturn` function), so the symbol is looked up at
//! `pc - 1` and the offset printed from `pc` itself: `caller+0x20/0x20`, never the next
//! function. An interrupted frame (the first frame, or one entered from saved `pt_regs`) holds
//! the exact instruction and is looked up at `pc`. drgn does the same (`pc - !interrupted`).
//!
//! Symbols: a loaded module's own table when the address is in its text ([`super::modsyms`]),
//! else the vmlinux ELF symbols ([`SymbolTable::code_symbol`](crate::debuginfo::symbols::SymbolTable::code_symbol)).
//! Source lines and inlined functions come from the vmlinux DWARF through the `addr2line` crate,
//! for kernel-image addresses only, probed at the link-time address (minus the KASLR offset).
//! The line tables are built on the first frame that asks, once per kernel; a vmlinux without
//! DWARF gives frames without lines. `addr2line` returns the functions at an address innermost
//! first, ending with the physical function: each inlined function's position is the line in
//! it (the innermost) or of its call to the next inner one, and the last position, in the
//! physical function, is the frame's own. File names are given relative to the unit's build
//! directory (`kernel/panic.c`), as drgn prints them, when they lie under it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::addr::VirtAddr;
use crate::debuginfo::dwarf::{Aranges, R};
use crate::debuginfo::elf::Vmlinux;
use crate::debuginfo::symbols::CodeSymbol;
use crate::kernel::Kernel;
use crate::unwind::Frame;

use super::{InlinedFrame, SourceLoc, TraceFrame, named_regs};

/// The vmlinux line tables, one compilation unit at a time.
///
/// `addr2line::Context::from_dwarf` over the whole vmlinux parses every unit's header and
/// abbreviations up front: on a distribution kernel (~3 000 units, 160 MB of `.debug_info`) that
/// is ~220 MB of memory and ~0.14 s before the first answer, for a trace that touches a few dozen
/// units. Instead `.debug_aranges` names the unit that covers an address, and a context is built
/// over a `.debug_info` that holds that unit alone (its offsets into `.debug_abbrev`,
/// `.debug_line`, `.debug_str` and the rest are absolute and stay valid). A unit that uses a form
/// referring outside itself (`DW_FORM_ref_addr`, `DW_FORM_GNU_ref_alt`, `DW_FORM_ref_sup*`: dwz
/// or LTO output) cannot be read alone; for it, and for an address `.debug_aranges` does not
/// cover, the whole-file context is built, once. Contexts are memoized per unit.
/// One addr2line context, shared by the frames it answers for.
type SharedContext = Arc<Mutex<addr2line::Context<R>>>;

pub(crate) struct Lines {
    vmlinux: Arc<Vmlinux>,
    aranges: Aranges,
    units: Mutex<HashMap<u64, Option<SharedContext>>>,
    whole: OnceLock<Option<SharedContext>>,
}

/// Forms whose value is an offset outside the DIE's own unit.
fn refers_outside(form: gimli::DwForm) -> bool {
    matches!(
        form,
        gimli::DW_FORM_ref_addr
            | gimli::DW_FORM_GNU_ref_alt
            | gimli::DW_FORM_ref_sup4
            | gimli::DW_FORM_ref_sup8
    )
}

impl Lines {
    fn new(vmlinux: &Arc<Vmlinux>) -> Option<Lines> {
        let dwarf = crate::debuginfo::dwarf::load_sections(vmlinux).ok()?;
        Some(Lines {
            vmlinux: Arc::clone(vmlinux),
            aranges: Aranges::read(&dwarf),
            units: Mutex::new(HashMap::new()),
            whole: OnceLock::new(),
        })
    }

    fn context(dwarf: gimli::Dwarf<R>) -> Option<SharedContext> {
        match addr2line::Context::from_dwarf(dwarf) {
            Ok(ctx) => Some(Arc::new(Mutex::new(ctx))),
            Err(e) => {
                tracing::warn!("no source lines in backtraces: {e}");
                None
            }
        }
    }

    /// The whole-file context (built on first need).
    fn whole(&self) -> Option<SharedContext> {
        self.whole
            .get_or_init(|| {
                Lines::context(crate::debuginfo::dwarf::load_sections(&self.vmlinux).ok()?)
            })
            .clone()
    }

    /// A context over the unit at `offset` alone, or `None` when the unit refers outside
    /// itself or cannot be parsed.
    fn unit_context(&self, offset: u64) -> Option<SharedContext> {
        let mut dwarf = crate::debuginfo::dwarf::load_sections(&self.vmlinux).ok()?;
        let header = dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(usize::try_from(offset).ok()?))
            .ok()?;
        // the unit is walked whole below: on a cold page cache, read it in one piece
        if let Some(bytes) = gimli::Section::reader(&dwarf.debug_info)
            .slice()
            .get(usize::try_from(offset).ok()?..)
            .and_then(|b| b.get(..header.length_including_self()))
        {
            self.vmlinux.will_need(bytes);
        }
        crate::debuginfo::dwarf::will_need_abbrevs(&self.vmlinux, &dwarf, &header);
        let unit = dwarf.unit(header).ok()?;
        // its line program is read whole too (only its header was read so far)
        if let Some(lp) = &unit.line_program {
            let h = lp.header();
            let start = h.offset().0;
            let len = h
                .unit_length()
                .saturating_add(usize::from(h.format().initial_length_size()));
            if let Some(bytes) = gimli::Section::reader(&dwarf.debug_line)
                .slice()
                .get(start..start.saturating_add(len))
            {
                self.vmlinux.will_need(bytes);
            }
        }
        // every abbreviation the unit's DIEs use, checked for forms that leave the unit
        let mut entries = unit.entries_raw(None).ok()?;
        while !entries.is_empty() {
            let abbrev = entries.read_abbreviation().ok()?;
            if let Some(a) = abbrev {
                if a.attributes()
                    .iter()
                    .any(|spec| refers_outside(spec.form()))
                {
                    return None;
                }
                entries.skip_attributes(a.attributes()).ok()?;
            }
        }
        let bytes = self.vmlinux.section_static(".debug_info").ok()??;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(header.length_including_self())?;
        let endian = gimli::Reader::endian(gimli::Section::reader(&dwarf.debug_info));
        dwarf.debug_info = gimli::DebugInfo::new(bytes.get(start..end)?, endian);
        Lines::context(dwarf)
    }

    /// The context that answers for the link-time address `probe`.
    fn context_for(&self, probe: u64) -> Option<SharedContext> {
        let Some(unit) = self.aranges.unit_for_address(probe) else {
            return self.whole();
        };
        let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = units.get(&unit) {
            return c.clone();
        }
        let c = self.unit_context(unit);
        units.insert(unit, c.clone());
        drop(units);
        c.or_else(|| self.whole())
    }

    /// The position in the physical function at the link-time address `probe`, and the
    /// functions inlined there, innermost first.
    fn lookup(&self, probe: u64) -> (Option<SourceLoc>, Vec<InlinedFrame>) {
        let Some(ctx) = self.context_for(probe) else {
            return (None, Vec::new());
        };
        let ctx = ctx.lock().unwrap_or_else(|p| p.into_inner());
        // Paths relative to the build directory, as the kernel's own tools print them.
        let comp_dir: Option<String> = ctx
            .find_dwarf_and_unit(probe)
            .skip_all_loads()
            .and_then(|u| Some(u.comp_dir?.to_string_lossy().into_owned()));
        let relative = |file: &str| -> String {
            comp_dir
                .as_deref()
                .and_then(|d| file.strip_prefix(d)?.strip_prefix('/'))
                .unwrap_or(file)
                .to_string()
        };
        let mut frames: Vec<InlinedFrame> = Vec::new();
        if let Ok(mut it) = ctx.find_frames(probe).skip_all_loads() {
            // A DWARF unit's inline tree is finite, but bound a corrupt one.
            while let (Ok(Some(f)), true) = (it.next(), frames.len() < 256) {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.raw_name().ok())
                    .map(|n| n.into_owned())
                    .unwrap_or_else(|| "??".into());
                let source = f.location.and_then(|l| {
                    Some(SourceLoc {
                        file: relative(l.file?),
                        line: l.line?,
                        column: l.column.filter(|&c| c > 0),
                    })
                });
                frames.push(InlinedFrame { function, source });
            }
        }
        let own = frames.pop().and_then(|f| f.source);
        (own, frames)
    }
}

impl Kernel {
    /// The symbol naming the instruction at `addr` (look up `pc - 1` for a return address) and
    /// the module whose text holds it (`None`: the kernel image). A module address whose
    /// module's symbols could not be read has a module and no symbol.
    pub fn code_symbol(&self, addr: u64) -> (Option<CodeSymbol>, Option<String>) {
        if let Ok(mods) = self.module_symbols()
            && let Some((name, sym)) = mods.code_symbol(addr)
        {
            return (sym, Some(name.to_string()));
        }
        (self.symbols().code_symbol(VirtAddr(addr)), None)
    }

    fn lines(&self) -> Option<&Lines> {
        self.stack_cache()
            .lines
            .get_or_init(|| Lines::new(self.symbols().vmlinux()?))
            .as_ref()
    }

    /// A frame with its symbol (by the `%pB` rule), module, source line, inlined functions and
    /// named registers.
    pub fn symbolize_frame(&self, f: &Frame, names: &[(&'static str, u16)]) -> TraceFrame {
        let probe = if f.interrupted {
            f.pc
        } else {
            f.pc.wrapping_sub(1)
        };
        let (found, module) = self.code_symbol(probe);
        let (source, inlined) = match (&found, &module) {
            (Some(_), None) => self
                .lines()
                .map(|l| l.lookup(probe.wrapping_sub(self.symbols().kaslr_offset())))
                .unwrap_or_default(),
            _ => (None, Vec::new()),
        };
        let (symbol, offset, size) = match found {
            Some(s) => (Some(s.name), f.pc.wrapping_sub(s.start), s.size),
            None => (None, 0, 0),
        };
        TraceFrame {
            pc: f.pc,
            sp: f.sp,
            cfa: f.cfa,
            symbol,
            offset,
            size,
            module,
            source,
            inlined,
            interrupted: f.interrupted,
            reliable: f.reliable,
            method: f.method,
            stack: f.stack,
            regs: f.regs.as_ref().map(|r| named_regs(r, names)),
        }
    }
}
