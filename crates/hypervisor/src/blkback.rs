//! The domain's virtual disks: blkback ([`backends::blk`]) served from
//! threads of the domain process (`docs/domain-process.md`, "Devices").
//!
//! Each disk gets two threads: `vbd-DEVID` runs the ring whenever the
//! guest notifies its event channel (an eventfd KVM signals in the
//! kernel), `vbd-DEVID-xs` follows the xenbus handshake on XenStore
//! watches. They share the device behind a mutex. Grants resolve through
//! the guest's grant table into this process's mapping of guest memory
//! ([`DomainPages`]); the guest's event channel port is bound as dom0's
//! blkback would bind it ([`DomainEvents`]).
//!
//! The toolstack writes the device's XenStore nodes, as libxl does; a
//! domain process run by hand writes them itself when they are missing.

use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backends::blk::xenbus::{BlkDevice, EventChannels, vbd_nodes};
use backends::blk::{BlkError, DiskConfig, disk};
use backends::grant::{Grants, GuestPages, entry_position};
use backends::ring::Notify;
use backends::xenbus::{
    Outcome, Store, StoreError, XenbusBackend, backend_path, write_device_nodes,
};
use vm_memory::{GuestAddress, GuestMemoryBackend};
use vmm_sys_util::eventfd::EventFd;
use xen_abi::{DomId, EvtchnPort, GrantRef};
use xenstore::client::{Client, ClientError};

use crate::config::DiskSpec;
use crate::control::DetachMode;
use crate::domain::Shared;
use crate::layout::{GRANT_AREA_FRAMES, PAGE_SIZE};
use crate::vcpus::lock;
use crate::xen::RateLimit;
use crate::xen::gnttab::FrameBacking;

/// dom0's port numbers for backends start here (what `EVTCHNOP_status`
/// reports as the remote port; 1 and 2 are xenstored's and the console's).
pub(crate) const BACKEND_PORT_BASE: u32 = 16;

/// Errors of starting a disk.
#[derive(Debug, thiserror::Error)]
pub enum BlkbackError {
    /// The image or device cannot be opened.
    #[error("disk {vdev}: opening its target failed")]
    Open {
        /// The disk.
        vdev: String,
        /// Why.
        #[source]
        source: disk::DiskError,
    },
    /// XenStore refused something.
    #[error("disk {vdev}: XenStore failed")]
    Store {
        /// The disk.
        vdev: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// The handshake could not start.
    #[error("disk {vdev}: starting the xenbus handshake failed")]
    Xenbus {
        /// The disk.
        vdev: String,
        /// Why.
        #[source]
        source: backends::xenbus::XenbusError,
    },
    /// A thread or an eventfd could not be created.
    #[error("disk {vdev}: creating its {what} failed")]
    Os {
        /// The disk.
        vdev: String,
        /// What.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The guest's grant table and RAM as seen from this process.
#[derive(Debug)]
pub struct DomainPages(pub(crate) Arc<Shared>);

// SAFETY: every pointer comes from the guest memory mappings of
// `Shared::ram` (the RAM ranges' `GuestMemoryMmap` and the grant area's
// `MmapRegion`), which live as long as the `Arc<Shared>` held here and are
// never unmapped while the process runs. Grant entries are 8-aligned
// (page-aligned frames); RAM frames are checked to lie wholly in RAM.
unsafe impl GuestPages for DomainPages {
    fn grant_entry(&self, gref: GrantRef) -> Option<NonNull<u64>> {
        let (frame, slot) = entry_position(gref);
        let off = u64::from(slot) * 8;
        let placed = (*lock(&self.0.xen).gnttab.frames().get(frame as usize)?)?;
        let host = match placed.backing {
            FrameBacking::GuestRam => {
                let gpa = placed.gfn.checked_mul(PAGE_SIZE)?.checked_add(off)?;
                self.0
                    .ram
                    .memory()
                    .get_host_address(GuestAddress(gpa))
                    .ok()?
            }
            FrameBacking::GrantArea => {
                if u64::from(frame) >= GRANT_AREA_FRAMES {
                    return None;
                }
                let at = u64::from(frame) * PAGE_SIZE + off;
                // SAFETY: `at` is inside the grant area mapping, which is
                // GRANT_AREA_FRAMES pages long (frame checked above).
                unsafe { self.0.ram.grant_area().as_ptr().add(at as usize) }
            }
        };
        NonNull::new(host.cast())
    }

    fn ram_frame(&self, gfn: u64) -> Option<NonNull<u8>> {
        let gpa = gfn.checked_mul(PAGE_SIZE)?;
        if !self.0.ram.layout().is_ram_page(gpa) {
            return None;
        }
        NonNull::new(
            self.0
                .ram
                .memory()
                .get_host_address(GuestAddress(gpa))
                .ok()?,
        )
    }
}

/// Binds the guest's blkfront ports to one disk's eventfd.
#[derive(Debug)]
pub struct DomainEvents {
    pub(crate) shared: Arc<Shared>,
    pub(crate) eventfd: Arc<EventFd>,
    pub(crate) backend_port: u32,
}

/// A bound port: raising it notifies the guest.
#[derive(Debug)]
pub struct BackendPort {
    shared: Arc<Shared>,
    port: u32,
    limit: Mutex<RateLimit>,
}

impl Notify for BackendPort {
    fn notify(&self) {
        if let Err(e) = self.shared.raise_host_port(self.port)
            && let Some(n) = lock(&self.limit).allow(Instant::now())
        {
            tracing::warn!(
                port = self.port,
                suppressed = n,
                "raising a disk's port: {e}"
            );
        }
    }
}

impl EventChannels for DomainEvents {
    type Port = BackendPort;

    fn bind(&mut self, remote_port: u32) -> Result<BackendPort, String> {
        lock(&self.shared.xen)
            .evtchn
            .bind_host_peer(remote_port, DomId::DOM0, EvtchnPort(self.backend_port))
            .map_err(|_| format!("port {remote_port} is not unbound for domain 0"))?;
        let target = kvm_xen::EvtchnTarget::Eventfd {
            fd: self.eventfd.as_raw_fd(),
        };
        // A port number the guest used before may still have a route.
        kvm_xen::assign_evtchn(&self.shared.vm, remote_port, target, false)
            .or_else(|_| kvm_xen::assign_evtchn(&self.shared.vm, remote_port, target, true))
            .map_err(|e| format!("routing port {remote_port}: {e}"))?;
        Ok(BackendPort {
            shared: self.shared.clone(),
            port: remote_port,
            limit: Mutex::new(RateLimit::new(2)),
        })
    }
}

/// XenStore for the handshake: reads and writes on one connection,
/// watches on another (whose events a thread waits for).
pub(crate) struct XsStore<'a> {
    pub(crate) ops: &'a mut Client,
    pub(crate) watch: Option<&'a mut Client>,
}

fn store_err(op: &'static str, path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError {
        op,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl Store for XsStore<'_> {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        self.ops
            .try_read(path)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .map_err(|e| store_err("read", path, e))
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.ops
            .write(path, value)
            .map_err(|e| store_err("write", path, e))
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        match self.watch.as_deref_mut() {
            Some(w) => w
                .watch(path, token)
                .map_err(|e| store_err("watch", path, e)),
            None => Err(store_err("watch", path, "no watch connection here")),
        }
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        match self.watch.as_deref_mut() {
            Some(w) => w
                .unwatch(path, token)
                .map_err(|e| store_err("unwatch", path, e)),
            None => Err(store_err("unwatch", path, "no watch connection here")),
        }
    }
}

/// Write the disk's nodes as the toolstack would, unless it has (a domain
/// process run by hand, or a hot-plug asked for by something other than
/// the toolstack): [`backends::xenbus::write_device_nodes`], libxl's
/// layout and permissions.
fn write_nodes(xs: &mut Client, domid: u16, d: &DiskSpec) -> Result<(), ClientError> {
    let dom = DomId(domid);
    let be = backend_path(DomId::DOM0, "vbd", dom, d.devid);
    if xs.try_read(&format!("{be}/frontend"))?.is_some() {
        return Ok(());
    }
    let nodes = vbd_nodes(dom, d.devid, &d.vdev, &d.config);
    xs.transaction(|tx| write_device_nodes(tx, "vbd", dom, d.devid, &nodes))
}

type Device = XenbusBackend<BlkDevice<Grants<DomainPages>, DomainEvents>>;

struct State {
    xb: Device,
    ops: Client,
}

/// A flag one thread raises and another waits for, with a time limit.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    /// Raise it.
    pub(crate) fn raise(&self) {
        *lock(&self.raised) = true;
        self.cv.notify_all();
    }

    /// Wait until it is raised; `false` if `timeout` passed first.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut r = lock(&self.raised);
        while !*r {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            r = self
                .cv
                .wait_timeout(r, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

/// A disk being served; [`DiskHandle::stop`] ends it,
/// [`DiskHandle::detach`] removes it from the running guest.
pub struct DiskHandle {
    vdev: String,
    devid: u32,
    stop: Arc<AtomicBool>,
    eventfd: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<State>>,
    /// Raised by the XenStore thread once the frontend has closed and
    /// `online` is 0.
    removed: Arc<Signal>,
    /// Tells the XenStore thread to end at its next event.
    unwatch: Arc<AtomicBool>,
    token: String,
}

impl std::fmt::Debug for DiskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskHandle")
            .field("vdev", &self.vdev)
            .field("devid", &self.devid)
            .finish_non_exhaustive()
    }
}

impl DiskHandle {
    /// Drop the connection (flushing the disk) and end the ring thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.eventfd.write(1);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(vdev = self.vdev, "the disk thread panicked");
        }
    }

    /// The disk's name in the guest.
    pub fn vdev(&self) -> &str {
        &self.vdev
    }

    /// Remove the disk from the running guest, as libxl does: `online` = 0,
    /// the backend `Closing`, then wait (up to `timeout`) for the frontend to
    /// close, then stop serving (flushing the disk). With
    /// [`DetachMode::Force`] nothing is waited for; with
    /// [`DetachMode::Safe`] a frontend that does not close makes it fail and
    /// everything is put back as it was and the disk is still served. Then
    /// call [`DiskHandle::stop`]. `Ok(true)` when the guest had not closed
    /// its side.
    pub fn detach(&self, mode: DetachMode, timeout: Duration) -> Result<bool, String> {
        let was = {
            let mut st = lock(&self.state);
            let State { xb, ops } = &mut *st;
            let was = xb.state();
            if let Err(e) = xb.request_close(&mut XsStore { ops, watch: None }) {
                return Err(format!("disk {}: {}", self.vdev, crate::chain(&e)));
            }
            was
        };
        let closed = mode != DetachMode::Force && self.removed.wait(timeout);
        if !closed && mode == DetachMode::Safe {
            let mut st = lock(&self.state);
            let State { xb, ops } = &mut *st;
            if let Err(e) = xb.cancel_close(&mut XsStore { ops, watch: None }, was) {
                tracing::warn!(vdev = self.vdev, "putting the disk back online: {e}");
            }
            drop(st);
            let msg = format!(
                "disk {}: the guest did not close it within {} s (is it mounted or open?); it stays attached",
                self.vdev,
                timeout.as_secs()
            );
            return Err(msg);
        }
        if !closed {
            tracing::warn!(
                vdev = self.vdev,
                "removing the disk without the guest's consent"
            );
            self.unwatch.store(true, Ordering::SeqCst);
            let mut st = lock(&self.state);
            let State { xb, ops } = &mut *st;
            let mut store = XsStore { ops, watch: None };
            if let Err(e) = xb.stop(&mut store, &self.token) {
                tracing::warn!(vdev = self.vdev, "closing the disk: {e}");
            }
            // Wake the XenStore thread so it sees `unwatch` and ends.
            let online = format!(
                "{}/online",
                backend_path(DomId::DOM0, "vbd", frontend_domid(xb), self.devid)
            );
            let _ = store.write(&online, "0");
        }
        tracing::info!(vdev = self.vdev, forced = !closed, "disk detached");
        Ok(!closed)
    }

    /// Put a new medium in the drive (`cfg.path`), or empty it (`None`):
    /// the new image is opened first (a failure changes nothing), the old
    /// one flushed and closed, and the frontend told the new size.
    pub fn change_media(&self, cfg: DiskConfig) -> Result<(), String> {
        let image =
            disk::open(&cfg).map_err(|e| format!("disk {}: {}", self.vdev, crate::chain(&e)))?;
        let mut st = lock(&self.state);
        let State { xb, ops } = &mut *st;
        if !xb.device().config().cdrom {
            return Err(format!(
                "disk {} is not a removable drive (devtype=cdrom)",
                self.vdev
            ));
        }
        xb.device_mut().change_media(cfg, image);
        xb.republish(&mut XsStore { ops, watch: None })
            .map_err(|e| format!("disk {}: {}", self.vdev, crate::chain(&e)))?;
        tracing::info!(vdev = self.vdev, sectors = ?xb.device().config().path, "medium changed");
        Ok(())
    }
}

/// The guest's domain id, from the backend's frontend path.
fn frontend_domid(xb: &Device) -> DomId {
    xb.frontend_path()
        .strip_prefix("/local/domain/")
        .and_then(|r| r.split('/').next())
        .and_then(|d| d.parse().ok())
        .map_or(DomId::DOM0, DomId)
}

/// Open disk `d` of the domain, publish it and serve it from new threads.
pub fn spawn(shared: Arc<Shared>, index: u32, d: &DiskSpec) -> Result<DiskHandle, BlkbackError> {
    let vdev = d.vdev.clone();
    let st_err = |source| BlkbackError::Store {
        vdev: vdev.clone(),
        source,
    };
    let os_err = |what, source| BlkbackError::Os {
        vdev: vdev.clone(),
        what,
        source,
    };
    let image = disk::open(&d.config).map_err(|source| BlkbackError::Open {
        vdev: vdev.clone(),
        source,
    })?;
    let socket = xenstore::server::default_socket_path();
    let mut ops = Client::connect_path(&socket).map_err(st_err)?;
    let mut watch = Client::connect_path(&socket).map_err(st_err)?;
    write_nodes(&mut ops, shared.domid, d).map_err(st_err)?;

    let eventfd = Arc::new(EventFd::new(0).map_err(|e| os_err("eventfd", e))?);
    let events = DomainEvents {
        shared: shared.clone(),
        eventfd: eventfd.clone(),
        backend_port: BACKEND_PORT_BASE + index,
    };
    let grants = Grants::new(DomainPages(shared.clone()), DomId::DOM0);
    let device = BlkDevice::new(d.config.clone(), image, grants, events);
    let mut xb = XenbusBackend::new(device, DomId::DOM0, DomId(shared.domid), d.devid);
    let token = format!("rxen-vbd-{}", d.devid);
    xb.start(
        &mut XsStore {
            ops: &mut ops,
            watch: Some(&mut watch),
        },
        &token,
    )
    .map_err(|source| BlkbackError::Xenbus {
        vdev: vdev.clone(),
        source,
    })?;
    let state = Arc::new(Mutex::new(State { xb, ops }));

    let removed = Arc::new(Signal::default());
    let unwatch = Arc::new(AtomicBool::new(false));
    let w = Watcher {
        state: state.clone(),
        token: token.clone(),
        vdev: vdev.clone(),
        removed: removed.clone(),
        unwatch: unwatch.clone(),
    };
    std::thread::Builder::new()
        .name(format!("vbd-{}-xs", d.devid))
        .spawn(move || watch_loop(w, watch))
        .map_err(|e| os_err("XenStore thread", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (st, ev, sp, v) = (state.clone(), eventfd.clone(), stop.clone(), vdev.clone());
    let thread = std::thread::Builder::new()
        .name(format!("vbd-{}", d.devid))
        .spawn(move || ring_loop(st, ev, sp, v))
        .map_err(|e| os_err("ring thread", e))?;
    tracing::info!(vdev, devid = d.devid, "disk served");
    Ok(DiskHandle {
        vdev,
        devid: d.devid,
        stop,
        eventfd,
        thread: Some(thread),
        state,
        removed,
        unwatch,
        token,
    })
}

/// What the XenStore thread works with.
struct Watcher {
    state: Arc<Mutex<State>>,
    token: String,
    vdev: String,
    removed: Arc<Signal>,
    unwatch: Arc<AtomicBool>,
}

/// Follow the handshake until the device is removed (or the domain ends:
/// the process exits with this thread waiting).
fn watch_loop(w: Watcher, mut watch: Client) {
    let Watcher {
        state,
        token,
        vdev,
        removed,
        unwatch,
    } = w;
    loop {
        let ev = match watch.read_watch() {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(vdev, "XenStore watch connection lost: {e}");
                return;
            }
        };
        if unwatch.load(Ordering::SeqCst) {
            return;
        }
        if ev.token != token {
            continue;
        }
        let mut st = lock(&state);
        let State { xb, ops } = &mut *st;
        let mut store = XsStore {
            ops,
            watch: Some(&mut watch),
        };
        match xb.handle(&mut store) {
            Ok(Outcome::Running) => {}
            Ok(Outcome::Removed) => {
                if let Err(e) = xb.stop(&mut store, &token) {
                    tracing::warn!(vdev, "closing the removed device: {e}");
                }
                tracing::info!(vdev, "disk removed");
                removed.raise();
                return;
            }
            Err(e) => tracing::warn!(vdev, "xenbus: {e}"),
        }
    }
}

/// Run the ring on each notification until told to stop.
fn ring_loop(state: Arc<Mutex<State>>, eventfd: Arc<EventFd>, stop: Arc<AtomicBool>, vdev: String) {
    loop {
        if eventfd.read().is_err() {
            tracing::error!(vdev, "reading the disk's eventfd failed");
            return;
        }
        let mut st = lock(&state);
        if stop.load(Ordering::SeqCst) {
            // Flushes the disk (qcow2 metadata included).
            backends::xenbus::XenbusDevice::disconnect(st.xb.device_mut());
            return;
        }
        let res = loop {
            let Some(conn) = st.xb.device_mut().connection() else {
                break Ok(());
            };
            match conn.service() {
                Ok(true) => continue,
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if let Err(e @ BlkError::CorruptRing { .. }) = res {
            tracing::warn!(vdev, "disconnecting the frontend: {e}");
            let State { xb, ops } = &mut *st;
            let mut store = XsStore { ops, watch: None };
            if let Err(e) = xb.fatal(&mut store, &e.to_string()) {
                tracing::warn!(vdev, "{e}");
            }
        } else if let Err(e) = res {
            tracing::warn!(vdev, "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_waits_until_raised_or_timeout() {
        let s = Arc::new(Signal::default());
        let t0 = Instant::now();
        assert!(!s.wait(Duration::from_millis(50)), "not raised");
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let s2 = s.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s2.raise();
        });
        assert!(
            s.wait(Duration::from_secs(10)),
            "raised by the other thread"
        );
        h.join().unwrap();
        // Stays raised.
        assert!(s.wait(Duration::ZERO));
    }
}
