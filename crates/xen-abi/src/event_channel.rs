//! Event channel operations, `xen/include/public/event_channel.h`:
//! `HYPERVISOR_event_channel_op(cmd, arg)` sub-ops and their argument
//! structures (x86_64 layout), plus the 2-level ABI's port count.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const EVTCHNOP_bind_interdomain: u64 = 0;
pub const EVTCHNOP_bind_virq: u64 = 1;
pub const EVTCHNOP_bind_pirq: u64 = 2;
pub const EVTCHNOP_close: u64 = 3;
pub const EVTCHNOP_send: u64 = 4;
pub const EVTCHNOP_status: u64 = 5;
pub const EVTCHNOP_alloc_unbound: u64 = 6;
pub const EVTCHNOP_bind_ipi: u64 = 7;
pub const EVTCHNOP_bind_vcpu: u64 = 8;
pub const EVTCHNOP_unmask: u64 = 9;
pub const EVTCHNOP_reset: u64 = 10;
pub const EVTCHNOP_init_control: u64 = 11;
pub const EVTCHNOP_expand_array: u64 = 12;
pub const EVTCHNOP_set_priority: u64 = 13;

/// `EVTCHN_2L_NR_CHANNELS` for a 64-bit guest: `sizeof(xen_ulong_t)^2 * 64`.
pub const EVTCHN_2L_NR_CHANNELS: u32 = 8 * 8 * 64;

// `evtchn_status.status`.
pub const EVTCHNSTAT_closed: u32 = 0;
pub const EVTCHNSTAT_unbound: u32 = 1;
pub const EVTCHNSTAT_interdomain: u32 = 2;
pub const EVTCHNSTAT_pirq: u32 = 3;
pub const EVTCHNSTAT_virq: u32 = 4;
pub const EVTCHNSTAT_ipi: u32 = 5;

/// `BIND_PIRQ__WILL_SHARE` flag of `evtchn_bind_pirq`.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

abi_struct! {
    /// `struct evtchn_alloc_unbound`: IN dom, remote_dom; OUT port.
    pub struct evtchn_alloc_unbound {
        pub dom: u16,
        pub remote_dom: u16,
        pub port: u32,
    }
}

abi_struct! {
    /// `struct evtchn_bind_interdomain`: IN remote_dom, remote_port; OUT local_port.
    pub struct evtchn_bind_interdomain {
        pub remote_dom: u16,
        pub remote_port: u32,
        pub local_port: u32,
    }
}

abi_struct! {
    /// `struct evtchn_bind_virq`: IN virq, vcpu; OUT port.
    pub struct evtchn_bind_virq {
        pub virq: u32,
        pub vcpu: u32,
        pub port: u32,
    }
}

abi_struct! {
    /// `struct evtchn_bind_pirq`: IN pirq, flags; OUT port.
    pub struct evtchn_bind_pirq {
        pub pirq: u32,
        pub flags: u32,
        pub port: u32,
    }
}

abi_struct! {
    /// `struct evtchn_bind_ipi`: IN vcpu; OUT port.
    pub struct evtchn_bind_ipi {
        pub vcpu: u32,
        pub port: u32,
    }
}

abi_struct! {
    /// `struct evtchn_close`, also the layout of `evtchn_send` and
    /// `evtchn_unmask`: IN port.
    pub struct evtchn_port_arg {
        pub port: u32,
    }
}

/// `struct evtchn_close`.
pub type evtchn_close = evtchn_port_arg;
/// `struct evtchn_send`.
pub type evtchn_send = evtchn_port_arg;
/// `struct evtchn_unmask`.
pub type evtchn_unmask = evtchn_port_arg;

abi_struct! {
    /// `struct evtchn_status`: IN dom, port; OUT status, vcpu, u.
    ///
    /// The union `u` is spelled out: `u_dom` is `unbound.dom` or
    /// `interdomain.dom`; `u_word` (offset 20) is `interdomain.port`; for
    /// `pirq`/`virq` the value sits at offset 16, which is `u_dom` plus
    /// `u_pad` read together: use [`evtchn_status::set_u32`].
    pub struct evtchn_status {
        pub dom: u16,
        pub port: u32,
        pub status: u32,
        pub vcpu: u32,
        pub u_dom: u16,
        pub u_pad: u16,
        pub u_word: u32,
    }
}

impl evtchn_status {
    /// Store a 32-bit union member (`u.pirq` or `u.virq`) at offset 16.
    pub fn set_u32(&mut self, v: u32) {
        self.u_dom = v as u16;
        self.u_pad = (v >> 16) as u16;
    }
}

abi_struct! {
    /// `struct evtchn_bind_vcpu`: IN port, vcpu.
    pub struct evtchn_bind_vcpu {
        pub port: u32,
        pub vcpu: u32,
    }
}

abi_struct! {
    /// `struct evtchn_reset`: IN dom.
    pub struct evtchn_reset {
        pub dom: u16,
    }
}

abi_struct! {
    /// `struct evtchn_init_control` (FIFO ABI).
    pub struct evtchn_init_control {
        pub control_gfn: u64,
        pub offset: u32,
        pub vcpu: u32,
        pub link_bits: u8,
        pub _pad: [u8; 7],
    }
}

abi_struct! {
    /// `struct evtchn_expand_array` (FIFO ABI).
    pub struct evtchn_expand_array {
        pub array_gfn: u64,
    }
}

abi_struct! {
    /// `struct evtchn_set_priority` (FIFO ABI).
    pub struct evtchn_set_priority {
        pub port: u32,
        pub priority: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(evtchn_alloc_unbound::SIZE, 8);
        assert_eq!(offset_of!(evtchn_alloc_unbound, remote_dom), 2);
        assert_eq!(offset_of!(evtchn_alloc_unbound, port), 4);
        assert_eq!(evtchn_bind_interdomain::SIZE, 12);
        assert_eq!(offset_of!(evtchn_bind_interdomain, remote_port), 4);
        assert_eq!(offset_of!(evtchn_bind_interdomain, local_port), 8);
        assert_eq!(evtchn_bind_virq::SIZE, 12);
        assert_eq!(offset_of!(evtchn_bind_virq, port), 8);
        assert_eq!(evtchn_bind_pirq::SIZE, 12);
        assert_eq!(evtchn_bind_ipi::SIZE, 8);
        assert_eq!(offset_of!(evtchn_bind_ipi, port), 4);
        assert_eq!(evtchn_port_arg::SIZE, 4);
        assert_eq!(evtchn_status::SIZE, 24);
        assert_eq!(offset_of!(evtchn_status, port), 4);
        assert_eq!(offset_of!(evtchn_status, status), 8);
        assert_eq!(offset_of!(evtchn_status, vcpu), 12);
        assert_eq!(offset_of!(evtchn_status, u_dom), 16);
        assert_eq!(offset_of!(evtchn_status, u_word), 20);
        assert_eq!(evtchn_bind_vcpu::SIZE, 8);
        assert_eq!(evtchn_reset::SIZE, 2);
        assert_eq!(evtchn_init_control::SIZE, 24);
        assert_eq!(offset_of!(evtchn_init_control, link_bits), 16);
        assert_eq!(evtchn_expand_array::SIZE, 8);
        assert_eq!(evtchn_set_priority::SIZE, 8);
        assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
    }

    #[test]
    fn status_u32_union_member() {
        let mut s = evtchn_status {
            dom: 0,
            port: 3,
            status: EVTCHNSTAT_virq,
            vcpu: 0,
            u_dom: 0,
            u_pad: 0,
            u_word: 0,
        };
        s.set_u32(0x0001_0002);
        let b = s.to_bytes();
        assert_eq!(&b[16..20], &0x0001_0002u32.to_le_bytes());
    }
}
