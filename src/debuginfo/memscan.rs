//! Bounded searches of the kernel image in a dump's memory, for tables a kernel without the
//! VMCOREINFO lines naming them still holds (kallsyms, BTF).
//!
//! The image is read from `start` in [`CHUNK`]-sized pieces (consecutive pieces overlap by the
//! needle's length so a match across a boundary is found); a piece that cannot be read ends the
//! search (the image is one contiguous mapping). At most `limit` bytes are searched.

/// Reads `len` bytes of kernel memory.
pub type ReadFn<'a> = &'a dyn Fn(u64, usize) -> Result<Vec<u8>, String>;

/// Bytes read per step.
pub const CHUNK: usize = 1 << 20;

/// The addresses, in order, at which `needle` starts at a multiple of `align`, in
/// `[start, start + limit)`; at most `max_hits` of them.
pub fn find_all(
    read: ReadFn<'_>,
    start: u64,
    limit: u64,
    needle: &[u8],
    align: u64,
    max_hits: usize,
) -> Vec<u64> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut hits = Vec::new();
    let mut at = start;
    let end = start.saturating_add(limit);
    while at < end && hits.len() < max_hits {
        let len = CHUNK.min((end - at) as usize + needle.len());
        let Ok(buf) = read(at, len) else {
            break;
        };
        for i in finder.find_iter(&buf) {
            let a = at + i as u64;
            if a < end && a % align.max(1) == 0 && !hits.contains(&a) {
                hits.push(a);
                if hits.len() >= max_hits {
                    break;
                }
            }
        }
        at += CHUNK as u64;
    }
    hits
}
