//! Reads [`KernelInfo`] from the kernel through [`KernelAccess`].

use super::taint::{TaintFlagDef, Taints, documented_flags, documented_name};
use super::{CpuCounts, DumpFacts, KernelInfo, Uptime, Uts};
use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};

/// `__NEW_UTS_LEN + 1`.
const UTS_LEN: usize = 65;

pub struct Collected {
    pub info: KernelInfo,
    pub errors: Vec<AccessError>,
}

/// Collects everything it can; each unreadable part is left out (`null`) and reported.
pub fn collect<K: KernelAccess>(k: &K, facts: &DumpFacts) -> Collected {
    let mut errors = Vec::new();
    let uts = keep(&mut errors, read_uts(k));
    let banner = keep(&mut errors, read_banner(k));
    let taints = keep(&mut errors, read_taints(k));
    let uptime = keep(&mut errors, read_uptime(k));
    let mut cpus = CpuCounts {
        in_dump_notes: facts.cpu_notes,
        ..Default::default()
    };
    for (name, dst) in [
        ("__cpu_online_mask", &mut cpus.online),
        ("__cpu_active_mask", &mut cpus.active),
        ("__cpu_present_mask", &mut cpus.present),
        ("__cpu_possible_mask", &mut cpus.possible),
    ] {
        *dst = keep(
            &mut errors,
            k.cpumask(name).map(|m| m.map(|v| v.len() as u32)),
        );
    }
    cpus.nr_cpu_ids = keep(
        &mut errors,
        k.var_int("nr_cpu_ids").map(|v| v.map(|v| v as u32)),
    );
    let utc = |t: Option<i64>| {
        t.and_then(|t| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        })
    };
    Collected {
        info: KernelInfo {
            uts,
            banner,
            taints,
            arch: facts.arch.clone(),
            page_size: facts.page_size,
            kaslr_offset: facts.kaslr_offset.map(|o| format!("{o:#x}")),
            cpus,
            crash_time: facts.crash_time,
            crash_time_utc: utc(facts.crash_time),
            dump_time: facts.dump_time,
            dump_time_utc: utc(facts.dump_time),
            uptime,
            dump_format: facts.format.clone(),
        },
        errors,
    }
}

/// The value, or `None` with the error kept for the manifest.
fn keep<T>(errors: &mut Vec<AccessError>, r: AResult<Option<T>>) -> Option<T> {
    match r {
        Ok(v) => v,
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// `init_uts_ns.name`; without kernel types, at VMCOREINFO's `SYMBOL(init_uts_ns)` +
/// `OFFSET(uts_namespace.name)`, `struct new_utsname` being six `char[65]` (a user-space ABI,
/// include/uapi/linux/utsname.h).
pub fn read_uts<K: KernelAccess>(k: &K) -> AResult<Option<Uts>> {
    let Some(ns) = k.var("init_uts_ns")? else {
        return read_uts_untyped(k);
    };
    let Some(name) = k.member(&ns, "name")? else {
        return Ok(None);
    };
    let field = |f: &str| -> AResult<Vec<u8>> {
        match k.member(&name, f)? {
            Some(m) => k.cstr(&m, UTS_LEN),
            None => Ok(Vec::new()),
        }
    };
    Ok(Some(Uts {
        sysname: field("sysname")?,
        nodename: field("nodename")?,
        release: field("release")?,
        version: field("version")?,
        machine: field("machine")?,
        domainname: field("domainname")?,
    }))
}

fn read_uts_untyped<K: KernelAccess>(k: &K) -> AResult<Option<Uts>> {
    const FIELD: usize = 65;
    let (Some(ns), Some(off)) = (
        k.vmcoreinfo_symbol("init_uts_ns"),
        k.vmcoreinfo_u64("OFFSET(uts_namespace.name)"),
    ) else {
        return Ok(None);
    };
    let raw = k.read(ns.wrapping_add(off), 6 * FIELD)?;
    let field = |i: usize| -> Vec<u8> {
        let f = &raw[i * FIELD..(i + 1) * FIELD];
        f[..f.iter().position(|&b| b == 0).unwrap_or(UTS_LEN.min(FIELD))].to_vec()
    };
    Ok(Some(Uts {
        sysname: field(0),
        nodename: field(1),
        release: field(2),
        version: field(3),
        machine: field(4),
        domainname: field(5),
    }))
}

/// `linux_banner` (init/version.c), the `/proc/version` text with its newline.
pub fn read_banner<K: KernelAccess>(k: &K) -> AResult<Option<Vec<u8>>> {
    match k.var("linux_banner")? {
        Some(b) => k.cstr(&b, 1024).map(Some),
        None => Ok(None),
    }
}

/// `tainted_mask` and the dump's `taint_flags[]`.
pub fn read_taints<K: KernelAccess>(k: &K) -> AResult<Option<Taints>> {
    let Some(mask) = k.var_int("tainted_mask")? else {
        return Ok(None);
    };
    let (flags, from_kernel) = taint_table(k);
    Ok(Some(Taints::new(mask as u64, &flags, from_kernel)))
}

/// The dump's `taint_flags[]` and `true`, or the documented table (cut to the kernel's flag
/// count when the array's length is known) and `false`. Also what the modules plugin prints
/// module taint letters from.
pub fn taint_table<K: KernelAccess>(k: &K) -> (Vec<TaintFlagDef>, bool) {
    match read_taint_flags(k) {
        Ok(Some(f)) => (f, true),
        Ok(None) => (documented_flags(None), false),
        Err(_) => {
            // An unreadable table still has a known length: keep the kernel's flag count.
            let n = k
                .var("taint_flags")
                .ok()
                .flatten()
                .and_then(|a| k.array_len(&a).ok().flatten());
            (documented_flags(n.map(|n| n as usize)), false)
        }
    }
}

fn read_taint_flags<K: KernelAccess>(k: &K) -> AResult<Option<Vec<TaintFlagDef>>> {
    let Some(arr) = k.var("taint_flags")? else {
        return Ok(None);
    };
    let Some(n) = k.array_len(&arr)? else {
        return Ok(None);
    };
    if n > 64 {
        return Err(AccessError::new(
            "corrupt",
            format!("taint_flags has {n} entries"),
        ));
    }
    let mut out = Vec::new();
    for i in 0..n {
        let e = k.index(&arr, i)?;
        // The kernel's letters are printable ASCII (`c_false` may be a space): anything else is
        // a corrupt table, whose bytes must not reach a text file (a newline would split a
        // /proc/modules line).
        let ch = |m: &str| -> AResult<char> {
            let c = char::from(k.int_at(&e, m)?.unwrap_or(i64::from(b'?')) as u8);
            if c.is_ascii_graphic() || c == ' ' && m == "c_false" {
                return Ok(c);
            }
            Err(AccessError::new(
                "corrupt",
                format!(
                    "taint_flags[{i}].{m} at {:#x} is {:#04x}, not a printable letter",
                    k.address(&e),
                    c as u32
                ),
            ))
        };
        let name = match k.member(&e, "desc")? {
            Some(d) => String::from_utf8_lossy(&k.cstr(&d, 64)?).into_owned(),
            None => documented_name(i as usize).unwrap_or("").to_string(),
        };
        out.push(TaintFlagDef {
            c_true: ch("c_true")?,
            c_false: ch("c_false")?,
            module: k.int_at(&e, "module")?.unwrap_or(0) != 0,
            name,
        });
    }
    Ok(Some(out))
}

/// Uptime as `/proc/uptime` reports it: CLOCK_BOOTTIME of the timekeeper's last update
/// (`tkr_mono.base + xtime_nsec >> shift + offs_boot`); without a timekeeper, from `jiffies_64`
/// minus `INITIAL_JIFFIES` (`(u32)(-300 * HZ)`), `HZ` derived from `tick_nsec`.
pub fn read_uptime<K: KernelAccess>(k: &K) -> AResult<Option<Uptime>> {
    if let Some(tk) = k.var("tk_core")?
        && let Some(base) = k.int_at(&tk, "timekeeper.tkr_mono.base")?
    {
        let nsec = k
            .int_at(&tk, "timekeeper.tkr_mono.xtime_nsec")?
            .unwrap_or(0) as u64;
        let shift = k.int_at(&tk, "timekeeper.tkr_mono.shift")?.unwrap_or(0);
        let frac = if (0..64).contains(&shift) {
            nsec >> shift
        } else {
            0
        };
        let boot = k.int_at(&tk, "timekeeper.offs_boot")?.unwrap_or(0);
        let ns = base.wrapping_add(frac as i64).wrapping_add(boot);
        return Ok(Some(Uptime {
            seconds: ns as f64 / 1e9,
            source: "timekeeper",
        }));
    }
    let j = match k.var_int("jiffies_64")? {
        Some(j) => j,
        None => match k.var_int("jiffies")? {
            Some(j) => j,
            None => return Ok(None),
        },
    } as u64;
    let Some(tick_nsec) = k.var_int("tick_nsec")? else {
        return Ok(None);
    };
    if tick_nsec <= 0 {
        return Ok(None);
    }
    let hz = ((1_000_000_000 + tick_nsec / 2) / tick_nsec) as u64;
    if hz == 0 {
        return Ok(None);
    }
    let initial = u64::from((300u64.wrapping_mul(hz) as u32).wrapping_neg());
    Ok(Some(Uptime {
        seconds: j.wrapping_sub(initial) as f64 / hz as f64,
        source: "jiffies",
    }))
}

/// The wall clock of the timekeeper's last update (`tk_core.timekeeper.xtime_sec`, seconds
/// since the epoch): "now" for a dump without VMCOREINFO `CRASHTIME` (a hypervisor-taken dump).
pub fn read_wall_clock<K: KernelAccess>(k: &K) -> AResult<Option<i64>> {
    match k.var("tk_core")? {
        Some(tk) => k.int_at(&tk, "timekeeper.xtime_sec"),
        None => Ok(None),
    }
}
