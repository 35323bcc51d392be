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
//! never both free and ballooned (one [`FrameState`] per frame). Xen's own
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

mod status;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use status::{parse_target_kib, publish, BalloonStatus, TargetParseError, XENSTORE_KEYS};

use crate::mm::frame::{FrameCounts, FrameError, FrameState, TakenFrame};
use crate::mm::{kib_to_pages, Pfn};
use crate::xen::errno::Errno;
use crate::xen::ops::MemoryOps;
pub use crate::xen::ops::{SUPERPAGE_ORDER, SUPERPAGE_PAGES};

/// Most extents per hypercall, whatever their order (one page of
/// `xen_pfn_t`, as Linux): 2 MiB of order-0 extents, 1 GiB of order-9.
pub const MAX_BATCH_EXTENTS: usize = 512;

/// The first frame of the aligned 2 MiB block holding `pfn`.
const fn block_of(pfn: Pfn) -> Pfn {
    pfn & !(SUPERPAGE_PAGES - 1)
}

/// Frames in one extent of the orders the driver uses (0 or
/// [`SUPERPAGE_ORDER`]).
const fn order_pages(order: u32) -> u64 {
    if order == SUPERPAGE_ORDER {
        SUPERPAGE_PAGES
    } else {
        1
    }
}

/// Frames in `extents` extents of `order` (saturating; batches are far
/// below the limit).
fn extents_to_pages(extents: usize, order: u32) -> u64 {
    u64::try_from(extents)
        .unwrap_or(u64::MAX)
        .saturating_mul(order_pages(order))
}

const NS_PER_S: u64 = 1_000_000_000;

/// What the driver needs from the frame allocator
/// (implemented by [`crate::mm::frame::FrameAllocator`]).
pub trait BalloonFrames {
    /// Takes a free frame out for release, highest clean frame first.
    fn take_for_balloon(&mut self) -> Option<TakenFrame>;
    /// Records that a taken frame has been zeroed.
    fn mark_scrubbed(&mut self, pfn: Pfn) -> Result<(), FrameError>;
    /// Puts a taken frame back on the free lists, unchanged.
    fn return_taken(&mut self, pfn: Pfn) -> Result<(), FrameError>;
    /// Records that Xen took the taken frame.
    fn mark_ballooned(&mut self, pfn: Pfn) -> Result<(), FrameError>;
    /// Copies up to `out.len()` ballooned pfns into `out`; returns how many.
    fn peek_ballooned(&self, out: &mut [Pfn]) -> usize;
    /// Records that Xen populated a ballooned frame again (Free, clean).
    fn unballoon(&mut self, pfn: Pfn) -> Result<(), FrameError>;
    /// Counts by state.
    fn counts(&self) -> FrameCounts;
    /// The frame [`take_for_balloon`](Self::take_for_balloon) would take
    /// next, without taking it.
    fn peek_for_balloon(&self) -> Option<Pfn>;
    /// Takes all frames of `[start, start + count)` for release if every
    /// one is free; else takes nothing and says why.
    fn take_run_for_balloon(&mut self, start: Pfn, count: u64) -> Result<(), FrameError>;
    /// Whether every frame of `[start, start + count)` is in `state`
    /// (false if the run leaves the allocator's window).
    fn run_in_state(&self, start: Pfn, count: u64, state: FrameState) -> bool;
    /// Whether the frame may hold data (`None` outside the window).
    fn is_dirty(&self, pfn: Pfn) -> Option<bool>;
    /// Walks the ballooned frames in the order of
    /// [`peek_ballooned`](Self::peek_ballooned): the first for `None`,
    /// else the one after `after`.
    fn next_ballooned(&self, after: Option<Pfn>) -> Option<Pfn>;
}

/// Zeroes a frame before it leaves the domain.
pub trait Scrubber {
    /// Overwrites the 4 KiB frame `pfn` with zeros.
    fn scrub(&mut self, pfn: Pfn);
}

/// Tunables of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonConfig {
    /// The floor as configured (`balloon_floor_mb`); the effective floor is
    /// at least the frames in use at start plus `margin_pages`.
    pub floor_pages: u64,
    /// Free frames kept above those in use at start.
    pub margin_pages: u64,
    /// Zero dirty frames before releasing them (default on).
    pub scrub: bool,
    /// Hypercalls per [`Balloon::step`] at most (at least 1 is used; an
    /// order-0 retry after a failed order-9 populate comes on top).
    pub max_batches_per_step: u32,
    /// Frames moved per [`Balloon::step`] at most (at least 1 is used).
    /// With order-9 extents one hypercall can move up to 1 GiB; this keeps
    /// a step (and its scrubbing) bounded.
    pub max_pages_per_step: u64,
    /// First back-off delay.
    pub backoff_initial_s: u32,
    /// Back-off delay cap.
    pub backoff_max_s: u32,
}

impl Default for BalloonConfig {
    fn default() -> Self {
        BalloonConfig {
            floor_pages: 0,
            margin_pages: 1024,
            scrub: true,
            max_batches_per_step: 16,
            max_pages_per_step: 32768,
            backoff_initial_s: 1,
            backoff_max_s: 32,
        }
    }
}

/// Why the driver cannot move further towards its target right now
/// (without a hypercall failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Shrinking: every remaining populated frame is in use.
    InUse,
    /// Growing: no ballooned frame left (target beyond the memory map).
    NoBallooned,
    /// Urgent growth: the toolstack target is reached.
    ToolstackTarget,
}

/// Why a balloon operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalloonError {
    /// The hypercall failed.
    Hypercall(Errno),
    /// The hypercall succeeded but did nothing.
    NoProgress,
    /// The frame allocator refused a transition (a bug; the frame is left
    /// where it is safe: an unbacked frame is never handed out).
    Frame(FrameError),
    /// Cannot proceed; see [`Limit`].
    Limited(Limit),
}

impl BalloonError {
    /// The errno to show in the status (zero progress as EAGAIN, allocator
    /// trouble as EIO, limits as ENOMEM).
    pub fn errno(self) -> Errno {
        match self {
            BalloonError::Hypercall(e) => e,
            BalloonError::NoProgress => Errno::EAGAIN,
            BalloonError::Frame(_) => Errno::EIO,
            BalloonError::Limited(_) => Errno::ENOMEM,
        }
    }
}

/// Where a [`Balloon::step`] left things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// At the target; nothing to do until it changes.
    Reached,
    /// More to do; call again (at `next_call_ns`).
    Working,
    /// A hypercall failed; waiting out the back-off.
    BackingOff,
    /// Stopped short of the target; see [`Limit`].
    Limited(Limit),
}

/// The outcome of one [`Balloon::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Frames given to Xen in this step.
    pub released_pages: u64,
    /// Frames populated in this step.
    pub populated_pages: u64,
    /// Where things stand.
    pub progress: Progress,
    /// When to call `step` again (monotonic ns), `None` when only a target
    /// change can give it work.
    pub next_call_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Shrink,
    Grow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backoff {
    direction: Direction,
    until_ns: u64,
    delay_s: u32,
}

/// Running totals, for the status and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalloonCounters {
    /// Hypercalls made (decrease and populate).
    pub hypercalls: u64,
    /// Hypercalls that moved at least one frame.
    pub batches: u64,
    /// Frames released since start.
    pub released_pages: u64,
    /// Frames populated since start.
    pub populated_pages: u64,
    /// Frames scrubbed since start.
    pub scrubbed_pages: u64,
    /// Order-9 (2 MiB) extents released since start (their frames are
    /// also in `released_pages`).
    pub superpages_released: u64,
    /// Order-9 extents populated since start (their frames are also in
    /// `populated_pages`).
    pub superpages_populated: u64,
    /// Order-9 populate hypercalls Xen could not serve (host memory
    /// fragmented), retried as order 0.
    pub superpage_fallbacks: u64,
    /// Multi-page extents Xen stopped inside (possibly partly removed),
    /// kept out of use as ballooned rather than returned as free.
    pub quarantined_extents: u64,
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
}

enum BatchOutcome {
    /// `moved` of `tried` frames moved (`tried > 0`).
    Done { moved: u64, tried: u64 },
    /// Nothing to try (no free / no ballooned frame).
    Empty,
    /// Xen could not populate order-9 extents; nothing moved, order 0 is
    /// to be tried at once.
    Fallback,
    /// Xen stopped inside a multi-page extent while releasing: `moved`
    /// frames left the populated set (the extents done plus the stopped
    /// one, quarantined as ballooned). Counts as a failure: back off.
    Stopped { moved: u64 },
}

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
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &BalloonConfig {
        &self.config
    }

    /// Turns scrubbing on or off.
    pub fn set_scrub(&mut self, scrub: bool) {
        self.config.scrub = scrub;
    }

    /// Records `memory/static-max` (KiB): the toolstack's targets are then
    /// reduced by the pages it counts beyond our RAM frames.
    pub fn set_static_max_kib(&mut self, kib: Option<u64>) {
        self.static_max_kib = kib;
    }

    /// Sets the toolstack target (`memory/target`, KiB), or `None` when
    /// unknown.
    pub fn set_toolstack_target_kib(&mut self, kib: Option<u64>) {
        self.toolstack_target_kib = kib;
    }

    /// Parses a `memory/target` value and applies it. On error nothing
    /// changes.
    pub fn apply_toolstack_target(&mut self, value: &str) -> Result<u64, TargetParseError> {
        let kib = parse_target_kib(value)?;
        self.set_toolstack_target_kib(Some(kib));
        Ok(kib)
    }

    /// Sets the self-balloon controller's target, or `None` for none.
    pub fn set_requested_target_pages(&mut self, pages: Option<u64>) {
        self.requested_target_pages = pages;
    }

    /// Forgets any back-off so that the next `step` tries at once (e.g.
    /// after the toolstack changed the target).
    pub fn kick(&mut self) {
        self.backoff = None;
    }

    /// Pages Xen counts beyond our RAM frames.
    fn offset_pages(&self) -> u64 {
        self.static_max_kib
            .map_or(0, |kib| kib_to_pages(kib).saturating_sub(self.total_pages))
    }

    /// The toolstack bound in our frames (never above the memory map).
    pub fn upper_pages(&self) -> u64 {
        match self.toolstack_target_kib {
            Some(kib) => kib_to_pages(kib).saturating_sub(self.offset_pages()),
            None => self.start_pages,
        }
        .min(self.total_pages)
    }

    /// min(toolstack bound, requested target) before the floor.
    fn wanted_pages(&self) -> u64 {
        self.upper_pages()
            .min(self.requested_target_pages.unwrap_or(u64::MAX))
    }

    /// The effective target: the wanted size clamped up to the floor.
    pub fn target_pages(&self) -> u64 {
        self.wanted_pages().max(self.floor_pages)
    }

    /// The safety floor in pages.
    pub fn floor_pages(&self) -> u64 {
        self.floor_pages
    }

    /// Whether the floor clamps the target.
    pub fn clamped(&self) -> bool {
        self.wanted_pages() < self.floor_pages
    }

    /// Running totals.
    pub fn counters(&self) -> BalloonCounters {
        self.counters
    }

    /// The status, for logs and xenstore.
    pub fn status(&self, counts: FrameCounts) -> BalloonStatus {
        BalloonStatus::new(self, counts)
    }

    /// Records a failure and starts (or lengthens) the back-off for
    /// `direction`; returns when to try again.
    fn fail(&mut self, direction: Direction, err: BalloonError, now_ns: u64) -> u64 {
        self.last_error = Some(err);
        let delay_s = self.next_delay_s;
        let until_ns = now_ns.saturating_add(u64::from(delay_s).saturating_mul(NS_PER_S));
        self.backoff = Some(Backoff {
            direction,
            until_ns,
            delay_s,
        });
        self.next_delay_s = delay_s.saturating_mul(2).min(self.config.backoff_max_s);
        until_ns
    }

    fn succeed(&mut self) {
        self.backoff = None;
        self.next_delay_s = self.config.backoff_initial_s;
    }

    /// The back-off delay in force, 0 when none.
    pub fn backoff_s(&self) -> u32 {
        self.backoff.map_or(0, |b| b.delay_s)
    }

    /// Returns the extents `batch[from..]` to the free lists in reverse
    /// order of taking (the frames of an order-9 extent in ascending order,
    /// the reverse of the descending order the free list hands them out
    /// in), which restores the lists exactly in the usual case.
    fn give_back<F: BalloonFrames>(&mut self, frames: &mut F, from: usize) {
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
    fn scrub_taken<F: BalloonFrames, S: Scrubber>(
        &mut self,
        frames: &mut F,
        scrub: &mut S,
        pfn: Pfn,
        dirty: bool,
    ) -> Result<(), BalloonError> {
        if dirty && self.config.scrub {
            scrub.scrub(pfn);
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
    fn gather_release<F: BalloonFrames, S: Scrubber>(
        &mut self,
        frames: &mut F,
        scrub: &mut S,
        want: u64,
    ) -> Result<(), BalloonError> {
        let mut order = None;
        let mut pages = 0u64;
        // A block found not wholly free (or too big for what is left):
        // taking frames never makes it whole, so do not look again.
        let mut not_whole = None;
        while pages < want && self.batch.len() < self.batch_limit {
            let Some(next) = frames.peek_for_balloon() else {
                break;
            };
            let block = block_of(next);
            let whole = want - pages >= SUPERPAGE_PAGES
                && not_whole != Some(block)
                && frames.run_in_state(block, SUPERPAGE_PAGES, FrameState::Free);
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
    fn release_batch<M: MemoryOps, F: BalloonFrames, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut F,
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

    /// Collects up to `want` ballooned frames into `batch` as extents of
    /// one order, walking the ballooned list: wholly ballooned 2 MiB
    /// blocks as order-9 extents (while allowed and the target wants at
    /// least a block), else single frames; the batch ends where the order
    /// would change. Changes nothing in the allocator. The walk visits
    /// each frame it moves once, plus at most one frame that ends it.
    fn gather_populate<F: BalloonFrames>(&mut self, frames: &F, want: u64) {
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
                        || !frames.run_in_state(block, SUPERPAGE_PAGES, FrameState::Ballooned)
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
    fn populate_batch<M: MemoryOps, F: BalloonFrames>(
        &mut self,
        ops: &mut M,
        frames: &mut F,
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

    /// A hypercall refused the batch size: halve it and retry at once,
    /// unless it is already 1.
    fn shrink_batch_on_e2big(&mut self, err: BalloonError) -> bool {
        if err == BalloonError::Hypercall(Errno::E2BIG) && self.batch_limit > 1 {
            self.batch_limit /= 2;
            self.last_error = Some(err);
            true
        } else {
            false
        }
    }

    /// Does a bounded amount of work towards the target. Never blocks,
    /// never spins: follow `next_call_ns`.
    pub fn step<M: MemoryOps, F: BalloonFrames, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut F,
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
    pub fn ensure_free<M: MemoryOps, F: BalloonFrames>(
        &mut self,
        ops: &mut M,
        frames: &mut F,
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
    pub fn init_pod<M: MemoryOps, F: BalloonFrames, S: Scrubber>(
        &mut self,
        ops: &mut M,
        frames: &mut F,
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
