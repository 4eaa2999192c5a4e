//! The kallsyms decoder over tables built here byte by byte from the layout scripts/kallsyms.c
//! writes (independent of the decoder): each address encoding, chosen by `_stext`; the 6.1+
//! two-byte name lengths; hostile counts and tables; and the fuzz target's seeds
//! (`cargo test --release --test kallsyms_synth -- --ignored write_fuzz_seeds`).

use vmcore_report::addr::Endian;
use vmcore_report::debuginfo::kallsyms::{AddressEncoding, KallsymsError, KallsymsTables, decode};

const BASE: u64 = 0xffff_ffff_8200_0000;
/// Where each table sits in the memory image (the fuzz target's header names the same).
const NUM: usize = 0x40;
const TOKEN_INDEX: usize = 0x80;
const TOKEN_TABLE: usize = 0x300;
const OFFSETS: usize = 0x800;
const REL_BASE: usize = 0x900;
const NAMES: usize = 0xa00;
const SIZE: usize = 0x1000;

/// Token `i` is the single byte `i` (token 0 is empty): a name is stored as its own bytes.
fn token_tables(mem: &mut [u8]) {
    let mut at = 0usize;
    for i in 0..256usize {
        mem[TOKEN_INDEX + 2 * i..TOKEN_INDEX + 2 * i + 2]
            .copy_from_slice(&(at as u16).to_le_bytes());
        if i > 0 {
            mem[TOKEN_TABLE + at] = i as u8;
            at += 1;
        }
        mem[TOKEN_TABLE + at] = 0;
        at += 1;
    }
}

/// Names as `len, type+name` (two-byte ULEB128 lengths when `long` and the name is long).
fn names(mem: &mut [u8], syms: &[(u8, &str)], long: bool) {
    let mut at = NAMES;
    for (kind, name) in syms {
        let len = name.len() + 1;
        if len >= 0x80 {
            assert!(long);
            mem[at] = (len as u8 & 0x7f) | 0x80;
            mem[at + 1] = (len >> 7) as u8;
            at += 2;
        } else {
            mem[at] = len as u8;
            at += 1;
        }
        mem[at] = *kind;
        mem[at + 1..at + len].copy_from_slice(name.as_bytes());
        at += len;
    }
}

struct Image {
    mem: Vec<u8>,
    tables: KallsymsTables,
}

/// Three symbols (`_stext`, `panic`, and `third`, a per-CPU one when `percpu`), their addresses
/// written in `enc`.
fn image(enc: AddressEncoding, third: &str, long: bool) -> (Image, Vec<u64>) {
    let mut mem = vec![0u8; SIZE];
    token_tables(&mut mem);
    let syms: [(u8, &str); 3] = [(b'T', "_stext"), (b'T', "panic"), (b'A', third)];
    names(&mut mem, &syms, long);
    mem[NUM..NUM + 4].copy_from_slice(&3u32.to_le_bytes());
    let rel_base = 0xffff_ffff_8100_0000u64;
    let mut addrs = vec![rel_base, rel_base + 0x1234, rel_base + 0x2000];
    let mut tables = KallsymsTables {
        num_syms: BASE + NUM as u64,
        names: BASE + NAMES as u64,
        token_table: BASE + TOKEN_TABLE as u64,
        token_index: BASE + TOKEN_INDEX as u64,
        offsets: Some(BASE + OFFSETS as u64),
        relative_base: Some(BASE + REL_BASE as u64),
        addresses: None,
    };
    let put32 = |mem: &mut Vec<u8>, i: usize, v: u32| {
        mem[OFFSETS + 4 * i..OFFSETS + 4 * i + 4].copy_from_slice(&v.to_le_bytes())
    };
    mem[REL_BASE..REL_BASE + 8].copy_from_slice(&rel_base.to_le_bytes());
    match enc {
        AddressEncoding::BaseRelative => {
            for (i, a) in addrs.iter().enumerate() {
                put32(&mut mem, i, (a - rel_base) as u32);
            }
        }
        AddressEncoding::AbsolutePercpu => {
            // kernel symbols as -1 - (addr - base); the per-CPU one as its own small value
            addrs[2] = 0x1b000;
            for (i, a) in addrs.iter().enumerate() {
                let v: i32 = if i == 2 {
                    *a as i32
                } else {
                    -1 - (a - rel_base) as i32
                };
                put32(&mut mem, i, v as u32);
            }
        }
        AddressEncoding::PlaceRelative => {
            tables.relative_base = None;
            for (i, a) in addrs.iter().enumerate() {
                let slot = BASE + (OFFSETS + 4 * i) as u64;
                put32(&mut mem, i, a.wrapping_sub(slot) as u32);
            }
        }
        AddressEncoding::Absolute => {
            tables.offsets = None;
            tables.relative_base = None;
            tables.addresses = Some(BASE + OFFSETS as u64);
            for (i, a) in addrs.iter().enumerate() {
                mem[OFFSETS + 8 * i..OFFSETS + 8 * i + 8].copy_from_slice(&a.to_le_bytes());
            }
        }
    }
    (Image { mem, tables }, addrs)
}

fn run(
    img: &Image,
    stext: u64,
) -> Result<vmcore_report::debuginfo::kallsyms::Kallsyms, KallsymsError> {
    let read = |addr: u64, len: usize| -> Result<Vec<u8>, String> {
        let off = addr.checked_sub(BASE).ok_or("below the image")? as usize;
        img.mem
            .get(off..off.checked_add(len).ok_or("overflow")?)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("{addr:#x}+{len} past the image"))
    };
    decode(&img.tables, &read, Endian::Little, stext)
}

#[test]
fn every_address_encoding_is_found_by_stext() {
    for enc in [
        AddressEncoding::BaseRelative,
        AddressEncoding::AbsolutePercpu,
        AddressEncoding::PlaceRelative,
        AddressEncoding::Absolute,
    ] {
        let (img, addrs) = image(enc, "runqueues", false);
        let k = run(&img, addrs[0]).unwrap_or_else(|e| panic!("{enc:?}: {e}"));
        assert_eq!(k.encoding, enc);
        let got: Vec<(&str, u64, u8)> = k
            .symbols
            .iter()
            .map(|s| (s.name.as_str(), s.address, s.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("_stext", addrs[0], b'T'),
                ("panic", addrs[1], b'T'),
                ("runqueues", addrs[2], b'A')
            ],
            "{enc:?}"
        );
        // sizes: the distance to the next higher address
        assert_eq!(k.symbols[0].size, 0x1234, "{enc:?}");
    }
}

#[test]
fn a_wrong_stext_is_refused_not_guessed() {
    let (img, addrs) = image(AddressEncoding::BaseRelative, "runqueues", false);
    assert!(matches!(
        run(&img, addrs[0] + 0x10),
        Err(KallsymsError::NoEncoding { .. })
    ));
}

#[test]
fn long_names_use_two_length_bytes() {
    let long = "x".repeat(200);
    let (img, addrs) = image(AddressEncoding::BaseRelative, &long, true);
    let k = run(&img, addrs[0]).unwrap();
    assert!(k.long_lengths);
    assert_eq!(k.symbols[2].name, long);
}

#[test]
fn hostile_counts_and_tables_are_errors() {
    let (mut img, addrs) = image(AddressEncoding::BaseRelative, "runqueues", false);
    img.mem[NUM..NUM + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        run(&img, addrs[0]),
        Err(KallsymsError::Corrupt(_))
    ));
    // more symbols than the names hold: the walk runs off the image and says where
    img.mem[NUM..NUM + 4].copy_from_slice(&4000u32.to_le_bytes());
    assert!(run(&img, addrs[0]).is_err());
    // a token index that does not start at 0
    let (mut img, addrs) = image(AddressEncoding::BaseRelative, "runqueues", false);
    img.mem[TOKEN_INDEX] = 7;
    assert!(matches!(
        run(&img, addrs[0]),
        Err(KallsymsError::Corrupt(_))
    ));
}

/// The fuzz target's seeds: a header (`fuzz/fuzz_targets/kallsyms.rs`) then the image.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kallsyms");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, enc) in [
        AddressEncoding::BaseRelative,
        AddressEncoding::AbsolutePercpu,
        AddressEncoding::PlaceRelative,
        AddressEncoding::Absolute,
    ]
    .into_iter()
    .enumerate()
    {
        let (img, addrs) = image(
            enc,
            if i == 0 {
                "x".repeat(200)
            } else {
                "runqueues".into()
            }
            .as_str(),
            i == 0,
        );
        let mut seed = Vec::new();
        let mode: u8 = match enc {
            AddressEncoding::Absolute => 1,
            AddressEncoding::PlaceRelative => 2,
            _ => 0,
        };
        seed.push(mode);
        seed.extend_from_slice(&addrs[0].to_le_bytes());
        seed.extend_from_slice(&img.mem);
        std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
    }
}
