//! `/proc/meminfo` from a [`Meminfo`] record, byte for byte as the kernel prints it.

use super::record::{Meminfo, Unit, format_of};

/// `/proc/meminfo`: one `Key:   value kB` line per collected value, nothing else (a comment or
/// stub line would break parsers such as insights-core's `MemInfo`).
pub fn proc_meminfo(m: &Meminfo) -> String {
    let mut out = String::new();
    for l in &m.lines {
        let f = format_of(l.key);
        let label = format!("{}:", l.key);
        out.push_str(&format!(
            "{label:<lw$}{v:>vw$}",
            lw = f.label_width,
            v = l.value,
            vw = f.value_width
        ));
        if f.unit == Unit::Kb {
            out.push_str(" kB");
        }
        out.push('\n');
    }
    out
}
