//! Page codecs of the kdump-compressed format, with output bounded by the page size.
//!
//! makedumpfile compresses each page on its own and stores it compressed only when that is smaller
//! than the page, so a stored page must decompress to exactly one page. Anything else (more, less,
//! trailing garbage) is reported as a decompression error; the output buffer is never larger than
//! a page plus one byte, so a hostile page cannot expand into a memory bomb.
//!
//! Codecs (`DUMP_DH_COMPRESSED_*` flags): zlib 0x1 (a zlib stream, `compress2`), lzo 0x2
//! (LZO1X-1, `lzo1x_1_compress`), snappy 0x4 (the raw snappy format, `snappy_compress`, not the
//! framed one), zstd 0x20 (one zstd frame, `ZSTD_compress`).

use crate::addr::Pfn;

use super::DumpError;

pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
pub const DUMP_DH_EXCLUDED_VMEMMAP: u32 = 0x10;
pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;

/// Every per-page compression flag.
pub const CODEC_MASK: u32 = DUMP_DH_COMPRESSED_ZLIB
    | DUMP_DH_COMPRESSED_LZO
    | DUMP_DH_COMPRESSED_SNAPPY
    | DUMP_DH_COMPRESSED_ZSTD;

/// A page codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Zlib,
    Lzo,
    Snappy,
    Zstd,
}

impl Codec {
    /// The codec a descriptor's (or the header status') flags name; `Ok(None)` for a raw page.
    pub fn from_flags(flags: u32) -> Result<Option<Codec>, u32> {
        match flags & CODEC_MASK {
            0 => Ok(None),
            DUMP_DH_COMPRESSED_ZLIB => Ok(Some(Codec::Zlib)),
            DUMP_DH_COMPRESSED_LZO => Ok(Some(Codec::Lzo)),
            DUMP_DH_COMPRESSED_SNAPPY => Ok(Some(Codec::Snappy)),
            DUMP_DH_COMPRESSED_ZSTD => Ok(Some(Codec::Zstd)),
            more => Err(more),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Zlib => "zlib",
            Codec::Lzo => "lzo",
            Codec::Snappy => "snappy",
            Codec::Zstd => "zstd",
        }
    }
}

thread_local! {
    // Contexts are reused per thread: allocating a zstd context per page costs more than the
    // decompression itself.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static ZLIB: std::cell::RefCell<Option<flate2::Decompress>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses one page of `page_size` bytes.
pub fn decompress(
    codec: Codec,
    input: &[u8],
    page_size: usize,
    pfn: Pfn,
) -> Result<Vec<u8>, DumpError> {
    let err = |what: String| DumpError::Decompress {
        pfn,
        codec: codec.name(),
        what,
    };
    // One spare byte detects output longer than a page without ever holding more.
    let mut out = vec![0u8; page_size + 1];
    let n = match codec {
        Codec::Zlib => ZLIB.with(|cell| {
            let mut slot = cell.borrow_mut();
            let z = slot.get_or_insert_with(|| flate2::Decompress::new(true));
            z.reset(true);
            let status = z
                .decompress(input, &mut out, flate2::FlushDecompress::Finish)
                .map_err(|e| err(e.to_string()))?;
            if status != flate2::Status::StreamEnd {
                return Err(err(format!(
                    "stream did not end within one page ({} of {} input bytes used, {} out)",
                    z.total_in(),
                    input.len(),
                    z.total_out()
                )));
            }
            Ok(z.total_out() as usize)
        })?,
        Codec::Lzo => {
            // lzo1x writes into an exact-size buffer and fails on any other length.
            lzo1x::decompress(input, &mut out[..page_size]).map_err(|e| err(e.to_string()))?;
            page_size
        }
        Codec::Snappy => {
            let len = snap::raw::decompress_len(input).map_err(|e| err(e.to_string()))?;
            if len != page_size {
                return Err(err(format!("header claims {len} bytes, not one page")));
            }
            snap::raw::Decoder::new()
                .decompress(input, &mut out[..page_size])
                .map_err(|e| err(e.to_string()))?
        }
        Codec::Zstd => ZSTD.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| err(e.to_string()))?);
            }
            match slot.as_mut() {
                Some(d) => d
                    .decompress_to_buffer(input, &mut out[..])
                    .map_err(|e| err(e.to_string())),
                None => Err(err("no zstd context".into())),
            }
        })?,
    };
    if n != page_size {
        return Err(err(format!(
            "page decompressed to {} bytes, expected {page_size}",
            if n > page_size {
                format!("more than {page_size}")
            } else {
                n.to_string()
            }
        )));
    }
    out.truncate(page_size);
    Ok(out)
}
