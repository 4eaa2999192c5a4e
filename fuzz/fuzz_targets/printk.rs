//! Fuzzes the kernel log reader (src/kernel/printk.rs): the lockless ring and the legacy
//! `log_buf` ring over memory made of the input.
//!
//! The first byte picks the mode and the ring sizes. In the "placed" modes the ring's arrays are
//! laid out inside the input and the pointers point at them, so the mutations reach the
//! descriptor states, lpos values, text lengths and legacy record headers; in the "raw" mode
//! every pointer and index is the input's own.
#![no_main]

use vmcore_report::addr::Endian;
use vmcore_report::kernel::printk::{
    LegacyLayout, LegacyVars, PrbLayout, RegionMemory, read_legacy, read_lockless,
};

const BASE: u64 = 0xffff_ffff_8200_0000;

fn prb_layout() -> PrbLayout {
    // a 64-bit 6.1 kernel
    PrbLayout {
        endian: Endian::Little,
        word: 8,
        rb_size: 88,
        desc_ring: 0,
        text_data_ring: 48,
        count_bits: 0,
        descs: 8,
        infos: 16,
        head_id: 24,
        tail_id: 32,
        counter: 0,
        desc_size: 24,
        state_var: 0,
        text_blk_lpos: 8,
        lpos_begin: 0,
        lpos_next: 8,
        size_bits: 0,
        data: 8,
        info_size: 88,
        seq: 0,
        ts_nsec: 8,
        text_len: 16,
        facility: 18,
        flags_level: 19,
        caller_id: Some(20),
        subsystem: Some((24, 16)),
        device: Some((40, 48)),
    }
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    match mode & 3 {
        // lockless, arrays placed after the 128-byte header
        0 | 1 => {
            let count_bits = u32::from(mode >> 2 & 7); // up to 128 descriptors
            let size_bits = u32::from(mode >> 5) + 6; // 64 B .. 8 KiB
            let count = 1usize << count_bits;
            let descs = 128;
            let infos = descs + count * 24;
            let text = infos + count * 88;
            let total = text + (1 << size_bits);
            if bytes.len() < total {
                bytes.resize(total, 0);
            }
            put(&mut bytes, 0, &count_bits.to_le_bytes());
            put(&mut bytes, 8, &(BASE + descs as u64).to_le_bytes());
            put(&mut bytes, 16, &(BASE + infos as u64).to_le_bytes());
            put(&mut bytes, 48, &size_bits.to_le_bytes());
            put(&mut bytes, 56, &(BASE + text as u64).to_le_bytes());
            let mem = RegionMemory {
                regions: vec![(BASE, bytes)],
            };
            let log = read_lockless(&mem, &prb_layout(), BASE, String::new());
            assert!(log.records.len() <= count);
        }
        // legacy, variables at 0..40, the buffer after them
        2 => {
            let buf_len = ((mode as usize >> 2) + 1) * 64;
            if bytes.len() < 64 + buf_len {
                bytes.resize(64 + buf_len, 0);
            }
            put(&mut bytes, 0, &(BASE + 64).to_le_bytes());
            put(&mut bytes, 8, &(buf_len as u32).to_le_bytes());
            let first = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) % buf_len as u32;
            put(&mut bytes, 16, &first.to_le_bytes());
            let layout = LegacyLayout {
                endian: Endian::Little,
                word: 8,
                hdr_size: if mode & 4 != 0 { 20 } else { 16 },
                ts_nsec: 0,
                len: 8,
                text_len: 10,
                dict_len: 12,
                facility: 14,
                flags_level: 15,
                caller_id: (mode & 4 != 0).then_some(16),
            };
            let vars = LegacyVars {
                log_buf: BASE,
                log_buf_len: BASE + 8,
                log_first_idx: BASE + 16,
                log_next_idx: BASE + 24,
                log_first_seq: Some(7),
            };
            let mem = RegionMemory {
                regions: vec![(BASE, bytes)],
            };
            let _ = read_legacy(&mem, &layout, &vars, String::new());
        }
        // raw: the input's own pointers, counts and ids; with bit 2 of the mode, a layout
        // whose offsets are the input's too (a hostile VMCOREINFO)
        _ => {
            let mut layout = prb_layout();
            if mode & 4 != 0 && bytes.len() >= 8 {
                let o = |i: usize| u64::from(bytes[i]);
                layout.desc_ring = o(0);
                layout.text_data_ring = o(1);
                layout.head_id = o(2) << 56;
                layout.state_var = o(3);
                layout.text_blk_lpos = o(4) * 0x0101_0101_0101_0101;
                layout.text_len = o(5);
                layout.facility = u64::MAX - o(6);
                layout.flags_level = o(7);
            }
            let mem = RegionMemory {
                regions: vec![(BASE, bytes)],
            };
            let _ = read_lockless(&mem, &layout, BASE, String::new());
        }
    }
});
