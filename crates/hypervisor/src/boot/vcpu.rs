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

/// Run the PVH entry state on the host's KVM with a tiny guest that reports
/// EBX through an I/O port: proves KVM accepts the state and the vCPU
/// starts in 32-bit protected mode at the entry with EBX set.
#[cfg(test)]
mod kvm_tests {
    use kvm_ioctls::{Kvm, VcpuExit};
    use vm_memory::{Bytes, GuestAddress};

    use super::*;
    use crate::layout::{MemoryLayout, START_INFO_ADDR};
    use crate::memory::GuestRam;

    #[test]
    fn pvh_entry_state_runs_on_kvm() {
        let Ok(kvm) = Kvm::new() else {
            eprintln!("no /dev/kvm: skipping");
            return;
        };
        let ram = GuestRam::new("rxen-pvh-entry", MemoryLayout::new(32 << 20).unwrap()).unwrap();
        let vm = kvm.create_vm().unwrap();
        vm.set_tss_address(0xfffb_d000).unwrap();
        // SAFETY: `ram` outlives `vm`: both are locals and `vm` is declared later, so dropped first.
        unsafe { ram.register_with_kvm(&vm) }.unwrap();
        let entry = 0x0100_0000u32;
        // In 32-bit code: mov dx, 0x3f8 (66 ba f8 03); mov eax, ebx (89 d8);
        // out dx, eax (ef); hlt (f4). In 16-bit mode the same bytes decode
        // differently and would not report EBX.
        let code = [0x66, 0xba, 0xf8, 0x03, 0x89, 0xd8, 0xef, 0xf4];
        ram.memory()
            .write_slice(&code, GuestAddress(u64::from(entry)))
            .unwrap();

        let mut vcpu = vm.create_vcpu(0).unwrap();
        let sregs = pvh_sregs(vcpu.get_sregs().unwrap());
        vcpu.set_sregs(&sregs).unwrap();
        vcpu.set_regs(&pvh_regs(entry, START_INFO_ADDR)).unwrap();
        match vcpu.run().unwrap() {
            VcpuExit::IoOut(port, data) => {
                assert_eq!(port, 0x3f8);
                assert_eq!(data, &(START_INFO_ADDR as u32).to_le_bytes());
            }
            other => panic!("unexpected exit {other:?}"),
        }
        let s = vcpu.get_sregs().unwrap();
        assert_eq!(s.cr0 & X86_CR0_PE, X86_CR0_PE);
        assert_eq!(s.cs.db, 1);
        assert_eq!(
            vcpu.get_regs().unwrap().rip,
            u64::from(entry) + 7,
            "stopped after the OUT"
        );
    }
}
