//! The architecture-neutral side of backtraces on the real vmcores: which registers each CPU
//! has and where they came from, the panic CPU against the console's panic line, module symbols
//! against the console's oops line and drgn. Skipped, with one line, when the fixtures are
//! absent.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::fixtures;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::kernel::Kernel;
use vmcore_report::kernel::stack::RegsSource;

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
    let Some(dir) = fixtures::set("x86_64-6.1-kdump") else {
        return;
    };
    for dump in ["vmcore.raw", "mdf.zlib-d31"] {
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

/// A QEMU dump (no CRASHTIME): each possible CPU gets the note whose pr_pid is its number
/// plus one, whatever task it ran.
#[test]
fn qemu_dump_notes_by_cpu_number() {
    let Some(dir) = fixtures::set("x86_64-6.1-l4") else {
        return;
    };
    let Some(k) = open(&dir, "vmcore.elf") else {
        return;
    };
    assert!(k.vmcoreinfo().and_then(|v| v.crashtime).is_none());
    let cpus = k.cpu_contexts().unwrap();
    assert_eq!(cpus.len(), k.info().cpus.len());
    for c in &cpus {
        assert_eq!(c.regs_source, Some(RegsSource::PrstatusCpu), "{c:?}");
        let note = k
            .info()
            .cpus
            .iter()
            .find(|s| s.pid == c.cpu + 1)
            .expect("a note per vCPU");
        assert_eq!(c.gregs, note.regs, "CPU {}", c.cpu);
    }
    let (cpu, pid) = console_cpu_pid(&dir, "Kernel panic - not syncing");
    let p = cpus.iter().find(|c| c.is_panic).expect("a panic CPU");
    assert_eq!((p.cpu, p.pid), (cpu, Some(pid)));
}

/// The oops module's function, named from the module's own symbol table in the dump as the
/// console's oops line named it (`RIP: 0010:trigger_write+0x20/0x30 [fixture_oops]`), and at
/// drgn's address and size. drgn 0.3.0 on the same dump:
///
/// ```text
/// $ drgn -q -c vmcore.elf -s vmlinux script.py   # script: load_module_kallsyms(prog), then
///                                                # idx(prog, "trigger_write", None, True)
/// symbol trigger_write 0xffffffffc04c7000 0x30 SymbolBinding.LOCAL SymbolKind.FUNC
/// 0xffffffffc04c7020 trigger_write 0x20 0x30
/// fixture_oops 0xffffffffc04c7000 16384 4096 10    # name, core_layout base/size/text_size, num_symtab
/// qemu_fw_cfg 0xffffffffc04c1000 20480 4096 59
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
