//! Replays a [`Trace`] through one policy against the [`Model`]: all VMs
//! of the trace in lockstep on one clock (they share the host's free
//! memory), tick by tick, the controller being the guest's own.

use std::collections::VecDeque;

use selfballoon::selfballoon::{Controller, TickInput};

use crate::model::{shortfall_linear, Model, PAGES_PER_MIB};
use crate::policy::{Kind, PolicySpec};
use crate::score::Tally;
use crate::trace::{Seg, Series, Trace};

/// Frames held and needed over time for one VM, for the charts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recording {
    /// The VM.
    pub vm: String,
    /// (hours since the start of the run, needed MiB, held MiB).
    pub points: Vec<(f64, f64, f64)>,
}

/// One tick of one VM, for tests and `--phases`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickTrace {
    /// Tick number from the start of the run.
    pub tick: u64,
    /// Frames needed.
    pub needed_pages: u64,
    /// Frames held at the start and at the end of the tick.
    pub held_start_pages: u64,
    /// As above.
    pub held_end_pages: u64,
    /// Pages in the swap tier.
    pub tier_pages: u64,
}

/// What a run gives back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The sums for the scorecard.
    pub tally: Tally,
    /// The recorded VMs, in the order asked.
    pub recordings: Vec<Recording>,
    /// Every tick of the VMs asked for with `trace_vms`.
    pub ticks: Vec<Vec<TickTrace>>,
}

/// What to record besides the tally.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Indices into the trace's series to chart.
    pub chart_vms: Vec<usize>,
    /// Chart one point every this many ticks (at least 1).
    pub chart_every_ticks: u64,
    /// Chart only the first this many seconds (0: all).
    pub chart_span_s: u64,
    /// Indices into the trace's series whose every tick to keep.
    pub trace_vms: Vec<usize>,
}

struct Vm<'a> {
    segs: &'a [Seg],
    cursor: usize,
    started: bool,
    held: u64,
    ctl: Option<Controller>,
    lag: VecDeque<u64>,
    last_needed: Option<u64>,
    tier: u64,
    pagein_prev: u64,
    stall_prev: u64,
    short_len: u32,
    in_oom: bool,
    spike: Option<u32>,
    last_dir: i8,
}

impl<'a> Vm<'a> {
    fn new(s: &'a Series, kind: &Kind) -> Self {
        Vm {
            segs: &s.segs,
            cursor: 0,
            started: false,
            held: 0,
            ctl: match kind {
                Kind::Controller(t) => Some(Controller::new(*t)),
                _ => None,
            },
            lag: VecDeque::new(),
            last_needed: None,
            tier: 0,
            pagein_prev: 0,
            stall_prev: 0,
            short_len: 0,
            in_oom: false,
            spike: None,
            last_dir: 0,
        }
    }

    /// The segment in force at `t`, if the VM runs then.
    fn seg_at(&mut self, t: u64) -> Option<Seg> {
        while self.cursor < self.segs.len() && self.segs[self.cursor].end_s <= t {
            self.cursor += 1;
        }
        self.segs
            .get(self.cursor)
            .copied()
            .filter(|s| s.start_s <= t)
    }
}

/// The run's clock: first start, and the number of ticks to the last end.
pub fn clock(trace: &Trace, tick_s: u32) -> (u64, u64) {
    let t0 = trace
        .series
        .iter()
        .filter_map(|s| s.segs.first().map(|g| g.start_s))
        .min()
        .unwrap_or(0);
    let t1 = trace
        .series
        .iter()
        .filter_map(|s| s.segs.last().map(|g| g.end_s))
        .max()
        .unwrap_or(t0);
    (t0, (t1 - t0).div_ceil(u64::from(tick_s.max(1))))
}

/// Runs `policy` over `trace`; `progress` is called with the number of
/// ticks done since its last call.
pub fn run(
    trace: &Trace,
    model: &Model,
    policy: &PolicySpec,
    record: &Record,
    progress: &(dyn Fn(u64) + Sync),
) -> Outcome {
    let dt_s = u64::from(model.tick_s.max(1));
    let dt = dt_s as f64;
    let (t0, n_ticks) = clock(trace, model.tick_s);
    let mut vms: Vec<Vm> = trace
        .series
        .iter()
        .map(|s| Vm::new(s, &policy.kind))
        .collect();
    let mut host_free = model.host_free_pages;
    let mut tally = Tally::default();
    let mut recordings: Vec<Recording> = record
        .chart_vms
        .iter()
        .map(|&i| Recording {
            vm: trace
                .series
                .get(i)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            points: Vec::new(),
        })
        .collect();
    let mut ticks: Vec<Vec<TickTrace>> = vec![Vec::new(); record.trace_vms.len()];
    let every = record.chart_every_ticks.max(1);
    let speed = model.balloon_pages_per_s.max(1) as f64;
    let mut since_progress = 0u64;

    for k in 0..n_ticks {
        let t = t0 + k * dt_s;
        for (i, vm) in vms.iter_mut().enumerate() {
            let Some(seg) = vm.seg_at(t) else { continue };
            let ram = Model::kib_to_pages(seg.ram_kib);
            let ts = model.toolstack_pages(ram);
            let committed = model.committed_pages(seg.usage_kib);
            // A guest cannot need more frames than it has RAM.
            let needed = model.needed_pages(committed).min(ram);
            if !vm.started {
                vm.started = true;
                tally.vms += 1;
                // Boots holding its toolstack target, taken from the host.
                vm.held = match &mut host_free {
                    Some(f) => {
                        let got = ts.min(*f);
                        *f -= got;
                        got
                    }
                    None => ts,
                };
            }
            // The toolstack target may have changed: xl mem-set lowers
            // max_pages, the domain cannot hold more.
            if vm.held > ts {
                if let Some(f) = &mut host_free {
                    *f = f.saturating_add(vm.held - ts);
                }
                vm.held = ts;
            }
            let observed = if model.lag_ticks == 0 {
                committed
            } else {
                vm.lag.front().copied().unwrap_or(committed)
            };
            vm.lag.push_back(committed);
            while vm.lag.len() > model.lag_ticks as usize {
                vm.lag.pop_front();
            }

            let h0 = vm.held;
            let (h1, ramp_s) = match &policy.kind {
                Kind::Oracle => {
                    let want = needed.min(ts);
                    (grow_within(h0, want, &mut host_free, &mut tally), 0.0)
                }
                kind => {
                    let target = match (kind, vm.ctl.as_mut()) {
                        (Kind::Controller(_), Some(ctl)) => {
                            let input = TickInput {
                                committed_pages: observed,
                                current_pages: h0,
                                totalram_pages: h0.saturating_sub(model.kernel_pages),
                                totalreserve_pages: model.totalreserve_pages,
                                frontswap_pages: vm.tier,
                                toolstack_target_pages: Some(ts),
                                boot_totalram_pages: ram.saturating_sub(model.kernel_pages),
                                max_pfn: ram,
                                pagein_pages: vm.pagein_prev,
                                alloc_stall_pages: vm.stall_prev,
                            };
                            ctl.tick(input).decision.map_or(h0, |d| d.target_pages)
                        }
                        _ => ts,
                    };
                    // The driver: never below its floor, never above the
                    // toolstack target (which wins).
                    let target = target.max(model.floor_pages).min(ts);
                    let step = model.move_per_tick_pages();
                    let want = if target > h0 {
                        h0.saturating_add((target - h0).min(step))
                    } else {
                        h0 - (h0 - target).min(step)
                    };
                    let h1 = grow_within(h0, want, &mut host_free, &mut tally);
                    (h1, h0.abs_diff(h1) as f64 / speed)
                }
            };
            let ramp_s = ramp_s.min(dt);
            vm.held = h1;

            // Integrals over the tick: the ramp, then flat at h1.
            let (a, b, d) = (h0 as f64, h1 as f64, needed as f64);
            tally.vm_s += dt;
            tally.held_ps += (a + b) / 2.0 * ramp_s + b * (dt - ramp_s);
            tally.demand_ps += d * dt;
            tally.short_ps += shortfall_linear(d, a, b, ramp_s) + (d - b).max(0.0) * (dt - ramp_s);
            tally.moved_pages = tally.moved_pages.saturating_add(h0.abs_diff(h1));

            // Shortfall episodes and the tier, at the frames the tick
            // mostly had: the end of a move done within the tick (a growth
            // that lands in milliseconds relieves the pressure at once),
            // else the fewest.
            let hmin = if h1 >= h0 && ramp_s < dt {
                h1
            } else {
                h0.min(h1)
            };
            let short = needed > hmin;
            if short {
                vm.short_len += 1;
            } else if vm.short_len > 0 {
                tally.episodes.push(vm.short_len);
                vm.short_len = 0;
            }
            let tier = model.tier(needed, hmin, ram);
            if tier.oom && !vm.in_oom {
                tally.oom_events += 1;
            }
            vm.in_oom = tier.oom;
            let pageouts = tier.tier_pages.saturating_sub(vm.tier);
            vm.tier = tier.tier_pages;
            tally.pageouts = tally.pageouts.saturating_add(pageouts);
            let pageins = model.pageins_per_tick(tier.hot_in_tier_pages);
            tally.pageins += pageins;
            let ws = model.working_set_pages(needed);
            if ws > 0.0 {
                tally.rate_ticks += 1;
                if pageins > 0.0 {
                    tally.pagein_rates.push(pageins / (dt / 60.0) / ws * 100.0);
                }
            }
            vm.pagein_prev = pageins.ceil() as u64;
            vm.stall_prev = if tier.oom {
                pageouts.max(needed - hmin)
            } else {
                pageouts
            };

            // Spikes: a rise of more than spike_rise_pct and 1 MiB.
            if let Some(prev) = vm.last_needed {
                let rise = needed.saturating_sub(prev);
                if rise >= PAGES_PER_MIB
                    && u128::from(rise) * 100 > u128::from(prev) * u128::from(model.spike_rise_pct)
                {
                    if let Some(n) = vm.spike.take() {
                        tally.spikes.push(n);
                    }
                    vm.spike = Some(0);
                }
            }
            if let Some(n) = vm.spike {
                if short {
                    vm.spike = Some(n + 1);
                } else {
                    tally.spikes.push(n);
                    vm.spike = None;
                }
            }
            vm.last_needed = Some(needed);

            let dir = (h1 > h0) as i8 - (h1 < h0) as i8;
            if dir != 0 {
                if vm.last_dir != 0 && dir != vm.last_dir {
                    tally.reversals += 1;
                }
                vm.last_dir = dir;
            }

            if k % every == 0 && (record.chart_span_s == 0 || t - t0 < record.chart_span_s) {
                if let Some(j) = record.chart_vms.iter().position(|&c| c == i) {
                    recordings[j].points.push((
                        (t - t0) as f64 / 3600.0,
                        needed as f64 / PAGES_PER_MIB as f64,
                        h1 as f64 / PAGES_PER_MIB as f64,
                    ));
                }
            }
            if let Some(j) = record.trace_vms.iter().position(|&c| c == i) {
                ticks[j].push(TickTrace {
                    tick: k,
                    needed_pages: needed,
                    held_start_pages: h0,
                    held_end_pages: h1,
                    tier_pages: vm.tier,
                });
            }
        }
        since_progress += 1;
        if since_progress == 4096 {
            progress(since_progress);
            since_progress = 0;
        }
    }
    progress(since_progress);
    for vm in &mut vms {
        if vm.short_len > 0 {
            tally.episodes.push(vm.short_len);
        }
        if let Some(n) = vm.spike.take() {
            tally.spikes.push(n);
        }
    }
    Outcome {
        tally,
        recordings,
        ticks,
    }
}

/// Moves from `h0` toward `want`, growing only as far as the host's free
/// memory allows; returns the frames held after.
fn grow_within(h0: u64, want: u64, host_free: &mut Option<u64>, tally: &mut Tally) -> u64 {
    match host_free {
        None => want,
        Some(f) => {
            if want > h0 {
                let got = (want - h0).min(*f);
                *f -= got;
                tally.host_refused_pages = tally.host_refused_pages.saturating_add(want - h0 - got);
                h0 + got
            } else {
                *f = f.saturating_add(h0 - want);
                want
            }
        }
    }
}

/// The last tick that ends at or before `end_s` (seconds from the start of
/// the run): what the guest has settled at when a phase ends.
pub fn settled(ticks: &[TickTrace], end_s: u64, tick_s: u32) -> Option<TickTrace> {
    let last = (end_s / u64::from(tick_s.max(1))).checked_sub(1)?;
    ticks.iter().rev().find(|t| t.tick <= last).copied()
}
