//! The arm64 and s390x kernel-view parts of the backtraces (`kernel::stack::arch_stack`) on a
//! synthetic kernel: a sleeping task's saved registers, its stacks, and the arm64 unwinder the
//! view assembles (text bounds, `pt_regs` layout from DWARF, the final frame record).
//!
//! The synthetic kernel is the x86_64 one of tests/common/synthkernel.rs used as a host for typed
//! memory: the code under test reads members by DWARF name and memory through the view, whatever
//! the dump's architecture. One `struct thread_struct` carries both architectures' members
//! (arm64 `cpu_context`, s390x `ksp`). Every value is the test's own.

mod common;

use common::synthkernel::{KernelConfig, LINK_DATA, LINK_TEXT, SynthKernel};
use vmcore_report::addr::{Arch, VirtAddr};
use vmcore_report::kernel::stack::{KernelMemory, arch_stack};
use vmcore_report::unwind::{Method, StackKind, StackRange, StopReason, unwind};

const THREAD_SIZE: u64 = 0x4000;

struct Built {
    kernel: vmcore_report::kernel::Kernel,
    task: u64,
    stack: u64,
    irq_stack: u64,
    overflow: u64,
    text: u64,
    _dir: tempfile::TempDir,
}

fn build() -> Built {
    let cfg = KernelConfig::default();
    let mut k = SynthKernel::new(cfg.clone());
    let ulong = k.int("long unsigned int", 8, false);
    let int = k.int("int", 4, true);
    let ptr = k.ptr(None);
    let names = [
        "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "fp", "sp", "pc",
    ];
    let fields: Vec<(&str, _)> = names.iter().map(|n| (*n, ulong)).collect();
    let cpu_context = k.structure(Some("cpu_context"), &fields);
    let thread = k.structure(
        Some("thread_struct"),
        &[("cpu_context", cpu_context), ("ksp", ulong)],
    );
    let task_ty = k.structure(
        Some("task_struct"),
        &[("pid", int), ("stack", ptr), ("thread", thread)],
    );
    let regs31 = k.array(ulong, 31);
    let pair = k.array(ulong, 2);
    // {regs[31], sp, pc, pstate, stackframe[2]}: 288 bytes, stackframe at 272.
    k.structure(
        Some("pt_regs"),
        &[
            ("regs", regs31),
            ("sp", ulong),
            ("pc", ulong),
            ("pstate", ulong),
            ("stackframe", pair),
        ],
    );
    let stack_ty = k.array(ulong, THREAD_SIZE / 8);
    let overflow_ty = k.array(ulong, 512);
    k.global_at("_stext", ulong, LINK_TEXT);
    k.global_at("_etext", ulong, LINK_TEXT + 0x1_0000);
    k.global_at("__start_init_stack", ulong, LINK_DATA + 0x10_0000);
    k.global_at(
        "__end_init_stack",
        ulong,
        LINK_DATA + 0x10_0000 + THREAD_SIZE,
    );
    k.per_cpu_offsets(ulong);
    let irq_ptr = k.percpu("irq_stack_ptr", ptr);
    let overflow = k.percpu("overflow_stack", overflow_ty);
    let irq_stack = k.alloc_aligned(stack_ty, THREAD_SIZE).va;
    let on1 = k.on_cpu(&irq_ptr, 1);
    k.set(&on1, "", irq_stack);
    let overflow_va = k.on_cpu(&overflow, 1).va;

    let task = k.alloc(task_ty);
    let stack = k.alloc_aligned(stack_ty, THREAD_SIZE).va;
    let text = cfg.runtime(LINK_TEXT);
    k.set_all(&task, &[("pid", 42), ("stack", stack)]);
    // arm64: cpu_context, and one frame record leading to the final one at task_pt_regs().
    let ctx: Vec<(String, u64)> = (19..=28u64)
        .map(|r| (format!("thread.cpu_context.x{r}"), 0x1900 + r))
        .chain([
            ("thread.cpu_context.fp".into(), stack + 0x3f00),
            ("thread.cpu_context.sp".into(), stack + 0x3ee0),
            ("thread.cpu_context.pc".into(), text + 0x100),
        ])
        .collect();
    for (path, v) in &ctx {
        k.set(&task, path, *v);
    }
    let final_record = stack + THREAD_SIZE - 288 + 272;
    k.write_va(stack + 0x3f00, &final_record.to_le_bytes());
    k.write_va(stack + 0x3f08, &(text + 0x200).to_le_bytes());
    // s390x: ksp, and the r6..r15 __switch_to saved at ksp + 72.
    let ksp = stack + 0x3000;
    k.set(&task, "thread.ksp", ksp);
    for r in 6..=15u64 {
        let v = if r == 14 { text + 0x300 } else { 0x600 + r };
        k.write_va(ksp + 72 + 8 * (r - 6), &v.to_le_bytes());
    }

    let task_va = task.va;
    let (vmcore, vmlinux) = k.build();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("vmcore");
    let vm = dir.path().join("vmlinux");
    std::fs::write(&dump, vmcore).unwrap();
    std::fs::write(&vm, vmlinux).unwrap();
    Built {
        kernel: common::kernel::open(&dump, &vm),
        task: task_va,
        stack,
        irq_stack,
        overflow: overflow_va,
        text,
        _dir: dir,
    }
}

#[test]
fn aarch64_cpu_context_stacks_and_frame_records() {
    let b = build();
    let k = &b.kernel;
    let a = arch_stack(Arch::Aarch64).expect("arm64");
    let regs = a.inactive_regs(k, VirtAddr(b.task)).expect("cpu_context");
    for r in 19..=28u16 {
        assert_eq!(regs.get(r), Some(0x1900 + u64::from(r)));
    }
    assert_eq!(regs.get(29), Some(b.stack + 0x3f00));
    assert_eq!(regs.sp(Arch::Aarch64), Some(b.stack + 0x3ee0));
    assert_eq!(regs.pc(Arch::Aarch64), Some(b.text + 0x100));

    let sleeping = a.stacks(k, VirtAddr(b.task), None).expect("stacks");
    assert_eq!(
        sleeping.ranges,
        [StackRange {
            kind: StackKind::Task,
            start: b.stack,
            end: b.stack + THREAD_SIZE
        }]
    );
    let running = a.stacks(k, VirtAddr(b.task), Some(1)).expect("stacks");
    assert_eq!(
        running.ranges[1..],
        [
            StackRange {
                kind: StackKind::Irq,
                start: b.irq_stack,
                end: b.irq_stack + THREAD_SIZE
            },
            StackRange {
                kind: StackKind::Exception,
                start: b.overflow,
                end: b.overflow + 4096
            },
        ]
    );

    let u = a.unwinder(k).expect("unwinder");
    assert!(u.is_text(b.text) && !u.is_text(b.text + 0x1_0000));
    let got = unwind(&*u, regs, &KernelMemory(k), &sleeping);
    let frames: Vec<(u64, Method)> = got.frames.iter().map(|f| (f.pc, f.method)).collect();
    assert_eq!(
        frames,
        [
            (b.text + 0x100, Method::Start),
            (b.text + 0x200, Method::FrameRecord)
        ]
    );
    // The second record is task_pt_regs()->stackframe (from DWARF: 288 − 272 below the top).
    assert_eq!(got.stop, StopReason::EndOfStack);
}

#[test]
fn s390x_ksp_and_the_save_area() {
    let b = build();
    let k = &b.kernel;
    let s = arch_stack(Arch::S390x).expect("s390x");
    let regs = s.inactive_regs(k, VirtAddr(b.task)).expect("ksp");
    assert_eq!(regs.sp(Arch::S390x), Some(b.stack + 0x3000));
    assert_eq!(regs.pc(Arch::S390x), Some(b.text + 0x300));
    assert_eq!(regs.get(14), Some(b.text + 0x300));
    for r in 6..=13u16 {
        assert_eq!(regs.get(r), Some(0x600 + u64::from(r)));
    }
    let stacks = s.stacks(k, VirtAddr(b.task), Some(1)).expect("stacks");
    assert_eq!(
        stacks.ranges,
        [StackRange {
            kind: StackKind::Task,
            start: b.stack,
            end: b.stack + THREAD_SIZE
        }]
    );
}
