//! The kernel proper: boot sequence, main loop, selftest. This is the glue
//! between the hardware/hypervisor base and the host-testable logic.

pub mod console;
pub mod exit;
pub mod platform;

use crate::arch::x86_64::{gdt, idt, trap};
use crate::mm::heap::KernelHeap;

/// Where the kernel image lies, and the addresses of assembly symbols the
/// binary passes in (the library does not link against them).
#[derive(Clone, Copy, Debug)]
pub struct Image {
    pub start: u64,
    pub end: u64,
    pub isr_stubs: u64,
}

/// Kernel main, called once from `kernel_entry`.
pub fn main(start_info_paddr: u64, image: Image, heap: &'static KernelHeap) -> ! {
    console::enable_serial();
    console::init_logger(log::LevelFilter::Info);
    gdt::init();
    // SAFETY: image.isr_stubs is the address of boot/isr.S's stubs and the
    // GDT/TSS are loaded.
    unsafe { idt::init(image.isr_stubs) };
    trap::set_fatal_hook(exit::fatal_trap);
    log::info!(
        "selfballoon: image {:#x}-{:#x}, start info at {:#x}",
        image.start,
        image.end,
        start_info_paddr
    );
    let _ = heap;
    exit::finish(exit::TestResult::Success)
}

/// The panic handler's body.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    log::error!("PANIC: {info}");
    exit::finish(exit::TestResult::Error)
}

/// Stops the kernel after an impossible runtime event.
pub fn abort(what: &str) -> ! {
    log::error!("abort: {what}");
    exit::finish(exit::TestResult::Error)
}
