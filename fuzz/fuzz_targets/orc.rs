//! Fuzzes the ORC table decoder and the x86_64 unwinder (src/unwind/orc.rs, src/unwind/x86_64.rs)
//! over tables and stack memory made of the input.
//!
//! Layout: byte 0 picks the entry format (bits 0–1), whether the walk is confined to a known
//! stack (bit 2) and whether the start is interrupted (bit 3); bytes 1–2 the entry count `n`;
//! then `n` self-relative `s32` IPs (placed at `IP_BASE`), `n` 6-byte entries, three start
//! words (pc offset into the text, sp offset into the stack, bp), and the rest is the stack,
//! mapped at `STACK`. Format detection also runs over the entries.
#![no_main]

use vmcore_report::unwind::orc::{
    FormatEvidence, ORC_ENTRY_SIZE, OrcFormat, OrcTable, OrcTables, detect_format,
};
use vmcore_report::unwind::x86_64::X86_64Unwinder;
use vmcore_report::unwind::x86_64_regs as r;
use vmcore_report::unwind::{
    MemoryError, Regs, StackKind, StackMemory, StackRange, Stacks, Unwinder, unwind,
};

const TEXT: u64 = 0xffff_ffff_8100_0000;
const IP_BASE: u64 = 0xffff_ffff_8100_0000;
const STACK: u64 = 0xffff_c900_0000_0000;

struct Mem<'a>(&'a [u8]);

impl StackMemory for Mem<'_> {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let off = addr.wrapping_sub(STACK) as usize;
        match self.0.get(off..off.wrapping_add(8)) {
            Some(b) if addr >= STACK => Ok(u64::from_le_bytes(b.try_into().unwrap())),
            _ => Err(MemoryError {
                addr,
                why: "outside the input".into(),
            }),
        }
    }
}

fn word(b: &[u8], i: usize) -> u64 {
    b.get(8 * i..8 * i + 8)
        .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap()))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    let n = n.min(rest.len() / (4 + ORC_ENTRY_SIZE));
    let (ips, rest) = rest.split_at(4 * n);
    let (entries, rest) = rest.split_at(ORC_ENTRY_SIZE * n);
    let format = OrcFormat::ALL[usize::from(mode & 3)];
    let _ = detect_format(&FormatEvidence::default(), entries);
    let mut tables = OrcTables::new(format);
    if let Ok(t) = OrcTable::new("fuzz", IP_BASE, ips, entries, format, None) {
        for &ip in t.ips().iter().take(64) {
            let _ = t.find(ip);
        }
        tables.push(t);
    }
    let unwinder = X86_64Unwinder::new(tables, vec![(TEXT, TEXT + 0x10_0000)]);
    let start_words = rest.get(..24).unwrap_or(rest);
    let stack = rest.get(24..).unwrap_or(&[]);
    let mut regs = Regs::default();
    regs.set(r::RIP, TEXT.wrapping_add(word(start_words, 0) & 0xf_ffff));
    regs.set(r::RSP, STACK.wrapping_add(word(start_words, 1) & 0xffff));
    regs.set(r::RBP, word(start_words, 2));
    let stacks = if mode & 4 != 0 {
        Stacks {
            ranges: vec![StackRange {
                kind: StackKind::Task,
                start: STACK,
                end: STACK + stack.len() as u64,
            }],
        }
    } else {
        Stacks::default()
    };
    let u = unwind(&unwinder, regs.clone(), &Mem(stack), &stacks);
    assert!(u.frames.len() <= vmcore_report::unwind::MAX_FRAMES);
    let _ = unwinder.step(&regs, mode & 8 != 0, &Mem(stack), &stacks);
});
