//! `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)` (`vcpu.h`): what a Linux PVH
//! guest uses: vcpu_info registration, runstate and time areas (handed to
//! KVM), the singleshot timer (KVM's once VIRQ_TIMER is bound), periodic
//! timer stop, `VCPUOP_is_up`. Secondary vCPUs start through the local
//! APIC (INIT/SIPI), so `VCPUOP_initialise`/`up`/`down` are not offered.

use xen_abi::errno::*;
use xen_abi::vcpu::*;
use xen_abi::xen::VCPU_INFO_SIZE;

use super::{Effect, GuestAccess, HypercallCtx, VcpuOp, XenDomain, read_arg};
use crate::layout::PAGE_SIZE;

impl XenDomain {
    pub(super) fn vcpu_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, target, arg) = (ctx.args[0], ctx.args[1], ctx.args[2]);
        let vcpu = self.vcpu_valid(target).ok_or(XEN_ENOENT)?;
        match cmd {
            VCPUOP_register_vcpu_info => {
                let a: vcpu_register_vcpu_info = read_arg(g, arg)?;
                if u64::from(a.offset) + VCPU_INFO_SIZE as u64 > PAGE_SIZE || a.offset % 8 != 0 {
                    return Err(XEN_EINVAL);
                }
                let gpa = a.mfn.checked_mul(PAGE_SIZE).ok_or(XEN_EINVAL)? + u64::from(a.offset);
                if !g.is_memory(gpa, VCPU_INFO_SIZE as u64) {
                    return Err(XEN_EINVAL);
                }
                if self.vcpus[vcpu as usize].vcpu_info_registered {
                    // Xen allows registering once.
                    return Err(XEN_EINVAL);
                }
                let v = &mut self.vcpus[vcpu as usize];
                v.vcpu_info = Some(gpa);
                v.vcpu_info_registered = true;
                effects.push(Effect::Vcpu {
                    vcpu,
                    op: VcpuOp::SetVcpuInfo(gpa),
                });
                Ok(0)
            }
            VCPUOP_register_runstate_memory_area | VCPUOP_register_vcpu_time_memory_area => {
                // The address is virtual, in the caller's address space.
                let a: vcpu_register_runstate_memory_area = read_arg(g, arg)?;
                let size = if cmd == VCPUOP_register_runstate_memory_area {
                    vcpu_runstate_info_size()
                } else {
                    xen_abi::xen::VCPU_TIME_INFO_SIZE as u64
                };
                let gpa = if a.addr == 0 {
                    // Unregister.
                    kvm_xen::KVM_XEN_INVALID_GPA
                } else {
                    let gpa = g.translate(a.addr).map_err(|_| XEN_EFAULT)?;
                    let first = PAGE_SIZE - gpa % PAGE_SIZE;
                    if size > first {
                        // Xen takes areas that cross a page. KVM does for the
                        // runstate area only, and only when the rest lies in
                        // the next guest-physical page; the time area must fit
                        // in one page.
                        let rest = a
                            .addr
                            .checked_add(first)
                            .ok_or(XEN_EFAULT)
                            .and_then(|va| g.translate(va).map_err(|_| XEN_EFAULT))?;
                        if cmd != VCPUOP_register_runstate_memory_area || rest != gpa + first {
                            return Err(XEN_EINVAL);
                        }
                    }
                    if !g.is_memory(gpa, size) {
                        return Err(XEN_EINVAL);
                    }
                    gpa
                };
                let op = if cmd == VCPUOP_register_runstate_memory_area {
                    VcpuOp::SetRunstate(gpa)
                } else {
                    VcpuOp::SetTimeInfo(gpa)
                };
                effects.push(Effect::Vcpu { vcpu, op });
                Ok(0)
            }
            VCPUOP_set_singleshot_timer => {
                let a: vcpu_set_singleshot_timer = read_arg(g, arg)?;
                if vcpu != ctx.vcpu {
                    return Err(XEN_EINVAL);
                }
                let port = self.vcpus[vcpu as usize].timer_port.ok_or(XEN_EINVAL)?;
                if a.flags & VCPU_SSHOTTMR_future != 0 && a.timeout_abs_ns < ctx.now_ns {
                    return Err(XEN_ETIME);
                }
                effects.push(Effect::Vcpu {
                    vcpu,
                    op: VcpuOp::SetTimer {
                        port,
                        expires_ns: a.timeout_abs_ns.max(1),
                    },
                });
                Ok(0)
            }
            VCPUOP_stop_singleshot_timer => {
                if vcpu != ctx.vcpu {
                    return Err(XEN_EINVAL);
                }
                if let Some(port) = self.vcpus[vcpu as usize].timer_port {
                    effects.push(Effect::Vcpu {
                        vcpu,
                        op: VcpuOp::SetTimer {
                            port,
                            expires_ns: 0,
                        },
                    });
                }
                Ok(0)
            }
            // No periodic timer runs, so stopping it succeeds.
            VCPUOP_stop_periodic_timer => Ok(0),
            // Every configured vCPU exists; whether it runs is the APIC's business.
            VCPUOP_is_up => Ok(1),
            // Not the hardware domain.
            VCPUOP_get_physid => Err(XEN_EINVAL),
            _ => {
                self.log_unsupported(ctx, "vcpu_op");
                Err(XEN_ENOSYS)
            }
        }
    }
}

fn vcpu_runstate_info_size() -> u64 {
    <vcpu_runstate_info as xen_abi::layout::Abi>::SIZE as u64
}
