//! The `vif` device kind: what netback publishes in its backend directory,
//! how it connects to xen-netfront's rings, and the hotplug step around it.
//!
//! Published before `InitWait`: [`super::BACKEND_FEATURES`]. The toolstack
//! writes the rest (`mac`, `bridge`, `script`, `ip`, `rate`, `handle`,
//! `hotplug-status`, ...), as libxl does. On connect the frontend's
//! `tx-ring-ref`, `rx-ring-ref`, `event-channel` and features are read; a
//! frontend that asks for split event channels, several queues or page
//! flipping is refused (none is offered). The host device (the TAP) lives
//! as long as the [`VifDevice`]: it is handed to each connection and back.
//!
//! [`hotplug_online`] runs the vif's script (or rxen's built-in) and writes
//! `hotplug-status` (and `hotplug-error`) to the backend directory, and the
//! MTU to the frontend's `mtu` node as `vif-bridge` does; the domain
//! process calls it once the TAP exists, before starting the handshake.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use xen_abi::GrantRef;

use super::device::PacketDevice;
use super::hotplug::{
    Action, HostOps, HotplugError, HotplugReport, VifParams, hotplug, status_nodes,
};
use super::{BACKEND_FEATURES, FrontendFeatures, Netback, NetbackConfig};
use crate::blk::xenbus::EventChannels;
use crate::grant::{GrantAccess, PageRing};
use crate::xenbus::{ConnectError, FrontendNodes, Store, StoreError, XenbusDevice};

/// The frontend nodes netback reads (besides the ring details).
const FRONTEND_FEATURE_NODES: &[&str] = &[
    "request-rx-copy",
    "feature-rx-notify",
    "feature-sg",
    "feature-gso-tcpv4",
    "feature-gso-tcpv6",
    "feature-no-csum-offload",
    "feature-ipv6-csum-offload",
    "multi-queue-num-queues",
];

/// A live connection: netback over the two granted ring pages.
pub type VifConnection<G, D, P> = Netback<G, D, PageRing<<G as GrantAccess>::Page>, P>;

/// A virtual network interface: its host device, and the frontend
/// connection while there is one.
pub struct VifDevice<G: GrantAccess, E: EventChannels, D: PacketDevice> {
    grants: G,
    events: E,
    cfg: NetbackConfig,
    dev: Option<D>,
    conn: Option<VifConnection<G, D, E::Port>>,
}

impl<G: GrantAccess, E: EventChannels, D: PacketDevice> std::fmt::Debug for VifDevice<G, E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VifDevice")
            .field("cfg", &self.cfg)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl<G: GrantAccess + Clone, E: EventChannels, D: PacketDevice> VifDevice<G, E, D> {
    /// Serve the host device `dev` to the guest whose grants are `grants`,
    /// binding event channels through `events`.
    pub fn new(dev: D, grants: G, events: E, cfg: NetbackConfig) -> Self {
        Self {
            grants,
            events,
            cfg,
            dev: Some(dev),
            conn: None,
        }
    }

    /// The connection to the frontend, to service on its notifications and
    /// when the host device has frames.
    pub fn connection(&mut self) -> Option<&mut VifConnection<G, D, E::Port>> {
        self.conn.as_mut()
    }

    /// The host device while no frontend is connected.
    pub fn idle_device(&self) -> Option<&D> {
        self.dev.as_ref()
    }
}

impl<G: GrantAccess + Clone, E: EventChannels, D: PacketDevice> XenbusDevice
    for VifDevice<G, E, D>
{
    const KIND: &'static str = "vif";

    fn backend_nodes(&mut self) -> Vec<(String, String)> {
        BACKEND_FEATURES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn connect(&mut self, front: &mut FrontendNodes<'_>) -> Result<(), ConnectError> {
        let mut nodes = HashMap::new();
        for k in FRONTEND_FEATURE_NODES {
            if let Some(v) = front.read(k)? {
                nodes.insert(*k, v);
            }
        }
        let features = FrontendFeatures::from_nodes(|k| nodes.get(k).cloned())
            .map_err(|e| ConnectError::Device(e.to_string()))?;
        let tx_ref: u32 = front.require_num("tx-ring-ref")?;
        let rx_ref: u32 = front.require_num("rx-ring-ref")?;
        let port: u32 = match front.read_num("event-channel")? {
            Some(p) => p,
            None if front.read("event-channel-tx")?.is_some() => {
                return Err(ConnectError::Device(
                    "split event channels are not offered".to_owned(),
                ));
            }
            None => return Err(ConnectError::Missing("event-channel".to_owned())),
        };
        self.disconnect();
        let map = |r: u32, which: &str| {
            self.grants
                .map(GrantRef(r), true)
                .map(PageRing)
                .map_err(|e| ConnectError::Device(format!("mapping the {which} ring: {e}")))
        };
        let tx = map(tx_ref, "TX")?;
        let rx = map(rx_ref, "RX")?;
        let notify = self
            .events
            .bind(port)
            .map_err(|e| ConnectError::Device(format!("binding event channel {port}: {e}")))?;
        let dev = self
            .dev
            .take()
            .ok_or_else(|| ConnectError::Device("the host device is unavailable".to_owned()))?;
        self.conn = Some(Netback::new(
            tx,
            rx,
            notify,
            self.grants.clone(),
            dev,
            features,
            self.cfg,
            Instant::now(),
        ));
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            self.dev = Some(c.into_device());
        }
    }
}

/// Read what the hotplug step needs from the backend directory `backend`
/// (the nodes libxl writes: `script`, `bridge`, `ip`, `gatewaydev`, `mtu`),
/// for the TAP named `dev`.
pub fn vif_params(
    store: &mut dyn Store,
    backend: &str,
    domid: u16,
    devid: u32,
    dev: &str,
) -> Result<VifParams, StoreError> {
    let mut get = |k: &str| store.read(&format!("{backend}/{k}"));
    Ok(VifParams {
        domid,
        devid,
        dev: dev.to_owned(),
        script: get("script")?,
        bridge: get("bridge")?,
        ip: get("ip")?,
        gatewaydev: get("gatewaydev")?,
        mtu: get("mtu")?
            .and_then(|m| m.trim().parse().ok())
            .filter(|&m| m > 0),
    })
}

/// Connect the vif's TAP to the host network (`online`) and report it:
/// `hotplug-status` = `connected` (or `error` with `hotplug-error`) in the
/// backend directory, the MTU chosen in the frontend's `mtu` node.
pub fn hotplug_online(
    store: &mut dyn Store,
    backend: &str,
    frontend: &str,
    host: &mut dyn HostOps,
    params: &VifParams,
    script_dir: &Path,
) -> Result<Result<HotplugReport, HotplugError>, StoreError> {
    let res = hotplug(host, params, Action::Online, script_dir);
    if let Ok(r) = &res {
        for w in &r.warnings {
            tracing::warn!(vif = %params.dev, "{w}");
        }
        if let Some(mtu) = r.mtu {
            store.write(&format!("{frontend}/mtu"), &mtu.to_string())?;
        }
    }
    for (k, v) in status_nodes(&res) {
        store.write(&format!("{backend}/{k}"), &v)?;
    }
    Ok(res)
}

/// The MTU libxl assumes when `mtu=` is absent.
pub const DEFAULT_MTU: u32 = 1500;

/// The XenStore nodes of one vif, as libxl writes them (`libxl_nic.c`,
/// `docs/misc/xenstore-paths.pandoc`): names relative to the backend and
/// frontend directories, and values; the frontend's read-only part is its
/// `mtu`. [`crate::xenbus::write_device_nodes`] writes them.
pub type VifNodes = crate::xenbus::DeviceNodes;

/// The nodes the toolstack writes for `vif=` entry `nic` of domain
/// `domid` (device number `devid`, guest address `mac`), served from dom0:
/// the script as an absolute path (`vif-bridge` in [`XEN_SCRIPT_DIR`]
/// unless `script=` says otherwise), `bridge` (default `xenbr0`), `ip`,
/// `gatewaydev`, `rate` as `<bytes>,<microseconds>`, `mtu` when not 1500,
/// and an empty `hotplug-status` (filled in by the hotplug step).
///
/// [`XEN_SCRIPT_DIR`]: super::hotplug::XEN_SCRIPT_DIR
pub fn vif_nodes(
    domid: xen_abi::DomId,
    devid: u32,
    nic: &xl_config::NicConfig,
    mac: super::mac::Mac,
) -> VifNodes {
    use super::hotplug::{DEFAULT_BRIDGE, XEN_SCRIPT_DIR, script_path};
    use crate::xenbus::{backend_path, frontend_path};
    use xen_abi::io::xenbus::XenbusState;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let mtu = u32::try_from(nic.mtu)
        .ok()
        .filter(|&m| m > 0)
        .unwrap_or(DEFAULT_MTU);
    let script = script_path(nic.script.as_deref(), Path::new(XEN_SCRIPT_DIR));
    let mut backend = vec![
        ("frontend", frontend_path("vif", domid, devid)),
        ("frontend-id", domid.to_string()),
        ("online", "1".to_owned()),
        ("state", XenbusState::Initialising.to_string()),
        ("script", script.display().to_string()),
        ("mac", mac.to_string()),
    ];
    if let Some(ip) = nonempty(&nic.ip) {
        backend.push(("ip", ip));
    }
    if let Some(g) = nonempty(&nic.gatewaydev) {
        backend.push(("gatewaydev", g));
    }
    if let Some(name) = nonempty(&nic.ifname) {
        backend.push(("vifname", name));
    }
    if nic.rate_interval_usecs > 0 {
        backend.push((
            "rate",
            format!(
                "{},{}",
                nic.rate_bytes_per_interval, nic.rate_interval_usecs
            ),
        ));
    }
    if mtu != DEFAULT_MTU {
        backend.push(("mtu", mtu.to_string()));
    }
    backend.extend([
        (
            "bridge",
            nonempty(&nic.bridge).unwrap_or_else(|| DEFAULT_BRIDGE.to_owned()),
        ),
        ("handle", devid.to_string()),
        ("type", "vif".to_owned()),
        ("hotplug-status", String::new()),
    ]);
    VifNodes {
        backend,
        frontend: vec![
            (
                "backend",
                backend_path(xen_abi::DomId::DOM0, "vif", domid, devid),
            ),
            ("backend-id", "0".to_owned()),
            ("state", XenbusState::Initialising.to_string()),
            ("handle", devid.to_string()),
            ("mac", mac.to_string()),
            ("trusted", u8::from(nic.trusted.unwrap_or(true)).to_string()),
        ],
        frontend_ro: vec![("mtu", mtu.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use xen_abi::DomId;
    use xen_abi::io::netif::*;
    use xen_abi::io::ring::{SRING_OFF_req_prod, SRING_OFF_rsp_prod};
    use xen_abi::io::xenbus::XenbusState;
    use xen_abi::layout::Abi;

    use super::*;
    use crate::grant::Grants;
    use crate::grant::mock::MockGuest;
    use crate::net::csum::{IPPROTO_UDP, testframes};
    use crate::net::device::mock::MockDevice;
    use crate::net::hotplug::mock::MockHost;
    use crate::ring::mock::MockNotify;
    use crate::xenbus::mock::MockStore;
    use crate::xenbus::{Outcome, XenbusBackend, backend_path, frontend_path};

    #[derive(Clone, Debug, Default)]
    struct Events(Arc<Mutex<Vec<u32>>>);

    impl EventChannels for Events {
        type Port = MockNotify;
        fn bind(&mut self, remote_port: u32) -> Result<MockNotify, String> {
            if remote_port == 0 {
                return Err("port 0 is never valid".into());
            }
            self.0.lock().unwrap().push(remote_port);
            Ok(MockNotify::default())
        }
    }

    type Vif = VifDevice<Grants<MockGuest>, Events, MockDevice>;

    const TX_RING_GFN: u64 = 10;
    const RX_RING_GFN: u64 = 11;

    struct Setup {
        store: MockStore,
        be: String,
        fe: String,
        grants: Grants<MockGuest>,
        dev: MockDevice,
        xb: XenbusBackend<Vif>,
    }

    fn setup() -> Setup {
        let store = MockStore::default();
        let (domid, devid) = (DomId(5), 0);
        let be = backend_path(DomId::DOM0, "vif", domid, devid);
        let fe = frontend_path("vif", domid, devid);
        for (k, v) in [("frontend", fe.as_str()), ("online", "1"), ("state", "1")] {
            store.set(&format!("{be}/{k}"), v);
        }
        store.set(&format!("{fe}/state"), "1");
        let grants = MockGuest::new(16, 1).grants();
        grants.pages().grant(1, TX_RING_GFN, false);
        grants.pages().grant(2, RX_RING_GFN, false);
        grants.pages().grant(3, 3, true);
        let dev = MockDevice::new();
        let vif = VifDevice::new(
            dev.clone(),
            grants.clone(),
            Events::default(),
            NetbackConfig::default(),
        );
        let xb = XenbusBackend::new(vif, DomId::DOM0, domid, devid);
        Setup {
            store,
            be,
            fe,
            grants,
            dev,
            xb,
        }
    }

    /// What Linux's xen-netfront writes before going Connected.
    fn netfront_nodes(s: &Setup, skip: &str) {
        for (k, v) in [
            ("tx-ring-ref", "1"),
            ("rx-ring-ref", "2"),
            ("event-channel", "17"),
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("feature-sg", "1"),
            ("feature-gso-tcpv4", "1"),
            ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"),
        ] {
            if k != skip {
                s.store.set(&format!("{}/{k}", s.fe), v);
            }
        }
    }

    fn state(s: &Setup) -> String {
        s.store.get(&format!("{}/state", s.be)).unwrap()
    }

    #[test]
    fn handshake_connects_the_rings_and_gives_the_device_back_on_close() {
        let mut s = setup();
        let mut st = s.store.clone();
        assert_eq!(s.xb.start(&mut st, "vif-5-0").unwrap(), Outcome::Running);
        assert_eq!(state(&s), (XenbusState::InitWait as u32).to_string());
        for (k, v) in BACKEND_FEATURES {
            assert_eq!(s.store.get(&format!("{}/{k}", s.be)).as_deref(), Some(*v));
        }
        netfront_nodes(&s, "");
        s.store.set(&format!("{}/state", s.fe), "4");
        s.xb.handle(&mut st).unwrap();
        assert_eq!(state(&s), (XenbusState::Connected as u32).to_string());
        assert!(s.dev.offloads().tso4, "the guest negotiated TSO");

        // A packet through the granted TX ring page.
        let frame = testframes::ipv4(IPPROTO_UDP, b"through xenbus");
        let m = s.grants.pages();
        m.write(3, 0, &frame);
        let req = netif_tx_request {
            gref: 3,
            offset: 0,
            flags: 0,
            id: 9,
            size: frame.len() as u16,
        };
        m.write(TX_RING_GFN, netif_tx_slot_offset(0), &req.to_bytes());
        m.write(TX_RING_GFN, SRING_OFF_req_prod, &1u32.to_le_bytes());
        let conn = s.xb.device_mut().connection().unwrap();
        assert_eq!(conn.process_tx(Instant::now()).unwrap().packets, 1);
        assert_eq!(s.dev.take_sent()[0].1, frame);
        let mut b = [0u8; 4];
        m.read(TX_RING_GFN, SRING_OFF_rsp_prod, &mut b);
        assert_eq!(u32::from_le_bytes(b), 1);

        // The frontend closes: the connection ends, the rings' grants are
        // released, the device waits for the next frontend.
        s.store.set(&format!("{}/state", s.fe), "6");
        s.xb.handle(&mut st).unwrap();
        assert!(s.xb.device_mut().connection().is_none());
        assert!(s.xb.device().idle_device().is_some());
        assert_eq!(s.grants.pinned(), 0);
        // ... and reconnects.
        s.store.set(&format!("{}/state", s.fe), "1");
        s.xb.handle(&mut st).unwrap();
        s.store.set(&format!("{}/state", s.fe), "4");
        s.xb.handle(&mut st).unwrap();
        assert_eq!(state(&s), (XenbusState::Connected as u32).to_string());
        assert!(s.xb.device_mut().connection().is_some());
    }

    #[test]
    fn frontends_asking_for_what_is_not_offered_are_closed() {
        for (skip, extra, why) in [
            ("tx-ring-ref", None, "tx-ring-ref"),
            ("request-rx-copy", None, "request-rx-copy"),
            ("feature-rx-notify", None, "feature-rx-notify"),
            ("", Some(("multi-queue-num-queues", "2")), "multi-queue"),
            (
                "event-channel",
                Some(("event-channel-tx", "5")),
                "split event",
            ),
            ("", Some(("rx-ring-ref", "77")), "mapping the RX ring"),
            ("", Some(("event-channel", "0")), "binding event channel 0"),
            ("", Some(("tx-ring-ref", "-1")), "tx-ring-ref"),
        ] {
            let mut s = setup();
            let mut st = s.store.clone();
            s.xb.start(&mut st, "t").unwrap();
            netfront_nodes(&s, skip);
            if let Some((k, v)) = extra {
                s.store.set(&format!("{}/{k}", s.fe), v);
            }
            s.store.set(&format!("{}/state", s.fe), "4");
            s.xb.handle(&mut st).unwrap();
            assert_eq!(
                state(&s),
                (XenbusState::Closing as u32).to_string(),
                "{why}"
            );
            let err = s.store.get(&format!("{}/error", s.be)).unwrap();
            assert!(err.contains(why), "{why}: {err}");
            assert!(s.xb.device().idle_device().is_some(), "{why}: device kept");
            assert_eq!(s.grants.pinned(), 0, "{why}");
        }
    }

    #[test]
    fn hotplug_reports_in_the_store() {
        let s = setup();
        let mut st = s.store.clone();
        for (k, v) in [("bridge", "br-lab"), ("script", "vif-bridge"), ("mtu", "0")] {
            s.store.set(&format!("{}/{k}", s.be), v);
        }
        let p = vif_params(&mut st, &s.be, 5, 0, "vif5.0").unwrap();
        assert_eq!(p.bridge.as_deref(), Some("br-lab"));
        assert_eq!(p.mtu, None, "0 means the default");
        let mut host = MockHost {
            succeed_by_default: true,
            ..Default::default()
        };
        host.answers.insert(
            "ip -o link show dev br-lab".into(),
            "7: br-lab: <UP> mtu 1450 qdisc noqueue\n".into(),
        );
        let r = hotplug_online(
            &mut st,
            &s.be,
            &s.fe,
            &mut host,
            &p,
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert!(r.is_ok());
        assert_eq!(
            s.store.get(&format!("{}/hotplug-status", s.be)).as_deref(),
            Some("connected")
        );
        assert_eq!(
            s.store.get(&format!("{}/mtu", s.fe)).as_deref(),
            Some("1450")
        );

        let mut host = MockHost::default();
        let r = hotplug_online(
            &mut st,
            &s.be,
            &s.fe,
            &mut host,
            &p,
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert!(r.is_err());
        assert_eq!(
            s.store.get(&format!("{}/hotplug-status", s.be)).as_deref(),
            Some("error")
        );
        assert_eq!(
            s.store.get(&format!("{}/hotplug-error", s.be)).as_deref(),
            Some("Could not find bridge device br-lab")
        );
    }

    #[test]
    fn libxl_node_layout() {
        let get =
            |v: &[(&str, String)], k: &str| v.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let mac: crate::net::mac::Mac = "00:16:3e:01:02:03".parse().unwrap();
        let n = vif_nodes(DomId(3), 1, &xl_config::NicConfig::default(), mac);
        let be = |k| get(&n.backend, k);
        assert_eq!(
            be("frontend").as_deref(),
            Some("/local/domain/3/device/vif/1")
        );
        assert_eq!(be("frontend-id").as_deref(), Some("3"));
        assert_eq!(be("online").as_deref(), Some("1"));
        assert_eq!(be("state").as_deref(), Some("1"));
        assert_eq!(be("script").as_deref(), Some("/etc/xen/scripts/vif-bridge"));
        assert_eq!(be("bridge").as_deref(), Some("xenbr0"));
        assert_eq!(be("mac").as_deref(), Some("00:16:3e:01:02:03"));
        assert_eq!(be("handle").as_deref(), Some("1"));
        assert_eq!(be("type").as_deref(), Some("vif"));
        assert_eq!(be("hotplug-status").as_deref(), Some(""));
        for absent in ["ip", "rate", "mtu", "gatewaydev"] {
            assert_eq!(be(absent), None, "{absent}");
        }
        let fe = |k| get(&n.frontend, k);
        assert_eq!(
            fe("backend").as_deref(),
            Some("/local/domain/0/backend/vif/3/1")
        );
        assert_eq!(fe("backend-id").as_deref(), Some("0"));
        assert_eq!(fe("state").as_deref(), Some("1"));
        assert_eq!(fe("handle").as_deref(), Some("1"));
        assert_eq!(fe("mac").as_deref(), Some("00:16:3e:01:02:03"));
        assert_eq!(fe("trusted").as_deref(), Some("1"));
        assert_eq!(n.frontend_ro, vec![("mtu", "1500".to_owned())]);

        let nic = xl_config::NicConfig {
            script: Some("vif-route".into()),
            ip: Some("169.254.7.2".into()),
            rate_bytes_per_interval: 50_000,
            rate_interval_usecs: 50_000,
            mtu: 9000,
            bridge: Some("br-lab".into()),
            gatewaydev: Some("eth1".into()),
            ..Default::default()
        };
        let n = vif_nodes(DomId(3), 0, &nic, mac);
        let be = |k| get(&n.backend, k);
        assert_eq!(be("script").as_deref(), Some("/etc/xen/scripts/vif-route"));
        assert_eq!(be("ip").as_deref(), Some("169.254.7.2"));
        assert_eq!(be("rate").as_deref(), Some("50000,50000"));
        assert_eq!(be("mtu").as_deref(), Some("9000"));
        assert_eq!(be("bridge").as_deref(), Some("br-lab"));
        assert_eq!(be("gatewaydev").as_deref(), Some("eth1"));
        assert_eq!(n.frontend_ro, vec![("mtu", "9000".to_owned())]);
        // What the domain process reads back is what was asked for.
        let store = MockStore::default();
        let path = backend_path(DomId::DOM0, "vif", DomId(3), 0);
        for (k, v) in &n.backend {
            store.set(&format!("{path}/{k}"), v);
        }
        let p = vif_params(&mut store.clone(), &path, 3, 0, "vif3.0").unwrap();
        assert_eq!(p.script.as_deref(), Some("/etc/xen/scripts/vif-route"));
        assert_eq!(p.ip.as_deref(), Some("169.254.7.2"));
        assert_eq!(p.mtu, Some(9000));
        let rate = crate::net::rate::Rate::from_node(&be("rate").unwrap()).unwrap();
        assert_eq!(
            rate,
            crate::net::rate::Rate::from_node("50000,50000").unwrap()
        );
    }
}
