//! Types for global variables when there is no DWARF: the dump's own BTF plus a maintained table
//! of well-known globals.
//!
//! A kernel's BTF (`.BTF`, read from the dump's memory by [`BtfTypes::from_memory`]) describes
//! every type but, before pahole's `global_var` encoding, only the per-CPU variables (`VAR`
//! records in the `.data..percpu` `DATASEC`): `runqueues` is typed by BTF, `init_task` is not. The
//! other globals the plugins read are typed here from [`WELL_KNOWN`] (and the per-CPU ones, for a
//! BTF without `VAR` records, from [`WELL_KNOWN_PERCPU`]), one C type per variable
//! written as the kernel declares it (include/linux/*.h, kernel/*.c), with alternatives for the
//! versions that changed it. Each entry is resolved against the dump's BTF (a type the kernel
//! does not have makes the alternative fail) and then checked against the dump's symbol table
//! (kallsyms) before it is used:
//! - the symbol must exist and be data (nm `d`/`D`/`b`/`B`/`r`/`R`/…), not code or a constant;
//! - the type must fit before the next symbol: kallsyms has no sizes, but an object ends at the
//!   latest where the next symbol starts (objects do not overlap).
//!
//! An entry that fails either check types nothing: the variable is then unknown, exactly as if
//! the debuginfo lacked it, and the plugin that wanted it degrades as it does for an old kernel.
//!
//! Array bounds: a count is written as a number, an enumerator of the dump's BTF
//! (`NR_VM_ZONE_STAT_ITEMS`), `[]` for "up to the next symbol" (the arrays sized by a `#define`:
//! `x86_cap_flags[NCAPINTS * 32]`), `[~]` for "up to the next symbol, less the trailing
//! all-zero elements" (the linker's padding, for arrays whose elements are never all zero:
//! `taint_flags[]`, `task_state_array[]`), and `[?]` for an unknown bound (`linux_banner[]`).
//! An anonymous struct (`tk_core` before 6.13) is written `{member: type; …}` and laid out by
//! the C rules (each member at the next multiple of its alignment).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::debuginfo::btf::BtfTypes;
use crate::debuginfo::symbols::{SymKind, SymbolTable};
use crate::debuginfo::{
    DebugInfoError, Member, Type, TypeId, TypeKind, TypeSource, strip_typedefs,
};

/// Types made here (arrays of a counted length, pointers, anonymous structs) carry this bit in
/// their id; BTF ids are below 2^32.
const SYNTH_TAG: u64 = 1 << 62;
/// The most elements an array bounded by the next symbol is given.
const MAX_GUESSED_COUNT: u64 = 1 << 20;
/// Pointer size of every supported architecture (x86_64, aarch64, s390x).
const POINTER_SIZE: u64 = 8;

/// The well-known globals and their C types (alternatives separated by `|`, first that resolves
/// wins), base types spelled as BTF names them (`long unsigned int`).
pub const WELL_KNOWN: &[(&str, &str)] = &[
    // kernel_info, sys
    ("init_uts_ns", "struct uts_namespace"),
    ("linux_banner", "char[?]"),
    ("linux_proc_banner", "char[?]"),
    ("saved_command_line", "char *"),
    ("tainted_mask", "long unsigned int"),
    ("taint_flags", "struct taint_flag[~]"),
    ("panic_cpu", "atomic_t"),
    ("panic_on_oops", "int"),
    ("crash_kexec_post_notifiers", "bool"),
    ("jiffies", "long unsigned int"),
    ("jiffies_64", "u64"),
    ("tick_nsec", "long unsigned int"),
    ("loops_per_jiffy", "long unsigned int"),
    (
        "tk_core",
        "struct tk_data | {seq: seqcount_raw_spinlock_t; timekeeper: struct timekeeper} \
         | {seq: seqcount_t; timekeeper: struct timekeeper}",
    ),
    ("avenrun", "long unsigned int[3]"),
    ("nr_threads", "int"),
    ("nr_cpu_ids", "unsigned int"),
    ("__per_cpu_offset", "long unsigned int[]"),
    ("__cpu_possible_mask", "struct cpumask"),
    ("__cpu_online_mask", "struct cpumask"),
    ("__cpu_present_mask", "struct cpumask"),
    ("__cpu_active_mask", "struct cpumask"),
    ("cpu_khz", "unsigned int"),
    ("cpufreq_driver", "struct cpufreq_driver *"),
    ("boot_cpu_data", "struct cpuinfo_x86"),
    ("x86_cap_flags", "char *[]"),
    ("x86_bug_flags", "char *[]"),
    ("x86_power_flags", "char *[]"),
    ("elf_hwcap", "long unsigned int[]"),
    ("hwcap_str", "char *[]"),
    ("__pgtable_l5_enabled", "unsigned int"),
    ("blockdev_superblock", "struct super_block *"),
    ("all_bdevs", "struct list_head"),
    ("init_pid_ns", "struct pid_namespace"),
    ("crash_notes", "note_buf_t *"),
    ("lowcore_ptr", "struct lowcore *[]"),
    // tasks, sched_debug
    ("init_task", "struct task_struct"),
    ("task_state_array", "char *[~]"),
    ("task_groups", "struct list_head"),
    ("__sched_clock_stable", "struct static_key_false"),
    ("sched_schedstats", "struct static_key_false"),
    ("sysctl_sched_features", "unsigned int"),
    ("sysctl_sched_latency", "unsigned int"),
    ("sysctl_sched_min_granularity", "unsigned int"),
    ("sysctl_sched_idle_min_granularity", "unsigned int"),
    ("sysctl_sched_wakeup_granularity", "unsigned int"),
    ("sysctl_sched_child_runs_first", "unsigned int"),
    ("sysctl_sched_base_slice", "unsigned int"),
    (
        "sysctl_sched_tunable_scaling",
        "enum sched_tunable_scaling | unsigned int",
    ),
    // modules
    ("modules", "struct list_head"),
    // meminfo
    ("_totalram_pages", "atomic_long_t"),
    ("totalram_pages", "long unsigned int"),
    ("totalreserve_pages", "long unsigned int"),
    ("totalcma_pages", "long unsigned int"),
    ("total_swap_pages", "long int"),
    ("nr_swap_pages", "atomic_long_t"),
    ("nr_swapfiles", "unsigned int"),
    ("swap_info", "struct swap_info_struct *[]"),
    ("vm_zone_stat", "atomic_long_t[NR_VM_ZONE_STAT_ITEMS]"),
    ("vm_node_stat", "atomic_long_t[NR_VM_NODE_STAT_ITEMS]"),
    ("vm_stat", "atomic_long_t[NR_VM_ZONE_STAT_ITEMS]"),
    ("vm_numa_event", "atomic_long_t[NR_VM_NUMA_EVENT_ITEMS]"),
    ("vm_committed_as", "struct percpu_counter"),
    ("sysctl_overcommit_kbytes", "long unsigned int"),
    ("sysctl_overcommit_ratio", "int"),
    ("nr_vmalloc_pages", "atomic_long_t"),
    ("pcpu_nr_populated", "long unsigned int"),
    ("pcpu_nr_units", "int"),
    ("num_poisoned_pages", "atomic_long_t"),
    ("node_data", "struct pglist_data *[]"),
    ("contig_page_data", "struct pglist_data"),
    ("hstates", "struct hstate[]"),
    ("hugetlb_max_hstate", "int"),
    ("default_hstate_idx", "unsigned int"),
    ("direct_gbpages", "int"),
    (
        "direct_pages_count",
        "long unsigned int[PG_LEVEL_NUM] | atomic_long_t[PG_DIRECT_MAP_MAX]",
    ),
    ("zswap_pools", "struct list_head"),
    ("zswap_stored_pages", "atomic_long_t | atomic_t"),
    ("vmalloc_base", "long unsigned int"),
    ("VMALLOC_START", "long unsigned int"),
    ("VMALLOC_END", "long unsigned int"),
    ("zswap_pool_total_size", "u64"),
    ("early_memtest_done", "bool"),
];

/// Per-CPU variables, for a BTF without `VAR` records (5.10's pahole encodes none). x86_64's
/// per-CPU section is linked at 0 and, before 6.x, kallsyms lists its symbols as absolute
/// (`A`): those are accepted here too.
pub const WELL_KNOWN_PERCPU: &[(&str, &str)] = &[
    ("runqueues", "struct rq"),
    ("pcpu_hot", "struct pcpu_hot"),
    ("current_task", "struct task_struct *"),
    ("cpu_number", "int"),
    ("this_cpu_off", "long unsigned int"),
    ("numa_node", "int"),
    ("cpu_info", "struct cpuinfo_x86"),
    ("cpu_data", "struct cpuinfo_arm64"),
    ("cpu_core_map", "cpumask_var_t"),
    ("cpu_sibling_map", "cpumask_var_t"),
    ("vm_event_states", "struct vm_event_state"),
    ("hardirq_stack_ptr", "struct irq_stack * | void *"),
    ("irq_stack_backing_store", "struct irq_stack"),
    ("cea_exception_stacks", "struct cea_exception_stacks *"),
    ("_cea_offset", "unsigned int"),
    ("irq_stack_ptr", "long unsigned int *"),
    ("overflow_stack", "long unsigned int[]"),
];

/// What typing a well-known global gave, for the log and the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GlobalsReport {
    /// Entries typed and checked.
    pub typed: usize,
    /// Entries whose symbol the dump's table lacks (another version or configuration).
    pub absent: usize,
    /// Entries rejected, with the reason.
    pub rejected: Vec<String>,
}

/// A [`TypeSource`] over the dump's BTF that also types the well-known globals.
pub struct DumpTypes {
    btf: BtfTypes,
    synth: Mutex<Vec<Arc<Type>>>,
    globals: HashMap<&'static str, TypeId>,
    report: GlobalsReport,
}

use crate::debuginfo::kallsyms::ReadFn;

impl DumpTypes {
    /// Resolves and checks every [`WELL_KNOWN`] and [`WELL_KNOWN_PERCPU`] entry now (a few hundred BTF lookups, and a
    /// read of the two arrays whose padding is trimmed); `read` is not kept.
    pub fn new(btf: BtfTypes, symbols: &SymbolTable, read: ReadFn<'_>) -> DumpTypes {
        let mut me = DumpTypes {
            btf,
            synth: Mutex::new(Vec::new()),
            globals: HashMap::new(),
            report: GlobalsReport::default(),
        };
        let entries = WELL_KNOWN.iter().map(|e| (e, false));
        for (&(name, spec), percpu) in entries.chain(WELL_KNOWN_PERCPU.iter().map(|e| (e, true))) {
            let Some(sym) = symbols.lookup(name) else {
                me.report.absent += 1;
                continue;
            };
            // the end of the object at the latest: the next symbol
            let room = symbols
                .next_address_after(sym.address)
                .map(|n| n.0 - sym.address.0);
            let typed = if sym.kind != SymKind::Data && !(percpu && sym.kind == SymKind::Other) {
                Err(format!("{name}: the symbol is not data ({:?})", sym.kind))
            } else {
                me.resolve_spec(spec, room, |len| read(sym.address.0, len))
                    .and_then(|id| me.check_fits(name, id, room))
            };
            match typed {
                Ok(id) => {
                    me.globals.insert(name, id);
                    me.report.typed += 1;
                }
                Err(why) => {
                    tracing::debug!("not typing {name}: {why}");
                    me.report.rejected.push(why);
                }
            }
        }
        me
    }

    pub fn report(&self) -> &GlobalsReport {
        &self.report
    }

    /// The BTF itself.
    pub fn btf(&self) -> &BtfTypes {
        &self.btf
    }

    fn check_fits(&self, name: &str, id: TypeId, room: Option<u64>) -> Result<TypeId, String> {
        let size = self.get(id).map_err(|e| e.to_string())?.size;
        match (size, room) {
            (Some(size), Some(room)) if size > room => Err(format!(
                "{name}: its type is {size} bytes but the next symbol is {room} bytes further"
            )),
            _ => Ok(id),
        }
    }

    fn add(&self, t: Type) -> TypeId {
        let mut synth = self.synth.lock().unwrap_or_else(|p| p.into_inner());
        synth.push(Arc::new(t));
        TypeId(SYNTH_TAG | (synth.len() as u64 - 1))
    }

    /// The first alternative of `spec` that resolves.
    fn resolve_spec(
        &self,
        spec: &str,
        room: Option<u64>,
        read: impl Fn(usize) -> Result<Vec<u8>, String>,
    ) -> Result<TypeId, String> {
        let mut why = Vec::new();
        for alt in spec.split('|').map(str::trim) {
            match self.resolve_one(alt, room, &read) {
                Ok(id) => return Ok(id),
                Err(e) => why.push(e),
            }
        }
        Err(why.join("; "))
    }

    fn resolve_one(
        &self,
        spec: &str,
        room: Option<u64>,
        read: &impl Fn(usize) -> Result<Vec<u8>, String>,
    ) -> Result<TypeId, String> {
        if let Some(body) = spec.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            return self.anonymous_struct(body);
        }
        let (base, bound) = match spec.find('[') {
            Some(i) => {
                let b = spec[i + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| format!("bad array bound in {spec:?}"))?;
                (spec[..i].trim(), Some(b.trim()))
            }
            None => (spec, None),
        };
        let element = self.pointer_chain(base)?;
        let Some(bound) = bound else {
            return Ok(element);
        };
        let elem_size = self
            .get(element)
            .map_err(|e| e.to_string())?
            .size
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("{base} has no size"))?;
        let by_room = || {
            room.map(|r| (r / elem_size).min(MAX_GUESSED_COUNT))
                .ok_or_else(|| format!("no symbol after it to bound {spec:?}"))
        };
        let count = match bound {
            "?" => None,
            "" => Some(by_room()?),
            "~" => {
                let n = by_room()?;
                let bytes = read((n * elem_size) as usize)?;
                let used = bytes
                    .chunks(elem_size as usize)
                    .rposition(|e| e.iter().any(|&b| b != 0))
                    .map_or(0, |i| i as u64 + 1);
                Some(used)
            }
            b => Some(match b.parse::<u64>() {
                Ok(n) => n,
                Err(_) => self
                    .btf
                    .enumerator(b)
                    .map_err(|e| e.to_string())?
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| format!("no enumerator {b} in the dump's BTF"))?,
            }),
        };
        Ok(self.add(Type {
            name: None,
            size: count.map(|c| c * elem_size),
            kind: TypeKind::Array { element, count },
        }))
    }

    /// `struct foo **`: a named type and its pointers.
    fn pointer_chain(&self, spec: &str) -> Result<TypeId, String> {
        let stars = spec
            .chars()
            .rev()
            .take_while(|&c| c == '*' || c == ' ')
            .filter(|&c| c == '*')
            .count();
        let name = spec.trim_end_matches(['*', ' ']).trim();
        let mut id = self
            .btf
            .find_type(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no type {name:?} in the dump's BTF"))?;
        for _ in 0..stars {
            id = self.add(Type {
                name: None,
                size: Some(POINTER_SIZE),
                kind: TypeKind::Pointer { target: Some(id) },
            });
        }
        Ok(id)
    }

    /// `member: type; …`, laid out as C lays out a struct.
    fn anonymous_struct(&self, body: &str) -> Result<TypeId, String> {
        let mut members = Vec::new();
        let (mut offset, mut align) = (0u64, 1u64);
        for field in body.split(';').map(str::trim).filter(|f| !f.is_empty()) {
            let (name, ty) = field
                .split_once(':')
                .ok_or_else(|| format!("bad member {field:?}"))?;
            let id = self.pointer_chain(ty.trim())?;
            let size = self
                .get(id)
                .map_err(|e| e.to_string())?
                .size
                .ok_or_else(|| format!("{ty} has no size"))?;
            let a = self.alignment(id, 0).map_err(|e| e.to_string())?;
            offset = offset.div_ceil(a) * a;
            members.push(Member {
                name: Some(name.trim().to_string()),
                ty: id,
                bit_offset: offset * 8,
                bit_size: None,
            });
            offset += size;
            align = align.max(a);
        }
        Ok(self.add(Type {
            name: None,
            size: Some(offset.div_ceil(align) * align),
            kind: TypeKind::Struct {
                members,
                declaration: false,
            },
        }))
    }

    /// A type's C alignment: a scalar's size, an aggregate's largest member alignment.
    fn alignment(&self, id: TypeId, depth: u32) -> Result<u64, DebugInfoError> {
        let Some((_, t)) = strip_typedefs(self, id)? else {
            return Ok(1);
        };
        if depth > 32 {
            return Ok(1);
        }
        Ok(match &t.kind {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
                let mut a = 1;
                for m in members {
                    a = a.max(self.alignment(m.ty, depth + 1)?);
                }
                a
            }
            TypeKind::Array { element, .. } => self.alignment(*element, depth + 1)?,
            _ => t.size.unwrap_or(1).clamp(1, 16),
        })
    }
}

impl TypeSource for DumpTypes {
    fn find_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        self.btf.find_type(name)
    }

    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        if id.0 & SYNTH_TAG == 0 {
            return self.btf.get(id);
        }
        let synth = self.synth.lock().unwrap_or_else(|p| p.into_inner());
        usize::try_from(id.0 & !SYNTH_TAG)
            .ok()
            .and_then(|i| synth.get(i).cloned())
            .ok_or(DebugInfoError::BadTypeId(id))
    }

    fn variable_type(&self, name: &str) -> Result<Option<TypeId>, DebugInfoError> {
        if let Some(id) = self.btf.variable_type(name)? {
            return Ok(Some(id));
        }
        Ok(self.globals.get(name).copied())
    }

    fn enumerator(&self, name: &str) -> Result<Option<i64>, DebugInfoError> {
        self.btf.enumerator(name)
    }
}

/// A [`TypeSource`] that knows no type: the kernel view over a dump with neither a vmlinux nor
/// BTF, where only what VMCOREINFO describes (the log, the utsname) can be read.
pub struct NoTypes;

impl TypeSource for NoTypes {
    fn find_type(&self, _: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(None)
    }
    fn get(&self, id: TypeId) -> Result<Arc<Type>, DebugInfoError> {
        Err(DebugInfoError::BadTypeId(id))
    }
    fn variable_type(&self, _: &str) -> Result<Option<TypeId>, DebugInfoError> {
        Ok(None)
    }
    fn enumerator(&self, _: &str) -> Result<Option<i64>, DebugInfoError> {
        Ok(None)
    }
}
