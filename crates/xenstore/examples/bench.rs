//! XenStore READ/WRITE throughput and latency next to a unix-socket echo
//! server measured in the same run (the best any request/reply protocol
//! over one socket round trip can do here).
//!
//! `cargo run --release -p xenstore --example bench -- [ops-per-client] [rounds] [ops] [clients]`
//!
//! `ops` is `read,write` (default) or one of them, `clients` a list such as
//! `1,32` (default): to profile one case.
//!
//! The machine may be shared, and a round trip's cost depends on where the
//! scheduler puts the client and server threads, so one long measurement
//! of each kind can land in different conditions. The bench therefore keeps
//! the same client threads, each connected to both servers, and runs
//! `rounds` rounds (default 21) of short phases: echo, READ and WRITE back
//! to back (the order rotates from round to round), `ops-per-client`
//! round trips each (default 4,000; an eighth of that with 32 clients).
//! Each round yields one ratio per operation against that round's echo; the
//! bench prints the median over the rounds of each figure and of the ratio,
//! and the spread (min-max) of the ratios.
//!
//! xenstored runs as deployed: journaling to its state directory, with a
//! toolstack connection holding a few watches (none on the benchmark's
//! nodes). Each client reads or writes its own node.
//!
//! Besides the clients' view (ops/s, p50/p99) it reports the CPU time the
//! server thread (echo or xenstored) spent per operation, read from
//! `/proc/self/task/<tid>/schedstat`: a measure of the daemon's own cost that
//! load on the other core disturbs less.

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};
use xenstore::client::Client;
use xenstore::persist::Persister;
use xenstore::server::{self, Server};

/// The calling thread's kernel id.
fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// CPU time a thread of this process has used so far.
fn thread_cpu(tid: i32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// A single-threaded mio echo server, shaped like xenstored's loop.
fn echo_server(path: &Path, tid: Arc<AtomicI32>) {
    let std_l = server::bind(path).unwrap();
    std::thread::Builder::new()
        .name("echo-server".into())
        .spawn(move || {
            tid.store(gettid(), Ordering::SeqCst);
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
                                            Err(e)
                                                if e.kind() == std::io::ErrorKind::WouldBlock =>
                                            {
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
        })
        .unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Echo,
    Read,
    Write,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Read => "READ",
            Kind::Write => "WRITE",
        }
    }
}

#[derive(Clone, Copy)]
struct Measured {
    ops_per_s: f64,
    p50: Duration,
    p99: Duration,
    /// Server-thread CPU per operation.
    cpu_per_op: Duration,
}

struct Servers {
    echo: PathBuf,
    xs: PathBuf,
    echo_tid: Arc<AtomicI32>,
    xs_tid: Arc<AtomicI32>,
}

/// The phases of round `r`: every kind once, in an order that rotates
/// from round to round.
fn phases(kinds: &[Kind], r: usize) -> Vec<Kind> {
    (0..kinds.len())
        .map(|k| kinds[(k + r) % kinds.len()])
        .collect()
}

/// Measures `rounds` rounds of `kinds` with `clients` client threads, each
/// doing `ops` round trips per phase. The same threads, each connected to
/// both servers, run every phase (a barrier between phases), so echo and
/// xenstored see the same threads placed the same way, moments apart.
fn measure(
    kinds: &[Kind],
    clients: usize,
    ops: usize,
    rounds: usize,
    sv: &Servers,
) -> Vec<HashMap<Kind, Measured>> {
    let barrier = Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let echo = sv.echo.clone();
            let xs = sv.xs.clone();
            let barrier = barrier.clone();
            let kinds = kinds.to_vec();
            std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || {
                    let key = format!("/bench/c{i}");
                    let mut e = UnixStream::connect(&echo).unwrap();
                    // A READ request's size: header plus path.
                    let msg = xenstore::wire::Frame::new(2, 1, 0, format!("{key}\0").into_bytes())
                        .encode();
                    let mut back = vec![0u8; msg.len()];
                    let mut c = Client::connect_path(&xs).unwrap();
                    // Values of 16 bytes, before and after each WRITE.
                    c.write(&key, "0123456789abcdef").unwrap();
                    let mut n = 0u64;
                    // Latencies per round and phase.
                    let mut lat: Vec<HashMap<Kind, Vec<Duration>>> = Vec::new();
                    for r in 0..rounds {
                        let mut m = HashMap::new();
                        for kind in phases(&kinds, r) {
                            let mut l = Vec::with_capacity(ops);
                            barrier.wait();
                            for _ in 0..ops {
                                let t = Instant::now();
                                match kind {
                                    Kind::Echo => {
                                        e.write_all(&msg).unwrap();
                                        e.read_exact(&mut back).unwrap();
                                    }
                                    Kind::Read => {
                                        c.read(&key).unwrap();
                                    }
                                    Kind::Write => {
                                        c.write(&key, format!("value-{n:010}")).unwrap();
                                        n += 1;
                                    }
                                }
                                l.push(t.elapsed());
                            }
                            barrier.wait();
                            m.insert(kind, l);
                        }
                        lat.push(m);
                    }
                    lat
                })
                .unwrap()
        })
        .collect();
    // Per round and phase: wall time and the server thread's CPU time.
    let mut spans: Vec<HashMap<Kind, (Duration, Duration)>> = Vec::new();
    for r in 0..rounds {
        let mut m = HashMap::new();
        for kind in phases(kinds, r) {
            let tid = if kind == Kind::Echo {
                sv.echo_tid.load(Ordering::SeqCst)
            } else {
                sv.xs_tid.load(Ordering::SeqCst)
            };
            barrier.wait();
            let cpu0 = thread_cpu(tid);
            let t0 = Instant::now();
            barrier.wait();
            let wall = t0.elapsed();
            m.insert(kind, (wall, thread_cpu(tid).saturating_sub(cpu0)));
        }
        spans.push(m);
    }
    let lats: Vec<Vec<HashMap<Kind, Vec<Duration>>>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    (0..rounds)
        .map(|r| {
            kinds
                .iter()
                .map(|&kind| {
                    let mut all: Vec<Duration> = lats
                        .iter()
                        .flat_map(|l| l[r][&kind].iter().copied())
                        .collect();
                    all.sort_unstable();
                    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
                    let (wall, cpu) = spans[r][&kind];
                    (
                        kind,
                        Measured {
                            ops_per_s: all.len() as f64 / wall.as_secs_f64(),
                            p50: pct(0.50),
                            p99: pct(0.99),
                            cpu_per_op: cpu / all.len() as u32,
                        },
                    )
                })
                .collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_000)
        .max(8);
    let rounds: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(21)
        .max(1);
    // Which operations to measure next to echo (for profiling one of them).
    let only = args.next().unwrap_or_else(|| "read,write".into());
    let mut kinds = vec![Kind::Echo];
    for k in only.split(',') {
        match k {
            "read" => kinds.push(Kind::Read),
            "write" => kinds.push(Kind::Write),
            _ => panic!("unknown operation {k:?} (read, write)"),
        }
    }
    let clients_list: Vec<usize> = match args.next() {
        Some(c) => c
            .split(',')
            .map(|n| n.parse().expect("client counts"))
            .collect(),
        None => vec![1, 32],
    };
    let dir: PathBuf = std::env::temp_dir().join(format!("xs-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sv = Servers {
        echo: dir.join("echo"),
        xs: dir.join("xenstored"),
        echo_tid: Arc::new(AtomicI32::new(0)),
        xs_tid: Arc::new(AtomicI32::new(0)),
    };
    echo_server(&sv.echo, sv.echo_tid.clone());
    // xenstored as deployed: journaling to disk before each reply batch.
    let (p, store) = Persister::open(&dir.join("state"), false).unwrap();
    let l = server::bind(&sv.xs).unwrap();
    let xs_tid = sv.xs_tid.clone();
    std::thread::Builder::new()
        .name("xenstored".into())
        .spawn(move || {
            xs_tid.store(gettid(), Ordering::SeqCst);
            let mut s = Server::new(l, store, Some(p), None).unwrap();
            s.run().unwrap();
        })
        .unwrap();
    while sv.echo_tid.load(Ordering::SeqCst) == 0 || sv.xs_tid.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A dom0 toolstack always has watches registered (domain arrivals and
    // departures, its domains' nodes): keep some, none of which the
    // benchmark's nodes touch, so each WRITE pays for matching them as it
    // would when deployed.
    let mut toolstack = Client::connect_path(&sv.xs).unwrap();
    for (path, token) in [
        ("@introduceDomain", "intro"),
        ("@releaseDomain", "release"),
        ("/local/domain", "domains"),
        ("/vm", "vms"),
    ] {
        toolstack.watch(path, token).unwrap();
    }
    println!(
        "unix-socket round trips, {ops} per client (32 clients: {} per client), \
         {rounds} rounds of echo/READ/WRITE phases back to back",
        ops / 8
    );
    println!(
        "{:<6} {:>7} {:>10} {:>8} {:>8} {:>12} {:>8} {:>14}",
        "op", "clients", "ops/s", "p50 us", "p99 us", "srv cpu us/op", "ratio", "ratio min-max"
    );
    for &clients in &clients_list {
        let n = if clients == 1 { ops } else { ops / 8 };
        let per_round = measure(&kinds, clients, n, rounds, &sv);
        for &kind in &kinds {
            let ratios: Vec<f64> = per_round
                .iter()
                .map(|m| m[&kind].ops_per_s / m[&Kind::Echo].ops_per_s)
                .collect();
            let ratio = median(ratios.clone());
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(0.0, f64::max);
            let med = |f: &dyn Fn(&Measured) -> f64| {
                median(per_round.iter().map(|m| f(&m[&kind])).collect())
            };
            let us = 1e6;
            let ops_s = med(&|m| m.ops_per_s);
            let p50 = med(&|m| m.p50.as_secs_f64() * us);
            let p99 = med(&|m| m.p99.as_secs_f64() * us);
            let cpu = med(&|m| m.cpu_per_op.as_secs_f64() * us);
            println!(
                "{:<6} {:>7} {:>10.0} {:>8.1} {:>8.1} {:>12.2} {:>8.2} {:>14}",
                kind.name(),
                clients,
                ops_s,
                p50,
                p99,
                cpu,
                ratio,
                format!("{lo:.2}-{hi:.2}"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0);
}
