//! The guest's status for dom0 (`data/selfballoon/`, `data/meminfo_*`,
//! `control/feature-balloon`) and the debug dump that VIRQ_DEBUG asks for.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::adapters::Dedup;
use super::{Env, Runtime, WatchStore};
use crate::arch::x86_64::trap;
use crate::balloon;
use crate::mm::pages_to_kib;
use crate::pager::SwapDevice;
use crate::parse::untrusted;
use crate::xen::events;
use crate::xen::ops::Clock;
use crate::xen::xenstore::Store;

/// The swap tier's status keys, in the order [`Runtime::swap_status`]
/// publishes them (dom0's tool reads some of them).
pub const SWAP_STATUS_KEYS: [&str; 21] = [
    "data/selfballoon/swap_backend",
    "data/selfballoon/frontswap_pages",
    "data/selfballoon/frontswap_kib",
    "data/selfballoon/frontswap_tmem_pages",
    "data/selfballoon/frontswap_zpool_pages",
    "data/selfballoon/tmem_refused",
    "data/selfballoon/tmem_closed",
    "data/selfballoon/zpool_bytes",
    "data/selfballoon/zpool_frames",
    "data/selfballoon/zpool_ratio_pct",
    "data/selfballoon/zpool_max_frames",
    "data/selfballoon/pageouts",
    "data/selfballoon/pageins",
    "data/selfballoon/page_faults",
    "data/selfballoon/swap_refused",
    "data/selfballoon/swap_lost",
    "data/selfballoon/resident_pages",
    "data/selfballoon/unswappable_pages",
    "data/selfballoon/cr2_fixups",
    "data/selfballoon/heap_free_kib",
    "data/selfballoon/swap_floor",
];

impl<E: Env> Runtime<'_, E> {
    /// The `data/selfballoon/` keys the runtime itself publishes (beyond
    /// the balloon's and the controller's own).
    pub(super) fn extra_status(&self) -> Vec<(&'static str, String)> {
        let status = self.balloon.status(self.frames.counts());
        let mut extra: Vec<(&str, String)> = alloc::vec![
            ("data/selfballoon/floor", status.floor_kib.to_string()),
            (
                "data/selfballoon/clamped",
                u8::from(status.clamped).to_string()
            ),
            (
                "data/selfballoon/toolstack_target",
                status.toolstack_target_kib.to_string()
            ),
        ];
        let t = self.timing;
        if let (Some(step), Some(hyper)) = (
            t.step_ns.checked_div(t.hypercalls),
            t.hypercall_ns.checked_div(t.hypercalls),
        ) {
            // Per 512-extent batch: guest-side step time vs hypercall time.
            extra.push(("data/selfballoon/batch_step_us", (step / 1000).to_string()));
            extra.push((
                "data/selfballoon/batch_hypercall_us",
                (hyper / 1000).to_string(),
            ));
            extra.push((
                "data/selfballoon/balloon_hypercalls",
                t.hypercalls.to_string(),
            ));
        }
        let c = self.balloon.counters();
        for (key, value) in [
            ("data/selfballoon/released_pages", c.released_pages),
            ("data/selfballoon/populated_pages", c.populated_pages),
            ("data/selfballoon/scrubbed_pages", c.scrubbed_pages),
            (
                "data/selfballoon/superpages_released",
                c.superpages_released,
            ),
            (
                "data/selfballoon/superpages_populated",
                c.superpages_populated,
            ),
            (
                "data/selfballoon/superpage_fallbacks",
                c.superpage_fallbacks,
            ),
            (
                "data/selfballoon/quarantined_extents",
                c.quarantined_extents,
            ),
            (
                "data/selfballoon/target_missed_events",
                self.counters.target_missed_events,
            ),
            (
                "data/selfballoon/nested_irqs",
                trap::NESTED_IRQS.load(Ordering::Relaxed),
            ),
            (
                "data/selfballoon/masked_irqs",
                trap::MASKED_IRQS.load(Ordering::Relaxed),
            ),
        ] {
            extra.push((key, value.to_string()));
        }
        extra.extend(self.swap_status());
        extra.extend(self.cleancache_status());
        if let Some(e) = self.engine.as_ref() {
            let s = e.status();
            extra.push(("data/selfballoon/workload_phase", s.phase.to_string()));
            extra.push((
                "data/selfballoon/workload_reserved",
                pages_to_kib(s.reserved_pages).to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_resident",
                pages_to_kib(s.resident_pages).to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_verified",
                s.verified_pages.to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_mismatches",
                s.mismatches.to_string(),
            ));
        }
        extra
    }

    /// The swap tier's keys: frontswap, the pool, the pager's counters,
    /// and the floor when a target is out of reach.
    pub(super) fn swap_status(&self) -> Vec<(&'static str, String)> {
        let f = SwapDevice::figures(&self.swap);
        let p = self.pager.stats();
        let c = self.pager.counts();
        let values: [String; 21] = [
            SwapDevice::backend(&self.swap).to_string(),
            f.pages.to_string(),
            pages_to_kib(f.pages).to_string(),
            f.tmem_pages.to_string(),
            f.pool_pages.to_string(),
            f.tmem_refused.to_string(),
            f.tmem_closed.to_string(),
            f.pool_bytes.to_string(),
            f.pool_frames.to_string(),
            f.pool_ratio_pct.unwrap_or(0).to_string(),
            f.pool_max_frames.to_string(),
            p.pageouts.to_string(),
            p.pageins.to_string(),
            p.page_faults.to_string(),
            p.swap_refused.to_string(),
            p.lost_pages.saturating_add(f.lost).to_string(),
            c.resident_pages.to_string(),
            c.refused_pages.to_string(),
            crate::mm::paging::CR2_FIXUPS
                .load(Ordering::Relaxed)
                .to_string(),
            ((self.heap_free_bytes)() / 1024).to_string(),
            self.swap_floor_pages.map_or(0, pages_to_kib).to_string(),
        ];
        SWAP_STATUS_KEYS.into_iter().zip(values).collect()
    }

    /// Writes the status; values unchanged since the last write cost
    /// nothing. A failed write is counted and retried next time.
    pub(super) fn publish(&mut self) {
        let status = self.balloon.status(self.frames.counts());
        let extra = self.extra_status();
        let Some(xs) = self.store.as_mut() else {
            return;
        };
        let mut store = Dedup {
            inner: xs,
            written: &mut self.written,
        };
        let mut errors = 0u64;
        if balloon::publish(&mut store, &status).is_err() {
            errors += 1;
        }
        if let Some(glue) = self.glue.as_ref() {
            if glue.publish(&mut store, &self.controller).is_err() {
                errors += 1;
            }
        }
        for (p, v) in extra {
            if store.write(p, &v).is_err() {
                errors += 1;
            }
        }
        if errors > 0 {
            self.counters.publish_errors = self.counters.publish_errors.saturating_add(errors);
            log::debug!("status publish: {errors} groups failed");
        }
    }

    /// Logs the loop's state: what a post-mortem of a stuck or deaf guest
    /// needs (is the loop turning, is it waiting for the right things, what
    /// does it believe the targets are).
    pub fn dump(&mut self, deadline_ns: u64) {
        let now = self.clock.now_ns();
        let rel = |t: Option<u64>| match t {
            Some(t) => format!("{}ms", (t.saturating_sub(now) / 1_000_000)),
            None => "-".to_string(),
        };
        let st = self.balloon.status(self.frames.counts());
        log::info!(
            "debug: uptime {} ms, {} loops, {} upcalls ({} nested, {} with IF clear, {} spurious), \
             {} target events ({} missed); next: wait {} tick {} balloon {} engine {} status {}",
            now / 1_000_000,
            self.counters.turns,
            events::UPCALLS.load(Ordering::Relaxed),
            trap::NESTED_IRQS.load(Ordering::Relaxed),
            trap::MASKED_IRQS.load(Ordering::Relaxed),
            trap::SPURIOUS_IRQS.load(Ordering::Relaxed),
            self.counters.target_events,
            self.counters.target_missed_events,
            rel(Some(deadline_ns)),
            rel(self.due.tick_ns),
            rel(self.due.balloon_ns),
            rel(self.due.engine_ns),
            rel(Some(self.due.status_ns)),
        );
        log::info!(
            "debug: balloon current {} KiB target {} KiB toolstack {} KiB requested {:?} \
             floor {} KiB free {} KiB limit {:?} error {:?} backoff {} s",
            st.current_kib,
            st.target_kib,
            st.toolstack_target_kib,
            st.requested_target_kib,
            st.floor_kib,
            st.free_kib,
            st.limit,
            st.last_error,
            st.backoff_s
        );
        if let Some(xs) = self.store.as_mut() {
            let queued = xs.queued_watch_events();
            let target = match xs.read("memory/target") {
                Ok(v) => alloc::format!("'{}'", untrusted(&v)),
                Err(e) => alloc::format!("{e}"),
            };
            log::info!(
                "debug: xenstore queued events {queued} pending input {} broken {} \
                 memory/target {target}",
                xs.has_pending_input(),
                xs.is_broken(),
            );
        }
        if let Some(e) = self.engine.as_ref() {
            log::info!("debug: workload {:?}", e.status());
        }
        log::info!(
            "debug: pager {:?} {:?} swap {:?} floor {:?}",
            self.pager.counts(),
            self.pager.stats(),
            SwapDevice::figures(&self.swap),
            self.swap_floor_pages
        );
    }
}
