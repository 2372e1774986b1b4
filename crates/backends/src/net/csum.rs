//! Internet checksums of the frames a guest sends and receives.
//!
//! A guest that sets `NETTXF_csum_blank` leaves its TCP or UDP checksum for
//! the backend to complete (the guest kernel's `CHECKSUM_PARTIAL`). The host
//! device takes either a complete frame or a frame whose checksum field
//! holds the pseudo-header sum together with where the checksum starts and
//! lies (a `virtio_net_hdr` with `VIRTIO_NET_HDR_F_NEEDS_CSUM`). This module
//! finds the transport header of an Ethernet frame (IPv4, or IPv6 with its
//! hop-by-hop, routing and destination-options headers, under at most two
//! VLAN tags) and computes either form, plus the generic completion of a
//! partial checksum for frames the host hands over that way.
//!
//! Everything here reads a frame already copied out of guest memory and
//! bounds every offset by the frame's length: a malformed frame gives a
//! [`CsumError`], never a panic.

/// Bytes of an Ethernet header without VLAN tags.
pub const ETH_HLEN: usize = 14;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// IP protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol numbers.
pub const IPPROTO_UDP: u8 = 17;

/// Why a frame's checksum could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsumError {
    /// The frame ends inside a header it announces.
    #[error("the frame is truncated")]
    Truncated,
    /// Not IPv4 or IPv6.
    #[error("ethertype {0:#06x} carries no checksummed transport")]
    NotIp(u16),
    /// A header field is impossible (IHL, lengths, version).
    #[error("malformed IP header")]
    BadIpHeader,
    /// An IP fragment: the transport checksum covers data not in this frame.
    #[error("IP fragment")]
    Fragment,
    /// Neither TCP nor UDP.
    #[error("IP protocol {0} has no checksum to complete")]
    Protocol(u8),
    /// A checksum position given by the host lies outside the frame.
    #[error("checksum position {start}+{offset} is outside the frame")]
    BadPosition {
        /// `csum_start`.
        start: usize,
        /// `csum_offset`.
        offset: usize,
    },
}

/// Where a frame's transport header is and how its checksum is seeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    /// Offset of the TCP/UDP header in the frame.
    pub start: usize,
    /// Bytes of transport header and payload, as the IP header says.
    pub len: usize,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub proto: u8,
    /// Offset of the checksum field within the transport header.
    pub csum_offset: usize,
    /// Whether the network header is IPv6.
    pub ipv6: bool,
    /// One's-complement sum of the pseudo-header, length included.
    pub pseudo: u64,
}

/// Add `data` to a running one's-complement sum as big-endian 16-bit words
/// (a trailing odd byte is padded with zero). The result is unfolded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Fold an unfolded sum to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn be16(b: &[u8], at: usize) -> Result<u16, CsumError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(CsumError::Truncated)
}

/// Find the TCP or UDP header of an Ethernet frame and its pseudo-header
/// sum. The transport length comes from the IP header and must lie inside
/// the frame (Ethernet padding after it is allowed).
pub fn locate_l4(frame: &[u8]) -> Result<L4, CsumError> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    off += 2;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        ethertype = be16(frame, off + 2)?;
        off += 4;
    }
    let (proto, l4_start, l4_len, ipv6, pseudo) = match ethertype {
        ETH_P_IP => {
            let ip = frame.get(off..off + 20).ok_or(CsumError::Truncated)?;
            if ip[0] >> 4 != 4 {
                return Err(CsumError::BadIpHeader);
            }
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ihl < 20 || total < ihl {
                return Err(CsumError::BadIpHeader);
            }
            if off + total > frame.len() {
                return Err(CsumError::Truncated);
            }
            // More-fragments set, or a nonzero fragment offset.
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return Err(CsumError::Fragment);
            }
            let proto = ip[9];
            let l4_len = total - ihl;
            let pseudo = sum(&ip[12..20], u64::from(proto) + l4_len as u64);
            (proto, off + ihl, l4_len, false, pseudo)
        }
        ETH_P_IPV6 => {
            let ip = frame.get(off..off + 40).ok_or(CsumError::Truncated)?;
            if ip[0] >> 4 != 6 {
                return Err(CsumError::BadIpHeader);
            }
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let end = off + 40 + payload;
            if end > frame.len() {
                return Err(CsumError::Truncated);
            }
            let addrs = sum(&ip[8..40], 0);
            let mut next = ip[6];
            let mut at = off + 40;
            // A bounded walk over the extension headers a checksum may
            // follow; a fragment header means the payload is elsewhere.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let h = frame.get(at..at + 2).ok_or(CsumError::Truncated)?;
                        next = h[0];
                        at += (usize::from(h[1]) + 1) * 8;
                        if at > end {
                            return Err(CsumError::BadIpHeader);
                        }
                    }
                    44 => return Err(CsumError::Fragment),
                    _ => break,
                }
            }
            let l4_len = end - at;
            (
                next,
                at,
                l4_len,
                true,
                addrs + u64::from(next) + l4_len as u64,
            )
        }
        t => return Err(CsumError::NotIp(t)),
    };
    let (csum_offset, min) = match proto {
        IPPROTO_TCP => (16, 20),
        IPPROTO_UDP => (6, 8),
        p => return Err(CsumError::Protocol(p)),
    };
    if l4_len < min {
        return Err(CsumError::Truncated);
    }
    Ok(L4 {
        start: l4_start,
        len: l4_len,
        proto,
        csum_offset,
        ipv6,
        pseudo,
    })
}

/// Compute the frame's TCP/UDP checksum from scratch and store it. Returns
/// where the transport header is.
pub fn fill(frame: &mut [u8]) -> Result<L4, CsumError> {
    let l4 = locate_l4(frame)?;
    let field = l4.start + l4.csum_offset;
    frame[field..field + 2].fill(0);
    let mut c = !fold(sum(&frame[l4.start..l4.start + l4.len], l4.pseudo));
    if c == 0 && l4.proto == IPPROTO_UDP {
        // UDP sends a computed zero as all ones (zero means "none").
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(l4)
}

/// Seed the frame's checksum field with the pseudo-header sum, the form a
/// host device completes (or a segmentation offload adjusts per segment).
/// Returns where the transport header is.
pub fn seed_partial(frame: &mut [u8]) -> Result<L4, CsumError> {
    let l4 = locate_l4(frame)?;
    let field = l4.start + l4.csum_offset;
    frame[field..field + 2].copy_from_slice(&fold(l4.pseudo).to_be_bytes());
    Ok(l4)
}

/// Complete a partial checksum: sum from `start` to the end of the frame
/// (the field holding the seed) and store the complement at
/// `start + offset`. This is what a host device asks for with
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`; no header is parsed.
pub fn complete_partial(frame: &mut [u8], start: usize, offset: usize) -> Result<(), CsumError> {
    let bad = CsumError::BadPosition { start, offset };
    let field = start.checked_add(offset).ok_or(bad)?;
    if field.checked_add(2).is_none_or(|e| e > frame.len()) {
        return Err(bad);
    }
    let c = !fold(sum(&frame[start..], 0));
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Whether the frame's TCP/UDP checksum is right (tests and diagnostics).
pub fn verify(frame: &[u8]) -> Result<bool, CsumError> {
    let l4 = locate_l4(frame)?;
    let field = l4.start + l4.csum_offset;
    if l4.proto == IPPROTO_UDP && !l4.ipv6 && frame[field..field + 2] == [0, 0] {
        return Ok(true);
    }
    Ok(fold(sum(&frame[l4.start..l4.start + l4.len], l4.pseudo)) == 0xffff)
}

/// Frames for tests: Ethernet + IPv4/IPv6 + TCP/UDP with given payloads.
#[cfg(any(test, feature = "test-utils"))]
pub mod testframes {
    use super::*;

    /// Ethernet header from `src` to `dst` with `ethertype`.
    fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn l4_header(proto: u8, payload_len: usize) -> Vec<u8> {
        match proto {
            IPPROTO_TCP => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&40000u16.to_be_bytes());
                h[2..4].copy_from_slice(&5001u16.to_be_bytes());
                h[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
                h[12] = 5 << 4;
                h[13] = 0x18; // PSH|ACK
                h[14..16].copy_from_slice(&64240u16.to_be_bytes());
                h
            }
            _ => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&5353u16.to_be_bytes());
                h[2..4].copy_from_slice(&5354u16.to_be_bytes());
                h[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
                h
            }
        }
    }

    /// An IPv4 frame 169.254.0.1 → 169.254.0.2 with a zero checksum field.
    pub fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = eth([2, 0, 0, 0, 0, 2], [0, 0x16, 0x3e, 0, 0, 1], ETH_P_IP);
        let l4 = l4_header(proto, payload.len());
        let total = 20 + l4.len() + payload.len();
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&[169, 254, 0, 1, 169, 254, 0, 2]);
        let c = !fold(sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&l4);
        f.extend_from_slice(payload);
        f
    }

    /// An IPv6 frame fe80::1 → fe80::2 with a zero checksum field.
    pub fn ipv6(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = eth([2, 0, 0, 0, 0, 2], [0, 0x16, 0x3e, 0, 0, 1], ETH_P_IPV6);
        let l4 = l4_header(proto, payload.len());
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((l4.len() + payload.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[proto, 64]);
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[15] = 1;
        ip.extend_from_slice(&a);
        a[15] = 2;
        ip.extend_from_slice(&a);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&l4);
        f.extend_from_slice(payload);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::testframes::*;
    use super::*;

    /// A checksum computed the slow, obvious way: 16-bit words, end-around
    /// carry after each addition.
    fn reference(data: &[&[u8]]) -> u16 {
        let mut bytes = Vec::new();
        for d in data {
            bytes.extend_from_slice(d);
            if bytes.len() % 2 == 1 {
                bytes.push(0);
            }
        }
        let mut s: u32 = 0;
        for w in bytes.chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn sum_matches_word_by_word_reference() {
        for len in [0usize, 1, 2, 3, 5, 8, 63, 1500, 65535] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert_eq!(!fold(sum(&data, 0)), reference(&[&data]), "len {len}");
        }
        let ff = vec![0xffu8; 65535];
        assert_eq!(!fold(sum(&ff, 0)), reference(&[&ff]));
    }

    #[test]
    fn fills_tcp_over_ipv4() {
        let mut f = ipv4(IPPROTO_TCP, b"hello, world");
        assert!(!verify(&f).unwrap());
        let l4 = fill(&mut f).unwrap();
        assert_eq!((l4.start, l4.len, l4.csum_offset), (34, 32, 16));
        assert!(verify(&f).unwrap());
        // Against the reference over pseudo-header + segment.
        let mut g = f.clone();
        g[50..52].fill(0);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, IPPROTO_TCP, 0, 32]);
        let want = reference(&[&pseudo, &g[34..]]);
        assert_eq!(u16::from_be_bytes([f[50], f[51]]), want);
    }

    #[test]
    fn fills_udp_over_ipv6_and_ignores_ethernet_padding() {
        let mut f = ipv6(IPPROTO_UDP, b"odd-length payload!");
        f.extend_from_slice(&[0xaa; 7]); // trailer beyond the IP payload
        fill(&mut f).unwrap();
        assert!(verify(&f).unwrap());
        // The trailer is not part of the sum.
        let mut g = f.clone();
        let n = g.len();
        g[n - 1] = 0x55;
        assert!(verify(&g).unwrap());
    }

    #[test]
    fn partial_seed_then_completion_equals_full_fill() {
        for mut f in [
            ipv4(IPPROTO_TCP, &[7u8; 1000]),
            ipv6(IPPROTO_TCP, &[9u8; 333]),
            ipv4(IPPROTO_UDP, b"x"),
        ] {
            let mut full = f.clone();
            fill(&mut full).unwrap();
            let l4 = seed_partial(&mut f).unwrap();
            assert!(!verify(&f).unwrap() || f == full);
            complete_partial(&mut f, l4.start, l4.csum_offset).unwrap();
            assert_eq!(f, full);
        }
    }

    #[test]
    fn vlan_tagged_and_extension_headers() {
        let mut f = ipv4(IPPROTO_UDP, b"tagged");
        f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        assert_eq!(fill(&mut f).unwrap().start, 38);
        assert!(verify(&f).unwrap());
        // IPv6 with an 8-byte hop-by-hop header before UDP.
        let mut g = ipv6(IPPROTO_UDP, b"hbh");
        let plen = u16::from_be_bytes([g[18], g[19]]) + 8;
        g[18..20].copy_from_slice(&plen.to_be_bytes());
        g[20] = 0; // next header: hop-by-hop
        g.splice(54..54, [IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0]);
        let l4 = fill(&mut g).unwrap();
        assert_eq!(l4.start, 62);
        assert!(verify(&g).unwrap());
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let good = ipv4(IPPROTO_TCP, b"data");
        for cut in 0..good.len() {
            let mut f = good[..cut].to_vec();
            assert!(fill(&mut f).is_err(), "cut at {cut}");
        }
        let mut f = good.clone();
        f[20] = 0x20; // more fragments
        assert_eq!(fill(&mut f), Err(CsumError::Fragment));
        let mut f = good.clone();
        f[14] = 0x44; // IHL 16 bytes
        assert_eq!(fill(&mut f), Err(CsumError::BadIpHeader));
        let mut f = good.clone();
        f[23] = 1; // ICMP
        assert_eq!(fill(&mut f), Err(CsumError::Protocol(1)));
        let mut f = good.clone();
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(fill(&mut f), Err(CsumError::NotIp(0x0806)));
        let mut f = good.clone();
        assert!(complete_partial(&mut f, usize::MAX, 2).is_err());
        assert!(complete_partial(&mut f, good.len() - 1, 0).is_err());
        // A hop-by-hop header whose length runs past the payload.
        let mut g = ipv6(IPPROTO_UDP, b"x");
        g[20] = 0;
        g[54] = IPPROTO_UDP;
        g[55] = 200;
        assert_eq!(fill(&mut g), Err(CsumError::BadIpHeader));
    }
}
