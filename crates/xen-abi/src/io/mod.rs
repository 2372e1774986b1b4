//! Split-driver I/O interfaces, `xen/include/public/io/`.

pub mod blkif;
pub mod console;
pub mod netif;
pub mod ring;
pub mod xenbus;
