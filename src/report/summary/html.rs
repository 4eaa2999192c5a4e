//! `sos_reports/sos.html`: one self-contained page (no scripts, no network, no external assets;
//! the style is inline), the summary first, then every plugin with its status, duration and
//! files linked to their paths in the extracted archive (relative to `sos_reports/`), and the
//! manifest's errors.

use std::fmt::Write;

use super::Summary;
use crate::report::manifest::Manifest;

/// HTML text escaping (the five characters that can end a text or attribute context).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A link from `sos_reports/sos.html` to an archive path. Path segments are percent-encoded
/// where a URL needs it (a plugin path is validated to be relative and plain, but `%`, `#`,
/// `?` and spaces may still occur).
fn link(path: &str) -> String {
    let mut href = String::from("../");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~+,=@".contains(&b) {
            href.push(b as char);
        } else {
            let _ = write!(href, "%{b:02X}");
        }
    }
    format!("<a href=\"{}\">{}</a>", esc(&href), esc(path))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:70em}\
pre{background:#f4f4f4;padding:.6em;overflow-x:auto}\
.verdict{border-left:.4em solid #b00;padding:.2em 1em;background:#fff4f4}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
.ok{color:#070}.bad{color:#b00}.h{color:#666;font-style:italic}";

/// The page.
pub fn sos_html(s: &Summary, m: &Manifest) -> String {
    let mut o = String::new();
    let v = &s.verdict;
    let title = format!("vmcore-report: {} ({})", m.nodename, v.description);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        o,
        "<p>{} {} · {} · vmcore-report {}</p>",
        esc(m.kernel_release.as_deref().unwrap_or("unknown kernel")),
        esc(m.architecture.as_deref().unwrap_or("")),
        esc(&m.start_time),
        esc(&m.version)
    );

    // the verdict
    let _ = writeln!(
        o,
        "<div class=\"verdict\" id=\"verdict\"><h2>Verdict: {}</h2><dl>",
        esc(v.description)
    );
    let mut row = |k: &str, val: String| {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{val}</dd>");
    };
    if let Some(p) = &v.panic_string {
        row("panic", format!("<code>{}</code>", esc(p)));
    }
    if let Some(h) = &v.headline {
        row("what", format!("<code>{}</code>", esc(h)));
    }
    if let Some(f) = &v.function {
        let module = v
            .module
            .as_ref()
            .map_or(String::new(), |m| format!(" [{}]", esc(m)));
        let from = v
            .function_from
            .map_or(String::new(), |f| format!(" (from the {f})"));
        row("where", format!("<code>{}{module}</code>{from}", esc(f)));
    }
    if let Some(d) = &v.disagreement {
        row("note", esc(d));
    }
    if let Some(p) = v.task.pid {
        row(
            "task",
            format!(
                "{} (pid {p}){}",
                esc(v.task.comm.as_deref().unwrap_or("?")),
                v.task.cpu.map_or(String::new(), |c| format!(" on CPU {c}"))
            ),
        );
    }
    if !v.cites.is_empty() {
        row(
            "proof",
            v.cites
                .iter()
                .map(|c| link(c))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let _ = writeln!(o, "</dl></div>");

    if !s.panic_backtrace.is_empty() {
        let _ = writeln!(
            o,
            "<h2>The panic CPU's backtrace</h2><p>{}</p><pre>",
            link(super::BT_TXT)
        );
        for (i, f) in s.panic_backtrace.iter().enumerate() {
            let _ = writeln!(o, "#{i:<2} {}", esc(f));
        }
        let _ = writeln!(o, "</pre>");
    }
    if !s.oops_block.is_empty() {
        let _ = writeln!(
            o,
            "<h2>The oops in the log</h2><p>{}</p><pre>",
            link(super::DMESG)
        );
        for l in &s.oops_block {
            let _ = writeln!(o, "{}", esc(l));
        }
        let _ = writeln!(o, "</pre>");
    }
    if !s.findings.is_empty() {
        let _ = writeln!(o, "<h2>Also worth a look</h2><ul>");
        for f in &s.findings {
            let h = if f.heuristic {
                " <span class=\"h\">(heuristic)</span>"
            } else {
                ""
            };
            let proof: Vec<String> = f.cites.iter().map(|c| link(c)).collect();
            let _ = writeln!(o, "<li><b>{}</b>{h} — {}", esc(&f.title), proof.join(", "));
            if !f.detail.is_empty() {
                let _ = writeln!(o, "<pre>{}</pre>", esc(&f.detail.join("\n")));
            }
            let _ = writeln!(o, "</li>");
        }
        let _ = writeln!(o, "</ul>");
    }

    // the plugins
    let _ = writeln!(
        o,
        "<h2>Plugins</h2><p>{}</p><table id=\"plugins\"><tr><th>plugin</th><th>status</th><th>duration</th><th>files</th><th>errors</th></tr>",
        link(super::MANIFEST)
    );
    for (name, r) in &m.components.report.plugins {
        let class = if r.status.as_str() == "ok" {
            "ok"
        } else {
            "bad"
        };
        let files: Vec<String> = r.files.iter().map(|f| link(f)).collect();
        let errors: Vec<String> = r
            .errors
            .iter()
            .map(|e| format!("{}: {}", esc(&e.code), esc(&e.message)))
            .chain((r.errors_omitted > 0).then(|| format!("({} more)", r.errors_omitted)))
            .collect();
        let duration = if r.enabled {
            format!("{:.3} s", r.duration_s)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{duration}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            r.status.as_str(),
            files.join("<br>"),
            errors.join("<br>")
        );
    }
    let _ = writeln!(o, "</table>\n</body></html>");
    o
}
