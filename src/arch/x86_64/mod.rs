//! x86-64 support: descriptor tables, traps, port I/O, CPUID, serial.
//!
//! This is part of the small unsafe base of the kernel: everything here
//! touches CPU state. It compiles on the host (same architecture) but only
//! runs inside the kernel.

pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod serial;
pub mod trap;
