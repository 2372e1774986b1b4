//! Where the toolstack finds and keeps things on the host (the contract in
//! `docs/domain-process.md`, "Paths"), and which program runs a domain.
//!
//! | what | default | override |
//! | --- | --- | --- |
//! | runtime root (one dir per domain, the domid lock) | `/run/rxen` | `RXEN_RUN_DIR` |
//! | logs: `xl-<name>.log` (monitor and domain process), `hypervisor.log` (`xl dmesg`) | `/var/log/xen` | `RXEN_LOG_DIR` |
//! | console logs `guest-<name>.log` | `/var/log/xen/console` | `RXEN_LOG_DIR` |
//! | the domain process | `rxen-domain` next to the `xl` binary | `RXEN_DOMAIN_BIN` |
//!
//! With `RXEN_LOG_DIR` set, every log goes into that one directory.

use std::path::PathBuf;

/// Environment variable overriding the runtime root.
pub const RUN_DIR_ENV: &str = "RXEN_RUN_DIR";
/// Environment variable overriding the log directory.
pub const LOG_DIR_ENV: &str = "RXEN_LOG_DIR";
/// Environment variable naming the domain process binary.
pub const DOMAIN_BIN_ENV: &str = "RXEN_DOMAIN_BIN";
/// The domain process's program name.
pub const DOMAIN_BIN_NAME: &str = "rxen-domain";

/// The toolstack's places on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The runtime root.
    pub run_dir: PathBuf,
    /// Where `xl-<name>.log` and `hypervisor.log` go.
    pub log_dir: PathBuf,
    /// Where `guest-<name>.log` goes.
    pub console_log_dir: PathBuf,
    /// The program started for each domain.
    pub domain_bin: PathBuf,
}

impl Paths {
    /// The paths from the environment, with the defaults above.
    pub fn from_env() -> Paths {
        let run_dir =
            std::env::var_os(RUN_DIR_ENV).map_or_else(|| PathBuf::from("/run/rxen"), PathBuf::from);
        let (log_dir, console_log_dir) = match std::env::var_os(LOG_DIR_ENV) {
            Some(d) => (PathBuf::from(&d), PathBuf::from(d)),
            None => (
                PathBuf::from("/var/log/xen"),
                PathBuf::from("/var/log/xen/console"),
            ),
        };
        let domain_bin = std::env::var_os(DOMAIN_BIN_ENV).map_or_else(
            || {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(|d| d.join(DOMAIN_BIN_NAME)))
                    .unwrap_or_else(|| PathBuf::from(DOMAIN_BIN_NAME))
            },
            PathBuf::from,
        );
        Paths {
            run_dir,
            log_dir,
            console_log_dir,
            domain_bin,
        }
    }

    /// The directory holding one directory per domain.
    pub fn domains_dir(&self) -> PathBuf {
        self.run_dir.join("domain")
    }

    /// One domain's runtime directory.
    pub fn domain_dir(&self, domid: u32) -> PathBuf {
        self.domains_dir().join(domid.to_string())
    }

    /// The lock serialising domain id and name allocation.
    pub fn lock_file(&self) -> PathBuf {
        self.run_dir.join("lock")
    }

    /// The last domain id handed out (Xen's allocation rover).
    pub fn last_domid_file(&self) -> PathBuf {
        self.run_dir.join("last-domid")
    }

    /// The log of a domain's monitor and domain process (Xen's `xl-<name>.log`).
    pub fn domain_log(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("xl-{name}.log"))
    }

    /// A domain's console log.
    pub fn console_log(&self, name: &str) -> PathBuf {
        self.console_log_dir.join(format!("guest-{name}.log"))
    }

    /// rxen's "hypervisor console": what `xl dmesg` prints.
    pub fn hypervisor_log(&self) -> PathBuf {
        self.log_dir.join("hypervisor.log")
    }
}

/// Files in a domain's runtime directory (`docs/domain-process.md`).
pub mod domain_files {
    /// The domain's effective configuration, written by the toolstack.
    pub const CONFIG: &str = "config.json";
    /// Held while a device of the domain is added, removed or changed.
    pub const DEVICES_LOCK: &str = "devices.lock";
    /// The domain process's pid, written by it once the VM exists.
    pub const PID: &str = "pid";
    /// The control socket.
    pub const CONTROL: &str = "control";
    /// The console socket.
    pub const CONSOLE: &str = "console";
    /// The shutdown reason, written by the domain process as it ends.
    pub const SHUTDOWN: &str = "shutdown";
    /// The guest's CPU time in ns, written by the domain process before `shutdown`.
    pub const CPU_TIME: &str = "cpu_time_ns";
    /// rxen's marker (toolstack only): the domain is being destroyed.
    pub const DYING: &str = "dying";
}
