//! Network interface specifications: one entry of `vif=[...]`, see
//! xl-network-configuration(5).
//!
//! A spec is comma-separated `key=value` pairs and flags, all optional (the empty string is
//! a valid spec). Follows `parse_nic_config` in Xen's `tools/xl/xl_parse.c` and the rate
//! parser in `tools/libs/util/libxlu_vif.c`. Unlike xl, which prints a message and carries
//! on, a malformed `mac=`, `type=`, `rate=`, `devid=` or `mtu=` is an error here; unknown
//! keys are warnings, as in xl.

use thiserror::Error;

use crate::types::{MacError, NicConfig, NicType};

/// Why a vif specification is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VifSpecError {
    /// `mac=` that is no MAC address.
    #[error("invalid parameter `mac': `{value}'")]
    ParseMac {
        value: String,
        offset: usize,
        #[source]
        source: MacError,
    },
    /// `type=` other than `vif` or `ioemu`.
    #[error("invalid parameter `type': `{value}' (expected vif or ioemu)")]
    CheckType { value: String, offset: usize },
    /// `rate=` that does not parse.
    #[error("invalid parameter `rate': `{value}'")]
    ParseRate {
        value: String,
        offset: usize,
        #[source]
        source: RateError,
    },
    /// `devid=` or `mtu=` that is not a number.
    #[error("invalid parameter `{key}': failed to convert \"{value}\" to number")]
    ParseNumber {
        key: &'static str,
        value: String,
        offset: usize,
    },
}

impl VifSpecError {
    /// The byte offset of the bad value in the spec.
    pub fn offset(&self) -> usize {
        match self {
            VifSpecError::ParseMac { offset, .. }
            | VifSpecError::CheckType { offset, .. }
            | VifSpecError::ParseRate { offset, .. }
            | VifSpecError::ParseNumber { offset, .. } => *offset,
        }
    }
}

/// Why a `rate=` value is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RateError {
    /// Nothing before `@`.
    #[error("no rate specified")]
    MissingRate,
    /// The rate does not read as `N[GMK](B|b)/s`.
    #[error(
        "invalid rate: expected a number followed by B/s, KB/s, MB/s, GB/s (bytes) or b/s, Kb/s, Mb/s, Gb/s (bits)"
    )]
    ParseRate,
    /// The rate is 0 or its number is above 2^32-1.
    #[error("rate overflow: the number must be between 1 and 4294967295")]
    RateRange,
    /// The interval does not read as `N[mu]s` or `N`.
    #[error(
        "invalid replenishment interval: expected a number of seconds, optionally with s, ms or us"
    )]
    ParseInterval,
    /// The interval is 0 or above 2^32-1 microseconds.
    #[error("replenishment interval overflow: it must be between 1us and 4294967295us")]
    IntervalRange,
    /// Bytes per second times the interval does not fit in 64 bits.
    #[error("rate overflow: the rate times the interval is too large")]
    ProductRange,
}

/// A vif spec's result: the NIC and anything xl would only warn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedVif {
    /// The interface.
    pub nic: NicConfig,
    /// Warnings: `(byte offset in the spec, message)`.
    pub warnings: Vec<(usize, String)>,
}

/// COLO keys xl accepts on a vif; rxen does not support COLO and ignores them.
const COLO_KEYS: &[&str] = &[
    "forwarddev",
    "colo_sock_mirror_id",
    "colo_sock_mirror_ip",
    "colo_sock_mirror_port",
    "colo_sock_compare_sec_in_id",
    "colo_sock_compare_sec_in_ip",
    "colo_sock_compare_sec_in_port",
    "colo_sock_redirector0_id",
    "colo_sock_redirector0_ip",
    "colo_sock_redirector0_port",
    "colo_sock_redirector1_id",
    "colo_sock_redirector1_ip",
    "colo_sock_redirector1_port",
    "colo_sock_redirector2_id",
    "colo_sock_redirector2_ip",
    "colo_sock_redirector2_port",
    "colo_sock_compare_pri_in_id",
    "colo_sock_compare_pri_in_ip",
    "colo_sock_compare_pri_in_port",
    "colo_sock_compare_notify_id",
    "colo_sock_compare_notify_ip",
    "colo_sock_compare_notify_port",
    "colo_filter_mirror_queue",
    "colo_filter_mirror_outdev",
    "colo_filter_redirector0_queue",
    "colo_filter_redirector0_indev",
    "colo_filter_redirector0_outdev",
    "colo_filter_redirector1_queue",
    "colo_filter_redirector1_indev",
    "colo_filter_redirector1_outdev",
    "colo_compare_pri_in",
    "colo_compare_sec_in",
    "colo_compare_out",
    "colo_compare_notify_dev",
    "colo_sock_sec_redirector0_id",
    "colo_sock_sec_redirector0_ip",
    "colo_sock_sec_redirector0_port",
    "colo_sock_sec_redirector1_id",
    "colo_sock_sec_redirector1_ip",
    "colo_sock_sec_redirector1_port",
    "colo_filter_sec_redirector0_queue",
    "colo_filter_sec_redirector0_indev",
    "colo_filter_sec_redirector0_outdev",
    "colo_filter_sec_redirector1_queue",
    "colo_filter_sec_redirector1_indev",
    "colo_filter_sec_redirector1_outdev",
    "colo_filter_sec_rewriter0_queue",
    "colo_checkpoint_host",
    "colo_checkpoint_port",
];

/// Parses one vif spec for the interface numbered `devid` (its index in `vif=`).
pub fn parse_vif_spec(spec: &str, devid: i32) -> Result<ParsedVif, VifSpecError> {
    let mut nic = NicConfig {
        devid,
        ..NicConfig::default()
    };
    let mut warnings = Vec::new();
    let mut offset = 0;
    for raw in spec.split(',') {
        let start = offset;
        offset += raw.len() + 1;
        let token = raw.trim_start_matches(' ');
        if token.is_empty() {
            continue;
        }
        let at = start + (raw.len() - token.len());
        apply_token(&mut nic, &mut warnings, token, at)?;
    }
    Ok(ParsedVif { nic, warnings })
}

/// Parses the items of `xl network-attach <Domain> [item...]`: each one
/// `key=value` or flag, taken whole as xl takes it (no splitting at
/// commas). Offsets in errors and warnings are into the item; `Err` also
/// says which item (from 0).
pub fn parse_vif_items(items: &[&str]) -> Result<ParsedVif, (usize, VifSpecError)> {
    let mut nic = NicConfig::default();
    let mut warnings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let token = item.trim_start_matches(' ');
        if token.is_empty() {
            continue;
        }
        let at = item.len() - token.len();
        apply_token(&mut nic, &mut warnings, token, at).map_err(|e| (i, e))?;
    }
    Ok(ParsedVif { nic, warnings })
}

/// Applies one `key=value` or flag (at byte `at` of its spec).
fn apply_token(
    nic: &mut NicConfig,
    warnings: &mut Vec<(usize, String)>,
    token: &str,
    at: usize,
) -> Result<(), VifSpecError> {
    let Some((key, value)) = token.split_once('=') else {
        match token {
            "trusted" => nic.trusted = Some(true),
            "untrusted" => nic.trusted = Some(false),
            _ => warnings.push((at, format!("unrecognized argument `{token}' ignored"))),
        }
        return Ok(());
    };
    let voff = at + key.len() + 1;
    let text = || Some(value.to_owned());
    match key {
        "type" => {
            nic.nictype = match value {
                "vif" => NicType::Vif,
                "ioemu" => NicType::VifIoemu,
                _ => {
                    return Err(VifSpecError::CheckType {
                        value: value.to_owned(),
                        offset: voff,
                    });
                }
            }
        }
        "mac" => {
            nic.mac = Some(value.parse().map_err(|source| VifSpecError::ParseMac {
                value: value.to_owned(),
                offset: voff,
                source,
            })?)
        }
        "bridge" => nic.bridge = text(),
        "netdev" => {
            warnings.push((
                at,
                "the netdev parameter is deprecated, please use gatewaydev instead".to_owned(),
            ));
            nic.gatewaydev = text();
        }
        "gatewaydev" => nic.gatewaydev = text(),
        "ip" => nic.ip = text(),
        "script" => nic.script = text(),
        "backend" => nic.backend_domname = text(),
        "vifname" => nic.ifname = text(),
        "model" => nic.model = text(),
        "rate" => {
            let (bytes, usecs) = parse_rate(value).map_err(|source| VifSpecError::ParseRate {
                value: value.to_owned(),
                offset: voff,
                source,
            })?;
            nic.rate_bytes_per_interval = bytes;
            nic.rate_interval_usecs = usecs;
        }
        "accel" => warnings.push((
            at,
            "the accel parameter for vifs is currently not supported".to_owned(),
        )),
        "devid" => nic.devid = parse_number("devid", value, voff)?,
        "mtu" => nic.mtu = parse_number("mtu", value, voff)?,
        "vlan" => nic.vlan = text(),
        _ if COLO_KEYS.contains(&key) => warnings.push((
            at,
            format!("COLO parameter `{key}' ignored: rxen does not support COLO"),
        )),
        _ => warnings.push((at, format!("unrecognized argument `{token}' ignored"))),
    }
    Ok(())
}

fn parse_number(key: &'static str, value: &str, offset: usize) -> Result<i32, VifSpecError> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| VifSpecError::ParseNumber {
            key,
            value: value.to_owned(),
            offset,
        })
}

/// Parses `RATE[@INTERVAL]` into (bytes per interval, interval in microseconds).
pub fn parse_rate(rate: &str) -> Result<(u64, u32), RateError> {
    let (amount, interval) = match rate.split_once('@') {
        Some((a, i)) => (a, Some(i)),
        None => (rate, None),
    };
    if amount.is_empty() {
        return Err(RateError::MissingRate);
    }
    let bytes_per_sec = parse_bytes_per_sec(amount)?;
    let usecs = match interval {
        Some(i) => parse_interval(i)?,
        None => 50_000,
    };
    let product = bytes_per_sec
        .checked_mul(u64::from(usecs))
        .ok_or(RateError::ProductRange)?;
    Ok((product / 1_000_000, usecs))
}

/// `^[0-9]+[GMK]?[Bb]/s$`.
fn parse_bytes_per_sec(s: &str) -> Result<u64, RateError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let (scale, bits) = match unit {
        "B/s" => (1, false),
        "b/s" => (1, true),
        "KB/s" => (1_000, false),
        "Kb/s" => (1_000, true),
        "MB/s" => (1_000_000, false),
        "Mb/s" => (1_000_000, true),
        "GB/s" => (1_000_000_000, false),
        "Gb/s" => (1_000_000_000, true),
        _ => return Err(RateError::ParseRate),
    };
    if num.is_empty() {
        return Err(RateError::ParseRate);
    }
    let n: u64 = num.parse().map_err(|_| RateError::RateRange)?;
    if n == 0 || n > u64::from(u32::MAX) {
        return Err(RateError::RateRange);
    }
    let bytes = n * scale;
    Ok(if bits { bytes / 8 } else { bytes })
}

/// `^[0-9]+[mu]?s?$`; a bare number is seconds.
fn parse_interval(s: &str) -> Result<u32, RateError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let scale: u64 = match unit {
        "" | "s" => 1_000_000,
        "m" | "ms" => 1_000,
        "u" | "us" => 1,
        _ => return Err(RateError::ParseInterval),
    };
    if num.is_empty() {
        return Err(RateError::ParseInterval);
    }
    let n: u64 = num.parse().map_err(|_| RateError::IntervalRange)?;
    if n == 0 || n > u64::from(u32::MAX) {
        return Err(RateError::IntervalRange);
    }
    u32::try_from(n * scale).map_err(|_| RateError::IntervalRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(spec: &str) -> NicConfig {
        parse_vif_spec(spec, 0).unwrap().nic
    }

    #[test]
    fn network_attach_items_are_taken_whole() {
        let p = parse_vif_items(&[
            "bridge=xenbr0",
            "mac=00:16:3e:01:02:03",
            "script=vif-route",
            "ip=169.254.3.2 169.254.3.3",
            "trusted",
        ])
        .unwrap();
        assert_eq!(p.nic.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(p.nic.mac.unwrap().to_string(), "00:16:3e:01:02:03");
        assert_eq!(p.nic.script.as_deref(), Some("vif-route"));
        assert_eq!(p.nic.ip.as_deref(), Some("169.254.3.2 169.254.3.3"));
        assert_eq!(p.nic.devid, -1, "numbered when attached");
        assert!(p.warnings.is_empty());
        // No splitting at commas, as xl: the bridge is the whole value.
        let p = parse_vif_items(&["bridge=a,mac=00:16:3e:01:02:03"]).unwrap();
        assert_eq!(p.nic.bridge.as_deref(), Some("a,mac=00:16:3e:01:02:03"));
        assert_eq!(p.nic.mac, None);
        // Errors name the item.
        let (i, e) = parse_vif_items(&["bridge=x", "mac=zz"]).unwrap_err();
        assert_eq!(i, 1);
        assert_eq!(e.to_string(), "invalid parameter `mac': `zz'");
        assert_eq!(e.offset(), 4);
        let p = parse_vif_items(&["frobnicate"]).unwrap();
        assert_eq!(
            p.warnings,
            vec![(0, "unrecognized argument `frobnicate' ignored".to_owned())]
        );
    }

    #[test]
    fn keys() {
        let n = nic(
            "mac=00:16:3E:74:3d:76, model=rtl8139,bridge=xenbr0,ip=10.0.0.2,script=vif-route,vifname=web0,type=ioemu,backend=netdom,gatewaydev=eth0,mtu=9000,vlan=10p/20,devid=3,untrusted",
        );
        assert_eq!(n.mac.unwrap().to_string(), "00:16:3e:74:3d:76");
        assert_eq!(n.model.as_deref(), Some("rtl8139"));
        assert_eq!(n.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(n.ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(n.script.as_deref(), Some("vif-route"));
        assert_eq!(n.ifname.as_deref(), Some("web0"));
        assert_eq!(n.nictype, NicType::VifIoemu);
        assert_eq!(n.backend_domname.as_deref(), Some("netdom"));
        assert_eq!(n.gatewaydev.as_deref(), Some("eth0"));
        assert_eq!(n.mtu, 9000);
        assert_eq!(n.vlan.as_deref(), Some("10p/20"));
        assert_eq!(n.devid, 3);
        assert_eq!(n.trusted, Some(false));
        assert_eq!(nic("type=vif").nictype, NicType::Vif);
        assert_eq!(nic("").devid, 0);
        assert_eq!(parse_vif_spec("", 5).unwrap().nic.devid, 5);
    }

    #[test]
    fn rates_as_in_xen_check_xl_vif_parse() {
        let table = [
            ("16000000b/s", (100_000, 50_000)),
            ("16000000b/s@50ms", (100_000, 50_000)),
            ("2000000B/s", (100_000, 50_000)),
            ("16Kb/s", (100, 50_000)),
            ("2KB/s@50ms", (100, 50_000)),
            ("16Mb/s", (100_000, 50_000)),
            ("2MB/s@50ms", (100_000, 50_000)),
            ("8Gb/s", (50_000_000, 50_000)),
            ("1GB/s@50ms", (50_000_000, 50_000)),
            ("80Mb/s@1s", (10_000_000, 1_000_000)),
            ("10MB/s@1s", (10_000_000, 1_000_000)),
            ("1MB/s@20ms", (20_000, 20_000)),
            ("1MB/s@20000us", (20_000, 20_000)),
            ("1MB/s@2", (2_000_000, 2_000_000)),
        ];
        for (rate, want) in table {
            assert_eq!(parse_rate(rate), Ok(want), "{rate}");
        }
        let errors = [
            ("foo", RateError::ParseRate),
            ("10MB", RateError::ParseRate),
            ("10MB/m", RateError::ParseRate),
            ("10ZB/s", RateError::ParseRate),
            ("4294967296b/s", RateError::RateRange),
            ("4294967296Gb/s", RateError::RateRange),
            ("0B/s", RateError::RateRange),
            ("10Mb/s@foo", RateError::ParseInterval),
            ("10MB/s@10h", RateError::ParseInterval),
            ("1B/s@4294967296us", RateError::IntervalRange),
            ("1B/s@4294968ms", RateError::IntervalRange),
            ("1B/s@4295s", RateError::IntervalRange),
            ("1B/s@0us", RateError::IntervalRange),
            ("4294967295GB/s@5us", RateError::ProductRange),
            ("4296MB/s@4294s", RateError::ProductRange),
            ("@", RateError::MissingRate),
        ];
        for (rate, want) in errors {
            assert_eq!(parse_rate(rate), Err(want), "{rate}");
        }
    }

    #[test]
    fn errors_and_warnings() {
        let e = parse_vif_spec("bridge=xenbr0,mac=00:16:3e:zz:00:01", 0).unwrap_err();
        assert_eq!(e.offset(), 18);
        assert_eq!(
            e.to_string(),
            "invalid parameter `mac': `00:16:3e:zz:00:01'"
        );
        let e = parse_vif_spec("type=e1000", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter `type': `e1000' (expected vif or ioemu)"
        );
        let e = parse_vif_spec("rate=10ZB/s", 0).unwrap_err();
        assert_eq!(e.to_string(), "invalid parameter `rate': `10ZB/s'");
        assert!(matches!(
            e,
            VifSpecError::ParseRate {
                source: RateError::ParseRate,
                ..
            }
        ));
        let e = parse_vif_spec("mtu=big", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter `mtu': failed to convert \"big\" to number"
        );
        let p = parse_vif_spec(
            "bridge=br0, speed=fast,accel=x,netdev=eth1,colo_compare_out=y,foo",
            0,
        )
        .unwrap();
        let w: Vec<_> = p.warnings.iter().map(|(o, m)| format!("{o}:{m}")).collect();
        assert_eq!(
            w,
            [
                "12:unrecognized argument `speed=fast' ignored",
                "23:the accel parameter for vifs is currently not supported",
                "31:the netdev parameter is deprecated, please use gatewaydev instead",
                "43:COLO parameter `colo_compare_out' ignored: rxen does not support COLO",
                "62:unrecognized argument `foo' ignored",
            ]
        );
        assert_eq!(p.nic.gatewaydev.as_deref(), Some("eth1"));
    }
}
