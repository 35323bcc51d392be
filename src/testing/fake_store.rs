//! `FakeStore`: one in-memory xenstore for every host test, with the faults
//! a real xenstored (or a hostile dom0) can produce: reads or writes that
//! fail on a chosen path, a store that vanishes, dom0-owned paths the guest
//! may not write, and watch events that are lost, duplicated or late.
//!
//! Paths without a leading `/` are relative to [`FakeStore::home`], as
//! xenstored resolves them for a guest; with an empty `home` they are kept
//! as written (tests that only care about key names).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::xen::errno::Errno;
use crate::xen::xenstore::{Store, XsError};

/// An in-memory xenstore with injectable faults.
#[derive(Debug, Default)]
pub struct FakeStore {
    /// Node values by absolute (or, with no `home`, literal) path.
    pub nodes: BTreeMap<String, String>,
    /// Registered watches: (path, token).
    pub watches: Vec<(String, String)>,
    /// The guest's home, e.g. `/local/domain/7`; empty for none.
    pub home: String,
    /// Reads of exactly this path fail with this error.
    pub fail_read: Option<(String, XsError)>,
    /// Writes of exactly this path fail with EACCES.
    pub fail_write_path: Option<String>,
    /// Every write fails with EACCES.
    pub fail_writes: bool,
    /// Guest writes to paths containing this fail with EACCES (dom0-owned
    /// directories such as `/memory/`).
    pub read_only: Option<&'static str>,
    /// Every operation fails with [`XsError::Unavailable`].
    pub vanished: bool,
    /// Watch events not yet taken: (token, path), in order.
    pub events: VecDeque<(String, String)>,
    /// Changes made by [`FakeStore::dom0_write`] raise no event.
    pub drop_events: bool,
    /// Guest operations performed: reads and writes.
    pub reads: u64,
    pub writes: u64,
}

impl FakeStore {
    /// A store whose relative paths resolve below `home`.
    pub fn with_home(home: &str) -> Self {
        FakeStore {
            home: home.to_string(),
            ..Default::default()
        }
    }

    /// The absolute form of `path`.
    pub fn abs(&self, path: &str) -> String {
        if path.starts_with('/') || self.home.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.home)
        }
    }

    /// The value at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.nodes.get(&self.abs(path)).map(String::as_str)
    }

    /// dom0 writes `value` at `path`: no permission check, and every watch
    /// on `path` or a parent of it fires (unless events are dropped).
    pub fn dom0_write(&mut self, path: &str, value: &str) {
        let path = self.abs(path);
        self.nodes.insert(path.clone(), value.to_string());
        if !self.drop_events {
            self.fire(&path);
        }
    }

    /// Queues an event for every watch covering `path`, changed or not (a
    /// duplicate or spurious event).
    pub fn fire(&mut self, path: &str) {
        let path = self.abs(path);
        for (w, token) in &self.watches {
            let covers = path == *w
                || path
                    .strip_prefix(w.as_str())
                    .is_some_and(|rest| rest.starts_with('/'));
            if covers {
                self.events.push_back((token.clone(), path.clone()));
            }
        }
    }

    /// Takes the queued events for `token`, oldest first.
    pub fn take_events(&mut self, token: &str) -> Result<Vec<String>, XsError> {
        if self.vanished {
            return Err(XsError::Unavailable);
        }
        let mut out = Vec::new();
        self.events.retain(|(t, p)| {
            if t == token {
                out.push(p.clone());
                false
            } else {
                true
            }
        });
        Ok(out)
    }

    fn check_alive(&self) -> Result<(), XsError> {
        if self.vanished {
            Err(XsError::Unavailable)
        } else {
            Ok(())
        }
    }
}

impl Store for FakeStore {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.check_alive()?;
        self.reads += 1;
        if let Some((p, e)) = &self.fail_read {
            if *p == path || *p == self.abs(path) {
                return Err(*e);
            }
        }
        self.nodes
            .get(&self.abs(path))
            .cloned()
            .ok_or(XsError::Remote(Errno::ENOENT))
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.check_alive()?;
        self.writes += 1;
        let abs = self.abs(path);
        let refused = self.fail_writes
            || self
                .fail_write_path
                .as_deref()
                .is_some_and(|p| p == path || p == abs)
            || self.read_only.is_some_and(|ro| abs.contains(ro));
        if refused {
            return Err(XsError::Remote(Errno::EACCES));
        }
        self.nodes.insert(abs.clone(), value.to_string());
        self.fire(&abs);
        Ok(())
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.check_alive()?;
        let dir = format!("{}/", self.abs(path).trim_end_matches('/'));
        let mut out: Vec<String> = self
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(dir.as_str()))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        out.dedup();
        Ok(out)
    }

    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.check_alive()?;
        let abs = self.abs(path);
        self.nodes.remove(&abs);
        Ok(())
    }

    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.check_alive()?;
        let abs = self.abs(path);
        self.watches.push((abs.clone(), token.to_string()));
        // xenstored fires every new watch once, at once.
        self.events.push_back((token.to_string(), abs));
        Ok(())
    }

    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.check_alive()?;
        let abs = self.abs(path);
        self.watches.retain(|(p, t)| !(*p == abs && t == token));
        Ok(())
    }
}
