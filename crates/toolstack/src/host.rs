//! What the toolstack needs to know about the host (dom0): its CPUs and NUMA nodes.
//!
//! Read from sysfs: `devices/system/cpu/possible` gives the CPU numbers, and each
//! `devices/system/node/nodeN/cpulist` the CPUs of node N. A host without the node
//! directory is one node holding every CPU.

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
    fn this_host_is_readable() {
        let t = read_cpu_topology().unwrap();
        assert!(t.nr_cpus >= 1);
        assert!(!t.nodes.is_empty());
    }
}
