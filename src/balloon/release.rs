//! The release path: free frames out of the allocator, scrubbed, to Xen
//! (XENMEM_decrease_reservation), with exact accounting of partial
//! results and quarantine of an extent Xen stopped inside.

use super::extent::{block_of, extents_to_pages, order_pages, BatchOutcome};
use super::{Balloon, BalloonError, Scrubber, SUPERPAGE_ORDER, SUPERPAGE_PAGES};
use crate::mm::frame::{FrameAllocator, FrameState, TakenFrame};
use crate::mm::Pfn;
use crate::xen::ops::MemoryOps;

impl Balloon {
    /// Returns the extents `batch[from..]` to the free lists in reverse
    /// order of taking (the frames of an order-9 extent in ascending order,
    /// the reverse of the descending order the free list hands them out
    /// in), which restores the lists exactly in the usual case.
    pub(super) fn give_back(&mut self, frames: &mut FrameAllocator<'_>, from: usize) {
        let len = order_pages(self.batch_order);
        for i in (from..self.batch.len()).rev() {
            let start = self.batch[i];
            for pfn in start..start.saturating_add(len) {
                if let Err(e) = frames.return_taken(pfn) {
                    // The frame stays Taken: lost to us, but never handed
                    // out.
                    self.last_error = Some(BalloonError::Frame(e));
                }
            }
        }
        self.batch.clear();
    }

    /// Zeroes a taken frame if it is dirty and scrubbing is on.
    pub(super) fn scrub_taken<S: Scrubber>(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        scrub: &mut S,
        pfn: Pfn,
        dirty: bool,
    ) -> Result<(), BalloonError> {
        if dirty && self.config.scrub {
            scrub
                .scrub(frames, pfn)
                .map_err(|_| BalloonError::Scrub(pfn))?;
            self.counters.scrubbed_pages += 1;
            frames.mark_scrubbed(pfn).map_err(BalloonError::Frame)?;
        }
        Ok(())
    }

    /// Takes up to `want` free frames into `batch` as extents of one
    /// order (scrubbing dirty ones): whole free 2 MiB blocks as order-9
    /// extents while the target wants at least a block, else single
    /// frames; the batch ends where the order would change. On error the
    /// caller gives the batch back.
    pub(super) fn gather_release<S: Scrubber>(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        scrub: &mut S,
        want: u64,
    ) -> Result<(), BalloonError> {
        let mut order = None;
        let mut pages = 0u64;
        // A block found not wholly free (or too big for what is left):
        // taking frames never makes it whole, so do not look again.
        let mut not_whole = None;
        while pages < want && self.batch.len() < self.batch_limit {
            // The frames kept free for page faults stay.
            if frames.free_pages() <= self.keep_free_pages {
                break;
            }
            let Some(next) = frames.peek_for_balloon() else {
                break;
            };
            let block = block_of(next);
            let whole = want - pages >= SUPERPAGE_PAGES
                && not_whole != Some(block)
                && frames
                    .run_in_state(block, SUPERPAGE_PAGES, FrameState::Free)
                    .is_ok();
            if !whole {
                not_whole = Some(block);
            }
            match (order, whole) {
                (Some(SUPERPAGE_ORDER), false) | (Some(0), true) => break,
                (_, true) => {
                    frames
                        .take_run_for_balloon(block, SUPERPAGE_PAGES)
                        .map_err(BalloonError::Frame)?;
                    order = Some(SUPERPAGE_ORDER);
                    self.batch_order = SUPERPAGE_ORDER;
                    self.batch.push(block);
                    pages = pages.saturating_add(SUPERPAGE_PAGES);
                    for pfn in block..block.saturating_add(SUPERPAGE_PAGES) {
                        let dirty = frames.is_dirty(pfn) != Some(false);
                        self.scrub_taken(frames, scrub, pfn, dirty)?;
                    }
                }
                (_, false) => {
                    let Some(TakenFrame { pfn, dirty }) = frames.take_for_balloon() else {
                        break;
                    };
                    order = Some(0);
                    self.batch_order = 0;
                    self.batch.push(pfn);
                    pages = pages.saturating_add(1);
                    self.scrub_taken(frames, scrub, pfn, dirty)?;
                }
            }
        }
        Ok(())
    }

    /// Takes up to `want` free frames (scrubbing dirty ones) and releases
    /// them in one hypercall, as extents of one order.
    pub(super) fn release_batch<M: MemoryOps, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut FrameAllocator<'_>,
        scrub: &mut S,
        want: u64,
    ) -> Result<BatchOutcome, BalloonError> {
        self.batch.clear();
        self.batch_order = 0;
        if let Err(e) = self.gather_release(frames, scrub, want) {
            self.give_back(frames, 0);
            return Err(e);
        }
        let tried = self.batch.len();
        if tried == 0 {
            return Ok(BatchOutcome::Empty);
        }
        let order = self.batch_order;
        self.counters.hypercalls += 1;
        let moved = match ops.decrease_reservation(order, &self.batch) {
            Ok(k) => k,
            Err(e) => {
                self.give_back(frames, 0);
                return Err(BalloonError::Hypercall(e));
            }
        };
        // Xen never reports more than it was given; if it does, trust only
        // the extents we passed (all of them are gone).
        let moved = moved.min(tried);
        let len = order_pages(order);
        for i in 0..moved {
            let start = self.batch[i];
            for pfn in start..start.saturating_add(len) {
                if let Err(e) = frames.mark_ballooned(pfn) {
                    self.last_error = Some(BalloonError::Frame(e));
                }
            }
        }
        // Xen removes a multi-page extent page by page and stops at the
        // first page it cannot remove without counting the extent: the
        // pages before that one are already gone. Such an extent may be
        // partly unbacked, so its frames must never be handed out again as
        // populated memory: they are quarantined as ballooned (no data is
        // in them, they were free) and come back through a later populate,
        // which maps fresh pages over whatever Xen still has there.
        let mut give_back_from = moved;
        let mut quarantined_pages = 0;
        if order > 0 && moved < tried {
            let start = self.batch[moved];
            for pfn in start..start.saturating_add(len) {
                if let Err(e) = frames.mark_ballooned(pfn) {
                    self.last_error = Some(BalloonError::Frame(e));
                }
            }
            self.counters.quarantined_extents += 1;
            quarantined_pages = len;
            give_back_from = moved + 1;
        }
        self.give_back(frames, give_back_from);
        let moved_pages = extents_to_pages(moved, order);
        if moved > 0 {
            self.counters.batches += 1;
            self.counters.released_pages = self.counters.released_pages.saturating_add(moved_pages);
            if order == SUPERPAGE_ORDER {
                self.counters.superpages_released += moved as u64;
            }
        }
        if quarantined_pages > 0 {
            // Quarantined frames left the populated set too: report them
            // as moved so that the caller's accounting stays exact.
            return Ok(BatchOutcome::Stopped {
                moved: moved_pages.saturating_add(quarantined_pages),
            });
        }
        Ok(BatchOutcome::Done {
            moved: moved_pages,
            tried: extents_to_pages(tried, order),
        })
    }
}
