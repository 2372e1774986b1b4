//! How hypercall handlers reach guest memory.
//!
//! Pointer arguments of an HVM/PVH guest's hypercalls are guest *virtual*
//! addresses in the calling vCPU's address space (Xen copies them with
//! `copy_from_guest`, which walks the vCPU's page tables). [`GuestAccess`]
//! therefore offers virtual reads and writes built from two primitives —
//! translating one virtual page and accessing physical memory — plus the
//! few physical atomics event-channel delivery needs on the shared-info
//! page and vcpu_info. Reads copy guest bytes once into a buffer that the
//! handler then decodes; nothing is reinterpreted in place.
//!
//! [`VcpuGuest`] is the real implementation (KVM_TRANSLATE on the calling
//! vCPU, vm-memory for RAM); `mock::MockGuest` stands in for it in tests.

use std::sync::atomic::{AtomicU64, Ordering};

use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::layout::PAGE_SIZE;

/// A guest address that cannot be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestFault {
    /// The virtual address has no mapping in the vCPU's page tables.
    #[error("guest virtual address {0:#x} is not mapped")]
    NotMapped(u64),
    /// The physical address is not guest memory.
    #[error("guest physical address {0:#x} is not guest memory")]
    NotMemory(u64),
    /// The virtual page is mapped read-only.
    #[error("guest virtual address {0:#x} is read-only")]
    ReadOnly(u64),
    /// An atomic access is not naturally aligned.
    #[error("guest physical address {0:#x} is misaligned")]
    Misaligned(u64),
}

/// Guest memory as one vCPU's hypercall sees it.
pub trait GuestAccess {
    /// The guest-physical address of virtual address `gva` (any byte of a page).
    fn translate(&mut self, gva: u64) -> Result<u64, GuestFault>;
    /// Like [`GuestAccess::translate`], for a write: fails on read-only pages.
    fn translate_for_write(&mut self, gva: u64) -> Result<u64, GuestFault> {
        self.translate(gva)
    }
    /// Read `buf.len()` bytes of guest-physical memory at `gpa`.
    fn phys_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestFault>;
    /// Write `data` to guest-physical memory at `gpa`.
    fn phys_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestFault>;
    /// Atomically OR `bits` into the 8-byte-aligned word at `gpa`; returns the old value.
    fn phys_fetch_or_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault>;
    /// Atomically AND `bits` into the 8-byte-aligned word at `gpa`; returns the old value.
    fn phys_fetch_and_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault>;
    /// Whether `[gpa, gpa+len)` is entirely guest memory.
    fn is_memory(&self, gpa: u64, len: u64) -> bool;

    /// Read guest virtual memory, page by page.
    fn read_virt(&mut self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let mut done = 0usize;
        while done < buf.len() {
            let va = gva
                .checked_add(done as u64)
                .ok_or(GuestFault::NotMapped(gva))?;
            let chunk = ((PAGE_SIZE - va % PAGE_SIZE) as usize).min(buf.len() - done);
            let pa = self.translate(va)?;
            self.phys_read(pa, &mut buf[done..done + chunk])?;
            done += chunk;
        }
        Ok(())
    }

    /// Write guest virtual memory, page by page. On a fault, earlier pages
    /// may already be written (as with Xen's `copy_to_guest`).
    fn write_virt(&mut self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
        let mut done = 0usize;
        while done < data.len() {
            let va = gva
                .checked_add(done as u64)
                .ok_or(GuestFault::NotMapped(gva))?;
            let chunk = ((PAGE_SIZE - va % PAGE_SIZE) as usize).min(data.len() - done);
            let pa = self.translate_for_write(va)?;
            self.phys_write(pa, &data[done..done + chunk])?;
            done += chunk;
        }
        Ok(())
    }
}

/// The real [`GuestAccess`]: translation by `KVM_TRANSLATE` on the calling
/// vCPU (which is stopped in its hypercall exit), memory through vm-memory.
#[derive(Debug)]
pub struct VcpuGuest<'a> {
    vcpu: &'a VcpuFd,
    mem: &'a GuestMemoryMmap,
}

impl<'a> VcpuGuest<'a> {
    /// Access guest memory as `vcpu` sees it.
    pub fn new(vcpu: &'a VcpuFd, mem: &'a GuestMemoryMmap) -> Self {
        Self { vcpu, mem }
    }

    fn atomic(&self, gpa: u64) -> Result<&AtomicU64, GuestFault> {
        if gpa % 8 != 0 {
            return Err(GuestFault::Misaligned(gpa));
        }
        let slice = self
            .mem
            .get_slice(GuestAddress(gpa), 8)
            .map_err(|_| GuestFault::NotMemory(gpa))?;
        let ptr = slice.ptr_guard_mut().as_ptr();
        // SAFETY: `ptr` points at 8 bytes of guest memory inside a mapping
        // that lives as long as `self.mem` (borrowed for 'a, longer than the
        // returned reference); it is 8-byte aligned (guest memory regions
        // are page-aligned and `gpa % 8 == 0`); AtomicU64 has the layout of
        // u64 and any bit pattern is valid; the guest may access the word
        // concurrently, which is exactly why only atomic operations are used.
        Ok(unsafe { &*ptr.cast::<AtomicU64>() })
    }
}

impl GuestAccess for VcpuGuest<'_> {
    fn translate(&mut self, gva: u64) -> Result<u64, GuestFault> {
        let t = self
            .vcpu
            .translate_gva(gva)
            .map_err(|_| GuestFault::NotMapped(gva))?;
        if t.valid == 0 {
            return Err(GuestFault::NotMapped(gva));
        }
        Ok(t.physical_address)
    }

    fn translate_for_write(&mut self, gva: u64) -> Result<u64, GuestFault> {
        let t = self
            .vcpu
            .translate_gva(gva)
            .map_err(|_| GuestFault::NotMapped(gva))?;
        if t.valid == 0 {
            return Err(GuestFault::NotMapped(gva));
        }
        if t.writeable == 0 {
            return Err(GuestFault::ReadOnly(gva));
        }
        Ok(t.physical_address)
    }

    fn phys_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| GuestFault::NotMemory(gpa))
    }

    fn phys_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestFault> {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| GuestFault::NotMemory(gpa))
    }

    fn phys_fetch_or_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault> {
        Ok(self.atomic(gpa)?.fetch_or(bits, Ordering::SeqCst))
    }

    fn phys_fetch_and_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault> {
        Ok(self.atomic(gpa)?.fetch_and(bits, Ordering::SeqCst))
    }

    fn is_memory(&self, gpa: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|len| self.mem.check_range(GuestAddress(gpa), len))
    }
}

/// A scriptable guest for tests: physical memory ranges and a virtual
/// page map, with every access recorded as it would be by the real thing.
#[cfg(any(test, feature = "test-utils"))]
pub mod mock {
    use std::collections::{HashMap, HashSet};

    use super::{GuestAccess, GuestFault, PAGE_SIZE};

    /// Physical memory `[base, base+len)` per range, and `gva page → gpa page`.
    #[derive(Debug, Default)]
    pub struct MockGuest {
        ranges: Vec<(u64, Vec<u8>)>,
        pages: HashMap<u64, u64>,
        read_only: HashSet<u64>,
    }

    impl MockGuest {
        /// A guest with `bytes` of RAM at physical 0, identity-mapped
        /// virtually at `virt_base` (like Linux's direct map).
        pub fn new(bytes: u64, virt_base: u64) -> Self {
            let mut g = Self {
                ranges: vec![(0, vec![0; bytes as usize])],
                ..Self::default()
            };
            for p in 0..bytes / PAGE_SIZE {
                g.pages.insert(virt_base / PAGE_SIZE + p, p);
            }
            g
        }

        /// Add a physical range (e.g. the special pages).
        pub fn add_range(&mut self, base: u64, len: u64) {
            self.ranges.push((base, vec![0; len as usize]));
        }

        /// Map virtual page of `gva` to physical page of `gpa`.
        pub fn map(&mut self, gva: u64, gpa: u64) {
            self.pages.insert(gva / PAGE_SIZE, gpa / PAGE_SIZE);
        }

        /// Make the virtual page of `gva` read-only.
        pub fn protect(&mut self, gva: u64) {
            self.read_only.insert(gva / PAGE_SIZE);
        }

        /// Remove the virtual mapping of `gva`'s page.
        pub fn unmap(&mut self, gva: u64) {
            self.pages.remove(&(gva / PAGE_SIZE));
        }

        fn find(&mut self, gpa: u64, len: usize) -> Result<&mut [u8], GuestFault> {
            for (base, data) in &mut self.ranges {
                if gpa >= *base {
                    let off = (gpa - *base) as usize;
                    if off.checked_add(len).is_some_and(|end| end <= data.len()) {
                        return Ok(&mut data[off..off + len]);
                    }
                }
            }
            Err(GuestFault::NotMemory(gpa))
        }

        /// Read physical memory (test convenience; panics on bad addresses).
        pub fn peek(&mut self, gpa: u64, len: usize) -> Vec<u8> {
            self.find(gpa, len)
                .expect("peek inside guest memory")
                .to_vec()
        }

        /// Write physical memory (test convenience; panics on bad addresses).
        pub fn poke(&mut self, gpa: u64, data: &[u8]) {
            self.find(gpa, data.len())
                .expect("poke inside guest memory")
                .copy_from_slice(data);
        }
    }

    impl GuestAccess for MockGuest {
        fn translate(&mut self, gva: u64) -> Result<u64, GuestFault> {
            let page = self
                .pages
                .get(&(gva / PAGE_SIZE))
                .ok_or(GuestFault::NotMapped(gva))?;
            Ok(page * PAGE_SIZE + gva % PAGE_SIZE)
        }

        fn translate_for_write(&mut self, gva: u64) -> Result<u64, GuestFault> {
            if self.read_only.contains(&(gva / PAGE_SIZE)) {
                return Err(GuestFault::ReadOnly(gva));
            }
            self.translate(gva)
        }

        fn phys_read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            buf.copy_from_slice(self.find(gpa, buf.len())?);
            Ok(())
        }

        fn phys_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), GuestFault> {
            self.find(gpa, data.len())?.copy_from_slice(data);
            Ok(())
        }

        fn phys_fetch_or_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault> {
            if gpa % 8 != 0 {
                return Err(GuestFault::Misaligned(gpa));
            }
            let w = self.find(gpa, 8)?;
            let old = u64::from_le_bytes(w[..8].try_into().expect("8 bytes"));
            w.copy_from_slice(&(old | bits).to_le_bytes());
            Ok(old)
        }

        fn phys_fetch_and_u64(&mut self, gpa: u64, bits: u64) -> Result<u64, GuestFault> {
            if gpa % 8 != 0 {
                return Err(GuestFault::Misaligned(gpa));
            }
            let w = self.find(gpa, 8)?;
            let old = u64::from_le_bytes(w[..8].try_into().expect("8 bytes"));
            w.copy_from_slice(&(old & bits).to_le_bytes());
            Ok(old)
        }

        fn is_memory(&self, gpa: u64, len: u64) -> bool {
            self.ranges.iter().any(|(base, data)| {
                gpa >= *base
                    && (gpa - base)
                        .checked_add(len)
                        .is_some_and(|e| e <= data.len() as u64)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::MockGuest;
    use super::*;

    #[test]
    fn virtual_access_crosses_pages_through_the_page_map() {
        let mut g = MockGuest::new(4 * PAGE_SIZE, 0xffff_8880_0000_0000);
        // Virtually contiguous, physically swapped pages.
        g.map(0x10_0000, 3 * PAGE_SIZE);
        g.map(0x10_1000, PAGE_SIZE);
        let data: Vec<u8> = (0..100u8).collect();
        g.write_virt(0x10_0fd0, &data).unwrap();
        assert_eq!(g.peek(3 * PAGE_SIZE + 0xfd0, 48), data[..48]);
        assert_eq!(g.peek(PAGE_SIZE, 52), data[48..]);
        let mut back = vec![0u8; 100];
        g.read_virt(0x10_0fd0, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn faults() {
        let mut g = MockGuest::new(2 * PAGE_SIZE, 0x1000_0000);
        let mut b = [0u8; 16];
        assert_eq!(
            g.read_virt(0x2000_0000, &mut b),
            Err(GuestFault::NotMapped(0x2000_0000))
        );
        // Second page of the read is unmapped.
        assert_eq!(
            g.read_virt(0x1000_1ff8, &mut b),
            Err(GuestFault::NotMapped(0x1000_2000))
        );
        // Wrapping around the address space.
        assert!(g.read_virt(u64::MAX - 3, &mut b).is_err());
        // Mapped to memory that does not exist.
        g.map(0x3000_0000, 0x100_0000);
        assert_eq!(
            g.read_virt(0x3000_0000, &mut b),
            Err(GuestFault::NotMemory(0x100_0000))
        );
        assert_eq!(g.phys_fetch_or_u64(4, 1), Err(GuestFault::Misaligned(4)));
        assert!(!g.is_memory(2 * PAGE_SIZE - 4, 8));
        assert!(g.is_memory(0, 2 * PAGE_SIZE));
        assert!(!g.is_memory(u64::MAX, 2));
    }

    #[test]
    fn real_guest_memory_atomics() {
        use crate::layout::MemoryLayout;
        use crate::memory::GuestRam;
        let ram = GuestRam::new("rxen-guest-test", MemoryLayout::new(32 << 20).unwrap()).unwrap();
        let kvm = match kvm_ioctls::Kvm::new() {
            Ok(k) => k,
            Err(_) => return, // No /dev/kvm: the VcpuGuest needs a vCPU fd.
        };
        let vm = kvm.create_vm().unwrap();
        let vcpu = vm.create_vcpu(0).unwrap();
        let mut g = VcpuGuest::new(&vcpu, ram.memory());
        assert_eq!(g.phys_fetch_or_u64(0x2000, 0b101).unwrap(), 0);
        assert_eq!(g.phys_fetch_and_u64(0x2000, 0b100).unwrap(), 0b101);
        let mut b = [0u8; 8];
        g.phys_read(0x2000, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0b100);
        assert_eq!(
            g.phys_fetch_or_u64(0x2004, 1),
            Err(GuestFault::Misaligned(0x2004))
        );
        assert_eq!(
            g.phys_fetch_or_u64(0xd000_0000, 1),
            Err(GuestFault::NotMemory(0xd000_0000))
        );
        assert!(g.is_memory(0xfeff_8000, 0x8000));
        assert!(!g.is_memory(0xfeff_8000, 0x8001));
    }
}
