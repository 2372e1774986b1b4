//! Per-domain quotas with Xen's defaults (`tools/xenstored/domain.c`). A
//! value of 0 disables the check. Quotas bind unprivileged domains only;
//! dom0 tools are not limited.

use crate::wire::Errno;

/// The quota values in force for one domain (or the global defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own.
    pub nodes: u32,
    /// Watches a domain may have registered.
    pub watches: u32,
    /// Requests a domain may have in flight (replies not yet sent).
    pub outstanding: u32,
    /// Transactions a domain may have open.
    pub transactions: u32,
    /// Nodes one transaction may access.
    pub transaction_nodes: u32,
    /// Permission entries on one node.
    pub node_permissions: u32,
    /// Length of a path below `/local/domain/<n>/`.
    pub path_max: u32,
    /// Size of one node: value plus child names.
    pub node_size: u32,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            nodes: 1000,
            watches: 128,
            outstanding: 20,
            transactions: 10,
            transaction_nodes: 1024,
            node_permissions: 5,
            path_max: xen_abi::xs_wire::XENSTORE_REL_PATH_MAX as u32,
            node_size: 2048,
        }
    }
}

/// The quota names of `XS_GET_QUOTA`/`XS_SET_QUOTA` and `-Q`, in the order
/// `XS_GET_QUOTA` lists them.
pub const QUOTA_NAMES: [&str; 8] = [
    "nodes",
    "watches",
    "outstanding",
    "transactions",
    "transaction-nodes",
    "node-permissions",
    "path-max",
    "node-size",
];

impl Quotas {
    fn slot(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "nodes" => &mut self.nodes,
            "watches" => &mut self.watches,
            "outstanding" => &mut self.outstanding,
            "transactions" => &mut self.transactions,
            "transaction-nodes" => &mut self.transaction_nodes,
            "node-permissions" => &mut self.node_permissions,
            "path-max" => &mut self.path_max,
            "node-size" => &mut self.node_size,
            _ => return None,
        })
    }

    /// The value of a quota by name.
    pub fn get(&self, name: &str) -> Option<u32> {
        let mut c = *self;
        c.slot(name).map(|v| *v)
    }

    /// Sets a quota by name; `EINVAL` for an unknown name.
    pub fn set(&mut self, name: &str, value: u32) -> Result<(), Errno> {
        *self.slot(name).ok_or(Errno::EINVAL)? = value;
        Ok(())
    }
}

/// Whether `used` exceeds `limit` (0: unlimited).
pub fn exceeds(used: u64, limit: u32) -> bool {
    limit != 0 && used > limit as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_defaults() {
        let mut q = Quotas::default();
        for n in QUOTA_NAMES {
            assert!(q.get(n).is_some(), "{n}");
        }
        assert_eq!(q.get("nodes"), Some(1000));
        assert_eq!(q.get("node-size"), Some(2048));
        q.set("watches", 3).unwrap();
        assert_eq!(q.watches, 3);
        assert_eq!(q.set("bogus", 1), Err(Errno::EINVAL));
        assert!(!exceeds(5, 0));
        assert!(!exceeds(5, 5));
        assert!(exceeds(6, 5));
    }
}
