//! XenStore path rules (`docs/misc/xenstore.txt`): the allowed characters,
//! relative paths resolved against a domain's home `/local/domain/<domid>`,
//! no `//`, no trailing `/` except the root, length limits; plus the
//! parent/child relations that watches use.

use crate::wire::Errno;
use std::borrow::Cow;
use xen_abi::xs_wire::XENSTORE_ABS_PATH_MAX;

/// Whether `c` may appear in a path: ASCII alphanumerics and `-/_@`.
pub fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// The home of a domain, which relative paths are resolved against.
pub fn domain_path(domid: u16) -> String {
    Home::new(domid).to_string()
}

/// [`domain_path`] without an allocation: `/local/domain/<domid>` held
/// inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Home {
    buf: [u8; Home::CAP],
    len: u8,
}

impl Home {
    const PREFIX: &'static [u8] = b"/local/domain/";
    const CAP: usize = Home::PREFIX.len() + 5;

    pub fn new(domid: u16) -> Home {
        let mut buf = [0u8; Home::CAP];
        buf[..Home::PREFIX.len()].copy_from_slice(Home::PREFIX);
        let mut digits = [0u8; 5];
        let mut i = digits.len();
        let mut d = domid;
        loop {
            i -= 1;
            digits[i] = b'0' + (d % 10) as u8;
            d /= 10;
            if d == 0 {
                break;
            }
        }
        let n = digits.len() - i;
        buf[Home::PREFIX.len()..Home::PREFIX.len() + n].copy_from_slice(&digits[i..]);
        Home {
            buf,
            len: (Home::PREFIX.len() + n) as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).expect("ASCII")
    }
}

impl std::ops::Deref for Home {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    /// The absolute path (or `@special` name).
    pub path: String,
    /// Whether the client gave it relative to its home.
    pub relative: bool,
}

/// Validates a client's path and makes it absolute.
///
/// `home` is the caller's `/local/domain/<domid>`; `allow_special` admits
/// `@introduceDomain`-style names (only watches and permission requests use
/// them); `rel_max` is the caller's `path-max` quota (0: unlimited), which
/// bounds the part of the path below `/local/domain/<n>/`.
pub fn canonicalize(
    input: &[u8],
    home: &str,
    allow_special: bool,
    rel_max: usize,
) -> Result<Canonical, Errno> {
    canonicalize_cow(input, home, allow_special, rel_max).map(|(p, relative)| Canonical {
        path: p.into_owned(),
        relative,
    })
}

/// [`canonicalize`], borrowing the input when it is already absolute;
/// returns the path and whether it was relative.
pub fn canonicalize_cow<'a>(
    input: &'a [u8],
    home: &str,
    allow_special: bool,
    rel_max: usize,
) -> Result<(Cow<'a, str>, bool), Errno> {
    let (&first, _) = input.split_first().ok_or(Errno::EINVAL)?;
    // One pass: the characters, and an empty component ("//").
    let mut prev = 0u8;
    let mut empty_component = false;
    for &c in input {
        if !valid_char(c) {
            return Err(Errno::EINVAL);
        }
        empty_component |= prev == b'/' && c == b'/';
        prev = c;
    }
    if first == b'@' && !allow_special {
        return Err(Errno::EINVAL);
    }
    // No "//" and no trailing "/" (but the root) in a path; a relative one
    // is appended to the home after a "/", which adds neither.
    if first != b'@' && (empty_component || (prev == b'/' && input.len() > 1)) {
        return Err(Errno::EINVAL);
    }
    // All bytes are ASCII here.
    let s = std::str::from_utf8(input).map_err(|_| Errno::EINVAL)?;
    let relative = first != b'/' && first != b'@';
    let path: Cow<'a, str> = if relative {
        Cow::Owned(format!("{home}/{s}"))
    } else {
        Cow::Borrowed(s)
    };
    if path.len() > XENSTORE_ABS_PATH_MAX {
        return Err(Errno::EINVAL);
    }
    if rel_max != 0 && path.len() - local_offset(&path) > rel_max {
        return Err(Errno::EINVAL);
    }
    Ok((path, relative))
}

/// Length of a leading `/local/domain/<n>/` (at most five digits), or 0.
fn local_offset(path: &str) -> usize {
    const PFX: &str = "/local/domain/";
    let Some(rest) = path.strip_prefix(PFX) else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 5 || rest.as_bytes().get(digits) != Some(&b'/') {
        return 0;
    }
    PFX.len() + digits + 1
}

/// The parent of an absolute path (`/` for top-level nodes and the root).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of an absolute path.
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The path of `name` below `dir`.
pub fn child_path(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `child` equals `parent` or lies below it, at most `depth`
/// levels down when a depth is given (watch matching, `XS_WATCH`).
pub fn is_child(child: &str, parent: &str, depth: Option<u32>) -> bool {
    let Some(rest) = child.strip_prefix(parent) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let below = if parent == "/" {
        rest
    } else {
        match rest.strip_prefix('/') {
            Some(r) => r,
            None => return false,
        }
    };
    match depth {
        None => true,
        Some(d) => {
            let levels = below.split('/').count() as u64;
            levels <= d as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Result<String, Errno> {
        canonicalize(s.as_bytes(), "/local/domain/3", false, 0).map(|c| c.path)
    }

    #[test]
    fn relative_paths_resolve_to_the_domain_home() {
        let c = canonicalize(b"device/vbd", "/local/domain/3", false, 0).unwrap();
        assert_eq!(c.path, "/local/domain/3/device/vbd");
        assert!(c.relative);
        let c = canonicalize(b"/tool", "/local/domain/3", false, 0).unwrap();
        assert!(!c.relative);
    }

    #[test]
    fn bad_paths_are_einval() {
        for p in [
            "", "/a/", "/a//b", "//", "/a b", "/a\u{e9}", "rel/", "/a\n", "rel//x", "a/b/", "///",
        ] {
            assert_eq!(canon(p), Err(Errno::EINVAL), "{p:?}");
        }
        assert_eq!(canon("@introduceDomain"), Err(Errno::EINVAL));
        assert_eq!(
            canonicalize(b"@introduceDomain", "/x", true, 0)
                .unwrap()
                .path,
            "@introduceDomain"
        );
        assert_eq!(canon("/"), Ok("/".to_string()));
        assert_eq!(canon("a"), Ok("/local/domain/3/a".to_string()));
        assert_eq!(canon("a/b"), Ok("/local/domain/3/a/b".to_string()));
        // Special names are not checked for "/" placement (unchanged).
        assert_eq!(
            canonicalize(b"@x//y/", "/x", true, 0).unwrap().path,
            "@x//y/"
        );
        assert_eq!(canon("/a-b_c@9"), Ok("/a-b_c@9".to_string()));
        assert_eq!(canonicalize(b"/a\0", "/x", false, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn length_limits() {
        let long = format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX - 1));
        assert!(canon(&long).is_ok());
        let too_long = format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX));
        assert_eq!(canon(&too_long), Err(Errno::EINVAL));
        // The path-max quota counts only what lies below /local/domain/<n>/.
        let rel = "x".repeat(20);
        assert!(canonicalize(rel.as_bytes(), "/local/domain/3", false, 20).is_ok());
        let rel = "x".repeat(21);
        assert_eq!(
            canonicalize(rel.as_bytes(), "/local/domain/3", false, 20),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            canonicalize(b"/tool/abcdefghijklmnopqrstu", "/local/domain/3", false, 20),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn home_is_the_domain_path() {
        for d in [0u16, 7, 10, 99, 100, 12345, 65535] {
            assert_eq!(Home::new(d).as_str(), format!("/local/domain/{d}"));
        }
        assert_eq!(domain_path(3), "/local/domain/3");
        let (p, rel) = canonicalize_cow(b"/a/b", "/local/domain/3", false, 0).unwrap();
        assert!(matches!(p, Cow::Borrowed("/a/b")) && !rel);
    }

    #[test]
    fn parent_and_basename() {
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(basename("/a/b/c"), "c");
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }

    #[test]
    fn child_matching_with_depth() {
        assert!(is_child("/a/b", "/a", None));
        assert!(is_child("/a", "/a", Some(0)));
        assert!(!is_child("/ab", "/a", None));
        assert!(!is_child("/a", "/a/b", None));
        assert!(is_child("/x/y", "/", None));
        assert!(is_child("/x", "/", Some(1)));
        assert!(!is_child("/x/y", "/", Some(1)));
        assert!(is_child("/a/b", "/a", Some(1)));
        assert!(!is_child("/a/b/c", "/a", Some(1)));
        assert!(!is_child("/a/b", "/a", Some(0)));
        assert!(is_child("@releaseDomain/5", "@releaseDomain", Some(1)));
    }
}
