//! Frontswap self-shrinking: `frontswap_selfshrink()` of the 2011 seed as
//! a small state machine. The swap tier calls [`FrontswapShrink::tick`]
//! once per controller tick with its current page count and shrinks itself
//! to the returned target when there is one.
//!
//! The seed's logic, per tick, with `cur` = pages in frontswap now:
//!
//! 1. if `cur == 0` or `cur` grew since the last tick: reset the inertia
//!    counter to `frontswap_inertia` and do nothing;
//! 2. else if the counter is nonzero, decrement it; if that leaves it
//!    nonzero, do nothing;
//! 3. else shrink to 0 when `cur <= frontswap_hysteresis`, otherwise to
//!    `cur - cur / frontswap_hysteresis`.
//!
//! The first tick always resets the counter (the count is 0 or grew from
//! 0). In the seed the counter stays 0 after a shrink, so every following quiet tick shrinks again; Linux 4.x–5.2
//! re-arms it after each shrink (one shrink per `inertia` quiet ticks).
//! [`ShrinkVariant`] picks which; the default is the seed's.

use core::num::NonZeroU32;

/// Whether the inertia counter is re-armed after a shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShrinkVariant {
    /// 2011 seed: shrink on every quiet tick once inertia has run out.
    #[default]
    Seed2011,
    /// Linux 4.x–5.2: after a shrink, wait `inertia` quiet ticks again.
    Linux,
}

impl ShrinkVariant {
    /// The variant of a controller mode: the seed's for `2011`, Linux's
    /// for `linux` and for our `adaptive` (which starts from Linux's final
    /// form).
    pub const fn of(mode: crate::selfballoon::mode::Mode) -> Self {
        match mode {
            crate::selfballoon::mode::Mode::Seed2011 => ShrinkVariant::Seed2011,
            _ => ShrinkVariant::Linux,
        }
    }
}

/// The self-shrink state (the C function's statics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrontswapShrink {
    /// Which variant.
    pub variant: ShrinkVariant,
    cur_pages: u64,
    inertia_counter: u64,
}

impl FrontswapShrink {
    /// Fresh state (counter 0, no pages seen), as at boot.
    pub const fn new(variant: ShrinkVariant) -> Self {
        FrontswapShrink {
            variant,
            cur_pages: 0,
            inertia_counter: 0,
        }
    }

    /// The remaining quiet ticks before shrinking.
    pub const fn inertia_counter(&self) -> u64 {
        self.inertia_counter
    }

    /// What `store_frontswap_inertia` does besides setting the tunable:
    /// the counter restarts at the new inertia.
    pub fn set_inertia(&mut self, inertia: NonZeroU32) {
        self.inertia_counter = u64::from(inertia.get());
    }

    /// One tick. Returns the page count frontswap should shrink to, or
    /// `None` for no shrink.
    pub fn tick(
        &mut self,
        frontswap_pages: u64,
        hysteresis: NonZeroU32,
        inertia: NonZeroU32,
    ) -> Option<u64> {
        let last = self.cur_pages;
        self.cur_pages = frontswap_pages;
        let cur = frontswap_pages;
        if cur == 0 || cur > last {
            self.inertia_counter = u64::from(inertia.get());
            return None;
        }
        if self.inertia_counter != 0 {
            self.inertia_counter -= 1;
            if self.inertia_counter != 0 {
                return None;
            }
        }
        let hys = u64::from(hysteresis.get());
        let tgt = if cur <= hys { 0 } else { cur - cur / hys };
        if self.variant == ShrinkVariant::Linux {
            self.inertia_counter = u64::from(inertia.get());
        }
        Some(tgt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn nz(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    /// Feeds a sequence of frontswap counts, returning the decisions.
    fn run(s: &mut FrontswapShrink, counts: &[u64]) -> Vec<Option<u64>> {
        counts.iter().map(|&c| s.tick(c, nz(20), nz(3))).collect()
    }

    #[test]
    fn seed_sequence_by_hand() {
        let mut s = FrontswapShrink::new(ShrinkVariant::Seed2011);
        // t1: 1000 > last 0 -> counter = 3, none.
        // t2: 1000 == last -> counter 3 -> 2, none.
        // t3: counter 2 -> 1, none.
        // t4: counter 1 -> 0 -> shrink: 1000 - 1000/20 = 950.
        // t5: 950 (it shrank): counter 0 stays 0 -> shrink 950 - 47 = 903.
        // t6: 903 -> 903 - 45 = 858.
        // t7: 2000 grew -> counter 3, none.
        // t8: 15 (<= 20, not grown): counter 3 -> 2, none.
        // t9: 15 -> counter 1; t10: 15 -> 0 -> shrink to 0.
        // t11: 0 -> reset, none.
        let got = run(
            &mut s,
            &[1000, 1000, 1000, 1000, 950, 903, 2000, 15, 15, 15, 0],
        );
        assert_eq!(
            got,
            [
                None,
                None,
                None,
                Some(950),
                Some(903),
                Some(858),
                None,
                None,
                None,
                Some(0),
                None
            ]
        );
        assert_eq!(s.inertia_counter(), 3);
    }

    #[test]
    fn storing_inertia_restarts_the_counter() {
        let mut s = FrontswapShrink::new(ShrinkVariant::Seed2011);
        assert_eq!(s.tick(100, nz(20), nz(3)), None); // grew from 0
        s.set_inertia(nz(1)); // store_frontswap_inertia("1")
                              // counter 1 -> 0 -> shrink: 100 - 5 = 95
        assert_eq!(s.tick(100, nz(20), nz(1)), Some(95));
    }

    #[test]
    fn linux_variant_rearms_after_shrink() {
        let mut s = FrontswapShrink::new(ShrinkVariant::Linux);
        let got = run(&mut s, &[1000, 1000, 1000, 1000, 950, 950, 950]);
        // shrink at t4 re-arms 3: t5 -> 2, t6 -> 1, t7 -> 0 shrink 950-47.
        assert_eq!(got, [None, None, None, Some(950), None, None, Some(903)]);
    }

    #[test]
    fn hysteresis_one_shrinks_to_zero() {
        let mut s = FrontswapShrink::new(ShrinkVariant::Seed2011);
        assert_eq!(s.tick(7, nz(1), nz(1)), None);
        // counter 1 -> 0; 7 > 1 -> 7 - 7/1 = 0
        assert_eq!(s.tick(7, nz(1), nz(1)), Some(0));
        assert_eq!(s.tick(u64::MAX, nz(1), nz(1)), None);
        assert_eq!(s.tick(u64::MAX, nz(1), nz(1)), Some(0));
    }
}
