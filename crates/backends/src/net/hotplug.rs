//! Connecting a vif's TAP to the host's network, as Xen's hotplug scripts
//! do.
//!
//! libxl runs the vif's `script=` (default `vif-bridge`, relative names
//! under `/etc/xen/scripts`) with `online` or `offline` and `type_if=vif`,
//! and in the environment `script`, `XENBUS_TYPE=vif`,
//! `XENBUS_PATH=backend/vif/<domid>/<devid>`, `XENBUS_BASE_PATH=backend`,
//! `netdev` (the `gatewaydev=`) and `vif` (the interface). rxen does the
//! same when the script exists. When it does not (a host without Xen's
//! scripts), rxen does the script's job itself for the three scripts Xen
//! ships:
//!
//! - `vif-bridge`: the bridge (`bridge=`, default `xenbr0`) must exist; the
//!   TAP gets the MTU of `mtu=` or else the bridge's, joins the bridge and
//!   goes up.
//! - `vif-route`: the TAP gets the host's address (the primary IPv4
//!   address of `gatewaydev=`, else of the interface of the default route)
//!   as a /32, goes up, answers ARP for the guest (`proxy_arp`), and each
//!   `ip=` address gets a host route through it (metric 2, source the
//!   host's address). IPv4 forwarding is turned on, for the TAP and
//!   globally (Xen leaves the global switch to its `network-route` script,
//!   which rxen does not have).
//! - `vif-nat`: the guest's address is `ip=` (else `10.<domid/256>.<domid%256>.<devid+1>`),
//!   the TAP gets the router address (the guest's last octet plus 127) as
//!   a /32 and a host route to the guest, proxy ARP and forwarding as for
//!   `vif-route`, and the guest's traffic leaving through another interface
//!   is masqueraded (`iptables -t nat … MASQUERADE`, if iptables exists;
//!   Xen's `network-nat` does the masquerading host-wide). rxen does not
//!   configure a DHCP server: give the guest its address statically (Xen's
//!   vif-nat edits dhcpd's configuration only when one is installed).
//!
//! Going offline undoes what going online did, ignoring failures (the TAP
//! vanishes with the domain process anyway). The outcome becomes the
//! backend nodes `hotplug-status` (`connected`, or `error` with
//! `hotplug-error`), which the frontend's connection waits for:
//! [`status_nodes`].
//!
//! Everything the built-ins do is a list of [`Step`]s built by pure
//! functions and run through [`HostOps`], so tests check the command lines
//! without touching the host.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Xen keeps its hotplug scripts.
pub const XEN_SCRIPT_DIR: &str = "/etc/xen/scripts";
/// The script of a vif that names none.
pub const DEFAULT_SCRIPT: &str = "vif-bridge";
/// The bridge of a `vif-bridge` vif that names none.
pub const DEFAULT_BRIDGE: &str = "xenbr0";
/// How long a user's script may run (libxl's hotplug timeout).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(40);

/// Errors of a hotplug action; the message goes to `hotplug-error`.
#[derive(Debug, thiserror::Error)]
pub enum HotplugError {
    /// The script named is neither present nor one rxen knows.
    #[error("hotplug script {0} not found")]
    NoScript(PathBuf),
    /// The script failed or timed out.
    #[error("{script} {action} failed: {message}")]
    Script {
        /// The script.
        script: PathBuf,
        /// `online` / `offline`.
        action: &'static str,
        /// Exit status and the end of its stderr.
        message: String,
    },
    /// The bridge does not exist.
    #[error("Could not find bridge device {0}")]
    NoBridge(String),
    /// No address for the host side of a routed vif.
    #[error("no IPv4 address for the host side: {0}")]
    NoHostAddress(String),
    /// `ip=` is not usable.
    #[error("invalid ip= `{0}'")]
    BadIp(String),
    /// A command that had to succeed failed.
    #[error("{command} failed: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr or the spawn error.
        message: String,
    },
    /// A `/proc/sys` setting could not be written.
    #[error("writing {path} failed")]
    Sysctl {
        /// The file.
        path: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// `online` or `offline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The device is being connected.
    Online,
    /// The device is going away.
    Offline,
}

impl Action {
    /// The script argument.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Online => "online",
            Action::Offline => "offline",
        }
    }
}

/// What the hotplug step knows of a vif (the backend nodes libxl writes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VifParams {
    /// The guest.
    pub domid: u16,
    /// The device number.
    pub devid: u32,
    /// The TAP's name.
    pub dev: String,
    /// `script=`.
    pub script: Option<String>,
    /// `bridge=`.
    pub bridge: Option<String>,
    /// `ip=`: space-separated addresses.
    pub ip: Option<String>,
    /// `gatewaydev=`.
    pub gatewaydev: Option<String>,
    /// `mtu=`.
    pub mtu: Option<u32>,
}

impl VifParams {
    /// `XENBUS_PATH` as libxl passes it (relative to dom0's home).
    pub fn xenbus_path(&self) -> String {
        format!("backend/vif/{}/{}", self.domid, self.devid)
    }
}

/// One thing a built-in does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run a command; `required` ones fail the action.
    Run {
        /// argv.
        argv: Vec<String>,
        /// Whether failure is fatal.
        required: bool,
    },
    /// Write a `/proc/sys` file.
    Sysctl {
        /// The path.
        path: String,
        /// The value.
        value: &'static str,
    },
    /// Add a masquerading rule unless it is there (`iptables -C` first).
    Masquerade {
        /// The rule, without the `-A`/`-C`/`-D` verb.
        rule: Vec<String>,
    },
    /// Remove a masquerading rule, ignoring failure.
    Unmasquerade {
        /// The rule, as for [`Step::Masquerade`].
        rule: Vec<String>,
    },
}

/// What the host offers the hotplug step: commands and files. The real
/// one is [`SystemHost`].
pub trait HostOps {
    /// Run `argv`; its stdout, or a message (stderr or why it could not run).
    fn run(&mut self, argv: &[String]) -> Result<String, String>;
    /// Write a small file.
    fn write_file(&mut self, path: &str, value: &str) -> io::Result<()>;
    /// Whether `path` is an executable file.
    fn is_executable(&mut self, path: &Path) -> bool;
    /// Run a hotplug script with arguments and extra environment, at most
    /// `timeout`; `Err` carries the status and the end of its stderr.
    fn run_script(
        &mut self,
        path: &Path,
        args: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), String>;
}

/// What a successful action tells the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HotplugReport {
    /// A user's script ran (else rxen's built-in did the work).
    pub ran_script: Option<PathBuf>,
    /// The MTU given to the TAP (to write to the frontend's `mtu` node, as
    /// `vif-bridge` does).
    pub mtu: Option<u32>,
    /// Things that did not work but do not stop the vif (no iptables).
    pub warnings: Vec<String>,
}

/// The nodes to write in the backend directory after an `online` action:
/// `hotplug-status = connected`, or `hotplug-error` and
/// `hotplug-status = error`.
pub fn status_nodes(result: &Result<HotplugReport, HotplugError>) -> Vec<(&'static str, String)> {
    match result {
        Ok(_) => vec![("hotplug-status", "connected".to_owned())],
        Err(e) => vec![
            ("hotplug-error", e.to_string()),
            ("hotplug-status", "error".to_owned()),
        ],
    }
}

/// The script a vif's `script=` names, resolved as libxl does.
pub fn script_path(script: Option<&str>, script_dir: &Path) -> PathBuf {
    let s = script.filter(|s| !s.is_empty()).unwrap_or(DEFAULT_SCRIPT);
    let p = Path::new(s);
    if p.is_absolute() {
        p.to_owned()
    } else {
        script_dir.join(p)
    }
}

/// The built-in equivalents of Xen's scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// `vif-bridge`.
    Bridge,
    /// `vif-route`.
    Route,
    /// `vif-nat`.
    Nat,
}

impl Builtin {
    /// The built-in standing in for the script with this file name.
    pub fn for_script(path: &Path) -> Option<Builtin> {
        match path.file_name()?.to_str()? {
            "vif-bridge" => Some(Builtin::Bridge),
            "vif-route" => Some(Builtin::Route),
            "vif-nat" => Some(Builtin::Nat),
            _ => None,
        }
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn ip(parts: &[&str], required: bool) -> Step {
    let mut a = vec!["ip".to_owned()];
    a.extend(parts.iter().map(|s| (*s).to_owned()));
    Step::Run { argv: a, required }
}

fn conf(dev: &str, key: &str) -> Step {
    Step::Sysctl {
        path: format!("/proc/sys/net/ipv4/conf/{dev}/{key}"),
        value: "1",
    }
}

/// The `ip=` addresses (space- or comma-separated, as users write them).
pub fn ip_list(ip: Option<&str>) -> Vec<&str> {
    ip.unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .collect()
}

/// `vif-bridge`'s steps. `mtu` is the one to give the TAP (from `mtu=` or
/// the bridge).
pub fn bridge_steps(dev: &str, bridge: &str, mtu: Option<u32>, action: Action) -> Vec<Step> {
    match action {
        Action::Online => {
            let mut s = Vec::new();
            if let Some(m) = mtu {
                s.push(ip(
                    &["link", "set", "dev", dev, "mtu", &m.to_string()],
                    false,
                ));
            }
            s.push(ip(&["link", "set", "dev", dev, "master", bridge], true));
            s.push(ip(&["link", "set", "dev", dev, "up"], true));
            s
        }
        Action::Offline => vec![
            ip(&["link", "set", "dev", dev, "nomaster"], false),
            ip(&["link", "set", "dev", dev, "down"], false),
        ],
    }
}

/// `vif-route`'s steps, with `host_ip` the host's address.
pub fn route_steps(dev: &str, host_ip: &str, ips: &[&str], action: Action) -> Vec<Step> {
    let mut s = Vec::new();
    match action {
        Action::Online => {
            s.push(ip(
                &["addr", "add", &format!("{host_ip}/32"), "dev", dev],
                true,
            ));
            s.push(ip(&["link", "set", "dev", dev, "up"], true));
            s.push(conf(dev, "proxy_arp"));
            s.push(conf(dev, "forwarding"));
            s.push(Step::Sysctl {
                path: "/proc/sys/net/ipv4/ip_forward".into(),
                value: "1",
            });
            for a in ips {
                s.push(ip(
                    &["route", "add", a, "dev", dev, "src", host_ip, "metric", "2"],
                    true,
                ));
            }
        }
        Action::Offline => {
            for a in ips {
                s.push(ip(
                    &["route", "del", a, "dev", dev, "src", host_ip, "metric", "2"],
                    false,
                ));
            }
            s.push(ip(&["link", "set", "dev", dev, "down"], false));
        }
    }
    s
}

/// The guest's and the router's addresses of a `vif-nat` vif.
pub fn nat_addresses(
    domid: u16,
    devid: u32,
    ip: Option<&str>,
) -> Result<(std::net::Ipv4Addr, std::net::Ipv4Addr), HotplugError> {
    let guest = match ip_list(ip).first() {
        Some(a) => {
            let bare = a.split('/').next().unwrap_or(a);
            bare.parse::<std::net::Ipv4Addr>()
                .map_err(|_| HotplugError::BadIp((*a).to_owned()))?
        }
        None => {
            let last = u8::try_from(devid + 1).map_err(|_| HotplugError::BadIp(String::new()))?;
            std::net::Ipv4Addr::new(10, (domid / 256) as u8, (domid % 256) as u8, last)
        }
    };
    let o = guest.octets();
    let last = o[3]
        .checked_add(127)
        .ok_or_else(|| HotplugError::BadIp(guest.to_string()))?;
    Ok((guest, std::net::Ipv4Addr::new(o[0], o[1], o[2], last)))
}

/// `vif-nat`'s steps.
pub fn nat_steps(
    dev: &str,
    guest: std::net::Ipv4Addr,
    router: std::net::Ipv4Addr,
    action: Action,
) -> Vec<Step> {
    let (g, r) = (guest.to_string(), router.to_string());
    let rule = argv(&[
        "-t",
        "nat",
        "POSTROUTING",
        "-s",
        &format!("{g}/32"),
        "!",
        "-o",
        dev,
        "-j",
        "MASQUERADE",
    ]);
    match action {
        Action::Online => vec![
            ip(&["link", "set", "dev", dev, "up", "arp", "on"], true),
            ip(&["addr", "add", &format!("{r}/32"), "dev", dev], true),
            ip(&["route", "add", &g, "dev", dev, "src", &r], true),
            conf(dev, "proxy_arp"),
            conf(dev, "forwarding"),
            Step::Sysctl {
                path: "/proc/sys/net/ipv4/ip_forward".into(),
                value: "1",
            },
            Step::Masquerade { rule },
        ],
        Action::Offline => vec![
            Step::Unmasquerade { rule },
            ip(&["route", "del", &g, "dev", dev, "src", &r], false),
            ip(&["link", "set", "dev", dev, "down"], false),
        ],
    }
}

/// The first `inet` address in `ip -4 -o addr show` output.
pub fn parse_first_ipv4(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        w.position(|t| t == "inet")?;
        let cidr = w.next()?;
        Some(cidr.split('/').next()?.to_owned())
    })
}

/// The `mtu` of `ip -o link show` output.
pub fn parse_mtu(out: &str) -> Option<u32> {
    let mut w = out.split_whitespace();
    w.position(|t| t == "mtu")?;
    w.next()?.parse().ok()
}

/// The device of the default route in `ip -4 route show default` output.
pub fn parse_default_dev(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        if w.next()? != "default" {
            return None;
        }
        w.position(|t| t == "dev")?;
        w.next().map(str::to_owned)
    })
}

fn host_ipv4(host: &mut dyn HostOps, gatewaydev: Option<&str>) -> Result<String, HotplugError> {
    let dev = match gatewaydev.filter(|d| !d.is_empty()) {
        Some(d) => d.to_owned(),
        None => host
            .run(&argv(&["ip", "-4", "route", "show", "default"]))
            .ok()
            .and_then(|o| parse_default_dev(&o))
            .ok_or_else(|| {
                HotplugError::NoHostAddress("no gatewaydev= and no default route".into())
            })?,
    };
    host.run(&argv(&[
        "ip", "-4", "-o", "addr", "show", "primary", "dev", &dev,
    ]))
    .ok()
    .and_then(|o| parse_first_ipv4(&o))
    .ok_or_else(|| HotplugError::NoHostAddress(format!("{dev} has no IPv4 address")))
}

fn run_steps(
    host: &mut dyn HostOps,
    steps: &[Step],
    report: &mut HotplugReport,
) -> Result<(), HotplugError> {
    for s in steps {
        match s {
            Step::Run { argv, required } => {
                if let Err(message) = host.run(argv) {
                    if *required {
                        return Err(HotplugError::Command {
                            command: argv.join(" "),
                            message,
                        });
                    }
                    tracing::debug!(command = argv.join(" "), message, "ignored failure");
                }
            }
            Step::Sysctl { path, value } => {
                host.write_file(path, value)
                    .map_err(|source| HotplugError::Sysctl {
                        path: path.clone(),
                        source,
                    })?;
            }
            Step::Masquerade { rule } => {
                let with = |verb: &str| {
                    let mut a = vec!["iptables".to_owned(), "-w".to_owned()];
                    a.extend(rule[..2].iter().cloned());
                    a.push(verb.to_owned());
                    a.extend(rule[2..].iter().cloned());
                    a
                };
                if host.run(&with("-C")).is_err() {
                    if let Err(m) = host.run(&with("-A")) {
                        report
                            .warnings
                            .push(format!("masquerading not set up (iptables: {m})"));
                    }
                }
            }
            Step::Unmasquerade { rule } => {
                let mut a = vec!["iptables".to_owned(), "-w".to_owned()];
                a.extend(rule[..2].iter().cloned());
                a.push("-D".to_owned());
                a.extend(rule[2..].iter().cloned());
                let _ = host.run(&a);
            }
        }
    }
    Ok(())
}

/// Connect (`online`) or disconnect (`offline`) a vif's TAP: the user's
/// script if it exists, else rxen's built-in for the script's name.
pub fn hotplug(
    host: &mut dyn HostOps,
    p: &VifParams,
    action: Action,
    script_dir: &Path,
) -> Result<HotplugReport, HotplugError> {
    let script = script_path(p.script.as_deref(), script_dir);
    let mut report = HotplugReport::default();
    if host.is_executable(&script) {
        let env = vec![
            ("script".to_owned(), script.display().to_string()),
            ("XENBUS_TYPE".to_owned(), "vif".to_owned()),
            ("XENBUS_PATH".to_owned(), p.xenbus_path()),
            ("XENBUS_BASE_PATH".to_owned(), "backend".to_owned()),
            (
                "netdev".to_owned(),
                p.gatewaydev.clone().unwrap_or_default(),
            ),
            ("vif".to_owned(), p.dev.clone()),
        ];
        let args = argv(&[action.as_str(), "type_if=vif"]);
        host.run_script(&script, &args, &env, SCRIPT_TIMEOUT)
            .map_err(|message| HotplugError::Script {
                script: script.clone(),
                action: action.as_str(),
                message,
            })?;
        report.ran_script = Some(script);
        return Ok(report);
    }
    let builtin = Builtin::for_script(&script).ok_or(HotplugError::NoScript(script))?;
    let steps = match builtin {
        Builtin::Bridge => {
            let bridge = p
                .bridge
                .as_deref()
                .filter(|b| !b.is_empty())
                .unwrap_or(DEFAULT_BRIDGE);
            if action == Action::Online {
                // `ip` rather than /sys/class/net, which shows the
                // network namespace /sys was mounted in.
                let shown = host
                    .run(&argv(&["ip", "-o", "link", "show", "dev", bridge]))
                    .map_err(|_| HotplugError::NoBridge(bridge.to_owned()))?;
                report.mtu = p.mtu.or_else(|| parse_mtu(&shown));
            }
            bridge_steps(&p.dev, bridge, report.mtu, action)
        }
        Builtin::Route => {
            let host_ip = match host_ipv4(host, p.gatewaydev.as_deref()) {
                Ok(a) => a,
                Err(e) if action == Action::Online => return Err(e),
                // Going offline without an address: just take the TAP down.
                Err(_) => {
                    return run_steps(
                        host,
                        &route_steps(&p.dev, "0.0.0.0", &[], action),
                        &mut report,
                    )
                    .map(|()| report);
                }
            };
            route_steps(&p.dev, &host_ip, &ip_list(p.ip.as_deref()), action)
        }
        Builtin::Nat => {
            let (g, r) = nat_addresses(p.domid, p.devid, p.ip.as_deref())?;
            nat_steps(&p.dev, g, r, action)
        }
    };
    run_steps(host, &steps, &mut report)?;
    Ok(report)
}

/// [`HostOps`] on this machine: `std::process::Command` and plain files.
#[derive(Debug, Default)]
pub struct SystemHost;

/// Keep at most this much of a script's stderr for the error message.
const STDERR_KEEP: usize = 2048;

impl HostOps for SystemHost {
    fn run(&mut self, argv: &[String]) -> Result<String, String> {
        let (cmd, args) = argv
            .split_first()
            .ok_or_else(|| "empty command".to_owned())?;
        let out = Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cmd}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!("{}: {}", out.status, err.trim()))
        }
    }

    fn write_file(&mut self, path: &str, value: &str) -> io::Result<()> {
        std::fs::write(path, value)
    }

    fn is_executable(&mut self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn run_script(
        &mut self,
        path: &Path,
        args: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), String> {
        let mut child = Command::new(path)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run: {e}"))?;
        let mut stderr = child.stderr.take().expect("piped");
        // Drain stderr on a thread so a chatty script never blocks on a
        // full pipe; keep only its end.
        let reader = std::thread::spawn(move || {
            let mut keep = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > STDERR_KEEP {
                    keep.drain(..keep.len() - STDERR_KEEP);
                }
            }
            keep
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("timed out after {}s", timeout.as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("waiting failed: {e}")),
            }
        };
        let err = reader.join().unwrap_or_default();
        let err = String::from_utf8_lossy(&err);
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{s}: {}", err.trim())),
            Err(m) => Err(m),
        }
    }
}

/// A [`HostOps`] that records and answers from tables, for tests.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::collections::HashMap;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::HostOps;

    /// Everything the code under test did, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Op {
        /// A command.
        Run(String),
        /// A file written.
        Write(String, String),
        /// A script run.
        Script(PathBuf, Vec<String>, Vec<(String, String)>),
    }

    /// Commands fail unless given an answer; files read from a table.
    #[derive(Debug, Default)]
    pub struct MockHost {
        /// What happened.
        pub ops: Vec<Op>,
        /// Command line (joined by spaces) → stdout; others fail.
        pub answers: HashMap<String, String>,
        /// Commands that succeed with empty output unless in `fail`.
        pub succeed_by_default: bool,
        /// Command lines that fail.
        pub fail: Vec<String>,
        /// Executable scripts and their result.
        pub scripts: HashMap<PathBuf, Result<(), String>>,
    }

    impl HostOps for MockHost {
        fn run(&mut self, argv: &[String]) -> Result<String, String> {
            let line = argv.join(" ");
            self.ops.push(Op::Run(line.clone()));
            if self.fail.contains(&line) {
                return Err("exit status: 1".into());
            }
            match self.answers.get(&line) {
                Some(a) => Ok(a.clone()),
                None if self.succeed_by_default => Ok(String::new()),
                None => Err("exit status: 1".into()),
            }
        }
        fn write_file(&mut self, path: &str, value: &str) -> io::Result<()> {
            self.ops.push(Op::Write(path.into(), value.into()));
            Ok(())
        }
        fn is_executable(&mut self, path: &Path) -> bool {
            self.scripts.contains_key(path)
        }
        fn run_script(
            &mut self,
            path: &Path,
            args: &[String],
            env: &[(String, String)],
            _timeout: Duration,
        ) -> Result<(), String> {
            self.ops
                .push(Op::Script(path.into(), args.to_vec(), env.to_vec()));
            self.scripts.get(path).cloned().unwrap_or(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::{MockHost, Op};
    use super::*;

    fn params() -> VifParams {
        VifParams {
            domid: 7,
            devid: 1,
            dev: "vif7.1".into(),
            ..Default::default()
        }
    }

    fn runs(h: &MockHost) -> Vec<String> {
        h.ops
            .iter()
            .map(|o| match o {
                Op::Run(l) => l.clone(),
                Op::Write(p, v) => format!("echo {v} > {p}"),
                Op::Script(p, a, _) => format!("{} {}", p.display(), a.join(" ")),
            })
            .collect()
    }

    const DIR: &str = "/etc/xen/scripts";

    #[test]
    fn script_paths_resolve_like_libxl() {
        let d = Path::new(DIR);
        assert_eq!(script_path(None, d), d.join("vif-bridge"));
        assert_eq!(script_path(Some(""), d), d.join("vif-bridge"));
        assert_eq!(script_path(Some("vif-route"), d), d.join("vif-route"));
        assert_eq!(
            script_path(Some("/opt/my-vif"), d),
            PathBuf::from("/opt/my-vif")
        );
        assert_eq!(Builtin::for_script(&d.join("vif-nat")), Some(Builtin::Nat));
        assert_eq!(Builtin::for_script(Path::new("/opt/my-vif")), None);
    }

    #[test]
    fn a_present_script_runs_with_xens_arguments_and_environment() {
        let mut h = MockHost::default();
        let path = PathBuf::from(DIR).join("vif-route");
        h.scripts.insert(path.clone(), Ok(()));
        let mut p = params();
        p.script = Some("vif-route".into());
        p.gatewaydev = Some("eth1".into());
        let r = hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap();
        assert_eq!(r.ran_script.as_deref(), Some(path.as_path()));
        let Op::Script(sp, args, env) = &h.ops[0] else {
            panic!("{:?}", h.ops)
        };
        assert_eq!(sp, &path);
        assert_eq!(args, &["online", "type_if=vif"]);
        let get = |k: &str| env.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("XENBUS_PATH"), Some("backend/vif/7/1"));
        assert_eq!(get("XENBUS_TYPE"), Some("vif"));
        assert_eq!(get("XENBUS_BASE_PATH"), Some("backend"));
        assert_eq!(get("vif"), Some("vif7.1"));
        assert_eq!(get("netdev"), Some("eth1"));
        assert_eq!(get("script"), Some("/etc/xen/scripts/vif-route"));
        assert_eq!(h.ops.len(), 1, "nothing built-in runs besides the script");
        assert_eq!(
            status_nodes(&Ok(r)),
            vec![("hotplug-status", "connected".to_owned())]
        );

        // A failing script: hotplug-error then hotplug-status=error.
        h.scripts
            .insert(path, Err("exit status: 1: no eth1".into()));
        let e = hotplug(&mut h, &p, Action::Online, Path::new(DIR));
        let nodes = status_nodes(&e);
        assert_eq!(nodes[0].0, "hotplug-error");
        assert!(nodes[0].1.contains("no eth1"), "{}", nodes[0].1);
        assert_eq!(nodes[1], ("hotplug-status", "error".to_owned()));
    }

    #[test]
    fn builtin_bridge() {
        let mut h = MockHost {
            succeed_by_default: true,
            ..Default::default()
        };
        h.answers.insert(
            "ip -o link show dev xenbr0".into(),
            "5: xenbr0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000 qdisc noqueue state UP\n".into(),
        );
        let r = hotplug(&mut h, &params(), Action::Online, Path::new(DIR)).unwrap();
        assert_eq!(r.mtu, Some(9000));
        assert_eq!(
            runs(&h),
            [
                "ip -o link show dev xenbr0",
                "ip link set dev vif7.1 mtu 9000",
                "ip link set dev vif7.1 master xenbr0",
                "ip link set dev vif7.1 up",
            ]
        );
        // mtu= wins over the bridge's; bridge= names the bridge.
        let mut h = MockHost {
            succeed_by_default: true,
            ..Default::default()
        };
        let mut p = params();
        p.bridge = Some("br-lab".into());
        p.mtu = Some(1400);
        hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap();
        assert_eq!(runs(&h)[1], "ip link set dev vif7.1 mtu 1400");
        assert_eq!(runs(&h)[2], "ip link set dev vif7.1 master br-lab");
        // Offline ignores failures.
        let mut h = MockHost::default();
        hotplug(&mut h, &p, Action::Offline, Path::new(DIR)).unwrap();
        assert_eq!(
            runs(&h),
            [
                "ip link set dev vif7.1 nomaster",
                "ip link set dev vif7.1 down"
            ]
        );
    }

    #[test]
    fn builtin_bridge_needs_the_bridge() {
        let mut h = MockHost {
            succeed_by_default: true,
            fail: vec!["ip -o link show dev xenbr0".into()],
            ..Default::default()
        };
        let e = hotplug(&mut h, &params(), Action::Online, Path::new(DIR));
        assert!(matches!(e, Err(HotplugError::NoBridge(ref b)) if b == "xenbr0"));
        assert_eq!(status_nodes(&e)[0].1, "Could not find bridge device xenbr0");
        let mut h = MockHost {
            succeed_by_default: true,
            fail: vec!["ip link set dev vif7.1 master xenbr0".into()],
            ..Default::default()
        };
        let e = hotplug(&mut h, &params(), Action::Online, Path::new(DIR)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ip link set dev vif7.1 master xenbr0 failed")
        );
    }

    #[test]
    fn builtin_route() {
        let mut h = MockHost {
            succeed_by_default: true,
            ..Default::default()
        };
        h.answers.insert(
            "ip -4 route show default".into(),
            "default via 10.0.2.2 dev enp1s0 proto dhcp src 10.0.2.15 metric 100\n".into(),
        );
        h.answers.insert(
            "ip -4 -o addr show primary dev enp1s0".into(),
            "2: enp1s0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic enp1s0\\       valid_lft 86000sec preferred_lft 86000sec\n".into(),
        );
        let mut p = params();
        p.script = Some("vif-route".into());
        p.ip = Some("10.0.9.5 10.0.9.6".into());
        hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap();
        assert_eq!(
            runs(&h),
            [
                "ip -4 route show default",
                "ip -4 -o addr show primary dev enp1s0",
                "ip addr add 10.0.2.15/32 dev vif7.1",
                "ip link set dev vif7.1 up",
                "echo 1 > /proc/sys/net/ipv4/conf/vif7.1/proxy_arp",
                "echo 1 > /proc/sys/net/ipv4/conf/vif7.1/forwarding",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
                "ip route add 10.0.9.5 dev vif7.1 src 10.0.2.15 metric 2",
                "ip route add 10.0.9.6 dev vif7.1 src 10.0.2.15 metric 2",
            ]
        );
        // gatewaydev= names the interface; without an address, an error.
        let mut h = MockHost::default();
        p.gatewaydev = Some("eth9".into());
        let e = hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap_err();
        assert_eq!(runs(&h), ["ip -4 -o addr show primary dev eth9"]);
        assert!(matches!(e, HotplugError::NoHostAddress(_)));
        // Offline removes the routes, ignoring failures.
        let mut h = MockHost::default();
        h.answers.insert(
            "ip -4 -o addr show primary dev eth9".into(),
            "3: eth9 inet 192.168.1.4/24 scope global eth9\n".into(),
        );
        hotplug(&mut h, &p, Action::Offline, Path::new(DIR)).unwrap();
        assert_eq!(
            runs(&h)[1..],
            [
                "ip route del 10.0.9.5 dev vif7.1 src 192.168.1.4 metric 2",
                "ip route del 10.0.9.6 dev vif7.1 src 192.168.1.4 metric 2",
                "ip link set dev vif7.1 down",
            ]
        );
    }

    #[test]
    fn builtin_nat() {
        assert_eq!(
            nat_addresses(300, 0, None).unwrap(),
            ("10.1.44.1".parse().unwrap(), "10.1.44.128".parse().unwrap())
        );
        assert_eq!(
            nat_addresses(1, 0, Some("192.168.7.9/24")).unwrap().1,
            "192.168.7.136".parse::<std::net::Ipv4Addr>().unwrap()
        );
        assert!(nat_addresses(1, 0, Some("192.168.7.200")).is_err());
        assert!(nat_addresses(1, 0, Some("fe80::1")).is_err());
        assert!(nat_addresses(1, 255, None).is_err());

        let mut h = MockHost {
            succeed_by_default: true,
            // No iptables: a warning, not a failure.
            fail: vec![
                "iptables -w -t nat -C POSTROUTING -s 10.0.7.2/32 ! -o vif7.1 -j MASQUERADE".into(),
                "iptables -w -t nat -A POSTROUTING -s 10.0.7.2/32 ! -o vif7.1 -j MASQUERADE".into(),
            ],
            ..Default::default()
        };
        let mut p = params();
        p.script = Some("vif-nat".into());
        let r = hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap();
        assert_eq!(
            runs(&h),
            [
                "ip link set dev vif7.1 up arp on",
                "ip addr add 10.0.7.129/32 dev vif7.1",
                "ip route add 10.0.7.2 dev vif7.1 src 10.0.7.129",
                "echo 1 > /proc/sys/net/ipv4/conf/vif7.1/proxy_arp",
                "echo 1 > /proc/sys/net/ipv4/conf/vif7.1/forwarding",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
                "iptables -w -t nat -C POSTROUTING -s 10.0.7.2/32 ! -o vif7.1 -j MASQUERADE",
                "iptables -w -t nat -A POSTROUTING -s 10.0.7.2/32 ! -o vif7.1 -j MASQUERADE",
            ]
        );
        assert_eq!(r.warnings.len(), 1);
        // An existing rule is not added twice.
        let mut h = MockHost {
            succeed_by_default: true,
            ..Default::default()
        };
        hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap();
        assert!(!runs(&h).iter().any(|l| l.contains(" -A ")));
        let mut h = MockHost::default();
        hotplug(&mut h, &p, Action::Offline, Path::new(DIR)).unwrap();
        assert_eq!(
            runs(&h),
            [
                "iptables -w -t nat -D POSTROUTING -s 10.0.7.2/32 ! -o vif7.1 -j MASQUERADE",
                "ip route del 10.0.7.2 dev vif7.1 src 10.0.7.129",
                "ip link set dev vif7.1 down",
            ]
        );
    }

    #[test]
    fn unknown_script_is_an_error() {
        let mut h = MockHost::default();
        let mut p = params();
        p.script = Some("vif-openvswitch".into());
        let e = hotplug(&mut h, &p, Action::Online, Path::new(DIR)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "hotplug script /etc/xen/scripts/vif-openvswitch not found"
        );
        assert!(h.ops.is_empty());
    }

    #[test]
    fn parsers() {
        assert_eq!(
            parse_first_ipv4("2: eth0    inet 169.254.3.1/16 scope link eth0\n"),
            Some("169.254.3.1".into())
        );
        assert_eq!(parse_first_ipv4(""), None);
        assert_eq!(
            parse_default_dev("default dev wg0 scope link\n"),
            Some("wg0".into())
        );
        assert_eq!(parse_default_dev("10.0.0.0/8 dev eth0\n"), None);
        assert_eq!(parse_mtu("2: br0: <UP> mtu 1400 qdisc noqueue"), Some(1400));
        assert_eq!(parse_mtu("2: br0: <UP> qdisc"), None);
        assert_eq!(
            ip_list(Some(" 1.2.3.4,5.6.7.8  9.9.9.9")),
            ["1.2.3.4", "5.6.7.8", "9.9.9.9"]
        );
    }
}
