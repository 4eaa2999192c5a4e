//! Synthetic stacks for the unwinder tests: memory as a map of 64-bit words the test writes one
//! by one, and a `.debug_frame` written with `gimli::write` from the rules the test states.
//! Neither reuses the unwinder's code: the words and rules the test author writes are the oracle.

use std::collections::HashMap;

use gimli::write::{
    Address, CallFrameInstruction, CommonInformationEntry, DebugFrame, EndianVec,
    FrameDescriptionEntry, FrameTable,
};
use gimli::{Encoding, Format, Register, RunTimeEndian};
use vmcore_report::unwind::{MemoryError, StackKind, StackMemory, StackRange, Stacks};

/// Memory as 64-bit words by address; any other read fails.
#[derive(Default)]
pub struct MapMem {
    pub words: HashMap<u64, u64>,
}

impl MapMem {
    pub fn put(&mut self, addr: u64, value: u64) -> &mut Self {
        self.words.insert(addr, value);
        self
    }
}

impl StackMemory for MapMem {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        self.words.get(&addr).copied().ok_or(MemoryError {
            addr,
            why: "not in the test's map".into(),
        })
    }
}

pub fn stacks(ranges: &[(StackKind, u64, u64)]) -> Stacks {
    Stacks {
        ranges: ranges
            .iter()
            .map(|&(kind, start, end)| StackRange { kind, start, end })
            .collect(),
    }
}

/// One FDE: `[start, start + len)` at link-time addresses, and its instructions at byte offsets
/// from `start`.
pub struct Fde {
    pub start: u64,
    pub len: u32,
    pub rows: Vec<(u32, CallFrameInstruction)>,
}

/// The usual AArch64 prologue `paciasp; stp x29, x30, [sp, #-size]!; mov x29, sp` described
/// as GCC does: RA signed after 4 bytes, then CFA = sp + size with x29 at CFA − size and x30
/// at CFA − size + 8 from byte 8.
pub fn aarch64_frame(start: u64, len: u32, size: i32) -> Fde {
    Fde {
        start,
        len,
        rows: vec![
            (4, CallFrameInstruction::NegateRaState),
            (8, CallFrameInstruction::CfaOffset(size)),
            (8, CallFrameInstruction::Offset(Register(29), -size)),
            (8, CallFrameInstruction::Offset(Register(30), -size + 8)),
        ],
    }
}

/// A `.debug_frame` with one CIE (code alignment `code_align`, data alignment −8, return address
/// column `ra`, CFA = register `sp_reg` + 0) and the FDEs given.
pub fn debug_frame(
    endian: RunTimeEndian,
    code_align: u8,
    ra: u16,
    sp_reg: u16,
    fdes: Vec<Fde>,
) -> Vec<u8> {
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 1,
        address_size: 8,
    };
    let mut table = FrameTable::default();
    let mut cie = CommonInformationEntry::new(encoding, code_align, -8, Register(ra));
    cie.add_instruction(CallFrameInstruction::Cfa(Register(sp_reg), 0));
    let cie = table.add_cie(cie);
    for f in fdes {
        let mut fde = FrameDescriptionEntry::new(Address::Constant(f.start), f.len);
        for (off, insn) in f.rows {
            fde.add_instruction(off, insn);
        }
        table.add_fde(cie, fde);
    }
    let mut out = DebugFrame(EndianVec::new(endian));
    table
        .write_debug_frame(&mut out)
        .expect("debug_frame writes");
    out.0.into_vec()
}
