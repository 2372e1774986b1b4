//! HVM parameters, `xen/include/public/hvm/params.h`: indices for
//! `HVMOP_get_param`/`HVMOP_set_param` and the `HVM_PARAM_CALLBACK_IRQ`
//! value encoding.
#![allow(non_upper_case_globals)]

pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
pub const HVM_PARAM_IDENT_PT: u32 = 12;
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
pub const HVM_PARAM_VM86_TSS: u32 = 15;
pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
pub const HVM_PARAM_ALTP2M: u32 = 35;
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
pub const HVM_PARAM_MCA_CAP: u32 = 38;
pub const HVM_NR_PARAMS: u32 = 39;

/// Bits 63:56 of an `HVM_PARAM_CALLBACK_IRQ` value give its type.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xff00_0000_0000_0000;
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u8 = 0;
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u8 = 1;
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u8 = 2;

/// A decoded `HVM_PARAM_CALLBACK_IRQ` value: how event channel upcalls reach
/// the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackVia {
    /// Value 0: upcalls disabled.
    None,
    /// Type 0: a GSI (legacy line interrupt), bits 31:0.
    Gsi(u32),
    /// Type 1: PCI INTx: domain 47:32, bus 31:16, device 15:11, pin 1:0.
    PciIntx {
        domain: u16,
        bus: u8,
        device: u8,
        pin: u8,
    },
    /// Type 2: a vector injected directly on the vCPU, bits 7:0.
    Vector(u8),
    /// Any other type (bits 63:56).
    Unknown(u8),
}

impl CallbackVia {
    /// Decode a value written to `HVM_PARAM_CALLBACK_IRQ`.
    pub fn decode(v: u64) -> Self {
        if v == 0 {
            return CallbackVia::None;
        }
        match (v >> 56) as u8 {
            HVM_PARAM_CALLBACK_TYPE_GSI => CallbackVia::Gsi(v as u32),
            HVM_PARAM_CALLBACK_TYPE_PCI_INTX => CallbackVia::PciIntx {
                domain: (v >> 32) as u16,
                bus: (v >> 16) as u8,
                device: ((v >> 11) & 0x1f) as u8,
                pin: (v & 3) as u8,
            },
            HVM_PARAM_CALLBACK_TYPE_VECTOR => CallbackVia::Vector(v as u8),
            t => CallbackVia::Unknown(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_via_decoding() {
        assert_eq!(CallbackVia::decode(0), CallbackVia::None);
        // What Linux writes for the callback vector 0xf3.
        assert_eq!(
            CallbackVia::decode(0x0200_0000_0000_00f3),
            CallbackVia::Vector(0xf3)
        );
        assert_eq!(CallbackVia::decode(9), CallbackVia::Gsi(9));
        assert_eq!(
            CallbackVia::decode(0x0100_0000_0001_1801),
            CallbackVia::PciIntx {
                domain: 0,
                bus: 1,
                device: 3,
                pin: 1
            }
        );
        assert_eq!(
            CallbackVia::decode(0x0700_0000_0000_0001),
            CallbackVia::Unknown(7)
        );
    }
}
