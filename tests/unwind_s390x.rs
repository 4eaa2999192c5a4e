//! The s390x back-chain unwinder on synthetic stacks (memory as a map of words). There is no
//! s390x fixture: these are the only checks of it.
//!
//! The frames follow the packed layout of `arch/s390/include/asm/stacktrace.h` as the test
//! author reads it: 160-byte frames, r6–r15 saved at 72 (so r14 at 136), the back chain at 152;
//! `struct pt_regs` with the psw at 8 and r0–r15 at 24, 200 bytes. The trace: an interrupt
//! handler `h1` on the async stack, its caller `h2`, the end of that stack's chain (back chain
//! 0) and the `pt_regs` above it, the interrupted `t1` on the task stack, `t2`, `t3`, `t4`, and
//! the `pt_regs` at the top of the task stack.

mod common;

use common::stackmem::{MapMem, stacks};
use vmcore_report::addr::Arch;
use vmcore_report::unwind::s390x::{S390xLayout, S390xUnwinder};
use vmcore_report::unwind::s390x_regs::{PSW_ADDR, PSW_MASK, SP};
use vmcore_report::unwind::{
    MAX_FRAMES, Method, Regs, StackKind, Stacks, StopReason, TextRanges, unwind,
};

const ASYNC: u64 = 0x0000_0000_0380_0000;
const TASK: u64 = 0x0000_0000_0390_0000;
const SIZE: u64 = 0x4000;
const KERNEL_PSW: u64 = 0x0704_c001_8000_0000;
const USER_PSW: u64 = 0x0705_c001_8000_0000;

const LAYOUT: S390xLayout = S390xLayout {
    frame_size: 160,
    back_chain: 152,
    gprs: 72,
    pt_regs_size: 200,
    pt_psw: 8,
    pt_gprs: 24,
};

fn unwinder() -> S390xUnwinder {
    S390xUnwinder::new(TextRanges::new([(0x10_0000, 0x20_0000)]), LAYOUT)
}

fn both() -> Stacks {
    stacks(&[
        (StackKind::Irq, ASYNC, ASYNC + SIZE),
        (StackKind::Task, TASK, TASK + SIZE),
    ])
}

/// A frame at `sp` whose back chain is `back_chain`.
fn frame(m: &mut MapMem, sp: u64, back_chain: u64) {
    m.put(sp + 152, back_chain);
}

/// What a callee saved into the frame at `sp`: r6..r15, r14 = `ret`.
fn saved(m: &mut MapMem, sp: u64, ret: u64) {
    for r in 6..=13u64 {
        m.put(sp + 72 + 8 * (r - 6), 0x600 + r);
    }
    m.put(sp + 136, ret).put(sp + 144, sp);
}

/// A `pt_regs` at `at`: psw, and r0..r15 with r15 = `r15`.
fn pt_regs(m: &mut MapMem, at: u64, mask: u64, addr: u64, r15: u64) {
    m.put(at + 8, mask).put(at + 16, addr);
    for r in 0..15u64 {
        m.put(at + 24 + 8 * r, 0x900 + r);
    }
    m.put(at + 24 + 8 * 15, r15);
}

const TOP_REGS: u64 = TASK + SIZE - 200;
const TOP_FRAME: u64 = TOP_REGS - 160;

fn memory() -> MapMem {
    let mut m = MapMem::default();
    // h1 (frame 0) at ASYNC+0x3000 → h2 at ASYNC+0x3100, which holds h1's saved r14.
    frame(&mut m, ASYNC + 0x3000, ASYNC + 0x3100);
    saved(&mut m, ASYNC + 0x3100, 0x10_0210);
    // h2's frame: back chain 0, the pt_regs right above it (sp + 160).
    frame(&mut m, ASYNC + 0x3100, 0);
    pt_regs(
        &mut m,
        ASYNC + 0x3100 + 160,
        KERNEL_PSW,
        0x10_0380,
        TASK + 0x3000,
    );
    // t1 (interrupted) at TASK+0x3000 → t2 at TASK+0x3100 → t3 at TASK+0x3200 → t4 at TOP_FRAME.
    frame(&mut m, TASK + 0x3000, TASK + 0x3100);
    saved(&mut m, TASK + 0x3100, 0x10_0420);
    frame(&mut m, TASK + 0x3100, TASK + 0x3200);
    saved(&mut m, TASK + 0x3200, 0x10_0500);
    frame(&mut m, TASK + 0x3200, TOP_FRAME);
    saved(&mut m, TOP_FRAME, 0x10_0600);
    frame(&mut m, TOP_FRAME, 0);
    pt_regs(&mut m, TOP_REGS, KERNEL_PSW, 0x10_0700, 0);
    m
}

fn start() -> Regs {
    let mut r = Regs::default();
    r.set(PSW_MASK, KERNEL_PSW);
    r.set(PSW_ADDR, 0x10_0100);
    r.set(SP, ASYNC + 0x3000);
    r
}

#[test]
fn back_chain_interrupt_and_stack_switch() {
    let got = unwind(&unwinder(), start(), &memory(), &both());
    let summary: Vec<_> = got
        .frames
        .iter()
        .map(|f| (f.pc, f.sp, f.method, f.stack, f.interrupted, f.reliable))
        .collect();
    use Method::*;
    use StackKind::*;
    assert_eq!(
        summary,
        vec![
            (0x10_0100, ASYNC + 0x3000, Start, Irq, true, true),
            // After registers saved at an interrupt the function may not have saved r14 yet.
            (0x10_0210, ASYNC + 0x3100, BackChain, Irq, false, false),
            (0x10_0380, TASK + 0x3000, PtRegs, Task, true, true),
            (0x10_0420, TASK + 0x3100, BackChain, Task, false, false),
            (0x10_0500, TASK + 0x3200, BackChain, Task, false, true),
            (0x10_0600, TOP_FRAME, BackChain, Task, false, true),
        ]
    );
    assert_eq!(got.stop, StopReason::EndOfStack);
    let regs = got.frames[2]
        .regs
        .as_ref()
        .expect("interrupted frame keeps its registers");
    assert_eq!(regs.get(3), Some(0x903));
    assert_eq!(regs.get(PSW_MASK), Some(KERNEL_PSW));
}

#[test]
fn a_sleeping_task_starts_at_its_saved_r14() {
    // thread.ksp = TASK+0x3100 holds, at r14's slot, the return into __schedule (t2 here).
    let mut r = Regs::default();
    r.set(SP, TASK + 0x3100);
    r.set(PSW_ADDR, 0x10_0420);
    r.set(14, 0x10_0420);
    let got = unwind(&unwinder(), r, &memory(), &both());
    let pcs: Vec<u64> = got.frames.iter().map(|f| f.pc).collect();
    assert_eq!(pcs, [0x10_0420, 0x10_0500, 0x10_0600]);
    assert!(got.frames.iter().all(|f| f.reliable));
    assert_eq!(got.frames[1].stack, StackKind::Task);
    assert_eq!(got.stop, StopReason::EndOfStack);
}

#[test]
fn callee_saved_registers_come_from_the_save_area() {
    let u = unwinder();
    let step = vmcore_report::unwind::Unwinder::step(&u, &start(), true, &memory(), &both());
    let vmcore_report::unwind::Step::Caller { regs, .. } = step else {
        panic!("a caller");
    };
    assert_eq!(regs.get(6), Some(0x606));
    assert_eq!(regs.get(13), Some(0x60d));
    assert_eq!(regs.get(14), Some(0x10_0210));
    assert_eq!(regs.get(SP), Some(ASYNC + 0x3100));
}

#[test]
fn a_user_psw_ends_in_user_mode() {
    let mut m = memory();
    pt_regs(&mut m, TOP_REGS, USER_PSW, 0x3ff_f000_1234, 0x3ff_ffff_f000);
    let got = unwind(&unwinder(), start(), &m, &both());
    assert_eq!(got.frames.len(), 6);
    assert_eq!(
        got.stop,
        StopReason::UserMode {
            pc: 0x3ff_f000_1234
        }
    );
}

#[test]
fn a_corrupt_return_address_stops_as_bad_address() {
    let mut m = memory();
    m.put(TASK + 0x3200 + 136, 0xdead_beef);
    let got = unwind(&unwinder(), start(), &m, &both());
    assert_eq!(got.frames.len(), 4);
    assert_eq!(got.stop, StopReason::BadAddress { pc: 0xdead_beef });
}

#[test]
fn a_back_chain_to_itself_is_a_loop() {
    let mut m = MapMem::default();
    frame(&mut m, TASK + 0x1000, TASK + 0x1000);
    saved(&mut m, TASK + 0x1000, 0x10_0100);
    let mut r = Regs::default();
    r.set(SP, TASK + 0x1000);
    r.set(PSW_ADDR, 0x10_0100);
    let got = unwind(&unwinder(), r, &m, &both());
    assert_eq!(got.frames.len(), 1);
    assert_eq!(got.stop, StopReason::Loop { sp: TASK + 0x1000 });
}

#[test]
fn a_back_chain_off_the_stacks_stops_with_its_address() {
    let mut m = MapMem::default();
    frame(&mut m, TASK + 0x1000, 0x4000_0000);
    let mut r = Regs::default();
    r.set(SP, TASK + 0x1000);
    r.set(PSW_ADDR, 0x10_0100);
    let got = unwind(&unwinder(), r, &m, &both());
    assert!(matches!(
        got.stop,
        StopReason::Memory {
            addr: 0x4000_0000,
            ..
        }
    ));
}

#[test]
fn a_deep_chain_is_cut_at_the_depth_bound() {
    let mut m = MapMem::default();
    let big = stacks(&[(StackKind::Task, TASK, TASK + 0x10_0000)]);
    for i in 0..400u64 {
        let sp = TASK + 160 * i;
        frame(&mut m, sp, sp + 160);
        saved(&mut m, sp + 160, 0x10_0000 + 2 * (i % 64));
    }
    let mut r = Regs::default();
    r.set(SP, TASK);
    r.set(PSW_ADDR, 0x10_0100);
    let got = unwind(&unwinder(), r, &m, &big);
    assert_eq!(got.frames.len(), MAX_FRAMES);
    assert_eq!(got.stop, StopReason::MaxDepth);
}

#[test]
fn prstatus_and_register_names() {
    let a = vmcore_report::kernel::stack::arch_stack(Arch::S390x).expect("s390x unwinds");
    let gregs: Vec<u64> = (0..36).map(|i| 0x100 + i).collect();
    let r = a.prstatus_regs(&gregs);
    assert_eq!(r.get(PSW_MASK), Some(0x100));
    assert_eq!(r.get(PSW_ADDR), Some(0x101));
    assert_eq!(r.get(0), Some(0x102));
    assert_eq!(r.get(SP), Some(0x102 + 15));
    let names = a.register_names();
    assert_eq!(names.len(), 18);
    assert_eq!(names[1], ("psw_addr", PSW_ADDR));
}
