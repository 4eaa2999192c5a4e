//! A [`Kernel`] made from parts built in the test: physical memory over a `Vec`, an identity
//! translator and an empty type source. This is the single place that knows how to assemble a
//! `Kernel` for report-layer tests; when the kernel view changes shape, only this file changes.
//!
//! The memory holds a `struct uts_namespace` at [`UTS_VA`] whose `name` (a `struct new_utsname`,
//! six `char[65]`, include/uapi/linux/utsname.h) starts at [`UTS_NAME_OFFSET`]; VMCOREINFO
//! points at it with `SYMBOL(init_uts_ns)` and `OFFSET(uts_namespace.name)` as a real kernel's
//! does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmcore_report::addr::{Arch, Endian, PhysAddr, VirtAddr};
use vmcore_report::arch::{AddressSpace, TranslateError, Translation, Translator};
use vmcore_report::debuginfo::symbols::SymbolTable;
use vmcore_report::debuginfo::{DebugInfoError, Type, TypeId, TypeSource};
use vmcore_report::dump::{
    DumpError, DumpFormat, DumpInfo, HeaderUtsname, PhysMem, PhysRange, VmcoreInfo,
};
use vmcore_report::kernel::Kernel;

/// The kernel view of a dump file and its vmlinux, assembled as the CLI glue does it: the dump's
/// translation config (its VMCOREINFO), completed with `init_top_pgt` from the vmlinux when the
/// dump does not name the page-table root.
pub fn open(dump: &Path, vmlinux: &Path) -> Kernel {
    let vm = Arc::new(vmcore_report::debuginfo::elf::Vmlinux::open(vmlinux).expect("vmlinux"));
    open_with(&vm, dump)
}

/// [`open`] with a vmlinux already mapped (tests that open many dumps of one kernel).
pub fn open_with(vm: &Arc<vmcore_report::debuginfo::elf::Vmlinux>, dump: &Path) -> Kernel {
    let d = vmcore_report::dump::open(&[dump.to_path_buf()]).expect("dump opens");
    let vm = Arc::clone(vm);
    let mut cfg = vmcore_report::arch::config_from_dump(&d);
    let (syms, types) = vmcore_report::debuginfo::load(vm, cfg.kaslr_offset).expect("debuginfo");
    if cfg.pgd_va.is_none() {
        cfg.pgd_va = syms.address("init_top_pgt").map(|a| a.0);
    }
    let space = vmcore_report::arch::address_space(&d, &cfg).expect("address space");
    Kernel::new(space, syms, types, d.info)
}

pub const UTS_VA: u64 = 0x1000;
pub const UTS_NAME_OFFSET: u64 = 8;
pub const MEM_SIZE: usize = 0x4000;

/// Physical memory backed by a vector; every page is present.
pub struct VecMem {
    bytes: Vec<u8>,
    ranges: Vec<PhysRange>,
}

impl VecMem {
    pub fn new(bytes: Vec<u8>) -> VecMem {
        let end = bytes.len() as u64;
        VecMem {
            bytes,
            ranges: vec![PhysRange {
                start: PhysAddr(0),
                end: PhysAddr(end),
            }],
        }
    }
}

impl PhysMem for VecMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        let start = usize::try_from(addr.0).map_err(|_| DumpError::OutOfRange { addr })?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(start..end))
            .ok_or(DumpError::OutOfRange { addr })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
    fn is_dumped(&self, addr: PhysAddr) -> bool {
        addr.0 < self.bytes.len() as u64
    }
}

/// Virtual address = physical address, 4 KiB pages.
pub struct Identity;

impl Translator for Identity {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn translate(&self, _mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        Ok(Translation {
            phys: PhysAddr(va.0),
            mapping_size: 4096,
        })
    }
}

/// Knows no types.
pub struct NoTypes;

impl TypeSource for NoTypes {
    fn find_type(&self, _name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(None)
    }
    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        Err(DebugInfoError::BadTypeId(id))
    }
    fn variable_type(&self, _name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(None)
    }
    fn enumerator(&self, _name: &str) -> Result<Option<i64>, DebugInfoError> {
        Ok(None)
    }
}

/// What the test kernel claims to be.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `init_uts_ns.name.nodename`; `None` leaves VMCOREINFO without `SYMBOL(init_uts_ns)`.
    pub kernel_nodename: Option<String>,
    /// The kdump header's nodename; `None`: an ELF dump (no header).
    pub header_nodename: Option<String>,
    pub release: String,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            kernel_nodename: Some("crashed-host_01.example.com".into()),
            header_nodename: None,
            release: "6.1.0-test-amd64".into(),
        }
    }
}

pub fn kernel(spec: &Spec) -> Kernel {
    let mut mem = vec![0u8; MEM_SIZE];
    let mut vi = VmcoreInfo {
        osrelease: Some(spec.release.clone()),
        page_size: Some(4096),
        ..VmcoreInfo::default()
    };
    if let Some(node) = &spec.kernel_nodename {
        // struct new_utsname: sysname, nodename, release, version, machine, domainname
        let fields = [
            "Linux",
            node.as_str(),
            spec.release.as_str(),
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0",
            "x86_64",
            "(none)",
        ];
        for (i, f) in fields.iter().enumerate() {
            let at = (UTS_VA + UTS_NAME_OFFSET) as usize + 65 * i;
            mem[at..at + f.len()].copy_from_slice(f.as_bytes());
        }
        vi.symbols.insert("init_uts_ns".into(), UTS_VA);
        vi.offsets
            .insert("uts_namespace.name".into(), UTS_NAME_OFFSET);
    }
    let (format, header_utsname) = match &spec.header_nodename {
        Some(n) => (
            DumpFormat::Kdump {
                header_version: 6,
                compression: Some("zlib".into()),
                flattened: false,
                incomplete: false,
            },
            Some(HeaderUtsname {
                sysname: "Linux".into(),
                nodename: n.clone(),
                release: spec.release.clone(),
                machine: "x86_64".into(),
                ..HeaderUtsname::default()
            }),
        ),
        None => (
            DumpFormat::Elf {
                endian: Endian::Little,
            },
            None,
        ),
    };
    let mem: Arc<dyn PhysMem> = Arc::new(VecMem::new(mem));
    Kernel::new(
        AddressSpace::new(mem, Box::new(Identity), Endian::Little, 0),
        Arc::new(SymbolTable::from_parts(Vec::new(), 0)),
        Arc::new(NoTypes),
        DumpInfo {
            paths: vec![PathBuf::from("/nonexistent/vmcore")],
            file_size: MEM_SIZE as u64,
            format,
            arch: Some(Arch::X86_64),
            endian: Endian::Little,
            page_size: 4096,
            vmcoreinfo: Some(vi),
            vmcoreinfo_source: vmcore_report::dump::VmcoreinfoSource::Note,
            cpus: Vec::new(),
            header_utsname,
            header_timestamp: None,
            phys_base: None,
            dump_level: None,
            nr_cpus: Some(1),
            health: Default::default(),
        },
    )
}

/// Sparse physical memory: only the pages written exist; reading any other page is "not
/// dumped", as in a filtered dump.
#[derive(Default)]
pub struct SparseMem {
    pub pages: BTreeMap<u64, Box<[u8; 4096]>>,
}

impl SparseMem {
    pub fn write(&mut self, pa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let a = pa + i as u64;
            let page = self
                .pages
                .entry(a / 4096)
                .or_insert_with(|| Box::new([0; 4096]));
            page[(a % 4096) as usize] = *b;
        }
    }
}

impl PhysMem for SparseMem {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), DumpError> {
        for (i, out) in buf.iter_mut().enumerate() {
            let a = addr.0 + i as u64;
            let page = self
                .pages
                .get(&(a / 4096))
                .ok_or(DumpError::NotDumped { addr: PhysAddr(a) })?;
            *out = page[(a % 4096) as usize];
        }
        Ok(())
    }
    fn ranges(&self) -> &[PhysRange] {
        &[]
    }
    fn is_dumped(&self, addr: PhysAddr) -> bool {
        self.pages.contains_key(&(addr.0 / 4096))
    }
}

/// Kernel virtual address = physical address + the base, in 4 KiB pages; below the base nothing
/// is mapped.
pub struct OffsetTranslator(pub u64);

impl Translator for OffsetTranslator {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn translate(&self, _mem: &dyn PhysMem, va: VirtAddr) -> Result<Translation, TranslateError> {
        if va.0 < self.0 {
            return Err(TranslateError::NotMapped { va, level: 4 });
        }
        Ok(Translation {
            phys: PhysAddr(va.0 - self.0),
            mapping_size: 4096,
        })
    }
}
