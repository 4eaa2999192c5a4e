//! Each CPU at the crash: its current task, the registers the dump saved for it, and which CPU
//! panicked.
//!
//! **The current task** of CPU n is `per_cpu(runqueues, n).curr` (kernel/sched/core.c
//! `cpu_curr()`); the idle task when nothing else ran (pid 0 on every CPU).
//!
//! **The panic CPU** is `panic_cpu.counter` (kernel/panic.c, an `atomic_t` since 4.5,
//! `PANIC_CPU_INVALID` = -1 when no CPU panicked): `panic()` sets it, and so does
//! `crash_kexec()` for an oops that goes straight to kdump. x86 also keeps `crashing_cpu`
//! (arch/x86/kernel/reboot.c, -1 until `native_machine_crash_shutdown()`), asked when
//! `panic_cpu` says none.
//!
//! **Registers**, from one of two places:
//! - A kdump capture (VMCOREINFO has `CRASHTIME`, which only `crash_save_vmcoreinfo()` at crash
//!   time writes) on any architecture but s390x: the per-CPU buffer `crash_notes`
//!   (`note_buf_t __percpu *`), which `crash_save_cpu()` (kernel/kexec_core.c; kernel/crash_core.c
//!   since 6.7) fills on each CPU it stops: an ELF note header (`namesz`, `descsz`, `type`, three
//!   u32), the name `"CORE\0"` padded to 8 bytes, then a `struct elf_prstatus` whose
//!   `pr_pid` (`common.pr_pid` since 5.19) is `current->pid` and whose `pr_reg` (the
//!   architecture's `elf_gregset_t`) holds the registers; then an empty note. A CPU that never
//!   answered the crash stop leaves its buffer zeroed. The offsets come from the DWARF of
//!   `struct elf_prstatus` when it is there, else the 64-bit layout (`pr_pid` at 32, `pr_reg` at
//!   112). Reading the note of CPU n from CPU n's own buffer is what ties registers to CPUs: the
//!   capture kernel's `/proc/vmcore` drops the empty notes, so the dump's PRSTATUS notes are in
//!   CPU order with holes, and their order proves nothing.
//! - Otherwise the dump's own PRSTATUS notes ([`crate::dump::CpuState`]), matched by `pr_pid`:
//!   QEMU's `dump-guest-memory` (and s390x kdump) writes `cpu + 1`, so a dump without `CRASHTIME`
//!   whose note pids are exactly `1..=N` is matched that way; kdump-style notes carry the pid of
//!   the CPU's current task, matched only when one note and one CPU have that pid (every idle
//!   CPU's is 0). Never by note order alone.
//!
//! A note that is there but wrong (another name or type, a descriptor of the wrong size, all
//! registers zero) leaves the CPU without registers, saying why; it never falls back to a guess.

use crate::addr::{Arch, VirtAddr};
use crate::kernel::{Kernel, KernelError};

use super::{CpuContext, RegsSource, arch_stack, named_regs, soft};

/// `NT_PRSTATUS` (include/uapi/linux/elf.h).
const NT_PRSTATUS: u64 = 1;
/// The note name `crash_save_cpu()` writes (`KEXEC_CORE_NOTE_NAME`, `NN_PRSTATUS` in 6.x).
const NOTE_NAME: &[u8] = b"CORE\0";
/// The note header (`struct elf_note`, three u32) plus the name padded to 4 bytes.
const NOTE_DESC_OFFSET: u64 = 12 + 8;
/// The 64-bit `struct elf_prstatus` layout, when the DWARF does not describe it.
const PRSTATUS_PID: u64 = 32;
const PRSTATUS_REG: u64 = 112;
/// No `struct elf_prstatus` is near this size (x86_64 336, arm64 392, s390x 464 with its
/// vector registers out of line): a larger `descsz` is corrupt.
const MAX_DESC: u64 = 4096;
/// `CONFIG_NR_CPUS` is at most 8192 (x86 `MAXSMP`): a larger CPU id is corrupt.
const MAX_CPUS: u32 = 8192;

/// The offsets of `struct elf_prstatus` this kernel uses.
#[derive(Clone, Copy, Debug)]
struct PrstatusLayout {
    pid: u64,
    reg: u64,
    /// `elf_gregset_t` words.
    nregs: usize,
    /// `sizeof(struct elf_prstatus)`, when the DWARF says.
    size: Option<u64>,
}

impl PrstatusLayout {
    fn probe(k: &Kernel, arch: Arch) -> PrstatusLayout {
        const T: &str = "struct elf_prstatus";
        let off = |path: &str| k.offset_of(T, path).ok();
        let nregs = k
            .find_type(T)
            .ok()
            .and_then(|t| k.object(VirtAddr(0), t).member("pr_reg").ok()?.size().ok())
            .map(|s| (s / 8) as usize)
            .filter(|&n| n > 0 && n <= 64)
            .unwrap_or(match arch {
                // user_regs_struct (27 words); arm64 x0–x30, sp, pc, pstate; s390x psw + gprs
                Arch::X86_64 => 27,
                Arch::Aarch64 => 34,
                Arch::S390x => 18,
            });
        PrstatusLayout {
            // `common.pr_pid` since 5.19 (struct elf_prstatus_common), `pr_pid` before
            pid: off("common.pr_pid")
                .or_else(|| off("pr_pid"))
                .unwrap_or(PRSTATUS_PID),
            reg: off("pr_reg").unwrap_or(PRSTATUS_REG),
            nregs,
            size: k.size_of(T).ok().filter(|&s| s > 0 && s <= MAX_DESC),
        }
    }
}

/// Reads the note `crash_save_cpu()` left at `addr`: `Err` when the buffer cannot be read, `Ok(Err)`
/// with the reason when it holds no usable note, else the note's pid and register words.
fn read_crash_note(
    k: &Kernel,
    addr: VirtAddr,
    layout: &PrstatusLayout,
) -> Result<Result<(i64, Vec<u64>), String>, KernelError> {
    let endian = k.space().endian();
    // A filtered ELF dump reads the pages it left out as zeros: ask whether the buffer is there
    // before taking zeros for "never written".
    let regs_end = layout.reg + 8 * layout.nregs as u64;
    k.check_dumped(addr, NOTE_DESC_OFFSET + regs_end)?;
    let head = k.read_bytes(addr, NOTE_DESC_OFFSET as usize)?;
    let word = |b: &[u8], off: usize, w: usize| b.get(off..).and_then(|s| endian.uint(s, w));
    let (Some(namesz), Some(descsz), Some(ntype)) =
        (word(&head, 0, 4), word(&head, 4, 4), word(&head, 8, 4))
    else {
        return Ok(Err("note header too short".into()));
    };
    if head.iter().all(|&b| b == 0) {
        return Ok(Err(
            "its crash_notes buffer is empty: crash_save_cpu() never ran on it".into(),
        ));
    }
    let name = head.get(12..20).unwrap_or(&[]);
    if namesz != NOTE_NAME.len() as u64 || name.get(..NOTE_NAME.len()) != Some(NOTE_NAME) {
        return Ok(Err(format!(
            "its crash_notes buffer holds no CORE note (name size {namesz}, name {:?})",
            String::from_utf8_lossy(name).trim_end_matches('\0')
        )));
    }
    if ntype != NT_PRSTATUS {
        return Ok(Err(format!(
            "its crash_notes note has type {ntype}, not NT_PRSTATUS"
        )));
    }
    if let Some(size) = layout.size
        && descsz != size
    {
        return Ok(Err(format!(
            "its crash_notes note has a {descsz}-byte descriptor, struct elf_prstatus is {size}"
        )));
    }
    if descsz < regs_end || descsz > MAX_DESC {
        return Ok(Err(format!(
            "its crash_notes note has a {descsz}-byte descriptor, too {} for pr_reg at {}",
            if descsz > MAX_DESC { "large" } else { "small" },
            layout.reg
        )));
    }
    let desc = k.read_bytes(
        VirtAddr(addr.0.wrapping_add(NOTE_DESC_OFFSET)),
        regs_end as usize,
    )?;
    let pid = word(&desc, layout.pid as usize, 4).unwrap_or(0) as u32 as i32;
    let gregs: Vec<u64> = (0..layout.nregs)
        .filter_map(|i| word(&desc, layout.reg as usize + 8 * i, 8))
        .collect();
    if gregs.iter().all(|&r| r == 0) {
        return Ok(Err("its crash_notes note has all registers zero".into()));
    }
    Ok(Ok((i64::from(pid), gregs)))
}

/// The CPU that panicked (`panic_cpu`, then x86 `crashing_cpu`); `None` when neither names one.
pub fn panic_cpu(k: &Kernel) -> Result<Option<u32>, KernelError> {
    for (name, path) in [("panic_cpu", "counter"), ("crashing_cpu", "")] {
        let v = match k.variable(name) {
            Ok(v) => v,
            Err(e) if e.is_missing() => continue,
            Err(e) => return Err(e),
        };
        let v = if path.is_empty() { v } else { v.member(path)? };
        let cpu = v.i64()?;
        if (0..i64::from(MAX_CPUS)).contains(&cpu) {
            return Ok(Some(cpu as u32));
        }
    }
    Ok(None)
}

/// The possible CPUs (`__cpu_possible_mask`, else `0..nr_cpu_ids`), bounded.
fn possible(k: &Kernel) -> Result<Vec<u32>, KernelError> {
    let mut cpus = match k.possible_cpus() {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => (0..k.nr_cpu_ids()?.min(MAX_CPUS)).collect(),
        Err(e) if e.is_missing() => (0..k.nr_cpu_ids()?.min(MAX_CPUS)).collect(),
        Err(e) => return Err(e),
    };
    cpus.retain(|&c| c < MAX_CPUS);
    Ok(cpus)
}

/// CPU `cpu`'s current task and its pid.
fn current(k: &Kernel, cpu: u32) -> Result<(Option<u64>, Option<i32>), KernelError> {
    let curr = k.per_cpu("runqueues", cpu)?.member("curr")?.pointer()?;
    if curr.0 == 0 {
        return Ok((None, None));
    }
    let pid = k
        .object_of(curr, "struct task_struct")?
        .member("pid")?
        .i64()?;
    Ok((Some(curr.0), Some(pid as i32)))
}

/// Every possible CPU, as the module documentation describes. Only the deadline fails the call
/// once the CPUs are known; every other problem stays with its CPU.
pub(crate) fn cpu_contexts(k: &Kernel) -> Result<Vec<CpuContext>, KernelError> {
    let panic = panic_cpu(k)?;
    let mut cpus = Vec::new();
    for cpu in possible(k)? {
        let mut c = CpuContext {
            cpu,
            task: None,
            pid: None,
            regs_source: None,
            regs_missing: None,
            is_panic: panic == Some(cpu),
            gregs: Vec::new(),
            regs: None,
            problems: Vec::new(),
        };
        match soft(current(k, cpu))? {
            Ok((task, pid)) => (c.task, c.pid) = (task, pid),
            Err(e) => c.problems.push(format!("current task: {e}")),
        }
        cpus.push(c);
    }
    let arch = k.space().arch();
    let kdump = k.vmcoreinfo().and_then(|v| v.crashtime).is_some();
    let mut unmatched: Vec<usize> = (0..cpus.len()).collect();
    if kdump && arch != Arch::S390x {
        unmatched = from_crash_notes(k, arch, &mut cpus)?;
    }
    match_prstatus(k, kdump, &mut cpus, &unmatched);
    if let Some(a) = arch_stack(arch) {
        for c in cpus.iter_mut().filter(|c| !c.gregs.is_empty()) {
            c.regs = Some(named_regs(&a.prstatus_regs(&c.gregs), a.register_names()));
        }
    }
    Ok(cpus)
}

/// Fills each CPU from its `crash_notes` buffer; returns the CPUs whose buffer could not be read
/// (or all of them without `crash_notes`), left to the PRSTATUS notes.
fn from_crash_notes(
    k: &Kernel,
    arch: Arch,
    cpus: &mut [CpuContext],
) -> Result<Vec<usize>, KernelError> {
    let base = match soft(k.variable("crash_notes").and_then(|v| v.pointer()))? {
        Ok(b) if b.0 != 0 => b,
        Ok(_) => {
            for c in cpus.iter_mut() {
                c.problems
                    .push("crash_notes is NULL: the kernel allocated no note buffers".into());
            }
            return Ok((0..cpus.len()).collect());
        }
        Err(e) if e.is_missing() => return Ok((0..cpus.len()).collect()),
        Err(e) => {
            for c in cpus.iter_mut() {
                c.problems.push(format!("crash_notes: {e}"));
            }
            return Ok((0..cpus.len()).collect());
        }
    };
    let layout = PrstatusLayout::probe(k, arch);
    let mut unreadable = Vec::new();
    for (i, c) in cpus.iter_mut().enumerate() {
        let note = soft(
            k.per_cpu_ptr(base, c.cpu)
                .and_then(|a| read_crash_note(k, a, &layout)),
        )?;
        match note {
            Ok(Ok((pid, gregs))) => {
                if c.pid.is_some_and(|p| i64::from(p) != pid) {
                    c.problems.push(format!(
                        "its crash_notes note names pid {pid}, its current task is pid {}",
                        c.pid.unwrap_or_default()
                    ));
                }
                c.gregs = gregs;
                c.regs_source = Some(RegsSource::CrashNotes);
            }
            Ok(Err(why)) => c.regs_missing = Some(why),
            Err(e) => {
                c.problems
                    .push(format!("its crash_notes buffer cannot be read: {e}"));
                unreadable.push(i);
            }
        }
    }
    Ok(unreadable)
}

/// Matches the dump's PRSTATUS notes to the CPUs at `which` (indices into `cpus`).
fn match_prstatus(k: &Kernel, kdump: bool, cpus: &mut [CpuContext], which: &[usize]) {
    let notes = &k.info().cpus;
    let n = notes.len() as u64;
    let mut pids: Vec<u64> = notes.iter().map(|s| u64::from(s.pid)).collect();
    pids.sort_unstable();
    pids.dedup();
    // QEMU numbers its notes 1..=N; s390x kdump does too.
    let qemu = pids.len() as u64 == n && pids.iter().all(|&p| (1..=n).contains(&p));
    let by_cpu = if kdump {
        k.space().arch() == Arch::S390x
    } else {
        qemu
    };
    let notes_with = |pid: i64| notes.iter().filter(move |s| i64::from(s.pid) == pid);
    let current_pids: Vec<Option<i32>> = cpus.iter().map(|c| c.pid).collect();
    for &i in which {
        let Some(c) = cpus.get_mut(i) else { continue };
        let (found, source, why) = if by_cpu {
            let want = i64::from(c.cpu) + 1;
            let m: Vec<_> = notes_with(want).collect();
            (
                (m.len() == 1).then(|| m[0]),
                RegsSource::PrstatusCpu,
                format!("no PRSTATUS note has pr_pid {want} (CPU {} + 1)", c.cpu),
            )
        } else {
            match c.pid {
                None => (
                    None,
                    RegsSource::PrstatusTask,
                    "its current task is unknown, so no PRSTATUS note can be matched to it"
                        .to_string(),
                ),
                Some(pid) => {
                    let m: Vec<_> = notes_with(i64::from(pid)).collect();
                    let sharing = current_pids.iter().filter(|&&p| p == Some(pid)).count();
                    let why = match (m.len(), sharing) {
                        (0, _) => format!("no PRSTATUS note has pr_pid {pid}, its current task's"),
                        (1, 1) => String::new(),
                        (notes, cpus) => format!(
                            "pid {pid} is ambiguous: {notes} PRSTATUS notes and {cpus} CPUs' \
                             current tasks have it"
                        ),
                    };
                    (
                        (m.len() == 1 && sharing == 1).then(|| m[0]),
                        RegsSource::PrstatusTask,
                        why,
                    )
                }
            }
        };
        match found {
            Some(s) if s.regs.iter().any(|&r| r != 0) => {
                c.gregs = s.regs.clone();
                c.regs_source = Some(source);
                c.regs_missing = None;
            }
            Some(s) => {
                c.regs_missing = Some(format!(
                    "its PRSTATUS note (pr_pid {}) holds no registers",
                    s.pid
                ))
            }
            None => {
                // a crash_notes verdict already given stays
                if c.regs_missing.is_none() {
                    c.regs_missing = Some(why);
                }
            }
        }
    }
}
