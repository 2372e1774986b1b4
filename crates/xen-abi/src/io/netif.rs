//! The PV network rings, `xen/include/public/io/netif.h`: transmit
//! (guest → backend) and receive (backend → guest) requests and responses,
//! the extra-info slots that carry GSO metadata, their flags and status
//! codes. Both rings are `io/ring.h` shared rings of one page each; a TX
//! slot is 12 bytes (256 entries), an RX slot 8 bytes (256 entries).
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;
use crate::io::ring::{SRING_OFF_ring, const_ring_size};

/// Slots a backend must accept for one packet (`XEN_NETIF_NR_SLOTS_MIN`);
/// Linux's netback calls it `XEN_NETBK_LEGACY_SLOTS_MAX`.
pub const XEN_NETIF_NR_SLOTS_MIN: u32 = 18;

/// The largest packet a TX request may announce.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;

/// Protocol checksum field is blank (the backend completes it).
pub const NETTXF_csum_blank: u16 = 1 << 0;
/// The guest has validated the protocol checksum.
pub const NETTXF_data_validated: u16 = 1 << 1;
/// The packet continues in the next request.
pub const NETTXF_more_data: u16 = 1 << 2;
/// Extra-info slots follow this request.
pub const NETTXF_extra_info: u16 = 1 << 3;

/// Received data validated against the protocol checksum.
pub const NETRXF_data_validated: u16 = 1 << 0;
/// Received packet's protocol checksum field is blank.
pub const NETRXF_csum_blank: u16 = 1 << 1;
/// The packet continues in the next response.
pub const NETRXF_more_data: u16 = 1 << 2;
/// Extra-info slots follow this response.
pub const NETRXF_extra_info: u16 = 1 << 3;
/// Deprecated GSO prefix (never sent by rxen).
pub const NETRXF_gso_prefix: u16 = 1 << 4;

pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;

/// Another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;

pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

pub const NETIF_RSP_DROPPED: i16 = -2;
pub const NETIF_RSP_ERROR: i16 = -1;
pub const NETIF_RSP_OKAY: i16 = 0;
/// No response: the slot held an extra-info descriptor.
pub const NETIF_RSP_NULL: i16 = 1;

abi_struct! {
    /// `struct netif_tx_request`.
    pub struct netif_tx_request {
        pub gref: u32,
        pub offset: u16,
        pub flags: u16,
        pub id: u16,
        /// The whole packet's size in the first request, the fragment's in
        /// the others.
        pub size: u16,
    }
}

abi_struct! {
    /// `struct netif_tx_response`.
    pub struct netif_tx_response {
        pub id: u16,
        pub status: i16,
    }
}

abi_struct! {
    /// `struct netif_rx_request`.
    pub struct netif_rx_request {
        pub id: u16,
        pub pad: u16,
        pub gref: u32,
    }
}

abi_struct! {
    /// `struct netif_rx_response`.
    pub struct netif_rx_response {
        pub id: u16,
        pub offset: u16,
        pub flags: u16,
        /// Bytes in this slot, or a negative `NETIF_RSP_*`.
        pub status: i16,
    }
}

abi_struct! {
    /// `struct netif_extra_info` (8 bytes; in a TX slot, 4 bytes of padding
    /// follow). `u` is the type-specific union, read through the accessors.
    pub struct netif_extra_info {
        pub type_: u8,
        pub flags: u8,
        pub u: [u8; 6],
    }
}

impl netif_extra_info {
    /// A GSO descriptor (`u.gso`): segment size, `XEN_NETIF_GSO_TYPE_*`,
    /// features.
    pub fn gso(size: u16, gso_type: u8, features: u16, flags: u8) -> Self {
        let s = size.to_le_bytes();
        let f = features.to_le_bytes();
        Self {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            flags,
            u: [s[0], s[1], gso_type, 0, f[0], f[1]],
        }
    }
    /// `u.gso.size`.
    pub fn gso_size(&self) -> u16 {
        u16::from_le_bytes([self.u[0], self.u[1]])
    }
    /// `u.gso.type`.
    pub fn gso_type(&self) -> u8 {
        self.u[2]
    }
    /// `u.gso.features`.
    pub fn gso_features(&self) -> u16 {
        u16::from_le_bytes([self.u[4], self.u[5]])
    }
}

/// Bytes of one TX ring slot (the larger of request and response).
pub const NETIF_TX_SLOT_SIZE: usize = 12;
/// Bytes of one RX ring slot.
pub const NETIF_RX_SLOT_SIZE: usize = 8;
/// Entries of a one-page TX ring (`NET_TX_RING_SIZE`).
pub const NET_TX_RING_SIZE: u32 = const_ring_size(4096, NETIF_TX_SLOT_SIZE);
/// Entries of a one-page RX ring (`NET_RX_RING_SIZE`).
pub const NET_RX_RING_SIZE: u32 = const_ring_size(4096, NETIF_RX_SLOT_SIZE);

/// Byte offset in a TX ring page of slot `idx` (masked).
pub const fn netif_tx_slot_offset(idx: u32) -> usize {
    SRING_OFF_ring + (idx & (NET_TX_RING_SIZE - 1)) as usize * NETIF_TX_SLOT_SIZE
}

/// Byte offset in an RX ring page of slot `idx` (masked).
pub const fn netif_rx_slot_offset(idx: u32) -> usize {
    SRING_OFF_ring + (idx & (NET_RX_RING_SIZE - 1)) as usize * NETIF_RX_SLOT_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout() {
        assert_eq!(size_of::<netif_tx_request>(), 12);
        assert_eq!(offset_of!(netif_tx_request, offset), 4);
        assert_eq!(offset_of!(netif_tx_request, flags), 6);
        assert_eq!(offset_of!(netif_tx_request, id), 8);
        assert_eq!(offset_of!(netif_tx_request, size), 10);
        assert_eq!(size_of::<netif_tx_response>(), 4);
        assert_eq!(size_of::<netif_rx_request>(), 8);
        assert_eq!(offset_of!(netif_rx_request, gref), 4);
        assert_eq!(size_of::<netif_rx_response>(), 8);
        assert_eq!(offset_of!(netif_rx_response, status), 6);
        assert_eq!(size_of::<netif_extra_info>(), 8);
        assert_eq!(NET_TX_RING_SIZE, 256);
        assert_eq!(NET_RX_RING_SIZE, 256);
        assert_eq!(netif_tx_slot_offset(257), 64 + 12);
        assert_eq!(netif_rx_slot_offset(255), 64 + 255 * 8);
        assert!(netif_tx_slot_offset(255) + NETIF_TX_SLOT_SIZE <= 4096);
    }

    #[test]
    fn gso_extra_round_trips() {
        let e = netif_extra_info::gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0);
        let b = e.to_bytes();
        assert_eq!(b, [1, 0, 0xa8, 0x05, 1, 0, 0, 0]);
        let back = netif_extra_info::read_from(&b).unwrap();
        assert_eq!(back.gso_size(), 1448);
        assert_eq!(back.gso_type(), XEN_NETIF_GSO_TYPE_TCPV4);
        assert_eq!(back.gso_features(), 0);
    }
}
