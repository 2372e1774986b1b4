//! Disk specifications: one entry of `disk=[...]`, see xl-disk-configuration(5).
//!
//! ```text
//! [<key>=<value>|<flag>,]*[<target>,[<format>,[<vdev>,[<access>]]]],[<key>=<value>|<flag>,]*[target=<target>]
//! ```
//!
//! Follows the scanner in Xen's `tools/libs/util/libxlu_disk_l.l` and `libxlu_disk.c`,
//! including its tie-breaking: a deprecated prefix (`phy:`, `file:`, `raw:`, `iscsi:`,
//! ...) wins over everything else; `key=value` and flags win over positional parameters;
//! `target=` takes the rest of the string, so it comes last; whitespace before a parameter
//! is ignored. Positional parameters fill target, format, vdev and access in that order;
//! after a deprecated prefix the format position is skipped (`phy:/dev/vg/lv,xvda,w`), and
//! `vdev:cdrom` marks a CD-ROM. A parameter given twice with different values is an error.

use thiserror::Error;

use crate::types::{DiskBackend, DiskConfig, DiskFormat, DiskSpecification};

/// Why a disk specification is wrong. Offsets are byte offsets into the spec string.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DiskSpecError {
    /// A parameter given twice, with different values.
    #[error("{what} respecified: near `{near}'")]
    Respecify {
        what: &'static str,
        near: String,
        offset: usize,
    },
    /// A value outside the parameter's set.
    #[error("unknown value for {what}: near `{near}' (expected {expected})")]
    CheckValue {
        what: &'static str,
        near: String,
        offset: usize,
        expected: &'static str,
    },
    /// `key=value` with a key xl does not know.
    #[error("unknown parameter: near `{near}'")]
    LookupParameter { near: String, offset: usize },
    /// `word:/...` where `word:` is not a known deprecated prefix.
    #[error(
        "unknown deprecated disk prefix: near `{near}' (expected phy:, file:, tap:, tap2:, tapdisk:, aio:, ioemu:, raw:, qcow:, qcow2:, vhd:, iscsi:, nbd:, enbd: or drbd:)"
    )]
    LookupPrefix { near: String, offset: usize },
    /// `vdev:type` with a type other than `cdrom` or `disk`.
    #[error("unknown deprecated type: near `{near}' (expected cdrom or disk)")]
    CheckDevtype { near: String, offset: usize },
    /// More than four positional parameters.
    #[error(
        "too many positional parameters: near `{near}' (expected at most target, format, vdev and access; use target= for a target containing commas)"
    )]
    CountPositional { near: String, offset: usize },
    /// Something that is no parameter at all, such as a lone `=`.
    #[error("bad disk syntax: near `{near}'")]
    Scan { near: String, offset: usize },
    /// No virtual device name.
    #[error("no vdev specified")]
    MissingVdev,
    /// No target, and not a CD-ROM.
    #[error("no target specified (and device not removable)")]
    MissingTarget,
}

impl DiskSpecError {
    /// The byte offset in the spec the error points at, when there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DiskSpecError::Respecify { offset, .. }
            | DiskSpecError::CheckValue { offset, .. }
            | DiskSpecError::LookupParameter { offset, .. }
            | DiskSpecError::LookupPrefix { offset, .. }
            | DiskSpecError::CheckDevtype { offset, .. }
            | DiskSpecError::CountPositional { offset, .. }
            | DiskSpecError::Scan { offset, .. } => Some(*offset),
            DiskSpecError::MissingVdev | DiskSpecError::MissingTarget => None,
        }
    }
}

/// Parses one disk specification.
pub fn parse_disk_spec(spec: &str) -> Result<DiskConfig, DiskSpecError> {
    parse_disk_specs(&[spec])
}

/// Parses a disk described by several specification strings, as `xl block-attach` takes
/// them (`xl block-attach 0 format=raw vdev=hda target=/x`): each string is scanned in
/// turn into the same disk.
pub fn parse_disk_specs(specs: &[&str]) -> Result<DiskConfig, DiskSpecError> {
    let mut p = DiskParser {
        disk: DiskConfig {
            readwrite: 1,
            ..DiskConfig::default()
        },
        had_depr_prefix: false,
        access_set: false,
    };
    for spec in specs {
        p.scan(spec)?;
    }
    p.finish()
}

const FORMATS: &str = "raw, qcow, qcow2, vhd, qed or empty";

struct DiskParser {
    disk: DiskConfig,
    had_depr_prefix: bool,
    access_set: bool,
}

/// A piece of the spec: its text (trailing comma removed) and where it starts.
#[derive(Clone, Copy)]
struct Piece<'a> {
    text: &'a str,
    offset: usize,
}

impl Piece<'_> {
    fn err_near(&self) -> String {
        self.text.to_owned()
    }

    /// The value after `key=`.
    fn value(&self) -> Piece<'_> {
        let eq = self.text.find('=').map_or(0, |i| i + 1);
        Piece {
            text: &self.text[eq..],
            offset: self.offset + eq,
        }
    }
}

/// Keys whose value runs to the next comma.
const VALUE_KEYS: &[&str] = &[
    "format",
    "devtype",
    "access",
    "backend",
    "backendtype",
    "specification",
    "vdev",
    "script",
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
    "grant_usage",
];

/// Bare flags.
const FLAGS: &[&str] = &[
    "cdrom",
    "direct-io-safe",
    "discard",
    "no-discard",
    "colo",
    "no-colo",
    "trusted",
    "untrusted",
];

const SCRIPT_PREFIXES: &[&str] = &["iscsi", "nbd", "enbd", "drbd"];
const FORMAT_PREFIXES: &[&str] = &["raw", "qcow", "qcow2", "vhd"];
const IGNORED_PREFIXES: &[&str] = &["tapdisk", "tap", "tap2", "aio", "ioemu", "file", "phy"];

impl DiskParser {
    fn scan(&mut self, spec: &str) -> Result<(), DiskSpecError> {
        let mut pos = 0;
        while pos < spec.len() {
            let rest = &spec[pos..];
            // Whitespace before a parameter is ignored.
            let ws = rest.len() - rest.trim_start_matches([' ', '\t', '\n']).len();
            if ws > 0 {
                pos += ws;
                continue;
            }
            // A deprecated prefix: `word:` at the start of a parameter.
            if let Some(word_len) = prefix_word(rest) {
                let word = &rest[..word_len];
                let piece = Piece {
                    text: word,
                    offset: pos,
                };
                pos += word_len + 1;
                self.deprecated_prefix(piece, &rest[..word_len + 1])?;
                continue;
            }
            // `target=` takes everything that follows.
            if let Some(t) = rest.strip_prefix("target=") {
                let t = t.strip_suffix(',').unwrap_or(t);
                let piece = Piece {
                    text: t,
                    offset: pos + "target=".len(),
                };
                save_string(&mut self.disk.pdev_path, "target", piece)?;
                return Ok(());
            }
            // Otherwise the parameter runs to the next comma (which it consumes).
            let end = rest.find(',').unwrap_or(rest.len());
            let consumed = (end + 1).min(rest.len());
            let piece = Piece {
                text: &rest[..end],
                offset: pos,
            };
            pos += consumed;
            if let Some((key, _)) = piece.text.split_once('=') {
                if VALUE_KEYS.contains(&key) {
                    self.key_value(key, piece)?;
                } else if is_param_name(key) && !piece.text[key.len() + 1..].is_empty() {
                    return Err(DiskSpecError::LookupParameter {
                        near: piece.err_near(),
                        offset: piece.offset,
                    });
                } else {
                    // Positional text up to the `=`, then a stray `=`.
                    let eq = piece.offset + key.len();
                    if !key.is_empty() {
                        self.positional(Piece {
                            text: key,
                            offset: piece.offset,
                        })?;
                    }
                    return Err(DiskSpecError::Scan {
                        near: spec[eq..].to_owned(),
                        offset: eq,
                    });
                }
            } else if FLAGS.contains(&piece.text) {
                self.flag(piece.text);
            } else {
                self.positional(piece)?;
            }
        }
        Ok(())
    }

    fn deprecated_prefix(
        &mut self,
        word: Piece<'_>,
        with_colon: &str,
    ) -> Result<(), DiskSpecError> {
        self.had_depr_prefix = true;
        if FORMAT_PREFIXES.contains(&word.text) {
            self.set_format(word)
        } else if SCRIPT_PREFIXES.contains(&word.text) {
            let script = format!("block-{}", word.text);
            save_string(
                &mut self.disk.script,
                "script",
                Piece {
                    text: &script,
                    offset: word.offset,
                },
            )
        } else if IGNORED_PREFIXES.contains(&word.text) {
            Ok(())
        } else {
            Err(DiskSpecError::LookupPrefix {
                near: with_colon.to_owned(),
                offset: word.offset,
            })
        }
    }

    fn key_value(&mut self, key: &str, piece: Piece<'_>) -> Result<(), DiskSpecError> {
        let v = piece.value();
        match key {
            "format" => self.set_format(v)?,
            "devtype" => match v.text {
                "cdrom" => self.disk.is_cdrom = 1,
                "disk" => self.disk.is_cdrom = 0,
                _ => {
                    return Err(DiskSpecError::CheckValue {
                        what: "type",
                        near: piece.err_near(),
                        offset: piece.offset,
                        expected: "cdrom or disk",
                    });
                }
            },
            "access" => self.set_access(v)?,
            "backend" => save_string(&mut self.disk.backend_domname, "backend", v)?,
            "backendtype" => {
                let b = match v.text {
                    "phy" => DiskBackend::Phy,
                    "tap" => DiskBackend::Tap,
                    "qdisk" => DiskBackend::Qdisk,
                    "standalone" => DiskBackend::Standalone,
                    _ => {
                        return Err(DiskSpecError::CheckValue {
                            what: "backendtype",
                            near: v.err_near(),
                            offset: v.offset,
                            expected: "phy, tap, qdisk or standalone",
                        });
                    }
                };
                set_enum(
                    &mut self.disk.backend,
                    DiskBackend::Unknown,
                    b,
                    "backend",
                    v,
                )?;
            }
            "specification" => {
                let s = match v.text {
                    "xen" => DiskSpecification::Xen,
                    "virtio" => DiskSpecification::Virtio,
                    _ => {
                        return Err(DiskSpecError::CheckValue {
                            what: "specification",
                            near: v.err_near(),
                            offset: v.offset,
                            expected: "xen or virtio",
                        });
                    }
                };
                set_enum(
                    &mut self.disk.specification,
                    DiskSpecification::Unknown,
                    s,
                    "specification",
                    v,
                )?;
            }
            "vdev" => save_string(&mut self.disk.vdev, "vdev", v)?,
            "script" => save_string(&mut self.disk.script, "script", v)?,
            "colo-host" => save_string(&mut self.disk.colo_host, "colo-host", v)?,
            "colo-port" => match v.text.parse::<i32>() {
                Ok(p) if p > 0 => self.disk.colo_port = p,
                _ => {
                    return Err(DiskSpecError::CheckValue {
                        what: "colo_port",
                        near: v.err_near(),
                        offset: v.offset,
                        expected: "a port number",
                    });
                }
            },
            "colo-export" => save_string(&mut self.disk.colo_export, "colo-export", v)?,
            "active-disk" => save_string(&mut self.disk.active_disk, "active-disk", v)?,
            "hidden-disk" => save_string(&mut self.disk.hidden_disk, "hidden-disk", v)?,
            "grant_usage" => match v.text {
                "1" => self.disk.grant_usage = Some(true),
                "0" => self.disk.grant_usage = Some(false),
                _ => {
                    return Err(DiskSpecError::CheckValue {
                        what: "grant_usage",
                        near: v.err_near(),
                        offset: v.offset,
                        expected: "0 or 1",
                    });
                }
            },
            _ => unreachable!("key {key} is in VALUE_KEYS"),
        }
        Ok(())
    }

    fn flag(&mut self, flag: &str) {
        let d = &mut self.disk;
        match flag {
            "cdrom" => d.is_cdrom = 1,
            "direct-io-safe" => d.direct_io_safe = true,
            "discard" => d.discard_enable = Some(true),
            "no-discard" => d.discard_enable = Some(false),
            "colo" => d.colo_enable = Some(true),
            "no-colo" => d.colo_enable = Some(false),
            "trusted" => d.trusted = Some(true),
            "untrusted" => d.trusted = Some(false),
            _ => unreachable!("flag {flag} is in FLAGS"),
        }
    }

    fn positional(&mut self, p: Piece<'_>) -> Result<(), DiskSpecError> {
        if self.disk.pdev_path.is_none() {
            save_string(&mut self.disk.pdev_path, "target", p)
        } else if !self.had_depr_prefix && self.disk.format == DiskFormat::Unknown {
            let target_empty = self.disk.pdev_path.as_deref() == Some("");
            if target_empty && self.vdev_and_devtype(p)? {
                self.disk.format = DiskFormat::Empty;
                Ok(())
            } else {
                self.set_format(p)
            }
        } else if self.disk.vdev.is_none() {
            if !self.vdev_and_devtype(p)? {
                save_string(&mut self.disk.vdev, "vdev", p)?;
            }
            Ok(())
        } else if !self.access_set {
            self.access_set = true;
            self.set_access(p)
        } else {
            Err(DiskSpecError::CountPositional {
                near: p.err_near(),
                offset: p.offset,
            })
        }
    }

    /// `vdev:cdrom` / `vdev:disk`; false (doing nothing) when there is no colon.
    fn vdev_and_devtype(&mut self, p: Piece<'_>) -> Result<bool, DiskSpecError> {
        let Some(colon) = p.text.rfind(':') else {
            return Ok(false);
        };
        save_string(
            &mut self.disk.vdev,
            "vdev",
            Piece {
                text: &p.text[..colon],
                offset: p.offset,
            },
        )?;
        match &p.text[colon + 1..] {
            "cdrom" => self.disk.is_cdrom = 1,
            "disk" => self.disk.is_cdrom = 0,
            other => {
                return Err(DiskSpecError::CheckDevtype {
                    near: other.to_owned(),
                    offset: p.offset + colon + 1,
                });
            }
        }
        Ok(true)
    }

    fn set_format(&mut self, p: Piece<'_>) -> Result<(), DiskSpecError> {
        let f = match p.text {
            "" | "raw" => DiskFormat::Raw,
            "qcow" => DiskFormat::Qcow,
            "qcow2" => DiskFormat::Qcow2,
            "vhd" => DiskFormat::Vhd,
            "empty" => DiskFormat::Empty,
            "qed" => DiskFormat::Qed,
            _ => {
                return Err(DiskSpecError::CheckValue {
                    what: "format",
                    near: p.err_near(),
                    offset: p.offset,
                    expected: FORMATS,
                });
            }
        };
        set_enum(&mut self.disk.format, DiskFormat::Unknown, f, "format", p)
    }

    fn set_access(&mut self, p: Piece<'_>) -> Result<(), DiskSpecError> {
        self.disk.readwrite = match p.text {
            "r" | "ro" => 0,
            "rw" | "w" | "" => 1,
            _ => {
                return Err(DiskSpecError::CheckValue {
                    what: "access",
                    near: p.err_near(),
                    offset: p.offset,
                    expected: "r, ro, w or rw",
                });
            }
        };
        Ok(())
    }

    fn finish(mut self) -> Result<DiskConfig, DiskSpecError> {
        let d = &mut self.disk;
        if d.format == DiskFormat::Unknown {
            d.format = DiskFormat::Raw;
        }
        if d.is_cdrom != 0 {
            d.removable = 1;
            d.readwrite = 0;
            if d.pdev_path.as_deref().is_none_or(str::is_empty) {
                d.format = DiskFormat::Empty;
            }
        }
        if d.vdev.is_none() {
            return Err(DiskSpecError::MissingVdev);
        }
        if d.pdev_path.is_none() && d.removable == 0 {
            return Err(DiskSpecError::MissingTarget);
        }
        Ok(self.disk)
    }
}

/// Sets a string parameter; setting it again is an error unless it was empty.
fn save_string(
    slot: &mut Option<String>,
    what: &'static str,
    p: Piece<'_>,
) -> Result<(), DiskSpecError> {
    if slot.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(DiskSpecError::Respecify {
            what,
            near: p.err_near(),
            offset: p.offset,
        });
    }
    *slot = Some(p.text.to_owned());
    Ok(())
}

/// Sets an enum parameter; setting it again to another value is an error.
fn set_enum<T: PartialEq + Copy>(
    slot: &mut T,
    unknown: T,
    value: T,
    what: &'static str,
    p: Piece<'_>,
) -> Result<(), DiskSpecError> {
    if *slot != unknown && *slot != value {
        return Err(DiskSpecError::Respecify {
            what,
            near: p.err_near(),
            offset: p.offset,
        });
    }
    *slot = value;
    Ok(())
}

/// `[a-z][-a-z0-9]*`: what xl takes for the name of an unknown `key=value` parameter.
fn is_param_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(b'a'..=b'z'))
        && b.all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// If `s` starts with a deprecated-prefix-like `word:` (a lowercase word followed by a
/// colon and then the end of the string or a character other than a lowercase letter or
/// digit, or a known prefix followed by anything), the length of the word.
fn prefix_word(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_lowercase() {
        return None;
    }
    let len = b
        .iter()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .count();
    if b.get(len) != Some(&b':') {
        return None;
    }
    let word = &s[..len];
    let known = FORMAT_PREFIXES.contains(&word)
        || SCRIPT_PREFIXES.contains(&word)
        || IGNORED_PREFIXES.contains(&word);
    let next = b.get(len + 1);
    let generic = next.is_none_or(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()));
    (known || generic).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The disk as compact JSON, for table comparisons.
    fn json(spec: &str) -> String {
        serde_json::to_string(&parse_disk_spec(spec).unwrap()).unwrap()
    }

    fn err(spec: &str) -> String {
        parse_disk_spec(spec).unwrap_err().to_string()
    }

    #[test]
    fn equivalent_spellings_from_the_manual() {
        let table: &[(&[&str], &str)] = &[
            (
                &[
                    "/dev/vg/guest-volume,,hda",
                    "/dev/vg/guest-volume,raw,hda,rw",
                    "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
                    "raw:/dev/vg/guest-volume,hda,w",
                ],
                r#"{"pdev_path":"/dev/vg/guest-volume","vdev":"hda","format":"raw","readwrite":1}"#,
            ),
            (
                &[
                    "/root/image.iso,,hdc,cdrom",
                    "/root/image.iso,,hdc,,cdrom",
                    "/root/image.iso,raw,hdc,devtype=cdrom",
                    "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
                    "raw:/root/image.iso,hdc:cdrom,ro",
                ],
                r#"{"pdev_path":"/root/image.iso","vdev":"hdc","format":"raw","removable":1,"is_cdrom":1}"#,
            ),
            (
                &["backendtype=phy,vdev=xvdb,access=w,target=/dev/vg/guest-volume"],
                r#"{"pdev_path":"/dev/vg/guest-volume","vdev":"xvdb","backend":"phy","format":"raw","readwrite":1}"#,
            ),
            (
                &[
                    "devtype=cdrom,,,hdc",
                    ",,hdc:cdrom,r",
                    ",hdc:cdrom,r",
                    "vdev=hdc,access=r,devtype=cdrom,target=",
                    ",empty,hdc:cdrom,r",
                ],
                r#"{"pdev_path":"","vdev":"hdc","format":"empty","removable":1,"is_cdrom":1}"#,
            ),
            (
                &[
                    "vdev=hdc,access=r,devtype=cdrom,format=empty",
                    "vdev=hdc,access=r,devtype=cdrom",
                ],
                r#"{"vdev":"hdc","format":"empty","removable":1,"is_cdrom":1}"#,
            ),
            (
                &[
                    "iscsi:iqn.2001-05.com.example:0-8a0906-examplehost,xvda,w",
                    "vdev=xvda,access=w,script=block-iscsi,target=iqn.2001-05.com.example:0-8a0906-examplehost",
                ],
                r#"{"pdev_path":"iqn.2001-05.com.example:0-8a0906-examplehost","vdev":"xvda","format":"raw","script":"block-iscsi","readwrite":1}"#,
            ),
            (
                &["drbd:app01,hda,w"],
                r#"{"pdev_path":"app01","vdev":"hda","format":"raw","script":"block-drbd","readwrite":1}"#,
            ),
            (
                &["phy:/dev/vg_c6xendom0/c68-x8664-hvm,xvda,rw"],
                r#"{"pdev_path":"/dev/vg_c6xendom0/c68-x8664-hvm","vdev":"xvda","format":"raw","readwrite":1}"#,
            ),
            (
                &["file:/opt/isos/CentOS-6.8-x86_64-minimal.iso,xvdb:cdrom,r"],
                r#"{"pdev_path":"/opt/isos/CentOS-6.8-x86_64-minimal.iso","vdev":"xvdb","format":"raw","removable":1,"is_cdrom":1}"#,
            ),
            (
                &[
                    "tap:aio:/images/a.img,xvda,w",
                    "tap2:tapdisk:aio:/images/a.img,xvda,w",
                ],
                r#"{"pdev_path":"/images/a.img","vdev":"xvda","format":"raw","readwrite":1}"#,
            ),
            (
                &[
                    "tap:qcow2:/images/a.qcow2,xvda,w",
                    "/images/a.qcow2,qcow2,xvda,w",
                    "format=qcow2,vdev=xvda,target=/images/a.qcow2",
                ],
                r#"{"pdev_path":"/images/a.qcow2","vdev":"xvda","format":"qcow2","readwrite":1}"#,
            ),
            (
                &["/i.vhd,vhd,xvdc,r", "vhd:/i.vhd,xvdc,ro"],
                r#"{"pdev_path":"/i.vhd","vdev":"xvdc","format":"vhd"}"#,
            ),
        ];
        for (specs, want) in table {
            for spec in *specs {
                assert_eq!(json(spec), *want, "{spec}");
            }
        }
        assert_eq!(
            json("/i.qed,qed,xvdd"),
            r#"{"pdev_path":"/i.qed","vdev":"xvdd","format":"qed","readwrite":1}"#
        );
        assert_eq!(
            json("/i.qcow,qcow,xvdd"),
            r#"{"pdev_path":"/i.qcow","vdev":"xvdd","format":"qcow","readwrite":1}"#
        );
        assert_eq!(
            json("vdev=xvde,target=/a,b,c"),
            r#"{"pdev_path":"/a,b,c","vdev":"xvde","format":"raw","readwrite":1}"#
        );
        assert_eq!(
            json("vdev=xvde,target=/a,b,c,"),
            r#"{"pdev_path":"/a,b,c","vdev":"xvde","format":"raw","readwrite":1}"#
        );
    }

    #[test]
    fn whitespace_separates_only_between_parameters() {
        // Within one string, `vdev=hda target=x` is one vdev value (as in xl); separate
        // strings (block-attach style) are separate parameters.
        let d = parse_disk_specs(&["discard", "vdev=hda", "target=/some/disk/image.raw"]).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"pdev_path":"/some/disk/image.raw","vdev":"hda","format":"raw","readwrite":1,"discard_enable":"True"}"#
        );
    }

    #[test]
    fn flags() {
        let d = parse_disk_spec(
            "cdrom,no-discard,direct-io-safe,untrusted,vdev=hda,target=/some/disk/image.iso",
        )
        .unwrap();
        assert_eq!(d.is_cdrom, 1);
        assert_eq!(d.removable, 1);
        assert_eq!(d.readwrite, 0);
        assert_eq!(d.discard_enable, Some(false));
        assert!(d.direct_io_safe);
        assert_eq!(d.trusted, Some(false));
        let d = parse_disk_spec(
            "/x,,xvda,w,trusted,discard,backend=dom1,specification=virtio,grant_usage=1",
        )
        .unwrap();
        assert_eq!(d.trusted, Some(true));
        assert_eq!(d.discard_enable, Some(true));
        assert_eq!(d.backend_domname.as_deref(), Some("dom1"));
        assert_eq!(d.specification, DiskSpecification::Virtio);
        assert_eq!(d.grant_usage, Some(true));
        let d = parse_disk_spec(
            "/x,,xvda,colo,colo-host=h,colo-port=9000,colo-export=e,active-disk=/a,hidden-disk=/h",
        )
        .unwrap();
        assert_eq!(d.colo_enable, Some(true));
        assert_eq!(d.colo_port, 9000);
        assert_eq!(d.colo_host.as_deref(), Some("h"));
        let d = parse_disk_spec("/x,raw,xvda:disk,w").unwrap();
        assert_eq!((d.vdev.as_deref(), d.is_cdrom), (Some("xvda"), 0));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let table = [
            ("foo", "no vdev specified"),
            (
                "vdev=xvda",
                "no target specified (and device not removable)",
            ),
            (
                "/dev/sdb,xvda,w",
                "unknown value for format: near `xvda' (expected raw, qcow, qcow2, vhd, qed or empty)",
            ),
            (
                "/x,qcow3,xvda",
                "unknown value for format: near `qcow3' (expected raw, qcow, qcow2, vhd, qed or empty)",
            ),
            (
                "format=vmdk,vdev=xvda,target=/x",
                "unknown value for format: near `vmdk' (expected raw, qcow, qcow2, vhd, qed or empty)",
            ),
            (
                "/x,raw,xvda,rx",
                "unknown value for access: near `rx' (expected r, ro, w or rw)",
            ),
            (
                "/x,raw,xvda,w,extra",
                "too many positional parameters: near `extra' (expected at most target, format, vdev and access; use target= for a target containing commas)",
            ),
            (
                "/x,raw,xvda,devtype=floppy",
                "unknown value for type: near `devtype=floppy' (expected cdrom or disk)",
            ),
            (
                "/x,raw,xvda:floppy",
                "unknown deprecated type: near `floppy' (expected cdrom or disk)",
            ),
            (
                "foo:/x,xvda",
                "unknown deprecated disk prefix: near `foo:' (expected phy:, file:, tap:, tap2:, tapdisk:, aio:, ioemu:, raw:, qcow:, qcow2:, vhd:, iscsi:, nbd:, enbd: or drbd:)",
            ),
            ("/x,raw,xvda,mode=w", "unknown parameter: near `mode=w'"),
            (
                "vdev=xvda,vdev=xvdb,target=/x",
                "vdev respecified: near `xvdb'",
            ),
            (
                "/x,raw,xvda,format=qcow2",
                "format respecified: near `qcow2'",
            ),
            ("raw:/x,xvda,format=vhd", "format respecified: near `vhd'"),
            ("/x,raw,xvda,target=/y", "target respecified: near `/y'"),
            ("/x=y,raw,xvda", "bad disk syntax: near `=y,raw,xvda'"),
            (
                " discard vdev=hda target=/x",
                "bad disk syntax: near `=hda target=/x'",
            ),
            (
                "/x,raw,xvda,backendtype=nbd",
                "unknown value for backendtype: near `nbd' (expected phy, tap, qdisk or standalone)",
            ),
        ];
        for (spec, want) in table {
            assert_eq!(err(spec), want, "{spec}");
        }
    }

    #[test]
    fn error_offsets_point_into_the_spec() {
        let e = parse_disk_spec("/dev/sdb,xvda,w").unwrap_err();
        assert_eq!(e.offset(), Some(9));
        let e = parse_disk_spec("format=vmdk,vdev=xvda,target=/x").unwrap_err();
        assert_eq!(e.offset(), Some(7));
        assert_eq!(parse_disk_spec("vdev=x").unwrap_err().offset(), None);
    }
}
