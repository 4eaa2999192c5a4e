//! A synthetic x86_64 kernel: typed objects placed by kernel virtual address, written out as an
//! ELF vmcore and a matching vmlinux with DWARF.
//!
//! The builder owns three things and keeps them consistent:
//! - **types**: declared once through [`SynthKernel`]'s type methods; struct members are laid out
//!   with C's natural alignment here (the offsets are this file's own record, the oracle) and
//!   emitted as DWARF through [`VmlinuxBuilder`];
//! - **memory**: objects are written by *runtime* virtual address, either in the kernel image
//!   (`__START_KERNEL_map` + KASLR offset, `pa = va - __START_KERNEL_map + phys_base`) or in the
//!   direct map (`pa = va - page_offset_base`), into a [`VmcoreBuilder`];
//! - **symbols**: globals get link-time addresses (image globals in `.data`, per-CPU variables
//!   zero-based as in x86_64's `.data..percpu`), declared in the vmlinux; the dump sees them
//!   shifted by the KASLR offset, as a real kernel's VMCOREINFO `KERNELOFFSET` says.
//!
//! At [`SynthKernel::build`] the x86_64 4-level page tables (from tests/common/pagetable.rs) are
//! placed inside the kernel image where `init_top_pgt` lives, mapping the image with 2 MiB pages
//! and all RAM in the direct map; VMCOREINFO carries what `crash_save_vmcoreinfo()` and x86's
//! `arch_crash_save_vmcoreinfo()` write; one `NT_PRSTATUS` per CPU names its current task.
//! [`SynthKernel::finish`] hands back the [`VmcoreBuilder`] for any other dump format.
//! Generation is deterministic: the same calls give byte-identical files.
//!
//! ```ignore
//! let mut k = SynthKernel::new(KernelConfig::default());
//! let ulong = k.int("long unsigned int", 8, false);
//! let j = k.global("jiffies", ulong);
//! k.set(&j, "", 4_294_937_296);
//! let (vmcore, vmlinux) = k.build();
//! ```

use std::collections::BTreeMap;

use super::dwarf::{Field, SymFlags, Ty, VmlinuxBuilder, field};
use super::pagetable::{Builder, Mode};
use super::vmcore::{ElfOpts, SynthArch, VmcoreBuilder};

/// `__START_KERNEL_map`.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Link-time address of `_text` (`__START_KERNEL_map + LOAD_PHYSICAL_ADDR`).
pub const LINK_TEXT: u64 = 0xffff_ffff_8100_0000;
/// Link-time start of the data the builder allocates globals in.
pub const LINK_DATA: u64 = 0xffff_ffff_8200_0000;
/// Link-time start of `.rodata` (banner, strings).
pub const LINK_RODATA: u64 = 0xffff_ffff_8180_0000;
/// Link-time address of the page-table pages (`init_top_pgt` and the tables under it).
pub const LINK_PGTABLES: u64 = 0xffff_ffff_82a0_0000;
/// Size of the kernel image mapping the tables cover (from `_text`).
pub const IMAGE_SIZE: u64 = 0x0200_0000;
/// Where the per-CPU section's bump allocator starts (x86_64 per-CPU symbols are zero-based).
pub const PERCPU_START: u64 = 0x2_a000;

/// `enum mod_mem_type` (include/linux/module.h, 6.4+): the index of each `struct module`
/// `mem[]` region.
pub const MOD_MEM_TYPES: [(&str, i64); 7] = [
    ("MOD_TEXT", 0),
    ("MOD_DATA", 1),
    ("MOD_RODATA", 2),
    ("MOD_RO_AFTER_INIT", 3),
    ("MOD_INIT_TEXT", 4),
    ("MOD_INIT_DATA", 5),
    ("MOD_INIT_RODATA", 6),
];

/// Who the kernel is and where it sits. Every field is an input the tests can compare against.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
    /// `KERNELOFFSET`: virtual KASLR slide of the image (2 MiB multiple).
    pub kaslr_offset: u64,
    /// Physical address of `_text`.
    pub phys_text: u64,
    /// Randomized direct-map base (1 GiB multiple).
    pub page_offset_base: u64,
    /// RAM is `[0, ram_size)`; pages not written are marked excluded (a `-d 31` style dump).
    pub ram_size: u64,
    /// Direct-map "heap" for objects allocated with [`SynthKernel::alloc`].
    pub heap_pa: u64,
    /// Physical start of the per-CPU areas, one `percpu_unit` per CPU.
    pub percpu_pa: u64,
    pub percpu_unit: u64,
    pub nr_cpus: u32,
    /// 20-byte GNU build-id, in both the vmlinux note and VMCOREINFO `BUILD-ID`.
    pub build_id: [u8; 20],
    /// VMCOREINFO `CRASHTIME` (seconds since the epoch).
    pub crash_time: i64,
    /// Whether VMCOREINFO has the `CRASHTIME` line (a kdump capture) or not (a hypervisor dump
    /// of a kernel that never reached `crash_save_vmcoreinfo()`).
    pub write_crashtime: bool,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            sysname: "Linux".into(),
            nodename: "synthetic".into(),
            release: "6.1.0-synthetic".into(),
            version: "#1 SMP PREEMPT_DYNAMIC".into(),
            machine: "x86_64".into(),
            domainname: "(none)".into(),
            kaslr_offset: 0x0b20_0000,
            phys_text: 0x0c80_0000,
            page_offset_base: 0xffff_9a5b_4000_0000,
            ram_size: 0x1000_0000,
            heap_pa: 0x0300_0000,
            percpu_pa: 0x07e0_0000,
            percpu_unit: 0x4_0000,
            nr_cpus: 2,
            build_id: [0; 20],
            crash_time: 1_700_000_000,
            write_crashtime: true,
        }
    }
}

impl KernelConfig {
    /// `phys_base`: the physical address `__START_KERNEL_map` maps to, so that `_text` (at
    /// `LINK_TEXT + kaslr_offset`) lands at `phys_text`.
    pub fn phys_base(&self) -> u64 {
        self.phys_text
            .wrapping_sub(LINK_TEXT - START_KERNEL_MAP)
            .wrapping_sub(self.kaslr_offset)
    }
    /// The runtime address of a link-time image address.
    pub fn runtime(&self, link: u64) -> u64 {
        link.wrapping_add(self.kaslr_offset)
    }
    /// The direct-map address of a physical address.
    pub fn direct(&self, pa: u64) -> u64 {
        self.page_offset_base + pa
    }
    /// The physical address of a runtime virtual address, by the builder's own mapping rules.
    pub fn pa(&self, va: u64) -> u64 {
        let text = self.runtime(LINK_TEXT);
        if va >= text && va < text + IMAGE_SIZE {
            va - START_KERNEL_MAP + self.phys_base()
        } else if va >= self.page_offset_base && va < self.page_offset_base + self.ram_size {
            va - self.page_offset_base
        } else {
            panic!("{va:#x} is outside the synthetic kernel's mappings")
        }
    }
    /// `__per_cpu_offset[cpu]`.
    pub fn per_cpu_offset(&self, cpu: u32) -> u64 {
        self.direct(self.percpu_pa + u64::from(cpu) * self.percpu_unit)
    }
    pub fn build_id_hex(&self) -> String {
        self.build_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A type handle of the synthetic kernel (an index into its layout record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct T(usize);

#[derive(Clone, Debug)]
enum Kind {
    Int {
        signed: bool,
    },
    Pointer,
    Array {
        elem: T,
        count: u64,
    },
    Struct {
        fields: Vec<(String, T, u64)>,
    },
    /// Typedefs, const and volatile resolve to their target.
    Alias(T),
    /// A struct declared with [`SynthKernel::forward`] and not defined yet.
    Pending,
}

#[derive(Clone, Debug)]
struct TyInfo {
    dwarf: Ty,
    size: u64,
    align: u64,
    kind: Kind,
}

/// A typed object at a runtime virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obj {
    pub va: u64,
    pub ty: T,
}

/// A per-CPU variable: its zero-based link address and type.
#[derive(Clone, Copy, Debug)]
pub struct PerCpu {
    pub link: u64,
    pub ty: T,
}

/// The synthetic kernel under construction.
pub struct SynthKernel {
    pub cfg: KernelConfig,
    pub vmlinux: VmlinuxBuilder,
    pub vmcore: VmcoreBuilder,
    types: Vec<TyInfo>,
    next_data: u64,
    next_rodata: u64,
    next_percpu: u64,
    next_heap: u64,
    /// (pid of the task current on the CPU, rip) per CPU, for `NT_PRSTATUS`.
    prstatus: BTreeMap<u32, (u32, u64)>,
    /// Notes with a whole register set, written after those, in call order.
    prstatus_raw: Vec<(u32, Vec<u64>)>,
    /// VMCOREINFO lines beyond the ones every x86_64 kernel writes.
    extra_vmcoreinfo: Vec<String>,
    globals: BTreeMap<String, Obj>,
    /// Every object placed, `(what, runtime va, size)`: the translation oracle.
    placed: Vec<(String, u64, u64)>,
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl SynthKernel {
    pub fn new(cfg: KernelConfig) -> SynthKernel {
        let mut vmlinux = VmlinuxBuilder::new();
        vmlinux.build_id(&cfg.build_id);
        let mut vmcore = VmcoreBuilder::new(SynthArch::X86_64);
        vmcore.release = cfg.release.clone();
        vmcore.timestamp = cfg.crash_time;
        SynthKernel {
            next_heap: cfg.heap_pa,
            cfg,
            vmlinux,
            vmcore,
            types: Vec::new(),
            next_data: LINK_DATA,
            next_rodata: LINK_RODATA,
            next_percpu: PERCPU_START,
            prstatus: BTreeMap::new(),
            prstatus_raw: Vec::new(),
            extra_vmcoreinfo: Vec::new(),
            globals: BTreeMap::new(),
            placed: Vec::new(),
        }
    }

    // ---- types ----

    fn push(&mut self, dwarf: Ty, size: u64, align: u64, kind: Kind) -> T {
        self.types.push(TyInfo {
            dwarf,
            size,
            align,
            kind,
        });
        T(self.types.len() - 1)
    }
    fn info(&self, t: T) -> &TyInfo {
        &self.types[t.0]
    }
    pub fn size_of(&self, t: T) -> u64 {
        self.info(t).size
    }

    /// An integer base type (`char` when named so, `_Bool` for size-1 booleans).
    pub fn int(&mut self, name: &str, size: u64, signed: bool) -> T {
        let d = match name {
            "char" => self.vmlinux.char_type(),
            "_Bool" => self.vmlinux.bool_type(),
            _ => self.vmlinux.base(name, size, signed),
        };
        self.push(d, size, size, Kind::Int { signed })
    }
    pub fn typedef(&mut self, name: &str, target: T) -> T {
        let d = self.vmlinux.typedef(name, self.info(target).dwarf);
        let (s, a) = (self.info(target).size, self.info(target).align);
        self.push(d, s, a, Kind::Alias(target))
    }
    pub fn volatile(&mut self, target: T) -> T {
        let d = self.vmlinux.volatile(self.info(target).dwarf);
        let (s, a) = (self.info(target).size, self.info(target).align);
        self.push(d, s, a, Kind::Alias(target))
    }
    pub fn const_(&mut self, target: T) -> T {
        let d = self.vmlinux.const_(self.info(target).dwarf);
        let (s, a) = (self.info(target).size, self.info(target).align);
        self.push(d, s, a, Kind::Alias(target))
    }
    /// `target *` (`void *` for `None`).
    pub fn ptr(&mut self, target: Option<T>) -> T {
        let d = self.vmlinux.pointer(target.map(|t| self.info(t).dwarf));
        self.push(d, 8, 8, Kind::Pointer)
    }
    pub fn array(&mut self, elem: T, count: u64) -> T {
        let d = self.vmlinux.array(self.info(elem).dwarf, Some(count));
        let (s, a) = (self.info(elem).size, self.info(elem).align);
        self.push(d, s * count, a, Kind::Array { elem, count })
    }
    pub fn enumeration(&mut self, name: &str, values: &[(&str, i64)]) -> T {
        let d = self.vmlinux.enumeration(Some(name), 4, values);
        self.push(d, 4, 4, Kind::Int { signed: false })
    }
    /// A struct to be defined later (for self references).
    pub fn forward(&mut self, name: &str) -> T {
        let d = self.vmlinux.forward(name);
        self.push(d, 0, 1, Kind::Pending)
    }
    /// Natural-alignment layout of `fields`: (size, align, members, DWARF members).
    #[allow(clippy::type_complexity)]
    fn layout(&self, fields: &[(&str, T)]) -> (u64, u64, Vec<(String, T, u64)>, Vec<Field>) {
        let mut off = 0;
        let mut align = 1;
        let mut laid = Vec::new();
        let mut dw = Vec::new();
        for (name, ft) in fields {
            let fi = self.info(*ft);
            assert!(
                !matches!(fi.kind, Kind::Pending),
                "member {name} has an undefined struct type"
            );
            off = align_up(off, fi.align);
            align = align.max(fi.align);
            laid.push((name.to_string(), *ft, off));
            dw.push(field(name, fi.dwarf, off));
            off += fi.size;
        }
        (align_up(off, align), align, laid, dw)
    }

    /// Lays `fields` out in order with natural alignment and defines the forward struct `t`.
    pub fn define(&mut self, t: T, fields: &[(&str, T)]) {
        let (size, align, laid, dw) = self.layout(fields);
        self.vmlinux.define(self.info(t).dwarf, size, dw);
        let i = &mut self.types[t.0];
        i.size = size;
        i.align = align;
        i.kind = Kind::Struct { fields: laid };
    }

    /// A struct defined at once (`name: None`: anonymous).
    pub fn structure(&mut self, name: Option<&str>, fields: &[(&str, T)]) -> T {
        if let Some(n) = name {
            let t = self.forward(n);
            self.define(t, fields);
            return t;
        }
        let (size, align, laid, dw) = self.layout(fields);
        let d = self.vmlinux.structure(None, size, dw);
        self.push(d, size, align, Kind::Struct { fields: laid })
    }

    fn resolve(&self, mut t: T) -> T {
        while let Kind::Alias(n) = self.info(t).kind {
            t = n;
        }
        t
    }

    /// The offset and type of a dotted member path under `t` (`""`: the object itself); a
    /// component may index an array member (`"pid_links[0].pprev"`).
    pub fn member_of(&self, t: T, path: &str) -> (u64, T) {
        let mut off = 0;
        let mut cur = t;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (name, index) = match part.split_once('[') {
                Some((n, i)) => {
                    let i = i.strip_suffix(']').and_then(|i| i.parse::<u64>().ok());
                    (
                        n,
                        Some(i.unwrap_or_else(|| panic!("bad index in path {path}"))),
                    )
                }
                None => (part, None),
            };
            let r = self.resolve(cur);
            let Kind::Struct { fields } = &self.info(r).kind else {
                panic!("`{part}` of a non-struct in path {path}");
            };
            let (_, ft, fo) = fields
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("no member `{name}` in path {path}"));
            off += fo;
            cur = *ft;
            if let Some(i) = index {
                let Kind::Array { elem, count } = self.info(self.resolve(cur)).kind else {
                    panic!("`{part}` indexes a non-array in path {path}");
                };
                assert!(i < count, "index {i} past {count} in path {path}");
                off += i * self.size_of(elem);
                cur = elem;
            }
        }
        (off, cur)
    }

    /// The member object at a dotted path.
    pub fn at(&self, o: &Obj, path: &str) -> Obj {
        let (off, ty) = self.member_of(o.ty, path);
        Obj { va: o.va + off, ty }
    }

    /// Element `i` of an array object.
    pub fn elem(&self, o: &Obj, i: u64) -> Obj {
        let Kind::Array { elem, count } = self.info(self.resolve(o.ty)).kind else {
            panic!("elem of a non-array");
        };
        assert!(i < count, "index {i} past {count}");
        Obj {
            va: o.va + i * self.size_of(elem),
            ty: elem,
        }
    }

    // ---- memory ----

    /// Writes raw bytes at a runtime virtual address.
    pub fn write_va(&mut self, va: u64, bytes: &[u8]) {
        // Split at page boundaries: consecutive virtual pages need not be physically adjacent.
        let mut done = 0;
        while done < bytes.len() {
            let a = va + done as u64;
            let n = (bytes.len() - done).min((4096 - (a % 4096)) as usize);
            let pa = self.cfg.pa(a);
            self.vmcore.write_phys(pa, &bytes[done..done + n]);
            done += n;
        }
    }

    /// Writes the integer (or pointer) member at `path` with its own width, little-endian.
    pub fn set(&mut self, o: &Obj, path: &str, value: u64) {
        let m = self.at(o, path);
        let r = self.resolve(m.ty);
        let size = match self.info(r).kind {
            Kind::Int { .. } | Kind::Pointer => self.size_of(r),
            _ => panic!("{path} is not an integer or pointer"),
        };
        let bytes = value.to_le_bytes();
        self.write_va(m.va, &bytes[..size as usize]);
    }

    /// Signed convenience for [`SynthKernel::set`].
    pub fn set_i(&mut self, o: &Obj, path: &str, value: i64) {
        self.set(o, path, value as u64);
    }

    /// Several integer members at once.
    pub fn set_all(&mut self, o: &Obj, values: &[(&str, u64)]) {
        for (p, v) in values {
            self.set(o, p, *v);
        }
    }

    /// A `char[N]` member holding `s` (NUL-padded; must leave room for the NUL).
    pub fn set_str(&mut self, o: &Obj, path: &str, s: &str) {
        let m = self.at(o, path);
        let size = self.size_of(m.ty) as usize;
        assert!(s.len() < size, "{s:?} does not fit {path}");
        let mut b = s.as_bytes().to_vec();
        b.resize(size, 0);
        self.write_va(m.va, &b);
    }

    /// Links `nodes` (addresses of `list_head`s) into the circular list headed at `head`.
    pub fn link_list(&mut self, head: u64, nodes: &[u64]) {
        let all: Vec<u64> = std::iter::once(head).chain(nodes.iter().copied()).collect();
        for (i, &n) in all.iter().enumerate() {
            let next = all[(i + 1) % all.len()];
            let prev = all[(i + all.len() - 1) % all.len()];
            self.write_va(n, &next.to_le_bytes());
            self.write_va(n + 8, &prev.to_le_bytes());
        }
    }

    // ---- placement ----

    /// A global in the image's `.data`, declared in the vmlinux; zero-filled in memory.
    pub fn global(&mut self, name: &str, ty: T) -> Obj {
        let (size, align) = (self.size_of(ty), self.info(ty).align.max(8));
        let link = align_up(self.next_data, align);
        self.next_data = link + size.max(1);
        self.global_at(name, ty, link)
    }

    /// A global at a chosen link-time address.
    pub fn global_at(&mut self, name: &str, ty: T, link: u64) -> Obj {
        let size = self.size_of(ty);
        self.vmlinux.variable(name, self.info(ty).dwarf, link, size);
        let o = Obj {
            va: self.cfg.runtime(link),
            ty,
        };
        self.write_va(o.va, &vec![0; size as usize]);
        self.globals.insert(name.to_string(), o);
        self.placed.push((name.to_string(), o.va, size));
        o
    }

    /// A per-CPU variable (zero-based link address), zero-filled on every CPU.
    pub fn percpu(&mut self, name: &str, ty: T) -> PerCpu {
        let (size, align) = (self.size_of(ty), self.info(ty).align.max(64));
        let link = align_up(self.next_percpu, align);
        self.next_percpu = link + size;
        assert!(
            self.next_percpu <= self.cfg.percpu_unit,
            "per-CPU area full"
        );
        self.vmlinux.variable(name, self.info(ty).dwarf, link, size);
        for cpu in 0..self.cfg.nr_cpus {
            let va = self.cfg.per_cpu_offset(cpu) + link;
            self.write_va(va, &vec![0; size as usize]);
            self.placed.push((format!("{name} of CPU {cpu}"), va, size));
        }
        PerCpu { link, ty }
    }

    /// `unsigned long __per_cpu_offset[64]`, holding each CPU's offset (`cfg.nr_cpus` of them).
    pub fn per_cpu_offsets(&mut self, ulong: T) -> Obj {
        let ty = self.array(ulong, 64);
        let pco = self.global("__per_cpu_offset", ty);
        for cpu in 0..self.cfg.nr_cpus {
            let e = self.elem(&pco, u64::from(cpu));
            let off = self.cfg.per_cpu_offset(cpu);
            self.set(&e, "", off);
        }
        pco
    }

    /// CPU `cpu`'s instance of a per-CPU variable.
    pub fn on_cpu(&self, v: &PerCpu, cpu: u32) -> Obj {
        Obj {
            va: self.cfg.per_cpu_offset(cpu) + v.link,
            ty: v.ty,
        }
    }

    /// A zero-filled object in the direct map (slab-like), 64-byte aligned.
    pub fn alloc(&mut self, ty: T) -> Obj {
        self.alloc_aligned(ty, 64)
    }

    /// [`SynthKernel::alloc`] at a chosen alignment (4096: the object starts a page, so a test
    /// can leave exactly its pages out of the dump).
    pub fn alloc_aligned(&mut self, ty: T, align: u64) -> Obj {
        let size = self.size_of(ty);
        let pa = align_up(self.next_heap, align);
        self.next_heap = pa + size.max(1);
        let o = Obj {
            va: self.cfg.direct(pa),
            ty,
        };
        self.write_va(o.va, &vec![0; size as usize]);
        self.placed
            .push((format!("object at pa {pa:#x}"), o.va, size));
        o
    }

    /// Raw bytes in the direct map at the given alignment; their address.
    pub fn alloc_bytes(&mut self, bytes: &[u8], align: u64) -> u64 {
        let pa = align_up(self.next_heap, align);
        self.next_heap = pa + (bytes.len() as u64).max(1);
        let va = self.cfg.direct(pa);
        self.write_va(va, bytes);
        self.placed
            .push((format!("bytes at pa {pa:#x}"), va, bytes.len() as u64));
        va
    }

    /// A NUL-terminated string in `.rodata`, as a symbol when `name` is given; its runtime address.
    pub fn rodata_str(&mut self, name: Option<&str>, s: &str) -> u64 {
        let link = self.next_rodata;
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.next_rodata = align_up(link + b.len() as u64, 8);
        match name {
            Some("linux_banner") => self.vmlinux.linux_banner(link, s),
            Some(n) => {
                self.vmlinux.rodata(link, &b);
                self.vmlinux.symbol(n, link, b.len() as u64, false);
            }
            None => self.vmlinux.rodata(link, &b),
        }
        let va = self.cfg.runtime(link);
        self.write_va(va, &b);
        va
    }

    /// A global in `.rodata` holding `bytes` (NUL-terminated), described in the DWARF as `ty`.
    pub fn rodata_global(&mut self, name: &str, ty: T, bytes: &[u8]) -> Obj {
        let size = self.size_of(ty);
        let mut b = bytes.to_vec();
        b.resize(size as usize, 0);
        let link = self.next_rodata;
        self.next_rodata = align_up(link + size, 8);
        self.vmlinux.rodata(link, &b);
        self.vmlinux.variable(name, self.info(ty).dwarf, link, size);
        let o = Obj {
            va: self.cfg.runtime(link),
            ty,
        };
        self.write_va(o.va, &b);
        self.globals.insert(name.to_string(), o);
        self.placed.push((name.to_string(), o.va, size));
        o
    }

    /// A function symbol (no DWARF); its runtime address.
    pub fn text_symbol(&mut self, name: &str, link: u64, size: u64) -> u64 {
        self.vmlinux.symbol(name, link, size, true);
        self.cfg.runtime(link)
    }

    /// A symbol without DWARF at a link-time address, its kind and binding chosen (a local
    /// alias, an absolute constant); its runtime address.
    pub fn symbol_with(&mut self, name: &str, link: u64, size: u64, flags: SymFlags) -> u64 {
        self.vmlinux.symbol_with(name, link, size, flags);
        self.cfg.runtime(link)
    }

    /// An `NT_PRSTATUS` note with `pr_pid` and a whole `elf_gregset_t` (x86_64: 27 words),
    /// written after the [`SynthKernel::cpu_state`] ones, in call order.
    pub fn prstatus_note(&mut self, pid: u32, gregs: &[u64]) {
        self.prstatus_raw.push((pid, gregs.to_vec()));
    }

    /// The CPU's `NT_PRSTATUS`: its current task's pid and the instruction pointer.
    pub fn cpu_state(&mut self, cpu: u32, pid: u32, rip: u64) {
        self.prstatus.insert(cpu, (pid, rip));
    }

    /// An extra VMCOREINFO line (`OFFSET(x.y)=…`, …).
    pub fn vmcoreinfo_line(&mut self, line: &str) {
        self.extra_vmcoreinfo.push(line.to_string());
    }

    // ---- output ----

    /// The ELF vmcore and the vmlinux.
    pub fn build(self) -> (Vec<u8>, Vec<u8>) {
        let (vmcore, vmlinux) = self.finish();
        (vmcore.build_elf(&ElfOpts::default()), vmlinux)
    }

    /// The finished dump contents (page tables, excluded RAM, VMCOREINFO, PRSTATUS) as a
    /// [`VmcoreBuilder`], to be written in any format it knows, and the vmlinux.
    pub fn finish(mut self) -> (VmcoreBuilder, Vec<u8>) {
        let cfg = self.cfg.clone();
        // The tables live in the image at LINK_PGTABLES; the builder allocates upward from there.
        let tables_pa = cfg.pa(cfg.runtime(LINK_PGTABLES));
        let mut pt = Builder::new(
            Mode::X86 { l5: false, sme: 0 },
            &[(0, cfg.ram_size)],
            tables_pa,
        );
        let huge = 0x20_0000;
        let text_va = cfg.runtime(LINK_TEXT);
        pt.map_range(text_va, cfg.pa(text_va), IMAGE_SIZE, huge);
        pt.map_range(cfg.page_offset_base, 0, cfg.ram_size, huge);
        let mut tables: Vec<u64> = pt.tables.iter().map(|&(_, pa)| pa).collect();
        tables.sort_unstable();
        tables.dedup();
        for pa in tables {
            let bytes: Vec<u8> = (0..4096).map(|i| pt.mem.expected(pa + i)).collect();
            self.vmcore.write_phys(pa, &bytes);
        }
        let root_va = cfg.runtime(LINK_PGTABLES);
        assert_eq!(cfg.pa(root_va), pt.root);
        self.vmlinux
            .symbol("init_top_pgt", LINK_PGTABLES, 4096, false);

        // RAM the dump does not carry: excluded, as makedumpfile -d 31 leaves zero and free pages.
        let dumped: Vec<u64> = self.vmcore.pages().keys().copied().collect();
        for pfn in 0..cfg.ram_size / 4096 {
            if dumped.binary_search(&pfn).is_err() {
                self.vmcore.exclude(pfn);
            }
        }

        // The order of crash_save_vmcoreinfo_init(): identity, then the generic symbols.
        let mut vi = format!(
            "OSRELEASE={}\nBUILD-ID={}\nPAGESIZE=4096\n",
            cfg.release,
            cfg.build_id_hex()
        );
        if let Some(uts) = self.global_obj("init_uts_ns") {
            vi.push_str(&format!(
                "SYMBOL(init_uts_ns)={:x}\nOFFSET(uts_namespace.name)={}\n",
                uts.va,
                self.member_of(uts.ty, "name").0
            ));
        }
        vi.push_str(&format!("SYMBOL(_stext)={text_va:x}\n"));
        for l in &self.extra_vmcoreinfo {
            vi.push_str(l);
            vi.push('\n');
        }
        if cfg.write_crashtime {
            vi.push_str(&format!("CRASHTIME={}\n", cfg.crash_time));
        }
        vi.push_str(&format!(
            "NUMBER(phys_base)={}\nSYMBOL(init_top_pgt)={root_va:x}\n\
             NUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET={:x}\nNUMBER(KERNEL_IMAGE_SIZE)={}\n\
             NUMBER(sme_mask)=0\n",
            cfg.phys_base() as i64,
            cfg.kaslr_offset,
            1u64 << 30,
        ));
        self.vmcore.vmcoreinfo(&vi);
        for &(pid, rip) in self.prstatus.values() {
            // struct user_regs_struct: rip is register 16, cs 17, eflags 18, ss 20; the rest
            // (the stack pointer included) is left zero: no plugin unwinds yet.
            let mut regs = [0u64; 27];
            regs[16] = rip;
            regs[17] = 0x10;
            regs[18] = 0x46;
            regs[20] = 0x18;
            self.vmcore.prstatus(pid, &regs);
        }
        for (pid, gregs) in &self.prstatus_raw {
            self.vmcore.prstatus(*pid, gregs);
        }
        let vmlinux = self.vmlinux.build();
        (self.vmcore, vmlinux)
    }

    /// Every object placed so far: `(what, runtime virtual address, size)`.
    pub fn placed(&self) -> &[(String, u64, u64)] {
        &self.placed
    }

    /// A global declared with [`SynthKernel::global`] or [`SynthKernel::global_at`].
    pub fn global_obj(&self, name: &str) -> Option<Obj> {
        self.globals.get(name).copied()
    }
}

/// The demo kernel shipped as fixtures/demo/: a 2-CPU x86_64 machine named `demo-host` running a
/// 6.1-like kernel (CFS scheduler with group scheduling, NUMA balancing and schedstats compiled
/// in but disabled, as Debian's 6.1 builds), tainted by an out-of-tree module, that crashed while
/// `bash` on CPU 1 wrote `c` to /proc/sysrq-trigger.
pub mod demo {
    use super::*;

    pub const NODENAME: &str = "demo-host";
    pub const RELEASE: &str = "6.1.0-demo";
    pub const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-demo (2026-11-01)";
    pub const BANNER: &str = "Linux version 6.1.0-demo (builder@vmcore-report) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.0-demo (2026-11-01)\n";
    /// `TAINT_OOT_MODULE` (bit 12): letter `O`.
    pub const TAINTED_MASK: u64 = 1 << 12;
    pub const KASLR_OFFSET: u64 = 0x0b20_0000;
    pub const NR_CPUS: u32 = 2;
    /// `jiffies` at the crash: `INITIAL_JIFFIES` (`(u32)(-300 * HZ)`, HZ=250) plus 1163.25 s of
    /// uptime, the same instant as the timekeeper and the runqueue clocks.
    pub const JIFFIES: u64 = 4_294_892_296 + 290_812;
    /// `CRASHTIME`: 2026-11-20 09:41:07 UTC.
    pub const CRASH_TIME: i64 = 1_795_167_667;
    pub const BUILD_ID: [u8; 20] = [
        0xd3, 0x6e, 0x0a, 0x5c, 0x41, 0x9b, 0x27, 0x80, 0x13, 0xf4, 0x6a, 0x52, 0xc8, 0x0e, 0x97,
        0x3d, 0x21, 0xb5, 0x7c, 0x4f,
    ];

    /// `TASK_RUNNING`, `TASK_INTERRUPTIBLE`, `TASK_IDLE` (include/linux/sched.h).
    pub const RUNNING: u32 = 0;
    pub const SLEEPING: u32 = 1;
    pub const IDLE: u32 = 0x402;

    /// One task of the demo. `vruntime`, `sum_exec` in ns.
    #[derive(Clone, Copy, Debug)]
    pub struct Task {
        pub pid: u32,
        pub comm: &'static str,
        pub cpu: u32,
        pub state: u32,
        pub prio: i32,
        pub vruntime: u64,
        pub sum_exec: u64,
        pub nvcsw: u64,
        pub nivcsw: u64,
        /// Current on its CPU (`rq->curr`).
        pub current: bool,
        /// Waiting in the CFS tree (runnable, not current).
        pub queued: bool,
        pub kthread: bool,
    }

    /// A kernel thread, asleep, that has not run yet (see [`Task::ran`]).
    const fn t(pid: u32, comm: &'static str, cpu: u32, state: u32, prio: i32) -> Task {
        Task {
            pid,
            comm,
            cpu,
            state,
            prio,
            vruntime: 0,
            sum_exec: 0,
            nvcsw: 0,
            nivcsw: 0,
            current: false,
            queued: false,
            kthread: true,
        }
    }

    impl Task {
        /// Its accounting: vruntime and CPU time in ns, voluntary and involuntary switches.
        const fn ran(mut self, vruntime: u64, sum_exec: u64, nvcsw: u64, nivcsw: u64) -> Task {
            self.vruntime = vruntime;
            self.sum_exec = sum_exec;
            self.nvcsw = nvcsw;
            self.nivcsw = nivcsw;
            self
        }
        const fn user(mut self) -> Task {
            self.kthread = false;
            self
        }
        const fn current(mut self) -> Task {
            self.current = true;
            self
        }
        const fn queued(mut self) -> Task {
            self.queued = true;
            self
        }
    }

    /// The tasks on `init_task.tasks`, in creation order (init_task itself, the idle task of CPU
    /// 0, and CPU 1's idle task are not on the list, as in the kernel). Each CPU has one current
    /// task and one runnable task waiting in its CFS tree.
    #[rustfmt::skip]
    pub const TASKS: [Task; 12] = [
        t(1, "systemd", 0, SLEEPING, 120).user().ran(912_443_120, 1_812_332_905, 1_804, 311),
        t(2, "kthreadd", 1, SLEEPING, 120).ran(905_120_331, 41_005_211, 212, 3),
        t(3, "rcu_gp", 0, IDLE, 100).ran(12_419_005, 210_334, 2, 0),
        t(12, "migration/0", 0, SLEEPING, 0).ran(0, 2_297_448, 5, 0),
        t(13, "ksoftirqd/0", 0, SLEEPING, 120).ran(1_012_337_400, 4_716_018, 88, 2),
        t(15, "rcu_preempt", 1, IDLE, 120).ran(1_104_522_617, 27_449_770, 1_331, 12),
        t(16, "migration/1", 1, SLEEPING, 0).ran(0, 1_048_266, 5, 0),
        t(17, "ksoftirqd/1", 1, SLEEPING, 120).ran(1_098_236_846, 3_499_747, 64, 1),
        t(402, "sshd", 1, RUNNING, 120).user().queued().ran(1_101_744_051, 95_220_401, 430, 17),
        t(455, "bash", 1, RUNNING, 120).user().current().ran(1_106_170_182, 144_420_281, 241, 9),
        t(501, "stress", 0, RUNNING, 120).user().current().ran(1_015_254_768, 601_768_427, 12, 1_433),
        t(502, "stress", 0, RUNNING, 120).user().queued().ran(1_018_211_775, 598_434_764, 11, 1_425),
    ];

    /// `swapper/N`: the idle tasks (pid 0).
    pub const IDLE_COMM: [&str; 2] = ["swapper/0", "swapper/1"];

    /// Per-CPU runqueue numbers (clocks and vruntimes in ns).
    #[derive(Clone, Copy, Debug)]
    pub struct RqStats {
        pub nr_switches: u64,
        pub clock: u64,
        pub avg_idle: u64,
        pub max_idle_balance_cost: u64,
        /// `cfs.min_vruntime`: the smaller of the current and the leftmost entity's vruntime.
        pub min_vruntime: u64,
        pub util_avg: u64,
        pub load_avg: u64,
    }

    pub const RQ: [RqStats; 2] = [
        RqStats {
            nr_switches: 48_112,
            clock: 1_163_251_435_001,
            avg_idle: 1_203_264,
            max_idle_balance_cost: 594_581,
            min_vruntime: 1_015_254_768,
            util_avg: 1_019,
            load_avg: 2_043,
        },
        RqStats {
            nr_switches: 39_874,
            clock: 1_163_250_877_309,
            avg_idle: 3_740_822,
            max_idle_balance_cost: 1_848_492,
            min_vruntime: 1_101_744_051,
            util_avg: 733,
            load_avg: 1_366,
        },
    ];

    /// The demo kernel, ready to [`SynthKernel::build`].
    pub fn kernel() -> SynthKernel {
        let cfg = KernelConfig {
            sysname: "Linux".into(),
            nodename: NODENAME.into(),
            release: RELEASE.into(),
            version: VERSION.into(),
            machine: "x86_64".into(),
            domainname: "(none)".into(),
            kaslr_offset: KASLR_OFFSET,
            nr_cpus: NR_CPUS,
            build_id: BUILD_ID,
            crash_time: CRASH_TIME,
            ..KernelConfig::default()
        };
        let mut k = SynthKernel::new(cfg);
        let ty = Types::declare(&mut k);
        populate(&mut k, &ty);
        k
    }

    /// The handful of 6.1 types the demo's memory is written in.
    pub struct Types {
        pub int: T,
        pub uint: T,
        pub ulong: T,
        pub chr: T,
        pub list_head: T,
        pub uts_ns: T,
        pub cpumask: T,
        pub taint_flag: T,
        pub task: T,
        pub signal: T,
        pub rq: T,
        pub task_group: T,
        pub root_domain: T,
        pub static_key_false: T,
        pub static_key_true: T,
        pub tk_core: T,
        pub se_ptr: T,
        pub cfs_rq_ptr: T,
    }

    impl Types {
        fn declare(k: &mut SynthKernel) -> Types {
            let chr = k.int("char", 1, true);
            let boolean = k.int("_Bool", 1, false);
            let int = k.int("int", 4, true);
            let uint = k.int("unsigned int", 4, false);
            let long = k.int("long int", 8, true);
            let ulong = k.int("long unsigned int", 8, false);
            let ll = k.int("long long int", 8, true);
            let ull = k.int("long long unsigned int", 8, false);
            let u32t = k.typedef("u32", uint);
            let u64t = k.typedef("u64", ull);
            let s64t = k.typedef("s64", ll);
            let ktime = k.typedef("ktime_t", s64t);
            let pid_t = k.typedef("pid_t", int);
            let atomic = k.structure(Some("atomic_t"), &[("counter", int)]);
            let atomic_t = k.typedef("atomic_t", atomic);
            let atomic_long = k.structure(None, &[("counter", long)]);
            let atomic_long_t = k.typedef("atomic_long_t", atomic_long);

            let lh = k.forward("list_head");
            let lhp = k.ptr(Some(lh));
            k.define(lh, &[("next", lhp), ("prev", lhp)]);
            let rbn = k.forward("rb_node");
            let rbnp = k.ptr(Some(rbn));
            k.define(
                rbn,
                &[
                    ("__rb_parent_color", ulong),
                    ("rb_right", rbnp),
                    ("rb_left", rbnp),
                ],
            );
            let rb_root = k.structure(Some("rb_root"), &[("rb_node", rbnp)]);
            let rb_root_cached = k.structure(
                Some("rb_root_cached"),
                &[("rb_root", rb_root), ("rb_leftmost", rbnp)],
            );
            let bits = k.array(ulong, 1);
            let cpumask = k.structure(Some("cpumask"), &[("bits", bits)]);

            let c65 = k.array(chr, 65);
            let utsname = k.structure(
                Some("new_utsname"),
                &[
                    ("sysname", c65),
                    ("nodename", c65),
                    ("release", c65),
                    ("version", c65),
                    ("machine", c65),
                    ("domainname", c65),
                ],
            );
            let voidp = k.ptr(None);
            let uts_ns = k.structure(
                Some("uts_namespace"),
                &[("name", utsname), ("user_ns", voidp), ("ucounts", voidp)],
            );
            let taint_flag = k.structure(
                Some("taint_flag"),
                &[("c_true", chr), ("c_false", chr), ("module", boolean)],
            );
            let static_key = k.structure(Some("static_key"), &[("enabled", atomic_t)]);
            let static_key_false = k.structure(Some("static_key_false"), &[("key", static_key)]);
            let static_key_true = k.structure(Some("static_key_true"), &[("key", static_key)]);

            let tk_read_base = k.structure(
                Some("tk_read_base"),
                &[
                    ("clock", voidp),
                    ("mask", u64t),
                    ("cycle_last", u64t),
                    ("mult", u32t),
                    ("shift", u32t),
                    ("xtime_nsec", u64t),
                    ("base", ktime),
                    ("base_real", u64t),
                ],
            );
            let timekeeper = k.structure(
                Some("timekeeper"),
                &[
                    ("tkr_mono", tk_read_base),
                    ("tkr_raw", tk_read_base),
                    ("xtime_sec", u64t),
                    ("ktime_sec", ulong),
                    ("offs_real", ktime),
                    ("offs_boot", ktime),
                    ("offs_tai", ktime),
                ],
            );
            let tk_core = k.structure(None, &[("seq", uint), ("timekeeper", timekeeper)]);

            let load_weight = k.structure(
                Some("load_weight"),
                &[("weight", ulong), ("inv_weight", u32t)],
            );
            let util_est = k.structure(Some("util_est"), &[("enqueued", uint), ("ewma", uint)]);
            let sched_avg = k.structure(
                Some("sched_avg"),
                &[
                    ("last_update_time", u64t),
                    ("load_sum", u64t),
                    ("runnable_sum", u64t),
                    ("util_sum", u32t),
                    ("period_contrib", u32t),
                    ("load_avg", ulong),
                    ("runnable_avg", ulong),
                    ("util_avg", ulong),
                    ("util_est", util_est),
                ],
            );
            let sched_statistics = k.structure(
                Some("sched_statistics"),
                &[
                    ("wait_start", u64t),
                    ("wait_max", u64t),
                    ("wait_count", u64t),
                    ("wait_sum", u64t),
                    ("iowait_count", u64t),
                    ("iowait_sum", u64t),
                    ("sleep_start", u64t),
                    ("sleep_max", u64t),
                    ("sum_sleep_runtime", s64t),
                    ("block_start", u64t),
                    ("block_max", u64t),
                    ("sum_block_runtime", s64t),
                    ("exec_max", u64t),
                    ("slice_max", u64t),
                ],
            );
            let se = k.forward("sched_entity");
            let sep = k.ptr(Some(se));
            let cfs_rq = k.forward("cfs_rq");
            let cfs_rqp = k.ptr(Some(cfs_rq));
            k.define(
                se,
                &[
                    ("load", load_weight),
                    ("run_node", rbn),
                    ("group_node", lh),
                    ("on_rq", uint),
                    ("exec_start", u64t),
                    ("sum_exec_runtime", u64t),
                    ("vruntime", u64t),
                    ("prev_sum_exec_runtime", u64t),
                    ("nr_migrations", u64t),
                    ("depth", int),
                    ("parent", sep),
                    ("cfs_rq", cfs_rqp),
                    ("my_q", cfs_rqp),
                    ("runnable_weight", ulong),
                    ("avg", sched_avg),
                ],
            );
            let cgroup = k.structure(Some("cgroup"), &[("flags", ulong), ("kn", voidp)]);
            let cgroupp = k.ptr(Some(cgroup));
            let css = k.structure(
                Some("cgroup_subsys_state"),
                &[("cgroup", cgroupp), ("ss", voidp)],
            );
            let tg = k.forward("task_group");
            let tgp = k.ptr(Some(tg));
            let sepp = k.ptr(Some(sep));
            let cfs_rqpp = k.ptr(Some(cfs_rqp));
            k.define(
                tg,
                &[
                    ("css", css),
                    ("se", sepp),
                    ("cfs_rq", cfs_rqpp),
                    ("shares", ulong),
                    ("idle", int),
                    ("load_avg", atomic_long_t),
                    ("list", lh),
                    ("parent", tgp),
                    ("siblings", lh),
                    ("children", lh),
                    ("autogroup", voidp),
                ],
            );
            let removed = k.structure(
                None,
                &[
                    ("nr", int),
                    ("load_avg", ulong),
                    ("util_avg", ulong),
                    ("runnable_avg", ulong),
                ],
            );
            let rq = k.forward("rq");
            let rqp = k.ptr(Some(rq));
            k.define(
                cfs_rq,
                &[
                    ("load", load_weight),
                    ("nr_running", uint),
                    ("h_nr_running", uint),
                    ("idle_nr_running", uint),
                    ("idle_h_nr_running", uint),
                    ("exec_clock", u64t),
                    ("min_vruntime", u64t),
                    ("tasks_timeline", rb_root_cached),
                    ("curr", sep),
                    ("next", sep),
                    ("last", sep),
                    ("skip", sep),
                    ("nr_spread_over", uint),
                    ("avg", sched_avg),
                    ("removed", removed),
                    ("tg_load_avg_contrib", ulong),
                    ("propagate", long),
                    ("prop_runnable_sum", long),
                    ("h_load", ulong),
                    ("last_h_load_update", u64t),
                    ("h_load_next", sep),
                    ("rq", rqp),
                    ("on_list", int),
                    ("leaf_cfs_rq_list", lh),
                    ("tg", tgp),
                    ("idle", int),
                    ("runtime_enabled", int),
                    ("runtime_remaining", s64t),
                    ("throttled", int),
                    ("throttle_count", int),
                ],
            );
            let rt_rq = k.structure(
                Some("rt_rq"),
                &[
                    ("rt_nr_running", uint),
                    ("rr_nr_running", uint),
                    ("rt_nr_migratory", ulong),
                    ("rt_nr_total", ulong),
                    ("overloaded", int),
                    ("rt_queued", int),
                    ("rt_throttled", int),
                    ("rt_time", u64t),
                    ("rt_runtime", u64t),
                ],
            );
            let dl_bw = k.structure(
                Some("dl_bw"),
                &[("lock", uint), ("bw", u64t), ("total_bw", u64t)],
            );
            let dl_rq = k.structure(
                Some("dl_rq"),
                &[
                    ("root", rb_root_cached),
                    ("dl_nr_running", uint),
                    ("dl_nr_migratory", uint),
                    ("overloaded", int),
                    ("running_bw", u64t),
                    ("this_bw", u64t),
                    ("extra_bw", u64t),
                ],
            );
            let root_domain = k.structure(
                Some("root_domain"),
                &[
                    ("refcount", atomic_t),
                    ("rto_count", atomic_t),
                    ("span", cpumask),
                    ("online", cpumask),
                    ("dl_bw", dl_bw),
                ],
            );
            let root_domainp = k.ptr(Some(root_domain));
            let task = k.forward("task_struct");
            let taskp = k.ptr(Some(task));
            k.define(
                rq,
                &[
                    ("__lock", uint),
                    ("nr_running", uint),
                    ("nr_numa_running", uint),
                    ("nr_preferred_running", uint),
                    ("numa_migrate_on", uint),
                    ("nohz_tick_stopped", uint),
                    ("nr_switches", u64t),
                    ("cfs", cfs_rq),
                    ("rt", rt_rq),
                    ("dl", dl_rq),
                    ("leaf_cfs_rq_list", lh),
                    ("tmp_alone_branch", lhp),
                    ("nr_uninterruptible", uint),
                    ("curr", taskp),
                    ("idle", taskp),
                    ("stop", taskp),
                    ("next_balance", ulong),
                    ("prev_mm", voidp),
                    ("clock_update_flags", uint),
                    ("clock", u64t),
                    ("clock_task", u64t),
                    ("clock_pelt", u64t),
                    ("lost_idle_time", ulong),
                    ("nr_iowait", atomic_t),
                    ("rd", root_domainp),
                    ("cpu", int),
                    ("online", int),
                    ("idle_stamp", u64t),
                    ("avg_idle", u64t),
                    ("max_idle_balance_cost", u64t),
                ],
            );
            let thread_info = k.structure(
                Some("thread_info"),
                &[
                    ("flags", ulong),
                    ("syscall_work", ulong),
                    ("status", u32t),
                    ("cpu", u32t),
                ],
            );
            let signal = k.structure(
                Some("signal_struct"),
                &[
                    ("sigcnt", atomic_t),
                    ("live", atomic_t),
                    ("nr_threads", int),
                    ("thread_head", lh),
                ],
            );
            let signalp = k.ptr(Some(signal));
            let numa_group = k.structure(Some("numa_group"), &[("refcount", int), ("gid", int)]);
            let numa_groupp = k.ptr(Some(numa_group));
            let c16 = k.array(chr, 16);
            k.define(
                task,
                &[
                    ("thread_info", thread_info),
                    ("__state", uint),
                    ("stack", voidp),
                    ("usage", atomic_t),
                    ("flags", uint),
                    ("ptrace", uint),
                    ("on_cpu", int),
                    ("recent_used_cpu", int),
                    ("wake_cpu", int),
                    ("on_rq", int),
                    ("prio", int),
                    ("static_prio", int),
                    ("normal_prio", int),
                    ("rt_priority", uint),
                    ("se", se),
                    ("sched_task_group", tgp),
                    ("stats", sched_statistics),
                    ("policy", uint),
                    ("nr_cpus_allowed", int),
                    ("cpus_mask", cpumask),
                    ("tasks", lh),
                    ("mm", voidp),
                    ("active_mm", voidp),
                    ("exit_state", int),
                    ("exit_code", int),
                    ("exit_signal", int),
                    ("pid", pid_t),
                    ("tgid", pid_t),
                    ("real_parent", taskp),
                    ("parent", taskp),
                    ("children", lh),
                    ("sibling", lh),
                    ("group_leader", taskp),
                    ("thread_group", lh),
                    ("thread_node", lh),
                    ("nvcsw", ulong),
                    ("nivcsw", ulong),
                    ("start_time", u64t),
                    ("start_boottime", u64t),
                    ("comm", c16),
                    ("signal", signalp),
                    ("numa_group", numa_groupp),
                ],
            );
            Types {
                int,
                uint,
                ulong,
                chr,
                list_head: lh,
                uts_ns,
                cpumask,
                taint_flag,
                task,
                signal,
                rq,
                task_group: tg,
                root_domain,
                static_key_false,
                static_key_true,
                tk_core,
                se_ptr: sep,
                cfs_rq_ptr: cfs_rqp,
            }
        }
    }

    /// `taint_flags[]` of 6.1 (kernel/panic.c): (c_true, c_false, module).
    const TAINT_FLAGS: [(u8, u8, bool); 19] = [
        (b'P', b'G', true),
        (b'F', b' ', true),
        (b'S', b' ', false),
        (b'R', b' ', false),
        (b'M', b' ', false),
        (b'B', b' ', false),
        (b'U', b' ', false),
        (b'D', b' ', false),
        (b'A', b' ', false),
        (b'W', b' ', false),
        (b'C', b' ', true),
        (b'I', b' ', false),
        (b'O', b' ', true),
        (b'E', b' ', true),
        (b'L', b' ', false),
        (b'K', b' ', true),
        (b'X', b' ', true),
        (b'T', b' ', true),
        (b'N', b' ', true),
    ];

    /// `NICE_0_LOAD` with the 64-bit fixed-point shift (scale_load(1024)).
    const NICE_0_LOAD: u64 = 1024 << 10;

    fn populate(k: &mut SynthKernel, ty: &Types) {
        let cfg = k.cfg.clone();
        // Identity.
        let uts = k.global("init_uts_ns", ty.uts_ns);
        for (f, v) in [
            ("sysname", &cfg.sysname),
            ("nodename", &cfg.nodename),
            ("release", &cfg.release),
            ("version", &cfg.version),
            ("machine", &cfg.machine),
            ("domainname", &cfg.domainname),
        ] {
            k.set_str(&uts, &format!("name.{f}"), v);
        }
        // `const char linux_banner[]` (init/version.c), described in the DWARF.
        let cchr = k.const_(ty.chr);
        let banner_ty = k.array(cchr, BANNER.len() as u64 + 1);
        k.rodata_global("linux_banner", banner_ty, BANNER.as_bytes());
        let tainted = k.global("tainted_mask", ty.ulong);
        k.set(&tainted, "", TAINTED_MASK);
        let flags_ty = k.array(ty.taint_flag, TAINT_FLAGS.len() as u64);
        let flags = k.global("taint_flags", flags_ty);
        for (i, &(t, f, m)) in TAINT_FLAGS.iter().enumerate() {
            let e = k.elem(&flags, i as u64);
            k.set_all(
                &e,
                &[
                    ("c_true", u64::from(t)),
                    ("c_false", u64::from(f)),
                    ("module", u64::from(m)),
                ],
            );
        }

        // Time: HZ=250 (tick_nsec 4 ms), jiffies, the timekeeper's monotonic clock.
        let vol_ulong = k.volatile(ty.ulong);
        let jiffies = k.global("jiffies", vol_ulong);
        k.set(&jiffies, "", JIFFIES);
        let tick_nsec = k.global("tick_nsec", ty.ulong);
        k.set(&tick_nsec, "", 4_000_000);
        let tk = k.global("tk_core", ty.tk_core);
        k.set_all(
            &tk,
            &[
                ("timekeeper.tkr_mono.base", 1_163_248_117_436),
                ("timekeeper.tkr_mono.shift", 24),
                ("timekeeper.tkr_mono.mult", 0x0100_0000),
                ("timekeeper.tkr_mono.xtime_nsec", 221_004u64 << 24),
                ("timekeeper.xtime_sec", CRASH_TIME as u64),
            ],
        );
        let cpu_khz = k.global("cpu_khz", ty.uint);
        k.set(&cpu_khz, "", 2_442_571);

        // CPUs.
        let all = (1u64 << NR_CPUS) - 1;
        for m in [
            "__cpu_possible_mask",
            "__cpu_online_mask",
            "__cpu_present_mask",
            "__cpu_active_mask",
        ] {
            let o = k.global(m, ty.cpumask);
            // A panic clears the other CPUs from cpu_online_mask (stop_this_cpu()).
            let v = if m == "__cpu_online_mask" {
                1 << 1
            } else {
                all
            };
            let b = k.elem(&k.at(&o, "bits"), 0);
            k.set(&b, "", v);
        }
        let nr_cpu_ids = k.global("nr_cpu_ids", ty.uint);
        k.set(&nr_cpu_ids, "", u64::from(NR_CPUS));
        k.per_cpu_offsets(ty.ulong);
        // NUMA node 0 on every CPU (zero-filled): the task rows' node column.
        k.percpu("numa_node", ty.int);

        // Scheduler tunables as Debian 6.1 sets them on 2 CPUs (logarithmic scaling: ×2).
        for (name, v) in [
            ("sysctl_sched_latency", 12_000_000u64),
            ("sysctl_sched_min_granularity", 1_500_000),
            ("sysctl_sched_idle_min_granularity", 750_000),
            ("sysctl_sched_wakeup_granularity", 2_000_000),
            ("sysctl_sched_child_runs_first", 0),
            ("sysctl_sched_features", 125_703_739),
            ("sysctl_sched_tunable_scaling", 1),
        ] {
            let o = k.global(name, ty.uint);
            k.set(&o, "", v);
        }
        // Static keys: schedstats off, sched_clock stable (TSC).
        let ss = k.global("sched_schedstats", ty.static_key_false);
        k.set(&ss, "key.enabled.counter", 0);
        let stable = k.global("__sched_clock_stable", ty.static_key_false);
        k.set(&stable, "key.enabled.counter", 1);

        // Root task group, root domain.
        let root_tg = k.global("root_task_group", ty.task_group);
        let tg_list = k.global("task_groups", ty.list_head);
        let tg_node = k.at(&root_tg, "list").va;
        k.link_list(tg_list.va, &[tg_node]);
        let sib = k.at(&root_tg, "siblings").va;
        k.link_list(sib, &[]);
        let ch = k.at(&root_tg, "children").va;
        k.link_list(ch, &[]);
        k.set(&root_tg, "shares", NICE_0_LOAD);
        let se_arr_ty = k.array(ty.se_ptr, u64::from(NR_CPUS));
        let cfs_arr_ty = k.array(ty.cfs_rq_ptr, u64::from(NR_CPUS));
        let se_arr = k.alloc(se_arr_ty); // the root group has no entity: NULLs
        let cfs_arr = k.alloc(cfs_arr_ty);
        k.set(&root_tg, "se", se_arr.va);
        k.set(&root_tg, "cfs_rq", cfs_arr.va);
        let rd = k.global("def_root_domain", ty.root_domain);
        k.set_all(
            &rd,
            &[
                ("dl_bw.bw", 996_147),
                ("dl_bw.total_bw", 0),
                ("refcount.counter", u64::from(NR_CPUS)),
            ],
        );
        let rd_span = k.elem(&k.at(&rd, "span.bits"), 0);
        k.set(&rd_span, "", all);
        let rd_online = k.elem(&k.at(&rd, "online.bits"), 0);
        k.set(&rd_online, "", all);

        // Tasks: init_task (swapper/0), CPU 1's idle task, then the list.
        let init_task = k.global("init_task", ty.task);
        let idle1 = k.alloc(ty.task);
        let idles = [init_task, idle1];
        let mut objs = Vec::new();
        for _ in &TASKS {
            objs.push((k.alloc(ty.task), k.alloc(ty.signal)));
        }
        let kthreadd = objs[1].0;
        for (cpu, idle) in idles.iter().enumerate() {
            write_task(
                k,
                idle,
                None,
                &Task {
                    pid: 0,
                    comm: IDLE_COMM[cpu],
                    cpu: cpu as u32,
                    state: RUNNING,
                    prio: 120,
                    vruntime: 0,
                    sum_exec: 0,
                    nvcsw: 0,
                    nivcsw: 0,
                    current: false,
                    queued: false,
                    kthread: true,
                },
                init_task.va,
                &root_tg,
            );
        }
        for (t, (o, sig)) in TASKS.iter().zip(&objs) {
            let parent = if t.kthread && t.pid != 2 {
                kthreadd.va
            } else if t.pid <= 2 {
                init_task.va
            } else {
                objs[0].0.va
            };
            write_task(k, o, Some(sig), t, parent, &root_tg);
        }
        let nodes: Vec<u64> = objs.iter().map(|(o, _)| k.at(o, "tasks").va).collect();
        let head = k.at(&init_task, "tasks").va;
        k.link_list(head, &nodes);

        // Runqueues.
        let rqs = k.percpu("runqueues", ty.rq);
        for cpu in 0..NR_CPUS {
            let rq = k.on_cpu(&rqs, cpu);
            let st = RQ[cpu as usize];
            let on_cpu: Vec<usize> = (0..TASKS.len())
                .filter(|&i| TASKS[i].cpu == cpu && (TASKS[i].current || TASKS[i].queued))
                .collect();
            let nr = on_cpu.len() as u64;
            let curr_i = on_cpu.iter().copied().find(|&i| TASKS[i].current);
            let curr = curr_i.map_or(idles[cpu as usize].va, |i| objs[i].0.va);
            k.set_all(
                &rq,
                &[
                    ("nr_running", nr),
                    ("nr_switches", st.nr_switches),
                    ("nr_uninterruptible", 0),
                    ("curr", curr),
                    ("idle", idles[cpu as usize].va),
                    ("next_balance", JIFFIES + 12 + u64::from(cpu) * 5),
                    ("clock", st.clock),
                    ("clock_task", st.clock),
                    ("clock_pelt", st.clock),
                    ("rd", rd.va),
                    ("cpu", u64::from(cpu)),
                    ("online", 1),
                    ("avg_idle", st.avg_idle),
                    ("max_idle_balance_cost", st.max_idle_balance_cost),
                    ("rt.rt_runtime", 950_000_000),
                ],
            );
            let cfs = k.at(&rq, "cfs");
            k.set_all(
                &cfs,
                &[
                    ("load.weight", nr * NICE_0_LOAD),
                    ("nr_running", nr),
                    ("h_nr_running", nr),
                    ("min_vruntime", st.min_vruntime),
                    ("avg.load_avg", st.load_avg),
                    ("avg.runnable_avg", st.load_avg),
                    ("avg.util_avg", st.util_avg),
                    ("rq", rq.va),
                    ("on_list", 1),
                    ("tg", root_tg.va),
                ],
            );
            if let Some(i) = curr_i {
                let se = k.at(&objs[i].0, "se").va;
                k.set(&cfs, "curr", se);
            }
            // The CFS tree holds the runnable entities that are not running (at most one here):
            // a one-node red-black tree, its root black (parent NULL | RB_BLACK).
            let waiting: Vec<usize> = on_cpu
                .iter()
                .copied()
                .filter(|&i| TASKS[i].queued)
                .collect();
            assert!(waiting.len() <= 1, "the demo tree holds one entity per CPU");
            if let Some(&i) = waiting.first() {
                let node = k.at(&objs[i].0, "se.run_node");
                k.set(&node, "__rb_parent_color", 1);
                k.set(&cfs, "tasks_timeline.rb_root.rb_node", node.va);
                k.set(&cfs, "tasks_timeline.rb_leftmost", node.va);
            }
            let slot = k.elem(&cfs_arr, u64::from(cpu));
            k.set(&slot, "", cfs.va);
            let leaf_head = k.at(&rq, "leaf_cfs_rq_list").va;
            let leaf_node = k.at(&cfs, "leaf_cfs_rq_list").va;
            k.link_list(leaf_head, &[leaf_node]);
            k.set(&rq, "tmp_alone_branch", leaf_head);
            let pid = curr_i.map_or(0, |i| TASKS[i].pid);
            // The crashing CPU stopped in the sysrq handler, the other in the NMI stop path.
            let rip = if cpu == 1 {
                k.cfg.runtime(LINK_TEXT + 0x6f_4a10)
            } else {
                k.cfg.runtime(LINK_TEXT + 0x5_8c20)
            };
            k.cpu_state(cpu, pid, rip);
            // Every task on this CPU points its entity at this cfs_rq.
            for (t, (o, _)) in TASKS.iter().zip(&objs) {
                if t.cpu == cpu {
                    k.set(o, "se.cfs_rq", cfs.va);
                }
            }
            k.set(&idles[cpu as usize], "se.cfs_rq", cfs.va);
        }
        k.text_symbol("sysrq_handle_crash", LINK_TEXT + 0x6f_4a00, 0x20);
        k.text_symbol("stop_this_cpu", LINK_TEXT + 0x5_8c00, 0x80);
    }

    /// One `task_struct` (and its `signal_struct` for a thread-group leader on the task list).
    fn write_task(
        k: &mut SynthKernel,
        o: &Obj,
        sig: Option<&Obj>,
        t: &Task,
        parent: u64,
        root_tg: &Obj,
    ) {
        // PF_KTHREAD | PF_NOFREEZE for kernel threads, PF_IDLE for the idle tasks.
        let flags = match (t.pid, t.kthread) {
            (0, _) => 0x0020_0002,
            (_, true) => 0x0020_8040,
            _ => 0x0040_0100,
        };
        let policy = if t.prio == 0 { 1 } else { 0 }; // SCHED_FIFO for the stopper threads
        k.set_all(
            o,
            &[
                ("thread_info.cpu", u64::from(t.cpu)),
                ("__state", u64::from(t.state)),
                ("usage.counter", 2),
                ("flags", flags),
                ("on_cpu", u64::from(t.current)),
                ("wake_cpu", u64::from(t.cpu)),
                ("on_rq", u64::from(t.current || t.queued)),
                ("prio", t.prio as u64),
                ("static_prio", 120),
                ("normal_prio", t.prio as u64),
                ("rt_priority", if t.prio == 0 { 99 } else { 0 }),
                ("se.load.weight", NICE_0_LOAD),
                ("se.load.inv_weight", 4_194_304),
                ("se.on_rq", u64::from(t.current || t.queued)),
                ("se.sum_exec_runtime", t.sum_exec),
                ("se.vruntime", t.vruntime),
                ("se.prev_sum_exec_runtime", t.sum_exec),
                ("sched_task_group", root_tg.va),
                ("policy", policy),
                (
                    "nr_cpus_allowed",
                    if t.kthread && t.pid > 2 { 1 } else { 2 },
                ),
                ("exit_signal", 17),
                ("pid", u64::from(t.pid)),
                ("tgid", u64::from(t.pid)),
                ("real_parent", parent),
                ("parent", parent),
                ("group_leader", o.va),
                ("nvcsw", t.nvcsw),
                ("nivcsw", t.nivcsw),
            ],
        );
        let mask = if t.kthread && t.pid > 2 {
            1u64 << t.cpu
        } else {
            (1u64 << NR_CPUS) - 1
        };
        let m = k.elem(&k.at(o, "cpus_mask.bits"), 0);
        k.set(&m, "", mask);
        k.set_str(o, "comm", t.comm);
        for l in ["children", "sibling", "thread_group"] {
            let h = k.at(o, l).va;
            k.link_list(h, &[]);
        }
        let node = k.at(o, "thread_node").va;
        match sig {
            Some(s) => {
                k.set_all(
                    s,
                    &[
                        ("sigcnt.counter", 1),
                        ("live.counter", 1),
                        ("nr_threads", 1),
                    ],
                );
                let head = k.at(s, "thread_head").va;
                k.link_list(head, &[node]);
                k.set(o, "signal", s.va);
            }
            None => k.link_list(node, &[]),
        }
    }
}
