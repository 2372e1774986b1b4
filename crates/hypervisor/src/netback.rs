//! The domain's network interfaces: netback ([`backends::net`]) served
//! from threads of the domain process (`docs/domain-process.md`,
//! "Devices: network").
//!
//! Each vif gets a TAP `vif<domid>.<devid>` and two threads: `vif-DEVID`
//! moves frames (the TX ring when the guest notifies its event channel, an
//! eventfd KVM signals in the kernel, or when `rate=` lets the next packet
//! go; the RX ring when the TAP has frames, not watched while a frame waits
//! for the guest to post buffers), `vif-DEVID-xs` follows the xenbus
//! handshake on XenStore watches. They share the device behind a mutex.
//!
//! Before the handshake starts, the hotplug step connects the TAP to the
//! host network (the user's script from /etc/xen/scripts, else rxen's
//! built-in bridge/route/NAT) and writes `hotplug-status`; a failure there
//! fails the start, as it fails libxl's device add. At the end the
//! connection is dropped, the step runs `offline` and the TAP is closed
//! (which removes it).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backends::grant::Grants;
use backends::net::hotplug::{
    Action, HotplugError, SystemHost, VifParams, XEN_SCRIPT_DIR, hotplug,
};
use backends::net::rate::Rate;
use backends::net::tap::{Tap, TapError, vif_name};
use backends::net::xenbus::{VifDevice, hotplug_online, vif_nodes, vif_params};
use backends::net::{NetState, NetbackConfig};
use backends::xenbus::{Outcome, XenbusBackend, backend_path, frontend_path, write_device_nodes};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use vmm_sys_util::eventfd::EventFd;
use xen_abi::DomId;
use xenstore::client::{Client, ClientError};

use crate::blkback::{DomainEvents, DomainPages, Signal, XsStore};
use crate::config::NicSpec;
use crate::control::DetachMode;
use crate::domain::Shared;
use crate::vcpus::lock;
use crate::xen::RateLimit;

/// Rounds of TX and RX work before looking at the event sources again.
const ROUNDS: usize = 16;

/// Errors of starting a network interface.
#[derive(Debug, thiserror::Error)]
pub enum NetbackError {
    /// XenStore refused something.
    #[error("vif {devid}: XenStore failed")]
    Store {
        /// The interface.
        devid: u32,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// XenStore refused something during the hotplug step or handshake.
    #[error("vif {devid}: {source}")]
    Xenbus {
        /// The interface.
        devid: u32,
        /// Why.
        #[source]
        source: backends::xenbus::XenbusError,
    },
    /// The TAP could not be created.
    #[error("vif {devid}: creating its TAP failed")]
    Tap {
        /// The interface.
        devid: u32,
        /// Why.
        #[source]
        source: TapError,
    },
    /// The hotplug step failed (also in `hotplug-error`).
    #[error("vif {devid}: the hotplug step failed")]
    Hotplug {
        /// The interface.
        devid: u32,
        /// Why.
        #[source]
        source: HotplugError,
    },
    /// The backend's `rate` node is not `<bytes>,<microseconds>`.
    #[error("vif {devid}: rate node {value:?}: {why}")]
    Rate {
        /// The interface.
        devid: u32,
        /// The node.
        value: String,
        /// Why.
        why: String,
    },
    /// A thread, an eventfd or the poller could not be created.
    #[error("vif {devid}: creating its {what} failed")]
    Os {
        /// The interface.
        devid: u32,
        /// What.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

type Device = XenbusBackend<VifDevice<Grants<DomainPages>, DomainEvents, Tap>>;

struct State {
    /// `None` once the vif has ended (the TAP is closed with it).
    xb: Option<Device>,
    ops: Client,
    params: VifParams,
}

/// A network interface being served; [`NicHandle::stop`] ends it,
/// [`NicHandle::detach`] removes it from the running guest.
pub struct NicHandle {
    devid: u32,
    stop: Arc<AtomicBool>,
    eventfd: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<State>>,
    /// Raised by the XenStore thread once the frontend has closed and
    /// `online` is 0.
    removed: Arc<Signal>,
}

impl std::fmt::Debug for NicHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NicHandle")
            .field("devid", &self.devid)
            .finish_non_exhaustive()
    }
}

impl NicHandle {
    /// Drop the connection, run the hotplug step's `offline`, remove the
    /// TAP and end the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.eventfd.write(1);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(devid = self.devid, "the vif thread panicked");
        }
    }

    /// Remove the interface from the running guest, as libxl does:
    /// `online` = 0, the backend `Closing`, then wait (up to `timeout`) for
    /// the frontend to close, then end it (hotplug `offline`, TAP removed).
    /// With [`DetachMode::Force`] nothing is waited for; with
    /// [`DetachMode::Safe`] a frontend that does not close makes it fail
    /// and everything is put back (the interface is still served). Then call
    /// [`NicHandle::finish_detach`]. `Ok(true)` when the guest had not closed
    /// its side.
    pub fn detach(&self, mode: DetachMode, timeout: Duration) -> Result<bool, String> {
        let was = {
            let mut st = lock(&self.state);
            let State { xb, ops, .. } = &mut *st;
            let Some(xb) = xb.as_mut() else {
                // Ended already (its frontend closed with online 0).
                return Ok(false);
            };
            let was = xb.state();
            if let Err(e) = xb.request_close(&mut XsStore { ops, watch: None }) {
                return Err(format!("vif {}: {}", self.devid, crate::chain(&e)));
            }
            was
        };
        let closed = mode != DetachMode::Force && self.removed.wait(timeout);
        if !closed && mode == DetachMode::Safe {
            let mut st = lock(&self.state);
            let State { xb, ops, .. } = &mut *st;
            if let Some(xb) = xb.as_mut()
                && let Err(e) = xb.cancel_close(&mut XsStore { ops, watch: None }, was)
            {
                tracing::warn!(devid = self.devid, "putting the vif back online: {e}");
            }
            drop(st);
            let msg = format!(
                "vif {}: the guest did not close it within {} s; it stays attached",
                self.devid,
                timeout.as_secs()
            );
            return Err(msg);
        }
        Ok(!closed)
    }

    /// End a detached interface: disconnect, hotplug `offline`, the TAP
    /// removed; `forced` as [`NicHandle::detach`] returned it.
    pub fn finish_detach(self, forced: bool) {
        let backend = lock(&self.state)
            .xb
            .as_ref()
            .map(|xb| xb.backend_path().to_owned());
        let devid = self.devid;
        // Ends the vif: disconnect, hotplug offline, TAP closed.
        let state = self.state.clone();
        self.stop();
        if forced {
            tracing::warn!(devid, "removing the vif without the guest's consent");
            // Wake the XenStore thread: it finds the vif ended and returns.
            if let Some(be) = backend {
                let mut st = lock(&state);
                let _ = st.ops.write(&format!("{be}/online"), "0");
            }
        }
        tracing::info!(devid, forced, "network interface detached");
    }
}

/// Write the vif's nodes as the toolstack would, unless it has
/// ([`backends::xenbus::write_device_nodes`]).
fn write_nodes(xs: &mut Client, domid: u16, n: &NicSpec) -> Result<(), ClientError> {
    let dom = DomId(domid);
    let be = backend_path(DomId::DOM0, "vif", dom, n.devid);
    if xs.try_read(&format!("{be}/frontend"))?.is_some() {
        return Ok(());
    }
    let nodes = vif_nodes(dom, n.devid, &n.config, n.mac);
    xs.transaction(|tx| write_device_nodes(tx, "vif", dom, n.devid, &nodes))
}

/// Create interface `n`'s TAP, connect it to the host network, publish the
/// device and serve it from new threads. `index` numbers dom0's port for
/// it among the domain's backends.
pub fn spawn(shared: Arc<Shared>, index: u32, n: &NicSpec) -> Result<NicHandle, NetbackError> {
    let devid = n.devid;
    let domid = shared.domid;
    let st_err = |source| NetbackError::Store { devid, source };
    let xb_err = |source| NetbackError::Xenbus { devid, source };
    let os_err = |what, source| NetbackError::Os {
        devid,
        what,
        source,
    };
    let socket = xenstore::server::default_socket_path();
    let mut ops = Client::connect_path(&socket).map_err(st_err)?;
    let mut watch = Client::connect_path(&socket).map_err(st_err)?;
    write_nodes(&mut ops, domid, n).map_err(st_err)?;
    let be = backend_path(DomId::DOM0, "vif", DomId(domid), devid);
    let fe = frontend_path("vif", DomId(domid), devid);

    // vifname= names the TAP (the toolstack checked it), else Xen's name.
    let name = n
        .config
        .ifname
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vif_name(domid, devid));
    let tap = Tap::create(&name).map_err(|source| NetbackError::Tap { devid, source })?;
    let tap_fd = tap.as_fd().as_raw_fd();
    let mut store = XsStore {
        ops: &mut ops,
        watch: None,
    };
    let params =
        vif_params(&mut store, &be, domid, devid, tap.name()).map_err(|e| xb_err(e.into()))?;
    let rate = match backends::xenbus::Store::read(&mut store, &format!("{be}/rate"))
        .map_err(|e| xb_err(e.into()))?
    {
        Some(v) => Some(Rate::from_node(&v).map_err(|e| NetbackError::Rate {
            devid,
            value: v.clone(),
            why: e.to_string(),
        })?),
        None => None,
    };
    hotplug_online(
        &mut store,
        &be,
        &fe,
        &mut SystemHost,
        &params,
        Path::new(XEN_SCRIPT_DIR),
    )
    .map_err(|e| xb_err(e.into()))?
    .map_err(|source| NetbackError::Hotplug { devid, source })?;

    let eventfd = Arc::new(EventFd::new(libc::EFD_NONBLOCK).map_err(|e| os_err("eventfd", e))?);
    let events = DomainEvents {
        shared: shared.clone(),
        eventfd: eventfd.clone(),
        backend_port: crate::blkback::BACKEND_PORT_BASE + index,
    };
    let grants = Grants::new(DomainPages(shared.clone()), DomId::DOM0);
    let cfg = NetbackConfig {
        rate,
        software_tx_csum: false,
    };
    let device = VifDevice::new(tap, grants, events, cfg);
    let mut xb = XenbusBackend::new(device, DomId::DOM0, DomId(domid), devid);
    let token = format!("rxen-vif-{devid}");
    let started = xb.start(
        &mut XsStore {
            ops: &mut ops,
            watch: Some(&mut watch),
        },
        &token,
    );
    let state = Arc::new(Mutex::new(State {
        xb: Some(xb),
        ops,
        params,
    }));
    if let Err(source) = started {
        end(&state, devid);
        return Err(xb_err(source));
    }
    let poll = Poll::new().map_err(|e| os_err("poller", e))?;
    poll.registry()
        .register(
            &mut SourceFd(&eventfd.as_raw_fd()),
            GUEST,
            Interest::READABLE,
        )
        .map_err(|e| os_err("poller", e))?;

    let stop = Arc::new(AtomicBool::new(false));
    let removed = Arc::new(Signal::default());
    let (st, ev, sp, rm) = (
        state.clone(),
        eventfd.clone(),
        stop.clone(),
        removed.clone(),
    );
    std::thread::Builder::new()
        .name(format!("vif-{devid}-xs"))
        .spawn(move || watch_loop(st, watch, token, ev, sp, rm, devid))
        .map_err(|e| os_err("XenStore thread", e))?;
    let (st, ev, sp) = (state.clone(), eventfd.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name(format!("vif-{devid}"))
        .spawn(move || frame_loop(st, poll, tap_fd, ev, sp, devid))
        .map_err(|e| os_err("frame thread", e))?;
    tracing::info!(devid, mac = %n.mac, "network interface served");
    Ok(NicHandle {
        devid,
        stop,
        eventfd,
        thread: Some(thread),
        state,
        removed,
    })
}

/// End the vif: drop the connection, run `offline`, close the TAP.
fn end(state: &Mutex<State>, devid: u32) {
    let mut st = lock(state);
    if let Some(mut xb) = st.xb.take() {
        backends::xenbus::XenbusDevice::disconnect(xb.device_mut());
        if let Err(e) = hotplug(
            &mut SystemHost,
            &st.params,
            Action::Offline,
            Path::new(XEN_SCRIPT_DIR),
        ) {
            tracing::warn!(devid, "hotplug offline: {e}");
        }
        drop(xb);
        tracing::info!(devid, "network interface ended");
    }
}

/// Follow the handshake until the device is removed (or the domain ends:
/// the process exits with this thread waiting). The frame thread is woken
/// after each change, since a connection may have come or gone.
fn watch_loop(
    state: Arc<Mutex<State>>,
    mut watch: Client,
    token: String,
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    removed: Arc<Signal>,
    devid: u32,
) {
    loop {
        let ev = match watch.read_watch() {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(devid, "XenStore watch connection lost: {e}");
                return;
            }
        };
        if ev.token != token {
            continue;
        }
        let mut st = lock(&state);
        let State { xb, ops, .. } = &mut *st;
        let Some(xb) = xb.as_mut() else { return };
        let mut store = XsStore {
            ops,
            watch: Some(&mut watch),
        };
        let gone = match xb.handle(&mut store) {
            Ok(Outcome::Running) => false,
            Ok(Outcome::Removed) => {
                if let Err(e) = xb.stop(&mut store, &token) {
                    tracing::warn!(devid, "closing the removed device: {e}");
                }
                tracing::info!(devid, "network interface removed");
                true
            }
            Err(e) => {
                tracing::warn!(devid, "xenbus: {e}");
                false
            }
        };
        drop(st);
        if gone {
            stop.store(true, Ordering::SeqCst);
        }
        let _ = wake.write(1);
        if gone {
            removed.raise();
            return;
        }
    }
}

const GUEST: Token = Token(0);
const TAP: Token = Token(1);

/// Move frames until told to stop, then end the vif.
fn frame_loop(
    state: Arc<Mutex<State>>,
    mut poll: Poll,
    tap_fd: RawFd,
    eventfd: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    devid: u32,
) {
    let mut events = Events::with_capacity(4);
    let mut watching_tap = false;
    let mut timeout: Option<Duration> = None;
    let mut log = RateLimit::new(2);
    loop {
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            tracing::error!(devid, "polling the vif's events failed: {e}");
            break;
        }
        // Non-blocking: resets the count whether or not it was readable.
        let _ = eventfd.read();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut st = lock(&state);
        let State { xb, ops, .. } = &mut *st;
        let Some(xb) = xb.as_mut() else { break };
        // Not connected: neither the TAP nor a timer.
        let (want_tap, next) = serve(xb, ops, devid, &mut log).unwrap_or_default();
        drop(st);
        timeout = next.map(|t| t.saturating_duration_since(Instant::now()));
        if want_tap != watching_tap {
            let mut src = SourceFd(&tap_fd);
            let r = if want_tap {
                poll.registry().register(&mut src, TAP, Interest::READABLE)
            } else {
                poll.registry().deregister(&mut src)
            };
            match r {
                Ok(()) => watching_tap = want_tap,
                Err(e) => {
                    tracing::error!(devid, "watching the TAP failed: {e}");
                    break;
                }
            }
        }
    }
    if watching_tap {
        let _ = poll.registry().deregister(&mut SourceFd(&tap_fd));
    }
    end(&state, devid);
}

/// Run both rings for a while. `None` when no frontend is connected; else
/// whether to watch the TAP and when `rate=` wants TX looked at again.
fn serve(
    xb: &mut Device,
    ops: &mut Client,
    devid: u32,
    log: &mut RateLimit,
) -> Option<(bool, Option<Instant>)> {
    let conn = xb.device_mut().connection()?;
    let mut err = None;
    let mut rx_waiting = false;
    let mut throttled = None;
    let mut again = false;
    for _ in 0..ROUNDS {
        let now = Instant::now();
        let tx = conn.process_tx(now);
        let rx = conn.process_rx();
        let (tx, rx) = match (tx, rx) {
            (Ok(t), Ok(r)) => (t, r),
            (Err(e), _) | (_, Err(e)) => {
                err = Some(e);
                break;
            }
        };
        throttled = tx.throttled_until;
        rx_waiting = rx.waiting_for_guest;
        again = tx.more || rx.more;
        if !again {
            break;
        }
    }
    let broken = conn.state() == NetState::Broken;
    if let Some(e) = err {
        if broken {
            tracing::warn!(devid, "disconnecting the frontend: {e}");
            let mut store = XsStore { ops, watch: None };
            if let Err(e) = xb.fatal(&mut store, &e.to_string()) {
                tracing::warn!(devid, "{e}");
            }
            return None;
        }
        if let Some(n) = log.allow(Instant::now()) {
            tracing::warn!(devid, suppressed = n, "{e}");
        }
    }
    // Work left over: come straight back.
    let next = if again {
        Some(Instant::now())
    } else {
        throttled
    };
    Some((!rx_waiting, next))
}
