//! Carrying out [`VmOp`] and [`VcpuOp`] effects with the KVM Xen ioctls.

use kvm_ioctls::{VcpuFd, VmFd};
use kvm_xen::KvmXenError;

use super::{VcpuOp, VmOp};

/// Apply a VM-wide change.
pub fn apply_vm_op(vm: &VmFd, op: VmOp) -> Result<(), KvmXenError> {
    match op {
        VmOp::SetSharedInfo { gfn } => kvm_xen::set_shared_info_gfn(vm, gfn),
        VmOp::SetUpcallVector(v) => kvm_xen::set_upcall_vector(vm, v),
        VmOp::RaisePort { port, vcpu } => kvm_xen::evtchn_send(vm, port, vcpu),
        VmOp::RoutePort { port, target } => {
            // Replace an existing route, or add one.
            kvm_xen::assign_evtchn(vm, port, target, true)
                .or_else(|_| kvm_xen::assign_evtchn(vm, port, target, false))
        }
        VmOp::UnroutePort(port) => kvm_xen::deassign_evtchn(vm, port),
        VmOp::SetRunstateUpdateFlag(on) => kvm_xen::set_runstate_update_flag(vm, on),
    }
}

/// Apply a per-vCPU change; call on the thread that runs `vcpu`.
pub fn apply_vcpu_op(vcpu: &VcpuFd, op: VcpuOp) -> Result<(), KvmXenError> {
    match op {
        VcpuOp::SetVcpuInfo(gpa) => kvm_xen::set_vcpu_info_gpa(vcpu, gpa),
        VcpuOp::SetTimeInfo(gpa) => kvm_xen::set_vcpu_time_info_gpa(vcpu, gpa),
        VcpuOp::SetRunstate(gpa) => kvm_xen::set_runstate_gpa(vcpu, gpa),
        VcpuOp::SetUpcallVector(v) => kvm_xen::set_vcpu_upcall_vector(vcpu, v),
        VcpuOp::SetTimer { port, expires_ns } => kvm_xen::set_timer(vcpu, port, expires_ns),
    }
}
