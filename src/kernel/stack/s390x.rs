//! s390x's part of the backtraces: the back-chain unwinder with this kernel's `struct
//! stack_frame` and `struct pt_regs` layouts; a sleeping task's `thread.ksp`; its stacks; the
//! PRSTATUS register block.
//!
//! - `__switch_to` (arch/s390/kernel/entry.S) saves r6–r15 into the save area of the frame r15
//!   points at and stores r15 in `task->thread.ksp`: the saved r14 there returns into
//!   `__schedule()`.
//! - Stacks: the task's own (`task->stack` + THREAD_SIZE) and, for a task running on a CPU, that
//!   CPU's async (interrupt), nodat, restart and machine-check stacks. They hang off its lowcore
//!   (`lowcore_ptr[cpu]`, `struct lowcore` in arch/s390/include/asm/lowcore.h: `async_stack`,
//!   `nodat_stack`, `restart_stack`, `mcck_stack`), each stored as its base + STACK_INIT_OFFSET
//!   (asm/processor.h: THREAD_SIZE − `sizeof(struct stack_frame)` − `sizeof(struct pt_regs)`), so
//!   a stack is `[value − STACK_INIT_OFFSET, + THREAD_SIZE)`. A member or lowcore the dump lacks
//!   leaves that stack out (the trace then stops there with a memory stop, "not on any of the
//!   task's stacks"). Proven on the s390x fixture sets: a CPU stopped by the panic's external
//!   call is on its async stack and unwinds through the interrupt's `pt_regs` to its task.
//! - `elf_gregset_t` (`s390_regs`): psw mask, psw address, r0–r15, access registers,
//!   orig_gpr2.

use crate::addr::VirtAddr;
use crate::kernel::stack::{ArchStack, kernel_text, task_stack, thread_size};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::s390x::{S390xLayout, S390xUnwinder};
use crate::unwind::s390x_regs::{PSW_ADDR, PSW_MASK, R14, SP};
use crate::unwind::{Regs, StackKind, StackRange, Stacks, Unwinder};

pub(crate) struct S390xStack;

/// The layouts from DWARF, each offset falling back to the packed-stack constant.
fn layout(k: &Kernel) -> S390xLayout {
    let d = S390xLayout::PACKED;
    let off = |t: &str, m: &str, dflt: u64| k.offset_of(t, m).unwrap_or(dflt);
    S390xLayout {
        frame_size: k.size_of("struct stack_frame").unwrap_or(d.frame_size),
        back_chain: off("struct stack_frame", "back_chain", d.back_chain),
        gprs: off("struct stack_frame", "gprs", d.gprs),
        pt_regs_size: k.size_of("struct pt_regs").unwrap_or(d.pt_regs_size),
        pt_psw: off("struct pt_regs", "psw", d.pt_psw),
        pt_gprs: off("struct pt_regs", "gprs", d.pt_gprs),
    }
}

impl ArchStack for S390xStack {
    fn unwinder<'k>(&self, k: &'k Kernel) -> Result<Box<dyn Unwinder + 'k>, KernelError> {
        Ok(Box::new(S390xUnwinder::new(kernel_text(k)?, layout(k))))
    }

    fn inactive_regs(&self, k: &Kernel, task: VirtAddr) -> Result<Regs, KernelError> {
        let ksp = k
            .object_of(task, "struct task_struct")?
            .member("thread.ksp")?
            .u64()?;
        let l = layout(k);
        let mut regs = Regs::default();
        for (i, reg) in (6..=R14).enumerate() {
            regs.set(
                reg,
                k.read_u64(VirtAddr(ksp.wrapping_add(l.gprs + 8 * i as u64)))?,
            );
        }
        regs.set(SP, ksp);
        regs.set(PSW_ADDR, regs.get(R14).unwrap_or(0));
        Ok(regs)
    }

    fn stacks(&self, k: &Kernel, task: VirtAddr, cpu: Option<u32>) -> Result<Stacks, KernelError> {
        let mut ranges = vec![task_stack(k, task)?];
        if let Some(cpu) = cpu {
            ranges.extend(lowcore_stacks(k, cpu));
        }
        Ok(Stacks { ranges })
    }

    fn prstatus_regs(&self, gregs: &[u64]) -> Regs {
        let mut regs = Regs::default();
        let mut words = gregs.iter().copied();
        if let Some(mask) = words.next() {
            regs.set(PSW_MASK, mask);
        }
        if let Some(addr) = words.next() {
            regs.set(PSW_ADDR, addr);
        }
        for (i, v) in words.take(16).enumerate() {
            regs.set(i as u16, v);
        }
        regs
    }

    fn register_names(&self) -> &'static [(&'static str, u16)] {
        &[
            ("psw_mask", PSW_MASK),
            ("psw_addr", PSW_ADDR),
            ("r0", 0),
            ("r1", 1),
            ("r2", 2),
            ("r3", 3),
            ("r4", 4),
            ("r5", 5),
            ("r6", 6),
            ("r7", 7),
            ("r8", 8),
            ("r9", 9),
            ("r10", 10),
            ("r11", 11),
            ("r12", 12),
            ("r13", 13),
            ("r14", 14),
            ("r15", 15),
        ]
    }
}

/// The CPU's own stacks from its lowcore (module documentation); those it cannot read are left
/// out.
fn lowcore_stacks(k: &Kernel, cpu: u32) -> Vec<StackRange> {
    let Ok(size) = thread_size(k) else {
        return Vec::new();
    };
    let l = layout(k);
    let init_offset = size.saturating_sub(l.frame_size + l.pt_regs_size);
    let Ok(lc) = k
        .variable("lowcore_ptr")
        .and_then(|v| v.index(u64::from(cpu)))
        .and_then(|p| p.pointer())
    else {
        return Vec::new();
    };
    if lc.0 == 0 {
        return Vec::new();
    }
    let Ok(lowcore) = k.object_of(lc, "struct lowcore") else {
        return Vec::new();
    };
    [
        ("async_stack", StackKind::Irq),
        ("nodat_stack", StackKind::Exception),
        ("restart_stack", StackKind::Exception),
        ("mcck_stack", StackKind::Exception),
    ]
    .iter()
    .filter_map(|&(member, kind)| {
        let top = lowcore.member(member).and_then(|m| m.u64()).ok()?;
        let start = top.checked_sub(init_offset).filter(|&s| s != 0)?;
        Some(StackRange {
            kind,
            start,
            end: start.checked_add(size)?,
        })
    })
    .collect()
}
