//! The PVH domain builder: put a kernel, its initrd, command line, start
//! info, memory map and ACPI tables into guest memory the way Xen's PVH boot
//! ABI (`docs/misc/pvh.pandoc`, `arch-x86/hvm/start_info.h`) expects, and
//! say where the boot vCPU starts.
//!
//! The ELF segments are loaded by linux-loader (which also finds the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note); [`kernel`] gets the ELF out of a
//! bzImage first. Addresses follow [`crate::layout`].

pub mod acpi;
pub mod kernel;
pub mod vcpu;

use std::io::Cursor;

use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xen_abi::hvm::start_info::{
    XEN_HVM_START_MAGIC_VALUE, hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use xen_abi::layout::Abi;

use crate::layout::{
    ACPI_SIZE, ACPI_START, CMDLINE_ADDR, CMDLINE_MAX, HIGH_RAM_START, MemoryLayout, PAGE_SIZE,
    START_INFO_ADDR, START_INFO_SIZE,
};
pub use kernel::{Compression, KernelFormat};

/// Largest decompressed kernel accepted (a Debian vmlinux is ~60 MiB).
pub const MAX_VMLINUX: usize = 512 << 20;

/// Errors of [`load_pvh`].
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The kernel file could not be turned into an ELF image.
    #[error("reading the kernel image failed")]
    Kernel(#[source] kernel::KernelError),
    /// The ELF image is malformed or not an x86-64 executable.
    #[error("the kernel ELF image is invalid: {0}")]
    Elf(&'static str),
    /// A loadable segment does not fit the guest's RAM.
    #[error(
        "kernel segment at {paddr:#x} (+{memsz:#x}) lies outside loadable RAM [{HIGH_RAM_START:#x}, {ram_end:#x})"
    )]
    SegmentOutsideRam {
        /// Segment physical address.
        paddr: u64,
        /// Segment size in memory.
        memsz: u64,
        /// End of loadable RAM.
        ram_end: u64,
    },
    /// linux-loader failed to load the segments.
    #[error("loading the kernel ELF segments failed")]
    Load(#[source] linux_loader::loader::Error),
    /// The kernel has no PVH entry point.
    #[error("the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: it cannot boot as PVH")]
    NoPvhEntry,
    /// The initrd does not fit after the kernel.
    #[error(
        "the {size}-byte initrd does not fit in RAM after the kernel (ends {kernel_end:#x}, RAM ends {ram_end:#x})"
    )]
    InitrdTooLarge {
        /// Initrd size.
        size: usize,
        /// End of the kernel.
        kernel_end: u64,
        /// End of loadable RAM.
        ram_end: u64,
    },
    /// The command line is too long or contains a NUL.
    #[error("the kernel command line must be under {CMDLINE_MAX} bytes without NUL")]
    Cmdline,
    /// Building the ACPI tables failed.
    #[error("building the ACPI tables failed")]
    Acpi(#[source] acpi::AcpiError),
    /// Writing to guest memory failed.
    #[error("writing the {what} to guest memory failed")]
    Write {
        /// What was being written.
        what: &'static str,
        /// The failure.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
}

/// What to boot.
#[derive(Clone, Copy, Debug)]
pub struct PvhBootConfig<'a> {
    /// The kernel file: an ELF vmlinux or a bzImage.
    pub kernel: &'a [u8],
    /// The initial ramdisk, passed as the first module.
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Number of vCPUs (one MADT local APIC each).
    pub vcpus: u32,
}

/// A loaded ELF segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub paddr: u64,
    /// Bytes read from the file.
    pub filesz: u64,
    /// Bytes in memory (the rest is zero).
    pub memsz: u64,
}

/// What [`load_pvh`] did, and where the boot vCPU starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvhBoot {
    /// What the kernel file was.
    pub format: KernelFormat,
    /// The 32-bit entry point (`XEN_ELFNOTE_PHYS32_ENTRY`): the boot vCPU's RIP.
    pub entry: u32,
    /// Address of `hvm_start_info`: the boot vCPU's RBX.
    pub start_info: u64,
    /// The loaded segments.
    pub segments: Vec<Segment>,
    /// End (exclusive) of the kernel image in memory.
    pub kernel_end: u64,
    /// Where the initrd went, `(address, size)`.
    pub initrd: Option<(u64, u64)>,
    /// Address of the RSDP.
    pub rsdp: u64,
    /// The memory map handed to the guest.
    pub memmap: Vec<hvm_memmap_table_entry>,
}

/// Load `cfg` into `mem` (laid out as `layout`) for a PVH boot. `mem` must
/// be fresh (zeroed) guest memory: BSS is not cleared explicitly.
pub fn load_pvh(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    cfg: &PvhBootConfig<'_>,
) -> Result<PvhBoot, BootError> {
    let cmdline = cfg.cmdline.as_bytes();
    if cmdline.len() >= CMDLINE_MAX || cmdline.contains(&0) {
        return Err(BootError::Cmdline);
    }
    let (elf, format) =
        kernel::extract_vmlinux(cfg.kernel, MAX_VMLINUX).map_err(BootError::Kernel)?;
    let segments = elf_load_segments(&elf)?;
    for s in &segments {
        if !layout.in_loadable_ram(s.paddr, s.memsz) {
            return Err(BootError::SegmentOutsideRam {
                paddr: s.paddr,
                memsz: s.memsz,
                ram_end: layout.low_ram_end(),
            });
        }
    }

    let loaded = Elf::load(mem, None, &mut Cursor::new(&elf[..]), None).map_err(BootError::Load)?;
    let entry = match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => {
            u32::try_from(addr.0).map_err(|_| BootError::Elf("PVH entry above 4 GiB"))?
        }
        _ => return Err(BootError::NoPvhEntry),
    };
    let kernel_end = segments
        .iter()
        .map(|s| s.paddr + s.memsz)
        .max()
        .unwrap_or(HIGH_RAM_START);

    // The initrd goes right after the kernel, page-aligned, as Xen's builder does.
    let initrd = match cfg.initrd {
        None => None,
        Some(data) => {
            let addr = kernel_end.next_multiple_of(PAGE_SIZE);
            if !layout.in_loadable_ram(addr, data.len() as u64) {
                return Err(BootError::InitrdTooLarge {
                    size: data.len(),
                    kernel_end,
                    ram_end: layout.low_ram_end(),
                });
            }
            write(mem, data, addr, "initrd")?;
            Some((addr, data.len() as u64))
        }
    };

    let mut cmd = cmdline.to_vec();
    cmd.push(0);
    write(mem, &cmd, CMDLINE_ADDR, "command line")?;

    let tables = acpi::build(ACPI_START, ACPI_SIZE as usize, cfg.vcpus).map_err(BootError::Acpi)?;
    write(mem, &tables.bytes, ACPI_START, "ACPI tables")?;

    let memmap: Vec<hvm_memmap_table_entry> = layout
        .memory_map()
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind,
            reserved: 0,
        })
        .collect();
    let modlist_addr = START_INFO_ADDR + (hvm_start_info::SIZE as u64).next_multiple_of(16);
    let memmap_addr = modlist_addr + hvm_modlist_entry::SIZE as u64;
    let end = memmap_addr + (memmap.len() * hvm_memmap_table_entry::SIZE) as u64;
    debug_assert!(end <= START_INFO_ADDR + START_INFO_SIZE);

    let si = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        flags: 0,
        nr_modules: u32::from(initrd.is_some()),
        modlist_paddr: if initrd.is_some() { modlist_addr } else { 0 },
        cmdline_paddr: CMDLINE_ADDR,
        rsdp_paddr: tables.rsdp,
        memmap_paddr: memmap_addr,
        memmap_entries: memmap.len() as u32,
        reserved: 0,
    };
    write(mem, &si.to_bytes(), START_INFO_ADDR, "start info")?;
    if let Some((paddr, size)) = initrd {
        let m = hvm_modlist_entry {
            paddr,
            size,
            cmdline_paddr: 0,
            reserved: 0,
        };
        write(mem, &m.to_bytes(), modlist_addr, "module list")?;
    }
    let mut mm = Vec::with_capacity(memmap.len() * hvm_memmap_table_entry::SIZE);
    for e in &memmap {
        mm.extend_from_slice(&e.to_bytes());
    }
    write(mem, &mm, memmap_addr, "memory map")?;

    Ok(PvhBoot {
        format,
        entry,
        start_info: START_INFO_ADDR,
        segments,
        kernel_end,
        initrd,
        rsdp: tables.rsdp,
        memmap,
    })
}

fn write(
    mem: &GuestMemoryMmap,
    data: &[u8],
    addr: u64,
    what: &'static str,
) -> Result<(), BootError> {
    mem.write_slice(data, GuestAddress(addr))
        .map_err(|source| BootError::Write { what, source })
}

/// The `PT_LOAD` segments of an x86-64 ELF executable, validated: inside
/// the file, `filesz <= memsz`, no overflow.
pub fn elf_load_segments(elf: &[u8]) -> Result<Vec<Segment>, BootError> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err(BootError::Elf("no ELF header"));
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err(BootError::Elf("not a little-endian ELF64 image"));
    }
    if u16_at(0x12) != Some(62) {
        return Err(BootError::Elf("not an x86-64 image"));
    }
    let phoff = u64_at(0x20).ok_or(BootError::Elf("truncated header"))?;
    let phentsize = u16_at(0x36).ok_or(BootError::Elf("truncated header"))?;
    let phnum = u16_at(0x38).ok_or(BootError::Elf("truncated header"))?;
    if phentsize != 56 {
        return Err(BootError::Elf("unexpected program header size"));
    }
    let mut segs = Vec::new();
    for i in 0..u64::from(phnum) {
        let o = phoff
            .checked_add(i * 56)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|o| o.checked_add(56).is_some_and(|end| end <= elf.len()))
            .ok_or(BootError::Elf("program header outside the file"))?;
        if u32_at(o) != Some(1) {
            continue; // Not PT_LOAD.
        }
        let offset = u64_at(o + 8).expect("bounds checked");
        let paddr = u64_at(o + 24).expect("bounds checked");
        let filesz = u64_at(o + 32).expect("bounds checked");
        let memsz = u64_at(o + 40).expect("bounds checked");
        if filesz > memsz {
            return Err(BootError::Elf("segment file size exceeds memory size"));
        }
        if offset
            .checked_add(filesz)
            .is_none_or(|end| end > elf.len() as u64)
        {
            return Err(BootError::Elf("segment data outside the file"));
        }
        if paddr.checked_add(memsz).is_none() {
            return Err(BootError::Elf("segment address overflows"));
        }
        if memsz > 0 {
            segs.push(Segment {
                paddr,
                filesz,
                memsz,
            });
        }
    }
    if segs.is_empty() {
        return Err(BootError::Elf("no loadable segment"));
    }
    Ok(segs)
}

#[cfg(test)]
mod tests;
