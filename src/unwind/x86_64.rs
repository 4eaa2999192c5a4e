//! The x86_64 kernel unwinder: ORC first, as the kernel's own unwinder does
//! (arch/x86/kernel/unwind_orc.c, `unwind_next_frame`), the frame-pointer chain where no ORC
//! entry covers the pc.
//!
//! One step, from a frame's registers (pc, sp, bp, and the registers of the last `pt_regs`):
//!
//! 1. A frame whose saved `cs` is user mode (`cs & 3`) ends the kernel trace
//!    ([`StopReason::UserMode`]).
//! 2. The entry for the pc (`pc - 1` for a return address: the call itself, so a call to a
//!    `noreturn` function at the end of a function finds its own frame); pc 0 (a call through a
//!    NULL pointer) takes the kernel's `null_orc_entry` (CALL, CFA = sp + 8).
//! 3. Type UNDEFINED stops ([`StopReason::NoUnwindInfo`]), END_OF_STACK ends the trace.
//! 4. The CFA from `sp_reg`: SP/BP + offset; SP_INDIRECT `*sp + offset` (5.12+ meaning, the
//!    previous stack pointer saved at the top of the IRQ stack); BP_INDIRECT `*(bp + offset)`;
//!    DX/DI/R10/R13/AX from the last full `pt_regs` (kept across IRET frames, as the kernel's
//!    `prev_regs`).
//! 5. CALL: return address at CFA − 8, sp = CFA, the other registers unknown. REGS: a full
//!    `struct pt_regs` at the CFA gives every register ([`PT_REGS`]). REGS_PARTIAL: the IRET
//!    frame (ip, cs, flags, sp, ss) at the CFA.
//! 6. bp from `bp_reg`: UNDEFINED keeps it (or takes the `pt_regs` value), PREV_SP reads
//!    `*(CFA + bp_offset)`, BP reads `*(bp + bp_offset)`.
//! 7. The caller's pc is exact when the entry's `signal` is set (an interrupted frame).
//!
//! Without an ORC entry the step follows the frame pointer (the kernel's `orc_fp_entry`: CFA =
//! bp + 16, return address at bp + 8, caller's bp at bp), or, for an odd bp (entry code's
//! encoded `pt_regs | 1`), the `pt_regs` it points to; such frames are not reliable.
//!
//! Every stack read must lie on one of the task's stacks when the kernel view gave any (the
//! kernel's `stack_access_ok`), so a corrupt entry cannot send the walk across memory. The
//! stack switch from an IRQ or exception stack back to the task stack needs nothing special: the
//! SP_INDIRECT entry of the switching code or the `pt_regs` of the entry code lands on the other
//! stack.

use crate::addr::Arch;
use crate::unwind::orc::{OrcEntry, OrcReg, OrcTables, OrcType};
use crate::unwind::x86_64_regs as r;
use crate::unwind::{MemoryError, Method, Regs, StackMemory, Stacks, Step, StopReason, Unwinder};

/// `struct pt_regs` (arch/x86/include/asm/ptrace.h), one 64-bit word per slot, by DWARF number;
/// the same order begins `user_regs_struct`, the PRSTATUS `pr_reg`.
pub const PT_REGS: [u16; 21] = [
    r::R15,
    r::R14,
    r::R13,
    r::R12,
    r::RBP,
    r::RBX,
    r::R11,
    r::R10,
    r::R9,
    r::R8,
    r::RAX,
    r::RCX,
    r::RDX,
    r::RSI,
    r::RDI,
    r::ORIG_RAX,
    r::RIP,
    r::CS,
    r::RFLAGS,
    r::RSP,
    r::SS,
];

/// The size of `struct pt_regs`.
pub const PT_REGS_SIZE: u64 = 8 * PT_REGS.len() as u64;

/// The offset of `ip` in `struct pt_regs` (`IRET_FRAME_OFFSET`): an IRET frame is its tail.
pub const IRET_FRAME_OFFSET: u64 = 16 * 8;

/// The registers a REGS_PARTIAL frame inherits from the last full `pt_regs`: the ones ORC may
/// name as a CFA base.
const ENTRY_BASE_REGS: [u16; 5] = [r::RAX, r::RDX, r::RDI, r::R10, r::R13];

/// The kernel's `null_orc_entry`: a call through a NULL function pointer.
const NULL_ENTRY: OrcEntry = OrcEntry {
    sp_offset: 8,
    bp_offset: 0,
    sp_reg: OrcReg::Sp,
    bp_reg: OrcReg::Undefined,
    kind: OrcType::Call,
    signal: false,
};

/// The x86_64 unwinder over a kernel's ORC tables.
#[derive(Clone, Debug, Default)]
pub struct X86_64Unwinder {
    pub orc: OrcTables,
    /// Kernel text ranges `[start, end)` (the image's `_stext.._etext`, module text); a pc in
    /// none of them and covered by no ORC table is not kernel text.
    pub text: Vec<(u64, u64)>,
}

impl X86_64Unwinder {
    pub fn new(orc: OrcTables, text: Vec<(u64, u64)>) -> X86_64Unwinder {
        X86_64Unwinder { orc, text }
    }
}

/// A failed step.
type StepResult<T> = Result<T, StopReason>;

fn mem_stop(e: MemoryError) -> StopReason {
    StopReason::Memory {
        addr: e.addr,
        why: e.why,
    }
}

/// Reads a word of the stack, refusing one outside every known stack.
fn read(mem: &dyn StackMemory, stacks: &Stacks, addr: u64) -> StepResult<u64> {
    if !stacks.ranges.is_empty()
        && !stacks
            .ranges
            .iter()
            .any(|s| s.contains(addr) && addr.checked_add(8).is_some_and(|e| e <= s.end))
    {
        return Err(StopReason::Memory {
            addr,
            why: "not on any of the task's stacks".into(),
        });
    }
    mem.read_u64(addr).map_err(mem_stop)
}

/// A `struct pt_regs` at `addr`, as registers.
fn read_pt_regs(mem: &dyn StackMemory, stacks: &Stacks, addr: u64) -> StepResult<Regs> {
    let mut regs = Regs::default();
    for (i, &reg) in PT_REGS.iter().enumerate() {
        let a = addr.wrapping_add(8 * i as u64);
        regs.set(reg, read(mem, stacks, a)?);
    }
    Ok(regs)
}

fn user_mode(regs: &Regs) -> bool {
    regs.get(r::CS).is_some_and(|cs| cs & 3 != 0)
}

impl X86_64Unwinder {
    /// The caller of a frame ORC has no rule for, found by scanning the stack: the first word
    /// above `sp` (at most [`SCAN_WORDS`], inside the stack) that is a return address — kernel
    /// text whose ORC entry is a call frame, right after a call instruction (`call rel32`, or
    /// `call *` through a register, memory or a retpoline thunk). The case this is for: a kdump
    /// capture's first frame is `crash_setup_regs`'s label inside `__crash_kexec`, which objtool
    /// leaves UNDEFINED; with a vmlinux its `.debug_frame` answers, without one this scan does.
    /// Only an exact pc (frame 0, or an interrupted frame) is scanned from, and the caller is
    /// marked unreliable: a stale return address left on the stack would pass the same checks.
    fn scan_step(
        &self,
        regs: &Regs,
        sp: u64,
        mem: &dyn StackMemory,
        stacks: &Stacks,
    ) -> Option<Step> {
        for i in 0..SCAN_WORDS {
            let slot = sp.checked_add(8 * i)?;
            if !stacks.holds(slot, 8) {
                return None;
            }
            let Ok(ra) = mem.read_u64(slot) else {
                return None;
            };
            if !self.is_text(ra) || !follows_call(mem, ra) {
                continue;
            }
            if !matches!(self.orc.find(ra.wrapping_sub(1)), Some(e) if e.kind == OrcType::Call) {
                continue;
            }
            let mut next = regs.clone();
            next.set(r::RIP, ra);
            next.set(r::RSP, slot + 8);
            return Some(Step::Caller {
                regs: next,
                method: Method::StackScan,
                reliable: false,
                cfa: Some(slot + 8),
                interrupted: false,
            });
        }
        None
    }

    fn orc_step(
        &self,
        entry: &OrcEntry,
        regs: &Regs,
        pc: u64,
        sp: u64,
        mem: &dyn StackMemory,
        stacks: &Stacks,
    ) -> StepResult<Step> {
        let unsupported = |what: String| StopReason::Unsupported { pc, what };
        match entry.kind {
            OrcType::Undefined => return Err(StopReason::NoUnwindInfo { pc }),
            OrcType::EndOfStack => return Err(StopReason::EndOfStack),
            OrcType::Unknown(t) => return Err(unsupported(format!("ORC type {t}"))),
            OrcType::Call | OrcType::Regs | OrcType::RegsPartial => {}
        }
        let bp = regs.get(r::RBP);
        let need_bp = || bp.ok_or_else(|| unsupported("the CFA is based on an unknown bp".into()));
        let off = i64::from(entry.sp_offset);
        let from_regs = |reg: u16, name: &str| {
            regs.get(reg)
                .ok_or_else(|| unsupported(format!("the CFA is based on {name}, not saved here")))
        };
        let cfa = match entry.sp_reg {
            OrcReg::Sp => sp.wrapping_add_signed(off),
            OrcReg::Bp => need_bp()?.wrapping_add_signed(off),
            OrcReg::SpIndirect => read(mem, stacks, sp)?.wrapping_add_signed(off),
            OrcReg::BpIndirect => read(mem, stacks, need_bp()?.wrapping_add_signed(off))?,
            OrcReg::Dx => from_regs(r::RDX, "dx")?,
            OrcReg::Di => from_regs(r::RDI, "di")?,
            OrcReg::R10 => from_regs(r::R10, "r10")?,
            OrcReg::R13 => from_regs(r::R13, "r13")?,
            OrcReg::Ax => from_regs(r::RAX, "ax")?,
            other => return Err(unsupported(format!("ORC sp_reg {other:?}"))),
        };
        let (mut next, method) = match entry.kind {
            OrcType::Call => {
                let mut next = Regs::default();
                next.set(r::RIP, read(mem, stacks, cfa.wrapping_sub(8))?);
                next.set(r::RSP, cfa);
                if let Some(bp) = bp {
                    next.set(r::RBP, bp);
                }
                (next, Method::Orc)
            }
            OrcType::Regs => (read_pt_regs(mem, stacks, cfa)?, Method::PtRegs),
            _ => {
                // The IRET frame: ip, cs, flags, sp, ss.
                let mut next = Regs::default();
                for (i, reg) in [r::RIP, r::CS, r::RFLAGS, r::RSP, r::SS]
                    .into_iter()
                    .enumerate()
                {
                    next.set(reg, read(mem, stacks, cfa.wrapping_add(8 * i as u64))?);
                }
                for reg in ENTRY_BASE_REGS {
                    if let Some(v) = regs.get(reg) {
                        next.set(reg, v);
                    }
                }
                if let Some(bp) = bp {
                    next.set(r::RBP, bp);
                }
                (next, Method::PtRegs)
            }
        };
        if user_mode(&next) {
            return Err(StopReason::UserMode {
                pc: next.get(r::RIP).unwrap_or(0),
            });
        }
        let bp_off = i64::from(entry.bp_offset);
        match entry.bp_reg {
            // Unchanged in this frame; a full pt_regs already gave it.
            OrcReg::Undefined => {}
            OrcReg::PrevSp => next.set(r::RBP, read(mem, stacks, cfa.wrapping_add_signed(bp_off))?),
            OrcReg::Bp => next.set(
                r::RBP,
                read(mem, stacks, need_bp()?.wrapping_add_signed(bp_off))?,
            ),
            other => return Err(unsupported(format!("ORC bp_reg {other:?}"))),
        }
        Ok(Step::Caller {
            regs: next,
            method,
            reliable: true,
            cfa: Some(cfa),
            interrupted: entry.signal,
        })
    }

    /// The frame-pointer guess where no ORC entry covers the pc.
    fn fp_step(
        &self,
        regs: &Regs,
        pc: u64,
        mem: &dyn StackMemory,
        stacks: &Stacks,
    ) -> StepResult<Step> {
        let bp = match regs.get(r::RBP) {
            Some(bp) if bp != 0 => bp,
            _ => return Err(StopReason::NoUnwindInfo { pc }),
        };
        if bp & 1 != 0 {
            // Entry code's encoded frame pointer: `pt_regs | 1`.
            let next = read_pt_regs(mem, stacks, bp & !1)?;
            if user_mode(&next) {
                return Err(StopReason::UserMode {
                    pc: next.get(r::RIP).unwrap_or(0),
                });
            }
            return Ok(Step::Caller {
                regs: next,
                method: Method::PtRegs,
                reliable: false,
                cfa: None,
                interrupted: true,
            });
        }
        let mut next = Regs::default();
        next.set(r::RBP, read(mem, stacks, bp)?);
        next.set(r::RIP, read(mem, stacks, bp.wrapping_add(8))?);
        next.set(r::RSP, bp.wrapping_add(16));
        Ok(Step::Caller {
            regs: next,
            method: Method::FramePointer,
            reliable: false,
            cfa: Some(bp.wrapping_add(16)),
            interrupted: false,
        })
    }
}

impl Unwinder for X86_64Unwinder {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    fn is_text(&self, pc: u64) -> bool {
        self.text.iter().any(|&(s, e)| s <= pc && pc < e)
            || self.orc.tables().iter().any(|t| t.covers(pc))
    }

    fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let (Some(pc), Some(sp)) = (regs.get(r::RIP), regs.get(r::RSP)) else {
            return Step::Stop(StopReason::Unsupported {
                pc: regs.get(r::RIP).unwrap_or(0),
                what: "no rip or rsp".into(),
            });
        };
        if user_mode(regs) {
            return Step::Stop(StopReason::UserMode { pc });
        }
        let lookup = if interrupted { pc } else { pc.wrapping_sub(1) };
        let entry = if pc == 0 {
            Some(&NULL_ENTRY)
        } else {
            self.orc.find(lookup)
        };
        let result = match entry {
            Some(e) => self.orc_step(e, regs, pc, sp, mem, stacks),
            None => self.fp_step(regs, pc, mem, stacks),
        };
        match result {
            Err(StopReason::NoUnwindInfo { .. }) if interrupted => self
                .scan_step(regs, sp, mem, stacks)
                .unwrap_or(Step::Stop(StopReason::NoUnwindInfo { pc })),
            r => r.unwrap_or_else(Step::Stop),
        }
    }
}

/// Words of stack [`X86_64Unwinder::scan_step`] looks at (a `pt_regs` and a few locals).
const SCAN_WORDS: u64 = 64;

/// Whether the bytes before `ra` end with a call instruction: `e8 rel32`; `ff /2` through a
/// register (`ff d0+r`, 2 bytes, 3 with a REX prefix), through memory with a disp8 or an SIB
/// byte (3 or 4 bytes), or through `disp32(%rip)` / `disp32(,%reg,8)` (6 or 7 bytes).
fn follows_call(mem: &dyn StackMemory, ra: u64) -> bool {
    let Ok(word) = mem.read_u64(ra.wrapping_sub(8)) else {
        return false;
    };
    let b = word.to_le_bytes(); // b[7] is the byte at ra - 1
    let at = |back: usize| b[8 - back];
    let modrm_call = |m: u8| (m >> 3) & 7 == 2;
    at(5) == 0xe8
        || (at(2) == 0xff && modrm_call(at(1)) && at(1) >> 6 == 3)
        || (at(3) == 0xff && modrm_call(at(2)) && at(2) >> 6 == 1)
        || (at(4) == 0xff && modrm_call(at(3)) && at(3) >> 6 == 1 && at(3) & 7 == 4)
        || (at(6) == 0xff && at(5) == 0x15)
        || (at(7) == 0xff && modrm_call(at(6)) && at(6) & 7 == 4)
}
