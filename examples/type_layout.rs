//! Prints the layout of a type as vmcore-report's type sources see it:
//! `cargo run --release --example type_layout -- VMLINUX "struct task_struct" [dwarf|btf]`.

use std::sync::Arc;

use vmcore_report::debuginfo::{TypeSource, btf::BtfTypes, dwarf::DwarfTypes, elf::Vmlinux};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(name)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: type_layout VMLINUX TYPE [dwarf|btf]");
        std::process::exit(2);
    };
    let t0 = std::time::Instant::now();
    let vm = Arc::new(Vmlinux::open(path.as_ref())?);
    let src: Box<dyn TypeSource> = match args.get(3).map(String::as_str) {
        Some("btf") => Box::new(BtfTypes::from_vmlinux(vm)?.ok_or("no .BTF section")?),
        _ => Box::new(DwarfTypes::new(vm)?),
    };
    let id = src.find_type(name)?.ok_or("type not found")?;
    let t = src.get(id)?;
    println!("{name}: size {:?} ({:?})", t.size, t0.elapsed());
    for m in t.members() {
        let mt = src.get(m.ty)?;
        println!(
            "  {:<32} bit {:>6} (byte {:>5}) bits {:?} size {:?}",
            m.name.as_deref().unwrap_or("<anon>"),
            m.bit_offset,
            m.bit_offset / 8,
            m.bit_size,
            mt.size
        );
    }
    Ok(())
}
