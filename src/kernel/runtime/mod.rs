//! Normal operation as a state machine: the balloon driver, the
//! self-balloon controller's timer, the workload, the xenstore watches and
//! the status, turned one step at a time by [`Runtime::turn`].
//!
//! The runtime is generic over its [`Env`] (memory operations, page
//! access, xenstore, clock), so the whole of it runs as host tests on the
//! fakes of `crate::testing`; `kernel::run` is the thin loop that turns it
//! on the real machine and blocks on Xen's events in between.
//!
//! Every turn does, in order: take in xenstore traffic and act on watch
//! events (`watches`), re-read `memory/target` if it is due, run the
//! workload, the controller's tick and a balloon step when each is due
//! (`work`), and publish the status when due (`status`). It returns the
//! earliest deadline among them; nothing blocks inside a turn except the
//! xenstore client's own bounded waits.

#![forbid(unsafe_code)]

mod adapters;
mod cleancache_status;
mod env;
mod ratelimit;
mod status;
#[cfg(test)]
mod tests;
mod watches;
mod work;

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::num::NonZeroU32;

pub use cleancache_status::CLEANCACHE_STATUS_KEYS;
pub use env::{Env, Paging, WatchStore};
pub use status::SWAP_STATUS_KEYS;

use crate::balloon::{Balloon, BalloonConfig, ZeroScrubber};
use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::frame::FrameAllocator;
use crate::mm::vm::Mmu;
use crate::mm::{pages_to_kib, PAGE_SIZE};
use crate::pager::{Pager, SwapDevice};
use crate::parse::untrusted;
use crate::selfballoon::controller::Controller;
use crate::selfballoon::mode::Mode;
use crate::selfballoon::tunables::Tunables;
use crate::selfballoon::xs::XsGlue;
use crate::workload::engine::Engine;
use crate::workload::spec::Spec;
use crate::xen::ops::{Clock, MemoryOps};
use alloc::boxed::Box;

pub(crate) const NS_PER_S: u64 = 1_000_000_000;
/// Status is republished at least this often even when nothing ticks.
pub const STATUS_PERIOD_NS: u64 = 2 * NS_PER_S;
/// `memory/target` is read this often even without a watch event:
/// xenstored may drop events (an unread event times out after 20 s in
/// Xen >= 4.17; a live-updated or restarted xenstored loses them), and a
/// guest that missed one would hold the wrong size for good.
pub const TARGET_RECHECK_NS: u64 = 10 * NS_PER_S;
/// With nothing due, the loop still turns this often.
pub const IDLE_TURN_NS: u64 = 60 * NS_PER_S;
/// A starving workload retries this often.
const ENGINE_RETRY_NS: u64 = NS_PER_S / 10;

/// How the runtime starts, from the command line and boot.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `balloon_floor_mb`, in pages.
    pub balloon_floor_pages: Option<u64>,
    /// `scrub=`.
    pub scrub: Option<bool>,
    /// `selfballooning` / `noselfballooning` (default on).
    pub selfballooning: Option<bool>,
    /// `selfshrink` / `noselfshrink` (default on).
    pub selfshrinking: Option<bool>,
    /// `selfballoon_mode=`.
    pub mode: Option<Mode>,
    /// The controllers' interval, if not the seed's default.
    pub interval_s: Option<core::num::NonZeroU32>,
    /// `workload=`.
    pub workload: Option<String>,
    /// Frames the kernel holds for good (image, boot data, metadata).
    pub kernel_pages: u64,
    /// Pages backing the kernel heap (committed kernel memory).
    pub heap_pages: u64,
    /// Pages of page tables (committed kernel memory).
    pub page_table_pages: u64,
    /// One past the highest RAM frame of the memory map.
    pub max_pfn: u64,
    /// Whether to look for the toolstack in xenstore (a domU).
    pub use_store: bool,
    /// Pages frontswap may hold (its index is on the heap); `None`: no
    /// bound.
    pub max_swapped_pages: Option<u64>,
}

/// Balloon timing totals: whole steps (guest side, including scrubbing
/// and bookkeeping) against the hypercalls inside them.
#[derive(Clone, Copy, Debug, Default)]
struct BalloonTiming {
    steps: u64,
    step_ns: u64,
    hypercalls: u64,
    hypercall_ns: u64,
    pages: u64,
}

/// When each part wants to run next (monotonic ns); `None`: not until
/// something changes.
#[derive(Clone, Copy, Debug, Default)]
struct Deadlines {
    balloon_ns: Option<u64>,
    tick_ns: Option<u64>,
    engine_ns: Option<u64>,
    status_ns: u64,
    target_check_ns: u64,
}

/// Counters of the loop itself, for the status and the debug dump.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopCounters {
    /// Turns taken.
    pub turns: u64,
    /// `memory/target` watch events handled.
    pub target_events: u64,
    /// `memory/target` changes found by the re-read, not by an event.
    pub target_missed_events: u64,
    /// Status groups whose publication failed.
    pub publish_errors: u64,
    /// The largest workload allocation (pages) that could not get frames
    /// since the controller's last tick (the balloon could not grow:
    /// toolstack bound or back-off); the adaptive controller's pressure
    /// signal, reset by each tick.
    pub alloc_stall_pages_since_tick: u64,
    /// Workload allocations that had to wait for frames, in all.
    pub alloc_stalls: u64,
    /// Pages the pager brought in when the controller last ticked (to
    /// measure page-ins per tick).
    pub pageins_at_tick: u64,
    /// Pages paged out to meet a target.
    pub reclaimed_for_target: u64,
    /// Turns on which a target could not be met: nothing more could be
    /// paged out (the floor).
    pub target_unreachable_turns: u64,
}

/// The state of normal operation.
pub struct Runtime<'f, E: Env> {
    mem: E::Mem,
    pages: E::Pages,
    store: Option<E::Store>,
    clock: E::Clock,
    frames: FrameAllocator<'f>,
    balloon: Balloon,
    controller: Controller,
    glue: Option<XsGlue>,
    engine: Option<Engine>,
    due: Deadlines,
    /// Status values last written, to skip unchanged ones.
    written: BTreeMap<String, String>,
    kernel_pages: u64,
    heap_pages: u64,
    page_table_pages: u64,
    boot_totalram_pages: u64,
    max_pfn: u64,
    timing: BalloonTiming,
    counters: LoopCounters,
    /// The `memory/target` value last applied (or rejected).
    target_seen: Option<String>,
    pager: Pager,
    mmu: E::Mmu,
    access: E::Access,
    swap: E::Swap,
    heap_free_bytes: fn() -> u64,
    /// A workload page between the region and the engine.
    page_buf: Box<Page>,
    /// The lowest size reached when a target could not be met (pages),
    /// `None` while every target is met.
    swap_floor_pages: Option<u64>,
    /// The pool limit last applied (frames).
    pool_max_frames: u64,
    /// Xen's `max_pages` in our frames, while tracked for tmem.
    tracked_max_pages: Option<u64>,
    /// The rate limit on logging what dom0 wrote and we rejected.
    reject_log: ratelimit::RateLimit,
}

impl<E: Env> core::fmt::Debug for Runtime<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runtime")
            .field("frames", &self.frames)
            .field("balloon", &self.balloon)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn parse_workload(spec: &str) -> Result<Engine, crate::workload::spec::ParseError> {
    Spec::parse(spec).map(|s| {
        Engine::new(
            s,
            NonZeroU32::new(crate::workload::engine::DEFAULT_BUDGET_PAGES)
                .unwrap_or(NonZeroU32::MIN),
        )
    })
}

impl<'f, E: Env> Runtime<'f, E> {
    /// Starts normal operation: releases what populate-on-demand left
    /// unbacked, and (for a domU) reads the toolstack's target and
    /// registers the watches.
    pub fn new(
        config: Config,
        mem: E::Mem,
        mut pages: E::Pages,
        store: Option<E::Store>,
        clock: E::Clock,
        mut frames: FrameAllocator<'f>,
        paging: Paging<E>,
    ) -> Self {
        let mut bc = BalloonConfig::default();
        if let Some(f) = config.balloon_floor_pages {
            bc.floor_pages = f;
        }
        if let Some(s) = config.scrub {
            bc.scrub = s;
        }
        let counts = frames.counts();
        let mut balloon = Balloon::new(bc, counts);
        let mut mem = mem;
        // A guest started with memory < maxmem holds fewer pages than its
        // memory map shows (populate-on-demand): give those back before
        // anything touches them.
        match mem.current_reservation() {
            Ok(cur) => {
                let mut scrub = ZeroScrubber(&mut pages);
                match balloon.init_pod(&mut mem, &mut frames, &mut scrub, cur) {
                    Ok(0) => {}
                    Ok(n) => {
                        log::info!("pod: released {n} pages not backed at boot (reservation {cur})")
                    }
                    Err(e) => log::warn!("pod: release incomplete: {e:?}"),
                }
            }
            Err(e) => log::warn!("current_reservation: {e}"),
        }
        let boot_totalram_pages = frames
            .counts()
            .populated_pages()
            .saturating_sub(config.kernel_pages);
        let mut tunables = Tunables::new(config.selfballooning.unwrap_or(true));
        // The seed: self-shrinking on whenever frontswap is there, unless
        // `noselfshrink`.
        tunables.frontswap_selfshrinking = config.selfshrinking.unwrap_or(true);
        tunables.set_guest_max_pages(config.max_pfn);
        if let Some(m) = config.mode {
            tunables.mode = m;
        }
        if let Some(i) = config.interval_s {
            tunables.interval_s = i;
        }
        let controller = Controller::new(tunables);
        balloon.set_keep_free_pages(paging.watermark_pages);
        let mut pager = Pager::new(paging.mmu.pages(), paging.watermark_pages);
        if let Some(n) = config.max_swapped_pages {
            pager.set_max_swapped_pages(n);
        }
        let engine = config
            .workload
            .as_deref()
            .and_then(|spec| match parse_workload(spec) {
                Ok(e) => Some(e),
                Err(e) => {
                    log::error!("workload '{}' rejected: {e}", untrusted(spec));
                    None
                }
            });
        if let (Some(spec), Some(_)) = (config.workload.as_deref(), engine.as_ref()) {
            log::info!("workload: {}", untrusted(spec));
        }
        let mut rt = Runtime {
            mem,
            pages,
            store,
            clock,
            frames,
            balloon,
            controller,
            glue: None,
            engine,
            due: Deadlines {
                balloon_ns: Some(0),
                engine_ns: Some(0),
                ..Deadlines::default()
            },
            written: BTreeMap::new(),
            kernel_pages: config.kernel_pages,
            heap_pages: config.heap_pages,
            page_table_pages: config.page_table_pages,
            boot_totalram_pages,
            max_pfn: config.max_pfn,
            timing: BalloonTiming::default(),
            counters: LoopCounters::default(),
            target_seen: None,
            pager,
            mmu: paging.mmu,
            access: paging.access,
            swap: paging.swap,
            heap_free_bytes: paging.heap_free_bytes,
            page_buf: Box::new([0; PAGE_BYTES]),
            swap_floor_pages: None,
            pool_max_frames: 0,
            tracked_max_pages: None,
            reject_log: ratelimit::RateLimit::default(),
        };
        rt.apply_pool_limit();
        rt.track_hypervisor_max();
        if rt.controller.tunables().timer_wanted() {
            let now = Clock::now_ns(&rt.clock);
            rt.due.tick_ns = Some(now.saturating_add(rt.interval_ns()));
        }
        if config.use_store {
            rt.init_store();
        }
        log::info!(
            "runtime: {} frames, floor {} KiB, selfballooning {}, selfshrinking {}, mode {}",
            rt.frames.counts().total_pages,
            pages_to_kib(rt.balloon.floor_pages()),
            rt.controller.tunables().selfballooning,
            rt.controller.tunables().frontswap_selfshrinking,
            rt.controller.tunables().mode.name()
        );
        log::info!(
            "swap: backend {}, pageable region {} pages, watermark {} frames, pool limit {} frames ({}%), \
             at most {} pages out",
            SwapDevice::backend(&rt.swap),
            rt.pager.pages(),
            rt.pager.watermark_pages(),
            rt.pool_max_frames,
            rt.controller.tunables().zpool_max_percent,
            rt.pager.max_swapped_pages()
        );
        rt
    }

    /// One turn of the loop: everything that is due, then the earliest
    /// next deadline (monotonic ns).
    pub fn turn(&mut self) -> u64 {
        let now = self.clock.now_ns();
        self.counters.turns = self.counters.turns.saturating_add(1);
        self.poll_store(now);
        self.recheck_target(now);
        self.apply_pool_limit();
        self.run_engine(now);
        self.run_tick(now);
        self.run_balloon(now);
        if now >= self.due.status_ns {
            self.track_hypervisor_max();
            self.publish();
            self.due.status_ns = now.saturating_add(STATUS_PERIOD_NS);
        }
        self.next_deadline(now)
    }

    fn next_deadline(&self, now: u64) -> u64 {
        // The client reads a bounded number of messages per poll; what it
        // left in the ring raises no new event, so turn again at once.
        if self.store.as_ref().is_some_and(|s| s.has_pending_input()) {
            return now;
        }
        [
            self.due.tick_ns,
            self.due.balloon_ns,
            self.due.engine_ns,
            Some(self.due.status_ns),
            self.glue.is_some().then_some(self.due.target_check_ns),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now.saturating_add(IDLE_TURN_NS))
    }

    fn interval_ns(&self) -> u64 {
        u64::from(self.controller.tunables().interval_s.get()).saturating_mul(NS_PER_S)
    }

    /// The xenstore connection, for the loop's wait on its event channel.
    pub fn store_mut(&mut self) -> Option<&mut E::Store> {
        self.store.as_mut()
    }

    /// The balloon driver's state.
    pub fn balloon(&self) -> &Balloon {
        &self.balloon
    }

    /// The controller's state.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The frame allocator.
    pub fn frames(&self) -> &FrameAllocator<'f> {
        &self.frames
    }

    /// The loop's counters.
    pub fn counters(&self) -> LoopCounters {
        self.counters
    }

    /// The workload, if one runs.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The pager.
    pub fn pager(&self) -> &Pager {
        &self.pager
    }

    /// Frontswap.
    pub fn swap(&self) -> &E::Swap {
        &self.swap
    }

    /// Sets the pool's frame limit from `zpool_max_percent` of RAM, if it
    /// changed.
    fn apply_pool_limit(&mut self) {
        let pct = u64::from(self.controller.tunables().zpool_max_percent);
        let frames = self.frames.counts().total_pages.saturating_mul(pct) / 100;
        if frames != self.pool_max_frames {
            self.swap.set_pool_max_frames(frames);
            self.pool_max_frames = frames;
            self.pager.room_changed();
        }
    }

    /// Logs a rejection of what another domain wrote, within the rate
    /// limit (the count of those not logged goes with the next one).
    pub(super) fn warn_rejected(&mut self, msg: core::fmt::Arguments<'_>) {
        match self.reject_log.admit(self.clock.now_ns()) {
            ratelimit::Admit::Log { suppressed: 0 } => log::warn!("{msg}"),
            ratelimit::Admit::Log { suppressed } => {
                log::warn!("{msg} ({suppressed} more rejections not logged)")
            }
            ratelimit::Admit::Drop => {}
        }
    }

    /// Rejections of dom0's writes not logged (rate limit).
    pub fn rejections_not_logged(&self) -> u64 {
        self.reject_log.dropped_total
    }

    /// With Xen's tmem as a tier, reads the domain's `max_pages` (Xen
    /// 4.12 charges tmem's persistent pages against it) into the balloon,
    /// in our frames: `maximum_reservation` less what Xen counts beyond
    /// them (`current_reservation - populated`, measured in the same call).
    /// On error the bound in force stays.
    fn track_hypervisor_max(&mut self) {
        if !self.swap.has_hypervisor_tier() {
            return;
        }
        let (max, cur) = match (
            self.mem.maximum_reservation(),
            self.mem.current_reservation(),
        ) {
            (Ok(m), Ok(c)) => (m, c),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("tmem accounting: reservation query failed: {e}");
                return;
            }
        };
        let populated = self.frames.counts().populated_pages();
        let held = self.swap.hypervisor_pages();
        // Xen's tot_pages = our populated frames + tmem pages + its own
        // extras for the domain.
        let extra = cur.saturating_sub(populated).saturating_sub(held);
        let bound = max.saturating_sub(extra);
        if self.tracked_max_pages != Some(bound) {
            log::info!(
                "tmem accounting: max_pages {max}, {extra} pages beyond our frames: \
                 frames + tmem pages <= {bound}"
            );
            self.tracked_max_pages = Some(bound);
        }
        self.balloon.set_hypervisor_max_pages(Some(bound));
        self.balloon.set_hypervisor_held_pages(held);
    }

    /// Committed memory in pages: what the workload reserved, the heap and
    /// the page tables.
    fn committed_pages(&self) -> u64 {
        crate::workload::Committed {
            workload_reserved_pages: self.engine.as_ref().map_or(0, |e| e.committed_pages()),
            kernel_heap_pages: self.heap_pages,
            page_table_pages: self.page_table_pages,
        }
        .total_pages()
    }
}

/// Heap bytes to pages, rounding up.
pub fn heap_bytes_to_pages(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(PAGE_SIZE)
}
