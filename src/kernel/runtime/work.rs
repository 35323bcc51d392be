//! The timed parts of a turn: the workload, the controller's tick and the
//! balloon step.

use super::adapters::{Timed, WorkloadPages};
use super::{Env, Runtime, ENGINE_RETRY_NS, NS_PER_S};
use crate::balloon::{Progress, ZeroScrubber};
use crate::selfballoon::policy::TickInput;
use crate::workload::engine::StepOutcome;
use crate::xen::ops::Clock;

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
        for _ in 0..ENGINE_ROUNDS_PER_TURN {
            let out = engine.step(
                now,
                &mut WorkloadPages {
                    frames: &mut self.frames,
                    pages: &mut self.pages,
                },
            );
            match out {
                StepOutcome::Busy => {
                    self.due.engine_ns = Some(now);
                }
                StepOutcome::NeedFrames { pages } => {
                    // Balloon up now, within the toolstack target.
                    match self
                        .balloon
                        .ensure_free(&mut self.mem, &mut self.frames, pages)
                    {
                        Ok(()) => continue,
                        Err(e) => {
                            log::debug!("workload needs {pages} frames: {e:?}");
                            let c = &mut self.counters;
                            c.alloc_stalls = c.alloc_stalls.saturating_add(1);
                            c.alloc_stall_pages_since_tick =
                                c.alloc_stall_pages_since_tick.max(pages);
                            self.due.engine_ns = Some(now.saturating_add(ENGINE_RETRY_NS));
                            return;
                        }
                    }
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
        let current = self.frames.counts().populated_pages();
        TickInput {
            committed_pages: self.committed_pages(),
            current_pages: current,
            totalram_pages: current.saturating_sub(self.kernel_pages),
            totalreserve_pages: 0,
            frontswap_pages: 0,
            toolstack_target_pages: Some(self.balloon.upper_pages()),
            boot_totalram_pages: self.boot_totalram_pages,
            max_pfn: self.max_pfn,
            // No swap tier yet.
            pagein_pages: 0,
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
        let out = self.controller.tick(input);
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
    }
}
