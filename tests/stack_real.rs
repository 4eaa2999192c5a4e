//! The architecture-neutral side of backtraces on the real vmcores: which registers each CPU
//! has and where they came from, the panic CPU against the console's panic line, module symbols
//! against the console's oops line and drgn. Skipped, with one line, when the fixtures are
//! absent.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::fixtures;
use vmcore_report::addr::VirtAddr;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::kernel::Kernel;
use vmcore_report::kernel::stack::RegsSource;
use vmcore_report::unwind::StackKind;

/// `x86_64 user_regs_struct`: rip is word 16, rsp word 19.
const RIP: usize = 16;
const RSP: usize = 19;

fn open(dir: &Path, dump: &str) -> Option<Kernel> {
    let path = dir.join(dump);
    if !path.exists() {
        fixtures::skip(format!("{} has no {dump}", dir.display()));
        return None;
    }
    let vm = Arc::new(Vmlinux::open(&dir.join("vmlinux")).expect("vmlinux"));
    Some(common::kernel::open_with(&vm, &path))
}

/// The CPU and pid of the console's `CPU: N PID: P Comm: …` line right after `marker`.
fn console_cpu_pid(dir: &Path, marker: &str) -> (u32, i32) {
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let after = &console[console.find(marker).expect("marker in console.log")..];
    let line = after
        .lines()
        .find(|l| l.contains("CPU: ") && l.contains(" PID: "))
        .expect("CPU/PID line after the marker");
    let field = |key: &str| -> &str {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split_whitespace().next().unwrap()
    };
    (
        field("CPU: ").parse().unwrap(),
        field(" PID: ").parse().unwrap(),
    )
}

/// A kdump capture: CRASHTIME is there, each CPU's registers come from its `crash_notes`
/// buffer, and the panic CPU's equal the dump's PRSTATUS note for its task (the capture kernel
/// copied that note from the same buffer); the panic CPU and its task are the console's.
#[test]
fn kdump_crash_notes_match_prstatus_and_console() {
    for (set, dump) in [
        ("x86_64-6.1-kdump", "vmcore.raw"),
        ("x86_64-6.1-kdump", "mdf.zlib-d31"),
        ("x86_64-6.1-kdump-nokaslr", "vmcore.raw"),
        ("x86_64-6.1-kdump-hung", "vmcore.raw"),
        ("x86_64-6.1-kdump-hung", "mdf.lzo-d31"),
    ] {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let Some(k) = open(&dir, dump) else { continue };
        assert!(
            k.vmcoreinfo().and_then(|v| v.crashtime).is_some(),
            "{dump}: CRASHTIME"
        );
        let cpus = k.cpu_contexts().unwrap();
        let (cpu, pid) = console_cpu_pid(&dir, "Kernel panic - not syncing");
        let panic: Vec<_> = cpus.iter().filter(|c| c.is_panic).collect();
        assert_eq!(panic.len(), 1, "{dump}: one panic CPU in {cpus:?}");
        let p = panic[0];
        assert_eq!(
            (p.cpu, p.pid),
            (cpu, Some(pid)),
            "{dump}: panic CPU and pid"
        );
        for c in &cpus {
            assert_eq!(
                c.regs_source,
                Some(RegsSource::CrashNotes),
                "{dump}: CPU {} registers from crash_notes: {c:?}",
                c.cpu
            );
            assert!(
                c.problems.is_empty(),
                "{dump}: CPU {}: {:?}",
                c.cpu,
                c.problems
            );
            // every CPU has a note of its own task in the dump, equal to its buffer
            let notes: Vec<_> = k
                .info()
                .cpus
                .iter()
                .filter(|s| Some(s.pid as i32) == c.pid)
                .collect();
            assert!(
                notes.iter().any(|n| n.regs == c.gregs),
                "{dump}: CPU {} (pid {:?}): crash_notes {:x?} in no PRSTATUS note",
                c.cpu,
                c.pid,
                c.gregs
            );
        }
        let note = k
            .info()
            .cpus
            .iter()
            .find(|s| s.pid as i32 == pid)
            .expect("a PRSTATUS note of the panic task");
        assert_eq!(p.gregs, note.regs, "{dump}: panic CPU registers");
        // the panic CPU stopped in the crash path of the kernel, on its task's stack
        let rip = p.gregs[RIP];
        let (sym, module) = k.code_symbol(rip);
        assert_eq!(module, None);
        let sym = sym.expect("the panic CPU's rip is kernel text");
        assert!(
            ["crash_setup_regs", "__crash_kexec", "panic"]
                .iter()
                .any(|s| sym.name.contains(s)),
            "{dump}: panic CPU rip {rip:#x} in {}",
            sym.name
        );
        assert_ne!(p.gregs[RSP], 0);
    }
}

/// QEMU dumps (no CRASHTIME), x86_64 and arm64, 2 and 4 CPUs: each possible CPU gets the note
/// whose pr_pid is its number plus one, whatever task it ran; the panic CPU and its task are the
/// console's.
#[test]
fn qemu_dump_notes_by_cpu_number() {
    for set in [
        "x86_64-6.1-l4",
        "x86_64-6.12",
        "x86_64-6.1-smp4-hung",
        "aarch64-6.1",
        "x86_64-5.10",
        "aarch64-5.10",
        // QEMU 7.2 wrote these notes' pr_pid in host byte order (read back as CPU + 1)
        "s390x-6.1",
        "s390x-6.12",
    ] {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let Some(k) = open(&dir, "vmcore.elf") else {
            continue;
        };
        assert!(k.vmcoreinfo().and_then(|v| v.crashtime).is_none(), "{set}");
        let cpus = k.cpu_contexts().unwrap();
        assert_eq!(cpus.len(), k.info().cpus.len(), "{set}");
        for c in &cpus {
            assert_eq!(c.regs_source, Some(RegsSource::PrstatusCpu), "{set}: {c:?}");
            let note = k
                .info()
                .cpus
                .iter()
                .find(|s| s.pid == c.cpu + 1)
                .expect("a note per vCPU");
            assert_eq!(c.gregs, note.regs, "{set}: CPU {}", c.cpu);
            assert!(!c.gregs.is_empty());
        }
        let (cpu, pid) = console_cpu_pid(&dir, "Kernel panic - not syncing");
        let p = cpus.iter().find(|c| c.is_panic).expect("a panic CPU");
        assert_eq!((p.cpu, p.pid), (cpu, Some(pid)), "{set}");
    }
}

/// The oops module's function, named from the module's own symbol table in the dump as the
/// console's oops line named it (`RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]`), and at
/// drgn's address and size. drgn 0.3.0 on the same dump:
///
/// ```text
/// $ drgn -q -c vmcore.elf -s vmlinux modsyms.py
/// # modsyms.py:
/// #   from drgn.helpers.linux.kallsyms import load_module_kallsyms
/// #   from drgn.helpers.linux.module import for_each_module
/// #   idx = load_module_kallsyms(prog)
/// #   s = idx(prog, "trigger_write", None, True)[0]
/// #   print("symbol", s.name, hex(s.address), hex(s.size), s.binding, s.kind)
/// #   for off in (0x0, 0x20, 0x2f):
/// #       t = idx(prog, None, s.address + off, True)[0]
/// #       print(hex(s.address + off), t.name, hex(s.address + off - t.address), hex(t.size))
/// #   for m in for_each_module(prog):
/// #       print(m.name.string_().decode(), hex(m.core_layout.base.value_()),
/// #             m.core_layout.size.value_(), m.core_layout.text_size.value_(),
/// #             m.kallsyms.num_symtab.value_())
/// symbol trigger_write 0xffffffffc0532000 0x30 SymbolBinding.LOCAL SymbolKind.FUNC
/// 0xffffffffc0532000 trigger_write 0x0 0x30
/// 0xffffffffc0532020 trigger_write 0x20 0x30
/// 0xffffffffc053202f trigger_write 0x2f 0x30
/// fixture_oops 0xffffffffc0532000 16384 4096 10
/// qemu_fw_cfg 0xffffffffc052c000 20480 4096 59
/// ```
///
/// The address moves with every rebuild of the set, so the test takes it from the console's
/// offset and the module's text base instead of hard-coding drgn's.
#[test]
fn oops_module_symbol() {
    let Some(dir) = fixtures::set("x86_64-6.1-oops") else {
        return;
    };
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let rip_line = console
        .lines()
        .find(|l| l.contains("RIP: 0010:") && l.contains("[fixture_oops]"))
        .expect("the oops RIP line");
    let shown = rip_line.split("RIP: 0010:").nth(1).unwrap().trim();
    let (func, rest) = shown.split_once('+').unwrap();
    let (off, size) = rest
        .split_whitespace()
        .next()
        .unwrap()
        .split_once('/')
        .unwrap();
    let off = u64::from_str_radix(off.trim_start_matches("0x"), 16).unwrap();
    let size = u64::from_str_radix(size.trim_start_matches("0x"), 16).unwrap();
    for dump in ["vmcore.elf", "mdf.zlib-d31"] {
        let Some(k) = open(&dir, dump) else { continue };
        let mods = k.module_symbols().unwrap();
        assert!(mods.problems.is_empty(), "{:?}", mods.problems);
        let m = mods
            .modules
            .iter()
            .find(|m| m.name == "fixture_oops")
            .expect("fixture_oops loaded");
        assert!(m.symbols_error.is_none(), "{:?}", m.symbols_error);
        // trigger_write is the module's first function: its text starts with it (drgn above)
        let base = m.text[0].0;
        let (sym, module) = k.code_symbol(base + off);
        let sym = sym.expect("a symbol");
        assert_eq!(module.as_deref(), Some("fixture_oops"));
        assert_eq!(
            (sym.name.as_str(), sym.start, sym.size),
            (func, base, size),
            "{dump}"
        );
        // a return address just past the function's end names the function itself (pc - 1)
        let (last, _) = k.code_symbol(base + size - 1);
        assert_eq!(last.unwrap().name, func);
        // another module's text is another module
        let other = mods
            .modules
            .iter()
            .find(|m| m.name == "qemu_fw_cfg")
            .unwrap();
        let (_, module) = k.code_symbol(other.text[0].0);
        assert_eq!(module.as_deref(), Some("qemu_fw_cfg"));
        // and the kernel image is not a module
        let panic = k.symbols().address("panic").unwrap();
        let (s, module) = k.code_symbol(panic.0 + 1);
        assert_eq!((s.unwrap().name.as_str(), module), ("panic", None));
    }
}

/// The `func+off/size` entries of the console's first `Call Trace:` after `marker`, reliable ones
/// only (`?` marks a guess), without module entries.
fn console_trace(dir: &Path, marker: &str) -> Vec<(String, u64, u64)> {
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    let after = &console[console.find(marker).expect("marker in console.log")..];
    let trace = &after[after.find("Call Trace:").expect("a Call Trace")..];
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    trace
        .lines()
        .skip(1)
        .map(|l| l.split_once("] ").map_or(l, |(_, r)| r).trim())
        .take_while(|l| !l.starts_with("</TASK>") && !l.starts_with("RIP:"))
        .filter(|l| !l.starts_with('<') && !l.starts_with('?') && !l.contains('['))
        .filter_map(|l| {
            let (f, rest) = l.split_once('+')?;
            let (o, z) = rest.split_once('/')?;
            Some((f.to_string(), hex(o), hex(z)))
        })
        .collect()
}

/// Frames named on the real kdump dump, from the symbol table and the DWARF lines. The panic
/// CPU's registers (its crash_notes, exact) stop in `__crash_kexec` with `crash_setup_regs`
/// inlined, as drgn 0.3.0 says of the same dump:
///
/// ```text
/// $ drgn -q -c vmcore.raw -s vmlinux  # prog.crashed_thread().stack_trace()
/// #0  crash_setup_regs (arch/x86/include/asm/kexec.h:115:15)
/// #1  __crash_kexec (kernel/kexec_core.c:974:4)
/// #2  panic (kernel/panic.c:358:3)
/// #3  sysrq_handle_crash (drivers/tty/sysrq.c:155:2)
/// ```
///
/// and every reliable entry of the console's panic `Call Trace` (the kernel's own `%pB`:
/// `sysrq_handle_crash+0x16/0x20`), taken as a return address, names the same function at the
/// same offset, with a source line. The sizes are the ELF symbols' own, as drgn prints them; the
/// kernel's count up to the next symbol, alignment padding included (`sysrq_handle_crash` 0x16
/// here, 0x20 on the console).
#[test]
fn kdump_frames_symbolized_with_lines() {
    use vmcore_report::unwind::{Frame, Method, StackKind};
    let Some(dir) = fixtures::set("x86_64-6.1-kdump") else {
        return;
    };
    let Some(k) = open(&dir, "vmcore.raw") else {
        return;
    };
    let frame = |pc: u64, interrupted: bool| Frame {
        pc,
        sp: 0,
        cfa: None,
        interrupted,
        method: Method::Start,
        reliable: true,
        stack: StackKind::Task,
        regs: None,
    };
    let cpus = k.cpu_contexts().unwrap();
    let p = cpus.iter().find(|c| c.is_panic).unwrap();
    let f0 = k.symbolize_frame(&frame(p.gregs[RIP], true), &[]);
    assert_eq!(f0.symbol.as_deref(), Some("__crash_kexec"), "{f0:?}");
    assert_eq!(f0.module, None);
    let inl = f0.inlined.first().expect("an inlined function");
    assert_eq!(inl.function, "crash_setup_regs", "{f0:?}");
    let src = |s: &Option<vmcore_report::kernel::stack::SourceLoc>| {
        s.as_ref().map(|s| s.file.clone()).unwrap_or_default()
    };
    assert!(src(&inl.source) == "arch/x86/include/asm/kexec.h", "{f0:?}");
    assert_eq!(src(&f0.source), "kernel/kexec_core.c", "{f0:?}");

    let entries = console_trace(&dir, "Kernel panic - not syncing");
    assert!(entries.len() >= 5, "{entries:?}");
    for (func, o, size) in &entries {
        let start = k.symbols().address(func).expect("console symbol").0;
        let f = k.symbolize_frame(&frame(start + o, false), &[]);
        assert_eq!(
            (f.symbol.as_deref(), f.offset),
            (Some(func.as_str()), *o),
            "{func}+{o:#x}"
        );
        // the ELF size: the function itself, where the kernel counts up to the next symbol
        assert!(f.size > 0 && f.size <= *size && f.offset <= f.size, "{f:?}");
        assert!(f.source.is_some(), "{func}: {f:?}");
    }
}

/// 6.4+ modules (`mem[MOD_TEXT]`) on the 6.12 set: the module's text starts where the live
/// `/proc/modules` said (truth.txt), begins with a `__pfx_` padding symbol that names nothing,
/// and its first function follows. drgn 0.3.0 on the same dump (`load_module_kallsyms`, symbols
/// in `mem[0]` by address):
///
/// ```text
/// qemu_fw_cfg 0xffffffffc055f000 0x1000
///    __pfx_fw_cfg_sysfs_attr_show 0x0 0x10 SymbolKind.FUNC
///    fw_cfg_sysfs_attr_show 0x10 0x19 SymbolKind.FUNC
///    __pfx_fw_cfg_showrev 0x30 0x10 SymbolKind.FUNC
///    fw_cfg_showrev 0x40 0x25 SymbolKind.FUNC
/// ```
#[test]
fn modules_6_12_mem_layout() {
    let Some(dir) = fixtures::set("x86_64-6.12") else {
        return;
    };
    let truth = std::fs::read_to_string(dir.join("truth.txt")).unwrap();
    let live = truth
        .lines()
        .skip_while(|l| *l != "---modules---")
        .find(|l| l.starts_with("qemu_fw_cfg "))
        .expect("qemu_fw_cfg in the live /proc/modules");
    let base = u64::from_str_radix(
        live.split_whitespace()
            .last()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    for dump in ["vmcore.elf", "mdf.zlib-d23"] {
        let Some(k) = open(&dir, dump) else { continue };
        let mods = k.module_symbols().unwrap();
        let m = mods
            .modules
            .iter()
            .find(|m| m.name == "qemu_fw_cfg")
            .expect("qemu_fw_cfg");
        assert!(m.symbols_error.is_none(), "{:?}", m.symbols_error);
        assert_eq!(m.text[0].0, base, "{dump}");
        let modname = Some("qemu_fw_cfg".to_string());
        assert_eq!(k.code_symbol(base), (None, modname.clone()), "{dump}");
        let (sym, module) = k.code_symbol(base + 0x11);
        let sym = sym.expect("the first function");
        assert_eq!(module, modname);
        assert!(sym.name.starts_with("fw_cfg_"), "{sym:?}");
        assert_eq!(sym.start, base + 0x10);
        assert!(sym.size > 1 && sym.size <= 0x20, "{sym:?}");
    }
}

/// s390x's running CPUs on the real dumps: the panic CPU's trace holds the panic's console
/// `Call Trace` from `panic` on, in order (the console's `%pS` entries at `+0x0`, the return
/// from a call that never returns named after the next function, are left out); the other CPU,
/// stopped by the panic's external call on its async stack, unwinds through the interrupt's
/// `pt_regs` onto its task stack and ends there, not on a memory stop.
#[test]
fn s390x_running_cpus_unwind_through_their_stacks() {
    use common::stacks::subsequence_mismatch;
    use vmcore_report::kernel::stack::Backtracer;
    use vmcore_report::unwind::StopReason;
    for set in ["s390x-6.1", "s390x-6.12"] {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        // s390x prints ` [<000003ffff3f4ed8>] panic+0x118/0x318 ` per entry
        // (arch/s390/kernel/dumpstack.c), after the panic line's `Call Trace:`
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
        let after = &console[console.find("Kernel panic - not syncing").unwrap()..];
        let after = &after[after.find("Call Trace:").expect("the panic's Call Trace")..];
        let entries: Vec<(String, u64)> = after
            .lines()
            .skip(1)
            .map_while(|l| {
                let e = l.split(">] ").nth(1)?.split_whitespace().next()?;
                let (f, rest) = e.split_once('+')?;
                let off =
                    u64::from_str_radix(rest.split('/').next()?.strip_prefix("0x")?, 16).ok()?;
                Some((f.to_string(), off))
            })
            .collect();
        let want: Vec<&str> = entries
            .iter()
            .skip_while(|(f, _)| f != "panic")
            .filter(|(_, off)| *off != 0)
            .map(|(f, _)| f.as_str())
            .collect();
        assert!(want.len() >= 6, "{set}: console trace {want:?}");
        for dump in fixtures::dumps(&dir) {
            let name = dump.file_name().unwrap().to_string_lossy().to_string();
            let k = common::kernel::open(&dump, &dir.join("vmlinux"));
            let bt = Backtracer::new(&k).unwrap();
            let cpus = k.cpu_contexts().unwrap();
            assert_eq!(cpus.len(), 2, "{set}/{name}");
            for c in &cpus {
                let task = c.task.expect("a current task");
                let tr = bt.trace(VirtAddr(task)).unwrap();
                let have: Vec<&str> = tr
                    .frames
                    .iter()
                    .filter_map(|f| f.symbol.as_deref())
                    .collect();
                assert!(
                    !matches!(tr.stop, StopReason::Memory { .. }),
                    "{set}/{name}: CPU {} stopped on {:?}: {have:?}",
                    c.cpu,
                    tr.stop
                );
                if c.is_panic {
                    if let Some(i) = subsequence_mismatch(&want, &have) {
                        panic!(
                            "{set}/{name}: console frame {i} ({}) not in order\n console: {want:?}\n ours: {have:?}",
                            want[i]
                        );
                    }
                } else {
                    let kinds: Vec<StackKind> = tr.frames.iter().map(|f| f.stack).collect();
                    assert!(
                        kinds.contains(&StackKind::Irq) && kinds.last() == Some(&StackKind::Task),
                        "{set}/{name}: CPU {}: {have:?} on {kinds:?}",
                        c.cpu
                    );
                }
            }
            eprintln!("{set}/{name}: both CPUs unwound through their stacks");
        }
    }
}
