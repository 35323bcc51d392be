//! Memory management: physical frames, the direct map, the kernel heap,
//! the page tables of the pageable region and the way page faults reach
//! the pager.

pub mod direct;
pub mod fault;
pub mod frame;
pub mod heap;
pub mod held;
pub mod paging;
pub mod vm;

/// Size of one page/frame in bytes.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// A guest physical frame number (gfn/pfn: physical address >> 12).
pub type Pfn = u64;

/// Converts a page count to KiB (saturating; real counts never get near
/// the limit).
pub const fn pages_to_kib(pages: u64) -> u64 {
    pages.saturating_mul(PAGE_SIZE / 1024)
}

/// Converts KiB to pages, rounding down.
pub const fn kib_to_pages(kib: u64) -> u64 {
    kib / (PAGE_SIZE / 1024)
}

/// A run of `count` consecutive frames starting at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PfnRange {
    /// First frame of the run.
    pub start: Pfn,
    /// Number of frames in the run.
    pub count: u64,
}

impl PfnRange {
    /// One past the last frame (saturating).
    pub const fn end(&self) -> Pfn {
        self.start.saturating_add(self.count)
    }

    /// Whether `pfn` lies in the run.
    pub const fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.start && pfn < self.end()
    }
}
