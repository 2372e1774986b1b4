//! The backend side of the xenbus handshake (`xen/include/public/io/xenbus.h`),
//! for any PV device kind.
//!
//! The toolstack creates a device by writing two XenStore directories, as
//! libxl does (`docs/misc/xenstore-paths.pandoc`):
//! `/local/domain/0/backend/KIND/DOMID/DEVID/` (`frontend`, `frontend-id`,
//! `online`, `state` = 1, and the kind's own nodes, such as `params` for a
//! disk) and `/local/domain/DOMID/device/KIND/DEVID/` (`backend`,
//! `backend-id`, `state` = 1, ...). [`XenbusBackend`] then serves the
//! backend directory: it publishes the device's features and goes to
//! `InitWait`; when the frontend says `Initialised` (or `Connected`) it
//! reads the frontend's ring details and connects, going `Connected`; it
//! follows the frontend through `Closing` and `Closed` and, while the
//! toolstack keeps `online` at 1, back to `InitWait` for a frontend that
//! starts over (a guest driver reloaded, a guest rebooting its kernel).
//!
//! What the kind does at each step is a [`XenbusDevice`]: the block device
//! is `blk::xenbus::BlkDevice`, the network device is netback's. XenStore is
//! reached through the small [`Store`] trait (rxen's xenstore client in the
//! domain process, [`mock::MockStore`] in tests). Every value read from the
//! frontend's directory is the guest's and is parsed strictly: a bad one
//! fails the connection (an `error` node says why, the backend goes
//! `Closing`), never the process.

use std::fmt;

use xen_abi::DomId;
use xen_abi::io::xenbus::XenbusState;

/// A XenStore failure, as the backend reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("XenStore {op} of {path} failed: {reason}")]
pub struct StoreError {
    /// The operation (`read`, `write`, `watch`, ...).
    pub op: &'static str,
    /// The path.
    pub path: String,
    /// What the store said.
    pub reason: String,
}

/// What a backend needs of XenStore.
pub trait Store {
    /// A node's value; `None` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError>;
    /// Create or overwrite a node.
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError>;
    /// Watch `path` (and below) with `token`.
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Stop a watch.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
}

/// Why connecting to a frontend failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A node the connection needs is missing.
    #[error("the frontend's {0} node is missing")]
    Missing(String),
    /// A node's value is unusable.
    #[error("the frontend's {node} node is invalid: {value:?}")]
    Invalid {
        /// The node.
        node: String,
        /// Its value (as read, truncated).
        value: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The device could not connect with these details.
    #[error("{0}")]
    Device(String),
}

/// The frontend's directory, for [`XenbusDevice::connect`].
pub struct FrontendNodes<'a> {
    store: &'a mut dyn Store,
    dir: &'a str,
}

impl fmt::Debug for FrontendNodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontendNodes")
            .field("dir", &self.dir)
            .finish()
    }
}

impl FrontendNodes<'_> {
    /// The directory's path.
    pub fn dir(&self) -> &str {
        self.dir
    }

    /// Node `name`'s value, if it exists.
    pub fn read(&mut self, name: &str) -> Result<Option<String>, ConnectError> {
        Ok(self.store.read(&format!("{}/{name}", self.dir))?)
    }

    /// Node `name` as a decimal number; `None` if it does not exist.
    pub fn read_num<T: std::str::FromStr>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, ConnectError> {
        match self.read(name)? {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConnectError::Invalid {
                    node: name.to_owned(),
                    value: v.chars().take(64).collect(),
                }),
        }
    }

    /// Node `name` as a decimal number, which must exist.
    pub fn require_num<T: std::str::FromStr>(&mut self, name: &str) -> Result<T, ConnectError> {
        self.read_num(name)?
            .ok_or_else(|| ConnectError::Missing(name.to_owned()))
    }
}

/// One device kind's part in the handshake (libxl's `libxl__device_type`
/// plays this role on the toolstack side).
pub trait XenbusDevice {
    /// The kind's name in XenStore paths: `vbd`, `vif`.
    const KIND: &'static str;
    /// Nodes to publish in the backend directory before `InitWait`
    /// (features, sizes), as (name, value).
    fn backend_nodes(&mut self) -> Vec<(String, String)>;
    /// The frontend is ready: read its details and connect.
    fn connect(&mut self, front: &mut FrontendNodes<'_>) -> Result<(), ConnectError>;
    /// Drop the connection, if there is one.
    fn disconnect(&mut self);
}

/// Errors of [`XenbusBackend`] itself (the store failing under it).
#[derive(Debug, thiserror::Error)]
pub enum XenbusError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the caller does next after [`XenbusBackend::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep serving (and watching).
    Running,
    /// The frontend closed and the toolstack has set `online` to 0: the
    /// device is gone; stop watching and drop it.
    Removed,
}

/// The backend directory of one device and the device behind it.
#[derive(Debug)]
pub struct XenbusBackend<D> {
    device: D,
    backend: String,
    frontend: String,
    state: XenbusState,
}

impl<D: XenbusDevice> XenbusBackend<D> {
    /// Serve device `devid` of domain `domid` from backend domain
    /// `backend_domid` (dom0 on rxen).
    pub fn new(device: D, backend_domid: DomId, domid: DomId, devid: u32) -> Self {
        Self {
            device,
            backend: backend_path(backend_domid, D::KIND, domid, devid),
            frontend: frontend_path(D::KIND, domid, devid),
            state: XenbusState::Initialising,
        }
    }

    /// `/local/domain/0/backend/KIND/DOMID/DEVID`.
    pub fn backend_path(&self) -> &str {
        &self.backend
    }

    /// `/local/domain/DOMID/device/KIND/DEVID`.
    pub fn frontend_path(&self) -> &str {
        &self.frontend
    }

    /// The state the backend has published.
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, to serve its connection.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The paths to watch: the frontend's `state` and the backend's
    /// `online`. Call [`XenbusBackend::handle`] whenever one fires.
    pub fn watch_paths(&self) -> [String; 2] {
        [
            format!("{}/state", self.frontend),
            format!("{}/online", self.backend),
        ]
    }

    fn set_state(&mut self, store: &mut dyn Store, s: XenbusState) -> Result<(), StoreError> {
        store.write(&format!("{}/state", self.backend), &s.to_string())?;
        self.state = s;
        Ok(())
    }

    fn publish(&mut self, store: &mut dyn Store) -> Result<(), StoreError> {
        for (name, value) in self.device.backend_nodes() {
            store.write(&format!("{}/{name}", self.backend), &value)?;
        }
        self.set_state(store, XenbusState::InitWait)
    }

    /// Watch (with `token`), publish the device's features and go
    /// `InitWait`; then look at the frontend once, in case it is already
    /// waiting.
    pub fn start(&mut self, store: &mut dyn Store, token: &str) -> Result<Outcome, XenbusError> {
        for p in self.watch_paths() {
            store.watch(&p, token)?;
        }
        self.publish(store)?;
        self.handle(store)
    }

    /// Stop watching, drop any connection and publish `Closed` (the device
    /// is being removed or the domain destroyed).
    pub fn stop(&mut self, store: &mut dyn Store, token: &str) -> Result<(), XenbusError> {
        self.device.disconnect();
        for p in self.watch_paths() {
            // A watch that is already gone is no failure here.
            let _ = store.unwatch(&p, token);
        }
        Ok(self.set_state(store, XenbusState::Closed)?)
    }

    /// The connection broke on the backend's side (a corrupt ring): as
    /// Xen's `xenbus_dev_fatal`, drop it, say why in `error` and go
    /// `Closing`; the frontend closes and may start over.
    pub fn fatal(&mut self, store: &mut dyn Store, why: &str) -> Result<(), XenbusError> {
        self.device.disconnect();
        store.write(&format!("{}/error", self.backend), why)?;
        Ok(self.set_state(store, XenbusState::Closing)?)
    }

    /// Begin removing the device (`xl block-detach`, `network-detach`), as
    /// libxl does: `online` = 0 and, unless the backend is `Closed`
    /// already, `Closing`. The frontend then closes; [`XenbusBackend::handle`]
    /// reports [`Outcome::Removed`] once it has.
    pub fn request_close(&mut self, store: &mut dyn Store) -> Result<(), XenbusError> {
        store.write(&format!("{}/online", self.backend), "0")?;
        if self.state != XenbusState::Closed {
            self.set_state(store, XenbusState::Closing)?;
        }
        Ok(())
    }

    /// Undo [`XenbusBackend::request_close`] when the frontend would not
    /// close (a guest still using the disk): `online` = 1 and the state
    /// the backend had (`was`), so a frontend that stayed connected goes on.
    pub fn cancel_close(
        &mut self,
        store: &mut dyn Store,
        was: XenbusState,
    ) -> Result<(), XenbusError> {
        store.write(&format!("{}/online", self.backend), "1")?;
        Ok(self.set_state(store, was)?)
    }

    /// Publish the device's nodes again and rewrite `state` with its
    /// current value, which fires the frontend's watch: how Linux's blkback
    /// tells a connected xen-blkfront that the size changed (it rereads
    /// `sectors`).
    pub fn republish(&mut self, store: &mut dyn Store) -> Result<(), XenbusError> {
        for (name, value) in self.device.backend_nodes() {
            store.write(&format!("{}/{name}", self.backend), &value)?;
        }
        let s = self.state;
        Ok(self.set_state(store, s)?)
    }

    /// Act on the frontend's state as it is now.
    pub fn handle(&mut self, store: &mut dyn Store) -> Result<Outcome, XenbusError> {
        let front = store
            .read(&format!("{}/state", self.frontend))?
            .and_then(|v| XenbusState::parse(&v))
            // A frontend directory that is gone (or garbage) is closed.
            .unwrap_or(XenbusState::Closed);
        match front {
            XenbusState::Initialising => {
                if self.state == XenbusState::Closed {
                    // The frontend starts over: offer the device again.
                    self.publish(store)?;
                }
            }
            XenbusState::Initialised | XenbusState::Connected => {
                if self.state == XenbusState::InitWait {
                    self.connect(store)?;
                }
            }
            XenbusState::Closing => {
                self.device.disconnect();
                if self.state != XenbusState::Closed {
                    self.set_state(store, XenbusState::Closing)?;
                }
            }
            XenbusState::Closed | XenbusState::Unknown => {
                self.device.disconnect();
                if self.state != XenbusState::Closed {
                    self.set_state(store, XenbusState::Closed)?;
                }
                let online = store.read(&format!("{}/online", self.backend))?;
                if online.as_deref().map(str::trim) != Some("1") {
                    return Ok(Outcome::Removed);
                }
            }
            XenbusState::InitWait | XenbusState::Reconfiguring | XenbusState::Reconfigured => {}
        }
        Ok(Outcome::Running)
    }

    fn connect(&mut self, store: &mut dyn Store) -> Result<(), XenbusError> {
        let dir = self.frontend.clone();
        let res = self.device.connect(&mut FrontendNodes {
            store: &mut *store,
            dir: &dir,
        });
        match res {
            Ok(()) => self.set_state(store, XenbusState::Connected)?,
            Err(ConnectError::Store(e)) => {
                self.device.disconnect();
                return Err(e.into());
            }
            Err(e) => {
                // As xenbus_dev_fatal: say why, and close.
                tracing::warn!(backend = %self.backend, "connecting to the frontend failed: {e}");
                self.device.disconnect();
                store.write(&format!("{}/error", self.backend), &e.to_string())?;
                self.set_state(store, XenbusState::Closing)?;
            }
        }
        Ok(())
    }
}

/// The nodes the toolstack writes for one device (`vbd_nodes`,
/// `vif_nodes`): names relative to the device's directories, and values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceNodes {
    /// Under the backend directory
    /// `/local/domain/0/backend/KIND/DOMID/DEVID` (dom0's, readable by the
    /// guest).
    pub backend: Vec<(&'static str, String)>,
    /// Under the frontend directory `/local/domain/DOMID/device/KIND/DEVID`
    /// (the guest's, readable by dom0).
    pub frontend: Vec<(&'static str, String)>,
    /// Also under the frontend directory, but dom0's and only readable by
    /// the guest (a vif's `mtu`).
    pub frontend_ro: Vec<(&'static str, String)>,
}

/// Somewhere device nodes can be written with XenStore permissions: a
/// transaction of rxen's xenstore client (feature `xenstore-client`), the
/// mock store in tests.
pub trait NodeWriter {
    /// What a failed step reports.
    type Error;
    /// Create or overwrite a node.
    fn write_node(&mut self, path: &str, value: &str) -> Result<(), Self::Error>;
    /// Make `owner` the node's owner (who may do anything with it) and let
    /// `reader` read it; nobody else may do anything.
    fn set_owner_reader(
        &mut self,
        path: &str,
        owner: DomId,
        reader: DomId,
    ) -> Result<(), Self::Error>;
}

/// Write device `devid` of kind `kind` (`vbd`, `vif`) of domain `domid`,
/// served from dom0, with libxl's permissions: the backend directory is
/// dom0's and readable by the guest, the frontend directory the guest's
/// and readable by dom0, its read-only nodes dom0's and readable by the
/// guest. Run it in one transaction.
pub fn write_device_nodes<W: NodeWriter + ?Sized>(
    w: &mut W,
    kind: &str,
    domid: DomId,
    devid: u32,
    nodes: &DeviceNodes,
) -> Result<(), W::Error> {
    let be = backend_path(DomId::DOM0, kind, domid, devid);
    let fe = frontend_path(kind, domid, devid);
    w.write_node(&be, "")?;
    w.set_owner_reader(&be, DomId::DOM0, domid)?;
    for (k, v) in &nodes.backend {
        w.write_node(&format!("{be}/{k}"), v)?;
    }
    w.write_node(&fe, "")?;
    w.set_owner_reader(&fe, domid, DomId::DOM0)?;
    for (k, v) in &nodes.frontend {
        w.write_node(&format!("{fe}/{k}"), v)?;
    }
    for (k, v) in &nodes.frontend_ro {
        let p = format!("{fe}/{k}");
        w.write_node(&p, v)?;
        w.set_owner_reader(&p, DomId::DOM0, domid)?;
    }
    Ok(())
}

#[cfg(feature = "xenstore-client")]
impl NodeWriter for xenstore::client::Transaction<'_> {
    type Error = xenstore::client::ClientError;
    fn write_node(&mut self, path: &str, value: &str) -> Result<(), Self::Error> {
        self.write(path, value)
    }
    fn set_owner_reader(
        &mut self,
        path: &str,
        owner: DomId,
        reader: DomId,
    ) -> Result<(), Self::Error> {
        use xenstore::perms::{Access, Perm, Perms};
        let perms = Perms::from_vec(vec![
            Perm::new(owner.0, Access::None),
            Perm::new(reader.0, Access::Read),
        ])
        .expect("two entries make valid permissions");
        self.set_perms(path, &perms)
    }
}

/// `/local/domain/BACKEND/backend/KIND/DOMID/DEVID`.
pub fn backend_path(backend: DomId, kind: &str, domid: DomId, devid: u32) -> String {
    format!("/local/domain/{backend}/backend/{kind}/{domid}/{devid}")
}

/// `/local/domain/DOMID/device/KIND/DEVID`.
pub fn frontend_path(kind: &str, domid: DomId, devid: u32) -> String {
    format!("/local/domain/{domid}/device/{kind}/{devid}")
}

/// An in-memory XenStore for tests.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::{Store, StoreError};

    #[derive(Debug, Default)]
    struct Inner {
        nodes: BTreeMap<String, String>,
        perms: BTreeMap<String, (u16, u16)>,
        watches: Vec<(String, String)>,
        fail_writes: bool,
    }

    /// Nodes and watches; clones share them (one plays the backend, one
    /// the test's toolstack and frontend).
    #[derive(Clone, Debug, Default)]
    pub struct MockStore(Arc<Mutex<Inner>>);

    impl MockStore {
        fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
            self.0.lock().expect("mock store lock")
        }

        /// A node's value.
        pub fn get(&self, path: &str) -> Option<String> {
            self.inner().nodes.get(path).cloned()
        }

        /// Set a node.
        pub fn set(&self, path: &str, value: &str) {
            self.inner().nodes.insert(path.to_owned(), value.to_owned());
        }

        /// Remove a node and everything below it.
        pub fn remove(&self, path: &str) {
            let below = format!("{path}/");
            self.inner()
                .nodes
                .retain(|k, _| k != path && !k.starts_with(&below));
        }

        /// A node's (owner, reader), as [`super::NodeWriter`] set them.
        pub fn perms(&self, path: &str) -> Option<(u16, u16)> {
            self.inner().perms.get(path).copied()
        }

        /// The watches registered, as (path, token).
        pub fn watches(&self) -> Vec<(String, String)> {
            self.inner().watches.clone()
        }

        /// Make every later write fail (a store gone away).
        pub fn fail_writes(&self) {
            self.inner().fail_writes = true;
        }
    }

    impl super::NodeWriter for MockStore {
        type Error = StoreError;
        fn write_node(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
            Store::write(self, path, value)
        }
        fn set_owner_reader(
            &mut self,
            path: &str,
            owner: xen_abi::DomId,
            reader: xen_abi::DomId,
        ) -> Result<(), StoreError> {
            self.inner()
                .perms
                .insert(path.to_owned(), (owner.0, reader.0));
            Ok(())
        }
    }

    impl Store for MockStore {
        fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
            Ok(self.get(path))
        }
        fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
            if self.inner().fail_writes {
                return Err(StoreError {
                    op: "write",
                    path: path.to_owned(),
                    reason: "mock store: writes fail".to_owned(),
                });
            }
            self.set(path, value);
            Ok(())
        }
        fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
            self.inner()
                .watches
                .push((path.to_owned(), token.to_owned()));
            Ok(())
        }
        fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
            self.inner()
                .watches
                .retain(|(p, t)| !(p == path && t == token));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::MockStore;
    use super::*;

    /// A device kind that records what it was asked to do.
    #[derive(Debug, Default)]
    struct Probe {
        connected: Option<u32>,
        connects: usize,
        disconnects: usize,
    }

    impl XenbusDevice for Probe {
        const KIND: &'static str = "probe";
        fn backend_nodes(&mut self) -> Vec<(String, String)> {
            vec![("feature-x".to_owned(), "1".to_owned())]
        }
        fn connect(&mut self, front: &mut FrontendNodes<'_>) -> Result<(), ConnectError> {
            self.connects += 1;
            let port: u32 = front.require_num("event-channel")?;
            if port == 0 {
                return Err(ConnectError::Device("port 0 is not a port".to_owned()));
            }
            self.connected = Some(port);
            Ok(())
        }
        fn disconnect(&mut self) {
            if self.connected.take().is_some() {
                self.disconnects += 1;
            }
        }
    }

    const BE: &str = "/local/domain/0/backend/probe/5/768";
    const FE: &str = "/local/domain/5/device/probe/768";

    fn setup() -> (MockStore, XenbusBackend<Probe>) {
        let s = MockStore::default();
        // The toolstack's part.
        s.set(&format!("{BE}/frontend"), FE);
        s.set(&format!("{BE}/online"), "1");
        s.set(&format!("{BE}/state"), "1");
        s.set(&format!("{FE}/backend"), BE);
        s.set(&format!("{FE}/state"), "1");
        let b = XenbusBackend::new(Probe::default(), DomId(0), DomId(5), 768);
        (s, b)
    }

    fn st(s: &MockStore, dir: &str) -> String {
        s.get(&format!("{dir}/state")).unwrap()
    }

    #[test]
    fn handshake_close_and_reconnect() {
        let (mut s, mut b) = setup();
        assert_eq!(b.backend_path(), BE);
        assert_eq!(b.frontend_path(), FE);
        assert_eq!(b.start(&mut s, "tok").unwrap(), Outcome::Running);
        assert_eq!(st(&s, BE), "2");
        assert_eq!(s.get(&format!("{BE}/feature-x")).as_deref(), Some("1"));
        assert_eq!(
            s.watches(),
            vec![
                (format!("{FE}/state"), "tok".to_owned()),
                (format!("{BE}/online"), "tok".to_owned())
            ]
        );

        // The frontend publishes its details.
        s.set(&format!("{FE}/event-channel"), "17");
        s.set(&format!("{FE}/state"), "3");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "4");
        assert_eq!(b.device().connected, Some(17));
        // Watches fire again (the frontend goes Connected): no reconnect.
        s.set(&format!("{FE}/state"), "4");
        b.handle(&mut s).unwrap();
        assert_eq!(b.device().connects, 1);

        // The guest unloads its driver.
        s.set(&format!("{FE}/state"), "5");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "5");
        assert_eq!(b.device().disconnects, 1);
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Running, "online");
        assert_eq!(st(&s, BE), "6");

        // ... and loads it again.
        s.set(&format!("{FE}/state"), "1");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "2");
        s.set(&format!("{FE}/event-channel"), "18");
        s.set(&format!("{FE}/state"), "3");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "4");
        assert_eq!(b.device().connected, Some(18));

        // The toolstack removes the device: offline, frontend closes.
        s.set(&format!("{BE}/online"), "0");
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Removed);
        assert_eq!(b.device().disconnects, 2);
        b.stop(&mut s, "tok").unwrap();
        assert!(s.watches().is_empty());
        assert_eq!(st(&s, BE), "6");
    }

    #[test]
    fn hostile_frontend_values_close_the_device() {
        for (port, err) in [
            (None, "event-channel node is missing"),
            (Some("x1"), "event-channel node is invalid"),
            (Some("-3"), "event-channel node is invalid"),
            (Some("99999999999"), "event-channel node is invalid"),
            (Some("0"), "port 0 is not a port"),
        ] {
            let (mut s, mut b) = setup();
            b.start(&mut s, "t").unwrap();
            if let Some(p) = port {
                s.set(&format!("{FE}/event-channel"), p);
            }
            s.set(&format!("{FE}/state"), "3");
            assert_eq!(b.handle(&mut s).unwrap(), Outcome::Running);
            assert_eq!(st(&s, BE), "5", "{port:?}");
            let e = s.get(&format!("{BE}/error")).unwrap();
            assert!(e.contains(err), "{e}");
            assert_eq!(b.device().connected, None);
            // It stays closed until the frontend starts over.
            b.handle(&mut s).unwrap();
            assert_eq!(b.device().connects, 1);
        }
        // Garbage in the frontend's state reads as closed.
        let (mut s, mut b) = setup();
        b.start(&mut s, "t").unwrap();
        s.set(&format!("{FE}/state"), "banana");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "6");
        // The frontend directory vanishing (guest gone) with online=0.
        let (mut s, mut b) = setup();
        b.start(&mut s, "t").unwrap();
        s.set(&format!("{BE}/online"), "0");
        s.remove(FE);
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Removed);
    }

    #[test]
    fn fatal_closes_until_the_frontend_starts_over() {
        let (mut s, mut b) = setup();
        s.set(&format!("{FE}/event-channel"), "9");
        s.set(&format!("{FE}/state"), "4");
        b.start(&mut s, "t").unwrap();
        assert_eq!(st(&s, BE), "4");
        b.fatal(&mut s, "ring corrupt").unwrap();
        assert_eq!(st(&s, BE), "5");
        assert_eq!(
            s.get(&format!("{BE}/error")).as_deref(),
            Some("ring corrupt")
        );
        assert_eq!(b.device().connected, None);
        b.handle(&mut s).unwrap();
        assert_eq!(b.device().connects, 1, "no reconnect while Closing");
        s.set(&format!("{FE}/state"), "6");
        b.handle(&mut s).unwrap();
        s.set(&format!("{FE}/state"), "1");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "2");
    }

    #[test]
    fn frontend_ready_before_the_backend_starts() {
        let (mut s, mut b) = setup();
        s.set(&format!("{FE}/event-channel"), "9");
        s.set(&format!("{FE}/state"), "3");
        b.start(&mut s, "t").unwrap();
        assert_eq!(st(&s, BE), "4");
        assert_eq!(b.device().connected, Some(9));
    }

    #[test]
    fn device_nodes_are_written_with_libxls_permissions() {
        let mut s = MockStore::default();
        let nodes = DeviceNodes {
            backend: vec![("online", "1".to_owned()), ("state", "1".to_owned())],
            frontend: vec![("state", "1".to_owned())],
            frontend_ro: vec![("mtu", "1500".to_owned())],
        };
        write_device_nodes(&mut s, "vif", DomId(7), 2, &nodes).unwrap();
        let be = "/local/domain/0/backend/vif/7/2";
        let fe = "/local/domain/7/device/vif/2";
        assert_eq!(s.get(be).as_deref(), Some(""));
        assert_eq!(s.get(&format!("{be}/online")).as_deref(), Some("1"));
        assert_eq!(s.get(&format!("{fe}/state")).as_deref(), Some("1"));
        assert_eq!(s.get(&format!("{fe}/mtu")).as_deref(), Some("1500"));
        assert_eq!(s.perms(be), Some((0, 7)), "dom0's, the guest reads");
        assert_eq!(s.perms(fe), Some((7, 0)), "the guest's, dom0 reads");
        assert_eq!(s.perms(&format!("{fe}/mtu")), Some((0, 7)));
        assert_eq!(s.perms(&format!("{fe}/state")), None, "inherited");
        // A failing store stops the writer at once.
        let f = MockStore::default();
        f.fail_writes();
        let mut f2 = f.clone();
        assert!(write_device_nodes(&mut f2, "vbd", DomId(1), 51712, &nodes).is_err());
        assert_eq!(f.perms("/local/domain/0/backend/vbd/1/51712"), None);
    }

    #[test]
    fn close_for_removal_and_cancel() {
        let (mut s, mut b) = setup();
        s.set(&format!("{FE}/event-channel"), "9");
        s.set(&format!("{FE}/state"), "4");
        b.start(&mut s, "t").unwrap();
        assert_eq!(st(&s, BE), "4");
        b.request_close(&mut s).unwrap();
        assert_eq!(s.get(&format!("{BE}/online")).as_deref(), Some("0"));
        assert_eq!(st(&s, BE), "5");
        // A frontend that will not close: put things back.
        b.cancel_close(&mut s, XenbusState::Connected).unwrap();
        assert_eq!(s.get(&format!("{BE}/online")).as_deref(), Some("1"));
        assert_eq!(st(&s, BE), "4");
        assert_eq!(b.device().connected, Some(9), "still connected");
        // This time it closes: Closing, then Closed, and the device is gone.
        b.request_close(&mut s).unwrap();
        s.set(&format!("{FE}/state"), "5");
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Running);
        assert_eq!(b.device().connected, None);
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Removed);
        assert_eq!(st(&s, BE), "6");
        // A backend already Closed only goes offline.
        let (mut s, mut b) = setup();
        b.start(&mut s, "t").unwrap();
        s.set(&format!("{FE}/state"), "6");
        b.handle(&mut s).unwrap();
        assert_eq!(st(&s, BE), "6");
        b.request_close(&mut s).unwrap();
        assert_eq!(st(&s, BE), "6");
        assert_eq!(b.handle(&mut s).unwrap(), Outcome::Removed);
    }

    #[test]
    fn republish_rewrites_the_state() {
        let (mut s, mut b) = setup();
        s.set(&format!("{FE}/event-channel"), "9");
        s.set(&format!("{FE}/state"), "4");
        b.start(&mut s, "t").unwrap();
        s.set(&format!("{BE}/feature-x"), "stale");
        s.set(&format!("{BE}/state"), "banana");
        b.republish(&mut s).unwrap();
        assert_eq!(s.get(&format!("{BE}/feature-x")).as_deref(), Some("1"));
        assert_eq!(st(&s, BE), "4");
    }

    #[test]
    fn store_failures_are_errors_not_panics() {
        let (mut s, mut b) = setup();
        s.fail_writes();
        assert!(matches!(
            b.start(&mut s, "t"),
            Err(XenbusError::Store(StoreError { op: "write", .. }))
        ));
    }
}
