//! Tunables as the guest really reads them (`src/selfballoon/xs.rs`):
//! dom0 writes, removes or makes unreadable any key under the tunables
//! directory, the watch fires, `XsGlue::on_watch` reads every key and
//! applies the changed ones to the controller; then the status is
//! published.
//!
//! Properties: the report counts at most one outcome per key; its timer
//! action and interval flag describe what happened to the controller; a
//! second event with nothing changed applies and rejects nothing and
//! changes nothing; each tunable in force is the last value dom0 wrote
//! that the parser accepts (or the default); the status written back goes
//! only under the status directory and carries no control character.

use std::collections::BTreeMap;

use selfballoon::selfballoon::tunables::{Key, TimerAction, Tunables, MAX_REPORTED_LEN};
use selfballoon::selfballoon::{Controller, XsGlue};
use selfballoon::xen::errno::Errno;
use selfballoon::xen::xenstore::{Store, XsError};

use crate::Input;

const TUNABLES: &str = "/local/domain/7/memory/selfballoon";
const STATUS: &str = "/local/domain/7/data/selfballoon/";

const VALUES: [&str; 8] = ["0", "1", "5", "adaptive", "linux", "2011", "300\n", "x"];

#[derive(Default)]
struct Dom0 {
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, XsError>,
    writes: Vec<(String, String)>,
}

impl Store for Dom0 {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        if let Some(e) = self.errors.get(path) {
            return Err(*e);
        }
        self.values
            .get(path)
            .cloned()
            .ok_or(XsError::Remote(Errno::ENOENT))
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.writes.push((path.into(), value.into()));
        Ok(())
    }
    fn directory(&mut self, _: &str) -> Result<Vec<String>, XsError> {
        Ok(Vec::new())
    }
    fn rm(&mut self, _: &str) -> Result<(), XsError> {
        Ok(())
    }
    fn watch(&mut self, _: &str, _: &str) -> Result<(), XsError> {
        Ok(())
    }
    fn unwatch(&mut self, _: &str, _: &str) -> Result<(), XsError> {
        Ok(())
    }
}

fn path(k: Key) -> String {
    format!("{TUNABLES}/{}", k.name())
}

pub fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut ctl = Controller::new(Tunables::new(inp.bool()));
    let mut glue = XsGlue::new(TUNABLES, STATUS);
    let mut dom0 = Dom0::default();
    // The model: per key, the last value dom0 wrote that was accepted.
    let mut model = *ctl.tunables();
    let paths: Vec<String> = Key::ALL.iter().map(|&k| path(k)).collect();
    for _ in 0..6 {
        if inp.is_empty() {
            break;
        }
        // dom0's changes before this event.
        for _ in 0..(inp.u8() % 8) {
            let sel = inp.u8();
            let p = paths[usize::from(sel) % Key::ALL.len()].clone();
            match sel / 32 {
                0 => {
                    dom0.values.remove(&p);
                }
                1 => {
                    dom0.errors.insert(p, XsError::Timeout);
                }
                2 => {
                    dom0.errors.remove(&p);
                }
                3 | 4 => {
                    let v = VALUES[usize::from(inp.u8()) % VALUES.len()];
                    dom0.values.insert(p, v.into());
                }
                _ => {
                    let v = inp.string();
                    dom0.values.insert(p, v);
                }
            }
        }
        let before = *ctl.tunables();
        let r = glue.on_watch(&mut dom0, &mut ctl);
        let after = *ctl.tunables();
        let outcomes = r.applied + r.rejected + r.read_errors;
        assert!(outcomes as usize <= Key::ALL.len());
        assert_eq!(r.read_errors > 0, r.last_read_error.is_some());
        let want = match (before.timer_wanted(), after.timer_wanted()) {
            (false, true) => TimerAction::Start,
            (true, false) => TimerAction::Stop,
            _ => TimerAction::Keep,
        };
        assert_eq!(r.timer, want);
        assert_eq!(r.interval_changed, before.interval_s != after.interval_s);

        // The model: apply, in key order, every readable value (applying
        // an unchanged value again is a no-op, so no need to track which
        // changed).
        for (k, p) in Key::ALL.iter().zip(&paths) {
            if dom0.errors.contains_key(p) {
                continue;
            }
            if let Some(v) = dom0.values.get(p) {
                let _ = model.apply(k.name(), v);
            }
        }
        assert_eq!(
            after, model,
            "the tunables in force are not dom0's last good values"
        );

        // Nothing changed: nothing is applied or rejected again.
        let again = glue.on_watch(&mut dom0, &mut ctl);
        assert_eq!((again.applied, again.rejected), (0, 0));
        assert_eq!(*ctl.tunables(), after);

        dom0.writes.clear();
        glue.publish(&mut dom0, &ctl).unwrap();
        for (p, v) in &dom0.writes {
            let key = p
                .strip_prefix(STATUS)
                .expect("status outside its directory");
            assert!(!key.is_empty() && !key.contains('/'));
            assert!(!v.chars().any(char::is_control), "{key}={v:?}");
            if key.starts_with("last_rejection") {
                assert!(v.len() <= MAX_REPORTED_LEN);
            }
        }
    }
}
