//! The operation table: one entry per `XS_*` request type, in the spirit of
//! Xen's `wire_funcs[]`. Each handler parses its payload (never trusting
//! it), calls the store, and returns the reply payload or an error name.
//! [`Store::handle`] turns one request frame into queued output frames.

use crate::perms::Perms;
use crate::quota::QUOTA_NAMES;
use crate::store::{Caller, ConnId, SUPPORTED_FEATURES, Store, Txn};
use crate::wire::{Errno, Frame, FrameRef, split_strings};
use xen_abi::xs_wire::*;

/// The `OK` reply payload.
const OK: &[u8] = b"OK\0";

/// A reply payload: a constant, or bytes built for this reply (whose buffer
/// the store reuses for the next one).
enum Payload {
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Static(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

/// A handler's success: the reply payload, and a frame to queue after the
/// reply (the first event of a new watch).
struct Reply {
    payload: Payload,
    then: Option<Frame>,
}

impl From<Vec<u8>> for Reply {
    fn from(payload: Vec<u8>) -> Reply {
        Reply {
            payload: Payload::Owned(payload),
            then: None,
        }
    }
}

fn ok() -> Result<Reply, Errno> {
    Ok(Reply {
        payload: Payload::Static(OK),
        then: None,
    })
}

type Handler = fn(&mut Store, &Caller, Option<&mut Txn>, &FrameRef<'_>) -> Result<Reply, Errno>;

/// One row of the table.
struct Op {
    name: &'static str,
    handler: Handler,
    /// The transaction id is ignored.
    notid: bool,
    /// Privileged connections (dom0) only.
    privileged: bool,
}

const fn op(name: &'static str, handler: Handler) -> Option<Op> {
    Some(Op {
        name,
        handler,
        notid: false,
        privileged: false,
    })
}

const fn op_notid(name: &'static str, handler: Handler) -> Option<Op> {
    Some(Op {
        name,
        handler,
        notid: true,
        privileged: false,
    })
}

const fn op_priv(name: &'static str, handler: Handler) -> Option<Op> {
    Some(Op {
        name,
        handler,
        notid: true,
        privileged: true,
    })
}

/// Indexed by message type. `WATCH_EVENT`, `ERROR` and the removed
/// `RESTRICT` have no handler: a client sending them gets `ENOSYS`.
static OPS: [Option<Op>; XS_TYPE_COUNT as usize] = [
    op_priv("CONTROL", do_control),
    op("DIRECTORY", do_directory),
    op("READ", do_read),
    op("GET_PERMS", do_get_perms),
    op_notid("WATCH", do_watch),
    op_notid("UNWATCH", do_unwatch),
    op("TRANSACTION_START", do_unreachable),
    op("TRANSACTION_END", do_unreachable),
    op_priv("INTRODUCE", do_introduce),
    op_priv("RELEASE", do_release),
    op_notid("GET_DOMAIN_PATH", do_get_domain_path),
    op("WRITE", do_write),
    op("MKDIR", do_mkdir),
    op("RM", do_rm),
    op("SET_PERMS", do_set_perms),
    None,
    None,
    op_priv("IS_DOMAIN_INTRODUCED", do_is_domain_introduced),
    op_priv("RESUME", do_resume),
    op_priv("SET_TARGET", do_set_target),
    None,
    op_notid("RESET_WATCHES", do_reset_watches),
    op("DIRECTORY_PART", do_directory_part),
    op_notid("GET_FEATURE", do_get_feature),
    op_priv("SET_FEATURE", do_set_feature),
    op_priv("GET_QUOTA", do_get_quota),
    op_priv("SET_QUOTA", do_set_quota),
];

/// The name of a message type, for traces.
pub fn type_name(t: u32) -> &'static str {
    match t {
        XS_WATCH_EVENT => "WATCH_EVENT",
        XS_ERROR => "ERROR",
        _ => OPS
            .get(t as usize)
            .and_then(|o| o.as_ref())
            .map(|o| o.name)
            .unwrap_or("UNKNOWN"),
    }
}

impl Store {
    /// Handles one request from connection `conn`, queueing its reply (and
    /// any watch events it causes) for [`Store::take_output`]. Requests on
    /// unknown connections are dropped.
    pub fn handle(&mut self, conn: ConnId, req: &Frame) {
        self.handle_ref(conn, &req.borrowed());
    }

    /// [`Store::handle`] for a frame whose payload is borrowed (the
    /// transport decodes requests in place).
    pub fn handle_ref(&mut self, conn: ConnId, req: &FrameRef<'_>) {
        let Some(c) = self.caller(conn) else {
            return;
        };
        let reply = self.dispatch(&c, req);
        tracing::trace!(
            conn,
            domid = c.domid,
            op = type_name(req.type_),
            ok = reply.is_ok(),
            "request"
        );
        match reply {
            Ok(r) => {
                let p = r.payload.bytes();
                if p.len() <= XENSTORE_PAYLOAD_MAX {
                    self.send_parts(conn, req.type_, req.req_id, req.tx_id, p);
                    if let Some(f) = r.then {
                        self.send(conn, f);
                    }
                } else {
                    self.send_error(conn, req, Errno::E2BIG);
                }
                if let Payload::Owned(v) = r.payload {
                    self.recycle(v);
                }
            }
            Err(e) => self.send_error(conn, req, e),
        }
    }

    fn send_error(&mut self, conn: ConnId, req: &FrameRef<'_>, e: Errno) {
        let name = e.name().as_bytes();
        let mut p = [0u8; 16];
        p[..name.len()].copy_from_slice(name);
        self.send_parts(conn, XS_ERROR, req.req_id, req.tx_id, &p[..name.len() + 1]);
    }

    fn dispatch(&mut self, c: &Caller, req: &FrameRef<'_>) -> Result<Reply, Errno> {
        let op = OPS
            .get(req.type_ as usize)
            .and_then(|o| o.as_ref())
            .ok_or(Errno::ENOSYS)?;
        if op.privileged && !c.privileged {
            return Err(Errno::EACCES);
        }
        match req.type_ {
            XS_TRANSACTION_START => return self.do_transaction_start(c, req),
            XS_TRANSACTION_END => return self.do_transaction_end(c, req),
            _ => {}
        }
        if op.notid || req.tx_id == 0 {
            return (op.handler)(self, c, None, req);
        }
        let mut tx = self
            .conns
            .get_mut(&c.conn)
            .and_then(|k| k.txns.remove(&req.tx_id))
            .ok_or(Errno::ENOENT)?;
        let r = (op.handler)(self, c, Some(&mut tx), req);
        if let Some(k) = self.conns.get_mut(&c.conn) {
            k.txns.insert(req.tx_id, tx);
        }
        r
    }

    fn do_transaction_start(&mut self, c: &Caller, req: &FrameRef<'_>) -> Result<Reply, Errno> {
        if req.tx_id != 0 {
            let exists = self
                .conns
                .get(&c.conn)
                .is_some_and(|k| k.txns.contains_key(&req.tx_id));
            return Err(if exists { Errno::EBUSY } else { Errno::ENOENT });
        }
        let id = self.transaction_start(c)?;
        Ok(format!("{id}\0").into_bytes().into())
    }

    fn do_transaction_end(&mut self, c: &Caller, req: &FrameRef<'_>) -> Result<Reply, Errno> {
        let commit = match onearg(req.payload)? {
            b"T" => true,
            b"F" => false,
            _ => return Err(Errno::EINVAL),
        };
        let tx = self
            .conns
            .get_mut(&c.conn)
            .and_then(|k| k.txns.remove(&req.tx_id))
            .ok_or(Errno::ENOENT)?;
        self.transaction_end(tx, commit)?;
        ok()
    }
}

/// The payload as exactly one NUL-terminated string.
fn onearg(p: &[u8]) -> Result<&[u8], Errno> {
    match p.split_last() {
        Some((0, s)) if !s.contains(&0) => Ok(s),
        _ => Err(Errno::EINVAL),
    }
}

/// A domain id in decimal, 0..=65535.
pub(crate) fn parse_domid(s: &[u8]) -> Result<u16, Errno> {
    parse_dec(s)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(Errno::EINVAL)
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn do_unreachable(
    _: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    _: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    Err(Errno::EINVAL)
}

fn do_read(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.read(c, tx, onearg(r.payload)?).map(Into::into)
}

fn do_directory(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.directory(c, tx, onearg(r.payload)?).map(Into::into)
}

fn do_directory_part(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() != 2 {
        return Err(Errno::EINVAL);
    }
    let off = parse_dec(v[1]).ok_or(Errno::EINVAL)?;
    s.directory_part(
        c,
        tx,
        v[0],
        usize::try_from(off).map_err(|_| Errno::EINVAL)?,
    )
    .map(Into::into)
}

fn do_write(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let nul = r
        .payload
        .iter()
        .position(|&b| b == 0)
        .ok_or(Errno::EINVAL)?;
    s.write(c, tx, &r.payload[..nul], &r.payload[nul + 1..])?;
    ok()
}

fn do_mkdir(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.mkdir(c, tx, onearg(r.payload)?)?;
    ok()
}

fn do_rm(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.rm(c, tx, onearg(r.payload)?)?;
    ok()
}

fn do_get_perms(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.get_perms(c, tx, onearg(r.payload)?).map(Into::into)
}

fn do_set_perms(
    s: &mut Store,
    c: &Caller,
    tx: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let perms = Perms::parse_strings(&v[1..])?;
    s.set_perms(c, tx, v[0], perms)?;
    ok()
}

fn do_watch(
    s: &mut Store,
    c: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    let depth = match v.len() {
        2 => None,
        3 => Some(
            parse_dec(v[2])
                .and_then(|d| u32::try_from(d).ok())
                .ok_or(Errno::EINVAL)?,
        ),
        _ => return Err(Errno::EINVAL),
    };
    s.watch(c, v[0], v[1], depth)?;
    let mut payload = v[0].to_vec();
    payload.push(0);
    payload.extend_from_slice(v[1]);
    payload.push(0);
    Ok(Reply {
        payload: Payload::Static(OK),
        then: (payload.len() <= XENSTORE_PAYLOAD_MAX)
            .then(|| Frame::new(XS_WATCH_EVENT, 0, 0, payload)),
    })
}

fn do_unwatch(
    s: &mut Store,
    c: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() != 2 {
        return Err(Errno::EINVAL);
    }
    s.unwatch(c, v[0], v[1])?;
    ok()
}

fn do_reset_watches(
    s: &mut Store,
    c: &Caller,
    _: Option<&mut Txn>,
    _: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.reset_watches(c);
    ok()
}

fn do_introduce(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() < 3 {
        return Err(Errno::EINVAL);
    }
    let domid = parse_domid(v[0])?;
    // The gfn is signed decimal in the protocol; keep its bits.
    let gfn = std::str::from_utf8(v[1])
        .ok()
        .and_then(|g| {
            g.parse::<i64>()
                .ok()
                .map(|x| x as u64)
                .or_else(|| g.parse::<u64>().ok())
        })
        .ok_or(Errno::EINVAL)?;
    let port = parse_dec(v[2])
        .and_then(|p| u32::try_from(p).ok())
        .ok_or(Errno::EINVAL)?;
    s.introduce(domid, gfn, port)?;
    ok()
}

fn do_release(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.release(parse_domid(onearg(r.payload)?)?)?;
    ok()
}

fn do_resume(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    s.resume(parse_domid(onearg(r.payload)?)?)?;
    ok()
}

fn do_get_domain_path(
    _: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let d = parse_domid(onearg(r.payload)?)?;
    Ok(format!("{}\0", crate::path::domain_path(d))
        .into_bytes()
        .into())
}

fn do_is_domain_introduced(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let d = parse_domid(onearg(r.payload)?)?;
    Ok(if s.is_introduced(d) {
        b"T\0".to_vec()
    } else {
        b"F\0".to_vec()
    }
    .into())
}

fn do_set_target(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() < 2 {
        return Err(Errno::EINVAL);
    }
    s.set_target(parse_domid(v[0])?, parse_domid(v[1])?)?;
    ok()
}

fn do_get_feature(
    s: &mut Store,
    c: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    let features = match v.len() {
        0 if c.privileged => SUPPORTED_FEATURES,
        0 => s.domain_mut(c.domid)?.features,
        1 if !c.privileged => return Err(Errno::EACCES),
        1 => s.domain_mut(parse_domid(v[0])?)?.features,
        _ => return Err(Errno::EINVAL),
    };
    Ok(format!("{features}\0").into_bytes().into())
}

fn do_set_feature(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    if v.len() != 2 {
        return Err(Errno::EINVAL);
    }
    let domid = parse_domid(v[0])?;
    let f = parse_dec(v[1])
        .and_then(|f| u32::try_from(f).ok())
        .ok_or(Errno::EINVAL)?;
    let d = s.domain_mut(domid)?;
    if d.introduced {
        return Err(Errno::EBUSY);
    }
    if f & !SUPPORTED_FEATURES != 0 {
        return Err(Errno::EINVAL);
    }
    d.features = f;
    s.journal_domain_pub(domid);
    ok()
}

fn do_get_quota(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    let value = match v.len() {
        0 => return Ok(format!("{}\0", QUOTA_NAMES.join(" ")).into_bytes().into()),
        1 => s
            .quotas()
            .get(std::str::from_utf8(v[0]).map_err(|_| Errno::EINVAL)?),
        2 => {
            let d = s.domain_mut(parse_domid(v[0])?)?;
            let q = d.quotas.unwrap_or(s.quotas());
            q.get(std::str::from_utf8(v[1]).map_err(|_| Errno::EINVAL)?)
        }
        _ => return Err(Errno::EINVAL),
    }
    .ok_or(Errno::EINVAL)?;
    Ok(format!("{value}\0").into_bytes().into())
}

fn do_set_quota(
    s: &mut Store,
    _: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    let (domid, name, val) = match v.len() {
        2 => (None, v[0], v[1]),
        3 => (Some(parse_domid(v[0])?), v[1], v[2]),
        _ => return Err(Errno::EINVAL),
    };
    let name = std::str::from_utf8(name).map_err(|_| Errno::EINVAL)?;
    let val = parse_dec(val)
        .and_then(|x| u32::try_from(x).ok())
        .ok_or(Errno::EINVAL)?;
    match domid {
        None => {
            let mut q = s.quotas();
            q.set(name, val)?;
            s.set_quotas(q);
        }
        Some(d) => {
            let global = s.quotas();
            let dom = s.domain_mut(d)?;
            let mut q = dom.quotas.unwrap_or(global);
            q.set(name, val)?;
            dom.quotas = Some(q);
            s.journal_domain_pub(d);
        }
    }
    ok()
}

/// `XS_CONTROL` commands.
const CONTROL_HELP: &str = "check\nhelp\nprint <string>\nquota [<domid>]\nrxen-attach <domid>\n";

fn do_control(
    s: &mut Store,
    c: &Caller,
    _: Option<&mut Txn>,
    r: &FrameRef<'_>,
) -> Result<Reply, Errno> {
    let v = split_strings(r.payload);
    let (cmd, args) = v.split_first().ok_or(Errno::EINVAL)?;
    let text = match *cmd {
        b"help" => CONTROL_HELP.to_string(),
        b"check" => {
            if let Err(e) = s.check() {
                tracing::error!("store check failed: {e}");
                return Err(Errno::EIO);
            }
            "OK".to_string()
        }
        b"print" => {
            let msg = args.first().ok_or(Errno::EINVAL)?;
            tracing::info!("{}", String::from_utf8_lossy(msg));
            "OK".to_string()
        }
        b"quota" => match args.first() {
            None => {
                let q = s.quotas();
                QUOTA_NAMES
                    .iter()
                    .map(|n| format!("{:<17}: {:>8}\n", n, q.get(n).unwrap_or(0)))
                    .collect()
            }
            Some(d) => {
                let d = parse_domid(d)?;
                let dom = s.domains.get(&d).ok_or(Errno::ENOENT)?;
                let q = dom.quotas.unwrap_or(s.quotas());
                let mut t = format!("Domain {d}:\n");
                for n in QUOTA_NAMES {
                    t.push_str(&format!("{:<17}: {:>8}\n", n, q.get(n).unwrap_or(0)));
                }
                t
            }
        },
        b"rxen-attach" => {
            let d = parse_domid(args.first().ok_or(Errno::EINVAL)?)?;
            s.attach(c.conn, d)?;
            "OK".to_string()
        }
        _ => return Err(Errno::EINVAL),
    };
    let mut p = text.into_bytes();
    p.push(0);
    Ok(p.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onearg_wants_exactly_one_terminated_string() {
        assert_eq!(onearg(b"/a\0"), Ok(&b"/a"[..]));
        assert_eq!(onearg(b"\0"), Ok(&b""[..]));
        assert_eq!(onearg(b"/a"), Err(Errno::EINVAL));
        assert_eq!(onearg(b"/a\0b\0"), Err(Errno::EINVAL));
        assert_eq!(onearg(b""), Err(Errno::EINVAL));
    }

    #[test]
    fn domids_are_strict_decimal() {
        assert_eq!(parse_domid(b"0"), Ok(0));
        assert_eq!(parse_domid(b"65535"), Ok(65535));
        for bad in [
            &b""[..],
            b"65536",
            b"-1",
            b"0x10",
            b"1 ",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_domid(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn table_names_match_types() {
        assert_eq!(type_name(XS_READ), "READ");
        assert_eq!(type_name(XS_SET_QUOTA), "SET_QUOTA");
        assert_eq!(type_name(XS_RESET_WATCHES), "RESET_WATCHES");
        assert_eq!(type_name(20), "UNKNOWN");
        assert_eq!(type_name(XS_INVALID), "UNKNOWN");
    }
}
