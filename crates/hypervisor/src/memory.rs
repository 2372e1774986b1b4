//! Guest memory: one memfd holding every range of the [`MemoryLayout`],
//! mapped into this process as a vm-memory `GuestMemoryMmap`.
//!
//! The memfd is what makes rxen's zero-copy plumbing possible: xenstored and
//! the PV backends receive the fd and map the guest pages they need (the
//! XenStore ring, granted pages) instead of copying through this process.

use std::fs::File;
use std::os::fd::FromRawFd;

use vm_memory::{FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, MmapRegion};

use crate::layout::{GRANT_AREA_FRAMES, GuestRange, MemoryLayout, PAGE_SIZE};

/// KVM slot of grant frame `idx` placed outside RAM: `GRANT_SLOT_BASE + idx`
/// (slots below it hold the layout's ranges).
pub const GRANT_SLOT_BASE: u32 = 8;

/// Errors of [`GuestRam::new`].
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// `memfd_create` failed.
    #[error("creating the guest memory memfd failed")]
    CreateMemfd(#[source] std::io::Error),
    /// Sizing the memfd failed.
    #[error("sizing the guest memory memfd to {size:#x} bytes failed")]
    SizeMemfd {
        /// The size asked for.
        size: u64,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Duplicating the fd for a region failed.
    #[error("duplicating the guest memory fd failed")]
    CloneFd(#[source] std::io::Error),
    /// Mapping the ranges failed.
    #[error("mapping guest memory failed")]
    Map(#[source] vm_memory::mmap::FromRangesError),
    /// Mapping the grant area failed.
    #[error("mapping the grant area failed")]
    MapGrantArea(#[source] vm_memory::mmap::MmapRegionError),
    /// A grant frame index is beyond the grant area.
    #[error("grant frame {0} is beyond the grant area")]
    GrantFrame(u32),
    /// A mapped range has no host address.
    #[error("guest range at {0:#x} has no host mapping")]
    HostAddress(u64),
    /// `KVM_SET_USER_MEMORY_REGION` failed.
    #[error("registering guest range {slot} at {addr:#x} with KVM failed")]
    KvmSlot {
        /// Slot number.
        slot: u32,
        /// Guest address of the range.
        addr: u64,
        /// The failure.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// A guest's RAM: the memfd and its mapping.
#[derive(Debug)]
pub struct GuestRam {
    layout: MemoryLayout,
    memfd: File,
    mem: GuestMemoryMmap,
    grant_area: MmapRegion,
}

impl GuestRam {
    /// Create the memfd (named `name` for /proc/PID/maps) and map every
    /// range of `layout` from it. The pages read as zero until written.
    pub fn new(name: &str, layout: MemoryLayout) -> Result<Self, MemoryError> {
        let memfd = create_memfd(name)?;
        let size = layout.file_size();
        memfd
            .set_len(size)
            .map_err(|source| MemoryError::SizeMemfd { size, source })?;
        let mut ranges = Vec::new();
        for r in layout.ranges() {
            let f = memfd.try_clone().map_err(MemoryError::CloneFd)?;
            ranges.push((
                GuestAddress(r.addr),
                r.size as usize,
                Some(FileOffset::new(f, r.file_offset)),
            ));
        }
        let mem = GuestMemoryMmap::from_ranges_with_files(ranges).map_err(MemoryError::Map)?;
        let f = memfd.try_clone().map_err(MemoryError::CloneFd)?;
        let grant_area = MmapRegion::from_file(
            FileOffset::new(f, layout.grant_area_offset()),
            (GRANT_AREA_FRAMES * PAGE_SIZE) as usize,
        )
        .map_err(MemoryError::MapGrantArea)?;
        Ok(Self {
            layout,
            memfd,
            mem,
            grant_area,
        })
    }

    /// The layout this memory follows.
    pub fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    /// The guest memory, for loading and for hypercall argument access.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The memfd, to hand to xenstored and backends (they map
    /// [`GuestRange::file_offset`]-relative pages).
    pub fn memfd(&self) -> &File {
        &self.memfd
    }

    /// The ranges, for KVM memory slots and for peers mapping the memfd.
    pub fn ranges(&self) -> Vec<GuestRange> {
        self.layout.ranges()
    }

    /// The grant area's mapping in this process (frame `i` at byte `i * 4096`).
    pub fn grant_area(&self) -> &MmapRegion {
        &self.grant_area
    }

    /// Map grant-area page `idx` at guest frame `gfn` (KVM slot
    /// [`GRANT_SLOT_BASE`]` + idx`), for `Effect::MapGrantFrame`. Mapping an
    /// index again moves it.
    ///
    /// # Safety
    /// As for [`GuestRam::register_with_kvm`]: `self` must outlive `vm`.
    pub unsafe fn map_grant_frame(
        &self,
        vm: &kvm_ioctls::VmFd,
        idx: u32,
        gfn: u64,
    ) -> Result<(), MemoryError> {
        if u64::from(idx) >= GRANT_AREA_FRAMES {
            return Err(MemoryError::GrantFrame(idx));
        }
        let slot = GRANT_SLOT_BASE + idx;
        let addr = gfn * PAGE_SIZE;
        let host = self.grant_area.as_ptr() as u64 + u64::from(idx) * PAGE_SIZE;
        let region = kvm_bindings::kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: addr,
            memory_size: PAGE_SIZE,
            userspace_addr: host,
        };
        // SAFETY: `host` is page `idx` of the grant area mapping (checked
        // in range above), which lives as long as `self`; the caller
        // guarantees `self` outlives the VM. A slot must be deleted before
        // it moves, which KVM requires and this does.
        unsafe {
            let _ = vm.set_user_memory_region(kvm_bindings::kvm_userspace_memory_region {
                memory_size: 0,
                ..region
            });
            vm.set_user_memory_region(region)
        }
        .map_err(|source| MemoryError::KvmSlot { slot, addr, source })
    }

    /// Remove grant frame `idx`'s KVM slot (`Effect::UnmapGrantFrame`).
    pub fn unmap_grant_frame(&self, vm: &kvm_ioctls::VmFd, idx: u32) -> Result<(), MemoryError> {
        let slot = GRANT_SLOT_BASE + idx;
        let region = kvm_bindings::kvm_userspace_memory_region {
            slot,
            ..Default::default()
        };
        // SAFETY: deleting a slot (size 0) makes KVM drop its reference to
        // host memory; it creates none.
        unsafe { vm.set_user_memory_region(region) }.map_err(|source| MemoryError::KvmSlot {
            slot,
            addr: 0,
            source,
        })
    }

    /// Give every range to `vm` as a memory slot (slots 0, 1, ...).
    ///
    /// # Safety
    /// KVM keeps using the host mappings after this returns: the caller
    /// must keep `self` alive (not dropped, not unmapped) for as long as
    /// `vm` exists.
    pub unsafe fn register_with_kvm(&self, vm: &kvm_ioctls::VmFd) -> Result<(), MemoryError> {
        for (slot, r) in self.ranges().iter().enumerate() {
            let host = self
                .mem
                .get_host_address(GuestAddress(r.addr))
                .map_err(|_| MemoryError::HostAddress(r.addr))?;
            let region = kvm_bindings::kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: r.addr,
                memory_size: r.size,
                userspace_addr: host as u64,
            };
            // SAFETY: `host` is the start of this range's mapping of
            // `r.size` bytes (one vm-memory region per range); the caller
            // guarantees the mapping outlives the VM.
            unsafe { vm.set_user_memory_region(region) }.map_err(|source| {
                MemoryError::KvmSlot {
                    slot: slot as u32,
                    addr: r.addr,
                    source,
                }
            })?;
        }
        Ok(())
    }
}

fn create_memfd(name: &str) -> Result<File, MemoryError> {
    let cname = std::ffi::CString::new(name.replace('\0', "_")).expect("NULs were replaced");
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the
    // call; memfd_create has no other memory-safety preconditions.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(MemoryError::CreateMemfd(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by memfd_create, is valid and owned by
    // nothing else; the File takes sole ownership.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use vm_memory::{Bytes, GuestMemoryBackend};

    #[test]
    fn memfd_backs_every_range() {
        let layout = MemoryLayout::new(64 << 20).unwrap();
        let ram = GuestRam::new("rxen-test", layout).unwrap();
        assert_eq!(ram.memfd().metadata().unwrap().len(), layout.file_size());
        assert_eq!(ram.memory().num_regions(), 2);

        // A write through the mapping is visible through the fd at the
        // range's file offset: what another process mapping the fd sees.
        let special = ram.ranges()[1];
        ram.memory()
            .write_slice(b"ring", GuestAddress(special.addr + 8))
            .unwrap();
        let mut buf = [0u8; 4];
        // SAFETY: test-only pread into a local buffer of the stated length.
        let n = unsafe {
            libc::pread(
                ram.memfd().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                (special.file_offset + 8) as libc::off_t,
            )
        };
        assert_eq!(n, 4);
        assert_eq!(&buf, b"ring");

        // Addresses in the MMIO hole outside the special pages are unmapped.
        assert!(
            ram.memory()
                .write_slice(b"x", GuestAddress(0xd000_0000))
                .is_err()
        );
        assert!(
            ram.memory()
                .write_slice(b"x", GuestAddress((64 << 20) - 1))
                .is_ok()
        );
        assert!(
            ram.memory()
                .write_slice(b"xy", GuestAddress((64 << 20) - 1))
                .is_err()
        );
    }
}
