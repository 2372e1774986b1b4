//! What the toolstack needs to know about the host (dom0, and the "hypervisor": KVM).
//!
//! CPUs and NUMA nodes come from sysfs: `devices/system/cpu/possible` gives the CPU
//! numbers, and each `devices/system/node/nodeN/cpulist` the CPUs of node N. A host
//! without the node directory is one node holding every CPU. Memory, CPU time and uptime
//! come from `/proc`, the kernel's identity from `/proc/sys/kernel`, and KVM's from
//! `/dev/kvm`: the facts `xl info` and Domain-0's line of `xl list` show.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use xl_config::{Bitmap, CpuTopology};

/// The host's CPU layout could not be read.
#[derive(Debug, Error)]
pub enum HostError {
    /// A sysfs file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A sysfs CPU list did not parse.
    #[error("cannot parse CPU list {text:?} in {}", path.display())]
    ParseCpuList { path: PathBuf, text: String },
}

/// Reads the host's CPUs and NUMA nodes from `/sys`.
pub fn read_cpu_topology() -> Result<CpuTopology, HostError> {
    read_cpu_topology_from(Path::new("/sys"))
}

/// Reads the CPU layout from a sysfs tree rooted at `sysfs`.
pub fn read_cpu_topology_from(sysfs: &Path) -> Result<CpuTopology, HostError> {
    let possible = sysfs.join("devices/system/cpu/possible");
    let cpus = read_cpu_list(&possible)?;
    let nr_cpus = cpus.iter().last().map_or(0, |c| c + 1);

    let node_dir = sysfs.join("devices/system/node");
    let mut nodes: Vec<(u32, Bitmap)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&node_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|s| s.strip_prefix("node"))
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            nodes.push((n, read_cpu_list(&entry.path().join("cpulist"))?));
        }
    }
    nodes.sort_by_key(|(n, _)| *n);
    let nodes = if nodes.is_empty() {
        vec![cpus]
    } else {
        // Node numbers may have holes; keep the index equal to the node number.
        let last = nodes.last().map_or(0, |(n, _)| *n as usize);
        let mut by_number = vec![Bitmap::new(); last + 1];
        for (n, map) in nodes {
            by_number[n as usize] = map;
        }
        by_number
    };
    tracing::debug!(nr_cpus, nodes = nodes.len(), "host CPU topology");
    Ok(CpuTopology { nr_cpus, nodes })
}

fn read_cpu_list(path: &Path) -> Result<Bitmap, HostError> {
    let text = fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_sysfs_cpu_list(text.trim()).ok_or_else(|| HostError::ParseCpuList {
        path: path.to_owned(),
        text: text.trim().to_owned(),
    })
}

/// Parses the kernel's CPU list format (`0-3,8,10-11`; empty means none).
pub fn parse_sysfs_cpu_list(text: &str) -> Option<Bitmap> {
    let mut map = Bitmap::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = item.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if a > b || b > xl_config::cpus::MAX_CPU_ID {
            return None;
        }
        (a..=b).for_each(|c| map.set(c));
    }
    Some(map)
}

/// The host's memory, from `/proc/meminfo`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total_kib: u64,
    /// `MemAvailable` (what a new domain can still get without swapping).
    pub available_kib: u64,
    /// `MemFree`.
    pub free_kib: u64,
}

/// Reads `/proc/meminfo`.
pub fn read_meminfo() -> Result<MemInfo, HostError> {
    let path = Path::new("/proc/meminfo");
    let text = fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_meminfo(&text))
}

/// Parses `/proc/meminfo` text.
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(key), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(v) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "MemTotal:" => m.total_kib = v,
            "MemAvailable:" => m.available_kib = v,
            "MemFree:" => m.free_kib = v,
            _ => {}
        }
    }
    m
}

/// CPU time the host (not its guests) has used, per CPU and in all, from `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// All CPUs, in nanoseconds.
    pub total_ns: u64,
    /// `(cpu number, nanoseconds)` for each online CPU.
    pub per_cpu: Vec<(u32, u64)>,
}

/// Reads `/proc/stat`: busy time (user, nice, system, irq, softirq) less the time spent
/// running guests, which Linux counts as user time.
pub fn read_cpu_times() -> Result<CpuTimes, HostError> {
    let path = Path::new("/proc/stat");
    let text = fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_cpu_times(&text, clock_ticks()))
}

/// Parses `/proc/stat` text, with `hz` clock ticks a second.
pub fn parse_cpu_times(text: &str, hz: u64) -> CpuTimes {
    let mut t = CpuTimes::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(label) = it.next() else { continue };
        let Some(rest) = label.strip_prefix("cpu") else {
            continue;
        };
        let f: Vec<u64> = it.map(|x| x.parse().unwrap_or(0)).collect();
        let get = |i: usize| f.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal guest guest_nice
        let busy = (get(0) + get(1) + get(2) + get(5) + get(6)).saturating_sub(get(8) + get(9));
        let ns = busy.saturating_mul(1_000_000_000) / hz.max(1);
        if rest.is_empty() {
            t.total_ns = ns;
        } else if let Ok(n) = rest.parse::<u32>() {
            t.per_cpu.push((n, ns));
        }
    }
    t
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer and returns one.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// Seconds since the host booted, from `/proc/uptime`.
pub fn uptime_secs() -> Result<u64, HostError> {
    let path = Path::new("/proc/uptime");
    let text = fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .split(['.', ' '])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

/// The online CPUs.
pub fn online_cpus() -> Result<Bitmap, HostError> {
    read_cpu_list(Path::new("/sys/devices/system/cpu/online"))
}

/// The CPU the calling thread runs on, from `/proc/thread-self/stat`.
pub fn current_cpu() -> Option<u32> {
    let s = fs::read_to_string("/proc/thread-self/stat").ok()?;
    proc_stat_processor(&s)
}

/// Field 39 (`processor`) of a `/proc/.../stat` line.
pub fn proc_stat_processor(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(36)?.parse().ok()
}

/// Field 3 (`state`) of a `/proc/.../stat` line.
pub fn proc_stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// The kernel's identity, as `uname` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    /// The host name.
    pub nodename: String,
    /// The kernel release.
    pub release: String,
    /// The kernel build.
    pub version: String,
    /// The machine (`x86_64`).
    pub machine: String,
}

/// Reads `/proc/sys/kernel/{hostname,osrelease,version}`.
pub fn uname() -> Uname {
    let read = |n: &str| {
        fs::read_to_string(format!("/proc/sys/kernel/{n}"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default()
    };
    Uname {
        nodename: read("hostname"),
        release: read("osrelease"),
        version: read("version"),
        machine: std::env::consts::ARCH.to_owned(),
    }
}

/// What KVM on this host offers rxen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvmInfo {
    /// `KVM_GET_API_VERSION` (12 on every kernel since 2.6.22).
    pub api_version: i32,
    /// `KVM_CHECK_EXTENSION(KVM_CAP_XEN_HVM)`: the `KVM_XEN_HVM_CONFIG_*` flags.
    pub xen_hvm_flags: kvm_xen::XenCaps,
}

/// Asks `/dev/kvm`; `None` if it cannot be opened.
pub fn kvm_info() -> Option<KvmInfo> {
    let kvm = kvm_ioctls::Kvm::new().ok()?;
    Some(KvmInfo {
        api_version: kvm.get_api_version(),
        xen_hvm_flags: kvm_xen::XenCaps::query(&kvm),
    })
}

/// `cpu MHz` of the first CPU in `/proc/cpuinfo`, in kHz.
pub fn cpu_khz() -> u64 {
    let text = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "cpu MHz").then(|| v.trim().parse::<f64>().ok())?
        })
        .map_or(0, |mhz| (mhz * 1000.0).round() as u64)
}

/// Threads per core and cores per socket, from CPU 0's sysfs topology.
pub fn cpu_topology_counts() -> (u32, u32) {
    let base = Path::new("/sys/devices/system/cpu/cpu0/topology");
    let count = |name: &str| {
        read_cpu_list(&base.join(name))
            .map(|m| m.iter().count() as u32)
            .unwrap_or(1)
            .max(1)
    };
    let threads = count("thread_siblings_list");
    let package = count("core_siblings_list");
    (threads, (package / threads).max(1))
}

/// One CPU's place, as `xl info -n` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuPlace {
    /// The CPU's number.
    pub cpu: u32,
    /// `topology/core_id`.
    pub core: u32,
    /// `topology/physical_package_id`.
    pub socket: u32,
    /// The NUMA node holding it.
    pub node: u32,
}

/// One NUMA node's memory and distances, as `xl info -n` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMemory {
    /// The node's number.
    pub node: u32,
    /// `MemTotal` of the node, in KiB.
    pub total_kib: u64,
    /// `MemFree` of the node, in KiB.
    pub free_kib: u64,
    /// The node's distances to every node (10 = local).
    pub distances: Vec<u32>,
}

/// The host's NUMA picture, read from a sysfs tree rooted at `sysfs` (with
/// `meminfo` the host's `/proc/meminfo`, for a host without node directories).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumaInfo {
    /// Every online CPU.
    pub cpus: Vec<CpuPlace>,
    /// PCI devices with a known node: (`seg:bus:dev.fn`, node).
    pub devices: Vec<(String, u32)>,
    /// Every node.
    pub nodes: Vec<NodeMemory>,
}

/// Reads [`NumaInfo`] from `sysfs`; a host without `devices/system/node`
/// is one node 0 with all of `meminfo` and distance 10.
pub fn read_numa_info_from(sysfs: &Path, meminfo: &MemInfo) -> Result<NumaInfo, HostError> {
    let topo = read_cpu_topology_from(sysfs)?;
    let online = read_cpu_list(&sysfs.join("devices/system/cpu/online"))?;
    let read_u32 = |p: PathBuf| -> Option<u32> { fs::read_to_string(p).ok()?.trim().parse().ok() };
    let cpus = online
        .iter()
        .map(|cpu| {
            let t = sysfs.join(format!("devices/system/cpu/cpu{cpu}/topology"));
            CpuPlace {
                cpu,
                core: read_u32(t.join("core_id")).unwrap_or(cpu),
                socket: read_u32(t.join("physical_package_id")).unwrap_or(0),
                node: topo
                    .nodes
                    .iter()
                    .position(|m| m.test(cpu))
                    .map_or(0, |n| n as u32),
            }
        })
        .collect();

    let mut devices = Vec::new();
    if let Ok(entries) = fs::read_dir(sysfs.join("bus/pci/devices")) {
        for e in entries.flatten() {
            let numa = fs::read_to_string(e.path().join("numa_node")).unwrap_or_default();
            if let Ok(node) = numa.trim().parse::<u32>() {
                devices.push((e.file_name().to_string_lossy().into_owned(), node));
            }
        }
    }
    devices.sort();

    let node_dir = sysfs.join("devices/system/node");
    let mut nodes = Vec::new();
    for (n, _) in topo.nodes.iter().enumerate() {
        let dir = node_dir.join(format!("node{n}"));
        let Ok(text) = fs::read_to_string(dir.join("meminfo")) else {
            continue;
        };
        // "Node 0 MemTotal:       16315800 kB"
        let field = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.split_whitespace().last() == Some(name))
                .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let distances = fs::read_to_string(dir.join("distance"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|d| d.parse().ok())
            .collect();
        nodes.push(NodeMemory {
            node: n as u32,
            total_kib: field("MemTotal"),
            free_kib: field("MemFree"),
            distances,
        });
    }
    if nodes.is_empty() {
        nodes.push(NodeMemory {
            node: 0,
            total_kib: meminfo.total_kib,
            free_kib: meminfo.free_kib,
            distances: vec![10],
        });
    }
    Ok(NumaInfo {
        cpus,
        devices,
        nodes,
    })
}

/// The host's [`NumaInfo`].
pub fn read_numa_info() -> Result<NumaInfo, HostError> {
    read_numa_info_from(Path::new("/sys"), &read_meminfo()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sysfs(name: &str, possible: &str, nodes: &[(u32, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "rxen-toolstack-sysfs-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("devices/system/cpu")).unwrap();
        fs::write(root.join("devices/system/cpu/possible"), possible).unwrap();
        for (n, list) in nodes {
            let dir = root.join(format!("devices/system/node/node{n}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cpulist"), list).unwrap();
        }
        fs::create_dir_all(root.join("devices/system/node/power")).unwrap();
        root
    }

    #[test]
    fn reads_cpus_and_nodes() {
        let root = fake_sysfs("numa", "0-7\n", &[(0, "0-3\n"), (1, "4-7\n")]);
        let t = read_cpu_topology_from(&root).unwrap();
        assert_eq!(t.nr_cpus, 8);
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(t.nodes[1].to_string(), "4-7");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn numa_tables_from_sysfs() {
        let root = fake_sysfs("numa-n", "0-3\n", &[(0, "0-1\n"), (1, "2-3\n")]);
        let cpu = root.join("devices/system/cpu");
        fs::write(cpu.join("online"), "0-2\n").unwrap();
        for (c, core, socket) in [(0, 0, 0), (1, 1, 0), (2, 0, 1)] {
            let t = cpu.join(format!("cpu{c}/topology"));
            fs::create_dir_all(&t).unwrap();
            fs::write(t.join("core_id"), format!("{core}\n")).unwrap();
            fs::write(t.join("physical_package_id"), format!("{socket}\n")).unwrap();
        }
        for (n, total, free, dist) in [
            (0, 2_097_152, 1_048_576, "10 21"),
            (1, 1_048_576, 524_288, "21 10"),
        ] {
            let d = root.join(format!("devices/system/node/node{n}"));
            fs::write(
                d.join("meminfo"),
                format!("Node {n} MemTotal:  {total} kB\nNode {n} MemFree:   {free} kB\n"),
            )
            .unwrap();
            fs::write(d.join("distance"), format!("{dist}\n")).unwrap();
        }
        let pci = root.join("bus/pci/devices");
        for (dev, node) in [("0000:00:1f.2", "1"), ("0000:00:01.0", "-1")] {
            fs::create_dir_all(pci.join(dev)).unwrap();
            fs::write(pci.join(dev).join("numa_node"), format!("{node}\n")).unwrap();
        }
        let n = read_numa_info_from(&root, &MemInfo::default()).unwrap();
        assert_eq!(
            crate::info::render_numa(&n),
            "cpu_topology           :\n\
             cpu:    core    socket     node\n\
             \x20 0:       0        0        0\n\
             \x20 1:       1        0        0\n\
             \x20 2:       0        1        1\n\
             device topology        :\n\
             device           node\n\
             0000:00:1f.2      1\n\
             numa_info              :\n\
             node:    memsize    memfree    distances\n\
             \x20  0:      2048       1024      10,21\n\
             \x20  1:      1024        512      21,10\n"
        );
        // Without node directories: one node with the host's memory.
        fs::remove_dir_all(root.join("devices/system/node")).unwrap();
        fs::remove_dir_all(&pci).unwrap();
        let mem = MemInfo {
            total_kib: 4 << 20,
            available_kib: 0,
            free_kib: 3 << 20,
        };
        let n = read_numa_info_from(&root, &mem).unwrap();
        let text = crate::info::render_numa(&n);
        assert!(
            text.contains("No device topology data available\n"),
            "{text}"
        );
        assert!(
            text.ends_with("   0:      4096       3072      10\n"),
            "{text}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_node_directory_means_one_node() {
        let root = fake_sysfs("flat", "0-1\n", &[]);
        fs::remove_dir_all(root.join("devices/system/node")).unwrap();
        let t = read_cpu_topology_from(&root).unwrap();
        assert_eq!(t, CpuTopology::uniform(2));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn bad_files_are_errors() {
        let root = fake_sysfs("bad", "0-x\n", &[]);
        let e = read_cpu_topology_from(&root).unwrap_err();
        assert!(e.to_string().starts_with("cannot parse CPU list \"0-x\""));
        let e = read_cpu_topology_from(&root.join("missing")).unwrap_err();
        assert!(e.to_string().starts_with("cannot read "));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn sysfs_lists() {
        assert_eq!(
            parse_sysfs_cpu_list("0-3,8,10-11").unwrap().to_string(),
            "0-3,8,10-11"
        );
        assert!(parse_sysfs_cpu_list("").unwrap().is_empty());
        assert!(parse_sysfs_cpu_list("3-1").is_none());
    }

    #[test]
    fn meminfo_and_stat() {
        let m = parse_meminfo(
            "MemTotal:       16384000 kB\nMemFree: 1 kB\nMemAvailable:    8192000 kB\n",
        );
        assert_eq!(
            m,
            MemInfo {
                total_kib: 16384000,
                available_kib: 8192000,
                free_kib: 1
            }
        );
        let t = parse_cpu_times(
            "cpu  100 10 50 1000 5 3 2 0 40 0\ncpu0 60 10 30 500 0 0 0 0 40 0\ncpu1 40 0 20 500 5 3 2 0 0 0\nintr 1\n",
            100,
        );
        assert_eq!(t.total_ns, 1_250_000_000);
        assert_eq!(t.per_cpu, vec![(0, 600_000_000), (1, 650_000_000)]);
        let stat = "12 (a b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 7 37";
        assert_eq!(proc_stat_state(stat), Some('S'));
        assert_eq!(proc_stat_processor(stat), Some(7));
    }

    #[test]
    fn this_host_is_readable() {
        let t = read_cpu_topology().unwrap();
        assert!(t.nr_cpus >= 1);
        assert!(!t.nodes.is_empty());
    }
}
