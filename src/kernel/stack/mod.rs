//! Backtraces of the dumped kernel's tasks and CPUs: where each trace starts, which stacks it
//! may cross, and its frames symbolized.
//!
//! The unwinding itself is [`crate::unwind`]; this module gathers what it needs from the dump:
//! - **starting registers**: for a task that was running on a CPU, the registers the dump saved
//!   for that CPU (the per-CPU `crash_notes` buffer a kdump kernel filled in
//!   `crash_save_cpu()`, kernel/crash_core.c; else the PRSTATUS note matched to the CPU, QEMU
//!   writing `pr_pid = cpu + 1`); for a sleeping task, the context `switch_to` saved
//!   (per architecture, [`ArchStack::inactive_regs`]);
//! - **the stacks**: the task's stack, and the CPU's IRQ and exception stacks when it ran;
//! - **the unwind rules**: per architecture ([`ArchStack::unwinder`]).
//!
//! Each architecture implements [`ArchStack`] in its own file; [`arch_stack`] picks it.

use serde::Serialize;

pub mod x86_64;

use crate::addr::{Arch, VirtAddr};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::{
    MemoryError, Method, Regs, StackKind, StackMemory, Stacks, StopReason, Unwinder,
};

/// One architecture's part: its unwinder, a sleeping task's saved registers, its stacks and
/// the decoding of its PRSTATUS register block.
pub trait ArchStack: Sync {
    /// The unwinder for this kernel (tables loaded once per call; the caller keeps it for all
    /// traces of a run).
    fn unwinder<'k>(&self, k: &'k Kernel) -> Result<Box<dyn Unwinder + 'k>, KernelError>;
    /// The registers a task that is not running saved when it was switched out.
    fn inactive_regs(&self, k: &Kernel, task: VirtAddr) -> Result<Regs, KernelError>;
    /// The stacks a trace of `task` may cross: its own stack, and when it runs on `cpu`, that
    /// CPU's IRQ and exception stacks.
    fn stacks(&self, k: &Kernel, task: VirtAddr, cpu: Option<u32>) -> Result<Stacks, KernelError>;
    /// The registers of an `elf_prstatus` `pr_reg` block (the `elf_gregset_t` words in order).
    fn prstatus_regs(&self, gregs: &[u64]) -> Regs;
    /// The name and value of each register in the order `crash` prints an exception frame.
    fn register_names(&self) -> &'static [(&'static str, u16)];
}

/// The [`ArchStack`] of `arch`, when the crate can unwind it.
pub fn arch_stack(arch: Arch) -> Option<&'static dyn ArchStack> {
    match arch {
        Arch::X86_64 => Some(&x86_64::X86_64Stack),
        Arch::Aarch64 => None,
        Arch::S390x => None,
    }
}

/// The dump's memory as an unwinder reads it.
impl StackMemory for Kernel {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        Kernel::read_u64(self, VirtAddr(addr)).map_err(|e| MemoryError {
            addr,
            why: e.to_string(),
        })
    }
}

/// Where a trace's first registers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartKind {
    /// The per-CPU `crash_notes` buffer (a kdump capture).
    CrashNotes,
    /// A PRSTATUS note of the dump matched to the CPU.
    Prstatus,
    /// x86_64 `thread.sp` → `struct inactive_task_frame`.
    InactiveTaskFrame,
    /// aarch64 `thread.cpu_context`.
    CpuContext,
    /// s390x `thread.ksp`.
    Ksp,
}

/// A source position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLoc {
    pub file: String,
    pub line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// A function inlined at a frame's pc, innermost first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlinedFrame {
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLoc>,
}

/// One physical frame, symbolized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFrame {
    pub pc: u64,
    pub sp: u64,
    pub cfa: Option<u64>,
    /// The symbol covering the pc (`pc - 1` for a return address), its offset and size.
    pub symbol: Option<String>,
    pub offset: u64,
    pub size: u64,
    /// The module the pc lies in (`None`: the kernel image).
    pub module: Option<String>,
    /// The source position of the pc, with DWARF.
    pub source: Option<SourceLoc>,
    /// Functions inlined at the pc, innermost first.
    pub inlined: Vec<InlinedFrame>,
    pub interrupted: bool,
    pub reliable: bool,
    pub method: Method,
    pub stack: StackKind,
    /// The saved registers on frames that start a segment (name, value).
    pub regs: Option<Vec<(&'static str, u64)>>,
}

/// A task's backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackTrace {
    /// The task's `task_struct` address.
    pub task: u64,
    /// The CPU it was running on, when it was.
    pub cpu: Option<u32>,
    pub start: StartKind,
    pub frames: Vec<TraceFrame>,
    pub stop: StopReason,
}

/// What the dump says of one CPU at the crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuContext {
    pub cpu: u32,
    /// Its current task (`runqueues.curr`).
    pub task: Option<u64>,
    /// Where its registers came from; `None` when the dump saved none for it.
    pub regs_source: Option<StartKind>,
    /// The CPU that panicked (`panic_cpu`, x86 `crashing_cpu`).
    pub is_panic: bool,
}
