//! `HYPERVISOR_sched_op` (`sched.h`): yield, block, poll, shutdown (with
//! its reason), shutdown code, watchdogs.

use xen_abi::errno::*;
use xen_abi::sched::*;

use super::{Effect, GuestAccess, HypercallCtx, XenDomain, read_arg};

/// Xen's limit on ports in one `SCHEDOP_poll`.
const MAX_POLL_PORTS: u32 = 128;

impl XenDomain {
    pub(super) fn sched_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, arg) = (ctx.args[0], ctx.args[1]);
        match cmd {
            SCHEDOP_yield => {
                effects.push(Effect::Yield);
                Ok(0)
            }
            SCHEDOP_block => {
                effects.push(Effect::Block);
                Ok(0)
            }
            SCHEDOP_poll => {
                // KVM handles poll in the kernel when it can; here the
                // arguments are checked and the vCPU yields, which the
                // ABI allows (poll may return before an event arrives).
                let a: sched_poll = read_arg(g, arg)?;
                if a.nr_ports > MAX_POLL_PORTS {
                    return Err(XEN_EINVAL);
                }
                let mut ports = vec![0u8; a.nr_ports as usize * 4];
                g.read_virt(a.ports, &mut ports).map_err(|_| XEN_EFAULT)?;
                for p in ports.chunks(4) {
                    let port = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                    if port == 0 || self.evtchn.port(port).is_none() {
                        return Err(XEN_EINVAL);
                    }
                }
                effects.push(Effect::Yield);
                Ok(0)
            }
            SCHEDOP_shutdown => {
                let a: sched_shutdown = read_arg(g, arg)?;
                if a.reason > SHUTDOWN_MAX {
                    return Err(XEN_EINVAL);
                }
                tracing::info!(
                    domid = self.cfg.domid.0,
                    vcpu = ctx.vcpu,
                    reason = a.reason,
                    "guest shutdown"
                );
                effects.push(Effect::Shutdown(a.reason));
                Ok(0)
            }
            SCHEDOP_shutdown_code => {
                let a: sched_shutdown = read_arg(g, arg)?;
                if a.reason > SHUTDOWN_MAX {
                    return Err(XEN_EINVAL);
                }
                self.shutdown_code = Some(a.reason);
                Ok(0)
            }
            SCHEDOP_watchdog => {
                let a: sched_watchdog = read_arg(g, arg)?;
                if a.id == 0 {
                    // Allocate a watchdog and arm it.
                    let slot = self
                        .watchdogs
                        .iter()
                        .position(|used| !used)
                        .ok_or(XEN_ENOSPC)?;
                    self.watchdogs[slot] = true;
                    let id = slot as u32 + 1;
                    effects.push(Effect::Watchdog {
                        id,
                        timeout: a.timeout,
                    });
                    Ok(u64::from(id))
                } else {
                    let slot = (a.id as usize)
                        .checked_sub(1)
                        .filter(|&s| s < self.watchdogs.len());
                    let slot = slot.filter(|&s| self.watchdogs[s]).ok_or(XEN_EINVAL)?;
                    if a.timeout == 0 {
                        self.watchdogs[slot] = false;
                    }
                    effects.push(Effect::Watchdog {
                        id: a.id,
                        timeout: a.timeout,
                    });
                    Ok(0)
                }
            }
            // A domU may not shut down other domains.
            SCHEDOP_remote_shutdown => Err(XEN_EPERM),
            _ => {
                self.log_unsupported(ctx, "sched_op");
                Err(XEN_ENOSYS)
            }
        }
    }
}
