//! Fuzzes the BTF reader (src/debuginfo/btf.rs): parse the input as a `.BTF` section, resolve
//! every type id (and one past the last), follow every member and array element, find members
//! by name through anonymous aggregates, and look up the names the kernel view asks for.
#![no_main]

use vmcore_report::debuginfo::btf::BtfTypes;
use vmcore_report::debuginfo::{TypeId, TypeKind, TypeSource, find_member, strip_typedefs};

const NAMES: [&str; 8] = [
    "struct node",
    "union u",
    "enum state",
    "node_t",
    "int",
    "char",
    "void",
    "struct list_head",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(t) = BtfTypes::from_bytes(data.to_vec()) else {
        return;
    };
    // every record is at least 12 bytes
    assert!(t.type_count() <= data.len() / 12);
    for id in 0..=t.type_count() as u64 + 1 {
        let Ok(ty) = t.get(TypeId(id)) else {
            continue;
        };
        for m in ty.members() {
            let _ = t.get(m.ty);
        }
        match ty.kind {
            TypeKind::Array { element, .. } => {
                let _ = t.get(element);
            }
            TypeKind::Pointer { target: Some(p) } | TypeKind::Typedef { target: Some(p) } => {
                let _ = t.get(p);
            }
            _ => {}
        }
        let _ = strip_typedefs(&t, TypeId(id));
        let _ = find_member(&t, TypeId(id), "next");
    }
    for name in NAMES {
        if let Ok(Some(id)) = t.find_type(name) {
            let _ = t.get(id);
            let _ = find_member(&t, id, "g");
        }
    }
    let _ = t.variable_type("my_var");
    let _ = t.enumerator("NEG");
    let _ = t.enumerator("HUGE");
});
