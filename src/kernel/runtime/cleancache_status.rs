//! The cleancache keys of the status (`data/selfballoon/cleancache_*`):
//! what the pager put to and found in cleancache, and what the workload
//! had to recompute.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Env, Runtime};

/// The cleancache status keys, in the order
/// [`Runtime::cleancache_status`] publishes them.
pub const CLEANCACHE_STATUS_KEYS: [&str; 4] = [
    "data/selfballoon/cleancache_puts",
    "data/selfballoon/cleancache_hits",
    "data/selfballoon/cleancache_misses",
    "data/selfballoon/cleancache_recomputed",
];

impl<E: Env> Runtime<'_, E> {
    /// Clean pages put to cleancache at a page-out, faults on cache pages
    /// it answered and did not, and pages the workload recomputed.
    pub(super) fn cleancache_status(&self) -> Vec<(&'static str, String)> {
        let p = self.pager.stats();
        let recomputed = self
            .engine
            .as_ref()
            .map_or(0, |e| e.status().cache_recomputed);
        let values = [p.cache_puts, p.cache_hits, p.cache_misses, recomputed];
        CLEANCACHE_STATUS_KEYS
            .into_iter()
            .zip(values.iter().map(u64::to_string))
            .collect()
    }
}
