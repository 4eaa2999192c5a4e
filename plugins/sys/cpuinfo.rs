//! `/proc/cpuinfo` on x86_64, from the per-CPU `struct cpuinfo_x86`, and on arm64, from the
//! per-CPU `struct cpuinfo_arm64`.
//!
//! x86_64: the kernel's format (arch/x86/kernel/cpu/proc.c `show_cpuinfo()`, the same in 6.1 and 6.12),
//! one stanza per CPU, each ended by an empty line:
//!
//! ```text
//! processor\t: %u              (the CPU number)
//! vendor_id\t: %s              (x86_vendor_id, "unknown" when empty)
//! cpu family\t: %d             (x86)
//! model\t\t: %u                (x86_model)
//! model name\t: %s             (x86_model_id, "unknown" when empty)
//! stepping\t: %d               (x86_stepping; "unknown" when 0 and cpuid_level < 0)
//! microcode\t: 0x%x            (only when non-zero)
//! cpu MHz\t\t: %u.%03u         (only with the tsc flag; kHz, see below)
//! cache size\t: %u KB          (x86_cache_size, only when non-zero)
//! physical id\t: %d            (SMP kernels only: phys_proc_id, 6.9+ topo.pkg_id)
//! siblings\t: %d               (weight of per-CPU cpu_core_map)
//! core id\t\t: %d              (cpu_core_id, 6.9+ topo.core_id)
//! cpu cores\t: %d              (booted_cores)
//! apicid\t\t: %d               (apicid, 6.9+ topo.apicid)
//! initial apicid\t: %d         (initial_apicid, 6.9+ topo.initial_apicid)
//! fpu\t\t: yes / fpu_exception\t: yes / cpuid level\t: %d / wp\t\t: yes   (64-bit)
//! flags\t\t: + " name" for each set bit of x86_capability[] named in x86_cap_flags[]
//! vmx flags\t: (with the vmx flag and vmx_capability[0] != 0: names from x86_vmx_flags[])
//! bugs\t\t: + " name" for bit 32·NCAPINTS + i set and named in x86_bug_flags[i]
//! bogomips\t: %lu.%02lu        (lpj / (500000/HZ), (lpj / (5000/HZ)) % 100)
//! TLB size\t: %d 4K pages      (x86_tlbsize, only when > 0)
//! clflush size\t: %u / cache_alignment\t: %d
//! address sizes\t: %u bits physical, %u bits virtual
//! power management: + " name" per x86_power bit (x86_power_flags[], "" prints nothing,
//!                     an unnamed bit " [n]")
//! ```
//!
//! The flag names are the kernel's own: the arrays `x86_cap_flags[32·NCAPINTS]`,
//! `x86_bug_flags[32·NBUGINTS]`, `x86_vmx_flags[32·NVMXINTS]` and `x86_power_flags[32]` of
//! `const char *` (NULL for an unnamed bit) are read from the dump, their lengths from the
//! debuginfo. `HZ` comes from `tick_nsec`.
//!
//! CPUs: the file lists the online CPUs, but after a panic only the panicking CPU is online (the
//! others cleared themselves in `stop_this_cpu()`); the stanzas are written for the active CPUs,
//! which the stop leaves alone and which were the online ones while the system ran.
//!
//! `cpu MHz`: the kernel prints the APERF/MPERF estimate, else the cpufreq driver's figure, else
//! `cpu_khz` (arch/x86/kernel/cpu/aperfmperf.c `arch_freq_get_on_cpu()`). Only the last is in
//! the dump: the line is written when the CPU has no `aperfmperf` flag and no cpufreq driver is
//! registered (`cpufreq_driver` NULL or absent), else left out.
//!
//! arm64 (arch/arm64/kernel/cpuinfo.c `c_show()`, 6.1 and 6.12), one stanza per CPU:
//!
//! ```text
//! processor\t: %d
//! BogoMIPS\t: %lu.%02lu             (the global loops_per_jiffy, as on x86)
//! Features\t: + " name" for each j < ARRAY_SIZE(hwcap_str) with bit j of elf_hwcap set
//! CPU implementer\t: 0x%02x         (MIDR bits 31:24, from per-CPU cpu_data.reg_midr)
//! CPU architecture: 8
//! CPU variant\t: 0x%x               (MIDR bits 23:20)
//! CPU part\t: 0x%03x                (MIDR bits 15:4)
//! CPU revision\t: %d                (MIDR bits 3:0), then an empty line
//! ```
//!
//! `elf_hwcap` is a bitmap of `unsigned long` words (an `unsigned long` on older kernels);
//! a 32-bit reader (`PER_LINUX32`) sees the compat names instead, `cat` under sos does not.

use serde::Serialize;

use crate::kernel::{AResult, AccessError, KernelAccess, KernelAccessExt};

/// Bound on a flag name (the longest today are about 20 characters).
const NAME_MAX: usize = 64;
/// Bound on the CPU count read from `nr_cpu_ids` (the kernel's `NR_CPUS` limit).
const CPUS_MAX: u64 = 8192;

/// The file's stanzas, per architecture.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuInfo {
    X86(Vec<X86Cpu>),
    Arm64(Vec<Arm64Cpu>),
}

/// One arm64 stanza: what `c_show()` prints for a CPU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Arm64Cpu {
    pub processor: u32,
    pub loops_per_jiffy: u64,
    pub hz: u64,
    pub features: Vec<String>,
    /// `MIDR_EL1`.
    pub midr: u32,
}

/// One x86 stanza: what `show_cpuinfo()` prints for a CPU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct X86Cpu {
    pub processor: u32,
    pub vendor_id: String,
    pub family: i64,
    pub model: i64,
    pub model_name: String,
    pub stepping: i64,
    pub cpuid_level: i64,
    pub microcode: u64,
    /// `cpu_khz`; `None`: no line (no tsc flag, or the live figure is not in the dump).
    pub khz: Option<u64>,
    pub cache_size_kb: u64,
    /// The SMP topology lines; `None` on a uniprocessor kernel.
    pub topology: Option<X86Topology>,
    pub flags: Vec<String>,
    /// `None`: no `vmx flags` line.
    pub vmx_flags: Option<Vec<String>>,
    pub bugs: Vec<String>,
    pub loops_per_jiffy: u64,
    pub hz: u64,
    pub tlb_size: i64,
    pub clflush_size: i64,
    pub cache_alignment: i64,
    pub phys_bits: i64,
    pub virt_bits: i64,
    /// One entry per set `x86_power` bit: its name (`""` prints nothing), `[n]` when unnamed.
    pub power: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct X86Topology {
    pub physical_id: i64,
    pub siblings: u32,
    pub core_id: i64,
    pub cpu_cores: i64,
    pub apicid: i64,
    pub initial_apicid: i64,
}

fn no(what: &str) -> AccessError {
    AccessError::new("no-member", format!("struct cpuinfo_x86 has no {what}"))
}

/// A `const char *names[]` array: each entry's string, `None` for NULL. `len` is the length
/// when the debuginfo gives none (a variable described by its `extern` declaration only).
fn names<K: KernelAccess>(
    k: &K,
    var: &str,
    len: Option<u64>,
) -> AResult<Option<Vec<Option<String>>>> {
    let Some(arr) = k.var(var)? else {
        return Ok(None);
    };
    let n = k
        .array_len(&arr)?
        .or(len)
        .ok_or_else(|| AccessError::new("no-length", format!("{var}: array without a length")))?
        .min(32 * 64);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let p = k.index(&arr, i)?;
        out.push(if k.int(&p)? == 0 {
            None
        } else {
            Some(String::from_utf8_lossy(&k.cstr(&p, NAME_MAX)?).into_owned())
        });
    }
    Ok(Some(out))
}

/// The `u32` words of an array member (`x86_capability`, `vmx_capability`), as a bit test.
fn words<K: KernelAccess>(k: &K, c: &K::Obj, path: &str) -> AResult<Option<Vec<u32>>> {
    let Some(arr) = k.member(c, path)? else {
        return Ok(None);
    };
    let n = k.array_len(&arr)?.unwrap_or(0).min(64);
    (0..n)
        .map(|i| Ok(k.int(&k.index(&arr, i)?)? as u32))
        .collect::<AResult<Vec<u32>>>()
        .map(Some)
}

fn bit(words: &[u32], i: usize) -> bool {
    words.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1)
}

/// The names of the set bits `offset + i` for each named `i`.
fn set_names(words: &[u32], offset: usize, table: &[Option<String>]) -> Vec<String> {
    table
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.as_ref().filter(|_| bit(words, offset + i)).cloned())
        .collect()
}

/// The number of CPUs in a per-CPU `cpumask_var_t` (a pointer with CPUMASK_OFFSTACK, else a
/// one-element array), counting the first `nr_cpu_ids` bits only (an off-stack mask is
/// allocated that long).
fn cpumask_weight<K: KernelAccess>(k: &K, mask: &K::Obj, nr_cpu_ids: u64) -> AResult<u32> {
    // An array or not: the kernel view refuses array_len on a pointer.
    let m = match k.array_len(mask) {
        Ok(Some(_)) => k.index(mask, 0)?,
        _ => k
            .deref(mask)?
            .ok_or_else(|| AccessError::new("null", "cpu_core_map: NULL mask"))?,
    };
    let bits = k
        .member(&m, "bits")?
        .ok_or_else(|| AccessError::new("no-member", "struct cpumask has no bits"))?;
    let word_bits = k.size(&k.index(&bits, 0)?)? * 8;
    let mut n = 0;
    let mut cpu = 0;
    let mut i = 0;
    while cpu < nr_cpu_ids {
        let w = k.int(&k.index(&bits, i)?)? as u64;
        let valid = (nr_cpu_ids - cpu).min(word_bits);
        let w = if valid >= 64 {
            w
        } else {
            w & ((1 << valid) - 1)
        };
        n += w.count_ones();
        cpu += word_bits;
        i += 1;
    }
    Ok(n)
}

/// The arm64 stanzas for `cpus`; `Ok(None)` without `hwcap_str`, `elf_hwcap` or `cpu_data`.
pub fn read_arm64<K: KernelAccess>(k: &K, cpus: &[u32], hz: u64) -> AResult<Option<Vec<Arm64Cpu>>> {
    let (Some(table), Some(hwcap), Some(data), Some(lpj)) = (
        names(k, "hwcap_str", None)?,
        k.var("elf_hwcap")?,
        k.var("cpu_data")?,
        k.var_int("loops_per_jiffy")?,
    ) else {
        return Ok(None);
    };
    // test_bit(j, elf_hwcap): bit j % 64 of the word j / 64 (unsigned long words).
    let words: Vec<u64> = match k.array_len(&hwcap) {
        Ok(Some(n)) => (0..n.min(64))
            .map(|i| Ok(k.int(&k.index(&hwcap, i)?)? as u64))
            .collect::<AResult<_>>()?,
        _ => vec![k.int(&hwcap)? as u64],
    };
    let features: Vec<String> = table
        .iter()
        .enumerate()
        .filter(|(j, _)| words.get(j / 64).is_some_and(|w| w >> (j % 64) & 1 == 1))
        .filter_map(|(_, n)| n.clone())
        .collect();
    let mut out = Vec::new();
    for &cpu in cpus {
        let c = k.per_cpu(&data, cpu)?;
        let midr = k
            .int_at(&c, "reg_midr")?
            .ok_or_else(|| AccessError::new("no-member", "struct cpuinfo_arm64 has no reg_midr"))?;
        out.push(Arm64Cpu {
            processor: cpu,
            loops_per_jiffy: lpj as u64,
            hz,
            features: features.clone(),
            midr: midr as u32,
        });
    }
    Ok(Some(out))
}

/// The stanzas of `/proc/cpuinfo` for `cpus`; `Ok(None)` when this is not an x86 kernel with
/// the flag names (`x86_cap_flags`) in memory.
pub fn read_x86<K: KernelAccess>(k: &K, cpus: &[u32], hz: u64) -> AResult<Option<Vec<X86Cpu>>> {
    let Some(cap_names) = names(k, "x86_cap_flags", None)? else {
        return Ok(None);
    };
    let bug_names = names(k, "x86_bug_flags", None)?.unwrap_or_default();
    let power_names = names(k, "x86_power_flags", None)?.unwrap_or_default();
    let ncap_bits = cap_names.len();
    let flag_bit = |name: &str| cap_names.iter().position(|n| n.as_deref() == Some(name));
    // cpufreq_quick_get() returns 0 without a driver; the symbol is absent without cpufreq.
    let cpufreq = match k.var("cpufreq_driver")? {
        Some(v) => k.int(&v)? != 0,
        None => false,
    };
    let cpu_khz = k.var_int("cpu_khz")?.map(|v| v as u32 as u64);
    let nr_cpu_ids = k
        .var_int("nr_cpu_ids")?
        .map_or(CPUS_MAX, |n| (n as u64).min(CPUS_MAX));
    let per_cpu = k.var("cpu_info")?;
    let core_map = k.var("cpu_core_map")?;
    let list: Vec<u32> = match per_cpu {
        Some(_) => cpus.to_vec(),
        // A uniprocessor kernel has only boot_cpu_data.
        None => vec![0],
    };
    let mut out = Vec::new();
    for cpu in list {
        let c = match &per_cpu {
            Some(v) => k.per_cpu(v, cpu)?,
            None => k
                .var("boot_cpu_data")?
                .ok_or_else(|| AccessError::new("no-symbol", "no cpu_info nor boot_cpu_data"))?,
        };
        let req =
            |paths: &[&str]| -> AResult<i64> { k.int_any(&c, paths)?.ok_or_else(|| no(paths[0])) };
        let text = |path: &str| -> AResult<String> {
            let m = k.member(&c, path)?.ok_or_else(|| no(path))?;
            let s = k.cstr(&m, NAME_MAX)?;
            Ok(if s.is_empty() {
                "unknown".into()
            } else {
                String::from_utf8_lossy(&s).into_owned()
            })
        };
        let caps = words(k, &c, "x86_capability")?.ok_or_else(|| no("x86_capability"))?;
        let has = |name: &str| flag_bit(name).is_some_and(|b| bit(&caps, b));
        let khz = if has("tsc") && !has("aperfmperf") && !cpufreq {
            cpu_khz
        } else {
            None
        };
        let topology = match (&per_cpu, &core_map) {
            (Some(_), Some(map)) => Some(X86Topology {
                physical_id: req(&["topo.pkg_id", "phys_proc_id"])?,
                siblings: cpumask_weight(k, &k.per_cpu(map, cpu)?, nr_cpu_ids)?,
                core_id: req(&["topo.core_id", "cpu_core_id"])?,
                cpu_cores: req(&["booted_cores"])?,
                apicid: req(&["topo.apicid", "apicid"])?,
                initial_apicid: req(&["topo.initial_apicid", "initial_apicid"])?,
            }),
            _ => None,
        };
        // x86_vmx_flags[NVMXINTS * 32]: NVMXINTS is vmx_capability's length.
        let vmx_flags = match words(k, &c, "vmx_capability")? {
            Some(w) if has("vmx") && w.first().is_some_and(|&w0| w0 != 0) => {
                names(k, "x86_vmx_flags", Some(32 * w.len() as u64))?.map(|t| set_names(&w, 0, &t))
            }
            _ => None,
        };
        let power_bits = req(&["x86_power"])? as u32;
        let power = (0..32)
            .filter(|i| power_bits >> i & 1 == 1)
            .map(|i| match power_names.get(i) {
                Some(Some(n)) => n.clone(),
                _ => format!("[{i}]"),
            })
            .collect();
        out.push(X86Cpu {
            processor: cpu,
            vendor_id: text("x86_vendor_id")?,
            family: req(&["x86"])?,
            model: req(&["x86_model"])?,
            model_name: text("x86_model_id")?,
            stepping: req(&["x86_stepping", "x86_mask"])?,
            cpuid_level: req(&["cpuid_level"])?,
            microcode: req(&["microcode"])? as u32 as u64,
            khz,
            cache_size_kb: req(&["x86_cache_size"])? as u32 as u64,
            topology,
            flags: set_names(&caps, 0, &cap_names),
            vmx_flags,
            bugs: set_names(&caps, ncap_bits, &bug_names),
            loops_per_jiffy: req(&["loops_per_jiffy"])? as u64,
            hz,
            tlb_size: k.int_at(&c, "x86_tlbsize")?.unwrap_or(0),
            clflush_size: req(&["x86_clflush_size"])?,
            cache_alignment: req(&["x86_cache_alignment"])?,
            phys_bits: req(&["x86_phys_bits"])?,
            virt_bits: req(&["x86_virt_bits"])?,
            power,
        });
    }
    Ok(Some(out))
}

/// The file.
pub fn render(c: &CpuInfo) -> String {
    match c {
        CpuInfo::X86(v) => render_x86(v),
        CpuInfo::Arm64(v) => render_arm64(v),
    }
}

/// `%lu.%02lu` of `lpj / (500000/HZ)` and `(lpj / (5000/HZ)) % 100`, the kernels' BogoMIPS.
fn bogomips(lpj: u64, hz: u64) -> String {
    let hz = hz.max(1);
    format!(
        "{}.{:02}",
        lpj / (500_000 / hz).max(1),
        (lpj / (5000 / hz).max(1)) % 100
    )
}

/// The arm64 file, as `c_show()` prints it for a 64-bit reader.
pub fn render_arm64(cpus: &[Arm64Cpu]) -> String {
    let mut o = String::new();
    for c in cpus {
        o += &format!("processor\t: {}\n", c.processor);
        o += &format!("BogoMIPS\t: {}\n", bogomips(c.loops_per_jiffy, c.hz));
        o += "Features\t:";
        for f in &c.features {
            o += &format!(" {f}");
        }
        let m = c.midr;
        o += &format!("\nCPU implementer\t: 0x{:02x}\n", m >> 24);
        o += "CPU architecture: 8\n";
        o += &format!("CPU variant\t: {:#x}\n", (m >> 20) & 0xf);
        o += &format!("CPU part\t: 0x{:03x}\n", (m >> 4) & 0xfff);
        o += &format!("CPU revision\t: {}\n\n", m & 0xf);
    }
    o
}

/// The x86 file, as `show_cpuinfo()` prints it.
pub fn render_x86(cpus: &[X86Cpu]) -> String {
    let mut o = String::new();
    for c in cpus {
        o += &format!("processor\t: {}\n", c.processor);
        o += &format!("vendor_id\t: {}\n", c.vendor_id);
        o += &format!("cpu family\t: {}\n", c.family);
        o += &format!("model\t\t: {}\n", c.model);
        o += &format!("model name\t: {}\n", c.model_name);
        if c.stepping != 0 || c.cpuid_level >= 0 {
            o += &format!("stepping\t: {}\n", c.stepping);
        } else {
            o += "stepping\t: unknown\n";
        }
        if c.microcode != 0 {
            o += &format!("microcode\t: {:#x}\n", c.microcode);
        }
        if let Some(f) = c.khz {
            o += &format!("cpu MHz\t\t: {}.{:03}\n", f / 1000, f % 1000);
        }
        if c.cache_size_kb != 0 {
            o += &format!("cache size\t: {} KB\n", c.cache_size_kb);
        }
        if let Some(t) = &c.topology {
            o += &format!("physical id\t: {}\n", t.physical_id);
            o += &format!("siblings\t: {}\n", t.siblings);
            o += &format!("core id\t\t: {}\n", t.core_id);
            o += &format!("cpu cores\t: {}\n", t.cpu_cores);
            o += &format!("apicid\t\t: {}\n", t.apicid);
            o += &format!("initial apicid\t: {}\n", t.initial_apicid);
        }
        o += "fpu\t\t: yes\nfpu_exception\t: yes\n";
        o += &format!("cpuid level\t: {}\nwp\t\t: yes\n", c.cpuid_level);
        let list = |v: &[String]| v.iter().map(|n| format!(" {n}")).collect::<String>();
        o += &format!("flags\t\t:{}", list(&c.flags));
        if let Some(v) = &c.vmx_flags {
            o += &format!("\nvmx flags\t:{}", list(v));
        }
        o += &format!("\nbugs\t\t:{}", list(&c.bugs));
        o += &format!("\nbogomips\t: {}\n", bogomips(c.loops_per_jiffy, c.hz));
        if c.tlb_size > 0 {
            o += &format!("TLB size\t: {} 4K pages\n", c.tlb_size);
        }
        o += &format!("clflush size\t: {}\n", c.clflush_size);
        o += &format!("cache_alignment\t: {}\n", c.cache_alignment);
        o += &format!(
            "address sizes\t: {} bits physical, {} bits virtual\n",
            c.phys_bits, c.virt_bits
        );
        o += "power management:";
        for p in c.power.iter().filter(|p| !p.is_empty()) {
            o += &format!(" {p}");
        }
        o += "\n\n";
    }
    o
}
