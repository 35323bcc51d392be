//! The pager at work: [`PagerCtx`] borrows everything a page-in or a
//! page-out touches (the pager's state, the region's MMU, frontswap, the
//! frame allocator, the balloon and the reservation calls) for the length
//! of one operation or one workload step, and is the page-fault handler
//! while the workload runs.
//!
//! # What runs in fault context
//!
//! [`PagerCtx::handle`] (through [`crate::mm::fault::deliver`]): the page
//! state table, the clock, the frame allocator's O(1) paths, one balloon
//! populate hypercall batch, zpool's compression and decompression,
//! cleancache puts and gets (`cache.rs`: for Xen's tmem one hypercall
//! through its bounce frame), and copies through the identity map. All of
//! it is identity-mapped kernel
//! memory (heap, image, page-table and pool frames): nothing touches the
//! region's virtual addresses except the workload, so the handler cannot
//! fault again; if it did, the fault would find the handler's lock held and
//! be reported as fatal ([`crate::mm::fault::Resolution::Busy`]).

use alloc::boxed::Box;

use super::{PageState, Pager, SwapDevice};
use crate::balloon::Balloon;
use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::fault::{Fault, FaultHandler, Resolution, Shared};
use crate::mm::frame::{FrameAllocator, FrameState};
use crate::mm::vm::{vpn_of, Mmu, RegionAccess, Vpn};
use crate::mm::Pfn;
use crate::swap::frontswap::FrontswapError;
use crate::swap::tmem::{Refusal, TmemError};
use crate::workload::engine::{MapError, PageSource};
use crate::xen::ops::MemoryOps;

/// Refusals a fault's reclaim accepts before it gives up (each costs a
/// compression; this bounds a fault's latency).
const FAULT_RECLAIM_TRIES: usize = 32;
/// Refusals the loop's reclaim accepts for one page out.
const LOOP_RECLAIM_TRIES: usize = 256;

/// Pages a fault pages out at most to bring the free frames back above
/// the watermark. One page-out frees a frame but the pool may need part
/// of one to hold it, so a single page-out per fault would let the pool
/// eat the watermark; Linux reclaims in batches (`SWAP_CLUSTER_MAX`) too.
const FAULT_RECLAIM_BATCH: u32 = 32;

/// What a page-out did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PageOut {
    /// The page is out and its frame free.
    Out,
    /// Frontswap refused it; it stays resident. If it was refused for
    /// its content (it does not compress) it is passed by until written
    /// again; if for room (the pool's limit, no frame for the pool), it
    /// stays a candidate: another page may still fit the pool's free
    /// slots.
    Kept,
    /// The index bound is reached: no page can go now; the reclaimer
    /// stops.
    Full,
}

/// Whether the tier refused for its configured limit (room comes back
/// only when pages leave it).
fn is_over_limit(e: &FrontswapError) -> bool {
    // The last tier asked decides: the pool behind Xen's tmem, or the
    // only tier.
    match e {
        FrontswapError::Refused {
            fallback: Some(last),
            ..
        }
        | FrontswapError::Refused {
            primary: last,
            fallback: None,
        } => matches!(last, TmemError::Refused(Refusal::OverLimit)),
        _ => false,
    }
}

/// Whether a refusal is about this page (it will be refused again until
/// it changes) rather than about room in the tier.
fn refused_for_content(e: &FrontswapError) -> bool {
    let content = |t: &TmemError| matches!(t, TmemError::Refused(Refusal::Incompressible));
    match e {
        FrontswapError::Refused { primary, fallback } => {
            content(primary) && fallback.as_ref().is_none_or(content)
        }
        _ => false,
    }
}

/// Where a frame may come from (see the module documentation of
/// `pager`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sources {
    reclaim: bool,
    below_watermark: bool,
}

/// Everything the pager works with, borrowed.
#[derive(Debug)]
pub struct PagerCtx<'a, 'f, M, S, O> {
    /// The pager's state.
    pub pager: &'a mut Pager,
    /// The region's page tables.
    pub mmu: &'a mut M,
    /// Frontswap.
    pub swap: &'a mut S,
    /// The loop's frame allocator.
    pub frames: &'a mut FrameAllocator<'f>,
    /// The balloon, to grow within the toolstack target.
    pub balloon: &'a mut Balloon,
    /// Reservation calls for the balloon.
    pub mem: &'a mut O,
    /// Bytes the kernel heap has free now: frontswap's index lives there
    /// and a page-out must not make it run out ([`HEAP_SPARE_BYTES`]).
    pub heap_free_bytes: fn() -> u64,
}

/// Room under Xen's `max_pages` that tmem puts leave unused, for the
/// frames of page-ins and balloon-ups (256 KiB).
pub const TMEM_ROOM_SLACK_PAGES: u64 = 64;

/// Heap a page-out leaves free at least: room for the index of the pages
/// one turn may page out and everything else the kernel allocates.
pub const HEAP_SPARE_BYTES: u64 = 2 << 20;

/// A heap gauge for contexts without a heap limit (host tests).
pub fn unbounded_heap() -> u64 {
    u64::MAX
}

impl<M: Mmu, S: SwapDevice, O: MemoryOps> PagerCtx<'_, '_, M, S, O> {
    /// Allocates a page of the region (demand-zero: no frame until it is
    /// touched). `None` when the region is full.
    pub fn alloc_page(&mut self) -> Option<Vpn> {
        let p = &mut *self.pager;
        let vpn = match p.free_vpns.pop() {
            Some(v) => v,
            None if p.next_unused < p.pages() => {
                p.next_unused += 1;
                p.next_unused - 1
            }
            None => return None,
        };
        p.set_state(vpn, PageState::Zero);
        Some(vpn)
    }

    /// Frees a page of the region, whatever its state: its frame goes
    /// back to the allocator, its frontswap copy is dropped.
    pub fn free_page(&mut self, vpn: Vpn) {
        match self.pager.state(vpn) {
            None | Some(PageState::Free) => {
                log::error!("pager: free of page {vpn:#x}, which is not allocated");
                return;
            }
            Some(PageState::Zero) => {}
            Some(PageState::Swapped) => {
                self.swap.invalidate(self.frames, vpn);
                self.note_hypervisor_held();
                self.pager.room_refusals = 0;
            }
            Some(PageState::Cached) => self.swap.cache_flush(self.frames, vpn),
            Some(_) => self.unmap_and_free(vpn),
        }
        self.pager.set_state(vpn, PageState::Free);
        self.pager.free_vpns.push(vpn);
    }

    /// Opens Xen's tmem to the next page-out only while the domain has
    /// room for it under `max_pages` and [`TMEM_ROOM_SLACK_PAGES`] besides
    /// (Xen 4.12 charges each tmem page to the domain: at `max_pages` it
    /// refuses the put, and with no slack the next page-in or balloon-up
    /// would find no room for its frame). Closed, the page goes to the
    /// in-guest pool, which compresses it inside the frames the domain
    /// already has.
    fn admit_hypervisor(&mut self) {
        let populated = self.frames.counts().populated_pages();
        let admits = self
            .balloon
            .hypervisor_room_pages(populated)
            .is_none_or(|room| room > TMEM_ROOM_SLACK_PAGES);
        self.swap.set_hypervisor_admits(admits);
    }

    /// Tells the balloon how many pages the hypervisor holds for us now.
    fn note_hypervisor_held(&mut self) {
        self.balloon
            .set_hypervisor_held_pages(self.swap.hypervisor_pages());
    }

    pub(super) fn unmap_and_free(&mut self, vpn: Vpn) {
        self.pager.clock.remove(vpn);
        match self.mmu.unmap(vpn) {
            Ok(u) => {
                if let Err(e) = self.frames.free_as(u.pfn, FrameState::Paged) {
                    log::error!("pager: frame {:#x} of page {vpn:#x}: {e}", u.pfn);
                }
            }
            Err(e) => log::error!("pager: unmap of resident page {vpn:#x}: {e}"),
        }
    }

    /// A frame for a page-in, from the sources allowed (see the module
    /// documentation of `pager`).
    fn take_frame(&mut self, from: Sources) -> Option<Pfn> {
        let w = self.pager.watermark_pages;
        if self.frames.free_pages() > w {
            return self.alloc_paged();
        }
        // Balloon up, within the toolstack target only.
        let c = self.frames.counts();
        if !self.pager.balloon_failed && self.balloon.upper_pages() > c.populated_pages() {
            let before = c.populated_pages();
            match self.balloon.ensure_free(self.mem, self.frames, w + 1) {
                Ok(()) => {}
                Err(_) => self.pager.balloon_failed = true,
            }
            let grown = self
                .frames
                .counts()
                .populated_pages()
                .saturating_sub(before);
            self.pager.stats.fault_balloon_pages += grown;
            if self.frames.free_pages() > w {
                return self.alloc_paged();
            }
        }
        if from.reclaim {
            let mut n = 0;
            while self.frames.free_pages() <= w
                && n < FAULT_RECLAIM_BATCH
                && self.reclaim_one(FAULT_RECLAIM_TRIES)
            {
                n += 1;
            }
            if self.frames.free_pages() > w {
                return self.alloc_paged();
            }
        }
        if from.below_watermark && self.frames.free_pages() > 0 {
            self.pager.stats.reserve_frames_used += 1;
            return self.alloc_paged();
        }
        None
    }

    fn alloc_paged(&mut self) -> Option<Pfn> {
        self.frames.alloc_as(FrameState::Paged).map(|a| a.pfn)
    }

    /// Maps `vpn` to a frame and fills it: zeros, its page from
    /// frontswap, or (a cache page) its page from cleancache, zeros on a
    /// miss. On error nothing changed (the page is where it was).
    fn page_in(&mut self, vpn: Vpn, from: Sources) -> Result<(), &'static str> {
        let state = self.pager.state(vpn).ok_or("page outside the region")?;
        if !matches!(
            state,
            PageState::Zero | PageState::Swapped | PageState::Cached
        ) {
            return Err("page-in of a page that is not out");
        }
        let pfn = self.take_frame(from).ok_or("no frame for a page-in")?;
        if let Err(e) = self.mmu.map(vpn, pfn) {
            log::error!("pager: map {vpn:#x} -> {pfn:#x}: {e}");
            let _ = self.frames.free_as(pfn, FrameState::Paged);
            return Err("map failed");
        }
        let filled = match state {
            PageState::Swapped => {
                let bounce: &mut Page = &mut self.pager.bounce;
                let taken = self.swap.take(self.frames, vpn, bounce);
                self.note_hypervisor_held();
                match taken {
                    Ok(()) => self
                        .mmu
                        .write(vpn, &self.pager.bounce)
                        .is_ok()
                        .then_some(PageState::Resident),
                    Err(e) => {
                        // The map named the page and the tier did not give
                        // it: frontswap has counted it lost. Nothing to map.
                        log::error!("pager: frontswap lost page {vpn:#x}: {e:?}");
                        self.pager.stats.lost_pages += 1;
                        None
                    }
                }
            }
            PageState::Cached => self.fill_from_cleancache(vpn),
            _ => self
                .mmu
                .zero(vpn)
                .is_ok()
                .then_some(PageState::ResidentZero),
        };
        let Some(now) = filled else {
            if let Ok(u) = self.mmu.unmap(vpn) {
                let _ = self.frames.free_as(u.pfn, FrameState::Paged);
            }
            return Err("page-in failed");
        };
        self.pager.clock.insert(vpn);
        self.pager.set_state(vpn, now);
        let s = &mut self.pager.stats;
        match now {
            PageState::Resident => {
                self.pager.room_refusals = 0;
                s.pageins += 1;
            }
            PageState::ResidentZero => s.zero_fills += 1,
            PageState::ResidentClean => s.cache_hits += 1,
            _ => s.cache_misses += 1,
        }
        Ok(())
    }

    /// Pages a resident page out: dropped if it is a clean zero fill,
    /// else stored to frontswap; kept resident if frontswap refuses.
    ///
    /// Order, so that a page-out can make progress with no free frame at
    /// all: the page is copied to the bounce buffer, unmapped and its
    /// frame freed, and only then stored (the pool may take that very
    /// frame). If the store is refused, the page goes back into a frame
    /// (the one just freed, or one the pool's stock gives back) from the
    /// bounce buffer, which held it throughout: nothing is lost either
    /// way.
    fn page_out(&mut self, vpn: Vpn) -> PageOut {
        let Some(state) = self.pager.state(vpn).filter(|s| s.is_resident()) else {
            return PageOut::Kept;
        };
        let Some(entry) = self.mmu.peek(vpn) else {
            log::error!("pager: resident page {vpn:#x} is not mapped");
            return PageOut::Kept;
        };
        if state == PageState::ResidentZero && !entry.dirty {
            self.unmap_and_free(vpn);
            self.pager.set_state(vpn, PageState::Zero);
            self.pager.stats.clean_drops += 1;
            return PageOut::Out;
        }
        // Clean cache pages go to cleancache (pager/cache.rs).
        if let Some(out) = self.cache_page_out(vpn, state, entry.dirty) {
            return out;
        }
        if self.pager.counts.swapped_pages >= self.pager.max_swapped_pages
            || (self.heap_free_bytes)() < HEAP_SPARE_BYTES
        {
            self.pager.stats.index_full += 1;
            return PageOut::Full;
        }
        let bounce: &mut Page = &mut self.pager.bounce;
        if self.mmu.read(vpn, bounce).is_err() {
            return PageOut::Kept;
        }
        self.unmap_and_free(vpn);
        self.admit_hypervisor();
        let stored = self.swap.store(self.frames, vpn, &self.pager.bounce);
        self.note_hypervisor_held();
        match stored {
            Ok(()) => {
                self.pager.set_state(vpn, PageState::Swapped);
                self.pager.stats.pageouts += 1;
                PageOut::Out
            }
            Err(e) => {
                self.pager.stats.swap_refused += 1;
                let content = refused_for_content(&e);
                if !content && is_over_limit(&e) {
                    self.pager.room_refusals = self.pager.room_refusals.saturating_add(1);
                }
                self.restore(vpn, content);
                PageOut::Kept
            }
        }
    }

    /// Puts a page whose store was refused back into a frame, from the
    /// bounce buffer. Its dirty bit starts clear: a page refused for its
    /// content is passed by until written again.
    fn restore(&mut self, vpn: Vpn, refused_for_content: bool) {
        let pfn = match self.alloc_paged() {
            Some(p) => Some(p),
            None => {
                // The pool's stock took the frame: it gives it back.
                self.swap.release_stock(self.frames);
                self.alloc_paged()
            }
        };
        let restored = pfn.is_some_and(|pfn| {
            if self.mmu.map(vpn, pfn).is_err() {
                let _ = self.frames.free_as(pfn, FrameState::Paged);
                return false;
            }
            self.mmu.write(vpn, &self.pager.bounce).is_ok()
        });
        if !restored {
            // Cannot happen (a frame was freed just before); if it did, the
            // page would be lost: say so loudly and keep counting.
            log::error!("pager: page {vpn:#x} could not be put back after a refused store");
            self.pager.stats.lost_pages += 1;
            self.pager.set_state(vpn, PageState::Zero);
            return;
        }
        self.pager.clock.insert(vpn);
        let state = if refused_for_content {
            PageState::ResidentRefused
        } else {
            PageState::Resident
        };
        self.pager.set_state(vpn, state);
    }

    /// Pages out one cold page (second chance), accepting at most `tries`
    /// refusals. `true`: a frame is free.
    fn reclaim_one(&mut self, tries: usize) -> bool {
        for _ in 0..tries.max(1) {
            // Clean cache pages first, frontswap room or not (cache.rs).
            if let Some(vpn) = self.clean_victim() {
                match self.page_out(vpn) {
                    PageOut::Out => return true,
                    PageOut::Kept => {}
                    PageOut::Full => return false,
                }
            }
            if self.pager.room_refusals >= super::ROOM_REFUSALS_MAX {
                self.pager.stats.full_skips += 1;
                return false;
            }
            let mmu = &mut *self.mmu;
            let states = &self.pager.states;
            let victim = self.pager.clock.next_victim(|v| {
                // Second chance for a page used since the hand passed.
                if mmu.test_and_clear_accessed(v).unwrap_or(false) {
                    return false;
                }
                // A refused page goes again only once written since.
                states[v as usize] != PageState::ResidentRefused
                    || mmu.test_and_clear_dirty(v).unwrap_or(false)
            });
            let Some(vpn) = victim else { return false };
            match self.page_out(vpn) {
                PageOut::Out => return true,
                PageOut::Kept => {}
                PageOut::Full => return false,
            }
        }
        false
    }

    /// Pages out up to `pages` cold pages; returns how many frames were
    /// freed.
    pub fn reclaim(&mut self, pages: u64) -> u64 {
        let mut freed = 0;
        while freed < pages && self.reclaim_one(LOOP_RECLAIM_TRIES) {
            freed += 1;
        }
        freed
    }

    /// Frees frames until `populated - target_pages` of them can be
    /// released with the watermark still free, paging out at most
    /// `max_pages`. Returns the pages paged out.
    pub fn reclaim_for_target(&mut self, target_pages: u64, max_pages: u64) -> u64 {
        let mut done = 0;
        while done < max_pages {
            let c = self.frames.counts();
            let excess = c.populated_pages().saturating_sub(target_pages);
            if excess == 0 || c.free_pages >= excess.saturating_add(self.pager.watermark_pages) {
                break;
            }
            if !self.reclaim_one(LOOP_RECLAIM_TRIES) {
                break;
            }
            done += 1;
        }
        done
    }

    /// Makes sure the watermark's frames are free before the workload
    /// runs: balloons up within the toolstack target, else pages out.
    /// `false` if it cannot (the workload must wait).
    pub fn replenish(&mut self) -> bool {
        let w = self.pager.watermark_pages;
        if self.frames.free_pages() >= w {
            return true;
        }
        let c = self.frames.counts();
        if self.balloon.upper_pages() > c.populated_pages() {
            let _ = self.balloon.ensure_free(self.mem, self.frames, w);
        }
        while self.frames.free_pages() < w {
            if !self.reclaim_one(LOOP_RECLAIM_TRIES) {
                return false;
            }
        }
        true
    }

    /// Frontswap shrinking, a partial swap-off: brings pages back from
    /// frontswap until it holds `target_pages` or `max_pages` came back,
    /// taking frames only from above the watermark or by ballooning up
    /// within the toolstack target (never by paging others out). Returns
    /// the pages brought back.
    pub fn shrink_to(&mut self, target_pages: u64, max_pages: u64) -> u64 {
        let mut done = 0;
        let n = self.pager.pages();
        let mut scanned = 0;
        while self.swap.pages() > target_pages && done < max_pages && scanned < n {
            let vpn = self.pager.shrink_cursor % n.max(1);
            self.pager.shrink_cursor = (vpn + 1) % n.max(1);
            scanned += 1;
            if self.pager.state(vpn) != Some(PageState::Swapped) {
                continue;
            }
            let from = Sources {
                reclaim: false,
                below_watermark: false,
            };
            if self.page_in(vpn, from).is_err() {
                break;
            }
            self.pager.stats.shrink_pageins += 1;
            done += 1;
        }
        done
    }

    /// Resolves a fault on `vpn`.
    fn fault_in(&mut self, vpn: Vpn) -> Resolution {
        match self.pager.state(vpn) {
            None | Some(PageState::Free) => {
                Resolution::Failed("access to a page the workload does not hold")
            }
            // Mapped already (the access raced nothing on one CPU: a stale
            // TLB entry at most, which the fault itself dropped).
            Some(s) if s.is_resident() => Resolution::Resolved,
            Some(_) => {
                let from = Sources {
                    reclaim: true,
                    below_watermark: true,
                };
                match self.page_in(vpn, from) {
                    Ok(()) => {
                        self.pager.stats.page_faults += 1;
                        Resolution::Resolved
                    }
                    Err(why) => {
                        self.pager.stats.fault_failures += 1;
                        Resolution::Failed(why)
                    }
                }
            }
        }
    }
}

impl<M: Mmu, S: SwapDevice, O: MemoryOps> FaultHandler for PagerCtx<'_, '_, M, S, O> {
    fn handle(&mut self, fault: Fault) -> Resolution {
        let Some(vpn) = vpn_of(fault.addr, self.pager.pages()) else {
            return Resolution::NotOurs;
        };
        if !fault.is_not_present() {
            return Resolution::Failed("protection fault in the pageable region");
        }
        self.fault_in(vpn)
    }
}

/// The workload's pages in the region: page numbers as handles, bytes
/// through the region's virtual addresses (which fault into the pager).
pub struct PagedSource<'s, 'a, 'f, M, S, O, A> {
    /// The pager, lent to the fault path for the workload's step.
    pub ctx: &'s Shared<PagerCtx<'a, 'f, M, S, O>>,
    /// The workload's access to the region.
    pub access: &'s mut A,
    /// A page's bytes between the region and the workload.
    pub buf: &'s mut Box<Page>,
}

impl<M, S, O, A> core::fmt::Debug for PagedSource<'_, '_, '_, M, S, O, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PagedSource").finish_non_exhaustive()
    }
}

impl<M: Mmu, S: SwapDevice, O: MemoryOps, A: RegionAccess> PageSource
    for PagedSource<'_, '_, '_, M, S, O, A>
{
    fn alloc_frame(&mut self) -> Option<Pfn> {
        self.ctx.lock().alloc_page()
    }

    fn write_frame(
        &mut self,
        vpn: Pfn,
        f: &mut dyn FnMut(&mut [u8; PAGE_BYTES]),
    ) -> Result<(), MapError> {
        f(self.buf);
        self.access.store(vpn, self.buf).map_err(|_| MapError)
    }

    fn read_frame(
        &mut self,
        vpn: Pfn,
        f: &mut dyn FnMut(&[u8; PAGE_BYTES]),
    ) -> Result<(), MapError> {
        self.access.load(vpn, self.buf).map_err(|_| MapError)?;
        f(self.buf);
        Ok(())
    }

    fn free_frame(&mut self, vpn: Pfn) {
        self.ctx.lock().free_page(vpn);
    }

    fn mark_clean(&mut self, vpn: Pfn) {
        self.ctx.lock().mark_clean(vpn);
    }

    fn cache_missed(&mut self, vpn: Pfn) -> bool {
        self.ctx.lock().cache_missed(vpn)
    }
}
