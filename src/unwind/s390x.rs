//! The s390x kernel unwinder: the back chain, and the `struct pt_regs` an interrupt saved where a
//! chain ends.
//!
//! **Stack frames** (ELF ABI s390x supplement, "Stack frame"; the kernel builds with
//! `-mpacked-stack`, so the layout is the packed one of `arch/s390/include/asm/stacktrace.h`,
//! `struct stack_frame`): a function allocates its frame below its caller's and stores, in its
//! frame, a back chain to the caller's frame; it saves its own callee-saved registers r6–r15
//! into its **caller's** frame, at `gprs[]` (r6 first, so r14, the return address, is
//! `gprs[8]` and r15 `gprs[9]`). Packed, the save area is at offset 72 and the back chain at 152
//! of the 160-byte frame (the unpacked ABI layout, back chain at 0, is user space's
//! `stack_frame_user`); the offsets come from the kernel's DWARF when the kernel view has it.
//!
//! One step (arch/s390/kernel/unwind_bc.c, `unwind_next_frame`): from a frame at `sp`, the back
//! chain `*(sp + back_chain)` is the caller's frame; the caller's pc is the r14 our function
//! saved there, `*(caller_sp + gprs + 8 * 8)`, and its r6–r13 the values saved beside it.
//!
//! **End of a chain**: a zero back chain. Below the first frame of an interrupt or exception
//! entry the entry code leaves a `struct pt_regs` at `sp + sizeof(struct stack_frame)`: its psw
//! and gprs are the interrupted context, which continues as an interrupted frame (possibly on
//! another stack: the async/IRQ stack to the task stack). A psw with the problem-state bit
//! (`PSW_MASK_PSTATE`) is user mode and ends the trace; the `pt_regs` at the very top of the task
//! stack (user entry, or a kernel thread's initial registers) ends it too. As the kernel notes,
//! the frame after an interrupted one is not reliable: the interrupted function may not have
//! saved r14 yet, and then its caller is skipped.

use crate::addr::Arch;
use crate::unwind::s390x_regs::{PSW_ADDR, PSW_MASK, R14, SP};
use crate::unwind::{
    Method, Regs, StackKind, StackMemory, Stacks, Step, StopReason, TextRanges, read_saved_regs,
};

/// `PSW_MASK_PSTATE`: the problem-state (user mode) bit of the 64-bit psw mask.
pub const PSW_MASK_PSTATE: u64 = 0x0001_0000_0000_0000;

/// Offsets the unwinder reads, from the kernel's DWARF (`struct stack_frame`, `struct pt_regs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S390xLayout {
    /// `sizeof(struct stack_frame)` (`STACK_FRAME_OVERHEAD`).
    pub frame_size: u64,
    /// `offsetof(struct stack_frame, back_chain)`.
    pub back_chain: u64,
    /// `offsetof(struct stack_frame, gprs)` (r6..r15).
    pub gprs: u64,
    /// `sizeof(struct pt_regs)`.
    pub pt_regs_size: u64,
    /// `offsetof(struct pt_regs, psw)` (mask, then address).
    pub pt_psw: u64,
    /// `offsetof(struct pt_regs, gprs)` (r0..r15).
    pub pt_gprs: u64,
}

impl S390xLayout {
    /// The layout of `-mpacked-stack` kernels (every s390x kernel since 2.6: 160-byte frames,
    /// save area at 72, back chain at 152) and of the 5.x–6.x `struct pt_regs` (args[1], psw,
    /// gprs[16], orig_gpr2, int_code/int_parm, int_parm_long, flags, cr1, last_break: 200
    /// bytes), for a kernel view without DWARF.
    pub const PACKED: S390xLayout = S390xLayout {
        frame_size: 160,
        back_chain: 152,
        gprs: 72,
        pt_regs_size: 200,
        pt_psw: 8,
        pt_gprs: 24,
    };
}

/// The s390x [`Unwinder`](crate::unwind::Unwinder).
#[derive(Debug)]
pub struct S390xUnwinder {
    text: TextRanges,
    layout: S390xLayout,
}

impl S390xUnwinder {
    pub fn new(text: TextRanges, layout: S390xLayout) -> Self {
        S390xUnwinder { text, layout }
    }

    /// The interrupted context from the `pt_regs` at `base`.
    fn pt_regs_step(&self, base: u64, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let l = self.layout;
        if !stacks.holds(base, l.pt_regs_size) {
            return Step::Stop(StopReason::EndOfStack);
        }
        let fields = (0..16u16)
            .map(|i| (i, l.pt_gprs + 8 * u64::from(i)))
            .chain([(PSW_MASK, l.pt_psw), (PSW_ADDR, l.pt_psw + 8)]);
        let regs = match read_saved_regs(mem, base, fields) {
            Ok(r) => r,
            Err(stop) => return Step::Stop(stop),
        };
        let pc = regs.get(PSW_ADDR).unwrap_or(0);
        if regs.get(PSW_MASK).unwrap_or(0) & PSW_MASK_PSTATE != 0 {
            return Step::Stop(StopReason::UserMode { pc });
        }
        // The task's own pt_regs at the top of its stack: a kernel thread's initial registers.
        let at_top = stacks
            .ranges
            .iter()
            .any(|r| r.kind == StackKind::Task && base.checked_add(l.pt_regs_size) == Some(r.end));
        if at_top {
            return Step::Stop(StopReason::EndOfStack);
        }
        Step::Caller {
            regs,
            method: Method::PtRegs,
            reliable: true,
            cfa: None,
            interrupted: true,
        }
    }
}

impl crate::unwind::Unwinder for S390xUnwinder {
    fn arch(&self) -> Arch {
        Arch::S390x
    }

    fn is_text(&self, pc: u64) -> bool {
        self.text.contains(pc)
    }

    fn step(&self, regs: &Regs, interrupted: bool, mem: &dyn StackMemory, stacks: &Stacks) -> Step {
        let l = self.layout;
        let Some(sp) = regs.get(SP) else {
            return Step::Stop(StopReason::Unsupported {
                pc: regs.get(PSW_ADDR).unwrap_or(0),
                what: "no stack pointer (r15)".into(),
            });
        };
        if sp % 8 != 0 || !stacks.holds(sp, l.frame_size) {
            return Step::Stop(StopReason::Memory {
                addr: sp,
                why: "stack frame misaligned or not on any of the task's stacks".into(),
            });
        }
        let read = |addr: u64| mem.read_u64(addr).map_err(StopReason::from);
        let back_chain = match read(sp.wrapping_add(l.back_chain)) {
            Ok(v) => v,
            Err(s) => return Step::Stop(s),
        };
        if back_chain == 0 {
            return self.pt_regs_step(sp.wrapping_add(l.frame_size), mem, stacks);
        }
        if back_chain % 8 != 0 || !stacks.holds(back_chain, l.frame_size) {
            return Step::Stop(StopReason::Memory {
                addr: back_chain,
                why: "back chain misaligned or not on any of the task's stacks".into(),
            });
        }
        // r6..r14 as our function saved them in its caller's frame; r15 is the caller's frame.
        let mut caller = Regs::default();
        for (i, reg) in (6..=R14).enumerate() {
            match read(back_chain.wrapping_add(l.gprs + 8 * i as u64)) {
                Ok(v) => caller.set(reg, v),
                Err(s) => return Step::Stop(s),
            }
        }
        caller.set(SP, back_chain);
        caller.set(PSW_ADDR, caller.get(R14).unwrap_or(0));
        Step::Caller {
            regs: caller,
            method: Method::BackChain,
            // After an interrupted context (a psw saved by an interrupt or in PRSTATUS) the
            // function may not have saved r14 yet (kernel: `reliable = false` after pt_regs).
            reliable: !(interrupted && regs.get(PSW_MASK).is_some()),
            cfa: Some(back_chain),
            interrupted: false,
        }
    }
}
