//! The sched_debug renderer against independent oracles.
//!
//! 1. The live file a Debian 6.1.192 guest printed (`tests/data/sched-debug-6.1-x86_64.txt`, cut
//!    from the fixture set's `truth.txt`): its values are parsed back into records by a parser
//!    written here from the file's text, and the renderer must reproduce the file byte for byte.
//! 2. EEVDF (6.12): handmade records, with the expected text written by hand from the format strings
//!    of 6.12.117's `kernel/sched/debug.c`.

use vmcore_report::plugins::sched_debug::record::*;
use vmcore_report::plugins::sched_debug::render::render;

const LIVE_6_1: &str = include_str!("data/sched-debug-6.1-x86_64.txt");

fn parse_value(name: &str, v: &str) -> Field {
    if let Some((h, l)) = v.split_once('.')
        && !v.contains(' ')
    {
        let neg = h.starts_with('-');
        let h: i64 = h.trim_start_matches('-').parse().expect("ms part");
        let l: i64 = l.parse().expect("ns part");
        let mag = h * 1_000_000 + l;
        return Field::new(name, Fmt::Ns, if neg { -mag } else { mag });
    }
    Field::new(name, Fmt::Ld, v.parse().expect("integer"))
}

fn parse_ns(v: &str) -> i64 {
    match parse_value("x", v) {
        Field {
            fmt: Fmt::Ns,
            value,
            ..
        } => value,
        other => panic!("not SPLIT_NS: {other:?}"),
    }
}

/// Parses the live file into records, knowing only the file's text.
fn parse(text: &str) -> SchedDebug {
    let mut sd = SchedDebug::default();
    let mut lines = text.lines().peekable();
    let first = lines.next().expect("header");
    let rest = first
        .strip_prefix("Sched Debug Version: v0.11, ")
        .expect("version line");
    let (rel, ver) = rest.split_once(' ').expect("release and version");
    sd.header.release = rel.as_bytes().to_vec();
    sd.header.version = ver.as_bytes().to_vec();
    for l in lines.by_ref() {
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(": ").expect("clock line");
        sd.header.clocks.push(parse_value(n.trim_end(), v));
    }
    assert_eq!(lines.next(), Some("sysctl_sched"));
    for l in lines.by_ref() {
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(": ").expect("sysctl line");
        let n = n.trim_start_matches("  .").trim_end();
        if n == "sysctl_sched_tunable_scaling" {
            sd.header.tunable_scaling = Some(v.split(' ').next().unwrap().parse().unwrap());
        } else {
            sd.header.sysctls.push(parse_value(n, v));
        }
    }
    while let Some(l) = lines.next() {
        let (cpu, khz) = match l.strip_prefix("cpu#") {
            Some(rest) => match rest.split_once(", ") {
                Some((c, mhz)) => {
                    let mhz = mhz.strip_suffix(" MHz").unwrap();
                    let (a, b) = mhz.split_once('.').unwrap();
                    (
                        c.parse::<u32>().unwrap(),
                        Some(a.parse::<u32>().unwrap() * 1000 + b.parse::<u32>().unwrap()),
                    )
                }
                None => (rest.parse().unwrap(), None),
            },
            None => panic!("expected a cpu# line, got {l:?}"),
        };
        let mut b = RqBlock::default();
        let mut current: Option<(&str, Section)> = None;
        loop {
            let l = lines.next().expect("cpu block");
            if let Some(rest) = l.strip_prefix("  .") {
                let (n, v) = rest.split_once(": ").unwrap();
                let f = parse_value(n.trim_end(), v);
                match &mut current {
                    Some((_, s)) => s.fields.push(f),
                    None => b.rq.push(f),
                }
                continue;
            }
            if l.is_empty() {
                if let Some((kind, s)) = current.take() {
                    match kind {
                        "cfs_rq" => b.cfs.push(s),
                        "rt_rq" => b.rt.push(s),
                        _ => b.dl.push(s),
                    }
                }
                continue;
            }
            if l == "runnable tasks:" {
                break;
            }
            let (kind, rest) = l.split_once('[').unwrap();
            let (_, path) = rest.split_once("]:").unwrap();
            let path = (!path.is_empty()).then(|| path.as_bytes().to_vec());
            let kind = match kind {
                "cfs_rq" => "cfs_rq",
                "rt_rq" => "rt_rq",
                _ => "dl_rq",
            };
            current = Some((
                kind,
                Section {
                    path,
                    fields: vec![],
                },
            ));
        }
        let header = lines.next().unwrap();
        assert!(header.starts_with(" S            task   PID         tree-key"));
        lines.next().unwrap();
        b.tasks.columns = TaskColumns::Cfs;
        for l in lines.by_ref() {
            if l.is_empty() {
                break;
            }
            let (mark, rest) = l.split_at(2);
            let comm = rest[1..16].trim_start();
            let cols: Vec<&str> = rest[16..].split_whitespace().collect();
            assert_eq!(cols.len(), 11, "{l:?}");
            b.tasks.rows.push(TaskRow {
                current: mark == ">R",
                state: mark.chars().nth(1).unwrap(),
                comm: comm.as_bytes().to_vec(),
                pid: cols[0].parse().unwrap(),
                vruntime: parse_ns(cols[1]),
                switches: cols[2].parse().unwrap(),
                prio: cols[3].parse().unwrap(),
                wait_sum: parse_ns(cols[4]),
                sum_exec: parse_ns(cols[5]),
                sum_sleep: parse_ns(cols[6]),
                sum_block: Some(parse_ns(cols[7])),
                eevdf: None,
                numa: Some((cols[8].parse().unwrap(), cols[9].parse().unwrap())),
                group_path: Some(cols[10].as_bytes().to_vec()),
            });
        }
        sd.cpus.push(CpuBlock {
            cpu,
            khz,
            body: CpuBody::Present(Box::new(b)),
        });
    }
    sd
}

#[test]
fn renders_the_live_6_1_file_byte_for_byte() {
    let sd = parse(LIVE_6_1);
    assert_eq!(sd.cpus.len(), 2);
    let out = render(&sd, false);
    let out = String::from_utf8(out).unwrap();
    if out != LIVE_6_1 {
        for (i, (a, b)) in out.lines().zip(LIVE_6_1.lines()).enumerate() {
            assert_eq!(a, b, "line {}", i + 1);
        }
        assert_eq!(out.len(), LIVE_6_1.len());
    }
}

#[test]
fn annotations_are_comment_lines_at_the_top_only_when_asked() {
    let mut sd = parse(LIVE_6_1);
    sd.notes = vec!["ktime: from the timekeeper".into()];
    assert_eq!(render(&sd, false), LIVE_6_1.as_bytes());
    let annotated = render(&sd, true);
    let annotated = String::from_utf8(annotated).unwrap();
    assert_eq!(
        annotated,
        format!("# ktime: from the timekeeper\n{LIVE_6_1}")
    );
}

#[test]
fn a_missing_cpu_gets_a_placeholder_and_the_rest_continues() {
    let mut sd = parse(LIVE_6_1);
    sd.cpus[0].body = CpuBody::Missing {
        reason: "runqueues: page 0x1234000 not in the dump".into(),
    };
    let out = String::from_utf8(render(&sd, false)).unwrap();
    let cpu1 = LIVE_6_1.find("cpu#1, ").unwrap();
    let header_end = LIVE_6_1.find("cpu#0, ").unwrap();
    let expected = format!(
        "{}cpu#0, 2442.571 MHz\n  (not available in this dump: runqueues: page 0x1234000 not in the dump)\n\n{}",
        &LIVE_6_1[..header_end],
        &LIVE_6_1[cpu1..]
    );
    assert_eq!(out, expected);
}

/// EEVDF, as 6.12.117 prints it on a non-x86 machine with NUMA balancing and cgroup scheduling.
/// Expected text: the output of a C program calling printf with these format strings of
/// 6.12.117 (and its SPLIT_NS helpers) on the same values:
/// `" %15s %5d %9Ld.%06ld   %c   %9Ld.%06ld %c %9Ld.%06ld %9Ld.%06ld %9Ld   %5d "`,
/// `"%9lld.%06ld %9lld.%06ld %9lld.%06ld"`, `"   %d      %d"`, `"        %s"`.
#[test]
fn renders_eevdf_6_12_layout() {
    let ns = |v| Field::new("x", Fmt::Ns, v);
    let mut cfs = Section {
        path: Some(b"/".to_vec()),
        fields: vec![],
    };
    for (n, v) in [
        ("left_deadline", 5_123_456_789i64),
        ("left_vruntime", 4_000_000_001),
        ("zero_vruntime", 4_100_000_000),
        ("avg_vruntime", 4_100_000_000),
        ("right_vruntime", -1),
        ("spread", -4_000_000_002),
    ] {
        cfs.fields.push(Field {
            name: n.into(),
            ..ns(v)
        });
    }
    cfs.fields.push(Field::new("nr_running", Fmt::D, 1));
    cfs.fields.push(Field::new("h_nr_runnable", Fmt::D, 1));
    cfs.fields.push(Field::new("load", Fmt::Ld, 1048576));
    cfs.fields.push(Field::new("util_est", Fmt::U, -1));
    let rt = Section {
        path: None,
        fields: vec![Field::new("rt_nr_running", Fmt::Lu, 0)],
    };
    let dl = Section {
        path: None,
        fields: vec![
            Field::new("dl_nr_running", Fmt::Lu, 0),
            Field::new("dl_bw->bw", Fmt::Ld, 996147),
            Field::new("dl_bw->total_bw", Fmt::Ld, 0),
        ],
    };
    let rows = vec![
        TaskRow {
            current: false,
            state: 'S',
            comm: b"systemd".to_vec(),
            pid: 1,
            vruntime: 12_345_678,
            switches: 1234,
            prio: 120,
            wait_sum: 0,
            sum_exec: 987_654_321,
            sum_sleep: 1_000_000,
            sum_block: Some(2),
            eevdf: Some(EevdfColumns {
                eligible: true,
                deadline: 15_345_678,
                custom_slice: false,
                slice: 3_000_000,
            }),
            numa: Some((0, 0)),
            group_path: Some(b"/init.scope".to_vec()),
        },
        TaskRow {
            current: true,
            state: 'R',
            comm: b"a-very-long-nam".to_vec(),
            pid: 4242,
            vruntime: 4_000_000_001,
            switches: 7,
            prio: 139,
            wait_sum: 5,
            sum_exec: 6,
            sum_sleep: 7,
            sum_block: Some(8),
            eevdf: Some(EevdfColumns {
                eligible: false,
                deadline: 4_003_000_001,
                custom_slice: true,
                slice: 100_000,
            }),
            numa: Some((1, 3)),
            group_path: Some(b"/user.slice".to_vec()),
        },
    ];
    let sd = SchedDebug {
        header: Header {
            release: b"6.12.117-cloud-arm64".to_vec(),
            version: b"#1 SMP Debian 6.12.117-1".to_vec(),
            clocks: vec![
                Field::new("ktime", Fmt::Ns, 3_560_721_150),
                Field::new("sched_clk", Fmt::Ns, 3_538_251_435),
                Field::new("cpu_clk", Fmt::Ns, 3_521_630_164),
                Field::new("jiffies", Fmt::Ld, 4_294_893_186),
            ],
            sysctls: vec![
                Field::new("sysctl_sched_base_slice", Fmt::Ns, 3_000_000),
                Field::new("sysctl_sched_features", Fmt::Ld, 6_237_751),
            ],
            tunable_scaling: Some(1),
        },
        cpus: vec![CpuBlock {
            cpu: 0,
            khz: None,
            body: CpuBody::Present(Box::new(RqBlock {
                rq: vec![
                    Field::new("nr_running", Fmt::D, 1),
                    Field::new("curr->pid", Fmt::Ld, 4242),
                ],
                cfs: vec![cfs],
                rt: vec![rt],
                dl: vec![dl],
                tasks: TaskTable {
                    columns: TaskColumns::Eevdf {
                        numa: true,
                        cgroup: true,
                    },
                    rows,
                },
                problems: vec![],
            })),
        }],
        notes: vec![],
    };
    let expected = "\
Sched Debug Version: v0.11, 6.12.117-cloud-arm64 #1
ktime                                   : 3560.721150
sched_clk                               : 3538.251435
cpu_clk                                 : 3521.630164
jiffies                                 : 4294893186

sysctl_sched
  .sysctl_sched_base_slice                 : 3.000000
  .sysctl_sched_features                   : 6237751
  .sysctl_sched_tunable_scaling            : 1 (logarithmic)

cpu#0
  .nr_running                    : 1
  .curr->pid                     : 4242

cfs_rq[0]:/
  .left_deadline                 : 5123.456789
  .left_vruntime                 : 4000.000001
  .zero_vruntime                 : 4100.000000
  .avg_vruntime                  : 4100.000000
  .right_vruntime                : 0.000001
  .spread                        : -4000.000002
  .nr_running                    : 1
  .h_nr_runnable                 : 1
  .load                          : 1048576
  .util_est                      : 4294967295

rt_rq[0]:
  .rt_nr_running                 : 0

dl_rq[0]:
  .dl_nr_running                 : 0
  .dl_bw->bw                     : 996147
  .dl_bw->total_bw               : 0

runnable tasks:
 S            task   PID       vruntime   eligible    deadline             slice          sum-exec      switches  prio         wait-time        sum-sleep       sum-block  node   group-id  group-path
-----------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------
 S         systemd     1        12.345678   E          15.345678           3.000000       987.654321      1234     120         0.000000         1.000000         0.000002   0      0        /init.scope
>R a-very-long-nam  4242      4000.000001   N        4003.000001 S         0.100000         0.000006         7     139         0.000005         0.000007         0.000008   1      3        /user.slice

";
    let out = String::from_utf8(render(&sd, false)).unwrap();
    for (i, (a, b)) in out.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(out, expected);
}
