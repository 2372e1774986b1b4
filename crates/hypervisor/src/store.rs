//! The domain's registration with xenstored (`docs/domain-process.md`,
//! "Starting a domain", step 2): its home exists and is the guest's, the
//! store and console ring nodes are written, the domain is introduced and
//! a connection attached as the guest (`rxen-attach`) is returned for the
//! ring relay ([`backends::xenstore::StoreRelay`]).

use std::os::unix::net::UnixStream;
use std::path::Path;

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
    let socket = xenstore::server::default_socket_path();
    register_at(&socket, domid, skel, store_port, console_port)
}

/// [`register`] with xenstored's socket at `socket`.
pub fn register_at(
    socket: &Path,
    domid: u16,
    skel: &Skeleton<'_>,
    store_port: u32,
    console_port: u32,
) -> Result<UnixStream, StoreError> {
    let mut xs = Client::connect_path(socket).map_err(StoreError::Connect)?;
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

    let mut relay = Client::connect_path(socket).map_err(StoreError::Connect)?;
    relay.attach_domain(domid).map_err(StoreError::Attach)?;
    let stream = relay.into_stream().map_err(|_| StoreError::Stream)?;
    stream.set_nonblocking(true).map_err(StoreError::Socket)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against rxen's xenstored, in-process on a private socket. Attaching
    /// needs a root peer (xenstored checks SO_PEERCRED).
    #[test]
    fn registers_a_domain_run_by_hand() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: attaching a guest needs a root peer");
            return;
        }
        let dir = std::env::temp_dir().join(format!("rxen-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("socket");
        let listener = xenstore::server::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let mut s = xenstore::server::Server::new(listener, xenstore::Store::new(), None, None)
                .unwrap();
            let _ = s.run();
        });
        let skel = Skeleton {
            name: "g",
            vcpus: 2,
            memory_kib: 262144,
        };
        let relay = register_at(&sock, 4, &skel, 1, 2).unwrap();
        let mut xs = Client::connect_path(&sock).unwrap();
        let r = |xs: &mut Client, p: &str| xs.read_string(&format!("/local/domain/4/{p}")).unwrap();
        assert_eq!(r(&mut xs, "name"), "g");
        assert_eq!(r(&mut xs, "domid"), "4");
        assert_eq!(r(&mut xs, "cpu/1/availability"), "online");
        assert_eq!(r(&mut xs, "memory/target"), "262144");
        assert_eq!(
            r(&mut xs, "store/ring-ref"),
            SPECIAL_PFN_XENSTORE.to_string()
        );
        assert_eq!(r(&mut xs, "store/port"), "1");
        assert_eq!(
            r(&mut xs, "console/ring-ref"),
            SPECIAL_PFN_CONSOLE.to_string()
        );
        assert_eq!(r(&mut xs, "console/port"), "2");
        assert_eq!(xs.get_perms("/local/domain/4").unwrap().owner_id(), 4);
        assert_eq!(
            xs.get_perms("/local/domain/4/store/port")
                .unwrap()
                .owner_id(),
            0,
            "the guest may not move its own rings"
        );
        assert!(xs.is_domain_introduced(4).unwrap());

        // The relay speaks as domain 4: a relative path lands in its home.
        relay.set_nonblocking(false).unwrap();
        let mut guest = Client::from_stream(relay);
        guest.write("data/x", "1").unwrap();
        assert_eq!(r(&mut xs, "data/x"), "1");
        assert!(guest.read("/local/domain/4/store/port").is_ok(), "readable");
        assert!(
            guest.write("/local/domain/4/store/port", "9").is_err(),
            "not writable"
        );

        // A second registration of a live domain: attach refused (EBUSY).
        assert!(matches!(
            register_at(&sock, 4, &skel, 1, 2),
            Err(StoreError::Attach(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
