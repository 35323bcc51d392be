//! The selftest's checks of demand paging and frontswap on the machine:
//! real page tables, real page faults (`#PF` into the pager), the pool's
//! frames from the kernel's allocator.
//!
//! - `paging`: a page of the region is touched (a fault maps a zeroed
//!   frame), written, paged out to frontswap (unmapped, its frame freed),
//!   and read again (a fault pages it back in); contents verified.
//! - `frontswap`: 1,024 pages of each content kind stored and taken back
//!   through frontswap over `zpool`, contents verified, the pool's frames
//!   all back in the allocator at the end.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

use crate::balloon::{Balloon, BalloonConfig};
use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::fault::{with_fault_handler, Shared};
use crate::mm::held::PooledFrames;
use crate::mm::vm::{Mmu, RegionAccess};
use crate::mm::Pfn;
use crate::pager::{Pager, PagerCtx, PoolStock, SwapDevice};
use crate::swap::content::{fill, verify, ContentKind};
use crate::swap::frontswap::Frontswap;
use crate::swap::zpool::ZPool;
use crate::xen::errno::Errno;
use crate::xen::ops::MemoryOps;

use super::Kernel;

/// Reservation calls for a check that must never balloon: every call
/// fails (the balloon is at its bound anyway).
#[derive(Debug)]
pub(super) struct NoReservation;

impl MemoryOps for NoReservation {
    fn decrease_reservation(&mut self, _: u32, _: &[Pfn]) -> Result<usize, Errno> {
        Err(Errno::ENOSYS)
    }
    fn populate_physmap(&mut self, _: u32, _: &[Pfn]) -> Result<usize, Errno> {
        Err(Errno::ENOSYS)
    }
    fn current_reservation(&mut self) -> Result<u64, Errno> {
        Err(Errno::ENOSYS)
    }
    fn maximum_reservation(&mut self) -> Result<u64, Errno> {
        Err(Errno::ENOSYS)
    }
}

type Swap = Frontswap<ZPool<PoolStock<PooledFrames>>>;

fn new_swap(k: &Kernel, max_frames: u64) -> Result<Swap, String> {
    let pool = ZPool::new(
        PoolStock::new(super::boot::pooled_frames(&k.frames)),
        max_frames,
    );
    Frontswap::new(pool).map_err(|e| format!("frontswap pool: {e}"))
}

/// The `paging` check.
pub fn paging(k: &mut Kernel) -> Result<String, String> {
    let mut swap = new_swap(k, 64)?;
    let mut pager = Pager::new(k.tables.pages(), 16);
    let mut balloon = Balloon::new(BalloonConfig::default(), k.frames.counts());
    let mut mem = NoReservation;
    let mut access = k.tables.access();
    let free_before = k.frames.free_pages();
    let shared = Shared::new(PagerCtx {
        pager: &mut pager,
        mmu: &mut k.tables,
        swap: &mut swap,
        frames: &mut k.frames,
        balloon: &mut balloon,
        mem: &mut mem,
        heap_free_bytes: super::heap_free_bytes,
    });
    let mut want: Box<Page> = Box::new([0; PAGE_BYTES]);
    let mut got: Box<Page> = Box::new([0; PAGE_BYTES]);
    fill(ContentKind::Text, 0x5e1f, &mut want);
    let r = with_fault_handler(&shared, || -> Result<String, String> {
        let vpn = shared.lock().alloc_page().ok_or("no page in the region")?;
        // First touch: a fault maps a zeroed frame.
        access
            .load(vpn, &mut got)
            .map_err(|e| format!("load: {e}"))?;
        if got.iter().any(|&b| b != 0) {
            return Err(String::from("a new page does not read as zeros"));
        }
        access
            .store(vpn, &want)
            .map_err(|e| format!("store: {e}"))?;
        let mut c = shared.lock();
        let pfn = c
            .mmu
            .peek(vpn)
            .map(|u| u.pfn)
            .ok_or("not mapped after its fault")?;
        if c.reclaim(1) != 1 {
            return Err(String::from("page-out refused"));
        }
        if c.mmu.peek(vpn).map(|u| u.pfn).is_some() || c.swap.pages() != 1 {
            return Err(String::from(
                "paged out but still mapped, or not in frontswap",
            ));
        }
        drop(c);
        // Touch again: a fault pages it back in.
        access
            .load(vpn, &mut got)
            .map_err(|e| format!("load: {e}"))?;
        if got != want {
            return Err(String::from("contents differ after page-in"));
        }
        let mut c = shared.lock();
        let s = c.pager.stats();
        let again = c.mmu.peek(vpn).map(|u| u.pfn);
        c.free_page(vpn);
        if (s.page_faults, s.pageouts, s.pageins) != (2, 1, 1) {
            return Err(format!("counters {s:?}"));
        }
        let fixups = crate::mm::paging::CR2_FIXUPS.load(core::sync::atomic::Ordering::Relaxed);
        Ok(format!(
            "#PF at {:#x} mapped frame {pfn:#x}; paged out and back in (frame {:#x}), \
             contents verified{}",
            crate::mm::vm::vpn_address(vpn),
            again.unwrap_or(0),
            if fixups > 0 {
                format!(" (CR2 read 0 in {fixups} faults: the emulator's; address from the copy)")
            } else {
                String::new()
            }
        ))
    });
    swap.compact(&mut k.frames);
    if r.is_ok() && k.frames.free_pages() != free_before {
        return Err(format!(
            "frames not all back: {} free, {} before",
            k.frames.free_pages(),
            free_before
        ));
    }
    r
}

/// The `frontswap` check.
pub fn frontswap(k: &mut Kernel) -> Result<String, String> {
    const PAGES: u64 = 1024;
    let free_before = k.frames.free_pages();
    let mut swap = new_swap(k, 2048)?;
    let mut page: Box<Page> = Box::new([0; PAGE_BYTES]);
    let mut out = alloc::vec::Vec::new();
    for (n, kind) in ContentKind::ALL.into_iter().enumerate() {
        let base = n as u64 * PAGES;
        let mut stored = 0u64;
        for i in 0..PAGES {
            fill(kind, base + i, &mut page);
            if SwapDevice::store(&mut swap, &mut k.frames, base + i, &page).is_ok() {
                stored += 1;
            }
        }
        let frames = swap.figures().pool_frames;
        let mut ok = 0u64;
        for i in 0..PAGES {
            if SwapDevice::take(&mut swap, &mut k.frames, base + i, &mut page).is_ok()
                && verify(kind, base + i, &page)
            {
                ok += 1;
            }
        }
        if ok != stored {
            return Err(format!("{kind:?}: {stored} stored, {ok} back intact"));
        }
        if kind != ContentKind::Random && stored != PAGES {
            return Err(format!("{kind:?}: only {stored} of {PAGES} stored"));
        }
        out.push(format!(
            "{} {stored}/{PAGES} in {frames} frames",
            kind.name()
        ));
    }
    if swap.pages() != 0 {
        return Err(format!("{} pages left", swap.pages()));
    }
    swap.compact(&mut k.frames);
    if k.frames.free_pages() != free_before {
        return Err(format!(
            "pool frames not all back: {} free, {} before",
            k.frames.free_pages(),
            free_before
        ));
    }
    Ok(format!("{}; all verified, frames returned", out.join(", ")))
}
