//! What the main loop needs from the world, as small traits: the kernel
//! implements them with hypercalls, the direct map and the xenstore ring
//! (`kernel::run`); host tests with the fakes in `crate::testing`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::direct::PhysPages;
use crate::mm::vm::{Mmu, RegionAccess};
use crate::pager::SwapDevice;
use crate::xen::ops::{Clock, MemoryOps};
use crate::xen::xenstore::client::{Waiter, XenstoreClient};
use crate::xen::xenstore::ring::RingPage;
use crate::xen::xenstore::{Store, XsError};

/// A xenstore connection with watches, as the loop uses it.
pub trait WatchStore: Store {
    /// Takes in whatever the peer has sent (replies, watch events)
    /// without blocking.
    fn poll(&mut self) -> Result<(), XsError>;
    /// The paths of the queued watch events for `token`, oldest first.
    fn take_watch_events(&mut self, token: &str) -> Result<Vec<String>, XsError>;
    /// `/local/domain/<domid>`.
    fn home_path(&mut self) -> Result<String, XsError>;
    /// Whether the connection is beyond repair.
    fn is_broken(&self) -> bool;
    /// Watch events received and not yet taken.
    fn queued_watch_events(&self) -> usize;
    /// The peer has sent more than the last poll took in (polls are
    /// bounded); the loop must poll again before it blocks.
    fn has_pending_input(&self) -> bool;
}

impl<R: RingPage, W: Waiter> WatchStore for XenstoreClient<R, W> {
    fn poll(&mut self) -> Result<(), XsError> {
        XenstoreClient::poll(self)
    }
    fn take_watch_events(&mut self, token: &str) -> Result<Vec<String>, XsError> {
        XenstoreClient::take_watch_events(self, token)
    }
    fn home_path(&mut self) -> Result<String, XsError> {
        XenstoreClient::home_path(self)
    }
    fn is_broken(&self) -> bool {
        XenstoreClient::is_broken(self)
    }
    fn queued_watch_events(&self) -> usize {
        XenstoreClient::queued_watch_events(self)
    }
    fn has_pending_input(&self) -> bool {
        XenstoreClient::has_pending_input(self)
    }
}

/// The things the loop is generic over.
pub trait Env {
    /// Reservation hypercalls on our own domain.
    type Mem: MemoryOps;
    /// The bytes of frames we own.
    type Pages: PhysPages;
    /// Xenstore, when the domain has one.
    type Store: WatchStore;
    /// Monotonic time.
    type Clock: Clock;
    /// The pageable region's page tables (the pager's handle).
    type Mmu: Mmu;
    /// The workload's access to the region (copies that may fault).
    type Access: RegionAccess;
    /// Frontswap.
    type Swap: SwapDevice;
}

/// The demand-paging parts the loop runs the workload on.
pub struct Paging<E: Env> {
    /// The region's page tables.
    pub mmu: E::Mmu,
    /// The workload's access to the region.
    pub access: E::Access,
    /// Frontswap over its backend.
    pub swap: E::Swap,
    /// Frames kept free for faults.
    pub watermark_pages: u64,
    /// Bytes the kernel heap has free now (frontswap's index lives there).
    pub heap_free_bytes: fn() -> u64,
}

impl<E: Env> core::fmt::Debug for Paging<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Paging")
            .field("watermark_pages", &self.watermark_pages)
            .finish_non_exhaustive()
    }
}
