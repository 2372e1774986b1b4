//! The domain process's I/O thread: one `mio` event loop serving the PV
//! console (ring, log, attached clients), the XenStore ring relay, the
//! `control` socket and watchdog deadlines.
//!
//! The guest's sends on its console and XenStore ports arrive as eventfd
//! signals (KVM delivers them in the kernel); the guest is notified with
//! `KVM_XEN_HVM_EVTCHN_SEND` through [`GuestNotify`]. Ring pages are read
//! and written in place in guest memory through [`GuestPage`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backends::console::{ConsoleBackend, ConsoleRing, ConsoleState};
use backends::ring::{Notify, RingMemory};
use backends::xenstore::StoreRelay;
use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use vm_memory::{Bytes, GuestAddress};

use crate::control::{self, Info, Request, VcpuInfo};
use crate::domain::{End, Shared, ShutdownReason};
use crate::layout::{PAGE_SIZE, SPECIAL_PFN_CONSOLE, SPECIAL_PFN_XENSTORE};
use crate::vcpus::lock;
use crate::xen::RateLimit;

const WAKE: Token = Token(0);
const CONSOLE_EVT: Token = Token(1);
const STORE_EVT: Token = Token(2);
const STORE_SOCK: Token = Token(3);
const CONTROL: Token = Token(4);
const CONSOLE_LISTEN: Token = Token(5);
const FIRST_DYNAMIC: usize = 16;

/// Output held for a console client that does not read; beyond it the
/// client is disconnected.
const CLIENT_BACKLOG_MAX: usize = 1 << 20;

/// A page of guest memory (a ring), accessed in place.
#[derive(Debug, Clone)]
pub struct GuestPage {
    shared: Arc<Shared>,
    gpa: u64,
}

impl GuestPage {
    /// The page at guest frame `pfn` (a special page of the layout).
    pub fn new(shared: Arc<Shared>, pfn: u64) -> Self {
        Self {
            shared,
            gpa: pfn * PAGE_SIZE,
        }
    }

    fn at(&self, offset: usize) -> GuestAddress {
        GuestAddress(self.gpa + offset as u64)
    }
}

// The special pages always exist (they are part of the layout), so these
// accesses cannot fail; a failure would leave the buffer or index zero.
impl RingMemory for GuestPage {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let _ = self.shared.ram.memory().read_slice(buf, self.at(offset));
    }
    fn write(&self, offset: usize, data: &[u8]) {
        let _ = self.shared.ram.memory().write_slice(data, self.at(offset));
    }
    fn load_u32(&self, offset: usize) -> u32 {
        self.shared
            .ram
            .memory()
            .load(self.at(offset), std::sync::atomic::Ordering::Acquire)
            .unwrap_or(0)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        let _ = self.shared.ram.memory().store(
            value,
            self.at(offset),
            std::sync::atomic::Ordering::Release,
        );
    }
}

/// Raises a guest port connected to a host service.
#[derive(Debug)]
pub struct GuestNotify {
    shared: Arc<Shared>,
    port: u32,
    limit: Mutex<RateLimit>,
}

impl GuestNotify {
    fn new(shared: Arc<Shared>, port: u32) -> Self {
        Self {
            shared,
            port,
            limit: Mutex::new(RateLimit::new(2)),
        }
    }
}

impl Notify for GuestNotify {
    fn notify(&self) {
        if let Err(e) = self.shared.raise_host_port(self.port) {
            if let Some(n) = lock(&self.limit).allow(Instant::now()) {
                tracing::warn!(
                    port = self.port,
                    suppressed = n,
                    "raising the guest's port: {}",
                    crate::chain(&e)
                );
            }
        }
    }
}

type Console = ConsoleBackend<GuestPage, GuestNotify, File>;
type Relay = StoreRelay<GuestPage, GuestNotify, UnixStream>;

#[derive(Debug)]
struct ControlConn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Request lines not yet carried out: while a device request is under
    /// way the ones after it wait, so replies come in request order.
    queued: std::collections::VecDeque<String>,
    /// A device request is under way on another thread.
    busy: bool,
    /// The peer has closed its side: close once nothing is under way.
    eof: bool,
}

#[derive(Debug)]
struct ConsoleClient {
    stream: UnixStream,
    out: Vec<u8>,
}

/// The I/O thread's state.
#[derive(Debug)]
pub struct Io {
    shared: Arc<Shared>,
    poll: Poll,
    console: Console,
    relay: Option<Relay>,
    control: UnixListener,
    console_listener: UnixListener,
    controls: HashMap<Token, ControlConn>,
    clients: HashMap<Token, ConsoleClient>,
    next_token: usize,
    limit: RateLimit,
}

impl Io {
    /// Set up the loop: `log` is the console log, `relay` the attached
    /// xenstored connection, `control` and `console` the bound sockets.
    pub fn new(
        shared: Arc<Shared>,
        log: File,
        relay: std::os::unix::net::UnixStream,
        control: std::os::unix::net::UnixListener,
        console: std::os::unix::net::UnixListener,
    ) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let r = poll.registry();
        let ev = &shared.events;
        r.register(
            &mut SourceFd(&ev.wake.as_raw_fd()),
            WAKE,
            Interest::READABLE,
        )?;
        r.register(
            &mut SourceFd(&ev.console.as_raw_fd()),
            CONSOLE_EVT,
            Interest::READABLE,
        )?;
        r.register(
            &mut SourceFd(&ev.store.as_raw_fd()),
            STORE_EVT,
            Interest::READABLE,
        )?;
        let mut relay_stream = UnixStream::from_std(relay);
        r.register(
            &mut relay_stream,
            STORE_SOCK,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut control = UnixListener::from_std(control);
        r.register(&mut control, CONTROL, Interest::READABLE)?;
        let mut console_listener = UnixListener::from_std(console);
        r.register(&mut console_listener, CONSOLE_LISTEN, Interest::READABLE)?;

        let console_ring = ConsoleRing::new(
            GuestPage::new(shared.clone(), SPECIAL_PFN_CONSOLE),
            GuestNotify::new(shared.clone(), shared.console_port),
        );
        let relay = StoreRelay::new(
            GuestPage::new(shared.clone(), SPECIAL_PFN_XENSTORE),
            GuestNotify::new(shared.clone(), shared.store_port),
            relay_stream,
        );
        Ok(Self {
            console: ConsoleBackend::new(console_ring, log),
            relay: Some(relay),
            poll,
            control,
            console_listener,
            controls: HashMap::new(),
            clients: HashMap::new(),
            next_token: FIRST_DYNAMIC,
            limit: RateLimit::new(2),
            shared,
        })
    }

    /// Serve until the domain ends, then take the console's last output
    /// and tell the main thread.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.next_watchdog();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                self.shared
                    .end(End::Failed(format!("the I/O event loop failed: {e}")));
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKE => {
                        let _ = self.shared.events.wake.read();
                        self.take_early();
                        self.deliver_replies();
                    }
                    CONSOLE_EVT => {
                        let _ = self.shared.events.console.read();
                        self.service_console();
                    }
                    STORE_EVT => {
                        let _ = self.shared.events.store.read();
                        self.pump_relay();
                    }
                    STORE_SOCK => self.pump_relay(),
                    CONTROL => self.accept_control(),
                    CONSOLE_LISTEN => self.accept_console(),
                    t if self.controls.contains_key(&t) => self.serve_control(t),
                    t if self.clients.contains_key(&t) => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.read_client(t);
                        }
                        if ev.is_writable() {
                            self.flush_client(t);
                        }
                    }
                    _ => {}
                }
            }
            self.check_watchdogs();
            if lock(&self.shared.run).end.is_some() {
                break;
            }
        }
        // The guest's last words (a panic, "reboot: Power down").
        self.take_early();
        self.service_console();
        lock(&self.shared.run).io_done = true;
        self.shared.run_cv.notify_all();
    }

    fn take_early(&mut self) {
        let bytes = std::mem::take(&mut *lock(&self.shared.early));
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = self.console.early_output(&bytes) {
            self.warn("console log", &e);
        }
        self.broadcast(&bytes);
    }

    fn service_console(&mut self) {
        let mut out = Vec::new();
        let res = self.console.service(&mut out);
        self.broadcast(&out);
        if let Err(e) = res {
            if self.console.state() == ConsoleState::Broken {
                tracing::warn!(
                    domid = self.shared.domid,
                    "console disconnected: {}",
                    crate::chain(&e)
                );
            } else {
                self.warn("console", &e);
            }
        }
    }

    fn pump_relay(&mut self) {
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        if let Err(e) = relay.pump() {
            tracing::warn!(
                domid = self.shared.domid,
                "XenStore connection dropped: {e}"
            );
            if let Some(mut r) = self.relay.take() {
                let _ = self.poll.registry().deregister(r.daemon_mut());
            }
        }
    }

    fn warn(&mut self, what: &str, e: &(dyn std::error::Error + 'static)) {
        if let Some(n) = self.limit.allow(Instant::now()) {
            tracing::warn!(
                domid = self.shared.domid,
                suppressed = n,
                "{what}: {}",
                crate::chain(e)
            );
        }
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn accept_control(&mut self) {
        loop {
            match self.control.accept() {
                Ok((mut stream, _)) => {
                    let t = self.token();
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, t, Interest::READABLE)
                        .is_ok()
                    {
                        self.controls.insert(
                            t,
                            ControlConn {
                                stream,
                                inbuf: Vec::new(),
                                out: Vec::new(),
                                queued: std::collections::VecDeque::new(),
                                busy: false,
                                eof: false,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.warn("accepting a control connection", &e);
                    return;
                }
            }
        }
    }

    fn serve_control(&mut self, t: Token) {
        let mut close = false;
        {
            let c = self.controls.get_mut(&t).expect("checked by the caller");
            let mut buf = [0u8; 4096];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        c.eof = true;
                        break;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        close = true;
                        break;
                    }
                }
                if c.inbuf.len() > control::MAX_REQUEST {
                    close = true;
                    break;
                }
            }
            while let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
                c.queued
                    .push_back(String::from_utf8_lossy(&line).into_owned());
            }
        }
        if close {
            self.close_control(t);
            return;
        }
        self.run_queued(t);
    }

    /// Carry out the connection's queued requests in order, up to the first
    /// device request (which goes to a thread of its own; the rest wait for
    /// its reply), and send the replies.
    fn run_queued(&mut self, t: Token) {
        let mut destroy = false;
        loop {
            let Some(c) = self.controls.get_mut(&t) else {
                return;
            };
            if c.busy {
                break;
            }
            let Some(line) = c.queued.pop_front() else {
                break;
            };
            if line.trim().is_empty() {
                continue;
            }
            let reply = match control::parse(&line) {
                Ok(Request::Destroy) => {
                    destroy = true;
                    control::ok()
                }
                Ok(req) if req.is_device_op() => {
                    c.busy = true;
                    let shared = self.shared.clone();
                    let spawned =
                        std::thread::Builder::new()
                            .name("device-op".into())
                            .spawn(move || {
                                let reply = crate::devices::carry_out(&shared, req);
                                lock(&shared.replies).push((t.0, reply));
                                let _ = shared.events.wake.write(1);
                            });
                    match spawned {
                        Ok(_) => continue,
                        Err(e) => {
                            c.busy = false;
                            control::error(&format!("starting the device thread: {e}"))
                        }
                    }
                }
                Ok(req) => self.carry_out(req),
                Err(msg) => control::error(&msg),
            };
            if let Some(c) = self.controls.get_mut(&t) {
                c.out.extend_from_slice(reply.as_bytes());
            }
        }
        self.flush_control(t);
        if destroy {
            self.shared.end(End::Destroy);
        }
    }

    /// Replies from device threads: send each, then go on with what its
    /// connection queued behind it.
    fn deliver_replies(&mut self) {
        let replies = std::mem::take(&mut *lock(&self.shared.replies));
        for (t, reply) in replies {
            let t = Token(t);
            let Some(c) = self.controls.get_mut(&t) else {
                continue;
            };
            c.busy = false;
            c.out.extend_from_slice(reply.as_bytes());
            self.run_queued(t);
        }
    }

    /// Write out a connection's replies (small: briefly blocking if the
    /// peer's buffer is full); close it if that fails or once the peer has
    /// closed and nothing is under way.
    fn flush_control(&mut self, t: Token) {
        let Some(c) = self.controls.get_mut(&t) else {
            return;
        };
        let _ = c.stream.flush();
        let mut off = 0;
        let deadline = Instant::now() + Duration::from_secs(1);
        while off < c.out.len() && Instant::now() < deadline {
            match c.stream.write(&c.out[off..]) {
                Ok(0) => break,
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        c.out.drain(..off);
        let close = !c.out.is_empty() || (c.eof && !c.busy && c.queued.is_empty());
        if close {
            self.close_control(t);
        }
    }

    fn close_control(&mut self, t: Token) {
        if let Some(mut c) = self.controls.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn carry_out(&mut self, req: Request) -> String {
        match req {
            Request::Info => control::info(&self.info()),
            Request::Pause => {
                self.shared.pause();
                control::ok()
            }
            Request::Unpause => {
                self.shared.unpause();
                control::ok()
            }
            Request::VcpuPin { vcpu, cpus } => {
                let Some(v) = self.shared.vcpus.get(vcpu as usize) else {
                    return control::error(&format!(
                        "no vCPU {vcpu} (the domain has {})",
                        self.shared.vcpus.len()
                    ));
                };
                match v.pin(&cpus) {
                    Ok(()) => control::ok(),
                    Err(e) => control::error(&format!("pinning vCPU {vcpu} to {cpus:?}: {e}")),
                }
            }
            Request::Destroy => control::ok(),
            // Carried out by run_queued on a thread of their own.
            req => crate::devices::carry_out(&self.shared, req),
        }
    }

    fn info(&self) -> Info {
        let r = lock(&self.shared.run);
        let (state, reason) = match &r.end {
            Some(End::Shutdown(reason)) => ("shutdown", Some(reason.as_str())),
            Some(_) => ("shutdown", None),
            None if r.paused => ("paused", None),
            None => ("running", None),
        };
        drop(r);
        let all = host_cpus();
        Info {
            ok: true,
            state,
            reason,
            vcpus: self
                .shared
                .vcpus
                .iter()
                .map(|v| {
                    let aff = lock(&v.affinity).clone();
                    VcpuInfo {
                        id: v.id(),
                        online: v.online.load(AtomicOrdering::Relaxed),
                        cpu_time_ns: v.cpu_time_ns(),
                        affinity: if aff.is_empty() { all.clone() } else { aff },
                        tid: v.tid.load(AtomicOrdering::Relaxed),
                    }
                })
                .collect(),
            memory_kib: self.shared.spec.memory >> 10,
            start_time: self.shared.start_time,
        }
    }

    fn accept_console(&mut self) {
        loop {
            match self.console_listener.accept() {
                Ok((mut stream, _)) => {
                    let t = self.token();
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, t, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        self.clients.insert(
                            t,
                            ConsoleClient {
                                stream,
                                out: Vec::new(),
                            },
                        );
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.warn("accepting a console client", &e);
                    return;
                }
            }
        }
    }

    fn read_client(&mut self, t: Token) {
        let mut input = Vec::new();
        let mut close = false;
        if let Some(c) = self.clients.get_mut(&t) {
            let mut buf = [0u8; 4096];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        close = true;
                        break;
                    }
                    Ok(n) => input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        close = true;
                        break;
                    }
                }
                if input.len() >= 64 * 1024 {
                    break;
                }
            }
        }
        if !input.is_empty() {
            if let Err(e) = self.console.push_input(&input) {
                tracing::warn!(
                    domid = self.shared.domid,
                    "console disconnected: {}",
                    crate::chain(&e)
                );
            }
        }
        if close {
            self.drop_client(t);
        }
    }

    fn broadcast(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let tokens: Vec<Token> = self.clients.keys().copied().collect();
        for t in tokens {
            if let Some(c) = self.clients.get_mut(&t) {
                c.out.extend_from_slice(bytes);
            }
            self.flush_client(t);
        }
    }

    fn flush_client(&mut self, t: Token) {
        let mut close = false;
        if let Some(c) = self.clients.get_mut(&t) {
            let mut off = 0;
            while off < c.out.len() {
                match c.stream.write(&c.out[off..]) {
                    Ok(0) => {
                        close = true;
                        break;
                    }
                    Ok(n) => off += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        close = true;
                        break;
                    }
                }
            }
            c.out.drain(..off);
            if c.out.len() > CLIENT_BACKLOG_MAX {
                tracing::warn!("a console client does not read its output: disconnected");
                close = true;
            }
        }
        if close {
            self.drop_client(t);
        }
    }

    fn drop_client(&mut self, t: Token) {
        if let Some(mut c) = self.clients.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn next_watchdog(&self) -> Option<Duration> {
        lock(&self.shared.watchdogs)
            .iter()
            .flatten()
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
            .min()
    }

    fn check_watchdogs(&mut self) {
        let now = Instant::now();
        let fired = lock(&self.shared.watchdogs)
            .iter()
            .flatten()
            .find(|(at, _)| *at <= now)
            .map(|(_, timeout)| *timeout);
        if let Some(timeout) = fired {
            tracing::warn!(
                domid = self.shared.domid,
                timeout,
                "the guest's watchdog expired"
            );
            self.shared.end(End::Shutdown(ShutdownReason::Watchdog));
        }
    }
}

/// Every host CPU (what an unpinned vCPU may use).
fn host_cpus() -> Vec<u32> {
    // SAFETY: no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (0..n.max(1) as u32).collect()
}
