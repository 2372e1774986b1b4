//! netback's TX path from an arbitrary ring.
//!
//! The input fills the TX ring page's 256 slots and gives the producer
//! index (relative to the backend's consumer, so out-of-range values are
//! reached too) and a few grant entries. First `tx::parse_packet` alone,
//! then whole `Netback::process_tx` rounds against mock guest memory and a
//! mock host device. Invariants: no panic; a parse never spans more slots
//! than were published, and an accepted packet's slots add up to its size
//! with every slot inside its page and at most XEN_NETIF_NR_SLOTS_MIN data
//! slots; every consumed slot gets exactly one response with a known
//! status; every frame handed to the host is between an Ethernet header
//! and 64 KiB; a broken vif stays silent; every grant is released.
#![no_main]

use std::time::{Duration, Instant};

use backends::grant::mock::MockGuest;
use backends::net::device::mock::MockDevice;
use backends::net::tx::{SlotKind, TxVerdict, parse_packet};
use backends::net::{FrontendFeatures, NetState, Netback, NetbackConfig, rate::Rate};
use backends::ring::RingMemory;
use backends::ring::mock::{MockNotify, MockRing};
use libfuzzer_sys::fuzz_target;
use xen_abi::io::netif::*;
use xen_abi::io::ring::{SRING_OFF_req_prod, SRING_OFF_rsp_prod};
use xen_abi::layout::Abi;

const RING_BYTES: usize = 256 * NETIF_TX_SLOT_SIZE;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, rest) = data.split_at(8);
    let mut slots_raw = [0u8; RING_BYTES];
    let n = rest.len().min(RING_BYTES);
    slots_raw[..n].copy_from_slice(&rest[..n]);
    let slot = |i: u32| -> [u8; 12] {
        let o = (i as usize % 256) * 12;
        slots_raw[o..o + 12].try_into().unwrap()
    };

    // The parser alone.
    let avail = u32::from(head[0]) + 1;
    let mut slots = Vec::new();
    match parse_packet(avail, slot, &mut slots) {
        TxVerdict::Incomplete => {}
        TxVerdict::Drop(_) => assert!(!slots.is_empty() && slots.len() <= avail as usize),
        TxVerdict::Packet(p) => {
            assert!(slots.len() <= avail as usize);
            let data: Vec<_> = slots.iter().filter(|s| s.kind != SlotKind::Extra).collect();
            assert!(data.len() <= XEN_NETIF_NR_SLOTS_MIN as usize);
            let total: u32 = data.iter().map(|s| u32::from(s.len)).sum();
            assert_eq!(total, u32::from(p.size));
            for s in data {
                assert!(u32::from(s.req.offset) + u32::from(s.len) <= 4096);
            }
        }
    }

    // Whole rounds through a backend.
    let ring = MockRing::new();
    let start = u32::from_le_bytes(head[1..5].try_into().unwrap());
    ring.store_u32(SRING_OFF_rsp_prod, start);
    for i in 0..256u32 {
        ring.write(netif_tx_slot_offset(start.wrapping_add(i)), &slot(i));
    }
    // head[5]: how far req_prod is ahead (all values, some impossible).
    let ahead = if head[5] & 0x80 != 0 {
        u32::from(head[5]) << 3
    } else {
        u32::from(head[5])
    };
    ring.store_u32(SRING_OFF_req_prod, start.wrapping_add(ahead));
    // Grant refs 0..16 map frames 0..16 (read-only from 8 up); others not.
    let guest = MockGuest::new(16, 1);
    for g in 0..16u32 {
        if head[6] & (1 << (g % 8)) != 0 || g >= 8 {
            guest.grant(g, u64::from(g), g >= 8);
        }
        guest.write(u64::from(g), 0, &[g as u8; 64]);
    }
    let grants = guest.grants();
    let dev = MockDevice::new();
    if head[7] & 1 != 0 {
        dev.fail_sends(1);
    }
    let cfg = NetbackConfig {
        rate: (head[7] & 2 != 0).then_some(Rate {
            bytes: 4000,
            interval: Duration::from_millis(10),
        }),
        software_tx_csum: head[7] & 4 != 0,
    };
    let features = FrontendFeatures {
        sg: true,
        gso_tcpv4: true,
        gso_tcpv6: true,
        csum: true,
        ipv6_csum: true,
    };
    let rx = MockRing::new();
    let t0 = Instant::now();
    let mut nb = Netback::new(
        ring.clone(),
        rx,
        MockNotify::default(),
        grants.clone(),
        dev.clone(),
        features,
        cfg,
        t0,
    );
    let mut answered = 0u32;
    for round in 0..6u32 {
        let res = nb.process_tx(t0 + Duration::from_millis(10 * u64::from(round)));
        let prod = ring.load_u32(SRING_OFF_rsp_prod);
        let now_answered = prod.wrapping_sub(start);
        assert!(now_answered >= answered && now_answered <= ahead.min(256));
        for i in answered..now_answered {
            let mut b = [0u8; 4];
            ring.read(netif_tx_slot_offset(start.wrapping_add(i)), &mut b);
            let r = netif_tx_response::read_from(&b).unwrap();
            assert!(matches!(
                r.status,
                NETIF_RSP_OKAY | NETIF_RSP_ERROR | NETIF_RSP_DROPPED | NETIF_RSP_NULL
            ));
        }
        answered = now_answered;
        if res.is_err() {
            assert_eq!(nb.state(), NetState::Broken);
            assert!(nb.process_tx(t0).unwrap().packets == 0);
            assert_eq!(ring.load_u32(SRING_OFF_rsp_prod), prod);
            break;
        }
    }
    for (_, frame) in dev.take_sent() {
        assert!(frame.len() >= 14 && frame.len() <= 0xffff);
    }
    drop(nb);
    assert_eq!(grants.pinned(), 0, "every grant released");
});
