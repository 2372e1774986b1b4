//! Miscellaneous commands (Xen's `tools/xl/xl_misc.c`): `rename`.

use toolstack::error_chain;

use crate::vmcontrol::NO_OPTIONS;
use crate::{Globals, find_domain, open_toolstack, parse_args};

/// `xl rename <Domain> <NewDomainName>`.
pub fn main_rename(_g: &Globals, argv: &[String]) -> u8 {
    let m = match parse_args("rename", argv, NO_OPTIONS, 2) {
        Ok(m) => m,
        Err(rc) => return rc,
    };
    let mut ts = match open_toolstack() {
        Ok(t) => t,
        Err(rc) => return rc,
    };
    let dom = &m.operands[0];
    let domid = match find_domain(&mut ts, dom) {
        Ok(d) => d,
        Err(rc) => return rc,
    };
    match ts.rename(domid, &m.operands[1]) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xl: {}", error_chain(&e));
            eprintln!("Can't rename domain '{dom}'.");
            1
        }
    }
}
