//! The driver's configuration, outcomes and counters.

use crate::mm::frame::FrameError;
use crate::mm::Pfn;
use crate::xen::errno::Errno;

/// Tunables of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonConfig {
    /// The floor as configured (`balloon_floor_mb`); the effective floor is
    /// at least the frames in use at start plus `margin_pages`.
    pub floor_pages: u64,
    /// Free frames kept above those in use at start.
    pub margin_pages: u64,
    /// Zero dirty frames before releasing them (default on).
    pub scrub: bool,
    /// Hypercalls per [`Balloon::step`](super::Balloon::step) at most (at least 1 is used; an
    /// order-0 retry after a failed order-9 populate comes on top).
    pub max_batches_per_step: u32,
    /// Frames moved per [`Balloon::step`](super::Balloon::step) at most (at least 1 is used).
    /// With order-9 extents one hypercall can move up to 1 GiB; this keeps
    /// a step (and its scrubbing) bounded.
    pub max_pages_per_step: u64,
    /// First back-off delay.
    pub backoff_initial_s: u32,
    /// Back-off delay cap.
    pub backoff_max_s: u32,
}

impl Default for BalloonConfig {
    fn default() -> Self {
        BalloonConfig {
            floor_pages: 0,
            margin_pages: 1024,
            scrub: true,
            max_batches_per_step: 16,
            max_pages_per_step: 32768,
            backoff_initial_s: 1,
            backoff_max_s: 32,
        }
    }
}

/// Why the driver cannot move further towards its target right now
/// (without a hypercall failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Shrinking: every remaining populated frame is in use.
    InUse,
    /// Growing: no ballooned frame left (target beyond the memory map).
    NoBallooned,
    /// Urgent growth: the toolstack target is reached.
    ToolstackTarget,
}

/// Why a balloon operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalloonError {
    /// The hypercall failed.
    Hypercall(Errno),
    /// The hypercall succeeded but did nothing.
    NoProgress,
    /// The frame allocator refused a transition (a bug; the frame is left
    /// where it is safe: an unbacked frame is never handed out).
    Frame(FrameError),
    /// Cannot proceed; see [`Limit`].
    Limited(Limit),
    /// The frame could not be zeroed, so it was not released (a bug: a
    /// taken frame is always ours to touch).
    Scrub(Pfn),
}

impl BalloonError {
    /// The errno to show in the status (zero progress as EAGAIN, allocator
    /// trouble as EIO, limits as ENOMEM).
    pub fn errno(self) -> Errno {
        match self {
            BalloonError::Hypercall(e) => e,
            BalloonError::NoProgress => Errno::EAGAIN,
            BalloonError::Frame(_) | BalloonError::Scrub(_) => Errno::EIO,
            BalloonError::Limited(_) => Errno::ENOMEM,
        }
    }
}

/// Where a [`Balloon::step`](super::Balloon::step) left things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// At the target; nothing to do until it changes.
    Reached,
    /// More to do; call again (at `next_call_ns`).
    Working,
    /// A hypercall failed; waiting out the back-off.
    BackingOff,
    /// Stopped short of the target; see [`Limit`].
    Limited(Limit),
}

/// The outcome of one [`Balloon::step`](super::Balloon::step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Frames given to Xen in this step.
    pub released_pages: u64,
    /// Frames populated in this step.
    pub populated_pages: u64,
    /// Where things stand.
    pub progress: Progress,
    /// When to call `step` again (monotonic ns), `None` when only a target
    /// change can give it work.
    pub next_call_ns: Option<u64>,
}

/// Running totals, for the status and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalloonCounters {
    /// Hypercalls made (decrease and populate).
    pub hypercalls: u64,
    /// Hypercalls that moved at least one frame.
    pub batches: u64,
    /// Frames released since start.
    pub released_pages: u64,
    /// Frames populated since start.
    pub populated_pages: u64,
    /// Frames scrubbed since start.
    pub scrubbed_pages: u64,
    /// Order-9 (2 MiB) extents released since start (their frames are
    /// also in `released_pages`).
    pub superpages_released: u64,
    /// Order-9 extents populated since start (their frames are also in
    /// `populated_pages`).
    pub superpages_populated: u64,
    /// Order-9 populate hypercalls Xen could not serve (host memory
    /// fragmented), retried as order 0.
    pub superpage_fallbacks: u64,
    /// Multi-page extents Xen stopped inside (possibly partly removed),
    /// kept out of use as ballooned rather than returned as free.
    pub quarantined_extents: u64,
}
