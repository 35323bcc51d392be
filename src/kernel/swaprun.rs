//! `swaprun`: a swap test run on the real hypervisor (tier 2, our kernel
//! as dom0, which has no toolstack to watch it). The runtime runs the
//! command line's workload with the controllers as usual; this module
//! watches each turn, keeps the peaks (frontswap pages, and where they
//! sat: Xen's tmem or `zpool`), and when the workload has ended (or the
//! time limit passed) prints one summary line and the verdict.
//!
//! The guest's verdict is about data and the swap tier working at all:
//! pages went out, every page read back matched (0 mismatches), no tier
//! lost a page, and self-shrinking brought pages back. What a particular
//! run must show besides (pages in tmem, refusals once Xen is full, the
//! backend) is the harness's to check, from the summary line.

#![forbid(unsafe_code)]

use alloc::string::String;

use super::exit::TestResult;
use super::runtime::{Env, Runtime};
use crate::pager::SwapDevice;

/// What one turn shows (copied out of the runtime, so the judging is
/// plain arithmetic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Frontswap pages now, both tiers.
    pub frontswap_pages: u64,
    /// Of which in Xen's tmem.
    pub tmem_pages: u64,
    /// Of which in `zpool`.
    pub pool_pages: u64,
    /// Puts Xen refused that `zpool` took.
    pub tmem_refused: u64,
    /// Puts made while tmem was closed (no room under `max_pages`).
    pub tmem_closed: u64,
    /// Page-outs stored.
    pub pageouts: u64,
    /// Page-ins from frontswap.
    pub pageins: u64,
    /// Of which by self-shrinking.
    pub shrink_pageins: u64,
    /// Page-outs no tier took (the page stayed resident).
    pub swap_refused: u64,
    /// Pages lost by the pager or a tier (must stay 0).
    pub lost_pages: u64,
    /// Workload pages verified.
    pub verified_pages: u64,
    /// Workload mismatches (must stay 0).
    pub mismatches: u64,
    /// The workload's program has ended.
    pub workload_done: bool,
    /// Clean cache pages put to cleancache, faults it answered and did
    /// not, pages the workload recomputed.
    pub cleancache_puts: u64,
    /// See `cleancache_puts`.
    pub cleancache_hits: u64,
    /// See `cleancache_puts`.
    pub cleancache_misses: u64,
    /// See `cleancache_puts`.
    pub cleancache_recomputed: u64,
}

impl Sample {
    /// The runtime's state now.
    pub fn of<E: Env>(rt: &Runtime<'_, E>) -> Sample {
        let f = SwapDevice::figures(rt.swap());
        let p = rt.pager().stats();
        let w = rt.engine().map(|e| e.status());
        Sample {
            frontswap_pages: f.pages,
            tmem_pages: f.tmem_pages,
            pool_pages: f.pool_pages,
            tmem_refused: f.tmem_refused,
            tmem_closed: f.tmem_closed,
            pageouts: p.pageouts,
            pageins: p.pageins,
            shrink_pageins: p.shrink_pageins,
            swap_refused: p.swap_refused,
            lost_pages: p.lost_pages.saturating_add(f.lost),
            verified_pages: w.map_or(0, |s| s.verified_pages),
            mismatches: w.map_or(0, |s| s.mismatches),
            workload_done: w.is_none_or(|s| s.phase == "done"),
            cleancache_puts: p.cache_puts,
            cleancache_hits: p.cache_hits,
            cleancache_misses: p.cache_misses,
            cleancache_recomputed: w.map_or(0, |s| s.cache_recomputed),
        }
    }
}

/// The run so far: the last sample and the peaks.
#[derive(Clone, Debug, Default)]
pub struct SwapRun {
    last: Sample,
    peak_frontswap_pages: u64,
    peak_tmem_pages: u64,
    peak_pool_pages: u64,
    started_ns: u64,
    limit_ns: u64,
}

/// Why a run failed (the summary says it in words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A page read back did not match.
    Mismatches,
    /// A page was lost.
    Lost,
    /// Nothing was verified.
    NothingVerified,
    /// No page ever went to frontswap.
    NoPageouts,
    /// Self-shrinking brought nothing back.
    NoShrink,
    /// The workload did not end within the limit.
    TimedOut,
}

impl Failure {
    fn describe(self) -> &'static str {
        match self {
            Failure::Mismatches => "pages read back did not match",
            Failure::Lost => "pages were lost",
            Failure::NothingVerified => "no page was verified",
            Failure::NoPageouts => "no page went to frontswap",
            Failure::NoShrink => "self-shrinking brought no page back",
            Failure::TimedOut => "the workload did not end in time",
        }
    }
}

impl SwapRun {
    /// A run that started at `now_ns` and may take `limit_s` seconds.
    pub fn new(now_ns: u64, limit_s: u32) -> Self {
        SwapRun {
            started_ns: now_ns,
            limit_ns: u64::from(limit_s).saturating_mul(1_000_000_000),
            ..SwapRun::default()
        }
    }

    /// Takes in a turn's sample. `Some` when the run is over: the
    /// workload ended or the time is up.
    pub fn observe(&mut self, s: Sample, now_ns: u64) -> Option<Result<(), Failure>> {
        self.last = s;
        self.peak_frontswap_pages = self.peak_frontswap_pages.max(s.frontswap_pages);
        self.peak_tmem_pages = self.peak_tmem_pages.max(s.tmem_pages);
        self.peak_pool_pages = self.peak_pool_pages.max(s.pool_pages);
        let timed_out = now_ns.saturating_sub(self.started_ns) >= self.limit_ns;
        if !s.workload_done && !timed_out {
            return None;
        }
        Some(self.judge(timed_out))
    }

    fn judge(&self, timed_out: bool) -> Result<(), Failure> {
        let s = &self.last;
        if s.mismatches > 0 {
            Err(Failure::Mismatches)
        } else if s.lost_pages > 0 {
            Err(Failure::Lost)
        } else if timed_out && !s.workload_done {
            Err(Failure::TimedOut)
        } else if s.verified_pages == 0 {
            Err(Failure::NothingVerified)
        } else if s.pageouts == 0 {
            Err(Failure::NoPageouts)
        } else if s.shrink_pageins == 0 {
            Err(Failure::NoShrink)
        } else {
            Ok(())
        }
    }

    /// The summary: seven lines of `key=value` words after `swaprun:`
    /// (short, because Xen's console cuts a domain's long lines), for the
    /// harness to read, the last with the verdict in words.
    pub fn summary(&self, backend: &str, verdict: Result<(), Failure>, now_ns: u64) -> [String; 7] {
        let s = &self.last;
        [
            alloc::format!(
                "swaprun: backend={backend} secs={} peak_frontswap={}",
                now_ns.saturating_sub(self.started_ns) / 1_000_000_000,
                self.peak_frontswap_pages,
            ),
            alloc::format!(
                "swaprun: peak_tmem={} peak_zpool={}",
                self.peak_tmem_pages,
                self.peak_pool_pages,
            ),
            alloc::format!(
                "swaprun: tmem_refused={} tmem_closed={} swap_refused={}",
                s.tmem_refused,
                s.tmem_closed,
                s.swap_refused,
            ),
            alloc::format!(
                "swaprun: pageouts={} pageins={} shrunk={}",
                s.pageouts,
                s.pageins,
                s.shrink_pageins,
            ),
            alloc::format!(
                "swaprun: frontswap_end={} verified={} mismatches={} lost={}",
                s.frontswap_pages,
                s.verified_pages,
                s.mismatches,
                s.lost_pages,
            ),
            alloc::format!(
                "swaprun: cc_puts={} cc_hits={} cc_misses={} cc_recomputed={}",
                s.cleancache_puts,
                s.cleancache_hits,
                s.cleancache_misses,
                s.cleancache_recomputed,
            ),
            alloc::format!(
                "swaprun: {}",
                match verdict {
                    Ok(()) => "nothing lost",
                    Err(f) => f.describe(),
                }
            ),
        ]
    }
}

/// The test result of a verdict.
pub fn result_of(verdict: Result<(), Failure>) -> TestResult {
    match verdict {
        Ok(()) => TestResult::Success,
        Err(_) => TestResult::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Sample {
        Sample {
            frontswap_pages: 10,
            tmem_pages: 4,
            pool_pages: 6,
            pageouts: 100,
            pageins: 90,
            shrink_pageins: 5,
            verified_pages: 1000,
            workload_done: true,
            ..Sample::default()
        }
    }

    #[test]
    fn runs_until_the_workload_ends_and_keeps_peaks() {
        let mut r = SwapRun::new(0, 10);
        let mut busy = good();
        busy.workload_done = false;
        busy.tmem_pages = 50;
        busy.frontswap_pages = 80;
        assert_eq!(r.observe(busy, 1), None);
        assert_eq!(r.observe(good(), 2), Some(Ok(())));
        let lines = r.summary("xen-tmem", Ok(()), 2_000_000_000);
        assert_eq!(
            lines[0],
            "swaprun: backend=xen-tmem secs=2 peak_frontswap=80"
        );
        assert_eq!(lines[1], "swaprun: peak_tmem=50 peak_zpool=6");
        assert_eq!(lines[6], "swaprun: nothing lost");
        // Xen's console cut a longer line of dom0's; with the log's
        // prefix (21 bytes) each stays within 128 for 9-digit counts.
        let n = 999_999_999;
        let big = Sample {
            frontswap_pages: n,
            tmem_pages: n,
            pool_pages: n,
            tmem_refused: n,
            tmem_closed: n,
            pageouts: n,
            pageins: n,
            shrink_pageins: n,
            swap_refused: n,
            lost_pages: n,
            verified_pages: n,
            mismatches: n,
            workload_done: true,
            cleancache_puts: n,
            cleancache_hits: n,
            cleancache_misses: n,
            cleancache_recomputed: n,
        };
        r.observe(big, 3);
        for l in r.summary("xen-tmem", Err(Failure::NoShrink), 999_999 * 1_000_000_000) {
            assert!(l.len() <= 100, "{} bytes: {l}", l.len());
        }
    }

    #[test]
    fn data_failures_come_first() {
        let mut s = good();
        s.mismatches = 1;
        s.lost_pages = 1;
        assert_eq!(
            SwapRun::new(0, 1).observe(s, 0),
            Some(Err(Failure::Mismatches))
        );
        s.mismatches = 0;
        assert_eq!(SwapRun::new(0, 1).observe(s, 0), Some(Err(Failure::Lost)));
    }

    #[test]
    fn a_run_must_page_out_verify_and_shrink() {
        for (f, want) in [
            (
                (|s: &mut Sample| s.verified_pages = 0) as fn(&mut Sample),
                Failure::NothingVerified,
            ),
            (|s: &mut Sample| s.pageouts = 0, Failure::NoPageouts),
            (|s: &mut Sample| s.shrink_pageins = 0, Failure::NoShrink),
        ] {
            let mut s = good();
            f(&mut s);
            assert_eq!(SwapRun::new(0, 1).observe(s, 0), Some(Err(want)));
        }
    }

    #[test]
    fn the_limit_ends_an_unfinished_run() {
        let mut s = good();
        s.workload_done = false;
        let mut r = SwapRun::new(5, 3);
        assert_eq!(r.observe(s, 3_000_000_004), None);
        assert_eq!(r.observe(s, 3_000_000_005), Some(Err(Failure::TimedOut)));
        assert_eq!(result_of(Err(Failure::TimedOut)), TestResult::Failure);
    }
}
