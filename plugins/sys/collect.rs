//! Reads the [`Sys`] record through [`KernelAccess`], plus what the dump container says
//! ([`SysInput`]: files, format, PRSTATUS notes) and the kernel log's lines when there is a log.
//!
//! Sources (kernel symbols, read by name):
//! - `init_uts_ns.name`, `tainted_mask` + `taint_flags[]`, the uptime: shared with kernel_info;
//! - `linux_proc_banner`, the format fs/proc/version.c fills with sysname, release and version
//!   (`/proc/version`); `linux_banner` when the format is absent;
//! - `saved_command_line` (`/proc/cmdline`), `avenrun[3]` (fixed point, `FSHIFT` = 11, printed as
//!   `/proc/loadavg` does: `LOAD_INT(a + FIXED_1/200).LOAD_FRAC(…)`), `nr_threads`,
//!   `_totalram_pages` / `totalram_pages`;
//! - `panic_cpu` (atomic_t, kernel/panic.c), `crash_kexec_post_notifiers`, `panic_on_oops`;
//! - the panicking task: `runqueues.curr` of `panic_cpu`;
//! - `/proc/cpuinfo`: the per-CPU `cpu_info` (x86_64) or `cpu_data` (arm64), see
//!   [`super::cpuinfo`].
//!
//! The register set comes from the panicking CPU's PRSTATUS note: the notes are per running CPU
//! in CPU order (`pr_pid` is no guide: QEMU writes the vCPU number + 1 there, not a pid).

use super::cpuinfo::{CpuInfo, read_arm64, read_x86};
use super::record::{Cpus, Panic, PanicSite, PanicTask, Registers, Sys};
use crate::addr::Arch;
use crate::dump::CpuState;
use crate::kernel::stack::crash_site;
use crate::kernel::task_state::{TaskStateTable, task_state_char};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};
use crate::plugins::kernel_info::DumpFacts;
use crate::plugins::kernel_info::collect::{
    read_banner, read_taints, read_uptime, read_uts, read_wall_clock,
};
use crate::plugins::tasks::collect::hz;

/// `COMMAND_LINE_SIZE` is 2048 on x86 and 4096 on arm64; a bound, not a layout.
const CMDLINE_MAX: usize = 4096;
/// `FSHIFT`, `FIXED_1` (include/linux/sched/loadavg.h).
const FSHIFT: u32 = 11;
const FIXED_1: u64 = 1 << FSHIFT;

/// What the dump container gives besides the kernel's memory.
#[derive(Clone, Debug, Default)]
pub struct SysInput {
    pub facts: DumpFacts,
    pub files: Vec<String>,
    pub file_size: u64,
    pub arch: Option<Arch>,
    pub notes: Vec<CpuState>,
    /// The kernel log as `dmesg` prints it, one line each; `None` with the reason in
    /// `log_missing` when the dump has no readable log.
    pub log: Option<Vec<String>>,
    pub log_missing: String,
}

pub struct Collected {
    pub sys: Sys,
    pub errors: Vec<AccessError>,
}

pub fn collect<K: KernelAccess>(k: &K, input: &SysInput) -> Collected {
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    macro_rules! keep {
        ($field:literal, $e:expr) => {
            match $e {
                Ok(Some(v)) => Some(v),
                Ok(None) => {
                    missing.push(format!("{}: not in this kernel", $field));
                    None
                }
                Err(e) => {
                    missing.push(format!("{}: {}", $field, e));
                    errors.push(e);
                    None
                }
            }
        };
    }
    let mut sys = Sys {
        dump_files: input.files.clone(),
        dump_format: input.facts.format.clone(),
        dump_size: input.file_size,
        arch: input.facts.arch.clone(),
        page_size: input.facts.page_size.unwrap_or(4096),
        ..Default::default()
    };
    sys.uts = keep!("uts", read_uts(k));
    sys.taints = keep!("taints", read_taints(k));
    sys.uptime_s = keep!("uptime", read_uptime(k)).map(|u| u.seconds);
    sys.cmdline = keep!("cmdline", read_cmdline(k));
    sys.proc_version = keep!("proc_version", proc_version(k, sys.uts.as_ref()));
    sys.load_average = keep!("load_average", load_average(k));
    sys.nr_threads = keep!("nr_threads", k.var_int("nr_threads"));
    sys.mem_total = keep!("mem_total", mem_total_pages(k)).map(|p| p * sys.page_size);
    match input.facts.crash_time {
        Some(t) => {
            sys.crash_time = Some(t);
            sys.crash_time_source = Some("vmcoreinfo CRASHTIME");
        }
        None => {
            sys.crash_time = keep!("crash_time", read_wall_clock(k));
            sys.crash_time_source = sys.crash_time.map(|_| "timekeeper xtime_sec");
        }
    }
    sys.date = sys.crash_time.and_then(date_string);
    let mut cpus = Cpus {
        in_dump_notes: input.notes.len(),
        ..Default::default()
    };
    for (name, dst) in [
        ("__cpu_online_mask", &mut cpus.online),
        ("__cpu_possible_mask", &mut cpus.possible),
        ("__cpu_present_mask", &mut cpus.present),
        ("__cpu_active_mask", &mut cpus.active),
    ] {
        match k.cpumask(name) {
            Ok(v) => *dst = v,
            Err(e) => {
                missing.push(format!("{name}: {e}"));
                errors.push(e);
            }
        }
    }
    sys.cpus = cpus;
    sys.cpuinfo = match input.arch {
        Some(arch @ (Arch::X86_64 | Arch::Aarch64)) => {
            keep!("cpuinfo", cpuinfo(k, arch, &sys.cpus))
        }
        _ => {
            missing.push("cpuinfo: written for x86_64 and arm64 kernels only".into());
            None
        }
    };
    let mut panic = Panic {
        panic_cpu: keep!("panic_cpu", atomic(k, "panic_cpu")),
        crash_kexec_post_notifiers: keep!(
            "crash_kexec_post_notifiers",
            k.var_int("crash_kexec_post_notifiers")
        )
        .map(|v| v != 0),
        panic_on_oops: keep!("panic_on_oops", k.var_int("panic_on_oops")),
        ..Default::default()
    };
    match &input.log {
        Some(lines) => {
            panic.message = panic_message(lines);
            panic.last_oops = last_oops_block(lines);
        }
        None => missing.push(format!(
            "panic.message, panic.last_oops: taken from the kernel log: {}",
            input.log_missing
        )),
    }
    if let Some(cpu) = panic
        .panic_cpu
        .filter(|&c| (0..=u32::MAX as i64).contains(&c))
    {
        let cpu = cpu as u32;
        match panic_task(k, cpu) {
            Ok(t) => panic.task = t,
            Err(e) => {
                missing.push(format!("panic.task: {e}"));
                errors.push(e);
            }
        }
        panic.registers = registers(input, cpu, sys.cpus.active.as_deref());
        match panic_site(k, cpu) {
            Ok(site) => panic.site = site,
            Err(e) => missing.push(format!("panic.site: {e}")),
        }
    } else {
        missing.push(
            "panic.task: panic_cpu is not set (the kernel did not go through panic())".into(),
        );
    }
    sys.panic = panic;
    sys.missing = missing;
    Collected { sys, errors }
}

/// `/proc/cpuinfo` for the CPUs that ran the system (the active ones: after the panic only the
/// panicking CPU is still online); `HZ` is needed for the bogomips line.
fn cpuinfo<K: KernelAccess>(k: &K, arch: Arch, cpus: &Cpus) -> AResult<Option<CpuInfo>> {
    let Some(list) = cpus.active.as_ref().or(cpus.online.as_ref()) else {
        return Ok(None);
    };
    let Some(hz) = hz(k)? else {
        return Ok(None);
    };
    Ok(match arch {
        Arch::Aarch64 => read_arm64(k, list, hz)?.map(CpuInfo::Arm64),
        _ => read_x86(k, list, hz)?.map(CpuInfo::X86),
    })
}

/// An `atomic_t` global.
fn atomic<K: KernelAccess>(k: &K, name: &str) -> AResult<Option<i64>> {
    match k.var(name)? {
        Some(v) => match k.int_at(&v, "counter")? {
            Some(c) => Ok(Some(c)),
            None => k.int(&v).map(Some),
        },
        None => Ok(None),
    }
}

fn mem_total_pages<K: KernelAccess>(k: &K) -> AResult<Option<u64>> {
    if let Some(v) = atomic(k, "_totalram_pages")? {
        return Ok(Some(v as u64));
    }
    Ok(k.var_int("totalram_pages")?.map(|p| p as u64))
}

fn read_cmdline<K: KernelAccess>(k: &K) -> AResult<Option<Vec<u8>>> {
    match k.var("saved_command_line")? {
        Some(v) => Ok(Some(k.cstr(&v, CMDLINE_MAX)?)),
        None => Ok(None),
    }
}

/// `/proc/version`: `linux_proc_banner` is `"%s version %s (…) (…) %s\n"`, filled with
/// sysname, release and version.
fn proc_version<K: KernelAccess>(
    k: &K,
    uts: Option<&crate::plugins::kernel_info::Uts>,
) -> AResult<Option<Vec<u8>>> {
    if let (Some(fmt), Some(u)) = (k.var("linux_proc_banner")?, uts) {
        let fmt = k.cstr(&fmt, 1024)?;
        let parts: Vec<&[u8]> = fmt.split(|&b| b == b'%').collect();
        // Exactly three `%s` and no other conversion, else fall back.
        if parts.len() == 4 && parts[1..].iter().all(|p| p.first() == Some(&b's')) {
            let mut out = parts[0].to_vec();
            for (p, v) in parts[1..].iter().zip([&u.sysname, &u.release, &u.version]) {
                out.extend_from_slice(v);
                out.extend_from_slice(&p[1..]);
            }
            return Ok(Some(out));
        }
    }
    read_banner(k)
}

/// `/proc/loadavg`'s three figures.
fn load_average<K: KernelAccess>(k: &K) -> AResult<Option<[String; 3]>> {
    let Some(arr) = k.var("avenrun")? else {
        return Ok(None);
    };
    let mut out: [String; 3] = Default::default();
    for (i, o) in out.iter_mut().enumerate() {
        let a = k.int(&k.index(&arr, i as u64)?)? as u64;
        *o = loadavg_figure(a);
    }
    Ok(Some(out))
}

/// `LOAD_INT(a + FIXED_1/200)` `.` `LOAD_FRAC(a + FIXED_1/200)` (fs/proc/loadavg.c).
pub fn loadavg_figure(a: u64) -> String {
    let a = a.wrapping_add(FIXED_1 / 200);
    let int = a >> FSHIFT;
    let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
    format!("{int}.{frac:02}")
}

/// `date` in the C locale, in UTC: `Tue Dec  1 22:54:37 UTC 2026`.
pub fn date_string(t: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%a %b %e %H:%M:%S UTC %Y").to_string())
}

/// Where the panic CPU's backtrace says the crash came from; `Ok(None)` when the trace does not
/// tell, `Err` when there is no trace (no unwinder, no registers for the CPU).
fn panic_site<K: KernelAccess>(k: &K, cpu: u32) -> AResult<Option<PanicSite>> {
    let Some(rq) = k.var("runqueues")? else {
        return Ok(None);
    };
    let Some(t) = k.deref_at(&k.per_cpu(&rq, cpu)?, "curr")? else {
        return Ok(None);
    };
    let trace = k.stack_trace(&t)?;
    Ok(crash_site(&trace).map(|f| PanicSite {
        function: format!(
            "{}+{:#x}/{:#x}",
            f.symbol.as_deref().unwrap_or("?"),
            f.offset,
            f.size
        ),
        module: f.module.clone(),
        frame: trace
            .frames
            .iter()
            .position(|g| std::ptr::eq(g, f))
            .unwrap_or(0),
        pc: format!("{:#x}", f.pc),
    }))
}

fn panic_task<K: KernelAccess>(k: &K, cpu: u32) -> AResult<Option<PanicTask>> {
    let Some(rq) = k.var("runqueues")? else {
        return Ok(None);
    };
    let rq = k.per_cpu(&rq, cpu)?;
    let Some(t) = k.deref_at(&rq, "curr")? else {
        return Ok(None);
    };
    let comm = match k.member(&t, "comm")? {
        Some(c) => k.cstr(&c, 16)?,
        None => Vec::new(),
    };
    let states = TaskStateTable::read(k);
    let state = k.int_any(&t, &["__state", "state"])?;
    let exit = k.int_at(&t, "exit_state")?.unwrap_or(0);
    Ok(Some(PanicTask {
        cpu,
        pid: k.int_at(&t, "pid")?.unwrap_or(-1),
        comm,
        task: format!("{:#x}", k.address(&t)),
        state: state.map(|s| task_state_char(&states, s as u32, exit as u32)),
    }))
}

/// The register names of `elf_gregset_t` (x86_64 `struct user_regs_struct`, arm64 x0–x30 sp pc
/// pstate, s390x psw and r0–r15).
pub fn register_names(arch: Arch) -> Vec<String> {
    match arch {
        Arch::X86_64 => [
            "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
            "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
            "gs_base", "ds", "es", "fs", "gs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Arch::Aarch64 => (0..31)
            .map(|i| format!("x{i}"))
            .chain(["sp", "pc", "pstate"].iter().map(|s| s.to_string()))
            .collect(),
        Arch::S390x => ["psw_mask", "psw_addr"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..16).map(|i| format!("r{i}")))
            .collect(),
    }
}

fn registers(input: &SysInput, cpu: u32, active: Option<&[u32]>) -> Option<Registers> {
    let arch = input.arch?;
    // The kernel writes one note per CPU that was running (kexec: the crash_notes of the CPUs it
    // stopped, in CPU order; QEMU: one per vCPU, in vCPU order). When the count matches the
    // active CPUs, the note's index is the CPU's position among them; else the CPU number.
    let idx = match active {
        Some(a) if a.len() == input.notes.len() => a.iter().position(|&c| c == cpu)?,
        _ => cpu as usize,
    };
    let note = input.notes.get(idx)?;
    let names = register_names(arch);
    Some(Registers {
        note_index: note.index,
        pid: note.pid,
        regs: names
            .into_iter()
            .zip(&note.regs)
            .map(|(n, v)| (n, format!("{v:016x}")))
            .collect(),
    })
}

/// The panic message: `panic()` prints `Kernel panic - not syncing: <msg>` and, at the end,
/// `---[ end Kernel panic - not syncing: <msg> ]---` (kernel/panic.c). The last message line
/// is taken; the end marker only when the first line was lost.
pub fn panic_message(lines: &[String]) -> Option<String> {
    const P: &str = "Kernel panic - not syncing: ";
    const END: &str = "---[ end Kernel panic - not syncing: ";
    let after = |l: &String, pat: &str| l.find(pat).map(|i| l[i + pat.len()..].to_string());
    lines
        .iter()
        .rev()
        .filter(|l| !l.contains(END))
        .find_map(|l| after(l, P))
        .or_else(|| {
            lines.iter().rev().find_map(|l| {
                let m = after(l, END)?;
                Some(m.strip_suffix(" ]---").unwrap_or(&m).to_string())
            })
        })
        .map(|m| m.trim_end().to_string())
}

/// The last oops, BUG or WARNING block: from its first line (`Oops:`, `BUG:`, `WARNING:`,
/// `general protection fault`, `Unable to handle kernel`, `kernel BUG at`) to the `---[ end trace`
/// line, the next such start, or the end of the log.
pub fn last_oops_block(lines: &[String]) -> Option<Vec<String>> {
    const STARTS: [&str; 7] = [
        "Oops:",
        "BUG:",
        "WARNING:",
        "general protection fault",
        "Unable to handle kernel",
        "kernel BUG at",
        "Internal error:",
    ];
    let text = |l: &String| -> String {
        // strip a `[  123.456789] ` timestamp
        match l.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((_, rest)) => rest.to_string(),
            None => l.clone(),
        }
    };
    let is_start = |l: &String| STARTS.iter().any(|s| text(l).starts_with(s));
    let last = lines.iter().rposition(is_start)?;
    // An oops opens with several such lines (`BUG: …`, `#PF: …`, `Oops: …`): the block starts at
    // the first of them after the previous block's end marker.
    let prev_end = lines[..last]
        .iter()
        .rposition(|l| text(l).starts_with("---[ end trace"))
        .map_or(0, |e| e + 1);
    let start = lines[prev_end..=last]
        .iter()
        .position(is_start)
        .map_or(last, |i| prev_end + i);
    let mut block = Vec::new();
    for l in &lines[start..] {
        block.push(l.clone());
        if text(l).starts_with("---[ end trace") {
            break;
        }
    }
    Some(block)
}
