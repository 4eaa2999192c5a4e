//! kallsyms decoded from the dump's memory, on every real fixture set, against the vmlinux's own
//! `.symtab` (KASLR-shifted): every symbol of the kernel's table that the vmlinux has, at the
//! same runtime address. The tables are where VMCOREINFO says (6.0+) or, on the 5.10 sets
//! (single-byte name lengths, before 6.1), where the vmlinux's symbols put them.

mod common;

use std::collections::HashMap;

use vmcore_report::addr::VirtAddr;
use vmcore_report::debuginfo::kallsyms::{self, KallsymsTables};

#[test]
fn kallsyms_from_memory_equal_the_vmlinux_symbols() {
    for set in common::fixtures::SETS {
        let Some(dir) = common::fixtures::set(set) else {
            continue;
        };
        let dump = ["vmcore.elf", "vmcore.raw"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .unwrap();
        let k = common::kernel::open(&dump, &dir.join("vmlinux"));
        let vi = k.vmcoreinfo().expect("VMCOREINFO");
        let tables = KallsymsTables::from_vmcoreinfo(vi).unwrap_or_else(|| {
            let sym = |name: &str| k.symbols().lookup(name).map(|s| s.address.0);
            let need = |name: &str| sym(name).unwrap_or_else(|| panic!("{set}: no {name}"));
            eprintln!("{set}: VMCOREINFO names no kallsyms tables: the vmlinux's symbols do");
            KallsymsTables {
                num_syms: need("kallsyms_num_syms"),
                names: need("kallsyms_names"),
                token_table: need("kallsyms_token_table"),
                token_index: need("kallsyms_token_index"),
                offsets: sym("kallsyms_offsets"),
                relative_base: sym("kallsyms_relative_base"),
                addresses: sym("kallsyms_addresses"),
            }
        });
        let stext = vi.symbol("_stext").expect("SYMBOL(_stext)");
        let read = |addr: u64, len: usize| -> Result<Vec<u8>, String> {
            k.read_bytes(VirtAddr(addr), len).map_err(|e| e.to_string())
        };
        let t0 = std::time::Instant::now();
        let ks = kallsyms::decode(&tables, &read, k.info().endian, stext)
            .unwrap_or_else(|e| panic!("{set}: {e}"));
        let took = t0.elapsed();
        // the vmlinux's symbols, by name (several may share one: keep every address)
        let mut vml: HashMap<String, Vec<u64>> = HashMap::new();
        for s in k.symbols().iter() {
            vml.entry(s.name.clone()).or_default().push(s.address.0);
        }
        let (mut same, mut absent) = (0usize, 0usize);
        let mut wrong = Vec::new();
        for s in &ks.symbols {
            match vml.get(&s.name) {
                Some(addrs) if addrs.contains(&s.address) => same += 1,
                Some(addrs) => wrong.push(format!("{} {:#x} vs {:x?}", s.name, s.address, addrs)),
                None => absent += 1,
            }
        }
        eprintln!(
            "{set}: {} kallsyms symbols ({:?}, long lengths {}), {same} at the vmlinux's address, {absent} not in the vmlinux, {} different, decoded in {took:?}",
            ks.symbols.len(),
            ks.encoding,
            ks.long_lengths,
            wrong.len()
        );
        assert!(
            wrong.is_empty(),
            "{set}: {} symbols at another address: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(10)]
        );
        assert!(
            ks.symbols.len() > 20_000,
            "{set}: only {} symbols",
            ks.symbols.len()
        );
        assert!(
            same * 100 >= ks.symbols.len() * 99,
            "{set}: only {same} of {} found in the vmlinux",
            ks.symbols.len()
        );
        // without CONFIG_KALLSYMS_ALL (Debian's arm64 kernel) the table has no `init_task`
        let names: &[&str] = if ks.symbols.iter().any(|s| s.name == "init_task") {
            &["_stext", "init_task", "panic", "schedule"]
        } else {
            &["_stext", "panic", "schedule"]
        };
        for &name in names {
            let s = ks
                .symbols
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{set}: no {name}"));
            assert!(vml[name].contains(&s.address), "{set}: {name}");
        }
    }
}
