//! The timed parts of a turn: the workload, the controller's tick and the
//! balloon step.

use super::adapters::Timed;
use super::{Env, Runtime, ENGINE_RETRY_NS, NS_PER_S};
use crate::balloon::{Progress, ZeroScrubber};
use crate::mm::fault::{with_fault_handler, Shared};
use crate::pager::{PagedSource, PagerCtx, SwapDevice};
use crate::selfballoon::policy::TickInput;
use crate::workload::engine::StepOutcome;
use crate::xen::ops::Clock;

/// Pages the loop pages out per turn at most to meet a target (64 MiB),
/// so that one turn stays short; the next turn goes on at once.
const RECLAIM_PER_TURN_PAGES: u64 = 16_384;
/// Pages frontswap shrinking brings back per tick at most (64 MiB).
const SHRINK_PER_TICK_PAGES: u64 = 16_384;

/// The pager's context over the runtime's fields (a macro, so that the
/// borrows stay field by field and the workload can be borrowed beside).
macro_rules! pager_ctx {
    ($rt:expr) => {
        PagerCtx {
            pager: &mut $rt.pager,
            mmu: &mut $rt.mmu,
            swap: &mut $rt.swap,
            frames: &mut $rt.frames,
            balloon: &mut $rt.balloon,
            mem: &mut $rt.mem,
            heap_free_bytes: $rt.heap_free_bytes,
        }
    };
}

/// Workload steps per turn at most, so that a starving allocation grows
/// the balloon and continues at once without starving the rest.
const ENGINE_ROUNDS_PER_TURN: u32 = 64;

impl<E: Env> Runtime<'_, E> {
    /// Runs the workload if due.
    pub(super) fn run_engine(&mut self, now: u64) {
        if self.due.engine_ns.is_none_or(|t| now < t) {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            self.due.engine_ns = None;
            return;
        };
        self.pager.new_turn();
        for _ in 0..ENGINE_ROUNDS_PER_TURN {
            // A fault must always find a frame: the watermark's frames are
            // free before the workload touches memory, or it waits.
            if !pager_ctx!(self).replenish() {
                let missing = self
                    .pager
                    .watermark_pages()
                    .saturating_sub(self.frames.free_pages());
                log::debug!("workload waits: {missing} frames short of the watermark");
                let c = &mut self.counters;
                c.alloc_stalls = c.alloc_stalls.saturating_add(1);
                c.alloc_stall_pages_since_tick = c.alloc_stall_pages_since_tick.max(missing);
                self.due.engine_ns = Some(now.saturating_add(ENGINE_RETRY_NS));
                return;
            }
            let out = {
                let shared = Shared::new(pager_ctx!(self));
                let mut src = PagedSource {
                    ctx: &shared,
                    access: &mut self.access,
                    buf: &mut self.page_buf,
                };
                with_fault_handler(&shared, || engine.step(now, &mut src))
            };
            match out {
                StepOutcome::Busy => {
                    self.due.engine_ns = Some(now);
                }
                StepOutcome::NeedFrames { pages } => {
                    // Pages are demand-zero: only a full region says this.
                    log::warn!("workload: the pageable region is full ({pages} pages short)");
                    let c = &mut self.counters;
                    c.alloc_stalls = c.alloc_stalls.saturating_add(1);
                    c.alloc_stall_pages_since_tick = c.alloc_stall_pages_since_tick.max(pages);
                    self.due.engine_ns = Some(now.saturating_add(NS_PER_S));
                    return;
                }
                StepOutcome::Sleep { until_ns } => {
                    self.due.engine_ns = Some(until_ns);
                    return;
                }
                StepOutcome::OutOfHeap => {
                    self.due.engine_ns = Some(now.saturating_add(NS_PER_S));
                    return;
                }
                StepOutcome::Done => {
                    self.due.engine_ns = None;
                    return;
                }
            }
        }
    }

    /// What the controller measures this tick.
    pub(super) fn tick_input(&self) -> TickInput {
        // The pool's frames are populated RAM like any other: they are in
        // `current` and `totalram` (not a pot outside the guest's memory,
        // as Xen's tmem pages are).
        let current = self.frames.counts().populated_pages();
        TickInput {
            committed_pages: self.committed_pages(),
            current_pages: current,
            totalram_pages: current.saturating_sub(self.kernel_pages),
            totalreserve_pages: 0,
            frontswap_pages: self.swap.pages(),
            toolstack_target_pages: Some(self.balloon.upper_pages()),
            boot_totalram_pages: self.boot_totalram_pages,
            max_pfn: self.max_pfn,
            pagein_pages: self
                .pager
                .stats()
                .pageins
                .saturating_sub(self.counters.pageins_at_tick),
            alloc_stall_pages: self.counters.alloc_stall_pages_since_tick,
        }
    }

    /// The controller's tick, if due: a new requested target for the
    /// balloon.
    pub(super) fn run_tick(&mut self, now: u64) {
        let Some(t) = self.due.tick_ns else { return };
        if now < t {
            return;
        }
        let input = self.tick_input();
        self.counters.alloc_stall_pages_since_tick = 0;
        self.counters.pageins_at_tick = self.pager.stats().pageins;
        let out = self.controller.tick(input);
        if let Some(target) = out.frontswap_target_pages {
            // frontswap_shrink(): a partial swap-off.
            let before = self.swap.pages();
            let back = pager_ctx!(self).shrink_to(target, SHRINK_PER_TICK_PAGES);
            let after = self.swap.pages();
            if back > 0 {
                log::info!("frontswap shrink: {before} -> {after} pages (target {target})");
            } else {
                log::debug!("frontswap shrink to {target}: no room, {after} pages stay");
            }
        }
        if let Some(d) = out.decision {
            log::debug!(
                "tick {}: committed {} current {} goal {} target {}",
                self.controller.ticks(),
                input.committed_pages,
                input.current_pages,
                d.goal_pages,
                d.target_pages
            );
            self.balloon
                .set_requested_target_pages(Some(d.target_pages));
            self.due.balloon_ns = Some(0);
        } else {
            self.balloon.set_requested_target_pages(None);
        }
        self.due.tick_ns = out
            .rearm_timer
            .then(|| now.saturating_add(u64::from(out.interval_s.max(1)).saturating_mul(NS_PER_S)));
        self.due.status_ns = 0;
    }

    /// A bounded balloon step towards the target, if due.
    pub(super) fn run_balloon(&mut self, now: u64) {
        if self.due.balloon_ns.is_none_or(|t| now < t) {
            return;
        }
        // Below what is resident: page out cold pages so the balloon can
        // release their frames.
        let target = self.balloon.target_pages();
        let populated = self.frames.counts().populated_pages();
        if populated > target {
            let n = pager_ctx!(self).reclaim_for_target(target, RECLAIM_PER_TURN_PAGES);
            self.counters.reclaimed_for_target =
                self.counters.reclaimed_for_target.saturating_add(n);
            if n > 0 {
                self.due.status_ns = 0;
            }
        }
        let mut ops = Timed::new(&mut self.mem, &self.clock);
        let t0 = self.clock.now_ns();
        let r = self.balloon.step(
            &mut ops,
            &mut self.frames,
            &mut ZeroScrubber(&mut self.pages),
            now,
        );
        let (hypercalls, hypercall_ns) = (ops.hypercalls, ops.hypercall_ns);
        let step_ns = self.clock.now_ns().saturating_sub(t0);
        let moved = r.released_pages.saturating_add(r.populated_pages);
        if moved > 0 {
            self.due.status_ns = 0;
            let t = &mut self.timing;
            t.steps = t.steps.saturating_add(1);
            t.step_ns = t.step_ns.saturating_add(step_ns);
            t.hypercalls = t.hypercalls.saturating_add(hypercalls);
            t.hypercall_ns = t.hypercall_ns.saturating_add(hypercall_ns);
            t.pages = t.pages.saturating_add(moved);
            log::info!(
                "balloon: -{} +{} pages in {} hypercalls: step {} us, hypercalls {} us ({:?})",
                r.released_pages,
                r.populated_pages,
                hypercalls,
                step_ns / 1000,
                hypercall_ns / 1000,
                r.progress
            );
        }
        if let Progress::BackingOff = r.progress {
            log::debug!(
                "balloon backing off: {:?}",
                self.balloon.status(self.frames.counts()).last_error
            );
        }
        self.due.balloon_ns = r.next_call_ns;
        self.note_floor(now);
    }

    /// Whether the target is out of reach: the balloon stopped because
    /// every frame is in use and nothing more can be paged out. The guest
    /// then publishes the size it reached as its floor (`swap_floor`).
    fn note_floor(&mut self, now: u64) {
        let counts = self.frames.counts();
        let populated = counts.populated_pages();
        let target = self.balloon.target_pages();
        let stuck = populated > target
            && counts.free_pages <= self.pager.watermark_pages()
            && pager_ctx!(self).reclaim_for_target(target, 1) == 0;
        // The floor is the lowest size reached while the target was out of
        // reach; it stays published while the guest is above its target,
        // and goes when the target is met.
        let floor = if populated <= target {
            None
        } else if stuck {
            Some(
                self.swap_floor_pages
                    .map_or(populated, |f| f.min(populated)),
            )
        } else {
            self.swap_floor_pages
        };
        if floor != self.swap_floor_pages {
            if let (Some(f), None) = (floor, self.swap_floor_pages) {
                log::info!(
                    "target {} KiB out of reach: floor {} KiB ({} pages refused by frontswap)",
                    crate::mm::pages_to_kib(target),
                    crate::mm::pages_to_kib(f),
                    self.pager.counts().refused_pages
                );
            }
            self.swap_floor_pages = floor;
            self.due.status_ns = 0;
        }
        if stuck {
            self.counters.target_unreachable_turns =
                self.counters.target_unreachable_turns.saturating_add(1);
            // Retry later: pages may be written (and compress) again.
            if self.due.balloon_ns.is_none() {
                self.due.balloon_ns = Some(now.saturating_add(NS_PER_S));
            }
        } else if populated > target && self.due.balloon_ns.is_none() {
            self.due.balloon_ns = Some(now);
        }
    }
}
