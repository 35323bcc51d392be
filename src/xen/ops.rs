//! The small traits through which logic talks to the hypervisor. The kernel
//! implements them with real hypercalls (`xen::hypercall`); host tests
//! implement them with fakes that can inject partial results and errors.

use super::errno::Errno;
use crate::mm::Pfn;

/// Reservation operations on our own domain (XENMEM_*, DOMID_SELF), on
/// order-0 extents.
pub trait MemoryOps {
    /// XENMEM_decrease_reservation: gives the frames at `pfns` back to Xen.
    /// Returns how many were released; they are always a prefix of `pfns`
    /// (Xen stops at the first frame it cannot remove).
    fn decrease_reservation(&mut self, pfns: &[Pfn]) -> Result<usize, Errno>;
    /// XENMEM_populate_physmap: backs the frames at `pfns` with memory
    /// again. Returns how many were populated, again a prefix of `pfns`.
    fn populate_physmap(&mut self, pfns: &[Pfn]) -> Result<usize, Errno>;
    /// XENMEM_current_reservation: pages the domain holds now.
    fn current_reservation(&mut self) -> Result<u64, Errno>;
    /// XENMEM_maximum_reservation: the domain's max_pages.
    fn maximum_reservation(&mut self) -> Result<u64, Errno>;
}

/// Monotonic time since boot.
pub trait Clock {
    fn now_ns(&self) -> u64;
}
