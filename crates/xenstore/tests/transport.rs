//! The socket transport against the bare store: whatever way requests
//! arrive (many frames in one read, frames split across reads, bursts larger
//! than one read or than one turn's share, several clients at once), each
//! connection receives exactly the frames the store queued for it, in the
//! store's order. Plus the edges of the event loop: a peer that hangs up
//! right after a request, a guest pipelining past its `outstanding` limit.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use xen_abi::xs_wire::*;
use xenstore::Store;
use xenstore::client::Client;
use xenstore::server::{self, Server};
use xenstore::wire::{Frame, FrameDecoder};

/// How the server under test persists, which decides how it commits.
#[derive(Clone, Copy, Debug)]
enum Persist {
    /// No state: each connection is answered once its input is handled.
    None,
    /// A log: the same, committing before each answer.
    Log,
    /// `--sync`: one commit (and fdatasync) per turn for all connections.
    Sync,
}

/// A server's directory (socket, state), removed when the test is done
/// (the server thread itself runs until the test process exits).
struct Dir {
    dir: PathBuf,
    sock: PathBuf,
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.sock
    }
}

impl AsRef<Path> for Dir {
    fn as_ref(&self) -> &Path {
        &self.sock
    }
}

/// A server on a private socket, running in a thread for the rest of the
/// test process.
fn start(name: &str, persist: Persist) -> Dir {
    let dir = std::env::temp_dir().join(format!(
        "xs-transport-{name}-{persist:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("socket");
    let l = server::bind(&sock).unwrap();
    let (p, store) = match persist {
        Persist::None => (None, Store::new()),
        Persist::Log | Persist::Sync => {
            let (p, s) = xenstore::persist::Persister::open(
                &dir.join("state"),
                matches!(persist, Persist::Sync),
            )
            .unwrap();
            (Some(p), s)
        }
    };
    std::thread::spawn(move || {
        let mut s = Server::new(l, store, p, None).unwrap();
        s.run().unwrap();
    });
    Dir { dir, sock }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn req(ty: u32, id: u32, tx: u32, args: &[&[u8]], tail: &[u8]) -> Frame {
    let mut p = Vec::new();
    for a in args {
        p.extend_from_slice(a);
        p.push(0);
    }
    p.extend_from_slice(tail);
    Frame::new(ty, id, tx, p)
}

/// How a burst goes onto the socket.
#[derive(Clone, Copy, Debug)]
enum Send {
    /// One `write` with every frame.
    Whole,
    /// Odd-sized pieces with pauses, so frames straddle reads.
    Pieces,
}

/// One step of a script: connection `who` sends `frames`.
struct Burst {
    who: usize,
    frames: Vec<Frame>,
    send: Send,
}

/// Reads frames from `s` until `replies` non-event frames have arrived;
/// returns everything read, events included.
fn read_replies(s: &mut UnixStream, dec: &mut FrameDecoder, replies: usize) -> Vec<Frame> {
    let mut got = Vec::new();
    let mut n = 0;
    let mut buf = [0u8; 4096];
    while n < replies {
        let k = s.read(&mut buf).expect("reply before the timeout");
        assert!(k > 0, "daemon closed the connection");
        let mut frames = Vec::new();
        dec.feed_all(&buf[..k], &mut frames).unwrap();
        for f in frames {
            if f.type_ != XS_WATCH_EVENT {
                n += 1;
            }
            got.push(f);
        }
    }
    got
}

/// Reads whatever else arrives within a short while (events).
fn read_rest(s: &mut UnixStream, dec: &mut FrameDecoder) -> Vec<Frame> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(k) = s.read(&mut buf) {
        if k == 0 {
            break;
        }
        dec.feed_all(&buf[..k], &mut got).unwrap();
    }
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    got
}

/// Runs `script` through the daemon at `sock` and through a bare store;
/// asserts that every connection got the same frames in the same order.
fn compare(sock: &Path, conns: usize, script: &[Burst]) {
    let mut socks: Vec<UnixStream> = (0..conns)
        .map(|_| {
            let s = UnixStream::connect(sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect();
    let mut decs: Vec<FrameDecoder> = (0..conns).map(|_| FrameDecoder::new()).collect();
    let mut daemon: Vec<Vec<Frame>> = vec![Vec::new(); conns];

    let mut store = Store::new();
    let ids: Vec<_> = (0..conns).map(|_| store.connect_dom0(false)).collect();
    let mut expected: Vec<Vec<Frame>> = vec![Vec::new(); conns];

    for b in script {
        for f in &b.frames {
            store.handle(ids[b.who], f);
        }
        for (id, f) in store.take_output() {
            let i = ids.iter().position(|&c| c == id).unwrap();
            expected[i].push(f);
        }
        let bytes: Vec<u8> = b.frames.iter().flat_map(Frame::encode).collect();
        match b.send {
            Send::Whole => socks[b.who].write_all(&bytes).unwrap(),
            Send::Pieces => {
                for (k, piece) in bytes.chunks(7).enumerate() {
                    socks[b.who].write_all(piece).unwrap();
                    if k % 5 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
        }
        let got = read_replies(&mut socks[b.who], &mut decs[b.who], b.frames.len());
        daemon[b.who].extend(got);
    }
    for i in 0..conns {
        let rest = read_rest(&mut socks[i], &mut decs[i]);
        daemon[i].extend(rest);
        assert_eq!(
            daemon[i].len(),
            expected[i].len(),
            "connection {i}: frame count"
        );
        for (k, (d, e)) in daemon[i].iter().zip(&expected[i]).enumerate() {
            assert_eq!(d, e, "connection {i}, frame {k}");
        }
    }
}

#[test]
fn pipelined_bursts_get_the_stores_frames_in_order() {
    for persist in [Persist::None, Persist::Log, Persist::Sync] {
        pipelined_bursts(persist);
    }
}

fn pipelined_bursts(persist: Persist) {
    let sock = start("order", persist);
    let mut id = 0u32;
    let mut next = || {
        id += 1;
        id
    };
    let mut script = Vec::new();
    // Connection 0 watches the tree the others change; its own writes fire
    // its own watch between its replies.
    script.push(Burst {
        who: 0,
        frames: vec![
            req(XS_WATCH, next(), 0, &[b"/w", b"tok"], b""),
            req(XS_WATCH, next(), 0, &[b"/w/deep", b"d", b"1"], b""),
            req(XS_WRITE, next(), 0, &[b"/w/mine"], b"v0"),
            req(XS_READ, next(), 0, &[b"/w/mine"], b""),
            req(XS_READ, next(), 0, &[b"/w/absent"], b""),
            req(XS_READ, next(), 0, &[], b"/no-nul"),
            req(12345, next(), 0, &[b"x"], b""),
        ],
        send: Send::Whole,
    });
    // Connection 1: a mixed burst in one write.
    let mut frames = Vec::new();
    for n in 0..40u32 {
        let v = format!("value-{n}");
        frames.push(req(XS_WRITE, next(), 0, &[b"/w/a"], v.as_bytes()));
        frames.push(req(XS_READ, next(), 0, &[b"/w/a"], b""));
        if n % 7 == 0 {
            frames.push(req(
                XS_MKDIR,
                next(),
                0,
                &[format!("/w/deep/d{n}").as_bytes()],
                b"",
            ));
            frames.push(req(XS_DIRECTORY, next(), 0, &[b"/w/deep"], b""));
            frames.push(req(XS_RM, next(), 0, &[b"/w/gone"], b""));
            frames.push(req(XS_GET_PERMS, next(), 0, &[b"/w/a"], b""));
        }
    }
    script.push(Burst {
        who: 1,
        frames,
        send: Send::Whole,
    });
    // Connection 2: frames cut across reads.
    let mut frames = Vec::new();
    for n in 0..30u32 {
        frames.push(req(
            XS_WRITE,
            next(),
            0,
            &[format!("/w/b{}", n % 4).as_bytes()],
            format!("{n}").as_bytes(),
        ));
        frames.push(req(XS_READ, next(), 0, &[b"/w/a"], b""));
    }
    script.push(Burst {
        who: 2,
        frames,
        send: Send::Pieces,
    });
    // Connection 0 again, after the others' events.
    script.push(Burst {
        who: 0,
        frames: vec![
            req(XS_WRITE, next(), 0, &[b"/w/mine"], b"v1"),
            req(XS_RM, next(), 0, &[b"/w/deep"], b""),
            req(XS_UNWATCH, next(), 0, &[b"/w", b"tok"], b""),
            req(XS_WRITE, next(), 0, &[b"/w/mine"], b"v2"),
        ],
        send: Send::Pieces,
    });
    // Connection 1: more than one read's worth (16 KiB) and more than one
    // turn's share (1024 requests) in a single write.
    let mut frames = Vec::new();
    for n in 0..1500u32 {
        if n % 3 == 0 {
            let v = format!("{n:0>40}");
            frames.push(req(XS_WRITE, next(), 0, &[b"/w/big"], v.as_bytes()));
        } else {
            frames.push(req(XS_READ, next(), 0, &[b"/w/big"], b""));
        }
    }
    script.push(Burst {
        who: 1,
        frames,
        send: Send::Whole,
    });
    compare(&sock, 3, &script);
}

#[test]
fn transactions_and_watch_events_in_a_burst_keep_their_order() {
    for persist in [Persist::None, Persist::Log, Persist::Sync] {
        transactions_and_watches(persist);
    }
}

fn transactions_and_watches(persist: Persist) {
    let sock = start("tx", persist);
    // Transaction ids are chosen by the store: the same in both runs.
    let script = vec![
        Burst {
            who: 0,
            frames: vec![
                req(XS_WATCH, 1, 0, &[b"/t", b"w"], b""),
                req(XS_TRANSACTION_START, 2, 0, &[b""], b""),
            ],
            send: Send::Whole,
        },
        Burst {
            who: 0,
            frames: vec![
                req(XS_WRITE, 3, 1, &[b"/t/x"], b"in-tx"),
                req(XS_WRITE, 4, 0, &[b"/t/y"], b"outside"),
                req(XS_READ, 5, 1, &[b"/t/x"], b""),
                req(XS_READ, 6, 0, &[b"/t/x"], b""),
                req(XS_TRANSACTION_END, 7, 1, &[b"T"], b""),
                req(XS_READ, 8, 0, &[b"/t/x"], b""),
                req(XS_TRANSACTION_END, 9, 1, &[b"T"], b""),
            ],
            send: Send::Whole,
        },
        Burst {
            who: 1,
            frames: vec![
                req(XS_TRANSACTION_START, 1, 0, &[b""], b""),
                req(XS_READ, 2, 0, &[b"/t/y"], b""),
            ],
            send: Send::Whole,
        },
        Burst {
            who: 0,
            frames: vec![req(XS_WRITE, 10, 0, &[b"/t/y"], b"changed")],
            send: Send::Whole,
        },
        Burst {
            who: 1,
            frames: vec![
                req(XS_READ, 3, 1, &[b"/t/y"], b""),
                req(XS_WRITE, 4, 1, &[b"/t/z"], b"late"),
                req(XS_TRANSACTION_END, 5, 1, &[b"T"], b""),
            ],
            send: Send::Pieces,
        },
    ];
    compare(&sock, 2, &script);
}

/// A peer that sends bytes and hangs up at once (the bytes and the hang-up
/// reach the daemon together) is noticed: its guest connection's end fires
/// `@releaseDomain`.
#[test]
fn hangup_right_after_sending_is_noticed() {
    if !is_root() {
        eprintln!("SKIPPED hangup_right_after_sending_is_noticed: attaching needs a root peer");
        return;
    }
    let sock = start("hup", Persist::None);
    let mut dom0 = Client::connect_path(&sock).unwrap();
    dom0.watch("@releaseDomain", "rel").unwrap();
    assert_eq!(dom0.read_watch().unwrap().path, "@releaseDomain");
    // Keeps the daemon busy while the guest writes and hangs up, so that it
    // learns of both in one event.
    let mut busy = UnixStream::connect(&sock).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let burst: Vec<u8> = (0..3000)
        .flat_map(|n| req(XS_READ, n, 0, &[b"/tool"], b"").encode())
        .collect();
    for domid in 1..=20u16 {
        dom0.introduce(domid, 0x1000, 5).unwrap();
        let mut g = Client::connect_path(&sock).unwrap();
        g.attach_domain(domid).unwrap();
        let mut s = g.into_stream().unwrap();
        // Half a request: there is no reply whose failed write would
        // reveal the hang-up; only reading to the end does.
        let f = req(XS_READ, 1, 0, &[b"name"], b"").encode();
        busy.write_all(&burst).unwrap();
        s.write_all(&f[..10]).unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
        drop(s);
        read_replies(&mut busy, &mut FrameDecoder::new(), 3000);
        let mut seen = Vec::new();
        loop {
            let e = dom0
                .read_watch_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| {
                    panic!("domain {domid}: no @releaseDomain after hang-up ({e}); saw {seen:?}")
                });
            if e.path == format!("@releaseDomain/{domid}") || e.path == "@releaseDomain" {
                break;
            }
            seen.push(e.path);
        }
        // The event for the bare name and the one with the domid both come.
        while dom0.pending_watch_events() > 0 {
            dom0.read_watch().unwrap();
        }
    }
}

/// A guest that pipelines far past its `outstanding` quota (20) gets every
/// reply, in order: reading stops at the limit and resumes as replies go.
#[test]
fn pipelining_past_the_outstanding_limit_loses_nothing() {
    if !is_root() {
        eprintln!(
            "SKIPPED pipelining_past_the_outstanding_limit_loses_nothing: attaching needs a root peer"
        );
        return;
    }
    let sock = start("outstanding", Persist::Log);
    let mut dom0 = Client::connect_path(&sock).unwrap();
    dom0.mkdir("/local/domain/7").unwrap();
    dom0.set_perms(
        "/local/domain/7",
        &xenstore::perms::Perms::owner(7, xenstore::perms::Access::None),
    )
    .unwrap();
    dom0.introduce(7, 0x1000, 5).unwrap();
    let mut g = Client::connect_path(&sock).unwrap();
    g.attach_domain(7).unwrap();
    let mut s = g.into_stream().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut bytes = Vec::new();
    for n in 0..500u32 {
        let f = if n % 2 == 0 {
            req(XS_WRITE, n, 0, &[b"data"], format!("{n}").as_bytes())
        } else {
            req(XS_READ, n, 0, &[b"data"], b"")
        };
        bytes.extend(f.encode());
    }
    s.write_all(&bytes).unwrap();
    let mut dec = FrameDecoder::new();
    let got = read_replies(&mut s, &mut dec, 500);
    assert_eq!(got.len(), 500);
    for (n, f) in got.iter().enumerate() {
        let n = n as u32;
        assert_eq!(f.req_id, n, "reply {n} in order");
        if n % 2 == 1 {
            assert_eq!(f.type_, XS_READ);
            assert_eq!(f.payload, format!("{}", n - 1).into_bytes());
        } else {
            assert_eq!((f.type_, f.payload.as_slice()), (XS_WRITE, &b"OK\0"[..]));
        }
    }
}
