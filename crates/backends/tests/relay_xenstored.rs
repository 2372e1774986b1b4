//! The XenStore ring relay against rxen's real xenstored (in-process, on a
//! private socket): a guest's requests written into its ring reach the
//! store as that guest, replies and watch events come back through the
//! ring, a guest that floods requests without reading stays bounded, and a
//! guest that corrupts its ring loses its connection, which xenstored
//! reports with `@releaseDomain`.
//!
//! Attaching a guest connection needs a root peer (xenstored checks
//! `SO_PEERCRED`); without root these tests say so and pass unchecked, like
//! xenstored's own daemon tests.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backends::ring::mock::{MockNotify, MockRing};
use backends::ring::{RING_PAGE_SIZE, RingMemory};
use backends::xenstore::{RelayError, StoreRelay};
use xen_abi::xs_wire::*;
use xenstore::client::Client;
use xenstore::perms::{Access, Perms};
use xenstore::wire::{Frame, FrameDecoder};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Starts xenstored on a fresh socket; returns its path.
fn daemon(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rxen-relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("socket");
    let listener = xenstore::server::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut s =
            xenstore::server::Server::new(listener, xenstore::Store::new(), None, None).unwrap();
        let _ = s.run();
    });
    sock
}

/// Introduces `domid` with a home it owns and returns a relay connection
/// attached as that guest.
fn attach(sock: &Path, domid: u16) -> (Client, UnixStream) {
    let mut dom0 = Client::connect_path(sock).unwrap();
    let home = format!("/local/domain/{domid}");
    dom0.mkdir(&home).unwrap();
    dom0.set_perms(&home, &Perms::owner(domid, Access::None))
        .unwrap();
    dom0.introduce(domid, 0xfeffc, 1).unwrap();
    let mut relay = Client::connect_path(sock).unwrap();
    relay.attach_domain(domid).unwrap();
    let stream = relay.into_stream().unwrap();
    stream.set_nonblocking(true).unwrap();
    (dom0, stream)
}

/// The guest side of the ring, as Linux's xenbus drives it.
struct Guest {
    page: MockRing,
    dec: FrameDecoder,
    next: u32,
}

impl Guest {
    fn send(&mut self, type_: u32, args: &[&[u8]]) -> u32 {
        self.next += 1;
        let mut p = Vec::new();
        for a in args {
            p.extend_from_slice(a);
        }
        let bytes = Frame::new(type_, self.next, 0, p).encode();
        let mut off = 0;
        while off < bytes.len() {
            let cons = self.page.load_u32(XENSTORE_REQ_CONS_OFFSET);
            let prod = self.page.load_u32(XENSTORE_REQ_PROD_OFFSET);
            let room = XENSTORE_RING_SIZE - prod.wrapping_sub(cons) as usize;
            let n = room.min(bytes.len() - off);
            assert!(n > 0, "request ring full: test sends too much at once");
            for (i, b) in bytes[off..off + n].iter().enumerate() {
                let idx = (prod as usize + i) % XENSTORE_RING_SIZE;
                self.page.write(XENSTORE_REQ_OFFSET + idx, &[*b]);
            }
            self.page
                .store_u32(XENSTORE_REQ_PROD_OFFSET, prod.wrapping_add(n as u32));
            off += n;
        }
        self.next
    }

    /// Frames waiting in the response ring (consumes at most `max` bytes).
    fn recv(&mut self, max: usize) -> Vec<Frame> {
        let cons = self.page.load_u32(XENSTORE_RSP_CONS_OFFSET);
        let prod = self.page.load_u32(XENSTORE_RSP_PROD_OFFSET);
        let n = (prod.wrapping_sub(cons) as usize).min(max);
        let mut bytes = vec![0u8; n];
        for (i, b) in bytes.iter_mut().enumerate() {
            let mut one = [0u8];
            self.page.read(
                XENSTORE_RSP_OFFSET + (cons as usize + i) % XENSTORE_RING_SIZE,
                &mut one,
            );
            *b = one[0];
        }
        self.page
            .store_u32(XENSTORE_RSP_CONS_OFFSET, cons.wrapping_add(n as u32));
        let mut out = Vec::new();
        self.dec.feed_all(&bytes, &mut out).unwrap();
        out
    }
}

fn guest() -> Guest {
    let page = MockRing::new();
    assert_eq!(RING_PAGE_SIZE, 4096);
    Guest {
        page,
        dec: FrameDecoder::new(),
        next: 0,
    }
}

/// Pump until `want` frames arrived at the guest (or time out).
fn exchange<N: backends::ring::Notify>(
    r: &mut StoreRelay<MockRing, N, UnixStream>,
    g: &mut Guest,
    want: usize,
) -> Vec<Frame> {
    let t0 = Instant::now();
    let mut got = Vec::new();
    while got.len() < want {
        r.pump().unwrap();
        got.extend(g.recv(usize::MAX));
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {got:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

#[test]
fn guest_requests_reach_xenstored_as_the_guest() {
    if !is_root() {
        eprintln!("SKIPPED: attaching a guest needs a root peer");
        return;
    }
    let sock = daemon("basic");
    let (mut dom0, stream) = attach(&sock, 7);
    let mut g = guest();
    let n = MockNotify::default();
    let mut r = StoreRelay::new(g.page.clone(), n.clone(), stream);

    // A relative write lands in the guest's home, owned by the guest.
    let id = g.send(XS_WRITE, &[b"control/feature-poweroff\0", b"1"]);
    let f = exchange(&mut r, &mut g, 1);
    assert_eq!((f[0].type_, f[0].req_id), (XS_WRITE, id));
    assert_eq!(
        dom0.read_string("/local/domain/7/control/feature-poweroff")
            .unwrap(),
        "1"
    );
    assert!(n.count() >= 1, "the guest was notified of its reply");

    // The guest has its own identity: dom0's private nodes are not its.
    dom0.write("/secret", "x").unwrap();
    g.send(XS_READ, &[b"/secret\0"]);
    let f = exchange(&mut r, &mut g, 1);
    assert_eq!(f[0].type_, XS_ERROR);
    assert_eq!(f[0].payload, b"EACCES\0");

    // Watch events come back through the ring.
    g.send(XS_WATCH, &[b"control/shutdown\0", b"tok\0"]);
    let f = exchange(&mut r, &mut g, 2);
    assert!(f.iter().any(|f| f.type_ == XS_WATCH));
    dom0.write("/local/domain/7/control/shutdown", "poweroff")
        .unwrap();
    let f = exchange(&mut r, &mut g, 1);
    assert_eq!(f[0].type_, XS_WATCH_EVENT);
    assert_eq!(f[0].payload, b"control/shutdown\0tok\0");
}

#[test]
fn a_guest_that_stops_reading_stays_bounded_then_catches_up() {
    if !is_root() {
        eprintln!("SKIPPED: attaching a guest needs a root peer");
        return;
    }
    let sock = daemon("flood");
    let (mut dom0, stream) = attach(&sock, 8);
    dom0.write("/local/domain/8/big", vec![b'v'; 3000]).unwrap();
    let mut g = guest();
    let mut r = StoreRelay::new(g.page.clone(), MockNotify::default(), stream);
    // 30 reads of a 3000-byte node: ~90 KiB of replies the guest does not
    // read yet (xenstored answers at most `outstanding` requests ahead).
    let mut sent = 0;
    let t0 = Instant::now();
    while sent < 30 {
        let cons = g.page.load_u32(XENSTORE_REQ_CONS_OFFSET);
        let prod = g.page.load_u32(XENSTORE_REQ_PROD_OFFSET);
        if XENSTORE_RING_SIZE - (prod.wrapping_sub(cons) as usize) >= 32 {
            g.send(XS_READ, &[b"big\0"]);
            sent += 1;
        }
        r.pump().unwrap();
        let (a, b) = r.buffered();
        assert!(a <= backends::xenstore::RELAY_BUFFER && b <= backends::xenstore::RELAY_BUFFER);
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    // Now the guest reads slowly; every reply arrives, in order, whole.
    let mut replies = Vec::new();
    while replies.len() < 30 {
        r.pump().unwrap();
        replies.extend(g.recv(200));
        assert!(t0.elapsed() < Duration::from_secs(20), "{}", replies.len());
    }
    for (i, f) in replies.iter().enumerate() {
        assert_eq!(f.type_, XS_READ);
        assert_eq!(f.req_id, i as u32 + 1);
        assert_eq!(f.payload.len(), 3000);
    }
}

#[test]
fn corrupt_ring_drops_the_connection_and_fires_release_domain() {
    if !is_root() {
        eprintln!("SKIPPED: attaching a guest needs a root peer");
        return;
    }
    let sock = daemon("hostile");
    let (mut dom0, stream) = attach(&sock, 9);
    dom0.watch("@releaseDomain", "rel").unwrap();
    assert_eq!(dom0.read_watch().unwrap().token, "rel");
    let g = guest();
    let mut r = StoreRelay::new(g.page.clone(), MockNotify::default(), stream);
    g.page.store_u32(XENSTORE_REQ_PROD_OFFSET, 0xdead_beef);
    assert!(matches!(
        r.pump(),
        Err(RelayError::BadRequestIndex {
            prod: 0xdead_beef,
            ..
        })
    ));
    drop(r);
    let ev = dom0.read_watch_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ev.path, "@releaseDomain");
    assert!(dom0.is_domain_introduced(9).unwrap());
}
