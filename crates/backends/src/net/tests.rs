//! Netback against a frontend played through the mocks: ring pages
//! ([`MockRing`]), granted guest memory ([`MockGuest`]) and a host device
//! ([`MockDevice`]).

use std::time::{Duration, Instant};

use super::csum::{self, IPPROTO_TCP, IPPROTO_UDP, testframes};
use super::device::mock::MockDevice;
use super::*;
use crate::grant::Grants;
use crate::grant::mock::MockGuest;
use crate::ring::mock::{MockNotify, MockRing};

type Nb = Netback<Grants<MockGuest>, MockDevice, MockRing, MockNotify>;

/// Guest frames: 0..64 hold TX data (slot k of a packet in frame k), 64..128
/// receive buffers. Grant refs: TX data 8 + k, RX buffers 200 + k.
pub(super) struct Front {
    pub(super) tx: MockRing,
    pub(super) rx: MockRing,
    pub(super) g: Grants<MockGuest>,
    tx_prod: u32,
    tx_rsp_cons: u32,
    rx_prod: u32,
    rx_rsp_cons: u32,
}

const RX_GFN: u64 = 64;

/// A frame as the guest received it: the first response's flags, the GSO
/// extra, the bytes, each slot's status.
pub(super) type Received = (u16, Option<netif_extra_info>, Vec<u8>, Vec<i16>);
const RX_GREF: u32 = 200;

impl Front {
    pub(super) fn new() -> Self {
        let (tx, rx) = (MockRing::new(), MockRing::new());
        // SHARED_RING_INIT.
        for r in [&tx, &rx] {
            r.store_u32(SRING_OFF_req_event, 1);
            r.store_u32(SRING_OFF_rsp_event, 1);
        }
        let g = MockGuest::new(128, 1).grants();
        for k in 0..64 {
            g.pages().grant(8 + k, u64::from(k), true);
            g.pages().grant(RX_GREF + k, RX_GFN + u64::from(k), false);
        }
        Front {
            tx,
            rx,
            g,
            tx_prod: 0,
            tx_rsp_cons: 0,
            rx_prod: 0,
            rx_rsp_cons: 0,
        }
    }

    pub(super) fn put_tx(&mut self, r: netif_tx_request) {
        self.tx
            .write(netif_tx_slot_offset(self.tx_prod), &r.to_bytes());
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    pub(super) fn put_extra(&mut self, e: netif_extra_info) {
        let mut b = [0u8; NETIF_TX_SLOT_SIZE];
        e.write_to(&mut b);
        self.tx.write(netif_tx_slot_offset(self.tx_prod), &b);
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    pub(super) fn publish_tx(&self) {
        self.tx.store_u32(SRING_OFF_req_prod, self.tx_prod);
    }

    /// Queue `frame` as netfront does: the first `first` bytes in slot 0
    /// (at offset `off0`), the rest in page-sized fragments at offset 0.
    pub(super) fn send(
        &mut self,
        frame: &[u8],
        flags: u16,
        id0: u16,
        first: usize,
        off0: usize,
        gso: Option<netif_extra_info>,
    ) {
        let mut chunks = vec![&frame[..first]];
        chunks.extend(frame[first..].chunks(4096));
        for (k, c) in chunks.iter().enumerate() {
            let off = if k == 0 { off0 } else { 0 };
            self.g.pages().write(k as u64, off, c);
        }
        for (k, c) in chunks.iter().enumerate() {
            let more = if k + 1 < chunks.len() {
                NETTXF_more_data
            } else {
                0
            };
            let (f, size) = if k == 0 {
                let ex = if gso.is_some() { NETTXF_extra_info } else { 0 };
                (flags | more | ex, frame.len() as u16)
            } else {
                (more, c.len() as u16)
            };
            self.put_tx(netif_tx_request {
                gref: 8 + k as u32,
                offset: if k == 0 { off0 as u16 } else { 0 },
                flags: f,
                id: id0 + k as u16,
                size,
            });
            if k == 0
                && let Some(e) = gso
            {
                self.put_extra(e);
            }
        }
        self.publish_tx();
    }

    pub(super) fn tx_responses(&mut self) -> Vec<(u16, i16)> {
        let prod = self.tx.load_u32(SRING_OFF_rsp_prod);
        let mut out = Vec::new();
        while self.tx_rsp_cons != prod {
            let mut b = [0u8; 4];
            self.tx.read(netif_tx_slot_offset(self.tx_rsp_cons), &mut b);
            let r = netif_tx_response::read_from(&b).unwrap();
            out.push((r.id, r.status));
            self.tx_rsp_cons = self.tx_rsp_cons.wrapping_add(1);
        }
        out
    }

    pub(super) fn post_rx(&mut self, n: u32) {
        for _ in 0..n {
            let k = self.rx_prod % 64;
            let r = netif_rx_request {
                id: (self.rx_prod % 256) as u16,
                pad: 0,
                gref: RX_GREF + k,
            };
            self.rx
                .write(netif_rx_slot_offset(self.rx_prod), &r.to_bytes());
            self.rx_prod = self.rx_prod.wrapping_add(1);
        }
        self.rx.store_u32(SRING_OFF_req_prod, self.rx_prod);
    }

    /// Reassemble received frames as netfront does: (flags of the first
    /// response, GSO extra, bytes, statuses).
    pub(super) fn receive(&mut self) -> Vec<Received> {
        let prod = self.rx.load_u32(SRING_OFF_rsp_prod);
        let mut frames = Vec::new();
        while self.rx_rsp_cons != prod {
            let mut first_flags = None;
            let mut extra = None;
            let mut data = Vec::new();
            let mut statuses = Vec::new();
            loop {
                let i = self.rx_rsp_cons;
                self.rx_rsp_cons = i.wrapping_add(1);
                let mut b = [0u8; 8];
                self.rx.read(netif_rx_slot_offset(i), &mut b);
                let r = netif_rx_response::read_from(&b).unwrap();
                assert_eq!(r.id, (i % 256) as u16, "response in its request's slot");
                statuses.push(r.status);
                if r.status > 0 {
                    let mut buf = vec![0u8; r.status as usize];
                    let gfn = RX_GFN + u64::from(i % 64);
                    self.g.pages().read(gfn, usize::from(r.offset), &mut buf);
                    data.extend_from_slice(&buf);
                }
                if first_flags.is_none() {
                    first_flags = Some(r.flags);
                    if r.flags & NETRXF_extra_info != 0 {
                        let j = self.rx_rsp_cons;
                        self.rx_rsp_cons = j.wrapping_add(1);
                        let mut e = [0u8; 8];
                        self.rx.read(netif_rx_slot_offset(j), &mut e);
                        extra = Some(netif_extra_info::read_from(&e).unwrap());
                    }
                }
                if r.flags & NETRXF_more_data == 0 {
                    break;
                }
            }
            frames.push((first_flags.unwrap(), extra, data, statuses));
        }
        frames
    }
}

pub(super) fn all_features() -> FrontendFeatures {
    FrontendFeatures {
        sg: true,
        gso_tcpv4: true,
        gso_tcpv6: true,
        csum: true,
        ipv6_csum: true,
    }
}

fn backend(
    f: &Front,
    features: FrontendFeatures,
    cfg: NetbackConfig,
) -> (Nb, MockDevice, MockNotify) {
    let dev = MockDevice::new();
    let n = MockNotify::default();
    let nb = Netback::new(
        f.tx.clone(),
        f.rx.clone(),
        n.clone(),
        f.g.clone(),
        dev.clone(),
        features,
        cfg,
        Instant::now(),
    );
    (nb, dev, n)
}

#[test]
fn tx_frame_arrives_bytes_exact_with_its_checksum_left_to_the_host() {
    let mut f = Front::new();
    let (mut nb, dev, n) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_TCP, &[0x5a; 200]);
    f.send(
        &frame,
        NETTXF_csum_blank | NETTXF_data_validated,
        7,
        frame.len(),
        300,
        None,
    );
    let p = nb.process_tx(Instant::now()).unwrap();
    assert_eq!(p.packets, 1);
    assert_eq!(f.tx_responses(), [(7, NETIF_RSP_OKAY)]);
    assert_eq!(n.count(), 1);
    let sent = dev.take_sent();
    assert_eq!(sent.len(), 1);
    let (h, mut got) = sent.into_iter().next().unwrap();
    assert_eq!(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_eq!((h.csum_start, h.csum_offset), (34, 16));
    assert_eq!(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    // Only the checksum field differs, and the host's completion of it is
    // the right checksum.
    assert_eq!(got[..50], frame[..50]);
    assert_eq!(got[52..], frame[52..]);
    csum::complete_partial(&mut got, 34, 16).unwrap();
    let mut want = frame.clone();
    csum::fill(&mut want).unwrap();
    assert_eq!(got, want);
    assert_eq!(nb.stats().tx_packets, 1);
    assert_eq!(nb.stats().tx_bytes, frame.len() as u64);
    // The ring asks for the next request.
    assert_eq!(f.tx.load_u32(SRING_OFF_req_event), 2);
}

#[test]
fn tx_checksum_completed_in_software_when_configured() {
    let mut f = Front::new();
    let cfg = NetbackConfig {
        software_tx_csum: true,
        ..Default::default()
    };
    let (mut nb, dev, _) = backend(&f, all_features(), cfg);
    for (i, frame) in [
        testframes::ipv4(IPPROTO_UDP, b"a datagram of odd size"),
        testframes::ipv6(IPPROTO_TCP, &[1u8; 1400]),
    ]
    .into_iter()
    .enumerate()
    {
        f.send(&frame, NETTXF_csum_blank, i as u16, frame.len(), 0, None);
        nb.process_tx(Instant::now()).unwrap();
        let (h, got) = dev.take_sent().pop().unwrap();
        assert_eq!(h, VnetHdr::default());
        assert!(csum::verify(&got).unwrap());
        let mut want = frame.clone();
        csum::fill(&mut want).unwrap();
        assert_eq!(got, want);
    }
    // A frame with data_validated only passes that on.
    let frame = testframes::ipv4(IPPROTO_UDP, b"validated");
    f.send(&frame, NETTXF_data_validated, 9, frame.len(), 0, None);
    nb.process_tx(Instant::now()).unwrap();
    let (h, got) = dev.take_sent().pop().unwrap();
    assert_eq!(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    assert_eq!(got, frame, "untouched");
}

#[test]
fn tx_scatter_gather_gso_chain() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    let payload: Vec<u8> = (0..9000u32).map(|i| (i * 31 % 251) as u8).collect();
    let frame = testframes::ipv4(IPPROTO_TCP, &payload);
    let gso = netif_extra_info::gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0);
    // netfront puts the headers and a little data in the first slot.
    f.send(
        &frame,
        NETTXF_csum_blank | NETTXF_data_validated,
        20,
        66,
        3000,
        Some(gso),
    );
    nb.process_tx(Instant::now()).unwrap();
    // first, extra (NULL), then the three fragments.
    // The extra slot has no id (its bytes 8..10, the padding, are read as
    // one); netfront skips NETIF_RSP_NULL.
    assert_eq!(
        f.tx_responses(),
        [
            (20, NETIF_RSP_OKAY),
            (0, NETIF_RSP_NULL),
            (21, NETIF_RSP_OKAY),
            (22, NETIF_RSP_OKAY),
            (23, NETIF_RSP_OKAY)
        ]
    );
    let (h, got) = dev.take_sent().pop().unwrap();
    assert_eq!(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    assert_eq!(h.gso_size, 1448);
    assert_eq!(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_eq!((h.csum_start, h.csum_offset, h.hdr_len), (34, 16, 54));
    assert_eq!(got.len(), frame.len());
    assert_eq!(got[54..], frame[54..]);
    // The seeded field is the pseudo-header sum over the whole segment.
    let l4 = csum::locate_l4(&got).unwrap();
    assert_eq!(
        u16::from_be_bytes([got[50], got[51]]),
        csum::fold(l4.pseudo)
    );
}

#[test]
fn tx_bad_packets_are_answered_with_errors_and_the_ring_goes_on() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_UDP, b"ok");
    // A grant this backend may not use.
    f.g.pages().set_entry(8, 0, 0, 0);
    f.send(&frame, 0, 1, frame.len(), 0, None);
    nb.process_tx(Instant::now()).unwrap();
    assert_eq!(f.tx_responses(), [(1, NETIF_RSP_ERROR)]);
    f.g.pages().grant(8, 0, true);
    // Data running past its page.
    f.put_tx(netif_tx_request {
        gref: 8,
        offset: 4000,
        flags: 0,
        id: 2,
        size: 200,
    });
    // A reference beyond the grant table.
    f.put_tx(netif_tx_request {
        gref: 100_000,
        offset: 0,
        flags: 0,
        id: 3,
        size: 60,
    });
    // A blank checksum on a frame that has none (ARP).
    let mut arp = frame.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    f.g.pages().write(9, 0, &arp);
    f.put_tx(netif_tx_request {
        gref: 9,
        offset: 0,
        flags: NETTXF_csum_blank,
        id: 4,
        size: arp.len() as u16,
    });
    f.publish_tx();
    nb.process_tx(Instant::now()).unwrap();
    assert_eq!(
        f.tx_responses(),
        [
            (2, NETIF_RSP_ERROR),
            (3, NETIF_RSP_ERROR),
            (4, NETIF_RSP_ERROR)
        ]
    );
    assert!(dev.take_sent().is_empty());
    // And a good one still goes.
    f.send(&frame, 0, 5, frame.len(), 0, None);
    nb.process_tx(Instant::now()).unwrap();
    assert_eq!(f.tx_responses(), [(5, NETIF_RSP_OKAY)]);
    assert_eq!(dev.take_sent()[0].1, frame);
    assert_eq!(nb.stats().tx_errors, 4);
    assert_eq!(f.g.pinned(), 0, "every grant released");
    // The host refusing a frame: NETIF_RSP_DROPPED.
    dev.fail_sends(1);
    f.send(&frame, 0, 6, frame.len(), 0, None);
    nb.process_tx(Instant::now()).unwrap();
    assert_eq!(f.tx_responses(), [(6, NETIF_RSP_DROPPED)]);
    assert_eq!(nb.state(), NetState::Connected);
}

#[test]
fn tx_long_chain_dropped_whole() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    for k in 0..19u32 {
        f.put_tx(netif_tx_request {
            gref: 8,
            offset: 0,
            flags: if k < 18 { NETTXF_more_data } else { 0 },
            id: k as u16,
            size: if k == 0 { 19 * 64 } else { 64 },
        });
    }
    f.publish_tx();
    nb.process_tx(Instant::now()).unwrap();
    let r = f.tx_responses();
    assert_eq!(r.len(), 19);
    assert!(r.iter().all(|&(_, s)| s == NETIF_RSP_ERROR));
    assert!(dev.take_sent().is_empty());
    assert_eq!(nb.state(), NetState::Connected);
}

#[test]
fn tx_corrupt_indices_break_the_vif() {
    let mut f = Front::new();
    let (mut nb, dev, n) = backend(&f, all_features(), NetbackConfig::default());
    f.tx.store_u32(SRING_OFF_req_prod, 257);
    let e = nb.process_tx(Instant::now()).unwrap_err();
    assert!(matches!(e, NetError::TxRingCorrupt { prod: 257, cons: 0 }));
    assert_eq!(nb.state(), NetState::Broken);
    // Broken stays quiet.
    let frame = testframes::ipv4(IPPROTO_UDP, b"late");
    f.tx_prod = 0;
    f.send(&frame, 0, 1, frame.len(), 0, None);
    dev.inject(VnetHdr::default(), &frame);
    f.post_rx(4);
    assert_eq!(
        nb.process_tx(Instant::now()).unwrap(),
        TxProgress::default()
    );
    assert_eq!(nb.process_rx().unwrap(), RxProgress::default());
    assert!(dev.take_sent().is_empty());
    assert_eq!(f.tx.load_u32(SRING_OFF_rsp_prod), 0);
    assert_eq!(n.count(), 0);
}

#[test]
fn tx_a_ring_full_of_one_unfinished_chain_breaks_the_vif() {
    let mut f = Front::new();
    let (mut nb, _, _) = backend(&f, all_features(), NetbackConfig::default());
    for k in 0..NET_TX_RING_SIZE {
        f.put_tx(netif_tx_request {
            gref: 8,
            offset: 0,
            flags: NETTXF_more_data,
            id: k as u16,
            size: 100,
        });
    }
    f.publish_tx();
    assert!(matches!(
        nb.process_tx(Instant::now()),
        Err(NetError::EndlessChain)
    ));
}

#[test]
fn tx_partial_chain_waits_for_the_rest() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_UDP, &[3u8; 5000]);
    f.send(&frame, 0, 1, 100, 0, None);
    // Publish only the first slot.
    f.tx.store_u32(SRING_OFF_req_prod, 1);
    assert_eq!(nb.process_tx(Instant::now()).unwrap().packets, 0);
    assert_eq!(
        f.tx.load_u32(SRING_OFF_req_event),
        2,
        "notify me on the next"
    );
    f.publish_tx();
    assert_eq!(nb.process_tx(Instant::now()).unwrap().packets, 1);
    assert_eq!(dev.take_sent()[0].1, frame);
}

#[test]
fn tx_budget_and_notification_hold_off() {
    let mut f = Front::new();
    let (mut nb, dev, n) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_UDP, b"many");
    // The guest says: notify me only after response 1000.
    f.tx.store_u32(SRING_OFF_rsp_event, 1000);
    for i in 0..100 {
        f.send(&frame, 0, i, frame.len(), 0, None);
    }
    let p = nb.process_tx(Instant::now()).unwrap();
    assert_eq!((p.packets, p.more), (TX_BUDGET, true));
    let p = nb.process_tx(Instant::now()).unwrap();
    assert_eq!((p.packets, p.more), (100 - TX_BUDGET, false));
    assert_eq!(dev.take_sent().len(), 100);
    assert_eq!(n.count(), 0, "held off");
    assert_eq!(f.tx_responses().len(), 100);
}

#[test]
fn tx_rate_limit_holds_packets_on_the_ring() {
    let mut f = Front::new();
    let cfg = NetbackConfig {
        rate: Some(rate::Rate {
            bytes: 3000,
            interval: Duration::from_millis(10),
        }),
        ..Default::default()
    };
    let t0 = Instant::now();
    let dev = MockDevice::new();
    let mut nb = Netback::new(
        f.tx.clone(),
        f.rx.clone(),
        MockNotify::default(),
        f.g.clone(),
        dev.clone(),
        all_features(),
        cfg,
        t0,
    );
    let frame = testframes::ipv4(IPPROTO_UDP, &[0u8; 1200]);
    assert_eq!(frame.len(), 1242);
    for i in 0..5 {
        f.send(&frame, 0, i, frame.len(), 0, None);
    }
    let p = nb.process_tx(t0).unwrap();
    assert_eq!(p.packets, 2);
    assert_eq!(p.throttled_until, Some(t0 + Duration::from_millis(10)));
    assert_eq!(f.tx_responses().len(), 2, "the third stays on the ring");
    let p = nb.process_tx(t0 + Duration::from_millis(9)).unwrap();
    assert_eq!(p.packets, 0);
    let p = nb.process_tx(t0 + Duration::from_millis(10)).unwrap();
    assert_eq!(p.packets, 2);
    assert_eq!(dev.take_sent().len(), 4);
}

#[test]
fn rx_frame_waits_for_buffers_then_arrives_bytes_exact() {
    let mut f = Front::new();
    let (mut nb, dev, n) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_UDP, b"to the guest");
    dev.inject(VnetHdr::default(), &frame);
    let p = nb.process_rx().unwrap();
    assert!(p.waiting_for_guest);
    assert_eq!(f.rx.load_u32(SRING_OFF_req_event), 1);
    assert_eq!(n.count(), 0);
    f.post_rx(8);
    let p = nb.process_rx().unwrap();
    assert_eq!((p.packets, p.waiting_for_guest), (1, false));
    assert_eq!(n.count(), 1);
    let got = f.receive();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0, "no flags: the guest checks the checksum");
    assert_eq!(got[0].2, frame);
    assert_eq!(got[0].3, [frame.len() as i16]);
    assert_eq!(nb.stats().rx_packets, 1);
    assert_eq!(f.g.pinned(), 0);
}

#[test]
fn rx_tso_frame_over_several_slots_with_gso_extra() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    assert_eq!(
        dev.offloads(),
        Offloads {
            csum: true,
            tso4: true,
            tso6: true
        }
    );
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut frame = testframes::ipv4(IPPROTO_TCP, &payload);
    let l4 = csum::seed_partial(&mut frame).unwrap();
    let hdr = VnetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: l4.start as u16,
        csum_offset: l4.csum_offset as u16,
    };
    dev.inject(hdr, &frame);
    f.post_rx(5);
    assert!(
        nb.process_rx().unwrap().waiting_for_guest,
        "needs 5 data + 1 extra"
    );
    assert_eq!(f.rx.load_u32(SRING_OFF_req_event), 6);
    f.post_rx(1);
    nb.process_rx().unwrap();
    let got = f.receive();
    assert_eq!(got.len(), 1);
    let (flags, extra, data, statuses) = &got[0];
    assert_eq!(
        *flags,
        NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info | NETRXF_more_data
    );
    let e = extra.unwrap();
    assert_eq!(
        (e.type_, e.gso_type(), e.gso_size()),
        (XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4, 1448)
    );
    assert_eq!(data, &frame);
    assert_eq!(
        statuses,
        &[4096, 4096, 4096, 4096, (frame.len() - 4 * 4096) as i16]
    );
}

#[test]
fn rx_what_the_guest_did_not_negotiate() {
    let mut f = Front::new();
    let features = FrontendFeatures {
        csum: false,
        ..Default::default()
    };
    let (mut nb, dev, _) = backend(&f, features, NetbackConfig::default());
    assert_eq!(dev.offloads(), Offloads::default());
    f.post_rx(32);
    // Too big for one slot without feature-sg: dropped.
    dev.inject(
        VnetHdr::default(),
        &testframes::ipv4(IPPROTO_UDP, &[0u8; 5000]),
    );
    // GSO without the feature: dropped.
    let gso = VnetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
        gso_size: 1000,
        csum_start: 34,
        csum_offset: 16,
        hdr_len: 54,
    };
    dev.inject(gso, &testframes::ipv4(IPPROTO_TCP, &[0u8; 2000]));
    // Shorter than an Ethernet header: dropped.
    dev.inject(VnetHdr::default(), &[0u8; 10]);
    // A partial checksum: completed here (feature-no-csum-offload).
    let mut partial = testframes::ipv4(IPPROTO_TCP, b"complete me");
    let l4 = csum::seed_partial(&mut partial).unwrap();
    let hdr = VnetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        csum_start: l4.start as u16,
        csum_offset: l4.csum_offset as u16,
        ..Default::default()
    };
    dev.inject(hdr, &partial);
    let p = nb.process_rx().unwrap();
    assert_eq!(p.packets, 4);
    assert_eq!(nb.stats().rx_dropped, 3);
    let got = f.receive();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, NETRXF_data_validated);
    assert!(csum::verify(&got[0].2).unwrap());
    let mut want = partial.clone();
    csum::fill(&mut want).unwrap();
    assert_eq!(got[0].2, want);
}

#[test]
fn rx_bad_buffers_and_corrupt_ring() {
    let mut f = Front::new();
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    // The guest revokes the first buffer's grant.
    f.g.pages().set_entry(RX_GREF, 0, 0, 0);
    f.post_rx(2);
    let frame = testframes::ipv4(IPPROTO_UDP, b"x");
    dev.inject(VnetHdr::default(), &frame);
    dev.inject(VnetHdr::default(), &frame);
    nb.process_rx().unwrap();
    let got = f.receive();
    assert_eq!(got[0].3, [NETIF_RSP_ERROR]);
    assert_eq!(got[1].2, frame);
    assert_eq!(nb.stats().rx_errors, 1);
    // A read-only grant for a receive buffer is refused too.
    f.g.pages().grant(RX_GREF + 2, RX_GFN + 2, true);
    f.post_rx(1);
    dev.inject(VnetHdr::default(), &frame);
    nb.process_rx().unwrap();
    assert_eq!(f.receive()[0].3, [NETIF_RSP_ERROR]);
    // req_prod far ahead of what the ring holds.
    f.rx.store_u32(SRING_OFF_req_prod, f.rx_prod + 300);
    dev.inject(VnetHdr::default(), &frame);
    assert!(matches!(
        nb.process_rx(),
        Err(NetError::RxRingCorrupt { .. })
    ));
    assert_eq!(nb.state(), NetState::Broken);
}

#[test]
fn rx_and_tx_indices_wrap() {
    let mut f = Front::new();
    // Both rings start near the top of the index space.
    let start = u32::MAX - 5;
    for r in [&f.tx, &f.rx] {
        r.store_u32(SRING_OFF_req_prod, start);
        r.store_u32(SRING_OFF_rsp_prod, start);
    }
    f.tx_prod = start;
    f.tx_rsp_cons = start;
    f.rx_prod = start;
    f.rx_rsp_cons = start;
    let (mut nb, dev, _) = backend(&f, all_features(), NetbackConfig::default());
    let frame = testframes::ipv4(IPPROTO_UDP, &[9u8; 6000]);
    for i in 0..6 {
        f.send(&frame, 0, i * 2, 1000, 0, None);
        dev.inject(VnetHdr::default(), &frame);
    }
    f.post_rx(12);
    nb.process_tx(Instant::now()).unwrap();
    nb.process_rx().unwrap();
    assert_eq!(dev.take_sent().len(), 6);
    assert_eq!(f.tx_responses().len(), 18);
    let got = f.receive();
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|g| g.2 == frame));
}

#[test]
fn frontend_features() {
    let nodes = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(a, _)| *a == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    // What Linux's netfront writes.
    let linux = FrontendFeatures::from_nodes(nodes(&[
        ("request-rx-copy", "1"),
        ("feature-rx-notify", "1"),
        ("feature-sg", "1"),
        ("feature-gso-tcpv4", "1"),
        ("feature-gso-tcpv6", "1"),
        ("feature-ipv6-csum-offload", "1"),
    ]))
    .unwrap();
    assert_eq!(linux, all_features());
    let minimal = FrontendFeatures::from_nodes(nodes(&[
        ("request-rx-copy", "1"),
        ("feature-rx-notify", "1"),
        ("feature-no-csum-offload", "1"),
        ("multi-queue-num-queues", "1"),
    ]))
    .unwrap();
    assert_eq!(minimal, FrontendFeatures::default());
    assert!(FrontendFeatures::from_nodes(nodes(&[("feature-rx-notify", "1")])).is_err());
    assert!(FrontendFeatures::from_nodes(nodes(&[("request-rx-copy", "1")])).is_err());
    assert!(
        FrontendFeatures::from_nodes(nodes(&[
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("multi-queue-num-queues", "4"),
        ]))
        .is_err()
    );
    // TSO needs checksum offload and scatter-gather.
    let no_sg = FrontendFeatures {
        sg: false,
        ..all_features()
    };
    assert_eq!(
        no_sg.offloads(),
        Offloads {
            csum: true,
            tso4: false,
            tso6: false
        }
    );
}
