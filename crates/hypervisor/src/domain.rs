//! The domain process (`docs/domain-process.md`): build one PVH domain
//! from its configuration, run it, and end with the guest's shutdown
//! reason.
//!
//! [`Domain::build`] is the only place that turns a [`DomainSpec`] into
//! live objects: guest memory (memfd), the PVH boot image, the Xen state
//! with its XenStore and console rings, the KVM VM and vCPUs, the
//! XenStore registration and relay, the console log, the runtime dir's
//! `pid`, `control` and `console`. [`Domain::run`] starts one thread per
//! vCPU and the I/O thread ([`crate::io`]) and waits for the end: a
//! guest shutdown (written to `shutdown`), `destroy`, or a failure of the
//! process itself.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvm_ioctls::{Kvm, VmFd};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use xen_abi::sched::{
    SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_soft_reset, SHUTDOWN_suspend,
    SHUTDOWN_watchdog,
};
use xen_abi::{DomId, EvtchnPort};

use crate::boot::{PvhBootConfig, load_pvh};
use crate::config::{self, DomainSpec};
use crate::layout::{MemoryLayout, SPECIAL_PFN_CONSOLE, SPECIAL_PFN_XENSTORE};
use crate::memory::GuestRam;
use crate::vcpus::{VcpuHandle, lock};
use crate::vm::{self, VmSetup};
use crate::xen::{HostRing, XenDomain, XenDomainConfig};

/// The Xen version rxen presents: 4.17.
pub const XEN_VERSION: u32 = xen_abi::version::RXEN_XEN_VERSION;
/// The event channel port of xenstored in dom0 (what `EVTCHNOP_status` reports).
const XENSTORED_PORT: u32 = 1;
/// The event channel port of the console backend in dom0.
const CONSOLED_PORT: u32 = 2;
/// Early console bytes held for the I/O thread; more are dropped.
const EARLY_CONSOLE_MAX: usize = 1 << 20;

/// Why the guest shut down, in Xen's words (`sched.h` `SHUTDOWN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`.
    Poweroff,
    /// `SHUTDOWN_reboot`.
    Reboot,
    /// `SHUTDOWN_suspend`.
    Suspend,
    /// `SHUTDOWN_crash`, or a triple fault.
    Crash,
    /// `SHUTDOWN_watchdog`, or a watchdog that expired.
    Watchdog,
    /// `SHUTDOWN_soft_reset`.
    SoftReset,
}

impl ShutdownReason {
    /// From a `SHUTDOWN_*` code (the hypercall layer checked the range).
    #[allow(non_upper_case_globals)]
    pub fn from_code(code: u32) -> Self {
        match code {
            SHUTDOWN_poweroff => Self::Poweroff,
            SHUTDOWN_reboot => Self::Reboot,
            SHUTDOWN_suspend => Self::Suspend,
            SHUTDOWN_watchdog => Self::Watchdog,
            SHUTDOWN_soft_reset => Self::SoftReset,
            SHUTDOWN_crash => Self::Crash,
            _ => Self::Crash,
        }
    }

    /// The word written to `shutdown` and reported by `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Suspend => "suspend",
            Self::Crash => "crash",
            Self::Watchdog => "watchdog",
            Self::SoftReset => "soft_reset",
        }
    }
}

/// How the domain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest shut down.
    Shutdown(ShutdownReason),
    /// The toolstack asked (`destroy`).
    Destroy,
    /// The domain process cannot go on.
    Failed(String),
}

/// Whether vCPUs run.
#[derive(Debug, Default)]
pub struct RunState {
    /// Paused by the toolstack (or `--paused`).
    pub paused: bool,
    /// vCPU threads currently parked because of the pause.
    pub parked: u32,
    /// Set once: the domain is ending.
    pub end: Option<End>,
    /// The I/O thread has flushed the console after the end.
    pub io_done: bool,
    /// vCPU threads that have finished (and detached their Xen state).
    pub vcpus_done: u32,
}

/// The eventfds the I/O thread waits on.
#[derive(Debug)]
pub struct IoEvents {
    /// The guest sent on its XenStore port.
    pub store: EventFd,
    /// The guest sent on its console port.
    pub console: EventFd,
    /// Something else needs the I/O thread (early console bytes,
    /// watchdogs, the end).
    pub wake: EventFd,
}

/// What the vCPU threads, the I/O thread and the main thread share.
/// Field order is drop order: the VM goes before the memory it maps.
#[derive(Debug)]
pub struct Shared {
    /// The KVM VM.
    pub vm: VmFd,
    /// Guest memory.
    pub ram: GuestRam,
    /// The Xen state hypercalls work on.
    pub xen: Mutex<XenDomain>,
    /// One handle per vCPU.
    pub vcpus: Vec<VcpuHandle>,
    /// Pause and end.
    pub run: Mutex<RunState>,
    /// Signalled when `run` changes.
    pub run_cv: Condvar,
    /// The I/O thread's wake-ups.
    pub events: IoEvents,
    /// Guest ports connected to host services, and the service.
    pub host_ports: HashMap<u32, HostRing>,
    /// The guest's XenStore and console ports.
    pub store_port: u32,
    /// The guest's console port.
    pub console_port: u32,
    /// `console_io` output waiting for the I/O thread.
    pub early: Mutex<Vec<u8>>,
    /// Watchdog deadlines (`SCHEDOP_watchdog`), by id - 1.
    pub watchdogs: Mutex<[Option<(Instant, u32)>; 2]>,
    /// The domain.
    pub spec: DomainSpec,
    /// The domain id.
    pub domid: u16,
    /// When the process started (seconds since the epoch).
    pub start_time: u64,
    /// The virtual disks and network interfaces being served.
    pub devices: Mutex<crate::devices::Devices>,
    /// Replies to control requests carried out away from the I/O thread
    /// (device requests), by connection, for the I/O thread to send.
    pub replies: Mutex<Vec<(usize, String)>>,
}

impl Shared {
    /// End the domain (the first reason wins) and stop every vCPU.
    pub fn end(&self, end: End) {
        {
            let mut r = lock(&self.run);
            if r.end.is_some() {
                return;
            }
            match &end {
                End::Shutdown(reason) => {
                    tracing::info!(
                        domid = self.domid,
                        reason = reason.as_str(),
                        "guest shut down"
                    )
                }
                End::Destroy => tracing::info!(domid = self.domid, "destroyed"),
                End::Failed(why) => tracing::error!(domid = self.domid, "{why}"),
            }
            r.end = Some(end);
        }
        self.run_cv.notify_all();
        for v in &self.vcpus {
            v.kick();
        }
        let _ = self.events.wake.write(1);
    }

    /// Called by a vCPU thread before `KVM_RUN`: waits while paused;
    /// `false` once the domain is ending.
    pub fn wait_runnable(&self) -> bool {
        let mut r = lock(&self.run);
        if r.paused && r.end.is_none() {
            r.parked += 1;
            self.run_cv.notify_all();
            while r.paused && r.end.is_none() {
                r = self.run_cv.wait(r).unwrap_or_else(|e| e.into_inner());
            }
            r.parked -= 1;
        }
        r.end.is_none()
    }

    /// Pause every vCPU; waits (a little) until they have all stopped.
    pub fn pause(&self) {
        lock(&self.run).paused = true;
        for v in &self.vcpus {
            v.kick();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut r = lock(&self.run);
        while r.parked < self.vcpus.len() as u32 && r.end.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    parked = r.parked,
                    "not every vCPU stopped within 2 s of pause"
                );
                break;
            }
            r = self
                .run_cv
                .wait_timeout(r, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Let the vCPUs run again.
    pub fn unpause(&self) {
        lock(&self.run).paused = false;
        self.run_cv.notify_all();
    }

    /// `console_io` output from a vCPU: hand it to the I/O thread.
    pub fn early_console(&self, bytes: &[u8]) {
        {
            let mut e = lock(&self.early);
            let n = bytes.len().min(EARLY_CONSOLE_MAX.saturating_sub(e.len()));
            e.extend_from_slice(&bytes[..n]);
        }
        let _ = self.events.wake.write(1);
    }

    /// The guest sent on `port`, connected to a host service: wake it.
    /// (Normally KVM signals the eventfd itself; this is the path for
    /// sends that reached userspace.)
    pub fn notify_host(&self, port: u32) {
        match self.host_ports.get(&port) {
            Some(HostRing::XenStore) => {
                let _ = self.events.store.write(1);
            }
            Some(HostRing::Console) => {
                let _ = self.events.console.write(1);
            }
            None => {}
        }
    }

    /// Arm (`timeout` > 0 seconds) or stop watchdog `id`.
    pub fn set_watchdog(&self, id: u32, timeout: u32) {
        let Some(slot) = (id as usize).checked_sub(1).filter(|&s| s < 2) else {
            return;
        };
        lock(&self.watchdogs)[slot] = (timeout > 0).then(|| {
            (
                Instant::now() + Duration::from_secs(u64::from(timeout)),
                timeout,
            )
        });
        let _ = self.events.wake.write(1);
    }

    /// Raise the guest's `port` (connected to a host service) on the vCPU
    /// it is bound to.
    pub fn raise_host_port(&self, port: u32) -> Result<(), kvm_xen::KvmXenError> {
        let effect = lock(&self.xen).evtchn.notify_from_host(EvtchnPort(port));
        if let Some(crate::xen::Effect::Vm(op)) = effect {
            crate::xen::kvm::apply_vm_op(&self.vm, op)?;
        }
        Ok(())
    }
}

/// Errors of building and running a domain.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The configuration cannot be run.
    #[error("the domain configuration is not usable")]
    Config(#[source] config::ConfigError),
    /// Reading the kernel or ramdisk failed.
    #[error("reading {0} failed")]
    ReadImage(PathBuf, #[source] std::io::Error),
    /// The memory layout is invalid.
    #[error("laying out guest memory failed")]
    Layout(#[source] crate::layout::LayoutError),
    /// Creating guest memory failed.
    #[error("creating guest memory failed")]
    Memory(#[source] crate::memory::MemoryError),
    /// Loading the kernel failed.
    #[error("loading the kernel failed")]
    Boot(#[source] crate::boot::BootError),
    /// Building the VM failed.
    #[error("building the VM failed")]
    Vm(#[source] vm::VmError),
    /// The port table is full at boot (cannot happen with a fresh table).
    #[error("allocating the {0} event channel failed")]
    HostPort(&'static str),
    /// An eventfd could not be created.
    #[error("creating an eventfd failed")]
    EventFd(#[source] std::io::Error),
    /// Routing a host port to its eventfd failed.
    #[error("routing the {what} event channel to KVM failed")]
    RoutePort {
        /// Which port.
        what: &'static str,
        /// The failure.
        #[source]
        source: kvm_xen::KvmXenError,
    },
    /// Registering with xenstored failed.
    #[error("registering the domain with xenstored failed")]
    XenStore(#[source] crate::store::StoreError),
    /// The console log could not be opened.
    #[error("opening the console log {0} failed")]
    ConsoleLog(PathBuf, #[source] std::io::Error),
    /// The runtime dir or a file in it could not be written.
    #[error("writing {0} failed")]
    RuntimeFile(PathBuf, #[source] std::io::Error),
    /// A socket could not be bound.
    #[error("binding {0} failed")]
    Bind(PathBuf, #[source] std::io::Error),
    /// The kick signal handler could not be installed.
    #[error("installing the vCPU kick signal handler failed")]
    Signal(#[source] vmm_sys_util::errno::Error),
    /// A thread could not be started.
    #[error("starting the {0} thread failed")]
    Thread(String, #[source] std::io::Error),
    /// The I/O thread's event loop could not be set up.
    #[error("setting up the I/O event loop failed")]
    IoLoop(#[source] std::io::Error),
    /// A virtual disk could not be served.
    #[error("serving a virtual disk failed")]
    Disk(#[source] crate::blkback::BlkbackError),
    /// A network interface could not be served.
    #[error("serving a network interface failed")]
    Nic(#[source] crate::netback::NetbackError),
    /// The domain ended because of a failure of this process.
    #[error("the domain process failed: {0}")]
    Failed(String),
}

/// How the domain process was started.
#[derive(Clone, Debug)]
pub struct DomainArgs {
    /// `--domid`.
    pub domid: u16,
    /// `--config`.
    pub config: PathBuf,
    /// `--paused`.
    pub paused: bool,
}

/// A built domain, ready to run.
#[derive(Debug)]
pub struct Domain {
    shared: Arc<Shared>,
    vcpu_fds: Vec<kvm_ioctls::VcpuFd>,
    io: crate::io::Io,
    runtime_dir: PathBuf,
}

impl Domain {
    /// Build the domain described by `args` (see the module docs).
    pub fn build(args: &DomainArgs) -> Result<Self, DomainError> {
        let t0 = Instant::now();
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let spec = DomainSpec::load(&args.config).map_err(DomainError::Config)?;
        let domid = args.domid;
        let layout = MemoryLayout::new(spec.memory).map_err(DomainError::Layout)?;
        let ram =
            GuestRam::new(&format!("rxen-{}", spec.name), layout).map_err(DomainError::Memory)?;

        let kernel = std::fs::read(&spec.kernel)
            .map_err(|e| DomainError::ReadImage(spec.kernel.clone(), e))?;
        let initrd = match &spec.ramdisk {
            Some(p) => Some(std::fs::read(p).map_err(|e| DomainError::ReadImage(p.clone(), e))?),
            None => None,
        };
        let boot = load_pvh(
            ram.memory(),
            &layout,
            &PvhBootConfig {
                kernel: &kernel,
                initrd: initrd.as_deref(),
                cmdline: &spec.cmdline,
                vcpus: spec.vcpus,
            },
        )
        .map_err(DomainError::Boot)?;
        drop(kernel);
        drop(initrd);
        tracing::info!(
            domid,
            format = ?boot.format,
            entry = format_args!("{:#x}", boot.entry),
            ms = t0.elapsed().as_millis() as u64,
            "kernel loaded"
        );

        let mut xen = XenDomain::new(XenDomainConfig {
            domid: DomId(domid),
            vcpus: spec.vcpus,
            layout,
            xen_version: XEN_VERSION,
            handle: spec.uuid,
            max_grant_frames: spec.max_grant_frames,
        });
        let store_port = xen
            .connect_host_ring(
                HostRing::XenStore,
                DomId::DOM0,
                EvtchnPort(XENSTORED_PORT),
                SPECIAL_PFN_XENSTORE,
            )
            .ok_or(DomainError::HostPort("XenStore"))?
            .0;
        let console_port = xen
            .connect_host_ring(
                HostRing::Console,
                DomId::DOM0,
                EvtchnPort(CONSOLED_PORT),
                SPECIAL_PFN_CONSOLE,
            )
            .ok_or(DomainError::HostPort("console"))?
            .0;

        let kvm = Kvm::new().map_err(|e| DomainError::Vm(vm::VmError::OpenKvm(e)))?;
        let setup = VmSetup {
            domid,
            vcpus: spec.vcpus,
            xen_version: XEN_VERSION,
        };
        // SAFETY: `ram` moves into `Shared` next to the VM and is declared
        // after it, so it is dropped after the VM.
        let vmfd = unsafe { vm::create_vm(&kvm, &ram, &setup) }.map_err(DomainError::Vm)?;
        let base_cpuid = vm::supported_cpuid(&kvm).map_err(DomainError::Vm)?;
        let mut vcpu_fds = Vec::new();
        for id in 0..spec.vcpus {
            let cpuid = vm::vcpu_cpuid(&base_cpuid, id, &setup).map_err(DomainError::Vm)?;
            let boot_state = (id == 0).then_some((boot.entry, boot.start_info));
            vcpu_fds.push(vm::create_vcpu(&vmfd, &cpuid, id, boot_state).map_err(DomainError::Vm)?);
        }

        let events = IoEvents {
            store: EventFd::new(EFD_NONBLOCK).map_err(DomainError::EventFd)?,
            console: EventFd::new(EFD_NONBLOCK).map_err(DomainError::EventFd)?,
            wake: EventFd::new(EFD_NONBLOCK).map_err(DomainError::EventFd)?,
        };
        // The guest's sends on its XenStore and console ports never leave
        // the kernel: KVM signals the eventfds.
        for (port, fd, what) in [
            (store_port, &events.store, "XenStore"),
            (console_port, &events.console, "console"),
        ] {
            use std::os::fd::AsRawFd;
            kvm_xen::assign_evtchn(
                &vmfd,
                port,
                kvm_xen::EvtchnTarget::Eventfd { fd: fd.as_raw_fd() },
                false,
            )
            .map_err(|source| DomainError::RoutePort { what, source })?;
        }

        let runtime_dir = config::runtime_dir(domid);
        std::fs::create_dir_all(&runtime_dir)
            .map_err(|e| DomainError::RuntimeFile(runtime_dir.clone(), e))?;

        let relay = crate::store::register(
            domid,
            &crate::store::Skeleton {
                name: &spec.name,
                vcpus: spec.vcpus,
                memory_kib: spec.memory >> 10,
            },
            store_port,
            console_port,
        )
        .map_err(DomainError::XenStore)?;

        let log_path = config::console_log(&spec.name);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| DomainError::ConsoleLog(log_path.clone(), e))?;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| DomainError::ConsoleLog(log_path.clone(), e))?;

        let vcpus = (0..spec.vcpus)
            .map(|i| VcpuHandle::new(i, spec.affinity[i as usize].clone()))
            .collect();
        let host_ports = HashMap::from([
            (store_port, HostRing::XenStore),
            (console_port, HostRing::Console),
        ]);
        let shared = Arc::new(Shared {
            vm: vmfd,
            ram,
            xen: Mutex::new(xen),
            vcpus,
            run: Mutex::new(RunState {
                paused: args.paused,
                ..RunState::default()
            }),
            run_cv: Condvar::new(),
            events,
            host_ports,
            store_port,
            console_port,
            early: Mutex::new(Vec::new()),
            watchdogs: Mutex::new([None, None]),
            spec,
            domid,
            start_time,
            devices: Mutex::new(crate::devices::Devices::default()),
            replies: Mutex::new(Vec::new()),
        });

        write_file(
            &runtime_dir.join("pid"),
            &format!("{}\n", std::process::id()),
        )?;
        // Virtual disks, then network interfaces (TAP, hotplug step and
        // handshake): published and served before the guest runs.
        {
            let mut devs = lock(&shared.devices);
            let started = shared
                .spec
                .disks
                .iter()
                .try_for_each(|d| devs.add_disk(&shared, d.clone()))
                .map_err(DomainError::Disk)
                .and_then(|()| {
                    shared
                        .spec
                        .nics
                        .iter()
                        .try_for_each(|n| devs.add_nic(&shared, n.clone()))
                        .map_err(DomainError::Nic)
                });
            if let Err(e) = started {
                devs.stop_all();
                return Err(e);
            }
        }
        let control = bind(&runtime_dir.join("control"))?;
        let console = bind(&runtime_dir.join("console"))?;
        let io = crate::io::Io::new(shared.clone(), log, relay, control, console)
            .map_err(DomainError::IoLoop)?;
        tracing::info!(
            domid,
            name = shared.spec.name,
            vcpus = shared.spec.vcpus,
            memory_mib = shared.spec.memory >> 20,
            ms = t0.elapsed().as_millis() as u64,
            "domain built"
        );
        Ok(Self {
            shared,
            vcpu_fds,
            io,
            runtime_dir,
        })
    }

    /// Run until the domain ends; writes `shutdown` for a guest shutdown.
    pub fn run(self) -> Result<End, DomainError> {
        crate::vcpus::install_kick_handler().map_err(DomainError::Signal)?;
        let shared = self.shared;
        let io = self.io;
        std::thread::Builder::new()
            .name("io".into())
            .spawn(move || io.run())
            .map_err(|e| DomainError::Thread("io".into(), e))?;
        for (id, fd) in self.vcpu_fds.into_iter().enumerate() {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("vcpu{id}"))
                .spawn(move || crate::vcpus::run_vcpu(s, id as u32, fd))
                .map_err(|e| DomainError::Thread(format!("vcpu{id}"), e))?;
        }
        let end = {
            let mut r = lock(&shared.run);
            while r.end.is_none() {
                r = shared.run_cv.wait(r).unwrap_or_else(|e| e.into_inner());
            }
            r.end.clone().expect("checked")
        };
        // Let the I/O thread take the guest's last console output, and the
        // vCPU threads stop their timers and detach their Xen areas.
        let nvcpus = shared.vcpus.len() as u32;
        {
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut r = lock(&shared.run);
            while !(r.io_done && r.vcpus_done == nvcpus) && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                r = shared
                    .run_cv
                    .wait_timeout(r, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            if r.vcpus_done != nvcpus {
                tracing::warn!(
                    stopped = r.vcpus_done,
                    vcpus = nvcpus,
                    "not every vCPU stopped within 2 s"
                );
            }
        }
        // The guest is stopped: end the disk connections (flushing each
        // disk) before its memory goes.
        lock(&shared.devices).stop_all();
        // Nothing in KVM may write to guest memory after the process lets
        // go of it (its memfd closes before the VM on exit): detach
        // shared_info and drop the event channel routes.
        let _ = kvm_xen::reset_evtchns(&shared.vm);
        let _ = kvm_xen::set_upcall_vector(&shared.vm, 0);
        let _ = kvm_xen::set_shared_info_gfn(&shared.vm, kvm_xen::KVM_XEN_INVALID_GFN);
        match &end {
            End::Shutdown(reason) => {
                // The CPU time the guest used, which Xen keeps showing for a
                // domain that has shut down; before `shutdown`, which is what
                // the toolstack waits for.
                let cpu_ns: u64 = shared.vcpus.iter().map(|v| v.cpu_time_ns()).sum();
                write_file(
                    &self.runtime_dir.join("cpu_time_ns"),
                    &format!("{cpu_ns}\n"),
                )?;
                write_file(
                    &self.runtime_dir.join("shutdown"),
                    &format!("{}\n", reason.as_str()),
                )?;
            }
            End::Destroy => {}
            End::Failed(why) => return Err(DomainError::Failed(why.clone())),
        }
        // Remove the sockets: nothing answers on them any more.
        let _ = std::fs::remove_file(self.runtime_dir.join("control"));
        let _ = std::fs::remove_file(self.runtime_dir.join("console"));
        let online = shared
            .vcpus
            .iter()
            .filter(|v| v.online.load(Ordering::Relaxed))
            .count();
        tracing::debug!(online, "vCPUs seen online");
        Ok(end)
    }
}

/// Writes a runtime file whole or not at all (a temporary file renamed over
/// it): the toolstack reads `shutdown` the moment the process ends and must
/// never see it empty (an empty reason reads as a crash).
fn write_file(path: &Path, text: &str) -> Result<(), DomainError> {
    let err = |e| DomainError::RuntimeFile(path.to_owned(), e);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn bind(path: &Path) -> Result<UnixListener, DomainError> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| DomainError::Bind(path.to_owned(), e))?;
    l.set_nonblocking(true)
        .map_err(|e| DomainError::Bind(path.to_owned(), e))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_words_are_xens() {
        for (code, word) in [
            (SHUTDOWN_poweroff, "poweroff"),
            (SHUTDOWN_reboot, "reboot"),
            (SHUTDOWN_suspend, "suspend"),
            (SHUTDOWN_crash, "crash"),
            (SHUTDOWN_watchdog, "watchdog"),
            (SHUTDOWN_soft_reset, "soft_reset"),
        ] {
            assert_eq!(ShutdownReason::from_code(code).as_str(), word);
        }
    }
}
