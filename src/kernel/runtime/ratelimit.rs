//! A log rate limit for what another domain can make us say: each value
//! dom0 writes that we reject is logged with the reason, but a dom0 that
//! writes garbage as fast as it can must not turn the guest's console (and
//! Xen's, where warnings also go) into a flood, nor cost an exit per line.
//! At most [`BURST`] such messages per [`WINDOW_NS`]; the rest are counted
//! and the count is said once, with the next message let through.

#![forbid(unsafe_code)]

/// The window (10 s).
pub const WINDOW_NS: u64 = 10_000_000_000;
/// Messages let through per window.
pub const BURST: u32 = 10;

/// Whether to log a message now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Log it; `suppressed` messages were dropped since the last one let
    /// through (say so).
    Log {
        /// Messages dropped before this one.
        suppressed: u64,
    },
    /// Drop it (counted).
    Drop,
}

/// A fixed-window limiter on a monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimit {
    window_start_ns: Option<u64>,
    in_window: u32,
    suppressed: u64,
    /// Messages dropped in all.
    pub dropped_total: u64,
}

impl RateLimit {
    /// Decides for a message at `now_ns`.
    pub fn admit(&mut self, now_ns: u64) -> Admit {
        let fresh = self
            .window_start_ns
            .is_none_or(|t| now_ns.saturating_sub(t) >= WINDOW_NS);
        if fresh {
            self.window_start_ns = Some(now_ns);
            self.in_window = 0;
        }
        if self.in_window < BURST {
            self.in_window += 1;
            let suppressed = core::mem::take(&mut self.suppressed);
            Admit::Log { suppressed }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            self.dropped_total = self.dropped_total.saturating_add(1);
            Admit::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_then_the_count_once() {
        let mut r = RateLimit::default();
        for i in 0..BURST {
            assert_eq!(r.admit(u64::from(i)), Admit::Log { suppressed: 0 });
        }
        for i in 0..25 {
            assert_eq!(r.admit(100 + i), Admit::Drop);
        }
        assert_eq!(r.dropped_total, 25);
        // Still the same window.
        assert_eq!(r.admit(WINDOW_NS - 1), Admit::Drop);
        // A new window: the next message carries the count, once.
        assert_eq!(r.admit(WINDOW_NS), Admit::Log { suppressed: 26 });
        assert_eq!(r.admit(WINDOW_NS + 1), Admit::Log { suppressed: 0 });
        assert_eq!(r.dropped_total, 26);
    }

    #[test]
    fn a_clock_that_goes_back_does_not_open_windows() {
        let mut r = RateLimit::default();
        for _ in 0..BURST {
            r.admit(5 * WINDOW_NS);
        }
        assert_eq!(r.admit(0), Admit::Drop);
    }
}
