//! x86_64 ORC unwind tables (`.orc_unwind_ip` + `.orc_unwind`), decoded into one format.
//!
//! objtool writes, for every code location where the stack layout changes, an IP and an
//! `struct orc_entry` (arch/x86/include/asm/orc_types.h, read by arch/x86/kernel/unwind_orc.c):
//!
//! - `.orc_unwind_ip`: `s32` per entry, **self-relative**: entry *i* covers code from
//!   `&ip[i] + ip[i]` up to the next entry's IP. The kernel keeps it sorted (build-time
//!   `sorttable` since 5.6, boot-time sort before); a file copy older than 5.6 may be unsorted, so
//!   [`OrcTable::new`] sorts when it must, placing a section terminator before a real entry at
//!   the same IP as the kernel's `orc_sort_cmp` does.
//! - `.orc_unwind`: 6 packed little-endian bytes per entry: `s16 sp_offset`, `s16 bp_offset`,
//!   then a 16-bit bitfield whose meaning changed three times:
//!
//! | format | kernels | bits 0–3 | 4–7 | 8– | flags |
//! |---|---|---|---|---|---|
//! | [`OrcFormat::V1`] | 4.14 – 6.2 | sp_reg | bp_reg | type:2 (CALL 0, REGS 1, REGS_PARTIAL 2) | `end` bit 10 (4.19+) |
//! | [`OrcFormat::V2`] | 6.3 | sp_reg | bp_reg | type:2 | `signal` bit 10, `end` bit 11 |
//! | [`OrcFormat::V3`] | 6.4 – 7.0 | sp_reg | bp_reg | type:3 (UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4) | `signal` bit 11 |
//! | [`OrcFormat::V4`] | 7.1+ | same as V3, registers renumbered | | | |
//!
//! Registers (`ORC_REG_*`), V1–V3: UNDEFINED 0, PREV_SP 1, DX 2, DI 3, BP 4, SP 5, R10 6, R13 7,
//! BP_INDIRECT 8, SP_INDIRECT 9; V4: UNDEFINED 0, AX 1, DX 2, SP 3, BP 4, DI 5, R10 6, R13 7,
//! PREV_SP 8, SP_INDIRECT 9, BP_INDIRECT 10. In V1/V2 a terminator is `sp_reg == UNDEFINED`, the
//! end of the stack the same with `end` set; `signal` is implied by the REGS types.
//!
//! The format is told from the data, never from the kernel version alone ([`detect_format`]):
//! the 20-byte `.orc_header` (SHA-1 of orc_types.h, scripts/orc_hash.sh, 6.3.10+/6.4+) when its
//! hash is known, the DWARF layout of `struct orc_entry` (an `end` member: V1/V2; a `signal`
//! member: V2+; a 3-bit `type`: V3/V4), the `bp_reg` of the kernel's own `orc_fp_entry` (PREV_SP:
//! 1 before 7.1, 8 after), and finally how plausible the decoded entries are under each
//! remaining candidate.

use std::cmp::Ordering;

/// Size of one `struct orc_entry`.
pub const ORC_ENTRY_SIZE: usize = 6;

/// The most entries one table may have. Debian's cloud kernels have 368 456 (6.1) and 434 496
/// (6.12); a table claiming ten times more is corrupt.
pub const MAX_ORC_ENTRIES: usize = 4 << 20;

/// The `struct orc_entry` layouts the kernel used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrcFormat {
    /// 4.14 – 6.2: `type:2`, `end`.
    V1,
    /// 6.3: `type:2`, `signal`, `end`.
    V2,
    /// 6.4 – 7.0: `type:3`, `signal`.
    V3,
    /// 7.1+: as V3 with renumbered registers.
    V4,
}

impl OrcFormat {
    pub const ALL: [OrcFormat; 4] = [OrcFormat::V1, OrcFormat::V2, OrcFormat::V3, OrcFormat::V4];
}

/// The `.orc_header` hashes of the known orc_types.h versions (scripts/orc_hash.sh output, as
/// drgn records them in libdrgn/orc_info.c).
const KNOWN_HEADERS: [(&str, OrcFormat); 3] = [
    ("db84aed4103b31dd51e017f8f79783ca985c2c51", OrcFormat::V2),
    ("fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24", OrcFormat::V3),
    ("137c36ad7627c4dd55932176bb0ecdbd5041fc82", OrcFormat::V4),
];

/// The format an `.orc_header` names, when its hash is a known one.
pub fn format_from_header(header: &[u8]) -> Option<OrcFormat> {
    let hex = hex::encode(header.get(..20)?);
    KNOWN_HEADERS
        .iter()
        .find(|(h, _)| *h == hex)
        .map(|&(_, f)| f)
}

/// A base register of an ORC entry, named independently of the format's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrcReg {
    Undefined,
    /// The canonical frame address (the caller's SP before the call).
    PrevSp,
    Sp,
    Bp,
    SpIndirect,
    BpIndirect,
    Ax,
    Dx,
    Di,
    R10,
    R13,
    /// A number the format does not define.
    Unknown(u8),
}

impl OrcReg {
    fn decode(n: u8, format: OrcFormat) -> OrcReg {
        match (format, n) {
            (_, 0) => OrcReg::Undefined,
            (_, 2) => OrcReg::Dx,
            (_, 4) => OrcReg::Bp,
            (_, 6) => OrcReg::R10,
            (_, 7) => OrcReg::R13,
            (_, 9) => OrcReg::SpIndirect,
            (OrcFormat::V4, 1) => OrcReg::Ax,
            (OrcFormat::V4, 3) => OrcReg::Sp,
            (OrcFormat::V4, 5) => OrcReg::Di,
            (OrcFormat::V4, 8) => OrcReg::PrevSp,
            (OrcFormat::V4, 10) => OrcReg::BpIndirect,
            (OrcFormat::V4, n) => OrcReg::Unknown(n),
            (_, 1) => OrcReg::PrevSp,
            (_, 3) => OrcReg::Di,
            (_, 5) => OrcReg::Sp,
            (_, 8) => OrcReg::BpIndirect,
            (_, n) => OrcReg::Unknown(n),
        }
    }
}

/// The kind of frame an entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrcType {
    /// No unwind information here (a blind spot): the unwind stops with an error.
    Undefined,
    /// The end of the kernel stack.
    EndOfStack,
    /// A function frame: the return address is just below the CFA.
    Call,
    /// A full `struct pt_regs` at the CFA.
    Regs,
    /// An IRET frame (ip, cs, flags, sp, ss) at the CFA.
    RegsPartial,
    Unknown(u8),
}

/// One `struct orc_entry`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrcEntry {
    pub sp_offset: i16,
    pub bp_offset: i16,
    pub sp_reg: OrcReg,
    pub bp_reg: OrcReg,
    pub kind: OrcType,
    /// The caller's pc is exact (it was interrupted), not a return address.
    pub signal: bool,
}

impl OrcEntry {
    /// Decodes the 6 bytes of an entry in `format`.
    pub fn decode(raw: [u8; ORC_ENTRY_SIZE], format: OrcFormat) -> OrcEntry {
        let sp_offset = i16::from_le_bytes([raw[0], raw[1]]);
        let bp_offset = i16::from_le_bytes([raw[2], raw[3]]);
        let flags = u16::from_le_bytes([raw[4], raw[5]]);
        let sp_reg = OrcReg::decode((flags & 0xf) as u8, format);
        let bp_reg = OrcReg::decode(((flags >> 4) & 0xf) as u8, format);
        let (kind, signal) = match format {
            OrcFormat::V1 | OrcFormat::V2 => {
                let end = flags
                    & if format == OrcFormat::V1 {
                        1 << 10
                    } else {
                        1 << 11
                    }
                    != 0;
                let kind = if sp_reg == OrcReg::Undefined {
                    if end {
                        OrcType::EndOfStack
                    } else {
                        OrcType::Undefined
                    }
                } else {
                    match (flags >> 8) & 3 {
                        0 => OrcType::Call,
                        1 => OrcType::Regs,
                        2 => OrcType::RegsPartial,
                        n => OrcType::Unknown(n as u8),
                    }
                };
                let signal = if format == OrcFormat::V1 {
                    matches!(kind, OrcType::Regs | OrcType::RegsPartial)
                } else {
                    flags & (1 << 10) != 0
                };
                (kind, signal)
            }
            OrcFormat::V3 | OrcFormat::V4 => {
                let kind = match (flags >> 8) & 7 {
                    0 => OrcType::Undefined,
                    1 => OrcType::EndOfStack,
                    2 => OrcType::Call,
                    3 => OrcType::Regs,
                    4 => OrcType::RegsPartial,
                    n => OrcType::Unknown(n as u8),
                };
                (kind, flags & (1 << 11) != 0)
            }
        };
        OrcEntry {
            sp_offset,
            bp_offset,
            sp_reg,
            bp_reg,
            kind,
            signal,
        }
    }

    /// A section terminator: "no information", which a real entry at the same IP overrides.
    fn is_terminator(&self) -> bool {
        self.kind == OrcType::Undefined
    }
}

/// Why a table could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrcError {
    #[error("ORC table at {base:#x}: {ips} IPs but {entries} entries")]
    CountMismatch {
        base: u64,
        ips: usize,
        entries: usize,
    },
    #[error("ORC table at {base:#x}: {count} entries (more than {MAX_ORC_ENTRIES})")]
    TooLarge { base: u64, count: usize },
    #[error("ORC table at {base:#x}: empty")]
    Empty { base: u64 },
    #[error("ORC format not recognized: {0}")]
    UnknownFormat(String),
}

/// One sorted table (the vmlinux's, or one module's), with absolute IPs.
#[derive(Clone, Debug)]
pub struct OrcTable {
    /// A name for messages (`vmlinux`, a module's name).
    pub name: String,
    ips: Vec<u64>,
    entries: Vec<OrcEntry>,
    /// The code range the table answers for, `[start, end)`.
    start: u64,
    end: u64,
}

impl OrcTable {
    /// Builds a table from the raw sections: `ip_bytes` is `.orc_unwind_ip` as it lies at
    /// address `ip_base`, `entry_bytes` is `.orc_unwind`. The counts must agree (as
    /// `unwind_init` and `unwind_module_init` require). `range` is the code the table covers;
    /// without it, from the first IP to the last (the last entry is a terminator at the end of
    /// the text).
    pub fn new(
        name: &str,
        ip_base: u64,
        ip_bytes: &[u8],
        entry_bytes: &[u8],
        format: OrcFormat,
        range: Option<(u64, u64)>,
    ) -> Result<OrcTable, OrcError> {
        let n = ip_bytes.len() / 4;
        let m = entry_bytes.len() / ORC_ENTRY_SIZE;
        if ip_bytes.len() % 4 != 0 || entry_bytes.len() % ORC_ENTRY_SIZE != 0 || n != m {
            return Err(OrcError::CountMismatch {
                base: ip_base,
                ips: n,
                entries: m,
            });
        }
        if n > MAX_ORC_ENTRIES {
            return Err(OrcError::TooLarge {
                base: ip_base,
                count: n,
            });
        }
        if n == 0 {
            return Err(OrcError::Empty { base: ip_base });
        }
        // Built straight into the two lists (the kernel's tables are sorted at build time by
        // scripts/sorttable); pairs are made and sorted only for a table that is not.
        let mut ips: Vec<u64> = Vec::with_capacity(n);
        let mut entries: Vec<OrcEntry> = Vec::with_capacity(n);
        for (i, (ip, e)) in ip_bytes
            .chunks_exact(4)
            .zip(entry_bytes.chunks_exact(ORC_ENTRY_SIZE))
            .enumerate()
        {
            let rel = i32::from_le_bytes([ip[0], ip[1], ip[2], ip[3]]);
            let slot = ip_base.wrapping_add(4 * i as u64);
            ips.push(slot.wrapping_add_signed(i64::from(rel)));
            entries.push(OrcEntry::decode(
                [e[0], e[1], e[2], e[3], e[4], e[5]],
                format,
            ));
        }
        let sorted = (1..n).all(|k| match ips[k - 1].cmp(&ips[k]) {
            Ordering::Less => true,
            Ordering::Equal => entries[k - 1].is_terminator() || !entries[k].is_terminator(),
            Ordering::Greater => false,
        });
        if !sorted {
            // Terminators first among equal IPs, so the rightmost match is the real entry.
            let mut pairs: Vec<(u64, OrcEntry)> = ips.into_iter().zip(entries).collect();
            pairs.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| b.1.is_terminator().cmp(&a.1.is_terminator()))
            });
            (ips, entries) = pairs.into_iter().unzip();
        }
        let (start, end) = range.unwrap_or((ips[0], ips[n - 1].saturating_add(1)));
        Ok(OrcTable {
            name: name.to_string(),
            ips,
            entries,
            start,
            end,
        })
    }

    pub fn len(&self) -> usize {
        self.ips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// Whether `ip` is in the code this table answers for.
    pub fn covers(&self, ip: u64) -> bool {
        self.start <= ip && ip < self.end
    }

    /// The entry for `ip`: the last one whose IP is at or below it (the kernel's `__orc_find`).
    pub fn find(&self, ip: u64) -> Option<&OrcEntry> {
        self.find_with_ip(ip).map(|(_, e)| e)
    }

    /// [`OrcTable::find`], with the IP the entry starts at.
    pub fn find_with_ip(&self, ip: u64) -> Option<(u64, &OrcEntry)> {
        if !self.covers(ip) {
            return None;
        }
        let i = self.ips.partition_point(|&x| x <= ip);
        i.checked_sub(1).map(|i| (self.ips[i], &self.entries[i]))
    }

    /// The absolute IPs, in order.
    pub fn ips(&self) -> &[u64] {
        &self.ips
    }
}

/// The tables of the kernel image and its modules.
#[derive(Clone, Debug, Default)]
pub struct OrcTables {
    pub format: Option<OrcFormat>,
    tables: Vec<OrcTable>,
}

impl OrcTables {
    pub fn new(format: OrcFormat) -> OrcTables {
        OrcTables {
            format: Some(format),
            tables: Vec::new(),
        }
    }

    pub fn push(&mut self, table: OrcTable) {
        self.tables.push(table);
    }

    pub fn tables(&self) -> &[OrcTable] {
        &self.tables
    }

    /// The entry for `ip` in the first table that covers it.
    pub fn find(&self, ip: u64) -> Option<&OrcEntry> {
        self.find_with_ip(ip).map(|(_, e)| e)
    }

    /// [`OrcTables::find`], with the IP the entry starts at.
    pub fn find_with_ip(&self, ip: u64) -> Option<(u64, &OrcEntry)> {
        self.tables.iter().find(|t| t.covers(ip))?.find_with_ip(ip)
    }
}

/// What the kernel says about its ORC format, besides the entries themselves.
#[derive(Clone, Debug, Default)]
pub struct FormatEvidence {
    /// The 20 bytes of `.orc_header` (`__start_orc_header`), when the kernel has one.
    pub header: Option<Vec<u8>>,
    /// The DWARF layout of `struct orc_entry`, when the debug info has it.
    pub layout: Option<EntryLayout>,
    /// The raw `bp_reg` number of the kernel's `orc_fp_entry` (5.2+): PREV_SP, 1 before 7.1 and
    /// 8 after.
    pub fp_entry_bp_reg: Option<u8>,
}

/// The members of `struct orc_entry` in the debug info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLayout {
    pub has_end: bool,
    pub has_signal: bool,
    /// The bit width of `type` (2 before 6.4, 3 since).
    pub type_bits: Option<u8>,
}

/// How plausible `entries` (raw 6-byte entries) are in `format`: the count of entries that
/// contradict it (a register number or type the format lacks, bits it never sets, a base
/// register no entry of the kind uses) and the count of ordinary function entries (CALL with
/// sp_reg SP or BP), which make up most of any real table.
pub fn plausibility(entries: &[u8], format: OrcFormat) -> (usize, usize) {
    let mut bad = 0;
    let mut calls = 0;
    for e in entries.chunks_exact(ORC_ENTRY_SIZE) {
        let raw = [e[0], e[1], e[2], e[3], e[4], e[5]];
        let flags = u16::from_le_bytes([e[4], e[5]]);
        let unused: u16 = match format {
            OrcFormat::V1 => 0xf800,
            OrcFormat::V2 => 0xf000,
            OrcFormat::V3 | OrcFormat::V4 => 0xf000,
        };
        let d = OrcEntry::decode(raw, format);
        let bad_reg = |r: OrcReg| matches!(r, OrcReg::Unknown(_));
        let bad_bp = !matches!(d.bp_reg, OrcReg::Undefined | OrcReg::PrevSp | OrcReg::Bp);
        let undefined_sp = d.sp_reg == OrcReg::Undefined;
        // A frame kind needs a CFA rule; "no information" and the end of the stack have none.
        let bad_kind = matches!(d.kind, OrcType::Unknown(_))
            || (matches!(d.kind, OrcType::Call | OrcType::Regs | OrcType::RegsPartial)
                && undefined_sp)
            || (matches!(d.kind, OrcType::Undefined | OrcType::EndOfStack) && !undefined_sp);
        // `end` marks terminators only; `signal` marks frames only.
        let bad_flag = match format {
            OrcFormat::V1 => flags & (1 << 10) != 0 && !undefined_sp,
            OrcFormat::V2 => {
                (flags & (1 << 11) != 0 && !undefined_sp)
                    || (flags & (1 << 10) != 0 && undefined_sp)
            }
            OrcFormat::V3 | OrcFormat::V4 => d.signal && undefined_sp,
        };
        if flags & unused != 0 || bad_reg(d.sp_reg) || bad_bp || bad_kind || bad_flag {
            bad += 1;
        } else if d.kind == OrcType::Call && matches!(d.sp_reg, OrcReg::Sp | OrcReg::Bp) {
            calls += 1;
        }
    }
    (bad, calls)
}

/// The most entries [`detect_format`] samples for plausibility.
const SAMPLE: usize = 65536;

/// Tells the format of `entries` (raw `.orc_unwind` bytes) from the evidence: a known header
/// hash decides; the DWARF layout and `orc_fp_entry` narrow the candidates; the entries' own
/// plausibility chooses among what remains, and must leave one clear winner.
pub fn detect_format(evidence: &FormatEvidence, entries: &[u8]) -> Result<OrcFormat, OrcError> {
    if let Some(f) = evidence.header.as_deref().and_then(format_from_header) {
        return Ok(f);
    }
    let mut candidates: Vec<OrcFormat> = OrcFormat::ALL.to_vec();
    if let Some(l) = evidence.layout {
        candidates.retain(|f| match f {
            OrcFormat::V1 => l.has_end && !l.has_signal && l.type_bits != Some(3),
            OrcFormat::V2 => l.has_end && l.has_signal && l.type_bits != Some(3),
            OrcFormat::V3 | OrcFormat::V4 => !l.has_end && l.type_bits != Some(2),
        });
    }
    match evidence.fp_entry_bp_reg {
        Some(8) => candidates.retain(|&f| f == OrcFormat::V4),
        Some(1) => candidates.retain(|&f| f != OrcFormat::V4),
        _ => {}
    }
    if candidates.is_empty() {
        return Err(OrcError::UnknownFormat(
            "the DWARF layout of struct orc_entry and orc_fp_entry contradict each other".into(),
        ));
    }
    // Sample evenly across the table: its head is the early boot code alone.
    let count = entries.len() / ORC_ENTRY_SIZE;
    let stride = count.div_ceil(SAMPLE).max(1);
    let sample: Vec<u8> = (0..count)
        .step_by(stride)
        .flat_map(|i| {
            entries[i * ORC_ENTRY_SIZE..(i + 1) * ORC_ENTRY_SIZE]
                .iter()
                .copied()
        })
        .collect();
    let sampled = sample.len() / ORC_ENTRY_SIZE;
    if sampled == 0 {
        return candidates
            .first()
            .copied()
            .filter(|_| candidates.len() == 1)
            .ok_or_else(|| OrcError::UnknownFormat("no entries to tell the format from".into()));
    }
    let mut scored: Vec<(OrcFormat, usize, usize)> = candidates
        .iter()
        .map(|&f| {
            let (bad, calls) = plausibility(&sample, f);
            (f, bad, calls)
        })
        .collect();
    // Fewest contradictions, then most ordinary function frames.
    scored.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
    let (best, bad, calls) = scored[0];
    // A real table is overwhelmingly function frames and nearly free of contradictions.
    if bad * 100 > sampled || calls * 2 < sampled {
        return Err(OrcError::UnknownFormat(format!(
            "no candidate format fits the entries ({best:?}: {bad} of {sampled} contradict it, \
             {calls} function frames)"
        )));
    }
    if let Some(&(second, bad2, calls2)) = scored.get(1)
        && bad2 == bad
        && calls2 == calls
    {
        return Err(OrcError::UnknownFormat(format!(
            "the entries fit {best:?} and {second:?} equally"
        )));
    }
    Ok(best)
}
