//! A stand-in for `rxen-domain`, for the toolstack's tests and benchmark only: it keeps
//! the contract of `docs/domain-process.md` without a VM. The lifecycle test binary runs
//! it when started with `--domid` (it is its own `RXEN_DOMAIN_BIN`); the example
//! `fake-domain` is the same code for the benchmark.
//!
//! `<binary> --domid N --config <runtime dir>/config.json [--paused]`
//!
//! - writes `store/*` and `console/*` in the domain's XenStore home, INTRODUCEs the domain,
//!   starts one sleeping thread per vCPU, writes `pid`, serves `control` and `console`;
//! - acts as a PV guest would on `control/shutdown` (`poweroff`, `reboot`, `halt`): it
//!   acknowledges by clearing the node, writes `shutdown` and exits 0;
//! - on its console it echoes what it is sent and, for a line `poweroff`, `reboot`,
//!   `crash` or `watchdog`, shuts down with that reason (a guest doing so itself); `die`
//!   exits 1 without a `shutdown` file (the domain process failing);
//! - serves the device requests (`disk-attach`, `disk-detach`, `nic-attach`, `nic-detach`,
//!   `cd-insert`, `cd-eject`) as rxen-domain answers them, keeping the devices it serves:
//!   an attach fails for a target that does not exist (or a bridge named `nosuchbridge`),
//!   a device number it already serves, a detach or medium change for one it does not; a
//!   disk whose target ends in `.busy` stands for one the guest keeps open (a `safe`
//!   detach fails; `auto` and `force` remove it, reporting `forced`);
//! - `FAKE_DOMAIN_FAIL=early` makes it exit 1 at once (a domain that cannot be built);
//!   `FAKE_DOMAIN_EXEC_LOG=FILE` appends `<domid> <CLOCK_MONOTONIC ns>` when it starts
//!   (for the create benchmark).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use xenstore::client::Client;
use xl_config::DomainConfig;

#[derive(Debug)]
struct State {
    paused: bool,
    affinity: Vec<Vec<u32>>,
    tids: Vec<i32>,
    memory_kib: u64,
    start_time: u64,
    /// Disks served: device number -> target.
    disks: std::collections::BTreeMap<u32, String>,
    /// Network interfaces served, by device number.
    nics: std::collections::BTreeSet<u32>,
}

struct Domain {
    domid: u32,
    dir: PathBuf,
    state: Mutex<State>,
}

impl Domain {
    fn shutdown(&self, reason: &str) -> ! {
        // As rxen-domain does: the guest's CPU time (a fixed 2.5 s here), then the reason.
        // Whole or not at all, as rxen-domain writes them: xl reads `shutdown` the
        // moment it appears, and an empty one reads as a crash.
        let _ = std::fs::write(self.dir.join("cpu_time_ns.tmp"), "2500000000\n");
        let _ = std::fs::rename(
            self.dir.join("cpu_time_ns.tmp"),
            self.dir.join("cpu_time_ns"),
        );
        let _ = std::fs::write(self.dir.join("shutdown.tmp"), format!("{reason}\n"));
        let _ = std::fs::rename(self.dir.join("shutdown.tmp"), self.dir.join("shutdown"));
        eprintln!("fake-domain {}: shutdown {reason}", self.domid);
        std::process::exit(0);
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs the fake domain process with its arguments (after the program name).
pub fn main(args: &[String]) -> ! {
    let started = monotonic_ns();
    let mut domid = None;
    let mut config = None;
    let mut paused = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--domid" => domid = it.next().and_then(|s| s.parse::<u32>().ok()),
            "--config" => config = it.next().map(PathBuf::from),
            "--paused" => paused = true,
            other => {
                eprintln!("fake-domain: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(domid), Some(config)) = (domid, config) else {
        eprintln!("fake-domain: usage: --domid N --config FILE [--paused]");
        std::process::exit(2);
    };
    if let Some(log) = std::env::var_os("FAKE_DOMAIN_EXEC_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("exec log");
        writeln!(f, "{domid} {started}").expect("exec log");
    }
    if std::env::var("FAKE_DOMAIN_FAIL").as_deref() == Ok("early") {
        eprintln!("fake-domain {domid}: failing on purpose");
        std::process::exit(1);
    }
    let text = std::fs::read_to_string(&config).expect("config.json");
    let cfg = DomainConfig::from_json(&text).expect("config.json parses");
    let dir = config.parent().expect("runtime dir").to_owned();

    let mut xs = Client::connect().expect("xenstored");
    let home = format!("/local/domain/{domid}");
    for (k, v) in [
        ("store/ring-ref", "1"),
        ("store/port", "1"),
        ("console/ring-ref", "2"),
        ("console/port", "2"),
        ("console/type", "xenconsoled"),
    ] {
        xs.write(&format!("{home}/{k}"), v).expect("xenstore write");
    }
    xs.introduce(domid as u16, 0xfeffc, 1).expect("introduce");

    let vcpus = cfg.b_info.max_vcpus.max(1);
    let mut tids = Vec::new();
    for _ in 0..vcpus {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
            let tid: i32 = link
                .file_name()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .expect("tid");
            tx.send(tid).expect("send tid");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        });
        tids.push(rx.recv().expect("vcpu thread"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let nr_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let d = Arc::new(Domain {
        domid,
        dir: dir.clone(),
        state: Mutex::new(State {
            paused,
            affinity: vec![(0..nr_cpus).collect(); vcpus as usize],
            tids,
            memory_kib: cfg.b_info.target_memkb.unwrap_or(32768),
            start_time: now,
            disks: cfg
                .disks
                .iter()
                .filter_map(|d| {
                    let devid = backends::blk::xenbus::vdev_to_devid(d.vdev.as_deref()?)?;
                    Some((devid, d.pdev_path.clone().unwrap_or_default()))
                })
                .collect(),
            nics: cfg.nics.iter().map(|n| n.devid.unsigned_abs()).collect(),
        }),
    });

    let control = bind(&dir.join("control"));
    let console = bind(&dir.join("console"));
    std::fs::write(dir.join("pid"), format!("{}\n", std::process::id())).expect("pid file");

    let dc = d.clone();
    std::thread::spawn(move || serve(control, dc, control_conn));
    let dk = d.clone();
    std::thread::spawn(move || serve(console, dk, console_conn));

    // The guest's side of control/shutdown.
    let path = format!("{home}/control/shutdown");
    xs.watch(&path, "shutdown").expect("watch");
    loop {
        let ev = xs.read_watch().expect("watch event");
        if ev.token != "shutdown" {
            continue;
        }
        let v = xs.try_read(&path).ok().flatten().unwrap_or_default();
        let reason = match v.as_slice() {
            b"poweroff" | b"halt" => "poweroff",
            b"reboot" => "reboot",
            _ => continue,
        };
        let _ = xs.write(&path, "");
        d.shutdown(reason);
    }
}

fn bind(path: &Path) -> UnixListener {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).expect("bind")
}

fn serve(l: UnixListener, d: Arc<Domain>, f: fn(UnixStream, &Domain)) {
    for s in l.incoming().flatten() {
        let d = d.clone();
        std::thread::spawn(move || f(s, &d));
    }
}

fn thread_cpu_ns(tid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let f: Vec<u64> = s
        .rsplit_once(')')
        .map(|(_, r)| {
            r.split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (11 and 12 after the state).
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000_000
}

fn control_conn(s: UnixStream, d: &Domain) {
    let mut out = s.try_clone().expect("clone");
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        let req: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let mut st = d.state.lock().expect("state");
        let reply = match req.get("op").and_then(Value::as_str) {
            Some("info") => json!({
                "ok": true,
                "state": if st.paused { "paused" } else { "running" },
                "reason": null,
                "vcpus": st.tids.iter().enumerate().map(|(i, t)| json!({
                    "id": i,
                    "online": true,
                    "cpu_time_ns": thread_cpu_ns(*t),
                    "affinity": st.affinity[i],
                    "tid": t,
                })).collect::<Vec<_>>(),
                "memory_kib": st.memory_kib,
                "start_time": st.start_time,
            }),
            Some("pause") => {
                st.paused = true;
                json!({"ok": true})
            }
            Some("unpause") => {
                st.paused = false;
                json!({"ok": true})
            }
            Some("vcpu-pin") => {
                let v = req.get("vcpu").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
                let cpus: Vec<u32> = req
                    .get("cpus")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_u64())
                            .map(|x| x as u32)
                            .collect()
                    })
                    .unwrap_or_default();
                if v < st.affinity.len() && !cpus.is_empty() {
                    st.affinity[v] = cpus;
                    json!({"ok": true})
                } else {
                    json!({"ok": false, "error": "bad vcpu-pin"})
                }
            }
            Some(
                op @ ("disk-attach" | "disk-detach" | "nic-attach" | "nic-detach" | "cd-insert"
                | "cd-eject"),
            ) => device_op(&mut st, op, &req),
            Some("destroy") => {
                let _ = writeln!(out, "{}", json!({"ok": true}));
                eprintln!("fake-domain {}: destroyed", d.domid);
                std::process::exit(0);
            }
            _ => json!({"ok": false, "error": format!("unknown request {line}")}),
        };
        drop(st);
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

fn console_conn(mut s: UnixStream, d: &Domain) {
    let _ = write!(s, "fake-domain {} console\r\n# ", d.domid);
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                let cmd = String::from_utf8_lossy(&line).trim().to_owned();
                line.clear();
                let _ = write!(s, "\r\n");
                match cmd.as_str() {
                    "poweroff" | "reboot" | "crash" | "watchdog" => d.shutdown(&cmd),
                    "die" => {
                        eprintln!("fake-domain {}: dying without a reason", d.domid);
                        std::process::exit(1);
                    }
                    "" => {}
                    other => {
                        let _ = write!(s, "you said: {other}\r\n");
                    }
                }
                let _ = write!(s, "# ");
            } else {
                line.push(b);
                let _ = s.write_all(&[b]);
            }
        }
    }
}

/// The device requests, as rxen-domain answers them (see the module documentation).
fn device_op(st: &mut State, op: &str, req: &Value) -> Value {
    let fail = |msg: String| json!({"ok": false, "error": msg});
    let devid_of = |req: &Value| req.get("devid").and_then(Value::as_u64).map(|d| d as u32);
    let disk = req.get("disk");
    let vdev_devid = disk
        .and_then(|d| d.get("vdev"))
        .and_then(Value::as_str)
        .and_then(backends::blk::xenbus::vdev_to_devid);
    let target = disk
        .and_then(|d| d.get("pdev_path"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let missing = !target.is_empty() && !Path::new(&target).exists();
    match op {
        "disk-attach" => {
            let Some(devid) = vdev_devid else {
                return fail("disk: not a virtual device name".into());
            };
            if st.disks.contains_key(&devid) {
                return fail(format!("disk {devid}: served already"));
            }
            if missing {
                return fail(format!(
                    "disk {devid}: opening its target failed: {target}: No such file or directory (os error 2)"
                ));
            }
            st.disks.insert(devid, target);
            json!({"ok": true})
        }
        "disk-detach" => {
            let Some(devid) = devid_of(req) else {
                return fail("bad request".into());
            };
            let Some(t) = st.disks.get(&devid) else {
                return fail(format!("the domain has no disk with device number {devid}"));
            };
            let busy = t.ends_with(".busy");
            let mode = req.get("mode").and_then(Value::as_str).unwrap_or("auto");
            if busy && mode == "safe" {
                return fail(format!(
                    "disk {devid}: the guest did not close it within 10 s (is it mounted or open?); it stays attached"
                ));
            }
            st.disks.remove(&devid);
            json!({"ok": true, "forced": busy || mode == "force"})
        }
        "nic-attach" => {
            let nic = req.get("nic").cloned().unwrap_or(Value::Null);
            let Some(devid) = nic.get("devid").and_then(Value::as_u64).map(|d| d as u32) else {
                return fail("vif: no device number given".into());
            };
            if nic.get("bridge").and_then(Value::as_str) == Some("nosuchbridge") {
                return fail(format!(
                    "vif {devid}: the hotplug step failed: bridge nosuchbridge does not exist"
                ));
            }
            if !st.nics.insert(devid) {
                return fail(format!("vif {devid}: served already"));
            }
            json!({"ok": true})
        }
        "nic-detach" => match devid_of(req) {
            Some(devid) if st.nics.remove(&devid) => json!({"ok": true, "forced": false}),
            _ => fail("the domain has no network interface with that device number".into()),
        },
        "cd-insert" | "cd-eject" => {
            let devid = if op == "cd-eject" {
                devid_of(req)
            } else {
                vdev_devid
            };
            let Some(t) = devid.and_then(|d| st.disks.get_mut(&d)) else {
                return fail("the domain has no such disk".into());
            };
            if missing {
                return fail(format!("opening {target} failed"));
            }
            *t = target;
            json!({"ok": true})
        }
        _ => fail(format!("unknown op {op}")),
    }
}
