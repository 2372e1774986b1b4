//! blkback's ring: request decoding and running, from arbitrary bytes.
//!
//! The input is a guest's whole state as blkback sees it: the producer
//! index, the ring entries, the grant entries (flags, domain and frame of
//! each, any of them bad) and the contents of the granted pages (indirect
//! segment descriptors among them). The backend serves the ring over the
//! mock guest memory and an in-memory disk. Invariants: no panic; a ring
//! whose producer index runs more than a ring ahead is refused before any
//! request runs; otherwise every request gets exactly one response with a
//! BLKIF_RSP_* status, and nothing but the ring page stays mapped.
#![no_main]

use std::io;

use backends::blk::{BlkBackend, BlkError, Disk};
use backends::grant::mock::MockGuest;
use backends::grant::GrantAccess;
use backends::ring::mock::MockNotify;
use libfuzzer_sys::fuzz_target;
use vm_memory::VolatileSlice;
use xen_abi::io::blkif::{
    blkif_response, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
};
use xen_abi::layout::Abi;
use xen_abi::GrantRef;

const RAM_FRAMES: u64 = 24;
const RING_GREF: u32 = 0;
const RING_SIZE: u32 = 32;

/// A 64 KiB disk in memory.
struct MemDisk(Vec<u8>);

impl Disk for MemDisk {
    fn sectors(&self) -> u64 {
        self.0.len() as u64 / 512
    }
    fn read_only(&self) -> bool {
        false
    }
    fn can_discard(&self) -> bool {
        true
    }
    fn read_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        let mut at = offset as usize;
        for b in bufs {
            b.copy_from(&self.0[at..at + b.len()]);
            at += b.len();
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        let mut at = offset as usize;
        for b in bufs {
            let n = b.len();
            b.copy_to(&mut self.0[at..at + n]);
            at += n;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.0[offset as usize..(offset + len) as usize].fill(0);
        Ok(())
    }
}

/// Takes bytes off the input, zeros once it is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let k = n.min(self.0.len());
        let mut v = self.0[..k].to_vec();
        self.0 = &self.0[k..];
        v.resize(n, 0);
        v
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let guest = MockGuest::new(RAM_FRAMES, 1);
    // Ring page: gfn 0, granted properly (the fuzzer owns everything else).
    guest.grant(RING_GREF, 0, false);
    let grants = guest.grants();
    let m = grants.pages();

    // Producer index: how many requests, sometimes more than fit.
    let count = u32::from(inp.u8() % 48);
    m.write(0, 0, &count.to_le_bytes());
    m.write(0, 12, &1u32.to_le_bytes());
    let mut first_reads = false;
    for i in 0..count.min(RING_SIZE) as usize {
        let entry = inp.take(112);
        if i == 0 {
            // BLKIF_OP_READ, or BLKIF_OP_INDIRECT wrapping one.
            first_reads = entry[0] == 0 || (entry[0] == 6 && entry[1] == 0);
        }
        m.write(0, 64 + i * 112, &entry);
    }
    // Grant entries 1..=15: flags, domid and frame from the input.
    for gref in 1..16u32 {
        let b = inp.take(4);
        let flags = u16::from(b[0]) | (u16::from(b[1] & 0x1) << 8);
        let domid = u16::from(b[2] & 0x3);
        // Never the ring page itself: a guest granting its ring as a data
        // buffer gets its ring overwritten (and disconnected), which would
        // blur the invariants below. Some frames are beyond RAM.
        let frame = 1 + u32::from(b[3]) % (RAM_FRAMES as u32 + 3);
        m.set_entry(gref, flags, domid, frame);
    }
    // Page contents (indirect descriptors, data) for frames 1..4.
    for gfn in 1..4u64 {
        let page = inp.take(4096);
        m.write(gfn, 0, &page);
    }

    let notify = MockNotify::default();
    let mut b = BlkBackend::connect(
        grants.clone(),
        notify.clone(),
        &[GrantRef(RING_GREF)],
        Box::new(MemDisk(vec![0; 64 << 10])),
        256,
    )
    .expect("the ring page is granted");
    let res = b.service();
    let s = b.stats();
    let ran = s.ok + s.failed;
    match res {
        Err(BlkError::CorruptRing { .. }) => {
            // Refused up front, or the guest had the backend read disk
            // data over its own ring (any request may name the ring's
            // grant as a buffer): its loss, and a disconnect.
            assert!(count > RING_SIZE || ran > 0, "a sane ring was refused");
            if count > RING_SIZE {
                assert_eq!(ran, 0, "ran before checking");
            }
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(more) => {
            assert!(count <= RING_SIZE, "an overfull ring was served");
            assert!(!more);
            let mut rb = [0u8; 4];
            m.read(0, 8, &mut rb);
            assert_eq!(u64::from(u32::from_le_bytes(rb)), ran, "one response each");
            if count == 1 && !first_reads {
                // A lone request that writes nothing into guest pages
                // cannot have touched the ring: its response is intact.
                let mut r = [0u8; 16];
                m.read(0, 64, &mut r);
                let r = blkif_response::read_from(&r).unwrap();
                assert!(
                    [BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP].contains(&r.status),
                    "status {}",
                    r.status
                );
            }
        }
    }
    assert_eq!(grants.pinned(), 1, "only the ring page is mapped");
    drop(b);
    assert_eq!(grants.pinned(), 0);
    // Mapping still behaves after all that.
    let _ = grants.map(GrantRef(1), false);
});
