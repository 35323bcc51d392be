//! Everything that speaks to Xen.

pub mod abi;
pub mod calls;
pub mod console;
pub mod errno;
pub mod events;
pub mod hypercall;
pub mod ops;
pub mod start_info;
pub mod time;
pub mod tmem;
pub mod xenstore;
