//! makedumpfile's flattened format (`makedumpfile -F`, QEMU `dump-guest-memory -z` before 8.2).
//!
//! A kdump-compressed file written as a stream, for pipes that cannot seek:
//!
//! - a 4096-byte header: signature `makedumpfile` NUL-padded to 16 bytes, then big-endian i64
//!   `type` (1) and `version` (1);
//! - records: big-endian `{i64 offset, i64 size}` followed by `size` bytes that belong at `offset`
//!   of the kdump file. Records come in any order, and a later record may rewrite bytes of an
//!   earlier one (the last write wins, as with `makedumpfile -R`, which replays them with
//!   `lseek` + `write`);
//! - `offset = size = -1` ends the stream.
//!
//! The stream is indexed once into a sorted, disjoint interval map from kdump-file ranges to flat
//! file offsets, then read as a kdump file through that map: no reassembled copy is made. Holes
//! no record wrote read as zeros, as they would in the reassembled (sparse) file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use super::DumpError;
use super::kdump::KdumpFile;
use super::source::ByteSource;

pub const SIGNATURE: &[u8; 16] = b"makedumpfile\0\0\0\0";
const HEADER_SIZE: u64 = 4096;

/// `[start, end)` of the kdump file, stored at `flat` in the flattened file.
#[derive(Clone, Copy, Debug)]
struct Extent {
    start: u64,
    end: u64,
    flat: u64,
}

/// A flattened file, viewed as the kdump file it encodes.
#[derive(Debug)]
pub struct FlatView {
    src: ByteSource,
    /// Sorted by `start`, disjoint.
    extents: Vec<Extent>,
    len: u64,
    /// Number of records in the stream (for diagnostics).
    pub records: usize,
    /// The stream ended without the `-1/-1` end marker.
    pub unterminated: bool,
    /// The stream size the record cut by the end of the file implies.
    cut_record_end: Option<u64>,
}

impl FlatView {
    /// Indexes the records of a flattened file in one pass.
    pub fn index(src: ByteSource) -> Result<FlatView, DumpError> {
        let hdr = src.slice(0, 32, "flattened header")?;
        if hdr.get(..16) != Some(&SIGNATURE[..]) {
            return Err(DumpError::NotADump(
                "no makedumpfile flattened signature".into(),
            ));
        }
        let be = |b: &[u8], o: usize| -> i64 {
            b.get(o..o + 8)
                .and_then(|s| s.try_into().ok())
                .map(i64::from_be_bytes)
                .unwrap_or(0)
        };
        let (ftype, version) = (be(hdr, 16), be(hdr, 24));
        if ftype != 1 {
            return Err(DumpError::Unsupported(format!(
                "flattened file of type {ftype} (only type 1 is defined)"
            )));
        }
        if version != 1 {
            tracing::warn!(
                version,
                "flattened format version is not 1; reading it anyway"
            );
        }
        // (start -> (end, flat offset)), disjoint; later records overwrite earlier ones.
        let mut map: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut pos = HEADER_SIZE;
        let mut records = 0usize;
        let mut unterminated = true;
        let mut cut_record_end = None;
        let total = src.len();
        while pos < total {
            let Ok(rec) = src.slice(pos, 16, "flattened record header") else {
                cut_record_end = Some(pos + 16);
                break;
            };
            let (offset, size) = (be(rec, 0), be(rec, 8));
            if offset == -1 && size == -1 {
                unterminated = false;
                break;
            }
            if offset < 0 || size < 0 {
                return Err(DumpError::Corrupt {
                    offset: pos,
                    what: format!("flattened record with offset {offset} and size {size}"),
                });
            }
            let (offset, size) = (offset as u64, size as u64);
            let data = pos + 16;
            let end = offset.checked_add(size).ok_or(DumpError::Corrupt {
                offset: pos,
                what: "flattened record range overflows".into(),
            })?;
            if data.checked_add(size).is_none_or(|e| e > total) {
                // Keep the part of the record that is there: its bytes are as good as any.
                tracing::debug!(pos, "flattened stream truncated inside a record");
                let present = total.saturating_sub(data);
                if present > 0 {
                    overwrite(&mut map, offset, offset + present, data);
                }
                cut_record_end = Some(data.saturating_add(size));
                break;
            }
            if size > 0 {
                overwrite(&mut map, offset, end, data);
            }
            records += 1;
            pos = data + size;
        }
        if unterminated {
            tracing::debug!("flattened stream has no end marker; using the records present");
        }
        let extents: Vec<Extent> = map
            .into_iter()
            .map(|(start, (end, flat))| Extent { start, end, flat })
            .collect();
        let len = extents.last().map_or(0, |e| e.end);
        Ok(FlatView {
            src,
            extents,
            len,
            records,
            unterminated,
            cut_record_end,
        })
    }
}

/// Records `[start, end)` at `flat`, trimming whatever earlier extents it overlaps.
fn overwrite(map: &mut BTreeMap<u64, (u64, u64)>, start: u64, end: u64, flat: u64) {
    let overlapping: Vec<(u64, u64, u64)> = map
        .range(..end)
        .rev()
        .take_while(|(_, (e, _))| *e > start)
        .map(|(&s, &(e, f))| (s, e, f))
        .collect();
    for (s, e, f) in overlapping {
        map.remove(&s);
        if s < start {
            map.insert(s, (start, f));
        }
        if e > end {
            map.insert(end, (e, f + (end - s)));
        }
    }
    map.insert(start, (end, flat));
}

impl KdumpFile for FlatView {
    fn len(&self) -> u64 {
        self.len
    }

    fn release_resident(&self) {
        self.src.release_resident()
    }

    fn path(&self) -> &Path {
        self.src.path()
    }

    /// Whether records wrote every byte of `[offset, offset + len)`.
    fn written(&self, offset: u64, len: u64) -> bool {
        let Some(end) = offset.checked_add(len) else {
            return false;
        };
        let mut at = offset;
        let mut i = self.extents.partition_point(|e| e.end <= offset);
        while at < end {
            match self.extents.get(i) {
                Some(x) if x.start <= at => at = x.end,
                _ => return false,
            }
            i += 1;
        }
        true
    }

    fn stored_size(&self) -> (u64, Option<u64>) {
        (self.src.len(), self.cut_record_end)
    }

    fn cut(&self) -> bool {
        self.unterminated
    }

    fn read(&self, offset: u64, len: u64, what: &str) -> Result<Cow<'_, [u8]>, DumpError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                DumpError::Truncated(format!(
                    "{what}: {len:#x} bytes at kdump offset {offset:#x} are past the end of the \
                     flattened stream ({:#x} bytes reassembled)",
                    self.len
                ))
            })?;
        let mut i = self.extents.partition_point(|e| e.end <= offset);
        // Fast path: one extent holds the whole range, borrow it from the map.
        if let Some(x) = self.extents.get(i)
            && x.start <= offset
            && end <= x.end
        {
            return Ok(Cow::Borrowed(self.src.slice(
                x.flat + (offset - x.start),
                len,
                what,
            )?));
        }
        // A range spanning several records (or holes) is assembled; a real kdump file read this
        // way is mostly written data, so an assembly larger than the whole flattened file can
        // only come from a hostile stream and is refused rather than allocated.
        if len > self.src.len() {
            return Err(DumpError::Corrupt {
                offset,
                what: format!(
                    "{what}: {len:#x} bytes at kdump offset {offset:#x} are mostly unwritten in \
                     the flattened stream"
                ),
            });
        }
        let mut out = vec![0u8; len as usize];
        while let Some(x) = self.extents.get(i) {
            if x.start >= end {
                break;
            }
            let s = x.start.max(offset);
            let e = x.end.min(end);
            let bytes = self.src.slice(x.flat + (s - x.start), e - s, what)?;
            out[(s - offset) as usize..(e - offset) as usize].copy_from_slice(bytes);
            i += 1;
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random overlapping writes: the interval map must agree with replaying them into a buffer.
    #[test]
    fn last_write_wins_like_a_replay() {
        let mut x: u64 = 0xdead_beef_cafe_f00d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut map = BTreeMap::new();
        let mut replay = vec![u64::MAX; 4096];
        for rec in 0..500u64 {
            let start = next() % 4000;
            let len = 1 + next() % 96;
            let end = (start + len).min(4096);
            // Record `rec` stores byte i of its range at flat offset rec * 10000 + i.
            overwrite(&mut map, start, end, rec * 10000);
            for (i, slot) in replay[start as usize..end as usize].iter_mut().enumerate() {
                *slot = rec * 10000 + i as u64;
            }
        }
        let mut seen = vec![u64::MAX; 4096];
        let mut prev_end = 0;
        for (&s, &(e, f)) in &map {
            assert!(s >= prev_end && s < e, "disjoint, non-empty");
            prev_end = e;
            for (i, slot) in seen[s as usize..e as usize].iter_mut().enumerate() {
                *slot = f + i as u64;
            }
        }
        assert_eq!(seen, replay);
    }
}
