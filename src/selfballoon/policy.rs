//! The self-ballooning arithmetic: pure functions from a [`TickInput`] and
//! the [`Tunables`] to a [`Decision`]. No kernel state is touched here, so
//! the same code runs in the guest and in a host-side policy simulator.
//!
//! Two policies are implemented, selected by [`Mode`]:
//!
//! - [`Mode::Seed2011`]: `selfballoon_process()` of the 2011 patch
//!   (`../shared/seed/xen-selfballoon-2011.patch`, merged in Linux 3.1):
//!   the goal and target are in `balloon_stats.current_pages` units,
//!   `goal = committed + current - totalram (+ frontswap)`, one step of
//!   `gap / downhysteresis` down or `gap / uphysteresis` up, no floor.
//! - [`Mode::Linux`]: the last form before the driver was removed with tmem
//!   in Linux 5.3 (identical in 4.x–5.2, `drivers/xen/xen-selfballoon.c`):
//!   the step is computed in `totalram_pages` units with
//!   `goal = committed + totalreserve + MB2PAGES(reserved_mb) (+ frontswap)`,
//!   the result is raised to a floor (`min_usable_mb`, or a piecewise
//!   function of `max_pfn - totalreserve` when that is 0), and handed to the
//!   balloon as `tgt + current_pages - totalram_pages`.
//!
//! - [`Mode::Adaptive`]: ours, stateful, in [`super::adaptive`]; the
//!   controller keeps its state. Called here without state, it decides as
//!   on its first tick.
//!
//! All of them then cap the target at the toolstack's `memory/target`, which the
//! guest must never exceed (`xl mem-set` also lowers max_pages to it).
//!
//! C semantics: everything is `unsigned long` with truncating division,
//! which [`u64`] division reproduces. Where the C code could wrap we
//! saturate instead; each such place says what C would have done.

use core::num::NonZeroU32;

use super::adaptive::Adaptive;
use super::mode::Mode;
use super::tunables::Tunables;

/// Pages per MiB (`MB2PAGES(1)` for 4 KiB pages: `1 << (20 - PAGE_SHIFT)`).
pub const PAGES_PER_MB: u64 = 256;

/// `MB2PAGES(mb)`: MiB to pages. Cannot overflow for a `u32` input.
pub const fn mb_to_pages(mb: u32) -> u64 {
    (mb as u64) << 8
}

/// `PAGES2MB(pages)`: pages to MiB, truncating.
pub const fn pages_to_mb(pages: u64) -> u64 {
    pages >> 8
}

/// What the kernel measured this tick. All counts are in 4 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TickInput {
    /// Committed memory, the analogue of Linux's `vm_committed_as`
    /// (the kernel adds up what its workload reserved, the heap and the
    /// page tables).
    pub committed_pages: u64,
    /// Pages the domain holds now (`balloon_stats.current_pages`).
    pub current_pages: u64,
    /// Usable RAM the kernel manages (`totalram_pages`): `current_pages`
    /// minus what the kernel image and boot structures permanently hold.
    pub totalram_pages: u64,
    /// Pages the kernel keeps in reserve and never hands out
    /// (`totalreserve_pages`).
    pub totalreserve_pages: u64,
    /// Pages in the frontswap tier (`frontswap_curr_pages()`), 0 without one.
    pub frontswap_pages: u64,
    /// The toolstack's `memory/target` in pages, an upper bound on the
    /// target; `None` while unknown.
    pub toolstack_target_pages: Option<u64>,
    /// `totalram_pages` at boot, for the default `reserved_mb` (10%).
    pub boot_totalram_pages: u64,
    /// `max_pfn`: one past the highest guest frame at boot, including what
    /// is ballooned out (for us: static-max in pages). Used by the Linux
    /// piecewise floor.
    pub max_pfn: u64,
    /// Pages read back from the swap tier since the last tick (a sign the
    /// guest holds too little of its working set); 0 without a tier. Used
    /// by [`Mode::Adaptive`].
    pub pagein_pages: u64,
    /// Pages the guest's allocations asked for since the last tick and
    /// could not get as free frames at once (they waited for the balloon
    /// or for reclaim into the tier). Used by [`Mode::Adaptive`].
    pub alloc_stall_pages: u64,
}

/// What a policy decided. `goal_pages`, `target_pages` and `floor_pages`
/// are all in `current_pages` units (pages the domain holds, what the
/// balloon driver and `xl list` count), whatever units the policy worked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The policy that decided.
    pub mode: Mode,
    /// Where the controller is heading.
    pub goal_pages: u64,
    /// This tick's target before the floor and the toolstack cap.
    pub unclamped_target_pages: u64,
    /// The target to hand to the balloon driver.
    pub target_pages: u64,
    /// The floor, when the policy has one.
    pub floor_pages: Option<u64>,
    /// The floor raised the target.
    pub clamped_by_floor: bool,
    /// The toolstack target lowered the target (wins over the floor).
    pub clamped_by_toolstack: bool,
    /// The goal arithmetic would have gone below 0 (wrapped in C) and was
    /// saturated at 0 instead. See [`seed2011`].
    pub goal_saturated: bool,
}

/// A self-ballooning policy: input and tunables in, decision out.
pub trait Policy {
    /// Computes this tick's decision.
    fn decide(&self, tunables: &Tunables, input: &TickInput) -> Decision;
}

impl Policy for Mode {
    fn decide(&self, tunables: &Tunables, input: &TickInput) -> Decision {
        let mut d = match self {
            Mode::Seed2011 => seed2011(tunables, input),
            Mode::Linux => linux(tunables, input),
            Mode::Adaptive => {
                let mut a = Adaptive::new();
                a.observe(tunables, input);
                a.decide(tunables, input)
            }
        };
        apply_toolstack_cap(&mut d, input.toolstack_target_pages);
        d
    }
}

/// One hysteresis step from `cur` toward `goal`, exactly as both C versions:
/// down by `(cur - goal) / downhys`, up by `(goal - cur) / uphys`,
/// truncating. Never overshoots the goal and never overflows.
pub fn hysteresis_step(cur: u64, goal: u64, downhys: NonZeroU32, uphys: NonZeroU32) -> u64 {
    if cur > goal {
        cur - (cur - goal) / u64::from(downhys.get())
    } else if cur < goal {
        cur + (goal - cur) / u64::from(uphys.get())
    } else {
        cur
    }
}

/// The 2011 seed's `selfballoon_process()`:
///
/// ```text
/// cur  = current_pages
/// goal = committed + current_pages - totalram_pages (+ frontswap if selfshrinking)
/// tgt  = hysteresis_step(cur, goal)
/// ```
///
/// C computes `goal` in wrapping `unsigned long`. Normally
/// `current_pages >= totalram_pages` so it cannot wrap; if the inputs ever
/// have `committed + current (+ frontswap) < totalram`, C's `goal` would be
/// ~2^64, `tgt` would become that huge value (with `uphysteresis` 1) and
/// only the balloon driver's hard limit (max_pages / toolstack target)
/// would stop it growing. We instead saturate `goal` at 0 (so the target
/// steps down by `cur / downhysteresis`), set
/// [`Decision::goal_saturated`], and let the balloon driver's safety floor
/// stop it. The frontswap term is added before the subtraction, so
/// whenever C's final value does not wrap, ours is identical to it.
///
/// The sums saturate at `u64::MAX` where C would wrap; no real page count
/// gets there.
pub fn seed2011(t: &Tunables, i: &TickInput) -> Decision {
    let frontswap = if t.frontswap_selfshrinking {
        i.frontswap_pages
    } else {
        0
    };
    let plus = i
        .committed_pages
        .saturating_add(i.current_pages)
        .saturating_add(frontswap);
    let (goal, goal_saturated) = match plus.checked_sub(i.totalram_pages) {
        Some(g) => (g, false),
        None => (0, true),
    };
    let cur = i.current_pages;
    let tgt = hysteresis_step(cur, goal, t.downhysteresis, t.uphysteresis);
    Decision {
        mode: Mode::Seed2011,
        goal_pages: goal,
        unclamped_target_pages: tgt,
        target_pages: tgt,
        floor_pages: None,
        clamped_by_floor: false,
        clamped_by_toolstack: false,
        goal_saturated,
    }
}

/// The Linux piecewise floor (4.x–5.2), in `totalram_pages` units, when
/// `selfballoon_min_usable_mb` is 0. With `useful = max_pfn - totalreserve`:
///
/// | useful       | floor                                           |
/// |--------------|-------------------------------------------------|
/// | < 16 MiB     | `max_pfn` ("not worth ballooning")              |
/// | < 64 MiB     | `totalreserve + 16 MiB + (useful - 16 MiB) / 2` |
/// | < 512 MiB    | `totalreserve + 40 MiB + (useful - 40 MiB) / 8` |
/// | otherwise    | `totalreserve + 99 MiB + (useful - 99 MiB) / 32`|
///
/// With a nonzero `min_usable_mb` the floor is
/// `totalreserve + MB2PAGES(min_usable_mb)`. C's `max_pfn - totalreserve`
/// would wrap if `totalreserve > max_pfn`; we saturate to 0, which lands
/// in the "not worth ballooning" row.
pub fn linux_floor_pages(min_usable_mb: u32, max_pfn: u64, totalreserve_pages: u64) -> u64 {
    if min_usable_mb != 0 {
        return totalreserve_pages.saturating_add(mb_to_pages(min_usable_mb));
    }
    let useful = max_pfn.saturating_sub(totalreserve_pages);
    let mb = |n: u32| mb_to_pages(n);
    // In every row below, `useful >= the subtracted amount`, so the
    // subtractions cannot underflow; the additions are bounded by max_pfn.
    if useful < mb(16) {
        max_pfn
    } else if useful < mb(64) {
        totalreserve_pages + mb(16) + ((useful - mb(16)) >> 1)
    } else if useful < mb(512) {
        totalreserve_pages + mb(40) + ((useful - mb(40)) >> 3)
    } else {
        totalreserve_pages + mb(99) + ((useful - mb(99)) >> 5)
    }
}

/// Converts a count in `totalram_pages` units to `current_pages` units:
/// `x + current_pages - totalram_pages`, as Linux's
/// `balloon_set_new_target(tgt_pages + balloon_stats.current_pages -
/// totalram_pages)`. Saturates at 0 where C would wrap (only possible if
/// `current_pages < totalram_pages`, which a consistent kernel never reports).
pub fn ram_to_domain_pages(x: u64, i: &TickInput) -> u64 {
    x.saturating_add(i.current_pages)
        .saturating_sub(i.totalram_pages)
}

/// The final Linux `selfballoon_process()`:
///
/// ```text
/// cur   = totalram_pages
/// goal  = committed + totalreserve + MB2PAGES(reserved_mb) (+ frontswap if selfshrinking)
/// tgt   = max(hysteresis_step(cur, goal), floor)
/// balloon target = tgt + current_pages - totalram_pages
/// ```
///
/// `reserved_mb` is the tunable as the controller holds it (Linux's
/// 10% boot default is set by `Controller::tick`); the floor is
/// [`linux_floor_pages`]. The decision's goal, floor and target are
/// converted to `current_pages` units with [`ram_to_domain_pages`].
pub fn linux(t: &Tunables, i: &TickInput) -> Decision {
    // In u64: Linux's MB2PAGES on `unsigned int` wraps at 2^24 MiB; the
    // tunable is bounded by the guest's size instead (Tunables::apply).
    let reserved_pages = u64::from(t.reserved_mb).saturating_mul(PAGES_PER_MB);
    let frontswap = if t.frontswap_selfshrinking {
        i.frontswap_pages
    } else {
        0
    };
    let goal = i
        .committed_pages
        .saturating_add(i.totalreserve_pages)
        .saturating_add(reserved_pages)
        .saturating_add(frontswap);
    let cur = i.totalram_pages;
    let stepped = hysteresis_step(cur, goal, t.downhysteresis, t.uphysteresis);
    let floor = linux_floor_pages(t.min_usable_mb, i.max_pfn, i.totalreserve_pages);
    let tgt = stepped.max(floor);
    Decision {
        mode: Mode::Linux,
        goal_pages: ram_to_domain_pages(goal, i),
        unclamped_target_pages: ram_to_domain_pages(stepped, i),
        target_pages: ram_to_domain_pages(tgt, i),
        floor_pages: Some(ram_to_domain_pages(floor, i)),
        clamped_by_floor: stepped < floor,
        clamped_by_toolstack: false,
        goal_saturated: false,
    }
}

/// Caps the target at the toolstack's target. The toolstack wins over the
/// floor: the domain cannot hold more than max_pages anyway.
pub(crate) fn apply_toolstack_cap(d: &mut Decision, toolstack_target_pages: Option<u64>) {
    if let Some(cap) = toolstack_target_pages {
        if d.target_pages > cap {
            d.target_pages = cap;
            d.clamped_by_toolstack = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MB: u64 = PAGES_PER_MB;

    fn nz(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    fn tun(mode: Mode) -> Tunables {
        Tunables {
            mode,
            ..Tunables::new(true)
        }
    }

    #[test]
    fn mode_names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert_eq!(Mode::default(), Mode::Linux);
        assert_eq!(Mode::from_name("Linux"), None);
        assert_eq!(Mode::from_name(" 2011"), None);
    }

    #[test]
    fn step_truncates_like_c() {
        // (1000 - 100) / 8 = 112 (112.5 truncated) -> 1000 - 112 = 888
        assert_eq!(hysteresis_step(1000, 100, nz(8), nz(1)), 888);
        // gap 7 < downhys 8 -> 7 / 8 = 0 -> stuck 7 above the goal
        assert_eq!(hysteresis_step(107, 100, nz(8), nz(1)), 107);
        // up with uphys 1 reaches the goal at once
        assert_eq!(hysteresis_step(100, 1000, nz(8), nz(1)), 1000);
        // up with uphys 3: 100 + 900 / 3 = 400
        assert_eq!(hysteresis_step(100, 1000, nz(8), nz(3)), 400);
        assert_eq!(hysteresis_step(5, 5, nz(8), nz(1)), 5);
        assert_eq!(hysteresis_step(u64::MAX, 0, nz(1), nz(1)), 0);
        assert_eq!(hysteresis_step(0, u64::MAX, nz(1), nz(1)), u64::MAX);
    }

    /// Replays (committed, current, totalram) through the 2011 arithmetic.
    /// A 512 MiB guest: current 131072 pages, totalram 126976 (4096 pages
    /// held by the kernel image etc.), committed 20000.
    #[test]
    fn golden_seed2011_descent_and_spike() {
        let t = tun(Mode::Seed2011);
        let mut i = TickInput {
            committed_pages: 20_000,
            current_pages: 131_072,
            totalram_pages: 126_976,
            ..TickInput::default()
        };
        // goal = 20000 + 131072 - 126976 = 24096
        // tgt  = 131072 - (131072 - 24096) / 8 = 131072 - 106976/8
        //      = 131072 - 13372 = 117700
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (24_096, 117_700));
        assert_eq!(d.floor_pages, None);
        assert!(!d.goal_saturated && !d.clamped_by_toolstack);

        // The balloon reached 117700: current and totalram both fell by
        // 13372 (totalram 126976 - 13372 = 113604).
        i.current_pages = 117_700;
        i.totalram_pages = 113_604;
        // goal = 20000 + 117700 - 113604 = 24096 (unchanged, as it should)
        // tgt  = 117700 - (117700 - 24096) / 8 = 117700 - 93604/8
        //      = 117700 - 11700 (11700.5 truncated) = 106000
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (24_096, 106_000));

        // Demand spike: committed jumps to 80000 at current 106000,
        // totalram 101904 (= 113604 - 11700).
        i.committed_pages = 80_000;
        i.current_pages = 106_000;
        i.totalram_pages = 101_904;
        // goal = 80000 + 106000 - 101904 = 84096 < cur -> still going down:
        // tgt = 106000 - (106000 - 84096)/8 = 106000 - 21904/8 = 106000 - 2738
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (84_096, 103_262));

        // Bigger spike: committed 120000 -> goal 124096 > 106000;
        // uphys 1: tgt = 106000 + 18096/1 = 124096.
        i.committed_pages = 120_000;
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (124_096, 124_096));

        // Same with uphys 4: tgt = 106000 + 18096/4 = 110524.
        let t4 = Tunables {
            uphysteresis: nz(4),
            ..t
        };
        assert_eq!(t4.mode.decide(&t4, &i).target_pages, 110_524);

        // ... and the toolstack target (xl mem-set 400 MiB = 102400 pages)
        // caps it.
        i.toolstack_target_pages = Some(102_400);
        let d = t.mode.decide(&t, &i);
        assert_eq!(d.target_pages, 102_400);
        assert!(d.clamped_by_toolstack);
    }

    #[test]
    fn golden_seed2011_frontswap_and_downhys2() {
        let mut t = tun(Mode::Seed2011);
        t.frontswap_selfshrinking = true;
        t.downhysteresis = nz(2);
        let i = TickInput {
            committed_pages: 1_000,
            current_pages: 10_000,
            totalram_pages: 9_000,
            frontswap_pages: 500,
            ..TickInput::default()
        };
        // goal = 1000 + 10000 - 9000 + 500 = 2500
        // tgt  = 10000 - (10000 - 2500)/2 = 10000 - 3750 = 6250
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (2_500, 6_250));
        // Self-shrinking off: frontswap pages are not counted.
        t.frontswap_selfshrinking = false;
        // goal = 2000, tgt = 10000 - 8000/2 = 6000
        assert_eq!(t.mode.decide(&t, &i).target_pages, 6_000);
    }

    /// Where C would wrap: committed + current < totalram.
    #[test]
    fn seed2011_goal_underflow_saturates_at_zero() {
        let t = tun(Mode::Seed2011);
        let i = TickInput {
            committed_pages: 10,
            current_pages: 1_000,
            totalram_pages: 2_000,
            ..TickInput::default()
        };
        // C: goal = 10 + 1000 - 2000 = 2^64 - 990, tgt = that (uphys 1),
        // i.e. "grow to everything". Ours: goal 0, tgt = 1000 - 1000/8 = 875.
        let d = t.mode.decide(&t, &i);
        assert!(d.goal_saturated);
        assert_eq!((d.goal_pages, d.target_pages), (0, 875));

        // A frontswap term that brings the sum back above totalram gives
        // C's (non-wrapped) result: 10 + 1000 + 1500 - 2000 = 510.
        let t = Tunables {
            frontswap_selfshrinking: true,
            ..t
        };
        let i = TickInput {
            frontswap_pages: 1_500,
            ..i
        };
        let d = t.mode.decide(&t, &i);
        assert!(!d.goal_saturated);
        assert_eq!(d.goal_pages, 510);
        // 1000 - 490/8 = 1000 - 61 = 939
        assert_eq!(d.target_pages, 939);
    }

    #[test]
    fn linux_piecewise_floor_rows() {
        // useful < 16 MiB: floor = max_pfn.
        assert_eq!(linux_floor_pages(0, 15 * MB, 0), 15 * MB);
        // useful = 32 MiB (8192 pages), reserve 100:
        // max_pfn = 8292; floor = 100 + 4096 + (8192 - 4096)/2 = 6244
        assert_eq!(linux_floor_pages(0, 8_292, 100), 6_244);
        // useful = 256 MiB (65536), reserve 0:
        // floor = 10240 + (65536 - 10240)/8 = 10240 + 6912 = 17152 (67 MiB)
        assert_eq!(linux_floor_pages(0, 65_536, 0), 17_152);
        // useful = 512 MiB (131072), reserve 1000, max_pfn 132072:
        // floor = 1000 + 25344 + (131072 - 25344)/32 = 1000 + 25344 + 3304
        assert_eq!(linux_floor_pages(0, 132_072, 1_000), 29_648);
        // Boundaries: exactly 16 MiB -> second row: 0 + 4096 + 0.
        assert_eq!(linux_floor_pages(0, 16 * MB, 0), 16 * MB);
        // exactly 64 MiB -> third row: 10240 + (16384 - 10240)/8 = 11008.
        assert_eq!(linux_floor_pages(0, 64 * MB, 0), 11_008);
        // min_usable_mb = 100, reserve 50 -> 50 + 25600.
        assert_eq!(linux_floor_pages(100, 1 << 40, 50), 25_650);
        // reserve > max_pfn (C would wrap useful): saturate -> max_pfn.
        assert_eq!(linux_floor_pages(0, 10, 20), 10);
    }

    /// A 512 MiB guest (max_pfn 131072, current 131072, totalram 126976,
    /// totalreserve 1000, committed 20000) in linux mode with defaults.
    #[test]
    fn golden_linux_descent_to_floor() {
        // The reserve xen_selfballoon_init() sets for this guest at boot:
        // PAGES2MB(126976 / 10) = 49 MiB (Controller::tick does it).
        let t = Tunables {
            reserved_mb: 49,
            ..tun(Mode::Linux)
        };
        let mut i = TickInput {
            committed_pages: 20_000,
            current_pages: 131_072,
            totalram_pages: 126_976,
            totalreserve_pages: 1_000,
            boot_totalram_pages: 126_976,
            max_pfn: 131_072,
            ..TickInput::default()
        };
        // reserved_mb = PAGES2MB(126976/10) = PAGES2MB(12697) = 49 -> 12544 p
        // goal (ram units) = 20000 + 1000 + 12544 = 33544
        // tgt = 126976 - (126976 - 33544)/8 = 126976 - 11679 = 115297
        // useful = 131072 - 1000 = 130072 (< 512 MiB = 131072):
        // floor = 1000 + 10240 + (130072 - 10240)/8 = 11240 + 14979 = 26219
        // balloon units (+131072 - 126976 = +4096):
        //   goal 37640, target 119393, floor 30315
        let d = t.mode.decide(&t, &i);
        assert_eq!(d.goal_pages, 37_640);
        assert_eq!(d.target_pages, 119_393);
        assert_eq!(d.floor_pages, Some(30_315));
        assert!(!d.clamped_by_floor);

        // Committed drops to 0 with totalram already near the floor:
        // totalram 30000, current 34096.
        i.committed_pages = 0;
        i.totalram_pages = 30_000;
        i.current_pages = 34_096;
        // goal = 0 + 1000 + 12544 = 13544; tgt = 30000 - 16456/8
        //      = 30000 - 2057 = 27943 >= floor 26219 -> 27943
        let d = t.mode.decide(&t, &i);
        assert_eq!(d.target_pages, 27_943 + 4_096);
        assert!(!d.clamped_by_floor);
        // Next: totalram 27000 -> tgt = 27000 - 13456/8 = 27000 - 1682
        //      = 25318 < 26219 -> floor
        i.totalram_pages = 27_000;
        i.current_pages = 31_096;
        let d = t.mode.decide(&t, &i);
        assert!(d.clamped_by_floor);
        assert_eq!(d.unclamped_target_pages, 25_318 + 4_096);
        assert_eq!(d.target_pages, 26_219 + 4_096);

        // min_usable_mb 200 -> floor = 1000 + 51200 = 52200 (ram units).
        let t2 = Tunables {
            min_usable_mb: 200,
            ..t
        };
        let d = t2.mode.decide(&t2, &i);
        assert_eq!(d.target_pages, 52_200 + 4_096);
        assert!(d.clamped_by_floor);

        // The toolstack (40000 pages) wins over that floor.
        i.toolstack_target_pages = Some(40_000);
        let d = t2.mode.decide(&t2, &i);
        assert_eq!(d.target_pages, 40_000);
        assert!(d.clamped_by_floor && d.clamped_by_toolstack);
    }

    #[test]
    fn golden_linux_spike_up() {
        let t = Tunables {
            reserved_mb: 10,
            ..tun(Mode::Linux)
        };
        let i = TickInput {
            committed_pages: 60_000,
            current_pages: 34_096,
            totalram_pages: 30_000,
            totalreserve_pages: 1_000,
            boot_totalram_pages: 126_976,
            max_pfn: 131_072,
            ..TickInput::default()
        };
        // goal = 60000 + 1000 + 2560 = 63560 > 30000: uphys 1 -> 63560
        // balloon units: 63560 + 4096 = 67656
        let d = t.mode.decide(&t, &i);
        assert_eq!((d.goal_pages, d.target_pages), (67_656, 67_656));
    }

    fn arb_input() -> impl Strategy<Value = TickInput> {
        (
            0u64..1 << 22,
            1u64..1 << 22,
            0u64..1 << 22,
            0u64..1 << 14,
            0u64..1 << 16,
            proptest::option::of(0u64..1 << 22),
            0u64..1 << 22,
            (0u64..1 << 22, 0u64..4, 0u64..4),
        )
            .prop_map(
                |(c, cur, ram_less, res, fs, ts, boot, (maxpfn, pin, stall))| TickInput {
                    committed_pages: c,
                    current_pages: cur,
                    totalram_pages: cur.saturating_sub(ram_less % (cur + 1)),
                    totalreserve_pages: res,
                    frontswap_pages: fs,
                    toolstack_target_pages: ts,
                    boot_totalram_pages: boot,
                    max_pfn: maxpfn,
                    pagein_pages: pin,
                    alloc_stall_pages: stall,
                },
            )
    }

    fn arb_tunables() -> impl Strategy<Value = Tunables> {
        (
            1u32..64,
            1u32..16,
            0u32..2048,
            0u32..2048,
            any::<bool>(),
            prop_oneof![
                Just(Mode::Seed2011),
                Just(Mode::Linux),
                Just(Mode::Adaptive)
            ],
        )
            .prop_map(|(d, u, mu, r, fs, mode)| Tunables {
                downhysteresis: nz(d),
                uphysteresis: nz(u),
                min_usable_mb: mu,
                reserved_mb: r,
                frontswap_selfshrinking: fs,
                mode,
                ..Tunables::new(true)
            })
    }

    proptest! {
        #[test]
        fn target_respects_floor_and_toolstack(t in arb_tunables(), i in arb_input()) {
            let d = t.mode.decide(&t, &i);
            if let Some(cap) = i.toolstack_target_pages {
                prop_assert!(d.target_pages <= cap);
            }
            if let Some(floor) = d.floor_pages {
                let capped_below_floor = i.toolstack_target_pages.is_some_and(|c| c < floor);
                if !capped_below_floor {
                    prop_assert!(d.target_pages >= floor);
                } else {
                    prop_assert!(d.clamped_by_toolstack);
                }
            } else {
                prop_assert_ne!(t.mode, Mode::Linux);
            }
        }

        /// The unclamped target never overshoots the goal and moves toward it.
        #[test]
        fn step_moves_toward_goal(cur in any::<u64>(), goal in any::<u64>(),
                                  d in 1u32.., u in 1u32..) {
            let tgt = hysteresis_step(cur, goal, nz(d), nz(u));
            prop_assert!(tgt <= cur.max(goal) && tgt >= cur.min(goal));
        }

        /// Repeated 2011 ticks at a constant goal, with the balloon reaching
        /// each target (current and totalram move together, so the goal is
        /// constant): from above, the gap shrinks until it is below
        /// downhysteresis (gap / downhys == 0), i.e. it settles within
        /// downhys - 1 pages above the goal; from below it settles within
        /// uphys - 1 pages under it (exactly on the goal with uphys 1).
        /// Each tick shrinks a gap >= hys by at least 1 and at least
        /// gap/hys, so at most `hys * ln(gap)+hys` ticks are needed.
        #[test]
        fn seed2011_converges(committed in 0u64..1 << 20, cur0 in 4096u64..1 << 22,
                              kernel in 0u64..4096, d in 1u32..32, u in 1u32..8) {
            let t = Tunables { downhysteresis: nz(d), uphysteresis: nz(u), ..tun(Mode::Seed2011) };
            let mut i = TickInput {
                committed_pages: committed,
                current_pages: cur0,
                totalram_pages: cur0 - kernel,
                ..TickInput::default()
            };
            let goal = committed + kernel;
            let mut ticks = 0;
            loop {
                let dcs = t.mode.decide(&t, &i);
                prop_assert_eq!(dcs.goal_pages, goal);
                if dcs.target_pages == i.current_pages {
                    break;
                }
                i.totalram_pages = dcs.target_pages.saturating_sub(kernel);
                i.current_pages = dcs.target_pages;
                ticks += 1;
                prop_assert!(ticks < 2000);
            }
            let cur = i.current_pages;
            if cur >= goal {
                prop_assert!(cur - goal < u64::from(d));
            } else {
                prop_assert!(goal - cur < u64::from(u));
            }
        }

        /// Linux mode settles at max(goal, floor) within the same
        /// truncation band, in current_pages units.
        #[test]
        fn linux_converges(committed in 0u64..1 << 20, ram0 in 8192u64..1 << 22,
                           kernel in 0u64..4096, reserve in 0u64..2048,
                           d in 1u32..32, u in 1u32..8, mu in 0u32..256) {
            let t = Tunables { downhysteresis: nz(d), uphysteresis: nz(u), min_usable_mb: mu,
                               reserved_mb: 1, ..tun(Mode::Linux) };
            let mut i = TickInput {
                committed_pages: committed,
                current_pages: ram0 + kernel,
                totalram_pages: ram0,
                totalreserve_pages: reserve,
                boot_totalram_pages: ram0,
                max_pfn: ram0 + kernel,
                ..TickInput::default()
            };
            let mut ticks = 0;
            let last = loop {
                let dcs = t.mode.decide(&t, &i);
                if dcs.target_pages == i.current_pages {
                    break dcs;
                }
                i.current_pages = dcs.target_pages;
                i.totalram_pages = dcs.target_pages - kernel;
                ticks += 1;
                prop_assert!(ticks < 2000);
            };
            let settle = last.goal_pages.max(last.floor_pages.unwrap_or(0));
            let cur = i.current_pages;
            if cur >= settle {
                prop_assert!(cur - settle < u64::from(d));
            } else {
                prop_assert!(settle - cur < u64::from(u));
            }
        }
    }
}
