//! Memory management: physical frames, the kernel heap, page tables.

pub mod frame;

/// Size of one page/frame in bytes.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// A guest physical frame number (gfn/pfn: physical address >> 12).
pub type Pfn = u64;

/// Converts a byte count to whole KiB.
pub const fn pages_to_kib(pages: u64) -> u64 {
    pages * (PAGE_SIZE / 1024)
}

/// Converts KiB to pages, rounding down.
pub const fn kib_to_pages(kib: u64) -> u64 {
    kib / (PAGE_SIZE / 1024)
}
