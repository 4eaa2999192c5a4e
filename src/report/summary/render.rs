//! The summary as text: `summary.txt`, the lines printed at the end of a run, and `sos.txt`
//! (the summary followed by every plugin's status, duration, files and errors, as sos's own
//! `sos_reports/sos.txt` lists its plugins).

use std::fmt::Write;

use super::{MANIFEST, Summary};
use crate::report::manifest::Manifest;

fn cites(c: &[&str]) -> String {
    c.join(", ")
}

/// `summary.txt`.
pub fn summary_txt(s: &Summary) -> String {
    let mut o = String::new();
    let v = &s.verdict;
    let _ = writeln!(o, "VERDICT: {}", v.description);
    if let Some(p) = &v.panic_string {
        let _ = writeln!(o, "  panic:    \"{p}\"");
    }
    if let Some(h) = &v.headline {
        let _ = writeln!(o, "  what:     {h}");
    }
    if let Some(f) = &v.function {
        let module = v
            .module
            .as_ref()
            .map_or(String::new(), |m| format!(" [{m}]"));
        let from = v
            .function_from
            .map_or(String::new(), |f| format!("  (from the {f})"));
        let _ = writeln!(o, "  where:    {f}{module}{from}");
    }
    if let Some(d) = &v.disagreement {
        let _ = writeln!(o, "  note:     {d}");
    }
    let t = &v.task;
    if t.pid.is_some() || t.cpu.is_some() {
        let who = match (&t.comm, t.pid) {
            (Some(c), Some(p)) => format!("{c} (pid {p})"),
            (None, Some(p)) => format!("pid {p}"),
            _ => "?".to_string(),
        };
        let cpu = t.cpu.map_or(String::new(), |c| format!(" on CPU {c}"));
        let _ = writeln!(o, "  task:     {who}{cpu}");
    }
    if !v.cites.is_empty() {
        let _ = writeln!(o, "  proof:    {}", cites(&v.cites));
    }
    if !s.panic_backtrace.is_empty() {
        let _ = writeln!(o, "\nTHE PANIC CPU'S BACKTRACE  ({})", super::BT_TXT);
        for (i, f) in s.panic_backtrace.iter().enumerate() {
            let _ = writeln!(o, "  #{i:<2} {f}");
        }
    }
    if !s.oops_block.is_empty() {
        let _ = writeln!(o, "\nTHE OOPS IN THE LOG  ({})", super::DMESG);
        for l in &s.oops_block {
            let _ = writeln!(o, "  {l}");
        }
    }
    if !s.findings.is_empty() {
        let _ = writeln!(o, "\nALSO WORTH A LOOK");
        for f in &s.findings {
            let h = if f.heuristic { " (heuristic)" } else { "" };
            let _ = writeln!(o, "  * {}{h}  [{}]", f.title, cites(&f.cites));
            for d in &f.detail {
                let _ = writeln!(o, "      {d}");
            }
        }
    }
    if !s.plugins.is_empty() {
        let _ = writeln!(o, "\nPLUGINS THAT DID NOT FINISH WELL  ({MANIFEST})");
        for p in &s.plugins {
            let _ = writeln!(o, "  {}: {}, {} error(s)", p.plugin, p.status, p.errors);
        }
    }
    o
}

/// The few lines printed at the end of a run, before the archive's path.
pub fn terminal_lines(s: &Summary) -> Vec<String> {
    let v = &s.verdict;
    let mut lines = vec![match &v.panic_string {
        Some(p) => format!("Verdict: {}: \"{p}\"", v.description),
        None => format!("Verdict: {}", v.description),
    }];
    let mut at = Vec::new();
    if let Some(f) = &v.function {
        at.push(format!(
            "in {f}{}",
            v.module
                .as_ref()
                .map_or(String::new(), |m| format!(" [{m}]"))
        ));
    }
    if let (Some(c), Some(p)) = (&v.task.comm, v.task.pid) {
        at.push(format!("task {c} (pid {p})"));
    }
    if let Some(c) = v.task.cpu {
        at.push(format!("CPU {c}"));
    }
    if !at.is_empty() {
        lines.push(format!("  {}", at.join(", ")));
    }
    if let Some(h) = &v.headline {
        lines.push(format!("  {h}"));
    }
    for f in s.findings.iter().filter(|f| f.title.contains("blocked")) {
        lines.push(format!("  {}", f.title));
    }
    if !s.plugins.is_empty() {
        let names: Vec<String> = s
            .plugins
            .iter()
            .map(|p| format!("{} ({})", p.plugin, p.status))
            .collect();
        lines.push(format!("  plugins not finished well: {}", names.join(", ")));
    }
    lines
}

/// `sos.txt`: the summary, then each plugin.
pub fn sos_txt(s: &Summary, m: &Manifest) -> String {
    let mut o = summary_txt(s);
    let _ = writeln!(o, "\nPLUGINS  ({MANIFEST})");
    for (name, r) in &m.components.report.plugins {
        let _ = writeln!(o, "\n{name}: {}", r.status.as_str());
        if !r.enabled {
            continue;
        }
        let _ = writeln!(o, "  duration: {:.3} s", r.duration_s);
        for f in &r.files {
            let _ = writeln!(o, "  file: {f}");
        }
        for e in &r.errors {
            let _ = writeln!(o, "  error: {}: {}", e.code, e.message);
        }
        if r.errors_omitted > 0 {
            let _ = writeln!(o, "  ({} more errors)", r.errors_omitted);
        }
    }
    o
}
