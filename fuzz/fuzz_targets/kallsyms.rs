//! Fuzzes the kallsyms decoder (src/debuginfo/kallsyms.rs) over memory made of the input.
//!
//! Layout: byte 0 the address tables present (0: `kallsyms_offsets` + `kallsyms_relative_base`,
//! 1: `kallsyms_addresses`, 2: `kallsyms_offsets` alone), bytes 1..9 `SYMBOL(_stext)`
//! (little-endian), then the memory image at `BASE`, with the tables at the fixed offsets
//! `tests/kallsyms_synth.rs` writes its seeds at. Reads past the image fail, as pages missing
//! from a dump do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcore_report::addr::Endian;
use vmcore_report::debuginfo::kallsyms::{KallsymsTables, decode};

const BASE: u64 = 0xffff_ffff_8200_0000;
const NUM: u64 = 0x40;
const TOKEN_INDEX: u64 = 0x80;
const TOKEN_TABLE: u64 = 0x300;
const OFFSETS: u64 = 0x800;
const REL_BASE: u64 = 0x900;
const NAMES: u64 = 0xa00;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((stext, mem)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let stext = u64::from_le_bytes(*stext);
    let at = |off: u64| BASE + off;
    let tables = KallsymsTables {
        num_syms: at(NUM),
        names: at(NAMES),
        token_table: at(TOKEN_TABLE),
        token_index: at(TOKEN_INDEX),
        offsets: (mode % 3 != 1).then(|| at(OFFSETS)),
        relative_base: (mode % 3 == 0).then(|| at(REL_BASE)),
        addresses: (mode % 3 == 1).then(|| at(OFFSETS)),
    };
    let read = |addr: u64, len: usize| -> Result<Vec<u8>, String> {
        let off = addr.checked_sub(BASE).ok_or("below")? as usize;
        mem.get(off..off.checked_add(len).ok_or("overflow")?)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "past the image".to_string())
    };
    let endian = if mode & 0x80 != 0 { Endian::Big } else { Endian::Little };
    let _ = decode(&tables, &read, endian, stext);
});
