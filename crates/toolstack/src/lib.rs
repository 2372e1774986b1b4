//! rxen's libxl: the toolstack library behind the `xl` command.
//!
//! It reads a domain's configuration ([`config`]: the xl.cfg file found the way xl finds
//! it, merged with `KEY=VALUE` overrides), looks at the host ([`host`]: CPUs and NUMA
//! nodes) and decides what rxen will build ([`plan`]: the effective
//! [`xl_config::DomainConfig`] and every way it differs from what the configuration asks).
//! The `xl` binary (`src/bin/xl/`) is a thin command-line layer over it.
//!
//! For now it stops before creating anything: it does not start domain processes
//! (`rxen-domain`), talk to xenstored, or manage running domains. When it does, the
//! effective `DomainConfig` (serializable, libxl's JSON shape) is what it hands to the
//! domain process.

pub mod config;
pub mod host;
pub mod plan;

pub use plan::{DomainPlan, Notice, NoticeKind};

/// An error and its chain of sources, joined with ": " (how `xl` prints errors).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
