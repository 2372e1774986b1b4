//! A small synchronous XenStore client over the unix socket, for the
//! toolstack, the domain processes and the `xenstore-*` tools.
//!
//! ```no_run
//! use xenstore::client::Client;
//! let mut xs = Client::connect()?;
//! xs.write("/local/domain/1/name", "guest")?;
//! let name = xs.read_string("/local/domain/1/name")?;
//! // Read-modify-write, retried on EAGAIN:
//! xs.transaction(|tx| {
//!     let n: u64 = tx.read_string("/counter")?.parse().unwrap_or(0);
//!     tx.write("/counter", (n + 1).to_string())
//! })?;
//! # Ok::<(), xenstore::client::ClientError>(())
//! ```
//!
//! Watch events that arrive while waiting for a reply are kept and returned
//! by [`Client::read_watch`].

use crate::perms::Perms;
use crate::wire::{Errno, Frame, FrameDecoder, WireError, split_strings};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use xen_abi::xs_wire::*;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("connecting to {0}")]
    Connect(PathBuf, #[source] io::Error),
    #[error("talking to xenstored")]
    Io(#[source] io::Error),
    #[error("xenstored sent a bad frame")]
    Wire(#[source] WireError),
    #[error("xenstored closed the connection")]
    Closed,
    #[error("request too long for the protocol ({0} bytes)")]
    TooLong(usize),
    #[error("{op} failed: {errno}")]
    Daemon { op: &'static str, errno: Errno },
    #[error("unexpected reply to {op}")]
    BadReply { op: &'static str },
    #[error("timed out waiting for a watch event")]
    Timeout,
}

impl ClientError {
    /// The daemon's error name, if the daemon refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ClientError::Daemon { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Whether the daemon said the node does not exist.
    pub fn is_enoent(&self) -> bool {
        self.errno() == Some(Errno::ENOENT)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A watch event: the changed path (relative if the watch was) and token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// A connection to xenstored.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    dec: FrameDecoder,
    /// Bytes read from the daemon; `in_pos..in_len` not yet decoded.
    inbuf: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    /// The request being sent (reused).
    out: Vec<u8>,
    next_req: u32,
    events: VecDeque<WatchEvent>,
}

/// Bytes read from the daemon at a time.
const CLIENT_READ: usize = 8192;

fn op_name(t: u32) -> &'static str {
    crate::dispatch::type_name(t)
}

fn nul(s: impl AsRef<[u8]>) -> Vec<u8> {
    let mut v = s.as_ref().to_vec();
    v.push(0);
    v
}

fn strings(payload: &[u8]) -> Vec<String> {
    split_strings(payload)
        .into_iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

impl Client {
    /// Connects to the default socket (`XENSTORED_PATH`, else
    /// `$XENSTORED_RUNDIR/socket`, else `/run/xenstored/socket`).
    pub fn connect() -> Result<Client> {
        Client::connect_path(&crate::server::default_socket_path())
    }

    /// Connects to the socket at `path`.
    pub fn connect_path(path: &Path) -> Result<Client> {
        let stream =
            UnixStream::connect(path).map_err(|e| ClientError::Connect(path.to_path_buf(), e))?;
        Ok(Client::from_stream(stream))
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: UnixStream) -> Client {
        Client {
            stream,
            dec: FrameDecoder::new(),
            inbuf: vec![0u8; CLIENT_READ].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            out: Vec::new(),
            next_req: 1,
            events: VecDeque::new(),
        }
    }

    /// Turns this (root, dom0) connection into guest `domid`'s connection
    /// with rxen's `rxen-attach` handshake (see [`crate::server`]). After
    /// it, every request is made as that domain.
    pub fn attach_domain(&mut self, domid: u16) -> Result<()> {
        let mut p = nul("rxen-attach");
        p.extend(nul(domid.to_string()));
        self.request(XS_CONTROL, 0, p).map(|_| ())
    }

    /// Gives up the client and returns the raw stream, for a domain process
    /// that relays a guest ring after [`Client::attach_domain`]. Fails if
    /// bytes from the daemon are already buffered.
    pub fn into_stream(self) -> std::result::Result<UnixStream, Box<Client>> {
        if self.in_pos < self.in_len || self.dec.is_mid_frame() || !self.events.is_empty() {
            return Err(Box::new(self));
        }
        Ok(self.stream)
    }

    fn recv_frame(&mut self) -> Result<Frame> {
        loop {
            while self.in_pos < self.in_len {
                let (n, f) = self
                    .dec
                    .feed(&self.inbuf[self.in_pos..self.in_len])
                    .map_err(ClientError::Wire)?;
                self.in_pos += n;
                if let Some(f) = f {
                    return Ok(f);
                }
            }
            self.in_pos = 0;
            self.in_len = 0;
            match self.stream.read(&mut self.inbuf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.in_len = n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(ClientError::Timeout);
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    fn stash_event(&mut self, f: &Frame) {
        let v = strings(&f.payload);
        if v.len() >= 2 {
            self.events.push_back(WatchEvent {
                path: v[0].clone(),
                token: v[1].clone(),
            });
        }
    }

    /// Sends one request and waits for its reply, keeping watch events.
    pub fn request(&mut self, type_: u32, tx_id: u32, payload: Vec<u8>) -> Result<Vec<u8>> {
        self.request_parts(type_, tx_id, &[&payload])
    }

    /// [`Client::request`] with the payload given as pieces laid end to
    /// end, encoded straight into the reused output buffer.
    fn request_parts(&mut self, type_: u32, tx_id: u32, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let op = op_name(type_);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(ClientError::TooLong(len));
        }
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let h = crate::wire::Header {
            type_,
            req_id,
            tx_id,
            len: len as u32,
        };
        self.out.clear();
        self.out.extend_from_slice(&h.encode());
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.stream.write_all(&self.out).map_err(ClientError::Io)?;
        if self.out.capacity() > 2 * (XENSTORE_PAYLOAD_MAX + XSD_SOCKMSG_SIZE) {
            self.out = Vec::new();
        }
        loop {
            let r = self.recv_frame()?;
            match r.type_ {
                XS_WATCH_EVENT => self.stash_event(&r),
                XS_ERROR if r.req_id == req_id => {
                    let name = split_strings(&r.payload).first().copied().unwrap_or(b"");
                    return Err(ClientError::Daemon {
                        op,
                        errno: Errno::from_name(name).unwrap_or(Errno::EINVAL),
                    });
                }
                t if t == type_ && r.req_id == req_id => return Ok(r.payload),
                _ => return Err(ClientError::BadReply { op }),
            }
        }
    }

    // ---- operations, in or out of a transaction (tx 0) ----

    fn read_tx(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        self.request_parts(XS_READ, tx, &[path.as_bytes(), b"\0"])
    }

    fn write_tx(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        self.request_parts(XS_WRITE, tx, &[path.as_bytes(), b"\0", value])
            .map(|_| ())
    }

    fn directory_tx(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        match self.request(XS_DIRECTORY, tx, nul(path)) {
            Ok(p) => Ok(strings(&p)),
            Err(e) if e.errno() == Some(Errno::E2BIG) => self.directory_part_tx(tx, path),
            Err(e) => Err(e),
        }
    }

    /// `XS_DIRECTORY_PART` until the list is complete, restarting if the
    /// node changes in between.
    fn directory_part_tx(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        'restart: loop {
            let mut names = Vec::new();
            let mut off = 0usize;
            let mut generation: Option<String> = None;
            loop {
                let mut p = nul(path);
                p.extend(nul(off.to_string()));
                let r = self.request(XS_DIRECTORY_PART, tx, p)?;
                let parts = split_strings(&r);
                let (g, rest) = parts.split_first().ok_or(ClientError::BadReply {
                    op: "DIRECTORY_PART",
                })?;
                let g = String::from_utf8_lossy(g).into_owned();
                if generation.as_ref().is_some_and(|x| *x != g) {
                    continue 'restart;
                }
                generation = Some(g);
                let mut done = false;
                for s in rest {
                    if s.is_empty() {
                        done = true;
                        break;
                    }
                    off += s.len() + 1;
                    names.push(String::from_utf8_lossy(s).into_owned());
                }
                if done || rest.is_empty() {
                    return Ok(names);
                }
            }
        }
    }

    fn get_perms_tx(&mut self, tx: u32, path: &str) -> Result<Perms> {
        let p = self.request(XS_GET_PERMS, tx, nul(path))?;
        Perms::parse_strings(&split_strings(&p))
            .map_err(|_| ClientError::BadReply { op: "GET_PERMS" })
    }

    fn set_perms_tx(&mut self, tx: u32, path: &str, perms: &Perms) -> Result<()> {
        let mut p = nul(path);
        p.extend(perms.to_payload());
        self.request(XS_SET_PERMS, tx, p).map(|_| ())
    }

    /// Reads a node's value.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.read_tx(0, path)
    }

    /// Reads a node's value as text (invalid UTF-8 replaced).
    pub fn read_string(&mut self, path: &str) -> Result<String> {
        self.read(path)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Reads a node, `None` if it does not exist.
    pub fn try_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.read(path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_enoent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a node, creating it and missing parents.
    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.write_tx(0, path, value.as_ref())
    }

    /// Creates a node (and parents) if missing.
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.request(XS_MKDIR, 0, nul(path)).map(|_| ())
    }

    /// Removes a node and its subtree.
    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.request(XS_RM, 0, nul(path)).map(|_| ())
    }

    /// The names of a node's children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.directory_tx(0, path)
    }

    pub fn get_perms(&mut self, path: &str) -> Result<Perms> {
        self.get_perms_tx(0, path)
    }

    pub fn set_perms(&mut self, path: &str, perms: &Perms) -> Result<()> {
        self.set_perms_tx(0, path, perms)
    }

    /// Registers a watch. Its first event arrives right away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        let mut p = nul(path);
        p.extend(nul(token));
        self.request(XS_WATCH, 0, p).map(|_| ())
    }

    /// Registers a watch limited to `depth` levels below `path`.
    pub fn watch_depth(&mut self, path: &str, token: &str, depth: u32) -> Result<()> {
        let mut p = nul(path);
        p.extend(nul(token));
        p.extend(nul(depth.to_string()));
        self.request(XS_WATCH, 0, p).map(|_| ())
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        let mut p = nul(path);
        p.extend(nul(token));
        self.request(XS_UNWATCH, 0, p).map(|_| ())
    }

    /// Drops all watches and transactions of this connection.
    pub fn reset_watches(&mut self) -> Result<()> {
        self.request(XS_RESET_WATCHES, 0, Vec::new()).map(|_| ())
    }

    /// Waits for the next watch event.
    pub fn read_watch(&mut self) -> Result<WatchEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let f = self.recv_frame()?;
            if f.type_ == XS_WATCH_EVENT {
                self.stash_event(&f);
            } else {
                return Err(ClientError::BadReply { op: "WATCH_EVENT" });
            }
        }
    }

    /// Waits at most `timeout` for the next watch event.
    pub fn read_watch_timeout(&mut self, timeout: Duration) -> Result<WatchEvent> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(ClientError::Io)?;
        let r = self.read_watch();
        self.stream
            .set_read_timeout(None)
            .map_err(ClientError::Io)?;
        r
    }

    /// Watch events already received.
    pub fn pending_watch_events(&self) -> usize {
        self.events.len()
    }

    /// Starts a transaction; prefer [`Client::transaction`].
    pub fn transaction_start(&mut self) -> Result<Transaction<'_>> {
        let r = self.request(XS_TRANSACTION_START, 0, nul(""))?;
        let id = strings(&r)
            .first()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(ClientError::BadReply {
                op: "TRANSACTION_START",
            })?;
        Ok(Transaction {
            client: self,
            id,
            done: false,
        })
    }

    /// Runs `f` in a transaction and commits it, starting over while the
    /// commit fails with `EAGAIN`. An error from `f` aborts.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        loop {
            let mut tx = self.transaction_start()?;
            let v = match f(&mut tx) {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.abort();
                    return Err(e);
                }
            };
            match tx.commit() {
                Ok(()) => return Ok(v),
                Err(e) if e.errno() == Some(Errno::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `XS_INTRODUCE`: tell xenstored about a domain's ring page and port.
    pub fn introduce(&mut self, domid: u16, gfn: u64, port: u32) -> Result<()> {
        let mut p = nul(domid.to_string());
        p.extend(nul(gfn.to_string()));
        p.extend(nul(port.to_string()));
        self.request(XS_INTRODUCE, 0, p).map(|_| ())
    }

    /// `XS_RELEASE`: forget a domain (its nodes and watches go).
    pub fn release(&mut self, domid: u16) -> Result<()> {
        self.request(XS_RELEASE, 0, nul(domid.to_string()))
            .map(|_| ())
    }

    pub fn resume(&mut self, domid: u16) -> Result<()> {
        self.request(XS_RESUME, 0, nul(domid.to_string()))
            .map(|_| ())
    }

    /// `/local/domain/<domid>`.
    pub fn get_domain_path(&mut self, domid: u16) -> Result<String> {
        let r = self.request(XS_GET_DOMAIN_PATH, 0, nul(domid.to_string()))?;
        strings(&r).into_iter().next().ok_or(ClientError::BadReply {
            op: "GET_DOMAIN_PATH",
        })
    }

    pub fn is_domain_introduced(&mut self, domid: u16) -> Result<bool> {
        let r = self.request(XS_IS_DOMAIN_INTRODUCED, 0, nul(domid.to_string()))?;
        Ok(r.first() == Some(&b'T'))
    }

    /// `XS_SET_TARGET`: `domid` may act for `target`.
    pub fn set_target(&mut self, domid: u16, target: u16) -> Result<()> {
        let mut p = nul(domid.to_string());
        p.extend(nul(target.to_string()));
        self.request(XS_SET_TARGET, 0, p).map(|_| ())
    }

    /// A quota value, global (`domid` `None`) or for one domain.
    pub fn get_quota(&mut self, domid: Option<u16>, name: &str) -> Result<u32> {
        let mut p = domid.map(|d| nul(d.to_string())).unwrap_or_default();
        p.extend(nul(name));
        let r = self.request(XS_GET_QUOTA, 0, p)?;
        strings(&r)
            .first()
            .and_then(|s| s.parse().ok())
            .ok_or(ClientError::BadReply { op: "GET_QUOTA" })
    }

    pub fn set_quota(&mut self, domid: Option<u16>, name: &str, value: u32) -> Result<()> {
        let mut p = domid.map(|d| nul(d.to_string())).unwrap_or_default();
        p.extend(nul(name));
        p.extend(nul(value.to_string()));
        self.request(XS_SET_QUOTA, 0, p).map(|_| ())
    }

    /// `XS_CONTROL` with a command and parameters; returns the reply text.
    pub fn control(&mut self, args: &[&str]) -> Result<String> {
        let mut p = Vec::new();
        for a in args {
            p.extend(nul(a));
        }
        let r = self.request(XS_CONTROL, 0, p)?;
        Ok(strings(&r).join("\n"))
    }
}

/// An open transaction; dropped without commit, it is aborted.
#[derive(Debug)]
pub struct Transaction<'a> {
    client: &'a mut Client,
    id: u32,
    done: bool,
}

impl Transaction<'_> {
    /// The transaction id.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.client.read_tx(self.id, path)
    }

    pub fn read_string(&mut self, path: &str) -> Result<String> {
        self.read(path)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    pub fn try_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.read(path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_enoent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.client.write_tx(self.id, path, value.as_ref())
    }

    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.client
            .request(XS_MKDIR, self.id, nul(path))
            .map(|_| ())
    }

    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.client.request(XS_RM, self.id, nul(path)).map(|_| ())
    }

    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.client.directory_tx(self.id, path)
    }

    pub fn get_perms(&mut self, path: &str) -> Result<Perms> {
        self.client.get_perms_tx(self.id, path)
    }

    pub fn set_perms(&mut self, path: &str, perms: &Perms) -> Result<()> {
        self.client.set_perms_tx(self.id, path, perms)
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        self.done = true;
        let arg = if commit { "T" } else { "F" };
        self.client
            .request(XS_TRANSACTION_END, self.id, nul(arg))
            .map(|_| ())
    }

    /// Commits; `EAGAIN` if a node it read changed meanwhile.
    pub fn commit(mut self) -> Result<()> {
        self.end(true)
    }

    pub fn abort(mut self) -> Result<()> {
        self.end(false)
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.end(false);
        }
    }
}
