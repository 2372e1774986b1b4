//! The store: the node tree, permissions, transactions, watches, domains and
//! quota accounting. It sees *connections* (an identity: a domain id and
//! whether it is privileged), never sockets or rings; replies and watch
//! events are queued in [`Store::take_output`] for the transport to send.

use crate::path::{self, Canonical};
use crate::perms::{Access, Perms};
use crate::persist;
use crate::quota::{self, Quotas};
use crate::wire::{Errno, Frame};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use xen_abi::xs_wire::{XENSTORE_PAYLOAD_MAX, XENSTORE_SERVER_FEATURE_WATCHDEPTH, XS_WATCH_EVENT};

/// A connection's handle, chosen by the store.
pub type ConnId = u64;

/// Features this store offers (`XENSTORE_SERVER_FEATURE_*`).
pub const SUPPORTED_FEATURES: u32 = XENSTORE_SERVER_FEATURE_WATCHDEPTH;

/// The special node `@introduceDomain`.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// The special node `@releaseDomain`.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Perms,
    /// Child names in creation order (the order `XS_DIRECTORY` returns).
    pub children: Vec<String>,
    /// Bumped on every change; used for transaction conflicts and
    /// `XS_DIRECTORY_PART`.
    pub generation: u64,
}

impl Node {
    fn new(perms: Perms) -> Node {
        Node {
            value: Vec::new(),
            perms,
            children: Vec::new(),
            generation: 0,
        }
    }

    /// Size counted against the `node-size` quota.
    fn size(&self) -> usize {
        self.size_with_value(self.value.len())
    }

    /// [`Node::size`] if the value were `len` bytes long.
    fn size_with_value(&self, len: usize) -> usize {
        len + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }
}

/// The committed tree plus its change journal.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) nodes: HashMap<String, Node>,
    generation: u64,
    /// Nodes owned per domain.
    owned: HashMap<u16, u64>,
    /// Encoded persistence records of changes not yet handed out.
    pub(crate) journal: Vec<u8>,
    pub(crate) journaling: bool,
}

impl Tree {
    fn get(&self, p: &str) -> Option<&Node> {
        self.nodes.get(p)
    }

    fn count(&mut self, domid: u16, delta: i64) {
        let e = self.owned.entry(domid).or_insert(0);
        *e = e.saturating_add_signed(delta);
    }

    pub(crate) fn put(&mut self, p: String, mut node: Node) {
        self.generation += 1;
        node.generation = self.generation;
        if self.journaling {
            persist::encode_put(&mut self.journal, &p, &node);
        }
        self.count(node.perms.owner_id(), 1);
        if let Some(old) = self.nodes.insert(p, node) {
            self.count(old.perms.owner_id(), -1);
        }
    }

    /// Replaces the value of existing node `p` in place, if `check`
    /// accepts the node: [`Tree::put`] of the same node with a new value,
    /// without copying the node. `None` if there is no such node.
    fn overwrite(
        &mut self,
        p: &str,
        value: &[u8],
        check: impl FnOnce(&Node) -> Result<(), Errno>,
    ) -> Option<Result<(), Errno>> {
        let n = self.nodes.get_mut(p)?;
        if let Err(e) = check(n) {
            return Some(Err(e));
        }
        self.generation += 1;
        n.generation = self.generation;
        if n.value.capacity() > 2 * value.len() + 64 {
            // Do not keep a large buffer behind a small value.
            n.value = value.to_vec();
        } else {
            n.value.clear();
            n.value.extend_from_slice(value);
        }
        if self.journaling {
            persist::encode_put(&mut self.journal, p, n);
        }
        Some(Ok(()))
    }

    fn remove(&mut self, p: &str) -> Option<Node> {
        let old = self.nodes.remove(p)?;
        self.generation += 1;
        self.count(old.perms.owner_id(), -1);
        if self.journaling {
            persist::encode_del(&mut self.journal, p);
        }
        Some(old)
    }

    fn owned(&self, domid: u16) -> u64 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }
}

/// How an event's path is matched against watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    /// Watches on the path itself or an ancestor (honouring depth).
    Subtree,
    /// Watches on exactly this path (a descendant removed with its parent).
    Exact,
    /// Special watch without depth, on exactly this path.
    NoDepth,
    /// Special watch `@x/<domid>`: exact, or a depth watch on `@x`.
    Depth,
}

/// A change to report to watchers.
#[derive(Clone, Debug)]
struct Event {
    path: String,
    how: Match,
    /// Permissions of the node (and its parent, and its old permissions)
    /// when it changed: an unprivileged watcher needs read access through
    /// one of them.
    perms: Vec<Perms>,
}

/// An open transaction.
#[derive(Debug, Default)]
pub(crate) struct Txn {
    /// Nodes changed in the transaction (`None`: removed).
    overlay: HashMap<String, Option<Node>>,
    /// Generation seen at first read (`None`: absent).
    reads: HashMap<String, Option<u64>>,
    /// Events to fire on commit.
    events: Vec<Event>,
    /// Change of owned-node counts per domain.
    owned_delta: HashMap<u16, i64>,
}

impl Txn {
    fn accessed(&self) -> usize {
        self.reads.len().max(self.overlay.len())
    }
}

/// The tree as seen by one request: committed state, or a transaction's
/// view of it.
struct View<'a> {
    tree: &'a mut Tree,
    tx: Option<&'a mut Txn>,
}

impl View<'_> {
    fn get(&mut self, p: &str) -> Option<&Node> {
        if let Some(tx) = self.tx.as_deref_mut() {
            if tx.overlay.contains_key(p) {
                return tx.overlay.get(p).and_then(|n| n.as_ref());
            }
            let n = self.tree.get(p);
            if !tx.reads.contains_key(p) {
                tx.reads.insert(p.to_string(), n.map(|n| n.generation));
            }
            return n;
        }
        self.tree.get(p)
    }

    fn put(&mut self, p: String, node: Node) {
        match self.tx.as_deref_mut() {
            Some(tx) => {
                let old_owner = match tx.overlay.get(&p) {
                    Some(o) => o.as_ref().map(|n| n.perms.owner_id()),
                    None => self.tree.get(&p).map(|n| n.perms.owner_id()),
                };
                if let Some(o) = old_owner {
                    *tx.owned_delta.entry(o).or_insert(0) -= 1;
                }
                *tx.owned_delta.entry(node.perms.owner_id()).or_insert(0) += 1;
                tx.overlay.insert(p, Some(node));
            }
            None => self.tree.put(p, node),
        }
    }

    fn remove(&mut self, p: &str) {
        match self.tx.as_deref_mut() {
            Some(tx) => {
                let old_owner = match tx.overlay.get(p) {
                    Some(o) => o.as_ref().map(|n| n.perms.owner_id()),
                    None => self.tree.get(p).map(|n| n.perms.owner_id()),
                };
                if let Some(o) = old_owner {
                    *tx.owned_delta.entry(o).or_insert(0) -= 1;
                }
                tx.overlay.insert(p.to_string(), None);
            }
            None => {
                self.tree.remove(p);
            }
        }
    }

    fn owned(&self, domid: u16) -> u64 {
        let base = self.tree.owned(domid) as i64;
        let d = self
            .tx
            .as_deref()
            .and_then(|t| t.owned_delta.get(&domid).copied())
            .unwrap_or(0);
        (base + d).max(0) as u64
    }

    fn accessed(&self) -> usize {
        self.tx.as_deref().map(Txn::accessed).unwrap_or(0)
    }
}

/// A registered watch.
#[derive(Clone, Debug)]
struct Watch {
    /// Absolute path or special name.
    path: String,
    token: Vec<u8>,
    depth: Option<u32>,
    /// Bytes to strip from event paths (relative watches).
    strip: usize,
}

impl Watch {
    /// Whether an event on `path` matched as `how` concerns this watch
    /// (permissions aside).
    fn hit(&self, path: &str, how: Match) -> bool {
        match how {
            Match::Subtree => path::is_child(path, &self.path, self.depth),
            Match::Exact => path == self.path,
            Match::NoDepth => path == self.path && self.depth.is_none(),
            Match::Depth => {
                path == self.path
                    || (self.depth.is_some_and(|d| d > 0)
                        && path::is_child(path, &self.path, self.depth))
            }
        }
    }
}

/// One client connection: dom0 tools on the socket, or a guest.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) domid: u16,
    pub(crate) privileged: bool,
    /// May turn itself into a guest's connection (root peer on the socket).
    pub(crate) may_attach: bool,
    watches: Vec<Watch>,
    pub(crate) txns: HashMap<u32, Txn>,
    next_txid: u32,
}

/// What xenstored knows of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub domid: u16,
    pub introduced: bool,
    pub gfn: u64,
    pub port: u32,
    pub target: Option<u16>,
    pub features: u32,
    /// Per-domain quota overrides (`None`: the global values).
    pub quotas: Option<Quotas>,
    /// The connection relaying this domain's ring, if attached.
    pub conn: Option<ConnId>,
}

impl Domain {
    fn new(domid: u16) -> Domain {
        Domain {
            domid,
            introduced: false,
            gfn: 0,
            port: 0,
            target: None,
            features: SUPPORTED_FEATURES,
            quotas: None,
            conn: None,
        }
    }
}

/// Who is asking, resolved once per request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) conn: ConnId,
    pub(crate) domid: u16,
    pub(crate) privileged: bool,
    pub(crate) target: Option<u16>,
    pub(crate) home: path::Home,
    pub(crate) quotas: Quotas,
}

impl Caller {
    fn access(&self, perms: &Perms) -> Access {
        if self.privileged {
            Access::Both
        } else {
            perms.access_for(self.domid, self.target)
        }
    }

    fn rel_max(&self) -> usize {
        if self.privileged {
            0
        } else {
            self.quotas.path_max as usize
        }
    }

    fn limit(&self, v: u32) -> u32 {
        if self.privileged { 0 } else { v }
    }
}

/// The access a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
    Owner,
}

/// Replies and events waiting for the transport, in order, encoded back to
/// back in one buffer so that queueing a frame allocates nothing.
#[derive(Debug, Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// The connection of each frame and where it ends in `bytes`.
    frames: Vec<(ConnId, usize)>,
}

impl Outbox {
    fn push(&mut self, conn: ConnId, type_: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        let h = crate::wire::Header {
            type_,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        self.bytes.extend_from_slice(&h.encode());
        self.bytes.extend_from_slice(payload);
        self.frames.push((conn, self.bytes.len()));
    }

    /// Hands out every frame's wire bytes in order and empties the box.
    fn drain(&mut self, mut f: impl FnMut(ConnId, &[u8])) {
        let mut start = 0;
        for &(conn, end) in &self.frames {
            f(conn, &self.bytes[start..end]);
            start = end;
        }
        self.frames.clear();
        self.bytes.clear();
        // A burst (a watch storm) may have grown the buffers: give it back.
        if self.bytes.capacity() > 1 << 20 {
            self.bytes.shrink_to(64 << 10);
            self.frames.shrink_to(1024);
        }
    }
}

/// The whole XenStore state.
#[derive(Debug)]
pub struct Store {
    pub(crate) tree: Tree,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    pub(crate) domains: BTreeMap<u16, Domain>,
    pub(crate) quotas: Quotas,
    out: Outbox,
    /// The connections that have at least one watch (see
    /// [`Store::note_watches`]), so that matching an event does not visit
    /// every connection.
    watchers: BTreeSet<ConnId>,
    closing: Vec<ConnId>,
    /// A reply buffer handed back after use, for the next reply.
    scratch: Vec<u8>,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    /// A fresh store with Xen's initial nodes: `/`, `/tool`,
    /// `/tool/xenstored`, `@introduceDomain`, `@releaseDomain`, all owned by
    /// dom0 with no access for others.
    pub fn new() -> Store {
        let mut s = Store::empty();
        let dom0 = Perms::owner(0, Access::None);
        let mut root = Node::new(dom0.clone());
        root.children.push("tool".into());
        let mut tool = Node::new(dom0.clone());
        tool.children.push("xenstored".into());
        s.tree.put("/".into(), root);
        s.tree.put("/tool".into(), tool);
        s.tree
            .put("/tool/xenstored".into(), Node::new(dom0.clone()));
        s.tree.put(INTRODUCE_DOMAIN.into(), Node::new(dom0.clone()));
        s.tree.put(RELEASE_DOMAIN.into(), Node::new(dom0));
        s
    }

    /// A store with no nodes at all (restore from persisted state).
    pub(crate) fn empty() -> Store {
        Store {
            tree: Tree::default(),
            conns: BTreeMap::new(),
            next_conn: 1,
            domains: BTreeMap::new(),
            quotas: Quotas::default(),
            out: Outbox::default(),
            watchers: BTreeSet::new(),
            closing: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Sets the global (default) quotas.
    pub fn set_quotas(&mut self, q: Quotas) {
        self.quotas = q;
    }

    /// The global quotas.
    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Registers a dom0 connection. `may_attach` allows it to become a
    /// guest's connection (its peer is root).
    pub fn connect_dom0(&mut self, may_attach: bool) -> ConnId {
        self.add_conn(0, true, may_attach)
    }

    /// Registers a connection that speaks for guest `domid`, unprivileged.
    /// (Transports that already know the guest; the socket transport uses
    /// the attach handshake instead.)
    pub fn connect_guest(&mut self, domid: u16) -> Result<ConnId, Errno> {
        let id = self.add_conn(0, true, true);
        match self.attach(id, domid) {
            Ok(()) => Ok(id),
            Err(e) => {
                self.conns.remove(&id);
                self.note_watches(id);
                Err(e)
            }
        }
    }

    fn add_conn(&mut self, domid: u16, privileged: bool, may_attach: bool) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                domid,
                privileged,
                may_attach,
                watches: Vec::new(),
                txns: HashMap::new(),
                next_txid: 1,
            },
        );
        id
    }

    /// Forgets a connection: its watches and transactions go; a guest stays
    /// introduced and may attach again. When the connection was the relay
    /// of an introduced guest, its domain process is gone (or gave up the
    /// ring): `@releaseDomain` fires, as Xen's xenstored fires it when a
    /// domain shuts down, so the toolstack looks at the domain.
    pub fn disconnect(&mut self, id: ConnId) {
        if self.conns.remove(&id).is_some() {
            self.note_watches(id);
            let mut relayed = Vec::new();
            for d in self.domains.values_mut() {
                if d.conn == Some(id) {
                    d.conn = None;
                    if d.introduced {
                        relayed.push(d.domid);
                    }
                }
            }
            for domid in relayed {
                self.fire_special(RELEASE_DOMAIN, domid);
            }
        }
    }

    /// Whether the connection exists.
    pub fn is_connected(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// Replies and events to send, in order.
    pub fn take_output(&mut self) -> Vec<(ConnId, Frame)> {
        let mut v = Vec::new();
        self.drain_output_into(&mut v);
        v
    }

    /// Whether replies or events are queued.
    pub fn has_output(&self) -> bool {
        !self.out.frames.is_empty()
    }

    /// Appends queued replies and events to `v`.
    pub fn drain_output_into(&mut self, v: &mut Vec<(ConnId, Frame)>) {
        self.drain_encoded(|conn, bytes| {
            let mut d = crate::wire::FrameDecoder::new();
            if let Ok((_, Some(f))) = d.feed(bytes) {
                v.push((conn, f));
            }
        });
    }

    /// Hands out the queued replies and events in order, each as the
    /// connection it goes to and its wire bytes (one whole frame), and
    /// forgets them.
    pub fn drain_encoded(&mut self, f: impl FnMut(ConnId, &[u8])) {
        self.out.drain(f);
    }

    /// Connections the store wants closed (released domains).
    pub fn take_closing(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.closing)
    }

    /// The `outstanding` limit of a connection (0: none).
    pub fn outstanding_limit(&self, id: ConnId) -> u32 {
        match self.conns.get(&id) {
            Some(c) if !c.privileged => self.domain_quotas(c.domid).outstanding,
            _ => 0,
        }
    }

    pub(crate) fn send(&mut self, conn: ConnId, f: Frame) {
        self.send_parts(conn, f.type_, f.req_id, f.tx_id, &f.payload);
    }

    /// Takes back a reply payload's buffer once it has been queued.
    pub(crate) fn recycle(&mut self, v: Vec<u8>) {
        if v.capacity() <= 2 * XENSTORE_PAYLOAD_MAX && v.capacity() > self.scratch.capacity() {
            self.scratch = v;
        }
    }

    /// Queues a frame from its parts. The payload must fit the protocol's
    /// limit (callers check and reply `E2BIG`).
    pub(crate) fn send_parts(
        &mut self,
        conn: ConnId,
        type_: u32,
        req_id: u32,
        tx_id: u32,
        payload: &[u8],
    ) {
        debug_assert!(payload.len() <= XENSTORE_PAYLOAD_MAX);
        self.out.push(conn, type_, req_id, tx_id, payload);
    }

    fn domain_quotas(&self, domid: u16) -> Quotas {
        self.domains
            .get(&domid)
            .and_then(|d| d.quotas)
            .unwrap_or(self.quotas)
    }

    pub(crate) fn caller(&self, id: ConnId) -> Option<Caller> {
        let c = self.conns.get(&id)?;
        Some(Caller {
            conn: id,
            domid: c.domid,
            privileged: c.privileged,
            target: self.domains.get(&c.domid).and_then(|d| d.target),
            home: path::Home::new(c.domid),
            quotas: self.domain_quotas(c.domid),
        })
    }

    /// Domains known to the store.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// A committed node, for inspection (tests, tools).
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.tree.get(path)
    }

    /// Number of committed nodes.
    pub fn node_count(&self) -> usize {
        self.tree.nodes.len()
    }

    /// Number of watches registered on a connection.
    pub fn watch_count(&self, id: ConnId) -> usize {
        self.conns.get(&id).map(|c| c.watches.len()).unwrap_or(0)
    }

    // ----- permission helpers -------------------------------------------

    fn allowed(c: &Caller, perms: &Perms, need: Need) -> bool {
        match need {
            Need::Read => c.access(perms).can_read(),
            Need::Write => c.access(perms).can_write(),
            Need::Owner => c.privileged || perms.is_owner(c.domid, c.target),
        }
    }

    /// Looks a node up with a permission check. `Ok(None)`: it does not
    /// exist and the nearest existing ancestor would allow `need` (so the
    /// caller may learn of its absence, or create it); `EACCES` otherwise.
    fn lookup<'v>(
        view: &'v mut View<'_>,
        c: &Caller,
        p: &str,
        need: Need,
    ) -> Result<Option<&'v Node>, Errno> {
        let verdict = view.get(p).map(|n| Self::allowed(c, &n.perms, need));
        match verdict {
            Some(true) => return Ok(view.get(p)),
            Some(false) => return Err(Errno::EACCES),
            None => {}
        }
        let mut a = p;
        loop {
            if a == "/" || a.starts_with('@') {
                break;
            }
            a = path::parent(a);
            if let Some(n) = view.get(a) {
                let ok = match need {
                    Need::Read => Self::allowed(c, &n.perms, Need::Read),
                    Need::Write | Need::Owner => Self::allowed(c, &n.perms, Need::Write),
                };
                return if ok { Ok(None) } else { Err(Errno::EACCES) };
            }
        }
        Ok(None)
    }

    pub(crate) fn canon(&self, c: &Caller, p: &[u8], special: bool) -> Result<Canonical, Errno> {
        path::canonicalize(p, &c.home, special, c.rel_max())
    }

    /// [`Store::canon`] for a non-special path, borrowing absolute input.
    fn canon_cow<'p>(c: &Caller, p: &'p [u8]) -> Result<Cow<'p, str>, Errno> {
        path::canonicalize_cow(p, &c.home, false, c.rel_max()).map(|(p, _)| p)
    }

    /// Whether any watch would see a change of `path` made outside a
    /// transaction (permissions aside). When none would, the change has no
    /// one to tell and its event is not built.
    fn watched(&self, path: &str) -> bool {
        self.watchers.iter().any(|id| {
            self.conns
                .get(id)
                .is_some_and(|c| c.watches.iter().any(|w| w.hit(path, Match::Subtree)))
        })
    }

    fn view<'a>(tree: &'a mut Tree, tx: Option<&'a mut Txn>) -> View<'a> {
        View { tree, tx }
    }

    fn check_tx_nodes(c: &Caller, v: &View<'_>) -> Result<(), Errno> {
        if quota::exceeds(v.accessed() as u64, c.limit(c.quotas.transaction_nodes)) {
            return Err(Errno::EQUOTA);
        }
        Ok(())
    }

    // ----- node operations ---------------------------------------------

    pub(crate) fn read(
        &mut self,
        c: &Caller,
        tx: Option<&mut Txn>,
        p: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let p = Self::canon_cow(c, p)?;
        if tx.is_none() {
            // Outside a transaction, an existing node is read with one
            // lookup; an absent one takes the general path below (its
            // nearest ancestor decides between ENOENT and EACCES).
            if let Some(n) = self.tree.get(&p) {
                if !Self::allowed(c, &n.perms, Need::Read) {
                    return Err(Errno::EACCES);
                }
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                buf.extend_from_slice(&n.value);
                return Ok(buf);
            }
        }
        let mut v = Self::view(&mut self.tree, tx);
        let r = match Self::lookup(&mut v, c, &p, Need::Read)? {
            Some(n) => {
                let mut buf = std::mem::take(&mut self.scratch);
                buf.clear();
                buf.extend_from_slice(&n.value);
                Ok(buf)
            }
            None => Err(Errno::ENOENT),
        };
        Self::check_tx_nodes(c, &v)?;
        r
    }

    pub(crate) fn directory(
        &mut self,
        c: &Caller,
        tx: Option<&mut Txn>,
        p: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let p = self.canon(c, p, false)?.path;
        let mut v = Self::view(&mut self.tree, tx);
        let n = Self::lookup(&mut v, c, &p, Need::Read)?.ok_or(Errno::ENOENT)?;
        let mut out = Vec::new();
        for ch in &n.children {
            out.extend_from_slice(ch.as_bytes());
            out.push(0);
        }
        if out.len() > XENSTORE_PAYLOAD_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(out)
    }

    pub(crate) fn directory_part(
        &mut self,
        c: &Caller,
        tx: Option<&mut Txn>,
        p: &[u8],
        off: usize,
    ) -> Result<Vec<u8>, Errno> {
        let p = self.canon(c, p, false)?.path;
        let mut v = Self::view(&mut self.tree, tx);
        let n = Self::lookup(&mut v, c, &p, Need::Read)?.ok_or(Errno::ENOENT)?;
        let mut list = Vec::new();
        for ch in &n.children {
            list.extend_from_slice(ch.as_bytes());
            list.push(0);
        }
        let mut out = format!("{}", n.generation).into_bytes();
        out.push(0);
        if off >= list.len() {
            out.push(0);
            return Ok(out);
        }
        // Whole names only, as many as fit, then an empty string at the end
        // of the list.
        let maxlen = XENSTORE_PAYLOAD_MAX - out.len() - 1;
        let mut len = 0;
        let mut pos = off;
        while pos < list.len() {
            let l = list[pos..].iter().position(|&b| b == 0).unwrap_or(0);
            if len + l >= maxlen {
                break;
            }
            len += l + 1;
            pos += l + 1;
        }
        out.extend_from_slice(&list[off..off + len]);
        if off + len == list.len() {
            out.push(0);
        }
        Ok(out)
    }

    /// Creates `p` and any missing ancestors; returns the new node.
    fn create(c: &Caller, v: &mut View<'_>, p: &str, value: Vec<u8>) -> Result<(), Errno> {
        let mut missing = vec![p.to_string()];
        let mut anc = path::parent(p).to_string();
        loop {
            if v.get(&anc).is_some() {
                break;
            }
            if anc == "/" {
                return Err(Errno::EIO);
            }
            missing.push(anc.clone());
            anc = path::parent(&anc).to_string();
        }
        if !c.privileged {
            let have = v.owned(c.domid);
            if quota::exceeds(have + missing.len() as u64, c.quotas.nodes) {
                return Err(Errno::EQUOTA);
            }
            if quota::exceeds(value.len() as u64, c.quotas.node_size) {
                return Err(Errno::EQUOTA);
            }
        }
        let mut parent = v.get(&anc).cloned().expect("ancestor exists");
        let mut parent_path = anc;
        for (i, name) in missing.iter().rev().enumerate() {
            parent.children.push(path::basename(name).to_string());
            if !c.privileged && quota::exceeds(parent.size() as u64, c.quotas.node_size) {
                return Err(Errno::EQUOTA);
            }
            let mut perms = parent.perms.clone();
            if !c.privileged {
                perms.set_owner(c.domid);
            }
            let mut node = Node::new(perms);
            if i == missing.len() - 1 {
                node.value = value.clone();
            }
            v.put(parent_path, parent);
            parent = node;
            parent_path = name.clone();
        }
        v.put(parent_path, parent);
        Self::check_tx_nodes(c, v)
    }

    fn event_perms(v: &mut View<'_>, p: &str, extra: Option<Perms>) -> Vec<Perms> {
        let mut perms = Vec::with_capacity(3);
        if let Some(n) = v.get(p) {
            perms.push(n.perms.clone());
        }
        if let Some(n) = v.get(path::parent(p)) {
            perms.push(n.perms.clone());
        }
        perms.extend(extra);
        perms
    }

    pub(crate) fn write(
        &mut self,
        c: &Caller,
        mut tx: Option<&mut Txn>,
        p: &[u8],
        value: &[u8],
    ) -> Result<(), Errno> {
        let p = Self::canon_cow(c, p)?;
        if tx.is_none() {
            // Outside a transaction, an existing node's value is replaced
            // in place, with the checks of the general path below.
            let done = self.tree.overwrite(&p, value, |n| {
                if !Self::allowed(c, &n.perms, Need::Write) {
                    return Err(Errno::EACCES);
                }
                if !c.privileged
                    && quota::exceeds(n.size_with_value(value.len()) as u64, c.quotas.node_size)
                {
                    return Err(Errno::EQUOTA);
                }
                Ok(())
            });
            if let Some(r) = done {
                r?;
                if self.watched(&p) {
                    let mut v = Self::view(&mut self.tree, None);
                    let perms = Self::event_perms(&mut v, &p, None);
                    self.fire(
                        None,
                        vec![Event {
                            path: p.into_owned(),
                            how: Match::Subtree,
                            perms,
                        }],
                    );
                }
                return Ok(());
            }
        }
        let p = p.into_owned();
        let unwatched = tx.is_none() && !self.watched(&p);
        let mut v = Self::view(&mut self.tree, tx.as_deref_mut());
        match Self::lookup(&mut v, c, &p, Need::Write)? {
            Some(n) => {
                let mut n = n.clone();
                n.value = value.to_vec();
                if !c.privileged && quota::exceeds(n.size() as u64, c.quotas.node_size) {
                    return Err(Errno::EQUOTA);
                }
                v.put(p.clone(), n);
                Self::check_tx_nodes(c, &v)?;
            }
            None => Self::create(c, &mut v, &p, value.to_vec())?,
        }
        if unwatched {
            return Ok(());
        }
        let perms = Self::event_perms(&mut v, &p, None);
        self.fire(
            tx,
            vec![Event {
                path: p,
                how: Match::Subtree,
                perms,
            }],
        );
        Ok(())
    }

    pub(crate) fn mkdir(
        &mut self,
        c: &Caller,
        mut tx: Option<&mut Txn>,
        p: &[u8],
    ) -> Result<(), Errno> {
        let p = self.canon(c, p, false)?.path;
        let mut v = Self::view(&mut self.tree, tx.as_deref_mut());
        if Self::lookup(&mut v, c, &p, Need::Write)?.is_some() {
            return Ok(());
        }
        Self::create(c, &mut v, &p, Vec::new())?;
        let perms = Self::event_perms(&mut v, &p, None);
        self.fire(
            tx,
            vec![Event {
                path: p,
                how: Match::Subtree,
                perms,
            }],
        );
        Ok(())
    }

    /// Removes `p` and its subtree from the view, returning the events.
    fn remove_tree(v: &mut View<'_>, p: &str) -> Vec<Event> {
        // Post-order: children before their parent, as Xen fires them.
        let mut order = Vec::new();
        let mut stack = vec![(p.to_string(), false)];
        while let Some((q, expanded)) = stack.pop() {
            if expanded {
                order.push(q);
                continue;
            }
            let children = v.get(&q).map(|n| n.children.clone()).unwrap_or_default();
            stack.push((q.clone(), true));
            for ch in children.iter().rev() {
                stack.push((path::child_path(&q, ch), false));
            }
        }
        let mut events = Vec::with_capacity(order.len());
        for q in order {
            let perms = Self::event_perms(v, &q, None);
            if v.get(&q).is_none() {
                continue;
            }
            v.remove(&q);
            let how = if q == p { Match::Subtree } else { Match::Exact };
            events.push(Event {
                path: q,
                how,
                perms,
            });
        }
        let parent = path::parent(p).to_string();
        if let Some(mut pn) = v.get(&parent).cloned() {
            let base = path::basename(p);
            pn.children.retain(|c| c != base);
            v.put(parent, pn);
        }
        events
    }

    pub(crate) fn rm(
        &mut self,
        c: &Caller,
        mut tx: Option<&mut Txn>,
        p: &[u8],
    ) -> Result<(), Errno> {
        let p = self.canon(c, p, false)?.path;
        let mut v = Self::view(&mut self.tree, tx.as_deref_mut());
        if Self::lookup(&mut v, c, &p, Need::Write)?.is_none() {
            // Absent is fine if the parent exists.
            return if v.get(path::parent(&p)).is_some() {
                Ok(())
            } else {
                Err(Errno::ENOENT)
            };
        }
        if p == "/" {
            return Err(Errno::EINVAL);
        }
        let events = Self::remove_tree(&mut v, &p);
        Self::check_tx_nodes(c, &v)?;
        self.fire(tx, events);
        Ok(())
    }

    pub(crate) fn get_perms(
        &mut self,
        c: &Caller,
        tx: Option<&mut Txn>,
        p: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let p = self.canon(c, p, true)?.path;
        let mut v = Self::view(&mut self.tree, tx);
        let n = Self::lookup(&mut v, c, &p, Need::Read)?.ok_or(Errno::ENOENT)?;
        Ok(n.perms.to_payload())
    }

    pub(crate) fn set_perms(
        &mut self,
        c: &Caller,
        mut tx: Option<&mut Txn>,
        p: &[u8],
        perms: Perms,
    ) -> Result<(), Errno> {
        if !c.privileged && quota::exceeds(perms.entries().len() as u64, c.quotas.node_permissions)
        {
            return Err(Errno::EQUOTA);
        }
        let p = self.canon(c, p, true)?.path;
        let mut v = Self::view(&mut self.tree, tx.as_deref_mut());
        let mut n = Self::lookup(&mut v, c, &p, Need::Owner)?
            .ok_or(Errno::ENOENT)?
            .clone();
        if !c.privileged && perms.owner_id() != n.perms.owner_id() {
            return Err(Errno::EPERM);
        }
        let old = std::mem::replace(&mut n.perms, perms);
        v.put(p.clone(), n);
        Self::check_tx_nodes(c, &v)?;
        let perms = Self::event_perms(&mut v, &p, Some(old));
        self.fire(
            tx,
            vec![Event {
                path: p,
                how: Match::Subtree,
                perms,
            }],
        );
        Ok(())
    }

    // ----- transactions ----------------------------------------------

    pub(crate) fn transaction_start(&mut self, c: &Caller) -> Result<u32, Errno> {
        let limit = c.limit(c.quotas.transactions);
        let conn = self.conns.get_mut(&c.conn).ok_or(Errno::EINVAL)?;
        if quota::exceeds(conn.txns.len() as u64 + 1, limit) {
            return Err(Errno::EQUOTA);
        }
        let mut id = conn.next_txid;
        while id == 0 || conn.txns.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        conn.next_txid = id.wrapping_add(1);
        conn.txns.insert(id, Txn::default());
        Ok(id)
    }

    /// Ends a transaction taken out of its connection: commits it unless
    /// `abort`, or fails with `EAGAIN` if a node it read has changed since.
    pub(crate) fn transaction_end(&mut self, tx: Txn, commit: bool) -> Result<(), Errno> {
        if !commit {
            return Ok(());
        }
        for (p, seen) in &tx.reads {
            if self.tree.get(p).map(|n| n.generation) != *seen {
                return Err(Errno::EAGAIN);
            }
        }
        // Apply removals first (deepest first), then writes (parents first),
        // so the owned-node counts never see a transient state twice.
        let mut changes: Vec<(String, Option<Node>)> = tx.overlay.into_iter().collect();
        changes.sort_by(|a, b| {
            let da = a.0.matches('/').count();
            let db = b.0.matches('/').count();
            match (&a.1, &b.1) {
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, None) => db.cmp(&da),
                (Some(_), Some(_)) => da.cmp(&db),
            }
            .then_with(|| a.0.cmp(&b.0))
        });
        for (p, n) in changes {
            match n {
                Some(n) => self.tree.put(p, n),
                None => {
                    self.tree.remove(&p);
                }
            }
        }
        self.fire(None, tx.events);
        Ok(())
    }

    // ----- watches -----------------------------------------------------

    pub(crate) fn watch(
        &mut self,
        c: &Caller,
        p: &[u8],
        token: &[u8],
        depth: Option<u32>,
    ) -> Result<(), Errno> {
        let canon = self.canon(c, p, true)?;
        let limit = c.limit(c.quotas.watches);
        let strip = if canon.relative { c.home.len() + 1 } else { 0 };
        let conn = self.conns.get_mut(&c.conn).ok_or(Errno::EINVAL)?;
        if conn
            .watches
            .iter()
            .any(|w| w.path == canon.path && w.token == token)
        {
            return Err(Errno::EEXIST);
        }
        if quota::exceeds(conn.watches.len() as u64 + 1, limit) {
            return Err(Errno::EQUOTA);
        }
        conn.watches.push(Watch {
            path: canon.path.clone(),
            token: token.to_vec(),
            depth,
            strip,
        });
        self.note_watches(c.conn);
        Ok(())
    }

    pub(crate) fn unwatch(&mut self, c: &Caller, p: &[u8], token: &[u8]) -> Result<(), Errno> {
        let canon = self.canon(c, p, true)?;
        let conn = self.conns.get_mut(&c.conn).ok_or(Errno::EINVAL)?;
        let i = conn
            .watches
            .iter()
            .position(|w| w.path == canon.path && w.token == token)
            .ok_or(Errno::ENOENT)?;
        conn.watches.remove(i);
        self.note_watches(c.conn);
        Ok(())
    }

    pub(crate) fn reset_watches(&mut self, c: &Caller) {
        if let Some(conn) = self.conns.get_mut(&c.conn) {
            conn.watches.clear();
            conn.txns.clear();
        }
        self.note_watches(c.conn);
    }

    /// Keeps [`Store::watchers`] right after connection `id` gained or lost
    /// watches, or went away. Every change to a connection's watches ends
    /// with this call; [`Store::check`] verifies the set.
    fn note_watches(&mut self, id: ConnId) {
        if self.conns.get(&id).is_some_and(|c| !c.watches.is_empty()) {
            self.watchers.insert(id);
        } else {
            self.watchers.remove(&id);
        }
    }

    /// Fires events now, or queues them in the transaction.
    fn fire(&mut self, tx: Option<&mut Txn>, events: Vec<Event>) {
        if let Some(tx) = tx {
            tx.events.extend(events);
            return;
        }
        for ev in events {
            self.fire_one(&ev);
        }
    }

    fn fire_one(&mut self, ev: &Event) {
        for &id in &self.watchers {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            let mut permitted: Option<bool> = None;
            for w in &conn.watches {
                if !w.hit(&ev.path, ev.how) {
                    continue;
                }
                let ok = *permitted.get_or_insert_with(|| {
                    conn.privileged || {
                        let target = self.domains.get(&conn.domid).and_then(|d| d.target);
                        ev.perms
                            .iter()
                            .any(|p| p.access_for(conn.domid, target).can_read())
                    }
                });
                if !ok {
                    break;
                }
                let shown = ev.path.get(w.strip..).unwrap_or(&ev.path);
                let mut payload = Vec::with_capacity(shown.len() + w.token.len() + 2);
                payload.extend_from_slice(shown.as_bytes());
                payload.push(0);
                payload.extend_from_slice(&w.token);
                payload.push(0);
                if payload.len() <= XENSTORE_PAYLOAD_MAX {
                    self.out.push(id, XS_WATCH_EVENT, 0, 0, &payload);
                }
            }
        }
    }

    fn fire_special(&mut self, name: &str, domid: u16) {
        let perms: Vec<Perms> = self
            .tree
            .get(name)
            .map(|n| n.perms.clone())
            .into_iter()
            .collect();
        self.fire_one(&Event {
            path: name.to_string(),
            how: Match::NoDepth,
            perms: perms.clone(),
        });
        self.fire_one(&Event {
            path: format!("{name}/{domid}"),
            how: Match::Depth,
            perms,
        });
    }

    // ----- domains -----------------------------------------------------

    fn journal_domain(&mut self, domid: u16) {
        if !self.tree.journaling {
            return;
        }
        match self.domains.get(&domid) {
            Some(d) => persist::encode_domain(&mut self.tree.journal, d),
            None => persist::encode_domain_gone(&mut self.tree.journal, domid),
        }
    }

    pub(crate) fn introduce(&mut self, domid: u16, gfn: u64, port: u32) -> Result<(), Errno> {
        if domid == 0 || !xen_abi::DomId(domid).is_valid_domain() || port == 0 {
            return Err(Errno::EINVAL);
        }
        let d = self
            .domains
            .entry(domid)
            .or_insert_with(|| Domain::new(domid));
        let first = !d.introduced;
        d.introduced = true;
        d.gfn = gfn;
        d.port = port;
        let conn = d.conn;
        self.journal_domain(domid);
        if first {
            self.fire_special(INTRODUCE_DOMAIN, domid);
        } else if let Some(id) = conn {
            if let Some(c) = self.conns.get_mut(&id) {
                // Re-introduction resets the domain's connection, as in Xen.
                c.watches.clear();
                c.txns.clear();
            }
            self.note_watches(id);
        }
        Ok(())
    }

    fn introduced(&self, domid: u16) -> Result<&Domain, Errno> {
        if domid == 0 || !xen_abi::DomId(domid).is_valid_domain() {
            return Err(Errno::EINVAL);
        }
        match self.domains.get(&domid) {
            Some(d) if d.introduced => Ok(d),
            _ => Err(Errno::ENOENT),
        }
    }

    pub(crate) fn release(&mut self, domid: u16) -> Result<(), Errno> {
        let conn = self.introduced(domid)?.conn;
        if let Some(id) = conn {
            // No events to a connection that is going away.
            self.conns.remove(&id);
            self.note_watches(id);
            self.closing.push(id);
        }
        self.domains.remove(&domid);
        for d in self.domains.values_mut() {
            if d.target == Some(domid) {
                d.target = None;
            }
        }
        self.remove_domain_nodes(domid);
        self.journal_domain(domid);
        self.fire_special(RELEASE_DOMAIN, domid);
        Ok(())
    }

    /// Deletes the nodes a departed domain owns and its permission entries
    /// elsewhere, as Xen does when a domain goes.
    fn remove_domain_nodes(&mut self, domid: u16) {
        let mut owned: Vec<String> = Vec::new();
        let mut stripped: Vec<String> = Vec::new();
        for (p, n) in &self.tree.nodes {
            if n.perms.owner_id() == domid {
                owned.push(p.clone());
            } else if n.perms.entries()[1..].iter().any(|e| e.domid == domid) {
                stripped.push(p.clone());
            }
        }
        owned.sort_by_key(|p| p.len());
        for p in owned {
            if p.starts_with('@') || p == "/" {
                // Special nodes stay; they change owner to dom0.
                if let Some(mut n) = self.tree.get(&p).cloned() {
                    n.perms.set_owner(0);
                    n.perms.remove_domain(domid);
                    self.tree.put(p, n);
                }
                continue;
            }
            if self.tree.get(&p).is_none() {
                continue;
            }
            let mut v = Self::view(&mut self.tree, None);
            let events = Self::remove_tree(&mut v, &p);
            self.fire(None, events);
        }
        for p in stripped {
            if let Some(mut n) = self.tree.get(&p).cloned() {
                n.perms.remove_domain(domid);
                self.tree.put(p, n);
            }
        }
    }

    pub(crate) fn resume(&mut self, domid: u16) -> Result<(), Errno> {
        self.introduced(domid).map(|_| ())
    }

    pub(crate) fn is_introduced(&self, domid: u16) -> bool {
        domid == 0
            || domid == xen_abi::DomId::SELF.0
            || self.domains.get(&domid).is_some_and(|d| d.introduced)
    }

    pub(crate) fn set_target(&mut self, domid: u16, target: u16) -> Result<(), Errno> {
        self.introduced(domid)?;
        self.introduced(target)?;
        if let Some(d) = self.domains.get_mut(&domid) {
            d.target = Some(target);
        }
        self.journal_domain(domid);
        Ok(())
    }

    /// The domain record for `domid`, created (not introduced) if needed.
    pub(crate) fn domain_mut(&mut self, domid: u16) -> Result<&mut Domain, Errno> {
        if !xen_abi::DomId(domid).is_valid_domain() {
            return Err(Errno::EINVAL);
        }
        Ok(self
            .domains
            .entry(domid)
            .or_insert_with(|| Domain::new(domid)))
    }

    pub(crate) fn journal_domain_pub(&mut self, domid: u16) {
        self.journal_domain(domid);
    }

    /// rxen's handshake: a root dom0 connection becomes the connection of
    /// introduced guest `domid`; from then on its requests carry that
    /// domain's identity and permissions.
    pub(crate) fn attach(&mut self, id: ConnId, domid: u16) -> Result<(), Errno> {
        let conn = self.conns.get(&id).ok_or(Errno::EINVAL)?;
        if !conn.privileged || !conn.may_attach {
            return Err(Errno::EACCES);
        }
        let existing = self.introduced(domid)?.conn;
        if existing.is_some_and(|e| self.conns.contains_key(&e)) {
            return Err(Errno::EBUSY);
        }
        let conn = self.conns.get_mut(&id).expect("checked above");
        conn.domid = domid;
        conn.privileged = false;
        conn.may_attach = false;
        conn.watches.clear();
        conn.txns.clear();
        self.note_watches(id);
        if let Some(d) = self.domains.get_mut(&domid) {
            d.conn = Some(id);
        }
        Ok(())
    }

    // ----- persistence -------------------------------------------------

    /// Turns change journaling on or off (see [`crate::persist`]).
    pub(crate) fn set_journaling(&mut self, on: bool) {
        self.tree.journaling = on;
        self.tree.journal.clear();
    }

    /// The encoded records of changes not yet persisted.
    pub(crate) fn journal(&self) -> &[u8] {
        &self.tree.journal
    }

    /// Forgets the records [`Store::journal`] returned (keeping the buffer
    /// for the next batch unless a burst grew it large).
    pub(crate) fn clear_journal(&mut self) {
        self.tree.journal.clear();
        if self.tree.journal.capacity() > 1 << 20 {
            self.tree.journal.shrink_to(64 << 10);
        }
    }

    /// Installs a node while restoring state.
    pub(crate) fn restore_node(&mut self, p: String, n: Node) {
        let j = self.tree.journaling;
        self.tree.journaling = false;
        self.tree.put(p, n);
        self.tree.journaling = j;
    }

    /// Removes a node while restoring state.
    pub(crate) fn restore_del(&mut self, p: &str) {
        let j = self.tree.journaling;
        self.tree.journaling = false;
        self.tree.remove(p);
        self.tree.journaling = j;
    }

    /// Installs a domain while restoring state (never attached).
    pub(crate) fn restore_domain(&mut self, mut d: Domain) {
        d.conn = None;
        self.domains.insert(d.domid, d);
    }

    pub(crate) fn restore_domain_gone(&mut self, domid: u16) {
        self.domains.remove(&domid);
    }

    /// Checks that every node's parent lists it and every listed child
    /// exists; returns the first problem found.
    pub fn check(&self) -> Result<(), String> {
        if self.tree.get("/").is_none() {
            return Err("no root node".into());
        }
        let watching: BTreeSet<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.watches.is_empty())
            .map(|(&id, _)| id)
            .collect();
        if watching != self.watchers {
            return Err(format!(
                "connections with watches {watching:?}, indexed {:?}",
                self.watchers
            ));
        }
        for (p, n) in &self.tree.nodes {
            if p != "/" && p.starts_with('/') {
                let parent = self
                    .tree
                    .get(path::parent(p))
                    .ok_or_else(|| format!("{p}: parent missing"))?;
                if !parent.children.iter().any(|c| c == path::basename(p)) {
                    return Err(format!("{p}: not listed in parent"));
                }
            }
            for c in &n.children {
                let cp = path::child_path(p, c);
                if self.tree.get(&cp).is_none() {
                    return Err(format!("{cp}: listed but missing"));
                }
            }
        }
        Ok(())
    }
}
