//! The KVM virtual machine of a PVH domain and its vCPUs, set up for Xen.
//!
//! Order matters to KVM: the split irqchip (in-kernel local APICs, no
//! in-kernel PIC or I/O APIC; the guest has no legacy interrupt
//! controllers at all) must exist before any vCPU; Xen emulation
//! (`KVM_XEN_HVM_CONFIG` with hypercall interception and in-kernel event
//! channel sends) is configured on the VM before the guest runs; each vCPU
//! gets the Xen CPUID leaves, its Xen vCPU id and, for the boot vCPU, the
//! PVH entry state. Secondary vCPUs stay in KVM's wait-for-SIPI state until
//! the guest starts them through its local APIC, as on hardware.

use kvm_bindings::{
    CpuId, KVM_CAP_SPLIT_IRQCHIP, KVM_MAX_CPUID_ENTRIES, KVM_XEN_HVM_CONFIG_EVTCHN_SEND,
    KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, kvm_enable_cap, kvm_fpu, kvm_lapic_state,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use kvm_xen::XenCaps;

use crate::boot::vcpu::{pvh_regs, pvh_sregs};
use crate::cpuid::{XEN_HYPERCALL_MSR, XenCpuidConfig, with_xen_leaves};
use crate::memory::GuestRam;

/// Where KVM puts the TSS it needs on Intel (three pages in the MMIO hole,
/// clear of the special pages and the local APIC).
const TSS_ADDR: usize = crate::layout::KVM_TSS_ADDR as usize;
/// I/O APIC routes reserved by the split irqchip (none are used: the
/// guest has no I/O APIC, but KVM wants the number).
const SPLIT_IRQCHIP_ROUTES: u64 = 24;

/// Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3, 11.5.1).
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_EXTINT: u32 = 0x7;
const APIC_MODE_NMI: u32 = 0x4;

/// Errors of building the VM and its vCPUs.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// `/dev/kvm` could not be opened.
    #[error("opening /dev/kvm failed")]
    OpenKvm(#[source] kvm_ioctls::Error),
    /// `KVM_CREATE_VM` failed.
    #[error("creating the KVM VM failed")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// The host's KVM lacks the Xen support rxen needs.
    #[error("the host's KVM cannot run Xen guests")]
    XenSupport(#[source] kvm_xen::KvmXenError),
    /// `KVM_SET_TSS_ADDR` failed.
    #[error("setting the TSS address failed")]
    TssAddr(#[source] kvm_ioctls::Error),
    /// Enabling the split irqchip failed.
    #[error("enabling the split irqchip (in-kernel local APICs) failed")]
    SplitIrqchip(#[source] kvm_ioctls::Error),
    /// A KVM Xen configuration call failed.
    #[error("configuring KVM's Xen emulation failed")]
    XenConfig(#[source] kvm_xen::KvmXenError),
    /// Registering guest memory failed.
    #[error("registering guest memory with KVM failed")]
    Memory(#[source] crate::memory::MemoryError),
    /// `KVM_CREATE_VCPU` failed.
    #[error("creating vCPU {vcpu} failed")]
    CreateVcpu {
        /// The vCPU.
        vcpu: u32,
        /// The failure.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// `KVM_GET_SUPPORTED_CPUID` failed.
    #[error("reading the host's supported CPUID failed")]
    SupportedCpuid(#[source] kvm_ioctls::Error),
    /// Building the CPUID table failed.
    #[error("building the CPUID table failed")]
    Cpuid(#[source] vmm_sys_util::fam::Error),
    /// A vCPU register or state ioctl failed.
    #[error("setting up vCPU {vcpu} ({what}) failed")]
    VcpuSetup {
        /// The vCPU.
        vcpu: u32,
        /// What was being set.
        what: &'static str,
        /// The failure.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A Xen vCPU attribute could not be set.
    #[error("setting the Xen vCPU id of vCPU {vcpu} failed")]
    XenVcpuId {
        /// The vCPU.
        vcpu: u32,
        /// The failure.
        #[source]
        source: kvm_xen::KvmXenError,
    },
}

/// What the VM needs to know.
#[derive(Clone, Copy, Debug)]
pub struct VmSetup {
    /// The domain id (Xen CPUID leaf 5).
    pub domid: u16,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Xen version presented (`major << 16 | minor`).
    pub xen_version: u32,
}

/// Create the VM with Xen emulation and `ram` registered.
///
/// # Safety
/// KVM maps `ram`'s memory for as long as the returned VM exists: the
/// caller must keep `ram` alive at least as long as the `VmFd`.
pub unsafe fn create_vm(kvm: &Kvm, ram: &GuestRam, setup: &VmSetup) -> Result<VmFd, VmError> {
    let vm = kvm.create_vm().map_err(VmError::CreateVm)?;
    let caps = XenCaps::query_vm(&vm);
    caps.require(XenCaps::REQUIRED, "PVH guests")
        .map_err(VmError::XenSupport)?;
    vm.set_tss_address(TSS_ADDR).map_err(VmError::TssAddr)?;
    let mut cap = kvm_enable_cap {
        cap: KVM_CAP_SPLIT_IRQCHIP,
        ..Default::default()
    };
    cap.args[0] = SPLIT_IRQCHIP_ROUTES;
    vm.enable_cap(&cap).map_err(VmError::SplitIrqchip)?;
    kvm_xen::set_hvm_config(
        &vm,
        KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL | KVM_XEN_HVM_CONFIG_EVTCHN_SEND,
        XEN_HYPERCALL_MSR,
    )
    .map_err(VmError::XenConfig)?;
    kvm_xen::set_xen_version(&vm, setup.xen_version).map_err(VmError::XenConfig)?;
    // rxen boots 64-bit guests only: shared_info has the 64-bit layout.
    kvm_xen::set_long_mode(&vm, true).map_err(VmError::XenConfig)?;
    // SAFETY: the caller keeps `ram` alive as long as the VM.
    unsafe { ram.register_with_kvm(&vm) }.map_err(VmError::Memory)?;
    Ok(vm)
}

/// The host's supported CPUID, read once for every vCPU.
pub fn supported_cpuid(kvm: &Kvm) -> Result<CpuId, VmError> {
    kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(VmError::SupportedCpuid)
}

/// `base` adjusted for vCPU `id`: its APIC ids (leaf 1 EBX bits 31:24, the
/// x2APIC id in leaves 0xb and 0x1f), the hypervisor bit, and the Xen
/// leaves in place of KVM's.
pub fn vcpu_cpuid(base: &CpuId, id: u32, setup: &VmSetup) -> Result<CpuId, VmError> {
    let mut entries = base.as_slice().to_vec();
    for e in &mut entries {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x00ff_ffff) | ((id & 0xff) << 24);
                e.ecx |= 1 << 31;
            }
            0xb | 0x1f => e.edx = id,
            _ => {}
        }
    }
    let cpuid = CpuId::from_entries(&entries).map_err(VmError::Cpuid)?;
    with_xen_leaves(
        &cpuid,
        &XenCpuidConfig {
            xen_version: setup.xen_version,
            vcpu_id: id,
            domid: setup.domid,
        },
    )
    .map_err(VmError::Cpuid)
}

/// Create vCPU `id` with its CPUID, Xen vCPU id and local APIC wiring; the
/// boot vCPU (0) also gets the PVH entry state (`entry`, `start_info`).
pub fn create_vcpu(
    vm: &VmFd,
    cpuid: &CpuId,
    id: u32,
    boot: Option<(u32, u64)>,
) -> Result<VcpuFd, VmError> {
    let vcpu = vm
        .create_vcpu(u64::from(id))
        .map_err(|source| VmError::CreateVcpu { vcpu: id, source })?;
    let setup_err = |what| {
        move |source| VmError::VcpuSetup {
            vcpu: id,
            what,
            source,
        }
    };
    vcpu.set_cpuid2(cpuid).map_err(setup_err("CPUID"))?;
    kvm_xen::set_vcpu_id(&vcpu, id).map_err(|source| VmError::XenVcpuId { vcpu: id, source })?;

    // LINT0 as ExtINT and LINT1 as NMI, the virtual-wire setup firmware
    // leaves behind and Linux expects to find.
    let mut lapic: kvm_lapic_state = vcpu.get_lapic().map_err(setup_err("local APIC"))?;
    set_lvt(&mut lapic, APIC_LVT0, APIC_MODE_EXTINT);
    set_lvt(&mut lapic, APIC_LVT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic).map_err(setup_err("local APIC"))?;

    if let Some((entry, start_info)) = boot {
        let fpu = kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        vcpu.set_fpu(&fpu).map_err(setup_err("FPU"))?;
        let sregs = pvh_sregs(vcpu.get_sregs().map_err(setup_err("sregs"))?);
        vcpu.set_sregs(&sregs).map_err(setup_err("sregs"))?;
        vcpu.set_regs(&pvh_regs(entry, start_info))
            .map_err(setup_err("regs"))?;
    }
    Ok(vcpu)
}

/// Set an LVT register's delivery mode (bits 8..11), unmasked.
fn set_lvt(lapic: &mut kvm_lapic_state, reg: usize, mode: u32) {
    let b = &mut lapic.regs[reg..reg + 4];
    let v = u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
    let v = (v & !0x0001_0700) | (mode << 8);
    for (d, s) in b.iter_mut().zip(v.to_le_bytes()) {
        *d = s as _;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    #[test]
    fn cpuid_carries_the_vcpu_apic_id_and_xen() {
        let base = CpuId::from_entries(&[
            kvm_cpuid_entry2 {
                function: 1,
                ebx: 0x0008_0800,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                index: 1,
                edx: 0,
                ..Default::default()
            },
        ])
        .unwrap();
        let setup = VmSetup {
            domid: 3,
            vcpus: 2,
            xen_version: 0x4_0011,
        };
        let c = vcpu_cpuid(&base, 1, &setup).unwrap();
        let s = c.as_slice();
        let l1 = s.iter().find(|e| e.function == 1).unwrap();
        assert_eq!(l1.ebx >> 24, 1);
        assert_eq!(l1.ebx & 0xffff, 0x0800, "other fields kept");
        assert_ne!(l1.ecx & (1 << 31), 0, "hypervisor bit");
        assert_eq!(s.iter().find(|e| e.function == 0xb).unwrap().edx, 1);
        let xen4 = s.iter().find(|e| e.function == 0x4000_0004).unwrap();
        assert_eq!((xen4.ebx, xen4.ecx), (1, 3), "Xen vCPU id and domid");
    }

    #[test]
    fn lvt_mode() {
        let mut l = kvm_lapic_state::default();
        // Masked, fixed mode, vector 0x20.
        l.regs[APIC_LVT0..APIC_LVT0 + 4].copy_from_slice(&[0x20, 0, 1, 0]);
        set_lvt(&mut l, APIC_LVT0, APIC_MODE_EXTINT);
        assert_eq!(
            &l.regs[APIC_LVT0..APIC_LVT0 + 4],
            &[0x20, 0x07, 0, 0],
            "ExtINT, unmasked, vector kept"
        );
    }
}
