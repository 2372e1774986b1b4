//! Shared I/O ring basics, `xen/include/public/io/ring.h`: the header of a
//! `struct *_sring` page, the ring-size rule and the notification hold-off
//! test. Per-device request/response layouts belong to their own modules.
#![allow(non_upper_case_globals)]

/// `RING_IDX`: free-running 32-bit indices.
pub type RingIdx = u32;

pub const SRING_OFF_req_prod: usize = 0;
pub const SRING_OFF_req_event: usize = 4;
pub const SRING_OFF_rsp_prod: usize = 8;
pub const SRING_OFF_rsp_event: usize = 12;
/// `pvt` (4 bytes) and `__pad[44]` follow; entries start at byte 64.
pub const SRING_OFF_ring: usize = 64;

/// `__CONST_RING_SIZE`: entries of `entry_size` bytes that fit in a shared
/// ring of `total` bytes, rounded down to a power of two (0 if none fit).
pub const fn const_ring_size(total: usize, entry_size: usize) -> u32 {
    if entry_size == 0 || total <= SRING_OFF_ring {
        return 0;
    }
    let n = (total - SRING_OFF_ring) / entry_size;
    if n == 0 {
        return 0;
    }
    let n = if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    };
    1 << (31 - n.leading_zeros())
}

/// The check of `RING_PUSH_*_AND_CHECK_NOTIFY`: after moving a producer
/// index from `old` to `new`, whether the other end asked (through its
/// `*_event` index) to be notified of an entry in `(old, new]`.
pub const fn ring_needs_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_size_rounds_down_to_power_of_two() {
        // blkif: 112-byte entries in a 4 KiB page -> 32 entries.
        assert_eq!(const_ring_size(4096, 112), 32);
        // netif tx: 12-byte entries -> 256.
        assert_eq!(const_ring_size(4096, 12), 256);
        assert_eq!(const_ring_size(64, 8), 0);
        assert_eq!(const_ring_size(4096, 0), 0);
        assert_eq!(const_ring_size(4096, 5000), 0);
    }

    #[test]
    fn notify_hold_off() {
        // Other end waits for entry 5; we pushed 3 -> 6: notify.
        assert!(ring_needs_notify(3, 6, 5));
        // Other end waits for entry 7; we pushed 3 -> 6: hold off.
        assert!(!ring_needs_notify(3, 6, 7));
        // Works across wrap-around.
        assert!(ring_needs_notify(u32::MAX - 1, 2, u32::MAX));
        assert!(!ring_needs_notify(u32::MAX - 1, 2, 3));
    }
}
