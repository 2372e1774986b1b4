//! The PV block backend, blkback (`xen/include/public/io/blkif.h`).
//!
//! A frontend (Linux's xen-blkfront) shares a ring of 1 to
//! 2^[`MAX_RING_PAGE_ORDER`] granted pages and an event channel; it puts
//! requests on the ring, this backend runs each one against a [`Disk`] and
//! puts a response in its place. [`BlkRing`] is the backend's half of that
//! ring (indices checked on every pass: a guest whose producer index runs
//! more than a ring ahead has corrupted its ring and is disconnected);
//! [`BlkBackend`] runs the requests: read, write, flush-diskcache, barrier,
//! discard and indirect ones, data moving straight between the disk and
//! the granted guest pages. A request the guest got wrong fails with
//! `BLKIF_RSP_ERROR` (or `BLKIF_RSP_EOPNOTSUPP`); nothing the guest writes
//! can make the backend panic or allocate without bound.
//!
//! Requests run one at a time, in ring order: a flush or barrier therefore
//! follows every earlier write, and is answered only once `fdatasync` (or
//! the qcow2 equivalent) has returned.
//!
//! [`xenbus::BlkDevice`] is the device's side of the xenbus handshake
//! (which ring pages, which event channel, when to connect): the `vbd`
//! kind for [`crate::xenbus::XenbusBackend`].

pub mod disk;
pub mod qcow2;
pub mod request;
pub mod xenbus;

use std::sync::atomic::{Ordering, fence};

use vm_memory::{Bytes, VolatileSlice};
use xen_abi::GrantRef;
use xen_abi::io::blkif::{
    BLKIF_RING_ENTRY_SIZE, BLKIF_RSP_OKAY, BLKIF_SECTOR_SIZE, BLKIF_SEGS_PER_INDIRECT_FRAME,
    blkif_request_segment, blkif_response, blkif_ring_size,
};
use xen_abi::io::ring::{
    SRING_OFF_req_event, SRING_OFF_req_prod, SRING_OFF_ring, SRING_OFF_rsp_event,
    SRING_OFF_rsp_prod, ring_needs_notify,
};
use xen_abi::layout::Abi;

use crate::grant::{GrantAccess, GrantError, GrantedPage, PAGE_SIZE};
use crate::ring::Notify;

pub use disk::{Disk, DiskConfig, DiskError, DiskFormat};
use request::{IoKind, Parsed, Request, RequestError, Segment};
pub use request::{MAX_INDIRECT_SEGMENTS, parse};

/// The largest ring this backend accepts: 2^4 = 16 pages, 512 requests
/// (`max-ring-page-order`, Linux blkback's default).
pub const MAX_RING_PAGE_ORDER: u32 = 4;

/// Why a connection to a frontend fails or ends.
#[derive(Debug, thiserror::Error)]
pub enum BlkError {
    /// The frontend asked for a ring of an impossible size.
    #[error("a ring of {0} pages (a power of two up to 2^{MAX_RING_PAGE_ORDER} is needed)")]
    RingPages(usize),
    /// A ring page cannot be mapped.
    #[error("mapping ring page {index} failed")]
    MapRing {
        /// Which page.
        index: usize,
        /// Why.
        #[source]
        source: GrantError,
    },
    /// The guest's indices are impossible: the ring is corrupt.
    #[error(
        "the ring is corrupt: req_prod {req_prod:#x} with {rsp_prod:#x} responses (ring of {size})"
    )]
    CorruptRing {
        /// The guest's producer index.
        req_prod: u32,
        /// Our response producer.
        rsp_prod: u32,
        /// Entries in the ring.
        size: u32,
    },
}

/// The backend's half of a (multi-page) blkif ring.
#[derive(Debug)]
pub struct BlkRing<P> {
    pages: Vec<P>,
    size: u32,
    req_cons: u32,
    rsp_prod_pvt: u32,
}

impl<P: GrantedPage> BlkRing<P> {
    /// Serve the ring on `pages` (mapped writable; a power of two of them,
    /// at most 2^[`MAX_RING_PAGE_ORDER`]), as the frontend has just
    /// initialised it.
    pub fn new(pages: Vec<P>) -> Result<Self, BlkError> {
        let n = pages.len();
        if !n.is_power_of_two() || n > 1 << MAX_RING_PAGE_ORDER {
            return Err(BlkError::RingPages(n));
        }
        debug_assert!(pages.iter().all(|p| p.is_writable()));
        Ok(Self {
            size: blkif_ring_size(n),
            pages,
            req_cons: 0,
            rsp_prod_pvt: 0,
        })
    }

    /// Map the ring pages `refs` (writable) through `grants`.
    pub fn map<G: GrantAccess<Page = P>>(grants: &G, refs: &[GrantRef]) -> Result<Self, BlkError> {
        if !refs.len().is_power_of_two() || refs.len() > 1 << MAX_RING_PAGE_ORDER {
            return Err(BlkError::RingPages(refs.len()));
        }
        let pages = refs
            .iter()
            .enumerate()
            .map(|(index, &g)| {
                grants
                    .map(g, true)
                    .map_err(|source| BlkError::MapRing { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(pages)
    }

    /// Entries in the ring.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn page0(&self) -> Option<VolatileSlice<'_>> {
        self.pages[0].write_slice()
    }

    fn load(&self, off: usize) -> u32 {
        self.page0()
            .and_then(|s| s.load::<u32>(off, Ordering::Acquire).ok())
            .unwrap_or(0)
    }

    fn store(&self, off: usize, v: u32) {
        if let Some(s) = self.page0() {
            let _ = s.store(v, off, Ordering::Release);
        }
    }

    /// Byte position of entry `idx`: page and offset in it.
    fn entry_pos(&self, idx: u32) -> (usize, usize) {
        let off = SRING_OFF_ring + (idx & (self.size - 1)) as usize * BLKIF_RING_ENTRY_SIZE;
        (off / PAGE_SIZE, off % PAGE_SIZE)
    }

    /// Copy entry `idx` out of the ring (it may straddle two pages).
    fn read_entry(&self, idx: u32, buf: &mut [u8; BLKIF_RING_ENTRY_SIZE]) {
        let (page, off) = self.entry_pos(idx);
        let first = BLKIF_RING_ENTRY_SIZE.min(PAGE_SIZE - off);
        let s = self.pages[page].read_slice();
        if let Ok(sub) = s.subslice(off, first) {
            sub.copy_to(&mut buf[..first]);
        }
        if first < BLKIF_RING_ENTRY_SIZE
            && let Some(next) = self.pages.get(page + 1)
            && let Ok(sub) = next.read_slice().subslice(0, BLKIF_RING_ENTRY_SIZE - first)
        {
            sub.copy_to(&mut buf[first..]);
        }
    }

    /// Put a response in the next response slot (not yet published).
    fn put_response(&mut self, rsp: &blkif_response) {
        let mut b = [0u8; blkif_response::SIZE];
        rsp.write_to(&mut b);
        // Entries start 16-aligned and pages are multiples of 16, so a
        // 16-byte response never straddles pages.
        let (page, off) = self.entry_pos(self.rsp_prod_pvt);
        if let Some(s) = self.pages[page].write_slice()
            && let Ok(sub) = s.subslice(off, b.len())
        {
            sub.copy_from(&b);
        }
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
    }

    /// Publish the responses put so far; whether the frontend asked to be
    /// notified of them (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    fn push_responses(&mut self) -> bool {
        let old = self.load(SRING_OFF_rsp_prod);
        let new = self.rsp_prod_pvt;
        self.store(SRING_OFF_rsp_prod, new);
        fence(Ordering::SeqCst);
        ring_needs_notify(old, new, self.load(SRING_OFF_rsp_event))
    }

    /// Requests waiting, or an error if the guest's index is impossible.
    fn pending(&self) -> Result<u32, BlkError> {
        let req_prod = self.load(SRING_OFF_req_prod);
        // Every request consumed has been answered, so at most a ring's
        // worth may be outstanding.
        if req_prod.wrapping_sub(self.rsp_prod_pvt) > self.size {
            return Err(BlkError::CorruptRing {
                req_prod,
                rsp_prod: self.rsp_prod_pvt,
                size: self.size,
            });
        }
        Ok(req_prod.wrapping_sub(self.req_cons))
    }

    /// Ask to be notified of the next request, then look again
    /// (`RING_FINAL_CHECK_FOR_REQUESTS`).
    fn final_check(&mut self) -> Result<bool, BlkError> {
        if self.pending()? > 0 {
            return Ok(true);
        }
        self.store(SRING_OFF_req_event, self.req_cons.wrapping_add(1));
        fence(Ordering::SeqCst);
        Ok(self.pending()? > 0)
    }
}

/// Counts of what a connection has done, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Requests answered `BLKIF_RSP_OKAY`.
    pub ok: u64,
    /// Requests answered with an error status.
    pub failed: u64,
}

/// One connected frontend: its ring, its disk and its event channel.
pub struct BlkBackend<G: GrantAccess, N> {
    grants: G,
    notify: N,
    ring: BlkRing<G::Page>,
    disk: Box<dyn Disk>,
    max_indirect: u16,
    stats: BlkStats,
    /// Segments of the request being run (reused; at most
    /// `max_indirect` or 11 entries).
    segs: Vec<Segment>,
}

impl<G: GrantAccess, N> std::fmt::Debug for BlkBackend<G, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlkBackend")
            .field("ring_size", &self.ring.size)
            .field("req_cons", &self.ring.req_cons)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<G: GrantAccess, N: Notify> BlkBackend<G, N> {
    /// Connect to the ring on `ring_refs` (the frontend's `ring-ref`, or
    /// `ring-ref0..N-1`), serving `disk` and notifying through `notify`;
    /// indirect requests of up to `max_indirect` segments are accepted
    /// (what the backend advertised; 0 for none).
    pub fn connect(
        grants: G,
        notify: N,
        ring_refs: &[GrantRef],
        disk: Box<dyn Disk>,
        max_indirect: u16,
    ) -> Result<Self, BlkError> {
        let ring = BlkRing::map(&grants, ring_refs)?;
        Ok(Self::new(grants, notify, ring, disk, max_indirect))
    }

    /// Serve `ring` (mapped with [`BlkRing::map`]) with `disk`.
    pub fn new(
        grants: G,
        notify: N,
        ring: BlkRing<G::Page>,
        disk: Box<dyn Disk>,
        max_indirect: u16,
    ) -> Self {
        let max_indirect = max_indirect.min(MAX_INDIRECT_SEGMENTS);
        Self {
            ring,
            grants,
            notify,
            disk,
            max_indirect,
            stats: BlkStats::default(),
            segs: Vec::with_capacity(usize::from(max_indirect).max(11)),
        }
    }

    /// What has been done so far.
    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// The disk.
    pub fn disk(&self) -> &dyn Disk {
        &*self.disk
    }

    /// Serve `disk` from now on (a removable drive's medium changed);
    /// returns the one served until now. Requests already answered stay
    /// answered; later ones see the new disk's size.
    pub fn replace_disk(&mut self, disk: Box<dyn Disk>) -> Box<dyn Disk> {
        std::mem::replace(&mut self.disk, disk)
    }

    /// End the connection (ring pages released), keeping the disk for the
    /// next one.
    pub fn into_disk(self) -> Box<dyn Disk> {
        self.disk
    }

    /// Handle a notification: run the requests on the ring (at most a
    /// ring's worth, so one frontend cannot hold the caller), answer them
    /// and notify the frontend if it asked. Returns whether more requests
    /// are already waiting (call again). An error means the ring is
    /// corrupt: the caller disconnects the device.
    pub fn service(&mut self) -> Result<bool, BlkError> {
        let mut budget = self.ring.size;
        let mut entry = [0u8; BLKIF_RING_ENTRY_SIZE];
        let more = loop {
            let pending = self.ring.pending()?;
            if pending == 0 {
                if self.ring.final_check()? {
                    continue;
                }
                break false;
            }
            if budget == 0 {
                break true;
            }
            budget -= 1;
            // Copied out once; the guest may rewrite the slot meanwhile.
            self.ring.read_entry(self.ring.req_cons, &mut entry);
            self.ring.req_cons = self.ring.req_cons.wrapping_add(1);
            let parsed = parse(&entry, self.max_indirect);
            let status = self.run(&parsed);
            self.ring.put_response(&blkif_response {
                id: parsed.id,
                operation: parsed.operation,
                status,
            });
        };
        if self.ring.push_responses() {
            self.notify.notify();
        }
        Ok(more)
    }

    fn run(&mut self, p: &Parsed) -> i16 {
        tracing::trace!(id = p.id, operation = p.operation, request = ?p.request, "blkback: request");
        let res = match &p.request {
            Ok(r) => self.execute(r),
            Err(e) => Err(e.clone()),
        };
        match res {
            Ok(()) => {
                self.stats.ok += 1;
                BLKIF_RSP_OKAY
            }
            Err(e) => {
                self.stats.failed += 1;
                tracing::debug!(
                    id = p.id,
                    operation = p.operation,
                    "blkback: request failed: {e}"
                );
                e.status()
            }
        }
    }

    fn execute(&mut self, r: &Request) -> Result<(), RequestError> {
        match r {
            Request::Discard {
                sector, nr_sectors, ..
            } => self.discard(*sector, *nr_sectors),
            Request::Direct { kind, sector, .. } => {
                self.segs.clear();
                self.segs.extend(r.direct_segments());
                self.transfer(*kind, *sector)
            }
            Request::Indirect {
                kind,
                sector,
                nr_segments,
                pages,
            } => {
                self.load_indirect(*nr_segments, pages)?;
                self.transfer(*kind, *sector)
            }
        }
    }

    /// Copy the segment descriptors of an indirect request out of its
    /// pages, checking each.
    fn load_indirect(&mut self, n: u16, pages: &[GrantRef]) -> Result<(), RequestError> {
        self.segs.clear();
        let mut raw = [0u8; 8];
        for (pi, &gref) in pages.iter().enumerate() {
            let page = self.grants.map(gref, false)?;
            let slice = page.read_slice();
            let start = pi * BLKIF_SEGS_PER_INDIRECT_FRAME;
            let end = usize::from(n).min(start + BLKIF_SEGS_PER_INDIRECT_FRAME);
            for i in start..end {
                let off = (i - start) * blkif_request_segment::SIZE;
                slice
                    .read_slice(&mut raw, off)
                    .map_err(|_| RequestError::Io(std::io::ErrorKind::InvalidInput))?;
                let s = blkif_request_segment::read_from(&raw).expect("8 bytes");
                self.segs.push(Segment::new(s, i)?);
            }
        }
        Ok(())
    }

    fn check_range(&self, sector: u64, count: u64) -> Result<(), RequestError> {
        let disk = self.disk.sectors();
        match sector.checked_add(count) {
            Some(end) if end <= disk => Ok(()),
            _ => Err(RequestError::BeyondDisk {
                sector,
                count,
                disk,
            }),
        }
    }

    /// Move the data of `self.segs` between the guest and the disk.
    fn transfer(&mut self, kind: IoKind, sector: u64) -> Result<(), RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.kind());
        if kind.writes() && self.disk.read_only() {
            // A flush without data on a read-only disk has nothing to do.
            if kind == IoKind::WriteDurable && self.segs.is_empty() {
                return Ok(());
            }
            return Err(RequestError::ReadOnly);
        }
        let sectors: u64 = self.segs.iter().map(Segment::sectors).sum();
        if !self.segs.is_empty() {
            self.check_range(sector, sectors)?;
        }
        if kind == IoKind::WriteDurable {
            // Earlier writes are durable before this one's data lands.
            self.disk.flush().map_err(io)?;
        }
        if !self.segs.is_empty() {
            // A read fills the guest's pages: map them writable.
            let writable = kind == IoKind::Read;
            let mapped = self
                .segs
                .iter()
                .map(|s| self.grants.map(s.gref, writable))
                .collect::<Result<Vec<_>, _>>()?;
            let slices = mapped
                .iter()
                .zip(&self.segs)
                .map(|(page, s)| {
                    let whole = if writable {
                        page.write_slice()
                    } else {
                        Some(page.read_slice())
                    };
                    whole
                        .and_then(|w| w.subslice(s.offset(), s.len()).ok())
                        .ok_or(RequestError::Grant(GrantError::ReadOnly(s.gref.0)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let offset = sector * BLKIF_SECTOR_SIZE;
            if writable {
                self.disk.read_at(offset, &slices).map_err(io)?;
            } else {
                self.disk.write_at(offset, &slices).map_err(io)?;
            }
        }
        if kind == IoKind::WriteDurable && !self.segs.is_empty() {
            self.disk.flush().map_err(io)?;
        }
        Ok(())
    }

    fn discard(&mut self, sector: u64, nr_sectors: u64) -> Result<(), RequestError> {
        if self.disk.read_only() {
            return Err(RequestError::ReadOnly);
        }
        if !self.disk.can_discard() {
            return Err(RequestError::DiscardUnsupported);
        }
        self.check_range(sector, nr_sectors)?;
        match self
            .disk
            .discard(sector * BLKIF_SECTOR_SIZE, nr_sectors * BLKIF_SECTOR_SIZE)
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                Err(RequestError::DiscardUnsupported)
            }
            Err(e) => Err(RequestError::Io(e.kind())),
        }
    }
}

#[cfg(test)]
mod tests;
