//! One rxen domain: the KVM virtual machine, its memfd-backed guest memory,
//! the PVH boot loader and (as it grows) the Xen guest interface that the
//! domain process presents to an unmodified Xen-aware guest.
//!
//! This crate decides the guest-physical layout ([`layout`]), builds guest
//! memory ([`memory`]), loads a kernel the way Xen's PVH domain builder does
//! ([`boot`]). It does not parse xl configs (the toolstack does), run
//! XenStore (rxen's xenstored does) or implement PV backends (the
//! `backends` crate does); it only exposes the pages and event channels they
//! connect to.

pub mod boot;
pub mod config;
pub mod control;
pub mod cpuid;
pub mod domain;
pub mod io;
pub mod layout;
pub mod memory;
pub mod store;
pub mod vcpus;
pub mod vm;
pub mod xen;

/// An error and its sources, `: `-separated, for log lines.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
