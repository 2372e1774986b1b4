//! The host side of a vif: a device that takes and gives Ethernet frames.
//!
//! netback talks to the host through [`PacketDevice`]: a TAP in the domain
//! process ([`super::tap::Tap`]), `mock::MockDevice` in tests. Frames
//! travel with a [`VnetHdr`], the `virtio_net_hdr` a TAP opened with
//! `IFF_VNET_HDR` puts before each frame. rxen uses it (rather than complete
//! frames only) so that what Xen's netback gets from the host stack works
//! here too:
//! - a guest's TCP segment of up to 64 KiB (`feature-gso-tcpv4/6`) goes to
//!   the host as one frame with `gso_type`/`gso_size`; the host kernel
//!   segments it only if it has to leave the machine as separate frames;
//! - frames for the guest may come with a partial checksum
//!   (`NEEDS_CSUM`) or oversize (TSO) when the guest accepts them
//!   ([`PacketDevice::set_offloads`], from what the frontend negotiated).
//!
//! A guest frame with a blank checksum and no GSO is completed in software
//! before it is sent (`fill`), so the host always sees a complete
//! checksum on ordinary frames; GSO frames carry `NEEDS_CSUM` with the
//! pseudo-header seeded, as the kernel's segmentation expects.

use std::io;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: checksum from `csum_start`, store at
/// `csum_start + csum_offset`.
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum is known good.
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
pub const VIRTIO_NET_HDR_GSO_UDP: u8 = 3;
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
pub const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// Bytes of the legacy `virtio_net_hdr` a TAP uses by default.
pub const VNET_HDR_LEN: usize = 10;

/// `struct virtio_net_hdr` (little-endian fields, as TAP uses on x86).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Bytes of headers (a hint).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header bytes.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Decode header bytes.
    pub fn from_bytes(b: &[u8; VNET_HDR_LEN]) -> Self {
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }
}

/// What the host may hand the guest (`TUNSETOFFLOAD`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// Frames with a partial checksum (`TUN_F_CSUM`).
    pub csum: bool,
    /// TCP/IPv4 frames beyond the MTU (`TUN_F_TSO4`; needs `csum`).
    pub tso4: bool,
    /// TCP/IPv6 frames beyond the MTU (`TUN_F_TSO6`; needs `csum`).
    pub tso6: bool,
}

/// A host network device carrying one vif's frames.
pub trait PacketDevice {
    /// Hand one frame from the guest to the host.
    fn send(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()>;
    /// Take one frame for the guest into `buf` (sized for the largest
    /// frame: [`super::MAX_HOST_FRAME`]). `Ok(None)` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(VnetHdr, usize)>>;
    /// Say which offloads the guest's frontend accepts.
    fn set_offloads(&mut self, offloads: Offloads) -> io::Result<()>;
}

impl<T: PacketDevice + ?Sized> PacketDevice for &mut T {
    fn send(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()> {
        (**self).send(hdr, frame)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(VnetHdr, usize)>> {
        (**self).recv(buf)
    }
    fn set_offloads(&mut self, offloads: Offloads) -> io::Result<()> {
        (**self).set_offloads(offloads)
    }
}

/// A device for tests: records what is sent, hands out queued frames.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::collections::VecDeque;
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::{Offloads, PacketDevice, VnetHdr};

    #[derive(Debug, Default)]
    struct Inner {
        sent: Vec<(VnetHdr, Vec<u8>)>,
        inbox: VecDeque<(VnetHdr, Vec<u8>)>,
        offloads: Offloads,
        fail_sends: usize,
    }

    /// Clones share the same queues.
    #[derive(Clone, Debug, Default)]
    pub struct MockDevice(Arc<Mutex<Inner>>);

    impl MockDevice {
        /// An empty device.
        pub fn new() -> Self {
            Self::default()
        }
        /// Take the frames sent so far.
        pub fn take_sent(&self) -> Vec<(VnetHdr, Vec<u8>)> {
            std::mem::take(&mut self.0.lock().expect("mock lock").sent)
        }
        /// Queue a frame for the guest.
        pub fn inject(&self, hdr: VnetHdr, frame: &[u8]) {
            let mut i = self.0.lock().expect("mock lock");
            i.inbox.push_back((hdr, frame.to_vec()));
        }
        /// Frames queued and not yet received.
        pub fn pending(&self) -> usize {
            self.0.lock().expect("mock lock").inbox.len()
        }
        /// The offloads last set.
        pub fn offloads(&self) -> Offloads {
            self.0.lock().expect("mock lock").offloads
        }
        /// Make the next `n` sends fail.
        pub fn fail_sends(&self, n: usize) {
            self.0.lock().expect("mock lock").fail_sends = n;
        }
    }

    impl PacketDevice for MockDevice {
        fn send(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()> {
            let mut i = self.0.lock().expect("mock lock");
            if i.fail_sends > 0 {
                i.fail_sends -= 1;
                return Err(io::Error::from_raw_os_error(5));
            }
            i.sent.push((*hdr, frame.to_vec()));
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(VnetHdr, usize)>> {
            let mut i = self.0.lock().expect("mock lock");
            let Some((h, f)) = i.inbox.pop_front() else {
                return Ok(None);
            };
            // Like a TAP read into a short buffer: the frame is cut.
            let n = f.len().min(buf.len());
            buf[..n].copy_from_slice(&f[..n]);
            Ok(Some((h, n)))
        }
        fn set_offloads(&mut self, offloads: Offloads) -> io::Result<()> {
            self.0.lock().expect("mock lock").offloads = offloads;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnet_hdr_round_trips_little_endian() {
        let h = VnetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(b, [1, 1, 54, 0, 0xa8, 5, 34, 0, 16, 0]);
        assert_eq!(VnetHdr::from_bytes(&b), h);
    }
}
