//! Version queries, `xen/include/public/version.h`: `XENVER_*` sub-ops of
//! `HYPERVISOR_xen_version(cmd, arg)` and their buffer sizes / layouts.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;

/// The Xen version rxen presents to its guests (`XENVER_version`) and to
/// admins (`xl info`): 4.17, the release whose interface rxen implements.
/// Not part of Xen's headers; here so that every crate agrees on it.
pub const RXEN_XEN_MAJOR: u32 = 4;
/// See [`RXEN_XEN_MAJOR`].
pub const RXEN_XEN_MINOR: u32 = 17;
/// rxen's `XENVER_extraversion`.
pub const RXEN_XEN_EXTRA: &str = ".0-rxen";
/// rxen's `XENVER_version` answer: `major << 16 | minor`.
pub const RXEN_XEN_VERSION: u32 = (RXEN_XEN_MAJOR << 16) | RXEN_XEN_MINOR;

/// Returns `major << 16 | minor` directly in RAX; no argument.
pub const XENVER_version: u64 = 0;
pub const XENVER_extraversion: u64 = 1;
pub const XENVER_compile_info: u64 = 2;
pub const XENVER_capabilities: u64 = 3;
pub const XENVER_changeset: u64 = 4;
pub const XENVER_platform_parameters: u64 = 5;
pub const XENVER_get_features: u64 = 6;
pub const XENVER_pagesize: u64 = 7;
pub const XENVER_guest_handle: u64 = 8;
pub const XENVER_commandline: u64 = 9;
pub const XENVER_build_id: u64 = 10;
pub const XENVER_extraversion2: u64 = 11;
pub const XENVER_capabilities2: u64 = 12;
pub const XENVER_changeset2: u64 = 13;
pub const XENVER_commandline2: u64 = 14;

/// `sizeof(xen_extraversion_t)`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `sizeof(struct xen_compile_info)`: compiler[64], compile_by[16],
/// compile_domain[32], compile_date[32].
pub const XEN_COMPILE_INFO_LEN: usize = 64 + 16 + 32 + 32;
/// `sizeof(xen_capabilities_info_t)`.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `sizeof(xen_changeset_info_t)`.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// `sizeof(xen_domain_handle_t)` (XENVER_guest_handle).
pub const XEN_DOMAIN_HANDLE_LEN: usize = 16;
/// `sizeof(xen_commandline_t)`.
pub const XEN_COMMANDLINE_LEN: usize = 1024;

abi_struct! {
    /// `struct xen_feature_info`: IN submap_idx; OUT submap.
    pub struct xen_feature_info {
        pub submap_idx: u32,
        pub submap: u32,
    }
}

abi_struct! {
    /// `struct xen_platform_parameters`.
    pub struct xen_platform_parameters {
        pub virt_start: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;

    #[test]
    fn sizes_match_header() {
        assert_eq!(xen_feature_info::SIZE, 8);
        assert_eq!(xen_platform_parameters::SIZE, 8);
        assert_eq!(XEN_COMPILE_INFO_LEN, 144);
    }
}
