//! Glue between the controller and xenstore: reads the tunables dom0
//! writes under `/local/domain/<domid>/memory/selfballoon/` when the watch
//! fires, and publishes the status under `data/selfballoon/`.
//!
//! The guest only reads under `memory/` (dom0-owned, read-only for us) and
//! only writes under the status directory.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use super::controller::Controller;
use super::tunables::{Key, TimerAction};
use crate::xen::errno::Errno;
use crate::xen::xenstore::{Store, XsError};

/// What a watch event changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchReport {
    /// Values accepted (changed or not).
    pub applied: u32,
    /// Values refused (see [`Controller::last_rejection`]).
    pub rejected: u32,
    /// Keys whose read failed with something other than ENOENT.
    pub read_errors: u32,
    /// The last read error, for the log.
    pub last_read_error: Option<XsError>,
    /// What to do with the tick timer, from the state before and after.
    pub timer: TimerAction,
    /// `selfballoon_interval` changed.
    pub interval_changed: bool,
}

/// The tunables/status glue. Generic over [`Store`] per call, so the
/// kernel can share one xenstore client with the balloon driver.
#[derive(Clone, Debug)]
pub struct XsGlue {
    tunables_dir: String,
    status_dir: String,
    /// Raw value last seen per key, so an unchanged (or unchanged bad)
    /// value is not re-applied or re-reported on every watch event.
    seen: BTreeMap<Key, String>,
}

fn with_slash(dir: &str) -> String {
    if dir.ends_with('/') {
        String::from(dir)
    } else {
        format!("{dir}/")
    }
}

impl XsGlue {
    /// `tunables_dir`: `/local/domain/<domid>/memory/selfballoon`;
    /// `status_dir`: e.g. `/local/domain/<domid>/data/selfballoon`.
    /// A trailing `/` is optional.
    pub fn new(tunables_dir: &str, status_dir: &str) -> Self {
        XsGlue {
            tunables_dir: with_slash(tunables_dir),
            status_dir: with_slash(status_dir),
            seen: BTreeMap::new(),
        }
    }

    /// The watched directory (with trailing `/`).
    pub fn tunables_dir(&self) -> &str {
        &self.tunables_dir
    }

    /// Registers a watch on the tunables directory (the watch fires for
    /// every key below it).
    pub fn watch<S: Store + ?Sized>(&self, store: &mut S, token: &str) -> Result<(), XsError> {
        store.watch(self.tunables_dir.trim_end_matches('/'), token)
    }

    /// Reads every tunable and applies the ones whose raw value changed
    /// since the last event. Missing keys (ENOENT) are skipped: the value
    /// in force stays.
    pub fn on_watch<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        ctl: &mut Controller,
    ) -> WatchReport {
        let was_running = ctl.tunables().timer_wanted();
        let old_interval = ctl.tunables().interval_s;
        let mut r = WatchReport {
            applied: 0,
            rejected: 0,
            read_errors: 0,
            last_read_error: None,
            timer: TimerAction::Keep,
            interval_changed: false,
        };
        for key in Key::ALL {
            let path = format!("{}{}", self.tunables_dir, key.name());
            match store.read(&path) {
                Ok(value) => {
                    if self.seen.get(&key) == Some(&value) {
                        continue;
                    }
                    match ctl.apply(key.name(), &value) {
                        Ok(_) => r.applied = r.applied.saturating_add(1),
                        Err(_) => r.rejected = r.rejected.saturating_add(1),
                    }
                    self.seen.insert(key, value);
                }
                Err(XsError::Remote(Errno::ENOENT)) => {
                    self.seen.remove(&key);
                }
                Err(e) => {
                    r.read_errors = r.read_errors.saturating_add(1);
                    r.last_read_error = Some(e);
                }
            }
        }
        r.timer = match (was_running, ctl.tunables().timer_wanted()) {
            (false, true) => TimerAction::Start,
            (true, false) => TimerAction::Stop,
            _ => TimerAction::Keep,
        };
        r.interval_changed = old_interval != ctl.tunables().interval_s;
        r
    }

    /// Writes [`Controller::status`] under the status directory. Tries
    /// every key; returns the first error.
    pub fn publish<S: Store + ?Sized>(
        &self,
        store: &mut S,
        ctl: &Controller,
    ) -> Result<(), XsError> {
        let mut first_err = None;
        for (k, v) in ctl.status() {
            let path = format!("{}{}", self.status_dir, k);
            if let Err(e) = store.write(&path, &v) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfballoon::mode::Mode;
    use crate::selfballoon::policy::TickInput;
    use crate::selfballoon::tunables::{RejectReason, Tunables};
    use alloc::string::ToString;

    const TUN: &str = "/local/domain/3/memory/selfballoon";
    const STAT: &str = "/local/domain/3/data/selfballoon";

    use crate::testing::fake_store::FakeStore;

    trait XsFake {
        fn set(&mut self, key: &str, v: &str);
        fn status(&self, key: &str) -> Option<&str>;
    }

    impl XsFake for FakeStore {
        fn set(&mut self, key: &str, v: &str) {
            self.nodes.insert(format!("{TUN}/{key}"), v.to_string());
        }
        fn status(&self, key: &str) -> Option<&str> {
            self.nodes.get(&format!("{STAT}/{key}")).map(String::as_str)
        }
    }

    fn setup() -> (FakeStore, XsGlue, Controller) {
        (
            FakeStore {
                read_only: Some("/memory/"),
                ..FakeStore::default()
            },
            XsGlue::new(TUN, &format!("{STAT}/")),
            Controller::new(Tunables::default()),
        )
    }

    #[test]
    fn watch_registers_directory() {
        let (mut st, g, _) = setup();
        g.watch(&mut st, "sb").unwrap();
        assert_eq!(st.watches, [(TUN.to_string(), "sb".to_string())]);
        assert_eq!(g.tunables_dir(), "/local/domain/3/memory/selfballoon/");
    }

    #[test]
    fn empty_directory_changes_nothing() {
        let (mut st, mut g, mut c) = setup();
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.applied, r.rejected, r.read_errors), (0, 0, 0));
        assert_eq!(*c.tunables(), Tunables::default());
    }

    #[test]
    fn applies_good_rejects_bad_and_publishes() {
        let (mut st, mut g, mut c) = setup();
        st.set("selfballoon_downhysteresis", "2");
        st.set("mode", "2011");
        st.set("selfballoon_interval", "0");
        st.set("selfballoon_uphysteresis", "1180591620717411303424");
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.applied, r.rejected), (2, 2));
        assert_eq!(c.tunables().downhysteresis.get(), 2);
        assert_eq!(c.tunables().mode, Mode::Seed2011);
        assert_eq!(c.tunables().interval_s.get(), 5);
        assert!(!r.interval_changed);
        // Keys are read in Key::ALL order, so the uphysteresis one
        // (read after interval) is the last rejection.
        assert_eq!(
            c.last_rejection().map(|r| r.reason),
            Some(RejectReason::OutOfRange)
        );

        c.tick(TickInput {
            committed_pages: 1,
            current_pages: 100,
            totalram_pages: 90,
            ..TickInput::default()
        });
        g.publish(&mut st, &c).unwrap();
        assert_eq!(st.status("mode"), Some("2011"));
        assert_eq!(st.status("selfballoon_downhysteresis"), Some("2"));
        assert_eq!(st.status("selfballoon_interval"), Some("5"));
        assert_eq!(
            st.status("last_rejection_key"),
            Some("selfballoon_uphysteresis")
        );
        assert_eq!(st.status("last_rejection_reason"), Some("out-of-range"));
        // goal = 1 + 100 - 90 = 11; tgt = 100 - 89/2 = 56 -> 224 KiB
        assert_eq!(st.status("requested_target_kib"), Some("224"));
        assert_eq!(st.status("ticks"), Some("1"));

        // The same values again: nothing re-applied, nothing re-rejected.
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.applied, r.rejected), (0, 0));
        // A fixed value is applied.
        st.set("selfballoon_interval", "10\n");
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.applied, r.rejected), (1, 0));
        assert!(r.interval_changed);
        assert_eq!(c.tunables().interval_s.get(), 10);
    }

    #[test]
    fn enabling_and_disabling_drive_the_timer() {
        let (mut st, mut g, _) = setup();
        let mut c = Controller::new(Tunables::new(false));
        st.set("selfballooning", "1");
        assert_eq!(g.on_watch(&mut st, &mut c).timer, TimerAction::Start);
        st.set("selfballooning", "0");
        assert_eq!(g.on_watch(&mut st, &mut c).timer, TimerAction::Stop);
        st.set("selfballooning", "2");
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.timer, r.rejected), (TimerAction::Keep, 1));
        assert!(!c.tunables().selfballooning);
    }

    #[test]
    fn removed_key_can_be_rewritten_with_same_value() {
        let (mut st, mut g, mut c) = setup();
        st.set("selfballoon_downhysteresis", "0");
        assert_eq!(g.on_watch(&mut st, &mut c).rejected, 1);
        st.nodes
            .remove(&format!("{TUN}/selfballoon_downhysteresis"));
        assert_eq!(g.on_watch(&mut st, &mut c).rejected, 0);
        st.set("selfballoon_downhysteresis", "0");
        assert_eq!(g.on_watch(&mut st, &mut c).rejected, 1);
    }

    #[test]
    fn read_errors_are_counted_not_fatal() {
        let (mut st, mut g, mut c) = setup();
        st.set("selfballoon_downhysteresis", "3");
        st.fail_read = Some((format!("{TUN}/mode"), XsError::Timeout));
        let r = g.on_watch(&mut st, &mut c);
        assert_eq!((r.applied, r.read_errors), (1, 1));
        assert_eq!(r.last_read_error, Some(XsError::Timeout));
        assert_eq!(c.tunables().downhysteresis.get(), 3);
    }

    #[test]
    fn publish_reports_write_failure() {
        let (mut st, g, c) = setup();
        st.fail_writes = true;
        assert_eq!(g.publish(&mut st, &c), Err(XsError::Remote(Errno::EACCES)));
    }
}
