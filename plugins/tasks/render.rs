//! The `ps` files sos collects, in procps-ng's own layout, and `blocked.txt`.
//!
//! **Layout** (procps-ng `ps/output.c`, `show_one_proc()`): every column has a width and a
//! justification. ps tracks the position a row *should* be at (the sum of the widths so far plus
//! one space per column) and the position it *is* at; a right-justified value is padded on the
//! left to its width, and the padding before a value is what is needed to catch up with the
//! ideal position, but at least one space. So a value wider than its column pushes the rest of
//! the row right, and the next columns win the space back from their own padding. Headers go
//! through the same rule with the column titles as values.
//!
//! **Columns** (procps-ng 3.3/4.0, the versions sos runs with; checked against procps-ng 4.0.2's
//! output):
//!
//! | file | columns (title width justification) |
//! |---|---|
//! | `ps auxwwwm` | USER 8 L, PID 5 R, %CPU 4 R, %MEM 4 R, VSZ 6 R, RSS 5 R, TTY 8 L, STAT 4 L, START 5 R, TIME 6 R, COMMAND |
//! | `ps alxwww` | F 1 R, UID 5 R, PID 5 R, PPID 5 R, PRI 3 R, NI 3 R, VSZ 6 R, RSS 5 R, WCHAN 6 L, STAT 4 L, TTY 8 L, TIME 6 R, COMMAND |
//! | `ps -elfL` | F 1 R, S 1 L, UID 8 L, PID 5 R, PPID 5 R, LWP 5 R, C 2 R, NLWP 4 R, PRI 3 R, NI 3 R, ADDR 1 L, SZ 5 R, WCHAN 6 L, STIME 5 R, TTY 8 L, TIME 8 R, CMD |
//!
//! With BSD `m`, each process row is followed by one row per thread: the process row carries the
//! process's totals and `-` for STAT; a thread row carries `-` for PID, %MEM, VSZ, RSS, TTY and
//! COMMAND, and its own %CPU, STAT, START and TIME.
//!
//! **Values** are those `/proc/<pid>/stat` gives ps, in clock ticks of `USER_HZ` = 100:
//! F = `(flags >> 6) & 7` in octal; PRI (BSD `l`) = `prio − 100`, PRI (`-l`) = `60 + prio − 100`;
//! NI = `static_prio − 120`, `-` for policies other than SCHED_OTHER/SCHED_BATCH; STAT = the
//! state letter, `<` (nice < 0), `N` (nice > 0), `L` (locked pages), `s` (session leader), `l`
//! (more than one thread), `+` (in the terminal's foreground group); %CPU = CPU time × 1000 /
//! HZ / seconds alive, shown as `x.y` (C: the integer percentage, at most 99); %MEM = RSS × 1000
//! / MemTotal (at most 99.9); START/STIME = `%H:%M` on the day of "now", `%b%d` in the same year,
//! `%Y` before; TIME (BSD) = `%3u:%02u` minutes and seconds; TIME (`-f`) = `[dd-]hh:mm:ss`.
//! COMMAND is the command line when known, `[comm]` for a kernel thread, `[comm] <defunct>` for
//! a zombie. "Now" is the crash time; times are in UTC (a dump does not record the time zone).

use chrono::{Datelike, TimeZone, Utc};

use super::record::{Task, TasksReport, split_args};

/// `USER_HZ`: the unit of `/proc/<pid>/stat` times.
const HZ: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Just {
    Left,
    Right,
}

struct Col {
    title: &'static str,
    width: usize,
    just: Just,
}

const fn l(title: &'static str, width: usize) -> Col {
    Col {
        title,
        width,
        just: Just::Left,
    }
}
const fn r(title: &'static str, width: usize) -> Col {
    Col {
        title,
        width,
        just: Just::Right,
    }
}

const AUX: [Col; 11] = [
    l("USER", 8),
    r("PID", 5),
    r("%CPU", 4),
    r("%MEM", 4),
    r("VSZ", 6),
    r("RSS", 5),
    l("TTY", 8),
    l("STAT", 4),
    r("START", 5),
    r("TIME", 6),
    l("COMMAND", 0),
];

const ALX: [Col; 13] = [
    r("F", 1),
    r("UID", 5),
    r("PID", 5),
    r("PPID", 5),
    r("PRI", 3),
    r("NI", 3),
    r("VSZ", 6),
    r("RSS", 5),
    l("WCHAN", 6),
    l("STAT", 4),
    l("TTY", 8),
    r("TIME", 6),
    l("COMMAND", 0),
];

const ELFL: [Col; 17] = [
    r("F", 1),
    l("S", 1),
    l("UID", 8),
    r("PID", 5),
    r("PPID", 5),
    r("LWP", 5),
    r("C", 2),
    r("NLWP", 4),
    r("PRI", 3),
    r("NI", 3),
    l("ADDR", 1),
    r("SZ", 5),
    l("WCHAN", 6),
    r("STIME", 5),
    l("TTY", 8),
    r("TIME", 8),
    l("CMD", 0),
];

/// One row by procps's catch-up rule.
fn row(cols: &[Col], values: &[String], out: &mut String) {
    let (mut correct, mut actual, mut dospace) = (0usize, 0usize, 0usize);
    for (i, (c, v)) in cols.iter().zip(values).enumerate() {
        let amount = v.chars().count();
        let leftpad = match c.just {
            Just::Right => c.width.saturating_sub(amount),
            Just::Left => 0,
        };
        let mut space = (correct + leftpad).saturating_sub(actual);
        if space < 1 {
            space = dospace;
        }
        out.extend(std::iter::repeat_n(' ', space));
        out.push_str(v);
        if i + 1 == cols.len() {
            break;
        }
        actual += space + amount;
        correct += c.width + 1;
        dospace = 1;
    }
    out.push('\n');
}

fn header(cols: &[Col], out: &mut String) {
    let titles: Vec<String> = cols.iter().map(|c| c.title.to_string()).collect();
    row(cols, &titles, out);
}

/// The time reference of a report: ps computes every relative time at its own "now".
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Seconds since the epoch.
    pub epoch: i64,
    /// Whole seconds since boot (procps truncates the uptime).
    pub uptime: u64,
    /// `btime`: the boot time, seconds since the epoch.
    pub boot: i64,
}

impl Now {
    pub fn from_report(r: &TasksReport) -> Option<Now> {
        let epoch = r.now_epoch?;
        let up = r.uptime_s.filter(|u| *u >= 0.0)?;
        Some(Now {
            epoch,
            uptime: up as u64,
            boot: (epoch as f64 - up).floor() as i64,
        })
    }
}

/// Clock ticks of a task's CPU time: `utime + stime` as `/proc` reports them after
/// `cputime_adjust()`, whose sum is the scheduler's `sum_exec_runtime` (ns).
fn cpu_ticks(t: &Task) -> u64 {
    let ns = t
        .sum_exec_runtime_ns
        .or_else(|| Some(t.utime_ns?.saturating_add(t.stime_ns?)))
        .unwrap_or(0);
    ns / (1_000_000_000 / HZ)
}

/// A process's CPU time: its threads' (hostile values saturate, never wrap).
fn total_ticks(threads: &[&Task]) -> u64 {
    threads
        .iter()
        .fold(0u64, |a, t| a.saturating_add(cpu_ticks(t)))
}

fn start_ticks(t: &Task) -> u64 {
    t.start_boottime_ns.unwrap_or(0) / (1_000_000_000 / HZ)
}

/// Whole seconds the task has existed at `now` (procps `cook_etime`).
fn etime(now: Option<Now>, start_ticks: u64) -> u64 {
    now.map_or(0, |n| n.uptime.saturating_sub(start_ticks / HZ))
}

/// %CPU ×10.
fn pcpu10(ticks: u64, seconds: u64) -> u64 {
    (ticks.saturating_mul(1000) / HZ)
        .checked_div(seconds)
        .unwrap_or(0)
}

fn fmt_pcpu(p: u64) -> String {
    if p > 999 {
        format!("{}", p / 10)
    } else {
        format!("{}.{}", p / 10, p % 10)
    }
}

fn fmt_pmem(rss_kb: u64, total_kb: Option<u64>) -> String {
    let p = match total_kb {
        Some(t) if t > 0 => (rss_kb.saturating_mul(1000) / t).min(999),
        _ => 0,
    };
    format!("{}.{}", p / 10, p % 10)
}

/// `pr_stime()`: the start time by how far it lies from now.
fn fmt_stime(now: Option<Now>, start_ticks: u64) -> String {
    let Some(n) = now else {
        return "-".into();
    };
    let t = n
        .boot
        .saturating_add((start_ticks / HZ).min(i64::MAX as u64) as i64);
    let (Some(st), Some(nw)) = (
        Utc.timestamp_opt(t, 0).single(),
        Utc.timestamp_opt(n.epoch, 0).single(),
    ) else {
        return "-".into();
    };
    if st.year() != nw.year() {
        st.format("%Y").to_string()
    } else if st.ordinal() != nw.ordinal() {
        st.format("%b%d").to_string()
    } else {
        st.format("%H:%M").to_string()
    }
}

fn fmt_bsdtime(ticks: u64) -> String {
    let s = ticks / HZ;
    format!("{:3}:{:02}", s / 60, s % 60)
}

fn fmt_time(ticks: u64) -> String {
    let s = ticks / HZ;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn nice(t: &Task) -> Option<i64> {
    t.static_prio.map(|p| p - 120)
}

fn fmt_ni(t: &Task) -> String {
    match (t.policy, nice(t)) {
        (Some(0) | Some(3) | None, Some(n)) => n.to_string(),
        _ => "-".into(),
    }
}

/// `/proc/<pid>/stat` priority: `prio − MAX_RT_PRIO`.
fn priority(t: &Task) -> i64 {
    t.prio.map_or(0, |p| p - 100)
}

fn user(t: &Task) -> String {
    t.euid.or(t.uid).map_or("?".into(), |u| u.to_string())
}

fn tty(t: &Task) -> String {
    match &t.tty {
        None => "?".into(),
        Some(n) => {
            let s = String::from_utf8_lossy(n);
            match s.strip_prefix("pts") {
                Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("pts/{d}")
                }
                _ => s.into_owned(),
            }
        }
    }
}

fn stat(t: &Task, leader: &Task) -> String {
    let mut s = String::new();
    s.push(t.state);
    match nice(t) {
        Some(n) if n < 0 => s.push('<'),
        Some(n) if n > 0 => s.push('N'),
        _ => {}
    }
    if leader.mm.as_ref().is_some_and(|m| m.locked_vm > 0) {
        s.push('L');
    }
    if leader.session.is_some() && leader.session == Some(leader.tgid) {
        s.push('s');
    }
    if leader.nr_threads.unwrap_or(1) > 1 {
        s.push('l');
    }
    if leader.pgrp.is_some() && leader.pgrp == leader.tpgid {
        s.push('+');
    }
    s
}

/// COMMAND / CMD: the arguments joined by spaces, non-printable bytes as `?` (procps
/// `escaped_copy`), else `[comm]`.
fn args(t: &Task) -> String {
    let comm = String::from_utf8_lossy(&t.comm).into_owned();
    if let Some(c) = t.cmdline.as_ref().filter(|c| !c.is_empty()) {
        let joined: Vec<String> = split_args(c)
            .map(|a| {
                String::from_utf8_lossy(a)
                    .chars()
                    .map(|ch| if ch.is_control() { '?' } else { ch })
                    .collect()
            })
            .collect();
        return joined.join(" ");
    }
    if t.state == 'Z' {
        return format!("[{comm}] <defunct>");
    }
    if t.kthread { format!("[{comm}]") } else { comm }
}

fn kb(pages: u64, page_size: u64) -> u64 {
    pages.saturating_mul(page_size) / 1024
}

/// Processes (thread-group leaders, idle tasks excluded) with their threads, leader first.
pub fn processes(r: &TasksReport) -> Vec<(&Task, Vec<&Task>)> {
    let mut out: Vec<(&Task, Vec<&Task>)> = Vec::new();
    let live: Vec<&Task> = r.tasks.iter().filter(|t| !t.idle).collect();
    for t in &live {
        if t.pid != t.tgid {
            continue;
        }
        let mut threads: Vec<&Task> = live.iter().copied().filter(|x| x.tgid == t.tgid).collect();
        threads.sort_by_key(|x| (x.pid != x.tgid, x.pid));
        out.push((t, threads));
    }
    out.sort_by_key(|(t, _)| t.tgid);
    out
}

/// `sos_commands/process/ps_auxwwwm`.
pub fn ps_auxwwwm(r: &TasksReport) -> String {
    let now = Now::from_report(r);
    let mut out = String::new();
    header(&AUX, &mut out);
    for (p, threads) in processes(r) {
        let ticks = total_ticks(&threads);
        let (vsz, rss) = vsz_rss(p, r.page_size);
        let st = start_ticks(p);
        row(
            &AUX,
            &[
                user(p),
                p.tgid.to_string(),
                fmt_pcpu(pcpu10(ticks, etime(now, st))),
                fmt_pmem(rss, r.mem_total_kb),
                vsz.to_string(),
                rss.to_string(),
                tty(p),
                "-".into(),
                fmt_stime(now, st),
                fmt_bsdtime(ticks),
                args(p),
            ],
            &mut out,
        );
        for t in threads {
            let tt = cpu_ticks(t);
            let ts = start_ticks(t);
            row(
                &AUX,
                &[
                    user(t),
                    "-".into(),
                    fmt_pcpu(pcpu10(tt, etime(now, ts))),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    stat(t, p),
                    fmt_stime(now, ts),
                    fmt_bsdtime(tt),
                    "-".into(),
                ],
                &mut out,
            );
        }
    }
    out
}

fn vsz_rss(p: &Task, page_size: u64) -> (u64, u64) {
    match &p.mm {
        Some(m) => (
            kb(m.total_vm, page_size),
            kb(m.rss_pages.unwrap_or(0), page_size),
        ),
        None => (0, 0),
    }
}

/// `sos_commands/process/ps_alxwww`.
pub fn ps_alxwww(r: &TasksReport) -> String {
    let mut out = String::new();
    header(&ALX, &mut out);
    for (p, threads) in processes(r) {
        let ticks = total_ticks(&threads);
        let (vsz, rss) = vsz_rss(p, r.page_size);
        row(
            &ALX,
            &[
                format!("{:o}", (p.flags >> 6) & 7),
                user(p),
                p.tgid.to_string(),
                p.ppid.to_string(),
                priority(p).to_string(),
                fmt_ni(p),
                vsz.to_string(),
                rss.to_string(),
                "-".into(),
                stat(p, p),
                tty(p),
                fmt_bsdtime(ticks),
                args(p),
            ],
            &mut out,
        );
    }
    out
}

/// `sos_commands/process/ps_-elfL`.
pub fn ps_elfl(r: &TasksReport) -> String {
    let now = Now::from_report(r);
    let mut out = String::new();
    header(&ELFL, &mut out);
    for (p, threads) in processes(r) {
        let sz = p.mm.as_ref().map_or(0, |m| m.total_vm);
        for t in threads {
            let tt = cpu_ticks(t);
            let ts = start_ticks(t);
            let c = (pcpu10(tt, etime(now, ts)) / 10).min(99);
            row(
                &ELFL,
                &[
                    format!("{:o}", (t.flags >> 6) & 7),
                    t.state.to_string(),
                    user(t),
                    p.tgid.to_string(),
                    p.ppid.to_string(),
                    t.pid.to_string(),
                    c.to_string(),
                    p.nr_threads.unwrap_or(1).to_string(),
                    (60 + priority(t)).to_string(),
                    fmt_ni(t),
                    "-".into(),
                    sz.to_string(),
                    "-".into(),
                    fmt_stime(now, ts),
                    tty(p),
                    fmt_time(tt),
                    args(p),
                ],
                &mut out,
            );
        }
    }
    out
}

/// `plugins/tasks/blocked.txt`: the D-state tasks, longest blocked first.
pub fn blocked_txt(r: &TasksReport) -> String {
    let mut out = format!(
        "{} task(s) in D state (uninterruptible), longest blocked first.\n\
         BLOCKED = now - sched_info.last_arrival on the task's CPU's runqueue clock;\n\
         SINCE_SWITCH = (jiffies - last_switch_time) / HZ, the hung-task detector's measure.\n\n",
        r.blocked.len()
    );
    out.push_str(&format!(
        "{:>7} {:>7} {:>4} {:>14} {:>13} {:<18} {}\n",
        "PID", "TGID", "CPU", "BLOCKED", "SINCE_SWITCH", "TASK", "COMM"
    ));
    for b in &r.blocked {
        let secs = |v: Option<f64>| v.map_or("-".into(), |s| format!("{s:.3}s"));
        out.push_str(&format!(
            "{:>7} {:>7} {:>4} {:>14} {:>13} {:<18} {}\n",
            b.pid,
            b.tgid,
            b.cpu.map_or("-".into(), |c| c.to_string()),
            secs(b.blocked_ns.map(|n| n as f64 / 1e9)),
            secs(b.since_last_switch_s),
            b.task,
            String::from_utf8_lossy(&b.comm)
        ));
    }
    out
}
