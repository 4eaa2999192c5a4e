//! Collects [`SchedDebug`] records from the kernel, following `kernel/sched/debug.c`.
//!
//! Which lines exist is decided by probing the dump's types, never by parsing the version string:
//! a field is printed when the struct member it prints exists (`rq.nr_load_updates` before 5.8,
//! `cfs_rq.exec_clock` before 6.8, `rt_rq.rt_throttled` in 6.12 only with RT group scheduling, …).
//! The layout switches that no single member names are derived from the closest member that moved
//! with them; each one says which below.
//!
//! Values the live file computes from clocks at read time (`ktime`, `sched_clk`, `cpu_clk`) are
//! taken from the dump and listed in [`SchedDebug::notes`].

use super::record::*;
use crate::kernel::task_state::{TaskStateTable, task_state_char};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};

/// What the collection produced, with the problems met on the way (each one makes the plugin
/// `partial`).
pub struct Collected {
    pub sched: SchedDebug,
    pub errors: Vec<AccessError>,
}

/// Collects everything. Never fails as a whole: an unreadable part is replaced by what the
/// kernel's layout allows (a placeholder CPU block, a missing line) and reported in `errors`.
pub fn collect<K: KernelAccess>(k: &K) -> Collected {
    let mut c = Ctx {
        k,
        errors: Vec::new(),
        notes: Vec::new(),
    };
    let mut sched = c.run();
    sched.notes = c.notes;
    Collected {
        sched,
        errors: c.errors,
    }
}

struct Ctx<'k, K: KernelAccess> {
    k: &'k K,
    errors: Vec<AccessError>,
    notes: Vec<String>,
}

/// The static key behind `schedstat_enabled()` / `sched_clock_stable()`: enabled when its
/// `enabled.counter` is positive (`static_key_count() > 0`).
fn static_key_enabled<K: KernelAccess>(k: &K, name: &str) -> AResult<Option<bool>> {
    let Some(v) = k.var(name)? else {
        return Ok(None);
    };
    let c = k.int_any(&v, &["key.enabled.counter", "enabled.counter"])?;
    Ok(c.map(|c| c > 0))
}

impl<K: KernelAccess> Ctx<'_, K> {
    fn note_err(&mut self, e: AccessError) {
        self.errors.push(e);
    }

    fn run(&mut self) -> SchedDebug {
        let header = self.header();
        let schedstats = match static_key_enabled(self.k, "sched_schedstats") {
            Ok(v) => v.unwrap_or(false),
            Err(e) => {
                self.note_err(e);
                false
            }
        };
        let cpus = self.cpu_list();
        let khz = match self.k.var_int("cpu_khz") {
            Ok(v) => v.map(|v| v as u32),
            Err(e) => {
                self.note_err(e);
                Some(0)
            }
        };
        let rq_var = match self.k.var("runqueues") {
            Ok(Some(v)) => Some(v),
            Ok(None) => match self.k.var("rq") {
                Ok(v) => v,
                Err(e) => {
                    self.note_err(e);
                    None
                }
            },
            Err(e) => {
                self.note_err(e);
                None
            }
        };
        if rq_var.is_none() {
            self.note_err(AccessError::new(
                "no-such-symbol",
                "neither `runqueues` nor `rq` is described by the debuginfo: no per-CPU blocks",
            ));
        }
        // CPU 0's root cfs_rq min_vruntime: the reference of every `spread0` line.
        let rq0_min_vruntime = rq_var.as_ref().and_then(|v| {
            let rq0 = self.k.per_cpu(v, 0).ok()?;
            self.k.int_at(&rq0, "cfs.min_vruntime").ok().flatten()
        });
        let states = TaskStateTable::read(self.k);
        let tasks = match self.all_tasks() {
            Ok(t) => t,
            Err(e) => {
                self.note_err(e);
                Vec::new()
            }
        };
        let mut blocks = Vec::new();
        for cpu in cpus {
            let body = match &rq_var {
                None => CpuBody::Missing {
                    reason: "no `runqueues` variable in the debuginfo".into(),
                },
                Some(v) => {
                    match self.rq_block(v, cpu, schedstats, rq0_min_vruntime, &tasks, &states) {
                        Ok(b) => CpuBody::Present(Box::new(b)),
                        Err(e) => {
                            let reason = format!("runqueue of CPU {cpu} unreadable: {e}");
                            self.note_err(AccessError::new(e.code, reason.clone()));
                            CpuBody::Missing { reason }
                        }
                    }
                }
            };
            blocks.push(CpuBlock { cpu, khz, body });
        }
        SchedDebug {
            header,
            cpus: blocks,
            notes: Vec::new(),
        }
    }

    /// `for_each_online_cpu` as it was before the crash, falling back to the present, then
    /// possible mask, then `0..nr_cpu_ids`, then CPU 0 alone, so that a damaged mask still
    /// yields something.
    ///
    /// A panic stops the other CPUs and each one clears itself from `cpu_online_mask`
    /// (`stop_this_cpu()` on x86, `ipi_cpu_stop()` on arm64) but not from `cpu_active_mask`,
    /// which hotplug clears before the online bit. So the CPUs online while the system ran are
    /// the online mask joined with the active mask.
    fn cpu_list(&mut self) -> Vec<u32> {
        match self.k.cpumask("__cpu_online_mask") {
            Ok(Some(online)) if !online.is_empty() => {
                let mut cpus = online.clone();
                match self.k.cpumask("__cpu_active_mask") {
                    Ok(Some(active)) => {
                        for c in active {
                            if !cpus.contains(&c) {
                                cpus.push(c);
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => self.note_err(e),
                }
                cpus.sort_unstable();
                if cpus.len() > online.len() {
                    self.notes.push(format!(
                        "CPUs {:?} were stopped by the panic (cleared from cpu_online_mask); listed from cpu_active_mask",
                        cpus.iter().filter(|c| !online.contains(c)).collect::<Vec<_>>()
                    ));
                }
                return cpus;
            }
            Ok(_) => {}
            Err(e) => self.note_err(e),
        }
        for name in [
            "cpu_online_bits",
            "__cpu_present_mask",
            "__cpu_possible_mask",
        ] {
            match self.k.cpumask(name) {
                Ok(Some(v)) if !v.is_empty() => {
                    if !name.contains("online") {
                        self.notes.push(format!(
                            "CPUs listed from {name}: the online mask was unusable"
                        ));
                    }
                    return v;
                }
                Ok(_) => {}
                Err(e) => self.note_err(e),
            }
        }
        match self.k.var_int("nr_cpu_ids") {
            Ok(Some(n)) if n > 0 && n <= 65536 => {
                self.notes
                    .push("CPUs listed from nr_cpu_ids: no cpumask was usable".into());
                return (0..n as u32).collect();
            }
            Ok(_) => {}
            Err(e) => self.note_err(e),
        }
        self.notes
            .push("only CPU 0 listed: neither cpumasks nor nr_cpu_ids were usable".into());
        vec![0]
    }

    fn header(&mut self) -> Header {
        let mut h = Header::default();
        match self.k.var("init_uts_ns") {
            Ok(Some(uts)) => {
                for (path, dst) in [
                    ("name.release", &mut h.release),
                    ("name.version", &mut h.version),
                ] {
                    match self.k.member(&uts, path) {
                        Ok(Some(m)) => match self.k.cstr(&m, 65) {
                            Ok(s) => *dst = s,
                            Err(e) => self.errors.push(e),
                        },
                        Ok(None) => {}
                        Err(e) => self.errors.push(e),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => self.note_err(e),
        }
        let clocks = self.clock_values();
        h.clocks.push(Field::new("ktime", Fmt::Ns, clocks.ktime));
        h.clocks
            .push(Field::new("sched_clk", Fmt::Ns, clocks.sched_clk));
        h.clocks
            .push(Field::new("cpu_clk", Fmt::Ns, clocks.sched_clk));
        match self.k.var_int("jiffies").and_then(|j| match j {
            Some(j) => Ok(Some(j)),
            None => self.k.var_int("jiffies_64"),
        }) {
            Ok(Some(j)) => h.clocks.push(Field::new("jiffies", Fmt::Ld, j)),
            Ok(None) => {}
            Err(e) => self.note_err(e),
        }
        // CONFIG_HAVE_UNSTABLE_SCHED_CLOCK: the static key exists only then.
        match static_key_enabled(self.k, "__sched_clock_stable") {
            Ok(Some(s)) => h
                .clocks
                .push(Field::new("sched_clock_stable()", Fmt::Ld, i64::from(s))),
            Ok(None) => {}
            Err(e) => self.note_err(e),
        }
        // The union of every version's list, in print order; each is printed when it exists.
        // 6.6 (EEVDF) replaced latency/min_granularity/wakeup_granularity with base_slice.
        for (name, fmt) in [
            ("sysctl_sched_latency", Fmt::Ns),
            ("sysctl_sched_min_granularity", Fmt::Ns),
            ("sysctl_sched_idle_min_granularity", Fmt::Ns),
            ("sysctl_sched_wakeup_granularity", Fmt::Ns),
            ("sysctl_sched_base_slice", Fmt::Ns),
            ("sysctl_sched_child_runs_first", Fmt::Ld),
            ("sysctl_sched_features", Fmt::Ld),
        ] {
            match self.k.var_int(name) {
                Ok(Some(v)) => h.sysctls.push(Field::new(name, fmt, v)),
                Ok(None) => {}
                Err(e) => self.note_err(e),
            }
        }
        match self.k.var_int("sysctl_sched_tunable_scaling") {
            Ok(v) => h.tunable_scaling = v,
            Err(e) => self.note_err(e),
        }
        h
    }

    /// The clocks of the header. The live file reads them at `cat` time; a dump has stopped
    /// clocks, so: `ktime` is the monotonic clock of the timekeeper's last update
    /// (`tk_core.timekeeper.tkr_mono`), `sched_clk` and `cpu_clk` the most recent runqueue clock.
    fn clock_values(&mut self) -> ClockValues {
        let mut out = ClockValues::default();
        match self.ktime() {
            Ok(Some(t)) => {
                out.ktime = t;
                self.notes.push(
                    "ktime: monotonic time of the timekeeper's last update (tk_core.timekeeper.tkr_mono), within one tick of the crash".into(),
                );
            }
            Ok(None) => self
                .notes
                .push("ktime: no timekeeper in the debuginfo, printed as 0".into()),
            Err(e) => self.note_err(e),
        }
        match self.latest_rq_clock() {
            Ok(Some(t)) => {
                out.sched_clk = t;
                self.notes.push(
                    "sched_clk, cpu_clk: the most recent per-CPU runqueue clock (rq->clock), not sched_clock() at read time".into(),
                );
            }
            Ok(None) => {}
            Err(e) => self.note_err(e),
        }
        out
    }

    fn ktime(&self) -> AResult<Option<i64>> {
        let Some(tk) = self.k.var("tk_core")? else {
            return Ok(None);
        };
        let Some(base) = self.k.int_at(&tk, "timekeeper.tkr_mono.base")? else {
            return Ok(None);
        };
        let nsec = self
            .k
            .int_at(&tk, "timekeeper.tkr_mono.xtime_nsec")?
            .unwrap_or(0);
        let shift = self
            .k
            .int_at(&tk, "timekeeper.tkr_mono.shift")?
            .unwrap_or(0);
        let frac = if (0..64).contains(&shift) {
            ((nsec as u64) >> shift) as i64
        } else {
            0
        };
        Ok(Some(base.wrapping_add(frac)))
    }

    fn latest_rq_clock(&self) -> AResult<Option<i64>> {
        let Some(v) = self.k.var("runqueues")? else {
            return Ok(None);
        };
        let mut best: Option<i64> = None;
        let mut cpus = self.k.cpumask("__cpu_online_mask")?.unwrap_or_default();
        cpus.extend(self.k.cpumask("__cpu_active_mask")?.unwrap_or_default());
        for cpu in cpus {
            if let Ok(rq) = self.k.per_cpu(&v, cpu)
                && let Ok(Some(c)) = self.k.int_at(&rq, "clock")
            {
                best = Some(best.map_or(c, |b| b.max(c)));
            }
        }
        Ok(best)
    }

    /// `for_each_process_thread`, from the kernel view's task enumeration, which merges every
    /// structure that reaches tasks so that a missing page loses only the task on it. The tasks
    /// known to exist but unreadable, and the walk's problems, are recorded.
    fn all_tasks(&mut self) -> AResult<Vec<K::Obj>> {
        let (tasks, problems) = self.k.tasks()?;
        for e in problems {
            self.note_err(e);
        }
        Ok(tasks)
    }

    fn rq_block(
        &mut self,
        rq_var: &K::Obj,
        cpu: u32,
        schedstats: bool,
        rq0_min_vruntime: Option<i64>,
        tasks: &[K::Obj],
        states: &TaskStateTable,
    ) -> AResult<RqBlock> {
        let k = self.k;
        let rq = k.per_cpu(rq_var, cpu)?;
        let mut b = RqBlock::default();
        // `P(x)` prints by size; the value is already extended by its type's signedness, which
        // is what `(long)(rq->x)` (6.1) does. 6.12 casts 4-byte fields to `int`: identical below
        // 2^31, the only range these counters reach.
        let p = |name: &str| -> AResult<Option<Field>> {
            Ok(k.int_at(&rq, name)?.map(|v| Field::new(name, Fmt::Ld, v)))
        };
        let pn = |name: &str| -> AResult<Option<Field>> {
            Ok(k.int_at(&rq, name)?.map(|v| Field::new(name, Fmt::Ns, v)))
        };
        // The first read decides whether this CPU's runqueue is in the dump at all.
        let nr_running = k
            .int_at(&rq, "nr_running")?
            .ok_or_else(|| AccessError::new("no-such-member", "struct rq has no nr_running"))?;
        b.rq.push(Field::new("nr_running", Fmt::Ld, nr_running));
        // Before 5.8 (rq->load removed with the runnable load average) `load` came next.
        if let Some(w) = k.int_at(&rq, "load.weight")? {
            b.rq.push(Field::new("load", Fmt::Lu, w));
        }
        b.rq.extend(p("nr_switches")?);
        b.rq.extend(p("nr_load_updates")?);
        b.rq.extend(p("nr_uninterruptible")?);
        b.rq.extend(pn("next_balance")?);
        let curr = k.deref_at(&rq, "curr")?;
        let curr_addr = curr.as_ref().map(|c| k.address(c));
        let curr_pid = match &curr {
            Some(c) => k.int_at(c, "pid")?.unwrap_or(0),
            None => 0,
        };
        b.rq.push(Field::new("curr->pid", Fmt::Ld, curr_pid));
        b.rq.extend(pn("clock")?);
        b.rq.extend(pn("clock_task")?);
        // rq->cpu_load[] until 5.0.
        if let Some(arr) = k.member(&rq, "cpu_load")? {
            let n = k.array_len(&arr)?.unwrap_or(0).min(5);
            for i in 0..n {
                let v = k.int(&k.index(&arr, i)?)?;
                b.rq.push(Field::new(format!("cpu_load[{i}]"), Fmt::Ld, v));
            }
        }
        b.rq.extend(p("avg_idle")?);
        b.rq.extend(p("max_idle_balance_cost")?);
        if schedstats {
            for n in [
                "yld_count",
                "sched_count",
                "sched_goidle",
                "ttwu_count",
                "ttwu_local",
            ] {
                if let Some(v) = k.int_at(&rq, n)? {
                    b.rq.push(Field::new(n, Fmt::D, v));
                }
            }
        }

        // cfs_rq sections: the leaf list with group scheduling, else the root cfs_rq alone.
        let cfs_rqs: Vec<(K::Obj, bool)> = match k.member(&rq, "leaf_cfs_rq_list")? {
            Some(head) => k
                .list(&head, "struct cfs_rq", "leaf_cfs_rq_list")?
                .into_iter()
                .map(|c| (c, true))
                .collect(),
            None => match k.member(&rq, "cfs")? {
                Some(c) => vec![(c, false)],
                None => vec![],
            },
        };
        for (cfs, grouped) in cfs_rqs {
            match self.cfs_section(&cfs, grouped, cpu, schedstats, rq0_min_vruntime) {
                Ok(s) => b.cfs.push(s),
                Err(e) => {
                    b.problems.push(format!("cfs_rq skipped: {e}"));
                    self.note_err(e);
                }
            }
        }
        match self.rt_sections(&rq, cpu) {
            Ok(s) => b.rt = s,
            Err(e) => {
                b.problems.push(format!("rt_rq skipped: {e}"));
                self.note_err(e);
            }
        }
        match self.dl_section(&rq) {
            Ok(s) => b.dl = s.into_iter().collect(),
            Err(e) => {
                b.problems.push(format!("dl_rq skipped: {e}"));
                self.note_err(e);
            }
        }
        b.tasks = self.task_table(&rq, cpu, curr_addr, schedstats, tasks, states);
        Ok(b)
    }

    fn cfs_section(
        &mut self,
        cfs: &K::Obj,
        grouped: bool,
        cpu: u32,
        schedstats: bool,
        rq0_min_vruntime: Option<i64>,
    ) -> AResult<Section> {
        let k = self.k;
        let tg = if grouped {
            k.deref_at(cfs, "tg")?
        } else {
            None
        };
        let path = if grouped {
            Some(match &tg {
                Some(tg) => task_group_path(k, tg)?,
                None => b"/".to_vec(),
            })
        } else {
            None
        };
        let mut f = Vec::new();
        if let Some(v) = k.int_at(cfs, "exec_clock")? {
            f.push(Field::new("exec_clock", Fmt::Ns, v));
        }
        let first = leftmost_entity(k, cfs)?;
        let last = rightmost_entity(k, cfs)?;
        let vr = |se: &Option<K::Obj>, m: &str| -> AResult<i64> {
            match se {
                Some(se) => Ok(k.int_at(se, m)?.unwrap_or(-1)),
                None => Ok(-1),
            }
        };
        if k.member(cfs, "avg_vruntime")?.is_some() {
            // EEVDF (6.6+). With the augmented tree (se.min_vruntime, 6.8+) the left edge is
            // the root's min_vruntime and the leftmost deadline is printed first.
            let root = root_entity(k, cfs)?;
            let augmented = match root.as_ref().or(first.as_ref()) {
                Some(se) => k.member(se, "min_vruntime")?.is_some(),
                None => k.member(cfs, "zero_vruntime")?.is_some(),
            };
            let left_vruntime = if augmented {
                vr(&root, "min_vruntime")?
            } else {
                vr(&first, "vruntime")?
            };
            if augmented {
                f.push(Field::new(
                    "left_deadline",
                    Fmt::Ns,
                    vr(&first, "deadline")?,
                ));
            }
            f.push(Field::new("left_vruntime", Fmt::Ns, left_vruntime));
            let (zero_name, zero) = match k.int_at(cfs, "zero_vruntime")? {
                Some(z) => ("zero_vruntime", z),
                None => ("min_vruntime", k.int_at(cfs, "min_vruntime")?.unwrap_or(0)),
            };
            f.push(Field::new(zero_name, Fmt::Ns, zero));
            f.push(Field::new(
                "avg_vruntime",
                Fmt::Ns,
                avg_vruntime(k, cfs, zero)?,
            ));
            let right = vr(&last, "vruntime")?;
            f.push(Field::new("right_vruntime", Fmt::Ns, right));
            f.push(Field::new(
                "spread",
                Fmt::Ns,
                right.wrapping_sub(left_vruntime),
            ));
        } else {
            let min_v = vr(&first, "vruntime")?;
            let max_v = vr(&last, "vruntime")?;
            let min_vruntime = k.int_at(cfs, "min_vruntime")?.unwrap_or(0);
            f.push(Field::new("MIN_vruntime", Fmt::Ns, min_v));
            f.push(Field::new("min_vruntime", Fmt::Ns, min_vruntime));
            f.push(Field::new("max_vruntime", Fmt::Ns, max_v));
            f.push(Field::new("spread", Fmt::Ns, max_v.wrapping_sub(min_v)));
            let rq0 = rq0_min_vruntime.unwrap_or(min_vruntime);
            f.push(Field::new(
                "spread0",
                Fmt::Ns,
                min_vruntime.wrapping_sub(rq0),
            ));
        }
        // h_nr_running and idle_h_nr_running (members since 5.4) are printed only since 5.15's
        // SCHED_IDLE cgroup series, whose second patch added idle_nr_running: before it the
        // members exist unprinted (5.10). 6.14 renamed or removed all three.
        let idle_series = k.member(cfs, "idle_nr_running")?.is_some();
        for n in [
            "nr_spread_over",
            "nr_running",
            "nr_queued",
            "h_nr_running",
            "h_nr_runnable",
            "h_nr_queued",
            "h_nr_delayed",
            "idle_nr_running",
            "idle_h_nr_running",
            "h_nr_idle",
        ] {
            if !idle_series && matches!(n, "h_nr_running" | "idle_h_nr_running") {
                continue;
            }
            if let Some(v) = k.int_at(cfs, n)? {
                f.push(Field::new(n, Fmt::D, v));
            }
        }
        if let Some(v) = k.int_at(cfs, "load.weight")? {
            f.push(Field::new("load", Fmt::Ld, v));
        }
        if let Some(v) = k.int_at(cfs, "runnable_weight")? {
            f.push(Field::new("runnable_weight", Fmt::Ld, v));
        }
        // CONFIG_SMP: the PELT averages.
        for (name, path, fmt) in [
            ("load_avg", "avg.load_avg", Fmt::Lu),
            ("runnable_load_avg", "avg.runnable_load_avg", Fmt::Lu),
            ("runnable_avg", "avg.runnable_avg", Fmt::Lu),
            ("util_avg", "avg.util_avg", Fmt::Lu),
        ] {
            if let Some(v) = k.int_at(cfs, path)? {
                f.push(Field::new(name, fmt, v));
            }
        }
        // util_est became a plain unsigned int in 6.9 (was struct util_est .enqueued/.ewma).
        if let Some(v) = k.int_at(cfs, "avg.util_est.enqueued")? {
            f.push(Field::new("util_est_enqueued", Fmt::U, v));
        } else if let Some(m) = k.member(cfs, "avg.util_est")?
            && k.size(&m)? <= 4
        {
            f.push(Field::new("util_est", Fmt::U, k.int(&m)?));
        }
        for n in [
            "removed.load_avg",
            "removed.util_avg",
            "removed.runnable_sum",
            "removed.runnable_avg",
        ] {
            if let Some(v) = k.int_at(cfs, n)? {
                f.push(Field::new(n, Fmt::Ld, v));
            }
        }
        if grouped {
            if let Some(v) = k.int_at(cfs, "tg_load_avg_contrib")? {
                f.push(Field::new("tg_load_avg_contrib", Fmt::Lu, v));
            }
            if let Some(tg) = &tg
                && let Some(v) = k.int_any(tg, &["load_avg.counter", "load_avg"])?
            {
                f.push(Field::new("tg_load_avg", Fmt::Ld, v));
            }
        }
        for n in ["throttled", "throttle_count"] {
            if let Some(v) = k.int_at(cfs, n)? {
                f.push(Field::new(n, Fmt::D, v));
            }
        }
        if let Some(tg) = &tg {
            self.group_stats(tg, cpu, schedstats, &mut f)?;
        }
        Ok(Section { path, fields: f })
    }

    /// `print_cfs_group_stats()`: the group's own entity on this CPU (`tg->se[cpu]`, NULL for the
    /// root group).
    fn group_stats(
        &mut self,
        tg: &K::Obj,
        cpu: u32,
        schedstats: bool,
        f: &mut Vec<Field>,
    ) -> AResult<()> {
        let k = self.k;
        // tg->se is `struct sched_entity **`: index the pointer, then follow the slot.
        let Some(arr) = k.member(tg, "se")? else {
            return Ok(());
        };
        if k.int(&arr)? == 0 {
            return Ok(());
        }
        let slot = k.index(&arr, u64::from(cpu))?;
        let Some(se) = k.deref(&slot)? else {
            return Ok(());
        };
        for n in ["exec_start", "vruntime", "sum_exec_runtime"] {
            if let Some(v) = k.int_at(&se, n)? {
                f.push(Field::new(format!("se->{n}"), Fmt::Ns, v));
            }
        }
        if schedstats {
            // 5.16+: struct sched_entity_stats wraps a group entity with its statistics;
            // before, se->statistics (printed with that prefix).
            let (stats, prefix) = match k.member(&se, "statistics")? {
                Some(s) => (Some(s), "se->statistics."),
                None => {
                    let wrapper = k.container_of(&se, "struct sched_entity_stats", "se");
                    match wrapper {
                        Ok(w) => (k.member(&w, "stats")?, ""),
                        Err(_) => (None, ""),
                    }
                }
            };
            if let Some(stats) = stats {
                for n in [
                    "wait_start",
                    "sleep_start",
                    "block_start",
                    "sleep_max",
                    "block_max",
                    "exec_max",
                    "slice_max",
                    "wait_max",
                    "wait_sum",
                ] {
                    if let Some(v) = k.int_at(&stats, n)? {
                        f.push(Field::new(format!("{prefix}{n}"), Fmt::Ns, v));
                    }
                }
                if let Some(v) = k.int_at(&stats, "wait_count")? {
                    f.push(Field::new(format!("{prefix}wait_count"), Fmt::Ld, v));
                }
            }
        }
        for (name, path) in [
            ("se->load.weight", "load.weight"),
            ("se->runnable_weight", "runnable_weight"),
            ("se->avg.load_avg", "avg.load_avg"),
            ("se->avg.util_avg", "avg.util_avg"),
            ("se->avg.runnable_load_avg", "avg.runnable_load_avg"),
            ("se->avg.runnable_avg", "avg.runnable_avg"),
        ] {
            // se->runnable_weight is h_nr_running in 5.7+ and not printed; only the pre-5.7
            // field sat between load.weight and the averages.
            if path == "runnable_weight" && k.member(&se, "avg.runnable_avg")?.is_some() {
                continue;
            }
            if let Some(v) = k.int_at(&se, path)? {
                f.push(Field::new(name, Fmt::Ld, v));
            }
        }
        Ok(())
    }

    /// `print_rt_stats()`: with RT group scheduling (`rt_rq.tg` exists) one section per task group
    /// on `task_groups` (autogroups skipped, as `next_task_group()` does), else `rq->rt`.
    fn rt_sections(&mut self, rq: &K::Obj, cpu: u32) -> AResult<Vec<Section>> {
        let k = self.k;
        let Some(rt) = k.member(rq, "rt")? else {
            return Ok(vec![]);
        };
        let grouped = k.member(&rt, "tg")?.is_some();
        let mut list: Vec<(K::Obj, Option<Vec<u8>>)> = Vec::new();
        if grouped {
            if let Some(head) = k.var("task_groups")? {
                for tg in k.list(&head, "struct task_group", "list")? {
                    if k.deref_at(&tg, "autogroup")?.is_some() {
                        continue;
                    }
                    let Some(arr) = k.member(&tg, "rt_rq")? else {
                        continue;
                    };
                    if k.int(&arr)? == 0 {
                        continue;
                    }
                    let Some(r) = k.deref(&k.index(&arr, u64::from(cpu))?)? else {
                        continue;
                    };
                    let path = task_group_path(k, &tg)?;
                    list.push((r, Some(path)));
                }
            }
        } else {
            list.push((rt, None));
        }
        let mut out = Vec::new();
        for (r, path) in list {
            let mut f = Vec::new();
            for (n, fmt) in [
                ("rt_nr_running", Fmt::Lu),
                ("rt_nr_migratory", Fmt::Lu),
                ("rt_throttled", Fmt::Ld),
                ("rt_time", Fmt::Ns),
                ("rt_runtime", Fmt::Ns),
            ] {
                if let Some(v) = k.int_at(&r, n)? {
                    f.push(Field::new(n, fmt, v));
                }
            }
            out.push(Section { path, fields: f });
        }
        Ok(out)
    }

    /// `print_dl_stats()`: `dl_bw` from the root domain on SMP (`rq->rd->dl_bw`), else the
    /// dl_rq's own.
    fn dl_section(&mut self, rq: &K::Obj) -> AResult<Option<Section>> {
        let k = self.k;
        let Some(dl) = k.member(rq, "dl")? else {
            return Ok(None);
        };
        let mut f = Vec::new();
        for n in ["dl_nr_running", "dl_nr_migratory"] {
            if let Some(v) = k.int_at(&dl, n)? {
                f.push(Field::new(n, Fmt::Lu, v));
            }
        }
        let bw = match k.deref_at(rq, "rd")? {
            Some(rd) => k.member(&rd, "dl_bw")?,
            None => k.member(&dl, "dl_bw")?,
        };
        if let Some(bw) = bw {
            for n in ["bw", "total_bw"] {
                if let Some(v) = k.int_at(&bw, n)? {
                    f.push(Field::new(format!("dl_bw->{n}"), Fmt::Ld, v));
                }
            }
        }
        Ok(Some(Section {
            path: None,
            fields: f,
        }))
    }

    fn task_table(
        &mut self,
        rq: &K::Obj,
        cpu: u32,
        curr: Option<u64>,
        schedstats: bool,
        tasks: &[K::Obj],
        states: &TaskStateTable,
    ) -> TaskTable {
        let k = self.k;
        // Probe the layout on init_task, which every kernel has, not on a collected task: the
        // columns must not depend on whether the task list could be read.
        let sample = k
            .var("init_task")
            .ok()
            .flatten()
            .or_else(|| tasks.first().cloned());
        let probe = |path: &str| -> bool {
            sample
                .as_ref()
                .and_then(|t| k.member(t, path).ok().flatten())
                .is_some()
        };
        let eevdf = probe("se.deadline");
        let numa = probe("numa_group");
        let cgroup = probe("sched_task_group");
        // The 5.8 layout change (a space before the name) came with the rework that replaced
        // rq->wake_list by rq->ttwu_pending; the member is the closest marker the types give.
        let old = matches!(k.member(rq, "wake_list"), Ok(Some(_)));
        let columns = if eevdf {
            TaskColumns::Eevdf { numa, cgroup }
        } else if old {
            TaskColumns::CfsOld
        } else {
            TaskColumns::Cfs
        };
        let mut rows = Vec::new();
        let root_cfs = k.member(rq, "cfs").ok().flatten();
        // task_node(p) is cpu_to_node(task_cpu(p)): the same for every row of this CPU.
        let node = if numa {
            match k.var("numa_node").and_then(|v| match v {
                Some(v) => k.int(&k.per_cpu(&v, cpu)?).map(|n| n as i32),
                None => Ok(0),
            }) {
                Ok(n) => n,
                Err(e) => {
                    self.note_err(e);
                    0
                }
            }
        } else {
            0
        };
        for t in tasks {
            let cols = RowColumns {
                eevdf,
                numa,
                cgroup,
                root_cfs: root_cfs.as_ref(),
                node,
            };
            match self.task_row(t, cpu, curr, schedstats, states, &cols) {
                Ok(Some(r)) => rows.push(r),
                Ok(None) => {}
                Err(e) => self.note_err(e),
            }
        }
        TaskTable { columns, rows }
    }

    fn task_row(
        &mut self,
        t: &K::Obj,
        cpu: u32,
        curr: Option<u64>,
        schedstats: bool,
        states: &TaskStateTable,
        cols: &RowColumns<'_, K::Obj>,
    ) -> AResult<Option<TaskRow>> {
        let k = self.k;
        let (eevdf, numa, cgroup, root_cfs) = (cols.eevdf, cols.numa, cols.cgroup, cols.root_cfs);
        // task_cpu(): thread_info.cpu since 5.16 with THREAD_INFO_IN_TASK, task_struct.cpu before.
        let Some(tcpu) = k.int_any(t, &["thread_info.cpu", "cpu"])? else {
            return Ok(None);
        };
        if tcpu != i64::from(cpu) {
            return Ok(None);
        }
        let state = k.int_any(t, &["__state", "state"])?.unwrap_or(0);
        let exit_state = k.int_at(t, "exit_state")?.unwrap_or(0);
        let comm = match k.member(t, "comm")? {
            Some(c) => k.cstr(&c, 16)?,
            None => Vec::new(),
        };
        let stat = |n: &str| -> AResult<i64> {
            if !schedstats {
                return Ok(0);
            }
            Ok(
                k.int_any(t, &[&format!("stats.{n}"), &format!("se.statistics.{n}")])?
                    .unwrap_or(0),
            )
        };
        let has_block = k
            .member_any(
                t,
                &["stats.sum_block_runtime", "se.statistics.sum_block_runtime"],
            )?
            .is_some();
        let sum_block = if has_block || eevdf {
            Some(stat("sum_block_runtime")?)
        } else {
            None
        };
        let nvcsw = k.int_at(t, "nvcsw")?.unwrap_or(0);
        let nivcsw = k.int_at(t, "nivcsw")?.unwrap_or(0);
        let eevdf_cols = if eevdf {
            // cfs_rq_of(se): se->cfs_rq with group scheduling, else the runqueue's root cfs_rq.
            let cfs = match k.member(t, "se.cfs_rq")? {
                Some(p) => k.deref(&p)?,
                None => root_cfs.cloned(),
            };
            let vruntime = k.int_at(t, "se.vruntime")?.unwrap_or(0);
            let eligible = match &cfs {
                Some(c) => vruntime_eligible(k, c, vruntime)?,
                None => true,
            };
            Some(EevdfColumns {
                eligible,
                deadline: k.int_at(t, "se.deadline")?.unwrap_or(0),
                custom_slice: k.int_at(t, "se.custom_slice")?.unwrap_or(0) != 0,
                slice: k.int_at(t, "se.slice")?.unwrap_or(0),
            })
        } else {
            None
        };
        let numa_cols = if numa {
            let node = cols.node;
            let gid = match k.deref_at(t, "numa_group")? {
                Some(g) => k.int_at(&g, "gid")?.unwrap_or(0) as i32,
                None => 0,
            };
            Some((node, gid))
        } else {
            None
        };
        let group_path = if cgroup {
            Some(match k.deref_at(t, "sched_task_group")? {
                Some(tg) => task_group_path(k, &tg)?,
                None => b"/".to_vec(),
            })
        } else {
            None
        };
        Ok(Some(TaskRow {
            current: curr == Some(k.address(t)),
            state: task_state_char(states, state as u32, exit_state as u32),
            comm,
            pid: k.int_at(t, "pid")?.unwrap_or(0) as i32,
            vruntime: k.int_at(t, "se.vruntime")?.unwrap_or(0),
            switches: nvcsw.wrapping_add(nivcsw),
            prio: k.int_at(t, "prio")?.unwrap_or(0) as i32,
            wait_sum: stat("wait_sum")?,
            sum_exec: k.int_at(t, "se.sum_exec_runtime")?.unwrap_or(0),
            sum_sleep: stat("sum_sleep_runtime")?,
            sum_block,
            eevdf: eevdf_cols,
            numa: numa_cols,
            group_path,
        }))
    }
}

/// Which optional columns a task row has on this kernel.
struct RowColumns<'a, O> {
    eevdf: bool,
    numa: bool,
    cgroup: bool,
    root_cfs: Option<&'a O>,
    /// `cpu_to_node(cpu)` (the per-CPU `numa_node`), read once per CPU.
    node: i32,
}

#[derive(Default)]
struct ClockValues {
    ktime: i64,
    sched_clk: i64,
}

/// `task_group_path()`: `/autogroup-<id>` for an autogroup, else the cgroup's kernfs path
/// (`/` for the root, `/a/b` below it).
pub fn task_group_path<K: KernelAccess>(k: &K, tg: &K::Obj) -> AResult<Vec<u8>> {
    if let Some(ag) = k.deref_at(tg, "autogroup")? {
        let id = k.int_at(&ag, "id")?.unwrap_or(0);
        return Ok(format!("/autogroup-{}", id as u64).into_bytes());
    }
    let Some(cgrp) = k.deref_at(tg, "css.cgroup")? else {
        return Ok(b"/".to_vec());
    };
    let Some(mut kn) = k.deref_at(&cgrp, "kn")? else {
        return Ok(b"/".to_vec());
    };
    let mut names: Vec<Vec<u8>> = Vec::new();
    // kernfs_node.parent was renamed __parent in 6.15.
    for _ in 0..4096 {
        let parent = match k.member_any(&kn, &["__parent", "parent"])? {
            Some((p, _)) => k.deref(&p)?,
            None => None,
        };
        let Some(parent) = parent else { break };
        let name = match k.member(&kn, "name")? {
            Some(n) => k.cstr(&n, 256)?,
            None => Vec::new(),
        };
        names.push(name);
        kn = parent;
    }
    if names.is_empty() {
        return Ok(b"/".to_vec());
    }
    let mut out = Vec::new();
    for n in names.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    Ok(out)
}

/// The `sched_entity` whose `run_node` is at `node` (an `rb_node` object), or `None` for NULL.
fn node_entity<K: KernelAccess>(k: &K, node: Option<K::Obj>) -> AResult<Option<K::Obj>> {
    match node {
        Some(n) => Ok(Some(k.container_of(
            &n,
            "struct sched_entity",
            "run_node",
        )?)),
        None => Ok(None),
    }
}

/// `__pick_first_entity()`: the cached leftmost node (`rb_root_cached`, 4.14+; before, the
/// cfs_rq's own `rb_leftmost`).
fn leftmost_entity<K: KernelAccess>(k: &K, cfs: &K::Obj) -> AResult<Option<K::Obj>> {
    let node = match k.member_any(cfs, &["tasks_timeline.rb_leftmost", "rb_leftmost"])? {
        Some((p, _)) => k.deref(&p)?,
        None => None,
    };
    node_entity(k, node)
}

/// `__pick_root_entity()`.
fn root_entity<K: KernelAccess>(k: &K, cfs: &K::Obj) -> AResult<Option<K::Obj>> {
    let node = match k.member_any(
        cfs,
        &["tasks_timeline.rb_root.rb_node", "tasks_timeline.rb_node"],
    )? {
        Some((p, _)) => k.deref(&p)?,
        None => None,
    };
    node_entity(k, node)
}

/// `__pick_last_entity()`: `rb_last()` of the timeline, following right children from the root.
fn rightmost_entity<K: KernelAccess>(k: &K, cfs: &K::Obj) -> AResult<Option<K::Obj>> {
    let mut node = match k.member_any(
        cfs,
        &["tasks_timeline.rb_root.rb_node", "tasks_timeline.rb_node"],
    )? {
        Some((p, _)) => k.deref(&p)?,
        None => None,
    };
    let Some(mut n) = node.take() else {
        return Ok(None);
    };
    // A red-black tree of N nodes is at most 2·log2(N+1) deep; 128 covers any real one.
    for _ in 0..128 {
        match k.deref_at(&n, "rb_right")? {
            Some(r) => n = r,
            None => return node_entity(k, Some(n)),
        }
    }
    Err(AccessError::new(
        "corrupt",
        "cfs_rq timeline deeper than any red-black tree can be",
    ))
}

/// `scale_load_down()` on 64-bit: weights carry 10 extra fixed-point bits.
fn scale_load_down(w: u64) -> u64 {
    if w == 0 { 0 } else { (w >> 10).max(2) }
}

/// The current entity's (key·weight, weight) contribution when it is on the runqueue
/// (`curr && curr->on_rq`), relative to `zero`.
fn curr_contribution<K: KernelAccess>(
    k: &K,
    cfs: &K::Obj,
    zero: i64,
) -> AResult<Option<(i64, i64)>> {
    let Some(curr) = k.deref_at(cfs, "curr")? else {
        return Ok(None);
    };
    if k.int_at(&curr, "on_rq")?.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let w = scale_load_down(k.int_at(&curr, "load.weight")?.unwrap_or(0) as u64) as i64;
    let key = k.int_at(&curr, "vruntime")?.unwrap_or(0).wrapping_sub(zero);
    Ok(Some((key, w)))
}

/// `avg_vruntime()` (kernel/sched/fair.c, EEVDF): the zero point plus the load-weighted mean key,
/// rounded toward minus infinity, the running entity included. Computed without the kernel's
/// side effect (6.12.y moves `zero_vruntime` while computing it; the sum is the same).
pub fn avg_vruntime<K: KernelAccess>(k: &K, cfs: &K::Obj, zero: i64) -> AResult<i64> {
    let mut weight = k.int_at(cfs, "avg_load")?.unwrap_or(0);
    let mut runtime = k.int_at(cfs, "avg_vruntime")?.unwrap_or(0);
    let curr = curr_contribution(k, cfs, zero)?;
    let delta = if weight != 0 {
        if let Some((key, w)) = curr {
            runtime = runtime.wrapping_add(key.wrapping_mul(w));
            weight = weight.wrapping_add(w);
        }
        if runtime < 0 {
            runtime = runtime.wrapping_sub(weight - 1);
        }
        if weight == 0 {
            0
        } else {
            runtime.wrapping_div(weight)
        }
    } else if let Some((key, w)) = curr {
        let _ = w;
        key
    } else {
        0
    };
    Ok(zero.wrapping_add(delta))
}

/// `vruntime_eligible()`: the entity is eligible when its lag is not negative, i.e. when
/// `Σ key·w (+ current) >= (vruntime − zero) · Σ w (+ current)`.
pub fn vruntime_eligible<K: KernelAccess>(k: &K, cfs: &K::Obj, vruntime: i64) -> AResult<bool> {
    let zero = k
        .int_any(cfs, &["zero_vruntime", "min_vruntime"])?
        .unwrap_or(0);
    let mut avg = k.int_at(cfs, "avg_vruntime")?.unwrap_or(0);
    let mut load = k.int_at(cfs, "avg_load")?.unwrap_or(0);
    if let Some((key, w)) = curr_contribution(k, cfs, zero)? {
        avg = avg.wrapping_add(key.wrapping_mul(w));
        load = load.wrapping_add(w);
    }
    Ok(avg >= vruntime.wrapping_sub(zero).wrapping_mul(load))
}
