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

use xen_abi::io::blkif::VDISK_READONLY;
use xen_abi::io::xenbus::XenbusState;
use xen_abi::{DomId, GrantRef};

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

    /// What the device serves.
    pub fn config(&self) -> &DiskConfig {
        &self.cfg
    }

    /// Change a removable drive's medium (`cd-insert`, `cd-eject`): serve
    /// `disk`, opened from `cfg`, from now on, connected or not. The old
    /// medium is flushed and closed. The caller republishes the backend's
    /// nodes ([`crate::xenbus::XenbusBackend::republish`]) so the frontend
    /// sees the new size, as Linux's blkback signals a resize.
    pub fn change_media(&mut self, cfg: DiskConfig, disk: Box<dyn Disk>) {
        let old = match self.conn.as_mut() {
            Some(c) => Some(c.replace_disk(disk)),
            None => self.disk.replace(disk),
        };
        if let Some(mut old) = old
            && let Err(e) = old.flush()
        {
            tracing::warn!(cfg = ?self.cfg, "flushing the ejected medium failed: {e}");
        }
        self.cfg = cfg;
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

/// The device number of a virtual disk name, as libxl computes it
/// (`libxl__device_disk_dev_number`): `xvdX[N]`, `hdX[N]`, `sdX[N]`,
/// `dXpY`, or a plain number. `None` for anything else.
pub fn vdev_to_devid(vdev: &str) -> Option<u32> {
    fn letters(s: &str) -> Option<(u32, &str)> {
        // Bijective base 26: a = 0, z = 25, aa = 26, ...
        let n = s.bytes().take_while(u8::is_ascii_lowercase).count();
        if n == 0 || n > 4 {
            return None;
        }
        let mut idx: u32 = 0;
        for b in s[..n].bytes() {
            idx = idx * 26 + u32::from(b - b'a') + 1;
        }
        Some((idx - 1, &s[n..]))
    }
    fn number(s: &str) -> Option<u32> {
        if s.is_empty() {
            return Some(0);
        }
        if !s.bytes().all(|b| b.is_ascii_digit())
            || s.len() > 9
            || (s.len() > 1 && s.starts_with('0'))
        {
            return None;
        }
        s.parse().ok()
    }
    fn xvd(disk: u32, part: u32) -> Option<u32> {
        if disk < 16 && part < 16 {
            Some(202 << 8 | disk << 4 | part)
        } else if disk < (1 << 20) && part < 256 {
            Some(1 << 28 | disk << 8 | part)
        } else {
            None
        }
    }
    if let Some(rest) = vdev.strip_prefix("xvd") {
        let (disk, rest) = letters(rest)?;
        return xvd(disk, number(rest)?);
    }
    if let Some(rest) = vdev.strip_prefix("hd") {
        let (disk, rest) = letters(rest)?;
        let part = number(rest)?;
        if disk >= 4 || part >= 64 {
            return None;
        }
        let major = if disk < 2 { 3 } else { 22 };
        return Some(major << 8 | (disk % 2) << 6 | part);
    }
    if let Some(rest) = vdev.strip_prefix("sd") {
        let (disk, rest) = letters(rest)?;
        let part = number(rest)?;
        return (disk < 16 && part < 16).then_some(8 << 8 | disk << 4 | part);
    }
    if let Some(rest) = vdev.strip_prefix('d')
        && let Some((d, p)) = rest.split_once('p')
    {
        return xvd(
            number(d).filter(|_| !d.is_empty())?,
            number(p).filter(|_| !p.is_empty())?,
        );
    }
    number(vdev).filter(|_| !vdev.is_empty())
}

/// The XenStore nodes of one virtual disk, as libxl writes them
/// (`libxl_disk.c`, `docs/misc/xenstore-paths.pandoc`): names relative to
/// the backend and frontend directories, and values (none read-only in the
/// frontend directory). [`crate::xenbus::write_device_nodes`] writes them.
pub type VbdNodes = crate::xenbus::DeviceNodes;

/// The nodes the toolstack writes for disk `cfg` of domain `domid`, seen
/// by the guest as `vdev` (device number `devid`), served from dom0.
///
/// One difference from libxl: a cdrom drive's *frontend* `device-type` is
/// `disk`. rxen's guests are PVH, and Linux's blkfront ignores a vbd whose
/// `device-type` is `cdrom` in any HVM-family domain (PVH included), where Xen
/// leaves cdroms to the device model; as a PV disk the guest sees the drive,
/// removable and a cdrom by its `info` bits, and its media changes (`xl
/// cd-insert`, `cd-eject`) as capacity changes. The backend keeps `cdrom`.
pub fn vbd_nodes(domid: DomId, devid: u32, vdev: &str, cfg: &DiskConfig) -> VbdNodes {
    use crate::xenbus::{backend_path, frontend_path};
    let device_type = if cfg.cdrom { "cdrom" } else { "disk" };
    let params = cfg
        .path
        .as_deref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = match cfg.format {
        super::DiskFormat::Raw => "phy",
        super::DiskFormat::Qcow2 => "qdisk",
    };
    VbdNodes {
        backend: vec![
            ("frontend", frontend_path("vbd", domid, devid)),
            ("frontend-id", domid.to_string()),
            ("online", "1".to_owned()),
            ("removable", u8::from(cfg.cdrom).to_string()),
            ("bootable", "1".to_owned()),
            ("state", XenbusState::Initialising.to_string()),
            ("dev", vdev.to_owned()),
            ("type", kind.to_owned()),
            ("mode", if cfg.readonly { "r" } else { "w" }.to_owned()),
            ("device-type", device_type.to_owned()),
            ("params", params),
        ],
        frontend: vec![
            ("backend", backend_path(DomId::DOM0, "vbd", domid, devid)),
            ("backend-id", "0".to_owned()),
            ("state", XenbusState::Initialising.to_string()),
            ("virtual-device", devid.to_string()),
            ("device-type", "disk".to_owned()),
        ],
        frontend_ro: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_as_libxl() {
        for (v, n) in [
            ("xvda", Some(51712)),
            ("xvdb", Some(51728)),
            ("xvda1", Some(51713)),
            ("xvdp15", Some(202 << 8 | 15 << 4 | 15)),
            ("xvdq", Some(1 << 28 | 16 << 8)),
            ("xvdaa", Some(1 << 28 | 26 << 8)),
            ("hda", Some(768)),
            ("hdb", Some(832)),
            ("hdc", Some(5632)),
            ("sda", Some(2048)),
            ("sdb2", Some(2066)),
            ("d0p0", Some(51712)),
            ("d1p2", Some(51730)),
            ("51712", Some(51712)),
            ("xvd", None),
            ("xvdA", None),
            ("xvda01", None),
            ("hde", None),
            ("", None),
            ("vda", None),
            ("d1", None),
        ] {
            assert_eq!(vdev_to_devid(v), n, "{v}");
        }
    }

    /// The value of node `k` among `v`.
    fn get(v: &[(&str, String)], k: &str) -> String {
        v.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    #[test]
    fn libxl_node_layout() {
        let n = vbd_nodes(
            DomId(3),
            51728,
            "xvdb",
            &DiskConfig {
                path: Some("/img/b.qcow2".into()),
                format: super::super::DiskFormat::Qcow2,
                readonly: true,
                cdrom: false,
            },
        );
        assert_eq!(
            get(&n.backend, "frontend"),
            "/local/domain/3/device/vbd/51728"
        );
        assert_eq!(get(&n.backend, "params"), "/img/b.qcow2");
        assert_eq!(get(&n.backend, "mode"), "r");
        assert_eq!(get(&n.backend, "state"), "1");
        assert_eq!(get(&n.backend, "online"), "1");
        assert_eq!(
            get(&n.frontend, "backend"),
            "/local/domain/0/backend/vbd/3/51728"
        );
        assert_eq!(get(&n.frontend, "virtual-device"), "51728");
        assert_eq!(get(&n.frontend, "device-type"), "disk");
    }

    #[test]
    fn a_cdrom_is_a_removable_cdrom_to_the_backend_and_a_disk_to_the_frontend() {
        let n = vbd_nodes(
            DomId(3),
            5632,
            "hdc",
            &DiskConfig {
                path: None,
                format: super::super::DiskFormat::Raw,
                readonly: true,
                cdrom: true,
            },
        );
        assert_eq!(get(&n.backend, "device-type"), "cdrom");
        assert_eq!(get(&n.backend, "removable"), "1");
        assert_eq!(get(&n.backend, "params"), "");
        // Linux's blkfront drops a `cdrom` vbd in a PVH guest.
        assert_eq!(get(&n.frontend, "device-type"), "disk");
    }
}
