//! arm64's part of the backtraces: the unwinder with this kernel's CFI, text and `pt_regs`
//! layout; a sleeping task's `thread.cpu_context`; the task, IRQ and overflow stacks; the
//! PRSTATUS register block.
//!
//! - `cpu_switch_to()` (arch/arm64/kernel/entry.S) saves x19–x28, fp (x29), sp and lr into
//!   `task->thread.cpu_context` (`struct cpu_context`, arch/arm64/include/asm/processor.h); the
//!   saved lr (`pc`) returns into `__switch_to()`, the trace's first frame.
//! - The IRQ stack: per-CPU `irq_stack_ptr` (its base; IRQ_STACK_SIZE = THREAD_SIZE,
//!   arch/arm64/include/asm/memory.h), the overflow stack: per-CPU `overflow_stack` (an array,
//!   OVERFLOW_STACK_SIZE), both from arch/arm64/kernel/irq.c and traps.c.
//! - `elf_gregset_t` (`struct user_pt_regs`): x0–x30, sp, pc, pstate.
//! - Pointer authentication: VMCOREINFO `NUMBER(KERNELPACMASK)` (arch/arm64/kernel/crash_core.c,
//!   5.10+; absent or 0 without address authentication).

use crate::addr::{Arch, VirtAddr};
use crate::kernel::stack::{ArchStack, kernel_text, task_stack, thread_size, vmlinux_cfi};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::aarch64::{Aarch64Unwinder, PtRegsLayout};
use crate::unwind::aarch64_regs::{FP, PC, PSTATE, SP};
use crate::unwind::{Regs, StackKind, StackRange, Stacks, TextRanges, Unwinder};

pub(crate) struct Aarch64Stack;

/// The `pt_regs` layout from DWARF; `None` when a member is missing (no exception frames then).
fn pt_regs_layout(k: &Kernel) -> Option<PtRegsLayout> {
    let off = |m: &str| k.offset_of("struct pt_regs", m).ok();
    Some(PtRegsLayout {
        size: k.size_of("struct pt_regs").ok()?,
        regs: off("regs")?,
        sp: off("sp")?,
        pc: off("pc")?,
        pstate: off("pstate")?,
        stackframe: off("stackframe")?,
    })
}

impl ArchStack for Aarch64Stack {
    fn unwinder<'k>(&self, k: &'k Kernel) -> Result<Box<dyn Unwinder + 'k>, KernelError> {
        let mut u = Aarch64Unwinder::new(kernel_text(k)?);
        if let Some(cfi) = vmlinux_cfi(k, Arch::Aarch64)? {
            u = u.with_cfi(cfi);
        }
        let sym = |n: &str| k.symbols().address(n).map(|a| a.0);
        if let (Some(s), Some(e)) = (sym("__entry_text_start"), sym("__entry_text_end")) {
            u = u.with_entry_text(TextRanges::new([(s, e)]));
        }
        if let Some(l) = pt_regs_layout(k) {
            u = u.with_pt_regs(l);
        }
        if let Some(mask) = k.vmcoreinfo().and_then(|v| v.number("KERNELPACMASK")) {
            u = u.with_pac_mask(mask as u64);
        }
        Ok(Box::new(u))
    }

    fn inactive_regs(&self, k: &Kernel, task: VirtAddr) -> Result<Regs, KernelError> {
        let ctx = k
            .object_of(task, "struct task_struct")?
            .member("thread.cpu_context")?;
        let mut regs = Regs::default();
        for (i, name) in [
            "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
        ]
        .iter()
        .enumerate()
        {
            regs.set(19 + i as u16, ctx.member(name)?.u64()?);
        }
        regs.set(FP, ctx.member("fp")?.u64()?);
        regs.set(SP, ctx.member("sp")?.u64()?);
        regs.set(PC, ctx.member("pc")?.u64()?);
        Ok(regs)
    }

    fn stacks(&self, k: &Kernel, task: VirtAddr, cpu: Option<u32>) -> Result<Stacks, KernelError> {
        let mut ranges = vec![task_stack(k, task)?];
        if let Some(cpu) = cpu {
            // Either may be missing (an old kernel, a per-CPU area not dumped): the task stack
            // alone still unwinds.
            let size = thread_size(k)?;
            if let Ok(base) = k.per_cpu("irq_stack_ptr", cpu).and_then(|p| p.pointer())
                && base.0 != 0
            {
                ranges.push(StackRange {
                    kind: StackKind::Irq,
                    start: base.0,
                    end: base.0.wrapping_add(size),
                });
            }
            if let Ok(o) = k.per_cpu("overflow_stack", cpu)
                && let Ok(len) = o.size()
            {
                ranges.push(StackRange {
                    kind: StackKind::Exception,
                    start: o.address().0,
                    end: o.address().0.wrapping_add(len),
                });
            }
        }
        Ok(Stacks { ranges })
    }

    fn prstatus_regs(&self, gregs: &[u64]) -> Regs {
        let mut regs = Regs::default();
        // x0..x30, sp (31), pc (32), pstate (33): the DWARF numbers are the word indices.
        for (i, &v) in gregs.iter().take(34).enumerate() {
            regs.set(i as u16, v);
        }
        regs
    }

    fn register_names(&self) -> &'static [(&'static str, u16)] {
        &[
            ("pc", PC),
            ("lr", 30),
            ("sp", SP),
            ("x29", 29),
            ("x28", 28),
            ("x27", 27),
            ("x26", 26),
            ("x25", 25),
            ("x24", 24),
            ("x23", 23),
            ("x22", 22),
            ("x21", 21),
            ("x20", 20),
            ("x19", 19),
            ("x18", 18),
            ("x17", 17),
            ("x16", 16),
            ("x15", 15),
            ("x14", 14),
            ("x13", 13),
            ("x12", 12),
            ("x11", 11),
            ("x10", 10),
            ("x9", 9),
            ("x8", 8),
            ("x7", 7),
            ("x6", 6),
            ("x5", 5),
            ("x4", 4),
            ("x3", 3),
            ("x2", 2),
            ("x1", 1),
            ("x0", 0),
            ("pstate", PSTATE),
        ]
    }
}
