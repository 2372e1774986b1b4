//! `HYPERVISOR_hvm_op` (`hvm/hvm_op.h`, `hvm/params.h`): HVM parameters
//! (the XenStore and console rings, the event-channel callback), per-vCPU
//! upcall vectors, `HVMOP_get_time`.

use xen_abi::errno::*;
use xen_abi::hvm::hvm_op::*;
use xen_abi::hvm::params::*;

use super::{Effect, GuestAccess, HypercallCtx, VcpuOp, VmOp, XenDomain, read_arg, write_arg};

/// Lowest vector usable for upcalls (0-15 are exceptions/reserved).
const MIN_VECTOR: u8 = 0x10;

impl XenDomain {
    pub(super) fn hvm_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, arg) = (ctx.args[0], ctx.args[1]);
        match cmd {
            HVMOP_get_param => {
                let mut a: xen_hvm_param = read_arg(g, arg)?;
                if !self.is_self(a.domid) {
                    return Err(XEN_EPERM);
                }
                a.value = self.get_param(a.index)?;
                write_arg(g, arg, &a)?;
                Ok(0)
            }
            HVMOP_set_param => {
                let a: xen_hvm_param = read_arg(g, arg)?;
                if !self.is_self(a.domid) {
                    return Err(XEN_EPERM);
                }
                if a.index >= HVM_NR_PARAMS {
                    return Err(XEN_EINVAL);
                }
                match a.index {
                    HVM_PARAM_CALLBACK_IRQ => {
                        let vector = match CallbackVia::decode(a.value) {
                            CallbackVia::None => 0,
                            CallbackVia::Vector(v) if v >= MIN_VECTOR => v,
                            // No IOAPIC/PCI in a PVH domain: only vector callbacks.
                            _ => return Err(XEN_EINVAL),
                        };
                        self.params.callback_irq = a.value;
                        effects.push(Effect::Vm(VmOp::SetUpcallVector(vector)));
                        Ok(0)
                    }
                    // The toolstack's parameters are read-only to the guest.
                    _ => Err(XEN_EPERM),
                }
            }
            HVMOP_set_evtchn_upcall_vector => {
                let a: xen_hvm_evtchn_upcall_vector = read_arg(g, arg)?;
                let vcpu = self.vcpu_valid(u64::from(a.vcpu)).ok_or(XEN_ENOENT)?;
                if a.vector < MIN_VECTOR {
                    return Err(XEN_EINVAL);
                }
                effects.push(Effect::Vcpu {
                    vcpu,
                    op: VcpuOp::SetUpcallVector(a.vector),
                });
                Ok(0)
            }
            HVMOP_get_time => {
                write_arg(g, arg, &xen_hvm_get_time { now: ctx.now_ns })?;
                Ok(0)
            }
            // Shadow-paging hint: nothing to do with EPT/NPT (Xen says ENOSYS too).
            HVMOP_pagetable_dying => Err(XEN_ENOSYS),
            _ => {
                self.log_unsupported(ctx, "hvm_op");
                Err(XEN_ENOSYS)
            }
        }
    }

    fn get_param(&self, index: u32) -> Result<u64, XenErrno> {
        let p = &self.params;
        match index {
            HVM_PARAM_CALLBACK_IRQ => Ok(p.callback_irq),
            HVM_PARAM_STORE_PFN => Ok(p.store_pfn),
            HVM_PARAM_STORE_EVTCHN => Ok(u64::from(p.store_evtchn)),
            HVM_PARAM_CONSOLE_PFN => Ok(p.console_pfn),
            HVM_PARAM_CONSOLE_EVTCHN => Ok(u64::from(p.console_evtchn)),
            // Parameters rxen does not use read as 0, as unset ones do on Xen.
            i if i < HVM_NR_PARAMS => Ok(0),
            _ => Err(XEN_EINVAL),
        }
    }
}
