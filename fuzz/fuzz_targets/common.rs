//! Shared by the dump fuzz targets: open the bytes, then exercise every reader entry point.

use vmcore_report::addr::PhysAddr;
use vmcore_report::dump;

/// Opens `data` as a dump (errors are expected) and reads pages of every range it claims,
/// including reads that cross page and range boundaries.
pub fn open_and_read(data: &[u8]) {
    let Ok(d) = dump::open_bytes(data.to_vec()) else {
        return;
    };
    // What a cut file lacks (computed from the headers; ELF walks its pieces here).
    if let Some(t) = d.info.health.truncated {
        assert!(t.actual_size <= data.len() as u64, "{t:?}");
    }
    let ps = d.info.page_size.clamp(512, 1 << 16);
    let mut buf = vec![0u8; ps as usize + 17];
    let mut reads = 0;
    for r in d.mem.ranges().iter().take(16) {
        let mut a = r.start.0;
        while a < r.end.0 && reads < 64 {
            let _ = d.mem.is_dumped(PhysAddr(a));
            let _ = d.mem.read_phys(PhysAddr(a), &mut buf);
            reads += 1;
            a = a.saturating_add(ps);
        }
        let _ = d
            .mem
            .read_phys(PhysAddr(r.end.0.saturating_sub(5)), &mut buf);
    }
    let _ = d.mem.read_phys(PhysAddr(u64::MAX - 3), &mut buf);
    if let Some(vi) = &d.info.vmcoreinfo {
        let _ = vmcore_report::dump::notes::arch_from_vmcoreinfo(vi);
    }
}
