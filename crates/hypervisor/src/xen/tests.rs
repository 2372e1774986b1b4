//! Hypercall handlers against a mock guest: each family's normal use and
//! hostile arguments (bad ports, frames, vCPUs, unmapped or unaligned
//! addresses, huge counts), and a random-argument run that must not panic.

use xen_abi::errno::*;
use xen_abi::event_channel::*;
use xen_abi::grant_table::*;
use xen_abi::hvm::hvm_op::*;
use xen_abi::hvm::params::*;
use xen_abi::layout::Abi;
use xen_abi::memory::*;
use xen_abi::sched::*;
use xen_abi::vcpu::*;
use xen_abi::version::*;
use xen_abi::xen::*;
use xen_abi::{DomId, EvtchnPort};

use super::guest::mock::MockGuest;
use super::*;
use crate::layout::{
    PAGE_SIZE, SPECIAL_PAGES, SPECIAL_PFN_CONSOLE, SPECIAL_PFN_START, SPECIAL_PFN_XENSTORE,
};

/// Linux's direct map: guest virtual = DIRECT + physical.
const DIRECT: u64 = 0xffff_8880_0000_0000;
/// Scratch page for hypercall arguments (physical 0x10000).
const ARG: u64 = DIRECT + 0x10000;
/// A second scratch area (physical 0x20000).
const BUF: u64 = DIRECT + 0x20000;
/// A virtual address with no mapping.
const UNMAPPED: u64 = 0xffff_c900_dead_0000;
const RAM: u64 = 32 << 20;

fn neg(e: XenErrno) -> u64 {
    e.to_hypercall_ret()
}

struct H {
    dom: XenDomain,
    g: MockGuest,
    now: u64,
}

impl H {
    fn new() -> Self {
        let layout = MemoryLayout::new(RAM).unwrap();
        let mut dom = XenDomain::new(XenDomainConfig {
            domid: DomId(5),
            vcpus: 2,
            layout,
            xen_version: 0x0004_0011,
            handle: *b"0123456789abcdef",
            max_grant_frames: 4,
        });
        let store = dom.connect_host_ring(
            HostRing::XenStore,
            DomId(0),
            EvtchnPort(11),
            SPECIAL_PFN_XENSTORE,
        );
        let cons = dom.connect_host_ring(
            HostRing::Console,
            DomId(0),
            EvtchnPort(12),
            SPECIAL_PFN_CONSOLE,
        );
        assert_eq!((store, cons), (Some(EvtchnPort(1)), Some(EvtchnPort(2))));
        let mut g = MockGuest::new(RAM, DIRECT);
        g.add_range(SPECIAL_PFN_START * PAGE_SIZE, SPECIAL_PAGES * PAGE_SIZE);
        Self {
            dom,
            g,
            now: 1_000_000,
        }
    }

    fn call_on(&mut self, vcpu: u32, nr: u64, args: &[u64]) -> Outcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let ctx = HypercallCtx {
            vcpu,
            longmode: true,
            cpl: 0,
            nr,
            args: a,
            now_ns: self.now,
        };
        self.dom.dispatch(&ctx, &mut self.g)
    }

    fn call(&mut self, nr: u64, args: &[u64]) -> Outcome {
        self.call_on(0, nr, args)
    }

    fn put<T: Abi>(&mut self, gva: u64, v: &T) {
        self.g.write_virt(gva, &v.to_bytes()).unwrap();
    }

    fn get<T: Abi>(&mut self, gva: u64) -> T {
        let mut b = vec![0u8; T::SIZE];
        self.g.read_virt(gva, &mut b).unwrap();
        T::read_from(&b).unwrap()
    }

    /// Issue an event channel op with `arg` at ARG; returns (ret, effects, arg back).
    fn evtchn<T: Abi>(&mut self, cmd: u64, arg: T) -> (u64, Vec<Effect>, T) {
        self.put(ARG, &arg);
        let o = self.call(__HYPERVISOR_event_channel_op, &[cmd, ARG]);
        (o.ret, o.effects, self.get(ARG))
    }

    fn bind_ipi(&mut self, vcpu: u32) -> u32 {
        let (ret, _, a) = self.evtchn(EVTCHNOP_bind_ipi, evtchn_bind_ipi { vcpu, port: 0 });
        assert_eq!(ret, 0);
        a.port
    }

    fn map_shared_info(&mut self, gpfn: u64) {
        self.put(
            ARG,
            &xen_add_to_physmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_shared_info,
                idx: 0,
                gpfn,
            },
        );
        assert_eq!(
            self.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG])
                .ret,
            0
        );
    }
}

// ---- dispatch ----

#[test]
fn dispatch_rejects_user_mode_compat_and_unknown() {
    let mut h = H::new();
    let ctx = HypercallCtx {
        vcpu: 0,
        longmode: true,
        cpl: 3,
        nr: __HYPERVISOR_xen_version,
        args: [0; 6],
        now_ns: 0,
    };
    assert_eq!(h.dom.dispatch(&ctx, &mut h.g).ret, neg(XEN_EPERM));
    let ctx = HypercallCtx {
        cpl: 0,
        longmode: false,
        ..ctx
    };
    assert_eq!(h.dom.dispatch(&ctx, &mut h.g).ret, neg(XEN_ENOSYS));
    for nr in [
        __HYPERVISOR_mmu_update,
        __HYPERVISOR_physdev_op,
        99,
        u64::MAX,
    ] {
        let o = h.call(nr, &[0, 0]);
        assert_eq!(o.ret, neg(XEN_ENOSYS), "nr {nr}");
        assert!(o.effects.is_empty());
    }
}

#[test]
fn vm_assist_runstate_update_flag_only() {
    let mut h = H::new();
    let o = h.call(
        __HYPERVISOR_vm_assist,
        &[VMASST_CMD_enable, VMASST_TYPE_runstate_update_flag],
    );
    assert_eq!(
        (o.ret, o.effects),
        (0, vec![Effect::Vm(VmOp::SetRunstateUpdateFlag(true))])
    );
    let o = h.call(
        __HYPERVISOR_vm_assist,
        &[VMASST_CMD_disable, VMASST_TYPE_runstate_update_flag],
    );
    assert_eq!(
        (o.ret, o.effects),
        (0, vec![Effect::Vm(VmOp::SetRunstateUpdateFlag(false))])
    );
    // PV-only assists, unknown types and commands.
    for (cmd, kind, err) in [
        (
            VMASST_CMD_enable,
            VMASST_TYPE_writable_pagetables,
            XEN_EINVAL,
        ),
        (VMASST_CMD_enable, VMASST_TYPE_m2p_strict, XEN_EINVAL),
        (VMASST_CMD_enable, u64::MAX, XEN_EINVAL),
        (7, VMASST_TYPE_runstate_update_flag, XEN_ENOSYS),
        (u64::MAX, VMASST_TYPE_runstate_update_flag, XEN_ENOSYS),
    ] {
        let o = h.call(__HYPERVISOR_vm_assist, &[cmd, kind]);
        assert_eq!(
            (o.ret, o.effects),
            (neg(err), vec![]),
            "cmd {cmd} type {kind}"
        );
    }
}

#[test]
fn rate_limit() {
    let mut r = RateLimit::new(2);
    let t = Instant::now();
    assert_eq!(r.allow(t), Some(0));
    assert_eq!(r.allow(t), Some(0));
    assert_eq!(r.allow(t), None);
    assert_eq!(r.allow(t), None);
    assert_eq!(
        r.allow(t + Duration::from_secs(1)),
        Some(2),
        "reports what it suppressed"
    );
}

// ---- xen_version ----

#[test]
fn xen_version_queries() {
    let mut h = H::new();
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_version, 0]).ret,
        0x0004_0011
    );
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_pagesize, 0]).ret,
        4096
    );

    h.put(
        ARG,
        &xen_feature_info {
            submap_idx: 0,
            submap: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_get_features, ARG])
            .ret,
        0
    );
    let f: xen_feature_info = h.get(ARG);
    assert_ne!(
        f.submap & (1 << xen_abi::features::XENFEAT_hvm_callback_vector),
        0
    );
    assert_ne!(
        f.submap & (1 << xen_abi::features::XENFEAT_auto_translated_physmap),
        0
    );
    h.put(
        ARG,
        &xen_feature_info {
            submap_idx: 1,
            submap: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_get_features, ARG])
            .ret,
        neg(XEN_EINVAL)
    );

    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_extraversion, ARG])
            .ret,
        0
    );
    let mut ev = [0u8; 16];
    h.g.read_virt(ARG, &mut ev).unwrap();
    assert_eq!(&ev[..8], b".0-rxen\0");
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_guest_handle, ARG])
            .ret,
        0
    );
    h.g.read_virt(ARG, &mut ev).unwrap();
    assert_eq!(&ev, b"0123456789abcdef");

    for cmd in [
        XENVER_extraversion,
        XENVER_capabilities,
        XENVER_get_features,
        XENVER_guest_handle,
    ] {
        assert_eq!(
            h.call(__HYPERVISOR_xen_version, &[cmd, UNMAPPED]).ret,
            neg(XEN_EFAULT)
        );
    }
    // The capabilities string is 1 KiB: it must not spill past a short mapping.
    h.g.map(0x5000_0000, 0x30000);
    assert_eq!(
        h.call(
            __HYPERVISOR_xen_version,
            &[XENVER_capabilities, 0x5000_0d00]
        )
        .ret,
        neg(XEN_EFAULT)
    );
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[XENVER_commandline, ARG])
            .ret,
        neg(XEN_EPERM)
    );
    assert_eq!(
        h.call(__HYPERVISOR_xen_version, &[1000, ARG]).ret,
        neg(XEN_ENOSYS)
    );
}

// ---- memory_op ----

#[test]
fn add_to_physmap_shared_info_and_grant_frames() {
    let mut h = H::new();
    let xatp = |space, idx, gpfn| xen_add_to_physmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    h.put(ARG, &xatp(XENMAPSPACE_shared_info, 0, 0x10));
    let o = h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG]);
    assert_eq!(o.ret, 0);
    assert_eq!(
        o.effects,
        vec![
            Effect::Vm(VmOp::SetSharedInfo { gfn: 0x10 }),
            // Each vCPU's vcpu_info starts in its shared_info slot.
            Effect::Vcpu {
                vcpu: 0,
                op: VcpuOp::SetVcpuInfo(0x10000 + SHARED_INFO_vcpu_info as u64)
            },
            Effect::Vcpu {
                vcpu: 1,
                op: VcpuOp::SetVcpuInfo(0x10000 + SHARED_INFO_vcpu_info as u64 + 64)
            },
        ]
    );
    assert_eq!(h.dom.shared_info_gfn, Some(0x10));

    for (a, err) in [
        (xatp(XENMAPSPACE_shared_info, 1, 0x10), XEN_EINVAL),
        (
            xatp(XENMAPSPACE_shared_info, 0, RAM / PAGE_SIZE),
            XEN_EINVAL,
        ),
        (xatp(XENMAPSPACE_shared_info, 0, 0xd0000), XEN_EINVAL),
        (xatp(XENMAPSPACE_shared_info, 0, u64::MAX), XEN_EINVAL),
        (xatp(XENMAPSPACE_grant_table, 4, 0x20), XEN_EINVAL),
        (xatp(XENMAPSPACE_grant_table, u64::MAX, 0x20), XEN_EINVAL),
        (
            xatp(XENMAPSPACE_grant_table, XENMAPIDX_grant_table_status, 0x20),
            XEN_EINVAL,
        ),
        (xatp(XENMAPSPACE_gmfn, 0, 0x20), XEN_EOPNOTSUPP),
        (xatp(77, 0, 0x20), XEN_EOPNOTSUPP),
        (
            xen_add_to_physmap {
                domid: 0,
                ..xatp(XENMAPSPACE_shared_info, 0, 0x10)
            },
            XEN_EPERM,
        ),
    ] {
        h.put(ARG, &a);
        let o = h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG]);
        assert_eq!(o.ret, neg(err), "{a:?}");
        assert!(o.effects.is_empty());
    }
    assert_eq!(
        h.dom.shared_info_gfn,
        Some(0x10),
        "failed calls change nothing"
    );

    for idx in 0..3 {
        h.put(ARG, &xatp(XENMAPSPACE_grant_table, idx, 0x100 + idx));
        assert_eq!(
            h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG])
                .ret,
            0
        );
    }
    assert_eq!(h.dom.gnttab.nr_frames(), 3);
    let layout = h.dom.config().layout;
    assert_eq!(
        h.dom.gnttab.entry_file_offset(513, &layout),
        Some(0x101 * 4096 + 8)
    );
    assert_eq!(h.dom.gnttab.entry_file_offset(3 * 512, &layout), None);
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, UNMAPPED])
            .ret,
        neg(XEN_EFAULT)
    );
    // Continuation bits in cmd.
    assert_eq!(
        h.call(
            __HYPERVISOR_memory_op,
            &[XENMEM_add_to_physmap | (5 << 6), ARG]
        )
        .ret,
        neg(XEN_EINVAL)
    );
}

#[test]
fn memory_map_and_reservations() {
    let mut h = H::new();
    let want = h.dom.config().layout.memory_map();
    h.put(
        ARG,
        &xen_memory_map {
            nr_entries: 2,
            buffer: BUF,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_memory_map, ARG])
            .ret,
        0
    );
    assert_eq!(h.get::<xen_memory_map>(ARG).nr_entries, 2);
    let mut raw = vec![0u8; 3 * E820_ENTRY_SIZE];
    h.g.read_virt(BUF, &mut raw).unwrap();
    assert_eq!(E820Entry::from_bytes(&raw[20..]), Some(want[1]));
    assert_eq!(&raw[40..60], &[0u8; 20], "only two entries written");

    h.put(
        ARG,
        &xen_memory_map {
            nr_entries: u32::MAX,
            buffer: BUF,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_memory_map, ARG])
            .ret,
        0
    );
    assert_eq!(h.get::<xen_memory_map>(ARG).nr_entries as usize, want.len());

    h.put(
        ARG,
        &xen_memory_map {
            nr_entries: 4,
            buffer: UNMAPPED,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_memory_map, ARG])
            .ret,
        neg(XEN_EFAULT)
    );

    h.put(ARG, &xen_memory_domain { domid: DOMID_SELF });
    let pages = h
        .call(__HYPERVISOR_memory_op, &[XENMEM_current_reservation, ARG])
        .ret;
    assert_eq!(pages, h.dom.config().layout.usable_ram() / PAGE_SIZE);
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_maximum_gpfn, ARG])
            .ret,
        0xfefff
    );
    h.put(ARG, &xen_memory_domain { domid: 3 });
    assert_eq!(
        h.call(__HYPERVISOR_memory_op, &[XENMEM_current_reservation, ARG])
            .ret,
        neg(XEN_EPERM)
    );
    for cmd in [
        XENMEM_increase_reservation,
        XENMEM_decrease_reservation,
        XENMEM_populate_physmap,
        63,
    ] {
        assert_eq!(
            h.call(__HYPERVISOR_memory_op, &[cmd, ARG]).ret,
            neg(XEN_ENOSYS)
        );
    }
}

// ---- hvm_op ----

#[test]
fn hvm_params() {
    let mut h = H::new();
    let get = |h: &mut H, index: u32| {
        h.put(
            ARG,
            &xen_hvm_param {
                domid: DOMID_SELF,
                pad: 0,
                index,
                value: 0xdead,
            },
        );
        let ret = h.call(__HYPERVISOR_hvm_op, &[HVMOP_get_param, ARG]).ret;
        (ret, h.get::<xen_hvm_param>(ARG).value)
    };
    assert_eq!(get(&mut h, HVM_PARAM_STORE_PFN), (0, SPECIAL_PFN_XENSTORE));
    assert_eq!(get(&mut h, HVM_PARAM_STORE_EVTCHN), (0, 1));
    assert_eq!(get(&mut h, HVM_PARAM_CONSOLE_PFN), (0, SPECIAL_PFN_CONSOLE));
    assert_eq!(get(&mut h, HVM_PARAM_CONSOLE_EVTCHN), (0, 2));
    assert_eq!(get(&mut h, HVM_PARAM_PAE_ENABLED), (0, 0));
    assert_eq!(get(&mut h, HVM_NR_PARAMS).0, neg(XEN_EINVAL));
    assert_eq!(get(&mut h, u32::MAX).0, neg(XEN_EINVAL));

    let set = |h: &mut H, domid: u16, index: u32, value: u64| {
        h.put(
            ARG,
            &xen_hvm_param {
                domid,
                pad: 0,
                index,
                value,
            },
        );
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_set_param, ARG])
    };
    let o = set(
        &mut h,
        DOMID_SELF,
        HVM_PARAM_CALLBACK_IRQ,
        0x0200_0000_0000_00f3,
    );
    assert_eq!(
        (o.ret, o.effects),
        (0, vec![Effect::Vm(VmOp::SetUpcallVector(0xf3))])
    );
    assert_eq!(
        get(&mut h, HVM_PARAM_CALLBACK_IRQ),
        (0, 0x0200_0000_0000_00f3)
    );
    assert_eq!(
        set(&mut h, DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, 0).effects,
        vec![Effect::Vm(VmOp::SetUpcallVector(0))]
    );
    for (domid, index, value, err) in [
        (DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, 9, XEN_EINVAL),
        (
            DOMID_SELF,
            HVM_PARAM_CALLBACK_IRQ,
            0x0200_0000_0000_0002,
            XEN_EINVAL,
        ),
        (
            DOMID_SELF,
            HVM_PARAM_CALLBACK_IRQ,
            0x0100_0000_0000_0001,
            XEN_EINVAL,
        ),
        (DOMID_SELF, HVM_PARAM_STORE_PFN, 0x10, XEN_EPERM),
        (DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN, 3, XEN_EPERM),
        (DOMID_SELF, HVM_NR_PARAMS, 0, XEN_EINVAL),
        (0, HVM_PARAM_CALLBACK_IRQ, 0, XEN_EPERM),
    ] {
        let o = set(&mut h, domid, index, value);
        assert_eq!(o.ret, neg(err), "param {index} = {value:#x}");
        assert!(o.effects.is_empty());
    }
    assert_eq!(
        get(&mut h, HVM_PARAM_STORE_PFN).1,
        SPECIAL_PFN_XENSTORE,
        "unchanged"
    );
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_get_param, UNMAPPED])
            .ret,
        neg(XEN_EFAULT)
    );
}

#[test]
fn hvm_upcall_vector_time_and_others() {
    let mut h = H::new();
    h.put(
        ARG,
        &xen_hvm_evtchn_upcall_vector {
            vcpu: 1,
            vector: 0xf3,
        },
    );
    let o = h.call(__HYPERVISOR_hvm_op, &[HVMOP_set_evtchn_upcall_vector, ARG]);
    assert_eq!(
        (o.ret, o.effects),
        (
            0,
            vec![Effect::Vcpu {
                vcpu: 1,
                op: VcpuOp::SetUpcallVector(0xf3)
            }]
        )
    );
    h.put(
        ARG,
        &xen_hvm_evtchn_upcall_vector {
            vcpu: 2,
            vector: 0xf3,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_set_evtchn_upcall_vector, ARG])
            .ret,
        neg(XEN_ENOENT)
    );
    h.put(ARG, &xen_hvm_evtchn_upcall_vector { vcpu: 0, vector: 3 });
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_set_evtchn_upcall_vector, ARG])
            .ret,
        neg(XEN_EINVAL)
    );

    h.now = 123_456_789;
    assert_eq!(h.call(__HYPERVISOR_hvm_op, &[HVMOP_get_time, ARG]).ret, 0);
    assert_eq!(h.get::<xen_hvm_get_time>(ARG).now, 123_456_789);
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_get_time, UNMAPPED]).ret,
        neg(XEN_EFAULT)
    );
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[HVMOP_pagetable_dying, ARG])
            .ret,
        neg(XEN_ENOSYS)
    );
    assert_eq!(
        h.call(__HYPERVISOR_hvm_op, &[u64::MAX, ARG]).ret,
        neg(XEN_ENOSYS)
    );
}

// ---- event_channel_op ----

#[test]
fn evtchn_alloc_bind_loopback_send_close() {
    let mut h = H::new();
    let (ret, _, a) = h.evtchn(
        EVTCHNOP_alloc_unbound,
        evtchn_alloc_unbound {
            dom: DOMID_SELF,
            remote_dom: DOMID_SELF,
            port: 0,
        },
    );
    assert_eq!(
        (ret, a.port),
        (0, 3),
        "ports 1 and 2 belong to the XenStore and console rings"
    );
    let unbound = a.port;

    let (ret, effects, b) = h.evtchn(
        EVTCHNOP_bind_interdomain,
        evtchn_bind_interdomain {
            remote_dom: DOMID_SELF,
            remote_port: unbound,
            local_port: 0,
        },
    );
    assert_eq!(ret, 0);
    let local = b.local_port;
    assert_eq!(local, 4);
    assert_eq!(
        effects,
        vec![
            Effect::Vm(VmOp::RoutePort {
                port: 4,
                target: EvtchnTarget::Port { port: 3, vcpu: 0 }
            }),
            Effect::Vm(VmOp::RoutePort {
                port: 3,
                target: EvtchnTarget::Port { port: 4, vcpu: 0 }
            }),
        ]
    );
    // Binding the same unbound port twice fails.
    let (ret, ..) = h.evtchn(
        EVTCHNOP_bind_interdomain,
        evtchn_bind_interdomain {
            remote_dom: DOMID_SELF,
            remote_port: unbound,
            local_port: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EINVAL));

    // Moving port 3 to vCPU 1 re-routes its peer's sends there.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_bind_vcpu, evtchn_bind_vcpu { port: 3, vcpu: 1 });
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![Effect::Vm(VmOp::RoutePort {
            port: 4,
            target: EvtchnTarget::Port { port: 3, vcpu: 1 }
        })]
    );
    let (ret, effects, _) = h.evtchn(EVTCHNOP_send, evtchn_send { port: 4 });
    assert_eq!(
        (ret, effects),
        (0, vec![Effect::Vm(VmOp::RaisePort { port: 3, vcpu: 1 })])
    );

    let (ret, _, s) = h.evtchn(
        EVTCHNOP_status,
        evtchn_status {
            dom: DOMID_SELF,
            port: 4,
            status: 9,
            vcpu: 9,
            u_dom: 9,
            u_pad: 9,
            u_word: 9,
        },
    );
    assert_eq!(ret, 0);
    assert_eq!(
        (s.status, s.u_dom, s.u_word, s.vcpu),
        (EVTCHNSTAT_interdomain, 5, 3, 0)
    );

    let (ret, effects, _) = h.evtchn(EVTCHNOP_close, evtchn_close { port: 4 });
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![
            Effect::Vm(VmOp::UnroutePort(4)),
            Effect::Vm(VmOp::UnroutePort(3))
        ]
    );
    assert_eq!(
        h.dom.evtchn.port(3).unwrap().state,
        evtchn::PortState::Unbound { remote: DomId(5) }
    );
    let (ret, ..) = h.evtchn(EVTCHNOP_close, evtchn_close { port: 4 });
    assert_eq!(ret, neg(XEN_EINVAL), "already closed");
    let (ret, _, s) = h.evtchn(
        EVTCHNOP_status,
        evtchn_status {
            dom: DOMID_SELF,
            port: 4,
            status: 9,
            vcpu: 0,
            u_dom: 0,
            u_pad: 0,
            u_word: 0,
        },
    );
    assert_eq!((ret, s.status), (0, EVTCHNSTAT_closed));
    // Sends on an unbound port are dropped, as on Xen.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_send, evtchn_send { port: 3 });
    assert_eq!((ret, effects), (0, vec![]));
}

#[test]
fn evtchn_ipi_virq_and_host_ports() {
    let mut h = H::new();
    let (ret, effects, a) = h.evtchn(EVTCHNOP_bind_ipi, evtchn_bind_ipi { vcpu: 1, port: 0 });
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![Effect::Vm(VmOp::RoutePort {
            port: a.port,
            target: EvtchnTarget::Port {
                port: a.port,
                vcpu: 1
            }
        })]
    );
    let (_, effects, _) = h.evtchn(EVTCHNOP_send, evtchn_send { port: a.port });
    assert_eq!(
        effects,
        vec![Effect::Vm(VmOp::RaisePort {
            port: a.port,
            vcpu: 1
        })]
    );
    let (ret, ..) = h.evtchn(
        EVTCHNOP_bind_vcpu,
        evtchn_bind_vcpu {
            port: a.port,
            vcpu: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EINVAL), "IPIs stay on their vCPU");

    let (ret, effects, t) = h.evtchn(
        EVTCHNOP_bind_virq,
        evtchn_bind_virq {
            virq: VIRQ_TIMER,
            vcpu: 1,
            port: 0,
        },
    );
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![Effect::Vcpu {
            vcpu: 1,
            op: VcpuOp::SetTimer {
                port: t.port,
                expires_ns: 0
            }
        }]
    );
    assert_eq!(h.dom.vcpus[1].timer_port, Some(t.port));
    let (ret, ..) = h.evtchn(
        EVTCHNOP_bind_virq,
        evtchn_bind_virq {
            virq: VIRQ_TIMER,
            vcpu: 1,
            port: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EEXIST));
    let (_, _, s) = h.evtchn(
        EVTCHNOP_status,
        evtchn_status {
            dom: DOMID_SELF,
            port: t.port,
            status: 0,
            vcpu: 0,
            u_dom: 0,
            u_pad: 0,
            u_word: 0,
        },
    );
    assert_eq!(
        (s.status, s.vcpu, s.u_dom),
        (EVTCHNSTAT_virq, 1, VIRQ_TIMER as u16)
    );
    let (ret, ..) = h.evtchn(EVTCHNOP_send, evtchn_send { port: t.port });
    assert_eq!(ret, neg(XEN_EINVAL), "cannot send on a VIRQ port");
    let (ret, effects, _) = h.evtchn(EVTCHNOP_close, evtchn_close { port: t.port });
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![Effect::Vcpu {
            vcpu: 1,
            op: VcpuOp::SetTimer {
                port: 0,
                expires_ns: 0
            }
        }]
    );
    assert_eq!(h.dom.vcpus[1].timer_port, None);

    for (virq, vcpu, err) in [
        (VIRQ_CONSOLE, 1, XEN_EINVAL),
        (NR_VIRQS, 0, XEN_EINVAL),
        (u32::MAX, 0, XEN_EINVAL),
        (VIRQ_TIMER, 2, XEN_ENOENT),
        (VIRQ_TIMER, u32::MAX, XEN_ENOENT),
    ] {
        let (ret, effects, _) = h.evtchn(
            EVTCHNOP_bind_virq,
            evtchn_bind_virq {
                virq,
                vcpu,
                port: 0,
            },
        );
        assert_eq!(ret, neg(err), "virq {virq} vcpu {vcpu}");
        assert!(effects.is_empty());
    }
    let (ret, ..) = h.evtchn(
        EVTCHNOP_bind_virq,
        evtchn_bind_virq {
            virq: VIRQ_CONSOLE,
            vcpu: 0,
            port: 0,
        },
    );
    assert_eq!(ret, 0);

    // The XenStore port talks to a host-side peer.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_send, evtchn_send { port: 1 });
    assert_eq!(
        (ret, effects),
        (
            0,
            vec![Effect::Notify {
                port: EvtchnPort(1),
                remote_dom: DomId(0),
                remote_port: EvtchnPort(11)
            }]
        )
    );
    assert_eq!(
        h.dom.evtchn.notify_from_host(EvtchnPort(2)),
        Some(Effect::Vm(VmOp::RaisePort { port: 2, vcpu: 0 }))
    );
    assert_eq!(
        h.dom.evtchn.notify_from_host(EvtchnPort(a.port)),
        None,
        "an IPI is not a host port"
    );
    assert_eq!(h.dom.evtchn.notify_from_host(EvtchnPort(4095)), None);
    assert_eq!(h.dom.evtchn.notify_from_host(EvtchnPort(0)), None);
}

#[test]
fn evtchn_hostile_arguments() {
    let mut h = H::new();
    for port in [0, 500, 4096, u32::MAX] {
        for cmd in [EVTCHNOP_send, EVTCHNOP_close, EVTCHNOP_unmask] {
            let (ret, effects, _) = h.evtchn(cmd, evtchn_port_arg { port });
            assert_eq!(ret, neg(XEN_EINVAL), "cmd {cmd} port {port}");
            assert!(effects.is_empty());
        }
        let (ret, ..) = h.evtchn(EVTCHNOP_bind_vcpu, evtchn_bind_vcpu { port, vcpu: 0 });
        assert_eq!(ret, neg(XEN_EINVAL));
        let (ret, ..) = h.evtchn(
            EVTCHNOP_bind_interdomain,
            evtchn_bind_interdomain {
                remote_dom: DOMID_SELF,
                remote_port: port,
                local_port: 0,
            },
        );
        assert_eq!(ret, neg(XEN_EINVAL));
    }
    let (ret, ..) = h.evtchn(
        EVTCHNOP_status,
        evtchn_status {
            dom: DOMID_SELF,
            port: 4096,
            status: 0,
            vcpu: 0,
            u_dom: 0,
            u_pad: 0,
            u_word: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EINVAL));
    let (ret, ..) = h.evtchn(
        EVTCHNOP_status,
        evtchn_status {
            dom: 0,
            port: 1,
            status: 0,
            vcpu: 0,
            u_dom: 0,
            u_pad: 0,
            u_word: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EPERM));
    let (ret, ..) = h.evtchn(
        EVTCHNOP_alloc_unbound,
        evtchn_alloc_unbound {
            dom: 7,
            remote_dom: 0,
            port: 0,
        },
    );
    assert_eq!(ret, neg(XEN_EPERM));
    let (ret, ..) = h.evtchn(
        EVTCHNOP_alloc_unbound,
        evtchn_alloc_unbound {
            dom: DOMID_SELF,
            remote_dom: DOMID_INVALID,
            port: 0,
        },
    );
    assert_eq!(ret, neg(XEN_ESRCH));
    let (ret, ..) = h.evtchn(
        EVTCHNOP_bind_interdomain,
        evtchn_bind_interdomain {
            remote_dom: 0,
            remote_port: 11,
            local_port: 0,
        },
    );
    assert_eq!(ret, neg(XEN_ESRCH));
    let (ret, ..) = h.evtchn(EVTCHNOP_bind_ipi, evtchn_bind_ipi { vcpu: 2, port: 0 });
    assert_eq!(ret, neg(XEN_ENOENT));
    for cmd in [
        EVTCHNOP_init_control,
        EVTCHNOP_expand_array,
        EVTCHNOP_set_priority,
        EVTCHNOP_bind_pirq,
        14,
        u64::MAX,
    ] {
        assert_eq!(
            h.call(__HYPERVISOR_event_channel_op, &[cmd, ARG]).ret,
            neg(XEN_ENOSYS)
        );
    }
    // Unmapped argument, and an argument straddling into an unmapped page.
    assert_eq!(
        h.call(
            __HYPERVISOR_event_channel_op,
            &[EVTCHNOP_bind_ipi, UNMAPPED]
        )
        .ret,
        neg(XEN_EFAULT)
    );
    h.g.map(0x6000_0000, 0x40000);
    h.g.write_virt(0x6000_0ffc, &[0u8; 4]).unwrap();
    assert_eq!(
        h.call(
            __HYPERVISOR_event_channel_op,
            &[EVTCHNOP_bind_ipi, 0x6000_0ffc]
        )
        .ret,
        neg(XEN_EFAULT)
    );
    assert_eq!(h.dom.evtchn.port(3), None, "nothing was allocated");

    // The port space is finite.
    let mut last = 0;
    loop {
        let (ret, _, a) = h.evtchn(
            EVTCHNOP_alloc_unbound,
            evtchn_alloc_unbound {
                dom: DOMID_SELF,
                remote_dom: 0,
                port: 0,
            },
        );
        if ret != 0 {
            assert_eq!(ret, neg(XEN_ENOSPC));
            break;
        }
        last = a.port;
    }
    assert_eq!(last, EVTCHN_2L_NR_CHANNELS - 1);
}

#[test]
fn evtchn_output_fault_undoes_allocation() {
    let mut h = H::new();
    // The argument is readable but its page is read-only: the port number
    // cannot be written back, so nothing may stay allocated or routed.
    h.g.map(0x7000_0000, 0x40000);
    h.g.write_virt(
        0x7000_0000,
        &evtchn_bind_ipi { vcpu: 0, port: 0 }.to_bytes(),
    )
    .unwrap();
    h.g.protect(0x7000_0000);
    let o = h.call(
        __HYPERVISOR_event_channel_op,
        &[EVTCHNOP_bind_ipi, 0x7000_0000],
    );
    assert_eq!((o.ret, o.effects), (neg(XEN_EFAULT), vec![]));
    assert!(
        h.dom
            .evtchn
            .port(3)
            .is_none_or(|p| p.state == evtchn::PortState::Closed)
    );
    h.g.map(0x7000_1000, 0x41000);
    let arg = evtchn_alloc_unbound {
        dom: DOMID_SELF,
        remote_dom: 0,
        port: 0,
    };
    h.g.write_virt(0x7000_1000, &arg.to_bytes()).unwrap();
    h.g.protect(0x7000_1000);
    let o = h.call(
        __HYPERVISOR_event_channel_op,
        &[EVTCHNOP_alloc_unbound, 0x7000_1000],
    );
    assert_eq!(o.ret, neg(XEN_EFAULT));
    assert!(
        h.dom
            .evtchn
            .port(3)
            .is_none_or(|p| p.state == evtchn::PortState::Closed)
    );
}

#[test]
fn evtchn_unmask_redelivers_pending_port() {
    let mut h = H::new();
    let si_gfn = 0x30;
    h.map_shared_info(si_gfn);
    let si = si_gfn * PAGE_SIZE;
    let port = h.bind_ipi(1);
    let word = u64::from(port / 64) * 8;
    let bit = 1u64 << (port % 64);
    // Masked and pending, as after a send while masked.
    h.g.poke(
        si + SHARED_INFO_evtchn_mask as u64 + word,
        &bit.to_le_bytes(),
    );
    h.g.poke(
        si + SHARED_INFO_evtchn_pending as u64 + word,
        &bit.to_le_bytes(),
    );
    let (ret, effects, _) = h.evtchn(EVTCHNOP_unmask, evtchn_unmask { port });
    assert_eq!((ret, effects), (0, vec![Effect::Kick(1)]));
    assert_eq!(
        h.g.peek(si + SHARED_INFO_evtchn_mask as u64 + word, 8),
        0u64.to_le_bytes()
    );
    let vi = si + 64; // vCPU 1's slot in shared_info
    assert_eq!(
        h.g.peek(vi + VCPU_INFO_evtchn_pending_sel as u64, 8),
        (1u64 << (port / 64)).to_le_bytes()
    );
    assert_eq!(
        h.g.peek(vi + VCPU_INFO_evtchn_upcall_pending as u64, 1),
        [1]
    );
    // Unmasking again: not masked any more, nothing to do.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_unmask, evtchn_unmask { port });
    assert_eq!((ret, effects), (0, vec![]));

    // With a registered vcpu_info, that is where the bits go.
    h.put(
        ARG,
        &vcpu_register_vcpu_info {
            mfn: 0x40,
            offset: 0x100,
            rsvd: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_register_vcpu_info, 1, ARG])
            .ret,
        0
    );
    h.g.poke(vi + VCPU_INFO_evtchn_pending_sel as u64, &[0; 8]);
    h.g.poke(
        si + SHARED_INFO_evtchn_mask as u64 + word,
        &bit.to_le_bytes(),
    );
    let (_, effects, _) = h.evtchn(EVTCHNOP_unmask, evtchn_unmask { port });
    assert_eq!(effects, vec![Effect::Kick(1)]);
    assert_eq!(h.g.peek(0x40 * PAGE_SIZE + 0x100, 1), [1]);
    assert_eq!(
        h.g.peek(vi + VCPU_INFO_evtchn_pending_sel as u64, 8),
        [0; 8],
        "the shared_info slot is no longer used"
    );
}

#[test]
fn evtchn_reset_keeps_toolstack_ports() {
    let mut h = H::new();
    let ipi = h.bind_ipi(0);
    let (ret, effects, _) = h.evtchn(EVTCHNOP_reset, evtchn_reset { dom: DOMID_SELF });
    assert_eq!(ret, 0);
    assert_eq!(effects, vec![Effect::Vm(VmOp::UnroutePort(ipi))]);
    assert_eq!(
        h.dom.evtchn.port(ipi).unwrap().state,
        evtchn::PortState::Closed
    );
    assert!(matches!(
        h.dom.evtchn.port(1).unwrap().state,
        evtchn::PortState::Interdomain { .. }
    ));
    let (ret, ..) = h.evtchn(EVTCHNOP_reset, evtchn_reset { dom: 9 });
    assert_eq!(ret, neg(XEN_EPERM));
}

// ---- grant_table_op ----

#[test]
fn grant_table_queries_and_versions() {
    let mut h = H::new();
    h.put(
        ARG,
        &gnttab_query_size {
            dom: DOMID_SELF,
            nr_frames: 0,
            max_nr_frames: 0,
            status: 99,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_query_size, ARG, 1])
            .ret,
        0
    );
    let q: gnttab_query_size = h.get(ARG);
    assert_eq!((q.nr_frames, q.max_nr_frames, q.status), (0, 4, GNTST_okay));
    h.put(
        ARG,
        &gnttab_query_size {
            dom: 0,
            nr_frames: 0,
            max_nr_frames: 0,
            status: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_query_size, ARG, 1])
            .ret,
        0
    );
    assert_eq!(h.get::<gnttab_query_size>(ARG).status, GNTST_bad_domain);
    for count in [0, 2, u64::MAX] {
        for cmd in [
            GNTTABOP_query_size,
            GNTTABOP_setup_table,
            GNTTABOP_set_version,
            GNTTABOP_get_version,
        ] {
            assert_eq!(
                h.call(__HYPERVISOR_grant_table_op, &[cmd, ARG, count]).ret,
                neg(XEN_EINVAL)
            );
        }
    }
    assert_eq!(
        h.call(
            __HYPERVISOR_grant_table_op,
            &[GNTTABOP_query_size, UNMAPPED, 1]
        )
        .ret,
        neg(XEN_EFAULT)
    );

    for (asked, ret) in [
        (1, 0),
        (2, neg(XEN_ENOSYS)),
        (0, neg(XEN_EINVAL)),
        (u32::MAX, neg(XEN_EINVAL)),
    ] {
        h.put(ARG, &gnttab_set_version { version: asked });
        assert_eq!(
            h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_set_version, ARG, 1])
                .ret,
            ret
        );
        assert_eq!(
            h.get::<gnttab_set_version>(ARG).version,
            1,
            "reports the version in force"
        );
    }
    h.put(
        ARG,
        &gnttab_get_version {
            dom: DOMID_SELF,
            pad: 0,
            version: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_get_version, ARG, 1])
            .ret,
        0
    );
    assert_eq!(h.get::<gnttab_get_version>(ARG).version, 1);
    for cmd in [
        GNTTABOP_map_grant_ref,
        GNTTABOP_copy,
        GNTTABOP_get_status_frames,
        1000,
    ] {
        assert_eq!(
            h.call(__HYPERVISOR_grant_table_op, &[cmd, ARG, 1]).ret,
            neg(XEN_ENOSYS)
        );
    }
}

#[test]
fn grant_setup_table() {
    let mut h = H::new();
    let setup = |h: &mut H, nr_frames: u32, frame_list: u64| {
        h.put(
            ARG,
            &gnttab_setup_table {
                dom: DOMID_SELF,
                nr_frames,
                status: 99,
                frame_list,
            },
        );
        assert_eq!(
            h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_setup_table, ARG, 1])
                .ret,
            0
        );
        h.get::<gnttab_setup_table>(ARG).status
    };
    assert_eq!(
        setup(&mut h, 1, BUF),
        GNTST_general_error,
        "frame 0 not placed yet"
    );
    for idx in 0..2 {
        h.put(
            ARG,
            &xen_add_to_physmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_grant_table,
                idx,
                gpfn: 0x200 + idx,
            },
        );
        assert_eq!(
            h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG])
                .ret,
            0
        );
    }
    assert_eq!(setup(&mut h, 2, BUF), GNTST_okay);
    let mut b = [0u8; 16];
    h.g.read_virt(BUF, &mut b).unwrap();
    assert_eq!(b[..8], 0x200u64.to_le_bytes());
    assert_eq!(b[8..], 0x201u64.to_le_bytes());
    assert_eq!(setup(&mut h, 3, BUF), GNTST_general_error);
    assert_eq!(setup(&mut h, u32::MAX, BUF), GNTST_general_error);
    assert_eq!(setup(&mut h, 2, UNMAPPED), GNTST_bad_virt_addr);
    h.put(
        ARG,
        &gnttab_setup_table {
            dom: 1,
            nr_frames: 1,
            status: 0,
            frame_list: BUF,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_setup_table, ARG, 1])
            .ret,
        0
    );
    assert_eq!(h.get::<gnttab_setup_table>(ARG).status, GNTST_bad_domain);
}

// ---- sched_op ----

#[test]
fn sched_yield_block_shutdown() {
    let mut h = H::new();
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_yield, 0]).effects,
        vec![Effect::Yield]
    );
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_block, 0]).effects,
        vec![Effect::Block]
    );
    for reason in [
        SHUTDOWN_poweroff,
        SHUTDOWN_reboot,
        SHUTDOWN_suspend,
        SHUTDOWN_crash,
        SHUTDOWN_watchdog,
        SHUTDOWN_soft_reset,
    ] {
        h.put(ARG, &sched_shutdown { reason });
        let o = h.call(__HYPERVISOR_sched_op, &[SCHEDOP_shutdown, ARG]);
        assert_eq!((o.ret, o.effects), (0, vec![Effect::Shutdown(reason)]));
    }
    for reason in [6, u32::MAX] {
        h.put(ARG, &sched_shutdown { reason });
        let o = h.call(__HYPERVISOR_sched_op, &[SCHEDOP_shutdown, ARG]);
        assert_eq!((o.ret, o.effects), (neg(XEN_EINVAL), vec![]));
    }
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_shutdown, UNMAPPED])
            .ret,
        neg(XEN_EFAULT)
    );
    h.put(
        ARG,
        &sched_shutdown {
            reason: SHUTDOWN_crash,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_shutdown_code, ARG])
            .ret,
        0
    );
    assert_eq!(h.dom.shutdown_code, Some(SHUTDOWN_crash));
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_remote_shutdown, ARG])
            .ret,
        neg(XEN_EPERM)
    );
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[99, ARG]).ret,
        neg(XEN_ENOSYS)
    );
}

#[test]
fn sched_poll_checks_ports() {
    let mut h = H::new();
    let ipi = h.bind_ipi(0);
    h.g.write_virt(BUF, &[ipi.to_le_bytes(), 1u32.to_le_bytes()].concat())
        .unwrap();
    h.put(
        ARG,
        &sched_poll {
            ports: BUF,
            nr_ports: 2,
            timeout: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_poll, ARG]).effects,
        vec![Effect::Yield]
    );
    for (ports, nr_ports, err) in [
        (BUF, 129, XEN_EINVAL),
        (BUF, u32::MAX, XEN_EINVAL),
        (UNMAPPED, 1, XEN_EFAULT),
    ] {
        h.put(
            ARG,
            &sched_poll {
                ports,
                nr_ports,
                timeout: 0,
            },
        );
        assert_eq!(
            h.call(__HYPERVISOR_sched_op, &[SCHEDOP_poll, ARG]).ret,
            neg(err)
        );
    }
    h.g.write_virt(BUF, &4000u32.to_le_bytes()).unwrap();
    h.put(
        ARG,
        &sched_poll {
            ports: BUF,
            nr_ports: 1,
            timeout: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_poll, ARG]).ret,
        neg(XEN_EINVAL)
    );
}

#[test]
fn sched_watchdogs() {
    let mut h = H::new();
    let wd = |h: &mut H, id: u32, timeout: u32| {
        h.put(ARG, &sched_watchdog { id, timeout });
        h.call(__HYPERVISOR_sched_op, &[SCHEDOP_watchdog, ARG])
    };
    let o = wd(&mut h, 0, 30);
    assert_eq!(
        (o.ret, o.effects),
        (1, vec![Effect::Watchdog { id: 1, timeout: 30 }])
    );
    assert_eq!(wd(&mut h, 0, 30).ret, 2);
    assert_eq!(wd(&mut h, 0, 30).ret, neg(XEN_ENOSPC));
    assert_eq!(wd(&mut h, 3, 30).ret, neg(XEN_EINVAL));
    assert_eq!(wd(&mut h, u32::MAX, 0).ret, neg(XEN_EINVAL));
    assert_eq!(
        wd(&mut h, 1, 60).effects,
        vec![Effect::Watchdog { id: 1, timeout: 60 }]
    );
    assert_eq!(wd(&mut h, 1, 0).ret, 0);
    assert_eq!(wd(&mut h, 1, 10).ret, neg(XEN_EINVAL), "freed");
    assert_eq!(wd(&mut h, 0, 5).ret, 1, "reused");
}

// ---- vcpu_op ----

#[test]
fn vcpu_register_vcpu_info() {
    let mut h = H::new();
    let reg = |h: &mut H, vcpu: u64, mfn: u64, offset: u32| {
        h.put(
            ARG,
            &vcpu_register_vcpu_info {
                mfn,
                offset,
                rsvd: 0,
            },
        );
        h.call(
            __HYPERVISOR_vcpu_op,
            &[VCPUOP_register_vcpu_info, vcpu, ARG],
        )
    };
    for (vcpu, mfn, offset, err) in [
        (0, 0x40, 4096 - 32, XEN_EINVAL),
        (0, 0x40, 4, XEN_EINVAL),
        (0, RAM / PAGE_SIZE, 0, XEN_EINVAL),
        (0, u64::MAX, 0, XEN_EINVAL),
        (0, u64::MAX / 4096 + 1, 0, XEN_EINVAL),
        (2, 0x40, 0, XEN_ENOENT),
        (u64::MAX, 0x40, 0, XEN_ENOENT),
    ] {
        let o = reg(&mut h, vcpu, mfn, offset);
        assert_eq!(
            (o.ret, o.effects),
            (neg(err), vec![]),
            "vcpu {vcpu} mfn {mfn:#x} offset {offset}"
        );
    }
    let o = reg(&mut h, 1, 0x40, 0x40);
    assert_eq!(
        (o.ret, o.effects),
        (
            0,
            vec![Effect::Vcpu {
                vcpu: 1,
                op: VcpuOp::SetVcpuInfo(0x40040)
            }]
        )
    );
    assert_eq!(reg(&mut h, 1, 0x41, 0).ret, neg(XEN_EINVAL), "only once");
    assert_eq!(h.dom.vcpu_info_gpa(1), Some(0x40040));
    assert_eq!(h.dom.vcpu_info_gpa(0), None, "no shared_info yet");
    // Mapping shared_info points only the unregistered vCPU 0 at its slot.
    h.put(
        ARG,
        &xen_add_to_physmap {
            domid: DOMID_SELF,
            size: 0,
            space: XENMAPSPACE_shared_info,
            idx: 0,
            gpfn: 0x30,
        },
    );
    let o = h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG]);
    assert_eq!(
        o.effects,
        vec![
            Effect::Vm(VmOp::SetSharedInfo { gfn: 0x30 }),
            Effect::Vcpu {
                vcpu: 0,
                op: VcpuOp::SetVcpuInfo(0x30000)
            }
        ]
    );
    assert_eq!(h.dom.vcpu_info_gpa(0), Some(0x30000));
    assert_eq!(h.dom.vcpu_info_gpa(7), None);
}

/// The XenStore and console ports are routed to host services by the
/// domain process: a guest closing one undoes that route (and a later
/// port with the same number is the guest's own).
#[test]
fn closing_a_toolstack_port_unroutes_it() {
    let mut h = H::new();
    let (ret, effects, _) = h.evtchn(EVTCHNOP_close, evtchn_close { port: 2 });
    assert_eq!(ret, 0);
    assert_eq!(effects, vec![Effect::Vm(VmOp::UnroutePort(2))]);
    assert_eq!(
        h.dom.evtchn.port(2).unwrap().state,
        evtchn::PortState::Closed
    );
    assert_eq!(h.dom.evtchn.notify_from_host(EvtchnPort(2)), None);
    // Reset leaves the remaining toolstack port alone.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_reset, evtchn_reset { dom: DOMID_SELF });
    assert_eq!((ret, effects), (0, vec![]));
    assert!(h.dom.evtchn.notify_from_host(EvtchnPort(1)).is_some());
}

#[test]
fn vcpu_runstate_and_time_areas_are_translated() {
    let mut h = H::new();
    for (cmd, make) in [
        (
            VCPUOP_register_runstate_memory_area,
            VcpuOp::SetRunstate as fn(u64) -> VcpuOp,
        ),
        (
            VCPUOP_register_vcpu_time_memory_area,
            VcpuOp::SetTimeInfo as fn(u64) -> VcpuOp,
        ),
    ] {
        // The area is given by virtual address; KVM gets the physical one.
        h.put(
            ARG,
            &vcpu_register_runstate_memory_area {
                addr: DIRECT + 0x5_0100,
            },
        );
        let o = h.call(__HYPERVISOR_vcpu_op, &[cmd, 1, ARG]);
        assert_eq!(
            (o.ret, o.effects),
            (
                0,
                vec![Effect::Vcpu {
                    vcpu: 1,
                    op: make(0x5_0100)
                }]
            )
        );
        h.put(ARG, &vcpu_register_runstate_memory_area { addr: 0 });
        assert_eq!(
            h.call(__HYPERVISOR_vcpu_op, &[cmd, 1, ARG]).effects,
            vec![Effect::Vcpu {
                vcpu: 1,
                op: make(u64::MAX)
            }]
        );
        h.put(ARG, &vcpu_register_runstate_memory_area { addr: UNMAPPED });
        let o = h.call(__HYPERVISOR_vcpu_op, &[cmd, 0, ARG]);
        assert_eq!((o.ret, o.effects), (neg(XEN_EFAULT), vec![]));
        // Across a page: the runstate area when the next page follows
        // physically (as KVM takes it), never the time area.
        h.put(
            ARG,
            &vcpu_register_runstate_memory_area {
                addr: DIRECT + 0x5_0ff0,
            },
        );
        let o = h.call(__HYPERVISOR_vcpu_op, &[cmd, 0, ARG]);
        if cmd == VCPUOP_register_runstate_memory_area {
            assert_eq!(
                (o.ret, o.effects),
                (
                    0,
                    vec![Effect::Vcpu {
                        vcpu: 0,
                        op: make(0x5_0ff0)
                    }]
                )
            );
        } else {
            assert_eq!((o.ret, o.effects), (neg(XEN_EINVAL), vec![]));
        }
        // A virtual page whose successor is elsewhere in RAM.
        h.g.map(0x7000_0000, 0x9_0000);
        h.g.map(0x7000_1000, 0x3_0000);
        h.put(
            ARG,
            &vcpu_register_runstate_memory_area { addr: 0x7000_0ff0 },
        );
        let o = h.call(__HYPERVISOR_vcpu_op, &[cmd, 0, ARG]);
        assert_eq!((o.ret, o.effects), (neg(XEN_EINVAL), vec![]));
        // Or not mapped at all.
        h.put(
            ARG,
            &vcpu_register_runstate_memory_area {
                addr: DIRECT + RAM - 0x10,
            },
        );
        let o = h.call(__HYPERVISOR_vcpu_op, &[cmd, 0, ARG]);
        assert_eq!((o.ret, o.effects), (neg(XEN_EFAULT), vec![]));
        assert_eq!(
            h.call(__HYPERVISOR_vcpu_op, &[cmd, 0, UNMAPPED]).ret,
            neg(XEN_EFAULT)
        );
    }
}

#[test]
fn vcpu_timers_and_misc() {
    let mut h = H::new();
    h.now = 5_000;
    h.put(
        ARG,
        &vcpu_set_singleshot_timer {
            timeout_abs_ns: 9_000,
            flags: 0,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_set_singleshot_timer, 0, ARG])
            .ret,
        neg(XEN_EINVAL),
        "no timer port"
    );
    let (_, _, t) = h.evtchn(
        EVTCHNOP_bind_virq,
        evtchn_bind_virq {
            virq: VIRQ_TIMER,
            vcpu: 0,
            port: 0,
        },
    );
    h.put(
        ARG,
        &vcpu_set_singleshot_timer {
            timeout_abs_ns: 9_000,
            flags: 0,
        },
    );
    let o = h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_set_singleshot_timer, 0, ARG]);
    assert_eq!(
        (o.ret, o.effects),
        (
            0,
            vec![Effect::Vcpu {
                vcpu: 0,
                op: VcpuOp::SetTimer {
                    port: t.port,
                    expires_ns: 9_000
                }
            }]
        )
    );
    assert_eq!(
        h.call_on(
            1,
            __HYPERVISOR_vcpu_op,
            &[VCPUOP_set_singleshot_timer, 0, ARG]
        )
        .ret,
        neg(XEN_EINVAL),
        "only its own timer"
    );
    h.put(
        ARG,
        &vcpu_set_singleshot_timer {
            timeout_abs_ns: 4_000,
            flags: VCPU_SSHOTTMR_future,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_set_singleshot_timer, 0, ARG])
            .ret,
        neg(XEN_ETIME)
    );
    let o = h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_stop_singleshot_timer, 0, 0]);
    assert_eq!(
        o.effects,
        vec![Effect::Vcpu {
            vcpu: 0,
            op: VcpuOp::SetTimer {
                port: t.port,
                expires_ns: 0
            }
        }]
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_stop_periodic_timer, 1, 0])
            .ret,
        0
    );
    assert_eq!(h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_is_up, 1, 0]).ret, 1);
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_is_up, 2, 0]).ret,
        neg(XEN_ENOENT)
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_initialise, 1, ARG])
            .ret,
        neg(XEN_ENOSYS)
    );
    assert_eq!(
        h.call(__HYPERVISOR_vcpu_op, &[VCPUOP_get_physid, 0, ARG])
            .ret,
        neg(XEN_EINVAL)
    );
}

// ---- console_io ----

#[test]
fn console_io_write_and_read() {
    let mut h = H::new();
    h.g.write_virt(BUF, b"hello, xen\n").unwrap();
    let o = h.call(__HYPERVISOR_console_io, &[CONSOLEIO_write, 11, BUF]);
    assert_eq!(
        (o.ret, o.effects),
        (0, vec![Effect::Console(b"hello, xen\n".to_vec())])
    );
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[CONSOLEIO_write, 0, UNMAPPED])
            .effects,
        vec![]
    );
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[CONSOLEIO_write, 11, UNMAPPED])
            .ret,
        neg(XEN_EFAULT)
    );
    let max = console_io::MAX_CONSOLE_WRITE;
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[CONSOLEIO_write, max + 1, BUF])
            .ret,
        neg(XEN_EINVAL)
    );
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[CONSOLEIO_write, u64::MAX, BUF])
            .ret,
        neg(XEN_EINVAL)
    );
    // The upper half of the count is not part of the ABI.
    assert_eq!(
        h.call(
            __HYPERVISOR_console_io,
            &[CONSOLEIO_write, (1 << 32) | 5, BUF]
        )
        .effects,
        vec![Effect::Console(b"hello".to_vec())]
    );
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[CONSOLEIO_read, 100, BUF])
            .ret,
        0
    );
    assert_eq!(
        h.call(__HYPERVISOR_console_io, &[7, 100, BUF]).ret,
        neg(XEN_ENOSYS)
    );
}

// ---- hostile input everywhere ----

/// Random hypercalls with random arguments, some pointing at mapped
/// memory filled with random bytes: the handlers must always return, with
/// either success or a Xen errno, and never panic.
#[test]
fn random_hypercalls_never_panic() {
    let mut h = H::new();
    h.map_shared_info(0x30);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let nrs = [
        __HYPERVISOR_xen_version,
        __HYPERVISOR_memory_op,
        __HYPERVISOR_hvm_op,
        __HYPERVISOR_event_channel_op,
        __HYPERVISOR_grant_table_op,
        __HYPERVISOR_sched_op,
        __HYPERVISOR_vcpu_op,
        __HYPERVISOR_console_io,
    ];
    let errnos: Vec<u64> = (1..=200).map(|e| neg(XenErrno(e))).collect();
    for i in 0..20_000 {
        let nr = nrs[(next() % nrs.len() as u64) as usize];
        // Fill the argument pages with random bytes, small values biased in.
        let mut junk = [0u8; 256];
        for c in junk.chunks_mut(8) {
            let v = match next() % 4 {
                0 => next() % 8,
                1 => next() % 4100,
                2 => DIRECT + 0x20000 + next() % 0x2000,
                _ => next(),
            };
            c.copy_from_slice(&v.to_le_bytes());
        }
        h.g.write_virt(ARG, &junk).unwrap();
        let pick = |r: u64| match r % 5 {
            0 => r % 16,
            1 => ARG,
            2 => ARG + (r >> 8) % 300,
            3 => UNMAPPED,
            _ => r,
        };
        let args = [next() % 16, pick(next()), pick(next()), pick(next())];
        let o = h.call_on((i % 2) as u32, nr, &args);
        assert!(
            o.ret < 1 << 32 || errnos.contains(&o.ret),
            "nr {nr} args {args:x?} returned {:#x}",
            o.ret
        );
    }
}

#[test]
fn grant_frames_outside_ram_come_from_the_grant_area() {
    let mut h = H::new();
    let layout = h.dom.config().layout;
    let place = |h: &mut H, idx: u64, gpfn: u64| {
        h.put(
            ARG,
            &xen_add_to_physmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_grant_table,
                idx,
                gpfn,
            },
        );
        h.call(__HYPERVISOR_memory_op, &[XENMEM_add_to_physmap, ARG])
    };
    // Linux PVH's unpopulated frames land just above RAM.
    let above = RAM / PAGE_SIZE;
    let o = place(&mut h, 0, above);
    let area = layout.grant_area_offset();
    assert_eq!(
        (o.ret, o.effects),
        (
            0,
            vec![Effect::MapGrantFrame {
                idx: 0,
                gfn: above,
                file_offset: area
            }]
        )
    );
    assert_eq!(
        place(&mut h, 0, above).effects,
        vec![],
        "same placement: nothing to do"
    );
    let o = place(&mut h, 1, above + 1);
    assert_eq!(
        o.effects,
        vec![Effect::MapGrantFrame {
            idx: 1,
            gfn: above + 1,
            file_offset: area + 4096
        }]
    );
    assert_eq!(
        h.dom.gnttab.entry_file_offset(512 + 3, &layout),
        Some(area + 4096 + 24)
    );

    // Moving frame 0 elsewhere outside RAM, then into RAM.
    let o = place(&mut h, 0, 0xc0000);
    assert_eq!(
        o.effects,
        vec![
            Effect::UnmapGrantFrame { idx: 0, gfn: above },
            Effect::MapGrantFrame {
                idx: 0,
                gfn: 0xc0000,
                file_offset: area
            },
        ]
    );
    let o = place(&mut h, 0, 0x300);
    assert_eq!(
        (o.ret, o.effects),
        (
            0,
            vec![Effect::UnmapGrantFrame {
                idx: 0,
                gfn: 0xc0000
            }]
        )
    );
    assert_eq!(
        h.dom.gnttab.frame_file_offset(0, &layout),
        Some(0x300 * 4096)
    );

    // Places no frame may take.
    for gpfn in [
        above + 1, // frame 1 is there
        0x300,     // frame 0 is there
        0xe0,      // legacy hole (ACPI tables)
        SPECIAL_PFN_XENSTORE,
        crate::layout::LAPIC_ADDR / PAGE_SIZE,
        crate::layout::IOAPIC_ADDR / PAGE_SIZE,
        crate::layout::MAX_GUEST_PHYS / PAGE_SIZE,
        u64::MAX,
    ] {
        let o = place(&mut h, 2, gpfn);
        assert_eq!(
            (o.ret, o.effects),
            (neg(XEN_EINVAL), vec![]),
            "gpfn {gpfn:#x}"
        );
    }
    // setup_table reports where the frames are, whatever backs them.
    h.put(
        ARG,
        &gnttab_setup_table {
            dom: DOMID_SELF,
            nr_frames: 2,
            status: 99,
            frame_list: BUF,
        },
    );
    assert_eq!(
        h.call(__HYPERVISOR_grant_table_op, &[GNTTABOP_setup_table, ARG, 1])
            .ret,
        0
    );
    let mut b = [0u8; 16];
    h.g.read_virt(BUF, &mut b).unwrap();
    assert_eq!(b[..8], 0x300u64.to_le_bytes());
    assert_eq!(b[8..], (above + 1).to_le_bytes());
}

#[test]
fn evtchn_bound_by_a_host_backend() {
    let mut h = H::new();
    let alloc = |h: &mut H, remote_dom| {
        let (ret, _, a) = h.evtchn(
            EVTCHNOP_alloc_unbound,
            evtchn_alloc_unbound {
                dom: DOMID_SELF,
                remote_dom,
                port: 0,
            },
        );
        assert_eq!(ret, 0);
        a.port
    };
    // blkfront's port for dom0's blkback.
    let p = alloc(&mut h, 0);
    assert_eq!(
        h.dom.evtchn.bind_host_peer(p, DomId(0), EvtchnPort(9)),
        Ok(())
    );
    assert_eq!(
        h.dom.evtchn.bind_host_peer(p, DomId(0), EvtchnPort(9)),
        Err(XEN_EINVAL),
        "already bound"
    );
    // The guest's sends reach the host; the host can raise it.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_send, evtchn_send { port: p });
    assert_eq!(ret, 0);
    assert_eq!(
        effects,
        vec![Effect::Notify {
            port: EvtchnPort(p),
            remote_dom: DomId(0),
            remote_port: EvtchnPort(9)
        }]
    );
    assert!(h.dom.evtchn.notify_from_host(EvtchnPort(p)).is_some());
    // Closing it drops the domain process's route.
    let (ret, effects, _) = h.evtchn(EVTCHNOP_close, evtchn_close { port: p });
    assert_eq!(ret, 0);
    assert!(effects.contains(&Effect::Vm(VmOp::UnroutePort(p))));
    // Ports not unbound for that domain, or for the guest itself, or
    // out of range, cannot be bound.
    let other = alloc(&mut h, 3);
    assert_eq!(
        h.dom.evtchn.bind_host_peer(other, DomId(0), EvtchnPort(9)),
        Err(XEN_EINVAL)
    );
    let own = alloc(&mut h, DOMID_SELF);
    assert_eq!(
        h.dom.evtchn.bind_host_peer(own, DomId(5), EvtchnPort(9)),
        Err(XEN_EINVAL)
    );
    for bad in [0, 4095, u32::MAX] {
        assert_eq!(
            h.dom.evtchn.bind_host_peer(bad, DomId(0), EvtchnPort(9)),
            Err(XEN_EINVAL)
        );
    }
}
