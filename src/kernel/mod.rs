//! The typed kernel view plugins use: variables by name, member paths, lists, per-CPU data.
//!
//! [`Kernel`] owns the address space of the dumped machine, the vmlinux symbols (KASLR-shifted),
//! a [`TypeSource`] and the dump's metadata. [`Object`] is a handle on typed memory (address +
//! type) in the style of a debugger value: follow a member path, dereference, index, read an
//! integer at its DWARF width and signedness, read a bounded C string. Walkers for `list_head`,
//! `hlist_head` and `rb_root` cap their iterations and detect cycles, because a crash dump's data
//! structures may be half-updated or corrupt.
//!
//! Every read checks the deadline set by [`Kernel::set_deadline`], so a runaway plugin stops with
//! [`KernelError::TimedOut`] at its next read.
//!
//! Plugins do not use [`Kernel`] directly: they are written against [`KernelAccess`] (module
//! [`access`]), whose production implementation [`KView`] ([`Kernel::access`]) maps onto this
//! view, and whose test double is `tests/common/fake_kernel.rs`.
//!
//! Errors keep "this kernel has no such member" ([`KernelError::NoMember`], degrade) apart from
//! "the memory is not in the dump" ([`KernelError::Memory`], record): see [`KernelError`].

pub mod access;
mod error;
mod object;
pub mod printk;
pub mod stack;
pub mod task_state;
mod tasks;
mod view;
mod walk;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use access::{AResult, AccessError, KernelAccess, KernelAccessExt};
pub use error::KernelError;
pub use object::Object;
pub use tasks::{LostTask, TaskRef, TaskSources, TaskWalk, TaskWalkError};
pub use view::KView;
pub use walk::{DEFAULT_WALK_CAP, ListRing, XArrayEntries};

use crate::addr::VirtAddr;
use crate::arch::{AddressSpace, TranslateError};
use crate::debuginfo::symbols::SymbolTable;
use crate::debuginfo::{Type, TypeId, TypeKind, TypeSource};
use crate::dump::{DumpError, DumpInfo, VmcoreInfo};

thread_local! {
    /// The deadline of the reads made on this thread ([`Kernel::set_thread_deadline`]).
    static THREAD_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The reads made on this thread: (succeeded, failed) ([`Kernel::thread_read_counts`]).
    static THREAD_READS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Everything a plugin may look at: the kernel's address space, its types and symbols, and the
/// dump's metadata.
pub struct Kernel {
    space: AddressSpace,
    symbols: Arc<SymbolTable>,
    types: Arc<dyn TypeSource>,
    info: DumpInfo,
    deadline: Mutex<Option<Instant>>,
    reads: ReadCounts,
    /// What backtraces compute once (CPU registers, module symbols, line tables).
    stack: stack::StackCache,
}

/// How many memory reads succeeded and failed: the runner tells from the difference over a
/// plugin's run whether every one of its reads failed.
#[derive(Debug, Default)]
struct ReadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Kernel {
    /// Bundles the parts the CLI glue built: the address space (`arch::address_space`), the
    /// vmlinux symbols already shifted by the KASLR offset, a type source and the dump metadata.
    pub fn new(
        space: AddressSpace,
        symbols: Arc<SymbolTable>,
        types: Arc<dyn TypeSource>,
        info: DumpInfo,
    ) -> Kernel {
        Kernel {
            space,
            symbols,
            types,
            info,
            deadline: Mutex::new(None),
            reads: ReadCounts::default(),
            stack: stack::StackCache::default(),
        }
    }

    pub fn space(&self) -> &AddressSpace {
        &self.space
    }
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }
    pub fn types(&self) -> &dyn TypeSource {
        &*self.types
    }
    pub fn info(&self) -> &DumpInfo {
        &self.info
    }
    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.info.vmcoreinfo.as_ref()
    }
    pub(crate) fn stack_cache(&self) -> &stack::StackCache {
        &self.stack
    }

    /// The interface plugins read the kernel through ([`KernelAccess`]).
    pub fn access(&self) -> KView<'_> {
        KView::new(self)
    }

    /// The kernel's page size: VMCOREINFO `PAGESIZE`, else the dump's page granularity.
    pub fn page_size(&self) -> u64 {
        self.vmcoreinfo()
            .and_then(|v| v.page_size)
            .unwrap_or(self.info.page_size)
    }

    /// Sets (or clears) the instant after which every read fails with
    /// [`KernelError::TimedOut`]. The plugin runner sets it from `--plugin-timeout`.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
    }

    /// Sets (or clears) a deadline for the reads made on the calling thread only, as
    /// [`Kernel::set_deadline`] does for all threads. Plugins running at once (`--threads`)
    /// each have their own.
    pub fn set_thread_deadline(deadline: Option<Instant>) {
        THREAD_DEADLINE.with(|d| d.set(deadline));
    }

    /// The memory reads made on the calling thread so far, of any kernel: (succeeded, failed).
    /// A plugin's own counts when plugins run at once.
    pub fn thread_read_counts() -> (u64, u64) {
        THREAD_READS.with(Cell::get)
    }

    /// The memory reads so far: (succeeded, failed). Reads refused by the deadline are not
    /// counted.
    pub fn read_counts(&self) -> (u64, u64) {
        (
            self.reads.ok.load(Ordering::Relaxed),
            self.reads.failed.load(Ordering::Relaxed),
        )
    }

    fn count<T, E>(&self, r: Result<T, E>) -> Result<T, E> {
        let c = if r.is_ok() {
            &self.reads.ok
        } else {
            &self.reads.failed
        };
        c.fetch_add(1, Ordering::Relaxed);
        THREAD_READS.with(|t| {
            let (ok, failed) = t.get();
            t.set(if r.is_ok() {
                (ok + 1, failed)
            } else {
                (ok, failed + 1)
            });
        });
        r
    }

    /// Fails with [`KernelError::TimedOut`] once the deadline has passed.
    pub fn check_deadline(&self) -> Result<(), KernelError> {
        let d = *self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        let d = match (d, THREAD_DEADLINE.with(Cell::get)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match d {
            Some(d) if Instant::now() >= d => Err(KernelError::TimedOut),
            _ => Ok(()),
        }
    }

    // ---- raw memory -------------------------------------------------------------------------

    /// Reads bytes of kernel virtual memory.
    pub fn read(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), KernelError> {
        self.check_deadline()?;
        let r = self.space.read(va, buf);
        self.count(r).map_err(|source| KernelError::Memory {
            va,
            len: buf.len() as u64,
            source,
        })
    }

    /// Whether every page of `[va, va + len)` is mapped and stored in the dump, without reading
    /// it. Reading is not enough to know: an ELF dump filtered by makedumpfile keeps excluded
    /// pages inside its segments' memory size, and they read as zeros. The error names the first
    /// page that is not there (code `not-dumped` for a page the dump lacks).
    pub fn check_dumped(&self, va: VirtAddr, len: u64) -> Result<(), KernelError> {
        self.check_deadline()?;
        let fail = |source| KernelError::Memory { va, len, source };
        let end = va.0.saturating_add(len);
        let mut cur = va.0;
        while cur < end {
            let t = self.space.translate(VirtAddr(cur)).map_err(fail)?;
            if !self.space.phys().is_dumped(t.phys) {
                return Err(fail(TranslateError::Memory {
                    va: VirtAddr(cur),
                    phys: t.phys,
                    source: DumpError::NotDumped { addr: t.phys },
                }));
            }
            // the next page: dump pages are at least 4 KiB, mappings at least one page
            let step = 4096u64.min(t.mapping_size.max(1));
            cur = (cur / step + 1) * step;
        }
        Ok(())
    }

    /// A pointer read only from a page the dump holds (see [`Kernel::check_dumped`]).
    pub fn read_ptr_dumped(&self, va: VirtAddr) -> Result<VirtAddr, KernelError> {
        self.check_dumped(va, 8)?;
        self.read_ptr(va)
    }

    pub fn read_bytes(&self, va: VirtAddr, len: usize) -> Result<Vec<u8>, KernelError> {
        let mut v = vec![0u8; len];
        self.read(va, &mut v)?;
        Ok(v)
    }

    /// Whether [`Kernel::read_user`] is supported on this dump's architecture.
    pub fn can_read_user(&self) -> bool {
        self.space.user_space(crate::addr::PhysAddr(0)).is_some()
    }

    /// Reads `len` bytes of a process's memory at the user address `va`, through the tables
    /// whose top level is at the kernel address `pgd` (its `mm->pgd`). Fails with
    /// [`KernelError::Unsupported`] where the architecture's walker reads kernel addresses only.
    pub fn read_user(
        &self,
        pgd: VirtAddr,
        va: VirtAddr,
        len: usize,
    ) -> Result<Vec<u8>, KernelError> {
        self.check_deadline()?;
        let root = self
            .space
            .translate(pgd)
            .map_err(|source| KernelError::Memory {
                va: pgd,
                len: 8,
                source,
            })?
            .phys;
        let user = self.space.user_space(root).ok_or_else(|| {
            KernelError::Unsupported(format!("reading user memory on {:?}", self.space.arch()))
        })?;
        let mut v = vec![0u8; len];
        user.read(va, &mut v)
            .map_err(|source| KernelError::Memory {
                va,
                len: len as u64,
                source,
            })?;
        Ok(v)
    }

    /// Reads an unsigned integer of 1, 2, 4 or 8 bytes in the dump's byte order.
    pub fn read_uint(&self, va: VirtAddr, width: usize) -> Result<u64, KernelError> {
        let mut b = [0u8; 8];
        let buf = b
            .get_mut(..width)
            .ok_or_else(|| KernelError::WrongType(format!("integer width {width}")))?;
        self.read(va, buf)?;
        self.space
            .endian()
            .uint(&b, width)
            .ok_or_else(|| KernelError::WrongType(format!("integer width {width}")))
    }

    pub fn read_u32(&self, va: VirtAddr) -> Result<u32, KernelError> {
        self.read_uint(va, 4).map(|v| v as u32)
    }
    pub fn read_u64(&self, va: VirtAddr) -> Result<u64, KernelError> {
        self.read_uint(va, 8)
    }
    pub fn read_ptr(&self, va: VirtAddr) -> Result<VirtAddr, KernelError> {
        self.read_u64(va).map(VirtAddr)
    }

    /// Reads a NUL-terminated string of at most `max` bytes, lossless (no UTF-8 decoding).
    pub fn read_cstr(&self, va: VirtAddr, max: usize) -> Result<Vec<u8>, KernelError> {
        self.check_deadline()?;
        let r = self.space.read_cstr(va, max);
        self.count(r).map_err(|source| KernelError::Memory {
            va,
            len: max as u64,
            source,
        })
    }

    // ---- symbols and types ------------------------------------------------------------------

    /// The (KASLR-shifted) address of a global: from the vmlinux symbol table, else from the
    /// dump's VMCOREINFO `SYMBOL(...)` lines.
    pub fn symbol_address(&self, name: &str) -> Result<VirtAddr, KernelError> {
        if let Some(a) = self.symbols.address(name) {
            return Ok(a);
        }
        self.vmcoreinfo()
            .and_then(|vi| vi.symbol(name))
            .map(VirtAddr)
            .ok_or_else(|| KernelError::NoSymbol(name.to_string()))
    }

    /// `symbol+0xoff` for an address, if a symbol covers it.
    pub fn symbolize(&self, addr: VirtAddr) -> Option<String> {
        self.symbols.format_address(addr)
    }

    /// A type by its C name (`"struct task_struct"`, `"u64"`).
    pub fn find_type(&self, name: &str) -> Result<TypeId, KernelError> {
        self.types
            .find_type(name)?
            .ok_or_else(|| KernelError::NoType(name.to_string()))
    }

    /// The type behind an id, typedefs followed.
    pub fn resolve(&self, id: TypeId) -> Result<(TypeId, Arc<Type>), KernelError> {
        crate::debuginfo::strip_typedefs(&*self.types, id)?
            .ok_or_else(|| KernelError::WrongType(format!("untyped typedef {id:?}")))
    }

    /// A printable C name for a type, for messages.
    pub fn type_name(&self, id: TypeId) -> String {
        let Ok(t) = self.types.get(id) else {
            return format!("<type {:#x}>", id.0);
        };
        let name = t.name.clone().unwrap_or_else(|| "<anonymous>".into());
        match &t.kind {
            TypeKind::Struct { .. } => format!("struct {name}"),
            TypeKind::Union { .. } => format!("union {name}"),
            TypeKind::Enum { .. } => format!("enum {name}"),
            TypeKind::Pointer { target } => match target {
                Some(t) => format!("{} *", self.type_name(*t)),
                None => "void *".into(),
            },
            TypeKind::Array { element, count } => match count {
                Some(n) => format!("{}[{n}]", self.type_name(*element)),
                None => format!("{}[]", self.type_name(*element)),
            },
            TypeKind::Void => "void".into(),
            _ => name,
        }
    }

    /// The value of an enumerator constant (`"PIDTYPE_PID"`).
    pub fn enumerator(&self, name: &str) -> Result<i64, KernelError> {
        self.types
            .enumerator(name)?
            .ok_or_else(|| KernelError::NoSymbol(name.to_string()))
    }

    /// The value of the enumerator `name` of `enum enum_name`: which of several enums holds a
    /// name, for names that moved between enums across versions.
    pub fn enumerator_in(&self, enum_name: &str, name: &str) -> Result<i64, KernelError> {
        let id = self.find_type(&format!("enum {enum_name}"))?;
        let (_, t) = self.resolve(id)?;
        let TypeKind::Enum { enumerators, .. } = &t.kind else {
            return Err(KernelError::WrongType(format!(
                "enum {enum_name} is not an enum"
            )));
        };
        enumerators
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| KernelError::NoSymbol(format!("{name} in enum {enum_name}")))
    }

    /// Whether a type has a member (anonymous members searched, dotted paths allowed).
    pub fn has_member(&self, type_name: &str, path: &str) -> Result<bool, KernelError> {
        match self.offset_of(type_name, path) {
            Ok(_) => Ok(true),
            Err(KernelError::NoMember { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Byte offset of a member path in a type (`offset_of("struct task_struct", "se.run_node")`).
    pub fn offset_of(&self, type_name: &str, path: &str) -> Result<u64, KernelError> {
        let ty = self.find_type(type_name)?;
        let o = self.object(VirtAddr(0), ty).member(path)?;
        Ok(o.address().0)
    }

    /// Size in bytes of a type.
    pub fn size_of(&self, type_name: &str) -> Result<u64, KernelError> {
        let ty = self.find_type(type_name)?;
        self.object(VirtAddr(0), ty).size()
    }

    // ---- objects ----------------------------------------------------------------------------

    /// A typed handle on memory; nothing is read until asked.
    pub fn object(&self, addr: VirtAddr, ty: TypeId) -> Object<'_> {
        Object::new(self, addr, ty)
    }

    /// A handle of a type named in C (`"struct rq"`).
    pub fn object_of(&self, addr: VirtAddr, type_name: &str) -> Result<Object<'_>, KernelError> {
        Ok(self.object(addr, self.find_type(type_name)?))
    }

    /// A global variable by name, typed from the debuginfo.
    pub fn variable(&self, name: &str) -> Result<Object<'_>, KernelError> {
        let addr = self.symbol_address(name)?;
        let ty = self
            .types
            .variable_type(name)?
            .ok_or_else(|| KernelError::NoSymbol(format!("{name} (no type in the debuginfo)")))?;
        Ok(self.object(addr, ty))
    }

    /// The enclosing object of a member: `addr` is the address of `member_path` inside a
    /// `type_name`, as the kernel's `container_of` macro computes it.
    pub fn container_of(
        &self,
        addr: VirtAddr,
        type_name: &str,
        member_path: &str,
    ) -> Result<Object<'_>, KernelError> {
        let ty = self.find_type(type_name)?;
        let off = self
            .object(VirtAddr(0), ty)
            .member(member_path)?
            .address()
            .0;
        Ok(self.object(VirtAddr(addr.0.wrapping_sub(off)), ty))
    }

    // ---- per-CPU data and cpumasks ----------------------------------------------------------

    /// `nr_cpu_ids`: the number of possible CPU ids.
    pub fn nr_cpu_ids(&self) -> Result<u32, KernelError> {
        match self.variable("nr_cpu_ids") {
            Ok(o) => Ok(o.u64()? as u32),
            // A kernel built with NR_CPUS=1 has no nr_cpu_ids variable.
            Err(e) if e.is_missing() => Ok(1),
            Err(e) => Err(e),
        }
    }

    /// `__per_cpu_offset[cpu]`: what to add to a per-CPU variable's address for that CPU.
    pub fn per_cpu_offset(&self, cpu: u32) -> Result<u64, KernelError> {
        let arr = self.variable("__per_cpu_offset")?;
        arr.index(u64::from(cpu))?.u64()
    }

    /// The address of a per-CPU pointer (`per_cpu_ptr`) for one CPU.
    pub fn per_cpu_ptr(&self, addr: VirtAddr, cpu: u32) -> Result<VirtAddr, KernelError> {
        Ok(VirtAddr(addr.0.wrapping_add(self.per_cpu_offset(cpu)?)))
    }

    /// A per-CPU variable (`runqueues`) on one CPU.
    pub fn per_cpu(&self, name: &str, cpu: u32) -> Result<Object<'_>, KernelError> {
        let v = self.variable(name)?;
        Ok(self.object(self.per_cpu_ptr(v.address(), cpu)?, v.type_id()))
    }

    /// The CPUs set in a `struct cpumask` object, below `nr_cpu_ids`.
    pub fn cpumask_cpus(&self, mask: &Object<'_>) -> Result<Vec<u32>, KernelError> {
        let nr = self.nr_cpu_ids()?;
        let bits = mask.member("bits")?;
        let (_, t) = self.resolve(bits.type_id())?;
        let count = match t.kind {
            TypeKind::Array { count, .. } => count.unwrap_or(0),
            _ => {
                return Err(KernelError::WrongType(
                    "cpumask.bits is not an array".into(),
                ));
            }
        };
        let mut out = Vec::new();
        for w in 0..count {
            let word = bits.index(w)?.u64()?;
            for b in 0..64u64 {
                let cpu = w * 64 + b;
                if cpu >= u64::from(nr) {
                    return Ok(out);
                }
                if word & (1 << b) != 0 {
                    out.push(cpu as u32);
                }
            }
        }
        Ok(out)
    }

    /// The CPUs in a global cpumask variable (`__cpu_online_mask`, …).
    pub fn cpumask(&self, variable: &str) -> Result<Vec<u32>, KernelError> {
        let m = self.variable(variable)?;
        self.cpumask_cpus(&m)
    }
    pub fn online_cpus(&self) -> Result<Vec<u32>, KernelError> {
        self.cpumask("__cpu_online_mask")
    }
    pub fn possible_cpus(&self) -> Result<Vec<u32>, KernelError> {
        self.cpumask("__cpu_possible_mask")
    }
    pub fn present_cpus(&self) -> Result<Vec<u32>, KernelError> {
        self.cpumask("__cpu_present_mask")
    }
}

// The plugin runner may hand the kernel view to worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kernel>();
};
