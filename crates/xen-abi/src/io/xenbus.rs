//! Split-device handshake states, `xen/include/public/io/xenbus.h`: each end
//! of a PV device publishes one of these in its XenStore `state` node.
#![allow(non_upper_case_globals)]

use core::fmt;

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum XenbusState {
    Unknown = 0,
    Initialising = 1,
    /// Waiting for the other end's details (backends, after publishing
    /// their features).
    InitWait = 2,
    /// Details published, waiting for the other end to connect (frontends).
    Initialised = 3,
    Connected = 4,
    /// Being shut down.
    Closing = 5,
    Closed = 6,
    Reconfiguring = 7,
    Reconfigured = 8,
}

impl XenbusState {
    /// The state a node's value names; `None` for anything else (a value
    /// outside the enum, or not a decimal number).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().parse::<u32>().ok()? {
            0 => Self::Unknown,
            1 => Self::Initialising,
            2 => Self::InitWait,
            3 => Self::Initialised,
            4 => Self::Connected,
            5 => Self::Closing,
            6 => Self::Closed,
            7 => Self::Reconfiguring,
            8 => Self::Reconfigured,
            _ => return None,
        })
    }
}

impl fmt::Display for XenbusState {
    /// The node's value: the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_roundtrip() {
        for v in 0..=8u32 {
            let s = XenbusState::parse(&v.to_string()).unwrap();
            assert_eq!(s as u32, v);
            assert_eq!(s.to_string(), v.to_string());
        }
        assert_eq!(XenbusState::parse("4\n"), Some(XenbusState::Connected));
        for bad in ["9", "-1", "", "x", "4294967296"] {
            assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
        }
    }
}
