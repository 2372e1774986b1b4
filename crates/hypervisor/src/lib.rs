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
pub mod cpuid;
pub mod layout;
pub mod memory;
pub mod xen;
