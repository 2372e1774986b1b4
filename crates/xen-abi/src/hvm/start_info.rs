//! The PVH boot start-of-day structure,
//! `xen/include/public/arch-x86/hvm/start_info.h` (formerly
//! `hvm/start_info.h`): what the domain builder leaves in guest memory, with
//! its address in EBX, before jumping to `XEN_ELFNOTE_PHYS32_ENTRY`.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;

abi_struct! {
    /// `struct hvm_start_info` (version 1 adds memmap_paddr/memmap_entries).
    pub struct hvm_start_info {
        pub magic: u32,
        pub version: u32,
        pub flags: u32,
        pub nr_modules: u32,
        pub modlist_paddr: u64,
        pub cmdline_paddr: u64,
        pub rsdp_paddr: u64,
        pub memmap_paddr: u64,
        pub memmap_entries: u32,
        pub reserved: u32,
    }
}

abi_struct! {
    /// `struct hvm_modlist_entry`.
    pub struct hvm_modlist_entry {
        pub paddr: u64,
        pub size: u64,
        pub cmdline_paddr: u64,
        pub reserved: u64,
    }
}

abi_struct! {
    /// `struct hvm_memmap_table_entry`.
    pub struct hvm_memmap_table_entry {
        pub addr: u64,
        pub size: u64,
        pub type_: u32,
        pub reserved: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn sizes_and_offsets_match_header() {
        assert_eq!(hvm_start_info::SIZE, 56);
        assert_eq!(offset_of!(hvm_start_info, modlist_paddr), 16);
        assert_eq!(offset_of!(hvm_start_info, cmdline_paddr), 24);
        assert_eq!(offset_of!(hvm_start_info, rsdp_paddr), 32);
        assert_eq!(offset_of!(hvm_start_info, memmap_paddr), 40);
        assert_eq!(offset_of!(hvm_start_info, memmap_entries), 48);
        assert_eq!(hvm_modlist_entry::SIZE, 32);
        assert_eq!(hvm_memmap_table_entry::SIZE, 24);
        assert_eq!(offset_of!(hvm_memmap_table_entry, type_), 16);
    }
}
