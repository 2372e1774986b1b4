//! `xl info`: the host and the "hypervisor" (Linux KVM with rxen's Xen interface),
//! described with the fields Xen's `xl info` prints, in its order.
//!
//! The values are this host's: `host`/`release`/`version`/`machine` are the kernel's
//! (`uname`), CPUs and memory come from sysfs and `/proc` (`total_memory` is `MemTotal`,
//! `free_memory` `MemAvailable`, in MiB), `hw_caps` are the CPU's feature words in Xen's
//! order. Where Xen names its own build, rxen names the Xen interface it presents to
//! guests (`xen_major`/`xen_minor`/`xen_extra`, `xen_caps`) and KVM: the hypervisor's
//! command line is the host kernel's, and `kvm_api_version`/`kvm_xen_hvm_flags` (rxen's
//! own fields) say what KVM offers. `virt_caps` lists what rxen can run on this host:
//! HVM-container (PVH) guests with hardware paging and grant tables v1, if KVM is there
//! with its Xen support; nothing otherwise.

use crate::host;

/// The Xen interface version rxen presents to guests (`XENVER_version`).
pub use xen_abi::version::{
    RXEN_XEN_EXTRA as XEN_EXTRA, RXEN_XEN_MAJOR as XEN_MAJOR, RXEN_XEN_MINOR as XEN_MINOR,
};
/// `XENVER_capabilities`: 64-bit HVM-container guests.
pub const XEN_CAPS: &str = "hvm-3.0-x86_64";

/// One `name : value` line.
pub type Field = (&'static str, String);

/// Every field of `xl info`, in Xen's order, with rxen's additions after Xen's
/// hypervisor fields.
pub fn fields(xenstore_features: Option<u32>) -> Vec<Field> {
    let u = host::uname();
    let topo = host::read_cpu_topology().unwrap_or_default();
    let online = host::online_cpus().unwrap_or_default();
    let (threads, cores) = host::cpu_topology_counts();
    let khz = host::cpu_khz();
    let mem = host::read_meminfo().unwrap_or_default();
    let kvm = host::kvm_info();
    let xen_ok = kvm.is_some_and(|k| k.xen_hvm_flags.contains(kvm_xen::XenCaps::REQUIRED));
    let cmdline = std::fs::read_to_string("/proc/cmdline")
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default();
    let caps = hw_caps();
    let mut v: Vec<Field> = vec![
        ("host", u.nodename),
        ("release", u.release),
        ("version", u.version),
        ("machine", u.machine),
        ("nr_cpus", online.iter().count().to_string()),
        ("max_cpu_id", topo.nr_cpus.saturating_sub(1).to_string()),
        ("nr_nodes", topo.nodes.len().to_string()),
        ("cores_per_socket", cores.to_string()),
        ("threads_per_core", threads.to_string()),
        ("cpu_mhz", format!("{}.{:03}", khz / 1000, khz % 1000)),
        (
            "hw_caps",
            caps.iter()
                .map(|w| format!("{w:08x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        (
            "virt_caps",
            if xen_ok {
                " hvm hap gnttab-v1".to_owned()
            } else {
                String::new()
            },
        ),
        ("total_memory", (mem.total_kib / 1024).to_string()),
        ("free_memory", (mem.available_kib / 1024).to_string()),
        ("sharing_freed_memory", "0".into()),
        ("sharing_used_memory", "0".into()),
        ("outstanding_claims", "0".into()),
        ("free_cpus", "0".into()),
        ("xen_major", XEN_MAJOR.to_string()),
        ("xen_minor", XEN_MINOR.to_string()),
        ("xen_extra", XEN_EXTRA.into()),
        ("xen_version", format!("{XEN_MAJOR}.{XEN_MINOR}{XEN_EXTRA}")),
        ("xen_caps", XEN_CAPS.into()),
        ("xen_scheduler", "linux".into()),
        ("xen_pagesize", "4096".into()),
        ("platform_params", "virt_start=0x0".into()),
        (
            "xen_changeset",
            format!("rxen {}", env!("CARGO_PKG_VERSION")),
        ),
        ("xen_commandline", cmdline),
        (
            "kvm_api_version",
            kvm.map_or_else(|| "unavailable".to_owned(), |k| k.api_version.to_string()),
        ),
        (
            "kvm_xen_hvm_flags",
            kvm.map_or_else(
                || "unavailable".to_owned(),
                |k| format!("{:#x}", k.xen_hvm_flags.0),
            ),
        ),
        ("cc_compiler", "rustc".into()),
    ];
    if let Some(f) = xenstore_features {
        v.push(("xenstore_features", format!("0x{f:08x}")));
    }
    v.push(("xend_config_format", "4".into()));
    v
}

/// Formats fields as `xl info` does: the name padded to 23 columns, ` : `, the value.
/// With `only`, the value of the first field whose name starts with it, alone.
pub fn render(fields: &[Field], only: Option<&str>) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        match only {
            Some(prefix) => {
                if k.starts_with(prefix) {
                    out.push_str(v);
                    out.push('\n');
                }
            }
            None => out.push_str(&format!("{k:<23}: {v}\n")),
        }
    }
    out
}

/// Xen's eight `hw_caps` words: CPUID 1 EDX, 1 ECX, 0x80000001 EDX, 0x80000001 ECX,
/// 0xD.1 EAX, 7.0 EBX, 7.0 ECX, 0x80000007 EDX.
#[cfg(target_arch = "x86_64")]
fn hw_caps() -> [u32; 8] {
    use std::arch::x86_64::__cpuid_count;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU; leaves beyond the maximum return zeros
    // or the highest leaf, which is harmless here.
    let q = |leaf: u32, sub: u32| unsafe { __cpuid_count(leaf, sub) };
    let max = q(0, 0).eax;
    let emax = q(0x8000_0000, 0).eax;
    let std = |leaf: u32, sub: u32| (leaf <= max).then(|| q(leaf, sub));
    let ext = |leaf: u32| (leaf <= emax).then(|| q(leaf, 0));
    [
        std(1, 0).map_or(0, |r| r.edx),
        std(1, 0).map_or(0, |r| r.ecx),
        ext(0x8000_0001).map_or(0, |r| r.edx),
        ext(0x8000_0001).map_or(0, |r| r.ecx),
        std(0xd, 1).map_or(0, |r| r.eax),
        std(7, 0).map_or(0, |r| r.ebx),
        std(7, 0).map_or(0, |r| r.ecx),
        ext(0x8000_0007).map_or(0, |r| r.edx),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
fn hw_caps() -> [u32; 8] {
    [0; 8]
}

/// The CPU, device and NUMA tables `xl info -n` prints between the host's
/// fields and the hypervisor's, in Xen's format.
pub fn render_numa(n: &host::NumaInfo) -> String {
    let mut out = String::from("cpu_topology           :\ncpu:    core    socket     node\n");
    for c in &n.cpus {
        out += &format!(
            "{:3}:    {:4}     {:4}     {:4}\n",
            c.cpu, c.core, c.socket, c.node
        );
    }
    out += "device topology        :\ndevice           node\n";
    for (dev, node) in &n.devices {
        out += &format!("{dev}      {node}\n");
    }
    if n.devices.is_empty() {
        out += "No device topology data available\n";
    }
    out += "numa_info              :\nnode:    memsize    memfree    distances\n";
    for m in &n.nodes {
        let d: Vec<String> = m.distances.iter().map(u32::to_string).collect();
        out += &format!(
            "{:4}:    {:6}     {:6}      {}\n",
            m.node,
            m.total_kib / 1024,
            m.free_kib / 1024,
            d.join(",")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_xl() {
        let f = vec![
            ("host", "h1".to_owned()),
            ("nr_cpus", "4".to_owned()),
            ("nr_nodes", "1".to_owned()),
        ];
        assert_eq!(
            render(&f, None),
            "host                   : h1\nnr_cpus                : 4\nnr_nodes               : 1\n"
        );
        assert_eq!(render(&f, Some("nr_c")), "4\n");
        assert_eq!(render(&f, Some("nr_")), "4\n1\n");
        assert_eq!(render(&f, Some("bogus")), "");
    }

    #[test]
    fn this_host() {
        let f = fields(None);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert!(get("nr_cpus").parse::<u32>().unwrap() >= 1);
        assert!(get("total_memory").parse::<u64>().unwrap() > 0);
        assert_eq!(get("xen_version"), "4.17.0-rxen");
        assert_eq!(get("hw_caps").split(':').count(), 8);
        assert_eq!(f.last().unwrap().0, "xend_config_format");
    }
}
