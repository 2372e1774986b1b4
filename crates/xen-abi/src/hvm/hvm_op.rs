//! HVM operations, `xen/include/public/hvm/hvm_op.h`: `HVMOP_*` sub-ops of
//! `HYPERVISOR_hvm_op(cmd, arg)` used by HVM/PVH guests, with argument
//! layouts (x86_64).
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const HVMOP_set_param: u64 = 0;
pub const HVMOP_get_param: u64 = 1;
pub const HVMOP_set_pci_intx_level: u64 = 2;
pub const HVMOP_set_isa_irq_level: u64 = 3;
pub const HVMOP_set_pci_link_route: u64 = 4;
pub const HVMOP_flush_tlbs: u64 = 5;
pub const HVMOP_pagetable_dying: u64 = 9;
pub const HVMOP_get_time: u64 = 10;
pub const HVMOP_xentrace: u64 = 11;
pub const HVMOP_set_mem_access: u64 = 12;
pub const HVMOP_get_mem_access: u64 = 13;
pub const HVMOP_get_mem_type: u64 = 15;
pub const HVMOP_set_evtchn_upcall_vector: u64 = 23;
pub const HVMOP_guest_request_vm_event: u64 = 24;
pub const HVMOP_altp2m: u64 = 25;

abi_struct! {
    /// `struct xen_hvm_param`: IN domid, index, value (set); OUT value (get).
    pub struct xen_hvm_param {
        pub domid: u16,
        pub pad: u16,
        pub index: u32,
        pub value: u64,
    }
}

abi_struct! {
    /// `struct xen_hvm_evtchn_upcall_vector`: a per-vCPU upcall vector.
    pub struct xen_hvm_evtchn_upcall_vector {
        pub vcpu: u32,
        pub vector: u8,
    }
}

abi_struct! {
    /// `struct xen_hvm_pagetable_dying`.
    pub struct xen_hvm_pagetable_dying {
        pub domid: u16,
        pub pad: [u16; 3],
        pub gpa: u64,
    }
}

abi_struct! {
    /// `struct xen_hvm_get_time`.
    pub struct xen_hvm_get_time {
        pub now: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(xen_hvm_param::SIZE, 16);
        assert_eq!(offset_of!(xen_hvm_param, index), 4);
        assert_eq!(offset_of!(xen_hvm_param, value), 8);
        assert_eq!(xen_hvm_evtchn_upcall_vector::SIZE, 8);
        assert_eq!(offset_of!(xen_hvm_evtchn_upcall_vector, vector), 4);
        assert_eq!(xen_hvm_pagetable_dying::SIZE, 16);
        assert_eq!(xen_hvm_get_time::SIZE, 8);
    }
}
