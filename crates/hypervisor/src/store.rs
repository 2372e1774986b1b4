//! The domain's registration with xenstored (`docs/domain-process.md`,
//! "Starting a domain", step 2): its home exists and is the guest's, the
//! store and console ring nodes are written, the domain is introduced and
//! a connection attached as the guest (`rxen-attach`) is returned for the
//! ring relay ([`backends::xenstore::StoreRelay`]).

use std::os::unix::net::UnixStream;

use xenstore::client::{Client, ClientError};
use xenstore::perms::{Access, Perm, Perms};

use crate::layout::{SPECIAL_PFN_CONSOLE, SPECIAL_PFN_XENSTORE};

/// Errors of the registration.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting to xenstored failed.
    #[error("connecting to xenstored failed")]
    Connect(#[source] ClientError),
    /// Creating the domain's home failed.
    #[error("creating /local/domain/{0} failed")]
    Home(u16, #[source] ClientError),
    /// Writing the ring nodes failed.
    #[error("writing the domain's ring nodes failed")]
    Nodes(#[source] ClientError),
    /// `XS_INTRODUCE` failed.
    #[error("introducing the domain failed")]
    Introduce(#[source] ClientError),
    /// The `rxen-attach` handshake failed.
    #[error("attaching the guest's ring relay failed")]
    Attach(#[source] ClientError),
    /// The attached connection could not be taken over.
    #[error("the attached connection already holds daemon output")]
    Stream,
    /// The connection could not be made non-blocking.
    #[error("setting up the relay connection failed")]
    Socket(#[source] std::io::Error),
}

/// What the domain looks like, for the nodes written when run by hand.
#[derive(Clone, Copy, Debug)]
pub struct Skeleton<'a> {
    /// `name`.
    pub name: &'a str,
    /// vCPUs (`cpu/<n>/availability`).
    pub vcpus: u32,
    /// Guest memory in KiB (`memory/static-max`, `memory/target`).
    pub memory_kib: u64,
}

/// Register domain `domid` whose guest uses ports `store_port` and
/// `console_port`; returns the relay connection, non-blocking. Without a
/// toolstack (no `/local/domain/<domid>` yet) it first writes the part of
/// libxl's skeleton a guest reads: `name`, `domid`, `cpu/*/availability`,
/// `memory/{static-max,target}`.
pub fn register(
    domid: u16,
    skel: &Skeleton<'_>,
    store_port: u32,
    console_port: u32,
) -> Result<UnixStream, StoreError> {
    let mut xs = Client::connect().map_err(StoreError::Connect)?;
    let home = format!("/local/domain/{domid}");
    let exists = xs
        .try_read(&home)
        .map_err(|e| StoreError::Home(domid, e))?
        .is_some();
    if !exists {
        // Run by hand, without a toolstack: give the guest its home.
        xs.mkdir(&home).map_err(|e| StoreError::Home(domid, e))?;
        xs.set_perms(&home, &Perms::owner(domid, Access::None))
            .map_err(|e| StoreError::Home(domid, e))?;
        let mut nodes = vec![
            ("name".to_owned(), skel.name.to_owned()),
            ("domid".to_owned(), domid.to_string()),
            ("memory/static-max".to_owned(), skel.memory_kib.to_string()),
            ("memory/target".to_owned(), skel.memory_kib.to_string()),
        ];
        for i in 0..skel.vcpus {
            nodes.push((format!("cpu/{i}/availability"), "online".to_owned()));
        }
        xs.transaction(|tx| {
            for (node, value) in &nodes {
                tx.write(&format!("{home}/{node}"), value)?;
            }
            Ok(())
        })
        .map_err(|e| StoreError::Home(domid, e))?;
    }
    // The ring nodes are dom0's; the guest may read them.
    let ro = Perms::from_vec(vec![
        Perm::new(0, Access::None),
        Perm::new(domid, Access::Read),
    ])
    .expect("two entries make valid permissions");
    let nodes = [
        ("store/ring-ref", SPECIAL_PFN_XENSTORE.to_string()),
        ("store/port", store_port.to_string()),
        ("console/ring-ref", SPECIAL_PFN_CONSOLE.to_string()),
        ("console/port", console_port.to_string()),
        ("console/type", "xenconsoled".to_owned()),
        ("console/output", "pty".to_owned()),
    ];
    xs.transaction(|tx| {
        for dir in ["store", "console"] {
            let p = format!("{home}/{dir}");
            tx.mkdir(&p)?;
            tx.set_perms(&p, &ro)?;
        }
        for (node, value) in &nodes {
            let p = format!("{home}/{node}");
            tx.write(&p, value)?;
            tx.set_perms(&p, &ro)?;
        }
        Ok(())
    })
    .map_err(StoreError::Nodes)?;
    xs.introduce(domid, SPECIAL_PFN_XENSTORE, store_port)
        .map_err(StoreError::Introduce)?;

    let mut relay = Client::connect().map_err(StoreError::Connect)?;
    relay.attach_domain(domid).map_err(StoreError::Attach)?;
    let stream = relay.into_stream().map_err(|_| StoreError::Stream)?;
    stream.set_nonblocking(true).map_err(StoreError::Socket)?;
    Ok(stream)
}
