//! Node permissions: an owner entry followed by per-domain entries, each
//! `n`/`r`/`w`/`b` (none, read, write, both) plus a domain id, as
//! `docs/misc/xenstore.txt` defines them. The owner has full access; the
//! owner entry's letter is the access of every domain without its own entry.

use crate::wire::Errno;
use std::fmt;

/// What one entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    pub fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    fn from_letter(c: u8) -> Option<Access> {
        Some(match c {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return None,
        })
    }

    pub fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    pub fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One permission entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    pub domid: u16,
    pub access: Access,
}

impl Perm {
    pub fn new(domid: u16, access: Access) -> Perm {
        Perm { domid, access }
    }

    /// Parses `r5`, `b0`, `w0x10`...: a letter and a domain id in C `strtol`
    /// base-0 notation (decimal, `0x` hex, leading-0 octal), at most 65535.
    pub fn parse(s: &[u8]) -> Result<Perm, Errno> {
        let (&c, num) = s.split_first().ok_or(Errno::EINVAL)?;
        let access = Access::from_letter(c).ok_or(Errno::EINVAL)?;
        let num = std::str::from_utf8(num).map_err(|_| Errno::EINVAL)?;
        let v = parse_c_uint(num).ok_or(Errno::EINVAL)?;
        let domid = u16::try_from(v).map_err(|_| Errno::EINVAL)?;
        Ok(Perm { domid, access })
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.access.letter(), self.domid)
    }
}

fn parse_c_uint(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The permissions of a node: never empty; entry 0 names the owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// Permissions with just an owner and a default access.
    pub fn owner(domid: u16, default: Access) -> Perms {
        Perms(vec![Perm::new(domid, default)])
    }

    /// Builds permissions from entries; `None` if there are none.
    pub fn from_vec(v: Vec<Perm>) -> Option<Perms> {
        if v.is_empty() { None } else { Some(Perms(v)) }
    }

    /// Parses NUL-separated strings as sent in `XS_SET_PERMS`.
    pub fn parse_strings(strings: &[&[u8]]) -> Result<Perms, Errno> {
        let v = strings
            .iter()
            .map(|s| Perm::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Perms::from_vec(v).ok_or(Errno::EINVAL)
    }

    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    pub fn owner_id(&self) -> u16 {
        self.0[0].domid
    }

    pub fn set_owner(&mut self, domid: u16) {
        self.0[0].domid = domid;
    }

    /// Removes every non-owner entry for `domid`; returns whether any was.
    pub fn remove_domain(&mut self, domid: u16) -> bool {
        let before = self.0.len();
        let owner = self.0[0];
        let mut rest: Vec<Perm> = self.0[1..]
            .iter()
            .copied()
            .filter(|p| p.domid != domid)
            .collect();
        rest.insert(0, owner);
        self.0 = rest;
        self.0.len() != before
    }

    /// The access a domain gets from these permissions, given the domain it
    /// targets (`XS_SET_TARGET`), before privilege is considered. The owner
    /// (or its target holder) gets `Both`; otherwise the first entry naming
    /// the domain or its target; otherwise the owner entry's default.
    pub fn access_for(&self, domid: u16, target: Option<u16>) -> Access {
        let matches = |p: &Perm| p.domid == domid || Some(p.domid) == target;
        if matches(&self.0[0]) {
            return Access::Both;
        }
        self.0[1..]
            .iter()
            .find(|p| matches(p))
            .map(|p| p.access)
            .unwrap_or(self.0[0].access)
    }

    /// Whether `domid` owns (or, through its target, controls) the node.
    pub fn is_owner(&self, domid: u16, target: Option<u16>) -> bool {
        self.0[0].domid == domid || Some(self.0[0].domid) == target
    }

    /// The `XS_GET_PERMS` payload: each entry as a string with its NUL.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_payload(&mut v);
        v
    }

    /// Appends [`Perms::to_payload`] to `out`.
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        for p in &self.0 {
            out.push(p.access.letter() as u8);
            let mut digits = [0u8; 5];
            let mut i = digits.len();
            let mut d = p.domid;
            loop {
                i -= 1;
                digits[i] = b'0' + (d % 10) as u8;
                d /= 10;
                if d == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[i..]);
            out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(Perm::parse(b"b0").unwrap(), Perm::new(0, Access::Both));
        assert_eq!(Perm::parse(b"r5").unwrap(), Perm::new(5, Access::Read));
        assert_eq!(Perm::parse(b"w0x10").unwrap(), Perm::new(16, Access::Write));
        assert_eq!(Perm::parse(b"n010").unwrap(), Perm::new(8, Access::None));
        for bad in [&b""[..], b"x1", b"r", b"r-1", b"r1a", b"r65536", b"r 1"] {
            assert_eq!(Perm::parse(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        let p = Perms::parse_strings(&[b"n3", b"r0", b"b7"]).unwrap();
        assert_eq!(p.to_payload(), b"n3\0r0\0b7\0");
        assert_eq!(Perms::parse_strings(&[]), Err(Errno::EINVAL));
    }

    #[test]
    fn access_rules() {
        let p = Perms::parse_strings(&[b"n3", b"r5", b"b7", b"w5"]).unwrap();
        assert_eq!(p.access_for(3, None), Access::Both, "owner");
        assert_eq!(p.access_for(5, None), Access::Read, "first entry wins");
        assert_eq!(p.access_for(7, None), Access::Both);
        assert_eq!(p.access_for(9, None), Access::None, "default");
        assert_eq!(p.access_for(9, Some(3)), Access::Both, "target of owner");
        assert_eq!(p.access_for(9, Some(5)), Access::Read, "target's entry");
        let p = Perms::parse_strings(&[b"r3"]).unwrap();
        assert_eq!(p.access_for(4, None), Access::Read);
    }

    #[test]
    fn remove_domain_keeps_owner() {
        let mut p = Perms::parse_strings(&[b"n3", b"r5", b"b3", b"w5"]).unwrap();
        assert!(p.remove_domain(5));
        assert_eq!(p.to_payload(), b"n3\0b3\0");
        assert!(!p.remove_domain(9));
    }
}
