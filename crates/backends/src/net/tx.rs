//! Reading one packet's requests off the TX ring (guest → host).
//!
//! A packet is a first request (`size` = the whole packet), optional
//! extra-info slots (`NETTXF_extra_info`, chained by
//! `XEN_NETIF_EXTRA_FLAG_MORE`), then further data requests while
//! `NETTXF_more_data` is set (`size` = that fragment). The first slot's own
//! data is what the fragments leave of the total. [`parse_packet`] reads
//! each slot exactly once, through a callback that copies it out of the
//! shared page, and judges the copies only, so the guest cannot change a
//! request between its check and its use.
//!
//! The verdicts:
//! - [`TxVerdict::Incomplete`]: the chain goes past the requests published
//!   so far; nothing is consumed (the caller waits, or disconnects if the
//!   whole ring is one unfinished chain).
//! - [`TxVerdict::Drop`]: the structure is sound (the slots it spans are
//!   known) but the packet is not acceptable: more than
//!   `XEN_NETIF_NR_SLOTS_MIN` data slots, fragment sizes that exceed the
//!   total, data crossing the end of its page, a frame shorter than an
//!   Ethernet header, a bad extra. Every slot gets `NETIF_RSP_ERROR`
//!   (`NETIF_RSP_NULL` for extras) and the ring moves on.
//! - [`TxVerdict::Packet`]: the slots and what the packet needs.
//!
//! Chains are bounded by the published requests, themselves bounded by the
//! ring size, so a parse never loops or allocates beyond that.

use xen_abi::io::netif::*;
use xen_abi::layout::Abi;

use super::csum::ETH_HLEN;

/// Page size for offset checks.
const PAGE: u32 = 4096;
/// Extra-info slots a packet may carry (one of each type at most).
pub const MAX_EXTRAS: usize = (XEN_NETIF_EXTRA_TYPE_MAX - 1) as usize;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// The packet's first request.
    First,
    /// An extra-info descriptor (answered with `NETIF_RSP_NULL`).
    Extra,
    /// A further data request.
    Frag,
}

/// One consumed slot: the request as copied out of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The request (for an extra slot, its bytes read as a request; only
    /// `id` is used, for nothing).
    pub req: netif_tx_request,
    /// Its role.
    pub kind: SlotKind,
    /// Data bytes this slot contributes (the first slot's share of the
    /// total is computed; 0 for extras).
    pub len: u16,
}

/// GSO metadata of a packet (`XEN_NETIF_EXTRA_TYPE_GSO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    /// `XEN_NETIF_GSO_TYPE_TCPV4` or `_TCPV6`.
    pub gso_type: u8,
    /// Segment payload size (the MSS).
    pub size: u16,
}

/// An acceptable packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// Total bytes.
    pub size: u16,
    /// The first request's `NETTXF_*` flags.
    pub flags: u16,
    /// GSO metadata, if any.
    pub gso: Option<Gso>,
}

/// Why a well-formed chain is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// More data slots than a backend must accept.
    #[error("{0} data slots (at most {XEN_NETIF_NR_SLOTS_MIN})")]
    TooManySlots(u32),
    /// The fragments add up to more than the announced total.
    #[error("fragments of {frags} bytes exceed the packet size {total}")]
    SizeMismatch {
        /// `size` of the first request.
        total: u16,
        /// Sum of the fragments' sizes.
        frags: u32,
    },
    /// A slot's data runs past the end of its page.
    #[error("data at offset {offset} size {len} crosses the page")]
    CrossesPage {
        /// The request's offset.
        offset: u16,
        /// Its data length.
        len: u16,
    },
    /// Shorter than an Ethernet header.
    #[error("packet of {0} bytes is shorter than an Ethernet header")]
    TooShort(u16),
    /// An extra-info slot of no known type, or a type repeated.
    #[error("bad extra info (type {0})")]
    BadExtra(u8),
    /// A GSO descriptor with an unknown type or a zero segment size.
    #[error("bad GSO descriptor (type {gso_type}, size {size})")]
    BadGso {
        /// `u.gso.type`.
        gso_type: u8,
        /// `u.gso.size`.
        size: u16,
    },
}

/// The outcome of reading one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxVerdict {
    /// Not all of its requests are published yet.
    Incomplete,
    /// Drop it: respond to `slots` consumed slots with errors.
    Drop(DropReason),
    /// Take it.
    Packet(TxPacket),
}

/// Read one packet from `avail` published requests; `read(i)` copies the
/// 12-byte slot `i` places after the consumer index. `slots` receives
/// every slot the packet spans (for the responses, and the data slots for
/// the copy); it holds at most `avail` entries.
pub fn parse_packet(
    avail: u32,
    mut read: impl FnMut(u32) -> [u8; NETIF_TX_SLOT_SIZE],
    slots: &mut Vec<Slot>,
) -> TxVerdict {
    slots.clear();
    if avail == 0 {
        return TxVerdict::Incomplete;
    }
    let mut take = |i: u32| -> netif_tx_request {
        let raw = read(i);
        netif_tx_request::read_from(&raw).expect("a slot holds a request")
    };
    let first = take(0);
    slots.push(Slot {
        req: first,
        kind: SlotKind::First,
        len: 0,
    });
    let mut i = 1u32;
    let mut problem: Option<DropReason> = None;
    let mut gso = None;
    let mut seen_types = 0u32;
    let mut more_extra = first.flags & NETTXF_extra_info != 0;
    while more_extra {
        if i >= avail {
            return TxVerdict::Incomplete;
        }
        let req = take(i);
        i += 1;
        slots.push(Slot {
            req,
            kind: SlotKind::Extra,
            len: 0,
        });
        let bytes = req.to_bytes();
        let extra = netif_extra_info::read_from(&bytes).expect("8 bytes");
        more_extra = extra.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0;
        if problem.is_some() {
            continue;
        }
        let t = extra.type_;
        if t == XEN_NETIF_EXTRA_TYPE_NONE || t >= XEN_NETIF_EXTRA_TYPE_MAX {
            problem = Some(DropReason::BadExtra(t));
            continue;
        }
        if seen_types & (1 << t) != 0 {
            // Each type at most once, so at most MAX_EXTRAS extras.
            problem = Some(DropReason::BadExtra(t));
            continue;
        }
        seen_types |= 1 << t;
        if t == XEN_NETIF_EXTRA_TYPE_GSO {
            let (gt, size) = (extra.gso_type(), extra.gso_size());
            if size == 0 || !matches!(gt, XEN_NETIF_GSO_TYPE_TCPV4 | XEN_NETIF_GSO_TYPE_TCPV6) {
                problem = Some(DropReason::BadGso { gso_type: gt, size });
            } else {
                gso = Some(Gso { gso_type: gt, size });
            }
        }
        // Multicast filter and hash extras are not negotiated by rxen;
        // a frontend sending them anyway has them ignored.
    }
    let mut more_data = first.flags & NETTXF_more_data != 0;
    let mut data_slots = 1u32;
    let mut frag_bytes = 0u32;
    while more_data {
        if i >= avail {
            return TxVerdict::Incomplete;
        }
        let req = take(i);
        i += 1;
        data_slots += 1;
        frag_bytes += u32::from(req.size);
        more_data = req.flags & NETTXF_more_data != 0;
        slots.push(Slot {
            req,
            kind: SlotKind::Frag,
            len: req.size,
        });
    }
    if let Some(p) = problem {
        return TxVerdict::Drop(p);
    }
    if data_slots > XEN_NETIF_NR_SLOTS_MIN {
        return TxVerdict::Drop(DropReason::TooManySlots(data_slots));
    }
    if frag_bytes > u32::from(first.size) {
        return TxVerdict::Drop(DropReason::SizeMismatch {
            total: first.size,
            frags: frag_bytes,
        });
    }
    if usize::from(first.size) < ETH_HLEN {
        return TxVerdict::Drop(DropReason::TooShort(first.size));
    }
    slots[0].len = first.size - frag_bytes as u16;
    for s in slots.iter() {
        if s.kind != SlotKind::Extra && u32::from(s.req.offset) + u32::from(s.len) > PAGE {
            return TxVerdict::Drop(DropReason::CrossesPage {
                offset: s.req.offset,
                len: s.len,
            });
        }
    }
    TxVerdict::Packet(TxPacket {
        size: first.size,
        flags: first.flags,
        gso,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> [u8; 12] {
        let mut b = [0u8; 12];
        netif_tx_request {
            gref,
            offset,
            flags,
            id,
            size,
        }
        .write_to(&mut b);
        b
    }

    fn extra(e: netif_extra_info) -> [u8; 12] {
        let mut b = [0u8; 12];
        e.write_to(&mut b);
        b
    }

    fn parse(reqs: &[[u8; 12]]) -> (TxVerdict, Vec<Slot>) {
        let mut slots = Vec::new();
        let mut reads = vec![0u32; reqs.len()];
        let v = parse_packet(
            reqs.len() as u32,
            |i| {
                reads[i as usize] += 1;
                reqs[i as usize]
            },
            &mut slots,
        );
        assert!(
            reads.iter().all(|&n| n <= 1),
            "each slot read once: {reads:?}"
        );
        (v, slots)
    }

    #[test]
    fn single_slot_packet() {
        let (v, s) = parse(&[req(8, 100, NETTXF_csum_blank, 3, 60)]);
        assert_eq!(
            v,
            TxVerdict::Packet(TxPacket {
                size: 60,
                flags: NETTXF_csum_blank,
                gso: None
            })
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].len, 60);
    }

    #[test]
    fn chain_with_gso_extra() {
        let (v, s) = parse(&[
            req(
                1,
                0,
                NETTXF_more_data | NETTXF_extra_info | NETTXF_csum_blank,
                1,
                9000,
            ),
            extra(netif_extra_info::gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0)),
            req(2, 0, NETTXF_more_data, 2, 4096),
            req(3, 0, 0, 3, 4000),
            req(4, 0, 0, 4, 1), // the next packet: not consumed
        ]);
        let TxVerdict::Packet(p) = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            p.gso,
            Some(Gso {
                gso_type: XEN_NETIF_GSO_TYPE_TCPV4,
                size: 1448
            })
        );
        let kinds: Vec<_> = s.iter().map(|s| (s.kind, s.len)).collect();
        assert_eq!(
            kinds,
            [
                (SlotKind::First, 904),
                (SlotKind::Extra, 0),
                (SlotKind::Frag, 4096),
                (SlotKind::Frag, 4000)
            ]
        );
    }

    #[test]
    fn unpublished_tail_is_incomplete() {
        let r = [
            req(1, 0, NETTXF_more_data, 1, 200),
            req(2, 0, NETTXF_more_data, 2, 100),
        ];
        assert_eq!(parse(&r).0, TxVerdict::Incomplete);
        let r = [req(1, 0, NETTXF_extra_info, 1, 200)];
        assert_eq!(parse(&r).0, TxVerdict::Incomplete);
        assert_eq!(parse(&[]).0, TxVerdict::Incomplete);
    }

    #[test]
    fn hostile_chains_are_dropped_whole() {
        // 19 data slots.
        let mut r = vec![req(1, 0, NETTXF_more_data, 0, 19 * 100)];
        for i in 1..19 {
            let f = if i < 18 { NETTXF_more_data } else { 0 };
            r.push(req(1, 0, f, i, 100));
        }
        let (v, s) = parse(&r);
        assert_eq!(v, TxVerdict::Drop(DropReason::TooManySlots(19)));
        assert_eq!(s.len(), 19, "the whole chain is consumed");
        // Exactly 18 is fine.
        r.truncate(18);
        r[17] = req(1, 0, 0, 17, 100);
        r[0] = req(1, 0, NETTXF_more_data, 0, 18 * 100);
        assert!(matches!(parse(&r).0, TxVerdict::Packet(_)));

        let (v, s) = parse(&[req(1, 0, NETTXF_more_data, 0, 100), req(2, 0, 0, 1, 101)]);
        assert_eq!(
            v,
            TxVerdict::Drop(DropReason::SizeMismatch {
                total: 100,
                frags: 101
            })
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            parse(&[req(1, 4000, 0, 0, 97)]).0,
            TxVerdict::Drop(DropReason::CrossesPage {
                offset: 4000,
                len: 97
            })
        );
        assert!(matches!(
            parse(&[req(1, 4000, 0, 0, 96)]).0,
            TxVerdict::Packet(_)
        ));
        assert_eq!(
            parse(&[req(1, 0xffff, 0, 0, 60)]).0,
            TxVerdict::Drop(DropReason::CrossesPage {
                offset: 0xffff,
                len: 60
            })
        );
        // A fragment crossing its page.
        assert!(matches!(
            parse(&[
                req(1, 0, NETTXF_more_data, 0, 5000),
                req(2, 100, 0, 1, 4000)
            ])
            .0,
            TxVerdict::Drop(DropReason::CrossesPage {
                offset: 100,
                len: 4000
            })
        ));
        // The first slot's share crossing its page.
        assert!(matches!(
            parse(&[req(1, 10, NETTXF_more_data, 0, 5000), req(2, 0, 0, 1, 904)]).0,
            TxVerdict::Drop(DropReason::CrossesPage {
                offset: 10,
                len: 4096
            })
        ));
        assert_eq!(
            parse(&[req(1, 0, 0, 0, 13)]).0,
            TxVerdict::Drop(DropReason::TooShort(13))
        );
    }

    #[test]
    fn bad_extras() {
        let first = req(1, 0, NETTXF_extra_info, 0, 100);
        let e = |t: u8, flags: u8| {
            extra(netif_extra_info {
                type_: t,
                flags,
                u: [0; 6],
            })
        };
        assert_eq!(
            parse(&[first, e(0, 0)]).0,
            TxVerdict::Drop(DropReason::BadExtra(0))
        );
        assert_eq!(
            parse(&[first, e(9, 0)]).0,
            TxVerdict::Drop(DropReason::BadExtra(9))
        );
        let gso0 = extra(netif_extra_info::gso(0, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0));
        assert_eq!(
            parse(&[first, gso0]).0,
            TxVerdict::Drop(DropReason::BadGso {
                gso_type: 1,
                size: 0
            })
        );
        let gso_udp = extra(netif_extra_info::gso(1400, 3, 0, 0));
        assert!(matches!(
            parse(&[first, gso_udp]).0,
            TxVerdict::Drop(DropReason::BadGso { .. })
        ));
        // A repeated type, then more: the whole extra chain is consumed.
        let g = netif_extra_info::gso(1400, XEN_NETIF_GSO_TYPE_TCPV4, 0, XEN_NETIF_EXTRA_FLAG_MORE);
        let (v, s) = parse(&[first, extra(g), extra(g), e(2, 0)]);
        assert_eq!(v, TxVerdict::Drop(DropReason::BadExtra(1)));
        assert_eq!(s.len(), 4);
        // Multicast extras are accepted and ignored.
        let (v, _) = parse(&[first, e(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, 0)]);
        assert!(matches!(v, TxVerdict::Packet(TxPacket { gso: None, .. })));
        // An endless MORE chain is incomplete, never a loop.
        let more = e(XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_FLAG_MORE);
        let mut r = vec![first];
        r.extend(std::iter::repeat_n(more, 255));
        assert_eq!(parse(&r).0, TxVerdict::Incomplete);
    }
}
