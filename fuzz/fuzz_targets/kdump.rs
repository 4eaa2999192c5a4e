//! Fuzzes the kdump reader: format detection, headers, notes, and page reads.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::open_and_read(data);
});
