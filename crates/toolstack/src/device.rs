//! Devices of running domains: rxen's `libxl_device_disk_add/_remove/_destroy`,
//! `libxl_device_nic_add/_remove` and `libxl_cdrom_insert` (`xl block-attach`,
//! `block-detach`, `network-attach`, `network-detach`, `cd-insert`, `cd-eject`).
//!
//! The split of work is libxl's: the toolstack writes a new device's XenStore nodes
//! (the same layout as at `xl create`, [`crate::store::Store::write_device`]), then asks
//! the domain process over its control channel to serve it (`disk-attach`, `nic-attach`);
//! if that fails the nodes go again and nothing has changed. A detach asks the domain
//! process (`disk-detach`, `nic-detach`), which takes the device through libxl's
//! handshake (`online` = 0, backend `Closing`, the frontend closes, at most 10 s), then
//! removes the frontend and backend directories. `--force` removes the frontend directory
//! first and does not wait, as `libxl_device_disk_destroy`. Each change is also made to
//! the domain's `config.json`, so the device is still there after `xl reboot` (libxl
//! updates its stored domain configuration the same way).
//!
//! The operations on one domain are serialised by a lock file in its runtime directory.

use backends::blk::xenbus::{vbd_nodes, vdev_to_devid};
use backends::net::xenbus::vif_nodes;
use xen_abi::DomId;
use xl_config::{DiskConfig, DiskFormat, NicConfig};

use crate::control::{self, ControlError, DetachMode};
use crate::domain::{DomainError, Toolstack};
use crate::paths::domain_files as f;
use crate::plan::{NoticeKind, disk_notices, nic_notices};
use crate::process::FileLock;
use crate::store::disk_config;

/// What an attach would not honour (printed as warnings by `xl`).
pub type Warnings = Vec<String>;

fn control_err(domid: u32) -> impl FnOnce(ControlError) -> DomainError {
    move |source| DomainError::Control { domid, source }
}

fn guest(domid: u32) -> DomId {
    DomId(u16::try_from(domid).expect("guest domain ids fit in 16 bits"))
}

impl Toolstack {
    fn devices_lock(&self, domid: u32) -> Result<FileLock, DomainError> {
        Ok(FileLock::acquire(
            &self.paths.domain_dir(domid).join(f::DEVICES_LOCK),
        )?)
    }

    /// Adds a virtual disk to a running domain (`libxl_device_disk_add`): checks it as
    /// `xl create` would, lays out its nodes, has the domain process serve it and records
    /// it in the domain's configuration. Returns what will not be honoured.
    pub fn block_attach(&mut self, domid: u32, disk: DiskConfig) -> Result<Warnings, DomainError> {
        let socket = self.live_control(domid)?;
        let vdev = disk.vdev.clone().unwrap_or_default();
        let mut warnings = Vec::new();
        for (kind, msg) in disk_notices(&disk) {
            match kind {
                NoticeKind::Blocking => {
                    return Err(DomainError::Device(format!("disk {vdev}: {msg}")));
                }
                _ => warnings.push(format!("disk {vdev}: {msg}")),
            }
        }
        let devid = vdev_to_devid(&vdev).expect("checked by disk_notices");
        let _lock = self.devices_lock(domid)?;
        let mut config = self.config(domid)?;
        let taken = config
            .disks
            .iter()
            .find(|d| d.vdev.as_deref().and_then(vdev_to_devid) == Some(devid));
        if let Some(d) = taken {
            return Err(DomainError::Device(format!(
                "disk {vdev}: domain {domid} has a disk with device number {devid} already ({})",
                d.vdev.as_deref().unwrap_or("?")
            )));
        }
        if self.store().device_exists(domid, "vbd", devid)? {
            return Err(DomainError::Device(format!(
                "disk {vdev}: domain {domid} has XenStore nodes for device {devid} already"
            )));
        }
        let nodes = vbd_nodes(guest(domid), devid, &vdev, &disk_config(&disk));
        self.store().write_device(domid, "vbd", devid, &nodes)?;
        if let Err(e) = control::disk_attach(&socket, &disk) {
            let _ = self.store().remove_device(domid, "vbd", devid);
            return Err(control_err(domid)(e));
        }
        config.disks.push(disk);
        self.write_config(domid, &config)?;
        self.hvlog(&format!("d{domid}: disk {vdev} attached"));
        Ok(warnings)
    }

    /// Removes a virtual disk (`vdev` a name such as `xvdb`, or its device number) from a
    /// running domain: `libxl_device_disk_safe_remove`, or with `force`
    /// `libxl_device_disk_destroy`. Returns whether the guest had not let go of it.
    pub fn block_detach(
        &mut self,
        domid: u32,
        vdev: &str,
        force: bool,
    ) -> Result<bool, DomainError> {
        let socket = self.live_control(domid)?;
        let no_device = || DomainError::NoDevice {
            domid,
            what: format!("disk {vdev}"),
        };
        let devid = vdev_to_devid(vdev).ok_or_else(no_device)?;
        let _lock = self.devices_lock(domid)?;
        let mut config = self.config(domid)?;
        let in_config = config
            .disks
            .iter()
            .any(|d| d.vdev.as_deref().and_then(vdev_to_devid) == Some(devid));
        if !in_config && !self.store().device_exists(domid, "vbd", devid)? {
            return Err(no_device());
        }
        if force {
            self.store().remove_frontend(domid, "vbd", devid)?;
        }
        let mode = if force {
            DetachMode::Force
        } else {
            DetachMode::Safe
        };
        let forced = match control::detach(&socket, "disk", devid, mode) {
            Ok(forced) => forced,
            // Forced: whatever the domain process says, the device goes.
            Err(e) if force => {
                tracing::warn!(domid, devid, error = %crate::error_chain(&e), "forced detach");
                true
            }
            Err(e) => return Err(control_err(domid)(e)),
        };
        self.store().remove_device(domid, "vbd", devid)?;
        config
            .disks
            .retain(|d| d.vdev.as_deref().and_then(vdev_to_devid) != Some(devid));
        self.write_config(domid, &config)?;
        self.hvlog(&format!("d{domid}: disk {vdev} detached"));
        Ok(forced)
    }

    /// Adds a network interface to a running domain (`libxl_device_nic_add`): the next
    /// free device number unless `devid=` gives one, the domain's stable MAC for it
    /// unless `mac=` gives one. Returns the interface as attached and what will not be
    /// honoured.
    pub fn network_attach(
        &mut self,
        domid: u32,
        mut nic: NicConfig,
    ) -> Result<(NicConfig, Warnings), DomainError> {
        let socket = self.live_control(domid)?;
        let _lock = self.devices_lock(domid)?;
        let mut config = self.config(domid)?;
        let in_store = self.store().device_ids(domid, "vif")?;
        if nic.devid < 0 {
            let highest = config
                .nics
                .iter()
                .map(|n| i64::from(n.devid))
                .chain(in_store.iter().map(|&d| i64::from(d)))
                .max()
                .unwrap_or(-1);
            nic.devid = i32::try_from(highest + 1)
                .map_err(|_| DomainError::Device("vif: no free device number".to_owned()))?;
        }
        let devid = nic.devid.unsigned_abs();
        let mut warnings = Vec::new();
        for (kind, msg) in nic_notices(&nic) {
            match kind {
                NoticeKind::Blocking => {
                    return Err(DomainError::Device(format!("vif {devid}: {msg}")));
                }
                _ => warnings.push(format!("vif {devid}: {msg}")),
            }
        }
        if config.nics.iter().any(|n| n.devid == nic.devid) || in_store.contains(&devid) {
            return Err(DomainError::Device(format!(
                "vif {devid}: domain {domid} has a network interface with that device number already"
            )));
        }
        let uuid = config.c_info.uuid.map(|u| u.0).unwrap_or_default();
        let mac = *nic
            .mac
            .get_or_insert_with(|| backends::net::mac::generated(&uuid, devid));
        if let Some(other) = config.nics.iter().find(|n| n.mac == Some(mac)) {
            return Err(DomainError::Device(format!(
                "vif {devid}: MAC address {mac} is vif {}'s already",
                other.devid
            )));
        }
        let nodes = vif_nodes(guest(domid), devid, &nic, mac);
        self.store().write_device(domid, "vif", devid, &nodes)?;
        if let Err(e) = control::nic_attach(&socket, &nic) {
            let _ = self.store().remove_device(domid, "vif", devid);
            return Err(control_err(domid)(e));
        }
        config.nics.push(nic.clone());
        self.write_config(domid, &config)?;
        self.hvlog(&format!("d{domid}: vif {devid} ({mac}) attached"));
        Ok((nic, warnings))
    }

    /// Removes a network interface, named by its device number or its MAC address, from
    /// a running domain (`libxl_device_nic_remove`: a guest that does not close it within
    /// 10 s loses it anyway). Returns whether the guest had not let go of it.
    pub fn network_detach(&mut self, domid: u32, which: &str) -> Result<bool, DomainError> {
        let socket = self.live_control(domid)?;
        let no_device = || DomainError::NoDevice {
            domid,
            what: format!("network interface {which}"),
        };
        let _lock = self.devices_lock(domid)?;
        let mut config = self.config(domid)?;
        let devid = if which.contains(':') {
            let mac: xl_config::Mac = which.parse().map_err(|_| no_device())?;
            match config.nics.iter().find(|n| n.mac == Some(mac)) {
                Some(n) => n.devid.unsigned_abs(),
                None => self
                    .store()
                    .nics(domid)?
                    .into_iter()
                    .find(|n| n.mac == Some(mac))
                    .map(|n| n.devid)
                    .ok_or_else(no_device)?,
            }
        } else {
            which.parse::<u32>().map_err(|_| no_device())?
        };
        let in_config = config.nics.iter().any(|n| n.devid.unsigned_abs() == devid);
        if !in_config && !self.store().device_exists(domid, "vif", devid)? {
            return Err(no_device());
        }
        let forced =
            control::detach(&socket, "nic", devid, DetachMode::Auto).map_err(control_err(domid))?;
        self.store().remove_device(domid, "vif", devid)?;
        config.nics.retain(|n| n.devid.unsigned_abs() != devid);
        self.write_config(domid, &config)?;
        self.hvlog(&format!("d{domid}: vif {devid} detached"));
        Ok(forced)
    }

    /// Puts a medium in a removable drive (`target` a path, as xl's `cd-insert` takes
    /// it), or empties it (`None`, `cd-eject`). The drive must be a `devtype=cdrom` disk
    /// of the domain. The backend's `params` follows, and the domain's configuration.
    pub fn cd_insert(
        &mut self,
        domid: u32,
        vdev: &str,
        target: Option<&str>,
    ) -> Result<(), DomainError> {
        let socket = self.live_control(domid)?;
        // As xl builds it.
        let spec = format!(
            "vdev={vdev},access=r,devtype=cdrom,target={}",
            target.unwrap_or("")
        );
        let new = xl_config::disk::parse_disk_spec(&spec)
            .map_err(|e| DomainError::Device(format!("disk spec {spec:?}: {e}")))?;
        for (kind, msg) in disk_notices(&new) {
            if kind == NoticeKind::Blocking {
                return Err(DomainError::Device(format!("disk {vdev}: {msg}")));
            }
        }
        if let Some(path) = new.pdev_path.as_deref().filter(|p| !p.is_empty())
            && let Err(e) = std::fs::metadata(path)
        {
            return Err(DomainError::Device(format!(
                "Cannot stat file: {path}: {e}"
            )));
        }
        let no_device = || DomainError::NoDevice {
            domid,
            what: format!("disk {vdev}"),
        };
        let devid = vdev_to_devid(vdev).ok_or_else(no_device)?;
        let _lock = self.devices_lock(domid)?;
        let mut config = self.config(domid)?;
        let Some(i) = config
            .disks
            .iter()
            .position(|d| d.vdev.as_deref().and_then(vdev_to_devid) == Some(devid))
        else {
            return Err(no_device());
        };
        if config.disks[i].is_cdrom == 0 {
            return Err(DomainError::Device(format!(
                "disk {vdev} of domain {domid} is not a removable drive (devtype=cdrom)"
            )));
        }
        let mut disk = config.disks[i].clone();
        disk.pdev_path = new.pdev_path.clone();
        disk.format = new.format;
        if disk.pdev_path.as_deref().is_none_or(str::is_empty) {
            disk.pdev_path = Some(String::new());
            disk.format = DiskFormat::Empty;
        }
        match target {
            Some(_) => control::cd_insert(&socket, &disk),
            None => control::cd_eject(&socket, devid),
        }
        .map_err(control_err(domid))?;
        // The backend's new `params` (and `type`), in one transaction as libxl writes them.
        let nodes = vbd_nodes(guest(domid), devid, vdev, &disk_config(&disk));
        let be = backends::xenbus::backend_path(DomId::DOM0, "vbd", guest(domid), devid);
        self.store()
            .client()
            .transaction(|tx| {
                for (k, v) in nodes
                    .backend
                    .iter()
                    .filter(|(k, _)| matches!(*k, "params" | "type"))
                {
                    tx.write(&format!("{be}/{k}"), v)?;
                }
                Ok(())
            })
            .map_err(|source| crate::store::StoreError::Request {
                what: format!("writing {be}/params"),
                source,
            })?;
        config.disks[i] = disk;
        self.write_config(domid, &config)?;
        self.hvlog(&format!(
            "d{domid}: {vdev} {}",
            match target {
                Some(t) => format!("medium {t} inserted"),
                None => "ejected".to_owned(),
            }
        ));
        Ok(())
    }
}
