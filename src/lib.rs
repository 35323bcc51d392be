//! selfballoon: a PVH unikernel for Xen that manages its own memory.
//!
//! The crate is split so that everything that is policy or protocol logic
//! builds and is tested on the host (`cargo test`), while the few pieces
//! that touch hardware or the hypervisor sit behind small traits:
//!
//! - [`arch`]: x86-64 CPU plumbing (GDT/IDT/TSS, port I/O, CPUID, MSRs).
//! - [`xen`]: the hypervisor ABI, typed hypercalls, events, time, console,
//!   start info and the xenstore client.
//! - [`mm`]: physical frame allocator, kernel heap, page tables.
//! - [`balloon`]: the balloon driver (decrease/populate reservation).
//! - [`selfballoon`]: the self-ballooning controllers and their tunables.
//! - [`workload`]: a verifiable memory workload that gives the controller
//!   something to control.
//!
//! The kernel binary (`src/main.rs`) holds the boot assembly, the runtime
//! glue a freestanding binary needs, and wires these together.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

extern crate alloc;

pub mod arch;
pub mod balloon;
pub mod cmdline;
pub mod kernel;
pub mod mm;
pub mod pager;
pub mod parse;
pub mod selfballoon;
pub mod swap;
#[cfg(test)]
pub mod testing;
pub mod workload;
pub mod xen;
