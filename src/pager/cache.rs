//! Cache pages in the pager: clean, recomputable pages of the workload
//! that reclaim drops into cleancache instead of frontswap, and that a
//! fault looks up there first (see the state diagram in `pager`).
//!
//! # What runs in fault context
//!
//! A fault on a `Cached` page is a page-in like one from frontswap
//! (`PagerCtx::page_in`, whose fill is [`PagerCtx::fill_from_cleancache`]):
//! a frame (whose search may reclaim, and so put other clean pages to
//! cleancache), one cleancache
//! get into the pager's bounce page on the heap (for Xen's tmem one
//! hypercall that copies into the backend's bounce frame, then a copy out
//! of it; for `zpool` a decompression from pool frames), and a copy
//! through the identity map into the new frame. None of it touches the
//! region's virtual addresses, so it cannot fault again (and if it did,
//! the fault would find the handler's lock held: fatal, never recursion).
//! A miss is not an error: the fault maps zeros and the page becomes
//! `CacheMiss`, which the workload sees through
//! [`PagerCtx::cache_missed`] and recomputes.

use super::ctx::PageOut;
use super::{PageState, PagerCtx, SwapDevice, HEAP_SPARE_BYTES};
use crate::mm::vm::{Mmu, Vpn};
use crate::xen::ops::MemoryOps;

/// Pages of the clock a search for a clean victim looks at, at most,
/// before reclaim falls back to any cold page (a look at a page that is
/// not clean is one state read, no page-table access).
pub const CLEAN_FIRST_SCAN_PAGES: u32 = 512;

impl<M: Mmu, S: SwapDevice, O: MemoryOps> PagerCtx<'_, '_, M, S, O> {
    /// A cold clean cache page to reclaim before any other, as Linux
    /// reclaims page cache before anonymous memory: the clock's hand
    /// moves over at most [`CLEAN_FIRST_SCAN_PAGES`] pages, giving clean
    /// ones their second chance and leaving the others' accessed bits
    /// alone. `None`: no clean page, or none cold within the scan.
    pub(super) fn clean_victim(&mut self) -> Option<Vpn> {
        if self.pager.counts.clean_pages == 0 {
            return None;
        }
        let mmu = &mut *self.mmu;
        let states = &self.pager.states;
        let mut seen = 0u32;
        let mut found = false;
        let v = self.pager.clock.next_victim(|v| {
            seen = seen.saturating_add(1);
            let clean = matches!(
                states.get(v as usize),
                Some(PageState::ResidentClean | PageState::CacheMiss)
            );
            if clean && !mmu.test_and_clear_accessed(v).unwrap_or(false) {
                found = true;
                return true;
            }
            seen >= CLEAN_FIRST_SCAN_PAGES
        })?;
        found.then_some(v)
    }

    /// Marks a resident page clean and recomputable (a cache page whose
    /// content the workload just computed and wrote): its dirty bit is
    /// cleared, and until it is written again a page-out puts it to
    /// cleancache. `false` (nothing changed) if the page is not resident.
    pub fn mark_clean(&mut self, vpn: Vpn) -> bool {
        match self.pager.state(vpn) {
            Some(s) if s.is_resident() => {
                let _ = self.mmu.test_and_clear_dirty(vpn);
                self.pager.set_state(vpn, PageState::ResidentClean);
                true
            }
            _ => false,
        }
    }

    /// Whether `vpn` holds the zeros a cleancache miss mapped
    /// (`CacheMiss`, not written since): the workload must recompute it
    /// (and [`mark_clean`] it again).
    ///
    /// [`mark_clean`]: PagerCtx::mark_clean
    pub fn cache_missed(&self, vpn: Vpn) -> bool {
        self.pager.state(vpn) == Some(PageState::CacheMiss)
            && self.mmu.peek(vpn).is_some_and(|e| !e.dirty)
    }

    /// The page-out of a clean cache page, or `None` if `vpn` is not one
    /// (or was written since: then it goes to frontswap as any page).
    /// The page is read, its frame freed, and it is put to cleancache; a
    /// refused put loses nothing (it is recomputable) and the page is
    /// `Cached` either way. A `CacheMiss` page (zeros) is just dropped.
    pub(super) fn cache_page_out(
        &mut self,
        vpn: Vpn,
        state: PageState,
        dirty: bool,
    ) -> Option<PageOut> {
        if dirty {
            return None;
        }
        match state {
            PageState::CacheMiss => {
                self.unmap_and_free(vpn);
                self.pager.set_state(vpn, PageState::Cached);
                self.pager.stats.cache_drops += 1;
                Some(PageOut::Out)
            }
            PageState::ResidentClean => {
                let heap_short = (self.heap_free_bytes)() < HEAP_SPARE_BYTES;
                let read = !heap_short && self.mmu.read(vpn, &mut self.pager.bounce).is_ok();
                self.unmap_and_free(vpn);
                self.pager.set_state(vpn, PageState::Cached);
                if read
                    && self
                        .swap
                        .cache_put(self.frames, vpn, &self.pager.bounce)
                        .is_ok()
                {
                    self.pager.stats.cache_puts += 1;
                } else {
                    self.pager.stats.cache_drops += 1;
                }
                Some(PageOut::Out)
            }
            _ => None,
        }
    }

    /// Fills the newly mapped frame of a `Cached` page from cleancache:
    /// its page on a hit (`ResidentClean`), zeros on a miss (`CacheMiss`);
    /// `None` if the frame could not be written. The fill goes through
    /// the identity map, so the page starts clean.
    pub(super) fn fill_from_cleancache(&mut self, vpn: Vpn) -> Option<PageState> {
        let hit = self
            .swap
            .cache_get(self.frames, vpn, &mut self.pager.bounce);
        let filled = if hit {
            self.mmu.write(vpn, &self.pager.bounce).is_ok()
        } else {
            self.mmu.zero(vpn).is_ok()
        };
        if !filled {
            return None;
        }
        let _ = self.mmu.test_and_clear_dirty(vpn);
        Some(if hit {
            PageState::ResidentClean
        } else {
            PageState::CacheMiss
        })
    }
}
