//! Renders [`SchedDebug`] exactly as `kernel/sched/debug.c` prints `/sys/kernel/debug/sched/debug`
//! (and `/proc/sched_debug` before 5.13).
//!
//! Every literal here is a format string of the kernel's, translated conversion by conversion:
//! `%-30s` → `{:<30}`, `%9Ld` → `{:>9}`, `%06ld` → `{:06}`. The output is bytes, not a `String`,
//! because task names and cgroup names are bytes in the kernel and are printed unchanged.

use std::io::Write;

use super::record::{
    CpuBlock, CpuBody, Field, Fmt, Header, RqBlock, SchedDebug, Section, TaskColumns, TaskRow,
};

/// `sched_tunable_scaling_names[]`.
const TUNABLE_SCALING_NAMES: [&str; 3] = ["none", "logarithmic", "linear"];

/// Splits nanoseconds the way `SPLIT_NS` does: `nsec_high()` divides the magnitude by 10^6 and
/// restores the sign, `nsec_low()` is the magnitude's remainder. A value in (-1 ms, 0) therefore
/// prints without its sign (`-500` → `0.000500`): the kernel's quirk, reproduced on purpose.
pub fn split_ns(ns: i64) -> (i64, u64) {
    let mag = ns.unsigned_abs();
    let high = (mag / 1_000_000) as i64;
    let high = if ns < 0 { -high } else { high };
    (high, mag % 1_000_000)
}

/// `%Ld.%06ld` of `SPLIT_NS(ns)`, the high part right-aligned in `width` (0: no padding).
pub fn fmt_ns(ns: i64, width: usize) -> String {
    let (h, l) = split_ns(ns);
    format!("{h:>width$}.{l:06}")
}

/// A field's value as its conversion prints it.
pub fn fmt_value(fmt: Fmt, v: i64) -> String {
    match fmt {
        Fmt::Ns => fmt_ns(v, 0),
        Fmt::D => (v as i32).to_string(),
        Fmt::U => (v as u32).to_string(),
        Fmt::Ld => v.to_string(),
        Fmt::Lu => (v as u64).to_string(),
    }
}

/// Writes `prefix`, the name left-aligned in `width`, `": "` and the value.
fn field_line(out: &mut Vec<u8>, prefix: &str, width: usize, f: &Field) {
    let _ = writeln!(
        out,
        "{prefix}{:<width$}: {}",
        f.name,
        fmt_value(f.fmt, f.value)
    );
}

/// The kernel's file, byte for byte. `annotate` adds the notes as `#` lines at the top (the
/// kernel's file has no such lines; they are for readers who need to know what is approximate).
pub fn render(sd: &SchedDebug, annotate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if annotate {
        for n in &sd.notes {
            let _ = writeln!(out, "# {n}");
        }
    }
    render_header(&mut out, &sd.header);
    for cpu in &sd.cpus {
        render_cpu(&mut out, cpu, annotate);
    }
    out
}

fn render_header(out: &mut Vec<u8>, h: &Header) {
    // `%.*s` with `strcspn(version, " ")`: the version up to its first space.
    let first_word = h.version.split(|&b| b == b' ').next().unwrap_or(&[]);
    out.extend_from_slice(b"Sched Debug Version: v0.11, ");
    out.extend_from_slice(&h.release);
    out.push(b' ');
    out.extend_from_slice(first_word);
    out.push(b'\n');
    for f in &h.clocks {
        field_line(out, "", 40, f);
    }
    out.extend_from_slice(b"\nsysctl_sched\n");
    for f in &h.sysctls {
        field_line(out, "  .", 40, f);
    }
    if let Some(ts) = h.tunable_scaling {
        let name = usize::try_from(ts)
            .ok()
            .and_then(|i| TUNABLE_SCALING_NAMES.get(i))
            .copied()
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "  .{:<40}: {} ({name})",
            "sysctl_sched_tunable_scaling", ts as i32
        );
    }
    out.push(b'\n');
}

fn render_cpu(out: &mut Vec<u8>, c: &CpuBlock, annotate: bool) {
    match c.khz {
        Some(khz) => {
            // `cpu_khz ? : 1`
            let freq = if khz == 0 { 1 } else { khz };
            let _ = writeln!(
                out,
                "cpu#{}, {}.{:03} MHz",
                c.cpu as i32,
                freq / 1000,
                freq % 1000
            );
        }
        None => {
            let _ = writeln!(out, "cpu#{}", c.cpu as i32);
        }
    }
    match &c.body {
        CpuBody::Present(rq) => render_rq(out, c.cpu, rq, annotate),
        CpuBody::Missing { reason } => {
            let _ = writeln!(out, "  (not available in this dump: {reason})");
            out.push(b'\n');
        }
    }
}

fn render_rq(out: &mut Vec<u8>, cpu: u32, b: &RqBlock, annotate: bool) {
    if annotate {
        for p in &b.problems {
            let _ = writeln!(out, "# {p}");
        }
    }
    for f in &b.rq {
        field_line(out, "  .", 30, f);
    }
    for s in &b.cfs {
        render_section(out, "cfs_rq", cpu, s);
    }
    for s in &b.rt {
        render_section(out, "rt_rq", cpu, s);
    }
    for s in &b.dl {
        render_section(out, "dl_rq", cpu, s);
    }
    render_tasks(out, &b.tasks.columns, &b.tasks.rows);
    out.push(b'\n');
}

fn render_section(out: &mut Vec<u8>, kind: &str, cpu: u32, s: &Section) {
    let _ = write!(out, "\n{kind}[{}]:", cpu as i32);
    if let Some(p) = &s.path {
        out.extend_from_slice(p);
    }
    out.push(b'\n');
    for f in &s.fields {
        field_line(out, "  .", 30, f);
    }
}

const DASHES_55: &str = "-------------------------------------------------------";

fn render_tasks(out: &mut Vec<u8>, cols: &TaskColumns, rows: &[TaskRow]) {
    out.extend_from_slice(b"\nrunnable tasks:\n");
    match *cols {
        TaskColumns::CfsOld => {
            out.extend_from_slice(
                b" S           task   PID         tree-key  switches  prio     wait-time             sum-exec        sum-sleep\n",
            );
            let _ = writeln!(out, "{DASHES_55}{}", &DASHES_55[..52]);
        }
        TaskColumns::Cfs => {
            out.extend_from_slice(
                b" S            task   PID         tree-key  switches  prio     wait-time             sum-exec        sum-sleep\n",
            );
            let _ = writeln!(out, "{DASHES_55}{}", &DASHES_55[..54]);
        }
        TaskColumns::Eevdf { numa, cgroup } => {
            out.extend_from_slice(
                b" S            task   PID       vruntime   eligible    deadline             slice          sum-exec      switches  prio         wait-time        sum-sleep       sum-block",
            );
            if numa {
                out.extend_from_slice(b"  node   group-id");
            }
            if cgroup {
                out.extend_from_slice(b"  group-path");
            }
            out.push(b'\n');
            let _ = write!(out, "{DASHES_55}{}{}", &DASHES_55[..54], &DASHES_55[..54]);
            if numa {
                out.extend_from_slice(b"--------------");
            }
            if cgroup {
                out.extend_from_slice(b"--------------");
            }
            out.push(b'\n');
        }
    }
    for r in rows {
        render_task(out, cols, r);
    }
}

/// `%15s`: right-aligned in 15 bytes, longer strings unchanged.
fn pad15(out: &mut Vec<u8>, s: &[u8]) {
    for _ in s.len()..15 {
        out.push(b' ');
    }
    out.extend_from_slice(s);
}

fn render_task(out: &mut Vec<u8>, cols: &TaskColumns, r: &TaskRow) {
    if r.current {
        out.extend_from_slice(b">R");
    } else {
        let mut buf = [0u8; 4];
        let _ = write!(out, " {}", r.state.encode_utf8(&mut buf));
    }
    match *cols {
        TaskColumns::CfsOld | TaskColumns::Cfs => {
            if *cols == TaskColumns::Cfs {
                out.push(b' ');
            }
            pad15(out, &r.comm);
            let _ = write!(
                out,
                " {:>5} {} {:>9} {:>5} ",
                r.pid,
                fmt_ns(r.vruntime, 9),
                r.switches,
                r.prio
            );
            let _ = write!(
                out,
                "{} {} {}",
                fmt_ns(r.wait_sum, 9),
                fmt_ns(r.sum_exec, 9),
                fmt_ns(r.sum_sleep, 9)
            );
            if let Some(b) = r.sum_block {
                let _ = write!(out, " {}", fmt_ns(b, 9));
            }
            if let Some((node, group)) = r.numa {
                let _ = write!(out, " {node} {group}");
            }
            if let Some(p) = &r.group_path {
                out.push(b' ');
                out.extend_from_slice(p);
            }
        }
        TaskColumns::Eevdf { .. } => {
            let e = r.eevdf.unwrap_or_default();
            out.push(b' ');
            pad15(out, &r.comm);
            let _ = write!(
                out,
                " {:>5} {}   {}   {} {} {} {} {:>9}   {:>5} ",
                r.pid,
                fmt_ns(r.vruntime, 9),
                if e.eligible { 'E' } else { 'N' },
                fmt_ns(e.deadline, 9),
                if e.custom_slice { 'S' } else { ' ' },
                fmt_ns(e.slice, 9),
                fmt_ns(r.sum_exec, 9),
                r.switches,
                r.prio
            );
            let _ = write!(
                out,
                "{} {} {}",
                fmt_ns(r.wait_sum, 9),
                fmt_ns(r.sum_sleep, 9),
                fmt_ns(r.sum_block.unwrap_or(0), 9)
            );
            if let Some((node, group)) = r.numa {
                let _ = write!(out, "   {node}      {group}");
            }
            if let Some(p) = &r.group_path {
                out.extend_from_slice(b"        ");
                out.extend_from_slice(p);
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ns_keeps_the_kernels_sign_quirk() {
        assert_eq!(fmt_ns(2_095_254_768, 0), "2095.254768");
        assert_eq!(fmt_ns(-126_893_922, 0), "-126.893922");
        // Under a millisecond the sign is lost: nsec_high() returns -0.
        assert_eq!(fmt_ns(-500, 0), "0.000500");
        assert_eq!(fmt_ns(-1, 9), "        0.000001");
        assert_eq!(fmt_ns(i64::MIN, 0), "-9223372036854.775808");
        assert_eq!(fmt_ns(0, 9), "        0.000000");
    }

    #[test]
    fn conversions_follow_c() {
        assert_eq!(fmt_value(Fmt::D, 0xffff_ffff), "-1");
        assert_eq!(fmt_value(Fmt::U, -1), "4294967295");
        assert_eq!(fmt_value(Fmt::Lu, -1), "18446744073709551615");
        assert_eq!(fmt_value(Fmt::Ld, -8), "-8");
    }
}
