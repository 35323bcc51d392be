//! What the main loop needs from the world, as small traits: the kernel
//! implements them with hypercalls, the direct map and the xenstore ring
//! (`kernel::run`); host tests with the fakes in `crate::testing`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::direct::PhysPages;
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

/// The four things the loop is generic over.
pub trait Env {
    /// Reservation hypercalls on our own domain.
    type Mem: MemoryOps;
    /// The bytes of frames we own.
    type Pages: PhysPages;
    /// Xenstore, when the domain has one.
    type Store: WatchStore;
    /// Monotonic time.
    type Clock: Clock;
}
