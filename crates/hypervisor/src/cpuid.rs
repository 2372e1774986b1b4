//! The Xen CPUID leaves a guest uses to find Xen
//! (`xen/include/public/arch-x86/cpuid.h`): signature, version, the
//! hypercall-page MSR that KVM's `KVM_XEN_HVM_CONFIG` intercepts, and the
//! HVM feature leaf with the vCPU and domain ids. They replace whatever
//! hypervisor leaves (KVM's own) the host offered at `0x4000_0000`, so the
//! guest sees Xen and only Xen.

use kvm_bindings::{CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2};
use xen_abi::arch_x86::cpuid::*;

/// The hypercall-page MSR advertised in leaf 3 and given to
/// `KVM_XEN_HVM_CONFIG` (Xen's own choice without Viridian).
pub const XEN_HYPERCALL_MSR: u32 = 0x4000_0000;

/// Per-vCPU inputs of the Xen leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenCpuidConfig {
    /// `major << 16 | minor`.
    pub xen_version: u32,
    /// The Xen vCPU id (leaf 5 EBX).
    pub vcpu_id: u32,
    /// The domain id (leaf 5 ECX).
    pub domid: u16,
}

fn leaf(function: u32, index: u32, flags: u32, r: [u32; 4]) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        flags,
        eax: r[0],
        ebx: r[1],
        ecx: r[2],
        edx: r[3],
        ..Default::default()
    }
}

/// The Xen leaves `0x4000_0000..=0x4000_0004`.
///
/// Leaf 5 does not offer `XEN_HVM_CPUID_UPCALL_VECTOR`: guests then take
/// event-channel upcalls through the domain-wide callback vector
/// (`HVM_PARAM_CALLBACK_IRQ`), which KVM injects by itself whenever a
/// vCPU's `evtchn_upcall_pending` is set. With per-vCPU vectors
/// (`HVMOP_set_evtchn_upcall_vector`, still accepted) KVM would deliver
/// through the local APIC as well as through the callback vector, and
/// events raised by the domain process (an unmask that finds a port
/// pending) would need an MSI of their own.
pub fn xen_leaves(cfg: &XenCpuidConfig) -> Vec<kvm_cpuid_entry2> {
    let base = XEN_CPUID_FIRST_LEAF;
    let hvm = XEN_HVM_CPUID_VCPU_ID_PRESENT | XEN_HVM_CPUID_DOMID_PRESENT;
    vec![
        leaf(
            base,
            0,
            0,
            [
                base + 4,
                XEN_CPUID_SIGNATURE_EBX,
                XEN_CPUID_SIGNATURE_ECX,
                XEN_CPUID_SIGNATURE_EDX,
            ],
        ),
        leaf(base + 1, 0, 0, [cfg.xen_version, 0, 0, 0]),
        // One hypercall page, at the MSR KVM intercepts.
        leaf(base + 2, 0, 0, [1, XEN_HYPERCALL_MSR, 0, 0]),
        // TSC leaf: default mode, nothing emulated (the guest uses pvclock).
        leaf(
            base + 3,
            0,
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            [0, XEN_CPUID_TSC_MODE_DEFAULT, 0, 0],
        ),
        leaf(
            base + 4,
            0,
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            [hvm, cfg.vcpu_id, u32::from(cfg.domid), 0],
        ),
    ]
}

/// `cpuid` (e.g. from `KVM_GET_SUPPORTED_CPUID`) with every hypervisor leaf
/// `0x4000_0000..0x4001_0000` replaced by the Xen leaves.
pub fn with_xen_leaves(
    cpuid: &CpuId,
    cfg: &XenCpuidConfig,
) -> Result<CpuId, vmm_sys_util::fam::Error> {
    let mut entries: Vec<kvm_cpuid_entry2> = cpuid
        .as_slice()
        .iter()
        .filter(|e| !(0x4000_0000..0x4001_0000).contains(&e.function))
        .copied()
        .collect();
    entries.extend(xen_leaves(cfg));
    CpuId::from_entries(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves() {
        let l = xen_leaves(&XenCpuidConfig {
            xen_version: 0x0004_0011,
            vcpu_id: 1,
            domid: 7,
        });
        let sig: Vec<u8> = [l[0].ebx, l[0].ecx, l[0].edx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        assert_eq!(&sig, b"XenVMMXenVMM");
        assert_eq!(l[0].eax, 0x4000_0004, "highest leaf present");
        assert_eq!(l.last().unwrap().function, l[0].eax);
        assert_eq!(l[1].eax, 0x0004_0011);
        assert_eq!((l[2].eax, l[2].ebx), (1, 0x4000_0000));
        assert_ne!(l[4].eax & XEN_HVM_CPUID_VCPU_ID_PRESENT, 0);
        assert_eq!(
            l[4].eax & XEN_HVM_CPUID_UPCALL_VECTOR,
            0,
            "events come through the callback vector"
        );
        assert_eq!((l[4].ebx, l[4].ecx), (1, 7));
    }

    #[test]
    fn replaces_kvm_leaves() {
        let host = CpuId::from_entries(&[
            leaf(0, 0, 0, [0xd, 1, 2, 3]),
            leaf(
                0x4000_0000,
                0,
                0,
                [0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d],
            ),
            leaf(0x4000_0001, 0, 0, [0xffff, 0, 0, 0]),
            leaf(0x8000_0000, 0, 0, [0x8000_0008, 0, 0, 0]),
        ])
        .unwrap();
        let out = with_xen_leaves(
            &host,
            &XenCpuidConfig {
                xen_version: 0x0004_0011,
                vcpu_id: 0,
                domid: 1,
            },
        )
        .unwrap();
        let s = out.as_slice();
        assert_eq!(s.len(), 2 + 5);
        assert!(s.iter().any(|e| e.function == 0 && e.eax == 0xd));
        assert!(s.iter().any(|e| e.function == 0x8000_0000));
        let hv: Vec<_> = s.iter().filter(|e| e.function >> 16 == 0x4000).collect();
        assert_eq!(hv.len(), 5);
        assert_eq!(
            hv[0].ebx, XEN_CPUID_SIGNATURE_EBX,
            "KVM's signature is gone"
        );
        assert_eq!(hv[1].eax, 0x0004_0011, "KVM's feature leaf is gone");
    }
}
