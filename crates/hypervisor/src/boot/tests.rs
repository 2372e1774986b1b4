use std::io::Write;

use vm_memory::{Bytes, GuestAddress};
use xen_abi::elfnote::XEN_ELFNOTE_PHYS32_ENTRY;

use super::kernel::tests::make_bzimage;
use super::*;
use crate::memory::GuestRam;

const SEG_PADDR: u64 = 0x100_0000;
const SEG_FILESZ: usize = 0x2345;
const SEG_MEMSZ: u64 = 0x8000;
const ENTRY: u32 = 0x100_0040;

fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(name);
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

fn segment_data() -> Vec<u8> {
    (0..SEG_FILESZ).map(|i| (i * 31 % 256) as u8).collect()
}

/// A minimal x86-64 ELF executable: one PT_LOAD at 16 MiB with BSS, one
/// PT_NOTE holding a GNU build-id note and (if `pvh`) the Xen PVH entry note.
fn make_elf(pvh: bool, paddr: u64) -> Vec<u8> {
    let mut notes = note(b"GNU\0", 3, &[0xab; 20]);
    if pvh {
        notes.extend(note(
            b"Xen\0",
            XEN_ELFNOTE_PHYS32_ENTRY,
            &ENTRY.to_le_bytes(),
        ));
    }
    let phoff = 64u64;
    let notes_off = phoff + 2 * 56;
    let seg_off = (notes_off + notes.len() as u64).next_multiple_of(16);
    let mut e = vec![0u8; 64];
    e[..4].copy_from_slice(b"\x7fELF");
    e[4] = 2; // ELFCLASS64
    e[5] = 1; // little-endian
    e[6] = 1; // EV_CURRENT
    e[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    e[0x18..0x20].copy_from_slice(&paddr.to_le_bytes()); // e_entry
    e[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
    e[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    e[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
    let phdr = |p_type: u32, off: u64, addr: u64, filesz: u64, memsz: u64| {
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&p_type.to_le_bytes());
        p[4..8].copy_from_slice(&5u32.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[16..24].copy_from_slice(&(addr | 0xffff_ffff_8000_0000).to_le_bytes());
        p[24..32].copy_from_slice(&addr.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&memsz.to_le_bytes());
        p[48..56].copy_from_slice(&4u64.to_le_bytes());
        p
    };
    e.extend(phdr(1, seg_off, paddr, SEG_FILESZ as u64, SEG_MEMSZ));
    e.extend(phdr(
        4,
        notes_off,
        0,
        notes.len() as u64,
        notes.len() as u64,
    ));
    e.extend(&notes);
    e.resize(seg_off as usize, 0);
    e.extend(segment_data());
    e
}

fn ram(mib: u64) -> GuestRam {
    GuestRam::new("rxen-boot-test", MemoryLayout::new(mib << 20).unwrap()).unwrap()
}

fn read(ram: &GuestRam, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ram.memory().read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

fn cfg<'a>(kernel: &'a [u8], initrd: Option<&'a [u8]>) -> PvhBootConfig<'a> {
    PvhBootConfig {
        kernel,
        initrd,
        cmdline: "console=hvc0 earlyprintk=xen",
        vcpus: 2,
    }
}

/// Read back everything the guest will look at through `hvm_start_info`.
fn check_start_info(ram: &GuestRam, boot: &PvhBoot, initrd: Option<&[u8]>) {
    let si = hvm_start_info::read_from(&read(ram, boot.start_info, hvm_start_info::SIZE)).unwrap();
    assert_eq!(si.magic, XEN_HVM_START_MAGIC_VALUE);
    assert_eq!(si.version, 1);
    assert_eq!(si.rsdp_paddr, boot.rsdp);
    assert_eq!(&read(ram, si.rsdp_paddr, 8), b"RSD PTR ");

    let cmd = read(ram, si.cmdline_paddr, 64);
    let end = cmd.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&cmd[..end], b"console=hvc0 earlyprintk=xen");

    let n = si.memmap_entries as usize;
    let raw = read(ram, si.memmap_paddr, n * hvm_memmap_table_entry::SIZE);
    let map: Vec<_> = raw
        .chunks(hvm_memmap_table_entry::SIZE)
        .map(|c| hvm_memmap_table_entry::read_from(c).unwrap())
        .collect();
    assert_eq!(map, boot.memmap);
    let ram_bytes: u64 = map.iter().filter(|e| e.type_ == 1).map(|e| e.size).sum();
    assert_eq!(ram_bytes, ram.layout().usable_ram());
    // Everything the loader placed below 1 MiB is outside RAM in the map.
    for addr in [
        si.rsdp_paddr,
        si.cmdline_paddr,
        boot.start_info,
        si.memmap_paddr,
    ] {
        assert!(
            map.iter()
                .any(|e| e.type_ == 2 && e.addr <= addr && addr < e.addr + e.size),
            "{addr:#x} reserved"
        );
    }
    // The kernel and initrd are inside RAM.
    for s in &boot.segments {
        assert!(
            map.iter()
                .any(|e| e.type_ == 1 && e.addr <= s.paddr && s.paddr + s.memsz <= e.addr + e.size)
        );
    }

    match initrd {
        None => assert_eq!((si.nr_modules, si.modlist_paddr), (0, 0)),
        Some(data) => {
            assert_eq!(si.nr_modules, 1);
            let m =
                hvm_modlist_entry::read_from(&read(ram, si.modlist_paddr, hvm_modlist_entry::SIZE))
                    .unwrap();
            assert_eq!(m.size, data.len() as u64);
            assert_eq!(m.paddr % PAGE_SIZE, 0);
            assert!(m.paddr >= boot.kernel_end, "initrd after the kernel");
            assert_eq!(read(ram, m.paddr, data.len()), data);
            assert_eq!(boot.initrd, Some((m.paddr, m.size)));
        }
    }
}

#[test]
fn loads_elf_with_pvh_note() {
    let ram = ram(64);
    let elf = make_elf(true, SEG_PADDR);
    let initrd: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
    let boot = load_pvh(ram.memory(), ram.layout(), &cfg(&elf, Some(&initrd))).unwrap();
    assert_eq!(boot.format, KernelFormat::Elf);
    assert_eq!(boot.entry, ENTRY);
    assert_eq!(
        boot.segments,
        vec![Segment {
            paddr: SEG_PADDR,
            filesz: SEG_FILESZ as u64,
            memsz: SEG_MEMSZ
        }]
    );
    assert_eq!(boot.kernel_end, SEG_PADDR + SEG_MEMSZ);
    assert_eq!(read(&ram, SEG_PADDR, SEG_FILESZ), segment_data());
    assert!(
        read(&ram, SEG_PADDR + SEG_FILESZ as u64, 16)
            .iter()
            .all(|&b| b == 0),
        "BSS zero"
    );
    check_start_info(&ram, &boot, Some(&initrd));
}

#[test]
fn loads_bzimage_wrapped_elf_with_each_compression() {
    let elf = make_elf(true, SEG_PADDR);
    let xz = super::kernel::tests::xz_bcj(&elf);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&elf).unwrap();
    let gz = gz.finish().unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&elf[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (payload, want) in [
        (xz, Compression::Xz),
        (gz, Compression::Gzip),
        (zst, Compression::Zstd),
    ] {
        let ram = ram(64);
        let img = make_bzimage(&payload, 30, 0x400);
        let boot = load_pvh(ram.memory(), ram.layout(), &cfg(&img, None)).unwrap();
        assert!(
            matches!(boot.format, KernelFormat::BzImage { compression, .. } if compression == want)
        );
        assert_eq!(boot.entry, ENTRY);
        assert_eq!(read(&ram, SEG_PADDR, SEG_FILESZ), segment_data());
        check_start_info(&ram, &boot, None);
    }
}

#[test]
fn kernel_without_pvh_note_is_refused() {
    let ram = ram(64);
    let elf = make_elf(false, SEG_PADDR);
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &cfg(&elf, None)),
        Err(BootError::NoPvhEntry)
    ));
}

#[test]
fn segments_must_fit_loadable_ram() {
    let ram = ram(32);
    // Below 1 MiB: would overwrite ACPI and start info.
    let elf = make_elf(true, 0xe_0000);
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &cfg(&elf, None)),
        Err(BootError::SegmentOutsideRam {
            paddr: 0xe_0000,
            ..
        })
    ));
    // Past the end of RAM.
    let elf = make_elf(true, (32 << 20) - 0x1000);
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &cfg(&elf, None)),
        Err(BootError::SegmentOutsideRam { .. })
    ));
}

#[test]
fn oversized_initrd_and_bad_cmdline_are_refused() {
    let ram = ram(32);
    let elf = make_elf(true, SEG_PADDR);
    let big = vec![0u8; 16 << 20];
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &cfg(&elf, Some(&big))),
        Err(BootError::InitrdTooLarge { .. })
    ));
    let long = "x".repeat(CMDLINE_MAX);
    let c = PvhBootConfig {
        cmdline: &long,
        ..cfg(&elf, None)
    };
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &c),
        Err(BootError::Cmdline)
    ));
    let c = PvhBootConfig {
        cmdline: "a\0b",
        ..cfg(&elf, None)
    };
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &c),
        Err(BootError::Cmdline)
    ));
    let c = PvhBootConfig {
        vcpus: 0,
        ..cfg(&elf, None)
    };
    assert!(matches!(
        load_pvh(ram.memory(), ram.layout(), &c),
        Err(BootError::Acpi(_))
    ));
}

#[test]
fn malformed_elf_images_fail_cleanly() {
    let good = make_elf(true, SEG_PADDR);
    // Every truncation.
    for len in 0..good.len().min(400) {
        assert!(
            elf_load_segments(&good[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let patch = |at: usize, bytes: &[u8]| {
        let mut e = good.clone();
        e[at..at + bytes.len()].copy_from_slice(bytes);
        e
    };
    assert!(elf_load_segments(&patch(4, &[1])).is_err(), "ELF32");
    assert!(
        elf_load_segments(&patch(0x12, &3u16.to_le_bytes())).is_err(),
        "i386"
    );
    assert!(
        elf_load_segments(&patch(0x20, &u64::MAX.to_le_bytes())).is_err(),
        "phoff overflow"
    );
    assert!(
        elf_load_segments(&patch(0x38, &u16::MAX.to_le_bytes())).is_err(),
        "phnum"
    );
    // filesz > memsz, and file offset past the end.
    assert!(elf_load_segments(&patch(64 + 40, &1u64.to_le_bytes())).is_err());
    assert!(elf_load_segments(&patch(64 + 8, &(u64::MAX - 4).to_le_bytes())).is_err());
    assert!(elf_load_segments(&patch(64 + 24, &(u64::MAX - 4).to_le_bytes())).is_err());
    // Through the whole loader, hostile images are errors, not panics.
    let ram = ram(32);
    for bad in [
        patch(0x38, &u16::MAX.to_le_bytes()),
        patch(64 + 40, &1u64.to_le_bytes()),
        good[..100].to_vec(),
    ] {
        assert!(load_pvh(ram.memory(), ram.layout(), &cfg(&bad, None)).is_err());
    }
}

/// Load a real kernel (an ELF vmlinux or a bzImage) named by
/// `RXEN_TEST_KERNEL` into a 256 MiB guest and print what was found. Run
/// with `cargo test --release -p hypervisor -- --ignored real_kernel --nocapture`.
#[test]
#[ignore = "needs RXEN_TEST_KERNEL"]
fn real_kernel() {
    let path = std::env::var("RXEN_TEST_KERNEL").expect("RXEN_TEST_KERNEL names a kernel file");
    let image = std::fs::read(&path).expect("read the kernel");
    let initrd = vec![0x5au8; 1 << 20];
    let ram = ram(256);
    let boot = load_pvh(
        ram.memory(),
        ram.layout(),
        &PvhBootConfig {
            kernel: &image,
            initrd: Some(&initrd),
            cmdline: "console=hvc0 earlyprintk=xen",
            vcpus: 2,
        },
    )
    .expect("load the kernel");
    // Optionally compare the extracted ELF with one decompressed by other
    // tools (e.g. `xz -dc --single-stream` of the payload).
    if let Ok(reference) = std::env::var("RXEN_TEST_VMLINUX") {
        let want = std::fs::read(reference).expect("read the reference vmlinux");
        let (got, _) = kernel::extract_vmlinux(&image, MAX_VMLINUX).unwrap();
        assert!(
            got[..] == want[..],
            "extracted vmlinux differs from the reference"
        );
        println!(
            "extracted vmlinux matches the reference ({} bytes)",
            want.len()
        );
    }
    println!("format: {:?}", boot.format);
    println!("PVH entry: {:#x}", boot.entry);
    for s in &boot.segments {
        println!(
            "segment: paddr {:#x} filesz {:#x} memsz {:#x}",
            s.paddr, s.filesz, s.memsz
        );
    }
    println!(
        "kernel end: {:#x}, initrd: {:x?}",
        boot.kernel_end, boot.initrd
    );
    assert!(
        boot.segments
            .iter()
            .any(|s| (s.paddr..s.paddr + s.filesz).contains(&u64::from(boot.entry))),
        "the entry point lies in a loaded segment"
    );
    check_start_info(&ram, &boot, Some(&initrd));
}
