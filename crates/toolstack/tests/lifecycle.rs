//! The domain lifecycle end to end, without a guest: the real `xl` binary against a real
//! xenstored (the `xenstore` crate's server, on a socket of its own), with the test-only
//! domain process `examples/fake-domain.rs` standing in for `rxen-domain`
//! (`RXEN_DOMAIN_BIN`). Every test has its own xenstored, runtime and log directories.
//!
//! What is checked is what a user sees: `xl`'s output and exit status, the XenStore
//! nodes, the runtime directory and the processes.
//!
//! This binary has its own small harness (`harness = false`): started with `--domid` it
//! is the fake domain process, so `xl` can start it as `RXEN_DOMAIN_BIN`. Otherwise it
//! runs the tests (all, or those whose name contains the first argument), in parallel,
//! and prints libtest's summary line.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xenstore::client::Client;

#[path = "support/fake_domain.rs"]
mod fake_domain;

fn fake_domain_bin() -> PathBuf {
    std::env::current_exe().unwrap()
}

struct Env {
    dir: PathBuf,
    socket: PathBuf,
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("rxen-xl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("xenstored.sock");
        let listener = xenstore::server::bind(&socket).unwrap();
        std::thread::spawn(move || {
            let mut server =
                xenstore::server::Server::new(listener, xenstore::Store::new(), None, None)
                    .unwrap();
            let _ = server.run();
        });
        Env { dir, socket }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xl"));
        c.args(args)
            .current_dir(&self.dir)
            .env("XENSTORED_PATH", &self.socket)
            .env("RXEN_RUN_DIR", self.run_dir())
            .env("RXEN_LOG_DIR", self.dir.join("log"))
            .env("RXEN_DOMAIN_BIN", fake_domain_bin())
            .env("RXEN_CONFIG_DIR", &self.dir)
            .env_remove("RUST_LOG");
        c
    }

    fn xl(&self, args: &[&str]) -> Run {
        self.xl_env(args, &[])
    }

    fn xl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.stdin(Stdio::null()).output().unwrap();
        Run {
            status: out.status.code().expect("xl exits"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.xl(args);
        assert_eq!(r.status, 0, "xl {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    fn xs(&self) -> Client {
        Client::connect_path(&self.socket).unwrap()
    }

    fn read(&self, path: &str) -> Option<String> {
        self.xs()
            .try_read(path)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn config(&self, name: &str, extra: &str) -> String {
        let path = self.dir.join(format!("{name}.cfg"));
        std::fs::write(
            &path,
            format!(
                "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"/boot/vmlinuz\"\nmemory = 64\nvcpus = 2\n{extra}"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// `xl list`'s line for a domain name, split in columns.
    fn list_line(&self, name: &str) -> Option<Vec<String>> {
        let out = self.ok(&["list"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
    }

    /// Polls `f` until it holds. The limit only turns a hang into a failure: a
    /// loaded CI machine has taken more than 20 s to restart a fake domain.
    fn wait_until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn domain_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.run_dir().join("domain"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn pid(&self, domid: u32) -> i32 {
        std::fs::read_to_string(self.run_dir().join(format!("domain/{domid}/pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for d in self.domain_dirs() {
            let _ = self.xl(&["destroy", &d]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The domain's console socket, once the domain process has it up.
fn console(env: &Env, domid: u32) -> std::os::unix::net::UnixStream {
    let path = env.run_dir().join(format!("domain/{domid}/console"));
    let mut s = None;
    env.wait_until("the console", || {
        s = std::os::unix::net::UnixStream::connect(&path).ok();
        s.is_some()
    });
    s.unwrap()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z ") && !s.contains(") X "))
        .unwrap_or(false)
}

fn create_list_pause_unpause_destroy() {
    let env = Env::new("basic");
    let cfg = env.config("demo", "");
    let r = env.xl(&["create", &cfg]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, format!("Parsing config from {cfg}\n"));

    let out = env.ok(&["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    );
    assert!(lines[1].starts_with("Domain-0 "), "{out}");
    assert!(lines[1].contains("     r-----  "), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let demo: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&demo[..5], ["demo", "1", "64", "2", "-b----"], "{out}");
    assert_eq!(&lines[2][..46], format!("{:<40} {:5}", "demo", 1));

    // XenStore, as libxl lays it out.
    let uuid = env.read("/local/domain/1/vm").unwrap();
    assert!(uuid.starts_with("/vm/"), "{uuid}");
    for (path, want) in [
        ("/local/domain/0/name", "Domain-0"),
        ("/local/domain/0/domid", "0"),
        ("/local/domain/1/name", "demo"),
        ("/local/domain/1/domid", "1"),
        ("/local/domain/1/memory/target", "65536"),
        ("/local/domain/1/memory/static-max", "65536"),
        ("/local/domain/1/memory/videoram", "0"),
        ("/local/domain/1/cpu/0/availability", "online"),
        ("/local/domain/1/cpu/1/availability", "online"),
        ("/local/domain/1/control/shutdown", ""),
        (
            "/local/domain/1/control/platform-feature-xs_reset_watches",
            "1",
        ),
        ("/libxl/1/type", "pvh"),
        (&format!("{uuid}/name"), "demo"),
        (&format!("{uuid}/uuid"), &uuid[4..]),
    ] {
        assert_eq!(env.read(path).as_deref(), Some(want), "{path}");
    }
    let mut xs = env.xs();
    let perms = |xs: &mut Client, p: &str| {
        xs.get_perms(p)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(perms(&mut xs, "/local/domain/1"), "n0 r1");
    assert_eq!(perms(&mut xs, "/local/domain/1/name"), "n0 r1");
    assert_eq!(perms(&mut xs, "/local/domain/1/control"), "n0 r1");
    assert_eq!(perms(&mut xs, "/local/domain/1/control/shutdown"), "n1");
    assert_eq!(perms(&mut xs, "/local/domain/1/data"), "n1");
    assert_eq!(perms(&mut xs, &uuid), "n0 r1");
    assert_eq!(perms(&mut xs, "/libxl/1"), "n0");
    let start: f64 = env
        .read(&format!("{uuid}/start_time"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(start > 1.6e9);

    // The effective configuration: a uuid chosen at creation.
    let long = env.ok(&["list", "-l", "demo"]);
    let v: serde_json::Value = serde_json::from_str(&long).unwrap();
    assert_eq!(v[0]["domid"], 1);
    assert_eq!(v[0]["config"]["c_info"]["name"], "demo");
    assert_eq!(v[0]["config"]["c_info"]["uuid"].as_str(), Some(&uuid[4..]));

    env.ok(&["pause", "demo"]);
    assert_eq!(env.list_line("demo").unwrap()[4], "--p---");
    env.ok(&["unpause", "1"]);
    assert_eq!(env.list_line("demo").unwrap()[4], "-b----");

    let pid = env.pid(1);
    assert!(alive(pid));
    env.ok(&["destroy", "demo"]);
    assert!(env.list_line("demo").is_none());
    assert_eq!(env.domain_dirs(), Vec::<String>::new());
    assert_eq!(env.read("/local/domain/1"), None);
    assert_eq!(env.read(&uuid), None);
    assert_eq!(env.read("/libxl/1"), None);
    assert!(!alive(pid), "the domain process is gone");
    // Domain-0 stays.
    assert_eq!(
        env.read("/local/domain/0/name").as_deref(),
        Some("Domain-0")
    );

    // Ids are not reused at once: the next domain is 2, as on Xen.
    env.ok(&["create", "-q", &cfg]);
    assert_eq!(env.list_line("demo").unwrap()[1], "2");
    env.ok(&["destroy", "2"]);
}

fn disks_are_laid_out_as_libxl_does() {
    let env = Env::new("disks");
    let cfg = env.config(
        "disky",
        "disk = ['/img/a.img,raw,xvda,w', 'format=qcow2,vdev=xvdb,access=r,target=/img/b.qcow2', ',,hdc:cdrom,r']\n",
    );
    env.ok(&["create", &cfg]);
    let be = "/local/domain/0/backend/vbd/1";
    let fe = "/local/domain/1/device/vbd";
    for (path, want) in [
        (
            format!("{be}/51712/frontend"),
            "/local/domain/1/device/vbd/51712",
        ),
        (format!("{be}/51712/frontend-id"), "1"),
        (format!("{be}/51712/online"), "1"),
        (format!("{be}/51712/state"), "1"),
        (format!("{be}/51712/params"), "/img/a.img"),
        (format!("{be}/51712/mode"), "w"),
        (format!("{be}/51712/device-type"), "disk"),
        (format!("{be}/51712/dev"), "xvda"),
        (format!("{be}/51728/params"), "/img/b.qcow2"),
        (format!("{be}/51728/mode"), "r"),
        (format!("{be}/51728/type"), "qdisk"),
        (format!("{be}/5632/device-type"), "cdrom"),
        (format!("{be}/5632/removable"), "1"),
        (format!("{be}/5632/params"), ""),
        (
            format!("{fe}/51712/backend"),
            "/local/domain/0/backend/vbd/1/51712",
        ),
        (format!("{fe}/51712/backend-id"), "0"),
        (format!("{fe}/51712/state"), "1"),
        (format!("{fe}/51712/virtual-device"), "51712"),
        // A PV disk to the PVH guest's blkfront (which drops `cdrom` vbds).
        (format!("{fe}/5632/device-type"), "disk"),
    ] {
        assert_eq!(env.read(&path).as_deref(), Some(want), "{path}");
    }
    let mut xs = env.xs();
    let perms = |xs: &mut Client, p: &str| {
        xs.get_perms(p)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The backend directory is dom0's, the frontend directory the guest's.
    assert_eq!(perms(&mut xs, &format!("{be}/51712")), "n0 r1");
    assert_eq!(perms(&mut xs, &format!("{be}/51712/state")), "n0 r1");
    assert_eq!(perms(&mut xs, &format!("{fe}/51712")), "n1 r0");
    assert_eq!(perms(&mut xs, &format!("{fe}/51712/state")), "n1 r0");
    env.ok(&["destroy", "disky"]);
    assert_eq!(env.read(be), None, "backend nodes removed");
}

fn vifs_are_laid_out_as_libxl_does() {
    let env = Env::new("vifs");
    let cfg = env.config(
        "netty",
        "uuid = '5b0e3a2c-7a1f-4c61-9d4e-0123456789ab'\nvif = ['', 'mac=00:16:3e:0a:0b:0c,script=vif-route,ip=169.254.9.2,rate=1MB/s', 'devid=7,bridge=br-lab,mtu=9000']\n",
    );
    env.ok(&["create", &cfg]);
    let be = "/local/domain/0/backend/vif/1";
    let fe = "/local/domain/1/device/vif";
    for (path, want) in [
        (format!("{be}/0/frontend"), "/local/domain/1/device/vif/0"),
        (format!("{be}/0/frontend-id"), "1"),
        (format!("{be}/0/online"), "1"),
        (format!("{be}/0/state"), "1"),
        (format!("{be}/0/script"), "/etc/xen/scripts/vif-bridge"),
        (format!("{be}/0/bridge"), "xenbr0"),
        // backends::net::mac's stable address for this uuid and devid 0.
        (format!("{be}/0/mac"), "00:16:3e:59:02:56"),
        (format!("{be}/0/handle"), "0"),
        (format!("{be}/0/type"), "vif"),
        (format!("{be}/0/hotplug-status"), ""),
        (format!("{be}/1/script"), "/etc/xen/scripts/vif-route"),
        (format!("{be}/1/ip"), "169.254.9.2"),
        (format!("{be}/1/mac"), "00:16:3e:0a:0b:0c"),
        (format!("{be}/1/rate"), "50000,50000"),
        (format!("{be}/7/bridge"), "br-lab"),
        (format!("{be}/7/mtu"), "9000"),
        (format!("{fe}/0/backend"), "/local/domain/0/backend/vif/1/0"),
        (format!("{fe}/0/backend-id"), "0"),
        (format!("{fe}/0/state"), "1"),
        (format!("{fe}/0/handle"), "0"),
        (format!("{fe}/0/mac"), "00:16:3e:59:02:56"),
        (format!("{fe}/0/mtu"), "1500"),
        (format!("{fe}/7/mtu"), "9000"),
        (format!("{fe}/7/handle"), "7"),
    ] {
        assert_eq!(env.read(&path).as_deref(), Some(want), "{path}");
    }
    assert_eq!(env.read(&format!("{be}/0/rate")), None);
    let mut xs = env.xs();
    let perms = |xs: &mut Client, p: &str| {
        xs.get_perms(p)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    // xl network-list, before the guest's netfront has written anything and after.
    let list = env.ok(&["network-list", "netty"]);
    let lines: Vec<&str> = list.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path",
            "0   0  00:16:3e:59:02:56     0     1     -1    -1/-1          /local/domain/0/backend/vif/1/0",
            "1   0  00:16:3e:0a:0b:0c     1     1     -1    -1/-1          /local/domain/0/backend/vif/1/1",
            "7   0  00:16:3e:79:12:52     7     1     -1    -1/-1          /local/domain/0/backend/vif/1/7",
        ]
    );
    for (k, v) in [
        ("state", "4"),
        ("event-channel", "9"),
        ("tx-ring-ref", "768"),
        ("rx-ring-ref", "769"),
    ] {
        xs.write(&format!("{fe}/0/{k}"), v).unwrap();
    }
    let list = env.ok(&["network-list", "1"]);
    assert_eq!(
        list.lines().nth(1).map(str::trim_end),
        Some(
            "0   0  00:16:3e:59:02:56     0     4      9   768/769         /local/domain/0/backend/vif/1/0"
        )
    );
    assert_eq!(perms(&mut xs, &format!("{be}/0")), "n0 r1");
    assert_eq!(perms(&mut xs, &format!("{be}/0/mac")), "n0 r1");
    assert_eq!(perms(&mut xs, &format!("{fe}/0")), "n1 r0");
    assert_eq!(perms(&mut xs, &format!("{fe}/0/mac")), "n1 r0");
    assert_eq!(
        perms(&mut xs, &format!("{fe}/0/mtu")),
        "n0 r1",
        "the guest may not change its MTU node"
    );
    env.ok(&["destroy", "netty"]);
    assert_eq!(env.read(be), None, "backend nodes removed");
}

/// A snapshot of every node under `paths` (what "nothing changed" compares).
fn snapshot(env: &Env, paths: &[&str]) -> Vec<String> {
    let mut xs = env.xs();
    let mut out = Vec::new();
    fn walk(xs: &mut Client, p: &str, out: &mut Vec<String>) {
        let Ok(Some(v)) = xs.try_read(p) else { return };
        out.push(format!("{p}={}", String::from_utf8_lossy(&v)));
        for c in xs.directory(p).unwrap_or_default() {
            walk(xs, &format!("{p}/{c}"), out);
        }
    }
    for p in paths {
        walk(&mut xs, p, &mut out);
    }
    out
}

fn hotplug_block_network_cdrom() {
    let env = Env::new("hotplug");
    let img = env.dir.join("b.img");
    std::fs::write(&img, vec![0u8; 4096]).unwrap();
    let busy = env.dir.join("c.img.busy");
    std::fs::write(&busy, vec![0u8; 4096]).unwrap();
    let iso = env.dir.join("cd.iso");
    std::fs::write(&iso, vec![0u8; 2048]).unwrap();
    let (img, busy, iso) = (
        img.to_str().unwrap().to_owned(),
        busy.to_str().unwrap().to_owned(),
        iso.to_str().unwrap().to_owned(),
    );
    let cfg = env.config(
        "hot",
        "uuid = '5b0e3a2c-7a1f-4c61-9d4e-0123456789ab'\ndisk = [',,hdc:cdrom,r']\non_reboot = 'restart'\n",
    );
    env.ok(&["create", &cfg]);
    let be = "/local/domain/0/backend/vbd/1";
    let fe = "/local/domain/1/device/vbd";
    let config_json =
        || std::fs::read_to_string(env.run_dir().join("domain/1/config.json")).unwrap();

    // block-attach: the nodes as xl create writes them, the disk in config.json.
    let r = env.xl(&[
        "block-attach",
        "hot",
        "format=raw",
        "vdev=xvdb",
        &format!("target={img}"),
    ]);
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(env.read(&format!("{be}/51728/params")), Some(img.clone()));
    assert_eq!(
        env.read(&format!("{be}/51728/dev")).as_deref(),
        Some("xvdb")
    );
    assert_eq!(env.read(&format!("{be}/51728/mode")).as_deref(), Some("w"));
    assert_eq!(
        env.read(&format!("{fe}/51728/virtual-device")).as_deref(),
        Some("51728")
    );
    let mut xs = env.xs();
    let perms = |xs: &mut Client, p: &str| {
        xs.get_perms(p)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(perms(&mut xs, &format!("{be}/51728")), "n0 r1");
    assert_eq!(perms(&mut xs, &format!("{fe}/51728")), "n1 r0");
    assert!(config_json().contains(&img), "{}", config_json());
    assert_eq!(
        env.ok(&["block-list", "hot"]),
        "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n\
         5632  0   1      1     -1     -1       /local/domain/0/backend/vbd/1/5632\n\
         51728 0   1      1     -1     -1       /local/domain/0/backend/vbd/1/51728\n"
    );
    // What the guest's blkfront writes shows up.
    env.xs().write(&format!("{fe}/51728/state"), "4").unwrap();
    env.xs()
        .write(&format!("{fe}/51728/event-channel"), "9")
        .unwrap();
    env.xs()
        .write(&format!("{fe}/51728/ring-ref"), "8")
        .unwrap();
    assert!(
        env.ok(&["block-list", "1"]).contains(
            "51728 0   1      4     9      8        /local/domain/0/backend/vbd/1/51728\n"
        )
    );
    // As xl: block-list reports a name that is no domain and goes on; network-list stops.
    let r = env.xl(&["block-list", "nosuch", "hot"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "nosuch is an invalid domain identifier\n");
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let r = env.xl(&["network-list", "nosuch", "hot"]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert_eq!(r.stderr, "nosuch is an invalid domain identifier (rc=-6)\n");
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    // -N prints the disk and attaches nothing.
    let out = env.ok(&["-N", "block-attach", "hot", "/x.img,raw,xvdc,r"]);
    assert!(
        out.starts_with("disk: {") && out.contains("\"vdev\": \"xvdc\""),
        "{out}"
    );

    // Refusals: a precise error, and nothing changed.
    let watched = [be, fe];
    let before = snapshot(&env, &watched);
    let json_before = config_json();
    for (args, want) in [
        (
            vec![
                "block-attach",
                "hot",
                "format=raw",
                "vdev=xvdb",
                "target=/other.img",
            ],
            "disk xvdb: domain 1 has a disk with device number 51728 already (xvdb)",
        ),
        (
            vec!["block-attach", "hot", "/nonexistent.img,raw,xvdc,w"],
            "opening its target failed: /nonexistent.img: No such file or directory",
        ),
        (
            vec!["block-attach", "hot", "/x.vhd,vhd,xvdc,w"],
            "disk xvdc: format vhd cannot be served",
        ),
        (
            vec!["block-attach", "hot", "/x.img,raw,vda,w"],
            "disk vda: not a virtual device name",
        ),
        (
            vec!["block-attach", "hot", "format=vhdx,vdev=xvdc,target=/x"],
            "xl: config parsing error in disk specification: unknown value for format",
        ),
        (
            vec!["block-detach", "hot", "xvdz"],
            "Error: Device xvdz not connected.\n",
        ),
        (
            vec!["block-detach", "hot", "nonsense"],
            "Error: Device nonsense not connected.\n",
        ),
        (
            vec!["block-attach", "nosuchdomain", "/x,raw,xvdc"],
            "nosuchdomain is an invalid domain identifier",
        ),
        (
            vec!["cd-insert", "hot", "hdc", "/nonexistent.iso"],
            "Cannot stat file: /nonexistent.iso",
        ),
        (
            vec!["cd-insert", "hot", "xvdb", &iso],
            "disk xvdb of domain 1 is not a removable drive (devtype=cdrom)",
        ),
        (
            vec!["cd-eject", "hot", "hdd"],
            "xl: virtual device hdd not found in domain 1",
        ),
    ] {
        let r = env.xl(&args);
        assert_eq!(r.status, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(
            snapshot(&env, &watched),
            before,
            "{args:?} changed XenStore"
        );
        assert_eq!(config_json(), json_before, "{args:?} changed config.json");
    }

    // A disk the guest keeps open: block-detach fails and leaves it, --force removes it.
    env.ok(&["block-attach", "hot", &format!("{busy},raw,xvdc,w")]);
    let before = snapshot(&env, &watched);
    let json_before = config_json();
    let r = env.xl(&["block-detach", "hot", "xvdc"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("the guest did not close it within 10 s")
            && r.stderr
                .ends_with("libxl_device_disk_safe_remove failed.\n"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&env, &watched), before);
    assert_eq!(config_json(), json_before);
    let r = env.xl(&["block-detach", "--force", "hot", "51744"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("removed before the guest released it"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read(&format!("{be}/51744")), None);
    assert_eq!(env.read(&format!("{fe}/51744")), None);
    assert!(!config_json().contains(&busy));

    // cd-insert / cd-eject on the cdrom drive: params and config.json follow.
    env.ok(&["cd-insert", "hot", "hdc", &iso]);
    assert_eq!(env.read(&format!("{be}/5632/params")), Some(iso.clone()));
    assert!(config_json().contains(&iso));
    env.ok(&["cd-eject", "hot", "hdc"]);
    assert_eq!(env.read(&format!("{be}/5632/params")).as_deref(), Some(""));
    assert!(!config_json().contains(&iso));

    // network-attach: the next devid, the given or the domain's stable MAC.
    let vbe = "/local/domain/0/backend/vif/1";
    let r = env.xl(&[
        "network-attach",
        "hot",
        "bridge=br-lab",
        "mac=00:16:3e:aa:bb:cc",
    ]);
    assert_eq!((r.status, r.stderr.as_str()), (0, ""));
    env.ok(&[
        "network-attach",
        "hot",
        "script=vif-route",
        "ip=169.254.9.2",
    ]);
    assert_eq!(
        env.read(&format!("{vbe}/0/bridge")).as_deref(),
        Some("br-lab")
    );
    assert_eq!(
        env.read(&format!("{vbe}/0/mac")).as_deref(),
        Some("00:16:3e:aa:bb:cc")
    );
    assert_eq!(
        env.read(&format!("{vbe}/1/script")).as_deref(),
        Some("/etc/xen/scripts/vif-route")
    );
    assert_eq!(
        env.read(&format!("{vbe}/1/ip")).as_deref(),
        Some("169.254.9.2")
    );
    assert_eq!(
        env.ok(&["network-list", "hot"]),
        "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n\
         0   0  00:16:3e:aa:bb:cc     0     1     -1    -1/-1          /local/domain/0/backend/vif/1/0\n\
         1   0  00:16:3e:59:02:56     1     1     -1    -1/-1          /local/domain/0/backend/vif/1/1\n"
            .replace("00:16:3e:59:02:56", &env.read(&format!("{vbe}/1/mac")).unwrap())
    );
    assert!(config_json().contains("00:16:3e:aa:bb:cc"));
    let before = snapshot(&env, &[vbe, "/local/domain/1/device/vif"]);
    let json_before = config_json();
    for (args, want) in [
        (
            vec!["network-attach", "hot", "mac=zz"],
            "invalid parameter `mac': `zz'",
        ),
        (
            vec!["network-attach", "hot", "devid=0"],
            "vif 0: domain 1 has a network interface with that device number already",
        ),
        (
            vec!["network-attach", "hot", "mac=00:16:3e:aa:bb:cc"],
            "MAC address 00:16:3e:aa:bb:cc is vif 0's already",
        ),
        (
            vec!["network-attach", "hot", "bridge=nosuchbridge"],
            "the hotplug step failed: bridge nosuchbridge does not exist",
        ),
        (
            vec!["network-attach", "hot", "script=/nonexistent/vif-x"],
            "script=/nonexistent/vif-x: /nonexistent/vif-x does not exist",
        ),
        (vec!["network-detach", "hot", "7"], "Unknown device 7.\n"),
        (
            vec!["network-detach", "hot", "00:16:3e:00:00:99"],
            "Unknown device 00:16:3e:00:00:99.\n",
        ),
    ] {
        let r = env.xl(&args);
        assert_eq!(r.status, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(
            snapshot(&env, &[vbe, "/local/domain/1/device/vif"]),
            before,
            "{args:?}"
        );
        assert_eq!(config_json(), json_before, "{args:?}");
    }
    env.ok(&["network-detach", "hot", "00:16:3e:aa:bb:cc"]);
    assert_eq!(env.read(&format!("{vbe}/0")), None);
    assert_eq!(env.read("/local/domain/1/device/vif/0"), None);
    assert!(!config_json().contains("00:16:3e:aa:bb:cc"));

    // What was attached comes back after a reboot (config.json is what the restart
    // uses); what was detached does not.
    let r = env.xl(&["reboot", "-w", "hot"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    env.wait_until("hot to come back as 2", || {
        env.list_line("hot")
            .is_some_and(|l| l[1] == "2" && l[4] == "-b----")
    });
    assert_eq!(
        env.read("/local/domain/0/backend/vbd/2/51728/params"),
        Some(img.clone())
    );
    assert!(env.read("/local/domain/0/backend/vif/2/1/mac").is_some());
    assert_eq!(env.read("/local/domain/0/backend/vif/2/0"), None);
    assert_eq!(env.read("/local/domain/0/backend/vbd/2/51744"), None);
    env.ok(&["block-detach", "hot", "xvdb"]);
    assert_eq!(
        env.ok(&["block-list", "hot"]),
        "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n\
         5632  0   2      1     -1     -1       /local/domain/0/backend/vbd/2/5632\n"
    );
}

fn errors_change_nothing() {
    let env = Env::new("errors");
    let cfg = env.config("demo", "");
    // A domain process that fails to build the domain.
    let r = env.xl_env(&["create", &cfg], &[("FAKE_DOMAIN_FAIL", "early")]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("xl: cannot create domain demo: the domain process for domain 1 exited (exit status: 1) before the domain was up"),
        "{}",
        r.stderr
    );
    // A configuration error.
    let bad = env.config("bad", "vcpus = 0\n");
    let r = env.xl(&["create", &bad]);
    assert_eq!(r.status, 1);
    // A domain process that is not there.
    let r = env.xl_env(
        &["create", &cfg],
        &[("RXEN_DOMAIN_BIN", "/nonexistent/rxen-domain")],
    );
    assert_eq!(r.status, 3);
    assert!(
        r.stderr
            .contains("cannot start the domain process /nonexistent/rxen-domain: No such file"),
        "{}",
        r.stderr
    );
    assert_eq!(env.domain_dirs(), Vec::<String>::new());
    let mut xs = env.xs();
    assert_eq!(xs.directory("/local/domain").unwrap(), ["0"]);
    assert_eq!(
        xs.directory("/vm").unwrap_or_default(),
        Vec::<String>::new()
    );
    assert_eq!(
        xs.directory("/libxl").unwrap_or_default(),
        Vec::<String>::new()
    );
    assert_eq!(env.ok(&["list"]).lines().count(), 2);

    // Names are unique; Domain-0's too.
    env.ok(&["create", &cfg]);
    let r = env.xl(&["create", &cfg]);
    assert_eq!(r.status, 3);
    assert!(
        r.stderr
            .contains("Domain with name \"demo\" already exists"),
        "{}",
        r.stderr
    );
    let r = env.xl(&["create", &cfg, "name=\"Domain-0\""]);
    assert_eq!(r.status, 3);
    assert_eq!(env.domain_dirs().len(), 1);

    // Unknown domains.
    let r = env.xl(&["pause", "nosuch"]);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (1, "nosuch is an invalid domain identifier (rc=-6)\n")
    );
    let r = env.xl(&["list", "42"]);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (1, "Error: Domain '42' does not exist.\n")
    );
    let r = env.xl(&["destroy", "0"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr
            .starts_with("Not destroying domain 0; use -f to force.")
    );
    let r = env.xl(&["shutdown"]);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (1, "You must specify -a or a domain id.\n\n")
    );
    let r = env.xl(&["rename", "demo"]);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr
            .starts_with("'xl rename' requires at least 2 arguments.\n")
    );
}

fn without_xenstored_commands_say_so() {
    let env = Env::new("noxs");
    let mut c = env.cmd(&["list"]);
    c.env("XENSTORED_PATH", env.dir.join("nothing-here"));
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "xl: cannot connect to xenstored at {} (xl needs xenstored running",
            env.dir.join("nothing-here").display()
        )),
        "{err}"
    );
}

fn shutdown_wait_and_actions() {
    let env = Env::new("shutdown");
    let cfg = env.config("demo", "");
    env.ok(&["create", &cfg]);
    let pid = env.pid(1);
    // -w -w: returns once the domain is gone (on_poweroff = destroy).
    let r = env.xl(&["shutdown", "-w", "-w", "demo"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been destroyed\n"
    );
    assert!(env.list_line("demo").is_none());
    assert!(env.domain_dirs().is_empty());
    assert!(!alive(pid));
    assert_eq!(env.read("/local/domain/1"), None);

    // -w: returns once it has shut down; the monitor then destroys it.
    env.ok(&["create", &cfg]);
    let r = env.xl(&["shutdown", "-w", "demo"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .ends_with("Domain 2 has been shut down, reason code 0\n")
            || r.stderr.ends_with("Domain 2 has been destroyed\n"),
        "{}",
        r.stderr
    );
    env.wait_until("demo to go", || env.list_line("demo").is_none());

    // on_poweroff = "preserve": it stays, shut down.
    let keep = env.config("keep", "on_poweroff = \"preserve\"\n");
    env.ok(&["create", &keep]);
    env.ok(&["shutdown", "-w", "keep"]);
    env.wait_until("keep shut down", || {
        env.list_line("keep").is_some_and(|l| l[4] == "---s--")
    });
    env.ok(&["destroy", "keep"]);
    assert!(env.list_line("keep").is_none());

    // A monitor log per domain, as xl's xl-NAME.log.
    let log = std::fs::read_to_string(env.dir.join("log/xl-keep.log")).unwrap();
    assert!(
        log.contains("Action for shutdown reason code 0 is preserve"),
        "{log}"
    );
    let dmesg = env.ok(&["dmesg"]);
    assert!(dmesg.contains("d3: created \"keep\""), "{dmesg}");
    assert!(dmesg.contains("d3: shut down, reason poweroff"), "{dmesg}");
    env.ok(&["dmesg", "-c"]);
    assert_eq!(env.ok(&["dmesg"]), "");
}

fn reboot_restarts_under_a_new_id() {
    let env = Env::new("reboot");
    let cfg = env.config("demo", "on_reboot = \"restart\"\n");
    env.ok(&["create", &cfg]);
    let uuid = env.read("/local/domain/1/vm").unwrap();
    let r = env.xl(&["reboot", "-w", "demo"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.starts_with("Rebooting domain 1\n"), "{}", r.stderr);
    // Up again: listed as 2, and running (not half built).
    env.wait_until("demo to come back as 2", || {
        env.list_line("demo")
            .is_some_and(|l| l[1] == "2" && l[4] == "-b----")
    });
    assert_eq!(env.read("/local/domain/1"), None);
    assert_eq!(env.read("/local/domain/2/name").as_deref(), Some("demo"));
    // The same VM: the uuid stays.
    assert_eq!(env.read("/local/domain/2/vm"), Some(uuid));

    // A reboot from inside the guest (its console).
    let mut s = console(&env, 2);
    s.write_all(b"reboot\r").unwrap();
    env.wait_until("demo to come back as 3", || {
        env.list_line("demo")
            .is_some_and(|l| l[1] == "3" && l[4] == "-b----")
    });

    // rename-restart: the old one stays under a dated name, with a new uuid.
    let cfg2 = env.config("other", "on_reboot = \"rename-restart\"\n");
    env.ok(&["create", &cfg2]);
    let old_vm = env.read("/local/domain/4/vm").unwrap();
    env.ok(&["reboot", "other"]);
    env.wait_until("other to come back as 5", || {
        env.list_line("other")
            .is_some_and(|l| l[1] == "5" && l[4] == "-b----")
    });
    let out = env.ok(&["list"]);
    let kept = out
        .lines()
        .find(|l| l.starts_with("other-"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = kept.split_whitespace().collect();
    assert_eq!(cols[1], "4");
    assert_eq!(cols[4], "---sr-");
    assert!(cols[0].len() == "other-YYYYMMDDTHHMMZ".len() && cols[0].ends_with('Z'));
    assert_ne!(env.read("/local/domain/4/vm"), Some(old_vm));
}

fn crash_preserve_stays_until_destroyed() {
    let env = Env::new("crash");
    let cfg = env.config("demo", "on_crash = \"preserve\"\n");
    env.ok(&["create", &cfg]);
    let mut s = console(&env, 1);
    s.write_all(b"crash\n").unwrap();
    env.wait_until("demo crashed", || {
        env.list_line("demo").is_some_and(|l| l[4] == "---sc-")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.list_line("demo").unwrap()[4], "---sc-");
    assert_eq!(
        env.list_line("demo").unwrap()[5],
        "2.5",
        "a crashed domain keeps showing the CPU time its guest used"
    );
    let v = env.ok(&["list", "-v", "demo"]);
    assert!(
        v.lines().nth(1).unwrap().contains(" 3                -"),
        "{v}"
    );
    env.ok(&["destroy", "demo"]);
    assert!(env.list_line("demo").is_none());

    // A domain process that dies without a reason counts as a crash.
    let cfg = env.config("dies", "on_crash = \"preserve\"\n");
    env.ok(&["create", &cfg]);
    let mut s = console(&env, 2);
    s.write_all(b"die\n").unwrap();
    env.wait_until("dies crashed", || {
        env.list_line("dies").is_some_and(|l| l[4] == "---sc-")
    });
    // on_crash = destroy (the default): gone.
    let cfg = env.config("gone", "");
    env.ok(&["create", &cfg]);
    let mut s = console(&env, 3);
    s.write_all(b"crash\n").unwrap();
    env.wait_until("gone to go", || env.list_line("gone").is_none());
}

fn rename_domid_domname_vm_list_uptime() {
    let env = Env::new("rename");
    env.ok(&["create", &env.config("demo", "")]);
    env.ok(&["create", &env.config("taken", "")]);
    env.ok(&["rename", "demo", "other"]);
    assert_eq!(env.read("/local/domain/1/name").as_deref(), Some("other"));
    let vm = env.read("/local/domain/1/vm").unwrap();
    assert_eq!(env.read(&format!("{vm}/name")).as_deref(), Some("other"));
    assert_eq!(env.ok(&["domid", "other"]), "1\n");
    assert_eq!(env.ok(&["domname", "1"]), "other\n");
    assert_eq!(env.ok(&["domname", "0"]), "Domain-0\n");
    let r = env.xl(&["domid", "demo"]);
    assert_eq!(r.status, 1);
    assert_eq!(
        r.stderr,
        "Can't get domid of domain name 'demo', maybe this domain does not exist.\n"
    );
    let r = env.xl(&["rename", "other", "taken"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.ends_with("Can't rename domain 'other'.\n"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("/local/domain/1/name").as_deref(), Some("other"));

    let vml = env.ok(&["vm-list"]);
    let lines: Vec<&str> = vml.lines().collect();
    assert_eq!(lines[0], "UUID                                  ID    name");
    assert!(lines[1].starts_with("00000000-0000-0000-0000-000000000000  0    Domain-0"));
    assert!(
        lines[2].starts_with(&format!("{}  1    other", &vm[4..])),
        "{vml}"
    );

    let up = env.ok(&["uptime"]);
    let lines: Vec<&str> = up.lines().collect();
    assert_eq!(lines[0], format!("{:<33} {:>4} Uptime", "Name", "ID"));
    assert!(lines[1].starts_with(&format!("{:<33} {:4} ", "Domain-0", 0)));
    assert!(
        lines[2].starts_with(&format!("{:<33} {:4}  0:00:", "other", 1)),
        "{up}"
    );
    let short = env.ok(&["uptime", "-s", "other"]);
    assert!(short.contains(" up  0:00, other (1)"), "{short}");
}

fn vcpus_list_and_pin() {
    let env = Env::new("vcpu");
    env.ok(&["create", &env.config("demo", "")]);
    let out = env.ok(&["vcpu-list", "demo"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with(&format!("{:<32} {:5} {:5}", "demo", 1, 0)));
    assert!(lines[1].contains("   -b-  "), "{out}");
    assert!(lines[1].ends_with("all / all"), "{out}");

    env.ok(&["vcpu-pin", "demo", "1", "0"]);
    let out = env.ok(&["vcpu-list", "demo"]);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let want = if cpus == 1 { "all / all" } else { "0 / all" };
    assert!(out.lines().nth(2).unwrap().ends_with(want), "{out}");
    assert!(out.lines().nth(1).unwrap().ends_with("all / all"), "{out}");

    let r = env.xl(&["vcpu-pin", "demo", "all", "100000"]);
    assert_eq!(r.status, 1);
    let r = env.xl(&["vcpu-pin", "demo", "7", "0"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.ends_with("Could not set affinity for vcpu `7'.\n"),
        "{}",
        r.stderr
    );
    let r = env.xl(&["vcpu-pin", "demo", "x", "0"]);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (1, "Error: Invalid argument x as VCPU.\n")
    );
    let r = env.xl(&["-N", "vcpu-pin", "demo", "0", "0", "0"]);
    assert_eq!(
        r.stdout,
        if cpus == 1 {
            "cpumap: all all\n"
        } else {
            "cpumap: 0 0\n"
        }
    );

    // Domain-0's vCPUs are the host's CPUs.
    let all = env.ok(&["vcpu-list"]);
    assert_eq!(
        all.lines().filter(|l| l.starts_with("Domain-0 ")).count(),
        cpus,
        "{all}"
    );
}

fn info_describes_the_host() {
    let env = Env::new("info");
    let out = env.ok(&["info"]);
    let get = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{k:<23}: ")))
            .map(|l| l[25..].to_owned())
            .unwrap_or_else(|| panic!("no {k} in\n{out}"))
    };
    assert_eq!(
        get("nr_cpus"),
        std::thread::available_parallelism()
            .unwrap()
            .get()
            .to_string()
    );
    assert_eq!(get("xen_version"), "4.17.0-rxen");
    assert_eq!(get("xen_caps"), "hvm-3.0-x86_64");
    assert_eq!(
        get("release"),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
    let total: u64 = get("total_memory").parse().unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(total, kib / 1024);
    assert_eq!(env.ok(&["info", "xen_major"]), "4\n");
    // Domain-0's memory in `xl list` is the host's.
    let dom0: Vec<String> = env.list_line("Domain-0").unwrap();
    assert_eq!(dom0[2], total.to_string());
}

fn concurrent_creates_get_unique_ids_and_names() {
    let env = Env::new("concurrent");
    let mut children = Vec::new();
    for i in 0..6 {
        let cfg = env.config(&format!("g{i}"), "");
        children.push(
            env.cmd(&["create", "-q", &cfg])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    // The same name four times: one wins.
    let same = env.config("same", "");
    for _ in 0..4 {
        children.push(
            env.cmd(&["create", "-q", &same])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes[..6], [0; 6]);
    let mut same_codes = codes[6..].to_vec();
    same_codes.sort();
    assert_eq!(same_codes, [0, 3, 3, 3]);
    let out = env.ok(&["list"]);
    let mut ids: Vec<u32> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=7).collect::<Vec<u32>>(), "{out}");
}

fn create_console_and_foreground() {
    let env = Env::new("create-c");
    // -c: attached once created; the guest powering off ends the attachment.
    let mut child = env
        .cmd(&["create", "-c", &env.config("demo", "")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stdin.write_all(b"poweroff\r").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("fake-domain 1 console\r\n# poweroff"),
        "{stdout}"
    );
    env.wait_until("demo to go", || env.list_line("demo").is_none());

    // -F: the monitor runs in xl itself, which returns once the domain is gone.
    let child = env
        .cmd(&["create", "-F", &env.config("fg", "")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_until("fg running", || {
        env.list_line("fg").is_some_and(|l| l[4] == "-b----")
    });
    env.ok(&["shutdown", "fg"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Waiting for domain fg (domid 2) to die [pid "),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "Domain 2 has shut down, reason code 0 0x0\nAction for shutdown reason code 0 is destroy\nDomain 2 needs to be cleaned up: destroying the domain\nDone. Exiting now\n"
        ),
        "{stdout}"
    );
    assert!(env.list_line("fg").is_none());
}

/// A pseudo-terminal pair (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the given integers; the name and
    // terminal settings pointers may be null.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: both descriptors were just opened for us.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

fn read_until(master: &mut std::fs::File, want: &str, out: &mut String) {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    while !out.contains(want) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no {want:?} in {out:?}"
        );
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => break,
        }
    }
}

fn console_through_a_pty_and_ctrl_bracket_detaches() {
    let env = Env::new("console");
    env.ok(&["create", &env.config("demo", "")]);
    let (master, slave) = openpty();
    let mut cmd = env.cmd(&["console", "demo"]);
    let s0 = slave.try_clone().unwrap();
    let s1 = slave.try_clone().unwrap();
    cmd.stdin(Stdio::from(slave))
        .stdout(Stdio::from(s0))
        .stderr(Stdio::from(s1));
    // SAFETY: setsid in the child before exec, so the pty can be its terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let mut seen = String::new();
    read_until(&mut master, "fake-domain 1 console\r\n# ", &mut seen);
    master.write_all(b"hello\r").unwrap();
    read_until(&mut master, "you said: hello", &mut seen);
    // Ctrl-]
    master.write_all(&[0x1d]).unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "xl console did not detach"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // The domain runs on.
    assert_eq!(env.list_line("demo").unwrap()[4], "-b----");

    // -t serial: rxen guests have none.
    let r = env.xl(&["console", "-t", "serial", "demo"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.ends_with("Unable to attach console\n"),
        "{}",
        r.stderr
    );
    let r = env.xl(&["console", "-t", "bogus", "demo"]);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (1, "console type supported are: pv, serial, vuart\n")
    );
}

const TESTS: &[(&str, fn())] = &[
    (
        "create_list_pause_unpause_destroy",
        create_list_pause_unpause_destroy,
    ),
    ("errors_change_nothing", errors_change_nothing),
    (
        "vifs_are_laid_out_as_libxl_does",
        vifs_are_laid_out_as_libxl_does,
    ),
    (
        "disks_are_laid_out_as_libxl_does",
        disks_are_laid_out_as_libxl_does,
    ),
    (
        "without_xenstored_commands_say_so",
        without_xenstored_commands_say_so,
    ),
    ("shutdown_wait_and_actions", shutdown_wait_and_actions),
    ("hotplug_block_network_cdrom", hotplug_block_network_cdrom),
    (
        "reboot_restarts_under_a_new_id",
        reboot_restarts_under_a_new_id,
    ),
    (
        "crash_preserve_stays_until_destroyed",
        crash_preserve_stays_until_destroyed,
    ),
    (
        "rename_domid_domname_vm_list_uptime",
        rename_domid_domname_vm_list_uptime,
    ),
    ("vcpus_list_and_pin", vcpus_list_and_pin),
    ("info_describes_the_host", info_describes_the_host),
    (
        "concurrent_creates_get_unique_ids_and_names",
        concurrent_creates_get_unique_ids_and_names,
    ),
    (
        "console_through_a_pty_and_ctrl_bracket_detaches",
        console_through_a_pty_and_ctrl_bracket_detaches,
    ),
    (
        "create_console_and_foreground",
        create_console_and_foreground,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--domid") {
        fake_domain::main(&args);
    }
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let chosen: Vec<_> = TESTS
        .iter()
        .filter(|(n, _)| filter.as_deref().is_none_or(|f| n.contains(f)))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let handles: Vec<_> = chosen
        .iter()
        .map(|(name, f)| {
            (
                *name,
                std::thread::Builder::new()
                    .name((*name).into())
                    .spawn(*f)
                    .unwrap(),
            )
        })
        .collect();
    let mut failed = Vec::new();
    for (name, h) in handles {
        let ok = h.join().is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    let passed = chosen.len() - failed.len();
    if failed.is_empty() {
        println!(
            "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
        );
    } else {
        println!("\nfailures:\n    {}\n", failed.join("\n    "));
        println!(
            "test result: FAILED. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
            failed.len()
        );
        std::process::exit(101);
    }
}
