//! vCPU commands (Xen's `tools/xl/xl_vcpu.c`): `vcpu-list`, `vcpu-pin`.

use std::fmt::Write as _;

use toolstack::domain::{DomainError, VcpuState};
use toolstack::{error_chain, host};
use xl_config::Bitmap;
use xl_config::cpus::parse_cpu_list;

use crate::getopt::{HELP, OptSpec};
use crate::vmcontrol::NO_OPTIONS;
use crate::{Globals, find_domain, format_bitmap, open_toolstack, parse_args};

/// One `xl vcpu-list` line (`print_vcpuinfo`).
pub fn vcpu_line(name: &str, domid: u32, v: &VcpuState, nr_cpus: u32) -> String {
    let mut s = format!("{name:<32} {domid:5} {:5}", v.vcpuid);
    if !v.online {
        s.push_str("    -   --p ");
    } else {
        let cpu = v.cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = write!(
            s,
            "{cpu:>5} {:>3}{}- ",
            if v.running { 'r' } else { '-' },
            if v.blocked { 'b' } else { '-' }
        );
    }
    let _ = write!(s, "{:9.1}  ", v.time_ns as f64 / 1e9);
    // rxen's vCPUs are Linux threads: the soft affinity is every CPU.
    let _ = writeln!(
        s,
        "{} / {}",
        format_bitmap(&v.hard_affinity, nr_cpus),
        format_bitmap(&Bitmap::first(nr_cpus), nr_cpus)
    );
    s
}

/// `xl vcpu-list [Domain...]`.
pub fn main_vcpu_list(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("vcpu-list", argv, NO_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let nr_cpus = host::read_cpu_topology().map_or(1, |t| t.nr_cpus);
    let domids: Vec<u32> = if m.operands.is_empty() {
        std::iter::once(0).chain(ts.domids()).collect()
    } else {
        let mut v = Vec::new();
        for q in &m.operands {
            match find_domain(&mut ts, q) {
                Ok(d) => v.push(d),
                Err(rc) => return rc,
            }
        }
        v
    };
    let mut s = format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9} {}\n",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity (Hard / Soft)"
    );
    for domid in domids {
        let name = ts.name_of(domid).ok().flatten().unwrap_or_default();
        match ts.vcpus(domid) {
            Ok(vs) => {
                for v in vs {
                    s.push_str(&vcpu_line(&name, domid, &v, nr_cpus));
                }
            }
            Err(DomainError::NotFound(_)) => {}
            Err(e) => {
                eprintln!("xl: {}", error_chain(&e));
            }
        }
    }
    print!("{s}");
    0
}

/// `xl vcpu-pin`'s options.
pub const VCPU_PIN_OPTIONS: &[OptSpec] = &[
    OptSpec {
        short: Some('f'),
        long: Some("force"),
        arg: None,
        help: "Set the affinity even if it breaks the configuration's (one vCPU only).",
    },
    OptSpec {
        short: Some('i'),
        long: Some("ignore-global-affinity-masks"),
        arg: None,
        help: "Ignore the global affinity masks of xl.conf (rxen has none).",
    },
    HELP,
];

/// `xl vcpu-pin [-f] [-i] <Domain> <VCPU|all> <Hard affinity|-> [Soft affinity|-]`.
pub fn main_vcpu_pin(g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("vcpu-pin", argv, VCPU_PIN_OPTIONS, 3) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let (dom, vcpu, hard) = (&m.operands[0], &m.operands[1], &m.operands[2]);
    let soft = m.operands.get(3).filter(|s| s.as_str() != "-");
    let force = m.has('f');
    // strtol: leading digits (after an optional sign).
    let vcpuid: Option<u32> = match leading_number(vcpu) {
        Some(n) if n >= 0 => Some(n as u32),
        _ => {
            if vcpu != "all" {
                eprintln!("Error: Invalid argument {vcpu} as VCPU.");
                return 1;
            }
            if force {
                eprintln!("Error: --force and 'all' as VCPU not allowed.");
                return 1;
            }
            None
        }
    };
    let topology = match host::read_cpu_topology() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            return 1;
        }
    };
    let parse = |s: &str| match parse_cpu_list(s, &topology) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("xl: invalid CPU list \"{s}\": {e}");
            None
        }
    };
    let hard_map = if hard == "-" {
        None
    } else {
        match parse(hard) {
            Some(b) => Some(b),
            None => return 1,
        }
    };
    let soft_map = match soft {
        Some(s) => match parse(s) {
            Some(b) => Some(b),
            None => return 1,
        },
        None => None,
    };
    if g.dryrun {
        let n = topology.nr_cpus;
        let mut line = format!(
            "cpumap: {}",
            hard_map
                .as_ref()
                .map_or_else(|| "-".to_owned(), |b| format_bitmap(b, n))
        );
        if let Some(s) = &soft_map {
            let _ = write!(line, " {}", format_bitmap(s, n));
        }
        println!("{line}");
        return 0;
    }
    if soft_map.is_some() {
        eprintln!(
            "xl: rxen's vCPUs are Linux threads, which have no soft affinity: the soft affinity is ignored"
        );
    }
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let domid = match find_domain(&mut ts, dom) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    let Some(hard_map) = hard_map else {
        return 0;
    };
    match ts.vcpu_pin(domid, vcpuid, &hard_map) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            match vcpuid {
                Some(v) => eprintln!("Could not set affinity for vcpu `{v}'."),
                None => eprintln!("Could not set affinity."),
            }
            1
        }
    }
}

fn leading_number(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    digits.parse::<i64>().ok().map(|n| sign * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_like_xl() {
        let v = VcpuState {
            vcpuid: 1,
            online: true,
            cpu: Some(3),
            running: false,
            blocked: true,
            time_ns: 2_500_000_000,
            hard_affinity: Bitmap((2..4).collect()),
        };
        assert_eq!(
            vcpu_line("demo", 7, &v, 4),
            "demo                                 7     1    3   -b-       2.5  2-3 / all\n"
        );
        let off = VcpuState { online: false, ..v };
        assert_eq!(
            vcpu_line("demo", 7, &off, 4),
            "demo                                 7     1    -   --p       2.5  2-3 / all\n"
        );
        assert_eq!(leading_number("3x"), Some(3));
        assert_eq!(leading_number("all"), None);
        assert_eq!(leading_number("-1"), Some(-1));
    }
}
