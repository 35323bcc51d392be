//! What the pager needs of the swap tier: [`SwapDevice`], frontswap as a
//! place for page-outs by slot, with the frames it uses settled against
//! the allocator the caller has in hand.

use crate::mm::direct::Page;
use crate::mm::frame::FrameAllocator;
use crate::mm::held::HeldFrames;
use crate::swap::frontswap::{Frontswap, FrontswapError, Tier};
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
}

impl<H: HeldFrames> SwapDevice for Frontswap<ZPool<PoolStock<H>>> {
    fn backend(&self) -> &'static str {
        "zpool"
    }

    fn store(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        self.primary_mut()
            .frames_mut()
            .restock(frames, STORE_STOCK_FRAMES);
        let r = Frontswap::store(self, slot, page).map(|_| ());
        self.primary_mut().frames_mut().settle(frames);
        r
    }

    fn take(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &mut Page,
    ) -> Result<(), FrontswapError> {
        let r = Frontswap::take(self, slot, page).map(|_| ());
        self.primary_mut().frames_mut().settle(frames);
        r
    }

    fn invalidate(&mut self, frames: &mut FrameAllocator<'_>, slot: u64) {
        if let Err(e) = Frontswap::invalidate(self, slot) {
            log::warn!("frontswap invalidate of slot {slot:#x}: {e:?}");
        }
        self.primary_mut().frames_mut().settle(frames);
    }

    fn pages(&self) -> u64 {
        self.curr_pages()
    }

    fn figures(&self) -> SwapFigures {
        let z = self.primary().stats();
        SwapFigures {
            pages: self.curr_pages(),
            tmem_pages: 0,
            pool_pages: self.curr_pages(),
            tmem_refused: 0,
            pool_bytes: z.compressed_bytes,
            pool_frames: z.frames_used,
            pool_ratio_pct: z.ratio_pct(),
            pool_max_frames: z.max_frames,
            lost: self.stats().lost,
        }
    }

    fn set_pool_max_frames(&mut self, frames: u64) {
        self.primary_mut().set_max_frames(frames);
    }

    fn release_stock(&mut self, frames: &mut FrameAllocator<'_>) {
        self.primary_mut().frames_mut().drain(frames);
    }

    fn compact(&mut self, frames: &mut FrameAllocator<'_>) {
        self.primary_mut()
            .frames_mut()
            .restock(frames, STORE_STOCK_FRAMES);
        self.primary_mut().compact();
        self.primary_mut().frames_mut().drain(frames);
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

impl<H: TmemHypervisor, P: HeldFrames> SwapDevice for GuestSwap<H, P> {
    fn backend(&self) -> &'static str {
        match self {
            GuestSwap::Pool(_) => SwapBackend::Zpool.name(),
            GuestSwap::Tiered(_) => SwapBackend::XenTmem.name(),
        }
    }

    fn store(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &Page,
    ) -> Result<(), FrontswapError> {
        match self {
            GuestSwap::Pool(f) => SwapDevice::store(f, frames, slot, page),
            GuestSwap::Tiered(f) => {
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().restock(frames, STORE_STOCK_FRAMES);
                }
                let r = Frontswap::store(f, slot, page).map(|_| ());
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().settle(frames);
                }
                r
            }
        }
    }

    fn take(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        slot: u64,
        page: &mut Page,
    ) -> Result<(), FrontswapError> {
        match self {
            GuestSwap::Pool(f) => SwapDevice::take(f, frames, slot, page),
            GuestSwap::Tiered(f) => {
                let r = Frontswap::take(f, slot, page).map(|_| ());
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().settle(frames);
                }
                r
            }
        }
    }

    fn invalidate(&mut self, frames: &mut FrameAllocator<'_>, slot: u64) {
        match self {
            GuestSwap::Pool(f) => SwapDevice::invalidate(f, frames, slot),
            GuestSwap::Tiered(f) => {
                if let Err(e) = Frontswap::invalidate(f, slot) {
                    log::warn!("frontswap invalidate of slot {slot:#x}: {e:?}");
                }
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().settle(frames);
                }
            }
        }
    }

    fn pages(&self) -> u64 {
        match self {
            GuestSwap::Pool(f) => f.curr_pages(),
            GuestSwap::Tiered(f) => f.curr_pages(),
        }
    }

    fn figures(&self) -> SwapFigures {
        match self {
            GuestSwap::Pool(f) => SwapDevice::figures(f),
            GuestSwap::Tiered(f) => {
                let z = f.fallback().map(|z| z.stats()).unwrap_or_default();
                SwapFigures {
                    pages: f.curr_pages(),
                    tmem_pages: f.tier_pages(Tier::Primary),
                    pool_pages: f.tier_pages(Tier::Fallback),
                    pool_bytes: z.compressed_bytes,
                    pool_frames: z.frames_used,
                    pool_ratio_pct: z.ratio_pct(),
                    pool_max_frames: z.max_frames,
                    lost: f.stats().lost,
                    tmem_refused: f.stats().fell_back,
                }
            }
        }
    }

    fn set_pool_max_frames(&mut self, max: u64) {
        match self {
            GuestSwap::Pool(f) => SwapDevice::set_pool_max_frames(f, max),
            GuestSwap::Tiered(f) => {
                if let Some(z) = f.fallback_mut() {
                    z.set_max_frames(max);
                }
            }
        }
    }

    fn compact(&mut self, frames: &mut FrameAllocator<'_>) {
        match self {
            GuestSwap::Pool(f) => SwapDevice::compact(f, frames),
            GuestSwap::Tiered(f) => {
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().restock(frames, STORE_STOCK_FRAMES);
                    z.compact();
                    z.frames_mut().drain(frames);
                }
            }
        }
    }

    fn release_stock(&mut self, frames: &mut FrameAllocator<'_>) {
        match self {
            GuestSwap::Pool(f) => SwapDevice::release_stock(f, frames),
            GuestSwap::Tiered(f) => {
                if let Some(z) = f.fallback_mut() {
                    z.frames_mut().drain(frames);
                }
            }
        }
    }
}
