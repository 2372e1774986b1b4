//! Virtual block device commands (Xen's `tools/xl/xl_block.c` and `xl_cdrom.c`):
//! `block-attach`, `block-list`, `block-detach`, `cd-insert`, `cd-eject`.

use toolstack::domain::DomainError;
use toolstack::error_chain;
use toolstack::store::DiskInfo;

use crate::getopt::{HELP, OptSpec};
use crate::vmcontrol::NO_OPTIONS;
use crate::{Globals, attach_outcome, domain_command, list_devices, print_dry_run};

/// `xl block-detach`'s options.
pub const BLOCK_DETACH_OPTIONS: &[OptSpec] = &[
    OptSpec {
        short: Some('f'),
        long: Some("force"),
        arg: None,
        help: "Remove the device even if the guest has not released it.",
    },
    HELP,
];

/// `xl block-list`'s header, in Xen's columns.
pub fn list_header() -> String {
    format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}",
        "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
    )
}

/// One disk's line (Xen puts the guest's domain id in the `handle` column).
pub fn list_line(d: &DiskInfo) -> String {
    format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}",
        d.devid, d.backend_id, d.frontend_id, d.state, d.evtch, d.ring_ref, d.backend
    )
}

/// `xl block-attach <Domain> <disk-spec-component(s)>...`.
pub fn main_block_attach(g: &Globals, argv: &[String]) -> u8 {
    let (m, mut ts, domid) = match domain_command("block-attach", argv, NO_OPTIONS, 2) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let specs: Vec<&str> = m.operands[1..].iter().map(String::as_str).collect();
    let disk = match xl_config::disk::parse_disk_specs(&specs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "xl: config parsing error in disk specification: {e} in `{}'",
                specs.join(" ")
            );
            return 1;
        }
    };
    if g.dryrun {
        print_dry_run("disk", &disk);
        return 0;
    }
    attach_outcome(ts.block_attach(domid, disk), "libxl_device_disk_add")
}

/// `xl block-list <Domain(s)>`.
pub fn main_block_list(_g: &Globals, argv: &[String]) -> u8 {
    list_devices(
        "block-list",
        argv,
        &list_header(),
        true,
        |s, domid| s.disks(domid),
        list_line,
    )
}

/// `xl block-detach [-f|--force] <Domain> <VirtualDevice>`.
pub fn main_block_detach(_g: &Globals, argv: &[String]) -> u8 {
    let (m, mut ts, domid) = match domain_command("block-detach", argv, BLOCK_DETACH_OPTIONS, 2) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let force = m.has('f');
    let vdev = &m.operands[1];
    match ts.block_detach(domid, vdev, force) {
        Ok(forced) => {
            if forced {
                eprintln!("xl: warning: disk {vdev} removed before the guest released it");
            }
            0
        }
        Err(DomainError::NoDevice { .. }) => {
            eprintln!("Error: Device {vdev} not connected.");
            1
        }
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!(
                "libxl_device_disk_{} failed.",
                if force { "destroy" } else { "safe_remove" }
            );
            1
        }
    }
}

fn cd_change(cmd: &str, argv: &[String], reqargs: usize) -> u8 {
    let (m, mut ts, domid) = match domain_command(cmd, argv, NO_OPTIONS, reqargs) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let vdev = &m.operands[1];
    let target = m
        .operands
        .get(2)
        .map(String::as_str)
        .filter(|_| reqargs == 3);
    match ts.cd_insert(domid, vdev, target) {
        Ok(()) => 0,
        Err(DomainError::NoDevice { .. }) => {
            eprintln!("xl: virtual device {vdev} not found in domain {domid}");
            1
        }
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            1
        }
    }
}

/// `xl cd-insert <Domain> <VirtualDevice> <path>`.
pub fn main_cd_insert(_g: &Globals, argv: &[String]) -> u8 {
    cd_change("cd-insert", argv, 3)
}

/// `xl cd-eject <Domain> <VirtualDevice>`.
pub fn main_cd_eject(_g: &Globals, argv: &[String]) -> u8 {
    cd_change("cd-eject", argv, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_xen_prints_them() {
        assert_eq!(
            list_header(),
            "Vdev  BE  handle state evt-ch ring-ref BE-path                       "
        );
        let d = DiskInfo {
            devid: 51728,
            backend_id: 0,
            frontend_id: 3,
            state: 4,
            evtch: 7,
            ring_ref: 8,
            backend: "/local/domain/0/backend/vbd/3/51728".to_owned(),
        };
        assert_eq!(
            list_line(&d),
            "51728 0   3      4     7      8        /local/domain/0/backend/vbd/3/51728"
        );
    }
}
