//! The x86_64 ORC unwinder on synthetic tables and stacks: tables encoded byte by byte from the
//! documented layouts (tests/common/orc.rs, not the crate's decoder), stack memory as a map, and
//! the expected frames written out by hand.

mod common;

use common::orc::{FORMATS, MapMem, Spec, encode, tables};
use vmcore_report::unwind::orc::{
    EntryLayout, FormatEvidence, OrcError, OrcFormat, OrcTable, OrcTables, OrcType, detect_format,
};
use vmcore_report::unwind::x86_64::X86_64Unwinder;
use vmcore_report::unwind::x86_64_regs as r;
use vmcore_report::unwind::{
    MAX_FRAMES, Method, Regs, StackKind, StackRange, Stacks, StopReason, Unwound, unwind,
};

const TEXT: u64 = 0xffff_ffff_8100_0000;
/// Functions, 0x100 bytes each.
const A: u64 = TEXT + 0x100;
const B: u64 = TEXT + 0x200;
const C: u64 = TEXT + 0x300;
const D: u64 = TEXT + 0x400;
const F: u64 = TEXT + 0x500;
const G: u64 = TEXT + 0x600;
/// Entry code with a `pt_regs` at sp.
const P: u64 = TEXT + 0x700;
/// The IRQ-stack switch: the previous sp is at the top of the IRQ stack.
const Q: u64 = TEXT + 0x800;
/// A function whose CFA is r10 (entry code after a full `pt_regs`).
const R: u64 = TEXT + 0x900;
const TEXT_END: u64 = TEXT + 0x1000;
/// Where `.orc_unwind_ip` lies.
const IP_BASE: u64 = 0xffff_ffff_8200_0000;

const TASK: u64 = 0xffff_c900_0001_0000;
const IRQ: u64 = 0xffff_c900_0002_0000;
const S: u64 = TASK + 0x1000;

const USER_PC: u64 = 0x40_1000;

fn ortho_entries() -> Vec<(u64, Spec)> {
    vec![
        (TEXT, Spec::UNDEFINED),
        (A, Spec::call("SP", 16)),
        (B, Spec::call("BP", 16).with_bp("PREV_SP", -16)),
        (C, Spec::END),
        // D: no information up to D+5, where the interrupted instruction is.
        (D, Spec::UNDEFINED),
        (D + 5, Spec::call("SP", 8)),
        (F, Spec::call("BP", 16).with_bp("PREV_SP", -16)),
        (G, Spec::call("SP", 16)),
        (P, Spec::regs("SP", 0, false)),
        (Q, Spec::call("SP_INDIRECT", 8)),
        (R, Spec::call("R10", 0)),
        (TEXT_END, Spec::UNDEFINED),
    ]
}

fn format_of(n: u8) -> OrcFormat {
    OrcFormat::ALL[usize::from(n - 1)]
}

fn unwinder(format: u8) -> X86_64Unwinder {
    let (ips, orc) = tables(IP_BASE, &ortho_entries(), format);
    let f = format_of(format);
    let table = OrcTable::new("vmlinux", IP_BASE, &ips, &orc, f, None).unwrap();
    let mut t = OrcTables::new(f);
    t.push(table);
    // Kernel text reaches past the ORC table: generated code (BPF) lives there.
    X86_64Unwinder::new(t, vec![(TEXT, TEXT + 0x10000)])
}

fn stacks() -> Stacks {
    Stacks {
        ranges: vec![
            StackRange {
                kind: StackKind::Task,
                start: TASK,
                end: TASK + 0x4000,
            },
            StackRange {
                kind: StackKind::Irq,
                start: IRQ,
                end: IRQ + 0x4000,
            },
        ],
    }
}

fn regs(pc: u64, sp: u64, bp: u64) -> Regs {
    let mut g = Regs::default();
    g.set(r::RIP, pc);
    g.set(r::RSP, sp);
    g.set(r::RBP, bp);
    g
}

fn pcs(u: &Unwound) -> Vec<u64> {
    u.frames.iter().map(|f| f.pc).collect()
}

/// A `struct pt_regs` at `addr`: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip
/// cs flags sp ss, each word set to a recognizable value unless given.
fn put_pt_regs(mem: &mut MapMem, addr: u64, ip: u64, sp: u64, bp: u64, cs: u64) {
    for i in 0..21u64 {
        mem.put(addr + 8 * i, 0x1000 + i);
    }
    mem.put(addr + 4 * 8, bp);
    mem.put(addr + 16 * 8, ip);
    mem.put(addr + 17 * 8, cs);
    mem.put(addr + 18 * 8, 0x246);
    mem.put(addr + 19 * 8, sp);
    mem.put(addr + 20 * 8, 0x18);
}

/// A (CALL, sp-based) → B (CALL, bp-based) → C (end of stack), in each format.
#[test]
fn known_frames_in_every_format() {
    for format in FORMATS {
        let mut mem = MapMem::default();
        mem.put(S + 8, B + 0x20);
        mem.put(S + 0x30, S + 0x100);
        mem.put(S + 0x38, C + 0x30);
        let u = unwind(
            &unwinder(format),
            regs(A + 0x10, S, S + 0x30),
            &mem,
            &stacks(),
        );
        assert_eq!(u.stop, StopReason::EndOfStack, "format {format}");
        assert_eq!(pcs(&u), [A + 0x10, B + 0x20, C + 0x30], "format {format}");
        let sps: Vec<u64> = u.frames.iter().map(|f| f.sp).collect();
        assert_eq!(sps, [S, S + 16, S + 0x40]);
        let cfas: Vec<Option<u64>> = u.frames.iter().map(|f| f.cfa).collect();
        assert_eq!(cfas, [None, Some(S + 16), Some(S + 0x40)]);
        let methods: Vec<Method> = u.frames.iter().map(|f| f.method).collect();
        assert_eq!(methods, [Method::Start, Method::Orc, Method::Orc]);
        assert!(
            u.frames
                .iter()
                .all(|f| f.reliable && f.stack == StackKind::Task)
        );
        assert!(!u.frames[1].interrupted && !u.frames[2].interrupted);
    }
}

/// Entry code's `pt_regs` between two frames: the interrupted frame gets the whole register set
/// and its entry is looked up at its exact pc (D+5; D+4 has no information).
#[test]
fn pt_regs_frame_in_the_middle() {
    for format in FORMATS {
        let mut mem = MapMem::default();
        put_pt_regs(&mut mem, S, D + 5, S + 0x200, S + 0x300, 0x10);
        mem.put(S + 0x200, C + 0x30);
        let u = unwind(&unwinder(format), regs(P + 8, S, 0), &mem, &stacks());
        assert_eq!(u.stop, StopReason::EndOfStack, "format {format}");
        assert_eq!(pcs(&u), [P + 8, D + 5, C + 0x30]);
        let f = &u.frames[1];
        assert!(f.interrupted && f.reliable);
        assert_eq!(f.method, Method::PtRegs);
        assert_eq!(f.sp, S + 0x200);
        assert_eq!(f.cfa, Some(S));
        let saved = f
            .regs
            .as_ref()
            .expect("the interrupted frame keeps its registers");
        assert_eq!(saved.get(r::R15), Some(0x1000));
        assert_eq!(saved.get(r::RAX), Some(0x100a));
        assert_eq!(saved.get(r::RDI), Some(0x100e));
        assert_eq!(saved.get(r::RBP), Some(S + 0x300));
        assert_eq!(saved.get(r::CS), Some(0x10));
        assert_eq!(saved.get(r::RFLAGS), Some(0x246));
        assert_eq!(saved.get(r::ORIG_RAX), Some(0x100f));
        assert!(!u.frames[2].interrupted);
        assert_eq!(u.frames[2].cfa, Some(S + 0x208));
    }
}

/// An IRET frame (REGS_PARTIAL): ip, cs, flags, sp, ss at the CFA.
#[test]
fn iret_frame() {
    let entries = [
        (A, Spec::regs("SP", 8, true)),
        (C, Spec::END),
        (TEXT_END, Spec::UNDEFINED),
    ];
    for format in FORMATS {
        let (ips, orc) = tables(IP_BASE, &entries, format);
        let f = format_of(format);
        let mut t = OrcTables::new(f);
        t.push(OrcTable::new("vmlinux", IP_BASE, &ips, &orc, f, None).unwrap());
        let uw = X86_64Unwinder::new(t, vec![]);
        let mut mem = MapMem::default();
        for (i, v) in [C + 0x10, 0x10, 0x246, S + 0x400, 0x18]
            .into_iter()
            .enumerate()
        {
            mem.put(S + 8 + 8 * i as u64, v);
        }
        let mut start = regs(A + 4, S, S + 0x500);
        start.set(r::RDX, 0x77);
        let u = unwind(&uw, start, &mem, &stacks());
        assert_eq!(u.stop, StopReason::EndOfStack, "format {format}");
        assert_eq!(pcs(&u), [A + 4, C + 0x10]);
        let f = &u.frames[1];
        assert!(f.interrupted);
        assert_eq!(f.sp, S + 0x400);
        let saved = f.regs.as_ref().unwrap();
        // The registers of the last full set carry over (the kernel's `prev_regs`).
        assert_eq!(saved.get(r::RDX), Some(0x77));
        assert_eq!(saved.get(r::RBP), Some(S + 0x500));
        assert_eq!(saved.get(r::RBX), None);
    }
}

/// The IRQ stack's top word holds the task's sp (SP_INDIRECT): the trace moves to the task
/// stack.
#[test]
fn irq_stack_switch_back_to_the_task_stack() {
    for format in FORMATS {
        let top = IRQ + 0x4000;
        let mut mem = MapMem::default();
        mem.put(top - 8, S);
        mem.put(S, C + 0x30);
        let u = unwind(&unwinder(format), regs(Q + 4, top - 8, 0), &mem, &stacks());
        assert_eq!(u.stop, StopReason::EndOfStack, "format {format}");
        assert_eq!(pcs(&u), [Q + 4, C + 0x30]);
        assert_eq!(u.frames[0].stack, StackKind::Irq);
        assert_eq!(u.frames[1].stack, StackKind::Task);
        assert_eq!(u.frames[1].sp, S + 8);
    }
}

/// CFA = r10, from a full register set (PRSTATUS or `pt_regs`); unknown after a plain call.
#[test]
fn cfa_from_an_entry_register() {
    let mut mem = MapMem::default();
    mem.put(S + 0x78, C + 0x30);
    let mut start = regs(R + 2, S, 0);
    start.set(r::R10, S + 0x80);
    let u = unwind(&unwinder(3), start, &mem, &stacks());
    assert_eq!(u.stop, StopReason::EndOfStack);
    assert_eq!(pcs(&u), [R + 2, C + 0x30]);

    // A reached by a call into R's code: r10 is not known there.
    let mut mem = MapMem::default();
    mem.put(S + 8, R + 0x11);
    let u = unwind(&unwinder(3), regs(A + 1, S, 0), &mem, &stacks());
    assert!(
        matches!(&u.stop, StopReason::Unsupported { pc, .. } if *pc == R + 0x11),
        "{:?}",
        u.stop
    );
}

/// A pc no ORC table covers (generated code): one frame-pointer step, not reliable, then ORC.
#[test]
fn frame_pointer_fallback_is_unreliable() {
    let jit = TEXT + 0x2000;
    let mut mem = MapMem::default();
    mem.put(S + 0x50, S + 0x90);
    mem.put(S + 0x58, B + 0x20);
    mem.put(S + 0x90, S + 0x200);
    mem.put(S + 0x98, C + 0x30);
    let u = unwind(&unwinder(3), regs(jit, S, S + 0x50), &mem, &stacks());
    assert_eq!(u.stop, StopReason::EndOfStack);
    assert_eq!(pcs(&u), [jit, B + 0x20, C + 0x30]);
    assert_eq!(u.frames[1].method, Method::FramePointer);
    assert!(!u.frames[1].reliable);
    assert_eq!(u.frames[1].sp, S + 0x60);
    assert_eq!(u.frames[2].method, Method::Orc);
    assert!(u.frames[2].reliable);
}

/// An odd bp in code without ORC: entry code's encoded `pt_regs | 1`.
#[test]
fn encoded_frame_pointer_is_a_pt_regs() {
    let jit = TEXT + 0x2000;
    let mut mem = MapMem::default();
    put_pt_regs(&mut mem, S + 0x100, D + 5, S + 0x300, 0, 0x10);
    mem.put(S + 0x300, C + 0x30);
    let u = unwind(&unwinder(1), regs(jit, S, S + 0x101), &mem, &stacks());
    assert_eq!(u.stop, StopReason::EndOfStack);
    assert_eq!(pcs(&u), [jit, D + 5, C + 0x30]);
    assert_eq!(u.frames[1].method, Method::PtRegs);
    assert!(u.frames[1].interrupted && !u.frames[1].reliable);
}

#[test]
fn corrupt_return_address() {
    let mut mem = MapMem::default();
    mem.put(S + 8, 0x4141_4141);
    let u = unwind(&unwinder(3), regs(A + 0x10, S, 0), &mem, &stacks());
    assert_eq!(u.stop, StopReason::BadAddress { pc: 0x4141_4141 });
    assert_eq!(u.frames.len(), 1);
}

/// A bp that points at itself: the same frame comes back.
#[test]
fn loop_in_the_chain() {
    let b0 = S + 0x40;
    let mut mem = MapMem::default();
    mem.put(b0, b0);
    mem.put(b0 + 8, F + 0x10);
    let u = unwind(&unwinder(2), regs(F + 0x10, S, b0), &mem, &stacks());
    assert_eq!(u.stop, StopReason::Loop { sp: b0 + 16 });
    assert_eq!(pcs(&u), [F + 0x10, F + 0x10]);
}

#[test]
fn depth_is_bounded() {
    let mut mem = MapMem::default();
    for i in 0..300u64 {
        mem.put(S + 16 * i + 8, G + 0x10);
    }
    let u = unwind(&unwinder(4), regs(G + 0x10, S, 0), &mem, &stacks());
    assert_eq!(u.stop, StopReason::MaxDepth);
    assert_eq!(u.frames.len(), MAX_FRAMES);
}

/// A user-mode `pt_regs` ends the kernel trace, as do user-mode starting registers.
#[test]
fn user_mode_ends_the_trace() {
    for format in FORMATS {
        let mut mem = MapMem::default();
        put_pt_regs(&mut mem, S, USER_PC, 0x7ffd_0000, 0, 0x33);
        let u = unwind(&unwinder(format), regs(P + 8, S, 0), &mem, &stacks());
        assert_eq!(
            u.stop,
            StopReason::UserMode { pc: USER_PC },
            "format {format}"
        );
        assert_eq!(pcs(&u), [P + 8]);
    }
    let mut start = regs(USER_PC, 0x7ffd_0000, 0);
    start.set(r::CS, 0x33);
    let u = unwind(&unwinder(3), start, &MapMem::default(), &stacks());
    assert_eq!(u.stop, StopReason::UserMode { pc: USER_PC });
}

/// UNDEFINED stops with an error, not as a complete trace; reads off the stacks are refused.
#[test]
fn blind_spots_and_reads_off_the_stacks() {
    let u = unwind(
        &unwinder(3),
        regs(D + 1, S, 0),
        &MapMem::default(),
        &stacks(),
    );
    assert_eq!(u.stop, StopReason::NoUnwindInfo { pc: D + 1 });
    assert!(!u.stop.is_complete());

    let mut mem = MapMem::default();
    let off = TASK + 0x8000;
    mem.put(off + 8, C + 0x30);
    let u = unwind(&unwinder(3), regs(A + 0x10, off, 0), &mem, &stacks());
    assert!(matches!(u.stop, StopReason::Memory { addr, .. } if addr == off + 8));

    // On the stack but absent from the dump.
    let u = unwind(
        &unwinder(3),
        regs(A + 0x10, S, 0),
        &MapMem::default(),
        &stacks(),
    );
    assert!(matches!(u.stop, StopReason::Memory { addr, .. } if addr == S + 8));
}

/// A call through a NULL pointer: pc 0, the return address at sp.
#[test]
fn null_pc_pops_the_return_address() {
    let mut mem = MapMem::default();
    mem.put(S, C + 0x30);
    let u = unwind(&unwinder(3), regs(0, S, 0), &mem, &stacks());
    assert_eq!(pcs(&u), [0, C + 0x30]);
    assert_eq!(u.stop, StopReason::EndOfStack);
}

// ---- tables --------------------------------------------------------------------------------

#[test]
fn table_counts_must_agree() {
    let (ips, orc) = tables(IP_BASE, &ortho_entries(), 3);
    let e = OrcTable::new(
        "t",
        IP_BASE,
        &ips[..ips.len() - 4],
        &orc,
        OrcFormat::V3,
        None,
    );
    assert!(matches!(e, Err(OrcError::CountMismatch { .. })));
    let e = OrcTable::new(
        "t",
        IP_BASE,
        &ips,
        &orc[..orc.len() - 1],
        OrcFormat::V3,
        None,
    );
    assert!(matches!(e, Err(OrcError::CountMismatch { .. })));
    let e = OrcTable::new("t", IP_BASE, &[], &[], OrcFormat::V3, None);
    assert!(matches!(e, Err(OrcError::Empty { .. })));
}

/// An unsorted table (a pre-5.6 vmlinux file) is sorted, and a section terminator at the same IP
/// as a real entry loses to it wherever it stood.
#[test]
fn unsorted_tables_and_terminators() {
    for terminator_first in [true, false] {
        let mut entries = vec![
            (C, Spec::END),
            (A, Spec::call("SP", 16)),
            (TEXT_END, Spec::UNDEFINED),
        ];
        let t = (B, Spec::UNDEFINED);
        let real = (B, Spec::call("SP", 24));
        if terminator_first {
            entries.extend([t, real]);
        } else {
            entries.extend([real, t]);
        }
        let (ips, orc) = tables(IP_BASE, &entries, 1);
        let table = OrcTable::new("t", IP_BASE, &ips, &orc, OrcFormat::V1, None).unwrap();
        assert_eq!(table.ips(), [A, B, B, C, TEXT_END]);
        let e = table.find(B + 3).unwrap();
        assert_eq!((e.kind, e.sp_offset), (OrcType::Call, 24));
        assert_eq!(table.find(A).unwrap().sp_offset, 16);
        assert_eq!(table.find(C + 0x50).unwrap().kind, OrcType::EndOfStack);
        assert!(table.find(A - 1).is_none());
        assert!(table.find(TEXT_END + 1).is_none());
    }
}

/// A module's table answers for its text range only; lookups go to the table that covers the pc.
#[test]
fn several_tables() {
    let m = 0xffff_ffff_c000_0000u64;
    let (ips, orc) = tables(
        m + 0x8000,
        &[(m, Spec::call("SP", 40)), (m + 0x80, Spec::END)],
        3,
    );
    let module = OrcTable::new(
        "m",
        m + 0x8000,
        &ips,
        &orc,
        OrcFormat::V3,
        Some((m, m + 0x1000)),
    )
    .unwrap();
    let mut t = OrcTables::new(OrcFormat::V3);
    let (ips, orc) = tables(IP_BASE, &ortho_entries(), 3);
    t.push(OrcTable::new("vmlinux", IP_BASE, &ips, &orc, OrcFormat::V3, None).unwrap());
    t.push(module);
    assert_eq!(t.find(m + 0x10).unwrap().sp_offset, 40);
    assert_eq!(t.find(m + 0x900).unwrap().kind, OrcType::EndOfStack);
    assert!(t.find(m + 0x1000).is_none());
    assert_eq!(t.find(A + 1).unwrap().sp_offset, 16);
}

// ---- format detection ----------------------------------------------------------------------

/// A table shaped like a kernel's: mostly function frames, some entry code, terminators.
fn realistic(format: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..2000u32 {
        let spec = match i % 50 {
            0 => Spec::END,
            1 => Spec::UNDEFINED,
            2 => Spec::regs("SP", 0, false),
            3 => Spec::regs("SP", 8, true),
            4..=20 => Spec::call("BP", 16).with_bp("PREV_SP", -16),
            n => Spec::call("SP", 8 * (1 + (n as i16 % 6))),
        };
        out.extend_from_slice(&encode(spec, format));
    }
    out
}

#[test]
fn formats_are_told_from_the_entries() {
    for format in FORMATS {
        let got = detect_format(&FormatEvidence::default(), &realistic(format));
        assert_eq!(got, Ok(format_of(format)), "format {format}");
    }
}

#[test]
fn header_and_layout_evidence() {
    // 6.4's header hash names V3 whatever the entries look like.
    let header = hex::decode("fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24").unwrap();
    let ev = FormatEvidence {
        header: Some(header),
        ..Default::default()
    };
    assert_eq!(detect_format(&ev, &[]), Ok(OrcFormat::V3));
    // An unknown header: the rest decides.
    let ev = FormatEvidence {
        header: Some(vec![0xab; 20]),
        layout: Some(EntryLayout {
            has_end: false,
            has_signal: true,
            type_bits: Some(3),
        }),
        fp_entry_bp_reg: Some(8),
    };
    assert_eq!(detect_format(&ev, &[]), Ok(OrcFormat::V4));
    assert_eq!(detect_format(&ev, &realistic(4)), Ok(OrcFormat::V4));
    // The layout and the entries disagree: refused rather than guessed.
    let ev = FormatEvidence {
        layout: Some(EntryLayout {
            has_end: true,
            has_signal: false,
            type_bits: Some(2),
        }),
        ..Default::default()
    };
    assert!(detect_format(&ev, &realistic(3)).is_err());
    assert_eq!(detect_format(&ev, &realistic(1)), Ok(OrcFormat::V1));
}

#[test]
fn garbage_is_no_format() {
    let bytes: Vec<u8> = (0..6000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(matches!(
        detect_format(&FormatEvidence::default(), &bytes),
        Err(OrcError::UnknownFormat(_))
    ));
}

/// Writes the seeds of the `orc` fuzz target (fuzz/fuzz_targets/orc.rs documents the layout):
/// the A → B → C walk of `known_frames_in_every_format` in each format.
/// `cargo test --test unwind_x86_64 -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    const STACK: u64 = 0xffff_c900_0000_0000;
    let entries = [
        (A, Spec::call("SP", 16)),
        (B, Spec::call("BP", 16).with_bp("PREV_SP", -16)),
        (C, Spec::END),
        (TEXT_END, Spec::UNDEFINED),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/orc");
    std::fs::create_dir_all(&dir).unwrap();
    for format in FORMATS {
        let (ips, orc) = tables(TEXT, &entries, format);
        let mut seed = vec![(format - 1) | 4];
        seed.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        seed.extend_from_slice(&ips);
        seed.extend_from_slice(&orc);
        for w in [A + 0x10 - TEXT, 0, STACK + 0x30] {
            seed.extend_from_slice(&w.to_le_bytes());
        }
        let mut stack = vec![0u8; 0x200];
        for (off, v) in [(8usize, B + 0x20), (0x30, STACK + 0x100), (0x38, C + 0x30)] {
            stack[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        seed.extend_from_slice(&stack);
        std::fs::write(dir.join(format!("seed-v{format}")), seed).unwrap();
    }
}

/// PRSTATUS `pr_reg` is `user_regs_struct`: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
/// orig_ax ip cs flags sp ss fs_base gs_base ds es fs gs (arch/x86/include/asm/user_64.h).
#[test]
fn prstatus_registers() {
    use vmcore_report::addr::Arch;
    use vmcore_report::kernel::stack::arch_stack;
    let arch = arch_stack(Arch::X86_64).unwrap();
    let gregs: Vec<u64> = (0..27u64).map(|i| 0x100 + i).collect();
    let regs = arch.prstatus_regs(&gregs);
    let expect = [
        (r::R15, 0),
        (r::R12, 3),
        (r::RBP, 4),
        (r::RBX, 5),
        (r::R8, 9),
        (r::RAX, 10),
        (r::RCX, 11),
        (r::RDX, 12),
        (r::RSI, 13),
        (r::RDI, 14),
        (r::ORIG_RAX, 15),
        (r::RIP, 16),
        (r::CS, 17),
        (r::RFLAGS, 18),
        (r::RSP, 19),
        (r::SS, 20),
        (58, 21), // fs.base
        (59, 22), // gs.base
        (53, 23), // ds
        (55, 26), // gs
    ];
    for (reg, i) in expect {
        assert_eq!(regs.get(reg), Some(0x100 + i), "DWARF register {reg}");
    }
    let names: Vec<&str> = arch.register_names().iter().map(|(n, _)| *n).collect();
    assert_eq!(&names[..4], ["RIP", "RSP", "RFLAGS", "RAX"]);
    assert_eq!(&names[names.len() - 3..], ["ORIG_RAX", "CS", "SS"]);
    for (name, reg) in arch.register_names() {
        assert!(regs.get(*reg).is_some(), "{name}");
    }
}
