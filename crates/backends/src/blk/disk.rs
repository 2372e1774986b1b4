//! What a virtual disk is made of on the host: a raw image file, a block
//! device (`phy:`, an LVM volume), a qcow2 image with its backing chain, or
//! nothing (an empty cdrom drive).
//!
//! [`Disk`] moves data between the disk and guest pages given as vm-memory
//! [`VolatileSlice`]s, so reads and writes go straight between the image
//! and guest memory (one `preadv`/`pwritev` per request for raw disks).
//! [`Disk::flush`] returns only once everything written before is durable.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use vm_memory::VolatileSlice;
use xen_abi::io::blkif::{BLKIF_SECTOR_SIZE, VDISK_CDROM, VDISK_READONLY, VDISK_REMOVABLE};

/// A host-side disk.
pub trait Disk: Send {
    /// Size in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
    /// Whether [`Disk::discard`] can work.
    fn can_discard(&self) -> bool;
    /// Fill `bufs`, in order, from the bytes at `offset` (inside the disk).
    fn read_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()>;
    /// Write `bufs`, in order, at `offset` (inside the disk).
    fn write_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()>;
    /// Make everything written so far durable.
    fn flush(&mut self) -> io::Result<()>;
    /// Let the host forget `len` bytes at `offset`: they may read back as
    /// anything (zeros for raw files and qcow2).
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()>;
}

/// Image formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiskFormat {
    /// The guest's sectors, one after the other (files and block devices).
    #[default]
    Raw,
    /// QEMU's copy-on-write format, v2 or v3, with backing files.
    Qcow2,
}

/// What to serve: the host side of one `disk=` entry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DiskConfig {
    /// The image file or block device; `None` for an empty cdrom drive.
    pub path: Option<PathBuf>,
    /// Its format.
    pub format: DiskFormat,
    /// `access=r`: writes fail, the frontend sees a read-only disk.
    pub readonly: bool,
    /// `devtype=cdrom`: a removable cdrom.
    pub cdrom: bool,
}

impl DiskConfig {
    /// The `info` node's value (`VDISK_*` bits).
    pub fn vdisk_info(&self) -> u32 {
        let mut info = 0;
        if self.cdrom {
            info |= VDISK_CDROM | VDISK_REMOVABLE;
        }
        if self.readonly {
            info |= VDISK_READONLY;
        }
        info
    }
}

/// Why a disk cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Opening the file or device failed.
    #[error("opening {path} failed")]
    Open {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Its size could not be found.
    #[error("finding the size of {path} failed")]
    Size {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The qcow2 image (or one of its backing files) is unusable.
    #[error("opening qcow2 image {path} failed")]
    Qcow2 {
        /// The path.
        path: PathBuf,
        /// imago's explanation.
        #[source]
        source: io::Error,
    },
    /// Only a cdrom drive may be empty.
    #[error("a disk needs a target (only a cdrom drive may be empty)")]
    NoTarget,
}

/// Open the disk `cfg` describes.
pub fn open(cfg: &DiskConfig) -> Result<Box<dyn Disk>, DiskError> {
    let Some(path) = cfg.path.as_deref() else {
        return if cfg.cdrom {
            Ok(Box::new(EmptyDisk))
        } else {
            Err(DiskError::NoTarget)
        };
    };
    match cfg.format {
        DiskFormat::Raw => Ok(Box::new(RawDisk::open(path, cfg.readonly)?)),
        DiskFormat::Qcow2 => Ok(Box::new(super::qcow2::Qcow2Disk::open(path, cfg.readonly)?)),
    }
}

/// An empty removable drive: no sectors, so every I/O is out of range.
#[derive(Debug)]
pub struct EmptyDisk;

impl Disk for EmptyDisk {
    fn sectors(&self) -> u64 {
        0
    }
    fn read_only(&self) -> bool {
        true
    }
    fn can_discard(&self) -> bool {
        false
    }
    fn read_at(&mut self, _: u64, _: &[VolatileSlice<'_>]) -> io::Result<()> {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
    fn write_at(&mut self, _: u64, _: &[VolatileSlice<'_>]) -> io::Result<()> {
        Err(io::ErrorKind::PermissionDenied.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, _: u64, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A raw image file or a block device.
#[derive(Debug)]
pub struct RawDisk {
    file: File,
    size: u64,
    readonly: bool,
    block_device: bool,
}

/// `BLKDISCARD` (`_IO(0x12, 119)`, linux/fs.h).
const BLKDISCARD: libc::c_ulong = 0x1277;

impl RawDisk {
    /// Open `path` read-only or read-write. The size is the file's (or the
    /// device's), rounded down to whole sectors.
    pub fn open(path: &Path, readonly: bool) -> Result<Self, DiskError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(|source| DiskError::Open {
                path: path.to_owned(),
                source,
            })?;
        let size_err = |source| DiskError::Size {
            path: path.to_owned(),
            source,
        };
        let block_device = file
            .metadata()
            .map_err(size_err)?
            .file_type()
            .is_block_device();
        // Seeking to the end gives a block device's size too.
        let size = file.seek(SeekFrom::End(0)).map_err(size_err)?;
        Ok(Self {
            file,
            size: size - size % BLKIF_SECTOR_SIZE,
            readonly,
            block_device,
        })
    }
}

/// Run positioned vectored I/O (`preadv`/`pwritev`) over `bufs` at
/// `offset` until all of it is done.
fn rw_vectored(
    file: &File,
    mut offset: u64,
    bufs: &[VolatileSlice<'_>],
    write: bool,
) -> io::Result<()> {
    let mut idx = 0;
    let mut skip = 0usize;
    // One iovec per slice; IOV_MAX (1024) bounds a single call, more than
    // the largest request (256 indirect segments).
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(bufs.len().min(1024));
    while idx < bufs.len() {
        iov.clear();
        for (i, b) in bufs[idx..].iter().enumerate().take(1024) {
            let s = if i == 0 { skip } else { 0 };
            let ptr = if write {
                b.ptr_guard().as_ptr() as *mut u8
            } else {
                b.ptr_guard_mut().as_ptr()
            };
            iov.push(libc::iovec {
                // SAFETY: `s` is below the slice's length (`skip` only
                // counts bytes of the slice done so far); pointer
                // arithmetic inside the slice.
                iov_base: unsafe { ptr.add(s) }.cast(),
                iov_len: b.len() - s,
            });
        }
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: every iovec describes memory of a VolatileSlice, valid for
        // the slice's lifetime (which outlives this call) and for the
        // access asked (the caller gives writable slices for reads). The
        // memory is guest RAM the guest may touch concurrently; the kernel
        // copies bytes and makes no assumption about it.
        let n = unsafe {
            if write {
                libc::pwritev(
                    file.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    off,
                )
            } else {
                libc::preadv(
                    file.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    off,
                )
            }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut n = n as usize;
        offset += n as u64;
        while n > 0 && idx < bufs.len() {
            let left = bufs[idx].len() - skip;
            if n >= left {
                n -= left;
                idx += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
    }
    Ok(())
}

impl Disk for RawDisk {
    fn sectors(&self) -> u64 {
        self.size / BLKIF_SECTOR_SIZE
    }
    fn read_only(&self) -> bool {
        self.readonly
    }
    fn can_discard(&self) -> bool {
        !self.readonly
    }
    fn read_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        rw_vectored(&self.file, offset, bufs, false)
    }
    fn write_at(&mut self, offset: u64, bufs: &[VolatileSlice<'_>]) -> io::Result<()> {
        if self.readonly {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        rw_vectored(&self.file, offset, bufs, true)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.readonly {
            return Ok(());
        }
        self.file.sync_data()
    }
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.readonly {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        if len == 0 {
            return Ok(());
        }
        let bad = || io::Error::from(io::ErrorKind::InvalidInput);
        if self.block_device {
            let range = [offset, len];
            // SAFETY: BLKDISCARD reads two u64s (start, length) from the
            // pointer, which points at `range` for the call's duration.
            let r = unsafe { libc::ioctl(self.file.as_raw_fd(), BLKDISCARD, range.as_ptr()) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(());
        }
        let off = libc::off_t::try_from(offset).map_err(|_| bad())?;
        let l = libc::off_t::try_from(len).map_err(|_| bad())?;
        // SAFETY: fallocate takes integers only.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                l,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpfile(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rxen-blk-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(data).unwrap();
        p
    }

    #[test]
    fn raw_vectored_roundtrip() {
        let mut data = vec![0u8; 8192 + 100];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let p = tmpfile("raw", &data);
        let mut d = RawDisk::open(&p, false).unwrap();
        assert_eq!(d.sectors(), 16, "the partial tail sector is not offered");
        let mut a = vec![0u8; 512];
        let mut b = vec![0u8; 1024];
        {
            let s = [
                VolatileSlice::from(&mut a[..]),
                VolatileSlice::from(&mut b[..]),
            ];
            d.read_at(512, &s).unwrap();
        }
        assert_eq!(&a[..], &data[512..1024]);
        assert_eq!(&b[..], &data[1024..2048]);
        let mut w1 = vec![0x11u8; 512];
        let mut w2 = vec![0x22u8; 512];
        {
            let s = [
                VolatileSlice::from(&mut w1[..]),
                VolatileSlice::from(&mut w2[..]),
            ];
            d.write_at(4096, &s).unwrap();
        }
        d.flush().unwrap();
        let back = std::fs::read(&p).unwrap();
        assert!(back[4096..4608].iter().all(|&x| x == 0x11));
        assert!(back[4608..5120].iter().all(|&x| x == 0x22));
        assert_eq!(&back[..4096], &data[..4096]);
        d.discard(4096, 4096).unwrap();
        let back = std::fs::read(&p).unwrap();
        assert!(back[4096..8192].iter().all(|&x| x == 0), "punched");
        assert_eq!(back.len(), data.len(), "size kept");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn read_only_raw_refuses_writes() {
        let p = tmpfile("ro", &[7u8; 4096]);
        let mut d = RawDisk::open(&p, true).unwrap();
        let mut w = vec![0u8; 512];
        let s = [VolatileSlice::from(&mut w[..])];
        assert_eq!(
            d.write_at(0, &s).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert!(d.discard(0, 512).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 4096]);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn open_errors_and_info() {
        let e = open(&DiskConfig {
            path: Some("/nonexistent/rxen-disk".into()),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(matches!(e, DiskError::Open { .. }));
        assert!(matches!(
            open(&DiskConfig::default()).err(),
            Some(DiskError::NoTarget)
        ));
        let cd = DiskConfig {
            cdrom: true,
            readonly: true,
            ..Default::default()
        };
        assert_eq!(open(&cd).unwrap().sectors(), 0);
        assert_eq!(
            cd.vdisk_info(),
            VDISK_CDROM | VDISK_REMOVABLE | VDISK_READONLY
        );
    }
}
