//! Event channels, 2-level ABI (`event_channel.h`): the port table and the
//! `EVTCHNOP_*` hypercalls.
//!
//! The pending and mask bits live in the guest's shared_info page, which KVM
//! owns: raising a port is `KVM_XEN_HVM_EVTCHN_SEND` ([`VmOp::RaisePort`]),
//! and ports whose sends stay inside the guest (IPIs, loopback
//! interdomain pairs) are routed to KVM ([`VmOp::RoutePort`]) so
//! `EVTCHNOP_send` on them never leaves the kernel. Sends on ports
//! connected to host-side peers come here and become [`Effect::Notify`].
//! The FIFO ABI is not offered (`-ENOSYS`), so guests use 2-level.

use xen_abi::errno::*;
use xen_abi::event_channel::*;
use xen_abi::xen::{
    DOMID_FIRST_RESERVED, DOMID_SELF, NR_VIRQS, SHARED_INFO_evtchn_mask,
    SHARED_INFO_evtchn_pending, VCPU_INFO_evtchn_pending_sel, VCPU_INFO_evtchn_upcall_pending,
    VIRQ_TIMER, shared_info_vcpu_info_offset, virq_is_per_vcpu,
};
use xen_abi::{DomId, EvtchnPort};

use super::{
    Effect, EvtchnTarget, GuestAccess, HypercallCtx, VcpuOp, VmOp, XenDomain, read_arg, write_arg,
};
use crate::layout::PAGE_SIZE;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Free.
    Closed,
    /// Allocated, waiting for `remote` to bind.
    Unbound {
        /// The domain allowed to bind.
        remote: DomId,
    },
    /// Connected to `remote_port` of `remote` (possibly this domain).
    Interdomain {
        /// Peer domain.
        remote: DomId,
        /// Peer port.
        remote_port: EvtchnPort,
    },
    /// Bound to a virtual IRQ.
    Virq(u32),
    /// An inter-processor interrupt port.
    Ipi,
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// Binding.
    pub state: PortState,
    /// vCPU notified when the port is raised.
    pub vcpu: u32,
    /// Set up by the toolstack (XenStore, console): survives `EVTCHNOP_reset`.
    pub toolstack: bool,
}

const CLOSED: Port = Port {
    state: PortState::Closed,
    vcpu: 0,
    toolstack: false,
};

/// The port table of one domain.
#[derive(Debug)]
pub struct EventChannels {
    domid: DomId,
    ports: Vec<Port>,
}

impl EventChannels {
    /// An empty table. Port 0 is never allocated (Xen reserves it).
    pub fn new(domid: DomId) -> Self {
        Self {
            domid,
            ports: vec![CLOSED],
        }
    }

    /// The port's entry, if it is in the table.
    pub fn port(&self, port: u32) -> Option<&Port> {
        self.ports.get(port as usize)
    }

    fn valid(&self, port: u32) -> Result<usize, XenErrno> {
        let p = port as usize;
        if port == 0 || p >= self.ports.len() {
            return Err(XEN_EINVAL);
        }
        Ok(p)
    }

    fn alloc(&mut self, state: PortState, vcpu: u32) -> Result<u32, XenErrno> {
        let free = self
            .ports
            .iter()
            .skip(1)
            .position(|p| p.state == PortState::Closed)
            .map(|i| i + 1);
        let idx = match free {
            Some(i) => i,
            None if self.ports.len() < EVTCHN_2L_NR_CHANNELS as usize => {
                self.ports.push(CLOSED);
                self.ports.len() - 1
            }
            None => return Err(XEN_ENOSPC),
        };
        self.ports[idx] = Port {
            state,
            vcpu,
            toolstack: false,
        };
        Ok(idx as u32)
    }

    /// Toolstack: a port already connected to a host-side peer.
    pub fn alloc_interdomain_reserved(
        &mut self,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Option<EvtchnPort> {
        let p = self
            .alloc(
                PortState::Interdomain {
                    remote,
                    remote_port,
                },
                0,
            )
            .ok()?;
        self.ports[p as usize].toolstack = true;
        Some(EvtchnPort(p))
    }

    /// A backend in the host (blkback, netback) binds the guest's `port`,
    /// which the guest allocated unbound for `remote` (`EVTCHNOP_alloc_unbound`
    /// with `remote_dom` = the backend's domain), as Xen's
    /// `EVTCHNOP_bind_interdomain` from that domain would: the port becomes
    /// interdomain with the backend's `remote_port`, and the domain process
    /// routes the guest's sends on it (so closing it unroutes them).
    /// `EINVAL` if the port is not unbound for `remote`.
    pub fn bind_host_peer(
        &mut self,
        port: u32,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<(), XenErrno> {
        let p = self.valid(port)?;
        if self.ports[p].state != (PortState::Unbound { remote }) || remote == self.domid {
            return Err(XEN_EINVAL);
        }
        self.ports[p].state = PortState::Interdomain {
            remote,
            remote_port,
        };
        self.ports[p].toolstack = true;
        Ok(())
    }

    /// A host-side peer signals the guest's `port`: the effect that raises
    /// it, or `None` if `port` is not connected to a host peer.
    pub fn notify_from_host(&self, port: EvtchnPort) -> Option<Effect> {
        let p = self.ports.get(port.0 as usize)?;
        match p.state {
            PortState::Interdomain { remote, .. } if remote != self.domid && port.0 != 0 => {
                Some(Effect::Vm(VmOp::RaisePort {
                    port: port.0,
                    vcpu: p.vcpu,
                }))
            }
            _ => None,
        }
    }

    /// Ports bound to `virq` (on any vCPU).
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<u32> {
        self.ports
            .iter()
            .position(|p| p.state == PortState::Virq(virq) && p.vcpu == vcpu)
            .map(|i| i as u32)
    }

    /// The KVM route that makes guest sends on `port` deliver in the kernel,
    /// if the port's sends stay inside this domain.
    fn route_for(&self, port: u32) -> Option<VmOp> {
        let p = self.ports.get(port as usize)?;
        match p.state {
            PortState::Ipi => Some(VmOp::RoutePort {
                port,
                target: EvtchnTarget::Port { port, vcpu: p.vcpu },
            }),
            PortState::Interdomain {
                remote,
                remote_port,
            } if remote == self.domid => {
                let peer = self.ports.get(remote_port.0 as usize)?;
                Some(VmOp::RoutePort {
                    port,
                    target: EvtchnTarget::Port {
                        port: remote_port.0,
                        vcpu: peer.vcpu,
                    },
                })
            }
            _ => None,
        }
    }

    /// Close `port`, undoing its KVM state; a loopback peer goes back to unbound.
    fn close(&mut self, port: usize, effects: &mut Vec<Effect>) {
        let old = self.ports[port];
        if old.toolstack {
            // The domain process routed sends on it to a host service.
            effects.push(Effect::Vm(VmOp::UnroutePort(port as u32)));
        }
        match old.state {
            PortState::Ipi => effects.push(Effect::Vm(VmOp::UnroutePort(port as u32))),
            PortState::Interdomain {
                remote,
                remote_port,
            } if remote == self.domid => {
                effects.push(Effect::Vm(VmOp::UnroutePort(port as u32)));
                let rp = remote_port.0 as usize;
                if rp != port && rp < self.ports.len() {
                    effects.push(Effect::Vm(VmOp::UnroutePort(rp as u32)));
                    self.ports[rp].state = PortState::Unbound { remote: self.domid };
                }
            }
            PortState::Virq(VIRQ_TIMER) => {
                effects.push(Effect::Vcpu {
                    vcpu: old.vcpu,
                    op: VcpuOp::SetTimer {
                        port: 0,
                        expires_ns: 0,
                    },
                });
            }
            _ => {}
        }
        self.ports[port] = CLOSED;
    }
}

impl XenDomain {
    /// `HYPERVISOR_event_channel_op(cmd, arg)`.
    pub(super) fn event_channel_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, arg) = (ctx.args[0], ctx.args[1]);
        match cmd {
            EVTCHNOP_alloc_unbound => {
                let mut a: evtchn_alloc_unbound = read_arg(g, arg)?;
                if !self.is_self(a.dom) {
                    return Err(XEN_EPERM);
                }
                let remote = if a.remote_dom == DOMID_SELF {
                    self.cfg.domid
                } else {
                    DomId(a.remote_dom)
                };
                if remote.0 >= DOMID_FIRST_RESERVED {
                    return Err(XEN_ESRCH);
                }
                a.port = self.evtchn.alloc(PortState::Unbound { remote }, 0)?;
                if let Err(e) = write_arg(g, arg, &a) {
                    self.evtchn.ports[a.port as usize] = CLOSED;
                    return Err(e);
                }
                Ok(0)
            }
            EVTCHNOP_bind_interdomain => {
                let mut a: evtchn_bind_interdomain = read_arg(g, arg)?;
                if !self.is_self(a.remote_dom) {
                    // Binding to another domain's port: rxen's host-side
                    // peers connect through the toolstack instead.
                    return Err(XEN_ESRCH);
                }
                let me = self.cfg.domid;
                let rp = self.evtchn.valid(a.remote_port)?;
                if self.evtchn.ports[rp].state != (PortState::Unbound { remote: me }) {
                    return Err(XEN_EINVAL);
                }
                let lp = self.evtchn.alloc(
                    PortState::Interdomain {
                        remote: me,
                        remote_port: EvtchnPort(rp as u32),
                    },
                    0,
                )?;
                self.evtchn.ports[rp].state = PortState::Interdomain {
                    remote: me,
                    remote_port: EvtchnPort(lp),
                };
                a.local_port = lp;
                if let Err(e) = write_arg(g, arg, &a) {
                    self.evtchn.ports[lp as usize] = CLOSED;
                    self.evtchn.ports[rp].state = PortState::Unbound { remote: me };
                    return Err(e);
                }
                effects.extend(self.evtchn.route_for(lp).map(Effect::Vm));
                effects.extend(self.evtchn.route_for(rp as u32).map(Effect::Vm));
                Ok(0)
            }
            EVTCHNOP_bind_virq => {
                let mut a: evtchn_bind_virq = read_arg(g, arg)?;
                if a.virq >= NR_VIRQS {
                    return Err(XEN_EINVAL);
                }
                if !virq_is_per_vcpu(a.virq) && a.vcpu != 0 {
                    return Err(XEN_EINVAL);
                }
                let vcpu = self.vcpu_valid(u64::from(a.vcpu)).ok_or(XEN_ENOENT)?;
                if self.evtchn.virq_port(a.virq, vcpu).is_some() {
                    return Err(XEN_EEXIST);
                }
                a.port = self.evtchn.alloc(PortState::Virq(a.virq), vcpu)?;
                if let Err(e) = write_arg(g, arg, &a) {
                    self.evtchn.ports[a.port as usize] = CLOSED;
                    return Err(e);
                }
                if a.virq == VIRQ_TIMER {
                    // KVM runs the singleshot timer and raises this port.
                    self.vcpus[vcpu as usize].timer_port = Some(a.port);
                    effects.push(Effect::Vcpu {
                        vcpu,
                        op: VcpuOp::SetTimer {
                            port: a.port,
                            expires_ns: 0,
                        },
                    });
                }
                Ok(0)
            }
            EVTCHNOP_bind_ipi => {
                let mut a: evtchn_bind_ipi = read_arg(g, arg)?;
                let vcpu = self.vcpu_valid(u64::from(a.vcpu)).ok_or(XEN_ENOENT)?;
                a.port = self.evtchn.alloc(PortState::Ipi, vcpu)?;
                if let Err(e) = write_arg(g, arg, &a) {
                    self.evtchn.ports[a.port as usize] = CLOSED;
                    return Err(e);
                }
                effects.extend(self.evtchn.route_for(a.port).map(Effect::Vm));
                Ok(0)
            }
            EVTCHNOP_close => {
                let a: evtchn_close = read_arg(g, arg)?;
                let p = self.evtchn.valid(a.port)?;
                if self.evtchn.ports[p].state == PortState::Closed {
                    return Err(XEN_EINVAL);
                }
                if let PortState::Virq(VIRQ_TIMER) = self.evtchn.ports[p].state {
                    let v = self.evtchn.ports[p].vcpu as usize;
                    self.vcpus[v].timer_port = None;
                }
                self.evtchn.close(p, effects);
                Ok(0)
            }
            EVTCHNOP_send => {
                let a: evtchn_send = read_arg(g, arg)?;
                let p = self.evtchn.valid(a.port)?;
                let port = self.evtchn.ports[p];
                match port.state {
                    PortState::Ipi => effects.push(Effect::Vm(VmOp::RaisePort {
                        port: a.port,
                        vcpu: port.vcpu,
                    })),
                    PortState::Interdomain {
                        remote,
                        remote_port,
                    } if remote == self.cfg.domid => {
                        let peer = self.evtchn.port(remote_port.0).ok_or(XEN_EINVAL)?;
                        effects.push(Effect::Vm(VmOp::RaisePort {
                            port: remote_port.0,
                            vcpu: peer.vcpu,
                        }));
                    }
                    PortState::Interdomain {
                        remote,
                        remote_port,
                    } => {
                        effects.push(Effect::Notify {
                            port: EvtchnPort(a.port),
                            remote_dom: remote,
                            remote_port,
                        });
                    }
                    // Xen drops sends on an unbound port silently.
                    PortState::Unbound { .. } => {}
                    PortState::Virq(_) | PortState::Closed => return Err(XEN_EINVAL),
                }
                Ok(0)
            }
            EVTCHNOP_status => {
                let mut a: evtchn_status = read_arg(g, arg)?;
                if !self.is_self(a.dom) {
                    return Err(XEN_EPERM);
                }
                let p = self
                    .evtchn
                    .port(a.port)
                    .filter(|_| a.port < EVTCHN_2L_NR_CHANNELS)
                    .ok_or(XEN_EINVAL)?;
                a.vcpu = p.vcpu;
                a.u_dom = 0;
                a.u_pad = 0;
                a.u_word = 0;
                a.status = match p.state {
                    PortState::Closed => EVTCHNSTAT_closed,
                    PortState::Unbound { remote } => {
                        a.u_dom = remote.0;
                        EVTCHNSTAT_unbound
                    }
                    PortState::Interdomain {
                        remote,
                        remote_port,
                    } => {
                        a.u_dom = remote.0;
                        a.u_word = remote_port.0;
                        EVTCHNSTAT_interdomain
                    }
                    PortState::Virq(v) => {
                        a.set_u32(v);
                        EVTCHNSTAT_virq
                    }
                    PortState::Ipi => EVTCHNSTAT_ipi,
                };
                write_arg(g, arg, &a)?;
                Ok(0)
            }
            EVTCHNOP_bind_vcpu => {
                let a: evtchn_bind_vcpu = read_arg(g, arg)?;
                let p = self.evtchn.valid(a.port)?;
                let vcpu = self.vcpu_valid(u64::from(a.vcpu)).ok_or(XEN_ENOENT)?;
                match self.evtchn.ports[p].state {
                    PortState::Virq(v) if !virq_is_per_vcpu(v) => {}
                    PortState::Unbound { .. } | PortState::Interdomain { .. } => {}
                    _ => return Err(XEN_EINVAL),
                }
                self.evtchn.ports[p].vcpu = vcpu;
                // A loopback peer routes its sends to this port's vCPU.
                if let PortState::Interdomain {
                    remote,
                    remote_port,
                } = self.evtchn.ports[p].state
                {
                    if remote == self.cfg.domid {
                        effects.extend(self.evtchn.route_for(remote_port.0).map(Effect::Vm));
                    }
                }
                Ok(0)
            }
            EVTCHNOP_unmask => {
                let a: evtchn_unmask = read_arg(g, arg)?;
                let p = self.evtchn.valid(a.port)?;
                self.unmask(p as u32, g, effects)?;
                Ok(0)
            }
            EVTCHNOP_reset => {
                let a: evtchn_reset = read_arg(g, arg)?;
                if !self.is_self(a.dom) {
                    return Err(XEN_EPERM);
                }
                for p in 1..self.evtchn.ports.len() {
                    if !self.evtchn.ports[p].toolstack
                        && self.evtchn.ports[p].state != PortState::Closed
                    {
                        self.evtchn.close(p, effects);
                    }
                }
                for v in &mut self.vcpus {
                    v.timer_port = None;
                }
                Ok(0)
            }
            // No physical IRQs for PVH guests; no FIFO ABI.
            EVTCHNOP_bind_pirq
            | EVTCHNOP_init_control
            | EVTCHNOP_expand_array
            | EVTCHNOP_set_priority => Err(XEN_ENOSYS),
            _ => {
                self.log_unsupported(ctx, "event_channel_op");
                Err(XEN_ENOSYS)
            }
        }
    }

    /// Xen's `evtchn_unmask`: clear the mask bit; if the port was masked
    /// and is pending, set the selector bit and the upcall flag of the
    /// port's vCPU, and have that vCPU re-enter the guest.
    fn unmask(
        &mut self,
        port: u32,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<(), XenErrno> {
        let Some(gfn) = self.shared_info_gfn else {
            return Ok(());
        };
        let si = gfn * PAGE_SIZE;
        let word = u64::from(port / 64);
        let bit = 1u64 << (port % 64);
        let mask_addr = si + SHARED_INFO_evtchn_mask as u64 + word * 8;
        let pending_addr = si + SHARED_INFO_evtchn_pending as u64 + word * 8;
        let was_masked = g
            .phys_fetch_and_u64(mask_addr, !bit)
            .map_err(|_| XEN_EFAULT)?
            & bit
            != 0;
        let pending = g
            .phys_fetch_or_u64(pending_addr, 0)
            .map_err(|_| XEN_EFAULT)?
            & bit
            != 0;
        if !(was_masked && pending) {
            return Ok(());
        }
        let vcpu = self.evtchn.ports[port as usize].vcpu;
        let Some(vi) = self.vcpu_info_gpa(vcpu) else {
            return Ok(());
        };
        let old_sel = g
            .phys_fetch_or_u64(vi + VCPU_INFO_evtchn_pending_sel as u64, 1 << word)
            .map_err(|_| XEN_EFAULT)?;
        if old_sel & (1 << word) == 0 {
            g.phys_write(vi + VCPU_INFO_evtchn_upcall_pending as u64, &[1])
                .map_err(|_| XEN_EFAULT)?;
            effects.push(Effect::Kick(vcpu));
        }
        Ok(())
    }

    /// Where vCPU `vcpu`'s vcpu_info is: registered, or its slot in shared_info.
    pub fn vcpu_info_gpa(&self, vcpu: u32) -> Option<u64> {
        let v = self.vcpus.get(vcpu as usize)?;
        if v.vcpu_info_registered {
            return v.vcpu_info;
        }
        let si = self.shared_info_gfn? * PAGE_SIZE;
        Some(si + shared_info_vcpu_info_offset(vcpu)? as u64)
    }
}
