//! A verifiable memory workload that gives the self-balloon controller
//! something to control, and the committed-memory accounting the
//! controller reads.
//!
//! - [`spec`]: the phase grammar (`alloc:200M,touch:seq,hold:30s,...`).
//! - [`engine`]: runs a spec against frames from a [`PageSource`].
//! - [`pattern`]: the self-describing, verifiable page content.

#![forbid(unsafe_code)]

pub mod engine;
pub mod pattern;
pub mod spec;

pub use engine::{Engine, MapError, PageSource, Status, StepOutcome, DEFAULT_BUDGET_PAGES};
pub use spec::{ParseError, ParseErrorKind, Spec};

/// Committed memory, the analogue of Linux's `Committed_AS`
/// (`vm_committed_as`): what has been promised, resident or not. The
/// kernel fills in the parts it knows and hands
/// [`Committed::total_pages`] to the controller as
/// `TickInput::committed_pages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Committed {
    /// Pages the workload has reserved ([`Engine::committed_pages`]),
    /// whether or not they are touched yet.
    pub workload_reserved_pages: u64,
    /// Pages backing the kernel heap.
    pub kernel_heap_pages: u64,
    /// Pages holding page tables.
    pub page_table_pages: u64,
}

impl Committed {
    /// The sum, saturating.
    pub fn total_pages(&self) -> u64 {
        self.workload_reserved_pages
            .saturating_add(self.kernel_heap_pages)
            .saturating_add(self.page_table_pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_sums_and_saturates() {
        let c = Committed {
            workload_reserved_pages: 51_200,
            kernel_heap_pages: 300,
            page_table_pages: 12,
        };
        assert_eq!(c.total_pages(), 51_512);
        let c = Committed {
            workload_reserved_pages: u64::MAX,
            ..c
        };
        assert_eq!(c.total_pages(), u64::MAX);
        assert_eq!(Committed::default().total_pages(), 0);
    }
}
