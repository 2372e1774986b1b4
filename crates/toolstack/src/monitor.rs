//! The per-domain monitor: the part of `xl create` that stays behind (daemonised, unless
//! `-F`) to handle the domain's end, as xl's `create_domain` loop does.
//!
//! It waits for the domain process to exit, reads the `shutdown` file (absent: the
//! process failed, which counts as a crash) and applies the configured action for the
//! reason (`handle_domain_death` in Xen's `tools/xl/xl_vmcontrol.c`):
//!
//! | action | what happens |
//! | --- | --- |
//! | `destroy` | the domain is destroyed; the monitor exits |
//! | `restart` | destroyed, then created again from its configuration: a new domain id |
//! | `rename-restart` | kept, shut down, as `NAME-YYYYMMDDTHHMMZ` with a new uuid; a new domain is created under the name |
//! | `preserve` | left as it is (listed shut down) until `xl destroy`; the monitor exits |
//! | `coredump-destroy`, `coredump-restart` | rxen writes no core dumps: as `destroy`, `restart` |
//! | `soft-reset` | rxen has no soft reset: as `destroy` |
//!
//! A `suspend` is left like `preserve`. If the domain is destroyed meanwhile (`xl destroy`)
//! the monitor exits. Messages go to stdout, which is the domain's log
//! (`xl-<name>.log`) once daemonised.

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;
use xl_config::{DomainConfig, ShutdownAction};

use crate::domain::{CreateOptions, Created, DomainError, ShutdownReason, Toolstack};
use crate::paths::domain_files;
use crate::process::ProcessError;

/// The monitor stopped on an error.
#[derive(Debug, Error)]
pub enum MonitorError {
    /// Waiting for the domain process.
    #[error("waiting for domain {domid}")]
    Wait {
        domid: u32,
        #[source]
        source: ProcessError,
    },
    /// Applying the action.
    #[error("handling the shutdown of domain {domid}")]
    Action {
        domid: u32,
        #[source]
        source: DomainError,
    },
}

/// What happened to the domain, which ends the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Destroyed (by its action or by `xl destroy`).
    Destroyed,
    /// Left shut down (`preserve`, `suspend`).
    Preserved { domid: u32 },
}

fn log(msg: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}

/// The action for a reason, and whether it restarts the domain.
pub fn action_for(config: &DomainConfig, reason: ShutdownReason) -> ShutdownAction {
    match reason {
        ShutdownReason::Poweroff => config.on_poweroff,
        ShutdownReason::Reboot => config.on_reboot,
        ShutdownReason::Crash => config.on_crash,
        ShutdownReason::Watchdog => config.on_watchdog,
        ShutdownReason::SoftReset => config.on_soft_reset,
        ShutdownReason::Suspend => ShutdownAction::Preserve,
    }
}

/// Watches `created` until its end is handled; restarts it as configured.
pub fn run(ts: &mut Toolstack, created: Created) -> Result<Outcome, MonitorError> {
    let mut domid = created.domid;
    let mut process = created.process;
    let mut name = created.config.c_info.name.clone().unwrap_or_default();
    loop {
        log(&format!(
            "Waiting for domain {name} (domid {domid}) to die [pid {}]",
            std::process::id()
        ));
        process
            .wait(None)
            .map_err(|source| MonitorError::Wait { domid, source })?;
        let dir = ts.paths.domain_dir(domid);
        if !dir.is_dir() || dir.join(domain_files::DYING).exists() {
            log(&format!("Domain {domid} has been destroyed."));
            return Ok(Outcome::Destroyed);
        }
        let reason = match ts.shutdown_reason(domid) {
            Some(r) => r,
            None => {
                log(&format!(
                    "Domain {domid}: the domain process exited without a shutdown reason; taking it as a crash"
                ));
                // Record it, so `xl list` shows the crash.
                let _ = std::fs::write(dir.join(domain_files::SHUTDOWN), "crash\n");
                ShutdownReason::Crash
            }
        };
        ts.hvlog(&format!("d{domid}: shut down, reason {}", reason.name()));
        log(&format!(
            "Domain {domid} has shut down, reason code {} 0x{:x}",
            reason.code(),
            reason.code()
        ));
        if reason == ShutdownReason::Suspend {
            log("Domain has suspended.");
            return Ok(Outcome::Preserved { domid });
        }
        let config = ts.config(domid).unwrap_or_else(|_| created.config.clone());
        let action = action_for(&config, reason);
        log(&format!(
            "Action for shutdown reason code {} is {}",
            reason.code(),
            action.xl_name()
        ));
        let err = |source| MonitorError::Action { domid, source };
        let restart = match action {
            ShutdownAction::Preserve => {
                log("Done. Exiting now");
                return Ok(Outcome::Preserved { domid });
            }
            ShutdownAction::Destroy
            | ShutdownAction::CoredumpDestroy
            | ShutdownAction::SoftReset => {
                if action != ShutdownAction::Destroy {
                    log(&format!(
                        "rxen cannot {}: destroying the domain",
                        if action == ShutdownAction::SoftReset {
                            "soft-reset a domain"
                        } else {
                            "write core dumps"
                        }
                    ));
                }
                log(&format!(
                    "Domain {domid} needs to be cleaned up: destroying the domain"
                ));
                ts.destroy(domid).map_err(err)?;
                log("Done. Exiting now");
                return Ok(Outcome::Destroyed);
            }
            ShutdownAction::Restart | ShutdownAction::CoredumpRestart => {
                if action == ShutdownAction::CoredumpRestart {
                    log("rxen cannot write core dumps: restarting without one");
                }
                log(&format!(
                    "Domain {domid} needs to be cleaned up: destroying the domain"
                ));
                ts.destroy(domid).map_err(err)?;
                config
            }
            ShutdownAction::RestartRename => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let suffix = crate::domain::preserve_suffix(secs);
                log(&format!(
                    "Preserving domain {domid} {name} with suffix{suffix}"
                ));
                ts.preserve(domid, &suffix).map_err(err)?;
                config
            }
        };
        log("Done. Rebooting now");
        let next = ts
            .create(restart, CreateOptions::default())
            .map_err(|source| MonitorError::Action { domid, source })?;
        domid = next.domid;
        process = next.process;
        name = next.config.c_info.name.clone().unwrap_or_default();
    }
}
