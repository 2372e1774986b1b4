//! netback's RX path from an arbitrary ring and arbitrary host frames.
//!
//! The input gives the producer index
//! (relative to the backend's, out-of-range values included), which grant
//! references are usable, the frontend's features, a few frames with their
//! virtio-net headers as the host device hands them over, and the RX
//! ring's 256 request slots. Invariants:
//! no panic; no more responses than published requests; every response's
//! status is an error or a byte count of at most a page at offset 0; a
//! corrupt ring breaks the vif and it stays silent; every grant is
//! released.
#![no_main]

use backends::grant::mock::MockGuest;
use backends::net::device::VnetHdr;
use backends::net::device::mock::MockDevice;
use backends::net::{FrontendFeatures, NetState, Netback, NetbackConfig};
use backends::ring::RingMemory;
use backends::ring::mock::{MockNotify, MockRing};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;
use xen_abi::io::netif::*;
use xen_abi::io::ring::{SRING_OFF_req_prod, SRING_OFF_rsp_prod};
use xen_abi::layout::Abi;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, rest) = data.split_at(8);
    // Up to 8 frame descriptions of 13 bytes, then the ring's request
    // slots (missing bytes are zeros).
    let nframes = usize::from(head[7] % 9).min(rest.len() / 13);
    let (frames, slot_bytes) = rest.split_at(nframes * 13);
    let mut slots = [0u8; 256 * 8];
    let n = slot_bytes.len().min(slots.len());
    slots[..n].copy_from_slice(&slot_bytes[..n]);
    let ring = MockRing::new();
    let start = u32::from_le_bytes(head[0..4].try_into().unwrap());
    ring.store_u32(SRING_OFF_rsp_prod, start);
    for i in 0..256u32 {
        let o = i as usize * 8;
        ring.write(
            netif_rx_slot_offset(start.wrapping_add(i)),
            &slots[o..o + 8],
        );
    }
    let ahead = if head[4] & 0x80 != 0 {
        u32::from(head[4]) << 2
    } else {
        u32::from(head[4])
    };
    ring.store_u32(SRING_OFF_req_prod, start.wrapping_add(ahead));
    let guest = MockGuest::new(16, 1);
    for g in 0..16u32 {
        if head[5] & (1 << (g % 8)) != 0 {
            guest.grant(g, u64::from(g), g >= 12);
        }
    }
    let grants = guest.grants();
    let f = head[6];
    let features = FrontendFeatures {
        sg: f & 1 != 0,
        gso_tcpv4: f & 2 != 0,
        gso_tcpv6: f & 4 != 0,
        csum: f & 8 != 0,
        ipv6_csum: f & 16 != 0,
    };
    let dev = MockDevice::new();
    // Frames: [len lo, len hi (x 64 bytes), 10 header bytes, fill byte].
    for c in frames.chunks_exact(13) {
        let len = (usize::from(u16::from_le_bytes([c[0], c[1]])) % 1100) * 64 % 70_000;
        let hdr = VnetHdr::from_bytes(c[2..12].try_into().unwrap());
        let mut frame: Vec<u8> = (0..len).map(|i| c[12].wrapping_add(i as u8)).collect();
        if frame.len() >= 14 {
            frame[12] = 0x08;
            frame[13] = 0x00;
        }
        dev.inject(hdr, &frame);
    }
    let mut nb = Netback::new(
        MockRing::new(),
        ring.clone(),
        MockNotify::default(),
        grants.clone(),
        dev.clone(),
        features,
        NetbackConfig::default(),
        Instant::now(),
    );
    for _ in 0..4 {
        let res = nb.process_rx();
        let prod = ring.load_u32(SRING_OFF_rsp_prod);
        let answered = prod.wrapping_sub(start);
        assert!(answered <= ahead.min(256));
        if res.is_err() {
            assert_eq!(nb.state(), NetState::Broken);
            assert_eq!(nb.process_rx().unwrap().packets, 0);
            assert_eq!(ring.load_u32(SRING_OFF_rsp_prod), prod);
            break;
        }
    }
    let answered = ring.load_u32(SRING_OFF_rsp_prod).wrapping_sub(start);
    let mut i = 0;
    while i < answered {
        let mut b = [0u8; 8];
        ring.read(netif_rx_slot_offset(start.wrapping_add(i)), &mut b);
        let r = netif_rx_response::read_from(&b).unwrap();
        assert_eq!(r.offset, 0);
        assert!(r.status == NETIF_RSP_ERROR || (1..=4096).contains(&r.status));
        // Skip a GSO extra after a first response that announces it.
        i += if r.flags & NETRXF_extra_info != 0 {
            2
        } else {
            1
        };
    }
    drop(nb);
    assert_eq!(grants.pinned(), 0, "every grant released");
});
