//! Commands that describe domains and the host (Xen's `tools/xl/xl_info.c`): `list`,
//! `vm-list`, `info`, `domid`, `domname`, `uptime`, `dmesg`.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use toolstack::domain::{DomainError, DomainInfo, Toolstack};
use toolstack::{error_chain, host, info};
use xl_config::DomainConfig;

use crate::getopt::{HELP, OptSpec};
use crate::vmcontrol::NO_OPTIONS;
use crate::{Globals, find_domain, format_bitmap, open_toolstack, parse_args};

const fn opt(short: char, long: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        short: Some(short),
        long: Some(long),
        arg: None,
        help,
    }
}

/// `xl list`'s options.
pub const LIST_OPTIONS: &[OptSpec] = &[
    opt('l', "long", "Print each domain's configuration, as JSON."),
    opt(
        'v',
        "verbose",
        "Also print UUIDs, shutdown reasons and security labels.",
    ),
    opt('Z', "context", "Also print security labels."),
    opt('c', "cpupool", "Also print each domain's CPU pool."),
    opt('n', "numa", "Also print each domain's NUMA node affinity."),
    HELP,
];

#[derive(Serialize)]
struct LongEntry<'a> {
    domid: u32,
    config: &'a DomainConfig,
}

fn print_stdout(s: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// `xl list [options] [Domain...]`.
pub fn main_list(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("list", argv, LIST_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let domains = if m.operands.is_empty() {
        match ts.list() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("libxl_list_domain failed: {}", error_chain(&e));
                return 1;
            }
        }
    } else {
        let mut v = Vec::new();
        for q in &m.operands {
            let domid = match find_domain(&mut ts, q) {
                Ok(d) => d,
                Err(rc) => return rc,
            };
            match ts.info(domid) {
                Ok(d) => v.push(d),
                Err(DomainError::NotFound(_)) => {
                    eprintln!("Error: Domain '{q}' does not exist.");
                    return 1;
                }
                Err(e) => {
                    eprintln!("libxl_domain_info failed: {}", error_chain(&e));
                    return 1;
                }
            }
        }
        v
    };
    if m.has('l') {
        return print_stdout(&list_long(&mut ts, &domains));
    }
    let nodes = host::read_cpu_topology().map_or(1, |t| t.nodes.len() as u32);
    print_stdout(&list_table(
        &domains,
        m.has('v'),
        m.has('Z'),
        m.has('c'),
        m.has('n').then_some(nodes),
    ))
}

fn list_long(ts: &mut Toolstack, domains: &[DomainInfo]) -> String {
    let mut configs = Vec::new();
    for d in domains {
        let c = if d.domid == 0 {
            ts.dom0_config()
        } else {
            ts.config(d.domid)
        };
        // As libxl: a domain whose configuration cannot be retrieved is left out.
        if let Ok(c) = c {
            configs.push((d.domid, c));
        }
    }
    let entries: Vec<LongEntry<'_>> = configs
        .iter()
        .map(|(domid, config)| LongEntry {
            domid: *domid,
            config,
        })
        .collect();
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    entries
        .serialize(&mut ser)
        .expect("domain configurations serialize to JSON");
    let mut s = String::from_utf8(out).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// The `xl list` table (`list_domains` in xl_info.c).
pub fn list_table(
    domains: &[DomainInfo],
    verbose: bool,
    context: bool,
    cpupool: bool,
    numa_nodes: Option<u32>,
) -> String {
    let mut s =
        String::from("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if verbose {
        s.push_str("   UUID                            Reason-Code\tSecurity Label");
    }
    if context && !verbose {
        s.push_str("   Security Label");
    }
    if cpupool {
        s.push_str("         Cpupool");
    }
    if numa_nodes.is_some() {
        s.push_str(" NODE Affinity");
    }
    s.push('\n');
    for d in domains {
        let _ = write!(
            s,
            "{:<40} {:5} {:5} {:5}     {}  {:8.1}",
            d.name,
            d.domid,
            d.current_memkb / 1024,
            d.vcpu_online,
            d.state_letters(),
            d.cpu_time_ns as f64 / 1e9
        );
        if verbose {
            let _ = write!(s, " {}", d.uuid);
            match d.shutdown {
                Some(r) => {
                    let _ = write!(s, " {:8x}", r.code());
                }
                None => {
                    let _ = write!(s, " {:>8}", "-");
                }
            }
        }
        if verbose || context {
            let _ = write!(s, " {:>16}", "-");
        }
        if cpupool {
            let _ = write!(s, "{:>16}", "Pool-0");
        }
        if let Some(n) = numa_nodes {
            let _ = write!(s, " {}", format_bitmap(&xl_config::Bitmap::first(n), n));
        }
        s.push('\n');
    }
    s
}

/// `xl vm-list`.
pub fn main_vm_list(_g: &Globals, argv: &[String]) -> u8 {
    if let Err(rc) = parse_args("vm-list", argv, NO_OPTIONS, 0) {
        return rc;
    }
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let domains = match ts.list() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("libxl_list_vm failed: {}", error_chain(&e));
            return 1;
        }
    };
    let mut s = String::from("UUID                                  ID    name\n");
    for d in domains {
        let _ = writeln!(s, "{}  {}    {:<30}", d.uuid, d.domid, d.name);
    }
    print_stdout(&s)
}

/// `xl info`'s options.
pub const INFO_OPTIONS: &[OptSpec] = &[
    opt('n', "numa", "Also print the CPU, device and NUMA topology."),
    opt('x', "xenstore", "Also print xenstored's features."),
    HELP,
];

/// `xl info [-n] [-x] [name]`.
pub fn main_info(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("info", argv, INFO_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    // As Xen's xl, this needs the toolstack (and so xenstored) even though it reads
    // nothing from the store.
    if let Err(rc) = open_toolstack() {
        return rc;
    }
    let fields = info::fields(m.has('x').then_some(0));
    if !m.has('n') {
        return print_stdout(&info::render(
            &fields,
            m.operands.first().map(String::as_str),
        ));
    }
    // As Xen's: the host's fields, the topology and NUMA tables, then the
    // hypervisor's fields; a field name given with -n is ignored.
    let numa = match toolstack::host::read_numa_info() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("xl: info -n: {e}");
            return 1;
        }
    };
    let split = fields
        .iter()
        .position(|(k, _)| *k == "xen_major")
        .unwrap_or(fields.len());
    let mut out = info::render(&fields[..split], None);
    out += &info::render_numa(&numa);
    out += &info::render(&fields[split..], None);
    print_stdout(&out)
}

/// `xl domid <DomainName>`.
pub fn main_domid(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("domid", argv, NO_OPTIONS, 1) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let name = &m.operands[0];
    match ts.find_name(name).ok().flatten() {
        Some(id) => print_stdout(&format!("{id}\n")),
        None => {
            eprintln!("Can't get domid of domain name '{name}', maybe this domain does not exist.");
            1
        }
    }
}

/// `xl domname <DomainId>`.
pub fn main_domname(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("domname", argv, NO_OPTIONS, 1) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let arg = &m.operands[0];
    // strtol: leading digits count, the rest is ignored; no digits at all is an error.
    let digits: String = arg.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        eprintln!("Invalid domain id.\n");
        return 1;
    }
    let domid: u32 = digits.parse().unwrap_or(u32::MAX);
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    match ts.name_of(domid) {
        Ok(Some(name)) => print_stdout(&format!("{name}\n")),
        _ => {
            eprintln!(
                "Can't get domain name of domain id '{domid}', maybe this domain does not exist."
            );
            1
        }
    }
}

/// `xl uptime`'s options.
pub const UPTIME_OPTIONS: &[OptSpec] = &[
    OptSpec {
        short: Some('s'),
        long: None,
        arg: None,
        help: "Short format, like uptime(1).",
    },
    HELP,
];

/// xl's `uptime_to_string`.
pub fn uptime_string(uptime: u64, short: bool) -> String {
    let day = uptime / 86400;
    let hour = (uptime % 86400) / 3600;
    let min = (uptime % 3600) / 60;
    let sec = uptime % 60;
    let days = match day {
        0 => String::new(),
        1 => "1 day, ".to_owned(),
        d => format!("{d} days, "),
    };
    if short {
        format!("{days}{hour:2}:{min:02}")
    } else {
        format!("{days}{hour:2}:{min:02}:{sec:02}")
    }
}

fn clock_hms(now: u64) -> String {
    // Local time as the C library sees it (TZ), as xl prints it.
    let t = now as libc::time_t;
    // SAFETY: an all-zero tm is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "??:??:??".into();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// `xl uptime [-s] [Domain...]`.
pub fn main_uptime(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("uptime", argv, UPTIME_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let short = m.has('s');
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut s = String::new();
    if !short {
        let _ = writeln!(s, "{:<33} {:>4} Uptime", "Name", "ID");
    }
    for domid in domids {
        let up = if domid == 0 {
            match host::uptime_secs() {
                Ok(u) => u,
                Err(_) => {
                    eprintln!("Can not get Dom0 uptime.");
                    return 255;
                }
            }
        } else {
            let start = ts
                .store()
                .read(&format!("/local/domain/{domid}/vm"))
                .ok()
                .flatten()
                .and_then(|vm| ts.store().read(&format!("{vm}/start_time")).ok().flatten())
                .and_then(|t| t.split('.').next().and_then(|x| x.parse::<u64>().ok()));
            match start {
                Some(t) => now.saturating_sub(t),
                None => {
                    eprintln!("xl: domain {domid}: can't get start time of domain");
                    continue;
                }
            }
        };
        let name = ts.name_of(domid).ok().flatten().unwrap_or_default();
        if short {
            let _ = writeln!(
                s,
                " {} up {}, {name} ({domid})",
                clock_hms(now),
                uptime_string(up, true)
            );
        } else {
            let _ = writeln!(s, "{name:<33} {domid:4} {}", uptime_string(up, false));
        }
    }
    print_stdout(&s)
}

/// `xl dmesg`'s options.
pub const DMESG_OPTIONS: &[OptSpec] =
    &[opt('c', "clear", "Clear the log after printing it."), HELP];

/// `xl dmesg [-c]`: rxen's hypervisor log.
pub fn main_dmesg(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("dmesg", argv, DMESG_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let path = ts.paths.hypervisor_log();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("xl: cannot read {}: {e}", path.display());
            return 1;
        }
    };
    let rc = print_stdout(&text);
    if m.has('c') {
        if let Err(e) = std::fs::write(&path, "") {
            eprintln!("xl: cannot clear {}: {e}", path.display());
            return 1;
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes() {
        assert_eq!(uptime_string(59, false), " 0:00:59");
        assert_eq!(uptime_string(3 * 86400 + 3661, false), "3 days,  1:01:01");
        assert_eq!(uptime_string(86400 + 600, true), "1 day,  0:10");
    }
}
