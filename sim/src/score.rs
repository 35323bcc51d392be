//! The scorecard: what a policy cost and saved over a run, summed over
//! all VMs, and its table and CSV forms.

use std::fmt::Write as _;

use crate::model::PAGES_PER_GIB;

/// Raw sums of one policy's run, in pages, seconds and counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// VMs that ran at least one tick.
    pub vms: u64,
    /// VM-seconds simulated.
    pub vm_s: f64,
    /// ∫ frames held dt, page·s.
    pub held_ps: f64,
    /// ∫ frames needed dt, page·s.
    pub demand_ps: f64,
    /// ∫ max(0, needed − held) dt, page·s.
    pub short_ps: f64,
    /// Length in ticks of every shortfall episode.
    pub episodes: Vec<u32>,
    /// OOM episodes.
    pub oom_events: u64,
    /// Page-in rates (% of the working set per minute) of the VM-ticks
    /// that had page-ins.
    pub pagein_rates: Vec<f64>,
    /// VM-ticks with a working set (the denominator of the rate's p99).
    pub rate_ticks: u64,
    /// Ticks from each demand spike until the frames covered it.
    pub spikes: Vec<u32>,
    /// Direction changes of the frames held.
    pub reversals: u64,
    /// Pages moved by the balloon, both directions.
    pub moved_pages: u64,
    /// Pages read back from the swap tier.
    pub pageins: f64,
    /// Pages written to the swap tier.
    pub pageouts: u64,
    /// Pages the host could not give (its free memory was gone).
    pub host_refused_pages: u64,
}

/// Nearest-rank percentile `q` (0..=1) of `nonzero` values among `total`
/// values, the others being 0.
pub fn percentile_with_zeros(nonzero: &mut [f64], total: u64, q: f64) -> f64 {
    if total == 0 || nonzero.is_empty() {
        return 0.0;
    }
    nonzero.sort_by(f64::total_cmp);
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let zeros = total.saturating_sub(nonzero.len() as u64);
    if rank <= zeros {
        0.0
    } else {
        let i = usize::try_from(rank - zeros - 1).unwrap_or(usize::MAX);
        nonzero[i.min(nonzero.len() - 1)]
    }
}

/// Nearest-rank percentile of counts (0 when there are none).
pub fn percentile_u32(v: &mut [u32], q: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn gib_h(ps: f64) -> f64 {
    ps / PAGES_PER_GIB as f64 / 3600.0
}

/// One scorecard row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The policy as written.
    pub policy: String,
    /// VMs.
    pub vms: u64,
    /// Frames held, GiB·h.
    pub held_gib_h: f64,
    /// Frames needed, GiB·h.
    pub demand_gib_h: f64,
    /// held / demand.
    pub overprov: f64,
    /// Demand not in frames, GiB·h.
    pub shortfall_gib_h: f64,
    /// Shortfall episodes.
    pub shortfall_episodes: u64,
    /// p99 of their lengths, ticks.
    pub shortfall_p99_ticks: u32,
    /// OOM episodes.
    pub oom_events: u64,
    /// p99 over VM-ticks of page-ins, % of the working set per minute.
    pub pageins_p99_pct_ws_per_min: f64,
    /// Median ticks from a spike until covered.
    pub spike_ticks_p50: u32,
    /// p99 of the same.
    pub spike_ticks_p99: u32,
    /// Direction changes per VM-hour.
    pub reversals_per_h: f64,
    /// GiB moved by the balloon.
    pub balloon_gib_moved: f64,
    /// (static − policy) / (static − oracle) of held GiB·h.
    pub captured: f64,
    /// GiB paged in from the tier.
    pub pagein_gib: f64,
    /// GiB paged out to the tier.
    pub pageout_gib: f64,
    /// CPU seconds of compression and decompression.
    pub swap_cpu_s: f64,
    /// GiB the host could not give.
    pub host_refused_gib: f64,
}

/// The CSV header: the columns, then ours.
pub const CSV_HEADER: &str = "policy,vms,held_gib_h,demand_gib_h,overprov,shortfall_gib_h,\
shortfall_episodes,shortfall_p99_ticks,oom_events,pageins_p99_pct_ws_per_min,spike_ticks_p50,\
spike_ticks_p99,reversals_per_h,balloon_gib_moved,captured,pagein_gib,pageout_gib,swap_cpu_s,\
host_refused_gib";

impl Row {
    /// The row for `t`, with `captured` against the static and oracle
    /// held GiB·h of the same run; `pageout_ns`/`pagein_ns` price the tier.
    pub fn new(
        policy: &str,
        t: &Tally,
        static_held: f64,
        oracle_held: f64,
        pageout_ns: u64,
        pagein_ns: u64,
    ) -> Row {
        let held = gib_h(t.held_ps);
        let demand = gib_h(t.demand_ps);
        let mut episodes = t.episodes.clone();
        let mut spikes = t.spikes.clone();
        let mut rates = t.pagein_rates.clone();
        let hours = t.vm_s / 3600.0;
        let span = static_held - oracle_held;
        Row {
            policy: policy.to_string(),
            vms: t.vms,
            held_gib_h: held,
            demand_gib_h: demand,
            overprov: if demand > 0.0 { held / demand } else { 0.0 },
            shortfall_gib_h: gib_h(t.short_ps),
            shortfall_episodes: t.episodes.len() as u64,
            shortfall_p99_ticks: percentile_u32(&mut episodes, 0.99),
            oom_events: t.oom_events,
            pageins_p99_pct_ws_per_min: percentile_with_zeros(&mut rates, t.rate_ticks, 0.99),
            spike_ticks_p50: percentile_u32(&mut spikes, 0.50),
            spike_ticks_p99: percentile_u32(&mut spikes, 0.99),
            reversals_per_h: if hours > 0.0 {
                t.reversals as f64 / hours
            } else {
                0.0
            },
            balloon_gib_moved: t.moved_pages as f64 / PAGES_PER_GIB as f64,
            captured: if span > 0.0 {
                (static_held - held) / span
            } else {
                0.0
            },
            pagein_gib: t.pageins / PAGES_PER_GIB as f64,
            pageout_gib: t.pageouts as f64 / PAGES_PER_GIB as f64,
            swap_cpu_s: (t.pageins * pagein_ns as f64 + t.pageouts as f64 * pageout_ns as f64)
                / 1e9,
            host_refused_gib: t.host_refused_pages as f64 / PAGES_PER_GIB as f64,
        }
    }

    /// The CSV line (no newline); the policy label is quoted when it holds
    /// a comma or quote.
    pub fn csv(&self) -> String {
        let label = if self.policy.contains([',', '"']) {
            format!("\"{}\"", self.policy.replace('"', "\"\""))
        } else {
            self.policy.clone()
        };
        format!(
            "{label},{},{:.4},{:.4},{:.4},{:.6},{},{},{},{:.6},{},{},{:.4},{:.3},{:.4},{:.6},{:.6},{:.3},{:.4}",
            self.vms,
            self.held_gib_h,
            self.demand_gib_h,
            self.overprov,
            self.shortfall_gib_h,
            self.shortfall_episodes,
            self.shortfall_p99_ticks,
            self.oom_events,
            self.pageins_p99_pct_ws_per_min,
            self.spike_ticks_p50,
            self.spike_ticks_p99,
            self.reversals_per_h,
            self.balloon_gib_moved,
            self.captured,
            self.pagein_gib,
            self.pageout_gib,
            self.swap_cpu_s,
            self.host_refused_gib,
        )
    }
}

/// The scorecard as CSV text.
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&r.csv());
        s.push('\n');
    }
    s
}

/// The scorecard as an aligned text table, with a ratio-to-`linux` column
/// for held and shortfall when a `linux` row is there.
pub fn table(rows: &[Row]) -> String {
    let linux = rows.iter().find(|r| r.policy == "linux");
    let head = [
        "policy",
        "held GiB·h",
        "×linux",
        "demand",
        "overprov",
        "short GiB·h",
        "×linux",
        "episodes",
        "ep p99",
        "OOM",
        "pgin p99 %ws/min",
        "spike p50",
        "p99",
        "rev/h",
        "moved GiB",
        "captured",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    let ratio = |a: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.3}", a / b),
        Some(_) if a == 0.0 => "=".to_string(),
        Some(_) => "inf".to_string(),
        None => "-".to_string(),
    };
    for r in rows {
        cells.push(vec![
            r.policy.clone(),
            format!("{:.1}", r.held_gib_h),
            ratio(r.held_gib_h, linux.map(|l| l.held_gib_h)),
            format!("{:.1}", r.demand_gib_h),
            format!("{:.2}", r.overprov),
            format!("{:.3}", r.shortfall_gib_h),
            ratio(r.shortfall_gib_h, linux.map(|l| l.shortfall_gib_h)),
            r.shortfall_episodes.to_string(),
            r.shortfall_p99_ticks.to_string(),
            r.oom_events.to_string(),
            format!("{:.4}", r.pageins_p99_pct_ws_per_min),
            r.spike_ticks_p50.to_string(),
            r.spike_ticks_p99.to_string(),
            format!("{:.2}", r.reversals_per_h),
            format!("{:.1}", r.balloon_gib_moved),
            format!("{:.3}", r.captured),
        ]);
    }
    let n = head.len();
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (j, row) in cells.iter().enumerate() {
        for (i, c) in row.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i == 0 {
                let _ = write!(out, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{c}", " ".repeat(pad));
            }
        }
        out.push('\n');
        if j == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (n - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v = vec![5.0, 1.0];
        // 100 values, 98 zeros: p99 is rank 99 -> the smaller nonzero.
        assert_eq!(percentile_with_zeros(&mut v, 100, 0.99), 1.0);
        assert_eq!(percentile_with_zeros(&mut v, 100, 1.0), 5.0);
        assert_eq!(percentile_with_zeros(&mut v, 1000, 0.99), 0.0);
        assert_eq!(percentile_with_zeros(&mut [], 10, 0.99), 0.0);
        let mut c = vec![3, 1, 2, 10];
        assert_eq!(percentile_u32(&mut c, 0.5), 2);
        assert_eq!(percentile_u32(&mut c, 0.99), 10);
        assert_eq!(percentile_u32(&mut [], 0.5), 0);
    }

    #[test]
    fn row_units_and_captured() {
        let g = PAGES_PER_GIB as f64 * 3600.0;
        let t = Tally {
            vms: 2,
            vm_s: 7200.0,
            held_ps: 3.0 * g,
            demand_ps: 1.5 * g,
            short_ps: 0.25 * g,
            episodes: vec![1, 2],
            reversals: 4,
            moved_pages: PAGES_PER_GIB,
            ..Tally::default()
        };
        let r = Row::new("p", &t, 5.0, 1.0, 0, 0);
        assert_eq!(r.held_gib_h, 3.0);
        assert_eq!(r.overprov, 2.0);
        assert_eq!(r.shortfall_gib_h, 0.25);
        assert_eq!(r.captured, 0.5);
        assert_eq!(r.reversals_per_h, 2.0);
        assert_eq!(r.balloon_gib_moved, 1.0);
        assert_eq!(r.csv().split(',').count(), CSV_HEADER.split(',').count());
        assert!(table(std::slice::from_ref(&r)).contains("p "));
        let q = Row {
            policy: "a,\"b".into(),
            ..r
        };
        assert!(q.csv().starts_with("\"a,\"\"b\","));
    }
}
