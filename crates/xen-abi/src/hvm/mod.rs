//! HVM interfaces, `xen/include/public/hvm/` (and `arch-x86/hvm/`).

pub mod hvm_op;
pub mod params;
pub mod start_info;
