//! Store behaviour through the request path: frames in, frames out.

use crate::store::{ConnId, Store};
use crate::wire::{Errno, Frame, split_strings};
use xen_abi::xs_wire::*;

struct T {
    s: Store,
    req: u32,
    events: Vec<(ConnId, String, String)>,
}

impl T {
    fn new() -> T {
        T {
            s: Store::new(),
            req: 100,
            events: Vec::new(),
        }
    }

    fn collect(&mut self) -> Vec<(ConnId, Frame)> {
        let out = self.s.take_output();
        let mut rest = Vec::new();
        for (c, f) in out {
            if f.type_ == XS_WATCH_EVENT {
                let v = split_strings(&f.payload);
                self.events.push((
                    c,
                    String::from_utf8_lossy(v[0]).into(),
                    String::from_utf8_lossy(v[1]).into(),
                ));
            } else {
                rest.push((c, f));
            }
        }
        rest
    }

    fn raw(&mut self, c: ConnId, ty: u32, tx: u32, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        self.req += 1;
        let f = Frame::new(ty, self.req, tx, payload.to_vec());
        self.s.handle(c, &f);
        // Every request leaves the store consistent (tree and watch index).
        self.s.check().unwrap();
        let out = self.collect();
        assert_eq!(out.len(), 1, "one reply per request");
        let (to, r) = &out[0];
        assert_eq!(*to, c);
        assert_eq!(r.req_id, self.req, "req_id echoed");
        assert_eq!(r.tx_id, tx, "tx_id echoed");
        if r.type_ == XS_ERROR {
            let name = split_strings(&r.payload)[0];
            return Err(Errno::from_name(name).expect("known error name"));
        }
        assert_eq!(r.type_, ty);
        Ok(r.payload.clone())
    }

    fn op(&mut self, c: ConnId, ty: u32, tx: u32, args: &[&str]) -> Result<Vec<u8>, Errno> {
        let mut p = Vec::new();
        for a in args {
            p.extend_from_slice(a.as_bytes());
            p.push(0);
        }
        self.raw(c, ty, tx, &p)
    }

    fn write(&mut self, c: ConnId, tx: u32, path: &str, v: &str) -> Result<(), Errno> {
        let mut p = path.as_bytes().to_vec();
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        self.raw(c, XS_WRITE, tx, &p).map(|_| ())
    }

    fn read(&mut self, c: ConnId, tx: u32, path: &str) -> Result<String, Errno> {
        self.op(c, XS_READ, tx, &[path])
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn dir(&mut self, c: ConnId, path: &str) -> Result<Vec<String>, Errno> {
        self.op(c, XS_DIRECTORY, 0, &[path]).map(|v| {
            split_strings(&v)
                .iter()
                .map(|s| String::from_utf8_lossy(s).into())
                .collect()
        })
    }

    fn tx_start(&mut self, c: ConnId) -> u32 {
        let r = self.op(c, XS_TRANSACTION_START, 0, &[""]).unwrap();
        std::str::from_utf8(split_strings(&r)[0])
            .unwrap()
            .parse()
            .unwrap()
    }

    fn tx_end(&mut self, c: ConnId, tx: u32, commit: bool) -> Result<(), Errno> {
        self.op(c, XS_TRANSACTION_END, tx, &[if commit { "T" } else { "F" }])
            .map(|_| ())
    }

    fn perms(&mut self, c: ConnId, path: &str) -> Result<String, Errno> {
        self.op(c, XS_GET_PERMS, 0, &[path]).map(|v| {
            split_strings(&v)
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    fn events_for(&mut self, c: ConnId) -> Vec<(String, String)> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.events.drain(..).partition(|e| e.0 == c);
        self.events = rest;
        mine.into_iter().map(|e| (e.1, e.2)).collect()
    }

    /// A guest connection for `domid`, introduced and attached.
    fn guest(&mut self, dom0: ConnId, domid: u16) -> ConnId {
        self.op(dom0, XS_INTRODUCE, 0, &[&domid.to_string(), "4096", "7"])
            .unwrap();
        let g = self.s.connect_dom0(true);
        self.op(g, XS_CONTROL, 0, &["rxen-attach", &domid.to_string()])
            .unwrap();
        g
    }
}

fn ev(p: &str, t: &str) -> (String, String) {
    (p.to_string(), t.to_string())
}

#[test]
fn write_read_directory_rm() {
    let mut t = T::new();
    let c = t.s.connect_dom0(false);
    t.write(c, 0, "/a/b/c", "v").unwrap();
    assert_eq!(t.read(c, 0, "/a/b/c").unwrap(), "v");
    assert_eq!(t.read(c, 0, "/a/b").unwrap(), "", "parents created empty");
    t.write(c, 0, "/a/x", "1").unwrap();
    assert_eq!(t.dir(c, "/a").unwrap(), ["b", "x"], "creation order");
    assert_eq!(t.dir(c, "/").unwrap(), ["tool", "a"]);
    t.op(c, XS_MKDIR, 0, &["/a/x"]).unwrap();
    assert_eq!(t.read(c, 0, "/a/x").unwrap(), "1", "mkdir keeps value");
    t.op(c, XS_RM, 0, &["/a/b"]).unwrap();
    assert_eq!(t.read(c, 0, "/a/b/c"), Err(Errno::ENOENT));
    assert_eq!(t.dir(c, "/a").unwrap(), ["x"]);
    t.op(c, XS_RM, 0, &["/a/nothere"]).unwrap();
    assert_eq!(t.op(c, XS_RM, 0, &["/no/such"]), Err(Errno::ENOENT));
    assert_eq!(t.op(c, XS_RM, 0, &["/"]), Err(Errno::EINVAL));
    assert_eq!(t.read(c, 0, "/a//x"), Err(Errno::EINVAL));
    // Binary values keep their NULs.
    t.raw(c, XS_WRITE, 0, b"/bin\0a\0b\0").unwrap();
    assert_eq!(t.op(c, XS_READ, 0, &["/bin"]).unwrap(), b"a\0b\0");
    t.s.check().unwrap();
}

#[test]
fn directory_part_pages_long_lists() {
    let mut t = T::new();
    let c = t.s.connect_dom0(false);
    for i in 0..400 {
        t.op(c, XS_MKDIR, 0, &[&format!("/big/child-number-{i:04}")])
            .unwrap();
    }
    assert_eq!(t.dir(c, "/big"), Err(Errno::E2BIG));
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let r = t
            .op(c, XS_DIRECTORY_PART, 0, &["/big", &off.to_string()])
            .unwrap();
        assert!(r.len() <= XENSTORE_PAYLOAD_MAX);
        let v = split_strings(&r);
        let mut done = false;
        for s in &v[1..] {
            if s.is_empty() {
                done = true;
                break;
            }
            off += s.len() + 1;
            names.push(String::from_utf8_lossy(s).into_owned());
        }
        if done {
            break;
        }
    }
    assert_eq!(names.len(), 400);
    assert_eq!(names[399], "child-number-0399");
}

#[test]
fn transactions_isolate_and_conflict_with_eagain() {
    let mut t = T::new();
    let a = t.s.connect_dom0(false);
    let b = t.s.connect_dom0(false);
    t.write(a, 0, "/counter", "0").unwrap();

    // A read-modify-write loses to a concurrent write: EAGAIN.
    let tx = t.tx_start(a);
    assert_eq!(t.read(a, tx, "/counter").unwrap(), "0");
    t.write(a, tx, "/counter", "1").unwrap();
    assert_eq!(
        t.read(b, 0, "/counter").unwrap(),
        "0",
        "not visible before commit"
    );
    t.write(b, 0, "/counter", "5").unwrap();
    assert_eq!(t.tx_end(a, tx, true), Err(Errno::EAGAIN));
    assert_eq!(t.read(a, 0, "/counter").unwrap(), "5", "nothing applied");
    assert_eq!(t.tx_end(a, tx, true), Err(Errno::ENOENT), "gone after end");

    // The retry succeeds.
    let tx = t.tx_start(a);
    let v: u32 = t.read(a, tx, "/counter").unwrap().parse().unwrap();
    t.write(a, tx, "/counter", &(v + 1).to_string()).unwrap();
    t.write(a, tx, "/new/node", "n").unwrap();
    t.tx_end(a, tx, true).unwrap();
    assert_eq!(t.read(b, 0, "/counter").unwrap(), "6");
    assert_eq!(t.read(b, 0, "/new/node").unwrap(), "n");

    // Creating a node someone else created meanwhile conflicts too.
    let tx = t.tx_start(a);
    t.write(a, tx, "/race", "a").unwrap();
    t.write(b, 0, "/race", "b").unwrap();
    assert_eq!(t.tx_end(a, tx, true), Err(Errno::EAGAIN));

    // Abort discards; unrelated writes do not conflict.
    let tx = t.tx_start(a);
    t.write(a, tx, "/only-in-tx", "x").unwrap();
    t.write(b, 0, "/elsewhere", "y").unwrap();
    t.tx_end(a, tx, false).unwrap();
    assert_eq!(t.read(a, 0, "/only-in-tx"), Err(Errno::ENOENT));

    // rm inside a transaction.
    let tx = t.tx_start(a);
    t.op(a, XS_RM, tx, &["/new"]).unwrap();
    assert_eq!(t.read(a, tx, "/new/node"), Err(Errno::ENOENT));
    assert_eq!(t.read(b, 0, "/new/node").unwrap(), "n");
    t.tx_end(a, tx, true).unwrap();
    assert_eq!(t.read(b, 0, "/new/node"), Err(Errno::ENOENT));

    // Unknown transaction ids, and START inside a transaction.
    assert_eq!(t.read(a, 999, "/counter"), Err(Errno::ENOENT));
    let tx = t.tx_start(a);
    assert_eq!(t.op(a, XS_TRANSACTION_START, tx, &[""]), Err(Errno::EBUSY));
    assert_eq!(t.op(a, XS_TRANSACTION_END, tx, &["X"]), Err(Errno::EINVAL));
    assert_eq!(
        t.read(b, tx, "/counter"),
        Err(Errno::ENOENT),
        "per connection"
    );
    t.s.check().unwrap();
}

#[test]
fn watches_fire_with_initial_event_and_on_commit() {
    let mut t = T::new();
    let w = t.s.connect_dom0(false);
    let c = t.s.connect_dom0(false);
    t.op(w, XS_WATCH, 0, &["/a", "tok"]).unwrap();
    assert_eq!(t.events_for(w), [ev("/a", "tok")], "initial event");
    assert_eq!(t.op(w, XS_WATCH, 0, &["/a", "tok"]), Err(Errno::EEXIST));
    t.write(c, 0, "/a/b/c", "1").unwrap();
    t.write(c, 0, "/ab", "1").unwrap();
    assert_eq!(t.events_for(w), [ev("/a/b/c", "tok")]);
    t.op(w, XS_WATCH, 0, &["/a/b/c", "deep"]).unwrap();
    t.events_for(w);
    t.op(c, XS_RM, 0, &["/a"]).unwrap();
    assert_eq!(
        t.events_for(w),
        [ev("/a/b/c", "deep"), ev("/a", "tok")],
        "removal: exact events for descendants (children first), subtree for the root"
    );
    t.op(w, XS_UNWATCH, 0, &["/a/b/c", "deep"]).unwrap();
    // Transactions fire on commit only, and not at all on abort.
    let tx = t.tx_start(c);
    t.write(c, tx, "/a/t", "1").unwrap();
    assert!(t.events_for(w).is_empty());
    t.tx_end(c, tx, true).unwrap();
    assert_eq!(t.events_for(w), [ev("/a/t", "tok")]);
    let tx = t.tx_start(c);
    t.write(c, tx, "/a/t", "2").unwrap();
    t.tx_end(c, tx, false).unwrap();
    assert!(t.events_for(w).is_empty());
    // Depth-limited watch.
    t.op(w, XS_WATCH, 0, &["/d", "d1", "1"]).unwrap();
    t.events_for(w);
    t.write(c, 0, "/d/x", "1").unwrap();
    t.write(c, 0, "/d/x/y", "1").unwrap();
    assert_eq!(t.events_for(w), [ev("/d/x", "d1")]);
    // Unwatch.
    t.op(w, XS_UNWATCH, 0, &["/a", "tok"]).unwrap();
    assert_eq!(t.op(w, XS_UNWATCH, 0, &["/a", "tok"]), Err(Errno::ENOENT));
    t.write(c, 0, "/a/z", "1").unwrap();
    assert!(t.events_for(w).is_empty());
    // Reset clears the rest.
    t.op(w, XS_RESET_WATCHES, 0, &[]).unwrap();
    assert_eq!(t.s.watch_count(w), 0);
}

#[test]
fn guest_identity_permissions_and_relative_paths() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    // The toolstack prepares the guests' homes, owned by each guest.
    for d in [1u16, 2] {
        let home = format!("/local/domain/{d}");
        t.op(d0, XS_MKDIR, 0, &[&home]).unwrap();
        t.op(d0, XS_SET_PERMS, 0, &[&home, &format!("n{d}")])
            .unwrap();
        t.write(d0, 0, &format!("{home}/name"), &format!("guest{d}"))
            .unwrap();
        t.op(
            d0,
            XS_SET_PERMS,
            0,
            &[&format!("{home}/name"), &format!("n{d}")],
        )
        .unwrap();
    }
    t.op(d0, XS_MKDIR, 0, &["/shared"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/shared", "n0", "b1"]).unwrap();
    let g1 = t.guest(d0, 1);
    let g2 = t.guest(d0, 2);

    // Relative paths resolve to the guest's home.
    assert_eq!(t.read(g1, 0, "name").unwrap(), "guest1");
    t.write(g1, 0, "device/vbd/51712/state", "1").unwrap();
    assert_eq!(
        t.read(d0, 0, "/local/domain/1/device/vbd/51712/state")
            .unwrap(),
        "1"
    );
    assert_eq!(
        t.perms(d0, "/local/domain/1/device/vbd/51712/state")
            .unwrap(),
        "n1",
        "guests own what they create"
    );
    // Another domain's nodes: EACCES, even for existence.
    assert_eq!(t.read(g1, 0, "/local/domain/2/name"), Err(Errno::EACCES));
    assert_eq!(t.read(g1, 0, "/local/domain/2/nothere"), Err(Errno::EACCES));
    assert_eq!(t.write(g1, 0, "/local/domain/2/x", "1"), Err(Errno::EACCES));
    assert_eq!(t.dir(g2, "/local/domain/1"), Err(Errno::EACCES));
    assert_eq!(t.read(g1, 0, "/tool/xenstored"), Err(Errno::EACCES));
    // Granted access works.
    t.write(g1, 0, "/shared/x", "1").unwrap();
    assert_eq!(t.write(g2, 0, "/shared/y", "1"), Err(Errno::EACCES));
    // Only the owner sets permissions; nobody but dom0 changes owners.
    assert_eq!(
        t.op(g2, XS_SET_PERMS, 0, &["/local/domain/1/name", "n2"]),
        Err(Errno::EACCES)
    );
    assert_eq!(
        t.op(g1, XS_SET_PERMS, 0, &["name", "n2"]),
        Err(Errno::EPERM)
    );
    t.op(g1, XS_SET_PERMS, 0, &["name", "n1", "r2"]).unwrap();
    assert_eq!(t.read(g2, 0, "/local/domain/1/name").unwrap(), "guest1");
    // Privileged operations are refused.
    for ty in [
        XS_INTRODUCE,
        XS_RELEASE,
        XS_SET_TARGET,
        XS_CONTROL,
        XS_SET_QUOTA,
    ] {
        assert_eq!(t.op(g1, ty, 0, &["1", "2", "3"]), Err(Errno::EACCES));
    }
    // A guest connection cannot attach again.
    assert_eq!(
        t.op(g1, XS_CONTROL, 0, &["rxen-attach", "2"]),
        Err(Errno::EACCES)
    );
    // Only root peers may attach, only to introduced domains, once.
    let plain = t.s.connect_dom0(false);
    assert_eq!(
        t.op(plain, XS_CONTROL, 0, &["rxen-attach", "1"]),
        Err(Errno::EACCES)
    );
    let root = t.s.connect_dom0(true);
    assert_eq!(
        t.op(root, XS_CONTROL, 0, &["rxen-attach", "9"]),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        t.op(root, XS_CONTROL, 0, &["rxen-attach", "1"]),
        Err(Errno::EBUSY)
    );
    // SET_TARGET: domain 2 may act for domain 1.
    t.op(d0, XS_SET_TARGET, 0, &["2", "1"]).unwrap();
    t.write(g2, 0, "/local/domain/1/from2", "x").unwrap();
}

#[test]
fn relative_watches_and_domain_events() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    t.op(d0, XS_WATCH, 0, &["@introduceDomain", "i"]).unwrap();
    t.op(d0, XS_WATCH, 0, &["@releaseDomain", "r"]).unwrap();
    t.events_for(d0);
    t.op(d0, XS_MKDIR, 0, &["/local/domain/3"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/local/domain/3", "n3"])
        .unwrap();
    let g = t.guest(d0, 3);
    assert_eq!(t.events_for(d0), [ev("@introduceDomain", "i")]);
    assert_eq!(
        t.op(d0, XS_IS_DOMAIN_INTRODUCED, 0, &["3"]).unwrap(),
        b"T\0"
    );
    assert_eq!(
        t.op(d0, XS_GET_DOMAIN_PATH, 0, &["3"]).unwrap(),
        b"/local/domain/3\0"
    );
    // A relative watch reports relative paths.
    t.op(g, XS_WATCH, 0, &["control/shutdown", "FFFF8880"])
        .unwrap();
    assert_eq!(t.events_for(g), [ev("control/shutdown", "FFFF8880")]);
    t.write(d0, 0, "/local/domain/3/control/shutdown", "poweroff")
        .unwrap();
    assert_eq!(t.events_for(g), [ev("control/shutdown", "FFFF8880")]);
    // Guests do not see special events unless permitted.
    t.op(g, XS_WATCH, 0, &["@releaseDomain", "gr"]).unwrap();
    t.events_for(g);
    // Guest-owned nodes, and the guest's permission entries elsewhere, go
    // with the domain on RELEASE.
    t.write(g, 0, "data", "x").unwrap();
    t.op(d0, XS_MKDIR, 0, &["/backend/vbd/3"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/backend/vbd/3", "n0", "r3"])
        .unwrap();
    t.events_for(d0);
    t.op(d0, XS_RELEASE, 0, &["3"]).unwrap();
    assert!(t.s.take_closing().contains(&g), "guest connection closed");
    assert!(!t.s.is_connected(g));
    let evs = t.events_for(d0);
    assert!(evs.contains(&ev("@releaseDomain", "r")), "{evs:?}");
    assert!(t.events_for(g).is_empty());
    assert_eq!(t.read(d0, 0, "/local/domain/3/data"), Err(Errno::ENOENT));
    assert_eq!(t.perms(d0, "/backend/vbd/3").unwrap(), "n0");
    assert_eq!(
        t.op(d0, XS_IS_DOMAIN_INTRODUCED, 0, &["3"]).unwrap(),
        b"F\0"
    );
    assert_eq!(t.op(d0, XS_RELEASE, 0, &["3"]), Err(Errno::ENOENT));
    assert_eq!(
        t.op(d0, XS_INTRODUCE, 0, &["0", "1", "1"]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        t.op(d0, XS_INTRODUCE, 0, &["4", "1", "0"]),
        Err(Errno::EINVAL)
    );
}

/// When a guest's relay connection closes (its domain process died or
/// dropped the ring), `@releaseDomain` fires while the domain stays
/// introduced; a dom0 connection closing fires nothing, and neither does a
/// RELEASE's own closing of the relay twice.
#[test]
fn relay_close_fires_release_domain() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    t.op(d0, XS_WATCH, 0, &["@releaseDomain", "r"]).unwrap();
    t.events_for(d0);
    let g = t.guest(d0, 5);
    t.events_for(d0);
    let other = t.s.connect_dom0(false);
    t.s.disconnect(other);
    t.collect();
    assert!(t.events_for(d0).is_empty(), "a dom0 connection is no relay");
    t.s.disconnect(g);
    t.collect();
    assert_eq!(t.events_for(d0), [ev("@releaseDomain", "r")]);
    assert_eq!(
        t.op(d0, XS_IS_DOMAIN_INTRODUCED, 0, &["5"]).unwrap(),
        b"T\0",
        "still introduced until RELEASE"
    );
    // It may attach again; RELEASE then closes it and fires once.
    let g2 = t.s.connect_dom0(true);
    t.op(g2, XS_CONTROL, 0, &["rxen-attach", "5"]).unwrap();
    t.events_for(d0);
    t.op(d0, XS_RELEASE, 0, &["5"]).unwrap();
    assert!(t.s.take_closing().contains(&g2));
    t.s.disconnect(g2);
    t.collect();
    assert_eq!(t.events_for(d0), [ev("@releaseDomain", "r")]);
}

#[test]
fn quotas_give_equota() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    for (n, v) in [
        ("nodes", "10"),
        ("watches", "3"),
        ("transactions", "2"),
        ("node-size", "64"),
    ] {
        t.op(d0, XS_SET_QUOTA, 0, &[n, v]).unwrap();
    }
    assert_eq!(t.op(d0, XS_GET_QUOTA, 0, &["nodes"]).unwrap(), b"10\0");
    t.op(d0, XS_MKDIR, 0, &["/local/domain/5"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/local/domain/5", "n5"])
        .unwrap();
    let g = t.guest(d0, 5);
    // Nodes: the home counts as one of the ten.
    for i in 0..9 {
        t.write(g, 0, &format!("n{i}"), "x").unwrap();
    }
    assert_eq!(t.write(g, 0, "n9", "x"), Err(Errno::EQUOTA));
    assert_eq!(t.read(g, 0, "n9"), Err(Errno::ENOENT), "nothing created");
    // Node size.
    assert_eq!(t.write(g, 0, "n0", &"y".repeat(65)), Err(Errno::EQUOTA));
    t.write(g, 0, "n0", &"y".repeat(64)).unwrap();
    // Watches.
    for i in 0..3 {
        t.op(g, XS_WATCH, 0, &[&format!("w{i}"), "t"]).unwrap();
    }
    assert_eq!(t.op(g, XS_WATCH, 0, &["w3", "t"]), Err(Errno::EQUOTA));
    // Transactions.
    t.tx_start(g);
    t.tx_start(g);
    assert_eq!(t.op(g, XS_TRANSACTION_START, 0, &[""]), Err(Errno::EQUOTA));
    // Permissions per node (default 5).
    assert_eq!(
        t.op(
            g,
            XS_SET_PERMS,
            0,
            &["n1", "n5", "r1", "r2", "r3", "r4", "r6"]
        ),
        Err(Errno::EQUOTA)
    );
    // dom0 is not limited.
    for i in 0..20 {
        t.write(d0, 0, &format!("/dom0/{i}"), &"z".repeat(1000))
            .unwrap();
    }
    // Per-domain quota overrides.
    t.op(d0, XS_SET_QUOTA, 0, &["5", "nodes", "11"]).unwrap();
    t.write(g, 0, "n9", "x").unwrap();
    assert_eq!(
        t.op(d0, XS_SET_QUOTA, 0, &["bogus", "1"]),
        Err(Errno::EINVAL)
    );
}

#[test]
fn bad_requests_get_errors() {
    let mut t = T::new();
    let c = t.s.connect_dom0(false);
    assert_eq!(t.raw(c, 99, 0, b"x\0"), Err(Errno::ENOSYS));
    assert_eq!(t.raw(c, XS_WATCH_EVENT, 0, b"a\0b\0"), Err(Errno::ENOSYS));
    assert_eq!(t.raw(c, XS_ERROR, 0, b""), Err(Errno::ENOSYS));
    assert_eq!(t.raw(c, 20, 0, b""), Err(Errno::ENOSYS), "RESTRICT is gone");
    assert_eq!(t.raw(c, XS_INVALID, 0, b""), Err(Errno::ENOSYS));
    assert_eq!(t.raw(c, XS_READ, 0, b"/tool"), Err(Errno::EINVAL), "no NUL");
    assert_eq!(t.raw(c, XS_READ, 0, b"/tool\0x\0"), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, XS_WRITE, 0, b"/nonul"), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, XS_READ, 0, b""), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, XS_SET_PERMS, 0, b"/tool\0"), Err(Errno::EINVAL));
    assert_eq!(
        t.raw(c, XS_SET_PERMS, 0, b"/tool\0q1\0"),
        Err(Errno::EINVAL)
    );
    assert_eq!(t.raw(c, XS_WATCH, 0, b"/a\0"), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, XS_WATCH, 0, b"/a\0t\0-1\0"), Err(Errno::EINVAL));
    assert_eq!(
        t.raw(c, XS_GET_DOMAIN_PATH, 0, b"70000\0"),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        t.raw(c, XS_DIRECTORY_PART, 0, b"/\0x\0"),
        Err(Errno::EINVAL)
    );
    assert_eq!(t.raw(c, XS_WRITE, 0, b"/bad path\0v"), Err(Errno::EINVAL));
    // Still serving.
    assert_eq!(t.read(c, 0, "/tool/xenstored").unwrap(), "");
}

#[test]
fn state_survives_restart() {
    let dir = std::env::temp_dir().join(format!("xs-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let (mut p, s) = crate::persist::Persister::open(&dir, false).unwrap();
        let mut t = T::new();
        t.s = s;
        let c = t.s.connect_dom0(true);
        t.write(c, 0, "/keep/me", "yes").unwrap();
        t.op(c, XS_SET_PERMS, 0, &["/keep/me", "n4", "r7"]).unwrap();
        t.write(c, 0, "/gone", "x").unwrap();
        t.op(c, XS_RM, 0, &["/gone"]).unwrap();
        t.op(c, XS_INTRODUCE, 0, &["4", "123", "9"]).unwrap();
        let tx = t.tx_start(c);
        t.write(c, tx, "/keep/tx", "committed").unwrap();
        t.tx_end(c, tx, true).unwrap();
        p.append(&mut t.s).unwrap();
        // A compaction in the middle keeps everything, too.
        p.compact(&mut t.s).unwrap();
        t.write(c, 0, "/after/compact", "1").unwrap();
        p.append(&mut t.s).unwrap();
    }
    let (_p, s) = crate::persist::Persister::open(&dir, false).unwrap();
    let mut t = T::new();
    t.s = s;
    let c = t.s.connect_dom0(true);
    assert_eq!(t.read(c, 0, "/keep/me").unwrap(), "yes");
    assert_eq!(t.perms(c, "/keep/me").unwrap(), "n4,r7");
    assert_eq!(t.read(c, 0, "/keep/tx").unwrap(), "committed");
    assert_eq!(t.read(c, 0, "/after/compact").unwrap(), "1");
    assert_eq!(t.read(c, 0, "/gone"), Err(Errno::ENOENT));
    assert_eq!(t.dir(c, "/").unwrap(), ["tool", "keep", "after"]);
    assert_eq!(t.op(c, XS_IS_DOMAIN_INTRODUCED, 0, &["4"]).unwrap(), b"T\0");
    t.s.check().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Overwriting an existing node outside a transaction takes a shorter path
/// (in place, no event built when nobody watches): every check of the
/// general path still applies, and the result is the same.
#[test]
fn overwrite_in_place_keeps_every_check() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    t.op(d0, XS_SET_QUOTA, 0, &["node-size", "16"]).unwrap();
    t.op(d0, XS_MKDIR, 0, &["/local/domain/3"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/local/domain/3", "n3"])
        .unwrap();
    t.write(d0, 0, "/local/domain/3/ro", "dom0's").unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/local/domain/3/ro", "n0", "r3"])
        .unwrap();
    t.write(d0, 0, "/private", "secret").unwrap();
    let g = t.guest(d0, 3);

    // Permissions: readable but not writable; neither.
    assert_eq!(t.read(g, 0, "ro").unwrap(), "dom0's");
    assert_eq!(t.write(g, 0, "ro", "mine"), Err(Errno::EACCES));
    assert_eq!(t.read(g, 0, "/private"), Err(Errno::EACCES));
    assert_eq!(t.write(g, 0, "/private", "x"), Err(Errno::EACCES));
    assert_eq!(t.read(d0, 0, "/private").unwrap(), "secret");
    assert_eq!(t.read(d0, 0, "/local/domain/3/ro").unwrap(), "dom0's");

    // Node size counts the children's names as well as the value.
    t.write(g, 0, "d", "0123456789").unwrap();
    t.write(g, 0, "d/ab", "").unwrap(); // "ab\0": 3 bytes
    assert_eq!(t.write(g, 0, "d", "0123456789abcd"), Err(Errno::EQUOTA));
    assert_eq!(t.read(g, 0, "d").unwrap(), "0123456789", "unchanged");
    t.write(g, 0, "d", "0123456789abc").unwrap();
    // dom0 is not limited.
    t.write(d0, 0, "/local/domain/3/d", &"z".repeat(100))
        .unwrap();

    // Rewrites do not change the owned-node count: the node quota still
    // allows exactly as many new nodes as before.
    t.op(d0, XS_SET_QUOTA, 0, &["nodes", "5"]).unwrap();
    for _ in 0..10 {
        t.write(g, 0, "d", "again").unwrap();
    }
    // Owned: home, d, d/ab; two more fit.
    t.write(g, 0, "n1", "").unwrap();
    t.write(g, 0, "n2", "").unwrap();
    assert_eq!(t.write(g, 0, "n3", ""), Err(Errno::EQUOTA));

    // Nobody watches: no events. Watches elsewhere (a sibling sharing the
    // prefix, a child) see nothing either. Then a watch sees each
    // overwrite, and the generation moves (a transaction that read the node
    // conflicts).
    t.write(d0, 0, "/w/x", "0").unwrap();
    assert!(t.events.is_empty());
    t.op(d0, XS_WATCH, 0, &["/wx", "sibling"]).unwrap();
    t.op(d0, XS_WATCH, 0, &["/w/x/y", "child"]).unwrap();
    t.op(g, XS_WATCH, 0, &["/w/x", "guest"]).unwrap();
    let _ = t.collect();
    t.events.clear();
    t.write(d0, 0, "/w/x", "0").unwrap();
    assert!(t.events.is_empty(), "{:?}", t.events);
    t.op(d0, XS_WATCH, 0, &["/w", "tok"]).unwrap();
    assert_eq!(t.events_for(d0), [ev("/w", "tok")]);
    let tx2 = t.tx_start(d0);
    assert_eq!(t.read(d0, tx2, "/w/x").unwrap(), "0");
    t.write(d0, 0, "/w/x", "1").unwrap();
    t.write(d0, 0, "/w/x", "2").unwrap();
    assert_eq!(t.events_for(d0), [ev("/w/x", "tok"), ev("/w/x", "tok")]);
    t.write(d0, tx2, "/w/y", "in tx").unwrap();
    assert_eq!(t.tx_end(d0, tx2, true), Err(Errno::EAGAIN));
    assert_eq!(t.read(d0, 0, "/w/x").unwrap(), "2");
    t.s.check().unwrap();
}

/// The in-place overwrite journals the same record as the general path:
/// a restart restores the last value.
#[test]
fn overwrites_in_place_survive_restart() {
    let dir = std::env::temp_dir().join(format!("xs-overwrite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let (mut p, s) = crate::persist::Persister::open(&dir, false).unwrap();
        let mut t = T::new();
        t.s = s;
        let c = t.s.connect_dom0(true);
        t.write(c, 0, "/o", "first").unwrap();
        t.op(c, XS_SET_PERMS, 0, &["/o", "n2", "r5"]).unwrap();
        p.append(&mut t.s).unwrap();
        for i in 0..50 {
            t.write(c, 0, "/o", &format!("v{i}")).unwrap();
        }
        t.write(c, 0, "/o", &"L".repeat(3000)).unwrap();
        t.write(c, 0, "/o", "last").unwrap();
        p.append(&mut t.s).unwrap();
    }
    let (_p, s) = crate::persist::Persister::open(&dir, false).unwrap();
    let mut t = T::new();
    t.s = s;
    let c = t.s.connect_dom0(true);
    assert_eq!(t.read(c, 0, "/o").unwrap(), "last");
    assert_eq!(t.perms(c, "/o").unwrap(), "n2,r5");
    t.s.check().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The index of connections with watches follows every way watches come
/// and go (checked by `Store::check` after each request, and here after the
/// calls that are not requests); events reach exactly the watchers.
#[test]
fn watch_index_follows_every_change() {
    let mut t = T::new();
    let d0 = t.s.connect_dom0(true);
    t.op(d0, XS_MKDIR, 0, &["/local/domain/4"]).unwrap();
    t.op(d0, XS_SET_PERMS, 0, &["/local/domain/4", "n4"])
        .unwrap();
    // Watch, then unwatch down to none.
    let a = t.s.connect_dom0(false);
    t.op(a, XS_WATCH, 0, &["/x", "1"]).unwrap();
    t.op(a, XS_WATCH, 0, &["/y", "2"]).unwrap();
    t.op(a, XS_UNWATCH, 0, &["/x", "1"]).unwrap();
    t.op(a, XS_UNWATCH, 0, &["/y", "2"]).unwrap();
    t.events.clear();
    t.write(d0, 0, "/x", "v").unwrap();
    assert!(t.events.is_empty());
    // A root connection with watches attaches as a guest: they go.
    let r = t.s.connect_dom0(true);
    t.op(r, XS_WATCH, 0, &["/x", "before-attach"]).unwrap();
    t.op(d0, XS_INTRODUCE, 0, &["4", "4096", "7"]).unwrap();
    t.op(r, XS_CONTROL, 0, &["rxen-attach", "4"]).unwrap();
    t.events.clear();
    t.write(d0, 0, "/x", "w").unwrap();
    assert!(t.events.is_empty(), "{:?}", t.events);
    // The guest watches; re-introducing the domain resets its connection.
    t.op(r, XS_WATCH, 0, &["w", "guest"]).unwrap();
    t.events.clear();
    t.write(d0, 0, "/local/domain/4/w", "1").unwrap();
    assert_eq!(t.events_for(r), [ev("w", "guest")]);
    t.op(d0, XS_INTRODUCE, 0, &["4", "4096", "7"]).unwrap();
    t.write(d0, 0, "/local/domain/4/w", "2").unwrap();
    assert!(t.events.is_empty(), "{:?}", t.events);
    t.s.check().unwrap();
    // Disconnecting a watcher.
    let b = t.s.connect_dom0(false);
    t.op(b, XS_WATCH, 0, &["/x", "b"]).unwrap();
    t.s.disconnect(b);
    t.s.check().unwrap();
    t.events.clear();
    t.write(d0, 0, "/x", "z").unwrap();
    assert!(t.events.is_empty(), "{:?}", t.events);
    // Releasing the guest whose connection watches.
    t.op(r, XS_WATCH, 0, &["w", "again"]).unwrap();
    t.op(d0, XS_RELEASE, 0, &["4"]).unwrap();
    t.s.check().unwrap();
    assert!(t.s.take_closing().contains(&r));
}
