//! The driver's status, what it publishes in xenstore, and the parsing of
//! the toolstack's `memory/target`.

use alloc::string::ToString;
use core::fmt;

use super::{Balloon, Limit};
use crate::mm::frame::FrameCounts;
use crate::mm::pages_to_kib;
use crate::parse::DecimalError;
use crate::xen::errno::Errno;
use crate::xen::xenstore::{Store, XsError};

/// A snapshot of the driver, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonStatus {
    /// Populated RAM (reserved + free + allocated).
    pub current_kib: u64,
    /// The effective target (after the floor).
    pub target_kib: u64,
    /// The toolstack bound, in our frames (the start size while
    /// `memory/target` is unknown).
    pub toolstack_target_kib: u64,
    /// The self-balloon controller's target, if any.
    pub requested_target_kib: Option<u64>,
    /// The safety floor.
    pub floor_kib: u64,
    /// The floor raised the target.
    pub clamped: bool,
    /// Given back to Xen.
    pub ballooned_kib: u64,
    /// All RAM frames of the memory map.
    pub total_kib: u64,
    /// Free frames.
    pub free_kib: u64,
    /// The last failure, as an errno (see [`super::BalloonError::errno`]).
    pub last_error: Option<Errno>,
    /// The back-off delay in force, 0 when none.
    pub backoff_s: u32,
    /// Why the last step stopped short of the target, if it did.
    pub limit: Option<Limit>,
    /// Hypercalls that moved frames.
    pub batches: u64,
    /// Hypercalls made.
    pub hypercalls: u64,
}

/// The xenstore keys [`BalloonStatus::xenstore_entries`] fills, relative to
/// the domain's home. None is under `memory/` (dom0-owned).
pub const XENSTORE_KEYS: [&str; 6] = [
    "data/selfballoon/current",
    "data/selfballoon/target",
    "data/selfballoon/ballooned",
    "data/meminfo_total",
    "data/meminfo_free",
    "control/feature-balloon",
];

impl BalloonStatus {
    pub(super) fn new(b: &Balloon, counts: FrameCounts) -> Self {
        BalloonStatus {
            current_kib: pages_to_kib(counts.populated_pages()),
            target_kib: pages_to_kib(b.target_pages()),
            toolstack_target_kib: pages_to_kib(b.upper_pages()),
            requested_target_kib: b.requested_target_pages.map(pages_to_kib),
            floor_kib: pages_to_kib(b.floor_pages),
            clamped: b.clamped(),
            ballooned_kib: pages_to_kib(counts.ballooned_pages),
            total_kib: pages_to_kib(counts.total_pages),
            free_kib: pages_to_kib(counts.free_pages),
            last_error: b.last_error.map(|e| e.errno()),
            backoff_s: b.backoff_s(),
            limit: b.limit,
            batches: b.counters.batches,
            hypercalls: b.counters.hypercalls,
        }
    }

    /// The key/value pairs to publish (values in KiB, the feature flag 1),
    /// keys as in [`XENSTORE_KEYS`].
    pub fn xenstore_entries(&self) -> [(&'static str, u64); 6] {
        let values = [
            self.current_kib,
            self.target_kib,
            self.ballooned_kib,
            self.current_kib,
            self.free_kib,
            1,
        ];
        let mut out = [("", 0); 6];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = (XENSTORE_KEYS[i], values[i]);
        }
        out
    }
}

/// Writes the status to xenstore. Every key is attempted; the first error
/// is returned.
pub fn publish<S: Store>(store: &mut S, status: &BalloonStatus) -> Result<(), XsError> {
    let mut first_err = None;
    for (key, value) in status.xenstore_entries() {
        if let Err(e) = store.write(key, &value.to_string()) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Why a `memory/target` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetParseError {
    /// The value is empty.
    Empty,
    /// Something other than ASCII digits (sign, space, newline, ...).
    NotDigits,
    /// Does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for TargetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetParseError::Empty => "memory/target is empty",
            TargetParseError::NotDigits => "memory/target is not a decimal number",
            TargetParseError::Overflow => "memory/target is too large",
        })
    }
}

/// Parses `memory/target`: KiB as ASCII digits only, nothing else.
pub fn parse_target_kib(value: &str) -> Result<u64, TargetParseError> {
    crate::parse::decimal_u64(value).map_err(|e| match e {
        DecimalError::Empty => TargetParseError::Empty,
        DecimalError::NotDigits => TargetParseError::NotDigits,
        DecimalError::Overflow => TargetParseError::Overflow,
    })
}
