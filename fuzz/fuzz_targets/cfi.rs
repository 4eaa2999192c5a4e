//! Fuzzes the DWARF CFI reader (src/unwind/cfi.rs) and the arm64 unwinder (src/unwind/aarch64.rs)
//! over a `.debug_frame` and a stack both made of the input.
//!
//! Input: a little-endian u16, the length of the `.debug_frame` bytes that follow; the rest is
//! the task stack's memory from [`TASK`] on, whose first four words are also the starting pc,
//! sp, x29 and x30. The text, entry text, stacks, `pt_regs` layout (6.1's) and PAC mask are
//! fixed, and match the seed written by `tests/unwind_aarch64.rs::write_fuzz_seeds`.
#![no_main]

use vmcore_report::addr::{Arch, Endian};
use vmcore_report::unwind::aarch64::{Aarch64Unwinder, PtRegsLayout};
use vmcore_report::unwind::aarch64_regs::{FP, LR, PC, SP};
use vmcore_report::unwind::cfi::Cfi;
use vmcore_report::unwind::{
    MemoryError, Regs, StackKind, StackMemory, StackRange, Stacks, TextRanges, unwind,
};

const TASK: u64 = 0xffff_8000_2000_0000;
const IRQ: u64 = 0xffff_8000_1000_0000;
const ENTRY: u64 = 0xffff_8000_1a30_0000;

struct Window<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl StackMemory for Window<'_> {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let off = addr.wrapping_sub(self.base);
        usize::try_from(off)
            .ok()
            .and_then(|o| self.bytes.get(o..o.checked_add(8)?))
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or(MemoryError {
                addr,
                why: "outside the input".into(),
            })
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (frames, stack) = rest.split_at(len);
    let mem = Window {
        base: TASK,
        bytes: stack,
    };
    let cfi = Cfi::new(Arch::Aarch64, Endian::Little, Some(frames), None, 0);
    let word = |i: u64| mem.read_u64(TASK + 8 * i).unwrap_or(0);
    let _ = cfi.covers(word(0));
    let u = Aarch64Unwinder::new(TextRanges::new([(0xffff_8000_0000_0000, 0xffff_8000_4000_0000)]))
        .with_cfi(cfi)
        .with_entry_text(TextRanges::new([(ENTRY, ENTRY + 0x1000)]))
        .with_pt_regs(PtRegsLayout {
            size: 336,
            regs: 0,
            sp: 248,
            pc: 256,
            pstate: 264,
            stackframe: 304,
        })
        .with_pac_mask(0xffff_0000_0000_0000);
    let mut regs = Regs::default();
    regs.set(PC, word(0));
    regs.set(SP, word(1));
    regs.set(FP, word(2));
    regs.set(LR, word(3));
    let stacks = Stacks {
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
    };
    let trace = unwind(&u, regs, &mem, &stacks);
    assert!(trace.frames.len() <= vmcore_report::unwind::MAX_FRAMES);
});
