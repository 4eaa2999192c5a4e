//! Kernel taints: the mask, the kernel's own one-line string, and the set flags by name.
//!
//! `print_tainted()` (kernel/panic.c) prints `Not tainted` for an empty mask, else `Tainted: `
//! followed by one character per entry of `taint_flags[]`: `c_true` when the bit is set,
//! `c_false` when not (a space for every flag but the first, whose `c_false` is `G`). 6.1 and
//! 6.12 build the same string (6.12 through `print_tainted_seq()`, which also has a verbose form
//! that oops lines do not use); only the table grows.

use serde::Serialize;

/// One entry of `taint_flags[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaintFlagDef {
    pub c_true: char,
    pub c_false: char,
    pub module: bool,
    /// `desc` (6.4+: the `TAINT_*` name without the prefix), or the documented name.
    pub name: String,
}

/// Documentation/admin-guide/tainted-kernels.rst, bit by bit (6.1: 19 flags).
const DOCUMENTED: [(char, char, bool, &str); 19] = [
    ('P', 'G', true, "PROPRIETARY_MODULE"),
    ('F', ' ', true, "FORCED_MODULE"),
    ('S', ' ', false, "CPU_OUT_OF_SPEC"),
    ('R', ' ', false, "FORCED_RMMOD"),
    ('M', ' ', false, "MACHINE_CHECK"),
    ('B', ' ', false, "BAD_PAGE"),
    ('U', ' ', false, "USER"),
    ('D', ' ', false, "DIE"),
    ('A', ' ', false, "OVERRIDDEN_ACPI_TABLE"),
    ('W', ' ', false, "WARN"),
    ('C', ' ', true, "CRAP"),
    ('I', ' ', false, "FIRMWARE_WORKAROUND"),
    ('O', ' ', true, "OOT_MODULE"),
    ('E', ' ', true, "UNSIGNED_MODULE"),
    ('L', ' ', false, "SOFTLOCKUP"),
    ('K', ' ', true, "LIVEPATCH"),
    ('X', ' ', true, "AUX"),
    ('T', ' ', true, "RANDSTRUCT"),
    ('N', ' ', true, "TEST"),
];

/// The documented table, first `n` entries (`n` = the dump's `TAINT_FLAGS_COUNT` when known).
pub fn documented_flags(n: Option<usize>) -> Vec<TaintFlagDef> {
    DOCUMENTED
        .iter()
        .take(n.unwrap_or(DOCUMENTED.len()))
        .map(|&(t, f, m, name)| TaintFlagDef {
            c_true: t,
            c_false: f,
            module: m,
            name: name.to_string(),
        })
        .collect()
}

/// The name the documentation gives a bit, for tables whose entries carry no `desc`.
pub fn documented_name(bit: usize) -> Option<&'static str> {
    DOCUMENTED.get(bit).map(|d| d.3)
}

/// `print_tainted()`.
pub fn taint_string(mask: u64, flags: &[TaintFlagDef]) -> String {
    if mask == 0 {
        return "Not tainted".to_string();
    }
    let mut s = String::from("Tainted: ");
    for (i, f) in flags.iter().enumerate() {
        let set = i < 64 && mask & (1u64 << i) != 0;
        s.push(if set { f.c_true } else { f.c_false });
    }
    s
}

/// One set taint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetTaint {
    pub bit: u32,
    pub letter: char,
    pub name: String,
}

/// `taints.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Taints {
    /// `tainted_mask`.
    pub mask: u64,
    /// The kernel's string, as in oops and panic lines.
    pub string: String,
    pub flags: Vec<SetTaint>,
    /// Bits set in the mask beyond the kernel's table (not printed by the kernel either).
    pub unknown_bits: Vec<u32>,
    /// `kernel` (the dump's `taint_flags[]`) or `documented` (the built-in table).
    pub table: &'static str,
}

impl Taints {
    pub fn new(mask: u64, flags: &[TaintFlagDef], from_kernel: bool) -> Taints {
        let mut set = Vec::new();
        let mut unknown = Vec::new();
        for bit in 0..64u32 {
            if mask & (1u64 << bit) == 0 {
                continue;
            }
            match flags.get(bit as usize) {
                Some(f) => set.push(SetTaint {
                    bit,
                    letter: f.c_true,
                    name: f.name.clone(),
                }),
                None => unknown.push(bit),
            }
        }
        Taints {
            mask,
            string: taint_string(mask, flags),
            flags: set,
            unknown_bits: unknown,
            table: if from_kernel { "kernel" } else { "documented" },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings: the 6.1 guest's panic line (console.log of the fixture set,
    /// `Tainted: G           O      ` for mask 4096) and print_tainted()'s rules by hand.
    #[test]
    fn strings_match_print_tainted() {
        let t = documented_flags(None);
        assert_eq!(taint_string(0, &t), "Not tainted");
        assert_eq!(taint_string(4096, &t), "Tainted: G           O      ");
        assert_eq!(
            taint_string(1 | (1 << 9) | (1 << 18), &t),
            "Tainted: P        W        N"
        );
        // A 17-flag kernel (4.18) prints 17 characters.
        let old = documented_flags(Some(17));
        assert_eq!(taint_string(1 << 12, &old), "Tainted: G           O    ");
    }

    #[test]
    fn set_flags_by_name() {
        let t = Taints::new(4096 | (1 << 40), &documented_flags(None), false);
        assert_eq!(
            t.flags,
            vec![SetTaint {
                bit: 12,
                letter: 'O',
                name: "OOT_MODULE".into()
            }]
        );
        assert_eq!(t.unknown_bits, vec![40]);
    }
}
