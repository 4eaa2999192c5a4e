//! s390x's part of the backtraces: the back-chain unwinder with this kernel's `struct
//! stack_frame` and `struct pt_regs` layouts; a sleeping task's `thread.ksp`; its stacks; the
//! PRSTATUS register block.
//!
//! - `__switch_to` (arch/s390/kernel/entry.S) saves r6–r15 into the save area of the frame r15
//!   points at and stores r15 in `task->thread.ksp`: the saved r14 there returns into
//!   `__schedule()`.
//! - Stacks: only the task's own (`task->stack` + THREAD_SIZE). The async (IRQ), nodat, restart
//!   and machine-check stacks hang off each CPU's lowcore (`lowcore_ptr[cpu]->async_stack`…,
//!   stored as top − STACK_INIT_OFFSET); there is no s390x fixture to prove those reads on, so
//!   they are left out: a trace that reaches one of them stops there with a memory stop ("not
//!   on any of the task's stacks") rather than follow a guess.
//! - `elf_gregset_t` (`s390_regs`): psw mask, psw address, r0–r15, access registers,
//!   orig_gpr2.

use crate::addr::VirtAddr;
use crate::kernel::stack::{ArchStack, kernel_text, task_stack};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::s390x::{S390xLayout, S390xUnwinder};
use crate::unwind::s390x_regs::{PSW_ADDR, PSW_MASK, R14, SP};
use crate::unwind::{Regs, Stacks, Unwinder};

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

    fn stacks(&self, k: &Kernel, task: VirtAddr, _cpu: Option<u32>) -> Result<Stacks, KernelError> {
        Ok(Stacks {
            ranges: vec![task_stack(k, task)?],
        })
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
