//! The pageable region as the pager sees it: virtual page numbers, and the
//! two capabilities over the region's page tables.
//!
//! - [`Mmu`] maps, unmaps and inspects the region's page-table entries and
//!   copies the bytes of pages that are *mapped*. Only the pager holds it.
//!   The kernel implements it with real x86-64 page tables
//!   (`mm::paging::RegionTables`), host tests with `testing::FakeMmu`.
//! - [`RegionAccess`] is how the workload reaches its memory: copies
//!   to and from a virtual page that may not be mapped. On the machine
//!   such a copy takes a page fault that the pager resolves
//!   (`mm::fault`); the fake calls the same resolver.
//!
//! The region starts at [`REGION_BASE`]; virtual page `vpn` is the 4 KiB
//! page at `REGION_BASE + vpn * 4096`, `vpn < pages()`.

#![forbid(unsafe_code)]

use core::fmt;

use super::direct::Page;
use super::{Pfn, PAGE_SIZE};

/// A page of the pageable region, counted from its start.
pub type Vpn = u64;

/// First byte of the region: the start of PML4 slot 1 (512 GiB), far from
/// the identity map of the first 4 GiB, so that no kernel pointer can
/// stray into it by accident.
pub const REGION_BASE: u64 = 1 << 39;

/// The largest region supported (one PML4 slot: 512 GiB).
pub const REGION_MAX_PAGES: u64 = (1 << 39) / PAGE_SIZE;

/// The virtual address of `vpn`.
pub const fn vpn_address(vpn: Vpn) -> u64 {
    REGION_BASE + vpn * PAGE_SIZE
}

/// The page of the region holding `addr`, if it lies in a region of
/// `pages` pages.
pub const fn vpn_of(addr: u64, pages: u64) -> Option<Vpn> {
    if addr < REGION_BASE {
        return None;
    }
    let vpn = (addr - REGION_BASE) / PAGE_SIZE;
    if vpn < pages {
        Some(vpn)
    } else {
        None
    }
}

/// What an entry held (at an unmap, or a peek).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The frame that was mapped.
    pub pfn: Pfn,
    /// The CPU wrote the page since it was mapped (the dirty bit).
    pub dirty: bool,
    /// The CPU touched the page since the accessed bit was last cleared.
    pub accessed: bool,
}

/// Why a page-table operation was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// The page lies outside the region.
    OutOfRegion(Vpn),
    /// `map` of a page that is mapped already.
    AlreadyMapped(Vpn),
    /// `unmap`, an accessed-bit test or a copy of a page that is not
    /// mapped.
    NotMapped(Vpn),
    /// The frame cannot be mapped (outside RAM or above the physical
    /// address width).
    BadFrame(Pfn),
}

impl fmt::Display for MmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmuError::OutOfRegion(v) => write!(f, "page {v:#x} is outside the region"),
            MmuError::AlreadyMapped(v) => write!(f, "page {v:#x} is mapped already"),
            MmuError::NotMapped(v) => write!(f, "page {v:#x} is not mapped"),
            MmuError::BadFrame(p) => write!(f, "frame {p:#x} cannot be mapped"),
        }
    }
}

/// The region's page tables. Every method that changes an entry also
/// invalidates the TLB entry for the page, so the change is in effect when
/// it returns.
pub trait Mmu {
    /// Pages in the region.
    fn pages(&self) -> u64;
    /// Maps `vpn` to `pfn`, present and writable, accessed and dirty bits
    /// clear.
    fn map(&mut self, vpn: Vpn, pfn: Pfn) -> Result<(), MmuError>;
    /// Clears the entry of a mapped page and says what it held.
    fn unmap(&mut self, vpn: Vpn) -> Result<Unmapped, MmuError>;
    /// Whether the page was touched since the last call (or since it was
    /// mapped), clearing the accessed bit.
    fn test_and_clear_accessed(&mut self, vpn: Vpn) -> Result<bool, MmuError>;
    /// Whether the page was written since the last call (or since it was
    /// mapped), clearing the dirty bit.
    fn test_and_clear_dirty(&mut self, vpn: Vpn) -> Result<bool, MmuError>;
    /// What the entry of a mapped page holds now, changing nothing.
    fn peek(&self, vpn: Vpn) -> Option<Unmapped>;
    /// Copies a mapped page out (for a page-out).
    fn read(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError>;
    /// Fills a mapped page (for a page-in, or zeroing a new page).
    fn write(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError>;
    /// Zeroes a mapped page.
    fn zero(&mut self, vpn: Vpn) -> Result<(), MmuError>;
}

/// The workload's way to its memory: copies that may fault. A fault the
/// pager cannot resolve is fatal on the machine; the fake returns it.
pub trait RegionAccess {
    /// Copies page `vpn` into `out`.
    fn load(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError>;
    /// Copies `data` into page `vpn`.
    fn store(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_pages() {
        assert_eq!(vpn_address(0), 0x80_0000_0000);
        assert_eq!(vpn_address(3), 0x80_0000_3000);
        assert_eq!(vpn_of(0x80_0000_3fff, 4), Some(3));
        assert_eq!(vpn_of(0x80_0000_4000, 4), None);
        assert_eq!(vpn_of(0x7f_ffff_ffff, 4), None);
        assert_eq!(vpn_of(0, 4), None);
        assert_eq!(vpn_address(REGION_MAX_PAGES), 1 << 40);
    }
}
