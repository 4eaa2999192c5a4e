//! The kernel log reader (src/kernel/printk.rs) on synthetic rings: the lockless ring from
//! VMCOREINFO alone and with the debug info filling gaps, a wrapped text ring (both wrap rules),
//! a descriptor in every state, the legacy `log_buf` ring with its wrap marker and dictionaries,
//! and corrupt rings (lengths past the end, ids out of range, an lpos that points backwards,
//! missing pages): bounded, recorded, never a panic. The rings are laid out by
//! tests/common/printk.rs, which emulates the kernel's writer; expected records are the
//! builder's own list.

mod common;

use common::fake_kernel::FakeKernel;
use common::printk::{Legacy, Prb, Rec, State, rec};
use vmcore_report::kernel::printk::{KernelLog, LogFormat, LogRecord, has_log, read_kernel_log};

const BASE: u64 = 0xffff_ffff_8200_0000;

fn read(k: &FakeKernel) -> KernelLog {
    read_kernel_log(k).expect("no error").expect("a log")
}

fn texts(log: &KernelLog) -> Vec<(Option<u64>, Vec<u8>)> {
    log.records
        .iter()
        .map(|r| (r.seq, r.text.clone()))
        .collect()
}

fn expected(live: &[(u64, Rec)]) -> Vec<(Option<u64>, Vec<u8>)> {
    live.iter()
        .map(|(s, r)| (Some(*s), r.text.clone()))
        .collect()
}

fn codes(log: &KernelLog) -> Vec<&'static str> {
    log.issues.iter().map(|i| i.code).collect()
}

#[test]
fn lockless_ring_from_vmcoreinfo_alone() {
    let mut p = Prb::new(4, 10);
    p.push(rec(b"Linux version 6.1.0", 0));
    let mut dev = rec(b"virtio_net virtio0 eth0: renamed", 1_234_567_891);
    dev.subsystem = b"virtio".to_vec();
    dev.device = b"+virtio:virtio0".to_vec();
    dev.level = 3;
    dev.caller = 0x8000_0001; // interrupt context on CPU 1
    p.push(dev);
    p.push(rec(b"line one\nline two", 2_000_000_000));
    p.push(rec(b"", 2_000_001_000));
    let mut user = rec(b"bytes \xff\xfe kept", 12_345_678_901_234);
    user.facility = 1;
    user.flags = 8; // LOG_CONT
    user.caller = 412;
    p.push(user);
    let mut k = FakeKernel::new();
    p.install(&mut k, BASE);
    let log = read(&k);
    assert_eq!(log.format, LogFormat::Lockless);
    assert_eq!(log.layout_from, "vmcoreinfo");
    assert_eq!(texts(&log), expected(&p.live()));
    assert_eq!(log.records.len(), 5);
    let r = &log.records[1];
    assert_eq!(
        r,
        &LogRecord {
            seq: Some(1),
            ts_nsec: 1_234_567_891,
            level: 3,
            facility: 0,
            flags: 2,
            caller_id: Some(0x8000_0001),
            text: b"virtio_net virtio0 eth0: renamed".to_vec(),
            subsystem: b"virtio".to_vec(),
            device: b"+virtio:virtio0".to_vec(),
            open: false,
        }
    );
    assert_eq!(r.caller().as_deref(), Some("C1"));
    let u = &log.records[4];
    assert_eq!((u.facility, u.flags, u.level), (1, 8, 6));
    assert_eq!(u.caller().as_deref(), Some("T412"));
    assert_eq!(u.text, b"bytes \xff\xfe kept");
    assert_eq!(log.records[3].text, b"");
    let st = log.states.clone().unwrap();
    // the bootstrap descriptor (DESC0_ID, reusable) is the tail until the ring fills
    assert_eq!((st.finalized, st.reusable, st.miss), (5, 1, 0));
    assert!(log.issues.is_empty(), "{:?}", log.issues);
    assert!(log.gaps.is_empty() && log.missing.is_empty());
    assert_eq!((log.first_seq(), log.last_seq()), (Some(0), Some(4)));
}

/// Texts of 24 bytes make 32-byte blocks, so every eighth block of a 256-byte ring ends exactly
/// at the end of the array: the old writer moves it to the start, the v6.19 one leaves it.
/// At least 45 records; with `until_wrapped`, more until the newest block is a wrapped one.
fn wrapped(
    no_needless_wrap: bool,
    lens: impl Fn(usize) -> usize,
    until_wrapped: bool,
) -> (Prb, KernelLog) {
    let mut p = Prb::new(3, 8);
    p.no_needless_wrap = no_needless_wrap;
    let size = p.size();
    for i in 0..200 {
        let mut t = format!("record {i:02} ").into_bytes();
        t.resize(lens(i), b'a' + (i % 26) as u8);
        p.push(rec(&t, i as u64 * 1000));
        let &(_, _, b, n, _) = p.pushed.last().unwrap();
        if i >= 44 && (!until_wrapped || b / size != (n - 1) / size) {
            break;
        }
    }
    let mut k = FakeKernel::new();
    p.install(&mut k, BASE);
    let log = read(&k);
    (p, log)
}

#[test]
fn a_wrapped_text_ring() {
    for no_needless in [false, true] {
        let (p, log) = wrapped(no_needless, |i| 10 + (i * 13) % 60, true);
        let live = p.live();
        assert!(live.len() >= 3, "{}", live.len());
        assert_eq!(
            texts(&log),
            expected(&live),
            "no_needless_wrap {no_needless}"
        );
        // the reader met a block the writer wrapped to the start of the array
        let size = p.size();
        let wrapped_live = p.pushed.iter().any(|&(id, _, b, n, _)| {
            live.iter()
                .any(|(s, _)| p.pushed.iter().any(|q| q.0 == id && q.1 == *s))
                && b & 1 == 0
                && (b / size) != ((n - 1) / size)
        });
        assert!(wrapped_live, "no wrapped block among the live records");
        // records pushed out are lost before the first: normal, not a gap
        assert_eq!(log.first_seq(), Some(live[0].0));
        assert!(log.first_seq().unwrap() > 0);
        assert_eq!(log.lost_inside(), 0);
        assert!(log.issues.is_empty(), "{:?}", log.issues);
    }
}

#[test]
fn blocks_ending_exactly_at_the_end_of_the_array() {
    for no_needless in [false, true] {
        let (p, log) = wrapped(no_needless, |_| 24, false);
        let live = p.live();
        assert_eq!(
            texts(&log),
            expected(&live),
            "no_needless_wrap {no_needless}"
        );
        let size = p.size();
        let exact = p.pushed.iter().any(|&(_, _, _, n, _)| n % size == 0);
        // the new writer leaves a block ending at the end where it is; the old one never does
        assert_eq!(exact, no_needless);
    }
}

#[test]
fn a_descriptor_in_every_state() {
    let mut p = Prb::new(4, 10);
    let ids: Vec<u64> = (0..8)
        .map(|i| p.push(rec(format!("r{i}").as_bytes(), i)))
        .collect();
    p.set_state(ids[1], State::Reserved);
    p.set_state(ids[2], State::Committed); // committed but not the newest: not shown
    p.set_state(ids[3], State::Reusable);
    // a miss: the slot holds another id
    p.poke_desc(ids[4], 0, (ids[4] + 16) | (State::Finalized as u64) << 62);
    p.set_state(ids[7], State::Committed); // the newest, still open: shown
    let mut k = FakeKernel::new();
    p.install(&mut k, BASE);
    let log = read(&k);
    let shown: Vec<Vec<u8>> = log.records.iter().map(|r| r.text.clone()).collect();
    assert_eq!(
        shown,
        vec![
            b"r0".to_vec(),
            b"r5".to_vec(),
            b"r6".to_vec(),
            b"r7".to_vec()
        ]
    );
    assert!(log.records[3].open && !log.records[2].open);
    let st = log.states.clone().unwrap();
    assert_eq!(
        (
            st.reserved,
            st.committed,
            st.finalized,
            st.reusable,
            st.miss
        ),
        (1, 2, 3, 2, 1)
    );
    // seq 1..4 are missing inside the range: a gap, reported
    assert_eq!(log.gaps.len(), 1);
    assert_eq!((log.gaps[0].after, log.gaps[0].before), (0, 5));
    assert_eq!(log.lost_inside(), 4);
    let c = codes(&log);
    assert!(c.contains(&"committed") && c.contains(&"reserved"), "{c:?}");
}

#[test]
fn debug_info_fills_what_vmcoreinfo_lacks() {
    let mut p = Prb::new(4, 10);
    p.push(rec(b"hello", 5));
    let mut k = FakeKernel::new();
    p.install(&mut k, BASE);
    for key in [
        "OFFSET(printk_info.caller_id)",
        "SIZE(prb_desc)",
        "OFFSET(prb_data_ring.data)",
    ] {
        k.vmcoreinfo.remove(key);
    }
    let missing = read_kernel_log(&k).unwrap_err();
    assert_eq!(missing.code, "no-printk-layout");
    assert!(missing.what.contains("SIZE(prb_desc)"), "{}", missing.what);
    assert!(
        missing.what.contains("OFFSET(prb_data_ring.data)"),
        "{}",
        missing.what
    );
    k.type_sizes.insert("struct prb_desc".into(), 24);
    k.offsets
        .insert(("struct prb_data_ring".into(), "data".into()), 8);
    k.offsets
        .insert(("struct printk_info".into(), "caller_id".into()), 20);
    let log = read(&k);
    assert_eq!(log.layout_from, "vmcoreinfo+debuginfo");
    assert_eq!(texts(&log), vec![(Some(0), b"hello".to_vec())]);
    assert_eq!(log.records[0].caller_id, Some(1));
}

/// Builds a ring of 8 records in a 16-descriptor, 1 KiB ring, lets `spoil` damage it, reads it.
fn spoiled(spoil: impl Fn(&mut Prb, &[u64])) -> KernelLog {
    let mut p = Prb::new(4, 10);
    let ids: Vec<u64> = (0..8)
        .map(|i| p.push(rec(format!("record {i}").as_bytes(), i)))
        .collect();
    spoil(&mut p, &ids);
    let mut k = FakeKernel::new();
    p.install(&mut k, BASE);
    read(&k)
}

#[test]
fn text_len_past_the_block_is_truncated_and_recorded() {
    let log = spoiled(|p, ids| p.poke_text_len(ids[2], 1000));
    // the 8-byte text fills its 16-byte block after the id word: nothing more to take
    assert_eq!(log.records[2].text, b"record 2");
    assert_eq!(log.records.len(), 8);
    assert!(
        log.issues
            .iter()
            .any(|i| i.code == "corrupt-data" && i.what.contains("text_len 1000"))
    );
}

#[test]
fn an_lpos_pointing_backwards_is_corrupt() {
    let log = spoiled(|p, ids| {
        let begin = p.pushed[3].2;
        p.poke_desc(ids[3], 2, begin.wrapping_sub(64));
    });
    assert_eq!(log.records.len(), 7);
    assert!(!log.records.iter().any(|r| r.text == b"record 3"));
    assert!(codes(&log).contains(&"corrupt-data"));
    assert_eq!(log.lost_inside(), 1);
}

#[test]
fn ids_out_of_range_are_bounded() {
    // the head far ahead of the tail: only the last `count` ids are looked at
    let log = spoiled(|p, _| p.head_id = p.tail_id + 1_000_000);
    assert!(log.records.len() <= 16);
    assert!(
        log.issues
            .iter()
            .any(|i| i.what.contains("more than the ring's 16"))
    );
    // a data block owned by another descriptor (overwritten)
    let log = spoiled(|p, ids| {
        let begin = p.pushed[5].2;
        let idx = (begin & (p.size() - 1)) as usize;
        p.data[idx..idx + 8].copy_from_slice(&(ids[5] + 3).to_le_bytes());
    });
    assert!(!log.records.iter().any(|r| r.text == b"record 5"));
    assert!(
        log.issues
            .iter()
            .any(|i| i.what.contains("belongs to descriptor"))
    );
    // a sequence number that does not belong to its slot
    let log = spoiled(|p, ids| {
        let o = ((ids[6] & 15) * 88) as usize;
        p.infos[o..o + 8].copy_from_slice(&999u64.to_le_bytes());
    });
    assert!(!log.records.iter().any(|r| r.text == b"record 6"));
    assert!(log.issues.iter().any(|i| i.what.contains("999")));
}

#[test]
fn impossible_ring_sizes_are_refused() {
    for (cb, sb) in [(40u32, 10u32), (4, 2), (4, 60)] {
        let log = spoiled(|p, _| {
            p.count_bits = cb;
            p.size_bits = sb;
        });
        assert!(log.records.is_empty());
        assert!(codes(&log).contains(&"corrupt-data"), "{cb} {sb}");
    }
}

#[test]
fn a_missing_page_is_reported_with_its_address() {
    // 256 descriptors of 24 bytes: 6 KiB, two pages; the second is not in the dump
    let mut p = Prb::new(8, 14);
    for i in 0..250 {
        p.push(rec(format!("r{i}").as_bytes(), i));
    }
    let mut k = FakeKernel::new();
    let a = p.install(&mut k, BASE);
    k.memory.insert(a.descs, p.descs[..4096].to_vec());
    let log = read(&k);
    // descriptors 0..170 are on the first page (4096 / 24), the rest unreadable, and so is the
    // bootstrap descriptor in the last slot, still the tail
    assert_eq!(log.records.len(), 4096 / 24);
    assert_eq!(log.missing, vec![(a.descs + 4096, 4096)]);
    assert_eq!(log.states.clone().unwrap().unreadable, 250 - 4096 / 24 + 1);
    assert!(codes(&log).contains(&"not-dumped"));
}

#[test]
fn a_null_prb_is_an_error() {
    let mut p = Prb::new(4, 10);
    p.push(rec(b"x", 0));
    let mut k = FakeKernel::new();
    let a = p.install(&mut k, BASE);
    k.memory.insert(a.prb, vec![0; 8]);
    assert_eq!(read_kernel_log(&k).unwrap_err().code, "corrupt-data");
    assert!(has_log(&k));
    // no ring at all: nothing to read, and the plugin does not apply
    assert!(read_kernel_log(&FakeKernel::new()).unwrap().is_none());
    assert!(!has_log(&FakeKernel::new()));
}

// ---- legacy -----------------------------------------------------------------------------------

fn legacy_ring(with_caller: bool) -> (Legacy, KernelLog) {
    let mut l = Legacy::new(512, with_caller);
    for i in 0..40u64 {
        let mut r = rec(
            format!("legacy {i} {}", "z".repeat((i * 7 % 30) as usize)).as_bytes(),
            i * 10,
        );
        r.level = (i % 8) as u8;
        r.caller = 100 + i as u32;
        let dict: &[u8] = if i % 3 == 0 {
            b"SUBSYSTEM=pci\0DEVICE=+pci:0000:00:01.0"
        } else {
            b""
        };
        l.push(r, dict);
    }
    let mut k = FakeKernel::new();
    l.install(&mut k, BASE);
    let log = read(&k);
    (l, log)
}

#[test]
fn legacy_ring_wraps_and_reads_dictionaries() {
    let (l, log) = legacy_ring(false);
    assert!(l.next_idx < l.first_idx, "the buffer wrapped");
    assert_eq!(log.format, LogFormat::Legacy);
    assert_eq!(log.layout_from, "vmcoreinfo");
    let want: Vec<(Option<u64>, Vec<u8>)> = l
        .live
        .iter()
        .map(|(s, _, r)| (Some(*s), r.text.clone()))
        .collect();
    assert_eq!(texts(&log), want);
    assert!(l.first_seq > 0);
    for (got, (seq, _, r)) in log.records.iter().zip(&l.live) {
        assert_eq!(
            (got.ts_nsec, got.level, got.caller_id),
            (r.ts, r.level, None)
        );
        let (sub, dev): (&[u8], &[u8]) = if seq % 3 == 0 {
            (b"pci", b"+pci:0000:00:01.0")
        } else {
            (b"", b"")
        };
        assert_eq!(
            (got.subsystem.as_slice(), got.device.as_slice()),
            (sub, dev)
        );
    }
    assert!(log.issues.is_empty(), "{:?}", log.issues);
}

#[test]
fn legacy_caller_id_from_a_20_byte_header() {
    let (l, log) = legacy_ring(true);
    assert_eq!(texts(&log).len(), l.live.len());
    for (got, (_, _, r)) in log.records.iter().zip(&l.live) {
        assert_eq!(got.caller_id, Some(r.caller));
    }
}

#[test]
fn legacy_corruption_is_bounded() {
    // a record length past the end of the buffer
    let mut l = Legacy::new(512, false);
    for i in 0..5 {
        l.push(rec(format!("ok {i}").as_bytes(), i), b"");
    }
    let third = l.live[2].1 as usize;
    l.buf[third + 8..third + 10].copy_from_slice(&4000u16.to_le_bytes());
    let mut k = FakeKernel::new();
    l.install(&mut k, BASE);
    let log = read(&k);
    assert_eq!(log.records.len(), 2);
    assert!(codes(&log).contains(&"corrupt-data"));
    // a wrap marker where none can be (before log_next_idx), and text_len beyond len
    let mut l = Legacy::new(512, false);
    for i in 0..5 {
        l.push(rec(format!("ok {i}").as_bytes(), i), b"");
    }
    let second = l.live[1].1 as usize;
    l.buf[second + 10..second + 12].copy_from_slice(&300u16.to_le_bytes());
    let fourth = l.live[3].1 as usize;
    l.buf[fourth + 8..fourth + 10].copy_from_slice(&0u16.to_le_bytes());
    let mut k = FakeKernel::new();
    l.install(&mut k, BASE);
    let log = read(&k);
    assert_eq!(log.records.len(), 3);
    assert!(log.records[1].text.starts_with(b"ok 1"));
    assert!(log.issues.iter().any(|i| i.what.contains("truncated")));
    assert!(log.issues.iter().any(|i| i.what.contains("wrap marker")));
}

/// Writes the fuzz target's seeds (`fuzz/corpus/printk/seed-*`) from the builders: a wrapped
/// lockless ring in the target's "placed" layout and a wrapped legacy buffer.
/// `cargo test --test printk_synth -- --ignored write_fuzz_seeds`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/printk");
    std::fs::create_dir_all(&dir).unwrap();
    // lockless: mode byte (count_bits 3 in bits 2-4, size_bits 8 = 6 + 2 in bits 5-7), then
    // the 128-byte header region, descs, infos, text
    let (p, _) = wrapped(false, |i| 10 + (i * 13) % 60, true);
    let mut seed = vec![3 << 2 | 2 << 5];
    let mut hdr = vec![0u8; 128];
    hdr[24..32].copy_from_slice(&p.head_id.to_le_bytes());
    hdr[32..40].copy_from_slice(&p.tail_id.to_le_bytes());
    hdr[64..72].copy_from_slice(&p.head_lpos.to_le_bytes());
    hdr[72..80].copy_from_slice(&p.tail_lpos.to_le_bytes());
    seed.extend(hdr);
    seed.extend(&p.descs);
    seed.extend(&p.infos);
    seed.extend(&p.data);
    std::fs::write(dir.join("seed-lockless"), seed).unwrap();
    // legacy: mode 2 with a 512-byte buffer ((512 / 64 - 1) << 2), variables, the buffer
    let (l, _) = legacy_ring(true);
    let mut seed = vec![2 | 7 << 2 | 4];
    let mut vars = vec![0u8; 64];
    vars[16..20].copy_from_slice(&(l.first_idx as u32).to_le_bytes());
    vars[24..28].copy_from_slice(&(l.next_idx as u32).to_le_bytes());
    seed.extend(vars);
    seed.extend(&l.buf);
    std::fs::write(dir.join("seed-legacy"), seed).unwrap();
}
