//! The PV block interface, `xen/include/public/io/blkif.h` (x86_64 layout):
//! the request and response entries of the blkif shared ring, operation and
//! status codes, the `VDISK_*` info bits a backend publishes, and the limits
//! on segments. A ring entry is a union of a request and a response, so its
//! size is that of the largest request, `struct blkif_request`.
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::abi_struct;
use crate::io::ring::const_ring_size;

pub const BLKIF_OP_READ: u8 = 0;
pub const BLKIF_OP_WRITE: u8 = 1;
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
pub const BLKIF_OP_RESERVED_1: u8 = 4;
pub const BLKIF_OP_DISCARD: u8 = 5;
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// Segments a direct request carries.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// Indirect pages an indirect request may name.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// `blkif_request_segment`s in one indirect page.
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize = 4096 / 8;

/// `flag` of a discard request: the data must be made unrecoverable.
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
pub const BLKIF_RSP_ERROR: i16 = -1;
pub const BLKIF_RSP_OKAY: i16 = 0;

/// Bits of the backend's `info` node.
pub const VDISK_CDROM: u32 = 0x1;
pub const VDISK_REMOVABLE: u32 = 0x2;
pub const VDISK_READONLY: u32 = 0x4;

/// The unit of `sector_number`, `first_sect`/`last_sect` and `nr_sectors`.
pub const BLKIF_SECTOR_SIZE: u64 = 512;
/// Sectors in a 4 KiB page: `first_sect`/`last_sect` are below this.
pub const BLKIF_SECTORS_PER_PAGE: u8 = 8;

abi_struct! {
    /// `struct blkif_request_segment`: one page of a request's buffer.
    pub struct blkif_request_segment {
        pub gref: u32,
        pub first_sect: u8,
        pub last_sect: u8,
    }
}

abi_struct! {
    /// `struct blkif_request`: read, write, barrier and flush requests.
    /// `seg` holds [`BLKIF_MAX_SEGMENTS_PER_REQUEST`] encoded
    /// [`blkif_request_segment`]s.
    pub struct blkif_request {
        pub operation: u8,
        pub nr_segments: u8,
        pub handle: u16,
        pub id: u64,
        pub sector_number: u64,
        pub seg: [[u8; 8]; BLKIF_MAX_SEGMENTS_PER_REQUEST],
    }
}

abi_struct! {
    /// `struct blkif_request_discard`.
    pub struct blkif_request_discard {
        pub operation: u8,
        pub flag: u8,
        pub handle: u16,
        pub id: u64,
        pub sector_number: u64,
        pub nr_sectors: u64,
    }
}

abi_struct! {
    /// `struct blkif_request_indirect` (x86_64: no tail `pad`).
    pub struct blkif_request_indirect {
        pub operation: u8,
        pub indirect_op: u8,
        pub nr_segments: u16,
        pub id: u64,
        pub sector_number: u64,
        pub handle: u16,
        pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    }
}

abi_struct! {
    /// `struct blkif_response`.
    pub struct blkif_response {
        pub id: u64,
        pub operation: u8,
        pub status: i16,
    }
}

/// Bytes of one ring entry (the request/response union).
pub const BLKIF_RING_ENTRY_SIZE: usize = 112;

/// Entries of a blkif ring spread over `nr_pages` 4 KiB pages
/// (`__CONST_RING_SIZE(blkif, nr_pages * 4096)`).
pub const fn blkif_ring_size(nr_pages: usize) -> u32 {
    const_ring_size(nr_pages * 4096, BLKIF_RING_ENTRY_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Abi;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_blkif_h_on_x86_64() {
        assert_eq!(blkif_request_segment::SIZE, 8);
        assert_eq!(blkif_request::SIZE, BLKIF_RING_ENTRY_SIZE);
        assert_eq!(offset_of!(blkif_request, id), 8);
        assert_eq!(offset_of!(blkif_request, sector_number), 16);
        assert_eq!(offset_of!(blkif_request, seg), 24);
        assert_eq!(blkif_request_discard::SIZE, 32);
        assert_eq!(offset_of!(blkif_request_discard, nr_sectors), 24);
        assert_eq!(blkif_request_indirect::SIZE, 64);
        assert_eq!(offset_of!(blkif_request_indirect, handle), 24);
        assert_eq!(offset_of!(blkif_request_indirect, indirect_grefs), 28);
        assert_eq!(blkif_response::SIZE, 16);
        assert_eq!(offset_of!(blkif_response, status), 10);
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(blkif_ring_size(1), 32);
        assert_eq!(blkif_ring_size(2), 64);
        assert_eq!(blkif_ring_size(16), 512);
    }
}
