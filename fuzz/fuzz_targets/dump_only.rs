//! Fuzzes what dump-only mode reads from a kernel image with no vmlinux (src/debuginfo/kallsyms.rs
//! `scan` and `decode`, src/debuginfo/btf.rs `BtfTypes::scan` and `from_memory`,
//! src/debuginfo/globals.rs `DumpTypes::new`) over memory made of the input.
//!
//! Layout: byte 0 the byte order (bit 7: big-endian), then the memory image at `_stext`. Pages
//! whose first byte is 0xee read as missing, as pages a filtered dump left out. The symbol
//! table the globals are checked against is the decoded kallsyms, when the scan finds one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcore_report::addr::Endian;
use vmcore_report::debuginfo::btf::BtfTypes;
use vmcore_report::debuginfo::globals::DumpTypes;
use vmcore_report::debuginfo::kallsyms;
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::dump::VmcoreInfo;

const STEXT: u64 = 0xffff_ffff_8100_0000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mem)) = data.split_first() else {
        return;
    };
    let big = mode & 0x80 != 0;
    let endian = if big { Endian::Big } else { Endian::Little };
    let read = |addr: u64, len: usize| -> Result<Vec<u8>, String> {
        let off = addr.checked_sub(STEXT).ok_or("below the image")? as usize;
        let end = off.checked_add(len).ok_or("overflow")?;
        let bytes = mem.get(off..end).ok_or("past the image")?;
        // a page starting with 0xee is not in the dump
        let mut page = off & !0xfff;
        while page < end {
            if mem.get(page) == Some(&0xee) {
                return Err(format!("page {page:#x} not dumped"));
            }
            page += 0x1000;
        }
        Ok(bytes.to_vec())
    };
    let vi = VmcoreInfo::parse(&format!("SYMBOL(_stext)={STEXT:x}\n"));
    let limit = mem.len() as u64 + 0x1000;
    let symbols = match kallsyms::scan(&vi, &read, endian, limit) {
        Ok((_, ks)) => SymbolTable::from_runtime(ks.into_runtime_symbols(), 0),
        Err(_) => SymbolTable::from_runtime(Vec::new(), 0),
    };
    if let Ok((btf, _, _)) = BtfTypes::scan(&read, STEXT, limit, big) {
        let _ = DumpTypes::new(btf, &symbols, &read);
    }
});
