//! Whether a dump is whole: what the readers found missing besides the pages a filtered dump
//! legitimately lacks.
//!
//! Two kinds of damage are told apart: a file shorter than its own headers say (a capture that
//! ran out of disk, a cut upload or copy: the readers count the pages that lie past the end), and
//! a kdump file whose header carries `DUMP_DH_COMPRESSED_INCOMPLETE` (makedumpfile's
//! `include/diskdump_mod.h`: set when writing stopped early, typically on ENOSPC). Either way the
//! memory that is present is read; what is missing reads as "not in the dump".

use super::Truncation;

/// What the readers found missing. The default is a whole dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpHealth {
    pub truncated: Option<Truncation>,
    /// The kdump header's `DUMP_DH_COMPRESSED_INCOMPLETE`.
    pub flagged_incomplete_by_header: bool,
}

impl DumpHealth {
    /// Nothing says the dump is damaged.
    pub fn is_complete(&self) -> bool {
        self.truncated.is_none() && !self.flagged_incomplete_by_header
    }

    /// One line for the user, `None` for a whole dump.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(t) = &self.truncated {
            let of = t
                .expected_size
                .map_or(String::new(), |e| format!(" of at least {e}"));
            parts.push(format!(
                "truncated: {}{of} bytes present, up to {} pages lost",
                t.actual_size, t.pages_lost
            ));
        }
        if self.flagged_incomplete_by_header {
            parts.push("its header says the capture did not finish".to_string());
        }
        (!parts.is_empty()).then(|| format!("the dump is damaged: {}", parts.join("; ")))
    }
}
