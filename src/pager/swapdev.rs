//! What the pager needs of the swap tier: [`SwapDevice`], frontswap as a
//! place for page-outs by slot, with the frames it uses settled against
//! the allocator the caller has in hand.

use crate::mm::direct::Page;
use crate::mm::frame::FrameAllocator;
use crate::mm::held::HeldFrames;
use crate::swap::cleancache::{CleancacheError, CleancacheStats};
use crate::swap::frontswap::{Frontswap, FrontswapError, Tier};
use crate::swap::tmem::Tmem;
use crate::swap::xen_tmem::{SwapBackend, XenTmem};
use crate::swap::zpool::ZPool;
use crate::xen::tmem::TmemHypervisor;

use super::pool::{PoolStock, STORE_STOCK_FRAMES};

/// Figures for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapFigures {
    /// Pages held (`frontswap_curr_pages`).
    pub pages: u64,
    /// Of which in Xen's tmem (`frontswap_tmem_pages`).
    pub tmem_pages: u64,
    /// Of which in the in-guest pool (`frontswap_zpool_pages`).
    pub pool_pages: u64,
    /// Stores Xen's tmem refused that the pool took instead.
    pub tmem_refused: u64,
    /// Stores made while tmem was closed to new pages (no room under the
    /// domain's `max_pages`): they went to the pool without asking Xen.
    pub tmem_closed: u64,
    /// Compressed bytes held by the in-guest pool.
    pub pool_bytes: u64,
    /// Frames the in-guest pool uses.
    pub pool_frames: u64,
    /// Pages the pool holds per frame, in percent (`None`: no frame).
    pub pool_ratio_pct: Option<u64>,
    /// The pool's frame limit.
    pub pool_max_frames: u64,
    /// Pages a backend lost (must stay 0).
    pub lost: u64,
}

/// Frontswap as the pager uses it. Slots are the region's page numbers.
pub trait SwapDevice {
    /// The backend's name for the status (`zpool`, `xen-tmem`).
    fn backend(&self) -> &'static str;
    /// Stores a page. `Err`: refused, nothing is held for the slot; the
    /// caller keeps the page resident.
    fn store(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &Page,
    ) -> Result<(), FrontswapError>;
    /// Takes a page back (the tier no longer holds it afterwards).
    fn take(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &mut Page,
    ) -> Result<(), FrontswapError>;
    /// Drops a slot's page.
    fn invalidate(&mut self, frames: &mut FrameAllocator<'_>, slot: u64);
    /// Pages held.
    fn pages(&self) -> u64;
    /// Status figures.
    fn figures(&self) -> SwapFigures;
    /// Sets the pool's frame limit.
    fn set_pool_max_frames(&mut self, frames: u64);
    /// Compacts the pool and returns its spare frames to the allocator.
    fn compact(&mut self, frames: &mut FrameAllocator<'_>);
    /// Returns the frames the pool holds in stock (not in use).
    fn release_stock(&mut self, frames: &mut FrameAllocator<'_>);
    /// Puts a clean page to cleancache (ephemeral: it may be dropped at
    /// any time). `Err`: no tier holds it.
    fn cache_put(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        page_no: u64,
        page: &Page,
    ) -> Result<(), CleancacheError>;
    /// Gets a page from cleancache, removing it there. `true`: a hit,
    /// `page` holds it; `false`: a miss, `page` is unspecified.
    fn cache_get(&mut self, frames: &mut FrameAllocator<'_>, page_no: u64, page: &mut Page)
        -> bool;
    /// Drops a page from cleancache (it was freed).
    fn cache_flush(&mut self, frames: &mut FrameAllocator<'_>, page_no: u64);
    /// Cleancache's counters.
    fn cache_stats(&self) -> CleancacheStats;
    /// Pages the hypervisor holds for us and charges to the domain (Xen
    /// 4.12 counts each page of a persistent tmem pool in `tot_pages`,
    /// bounded by `max_pages`); 0 without tmem.
    fn hypervisor_pages(&self) -> u64;
    /// Whether a tier lives in the hypervisor (Xen's tmem).
    fn has_hypervisor_tier(&self) -> bool;
    /// Opens or closes the hypervisor's tier to new pages (no effect
    /// without one): closed, stores go to the in-guest pool.
    fn set_hypervisor_admits(&mut self, admits: bool);
}

/// Where a frontswap keeps its in-guest pool: first (alone), or behind
/// Xen's tmem. One [`SwapDevice`] impl serves both through this.
pub trait WithPool {
    /// The pool's frames.
    type Held: HeldFrames;
    /// The backend's name (`zpool`, `xen-tmem`).
    const BACKEND: SwapBackend;
    /// The in-guest pool.
    fn pool(&self) -> Option<&ZPool<PoolStock<Self::Held>>>;
    /// The in-guest pool, writable.
    fn pool_mut(&mut self) -> Option<&mut ZPool<PoolStock<Self::Held>>>;
    /// Pages Xen's tmem holds.
    fn tmem_pages(&self) -> u64;
    /// Opens or closes Xen's tmem to new pages (no effect without it).
    fn admit_tmem(&mut self, admits: bool);
}

impl<H: HeldFrames> WithPool for Frontswap<ZPool<PoolStock<H>>> {
    type Held = H;
    const BACKEND: SwapBackend = SwapBackend::Zpool;
    fn pool(&self) -> Option<&ZPool<PoolStock<H>>> {
        Some(self.primary())
    }
    fn pool_mut(&mut self) -> Option<&mut ZPool<PoolStock<H>>> {
        Some(self.primary_mut())
    }
    fn tmem_pages(&self) -> u64 {
        0
    }
    fn admit_tmem(&mut self, _: bool) {}
}

impl<X: TmemHypervisor, H: HeldFrames> WithPool for Frontswap<XenTmem<X>, ZPool<PoolStock<H>>> {
    type Held = H;
    const BACKEND: SwapBackend = SwapBackend::XenTmem;
    fn pool(&self) -> Option<&ZPool<PoolStock<H>>> {
        self.fallback()
    }
    fn pool_mut(&mut self) -> Option<&mut ZPool<PoolStock<H>>> {
        self.fallback_mut()
    }
    fn tmem_pages(&self) -> u64 {
        self.tier_pages(Tier::Primary)
    }
    fn admit_tmem(&mut self, admits: bool) {
        self.set_primary_admits(admits);
    }
}

impl<P: Tmem, F: Tmem> SwapDevice for Frontswap<P, F>
where
    Frontswap<P, F>: WithPool,
{
    fn backend(&self) -> &'static str {
        <Self as WithPool>::BACKEND.name()
    }

    fn store(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        if let Some(z) = self.pool_mut() {
            z.frames_mut().restock(frames, STORE_STOCK_FRAMES);
        }
        let r = Frontswap::store(self, slot, page).map(|_| ());
        self.release_freed(frames);
        r
    }

    fn take(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &mut Page,
    ) -> Result<(), FrontswapError> {
        let r = Frontswap::take(self, slot, page).map(|_| ());
        self.release_freed(frames);
        r
    }

    fn invalidate(&mut self, frames: &mut FrameAllocator<'_>, slot: u64) {
        if let Err(e) = Frontswap::invalidate(self, slot) {
            log::warn!("frontswap invalidate of slot {slot:#x}: {e:?}");
        }
        self.release_freed(frames);
    }

    fn pages(&self) -> u64 {
        self.curr_pages()
    }

    fn figures(&self) -> SwapFigures {
        let z = self.pool().map(|z| z.stats()).unwrap_or_default();
        let tmem_pages = self.tmem_pages();
        SwapFigures {
            pages: self.curr_pages(),
            tmem_pages,
            pool_pages: self.curr_pages().saturating_sub(tmem_pages),
            tmem_refused: self.stats().fell_back,
            // Only a frontswap behind Xen's tmem ever closes its primary.
            tmem_closed: self.stats().primary_closed,
            pool_bytes: z.compressed_bytes,
            pool_frames: z.frames_used,
            pool_ratio_pct: z.ratio_pct(),
            pool_max_frames: z.max_frames,
            lost: self.stats().lost,
        }
    }

    fn set_pool_max_frames(&mut self, max: u64) {
        if let Some(z) = self.pool_mut() {
            z.set_max_frames(max);
        }
    }

    fn compact(&mut self, frames: &mut FrameAllocator<'_>) {
        if let Some(z) = self.pool_mut() {
            z.frames_mut().restock(frames, STORE_STOCK_FRAMES);
            z.compact();
            z.frames_mut().drain(frames);
        }
    }

    fn release_stock(&mut self, frames: &mut FrameAllocator<'_>) {
        if let Some(z) = self.pool_mut() {
            z.frames_mut().drain(frames);
        }
    }

    fn cache_put(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        page_no: u64,
        page: &Page,
    ) -> Result<(), CleancacheError> {
        if let Some(z) = self.pool_mut() {
            z.frames_mut().restock(frames, STORE_STOCK_FRAMES);
        }
        let (cc, primary, fallback) = self.cleancache_parts();
        let r = cc.put(primary, fallback, page_no, page).map(|_| ());
        self.release_freed(frames);
        r
    }

    fn cache_get(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        page_no: u64,
        page: &mut Page,
    ) -> bool {
        let (cc, primary, fallback) = self.cleancache_parts();
        let hit = matches!(cc.get(primary, fallback, page_no, page), Ok(Some(_)));
        self.release_freed(frames);
        hit
    }

    fn cache_flush(&mut self, frames: &mut FrameAllocator<'_>, page_no: u64) {
        let (cc, primary, fallback) = self.cleancache_parts();
        if let Err(e) = cc.flush(primary, fallback, page_no) {
            log::warn!("cleancache flush of page {page_no:#x}: {e:?}");
        }
        self.release_freed(frames);
    }

    fn cache_stats(&self) -> CleancacheStats {
        self.cleancache().stats()
    }

    fn hypervisor_pages(&self) -> u64 {
        self.tmem_pages()
    }

    fn has_hypervisor_tier(&self) -> bool {
        <Self as WithPool>::BACKEND == SwapBackend::XenTmem
    }

    fn set_hypervisor_admits(&mut self, admits: bool) {
        self.admit_tmem(admits);
    }
}

/// Frames the pool freed go back to the allocator.
trait ReleaseFreed {
    fn release_freed(&mut self, frames: &mut FrameAllocator<'_>);
}

impl<T: WithPool> ReleaseFreed for T {
    fn release_freed(&mut self, frames: &mut FrameAllocator<'_>) {
        if let Some(z) = self.pool_mut() {
            z.frames_mut().settle(frames);
        }
    }
}

/// The guest's frontswap: on `zpool` alone (no tmem: Xen 4.13 and later,
/// or no `tmem=1`), or on Xen's tmem with `zpool` behind it per page
/// (a put Xen refuses, 0 or -ENOMEM, goes to the pool instead).
#[derive(Debug)]
pub enum GuestSwap<H, P> {
    /// `zpool` alone.
    Pool(Frontswap<ZPool<PoolStock<P>>>),
    /// Xen's tmem first, `zpool` behind it.
    Tiered(Frontswap<XenTmem<H>, ZPool<PoolStock<P>>>),
}

/// Calls the same [`SwapDevice`] method on whichever frontswap is in use.
macro_rules! either {
    ($self:expr, $f:ident => $e:expr) => {
        match $self {
            GuestSwap::Pool($f) => $e,
            GuestSwap::Tiered($f) => $e,
        }
    };
}

impl<H: TmemHypervisor, P: HeldFrames> SwapDevice for GuestSwap<H, P> {
    fn backend(&self) -> &'static str {
        either!(self, f => SwapDevice::backend(f))
    }
    fn store(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        either!(self, f => SwapDevice::store(f, frames, slot, page))
    }
    fn take(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &mut Page,
    ) -> Result<(), FrontswapError> {
        either!(self, f => SwapDevice::take(f, frames, slot, page))
    }
    fn invalidate(&mut self, frames: &mut FrameAllocator<'_>, slot: u64) {
        either!(self, f => SwapDevice::invalidate(f, frames, slot))
    }
    fn pages(&self) -> u64 {
        either!(self, f => SwapDevice::pages(f))
    }
    fn figures(&self) -> SwapFigures {
        either!(self, f => SwapDevice::figures(f))
    }
    fn set_pool_max_frames(&mut self, max: u64) {
        either!(self, f => SwapDevice::set_pool_max_frames(f, max))
    }
    fn compact(&mut self, frames: &mut FrameAllocator<'_>) {
        either!(self, f => SwapDevice::compact(f, frames))
    }
    fn release_stock(&mut self, frames: &mut FrameAllocator<'_>) {
        either!(self, f => SwapDevice::release_stock(f, frames))
    }
    fn cache_put(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        page_no: u64,
        page: &Page,
    ) -> Result<(), CleancacheError> {
        either!(self, f => SwapDevice::cache_put(f, frames, page_no, page))
    }
    fn cache_get(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        page_no: u64,
        page: &mut Page,
    ) -> bool {
        either!(self, f => SwapDevice::cache_get(f, frames, page_no, page))
    }
    fn cache_flush(&mut self, frames: &mut FrameAllocator<'_>, page_no: u64) {
        either!(self, f => SwapDevice::cache_flush(f, frames, page_no))
    }
    fn cache_stats(&self) -> CleancacheStats {
        either!(self, f => SwapDevice::cache_stats(f))
    }
    fn hypervisor_pages(&self) -> u64 {
        either!(self, f => SwapDevice::hypervisor_pages(f))
    }
    fn has_hypervisor_tier(&self) -> bool {
        either!(self, f => SwapDevice::has_hypervisor_tier(f))
    }
    fn set_hypervisor_admits(&mut self, admits: bool) {
        either!(self, f => SwapDevice::set_hypervisor_admits(f, admits))
    }
}
