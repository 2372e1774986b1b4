//! `xl`: rxen's toolstack command, with Xen's xl syntax (`xl [-vfNtT] <subcommand>
//! [args]`). This file is xl's `xl.c`: global options, dispatch and `help`; the
//! subcommands are in [`cmdtable`], one module per area as in Xen's `tools/xl/`.

mod block;
mod cmdtable;
mod console;
mod getopt;
mod info;
mod misc;
mod network;
mod vcpu;
mod vmcontrol;

use std::process::ExitCode;

use getopt::{Matches, OptSpec, Ordering, getopt};
use toolstack::domain::{DomainError, Toolstack};
use toolstack::error_chain;
use toolstack::paths::Paths;

/// The global options, which come before the subcommand.
const GLOBAL_OPTIONS: &[OptSpec] = &[
    OptSpec {
        short: Some('v'),
        long: None,
        arg: None,
        help: "Verbose (repeat for more).",
    },
    OptSpec {
        short: Some('f'),
        long: None,
        arg: None,
        help: "Force execution.",
    },
    OptSpec {
        short: Some('N'),
        long: None,
        arg: None,
        help: "Dry run: do not actually execute the command.",
    },
    OptSpec {
        short: Some('t'),
        long: None,
        arg: None,
        help: "Overwrite progress messages with carriage returns.",
    },
    OptSpec {
        short: Some('T'),
        long: None,
        arg: None,
        help: "Include timestamps and the pid of xl in messages.",
    },
];

/// The global options given.
#[derive(Debug, Default)]
pub struct Globals {
    /// `-v` count.
    pub verbose: usize,
    /// `-N`.
    pub dryrun: bool,
    /// `-f`.
    pub force: bool,
    /// `-t`.
    pub progress_use_cr: bool,
    /// `-T`.
    pub timestamps: bool,
}

fn main() -> ExitCode {
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(a) => {
                eprintln!("xl: argument {a:?} is not valid UTF-8");
                return ExitCode::FAILURE;
            }
        }
    }
    let m = match getopt(&args, GLOBAL_OPTIONS, Ordering::RequireOrder) {
        Ok(m) => m,
        Err(_) => {
            eprintln!("unknown global option");
            return ExitCode::FAILURE;
        }
    };
    let g = Globals {
        verbose: m.count('v'),
        dryrun: m.has('N'),
        force: m.has('f'),
        progress_use_cr: m.has('t'),
        timestamps: m.has('T'),
    };
    init_logging(&g);

    let Some((cmd, rest)) = m.operands.split_first() else {
        help(None);
        return ExitCode::FAILURE;
    };
    if let Some(spec) = cmdtable::lookup(cmd) {
        if g.dryrun && !spec.can_dryrun {
            eprintln!("command does not implement -N (dryrun) option");
            return ExitCode::FAILURE;
        }
        ExitCode::from((spec.run)(&g, rest))
    } else if cmd == "help" {
        help(rest.first().map(String::as_str));
        ExitCode::SUCCESS
    } else {
        eprintln!("command not implemented");
        ExitCode::FAILURE
    }
}

fn init_logging(g: &Globals) {
    let level = match g.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    if g.timestamps {
        builder.init();
    } else {
        builder.without_time().init();
    }
}

/// `xl help [command]`: the list of subcommands, or one command's usage and options.
pub fn help(command: Option<&str>) {
    match command {
        None | Some("help") => {
            let mut s = String::from(
                "Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n",
            );
            for c in cmdtable::CMD_TABLE {
                s.push_str(&format!(" {:<19} ", c.name));
                if c.name.len() > 19 {
                    s.push_str(&format!("\n {:<19} ", ""));
                }
                s.push_str(c.desc);
                s.push('\n');
            }
            print!("{s}");
        }
        Some(name) => match cmdtable::lookup(name) {
            Some(c) => {
                let mut s = format!(
                    "Usage: xl [-vtT{}{}] {} {}\n\n{}.\n\n",
                    if c.modifies { "f" } else { "" },
                    if c.can_dryrun { "N" } else { "" },
                    c.name,
                    c.usage,
                    c.desc
                );
                if !c.options.is_empty() {
                    s.push_str("Options:\n\n");
                    s.push_str(&cmdtable::render_options(c.options));
                    s.push('\n');
                }
                print!("{s}");
            }
            None => println!("command \"{name}\" not implemented"),
        },
    }
}

/// Parses a command's options as xl's `SWITCH_FOREACH_OPT` does: `-h` prints the help
/// (exit 0), an unknown option exits 2, and fewer than `reqargs` operands print the help
/// and exit 2. `Err` carries the exit status.
pub fn parse_args(
    cmd: &str,
    argv: &[String],
    specs: &[OptSpec],
    reqargs: usize,
) -> Result<Matches, u8> {
    let m = match getopt(argv, specs, Ordering::Permute) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return Err(2);
        }
    };
    if m.has('h') {
        help(Some(cmd));
        return Err(0);
    }
    if m.operands.len() < reqargs {
        eprintln!(
            "'xl {cmd}' requires at least {reqargs} argument{}.\n",
            if reqargs > 1 { "s" } else { "" }
        );
        help(Some(cmd));
        return Err(2);
    }
    Ok(m)
}

/// The toolstack, connected to xenstored; `Err` (after printing why) if it cannot be.
pub fn open_toolstack() -> Result<Toolstack, u8> {
    Toolstack::open(Paths::from_env()).map_err(|e| {
        eprintln!("xl: {}", error_chain(&e));
        1
    })
}

/// What a command on one `<Domain>` (its first operand) starts with: its options parsed
/// ([`parse_args`]), the toolstack opened and the domain found. `Err` carries the exit status.
pub fn domain_command(
    cmd: &str,
    argv: &[String],
    specs: &[OptSpec],
    reqargs: usize,
) -> Result<(Matches, Toolstack, u32), u8> {
    let m = parse_args(cmd, argv, specs, reqargs)?;
    let mut ts = open_toolstack()?;
    let domid = find_domain(&mut ts, &m.operands[0])?;
    Ok((m, ts, domid))
}

/// `xl block-list` and `xl network-list`: `header`, then a line per device of each
/// `<Domain>` operand. As xl, `block-list` reports an operand that is no domain and goes
/// on (`skip_unknown`), `network-list` stops there. The exit status.
pub fn list_devices<T>(
    cmd: &str,
    argv: &[String],
    header: &str,
    skip_unknown: bool,
    devices: impl Fn(&mut toolstack::store::Store, u32) -> Result<Vec<T>, toolstack::store::StoreError>,
    line: impl Fn(&T) -> String,
) -> u8 {
    let m = match parse_args(cmd, argv, vmcontrol::NO_OPTIONS, 1) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    println!("{header}");
    for dom in &m.operands {
        let domid = if skip_unknown {
            let Ok(domid) = ts.lookup(dom) else {
                eprintln!("{dom} is an invalid domain identifier");
                continue;
            };
            domid
        } else {
            match find_domain(&mut ts, dom) {
                Ok(d) => d,
                Err(rc) => return rc,
            }
        };
        match devices(ts.store(), domid) {
            Ok(list) => list.iter().for_each(|d| println!("{}", line(d))),
            Err(e) => {
                eprintln!("xl: {}", error_chain(&e));
                return 1;
            }
        }
    }
    0
}

/// The end of a device attach: its warnings, or its error and the libxl call xl names
/// (`libxl_fn`, e.g. `libxl_device_disk_add`) as failed. The exit status.
pub fn attach_outcome(res: Result<Vec<String>, DomainError>, libxl_fn: &str) -> u8 {
    match res {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("xl: warning: {w}");
            }
            0
        }
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("{libxl_fn} failed.");
            1
        }
    }
}

/// What `xl -N` (dry run) prints for a device: `label: ` and the device as JSON.
pub fn print_dry_run<T: serde::Serialize>(label: &str, device: &T) {
    println!(
        "{label}: {}",
        serde_json::to_string_pretty(device).expect("plain data serializes")
    );
}

/// A domain's id from a name or number (xl's `find_domain`): exits 1 with xl's message
/// for a name no domain has.
pub fn find_domain(ts: &mut Toolstack, q: &str) -> Result<u32, u8> {
    match ts.lookup(q) {
        Ok(id) => Ok(id),
        Err(DomainError::NotFound(_)) => {
            eprintln!("{q} is an invalid domain identifier (rc=-6)");
            Err(1)
        }
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            Err(1)
        }
    }
}

/// xl's `print_bitmap`: `all` when every one of the first `n` bits is set (counted from
/// bit 0 to the end), `none` when none is, else ranges.
pub fn format_bitmap(map: &xl_config::Bitmap, n: u32) -> String {
    let bits: Vec<u32> = map.iter().filter(|b| *b < n).collect();
    if bits.is_empty() {
        return "none".into();
    }
    if bits.len() as u32 == n {
        return "all".into();
    }
    xl_config::Bitmap(bits.into_iter().collect()).to_string()
}

/// The libxl error code xl prints for a failure (`rc=...`).
pub fn libxl_rc(e: &DomainError) -> i32 {
    match e {
        DomainError::NotFound(_) => -21,
        DomainError::NameTaken { .. } | DomainError::BadName(..) => -6,
        _ => -3,
    }
}
