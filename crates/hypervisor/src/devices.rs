//! The domain's devices while it runs: the virtual disks and network
//! interfaces served at the start, and those added, removed or changed
//! later through the control channel (`disk-attach`, `disk-detach`,
//! `nic-attach`, `nic-detach`, `cd-insert`, `cd-eject`; see
//! `docs/domain-process.md`, "The control channel").
//!
//! The split of work is libxl's: the toolstack writes (and at the end
//! removes) the device's XenStore nodes, this process serves the device.
//! A detach follows libxl's handshake: `online` = 0 and the backend
//! `Closing`, then the frontend closes, then the device is stopped; a
//! guest that does not close within [`DETACH_TIMEOUT`] (libxl's
//! `LIBXL_DESTROY_TIMEOUT`) either keeps the device (`safe`) or loses it
//! anyway (`auto`); `force` does not wait. Requests are carried out one at
//! a time, on a thread of their own (the I/O thread keeps serving the
//! guest's XenStore ring, which the frontend needs to close).

use std::sync::Arc;
use std::time::Duration;

use crate::blkback::{self, DiskHandle};
use crate::config::{DiskSpec, NicSpec};
use crate::control::{self, Request};
use crate::domain::Shared;
use crate::netback::{self, NicHandle};
use crate::vcpus::lock;

/// How long a detach waits for the guest to close its side (libxl's
/// `LIBXL_DESTROY_TIMEOUT`).
pub const DETACH_TIMEOUT: Duration = Duration::from_secs(10);

/// The devices being served.
#[derive(Debug, Default)]
pub struct Devices {
    disks: Vec<(DiskSpec, DiskHandle)>,
    nics: Vec<(NicSpec, NicHandle)>,
    /// Numbers dom0's port of the next backend (from
    /// [`blkback::BACKEND_PORT_BASE`]); never reused.
    next_index: u32,
    /// Set once the domain is ending: no more devices.
    closed: bool,
}

impl Devices {
    fn index(&mut self) -> u32 {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    /// Serve disk `spec`.
    pub fn add_disk(
        &mut self,
        shared: &Arc<Shared>,
        spec: DiskSpec,
    ) -> Result<(), blkback::BlkbackError> {
        let index = self.index();
        let h = blkback::spawn(shared.clone(), index, &spec)?;
        self.disks.push((spec, h));
        Ok(())
    }

    /// Serve network interface `spec`.
    pub fn add_nic(
        &mut self,
        shared: &Arc<Shared>,
        spec: NicSpec,
    ) -> Result<(), netback::NetbackError> {
        let index = self.index();
        let h = netback::spawn(shared.clone(), index, &spec)?;
        self.nics.push((spec, h));
        Ok(())
    }

    /// The disks served, as (name, device number).
    pub fn disks(&self) -> Vec<(String, u32)> {
        self.disks
            .iter()
            .map(|(s, _)| (s.vdev.clone(), s.devid))
            .collect()
    }

    /// The network interfaces served, by device number.
    pub fn nics(&self) -> Vec<u32> {
        self.nics.iter().map(|(s, _)| s.devid).collect()
    }

    /// End every device (the domain is ending): disks first, flushed.
    pub fn stop_all(&mut self) {
        self.closed = true;
        for (_, d) in self.disks.drain(..) {
            d.stop();
        }
        for (_, n) in self.nics.drain(..) {
            n.stop();
        }
    }
}

/// Carry out a device request; the reply line.
pub fn carry_out(shared: &Arc<Shared>, req: Request) -> String {
    match device_op(shared, req) {
        Ok(reply) => reply,
        Err(msg) => {
            tracing::warn!(domid = shared.domid, "device request refused: {msg}");
            control::error(&msg)
        }
    }
}

fn device_op(shared: &Arc<Shared>, req: Request) -> Result<String, String> {
    let mut devs = lock(&shared.devices);
    if devs.closed || lock(&shared.run).end.is_some() {
        return Err("the domain is shutting down".to_owned());
    }
    match req {
        Request::DiskAttach { disk } => {
            let spec = DiskSpec::from_config(&disk).map_err(|e| crate::chain(&e))?;
            if let Some((o, _)) = devs.disks.iter().find(|(o, _)| o.devid == spec.devid) {
                return Err(format!(
                    "disk {}: the domain has a disk with device number {} already ({})",
                    spec.vdev, spec.devid, o.vdev
                ));
            }
            devs.add_disk(shared, spec).map_err(|e| crate::chain(&e))?;
            Ok(control::ok())
        }
        Request::DiskDetach { devid, mode } => {
            let i = devs
                .disks
                .iter()
                .position(|(s, _)| s.devid == devid)
                .ok_or_else(|| format!("the domain has no disk with device number {devid}"))?;
            let forced = devs.disks[i].1.detach(mode, DETACH_TIMEOUT)?;
            let (_, h) = devs.disks.remove(i);
            h.stop();
            Ok(control::detached(forced))
        }
        Request::NicAttach { nic } => {
            let devid = u32::try_from(nic.devid)
                .map_err(|_| format!("vif: no device number given ({})", nic.devid))?;
            if devs.nics.iter().any(|(s, _)| s.devid == devid) {
                return Err(format!(
                    "vif {devid}: the domain has a network interface with that device number already"
                ));
            }
            let mac = nic
                .mac
                .unwrap_or_else(|| backends::net::mac::generated(&shared.spec.uuid, devid));
            let spec = NicSpec {
                devid,
                mac,
                config: nic,
            };
            devs.add_nic(shared, spec).map_err(|e| crate::chain(&e))?;
            Ok(control::ok())
        }
        Request::NicDetach { devid, mode } => {
            let i = devs
                .nics
                .iter()
                .position(|(s, _)| s.devid == devid)
                .ok_or_else(|| {
                    format!("the domain has no network interface with device number {devid}")
                })?;
            let forced = devs.nics[i].1.detach(mode, DETACH_TIMEOUT)?;
            let (_, h) = devs.nics.remove(i);
            h.finish_detach(forced);
            Ok(control::detached(forced))
        }
        Request::CdInsert { disk } => {
            let vdev = disk.vdev.clone().unwrap_or_default();
            let devid = backends::blk::xenbus::vdev_to_devid(&vdev)
                .ok_or_else(|| format!("disk {vdev:?}: not a virtual device name"))?;
            let mut new = disk;
            new.is_cdrom = 1;
            new.readwrite = 0;
            let spec = DiskSpec::from_config(&new).map_err(|e| crate::chain(&e))?;
            change_media(&mut devs, devid, spec)
        }
        Request::CdEject { devid } => {
            let Some((s, _)) = devs.disks.iter().find(|(s, _)| s.devid == devid) else {
                return Err(format!("the domain has no disk with device number {devid}"));
            };
            let mut spec = s.clone();
            spec.config.path = None;
            change_media(&mut devs, devid, spec)
        }
        other => Err(format!("{other:?} is not a device request")),
    }
}

fn change_media(devs: &mut Devices, devid: u32, new: DiskSpec) -> Result<String, String> {
    let (spec, h) = devs
        .disks
        .iter_mut()
        .find(|(s, _)| s.devid == devid)
        .ok_or_else(|| format!("the domain has no disk with device number {devid}"))?;
    if !spec.config.cdrom {
        return Err(format!(
            "disk {} is not a removable drive (devtype=cdrom)",
            spec.vdev
        ));
    }
    h.change_media(new.config.clone())?;
    spec.config = new.config;
    Ok(control::ok())
}
