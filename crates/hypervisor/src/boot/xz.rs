//! Decoding of the `.xz` container as Linux's x86 build produces it for a
//! compressed kernel: LZMA2 behind the x86 BCJ filter, CRC32 check
//! (`scripts/xz_wrap.sh` in Linux). lzma-rs decodes the raw LZMA2 data but
//! knows no BCJ filter, so the container and the filter are handled here,
//! following the .xz file format specification (tukaani.org, xz-file-format).
//!
//! Only the first stream is decoded; anything after its footer (Linux
//! appends the uncompressed size) is ignored. Supported filter chains: LZMA2
//! alone, or x86 BCJ then LZMA2. Checks: none, CRC32, CRC64 (verified);
//! SHA-256 (skipped, not verified).

use std::io::{Cursor, Write};

/// Errors of [`decompress`].
#[derive(Debug, thiserror::Error)]
pub enum XzError {
    /// The data does not start with the xz stream header magic.
    #[error("not an xz stream")]
    BadMagic,
    /// The data ends inside a structure.
    #[error("xz data truncated in the {0}")]
    Truncated(&'static str),
    /// A header's CRC32 does not match.
    #[error("xz {0} CRC32 mismatch")]
    HeaderCrc(&'static str),
    /// A field has a value the format forbids or this decoder does not support.
    #[error("unsupported or invalid xz {0}")]
    Unsupported(&'static str),
    /// The LZMA2 data is corrupt.
    #[error("LZMA2 data of block {block} is corrupt: {reason}")]
    Lzma2 {
        /// Block index.
        block: usize,
        /// lzma-rs's description.
        reason: String,
    },
    /// The output would exceed the caller's limit.
    #[error("decompressed data exceeds {0} bytes")]
    TooLarge(usize),
    /// A size recorded in a block header does not match the data.
    #[error("xz block {0} size does not match its header")]
    SizeMismatch(usize),
    /// The integrity check of a block does not match its data.
    #[error("xz block {0} integrity check mismatch")]
    CheckMismatch(usize),
}

const MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
const FILTER_X86: u64 = 0x04;
const FILTER_LZMA2: u64 = 0x21;

const CHECK_NONE: u8 = 0;
const CHECK_CRC32: u8 = 1;
const CHECK_CRC64: u8 = 4;

/// Decompress the first xz stream of `input`, producing at most `limit` bytes.
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, XzError> {
    if input.len() < 12 {
        return Err(
            if input.starts_with(&MAGIC[..input.len().min(6)]) && input.len() >= 6 {
                XzError::Truncated("stream header")
            } else {
                XzError::BadMagic
            },
        );
    }
    if input[..6] != MAGIC {
        return Err(XzError::BadMagic);
    }
    if crc32(&input[6..8]) != le32(&input[8..12]) {
        return Err(XzError::HeaderCrc("stream header"));
    }
    if input[6] != 0 || input[7] & 0xf0 != 0 {
        return Err(XzError::Unsupported("stream flags"));
    }
    let check = input[7] & 0x0f;
    let check_len = check_size(check);

    let mut out = Vec::new();
    let mut pos = 12usize;
    let mut block = 0usize;
    loop {
        let first = *input.get(pos).ok_or(XzError::Truncated("block header"))?;
        if first == 0 {
            // Index indicator: no more blocks.
            break;
        }
        let hdr_len = (usize::from(first) + 1) * 4;
        let hdr = input
            .get(pos..pos + hdr_len)
            .ok_or(XzError::Truncated("block header"))?;
        if crc32(&hdr[..hdr_len - 4]) != le32(&hdr[hdr_len - 4..]) {
            return Err(XzError::HeaderCrc("block header"));
        }
        let header = parse_block_header(&hdr[..hdr_len - 4])?;

        let data_start = pos + hdr_len;
        let data = input
            .get(data_start..)
            .ok_or(XzError::Truncated("block data"))?;
        let room = limit.saturating_sub(out.len());
        let mut cursor = Cursor::new(data);
        let mut sink = LimitedVec {
            buf: Vec::new(),
            limit: room,
            hit_limit: false,
        };
        let res = lzma_rs::lzma2_decompress(&mut cursor, &mut sink);
        if sink.hit_limit {
            return Err(XzError::TooLarge(limit));
        }
        res.map_err(|e| XzError::Lzma2 {
            block,
            reason: e.to_string(),
        })?;
        let mut decoded = sink.buf;
        let packed = cursor.position() as usize;
        if header.compressed_size.is_some_and(|s| s != packed as u64)
            || header
                .uncompressed_size
                .is_some_and(|s| s != decoded.len() as u64)
        {
            return Err(XzError::SizeMismatch(block));
        }
        if let Some(start) = header.bcj_x86_start {
            bcj_x86_decode(&mut decoded, start);
        }

        // Block padding to a multiple of 4, then the check.
        let mut p = data_start + packed;
        while (p - pos) % 4 != 0 {
            if *input.get(p).ok_or(XzError::Truncated("block padding"))? != 0 {
                return Err(XzError::Unsupported("block padding"));
            }
            p += 1;
        }
        let stored = input
            .get(p..p + check_len)
            .ok_or(XzError::Truncated("block check"))?;
        let ok = match check {
            CHECK_NONE => true,
            CHECK_CRC32 => crc32(&decoded).to_le_bytes() == stored,
            CHECK_CRC64 => crc64(&decoded).to_le_bytes() == stored,
            _ => true, // SHA-256 and reserved ids: not verified.
        };
        if !ok {
            return Err(XzError::CheckMismatch(block));
        }
        out.extend_from_slice(&decoded);
        pos = p + check_len;
        block += 1;
    }
    if block == 0 {
        return Err(XzError::Unsupported("stream without blocks"));
    }
    Ok(out)
}

struct BlockHeader {
    compressed_size: Option<u64>,
    uncompressed_size: Option<u64>,
    bcj_x86_start: Option<u32>,
}

fn parse_block_header(h: &[u8]) -> Result<BlockHeader, XzError> {
    let flags = *h.get(1).ok_or(XzError::Truncated("block header"))?;
    if flags & 0x3c != 0 {
        return Err(XzError::Unsupported("block flags"));
    }
    let nfilters = usize::from(flags & 3) + 1;
    let mut p = 2usize;
    let compressed_size = (flags & 0x40 != 0).then(|| varint(h, &mut p)).transpose()?;
    let uncompressed_size = (flags & 0x80 != 0).then(|| varint(h, &mut p)).transpose()?;
    let mut bcj_x86_start = None;
    for i in 0..nfilters {
        let id = varint(h, &mut p)?;
        let props_len = usize::try_from(varint(h, &mut p)?)
            .map_err(|_| XzError::Unsupported("filter properties"))?;
        let props = h
            .get(p..p.saturating_add(props_len))
            .ok_or(XzError::Truncated("filter properties"))?;
        p += props_len;
        let last = i + 1 == nfilters;
        match (id, last) {
            (FILTER_LZMA2, true) if props.len() == 1 => {}
            (FILTER_X86, false) if props.is_empty() => bcj_x86_start = Some(0),
            (FILTER_X86, false) if props.len() == 4 => bcj_x86_start = Some(le32(props)),
            _ => return Err(XzError::Unsupported("filter chain")),
        }
    }
    if h[p.min(h.len())..].iter().any(|&b| b != 0) || p > h.len() {
        return Err(XzError::Unsupported("block header padding"));
    }
    Ok(BlockHeader {
        compressed_size,
        uncompressed_size,
        bcj_x86_start,
    })
}

/// A multibyte integer of the xz format: 7 bits per byte, at most 9 bytes.
fn varint(h: &[u8], p: &mut usize) -> Result<u64, XzError> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = *h.get(*p).ok_or(XzError::Truncated("block header"))?;
        *p += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(XzError::Unsupported("multibyte integer"));
            }
            return Ok(v);
        }
    }
    Err(XzError::Unsupported("multibyte integer"))
}

fn check_size(check: u8) -> usize {
    match check {
        0 => 0,
        1..=3 => 4,
        4..=6 => 8,
        7..=9 => 16,
        10..=12 => 32,
        _ => 64,
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// CRC-64 as xz uses it (ECMA-182 polynomial, reflected, inverted).
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0xc96c_5795_d787_0f42;
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u64;
    for &b in data {
        crc = table[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Undo the x86 BCJ filter in place. The encoder turned the relative
/// targets of CALL (E8) and JMP (E9) rel32 instructions into absolute ones
/// (position-dependent), to help compression; `start` is the filter's start
/// offset. A mask of recently seen, unconverted E8/E9 bytes decides which
/// candidates the encoder converted, so the decoder retraces the same choices.
pub fn bcj_x86_decode(buf: &mut [u8], start: u32) {
    // Indexed by the 3-bit history of E8/E9 bytes seen in the previous bytes.
    const ALLOWED: [bool; 8] = [true, true, true, false, true, false, false, false];
    const BYTE_INDEX: [u32; 8] = [0, 1, 2, 2, 3, 3, 3, 3];
    fn is_ms_byte(b: u8) -> bool {
        b == 0x00 || b == 0xff
    }
    if buf.len() < 5 {
        return;
    }
    let mut mask: u32 = 0;
    let mut prev_pos = start.wrapping_sub(5);
    let mut i = 0usize;
    while i + 5 <= buf.len() {
        if buf[i] != 0xe8 && buf[i] != 0xe9 {
            i += 1;
            continue;
        }
        let pos = start.wrapping_add(i as u32);
        let distance = pos.wrapping_sub(prev_pos);
        prev_pos = pos;
        if distance > 5 {
            mask = 0;
        } else {
            for _ in 0..distance {
                mask = (mask & 0x77) << 1;
            }
        }
        let top = buf[i + 4];
        if is_ms_byte(top) && ALLOWED[((mask >> 1) & 7) as usize] && (mask >> 1) < 0x10 {
            let mut src = le32(&buf[i + 1..i + 5]);
            let dest = loop {
                let dest = src.wrapping_sub(pos.wrapping_add(5));
                if mask == 0 {
                    break dest;
                }
                let shift = 24 - BYTE_INDEX[((mask >> 1) & 7) as usize] * 8;
                if !is_ms_byte((dest >> shift) as u8) {
                    break dest;
                }
                src = dest ^ ((1u32 << shift << 8).wrapping_sub(1));
            };
            // Sign-extend bit 24 into the top byte.
            let top = if dest & (1 << 24) != 0 { 0xff } else { 0x00 };
            buf[i + 1..i + 4].copy_from_slice(&dest.to_le_bytes()[..3]);
            buf[i + 4] = top;
            i += 5;
            mask = 0;
        } else {
            i += 1;
            mask |= 1;
            if is_ms_byte(top) {
                mask |= 0x10;
            }
        }
    }
}

/// A `Write` into a vector that refuses to grow past `limit`.
struct LimitedVec {
    buf: Vec<u8>,
    limit: usize,
    hit_limit: bool,
}

impl Write for LimitedVec {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.hit_limit = true;
            return Err(std::io::Error::other("decompression limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The data `testdata/bcj_x86.xz` holds: 16 KiB of x86-like bytes with
    /// many E8/E9 rel32 instructions, from a fixed LCG. The fixture was made
    /// once with xz 5.4 (`xz --format=xz --check=crc32 --x86
    /// --lzma2=preset=6`), the options Linux uses for x86 kernels.
    pub(crate) fn bcj_sample() -> Vec<u8> {
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let alpha = [0x48u8, 0x89, 0xc7, 0x31, 0xc0, 0x90];
        let mut out = Vec::new();
        while out.len() < 16384 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match x % 8 {
                0 => {
                    out.push(0xe8);
                    out.extend_from_slice(&(((x >> 8) & 0xffff) as u32).to_le_bytes());
                }
                1 => {
                    out.push(0xe9);
                    out.extend_from_slice(
                        &(0xffff_0000 | ((x >> 24) & 0xffff) as u32).to_le_bytes(),
                    );
                }
                _ => out.push(alpha[((x >> 60) % 6) as usize]),
            }
        }
        out.truncate(16384);
        out
    }

    const FIXTURE: &[u8] = include_bytes!("testdata/bcj_x86.xz");

    #[test]
    fn decodes_xz_utils_bcj_x86_stream() {
        let want = bcj_sample();
        let got = decompress(FIXTURE, 1 << 20).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "BCJ-decoded output differs from the original");
    }

    #[test]
    fn bcj_matters_for_the_fixture() {
        // Without the filter the LZMA2 payload is not the original data:
        // proves the fixture exercises the BCJ path.
        let want = bcj_sample();
        let mut raw = want.clone();
        bcj_x86_decode(&mut raw, 0);
        assert_ne!(raw, want);
    }

    #[test]
    fn bcj_single_call() {
        // An absolute target 0x10 at position 0 becomes relative 0x10 - 5.
        let mut b = [0xe8, 0x10, 0, 0, 0, 0x90];
        bcj_x86_decode(&mut b, 0);
        assert_eq!(b, [0xe8, 0x0b, 0, 0, 0, 0x90]);
        // With a start offset of 0x100 the position is 0x100.
        let mut b = [0xe8, 0x10, 0x01, 0, 0, 0x90];
        bcj_x86_decode(&mut b, 0x100);
        assert_eq!(b, [0xe8, 0x0b, 0, 0, 0, 0x90]);
        // A negative result keeps a sign-extended top byte.
        let mut b = [0xe9, 0x01, 0, 0, 0];
        bcj_x86_decode(&mut b, 0);
        assert_eq!(b, [0xe9, 0xfc, 0xff, 0xff, 0xff]);
        // Top byte neither 00 nor ff: not a converted instruction.
        let mut b = [0xe8, 1, 2, 3, 4, 5];
        bcj_x86_decode(&mut b, 0);
        assert_eq!(b, [0xe8, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn decodes_lzma_rs_stream_without_bcj() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &data[..], &mut xz).unwrap();
        // Trailing bytes after the stream (Linux appends the size) are ignored.
        xz.extend_from_slice(&(data.len() as u32).to_le_bytes());
        assert_eq!(decompress(&xz, 1 << 20).unwrap(), data);
    }

    #[test]
    fn limit_is_enforced() {
        assert!(matches!(
            decompress(FIXTURE, 1000),
            Err(XzError::TooLarge(1000))
        ));
    }

    #[test]
    fn corrupt_input_fails_cleanly() {
        assert!(matches!(decompress(b"", 100), Err(XzError::BadMagic)));
        assert!(matches!(
            decompress(b"not xz at all", 100),
            Err(XzError::BadMagic)
        ));
        assert!(matches!(
            decompress(&FIXTURE[..8], 100),
            Err(XzError::Truncated(_))
        ));
        // Every truncation and every single-byte corruption either decodes
        // to an error or (for bytes the format does not cover) to the same
        // data; none panics.
        let want = bcj_sample();
        for len in (0..FIXTURE.len()).step_by(97) {
            assert!(
                decompress(&FIXTURE[..len], 1 << 20).is_err(),
                "truncated at {len}"
            );
        }
        for at in (0..FIXTURE.len()).step_by(13) {
            let mut bad = FIXTURE.to_vec();
            bad[at] ^= 0x5a;
            if let Ok(got) = decompress(&bad, 1 << 20) {
                assert_eq!(got, want, "corruption at {at} went undetected");
            }
        }
    }

    #[test]
    fn crc64_known_value() {
        // CRC-64/XZ check value.
        assert_eq!(crc64(b"123456789"), 0x995d_c9bb_df19_39fa);
    }
}
