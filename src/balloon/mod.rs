//! The balloon driver: gives free frames back to Xen
//! (XENMEM_decrease_reservation) and takes them again
//! (XENMEM_populate_physmap), following a target in pages.
//!
//! # Model
//!
//! The driver models the domain as the RAM frames of its memory map (the
//! frame allocator's `total_pages`). Each of them is either *populated*
//! (backed by memory: reserved, free, allocated) or *ballooned* (given back
//! to Xen). Invariant: `populated + ballooned == total`, and a frame is
//! never both free and ballooned (one [`FrameState`](crate::mm::frame::FrameState) per frame). Xen's own
//! count (`xl list`) also includes a few non-RAM pages (special pages,
//! ACPI tables); as Linux does, the driver subtracts `static-max - total`
//! from the toolstack's `memory/target` so both sides talk about the same
//! frames ([`Balloon::set_static_max_kib`]).
//!
//! # Targets
//!
//! - the toolstack target (`memory/target`, KiB) is an upper bound the
//!   guest never grows past; until it is known the bound is the size the
//!   domain had at start;
//! - the requested target (the self-balloon controller) may only lower it;
//! - the safety floor (frames in use at start plus a margin, or the
//!   configured floor if larger) is never crossed by shrinking; a lower
//!   target is clamped and [`BalloonStatus::clamped`] says so. Growing
//!   never passes the toolstack bound, even to reach the floor.
//!
//! # Populate-on-demand boot
//!
//! A guest created with `memory < maxmem` has a memory map covering
//! static-max but only `memory` pages of PoD cache behind it; touching more
//! frames than that crashes the domain. [`Balloon::init_pod`] compares the
//! frames the map says are populated with XENMEM_current_reservation and
//! releases the difference right away, taking the highest clean (never
//! touched) frames first; decrease_reservation on a PoD entry just drops
//! the entry. The frame allocator hands out low frames first, so nothing
//! touches the released ones before they go. The first [`Balloon::step`]
//! after `memory/target` is read then settles the rest.
//!
//! # Extents
//!
//! Xen does per-page p2m work for order-0 extents; a 2 MiB extent
//! ([`SUPERPAGE_ORDER`]) is one superpage operation, and populating whole
//! 2 MiB extents lets Xen map the guest with superpages. So every
//! complete, naturally aligned run of [`SUPERPAGE_PAGES`] frames that is
//! moved as a whole goes as one order-9 extent, the rest as order-0
//! extents:
//!
//! - releasing looks at the frame the allocator would hand out next
//!   (highest clean frame first); if its whole aligned 2 MiB block is free
//!   and the target wants at least that many frames, the block is taken in
//!   one go, else the single frame;
//! - growing walks the ballooned list (most recently ballooned first); a
//!   frame whose whole aligned block is ballooned brings in the block.
//!
//! One hypercall carries extents of one order, in the order found; a batch
//! ends where the order would change. If Xen cannot populate an order-9
//! extent (ENOMEM or no progress: host memory too fragmented) the same
//! frames are retried at once as order-0 extents, without a back-off, and
//! order 9 is not tried again for populating in that step (or
//! [`Balloon::ensure_free`] call).
//!
//! # Work and failure
//!
//! [`Balloon::step`] does at most `max_batches_per_step` hypercalls (plus
//! one order-0 retry after an order-9 populate failure) of at most
//! [`MAX_BATCH_EXTENTS`] extents, moves at most `max_pages_per_step`
//! frames, and says when it wants to run next. A partial result (Xen does
//! the extents in order and stops at the first failure) is accounted
//! exactly, whole extents at a time: frames of released extents become
//! Ballooned, the rest return to the free lists unchanged; frames of
//! populated extents become Free and clean, the rest stay Ballooned. An
//! error or zero progress starts a back-off (1 s doubling to 32 s, reset
//! on success) for that direction. Only free frames are ever released, so
//! when memory is in use the driver stops where it can and reports
//! [`Limit::InUse`].

#![forbid(unsafe_code)]

mod backoff;
mod extent;
mod populate;
mod release;
mod status;
mod target;
#[cfg(test)]
mod tests;
mod types;

use alloc::vec::Vec;

pub use crate::xen::ops::{SUPERPAGE_ORDER, SUPERPAGE_PAGES};
pub use extent::MAX_BATCH_EXTENTS;
pub use status::{parse_target_kib, publish, BalloonStatus, TargetParseError, XENSTORE_KEYS};
pub use types::{BalloonConfig, BalloonCounters, BalloonError, Limit, Progress, StepReport};

use crate::mm::direct::{DirectMapError, PhysPages};
use crate::mm::frame::{FrameAllocator, FrameCounts};
use crate::mm::Pfn;
use crate::xen::ops::MemoryOps;
use backoff::{Backoff, Direction};
use extent::BatchOutcome;

const NS_PER_S: u64 = 1_000_000_000;

/// Zeroes a frame before it leaves the domain.
pub trait Scrubber {
    /// Overwrites the 4 KiB frame `pfn`, which `frames` shows `Taken`,
    /// with zeros. On error the frame is not released.
    fn scrub(&mut self, frames: &FrameAllocator<'_>, pfn: Pfn) -> Result<(), DirectMapError>;
}

/// The kernel's scrubber: zeroes the frame through the page access.
#[derive(Debug)]
pub struct ZeroScrubber<'a, P: PhysPages>(pub &'a mut P);

impl<P: PhysPages> Scrubber for ZeroScrubber<'_, P> {
    fn scrub(&mut self, frames: &FrameAllocator<'_>, pfn: Pfn) -> Result<(), DirectMapError> {
        self.0.page_mut(frames, pfn)?.fill(0);
        Ok(())
    }
}

/// The balloon driver's state. It owns no frames: the allocator, the
/// hypercalls and the scrubber are passed to each call.
#[derive(Debug)]
pub struct Balloon {
    config: BalloonConfig,
    total_pages: u64,
    floor_pages: u64,
    /// The upper bound while the toolstack target is unknown.
    start_pages: u64,
    static_max_kib: Option<u64>,
    toolstack_target_kib: Option<u64>,
    requested_target_pages: Option<u64>,
    /// Extents per hypercall at most (halved on E2BIG).
    batch_limit: usize,
    /// Whether populating may use order-9 extents (cleared by a failed
    /// order-9 populate until the end of the step or `ensure_free` call).
    superpage_populate: bool,
    backoff: Option<Backoff>,
    /// The delay the next failure waits.
    next_delay_s: u32,
    last_error: Option<BalloonError>,
    limit: Option<Limit>,
    counters: BalloonCounters,
    /// The extents of the batch in hand (first pfns), in the order found.
    batch: Vec<Pfn>,
    /// The extent order of `batch`.
    batch_order: u32,
    /// Free frames releasing never takes (the pager's watermark).
    keep_free_pages: u64,
    /// Xen's `max_pages` for the domain, in our frames, when pages the
    /// hypervisor holds for us count against it (tmem); `None`: no such
    /// bound is tracked.
    hypervisor_max_pages: Option<u64>,
    /// Pages the hypervisor holds for us and charges to the domain.
    hypervisor_held_pages: u64,
}

impl Balloon {
    /// A driver for the domain the allocator describes. The floor is
    /// computed now from the frames in use plus the margin.
    pub fn new(config: BalloonConfig, counts: FrameCounts) -> Self {
        let in_use = counts
            .reserved_pages
            .saturating_add(counts.allocated_pages)
            .saturating_add(counts.taken_pages);
        let floor_pages = config
            .floor_pages
            .max(in_use.saturating_add(config.margin_pages))
            .min(counts.total_pages);
        let backoff_initial_s = config.backoff_initial_s.max(1);
        Balloon {
            config: BalloonConfig {
                backoff_initial_s,
                backoff_max_s: config.backoff_max_s.max(backoff_initial_s),
                ..config
            },
            total_pages: counts.total_pages,
            floor_pages,
            start_pages: counts.populated_pages(),
            static_max_kib: None,
            toolstack_target_kib: None,
            requested_target_pages: None,
            batch_limit: MAX_BATCH_EXTENTS,
            superpage_populate: true,
            backoff: None,
            next_delay_s: backoff_initial_s,
            last_error: None,
            limit: None,
            counters: BalloonCounters::default(),
            batch: Vec::with_capacity(MAX_BATCH_EXTENTS),
            batch_order: 0,
            keep_free_pages: 0,
            hypervisor_max_pages: None,
            hypervisor_held_pages: 0,
        }
    }

    /// Keeps `pages` frames free: releasing stops when only they are left
    /// (the pager's watermark, so that a page fault always finds a frame).
    pub fn set_keep_free_pages(&mut self, pages: u64) {
        self.keep_free_pages = pages;
    }

    /// The configuration in use.
    pub fn config(&self) -> &BalloonConfig {
        &self.config
    }

    /// Turns scrubbing on or off.
    pub fn set_scrub(&mut self, scrub: bool) {
        self.config.scrub = scrub;
    }

    /// Running totals.
    pub fn counters(&self) -> BalloonCounters {
        self.counters
    }

    /// The status, for logs and xenstore.
    pub fn status(&self, counts: FrameCounts) -> BalloonStatus {
        BalloonStatus::new(self, counts)
    }

    /// Does a bounded amount of work towards the target. Never blocks,
    /// never spins: follow `next_call_ns`.
    pub fn step<M: MemoryOps, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut FrameAllocator<'_>,
        scrub: &mut S,
        now_ns: u64,
    ) -> StepReport {
        let mut report = StepReport {
            released_pages: 0,
            populated_pages: 0,
            progress: Progress::Working,
            next_call_ns: Some(now_ns),
        };
        self.limit = None;
        self.superpage_populate = true;
        let mut budget = self.config.max_pages_per_step.max(1);
        let mut batches = 0;
        while batches < self.config.max_batches_per_step.max(1) {
            let populated = frames.counts().populated_pages();
            let target = self.target_pages();
            let grow_to = target.min(self.upper_pages());
            let direction = if populated > target {
                Direction::Shrink
            } else if populated < grow_to {
                Direction::Grow
            } else {
                report.progress = Progress::Reached;
                report.next_call_ns = None;
                return report;
            };
            if let Some(b) = self.backoff {
                if b.direction == direction && now_ns < b.until_ns {
                    report.progress = Progress::BackingOff;
                    report.next_call_ns = Some(b.until_ns);
                    return report;
                }
            }
            if budget == 0 {
                // More to do, but this step has moved enough.
                return report;
            }
            batches += 1;
            let result = match direction {
                Direction::Shrink => {
                    self.release_batch(ops, frames, scrub, (populated - target).min(budget))
                }
                Direction::Grow => {
                    self.populate_batch(ops, frames, (grow_to - populated).min(budget))
                }
            };
            let err = match result {
                Ok(BatchOutcome::Empty) => {
                    let limit = match direction {
                        Direction::Shrink => Limit::InUse,
                        Direction::Grow => Limit::NoBallooned,
                    };
                    self.limit = Some(limit);
                    report.progress = Progress::Limited(limit);
                    // Frames in use may be freed later: look again in a
                    // second. A missing ballooned frame never reappears.
                    report.next_call_ns = match limit {
                        Limit::InUse => Some(now_ns.saturating_add(NS_PER_S)),
                        _ => None,
                    };
                    return report;
                }
                Ok(BatchOutcome::Fallback) => {
                    // Retry as order 0 at once; this attempt does not
                    // count as a batch (it happens once per step).
                    batches -= 1;
                    continue;
                }
                Ok(BatchOutcome::Done { moved, tried }) if moved > 0 => {
                    self.succeed();
                    budget = budget.saturating_sub(moved);
                    match direction {
                        Direction::Shrink => {
                            report.released_pages = report.released_pages.saturating_add(moved)
                        }
                        Direction::Grow => {
                            report.populated_pages = report.populated_pages.saturating_add(moved)
                        }
                    }
                    if moved < tried {
                        // Xen stopped short; the next call finds out why.
                        return report;
                    }
                    continue;
                }
                Ok(BatchOutcome::Done { .. }) => BalloonError::NoProgress,
                Ok(BatchOutcome::Stopped { moved }) => {
                    report.released_pages = report.released_pages.saturating_add(moved);
                    BalloonError::NoProgress
                }
                Err(e) if self.shrink_batch_on_e2big(e) => return report,
                Err(e) => e,
            };
            report.progress = Progress::BackingOff;
            report.next_call_ns = Some(self.fail(direction, err, now_ns));
            return report;
        }
        report
    }

    /// Makes sure at least `pages` frames are free, populating ballooned
    /// frames now if needed, up to the toolstack bound (the self-balloon
    /// target and any back-off are ignored). For allocations that cannot
    /// wait. Frames populated before a failure stay populated and free.
    pub fn ensure_free<M: MemoryOps>(
        &mut self,
        ops: &mut M,
        frames: &mut FrameAllocator<'_>,
        pages: u64,
    ) -> Result<(), BalloonError> {
        self.superpage_populate = true;
        loop {
            let counts = frames.counts();
            let free = counts.free_pages;
            if free >= pages {
                return Ok(());
            }
            let headroom = self.upper_pages().saturating_sub(counts.populated_pages());
            let want = (pages - free).min(headroom);
            let err = if want == 0 {
                BalloonError::Limited(Limit::ToolstackTarget)
            } else {
                match self.populate_batch(ops, frames, want) {
                    Ok(BatchOutcome::Done { moved, .. }) if moved > 0 => continue,
                    Ok(BatchOutcome::Fallback) => continue,
                    Ok(BatchOutcome::Done { .. } | BatchOutcome::Stopped { .. }) => {
                        BalloonError::NoProgress
                    }
                    Ok(BatchOutcome::Empty) => BalloonError::Limited(Limit::NoBallooned),
                    Err(e) if self.shrink_batch_on_e2big(e) => continue,
                    Err(e) => e,
                }
            };
            self.last_error = Some(err);
            return Err(err);
        }
    }

    /// Populate-on-demand boot: releases the frames the memory map shows
    /// but the domain does not hold (`populated - current_reservation`),
    /// highest clean frames first, before anything touches them. Runs to
    /// completion (it is boot) and returns the frames released; on error
    /// the rest is left to [`step`](Self::step). The floor does not apply:
    /// these frames have no memory behind them. Call it right after
    /// [`new`](Self::new), before the heap grows.
    pub fn init_pod<M: MemoryOps, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut FrameAllocator<'_>,
        scrub: &mut S,
        current_reservation_pages: u64,
    ) -> Result<u64, BalloonError> {
        let mut released = 0u64;
        let result = loop {
            let populated = frames.counts().populated_pages();
            let excess = populated.saturating_sub(current_reservation_pages);
            if excess == 0 {
                break Ok(released);
            }
            match self.release_batch(ops, frames, scrub, excess) {
                Ok(BatchOutcome::Done { moved, .. }) if moved > 0 => {
                    released = released.saturating_add(moved)
                }
                // Only populating falls back; treat it as no progress.
                Ok(BatchOutcome::Fallback) => break Err(BalloonError::NoProgress),
                Ok(BatchOutcome::Done { .. }) => break Err(BalloonError::NoProgress),
                // The stopped extent is quarantined (ballooned); the error
                // tells the caller the release is incomplete.
                Ok(BatchOutcome::Stopped { .. }) => break Err(BalloonError::NoProgress),
                Ok(BatchOutcome::Empty) => break Err(BalloonError::Limited(Limit::InUse)),
                Err(e) if self.shrink_batch_on_e2big(e) => {}
                Err(e) => break Err(e),
            }
        };
        // Without a toolstack target, hold the size we settled at.
        self.start_pages = frames.counts().populated_pages();
        if let Err(e) = result {
            self.last_error = Some(e);
        }
        result
    }
}
