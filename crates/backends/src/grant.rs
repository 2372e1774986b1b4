//! Access to the pages a guest grants its backends (`grant_table.h`, v1).
//!
//! On rxen a backend runs in the guest's own domain process, which has the
//! guest's RAM and its grant frames mapped. "Mapping a grant" is therefore
//! what Xen's `GNTTABOP_map_grant_ref` checks and nothing more: the guest's
//! `grant_entry_v1` for the reference must permit access to this backend's
//! domain (dom0), writes need an entry without `GTF_readonly`, and the frame
//! must be RAM of the guest. While a page is in use the entry carries
//! `GTF_reading` (and `GTF_writing` for a writable use), set and cleared with
//! compare-exchange loops exactly as Xen does, because the guest's
//! `gnttab_end_foreign_access` refuses to revoke an entry that has them.
//!
//! Backends see the [`GrantAccess`] trait and the [`GrantedPage`]s it hands
//! out; a page gives its memory as a vm-memory [`VolatileSlice`], so a
//! backend can do I/O straight between a file and guest memory.
//! [`Grants`] implements the trait over any [`GuestPages`] (where the entries
//! and the frames are in host memory): the domain process supplies its
//! mappings, tests supply [`mock::MockGuest`] (feature `test-utils`) and play
//! the guest through it.

use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use vm_memory::VolatileSlice;
use xen_abi::grant_table::{
    GRANT_ENTRIES_PER_FRAME_V1, GTF_permit_access, GTF_reading, GTF_readonly, GTF_sub_page,
    GTF_type_mask, GTF_writing,
};
use xen_abi::{DomId, GrantRef};

use crate::ring::{RING_PAGE_SIZE, RingMemory};

/// Bytes in a granted page.
pub const PAGE_SIZE: usize = 4096;

/// How often a map retries when the guest changes its entry under it
/// before giving up (Xen gives up after as many).
const CMPXCHG_RETRIES: usize = 4;

/// Why a grant cannot be used. Each is the guest's mistake (or malice): a
/// backend fails the request that named the reference, never the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The reference lies in no grant frame the guest has placed.
    #[error("grant reference {0} is beyond the guest's grant table")]
    NoEntry(u32),
    /// The entry is not a plain permit-access grant.
    #[error("grant reference {gref} does not permit access (flags {flags:#06x})")]
    NotPermitted {
        /// The reference.
        gref: u32,
        /// Its flags as read.
        flags: u16,
    },
    /// The entry grants access to another domain.
    #[error("grant reference {gref} is for domain {domid}, not this backend")]
    WrongDomain {
        /// The reference.
        gref: u32,
        /// The domain it names.
        domid: u16,
    },
    /// Write access to a read-only grant.
    #[error("grant reference {0} is read-only")]
    ReadOnly(u32),
    /// The granted frame is not RAM of the guest.
    #[error("grant reference {gref} names frame {frame:#x}, which is not the guest's RAM")]
    BadFrame {
        /// The reference.
        gref: u32,
        /// The frame it names.
        frame: u32,
    },
    /// The guest kept changing the entry while it was being mapped.
    #[error("grant reference {0} kept changing while being mapped")]
    Unstable(u32),
}

/// A page of guest memory in use by a backend, released on drop.
pub trait GrantedPage: Send {
    /// The reference it was mapped through.
    fn gref(&self) -> GrantRef;
    /// Whether the backend may write the page.
    fn is_writable(&self) -> bool;
    /// The page's [`PAGE_SIZE`] bytes, to read from. The guest may change
    /// them at any time: copy before validating.
    fn read_slice(&self) -> VolatileSlice<'_>;
    /// The page to write into, for a writable mapping only.
    fn write_slice(&self) -> Option<VolatileSlice<'_>>;
}

/// Maps the pages a guest grants to this backend.
pub trait GrantAccess: Send + Sync {
    /// A mapped page.
    type Page: GrantedPage;
    /// Map `gref` for reading, or for reading and writing.
    fn map(&self, gref: GrantRef, writable: bool) -> Result<Self::Page, GrantError>;
}

impl<T: GrantAccess + ?Sized> GrantAccess for Arc<T> {
    type Page = T::Page;
    fn map(&self, gref: GrantRef, writable: bool) -> Result<Self::Page, GrantError> {
        (**self).map(gref, writable)
    }
}

/// Where a guest's grant entries and RAM frames are in host memory.
///
/// # Safety
/// Every pointer an implementor returns must stay valid for reads and
/// writes for as long as the implementor lives: [`GuestPages::grant_entry`]
/// points at the entry's 8 bytes, 8-aligned, and [`GuestPages::ram_frame`]
/// at the frame's [`PAGE_SIZE`] bytes. The memory is shared with the guest
/// and is only ever accessed volatile or atomically through these pointers.
pub unsafe trait GuestPages: Send + Sync {
    /// The entry of `gref`, if the guest has placed the grant frame holding it.
    fn grant_entry(&self, gref: GrantRef) -> Option<NonNull<u64>>;
    /// Frame `gfn`, if it is RAM of this guest.
    fn ram_frame(&self, gfn: u64) -> Option<NonNull<u8>>;
}

/// The grant table frame and slot of a reference: the entry is at byte
/// `slot * 8` of the guest's grant frame `frame`.
pub fn entry_position(gref: GrantRef) -> (u32, u32) {
    (
        gref.0 / GRANT_ENTRIES_PER_FRAME_V1,
        gref.0 % GRANT_ENTRIES_PER_FRAME_V1,
    )
}

/// How many uses of one reference are live, and the frame it resolved to.
#[derive(Clone, Copy, Debug)]
struct Pin {
    readers: u32,
    writers: u32,
    frame: NonNull<u8>,
}

struct Inner<P> {
    pages: P,
    backend: DomId,
    pins: Mutex<HashMap<u32, Pin>>,
}

/// [`GrantAccess`] over a guest's pages, following Xen's v1 protocol.
/// Clones share the bookkeeping, so several backends of one guest may use
/// the same reference at once (each use pins it).
pub struct Grants<P> {
    inner: Arc<Inner<P>>,
}

impl<P> Clone for Grants<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<P> fmt::Debug for Grants<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

/// The flags (low half) and domid (high half) of an entry that `pages`
/// returned, as one word.
fn entry_word<P: GuestPages>(_pages: &P, entry: NonNull<u64>) -> &AtomicU32 {
    // SAFETY: `GuestPages` guarantees the entry's 8 bytes are valid and
    // 8-aligned for as long as `pages` lives, which the returned borrow
    // cannot outlive. The guest changes the word concurrently, which is
    // what an atomic is for.
    unsafe { AtomicU32::from_ptr(entry.as_ptr().cast::<u32>()) }
}

/// The frame field of an entry that `pages` returned.
fn entry_frame<P: GuestPages>(_pages: &P, entry: NonNull<u64>) -> u32 {
    // SAFETY: as in `entry_word`; the frame is the entry's second word.
    let w = unsafe { AtomicU32::from_ptr(entry.as_ptr().cast::<u32>().add(1)) };
    w.load(Ordering::Acquire)
}

impl<P: GuestPages> Grants<P> {
    /// Grant access for the backend domain `backend` (dom0 on rxen) to
    /// the guest whose memory `pages` describes.
    pub fn new(pages: P, backend: DomId) -> Self {
        Self {
            inner: Arc::new(Inner {
                pages,
                backend,
                pins: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The guest memory description.
    pub fn pages(&self) -> &P {
        &self.inner.pages
    }

    /// References in use now (for tests and diagnostics).
    pub fn pinned(&self) -> usize {
        self.inner.pins.lock().expect("grant pins lock").len()
    }

    /// Set `add` in the entry's flags if it is a permit-access grant for
    /// this backend (and writable, if `add` has `GTF_writing`).
    fn acquire(&self, gref: GrantRef, entry: NonNull<u64>, add: u16) -> Result<(), GrantError> {
        let word = entry_word(&self.inner.pages, entry);
        let mut cur = word.load(Ordering::Acquire);
        for _ in 0..=CMPXCHG_RETRIES {
            let flags = cur as u16;
            let domid = (cur >> 16) as u16;
            if flags & GTF_type_mask != GTF_permit_access || flags & GTF_sub_page != 0 {
                return Err(GrantError::NotPermitted {
                    gref: gref.0,
                    flags,
                });
            }
            if domid != self.inner.backend.0 {
                return Err(GrantError::WrongDomain {
                    gref: gref.0,
                    domid,
                });
            }
            if add & GTF_writing != 0 && flags & GTF_readonly != 0 {
                return Err(GrantError::ReadOnly(gref.0));
            }
            let new = cur | u32::from(add);
            match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
        Err(GrantError::Unstable(gref.0))
    }

    fn release_flags(&self, gref: GrantRef, clear: u16) {
        if clear == 0 {
            return;
        }
        // The entry was found when the reference was pinned; the guest
        // cannot unplace a grant frame on rxen, so it is still there.
        if let Some(entry) = self.inner.pages.grant_entry(gref) {
            entry_word(&self.inner.pages, entry).fetch_and(!u32::from(clear), Ordering::AcqRel);
        }
    }

    fn unpin(&self, gref: GrantRef, writable: bool) {
        let mut pins = self.inner.pins.lock().expect("grant pins lock");
        let Some(pin) = pins.get_mut(&gref.0) else {
            debug_assert!(false, "released an unpinned grant");
            return;
        };
        let mut clear = 0;
        if writable {
            pin.writers -= 1;
            if pin.writers == 0 {
                clear |= GTF_writing;
            }
        } else {
            pin.readers -= 1;
        }
        if pin.readers == 0 && pin.writers == 0 {
            clear |= GTF_reading;
            pins.remove(&gref.0);
        }
        self.release_flags(gref, clear);
    }
}

impl<P: GuestPages + 'static> GrantAccess for Grants<P> {
    type Page = GrantPage<P>;

    fn map(&self, gref: GrantRef, writable: bool) -> Result<GrantPage<P>, GrantError> {
        let entry = self
            .inner
            .pages
            .grant_entry(gref)
            .ok_or(GrantError::NoEntry(gref.0))?;
        let mut pins = self.inner.pins.lock().expect("grant pins lock");
        let frame = match pins.get_mut(&gref.0) {
            Some(pin) => {
                if writable && pin.writers == 0 {
                    self.acquire(gref, entry, GTF_writing)?;
                }
                if writable {
                    pin.writers += 1;
                } else {
                    pin.readers += 1;
                }
                pin.frame
            }
            None => {
                let add = if writable {
                    GTF_reading | GTF_writing
                } else {
                    GTF_reading
                };
                self.acquire(gref, entry, add)?;
                // The frame is read once, after the flags are set: from
                // then on the guest may not change the entry (Xen).
                let gfn = entry_frame(&self.inner.pages, entry);
                let Some(frame) = self.inner.pages.ram_frame(u64::from(gfn)) else {
                    self.release_flags(gref, add);
                    return Err(GrantError::BadFrame {
                        gref: gref.0,
                        frame: gfn,
                    });
                };
                pins.insert(
                    gref.0,
                    Pin {
                        readers: u32::from(!writable),
                        writers: u32::from(writable),
                        frame,
                    },
                );
                frame
            }
        };
        drop(pins);
        Ok(GrantPage {
            grants: self.clone(),
            gref,
            writable,
            frame,
        })
    }
}

/// A page mapped by [`Grants`]; dropping it ends the use.
pub struct GrantPage<P: GuestPages> {
    grants: Grants<P>,
    gref: GrantRef,
    writable: bool,
    frame: NonNull<u8>,
}

// SAFETY: the page is plain shared memory (always accessed volatile), valid
// while `grants` (which owns the `GuestPages`) lives; nothing in it is tied
// to a thread.
unsafe impl<P: GuestPages> Send for GrantPage<P> {}
// SAFETY: as for the pins' frames: addresses into memory valid for as long
// as the `GuestPages` that `Inner` owns, usable from any thread.
unsafe impl Send for Pin {}

impl<P: GuestPages> fmt::Debug for GrantPage<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantPage")
            .field("gref", &self.gref.0)
            .field("writable", &self.writable)
            .finish()
    }
}

impl<P: GuestPages> GrantPage<P> {
    fn slice(&self) -> VolatileSlice<'_> {
        // SAFETY: `frame` points at PAGE_SIZE bytes valid while the
        // `GuestPages` lives (its contract), and `self.grants` keeps it
        // alive for at least as long as the returned borrow of `self`.
        unsafe { VolatileSlice::new(self.frame.as_ptr(), PAGE_SIZE) }
    }
}

impl<P: GuestPages> GrantedPage for GrantPage<P> {
    fn gref(&self) -> GrantRef {
        self.gref
    }
    fn is_writable(&self) -> bool {
        self.writable
    }
    fn read_slice(&self) -> VolatileSlice<'_> {
        self.slice()
    }
    fn write_slice(&self) -> Option<VolatileSlice<'_>> {
        self.writable.then(|| self.slice())
    }
}

impl<P: GuestPages> Drop for GrantPage<P> {
    fn drop(&mut self) {
        self.grants.unpin(self.gref, self.writable);
    }
}

/// A writable granted page used as a single ring page (netif tx/rx rings,
/// a one-page blkif ring): [`RingMemory`] over it.
#[derive(Debug)]
pub struct PageRing<T>(pub T);

impl<T: GrantedPage> PageRing<T> {
    fn slice(&self) -> VolatileSlice<'_> {
        self.0.write_slice().unwrap_or_else(|| self.0.read_slice())
    }
}

impl<T: GrantedPage> RingMemory for PageRing<T> {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let s = self.slice();
        debug_assert!(offset + buf.len() <= RING_PAGE_SIZE);
        if let Ok(sub) = s.subslice(offset, buf.len()) {
            sub.copy_to(buf);
        }
    }
    fn write(&self, offset: usize, data: &[u8]) {
        debug_assert!(self.0.is_writable(), "ring pages are mapped writable");
        if let Some(s) = self.0.write_slice()
            && let Ok(sub) = s.subslice(offset, data.len())
        {
            sub.copy_from(data);
        }
    }
    fn load_u32(&self, offset: usize) -> u32 {
        use vm_memory::Bytes;
        self.slice()
            .load::<u32>(offset, Ordering::Acquire)
            .unwrap_or(0)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        use vm_memory::Bytes;
        if let Some(s) = self.0.write_slice() {
            let _ = s.store(value, offset, Ordering::Release);
        }
    }
}

/// A guest's memory for tests: RAM frames and a grant table in one
/// page-aligned allocation; the test plays the guest through it.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::alloc::Layout;
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicU32, Ordering};

    use xen_abi::grant_table::{
        GRANT_ENTRIES_PER_FRAME_V1, GTF_permit_access, GTF_reading, GTF_readonly, GTF_writing,
        grant_entry_v1,
    };
    use xen_abi::{DomId, GrantRef};

    use super::{Grants, GuestPages, PAGE_SIZE};

    /// Guest memory: `ram_frames` RAM frames (gfn 0 upwards) followed by
    /// `grant_frames` grant table frames.
    #[derive(Debug)]
    pub struct MockGuest {
        base: NonNull<u8>,
        ram_frames: u64,
        grant_frames: u32,
    }

    // SAFETY: the allocation is plain memory owned by the mock and accessed
    // through raw pointers only (volatile/atomic), from any thread.
    unsafe impl Send for MockGuest {}
    // SAFETY: as above; no `&`/`&mut` references to the memory are made.
    unsafe impl Sync for MockGuest {}

    impl MockGuest {
        fn layout(ram_frames: u64, grant_frames: u32) -> Layout {
            let pages = ram_frames as usize + grant_frames as usize;
            Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE).expect("mock size")
        }

        /// Zeroed memory: no grants.
        pub fn new(ram_frames: u64, grant_frames: u32) -> Self {
            let layout = Self::layout(ram_frames, grant_frames);
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            let base = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            Self {
                base,
                ram_frames,
                grant_frames,
            }
        }

        /// A [`Grants`] for dom0 over this memory.
        pub fn grants(self) -> Grants<MockGuest> {
            Grants::new(self, DomId::DOM0)
        }

        fn entry_ptr(&self, gref: GrantRef) -> Option<NonNull<u64>> {
            let (frame, slot) = super::entry_position(gref);
            if frame >= self.grant_frames {
                return None;
            }
            let off = (self.ram_frames as usize + frame as usize) * PAGE_SIZE + slot as usize * 8;
            // SAFETY: `off` is inside the allocation (checked frame index).
            Some(unsafe { self.base.add(off) }.cast())
        }

        fn frame_ptr(&self, gfn: u64) -> NonNull<u8> {
            assert!(gfn < self.ram_frames, "frame {gfn} is not mock RAM");
            // SAFETY: frame `gfn` is inside the allocation (asserted).
            unsafe { self.base.add(gfn as usize * PAGE_SIZE) }
        }

        fn entry_words(&self, gref: GrantRef) -> (&AtomicU32, &AtomicU32) {
            let p = self
                .entry_ptr(gref)
                .expect("gref inside the mock grant table");
            // SAFETY: 8 valid, 8-aligned bytes of the allocation, which
            // lives as long as `self`.
            unsafe {
                (
                    AtomicU32::from_ptr(p.as_ptr().cast()),
                    AtomicU32::from_ptr(p.as_ptr().cast::<u32>().add(1)),
                )
            }
        }

        /// Grant frame `gfn` to dom0 as `gref`, read-only or not.
        pub fn grant(&self, gref: u32, gfn: u64, readonly: bool) {
            let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
            self.set_entry(gref, flags, 0, gfn as u32);
        }

        /// Write an entry as the guest would: frame first, then flags and domid.
        pub fn set_entry(&self, gref: u32, flags: u16, domid: u16, frame: u32) {
            let (w0, w1) = self.entry_words(GrantRef(gref));
            w1.store(frame, Ordering::Release);
            w0.store(u32::from(flags) | u32::from(domid) << 16, Ordering::Release);
        }

        /// The entry as it is now.
        pub fn entry(&self, gref: u32) -> grant_entry_v1 {
            let (w0, w1) = self.entry_words(GrantRef(gref));
            let w = w0.load(Ordering::Acquire);
            grant_entry_v1 {
                flags: w as u16,
                domid: (w >> 16) as u16,
                frame: w1.load(Ordering::Acquire),
            }
        }

        /// The guest's `gnttab_end_foreign_access_ref`: revoke `gref` unless
        /// the backend is still using it. Returns whether it was revoked.
        pub fn end_access(&self, gref: u32) -> bool {
            let (w0, _) = self.entry_words(GrantRef(gref));
            let mut cur = w0.load(Ordering::Acquire);
            loop {
                if cur as u16 & (GTF_reading | GTF_writing) != 0 {
                    return false;
                }
                match w0.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return true,
                    Err(seen) => cur = seen,
                }
            }
        }

        /// Copy `data` into RAM frame `gfn` at `offset`.
        pub fn write(&self, gfn: u64, offset: usize, data: &[u8]) {
            assert!(offset + data.len() <= PAGE_SIZE);
            let p = self.frame_ptr(gfn);
            for (i, b) in data.iter().enumerate() {
                // SAFETY: inside the frame (asserted above).
                unsafe { p.add(offset + i).write_volatile(*b) };
            }
        }

        /// Copy bytes out of RAM frame `gfn` at `offset`.
        pub fn read(&self, gfn: u64, offset: usize, buf: &mut [u8]) {
            assert!(offset + buf.len() <= PAGE_SIZE);
            let p = self.frame_ptr(gfn);
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: inside the frame (asserted above).
                *b = unsafe { p.add(offset + i).read_volatile() };
            }
        }

        /// Entries in the grant table.
        pub fn nr_grefs(&self) -> u32 {
            self.grant_frames * GRANT_ENTRIES_PER_FRAME_V1
        }
    }

    impl Drop for MockGuest {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this very layout.
            unsafe {
                std::alloc::dealloc(
                    self.base.as_ptr(),
                    Self::layout(self.ram_frames, self.grant_frames),
                )
            };
        }
    }

    // SAFETY: the pointers are into the allocation, which lives as long as
    // the mock; entries are 8-aligned (the allocation is page-aligned).
    unsafe impl GuestPages for MockGuest {
        fn grant_entry(&self, gref: GrantRef) -> Option<NonNull<u64>> {
            self.entry_ptr(gref)
        }
        fn ram_frame(&self, gfn: u64) -> Option<NonNull<u8>> {
            (gfn < self.ram_frames).then(|| self.frame_ptr(gfn))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::MockGuest;
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn map_sets_and_clears_reading_and_writing() {
        let g = MockGuest::new(16, 1).grants();
        g.pages().grant(8, 3, false);
        g.pages().write(3, 100, b"guest data");
        {
            let p = g.map(GrantRef(8), false).unwrap();
            assert_eq!(
                g.pages().entry(8).flags,
                GTF_permit_access | GTF_reading,
                "a read use sets GTF_reading only"
            );
            let mut buf = [0u8; 10];
            p.read_slice().read_slice(&mut buf, 100).unwrap();
            assert_eq!(&buf, b"guest data");
            assert!(p.write_slice().is_none());
            assert!(!g.pages().end_access(8), "the guest cannot revoke it now");

            let w = g.map(GrantRef(8), true).unwrap();
            assert_eq!(
                g.pages().entry(8).flags,
                GTF_permit_access | GTF_reading | GTF_writing
            );
            w.write_slice().unwrap().write_slice(b"backend", 0).unwrap();
            drop(w);
            assert_eq!(
                g.pages().entry(8).flags,
                GTF_permit_access | GTF_reading,
                "the last writer clears GTF_writing, a reader remains"
            );
            assert_eq!(g.pinned(), 1);
        }
        assert_eq!(g.pages().entry(8).flags, GTF_permit_access);
        assert_eq!(g.pinned(), 0);
        let mut buf = [0u8; 7];
        g.pages().read(3, 0, &mut buf);
        assert_eq!(&buf, b"backend");
        assert!(g.pages().end_access(8));
        assert!(matches!(
            g.map(GrantRef(8), false),
            Err(GrantError::NotPermitted { gref: 8, .. })
        ));
    }

    #[test]
    fn hostile_entries_are_refused_without_side_effects() {
        let g = MockGuest::new(4, 1).grants();
        let m = g.pages();
        assert_eq!(
            g.map(GrantRef(512), false).unwrap_err(),
            GrantError::NoEntry(512)
        );
        assert_eq!(
            g.map(GrantRef(u32::MAX), true).unwrap_err(),
            GrantError::NoEntry(u32::MAX)
        );
        assert!(matches!(
            g.map(GrantRef(9), false).unwrap_err(),
            GrantError::NotPermitted { gref: 9, flags: 0 }
        ));
        m.set_entry(10, GTF_permit_access, 7, 1);
        assert_eq!(
            g.map(GrantRef(10), false).unwrap_err(),
            GrantError::WrongDomain { gref: 10, domid: 7 }
        );
        m.grant(11, 2, true);
        assert_eq!(
            g.map(GrantRef(11), true).unwrap_err(),
            GrantError::ReadOnly(11)
        );
        assert_eq!(m.entry(11).flags, GTF_permit_access | GTF_readonly);
        assert!(g.map(GrantRef(11), false).is_ok());
        m.grant(12, 4, false);
        assert_eq!(
            g.map(GrantRef(12), true).unwrap_err(),
            GrantError::BadFrame { gref: 12, frame: 4 }
        );
        assert_eq!(m.entry(12).flags, GTF_permit_access, "flags undone");
        m.set_entry(13, xen_abi::grant_table::GTF_accept_transfer, 0, 1);
        assert!(matches!(
            g.map(GrantRef(13), false).unwrap_err(),
            GrantError::NotPermitted { .. }
        ));
        m.set_entry(14, GTF_permit_access | GTF_sub_page, 0, 1);
        assert!(g.map(GrantRef(14), false).is_err());
        assert_eq!(g.pinned(), 0);
    }

    #[test]
    fn read_only_pin_refuses_a_later_writer() {
        let g = MockGuest::new(4, 1).grants();
        g.pages().grant(20, 1, true);
        let r = g.map(GrantRef(20), false).unwrap();
        assert_eq!(
            g.map(GrantRef(20), true).unwrap_err(),
            GrantError::ReadOnly(20)
        );
        drop(r);
        assert_eq!(g.pinned(), 0);
        assert_eq!(g.pages().entry(20).flags, GTF_permit_access | GTF_readonly);
    }

    #[test]
    fn page_ring_indices_and_bytes() {
        let g = MockGuest::new(4, 1).grants();
        g.pages().grant(30, 0, false);
        let ring = PageRing(g.map(GrantRef(30), true).unwrap());
        ring.store_u32(8, 0x1234_5678);
        ring.write(64, b"entry");
        let mut b = [0u8; 4];
        g.pages().read(0, 8, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0x1234_5678);
        g.pages().write(0, 0, &7u32.to_le_bytes());
        assert_eq!(ring.load_u32(0), 7);
        let mut e = [0u8; 5];
        ring.read(64, &mut e);
        assert_eq!(&e, b"entry");
        assert_eq!(
            ring.0
                .read_slice()
                .load::<u32>(8, Ordering::Relaxed)
                .unwrap(),
            0x1234_5678
        );
    }
}
