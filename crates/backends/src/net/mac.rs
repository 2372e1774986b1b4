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

pub use xl_config::{Mac, MacError};

/// Xen's OUI.
pub const XEN_OUI: [u8; 3] = [0x00, 0x16, 0x3e];

/// The address of the host side of every vif (fe:ff:ff:ff:ff:ff).
pub const HOST_SIDE_MAC: Mac = Mac([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);

/// The stable address of device `devid` of the domain with `uuid`.
/// (Addresses are parsed and printed by xl-config's [`Mac`], the one
/// parser of `mac=` and of the `mac` nodes.)
pub fn generated(uuid: &[u8; 16], devid: u32) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uuid.iter().chain(devid.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let t = h.to_be_bytes();
    Mac([XEN_OUI[0], XEN_OUI[1], XEN_OUI[2], t[0], t[1], t[2]])
}

/// Whether the group (multicast) bit of `mac` is clear.
pub fn is_unicast(mac: Mac) -> bool {
    mac.0[0] & 1 == 0
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
        let a = generated(&UUID, 0);
        // Pinned (FNV-1a computed independently): a change here changes
        // every existing guest's address.
        assert_eq!(a.to_string(), "00:16:3e:59:02:56");
        assert_eq!(generated(&UUID, 0), a);
        let b = generated(&UUID, 1);
        assert_ne!(a, b);
        let mut other = UUID;
        other[15] ^= 1;
        assert_ne!(generated(&other, 0), a);
        for devid in 0..64 {
            let m = generated(&UUID, devid);
            assert_eq!(m.0[..3], XEN_OUI);
            assert!(is_unicast(m));
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
            "+0:16:3e:00:00:01",
        ] {
            assert_eq!(bad.parse::<Mac>(), Err(MacError), "{bad:?}");
        }
        assert_eq!(HOST_SIDE_MAC.to_string(), "fe:ff:ff:ff:ff:ff");
        assert!(is_unicast(HOST_SIDE_MAC));
    }
}
