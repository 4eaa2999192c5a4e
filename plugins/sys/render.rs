//! `sys.txt` (crash's `sys` summary and more) and the sos files the plugin writes.
//!
//! sos formats (what the commands and files print on a live system):
//! - `uname -a` (coreutils): sysname, nodename, release, version, machine, then the processor
//!   and hardware platform only when they are known (upstream prints nothing for "unknown"),
//!   then the operating system `GNU/Linux`;
//! - `/proc/version`, `/proc/sys/kernel/{hostname,osrelease,tainted}`, `/proc/cmdline`: one line;
//! - `sys/devices/system/cpu/{online,possible,present}`: `%*pbl`, ranges `0-3,5`;
//! - `date`: `%a %b %e %H:%M:%S %Z %Y` in the C locale;
//! - `/proc/cpuinfo`: see [`super::cpuinfo`].

use super::record::Sys;
use crate::plugins::sched_debug::record::escape_bytes;

/// A cpulist as the kernel prints `%*pbl`: ascending ranges, `a-b` or `a`, comma-separated.
pub fn cpulist(cpus: &[u32]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// `uname -a`.
pub fn uname_a(s: &Sys) -> Option<Vec<u8>> {
    let u = s.uts.as_ref()?;
    let mut out = Vec::new();
    for f in [&u.sysname, &u.nodename, &u.release, &u.version, &u.machine] {
        out.extend_from_slice(f);
        out.push(b' ');
    }
    out.extend_from_slice(b"GNU/Linux\n");
    Some(out)
}

fn line(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    if v.last() != Some(&b'\n') {
        v.push(b'\n');
    }
    v
}

/// The sos files: `(archive path, contents)`; a file whose value is unknown is not written.
pub fn sos_files(s: &Sys) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(u) = uname_a(s) {
        out.push(("sos_commands/kernel/uname_-a", u));
    }
    if let Some(v) = &s.proc_version {
        out.push(("proc/version", line(v)));
    }
    if let Some(c) = &s.cmdline {
        out.push(("proc/cmdline", line(c)));
    }
    if let Some(t) = &s.taints {
        out.push((
            "proc/sys/kernel/tainted",
            format!("{}\n", t.mask).into_bytes(),
        ));
    }
    if let Some(u) = &s.uts {
        out.push(("proc/sys/kernel/hostname", line(&u.nodename)));
        out.push(("proc/sys/kernel/osrelease", line(&u.release)));
    }
    for (path, mask) in [
        ("sys/devices/system/cpu/online", &s.cpus.online),
        ("sys/devices/system/cpu/possible", &s.cpus.possible),
        ("sys/devices/system/cpu/present", &s.cpus.present),
    ] {
        if let Some(m) = mask {
            out.push((path, format!("{}\n", cpulist(m)).into_bytes()));
        }
    }
    if let Some(c) = &s.cpuinfo {
        out.push(("proc/cpuinfo", super::cpuinfo::render(c).into_bytes()));
    }
    if let Some(d) = &s.date {
        out.push(("sos_commands/date/date", format!("{d}\n").into_bytes()));
    }
    out
}

/// crash's `convert_time()`: `[D days, ]HH:MM:SS`.
fn uptime_text(secs: f64) -> String {
    let t = secs.max(0.0) as u64;
    let (d, h, m, s) = (t / 86400, t / 3600 % 24, t / 60 % 60, t % 60);
    if d > 0 {
        format!("{d} days, {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `sys.txt`.
pub fn sys_txt(s: &Sys) -> String {
    let mut o = String::new();
    let mut kv = |k: &str, v: String| o.push_str(&format!("{k:>16}: {v}\n"));
    let uts = s.uts.as_ref();
    let b = |f: Option<&Vec<u8>>| f.map_or("(unknown)".into(), |v| escape_bytes(v));
    kv("KERNEL", b(uts.map(|u| &u.release)));
    kv(
        "DUMPFILE",
        format!(
            "{}  [{}, {} bytes]",
            s.dump_files.join(" "),
            s.dump_format.as_deref().unwrap_or("?"),
            s.dump_size
        ),
    );
    let count = |m: &Option<Vec<u32>>| m.as_ref().map_or("?".into(), |v| v.len().to_string());
    kv(
        "CPUS",
        format!(
            "{} present, {} online at the crash, {} active, {} possible; {} CPU note(s) in the dump",
            count(&s.cpus.present),
            count(&s.cpus.online),
            count(&s.cpus.active),
            count(&s.cpus.possible),
            s.cpus.in_dump_notes
        ),
    );
    kv(
        "DATE",
        match (&s.date, s.crash_time_source) {
            (Some(d), Some(src)) => format!("{d}  ({src})"),
            _ => "(unknown)".into(),
        },
    );
    kv("UPTIME", s.uptime_s.map_or("(unknown)".into(), uptime_text));
    kv(
        "LOAD AVERAGE",
        s.load_average
            .as_ref()
            .map_or("(unknown)".into(), |l| l.join(", ")),
    );
    kv(
        "TASKS",
        s.nr_threads
            .map_or("(unknown)".into(), |n| format!("{n} (nr_threads)")),
    );
    kv("NODENAME", b(uts.map(|u| &u.nodename)));
    kv("RELEASE", b(uts.map(|u| &u.release)));
    kv("VERSION", b(uts.map(|u| &u.version)));
    kv("MACHINE", b(uts.map(|u| &u.machine)));
    kv(
        "MEMORY",
        s.mem_total.map_or("(unknown)".into(), |m| {
            format!("{} kB (MemTotal)", m / 1024)
        }),
    );
    let p = &s.panic;
    kv(
        "PANIC",
        match &p.message {
            Some(m) => format!("\"{m}\""),
            None => "(not found in the log)".into(),
        },
    );
    kv(
        "PANIC CPU",
        match p.panic_cpu {
            Some(-1) => "-1 (panic() did not run)".into(),
            Some(c) => c.to_string(),
            None => "(unknown)".into(),
        },
    );
    if let Some(t) = &p.task {
        kv("PID", t.pid.to_string());
        kv("COMMAND", format!("\"{}\"", escape_bytes(&t.comm)));
        kv("TASK", t.task.clone());
        kv("STATE", t.state.map_or("?".into(), |c| c.to_string()));
    }
    if let Some(site) = &p.site {
        let module = site
            .module
            .as_ref()
            .map_or(String::new(), |m| format!(" [{m}]"));
        kv(
            "PANIC FUNCTION",
            format!(
                "{}{module}  (frame #{} of its backtrace)",
                site.function, site.frame
            ),
        );
    }
    kv(
        "TAINTED",
        s.taints.as_ref().map_or("(unknown)".into(), |t| {
            let names: Vec<String> = t
                .flags
                .iter()
                .map(|f| format!("{} {}", f.letter, f.name))
                .collect();
            if names.is_empty() {
                format!("{} ({})", t.mask, t.string)
            } else {
                format!(
                    "{} = {}  [{}]",
                    t.mask,
                    names.join(", "),
                    t.string.trim_end()
                )
            }
        }),
    );
    if let Some(n) = p.crash_kexec_post_notifiers {
        kv("POST NOTIFIERS", n.to_string());
    }
    if let Some(n) = p.panic_on_oops {
        kv("PANIC_ON_OOPS", n.to_string());
    }
    if let Some(r) = &p.registers {
        o.push_str(&format!(
            "\nRegisters of the panicking CPU (PRSTATUS note {}, pid {}):\n",
            r.note_index, r.pid
        ));
        for chunk in r.regs.chunks(3) {
            let cells: Vec<String> = chunk.iter().map(|(n, v)| format!("{n:>8}: {v}")).collect();
            o.push_str(&cells.join("  "));
            o.push('\n');
        }
    }
    if let Some(b) = &p.last_oops {
        o.push_str("\nLast oops/BUG/WARNING block of the log:\n");
        for l in b {
            o.push_str(l);
            o.push('\n');
        }
    }
    if !s.missing.is_empty() {
        o.push_str("\nLeft out:\n");
        for m in &s.missing {
            o.push_str(&format!("  {m}\n"));
        }
    }
    o
}
