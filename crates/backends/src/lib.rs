//! rxen's PV backends: the host side of the shared-memory rings a Xen guest
//! talks to its devices through.
//!
//! A backend sees a ring page through [`ring::RingMemory`] and signals the
//! guest through [`ring::Notify`]; it knows nothing of KVM, of how the page
//! is mapped or of how the event channel is raised, so the same code serves
//! any domain process and runs against `ring::mock` (feature `test-utils`)
//! in tests. Every index a guest controls is validated before use: a guest
//! that corrupts its ring gets its device disconnected, never a panic or an
//! unbounded buffer.
//!
//! Here: the PV console ([`console`], `io/console.h`) and the XenStore ring
//! relay ([`xenstore`], `io/xs_wire.h`) that connects a guest's store ring
//! to rxen's xenstored. Block and network backends add the pages the guest
//! grants them, through [`grant::GrantAccess`] (`grant_table.h`), with
//! `grant::mock` standing in for a guest in tests.

pub mod blk;
pub mod console;
pub mod grant;
pub mod net;
pub mod ring;
pub mod xenbus;
pub mod xenstore;
