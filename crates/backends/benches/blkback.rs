//! blkback's own cost: the backend serving a ring of requests from a file,
//! next to the same I/O done directly on that file (`pread`/`pwrite` of the
//! same sizes at the same offsets), measured in the same run.
//!
//! The frontend is played here as Linux's xen-blkfront does it: a one-page
//! ring (32 slots) refilled whole, 128 KiB reads and writes as indirect
//! requests of 32 full-page segments, 4 KiB random reads as direct requests
//! of one segment. Guest memory and grants are the mock guest's
//! (`backends::grant::mock`), checked and pinned by the same `Grants` code
//! as a real guest's. The file is read once first, so both sides are served
//! from the page cache: what is left is blkback's work per request (ring
//! parsing, grant checks, vectored I/O into guest pages) against the
//! kernel's copy alone (the blkback figure also carries the played
//! frontend's ring writes, a guest's work on another CPU in real life).
//! Event channels and the guest's exits are not in it (the lab's `bench-io`
//! measures those). The direct side reads into as many buffers as the ring
//! has requests in flight, as the guest's pages are.
//!
//! `cargo bench -p backends --bench blkback`; RXEN_BENCH_SECS (default 2)
//! per measurement, RXEN_BENCH_DIR for the 256 MiB file (default: the temp
//! directory). Prints a table with the ratio blkback/direct.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use backends::blk::{BlkBackend, DiskConfig, MAX_INDIRECT_SEGMENTS, disk};
use backends::grant::Grants;
use backends::grant::mock::MockGuest;
use backends::ring::mock::MockNotify;
use xen_abi::GrantRef;
use xen_abi::io::blkif::*;
use xen_abi::layout::Abi;

const FILE_SIZE: u64 = 256 << 20;
const SLOTS: u32 = 32;
const SEGS: u32 = 32;
const BIG: u64 = SEGS as u64 * 4096;
const SMALL: u64 = 4096;
/// gfn 0: the ring; gfn 1..=32: the indirect pages of the 32 slots; then
/// the 32 × 32 data pages. Each frame is granted under gref = gfn + 8.
const DATA_GFN: u64 = 1 + SLOTS as u64;
const FRAMES: u64 = DATA_GFN + (SLOTS * SEGS) as u64;

fn gref(gfn: u64) -> u32 {
    gfn as u32 + 8
}

struct Front {
    g: Grants<MockGuest>,
    req_prod: u32,
    rsp_cons: u32,
}

impl Front {
    fn new() -> Self {
        let g = MockGuest::new(FRAMES, 3).grants();
        for gfn in 0..FRAMES {
            g.pages().grant(gref(gfn), gfn, false);
        }
        // SHARED_RING_INIT: events at 1.
        g.pages().write(0, 4, &1u32.to_le_bytes());
        g.pages().write(0, 12, &1u32.to_le_bytes());
        Front {
            g,
            req_prod: 0,
            rsp_cons: 0,
        }
    }

    fn push(&mut self, entry: &[u8; 112]) {
        let off = 64 + (self.req_prod % SLOTS) as usize * 112;
        self.g.pages().write(0, off, entry);
        self.req_prod = self.req_prod.wrapping_add(1);
    }

    /// One ring's worth: 128 KiB indirect requests from `sector` on.
    fn push_big(&mut self, op: u8, mut sector: u64) {
        for slot in 0..SLOTS {
            let ind = 1 + u64::from(slot);
            let mut desc = Vec::with_capacity(SEGS as usize * 8);
            for s in 0..SEGS {
                let gfn = DATA_GFN + u64::from(slot * SEGS + s);
                desc.extend_from_slice(
                    &blkif_request_segment {
                        gref: gref(gfn),
                        first_sect: 0,
                        last_sect: 7,
                    }
                    .to_bytes(),
                );
            }
            self.g.pages().write(ind, 0, &desc);
            let mut e = [0u8; 112];
            blkif_request_indirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: SEGS as u16,
                id: u64::from(slot),
                sector_number: sector,
                handle: 0,
                indirect_grefs: [gref(ind), 0, 0, 0, 0, 0, 0, 0],
            }
            .write_to(&mut e);
            self.push(&e);
            sector += BIG / 512;
        }
        self.publish();
    }

    /// One ring's worth: 4 KiB reads at `sectors`.
    fn push_small(&mut self, sectors: &[u64]) {
        for (slot, &sector) in sectors.iter().enumerate() {
            let mut seg = [[0u8; 8]; 11];
            blkif_request_segment {
                gref: gref(DATA_GFN + slot as u64),
                first_sect: 0,
                last_sect: 7,
            }
            .write_to(&mut seg[0]);
            let mut e = [0u8; 112];
            blkif_request {
                operation: BLKIF_OP_READ,
                nr_segments: 1,
                handle: 0,
                id: slot as u64,
                sector_number: sector,
                seg,
            }
            .write_to(&mut e);
            self.push(&e);
        }
        self.publish();
    }

    fn publish(&self) {
        self.g.pages().write(0, 0, &self.req_prod.to_le_bytes());
    }

    /// Takes the responses; panics on any failed one (the bench would lie).
    fn responses(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.g.pages().read(0, 8, &mut b);
        let rsp_prod = u32::from_le_bytes(b);
        let mut n = 0;
        while self.rsp_cons != rsp_prod {
            let off = 64 + (self.rsp_cons % SLOTS) as usize * 112;
            let mut r = [0u8; 16];
            self.g.pages().read(0, off, &mut r);
            let r = blkif_response::read_from(&r).expect("16 bytes");
            assert_eq!(r.status, BLKIF_RSP_OKAY, "request {} failed", r.id);
            self.rsp_cons = self.rsp_cons.wrapping_add(1);
            n += 1;
        }
        self.g
            .pages()
            .write(0, 12, &self.rsp_cons.wrapping_add(1).to_le_bytes());
        n
    }
}

/// A small deterministic generator for the random offsets (both sides get
/// the same sequence).
struct Lcg(u64);
impl Lcg {
    fn next_block(&mut self, blocks: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % blocks
    }
}

/// Runs `step` (which moves some bytes and says how many) for `secs`;
/// bytes per second.
fn measure(secs: Duration, mut step: impl FnMut() -> u64) -> f64 {
    let t0 = Instant::now();
    let mut bytes = 0;
    while t0.elapsed() < secs {
        bytes += step();
    }
    bytes as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let secs = Duration::from_secs_f64(
        std::env::var("RXEN_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0),
    );
    let dir = std::env::var_os("RXEN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("rxen-bench-blkback-{}.img", std::process::id()));
    let file = File::create(&path).expect("bench file");
    let chunk = vec![0x5au8; 1 << 20];
    for i in 0..FILE_SIZE >> 20 {
        file.write_all_at(&chunk, i << 20)
            .expect("fill the bench file");
    }
    drop(file);
    let file = File::options().read(true).write(true).open(&path).unwrap();
    let mut bufs = vec![vec![0u8; BIG as usize]; SLOTS as usize];
    // Warm the page cache.
    for off in (0..FILE_SIZE).step_by(BIG as usize) {
        file.read_at(&mut bufs[0], off).unwrap();
    }

    let mut f = Front::new();
    let n = MockNotify::default();
    let disk = disk::open(&DiskConfig {
        path: Some(path.clone()),
        ..Default::default()
    })
    .expect("open the bench file");
    let mut b = BlkBackend::connect(
        f.g.clone(),
        n.clone(),
        &[GrantRef(gref(0))],
        disk,
        MAX_INDIRECT_SEGMENTS,
    )
    .expect("connect");

    let ring_bytes = u64::from(SLOTS) * BIG;
    let blocks = FILE_SIZE / SMALL;
    let mut rows = Vec::new();
    for (name, unit, op) in [
        ("seq read 128 KiB", "MB/s", Some(BLKIF_OP_READ)),
        ("seq write 128 KiB", "MB/s", Some(BLKIF_OP_WRITE)),
        ("4k random read", "IOPS", None),
    ] {
        let mut pos = 0u64;
        let mut next = |len: u64| {
            let at = pos;
            pos = (pos + len) % FILE_SIZE;
            at
        };
        let mut rng = Lcg(1);
        let back = match op {
            Some(op) => measure(secs, || {
                f.push_big(op, next(ring_bytes) / 512);
                assert!(!b.service().expect("ring"));
                u64::from(f.responses()) * BIG
            }),
            None => measure(secs, || {
                let sectors: Vec<u64> = (0..SLOTS)
                    .map(|_| rng.next_block(blocks) * SMALL / 512)
                    .collect();
                f.push_small(&sectors);
                assert!(!b.service().expect("ring"));
                u64::from(f.responses()) * SMALL
            }),
        };
        let mut pos = 0u64;
        let mut rng = Lcg(1);
        let direct = match op {
            Some(BLKIF_OP_READ) => measure(secs, || {
                for b in bufs.iter_mut() {
                    let at = pos;
                    pos = (pos + BIG) % FILE_SIZE;
                    file.read_exact_at(b, at).unwrap();
                }
                ring_bytes
            }),
            Some(_) => measure(secs, || {
                for b in &bufs {
                    let at = pos;
                    pos = (pos + BIG) % FILE_SIZE;
                    file.write_all_at(b, at).unwrap();
                }
                ring_bytes
            }),
            None => measure(secs, || {
                for b in bufs.iter_mut() {
                    let at = rng.next_block(blocks) * SMALL;
                    file.read_exact_at(&mut b[..SMALL as usize], at).unwrap();
                }
                u64::from(SLOTS) * SMALL
            }),
        };
        let scale = |v: f64| {
            if unit == "IOPS" {
                v / SMALL as f64
            } else {
                v / 1e6
            }
        };
        rows.push((name, unit, scale(back), scale(direct)));
    }
    let _ = std::fs::remove_file(&path);

    println!("blkback serving a ring from the page cache vs direct pread/pwrite, {secs:?} each");
    println!(
        "| {:<24} | {:>10} | {:>10} | {:>15} |",
        "metric", "blkback", "direct", "blkback/direct"
    );
    println!("| {:-<24} | {:->10} | {:->10} | {:->15} |", "", "", "", "");
    for (name, unit, back, direct) in rows {
        println!(
            "| {:<24} | {:>10.0} | {:>10.0} | {:>15.2} |",
            format!("{name} ({unit})"),
            back,
            direct,
            back / direct
        );
    }
    println!(
        "notifications sent: {} (one per ring, as the frontend asked)",
        n.count()
    );
}
