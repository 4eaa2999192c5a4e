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

mod aarch64;
mod s390x;

use serde::Serialize;

use crate::addr::{Arch, VirtAddr};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::cfi::Cfi;
use crate::unwind::{
    Method, Regs, StackKind, StackRange, Stacks, StopReason, TextRanges, Unwinder,
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
        Arch::X86_64 => None,
        Arch::Aarch64 => Some(&aarch64::Aarch64Stack),
        Arch::S390x => Some(&s390x::S390xStack),
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

/// THREAD_SIZE, which no DWARF variable holds: the size of the initial task's stack, between the
/// linker symbols around it (`__start_init_stack`/`__end_init_stack` since 6.10,
/// `__start_init_task`/`__end_init_task` 4.16–6.9), else `sizeof(thread_union.stack)`.
pub(crate) fn thread_size(k: &Kernel) -> Result<u64, KernelError> {
    for (start, end) in [
        ("__start_init_stack", "__end_init_stack"),
        ("__start_init_task", "__end_init_task"),
    ] {
        if let (Some(s), Some(e)) = (k.symbols().address(start), k.symbols().address(end))
            && e.0 > s.0
            && e.0 - s.0 <= MAX_THREAD_SIZE
        {
            return Ok(e.0 - s.0);
        }
    }
    let (_, ty) = k.resolve(k.find_type("union thread_union")?)?;
    let stack = ty
        .members()
        .iter()
        .find(|m| m.name.as_deref() == Some("stack"))
        .ok_or_else(|| KernelError::NoMember {
            ty: "union thread_union".into(),
            member: "stack".into(),
        })?;
    let (_, st) = k.resolve(stack.ty)?;
    match st.size {
        Some(n) if n > 0 && n <= MAX_THREAD_SIZE => Ok(n),
        _ => Err(KernelError::Corrupt(
            "sizeof(thread_union.stack) out of range".into(),
        )),
    }
}

/// The largest THREAD_SIZE believed (arm64 64K pages with KASAN: 128 KiB).
const MAX_THREAD_SIZE: u64 = 1 << 20;

/// A task's own stack, `task->stack` .. + THREAD_SIZE.
pub(crate) fn task_stack(k: &Kernel, task: VirtAddr) -> Result<StackRange, KernelError> {
    let start = k
        .object_of(task, "struct task_struct")?
        .member("stack")?
        .pointer()?;
    let size = thread_size(k)?;
    Ok(StackRange {
        kind: StackKind::Task,
        start: start.0,
        end: start.0.wrapping_add(size),
    })
}

/// The kernel's text: `_stext`..`_etext`, the init text `_sinittext`..`_einittext` (freed after
/// boot, but CPU 0's idle task still returns into `start_kernel` and `arch_call_rest_init`
/// there), and each loaded module's text (6.4+
/// `mem[MOD_TEXT].{base,size}`, ac3b43283923; before, `core_layout.{base,text_size}`).
/// A module list that cannot be read leaves the modules out (their frames then stop the walk
/// as bad addresses) rather than failing the unwinder.
pub(crate) fn kernel_text(k: &Kernel) -> Result<TextRanges, KernelError> {
    let mut text = TextRanges::default();
    for (start, end) in [("_stext", "_etext"), ("_sinittext", "_einittext")] {
        if let (Some(s), Some(e)) = (k.symbols().address(start), k.symbols().address(end)) {
            text.push(s.0, e.0);
        }
    }
    if let Ok(head) = k.symbol_address("modules")
        && let Ok(mods) = k.list_entries(
            head,
            "struct module",
            "list",
            crate::kernel::DEFAULT_WALK_CAP,
        )
    {
        let mod_text = k.enumerator_in("mod_mem_type", "MOD_TEXT").ok();
        for m in mods {
            let range = match mod_text {
                Some(i) => m
                    .member("mem")
                    .and_then(|a| a.index(i as u64))
                    .and_then(|t| Ok((t.member("base")?.pointer()?.0, t.member("size")?.u64()?))),
                None => m.member("core_layout").and_then(|c| {
                    Ok((
                        c.member("base")?.pointer()?.0,
                        c.member("text_size")?.u64()?,
                    ))
                }),
            };
            if let Ok((base, size)) = range {
                text.push(base, base.saturating_add(size));
            }
        }
    }
    Ok(text)
}

/// The vmlinux's CFI (`.debug_frame`, and `.eh_frame` when the image keeps one), shifted by the
/// KASLR offset; `None` when the kernel view was built without the vmlinux file.
pub(crate) fn vmlinux_cfi<'k>(k: &'k Kernel, arch: Arch) -> Result<Option<Cfi<'k>>, KernelError> {
    let Some(vmlinux) = k.symbols().vmlinux() else {
        return Ok(None);
    };
    let debug_frame = vmlinux.section(".debug_frame")?;
    let eh_frame = match (
        vmlinux.section(".eh_frame")?,
        vmlinux.section_address(".eh_frame"),
    ) {
        (Some(b), Some(a)) => Some((b, a)),
        _ => None,
    };
    if debug_frame.is_none() && eh_frame.is_none() {
        return Ok(None);
    }
    Ok(Some(Cfi::new(
        arch,
        vmlinux.endian(),
        debug_frame,
        eh_frame,
        k.symbols().kaslr_offset(),
    )))
}

/// The memory an unwinder reads, through the kernel view.
pub struct KernelMemory<'k>(pub &'k Kernel);

impl crate::unwind::StackMemory for KernelMemory<'_> {
    fn read_u64(&self, addr: u64) -> Result<u64, crate::unwind::MemoryError> {
        self.0
            .read_u64(VirtAddr(addr))
            .map_err(|e| crate::unwind::MemoryError {
                addr,
                why: e.to_string(),
            })
    }
}
