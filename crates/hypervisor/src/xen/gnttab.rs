//! Grant tables, v1 only (`grant_table.h`).
//!
//! An HVM/PVH guest places grant frame `i` at a guest frame of its choice
//! with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx = i, gpfn)`.
//! On rxen a frame placed on a RAM page simply is that page; a frame placed
//! on free guest-physical space (Linux PVH allocates "unpopulated" frames
//! above RAM) is page `i` of the memfd's grant area, which the domain
//! process maps there ([`Effect::MapGrantFrame`]). Either way backends read
//! the `grant_entry_v1` array through the guest's memfd at
//! [`GrantTable::frame_file_offset`]; this module keeps the frame list and
//! answers the guest's queries.

use xen_abi::errno::*;
use xen_abi::grant_table::*;

use super::{Effect, GuestAccess, HypercallCtx, XenDomain, read_arg, write_arg};
use crate::layout::{GRANT_AREA_FRAMES, MemoryLayout, PAGE_SIZE};

/// Where a grant frame's page comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameBacking {
    /// The guest's RAM page at the frame's gfn.
    GuestRam,
    /// Page `idx` of the grant area, mapped at the frame's gfn.
    GrantArea,
}

/// A placed grant frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantFrame {
    /// Guest frame number it appears at.
    pub gfn: u64,
    /// Its page.
    pub backing: FrameBacking,
}

/// The grant table state of one domain.
#[derive(Debug)]
pub struct GrantTable {
    max_frames: u32,
    frames: Vec<Option<GrantFrame>>,
}

impl GrantTable {
    /// A table that may grow to `max_frames` frames (at least 1, at most
    /// [`GRANT_AREA_FRAMES`]).
    pub fn new(max_frames: u32) -> Self {
        Self {
            max_frames: max_frames.clamp(1, GRANT_AREA_FRAMES as u32),
            frames: Vec::new(),
        }
    }

    /// Frames in use (the highest index placed, plus one).
    pub fn nr_frames(&self) -> u32 {
        self.frames.len() as u32
    }

    /// The limit.
    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// The placed frames, by index (`None` where the guest has not placed one).
    pub fn frames(&self) -> &[Option<GrantFrame>] {
        &self.frames
    }

    /// Place grant frame `idx` at guest frame `gfn` (`XENMAPSPACE_grant_table`).
    /// A RAM page becomes the frame; a free page gets the grant area's page
    /// `idx` mapped there (returned as an effect, after undoing any old
    /// placement). `Err(EINVAL)` for an index beyond the limit, a page that
    /// is neither RAM nor free, or one another frame already occupies.
    pub fn set_frame(
        &mut self,
        idx: u64,
        gfn: u64,
        layout: &MemoryLayout,
    ) -> Result<Vec<Effect>, XenErrno> {
        let i = usize::try_from(idx)
            .ok()
            .filter(|&i| i < self.max_frames as usize)
            .ok_or(XEN_EINVAL)?;
        let gpa = gfn.checked_mul(PAGE_SIZE).ok_or(XEN_EINVAL)?;
        let backing = if layout.is_ram_page(gpa) {
            FrameBacking::GuestRam
        } else if layout.is_free_page(gpa) {
            FrameBacking::GrantArea
        } else {
            return Err(XEN_EINVAL);
        };
        if self
            .frames
            .iter()
            .enumerate()
            .any(|(j, f)| j != i && f.is_some_and(|f| f.gfn == gfn))
        {
            return Err(XEN_EINVAL);
        }
        if self.frames.len() <= i {
            self.frames.resize(i + 1, None);
        }
        let new = GrantFrame { gfn, backing };
        let old = self.frames[i].replace(new);
        let mut effects = Vec::new();
        if old == Some(new) {
            return Ok(effects);
        }
        if let Some(old) = old.filter(|o| o.backing == FrameBacking::GrantArea) {
            effects.push(Effect::UnmapGrantFrame {
                idx: i as u32,
                gfn: old.gfn,
            });
        }
        if backing == FrameBacking::GrantArea {
            effects.push(Effect::MapGrantFrame {
                idx: i as u32,
                gfn,
                file_offset: layout.grant_area_offset() + i as u64 * PAGE_SIZE,
            });
        }
        Ok(effects)
    }

    /// Offset in the guest's memfd of grant frame `idx`'s page.
    pub fn frame_file_offset(&self, idx: u32, layout: &MemoryLayout) -> Option<u64> {
        let f = (*self.frames.get(idx as usize)?)?;
        match f.backing {
            FrameBacking::GuestRam => layout.file_offset_of(f.gfn * PAGE_SIZE),
            FrameBacking::GrantArea => {
                Some(layout.grant_area_offset() + u64::from(idx) * PAGE_SIZE)
            }
        }
    }

    /// Offset in the guest's memfd of grant reference `gref`'s v1 entry.
    pub fn entry_file_offset(&self, gref: u32, layout: &MemoryLayout) -> Option<u64> {
        let base = self.frame_file_offset(gref / GRANT_ENTRIES_PER_FRAME_V1, layout)?;
        Some(base + u64::from(gref % GRANT_ENTRIES_PER_FRAME_V1) * 8)
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
                        .map(|i| self.gnttab.frames.get(i).copied().flatten().map(|f| f.gfn))
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
