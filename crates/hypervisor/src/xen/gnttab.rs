//! Grant tables, v1 only (`grant_table.h`).
//!
//! On rxen the grant frames are pages of the guest's own RAM: an HVM/PVH
//! guest names the frame for grant-table index `i` with
//! `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx = i, gpfn)`, and the
//! hypervisor records the frame. Backends read the `grant_entry_v1` array
//! there (through the guest's memfd) when they map or copy a grant; this
//! module only keeps the frame list and answers the guest's queries.

use xen_abi::errno::*;
use xen_abi::grant_table::*;

use super::{GuestAccess, HypercallCtx, XenDomain, read_arg, write_arg};

/// The grant table state of one domain.
#[derive(Debug)]
pub struct GrantTable {
    max_frames: u32,
    frames: Vec<Option<u64>>,
}

impl GrantTable {
    /// A table that may grow to `max_frames` frames (at least 1).
    pub fn new(max_frames: u32) -> Self {
        Self {
            max_frames: max_frames.max(1),
            frames: Vec::new(),
        }
    }

    /// Frames in use (the highest index mapped or set up, plus one).
    pub fn nr_frames(&self) -> u32 {
        self.frames.len() as u32
    }

    /// The limit.
    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Guest frame numbers of the grant frames, by index (`None` where the
    /// guest has not placed one).
    pub fn frame_gfns(&self) -> &[Option<u64>] {
        &self.frames
    }

    /// Record that grant frame `idx` lives at guest frame `gfn`
    /// (`XENMAPSPACE_grant_table`). `Err` if `idx` is beyond the limit.
    pub fn set_frame(&mut self, idx: u64, gfn: u64) -> Result<(), XenErrno> {
        let i = usize::try_from(idx)
            .ok()
            .filter(|&i| i < self.max_frames as usize)
            .ok_or(XEN_EINVAL)?;
        if self.frames.len() <= i {
            self.frames.resize(i + 1, None);
        }
        self.frames[i] = Some(gfn);
        Ok(())
    }

    /// Where grant reference `gref`'s v1 entry is in guest-physical memory.
    pub fn entry_gpa(&self, gref: u32) -> Option<u64> {
        let frame = (gref / GRANT_ENTRIES_PER_FRAME_V1) as usize;
        let gfn = (*self.frames.get(frame)?)?;
        Some(gfn * 4096 + u64::from(gref % GRANT_ENTRIES_PER_FRAME_V1) * 8)
    }
}

impl XenDomain {
    /// `HYPERVISOR_grant_table_op(cmd, uop, count)`.
    pub(super) fn grant_table_op(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
    ) -> Result<u64, XenErrno> {
        let (cmd, uop, count) = (ctx.args[0], ctx.args[1], ctx.args[2]);
        match cmd {
            GNTTABOP_query_size => {
                if count != 1 {
                    return Err(XEN_EINVAL);
                }
                let mut a: gnttab_query_size = read_arg(g, uop)?;
                if self.is_self(a.dom) {
                    a.nr_frames = self.gnttab.nr_frames();
                    a.max_nr_frames = self.gnttab.max_frames();
                    a.status = GNTST_okay;
                } else {
                    a.status = GNTST_bad_domain;
                }
                write_arg(g, uop, &a)?;
                Ok(0)
            }
            GNTTABOP_setup_table => {
                if count != 1 {
                    return Err(XEN_EINVAL);
                }
                let mut a: gnttab_setup_table = read_arg(g, uop)?;
                a.status = if !self.is_self(a.dom) {
                    GNTST_bad_domain
                } else if a.nr_frames > self.gnttab.max_frames() {
                    GNTST_general_error
                } else {
                    // Frames live in guest RAM: they must have been placed
                    // with add_to_physmap first; report their frame numbers.
                    let gfns: Option<Vec<u64>> = (0..a.nr_frames as usize)
                        .map(|i| self.gnttab.frames.get(i).copied().flatten())
                        .collect();
                    match gfns {
                        None => GNTST_general_error,
                        Some(gfns) => {
                            let bytes: Vec<u8> =
                                gfns.iter().flat_map(|f| f.to_le_bytes()).collect();
                            if g.write_virt(a.frame_list, &bytes).is_err() {
                                GNTST_bad_virt_addr
                            } else {
                                GNTST_okay
                            }
                        }
                    }
                };
                write_arg(g, uop, &a)?;
                Ok(0)
            }
            GNTTABOP_set_version => {
                if count != 1 {
                    return Err(XEN_EINVAL);
                }
                let mut a: gnttab_set_version = read_arg(g, uop)?;
                let asked = a.version;
                a.version = 1;
                write_arg(g, uop, &a)?;
                match asked {
                    1 => Ok(0),
                    // Like Xen with `gnttab=max-ver:1`.
                    2 => Err(XEN_ENOSYS),
                    _ => Err(XEN_EINVAL),
                }
            }
            GNTTABOP_get_version => {
                if count != 1 {
                    return Err(XEN_EINVAL);
                }
                let mut a: gnttab_get_version = read_arg(g, uop)?;
                if !self.is_self(a.dom) {
                    return Err(XEN_EPERM);
                }
                a.version = 1;
                write_arg(g, uop, &a)?;
                Ok(0)
            }
            // Mapping, copying and transferring grants is the backends'
            // business (in the host), not something a guest does here.
            _ => {
                self.log_unsupported(ctx, "grant_table_op");
                Err(XEN_ENOSYS)
            }
        }
    }
}
