//! Bounded searches of the kernel image in a dump's memory, for tables a kernel without the
//! VMCOREINFO lines naming them still holds (kallsyms, BTF).
//!
//! The image is read from `start` in [`CHUNK`]-sized pieces (consecutive pieces overlap by the
//! needle's length so a match across a boundary is found). A piece that cannot be read whole is
//! read page by page, the missing pages as zeros: a filtered dump leaves out the image's zero
//! pages, and the pages the kernel freed between its text and read-only data (x86_64 aligns
//! them to 2 MiB; `free_kernel_image_pages`) are free pages, so whole megabytes may be missing
//! before the tables. At most `limit` bytes are searched.

pub use crate::debuginfo::kallsyms::ReadFn;

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
        let Some(buf) = read_lenient(read, at, len) else {
            at += CHUNK as u64;
            continue;
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

/// `len` bytes at `at`; if they cannot be read whole, page by page with the unreadable pages as
/// zeros; `None` if no page is readable.
pub fn read_lenient(read: ReadFn<'_>, at: u64, len: usize) -> Option<Vec<u8>> {
    read(at, len).ok().or_else(|| by_pages(read, at, len))
}

/// `len` bytes at `at`, page by page, unreadable pages as zeros; `None` if no page is readable.
fn by_pages(read: ReadFn<'_>, at: u64, len: usize) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut buf = vec![0u8; len];
    let mut any = false;
    let mut off = 0usize;
    while off < len {
        let addr = at + off as u64;
        let n = ((PAGE - addr % PAGE) as usize).min(len - off);
        if let Ok(b) = read(addr, n) {
            buf[off..off + n].copy_from_slice(&b[..n.min(b.len())]);
            any = true;
        }
        off += n;
    }
    any.then_some(buf)
}
