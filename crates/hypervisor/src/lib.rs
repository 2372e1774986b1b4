//! One rxen domain: the KVM virtual machine, its memfd-backed guest memory,
//! the PVH boot loader, the Xen guest interface the domain process presents
//! to an unmodified Xen-aware guest, and the domain process itself
//! (`rxen-domain`, `docs/domain-process.md`).
//!
//! This crate decides the guest-physical layout ([`layout`]), builds guest
//! memory ([`memory`]), loads a kernel the way Xen's PVH domain builder does
//! ([`boot`]), answers hypercalls ([`xen`]), creates the VM and vCPUs
//! ([`vm`], [`cpuid`]) and runs them ([`vcpus`]); [`domain`] turns a
//! configuration ([`config`]) into all of that and runs it, with the I/O
//! thread ([`io`]: console, XenStore relay, [`control`] channel) and the
//! XenStore registration ([`store`]). It does not parse xl.cfg (the
//! toolstack does and hands over `config.json`), keep the store (rxen's
//! xenstored does; the guest's ring is relayed to it) or implement the
//! device side of PV rings (the `backends` crate does).

pub mod blkback;
pub mod boot;
pub mod config;
pub mod control;
pub mod cpuid;
pub mod devices;
pub mod domain;
pub mod io;
pub mod layout;
pub mod memory;
pub mod netback;
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
