//! The guest-physical address layout of an rxen PVH domain.
//!
//! ```text
//! 0x0000_0000 .. 0x0009_f000   RAM (low 636 KiB; Linux keeps its AP trampoline here)
//! 0x0009_f000 .. 0x0010_0000   reserved, backed by guest memory:
//!     0x000e_0000               ACPI tables (RSDP first, then XSDT, FADT, MADT, DSDT)
//!     0x000f_0000               hvm_start_info, module list, memory map
//!     0x000f_1000               kernel command line (NUL-terminated, < 4 KiB)
//! 0x0010_0000 .. low RAM end    RAM: the kernel at its ELF physical addresses
//!                               (16 MiB for Debian), the initrd after it
//! low RAM end .. 0xc000_0000    unused (low RAM end = min(memory, 3 GiB))
//! 0xc000_0000 .. 0x1_0000_0000  MMIO hole: local APIC at 0xfee0_0000 and
//!     0xfeff_8000 .. 0xff00_0000 special pages, reserved in the memory map,
//!                               backed by the guest's memfd: Xen HVM's own
//!                               choice (8 special PFNs ending at 0xff000),
//!                               with the XenStore ring at PFN 0xfeffc and
//!                               the console ring at PFN 0xfefff
//! 0x1_0000_0000 ..              RAM above 4 GiB (memory beyond 3 GiB)
//! ```
//!
//! The shared-info page, the hypercall page and vcpu_info areas are not
//! here: the guest picks frames of its own RAM for them
//! (`XENMEM_add_to_physmap`, the hypercall MSR, `VCPUOP_register_vcpu_info`)
//! and the hypervisor records where they are. Grant-table frames are placed
//! by the guest too: in its RAM, or (Linux PVH with
//! `CONFIG_XEN_UNPOPULATED_ALLOC`) at free guest-physical addresses outside
//! RAM, where the domain process maps pages of the grant area on demand.
//!
//! Every range lives in one memfd, in this order: low RAM (with the
//! reserved low hole), the special pages, RAM above 4 GiB, then the grant
//! area ([`GRANT_AREA_FRAMES`] pages, not mapped until the guest places a
//! frame). Other processes (xenstored, backends) map guest pages from that fd.

use xen_abi::memory::{E820_RAM, E820_RESERVED, E820Entry};

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;

/// End of the low RAM below the legacy hole.
pub const LOW_RAM_END: u64 = 0x9_f000;
/// Start of RAM above the legacy hole.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// Where the ACPI tables start (the RSDP comes first).
pub const ACPI_START: u64 = 0xe_0000;
/// Room for ACPI tables.
pub const ACPI_SIZE: u64 = 0x1_0000;
/// `hvm_start_info`, followed by the module list and the memory map.
pub const START_INFO_ADDR: u64 = 0xf_0000;
/// Room for start info + module list + memory map.
pub const START_INFO_SIZE: u64 = 0x1000;
/// The kernel command line.
pub const CMDLINE_ADDR: u64 = 0xf_1000;
/// Room for the command line, its NUL included.
pub const CMDLINE_MAX: usize = 0x1000;

/// Start of the MMIO hole below 4 GiB; low RAM never reaches it.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// The local APIC's default base.
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// First special PFN (Xen HVM: `0xff000 - 8`).
pub const SPECIAL_PFN_START: u64 = 0xfeff8;
/// Number of special pages.
pub const SPECIAL_PAGES: u64 = 8;
/// The XenStore ring page (`HVM_PARAM_STORE_PFN`).
pub const SPECIAL_PFN_XENSTORE: u64 = SPECIAL_PFN_START + 4;
/// The PV console ring page (`HVM_PARAM_CONSOLE_PFN`).
pub const SPECIAL_PFN_CONSOLE: u64 = SPECIAL_PFN_START + 7;
/// Start of RAM above 4 GiB.
pub const RAM_ABOVE_4G_START: u64 = 1 << 32;

/// Pages reserved in the memfd for grant frames placed outside RAM
/// (Xen's default `max_grant_frames`).
pub const GRANT_AREA_FRAMES: u64 = 64;
/// Guest-physical addresses at or above this are never used (40 bits, the
/// least any x86-64 host KVM offers).
pub const MAX_GUEST_PHYS: u64 = 1 << 40;
/// The I/O APIC's default page, kept free although no I/O APIC exists.
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
/// KVM's private pages on Intel hosts (`KVM_SET_TSS_ADDR`): the TSS takes
/// three pages here, and KVM's default identity-map page is the one below.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
/// See [`KVM_TSS_ADDR`]: from the identity-map page to the TSS's end.
const KVM_PRIVATE: (u64, u64) = (KVM_TSS_ADDR - PAGE_SIZE, 4 * PAGE_SIZE);

/// The smallest guest rxen boots: room for a kernel at 16 MiB and more.
pub const MIN_MEMORY: u64 = 32 << 20;
/// The largest guest (1 TiB); keeps all arithmetic far from overflow.
pub const MAX_MEMORY: u64 = 1 << 40;

/// Errors of [`MemoryLayout::new`].
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The requested size is not page-aligned or out of range.
    #[error(
        "guest memory of {0:#x} bytes is not a page-aligned size in [{MIN_MEMORY:#x}, {MAX_MEMORY:#x}]"
    )]
    InvalidSize(u64),
}

/// What a [`GuestRange`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    /// Low memory: RAM, with the reserved legacy hole inside.
    LowMemory,
    /// The special pages.
    Special,
    /// RAM above 4 GiB.
    HighRam,
}

/// One contiguous, memfd-backed range of guest-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRange {
    /// Guest-physical start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Offset of its first byte in the guest's memfd.
    pub file_offset: u64,
    /// Its role.
    pub kind: RangeKind,
}

/// The layout of one guest with a given amount of RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLayout {
    memory: u64,
    low_end: u64,
    high_size: u64,
}

impl MemoryLayout {
    /// The layout for `memory` bytes of guest RAM (as in `memory=` of the
    /// config, in bytes).
    pub fn new(memory: u64) -> Result<Self, LayoutError> {
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) || memory % PAGE_SIZE != 0 {
            return Err(LayoutError::InvalidSize(memory));
        }
        let low_end = memory.min(MMIO_HOLE_START);
        Ok(Self {
            memory,
            low_end,
            high_size: memory - low_end,
        })
    }

    /// Guest RAM as configured.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// End (exclusive) of low memory.
    pub fn low_ram_end(&self) -> u64 {
        self.low_end
    }

    /// Bytes of RAM above 4 GiB.
    pub fn high_ram_size(&self) -> u64 {
        self.high_size
    }

    /// The memfd-backed ranges, in guest-address and file order.
    pub fn ranges(&self) -> Vec<GuestRange> {
        let mut v = vec![
            GuestRange {
                addr: 0,
                size: self.low_end,
                file_offset: 0,
                kind: RangeKind::LowMemory,
            },
            GuestRange {
                addr: SPECIAL_PFN_START * PAGE_SIZE,
                size: SPECIAL_PAGES * PAGE_SIZE,
                file_offset: self.low_end,
                kind: RangeKind::Special,
            },
        ];
        if self.high_size > 0 {
            v.push(GuestRange {
                addr: RAM_ABOVE_4G_START,
                size: self.high_size,
                file_offset: self.low_end + SPECIAL_PAGES * PAGE_SIZE,
                kind: RangeKind::HighRam,
            });
        }
        v
    }

    /// Size of the memfd holding every range and the grant area.
    pub fn file_size(&self) -> u64 {
        self.grant_area_offset() + GRANT_AREA_FRAMES * PAGE_SIZE
    }

    /// Offset in the memfd of the grant area (frame `i` at `+ i * 4096`).
    pub fn grant_area_offset(&self) -> u64 {
        self.low_end + SPECIAL_PAGES * PAGE_SIZE + self.high_size
    }

    /// Offset in the memfd of guest-physical `gpa`, if a range maps it.
    pub fn file_offset_of(&self, gpa: u64) -> Option<u64> {
        self.ranges()
            .iter()
            .find(|r| gpa >= r.addr && gpa - r.addr < r.size)
            .map(|r| r.file_offset + (gpa - r.addr))
    }

    /// Whether the page at `gpa` is RAM the guest owns (in the memory map
    /// as RAM), as opposed to reserved, special or unmapped.
    pub fn is_ram_page(&self, gpa: u64) -> bool {
        self.memory_map().iter().any(|e| {
            e.kind == E820_RAM
                && gpa >= e.addr
                && gpa
                    .checked_add(PAGE_SIZE)
                    .is_some_and(|end| end <= e.addr + e.size)
        })
    }

    /// Whether the page at `gpa` is free guest-physical space: no range,
    /// no local or I/O APIC, none of KVM's private pages, below
    /// [`MAX_GUEST_PHYS`]. Grant frames placed
    /// outside RAM must land on such pages.
    pub fn is_free_page(&self, gpa: u64) -> bool {
        if gpa % PAGE_SIZE != 0 || gpa >= MAX_GUEST_PHYS {
            return false;
        }
        let end = gpa + PAGE_SIZE;
        let overlaps = |a: u64, len: u64| gpa < a + len && a < end;
        !self.ranges().iter().any(|r| overlaps(r.addr, r.size))
            && !overlaps(LAPIC_ADDR, PAGE_SIZE)
            && !overlaps(IOAPIC_ADDR, PAGE_SIZE)
            && !overlaps(KVM_PRIVATE.0, KVM_PRIVATE.1)
    }

    /// The guest's memory map (e820 types), sorted, for `hvm_start_info`
    /// and `XENMEM_memory_map`.
    pub fn memory_map(&self) -> Vec<E820Entry> {
        let mut v = vec![
            E820Entry {
                addr: 0,
                size: LOW_RAM_END,
                kind: E820_RAM,
            },
            E820Entry {
                addr: LOW_RAM_END,
                size: HIGH_RAM_START - LOW_RAM_END,
                kind: E820_RESERVED,
            },
            E820Entry {
                addr: HIGH_RAM_START,
                size: self.low_end - HIGH_RAM_START,
                kind: E820_RAM,
            },
            E820Entry {
                addr: SPECIAL_PFN_START * PAGE_SIZE,
                size: SPECIAL_PAGES * PAGE_SIZE,
                kind: E820_RESERVED,
            },
        ];
        if self.high_size > 0 {
            v.push(E820Entry {
                addr: RAM_ABOVE_4G_START,
                size: self.high_size,
                kind: E820_RAM,
            });
        }
        v
    }

    /// Bytes of RAM the guest's memory map offers.
    pub fn usable_ram(&self) -> u64 {
        self.memory_map()
            .iter()
            .filter(|e| e.kind == E820_RAM)
            .map(|e| e.size)
            .sum()
    }

    /// Whether `[addr, addr+len)` lies inside RAM below 4 GiB above the
    /// legacy hole, where the kernel and modules go.
    pub fn in_loadable_ram(&self, addr: u64, len: u64) -> bool {
        addr >= HIGH_RAM_START && addr.checked_add(len).is_some_and(|end| end <= self.low_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest() {
        let l = MemoryLayout::new(256 << 20).unwrap();
        assert_eq!(l.low_ram_end(), 256 << 20);
        assert_eq!(l.high_ram_size(), 0);
        let r = l.ranges();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].addr, 0xfeff_8000);
        assert_eq!(r[1].file_offset, 256 << 20);
        assert_eq!(
            l.file_size(),
            (256 << 20) + 8 * 4096 + GRANT_AREA_FRAMES * 4096
        );
        assert_eq!(l.grant_area_offset(), (256 << 20) + 8 * 4096);
        // RAM offered = memory minus the legacy hole.
        assert_eq!(l.usable_ram(), (256 << 20) - (HIGH_RAM_START - LOW_RAM_END));
        assert_eq!(SPECIAL_PFN_XENSTORE, 0xfeffc);
        assert_eq!(SPECIAL_PFN_CONSOLE, 0xfefff);
    }

    #[test]
    fn big_guest_splits_around_hole() {
        let l = MemoryLayout::new(4 << 30).unwrap();
        assert_eq!(l.low_ram_end(), 3 << 30);
        assert_eq!(l.high_ram_size(), 1 << 30);
        let r = l.ranges();
        assert_eq!(
            r[2],
            GuestRange {
                addr: 1 << 32,
                size: 1 << 30,
                file_offset: (3 << 30) + 8 * 4096,
                kind: RangeKind::HighRam
            }
        );
        let map = l.memory_map();
        assert!(
            map.windows(2).all(|w| w[0].addr + w[0].size <= w[1].addr),
            "sorted, disjoint"
        );
        assert_eq!(map.last().unwrap().addr, 1 << 32);
    }

    #[test]
    fn special_pages_do_not_overlap_lapic_or_ram() {
        let start = SPECIAL_PFN_START * PAGE_SIZE;
        assert!(start > LAPIC_ADDR + 0x1000);
        assert!(start + SPECIAL_PAGES * PAGE_SIZE <= 1 << 32);
        assert!(start >= MMIO_HOLE_START);
    }

    #[test]
    fn page_classification() {
        let l = MemoryLayout::new(4 << 30).unwrap();
        assert!(l.is_ram_page(0x1000));
        assert!(!l.is_ram_page(0xe_0000), "legacy hole");
        assert!(l.is_ram_page((3 << 30) - PAGE_SIZE));
        assert!(!l.is_ram_page(3 << 30));
        assert!(l.is_ram_page(1 << 32));
        assert!(!l.is_ram_page(u64::MAX - 10));
        assert!(l.is_free_page(3 << 30), "MMIO hole");
        assert!(!l.is_free_page(LAPIC_ADDR));
        assert!(!l.is_free_page(IOAPIC_ADDR));
        assert!(!l.is_free_page(SPECIAL_PFN_CONSOLE * PAGE_SIZE));
        assert!(!l.is_free_page(0x1000), "RAM");
        assert!(!l.is_free_page((3 << 30) + 1), "unaligned");
        assert!(l.is_free_page((5 << 30) + 0x1000), "above RAM");
        assert!(!l.is_free_page(MAX_GUEST_PHYS));
        for p in 0..4 {
            assert!(
                !l.is_free_page(KVM_TSS_ADDR - PAGE_SIZE + p * PAGE_SIZE),
                "KVM's TSS and identity map"
            );
        }
        assert!(l.is_free_page(KVM_TSS_ADDR + 3 * PAGE_SIZE));
        assert!(!l.is_free_page(!0xfff));
        assert_eq!(l.file_offset_of(0x1234), Some(0x1234));
        assert_eq!(
            l.file_offset_of(SPECIAL_PFN_START * PAGE_SIZE + 5),
            Some((3 << 30) + 5)
        );
        assert_eq!(
            l.file_offset_of((1 << 32) + 7),
            Some((3 << 30) + 8 * 4096 + 7)
        );
        assert_eq!(l.file_offset_of(3 << 30), None);
    }

    #[test]
    fn invalid_sizes() {
        assert!(MemoryLayout::new(0).is_err());
        assert!(MemoryLayout::new((64 << 20) + 1).is_err());
        assert!(MemoryLayout::new(MIN_MEMORY - PAGE_SIZE).is_err());
        assert!(MemoryLayout::new(MAX_MEMORY + PAGE_SIZE).is_err());
        assert!(MemoryLayout::new(MIN_MEMORY).is_ok());
    }

    #[test]
    fn loadable_ram() {
        let l = MemoryLayout::new(64 << 20).unwrap();
        assert!(l.in_loadable_ram(16 << 20, 1 << 20));
        assert!(!l.in_loadable_ram(0xe0000, 16));
        assert!(!l.in_loadable_ram(60 << 20, 8 << 20));
        assert!(!l.in_loadable_ram(u64::MAX - 1, 16));
    }
}
