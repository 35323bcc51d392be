//! The populate path: ballooned frames back from Xen
//! (XENMEM_populate_physmap), whole 2 MiB blocks as order-9 extents with
//! an order-0 fallback when host memory is fragmented.

use super::extent::{block_of, extents_to_pages, order_pages, BatchOutcome};
use super::{Balloon, BalloonError, SUPERPAGE_ORDER, SUPERPAGE_PAGES};
use crate::mm::frame::{FrameAllocator, FrameState};
use crate::mm::Pfn;
use crate::xen::errno::Errno;
use crate::xen::ops::MemoryOps;

/// What the populate walk knows about the 2 MiB block of the frame it is
/// looking at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Not wholly ballooned, or not to be populated as one extent.
    Partial,
    /// Wholly ballooned: one order-9 extent.
    Whole,
    /// Already an extent of the batch.
    Chosen,
}

impl Balloon {
    /// Collects up to `want` ballooned frames into `batch` as extents of
    /// one order, walking the ballooned list: wholly ballooned 2 MiB
    /// blocks as order-9 extents (while allowed and the target wants at
    /// least a block), else single frames; the batch ends where the order
    /// would change. Changes nothing in the allocator. The walk visits
    /// each frame it moves once, plus at most one frame that ends it.
    pub(super) fn gather_populate(&mut self, frames: &FrameAllocator<'_>, want: u64) {
        self.batch.clear();
        self.batch_order = 0;
        let mut order = None;
        let mut pages = 0u64;
        // The block of the frame last looked at, and what it is.
        let mut seen: Option<(Pfn, Block)> = None;
        let mut cursor = frames.next_ballooned(None);
        while let Some(pfn) = cursor {
            if pages >= want || self.batch.len() >= self.batch_limit {
                break;
            }
            let block = block_of(pfn);
            let kind = match seen {
                Some((b, kind)) if b == block => kind,
                _ => {
                    if !self.superpage_populate
                        || want - pages < SUPERPAGE_PAGES
                        || frames
                            .run_in_state(block, SUPERPAGE_PAGES, FrameState::Ballooned)
                            .is_err()
                    {
                        Block::Partial
                    } else if order == Some(SUPERPAGE_ORDER) && self.batch.contains(&block) {
                        Block::Chosen
                    } else {
                        Block::Whole
                    }
                }
            };
            let kind = match (order, kind) {
                (_, Block::Chosen) => Block::Chosen,
                (Some(SUPERPAGE_ORDER), Block::Partial) | (Some(0), Block::Whole) => break,
                (_, Block::Whole) => {
                    order = Some(SUPERPAGE_ORDER);
                    self.batch_order = SUPERPAGE_ORDER;
                    self.batch.push(block);
                    pages = pages.saturating_add(SUPERPAGE_PAGES);
                    Block::Chosen
                }
                (_, Block::Partial) => {
                    order = Some(0);
                    self.batch.push(pfn);
                    pages = pages.saturating_add(1);
                    Block::Partial
                }
            };
            seen = Some((block, kind));
            cursor = frames.next_ballooned(Some(pfn));
        }
    }

    /// Populates up to `want` ballooned frames in one hypercall, as
    /// extents of one order.
    pub(super) fn populate_batch<M: MemoryOps>(
        &mut self,
        ops: &mut M,
        frames: &mut FrameAllocator<'_>,
        want: u64,
    ) -> Result<BatchOutcome, BalloonError> {
        self.gather_populate(frames, want);
        let tried = self.batch.len();
        if tried == 0 {
            return Ok(BatchOutcome::Empty);
        }
        let order = self.batch_order;
        self.counters.hypercalls += 1;
        let result = ops.populate_physmap(order, &self.batch);
        if order == SUPERPAGE_ORDER && matches!(result, Ok(0) | Err(Errno::ENOMEM)) {
            // No 2 MiB of host memory in one piece: the same frames go as
            // order 0 next, without a back-off.
            self.superpage_populate = false;
            self.counters.superpage_fallbacks += 1;
            self.batch.clear();
            return Ok(BatchOutcome::Fallback);
        }
        let moved = match result {
            Ok(k) => k.min(tried),
            Err(e) => {
                self.batch.clear();
                return Err(BalloonError::Hypercall(e));
            }
        };
        let len = order_pages(order);
        for i in 0..moved {
            let start = self.batch[i];
            for pfn in start..start.saturating_add(len) {
                if let Err(e) = frames.unballoon(pfn) {
                    // Backed but still marked ballooned: wasted, never
                    // unsafe.
                    self.last_error = Some(BalloonError::Frame(e));
                }
            }
        }
        self.batch.clear();
        let moved_pages = extents_to_pages(moved, order);
        if moved > 0 {
            self.counters.batches += 1;
            self.counters.populated_pages =
                self.counters.populated_pages.saturating_add(moved_pages);
            if order == SUPERPAGE_ORDER {
                self.counters.superpages_populated += moved as u64;
            }
        }
        Ok(BatchOutcome::Done {
            moved: moved_pages,
            tried: extents_to_pages(tried, order),
        })
    }
}
