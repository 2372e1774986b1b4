//! The table of xl subcommands (Xen's `tools/xl/xl_cmdtable.c`): name, handler, whether
//! it honours the global `-N` (dry run) and `-f` (force) options, and its help.
//!
//! Only commands that do something are listed; more join as rxen grows.

use crate::getopt::OptSpec;
use crate::{Globals, vmcontrol};

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

/// Every subcommand.
pub const CMD_TABLE: &[CmdSpec] = &[CmdSpec {
    name: "create",
    run: vmcontrol::main_create,
    can_dryrun: true,
    modifies: true,
    desc: "Create a domain from a configuration file",
    usage: "<ConfigFile> [options] [vars]",
    options: vmcontrol::CREATE_OPTIONS,
}];

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
        assert!(lookup("list").is_none());
        assert!(lookup("creates").is_none());
    }

    #[test]
    fn every_command_has_help() {
        for c in CMD_TABLE {
            assert!(c.options.contains(&HELP), "{}", c.name);
        }
    }
}
