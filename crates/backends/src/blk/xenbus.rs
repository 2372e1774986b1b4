//! The `vbd` device kind: what blkback publishes in its backend directory
//! and how it connects to xen-blkfront's ring.
//!
//! Published before `InitWait` (so frontends that read them early or late
//! both find them): `sectors`, `sector-size` (512), `info` (`VDISK_*`),
//! `feature-flush-cache`, `feature-discard` (with `discard-granularity` and
//! `discard-alignment`), `feature-max-indirect-segments` and
//! `max-ring-page-order`. The toolstack writes the rest (`params`, `mode`,
//! `device-type`, `removable`, ...), as libxl does. On connect the
//! frontend's `ring-ref` (or `ring-page-order` and `ring-ref0..N-1`),
//! `event-channel` and `protocol` are read; only the x86_64 ABI and a
//! single queue are served.

use xen_abi::GrantRef;
use xen_abi::io::blkif::VDISK_READONLY;

use super::{BlkBackend, BlkRing, Disk, DiskConfig, MAX_INDIRECT_SEGMENTS, MAX_RING_PAGE_ORDER};
use crate::grant::GrantAccess;
use crate::ring::Notify;
use crate::xenbus::{ConnectError, FrontendNodes, XenbusDevice};

/// The `protocol` value of 64-bit x86 frontends (`XEN_IO_PROTO_ABI_X86_64`).
pub const PROTOCOL_X86_64: &str = "x86_64-abi";

/// Binds a frontend's event channel for a backend.
pub trait EventChannels {
    /// The bound channel: notifies the frontend (the owner also waits on it
    /// for the frontend's notifications).
    type Port: Notify;
    /// Bind the guest's port `remote_port` (allocated by the guest for the
    /// backend's domain).
    fn bind(&mut self, remote_port: u32) -> Result<Self::Port, String>;
}

/// A virtual block device: its disk, and the frontend connection while
/// there is one.
pub struct BlkDevice<G: GrantAccess, E: EventChannels> {
    cfg: DiskConfig,
    disk: Option<Box<dyn Disk>>,
    grants: G,
    events: E,
    conn: Option<BlkBackend<G, E::Port>>,
}

impl<G: GrantAccess, E: EventChannels> std::fmt::Debug for BlkDevice<G, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlkDevice")
            .field("cfg", &self.cfg)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl<G: GrantAccess + Clone, E: EventChannels> BlkDevice<G, E> {
    /// Serve `disk` (opened from `cfg`) to the guest whose grants are
    /// `grants`, binding event channels through `events`.
    pub fn new(cfg: DiskConfig, disk: Box<dyn Disk>, grants: G, events: E) -> Self {
        Self {
            cfg,
            disk: Some(disk),
            grants,
            events,
            conn: None,
        }
    }

    /// The connection to the frontend, to service on its notifications.
    pub fn connection(&mut self) -> Option<&mut BlkBackend<G, E::Port>> {
        self.conn.as_mut()
    }

    /// The event channels binder.
    pub fn events(&self) -> &E {
        &self.events
    }

    fn disk_ref(&self) -> Option<&dyn Disk> {
        match (&self.disk, &self.conn) {
            (Some(d), _) => Some(&**d),
            (None, Some(c)) => Some(c.disk()),
            (None, None) => None,
        }
    }
}

impl<G: GrantAccess + Clone, E: EventChannels> XenbusDevice for BlkDevice<G, E> {
    const KIND: &'static str = "vbd";

    fn backend_nodes(&mut self) -> Vec<(String, String)> {
        let (sectors, ro, discard) = self
            .disk_ref()
            .map(|d| (d.sectors(), d.read_only(), d.can_discard()))
            .unwrap_or((0, true, false));
        let mut info = self.cfg.vdisk_info();
        if ro {
            info |= VDISK_READONLY;
        }
        let mut v = vec![
            ("sectors", sectors.to_string()),
            ("sector-size", "512".to_owned()),
            ("info", info.to_string()),
            ("feature-flush-cache", "1".to_owned()),
            ("feature-discard", u8::from(discard).to_string()),
            (
                "feature-max-indirect-segments",
                MAX_INDIRECT_SEGMENTS.to_string(),
            ),
            ("max-ring-page-order", MAX_RING_PAGE_ORDER.to_string()),
        ];
        if discard {
            v.push(("discard-granularity", "4096".to_owned()));
            v.push(("discard-alignment", "0".to_owned()));
        }
        v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn connect(&mut self, front: &mut FrontendNodes<'_>) -> Result<(), ConnectError> {
        let invalid = |node: &str, value: String| ConnectError::Invalid {
            node: node.to_owned(),
            value,
        };
        if let Some(p) = front.read("protocol")?
            && p != PROTOCOL_X86_64
        {
            return Err(invalid("protocol", p.chars().take(64).collect()));
        }
        if let Some(q) = front.read_num::<u32>("multi-queue-num-queues")?
            && q != 1
        {
            return Err(invalid("multi-queue-num-queues", q.to_string()));
        }
        let refs: Vec<GrantRef> = match front.read_num::<u32>("ring-page-order")? {
            None => vec![GrantRef(front.require_num("ring-ref")?)],
            Some(order) if order <= MAX_RING_PAGE_ORDER => (0..1u32 << order)
                .map(|i| front.require_num(&format!("ring-ref{i}")).map(GrantRef))
                .collect::<Result<_, _>>()?,
            Some(order) => return Err(invalid("ring-page-order", order.to_string())),
        };
        let port: u32 = front.require_num("event-channel")?;
        self.disconnect();
        let ring = BlkRing::map(&self.grants, &refs)
            .map_err(|e| ConnectError::Device(format!("mapping the ring: {e}")))?;
        let notify = self
            .events
            .bind(port)
            .map_err(|e| ConnectError::Device(format!("binding event channel {port}: {e}")))?;
        let disk = self
            .disk
            .take()
            .ok_or_else(|| ConnectError::Device("the disk is unavailable".to_owned()))?;
        self.conn = Some(BlkBackend::new(
            self.grants.clone(),
            notify,
            ring,
            disk,
            MAX_INDIRECT_SEGMENTS,
        ));
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut disk = c.into_disk();
            // Image metadata (qcow2) reaches the file whatever the guest
            // did last.
            if let Err(e) = disk.flush() {
                tracing::warn!(cfg = ?self.cfg, "flushing the disk at disconnect failed: {e}");
            }
            self.disk = Some(disk);
        }
    }
}
