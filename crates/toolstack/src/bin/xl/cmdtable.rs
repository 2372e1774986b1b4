//! The table of xl subcommands (Xen's `tools/xl/xl_cmdtable.c`): name, handler, whether
//! it honours the global `-N` (dry run) and `-f` (force) options, and its help.
//!
//! Only commands that do something are listed; more join as rxen grows.

use crate::getopt::OptSpec;
use crate::{Globals, block, console, info, misc, network, vcpu, vmcontrol};

/// One subcommand.
#[derive(Debug)]
pub struct CmdSpec {
    /// The subcommand.
    pub name: &'static str,
    /// Runs it with the arguments after the subcommand; returns the exit status.
    pub run: fn(&Globals, &[String]) -> u8,
    /// Whether it honours the global `-N`.
    pub can_dryrun: bool,
    /// Whether it changes something (and so honours the global `-f`).
    pub modifies: bool,
    /// One line saying what it does.
    pub desc: &'static str,
    /// Its arguments, after the subcommand name.
    pub usage: &'static str,
    /// Its options, `-h` included.
    pub options: &'static [OptSpec],
}

/// Every subcommand, in the order of Xen's table.
pub const CMD_TABLE: &[CmdSpec] = &[
    CmdSpec {
        name: "create",
        run: vmcontrol::main_create,
        can_dryrun: true,
        modifies: true,
        desc: "Create a domain from a configuration file",
        usage: "<ConfigFile> [options] [vars]",
        options: vmcontrol::CREATE_OPTIONS,
    },
    CmdSpec {
        name: "list",
        run: info::main_list,
        can_dryrun: false,
        modifies: false,
        desc: "List all domains, or the ones named",
        usage: "[options] [Domain...]",
        options: info::LIST_OPTIONS,
    },
    CmdSpec {
        name: "destroy",
        run: vmcontrol::main_destroy,
        can_dryrun: false,
        modifies: true,
        desc: "End a domain at once, without asking its guest",
        usage: "[options] <Domain>",
        options: vmcontrol::DESTROY_OPTIONS,
    },
    CmdSpec {
        name: "shutdown",
        run: vmcontrol::main_shutdown,
        can_dryrun: false,
        modifies: true,
        desc: "Ask a domain's guest to power off",
        usage: "[options] <-a|Domain>",
        options: vmcontrol::SHUTDOWN_OPTIONS,
    },
    CmdSpec {
        name: "reboot",
        run: vmcontrol::main_reboot,
        can_dryrun: false,
        modifies: true,
        desc: "Ask a domain's guest to reboot",
        usage: "[options] <-a|Domain>",
        options: vmcontrol::SHUTDOWN_OPTIONS,
    },
    CmdSpec {
        name: "pause",
        run: vmcontrol::main_pause,
        can_dryrun: false,
        modifies: true,
        desc: "Stop a domain's vCPUs until unpause",
        usage: "<Domain>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "unpause",
        run: vmcontrol::main_unpause,
        can_dryrun: false,
        modifies: true,
        desc: "Let a paused domain run again",
        usage: "<Domain>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "console",
        run: console::main_console,
        can_dryrun: false,
        modifies: false,
        desc: "Attach to a domain's console (Ctrl-] detaches)",
        usage: "[options] <Domain>",
        options: console::CONSOLE_OPTIONS,
    },
    CmdSpec {
        name: "vm-list",
        run: info::main_vm_list,
        can_dryrun: false,
        modifies: false,
        desc: "List the domains with their UUIDs",
        usage: "",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "info",
        run: info::main_info,
        can_dryrun: false,
        modifies: false,
        desc: "Describe the host and its hypervisor",
        usage: "[options] [name]",
        options: info::INFO_OPTIONS,
    },
    CmdSpec {
        name: "domid",
        run: info::main_domid,
        can_dryrun: false,
        modifies: false,
        desc: "Print the id of the domain with a name",
        usage: "<DomainName>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "domname",
        run: info::main_domname,
        can_dryrun: false,
        modifies: false,
        desc: "Print the name of the domain with an id",
        usage: "<DomainId>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "rename",
        run: misc::main_rename,
        can_dryrun: false,
        modifies: true,
        desc: "Give a domain a new name",
        usage: "<Domain> <NewDomainName>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "cd-insert",
        run: block::main_cd_insert,
        can_dryrun: false,
        modifies: true,
        desc: "Insert a cdrom into a guest's cd drive",
        usage: "<Domain> <VirtualDevice> <path>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "cd-eject",
        run: block::main_cd_eject,
        can_dryrun: false,
        modifies: true,
        desc: "Eject a cdrom from a guest's cd drive",
        usage: "<Domain> <VirtualDevice>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "network-attach",
        run: network::main_network_attach,
        can_dryrun: true,
        modifies: true,
        desc: "Create a new virtual network device",
        usage: "<Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] [ip=<ip>] [script=<script>] [backend=<BackDomain>] [vifname=<name>] [rate=<rate>] [model=<model>] [accel=<accel>]",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "network-list",
        run: network::main_network_list,
        can_dryrun: false,
        modifies: false,
        desc: "List virtual network interfaces for a domain",
        usage: "<Domain(s)>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "network-detach",
        run: network::main_network_detach,
        can_dryrun: false,
        modifies: true,
        desc: "Destroy a domain's virtual network device",
        usage: "<Domain> <DevId|mac>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "block-attach",
        run: block::main_block_attach,
        can_dryrun: true,
        modifies: true,
        desc: "Create a new virtual block device",
        usage: "<Domain> <disk-spec-component(s)>...",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "block-list",
        run: block::main_block_list,
        can_dryrun: false,
        modifies: false,
        desc: "List virtual block devices for a domain",
        usage: "<Domain(s)>",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "block-detach",
        run: block::main_block_detach,
        can_dryrun: false,
        modifies: true,
        desc: "Destroy a domain's virtual block device",
        usage: "[option] <Domain> <VirtualDevice>",
        options: block::BLOCK_DETACH_OPTIONS,
    },
    CmdSpec {
        name: "vcpu-list",
        run: vcpu::main_vcpu_list,
        can_dryrun: false,
        modifies: false,
        desc: "List the vCPUs of all domains, or of the ones named",
        usage: "[Domain...]",
        options: vmcontrol::NO_OPTIONS,
    },
    CmdSpec {
        name: "vcpu-pin",
        run: vcpu::main_vcpu_pin,
        can_dryrun: true,
        modifies: true,
        desc: "Set the host CPUs a vCPU may run on",
        usage: "[options] <Domain> <VCPU|all> <Hard affinity|-> [Soft affinity|-]",
        options: vcpu::VCPU_PIN_OPTIONS,
    },
    CmdSpec {
        name: "dmesg",
        run: info::main_dmesg,
        can_dryrun: false,
        modifies: false,
        desc: "Print (and with -c clear) rxen's hypervisor log",
        usage: "[options]",
        options: info::DMESG_OPTIONS,
    },
    CmdSpec {
        name: "uptime",
        run: info::main_uptime,
        can_dryrun: false,
        modifies: false,
        desc: "Print how long each domain has been up",
        usage: "[options] [Domain...]",
        options: info::UPTIME_OPTIONS,
    },
];

/// Finds a subcommand by name or by an unambiguous prefix of its name.
pub fn lookup(name: &str) -> Option<&'static CmdSpec> {
    if let Some(exact) = CMD_TABLE.iter().find(|c| c.name == name) {
        return Some(exact);
    }
    let mut prefixed = CMD_TABLE
        .iter()
        .filter(|c| !name.is_empty() && c.name.starts_with(name));
    match (prefixed.next(), prefixed.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Renders a command's options the way xl's help shows them: the option in a 24-column
/// field, then its description.
pub fn render_options(options: &[OptSpec]) -> String {
    const WIDTH: usize = 24;
    let mut out = String::new();
    for o in options {
        let usage = o.usage();
        let mut help = o.help.lines();
        let first = help.next().unwrap_or("");
        if usage.len() < WIDTH {
            out.push_str(&format!("{usage:<WIDTH$}{first}\n"));
        } else {
            out.push_str(&format!("{usage}\n{:WIDTH$}{first}\n", ""));
        }
        for more in help {
            out.push_str(&format!("{:WIDTH$}{more}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::getopt::HELP;

    #[test]
    fn lookup_takes_exact_names_and_unambiguous_prefixes() {
        assert_eq!(lookup("create").unwrap().name, "create");
        assert_eq!(lookup("cr").unwrap().name, "create");
        assert!(lookup("").is_none());
        assert_eq!(lookup("list").unwrap().name, "list");
        assert_eq!(lookup("vcpu-l").unwrap().name, "vcpu-list");
        assert!(lookup("vcpu").is_none(), "ambiguous");
        assert!(lookup("d").is_none(), "ambiguous");
        assert!(lookup("creates").is_none());
    }

    #[test]
    fn every_command_has_help() {
        for c in CMD_TABLE {
            assert!(c.options.contains(&HELP), "{}", c.name);
        }
    }
}
