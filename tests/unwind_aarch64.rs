//! The arm64 unwinder on synthetic stacks (memory as a map of words, `.debug_frame` written with
//! `gimli::write`), and on the real aarch64-6.1 dump against drgn.
//!
//! The synthetic trace (runtime addresses; link-time + [`KASLR`]): an IRQ handler `f_a` (CFI)
//! called from `f_b` (CFI) on the IRQ stack, whose saved frame pointer leads to the task stack
//! and `f_c` (no CFI: frame-record fallback), `f_d` (CFI, reached with only a lower bound for
//! its stack pointer), a return into the exception entry code (`el1h_64_irq`-like stub), the
//! `pt_regs` saved there, the interrupted `f_e`, `f_f`, and a `ret_from_fork`-like stub whose
//! frame pointer is the task's final frame record. Every return address on the stack is
//! PAC-signed.

mod common;

use common::stackmem::{Fde, MapMem, aarch64_frame, debug_frame, stacks};
use gimli::RunTimeEndian;
use gimli::write::{CallFrameInstruction, Expression};
use vmcore_report::addr::{Arch, Endian, VirtAddr};
use vmcore_report::unwind::aarch64::{Aarch64Unwinder, PtRegsLayout, strip_pac};
use vmcore_report::unwind::aarch64_regs::{FP, LR, PC, PSTATE, SP};
use vmcore_report::unwind::cfi::Cfi;
use vmcore_report::unwind::{
    MAX_FRAMES, Method, Regs, StackKind, StopReason, TextRanges, Unwound, unwind,
};

const KASLR: u64 = 0x1230_0000;
const LINK_TEXT: u64 = 0xffff_8000_0800_0000;
const PAC_MASK: u64 = 0xffff_0000_0000_0000;
/// The IRQ stack and the task stack, 16 KiB each.
const IRQ: u64 = 0xffff_8000_1000_0000;
const TASK: u64 = 0xffff_8000_2000_0000;
const STACK_SIZE: u64 = 0x4000;
/// 6.1's `struct pt_regs`: 336 bytes, x0 at 0, sp 248, pc 256, pstate 264, stackframe 304.
const PT_REGS: PtRegsLayout = PtRegsLayout {
    size: 336,
    regs: 0,
    sp: 248,
    pc: 256,
    pstate: 264,
    stackframe: 304,
};
const FINAL_RECORD: u64 = TASK + STACK_SIZE - 336 + 304;

// Link-time function addresses.
const STUB: u64 = LINK_TEXT + 0x400; // exception entry text: [LINK_TEXT, LINK_TEXT + 0x1000)
const F_A: u64 = LINK_TEXT + 0x1_0000;
const F_B: u64 = LINK_TEXT + 0x1_0100;
const F_C: u64 = LINK_TEXT + 0x1_0200; // no CFI
const F_D: u64 = LINK_TEXT + 0x1_0300;
const F_E: u64 = LINK_TEXT + 0x1_0400;
const F_F: u64 = LINK_TEXT + 0x1_0500;
const RFF: u64 = LINK_TEXT + 0x1_0600; // no CFI

/// Runtime address.
fn rt(link: u64) -> u64 {
    link + KASLR
}

/// A return address signed with a pointer-authentication code in bits 63..56 and 54..48
/// (bit 55, which selects the kernel half, kept).
fn sign(addr: u64) -> u64 {
    (addr & 0x0000_ffff_ffff_ffff) | 0x2b9f_0000_0000_0000
}

fn cfi_bytes() -> Vec<u8> {
    debug_frame(
        RunTimeEndian::Little,
        4,
        30,
        31,
        vec![
            aarch64_frame(F_A, 0x100, 32),
            aarch64_frame(F_B, 0x100, 48),
            aarch64_frame(F_D, 0x100, 64),
            aarch64_frame(F_E, 0x100, 32),
            aarch64_frame(F_F, 0x100, 16),
        ],
    )
}

fn text() -> TextRanges {
    TextRanges::new([(rt(LINK_TEXT), rt(LINK_TEXT + 0x10_0000))])
}

fn unwinder(cfi: Option<&[u8]>) -> Aarch64Unwinder<'_> {
    let mut u = Aarch64Unwinder::new(text())
        .with_entry_text(TextRanges::new([(rt(LINK_TEXT), rt(LINK_TEXT + 0x1000))]))
        .with_pt_regs(PT_REGS)
        .with_pac_mask(PAC_MASK);
    if let Some(b) = cfi {
        u = u.with_cfi(Cfi::new(
            Arch::Aarch64,
            Endian::Little,
            Some(b),
            None,
            KASLR,
        ));
    }
    u
}

fn both_stacks() -> vmcore_report::unwind::Stacks {
    stacks(&[
        (StackKind::Irq, IRQ, IRQ + STACK_SIZE),
        (StackKind::Task, TASK, TASK + STACK_SIZE),
    ])
}

/// The words of the trace described in the module documentation.
fn memory() -> MapMem {
    let mut m = MapMem::default();
    // f_a's record (frame 32 bytes at IRQ+0x3e00): f_b's fp, return into f_b.
    m.put(IRQ + 0x3e00, IRQ + 0x3e20)
        .put(IRQ + 0x3e08, sign(rt(F_B) + 0x30));
    // f_b's record at IRQ+0x3e20: the task stack's f_c record, return into f_c.
    m.put(IRQ + 0x3e20, TASK + 0x3000)
        .put(IRQ + 0x3e28, sign(rt(F_C) + 0x40));
    // f_c's record (no CFI): f_d's fp, return into f_d.
    m.put(TASK + 0x3000, TASK + 0x3100)
        .put(TASK + 0x3008, sign(rt(F_D) + 0x50));
    // f_d's record: the pt_regs' embedded record, return into the entry stub.
    let regs = TASK + 0x3200;
    m.put(TASK + 0x3100, regs + 304)
        .put(TASK + 0x3108, sign(rt(STUB) + 0x84));
    // The pt_regs: x0..x30, sp, pc, pstate (EL1h, DAIF masked), and its embedded record.
    for i in 0..31 {
        m.put(regs + 8 * i, 0x1000 + i);
    }
    m.put(regs + 29 * 8, TASK + 0x3400);
    m.put(regs + 248, TASK + 0x3400)
        .put(regs + 256, rt(F_E) + 0x40)
        .put(regs + 264, 0x3c5);
    m.put(regs + 304, TASK + 0x3400)
        .put(regs + 312, rt(F_E) + 0x40);
    // f_e's record (interrupted after its prologue): f_f's fp, return into f_f.
    m.put(TASK + 0x3400, TASK + 0x3420)
        .put(TASK + 0x3408, sign(rt(F_F) + 0x18));
    // f_f's record: the final record, return into the ret_from_fork-like stub.
    m.put(TASK + 0x3420, FINAL_RECORD)
        .put(TASK + 0x3428, sign(rt(RFF) + 0x8));
    // The final record itself, zeroed as entry.S leaves it.
    m.put(FINAL_RECORD, 0).put(FINAL_RECORD + 8, 0);
    m
}

/// Frame 0: in f_a past its prologue, on the IRQ stack.
fn start() -> Regs {
    let mut r = Regs::default();
    r.set(PC, rt(F_A) + 0x20);
    r.set(SP, IRQ + 0x3e00);
    r.set(FP, IRQ + 0x3e00);
    r.set(LR, sign(rt(F_B) + 0x30));
    r
}

fn summary(u: &Unwound) -> Vec<(u64, u64, Method, StackKind, bool)> {
    u.frames
        .iter()
        .map(|f| (f.pc, f.sp, f.method, f.stack, f.interrupted))
        .collect()
}

#[test]
fn cfi_frame_records_exception_and_stack_switch() {
    let cfi = cfi_bytes();
    let u = unwinder(Some(&cfi));
    let got = unwind(&u, start(), &memory(), &both_stacks());
    use Method::*;
    use StackKind::*;
    assert_eq!(
        summary(&got),
        vec![
            (rt(F_A) + 0x20, IRQ + 0x3e00, Start, Irq, true),
            (rt(F_B) + 0x30, IRQ + 0x3e20, DwarfCfi, Irq, false),
            (rt(F_C) + 0x40, IRQ + 0x3e50, DwarfCfi, Irq, false),
            // The record gives no stack pointer: the lowest possible, fp + 16.
            (rt(F_D) + 0x50, TASK + 0x3010, FrameRecord, Task, false),
            // f_d's CFA from its frame pointer (x29 + 64), not from the guessed sp.
            (rt(STUB) + 0x84, TASK + 0x3140, DwarfCfi, Task, false),
            (rt(F_E) + 0x40, TASK + 0x3400, PtRegs, Task, true),
            (rt(F_F) + 0x18, TASK + 0x3420, DwarfCfi, Task, false),
            (rt(RFF) + 0x8, TASK + 0x3430, DwarfCfi, Task, false),
        ]
    );
    assert_eq!(got.stop, StopReason::EndOfStack);
    assert!(
        !got.frames[3].reliable,
        "a frame-record frame is a heuristic"
    );
    // The CFA of the rule that found f_b: f_a's, f_b's stack pointer.
    assert_eq!(got.frames[1].cfa, Some(IRQ + 0x3e20));
    let regs = got.frames[5]
        .regs
        .as_ref()
        .expect("the interrupted frame keeps its registers");
    assert_eq!(regs.get(3), Some(0x1003));
    assert_eq!(regs.get(PSTATE), Some(0x3c5));
    assert_eq!(regs.get(FP), Some(TASK + 0x3400));
}

#[test]
fn frame_records_alone_follow_the_same_chain() {
    let got = unwind(&unwinder(None), start(), &memory(), &both_stacks());
    let pcs: Vec<u64> = got.frames.iter().map(|f| f.pc).collect();
    assert_eq!(
        pcs,
        [
            rt(F_A) + 0x20,
            rt(F_B) + 0x30,
            rt(F_C) + 0x40,
            rt(F_D) + 0x50,
            rt(STUB) + 0x84,
            rt(F_E) + 0x40,
            rt(F_F) + 0x18,
            rt(RFF) + 0x8
        ]
    );
    assert_eq!(got.frames[5].method, Method::PtRegs);
    assert!(
        got.frames
            .iter()
            .skip(1)
            .filter(|f| f.method != Method::PtRegs)
            .all(|f| f.method == Method::FrameRecord)
    );
    assert_eq!(got.stop, StopReason::EndOfStack);
}

#[test]
fn pac_bits_are_stripped_only_with_the_mask() {
    let u = Aarch64Unwinder::new(text()).with_pt_regs(PT_REGS);
    let got = unwind(&u, start(), &memory(), &both_stacks());
    assert_eq!(got.frames.len(), 1);
    assert_eq!(
        got.stop,
        StopReason::BadAddress {
            pc: sign(rt(F_B) + 0x30)
        }
    );
    // The kernel's rule (ptrauth_clear_pac): bit 55 set → a kernel address, OR the mask in;
    // clear → AND it out. Unsigned addresses are unchanged.
    assert_eq!(strip_pac(sign(rt(F_B)), PAC_MASK), rt(F_B));
    assert_eq!(strip_pac(rt(F_B), PAC_MASK), rt(F_B));
    assert_eq!(
        strip_pac(0x0012_0000_0040_1000, PAC_MASK),
        0x0000_0000_0040_1000
    );
}

/// 6.13+: the pt_regs' record is `{0, 0, FRAME_META_TYPE_PT_REGS}` and the task's last one
/// `{0, 0, FRAME_META_TYPE_FINAL}`, found by the frame-record walk without any entry text.
#[test]
fn frame_record_metadata_of_6_13() {
    let mut m = MapMem::default();
    let regs = TASK + 0x2000;
    let meta = regs + 304;
    // frame 0's record → the metadata record.
    m.put(TASK + 0x1f00, meta)
        .put(TASK + 0x1f08, rt(F_D) + 0x10);
    m.put(meta, 0).put(meta + 8, 0).put(meta + 16, 2);
    for i in 0..31 {
        m.put(regs + 8 * i, 0);
    }
    m.put(regs + 29 * 8, TASK + 0x2400)
        .put(regs + 248, TASK + 0x23f0)
        .put(regs + 256, rt(F_E) + 0x44)
        .put(regs + 264, 0x5);
    // The interrupted frame's record → a FINAL record that is not at the top of the stack
    // (the metadata type alone ends the walk).
    m.put(TASK + 0x2400, TASK + 0x2800)
        .put(TASK + 0x2408, rt(F_F) + 0x20);
    m.put(TASK + 0x2800, 0)
        .put(TASK + 0x2808, 0)
        .put(TASK + 0x2810, 1);
    let u = Aarch64Unwinder::new(text()).with_pt_regs(PT_REGS);
    let mut r = Regs::default();
    r.set(PC, rt(F_C) + 0x8);
    r.set(SP, TASK + 0x1f00);
    r.set(FP, TASK + 0x1f00);
    let got = unwind(
        &u,
        r,
        &m,
        &stacks(&[(StackKind::Task, TASK, TASK + STACK_SIZE)]),
    );
    let pcs: Vec<(u64, Method)> = got.frames.iter().map(|f| (f.pc, f.method)).collect();
    assert_eq!(
        pcs,
        [
            (rt(F_C) + 0x8, Method::Start),
            (rt(F_D) + 0x10, Method::FrameRecord),
            (rt(F_E) + 0x44, Method::PtRegs),
            (rt(F_F) + 0x20, Method::FrameRecord),
        ]
    );
    assert_eq!(got.stop, StopReason::EndOfStack);
}

#[test]
fn user_mode_registers_in_the_middle_stop_the_trace() {
    let mut m = memory();
    let regs = TASK + 0x3200;
    m.put(regs + 264, 0x0); // EL0t
    let cfi = cfi_bytes();
    let got = unwind(&unwinder(Some(&cfi)), start(), &m, &both_stacks());
    assert_eq!(got.frames.len(), 5);
    assert_eq!(got.stop, StopReason::UserMode { pc: rt(F_E) + 0x40 });
}

/// Before 5.16 an idle task's outermost record, saved by `start_kernel`'s prologue from the
/// x29 and x30 its entry code zeroed, is `{0, 0}`, the 0 signed when the kernel uses pointer
/// authentication (aarch64-5.10: `0x0002000000000000`): the end of the stack (5.10's
/// `unwind_frame()` stops there), not a return to address 0, read through the CFI or the
/// frame-record chain alike.
#[test]
fn a_zeroed_record_ends_the_stack_signed_or_not() {
    const SIGNED_ZERO: u64 = 0x0002_0000_0000_0000;
    let cfi = cfi_bytes();
    for lr in [0, SIGNED_ZERO] {
        let mut m = memory();
        m.put(IRQ + 0x3e00, 0).put(IRQ + 0x3e08, lr);
        for u in [unwinder(Some(&cfi)), unwinder(None)] {
            let got = unwind(&u, start(), &m, &both_stacks());
            assert_eq!(got.frames.len(), 1, "lr {lr:#x}");
            assert_eq!(got.stop, StopReason::EndOfStack, "lr {lr:#x}");
        }
        // a zero return address under a live frame pointer is still corrupt
        m.put(IRQ + 0x3e00, IRQ + 0x3e20);
        let got = unwind(&unwinder(Some(&cfi)), start(), &m, &both_stacks());
        assert_eq!(got.stop, StopReason::BadAddress { pc: 0 }, "lr {lr:#x}");
    }
}

#[test]
fn a_corrupt_return_address_stops_as_bad_address() {
    let mut m = memory();
    m.put(TASK + 0x3008, 0xdead_beef);
    let cfi = cfi_bytes();
    let got = unwind(&unwinder(Some(&cfi)), start(), &m, &both_stacks());
    assert_eq!(got.frames.len(), 3);
    assert_eq!(got.stop, StopReason::BadAddress { pc: 0xdead_beef });
}

/// Frame 0 in f_c with its record at TASK+0x1000 holding `next_fp` and a return into f_c.
fn one_record(next_fp: u64) -> Unwound {
    let mut m = MapMem::default();
    m.put(TASK + 0x1000, next_fp)
        .put(TASK + 0x1008, rt(F_C) + 0x10);
    let mut r = Regs::default();
    r.set(PC, rt(F_C) + 0x4);
    r.set(SP, TASK + 0x1000);
    r.set(FP, TASK + 0x1000);
    unwind(&unwinder(None), r, &m, &both_stacks())
}

#[test]
fn a_record_pointing_at_itself_is_a_loop() {
    let got = one_record(TASK + 0x1000);
    assert_eq!(got.frames.len(), 2);
    assert_eq!(got.stop, StopReason::Loop { sp: TASK + 0x1010 });
}

#[test]
fn a_record_off_the_stacks_stops_with_its_address() {
    let got = one_record(0x1234_5678);
    assert_eq!(got.frames.len(), 2);
    assert!(matches!(
        got.stop,
        StopReason::Memory {
            addr: 0x1234_5678,
            ..
        }
    ));
}

#[test]
fn a_deep_chain_is_cut_at_the_depth_bound() {
    let mut m = MapMem::default();
    let big = stacks(&[(StackKind::Task, TASK, TASK + 0x10_0000)]);
    for i in 0..400u64 {
        let fp = TASK + 0x100 + 32 * i;
        m.put(fp, fp + 32).put(fp + 8, rt(F_C) + 4 * (i % 64));
    }
    let mut r = Regs::default();
    r.set(PC, rt(F_A));
    r.set(SP, TASK + 0x100);
    r.set(FP, TASK + 0x100);
    let got = unwind(&unwinder(None), r, &m, &big);
    assert_eq!(got.frames.len(), MAX_FRAMES);
    assert_eq!(got.stop, StopReason::MaxDepth);
}

fn single_fde(rows: Vec<(u32, CallFrameInstruction)>) -> Vec<u8> {
    debug_frame(
        RunTimeEndian::Little,
        4,
        30,
        31,
        vec![Fde {
            start: F_A,
            len: 0x100,
            rows,
        }],
    )
}

#[test]
fn a_dwarf_expression_rule_is_unsupported() {
    let mut e = Expression::new();
    e.op_breg(gimli::Register(31), 16);
    let cfi = single_fde(vec![(0, CallFrameInstruction::CfaExpression(e))]);
    let got = unwind(&unwinder(Some(&cfi)), start(), &memory(), &both_stacks());
    assert_eq!(got.frames.len(), 1);
    assert!(matches!(got.stop, StopReason::Unsupported { pc, .. } if pc == rt(F_A) + 0x20));
}

#[test]
fn an_undefined_return_address_ends_the_stack() {
    let cfi = single_fde(vec![(
        0,
        CallFrameInstruction::Undefined(gimli::Register(30)),
    )]);
    let got = unwind(&unwinder(Some(&cfi)), start(), &memory(), &both_stacks());
    assert_eq!(got.frames.len(), 1);
    assert_eq!(got.stop, StopReason::EndOfStack);
}

#[test]
fn the_fde_index_covers_only_its_ranges() {
    let cfi = cfi_bytes();
    let c = Cfi::new(Arch::Aarch64, Endian::Little, Some(&cfi), None, KASLR);
    assert_eq!(c.fde_count(), 5);
    assert!(c.covers(rt(F_A)));
    assert!(c.covers(rt(F_A) + 0xff));
    assert!(!c.covers(rt(F_C) + 0x10));
    assert!(
        !c.covers(F_A),
        "link-time addresses are shifted by the KASLR offset"
    );
}

#[test]
fn prstatus_and_register_names() {
    let a = vmcore_report::kernel::stack::arch_stack(Arch::Aarch64).expect("arm64 unwinds");
    let gregs: Vec<u64> = (0..34).map(|i| 0x100 + i).collect();
    let r = a.prstatus_regs(&gregs);
    assert_eq!(r.get(0), Some(0x100));
    assert_eq!(r.get(FP), Some(0x100 + 29));
    assert_eq!(r.get(SP), Some(0x100 + 31));
    assert_eq!(r.get(PC), Some(0x100 + 32));
    assert_eq!(r.get(PSTATE), Some(0x100 + 33));
    let names = a.register_names();
    assert_eq!(names.len(), 34);
    assert_eq!(names[0], ("pc", PC));
}

/// One task of drgn's `stacks.txt`: its address, pid, the CPU whose registers drgn unwound it
/// from (running), and its physical frames (pc, sp when drgn knows it).
struct DrgnTask {
    addr: u64,
    pid: i64,
    running_on: Option<u32>,
    frames: Vec<(u64, Option<u64>)>,
    error: bool,
}

/// Parses the set's `drgn/stacks.txt`, written by `fixtures/peer-drgn.py` with every build of
/// the set (`prog.stack_trace(task)` of each CPU's idle and current task and of every task; one
/// `task ADDR pid PID comm COMM cpu CPU|- running yes|no` header, then `INDEX PC SP KIND NAME
/// SYMBOL MODULE FLAGS` per frame, KIND `inline` or `phys`). Only what this test compares is
/// kept.
fn drgn_stacks(text: &str) -> Vec<DrgnTask> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let mut tasks: Vec<DrgnTask> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = f.len();
        if f.first() == Some(&"task") && n >= 10 {
            // COMM may hold spaces: CPU and running are counted from the end.
            tasks.push(DrgnTask {
                addr: hex(f[1]).expect("task address"),
                pid: f[3].parse().expect("pid"),
                running_on: (f[n - 1] == "yes").then(|| f[n - 3].parse().expect("cpu")),
                frames: Vec::new(),
                error: false,
            });
        } else if line.starts_with("error:") {
            if let Some(t) = tasks.last_mut() {
                t.error = true;
            }
        } else if f.len() >= 8
            && f[3] == "phys"
            && let Some(t) = tasks.last_mut()
        {
            t.frames.push((hex(f[1]).expect("pc"), hex(f[2])));
        }
    }
    tasks
}

/// Every task of the aarch64-6.1 dump, unwound from its saved `thread.cpu_context` or, for the
/// task current on a CPU, from that CPU's PRSTATUS note (QEMU writes one per vCPU with `pr_pid`
/// = CPU + 1), against drgn's `prog.stack_trace(task)` of the same dump (`drgn/stacks.txt`):
/// the same physical frames (each pc), the same stack pointer wherever drgn knows it, and a
/// complete trace. The set was built from Debian's `linux-image-6.1.0-*-cloud-arm64`, with KASLR
/// and pointer authentication: the idle tasks end at `__primary_switched` /
/// `__secondary_switched`, kernel threads at `ret_from_fork`, user tasks at `el0t_64_sync` /
/// `el0t_64_irq`, and one CPU took the crash-stop IPI on its IRQ stack.
#[test]
fn real_aarch64_every_task_matches_drgn() {
    use vmcore_report::kernel::stack::{KernelMemory, arch_stack};
    let Some(dir) = common::fixtures::set("aarch64-6.1") else {
        return;
    };
    let Some(text) = common::fixtures::drgn_oracle(&dir, "stacks.txt") else {
        return;
    };
    let drgn = drgn_stacks(&text);
    assert!(drgn.len() > 50, "drgn's stacks.txt lists the tasks");
    let k = common::kernel::open(&dir.join("vmcore.elf"), &dir.join("vmlinux"));
    let arch = arch_stack(Arch::Aarch64).expect("arm64 unwinds");
    let unwinder = arch.unwinder(&k).expect("unwinder");
    let mem = KernelMemory(&k);
    let (mut compared, mut sps, mut irq) = (0, 0, 0);
    for t in drgn.iter().filter(|t| !t.error) {
        let task = VirtAddr(t.addr);
        let regs = match t.running_on {
            Some(cpu) => {
                let note = k
                    .info()
                    .cpus
                    .iter()
                    .find(|c| c.pid == cpu + 1)
                    .expect("QEMU's PRSTATUS note of the CPU");
                arch.prstatus_regs(&note.regs)
            }
            None => arch.inactive_regs(&k, task).expect("cpu_context"),
        };
        let stacks = arch.stacks(&k, task, t.running_on).expect("stacks");
        let got = unwind(&*unwinder, regs, &mem, &stacks);
        let what = format!("pid {} task {:#x}: {got:?}", t.pid, t.addr);
        let pcs: Vec<u64> = got.frames.iter().map(|f| f.pc).collect();
        let want: Vec<u64> = t.frames.iter().map(|f| f.0).collect();
        assert_eq!(pcs, want, "{what}");
        for (f, &(_, sp)) in got.frames.iter().zip(&t.frames) {
            if let Some(sp) = sp {
                assert_eq!(f.sp, sp, "{what}");
                sps += 1;
            }
        }
        assert_eq!(got.stop, StopReason::EndOfStack, "{what}");
        irq += usize::from(got.frames.iter().any(|f| f.stack == StackKind::Irq));
        compared += 1;
    }
    eprintln!("{compared} traces, {sps} stack pointers, {irq} through an IRQ stack: as drgn");
    assert!(compared > 50, "{compared} traces compared");
    assert!(sps > compared * 3, "{sps} stack pointers compared");
    assert!(irq >= 1, "a trace crosses an IRQ stack");
}

/// The unwinder trusts return addresses in module text: each module the live guest listed in
/// /proc/modules (`truth.txt`, its load address) is text to it, as is the kernel image.
#[test]
fn real_module_text_is_text() {
    use vmcore_report::kernel::stack::arch_stack;
    let Some(dir) = common::fixtures::set("aarch64-6.1") else {
        return;
    };
    let k = common::kernel::open(&dir.join("vmcore.elf"), &dir.join("vmlinux"));
    let truth = std::fs::read_to_string(dir.join("truth.txt")).expect("truth.txt");
    let bases: Vec<u64> = truth
        .lines()
        .skip_while(|l| *l != "---modules---")
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    assert!(!bases.is_empty(), "truth.txt lists the loaded modules");
    let unwinder = arch_stack(Arch::Aarch64)
        .expect("arm64 unwinds")
        .unwinder(&k)
        .expect("unwinder");
    for base in bases {
        assert!(unwinder.is_text(base + 0x10), "module text at {base:#x}");
    }
    let stext = k.symbols().address("_stext").expect("_stext").0;
    assert!(unwinder.is_text(stext));
    assert!(!unwinder.is_text(stext - 1));
}

/// The seed of the `cfi` fuzz target (fuzz/fuzz_targets/cfi.rs): this file's `.debug_frame`
/// with the FDEs at runtime addresses (the target's KASLR offset is 0), then the task stack of
/// [`memory`] from `TASK` on, with the starting pc, sp, x29 and x30 of the interrupted `f_e` in
/// its first four words:
/// `cargo test --release --test unwind_aarch64 -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cfi");
    std::fs::create_dir_all(&dir).unwrap();
    let cfi = debug_frame(
        RunTimeEndian::Little,
        4,
        30,
        31,
        [(F_A, 32), (F_B, 48), (F_D, 64), (F_E, 32), (F_F, 16)]
            .iter()
            .map(|&(f, size)| aarch64_frame(rt(f), 0x100, size))
            .collect(),
    );
    let m = memory();
    let mut stack: Vec<u8> = (0..STACK_SIZE / 8)
        .flat_map(|i| {
            m.words
                .get(&(TASK + 8 * i))
                .copied()
                .unwrap_or(0)
                .to_le_bytes()
        })
        .collect();
    for (i, v) in [rt(F_E) + 0x40, TASK + 0x3400, TASK + 0x3400, 0]
        .into_iter()
        .enumerate()
    {
        stack[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    let mut seed = (cfi.len() as u16).to_le_bytes().to_vec();
    seed.extend(&cfi);
    seed.extend(&stack);
    std::fs::write(dir.join("seed-trace"), seed).unwrap();
}
