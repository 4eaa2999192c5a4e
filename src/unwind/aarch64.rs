//! The arm64 kernel unwinder: DWARF CFI where it covers the pc, the AAPCS64 frame-record chain
//! otherwise, and the `struct pt_regs` an exception saved at every exception boundary.
//!
//! **Frame records** (Procedure Call Standard for the Arm 64-bit Architecture, §6.2.3; the
//! kernel is always built with frame pointers): a function that calls others stores
//! `{x29, x30}` (caller's frame pointer, return address) as a 16-byte record and points x29 at
//! it. The kernel's own unwinder (arch/arm64/kernel/stacktrace.c, `unwind_next_frame_record`)
//! follows this chain: next fp = `*(fp)`, return address = `*(fp + 8)`, the record 8-byte aligned
//! and on one of the task's stacks. The record says nothing of the caller's stack pointer, so a
//! frame found this way gets the lowest value it can have (`fp + 16`) and is marked unreliable;
//! the CFI of its caller then derives the CFA from the frame pointer ([`Cfi::step`]).
//!
//! **Exception boundaries**: the entry code (`arch/arm64/kernel/entry.S`, `kernel_entry`) saves
//! the interrupted context as a `struct pt_regs` on the stack and points x29 at its embedded
//! `stackframe` member. Up to 6.12 that member is an ordinary record `{x29, elr}` for an
//! exception taken from EL1 and `{0, 0}` for one from EL0; since 6.13 (c2c6b27b5aa1 "arm64:
//! stacktrace: unwind exception boundaries", `asm/stacktrace/frame.h`) it is a
//! `struct frame_record_meta {fp = 0, lr = 0, type}` with `FRAME_META_TYPE_FINAL` (1, the task's
//! outermost entry) or `FRAME_META_TYPE_PT_REGS` (2). Here a frame whose return address lies in
//! the exception entry text (`__entry_text_start`..`__entry_text_end`: the vectors and the
//! `el1h_64_*`/`el0t_64_*` stubs, which have no CFI) continues from the `pt_regs` at
//! `x29 - offsetof(pt_regs, stackframe)` as an interrupted frame with its full registers; a
//! zeroed record met by the frame-record walk is read as 6.13+ metadata.
//!
//! **End of the stack**: the task's own `pt_regs` sits at the top of its stack
//! (`task_pt_regs()`: stack + THREAD_SIZE − sizeof(pt_regs)); its `stackframe` is the final
//! record (6.1 `unwind_next`: "the final frame record"), reached from user-mode entries and from
//! `ret_from_fork`. A zero frame pointer also ends the chain. Registers saved by an exception
//! taken from EL0 (`pstate` mode bits 0, `user_mode()`) end it as a user-mode stop. Before that
//! final record (5.16, "arm64: entry: make the stacktrace terminate at a final frame record"),
//! an idle task's stack ends in a zeroed record: `__primary_switched` and `__secondary_switched`
//! zero x29 and x30 before branching to `start_kernel` and `secondary_start_kernel`, whose
//! prologues store them (with pointer authentication the zero return address is signed: PAC bits
//! over 0, bit 55 clear); 5.10's `unwind_frame()` stops where both are zero once the PAC is
//! stripped ("only terminate where both are NULL"), whether the record is reached through the
//! chain or through the CFI.
//!
//! **Pointer authentication** (`CONFIG_ARM64_PTR_AUTH_KERNEL`): return addresses saved in frame
//! records carry a PAC in their top bits. Every recovered return address is stripped with the
//! mask VMCOREINFO `NUMBER(KERNELPACMASK)` gives (GENMASK(63, vabits_actual)): bit 55 set → OR the
//! mask in (a kernel address), clear → AND it out, as the kernel's `ptrauth_clear_pac()`.
//! Stripping an unsigned address changes nothing, so the CFI's `DW_CFA_AARCH64_negate_ra_state`
//! (which says when x30 is signed) need not be tracked.
//!
//! Stack switches (task → IRQ stack through `call_on_irq_stack`, the overflow stack) need no
//! special case: the frame records and the CFA lead from one stack to the other, and the walk
//! only checks that a record lies on one of the stacks the kernel view listed.

use crate::addr::Arch;
use crate::unwind::aarch64_regs::{FP, LR, PC, PSTATE, SP};
use crate::unwind::cfi::{Cfi, CfiStep};
use crate::unwind::{
    Method, Regs, StackKind, StackMemory, Stacks, Step, StopReason, TextRanges, read_saved_regs,
};

/// `frame_record_meta.type` of the task's outermost record (6.13+).
pub const FRAME_META_TYPE_FINAL: u64 = 1;
/// `frame_record_meta.type` of a record embedded in a `pt_regs` of a nested exception (6.13+).
pub const FRAME_META_TYPE_PT_REGS: u64 = 2;

/// gimli's number of AArch64's RA_SIGN_STATE pseudo-register, which CFI rows set as a constant.
const RA_SIGN_STATE: u16 = 34;

/// `pstate` mode bits (`PSR_MODE_MASK`); 0 is EL0t, user mode.
const PSR_MODE_MASK: u64 = 0xf;

/// Where `struct pt_regs` keeps what the unwinder reads, from the kernel's DWARF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtRegsLayout {
    /// `sizeof(struct pt_regs)`.
    pub size: u64,
    /// `regs` (x0; x1..x30 follow).
    pub regs: u64,
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
    /// `stackframe` (the embedded frame record).
    pub stackframe: u64,
}

/// Strips a pointer-authentication code from `addr` with the kernel's PAC mask.
pub fn strip_pac(addr: u64, mask: u64) -> u64 {
    if addr & (1 << 55) != 0 {
        addr | mask
    } else {
        addr & !mask
    }
}

/// The arm64 [`Unwinder`](crate::unwind::Unwinder).
#[derive(Debug)]
pub struct Aarch64Unwinder<'a> {
    text: TextRanges,
    entry: TextRanges,
    cfi: Option<Cfi<'a>>,
    pt_regs: Option<PtRegsLayout>,
    pac_mask: u64,
}

impl<'a> Aarch64Unwinder<'a> {
    /// An unwinder that trusts return addresses inside `text`, with no CFI, no exception entry
    /// text, no `pt_regs` layout and no PAC mask yet.
    pub fn new(text: TextRanges) -> Self {
        Aarch64Unwinder {
            text,
            entry: TextRanges::default(),
            cfi: None,
            pt_regs: None,
            pac_mask: 0,
        }
    }

    /// The vmlinux's CFI (`.debug_frame`), tried before the frame records.
    pub fn with_cfi(mut self, cfi: Cfi<'a>) -> Self {
        self.cfi = Some(cfi.with_frame_pointer(FP));
        self
    }

    /// The exception entry text (`__entry_text_start`..`__entry_text_end`).
    pub fn with_entry_text(mut self, entry: TextRanges) -> Self {
        self.entry = entry;
        self
    }

    pub fn with_pt_regs(mut self, layout: PtRegsLayout) -> Self {
        self.pt_regs = Some(layout);
        self
    }

    /// VMCOREINFO `KERNELPACMASK` (0: no pointer authentication).
    pub fn with_pac_mask(mut self, mask: u64) -> Self {
        self.pac_mask = mask;
        self
    }

    /// Whether `addr` is where the task's own `pt_regs` lies (the top of its task stack).
    fn is_task_pt_regs(&self, addr: u64, stacks: &Stacks) -> bool {
        self.pt_regs.is_some_and(|l| {
            stacks
                .ranges
                .iter()
                .any(|r| r.kind == StackKind::Task && addr.checked_add(l.size) == Some(r.end))
        })
    }

    /// The interrupted frame from the `pt_regs` whose `stackframe` is at `record`.
    fn exception_step(&self, record: u64, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let Some(l) = self.pt_regs else {
            return Step::Stop(StopReason::Unsupported {
                pc: 0,
                what: "exception frame without the layout of struct pt_regs".into(),
            });
        };
        let base = record.wrapping_sub(l.stackframe);
        if self.is_task_pt_regs(base, stacks) {
            return Step::Stop(StopReason::EndOfStack);
        }
        if !stacks.holds(base, l.size) {
            return Step::Stop(StopReason::Memory {
                addr: base,
                why: "pt_regs not on any of the task's stacks".into(),
            });
        }
        let fields = (0..31u16).map(|i| (i, l.regs + 8 * u64::from(i))).chain([
            (SP, l.sp),
            (PC, l.pc),
            (PSTATE, l.pstate),
        ]);
        let regs = match read_saved_regs(mem, base, fields) {
            Ok(r) => r,
            Err(stop) => return Step::Stop(stop),
        };
        let pc = regs.get(PC).unwrap_or(0);
        if regs.get(PSTATE).unwrap_or(0) & PSR_MODE_MASK == 0 {
            return Step::Stop(StopReason::UserMode { pc });
        }
        Step::Caller {
            regs,
            method: crate::unwind::Method::PtRegs,
            reliable: true,
            cfa: None,
            interrupted: true,
        }
    }

    /// One step along the frame-record chain from x29.
    fn frame_record_step(&self, regs: &Regs, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let pc = regs.get(PC).unwrap_or(0);
        let Some(fp) = regs.get(FP) else {
            return Step::Stop(StopReason::NoUnwindInfo { pc });
        };
        if fp == 0 {
            return Step::Stop(StopReason::EndOfStack);
        }
        if fp % 8 != 0 || !stacks.holds(fp, 16) {
            return Step::Stop(StopReason::Memory {
                addr: fp,
                why: "frame record misaligned or not on any of the task's stacks".into(),
            });
        }
        if let Some(l) = self.pt_regs
            && self.is_task_pt_regs(fp.wrapping_sub(l.stackframe), stacks)
        {
            return Step::Stop(StopReason::EndOfStack);
        }
        let read = |addr: u64| mem.read_u64(addr).map_err(StopReason::from);
        let (next_fp, lr) = match (read(fp), read(fp.wrapping_add(8))) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(s), _) | (_, Err(s)) => return Step::Stop(s),
        };
        if next_fp == 0 && strip_pac(lr, self.pac_mask) == 0 {
            // 6.13+ metadata; before 6.13 a zeroed record is only ever the final one.
            if self.pt_regs.is_some() && read(fp.wrapping_add(16)) == Ok(FRAME_META_TYPE_PT_REGS) {
                return self.exception_step(fp, mem, stacks);
            }
            return Step::Stop(StopReason::EndOfStack);
        }
        let mut caller = Regs::default();
        caller.set(PC, strip_pac(lr, self.pac_mask));
        caller.set(LR, lr);
        caller.set(FP, next_fp);
        caller.set(SP, fp.wrapping_add(16));
        Step::Caller {
            regs: caller,
            method: Method::FrameRecord,
            reliable: false,
            cfa: None,
            interrupted: false,
        }
    }
}

impl crate::unwind::Unwinder for Aarch64Unwinder<'_> {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }

    fn is_text(&self, pc: u64) -> bool {
        self.text.contains(pc)
    }

    fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let Some(pc) = regs.get(PC) else {
            return Step::Stop(StopReason::Unsupported {
                pc: 0,
                what: "no program counter".into(),
            });
        };
        // A return into the entry code: x29 there is the pt_regs' embedded record. (An exact pc
        // inside the entry code may be before `kernel_entry` set x29 up: no such conclusion.)
        if !interrupted
            && self.pt_regs.is_some()
            && self.entry.contains(pc)
            && let Some(fp) = regs.get(FP)
        {
            return self.exception_step(fp, mem, stacks);
        }
        if let Some(cfi) = &self.cfi {
            match cfi.step(regs, interrupted, mem) {
                CfiStep::Caller {
                    regs: mut caller,
                    cfa,
                } => {
                    let ra = strip_pac(caller.get(PC).unwrap_or(0), self.pac_mask);
                    // the zeroed outermost record of an idle task before 5.16 (module docs)
                    if ra == 0 && caller.get(FP) == Some(0) {
                        return Step::Stop(StopReason::EndOfStack);
                    }
                    caller.set(PC, ra);
                    caller.clear(RA_SIGN_STATE);
                    return Step::Caller {
                        regs: caller,
                        method: Method::DwarfCfi,
                        reliable: true,
                        cfa: Some(cfa),
                        interrupted: false,
                    };
                }
                CfiStep::EndOfStack => return Step::Stop(StopReason::EndOfStack),
                CfiStep::Stop(stop) => return Step::Stop(stop),
                CfiStep::NotCovered => {}
            }
        }
        self.frame_record_step(regs, mem, stacks)
    }
}
