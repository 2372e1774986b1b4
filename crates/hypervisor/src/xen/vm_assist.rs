//! `HYPERVISOR_vm_assist(cmd, type)` (`xen.h`): the one assist an HVM/PVH
//! guest may turn on is `VMASST_TYPE_runstate_update_flag` (Xen's
//! `HVM_VM_ASSIST_MASK`), which KVM implements
//! (`KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG`): runstate areas then carry
//! `XEN_RUNSTATE_UPDATE` while KVM rewrites them.

use xen_abi::errno::*;
use xen_abi::xen::{VMASST_CMD_disable, VMASST_CMD_enable, VMASST_TYPE_runstate_update_flag};

use super::{Effect, HypercallCtx, VmOp, XenDomain};

impl XenDomain {
    pub(super) fn vm_assist(
        &mut self,
        ctx: &HypercallCtx,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, kind) = (ctx.args[0], ctx.args[1]);
        if kind != VMASST_TYPE_runstate_update_flag {
            return Err(XEN_EINVAL);
        }
        let on = match cmd {
            VMASST_CMD_enable => true,
            VMASST_CMD_disable => false,
            _ => return Err(XEN_ENOSYS),
        };
        effects.push(Effect::Vm(VmOp::SetRunstateUpdateFlag(on)));
        Ok(0)
    }
}
