//! What a backend needs of a shared ring page and of its event channel.
//!
//! Both ends of a Xen ring access the page concurrently: the producer writes
//! data, then (after a write barrier) its producer index; the consumer reads
//! the index, then (after a read barrier) the data. [`RingMemory`] offers
//! exactly that: byte copies, an acquire load and a release store of the
//! 32-bit indices. Offsets are the backend's own constants and masked
//! indices, never raw guest values, and always lie inside the page.

/// Bytes in a ring page.
pub const RING_PAGE_SIZE: usize = 4096;

/// One page of memory shared with the guest.
pub trait RingMemory {
    /// Copy `buf.len()` bytes at `offset` out of the page.
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copy `data` into the page at `offset`.
    fn write(&self, offset: usize, data: &[u8]);
    /// Load the 32-bit little-endian index at `offset` (4-aligned) with
    /// acquire ordering: data the guest wrote before it is visible after.
    fn load_u32(&self, offset: usize) -> u32;
    /// Store a 32-bit index at `offset` (4-aligned) with release ordering:
    /// data written before it is visible to the guest first.
    fn store_u32(&self, offset: usize, value: u32);
}

/// Signals the guest on the ring's event channel.
pub trait Notify {
    /// Raise the event channel towards the guest.
    fn notify(&self);
}

impl<T: RingMemory + ?Sized> RingMemory for &T {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        (**self).read(offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) {
        (**self).write(offset, data)
    }
    fn load_u32(&self, offset: usize) -> u32 {
        (**self).load_u32(offset)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        (**self).store_u32(offset, value)
    }
}

impl<T: Notify + ?Sized> Notify for &T {
    fn notify(&self) {
        (**self).notify()
    }
}

/// Copy `data` into a ring of `size` bytes (a power of two) starting at
/// byte `ring_off` of the page, beginning at free-running index `idx`,
/// wrapping as needed. `data.len()` must not exceed `size`.
pub(crate) fn ring_write<M: RingMemory + ?Sized>(
    mem: &M,
    ring_off: usize,
    size: usize,
    idx: u32,
    data: &[u8],
) {
    debug_assert!(size.is_power_of_two() && data.len() <= size);
    let start = idx as usize & (size - 1);
    let first = data.len().min(size - start);
    mem.write(ring_off + start, &data[..first]);
    if first < data.len() {
        mem.write(ring_off, &data[first..]);
    }
}

/// Copy `buf.len()` bytes out of a ring of `size` bytes at `ring_off`,
/// beginning at free-running index `idx`.
pub(crate) fn ring_read<M: RingMemory + ?Sized>(
    mem: &M,
    ring_off: usize,
    size: usize,
    idx: u32,
    buf: &mut [u8],
) {
    debug_assert!(size.is_power_of_two() && buf.len() <= size);
    let start = idx as usize & (size - 1);
    let first = buf.len().min(size - start);
    mem.read(ring_off + start, &mut buf[..first]);
    if first < buf.len() {
        let n = buf.len();
        mem.read(ring_off, &mut buf[first..n]);
    }
}

/// A ring page and an event channel for tests: the test plays the guest
/// through the same [`RingMemory`] calls the backend uses.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::{Notify, RING_PAGE_SIZE, RingMemory};

    /// A shared page; clones see the same bytes.
    #[derive(Clone, Debug)]
    pub struct MockRing(Arc<Mutex<Vec<u8>>>);

    impl Default for MockRing {
        fn default() -> Self {
            Self::new()
        }
    }

    impl MockRing {
        /// A zeroed page.
        pub fn new() -> Self {
            MockRing(Arc::new(Mutex::new(vec![0; RING_PAGE_SIZE])))
        }
    }

    impl RingMemory for MockRing {
        fn read(&self, offset: usize, buf: &mut [u8]) {
            let p = self.0.lock().expect("mock ring lock");
            buf.copy_from_slice(&p[offset..offset + buf.len()]);
        }
        fn write(&self, offset: usize, data: &[u8]) {
            let mut p = self.0.lock().expect("mock ring lock");
            p[offset..offset + data.len()].copy_from_slice(data);
        }
        fn load_u32(&self, offset: usize) -> u32 {
            assert_eq!(offset % 4, 0, "indices are aligned");
            let mut b = [0u8; 4];
            self.read(offset, &mut b);
            u32::from_le_bytes(b)
        }
        fn store_u32(&self, offset: usize, value: u32) {
            assert_eq!(offset % 4, 0, "indices are aligned");
            self.write(offset, &value.to_le_bytes());
        }
    }

    /// Counts notifications; clones share the count.
    #[derive(Clone, Debug, Default)]
    pub struct MockNotify(Arc<AtomicUsize>);

    impl MockNotify {
        /// Notifications so far.
        pub fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Notify for MockNotify {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::MockRing;
    use super::*;

    #[test]
    fn wrapping_copies() {
        let m = MockRing::new();
        let data: Vec<u8> = (1..=10).collect();
        // A 16-byte ring at offset 100, starting 4 bytes before its end.
        ring_write(&m, 100, 16, 12 + 16 * 7, &data);
        let mut raw = [0u8; 16];
        m.read(100, &mut raw);
        assert_eq!(&raw[12..], &data[..4]);
        assert_eq!(&raw[..6], &data[4..]);
        let mut back = [0u8; 10];
        ring_read(&m, 100, 16, 12, &mut back);
        assert_eq!(back.to_vec(), data);
        m.store_u32(8, 0xdead_beef);
        assert_eq!(m.load_u32(8), 0xdead_beef);
    }
}
