//! Getting an ELF `vmlinux` out of a kernel file.
//!
//! A kernel file is either the ELF image itself or a bzImage (the x86 Linux
//! boot protocol, Documentation/arch/x86/boot.rst in Linux) whose protected
//! mode payload is the same ELF image, compressed. From boot protocol 2.08
//! the setup header says where the payload is: `setup_sects` (0x1f1, 0 means
//! 4) sectors of setup code follow the boot sector, and the protected-mode
//! code starts after them; `payload_offset` (0x248) is relative to that
//! start, `payload_length` (0x24c) its size. The payload's magic tells the
//! compression: gzip, xz (Debian's 6.1 kernels), zstd (Debian's 6.12), or an
//! uncompressed ELF.

use std::borrow::Cow;
use std::io::Read;

/// Errors of [`extract_vmlinux`].
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Neither an ELF image nor a bzImage.
    #[error("the kernel is neither an ELF image nor a bzImage")]
    UnknownFormat,
    /// A bzImage older than boot protocol 2.08 has no payload fields.
    #[error("bzImage boot protocol {0:#x} is older than 2.08 (no payload fields)")]
    OldProtocol(u16),
    /// The payload fields point outside the file.
    #[error(
        "bzImage payload (offset {offset:#x}, length {length:#x}) lies outside the {file_len}-byte file"
    )]
    PayloadOutOfBounds {
        /// Absolute payload offset.
        offset: u64,
        /// Payload length.
        length: u64,
        /// File length.
        file_len: usize,
    },
    /// The payload's compression is not one rxen decodes.
    #[error("bzImage payload compression {0} is not supported (gzip, xz, zstd are)")]
    UnsupportedCompression(&'static str),
    /// Decompressing the payload failed.
    #[error("decompressing the {compression} bzImage payload failed")]
    Decompress {
        /// The compression.
        compression: Compression,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Setting up the xz decoder failed.
    #[error("setting up the xz decoder failed")]
    XzDecoder(#[source] liblzma::stream::Error),
    /// The decompressed payload is larger than allowed.
    #[error("the decompressed kernel exceeds {0} bytes")]
    TooLarge(usize),
    /// The payload did not decompress to an ELF image.
    #[error("the bzImage payload ({0}) is not an ELF image")]
    PayloadNotElf(Compression),
}

/// Compression of a bzImage payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// The payload is the ELF image itself.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// xz (with the x86 BCJ filter, as Linux builds it; decoded by liblzma).
    Xz,
    /// Zstandard.
    Zstd,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        })
    }
}

/// What the kernel file was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF image given directly.
    Elf,
    /// A bzImage.
    BzImage {
        /// Boot protocol version (e.g. 0x020f).
        protocol: u16,
        /// The payload's compression.
        compression: Compression,
        /// Absolute offset of the payload in the file.
        payload_offset: u64,
        /// Length of the payload.
        payload_length: u64,
    },
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
/// Most memory the xz decoder may use (its dictionary): Linux builds its
/// payload with a 32 MiB dictionary at most (`scripts/xz_wrap.sh`).
const XZ_MEMLIMIT: u64 = 256 << 20;
const HDR_SETUP_SECTS: usize = 0x1f1;
const HDR_BOOT_FLAG: usize = 0x1fe;
const HDR_MAGIC: usize = 0x202;
const HDR_VERSION: usize = 0x206;
const HDR_PAYLOAD_OFFSET: usize = 0x248;
const HDR_PAYLOAD_LENGTH: usize = 0x24c;

fn rd16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn rd32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Inspect a kernel file without decompressing anything.
pub fn identify(image: &[u8]) -> Result<KernelFormat, KernelError> {
    if image.starts_with(ELF_MAGIC) {
        return Ok(KernelFormat::Elf);
    }
    if rd16(image, HDR_BOOT_FLAG) != Some(0xaa55)
        || image.get(HDR_MAGIC..HDR_MAGIC + 4) != Some(b"HdrS")
    {
        return Err(KernelError::UnknownFormat);
    }
    let protocol = rd16(image, HDR_VERSION).ok_or(KernelError::UnknownFormat)?;
    if protocol < 0x0208 {
        return Err(KernelError::OldProtocol(protocol));
    }
    let setup_sects = match image[HDR_SETUP_SECTS] {
        0 => 4,
        n => u64::from(n),
    };
    let pm_start = (setup_sects + 1) * 512;
    let rel = u64::from(rd32(image, HDR_PAYLOAD_OFFSET).ok_or(KernelError::UnknownFormat)?);
    let payload_length =
        u64::from(rd32(image, HDR_PAYLOAD_LENGTH).ok_or(KernelError::UnknownFormat)?);
    let payload_offset = pm_start + rel;
    if payload_length == 0 || payload_offset + payload_length > image.len() as u64 {
        return Err(KernelError::PayloadOutOfBounds {
            offset: payload_offset,
            length: payload_length,
            file_len: image.len(),
        });
    }
    let payload = &image[payload_offset as usize..(payload_offset + payload_length) as usize];
    let compression = detect_compression(payload)?;
    Ok(KernelFormat::BzImage {
        protocol,
        compression,
        payload_offset,
        payload_length,
    })
}

fn detect_compression(p: &[u8]) -> Result<Compression, KernelError> {
    Ok(if p.starts_with(ELF_MAGIC) {
        Compression::None
    } else if p.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if p.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if p.starts_with(b"BZh") {
        return Err(KernelError::UnsupportedCompression("bzip2"));
    } else if p.starts_with(&[0x5d, 0x00]) {
        return Err(KernelError::UnsupportedCompression("lzma"));
    } else if p.starts_with(&[0x89, b'L', b'Z', b'O']) {
        return Err(KernelError::UnsupportedCompression("lzo"));
    } else if p.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        return Err(KernelError::UnsupportedCompression("lz4"));
    } else {
        return Err(KernelError::UnsupportedCompression("unknown"));
    })
}

/// The ELF image inside `image` (borrowed if `image` already is one),
/// decompressing at most `limit` bytes, and what the file was.
pub fn extract_vmlinux(
    image: &[u8],
    limit: usize,
) -> Result<(Cow<'_, [u8]>, KernelFormat), KernelError> {
    let format = identify(image)?;
    let KernelFormat::BzImage {
        compression,
        payload_offset,
        payload_length,
        ..
    } = format
    else {
        return Ok((Cow::Borrowed(image), format));
    };
    let payload = &image[payload_offset as usize..(payload_offset + payload_length) as usize];
    let elf: Cow<'_, [u8]> = match compression {
        Compression::None => Cow::Borrowed(payload),
        Compression::Xz => {
            // One stream (Linux appends the uncompressed size after it),
            // with the decoder's memory bounded like its output.
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(KernelError::XzDecoder)?;
            let dec = liblzma::read::XzDecoder::new_stream(payload, stream);
            Cow::Owned(read_limited(dec, limit, compression)?)
        }
        Compression::Gzip => Cow::Owned(read_limited(
            flate2::read::GzDecoder::new(payload),
            limit,
            compression,
        )?),
        Compression::Zstd => {
            // Kernels are built with `zstd -22 --ultra`: windows up to 128 MiB.
            let dec =
                ruzstd::decoding::StreamingDecoder::new_with_max_window_size(payload, 1 << 28)
                    .map_err(|e| KernelError::Decompress {
                        compression,
                        source: std::io::Error::other(e),
                    })?;
            Cow::Owned(read_limited(dec, limit, compression)?)
        }
    };
    if !elf.starts_with(ELF_MAGIC) {
        return Err(KernelError::PayloadNotElf(compression));
    }
    Ok((elf, format))
}

fn read_limited<R: Read>(
    r: R,
    limit: usize,
    compression: Compression,
) -> Result<Vec<u8>, KernelError> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| KernelError::Decompress {
            compression,
            source,
        })?;
    if out.len() > limit {
        return Err(KernelError::TooLarge(limit));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Wrap `payload` in a minimal bzImage: a boot sector and `setup_sects`
    /// setup sectors with a protocol-2.15 header, then `gap` bytes, then the
    /// payload (payload_offset = gap).
    pub(crate) fn make_bzimage(payload: &[u8], setup_sects: u8, gap: usize) -> Vec<u8> {
        let sects = if setup_sects == 0 {
            4
        } else {
            usize::from(setup_sects)
        };
        let pm_start = (sects + 1) * 512;
        let mut img = vec![0u8; pm_start + gap];
        img[HDR_SETUP_SECTS] = setup_sects;
        img[HDR_BOOT_FLAG..HDR_BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        img[HDR_MAGIC..HDR_MAGIC + 4].copy_from_slice(b"HdrS");
        img[HDR_VERSION..HDR_VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        img[HDR_PAYLOAD_OFFSET..HDR_PAYLOAD_OFFSET + 4]
            .copy_from_slice(&(gap as u32).to_le_bytes());
        img[HDR_PAYLOAD_LENGTH..HDR_PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(payload);
        // Linux's decompressor stub and appended size follow the payload.
        img.extend_from_slice(&[0xcc; 64]);
        img
    }

    fn fake_elf() -> Vec<u8> {
        let mut v = ELF_MAGIC.to_vec();
        v.extend((0..100_000u32).map(|i| (i % 13) as u8));
        v
    }

    /// `data` compressed the way Linux's x86 build compresses its payload
    /// (`scripts/xz_wrap.sh`): the x86 BCJ filter, then LZMA2, CRC32 check.
    pub(crate) fn xz_bcj(data: &[u8]) -> Vec<u8> {
        use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
        let mut filters = Filters::new();
        filters
            .x86()
            .lzma2(&LzmaOptions::new_preset(6).expect("preset 6"));
        let stream = Stream::new_stream_encoder(&filters, Check::Crc32).expect("xz encoder");
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new_stream(data, stream)
            .read_to_end(&mut out)
            .expect("xz encode");
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn elf_is_passed_through() {
        let elf = fake_elf();
        let (out, fmt) = extract_vmlinux(&elf, 1 << 20).unwrap();
        assert_eq!(fmt, KernelFormat::Elf);
        assert!(matches!(out, Cow::Borrowed(_)));
    }

    #[test]
    fn bzimage_with_each_compression() {
        let elf = fake_elf();
        let xz = xz_bcj(&elf);
        let zst = ruzstd::encoding::compress_to_vec(
            &elf[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (payload, want) in [
            (elf.clone(), Compression::None),
            (gzip(&elf), Compression::Gzip),
            (xz, Compression::Xz),
            (zst, Compression::Zstd),
        ] {
            for (sects, gap) in [(0u8, 0usize), (27, 0x3d2)] {
                let img = make_bzimage(&payload, sects, gap);
                let (out, fmt) = extract_vmlinux(&img, 1 << 20).unwrap();
                match fmt {
                    KernelFormat::BzImage {
                        compression,
                        protocol,
                        payload_length,
                        ..
                    } => {
                        assert_eq!(compression, want);
                        assert_eq!(protocol, 0x020f);
                        assert_eq!(payload_length, payload.len() as u64);
                    }
                    KernelFormat::Elf => panic!("not identified as bzImage"),
                }
                assert!(out[..] == elf[..], "{want} payload decoded wrongly");
            }
        }
    }

    #[test]
    fn limits_and_bad_headers() {
        let elf = fake_elf();
        let img = make_bzimage(&gzip(&elf), 4, 0);
        assert!(matches!(
            extract_vmlinux(&img, 1000),
            Err(KernelError::TooLarge(1000))
        ));
        let zst = ruzstd::encoding::compress_to_vec(
            &elf[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert!(matches!(
            extract_vmlinux(&make_bzimage(&zst, 4, 0), 1000),
            Err(KernelError::TooLarge(1000))
        ));

        let mut old = img.clone();
        old[HDR_VERSION..HDR_VERSION + 2].copy_from_slice(&0x0206u16.to_le_bytes());
        assert!(matches!(
            identify(&old),
            Err(KernelError::OldProtocol(0x0206))
        ));

        let mut oob = img.clone();
        oob[HDR_PAYLOAD_LENGTH..HDR_PAYLOAD_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            identify(&oob),
            Err(KernelError::PayloadOutOfBounds { .. })
        ));
        let mut oob = img.clone();
        oob[HDR_PAYLOAD_OFFSET..HDR_PAYLOAD_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            identify(&oob),
            Err(KernelError::PayloadOutOfBounds { .. })
        ));

        assert!(matches!(
            identify(b"MZ garbage"),
            Err(KernelError::UnknownFormat)
        ));
        assert!(matches!(identify(&[]), Err(KernelError::UnknownFormat)));
        assert!(matches!(
            identify(&make_bzimage(b"BZh91AY&SY", 4, 0)),
            Err(KernelError::UnsupportedCompression("bzip2"))
        ));

        // A payload that decompresses to something that is not ELF.
        let img = make_bzimage(&gzip(b"not an elf image"), 4, 0);
        assert!(matches!(
            extract_vmlinux(&img, 1 << 20),
            Err(KernelError::PayloadNotElf(Compression::Gzip))
        ));
        // A corrupt compressed payload.
        let mut bad = gzip(&elf);
        let n = bad.len();
        bad[n / 2..n / 2 + 16].fill(0xff);
        assert!(extract_vmlinux(&make_bzimage(&bad, 4, 0), 1 << 20).is_err());
    }

    /// The x86 BCJ filter rewrites CALL/JMP targets; a payload full of
    /// them decodes back byte for byte, and xz's limits and corruption
    /// checks hold.
    #[test]
    fn xz_with_bcj_filter() {
        let mut elf = ELF_MAGIC.to_vec();
        for i in 0..20_000u32 {
            // call rel32; jmp rel32; nop
            elf.push(0xe8);
            elf.extend_from_slice(&(i.wrapping_mul(7919) & 0xffff).to_le_bytes());
            elf.push(0xe9);
            elf.extend_from_slice(&(0u32.wrapping_sub(i * 16)).to_le_bytes());
            elf.push(0x90);
        }
        let xz = xz_bcj(&elf);
        let img = make_bzimage(&xz, 4, 0);
        let (out, fmt) = extract_vmlinux(&img, 1 << 20).unwrap();
        assert!(matches!(
            fmt,
            KernelFormat::BzImage {
                compression: Compression::Xz,
                ..
            }
        ));
        assert!(out[..] == elf[..], "BCJ-filtered xz decoded wrongly");
        assert!(matches!(
            extract_vmlinux(&img, 1000),
            Err(KernelError::TooLarge(1000))
        ));
        let mut bad = xz.clone();
        let n = bad.len();
        bad[n / 2..n / 2 + 16].fill(0x55);
        assert!(matches!(
            extract_vmlinux(&make_bzimage(&bad, 4, 0), 1 << 20),
            Err(KernelError::Decompress {
                compression: Compression::Xz,
                ..
            })
        ));
        let short = &xz[..xz.len() / 2];
        assert!(extract_vmlinux(&make_bzimage(short, 4, 0), 1 << 20).is_err());
    }

    #[test]
    fn truncated_bzimages_never_panic() {
        let img = make_bzimage(&gzip(&fake_elf()), 4, 16);
        for len in (0..img.len()).step_by(61) {
            let _ = extract_vmlinux(&img[..len], 1 << 20);
        }
    }
}
