//! The toolstack's XenStore: a connection to xenstored and the nodes libxl keeps there.
//!
//! A domain's skeleton is laid out the way libxl's `libxl__domain_make` and
//! `libxl__build_post` lay it out (`tools/libs/light/libxl_create.c`, `libxl_dom.c`,
//! `docs/misc/xenstore-paths.pandoc`), in one transaction:
//!
//! - `/local/domain/N`: owned by dom0, readable by the guest (`n0 rN`), as are `cpu`,
//!   `memory`, `device` and `control`; `name`, `domid`, `vm`, `memory/static-max`,
//!   `memory/target`, `memory/videoram` and `cpu/V/availability` inherit that.
//! - guest-writable (`nN`): `control/shutdown`, `control/feature-{poweroff,reboot,suspend}`,
//!   `control/sysrq`, `data`, `drivers`, `feature`, `attr`, `error`,
//!   `device/suspend/event-channel`.
//! - `control/platform-feature-multiprocessor-suspend` and
//!   `control/platform-feature-xs_reset_watches` = `1`.
//! - `/vm/UUID` (`n0 rN`) with `uuid`, `name` and `start_time`; `/libxl/N` (dom0 only) with
//!   `type` and `device`.
//!
//! Each `disk=` gets libxl's device nodes (`libxl_disk.c`): a backend directory
//! `/local/domain/0/backend/vbd/N/DEVID` (`n0 rN`) and a frontend directory
//! `/local/domain/N/device/vbd/DEVID` (`nN r0`), laid out by
//! `backends::blk::xenbus::vbd_nodes`, which the domain process serves
//! (`docs/domain-process.md`, "Devices").
//!
//! Each `vif=` gets libxl's nodes too (`libxl_nic.c`): `/local/domain/0/backend/vif/N/DEVID`
//! (`n0 rN`) and `/local/domain/N/device/vif/DEVID` (`nN r0`, its `mtu` node `n0 rN`), laid
//! out by `backends::net::xenbus::vif_nodes` with the MAC chosen at creation.
//!
//! `store/*` and `console/*` are the domain process's to write (it knows the ring and
//! port). Domain-0's `name` and `domid` are written when missing, as Xen's `xen-init-dom0`
//! does at boot.
//!
//! The toolstack does not start xenstored: like Xen's xl, it needs the daemon already
//! running (Xen's packaging starts it at boot, `xencommons` or `xenstored.service`; so does
//! rxen's `dist/systemd/xenstored.service`), and says so when it is not.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use backends::blk::xenbus::{VbdNodes, vbd_nodes, vdev_to_devid};
use backends::blk::{DiskConfig, DiskFormat};
use backends::net::xenbus::{VifNodes, vif_nodes};
use backends::xenbus::{DeviceNodes, backend_path, frontend_path, write_device_nodes};
use thiserror::Error;
use xen_abi::DomId;
use xenstore::client::{Client, ClientError};
use xenstore::perms::{Access, Perm, Perms};
use xl_config::DomainConfig;

/// Domain `domid`'s device `devid` of kind `kind`: the guest's id, its frontend
/// directory and dom0's backend directory.
fn device_dirs(domid: u32, kind: &str, devid: u32) -> (DomId, String, String) {
    let guest = DomId(u16::try_from(domid).expect("guest domain ids fit in 16 bits"));
    (
        guest,
        frontend_path(kind, guest, devid),
        backend_path(DomId::DOM0, kind, guest, devid),
    )
}

/// What [`Store::frontend_nodes`] read.
struct FrontendNodes {
    backend: String,
    values: Vec<Option<String>>,
}

impl FrontendNodes {
    /// Value `i` as a number; -1 when missing or not a number (as xl prints it).
    fn num(&self, i: usize) -> i64 {
        self.values[i]
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1)
    }
}

/// One network interface of a domain, as `xl network-list` shows it; -1 for a value
/// the frontend has not written (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInfo {
    /// The device number.
    pub devid: u32,
    /// The backend's domain.
    pub backend_id: i64,
    /// The guest's address.
    pub mac: Option<xl_config::Mac>,
    /// The frontend's XenbusState.
    pub state: i64,
    /// The frontend's event channel.
    pub evtch: i64,
    /// The TX ring's grant reference.
    pub tx_ring_ref: i64,
    /// The RX ring's grant reference.
    pub rx_ring_ref: i64,
    /// The backend directory.
    pub backend: String,
}

/// One virtual disk of a domain, as `xl block-list` shows it (`libxl_diskinfo`); -1 for
/// a value the frontend has not written (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// The device number.
    pub devid: u32,
    /// The backend's domain.
    pub backend_id: i64,
    /// The guest's domain (libxl's `frontend_id`, in the `handle` column).
    pub frontend_id: u32,
    /// The frontend's XenbusState.
    pub state: i64,
    /// The frontend's event channel.
    pub evtch: i64,
    /// The ring's grant reference.
    pub ring_ref: i64,
    /// The backend directory.
    pub backend: String,
}

/// The name of domain 0.
pub const DOM0_NAME: &str = "Domain-0";

/// A XenStore step failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// xenstored is not there.
    #[error(
        "cannot connect to xenstored at {} (xl needs xenstored running: start it with `systemctl start xenstored`, or run `xenstored`)",
        path.display()
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A request failed.
    #[error("xenstore: {what}")]
    Request {
        what: String,
        #[source]
        source: ClientError,
    },
    /// The guest did not acknowledge a control request in time.
    #[error("guest didn't acknowledge control request {request:?} within {}s", timeout.as_secs())]
    AckTimeout { request: String, timeout: Duration },
}

/// The host side of a `disk=` entry, as the domain process reads it from
/// `config.json` (`hypervisor::config::DiskSpec`).
pub fn disk_config(d: &xl_config::DiskConfig) -> DiskConfig {
    let empty = d.format == xl_config::DiskFormat::Empty;
    DiskConfig {
        path: d
            .pdev_path
            .clone()
            .filter(|p| !p.is_empty() && !empty)
            .map(PathBuf::from),
        format: if d.format == xl_config::DiskFormat::Qcow2 {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        },
        readonly: d.readwrite == 0,
        cdrom: d.is_cdrom != 0,
    }
}

fn req(what: impl Into<String>) -> impl FnOnce(ClientError) -> StoreError {
    let what = what.into();
    move |source| StoreError::Request { what, source }
}

/// `/local/domain/N`.
pub fn dom_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

/// A connection to xenstored, as dom0.
#[derive(Debug)]
pub struct Store {
    xs: Client,
    /// A second connection for pipelined reads ([`Store::read_many`]).
    raw: Option<std::os::unix::net::UnixStream>,
}

/// What goes into a new domain's skeleton besides its configuration.
#[derive(Debug, Clone)]
pub struct Skeleton<'a> {
    /// The domain id.
    pub domid: u32,
    /// The effective configuration (with its name, uuid and memory settled).
    pub config: &'a DomainConfig,
    /// `/vm/UUID/start_time`: seconds and hundredths since the epoch.
    pub start_time: String,
}

impl Store {
    /// Connects to xenstored at its default socket (`XENSTORED_PATH`, ...).
    pub fn connect() -> Result<Store, StoreError> {
        match Client::connect() {
            Ok(xs) => Ok(Store { xs, raw: None }),
            Err(ClientError::Connect(path, source)) => Err(StoreError::Connect { path, source }),
            Err(e) => Err(StoreError::Request {
                what: "connecting".into(),
                source: e,
            }),
        }
    }

    /// The raw client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.xs
    }

    /// Reads a node; `None` if it does not exist.
    pub fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        self.xs
            .try_read(path)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .map_err(req(format!("reading {path}")))
    }

    /// Reads several nodes in one round trip (the requests are pipelined), so looking
    /// at every domain costs about as much as looking at one; `None` for a node that
    /// does not exist.
    pub fn read_many(&mut self, paths: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        use std::io::{Read, Write};
        use xenstore::wire::{Frame, FrameDecoder};
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let io = |source: std::io::Error| StoreError::Request {
            what: "reading nodes".into(),
            source: ClientError::Io(source),
        };
        if self.raw.is_none() {
            let path = xenstore::server::default_socket_path();
            let s = std::os::unix::net::UnixStream::connect(&path)
                .map_err(|source| StoreError::Connect { path, source })?;
            self.raw = Some(s);
        }
        let stream = self.raw.as_mut().expect("connected above");
        let mut out = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let mut payload = p.as_bytes().to_vec();
            payload.push(0);
            Frame::new(xen_abi::xs_wire::XS_READ, i as u32 + 1, 0, payload).encode_into(&mut out);
        }
        stream.write_all(&out).map_err(io)?;
        let mut values: Vec<Option<Option<String>>> = vec![None; paths.len()];
        let mut got = 0;
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; 16384];
        while got < paths.len() {
            let n = stream.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Err(StoreError::Request {
                    what: "reading nodes".into(),
                    source: ClientError::Closed,
                });
            }
            let mut frames = Vec::new();
            dec.feed_all(&buf[..n], &mut frames)
                .map_err(|e| StoreError::Request {
                    what: "reading nodes".into(),
                    source: ClientError::Wire(e),
                })?;
            for f in frames {
                let Some(slot) = (f.req_id as usize)
                    .checked_sub(1)
                    .and_then(|i| values.get_mut(i))
                else {
                    continue;
                };
                *slot = Some(if f.type_ == xen_abi::xs_wire::XS_ERROR {
                    None
                } else {
                    Some(String::from_utf8_lossy(&f.payload).into_owned())
                });
                got += 1;
            }
        }
        Ok(values.into_iter().map(Option::flatten).collect())
    }

    /// Writes a node.
    pub fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.xs
            .write(path, value)
            .map_err(req(format!("writing {path}")))
    }

    /// Domain-0's `name` and `domid`, written if either is missing (xen-init-dom0).
    pub fn ensure_dom0(&mut self) -> Result<(), StoreError> {
        let name = self.read("/local/domain/0/name")?;
        let domid = self.read("/local/domain/0/domid")?;
        if name.is_some() && domid.is_some() {
            return Ok(());
        }
        tracing::info!("writing Domain-0's XenStore nodes");
        self.xs
            .transaction(|tx| {
                tx.write("/local/domain/0/domid", "0")?;
                tx.write("/local/domain/0/name", DOM0_NAME)
            })
            .map_err(req("writing Domain-0's nodes"))
    }

    /// The name XenStore gives a domain (`/local/domain/N/name`).
    pub fn domain_name(&mut self, domid: u32) -> Result<Option<String>, StoreError> {
        self.read(&format!("{}/name", dom_path(domid)))
    }

    /// Lays out a new domain's nodes (see the module documentation), replacing any left
    /// from an earlier domain with the same id or uuid.
    pub fn write_skeleton(&mut self, s: &Skeleton<'_>) -> Result<(), StoreError> {
        let domid = u16::try_from(s.domid).expect("guest domain ids fit in 16 bits");
        let c = s.config;
        let name = c.c_info.name.clone().unwrap_or_default();
        let uuid = c
            .c_info
            .uuid
            .expect("the toolstack gives every domain a uuid")
            .to_string();
        let dom = dom_path(s.domid);
        let vm = format!("/vm/{uuid}");
        let libxl = format!("/libxl/{}", s.domid);
        let roperm = Perms::from_vec(vec![
            Perm::new(0, Access::None),
            Perm::new(domid, Access::Read),
        ])
        .expect("two entries");
        let rwperm = Perms::owner(domid, Access::None);
        let noperm = Perms::owner(0, Access::None);
        let b = &c.b_info;
        let max_memkb = b.max_memkb.unwrap_or_default();
        let target_memkb = b.target_memkb.unwrap_or(max_memkb);
        let video_memkb = b.video_memkb.unwrap_or(0);
        let kind = c.c_info.kind.name();

        self.xs
            .transaction(|tx| {
                let mknod =
                    |tx: &mut xenstore::client::Transaction<'_>, path: &str, perms: &Perms| {
                        tx.write(path, "")?;
                        tx.set_perms(path, perms)
                    };
                for p in [&dom, &vm, &libxl] {
                    match tx.rm(p) {
                        Err(e) if !e.is_enoent() => return Err(e),
                        _ => {}
                    }
                }
                mknod(tx, &dom, &roperm)?;
                mknod(tx, &vm, &roperm)?;
                mknod(tx, &libxl, &noperm)?;
                mknod(tx, &format!("{libxl}/device"), &noperm)?;
                tx.write(&format!("{dom}/vm"), &vm)?;
                tx.write(&format!("{dom}/name"), &name)?;
                for d in ["cpu", "memory", "device", "control"] {
                    mknod(tx, &format!("{dom}/{d}"), &roperm)?;
                }
                mknod(tx, &format!("{dom}/device/suspend/event-channel"), &rwperm)?;
                for d in [
                    "control/shutdown",
                    "control/feature-poweroff",
                    "control/feature-reboot",
                    "control/feature-suspend",
                    "control/sysrq",
                    "data",
                    "drivers",
                    "feature",
                    "attr",
                    "error",
                ] {
                    mknod(tx, &format!("{dom}/{d}"), &rwperm)?;
                }
                tx.write(&format!("{vm}/uuid"), &uuid)?;
                tx.write(&format!("{vm}/name"), &name)?;
                tx.write(
                    &format!("{dom}/control/platform-feature-multiprocessor-suspend"),
                    "1",
                )?;
                tx.write(
                    &format!("{dom}/control/platform-feature-xs_reset_watches"),
                    "1",
                )?;
                tx.write(&format!("{libxl}/type"), kind)?;
                // libxl__build_post
                tx.write(&format!("{dom}/memory/static-max"), max_memkb.to_string())?;
                tx.write(&format!("{dom}/memory/target"), target_memkb.to_string())?;
                tx.write(&format!("{dom}/memory/videoram"), video_memkb.to_string())?;
                tx.write(&format!("{dom}/domid"), s.domid.to_string())?;
                for v in 0..b.max_vcpus {
                    let state = if b.avail_vcpus.test(v) {
                        "online"
                    } else {
                        "offline"
                    };
                    tx.write(&format!("{dom}/cpu/{v}/availability"), state)?;
                }
                tx.write(&format!("{vm}/start_time"), &s.start_time)
            })
            .map_err(req(format!("laying out {dom}")))
    }

    /// Lays out the device nodes of domain `domid`'s disks (see the module
    /// documentation), in one transaction. Disks whose `vdev` libxl cannot number are
    /// left out (the plan refuses them).
    pub fn write_disks(&mut self, domid: u32, config: &DomainConfig) -> Result<(), StoreError> {
        let guest = u16::try_from(domid).expect("guest domain ids fit in 16 bits");
        let disks: Vec<(u32, VbdNodes)> = config
            .disks
            .iter()
            .filter_map(|d| {
                let vdev = d.vdev.as_deref()?;
                let devid = vdev_to_devid(vdev)?;
                Some((devid, vbd_nodes(DomId(guest), devid, vdev, &disk_config(d))))
            })
            .collect();
        if disks.is_empty() {
            return Ok(());
        }
        self.xs
            .transaction(|tx| {
                for (devid, n) in &disks {
                    write_device_nodes(tx, "vbd", DomId(guest), *devid, n)?;
                }
                Ok(())
            })
            .map_err(req(format!("laying out the disks of domain {domid}")))
    }

    /// Lays out the device nodes of domain `domid`'s network interfaces (see the module
    /// documentation), in one transaction. Each NIC must have its devid and MAC chosen
    /// ([`crate::Toolstack::set_defaults`]); those that have not are left out.
    pub fn write_nics(&mut self, domid: u32, config: &DomainConfig) -> Result<(), StoreError> {
        let guest = u16::try_from(domid).expect("guest domain ids fit in 16 bits");
        let nics: Vec<(u32, VifNodes)> = config
            .nics
            .iter()
            .filter_map(|n| {
                let devid = u32::try_from(n.devid).ok()?;
                Some((devid, vif_nodes(DomId(guest), devid, n, n.mac?)))
            })
            .collect();
        if nics.is_empty() {
            return Ok(());
        }
        self.xs
            .transaction(|tx| {
                for (devid, n) in &nics {
                    write_device_nodes(tx, "vif", DomId(guest), *devid, n)?;
                }
                Ok(())
            })
            .map_err(req(format!(
                "laying out the network interfaces of domain {domid}"
            )))
    }

    /// Lays out one device's nodes (`kind` `vbd` or `vif`) in one transaction, as
    /// `xl block-attach` / `network-attach` do before asking the domain process to serve
    /// it. Fails, writing nothing, if the device's frontend or backend directory exists.
    pub fn write_device(
        &mut self,
        domid: u32,
        kind: &str,
        devid: u32,
        nodes: &DeviceNodes,
    ) -> Result<(), StoreError> {
        let (guest, fe, be) = device_dirs(domid, kind, devid);
        self.xs
            .transaction(|tx| {
                for p in [&fe, &be] {
                    if tx.try_read(p)?.is_some() {
                        return Err(ClientError::Daemon {
                            op: "laying out a device",
                            errno: xenstore::wire::Errno::EEXIST,
                        });
                    }
                }
                write_device_nodes(tx, kind, guest, devid, nodes)
            })
            .map_err(req(format!("laying out {fe}")))
    }

    /// Whether device `devid` of kind `kind` has a frontend or backend directory.
    pub fn device_exists(
        &mut self,
        domid: u32,
        kind: &str,
        devid: u32,
    ) -> Result<bool, StoreError> {
        let (_, fe, be) = device_dirs(domid, kind, devid);
        Ok(self.read(&fe)?.is_some() || self.read(&be)?.is_some())
    }

    /// Removes a device's frontend and backend directories in one transaction (libxl's
    /// `libxl__device_destroy`); missing ones are fine.
    pub fn remove_device(&mut self, domid: u32, kind: &str, devid: u32) -> Result<(), StoreError> {
        let (_, fe, be) = device_dirs(domid, kind, devid);
        self.xs
            .transaction(|tx| {
                for p in [&fe, &be] {
                    match tx.rm(p) {
                        Err(e) if !e.is_enoent() => return Err(e),
                        _ => {}
                    }
                }
                Ok(())
            })
            .map_err(req(format!("removing {fe} and {be}")))
    }

    /// Removes a device's frontend directory (the first step of a forced detach, as
    /// libxl's: the guest's driver lets go of a device whose directory is gone).
    pub fn remove_frontend(
        &mut self,
        domid: u32,
        kind: &str,
        devid: u32,
    ) -> Result<(), StoreError> {
        let guest = DomId(u16::try_from(domid).expect("guest domain ids fit in 16 bits"));
        let fe = frontend_path(kind, guest, devid);
        match self.xs.rm(&fe) {
            Err(e) if !e.is_enoent() => Err(req(format!("removing {fe}"))(e)),
            _ => Ok(()),
        }
    }

    /// The device numbers under `/local/domain/N/device/KIND`, in order.
    pub fn device_ids(&mut self, domid: u32, kind: &str) -> Result<Vec<u32>, StoreError> {
        let dir = format!("{}/device/{kind}", dom_path(domid));
        let mut devids: Vec<u32> = match self.xs.directory(&dir) {
            Ok(d) => d.iter().filter_map(|n| n.parse().ok()).collect(),
            Err(e) if e.is_enoent() => return Ok(Vec::new()),
            Err(e) => return Err(req(format!("listing {dir}"))(e)),
        };
        devids.sort_unstable();
        Ok(devids)
    }

    /// A device's frontend directory `fe` as the `*-list` commands read it: `backend`,
    /// `backend-id`, `state`, `event-channel`, then `extra` (values in that order, from 0);
    /// `None` for a device without a `backend` node.
    fn frontend_nodes(
        &mut self,
        fe: &str,
        extra: &[&str],
    ) -> Result<Option<FrontendNodes>, StoreError> {
        let keys = ["backend", "backend-id", "state", "event-channel"];
        let paths: Vec<String> = keys
            .iter()
            .chain(extra)
            .map(|k| format!("{fe}/{k}"))
            .collect();
        let values = self.read_many(&paths)?;
        Ok(values[0]
            .clone()
            .map(|backend| FrontendNodes { backend, values }))
    }

    /// Domain `domid`'s virtual disks as `xl block-list` shows them (libxl's
    /// `libxl_device_disk_getinfo`), by devid, from the frontend directories.
    pub fn disks(&mut self, domid: u32) -> Result<Vec<DiskInfo>, StoreError> {
        let mut out = Vec::new();
        for devid in self.device_ids(domid, "vbd")? {
            let fe = format!("{}/device/vbd/{devid}", dom_path(domid));
            let Some(n) = self.frontend_nodes(&fe, &["ring-ref"])? else {
                continue;
            };
            out.push(DiskInfo {
                devid,
                backend_id: n.num(1),
                frontend_id: domid,
                state: n.num(2),
                evtch: n.num(3),
                ring_ref: n.num(4),
                backend: n.backend,
            });
        }
        Ok(out)
    }

    /// Domain `domid`'s network interfaces as `xl network-list` shows them (libxl's
    /// `libxl_device_nic_getinfo`), by devid: the frontend directory's `backend`,
    /// `backend-id`, `state`, `event-channel` and ring references, and the backend's `mac`.
    pub fn nics(&mut self, domid: u32) -> Result<Vec<NicInfo>, StoreError> {
        let dir = format!("{}/device/vif", dom_path(domid));
        let mut out = Vec::new();
        for devid in self.device_ids(domid, "vif")? {
            let fe = format!("{dir}/{devid}");
            let Some(n) = self.frontend_nodes(&fe, &["tx-ring-ref", "rx-ring-ref", "mac"])? else {
                continue;
            };
            let mac = match self.read(&format!("{}/mac", n.backend))? {
                Some(m) => Some(m),
                None => n.values[6].clone(),
            };
            out.push(NicInfo {
                devid,
                backend_id: n.num(1),
                mac: mac.and_then(|m| m.parse().ok()),
                state: n.num(2),
                evtch: n.num(3),
                tx_ring_ref: n.num(4),
                rx_ring_ref: n.num(5),
                backend: n.backend,
            });
        }
        Ok(out)
    }

    /// Removes every node of domain `domid`: its home, its `/vm` entry, `/libxl/N` and
    /// the backend directories dom0 serves it from. Missing nodes are fine.
    pub fn remove_domain(&mut self, domid: u32) -> Result<(), StoreError> {
        let dom = dom_path(domid);
        let vm = self.read(&format!("{dom}/vm"))?;
        let mut paths = vec![dom, format!("/libxl/{domid}")];
        if let Some(vm) = vm.filter(|v| v.starts_with("/vm/")) {
            paths.push(vm);
        }
        match self.xs.directory("/local/domain/0/backend") {
            Ok(kinds) => {
                for k in kinds {
                    paths.push(format!("/local/domain/0/backend/{k}/{domid}"));
                }
            }
            Err(e) if e.is_enoent() => {}
            Err(e) => return Err(req("listing backends")(e)),
        }
        for p in paths {
            match self.xs.rm(&p) {
                Ok(()) => {}
                Err(e) if e.is_enoent() => {}
                Err(e) => return Err(req(format!("removing {p}"))(e)),
            }
        }
        Ok(())
    }

    /// Tells xenstored the domain is gone (`XS_RELEASE`); fine if it never was introduced.
    pub fn release(&mut self, domid: u32) -> Result<(), StoreError> {
        let Ok(d) = u16::try_from(domid) else {
            return Ok(());
        };
        match self.xs.release(d) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.errno(),
                    Some(xenstore::wire::Errno::ENOENT | xenstore::wire::Errno::EINVAL)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(req(format!("releasing domain {domid}"))(e)),
        }
    }

    /// Renames domain `domid` (`name` in its home and in `/vm/UUID`) in one transaction,
    /// as `libxl__domain_rename` does.
    pub fn rename(&mut self, domid: u32, new_name: &str) -> Result<(), StoreError> {
        let dom = dom_path(domid);
        self.xs
            .transaction(|tx| {
                tx.write(&format!("{dom}/name"), new_name)?;
                if let Some(vm) = tx.try_read(&format!("{dom}/vm"))? {
                    let vm = String::from_utf8_lossy(&vm).into_owned();
                    if vm.starts_with("/vm/") {
                        tx.write(&format!("{vm}/name"), new_name)?;
                    }
                }
                Ok(())
            })
            .map_err(req(format!("renaming domain {domid}")))
    }

    /// Moves a shut-down domain out of the way of its restart (`libxl_domain_preserve`):
    /// a new `/vm/NEWUUID`, its home pointing there, and the new name.
    pub fn preserve(
        &mut self,
        domid: u32,
        new_name: &str,
        new_uuid: &str,
    ) -> Result<(), StoreError> {
        let dom = dom_path(domid);
        let vm = format!("/vm/{new_uuid}");
        let d16 = u16::try_from(domid).expect("guest domain ids fit in 16 bits");
        let roperm = Perms::from_vec(vec![
            Perm::new(0, Access::None),
            Perm::new(d16, Access::Read),
        ])
        .expect("two entries");
        self.xs
            .transaction(|tx| {
                match tx.rm(&vm) {
                    Err(e) if !e.is_enoent() => return Err(e),
                    _ => {}
                }
                tx.write(&vm, "")?;
                tx.set_perms(&vm, &roperm)?;
                tx.write(&format!("{dom}/vm"), &vm)?;
                tx.write(&format!("{dom}/name"), new_name)?;
                tx.write(&format!("{vm}/name"), new_name)?;
                tx.write(&format!("{vm}/uuid"), new_uuid)
            })
            .map_err(req(format!("preserving domain {domid}")))
    }

    /// Asks the guest to `poweroff` or `reboot` through `control/shutdown` and waits
    /// until it acknowledges by clearing the node (libxl waits 60 seconds).
    pub fn request_shutdown(
        &mut self,
        domid: u32,
        request: &str,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let path = format!("{}/control/shutdown", dom_path(domid));
        let token = format!("rxen-xl-shutdown-{}", std::process::id());
        self.xs
            .watch(&path, &token)
            .map_err(req(format!("watching {path}")))?;
        let result = self.wait_cleared(&path, request, &token, timeout);
        let _ = self.xs.unwatch(&path, &token);
        result
    }

    fn wait_cleared(
        &mut self,
        path: &str,
        request: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        self.write(path, request)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.read(path)? {
                None => return Ok(()),
                Some(v) if v.is_empty() => return Ok(()),
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::AckTimeout {
                    request: request.to_owned(),
                    timeout,
                });
            }
            match self.xs.read_watch_timeout(left) {
                Ok(ev) if ev.token != token => {}
                Ok(_) | Err(ClientError::Timeout) => {}
                Err(e) => return Err(req(format!("waiting on {path}"))(e)),
            }
        }
    }
}
