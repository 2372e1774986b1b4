//! `HYPERVISOR_console_io(cmd, count, buffer)` (`xen.h`): the guest's early
//! console (`earlyprintk=xen`). Output becomes [`Effect::Console`]; the
//! domain process writes it to the domain's console log.

use xen_abi::errno::*;
use xen_abi::xen::{CONSOLEIO_read, CONSOLEIO_write};

use super::{Effect, GuestAccess, HypercallCtx, XenDomain};

/// Most bytes taken from one write; Xen also caps a write's size per call.
pub const MAX_CONSOLE_WRITE: u64 = 16 * 1024;

impl XenDomain {
    pub(super) fn console_io(
        &mut self,
        ctx: &HypercallCtx,
        g: &mut dyn GuestAccess,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, XenErrno> {
        let (cmd, count, buffer) = (ctx.args[0], ctx.args[1], ctx.args[2]);
        match cmd {
            CONSOLEIO_write => {
                // The count is a 32-bit value in the ABI.
                let count = count & 0xffff_ffff;
                if count > MAX_CONSOLE_WRITE {
                    return Err(XEN_EINVAL);
                }
                let mut buf = vec![0u8; count as usize];
                g.read_virt(buffer, &mut buf).map_err(|_| XEN_EFAULT)?;
                if !buf.is_empty() {
                    effects.push(Effect::Console(buf));
                }
                Ok(0)
            }
            // No input on this console: zero bytes read.
            CONSOLEIO_read => Ok(0),
            _ => Err(XEN_ENOSYS),
        }
    }
}
