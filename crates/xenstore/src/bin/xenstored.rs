//! `xenstored`: rxen's XenStore daemon. Flags follow Xen's xenstored where
//! they apply; `--state-dir` and `--sync` are rxen's (durability). SIGTERM or
//! SIGINT stop it after the turn in progress (exit status 0, socket and pid
//! file removed); the store stays in the state directory for the next start.

use clap::Parser;
use std::path::PathBuf;
use xenstore::Store;
use xenstore::persist::Persister;
use xenstore::quota::Quotas;
use xenstore::server::{self, Server};

#[derive(Parser, Debug)]
#[command(
    name = "xenstored",
    about = "rxen's XenStore daemon",
    disable_help_flag = true
)]
struct Args {
    /// Print help.
    #[arg(short = 'H', long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Do not fork into the background.
    #[arg(short = 'N', long = "no-fork")]
    no_fork: bool,
    /// Write the daemon's pid to this file.
    #[arg(short = 'F', long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Log every message in and out to this file.
    #[arg(short = 'T', long = "trace-file")]
    trace_file: Option<PathBuf>,
    /// Nodes per domain (quota "nodes").
    #[arg(short = 'E', long = "entry-nb")]
    entry_nb: Option<u32>,
    /// Size of one node (quota "node-size").
    #[arg(short = 'S', long = "entry-size")]
    entry_size: Option<u32>,
    /// Watches per domain (quota "watches").
    #[arg(short = 'W', long = "watch-nb")]
    watch_nb: Option<u32>,
    /// Transactions per domain (quota "transactions").
    #[arg(short = 't', long = "transaction")]
    transaction: Option<u32>,
    /// Permissions per node (quota "node-permissions").
    #[arg(short = 'A', long = "perm-nb")]
    perm_nb: Option<u32>,
    /// Path length below /local/domain/<n>/ (quota "path-max", at most 2048).
    #[arg(short = 'M', long = "path-max")]
    path_max: Option<u32>,
    /// Set quota <what> to <nb>: nodes, watches, outstanding, transactions,
    /// transaction-nodes, node-permissions, path-max, node-size.
    #[arg(short = 'Q', long = "quota", value_name = "WHAT=NB")]
    quota: Vec<String>,
    /// Where the store is kept across restarts.
    #[arg(long = "state-dir", default_value = "/var/lib/xenstored")]
    state_dir: PathBuf,
    /// Keep nothing on disk (the store starts empty every time).
    #[arg(long = "no-persist")]
    no_persist: bool,
    /// fdatasync the log before every reply batch (survives power loss).
    #[arg(long = "sync")]
    sync: bool,
}

fn quotas(a: &Args) -> Result<Quotas, String> {
    let mut q = Quotas::default();
    let set = |q: &mut Quotas, n: &str, v: Option<u32>| {
        if let Some(v) = v {
            q.set(n, v).expect("known quota name");
        }
    };
    set(&mut q, "nodes", a.entry_nb);
    set(&mut q, "node-size", a.entry_size);
    set(&mut q, "watches", a.watch_nb);
    set(&mut q, "transactions", a.transaction);
    set(&mut q, "node-permissions", a.perm_nb);
    set(&mut q, "path-max", a.path_max.map(|m| m.min(2048)));
    for spec in &a.quota {
        let (what, nb) = spec
            .split_once('=')
            .ok_or_else(|| format!("quotas must be specified via <what>=<nb>, not \"{spec}\""))?;
        let nb: u32 = nb
            .parse()
            .map_err(|_| format!("invalid parameter value \"{nb}\""))?;
        q.set(what, nb)
            .map_err(|_| format!("unknown quota \"{what}\""))?;
    }
    Ok(q)
}

fn daemonize() -> std::io::Result<()> {
    // SAFETY: called before any thread is started; the child continues
    // with a copy of this single-threaded process.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain syscall without pointers.
    if unsafe { libc::setsid() } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: both descriptors are open; dup2 replaces the standard one.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    std::env::set_current_dir("/")?;
    Ok(())
}

fn notify_ready() {
    let Some(sock) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let s = std::os::unix::net::UnixDatagram::unbound();
    if let Ok(s) = s {
        let _ = s.send_to(b"READY=1", PathBuf::from(sock));
    }
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("xenstored: {e}");
        let mut src = std::error::Error::source(&*e);
        while let Some(s) = src {
            eprintln!("  caused by: {s}");
            src = s.source();
        }
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let q = quotas(&args)?;
    let (mut store, persister) = if args.no_persist {
        (Store::new(), None)
    } else {
        let (p, s) = Persister::open(&args.state_dir, args.sync)?;
        (s, Some(p))
    };
    store.set_quotas(q);
    let socket = server::default_socket_path();
    let listener = server::bind(&socket)?;
    if !args.no_fork {
        daemonize()?;
    }
    if let Some(p) = &args.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    tracing::info!(
        socket = %socket.display(),
        state = ?(!args.no_persist).then_some(&args.state_dir),
        "xenstored ready"
    );
    notify_ready();
    let mut server = Server::new(listener, store, persister, args.trace_file.as_deref())?;
    // Stopped (`kill`, `systemctl stop`, Ctrl-C): what was acknowledged is
    // already in the state directory; the socket and pid file go.
    server.stop_on(&[libc::SIGTERM, libc::SIGINT])?;
    let sig = server.run()?;
    let _ = std::fs::remove_file(&socket);
    if let Some(p) = &args.pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!(signal = ?sig, "xenstored stopped");
    Ok(())
}
