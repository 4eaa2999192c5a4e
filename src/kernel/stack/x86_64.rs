//! x86_64: the ORC tables, a sleeping task's saved context, and the stacks, read from the dump.
//!
//! - **ORC tables** ([`crate::unwind::orc`]): the image's from memory, between
//!   `__start_orc_unwind_ip` and `__stop_orc_unwind_ip` and from `__start_orc_unwind` (the
//!   running kernel's, relocated and sorted), else from the vmlinux file's `.orc_unwind_ip` and
//!   `.orc_unwind` sections, shifted by the KASLR offset (the IPs are self-relative, so one
//!   shift moves them all). Each module's from `mod->arch.orc_unwind_ip`, `orc_unwind` and
//!   `num_orcs` (arch/x86/kernel/unwind_orc.c `unwind_module_init`), over the `modules` list.
//!   The format from `__start_orc_header`, the DWARF of `struct orc_entry` and `orc_fp_entry`.
//! - **Sleeping task** (4.9+, `switch_to` rewritten in 0100301bfdf5): `task->thread.sp` points at
//!   the `struct inactive_task_frame` `__switch_to_asm` pushed; pc = its `ret_addr`, sp =
//!   `thread.sp + sizeof(frame)`, bp, bx, r12–r15 from it, member offsets from the debug info
//!   (some 4.19–5.x kernels have a leading `flags` word).
//! - **Stacks**: the task's `task->stack` of THREAD_SIZE, taken from the image's own init stack
//!   (`__end_init_stack - __start_init_stack` 6.10+, `__end_init_task - __start_init_task`
//!   4.16–6.9; KASAN doubles it); for a running task its CPU's hard-IRQ stack (per-CPU
//!   `hardirq_stack_ptr`, 6.2–6.14 `pcpu_hot.hardirq_stack_ptr`: top − 8 since 5.12, its top word
//!   holding the interrupted sp) and exception stacks (`struct cea_exception_stacks` of the CPU's
//!   `cpu_entry_area`: per-CPU `cea_exception_stacks` pointer, else the area at
//!   `0xfffffe0000000000 + PAGE_SIZE + idx * sizeof(struct cpu_entry_area)`, idx the per-CPU
//!   `_cea_offset` (randomized since 6.2) or the CPU number).

use std::sync::Arc;

use object::{Object as _, ObjectSection};

use crate::addr::VirtAddr;
use crate::kernel::stack::ArchStack;
use crate::kernel::{Kernel, KernelError};
use crate::unwind::orc::{
    EntryLayout, FormatEvidence, MAX_ORC_ENTRIES, ORC_ENTRY_SIZE, OrcFormat, OrcTable, OrcTables,
    detect_format,
};
use crate::unwind::x86_64::{PT_REGS, X86_64Unwinder};
use crate::unwind::x86_64_regs as r;
use crate::unwind::{Regs, StackKind, StackRange, Stacks, Unwinder};

/// The x86_64 [`ArchStack`].
pub struct X86_64Stack;

/// The most modules whose tables are read.
const MAX_MODULES: usize = 4096;

/// `CPU_ENTRY_AREA_BASE` (arch/x86/include/asm/pgtable_areas.h), 4- and 5-level paging alike.
const CPU_ENTRY_AREA_BASE: u64 = 0xffff_fe00_0000_0000;

/// The exception stacks of `struct cea_exception_stacks` (5.1+) and their kinds.
const EXCEPTION_STACKS: [(&str, StackKind); 6] = [
    ("NMI_stack", StackKind::Nmi),
    ("DF_stack", StackKind::Exception),
    ("DB_stack", StackKind::Exception),
    ("MCE_stack", StackKind::Exception),
    ("VC_stack", StackKind::Exception),
    ("VC2_stack", StackKind::Exception),
];

/// The `user_regs_struct` words of PRSTATUS past the `pt_regs` prefix, by DWARF number (psABI:
/// 58 fs.base, 59 gs.base, 53 ds, 50 es, 54 fs, 55 gs).
const PRSTATUS_TAIL: [u16; 6] = [58, 59, 53, 50, 54, 55];

/// crash's exception-frame order.
const REGISTER_NAMES: [(&str, u16); 21] = [
    ("RIP", r::RIP),
    ("RSP", r::RSP),
    ("RFLAGS", r::RFLAGS),
    ("RAX", r::RAX),
    ("RBX", r::RBX),
    ("RCX", r::RCX),
    ("RDX", r::RDX),
    ("RSI", r::RSI),
    ("RDI", r::RDI),
    ("RBP", r::RBP),
    ("R8", r::R8),
    ("R9", r::R9),
    ("R10", r::R10),
    ("R11", r::R11),
    ("R12", r::R12),
    ("R13", r::R13),
    ("R14", r::R14),
    ("R15", r::R15),
    ("ORIG_RAX", r::ORIG_RAX),
    ("CS", r::CS),
    ("SS", r::SS),
];

/// A symbol's address, `None` when the kernel lacks it.
fn sym(k: &Kernel, name: &str) -> Option<u64> {
    k.symbols().address(name).map(|a| a.0)
}

/// What the kernel says of its ORC format besides the entries.
pub fn orc_evidence(k: &Kernel) -> FormatEvidence {
    let header = sym(k, "__start_orc_header").and_then(|a| k.read_bytes(VirtAddr(a), 20).ok());
    let layout = k.find_type("struct orc_entry").ok().map(|ty| {
        let o = k.object(VirtAddr(0), ty);
        EntryLayout {
            has_end: o.has_member("end").unwrap_or(false),
            has_signal: o.has_member("signal").unwrap_or(false),
            type_bits: o
                .member("type")
                .ok()
                .and_then(|m| m.bitfield())
                .and_then(|(_, w)| u8::try_from(w).ok()),
        }
    });
    let fp_entry_bp_reg = sym(k, "orc_fp_entry")
        .and_then(|a| k.read_bytes(VirtAddr(a), ORC_ENTRY_SIZE).ok())
        .map(|b| (b[4] >> 4) & 0xf);
    FormatEvidence {
        header,
        layout,
        fp_entry_bp_reg,
    }
}

/// Where the image's ORC tables are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrcSource {
    /// The running kernel's, between the `__start_orc_*` symbols.
    Memory,
    /// The vmlinux file's sections, moved by the KASLR offset.
    File,
}

/// The raw tables of `.orc_unwind_ip` (at the address returned) and `.orc_unwind`, from
/// `source`; `None` when it lacks them.
pub fn image_orc(k: &Kernel, source: OrcSource) -> Option<(u64, Vec<u8>, Vec<u8>)> {
    match source {
        OrcSource::Memory => {
            let ip = sym(k, "__start_orc_unwind_ip")?;
            let ip_end = sym(k, "__stop_orc_unwind_ip")?;
            let orc = sym(k, "__start_orc_unwind")?;
            let n = usize::try_from(ip_end.checked_sub(ip)? / 4).ok()?;
            if n == 0 || n > MAX_ORC_ENTRIES {
                return None;
            }
            let ips = k.read_bytes(VirtAddr(ip), 4 * n).ok()?;
            let entries = k.read_bytes(VirtAddr(orc), ORC_ENTRY_SIZE * n).ok()?;
            Some((ip, ips, entries))
        }
        OrcSource::File => {
            let vmlinux = k.symbols().vmlinux()?;
            let ip_sec = vmlinux.object().section_by_name(".orc_unwind_ip")?;
            let ips = vmlinux.section(".orc_unwind_ip").ok()??;
            let entries = vmlinux.section(".orc_unwind").ok()??;
            let base = ip_sec.address().wrapping_add(k.symbols().kaslr_offset());
            Some((base, ips.to_vec(), entries.to_vec()))
        }
    }
}

/// The text range of a module: `mem[MOD_TEXT]` (6.4+), else `core_layout`, else `module_core`.
fn module_text(k: &Kernel, m: &crate::kernel::Object<'_>) -> Result<(u64, u64), KernelError> {
    let (base, size) = if m.has_member("mem")? {
        let idx = k.enumerator_in("mod_mem_type", "MOD_TEXT")?;
        let mem = m.member("mem")?.index(idx as u64)?;
        (mem.member("base")?.u64()?, mem.member("size")?.u64()?)
    } else if m.has_member("core_layout")? {
        let l = m.member("core_layout")?;
        (l.member("base")?.u64()?, l.member("text_size")?.u64()?)
    } else {
        (
            m.member("module_core")?.u64()?,
            m.member("core_text_size")?.u64()?,
        )
    };
    Ok((base, base.saturating_add(size)))
}

/// Each module's ORC table and text range (modules whose table cannot be read are skipped).
fn module_tables(
    k: &Kernel,
    format: OrcFormat,
    tables: &mut OrcTables,
    text: &mut Vec<(u64, u64)>,
) {
    let Some(head) = sym(k, "modules") else {
        return;
    };
    let Ok(mods) = k.list_entries(VirtAddr(head), "struct module", "list", MAX_MODULES) else {
        return;
    };
    for m in mods {
        let range = module_text(k, &m).ok();
        if let Some(range) = range {
            text.push(range);
        }
        let read = || -> Result<Option<OrcTable>, KernelError> {
            let arch = m.member("arch")?;
            let ip = arch.member("orc_unwind_ip")?.u64()?;
            let orc = arch.member("orc_unwind")?.u64()?;
            let n = arch.member("num_orcs")?.u64()? as usize;
            if ip == 0 || orc == 0 || n == 0 || n > MAX_ORC_ENTRIES {
                return Ok(None);
            }
            let name = m.member("name")?.string_lossy(64)?;
            let ips = k.read_bytes(VirtAddr(ip), 4 * n)?;
            let entries = k.read_bytes(VirtAddr(orc), ORC_ENTRY_SIZE * n)?;
            Ok(OrcTable::new(&name, ip, &ips, &entries, format, range).ok())
        };
        if let Ok(Some(t)) = read() {
            tables.push(t);
        }
    }
}

/// THREAD_SIZE, from the image's init stack (a constant of the build, not a variable).
fn thread_size(k: &Kernel) -> Result<u64, KernelError> {
    for (start, end) in [
        ("__start_init_stack", "__end_init_stack"),
        ("__start_init_task", "__end_init_task"),
    ] {
        if let (Some(s), Some(e)) = (sym(k, start), sym(k, end))
            && e > s
            && e - s <= 1 << 20
        {
            return Ok(e - s);
        }
    }
    if let Ok(ty) = k.find_type("union thread_union") {
        return k.object(VirtAddr(0), ty).member("stack")?.size();
    }
    Err(KernelError::NoSymbol(
        "__start_init_stack / __start_init_task".into(),
    ))
}

/// The hard-IRQ stack of `cpu`: `[top - THREAD_SIZE, top)`.
fn irq_stack(k: &Kernel, cpu: u32, size: u64) -> Result<Option<StackRange>, KernelError> {
    let ptr = match k.per_cpu("hardirq_stack_ptr", cpu) {
        Ok(o) => o.u64()?,
        Err(e) if e.is_missing() => match k.per_cpu("pcpu_hot", cpu) {
            Ok(o) => o.member("hardirq_stack_ptr")?.u64()?,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if ptr == 0 {
        return Ok(None);
    }
    // 5.12+ (951c2a51ae75) points 8 below the top, where the interrupted sp is saved.
    let top = if ptr % 4096 == 0 { ptr } else { ptr + 8 };
    Ok(Some(StackRange {
        kind: StackKind::Irq,
        start: top.saturating_sub(size),
        end: top,
    }))
}

/// The exception stacks of `cpu`.
fn exception_stacks(k: &Kernel, cpu: u32) -> Result<Vec<StackRange>, KernelError> {
    let Ok(ty) = k.find_type("struct cea_exception_stacks") else {
        return Ok(Vec::new());
    };
    let base = match k.per_cpu("cea_exception_stacks", cpu) {
        Ok(o) => o.u64()?,
        Err(e) if e.is_missing() => {
            let idx = match k.per_cpu("_cea_offset", cpu) {
                Ok(o) => o.u64()?,
                Err(e) if e.is_missing() => u64::from(cpu),
                Err(e) => return Err(e),
            };
            let cea = CPU_ENTRY_AREA_BASE
                + k.page_size()
                + idx.saturating_mul(k.size_of("struct cpu_entry_area")?);
            cea + k.offset_of("struct cpu_entry_area", "estacks")?
        }
        Err(e) => return Err(e),
    };
    let stacks = k.object(VirtAddr(base), ty);
    let mut out = Vec::new();
    for (name, kind) in EXCEPTION_STACKS {
        if let Ok(s) = stacks.member(name) {
            let start = s.address().0;
            out.push(StackRange {
                kind,
                start,
                end: start.saturating_add(s.size()?),
            });
        }
    }
    Ok(out)
}

/// The ORC unwinder of the image and every module: the tables from memory (the vmlinux file's
/// as the fallback), their format, the kernel text ranges.
fn orc_unwinder(k: &Kernel) -> Result<X86_64Unwinder, KernelError> {
    let mut text: Vec<(u64, u64)> = [("_stext", "_etext"), ("_sinittext", "_einittext")]
        .into_iter()
        .filter_map(|(s, e)| Some((sym(k, s)?, sym(k, e)?)))
        .collect();
    let (ip_base, ips, entries) = image_orc(k, OrcSource::Memory)
        .or_else(|| image_orc(k, OrcSource::File))
        .ok_or_else(|| KernelError::NoSymbol("__start_orc_unwind_ip (or .orc_unwind_ip)".into()))?;
    let format = detect_format(&orc_evidence(k), &entries)
        .map_err(|e| KernelError::Corrupt(e.to_string()))?;
    let mut tables = OrcTables::new(format);
    let image = OrcTable::new("vmlinux", ip_base, &ips, &entries, format, None)
        .map_err(|e| KernelError::Corrupt(e.to_string()))?;
    tables.push(image);
    module_tables(k, format, &mut tables, &mut text);
    Ok(X86_64Unwinder::new(tables, text))
}

impl ArchStack for X86_64Stack {
    fn unwinder<'k>(&self, k: &'k Kernel) -> Result<Box<dyn Unwinder + 'k>, KernelError> {
        // the ORC tables are read from the dump once per kernel, whichever plugin asks first
        let orc = k
            .stack_cache()
            .x86_64_orc
            .get_or_try(|| orc_unwinder(k).map(Arc::new))?;
        Ok(match super::vmlinux_cfi(k, crate::addr::Arch::X86_64)? {
            Some(cfi) => Box::new(OrcThenCfi { orc, cfi }),
            None => Box::new(orc),
        })
    }

    fn inactive_regs(&self, k: &Kernel, task: VirtAddr) -> Result<Regs, KernelError> {
        let sp = k
            .object_of(task, "struct task_struct")?
            .member("thread.sp")?
            .u64()?;
        let frame = k.object_of(VirtAddr(sp), "struct inactive_task_frame")?;
        let mut regs = Regs::default();
        regs.set(r::RIP, frame.member("ret_addr")?.u64()?);
        regs.set(r::RSP, sp.wrapping_add(frame.size()?));
        for (name, reg) in [
            ("bp", r::RBP),
            ("bx", r::RBX),
            ("r12", r::R12),
            ("r13", r::R13),
            ("r14", r::R14),
            ("r15", r::R15),
        ] {
            match frame.member(name) {
                Ok(m) => regs.set(reg, m.u64()?),
                Err(e) if e.is_missing() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(regs)
    }

    fn stacks(&self, k: &Kernel, task: VirtAddr, cpu: Option<u32>) -> Result<Stacks, KernelError> {
        let size = thread_size(k)?;
        let base = k
            .object_of(task, "struct task_struct")?
            .member("stack")?
            .u64()?;
        let mut ranges = vec![StackRange {
            kind: StackKind::Task,
            start: base,
            end: base.saturating_add(size),
        }];
        if let Some(cpu) = cpu {
            ranges.extend(irq_stack(k, cpu, size)?);
            ranges.extend(exception_stacks(k, cpu)?);
        }
        Ok(Stacks { ranges })
    }

    fn prstatus_regs(&self, gregs: &[u64]) -> Regs {
        let mut regs = Regs::default();
        for (&reg, &v) in PT_REGS.iter().chain(PRSTATUS_TAIL.iter()).zip(gregs) {
            regs.set(reg, v);
        }
        regs
    }

    fn register_names(&self) -> &'static [(&'static str, u16)] {
        &REGISTER_NAMES
    }
}

/// ORC, and the vmlinux's DWARF CFI where ORC has no rule: objtool marks some instructions
/// UNDEFINED that the compiler's CFI describes, among them the label `crash_setup_regs()` takes
/// as the panicking CPU's pc (arch/x86/include/asm/kexec.h, `_THIS_IP_` inside
/// `__crash_kexec()`), which is where every kdump capture of a `panic()` starts. drgn unwinds
/// with DWARF CFI first and ORC second; this unwinder keeps the kernel's order and asks the CFI
/// only when ORC stops for want of a rule.
struct OrcThenCfi<'k> {
    orc: Arc<X86_64Unwinder>,
    cfi: crate::unwind::cfi::Cfi<'k>,
}

impl Unwinder for OrcThenCfi<'_> {
    fn arch(&self) -> crate::addr::Arch {
        self.orc.arch()
    }

    fn is_text(&self, pc: u64) -> bool {
        self.orc.is_text(pc)
    }

    fn step(
        &self,
        regs: &Regs,
        interrupted: bool,
        mem: &dyn crate::unwind::StackMemory,
        stacks: &Stacks,
    ) -> crate::unwind::Step {
        use crate::unwind::cfi::CfiStep;
        use crate::unwind::{Method, Step, StopReason};
        match self.orc.step(regs, interrupted, mem, stacks) {
            Step::Stop(StopReason::NoUnwindInfo { pc }) => {
                match self.cfi.step(regs, interrupted, mem) {
                    CfiStep::Caller { regs, cfa } => Step::Caller {
                        regs,
                        method: Method::DwarfCfi,
                        reliable: true,
                        cfa: Some(cfa),
                        interrupted: false,
                    },
                    CfiStep::EndOfStack => Step::Stop(StopReason::EndOfStack),
                    CfiStep::NotCovered => Step::Stop(StopReason::NoUnwindInfo { pc }),
                    CfiStep::Stop(stop) => Step::Stop(stop),
                }
            }
            other => other,
        }
    }
}
