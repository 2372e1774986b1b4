//! Frame codec for Xen's XenStore wire protocol (`xs_wire.h`): a 16-byte
//! `xsd_sockmsg` header followed by at most `XENSTORE_PAYLOAD_MAX` bytes.
//!
//! [`FrameDecoder`] reassembles frames from an untrusted byte stream (a socket
//! or a guest ring relayed by a domain process), checking every bound before
//! it buffers anything. The error names of `XS_ERROR` replies are [`Errno`].

use std::fmt;
use thiserror::Error;
use xen_abi::xs_wire::{XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE};

/// A decoding failure. After one, the stream is out of sync: the connection
/// must be closed (Xen does the same for an over-long payload).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("payload length {0} exceeds XENSTORE_PAYLOAD_MAX")]
    PayloadTooLong(u32),
}

/// The header of a message (`struct xsd_sockmsg`), decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub type_: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    /// Decodes a header from exactly [`XSD_SOCKMSG_SIZE`] bytes.
    pub fn decode(b: &[u8; XSD_SOCKMSG_SIZE]) -> Header {
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            type_: w(0),
            req_id: w(4),
            tx_id: w(8),
            len: w(12),
        }
    }

    /// Encodes the header into its 16 wire bytes.
    pub fn encode(&self) -> [u8; XSD_SOCKMSG_SIZE] {
        let mut b = [0u8; XSD_SOCKMSG_SIZE];
        b[0..4].copy_from_slice(&self.type_.to_le_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }
}

/// One complete message: header fields and payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub type_: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame with the given fields.
    pub fn new(type_: u32, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Frame {
        Frame {
            type_,
            req_id,
            tx_id,
            payload,
        }
    }

    /// Appends the wire form of this frame to `out`. Panics in debug builds
    /// if the payload is longer than the protocol allows: callers building
    /// replies check the length first (and reply `E2BIG`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        debug_assert!(self.payload.len() <= XENSTORE_PAYLOAD_MAX);
        let h = Header {
            type_: self.type_,
            req_id: self.req_id,
            tx_id: self.tx_id,
            len: self.payload.len() as u32,
        };
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(&self.payload);
    }

    /// The wire form of this frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(XSD_SOCKMSG_SIZE + self.payload.len());
        self.encode_into(&mut v);
        v
    }

    /// The payload split at NUL bytes, as Xen's `get_strings` does: only the
    /// NUL-terminated strings count; bytes after the last NUL are ignored.
    pub fn strings(&self) -> Vec<&[u8]> {
        split_strings(&self.payload)
    }

    /// This frame with its payload borrowed.
    pub fn borrowed(&self) -> FrameRef<'_> {
        FrameRef {
            type_: self.type_,
            req_id: self.req_id,
            tx_id: self.tx_id,
            payload: &self.payload,
        }
    }
}

/// One complete message whose payload is borrowed: from the bytes it was
/// decoded from, or from the decoder that reassembled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub type_: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: &'a [u8],
}

impl FrameRef<'_> {
    /// An owned copy.
    pub fn to_frame(&self) -> Frame {
        Frame::new(self.type_, self.req_id, self.tx_id, self.payload.to_vec())
    }
}

/// Splits `data` into its NUL-terminated strings (bytes after the last NUL
/// are not a string).
pub fn split_strings(data: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.iter().position(|&b| b == 0) {
        v.push(&rest[..i]);
        rest = &rest[i + 1..];
    }
    v
}

/// Incremental frame reassembly from an untrusted byte stream.
///
/// Memory use is bounded: at most one header and one payload of
/// `XENSTORE_PAYLOAD_MAX` bytes are buffered.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    hdr: [u8; XSD_SOCKMSG_SIZE],
    hdr_used: usize,
    header: Option<Header>,
    payload: Vec<u8>,
    /// `payload` holds a frame [`FrameDecoder::next`] returned; drop it on
    /// the next call.
    done: bool,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Consumes bytes from `input` until one frame is complete or `input` is
    /// exhausted. Returns the number of bytes consumed and the frame, if one
    /// was completed. Call again with the rest of the input. An owning
    /// [`FrameDecoder::next`]: the same decoder, bounds and state.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), WireError> {
        let (used, frame) = self.next(input)?;
        Ok((used, frame.map(|f| f.to_frame())))
    }

    /// Decodes without copying: a frame that lies
    /// whole in `input` is returned borrowed from it; one that arrived in
    /// pieces is reassembled in (and borrowed from) the decoder, whose buffer
    /// is reused for the next one. The same bounds apply: nothing longer
    /// than `XENSTORE_PAYLOAD_MAX` is ever buffered.
    pub fn next<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<FrameRef<'a>>), WireError> {
        self.forget_done();
        if !self.is_mid_frame() {
            if let Some(hdr) = input.first_chunk::<XSD_SOCKMSG_SIZE>() {
                let h = Header::decode(hdr);
                if h.len as usize > XENSTORE_PAYLOAD_MAX {
                    return Err(WireError::PayloadTooLong(h.len));
                }
                let end = XSD_SOCKMSG_SIZE + h.len as usize;
                if let Some(payload) = input.get(XSD_SOCKMSG_SIZE..end) {
                    return Ok((
                        end,
                        Some(FrameRef {
                            type_: h.type_,
                            req_id: h.req_id,
                            tx_id: h.tx_id,
                            payload,
                        }),
                    ));
                }
            }
        }
        let mut used = 0;
        if self.header.is_none() {
            let want = XSD_SOCKMSG_SIZE - self.hdr_used;
            let n = want.min(input.len());
            self.hdr[self.hdr_used..self.hdr_used + n].copy_from_slice(&input[..n]);
            self.hdr_used += n;
            used += n;
            if self.hdr_used < XSD_SOCKMSG_SIZE {
                return Ok((used, None));
            }
            let h = Header::decode(&self.hdr);
            if h.len as usize > XENSTORE_PAYLOAD_MAX {
                return Err(WireError::PayloadTooLong(h.len));
            }
            self.payload.clear();
            self.payload.reserve(h.len as usize);
            self.header = Some(h);
        }
        let h = self.header.expect("header decoded above");
        let want = h.len as usize - self.payload.len();
        let n = want.min(input.len() - used);
        self.payload.extend_from_slice(&input[used..used + n]);
        used += n;
        if self.payload.len() < h.len as usize {
            return Ok((used, None));
        }
        self.header = None;
        self.hdr_used = 0;
        self.done = true;
        Ok((
            used,
            Some(FrameRef {
                type_: h.type_,
                req_id: h.req_id,
                tx_id: h.tx_id,
                payload: &self.payload,
            }),
        ))
    }

    fn forget_done(&mut self) {
        if self.done {
            self.done = false;
            self.payload.clear();
        }
    }

    /// Decodes every complete frame in `input`, appending them to `out`.
    pub fn feed_all(&mut self, mut input: &[u8], out: &mut Vec<Frame>) -> Result<(), WireError> {
        while !input.is_empty() {
            let (n, f) = self.feed(input)?;
            input = &input[n..];
            if let Some(f) = f {
                out.push(f);
            }
        }
        Ok(())
    }

    /// Whether part of a frame is buffered.
    pub fn is_mid_frame(&self) -> bool {
        self.hdr_used != 0 || self.header.is_some()
    }
}

/// The error names of `XS_ERROR` replies: Xen's `xsd_errors[]`, plus
/// `EQUOTA`, which rxen (like oxenstored) sends when a per-domain quota is
/// reached. libxenstore maps names it does not know, such as `EQUOTA`, to
/// `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    EQUOTA,
}

const ERRNO_NAMES: [(Errno, &str, i32); 17] = [
    (Errno::EINVAL, "EINVAL", libc::EINVAL),
    (Errno::EACCES, "EACCES", libc::EACCES),
    (Errno::EEXIST, "EEXIST", libc::EEXIST),
    (Errno::EISDIR, "EISDIR", libc::EISDIR),
    (Errno::ENOENT, "ENOENT", libc::ENOENT),
    (Errno::ENOMEM, "ENOMEM", libc::ENOMEM),
    (Errno::ENOSPC, "ENOSPC", libc::ENOSPC),
    (Errno::EIO, "EIO", libc::EIO),
    (Errno::ENOTEMPTY, "ENOTEMPTY", libc::ENOTEMPTY),
    (Errno::ENOSYS, "ENOSYS", libc::ENOSYS),
    (Errno::EROFS, "EROFS", libc::EROFS),
    (Errno::EBUSY, "EBUSY", libc::EBUSY),
    (Errno::EAGAIN, "EAGAIN", libc::EAGAIN),
    (Errno::EISCONN, "EISCONN", libc::EISCONN),
    (Errno::E2BIG, "E2BIG", libc::E2BIG),
    (Errno::EPERM, "EPERM", libc::EPERM),
    (Errno::EQUOTA, "EQUOTA", libc::EDQUOT),
];

impl Errno {
    /// The name sent on the wire.
    pub fn name(self) -> &'static str {
        ERRNO_NAMES
            .iter()
            .find(|e| e.0 == self)
            .map(|e| e.1)
            .expect("every Errno has a name")
    }

    /// The errno value a C client would see (`EQUOTA` is reported as
    /// `EDQUOT`).
    pub fn raw(self) -> i32 {
        ERRNO_NAMES
            .iter()
            .find(|e| e.0 == self)
            .map(|e| e.2)
            .expect("every Errno has a value")
    }

    /// Parses an error name as sent in an `XS_ERROR` payload.
    pub fn from_name(name: &[u8]) -> Option<Errno> {
        ERRNO_NAMES
            .iter()
            .find(|e| e.1.as_bytes() == name)
            .map(|e| e.0)
    }

    /// The payload of an `XS_ERROR` reply: the name and a NUL.
    pub fn payload(self) -> Vec<u8> {
        let mut v = self.name().as_bytes().to_vec();
        v.push(0);
        v
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_: u32, req: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        Frame::new(type_, req, tx, payload.to_vec()).encode()
    }

    #[test]
    fn header_roundtrip_is_little_endian() {
        let h = Header {
            type_: 2,
            req_id: 0x01020304,
            tx_id: 7,
            len: 5,
        };
        let b = h.encode();
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(Header::decode(&b), h);
    }

    #[test]
    fn decoder_reassembles_byte_by_byte() {
        let bytes = [raw(2, 9, 0, b"/a\0"), raw(11, 10, 3, b"/b\0xyz")].concat();
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        for b in &bytes {
            d.feed_all(std::slice::from_ref(b), &mut frames).unwrap();
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::new(2, 9, 0, b"/a\0".to_vec()));
        assert_eq!(frames[1].tx_id, 3);
        assert_eq!(frames[1].payload, b"/b\0xyz");
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn decoder_handles_empty_payload_and_many_frames_in_one_read() {
        let bytes = [raw(6, 1, 0, b""), raw(6, 2, 0, b""), raw(1, 3, 0, b"/\0")].concat();
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        d.feed_all(&bytes, &mut frames).unwrap();
        assert_eq!(
            frames.iter().map(|f| f.req_id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(frames[0].payload.is_empty());
    }

    #[test]
    fn decoder_rejects_oversize_payload_before_buffering() {
        let mut h = Header {
            type_: 11,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        }
        .encode()
        .to_vec();
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        assert_eq!(
            d.feed_all(&h, &mut frames),
            Err(WireError::PayloadTooLong(4097))
        );
        h = Header {
            len: u32::MAX,
            ..Header::default()
        }
        .encode()
        .to_vec();
        let mut d = FrameDecoder::new();
        assert_eq!(
            d.feed_all(&h, &mut frames),
            Err(WireError::PayloadTooLong(u32::MAX))
        );
        // Exactly the limit is fine.
        let ok = raw(11, 1, 0, &vec![b'x'; 4096]);
        let mut d = FrameDecoder::new();
        d.feed_all(&ok, &mut frames).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload.len(), 4096);
    }

    #[test]
    fn next_borrows_whole_frames_and_reassembles_split_ones() {
        let frames = [
            Frame::new(2, 1, 0, b"/a\0".to_vec()),
            Frame::new(11, 2, 5, b"/b\0value".to_vec()),
            Frame::new(6, 3, 0, Vec::new()),
            Frame::new(11, 4, 0, vec![b'v'; 4096]),
            Frame::new(1, 5, 0, b"/\0".to_vec()),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for chunk in [1, 2, 7, 15, 16, 17, 19, 100, 4113, bytes.len()] {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for mut piece in bytes.chunks(chunk) {
                while !piece.is_empty() {
                    let (n, f) = d.next(piece).unwrap();
                    if let Some(f) = f {
                        got.push(f.to_frame());
                    }
                    piece = &piece[n..];
                }
            }
            assert_eq!(got, frames, "pieces of {chunk}");
            assert!(!d.is_mid_frame());
        }
        // A whole frame is not copied.
        let mut d = FrameDecoder::new();
        let (n, f) = d.next(&bytes).unwrap();
        assert_eq!(n, 19);
        assert!(std::ptr::eq(f.unwrap().payload.as_ptr(), &bytes[16]));
    }

    #[test]
    fn next_rejects_oversize_payload_whole_or_split() {
        let mut h = Header {
            type_: 11,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        }
        .encode()
        .to_vec();
        h.extend_from_slice(&[b'x'; 4097]);
        assert_eq!(
            FrameDecoder::new().next(&h),
            Err(WireError::PayloadTooLong(4097))
        );
        let mut d = FrameDecoder::new();
        assert_eq!(d.next(&h[..9]), Ok((9, None)));
        assert_eq!(d.next(&h[9..]), Err(WireError::PayloadTooLong(4097)));
    }

    #[test]
    fn partial_frame_is_reported_mid_frame() {
        let bytes = raw(2, 1, 0, b"/abc\0");
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        d.feed_all(&bytes[..10], &mut frames).unwrap();
        assert!(d.is_mid_frame() && frames.is_empty());
        d.feed_all(&bytes[10..18], &mut frames).unwrap();
        assert!(d.is_mid_frame() && frames.is_empty());
        d.feed_all(&bytes[18..], &mut frames).unwrap();
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn strings_ignore_bytes_after_last_nul() {
        assert_eq!(split_strings(b"a\0bc\0tail"), vec![&b"a"[..], &b"bc"[..]]);
        assert_eq!(split_strings(b"noterm"), Vec::<&[u8]>::new());
        assert_eq!(split_strings(b"\0"), vec![&b""[..]]);
    }

    #[test]
    fn errno_names_roundtrip() {
        for (e, n, _) in ERRNO_NAMES {
            assert_eq!(e.name(), n);
            assert_eq!(Errno::from_name(n.as_bytes()), Some(e));
        }
        assert_eq!(Errno::from_name(b"EWHAT"), None);
        assert_eq!(Errno::EAGAIN.payload(), b"EAGAIN\0");
    }
}
