//! Memory operations, `xen/include/public/memory.h`: `XENMEM_*` sub-ops of
//! `HYPERVISOR_memory_op(cmd, arg)`, `XENMAPSPACE_*` for add_to_physmap,
//! the argument layouts (x86_64), and the e820-style entries that
//! `XENMEM_memory_map` returns.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const XENMEM_increase_reservation: u64 = 0;
pub const XENMEM_decrease_reservation: u64 = 1;
pub const XENMEM_maximum_ram_page: u64 = 2;
pub const XENMEM_current_reservation: u64 = 3;
pub const XENMEM_maximum_reservation: u64 = 4;
pub const XENMEM_machphys_mfn_list: u64 = 5;
pub const XENMEM_populate_physmap: u64 = 6;
pub const XENMEM_add_to_physmap: u64 = 7;
pub const XENMEM_memory_map: u64 = 9;
pub const XENMEM_machine_memory_map: u64 = 10;
pub const XENMEM_exchange: u64 = 11;
pub const XENMEM_machphys_mapping: u64 = 12;
pub const XENMEM_set_memory_map: u64 = 13;
pub const XENMEM_maximum_gpfn: u64 = 14;
pub const XENMEM_remove_from_physmap: u64 = 15;
pub const XENMEM_set_pod_target: u64 = 16;
pub const XENMEM_get_pod_target: u64 = 17;
pub const XENMEM_get_sharing_freed_pages: u64 = 18;
pub const XENMEM_get_sharing_shared_pages: u64 = 19;
pub const XENMEM_paging_op: u64 = 20;
pub const XENMEM_access_op: u64 = 21;
pub const XENMEM_sharing_op: u64 = 22;
pub const XENMEM_add_to_physmap_batch: u64 = 23;
pub const XENMEM_claim_pages: u64 = 24;
pub const XENMEM_machphys_compat_mfn_list: u64 = 25;
pub const XENMEM_get_vnumainfo: u64 = 26;
pub const XENMEM_reserved_device_memory_map: u64 = 27;
pub const XENMEM_acquire_resource: u64 = 28;

/// The sub-op is the low 6 bits of `cmd`; the bits above carry a
/// continuation's start extent (not public ABI: Xen's
/// `xen/include/xen/hypercall.h`, which guests rely on by passing 0 there).
pub const MEMOP_CMD_MASK: u64 = (1 << 6) - 1;
pub const MEMOP_EXTENT_SHIFT: u32 = 6;

pub const XENMAPSPACE_shared_info: u32 = 0;
pub const XENMAPSPACE_grant_table: u32 = 1;
pub const XENMAPSPACE_gmfn: u32 = 2;
pub const XENMAPSPACE_gmfn_range: u32 = 3;
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
pub const XENMAPSPACE_dev_mmio: u32 = 5;
/// Set in `idx` of a `XENMAPSPACE_grant_table` request for a v2 status frame.
pub const XENMAPIDX_grant_table_status: u64 = 0x8000_0000;

abi_struct! {
    /// `struct xen_memory_reservation`.
    pub struct xen_memory_reservation {
        pub extent_start: u64,
        pub nr_extents: u64,
        pub extent_order: u32,
        pub mem_flags: u32,
        pub address_bits: u32,
        pub domid: u16,
    }
}

abi_struct! {
    /// `struct xen_add_to_physmap`.
    pub struct xen_add_to_physmap {
        pub domid: u16,
        pub size: u16,
        pub space: u32,
        pub idx: u64,
        pub gpfn: u64,
    }
}

abi_struct! {
    /// `struct xen_add_to_physmap_batch` (`u` is `foreign_domid` or `res0`).
    pub struct xen_add_to_physmap_batch {
        pub domid: u16,
        pub space: u16,
        pub size: u16,
        pub u: u16,
        pub idxs: u64,
        pub gpfns: u64,
        pub errs: u64,
    }
}

abi_struct! {
    /// `struct xen_remove_from_physmap`.
    pub struct xen_remove_from_physmap {
        pub domid: u16,
        pub gpfn: u64,
    }
}

abi_struct! {
    /// `struct xen_memory_domain` (argument of the reservation queries).
    pub struct xen_memory_domain {
        pub domid: u16,
    }
}

abi_struct! {
    /// `struct xen_memory_map`: IN nr_entries = room in `buffer` (entries);
    /// OUT nr_entries = entries written. `buffer` holds [`E820_ENTRY_SIZE`]-byte
    /// entries.
    pub struct xen_memory_map {
        pub nr_entries: u32,
        pub buffer: u64,
    }
}

abi_struct! {
    /// `struct xen_foreign_memory_map`, with its `xen_memory_map` flattened.
    pub struct xen_foreign_memory_map {
        pub domid: u16,
        pub _pad: [u16; 3],
        pub nr_entries: u32,
        pub buffer: u64,
    }
}

/// An entry of the memory map handed out by `XENMEM_memory_map`: the
/// packed e820 entry (`u64 addr, u64 size, u32 type`) that Xen and Linux
/// use, 20 bytes with no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Bytes of one packed e820 entry.
pub const E820_ENTRY_SIZE: usize = 20;
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;
pub const E820_NVS: u32 = 4;
pub const E820_UNUSABLE: u32 = 5;

impl E820Entry {
    /// The packed little-endian encoding.
    pub fn to_bytes(&self) -> [u8; E820_ENTRY_SIZE] {
        let mut b = [0u8; E820_ENTRY_SIZE];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.to_le_bytes());
        b
    }

    /// Decode a packed entry; `None` if `b` is shorter than 20 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b = b.get(..E820_ENTRY_SIZE)?;
        Some(Self {
            addr: u64::from_le_bytes(b[0..8].try_into().ok()?),
            size: u64::from_le_bytes(b[8..16].try_into().ok()?),
            kind: u32::from_le_bytes(b[16..20].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(xen_memory_reservation::SIZE, 32);
        assert_eq!(offset_of!(xen_memory_reservation, extent_order), 16);
        assert_eq!(offset_of!(xen_memory_reservation, domid), 28);
        assert_eq!(xen_add_to_physmap::SIZE, 24);
        assert_eq!(offset_of!(xen_add_to_physmap, space), 4);
        assert_eq!(offset_of!(xen_add_to_physmap, idx), 8);
        assert_eq!(offset_of!(xen_add_to_physmap, gpfn), 16);
        assert_eq!(xen_add_to_physmap_batch::SIZE, 32);
        assert_eq!(offset_of!(xen_add_to_physmap_batch, idxs), 8);
        assert_eq!(xen_remove_from_physmap::SIZE, 16);
        assert_eq!(xen_memory_domain::SIZE, 2);
        assert_eq!(xen_memory_map::SIZE, 16);
        assert_eq!(offset_of!(xen_memory_map, buffer), 8);
        assert_eq!(xen_foreign_memory_map::SIZE, 24);
        assert_eq!(offset_of!(xen_foreign_memory_map, nr_entries), 8);
    }

    #[test]
    fn e820_roundtrip() {
        let e = E820Entry {
            addr: 0x10_0000,
            size: 0xff0_0000,
            kind: E820_RAM,
        };
        let b = e.to_bytes();
        assert_eq!(&b[16..20], &[1, 0, 0, 0]);
        assert_eq!(E820Entry::from_bytes(&b), Some(e));
        assert_eq!(E820Entry::from_bytes(&b[..19]), None);
    }
}
