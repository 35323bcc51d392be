//! The model of a guest and its host that the policies are replayed
//! against. Everything is in 4 KiB pages and seconds.
//!
//! Per VM and tick (`tick_s`, the controller's `selfballoon_interval`):
//!
//! - **Demand.** The trace's `mem_usage_kb` is the hypervisor's view of
//!   *active* memory, which understates what the guest has committed. The
//!   guest's committed memory is `usage * committed_pct / 100 +
//!   committed_extra_pages` (defaults 100% and 0: the trace as it is), and
//!   the frames it needs are that plus `kernel_pages` (the kernel image
//!   and boot structures: `current_pages - totalram_pages`).
//! - **Lag.** The controller sees the committed memory of `lag_ticks`
//!   ticks ago (default 1): a sample that rises at a tick is met by the
//!   old target for that tick.
//! - **Balloon.** The frames held move toward the target at
//!   `balloon_pages_per_s` (default 7 GiB/s, from the nested rig: a
//!   512-extent batch of 2 MiB extents, 1 GiB, takes ~144 ms guest side),
//!   never below the driver's safety floor `floor_pages` nor above the
//!   toolstack target (`toolstack_pct` of the VM's RAM), and growing only
//!   as far as the host's free memory allows (a pool shared by every VM of
//!   the run; unlimited by default).
//! - **Swap tier.** A compressed in-guest pool (the seed's frontswap tier
//!   where Xen has no tmem): pages that do not fit the frames are
//!   compressed `ratio` : 1 into frames of the guest itself, up to
//!   `swap_capacity_pct` of the VM's RAM (uncompressed pages). To fit a
//!   shortfall `s` it must hold `s * r / (r - 1)` pages. When that is more
//!   than its capacity the guest is out of memory: one **OOM event** per
//!   episode (the trace's demand does not go away after a kill).
//! - **Working set.** `hot_pct` of the demand is hot, touched once per
//!   `ws_period_s`; the tier takes cold pages first. Hot pages in the tier
//!   fault back in as they are touched and push others out (thrashing):
//!   `hot pages in the tier * tick_s / ws_period_s` page-ins per tick,
//!   reported to the controller the next tick (`pagein_pages`), with the
//!   pages paged out to make room for new demand (`alloc_stall_pages`).
//!   Costs: `pageout_ns`/`pagein_ns` per page (compression and
//!   decompression), summed as `swap_cpu_s`.

/// Bytes per page.
pub const PAGE_BYTES: u64 = 4096;
/// Pages per MiB.
pub const PAGES_PER_MIB: u64 = 256;
/// Pages per GiB.
pub const PAGES_PER_GIB: u64 = 1 << 18;

/// The model's parameters. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    /// Seconds per controller tick.
    pub tick_s: u32,
    /// Ticks between a measurement and the decision that uses it.
    pub lag_ticks: u32,
    /// Balloon speed, pages per second, both directions.
    pub balloon_pages_per_s: u64,
    /// Frames the kernel holds that are not usable RAM.
    pub kernel_pages: u64,
    /// `totalreserve_pages` the guest reports.
    pub totalreserve_pages: u64,
    /// The balloon driver's safety floor.
    pub floor_pages: u64,
    /// Committed memory as a percentage of the trace's usage.
    pub committed_pct: u32,
    /// Committed memory added to every sample.
    pub committed_extra_pages: u64,
    /// The toolstack target as a percentage of the VM's RAM.
    pub toolstack_pct: u32,
    /// Host free memory shared by all VMs of a run; `None`: unlimited.
    pub host_free_pages: Option<u64>,
    /// Swap tier capacity, % of the VM's RAM, in uncompressed pages.
    pub swap_capacity_pct: u32,
    /// Compression ratio × 100 (300: 3 pages in one frame). At least 101.
    pub swap_ratio_x100: u32,
    /// Cost of one page-out, ns.
    pub pageout_ns: u64,
    /// Cost of one page-in, ns.
    pub pagein_ns: u64,
    /// Hot share of the demand, %.
    pub hot_pct: u32,
    /// How often each hot page is touched, s.
    pub ws_period_s: u32,
    /// Longest a trace sample is held, s.
    pub max_hold_s: u64,
    /// A demand rise of more than this % (and at least 1 MiB) is a spike.
    pub spike_rise_pct: u32,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            tick_s: 5,
            lag_ticks: 1,
            balloon_pages_per_s: 7 * PAGES_PER_GIB,
            kernel_pages: 4 * PAGES_PER_MIB,
            totalreserve_pages: 0,
            floor_pages: 8 * PAGES_PER_MIB,
            committed_pct: 100,
            committed_extra_pages: 0,
            toolstack_pct: 100,
            host_free_pages: None,
            swap_capacity_pct: 25,
            swap_ratio_x100: 300,
            pageout_ns: 4_000,
            pagein_ns: 1_500,
            hot_pct: 50,
            ws_period_s: 60,
            max_hold_s: 900,
            spike_rise_pct: 10,
        }
    }
}

/// What the tier does for one tick with `demand` pages needed and `held`
/// frames (the fewest the guest had during the tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TierState {
    /// Uncompressed pages in the tier.
    pub tier_pages: u64,
    /// The tier cannot take the shortfall: out of memory.
    pub oom: bool,
    /// Hot pages in the tier.
    pub hot_in_tier_pages: u64,
}

impl Model {
    /// KiB to pages, rounding up.
    pub fn kib_to_pages(kib: u64) -> u64 {
        kib.div_ceil(PAGE_BYTES / 1024)
    }

    /// The committed memory for a trace usage, pages.
    pub fn committed_pages(&self, usage_kib: u64) -> u64 {
        Self::kib_to_pages(usage_kib)
            .saturating_mul(u64::from(self.committed_pct))
            .checked_div(100)
            .unwrap_or(0)
            .saturating_add(self.committed_extra_pages)
    }

    /// Frames needed for that committed memory.
    pub fn needed_pages(&self, committed_pages: u64) -> u64 {
        committed_pages.saturating_add(self.kernel_pages)
    }

    /// The toolstack target for a VM with `ram_pages`.
    pub fn toolstack_pages(&self, ram_pages: u64) -> u64 {
        (u128::from(ram_pages) * u128::from(self.toolstack_pct) / 100)
            .try_into()
            .unwrap_or(u64::MAX)
    }

    /// The tier's capacity for a VM with `ram_pages`.
    pub fn tier_capacity_pages(&self, ram_pages: u64) -> u64 {
        (u128::from(ram_pages) * u128::from(self.swap_capacity_pct) / 100)
            .try_into()
            .unwrap_or(u64::MAX)
    }

    /// Balloon move per tick, pages.
    pub fn move_per_tick_pages(&self) -> u64 {
        self.balloon_pages_per_s
            .saturating_mul(u64::from(self.tick_s))
    }

    /// The tier's state for `needed` pages in `held` frames.
    pub fn tier(&self, needed: u64, held: u64, ram_pages: u64) -> TierState {
        let short = needed.saturating_sub(held);
        let hot = u128::from(needed) * u128::from(self.hot_pct.min(100)) / 100;
        let cold = u128::from(needed) - hot;
        if short == 0 {
            return TierState::default();
        }
        let r = u128::from(self.swap_ratio_x100.max(101));
        // (needed - s) + s / r <= held  <=>  s >= short * r / (r - 1)
        let want = (u128::from(short) * r).div_ceil(r - 100);
        let cap = u128::from(self.tier_capacity_pages(ram_pages));
        let (s, oom) = if want > cap || want > u128::from(needed) {
            (cap.min(u128::from(needed)), true)
        } else {
            (want, false)
        };
        let hot_in = s.saturating_sub(cold);
        TierState {
            tier_pages: u64::try_from(s).unwrap_or(u64::MAX),
            oom,
            hot_in_tier_pages: u64::try_from(hot_in).unwrap_or(u64::MAX),
        }
    }

    /// Page-ins during one tick for this many hot pages in the tier.
    pub fn pageins_per_tick(&self, hot_in_tier_pages: u64) -> f64 {
        hot_in_tier_pages as f64 * f64::from(self.tick_s) / f64::from(self.ws_period_s.max(1))
    }

    /// The working set for `needed` pages.
    pub fn working_set_pages(&self, needed: u64) -> f64 {
        needed as f64 * f64::from(self.hot_pct.min(100)) / 100.0
    }
}

/// `∫ max(0, demand - h(t)) dt` over `[0, dur]` for `h` linear from `a` to
/// `b`: the shortfall while the balloon ramps.
pub fn shortfall_linear(demand: f64, a: f64, b: f64, dur: f64) -> f64 {
    if dur <= 0.0 {
        return 0.0;
    }
    let fa = demand - a;
    let fb = demand - b;
    if fa >= 0.0 && fb >= 0.0 {
        (fa + fb) / 2.0 * dur
    } else if fa <= 0.0 && fb <= 0.0 {
        0.0
    } else {
        // One sign change: a triangle on the positive side.
        let pos = fa.max(fb);
        let t = dur * pos / (fa - fb).abs();
        pos * t / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_takes_cold_pages_first_and_overflows_to_oom() {
        let m = Model::default();
        // 1000 needed in 1000 frames: nothing in the tier.
        assert_eq!(m.tier(1000, 1000, 4000), TierState::default());
        // 100 short, ratio 3: 150 pages compressed into 50 frames.
        let t = m.tier(1000, 900, 4000);
        assert_eq!((t.tier_pages, t.oom, t.hot_in_tier_pages), (150, false, 0));
        // 400 short: 600 pages; cold is 500, so 100 hot pages are in it.
        let t = m.tier(1000, 600, 4000);
        assert_eq!((t.tier_pages, t.hot_in_tier_pages), (600, 100));
        // Capacity 25% of 2000 = 500 < 600: OOM.
        let t = m.tier(1000, 600, 2000);
        assert!(t.oom);
        assert_eq!(t.tier_pages, 500);
        // 100 hot pages touched once a minute, 5 s ticks: 100/12 per tick.
        assert!((m.pageins_per_tick(120) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn linear_shortfall_integrals() {
        // Flat below demand: rectangle.
        assert_eq!(shortfall_linear(10.0, 4.0, 4.0, 5.0), 30.0);
        // Ramp 0 -> 20 over 10 s against 10: triangle 10 * 5 / 2.
        assert_eq!(shortfall_linear(10.0, 0.0, 20.0, 10.0), 25.0);
        // Ramp down 20 -> 0: the same triangle at the end.
        assert_eq!(shortfall_linear(10.0, 20.0, 0.0, 10.0), 25.0);
        // Trapezoid 2 -> 6 against 10: (8 + 4) / 2 * 4.
        assert_eq!(shortfall_linear(10.0, 2.0, 6.0, 4.0), 24.0);
        assert_eq!(shortfall_linear(10.0, 12.0, 16.0, 4.0), 0.0);
    }

    #[test]
    fn committed_and_units() {
        let m = Model {
            committed_pct: 150,
            committed_extra_pages: 10,
            ..Model::default()
        };
        // 4000 KiB = 1000 pages * 1.5 + 10
        assert_eq!(m.committed_pages(4000), 1510);
        assert_eq!(Model::kib_to_pages(5), 2);
        assert_eq!(m.needed_pages(1510), 1510 + 1024);
        assert_eq!(m.toolstack_pages(1000), 1000);
    }
}
