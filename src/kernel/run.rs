//! The main loop on the real machine: builds the [`Runtime`] over Xen's
//! hypercalls, the direct map, the xenstore ring and Xen's clock, then turns
//! it forever, blocking on Xen's events until the next deadline or until
//! xenstore or VIRQ_DEBUG fires.
//!
//! Everything runs on the boot CPU with interrupts disabled except inside
//! the idle halt; interrupts only record which event channels fired
//! (`xen::events::upcall`), so nothing here races with interrupt context.

#![forbid(unsafe_code)]

use alloc::vec::Vec;

use crate::arch::x86_64::trap;
use crate::mm::direct::DirectMap;
use crate::xen::abi;
use crate::xen::calls::{self, XenMemory};
use crate::xen::events;
use crate::xen::ops::Clock;
use crate::xen::time;

use super::boot::BOOT_PAGE_TABLE_PAGES;
use super::platform::{self, Wake};
use super::runtime::{heap_bytes_to_pages, Config, Env, Paging, Runtime};
use super::store::{store_port, XenStore};
use super::swaprun::{self, Sample, SwapRun};
use super::{Kernel, Role};
use crate::mm::held::PooledFrames;
use crate::mm::paging::{RegionTables, VirtAccess};
use crate::pager::{GuestSwap, PoolStock, SwapDevice, DEFAULT_WATERMARK_PAGES};

/// The controllers' interval in a `swaprun` (s).
const SWAPRUN_INTERVAL_S: u32 = 1;
use crate::swap::frontswap::Frontswap;
use crate::swap::xen_tmem::XenTmem;
use crate::swap::zpool::ZPool;
use crate::xen::tmem::{Presence, XenTmemHypervisor};

/// Xen's system time (pvclock).
#[derive(Clone, Copy, Debug)]
pub struct XenClock;

impl Clock for XenClock {
    fn now_ns(&self) -> u64 {
        time::now_ns()
    }
}

/// The real machine.
#[derive(Debug)]
pub struct XenEnv;

impl Env for XenEnv {
    type Mem = XenMemory;
    type Pages = DirectMap;
    type Store = XenStore;
    type Clock = XenClock;
    type Mmu = RegionTables;
    type Access = VirtAccess;
    type Swap = GuestSwap<XenTmemHypervisor, PooledFrames>;
}

type Pool = ZPool<PoolStock<PooledFrames>>;

/// Frontswap as the boot probe found the hypervisor: Xen's tmem first and
/// `zpool` behind it where tmem is there (Xen 4.12 with `tmem=1`), else
/// `zpool` alone.
fn guest_swap(
    k: &mut Kernel,
    pool: Pool,
) -> Result<GuestSwap<XenTmemHypervisor, PooledFrames>, alloc::string::String> {
    if crate::xen::tmem::boot_presence() == Some(Presence::Present) {
        let bounce = k
            .direct
            .claim(&mut k.frames, 1, 1)
            .map_err(|e| alloc::format!("a frame for tmem's bounce page: {e}"))?;
        let hyp = XenTmemHypervisor::new(bounce)
            .map_err(|e| alloc::format!("tmem bounce frame: {e:?}"))?;
        let f = Frontswap::tiered(XenTmem::new(hyp), pool)
            .map_err(|e| alloc::format!("frontswap on Xen tmem: {e}"))?;
        return Ok(GuestSwap::Tiered(f));
    }
    Frontswap::new(pool)
        .map(GuestSwap::Pool)
        .map_err(|e| alloc::format!("{e}"))
}

/// Normal operation. Never returns.
pub fn run(k: Kernel) -> ! {
    let Some(ev) = k.events else {
        log::info!("no hypervisor: nothing to balloon; idling");
        loop {
            trap::halt_until_interrupt();
        }
    };
    let swaprun_s = k.args.swaprun_s;
    // The seed: "Xen selfballooning driver disabled for domain0". A swap
    // test run in dom0 (tier 2 has no toolstack to create a domU) is the
    // explicit exception; it also ticks every second, to be short.
    let dom0_plain = k.role == Role::Dom0 && swaprun_s.is_none();
    if dom0_plain && (k.args.selfballooning == Some(true) || k.args.selfshrink == Some(true)) {
        log::warn!("dom0: the controllers stay off (as the seed's); swaprun enables them");
    }
    let config = Config {
        balloon_floor_pages: k.args.balloon_floor_pages(),
        scrub: k.args.scrub,
        selfballooning: if dom0_plain {
            Some(false)
        } else {
            k.args.selfballooning
        },
        selfshrinking: if dom0_plain {
            Some(false)
        } else {
            k.args.selfshrink
        },
        mode: k.args.selfballoon_mode,
        interval_s: swaprun_s.and(core::num::NonZeroU32::new(SWAPRUN_INTERVAL_S)),
        workload: k.args.workload.clone(),
        // The heap's frames are claimed (Reserved) but are committed kernel
        // memory, counted in `heap_pages`: they stay in totalram, as
        // Linux's slab does, so that the controller does not count them
        // twice.
        kernel_pages: k
            .frames
            .counts()
            .reserved_pages
            .saturating_sub(k.heap_pages),
        heap_pages: heap_bytes_to_pages(k.heap.stats().size_bytes),
        page_table_pages: BOOT_PAGE_TABLE_PAGES + k.tables.table_pages(),
        max_pfn: k.boot.ram.iter().map(|r| r.end()).max().unwrap_or(0),
        use_store: k.role == Role::DomU,
        // Frontswap's index is bounded by the heap free at each page-out
        // (`Paging::heap_free_bytes`), not by a count fixed here.
        max_swapped_pages: None,
    };
    // Xen raises VIRQ_DEBUG in every domain on the 'q' debug key; the
    // nested rig presses it when a scenario fails.
    let debug_port = match calls::bind_virq(abi::VIRQ_DEBUG, 0) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("bind VIRQ_DEBUG: {e}");
            None
        }
    };
    let pool = ZPool::new(PoolStock::new(super::boot::pooled_frames(&k.frames)), 0);
    let mut k = k;
    let swap = match guest_swap(&mut k, pool) {
        Ok(s) => s,
        Err(e) => {
            log::error!("frontswap pool: {e}");
            super::exit::finish(super::exit::TestResult::Error)
        }
    };
    let access = k.tables.access();
    let paging = Paging {
        mmu: k.tables,
        access,
        swap,
        watermark_pages: DEFAULT_WATERMARK_PAGES,
        heap_free_bytes: super::heap_free_bytes,
    };
    let mut rt = Runtime::<XenEnv>::new(
        config,
        XenMemory::new(),
        k.direct,
        k.store,
        XenClock,
        k.frames,
        paging,
    );
    let mut swaprun = swaprun_s.map(|s| {
        log::info!("swaprun: for at most {s} s");
        SwapRun::new(time::now_ns(), s)
    });
    loop {
        let deadline = rt.turn();
        if let Some(run) = swaprun.as_mut() {
            let now = time::now_ns();
            if let Some(verdict) = run.observe(Sample::of(&rt), now) {
                for line in run.summary(SwapDevice::backend(rt.swap()), verdict, now) {
                    log::info!("{line}");
                }
                let r = swaprun::result_of(verdict);
                super::exit::print_result(r);
                super::exit::finish(r)
            }
        }
        let mut ports: Vec<_> = rt.store_mut().map(store_port).into_iter().collect();
        ports.extend(debug_port);
        let woke = if deadline > time::now_ns() {
            platform::wait(&ev, &ports, deadline)
        } else {
            Wake::Deadline
        };
        // `wait` consumes the port it returns; otherwise look for it here.
        let debug = match (woke, debug_port) {
            (Wake::Port(p), Some(d)) if p == d => true,
            (_, Some(d)) => events::take(d),
            (_, None) => false,
        };
        if debug {
            if let Some(port) = rt.store_mut().map(store_port) {
                log::info!("debug: xenstore port {port} fired {}", events::peek(port));
            }
            rt.dump(deadline);
        }
    }
}
