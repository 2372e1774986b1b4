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
use crate::wire::{FrameDecoder, FrameRef, Header};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;
use xen_abi::xs_wire::{XS_WATCH_EVENT, XSD_SOCKMSG_SIZE};

/// Pending output above which a connection is dropped.
pub const OUTPUT_CAP: usize = 4 << 20;
/// Input read ahead of processing, per connection.
const INPUT_CAP: usize = 64 << 10;
const LISTENER: Token = Token(0);
/// The token of the signals that stop the server ([`Server::stop_on`]).
const SIGNALS: Token = Token(usize::MAX);

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

/// Hashes the server's own sequential ids (tokens, connection ids), which
/// no client chooses: a multiplication is enough to spread them.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

struct Client {
    stream: UnixStream,
    conn: ConnId,
    dec: FrameDecoder,
    /// Input read but not yet handled: what was left of one read when the
    /// connection reached its `outstanding` limit.
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
    /// The peer shut down its side or the socket reported an error: read
    /// until EOF rather than stopping at a short read.
    hup: bool,
    /// In `Server::ready`.
    queued: bool,
    /// In `Server::dirty`.
    dirty: bool,
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
    fn line(&mut self, dir: &str, conn: ConnId, f: &FrameRef<'_>) {
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

/// Why [`handle_frames`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Every byte of the input was used.
    Done,
    /// The connection reached its `outstanding` limit.
    Throttled,
    /// The connection must close (bad frame, or the store dropped it).
    Close,
}

/// Decodes and handles the frames in `input`, in place, until the input
/// ends or `room` requests have been handled in this turn (`handled`
/// counts them). Returns the bytes used and why it stopped.
fn handle_frames(
    store: &mut Store,
    trace: &mut Option<Trace>,
    conn: ConnId,
    dec: &mut FrameDecoder,
    input: &[u8],
    room: usize,
    handled: &mut usize,
) -> (usize, Stop) {
    let mut pos = 0;
    while pos < input.len() {
        if *handled >= room {
            return (pos, Stop::Throttled);
        }
        match dec.next(&input[pos..]) {
            Ok((n, f)) => {
                pos += n;
                if let Some(f) = f {
                    if let Some(tr) = trace.as_mut() {
                        tr.line("IN ", conn, &f);
                    }
                    store.handle_ref(conn, &f);
                    *handled += 1;
                    if !store.is_connected(conn) {
                        return (pos, Stop::Close);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(conn, "bad frame, closing: {e}");
                return (pos, Stop::Close);
            }
        }
    }
    (pos, Stop::Done)
}

/// Size of one read from a connection.
const READ_CHUNK: usize = 16384;

/// The daemon's event loop and state.
pub struct Server {
    poll: Poll,
    listener: UnixListener,
    clients: IdMap<Token, Client>,
    by_conn: IdMap<ConnId, Token>,
    next_token: usize,
    store: Store,
    persister: Option<Persister>,
    trace: Option<Trace>,
    /// Clients to read from in the next turn: they had a readable event,
    /// or input is left that a limit stopped (`Client::queued`).
    ready: Vec<Token>,
    /// The clients being read from in this turn.
    work: Vec<Token>,
    /// Clients with output to write (`Client::dirty`).
    dirty: Vec<Token>,
    /// The clients being written to (`dirty`, taken).
    flushing: Vec<Token>,
    /// Reply to each connection as soon as its input is handled, rather
    /// than once per turn: when committing the journal is cheap (see
    /// [`Server::run`]).
    reply_each: bool,
    /// Where reads land; requests are handled in place from here.
    rbuf: Box<[u8]>,
    /// Signals that end [`Server::run`].
    signals: Option<signal_hook_mio::v1_0::Signals>,
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
        let reply_each = persister.as_ref().is_none_or(|p| !p.is_sync());
        Ok(Server {
            poll,
            listener,
            clients: IdMap::default(),
            by_conn: IdMap::default(),
            next_token: 1,
            store,
            persister,
            trace,
            ready: Vec::new(),
            work: Vec::new(),
            dirty: Vec::new(),
            flushing: Vec::new(),
            reply_each,
            rbuf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            signals: None,
        })
    }

    /// Make [`Server::run`] return (`Ok`, with the signal) when one of
    /// `signals` arrives, after the turn in progress: replies and events
    /// already queued are sent, the journal and trace are committed.
    pub fn stop_on(&mut self, signals: &[i32]) -> Result<(), ServerError> {
        let mut s = signal_hook_mio::v1_0::Signals::new(signals).map_err(ServerError::Poll)?;
        self.poll
            .registry()
            .register(&mut s, SIGNALS, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        self.signals = Some(s);
        Ok(())
    }

    /// Runs until an unrecoverable error, or one of the signals of
    /// [`Server::stop_on`], which it returns.
    ///
    /// One turn: wait for events; for each ready connection, read what it
    /// sent and handle it; commit the journal of what was handled to the log
    /// (so a change reaches the kernel before any reply that depends on
    /// it); write the replies and events queued so far, in the order the
    /// store queued them, with one write per connection.
    ///
    /// How often to commit: an append to the log is a copy into the page
    /// cache, so by default each connection is answered as soon as its
    /// input is handled (its client goes on working on another CPU while the
    /// next connection is served, which measured faster with many clients
    /// than holding every reply to the end of the turn). With `--sync` a
    /// commit is an `fdatasync`, so the whole turn shares one: group commit
    /// across connections.
    pub fn run(&mut self) -> Result<Option<i32>, ServerError> {
        let mut events = Events::with_capacity(256);
        let mut stop = None;
        loop {
            let timeout = if self.ready.is_empty() {
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
            for ev in events.iter() {
                let t = ev.token();
                if t == LISTENER {
                    self.accept();
                    continue;
                }
                if t == SIGNALS {
                    if let Some(sigs) = self.signals.as_mut() {
                        stop = stop.or(sigs.pending().next());
                    }
                    continue;
                }
                let Some(c) = self.clients.get_mut(&t) else {
                    continue;
                };
                if ev.is_read_closed() || ev.is_error() {
                    c.hup = true;
                }
                if (ev.is_readable() || c.hup) && !c.queued {
                    c.queued = true;
                    self.ready.push(t);
                }
                if ev.is_writable() && !c.dirty {
                    c.dirty = true;
                    self.dirty.push(t);
                }
            }
            std::mem::swap(&mut self.ready, &mut self.work);
            for i in 0..self.work.len() {
                let t = self.work[i];
                if let Some(c) = self.clients.get_mut(&t) {
                    c.queued = false;
                }
                self.service_input(t);
                // A connection that ended is closed by `flush`.
                if let Some(c) = self.clients.get_mut(&t) {
                    if c.dead && !c.dirty {
                        c.dirty = true;
                        self.dirty.push(t);
                    }
                }
                if self.reply_each {
                    self.send_output()?;
                }
            }
            self.work.clear();
            self.send_output()?;
            for id in self.store.take_closing() {
                if let Some(t) = self.by_conn.get(&id).copied() {
                    self.flush(t);
                    self.close(t);
                }
            }
            // Closing a guest's relay connection fires `@releaseDomain`:
            // send what the closes queued now, not on the next input.
            while self.store.has_output() {
                self.send_output()?;
            }
            if let Some(tr) = self.trace.as_mut() {
                if let Err(e) = tr.w.flush() {
                    return Err(ServerError::Trace(tr.path.clone(), e));
                }
            }
            if stop.is_some() {
                return Ok(stop);
            }
        }
    }

    /// Commit, then replies: the journal of everything handled so far
    /// reaches the kernel before any reply or event queued so far is
    /// written.
    fn send_output(&mut self) -> Result<(), ServerError> {
        if let Some(p) = self.persister.as_mut() {
            p.append(&mut self.store).map_err(ServerError::Persist)?;
        }
        self.route_output();
        std::mem::swap(&mut self.dirty, &mut self.flushing);
        for i in 0..self.flushing.len() {
            let t = self.flushing[i];
            if let Some(c) = self.clients.get_mut(&t) {
                c.dirty = false;
            }
            self.flush(t);
        }
        self.flushing.clear();
        Ok(())
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
                            inbuf: Vec::new(),
                            in_pos: 0,
                            out: Vec::new(),
                            out_pos: 0,
                            reply_ends: VecDeque::new(),
                            dead: false,
                            throttled: false,
                            want_write: false,
                            hup: false,
                            queued: false,
                            dirty: false,
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

    /// Reads what the client sent and handles complete frames in place,
    /// stopping at its `outstanding` limit (resumed by [`Server::flush`])
    /// or, for fairness, after a turn's worth of requests.
    ///
    /// The socket is edge-triggered: a read shorter than the buffer emptied
    /// it, so the next bytes raise a new event and no further read (that
    /// would only say `EAGAIN`) is needed, unless the peer has shut down,
    /// when reading goes on to the end.
    fn service_input(&mut self, t: Token) {
        let Server {
            clients,
            store,
            trace,
            rbuf,
            ready,
            ..
        } = self;
        let Some(c) = clients.get_mut(&t) else {
            return;
        };
        if c.dead {
            return;
        }
        let limit = store.outstanding_limit(c.conn) as usize;
        let room = if limit == 0 {
            usize::MAX
        } else {
            limit.saturating_sub(c.pending_replies())
        };
        let mut handled = 0usize;
        if c.in_pos < c.inbuf.len() {
            let (n, stop) = handle_frames(
                store,
                trace,
                c.conn,
                &mut c.dec,
                &c.inbuf[c.in_pos..],
                room,
                &mut handled,
            );
            c.in_pos += n;
            match stop {
                Stop::Done => {}
                Stop::Throttled => {
                    c.throttled = true;
                    return;
                }
                Stop::Close => {
                    c.dead = true;
                    return;
                }
            }
        }
        c.inbuf.clear();
        c.in_pos = 0;
        loop {
            if handled * 64 >= INPUT_CAP {
                // Fairness: let other clients run, come back next turn.
                if !c.queued {
                    c.queued = true;
                    ready.push(t);
                }
                return;
            }
            match c.stream.read(rbuf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => {
                    let (used, stop) = handle_frames(
                        store,
                        trace,
                        c.conn,
                        &mut c.dec,
                        &rbuf[..n],
                        room,
                        &mut handled,
                    );
                    match stop {
                        Stop::Done => {}
                        Stop::Throttled => {
                            c.inbuf.extend_from_slice(&rbuf[used..n]);
                            c.throttled = true;
                            return;
                        }
                        Stop::Close => {
                            c.dead = true;
                            return;
                        }
                    }
                    if n < rbuf.len() && !c.hup {
                        return;
                    }
                }
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
        let Server {
            store,
            clients,
            by_conn,
            trace,
            dirty,
            ..
        } = self;
        store.drain_encoded(|id, bytes| {
            let Some(c) = by_conn.get(&id).and_then(|t| clients.get_mut(t)) else {
                return;
            };
            if c.dead {
                return;
            }
            let h = Header::decode(bytes[..XSD_SOCKMSG_SIZE].try_into().expect("a whole frame"));
            if let Some(tr) = trace.as_mut() {
                let f = FrameRef {
                    type_: h.type_,
                    req_id: h.req_id,
                    tx_id: h.tx_id,
                    payload: &bytes[XSD_SOCKMSG_SIZE..],
                };
                tr.line("OUT", id, &f);
            }
            c.out.extend_from_slice(bytes);
            if h.type_ != XS_WATCH_EVENT {
                c.reply_ends.push_back(c.out.len());
            }
            if c.out.len() - c.out_pos > OUTPUT_CAP {
                tracing::warn!(conn = id, "client does not read its replies, closing");
                c.dead = true;
            }
            if !c.dirty {
                c.dirty = true;
                dirty.push(by_conn[&id]);
            }
        });
    }

    /// Writes pending output; closes dead clients.
    fn flush(&mut self, t: Token) {
        let Some(c) = self.clients.get_mut(&t) else {
            return;
        };
        let mut wrote = false;
        while c.out_pos < c.out.len() && !c.dead {
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => c.dead = true,
                Ok(n) => {
                    c.out_pos += n;
                    wrote = true;
                }
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
        // Replies went out: a connection stopped at its `outstanding`
        // limit may go on (if it still is at the limit, it stops again).
        if c.throttled && !c.dead && (wrote || c.out.is_empty()) {
            c.throttled = false;
            if !c.queued {
                c.queued = true;
                self.ready.push(t);
            }
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
