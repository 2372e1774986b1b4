//! KVM's Xen-emulation interface, which `kvm-ioctls` does not wrap.
//!
//! Linux KVM can present parts of the Xen hypervisor interface to a guest
//! (Documentation/virt/kvm/api.rst: `KVM_CAP_XEN_HVM`, `KVM_XEN_HVM_CONFIG`,
//! `KVM_XEN_HVM_SET_ATTR`, `KVM_XEN_VCPU_SET_ATTR`, `KVM_XEN_HVM_EVTCHN_SEND`,
//! `KVM_EXIT_XEN`): it fills the hypercall page and intercepts hypercalls,
//! keeps the shared-info page, vcpu_info, runstate and timers, and delivers
//! 2-level event channels. This crate is the thin, documented ioctl layer
//! over `kvm-ioctls`'s file descriptors and `kvm-bindings`'s structures, plus
//! decoding of the `KVM_EXIT_XEN` exit and capability flags.
//!
//! It holds no policy and no Xen semantics: which hypercalls exist, which
//! ports go where and what a guest is allowed to do belong to the
//! `hypervisor` crate. Every call fails with [`KvmXenError`] (carrying the
//! errno) when the host's KVM lacks Xen support, rather than misbehaving.

use kvm_bindings::{
    KVM_EXIT_XEN, KVM_EXIT_XEN_HCALL, KVM_XEN_ATTR_TYPE_EVTCHN, KVM_XEN_ATTR_TYPE_LONG_MODE,
    KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG, KVM_XEN_ATTR_TYPE_SHARED_INFO,
    KVM_XEN_ATTR_TYPE_UPCALL_VECTOR, KVM_XEN_ATTR_TYPE_XEN_VERSION, KVM_XEN_EVTCHN_DEASSIGN,
    KVM_XEN_EVTCHN_RESET, KVM_XEN_EVTCHN_UPDATE, KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL,
    KVM_XEN_HVM_CONFIG_EVTCHN_SEND, KVM_XEN_HVM_CONFIG_HYPERCALL_MSR,
    KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE,
    KVM_XEN_HVM_CONFIG_RUNSTATE, KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG,
    KVM_XEN_HVM_CONFIG_SHARED_INFO, KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA,
    KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR, KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT,
    KVM_XEN_VCPU_ATTR_TYPE_TIMER, KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR,
    KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID, KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO,
    KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO, kvm_irq_routing_xen_evtchn, kvm_run, kvm_xen_hvm_attr,
    kvm_xen_hvm_config, kvm_xen_vcpu_attr,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use vmm_sys_util::errno;
use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ref};
use vmm_sys_util::{ioctl_iow_nr, ioctl_iowr_nr};

/// `KVMIO`, the ioctl type of every KVM ioctl.
const KVMIO: u32 = 0xAE;

ioctl_iow_nr!(KVM_XEN_HVM_CONFIG, KVMIO, 0x7a, kvm_xen_hvm_config);
ioctl_iowr_nr!(KVM_XEN_HVM_GET_ATTR, KVMIO, 0xc8, kvm_xen_hvm_attr);
ioctl_iow_nr!(KVM_XEN_HVM_SET_ATTR, KVMIO, 0xc9, kvm_xen_hvm_attr);
ioctl_iowr_nr!(KVM_XEN_VCPU_GET_ATTR, KVMIO, 0xca, kvm_xen_vcpu_attr);
ioctl_iow_nr!(KVM_XEN_VCPU_SET_ATTR, KVMIO, 0xcb, kvm_xen_vcpu_attr);
ioctl_iow_nr!(
    KVM_XEN_HVM_EVTCHN_SEND,
    KVMIO,
    0xd0,
    kvm_irq_routing_xen_evtchn
);

/// `KVM_XEN_INVALID_GFN`: disables the shared-info page.
pub const KVM_XEN_INVALID_GFN: u64 = u64::MAX;
/// `KVM_XEN_INVALID_GPA`: disables a per-vCPU area.
pub const KVM_XEN_INVALID_GPA: u64 = u64::MAX;
/// `KVM_IRQ_ROUTING_XEN_EVTCHN`: deliver to the guest's 2-level event channel.
pub const KVM_IRQ_ROUTING_XEN_EVTCHN: u32 = kvm_bindings::KVM_IRQ_ROUTING_XEN_EVTCHN;
/// Event channel priority KVM supports (`KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL`,
/// `(__u32)-1` in `linux/kvm.h`; any other value is `EINVAL`).
pub const KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL: u32 = u32::MAX;

/// Errors of the KVM Xen ioctls.
#[derive(Debug, thiserror::Error)]
pub enum KvmXenError {
    /// The host's KVM does not offer a Xen feature this call needs.
    #[error("the host's KVM lacks Xen support for {needed} (KVM_CAP_XEN_HVM = {caps:#x})")]
    Unsupported {
        /// What was asked for.
        needed: &'static str,
        /// The `KVM_CAP_XEN_HVM` flags the host reported.
        caps: u32,
    },
    /// An ioctl failed; `op` names it.
    #[error("{op} failed")]
    Ioctl {
        /// The ioctl (and attribute) that failed.
        op: &'static str,
        /// The errno it returned.
        #[source]
        source: errno::Error,
    },
}

/// Result of this crate's calls.
pub type Result<T> = std::result::Result<T, KvmXenError>;

/// The flags returned by `KVM_CHECK_EXTENSION(KVM_CAP_XEN_HVM)`; 0 means no
/// Xen support at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenCaps(pub u32);

impl XenCaps {
    /// Every flag this crate knows, with its `KVM_XEN_HVM_CONFIG_*` name.
    pub const NAMES: &'static [(u32, &'static str)] = &[
        (KVM_XEN_HVM_CONFIG_HYPERCALL_MSR, "HYPERCALL_MSR"),
        (KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, "INTERCEPT_HCALL"),
        (KVM_XEN_HVM_CONFIG_SHARED_INFO, "SHARED_INFO"),
        (KVM_XEN_HVM_CONFIG_RUNSTATE, "RUNSTATE"),
        (KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL, "EVTCHN_2LEVEL"),
        (KVM_XEN_HVM_CONFIG_EVTCHN_SEND, "EVTCHN_SEND"),
        (
            KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG,
            "RUNSTATE_UPDATE_FLAG",
        ),
        (
            KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE,
            "PVCLOCK_TSC_UNSTABLE",
        ),
        (KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA, "SHARED_INFO_HVA"),
    ];

    /// What rxen needs to run a PVH guest: KVM fills the hypercall page and
    /// forwards hypercalls, owns shared info / vcpu_info / timers, and
    /// delivers and sends 2-level event channels.
    pub const REQUIRED: XenCaps = XenCaps(
        KVM_XEN_HVM_CONFIG_HYPERCALL_MSR
            | KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL
            | KVM_XEN_HVM_CONFIG_SHARED_INFO
            | KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL
            | KVM_XEN_HVM_CONFIG_EVTCHN_SEND,
    );

    /// Decode the raw return value of `KVM_CHECK_EXTENSION` (negative means
    /// an error, treated as "no support").
    pub fn from_check_extension(ret: i32) -> Self {
        XenCaps(u32::try_from(ret).unwrap_or(0))
    }

    /// Query the host through `/dev/kvm`.
    pub fn query(kvm: &Kvm) -> Self {
        Self::from_check_extension(kvm.check_extension_int(Cap::XenHvm))
    }

    /// Query through a VM file descriptor (the per-VM answer).
    pub fn query_vm(vm: &VmFd) -> Self {
        Self::from_check_extension(vm.check_extension_int(Cap::XenHvm))
    }

    /// Whether every flag of `other` is present.
    pub fn contains(self, other: XenCaps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of `other` that are missing here.
    pub fn missing(self, other: XenCaps) -> XenCaps {
        XenCaps(other.0 & !self.0)
    }

    /// Names of the flags set, in bit order; unknown bits as `0x…`.
    pub fn names(self) -> Vec<String> {
        let mut out: Vec<String> = Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| (*n).to_string())
            .collect();
        let known = Self::NAMES.iter().fold(0, |a, (b, _)| a | b);
        if self.0 & !known != 0 {
            out.push(format!("{:#x}", self.0 & !known));
        }
        out
    }

    /// `Ok` if every flag of `needed` is present, else
    /// [`KvmXenError::Unsupported`] naming `what`.
    pub fn require(self, needed: XenCaps, what: &'static str) -> Result<()> {
        if self.contains(needed) {
            Ok(())
        } else {
            Err(KvmXenError::Unsupported {
                needed: what,
                caps: self.0,
            })
        }
    }
}

impl std::fmt::Display for XenCaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        f.write_str(&self.names().join("|"))
    }
}

fn check(ret: i32, op: &'static str) -> Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(KvmXenError::Ioctl {
            op,
            source: errno::Error::last(),
        })
    }
}

/// `KVM_XEN_HVM_CONFIG` (vm ioctl): enable Xen emulation. With
/// `KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL` in `flags`, KVM writes the hypercall
/// page itself when the guest writes `msr` (the index the guest learns from
/// Xen CPUID leaf 3, EBX) and forwards each hypercall it does not handle in
/// the kernel as `KVM_EXIT_XEN`; the blob fields must then be zero.
pub fn set_hvm_config(vm: &VmFd, flags: u32, msr: u32) -> Result<()> {
    let cfg = kvm_xen_hvm_config {
        flags,
        msr,
        ..Default::default()
    };
    // SAFETY: `vm` is a KVM VM fd; the kernel reads exactly one
    // `kvm_xen_hvm_config`, which `cfg` is, and keeps no reference to it.
    let ret = unsafe { ioctl_with_ref(vm, KVM_XEN_HVM_CONFIG(), &cfg) };
    check(ret, "KVM_XEN_HVM_CONFIG")
}

/// `KVM_XEN_HVM_SET_ATTR` (vm ioctl) with a prepared attribute.
pub fn hvm_set_attr(vm: &VmFd, attr: &kvm_xen_hvm_attr) -> Result<()> {
    // SAFETY: `vm` is a KVM VM fd; the kernel reads one `kvm_xen_hvm_attr`
    // from `attr`, a valid reference for the duration of the call.
    let ret = unsafe { ioctl_with_ref(vm, KVM_XEN_HVM_SET_ATTR(), attr) };
    check(ret, "KVM_XEN_HVM_SET_ATTR")
}

/// `KVM_XEN_HVM_GET_ATTR` (vm ioctl): `attr.type_` selects, the kernel fills `attr.u`.
pub fn hvm_get_attr(vm: &VmFd, attr: &mut kvm_xen_hvm_attr) -> Result<()> {
    // SAFETY: `vm` is a KVM VM fd; the kernel reads and writes one
    // `kvm_xen_hvm_attr` through `attr`, a valid exclusive reference.
    let ret = unsafe { ioctl_with_mut_ref(vm, KVM_XEN_HVM_GET_ATTR(), attr) };
    check(ret, "KVM_XEN_HVM_GET_ATTR")
}

fn hvm_attr(type_: u32) -> kvm_xen_hvm_attr {
    kvm_xen_hvm_attr {
        type_: type_ as u16,
        ..Default::default()
    }
}

/// `KVM_XEN_ATTR_TYPE_LONG_MODE`: the guest's hypercall ABI (64-bit = true).
pub fn set_long_mode(vm: &VmFd, long_mode: bool) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_LONG_MODE);
    a.u.long_mode = u8::from(long_mode);
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_ATTR_TYPE_SHARED_INFO`: the guest frame holding `shared_info`
/// (what the guest asked for with `XENMAPSPACE_shared_info`), or
/// [`KVM_XEN_INVALID_GFN`] to detach it.
pub fn set_shared_info_gfn(vm: &VmFd, gfn: u64) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_SHARED_INFO);
    a.u.shared_info.gfn = gfn;
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_ATTR_TYPE_UPCALL_VECTOR`: the domain-wide callback vector
/// (`HVM_PARAM_CALLBACK_IRQ` of type vector); 0 disables.
pub fn set_upcall_vector(vm: &VmFd, vector: u8) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_UPCALL_VECTOR);
    a.u.vector = vector;
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_ATTR_TYPE_XEN_VERSION`: what KVM answers to `XENVER_version`
/// in the kernel (`major << 16 | minor`).
pub fn set_xen_version(vm: &VmFd, version: u32) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_XEN_VERSION);
    a.u.xen_version = version;
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG`: whether KVM honours
/// `VMASST_TYPE_runstate_update_flag`.
pub fn set_runstate_update_flag(vm: &VmFd, on: bool) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG);
    a.u.runstate_update_flag = u8::from(on);
    hvm_set_attr(vm, &a)
}

/// Where KVM delivers an `EVTCHNOP_send` on a port it intercepts
/// (`KVM_XEN_ATTR_TYPE_EVTCHN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvtchnTarget {
    /// Raise `port` on `vcpu` of this same guest: an IPI when `port` is the
    /// sending port itself, else the other end of a loopback interdomain
    /// channel.
    Port {
        /// Local port to raise.
        port: u32,
        /// vCPU whose `vcpu_info` gets the upcall.
        vcpu: u32,
    },
    /// Signal an eventfd (a backend or another domain's process).
    Eventfd {
        /// The eventfd.
        fd: i32,
    },
}

/// `EVTCHNSTAT_interdomain`: the channel type KVM wants for a route to
/// another port or an eventfd (`event_channel.h`).
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_ipi`: the channel type of a route that raises the sending
/// port itself.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// The attribute [`assign_evtchn`] sets. KVM's `u.evtchn.type` is the Xen
/// channel type (`EVTCHNSTAT_ipi` or `EVTCHNSTAT_interdomain`, checked
/// against the delivery: an IPI must deliver to its own port, an eventfd
/// route has delivery port 0), and only 2-level priority exists.
pub fn evtchn_attr(send_port: u32, target: EvtchnTarget, update: bool) -> kvm_xen_hvm_attr {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_EVTCHN);
    a.u.evtchn.send_port = send_port;
    a.u.evtchn.flags = if update { KVM_XEN_EVTCHN_UPDATE } else { 0 };
    match target {
        EvtchnTarget::Port { port, vcpu } => {
            a.u.evtchn.type_ = if port == send_port {
                EVTCHNSTAT_IPI
            } else {
                EVTCHNSTAT_INTERDOMAIN
            };
            a.u.evtchn.deliver.port.port = port;
            a.u.evtchn.deliver.port.vcpu = vcpu;
            a.u.evtchn.deliver.port.priority = KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL;
        }
        EvtchnTarget::Eventfd { fd } => {
            a.u.evtchn.type_ = EVTCHNSTAT_INTERDOMAIN;
            a.u.evtchn.deliver.eventfd.port = 0;
            a.u.evtchn.deliver.eventfd.fd = fd;
        }
    }
    a
}

/// `KVM_XEN_ATTR_TYPE_EVTCHN`: make KVM handle `EVTCHNOP_send` on
/// `send_port` in the kernel, delivering to `target`; `update` replaces an
/// existing route (of the same kind) instead of adding one.
pub fn assign_evtchn(vm: &VmFd, send_port: u32, target: EvtchnTarget, update: bool) -> Result<()> {
    hvm_set_attr(vm, &evtchn_attr(send_port, target, update))
}

/// `KVM_XEN_ATTR_TYPE_EVTCHN` with `KVM_XEN_EVTCHN_DEASSIGN`: stop
/// intercepting sends on `send_port` (they reach userspace again).
pub fn deassign_evtchn(vm: &VmFd, send_port: u32) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_EVTCHN);
    a.u.evtchn.send_port = send_port;
    a.u.evtchn.flags = KVM_XEN_EVTCHN_DEASSIGN;
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_ATTR_TYPE_EVTCHN` with `KVM_XEN_EVTCHN_RESET`: drop every
/// kernel-side port route (`EVTCHNOP_reset`).
pub fn reset_evtchns(vm: &VmFd) -> Result<()> {
    let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_EVTCHN);
    a.u.evtchn.flags = KVM_XEN_EVTCHN_RESET;
    hvm_set_attr(vm, &a)
}

/// `KVM_XEN_HVM_EVTCHN_SEND` (vm ioctl): raise `port` in the guest as if
/// Xen delivered it (sets the pending bit, the selector bit and the upcall)
/// targeting `vcpu`. This is how userspace (console, xenstore, timers it
/// emulates) notifies the guest.
pub fn evtchn_send(vm: &VmFd, port: u32, vcpu: u32) -> Result<()> {
    let e = kvm_irq_routing_xen_evtchn {
        port,
        vcpu,
        priority: KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL,
    };
    // SAFETY: `vm` is a KVM VM fd; the kernel reads one
    // `kvm_irq_routing_xen_evtchn` from `e`, valid for the call.
    let ret = unsafe { ioctl_with_ref(vm, KVM_XEN_HVM_EVTCHN_SEND(), &e) };
    check(ret, "KVM_XEN_HVM_EVTCHN_SEND")
}

/// `KVM_XEN_VCPU_SET_ATTR` (vcpu ioctl) with a prepared attribute.
pub fn vcpu_set_attr(vcpu: &VcpuFd, attr: &kvm_xen_vcpu_attr) -> Result<()> {
    // SAFETY: `vcpu` is a KVM vCPU fd; the kernel reads one
    // `kvm_xen_vcpu_attr` from `attr`, valid for the call.
    let ret = unsafe { ioctl_with_ref(vcpu, KVM_XEN_VCPU_SET_ATTR(), attr) };
    check(ret, "KVM_XEN_VCPU_SET_ATTR")
}

/// `KVM_XEN_VCPU_GET_ATTR` (vcpu ioctl): `attr.type_` selects, the kernel fills `attr.u`.
pub fn vcpu_get_attr(vcpu: &VcpuFd, attr: &mut kvm_xen_vcpu_attr) -> Result<()> {
    // SAFETY: `vcpu` is a KVM vCPU fd; the kernel reads and writes one
    // `kvm_xen_vcpu_attr` through `attr`, a valid exclusive reference.
    let ret = unsafe { ioctl_with_mut_ref(vcpu, KVM_XEN_VCPU_GET_ATTR(), attr) };
    check(ret, "KVM_XEN_VCPU_GET_ATTR")
}

fn vcpu_attr(type_: u32) -> kvm_xen_vcpu_attr {
    kvm_xen_vcpu_attr {
        type_: type_ as u16,
        ..Default::default()
    }
}

fn vcpu_set_gpa(vcpu: &VcpuFd, type_: u32, gpa: u64) -> Result<()> {
    let mut a = vcpu_attr(type_);
    a.u.gpa = gpa;
    vcpu_set_attr(vcpu, &a)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO`: guest-physical address of this
/// vCPU's `vcpu_info` (`VCPUOP_register_vcpu_info`, or its slot in
/// shared_info for vCPUs below 32).
pub fn set_vcpu_info_gpa(vcpu: &VcpuFd, gpa: u64) -> Result<()> {
    vcpu_set_gpa(vcpu, KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO, gpa)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO`: an extra `vcpu_time_info` copy
/// (`VCPUOP_register_vcpu_time_memory_area`).
pub fn set_vcpu_time_info_gpa(vcpu: &VcpuFd, gpa: u64) -> Result<()> {
    vcpu_set_gpa(vcpu, KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO, gpa)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR`: the runstate area
/// (`VCPUOP_register_runstate_memory_area`).
pub fn set_runstate_gpa(vcpu: &VcpuFd, gpa: u64) -> Result<()> {
    vcpu_set_gpa(vcpu, KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR, gpa)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT`: set the vCPU's runstate
/// (`RUNSTATE_*`), e.g. offline until `VCPUOP_up`.
pub fn set_runstate_current(vcpu: &VcpuFd, state: u64) -> Result<()> {
    let mut a = vcpu_attr(KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT);
    a.u.runstate.state = state;
    vcpu_set_attr(vcpu, &a)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID`: the Xen vCPU id KVM uses for this vCPU
/// (event channel targets, `VCPUOP_*` handled in the kernel).
pub fn set_vcpu_id(vcpu: &VcpuFd, xen_vcpu_id: u32) -> Result<()> {
    let mut a = vcpu_attr(KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID);
    a.u.vcpu_id = xen_vcpu_id;
    vcpu_set_attr(vcpu, &a)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_TIMER`: hand the vCPU's singleshot timer to KVM;
/// it raises `port` (bound to `VIRQ_TIMER`) at `expires_ns` (0 = not armed).
pub fn set_timer(vcpu: &VcpuFd, port: u32, expires_ns: u64) -> Result<()> {
    let mut a = vcpu_attr(KVM_XEN_VCPU_ATTR_TYPE_TIMER);
    a.u.timer.port = port;
    a.u.timer.priority = KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL;
    a.u.timer.expires_ns = expires_ns;
    vcpu_set_attr(vcpu, &a)
}

/// `KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR`: a per-vCPU upcall vector
/// (`HVMOP_set_evtchn_upcall_vector`).
pub fn set_vcpu_upcall_vector(vcpu: &VcpuFd, vector: u8) -> Result<()> {
    let mut a = vcpu_attr(KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR);
    a.u.vector = vector;
    vcpu_set_attr(vcpu, &a)
}

/// A Xen hypercall the guest made that KVM did not handle in the kernel
/// (`KVM_EXIT_XEN` of type `KVM_EXIT_XEN_HCALL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenHypercall {
    /// Whether the guest used the 64-bit ABI (RDI, RSI, RDX, R10, R8, R9)
    /// rather than the 32-bit one (EBX, ECX, EDX, ESI, EDI, EBP).
    pub longmode: bool,
    /// The privilege level the call came from.
    pub cpl: u32,
    /// The hypercall number (RAX).
    pub input: u64,
    /// The six arguments, in ABI order.
    pub params: [u64; 6],
}

/// How kvm-ioctls reports a Xen exit: `VcpuFd::run` has no variant for
/// `KVM_EXIT_XEN` and returns `VcpuExit::Unsupported(34)`. After seeing that,
/// the vCPU loop reads the exit from `VcpuFd::get_kvm_run()` with this.
/// Returns `None` if `run` does not hold a Xen hypercall exit.
pub fn xen_hypercall(run: &kvm_run) -> Option<XenHypercall> {
    if run.exit_reason != KVM_EXIT_XEN {
        return None;
    }
    // SAFETY: exit_reason is KVM_EXIT_XEN, so the kernel filled the `xen`
    // member of the exit union; every bit pattern is a valid
    // `kvm_xen_exit` (plain integers).
    let xen = unsafe { run.__bindgen_anon_1.xen };
    if xen.type_ != KVM_EXIT_XEN_HCALL {
        return None;
    }
    // SAFETY: type_ is KVM_EXIT_XEN_HCALL, so `hcall` is the live member;
    // it is plain integers.
    let h = unsafe { xen.u.hcall };
    Some(XenHypercall {
        longmode: h.longmode != 0,
        cpl: h.cpl,
        input: h.input,
        params: h.params,
    })
}

/// Store the hypercall's return value; KVM puts it in the guest's RAX on the
/// next `KVM_RUN`. Returns `false` (and writes nothing) if `run` does not
/// hold a Xen hypercall exit.
pub fn complete_xen_hypercall(run: &mut kvm_run, result: u64) -> bool {
    if xen_hypercall(run).is_none() {
        return false;
    }
    // Writing a Copy union field is safe; checked above that `xen.u.hcall`
    // is the live member, so this is the field KVM reads back.
    run.__bindgen_anon_1.xen.u.hcall.result = result;
    true
}

/// The exit reason number of `KVM_EXIT_XEN`, as seen in
/// `VcpuExit::Unsupported`.
pub const EXIT_REASON_XEN: u32 = KVM_EXIT_XEN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux() {
        // _IOW(KVMIO, 0x7a, 56 bytes), _IOWR(KVMIO, 0xc8, 72 bytes), ...
        assert_eq!(KVM_XEN_HVM_CONFIG(), 0x4038_ae7a);
        assert_eq!(KVM_XEN_HVM_GET_ATTR(), 0xc048_aec8);
        assert_eq!(KVM_XEN_HVM_SET_ATTR(), 0x4048_aec9);
        assert_eq!(KVM_XEN_VCPU_GET_ATTR(), 0xc048_aeca);
        assert_eq!(KVM_XEN_VCPU_SET_ATTR(), 0x4048_aecb);
        assert_eq!(KVM_XEN_HVM_EVTCHN_SEND(), 0x400c_aed0);
    }

    #[test]
    fn struct_sizes() {
        assert_eq!(std::mem::size_of::<kvm_xen_hvm_config>(), 56);
        assert_eq!(std::mem::size_of::<kvm_xen_hvm_attr>(), 72);
        assert_eq!(std::mem::size_of::<kvm_xen_vcpu_attr>(), 72);
        assert_eq!(std::mem::size_of::<kvm_irq_routing_xen_evtchn>(), 12);
    }

    #[test]
    fn caps_decoding() {
        // What the lab's nested KVM reports (LAB.md).
        let lab = XenCaps::from_check_extension(0x1ff);
        assert!(lab.contains(XenCaps::REQUIRED));
        assert_eq!(lab.names().len(), 9);
        assert_eq!(
            lab.to_string(),
            "HYPERCALL_MSR|INTERCEPT_HCALL|SHARED_INFO|RUNSTATE|EVTCHN_2LEVEL|EVTCHN_SEND|\
             RUNSTATE_UPDATE_FLAG|PVCLOCK_TSC_UNSTABLE|SHARED_INFO_HVA"
        );
        let none = XenCaps::from_check_extension(0);
        assert_eq!(none.to_string(), "none");
        assert_eq!(none.missing(XenCaps::REQUIRED), XenCaps::REQUIRED);
        assert!(matches!(
            none.require(XenCaps::REQUIRED, "PVH guests"),
            Err(KvmXenError::Unsupported { caps: 0, .. })
        ));
        assert_eq!(XenCaps::from_check_extension(-22), XenCaps(0));
        let odd = XenCaps(KVM_XEN_HVM_CONFIG_SHARED_INFO | 0x8000);
        assert_eq!(
            odd.names(),
            vec!["SHARED_INFO".to_string(), "0x8000".to_string()]
        );
        let partial = XenCaps(KVM_XEN_HVM_CONFIG_HYPERCALL_MSR);
        assert!(!partial.contains(XenCaps::REQUIRED));
        assert_eq!(
            partial.missing(XenCaps::REQUIRED).0,
            XenCaps::REQUIRED.0 & !KVM_XEN_HVM_CONFIG_HYPERCALL_MSR
        );
    }

    #[test]
    fn evtchn_routes_carry_the_channel_type() {
        let ipi = evtchn_attr(7, EvtchnTarget::Port { port: 7, vcpu: 1 }, false);
        assert_eq!(u32::from(ipi.type_), KVM_XEN_ATTR_TYPE_EVTCHN);
        // SAFETY: evtchn_attr wrote this union member; plain integers.
        let e = unsafe { ipi.u.evtchn };
        assert_eq!((e.send_port, e.type_, e.flags), (7, EVTCHNSTAT_IPI, 0));
        // SAFETY: evtchn_attr wrote this union member; plain integers.
        let d = unsafe { e.deliver.port };
        assert_eq!((d.port, d.vcpu, d.priority), (7, 1, u32::MAX));

        let lo = evtchn_attr(7, EvtchnTarget::Port { port: 9, vcpu: 0 }, true);
        // SAFETY: evtchn_attr wrote this union member; plain integers.
        let e = unsafe { lo.u.evtchn };
        assert_eq!(
            (e.type_, e.flags),
            (EVTCHNSTAT_INTERDOMAIN, KVM_XEN_EVTCHN_UPDATE)
        );

        let fd = evtchn_attr(3, EvtchnTarget::Eventfd { fd: 42 }, false);
        // SAFETY: evtchn_attr wrote this union member; plain integers.
        let e = unsafe { fd.u.evtchn };
        assert_eq!(e.type_, EVTCHNSTAT_INTERDOMAIN);
        // SAFETY: evtchn_attr wrote this union member; plain integers.
        let d = unsafe { e.deliver.eventfd };
        assert_eq!((d.port, d.fd), (0, 42), "eventfd routes have port 0");
    }

    #[test]
    fn xen_exit_decoding_and_completion() {
        let mut run = kvm_run::default();
        assert_eq!(xen_hypercall(&run), None, "exit reason 0 is not a Xen exit");
        assert!(!complete_xen_hypercall(&mut run, 1));
        run.exit_reason = KVM_EXIT_XEN;
        // Fill the xen member as the kernel would.
        run.__bindgen_anon_1.xen.type_ = KVM_EXIT_XEN_HCALL;
        run.__bindgen_anon_1.xen.u.hcall.longmode = 1;
        run.__bindgen_anon_1.xen.u.hcall.cpl = 0;
        run.__bindgen_anon_1.xen.u.hcall.input = 34;
        run.__bindgen_anon_1.xen.u.hcall.params = [1, 2, 3, 4, 5, 6];
        let h = xen_hypercall(&run).unwrap();
        assert_eq!(
            h,
            XenHypercall {
                longmode: true,
                cpl: 0,
                input: 34,
                params: [1, 2, 3, 4, 5, 6]
            }
        );
        assert!(complete_xen_hypercall(&mut run, (-38i64) as u64));
        // SAFETY: the hcall member was written above; plain integers.
        let result = unsafe { run.__bindgen_anon_1.xen.u.hcall.result };
        assert_eq!(result, (-38i64) as u64);
        // A Xen exit of an unknown type is not a hypercall.
        run.__bindgen_anon_1.xen.type_ = 2;
        assert_eq!(xen_hypercall(&run), None);
    }

    /// On a host whose KVM has no Xen support (this project's development
    /// machines), every call must fail cleanly with the ioctl named. Skips
    /// (passes without checking) only when /dev/kvm cannot be opened.
    #[test]
    fn calls_fail_cleanly_without_xen_support() {
        let Ok(kvm) = Kvm::new() else {
            eprintln!("no /dev/kvm: skipping");
            return;
        };
        let caps = XenCaps::query(&kvm);
        let vm = kvm.create_vm().expect("create_vm");
        if caps.0 != 0 {
            // A host with Xen support: the config call must succeed instead.
            set_hvm_config(&vm, KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, 0x4000_0000)
                .expect("KVM_XEN_HVM_CONFIG on a Xen-capable host");
            return;
        }
        let err = set_hvm_config(&vm, KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL, 0x4000_0000)
            .expect_err("no Xen support");
        assert!(
            matches!(
                err,
                KvmXenError::Ioctl {
                    op: "KVM_XEN_HVM_CONFIG",
                    ..
                }
            ),
            "{err}"
        );
        assert!(set_shared_info_gfn(&vm, 0x10).is_err());
        assert!(evtchn_send(&vm, 1, 0).is_err());
        let mut a = hvm_attr(KVM_XEN_ATTR_TYPE_LONG_MODE);
        assert!(hvm_get_attr(&vm, &mut a).is_err());
        let vcpu = vm.create_vcpu(0).expect("create_vcpu");
        let err = set_vcpu_info_gpa(&vcpu, 0x1000).expect_err("no Xen support");
        assert!(matches!(
            err,
            KvmXenError::Ioctl {
                op: "KVM_XEN_VCPU_SET_ATTR",
                ..
            }
        ));
    }
}
