//! `HYPERVISOR_memory_op` (`memory.h`): placing shared_info and grant
//! frames (`XENMEM_add_to_physmap`), the memory map, reservation queries.
//! Ballooning (increase/decrease_reservation, populate_physmap) is not
//! offered: `-ENOSYS`.

use xen_abi::errno::*;
use xen_abi::memory::*;

use xen_abi::xen::shared_info_vcpu_info_offset;

use super::{Effect, GuestAccess, HypercallCtx, VcpuOp, VmOp, XenDomain, read_arg, write_arg};
use crate::layout::PAGE_SIZE;

/// Most entries one `XENMEM_memory_map` call copies (the map has a handful).
const MAX_MAP_ENTRIES: usize = 128;

impl XenDomain {
    pub(super) fn memory_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, arg) = (ctx.args[0], ctx.args[1]);
        // Bits above MEMOP_CMD_MASK carry a continuation start; a guest
        // starts at 0, and none of the ops here continue.
        if cmd & !MEMOP_CMD_MASK != 0 {
            return Err(XEN_EINVAL);
        }
        match cmd {
            XENMEM_add_to_physmap => {
                let a: xen_add_to_physmap = read_arg(g, arg)?;
                if !self.is_self(a.domid) {
                    return Err(XEN_EPERM);
                }
                let gpa = a.gpfn.checked_mul(PAGE_SIZE).ok_or(XEN_EINVAL)?;
                match a.space {
                    XENMAPSPACE_shared_info => {
                        // KVM keeps shared_info in a page of guest RAM.
                        if a.idx != 0
                            || !self.cfg.layout.is_ram_page(gpa)
                            || !g.is_memory(gpa, PAGE_SIZE)
                        {
                            return Err(XEN_EINVAL);
                        }
                        self.shared_info_gfn = Some(a.gpfn);
                        effects.push(Effect::Vm(VmOp::SetSharedInfo { gfn: a.gpfn }));
                        // Until a vCPU registers its own vcpu_info, Xen
                        // uses its slot in shared_info; KVM must be told.
                        for vcpu in 0..self.cfg.vcpus {
                            if self.vcpus[vcpu as usize].vcpu_info_registered {
                                continue;
                            }
                            if let Some(off) = shared_info_vcpu_info_offset(vcpu) {
                                effects.push(Effect::Vcpu {
                                    vcpu,
                                    op: VcpuOp::SetVcpuInfo(gpa + off as u64),
                                });
                            }
                        }
                        Ok(0)
                    }
                    XENMAPSPACE_grant_table => {
                        if a.idx & XENMAPIDX_grant_table_status != 0 {
                            // Status frames exist only in grant table v2.
                            return Err(XEN_EINVAL);
                        }
                        effects.extend(self.gnttab.set_frame(a.idx, a.gpfn, &self.cfg.layout)?);
                        Ok(0)
                    }
                    _ => Err(XEN_EOPNOTSUPP),
                }
            }
            XENMEM_memory_map => {
                let mut a: xen_memory_map = read_arg(g, arg)?;
                let map = self.cfg.layout.memory_map();
                let n = (a.nr_entries as usize).min(map.len()).min(MAX_MAP_ENTRIES);
                let bytes: Vec<u8> = map[..n].iter().flat_map(|e| e.to_bytes()).collect();
                g.write_virt(a.buffer, &bytes).map_err(|_| XEN_EFAULT)?;
                a.nr_entries = n as u32;
                write_arg(g, arg, &a)?;
                Ok(0)
            }
            XENMEM_current_reservation | XENMEM_maximum_reservation => {
                let a: xen_memory_domain = read_arg(g, arg)?;
                if !self.is_self(a.domid) {
                    return Err(XEN_EPERM);
                }
                Ok(self.cfg.layout.usable_ram() / PAGE_SIZE)
            }
            XENMEM_maximum_ram_page => Ok(self.max_gpfn()),
            XENMEM_maximum_gpfn => {
                let a: xen_memory_domain = read_arg(g, arg)?;
                if !self.is_self(a.domid) {
                    return Err(XEN_EPERM);
                }
                Ok(self.max_gpfn())
            }
            XENMEM_increase_reservation | XENMEM_decrease_reservation | XENMEM_populate_physmap => {
                self.log_unsupported(ctx, "memory_op (ballooning)");
                Err(XEN_ENOSYS)
            }
            _ => {
                self.log_unsupported(ctx, "memory_op");
                Err(XEN_ENOSYS)
            }
        }
    }

    fn max_gpfn(&self) -> u64 {
        let end = self
            .cfg
            .layout
            .memory_map()
            .iter()
            .map(|e| e.addr + e.size)
            .max()
            .unwrap_or(0);
        end.div_ceil(PAGE_SIZE).saturating_sub(1)
    }
}
