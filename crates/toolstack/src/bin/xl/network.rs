//! Network interface commands (Xen's `tools/xl/xl_nic.c`): `network-attach`,
//! `network-list`, `network-detach`.

use toolstack::domain::DomainError;
use toolstack::error_chain;
use toolstack::store::NicInfo;

use crate::vmcontrol::NO_OPTIONS;
use crate::{Globals, attach_outcome, domain_command, list_devices, print_dry_run};

/// `xl network-list`'s header, in Xen's columns.
pub fn list_header() -> String {
    format!(
        "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<5} {:<30}",
        "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-", "rx-ring-ref", "BE-path"
    )
}

/// One interface's line (Xen prints the handle straight after the address).
pub fn list_line(n: &NicInfo) -> String {
    let mac = n
        .mac
        .map(|m| m.to_string())
        .unwrap_or_else(|| "00:00:00:00:00:00".to_owned());
    format!(
        "{:<3} {:<2} {mac}{:>6} {:>5} {:>6} {:>5}/{:<11} {:<30}",
        n.devid, n.backend_id, n.devid, n.state, n.evtch, n.tx_ring_ref, n.rx_ring_ref, n.backend
    )
}

/// `xl network-list <Domain(s)>`.
pub fn main_network_list(_g: &Globals, argv: &[String]) -> u8 {
    list_devices(
        "network-list",
        argv,
        &list_header(),
        false,
        |s, domid| s.nics(domid),
        list_line,
    )
}

/// `xl network-attach <Domain> [item...]`: each item `key=value` as in `vif=`.
pub fn main_network_attach(g: &Globals, argv: &[String]) -> u8 {
    let (m, mut ts, domid) = match domain_command("network-attach", argv, NO_OPTIONS, 1) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let items: Vec<&str> = m.operands[1..].iter().map(String::as_str).collect();
    let parsed = match xl_config::vif::parse_vif_items(&items) {
        Ok(p) => p,
        Err((i, e)) => {
            eprintln!("xl: network-attach: {e} (in `{}')", items[i]);
            return 1;
        }
    };
    for (_, w) in &parsed.warnings {
        eprintln!("xl: warning: {w}");
    }
    if g.dryrun {
        print_dry_run("vif", &parsed.nic);
        return 0;
    }
    attach_outcome(
        ts.network_attach(domid, parsed.nic).map(|(_, w)| w),
        "libxl_device_nic_add",
    )
}

/// `xl network-detach <Domain> <DevId|mac>`.
pub fn main_network_detach(_g: &Globals, argv: &[String]) -> u8 {
    let (m, mut ts, domid) = match domain_command("network-detach", argv, NO_OPTIONS, 2) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let which = &m.operands[1];
    match ts.network_detach(domid, which) {
        Ok(forced) => {
            if forced {
                eprintln!(
                    "xl: warning: network interface {which} removed before the guest released it"
                );
            }
            0
        }
        Err(DomainError::NoDevice { .. }) => {
            eprintln!("Unknown device {which}.");
            1
        }
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("libxl_device_nic_del failed.");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_xen_prints_them() {
        assert_eq!(
            list_header(),
            "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       "
        );
        let n = NicInfo {
            devid: 0,
            backend_id: 0,
            mac: "00:16:3e:59:02:56".parse().ok(),
            state: 4,
            evtch: 5,
            tx_ring_ref: 768,
            rx_ring_ref: 769,
            backend: "/local/domain/0/backend/vif/3/0".to_owned(),
        };
        assert_eq!(
            list_line(&n),
            "0   0  00:16:3e:59:02:56     0     4      5   768/769         /local/domain/0/backend/vif/3/0"
        );
    }
}
