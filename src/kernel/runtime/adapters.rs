//! Adapters between the policy modules' traits and the loop's parts:
//! timed reservation calls, and a store that skips unchanged writes. (The
//! workload's pages are `pager::PagedSource`.)

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::mm::Pfn;
use crate::xen::errno::Errno;
use crate::xen::ops::{Clock, MemoryOps};
use crate::xen::xenstore::{Store, XsError};

/// Measures the time spent inside reservation hypercalls, to compare with
/// the guest-side time of a whole balloon step.
pub struct Timed<'a, M: MemoryOps, C: Clock> {
    pub inner: &'a mut M,
    pub clock: &'a C,
    pub hypercall_ns: u64,
    pub hypercalls: u64,
}

impl<'a, M: MemoryOps, C: Clock> Timed<'a, M, C> {
    pub fn new(inner: &'a mut M, clock: &'a C) -> Self {
        Timed {
            inner,
            clock,
            hypercall_ns: 0,
            hypercalls: 0,
        }
    }

    fn time<T>(&mut self, f: impl FnOnce(&mut M) -> T) -> T {
        let t0 = self.clock.now_ns();
        let r = f(self.inner);
        self.hypercall_ns = self
            .hypercall_ns
            .saturating_add(self.clock.now_ns().saturating_sub(t0));
        self.hypercalls = self.hypercalls.saturating_add(1);
        r
    }
}

impl<M: MemoryOps, C: Clock> MemoryOps for Timed<'_, M, C> {
    fn decrease_reservation(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.time(|m| m.decrease_reservation(extent_order, extents))
    }
    fn populate_physmap(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.time(|m| m.populate_physmap(extent_order, extents))
    }
    fn current_reservation(&mut self) -> Result<u64, Errno> {
        self.inner.current_reservation()
    }
    fn maximum_reservation(&mut self) -> Result<u64, Errno> {
        self.inner.maximum_reservation()
    }
}

/// A [`Store`] that skips writes of the value it last wrote to a path, so
/// that publishing unchanged status costs no round trip.
pub struct Dedup<'a, S: Store> {
    pub inner: &'a mut S,
    pub written: &'a mut BTreeMap<String, String>,
}

impl<S: Store> Store for Dedup<'_, S> {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.inner.read(path)
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        if self.written.get(path).is_some_and(|v| v == value) {
            return Ok(());
        }
        self.inner.write(path, value)?;
        self.written.insert(path.to_string(), value.to_string());
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.inner.directory(path)
    }
    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.written.remove(path);
        self.inner.rm(path)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.inner.watch(path, token)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.inner.unwatch(path, token)
    }
}
