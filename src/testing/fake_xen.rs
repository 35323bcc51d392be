//! `FakeXen`: a hypervisor's reservation calls for one domain, with
//! limited host memory, a max_pages, PoD entries, and scripted partial
//! results and errors ([`Inject`]). It records every call and every
//! violation of the ABI's rules it sees (unaligned extents, batches over
//! 512, releasing unmapped or populating mapped frames).

use alloc::collections::{BTreeSet, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::balloon::MAX_BATCH_EXTENTS;
use crate::mm::Pfn;
use crate::xen::errno::Errno;
use crate::xen::ops::{MemoryOps, SUPERPAGE_ORDER};

/// One injected answer, consumed by the next hypercall.
#[derive(Clone, Copy, Debug)]
pub enum Inject {
    /// Do at most this many extents.
    Partial(usize),
    /// Fail with this errno.
    Fail(Errno),
}

/// Which reservation call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Decrease,
    Populate,
}

/// One reservation hypercall as the fake saw it: the call, the extent
/// order and the number of extents asked for.
pub type Call = (Op, u32, usize);

/// A hypervisor holding `backed` gfns for our domain, with limited host
/// memory and a max_pages.
#[derive(Debug, Default)]
pub struct FakeXen {
    pub backed: BTreeSet<Pfn>,
    /// PoD entries: mapped but not backed; decrease drops them.
    pub pod: BTreeSet<Pfn>,
    /// Pages Xen counts outside our RAM map.
    pub extra_pages: u64,
    pub host_free_pages: u64,
    pub max_pages: u64,
    /// Batches larger than this fail with E2BIG.
    pub max_extents: usize,
    /// Host memory is fragmented: order-9 populates fail with ENOMEM
    /// (order 0 still works).
    pub fragmented: bool,
    /// Highest populate order Xen allows us (`max_order` for a domU);
    /// above it populate does nothing and returns 0.
    pub max_order: u32,
    pub script: VecDeque<Inject>,
    pub released: Vec<Pfn>,
    pub decrease_calls: u64,
    pub populate_calls: u64,
    pub calls: Vec<Call>,
    pub violations: Vec<String>,
    /// Pages of an extent Xen stopped inside that it still backs (the
    /// first half of that extent is gone): the driver quarantines the
    /// whole extent as ballooned, so these are ballooned but backed, and a
    /// later populate maps fresh pages over them (the old ones leak to
    /// the domain, as in Xen).
    pub stranded: BTreeSet<Pfn>,
    pub leaked_pages: u64,
}

impl FakeXen {
    pub fn new(backed: impl IntoIterator<Item = Pfn>, host_free_pages: u64) -> Self {
        FakeXen {
            backed: backed.into_iter().collect(),
            host_free_pages,
            max_pages: u64::MAX,
            max_extents: MAX_BATCH_EXTENTS,
            max_order: SUPERPAGE_ORDER,
            ..Default::default()
        }
    }

    /// Checks the call, then the extents Xen will look at (a prefix).
    pub fn limit(&mut self, op: Op, order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.calls.push((op, order, extents.len()));
        if extents.len() > MAX_BATCH_EXTENTS {
            self.violations.push("batch over 512".to_string());
        }
        if order != 0 && order != SUPERPAGE_ORDER {
            self.violations.push(format!("order {order}"));
        }
        if let Some(p) = extents.iter().find(|&&p| p % (1 << order) != 0) {
            self.violations
                .push(format!("extent {p} not aligned to order {order}"));
        }
        if extents.len() > self.max_extents {
            return Err(Errno::E2BIG);
        }
        match self.script.pop_front() {
            None => Ok(extents.len()),
            Some(Inject::Partial(k)) => Ok(k.min(extents.len())),
            Some(Inject::Fail(e)) => Err(e),
        }
    }

    pub fn mapped(&self, pfn: Pfn) -> bool {
        self.backed.contains(&pfn) || self.pod.contains(&pfn)
    }

    /// Reservation calls of `op` and `order` made so far.
    pub fn count(&self, op: Op, order: u32) -> usize {
        self.calls
            .iter()
            .filter(|c| c.0 == op && c.1 == order)
            .count()
    }
}

impl MemoryOps for FakeXen {
    fn decrease_reservation(&mut self, order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.decrease_calls += 1;
        let limit = self.limit(Op::Decrease, order, extents)?;
        let n = 1u64 << order;
        let mut done = 0;
        for &start in &extents[..limit] {
            // The driver only releases frames it holds: every frame of
            // the extent must be mapped.
            if !(start..start + n).all(|p| self.mapped(p)) {
                self.violations
                    .push(format!("decrease of unmapped frames in {start}/{order}"));
                break;
            }
            for pfn in start..start + n {
                if self.backed.remove(&pfn) {
                    self.host_free_pages += 1;
                } else {
                    self.pod.remove(&pfn);
                }
                self.released.push(pfn);
            }
            done += 1;
        }
        // Like Xen, a partial multi-page result stops inside the next
        // extent: its first half is already removed.
        if order > 0 && done == limit && limit < extents.len() {
            let start = extents[limit];
            if (start..start + n).all(|p| self.mapped(p)) {
                for pfn in start..start + n / 2 {
                    if self.backed.remove(&pfn) {
                        self.host_free_pages += 1;
                    }
                    self.released.push(pfn);
                }
                self.stranded.extend(start + n / 2..start + n);
            }
        }
        Ok(done)
    }

    fn populate_physmap(&mut self, order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.populate_calls += 1;
        let limit = self.limit(Op::Populate, order, extents)?;
        if order > self.max_order {
            return Ok(0);
        }
        let n = 1u64 << order;
        let no_memory = |x: &Self| x.host_free_pages < n || (order > 0 && x.fragmented);
        let mut done = 0;
        for &start in &extents[..limit] {
            if (start..start + n).any(|p| self.mapped(p) && !self.stranded.contains(&p)) {
                self.violations
                    .push(format!("populate of a mapped gfn in {start}/{order}"));
                break;
            }
            let tot = self.backed.len() as u64 + self.extra_pages;
            if tot + n > self.max_pages || no_memory(self) {
                break;
            }
            self.host_free_pages -= n;
            for pfn in start..start + n {
                if self.stranded.remove(&pfn) {
                    // Mapped over: the old page stays the domain's.
                    self.leaked_pages += 1;
                }
                self.backed.insert(pfn);
            }
            done += 1;
        }
        if done == 0 && limit > 0 && no_memory(self) {
            return Err(Errno::ENOMEM);
        }
        Ok(done)
    }

    fn current_reservation(&mut self) -> Result<u64, Errno> {
        Ok(self.backed.len() as u64 + self.extra_pages + self.leaked_pages)
    }

    fn maximum_reservation(&mut self) -> Result<u64, Errno> {
        Ok(self.max_pages)
    }
}
