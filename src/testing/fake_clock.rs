//! `FakeClock`: time that moves only when the test says so. Clones share
//! one time, so a test keeps a handle on the clock it gave away.

use alloc::rc::Rc;
use core::cell::Cell;

use crate::xen::ops::Clock;

/// A shared, manually advanced clock (ns).
#[derive(Clone, Debug, Default)]
pub struct FakeClock(Rc<Cell<u64>>);

impl FakeClock {
    /// Sets the time.
    pub fn set(&self, ns: u64) {
        self.0.set(ns);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}
