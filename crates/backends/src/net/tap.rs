//! The host end of a vif: a TAP device (`/dev/net/tun`, `IFF_TAP |
//! IFF_NO_PI | IFF_VNET_HDR`), named `vif<domid>.<devid>` as Xen names its
//! backend interfaces.
//!
//! The device lives as long as the [`Tap`] (it is not made persistent), so
//! a domain process that dies takes its interfaces with it. The fd is
//! non-blocking; [`PacketDevice::recv`] answers `None` when nothing waits.
//! The ioctl wrappers follow `Documentation/networking/tuntap.rst`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::device::{Offloads, PacketDevice, VNET_HDR_LEN, VnetHdr};
use super::mac::Mac;

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;

/// Errors of TAP creation and setup.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The name is not a valid interface name.
    #[error("`{0}' is not a valid interface name (1-15 characters, no '/', ':', '%' or space)")]
    Name(String),
    /// `/dev/net/tun` could not be opened.
    #[error("opening /dev/net/tun failed")]
    Open(#[source] io::Error),
    /// `TUNSETIFF` failed.
    #[error("creating TAP device {name} failed")]
    Create {
        /// The name asked for.
        name: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Setting the device's MAC address failed.
    #[error("setting the MAC address of {name} failed")]
    SetMac {
        /// The device.
        name: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// `vif<domid>.<devid>`, the name Xen gives a vif's backend interface.
pub fn vif_name(domid: u16, devid: u32) -> String {
    format!("vif{domid}.{devid}")
}

/// Whether `name` can name a network interface.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b':' | b'%'))
}

/// A TAP device with virtio-net headers.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data (a name array and a union of
    // integers, sockaddrs and a pointer); all zero bytes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr
}

impl Tap {
    /// Create the TAP device `name` (down, with [`super::mac::HOST_SIDE_MAC`]
    /// unless changed) and open it non-blocking.
    pub fn create(name: &str) -> Result<Tap, TapError> {
        if !valid_ifname(name) {
            return Err(TapError::Name(name.to_owned()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(TapError::Open)?;
        let mut ifr = ifreq_for(name);
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which `ifr` is, on
        // a tun fd we own.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
        if r < 0 {
            return Err(TapError::Create {
                name: name.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        let tap = Tap {
            file,
            name: name.to_owned(),
        };
        tap.set_mac(super::mac::HOST_SIDE_MAC)?;
        Ok(tap)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Set the interface's own MAC address (`SIOCSIFHWADDR` on the tun fd).
    pub fn set_mac(&self, mac: Mac) -> Result<(), TapError> {
        let mut ifr = ifreq_for(&self.name);
        // SAFETY: writing the hwaddr member of the zeroed union in place.
        let sa = unsafe { &mut ifr.ifr_ifru.ifru_hwaddr };
        sa.sa_family = libc::ARPHRD_ETHER;
        for (d, s) in sa.sa_data.iter_mut().zip(mac.0) {
            *d = s as libc::c_char;
        }
        // SAFETY: SIOCSIFHWADDR reads one ifreq, which `ifr` is; the tun
        // driver handles it on the device's fd.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::SIOCSIFHWADDR, &ifr) };
        if r < 0 {
            return Err(TapError::SetMac {
                name: self.name.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl PacketDevice for Tap {
    fn send(&mut self, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()> {
        let h = hdr.to_bytes();
        let iov = [IoSlice::new(&h), IoSlice::new(frame)];
        // SAFETY: writev reads the two buffers the IoSlices describe
        // (IoSlice is ABI-compatible with iovec); the fd is ours.
        let n = unsafe {
            libc::writev(
                self.file.as_raw_fd(),
                iov.as_ptr().cast::<libc::iovec>(),
                iov.len() as libc::c_int,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != VNET_HDR_LEN + frame.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short TAP write"));
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(VnetHdr, usize)>> {
        let mut h = [0u8; VNET_HDR_LEN];
        let mut iov = [IoSliceMut::new(&mut h), IoSliceMut::new(buf)];
        // SAFETY: readv writes at most the two buffers the IoSliceMuts
        // describe (ABI-compatible with iovec); the fd is ours.
        let n = unsafe {
            libc::readv(
                self.file.as_raw_fd(),
                iov.as_mut_ptr().cast::<libc::iovec>(),
                iov.len() as libc::c_int,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n < VNET_HDR_LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short TAP read"));
        }
        Ok(Some((VnetHdr::from_bytes(&h), n - VNET_HDR_LEN)))
    }

    fn set_offloads(&mut self, o: Offloads) -> io::Result<()> {
        // Never TUN_F_TSO_ECN: netif has no way to tell the guest.
        let mut flags: libc::c_uint = 0;
        if o.csum {
            flags |= libc::TUN_F_CSUM;
            if o.tso4 {
                flags |= libc::TUN_F_TSO4;
            }
            if o.tso6 {
                flags |= libc::TUN_F_TSO6;
            }
        }
        // SAFETY: TUNSETOFFLOAD takes its flags by value; the fd is ours.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(vif_name(5, 0), "vif5.0");
        assert!(valid_ifname(&vif_name(32751, 255)));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "sixteen-chars-xx",
            "eth%d",
            "a:1",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
        assert!(matches!(Tap::create("a/b"), Err(TapError::Name(_))));
    }
}
