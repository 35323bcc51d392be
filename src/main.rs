//! The selfballoon kernel binary: boot assembly, the runtime pieces a
//! freestanding binary needs, and the hand-off to `selfballoon::kernel`.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use core::arch::global_asm;

use selfballoon::mm::heap::KernelHeap;

// PVH entry (32-bit), page tables, long mode.
global_asm!(include_str!("../boot/entry.S"), options(att_syntax));
// Interrupt entry stubs.
global_asm!(include_str!("../boot/isr.S"), options(att_syntax));

extern "C" {
    static isr_stubs: u8;
    static __kernel_start: u8;
    static __kernel_end: u8;
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap::empty();

/// Called by `boot/entry.S` in long mode on the boot stack.
#[no_mangle]
extern "C" fn kernel_entry(start_info_paddr: u64) -> ! {
    let image = selfballoon::kernel::Image {
        start: core::ptr::addr_of!(__kernel_start) as u64,
        end: core::ptr::addr_of!(__kernel_end) as u64,
        isr_stubs: core::ptr::addr_of!(isr_stubs) as u64,
    };
    selfballoon::kernel::main(start_info_paddr, image, &HEAP)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    selfballoon::kernel::panic(info)
}

/// Runtime support the precompiled `core` expects from libc or libgcc.
///
/// These are the only definitions of the C memory functions in the kernel,
/// so they must not be compiled into calls to themselves: they use string
/// instructions rather than loops the optimiser could turn back into
/// `memcpy`.
mod rt {
    use core::arch::asm;

    /// # Safety
    /// The C contract: `dst` and `src` valid for `n` bytes, not overlapping.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller guarantees both ranges are valid; rep movsb
        // copies exactly n bytes forward (DF is clear in Rust code).
        unsafe {
            asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _,
                 inout("rsi") src => _, options(nostack, preserves_flags));
        }
        dst
    }

    /// # Safety
    /// The C contract: `dst` and `src` valid for `n` bytes; may overlap.
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dst as usize).wrapping_sub(src as usize) >= n {
            // No harmful overlap for a forward copy.
            // SAFETY: as memcpy; forward copy is correct when dst is below
            // src or past its end.
            unsafe { memcpy(dst, src, n) }
        } else {
            // SAFETY: copy backwards from the last byte with DF set, then
            // clear DF again as the ABI requires.
            unsafe {
                asm!("std", "rep movsb", "cld",
                     inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _,
                     inout("rsi") src.add(n - 1) => _, options(nostack));
            }
            dst
        }
    }

    /// # Safety
    /// The C contract: `dst` valid for `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
        // SAFETY: the caller guarantees dst is valid for n bytes.
        unsafe {
            asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _,
                 in("al") c as u8, options(nostack, preserves_flags));
        }
        dst
    }

    /// # Safety
    /// The C contract: both pointers valid for `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut i = 0;
        while i < n {
            // SAFETY: i < n and the caller guarantees n readable bytes.
            // Volatile reads keep this loop from becoming a memcmp call.
            let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
            if x != y {
                return i32::from(x) - i32::from(y);
            }
            i += 1;
        }
        0
    }

    /// # Safety
    /// As [`memcmp`].
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: forwarded.
        unsafe { memcmp(a, b, n) }
    }

    /// `core` is built with unwinding tables; the kernel aborts on panic,
    /// so these are never reached.
    #[no_mangle]
    pub extern "C" fn _Unwind_Resume() -> ! {
        selfballoon::kernel::abort("_Unwind_Resume")
    }

    #[no_mangle]
    pub extern "C" fn rust_eh_personality() {}
}
