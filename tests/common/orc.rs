//! ORC tables built byte by byte from the documented bit layout of `struct orc_entry`
//! (arch/x86/include/asm/orc_types.h of 4.19, 6.3, 6.4 and 7.1), independently of
//! `vmcore_report::unwind::orc`, and stack memory as a map.

use std::collections::HashMap;

use vmcore_report::unwind::{MemoryError, StackMemory};

/// The four layouts, numbered as the documentation numbers them (1: 4.14–6.2, 2: 6.3,
/// 3: 6.4–7.0, 4: 7.1+).
pub const FORMATS: [u8; 4] = [1, 2, 3, 4];

/// `ORC_REG_*` of a format, by name.
pub fn reg(format: u8, name: &str) -> u16 {
    let old = [
        ("UNDEFINED", 0),
        ("PREV_SP", 1),
        ("DX", 2),
        ("DI", 3),
        ("BP", 4),
        ("SP", 5),
        ("R10", 6),
        ("R13", 7),
        ("BP_INDIRECT", 8),
        ("SP_INDIRECT", 9),
    ];
    let new = [
        ("UNDEFINED", 0),
        ("AX", 1),
        ("DX", 2),
        ("SP", 3),
        ("BP", 4),
        ("DI", 5),
        ("R10", 6),
        ("R13", 7),
        ("PREV_SP", 8),
        ("SP_INDIRECT", 9),
        ("BP_INDIRECT", 10),
    ];
    let table: &[(&str, u16)] = if format == 4 { &new } else { &old };
    table
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("format {format} has no register {name}"))
        .1
}

/// One entry as the kernel's headers describe it.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub sp_reg: &'static str,
    pub sp_offset: i16,
    pub bp_reg: &'static str,
    pub bp_offset: i16,
    /// UNDEFINED, END_OF_STACK, CALL, REGS, REGS_PARTIAL.
    pub kind: &'static str,
    pub signal: bool,
}

impl Spec {
    pub const fn call(sp_reg: &'static str, sp_offset: i16) -> Spec {
        Spec {
            sp_reg,
            sp_offset,
            bp_reg: "UNDEFINED",
            bp_offset: 0,
            kind: "CALL",
            signal: false,
        }
    }
    pub const fn with_bp(self, bp_reg: &'static str, bp_offset: i16) -> Spec {
        Spec {
            bp_reg,
            bp_offset,
            ..self
        }
    }
    pub const fn regs(sp_reg: &'static str, sp_offset: i16, partial: bool) -> Spec {
        Spec {
            sp_reg,
            sp_offset,
            bp_reg: "UNDEFINED",
            bp_offset: 0,
            kind: if partial { "REGS_PARTIAL" } else { "REGS" },
            signal: true,
        }
    }
    pub const END: Spec = Spec {
        sp_reg: "UNDEFINED",
        sp_offset: 0,
        bp_reg: "UNDEFINED",
        bp_offset: 0,
        kind: "END_OF_STACK",
        signal: false,
    };
    pub const UNDEFINED: Spec = Spec {
        kind: "UNDEFINED",
        ..Spec::END
    };
}

/// The 6 bytes of `spec` in `format`.
pub fn encode(spec: Spec, format: u8) -> [u8; 6] {
    let mut flags: u16 = reg(format, spec.sp_reg) | reg(format, spec.bp_reg) << 4;
    match format {
        1 | 2 => {
            // type:2 (CALL 0, REGS 1, REGS_PARTIAL 2); the stack's end is sp_reg UNDEFINED +
            // `end` (bit 10 in 4.19–6.2, bit 11 in 6.3); 6.3 has `signal` at bit 10.
            let end_bit = if format == 1 { 10 } else { 11 };
            match spec.kind {
                "CALL" => {}
                "REGS" => flags |= 1 << 8,
                "REGS_PARTIAL" => flags |= 2 << 8,
                "END_OF_STACK" => flags |= 1 << end_bit,
                "UNDEFINED" => {}
                k => panic!("{k}"),
            }
            if format == 2 && spec.signal {
                flags |= 1 << 10;
            }
        }
        _ => {
            let t: u16 = match spec.kind {
                "UNDEFINED" => 0,
                "END_OF_STACK" => 1,
                "CALL" => 2,
                "REGS" => 3,
                "REGS_PARTIAL" => 4,
                k => panic!("{k}"),
            };
            flags |= t << 8;
            if spec.signal {
                flags |= 1 << 11;
            }
        }
    }
    let mut out = [0u8; 6];
    out[0..2].copy_from_slice(&spec.sp_offset.to_le_bytes());
    out[2..4].copy_from_slice(&spec.bp_offset.to_le_bytes());
    out[4..6].copy_from_slice(&flags.to_le_bytes());
    out
}

/// `.orc_unwind_ip` placed at `ip_base` (self-relative `s32`s) and `.orc_unwind`, in the order
/// given.
pub fn tables(ip_base: u64, entries: &[(u64, Spec)], format: u8) -> (Vec<u8>, Vec<u8>) {
    let mut ips = Vec::new();
    let mut orc = Vec::new();
    for (i, (ip, spec)) in entries.iter().enumerate() {
        let slot = ip_base + 4 * i as u64;
        let rel =
            i32::try_from(ip.wrapping_sub(slot) as i64).expect("IP within ±2 GiB of its slot");
        ips.extend_from_slice(&rel.to_le_bytes());
        orc.extend_from_slice(&encode(*spec, format));
    }
    (ips, orc)
}

/// Stack memory: words by address; any other read fails.
#[derive(Default, Clone, Debug)]
pub struct MapMem(pub HashMap<u64, u64>);

impl MapMem {
    pub fn put(&mut self, addr: u64, value: u64) {
        self.0.insert(addr, value);
    }
}

impl StackMemory for MapMem {
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        self.0.get(&addr).copied().ok_or(MemoryError {
            addr,
            why: "not in the map".into(),
        })
    }
}
