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
                available_kib: 8192000
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
