//! Backtraces of the dumped kernel's tasks and CPUs: where each trace starts, which stacks it
//! may cross, and its frames symbolized.
//!
//! The unwinding itself is [`crate::unwind`]; this module gathers what it needs from the dump:
//! - **starting registers** ([`regs`]): for a task that was running on a CPU, the registers the
//!   dump saved for that CPU (the per-CPU `crash_notes` buffer a kdump kernel filled in
//!   `crash_save_cpu()`, kernel/kexec_core.c (kernel/crash_core.c since 6.7); else the PRSTATUS
//!   note matched to the CPU, QEMU writing `pr_pid = cpu + 1`); for a sleeping task, the context
//!   `switch_to` saved (per architecture, [`ArchStack::inactive_regs`]);
//! - **the stacks**: the task's stack, and the CPU's IRQ and exception stacks when it ran;
//! - **the unwind rules**: per architecture ([`ArchStack::unwinder`]);
//! - **symbols** ([`symbolize`], [`modsyms`]): vmlinux symbols by the `%pB` rule, the loaded
//!   modules' own symbol tables read from the dump, and source lines with inlined functions from
//!   the vmlinux DWARF.
//!
//! Each architecture implements [`ArchStack`] in its own file; [`arch_stack`] picks it.
//!
//! Caching: what does not borrow the kernel is computed once per [`Kernel`] and kept in it
//! ([`StackCache`]: the CPU table, the module symbols, the line tables). The unwinder an
//! [`ArchStack`] builds borrows the kernel, so it cannot live inside it; a [`Backtracer`] owns
//! one for as long as its caller keeps it (`KView` keeps one for all the traces a plugin asks
//! for).

pub mod modsyms;
pub mod regs;
pub mod symbolize;

use std::sync::{Arc, Mutex, OnceLock};

mod aarch64;
mod s390x;
mod site;

use serde::Serialize;

pub use site::crash_site;

pub mod x86_64;

use crate::addr::{Arch, VirtAddr};
use crate::kernel::{Kernel, KernelError};
use crate::unwind::cfi::Cfi;
use crate::unwind::{
    MemoryError, Method, Regs, StackKind, StackMemory, StackRange, Stacks, StopReason, TextRanges,
    Unwinder, unwind,
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

impl StartKind {
    /// How a sleeping task's registers are found on `arch`.
    pub fn inactive(arch: Arch) -> StartKind {
        match arch {
            Arch::X86_64 => StartKind::InactiveTaskFrame,
            Arch::Aarch64 => StartKind::CpuContext,
            Arch::S390x => StartKind::Ksp,
        }
    }
}

/// Where a CPU's saved registers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegsSource {
    /// The CPU's own `crash_notes` buffer, read from the dump (a kdump capture).
    CrashNotes,
    /// The dump's PRSTATUS note whose `pr_pid` is the CPU number plus one (QEMU
    /// `dump-guest-memory`, s390x kdump).
    PrstatusCpu,
    /// The dump's only PRSTATUS note whose `pr_pid` is the pid of the CPU's current task, no
    /// other CPU's current task having that pid (kdump, `crash_save_cpu()` writes
    /// `current->pid`).
    PrstatusTask,
}

impl From<RegsSource> for StartKind {
    fn from(s: RegsSource) -> StartKind {
        match s {
            RegsSource::CrashNotes => StartKind::CrashNotes,
            RegsSource::PrstatusCpu | RegsSource::PrstatusTask => StartKind::Prstatus,
        }
    }
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
    /// The position of the pc in this function (for the innermost) or of the call to the next
    /// inner one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLoc>,
}

/// One physical frame, symbolized. Serialized with addresses as `"0x…"` strings and the
/// registers as a name → value map (docs/backtrace.schema.json, `frame`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceFrame {
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub pc: u64,
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub sp: u64,
    #[serde(serialize_with = "crate::addr::ser_opt_hex")]
    pub cfa: Option<u64>,
    /// The symbol covering the pc (`pc - 1` for a return address), its offset from the symbol
    /// (counted from `pc` itself, as `%pB` prints it) and size.
    pub symbol: Option<String>,
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub offset: u64,
    #[serde(serialize_with = "crate::addr::ser_hex")]
    pub size: u64,
    /// The module the pc lies in (`None`: the kernel image).
    pub module: Option<String>,
    /// The source position of the pc in the physical function (the call site of the outermost
    /// inlined function when there are some), with DWARF.
    pub source: Option<SourceLoc>,
    /// Functions inlined at the pc, innermost first.
    pub inlined: Vec<InlinedFrame>,
    pub interrupted: bool,
    pub reliable: bool,
    pub method: Method,
    pub stack: StackKind,
    /// The saved registers on frames that start a segment (name, value).
    #[serde(serialize_with = "ser_regs")]
    pub regs: Option<Vec<(&'static str, u64)>>,
}

/// Registers as a JSON object, name → `"0x…"`, in their order.
fn ser_regs<S: serde::Serializer>(
    v: &Option<Vec<(&'static str, u64)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match v {
        None => s.serialize_none(),
        Some(regs) => {
            let mut m = s.serialize_map(Some(regs.len()))?;
            for (name, value) in regs {
                m.serialize_entry(name, &format!("{value:#x}"))?;
            }
            m.end()
        }
    }
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuContext {
    pub cpu: u32,
    /// Its current task (`runqueues.curr`).
    pub task: Option<u64>,
    /// The current task's pid (0 for the idle task).
    pub pid: Option<i32>,
    /// Where its registers came from; `None` when the dump saved none for it.
    pub regs_source: Option<RegsSource>,
    /// Why it has no registers (no note for it, a corrupt note, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs_missing: Option<String>,
    /// The CPU that panicked (`panic_cpu`, x86 `crashing_cpu`).
    pub is_panic: bool,
    /// The saved `elf_gregset_t` words, in the architecture's order (empty without registers).
    #[serde(skip)]
    pub gregs: Vec<u64>,
    /// The saved registers by name, in the architecture's [`ArchStack::register_names`] order
    /// (`None` without registers or without an [`ArchStack`] for the architecture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<Vec<(&'static str, u64)>>,
    /// What else went wrong reading this CPU (its runqueue unreadable, a note whose pid is not
    /// its current task's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The registers of `regs` that `names` lists, in that order.
pub fn named_regs(regs: &Regs, names: &[(&'static str, u16)]) -> Vec<(&'static str, u64)> {
    names
        .iter()
        .filter_map(|&(n, r)| regs.get(r).map(|v| (n, v)))
        .collect()
}

// ---- caching -----------------------------------------------------------------------------------

/// A value computed once and kept. A computation that fails is not kept: its errors are the
/// deadline or "this kernel has none", and the next caller, with a fresh deadline, tries again.
pub(crate) struct Memo<T>(Mutex<Option<T>>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(Mutex::new(None))
    }
}

impl<T: Clone> Memo<T> {
    pub(crate) fn get_or_try(
        &self,
        f: impl FnOnce() -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let v = f()?;
        *slot = Some(v.clone());
        Ok(v)
    }
}

/// What backtraces keep per [`Kernel`]: nothing here borrows it.
#[derive(Default)]
pub(crate) struct StackCache {
    cpus: Memo<Arc<Vec<CpuContext>>>,
    modules: Memo<Arc<modsyms::ModuleSymbols>>,
    /// The vmlinux line tables: `None` when the vmlinux has no DWARF (or none was given).
    lines: OnceLock<Option<symbolize::Lines>>,
    /// The x86_64 ORC unwinder (its tables read from the dump once per kernel).
    pub(crate) x86_64_orc: Memo<Arc<crate::unwind::x86_64::X86_64Unwinder>>,
}

/// Splits off the deadline: `Err` only for [`KernelError::TimedOut`] (the caller stops), the
/// inner result otherwise (the caller records it and goes on).
pub(crate) fn soft<T>(r: Result<T, KernelError>) -> Result<Result<T, KernelError>, KernelError> {
    match r {
        Err(KernelError::TimedOut) => Err(KernelError::TimedOut),
        r => Ok(r),
    }
}

// ---- stack memory ------------------------------------------------------------------------------

/// Unwinders read the stacks through the kernel's address space.
impl StackMemory for Kernel {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        Kernel::read_u64(self, VirtAddr(addr)).map_err(|e| MemoryError {
            addr,
            why: e.to_string(),
        })
    }
}

// ---- traces ------------------------------------------------------------------------------------

/// Builds the backtraces of one kernel with one unwinder: create it once, ask it for every task.
pub struct Backtracer<'k> {
    kernel: &'k Kernel,
    arch: &'k dyn ArchStack,
    unwinder: Box<dyn Unwinder + 'k>,
}

impl<'k> Backtracer<'k> {
    /// The backtracer of the kernel's architecture; `Unsupported` when the crate cannot unwind
    /// it.
    pub fn new(kernel: &'k Kernel) -> Result<Backtracer<'k>, KernelError> {
        let arch = kernel.space().arch();
        let a = arch_stack(arch).ok_or_else(|| {
            KernelError::Unsupported(format!("no backtraces for {arch:?} kernels"))
        })?;
        Backtracer::with_arch(kernel, a)
    }

    /// A backtracer with a given [`ArchStack`] (tests bring their own).
    pub fn with_arch(
        kernel: &'k Kernel,
        arch: &'k dyn ArchStack,
    ) -> Result<Backtracer<'k>, KernelError> {
        Ok(Backtracer {
            kernel,
            arch,
            unwinder: arch.unwinder(kernel)?,
        })
    }

    /// The backtrace of the task whose `task_struct` is at `task`. A task that is some CPU's
    /// current task (and `on_cpu`) starts from the registers the dump saved for that CPU, and
    /// fails with `NoRegisters` when it saved none; any other task from the context it saved
    /// when it was switched out.
    pub fn trace(&self, task: VirtAddr) -> Result<StackTrace, KernelError> {
        let k = self.kernel;
        let cpus = k.cpu_table()?;
        let running = match cpus.iter().find(|c| c.task == Some(task.0)) {
            Some(c) if k.task_on_cpu(task)? => Some(c),
            _ => None,
        };
        let (start, kind, cpu) = match running {
            Some(c) => match c.regs_source {
                Some(src) if !c.gregs.is_empty() => {
                    (self.arch.prstatus_regs(&c.gregs), src.into(), Some(c.cpu))
                }
                _ => {
                    return Err(KernelError::NoRegisters(format!(
                        "task {task} runs on CPU {} and the dump saved no registers for it: {}",
                        c.cpu,
                        c.regs_missing.as_deref().unwrap_or("no note")
                    )));
                }
            },
            None => (
                self.arch.inactive_regs(k, task)?,
                StartKind::inactive(k.space().arch()),
                None,
            ),
        };
        let stacks = self.arch.stacks(k, task, cpu)?;
        let mut unwound = unwind(&*self.unwinder, start, k, &stacks);
        // A CPU stopped in user mode: its registers are the user's, there is no kernel frame
        // (the stop reason keeps the user pc).
        if let (StopReason::UserMode { pc }, [only]) = (&unwound.stop, unwound.frames.as_slice())
            && only.pc == *pc
        {
            unwound.frames.clear();
        }
        let names = self.arch.register_names();
        let frames = unwound
            .frames
            .iter()
            .map(|f| k.symbolize_frame(f, names))
            .collect();
        Ok(StackTrace {
            task: task.0,
            cpu,
            start: kind,
            frames,
            stop: unwound.stop,
        })
    }
}

impl Kernel {
    /// Every possible CPU with its current task, its saved registers and whether it panicked
    /// (computed once, see [`regs`]).
    pub fn cpu_contexts(&self) -> Result<Vec<CpuContext>, KernelError> {
        Ok(self.cpu_table()?.as_ref().clone())
    }

    pub(crate) fn cpu_table(&self) -> Result<Arc<Vec<CpuContext>>, KernelError> {
        self.stack_cache()
            .cpus
            .get_or_try(|| regs::cpu_contexts(self).map(Arc::new))
    }

    /// A [`Backtracer`] for this kernel's architecture.
    pub fn backtracer(&self) -> Result<Backtracer<'_>, KernelError> {
        Backtracer::new(self)
    }

    /// The backtrace of one task. This builds the architecture's unwinder for the one call: for
    /// several tasks keep a [`Kernel::backtracer`].
    pub fn stack_trace(&self, task: VirtAddr) -> Result<StackTrace, KernelError> {
        self.backtracer()?.trace(task)
    }

    /// Whether `task` is on a CPU (`task->on_cpu`; a kernel without the member, `!CONFIG_SMP`
    /// before 3.x, counts the current task as on its CPU).
    fn task_on_cpu(&self, task: VirtAddr) -> Result<bool, KernelError> {
        let t = self.object_of(task, "struct task_struct")?;
        match t.member("on_cpu") {
            Ok(m) => Ok(m.i64()? != 0),
            Err(e) if e.is_missing() => Ok(true),
            Err(e) => Err(e),
        }
    }
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
