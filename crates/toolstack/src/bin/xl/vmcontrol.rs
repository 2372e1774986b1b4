//! Domain lifecycle commands (Xen's `tools/xl/xl_vmcontrol.c`): `create`, `destroy`,
//! `shutdown`, `reboot`, `pause`, `unpause`.

use std::io::Write;

use toolstack::config::{config_dir, parse_config, read_config_file};
use toolstack::domain::{CreateOptions as LifecycleOptions, WaitFor};
use toolstack::paths::{Paths, domain_files};
use toolstack::process::{Side, daemonise};
use toolstack::{DomainPlan, NoticeKind, error_chain, host, monitor};

use crate::getopt::{HELP, OptSpec, Ordering, getopt};
use crate::{Globals, domain_command, find_domain, help, libxl_rc, open_toolstack, parse_args};

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
    let domain = plan.config.c_info.name.clone().unwrap_or_default();
    if !plan.can_create() {
        eprintln!("xl: cannot create domain {domain}: see the errors above");
        return 1;
    }
    if o.vncviewer {
        eprintln!("xl: rxen has no graphical console: -V/-A ignored (use xl console)");
    }
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let created = match ts.create(plan.config, LifecycleOptions { paused: o.paused }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xl: cannot create domain {domain}: {}", error_chain(&e));
            // xl exits with -rc, and libxl's creation failures are ERROR_FAIL (-3).
            return 3;
        }
    };
    let domid = created.domid;
    tracing::info!(domid, "domain created");
    let console = ts.paths.domain_dir(domid).join(domain_files::CONSOLE);

    if o.no_monitor {
        // -e: nobody handles the domain's end; it stays shut down until destroyed.
        drop(created);
        return if o.console {
            attach_console(&console)
        } else {
            0
        };
    }
    if o.foreground {
        let console_thread = o
            .console
            .then(|| std::thread::spawn(move || attach_console(&console)));
        let r = run_monitor(&mut ts, created);
        if let Some(t) = console_thread {
            let _ = t.join();
        }
        return r;
    }
    let log = ts.paths.domain_log(&domain);
    match daemonise(&log) {
        Ok(Side::Parent) => {
            if o.console {
                attach_console(&console)
            } else {
                0
            }
        }
        Ok(Side::Daemon) => {
            let mut created = created;
            created.process.forget_child();
            drop(ts);
            let mut ts = match toolstack::domain::Toolstack::open(Paths::from_env()) {
                Ok(t) => t,
                Err(e) => {
                    println!("xl: monitor: {}", error_chain(&e));
                    std::process::exit(1);
                }
            };
            std::process::exit(i32::from(run_monitor(&mut ts, created)));
        }
        Err(e) => {
            eprintln!(
                "xl: domain {domid} is running, but its monitor could not start: {}",
                error_chain(&e)
            );
            1
        }
    }
}

fn run_monitor(ts: &mut toolstack::domain::Toolstack, created: toolstack::domain::Created) -> u8 {
    match monitor::run(ts, created) {
        Ok(_) => 0,
        Err(e) => {
            println!("xl: monitor: {}", error_chain(&e));
            1
        }
    }
}

fn attach_console(socket: &std::path::Path) -> u8 {
    let stream = match toolstack::console::connect(socket, std::time::Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("Unable to attach console");
            return 1;
        }
    };
    match toolstack::console::attach(stream, toolstack::console::DEFAULT_ESCAPE) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            1
        }
    }
}

/// `xl destroy`'s options.
pub const DESTROY_OPTIONS: &[OptSpec] = &[
    opt(
        'f',
        None,
        "Allow destroying domain 0 (rxen refuses all the same: it is the host).",
    ),
    HELP,
];

/// `xl destroy [-f] <Domain>`.
pub fn main_destroy(_g: &Globals, argv: &[String]) -> u8 {
    let (m, mut ts, domid) = match domain_command("destroy", argv, DESTROY_OPTIONS, 1) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    if domid == 0 && !m.has('f') {
        eprintln!(
            "Not destroying domain 0; use -f to force.\nThis can only be done when using a disaggregated hardware domain and toolstack.\n"
        );
        return 1;
    }
    match ts.destroy(domid) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("destroy failed (rc={})", libxl_rc(&e));
            1
        }
    }
}

/// `xl shutdown`'s and `xl reboot`'s options.
pub const SHUTDOWN_OPTIONS: &[OptSpec] = &[
    opt('a', Some("all"), "Every guest domain."),
    HELP,
    opt(
        'F',
        None,
        "Fall back to an ACPI event for guests without PV drivers\n(rxen's PVH guests always have them).",
    ),
    opt(
        'w',
        Some("wait"),
        "Wait until the domain(s) have shut down\n(twice: until they are gone).",
    ),
];

/// `xl shutdown [-a] [-w] [-F] <Domain>`.
pub fn main_shutdown(g: &Globals, argv: &[String]) -> u8 {
    shutdown_or_reboot(g, argv, false)
}

/// `xl reboot [-a] [-w] [-F] <Domain>`.
pub fn main_reboot(g: &Globals, argv: &[String]) -> u8 {
    shutdown_or_reboot(g, argv, true)
}

fn shutdown_or_reboot(_g: &Globals, argv: &[String], reboot: bool) -> u8 {
    let what = if reboot { "reboot" } else { "shutdown" };
    let m = match parse_args(what, argv, SHUTDOWN_OPTIONS, 0) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let all = m.has('a');
    let wait = m.count('w');
    if m.operands.is_empty() && !all {
        eprintln!("You must specify -a or a domain id.\n");
        return 1;
    }
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let domids: Vec<u32> = if all {
        match ts.list() {
            Ok(l) => l
                .into_iter()
                .filter(|d| d.domid != 0 && d.shutdown.is_none() && !d.dying)
                .map(|d| d.domid)
                .collect(),
            Err(e) => {
                eprintln!("xl: {}", error_chain(&e));
                return 1;
            }
        }
    } else {
        match find_domain(&mut ts, &m.operands[0]) {
            Ok(d) => vec![d],
            Err(rc) => return rc,
        }
    };
    let request = if reboot { "reboot" } else { "poweroff" };
    for &domid in &domids {
        if reboot {
            eprintln!("Rebooting domain {domid}");
        } else {
            eprintln!("Shutting down domain {domid}");
        }
        if let Err(e) = ts.request_shutdown(domid, request) {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("{what} failed (rc={})", libxl_rc(&e));
            return 1;
        }
    }
    if wait > 0 {
        eprintln!("Waiting for {} domains", domids.len());
        let until = if wait == 1 {
            WaitFor::ShutdownOrDeath
        } else {
            WaitFor::Death
        };
        for &domid in &domids {
            match ts.wait_for(domid, until) {
                Ok(None) => eprintln!("Domain {domid} has been destroyed"),
                Ok(Some(r)) => eprintln!(
                    "Domain {domid} has been shut down, reason code {}",
                    r.code()
                ),
                Err(e) => {
                    eprintln!("Failed to get event, quitting ({})", error_chain(&e));
                    return 1;
                }
            }
        }
    }
    0
}

/// The options of commands that take none but `-h`.
pub const NO_OPTIONS: &[OptSpec] = &[HELP];

/// `xl pause <Domain>`.
pub fn main_pause(_g: &Globals, argv: &[String]) -> u8 {
    pause_or_unpause(argv, "pause")
}

/// `xl unpause <Domain>`.
pub fn main_unpause(_g: &Globals, argv: &[String]) -> u8 {
    pause_or_unpause(argv, "unpause")
}

fn pause_or_unpause(argv: &[String], what: &str) -> u8 {
    let (_, mut ts, domid) = match domain_command(what, argv, NO_OPTIONS, 1) {
        Ok(x) => x,
        Err(rc) => return rc,
    };
    let r = if what == "pause" {
        ts.pause(domid)
    } else {
        ts.unpause(domid)
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            1
        }
    }
}
