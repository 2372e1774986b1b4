//! The XenStore ring relay (`xen/include/public/io/xs_wire.h`).
//!
//! A guest talks to XenStore through a `xenstore_domain_interface` page: it
//! writes request bytes into the `req` ring and reads replies and watch
//! events from the `rsp` ring. rxen's xenstored does not map guest memory;
//! the domain process connects to it, turns the connection into the
//! guest's with the `rxen-attach` handshake and then relays the byte
//! streams unchanged: that is [`StoreRelay`]. It knows nothing of the
//! protocol's frames; xenstored parses (and bounds) them.
//!
//! Flow control: the relay holds at most [`RELAY_BUFFER`] bytes in each
//! direction. It takes requests from the ring only while it can pass them
//! on, and reads from the daemon only while it has room, so a guest that
//! stops reading replies stalls its own connection (until xenstored's own
//! output cap drops it) and a daemon that stops reading stalls the guest,
//! never this process's memory.
//!
//! A guest whose indices claim more bytes than a ring holds has corrupted
//! its ring: [`StoreRelay::pump`] fails with [`RelayError::BadRequestIndex`]
//! or [`RelayError::BadResponseIndex`], and the caller drops the relay
//! (closing the connection, which xenstored reports with `@releaseDomain`).

use std::io::{ErrorKind, Read, Write};

use xen_abi::xs_wire::{
    XENSTORE_REQ_CONS_OFFSET, XENSTORE_REQ_OFFSET, XENSTORE_REQ_PROD_OFFSET, XENSTORE_RING_SIZE,
    XENSTORE_RSP_CONS_OFFSET, XENSTORE_RSP_OFFSET, XENSTORE_RSP_PROD_OFFSET,
};

use crate::ring::{Notify, RingMemory, ring_read, ring_write};

/// Bytes the relay buffers in each direction.
pub const RELAY_BUFFER: usize = 4 * XENSTORE_RING_SIZE;

/// Errors of the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The guest's request ring indices are impossible.
    #[error("the guest's XenStore request ring is corrupt (prod {prod:#x}, cons {cons:#x})")]
    BadRequestIndex {
        /// `req_prod` as read.
        prod: u32,
        /// `req_cons` as read.
        cons: u32,
    },
    /// The guest's response ring indices are impossible.
    #[error("the guest's XenStore response ring is corrupt (prod {prod:#x}, cons {cons:#x})")]
    BadResponseIndex {
        /// `rsp_prod` as read.
        prod: u32,
        /// `rsp_cons` as read.
        cons: u32,
    },
    /// xenstored closed the connection.
    #[error("xenstored closed the guest's connection")]
    DaemonClosed,
    /// Reading from xenstored failed.
    #[error("reading from xenstored failed")]
    ReadDaemon(#[source] std::io::Error),
    /// Writing to xenstored failed.
    #[error("writing to xenstored failed")]
    WriteDaemon(#[source] std::io::Error),
}

/// What the relay waits for after a [`StoreRelay::pump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayWants {
    /// It has room for more bytes from the daemon.
    pub daemon_readable: bool,
    /// It holds bytes the daemon has not taken yet.
    pub daemon_writable: bool,
}

/// The relay between one guest's store ring and its xenstored connection.
#[derive(Debug)]
pub struct StoreRelay<M, N, S> {
    mem: M,
    notify: N,
    daemon: S,
    to_daemon: Vec<u8>,
    to_guest: Vec<u8>,
}

impl<M: RingMemory, N: Notify, S: Read + Write> StoreRelay<M, N, S> {
    /// Relay between the ring page `mem` (signalling the guest through
    /// `notify`) and `daemon`, a non-blocking connection already attached
    /// as the guest's.
    pub fn new(mem: M, notify: N, daemon: S) -> Self {
        Self {
            mem,
            notify,
            daemon,
            to_daemon: Vec::with_capacity(RELAY_BUFFER),
            to_guest: Vec::with_capacity(RELAY_BUFFER),
        }
    }

    /// The daemon connection (to register it with an event loop).
    pub fn daemon(&self) -> &S {
        &self.daemon
    }

    /// The daemon connection, mutably (to deregister it).
    pub fn daemon_mut(&mut self) -> &mut S {
        &mut self.daemon
    }

    /// Bytes held for the daemon and for the guest.
    pub fn buffered(&self) -> (usize, usize) {
        (self.to_daemon.len(), self.to_guest.len())
    }

    /// Move every byte that can move now, both ways, and notify the guest
    /// once if its rings changed. Call when the guest notifies or the
    /// daemon connection becomes readable or writable; it returns once
    /// nothing more can move (the daemon would block, a buffer or a ring is
    /// full or empty).
    pub fn pump(&mut self) -> Result<RelayWants, RelayError> {
        let mut notify = false;
        let res = self.pump_inner(&mut notify);
        if notify {
            self.notify.notify();
        }
        res?;
        Ok(RelayWants {
            daemon_readable: self.to_guest.len() < RELAY_BUFFER,
            daemon_writable: !self.to_daemon.is_empty(),
        })
    }

    fn pump_inner(&mut self, notify: &mut bool) -> Result<(), RelayError> {
        loop {
            let mut progress = false;
            if self.take_requests()? {
                *notify = true;
                progress = true;
            }
            progress |= self.send_to_daemon()?;
            progress |= self.recv_from_daemon()?;
            if self.give_responses()? {
                *notify = true;
                progress = true;
            }
            if !progress {
                return Ok(());
            }
        }
    }

    /// Guest `req` ring → `to_daemon`.
    fn take_requests(&mut self) -> Result<bool, RelayError> {
        let room = RELAY_BUFFER - self.to_daemon.len();
        if room == 0 {
            return Ok(false);
        }
        let cons = self.mem.load_u32(XENSTORE_REQ_CONS_OFFSET);
        let prod = self.mem.load_u32(XENSTORE_REQ_PROD_OFFSET);
        let avail = prod.wrapping_sub(cons) as usize;
        if avail > XENSTORE_RING_SIZE {
            return Err(RelayError::BadRequestIndex { prod, cons });
        }
        let n = avail.min(room);
        if n == 0 {
            return Ok(false);
        }
        let start = self.to_daemon.len();
        self.to_daemon.resize(start + n, 0);
        ring_read(
            &self.mem,
            XENSTORE_REQ_OFFSET,
            XENSTORE_RING_SIZE,
            cons,
            &mut self.to_daemon[start..],
        );
        self.mem
            .store_u32(XENSTORE_REQ_CONS_OFFSET, cons.wrapping_add(n as u32));
        Ok(true)
    }

    /// `to_daemon` → the daemon, until it would block.
    fn send_to_daemon(&mut self) -> Result<bool, RelayError> {
        let mut sent = 0;
        while sent < self.to_daemon.len() {
            match self.daemon.write(&self.to_daemon[sent..]) {
                Ok(0) => return Err(RelayError::DaemonClosed),
                Ok(k) => sent += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) => return Err(RelayError::DaemonClosed),
                Err(e) => return Err(RelayError::WriteDaemon(e)),
            }
        }
        self.to_daemon.drain(..sent);
        Ok(sent > 0)
    }

    /// The daemon → `to_guest`, while there is room.
    fn recv_from_daemon(&mut self) -> Result<bool, RelayError> {
        let mut got = false;
        while self.to_guest.len() < RELAY_BUFFER {
            let start = self.to_guest.len();
            self.to_guest.resize(RELAY_BUFFER, 0);
            let r = self.daemon.read(&mut self.to_guest[start..]);
            let k = match r {
                Ok(k) => k,
                Err(ref e) if e.kind() == ErrorKind::Interrupted => 0,
                Err(_) => 0,
            };
            self.to_guest.truncate(start + k);
            match r {
                Ok(0) => return Err(RelayError::DaemonClosed),
                Ok(_) => got = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) => return Err(RelayError::DaemonClosed),
                Err(e) => return Err(RelayError::ReadDaemon(e)),
            }
        }
        Ok(got)
    }

    /// `to_guest` → the guest's `rsp` ring, as much as fits.
    fn give_responses(&mut self) -> Result<bool, RelayError> {
        if self.to_guest.is_empty() {
            return Ok(false);
        }
        let cons = self.mem.load_u32(XENSTORE_RSP_CONS_OFFSET);
        let prod = self.mem.load_u32(XENSTORE_RSP_PROD_OFFSET);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(RelayError::BadResponseIndex { prod, cons });
        }
        let n = self.to_guest.len().min(XENSTORE_RING_SIZE - used);
        if n == 0 {
            return Ok(false);
        }
        ring_write(
            &self.mem,
            XENSTORE_RSP_OFFSET,
            XENSTORE_RING_SIZE,
            prod,
            &self.to_guest[..n],
        );
        self.mem
            .store_u32(XENSTORE_RSP_PROD_OFFSET, prod.wrapping_add(n as u32));
        self.to_guest.drain(..n);
        Ok(true)
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io;

    use super::*;
    use crate::ring::mock::{MockNotify, MockRing};

    /// A daemon end that accepts at most `take` bytes per write call and
    /// replies with what was queued in `replies`.
    #[derive(Default)]
    struct Pipe {
        got: Vec<u8>,
        replies: VecDeque<u8>,
        take: usize,
        closed: bool,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.replies.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.replies.len());
            for b in buf.iter_mut().take(n) {
                *b = self.replies.pop_front().expect("counted");
            }
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.take == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = data.len().min(self.take);
            self.got.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn guest_send(m: &MockRing, data: &[u8]) -> usize {
        let cons = m.load_u32(XENSTORE_REQ_CONS_OFFSET);
        let prod = m.load_u32(XENSTORE_REQ_PROD_OFFSET);
        let n = data
            .len()
            .min(XENSTORE_RING_SIZE - prod.wrapping_sub(cons) as usize);
        ring_write(m, XENSTORE_REQ_OFFSET, XENSTORE_RING_SIZE, prod, &data[..n]);
        m.store_u32(XENSTORE_REQ_PROD_OFFSET, prod.wrapping_add(n as u32));
        n
    }

    fn guest_recv(m: &MockRing, max: usize) -> Vec<u8> {
        let cons = m.load_u32(XENSTORE_RSP_CONS_OFFSET);
        let prod = m.load_u32(XENSTORE_RSP_PROD_OFFSET);
        let n = (prod.wrapping_sub(cons) as usize).min(max);
        let mut buf = vec![0; n];
        ring_read(m, XENSTORE_RSP_OFFSET, XENSTORE_RING_SIZE, cons, &mut buf);
        m.store_u32(XENSTORE_RSP_CONS_OFFSET, cons.wrapping_add(n as u32));
        buf
    }

    #[test]
    fn bytes_flow_both_ways_in_order() {
        let page = MockRing::new();
        let n = MockNotify::default();
        let pipe = Pipe {
            take: usize::MAX,
            ..Pipe::default()
        };
        let mut r = StoreRelay::new(page.clone(), n.clone(), pipe);
        let req: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut off = 0;
        while off < req.len() {
            off += guest_send(&page, &req[off..]);
            r.pump().unwrap();
        }
        assert_eq!(r.daemon().got, req);
        assert!(n.count() > 0, "the guest hears its requests were taken");
        let reply: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        r.daemon.replies.extend(&reply);
        let mut got = Vec::new();
        while got.len() < reply.len() {
            let w = r.pump().unwrap();
            assert!(r.buffered().1 <= RELAY_BUFFER);
            got.extend(guest_recv(&page, 300));
            assert!(!w.daemon_writable);
        }
        assert_eq!(got, reply);
    }

    #[test]
    fn a_stalled_guest_stalls_only_its_own_stream() {
        let page = MockRing::new();
        let pipe = Pipe {
            take: usize::MAX,
            ..Pipe::default()
        };
        let mut r = StoreRelay::new(page.clone(), MockNotify::default(), pipe);
        r.daemon.replies.extend(vec![7u8; 100_000]);
        let w = r.pump().unwrap();
        assert_eq!(r.buffered().1, RELAY_BUFFER, "bounded");
        assert!(!w.daemon_readable, "stops reading the daemon");
        assert_eq!(
            page.load_u32(XENSTORE_RSP_PROD_OFFSET) as usize,
            XENSTORE_RING_SIZE,
            "the ring is full"
        );
        assert_eq!(
            r.daemon.replies.len(),
            100_000 - RELAY_BUFFER - XENSTORE_RING_SIZE
        );
    }

    #[test]
    fn a_stalled_daemon_stalls_the_guest() {
        let page = MockRing::new();
        let mut r = StoreRelay::new(page.clone(), MockNotify::default(), Pipe::default());
        let mut sent = 0;
        for _ in 0..20 {
            sent += guest_send(&page, &[1u8; 1024]);
            let w = r.pump().unwrap();
            assert!(w.daemon_writable);
        }
        assert_eq!(r.buffered().0, RELAY_BUFFER);
        assert_eq!(
            sent,
            RELAY_BUFFER + XENSTORE_RING_SIZE,
            "the guest's ring fills once the relay buffer is full"
        );
        r.daemon.take = 100;
        r.pump().unwrap();
        assert_eq!(r.daemon.got.len(), RELAY_BUFFER + XENSTORE_RING_SIZE);
    }

    #[test]
    fn hostile_indices_are_refused() {
        for (off, bad) in [
            (XENSTORE_REQ_PROD_OFFSET, 5000u32),
            (XENSTORE_REQ_CONS_OFFSET, 1),
        ] {
            let page = MockRing::new();
            page.store_u32(off, bad);
            let mut r = StoreRelay::new(page, MockNotify::default(), Pipe::default());
            assert!(matches!(r.pump(), Err(RelayError::BadRequestIndex { .. })));
        }
        let page = MockRing::new();
        page.store_u32(XENSTORE_RSP_CONS_OFFSET, 0x8000_0000);
        let pipe = Pipe {
            replies: vec![1, 2, 3].into(),
            ..Pipe::default()
        };
        let mut r = StoreRelay::new(page.clone(), MockNotify::default(), pipe);
        assert!(matches!(
            r.pump(),
            Err(RelayError::BadResponseIndex {
                cons: 0x8000_0000,
                ..
            })
        ));
        assert_eq!(
            page.load_u32(XENSTORE_RSP_PROD_OFFSET),
            0,
            "nothing written"
        );
    }

    #[test]
    fn daemon_close_is_reported() {
        let page = MockRing::new();
        let pipe = Pipe {
            closed: true,
            ..Pipe::default()
        };
        let mut r = StoreRelay::new(page, MockNotify::default(), pipe);
        assert!(matches!(r.pump(), Err(RelayError::DaemonClosed)));
    }
}
