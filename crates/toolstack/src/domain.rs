//! The domain lifecycle: rxen's `libxl_domain_*`.
//!
//! A domain exists while its runtime directory `<run>/domain/<domid>/` does (rxen's
//! equivalent of the hypervisor's domain list). [`Toolstack::create`] reserves a domain
//! id and a name under a host-wide lock, lays out the domain's XenStore nodes, writes its
//! effective configuration (`config.json`, with the uuid and MAC addresses chosen here, as
//! libxl chooses them) and starts the domain process, which the contract in
//! `docs/domain-process.md` describes. [`Toolstack::destroy`] removes every trace: the
//! process, the XenStore nodes and the runtime directory.
//!
//! Domain ids are handed out as Xen's hypervisor does: the one after the last one given,
//! wrapping below `DOMID_FIRST_RESERVED`, so a restarted domain comes back under a new
//! id. Domain-0 is the host; its line in [`Toolstack::list`] describes the host.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use xl_config::{Bitmap, DomainConfig, Uuid};

use crate::control::{self, ControlError, ControlInfo};
use crate::host;
use crate::paths::{Paths, domain_files as f};
use crate::process::{self, FileLock, ProcessError, ProcessHandle};
use crate::store::{DOM0_NAME, Skeleton, Store, StoreError};

/// The first domain id Xen reserves (`DOMID_FIRST_RESERVED`).
pub const DOMID_FIRST_RESERVED: u32 = 0x7FF0;

/// How long a domain process may take to answer `info` after it is started.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a guest may take to acknowledge a shutdown request (libxl's limit).
pub const SHUTDOWN_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// The memory libxl gives a domain whose configuration names none (32 MiB).
pub const DEFAULT_MEMKB: u64 = 32 * 1024;

/// A lifecycle step failed.
#[derive(Debug, Error)]
pub enum DomainError {
    /// A XenStore step.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A runtime file or directory.
    #[error("{what} {}", path.display())]
    Runtime {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A process step.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// No such domain.
    #[error("domain {0} does not exist")]
    NotFound(String),
    /// The name is taken.
    #[error("Domain with name \"{name}\" already exists (domain {domid})")]
    NameTaken { name: String, domid: u32 },
    /// The name is not usable.
    #[error("invalid domain name {0:?}: {1}")]
    BadName(String, &'static str),
    /// Every domain id is in use.
    #[error("no free domain id")]
    NoDomid,
    /// `config.json` could not be read back.
    #[error("domain {domid}: cannot parse {}", path.display())]
    ConfigJson {
        domid: u32,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Random bytes for a uuid or MAC address.
    #[error("cannot read random bytes")]
    Random(#[source] std::io::Error),
    /// The domain process could not be started.
    #[error("cannot start the domain process {}", bin.display())]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The domain process ended before it was up.
    #[error("the domain process for domain {domid} exited ({status}) before the domain was up; see {}", log.display())]
    ProcessExited {
        domid: u32,
        status: String,
        log: PathBuf,
    },
    /// The domain process did not come up in time.
    #[error("the domain process for domain {domid} did not answer on its control socket within {}s; see {}", START_TIMEOUT.as_secs(), log.display())]
    StartTimeout { domid: u32, log: PathBuf },
    /// A control request.
    #[error("domain {domid}")]
    Control {
        domid: u32,
        #[source]
        source: ControlError,
    },
    /// The domain is not running (shut down, crashed or starting).
    #[error("domain {0} is not running")]
    NotRunning(u32),
    /// Domain-0 is the host.
    #[error("domain 0 is the host: rxen cannot {0} it")]
    Dom0(&'static str),
    /// A vCPU number out of range.
    #[error("domain {domid} has no vCPU {vcpu}")]
    NoVcpu { domid: u32, vcpu: u32 },
    /// A device cannot be added, removed or changed as asked (nothing was changed).
    #[error("{0}")]
    Device(String),
    /// The domain has no such device.
    #[error("domain {domid} has no {what}")]
    NoDevice { domid: u32, what: String },
    /// CPUs the host does not have.
    #[error("CPUs {cpus} do not exist on this host (it has CPUs {host})")]
    NoSuchCpus { cpus: Bitmap, host: Bitmap },
}

fn runtime(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DomainError {
    let path = path.to_owned();
    move |source| DomainError::Runtime { what, path, source }
}

/// Why a domain shut down (`libxl_shutdown_reason`), in the words of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The guest powered off.
    Poweroff,
    /// The guest rebooted.
    Reboot,
    /// The guest suspended.
    Suspend,
    /// The guest crashed (or its domain process failed).
    Crash,
    /// The guest's watchdog fired.
    Watchdog,
    /// The guest asked for a soft reset.
    SoftReset,
}

impl ShutdownReason {
    /// Every reason, in Xen's code order.
    pub const ALL: [ShutdownReason; 6] = [
        ShutdownReason::Poweroff,
        ShutdownReason::Reboot,
        ShutdownReason::Suspend,
        ShutdownReason::Crash,
        ShutdownReason::Watchdog,
        ShutdownReason::SoftReset,
    ];

    /// Xen's code (`SHUTDOWN_poweroff` = 0 ...).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The letter `xl list` shows after `s` (`-rscwS`).
    pub fn letter(self) -> char {
        ['-', 'r', 's', 'c', 'w', 'S'][self as usize]
    }

    /// The word in the `shutdown` file.
    pub fn name(self) -> &'static str {
        [
            "poweroff",
            "reboot",
            "suspend",
            "crash",
            "watchdog",
            "soft_reset",
        ][self as usize]
    }

    /// Reads the word in the `shutdown` file.
    pub fn from_name(s: &str) -> Option<ShutdownReason> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// What `xl list` knows of one domain (`libxl_dominfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain id.
    pub domid: u32,
    /// Its name.
    pub name: String,
    /// Its uuid (nil for Domain-0).
    pub uuid: Uuid,
    /// Memory it has now, in KiB.
    pub current_memkb: u64,
    /// Its maximum memory, in KiB.
    pub max_memkb: u64,
    /// vCPUs online.
    pub vcpu_online: u32,
    /// vCPUs it may have.
    pub vcpu_max: u32,
    /// A vCPU is running on a CPU now.
    pub running: bool,
    /// No vCPU is running and none is runnable.
    pub blocked: bool,
    /// Paused by the toolstack (or not started yet).
    pub paused: bool,
    /// Shut down, with the reason.
    pub shutdown: Option<ShutdownReason>,
    /// Being destroyed.
    pub dying: bool,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// The domain process (none for Domain-0).
    pub pid: Option<i32>,
}

impl DomainInfo {
    /// The six state letters of `xl list`: r b p s (reason) d.
    pub fn state_letters(&self) -> String {
        let flag = |b: bool, c: char| if b { c } else { '-' };
        let mut s = String::with_capacity(6);
        s.push(flag(self.running, 'r'));
        s.push(flag(self.blocked, 'b'));
        s.push(flag(self.paused, 'p'));
        s.push(flag(self.shutdown.is_some(), 's'));
        s.push(self.shutdown.map_or('-', ShutdownReason::letter));
        s.push(flag(self.dying, 'd'));
        s
    }
}

/// One vCPU line of `xl vcpu-list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuState {
    /// The vCPU number.
    pub vcpuid: u32,
    /// Online.
    pub online: bool,
    /// The host CPU it is on (or last ran on).
    pub cpu: Option<u32>,
    /// Running now.
    pub running: bool,
    /// Waiting for something to do.
    pub blocked: bool,
    /// CPU time used, in nanoseconds.
    pub time_ns: u64,
    /// The CPUs it may run on.
    pub hard_affinity: Bitmap,
}

/// How to create a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Leave it paused (`xl create -p`).
    pub paused: bool,
}

/// A domain just created.
#[derive(Debug)]
pub struct Created {
    /// Its id.
    pub domid: u32,
    /// Its effective configuration.
    pub config: DomainConfig,
    /// Its domain process.
    pub process: ProcessHandle,
    /// `CLOCK_MONOTONIC` when the domain process was started, in nanoseconds.
    pub spawned_ns: u64,
}

/// What [`Toolstack::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The domain shuts down or goes away (`xl shutdown -w`).
    ShutdownOrDeath,
    /// The domain goes away (`xl shutdown -w -w`).
    Death,
}

/// The toolstack: the host's paths and a XenStore connection.
#[derive(Debug)]
pub struct Toolstack {
    /// Where things are.
    pub paths: Paths,
    store: Store,
}

impl Toolstack {
    /// Connects to xenstored (it must be running) and makes sure Domain-0's nodes exist.
    pub fn open(paths: Paths) -> Result<Toolstack, DomainError> {
        let mut store = Store::connect()?;
        store.ensure_dom0()?;
        let ts = Toolstack { paths, store };
        if !ts.paths.hypervisor_log().exists() {
            ts.boot_banner();
        }
        Ok(ts)
    }

    /// The XenStore connection.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Appends a line to rxen's hypervisor log (`xl dmesg`).
    pub fn hvlog(&self, msg: &str) {
        let path = self.paths.hypervisor_log();
        if let Some(d) = path.parent() {
            let _ = fs::create_dir_all(d);
        }
        let ns = process::boottime_ns();
        let line = format!(
            "(XEN) [{:5}.{:06}] {msg}\n",
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000
        );
        match fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(mut file) => {
                let _ = file.write_all(line.as_bytes());
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot write the hypervisor log")
            }
        }
    }

    fn boot_banner(&self) {
        let u = host::uname();
        self.hvlog(&format!(
            "rxen: Xen {}.{}{} interface on Linux KVM, host {} {} {}",
            crate::info::XEN_MAJOR,
            crate::info::XEN_MINOR,
            crate::info::XEN_EXTRA,
            u.nodename,
            u.release,
            u.machine
        ));
        match host::kvm_info() {
            Some(k) => self.hvlog(&format!(
                "rxen: KVM API version {}, Xen HVM support flags {:#x}",
                k.api_version, k.xen_hvm_flags.0
            )),
            None => self.hvlog("rxen: /dev/kvm is not available: domains cannot run"),
        }
    }

    /// The ids of the guest domains, in order (Domain-0 not included).
    pub fn domids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = fs::read_dir(self.paths.domains_dir())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|id| *id != 0)
                    .collect()
            })
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// Whether domain `domid` exists.
    pub fn exists(&self, domid: u32) -> bool {
        domid == 0 || self.paths.domain_dir(domid).is_dir()
    }

    /// A domain's name (`libxl_domid_to_name`).
    pub fn name_of(&mut self, domid: u32) -> Result<Option<String>, DomainError> {
        if !self.exists(domid) {
            return Ok(None);
        }
        Ok(self.store.domain_name(domid)?)
    }

    /// A domain's id from a name or a number (`libxl_domain_qualifier_to_domid`): an
    /// all-digit qualifier is an id (whether or not the domain exists), anything else a
    /// name that must exist.
    pub fn lookup(&mut self, qualifier: &str) -> Result<u32, DomainError> {
        if !qualifier.is_empty() && qualifier.bytes().all(|b| b.is_ascii_digit()) {
            return qualifier
                .parse()
                .map_err(|_| DomainError::NotFound(qualifier.to_owned()));
        }
        self.find_name(qualifier)?
            .ok_or_else(|| DomainError::NotFound(qualifier.to_owned()))
    }

    /// The domain with a name, if any (Domain-0 included). Every domain's name is read
    /// in one round trip.
    pub fn find_name(&mut self, name: &str) -> Result<Option<u32>, DomainError> {
        let ids: Vec<u32> = std::iter::once(0).chain(self.domids()).collect();
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("/local/domain/{id}/name"))
            .collect();
        let names = self.store.read_many(&paths)?;
        Ok(ids
            .into_iter()
            .zip(names)
            .find(|(_, n)| n.as_deref() == Some(name))
            .map(|(id, _)| id))
    }

    /// A domain's effective configuration (`config.json`).
    pub fn config(&self, domid: u32) -> Result<DomainConfig, DomainError> {
        let path = self.paths.domain_dir(domid).join(f::CONFIG);
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DomainError::NotFound(domid.to_string())
            } else {
                DomainError::Runtime {
                    what: "cannot read",
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        DomainConfig::from_json(&text).map_err(|source| DomainError::ConfigJson {
            domid,
            path,
            source,
        })
    }

    /// Domain-0's configuration, as `xl list -l` shows it: its name, vCPUs and memory.
    pub fn dom0_config(&mut self) -> Result<DomainConfig, DomainError> {
        let mut c = DomainConfig::default();
        c.c_info.name = Some(self.name_of(0)?.unwrap_or_else(|| DOM0_NAME.to_owned()));
        let cpus = host::online_cpus().map_err(|e| DomainError::Runtime {
            what: "cannot read the host's CPUs from",
            path: "/sys/devices/system/cpu/online".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let n = cpus.iter().count() as u32;
        c.b_info.max_vcpus = n;
        c.b_info.avail_vcpus = Bitmap::first(n);
        let mem = host::read_meminfo().unwrap_or_default();
        c.b_info.max_memkb = Some(mem.total_kib);
        c.b_info.target_memkb = Some(mem.total_kib);
        Ok(c)
    }

    fn pid_of(&self, domid: u32) -> Option<i32> {
        fs::read_to_string(self.paths.domain_dir(domid).join(f::PID))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn control_socket(&self, domid: u32) -> PathBuf {
        self.paths.domain_dir(domid).join(f::CONTROL)
    }

    /// The `shutdown` file's reason, if the domain process wrote one.
    pub fn shutdown_reason(&self, domid: u32) -> Option<ShutdownReason> {
        let s = fs::read_to_string(self.paths.domain_dir(domid).join(f::SHUTDOWN)).ok()?;
        Some(ShutdownReason::from_name(s.trim()).unwrap_or(ShutdownReason::Crash))
    }

    /// Whether the domain's process runs and answers.
    fn live_info(&self, domid: u32) -> Option<ControlInfo> {
        let pid = self.pid_of(domid)?;
        if !process::is_alive(pid) {
            return None;
        }
        control::info(&self.control_socket(domid)).ok()
    }

    /// One domain's `libxl_dominfo`.
    pub fn info(&mut self, domid: u32) -> Result<DomainInfo, DomainError> {
        if domid == 0 {
            return self.dom0_info();
        }
        if !self.exists(domid) {
            return Err(DomainError::NotFound(domid.to_string()));
        }
        let dir = self.paths.domain_dir(domid);
        let config = self.config(domid).unwrap_or_default();
        let name = self
            .name_of(domid)?
            .or_else(|| config.c_info.name.clone())
            .unwrap_or_default();
        let vm = self.store.read(&format!("/local/domain/{domid}/vm"))?;
        let uuid = vm
            .as_deref()
            .and_then(|v| v.strip_prefix("/vm/"))
            .and_then(|u| u.parse().ok())
            .or(config.c_info.uuid)
            .unwrap_or(Uuid([0; 16]));
        let b = &config.b_info;
        let max_memkb = b.max_memkb.unwrap_or(DEFAULT_MEMKB);
        let mut d = DomainInfo {
            domid,
            name,
            uuid,
            current_memkb: b.target_memkb.unwrap_or(max_memkb),
            max_memkb,
            vcpu_online: b.avail_vcpus.iter().count() as u32,
            vcpu_max: b.max_vcpus,
            running: false,
            blocked: false,
            paused: false,
            shutdown: None,
            dying: dir.join(f::DYING).exists(),
            cpu_time_ns: 0,
            pid: self.pid_of(domid),
        };
        match self.live_info(domid) {
            Some(ci) => {
                d.current_memkb = ci.memory_kib;
                d.vcpu_online = ci.vcpus.iter().filter(|v| v.online).count() as u32;
                d.cpu_time_ns = ci.vcpus.iter().map(|v| v.cpu_time_ns).sum();
                match ci.state.as_str() {
                    "paused" => d.paused = true,
                    "shutdown" => {
                        d.shutdown = Some(
                            ci.reason
                                .as_deref()
                                .and_then(ShutdownReason::from_name)
                                .unwrap_or(ShutdownReason::Crash),
                        )
                    }
                    _ => {
                        let pid = d.pid.unwrap_or(0);
                        d.running = threads_running(pid, &ci);
                        d.blocked = !d.running;
                    }
                }
            }
            None => {
                if let Some(r) = self.shutdown_reason(domid) {
                    d.shutdown = Some(r);
                    d.cpu_time_ns = fs::read_to_string(dir.join(f::CPU_TIME))
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                } else if d.pid.is_some_and(|p| !process::is_alive(p)) {
                    // Gone without a reason: the domain process failed.
                    d.shutdown = Some(ShutdownReason::Crash);
                } else {
                    // Being built: Xen shows a domain under construction paused.
                    d.paused = true;
                }
            }
        }
        Ok(d)
    }

    fn dom0_info(&mut self) -> Result<DomainInfo, DomainError> {
        let name = self.name_of(0)?.unwrap_or_else(|| DOM0_NAME.to_owned());
        let mem = host::read_meminfo().unwrap_or_default();
        let cpus = host::online_cpus()
            .map(|m| m.iter().count() as u32)
            .unwrap_or(1);
        let time = host::read_cpu_times().map(|t| t.total_ns).unwrap_or(0);
        Ok(DomainInfo {
            domid: 0,
            name,
            uuid: Uuid([0; 16]),
            current_memkb: mem.total_kib,
            max_memkb: mem.total_kib,
            vcpu_online: cpus,
            vcpu_max: cpus,
            // xl itself is running on it.
            running: true,
            blocked: false,
            paused: false,
            shutdown: None,
            dying: false,
            cpu_time_ns: time,
            pid: None,
        })
    }

    /// Every domain, Domain-0 first (`libxl_list_domain`).
    pub fn list(&mut self) -> Result<Vec<DomainInfo>, DomainError> {
        let mut v = vec![self.dom0_info()?];
        for id in self.domids() {
            match self.info(id) {
                Ok(d) => v.push(d),
                // Destroyed while we looked.
                Err(DomainError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(v)
    }

    /// Fills in what libxl decides at creation: a uuid, MAC addresses, memory and vCPUs
    /// left to their defaults (`libxl__domain_config_setdefault`).
    pub fn set_defaults(config: &mut DomainConfig) -> Result<(), DomainError> {
        if config.c_info.uuid.is_none() {
            let mut b = [0u8; 16];
            random_bytes(&mut b)?;
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            config.c_info.uuid = Some(Uuid(b));
        }
        let b = &mut config.b_info;
        if b.max_vcpus == 0 {
            b.max_vcpus = 1;
        }
        if b.avail_vcpus.is_empty() {
            b.avail_vcpus = Bitmap::first(b.max_vcpus);
        }
        let max = b.max_memkb.unwrap_or(DEFAULT_MEMKB);
        b.max_memkb = Some(max);
        b.target_memkb = Some(b.target_memkb.unwrap_or(max));
        // Devids as libxl_device_nic_set_devids: unnumbered NICs after the
        // highest number given. MACs not given are stable for the domain
        // (docs/networking.md), unlike libxl's random ones.
        let mut last = config.nics.iter().map(|n| n.devid).max().unwrap_or(-1);
        let uuid = config.c_info.uuid.map(|u| u.0).unwrap_or_default();
        for nic in &mut config.nics {
            if nic.devid < 0 {
                last += 1;
                nic.devid = last;
            }
            if nic.mac.is_none() {
                nic.mac = Some(backends::net::mac::generated(
                    &uuid,
                    nic.devid.unsigned_abs(),
                ));
            }
        }
        Ok(())
    }

    /// Creates a domain and starts its domain process; returns once the process answers
    /// on its control socket. On failure nothing is left behind.
    pub fn create(
        &mut self,
        mut config: DomainConfig,
        opts: CreateOptions,
    ) -> Result<Created, DomainError> {
        Self::set_defaults(&mut config)?;
        let name = config.c_info.name.clone().unwrap_or_default();
        check_name(&name)?;
        let domains = self.paths.domains_dir();
        fs::create_dir_all(&domains).map_err(runtime("cannot create", &domains))?;

        let lock = FileLock::acquire(&self.paths.lock_file())?;
        self.check_name_free(&name, None)?;
        let domid = self.allocate_domid()?;
        let dir = self.paths.domain_dir(domid);
        let result = self.lay_out(domid, &config);
        drop(lock);
        if let Err(e) = result {
            self.remove_traces(domid);
            return Err(e);
        }
        tracing::info!(domid, name, "domain laid out");

        match self.start_process(domid, &dir, &name, opts) {
            Ok((process, spawned_ns)) => {
                self.hvlog(&format!(
                    "d{domid}: created \"{name}\" ({} vCPUs, {} MiB){}",
                    config.b_info.max_vcpus,
                    config.b_info.target_memkb.unwrap_or_default() / 1024,
                    if opts.paused { ", paused" } else { "" }
                ));
                Ok(Created {
                    domid,
                    config,
                    process,
                    spawned_ns,
                })
            }
            Err(e) => {
                self.remove_traces(domid);
                Err(e)
            }
        }
    }

    fn check_name_free(&mut self, name: &str, except: Option<u32>) -> Result<(), DomainError> {
        let ids: Vec<u32> = std::iter::once(0)
            .chain(self.domids())
            .filter(|id| Some(*id) != except)
            .collect();
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("/local/domain/{id}/name"))
            .collect();
        let names = self.store.read_many(&paths)?;
        match ids
            .into_iter()
            .zip(names)
            .find(|(_, n)| n.as_deref() == Some(name))
        {
            Some((domid, _)) => Err(DomainError::NameTaken {
                name: name.to_owned(),
                domid,
            }),
            None => Ok(()),
        }
    }

    /// The next free id after the last one handed out; its runtime directory is created
    /// to claim it. Called under the allocation lock.
    fn allocate_domid(&mut self) -> Result<u32, DomainError> {
        let last_file = self.paths.last_domid_file();
        let last: u32 = fs::read_to_string(&last_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut id = last;
        for _ in 1..DOMID_FIRST_RESERVED {
            id = if id + 1 >= DOMID_FIRST_RESERVED {
                1
            } else {
                id + 1
            };
            let dir = self.paths.domain_dir(id);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    fs::write(&last_file, format!("{id}\n"))
                        .map_err(runtime("cannot write", &last_file))?;
                    return Ok(id);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(runtime("cannot create", &dir)(e)),
            }
        }
        Err(DomainError::NoDomid)
    }

    fn lay_out(&mut self, domid: u32, config: &DomainConfig) -> Result<(), DomainError> {
        let path = self.paths.domain_dir(domid).join(f::CONFIG);
        fs::write(&path, config.to_json()).map_err(runtime("cannot write", &path))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.store.write_skeleton(&Skeleton {
            domid,
            config,
            start_time: format!("{}.{:02}", now.as_secs(), now.subsec_millis() / 10),
        })?;
        self.store.write_disks(domid, config)?;
        self.store.write_nics(domid, config)?;
        Ok(())
    }

    fn start_process(
        &mut self,
        domid: u32,
        dir: &Path,
        name: &str,
        opts: CreateOptions,
    ) -> Result<(ProcessHandle, u64), DomainError> {
        let log = self.paths.domain_log(name);
        if let Some(d) = log.parent() {
            fs::create_dir_all(d).map_err(runtime("cannot create", d))?;
        }
        let logfile = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(runtime("cannot open", &log))?;
        let logfile2 = logfile.try_clone().map_err(runtime("cannot open", &log))?;
        let bin = self.paths.domain_bin.clone();
        let mut cmd = Command::new(&bin);
        cmd.arg("--domid")
            .arg(domid.to_string())
            .arg("--config")
            .arg(dir.join(f::CONFIG));
        if opts.paused {
            cmd.arg("--paused");
        }
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(logfile)
            .stderr(logfile2)
            .process_group(0);
        let spawned_ns = process::monotonic_ns();
        let child = cmd.spawn().map_err(|source| DomainError::Spawn {
            bin: bin.clone(),
            source,
        })?;
        tracing::debug!(domid, pid = child.id(), bin = %bin.display(), "domain process started");
        let mut handle = ProcessHandle::from_child(child)?;

        let socket = dir.join(f::CONTROL);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        loop {
            if handle.has_ended()? {
                let status = handle
                    .exit_status()
                    .map_or_else(|| "status unknown".to_owned(), |s| s.to_string());
                return Err(DomainError::ProcessExited { domid, status, log });
            }
            if control::info(&socket).is_ok() {
                return Ok((handle, spawned_ns));
            }
            if Instant::now() >= deadline {
                handle.kill();
                let _ = handle.wait(Some(Duration::from_secs(5)));
                return Err(DomainError::StartTimeout { domid, log });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Removes what a domain left (its process must be gone): XenStore nodes, then the
    /// runtime directory. Errors are logged, not returned: this is the last resort.
    fn remove_traces(&mut self, domid: u32) {
        if let Err(e) = self.store.release(domid) {
            tracing::warn!(domid, error = %crate::error_chain(&e), "release");
        }
        if let Err(e) = self.store.remove_domain(domid) {
            tracing::warn!(domid, error = %crate::error_chain(&e), "removing XenStore nodes");
        }
        let dir = self.paths.domain_dir(domid);
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(domid, dir = %dir.display(), error = %e, "removing the runtime directory");
            }
        }
    }

    /// Destroys a domain at once (`libxl_domain_destroy`): ends its process, releases it
    /// in xenstored, removes its XenStore nodes and its runtime directory.
    pub fn destroy(&mut self, domid: u32) -> Result<(), DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("destroy"));
        }
        let dir = self.paths.domain_dir(domid);
        if !dir.is_dir() {
            return Err(DomainError::NotFound(domid.to_string()));
        }
        let marker = dir.join(f::DYING);
        fs::write(&marker, b"").map_err(runtime("cannot write", &marker))?;
        if let Some(pid) = self.pid_of(domid) {
            if let Ok(mut h) = ProcessHandle::open(pid) {
                // Ask first; the process tears the VM down and exits.
                let _ = control::simple(&self.control_socket(domid), "destroy");
                if !h.wait(Some(Duration::from_secs(5)))? {
                    tracing::warn!(domid, pid, "domain process did not exit: killing it");
                    h.kill();
                    h.wait(Some(Duration::from_secs(10)))?;
                }
            }
        }
        self.remove_traces(domid);
        self.hvlog(&format!("d{domid}: destroyed"));
        Ok(())
    }

    pub(crate) fn live_control(&self, domid: u32) -> Result<PathBuf, DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("do that to"));
        }
        if !self.exists(domid) {
            return Err(DomainError::NotFound(domid.to_string()));
        }
        match self.pid_of(domid) {
            Some(pid) if process::is_alive(pid) => Ok(self.control_socket(domid)),
            _ => Err(DomainError::NotRunning(domid)),
        }
    }

    /// Pauses a domain's vCPUs.
    pub fn pause(&mut self, domid: u32) -> Result<(), DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("pause"));
        }
        let s = self.live_control(domid)?;
        control::simple(&s, "pause").map_err(|source| DomainError::Control { domid, source })?;
        self.hvlog(&format!("d{domid}: paused"));
        Ok(())
    }

    /// Lets a paused domain run again.
    pub fn unpause(&mut self, domid: u32) -> Result<(), DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("unpause"));
        }
        let s = self.live_control(domid)?;
        control::simple(&s, "unpause").map_err(|source| DomainError::Control { domid, source })?;
        self.hvlog(&format!("d{domid}: unpaused"));
        Ok(())
    }

    /// Asks the guest to power off or reboot (`request` is `poweroff` or `reboot`) through
    /// `control/shutdown`, and waits for it to acknowledge.
    pub fn request_shutdown(&mut self, domid: u32, request: &str) -> Result<(), DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("shut down"));
        }
        self.live_control(domid)?;
        self.store
            .request_shutdown(domid, request, SHUTDOWN_ACK_TIMEOUT)?;
        Ok(())
    }

    /// Waits until the domain has shut down or is gone; returns the shutdown reason, or
    /// `None` if it was destroyed.
    pub fn wait_for(
        &mut self,
        domid: u32,
        what: WaitFor,
    ) -> Result<Option<ShutdownReason>, DomainError> {
        let mut handle = self.pid_of(domid).and_then(|p| ProcessHandle::open(p).ok());
        loop {
            if !self.exists(domid) {
                return Ok(None);
            }
            if what == WaitFor::ShutdownOrDeath {
                let ended = match &mut handle {
                    Some(h) => h.has_ended()?,
                    None => self.pid_of(domid).is_some_and(|p| !process::is_alive(p)),
                };
                if ended {
                    return Ok(Some(
                        self.shutdown_reason(domid).unwrap_or(ShutdownReason::Crash),
                    ));
                }
                if handle.is_none() {
                    handle = self.pid_of(domid).and_then(|p| ProcessHandle::open(p).ok());
                }
            }
            match &mut handle {
                Some(h) if what == WaitFor::ShutdownOrDeath => {
                    h.wait(Some(Duration::from_millis(100)))?;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Renames a domain (`libxl_domain_rename`); the name must be free.
    pub fn rename(&mut self, domid: u32, new_name: &str) -> Result<(), DomainError> {
        check_name(new_name)?;
        if !self.exists(domid) {
            return Err(DomainError::NotFound(domid.to_string()));
        }
        fs::create_dir_all(&self.paths.run_dir)
            .map_err(runtime("cannot create", &self.paths.run_dir))?;
        let _lock = FileLock::acquire(&self.paths.lock_file())?;
        self.check_name_free(new_name, Some(domid))?;
        self.store.rename(domid, new_name)?;
        if domid != 0 {
            let mut c = self.config(domid)?;
            c.c_info.name = Some(new_name.to_owned());
            self.write_config(domid, &c)?;
        }
        self.hvlog(&format!("d{domid}: renamed \"{new_name}\""));
        Ok(())
    }

    pub(crate) fn write_config(&self, domid: u32, c: &DomainConfig) -> Result<(), DomainError> {
        let path = self.paths.domain_dir(domid).join(f::CONFIG);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, c.to_json()).map_err(runtime("cannot write", &tmp))?;
        fs::rename(&tmp, &path).map_err(runtime("cannot write", &path))
    }

    /// Keeps a shut-down domain under `NAME-SUFFIX` with a new uuid, so it can be
    /// restarted under its own name (`libxl_domain_preserve`).
    pub fn preserve(&mut self, domid: u32, suffix: &str) -> Result<String, DomainError> {
        let mut c = self.config(domid)?;
        let name = format!("{}{suffix}", c.c_info.name.clone().unwrap_or_default());
        let mut b = [0u8; 16];
        random_bytes(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let uuid = Uuid(b);
        let _lock = FileLock::acquire(&self.paths.lock_file())?;
        self.store.preserve(domid, &name, &uuid.to_string())?;
        c.c_info.name = Some(name.clone());
        c.c_info.uuid = Some(uuid);
        self.write_config(domid, &c)?;
        Ok(name)
    }

    /// The vCPUs of a domain (`libxl_list_vcpu`).
    pub fn vcpus(&mut self, domid: u32) -> Result<Vec<VcpuState>, DomainError> {
        if domid == 0 {
            return Ok(dom0_vcpus());
        }
        if !self.exists(domid) {
            return Err(DomainError::NotFound(domid.to_string()));
        }
        let Some(ci) = self.live_info(domid) else {
            // A domain that is not running has no vCPUs to show.
            return Ok(Vec::new());
        };
        let pid = self.pid_of(domid).unwrap_or(0);
        let paused = ci.state == "paused";
        Ok(ci
            .vcpus
            .iter()
            .map(|v| {
                let stat = v
                    .tid
                    .and_then(|t| fs::read_to_string(format!("/proc/{pid}/task/{t}/stat")).ok());
                let cpu = stat.as_deref().and_then(host::proc_stat_processor);
                let running =
                    !paused && stat.as_deref().and_then(host::proc_stat_state) == Some('R');
                VcpuState {
                    vcpuid: v.id,
                    online: v.online,
                    cpu,
                    running,
                    blocked: v.online && !running && !paused,
                    time_ns: v.cpu_time_ns,
                    hard_affinity: Bitmap(v.affinity.iter().copied().collect()),
                }
            })
            .collect())
    }

    /// Sets the CPUs a vCPU (or, with `None`, every vCPU) may run on.
    pub fn vcpu_pin(
        &mut self,
        domid: u32,
        vcpu: Option<u32>,
        cpus: &Bitmap,
    ) -> Result<(), DomainError> {
        if domid == 0 {
            return Err(DomainError::Dom0("pin the vCPUs of"));
        }
        let host_cpus = host::online_cpus().unwrap_or_default();
        let missing = Bitmap(cpus.iter().filter(|c| !host_cpus.test(*c)).collect());
        if cpus.is_empty() || !missing.is_empty() {
            return Err(DomainError::NoSuchCpus {
                cpus: if cpus.is_empty() {
                    Bitmap::new()
                } else {
                    missing
                },
                host: host_cpus,
            });
        }
        let socket = self.live_control(domid)?;
        let ci = control::info(&socket).map_err(|source| DomainError::Control { domid, source })?;
        let targets: Vec<u32> = match vcpu {
            Some(v) => {
                if !ci.vcpus.iter().any(|x| x.id == v) {
                    return Err(DomainError::NoVcpu { domid, vcpu: v });
                }
                vec![v]
            }
            None => ci.vcpus.iter().map(|x| x.id).collect(),
        };
        let list: Vec<u32> = cpus.iter().collect();
        for v in targets {
            control::vcpu_pin(&socket, v, &list)
                .map_err(|source| DomainError::Control { domid, source })?;
        }
        Ok(())
    }
}

fn dom0_vcpus() -> Vec<VcpuState> {
    let cpus = host::online_cpus().unwrap_or_default();
    let times = host::read_cpu_times().unwrap_or_default();
    let here = host::current_cpu();
    cpus.iter()
        .enumerate()
        .map(|(i, c)| VcpuState {
            vcpuid: i as u32,
            online: true,
            cpu: Some(c),
            running: here == Some(c),
            blocked: here != Some(c),
            time_ns: times
                .per_cpu
                .iter()
                .find(|(n, _)| *n == c)
                .map_or(0, |(_, t)| *t),
            hard_affinity: Bitmap(std::iter::once(c).collect()),
        })
        .collect()
}

/// Whether a vCPU thread of the domain process is running on a CPU now (state `R`).
fn threads_running(pid: i32, ci: &ControlInfo) -> bool {
    let tids: Vec<i32> = ci.vcpus.iter().filter_map(|v| v.tid).collect();
    let state = |tid: i32| {
        fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
            .ok()
            .and_then(|s| host::proc_stat_state(&s))
    };
    if !tids.is_empty() {
        return tids.into_iter().any(|t| state(t) == Some('R'));
    }
    // Without vCPU thread ids, any thread of the process.
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .any(|t| state(t) == Some('R'))
        })
        .unwrap_or(false)
}

fn check_name(name: &str) -> Result<(), DomainError> {
    if name.is_empty() {
        return Err(DomainError::BadName(name.to_owned(), "it is empty"));
    }
    if name.contains('/') {
        return Err(DomainError::BadName(
            name.to_owned(),
            "it contains '/' (names are used in XenStore paths and log file names)",
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::BadName(
            name.to_owned(),
            "it is all digits, which xl reads as a domain id",
        ));
    }
    Ok(())
}

/// Fills `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), DomainError> {
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(DomainError::Random)
}

/// `-YYYYMMDDTHHMMZ` for a time in seconds since the epoch (UTC), the suffix xl gives a
/// domain it keeps aside to restart (`rename-restart`).
pub fn preserve_suffix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "-{y:04}{m:02}{d:02}T{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_letters() {
        let mut d = DomainInfo {
            domid: 1,
            name: "g".into(),
            uuid: Uuid([0; 16]),
            current_memkb: 0,
            max_memkb: 0,
            vcpu_online: 1,
            vcpu_max: 1,
            running: false,
            blocked: true,
            paused: false,
            shutdown: None,
            dying: false,
            cpu_time_ns: 0,
            pid: None,
        };
        assert_eq!(d.state_letters(), "-b----");
        d.blocked = false;
        d.shutdown = Some(ShutdownReason::Crash);
        assert_eq!(d.state_letters(), "---sc-");
        d.shutdown = Some(ShutdownReason::Poweroff);
        d.dying = true;
        assert_eq!(d.state_letters(), "---s-d");
        d.shutdown = None;
        d.dying = false;
        d.paused = true;
        assert_eq!(d.state_letters(), "--p---");
    }

    #[test]
    fn reasons_round_trip() {
        for r in ShutdownReason::ALL {
            assert_eq!(ShutdownReason::from_name(r.name()), Some(r));
        }
        assert_eq!(ShutdownReason::Watchdog.code(), 4);
        assert_eq!(ShutdownReason::SoftReset.letter(), 'S');
        assert_eq!(ShutdownReason::from_name("halt"), None);
    }

    #[test]
    fn suffix_is_utc_minutes() {
        assert_eq!(preserve_suffix(0), "-19700101T0000Z");
        // 2024-02-29 23:59:59 UTC
        assert_eq!(preserve_suffix(1_709_251_199), "-20240229T2359Z");
    }

    #[test]
    fn defaults_as_libxl() {
        let mut c = DomainConfig::default();
        c.nics.push(xl_config::NicConfig::default());
        Toolstack::set_defaults(&mut c).unwrap();
        let u = c.c_info.uuid.unwrap();
        assert_eq!(u.0[6] >> 4, 4, "version 4 uuid");
        assert_eq!(u.0[8] >> 6, 2, "RFC 4122 variant");
        assert_eq!(c.b_info.max_memkb, Some(DEFAULT_MEMKB));
        assert_eq!(c.b_info.target_memkb, Some(DEFAULT_MEMKB));
        assert_eq!(c.b_info.max_vcpus, 1);
        assert_eq!(c.b_info.avail_vcpus.to_string(), "0");
        let mac = c.nics[0].mac.unwrap();
        assert_eq!(&mac.0[..3], &[0x00, 0x16, 0x3e]);
        assert_eq!(c.nics[0].devid, 0);
        assert_eq!(mac, backends::net::mac::generated(&u.0, 0), "stable");
        // What the configuration says stays.
        let mut c2 = c.clone();
        c2.b_info.target_memkb = Some(1024);
        Toolstack::set_defaults(&mut c2).unwrap();
        assert_eq!(c2.c_info.uuid, c.c_info.uuid);
        assert_eq!(c2.nics[0].mac, c.nics[0].mac);
        assert_eq!(c2.b_info.target_memkb, Some(1024));
    }

    #[test]
    fn names() {
        assert!(check_name("guest-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("123").is_err());
    }
}
