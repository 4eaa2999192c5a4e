//! The narrow view of the kernel that the kernel_info and sched_debug collectors are written
//! against.
//!
//! It names exactly the operations the collectors need (a global by name, a member by path, an
//! integer of the member's DWARF width and signedness, a pointer, a bounded string, a per-CPU
//! instance, a cpumask, a `list_head` walk, the task enumeration) and keeps apart "this kernel has no such member or
//! symbol" (`Ok(None)`, the collector degrades: it prints what this kernel version prints) from
//! "the memory could not be read" (`Err`, recorded by the plugin, which then goes on).
//!
//! The production implementation sits on the crate's kernel view ([`crate::kernel::Kernel`]);
//! tests implement it over an in-memory object graph, which lets every collector rule (field
//! selection by probing, leaf-list order, task states, EEVDF eligibility, CPU fallbacks, a CPU
//! whose pages are missing) be checked without a dump.

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

/// The kernel, as the collectors read it. `Obj` is a typed object: an address and a type.
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
    /// The CPUs set in a cpumask variable (`__cpu_online_mask`, …); `Ok(None)` without it.
    fn cpumask(&self, name: &str) -> AResult<Option<Vec<u32>>>;
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
}

impl<K: KernelAccess + ?Sized> KernelAccessExt for K {}
