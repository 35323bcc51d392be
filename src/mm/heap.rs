//! The kernel heap: `linked_list_allocator` heaps behind a spin lock, as
//! the `#[global_allocator]`.
//!
//! The heap starts on a small static region in `.bss` (enough to parse the
//! start info and build the memory map), and then grows by regions of
//! frames that the frame allocator hands out. `linked_list_allocator` can
//! only extend a heap at its top, so each region is its own `Heap`;
//! allocation is first-fit across regions, deallocation goes to the region
//! that holds the pointer.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::Heap;
use spin::Mutex;

use super::direct::ClaimedFrames;
use crate::arch::x86_64::cpu;

/// The first heap region, before the frame allocator exists: enough to
/// parse the start info and memory map.
pub const BOOT_HEAP_BYTES: usize = 256 * 1024;

#[repr(C, align(4096))]
struct BootHeap([u8; BOOT_HEAP_BYTES]);

static mut BOOT_HEAP: BootHeap = BootHeap([0; BOOT_HEAP_BYTES]);
/// Set once the boot region has been handed to a heap.
static BOOT_HEAP_GIVEN: AtomicBool = AtomicBool::new(false);

/// Most regions the heap can have.
pub const MAX_REGIONS: usize = 16;

struct Region {
    start: usize,
    end: usize,
    heap: Heap,
}

/// The kernel's global allocator.
pub struct KernelHeap {
    regions: Mutex<[Option<Region>; MAX_REGIONS]>,
}

impl core::fmt::Debug for KernelHeap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.stats();
        write!(
            f,
            "KernelHeap {{ size: {}, used: {} }}",
            s.size_bytes, s.used_bytes
        )
    }
}

/// Heap usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub size_bytes: usize,
    pub used_bytes: usize,
    pub regions: usize,
}

/// Why a region could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// All region slots are in use.
    TooManyRegions,
    /// The region is too small to hold the allocator's bookkeeping.
    TooSmall,
    /// The boot region was given before.
    Given,
}

impl KernelHeap {
    /// A heap with no memory yet; every allocation fails until a region is
    /// added.
    pub const fn empty() -> KernelHeap {
        KernelHeap {
            regions: Mutex::new([const { None }; MAX_REGIONS]),
        }
    }

    /// Gives the heap the static boot region (once; later calls fail with
    /// [`HeapError::Given`]).
    pub fn add_boot_region(&self) -> Result<(), HeapError> {
        if BOOT_HEAP_GIVEN.swap(true, Ordering::AcqRel) {
            return Err(HeapError::Given);
        }
        let start = core::ptr::addr_of_mut!(BOOT_HEAP) as *mut u8;
        // SAFETY: BOOT_HEAP is a static used by nothing but this function,
        // which hands it to a heap at most once (the flag above).
        unsafe { self.add_region(start, BOOT_HEAP_BYTES) }
    }

    /// Gives the heap frames claimed for it from the frame allocator.
    pub fn add_frames(&self, frames: ClaimedFrames) -> Result<(), HeapError> {
        let (start, len) = (frames.as_mut_ptr::<u8>(), frames.len_bytes());
        // SAFETY: claimed frames are identity-mapped RAM that nothing else
        // uses, for good (the `ClaimedFrames` guarantee); the token is
        // consumed here, so they are given once.
        unsafe { self.add_region(start, len) }
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// The range must be mapped, writable, not overlap any other region,
    /// be unused by anything else for the rest of the kernel's life, and
    /// may only be given once.
    unsafe fn add_region(&self, start: *mut u8, size: usize) -> Result<(), HeapError> {
        if size < 4096 {
            return Err(HeapError::TooSmall);
        }
        cpu::without_interrupts(|| {
            let mut regions = self.regions.lock();
            let slot = regions
                .iter_mut()
                .find(|r| r.is_none())
                .ok_or(HeapError::TooManyRegions)?;
            // SAFETY: forwarded to the caller.
            let heap = unsafe { Heap::new(start, size) };
            *slot = Some(Region {
                start: start as usize,
                end: start as usize + size,
                heap,
            });
            Ok(())
        })
    }

    /// Current usage over all regions.
    pub fn stats(&self) -> HeapStats {
        cpu::without_interrupts(|| {
            let regions = self.regions.lock();
            let mut s = HeapStats::default();
            for r in regions.iter().flatten() {
                s.size_bytes += r.heap.size();
                s.used_bytes += r.heap.used();
                s.regions += 1;
            }
            s
        })
    }
}

// SAFETY: allocation and deallocation go through linked_list_allocator,
// which upholds the GlobalAlloc contract within a region; a pointer is
// returned to the region whose range contains it. The lock is taken with
// interrupts off so an interrupt handler that allocates cannot deadlock
// against the code it interrupted.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        cpu::without_interrupts(|| {
            let mut regions = self.regions.lock();
            for r in regions.iter_mut().flatten() {
                if let Ok(p) = r.heap.allocate_first_fit(layout) {
                    return p.as_ptr();
                }
            }
            core::ptr::null_mut()
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(p) = NonNull::new(ptr) else { return };
        cpu::without_interrupts(|| {
            let mut regions = self.regions.lock();
            let addr = ptr as usize;
            if let Some(r) = regions
                .iter_mut()
                .flatten()
                .find(|r| r.start <= addr && addr < r.end)
            {
                // SAFETY: GlobalAlloc's contract: ptr came from alloc with
                // this layout, and so from this region's heap.
                unsafe { r.heap.deallocate(p, layout) }
            }
        });
    }
}
