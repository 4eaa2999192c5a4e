//! A trivial x86_64 [`ArchStack`] for tests of the architecture-neutral backtrace plumbing: a
//! frame-pointer unwinder (`[rbp]` = the caller's rbp, `[rbp + 8]` = the return address, the
//! caller's rsp = rbp + 16, rbp 0 ends the stack), a sleeping task's registers from two members
//! of its `task_struct` (`thread.sp`, the saved rsp, whose first word is the saved rbp and the
//! second the return address, as a miniature `inactive_task_frame`), and the task stack from
//! `task->stack`. Nothing here is the real x86_64 unwinder; it only lets a test build a chain of
//! frames it knows.

use vmcore_report::addr::{Arch, VirtAddr};
use vmcore_report::kernel::stack::ArchStack;
use vmcore_report::kernel::{Kernel, KernelError};
use vmcore_report::unwind::x86_64_regs::{RBP, RIP, RSP};
use vmcore_report::unwind::{
    Method, Regs, StackKind, StackMemory, StackRange, Stacks, Step, StopReason, Unwinder,
};

/// `user_regs_struct` word indices.
pub const GREG_RBP: usize = 4;
pub const GREG_RIP: usize = 16;
pub const GREG_RSP: usize = 19;
/// The task stack's size.
pub const THREAD_SIZE: u64 = 0x4000;

pub struct FpArch;

pub struct FpUnwinder;

impl Unwinder for FpUnwinder {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn is_text(&self, pc: u64) -> bool {
        pc >= 0xffff_ffff_8000_0000
    }
    fn step(&self, regs: &Regs, _interrupted: bool, mem: &dyn StackMemory, _: &Stacks) -> Step {
        let Some(bp) = regs.get(RBP) else {
            return Step::Stop(StopReason::EndOfStack);
        };
        if bp == 0 {
            return Step::Stop(StopReason::EndOfStack);
        }
        let read = |a: u64| mem.read_u64(a);
        let (next_bp, ret) = match (read(bp), read(bp + 8)) {
            (Ok(b), Ok(r)) => (b, r),
            (Err(e), _) | (_, Err(e)) => {
                return Step::Stop(StopReason::Memory {
                    addr: e.addr,
                    why: e.why,
                });
            }
        };
        let mut next = Regs::default();
        next.set(RIP, ret);
        next.set(RSP, bp + 16);
        next.set(RBP, next_bp);
        Step::Caller {
            regs: next,
            method: Method::FramePointer,
            reliable: true,
            cfa: Some(bp + 16),
            interrupted: false,
        }
    }
}

impl ArchStack for FpArch {
    fn unwinder<'k>(&self, _k: &'k Kernel) -> Result<Box<dyn Unwinder + 'k>, KernelError> {
        Ok(Box::new(FpUnwinder))
    }
    fn inactive_regs(&self, k: &Kernel, task: VirtAddr) -> Result<Regs, KernelError> {
        let sp = k
            .object_of(task, "struct task_struct")?
            .member("thread.sp")?
            .u64()?;
        let mut r = Regs::default();
        r.set(RBP, k.read_u64(VirtAddr(sp))?);
        r.set(RIP, k.read_u64(VirtAddr(sp + 8))?);
        r.set(RSP, sp + 16);
        Ok(r)
    }
    fn stacks(&self, k: &Kernel, task: VirtAddr, _cpu: Option<u32>) -> Result<Stacks, KernelError> {
        let base = k
            .object_of(task, "struct task_struct")?
            .member("stack")?
            .pointer()?
            .0;
        Ok(Stacks {
            ranges: vec![StackRange {
                kind: StackKind::Task,
                start: base,
                end: base + THREAD_SIZE,
            }],
        })
    }
    fn prstatus_regs(&self, gregs: &[u64]) -> Regs {
        let mut r = Regs::default();
        for (reg, i) in [(RIP, GREG_RIP), (RSP, GREG_RSP), (RBP, GREG_RBP)] {
            if let Some(&v) = gregs.get(i) {
                r.set(reg, v);
            }
        }
        r
    }
    fn register_names(&self) -> &'static [(&'static str, u16)] {
        &[("rip", RIP), ("rsp", RSP), ("rbp", RBP)]
    }
}
