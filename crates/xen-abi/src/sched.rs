//! Scheduler operations, `xen/include/public/sched.h`: `SCHEDOP_*` sub-ops of
//! `HYPERVISOR_sched_op(cmd, arg)`, their argument layouts (x86_64) and the
//! `SHUTDOWN_*` reasons.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const SCHEDOP_yield: u64 = 0;
pub const SCHEDOP_block: u64 = 1;
pub const SCHEDOP_shutdown: u64 = 2;
pub const SCHEDOP_poll: u64 = 3;
pub const SCHEDOP_remote_shutdown: u64 = 4;
pub const SCHEDOP_shutdown_code: u64 = 5;
pub const SCHEDOP_watchdog: u64 = 6;
pub const SCHEDOP_pin_override: u64 = 7;

pub const SHUTDOWN_poweroff: u32 = 0;
pub const SHUTDOWN_reboot: u32 = 1;
pub const SHUTDOWN_suspend: u32 = 2;
pub const SHUTDOWN_crash: u32 = 3;
pub const SHUTDOWN_watchdog: u32 = 4;
pub const SHUTDOWN_soft_reset: u32 = 5;
pub const SHUTDOWN_MAX: u32 = 5;

abi_struct! {
    /// `struct sched_shutdown`.
    pub struct sched_shutdown {
        pub reason: u32,
    }
}

abi_struct! {
    /// `struct sched_poll`: `ports` is a guest handle to `nr_ports` ports.
    pub struct sched_poll {
        pub ports: u64,
        pub nr_ports: u32,
        pub timeout: u64,
    }
}

abi_struct! {
    /// `struct sched_remote_shutdown`.
    pub struct sched_remote_shutdown {
        pub domain_id: u16,
        pub reason: u32,
    }
}

abi_struct! {
    /// `struct sched_watchdog`: id 0 allocates a watchdog, timeout 0 frees it.
    pub struct sched_watchdog {
        pub id: u32,
        pub timeout: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(sched_shutdown::SIZE, 4);
        assert_eq!(sched_poll::SIZE, 24);
        assert_eq!(offset_of!(sched_poll, nr_ports), 8);
        assert_eq!(offset_of!(sched_poll, timeout), 16);
        assert_eq!(sched_remote_shutdown::SIZE, 8);
        assert_eq!(offset_of!(sched_remote_shutdown, reason), 4);
        assert_eq!(sched_watchdog::SIZE, 8);
    }
}
