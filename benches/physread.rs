//! Random 4 KiB physical reads per second over the present pages of real dumps.
//!
//! `cargo bench --bench physread -- /path/to/mdf.zlib-d31 /path/to/vmcore.elf`
//!
//! For each dump: open it (timed), list its present pages from `ranges()` + `is_dumped()`, then
//! read pages in a fixed pseudo-random order for about two seconds on one thread, and again on
//! every core at once (the page cache is shared). Random order over a whole dump mostly misses the
//! small decompressed-page cache, so this measures decompression and I/O, not the cache.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vmcore_report::addr::PhysAddr;
use vmcore_report::dump::{self, PhysMem};

const PAGE: u64 = 4096;
const RUN: Duration = Duration::from_secs(2);

fn present_pages(mem: &dyn PhysMem) -> Vec<u64> {
    let mut out = Vec::new();
    for r in mem.ranges() {
        let mut a = r.start.0 / PAGE * PAGE;
        while a < r.end.0 {
            if mem.is_dumped(PhysAddr(a)) {
                out.push(a);
            }
            a += PAGE;
        }
    }
    out
}

/// Reads random present pages until `RUN` elapses; returns the number of reads.
fn run(mem: &dyn PhysMem, pages: &[u64], seed: u64) -> u64 {
    let mut x = seed | 1;
    let mut buf = vec![0u8; PAGE as usize];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = pages[(x % pages.len() as u64) as usize];
            mem.read_phys(PhysAddr(a), &mut buf)
                .expect("present page reads");
            n += 1;
        }
    }
    n
}

fn main() {
    let paths: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        eprintln!("usage: cargo bench --bench physread -- <dump>...");
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for path in paths {
        let t = Instant::now();
        let d = match dump::open(std::slice::from_ref(&path)) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let open = t.elapsed();
        let pages = present_pages(&*d.mem);
        if pages.is_empty() {
            eprintln!("{}: no present pages", path.display());
            continue;
        }
        let one = run(&*d.mem, &pages, 0x9e37_79b9_7f4a_7c15) as f64 / RUN.as_secs_f64();
        let all: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|i| {
                    let (mem, pages) = (&d.mem, &pages);
                    s.spawn(move || run(&**mem, pages, 0x1234_5678 + i as u64))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let all = all as f64 / RUN.as_secs_f64();
        println!(
            "{}: format {}, {} present pages, open {:.1} ms, 1 thread {:.0} reads/s ({:.0} MiB/s), \
             {threads} threads {:.0} reads/s ({:.0} MiB/s)",
            path.display(),
            d.info.format.name(),
            pages.len(),
            open.as_secs_f64() * 1e3,
            one,
            one * PAGE as f64 / (1 << 20) as f64,
            all,
            all * PAGE as f64 / (1 << 20) as f64,
        );
    }
}
