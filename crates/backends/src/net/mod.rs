//! The PV network backend (netback), `xen/include/public/io/netif.h`:
//! the host side of a vif.
//!
//! Here so far: [`tap`] (the `vif<domid>.<devid>` TAP), [`device`] (what
//! netback needs of a host device, and a mock), [`csum`] (completing the
//! checksums a guest leaves blank), [`mac`] (addresses), [`rate`]
//! (`rate=`), [`hotplug`] (bridge / route / NAT, or the user's scripts).

pub mod csum;
pub mod device;
pub mod hotplug;
pub mod mac;
pub mod rate;
pub mod tap;

/// The largest frame the host may hand over: a 64 KiB IP packet (TSO)
/// under an Ethernet header and two VLAN tags.
pub const MAX_HOST_FRAME: usize = 65535 + 14 + 8;
