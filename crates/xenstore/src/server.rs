//! The unix-socket transport of `xenstored`: a single-threaded `mio` event
//! loop that accepts connections on Xen's socket path, reassembles frames,
//! hands them to the [`Store`], appends the store's journal to disk and then
//! sends replies and watch events.
//!
//! # Guest connections: the `rxen-attach` handshake
//! A guest's XenStore ring lives in guest memory that only its domain
//! process maps. That process connects to this socket as root and sends
//! `XS_CONTROL` with the strings `rxen-attach` and the guest's decimal
//! domain id (the domain must already be introduced with `XS_INTRODUCE`).
//! On `OK`, the connection *is* the guest's: every later frame is a request
//! from that domain, with its permissions and quotas (never dom0's), relative
//! paths resolve to `/local/domain/<domid>/`, and its watch events come
//! back on the same connection. The process then relays the ring's bytes
//! both ways unchanged. `XS_RELEASE` of the domain closes the connection.
//! Only peers with uid 0 (`SO_PEERCRED`) may attach; `EBUSY` if the domain
//! already has a live connection.
//!
//! Bounds: a connection buffers at most one partial frame of input; its
//! pending output is capped ([`OUTPUT_CAP`]) and a client that stops reading
//! is disconnected; an unprivileged connection with `outstanding` replies
//! unsent is not read from until it catches up.

use crate::persist::{PersistError, Persister};
use crate::store::{ConnId, Store};
use crate::wire::{Frame, FrameDecoder};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;
use xen_abi::xs_wire::XS_WATCH_EVENT;

/// Pending output above which a connection is dropped.
pub const OUTPUT_CAP: usize = 4 << 20;
/// Input read ahead of processing, per connection.
const INPUT_CAP: usize = 64 << 10;
const LISTENER: Token = Token(0);

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("creating socket directory {0}")]
    SocketDir(PathBuf, #[source] io::Error),
    #[error("binding {0}")]
    Bind(PathBuf, #[source] io::Error),
    #[error("setting up the event loop")]
    Poll(#[source] io::Error),
    #[error("persisting state")]
    Persist(#[source] PersistError),
    #[error("writing trace file {0}")]
    Trace(PathBuf, #[source] io::Error),
}

/// The default socket path, honouring `XENSTORED_PATH` and
/// `XENSTORED_RUNDIR` as libxenstore does.
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("XENSTORED_PATH") {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("XENSTORED_RUNDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/xenstored"));
    dir.join("socket")
}

/// Binds the listening socket at `path` (replacing a stale socket file),
/// mode 0600 as in Xen.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, ServerError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ServerError::SocketDir(dir.to_path_buf(), e))?;
        }
    }
    let _ = std::fs::remove_file(path);
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| ServerError::Bind(path.to_path_buf(), e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServerError::Bind(path.to_path_buf(), e))?;
    l.set_nonblocking(true)
        .map_err(|e| ServerError::Bind(path.to_path_buf(), e))?;
    Ok(l)
}

/// The uid of the peer of a unix socket.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket owned by `s`; `cred` and `len` are
    // valid for writes and `len` holds the size of `cred`.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

struct Client {
    stream: UnixStream,
    conn: ConnId,
    dec: FrameDecoder,
    inbuf: Vec<u8>,
    in_pos: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// End offsets (in `out` coordinates) of queued replies.
    reply_ends: VecDeque<usize>,
    /// Saw EOF or an error; close after flushing what we can.
    dead: bool,
    /// Stopped reading at the `outstanding` limit.
    throttled: bool,
    want_write: bool,
}

impl Client {
    fn pending_replies(&self) -> usize {
        self.reply_ends.len()
    }
}

/// A trace sink (`-T`): one line per frame in and out.
struct Trace {
    path: PathBuf,
    w: io::BufWriter<std::fs::File>,
}

impl Trace {
    fn line(&mut self, dir: &str, conn: ConnId, f: &Frame) {
        let mut shown = String::new();
        for &b in f.payload.iter().take(256) {
            match b {
                0 => shown.push(' '),
                0x20..=0x7e => shown.push(b as char),
                _ => shown.push('.'),
            }
        }
        let _ = writeln!(
            self.w,
            "{dir} conn {conn} {} ({}) req {} tx {} len {} {}",
            crate::dispatch::type_name(f.type_),
            f.type_,
            f.req_id,
            f.tx_id,
            f.payload.len(),
            shown
        );
    }
}

/// The daemon's event loop and state.
pub struct Server {
    poll: Poll,
    listener: UnixListener,
    clients: HashMap<Token, Client>,
    by_conn: HashMap<ConnId, Token>,
    next_token: usize,
    store: Store,
    persister: Option<Persister>,
    trace: Option<Trace>,
    /// Clients with unprocessed input that must be revisited.
    again: Vec<Token>,
    /// Output taken from the store, not yet routed.
    pending: Vec<(ConnId, Frame)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Server {
    /// A server on an already bound listener.
    pub fn new(
        listener: std::os::unix::net::UnixListener,
        store: Store,
        persister: Option<Persister>,
        trace_file: Option<&Path>,
    ) -> Result<Server, ServerError> {
        let poll = Poll::new().map_err(ServerError::Poll)?;
        let mut listener = UnixListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let trace = match trace_file {
            None => None,
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| ServerError::Trace(p.to_path_buf(), e))?;
                Some(Trace {
                    path: p.to_path_buf(),
                    w: io::BufWriter::new(f),
                })
            }
        };
        Ok(Server {
            poll,
            listener,
            clients: HashMap::new(),
            by_conn: HashMap::new(),
            next_token: 1,
            store,
            persister,
            trace,
            again: Vec::new(),
            pending: Vec::new(),
        })
    }

    /// Runs until an unrecoverable error.
    pub fn run(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if self.again.is_empty() {
                None
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::Poll(e));
            }
            let mut touched: Vec<Token> = std::mem::take(&mut self.again);
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept();
                    continue;
                }
                if self.clients.contains_key(&ev.token()) {
                    touched.push(ev.token());
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for t in &touched {
                self.service_input(*t);
            }
            // Group commit: the journal reaches the kernel before any reply.
            if let Some(p) = self.persister.as_mut() {
                p.append(&mut self.store).map_err(ServerError::Persist)?;
            }
            self.route_output();
            for t in touched {
                self.flush(t);
            }
            self.flush_pending();
            for id in self.store.take_closing() {
                if let Some(t) = self.by_conn.get(&id).copied() {
                    self.flush(t);
                    self.close(t);
                }
            }
            // Closing a guest's relay connection fires `@releaseDomain`:
            // send what the closes queued now, not on the next input.
            if self.store.has_output() {
                self.route_output();
                self.flush_pending();
            }
            if let Some(tr) = self.trace.as_mut() {
                if let Err(e) = tr.w.flush() {
                    return Err(ServerError::Trace(tr.path.clone(), e));
                }
            }
        }
    }

    /// Flushes every client with output waiting.
    fn flush_pending(&mut self) {
        let pending: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| c.out_pos < c.out.len())
            .map(|(t, _)| *t)
            .collect();
        for t in pending {
            self.flush(t);
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let root = peer_uid(&stream) == Some(0);
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        tracing::warn!("registering connection: {e}");
                        continue;
                    }
                    let conn = self.store.connect_dom0(root);
                    tracing::debug!(conn, root, "connection accepted");
                    self.by_conn.insert(conn, token);
                    self.clients.insert(
                        token,
                        Client {
                            stream,
                            conn,
                            dec: FrameDecoder::new(),
                            inbuf: Vec::with_capacity(8192),
                            in_pos: 0,
                            out: Vec::new(),
                            out_pos: 0,
                            reply_ends: VecDeque::new(),
                            dead: false,
                            throttled: false,
                            want_write: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Reads what the client sent and handles complete frames, stopping at
    /// its `outstanding` limit (resumed by [`Server::flush`]).
    fn service_input(&mut self, t: Token) {
        let Some(c) = self.clients.get_mut(&t) else {
            return;
        };
        if c.dead {
            return;
        }
        let limit = self.store.outstanding_limit(c.conn) as usize;
        let mut handled = 0usize;
        let mut buf = [0u8; 16384];
        loop {
            while c.in_pos < c.inbuf.len() {
                if limit != 0 && c.pending_replies() + handled >= limit {
                    c.throttled = true;
                    return;
                }
                match c.dec.feed(&c.inbuf[c.in_pos..]) {
                    Ok((n, f)) => {
                        c.in_pos += n;
                        if let Some(f) = f {
                            if let Some(tr) = self.trace.as_mut() {
                                tr.line("IN ", c.conn, &f);
                            }
                            self.store.handle(c.conn, &f);
                            self.store.drain_output_into(&mut self.pending);
                            handled += 1;
                            if !self.store.is_connected(c.conn) {
                                c.dead = true;
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(conn = c.conn, "bad frame, closing: {e}");
                        c.dead = true;
                        return;
                    }
                }
            }
            c.inbuf.clear();
            c.in_pos = 0;
            if handled * 64 >= INPUT_CAP {
                // Fairness: let other clients run, come back next turn.
                self.again.push(t);
                return;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    /// Moves queued frames into the clients' output buffers.
    fn route_output(&mut self) {
        self.store.drain_output_into(&mut self.pending);
        for (id, f) in self.pending.drain(..) {
            let Some(t) = self.by_conn.get(&id) else {
                continue;
            };
            let Some(c) = self.clients.get_mut(t) else {
                continue;
            };
            if c.dead {
                continue;
            }
            if let Some(tr) = self.trace.as_mut() {
                tr.line("OUT", id, &f);
            }
            f.encode_into(&mut c.out);
            if f.type_ != XS_WATCH_EVENT {
                c.reply_ends.push_back(c.out.len());
            }
            if c.out.len() - c.out_pos > OUTPUT_CAP {
                tracing::warn!(conn = id, "client does not read its replies, closing");
                c.dead = true;
            }
        }
    }

    /// Writes pending output; closes dead clients.
    fn flush(&mut self, t: Token) {
        let Some(c) = self.clients.get_mut(&t) else {
            return;
        };
        while c.out_pos < c.out.len() && !c.dead {
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => c.dead = true,
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Ask for writability only while output is stuck.
                    if !c.want_write {
                        c.want_write = true;
                        let _ = self.poll.registry().reregister(
                            &mut c.stream,
                            t,
                            Interest::READABLE | Interest::WRITABLE,
                        );
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => c.dead = true,
            }
        }
        while c.reply_ends.front().is_some_and(|&e| e <= c.out_pos) {
            c.reply_ends.pop_front();
        }
        if c.out_pos == c.out.len() {
            if c.want_write {
                c.want_write = false;
                let _ = self
                    .poll
                    .registry()
                    .reregister(&mut c.stream, t, Interest::READABLE);
            }
            c.out.clear();
            c.out_pos = 0;
            c.reply_ends.clear();
        } else if c.out_pos > (1 << 16) {
            c.out.drain(..c.out_pos);
            for e in c.reply_ends.iter_mut() {
                *e -= c.out_pos;
            }
            c.out_pos = 0;
        }
        if c.throttled && !c.dead {
            c.throttled = false;
            self.again.push(t);
        }
        if c.dead {
            self.close(t);
        }
    }

    fn close(&mut self, t: Token) {
        if let Some(mut c) = self.clients.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.by_conn.remove(&c.conn);
            self.store.disconnect(c.conn);
            tracing::debug!(conn = c.conn, "connection closed");
        }
    }
}
