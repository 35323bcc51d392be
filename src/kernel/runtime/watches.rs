//! What dom0 tells the guest through xenstore: the toolstack's
//! `memory/target`, the tunables under `memory/selfballoon/`, and a
//! workload program in `memory/workload`.
//!
//! Watch events only say "look again": each handler re-reads the value,
//! so a duplicated or late event is harmless, and a lost one is made up
//! for by the 10 s re-read of `memory/target` ([`super::TARGET_RECHECK_NS`]).
//! Every value dom0 wrote is sanitised before it reaches the log. A change
//! takes effect at once: a new toolstack target, turning self-ballooning
//! off or on, or a new mode does not wait for the controller's timer.

use alloc::format;
use alloc::string::String;

use super::{parse_workload, Env, Runtime, WatchStore, TARGET_RECHECK_NS};
use crate::parse::untrusted;
use crate::selfballoon::tunables::TimerAction;
use crate::selfballoon::xs::XsGlue;
use crate::workload::engine::Engine;
use crate::xen::xenstore::Store;

/// Watch tokens.
pub(super) const TOKEN_TARGET: &str = "target";
pub(super) const TOKEN_TUNABLES: &str = "tunables";
pub(super) const TOKEN_WORKLOAD: &str = "workload";

impl<E: Env> Runtime<'_, E> {
    /// Reads the toolstack's view (static-max, target) and registers the
    /// watches. Without a home path the guest runs without xenstore.
    pub(super) fn init_store(&mut self) {
        let Some(xs) = self.store.as_mut() else {
            return;
        };
        let home = match xs.home_path() {
            Ok(h) => h,
            Err(e) => {
                log::warn!("xenstore: no home path: {e}");
                return;
            }
        };
        match xs.read_u64("memory/static-max") {
            Ok(kib) => self.balloon.set_static_max_kib(Some(kib)),
            Err(e) => log::warn!("memory/static-max: {e}"),
        }
        if let Err(e) = xs.watch(&format!("{home}/memory/target"), TOKEN_TARGET) {
            log::warn!("watch memory/target: {e}");
        }
        let glue = XsGlue::new(
            &format!("{home}/memory/selfballoon"),
            &format!("{home}/data/selfballoon"),
        );
        if let Err(e) = glue.watch(xs, TOKEN_TUNABLES) {
            log::warn!("watch tunables: {e}");
        }
        if let Err(e) = xs.watch(&format!("{home}/memory/workload"), TOKEN_WORKLOAD) {
            log::warn!("watch workload: {e}");
        }
        self.glue = Some(glue);
        self.read_target();
    }

    /// Reads `memory/target` and applies it if it changed.
    fn read_target(&mut self) -> bool {
        let Some(xs) = self.store.as_mut() else {
            return false;
        };
        match xs.read("memory/target") {
            Ok(v) => self.apply_target_value(v),
            Err(e) => {
                log::warn!("memory/target: {e}");
                false
            }
        }
    }

    /// Applies a `memory/target` value unless it is the one last seen.
    /// Returns whether it was new.
    fn apply_target_value(&mut self, v: String) -> bool {
        if self.target_seen.as_deref() == Some(v.as_str()) {
            return false;
        }
        match self.balloon.apply_toolstack_target(&v) {
            Ok(kib) => {
                log::info!("toolstack target {kib} KiB");
                // As Linux's balloon watch does: the new target is the
                // balloon's target now. The controller's next tick picks
                // its own again (capped at this one).
                self.balloon.set_requested_target_pages(None);
                self.balloon.kick();
                self.due.balloon_ns = Some(0);
            }
            Err(e) => self.warn_rejected(format_args!(
                "memory/target '{}' rejected: {e}",
                untrusted(&v)
            )),
        }
        // A rejected value is remembered too: it is re-applied (and
        // re-reported) only when it changes.
        self.target_seen = Some(v);
        true
    }

    /// Reads `memory/target` without a watch event (see
    /// [`TARGET_RECHECK_NS`]) and applies it if it changed.
    pub(super) fn recheck_target(&mut self, now: u64) {
        if now < self.due.target_check_ns || self.glue.is_none() {
            return;
        }
        self.due.target_check_ns = now.saturating_add(TARGET_RECHECK_NS);
        let Some(xs) = self.store.as_mut() else {
            return;
        };
        match xs.read("memory/target") {
            Ok(v) if self.target_seen.as_deref() != Some(v.as_str()) => {
                self.counters.target_missed_events =
                    self.counters.target_missed_events.saturating_add(1);
                log::warn!(
                    "memory/target is '{}' but no watch event said so ({} times); applying it",
                    untrusted(&v),
                    self.counters.target_missed_events
                );
                self.apply_target_value(v);
            }
            Ok(_) => {}
            Err(e) => log::debug!("memory/target re-read: {e}"),
        }
    }

    /// Takes in xenstore traffic and handles the watch events queued.
    pub(super) fn poll_store(&mut self, now: u64) {
        let Some(xs) = self.store.as_mut() else {
            return;
        };
        if let Err(e) = xs.poll() {
            log::warn!("xenstore poll: {e}");
        }
        if xs
            .take_watch_events(TOKEN_TARGET)
            .is_ok_and(|v| !v.is_empty())
        {
            self.counters.target_events = self.counters.target_events.saturating_add(1);
            self.read_target();
        }
        let tunables = self.store.as_mut().is_some_and(|xs| {
            xs.take_watch_events(TOKEN_TUNABLES)
                .is_ok_and(|v| !v.is_empty())
        });
        if tunables {
            self.on_tunables(now);
        }
        let workload = self.store.as_mut().is_some_and(|xs| {
            xs.take_watch_events(TOKEN_WORKLOAD)
                .is_ok_and(|v| !v.is_empty())
        });
        if workload {
            self.on_workload();
        }
    }

    /// Re-reads the tunables and makes what changed take effect now.
    fn on_tunables(&mut self, now: u64) {
        let (Some(xs), Some(glue)) = (self.store.as_mut(), self.glue.as_mut()) else {
            return;
        };
        let mode_before = self.controller.tunables().mode;
        let r = glue.on_watch(xs, &mut self.controller);
        if r.applied + r.rejected > 0 {
            log::info!("tunables: {} applied, {} rejected", r.applied, r.rejected);
        }
        if let Some(rej) = self.controller.last_rejection().filter(|_| r.rejected > 0) {
            let msg = alloc::format!(
                "tunable {} = '{}' rejected: {:?}",
                untrusted(&rej.key),
                untrusted(&rej.value),
                rej.reason
            );
            self.warn_rejected(format_args!("{msg}"));
        }
        if r.read_errors > 0 {
            log::warn!(
                "tunables: {} reads failed ({:?})",
                r.read_errors,
                r.last_read_error
            );
        }
        let running = self.controller.tunables().selfballooning;
        match r.timer {
            TimerAction::Start => {
                self.due.tick_ns = Some(now.saturating_add(self.interval_ns()));
            }
            TimerAction::Stop => {
                self.due.tick_ns = None;
            }
            TimerAction::Keep if r.interval_changed && self.due.tick_ns.is_some() => {
                self.due.tick_ns = Some(now.saturating_add(self.interval_ns()));
            }
            TimerAction::Keep => {}
        }
        if !running && self.balloon.requested_target_pages().is_some() {
            // Self-ballooning is off: the toolstack's target alone rules,
            // at once (not at a tick that will never come).
            log::info!("selfballooning off: following the toolstack target");
            self.balloon.set_requested_target_pages(None);
            self.due.balloon_ns = Some(0);
        }
        if running && self.controller.tunables().mode != mode_before && self.due.tick_ns.is_some() {
            // A new policy decides now, not an interval later.
            self.due.tick_ns = Some(now);
        }
        self.due.status_ns = 0;
    }

    /// Starts the program in `memory/workload`, if it parses.
    fn on_workload(&mut self) {
        let Some(xs) = self.store.as_mut() else {
            return;
        };
        match xs.read("memory/workload") {
            Ok(spec) if !spec.is_empty() => match parse_workload(&spec) {
                Ok(e) => {
                    log::info!("workload from xenstore: {}", untrusted(&spec));
                    self.replace_engine(e);
                }
                Err(e) => self.warn_rejected(format_args!(
                    "memory/workload '{}' rejected: {e}",
                    untrusted(&spec)
                )),
            },
            Ok(_) => {}
            Err(e) => log::debug!("memory/workload: {e}"),
        }
    }

    fn replace_engine(&mut self, new: Engine) {
        if let Some(old) = self.engine.take() {
            let s = old.status();
            // Cache pages are the engine's too (not committed, but held).
            if s.reserved_pages > 0 || s.cache_pages > 0 {
                // Keep the old program's frames: an engine owns what it
                // reserved; dropping it would leak them. Run the new one
                // only once the old has released everything.
                log::warn!(
                    "workload: previous program still holds {} pages; keeping it",
                    s.reserved_pages.saturating_add(s.cache_pages)
                );
                self.engine = Some(old);
                return;
            }
        }
        self.engine = Some(new);
        self.due.engine_ns = Some(0);
    }
}
