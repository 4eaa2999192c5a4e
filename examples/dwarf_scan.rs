//! How far the lazy DWARF index scans for each lookup:
//! `cargo run --release --example dwarf_scan -- VMLINUX init_uts_ns tainted_mask T:struct rq`
//! (a `T:` prefix looks up a type, anything else a variable).

use std::sync::Arc;
use vmcore_report::debuginfo::{TypeSource, dwarf::DwarfTypes, elf::Vmlinux};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let vm = Arc::new(Vmlinux::open(a[1].as_ref()).unwrap());
    let t = DwarfTypes::new(vm).unwrap();
    for n in &a[2..] {
        let s = std::time::Instant::now();
        let r = if let Some(ty) = n.strip_prefix("T:") {
            t.find_type(ty).map(|x| x.is_some())
        } else {
            t.variable_type(n).map(|x| x.is_some())
        };
        println!(
            "{n}: {r:?} scanned {} in {:?}",
            t.units_scanned(),
            s.elapsed()
        );
    }
}
