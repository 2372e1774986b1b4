//! The PV network backend (netback), `xen/include/public/io/netif.h`.
//!
//! A vif is two rings in pages the guest grants (TX: guest → host, RX:
//! host → guest), one event channel, and a host device. [`Netback`] moves
//! frames between them:
//!
//! - **TX**: each packet's requests are copied out of the ring once and
//!   judged ([`tx::parse_packet`]); its data is copied out of the granted
//!   pages into one frame and handed to the host device with a
//!   `virtio_net_hdr` ([`device`]): a blank checksum (`NETTXF_csum_blank`)
//!   becomes `NEEDS_CSUM` with the pseudo-header seeded (or is completed in
//!   software, [`NetbackConfig::software_tx_csum`]), a GSO extra becomes
//!   the header's GSO type and size, `NETTXF_data_validated` becomes
//!   `DATA_VALID`. Every request slot gets its response, in order (extras
//!   `NETIF_RSP_NULL`). `rate=` throttles here ([`rate`]).
//! - **RX** (receive-copy only, as every current frontend uses): a frame
//!   from the host is copied into as many posted guest pages as it needs
//!   (more than one only with `feature-sg`), each response in the slot of
//!   the request it answers, a GSO extra after the first when the frame is
//!   a TSO frame and the guest negotiated GSO. A frame with a partial
//!   checksum is passed on as `NETRXF_csum_blank` when the guest accepts
//!   that, else completed first. A frame that does not fit the posted
//!   requests waits (one frame, the rest stays in the host device's queue)
//!   until the guest posts more and notifies (`feature-rx-notify`, which
//!   rxen requires, as Linux's netback does).
//!
//! Features are those Linux's netback offers and Linux's netfront uses
//! ([`BACKEND_FEATURES`], [`FrontendFeatures`]), with one queue and one
//! event channel.
//!
//! A hostile frontend gets its packets dropped (`NETIF_RSP_ERROR`) for
//! anything confined to one packet (bad grant, bad chain, bad sizes); ring
//! indices that cannot be right break the device ([`NetState::Broken`]):
//! nothing more is read or written, and the caller closes it. Nothing a
//! guest writes can make this code panic, loop without bound or allocate
//! more than the two frame buffers of [`MAX_HOST_FRAME`] bytes.
//!
//! The host side: [`tap`] (the `vif<domid>.<devid>` TAP), [`mac`]
//! (addresses), [`hotplug`] (bridge / route / NAT, or the user's scripts).

pub mod csum;
pub mod device;
pub mod hotplug;
pub mod mac;
pub mod rate;
pub mod tap;
pub mod tx;
pub mod xenbus;

use std::io;
use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

use xen_abi::GrantRef;
use xen_abi::io::netif::*;
use xen_abi::io::ring::{
    SRING_OFF_req_event, SRING_OFF_req_prod, SRING_OFF_rsp_event, SRING_OFF_rsp_prod,
    ring_needs_notify,
};
use xen_abi::layout::Abi;

use crate::grant::{GrantAccess, GrantedPage};
use crate::ring::{Notify, RingMemory};
use device::{
    Offloads, PacketDevice, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VnetHdr,
};
use rate::{Rate, RateLimiter};
use tx::{SlotKind, TxPacket, TxVerdict};

/// The largest frame the host may hand over: a 64 KiB IP packet (TSO)
/// under an Ethernet header and two VLAN tags.
pub const MAX_HOST_FRAME: usize = 65535 + 14 + 8;
/// Packets taken from the TX ring per [`Netback::process_tx`] call.
pub const TX_BUDGET: usize = 64;
/// Frames given to the guest per [`Netback::process_rx`] call.
pub const RX_BUDGET: usize = 64;
const PAGE: usize = 4096;

/// The nodes Linux's netback writes in its backend directory, as rxen
/// supports them: receive-copy, scatter-gather, TCP segmentation offload
/// both ways, IPv6 checksum offload, one queue.
pub const BACKEND_FEATURES: &[(&str, &str)] = &[
    ("feature-sg", "1"),
    ("feature-gso-tcpv4", "1"),
    ("feature-gso-tcpv6", "1"),
    ("feature-ipv6-csum-offload", "1"),
    ("feature-rx-copy", "1"),
    ("feature-rx-flip", "0"),
    ("multi-queue-max-queues", "1"),
];

/// Errors that break a vif, or that the caller should know of.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The TX ring's producer index is impossible.
    #[error("the guest's TX ring is corrupt (req_prod {prod:#x}, req_cons {cons:#x})")]
    TxRingCorrupt {
        /// `req_prod` as read.
        prod: u32,
        /// The backend's consumer index.
        cons: u32,
    },
    /// The RX ring's producer index is impossible.
    #[error("the guest's RX ring is corrupt (req_prod {prod:#x}, req_cons {cons:#x})")]
    RxRingCorrupt {
        /// `req_prod` as read.
        prod: u32,
        /// The backend's consumer index.
        cons: u32,
    },
    /// The whole TX ring is one packet that never ends.
    #[error("the guest's TX ring holds one unterminated packet chain")]
    EndlessChain,
    /// The frontend asked for something rxen does not do.
    #[error("frontend: {0}")]
    Frontend(String),
    /// Reading from the host device failed.
    #[error("reading from the host device failed")]
    DeviceRecv(#[source] io::Error),
}

/// What the frontend negotiated (its nodes under
/// `/local/domain/<domid>/device/vif/<devid>/`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontendFeatures {
    /// `feature-sg`: packets over several slots.
    pub sg: bool,
    /// `feature-gso-tcpv4`.
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`.
    pub gso_tcpv6: bool,
    /// Not `feature-no-csum-offload`: the guest accepts received IPv4
    /// frames with a blank checksum.
    pub csum: bool,
    /// `feature-ipv6-csum-offload`: likewise for IPv6.
    pub ipv6_csum: bool,
}

impl FrontendFeatures {
    /// Read the frontend's nodes through `read` (the value of a node by
    /// name, `None` if absent). rxen requires `request-rx-copy` and
    /// `feature-rx-notify` and one queue, as Linux's netback does (the
    /// first two) and as it advertises (the last).
    pub fn from_nodes(read: impl Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        let flag = |k: &str, default: bool| {
            read(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(default, |v| v != 0)
        };
        if !flag("request-rx-copy", false) {
            return Err(NetError::Frontend(
                "request-rx-copy is required (page flipping is not supported)".into(),
            ));
        }
        if !flag("feature-rx-notify", false) {
            return Err(NetError::Frontend("feature-rx-notify is required".into()));
        }
        if let Some(q) = read("multi-queue-num-queues")
            && q.trim() != "1"
        {
            return Err(NetError::Frontend(format!(
                "multi-queue-num-queues {q} (at most 1)"
            )));
        }
        Ok(Self {
            sg: flag("feature-sg", false),
            gso_tcpv4: flag("feature-gso-tcpv4", false),
            gso_tcpv6: flag("feature-gso-tcpv6", false),
            csum: !flag("feature-no-csum-offload", false),
            ipv6_csum: flag("feature-ipv6-csum-offload", false),
        })
    }

    /// What the host device may hand over for this guest.
    pub fn offloads(&self) -> Offloads {
        Offloads {
            csum: self.csum,
            tso4: self.csum && self.sg && self.gso_tcpv4,
            tso6: self.csum && self.ipv6_csum && self.sg && self.gso_tcpv6,
        }
    }
}

/// Settings of one vif.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetbackConfig {
    /// `rate=`, from the backend node `rate`.
    pub rate: Option<Rate>,
    /// Complete blank checksums of the guest's frames in software instead
    /// of passing them to the host device as `NEEDS_CSUM`.
    pub software_tx_csum: bool,
}

/// Whether the vif still serves the rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetState {
    /// Serving.
    Connected,
    /// The guest corrupted a ring; nothing more is done.
    Broken,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames sent to the host.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Guest packets refused (bad requests, bad grants, bad checksums).
    pub tx_errors: u64,
    /// Guest packets the host device refused.
    pub tx_dropped: u64,
    /// Frames given to the guest.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Host frames the guest could not take (too big without
    /// scatter-gather, offloads it did not negotiate, malformed).
    pub rx_dropped: u64,
    /// Frames given with a slot the guest's grant did not allow.
    pub rx_errors: u64,
}

/// What a [`Netback::process_tx`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxProgress {
    /// Packets taken (sent or dropped).
    pub packets: usize,
    /// The budget ran out with requests left: call again.
    pub more: bool,
    /// `rate=` holds the next packet until then: call again at that time.
    pub throttled_until: Option<Instant>,
}

/// What a [`Netback::process_rx`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxProgress {
    /// Frames taken from the host device (delivered or dropped).
    pub packets: usize,
    /// The budget ran out: call again.
    pub more: bool,
    /// A frame waits for the guest to post receive buffers (it will
    /// notify).
    pub waiting_for_guest: bool,
}

/// How a host frame goes into the RX ring.
#[derive(Clone, Copy, Debug)]
struct RxPlan {
    data_slots: u32,
    gso: Option<(u8, u16)>,
    flags: u16,
}

impl RxPlan {
    fn slots(&self) -> u32 {
        self.data_slots + u32::from(self.gso.is_some())
    }
}

/// Log the first occurrences of a guest-triggered event, then every
/// power-of-two-th: bounded noise whatever the guest does.
fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

/// One vif: its rings, the guest's grants and the host device.
#[derive(Debug)]
pub struct Netback<G, D, M, N> {
    tx: M,
    rx: M,
    notify: N,
    grants: G,
    dev: D,
    features: FrontendFeatures,
    cfg: NetbackConfig,
    limiter: Option<RateLimiter>,
    state: NetState,
    stats: NetStats,
    tx_cons: u32,
    tx_rsp: u32,
    tx_rsp_pushed: u32,
    rx_cons: u32,
    rx_rsp: u32,
    rx_rsp_pushed: u32,
    slots: Vec<tx::Slot>,
    txbuf: Vec<u8>,
    rxbuf: Vec<u8>,
    pending: Option<(VnetHdr, usize)>,
}

impl<G, D, M, N> Netback<G, D, M, N>
where
    G: GrantAccess,
    D: PacketDevice,
    M: RingMemory,
    N: Notify,
{
    /// Serve the TX ring page `tx` and the RX ring page `rx` (as the
    /// frontend initialised them), with event channel `notify`, the
    /// guest's `grants` and the host device `dev`, which is told what the
    /// guest accepts (if it cannot be told, it hands over complete frames
    /// as before and frames the guest cannot take are dropped). `now`
    /// starts the rate limiter's clock.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tx: M,
        rx: M,
        notify: N,
        grants: G,
        mut dev: D,
        features: FrontendFeatures,
        cfg: NetbackConfig,
        now: Instant,
    ) -> Self {
        if let Err(e) = dev.set_offloads(features.offloads()) {
            tracing::warn!(error = %e, "setting the host device's offloads failed");
        }
        // Attach where the rings are (a reconnecting frontend keeps its
        // indices): everything before the response producer is answered.
        let tx_start = tx.load_u32(SRING_OFF_rsp_prod);
        let rx_start = rx.load_u32(SRING_OFF_rsp_prod);
        Self {
            tx,
            rx,
            notify,
            grants,
            dev,
            features,
            cfg,
            limiter: cfg.rate.map(|r| RateLimiter::new(r, now)),
            state: NetState::Connected,
            stats: NetStats::default(),
            tx_cons: tx_start,
            tx_rsp: tx_start,
            tx_rsp_pushed: tx_start,
            rx_cons: rx_start,
            rx_rsp: rx_start,
            rx_rsp_pushed: rx_start,
            slots: Vec::with_capacity(NET_TX_RING_SIZE as usize),
            txbuf: Vec::with_capacity(XEN_NETIF_MAX_TX_SIZE as usize),
            rxbuf: vec![0; MAX_HOST_FRAME],
            pending: None,
        }
    }

    /// End the connection, giving back the host device (the rings' pages
    /// are released).
    pub fn into_device(self) -> D {
        self.dev
    }

    /// Connected or broken.
    pub fn state(&self) -> NetState {
        self.state
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The negotiated features.
    pub fn features(&self) -> FrontendFeatures {
        self.features
    }

    /// The host device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    fn fail(&mut self, e: NetError) -> Result<(), NetError> {
        tracing::warn!(error = %e, "vif broken");
        self.state = NetState::Broken;
        self.pending = None;
        Err(e)
    }

    /// Take packets the guest has queued on the TX ring (at most
    /// [`TX_BUDGET`]) and send them to the host device, answering each.
    pub fn process_tx(&mut self, now: Instant) -> Result<TxProgress, NetError> {
        let mut progress = TxProgress::default();
        if self.state == NetState::Broken {
            return Ok(progress);
        }
        let res = self.tx_loop(now, &mut progress);
        let notify = self.push_tx();
        if notify {
            self.notify.notify();
        }
        res.map(|()| progress)
    }

    fn tx_loop(&mut self, now: Instant, progress: &mut TxProgress) -> Result<(), NetError> {
        loop {
            let prod = self.tx.load_u32(SRING_OFF_req_prod);
            let avail = prod.wrapping_sub(self.tx_cons);
            if avail > NET_TX_RING_SIZE {
                let cons = self.tx_cons;
                return self.fail(NetError::TxRingCorrupt { prod, cons });
            }
            if avail > 0 && progress.packets >= TX_BUDGET {
                progress.more = true;
                return Ok(());
            }
            let cons = self.tx_cons;
            let ring = &self.tx;
            let verdict = tx::parse_packet(
                avail,
                |i| {
                    let mut b = [0u8; NETIF_TX_SLOT_SIZE];
                    ring.read(netif_tx_slot_offset(cons.wrapping_add(i)), &mut b);
                    b
                },
                &mut self.slots,
            );
            match verdict {
                TxVerdict::Incomplete => {
                    if avail == NET_TX_RING_SIZE {
                        return self.fail(NetError::EndlessChain);
                    }
                    // Ask to be notified of the next request, then look
                    // once more in case it came meanwhile.
                    self.tx.store_u32(SRING_OFF_req_event, prod.wrapping_add(1));
                    fence(Ordering::SeqCst);
                    if self.tx.load_u32(SRING_OFF_req_prod) == prod {
                        return Ok(());
                    }
                }
                TxVerdict::Drop(reason) => {
                    self.stats.tx_errors += 1;
                    if worth_logging(self.stats.tx_errors) {
                        tracing::warn!(%reason, count = self.stats.tx_errors, "dropping a guest packet");
                    }
                    self.respond_tx(NETIF_RSP_ERROR);
                    progress.packets += 1;
                }
                TxVerdict::Packet(p) => {
                    if let Some(l) = &mut self.limiter
                        && let Err(at) = l.consume(u64::from(p.size), now)
                    {
                        progress.throttled_until = Some(at);
                        return Ok(());
                    }
                    let status = self.send_packet(&p);
                    self.respond_tx(status);
                    progress.packets += 1;
                }
            }
        }
    }

    /// Copy the packet's data out of the guest and hand it to the device.
    fn send_packet(&mut self, p: &TxPacket) -> i16 {
        self.txbuf.clear();
        self.txbuf.resize(usize::from(p.size), 0);
        let mut at = 0usize;
        for s in self.slots.iter().filter(|s| s.kind != SlotKind::Extra) {
            let len = usize::from(s.len);
            if len == 0 {
                continue;
            }
            let copied = self
                .grants
                .map(GrantRef(s.req.gref), false)
                .map_err(|e| e.to_string())
                .and_then(|page| {
                    let src = page
                        .read_slice()
                        .subslice(usize::from(s.req.offset), len)
                        .map_err(|e| e.to_string())?;
                    Ok(src.copy_to(&mut self.txbuf[at..at + len]))
                });
            match copied {
                Ok(n) if n == len => at += len,
                Ok(_) | Err(_) => {
                    self.stats.tx_errors += 1;
                    if worth_logging(self.stats.tx_errors) {
                        tracing::warn!(gref = s.req.gref, error = ?copied.err(), "guest packet with an unusable grant");
                    }
                    return NETIF_RSP_ERROR;
                }
            }
        }
        let mut hdr = VnetHdr::default();
        let frame = &mut self.txbuf[..];
        let ok = if let Some(g) = p.gso {
            csum::seed_partial(frame).ok().and_then(|l4| {
                let want_v6 = g.gso_type == XEN_NETIF_GSO_TYPE_TCPV6;
                if l4.proto != csum::IPPROTO_TCP || l4.ipv6 != want_v6 {
                    return None;
                }
                let doff = usize::from(frame[l4.start + 12] >> 4) * 4;
                hdr = VnetHdr {
                    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
                    gso_type: if want_v6 {
                        VIRTIO_NET_HDR_GSO_TCPV6
                    } else {
                        VIRTIO_NET_HDR_GSO_TCPV4
                    },
                    hdr_len: (l4.start + doff) as u16,
                    gso_size: g.size,
                    csum_start: l4.start as u16,
                    csum_offset: l4.csum_offset as u16,
                };
                Some(())
            })
        } else if p.flags & NETTXF_csum_blank != 0 {
            if self.cfg.software_tx_csum {
                csum::fill(frame).ok().map(|_| ())
            } else {
                csum::seed_partial(frame).ok().map(|l4| {
                    hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                    hdr.csum_start = l4.start as u16;
                    hdr.csum_offset = l4.csum_offset as u16;
                })
            }
        } else {
            if p.flags & NETTXF_data_validated != 0 {
                hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
            }
            Some(())
        };
        if ok.is_none() {
            self.stats.tx_errors += 1;
            if worth_logging(self.stats.tx_errors) {
                tracing::warn!("guest packet with offloads on headers that allow none");
            }
            return NETIF_RSP_ERROR;
        }
        match self.dev.send(&hdr, frame) {
            Ok(()) => {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += u64::from(p.size);
                NETIF_RSP_OKAY
            }
            Err(e) => {
                self.stats.tx_dropped += 1;
                if worth_logging(self.stats.tx_dropped) {
                    tracing::warn!(error = %e, "the host device refused a packet");
                }
                NETIF_RSP_DROPPED
            }
        }
    }

    /// Answer every slot of the packet in `self.slots` and consume them.
    fn respond_tx(&mut self, status: i16) {
        for s in &self.slots {
            let rsp = netif_tx_response {
                id: s.req.id,
                status: if s.kind == SlotKind::Extra {
                    NETIF_RSP_NULL
                } else {
                    status
                },
            };
            let mut b = [0u8; 4];
            rsp.write_to(&mut b);
            self.tx.write(netif_tx_slot_offset(self.tx_rsp), &b);
            self.tx_rsp = self.tx_rsp.wrapping_add(1);
        }
        self.tx_cons = self.tx_cons.wrapping_add(self.slots.len() as u32);
    }

    /// Publish TX responses; whether the guest asked to be notified.
    fn push_tx(&mut self) -> bool {
        let (old, new) = (self.tx_rsp_pushed, self.tx_rsp);
        if old == new {
            return false;
        }
        self.tx.store_u32(SRING_OFF_rsp_prod, new);
        self.tx_rsp_pushed = new;
        fence(Ordering::SeqCst);
        ring_needs_notify(old, new, self.tx.load_u32(SRING_OFF_rsp_event))
    }

    /// Move frames from the host device into the guest's posted receive
    /// buffers (at most [`RX_BUDGET`]). When the answer says
    /// `waiting_for_guest`, one frame is held and the caller should stop
    /// watching the host device until the guest notifies (it has been
    /// asked to, through `req_event`), or it would spin on a readable
    /// device.
    pub fn process_rx(&mut self) -> Result<RxProgress, NetError> {
        let mut progress = RxProgress::default();
        if self.state == NetState::Broken {
            return Ok(progress);
        }
        let res = self.rx_loop(&mut progress);
        if self.push_rx() {
            self.notify.notify();
        }
        res.map(|()| progress)
    }

    fn rx_loop(&mut self, progress: &mut RxProgress) -> Result<(), NetError> {
        loop {
            if progress.packets >= RX_BUDGET {
                progress.more = true;
                return Ok(());
            }
            let (hdr, len) = match self.pending {
                Some(p) => p,
                None => match self.dev.recv(&mut self.rxbuf) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(NetError::DeviceRecv(e)),
                },
            };
            self.pending = Some((hdr, len));
            let Some(plan) = self.rx_plan(&hdr, len) else {
                self.pending = None;
                self.stats.rx_dropped += 1;
                progress.packets += 1;
                continue;
            };
            let prod = self.rx.load_u32(SRING_OFF_req_prod);
            let avail = prod.wrapping_sub(self.rx_cons);
            if avail > NET_RX_RING_SIZE {
                let cons = self.rx_cons;
                return self.fail(NetError::RxRingCorrupt { prod, cons });
            }
            if avail < plan.slots() {
                // Wake me when enough buffers are posted.
                self.rx
                    .store_u32(SRING_OFF_req_event, self.rx_cons.wrapping_add(plan.slots()));
                fence(Ordering::SeqCst);
                if self.rx.load_u32(SRING_OFF_req_prod) == prod {
                    progress.waiting_for_guest = true;
                    return Ok(());
                }
                continue;
            }
            self.deliver(&plan, len);
            self.pending = None;
            progress.packets += 1;
        }
    }

    /// Decide how a host frame goes to the guest, completing its checksum
    /// if the guest cannot take it partial; `None` to drop it.
    fn rx_plan(&mut self, hdr: &VnetHdr, len: usize) -> Option<RxPlan> {
        let f = self.features;
        if !(csum::ETH_HLEN..=MAX_HOST_FRAME).contains(&len) || (len > PAGE && !f.sg) {
            return None;
        }
        let frame = &mut self.rxbuf[..len];
        let mut flags = 0;
        if hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
            let ipv6 = csum::locate_l4(frame).map(|l| l.ipv6);
            let guest_takes = match ipv6 {
                Ok(false) => f.csum,
                Ok(true) => f.ipv6_csum,
                Err(_) => false,
            };
            if guest_takes {
                flags = NETRXF_csum_blank | NETRXF_data_validated;
            } else {
                csum::complete_partial(
                    frame,
                    usize::from(hdr.csum_start),
                    usize::from(hdr.csum_offset),
                )
                .ok()?;
                flags = NETRXF_data_validated;
            }
        } else if hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID != 0 {
            flags = NETRXF_data_validated;
        }
        let gso = match hdr.gso_type {
            VIRTIO_NET_HDR_GSO_NONE => None,
            VIRTIO_NET_HDR_GSO_TCPV4 if f.gso_tcpv4 => Some(XEN_NETIF_GSO_TYPE_TCPV4),
            VIRTIO_NET_HDR_GSO_TCPV6 if f.gso_tcpv6 => Some(XEN_NETIF_GSO_TYPE_TCPV6),
            _ => return None,
        };
        let gso = match gso {
            // A segmented frame must arrive with its checksum blank.
            Some(t) if flags & NETRXF_csum_blank != 0 && hdr.gso_size != 0 => {
                Some((t, hdr.gso_size))
            }
            Some(_) => return None,
            None => None,
        };
        Some(RxPlan {
            data_slots: len.div_ceil(PAGE) as u32,
            gso,
            flags,
        })
    }

    /// Copy the pending frame into the next `plan.slots()` requests.
    fn deliver(&mut self, plan: &RxPlan, len: usize) {
        let mut off = 0usize;
        let mut failed = false;
        for k in 0..plan.slots() {
            let idx = self.rx_cons.wrapping_add(k);
            let mut raw = [0u8; NETIF_RX_SLOT_SIZE];
            self.rx.read(netif_rx_slot_offset(idx), &mut raw);
            let req = netif_rx_request::read_from(&raw).expect("8 bytes");
            let out = if k == 1
                && let Some((t, size)) = plan.gso
            {
                netif_extra_info::gso(size, t, 0, 0).to_bytes()
            } else {
                let chunk = (len - off).min(PAGE);
                let data = &self.rxbuf[off..off + chunk];
                off += chunk;
                let copied = self.grants.map(GrantRef(req.gref), true).is_ok_and(|page| {
                    page.write_slice()
                        .and_then(|s| s.subslice(0, chunk).ok())
                        .map(|s| s.copy_from(data))
                        .is_some()
                });
                let mut flags = 0;
                if k == 0 {
                    flags |= plan.flags;
                    if plan.gso.is_some() {
                        flags |= NETRXF_extra_info;
                    }
                }
                if off < len {
                    flags |= NETRXF_more_data;
                }
                failed |= !copied;
                netif_rx_response {
                    id: req.id,
                    offset: 0,
                    flags,
                    status: if copied {
                        chunk as i16
                    } else {
                        NETIF_RSP_ERROR
                    },
                }
                .to_bytes()
            };
            self.rx.write(netif_rx_slot_offset(idx), &out);
        }
        debug_assert_eq!(off, len);
        self.rx_cons = self.rx_cons.wrapping_add(plan.slots());
        self.rx_rsp = self.rx_rsp.wrapping_add(plan.slots());
        if failed {
            self.stats.rx_errors += 1;
            if worth_logging(self.stats.rx_errors) {
                tracing::warn!("a receive buffer's grant is unusable");
            }
        } else {
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
        }
    }

    /// Publish RX responses; whether the guest asked to be notified.
    fn push_rx(&mut self) -> bool {
        let (old, new) = (self.rx_rsp_pushed, self.rx_rsp);
        if old == new {
            return false;
        }
        self.rx.store_u32(SRING_OFF_rsp_prod, new);
        self.rx_rsp_pushed = new;
        fence(Ordering::SeqCst);
        ring_needs_notify(old, new, self.rx.load_u32(SRING_OFF_rsp_event))
    }
}

#[cfg(test)]
mod host_tests;
#[cfg(test)]
mod tests;
