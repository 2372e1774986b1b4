//! blkback against a mock guest: the test plays xen-blkfront (ring,
//! grants, data pages) and checks responses and the bytes on disk.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vm_memory::VolatileSlice;
use xen_abi::io::blkif::*;
use xen_abi::layout::Abi;

use super::*;
use crate::grant::Grants;
use crate::grant::mock::MockGuest;
use crate::ring::mock::MockNotify;

/// First gfn of data pages; ring pages are gfn 0.. and grefs 8.. for them.
const DATA_GFN: u64 = 32;
const RING_GREF: u32 = 8;
const DATA_GREF: u32 = 100;

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rxen-blkback-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The frontend's side.
struct Front {
    g: Grants<MockGuest>,
    pages: usize,
    size: u32,
    req_prod: u32,
    rsp_cons: u32,
}

impl Front {
    fn new(ring_pages: usize) -> Self {
        let g = MockGuest::new(DATA_GFN + 600, 4).grants();
        for i in 0..ring_pages {
            g.pages().grant(RING_GREF + i as u32, i as u64, false);
        }
        // SHARED_RING_INIT: events at 1.
        g.pages().write(0, 4, &1u32.to_le_bytes());
        g.pages().write(0, 12, &1u32.to_le_bytes());
        Front {
            g,
            pages: ring_pages,
            size: blkif_ring_size(ring_pages),
            req_prod: 0,
            rsp_cons: 0,
        }
    }

    fn ring_refs(&self) -> Vec<GrantRef> {
        (0..self.pages)
            .map(|i| GrantRef(RING_GREF + i as u32))
            .collect()
    }

    fn m(&self) -> &MockGuest {
        self.g.pages()
    }

    /// Write `bytes` at byte `off` of the ring pages (may straddle).
    fn ring_write(&self, mut off: usize, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (page, o) = (off / 4096, off % 4096);
            let n = bytes.len().min(4096 - o);
            self.m().write(page as u64, o, &bytes[..n]);
            bytes = &bytes[n..];
            off += n;
        }
    }

    fn push_raw(&mut self, entry: &[u8; 112]) {
        let off = 64 + (self.req_prod & (self.size - 1)) as usize * 112;
        self.ring_write(off, entry);
        self.req_prod = self.req_prod.wrapping_add(1);
        self.m().write(0, 0, &self.req_prod.to_le_bytes());
    }

    fn push(&mut self, op: u8, id: u64, sector: u64, segs: &[(u32, u8, u8)]) {
        let mut seg = [[0u8; 8]; 11];
        for (i, &(gref, first_sect, last_sect)) in segs.iter().enumerate() {
            blkif_request_segment {
                gref,
                first_sect,
                last_sect,
            }
            .write_to(&mut seg[i]);
        }
        let mut e = [0u8; 112];
        blkif_request {
            operation: op,
            nr_segments: segs.len() as u8,
            handle: 0,
            id,
            sector_number: sector,
            seg,
        }
        .write_to(&mut e);
        self.push_raw(&e);
    }

    /// Responses published since the last call: (id, operation, status).
    fn responses(&mut self) -> Vec<(u64, u8, i16)> {
        let mut b = [0u8; 4];
        self.m().read(0, 8, &mut b);
        let rsp_prod = u32::from_le_bytes(b);
        let mut out = Vec::new();
        while self.rsp_cons != rsp_prod {
            let off = 64 + (self.rsp_cons & (self.size - 1)) as usize * 112;
            let mut r = [0u8; 16];
            self.m().read((off / 4096) as u64, off % 4096, &mut r);
            let r = blkif_response::read_from(&r).unwrap();
            out.push((r.id, r.operation, r.status));
            self.rsp_cons = self.rsp_cons.wrapping_add(1);
        }
        // RING_FINAL_CHECK_FOR_RESPONSES: ask for the next one.
        self.m()
            .write(0, 12, &self.rsp_cons.wrapping_add(1).to_le_bytes());
        out
    }

    /// Grant data page `i` (gfn DATA_GFN + i) as gref DATA_GREF + i.
    fn data_page(&self, i: u32, readonly: bool) -> u32 {
        self.m()
            .grant(DATA_GREF + i, DATA_GFN + u64::from(i), readonly);
        DATA_GREF + i
    }

    fn fill(&self, i: u32, byte: u8) {
        self.m().write(DATA_GFN + u64::from(i), 0, &[byte; 4096]);
    }

    fn page(&self, i: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        self.m().read(DATA_GFN + u64::from(i), 0, &mut b);
        b
    }
}

type Backend = BlkBackend<Grants<MockGuest>, MockNotify>;

fn connect(f: &Front, disk: Box<dyn Disk>, notify: &MockNotify) -> Backend {
    BlkBackend::connect(
        f.g.clone(),
        notify.clone(),
        &f.ring_refs(),
        disk,
        MAX_INDIRECT_SEGMENTS,
    )
    .unwrap()
}

fn raw(path: &std::path::Path, readonly: bool) -> Box<dyn Disk> {
    disk::open(&DiskConfig {
        path: Some(path.to_owned()),
        readonly,
        ..Default::default()
    })
    .unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn write_then_read_back() {
    let dir = TempDir::new("rw");
    let img = dir.file("disk.img", &vec![0u8; 1 << 20]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);

    let g0 = f.data_page(0, true);
    let g1 = f.data_page(1, true);
    let p0 = pattern(4096, 1);
    let p1 = pattern(4096, 2);
    f.m().write(DATA_GFN, 0, &p0);
    f.m().write(DATA_GFN + 1, 0, &p1);
    // Sectors 0..=7 of page 0, then sectors 2..=3 of page 1, at sector 10.
    f.push(BLKIF_OP_WRITE, 0xabc, 10, &[(g0, 0, 7), (g1, 2, 3)]);
    assert!(!b.service().unwrap());
    assert_eq!(f.responses(), vec![(0xabc, BLKIF_OP_WRITE, BLKIF_RSP_OKAY)]);
    assert_eq!(n.count(), 1);

    let disk = std::fs::read(&img).unwrap();
    assert_eq!(&disk[5120..5120 + 4096], &p0[..]);
    assert_eq!(&disk[9216..9216 + 1024], &p1[1024..2048]);
    assert!(disk[..5120].iter().all(|&x| x == 0));
    assert!(disk[10240..].iter().all(|&x| x == 0));

    // Read it back into other pages, at other offsets.
    let r0 = f.data_page(2, false);
    let r1 = f.data_page(3, false);
    f.fill(2, 0xee);
    f.fill(3, 0xee);
    f.push(BLKIF_OP_READ, 7, 10, &[(r0, 4, 7), (r1, 0, 5)]);
    b.service().unwrap();
    assert_eq!(f.responses(), vec![(7, BLKIF_OP_READ, BLKIF_RSP_OKAY)]);
    let q0 = f.page(2);
    assert!(q0[..2048].iter().all(|&x| x == 0xee), "outside the segment");
    assert_eq!(&q0[2048..], &p0[..2048]);
    let q1 = f.page(3);
    assert_eq!(&q1[..2048], &p0[2048..]);
    assert_eq!(&q1[2048..3072], &p1[1024..2048]);
    assert!(q1[3072..].iter().all(|&x| x == 0xee));

    assert_eq!(b.stats(), BlkStats { ok: 2, failed: 0 });
    assert_eq!(f.g.pinned(), 1, "only the ring page stays mapped");
    for i in 0..4 {
        assert!(f.m().end_access(DATA_GREF + i), "data grant {i} released");
    }
    drop(b);
    assert_eq!(f.g.pinned(), 0);
}

/// Records the order of disk operations.
struct Recording {
    inner: Box<dyn Disk>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Disk for Recording {
    fn sectors(&self) -> u64 {
        self.inner.sectors()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn can_discard(&self) -> bool {
        self.inner.can_discard()
    }
    fn read_at(&mut self, o: u64, b: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.log.lock().unwrap().push("read");
        self.inner.read_at(o, b)
    }
    fn write_at(&mut self, o: u64, b: &[VolatileSlice<'_>]) -> io::Result<()> {
        self.log.lock().unwrap().push("write");
        self.inner.write_at(o, b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.log.lock().unwrap().push("flush");
        self.inner.flush()
    }
    fn discard(&mut self, o: u64, l: u64) -> io::Result<()> {
        self.log.lock().unwrap().push("discard");
        self.inner.discard(o, l)
    }
}

#[test]
fn flush_and_barrier_are_durable_points() {
    let dir = TempDir::new("flush");
    let img = dir.file("disk.img", &vec![0u8; 64 << 10]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let disk = Recording {
        inner: raw(&img, false),
        log: log.clone(),
    };
    let mut b = connect(&f, Box::new(disk), &n);
    let g = f.data_page(0, true);
    f.fill(0, 0x5a);
    f.push(BLKIF_OP_WRITE, 1, 0, &[(g, 0, 0)]);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, &[]);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 3, 8, &[(g, 0, 1)]);
    f.push(BLKIF_OP_WRITE_BARRIER, 4, 16, &[(g, 0, 0)]);
    b.service().unwrap();
    assert_eq!(
        f.responses(),
        vec![
            (1, BLKIF_OP_WRITE, 0),
            (2, BLKIF_OP_FLUSH_DISKCACHE, 0),
            (3, BLKIF_OP_FLUSH_DISKCACHE, 0),
            (4, BLKIF_OP_WRITE_BARRIER, 0)
        ]
    );
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "write", "flush", // the empty flush
            "flush", "write", "flush", // flush with data: before and after
            "flush", "write", "flush", // barrier
        ]
    );
    let d = std::fs::read(&img).unwrap();
    assert!(d[..512].iter().all(|&x| x == 0x5a));
    assert!(d[4096..5120].iter().all(|&x| x == 0x5a));
    assert!(d[8192..8704].iter().all(|&x| x == 0x5a));
    assert!(d[512..4096].iter().all(|&x| x == 0));
}

#[test]
fn read_only_disk_refuses_writes() {
    let dir = TempDir::new("ro");
    let img = dir.file("disk.img", &[0x33u8; 8192]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, true), &n);
    let g = f.data_page(0, false);
    f.fill(0, 0x77);
    f.push(BLKIF_OP_WRITE, 1, 0, &[(g, 0, 7)]);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, &[]);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 3, 0, &[(g, 0, 7)]);
    f.push(BLKIF_OP_READ, 4, 8, &[(g, 0, 7)]);
    let mut d = [0u8; 32];
    blkif_request_discard {
        operation: BLKIF_OP_DISCARD,
        flag: 0,
        handle: 0,
        id: 5,
        sector_number: 0,
        nr_sectors: 8,
    }
    .write_to(&mut d);
    let mut e = [0u8; 112];
    e[..32].copy_from_slice(&d);
    f.push_raw(&e);
    b.service().unwrap();
    assert_eq!(
        f.responses(),
        vec![
            (1, BLKIF_OP_WRITE, BLKIF_RSP_ERROR),
            (2, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY),
            (3, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_ERROR),
            (4, BLKIF_OP_READ, BLKIF_RSP_OKAY),
            (5, BLKIF_OP_DISCARD, BLKIF_RSP_ERROR),
        ]
    );
    assert_eq!(std::fs::read(&img).unwrap(), vec![0x33u8; 8192]);
    assert_eq!(f.page(0), vec![0x33u8; 4096]);
}

#[test]
fn hostile_requests_fail_and_leave_nothing_mapped() {
    let dir = TempDir::new("hostile");
    let img = dir.file("disk.img", &vec![0u8; 64 << 10]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    let g = f.data_page(0, false);
    let ro = f.data_page(1, true);
    f.fill(1, 0x11);
    let disk_sectors = 128;
    // (operation, sector, segments, expected status)
    type Case = (u8, u64, Vec<(u32, u8, u8)>, i16);
    let cases: Vec<Case> = vec![
        // Ungranted reference, reference past the grant table.
        (BLKIF_OP_READ, 0, vec![(9999, 0, 7)], BLKIF_RSP_ERROR),
        (BLKIF_OP_READ, 0, vec![(u32::MAX, 0, 7)], BLKIF_RSP_ERROR),
        // Reading into a page the guest granted read-only.
        (BLKIF_OP_READ, 0, vec![(ro, 0, 7)], BLKIF_RSP_ERROR),
        // Sector ranges inside the page.
        (BLKIF_OP_READ, 0, vec![(g, 5, 4)], BLKIF_RSP_ERROR),
        (BLKIF_OP_READ, 0, vec![(g, 0, 8)], BLKIF_RSP_ERROR),
        // Past the end of the disk, and wrapping around u64.
        (
            BLKIF_OP_READ,
            disk_sectors - 7,
            vec![(g, 0, 7)],
            BLKIF_RSP_ERROR,
        ),
        (
            BLKIF_OP_WRITE,
            u64::MAX - 3,
            vec![(ro, 0, 7)],
            BLKIF_RSP_ERROR,
        ),
        // No segments, too many.
        (BLKIF_OP_READ, 0, vec![], BLKIF_RSP_ERROR),
        (BLKIF_OP_WRITE, 0, vec![(ro, 0, 0); 12], BLKIF_RSP_ERROR),
        // Unknown operation.
        (42, 0, vec![], BLKIF_RSP_EOPNOTSUPP),
        // The last good sector still works.
        (
            BLKIF_OP_READ,
            disk_sectors - 8,
            vec![(g, 0, 7)],
            BLKIF_RSP_OKAY,
        ),
    ];
    for (i, (op, sector, segs, _)) in cases.iter().enumerate() {
        if segs.len() > 11 {
            // nr_segments says 12; the entry only holds 11.
            let mut e = [0u8; 112];
            blkif_request {
                operation: *op,
                nr_segments: 12,
                handle: 0,
                id: i as u64,
                sector_number: *sector,
                seg: [[0; 8]; 11],
            }
            .write_to(&mut e);
            f.push_raw(&e);
        } else {
            f.push(*op, i as u64, *sector, segs);
        }
    }
    b.service().unwrap();
    let got = f.responses();
    let want: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64, c.0, c.3))
        .collect();
    assert_eq!(got, want);
    assert_eq!(std::fs::read(&img).unwrap(), vec![0u8; 64 << 10]);
    assert_eq!(f.page(1), vec![0x11u8; 4096], "read-only page untouched");
    assert_eq!(f.g.pinned(), 1, "only the ring");
    assert!(f.m().end_access(g) && f.m().end_access(ro));
}

#[test]
fn corrupt_ring_indices_disconnect() {
    let dir = TempDir::new("corrupt");
    let img = dir.file("disk.img", &vec![0u8; 4096]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    // One more request than the ring holds.
    f.req_prod = f.size;
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, &[]);
    let e = b.service().unwrap_err();
    assert!(
        matches!(
            e,
            BlkError::CorruptRing {
                req_prod: 33,
                rsp_prod: 0,
                size: 32
            }
        ),
        "{e:?}"
    );
    assert_eq!(b.stats(), BlkStats::default(), "nothing was run");
    // A producer index behind the consumer is just as impossible.
    f.m().write(0, 0, &u32::MAX.to_le_bytes());
    assert!(b.service().is_err());
}

#[test]
fn bad_ring_setups_are_refused() {
    let f = Front::new(4);
    let n = MockNotify::default();
    let dir = TempDir::new("setup");
    let img = dir.file("disk.img", &vec![0u8; 4096]);
    let refs = f.ring_refs();
    for bad in [&refs[..3], &refs[..0]] {
        assert!(matches!(
            BlkBackend::connect(f.g.clone(), n.clone(), bad, raw(&img, false), 0),
            Err(BlkError::RingPages(_))
        ));
    }
    let many: Vec<_> = (0..32).map(|_| refs[0]).collect();
    assert!(matches!(
        BlkBackend::connect(f.g.clone(), n.clone(), &many, raw(&img, false), 0),
        Err(BlkError::RingPages(32))
    ));
    let bad_ref = [refs[0], GrantRef(7777)];
    assert!(matches!(
        BlkBackend::connect(f.g.clone(), n.clone(), &bad_ref, raw(&img, false), 0),
        Err(BlkError::MapRing { index: 1, .. })
    ));
    assert_eq!(f.g.pinned(), 0, "the first page was released again");
}

#[test]
fn multi_page_ring_straddling_entries() {
    let dir = TempDir::new("multipage");
    let img = dir.file("disk.img", &vec![0u8; 1 << 20]);
    let mut f = Front::new(4);
    assert_eq!(f.size, 128);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    let g = f.data_page(0, true);
    let data = pattern(4096, 9);
    f.m().write(DATA_GFN, 0, &data);
    // Three rounds of 100 requests: the indices wrap the 128-entry ring and
    // many entries straddle page boundaries. Request i writes sector i%8
    // of the page to disk sector round*100 + i.
    for round in 0..3u64 {
        let mut expect = Vec::new();
        for i in 0..100u64 {
            let id = round * 1000 + i;
            let s = (i % 8) as u8;
            f.push(BLKIF_OP_WRITE, id, round * 100 + i, &[(g, s, s)]);
            expect.push((id, BLKIF_OP_WRITE, BLKIF_RSP_OKAY));
        }
        b.service().unwrap();
        assert_eq!(f.responses(), expect, "round {round}");
    }
    assert_eq!(b.stats().ok, 300);
    let d = std::fs::read(&img).unwrap();
    for i in 0..300usize {
        let s = i % 100 % 8;
        assert_eq!(
            &d[i * 512..(i + 1) * 512],
            &data[s * 512..(s + 1) * 512],
            "sector {i}"
        );
    }
}

#[test]
fn indirect_read_and_write() {
    let dir = TempDir::new("indirect");
    let img = dir.file("disk.img", &vec![0u8; 4 << 20]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    // 100 full-page segments, descriptors in one indirect page (gfn of
    // data page 500, granted read-only as blkfront does).
    let ind = f.data_page(500, true);
    let mut desc = Vec::new();
    for i in 0..100u32 {
        let gref = f.data_page(i, true);
        f.m()
            .write(DATA_GFN + u64::from(i), 0, &pattern(4096, i as u8));
        desc.extend_from_slice(
            &blkif_request_segment {
                gref,
                first_sect: 0,
                last_sect: 7,
            }
            .to_bytes(),
        );
    }
    f.m().write(DATA_GFN + 500, 0, &desc);
    let push_indirect = |f: &mut Front, op: u8, id: u64, nseg: u16| {
        let mut e = [0u8; 112];
        blkif_request_indirect {
            operation: BLKIF_OP_INDIRECT,
            indirect_op: op,
            nr_segments: nseg,
            id,
            sector_number: 16,
            handle: 0,
            indirect_grefs: [ind, 0, 0, 0, 0, 0, 0, 0],
        }
        .write_to(&mut e);
        f.push_raw(&e);
    };
    push_indirect(&mut f, BLKIF_OP_WRITE, 1, 100);
    b.service().unwrap();
    assert_eq!(f.responses(), vec![(1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY)]);
    let d = std::fs::read(&img).unwrap();
    for i in 0..100usize {
        let at = 16 * 512 + i * 4096;
        assert_eq!(&d[at..at + 4096], &pattern(4096, i as u8)[..], "page {i}");
    }
    // Read it back over pages re-granted writable.
    for i in 0..100u32 {
        f.m().grant(DATA_GREF + i, DATA_GFN + u64::from(i), false);
        f.fill(i, 0);
    }
    push_indirect(&mut f, BLKIF_OP_READ, 2, 100);
    // Too many segments, and a descriptor made bad.
    push_indirect(&mut f, BLKIF_OP_READ, 3, MAX_INDIRECT_SEGMENTS + 1);
    b.service().unwrap();
    assert_eq!(
        f.responses(),
        vec![
            (2, BLKIF_OP_READ, BLKIF_RSP_OKAY),
            (3, BLKIF_OP_READ, BLKIF_RSP_ERROR)
        ]
    );
    for i in 0..100u32 {
        assert_eq!(f.page(i), pattern(4096, i as u8), "page {i}");
    }
    f.m().write(DATA_GFN + 500, 8 * 50 + 5, &[9]); // segment 50: last_sect 9
    push_indirect(&mut f, BLKIF_OP_READ, 4, 100);
    b.service().unwrap();
    assert_eq!(f.responses(), vec![(4, BLKIF_OP_READ, BLKIF_RSP_ERROR)]);
    assert_eq!(f.g.pinned(), 1);
}

#[test]
fn discard_punches_zeros() {
    let dir = TempDir::new("discard");
    let img = dir.file("disk.img", &[0xffu8; 64 << 10]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    let push_discard = |f: &mut Front, id, sector, nr_sectors| {
        let mut e = [0u8; 112];
        blkif_request_discard {
            operation: BLKIF_OP_DISCARD,
            flag: 0,
            handle: 0,
            id,
            sector_number: sector,
            nr_sectors,
        }
        .write_to(&mut e);
        f.push_raw(&e);
    };
    push_discard(&mut f, 1, 8, 16);
    push_discard(&mut f, 2, 120, 9);
    push_discard(&mut f, 3, u64::MAX, 2);
    b.service().unwrap();
    assert_eq!(
        f.responses(),
        vec![
            (1, BLKIF_OP_DISCARD, BLKIF_RSP_OKAY),
            (2, BLKIF_OP_DISCARD, BLKIF_RSP_ERROR),
            (3, BLKIF_OP_DISCARD, BLKIF_RSP_ERROR)
        ]
    );
    let d = std::fs::read(&img).unwrap();
    assert!(d[..4096].iter().all(|&x| x == 0xff));
    assert!(d[4096..12288].iter().all(|&x| x == 0));
    assert!(d[12288..].iter().all(|&x| x == 0xff));
}

#[test]
fn empty_cdrom_fails_reads() {
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let cd = disk::open(&DiskConfig {
        cdrom: true,
        readonly: true,
        ..Default::default()
    })
    .unwrap();
    let mut b = connect(&f, cd, &n);
    let g = f.data_page(0, false);
    f.push(BLKIF_OP_READ, 1, 0, &[(g, 0, 0)]);
    b.service().unwrap();
    assert_eq!(f.responses(), vec![(1, BLKIF_OP_READ, BLKIF_RSP_ERROR)]);
}

#[test]
fn notification_hold_off() {
    let dir = TempDir::new("notify");
    let img = dir.file("disk.img", &vec![0u8; 4096]);
    let mut f = Front::new(1);
    let n = MockNotify::default();
    let mut b = connect(&f, raw(&img, false), &n);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 1, 0, &[]);
    b.service().unwrap();
    assert_eq!(n.count(), 1);
    // The frontend has not consumed the response, nor moved rsp_event:
    // a second response needs no new notification.
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, &[]);
    b.service().unwrap();
    assert_eq!(n.count(), 1);
    assert_eq!(f.responses().len(), 2);
    f.push(BLKIF_OP_FLUSH_DISKCACHE, 3, 0, &[]);
    b.service().unwrap();
    assert_eq!(n.count(), 2);
    // The backend asked for the next request.
    let mut r = [0u8; 4];
    f.m().read(0, 4, &mut r);
    assert_eq!(u32::from_le_bytes(r), 4);
}

/// qcow2 images made and checked by QEMU's own tools (package qemu-utils,
/// which tests/run installs): a test fails, rather than passing vacuously,
/// where they are missing.
mod qcow2_images {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn tool(name: &str, args: &[&str]) -> String {
        let out = Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {name} failed ({e}): install qemu-utils"));
        assert!(
            out.status.success(),
            "{name} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    fn check(img: &Path) {
        let out = tool("qemu-img", &["check", s(img)]);
        assert!(out.contains("No errors were found"), "{out}");
    }

    fn to_raw(dir: &TempDir, img: &Path) -> Vec<u8> {
        let out = dir.0.join("converted.raw");
        tool(
            "qemu-img",
            &["convert", "-f", "qcow2", "-O", "raw", s(img), s(&out)],
        );
        std::fs::read(out).unwrap()
    }

    fn qcow2(path: &Path, readonly: bool) -> Box<dyn Disk> {
        disk::open(&DiskConfig {
            path: Some(path.to_owned()),
            format: DiskFormat::Qcow2,
            readonly,
            ..Default::default()
        })
        .unwrap()
    }

    /// The guest writes over a raw backing file through blkback; QEMU's
    /// tools find a consistent image holding base + writes, base untouched.
    #[test]
    fn overlay_on_raw_base_through_the_ring() {
        let dir = TempDir::new("qcow2-raw-base");
        let base_data = pattern(1 << 20, 3);
        let base = dir.file("base.raw", &base_data);
        let top = dir.0.join("top.qcow2");
        tool(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                s(&base),
                "-F",
                "raw",
                s(&top),
            ],
        );
        let mut f = Front::new(2);
        let n = MockNotify::default();
        let mut b = connect(&f, qcow2(&top, false), &n);
        assert_eq!(b.disk().sectors(), 2048);

        // Read through to the base: 3 pages at sector 100 (unaligned to
        // clusters and pages).
        for i in 0..3 {
            f.data_page(i, false);
            f.fill(i, 0);
        }
        f.push(
            BLKIF_OP_READ,
            1,
            100,
            &[
                (DATA_GREF, 0, 7),
                (DATA_GREF + 1, 0, 7),
                (DATA_GREF + 2, 0, 7),
            ],
        );
        b.service().unwrap();
        assert_eq!(f.responses(), vec![(1, BLKIF_OP_READ, BLKIF_RSP_OKAY)]);
        for i in 0..3usize {
            let at = 100 * 512 + i * 4096;
            assert_eq!(f.page(i as u32), &base_data[at..at + 4096], "page {i}");
        }

        // Write a partial cluster (copy-on-write from the base) and a
        // region across a cluster boundary (64 KiB clusters), then flush.
        let w = f.data_page(10, true);
        let wdata = pattern(4096, 77);
        f.m().write(DATA_GFN + 10, 0, &wdata);
        f.push(BLKIF_OP_WRITE, 2, 3, &[(w, 1, 3)]);
        f.push(BLKIF_OP_WRITE, 3, 124, &[(w, 0, 7), (w, 0, 7)]);
        f.push(BLKIF_OP_FLUSH_DISKCACHE, 4, 0, &[]);
        b.service().unwrap();
        assert_eq!(
            f.responses(),
            vec![
                (2, BLKIF_OP_WRITE, BLKIF_RSP_OKAY),
                (3, BLKIF_OP_WRITE, BLKIF_RSP_OKAY),
                (4, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY)
            ]
        );
        // What QEMU sees right after the flush, with the backend still open.
        let mut expect = base_data.clone();
        expect[3 * 512..6 * 512].copy_from_slice(&wdata[512..2048]);
        expect[124 * 512..124 * 512 + 4096].copy_from_slice(&wdata);
        expect[132 * 512..132 * 512 + 4096].copy_from_slice(&wdata);
        check(&top);
        let got = to_raw(&dir, &top);
        if let Some(i) = (0..expect.len()).find(|&i| got[i] != expect[i]) {
            panic!("image differs after flush at byte {i} (sector {})", i / 512);
        }
        drop(b);
        check(&top);
        assert_eq!(std::fs::read(&base).unwrap(), base_data, "base untouched");
        assert!(
            std::fs::metadata(&top).unwrap().len() < 1 << 20,
            "only written clusters are allocated"
        );
    }

    /// qcow2 over qcow2 over qcow2 (the middle layer written by qemu-io),
    /// v3 and a v2 (compat=0.10) top.
    #[test]
    fn backing_chain_of_qcow2() {
        let dir = TempDir::new("qcow2-chain");
        let base_data = pattern(2 << 20, 5);
        let base_raw = dir.file("base.raw", &base_data);
        let base = dir.0.join("base.qcow2");
        tool(
            "qemu-img",
            &[
                "convert",
                "-q",
                "-f",
                "raw",
                "-O",
                "qcow2",
                s(&base_raw),
                s(&base),
            ],
        );
        let mid = dir.0.join("mid.qcow2");
        tool(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                s(&base),
                "-F",
                "qcow2",
                s(&mid),
            ],
        );
        tool("qemu-io", &["-c", "write -q -P 0xab 65536 65536", s(&mid)]);
        for compat in ["1.1", "0.10"] {
            let top = dir.0.join(format!("top-{compat}.qcow2"));
            tool(
                "qemu-img",
                &[
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-o",
                    &format!("compat={compat}"),
                    "-b",
                    s(&mid),
                    "-F",
                    "qcow2",
                    s(&top),
                ],
            );
            let mut d = qcow2(&top, false);
            assert_eq!(d.sectors(), 4096);
            let mut buf = vec![0u8; 3 * 65536];
            d.read_at(0, &[VolatileSlice::from(&mut buf[..])]).unwrap();
            assert_eq!(&buf[..65536], &base_data[..65536], "from the base");
            assert!(buf[65536..131072].iter().all(|&x| x == 0xab), "from mid");
            assert_eq!(&buf[131072..], &base_data[131072..196608], "base again");

            let mut w = vec![0x5cu8; 1024];
            d.write_at(65536 + 512, &[VolatileSlice::from(&mut w[..])])
                .unwrap();
            if compat == "1.1" {
                d.discard(1 << 20, 65536).unwrap();
                assert!(d.can_discard());
            } else {
                // v2 has no zero clusters: no discard, and none offered.
                assert!(!d.can_discard());
                assert_eq!(
                    d.discard(1 << 20, 65536).unwrap_err().kind(),
                    io::ErrorKind::Unsupported
                );
            }
            d.flush().unwrap();
            drop(d);
            check(&top);
            let got = to_raw(&dir, &top);
            let mut expect = base_data.clone();
            expect[65536..131072].fill(0xab);
            expect[65536 + 512..65536 + 1536].fill(0x5c);
            assert_eq!(got.len(), expect.len());
            // The discarded cluster reads as anything (zeros or the
            // backing file's data); everything else exactly.
            assert!(got[..1 << 20] == expect[..1 << 20], "compat {compat}");
            assert!(got[(1 << 20) + 65536..] == expect[(1 << 20) + 65536..]);
        }
        // The lower layers were only read.
        let mid_raw = to_raw(&dir, &mid);
        assert!(mid_raw[65536..131072].iter().all(|&x| x == 0xab));
        assert!(
            mid_raw[65536 + 512..65536 + 1536]
                .iter()
                .all(|&x| x == 0xab)
        );
    }

    #[test]
    fn read_only_qcow2_and_bad_images() {
        let dir = TempDir::new("qcow2-ro");
        let img = dir.0.join("ro.qcow2");
        tool("qemu-img", &["create", "-q", "-f", "qcow2", s(&img), "1M"]);
        let before = std::fs::read(&img).unwrap();
        let mut f = Front::new(1);
        let n = MockNotify::default();
        let mut b = connect(&f, qcow2(&img, true), &n);
        let g = f.data_page(0, false);
        f.fill(0, 0x99);
        f.push(BLKIF_OP_WRITE, 1, 0, &[(g, 0, 7)]);
        f.push(BLKIF_OP_READ, 2, 0, &[(g, 0, 7)]);
        b.service().unwrap();
        assert_eq!(
            f.responses(),
            vec![
                (1, BLKIF_OP_WRITE, BLKIF_RSP_ERROR),
                (2, BLKIF_OP_READ, BLKIF_RSP_OKAY)
            ]
        );
        assert_eq!(f.page(0), vec![0u8; 4096], "unallocated reads as zeros");
        drop(b);
        assert_eq!(std::fs::read(&img).unwrap(), before);

        // A raw file is no qcow2 image; a missing backing file is an error
        // at open, not at the first read.
        let not = dir.file("not.qcow2", &[0u8; 65536]);
        let e = disk::open(&DiskConfig {
            path: Some(not),
            format: DiskFormat::Qcow2,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(matches!(e, DiskError::Qcow2 { .. }), "{e:?}");
        let orphan = dir.0.join("orphan.qcow2");
        let gone = dir.file("gone.raw", &[0u8; 65536]);
        tool(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                s(&gone),
                "-F",
                "raw",
                s(&orphan),
            ],
        );
        std::fs::remove_file(&gone).unwrap();
        assert!(
            disk::open(&DiskConfig {
                path: Some(orphan),
                format: DiskFormat::Qcow2,
                ..Default::default()
            })
            .is_err()
        );
    }
}

/// The `vbd` device through the xenbus handshake, with a mock store.
mod handshake {
    use super::*;
    use crate::blk::xenbus::{BlkDevice, EventChannels};
    use crate::xenbus::mock::MockStore;
    use crate::xenbus::{Outcome, XenbusBackend};
    use xen_abi::DomId;

    #[derive(Debug, Default)]
    struct Events {
        bound: Vec<u32>,
        notify: MockNotify,
    }

    impl EventChannels for Events {
        type Port = MockNotify;
        fn bind(&mut self, port: u32) -> Result<MockNotify, String> {
            if port >= 4096 {
                return Err("no such port".to_owned());
            }
            self.bound.push(port);
            Ok(self.notify.clone())
        }
    }

    const BE: &str = "/local/domain/0/backend/vbd/5/51712";
    const FE: &str = "/local/domain/5/device/vbd/51712";

    type Dev = XenbusBackend<BlkDevice<Grants<MockGuest>, Events>>;

    fn setup(f: &Front, cfg: DiskConfig) -> (MockStore, Dev) {
        let s = MockStore::default();
        for (k, v) in [
            ("frontend", FE),
            ("frontend-id", "5"),
            ("online", "1"),
            ("state", "1"),
            ("device-type", "disk"),
        ] {
            s.set(&format!("{BE}/{k}"), v);
        }
        s.set(&format!("{FE}/backend"), BE);
        s.set(&format!("{FE}/state"), "1");
        let disk = disk::open(&cfg).unwrap();
        let dev = BlkDevice::new(cfg, disk, f.g.clone(), Events::default());
        (s, XenbusBackend::new(dev, DomId(0), DomId(5), 51712))
    }

    fn node(s: &MockStore, n: &str) -> String {
        s.get(&format!("{BE}/{n}"))
            .unwrap_or_else(|| panic!("{n} missing"))
    }

    fn front_ready(s: &MockStore, f: &Front, order: Option<u32>, port: &str) {
        match order {
            None => s.set(&format!("{FE}/ring-ref"), &RING_GREF.to_string()),
            Some(o) => {
                s.set(&format!("{FE}/ring-page-order"), &o.to_string());
                for i in 0..f.pages {
                    s.set(
                        &format!("{FE}/ring-ref{i}"),
                        &(RING_GREF + i as u32).to_string(),
                    );
                }
            }
        }
        s.set(&format!("{FE}/event-channel"), port);
        s.set(&format!("{FE}/protocol"), "x86_64-abi");
        s.set(&format!("{FE}/state"), "3");
    }

    #[test]
    fn media_change_under_a_live_connection() {
        let dir = TempDir::new("media");
        let iso = dir.file("cd.iso", &pattern(8192, 7));
        let mut f = Front::new(1);
        let empty = DiskConfig {
            path: None,
            readonly: true,
            cdrom: true,
            ..Default::default()
        };
        let (mut s, mut xb) = setup(&f, empty.clone());
        xb.start(&mut s, "vbd-51712").unwrap();
        assert_eq!(node(&s, "sectors"), "0");
        front_ready(&s, &f, None, "9");
        xb.handle(&mut s).unwrap();
        assert_eq!(node(&s, "state"), "4");
        // An empty drive: every read is out of range.
        let g = f.data_page(0, false);
        f.push(BLKIF_OP_READ, 1, 0, &[(g, 0, 0)]);
        xb.device_mut().connection().unwrap().service().unwrap();
        assert_eq!(f.responses(), vec![(1, BLKIF_OP_READ, BLKIF_RSP_ERROR)]);

        // cd-insert: the new size is published, the state rewritten (the
        // frontend's cue to reread it), and reads see the medium.
        let cfg = DiskConfig {
            path: Some(iso.clone()),
            ..empty.clone()
        };
        xb.device_mut()
            .change_media(cfg.clone(), disk::open(&cfg).unwrap());
        s.set(&format!("{BE}/state"), "stale");
        xb.republish(&mut s).unwrap();
        assert_eq!(node(&s, "sectors"), "16");
        assert_eq!(node(&s, "state"), "4");
        assert_eq!(xb.device().config().path.as_deref(), Some(iso.as_path()));
        f.push(BLKIF_OP_READ, 2, 1, &[(g, 0, 0)]);
        xb.device_mut().connection().unwrap().service().unwrap();
        assert_eq!(f.responses(), vec![(2, BLKIF_OP_READ, BLKIF_RSP_OKAY)]);
        assert_eq!(&f.page(0)[..512], &pattern(8192, 7)[512..1024]);

        // cd-eject: back to no sectors; still connected.
        xb.device_mut()
            .change_media(empty.clone(), disk::open(&empty).unwrap());
        xb.republish(&mut s).unwrap();
        assert_eq!(node(&s, "sectors"), "0");
        assert!(xb.device_mut().connection().is_some());
        f.push(BLKIF_OP_READ, 3, 0, &[(g, 0, 0)]);
        xb.device_mut().connection().unwrap().service().unwrap();
        assert_eq!(f.responses(), vec![(3, BLKIF_OP_READ, BLKIF_RSP_ERROR)]);

        // Not connected: the next connection serves the new medium.
        s.set(&format!("{FE}/state"), "6");
        xb.handle(&mut s).unwrap();
        xb.device_mut()
            .change_media(cfg.clone(), disk::open(&cfg).unwrap());
        xb.republish(&mut s).unwrap();
        assert_eq!(node(&s, "sectors"), "16");
    }

    #[test]
    fn connect_serve_close_and_reconnect() {
        let dir = TempDir::new("handshake");
        let img = dir.file("disk.img", &vec![0u8; 1 << 20]);
        let mut f = Front::new(4);
        let (mut s, mut xb) = setup(
            &f,
            DiskConfig {
                path: Some(img.clone()),
                ..Default::default()
            },
        );
        xb.start(&mut s, "vbd-51712").unwrap();
        assert_eq!(node(&s, "state"), "2");
        for (n, v) in [
            ("sectors", "2048"),
            ("sector-size", "512"),
            ("info", "0"),
            ("feature-flush-cache", "1"),
            ("feature-discard", "1"),
            ("discard-granularity", "4096"),
            ("feature-max-indirect-segments", "256"),
            ("max-ring-page-order", "4"),
        ] {
            assert_eq!(node(&s, n), v, "{n}");
        }

        front_ready(&s, &f, Some(2), "33");
        xb.handle(&mut s).unwrap();
        assert_eq!(node(&s, "state"), "4");
        assert_eq!(xb.device().events().bound, vec![33]);
        assert_eq!(f.g.pinned(), 4, "four ring pages mapped");

        let g = f.data_page(0, true);
        f.fill(0, 0xc3);
        f.push(BLKIF_OP_WRITE, 1, 8, &[(g, 0, 7)]);
        let conn = xb.device_mut().connection().unwrap();
        conn.service().unwrap();
        assert_eq!(f.responses(), vec![(1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY)]);
        assert_eq!(xb.device().events().notify.count(), 1);

        // The guest's driver goes away and comes back with a one-page ring.
        s.set(&format!("{FE}/state"), "5");
        xb.handle(&mut s).unwrap();
        assert!(xb.device_mut().connection().is_none());
        assert_eq!(f.g.pinned(), 0, "ring released on disconnect");
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(xb.handle(&mut s).unwrap(), Outcome::Running);
        assert_eq!(node(&s, "state"), "6");
        s.remove(&format!("{FE}/ring-page-order"));
        let mut f1 = Front::new(1);
        f1.g = f.g.clone();
        f1.m().write(0, 0, &[0u8; 16]);
        s.set(&format!("{FE}/state"), "1");
        xb.handle(&mut s).unwrap();
        assert_eq!(node(&s, "state"), "2");
        front_ready(&s, &f1, None, "34");
        xb.handle(&mut s).unwrap();
        assert_eq!(node(&s, "state"), "4");
        let r = f1.data_page(1, false);
        f1.push(BLKIF_OP_READ, 2, 8, &[(r, 0, 7)]);
        xb.device_mut().connection().unwrap().service().unwrap();
        assert_eq!(f1.responses(), vec![(2, BLKIF_OP_READ, BLKIF_RSP_OKAY)]);
        assert_eq!(f1.page(1), vec![0xc3u8; 4096], "the write survived");

        // Removal.
        s.set(&format!("{BE}/online"), "0");
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(xb.handle(&mut s).unwrap(), Outcome::Removed);
        xb.stop(&mut s, "vbd-51712").unwrap();
        assert_eq!(f.g.pinned(), 0);
        let d = std::fs::read(&img).unwrap();
        assert!(d[4096..8192].iter().all(|&x| x == 0xc3));
    }

    #[test]
    fn hostile_frontend_nodes() {
        let dir = TempDir::new("handshake-hostile");
        let img = dir.file("disk.img", &vec![0u8; 65536]);
        let cfg = DiskConfig {
            path: Some(img),
            ..Default::default()
        };
        // (the error expected, what the frontend gets wrong)
        type Spoil = Box<dyn Fn(&MockStore)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "ring-page-order node is invalid",
                Box::new(|s| s.set(&format!("{FE}/ring-page-order"), "5")),
            ),
            (
                "ring-page-order node is invalid",
                Box::new(|s| s.set(&format!("{FE}/ring-page-order"), "-1")),
            ),
            (
                "protocol node is invalid",
                Box::new(|s| s.set(&format!("{FE}/protocol"), "x86_32-abi")),
            ),
            (
                "mapping the ring",
                Box::new(|s| s.set(&format!("{FE}/ring-ref"), "4000")),
            ),
            (
                "ring-ref node is invalid",
                Box::new(|s| s.set(&format!("{FE}/ring-ref"), "1 2")),
            ),
            (
                "binding event channel 5000",
                Box::new(|s| s.set(&format!("{FE}/event-channel"), "5000")),
            ),
            (
                "multi-queue-num-queues node is invalid",
                Box::new(|s| s.set(&format!("{FE}/multi-queue-num-queues"), "4")),
            ),
        ];
        for (want, spoil) in cases {
            let f = Front::new(1);
            let (mut s, mut xb) = setup(&f, cfg.clone());
            xb.start(&mut s, "t").unwrap();
            front_ready(&s, &f, None, "7");
            spoil(&s);
            xb.handle(&mut s).unwrap();
            assert_eq!(node(&s, "state"), "5", "{want}");
            let e = node(&s, "error");
            assert!(e.contains(want), "{e} vs {want}");
            assert!(xb.device_mut().connection().is_none());
            assert_eq!(f.g.pinned(), 0, "{want}: nothing left mapped");
        }
    }

    #[test]
    fn read_only_cdrom_nodes() {
        let dir = TempDir::new("handshake-cdrom");
        let iso = dir.file("cd.iso", &[1u8; 8192]);
        let f = Front::new(1);
        let (mut s, mut xb) = setup(
            &f,
            DiskConfig {
                path: Some(iso),
                readonly: true,
                cdrom: true,
                ..Default::default()
            },
        );
        xb.start(&mut s, "t").unwrap();
        assert_eq!(
            node(&s, "info"),
            (VDISK_CDROM | VDISK_REMOVABLE | VDISK_READONLY).to_string()
        );
        assert_eq!(node(&s, "sectors"), "16");
        assert_eq!(node(&s, "feature-discard"), "0");
        assert!(s.get(&format!("{BE}/discard-granularity")).is_none());
    }
}
