//! Xen's CPUID leaves, `xen/include/public/arch-x86/cpuid.h`: how a guest
//! finds Xen (signature), its version, the hypercall-page MSR and the HVM
//! feature flags. The leaves start at `0x40000000` or, when another
//! hypervisor's leaves come first, at a multiple of `0x100` above it.
#![allow(non_upper_case_globals)]

pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;

/// `XEN_CPUID_LEAF(i)`.
pub const fn xen_cpuid_leaf(i: u32) -> u32 {
    XEN_CPUID_FIRST_LEAF + i
}

/// "XenVMMXenVMM" in EBX, ECX, EDX of leaf 0.
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;

/// Leaf 3 (`XEN_CPUID_LEAF(2)`), ECX.
pub const XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD: u32 = 1 << 0;

// Leaf 4 (`XEN_CPUID_LEAF(3)`), sub-leaf 0.
pub const XEN_CPUID_TSC_EMULATED: u32 = 1 << 0;
pub const XEN_CPUID_HOST_TSC_RELIABLE: u32 = 1 << 1;
pub const XEN_CPUID_RDTSCP_INSTR_AVAIL: u32 = 1 << 2;
pub const XEN_CPUID_TSC_MODE_DEFAULT: u32 = 0;
pub const XEN_CPUID_TSC_MODE_ALWAYS_EMULATE: u32 = 1;
pub const XEN_CPUID_TSC_MODE_NEVER_EMULATE: u32 = 2;
pub const XEN_CPUID_TSC_MODE_PVRDTSCP: u32 = 3;

// Leaf 5 (`XEN_CPUID_LEAF(4)`), sub-leaf 0, EAX: HVM features.
pub const XEN_HVM_CPUID_APIC_ACCESS_VIRT: u32 = 1 << 0;
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
pub const XEN_HVM_CPUID_IOMMU_MAPPINGS: u32 = 1 << 2;
/// EBX holds the vCPU id.
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// ECX holds the domain id.
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;
pub const XEN_HVM_CPUID_EXT_DEST_ID: u32 = 1 << 5;
/// Per-vCPU upcall vectors (`HVMOP_set_evtchn_upcall_vector`) work.
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;

/// Leaf 6 (`XEN_CPUID_LEAF(5)`), EBX bits 7:0: machine address width.
pub const XEN_CPUID_MACHINE_ADDRESS_WIDTH_MASK: u32 = 0xff;

/// `XEN_CPUID_MAX_NUM_LEAVES`: leaves 0..=5 above the base.
pub const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_spells_xenvmmxenvmm() {
        let mut s = Vec::new();
        for r in [
            XEN_CPUID_SIGNATURE_EBX,
            XEN_CPUID_SIGNATURE_ECX,
            XEN_CPUID_SIGNATURE_EDX,
        ] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"XenVMMXenVMM");
        assert_eq!(xen_cpuid_leaf(4), 0x4000_0004);
    }
}
