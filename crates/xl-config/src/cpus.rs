//! CPU lists, as in `cpus=` and `cpus_soft=` (xl.cfg(5) "CPU Allocation").
//!
//! A list is comma-separated items, applied left to right: `N` or `N-M` adds host CPUs,
//! `node:N` / `nodes:N-M` adds every CPU of those NUMA nodes, `all` adds every host CPU,
//! and a leading `^` removes instead of adding (`"all,^7"`, `"0-3,^1"`,
//! `"nodes:0-1,^node:1"`). Follows `update_cpumap_range` in Xen's `tools/xl/xl_parse.c`.
//!
//! `all` and NUMA nodes need the host's layout ([`CpuTopology`]). CPU numbers are kept as
//! written even when the host has fewer CPUs (libxl would silently drop them); deciding
//! what to do about those is the toolstack's business when it creates the domain.

use thiserror::Error;

use crate::types::Bitmap;

/// The highest CPU number accepted in a list; only guards against absurd ranges.
pub const MAX_CPU_ID: u32 = 16383;

/// The host CPUs and NUMA nodes that `all` and `node:N` refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuTopology {
    /// Number of host CPUs, numbered `0 .. nr_cpus`.
    pub nr_cpus: u32,
    /// For each NUMA node, its CPUs.
    pub nodes: Vec<Bitmap>,
}

impl CpuTopology {
    /// A host of `nr_cpus` CPUs in a single NUMA node.
    pub fn uniform(nr_cpus: u32) -> Self {
        CpuTopology {
            nr_cpus,
            nodes: vec![Bitmap::first(nr_cpus)],
        }
    }
}

/// Why a CPU list is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CpuListError {
    /// `^all`.
    #[error("can't combine \"^\" and \"all\"")]
    NegateAll,
    /// An item that is not `N`, `N-M`, `node:N`, `nodes:N-M` or `all`.
    #[error(
        "invalid pcpu range `{item}': expected N, N-M, node:N, nodes:N-M or all, optionally preceded by ^"
    )]
    ParseRange { item: String },
    /// A CPU number above [`MAX_CPU_ID`].
    #[error("CPU {cpu} in `{item}' is too large (at most {MAX_CPU_ID})")]
    CheckCpu { item: String, cpu: u64 },
    /// A NUMA node the host does not have.
    #[error("NUMA node {node} does not exist on this host (it has {count} node(s))")]
    LookupNode { node: u64, count: usize },
    /// A list that selects nothing.
    #[error("`{list}' selects no CPU")]
    CheckEmpty { list: String },
}

/// Parses a CPU list into the set of host CPUs it names.
pub fn parse_cpu_list(list: &str, topology: &CpuTopology) -> Result<Bitmap, CpuListError> {
    let mut map = Bitmap::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        apply_item(item, topology, &mut map)?;
    }
    if map.is_empty() {
        return Err(CpuListError::CheckEmpty {
            list: list.to_owned(),
        });
    }
    Ok(map)
}

fn apply_item(item: &str, topology: &CpuTopology, map: &mut Bitmap) -> Result<(), CpuListError> {
    let (negate, rest) = match item.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, item),
    };
    let (nodes, rest) = if let Some(r) = rest.strip_prefix("nodes:") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("node:") {
        (true, r)
    } else {
        (false, rest)
    };
    if rest == "all" {
        if negate {
            return Err(CpuListError::NegateAll);
        }
        for cpu in 0..topology.nr_cpus {
            map.set(cpu);
        }
        return Ok(());
    }
    let (first, last) = parse_range(rest).ok_or_else(|| CpuListError::ParseRange {
        item: item.to_owned(),
    })?;
    let mut update = |cpu: u32| {
        if negate { map.reset(cpu) } else { map.set(cpu) }
    };
    if nodes {
        for node in first..=last {
            let cpus = usize::try_from(node)
                .ok()
                .and_then(|n| topology.nodes.get(n))
                .ok_or(CpuListError::LookupNode {
                    node,
                    count: topology.nodes.len(),
                })?;
            cpus.iter().for_each(&mut update);
        }
    } else {
        if last > u64::from(MAX_CPU_ID) {
            return Err(CpuListError::CheckCpu {
                item: item.to_owned(),
                cpu: last,
            });
        }
        (first as u32..=last as u32).for_each(update);
    }
    Ok(())
}

/// `N` or `N-M` with `N <= M`, decimal (`parse_range` in xl).
fn parse_range(s: &str) -> Option<(u64, u64)> {
    let number = |t: &str| {
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse::<u64>().ok()
        } else {
            None
        }
    };
    match s.split_once('-') {
        None => number(s).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> CpuTopology {
        // 16 CPUs, 4 nodes of 4 CPUs each, as in the xl.cfg(5) example.
        CpuTopology {
            nr_cpus: 16,
            nodes: (0..4)
                .map(|n| Bitmap((n * 4..n * 4 + 4).collect()))
                .collect(),
        }
    }

    fn cpus(s: &str) -> String {
        parse_cpu_list(s, &topo()).unwrap().to_string()
    }

    fn err(s: &str) -> String {
        parse_cpu_list(s, &topo()).unwrap_err().to_string()
    }

    #[test]
    fn forms_from_the_manual() {
        let table = [
            ("all", "0-15"),
            ("0-3,5,^1", "0,2-3,5"),
            ("all,^7", "0-6,8-15"),
            ("nodes:0-3,^node:2", "0-7,12-15"),
            ("1,node:1,^6", "1,4-5,7"),
            ("all,^node:1", "0-3,8-15"),
            ("all,^5-8", "0-4,9-15"),
            ("node:0,node:2,^9-11,18-20", "0-3,8,18-20"),
            ("5-8", "5-8"),
            (" 2 , 3 ", "2-3"),
            ("0,,1", "0-1"),
            ("nodes:all", "0-15"),
        ];
        for (list, want) in table {
            assert_eq!(cpus(list), want, "{list}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(err("^all"), "can't combine \"^\" and \"all\"");
        assert!(err("3-1").starts_with("invalid pcpu range `3-1'"));
        assert!(err("x").starts_with("invalid pcpu range `x'"));
        assert!(err("1-").starts_with("invalid pcpu range"));
        assert!(err("-1").starts_with("invalid pcpu range"));
        assert_eq!(
            err("node:4"),
            "NUMA node 4 does not exist on this host (it has 4 node(s))"
        );
        assert_eq!(err("0,^0"), "`0,^0' selects no CPU");
        assert_eq!(err(""), "`' selects no CPU");
        assert!(err("0-99999999").contains("too large"));
    }
}
