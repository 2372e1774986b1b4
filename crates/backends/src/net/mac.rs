//! MAC addresses of virtual interfaces.
//!
//! A `vif=` entry without `mac=` gets an address under Xen's organisationally
//! unique identifier 00:16:3e, as libxl gives it. libxl picks the last three
//! bytes at random each time the device is created; rxen derives them from
//! the domain's UUID and the device number instead, so a domain keeps its
//! addresses across `xl create` (DHCP leases and neighbour caches stay
//! valid) and two NICs of one domain differ. The three bytes are the first
//! three of the 64-bit FNV-1a hash of the UUID's 16 bytes followed by the
//! devid as 4 little-endian bytes. FNV-1a is written out here because it is
//! fixed forever, unlike the standard library's hasher.
//!
//! The host end of the link (the TAP) gets [`HOST_SIDE_MAC`], as Xen gives
//! its `vif` devices: the numerically largest unicast address, so a bridge
//! never takes it as its own address.

use std::fmt;
use std::str::FromStr;

/// Xen's OUI.
pub const XEN_OUI: [u8; 3] = [0x00, 0x16, 0x3e];

/// The address of the host side of every vif (fe:ff:ff:ff:ff:ff).
pub const HOST_SIDE_MAC: Mac = Mac([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

/// Why a MAC address did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected six hexadecimal bytes separated by colons, like 00:16:3e:29:00:00")]
pub struct MacError;

impl Mac {
    /// The stable address of device `devid` of the domain with `uuid`.
    pub fn generated(uuid: &[u8; 16], devid: u32) -> Mac {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in uuid.iter().chain(devid.to_le_bytes().iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let t = h.to_be_bytes();
        Mac([XEN_OUI[0], XEN_OUI[1], XEN_OUI[2], t[0], t[1], t[2]])
    }

    /// Whether the group (multicast) bit is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }
}

impl FromStr for Mac {
    type Err = MacError;

    /// Six groups of one or two hex digits separated by `:` (or `-`).
    fn from_str(s: &str) -> Result<Self, MacError> {
        let mut out = [0u8; 6];
        let mut groups = s.split([':', '-']);
        for b in &mut out {
            let g = groups.next().ok_or(MacError)?;
            if g.is_empty() || g.len() > 2 {
                return Err(MacError);
            }
            *b = u8::from_str_radix(g, 16).map_err(|_| MacError)?;
        }
        if groups.next().is_some() {
            return Err(MacError);
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: [u8; 16] = [
        0x5b, 0x0e, 0x3a, 0x2c, 0x7a, 0x1f, 0x4c, 0x61, 0x9d, 0x4e, 0x01, 0x23, 0x45, 0x67, 0x89,
        0xab,
    ];

    #[test]
    fn generated_addresses_are_stable_distinct_and_xen_owned() {
        let a = Mac::generated(&UUID, 0);
        // Pinned (FNV-1a computed independently): a change here changes
        // every existing guest's address.
        assert_eq!(a.to_string(), "00:16:3e:59:02:56");
        assert_eq!(Mac::generated(&UUID, 0), a);
        let b = Mac::generated(&UUID, 1);
        assert_ne!(a, b);
        let mut other = UUID;
        other[15] ^= 1;
        assert_ne!(Mac::generated(&other, 0), a);
        for devid in 0..64 {
            let m = Mac::generated(&UUID, devid);
            assert_eq!(m.0[..3], XEN_OUI);
            assert!(m.is_unicast());
        }
    }

    #[test]
    fn parse_and_print() {
        let m: Mac = "00:16:3E:0a:b:0C".parse().unwrap();
        assert_eq!(m.0, [0, 0x16, 0x3e, 0x0a, 0x0b, 0x0c]);
        assert_eq!(m.to_string(), "00:16:3e:0a:0b:0c");
        assert_eq!("00-16-3e-00-00-01".parse::<Mac>().unwrap().0[5], 1);
        for bad in [
            "",
            "00:16:3e:00:00",
            "00:16:3e:00:00:00:00",
            "00:16:3e:00:00:100",
            "g0:0:0:0:0:0",
            "00:16:3e::00:01",
        ] {
            assert_eq!(bad.parse::<Mac>(), Err(MacError), "{bad:?}");
        }
        assert_eq!(HOST_SIDE_MAC.to_string(), "fe:ff:ff:ff:ff:ff");
        assert!(HOST_SIDE_MAC.is_unicast());
    }
}
