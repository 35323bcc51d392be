//! Everything that speaks to Xen.

pub mod abi;
pub mod errno;
pub mod ops;
pub mod xenstore;
pub mod start_info;
