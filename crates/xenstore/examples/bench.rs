//! XenStore READ/WRITE throughput and latency next to a unix-socket echo
//! server measured in the same run (the best any request/reply protocol
//! over one socket round trip can do here).
//!
//! `cargo run --release -p xenstore --example bench -- [ops-per-client]`

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xenstore::client::Client;
use xenstore::persist::Persister;
use xenstore::server::{self, Server};

/// A single-threaded mio echo server, shaped like xenstored's loop.
fn echo_server(path: &Path) {
    let std_l = server::bind(path).unwrap();
    std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        let mut l = UnixListener::from_std(std_l);
        poll.registry()
            .register(&mut l, Token(0), Interest::READABLE)
            .unwrap();
        let mut conns: HashMap<Token, mio::net::UnixStream> = HashMap::new();
        let mut next = 1;
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 16384];
        loop {
            poll.poll(&mut events, None).unwrap();
            for ev in events.iter() {
                if ev.token() == Token(0) {
                    while let Ok((mut s, _)) = l.accept() {
                        let t = Token(next);
                        next += 1;
                        poll.registry()
                            .register(&mut s, t, Interest::READABLE)
                            .unwrap();
                        conns.insert(t, s);
                    }
                    continue;
                }
                let mut dead = false;
                if let Some(s) = conns.get_mut(&ev.token()) {
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => {
                                dead = true;
                                break;
                            }
                            Ok(n) => {
                                let mut off = 0;
                                while off < n {
                                    match s.write(&buf[off..n]) {
                                        Ok(k) => off += k,
                                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                            std::thread::yield_now()
                                        }
                                        Err(_) => {
                                            dead = true;
                                            break;
                                        }
                                    }
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                dead = true;
                                break;
                            }
                        }
                    }
                }
                if dead {
                    conns.remove(&ev.token());
                }
            }
        }
    });
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Echo,
    Read,
    Write,
}

struct Result_ {
    ops_per_s: f64,
    p50: Duration,
    p99: Duration,
}

fn run(kind: Kind, clients: usize, ops: usize, echo: &Path, xs: &Path) -> Result_ {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let echo = echo.to_path_buf();
            let xs = xs.to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(ops);
                let key = format!("/bench/c{i}");
                match kind {
                    Kind::Echo => {
                        let mut s = UnixStream::connect(&echo).unwrap();
                        // A READ request's size: header plus path.
                        let msg =
                            xenstore::wire::Frame::new(2, 1, 0, format!("{key}\0").into_bytes())
                                .encode();
                        let mut back = vec![0u8; msg.len()];
                        barrier.wait();
                        for _ in 0..ops {
                            let t = Instant::now();
                            s.write_all(&msg).unwrap();
                            s.read_exact(&mut back).unwrap();
                            lat.push(t.elapsed());
                        }
                    }
                    Kind::Read | Kind::Write => {
                        let mut c = Client::connect_path(&xs).unwrap();
                        c.write(&key, "0123456789abcdef").unwrap();
                        barrier.wait();
                        for n in 0..ops {
                            let t = Instant::now();
                            if kind == Kind::Read {
                                c.read(&key).unwrap();
                            } else {
                                c.write(&key, format!("value-{n:08}")).unwrap();
                            }
                            lat.push(t.elapsed());
                        }
                    }
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    let mut all: Vec<Duration> = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Result_ {
        ops_per_s: all.len() as f64 / secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let ops: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir: PathBuf = std::env::temp_dir().join(format!("xs-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let echo = dir.join("echo");
    let xs = dir.join("xenstored");
    echo_server(&echo);
    // xenstored as deployed: journaling to disk before each reply batch.
    let (p, store) = Persister::open(&dir.join("state"), false).unwrap();
    let l = server::bind(&xs).unwrap();
    std::thread::spawn(move || {
        let mut s = Server::new(l, store, Some(p), None).unwrap();
        s.run().unwrap();
    });
    println!(
        "unix-socket round trips, {ops} per client (32 clients: {} per client)",
        ops / 8
    );
    println!(
        "{:<7} {:>7} {:>12} {:>10} {:>10} {:>14}",
        "op", "clients", "ops/s", "p50 us", "p99 us", "ratio vs echo"
    );
    for clients in [1usize, 32] {
        let n = if clients == 1 { ops } else { ops / 8 };
        let e = run(Kind::Echo, clients, n, &echo, &xs);
        for (name, kind) in [
            ("echo", Kind::Echo),
            ("READ", Kind::Read),
            ("WRITE", Kind::Write),
        ] {
            let r = if kind == Kind::Echo {
                Result_ {
                    ops_per_s: e.ops_per_s,
                    p50: e.p50,
                    p99: e.p99,
                }
            } else {
                run(kind, clients, n, &echo, &xs)
            };
            println!(
                "{:<7} {:>7} {:>12.0} {:>10.1} {:>10.1} {:>14.2}",
                name,
                clients,
                r.ops_per_s,
                r.p50.as_secs_f64() * 1e6,
                r.p99.as_secs_f64() * 1e6,
                r.ops_per_s / e.ops_per_s
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0);
}
