//! [`KernelAccess`] over the crate's kernel view ([`Kernel`], [`Object`]): what
//! [`Kernel::access`] hands a plugin.
//!
//! The mapping is direct; the only policy here is the error split plugins rely on:
//! "this kernel has no such symbol, type or member" becomes `Ok(None)` (the collector prints what
//! this version prints), everything else (memory not in the dump, corrupt lists, timeouts) an
//! [`AccessError`] carrying the kernel view's stable code.
//!
//! Backtraces: the view keeps one [`Backtracer`] (the architecture's unwinder, which borrows the
//! kernel) from the first trace a plugin asks for to the last, so a plugin tracing every task
//! loads the unwind tables once.

use std::cell::OnceCell;

use crate::addr::{Endian, VirtAddr};
use crate::kernel::stack::{Backtracer, CpuContext, StackTrace};
use crate::kernel::{DEFAULT_WALK_CAP, Kernel, KernelError, Object};

use super::access::{AResult, AccessError, KernelAccess, MAX_READ_LEN};

/// The production [`KernelAccess`].
pub struct KView<'k> {
    pub kernel: &'k Kernel,
    /// Built on the first [`KernelAccess::stack_trace`]; its error is kept too.
    backtracer: OnceCell<Result<Backtracer<'k>, AccessError>>,
}

impl<'k> KView<'k> {
    pub fn new(kernel: &'k Kernel) -> KView<'k> {
        KView {
            kernel,
            backtracer: OnceCell::new(),
        }
    }
}

fn err(e: KernelError) -> AccessError {
    AccessError::new(e.code(), e.to_string())
}

/// `Ok(None)` for "not in this kernel", the error otherwise.
fn opt<T>(r: Result<T, KernelError>) -> AResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(err(e)),
    }
}

impl<'k> KernelAccess for KView<'k> {
    type Obj = Object<'k>;

    fn var(&self, name: &str) -> AResult<Option<Object<'k>>> {
        opt(self.kernel.variable(name))
    }

    /// A path this kernel does not have (the kernel view also counts `avg.util_est.enqueued`
    /// there, where 6.9 made `util_est` a plain `unsigned int`) is `Ok(None)`.
    fn member(&self, obj: &Object<'k>, path: &str) -> AResult<Option<Object<'k>>> {
        opt(obj.member(path))
    }

    fn int(&self, obj: &Object<'k>) -> AResult<i64> {
        obj.i64().map_err(err)
    }

    fn size(&self, obj: &Object<'k>) -> AResult<u64> {
        obj.size().map_err(err)
    }

    fn deref(&self, obj: &Object<'k>) -> AResult<Option<Object<'k>>> {
        let p = obj.pointer().map_err(err)?;
        if p.0 == 0 {
            return Ok(None);
        }
        obj.deref().map(Some).map_err(err)
    }

    fn index(&self, obj: &Object<'k>, i: u64) -> AResult<Object<'k>> {
        obj.index(i).map_err(err)
    }

    fn array_len(&self, obj: &Object<'k>) -> AResult<Option<u64>> {
        obj.array_len().map_err(err)
    }

    fn address(&self, obj: &Object<'k>) -> u64 {
        obj.address().0
    }

    fn cstr(&self, obj: &Object<'k>, max: usize) -> AResult<Vec<u8>> {
        obj.cstring(max).map_err(err)
    }

    fn container_of(&self, obj: &Object<'k>, type_name: &str, member: &str) -> AResult<Object<'k>> {
        self.kernel
            .container_of(obj.address(), type_name, member)
            .map_err(err)
    }

    fn per_cpu(&self, var: &Object<'k>, cpu: u32) -> AResult<Object<'k>> {
        let a = self.kernel.per_cpu_ptr(var.address(), cpu).map_err(err)?;
        Ok(self.kernel.object(a, var.type_id()))
    }

    fn list(&self, head: &Object<'k>, type_name: &str, member: &str) -> AResult<Vec<Object<'k>>> {
        self.kernel
            .list_entries(head.address(), type_name, member, DEFAULT_WALK_CAP)
            .map_err(err)
    }

    /// The kernel view's enumeration; a lost task or a walk problem becomes one error each,
    /// with the kernel view's code (`not-dumped` for a page the dump lacks).
    fn tasks(&self) -> AResult<(Vec<Object<'k>>, Vec<AccessError>)> {
        let walk = self.kernel.tasks().map_err(err)?;
        let ty = self.kernel.find_type("struct task_struct").map_err(err)?;
        let tasks = walk
            .tasks
            .iter()
            .map(|t| self.kernel.object(t.addr, ty))
            .collect();
        let mut problems: Vec<AccessError> = walk
            .lost
            .iter()
            .map(|l| AccessError::new(l.error.code(), format!("lost {l}")))
            .collect();
        problems.extend(
            walk.errors
                .iter()
                .map(|e| AccessError::new(e.error.code(), format!("task enumeration: {e}"))),
        );
        if walk.errors_dropped > 0 {
            problems.push(AccessError::new(
                "corrupt-data",
                format!("task enumeration: {} more problems", walk.errors_dropped),
            ));
        }
        Ok((tasks, problems))
    }

    fn list_salvaged(
        &self,
        head: &Object<'k>,
        type_name: &str,
        member: &str,
    ) -> AResult<(Vec<Object<'k>>, Option<AccessError>)> {
        let (entries, broke) = self
            .kernel
            .list_entries_salvaged(head.address(), type_name, member, DEFAULT_WALK_CAP)
            .map_err(err)?;
        Ok((entries, broke.map(err)))
    }

    fn cpumask(&self, name: &str) -> AResult<Option<Vec<u32>>> {
        opt(self.kernel.cpumask(name))
    }

    fn read(&self, addr: u64, len: usize) -> AResult<Vec<u8>> {
        if len > MAX_READ_LEN {
            return Err(AccessError::new(
                "too-large",
                format!("read of {len} bytes at {addr:#x} exceeds {MAX_READ_LEN}"),
            ));
        }
        self.kernel.read_bytes(VirtAddr(addr), len).map_err(err)
    }

    fn vmcoreinfo(&self, key: &str) -> Option<String> {
        self.kernel.vmcoreinfo()?.get(key)
    }

    fn symbol(&self, name: &str) -> AResult<Option<u64>> {
        opt(self.kernel.symbol_address(name)).map(|a| a.map(|a| a.0))
    }

    fn symbolize(&self, addr: u64) -> Option<String> {
        self.kernel.symbolize(VirtAddr(addr))
    }

    fn type_size(&self, type_name: &str) -> AResult<Option<u64>> {
        opt(self.kernel.size_of(type_name))
    }

    fn offset_of(&self, type_name: &str, path: &str) -> AResult<Option<u64>> {
        opt(self.kernel.offset_of(type_name, path))
    }

    fn page_size(&self) -> u64 {
        self.kernel.page_size()
    }

    fn endian(&self) -> Endian {
        self.kernel.space().endian()
    }

    fn enumerator(&self, name: &str) -> AResult<Option<i64>> {
        opt(self.kernel.enumerator(name))
    }

    fn enumerator_in(&self, enum_name: &str, name: &str) -> AResult<Option<i64>> {
        opt(self.kernel.enumerator_in(enum_name, name))
    }

    fn cpu_contexts(&self) -> AResult<Vec<CpuContext>> {
        self.kernel.cpu_contexts().map_err(err)
    }

    /// A deadline that cut the unwinder's construction short is not kept: the next call tries
    /// again.
    fn stack_trace(&self, task: &Object<'k>) -> AResult<StackTrace> {
        let bt = match self.backtracer.get() {
            Some(b) => b,
            None => match Backtracer::new(self.kernel) {
                Err(KernelError::TimedOut) => return Err(err(KernelError::TimedOut)),
                r => self.backtracer.get_or_init(|| r.map_err(err)),
            },
        };
        match bt {
            Ok(b) => b.trace(task.address()).map_err(err),
            Err(e) => Err(e.clone()),
        }
    }
}
