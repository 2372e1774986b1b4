//! Core definitions of `xen/include/public/xen.h` (with the x86_64 parts of
//! `xen/include/public/arch-x86/xen.h` and `arch-x86/xen-x86_64.h`):
//! hypercall numbers, virtual IRQs, reserved domain ids, console_io and
//! vm_assist commands, and the byte layout of `vcpu_info` / `shared_info`
//! as a 64-bit guest sees them.
#![allow(non_upper_case_globals)]

// Hypercall numbers (`__HYPERVISOR_*`), passed in RAX (input) by the guest.
pub const __HYPERVISOR_set_trap_table: u64 = 0;
pub const __HYPERVISOR_mmu_update: u64 = 1;
pub const __HYPERVISOR_set_gdt: u64 = 2;
pub const __HYPERVISOR_stack_switch: u64 = 3;
pub const __HYPERVISOR_set_callbacks: u64 = 4;
pub const __HYPERVISOR_fpu_taskswitch: u64 = 5;
pub const __HYPERVISOR_sched_op_compat: u64 = 6;
pub const __HYPERVISOR_platform_op: u64 = 7;
pub const __HYPERVISOR_set_debugreg: u64 = 8;
pub const __HYPERVISOR_get_debugreg: u64 = 9;
pub const __HYPERVISOR_update_descriptor: u64 = 10;
pub const __HYPERVISOR_memory_op: u64 = 12;
pub const __HYPERVISOR_multicall: u64 = 13;
pub const __HYPERVISOR_update_va_mapping: u64 = 14;
pub const __HYPERVISOR_set_timer_op: u64 = 15;
pub const __HYPERVISOR_event_channel_op_compat: u64 = 16;
pub const __HYPERVISOR_xen_version: u64 = 17;
pub const __HYPERVISOR_console_io: u64 = 18;
pub const __HYPERVISOR_physdev_op_compat: u64 = 19;
pub const __HYPERVISOR_grant_table_op: u64 = 20;
pub const __HYPERVISOR_vm_assist: u64 = 21;
pub const __HYPERVISOR_update_va_mapping_otherdomain: u64 = 22;
pub const __HYPERVISOR_iret: u64 = 23;
pub const __HYPERVISOR_vcpu_op: u64 = 24;
pub const __HYPERVISOR_set_segment_base: u64 = 25;
pub const __HYPERVISOR_mmuext_op: u64 = 26;
pub const __HYPERVISOR_xsm_op: u64 = 27;
pub const __HYPERVISOR_nmi_op: u64 = 28;
pub const __HYPERVISOR_sched_op: u64 = 29;
pub const __HYPERVISOR_callback_op: u64 = 30;
pub const __HYPERVISOR_xenoprof_op: u64 = 31;
pub const __HYPERVISOR_event_channel_op: u64 = 32;
pub const __HYPERVISOR_physdev_op: u64 = 33;
pub const __HYPERVISOR_hvm_op: u64 = 34;
pub const __HYPERVISOR_sysctl: u64 = 35;
pub const __HYPERVISOR_domctl: u64 = 36;
pub const __HYPERVISOR_kexec_op: u64 = 37;
pub const __HYPERVISOR_tmem_op: u64 = 38;
pub const __HYPERVISOR_argo_op: u64 = 39;
pub const __HYPERVISOR_xenpmu_op: u64 = 40;
pub const __HYPERVISOR_dm_op: u64 = 41;
pub const __HYPERVISOR_hypfs_op: u64 = 42;

/// Xen's name for a hypercall number, for log lines.
pub fn hypercall_name(nr: u64) -> &'static str {
    match nr {
        __HYPERVISOR_set_trap_table => "set_trap_table",
        __HYPERVISOR_mmu_update => "mmu_update",
        __HYPERVISOR_set_gdt => "set_gdt",
        __HYPERVISOR_stack_switch => "stack_switch",
        __HYPERVISOR_set_callbacks => "set_callbacks",
        __HYPERVISOR_fpu_taskswitch => "fpu_taskswitch",
        __HYPERVISOR_sched_op_compat => "sched_op_compat",
        __HYPERVISOR_platform_op => "platform_op",
        __HYPERVISOR_set_debugreg => "set_debugreg",
        __HYPERVISOR_get_debugreg => "get_debugreg",
        __HYPERVISOR_update_descriptor => "update_descriptor",
        __HYPERVISOR_memory_op => "memory_op",
        __HYPERVISOR_multicall => "multicall",
        __HYPERVISOR_update_va_mapping => "update_va_mapping",
        __HYPERVISOR_set_timer_op => "set_timer_op",
        __HYPERVISOR_event_channel_op_compat => "event_channel_op_compat",
        __HYPERVISOR_xen_version => "xen_version",
        __HYPERVISOR_console_io => "console_io",
        __HYPERVISOR_physdev_op_compat => "physdev_op_compat",
        __HYPERVISOR_grant_table_op => "grant_table_op",
        __HYPERVISOR_vm_assist => "vm_assist",
        __HYPERVISOR_update_va_mapping_otherdomain => "update_va_mapping_otherdomain",
        __HYPERVISOR_iret => "iret",
        __HYPERVISOR_vcpu_op => "vcpu_op",
        __HYPERVISOR_set_segment_base => "set_segment_base",
        __HYPERVISOR_mmuext_op => "mmuext_op",
        __HYPERVISOR_xsm_op => "xsm_op",
        __HYPERVISOR_nmi_op => "nmi_op",
        __HYPERVISOR_sched_op => "sched_op",
        __HYPERVISOR_callback_op => "callback_op",
        __HYPERVISOR_xenoprof_op => "xenoprof_op",
        __HYPERVISOR_event_channel_op => "event_channel_op",
        __HYPERVISOR_physdev_op => "physdev_op",
        __HYPERVISOR_hvm_op => "hvm_op",
        __HYPERVISOR_sysctl => "sysctl",
        __HYPERVISOR_domctl => "domctl",
        __HYPERVISOR_kexec_op => "kexec_op",
        __HYPERVISOR_tmem_op => "tmem_op",
        __HYPERVISOR_argo_op => "argo_op",
        __HYPERVISOR_xenpmu_op => "xenpmu_op",
        __HYPERVISOR_dm_op => "dm_op",
        __HYPERVISOR_hypfs_op => "hypfs_op",
        _ => "unknown",
    }
}

// Virtual interrupts (`VIRQ_*`): V = per-vCPU, G = global, D = per-domain.
pub const VIRQ_TIMER: u32 = 0;
pub const VIRQ_DEBUG: u32 = 1;
pub const VIRQ_CONSOLE: u32 = 2;
pub const VIRQ_DOM_EXC: u32 = 3;
pub const VIRQ_TBUF: u32 = 4;
pub const VIRQ_DEBUGGER: u32 = 6;
pub const VIRQ_XENOPROF: u32 = 7;
pub const VIRQ_CON_RING: u32 = 8;
pub const VIRQ_PCPU_STATE: u32 = 9;
pub const VIRQ_MEM_EVENT: u32 = 10;
pub const VIRQ_ARGO: u32 = 11;
pub const VIRQ_ENOMEM: u32 = 12;
pub const VIRQ_XENPMU: u32 = 13;
pub const VIRQ_ARCH_0: u32 = 16;
pub const NR_VIRQS: u32 = 24;

/// Whether a VIRQ is bound per vCPU (`V` in xen.h) rather than once per domain.
pub fn virq_is_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

// Reserved domain ids (`DOMID_*`).
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
pub const DOMID_SELF: u16 = 0x7ff0;
pub const DOMID_IO: u16 = 0x7ff1;
pub const DOMID_XEN: u16 = 0x7ff2;
pub const DOMID_COW: u16 = 0x7ff3;
pub const DOMID_INVALID: u16 = 0x7ff4;
pub const DOMID_ANY: u16 = 0x7ff5;
pub const DOMID_IDLE: u16 = 0x7fff;

// `HYPERVISOR_console_io(cmd, count, buffer)` commands.
pub const CONSOLEIO_write: u64 = 0;
pub const CONSOLEIO_read: u64 = 1;

// `HYPERVISOR_vm_assist(cmd, type)`.
pub const VMASST_CMD_enable: u64 = 0;
pub const VMASST_CMD_disable: u64 = 1;
pub const VMASST_TYPE_4gb_segments: u64 = 0;
pub const VMASST_TYPE_4gb_segments_notify: u64 = 1;
pub const VMASST_TYPE_writable_pagetables: u64 = 2;
pub const VMASST_TYPE_pae_extended_cr3: u64 = 3;
pub const VMASST_TYPE_architectural_iopl: u64 = 4;
pub const VMASST_TYPE_runstate_update_flag: u64 = 5;
pub const VMASST_TYPE_m2p_strict: u64 = 32;

/// `XEN_LEGACY_MAX_VCPUS` (arch-x86/xen.h): vCPUs whose `vcpu_info` lives
/// inside `shared_info`; others must register one with
/// `VCPUOP_register_vcpu_info`.
pub const XEN_LEGACY_MAX_VCPUS: u32 = 32;

/// `xen_ulong_t` on x86_64 is 64 bits, so the 2-level event channel ABI has
/// 64 × 64 ports (`EVTCHN_2L_NR_CHANNELS`, event_channel.h).
pub const BITS_PER_XEN_ULONG: u32 = 64;

// `struct vcpu_time_info` (32 bytes).
pub const VCPU_TIME_INFO_SIZE: usize = 32;
pub const VCPU_TIME_INFO_version: usize = 0;
pub const VCPU_TIME_INFO_tsc_timestamp: usize = 8;
pub const VCPU_TIME_INFO_system_time: usize = 16;
pub const VCPU_TIME_INFO_tsc_to_system_mul: usize = 24;
pub const VCPU_TIME_INFO_tsc_shift: usize = 28;
pub const VCPU_TIME_INFO_flags: usize = 29;
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

// `struct vcpu_info` (64 bytes on x86).
pub const VCPU_INFO_SIZE: usize = 64;
pub const VCPU_INFO_evtchn_upcall_pending: usize = 0;
pub const VCPU_INFO_evtchn_upcall_mask: usize = 1;
pub const VCPU_INFO_evtchn_pending_sel: usize = 8;
pub const VCPU_INFO_arch_cr2: usize = 16;
pub const VCPU_INFO_time: usize = 32;

// `struct shared_info` for a 64-bit guest.
pub const SHARED_INFO_vcpu_info: usize = 0;
pub const SHARED_INFO_evtchn_pending: usize =
    SHARED_INFO_vcpu_info + XEN_LEGACY_MAX_VCPUS as usize * VCPU_INFO_SIZE;
pub const SHARED_INFO_evtchn_mask: usize =
    SHARED_INFO_evtchn_pending + BITS_PER_XEN_ULONG as usize * 8;
pub const SHARED_INFO_wc_version: usize = SHARED_INFO_evtchn_mask + BITS_PER_XEN_ULONG as usize * 8;
pub const SHARED_INFO_wc_sec: usize = SHARED_INFO_wc_version + 4;
pub const SHARED_INFO_wc_nsec: usize = SHARED_INFO_wc_version + 8;
pub const SHARED_INFO_wc_sec_hi: usize = SHARED_INFO_wc_version + 12;
/// `struct arch_shared_info`: max_pfn, pfn_to_mfn_frame_list_list,
/// nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation (six 64-bit words).
pub const SHARED_INFO_arch: usize = SHARED_INFO_wc_version + 16;
pub const SHARED_INFO_SIZE: usize = SHARED_INFO_arch + 6 * 8;

/// Byte offset of vCPU `vcpu`'s `vcpu_info` inside `shared_info`, for the
/// first [`XEN_LEGACY_MAX_VCPUS`] vCPUs.
pub fn shared_info_vcpu_info_offset(vcpu: u32) -> Option<usize> {
    (vcpu < XEN_LEGACY_MAX_VCPUS).then(|| SHARED_INFO_vcpu_info + vcpu as usize * VCPU_INFO_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_info_layout_matches_x86_64_header() {
        // 32 vcpu_info of 64 bytes, then 64 + 64 unsigned longs.
        assert_eq!(SHARED_INFO_evtchn_pending, 0x800);
        assert_eq!(SHARED_INFO_evtchn_mask, 0xa00);
        assert_eq!(SHARED_INFO_wc_version, 0xc00);
        assert_eq!(SHARED_INFO_wc_sec_hi, 0xc0c);
        assert_eq!(SHARED_INFO_arch, 0xc10);
        assert_eq!(SHARED_INFO_SIZE, 0xc40);
        assert!(SHARED_INFO_SIZE <= crate::PAGE_SIZE as usize);
        assert_eq!(VCPU_INFO_time + VCPU_TIME_INFO_SIZE, VCPU_INFO_SIZE);
    }

    #[test]
    fn vcpu_info_offsets() {
        assert_eq!(shared_info_vcpu_info_offset(0), Some(0));
        assert_eq!(shared_info_vcpu_info_offset(31), Some(31 * 64));
        assert_eq!(shared_info_vcpu_info_offset(32), None);
    }

    #[test]
    fn hypercall_names() {
        assert_eq!(hypercall_name(34), "hvm_op");
        assert_eq!(hypercall_name(17), "xen_version");
        assert_eq!(hypercall_name(11), "unknown");
        assert_eq!(hypercall_name(u64::MAX), "unknown");
    }
}
