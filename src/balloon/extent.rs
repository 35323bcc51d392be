//! Extents: runs of `2^order` frames that one reservation hypercall moves
//! as a unit, and what a batch of them came to.

use super::{SUPERPAGE_ORDER, SUPERPAGE_PAGES};
use crate::mm::Pfn;

/// Most extents per hypercall, whatever their order (one page of
/// `xen_pfn_t`, as Linux): 2 MiB of order-0 extents, 1 GiB of order-9.
pub const MAX_BATCH_EXTENTS: usize = 512;

/// The first frame of the aligned 2 MiB block holding `pfn`.
pub(super) const fn block_of(pfn: Pfn) -> Pfn {
    pfn & !(SUPERPAGE_PAGES - 1)
}

/// Frames in one extent of the orders the driver uses (0 or
/// [`SUPERPAGE_ORDER`]).
pub(super) const fn order_pages(order: u32) -> u64 {
    if order == SUPERPAGE_ORDER {
        SUPERPAGE_PAGES
    } else {
        1
    }
}

/// Frames in `extents` extents of `order` (saturating; batches are far
/// below the limit).
pub(super) fn extents_to_pages(extents: usize, order: u32) -> u64 {
    u64::try_from(extents)
        .unwrap_or(u64::MAX)
        .saturating_mul(order_pages(order))
}

/// What one batch (one hypercall) came to.
pub(super) enum BatchOutcome {
    /// `moved` of `tried` frames moved (`tried > 0`).
    Done { moved: u64, tried: u64 },
    /// Nothing to try (no free / no ballooned frame).
    Empty,
    /// Xen could not populate order-9 extents; nothing moved, order 0 is
    /// to be tried at once.
    Fallback,
    /// Xen stopped inside a multi-page extent while releasing: `moved`
    /// frames left the populated set (the extents done plus the stopped
    /// one, quarantined as ballooned). Counts as a failure: back off.
    Stopped { moved: u64 },
}
