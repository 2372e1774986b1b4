//! The ACPI tables of a PVH domain: RSDP → XSDT → FADT (hardware-reduced,
//! no legacy devices) → DSDT, and a MADT with one enabled local APIC per
//! vCPU (APIC id = vCPU index, as KVM numbers them) and no I/O APIC. Built
//! with the `acpi_tables` crate; see ACPI 6.5, chapter 5.
//!
//! Power off and reset: a hardware-reduced platform has no PM1 blocks; the
//! FADT's sleep control register ([`SLEEP_CONTROL_PORT`], ACPI 6.5
//! 4.8.3.7) with `\_S5` in the DSDT lets the guest enter S5 (Linux PVH
//! guests power off this way: they have no PV power-off hook), and the
//! reset register ([`RESET_PORT`]) resets. The domain process turns those
//! port writes into the `poweroff` and `reboot` shutdown reasons.

use acpi_tables::Aml;
use acpi_tables::aml::{Name, Package, Path};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{EnabledStatus, LocalInterruptController, MADT, ProcessorLocalApic};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;

use crate::layout::LAPIC_ADDR;

const OEM_ID: [u8; 6] = *b"RXEN  ";
const OEM_TABLE_ID: [u8; 8] = *b"RXENPVH ";
const OEM_REVISION: u32 = 1;

/// I/O port of the FADT sleep control register (and of the sleep status
/// register, which reads as all ones).
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// I/O port of the FADT reset register.
pub const RESET_PORT: u16 = 0x604;
/// What the guest writes to [`RESET_PORT`] to reset.
pub const RESET_VALUE: u8 = 1;
/// `SLP_TYPx` of S5 (soft off) in this DSDT's `\_S5` package.
pub const SLP_TYP_S5: u8 = 5;
/// `SLP_EN` in the sleep control register.
pub const SLP_EN: u8 = 1 << 5;

/// Whether a byte written to [`SLEEP_CONTROL_PORT`] asks for S5.
pub fn is_s5_request(v: u8) -> bool {
    v & SLP_EN != 0 && (v >> 2) & 0x7 == SLP_TYP_S5
}

fn io_byte_register(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(port),
    )
}

/// The most vCPUs the MADT describes (8-bit xAPIC ids; 0xff is broadcast).
pub const MAX_VCPUS: u32 = 128;

/// `IAPC_BOOT_ARCH` bit: VGA not present.
const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
/// `IAPC_BOOT_ARCH` bit: MSI not supported (no PCI here).
const IAPC_MSI_NOT_SUPPORTED: u16 = 1 << 3;
/// `IAPC_BOOT_ARCH` bit: CMOS RTC not present.
const IAPC_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

/// Errors of [`build`].
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// The vCPU count is out of range.
    #[error("{0} vCPUs is outside 1..={MAX_VCPUS}")]
    VcpuCount(u32),
    /// The tables do not fit in the room given.
    #[error("ACPI tables need {need} bytes, {room} are reserved")]
    TooBig {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        room: usize,
    },
}

/// The tables, laid out for guest-physical address `base`.
#[derive(Debug)]
pub struct AcpiTables {
    /// Bytes to copy to `base`.
    pub bytes: Vec<u8>,
    /// Address of the RSDP (= `base`), for `hvm_start_info.rsdp_paddr`.
    pub rsdp: u64,
}

fn align16(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(16), 0);
}

fn aml_bytes(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

/// Build the tables for `vcpus` vCPUs at guest-physical `base`, in at most `room` bytes.
pub fn build(base: u64, room: usize, vcpus: u32) -> Result<AcpiTables, AcpiError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(AcpiError::VcpuCount(vcpus));
    }
    // Offsets: RSDP, then the other tables 16-byte aligned.
    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    // Name (\_S5, Package () { 5, 0 }): S5's SLP_TYP values.
    let s5 = aml_bytes(&Name::new(
        Path::new("\\_S5_"),
        &Package::new(vec![&SLP_TYP_S5, &0u8]),
    ));
    dsdt.append_slice(&s5);
    dsdt.update_checksum();
    let dsdt = dsdt.as_slice().to_vec();

    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC_ADDR as u32),
    );
    for i in 0..vcpus {
        madt.add_structure(ProcessorLocalApic::new(
            i as u8,
            i as u8,
            EnabledStatus::Enabled,
        ));
    }
    let madt = aml_bytes(&madt);

    let rsdp_len = Rsdp::len().next_multiple_of(16);
    let xsdt_len = (36 + 8 * 3usize).next_multiple_of(16);
    let fadt_off = rsdp_len + xsdt_len;
    let fadt_len = acpi_tables::fadt::FADT::len().next_multiple_of(16);
    let madt_off = fadt_off + fadt_len;
    let dsdt_off = madt_off + madt.len().next_multiple_of(16);
    let total = dsdt_off + dsdt.len();
    if total > room {
        return Err(AcpiError::TooBig { need: total, room });
    }
    let at = |off: usize| base + off as u64;

    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(at(dsdt_off))
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup);
    fadt.sleep_control_reg = io_byte_register(SLEEP_CONTROL_PORT);
    fadt.sleep_status_reg = io_byte_register(SLEEP_CONTROL_PORT);
    fadt.reset_reg = io_byte_register(RESET_PORT);
    fadt.reset_value = RESET_VALUE;
    fadt.iapc_boot_arch =
        (IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED | IAPC_CMOS_RTC_NOT_PRESENT).into();
    let fadt = aml_bytes(&fadt.finalize());

    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(at(fadt_off));
    xsdt.add_entry(at(madt_off));
    let xsdt = aml_bytes(&xsdt);

    let rsdp = aml_bytes(&Rsdp::new(OEM_ID, at(rsdp_len)));

    let mut bytes = rsdp;
    align16(&mut bytes);
    debug_assert_eq!(bytes.len(), rsdp_len);
    bytes.extend_from_slice(&xsdt);
    align16(&mut bytes);
    bytes.resize(fadt_off, 0);
    bytes.extend_from_slice(&fadt);
    align16(&mut bytes);
    bytes.resize(madt_off, 0);
    bytes.extend_from_slice(&madt);
    align16(&mut bytes);
    bytes.resize(dsdt_off, 0);
    bytes.extend_from_slice(&dsdt);
    Ok(AcpiTables { bytes, rsdp: base })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    /// Follow the pointers the way an OS does and check every table.
    #[test]
    fn tables_are_linked_and_checksummed() {
        let base = 0xe_0000u64;
        let t = build(base, 0x1_0000, 3).unwrap();
        let b = &t.bytes;
        let off = |addr: u64| (addr - base) as usize;

        assert_eq!(&b[0..8], b"RSD PTR ");
        assert_eq!(sum(&b[0..20]), 0, "RSDP v1 checksum");
        assert_eq!(sum(&b[0..36]), 0, "RSDP extended checksum");
        assert_eq!(b[15], 2, "revision 2: has an XSDT");
        let xsdt = off(u64_at(b, 24));

        assert_eq!(&b[xsdt..xsdt + 4], b"XSDT");
        let xlen = u32_at(b, xsdt + 4) as usize;
        assert_eq!(sum(&b[xsdt..xsdt + xlen]), 0);
        let entries: Vec<u64> = (xsdt + 36..xsdt + xlen)
            .step_by(8)
            .map(|o| u64_at(b, o))
            .collect();
        assert_eq!(entries.len(), 2);

        let fadt = off(entries[0]);
        assert_eq!(&b[fadt..fadt + 4], b"FACP");
        let flen = u32_at(b, fadt + 4) as usize;
        assert_eq!(sum(&b[fadt..fadt + flen]), 0);
        assert_ne!(u32_at(b, fadt + 112) & (1 << 20), 0, "HW_REDUCED_ACPI");
        assert_ne!(u32_at(b, fadt + 112) & (1 << 10), 0, "RESET_REG_SUP");
        // RESET_REG (offset 116): system I/O, 8 bits, byte access.
        assert_eq!(&b[fadt + 116..fadt + 120], &[1, 8, 0, 1]);
        assert_eq!(u64_at(b, fadt + 120), u64::from(RESET_PORT));
        assert_eq!(b[fadt + 128], RESET_VALUE);
        // SLEEP_CONTROL_REG (244) and SLEEP_STATUS_REG (256).
        assert_eq!(&b[fadt + 244..fadt + 248], &[1, 8, 0, 1]);
        assert_eq!(u64_at(b, fadt + 248), u64::from(SLEEP_CONTROL_PORT));
        assert_eq!(u64_at(b, fadt + 260), u64::from(SLEEP_CONTROL_PORT));
        let dsdt = off(u64_at(b, fadt + 140));
        assert_eq!(&b[dsdt..dsdt + 4], b"DSDT");
        let dlen = u32_at(b, dsdt + 4) as usize;
        assert_eq!(sum(&b[dsdt..dsdt + dlen]), 0);
        // NameOp '\' "_S5_" PackageOp PkgLength(5) NumElements(2) BytePrefix 5 ZeroOp
        assert_eq!(
            &b[dsdt + 36..dsdt + dlen],
            &[
                0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00
            ]
        );

        let madt = off(entries[1]);
        assert_eq!(&b[madt..madt + 4], b"APIC");
        let mlen = u32_at(b, madt + 4) as usize;
        assert_eq!(sum(&b[madt..madt + mlen]), 0);
        assert_eq!(u32_at(b, madt + 36), 0xfee0_0000);
        // Three processor local APIC entries (type 0, length 8), enabled.
        let mut ids = Vec::new();
        let mut o = madt + 44;
        while o < madt + mlen {
            assert_eq!(b[o], 0);
            assert_eq!(b[o + 1], 8);
            assert_eq!(u32_at(b, o + 4), 1);
            ids.push(b[o + 3]);
            o += 8;
        }
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(t.rsdp, base);
    }

    #[test]
    fn s5_requests() {
        assert!(is_s5_request(SLP_EN | (SLP_TYP_S5 << 2)));
        assert!(!is_s5_request(SLP_TYP_S5 << 2), "SLP_EN clear");
        assert!(!is_s5_request(SLP_EN | (3 << 2)), "S3");
        assert!(!is_s5_request(0));
    }

    #[test]
    fn limits() {
        assert!(matches!(
            build(0, 0x1_0000, 0),
            Err(AcpiError::VcpuCount(0))
        ));
        assert!(matches!(
            build(0, 0x1_0000, MAX_VCPUS + 1),
            Err(AcpiError::VcpuCount(_))
        ));
        assert!(build(0, 0x1_0000, MAX_VCPUS).is_ok());
        assert!(matches!(build(0, 100, 1), Err(AcpiError::TooBig { .. })));
    }
}
