//! The boot vCPU's register state at the PVH entry point, as
//! `docs/misc/pvh.pandoc` (xen-project/xen) specifies it: 32-bit protected
//! mode with paging off, flat 4 GiB code and data segments, a 32-bit TSS,
//! CR0 = PE (ET is read-only 1), CR4 = 0, EFLAGS with IF/TF/VM clear, and
//! EBX = guest-physical address of `hvm_start_info`. The guest installs its
//! own GDT, IDT and stack.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};

/// CR0.PE.
pub const X86_CR0_PE: u64 = 1 << 0;
/// CR0.ET (extension type; hard-wired to 1).
pub const X86_CR0_ET: u64 = 1 << 4;
/// EFLAGS bit 1, always set.
pub const X86_EFLAGS_FIXED: u64 = 1 << 1;

/// Segment selectors, arbitrary (the ABI leaves them unspecified) but
/// distinct and GDT-shaped.
const SEL_CS: u16 = 0x08;
const SEL_DS: u16 = 0x10;
const SEL_TR: u16 = 0x18;

fn flat(selector: u16, type_: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// General registers at the PVH entry: RIP = the `XEN_ELFNOTE_PHYS32_ENTRY`
/// address, RBX = `hvm_start_info`'s address, everything else zero.
pub fn pvh_regs(entry: u32, start_info: u64) -> kvm_regs {
    kvm_regs {
        rip: u64::from(entry),
        rbx: start_info,
        rflags: X86_EFLAGS_FIXED,
        ..Default::default()
    }
}

/// Special registers at the PVH entry, starting from the vCPU's current
/// `sregs` (so fields KVM owns, such as `apic_base`, are kept).
pub fn pvh_sregs(mut s: kvm_sregs) -> kvm_sregs {
    // Code: execute/read, accessed. Data: read/write, accessed.
    s.cs = flat(SEL_CS, 0xb);
    let data = flat(SEL_DS, 0x3);
    s.ds = data;
    s.es = data;
    s.ss = data;
    s.fs = data;
    s.gs = data;
    // A busy 32-bit TSS, base 0, limit 0x67 (a system segment: s = 0).
    s.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: SEL_TR,
        type_: 0xb,
        present: 1,
        s: 0,
        db: 0,
        g: 0,
        ..flat(0, 0)
    };
    s.ldt = kvm_segment {
        unusable: 1,
        present: 0,
        s: 0,
        type_: 0x2,
        limit: 0,
        db: 0,
        g: 0,
        ..flat(0, 0)
    };
    s.gdt.base = 0;
    s.gdt.limit = 0;
    s.idt.base = 0;
    s.idt.limit = 0;
    s.cr0 = X86_CR0_PE | X86_CR0_ET;
    s.cr2 = 0;
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_state_matches_pvh_abi() {
        let r = pvh_regs(0x0100_0a40, 0xf_0000);
        assert_eq!(r.rip, 0x0100_0a40);
        assert_eq!(r.rbx, 0xf_0000);
        assert_eq!(
            r.rflags & ((1 << 9) | (1 << 8) | (1 << 17)),
            0,
            "IF, TF, VM clear"
        );

        let base = kvm_sregs {
            apic_base: 0xfee0_0900,
            ..Default::default()
        };
        let s = pvh_sregs(base);
        assert_eq!(s.apic_base, 0xfee0_0900, "KVM-owned fields are kept");
        assert_eq!(s.cr0 & X86_CR0_PE, X86_CR0_PE);
        assert_eq!(s.cr0 & (1 << 31), 0, "paging off");
        assert_eq!(s.cr4, 0);
        assert_eq!(s.efer, 0, "not in long mode");
        for seg in [s.cs, s.ds, s.es, s.ss] {
            assert_eq!(
                (seg.base, seg.limit, seg.present, seg.db, seg.l),
                (0, 0xffff_ffff, 1, 1, 0)
            );
        }
        assert_eq!(s.cs.type_ & 0x8, 0x8, "code segment");
        assert_eq!(s.ds.type_ & 0xa, 0x2, "writable data segment");
        assert_eq!(
            (s.tr.base, s.tr.limit, s.tr.type_, s.tr.s),
            (0, 0x67, 0xb, 0)
        );
    }
}
