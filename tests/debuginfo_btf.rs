//! The BTF parser on a hand-assembled blob (layout per include/uapi/linux/btf.h), and
//! robustness of the BTF and DWARF readers against damaged input: errors, never panics.

mod common;

use std::sync::Arc;

use common::dwarf::{KernelVersion, sample_kernel};
use object::{Object, ObjectSection};
use vmcore_report::debuginfo::btf::BtfTypes;
use vmcore_report::debuginfo::dwarf::DwarfTypes;
use vmcore_report::debuginfo::elf::Vmlinux;
use vmcore_report::debuginfo::{BaseEncoding, TypeKind, TypeSource, find_member};

/// Assembles a BTF blob: types as (name, info, size_or_type, extra u32 words).
struct Blob {
    strings: Vec<u8>,
    types: Vec<u8>,
}

impl Blob {
    fn new() -> Blob {
        Blob {
            strings: vec![0],
            types: Vec::new(),
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn t(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        kind_flag: bool,
        size_type: u32,
        extra: &[u32],
    ) {
        let n = self.s(name);
        let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
        for w in [n, info, size_type].iter().chain(extra) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xeb9fu16.to_le_bytes());
        v.push(1); // version
        v.push(0); // flags
        v.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
        v.extend_from_slice(&0u32.to_le_bytes()); // type_off
        v.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        v.extend_from_slice(&(self.types.len() as u32).to_le_bytes()); // str_off
        v.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        v.extend_from_slice(&self.types);
        v.extend_from_slice(&self.strings);
        v
    }
}

fn sample_blob() -> Vec<u8> {
    sample().bytes()
}

fn sample() -> Blob {
    let mut b = Blob::new();
    // 1: int (signed, 32 bits)
    b.t("int", 1, 0, false, 4, &[(1 << 24) | 32]);
    // 2: unsigned int
    b.t("unsigned int", 1, 0, false, 4, &[32]);
    // 3: char (signed char encoding)
    b.t("char", 1, 0, false, 1, &[(3 << 24) | 8]);
    // 4: struct node { int a; unsigned int f:3 (bit 35); unsigned int g:5 (bit 38); struct node *next; char name[6]; }
    let (a, f, g, next, name) = (b.s("a"), b.s("f"), b.s("g"), b.s("next"), b.s("name"));
    b.t(
        "node",
        4,
        5,
        true,
        32,
        &[
            a,
            1,
            0,
            f,
            2,
            (3 << 24) | 35,
            g,
            2,
            (5 << 24) | 38,
            next,
            5,
            64,
            name,
            6,
            128,
        ],
    );
    // 5: ptr -> 4
    b.t("", 2, 0, false, 4, &[]);
    // 6: char[6]
    b.t("", 3, 0, false, 0, &[3, 2, 6]);
    // 7: typedef node_t -> 8 (const -> 4)
    b.t("node_t", 8, 0, false, 8, &[]);
    // 8: const -> 4
    b.t("", 10, 0, false, 4, &[]);
    // 9: enum state (signed) { NEG = -2, POS = 7 }
    let (neg, pos) = (b.s("NEG"), b.s("POS"));
    b.t("state", 6, 2, true, 4, &[neg, (-2i32) as u32, pos, 7]);
    // 10: enum64 big { HUGE = 1 << 40 }
    let huge = b.s("HUGE");
    b.t("big", 19, 1, false, 8, &[huge, 0, 1 << 8]);
    // 11: fwd struct opaque
    b.t("opaque", 7, 0, false, 0, &[]);
    // 12: var my_var of type node (a per-CPU variable in a real vmlinux)
    b.t("my_var", 14, 0, false, 4, &[1]);
    // 13: union u { int i; unsigned int j; } (anonymous member carrier)
    let (i, j) = (b.s("i"), b.s("j"));
    b.t("u", 5, 2, false, 4, &[i, 1, 0, j, 2, 0]);
    b
}

/// [`sample`] plus the kinds it lacks (qualifiers, functions, float, DATASEC, tags), a
/// self-referencing `list_head` and a struct with an anonymous union member.
fn every_kind_blob() -> Vec<u8> {
    let mut b = sample();
    // 14: volatile -> 1; 15: restrict -> 5
    b.t("", 9, 0, false, 1, &[]);
    b.t("", 11, 0, false, 5, &[]);
    // 16: int (*)(int x, struct node *n); 17: func f of that prototype (global linkage)
    let (x, n) = (b.s("x"), b.s("n"));
    b.t("", 13, 2, false, 1, &[x, 1, n, 5]);
    b.t("f", 12, 1, false, 16, &[]);
    // 18: double
    b.t("double", 16, 0, false, 8, &[]);
    // 19: .data..percpu { my_var at 0, 32 bytes }
    b.t(".data..percpu", 15, 1, false, 32, &[12, 0, 32]);
    // 20: a tag on struct node as a whole; 21: __user int
    b.t("tag", 17, 0, false, 4, &[u32::MAX]);
    b.t("user", 18, 0, false, 1, &[]);
    // 22: struct list_head { struct list_head *next, *prev; }; 23: ptr -> 22
    let (next, prev) = (b.s("next"), b.s("prev"));
    b.t("list_head", 4, 2, false, 16, &[next, 23, 0, prev, 23, 64]);
    b.t("", 2, 0, false, 22, &[]);
    // 24: struct outer { union u (anonymous, holding i and j); struct list_head list; }
    let list = b.s("list");
    b.t("outer", 4, 2, false, 24, &[0, 13, 0, list, 22, 64]);
    b.bytes()
}

/// The blob of a big-endian kernel (s390x): every header field and type word byte-swapped,
/// the strings as they are.
fn big_endian(le: &[u8]) -> Vec<u8> {
    let mut v = le.to_vec();
    for field in [0..2, 4..8, 8..12, 12..16, 16..20, 20..24] {
        v[field].reverse();
    }
    let type_len = u32::from_le_bytes(le[12..16].try_into().unwrap()) as usize;
    for w in v[24..24 + type_len].chunks_mut(4) {
        w.reverse();
    }
    v
}

#[test]
fn parses_the_other_kinds_in_both_byte_orders() {
    for blob in [every_kind_blob(), big_endian(&every_kind_blob())] {
        let t = BtfTypes::from_bytes(blob).unwrap();
        assert_eq!(t.type_count(), 24);
        let outer = t.find_type("struct outer").unwrap().unwrap();
        assert_eq!(t.get(outer).unwrap().size, Some(24));
        // j is reached through the anonymous union at offset 0
        let j = find_member(&t, outer, "j").unwrap().unwrap();
        assert_eq!(j.bit_offset, 0);
        let list = find_member(&t, outer, "list").unwrap().unwrap();
        assert_eq!(list.bit_offset, 64);
        let lh = t.find_type("struct list_head").unwrap().unwrap();
        let next = find_member(&t, lh, "next").unwrap().unwrap();
        assert!(matches!(
            t.get(next.ty).unwrap().kind,
            TypeKind::Pointer { target: Some(p) } if p == lh
        ));
        let d = t.find_type("double").unwrap().unwrap();
        assert_eq!(t.get(d).unwrap().size, Some(8));
        assert_eq!(t.enumerator("NEG").unwrap(), Some(-2));
        assert_eq!(t.enumerator("HUGE").unwrap(), Some(1 << 40));
        for id in 0..=25 {
            let _ = t.get(vmcore_report::debuginfo::TypeId(id));
        }
    }
}

/// A type source that counts the types asked of it and refuses after a budget, so a search
/// that would take exponential time fails quickly instead.
struct Budget<'a> {
    inner: &'a BtfTypes,
    gets: std::sync::atomic::AtomicU64,
}

impl TypeSource for Budget<'_> {
    fn find_type(
        &self,
        name: &str,
    ) -> Result<Option<vmcore_report::debuginfo::TypeId>, vmcore_report::debuginfo::DebugInfoError>
    {
        self.inner.find_type(name)
    }
    fn get(
        &self,
        id: vmcore_report::debuginfo::TypeId,
    ) -> Result<Arc<vmcore_report::debuginfo::Type>, vmcore_report::debuginfo::DebugInfoError> {
        let n = self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= 10_000 {
            return Err(vmcore_report::debuginfo::DebugInfoError::BadTypeId(id));
        }
        self.inner.get(id)
    }
    fn variable_type(
        &self,
        name: &str,
    ) -> Result<Option<vmcore_report::debuginfo::TypeId>, vmcore_report::debuginfo::DebugInfoError>
    {
        self.inner.variable_type(name)
    }
    fn enumerator(
        &self,
        name: &str,
    ) -> Result<Option<i64>, vmcore_report::debuginfo::DebugInfoError> {
        self.inner.enumerator(name)
    }
}

/// Found by the `btf` fuzz target (50 s for a 693-byte input): anonymous members that lead
/// back to their own aggregate made `find_member` search k^16 paths. Each aggregate is now
/// searched once; the search for a name that is not there ends after a few types.
#[test]
fn anonymous_member_cycles_are_searched_once() {
    let mut b = Blob::new();
    // 1: int; 2: struct loop { 8 anonymous members of type struct loop; int x; }
    b.t("int", 1, 0, false, 4, &[(1 << 24) | 32]);
    let x = b.s("x");
    let mut members = Vec::new();
    for i in 0..8 {
        members.extend([0, 2, 32 * i]);
    }
    members.extend([x, 1, 256]);
    b.t("loop", 4, 9, false, 36, &members);
    let t = BtfTypes::from_bytes(b.bytes()).unwrap();
    let id = t.find_type("struct loop").unwrap().unwrap();
    let budget = Budget {
        inner: &t,
        gets: Default::default(),
    };
    assert_eq!(find_member(&budget, id, "missing").unwrap(), None);
    let x = find_member(&budget, id, "x").unwrap().unwrap();
    assert_eq!(x.bit_offset, 256);
    assert!(budget.gets.into_inner() < 100);
    // the fuzzer's input: every lookup the target makes, within the budget
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fuzz/btf-anonymous-member-fanout"
    ))
    .unwrap();
    let t = BtfTypes::from_bytes(input).unwrap();
    for id in 0..=t.type_count() as u64 + 1 {
        let budget = Budget {
            inner: &t,
            gets: Default::default(),
        };
        let _ = find_member(&budget, vmcore_report::debuginfo::TypeId(id), "next");
        assert!(budget.gets.into_inner() < 1000, "type {id}");
    }
}

/// Writes the `btf` fuzz target's seeds (`fuzz/corpus/btf/seed-*`): the sample blob, the blob
/// with every kind, and that one big-endian.
/// `cargo test --release --features test-plugins --test debuginfo_btf -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/btf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seed-sample"), sample_blob()).unwrap();
    std::fs::write(dir.join("seed-every-kind"), every_kind_blob()).unwrap();
    std::fs::write(
        dir.join("seed-every-kind-be"),
        big_endian(&every_kind_blob()),
    )
    .unwrap();
}

#[test]
fn parses_every_kind_the_kernel_uses() {
    let t = BtfTypes::from_bytes(sample_blob()).unwrap();
    assert_eq!(t.type_count(), 13);
    let node = t.find_type("struct node").unwrap().unwrap();
    let n = t.get(node).unwrap();
    assert_eq!(n.size, Some(32));
    let f = find_member(&t, node, "f").unwrap().unwrap();
    assert_eq!((f.bit_offset, f.bit_size), (35, Some(3)));
    let g = find_member(&t, node, "g").unwrap().unwrap();
    assert_eq!((g.bit_offset, g.bit_size), (38, Some(5)));
    let next = find_member(&t, node, "next").unwrap().unwrap();
    assert_eq!(next.bit_offset, 64);
    assert!(
        matches!(t.get(next.ty).unwrap().kind, TypeKind::Pointer { target: Some(id) } if id == node)
    );
    let name = find_member(&t, node, "name").unwrap().unwrap();
    let arr = t.get(name.ty).unwrap();
    assert_eq!(arr.size, Some(6));
    assert!(matches!(arr.kind, TypeKind::Array { count: Some(6), .. }));
    let c = t.find_type("char").unwrap().unwrap();
    assert_eq!(
        t.get(c).unwrap().kind,
        TypeKind::Base {
            encoding: BaseEncoding::SignedChar
        }
    );
    // typedef -> const -> struct: const is transparent, the typedef has the struct's size
    let td = t.find_type("node_t").unwrap().unwrap();
    assert_eq!(t.get(td).unwrap().size, Some(32));
    assert_eq!(t.enumerator("NEG").unwrap(), Some(-2));
    assert_eq!(t.enumerator("HUGE").unwrap(), Some(1 << 40));
    let st = t.find_type("enum state").unwrap().unwrap();
    assert!(matches!(
        t.get(st).unwrap().kind,
        TypeKind::Enum { signed: true, .. }
    ));
    let op = t.find_type("struct opaque").unwrap().unwrap();
    assert!(matches!(
        t.get(op).unwrap().kind,
        TypeKind::Struct {
            declaration: true,
            ..
        }
    ));
    assert_eq!(t.variable_type("my_var").unwrap(), Some(node));
    let u = t.find_type("union u").unwrap().unwrap();
    assert_eq!(t.get(u).unwrap().members().len(), 2);
    assert!(t.find_type("struct none").unwrap().is_none());
    assert!(t.get(vmcore_report::debuginfo::TypeId(999)).is_err());
}

#[test]
fn damaged_btf_is_an_error_not_a_panic() {
    let blob = sample_blob();
    for cut in 0..blob.len() {
        let _ = BtfTypes::from_bytes(blob[..cut].to_vec());
    }
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut b = blob.clone();
        for _ in 0..3 {
            // xorshift: a deterministic byte-flip schedule
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng as usize) % b.len();
            b[i] ^= (rng >> 32) as u8 | 1;
        }
        if let Ok(t) = BtfTypes::from_bytes(b) {
            for name in ["struct node", "node_t", "enum state", "union u", "int"] {
                if let Ok(Some(id)) = t.find_type(name) {
                    let _ = t.get(id);
                    let _ = find_member(&t, id, "g");
                }
            }
            for id in 0..16 {
                let _ = t.get(vmcore_report::debuginfo::TypeId(id));
            }
        }
    }
    assert!(BtfTypes::from_bytes(vec![0x9f, 0xeb]).is_err());
    assert!(BtfTypes::from_bytes(b"garbage!".repeat(4)).is_err());
}

#[test]
fn damaged_dwarf_is_an_error_not_a_panic() {
    let (b, _) = sample_kernel(KernelVersion::New);
    let elf = b.build();
    let (start, len) = {
        let f = object::File::parse(&*elf).unwrap();
        let s = f.section_by_name(".debug_info").unwrap();
        let (o, l) = s.file_range().unwrap();
        (o as usize, l as usize)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..150 {
        let mut e = elf.clone();
        for _ in 0..4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = start + (rng as usize) % len;
            e[i] ^= (rng >> 40) as u8 | 1;
        }
        let p = dir.path().join(format!("v{round}"));
        std::fs::write(&p, &e).unwrap();
        let Ok(vm) = Vmlinux::open(&p) else { continue };
        let Ok(t) = DwarfTypes::new(Arc::new(vm)) else {
            continue;
        };
        for name in ["struct task_struct", "struct rq", "u64", "enum pid_type"] {
            if let Ok(Some(id)) = t.find_type(name) {
                if let Ok(ty) = t.get(id) {
                    for m in ty.members() {
                        let _ = t.get(m.ty);
                    }
                }
                let _ = find_member(&t, id, "cfs");
            }
        }
        let _ = t.variable_type("init_task");
        let _ = t.enumerator("PIDTYPE_SID");
    }
}

#[test]
fn real_btf_truncations_fail_cleanly() {
    let Some(dir) = common::fixtures::set("x86_64-6.1-l5") else {
        return;
    };
    let vm = Vmlinux::open(&dir.join("vmlinux")).unwrap();
    let btf = vm.section(".BTF").unwrap().unwrap().to_vec();
    for cut in [0, 10, 24, 1000, btf.len() / 2, btf.len() - 1] {
        assert!(
            BtfTypes::from_bytes(btf[..cut].to_vec()).is_err(),
            "cut at {cut}"
        );
    }
    let t = BtfTypes::from_bytes(btf).unwrap();
    assert!(t.type_count() > 50_000);
}
