//! DWARF call-frame information (CFI): the rules a compiler records, per instruction, for finding
//! a function's caller: how to compute the canonical frame address (CFA, the stack pointer in
//! the caller before the call) and where each callee-saved register, the return address among
//! them, was saved.
//!
//! The format is the DWARF 5 standard's "Call Frame Information" (section 6.4): a section of
//! common information entries (CIE: code and data alignment, the return-address column, initial
//! instructions) and frame description entries (FDE: a pc range, its CIE, the instructions that
//! build the table rows). A kernel is built without `.eh_frame` on arm64 (its Makefile passes
//! `-fno-asynchronous-unwind-tables` with `-fno-unwind-tables`, except under
//! `CONFIG_UNWIND_TABLES`), but the debug vmlinux keeps `.debug_frame`; both are read here, the
//! decoding is gimli's (`DebugFrame`/`EhFrame`, `UnwindContext`, `unwind_info_for_address`).
//! AArch64's pointer-authentication instruction `DW_CFA_AARCH64_negate_ra_state` shares its
//! opcode with the GNU `DW_CFA_GNU_window_save`, so the section is told its vendor.
//!
//! Addresses in the file are link-time; the dumped kernel ran shifted by its KASLR offset
//! (VMCOREINFO `KERNELOFFSET`), so a runtime pc is looked up at `pc - kaslr_offset`.
//!
//! Lookup: gimli finds an FDE by scanning the section; the kernel's `.debug_frame` has some 45 000
//! of them, so an index (start, end, offset) sorted by address is built on the first lookup and
//! kept, and each lookup parses the one FDE it lands on. A malformed entry ends the index where
//! it stands: the entries before it stay usable.
//!
//! Rule evaluation: the CFA rule `register + offset` and the register rules undefined, same
//! value, offset(N), val_offset(N), register(R) and constants are evaluated; a DWARF expression
//! (which the kernel's CFI never uses) gives [`StopReason::Unsupported`]. Registers without a
//! rule keep their value (the callee-saved convention). An undefined return-address column marks
//! the outermost frame.

use std::sync::OnceLock;

use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, EhFrame, EndianSlice, Register, RegisterRule,
    RunTimeEndian, UnwindContext, UnwindSection, UnwindTableRow,
};

use crate::addr::{Arch, Endian};
use crate::unwind::{NREGS, Regs, StackMemory, StopReason};

type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// The most FDEs indexed: a corrupt section cannot make the index grow without bound.
const MAX_FDES: usize = 4 << 20;

/// Which section an indexed FDE is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    DebugFrame,
    EhFrame,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    src: Src,
    offset: usize,
}

/// The outcome of applying the CFI of one frame. (Returned once per frame and moved straight
/// into the unwinder's step, as [`crate::unwind::Step`]: boxing the registers would only add an
/// allocation.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum CfiStep {
    /// No FDE covers the pc: the caller should try another method.
    NotCovered,
    /// The caller's registers; its pc is the recovered return-address column (not yet stripped
    /// of pointer-authentication bits) and its stack pointer the CFA.
    Caller { regs: Regs, cfa: u64 },
    /// The row leaves the return address undefined: the outermost frame.
    EndOfStack,
    /// The CFI covers the pc but cannot be applied.
    Stop(StopReason),
}

/// The CFI of one image (the vmlinux), over borrowed section bytes.
pub struct Cfi<'a> {
    arch: Arch,
    debug_frame: Option<DebugFrame<R<'a>>>,
    eh_frame: Option<EhFrame<R<'a>>>,
    bases: BaseAddresses,
    kaslr_offset: u64,
    /// A register that, in a function past its prologue, points at its own saved copy (the
    /// AAPCS64 frame record: x29 points where x29 and x30 were saved). See [`Cfi::step`].
    frame_pointer: Option<u16>,
    index: OnceLock<Vec<Span>>,
}

impl std::fmt::Debug for Cfi<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cfi")
            .field("arch", &self.arch)
            .field("debug_frame", &self.debug_frame.is_some())
            .field("eh_frame", &self.eh_frame.is_some())
            .field("kaslr_offset", &self.kaslr_offset)
            .finish()
    }
}

impl<'a> Cfi<'a> {
    /// The CFI of an image of `arch` from its `.debug_frame` and/or `.eh_frame` (with the
    /// section's link-time address, which `.eh_frame`'s pc-relative pointers need). Nothing is
    /// parsed yet.
    pub fn new(
        arch: Arch,
        endian: Endian,
        debug_frame: Option<&'a [u8]>,
        eh_frame: Option<(&'a [u8], u64)>,
        kaslr_offset: u64,
    ) -> Cfi<'a> {
        let endian = match endian {
            Endian::Little => RunTimeEndian::Little,
            Endian::Big => RunTimeEndian::Big,
        };
        let vendor = match arch {
            Arch::Aarch64 => gimli::Vendor::AArch64,
            _ => gimli::Vendor::Default,
        };
        let debug_frame = debug_frame.map(|b| {
            let mut s = DebugFrame::new(b, endian);
            s.set_vendor(vendor);
            s.set_address_size(8);
            s
        });
        let mut bases = BaseAddresses::default();
        let eh_frame = eh_frame.map(|(b, addr)| {
            bases = BaseAddresses::default().set_eh_frame(addr);
            let mut s = EhFrame::new(b, endian);
            s.set_vendor(vendor);
            s.set_address_size(8);
            s
        });
        Cfi {
            arch,
            debug_frame,
            eh_frame,
            bases,
            kaslr_offset,
            frame_pointer: None,
            index: OnceLock::new(),
        }
    }

    /// Declares `reg` a frame pointer that points at its own saved copy once a function's
    /// prologue has run (AAPCS64 x29; x86_64 rbp). See [`Cfi::step`].
    pub fn with_frame_pointer(mut self, reg: u16) -> Self {
        self.frame_pointer = Some(reg);
        self
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The number of FDEs indexed (builds the index).
    pub fn fde_count(&self) -> usize {
        self.index().len()
    }

    fn index(&self) -> &[Span] {
        self.index.get_or_init(|| {
            let mut spans = Vec::new();
            if let Some(s) = &self.debug_frame {
                collect(s, &self.bases, Src::DebugFrame, &mut spans);
            }
            if let Some(s) = &self.eh_frame {
                collect(s, &self.bases, Src::EhFrame, &mut spans);
            }
            spans.sort_by_key(|s| (s.start, s.end));
            spans
        })
    }

    /// The indexed FDE covering the link-time address `addr`.
    fn find(&self, addr: u64) -> Option<Span> {
        let index = self.index();
        let i = index.partition_point(|s| s.start <= addr);
        // The rightmost FDE starting at or below `addr`, and, if it ends before `addr`, the one
        // before it (a larger FDE that encloses a smaller one, which compilers do not emit but a
        // hand-written section may).
        index[..i]
            .iter()
            .rev()
            .take(2)
            .find(|s| addr < s.end)
            .copied()
    }

    /// Whether an FDE covers the runtime address `pc`.
    pub fn covers(&self, pc: u64) -> bool {
        self.find(pc.wrapping_sub(self.kaslr_offset)).is_some()
    }

    /// Applies the CFI row of `regs`'s pc to find the caller's registers. `interrupted`: the pc
    /// is exact (frame 0, or entered from saved registers); otherwise it is a return address and
    /// `pc - 1`, inside the call, is looked up.
    ///
    /// For a return address (the function is past its prologue: it made a call) and a declared
    /// frame pointer saved at `CFA + k` by this row, the CFA is taken as `fp - k` rather than
    /// from the row's CFA rule: the two agree whenever the stack pointer is known, and the frame
    /// pointer stays right when the stack pointer is only a lower bound (a frame found by the
    /// frame-record fallback, whose caller's stack pointer no record holds).
    pub fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory) -> CfiStep {
        let pc_reg = crate::unwind::pc_reg(self.arch);
        let Some(pc) = regs.get(pc_reg) else {
            return CfiStep::NotCovered;
        };
        let lookup = pc
            .wrapping_sub(u64::from(!interrupted))
            .wrapping_sub(self.kaslr_offset);
        let Some(span) = self.find(lookup) else {
            return CfiStep::NotCovered;
        };
        let unsupported = |what: String| CfiStep::Stop(StopReason::Unsupported { pc, what });
        let mut ctx = UnwindContext::new();
        let found = match span.src {
            Src::DebugFrame => self
                .debug_frame
                .as_ref()
                .map(|s| row_at(s, &self.bases, span.offset, lookup, &mut ctx)),
            Src::EhFrame => self
                .eh_frame
                .as_ref()
                .map(|s| row_at(s, &self.bases, span.offset, lookup, &mut ctx)),
        };
        let (row, ra) = match found {
            Some(Ok(found)) => found,
            Some(Err(e)) => return unsupported(format!("CFI at {lookup:#x}: {e}")),
            None => return CfiStep::NotCovered,
        };

        let get = |r: Register| regs.get(r.0);
        let mut cfa = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => match get(*register) {
                Some(v) => v.wrapping_add_signed(*offset),
                None => {
                    return unsupported(format!(
                        "CFA rule needs register {} whose value is unknown",
                        register.0
                    ));
                }
            },
            CfaRule::Expression(_) => return unsupported("CFA given by a DWARF expression".into()),
        };
        if !interrupted
            && let Some(fp) = self.frame_pointer
            && let Some(RegisterRule::Offset(k)) = row.register(Register(fp))
            && let Some(fp_value) = regs.get(fp)
        {
            cfa = fp_value.wrapping_add_signed(k.wrapping_neg());
        }

        let mut caller = regs.clone();
        for (reg, rule) in row.registers() {
            if usize::from(reg.0) >= NREGS {
                continue;
            }
            let value = match rule {
                RegisterRule::Undefined => None,
                RegisterRule::SameValue => get(*reg),
                RegisterRule::Offset(n) => match mem.read_u64(cfa.wrapping_add_signed(*n)) {
                    Ok(v) => Some(v),
                    Err(e) => return CfiStep::Stop(e.into()),
                },
                RegisterRule::ValOffset(n) => Some(cfa.wrapping_add_signed(*n)),
                RegisterRule::Register(r) => get(*r),
                RegisterRule::Constant(c) => Some(*c),
                RegisterRule::Expression(_) | RegisterRule::ValExpression(_) => {
                    return unsupported(format!("register {} given by a DWARF expression", reg.0));
                }
                RegisterRule::Architectural => {
                    return unsupported(format!("register {} has an architectural rule", reg.0));
                }
            };
            match value {
                Some(v) => caller.set(reg.0, v),
                None => caller.clear(reg.0),
            }
        }
        let Some(return_address) = caller.get(ra) else {
            return CfiStep::EndOfStack;
        };
        caller.set(pc_reg, return_address);
        caller.set(crate::unwind::sp_reg(self.arch), cfa);
        CfiStep::Caller { regs: caller, cfa }
    }
}

/// The row of the FDE at `offset` for the link-time address `addr`, and its CIE's
/// return-address column.
fn row_at<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    offset: usize,
    addr: u64,
    ctx: &mut UnwindContext<usize>,
) -> gimli::Result<(UnwindTableRow<usize>, u16)>
where
    S: UnwindSection<R<'a>>,
    S::Offset: From<usize>,
{
    let fde = section.fde_from_offset(bases, offset.into(), S::cie_from_offset)?;
    let ra = fde.cie().return_address_register().0;
    let row = fde
        .unwind_info_for_address(section, bases, ctx, addr)?
        .clone();
    Ok((row, ra))
}

/// Indexes every FDE of a section, stopping at the first malformed entry.
fn collect<'a, S>(section: &S, bases: &BaseAddresses, src: Src, out: &mut Vec<Span>)
where
    S: UnwindSection<R<'a>>,
    S::Offset: From<usize>,
{
    let mut entries = section.entries(bases);
    while out.len() < MAX_FDES {
        let entry = match entries.next() {
            Ok(Some(e)) => e,
            Ok(None) | Err(_) => break,
        };
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(S::cie_from_offset) else {
            continue;
        };
        let start = fde.initial_address();
        let end = start.saturating_add(fde.len());
        if end <= start {
            continue;
        }
        // The FDE's own offset in the section: where its instructions' entry starts.
        let offset = fde.offset();
        out.push(Span {
            start,
            end,
            src,
            offset,
        });
    }
}
