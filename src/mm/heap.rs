//! The kernel heap: `linked_list_allocator` behind a spin lock, as the
//! `#[global_allocator]`. Its memory is one contiguous run of frames taken
//! from the frame allocator at boot (and it may be grown by more runs).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use spin::Mutex;

use crate::arch::x86_64::cpu;

/// The kernel's global allocator.
pub struct KernelHeap {
    heap: Mutex<Heap>,
}

impl core::fmt::Debug for KernelHeap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (size, used) = self.stats();
        write!(f, "KernelHeap {{ size: {size}, used: {used} }}")
    }
}

impl KernelHeap {
    /// A heap with no memory yet; every allocation fails until [`init`].
    ///
    /// [`init`]: KernelHeap::init
    pub const fn empty() -> KernelHeap {
        KernelHeap {
            heap: Mutex::new(Heap::empty()),
        }
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// The range must be mapped, writable, unused by anything else for the
    /// rest of the kernel's life, and may only be given once.
    pub unsafe fn init(&self, start: *mut u8, size: usize) {
        cpu::without_interrupts(|| {
            // SAFETY: forwarded to the caller.
            unsafe { self.heap.lock().init(start, size) }
        });
    }

    /// (bytes managed, bytes in use).
    pub fn stats(&self) -> (usize, usize) {
        cpu::without_interrupts(|| {
            let h = self.heap.lock();
            (h.size(), h.used())
        })
    }
}

// SAFETY: allocation and deallocation go through linked_list_allocator,
// which upholds the GlobalAlloc contract; the lock is taken with interrupts
// off so an interrupt handler that allocates cannot deadlock against the
// interrupted code.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        cpu::without_interrupts(|| {
            self.heap
                .lock()
                .allocate_first_fit(layout)
                .map_or(core::ptr::null_mut(), |p| p.as_ptr())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            cpu::without_interrupts(|| {
                // SAFETY: GlobalAlloc's contract: ptr came from alloc with
                // this layout.
                unsafe { self.heap.lock().deallocate(p, layout) }
            });
        }
    }
}
