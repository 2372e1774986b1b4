//! The Xen guest interface of one domain: the hypercalls KVM forwards to
//! userspace (`KVM_EXIT_XEN`), handled against the domain's Xen state.
//!
//! The vCPU loop calls [`XenDomain::dispatch`] with the decoded exit and a
//! [`GuestAccess`] for the calling vCPU, stores [`Outcome::ret`] as the
//! hypercall result (`kvm_xen::complete_xen_hypercall`) and carries out
//! [`Outcome::effects`]: KVM state changes (see [`kvm`] for executing them;
//! per-vCPU ones must run on the target vCPU's thread, since vCPU ioctls
//! wait for a running vCPU), upcalls, console output, notifications to
//! host-side peers (xenstored, the console backend) and shutdown.
//!
//! Split with KVM, as QEMU's Xen emulation does: KVM owns the hypercall
//! page, shared_info / vcpu_info / runstate / time areas, the singleshot
//! timer, event delivery (pending + selector bits, the upcall vector) and
//! `EVTCHNOP_send` on ports routed to it (IPIs, loopback); userspace (this
//! module) owns the port table, grant tables, HVM params, memory map,
//! scheduling decisions and everything else. Every guest value is checked;
//! a guest mistake becomes a Xen errno in RAX, never a panic or an `Err` of
//! the process. Unknown hypercalls get `-ENOSYS` with a rate-limited log.

// Handlers match on Xen's C-named constants (`EVTCHNOP_send`, ...).
#![allow(non_upper_case_globals)]

mod console_io;
pub mod evtchn;
pub mod gnttab;
pub mod guest;
mod hvm_op;
pub mod kvm;
mod memory_op;
mod sched_op;
mod vcpu_op;
mod version;
mod vm_assist;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use xen_abi::errno::{XEN_EFAULT, XEN_ENOSYS, XEN_EPERM, XenErrno};
use xen_abi::layout::Abi;
use xen_abi::xen::*;
use xen_abi::{DomId, EvtchnPort};

pub use evtchn::EventChannels;
pub use gnttab::GrantTable;
pub use guest::{GuestAccess, GuestFault, VcpuGuest};
pub use kvm_xen::EvtchnTarget;

use crate::layout::MemoryLayout;

/// Static facts about the domain the Xen interface needs.
#[derive(Clone, Debug)]
pub struct XenDomainConfig {
    /// This domain's id.
    pub domid: DomId,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The memory layout (memory map, RAM size).
    pub layout: MemoryLayout,
    /// Xen version reported (`major << 16 | minor`).
    pub xen_version: u32,
    /// `XENVER_guest_handle`: the domain's UUID.
    pub handle: [u8; 16],
    /// Grant frames the guest may use (`max_grant_frames`).
    pub max_grant_frames: u32,
}

/// A hypercall as the vCPU loop received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypercallCtx {
    /// Index of the calling vCPU.
    pub vcpu: u32,
    /// 64-bit hypercall ABI.
    pub longmode: bool,
    /// Privilege level of the caller.
    pub cpl: u32,
    /// Hypercall number.
    pub nr: u64,
    /// Arguments in ABI order.
    pub args: [u64; 6],
    /// Xen system time in ns (for `HVMOP_get_time`).
    pub now_ns: u64,
}

impl HypercallCtx {
    /// Build from a decoded `KVM_EXIT_XEN`.
    pub fn from_exit(vcpu: u32, h: &kvm_xen::XenHypercall, now_ns: u64) -> Self {
        Self {
            vcpu,
            longmode: h.longmode,
            cpl: h.cpl,
            nr: h.input,
            args: h.params,
            now_ns,
        }
    }
}

/// A VM-wide KVM state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmOp {
    /// `KVM_XEN_ATTR_TYPE_SHARED_INFO`.
    SetSharedInfo {
        /// Guest frame of shared_info.
        gfn: u64,
    },
    /// `KVM_XEN_ATTR_TYPE_UPCALL_VECTOR` (0 disables).
    SetUpcallVector(u8),
    /// `KVM_XEN_HVM_EVTCHN_SEND`: raise `port` towards `vcpu`.
    RaisePort {
        /// Port.
        port: u32,
        /// Target vCPU.
        vcpu: u32,
    },
    /// `KVM_XEN_ATTR_TYPE_EVTCHN`: let KVM handle `EVTCHNOP_send` on
    /// `port`, delivering to `target` (replaces an existing route).
    RoutePort {
        /// The port the guest sends on.
        port: u32,
        /// Where it goes.
        target: EvtchnTarget,
    },
    /// Remove KVM's route for `port`.
    UnroutePort(u32),
    /// `KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG` (`VMASST_TYPE_runstate_update_flag`).
    SetRunstateUpdateFlag(bool),
}

/// A per-vCPU KVM state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuOp {
    /// `KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO`.
    SetVcpuInfo(u64),
    /// `KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO`.
    SetTimeInfo(u64),
    /// `KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR`.
    SetRunstate(u64),
    /// `KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR`.
    SetUpcallVector(u8),
    /// `KVM_XEN_VCPU_ATTR_TYPE_TIMER` (`expires_ns` 0 = stopped).
    SetTimer {
        /// Port bound to VIRQ_TIMER.
        port: u32,
        /// Absolute Xen system time of expiry.
        expires_ns: u64,
    },
}

/// Something the domain process must do after a hypercall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Apply to the VM (any thread).
    Vm(VmOp),
    /// Apply to vCPU `vcpu` (on its thread).
    Vcpu {
        /// Target vCPU.
        vcpu: u32,
        /// The change.
        op: VcpuOp,
    },
    /// The vCPU may have a new upcall pending: make it re-enter the guest
    /// (KVM injects the upcall when it sees `evtchn_upcall_pending`).
    Kick(u32),
    /// The calling vCPU yields its time slice.
    Yield,
    /// The calling vCPU blocks until an event is pending for it.
    Block,
    /// The guest asked to shut down with this `SHUTDOWN_*` reason.
    Shutdown(u32),
    /// Bytes the guest wrote with `console_io`.
    Console(Vec<u8>),
    /// The guest sent on a port connected to a host-side peer.
    Notify {
        /// The guest's port.
        port: EvtchnPort,
        /// The peer domain.
        remote_dom: DomId,
        /// The peer's port.
        remote_port: EvtchnPort,
    },
    /// Map page `idx` of the grant area (memfd offset `file_offset`) at
    /// guest frame `gfn` (a KVM memory slot of one page).
    MapGrantFrame {
        /// Grant frame index.
        idx: u32,
        /// Guest frame to map it at.
        gfn: u64,
        /// Its offset in the guest's memfd.
        file_offset: u64,
    },
    /// Remove grant frame `idx`'s mapping at `gfn`.
    UnmapGrantFrame {
        /// Grant frame index.
        idx: u32,
        /// Where it was mapped.
        gfn: u64,
    },
    /// Arm (timeout > 0) or stop watchdog `id`.
    Watchdog {
        /// Watchdog id (1-based).
        id: u32,
        /// Seconds; 0 stops it.
        timeout: u32,
    },
}

/// The result of one hypercall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The value for RAX.
    pub ret: u64,
    /// What to do next.
    pub effects: Vec<Effect>,
}

/// Logs at most `per_sec` lines a second per limiter, counting the rest.
#[derive(Debug)]
pub struct RateLimit {
    per_sec: u32,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limiter allowing `per_sec` lines a second.
    pub const fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            window: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether to log now; returns the count suppressed since the last line.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used < self.per_sec {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// HVM parameters this domain exposes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmParams {
    /// `HVM_PARAM_STORE_PFN`.
    pub store_pfn: u64,
    /// `HVM_PARAM_STORE_EVTCHN`.
    pub store_evtchn: u32,
    /// `HVM_PARAM_CONSOLE_PFN`.
    pub console_pfn: u64,
    /// `HVM_PARAM_CONSOLE_EVTCHN`.
    pub console_evtchn: u32,
    /// `HVM_PARAM_CALLBACK_IRQ` as last set by the guest.
    pub callback_irq: u64,
}

/// Per-vCPU Xen state the hypervisor tracks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    /// Guest-physical address of its vcpu_info, once known.
    pub vcpu_info: Option<u64>,
    /// Whether it registered its own vcpu_info (it no longer uses shared_info's slot).
    pub vcpu_info_registered: bool,
    /// Port bound to its VIRQ_TIMER.
    pub timer_port: Option<u32>,
}

/// The Xen state of one domain.
#[derive(Debug)]
pub struct XenDomain {
    cfg: XenDomainConfig,
    /// Event channels.
    pub evtchn: EventChannels,
    /// Grant table.
    pub gnttab: GrantTable,
    /// HVM parameters.
    pub params: HvmParams,
    /// Guest frame of shared_info, once mapped.
    pub shared_info_gfn: Option<u64>,
    /// Per-vCPU state.
    pub vcpus: Vec<VcpuState>,
    /// `SCHEDOP_shutdown_code`.
    pub shutdown_code: Option<u32>,
    watchdogs: [bool; 2],
    unknown_log: RateLimit,
}

impl XenDomain {
    /// Xen state for a new domain. The caller then connects the XenStore and
    /// console rings with [`XenDomain::connect_host_ring`].
    pub fn new(cfg: XenDomainConfig) -> Self {
        let vcpus = vec![VcpuState::default(); cfg.vcpus as usize];
        Self {
            evtchn: EventChannels::new(cfg.domid),
            gnttab: GrantTable::new(cfg.max_grant_frames),
            params: HvmParams::default(),
            shared_info_gfn: None,
            vcpus,
            shutdown_code: None,
            watchdogs: [false; 2],
            unknown_log: RateLimit::new(10),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &XenDomainConfig {
        &self.cfg
    }

    /// Allocate a port connected to `remote_port` of host-side domain
    /// `remote_dom` (xenstored or the console backend in dom0) for a ring at
    /// `pfn`; returns the guest's port. Use for `HVM_PARAM_STORE_*` and
    /// `HVM_PARAM_CONSOLE_*`, which this then sets.
    pub fn connect_host_ring(
        &mut self,
        ring: HostRing,
        remote_dom: DomId,
        remote_port: EvtchnPort,
        pfn: u64,
    ) -> Option<EvtchnPort> {
        let port = self
            .evtchn
            .alloc_interdomain_reserved(remote_dom, remote_port)?;
        match ring {
            HostRing::XenStore => {
                self.params.store_pfn = pfn;
                self.params.store_evtchn = port.0;
            }
            HostRing::Console => {
                self.params.console_pfn = pfn;
                self.params.console_evtchn = port.0;
            }
        }
        Some(port)
    }

    /// Handle one hypercall. Never panics on guest input; guest errors come
    /// back as a negative Xen errno in [`Outcome::ret`].
    pub fn dispatch(&mut self, ctx: &HypercallCtx, g: &mut dyn GuestAccess) -> Outcome {
        let mut effects = Vec::new();
        let res = if ctx.cpl != 0 {
            Err(XEN_EPERM)
        } else if !ctx.longmode {
            // The 32-bit (compat) hypercall ABI has other layouts; rxen boots 64-bit guests.
            self.log_unsupported(ctx, "32-bit hypercall ABI");
            Err(XEN_ENOSYS)
        } else {
            match ctx.nr {
                __HYPERVISOR_xen_version => self.xen_version(ctx, g),
                __HYPERVISOR_memory_op => self.memory_op(ctx, g, &mut effects),
                __HYPERVISOR_hvm_op => self.hvm_op(ctx, g, &mut effects),
                __HYPERVISOR_event_channel_op => self.event_channel_op(ctx, g, &mut effects),
                __HYPERVISOR_grant_table_op => self.grant_table_op(ctx, g),
                __HYPERVISOR_sched_op => self.sched_op(ctx, g, &mut effects),
                __HYPERVISOR_vcpu_op => self.vcpu_op(ctx, g, &mut effects),
                __HYPERVISOR_console_io => self.console_io(ctx, g, &mut effects),
                __HYPERVISOR_vm_assist => self.vm_assist(ctx, &mut effects),
                _ => {
                    self.log_unsupported(ctx, "hypercall");
                    Err(XEN_ENOSYS)
                }
            }
        };
        let ret = match res {
            Ok(v) => v,
            Err(e) => e.to_hypercall_ret(),
        };
        Outcome { ret, effects }
    }

    fn log_unsupported(&mut self, ctx: &HypercallCtx, what: &str) {
        if let Some(suppressed) = self.unknown_log.allow(Instant::now()) {
            tracing::warn!(
                domid = self.cfg.domid.0,
                vcpu = ctx.vcpu,
                nr = ctx.nr,
                name = hypercall_name(ctx.nr),
                arg0 = ctx.args[0],
                suppressed,
                "unsupported {what}: -ENOSYS"
            );
        }
    }

    fn vcpu_valid(&self, vcpu: u64) -> Option<u32> {
        u32::try_from(vcpu).ok().filter(|&v| v < self.cfg.vcpus)
    }

    /// Whether `dom` in an argument names this domain.
    fn is_self(&self, dom: u16) -> bool {
        dom == DOMID_SELF || dom == self.cfg.domid.0
    }
}

/// A ring the toolstack connects to a host-side service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRing {
    /// The XenStore ring (xenstored).
    XenStore,
    /// The primary PV console ring (the console backend).
    Console,
}

/// Copy a `T` out of guest virtual memory (once) and decode it.
fn read_arg<T: Abi>(g: &mut dyn GuestAccess, gva: u64) -> Result<T, XenErrno> {
    let mut buf = vec![0u8; T::SIZE];
    g.read_virt(gva, &mut buf).map_err(|_| XEN_EFAULT)?;
    T::read_from(&buf).ok_or(XEN_EFAULT)
}

/// Encode `v` into guest virtual memory.
fn write_arg<T: Abi>(g: &mut dyn GuestAccess, gva: u64, v: &T) -> Result<(), XenErrno> {
    g.write_virt(gva, &v.to_bytes()).map_err(|_| XEN_EFAULT)
}
