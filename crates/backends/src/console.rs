//! The PV console backend (`xen/include/public/io/console.h`).
//!
//! The guest writes its output into the `out` ring and reads its input from
//! the `in` ring of a `xencons_interface` page; both sides notify each
//! other on one event channel. [`ConsoleRing`] moves bytes through the
//! rings with every guest index checked; [`ConsoleBackend`] adds what
//! Xen's xenconsoled does around it: the guest's output goes to the
//! domain's console log (and back to the caller, which hands it to every
//! attached client), client input waits in a bounded queue until the guest
//! has room for it. Early output (`console_io`, `earlyprintk=xen`) joins the
//! same log through [`ConsoleBackend::early_output`].
//!
//! A guest whose indices say more bytes are in a ring than the ring holds
//! has corrupted it: the backend stops serving it (as xenconsoled does),
//! logs that once and keeps the log it has.

use std::collections::VecDeque;
use std::io::Write;

use xen_abi::io::console::{
    XENCONS_IN_SIZE, XENCONS_OFF_in, XENCONS_OFF_in_cons, XENCONS_OFF_in_prod, XENCONS_OFF_out,
    XENCONS_OFF_out_cons, XENCONS_OFF_out_prod, XENCONS_OUT_SIZE,
};

use crate::ring::{Notify, RingMemory, ring_read, ring_write};

/// Client input held while the guest's `in` ring is full; more is refused.
pub const INPUT_QUEUE_MAX: usize = 64 * 1024;

/// Errors of the console backend.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The guest's `out` ring indices are impossible.
    #[error("the guest's console output ring is corrupt (prod {prod:#x}, cons {cons:#x})")]
    CorruptOutput {
        /// `out_prod` as read.
        prod: u32,
        /// `out_cons` as read.
        cons: u32,
    },
    /// The guest's `in` ring indices are impossible.
    #[error("the guest's console input ring is corrupt (prod {prod:#x}, cons {cons:#x})")]
    CorruptInput {
        /// `in_prod` as read.
        prod: u32,
        /// `in_cons` as read.
        cons: u32,
    },
    /// Writing the console log failed.
    #[error("writing the console log failed")]
    WriteLog(#[source] std::io::Error),
}

/// The two rings of a console page and its event channel.
#[derive(Debug)]
pub struct ConsoleRing<M, N> {
    mem: M,
    notify: N,
}

impl<M: RingMemory, N: Notify> ConsoleRing<M, N> {
    /// Serve the console page `mem`, notifying through `notify`.
    pub fn new(mem: M, notify: N) -> Self {
        Self { mem, notify }
    }

    /// Append what the guest has written to `out` (at most `max` bytes),
    /// free that space in the ring and notify the guest if anything was
    /// taken. Returns the count.
    pub fn read_output(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, ConsoleError> {
        let cons = self.mem.load_u32(XENCONS_OFF_out_cons);
        let prod = self.mem.load_u32(XENCONS_OFF_out_prod);
        let avail = prod.wrapping_sub(cons);
        if avail > XENCONS_OUT_SIZE {
            return Err(ConsoleError::CorruptOutput { prod, cons });
        }
        let n = (avail as usize).min(max);
        if n == 0 {
            return Ok(0);
        }
        let start = out.len();
        out.resize(start + n, 0);
        ring_read(
            &self.mem,
            XENCONS_OFF_out,
            XENCONS_OUT_SIZE as usize,
            cons,
            &mut out[start..],
        );
        self.mem
            .store_u32(XENCONS_OFF_out_cons, cons.wrapping_add(n as u32));
        self.notify.notify();
        Ok(n)
    }

    /// Put as much of `data` as fits into the guest's `in` ring and notify
    /// the guest if anything was written. Returns the count.
    pub fn write_input(&mut self, data: &[u8]) -> Result<usize, ConsoleError> {
        let cons = self.mem.load_u32(XENCONS_OFF_in_cons);
        let prod = self.mem.load_u32(XENCONS_OFF_in_prod);
        let used = prod.wrapping_sub(cons);
        if used > XENCONS_IN_SIZE {
            return Err(ConsoleError::CorruptInput { prod, cons });
        }
        let n = data.len().min((XENCONS_IN_SIZE - used) as usize);
        if n == 0 {
            return Ok(0);
        }
        ring_write(
            &self.mem,
            XENCONS_OFF_in,
            XENCONS_IN_SIZE as usize,
            prod,
            &data[..n],
        );
        self.mem
            .store_u32(XENCONS_OFF_in_prod, prod.wrapping_add(n as u32));
        self.notify.notify();
        Ok(n)
    }
}

/// Whether the backend still serves the guest's rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleState {
    /// Serving.
    Connected,
    /// The guest corrupted its ring; nothing more is read or written.
    Broken,
}

/// The console of one domain: its rings, its log and queued input.
#[derive(Debug)]
pub struct ConsoleBackend<M, N, L> {
    ring: ConsoleRing<M, N>,
    log: L,
    input: VecDeque<u8>,
    state: ConsoleState,
}

impl<M: RingMemory, N: Notify, L: Write> ConsoleBackend<M, N, L> {
    /// Serve `ring`, appending the guest's output to `log`.
    pub fn new(ring: ConsoleRing<M, N>, log: L) -> Self {
        Self {
            ring,
            log,
            input: VecDeque::new(),
            state: ConsoleState::Connected,
        }
    }

    /// Connected or broken.
    pub fn state(&self) -> ConsoleState {
        self.state
    }

    /// The log writer.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// Bytes of client input waiting for room in the guest's ring.
    pub fn queued_input(&self) -> usize {
        self.input.len()
    }

    /// Handle a notification from the guest (or any reason to look): drain
    /// its output into the log and into `out` (for attached clients), and
    /// move queued input into its `in` ring. A corrupt ring breaks the
    /// console (the error says how); a log write failure is returned after
    /// the ring work is done, and the console stays connected.
    pub fn service(&mut self, out: &mut Vec<u8>) -> Result<(), ConsoleError> {
        if self.state == ConsoleState::Broken {
            return Ok(());
        }
        let start = out.len();
        // At most a few rings' worth per call, so one guest cannot hold the
        // caller's loop; the guest is notified and will notify again.
        let mut budget = 4 * XENCONS_OUT_SIZE as usize;
        let res = loop {
            match self.ring.read_output(out, budget) {
                Ok(0) => break Ok(()),
                Ok(n) => budget -= n,
                Err(e) => break Err(e),
            }
            if budget == 0 {
                break Ok(());
            }
        };
        let res = res.and_then(|()| self.push_queued_input());
        if let Err(e) = res {
            self.state = ConsoleState::Broken;
            self.input.clear();
            // Keep what was read before the corruption was seen.
            let _ = self.log.write_all(&out[start..]);
            let _ = self.log.flush();
            return Err(e);
        }
        self.write_log(&out[start..])
    }

    /// Queue client input (as much as the queue has room for) and try to
    /// hand it to the guest. Returns the bytes accepted.
    pub fn push_input(&mut self, data: &[u8]) -> Result<usize, ConsoleError> {
        if self.state == ConsoleState::Broken {
            return Ok(0);
        }
        let n = data.len().min(INPUT_QUEUE_MAX - self.input.len());
        self.input.extend(&data[..n]);
        if let Err(e) = self.push_queued_input() {
            self.state = ConsoleState::Broken;
            self.input.clear();
            return Err(e);
        }
        Ok(n)
    }

    /// Early console output (`console_io`): logged like ring output.
    pub fn early_output(&mut self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_log(data)
    }

    fn push_queued_input(&mut self) -> Result<(), ConsoleError> {
        while !self.input.is_empty() {
            let (a, _) = self.input.as_slices();
            let n = self.ring.write_input(a)?;
            if n == 0 {
                break;
            }
            self.input.drain(..n);
        }
        Ok(())
    }

    fn write_log(&mut self, data: &[u8]) -> Result<(), ConsoleError> {
        if data.is_empty() {
            return Ok(());
        }
        self.log
            .write_all(data)
            .and_then(|()| self.log.flush())
            .map_err(ConsoleError::WriteLog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::mock::{MockNotify, MockRing};

    /// The guest side of the console page, as Linux's hvc_xen drives it.
    struct Guest(MockRing);

    impl Guest {
        fn write(&self, data: &[u8]) -> usize {
            let m = &self.0;
            let cons = m.load_u32(XENCONS_OFF_out_cons);
            let prod = m.load_u32(XENCONS_OFF_out_prod);
            let room = XENCONS_OUT_SIZE - prod.wrapping_sub(cons);
            let n = data.len().min(room as usize);
            ring_write(
                m,
                XENCONS_OFF_out,
                XENCONS_OUT_SIZE as usize,
                prod,
                &data[..n],
            );
            m.store_u32(XENCONS_OFF_out_prod, prod.wrapping_add(n as u32));
            n
        }

        fn read(&self) -> Vec<u8> {
            let m = &self.0;
            let cons = m.load_u32(XENCONS_OFF_in_cons);
            let prod = m.load_u32(XENCONS_OFF_in_prod);
            let mut buf = vec![0u8; prod.wrapping_sub(cons) as usize];
            ring_read(m, XENCONS_OFF_in, XENCONS_IN_SIZE as usize, cons, &mut buf);
            m.store_u32(XENCONS_OFF_in_cons, prod);
            buf
        }
    }

    fn backend() -> (
        Guest,
        MockNotify,
        ConsoleBackend<MockRing, MockNotify, Vec<u8>>,
    ) {
        let page = MockRing::new();
        let n = MockNotify::default();
        let b = ConsoleBackend::new(ConsoleRing::new(page.clone(), n.clone()), Vec::new());
        (Guest(page), n, b)
    }

    #[test]
    fn output_reaches_log_and_clients() {
        let (g, n, mut b) = backend();
        let mut out = Vec::new();
        b.service(&mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(n.count(), 0, "nothing read, nobody notified");
        g.write(b"Linux version 6.1\n");
        b.service(&mut out).unwrap();
        assert_eq!(out, b"Linux version 6.1\n");
        assert_eq!(b.log().as_slice(), b"Linux version 6.1\n");
        assert_eq!(n.count(), 1, "the guest learns there is room again");
    }

    #[test]
    fn output_wraps_around_the_ring_many_times() {
        let (g, _, mut b) = backend();
        let mut want = Vec::new();
        let mut out = Vec::new();
        for i in 0..100u32 {
            let line = format!("line {i} {}\n", "x".repeat((i as usize * 37) % 1500));
            let mut rest = line.as_bytes();
            while !rest.is_empty() {
                let k = g.write(rest);
                rest = &rest[k..];
                b.service(&mut out).unwrap();
            }
            want.extend_from_slice(line.as_bytes());
        }
        assert_eq!(out, want);
        assert_eq!(*b.log(), want);
    }

    #[test]
    fn early_output_joins_the_log() {
        let (g, _, mut b) = backend();
        b.early_output(b"[early] ").unwrap();
        g.write(b"ring\n");
        let mut out = Vec::new();
        b.service(&mut out).unwrap();
        assert_eq!(b.log().as_slice(), b"[early] ring\n");
        assert_eq!(out, b"ring\n", "early output is not echoed twice");
    }

    #[test]
    fn input_waits_for_room_in_the_guest_ring() {
        let (g, n, mut b) = backend();
        let big: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(b.push_input(&big).unwrap(), big.len());
        assert_eq!(n.count(), 1);
        assert_eq!(b.queued_input(), big.len() - XENCONS_IN_SIZE as usize);
        let mut got = g.read();
        assert_eq!(got.len(), XENCONS_IN_SIZE as usize);
        // The guest notifies after reading: the backend refills.
        while b.queued_input() > 0 {
            b.service(&mut Vec::new()).unwrap();
            got.extend(g.read());
        }
        assert_eq!(got, big);
        // The queue is bounded.
        let flood = vec![b'z'; INPUT_QUEUE_MAX * 2];
        let took = b.push_input(&flood).unwrap();
        assert_eq!(took, INPUT_QUEUE_MAX);
        assert_eq!(
            b.queued_input(),
            INPUT_QUEUE_MAX - XENCONS_IN_SIZE as usize,
            "a ring's worth went to the guest"
        );
        assert_eq!(b.push_input(b"more").unwrap(), 4);
        assert_eq!(
            b.push_input(&flood).unwrap(),
            XENCONS_IN_SIZE as usize - 4,
            "only what fits in the queue"
        );
        assert_eq!(b.queued_input(), INPUT_QUEUE_MAX);
    }

    #[test]
    fn corrupt_output_indices_break_the_console() {
        let (g, n, mut b) = backend();
        g.write(b"before\n");
        let mut out = Vec::new();
        b.service(&mut out).unwrap();
        // A guest claims more bytes than the ring holds.
        g.0.store_u32(XENCONS_OFF_out_prod, 0x1234_5678);
        let err = b.service(&mut out).unwrap_err();
        assert!(matches!(
            err,
            ConsoleError::CorruptOutput {
                prod: 0x1234_5678,
                ..
            }
        ));
        assert_eq!(b.state(), ConsoleState::Broken);
        // Broken stays broken and quiet: no reads, no writes, no notifications.
        let before = n.count();
        assert!(b.service(&mut out).is_ok());
        assert_eq!(b.push_input(b"x").unwrap(), 0);
        assert_eq!(n.count(), before);
        assert_eq!(b.log().as_slice(), b"before\n");
    }

    #[test]
    fn corrupt_input_indices_break_the_console() {
        let (g, _, mut b) = backend();
        // in_cons ahead of in_prod: "used" wraps to a huge count.
        g.0.store_u32(XENCONS_OFF_in_cons, 10);
        let err = b.push_input(b"hello").unwrap_err();
        assert!(matches!(
            err,
            ConsoleError::CorruptInput { cons: 10, prod: 0 }
        ));
        assert_eq!(b.state(), ConsoleState::Broken);
        assert_eq!(g.0.load_u32(XENCONS_OFF_in_prod), 0, "nothing written");
    }

    #[test]
    fn indices_near_wraparound_are_fine() {
        let (g, _, mut b) = backend();
        for off in [XENCONS_OFF_out_cons, XENCONS_OFF_out_prod] {
            g.0.store_u32(off, u32::MAX - 3);
        }
        g.write(b"wrapping index\n");
        let mut out = Vec::new();
        b.service(&mut out).unwrap();
        assert_eq!(out, b"wrapping index\n");
        assert_eq!(g.0.load_u32(XENCONS_OFF_out_cons), 11);
    }

    /// A log that fails: the ring is still served, the error reported.
    #[test]
    fn log_failures_are_reported_not_fatal() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let page = MockRing::new();
        let mut b =
            ConsoleBackend::new(ConsoleRing::new(page.clone(), MockNotify::default()), Full);
        Guest(page.clone()).write(b"x");
        let mut out = Vec::new();
        assert!(matches!(
            b.service(&mut out),
            Err(ConsoleError::WriteLog(_))
        ));
        assert_eq!(out, b"x");
        assert_eq!(b.state(), ConsoleState::Connected);
        assert_eq!(page.load_u32(XENCONS_OFF_out_cons), 1);
    }
}
