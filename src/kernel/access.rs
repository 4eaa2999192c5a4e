//! The one interface plugins read the kernel through: [`KernelAccess`].
//!
//! It names exactly the operations plugins need: a global by name, a member by path, an integer
//! of the member's DWARF width and signedness, a pointer, a bounded string, a per-CPU instance, a
//! cpumask, a `list_head` walk; and below the typed layer, raw memory, the dump's VMCOREINFO
//! lines, symbol addresses, type sizes and member offsets, enumerators and the page size. It keeps
//! apart "this kernel has no such member or symbol" (`Ok(None)`: the plugin degrades, printing
//! what this kernel version prints) from "the memory could not be read" (`Err`: the plugin
//! records it and goes on).
//!
//! The production implementation is [`KView`](super::KView), a thin mapping onto the crate's
//! kernel view ([`Kernel::access`](super::Kernel::access)). Tests implement the same trait over
//! an in-memory object graph (`tests/common/fake_kernel.rs`), which lets every plugin rule be
//! checked without a dump. A plugin is written once, generic over `K: KernelAccess`.

/// The most bytes one [`KernelAccess::read`] returns: a length read from a dump is hostile, so
/// callers bound it, and the interface refuses anything larger (64 MiB, above the kernel's
/// largest default log buffer and any page-sized structure).
pub const MAX_READ_LEN: usize = 64 << 20;

use crate::addr::Endian;
use crate::kernel::stack::{CpuContext, StackTrace};

/// Why a read failed. `code` goes into the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct AccessError {
    pub code: &'static str,
    pub what: String,
}

impl AccessError {
    pub fn new(code: &'static str, what: impl Into<String>) -> AccessError {
        AccessError {
            code,
            what: what.into(),
        }
    }
}

impl crate::error::ErrorCode for AccessError {
    fn code(&self) -> &'static str {
        self.code
    }
}

pub type AResult<T> = Result<T, AccessError>;

/// The kernel, as plugins read it. `Obj` is a typed object: an address and a type.
pub trait KernelAccess {
    type Obj: Clone;

    /// A global variable by its name; `Ok(None)` when this kernel has no such symbol (or no type
    /// for it).
    fn var(&self, name: &str) -> AResult<Option<Self::Obj>>;
    /// A member by a dotted path (`"avg.util_est.enqueued"`), without reading memory; `Ok(None)`
    /// when the type has no such member.
    fn member(&self, obj: &Self::Obj, path: &str) -> AResult<Option<Self::Obj>>;
    /// The integer value of an integer, enum, bool or pointer object, extended to 64 bits by the
    /// signedness of its type.
    fn int(&self, obj: &Self::Obj) -> AResult<i64>;
    /// The size in bytes of the object's type.
    fn size(&self, obj: &Self::Obj) -> AResult<u64>;
    /// The object a pointer points to, or `None` for NULL.
    fn deref(&self, obj: &Self::Obj) -> AResult<Option<Self::Obj>>;
    /// The `i`-th element of an array object, or `p[i]` when the object is a pointer.
    fn index(&self, obj: &Self::Obj, i: u64) -> AResult<Self::Obj>;
    /// The number of elements of an array object, when its type says.
    fn array_len(&self, obj: &Self::Obj) -> AResult<Option<u64>>;
    /// The object's address.
    fn address(&self, obj: &Self::Obj) -> u64;
    /// A NUL-terminated string: a `char[]` object, or what a `char *` points to; at most `max`
    /// bytes, raw.
    fn cstr(&self, obj: &Self::Obj, max: usize) -> AResult<Vec<u8>>;
    /// The enclosing `type_name` object of which `obj` is the member `member` (`container_of`).
    fn container_of(&self, obj: &Self::Obj, type_name: &str, member: &str) -> AResult<Self::Obj>;
    /// CPU `cpu`'s instance of a per-CPU variable.
    fn per_cpu(&self, var: &Self::Obj, cpu: u32) -> AResult<Self::Obj>;
    /// The entries of a `list_head` (the head itself excluded), as `type_name` objects linked by
    /// `member`; bounded and cycle-checked by the implementation.
    fn list(&self, head: &Self::Obj, type_name: &str, member: &str) -> AResult<Vec<Self::Obj>>;
    /// Every task, processes and threads, in `for_each_process_thread` order, idle tasks
    /// excluded; with the problems to record: each task known to exist whose `task_struct`
    /// cannot be read (pid, address, where it was seen, why) and each broken structure. The
    /// production implementation is the kernel view's enumeration (`Kernel::tasks`).
    fn tasks(&self) -> AResult<(Vec<Self::Obj>, Vec<AccessError>)>;
    /// Like [`KernelAccess::list`], but a list broken by an unreadable node keeps every entry
    /// reachable on both sides of the break (the kernel view walks back from the head), with
    /// the error that broke it (the module list, whose nodes no other structure reaches).
    fn list_salvaged(
        &self,
        head: &Self::Obj,
        type_name: &str,
        member: &str,
    ) -> AResult<(Vec<Self::Obj>, Option<AccessError>)>;
    /// The CPUs set in a cpumask variable (`__cpu_online_mask`, …); `Ok(None)` without it.
    fn cpumask(&self, name: &str) -> AResult<Option<Vec<u32>>>;

    // ---- below the types: memory, VMCOREINFO, symbols, layouts ------------------------------

    /// `len` bytes of kernel virtual memory at `addr`. A `len` above [`MAX_READ_LEN`] is refused
    /// (`too-large`); a byte not in the dump fails the whole read (`not-dumped`, with the address).
    fn read(&self, addr: u64, len: usize) -> AResult<Vec<u8>>;
    /// The value of one VMCOREINFO line of the dump, by its key as the kernel writes it:
    /// `SYMBOL(prb)` (hex, no `0x`), `OFFSET(printk_info.seq)`, `SIZE(printk_log)`,
    /// `LENGTH(printk_info_device)`, `NUMBER(PAGE_OFFSET)`, `OSRELEASE`, `CRASHTIME`, `PAGESIZE`.
    /// `None` when the dump has no such line (or no VMCOREINFO).
    fn vmcoreinfo(&self, key: &str) -> Option<String>;
    /// The address of a global (symbol table first, then VMCOREINFO `SYMBOL()`); `Ok(None)` when
    /// this kernel has none.
    fn symbol(&self, name: &str) -> AResult<Option<u64>>;
    /// `symbol+0xoff` for an address a symbol covers.
    fn symbolize(&self, addr: u64) -> Option<String>;
    /// The size in bytes of a type named in C (`"struct printk_info"`); `Ok(None)` when the
    /// debuginfo does not describe it.
    fn type_size(&self, type_name: &str) -> AResult<Option<u64>>;
    /// The byte offset of a member path in a type (`offset_of("struct prb_desc_ring",
    /// "head_id.counter")`); `Ok(None)` when the type or the member is not in this kernel.
    fn offset_of(&self, type_name: &str, path: &str) -> AResult<Option<u64>>;
    /// The kernel's page size (VMCOREINFO `PAGESIZE`, else the dump's).
    fn page_size(&self) -> u64;
    /// The dumped machine's byte order, for what [`KernelAccess::read`] returns.
    fn endian(&self) -> Endian;
    /// The value of an enumerator constant (`"PIDTYPE_PID"`); `Ok(None)` when this kernel has none.
    fn enumerator(&self, name: &str) -> AResult<Option<i64>>;
    /// The value of the enumerator `name` of `enum enum_name` (`("node_stat_item",
    /// "NR_FILE_PAGES")`); `Ok(None)` when this kernel's enum has no such enumerator, or there
    /// is no such enum. For names that moved between enums across versions (vmstat items went
    /// from `zone_stat_item` to `node_stat_item`), where the enum says which array to index.
    fn enumerator_in(&self, enum_name: &str, name: &str) -> AResult<Option<i64>>;

    // ---- backtraces ---------------------------------------------------------------------------

    /// Each possible CPU with its current task, its saved registers and where they came from,
    /// and which one panicked (docs/backtraces.md). The default, for implementations without
    /// backtraces, is `Err` with code `unsupported`.
    fn cpu_contexts(&self) -> AResult<Vec<CpuContext>> {
        Err(AccessError::new(
            "unsupported",
            "no backtraces for this kernel",
        ))
    }
    /// The backtrace of a task (a `struct task_struct` object), symbolized. `Err` when it has no
    /// starting registers (`no-registers`) or the architecture no unwinder (`unsupported`); a
    /// trace cut short is `Ok` with its stop reason.
    fn stack_trace(&self, task: &Self::Obj) -> AResult<StackTrace> {
        let _ = task;
        Err(AccessError::new(
            "unsupported",
            "no backtraces for this kernel",
        ))
    }
}

/// Helpers every collector uses, built on the trait.
pub trait KernelAccessExt: KernelAccess {
    /// The integer at `path` under `obj`, or `Ok(None)` when the member does not exist here.
    fn int_at(&self, obj: &Self::Obj, path: &str) -> AResult<Option<i64>> {
        match self.member(obj, path)? {
            Some(m) => self.int(&m).map(Some),
            None => Ok(None),
        }
    }

    /// The first of several member names that exists (renamed members: new name first).
    fn member_any(&self, obj: &Self::Obj, paths: &[&str]) -> AResult<Option<(Self::Obj, usize)>> {
        for (i, p) in paths.iter().enumerate() {
            if let Some(m) = self.member(obj, p)? {
                return Ok(Some((m, i)));
            }
        }
        Ok(None)
    }

    /// The integer at the first existing path.
    fn int_any(&self, obj: &Self::Obj, paths: &[&str]) -> AResult<Option<i64>> {
        match self.member_any(obj, paths)? {
            Some((m, _)) => self.int(&m).map(Some),
            None => Ok(None),
        }
    }

    /// The object a pointer member points to (`None`: NULL or no such member).
    fn deref_at(&self, obj: &Self::Obj, path: &str) -> AResult<Option<Self::Obj>> {
        match self.member(obj, path)? {
            Some(p) => self.deref(&p),
            None => Ok(None),
        }
    }

    /// The integer value of a global (`Ok(None)` without the symbol).
    fn var_int(&self, name: &str) -> AResult<Option<i64>> {
        match self.var(name)? {
            Some(v) => self.int(&v).map(Some),
            None => Ok(None),
        }
    }

    /// A VMCOREINFO number (`OFFSET()`, `SIZE()`, `LENGTH()`, `NUMBER()`, `PAGESIZE`: decimal,
    /// or `0x` hex on the few architecture keys that print it so), `None` when absent or not a
    /// number.
    fn vmcoreinfo_u64(&self, key: &str) -> Option<u64> {
        let v = self.vmcoreinfo(key)?;
        let v = v.trim();
        match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            // NUMBER() is printed signed (`%ld`): a negative value is the u64 it wraps to.
            None => v
                .parse::<u64>()
                .ok()
                .or_else(|| v.parse::<i64>().ok().map(|i| i as u64)),
        }
    }

    /// A `SYMBOL(name)` address from VMCOREINFO (hex, with or without `0x`).
    fn vmcoreinfo_symbol(&self, name: &str) -> Option<u64> {
        let v = self.vmcoreinfo(&format!("SYMBOL({name})"))?;
        let v = v.trim();
        let h = v.strip_prefix("0x").unwrap_or(v);
        u64::from_str_radix(h, 16).ok()
    }
}

impl<K: KernelAccess + ?Sized> KernelAccessExt for K {}
