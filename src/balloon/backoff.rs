//! Back-off after failure: 1 s doubling to the cap, per direction, reset
//! on success; E2BIG halves the batch instead.

use super::{Balloon, BalloonError, NS_PER_S};
use crate::xen::errno::Errno;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Shrink,
    Grow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Backoff {
    pub(super) direction: Direction,
    pub(super) until_ns: u64,
    pub(super) delay_s: u32,
}

impl Balloon {
    /// Forgets any back-off so that the next `step` tries at once (e.g.
    /// after the toolstack changed the target).
    pub fn kick(&mut self) {
        self.backoff = None;
    }

    /// Records a failure and starts (or lengthens) the back-off for
    /// `direction`; returns when to try again.
    pub(super) fn fail(&mut self, direction: Direction, err: BalloonError, now_ns: u64) -> u64 {
        self.last_error = Some(err);
        let delay_s = self.next_delay_s;
        let until_ns = now_ns.saturating_add(u64::from(delay_s).saturating_mul(NS_PER_S));
        self.backoff = Some(Backoff {
            direction,
            until_ns,
            delay_s,
        });
        self.next_delay_s = delay_s.saturating_mul(2).min(self.config.backoff_max_s);
        until_ns
    }

    pub(super) fn succeed(&mut self) {
        self.backoff = None;
        self.next_delay_s = self.config.backoff_initial_s;
    }

    /// The back-off delay in force, 0 when none.
    pub fn backoff_s(&self) -> u32 {
        self.backoff.map_or(0, |b| b.delay_s)
    }

    /// A hypercall refused the batch size: halve it and retry at once,
    /// unless it is already 1.
    pub(super) fn shrink_batch_on_e2big(&mut self, err: BalloonError) -> bool {
        if err == BalloonError::Hypercall(Errno::E2BIG) && self.batch_limit > 1 {
            self.batch_limit /= 2;
            self.last_error = Some(err);
            true
        } else {
            false
        }
    }
}
