//! Domain lifecycle commands (Xen's `tools/xl/xl_vmcontrol.c`): `create`.

use std::io::Write;

use toolstack::config::{config_dir, parse_config, read_config_file};
use toolstack::{DomainPlan, NoticeKind, error_chain, host};

use crate::getopt::{HELP, OptSpec, Ordering, getopt};
use crate::{Globals, help};

const fn opt(short: char, long: Option<&'static str>, help: &'static str) -> OptSpec {
    OptSpec {
        short: Some(short),
        long,
        arg: None,
        help,
    }
}

/// `xl create`'s options (xl's optstring `AFVcdef:inpq` and long options).
pub const CREATE_OPTIONS: &[OptSpec] = &[
    opt(
        'c',
        None,
        "Attach to the domain's console once it is created.",
    ),
    opt(
        'd',
        None,
        "Enable debug messages (the configuration, as JSON, on stderr).",
    ),
    opt(
        'e',
        None,
        "Do not stay in the background to handle the domain's death.",
    ),
    opt('F', None, "Stay in the foreground until the domain dies."),
    OptSpec {
        short: Some('f'),
        long: Some("defconfig"),
        arg: Some("FILE"),
        help: "Read the configuration from FILE.",
    },
    HELP,
    opt(
        'n',
        Some("dryrun"),
        "Dry run: print the resulting configuration as JSON\n(the global -N option does the same).",
    ),
    opt('p', None, "Leave the domain paused once it is created."),
    opt('q', Some("quiet"), "Quiet."),
    opt(
        'V',
        Some("vncviewer"),
        "Start a VNC viewer on the domain's display.",
    ),
    opt(
        'A',
        Some("vncviewer-autopass"),
        "Pass the VNC password to the viewer on its stdin.",
    ),
    OptSpec {
        short: Some('i'),
        long: Some("ignore-global-affinity-masks"),
        arg: None,
        help: "Ignore the global affinity masks of xl.conf.",
    },
];

/// What `xl create` was asked to do.
#[derive(Debug, Default)]
struct CreateOptions {
    config_file: Option<String>,
    overrides: Vec<String>,
    dryrun: bool,
    quiet: bool,
    debug: bool,
    paused: bool,
    console: bool,
    foreground: bool,
    no_monitor: bool,
    vncviewer: bool,
    vncviewer_autopass: bool,
    ignore_affinity_masks: bool,
}

/// `xl create [ConfigFile] [options] [KEY=VALUE...]`.
pub fn main_create(g: &Globals, argv: &[String]) -> u8 {
    let mut o = CreateOptions::default();
    let mut args = argv;
    // As xl: a first word that is neither an option nor KEY=VALUE is the config file.
    if let Some(first) = args.first() {
        if !first.starts_with('-') && !first.contains('=') {
            o.config_file = Some(first.clone());
            args = &args[1..];
        }
    }
    let m = match getopt(args, CREATE_OPTIONS, Ordering::Permute) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if m.has('h') {
        help(Some("create"));
        return 0;
    }
    for (spec, value) in &m.options {
        match spec.short {
            Some('A') => {
                o.vncviewer = true;
                o.vncviewer_autopass = true;
            }
            Some('F') => o.foreground = true,
            Some('V') => o.vncviewer = true,
            Some('c') => o.console = true,
            Some('d') => o.debug = true,
            Some('e') => {
                o.foreground = true;
                o.no_monitor = true;
            }
            Some('f') => o.config_file = value.clone(),
            Some('i') => o.ignore_affinity_masks = true,
            Some('n') => o.dryrun = true,
            Some('p') => o.paused = true,
            Some('q') => o.quiet = true,
            _ => {}
        }
    }
    for operand in m.operands {
        if operand.contains('=') {
            o.overrides.push(operand);
        } else if o.config_file.is_none() {
            o.config_file = Some(operand);
        } else {
            help(Some("create"));
            return 2;
        }
    }
    o.dryrun |= g.dryrun;
    tracing::debug!(?o, "xl create");
    create_domain(&o)
}

fn create_domain(o: &CreateOptions) -> u8 {
    let Some(name) = &o.config_file else {
        eprintln!("Config file not specified");
        return 1;
    };
    let file = match read_config_file(name, &config_dir()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            return 1;
        }
    };
    if !o.quiet {
        eprintln!("Parsing config from {}", file.path.display());
    }
    let topology = match host::read_cpu_topology() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            return 1;
        }
    };
    let mut warnings = Vec::new();
    let parsed = parse_config(&file, &o.overrides, &topology, &mut warnings);
    for w in &warnings {
        eprintln!("{w}");
    }
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            return 1;
        }
    };
    let plan = DomainPlan::new(parsed, &topology);
    for n in &plan.notices {
        let label = match n.kind {
            NoticeKind::Adapted => "note",
            NoticeKind::NotHonoured => "warning",
            NoticeKind::Blocking => "error",
        };
        eprintln!("{}: {label}: {}", n.at, n.message);
    }
    let json = plan.config.to_json();
    if o.dryrun {
        if !plan.can_create() {
            eprintln!("xl: dry run: rxen could not create this domain (see the errors above)");
        }
        let mut out = std::io::stdout().lock();
        if out
            .write_all(json.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return 1;
        }
        return 0;
    }
    if o.debug {
        eprint!("{json}");
    }
    let domain = plan.config.c_info.name.as_deref().unwrap_or("");
    if !plan.can_create() {
        eprintln!("xl: cannot create domain {domain}: see the errors above");
        return 1;
    }
    eprintln!(
        "xl: cannot create domain {domain}: this rxen build cannot start domains yet (it has no rxen-domain); `xl create -n` checks a configuration"
    );
    1
}
