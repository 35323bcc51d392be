//! `adaptive`: our policy. Fast up, slow down, probe downward while there
//! is no pressure, back off at once when there is.
//!
//! Why each part (the mechanisms are published; the code is ours):
//!
//! - **Estimate = max(fast, slow).** VMware ESX estimates a VM's active
//!   memory with a fast and a slow moving average and uses the larger, so
//!   that a rise is seen at once and a fall only slowly. Here the *fast*
//!   average jumps straight to committed memory when that rises (uphill it
//!   is not an average at all: the 2011 seed's `uphysteresis` 1) and decays
//!   with `adaptive_fast_halflife_s` when it falls; the *slow* one is a
//!   plain moving average with `adaptive_slow_halflife_s`. A guest whose
//!   demand dips for a minute keeps what it will need again; one that has
//!   really shrunk gives the memory back within a few slow half-lives.
//! - **Headroom above the estimate** is the largest of: a percentage of it
//!   (the probe, below), the largest recent *rise* of committed memory
//!   between two ticks times `adaptive_spike_pct` (decaying with
//!   `adaptive_spike_halflife_s`: a guest that has jumped by 1 GiB in one
//!   tick will likely do it again, one that never jumps needs no slack for
//!   it), less what the estimate already holds above the committed memory
//!   (right after a fall the fast estimate still covers most of a return
//!   to the peak), and `adaptive_min_headroom_mb`. The controller sees
//!   demand one tick late; the headroom is what covers a rise in the
//!   meantime.
//! - **Probing and back-off (Meta's senpai / TMO).** Pressure, not a
//!   formula, says whether the guest has too little: page-ins from the
//!   swap tier and allocations that had to wait for frames
//!   ([`TickInput::pagein_pages`], [`TickInput::alloc_stall_pages`]).
//!   Without pressure the headroom percentage decays from
//!   `adaptive_headroom_max_pct` toward `adaptive_headroom_min_pct` with
//!   `adaptive_probe_halflife_s`, after `adaptive_backoff_s` without
//!   pressure; any pressure puts it back at the maximum at once. (The
//!   demand that was not met is already in committed memory, which the
//!   fast estimate follows upward at once.)
//! - **The swap tier as the shock absorber.** What a rise beyond the
//!   headroom does not find in frames goes to the (compressed) swap tier
//!   for the tick or two until the balloon grows; its page-ins are the
//!   pressure signal above. So the headroom can be small without OOMs.
//!
//! The target is `estimate + headroom` in committed units, plus
//! `totalreserve` (and the frontswap pages when self-shrinking, as in the
//! other modes), converted to the balloon's `current_pages` units like the
//! Linux mode, then capped by the toolstack target. The balloon driver's
//! own safety floor applies below it.
//!
//! Averages are integer arithmetic on pages: one tick of an average with
//! half-life `h` moves the gap by `ln 2 · interval / h` (capped at the
//! whole gap), the first-order form of `1 − 2^(−interval/h)`, at least one
//! page, so it never sticks short of its input.

#![forbid(unsafe_code)]

use super::mode::Mode;
use super::policy::{ram_to_domain_pages, Decision, Policy, TickInput, PAGES_PER_MB};
use super::tunables::Tunables;

/// Parts per million.
const PPM: u64 = 1_000_000;
/// ln 2 in parts per million.
const LN2_PPM: u64 = 693_147;

/// The policy's state across ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Adaptive {
    /// The fast estimate, pages (committed units).
    pub fast_pages: u64,
    /// The slow estimate, pages.
    pub slow_pages: u64,
    /// The largest recent tick-to-tick rise of committed memory, decaying.
    pub rise_pages: u64,
    /// The probed headroom, percent × 10^4 (ppm of the estimate).
    pub headroom_ppm: u64,
    /// Ticks since the last pressure.
    pub calm_ticks: u64,
    /// Ticks with pressure so far.
    pub pressure_ticks: u64,
    /// Committed memory last tick.
    last_committed_pages: Option<u64>,
}

/// The fraction (ppm) of the gap an average with half-life `half_s`
/// covers in one tick of `interval_s`.
fn step_ppm(interval_s: u32, half_s: u32) -> u64 {
    (LN2_PPM.saturating_mul(u64::from(interval_s)) / u64::from(half_s.max(1))).min(PPM)
}

/// `from` moved toward `to` by `ppm` of the gap, at least one page.
fn approach(from: u64, to: u64, ppm: u64) -> u64 {
    let gap = from.abs_diff(to);
    let mv = (u128::from(gap) * u128::from(ppm))
        .div_ceil(u128::from(PPM))
        .max(u128::from(gap.min(1)));
    let mv = u64::try_from(mv).unwrap_or(gap).min(gap);
    if to > from {
        from + mv
    } else {
        from - mv
    }
}

/// `x * ppm / 10^6`, saturating.
fn scale(x: u64, ppm: u64) -> u64 {
    u64::try_from(u128::from(x) * u128::from(ppm) / u128::from(PPM)).unwrap_or(u64::MAX)
}

impl Adaptive {
    /// A fresh state: the first [`observe`](Self::observe) starts every
    /// estimate at the committed memory and the headroom at its maximum.
    pub const fn new() -> Self {
        Adaptive {
            fast_pages: 0,
            slow_pages: 0,
            rise_pages: 0,
            headroom_ppm: 0,
            calm_ticks: 0,
            pressure_ticks: 0,
            last_committed_pages: None,
        }
    }

    /// Whether this tick reports pressure.
    pub fn pressure(i: &TickInput) -> bool {
        i.pagein_pages > 0 || i.alloc_stall_pages > 0
    }

    /// Takes one tick's measurements into the state.
    pub fn observe(&mut self, t: &Tunables, i: &TickInput) {
        let dt = t.interval_s.get();
        let c = i.committed_pages;
        let max_ppm =
            u64::from(t.adaptive_headroom_max_pct.max(t.adaptive_headroom_min_pct)) * (PPM / 100);
        let min_ppm = u64::from(t.adaptive_headroom_min_pct) * (PPM / 100);
        let Some(prev) = self.last_committed_pages else {
            self.fast_pages = c;
            self.slow_pages = c;
            self.rise_pages = 0;
            self.headroom_ppm = max_ppm;
            self.last_committed_pages = Some(c);
            return;
        };
        self.last_committed_pages = Some(c);
        // The largest recent rise, decaying toward 0.
        let rise = c.saturating_sub(prev);
        self.rise_pages = approach(
            self.rise_pages,
            0,
            step_ppm(dt, t.adaptive_spike_halflife_s),
        )
        .max(rise);
        // Fast up, slow down.
        self.fast_pages = if c >= self.fast_pages {
            c
        } else {
            approach(self.fast_pages, c, step_ppm(dt, t.adaptive_fast_halflife_s))
        };
        self.slow_pages = approach(self.slow_pages, c, step_ppm(dt, t.adaptive_slow_halflife_s));
        // Pressure backs off at once; calm probes downward slowly.
        if Self::pressure(i) {
            self.pressure_ticks = self.pressure_ticks.saturating_add(1);
            self.calm_ticks = 0;
            self.headroom_ppm = max_ppm;
        } else {
            self.calm_ticks = self.calm_ticks.saturating_add(1);
            let calm_s = self.calm_ticks.saturating_mul(u64::from(dt));
            if calm_s >= u64::from(t.adaptive_backoff_s) {
                self.headroom_ppm = approach(
                    self.headroom_ppm,
                    min_ppm,
                    step_ppm(dt, t.adaptive_probe_halflife_s),
                );
            }
            self.headroom_ppm = self.headroom_ppm.clamp(min_ppm, max_ppm);
        }
    }

    /// The estimate of the memory the guest needs: max(fast, slow).
    pub fn estimate_pages(&self) -> u64 {
        self.fast_pages.max(self.slow_pages)
    }

    /// The headroom above the estimate, pages.
    pub fn headroom_pages(&self, t: &Tunables) -> u64 {
        let pct = scale(self.estimate_pages(), self.headroom_ppm);
        let spike = scale(
            self.rise_pages,
            u64::from(t.adaptive_spike_pct) * (PPM / 100),
        );
        // What the estimate already holds above the last committed value
        // covers that much of a rise.
        let above = self
            .estimate_pages()
            .saturating_sub(self.last_committed_pages.unwrap_or(0));
        let spike = spike.saturating_sub(above);
        let min = u64::from(t.adaptive_min_headroom_mb).saturating_mul(PAGES_PER_MB);
        pct.max(spike).max(min)
    }
}

impl Policy for Adaptive {
    /// The decision from the state as last observed (the toolstack cap is
    /// applied by the caller, as for every mode).
    fn decide(&self, t: &Tunables, i: &TickInput) -> Decision {
        let frontswap = if t.frontswap_selfshrinking {
            i.frontswap_pages
        } else {
            0
        };
        let goal = self
            .estimate_pages()
            .saturating_add(self.headroom_pages(t))
            .saturating_add(i.totalreserve_pages)
            .saturating_add(frontswap);
        let target = ram_to_domain_pages(goal, i);
        Decision {
            mode: Mode::Adaptive,
            goal_pages: target,
            unclamped_target_pages: target,
            target_pages: target,
            floor_pages: None,
            clamped_by_floor: false,
            clamped_by_toolstack: false,
            goal_saturated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = PAGES_PER_MB;

    fn tun() -> Tunables {
        Tunables {
            mode: Mode::Adaptive,
            ..Tunables::new(true)
        }
    }

    fn input(committed: u64) -> TickInput {
        TickInput {
            committed_pages: committed,
            current_pages: 131_072,
            totalram_pages: 126_976,
            ..TickInput::default()
        }
    }

    #[test]
    fn averages_move_by_ln2_over_halflife() {
        // 5 s ticks, 60 s half-life: 693147 * 5 / 60 = 57762 ppm.
        assert_eq!(step_ppm(5, 60), 57_762);
        assert_eq!(step_ppm(5, 1), PPM);
        assert_eq!(approach(1000, 0, 57_762), 1000 - 58);
        assert_eq!(approach(0, 1000, 57_762), 58);
        // Never sticks: at least one page.
        assert_eq!(approach(10, 9, 1), 9);
        assert_eq!(approach(7, 7, PPM), 7);
        assert_eq!(approach(u64::MAX, 0, PPM), 0);
    }

    /// Defaults: 10% min headroom, 50% max, 16 MiB minimum, 90% of the
    /// largest rise; a 512 MiB guest with 4096 kernel pages.
    #[test]
    fn golden_first_tick_rise_and_decay() {
        let t = tun();
        let mut a = Adaptive::new();
        a.observe(&t, &input(20_000));
        // estimate 20000, headroom max(50% = 10000, 16 MiB = 4096) = 10000
        // target = 30000 + 131072 - 126976 = 34096
        assert_eq!(a.decide(&t, &input(20_000)).target_pages, 34_096);

        // A rise to 60000: fast jumps, the rise is 40000, 90% of it is
        // more than 50% of 60000.
        a.observe(&t, &input(60_000));
        assert_eq!((a.fast_pages, a.rise_pages), (60_000, 40_000));
        assert_eq!(a.headroom_pages(&t), 36_000);
        assert_eq!(a.decide(&t, &input(60_000)).target_pages, 100_096);

        // Back to 20000: fast decays 57762 ppm of the gap per tick, slow
        // (1800 s) 1925 ppm; the rise decays with 6 h.
        a.observe(&t, &input(20_000));
        // 40000 * 57762 / 1e6 = 2310.48 -> 2311
        assert_eq!(a.fast_pages, 60_000 - 2_311);
        // The estimate's 37689 above committed already covers more than
        // 90% of the remembered rise (~36000): no spike term, the 50%.
        assert!(a.rise_pages * 9 / 10 < a.estimate_pages() - 20_000);
        assert_eq!(a.headroom_pages(&t), a.estimate_pages() / 2);
        assert!(a.estimate_pages() >= a.slow_pages);
        // Many calm ticks later everything has come down toward 20000 and
        // the headroom toward 10%.
        for _ in 0..20_000 {
            a.observe(&t, &input(20_000));
        }
        assert_eq!(a.estimate_pages(), 20_000);
        assert_eq!(a.headroom_ppm, 100_000);
        assert!(a.rise_pages < 100);
        // max(10% = 2000, 16 MiB = 4096) = 4096
        assert_eq!(a.headroom_pages(&t), 4 * 4 * MB);
    }

    #[test]
    fn pressure_backs_off_at_once() {
        let t = tun();
        let mut a = Adaptive::new();
        for _ in 0..10_000 {
            a.observe(&t, &input(100_000));
        }
        assert_eq!(a.headroom_ppm, 100_000);
        let mut i = input(100_000);
        i.alloc_stall_pages = 5_000;
        a.observe(&t, &i);
        assert_eq!(a.headroom_ppm, 500_000);
        assert_eq!(a.fast_pages, 100_000);
        assert_eq!((a.calm_ticks, a.pressure_ticks), (0, 1));
        // No probing during the back-off (300 s = 60 ticks).
        for _ in 0..59 {
            a.observe(&t, &input(100_000));
        }
        assert_eq!(a.headroom_ppm, 500_000);
        a.observe(&t, &input(100_000));
        assert!(a.headroom_ppm < 500_000);
        let mut i = input(100_000);
        i.pagein_pages = 1;
        a.observe(&t, &i);
        assert_eq!(a.headroom_ppm, 500_000);
    }

    #[test]
    fn frontswap_and_reserve_are_added_like_the_other_modes() {
        let mut t = tun();
        t.frontswap_selfshrinking = true;
        let mut a = Adaptive::new();
        let mut i = input(20_000);
        i.frontswap_pages = 1_000;
        i.totalreserve_pages = 500;
        a.observe(&t, &i);
        assert_eq!(a.decide(&t, &i).target_pages, 34_096 + 1_500);
    }
}
