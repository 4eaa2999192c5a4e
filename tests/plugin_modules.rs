//! The modules plugin. Its renderers byte for byte: `/proc/modules` against the lines live
//! guests printed (tests/data/live), hand-made cases for what those guests did not show (users,
//! `[permanent]`, loading and unloading modules with taints, a kernel without module unloading),
//! and `lsmod` against a table kmod's lsmod printed on a real system. Its collector on in-memory
//! kernels (tests/common/fake_kernel.rs): the 4.5 – 6.3 `core_layout` and the 6.4+ `mem[]`
//! layouts, users through `struct module_use`, taint letters from the kernel's table, a broken
//! list and an unreadable module. Expected values: the builder's numbers by the kernel's rules.

mod common;

use common::fake_kernel::*;
use vmcore_report::plugins::modules::collect::collect;

use vmcore_report::plugins::modules::record::{Layout, Module, ModuleState, Modules, text_name};
use vmcore_report::plugins::modules::render::{lsmod, proc_modules};

fn live(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/live/modules-{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The record is rebuilt from the live line's fields by the test's own parsing; rendering it
/// must give the line back.
#[test]
fn proc_modules_equals_the_live_files() {
    for set in ["x86_64-6.1-oops", "x86_64-6.1-smp4-hung", "aarch64-6.1"] {
        let text = live(set);
        let m = modules(text.lines().map(live_module).collect());
        assert_eq!(proc_modules(&m), text, "{set}");
    }
}

#[test]
fn proc_modules_users_permanent_states_and_taints() {
    let mut a = module("nf_nat", 61440, Some(2), 0xffffffffc0a00000);
    a.users = vec![b"iptable_nat".to_vec(), b"xt_MASQUERADE".to_vec()];
    let mut b = module("crc32c_intel", 24576, Some(0), 0xffffffffc0b00000);
    b.permanent = true;
    let mut c = module("vboxdrv", 700416, Some(0), 0xffffffffc0c00000);
    c.state = ModuleState::Loading;
    c.taints = (1 << 12) | (1 << 13);
    c.taint_letters = "OE".into();
    let mut d = module("nvidia", 1_000_000, Some(-1), 0xffffffffc0d00000);
    d.state = ModuleState::Unloading;
    d.taints = 1;
    d.taint_letters = "P".into();
    let mut e = module("hidden", 4096, Some(0), 0);
    e.state = ModuleState::Unformed;
    let mut f = module("nf_conntrack", 180224, Some(1), 0xffffffffc0e00000);
    f.users = vec![b"nf_nat".to_vec()];
    f.permanent = true;
    let m = modules(vec![a, b, c, d, e, f]);
    assert_eq!(
        proc_modules(&m),
        "nf_nat 61440 2 iptable_nat,xt_MASQUERADE, Live 0xffffffffc0a00000\n\
         crc32c_intel 24576 0 [permanent], Live 0xffffffffc0b00000\n\
         vboxdrv 700416 0 - Loading 0xffffffffc0c00000 (OE+)\n\
         nvidia 1000000 -1 - Unloading 0xffffffffc0d00000 (P-)\n\
         nf_conntrack 180224 1 nf_nat,[permanent], Live 0xffffffffc0e00000\n"
    );
}

#[test]
fn proc_modules_without_module_unloading() {
    let mut m = modules(vec![module("ext4", 1_000_000, None, 0xffffffffc0000000)]);
    m.unload = false;
    assert_eq!(
        proc_modules(&m),
        "ext4 1000000 - - Live 0xffffffffc0000000\n"
    );
    assert_eq!(
        lsmod(&m),
        "Module                  Size  Used by\next4                 1000000  -2\n"
    );
}

/// kmod's lsmod on a Talos node with Mellanox drivers (a published transcript).
#[test]
fn lsmod_equals_kmods_table() {
    let rows: [(&str, u64, i64, &[&str]); 5] = [
        ("rdma_ucm", 32768, 0, &[]),
        ("rdma_cm", 106496, 1, &["rdma_ucm"]),
        ("iw_cm", 45056, 1, &["rdma_cm"]),
        ("mlx5_ib", 335872, 0, &[]),
        (
            "ib_core",
            356352,
            4,
            &["rdma_cm", "iw_cm", "rdma_ucm", "mlx5_ib"],
        ),
    ];
    let m = modules(
        rows.iter()
            .map(|(n, size, rc, users)| {
                let mut md = module(n, *size, Some(*rc), 0);
                md.core_size = *size;
                md.users = users.iter().map(|u| u.as_bytes().to_vec()).collect();
                md
            })
            .collect(),
    );
    assert_eq!(
        lsmod(&m),
        "Module                  Size  Used by\n\
         rdma_ucm               32768  0\n\
         rdma_cm               106496  1 rdma_ucm\n\
         iw_cm                  45056  1 rdma_cm\n\
         mlx5_ib               335872  0\n\
         ib_core               356352  4 rdma_cm,iw_cm,rdma_ucm,mlx5_ib\n"
    );
}

/// lsmod prints the core size (`/sys/module/*/coresize`), not /proc/modules' total; a name
/// longer than the column pushes the rest right.
#[test]
fn lsmod_uses_the_core_size_and_long_names_overflow() {
    let mut md = module("snd_hda_codec_realtek", 200_000, Some(1), 0);
    md.core_size = 172032;
    md.state = ModuleState::Loading;
    let m: Modules = modules(vec![md]);
    assert_eq!(
        lsmod(&m),
        "Module                  Size  Used by\nsnd_hda_codec_realtek   172032  1\n"
    );
}

/// A corrupt name cannot split a line or add a field.
#[test]
fn hostile_names_stay_one_token() {
    assert_eq!(text_name(b"ext4"), "ext4");
    assert_eq!(text_name(b"a b\nc,d\\\xff"), "a\\x20b\\x0ac\\x2cd\\\\\\xff");
    let m = modules(vec![module("x y\nz", 1, Some(0), 0)]);
    assert_eq!(proc_modules(&m).lines().count(), 1);
    assert_eq!(proc_modules(&m).split(' ').count(), 6);
}

// ---- the collector on in-memory kernels ------------------------------------------------------

/// `taint_flags[]` as 6.1 has it (Documentation/admin-guide/tainted-kernels.rst).
const TAINTS: [(char, bool); 19] = [
    ('P', true),
    ('F', true),
    ('S', false),
    ('R', false),
    ('M', false),
    ('B', false),
    ('U', false),
    ('D', false),
    ('A', false),
    ('W', false),
    ('C', true),
    ('I', false),
    ('O', true),
    ('E', true),
    ('L', false),
    ('K', true),
    ('X', true),
    ('T', true),
    ('N', true),
];

/// A kernel with `enum module_state` only.
fn states_kernel() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.set_enum(
        "module_state",
        &[
            ("MODULE_STATE_LIVE", 0),
            ("MODULE_STATE_COMING", 1),
            ("MODULE_STATE_GOING", 2),
            ("MODULE_STATE_UNFORMED", 3),
        ],
    );
    k
}

/// A 6.1 kernel: module states and the taint table.
fn base_kernel() -> FakeKernel {
    kernel_with_letters(|c| c)
}

/// [`base_kernel`] with each `taint_flags[]` letter passed through `letter`.
fn kernel_with_letters(letter: impl Fn(char) -> char) -> FakeKernel {
    let mut k = states_kernel();
    let flags = TAINTS
        .iter()
        .map(|&(c, module)| {
            let c = letter(c);
            st(vec![
                ("c_true", Node::Int(c as i64, 1)),
                ("c_false", Node::Int(' ' as i64, 1)),
                ("module", Node::Int(i64::from(module), 1)),
            ])
        })
        .collect();
    k.var("taint_flags", Node::Array(flags));
    k
}

/// A 4.5 – 6.3 `struct module`.
#[allow(clippy::too_many_arguments)]
fn module_61(
    name: &str,
    state: i64,
    refcnt: i64,
    users: Vec<(u64, String)>,
    core: (u64, i64),
    init: i64,
    taints: i64,
    exit: u64,
) -> Node {
    st(vec![
        ("state", int4(state)),
        ("list", st(vec![("next", int(0)), ("prev", int(0))])),
        ("name", s(name)),
        ("init", int(0xffffffffc1000000u64 as i64)),
        (
            "core_layout",
            st(vec![("base", int(core.0 as i64)), ("size", int4(core.1))]),
        ),
        (
            "init_layout",
            st(vec![("base", int(0)), ("size", int4(init))]),
        ),
        ("taints", int(taints)),
        ("source_list", Node::List(users)),
        ("refcnt", st(vec![("counter", int4(refcnt))])),
        ("exit", int(exit as i64)),
        ("version", null()),
    ])
}

/// A `struct module_use` on the target's `source_list`, naming the using module.
fn module_use(k: &mut FakeKernel, source: u64, target: u64) -> (u64, String) {
    let u = k.alloc(st(vec![
        ("source_list", int(0)),
        ("target_list", int(0)),
        ("source", ptr(source, "")),
        ("target", ptr(target, "")),
    ]));
    (u, String::new())
}

#[test]
fn a_61_module_list() {
    let mut k = base_kernel();
    let oops = k.reserve();
    let fw = k.reserve();
    let loading = k.reserve();
    let src = k.alloc(s("8A2E6E5D1F4C3B2A19080706"));
    let mut oops_node = module_61(
        "fixture_oops",
        0,
        1,
        vec![],
        (0xffffffffc0574000, 16384),
        0,
        (1 << 12) | (1 << 13),
        0xffffffffc0575000,
    );
    if let Node::Struct(m) = &mut oops_node {
        m.push(("srcversion".into(), ptr(src, "")));
    }
    k.set(oops, oops_node);
    let used_by = vec![module_use(&mut k, oops, fw)];
    // qemu_fw_cfg has an init but no exit function: it can never be unloaded
    k.set(
        fw,
        module_61(
            "qemu_fw_cfg",
            0,
            2,
            used_by,
            (0xffffffffc056e000, 20480),
            0,
            0,
            0,
        ),
    );
    k.set(
        loading,
        module_61(
            "loading_one",
            1,
            1,
            vec![],
            (0xffffffffc0580000, 8192),
            4096,
            0,
            0xffffffffc0581000,
        ),
    );
    k.var(
        "modules",
        Node::List(vec![
            (oops, String::new()),
            (fw, String::new()),
            (loading, String::new()),
        ]),
    );
    let c = collect(&k);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let m = c.modules.unwrap();
    assert_eq!(m.taint_table, "kernel");
    assert_eq!(
        proc_modules(&m),
        "fixture_oops 16384 0 - Live 0xffffffffc0574000 (OE)\n\
         qemu_fw_cfg 20480 1 fixture_oops,[permanent], Live 0xffffffffc056e000\n\
         loading_one 12288 0 - Loading 0xffffffffc0580000\n"
    );
    assert_eq!(
        lsmod(&m),
        "Module                  Size  Used by\n\
         fixture_oops           16384  0\n\
         qemu_fw_cfg            20480  1 fixture_oops\n\
         loading_one             8192  0\n"
    );
    assert_eq!(
        m.modules[0].srcversion.as_deref(),
        Some(&b"8A2E6E5D1F4C3B2A19080706"[..])
    );
    assert_eq!(m.modules[0].version, None);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["modules"][0]["base"], "0xffffffffc0574000");
    assert_eq!(json["modules"][1]["users"][0], "fixture_oops");
    assert_eq!(json["layout"], "core_layout");
}

/// 6.4+: the sizes are `mem[]`'s, the core size leaves out the `MOD_INIT_*` regions, the base
/// is `mem[MOD_TEXT].base`; a taint table the kernel lacks falls back to the documented one.
#[test]
fn a_64_mem_layout() {
    let mut k = states_kernel();
    k.set_enum("mod_mem_type", &common::synthkernel::MOD_MEM_TYPES);
    let region = |base: i64, size: i64| st(vec![("base", int(base)), ("size", int4(size))]);
    let m = k.alloc(st(vec![
        ("state", int4(1)),
        ("list", int(0)),
        ("name", s("qemu_fw_cfg")),
        (
            "mem",
            Node::Array(vec![
                region(0xffffffffc0261000u64 as i64, 8192),
                region(0xffffffffc0264000u64 as i64, 4096),
                region(0xffffffffc0265000u64 as i64, 4096),
                region(0xffffffffc0266000u64 as i64, 4096),
                region(0xffffffffc0270000u64 as i64, 4096),
                region(0, 0),
                region(0, 0),
            ]),
        ),
        ("taints", int(1 << 12)),
        ("source_list", Node::List(vec![])),
        ("refcnt", st(vec![("counter", int4(1))])),
        ("exit", int(0xffffffffc0262000u64 as i64)),
    ]));
    k.var("modules", Node::List(vec![(m, String::new())]));
    let c = collect(&k);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let md = c.modules.unwrap();
    assert_eq!(md.taint_table, "documented");
    assert_eq!(
        proc_modules(&md),
        "qemu_fw_cfg 24576 0 - Loading 0xffffffffc0261000 (O+)\n"
    );
    assert_eq!(
        lsmod(&md),
        "Module                  Size  Used by\nqemu_fw_cfg            20480  0\n"
    );
}

/// A node that cannot be read loses only itself; a module whose layout is unreadable is listed
/// as unreadable (with its name) and left out of the files; both are recorded errors.
#[test]
fn a_broken_list_keeps_the_rest() {
    let mut k = base_kernel();
    let a = k.alloc(module_61(
        "alpha",
        0,
        1,
        vec![],
        (0xffffffffc0100000, 4096),
        0,
        0,
        1,
    ));
    let b = k.alloc(module_61(
        "beta",
        0,
        1,
        vec![],
        (0xffffffffc0200000, 8192),
        0,
        0,
        1,
    ));
    let mut bad = module_61("gamma", 0, 1, vec![], (0, 0), 0, 0, 1);
    if let Node::Struct(m) = &mut bad {
        for (n, v) in m.iter_mut() {
            if n == "core_layout" {
                *v = Node::Bad;
            }
        }
    }
    let g = k.alloc(bad);
    let gone = k.reserve(); // never set: not in the dump
    k.var(
        "modules",
        Node::List(vec![
            (a, String::new()),
            (gone, String::new()),
            (g, String::new()),
            (b, String::new()),
        ]),
    );
    let c = collect(&k);
    let m = c.modules.unwrap();
    assert_eq!(
        proc_modules(&m),
        "alpha 4096 0 - Live 0xffffffffc0100000\nbeta 8192 0 - Live 0xffffffffc0200000\n"
    );
    assert!(m.list_error.is_some());
    assert_eq!(m.unreadable.len(), 1);
    assert_eq!(m.unreadable[0].name.as_deref(), Some(&b"gamma"[..]));
    assert_eq!(c.errors.len(), 2, "{:?}", c.errors);
}

/// Without `CONFIG_MODULE_UNLOAD` there is no reference count and no user list: ` - -`; without
/// `CONFIG_MODULES` there is no list at all, and nothing is an error.
#[test]
fn kernels_without_unloading_or_modules() {
    let mut k = base_kernel();
    let m = k.alloc(st(vec![
        ("state", int4(0)),
        ("list", int(0)),
        ("name", s("ext4")),
        (
            "core_layout",
            st(vec![
                ("base", int(0xffffffffc0000000u64 as i64)),
                ("size", int4(4096)),
            ]),
        ),
        ("init_layout", st(vec![("base", int(0)), ("size", int4(0))])),
        ("taints", int(0)),
    ]));
    k.var("modules", Node::List(vec![(m, String::new())]));
    let c = collect(&k);
    let md = c.modules.unwrap();
    assert!(!md.unload);
    assert_eq!(proc_modules(&md), "ext4 4096 - - Live 0xffffffffc0000000\n");

    let c = collect(&base_kernel());
    assert!(c.modules.is_none() && c.errors.is_empty());
}

// ---- records built by hand, or from a live line by this file's own parsing ----

fn module(name: &str, size: u64, refcount: Option<i64>, base: u64) -> Module {
    Module {
        address: 0xffff_8880_0100_0000,
        name: name.as_bytes().to_vec(),
        state: ModuleState::Live,
        size,
        core_size: size,
        refcount,
        users: Vec::new(),
        permanent: false,
        base,
        taints: 0,
        taint_letters: String::new(),
        version: None,
        srcversion: None,
    }
}

fn modules(list: Vec<Module>) -> Modules {
    Modules {
        modules: list,
        unload: true,
        layout: Some(Layout::CoreLayout),
        taint_table: "kernel",
        unreadable: Vec::new(),
        list_error: None,
    }
}

/// The fields of one `/proc/modules` line: `name size refcount users state 0xbase [(taints)]`.
fn live_module(line: &str) -> Module {
    let f: Vec<&str> = line.split(' ').collect();
    let mut m = module(
        f[0],
        f[1].parse().unwrap(),
        Some(f[2].parse().unwrap()),
        u64::from_str_radix(f[5].trim_start_matches("0x"), 16).unwrap(),
    );
    if f[3] != "-" {
        for u in f[3].split(',').filter(|u| !u.is_empty()) {
            if u == "[permanent]" {
                m.permanent = true;
            } else {
                m.users.push(u.as_bytes().to_vec());
            }
        }
    }
    m.state = match f[4] {
        "Live" => ModuleState::Live,
        "Loading" => ModuleState::Loading,
        "Unloading" => ModuleState::Unloading,
        s => panic!("state {s}"),
    };
    if let Some(t) = f.get(6) {
        let letters = t
            .trim_matches(|c| c == '(' || c == ')')
            .trim_end_matches(['+', '-']);
        m.taint_letters = letters.to_string();
        // any set bit: the renderer prints the letters only when there are taints
        m.taints = 1 << 12;
    }
    m
}

// ---- the fuzz target's kernel (fuzz/fuzz_targets/modules_kernel.rs) and its seeds -------------

#[path = "../fuzz/fuzz_targets/modules_kernel.rs"]
mod mk;

/// The fuzz target's memory, written by virtual address from [`mk::VBASE`].
struct FuzzMem(Vec<u8>);

impl FuzzMem {
    fn new() -> FuzzMem {
        FuzzMem(vec![0; (mk::FREE - mk::VBASE) as usize])
    }
    fn put(&mut self, va: u64, bytes: &[u8]) {
        let i = (va - mk::VBASE) as usize;
        if self.0.len() < i + bytes.len() {
            self.0.resize(i + bytes.len(), 0);
        }
        self.0[i..i + bytes.len()].copy_from_slice(bytes);
    }
    fn u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    fn u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
    /// `size` zero bytes at the end, 8-aligned.
    fn alloc(&mut self, size: u64) -> u64 {
        let va = mk::VBASE + (self.0.len() as u64).next_multiple_of(8);
        self.put(va, &vec![0; size as usize]);
        va
    }
    fn string(&mut self, s: &str) -> u64 {
        let va = self.alloc(s.len() as u64 + 1);
        self.put(va, s.as_bytes());
        va
    }
    /// A circular doubly linked list: `head`, then the `nodes` (addresses of `list_head`s).
    fn link(&mut self, head: u64, nodes: &[u64]) {
        let all: Vec<u64> = std::iter::once(head).chain(nodes.iter().copied()).collect();
        for (i, &n) in all.iter().enumerate() {
            self.u64(n, all[(i + 1) % all.len()]);
            self.u64(n + 8, all[(i + all.len() - 1) % all.len()]);
        }
    }
}

/// One module of a seed: `regions` are the seven `mem[]` sizes (6.4+); the `core_layout`
/// shape gets the first four summed as its core size and the last three as its init size.
struct SeedModule {
    name: &'static str,
    state: u32,
    refcnt: u32,
    base: u64,
    regions: [u32; 7],
    taints: u64,
    version: Option<&'static str>,
    srcversion: Option<&'static str>,
    exit: u64,
    /// Indexes of the modules using this one.
    users: &'static [usize],
}

const SEED_MODULES: [SeedModule; 3] = [
    SeedModule {
        name: "nf_conntrack",
        state: 0,
        refcnt: 2,
        base: 0xffff_ffff_c0a0_0000,
        regions: [0x8000, 0x2000, 0x3000, 0x1000, 0, 0, 0],
        taints: 0,
        version: None,
        srcversion: None,
        exit: 0xffff_ffff_c0a0_1000,
        users: &[1],
    },
    SeedModule {
        name: "nf_nat",
        state: 0,
        refcnt: 1,
        base: 0xffff_ffff_c0b0_0000,
        regions: [0x4000, 0x1000, 0, 0, 0, 0, 0],
        taints: 0,
        version: None,
        srcversion: None,
        exit: 0xffff_ffff_c0b0_1000,
        users: &[],
    },
    SeedModule {
        name: "vboxdrv",
        state: 1,
        refcnt: 1,
        base: 0xffff_ffff_c0c0_0000,
        regions: [0x10000, 0, 0, 0, 0x2000, 0, 0],
        taints: (1 << 12) | (1 << 13),
        version: Some("7.0.10"),
        srcversion: Some("8A2E6E5D1F4C3B2A19080706"),
        exit: 0,
        users: &[],
    },
];

/// The fuzz target's input for a shape: the mode byte, then the memory holding the taint table
/// and [`SEED_MODULES`] on the `modules` list.
fn fuzz_seed(shape: mk::Shape) -> Vec<u8> {
    use mk::module as m;
    let mut mem = FuzzMem::new();
    for (i, &(c, module)) in TAINTS.iter().enumerate() {
        mem.put(
            mk::TAINT_FLAGS + 3 * i as u64,
            &[c as u8, b' ', u8::from(module)],
        );
    }
    let addrs: Vec<u64> = SEED_MODULES.iter().map(|_| mem.alloc(m::SIZE)).collect();
    for (md, &a) in SEED_MODULES.iter().zip(&addrs) {
        mem.u32(a + m::STATE, md.state);
        mem.put(a + m::NAME, md.name.as_bytes());
        if let Some(v) = md.version {
            let s = mem.string(v);
            mem.u64(a + m::VERSION, s);
        }
        if let Some(v) = md.srcversion {
            let s = mem.string(v);
            mem.u64(a + m::SRCVERSION, s);
        }
        if shape.mem {
            for (i, &size) in md.regions.iter().enumerate() {
                let r = a + m::MEM + i as u64 * mk::region::SIZE;
                let base = if i == 0 {
                    md.base
                } else {
                    md.base + 0x10_0000 * i as u64
                };
                mem.u64(r + mk::region::BASE, if size == 0 { 0 } else { base });
                mem.u32(r + mk::region::SIZE_FIELD, size);
            }
        } else {
            let core: u32 = md.regions[..4].iter().sum();
            let init: u32 = md.regions[4..].iter().sum();
            mem.u64(a + m::CORE_LAYOUT + mk::region::BASE, md.base);
            mem.u32(a + m::CORE_LAYOUT + mk::region::SIZE_FIELD, core);
            mem.u32(a + m::INIT_LAYOUT + mk::region::SIZE_FIELD, init);
        }
        mem.u64(a + m::TAINTS, md.taints);
        mem.u64(a + m::INIT, md.base + 0x100);
        mem.u64(a + m::EXIT, md.exit);
        if shape.unload {
            mem.u32(a + m::REFCNT, md.refcnt);
            let uses: Vec<u64> = md
                .users
                .iter()
                .map(|&u| {
                    let mu = mem.alloc(mk::module_use::SIZE);
                    mem.u64(mu + mk::module_use::SOURCE, addrs[u]);
                    mem.u64(mu + mk::module_use::TARGET, a);
                    mu + mk::module_use::SOURCE_LIST
                })
                .collect();
            mem.link(a + m::SOURCE_LIST, &uses);
            mem.link(a + m::TARGET_LIST, &[]);
        }
    }
    let nodes: Vec<u64> = addrs.iter().map(|a| a + m::LIST).collect();
    mem.link(mk::MODULES, &nodes);
    let mut seed = vec![shape.mode()];
    seed.extend(mem.0);
    seed
}

const SHAPES: [(&str, mk::Shape); 4] = [
    (
        "mem",
        mk::Shape {
            mem: true,
            unload: true,
        },
    ),
    (
        "core-layout",
        mk::Shape {
            mem: false,
            unload: true,
        },
    ),
    (
        "mem-no-unload",
        mk::Shape {
            mem: true,
            unload: false,
        },
    ),
    (
        "core-layout-no-unload",
        mk::Shape {
            mem: false,
            unload: false,
        },
    ),
];

/// The fuzz target reads its seeds whole: each shape's module list through the production
/// kernel view gives the lines /proc/modules would have (by the kernel's rules on the seed's
/// numbers: sizes are the regions summed, the refcount `refcnt - 1`, vboxdrv has an init but
/// no exit, O and E are module taints), so mutations start from the deep paths.
#[test]
fn fuzz_kernel_reads_the_seed_lists() {
    for (what, shape) in SHAPES {
        assert_eq!(mk::Shape::from_mode(shape.mode()).mem, shape.mem);
        let seed = fuzz_seed(shape);
        let k = mk::kernel(seed[0], seed[1..].to_vec());
        let c = collect(&k.access());
        assert!(c.errors.is_empty(), "{what}: {:?}", c.errors);
        let m = c.modules.unwrap();
        let expected = if shape.unload {
            "nf_conntrack 57344 1 nf_nat, Live 0xffffffffc0a00000\n\
             nf_nat 20480 0 - Live 0xffffffffc0b00000\n\
             vboxdrv 73728 0 [permanent], Loading 0xffffffffc0c00000 (OE+)\n"
        } else {
            "nf_conntrack 57344 - - Live 0xffffffffc0a00000\n\
             nf_nat 20480 - - Live 0xffffffffc0b00000\n\
             vboxdrv 73728 - - Loading 0xffffffffc0c00000 (OE+)\n"
        };
        assert_eq!(proc_modules(&m), expected, "{what}");
        let core: Vec<u64> = m.modules.iter().map(|m| m.core_size).collect();
        assert_eq!(core, [57344, 20480, 65536], "{what}");
        let layout = if shape.mem {
            Layout::Mem
        } else {
            Layout::CoreLayout
        };
        assert_eq!(m.layout, Some(layout), "{what}");
        assert_eq!(m.taint_table, "kernel");
        assert_eq!(m.modules[2].version.as_deref(), Some(&b"7.0.10"[..]));
        assert_eq!(
            m.modules[2].srcversion.as_deref(),
            Some(&b"8A2E6E5D1F4C3B2A19080706"[..])
        );
        assert_eq!(m.modules[0].version, None);
    }
}

/// Found by the `modules` fuzz target: a `taint_flags[]` entry whose letter is a newline split
/// the /proc/modules line. A table with a byte that is no printable letter is corrupt: the
/// documented table is used instead (its letters by the kernel's flag numbers).
#[test]
fn a_corrupt_taint_letter_is_not_printed() {
    let mut k = kernel_with_letters(|c| if c == 'E' { '\n' } else { c });
    let m = k.alloc(module_61(
        "vboxdrv",
        0,
        1,
        vec![],
        (0xffffffffc0c00000, 65536),
        0,
        (1 << 12) | (1 << 13),
        1,
    ));
    k.var("modules", Node::List(vec![(m, String::new())]));
    let md = collect(&k).modules.unwrap();
    assert_eq!(md.taint_table, "documented");
    assert_eq!(
        proc_modules(&md),
        "vboxdrv 65536 0 - Live 0xffffffffc0c00000 (OE)\n"
    );
    // the fuzzer's input itself, through the production kernel view
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fuzz/modules-taint-letter-newline"
    ))
    .unwrap();
    let k = mk::kernel(input[0], input[1..].to_vec());
    let md = collect(&k.access()).modules.unwrap();
    assert_eq!(md.taint_table, "documented");
    assert_eq!(proc_modules(&md).matches('\n').count(), md.modules.len());
}

/// Writes the `modules` fuzz target's seeds (`fuzz/corpus/modules/seed-*`), one per shape.
/// `cargo test --release --features test-plugins --test plugin_modules -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/modules");
    std::fs::create_dir_all(&dir).unwrap();
    for (what, shape) in SHAPES {
        std::fs::write(dir.join(format!("seed-{what}")), fuzz_seed(shape)).unwrap();
    }
}
