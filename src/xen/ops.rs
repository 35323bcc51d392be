//! The small traits through which logic talks to the hypervisor. The kernel
//! implements them with real hypercalls (`xen::hypercall`); host tests
//! implement them with fakes that can inject partial results and errors.

use super::errno::Errno;
use crate::mm::Pfn;

/// The extent order of a 2 MiB superpage (512 frames of 4 KiB): one p2m
/// superpage operation for Xen instead of 512 page operations.
pub const SUPERPAGE_ORDER: u32 = 9;

/// Frames in an extent of [`SUPERPAGE_ORDER`].
pub const SUPERPAGE_PAGES: u64 = 1 << SUPERPAGE_ORDER;

/// Frames in one extent of `extent_order`, or `None` if the order does not
/// fit a `u64` frame count.
pub const fn extent_pages(extent_order: u32) -> Option<u64> {
    1u64.checked_shl(extent_order)
}

/// Reservation operations on our own domain (XENMEM_*, DOMID_SELF).
///
/// Both reservation calls work on *extents* of `2^extent_order` frames:
/// `extents` holds the first pfn of each extent, a multiple of
/// `2^extent_order`. Order 0 is one frame per extent.
pub trait MemoryOps {
    /// XENMEM_decrease_reservation: gives the extents starting at `extents`
    /// back to Xen. Returns how many extents were released; they are always
    /// a prefix of `extents` (Xen stops at the first extent it cannot
    /// remove).
    fn decrease_reservation(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno>;
    /// XENMEM_populate_physmap: backs the extents starting at `extents`
    /// with memory again. Returns how many extents were populated, again a
    /// prefix of `extents`.
    fn populate_physmap(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno>;
    /// XENMEM_current_reservation: pages the domain holds now.
    fn current_reservation(&mut self) -> Result<u64, Errno>;
    /// XENMEM_maximum_reservation: the domain's max_pages.
    fn maximum_reservation(&mut self) -> Result<u64, Errno>;
}

/// Monotonic time since boot.
pub trait Clock {
    fn now_ns(&self) -> u64;
}
