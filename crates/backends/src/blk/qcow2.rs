//! qcow2 images through the `imago` crate (synchronous build): v2 and v3
//! images, reads and writes, backing chains of qcow2 and raw files as
//! `qemu-img create -f qcow2 -b BASE -F FMT` records them, discard, and
//! durable flushes (metadata caches written, then the files synced);
//! discard on v3 images only. What imago does not support (encryption,
//! external data files it cannot open, ...) fails at open with imago's
//! explanation as the error's source.
//! Backing files are opened read-only, at the paths the image names
//! (relative ones beside the image), as QEMU does.

use std::io::{self, Read};
use std::path::Path;

use imago::file::File;
use imago::io_buffers::{IoVector, IoVectorMut};
use imago::qcow2::Qcow2;
use imago::{FormatAccess, FormatDriverBuilder, PermissiveImplicitOpenGate};
use vm_memory::VolatileSlice;
use xen_abi::io::blkif::BLKIF_SECTOR_SIZE;

use super::disk::{Disk, DiskError};

/// A qcow2 image and its backing chain.
#[derive(Debug)]
pub struct Qcow2Disk {
    img: FormatAccess<File>,
    readonly: bool,
    version: u32,
}

impl Qcow2Disk {
    /// Open the image at `path` (read-write unless `readonly`) with its
    /// backing chain.
    pub fn open(path: &Path, readonly: bool) -> Result<Self, DiskError> {
        let err = |source| DiskError::Qcow2 {
            path: path.to_owned(),
            source,
        };
        // The header starts with the magic and the version, big-endian.
        let mut head = [0u8; 8];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .map_err(|source| DiskError::Open {
                path: path.to_owned(),
                source,
            })?;
        let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let img = Qcow2::<File>::builder_path(path)
            .write(!readonly)
            .open(PermissiveImplicitOpenGate::default())
            .map_err(err)?;
        Ok(Self {
            img: FormatAccess::new(img),
            readonly,
            version,
        })
    }
}

impl Disk for Qcow2Disk {
    fn sectors(&self) -> u64 {
        self.img.size() / BLKIF_SECTOR_SIZE
    }
    fn read_only(&self) -> bool {
        self.readonly
    }
    fn can_discard(&self) -> bool {
        // Discarding needs v3's zero clusters (imago refuses it on v2).
        !self.readonly && self.version >= 3
    }
    fn read_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        let (v, _guard) = IoVectorMut::from_volatile_slice(bufs);
        self.img.readv(v, offset)
    }
    fn write_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        if self.readonly {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let (v, _guard) = IoVector::from_volatile_slice(bufs);
        self.img.writev(v, offset)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.readonly {
            return Ok(());
        }
        self.img.flush()?;
        self.img.sync()
    }
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.readonly {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        if len == 0 {
            return Ok(());
        }
        // Whole clusters are freed; the guest gets no promise about what a
        // discarded range reads back as, so partial ones are left alone.
        self.img.discard_to_any(offset, len)
    }
}
