//! The controller: tunables, frontswap shrink state and the last decision,
//! driven once per timer tick.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::adaptive::Adaptive;
use super::frontswap::{FrontswapShrink, ShrinkVariant};
use super::mode::Mode;
use super::policy::{apply_toolstack_cap, pages_to_mb, Decision, Policy, TickInput};
use super::tunables::{sanitize, Applied, Key, Rejection, Tunables, MAX_REPORTED_LEN};

/// What one tick decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickOutput {
    /// The balloon decision, or `None` when self-ballooning is off (leave
    /// the balloon alone).
    pub decision: Option<Decision>,
    /// Shrink frontswap to this many pages, when self-shrinking decided so.
    pub frontswap_target_pages: Option<u64>,
    /// Re-arm the timer for `interval_s` (the seed's `reset_timer`).
    pub rearm_timer: bool,
    /// The period to re-arm with.
    pub interval_s: u32,
}

/// The self-balloon controller.
#[derive(Clone, Debug)]
pub struct Controller {
    tunables: Tunables,
    shrink: FrontswapShrink,
    adaptive: Adaptive,
    ticks: u64,
    last_input: Option<TickInput>,
    last_decision: Option<Decision>,
    last_rejection: Option<Rejection>,
    /// Self-ballooning or self-shrinking was on when the controller was
    /// made (at boot): the first tick sets the 10% reserve default.
    reserve_default_pending: bool,
}

impl Controller {
    /// A controller with these tunables (normally `Tunables::new(flag)`
    /// with the boot option's flag).
    pub fn new(tunables: Tunables) -> Self {
        Controller {
            tunables,
            shrink: FrontswapShrink::new(ShrinkVariant::of(tunables.mode)),
            reserve_default_pending: tunables.selfballooning || tunables.frontswap_selfshrinking,
            adaptive: Adaptive::new(),
            ticks: 0,
            last_input: None,
            last_decision: None,
            last_rejection: None,
        }
    }

    /// The tunables in force.
    pub fn tunables(&self) -> &Tunables {
        &self.tunables
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The last decision, if self-ballooning has run.
    pub fn last_decision(&self) -> Option<&Decision> {
        self.last_decision.as_ref()
    }

    /// The adaptive policy's state (fresh until adaptive mode ticks).
    pub fn adaptive(&self) -> &Adaptive {
        &self.adaptive
    }

    /// The last refused tunable value.
    pub fn last_rejection(&self) -> Option<&Rejection> {
        self.last_rejection.as_ref()
    }

    /// Applies a tunable write (see [`Tunables::apply`]). A rejection is
    /// remembered for the status and returned; the old value stays.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<Applied, Rejection> {
        let mode_before = self.tunables.mode;
        match self.tunables.apply(key, value) {
            Ok(a) => {
                if self.tunables.mode != mode_before {
                    // A mode starts from what it measures, not from
                    // estimates another mode's targets shaped.
                    self.adaptive = Adaptive::new();
                    // Self-shrinking follows the mode's C version: Linux
                    // re-arms the inertia counter after each shrink.
                    self.shrink.variant = ShrinkVariant::of(self.tunables.mode);
                }
                if a.key == Key::FrontswapInertia {
                    // store_frontswap_inertia also restarts the countdown,
                    // whether or not the value changed.
                    self.shrink.set_inertia(self.tunables.frontswap_inertia);
                }
                Ok(a)
            }
            Err(r) => {
                self.last_rejection = Some(r.clone());
                Err(r)
            }
        }
    }

    /// One timer tick: the seed's `selfballoon_process()` with the policy
    /// of the current mode, then frontswap self-shrinking.
    pub fn tick(&mut self, input: TickInput) -> TickOutput {
        self.ticks = self.ticks.saturating_add(1);
        self.last_input = Some(input);
        if core::mem::take(&mut self.reserve_default_pending) && self.tunables.reserved_mb == 0 {
            // xen_selfballoon_init(): with self-ballooning or self-shrinking
            // on at boot, a zero reserve becomes 10% of RAM, once. (dom0
            // cannot write 0, so this only ever replaces the boot default.)
            let mb = pages_to_mb(input.boot_totalram_pages / 10);
            self.tunables.reserved_mb = u32::try_from(mb).unwrap_or(u32::MAX);
        }
        let t = self.tunables;
        let decision = if t.selfballooning {
            let d = if t.mode == Mode::Adaptive {
                self.adaptive.observe(&t, &input);
                let mut d = self.adaptive.decide(&t, &input);
                apply_toolstack_cap(&mut d, input.toolstack_target_pages);
                d
            } else {
                t.mode.decide(&t, &input)
            };
            self.last_decision = Some(d);
            Some(d)
        } else {
            None
        };
        let frontswap_target_pages = if t.frontswap_selfshrinking {
            self.shrink.tick(
                input.frontswap_pages,
                t.frontswap_hysteresis,
                t.frontswap_inertia,
            )
        } else {
            None
        };
        TickOutput {
            decision,
            frontswap_target_pages,
            rearm_timer: t.timer_wanted(),
            interval_s: t.interval_s.get(),
        }
    }

    /// The key/value pairs to publish under `data/selfballoon/`:
    ///
    /// - `mode`, `ticks`, every tunable by its name (effective values),
    /// - after the first tick: `effective_reserved_mb`, `committed_kib`,
    ///   `current_kib`, `totalram_kib` (what the controller last saw),
    /// - after the first decision: `goal_kib`, `requested_target_kib`
    ///   (what it asked the balloon for; the balloon driver publishes its
    ///   own effective `target`), `policy_floor_kib` (linux mode),
    ///   `policy_clamped` (`none`/`floor`/`toolstack`),
    /// - in adaptive mode after its first tick: `adaptive_fast_kib`,
    ///   `adaptive_slow_kib`, `adaptive_rise_kib` (the estimates),
    ///   `adaptive_headroom_kib`, `adaptive_headroom_pct` (the probed
    ///   percentage, two decimals), `adaptive_pressure_ticks`,
    /// - after a rejection: `last_rejection_key`, `last_rejection_value`,
    ///   `last_rejection_reason`.
    ///
    /// Keys are fixed ASCII; values contain no control characters and are
    /// at most [`MAX_REPORTED_LEN`] bytes.
    pub fn status(&self) -> Vec<(&'static str, String)> {
        let kib = |pages: u64| pages.saturating_mul(4).to_string();
        let t = &self.tunables;
        let mut out: Vec<(&'static str, String)> = Vec::with_capacity(24);
        out.push(("mode", t.mode.name().to_string()));
        out.push(("ticks", self.ticks.to_string()));
        for k in Key::ALL {
            if k == Key::Mode {
                continue;
            }
            out.push((k.name(), t.value_string(k)));
        }
        if let Some(i) = &self.last_input {
            out.push(("effective_reserved_mb", t.reserved_mb.to_string()));
            out.push(("committed_kib", kib(i.committed_pages)));
            out.push(("current_kib", kib(i.current_pages)));
            out.push(("totalram_kib", kib(i.totalram_pages)));
        }
        if let Some(d) = &self.last_decision {
            out.push(("goal_kib", kib(d.goal_pages)));
            out.push(("requested_target_kib", kib(d.target_pages)));
            if let Some(f) = d.floor_pages {
                out.push(("policy_floor_kib", kib(f)));
            }
            let clamp = match (d.clamped_by_floor, d.clamped_by_toolstack) {
                (_, true) => "toolstack",
                (true, false) => "floor",
                (false, false) => "none",
            };
            out.push(("policy_clamped", clamp.to_string()));
        }
        if t.mode == Mode::Adaptive && self.last_input.is_some() {
            let a = &self.adaptive;
            out.push(("adaptive_fast_kib", kib(a.fast_pages)));
            out.push(("adaptive_slow_kib", kib(a.slow_pages)));
            out.push(("adaptive_rise_kib", kib(a.rise_pages)));
            out.push(("adaptive_headroom_kib", kib(a.headroom_pages(t))));
            let ppm = a.headroom_ppm;
            out.push((
                "adaptive_headroom_pct",
                format!("{}.{:02}", ppm / 10_000, ppm % 10_000 / 100),
            ));
            out.push(("adaptive_pressure_ticks", a.pressure_ticks.to_string()));
        }
        if let Some(r) = &self.last_rejection {
            out.push(("last_rejection_key", sanitize(&r.key, MAX_REPORTED_LEN)));
            out.push(("last_rejection_value", sanitize(&r.value, MAX_REPORTED_LEN)));
            out.push(("last_rejection_reason", format!("{}", r.reason)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfballoon::mode::Mode;
    use crate::selfballoon::tunables::{RejectReason, TimerAction};

    fn input() -> TickInput {
        TickInput {
            committed_pages: 20_000,
            current_pages: 131_072,
            totalram_pages: 126_976,
            totalreserve_pages: 1_000,
            frontswap_pages: 0,
            toolstack_target_pages: Some(131_072),
            boot_totalram_pages: 126_976,
            max_pfn: 131_072,
            ..TickInput::default()
        }
    }

    fn get<'a>(s: &'a [(&'static str, String)], k: &str) -> Option<&'a str> {
        s.iter().find(|(kk, _)| *kk == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn tick_disabled_leaves_balloon_alone() {
        let mut c = Controller::new(Tunables::new(false));
        let o = c.tick(input());
        assert_eq!(o.decision, None);
        assert!(!o.rearm_timer);
        assert_eq!(c.ticks(), 1);
    }

    #[test]
    fn tick_and_status() {
        let mut c = Controller::new(Tunables::default());
        let o = c.tick(input());
        let d = o.decision.unwrap();
        // Same numbers as policy::golden_linux_descent_to_floor.
        assert_eq!(d.target_pages, 119_393);
        assert!(o.rearm_timer);
        assert_eq!(o.interval_s, 5);
        let s = c.status();
        assert_eq!(get(&s, "mode"), Some("linux"));
        assert_eq!(get(&s, "ticks"), Some("1"));
        assert_eq!(get(&s, "requested_target_kib"), Some("477572"));
        assert_eq!(get(&s, "goal_kib"), Some("150560"));
        assert_eq!(get(&s, "committed_kib"), Some("80000"));
        assert_eq!(get(&s, "current_kib"), Some("524288"));
        assert_eq!(get(&s, "effective_reserved_mb"), Some("49"));
        assert_eq!(get(&s, "selfballoon_downhysteresis"), Some("8"));
        assert_eq!(get(&s, "policy_clamped"), Some("none"));
        assert_eq!(get(&s, "last_rejection_key"), None);

        // Switch to 2011 at run time: next tick uses it.
        c.apply("mode", "2011").unwrap();
        let d = c.tick(input()).decision.unwrap();
        assert_eq!(d.mode, Mode::Seed2011);
        // goal = 20000 + 131072 - 126976 = 24096 -> 117700
        assert_eq!(d.target_pages, 117_700);
    }

    #[test]
    fn adaptive_mode_keeps_state_and_publishes_it() {
        let mut c = Controller::new(Tunables::default());
        c.apply("mode", "adaptive").unwrap();
        // Same numbers as adaptive::golden_first_tick_rise_and_decay, plus
        // totalreserve 1000.
        let mut i = input();
        let d = c.tick(i).decision.unwrap();
        assert_eq!((d.mode, d.target_pages), (Mode::Adaptive, 35_096));
        i.committed_pages = 60_000;
        assert_eq!(c.tick(i).decision.unwrap().target_pages, 101_096);
        let s = c.status();
        assert_eq!(get(&s, "mode"), Some("adaptive"));
        assert_eq!(get(&s, "adaptive_fast_kib"), Some("240000"));
        assert_eq!(get(&s, "adaptive_rise_kib"), Some("160000"));
        assert_eq!(get(&s, "adaptive_headroom_pct"), Some("50.00"));
        assert_eq!(get(&s, "adaptive_pressure_ticks"), Some("0"));
        assert_eq!(get(&s, "adaptive_headroom_min_pct"), Some("10"));
        // The toolstack caps it.
        i.toolstack_target_pages = Some(90_000);
        let d = c.tick(i).decision.unwrap();
        assert!(d.clamped_by_toolstack && d.target_pages == 90_000);
        // Leaving the mode and coming back starts afresh.
        c.apply("mode", "linux").unwrap();
        c.apply("mode", "adaptive").unwrap();
        assert_eq!(c.adaptive(), &Adaptive::new());
        i.committed_pages = 20_000;
        i.toolstack_target_pages = None;
        assert_eq!(c.tick(i).decision.unwrap().target_pages, 35_096);
    }

    #[test]
    fn rejection_is_published_and_value_kept() {
        let mut c = Controller::new(Tunables::default());
        let r = c.apply("selfballoon_downhysteresis", "-1\0").unwrap_err();
        assert_eq!(r.reason, RejectReason::NotDecimal);
        assert_eq!(c.tunables().downhysteresis.get(), 8);
        let s = c.status();
        assert_eq!(
            get(&s, "last_rejection_key"),
            Some("selfballoon_downhysteresis")
        );
        assert_eq!(get(&s, "last_rejection_value"), Some("-1?"));
        assert_eq!(get(&s, "last_rejection_reason"), Some("not-decimal"));
        for (k, v) in &s {
            assert!(k.is_ascii() && !v.chars().any(char::is_control));
            assert!(v.len() <= MAX_REPORTED_LEN);
        }
        // A later good write does not clear the record of the last bad one.
        c.apply("selfballoon_downhysteresis", "2").unwrap();
        assert_eq!(c.tunables().downhysteresis.get(), 2);
        assert!(c.last_rejection().is_some());
    }

    #[test]
    fn frontswap_runs_when_enabled_even_without_selfballooning() {
        let mut c = Controller::new(Tunables::new(false));
        assert_eq!(
            c.apply("frontswap_selfshrinking", "1").unwrap().timer,
            TimerAction::Start
        );
        c.apply("frontswap_inertia", "1").unwrap();
        let mut i = input();
        i.frontswap_pages = 100;
        let o = c.tick(i);
        assert!(o.rearm_timer && o.decision.is_none());
        assert_eq!(o.frontswap_target_pages, None); // grew from 0
        assert_eq!(c.tick(i).frontswap_target_pages, Some(95));
    }

    /// The three deviations an independent differential test found
    /// against the C (Linux 5.2's xen-selfballoon.c), fixed.
    #[test]
    fn linux_mode_rearms_the_inertia_counter_after_a_shrink() {
        let counts = [1000, 1000, 1000, 1000, 950, 903];
        let run = |mode| {
            let mut c = Controller::new(Tunables {
                frontswap_selfshrinking: true,
                mode,
                ..Tunables::new(false)
            });
            counts
                .iter()
                .map(|&f| {
                    c.tick(TickInput {
                        frontswap_pages: f,
                        ..input()
                    })
                    .frontswap_target_pages
                })
                .collect::<Vec<_>>()
        };
        // Linux: one shrink, to 950, then inertia (3) quiet ticks again.
        assert_eq!(run(Mode::Linux), [None, None, None, Some(950), None, None]);
        // The seed: the counter stays 0, so every quiet tick shrinks.
        assert_eq!(
            run(Mode::Seed2011),
            [None, None, None, Some(950), Some(903), Some(858)]
        );
        // A mode change switches the variant.
        let mut c = Controller::new(Tunables {
            frontswap_selfshrinking: true,
            mode: Mode::Seed2011,
            ..Tunables::new(false)
        });
        c.apply("mode", "linux").unwrap();
        let got: Vec<_> = counts
            .iter()
            .map(|&f| {
                c.tick(TickInput {
                    frontswap_pages: f,
                    ..input()
                })
                .frontswap_target_pages
            })
            .collect();
        assert_eq!(got, [None, None, None, Some(950), None, None]);
    }

    #[test]
    fn the_ten_percent_reserve_is_a_boot_default_only() {
        // Booted with self-ballooning on: the first tick sets
        // PAGES2MB(126976 / 10) = 49 MiB, as xen_selfballoon_init() does.
        let mut on = Controller::new(Tunables::new(true));
        let d = on.tick(input()).decision.unwrap();
        assert_eq!(on.tunables().reserved_mb, 49);
        assert_eq!(d.target_pages, 119_393);
        // Booted with both off, enabled later: Linux never set a reserve,
        // so the goal has none: 117,825 pages as in the C.
        let mut off = Controller::new(Tunables::new(false));
        off.tick(input());
        off.apply("selfballooning", "1").unwrap();
        let d = off.tick(input()).decision.unwrap();
        assert_eq!(off.tunables().reserved_mb, 0);
        assert_eq!(d.target_pages, 117_825);
        // A value dom0 wrote before the first tick is kept.
        let mut set = Controller::new(Tunables::new(true));
        set.apply("selfballoon_reserved_mb", "7").unwrap();
        set.tick(input());
        assert_eq!(set.tunables().reserved_mb, 7);
    }

    #[test]
    fn mib_tunables_are_bounded_by_the_guest() {
        let mut t = Tunables::new(true);
        for key in ["selfballoon_min_usable_mb", "selfballoon_reserved_mb"] {
            // Unknown size: what Linux's MB2PAGES on unsigned int survives.
            assert!(t.apply(key, "16777215").is_ok());
            assert_eq!(
                t.apply(key, "16777216").unwrap_err().reason,
                RejectReason::OutOfRange
            );
        }
        // A 512 MiB guest.
        t.set_guest_max_pages(131_072);
        for key in ["selfballoon_min_usable_mb", "selfballoon_reserved_mb"] {
            assert!(t.apply(key, "512").is_ok());
            let before = t;
            assert_eq!(
                t.apply(key, "513").unwrap_err().reason,
                RejectReason::OutOfRange
            );
            assert_eq!(t, before, "a rejected value changes nothing");
        }
        // Such a value used to stop the guest from ballooning down at all;
        // the largest accepted one still leaves a decision in range.
        let mut c = Controller::new(t);
        let d = c.tick(input()).decision.unwrap();
        assert!(d.target_pages <= 131_072);
    }
}
