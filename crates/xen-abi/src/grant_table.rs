//! Grant tables, `xen/include/public/grant_table.h`: the v1 grant entry a
//! guest writes into its grant frames, `GTF_*` flags, `GNTTABOP_*` sub-ops of
//! `HYPERVISOR_grant_table_op(cmd, args, count)` and their argument layouts
//! (x86_64), and `GNTST_*` status codes.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

abi_struct! {
    /// `struct grant_entry_v1`: 8 bytes, `GRANT_ENTRIES_PER_FRAME_V1` per page.
    pub struct grant_entry_v1 {
        pub flags: u16,
        pub domid: u16,
        pub frame: u32,
    }
}

/// v1 grant entries in one 4 KiB grant frame.
pub const GRANT_ENTRIES_PER_FRAME_V1: u32 = 4096 / 8;

pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

pub const GTF_invalid: u16 = 0;
pub const GTF_permit_access: u16 = 1;
pub const GTF_accept_transfer: u16 = 2;
pub const GTF_transitive: u16 = 3;
pub const GTF_type_mask: u16 = 3;
pub const _GTF_readonly: u16 = 2;
pub const GTF_readonly: u16 = 1 << _GTF_readonly;
pub const _GTF_reading: u16 = 3;
pub const GTF_reading: u16 = 1 << _GTF_reading;
pub const _GTF_writing: u16 = 4;
pub const GTF_writing: u16 = 1 << _GTF_writing;
pub const GTF_PWT: u16 = 1 << 5;
pub const GTF_PCD: u16 = 1 << 6;
pub const GTF_PAT: u16 = 1 << 7;
pub const GTF_sub_page: u16 = 1 << 8;
pub const GTF_transfer_committed: u16 = 1 << 2;
pub const GTF_transfer_completed: u16 = 1 << 3;

pub const GNTTABOP_map_grant_ref: u64 = 0;
pub const GNTTABOP_unmap_grant_ref: u64 = 1;
pub const GNTTABOP_setup_table: u64 = 2;
pub const GNTTABOP_dump_table: u64 = 3;
pub const GNTTABOP_transfer: u64 = 4;
pub const GNTTABOP_copy: u64 = 5;
pub const GNTTABOP_query_size: u64 = 6;
pub const GNTTABOP_unmap_and_replace: u64 = 7;
pub const GNTTABOP_set_version: u64 = 8;
pub const GNTTABOP_get_status_frames: u64 = 9;
pub const GNTTABOP_get_version: u64 = 10;
pub const GNTTABOP_swap_grant_ref: u64 = 11;
pub const GNTTABOP_cache_flush: u64 = 12;

pub const GNTMAP_device_map: u32 = 1 << 0;
pub const GNTMAP_host_map: u32 = 1 << 1;
pub const GNTMAP_readonly: u32 = 1 << 2;
pub const GNTMAP_application_map: u32 = 1 << 3;
pub const GNTMAP_contains_pte: u32 = 1 << 4;

pub const GNTCOPY_source_gref: u16 = 1 << 0;
pub const GNTCOPY_dest_gref: u16 = 1 << 1;

pub const GNTST_okay: i16 = 0;
pub const GNTST_general_error: i16 = -1;
pub const GNTST_bad_domain: i16 = -2;
pub const GNTST_bad_gntref: i16 = -3;
pub const GNTST_bad_handle: i16 = -4;
pub const GNTST_bad_virt_addr: i16 = -5;
pub const GNTST_bad_dev_addr: i16 = -6;
pub const GNTST_no_device_space: i16 = -7;
pub const GNTST_permission_denied: i16 = -8;
pub const GNTST_bad_page: i16 = -9;
pub const GNTST_bad_copy_arg: i16 = -10;
pub const GNTST_address_too_big: i16 = -11;
pub const GNTST_eagain: i16 = -12;
pub const GNTST_no_space: i16 = -13;

abi_struct! {
    /// `struct gnttab_map_grant_ref`.
    pub struct gnttab_map_grant_ref {
        pub host_addr: u64,
        pub flags: u32,
        pub ref_: u32,
        pub dom: u16,
        pub status: i16,
        pub handle: u32,
        pub dev_bus_addr: u64,
    }
}

abi_struct! {
    /// `struct gnttab_unmap_grant_ref`.
    pub struct gnttab_unmap_grant_ref {
        pub host_addr: u64,
        pub dev_bus_addr: u64,
        pub handle: u32,
        pub status: i16,
    }
}

abi_struct! {
    /// `struct gnttab_setup_table`: IN dom, nr_frames, frame_list (guest
    /// handle to an array of `nr_frames` `xen_pfn_t`); OUT status, and the
    /// frame numbers written through `frame_list`.
    pub struct gnttab_setup_table {
        pub dom: u16,
        pub nr_frames: u32,
        pub status: i16,
        pub frame_list: u64,
    }
}

abi_struct! {
    /// `struct gnttab_copy_ptr`: `u` is `ref` (low 32 bits) or `gmfn`.
    pub struct gnttab_copy_ptr {
        pub u: u64,
        pub domid: u16,
        pub offset: u16,
    }
}

abi_struct! {
    /// `struct gnttab_copy`, with the two `gnttab_copy_ptr` flattened (the
    /// `_pad` fields are their tail padding).
    pub struct gnttab_copy {
        pub source_u: u64,
        pub source_domid: u16,
        pub source_offset: u16,
        pub _source_pad: u32,
        pub dest_u: u64,
        pub dest_domid: u16,
        pub dest_offset: u16,
        pub _dest_pad: u32,
        pub len: u16,
        pub flags: u16,
        pub status: i16,
    }
}

abi_struct! {
    /// `struct gnttab_query_size`: IN dom; OUT nr_frames, max_nr_frames, status.
    pub struct gnttab_query_size {
        pub dom: u16,
        pub nr_frames: u32,
        pub max_nr_frames: u32,
        pub status: i16,
    }
}

abi_struct! {
    /// `struct gnttab_set_version`: IN/OUT version.
    pub struct gnttab_set_version {
        pub version: u32,
    }
}

abi_struct! {
    /// `struct gnttab_get_status_frames` (v2 only).
    pub struct gnttab_get_status_frames {
        pub nr_frames: u32,
        pub dom: u16,
        pub status: i16,
        pub frame_list: u64,
    }
}

abi_struct! {
    /// `struct gnttab_get_version`: IN dom; OUT version.
    pub struct gnttab_get_version {
        pub dom: u16,
        pub pad: u16,
        pub version: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(grant_entry_v1::SIZE, 8);
        assert_eq!(offset_of!(grant_entry_v1, frame), 4);
        assert_eq!(gnttab_map_grant_ref::SIZE, 32);
        assert_eq!(offset_of!(gnttab_map_grant_ref, ref_), 12);
        assert_eq!(offset_of!(gnttab_map_grant_ref, status), 18);
        assert_eq!(offset_of!(gnttab_map_grant_ref, dev_bus_addr), 24);
        assert_eq!(gnttab_unmap_grant_ref::SIZE, 24);
        assert_eq!(gnttab_setup_table::SIZE, 24);
        assert_eq!(offset_of!(gnttab_setup_table, nr_frames), 4);
        assert_eq!(offset_of!(gnttab_setup_table, status), 8);
        assert_eq!(offset_of!(gnttab_setup_table, frame_list), 16);
        assert_eq!(gnttab_copy_ptr::SIZE, 16);
        assert_eq!(gnttab_copy::SIZE, 40);
        assert_eq!(offset_of!(gnttab_copy, dest_u), 16);
        assert_eq!(offset_of!(gnttab_copy, len), 32);
        assert_eq!(offset_of!(gnttab_copy, status), 36);
        assert_eq!(gnttab_query_size::SIZE, 16);
        assert_eq!(offset_of!(gnttab_query_size, max_nr_frames), 8);
        assert_eq!(offset_of!(gnttab_query_size, status), 12);
        assert_eq!(gnttab_set_version::SIZE, 4);
        assert_eq!(gnttab_get_status_frames::SIZE, 16);
        assert_eq!(gnttab_get_version::SIZE, 8);
        assert_eq!(GRANT_ENTRIES_PER_FRAME_V1, 512);
    }
}
