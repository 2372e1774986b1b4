//! `HYPERVISOR_xen_version` (`version.h`, `features.h`).

use xen_abi::errno::*;
use xen_abi::features::*;
use xen_abi::version::*;

use super::{GuestAccess, HypercallCtx, XenDomain, read_arg, write_arg};

/// `XENVER_extraversion`.
const EXTRAVERSION: &str = xen_abi::version::RXEN_XEN_EXTRA;
/// `XENVER_capabilities`: a 64-bit HVM guest.
const CAPABILITIES: &str = "hvm-3.0-x86_64";
/// `XENVER_changeset`.
const CHANGESET: &str = "rxen";

/// Feature submap 0 for an HVM/PVH guest without PIRQs.
pub const FEATURES: u32 = (1 << XENFEAT_writable_page_tables)
    | (1 << XENFEAT_auto_translated_physmap)
    | (1 << XENFEAT_hvm_callback_vector)
    | (1 << XENFEAT_hvm_safe_pvclock)
    | (1 << XENFEAT_not_direct_mapped);

fn fixed_string(s: &str, len: usize) -> Vec<u8> {
    let mut v = s.as_bytes()[..s.len().min(len - 1)].to_vec();
    v.resize(len, 0);
    v
}

impl XenDomain {
    pub(super) fn xen_version(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
    ) -> Result<u64, XenErrno> {
        let (cmd, arg) = (ctx.args[0], ctx.args[1]);
        let write = |g: &mut dyn GuestAccess, bytes: &[u8]| {
            g.write_virt(arg, bytes).map_err(|_| XEN_EFAULT)
        };
        match cmd {
            XENVER_version => Ok(u64::from(self.cfg.xen_version)),
            XENVER_extraversion => {
                write(g, &fixed_string(EXTRAVERSION, XEN_EXTRAVERSION_LEN)).map(|_| 0)
            }
            XENVER_capabilities => {
                write(g, &fixed_string(CAPABILITIES, XEN_CAPABILITIES_INFO_LEN)).map(|_| 0)
            }
            XENVER_changeset => {
                write(g, &fixed_string(CHANGESET, XEN_CHANGESET_INFO_LEN)).map(|_| 0)
            }
            XENVER_compile_info => {
                let mut v = fixed_string("rustc", 64);
                v.extend(fixed_string("rxen", 16));
                v.extend(fixed_string("", 32));
                v.extend(fixed_string("", 32));
                write(g, &v).map(|_| 0)
            }
            XENVER_platform_parameters => {
                write_arg(g, arg, &xen_platform_parameters { virt_start: 0 })?;
                Ok(0)
            }
            XENVER_get_features => {
                let mut a: xen_feature_info = read_arg(g, arg)?;
                if a.submap_idx != 0 {
                    return Err(XEN_EINVAL);
                }
                a.submap = FEATURES;
                write_arg(g, arg, &a)?;
                Ok(0)
            }
            XENVER_pagesize => Ok(4096),
            XENVER_guest_handle => write(g, &self.cfg.handle).map(|_| 0),
            // Host details are for privileged domains.
            XENVER_commandline | XENVER_build_id | XENVER_commandline2 => Err(XEN_EPERM),
            _ => {
                self.log_unsupported(ctx, "xen_version");
                Err(XEN_ENOSYS)
            }
        }
    }
}
