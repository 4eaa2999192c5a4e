//! The architecture-neutral side of backtraces over whole synthetic kernels (tests/common/
//! synthkernel.rs): which registers each CPU gets (QEMU notes numbered `cpu + 1`, kdump notes by
//! the current task's pid, the per-CPU `crash_notes` buffers of a kdump capture, corrupt and
//! missing notes), the panic CPU, module symbols (6.4+ `mem[]` and the older `core_layout`,
//! a hostile `num_symtab`), the `%pB` rule, and a whole trace through a test frame-pointer
//! [`ArchStack`] (tests/common/fp_arch.rs). Every expected value is what the test wrote.

mod common;

use common::dwarf::SymFlags;
use common::fp_arch::{FpArch, GREG_RBP, GREG_RIP, GREG_RSP};
use common::synthkernel::{KernelConfig, LINK_TEXT, MOD_MEM_TYPES, Obj, SynthKernel, T};
use vmcore_report::addr::{Arch, VirtAddr};
use vmcore_report::kernel::stack::{Backtracer, RegsSource, StartKind, arch_stack};
use vmcore_report::kernel::{Kernel, KernelAccess};
use vmcore_report::unwind::StopReason;

/// `sizeof(struct elf_prstatus)` on x86_64, `pr_pid` and `pr_reg` offsets, `elf_gregset_t` words.
const PRSTATUS_SIZE: usize = 336;
const PR_PID: usize = 32;
const PR_REG: usize = 112;
const NGREGS: usize = 27;
/// `note_buf_t` here: 128 u32.
const NOTE_BUF_WORDS: u64 = 128;

/// A register set tagged by `tag`, so that each CPU's can be told apart.
fn gregs(tag: u64) -> Vec<u64> {
    (0..NGREGS as u64)
        .map(|i| 0xffff_ffff_8100_0000 + tag * 0x1_0000 + i * 8)
        .collect()
}

/// The bytes `crash_save_cpu()` leaves in a `crash_notes` buffer: an ELF note header, the name
/// padded to 4, a `struct elf_prstatus` of `descsz` bytes (pid at 32, registers at 112), then
/// the empty final note. Built here, not by the parser's rules.
fn crash_note(name: &[u8], ntype: u32, descsz: usize, pid: u32, regs: &[u64]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(name.len() as u32).to_le_bytes());
    b.extend_from_slice(&(descsz as u32).to_le_bytes());
    b.extend_from_slice(&ntype.to_le_bytes());
    b.extend_from_slice(name);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    let mut desc = vec![0u8; descsz.max(PR_REG + 8 * NGREGS)];
    desc[PR_PID..PR_PID + 4].copy_from_slice(&pid.to_le_bytes());
    for (i, r) in regs.iter().enumerate() {
        desc[PR_REG + 8 * i..PR_REG + 8 * i + 8].copy_from_slice(&r.to_le_bytes());
    }
    desc.truncate(descsz);
    b.extend_from_slice(&desc);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b.extend_from_slice(&[0; 12]);
    b
}

fn good_note(pid: u32, regs: &[u64]) -> Vec<u8> {
    crash_note(b"CORE\0", 1, PRSTATUS_SIZE, pid, regs)
}

/// What one CPU's `crash_notes` buffer holds.
#[derive(Clone)]
enum Buf {
    Bytes(Vec<u8>),
    /// Never written: zeros.
    Empty,
    /// Left out of the dump.
    Missing,
}

/// A synthetic machine.
#[derive(Clone)]
struct Machine {
    /// The pid of each CPU's current task (one CPU per entry).
    pids: Vec<i32>,
    crashtime: bool,
    /// `panic_cpu.counter`, and x86 `crashing_cpu` when present.
    panic_cpu: i64,
    crashing_cpu: Option<i64>,
    /// The per-CPU `crash_notes` buffers (no `crash_notes` variable when `None`).
    crash_notes: Option<Vec<Buf>>,
    /// `struct elf_prstatus` described in the DWARF.
    prstatus_dwarf: bool,
    /// The dump's PRSTATUS notes, in this order: (pr_pid, registers).
    notes: Vec<(u32, Vec<u64>)>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            pids: vec![0, 42],
            crashtime: true,
            panic_cpu: -1,
            crashing_cpu: None,
            crash_notes: None,
            prstatus_dwarf: true,
            notes: Vec::new(),
        }
    }
}

struct Types {
    int: T,
    uint: T,
    ulong: T,
    chr: T,
    voidp: T,
    list_head: T,
    task: T,
}

/// The base types, `task_struct` (pid, on_cpu, stack, thread.sp) and `struct rq`.
fn declare(k: &mut SynthKernel, m: &Machine) -> (Types, T) {
    let chr = k.int("char", 1, true);
    let short = k.int("short int", 2, true);
    let int = k.int("int", 4, true);
    let uint = k.int("unsigned int", 4, false);
    let long = k.int("long int", 8, true);
    let ulong = k.int("long unsigned int", 8, false);
    let voidp = k.ptr(None);
    let lh = k.forward("list_head");
    let lhp = k.ptr(Some(lh));
    k.define(lh, &[("next", lhp), ("prev", lhp)]);
    let thread = k.structure(Some("thread_struct"), &[("sp", ulong)]);
    let comm = k.array(chr, 16);
    let task = k.structure(
        Some("task_struct"),
        &[
            ("pid", int),
            ("on_cpu", int),
            ("stack", voidp),
            ("comm", comm),
            ("thread", thread),
        ],
    );
    let taskp = k.ptr(Some(task));
    let rq = k.structure(Some("rq"), &[("cpu", int), ("curr", taskp)]);
    if m.prstatus_dwarf {
        // include/linux/elfcore.h (5.19+): struct elf_prstatus_common, then pr_reg
        let ints3 = k.array(int, 3);
        let siginfo = k.structure(Some("elf_siginfo"), &[("si", ints3)]);
        let tv = k.structure(
            Some("__kernel_old_timeval"),
            &[("tv_sec", long), ("tv_usec", long)],
        );
        let common = k.structure(
            Some("elf_prstatus_common"),
            &[
                ("pr_info", siginfo),
                ("pr_cursig", short),
                ("pr_sigpend", ulong),
                ("pr_sighold", ulong),
                ("pr_pid", int),
                ("pr_ppid", int),
                ("pr_pgrp", int),
                ("pr_sid", int),
                ("pr_utime", tv),
                ("pr_stime", tv),
                ("pr_cutime", tv),
                ("pr_cstime", tv),
            ],
        );
        let gregset = k.array(ulong, NGREGS as u64);
        let ps = k.structure(
            Some("elf_prstatus"),
            &[("common", common), ("pr_reg", gregset), ("pr_fpvalid", int)],
        );
        assert_eq!(k.size_of(ps), PRSTATUS_SIZE as u64);
        assert_eq!(k.member_of(ps, "common.pr_pid").0, PR_PID as u64);
        assert_eq!(k.member_of(ps, "pr_reg").0, PR_REG as u64);
    }
    (
        Types {
            int,
            uint,
            ulong,
            chr,
            voidp,
            list_head: lh,
            task,
        },
        rq,
    )
}

/// A built machine: its kernel view, the current task of each CPU, and the files.
struct Built {
    kernel: Kernel,
    tasks: Vec<u64>,
    _dir: tempfile::TempDir,
}

/// Builds `m`; `extra` adds to the kernel before it is written (more tasks, symbols, modules).
fn build(m: &Machine, extra: impl FnOnce(&mut SynthKernel, &Types, &[Obj])) -> Built {
    let nr = m.pids.len() as u32;
    let mut k = SynthKernel::new(KernelConfig {
        nr_cpus: nr,
        write_crashtime: m.crashtime,
        ..KernelConfig::default()
    });
    let (ty, rq_ty) = declare(&mut k, m);
    let nr_cpu_ids = k.global("nr_cpu_ids", ty.uint);
    k.set(&nr_cpu_ids, "", u64::from(nr));
    let bits = k.array(ty.ulong, 1);
    let cpumask = k.structure(Some("cpumask"), &[("bits", bits)]);
    let possible = k.global("__cpu_possible_mask", cpumask);
    k.set(&possible, "bits[0]", (1u64 << nr) - 1);
    k.per_cpu_offsets(ty.ulong);
    let atomic = k.structure(Some("atomic_t"), &[("counter", ty.int)]);
    let pc = k.global("panic_cpu", atomic);
    k.set_i(&pc, "counter", m.panic_cpu);
    if let Some(c) = m.crashing_cpu {
        let cc = k.global("crashing_cpu", ty.int);
        k.set_i(&cc, "", c);
    }
    let rqs = k.percpu("runqueues", rq_ty);
    let mut currents = Vec::new();
    for (cpu, &pid) in m.pids.iter().enumerate() {
        let t = k.alloc(ty.task);
        k.set_i(&t, "pid", i64::from(pid));
        k.set(&t, "on_cpu", 1);
        let rq = k.on_cpu(&rqs, cpu as u32);
        k.set_all(&rq, &[("cpu", cpu as u64), ("curr", t.va)]);
        currents.push(t);
    }
    let mut missing_pages = Vec::new();
    if let Some(bufs) = &m.crash_notes {
        // A page of padding keeps the buffers off the runqueues' page (a test leaves them out).
        let pad = k.array(ty.chr, 4096);
        k.percpu("percpu_pad", pad);
        let u32t = k.typedef("u32", ty.uint);
        let note_buf = k.array(u32t, NOTE_BUF_WORDS);
        let note_buf_t = k.typedef("note_buf_t", note_buf);
        let buf = k.percpu("crash_notes_area", note_buf_t);
        let ptr = k.ptr(Some(note_buf_t));
        let cn = k.global("crash_notes", ptr);
        k.set(&cn, "", buf.link); // an alloc_percpu() pointer: the per-CPU offset
        for (cpu, b) in bufs.iter().enumerate() {
            let at = k.on_cpu(&buf, cpu as u32).va;
            match b {
                Buf::Bytes(bytes) => k.write_va(at, bytes),
                Buf::Empty => {}
                Buf::Missing => missing_pages.push(k.cfg.pa(at) / 4096),
            }
        }
    }
    for (pid, regs) in &m.notes {
        k.prstatus_note(*pid, regs);
    }
    extra(&mut k, &ty, &currents);
    let tasks = currents.iter().map(|t| t.va).collect();
    let (mut b, vmlinux) = k.finish();
    for p in missing_pages {
        b.exclude(p);
    }
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("vmcore");
    std::fs::write(&dump, b.build_elf(&Default::default())).unwrap();
    let vm = dir.path().join("vmlinux");
    std::fs::write(&vm, vmlinux).unwrap();
    Built {
        kernel: common::kernel::open(&dump, &vm),
        tasks,
        _dir: dir,
    }
}

// ---- CPUs and their registers ------------------------------------------------------------------

/// QEMU: no CRASHTIME, one note per vCPU with `pr_pid = cpu + 1`, written out of order, whatever
/// task each CPU ran; the panic CPU from x86 `crashing_cpu` when `panic_cpu` is -1.
#[test]
fn qemu_notes_by_cpu_number() {
    let m = Machine {
        pids: vec![100, 0, 200],
        crashtime: false,
        crashing_cpu: Some(2),
        notes: vec![(3, gregs(2)), (1, gregs(0)), (2, gregs(1))],
        ..Machine::default()
    };
    let b = build(&m, |_, _, _| {});
    let cpus = b.kernel.cpu_contexts().unwrap();
    assert_eq!(cpus.len(), 3);
    for (i, c) in cpus.iter().enumerate() {
        assert_eq!(c.cpu, i as u32);
        assert_eq!(c.task, Some(b.tasks[i]));
        assert_eq!(c.pid, Some(m.pids[i]));
        assert_eq!(c.regs_source, Some(RegsSource::PrstatusCpu), "{c:?}");
        assert_eq!(c.gregs, gregs(i as u64), "CPU {i}");
        assert_eq!(c.is_panic, i == 2);
    }
}

/// kdump-style notes (CRASHTIME, no `crash_notes` variable): each note goes to the CPU whose
/// current task has its pid; a CPU with no such note has no registers and says so.
#[test]
fn kdump_notes_by_task_pid_with_a_missing_cpu() {
    let m = Machine {
        pids: vec![0, 42, 77, 99],
        panic_cpu: 1,
        notes: vec![(77, gregs(2)), (0, gregs(0)), (42, gregs(1))],
        ..Machine::default()
    };
    let b = build(&m, |_, _, _| {});
    let cpus = b.kernel.cpu_contexts().unwrap();
    for (i, c) in cpus.iter().take(3).enumerate() {
        assert_eq!(c.regs_source, Some(RegsSource::PrstatusTask));
        assert_eq!(c.gregs, gregs(i as u64), "CPU {i}");
    }
    let c3 = &cpus[3];
    assert_eq!(c3.regs_source, None);
    assert!(c3.gregs.is_empty());
    let why = c3.regs_missing.as_deref().unwrap();
    assert!(why.contains("pr_pid 99"), "{why}");
    assert_eq!(
        cpus.iter().map(|c| c.is_panic).collect::<Vec<_>>(),
        [false, true, false, false]
    );
}

/// Two idle CPUs share pid 0: their one note cannot be placed, and neither CPU gets it. The same
/// without CRASHTIME: notes whose pids are not `1..=N` are matched by task, not by number.
#[test]
fn kdump_notes_ambiguous_pid() {
    for crashtime in [true, false] {
        let m = Machine {
            pids: vec![0, 42, 0],
            crashtime,
            notes: vec![(0, gregs(0)), (42, gregs(1))],
            ..Machine::default()
        };
        let b = build(&m, |_, _, _| {});
        let cpus = b.kernel.cpu_contexts().unwrap();
        assert_eq!(cpus[1].gregs, gregs(1));
        for i in [0, 2] {
            assert_eq!(cpus[i].regs_source, None, "crashtime {crashtime}");
            let why = cpus[i].regs_missing.as_deref().unwrap();
            assert!(why.contains("ambiguous"), "{why}");
        }
    }
}

/// With CRASHTIME, notes numbered like QEMU's are still kdump notes: CPU 0 runs pid 2 and gets
/// the note of pid 2, not the one numbered for it.
#[test]
fn kdump_notes_never_by_cpu_number() {
    let m = Machine {
        pids: vec![2, 1],
        notes: vec![(1, gregs(1)), (2, gregs(0))],
        ..Machine::default()
    };
    let b = build(&m, |_, _, _| {});
    let cpus = b.kernel.cpu_contexts().unwrap();
    assert_eq!(cpus[0].gregs, gregs(0));
    assert_eq!(cpus[1].gregs, gregs(1));
    assert!(
        cpus.iter()
            .all(|c| c.regs_source == Some(RegsSource::PrstatusTask))
    );
}

/// A kdump capture with `crash_notes`: each CPU's own buffer, whatever the dump's notes say; a
/// corrupt note (wrong type, wrong descriptor size) or an empty buffer leaves the CPU without
/// registers, saying why, and never falls back to the notes; a pid that is not the current
/// task's is recorded; without `struct elf_prstatus` in the DWARF the 64-bit layout is assumed.
#[test]
fn crash_notes_buffers() {
    for dwarf in [true, false] {
        let m = Machine {
            pids: vec![0, 42, 77, 5, 6],
            panic_cpu: 1,
            prstatus_dwarf: dwarf,
            crash_notes: Some(vec![
                Buf::Bytes(good_note(0, &gregs(0))),
                Buf::Bytes(good_note(41, &gregs(1))),
                Buf::Bytes(crash_note(b"CORE\0", 2, PRSTATUS_SIZE, 77, &gregs(2))),
                Buf::Bytes(crash_note(b"CORE\0", 1, 300, 5, &gregs(3))),
                Buf::Empty,
            ]),
            // what a capture kernel would have copied, but different: must not be used
            notes: vec![(0, gregs(10)), (42, gregs(11)), (77, gregs(12))],
            ..Machine::default()
        };
        let b = build(&m, |_, _, _| {});
        let cpus = b.kernel.cpu_contexts().unwrap();
        let src: Vec<_> = cpus.iter().map(|c| c.regs_source).collect();
        let cn = Some(RegsSource::CrashNotes);
        assert_eq!(src, [cn, cn, None, None, None], "dwarf {dwarf}");
        assert_eq!(cpus[0].gregs, gregs(0));
        assert_eq!(cpus[1].gregs, gregs(1));
        assert!(cpus[0].problems.is_empty(), "{:?}", cpus[0].problems);
        assert!(
            cpus[1].problems.iter().any(|p| p.contains("pid 41")),
            "{:?}",
            cpus[1].problems
        );
        let why = |i: usize| cpus[i].regs_missing.clone().unwrap();
        assert!(why(2).contains("NT_PRSTATUS"), "{}", why(2));
        assert!(why(3).contains("300-byte"), "{}", why(3));
        assert!(why(4).contains("empty"), "{}", why(4));
        assert!(cpus[1].is_panic);
    }
}

/// A `crash_notes` buffer the dump does not hold: that CPU falls back to the dump's note of its
/// task.
#[test]
fn crash_notes_unreadable_falls_back_to_notes() {
    let m = Machine {
        pids: vec![0, 42],
        crash_notes: Some(vec![Buf::Bytes(good_note(0, &gregs(0))), Buf::Missing]),
        notes: vec![(0, gregs(10)), (42, gregs(11))],
        ..Machine::default()
    };
    let b = build(&m, |_, _, _| {});
    let cpus = b.kernel.cpu_contexts().unwrap();
    assert_eq!(cpus[0].regs_source, Some(RegsSource::CrashNotes));
    assert_eq!(cpus[0].gregs, gregs(0));
    assert_eq!(cpus[1].regs_source, Some(RegsSource::PrstatusTask));
    assert_eq!(cpus[1].gregs, gregs(11));
    assert!(
        cpus[1]
            .problems
            .iter()
            .any(|p| p.contains("cannot be read")),
        "{:?}",
        cpus[1].problems
    );
}

// ---- module symbols ----------------------------------------------------------------------------

/// Where a module keeps its text.
#[derive(Clone, Copy, PartialEq)]
enum ModLayout {
    /// 6.4+: `mem[MOD_TEXT]`, `mem[MOD_INIT_TEXT]`.
    Mem,
    /// 4.5–6.3: `core_layout`, `init_layout`.
    CoreLayout,
}

/// One `Elf64_Sym` of a module: name, `st_info`, `st_shndx`, value, size.
type ModSym = (&'static str, u8, u16, u64, u64);

const FUNC_LOCAL: u8 = 0x02;
const FUNC_GLOBAL: u8 = 0x12;
const NOTYPE_LOCAL: u8 = 0x00;
const SHN_TEXT: u16 = 2;

struct ModSpec {
    name: &'static str,
    text: (u64, u64),
    init_text: Option<(u64, u64)>,
    /// The whole core allocation (text + data), for the pre-6.4 layout.
    core_size: u64,
    symbols: Vec<ModSym>,
    /// Overrides `num_symtab`.
    num_symtab: Option<u64>,
}

/// `modules` and each module's `struct module` and `mod_kallsyms`, with the symbol and string
/// tables laid out as `add_kallsyms()` leaves them.
fn add_modules(k: &mut SynthKernel, ty: &Types, layout: ModLayout, mods: &[ModSpec]) {
    let state = k.enumeration(
        "module_state",
        &[
            ("MODULE_STATE_LIVE", 0),
            ("MODULE_STATE_COMING", 1),
            ("MODULE_STATE_GOING", 2),
            ("MODULE_STATE_UNFORMED", 3),
        ],
    );
    let name = k.array(ty.chr, 56);
    let kallsyms = k.structure(
        Some("mod_kallsyms"),
        &[
            ("symtab", ty.voidp),
            ("num_symtab", ty.uint),
            ("strtab", ty.voidp),
            ("typetab", ty.voidp),
        ],
    );
    let kallsymsp = k.ptr(Some(kallsyms));
    let module = match layout {
        ModLayout::Mem => {
            k.enumeration("mod_mem_type", &MOD_MEM_TYPES);
            let mm = k.structure(
                Some("module_memory"),
                &[("base", ty.voidp), ("size", ty.uint)],
            );
            let mems = k.array(mm, 7);
            k.structure(
                Some("module"),
                &[
                    ("state", state),
                    ("list", ty.list_head),
                    ("name", name),
                    ("mem", mems),
                    ("kallsyms", kallsymsp),
                ],
            )
        }
        ModLayout::CoreLayout => {
            let ml = k.structure(
                Some("module_layout"),
                &[
                    ("base", ty.voidp),
                    ("size", ty.uint),
                    ("text_size", ty.uint),
                    ("ro_size", ty.uint),
                    ("ro_after_init_size", ty.uint),
                ],
            );
            k.structure(
                Some("module"),
                &[
                    ("state", state),
                    ("list", ty.list_head),
                    ("name", name),
                    ("core_layout", ml),
                    ("init_layout", ml),
                    ("kallsyms", kallsymsp),
                ],
            )
        }
    };
    let head = k.global("modules", ty.list_head);
    let mut nodes = Vec::new();
    for spec in mods {
        let m = k.alloc(module);
        k.set_str(&m, "name", spec.name);
        match layout {
            ModLayout::Mem => {
                k.set_all(
                    &m,
                    &[
                        ("mem[0].base", spec.text.0),
                        ("mem[0].size", spec.text.1),
                        // data after the text: not text
                        ("mem[1].base", spec.text.0 + 0x8000),
                        ("mem[1].size", 0x1000),
                    ],
                );
                if let Some((b, s)) = spec.init_text {
                    k.set_all(&m, &[("mem[4].base", b), ("mem[4].size", s)]);
                }
            }
            ModLayout::CoreLayout => {
                k.set_all(
                    &m,
                    &[
                        ("core_layout.base", spec.text.0),
                        ("core_layout.size", spec.core_size),
                        ("core_layout.text_size", spec.text.1),
                    ],
                );
                if let Some((b, s)) = spec.init_text {
                    k.set_all(
                        &m,
                        &[
                            ("init_layout.base", b),
                            ("init_layout.size", s),
                            ("init_layout.text_size", s),
                        ],
                    );
                }
            }
        }
        // the null symbol first, names one after another
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for &(n, info, shndx, value, size) in &spec.symbols {
            let off = strtab.len() as u32;
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&off.to_le_bytes());
            symtab.push(info);
            symtab.push(0);
            symtab.extend_from_slice(&shndx.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&size.to_le_bytes());
        }
        let st = k.alloc_bytes(&symtab, 8);
        let ss = k.alloc_bytes(&strtab, 8);
        let ks = k.alloc(kallsyms);
        let num = spec.num_symtab.unwrap_or(spec.symbols.len() as u64 + 1);
        k.set_all(&ks, &[("symtab", st), ("num_symtab", num), ("strtab", ss)]);
        k.set(&m, "kallsyms", ks.va);
        nodes.push(k.at(&m, "list").va);
    }
    k.link_list(head.va, &nodes);
}

const MOD_BASE: u64 = 0xffff_ffff_c010_0000;
const INIT_BASE: u64 = 0xffff_ffff_c020_0000;

/// testmod: `__pfx_mod_a` padding, `mod_a` (sized, local), `mod_b` (global, no size) with a
/// local alias, `mod_c` (no size, the last: up to the end of the text), a mapping symbol, an
/// undefined and an absolute symbol, and `mod_init` in the init text.
fn testmod() -> ModSpec {
    ModSpec {
        name: "testmod",
        text: (MOD_BASE, 0x1000),
        init_text: Some((INIT_BASE, 0x100)),
        core_size: 0x4000,
        symbols: vec![
            ("__pfx_mod_a", FUNC_LOCAL, SHN_TEXT, MOD_BASE, 0x10),
            ("mod_a", FUNC_LOCAL, SHN_TEXT, MOD_BASE + 0x10, 0x30),
            ("mod_b_alias", FUNC_LOCAL, SHN_TEXT, MOD_BASE + 0x40, 0x20),
            ("mod_b", FUNC_GLOBAL, SHN_TEXT, MOD_BASE + 0x40, 0),
            ("mod_c", FUNC_GLOBAL, SHN_TEXT, MOD_BASE + 0x80, 0),
            ("$x", NOTYPE_LOCAL, SHN_TEXT, MOD_BASE + 0x90, 0),
            ("printk", FUNC_GLOBAL, 0, MOD_BASE + 0xa0, 0),
            ("abs_const", NOTYPE_LOCAL, 0xfff1, MOD_BASE + 0xb0, 0),
            ("mod_init", FUNC_LOCAL, SHN_TEXT, INIT_BASE, 0x80),
        ],
        num_symtab: None,
    }
}

fn check_testmod(k: &Kernel) {
    let name = |a: u64| {
        let (s, m) = k.code_symbol(a);
        (s.map(|s| (s.name, a - s.start, s.size)), m)
    };
    let t = Some("testmod".to_string());
    let s = |n: &str, off: u64, size: u64| Some((n.to_string(), off, size));
    assert_eq!(name(MOD_BASE + 0x15), (s("mod_a", 5, 0x30), t.clone()));
    // the padding names nothing, nor does mod_a's own size cover its padding before
    assert_eq!(name(MOD_BASE + 0x8), (None, t.clone()));
    // a global function over its local alias; no size: up to the next symbol
    assert_eq!(name(MOD_BASE + 0x40), (s("mod_b", 0, 0x40), t.clone()));
    assert_eq!(name(MOD_BASE + 0x7f), (s("mod_b", 0x3f, 0x40), t.clone()));
    // the last symbol without a size runs to the end of the text; the mapping, undefined and
    // absolute symbols inside it are not symbols
    assert_eq!(name(MOD_BASE + 0xa8), (s("mod_c", 0x28, 0xf80), t.clone()));
    assert_eq!(
        name(MOD_BASE + 0xfff),
        (s("mod_c", 0xf7f, 0xf80), t.clone())
    );
    assert_eq!(
        name(INIT_BASE + 0x7f),
        (s("mod_init", 0x7f, 0x80), t.clone())
    );
    // past the text (the module's data) is not module text
    assert_eq!(name(MOD_BASE + 0x1000), (None, None));
    assert_eq!(name(MOD_BASE + 0x8008), (None, None));
    assert!(k.is_module_text(MOD_BASE));
    assert!(!k.is_module_text(MOD_BASE + 0x2000));
}

#[test]
fn module_symbols_6_4_mem() {
    let b = build(&Machine::default(), |k, ty, _| {
        add_modules(k, ty, ModLayout::Mem, &[testmod()]);
    });
    let mods = b.kernel.module_symbols().unwrap();
    assert_eq!(mods.modules.len(), 1);
    assert_eq!(
        mods.modules[0].text,
        [
            (MOD_BASE, MOD_BASE + 0x1000),
            (INIT_BASE, INIT_BASE + 0x100)
        ]
    );
    check_testmod(&b.kernel);
}

#[test]
fn module_symbols_core_layout() {
    let b = build(&Machine::default(), |k, ty, _| {
        add_modules(k, ty, ModLayout::CoreLayout, &[testmod()]);
    });
    check_testmod(&b.kernel);
}

/// A module claiming four billion symbols keeps its name and text, and names nothing; the
/// modules around it are unharmed.
#[test]
fn module_hostile_num_symtab() {
    let hostile = ModSpec {
        name: "hostile",
        text: (0xffff_ffff_c030_0000, 0x1000),
        init_text: None,
        core_size: 0x2000,
        symbols: vec![("h", FUNC_GLOBAL, SHN_TEXT, 0xffff_ffff_c030_0000, 0x10)],
        num_symtab: Some(0xffff_ffff),
    };
    let b = build(&Machine::default(), |k, ty, _| {
        add_modules(k, ty, ModLayout::Mem, &[hostile, testmod()]);
    });
    let mods = b.kernel.module_symbols().unwrap();
    let h = mods.modules.iter().find(|m| m.name == "hostile").unwrap();
    let err = h.symbols_error.as_deref().unwrap();
    assert!(err.contains("num_symtab 4294967295"), "{err}");
    assert_eq!(
        b.kernel.code_symbol(0xffff_ffff_c030_0004),
        (None, Some("hostile".to_string()))
    );
    check_testmod(&b.kernel);
}

// ---- vmlinux symbols and whole traces ----------------------------------------------------------

/// Link-time text: `caller` [0x1000, 0x1020), `__pfx_next_fn` padding, `next_fn` [0x1030, 0x1070)
/// with a local alias and an absolute constant inside it, `asm_entry` (no size) up to `after`.
const CALLER: u64 = LINK_TEXT + 0x1000;
const NEXT_FN: u64 = LINK_TEXT + 0x1030;
const ASM_ENTRY: u64 = LINK_TEXT + 0x2000;
const AFTER: u64 = LINK_TEXT + 0x2100;

fn text_symbols(k: &mut SynthKernel) {
    k.symbol_with("caller", CALLER, 0x20, SymFlags::FUNC);
    k.symbol_with("__pfx_next_fn", CALLER + 0x20, 0x10, SymFlags::FUNC);
    k.symbol_with("next_fn_local", NEXT_FN, 0x40, SymFlags::LOCAL_FUNC);
    k.symbol_with("next_fn", NEXT_FN, 0x40, SymFlags::FUNC);
    k.symbol_with(
        "__kcfi_typeid_next_fn",
        NEXT_FN + 0x10,
        0,
        SymFlags::ABSOLUTE,
    );
    k.symbol_with("asm_entry", ASM_ENTRY, 0, SymFlags::FUNC);
    k.symbol_with("after", AFTER, 0x10, SymFlags::FUNC);
}

/// Writes a frame-pointer chain on a task stack: at each frame address, the next frame's
/// address and the return address; the last frame links to 0.
fn write_chain(k: &mut SynthKernel, frames: &[(u64, u64)]) {
    for (i, &(at, ret)) in frames.iter().enumerate() {
        let next = frames.get(i + 1).map_or(0, |f| f.0);
        k.write_va(at, &next.to_le_bytes());
        k.write_va(at + 8, &ret.to_le_bytes());
    }
}

/// The `%pB` rule on the vmlinux symbols: a return address right after a call that ends a
/// function names that function (`caller+0x20/0x20`), an exact pc is looked up as is.
#[test]
fn vmlinux_code_symbols() {
    let b = build(&Machine::default(), |k, _, _| text_symbols(k));
    let k = &b.kernel;
    let off = k.symbols().kaslr_offset();
    let name = |link: u64| {
        k.code_symbol(link + off)
            .0
            .map(|s| (s.name, link + off - s.start, s.size))
    };
    let s = |n: &str, o: u64, z: u64| Some((n.to_string(), o, z));
    assert_eq!(name(CALLER + 0x1f), s("caller", 0x1f, 0x20));
    // the padding before next_fn names nothing
    assert_eq!(name(CALLER + 0x20), None);
    // the global name over the local alias; the absolute constant inside is no symbol
    assert_eq!(name(NEXT_FN + 0x18), s("next_fn", 0x18, 0x40));
    // a symbol without a size extends to the next one
    assert_eq!(name(ASM_ENTRY + 0xff), s("asm_entry", 0xff, 0x100));
}

/// A whole trace through the test frame-pointer unwinder: a running task from its CPU's
/// `crash_notes` registers through a return address at a function's end, a module frame and a
/// symbol without a size; a sleeping task from its saved context; a running task whose CPU saved
/// nothing fails with `no-registers`.
#[test]
fn traces_through_a_test_arch() {
    let m = Machine {
        pids: vec![42, 77],
        crash_notes: Some(vec![Buf::Empty, Buf::Empty]), // CPU 0's written below
        ..Machine::default()
    };
    let mut sleeper = 0;
    let mut expect_sp = Vec::new();
    let b = build(&m, |k, ty, cur| {
        text_symbols(k);
        add_modules(k, ty, ModLayout::Mem, &[testmod()]);
        let rt = |l: u64| k_runtime(l);
        // the running task's stack and its CPU's note
        let stack = k.alloc_bytes(&vec![0u8; 0x4000], 0x4000);
        k.set(&cur[0], "stack", stack);
        let f0 = stack + 0x3f00;
        let (f1, f2) = (stack + 0x3f40, stack + 0x3f80);
        write_chain(
            k,
            &[
                (f0, rt(CALLER + 0x20)), // returns right after caller's last call
                (f1, MOD_BASE + 0x20),   // into mod_a
                (f2, rt(ASM_ENTRY + 0x10)),
            ],
        );
        let mut regs = vec![0u64; 27];
        regs[GREG_RIP] = rt(CALLER + 5);
        regs[GREG_RSP] = f0;
        regs[GREG_RBP] = f0;
        let cn = crash_notes_of(k, 0);
        k.write_va(cn, &good_note(42, &regs));
        expect_sp = vec![f0, f0 + 16, f1 + 16, f2 + 16];
        // a sleeping task
        let t = k.alloc(ty.task);
        k.set_all(&t, &[("pid", 50), ("on_cpu", 0)]);
        let stack = k.alloc_bytes(&vec![0u8; 0x4000], 0x4000);
        k.set(&t, "stack", stack);
        let sp = stack + 0x3e00;
        k.set(&t, "thread.sp", sp);
        write_chain(
            k,
            &[(sp, rt(NEXT_FN + 0x18)), (stack + 0x3e40, rt(AFTER + 4))],
        );
        sleeper = t.va;
    });
    let k = &b.kernel;
    let bt = Backtracer::with_arch(k, &FpArch).unwrap();

    let tr = bt.trace(VirtAddr(b.tasks[0])).unwrap();
    assert_eq!((tr.cpu, tr.start), (Some(0), StartKind::CrashNotes));
    assert_eq!(tr.stop, StopReason::EndOfStack);
    let shown: Vec<_> = tr
        .frames
        .iter()
        .map(|f| {
            (
                f.symbol.clone().unwrap_or_default(),
                f.offset,
                f.size,
                f.module.clone(),
                f.interrupted,
            )
        })
        .collect();
    let s = |n: &str, o: u64, z: u64, m: Option<&str>, i: bool| {
        (n.to_string(), o, z, m.map(String::from), i)
    };
    assert_eq!(
        shown,
        [
            s("caller", 5, 0x20, None, true),
            s("caller", 0x20, 0x20, None, false),
            s("mod_a", 0x10, 0x30, Some("testmod"), false),
            s("asm_entry", 0x10, 0x100, None, false),
        ]
    );
    assert_eq!(
        tr.frames.iter().map(|f| f.sp).collect::<Vec<_>>(),
        expect_sp
    );
    let regs = tr.frames[0].regs.clone().unwrap();
    assert_eq!(regs[0].0, "rip");
    assert_eq!(regs[0].1, tr.frames[0].pc);
    assert!(tr.frames[1..].iter().all(|f| f.regs.is_none()));

    let tr = bt.trace(VirtAddr(sleeper)).unwrap();
    assert_eq!((tr.cpu, tr.start), (None, StartKind::InactiveTaskFrame));
    let names: Vec<_> = tr
        .frames
        .iter()
        .map(|f| (f.symbol.clone().unwrap(), f.offset))
        .collect();
    assert_eq!(
        names,
        [("next_fn".to_string(), 0x18), ("after".to_string(), 4)]
    );

    let e = bt.trace(VirtAddr(b.tasks[1])).unwrap_err();
    assert_eq!(e.code(), "no-registers");
    assert!(e.to_string().contains("empty"), "{e}");

    // Without an ArchStack for its architecture, the kernel view says `unsupported`.
    if arch_stack(Arch::X86_64).is_none() {
        let view = k.access();
        let t = k
            .object_of(VirtAddr(sleeper), "struct task_struct")
            .unwrap();
        assert_eq!(view.stack_trace(&t).unwrap_err().code, "unsupported");
        assert_eq!(view.cpu_contexts().unwrap().len(), 2);
    }
}

/// The runtime address of a link-time text address in the default synthetic configuration.
fn k_runtime(link: u64) -> u64 {
    KernelConfig::default().runtime(link)
}

/// CPU `cpu`'s `crash_notes` buffer in the kernel under construction.
fn crash_notes_of(k: &SynthKernel, cpu: u32) -> u64 {
    let want = format!("crash_notes_area of CPU {cpu}");
    k.placed()
        .iter()
        .find(|(what, _, _)| *what == want)
        .expect("crash_notes buffers placed")
        .1
}
