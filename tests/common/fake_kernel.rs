//! An in-memory kernel implementing the plugins' one interface, `vmcore_report::kernel::KernelAccess`,
//! so plugin rules can be tested without a dump. Objects are trees of named members; pointers name their
//! target (a top-level object and a member path inside it); a per-CPU variable lists one object per
//! CPU, `None` meaning "this CPU's pages are not in the dump". Layout is sequential (every scalar
//! 8 bytes, strings 64), which is all `address()` and `container_of` need to be consistent.
//!
//! Below the typed graph, the fake also holds what a plugin reads untyped: raw memory regions
//! ([`FakeKernel::map`], a byte outside every region is "not in the dump"), VMCOREINFO lines,
//! symbol addresses, type sizes, member offsets and enumerators, each set explicitly by the test.
//!
//! Written for the tests, independently of the production implementation over the kernel view.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::rc::Rc;

use vmcore_report::addr::Endian;
use vmcore_report::kernel::access::MAX_READ_LEN;
use vmcore_report::kernel::stack::{CpuContext, StackTrace};
use vmcore_report::kernel::{AResult, AccessError, KernelAccess};

#[derive(Clone, Debug)]
pub enum Node {
    /// An integer of `size` bytes (value already extended as the type's signedness says).
    Int(i64, u64),
    /// A pointer: `None` is NULL, else (top-level base, member path).
    Ptr(Option<(u64, String)>),
    Str(Vec<u8>),
    Struct(Vec<(String, Node)>),
    Array(Vec<Node>),
    /// A list_head: the entries (top-level base, member path of the entry object).
    List(Vec<(u64, String)>),
    /// A per-CPU variable: each CPU's instance (top-level base), `None` when not in the dump.
    PerCpu(Vec<Option<u64>>),
    /// Memory that cannot be read.
    Bad,
}

impl Node {
    fn size(&self) -> u64 {
        match self {
            Node::Int(_, s) => *s,
            Node::Str(_) => 64,
            Node::Struct(m) => m.iter().map(|(_, n)| n.size()).sum::<u64>().max(8),
            Node::Array(v) => v.iter().map(Node::size).sum::<u64>().max(8),
            Node::List(_) => 16,
            _ => 8,
        }
    }
}

/// Shorthands for building objects.
pub fn int(v: i64) -> Node {
    Node::Int(v, 8)
}
pub fn int4(v: i64) -> Node {
    Node::Int(v, 4)
}
pub fn ptr(base: u64, path: &str) -> Node {
    Node::Ptr(Some((base, path.to_string())))
}
pub fn null() -> Node {
    Node::Ptr(None)
}
pub fn st(members: Vec<(&str, Node)>) -> Node {
    Node::Struct(
        members
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
    )
}
pub fn s(v: &str) -> Node {
    Node::Str(v.as_bytes().to_vec())
}

#[derive(Clone, Debug)]
pub struct Obj {
    pub base: u64,
    pub path: Vec<String>,
    pub node: Rc<Node>,
}

#[derive(Default)]
pub struct FakeKernel {
    next: u64,
    objects: BTreeMap<u64, Rc<Node>>,
    vars: BTreeMap<String, u64>,
    pub cpumasks: BTreeMap<String, Vec<u32>>,
    /// Raw memory: start address -> bytes. Regions must not overlap.
    pub memory: BTreeMap<u64, Vec<u8>>,
    /// VMCOREINFO lines, key -> value, as the kernel writes them (`SYMBOL(prb)` -> hex).
    pub vmcoreinfo: BTreeMap<String, String>,
    /// Symbol addresses (besides the typed variables, whose base is their address).
    pub symbols: BTreeMap<String, u64>,
    /// `type name` -> size.
    pub type_sizes: BTreeMap<String, u64>,
    /// (`type name`, member path) -> offset.
    pub offsets: BTreeMap<(String, String), u64>,
    pub enumerators: BTreeMap<String, i64>,
    /// `enum` name (without the keyword) -> its enumerators; [`FakeKernel::set_enum`] fills
    /// this and [`FakeKernel::enumerators`] together.
    pub enum_types: BTreeMap<String, BTreeMap<String, i64>>,
    /// 4096 unless set.
    pub page_size: Option<u64>,
    /// Little-endian unless set.
    pub endian: Option<Endian>,
    /// What `cpu_contexts` returns (`None`: unsupported, the trait's default).
    pub cpu_contexts: Option<Vec<CpuContext>>,
    /// `stack_trace` by task address (a task without one: unsupported).
    pub traces: BTreeMap<u64, AResult<StackTrace>>,
}

fn not_dumped(what: &str) -> AccessError {
    AccessError::new("not-dumped", format!("{what}: page not in the dump"))
}

impl FakeKernel {
    pub fn new() -> FakeKernel {
        FakeKernel {
            next: 0xffff_8880_0000_0000,
            ..Default::default()
        }
    }

    /// Reserves an address for an object defined later with [`FakeKernel::set`].
    pub fn reserve(&mut self) -> u64 {
        let b = self.next;
        self.next += 0x10000;
        b
    }

    pub fn set(&mut self, base: u64, node: Node) {
        self.objects.insert(base, Rc::new(node));
    }

    pub fn alloc(&mut self, node: Node) -> u64 {
        let b = self.reserve();
        self.set(b, node);
        b
    }

    pub fn var(&mut self, name: &str, node: Node) -> u64 {
        let b = self.alloc(node);
        self.vars.insert(name.to_string(), b);
        b
    }

    /// Maps `bytes` at `addr` as raw memory.
    pub fn map(&mut self, addr: u64, bytes: Vec<u8>) {
        self.memory.insert(addr, bytes);
    }

    /// Declares `enum enum_name` with these enumerators (also visible by name alone).
    pub fn set_enum(&mut self, enum_name: &str, items: &[(&str, i64)]) {
        let e = self.enum_types.entry(enum_name.to_string()).or_default();
        for (n, v) in items {
            e.insert(n.to_string(), *v);
            self.enumerators.insert(n.to_string(), *v);
        }
    }

    /// Sets one VMCOREINFO line.
    pub fn set_vmcoreinfo(&mut self, key: &str, value: &str) {
        self.vmcoreinfo.insert(key.to_string(), value.to_string());
    }

    fn top(&self, base: u64) -> AResult<Obj> {
        let node = self
            .objects
            .get(&base)
            .cloned()
            .ok_or_else(|| not_dumped(&format!("{base:#x}")))?;
        Ok(Obj {
            base,
            path: vec![],
            node,
        })
    }

    fn descend(&self, obj: &Obj, path: &str) -> Option<Obj> {
        let mut cur = obj.clone();
        for comp in path.split('.').filter(|c| !c.is_empty()) {
            let Node::Struct(members) = &*cur.node else {
                return None;
            };
            let (_, n) = members.iter().find(|(name, _)| name == comp)?;
            let mut p = cur.path.clone();
            p.push(comp.to_string());
            cur = Obj {
                base: cur.base,
                path: p,
                node: Rc::new(n.clone()),
            };
        }
        Some(cur)
    }

    fn offset_of(&self, base: u64, path: &[String]) -> u64 {
        let Some(mut node) = self.objects.get(&base).map(|n| (**n).clone()) else {
            return 0;
        };
        let mut off = 0;
        for comp in path {
            match &node {
                Node::Struct(members) => {
                    let mut o = 0;
                    let mut found = None;
                    for (n, m) in members {
                        if n == comp {
                            found = Some(m.clone());
                            break;
                        }
                        o += m.size();
                    }
                    off += o;
                    match found {
                        Some(m) => node = m,
                        None => return off,
                    }
                }
                Node::Array(v) => {
                    let i: usize = comp.trim_start_matches('#').parse().unwrap_or(0);
                    off += v.iter().take(i).map(Node::size).sum::<u64>();
                    match v.get(i) {
                        Some(m) => node = m.clone(),
                        None => return off,
                    }
                }
                _ => return off,
            }
        }
        off
    }
}

impl KernelAccess for FakeKernel {
    type Obj = Obj;

    fn var(&self, name: &str) -> AResult<Option<Obj>> {
        match self.vars.get(name) {
            Some(b) => self.top(*b).map(Some),
            None => Ok(None),
        }
    }

    fn member(&self, obj: &Obj, path: &str) -> AResult<Option<Obj>> {
        Ok(self.descend(obj, path))
    }

    fn int(&self, obj: &Obj) -> AResult<i64> {
        match &*obj.node {
            Node::Int(v, _) => Ok(*v),
            Node::Ptr(None) => Ok(0),
            Node::Ptr(Some((b, p))) => {
                let path: Vec<String> = p
                    .split('.')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect();
                Ok((*b + self.offset_of(*b, &path)) as i64)
            }
            Node::Bad => Err(not_dumped(&obj.path.join("."))),
            other => Err(AccessError::new("not-an-integer", format!("{other:?}"))),
        }
    }

    fn size(&self, obj: &Obj) -> AResult<u64> {
        Ok(obj.node.size())
    }

    fn deref(&self, obj: &Obj) -> AResult<Option<Obj>> {
        match &*obj.node {
            Node::Ptr(None) => Ok(None),
            Node::Ptr(Some((b, p))) => {
                let top = self.top(*b)?;
                Ok(Some(self.descend(&top, p).ok_or_else(|| {
                    AccessError::new("bad-pointer", format!("no {p} in {b:#x}"))
                })?))
            }
            Node::Bad => Err(not_dumped(&obj.path.join("."))),
            other => Err(AccessError::new("not-a-pointer", format!("{other:?}"))),
        }
    }

    fn index(&self, obj: &Obj, i: u64) -> AResult<Obj> {
        match &*obj.node {
            Node::Array(v) => {
                let n = v
                    .get(i as usize)
                    .ok_or_else(|| AccessError::new("out-of-bounds", format!("index {i}")))?;
                let mut p = obj.path.clone();
                p.push(format!("#{i}"));
                Ok(Obj {
                    base: obj.base,
                    path: p,
                    node: Rc::new(n.clone()),
                })
            }
            Node::Ptr(Some(_)) => {
                let target = self.deref(obj)?.ok_or_else(|| not_dumped("NULL"))?;
                self.index(&target, i)
            }
            Node::Bad => Err(not_dumped("array")),
            other => Err(AccessError::new("not-an-array", format!("{other:?}"))),
        }
    }

    fn array_len(&self, obj: &Obj) -> AResult<Option<u64>> {
        match &*obj.node {
            Node::Array(v) => Ok(Some(v.len() as u64)),
            _ => Ok(None),
        }
    }

    fn address(&self, obj: &Obj) -> u64 {
        obj.base + self.offset_of(obj.base, &obj.path)
    }

    fn cstr(&self, obj: &Obj, max: usize) -> AResult<Vec<u8>> {
        match &*obj.node {
            Node::Str(b) => {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(max);
                Ok(b[..end].to_vec())
            }
            Node::Ptr(_) => match self.deref(obj)? {
                Some(t) => self.cstr(&t, max),
                None => Ok(Vec::new()),
            },
            Node::Bad => Err(not_dumped("string")),
            other => Err(AccessError::new("not-a-string", format!("{other:?}"))),
        }
    }

    fn container_of(&self, obj: &Obj, _type_name: &str, member: &str) -> AResult<Obj> {
        match obj.path.last() {
            Some(last) if last == member => {
                let parent = obj.path[..obj.path.len() - 1].join(".");
                let top = self.top(obj.base)?;
                self.descend(&top, &parent)
                    .ok_or_else(|| AccessError::new("bad-container", parent))
            }
            _ => Err(AccessError::new(
                "bad-container",
                format!("{} is not a {member} member", obj.path.join(".")),
            )),
        }
    }

    fn per_cpu(&self, var: &Obj, cpu: u32) -> AResult<Obj> {
        match &*var.node {
            Node::PerCpu(v) => match v.get(cpu as usize) {
                Some(Some(b)) => self.top(*b),
                Some(None) => Err(not_dumped(&format!("per-CPU area of CPU {cpu}"))),
                None => Err(AccessError::new("bad-cpu", format!("CPU {cpu}"))),
            },
            _ => Err(AccessError::new("not-per-cpu", var.path.join("."))),
        }
    }

    fn list(&self, head: &Obj, _type_name: &str, _member: &str) -> AResult<Vec<Obj>> {
        match &*head.node {
            Node::List(v) => v
                .iter()
                .map(|(b, p)| {
                    let top = self.top(*b)?;
                    self.descend(&top, p)
                        .ok_or_else(|| AccessError::new("bad-list", format!("no {p} in {b:#x}")))
                })
                .collect(),
            Node::Bad => Err(not_dumped("list")),
            other => Err(AccessError::new("not-a-list", format!("{other:?}"))),
        }
    }

    /// `for_each_process_thread` over the graph: the processes on `init_task.tasks`, each one's
    /// threads on `signal->thread_head`, or (before it) the leader and its `thread_group`. A
    /// thread list that cannot be read is reported and its process kept.
    fn tasks(&self) -> AResult<(Vec<Obj>, Vec<AccessError>)> {
        let Some(init) = self.var("init_task")? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let head = self
            .member(&init, "tasks")?
            .ok_or_else(|| AccessError::new("no-such-member", "init_task has no tasks"))?;
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for p in self.list(&head, "struct task_struct", "tasks")? {
            let signal = match self.member(&p, "signal")? {
                Some(s) => self.deref(&s)?,
                None => None,
            };
            let thread_head = match &signal {
                Some(sig) => self.member(sig, "thread_head")?,
                None => None,
            };
            let threads = match (thread_head, self.member(&p, "thread_group")?) {
                (Some(h), _) => self.list(&h, "struct task_struct", "thread_node"),
                (None, Some(g)) => self
                    .list(&g, "struct task_struct", "thread_group")
                    .map(|t| std::iter::once(p.clone()).chain(t).collect()),
                (None, None) => Ok(vec![p.clone()]),
            };
            match threads {
                Ok(t) if t.is_empty() => out.push(p),
                Ok(t) => out.extend(t),
                Err(e) => {
                    problems.push(e);
                    out.push(p);
                }
            }
        }
        Ok((out, problems))
    }

    /// Like the kernel view's salvaging walk: an entry that cannot be read is skipped, the
    /// entries on both sides of it are kept, and the first such error is returned beside them.
    fn list_salvaged(
        &self,
        head: &Obj,
        type_name: &str,
        member: &str,
    ) -> AResult<(Vec<Obj>, Option<AccessError>)> {
        let Node::List(v) = &*head.node else {
            return self.list(head, type_name, member).map(|l| (l, None));
        };
        let mut out = Vec::new();
        let mut broke = None;
        for (b, p) in v {
            let entry = self.top(*b).and_then(|top| {
                self.descend(&top, p)
                    .ok_or_else(|| AccessError::new("bad-list", format!("no {p} in {b:#x}")))
            });
            match entry {
                Ok(e) => out.push(e),
                Err(e) => {
                    broke.get_or_insert(e);
                }
            }
        }
        Ok((out, broke))
    }

    fn cpumask(&self, name: &str) -> AResult<Option<Vec<u32>>> {
        Ok(self.cpumasks.get(name).cloned())
    }

    fn read(&self, addr: u64, len: usize) -> AResult<Vec<u8>> {
        if len > MAX_READ_LEN {
            return Err(AccessError::new("too-large", format!("{len} bytes")));
        }
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let at = addr.wrapping_add(out.len() as u64);
            // the region starting at or before `at` that covers it
            let (start, bytes) = self
                .memory
                .range(..=at)
                .next_back()
                .filter(|(s, b)| at - **s < b.len() as u64)
                .ok_or_else(|| not_dumped(&format!("{at:#x}")))?;
            let from = (at - start) as usize;
            let take = (bytes.len() - from).min(len - out.len());
            out.extend_from_slice(&bytes[from..from + take]);
        }
        Ok(out)
    }

    fn vmcoreinfo(&self, key: &str) -> Option<String> {
        self.vmcoreinfo.get(key).cloned()
    }

    fn symbol(&self, name: &str) -> AResult<Option<u64>> {
        Ok(self
            .symbols
            .get(name)
            .or_else(|| self.vars.get(name))
            .copied())
    }

    fn symbolize(&self, addr: u64) -> Option<String> {
        let (name, start) = self
            .symbols
            .iter()
            .filter(|(_, a)| **a <= addr)
            .max_by_key(|(_, a)| **a)?;
        Some(format!("{name}+{:#x}", addr - start))
    }

    fn type_size(&self, type_name: &str) -> AResult<Option<u64>> {
        Ok(self.type_sizes.get(type_name).copied())
    }

    fn offset_of(&self, type_name: &str, path: &str) -> AResult<Option<u64>> {
        Ok(self
            .offsets
            .get(&(type_name.to_string(), path.to_string()))
            .copied())
    }

    fn page_size(&self) -> u64 {
        self.page_size.unwrap_or(4096)
    }

    fn endian(&self) -> Endian {
        self.endian.unwrap_or(Endian::Little)
    }

    fn enumerator(&self, name: &str) -> AResult<Option<i64>> {
        Ok(self.enumerators.get(name).copied())
    }

    fn enumerator_in(&self, enum_name: &str, name: &str) -> AResult<Option<i64>> {
        Ok(self
            .enum_types
            .get(enum_name)
            .and_then(|e| e.get(name))
            .copied())
    }

    fn cpu_contexts(&self) -> AResult<Vec<CpuContext>> {
        self.cpu_contexts
            .clone()
            .ok_or_else(|| AccessError::new("unsupported", "no backtraces for this kernel"))
    }

    fn stack_trace(&self, task: &Obj) -> AResult<StackTrace> {
        self.traces
            .get(&task.base)
            .cloned()
            .unwrap_or_else(|| Err(AccessError::new("unsupported", "no trace for this task")))
    }
}
