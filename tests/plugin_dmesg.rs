//! The dmesg plugin's files from hand-made records: util-linux dmesg's default format (the
//! timestamp `[%5ld.%06ld] `, inner lines indented by its width, an empty record as an empty
//! line), `dmesg -x` names with the caller for people, the JSON (bytes escaped as `\xNN`), and
//! which findings make the plugin partial. Expected text is written out by hand.

mod common;

use common::fake_kernel::FakeKernel;
use common::printk::{Legacy, rec};
use vmcore_report::kernel::printk::{KernelLog, LogIssue, LogRecord, SeqGap, read_kernel_log};
use vmcore_report::plugins::dmesg::recorded_errors;
use vmcore_report::plugins::dmesg::render::{dmesg, human, json, timestamp};

fn r(ts: u64, text: &[u8]) -> LogRecord {
    LogRecord {
        seq: Some(0),
        ts_nsec: ts,
        level: 6,
        facility: 0,
        flags: 2,
        caller_id: Some(1),
        text: text.to_vec(),
        subsystem: Vec::new(),
        device: Vec::new(),
        open: false,
    }
}

#[test]
fn timestamps_as_dmesg_prints_them() {
    assert_eq!(timestamp(0), "[    0.000000] ");
    assert_eq!(timestamp(1_579_568_123), "[    1.579568] ");
    assert_eq!(timestamp(12_345_678_901_234), "[12345.678901] ");
    // more than five digits of seconds widen the field, as %5ld does
    assert_eq!(timestamp(123_456_000_999_999), "[123456.000999] ");
}

#[test]
fn dmesg_file_is_util_linux_default_format() {
    let recs = vec![
        r(0, b"Linux version 6.1.0"),
        r(
            1_579_568_000,
            b"Unstable clock\nIf you want:\n  \"trace_clock=local\"",
        ),
        r(2_000_000_000, b""),
        r(3_000_000_000, b"ends with a newline\n"),
        r(4_000_000_000, b"bytes \xff\xfe kept\ttab"),
    ];
    let want: &[u8] = b"[    0.000000] Linux version 6.1.0\n\
[    1.579568] Unstable clock\n               If you want:\n                 \"trace_clock=local\"\n\
\n\
[    3.000000] ends with a newline\n\n\
[    4.000000] bytes \xff\xfe kept\ttab\n";
    assert_eq!(dmesg(&recs), want);
}

#[test]
fn human_file_names_facility_level_and_caller() {
    let mut a = r(1_000_000, b"eth0: link up");
    a.level = 3;
    a.caller_id = Some(0x8000_0002);
    let mut b = r(2_000_000, b"from user\nsecond");
    b.facility = 1;
    b.level = 5;
    b.caller_id = None;
    let want = "kern  :err   : [    0.001000] [    C2] eth0: link up\n\
user  :notice: [    0.002000] from user\n                              second\n";
    assert_eq!(String::from_utf8(human(&[a, b])).unwrap(), want);
}

/// A legacy ring (tests/common/printk.rs) of these records, read back; `log_first_seq` is 0
/// and the records are numbered from it.
fn legacy_log(records: &[(u64, &[u8])]) -> KernelLog {
    let mut l = Legacy::new(256, false);
    for (ts, text) in records {
        let mut r = rec(text, *ts);
        r.caller = 0;
        l.push(r, b"");
    }
    let mut k = FakeKernel::new();
    l.install(&mut k, 0xffff_ffff_8100_0000);
    read_kernel_log(&k).unwrap().unwrap()
}

#[test]
fn json_escapes_bytes_and_summarizes() {
    let log = legacy_log(&[(5, b"first"), (6, b"caf\xc3\xa9 \xff\\")]);
    let j = serde_json::to_value(json(&log)).unwrap();
    assert_eq!(j["summary"]["format"], "legacy");
    assert_eq!(j["summary"]["records"], 2);
    assert_eq!(j["summary"]["first_seq"], 0);
    assert_eq!(j["summary"]["last_seq"], 1);
    assert_eq!(j["summary"]["lost_before_first"], 0);
    assert_eq!(j["summary"]["lost_inside"], 0);
    assert_eq!(j["records"][1]["text"], "café \\xff\\\\");
    assert_eq!(j["records"][1]["timestamp_ns"], 6);
    assert_eq!(j["records"][1]["level"], 6);
    assert_eq!(j["records"][1]["caller"], serde_json::Value::Null);
    assert!(recorded_errors(&log).is_empty());
}

#[test]
fn gaps_and_missing_pages_make_the_plugin_partial() {
    // the reader's findings on a ring with a hole: records 41..44 missing, a page not dumped,
    // a record still being written (informative only)
    let log2 = {
        let mut l = legacy_log(&[(5, b"a"), (6, b"b")]);
        l.gaps = vec![SeqGap {
            after: 40,
            before: 45,
        }];
        l.issues.push(LogIssue {
            code: "not-dumped",
            what: "page 0x2000".into(),
        });
        l.issues.push(LogIssue {
            code: "reserved",
            what: "1 record being written".into(),
        });
        l
    };
    let errs = recorded_errors(&log2);
    let codes: Vec<&str> = errs.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, vec!["not-dumped", "log-gap"]);
    assert!(
        errs[1].message.contains("4 records missing"),
        "{}",
        errs[1].message
    );
    assert!(errs[1].message.contains("41..44"), "{}", errs[1].message);
}
