//! Xen's public guest ABI, as Rust types and constants.
//!
//! Everything here is defined by Xen's public headers (`xen/include/public/` in
//! xen-project/xen); each module names the header it follows and keeps Xen's C
//! names for constants (`XS_READ`, `EVTCHNOP_send`, ...). This crate holds no
//! behaviour: no KVM, no I/O, no policy. It is shared by the hypervisor, the
//! XenStore daemon, the backends and the toolstack.

pub mod arch_x86;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hvm;
pub mod io;
pub mod layout;
pub mod memory;
pub mod sched;
pub mod vcpu;
pub mod version;
pub mod xen;
pub mod xs_wire;

use std::fmt;

/// A Xen domain id (`domid_t`, `xen/include/public/xen.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DomId(pub u16);

impl DomId {
    /// Domain 0: on rxen, the Linux host itself.
    pub const DOM0: DomId = DomId(0);
    /// `DOMID_FIRST_RESERVED`: ids at or above this are special, never a guest.
    pub const FIRST_RESERVED: DomId = DomId(0x7ff0);
    /// `DOMID_SELF`: "the calling domain" in hypercall arguments.
    pub const SELF: DomId = DomId(0x7ff0);
    /// `DOMID_INVALID`.
    pub const INVALID: DomId = DomId(0x7ff4);

    /// Whether this id can name a real domain (dom0 or a guest).
    pub fn is_valid_domain(self) -> bool {
        self < Self::FIRST_RESERVED
    }
}

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event channel port (`evtchn_port_t`, `xen/include/public/event_channel.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EvtchnPort(pub u32);

/// A grant reference (`grant_ref_t`, `xen/include/public/grant_table.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GrantRef(pub u32);

/// A guest frame number: a guest-physical address shifted right by [`PAGE_SHIFT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Gfn(pub u64);

/// `XEN_PAGE_SHIFT`: Xen's ABI page size is 4 KiB on x86.
pub const PAGE_SHIFT: u32 = 12;
/// `XEN_PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

impl Gfn {
    /// The guest-physical address of the first byte of this frame, or `None`
    /// if the frame number is too large to have one.
    pub fn addr(self) -> Option<u64> {
        self.0.checked_mul(PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_domids_are_not_domains() {
        assert!(DomId(0).is_valid_domain());
        assert!(DomId(0x7fef).is_valid_domain());
        assert!(!DomId::SELF.is_valid_domain());
        assert!(!DomId::INVALID.is_valid_domain());
    }

    #[test]
    fn gfn_addr_overflow_is_none() {
        assert_eq!(Gfn(0x10).addr(), Some(0x10000));
        assert_eq!(Gfn(u64::MAX).addr(), None);
    }
}
