//! Demand paging for the workload's memory: the pageable region's page
//! states, the second-chance reclaimer, page-in on fault, page-out to
//! frontswap, and frontswap shrinking (a partial swap-off).
//!
//! # Page states
//!
//! Every page of the region ([`Vpn`]) is in one [`PageState`]:
//!
//! ```text
//!            alloc_page                 first touch (fault)
//!   Free ───────────────► Zero ─────────────────────────────► ResidentZero
//!    ▲                     ▲  clean page-out (no store)           │ written
//!    │ free_page           └───────────────────────────────────────┤
//!    │ (from any state)                                            ▼
//!    │            fault / shrink: take from frontswap          Resident
//!    │        ┌──────────────────────────────────────────────────┐  │
//!    │     Swapped ◄───────────────────── page-out (store ok) ───┼──┘
//!    │                                   store refused ─► ResidentRefused
//! ```
//!
//! - `Zero`: allocated, no frame, reads as zeros (demand-zero).
//! - `ResidentZero`: mapped by a zero fill; while its dirty bit is clear
//!   it still reads as zeros, and a page-out just drops it.
//! - `Resident`: mapped, content only in its frame.
//! - `ResidentRefused`: frontswap refused it (it did not compress, or the
//!   pool is full). It stays mapped; the reclaimer passes it by until it
//!   is written again (the dirty bit, cleared at the refusal). These pages
//!   are what the guest cannot give up: [`PagerCounts::refused_pages`].
//! - `Swapped`: no frame; frontswap holds the only copy, in slot `vpn`.
//!
//! Cache pages (the workload's clean, recomputable pages; [`cache`]) have
//! three more states:
//!
//! ```text
//!   any resident ──mark_clean──► ResidentClean ──reclaim (clean)──► Cached
//!                                  ▲      │ written: Resident   put to cleancache
//!                       fault, hit │      ▼ (frontswap as usual)  (may be dropped)
//!                                  └──────────────── Cached ◄──────┘
//!                       fault, miss: CacheMiss (zeros) ──reclaim──► Cached
//! ```
//!
//! - `ResidentClean`: mapped, unwritten since the workload computed it
//!   and said so ([`PagerCtx::mark_clean`]): a page-out puts it to
//!   cleancache instead of frontswap and frees the frame, whether the put
//!   was taken or not.
//! - `Cached`: no frame; cleancache may hold a copy (a get removes it).
//! - `CacheMiss`: a fault found nothing in cleancache and mapped zeros;
//!   the workload asks ([`PagerCtx::cache_missed`]), recomputes and
//!   writes the page, and marks it clean again.
//!
//! A written (dirty) clean page is an ordinary one: it goes to frontswap,
//! so no written data is ever put where it may be dropped.
//!
//! Page-in is exclusive (a `take`): a page lives in exactly one of its
//! frame and frontswap, so `frontswap_curr_pages` counts only pages that
//! are out.
//!
//! # Where frames come from
//!
//! The pager works on the loop's frame allocator, lent to it with the
//! balloon and the reservation calls ([`PagerCtx`]). A frame for a page-in
//! is, in order ([`PagerCtx::take_frame`]):
//!
//! 1. a free frame above the watermark;
//! 2. a frame ballooned in now, within the toolstack's target;
//! 3. the frame of a cold page paged out for it (the reclaimer);
//! 4. a free frame below the watermark (faults only).
//!
//! The watermark ([`Pager::watermark_pages`]) is what makes a fault always
//! resolvable: the loop refills the free frames up to it before the
//! workload runs and the balloon never releases the last of them, and one
//! workload step touches fewer pages than the watermark holds, each access
//! taking at most one fault. So step 4 never finds the allocator empty,
//! even when nothing can be paged out (Linux's `min_free_kbytes`, for the
//! same reason). If the loop cannot refill it the workload waits, as an
//! allocation that cannot get a frame does.

#![forbid(unsafe_code)]

mod cache;
#[cfg(test)]
mod cache_tests;
mod clock;
mod ctx;
mod pool;
mod swapdev;
#[cfg(test)]
mod test_rig;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

pub use clock::SecondChance;
pub use ctx::{unbounded_heap, PagedSource, PagerCtx, HEAP_SPARE_BYTES, TMEM_ROOM_SLACK_PAGES};
pub use pool::{PoolStock, STORE_STOCK_FRAMES};
pub use swapdev::{GuestSwap, SwapDevice, SwapFigures};

use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::vm::Vpn;

/// The state of one page of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageState {
    /// Not allocated.
    Free,
    /// Allocated, no frame, reads as zeros.
    Zero,
    /// Mapped by a zero fill (zero while clean).
    ResidentZero,
    /// Mapped.
    Resident,
    /// Mapped; frontswap refused it and it has not been written since.
    ResidentRefused,
    /// In frontswap.
    Swapped,
    /// Mapped, a clean cache page (recomputable, unwritten since).
    ResidentClean,
    /// No frame; cleancache may hold it.
    Cached,
    /// Mapped with zeros after a cleancache miss: to be recomputed.
    CacheMiss,
}

impl PageState {
    /// Whether the page has a frame.
    pub const fn is_resident(self) -> bool {
        matches!(
            self,
            PageState::ResidentZero
                | PageState::Resident
                | PageState::ResidentRefused
                | PageState::ResidentClean
                | PageState::CacheMiss
        )
    }
}

/// Counters of the pager, for the status (`page_faults`, `pageouts`,
/// `pageins`, `swap_refused`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagerStats {
    /// Faults resolved.
    pub page_faults: u64,
    /// Faults that mapped a zeroed frame (first touch).
    pub zero_fills: u64,
    /// Pages brought back from frontswap (faults and shrinking).
    pub pageins: u64,
    /// Of which by frontswap shrinking.
    pub shrink_pageins: u64,
    /// Pages stored to frontswap.
    pub pageouts: u64,
    /// Clean zero pages dropped without a store.
    pub clean_drops: u64,
    /// Stores frontswap refused.
    pub swap_refused: u64,
    /// Of which because the index bound (or the heap's spare) was
    /// reached.
    pub index_full: u64,
    /// Reclaims skipped because frontswap had no room.
    pub full_skips: u64,
    /// Faults that had to use a frame below the watermark.
    pub reserve_frames_used: u64,
    /// Frames ballooned in by faults.
    pub fault_balloon_pages: u64,
    /// Faults that could not be resolved (fatal on the machine).
    pub fault_failures: u64,
    /// Pages frontswap did not give back (must stay 0).
    pub lost_pages: u64,
    /// Clean cache pages cleancache took at a page-out
    /// (`cleancache_puts`).
    pub cache_puts: u64,
    /// Clean pages dropped with nothing kept (cleancache refused them,
    /// or they were zeros after a miss, or the heap was short).
    pub cache_drops: u64,
    /// Faults on a `Cached` page that cleancache answered
    /// (`cleancache_hits`).
    pub cache_hits: u64,
    /// Faults on a `Cached` page it did not (`cleancache_misses`).
    pub cache_misses: u64,
}

/// How many pages are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagerCounts {
    /// Pages allocated (all but `Free`).
    pub allocated_pages: u64,
    /// Pages with a frame.
    pub resident_pages: u64,
    /// Pages in frontswap.
    pub swapped_pages: u64,
    /// Resident pages frontswap refused (the floor's part that cannot be
    /// paged out now).
    pub refused_pages: u64,
    /// Resident clean cache pages (`ResidentClean`, `CacheMiss`).
    pub clean_pages: u64,
    /// Cache pages out of memory (`Cached`: in cleancache or dropped).
    pub cached_pages: u64,
}

impl PagerCounts {
    /// Counts a page in state `s` in (`up`) or out of every count it
    /// belongs to.
    fn tally(&mut self, s: PageState, up: bool) {
        let f = |x: &mut u64| *x = if up { *x + 1 } else { x.saturating_sub(1) };
        if s != PageState::Free {
            f(&mut self.allocated_pages);
        }
        if s.is_resident() {
            f(&mut self.resident_pages);
        }
        if s == PageState::Swapped {
            f(&mut self.swapped_pages);
        }
        if s == PageState::ResidentRefused {
            f(&mut self.refused_pages);
        }
        if matches!(s, PageState::ResidentClean | PageState::CacheMiss) {
            f(&mut self.clean_pages);
        }
        if s == PageState::Cached {
            f(&mut self.cached_pages);
        }
    }
}

/// Frames kept free for faults by default (2 MiB): a workload step (256
/// pages) at one fault each, and the pool's warm-up. A pool that starts
/// empty needs a zspage (1 to 4 frames) for each size class it meets
/// before it packs densely: the first hundred `mixed` pages out take
/// more frames than they free (64 pages in 92 frames, measured in the
/// host tests), and that must come from free frames.
pub const DEFAULT_WATERMARK_PAGES: u64 = 512;

/// The pager's own state. It holds no frames itself: see [`PagerCtx`].
#[derive(Debug)]
pub struct Pager {
    states: Vec<PageState>,
    clock: SecondChance,
    /// Pages never allocated start here.
    next_unused: Vpn,
    /// Pages freed, for reuse (LIFO).
    free_vpns: Vec<Vpn>,
    /// Where frontswap shrinking looks for the next swapped page.
    shrink_cursor: Vpn,
    watermark_pages: u64,
    counts: PagerCounts,
    stats: PagerStats,
    /// A page's bytes on their way to or from frontswap (on the heap, not
    /// on the fault handler's stack).
    bounce: Box<Page>,
    /// A fault's balloon-up failed this turn: do not retry it per fault.
    balloon_failed: bool,
    /// Pages frontswap may hold at most ([`Pager::set_max_swapped_pages`]).
    max_swapped_pages: u64,
    /// Stores refused for room (the pool's limit, no frame) since
    /// frontswap last gave room back (a page-in, a free, a new limit):
    /// past [`ROOM_REFUSALS_MAX`] the reclaimer does not try again, so a
    /// full pool costs no compressions.
    room_refusals: u32,
}

/// Stores refused for room the reclaimer accepts before it waits for
/// frontswap to make room.
pub const ROOM_REFUSALS_MAX: u32 = 16;

impl Pager {
    /// A pager for a region of `pages` pages (at most 2^32), keeping
    /// `watermark_pages` frames free for faults.
    pub fn new(pages: u64, watermark_pages: u64) -> Self {
        let pages = pages.min(u64::from(u32::MAX));
        Pager {
            states: vec![PageState::Free; pages as usize],
            clock: SecondChance::new(pages),
            next_unused: 0,
            free_vpns: Vec::new(),
            shrink_cursor: 0,
            watermark_pages,
            counts: PagerCounts::default(),
            stats: PagerStats::default(),
            bounce: Box::new([0; PAGE_BYTES]),
            balloon_failed: false,
            max_swapped_pages: u64::MAX,
            room_refusals: 0,
        }
    }

    /// Frontswap may have room again (its limit changed).
    pub fn room_changed(&mut self) {
        self.room_refusals = 0;
    }

    /// Bounds the pages paged out at once (tests; the kernel bounds them
    /// by the heap left instead, `PagerCtx::heap_free_bytes`). Beyond the
    /// bound a page-out is refused, and the reclaimer stops.
    pub fn set_max_swapped_pages(&mut self, pages: u64) {
        self.max_swapped_pages = pages;
    }

    /// The bound of [`set_max_swapped_pages`](Self::set_max_swapped_pages).
    pub fn max_swapped_pages(&self) -> u64 {
        self.max_swapped_pages
    }

    /// Pages in the region.
    pub fn pages(&self) -> u64 {
        self.states.len() as u64
    }

    /// The state of `vpn` (`None` outside the region).
    pub fn state(&self, vpn: Vpn) -> Option<PageState> {
        self.states.get(usize::try_from(vpn).ok()?).copied()
    }

    /// Frames kept free for faults.
    pub fn watermark_pages(&self) -> u64 {
        self.watermark_pages
    }

    /// Counts by state.
    pub fn counts(&self) -> PagerCounts {
        self.counts
    }

    /// Counters.
    pub fn stats(&self) -> PagerStats {
        self.stats
    }

    /// A new loop turn: faults may try to balloon up again.
    pub fn new_turn(&mut self) {
        self.balloon_failed = false;
    }

    fn set_state(&mut self, vpn: Vpn, new: PageState) {
        let old = core::mem::replace(&mut self.states[vpn as usize], new);
        self.counts.tally(old, false);
        self.counts.tally(new, true);
    }

    /// Checks the counts and the clock against the states (tests, O(pages)).
    pub fn check(&self) -> Result<(), &'static str> {
        let mut c = PagerCounts::default();
        for (v, &s) in self.states.iter().enumerate() {
            c.tally(s, true);
            if s.is_resident() != self.clock.contains(v as u64) {
                return Err("clock and states disagree");
            }
        }
        if c != self.counts {
            return Err("counts disagree with the states");
        }
        if !self.clock.check() {
            return Err("clock positions broken");
        }
        Ok(())
    }
}
