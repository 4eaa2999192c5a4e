//! VMCOREINFO: the `KEY=value` text the kernel exports for dump tools.
//!
//! Keys are `OSRELEASE`, `BUILD-ID`, `PAGESIZE`, `KERNELOFFSET` (hex), `CRASHTIME`, and the families
//! `SYMBOL(name)` (hex address), `OFFSET(struct.member)`, `SIZE(struct)`, `LENGTH(array)` and
//! `NUMBER(name)` (decimal, or hex on some architectures' keys). Every key is optional; unknown keys
//! are kept verbatim.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VmcoreInfo {
    pub osrelease: Option<String>,
    pub build_id: Option<String>,
    pub page_size: Option<u64>,
    pub kerneloffset: Option<u64>,
    pub crashtime: Option<i64>,
    pub symbols: BTreeMap<String, u64>,
    pub offsets: BTreeMap<String, u64>,
    pub sizes: BTreeMap<String, u64>,
    pub lengths: BTreeMap<String, u64>,
    pub numbers: BTreeMap<String, i64>,
    /// Every other key, verbatim.
    pub other: BTreeMap<String, String>,
}

impl VmcoreInfo {
    /// Parses VMCOREINFO text. Lines that are not `KEY=value` and values that do not parse are
    /// kept in `other` rather than failing: the note comes from an untrusted dump.
    pub fn parse(text: &str) -> VmcoreInfo {
        let mut vi = VmcoreInfo::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\0').trim();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let parsed = match key {
                "OSRELEASE" => {
                    vi.osrelease = Some(value.to_string());
                    true
                }
                "BUILD-ID" => {
                    vi.build_id = Some(value.to_ascii_lowercase());
                    true
                }
                "PAGESIZE" => parse_dec(value)
                    .map(|v| vi.page_size = Some(v as u64))
                    .is_some(),
                "KERNELOFFSET" => parse_hex(value)
                    .map(|v| vi.kerneloffset = Some(v))
                    .is_some(),
                "CRASHTIME" => parse_dec(value).map(|v| vi.crashtime = Some(v)).is_some(),
                _ => {
                    if let Some(name) = family(key, "SYMBOL") {
                        parse_hex(value)
                            .map(|v| vi.symbols.insert(name.into(), v))
                            .is_some()
                    } else if let Some(name) = family(key, "OFFSET") {
                        parse_dec(value)
                            .map(|v| vi.offsets.insert(name.into(), v as u64))
                            .is_some()
                    } else if let Some(name) = family(key, "SIZE") {
                        parse_dec(value)
                            .map(|v| vi.sizes.insert(name.into(), v as u64))
                            .is_some()
                    } else if let Some(name) = family(key, "LENGTH") {
                        parse_dec(value)
                            .map(|v| vi.lengths.insert(name.into(), v as u64))
                            .is_some()
                    } else if let Some(name) = family(key, "NUMBER") {
                        parse_number(value)
                            .map(|v| vi.numbers.insert(name.into(), v))
                            .is_some()
                    } else {
                        false
                    }
                }
            };
            if !parsed {
                vi.other.insert(key.to_string(), value.to_string());
            }
        }
        vi
    }

    /// The value of one line by its key as the kernel writes it (`SYMBOL(prb)`,
    /// `OFFSET(printk_info.seq)`, `OSRELEASE`, …), in the kernel's notation: hex without `0x`
    /// for `SYMBOL()` and `KERNELOFFSET`, decimal for the other numbers (`NUMBER()` as a signed
    /// decimal, whatever base the dump used), text verbatim. `None` when the dump has no such line.
    pub fn get(&self, key: &str) -> Option<String> {
        match key {
            "OSRELEASE" => return self.osrelease.clone(),
            "BUILD-ID" => return self.build_id.clone(),
            "PAGESIZE" => return self.page_size.map(|v| v.to_string()),
            "KERNELOFFSET" => return self.kerneloffset.map(|v| format!("{v:x}")),
            "CRASHTIME" => return self.crashtime.map(|v| v.to_string()),
            _ => {}
        }
        if let Some(n) = family(key, "SYMBOL") {
            if let Some(v) = self.symbol(n) {
                return Some(format!("{v:x}"));
            }
        } else if let Some(n) = family(key, "OFFSET") {
            if let Some(v) = self.offset(n) {
                return Some(v.to_string());
            }
        } else if let Some(n) = family(key, "SIZE") {
            if let Some(v) = self.size(n) {
                return Some(v.to_string());
            }
        } else if let Some(n) = family(key, "LENGTH") {
            if let Some(v) = self.length(n) {
                return Some(v.to_string());
            }
        } else if let Some(n) = family(key, "NUMBER")
            && let Some(v) = self.number(n)
        {
            return Some(v.to_string());
        }
        self.other.get(key).cloned()
    }

    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }
    pub fn number(&self, name: &str) -> Option<i64> {
        self.numbers.get(name).copied()
    }
    pub fn offset(&self, name: &str) -> Option<u64> {
        self.offsets.get(name).copied()
    }
    pub fn size(&self, name: &str) -> Option<u64> {
        self.sizes.get(name).copied()
    }
    pub fn length(&self, name: &str) -> Option<u64> {
        self.lengths.get(name).copied()
    }
}

fn family<'a>(key: &'a str, fam: &str) -> Option<&'a str> {
    key.strip_prefix(fam)?.strip_prefix('(')?.strip_suffix(')')
}

fn parse_hex(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .unwrap_or(v);
    u64::from_str_radix(v, 16).ok()
}

fn parse_dec(v: &str) -> Option<i64> {
    v.trim().parse::<i64>().ok()
}

/// `NUMBER(x)` is decimal, but some architectures print hex with a `0x` prefix
/// (`NUMBER(kimage_voffset)=0x…` on arm64) and some large values do not fit an i64 unless wrapped.
fn parse_number(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(|u| u as i64);
    }
    v.parse::<i64>()
        .ok()
        .or_else(|| v.parse::<u64>().ok().map(|u| u as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_family_and_keeps_unknown_keys() {
        let text = "OSRELEASE=6.1.0-28-cloud-amd64\nBUILD-ID=ABCdef01\nPAGESIZE=4096\n\
                    SYMBOL(init_uts_ns)=ffffffff82a15380\nOFFSET(list_head.next)=0\n\
                    SIZE(page)=64\nLENGTH(free_area)=11\nNUMBER(pgtable_l5_enabled)=1\n\
                    NUMBER(kimage_voffset)=0xffff800008000000\nKERNELOFFSET=1e000000\n\
                    CRASHTIME=1700000000\nSOMETHING_NEW=yes\nnot a key line\n";
        let vi = VmcoreInfo::parse(text);
        assert_eq!(vi.osrelease.as_deref(), Some("6.1.0-28-cloud-amd64"));
        assert_eq!(vi.build_id.as_deref(), Some("abcdef01"));
        assert_eq!(vi.page_size, Some(4096));
        assert_eq!(vi.symbol("init_uts_ns"), Some(0xffffffff82a15380));
        assert_eq!(vi.offset("list_head.next"), Some(0));
        assert_eq!(vi.size("page"), Some(64));
        assert_eq!(vi.length("free_area"), Some(11));
        assert_eq!(vi.number("pgtable_l5_enabled"), Some(1));
        assert_eq!(
            vi.number("kimage_voffset"),
            Some(0xffff800008000000u64 as i64)
        );
        assert_eq!(vi.kerneloffset, Some(0x1e000000));
        assert_eq!(vi.crashtime, Some(1700000000));
        assert_eq!(
            vi.other.get("SOMETHING_NEW").map(String::as_str),
            Some("yes")
        );
    }

    #[test]
    fn get_returns_a_line_in_the_kernels_notation() {
        let vi = VmcoreInfo::parse(
            "OSRELEASE=6.12.0\nSYMBOL(prb)=ffffffff82e0c5a0\nOFFSET(printk_info.seq)=0\n\
             SIZE(printk_log)=16\nLENGTH(printk_info_device)=48\nNUMBER(PAGE_OFFSET)=-1\n\
             CRASHTIME=1700000000\nPAGESIZE=4096\nCONFIG_X=y\n",
        );
        let get = |k: &str| vi.get(k);
        assert_eq!(get("OSRELEASE").as_deref(), Some("6.12.0"));
        assert_eq!(get("SYMBOL(prb)").as_deref(), Some("ffffffff82e0c5a0"));
        assert_eq!(get("OFFSET(printk_info.seq)").as_deref(), Some("0"));
        assert_eq!(get("SIZE(printk_log)").as_deref(), Some("16"));
        assert_eq!(get("LENGTH(printk_info_device)").as_deref(), Some("48"));
        assert_eq!(get("NUMBER(PAGE_OFFSET)").as_deref(), Some("-1"));
        assert_eq!(get("CRASHTIME").as_deref(), Some("1700000000"));
        assert_eq!(get("PAGESIZE").as_deref(), Some("4096"));
        assert_eq!(get("CONFIG_X").as_deref(), Some("y"));
        assert_eq!(get("SYMBOL(log_buf)"), None);
        assert_eq!(get("OFFSET(printk_info.nope)"), None);
    }

    #[test]
    fn malformed_values_are_kept_not_fatal() {
        let vi = VmcoreInfo::parse("PAGESIZE=lots\nSYMBOL(x)=zz\n\0\0");
        assert_eq!(vi.page_size, None);
        assert_eq!(vi.other.get("PAGESIZE").map(String::as_str), Some("lots"));
        assert_eq!(vi.other.get("SYMBOL(x)").map(String::as_str), Some("zz"));
    }
}
