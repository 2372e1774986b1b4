//! The PV console ring page, `xen/include/public/io/console.h`:
//! `struct xencons_interface`, shared by the guest's hvc driver and the
//! console backend. Indices are free-running; the position in a ring is the
//! index masked by the ring size (`MASK_XENCONS_IDX`).
#![allow(non_upper_case_globals)]

/// Bytes of the `in` ring (backend → guest).
pub const XENCONS_IN_SIZE: u32 = 1024;
/// Bytes of the `out` ring (guest → backend).
pub const XENCONS_OUT_SIZE: u32 = 2048;

pub const XENCONS_OFF_in: usize = 0;
pub const XENCONS_OFF_out: usize = 1024;
pub const XENCONS_OFF_in_cons: usize = 3072;
pub const XENCONS_OFF_in_prod: usize = 3076;
pub const XENCONS_OFF_out_cons: usize = 3080;
pub const XENCONS_OFF_out_prod: usize = 3084;
pub const XENCONS_OFF_connection: usize = 3088;
/// `sizeof(struct xencons_interface)` (with tail padding).
pub const XENCONS_INTERFACE_SIZE: usize = 3092;

pub const XENCONSOLE_CONNECTED: u8 = 0;
pub const XENCONSOLE_DISCONNECTED: u8 = 1;

/// `MASK_XENCONS_IDX(idx, ring)` for a ring of `size` bytes (a power of two).
pub const fn mask_xencons_idx(idx: u32, size: u32) -> u32 {
    idx & (size - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(XENCONS_OFF_out, XENCONS_IN_SIZE as usize);
        assert_eq!(
            XENCONS_OFF_in_cons,
            (XENCONS_IN_SIZE + XENCONS_OUT_SIZE) as usize
        );
        assert_eq!(mask_xencons_idx(2049, XENCONS_OUT_SIZE), 1);
        assert!(XENCONS_INTERFACE_SIZE <= crate::PAGE_SIZE as usize);
    }
}
