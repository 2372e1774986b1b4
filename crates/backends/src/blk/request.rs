//! Decoding and checking the requests a frontend puts on its blkif ring.
//!
//! A ring entry is copied out of the shared page once (the guest may keep
//! writing it) and decoded here from that copy; everything a guest chose is
//! checked before the backend acts on it: the operation, the segment count
//! against its limit, each segment's sector range inside its page. What
//! needs the disk (the sector range against its size) or the grants is
//! checked when the request runs. This module has no I/O, so the fuzz
//! target drives it directly.

use xen_abi::GrantRef;
use xen_abi::io::blkif::{
    BLKIF_DISCARD_SECURE, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER, BLKIF_RING_ENTRY_SIZE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR,
    BLKIF_SECTOR_SIZE, BLKIF_SECTORS_PER_PAGE, BLKIF_SEGS_PER_INDIRECT_FRAME, blkif_request,
    blkif_request_discard, blkif_request_indirect, blkif_request_segment,
};
use xen_abi::layout::Abi;

use crate::grant::GrantError;

/// The segments per indirect request this backend offers
/// (`feature-max-indirect-segments`), as Linux's blkback does.
pub const MAX_INDIRECT_SEGMENTS: u16 = 256;

/// What a read/write-type request does with the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    /// Disk to guest pages.
    Read,
    /// Guest pages to disk.
    Write,
    /// Earlier writes durable, then this request's data (if any) written
    /// and durable too (`BLKIF_OP_FLUSH_DISKCACHE`, `BLKIF_OP_WRITE_BARRIER`:
    /// requests are run one at a time, so ordering is given).
    WriteDurable,
}

impl IoKind {
    /// Whether the request moves data from the guest to the disk.
    pub fn writes(self) -> bool {
        self != IoKind::Read
    }
}

/// One page of a request's buffer: sectors `first_sect..=last_sect` of the
/// granted page, checked to lie inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The page's grant.
    pub gref: GrantRef,
    first_sect: u8,
    last_sect: u8,
}

impl Segment {
    /// Check a segment as the guest wrote it.
    pub fn new(s: blkif_request_segment, index: usize) -> Result<Self, RequestError> {
        if s.first_sect > s.last_sect || s.last_sect >= BLKIF_SECTORS_PER_PAGE {
            return Err(RequestError::BadSegment {
                index,
                first: s.first_sect,
                last: s.last_sect,
            });
        }
        Ok(Self {
            gref: GrantRef(s.gref),
            first_sect: s.first_sect,
            last_sect: s.last_sect,
        })
    }

    /// Sectors it moves (1 to 8).
    pub fn sectors(&self) -> u64 {
        u64::from(self.last_sect - self.first_sect) + 1
    }

    /// Byte offset of its data in the page.
    pub fn offset(&self) -> usize {
        usize::from(self.first_sect) * BLKIF_SECTOR_SIZE as usize
    }

    /// Bytes it moves.
    pub fn len(&self) -> usize {
        self.sectors() as usize * BLKIF_SECTOR_SIZE as usize
    }

    /// Never: a segment moves at least one sector.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A decoded request, before the disk and the grants are consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Up to 11 segments in the ring entry itself.
    Direct {
        /// What it does.
        kind: IoKind,
        /// First disk sector.
        sector: u64,
        /// Its segments (`nr` of them are valid).
        segs: [Option<Segment>; BLKIF_MAX_SEGMENTS_PER_REQUEST],
    },
    /// Segments in up to 8 granted pages of `blkif_request_segment`s.
    Indirect {
        /// What it does (a read or a write).
        kind: IoKind,
        /// First disk sector.
        sector: u64,
        /// Segments, 1 to the backend's limit.
        nr_segments: u16,
        /// The pages holding them (as many as `nr_segments` needs).
        pages: Vec<GrantRef>,
    },
    /// `BLKIF_OP_DISCARD`.
    Discard {
        /// First disk sector.
        sector: u64,
        /// Sectors.
        nr_sectors: u64,
        /// `BLKIF_DISCARD_SECURE` (never offered, so ignored).
        secure: bool,
    },
}

impl Request {
    /// The direct segments, in order.
    pub fn direct_segments(&self) -> impl Iterator<Item = Segment> + '_ {
        let segs: &[Option<Segment>] = match self {
            Request::Direct { segs, .. } => segs,
            _ => &[],
        };
        segs.iter().map_while(|s| *s)
    }
}

/// A ring entry decoded: what the response must echo, and the request or
/// why it is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The guest's `id`, echoed.
    pub id: u64,
    /// The operation the response names (for an indirect request, the
    /// operation inside it, as frontends expect).
    pub operation: u8,
    /// The request, or the reason it fails.
    pub request: Result<Request, RequestError>,
}

/// Why a request fails; [`RequestError::status`] is what the guest is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// An operation this backend does not know.
    #[error("unknown operation {0}")]
    UnknownOperation(u8),
    /// An indirect request wrapping an operation other than read or write.
    #[error("indirect request wraps operation {0}")]
    BadIndirectOperation(u8),
    /// Too many or too few segments for the operation.
    #[error("operation {operation} with {count} segments")]
    BadSegmentCount {
        /// The operation.
        operation: u8,
        /// The count asked for.
        count: u16,
    },
    /// A segment's sectors are not inside its page.
    #[error("segment {index} covers sectors {first}..={last} of a page")]
    BadSegment {
        /// Its position in the request.
        index: usize,
        /// `first_sect`.
        first: u8,
        /// `last_sect`.
        last: u8,
    },
    /// The sectors run past the end of the disk.
    #[error("sectors {sector}+{count} run past the disk's {disk} sectors")]
    BeyondDisk {
        /// First sector.
        sector: u64,
        /// Sectors asked for.
        count: u64,
        /// The disk's size in sectors.
        disk: u64,
    },
    /// A granted page cannot be used.
    #[error("bad grant")]
    Grant(#[from] GrantError),
    /// A write to a read-only disk.
    #[error("the disk is read-only")]
    ReadOnly,
    /// The disk cannot discard.
    #[error("the disk cannot discard")]
    DiscardUnsupported,
    /// The disk's I/O failed.
    #[error("disk I/O failed: {0}")]
    Io(std::io::ErrorKind),
}

impl RequestError {
    /// The `BLKIF_RSP_*` status for the guest.
    pub fn status(&self) -> i16 {
        match self {
            RequestError::UnknownOperation(_) | RequestError::DiscardUnsupported => {
                BLKIF_RSP_EOPNOTSUPP
            }
            _ => BLKIF_RSP_ERROR,
        }
    }
}

/// Decode the ring entry `entry` (already copied out of the ring), for a
/// backend offering `max_indirect` indirect segments (0: none).
pub fn parse(entry: &[u8; BLKIF_RING_ENTRY_SIZE], max_indirect: u16) -> Parsed {
    let req = blkif_request::read_from(entry).expect("an entry holds a blkif_request");
    let id = req.id;
    let kind = match req.operation {
        BLKIF_OP_READ => IoKind::Read,
        BLKIF_OP_WRITE => IoKind::Write,
        BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE => IoKind::WriteDurable,
        BLKIF_OP_DISCARD => {
            let d = blkif_request_discard::read_from(entry).expect("an entry holds a discard");
            return Parsed {
                id,
                operation: BLKIF_OP_DISCARD,
                request: Ok(Request::Discard {
                    sector: d.sector_number,
                    nr_sectors: d.nr_sectors,
                    secure: d.flag & BLKIF_DISCARD_SECURE != 0,
                }),
            };
        }
        BLKIF_OP_INDIRECT if max_indirect > 0 => return parse_indirect(entry, max_indirect),
        op => {
            return Parsed {
                id,
                operation: op,
                request: Err(RequestError::UnknownOperation(op)),
            };
        }
    };
    let operation = req.operation;
    let count = usize::from(req.nr_segments);
    let min = usize::from(kind != IoKind::WriteDurable);
    if count < min || count > BLKIF_MAX_SEGMENTS_PER_REQUEST {
        return Parsed {
            id,
            operation,
            request: Err(RequestError::BadSegmentCount {
                operation,
                count: count as u16,
            }),
        };
    }
    let mut segs = [None; BLKIF_MAX_SEGMENTS_PER_REQUEST];
    for (i, raw) in req.seg.iter().take(count).enumerate() {
        let s = blkif_request_segment::read_from(raw).expect("8 bytes");
        match Segment::new(s, i) {
            Ok(s) => segs[i] = Some(s),
            Err(e) => {
                return Parsed {
                    id,
                    operation,
                    request: Err(e),
                };
            }
        }
    }
    Parsed {
        id,
        operation,
        request: Ok(Request::Direct {
            kind,
            sector: req.sector_number,
            segs,
        }),
    }
}

fn parse_indirect(entry: &[u8; BLKIF_RING_ENTRY_SIZE], max_indirect: u16) -> Parsed {
    let req = blkif_request_indirect::read_from(entry).expect("an entry holds an indirect");
    let id = req.id;
    let operation = req.indirect_op;
    let kind = match req.indirect_op {
        BLKIF_OP_READ => IoKind::Read,
        BLKIF_OP_WRITE => IoKind::Write,
        op => {
            return Parsed {
                id,
                operation,
                request: Err(RequestError::BadIndirectOperation(op)),
            };
        }
    };
    let n = req.nr_segments;
    if n == 0 || n > max_indirect {
        return Parsed {
            id,
            operation,
            request: Err(RequestError::BadSegmentCount {
                operation: BLKIF_OP_INDIRECT,
                count: n,
            }),
        };
    }
    let nr_pages = usize::from(n).div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME);
    debug_assert!(nr_pages <= BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
    let pages = req.indirect_grefs[..nr_pages.min(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)]
        .iter()
        .map(|&g| GrantRef(g))
        .collect();
    Parsed {
        id,
        operation,
        request: Ok(Request::Indirect {
            kind,
            sector: req.sector_number,
            nr_segments: n,
            pages,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: u8, nseg: u8, id: u64, sector: u64, segs: &[(u32, u8, u8)]) -> [u8; 112] {
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
            nr_segments: nseg,
            handle: 0,
            id,
            sector_number: sector,
            seg,
        }
        .write_to(&mut e);
        e
    }

    #[test]
    fn read_with_segments() {
        let p = parse(&entry(BLKIF_OP_READ, 2, 77, 10, &[(8, 0, 7), (9, 2, 3)]), 0);
        assert_eq!(p.id, 77);
        assert_eq!(p.operation, BLKIF_OP_READ);
        let r = p.request.unwrap();
        let segs: Vec<_> = r.direct_segments().collect();
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[0].offset(), segs[0].len()), (0, 4096));
        assert_eq!((segs[1].offset(), segs[1].len()), (1024, 1024));
        assert_eq!(segs[1].gref, GrantRef(9));
    }

    #[test]
    fn hostile_segments_and_counts() {
        for (first, last) in [(3, 2), (0, 8), (8, 8), (255, 255)] {
            let p = parse(&entry(BLKIF_OP_WRITE, 1, 1, 0, &[(8, first, last)]), 0);
            assert_eq!(
                p.request.unwrap_err(),
                RequestError::BadSegment {
                    index: 0,
                    first,
                    last
                }
            );
        }
        for n in [0u8, 12, 255] {
            let p = parse(&entry(BLKIF_OP_READ, n, 1, 0, &[]), 0);
            let e = p.request.unwrap_err();
            assert!(matches!(e, RequestError::BadSegmentCount { .. }), "{e:?}");
            assert_eq!(e.status(), BLKIF_RSP_ERROR);
        }
        // A flush may carry no data.
        let p = parse(&entry(BLKIF_OP_FLUSH_DISKCACHE, 0, 5, 0, &[]), 0);
        assert!(p.request.is_ok());
        let p = parse(&entry(9, 0, 5, 0, &[]), 0);
        assert_eq!(p.operation, 9);
        assert_eq!(p.request.unwrap_err().status(), BLKIF_RSP_EOPNOTSUPP);
        // Indirect without the feature is an unknown operation.
        let p = parse(&entry(BLKIF_OP_INDIRECT, 0, 5, 0, &[]), 0);
        assert_eq!(
            p.request.unwrap_err(),
            RequestError::UnknownOperation(BLKIF_OP_INDIRECT)
        );
    }

    fn indirect(op: u8, n: u16, grefs: [u32; 8]) -> [u8; 112] {
        let mut e = [0xaau8; 112];
        blkif_request_indirect {
            operation: BLKIF_OP_INDIRECT,
            indirect_op: op,
            nr_segments: n,
            id: 42,
            sector_number: 100,
            handle: 0,
            indirect_grefs: grefs,
        }
        .write_to(&mut e);
        e
    }

    #[test]
    fn indirect_requests() {
        let g = [1, 2, 3, 4, 5, 6, 7, 8];
        let p = parse(&indirect(BLKIF_OP_WRITE, 256, g), 256);
        assert_eq!(
            p.operation, BLKIF_OP_WRITE,
            "the response names the inner op"
        );
        match p.request.unwrap() {
            Request::Indirect {
                kind,
                nr_segments,
                pages,
                sector,
            } => {
                assert_eq!(kind, IoKind::Write);
                assert_eq!(nr_segments, 256);
                assert_eq!(pages, vec![GrantRef(1)]);
                assert_eq!(sector, 100);
            }
            r => panic!("{r:?}"),
        }
        let p = parse(&indirect(BLKIF_OP_READ, 513, g), 4096);
        match p.request.unwrap() {
            Request::Indirect { pages, .. } => assert_eq!(pages.len(), 2),
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            parse(&indirect(BLKIF_OP_READ, 257, g), 256).request,
            Err(RequestError::BadSegmentCount { count: 257, .. })
        ));
        assert!(matches!(
            parse(&indirect(BLKIF_OP_READ, 0, g), 256).request,
            Err(RequestError::BadSegmentCount { count: 0, .. })
        ));
        assert_eq!(
            parse(&indirect(BLKIF_OP_DISCARD, 1, g), 256).request,
            Err(RequestError::BadIndirectOperation(BLKIF_OP_DISCARD))
        );
    }

    #[test]
    fn discard() {
        let mut e = [0u8; 112];
        blkif_request_discard {
            operation: BLKIF_OP_DISCARD,
            flag: BLKIF_DISCARD_SECURE,
            handle: 0,
            id: 3,
            sector_number: 8,
            nr_sectors: 16,
        }
        .write_to(&mut e);
        assert_eq!(
            parse(&e, 0).request.unwrap(),
            Request::Discard {
                sector: 8,
                nr_sectors: 16,
                secure: true
            }
        );
    }
}
