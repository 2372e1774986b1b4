//! rxen's XenStore: Xen's shared configuration database for dom0 tools and
//! guests, speaking Xen's wire protocol (`xen/include/public/io/xs_wire.h`,
//! `docs/misc/xenstore.txt`) so that Xen's own clients and unmodified guests
//! work with it.
//!
//! The crate holds the store (tree, permissions, transactions, watches,
//! quotas, domains: [`store`]), the frame codec ([`wire`]), the table of
//! operations ([`dispatch`]), durability ([`persist`]), the unix-socket
//! transport of the `xenstored` daemon ([`server`]), a small synchronous
//! client library ([`client`]) and the `xenstore-*` command-line tools
//! ([`cli`]). It does not map guest memory or bind event channels: a guest's
//! ring is relayed by its domain process over the socket after the
//! `rxen-attach` handshake (see [`server`]).

pub mod cli;
pub mod client;
pub mod dispatch;
mod logfile;
pub mod path;
pub mod perms;
pub mod persist;
pub mod quota;
pub mod server;
pub mod store;
pub mod wire;

pub use store::{ConnId, Store};
pub use wire::{Errno, Frame};

#[cfg(test)]
mod tests;
