//! `rxen-domain`: the process of one rxen domain (`docs/domain-process.md`).
//! It parses its arguments and runs [`hypervisor::domain::Domain`]; exit
//! status 0 when the guest shut down (the reason is in `shutdown`) or was
//! destroyed, 1 when the process itself failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hypervisor::domain::{Domain, DomainArgs};

#[derive(Parser, Debug)]
#[command(name = "rxen-domain", about = "Run one rxen domain (started by xl)")]
struct Args {
    /// The domain id.
    #[arg(long)]
    domid: u16,
    /// The domain's config.json (xl-config's DomainConfig).
    #[arg(long)]
    config: PathBuf,
    /// Build the domain but leave its vCPUs paused until `unpause`.
    #[arg(long)]
    paused: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RXEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = DomainArgs {
        domid: args.domid,
        config: args.config,
        paused: args.paused,
    };
    let result = Domain::build(&args).and_then(Domain::run);
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("rxen-domain: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
