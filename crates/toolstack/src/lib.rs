//! rxen's libxl: the toolstack library behind the `xl` command.
//!
//! It reads a domain's configuration ([`config`]: the xl.cfg file found the way xl finds
//! it, merged with `KEY=VALUE` overrides), looks at the host ([`host`]: CPUs and NUMA
//! nodes) and decides what rxen will build ([`plan`]: the effective
//! [`xl_config::DomainConfig`] and every way it differs from what the configuration asks).
//! The lifecycle of running domains is in [`domain`] (create, destroy, pause, shutdown,
//! rename, vCPUs: rxen's `libxl_domain_*`) over [`store`] (the XenStore nodes libxl keeps)
//! and [`control`] (the domain process's control socket); [`monitor`] is the part of
//! `xl create` that stays behind to apply `on_poweroff`/`on_reboot`/`on_crash`;
//! [`console`] attaches a terminal to a domain's console; [`info`] describes the host
//! for `xl info`. Each domain runs in its own process (`rxen-domain`, the contract in
//! `docs/domain-process.md`); [`paths`] says where things are and which program that is.
//! The `xl` binary (`src/bin/xl/`) is a thin command-line layer over it.
//!
//! It needs xenstored running, as Xen's xl does; it never starts it.

pub mod config;
pub mod console;
pub mod control;
pub mod device;
pub mod domain;
pub mod host;
pub mod info;
pub mod monitor;
pub mod paths;
pub mod plan;
pub mod process;
pub mod store;

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
