//! The IDT: all 256 vectors point at the assembly stubs (`boot/isr.S`),
//! every gate on an IST stack.

use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

use super::gdt::{IST_DOUBLE_FAULT, IST_EXCEPTION, IST_IRQ, IST_NMI_MCE};

/// Distance between two stubs in `isr_stubs`.
pub const STUB_STRIDE: u64 = 16;

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Builds and loads the IDT. `stubs` is the address of `isr_stubs`.
///
/// # Safety
/// `stubs` must be the address of the 256 entry stubs of `boot/isr.S`,
/// [`super::gdt::init`] must have run (the gates name IST slots of the
/// loaded TSS and the current code segment).
pub unsafe fn init(stubs: u64) {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let addr = |v: u64| VirtAddr::new(stubs + v * STUB_STRIDE);
        // SAFETY: (for every set_handler_addr/set_stack_index below) each
        // address is the stub for exactly that vector, which handles the
        // CPU's frame for it (error code or not) and returns with iretq;
        // the IST indices name stacks installed by gdt::init.
        unsafe {
            macro_rules! exc {
                ($field:ident, $v:expr, $ist:expr) => {
                    idt.$field
                        .set_handler_addr(addr($v))
                        .set_stack_index($ist - 1);
                };
            }
            exc!(divide_error, 0, IST_EXCEPTION);
            exc!(debug, 1, IST_EXCEPTION);
            exc!(non_maskable_interrupt, 2, IST_NMI_MCE);
            exc!(breakpoint, 3, IST_EXCEPTION);
            exc!(overflow, 4, IST_EXCEPTION);
            exc!(bound_range_exceeded, 5, IST_EXCEPTION);
            exc!(invalid_opcode, 6, IST_EXCEPTION);
            exc!(device_not_available, 7, IST_EXCEPTION);
            exc!(double_fault, 8, IST_DOUBLE_FAULT);
            exc!(invalid_tss, 10, IST_EXCEPTION);
            exc!(segment_not_present, 11, IST_EXCEPTION);
            exc!(stack_segment_fault, 12, IST_EXCEPTION);
            exc!(general_protection_fault, 13, IST_EXCEPTION);
            exc!(page_fault, 14, IST_EXCEPTION);
            exc!(x87_floating_point, 16, IST_EXCEPTION);
            exc!(alignment_check, 17, IST_EXCEPTION);
            exc!(machine_check, 18, IST_NMI_MCE);
            exc!(simd_floating_point, 19, IST_EXCEPTION);
            exc!(virtualization, 20, IST_EXCEPTION);
            exc!(cp_protection_exception, 21, IST_EXCEPTION);
            exc!(hv_injection_exception, 28, IST_EXCEPTION);
            exc!(vmm_communication_exception, 29, IST_EXCEPTION);
            exc!(security_exception, 30, IST_EXCEPTION);
            for v in 32u8..=255 {
                idt[v]
                    .set_handler_addr(addr(u64::from(v)))
                    .set_stack_index(IST_IRQ - 1);
            }
        }
        idt
    });
    idt.load();
}
