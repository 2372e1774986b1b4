//! vCPU operations, `xen/include/public/vcpu.h`: `VCPUOP_*` sub-ops of
//! `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)` and their argument layouts
//! (x86_64), and the runstate area layout.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const VCPUOP_initialise: u64 = 0;
pub const VCPUOP_up: u64 = 1;
pub const VCPUOP_down: u64 = 2;
pub const VCPUOP_is_up: u64 = 3;
pub const VCPUOP_get_runstate_info: u64 = 4;
pub const VCPUOP_register_runstate_memory_area: u64 = 5;
pub const VCPUOP_set_periodic_timer: u64 = 6;
pub const VCPUOP_stop_periodic_timer: u64 = 7;
pub const VCPUOP_set_singleshot_timer: u64 = 8;
pub const VCPUOP_stop_singleshot_timer: u64 = 9;
pub const VCPUOP_register_vcpu_info: u64 = 10;
pub const VCPUOP_send_nmi: u64 = 11;
pub const VCPUOP_get_physid: u64 = 12;
pub const VCPUOP_register_vcpu_time_memory_area: u64 = 13;
pub const VCPUOP_register_runstate_phys_area: u64 = 14;
pub const VCPUOP_register_vcpu_time_phys_area: u64 = 15;

pub const RUNSTATE_running: i32 = 0;
pub const RUNSTATE_runnable: i32 = 1;
pub const RUNSTATE_blocked: i32 = 2;
pub const RUNSTATE_offline: i32 = 3;
/// Set in `state_entry_time` while the runstate area is being updated.
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

pub const VCPU_SSHOTTMR_future: u32 = 1 << 0;

abi_struct! {
    /// `struct vcpu_runstate_info`.
    pub struct vcpu_runstate_info {
        pub state: i32,
        pub state_entry_time: u64,
        pub time: [u64; 4],
    }
}

abi_struct! {
    /// `struct vcpu_register_runstate_memory_area` (also the layout of
    /// `vcpu_register_time_memory_area`): one 64-bit address.
    pub struct vcpu_register_runstate_memory_area {
        pub addr: u64,
    }
}

abi_struct! {
    /// `struct vcpu_set_periodic_timer`.
    pub struct vcpu_set_periodic_timer {
        pub period_ns: u64,
    }
}

abi_struct! {
    /// `struct vcpu_set_singleshot_timer`.
    pub struct vcpu_set_singleshot_timer {
        pub timeout_abs_ns: u64,
        pub flags: u32,
    }
}

abi_struct! {
    /// `struct vcpu_register_vcpu_info`: `vcpu_info` at `mfn`·4096 + `offset`.
    pub struct vcpu_register_vcpu_info {
        pub mfn: u64,
        pub offset: u32,
        pub rsvd: u32,
    }
}

abi_struct! {
    /// `struct vcpu_get_physid`.
    pub struct vcpu_get_physid {
        pub phys_id: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(vcpu_runstate_info::SIZE, 48);
        assert_eq!(offset_of!(vcpu_runstate_info, state_entry_time), 8);
        assert_eq!(offset_of!(vcpu_runstate_info, time), 16);
        assert_eq!(vcpu_register_runstate_memory_area::SIZE, 8);
        assert_eq!(vcpu_set_periodic_timer::SIZE, 8);
        assert_eq!(vcpu_set_singleshot_timer::SIZE, 16);
        assert_eq!(vcpu_register_vcpu_info::SIZE, 16);
        assert_eq!(offset_of!(vcpu_register_vcpu_info, offset), 8);
        assert_eq!(vcpu_get_physid::SIZE, 8);
    }
}
