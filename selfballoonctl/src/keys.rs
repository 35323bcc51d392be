//! The keys `get` and `set` know, where they live in a domain's xenstore
//! home, and their validation: the guest's own parsers from the
//! `selfballoon` crate, so a value this tool writes is one the guest
//! accepts, and a value it refuses is one the guest would refuse.

use selfballoon::balloon::parse_target_kib;
use selfballoon::selfballoon::{Key, Tunables};
use selfballoon::workload::Spec;

use crate::error::Error;

/// The guest reads its tunables here (relative to its home).
pub const TUNABLES_DIR: &str = "memory/selfballoon";
/// The guest publishes its status here, including every tunable in force.
pub const STATUS_DIR: &str = "data/selfballoon";

/// A key of `get`/`set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlKey {
    /// A controller tunable, `memory/selfballoon/<name>`.
    Tunable(Key),
    /// The toolstack's target, `memory/target` (KiB), as `xl mem-set`
    /// writes it (without the maxmem change `xl mem-set` also makes).
    Target,
    /// A workload program, `memory/workload`.
    Workload,
}

impl CtlKey {
    /// Looks a key up: a tunable's name (`selfballoon_interval`, `mode`,
    /// ...), `memory/target` or `memory/workload` (also `target`,
    /// `workload`, and a tunable as `memory/selfballoon/<name>`).
    pub fn from_name(name: &str) -> Option<CtlKey> {
        match name {
            "memory/target" | "target" => return Some(CtlKey::Target),
            "memory/workload" | "workload" => return Some(CtlKey::Workload),
            _ => {}
        }
        let bare = name
            .strip_prefix(TUNABLES_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(name);
        Key::from_name(bare).map(CtlKey::Tunable)
    }

    /// The key's canonical name.
    pub fn name(self) -> &'static str {
        match self {
            CtlKey::Tunable(k) => k.name(),
            CtlKey::Target => "memory/target",
            CtlKey::Workload => "memory/workload",
        }
    }

    /// Where dom0 writes it, relative to the domain's home.
    pub fn write_path(self) -> String {
        match self {
            CtlKey::Tunable(k) => format!("{TUNABLES_DIR}/{}", k.name()),
            CtlKey::Target | CtlKey::Workload => self.name().to_string(),
        }
    }

    /// Where the guest publishes the value in force, if it does.
    pub fn status_path(self) -> Option<String> {
        match self {
            CtlKey::Tunable(k) => Some(format!("{STATUS_DIR}/{}", k.name())),
            CtlKey::Target | CtlKey::Workload => None,
        }
    }

    /// Checks `value` with the guest's parser for this key. `Ok` holds the
    /// value as the guest will publish it once applied (tunables only:
    /// `007` is in force as `7`).
    pub fn validate(self, value: &str) -> Result<Option<String>, Error> {
        let rejected = |reason: String| Error::Rejected {
            key: self.name().to_string(),
            value: value.to_string(),
            reason,
        };
        match self {
            CtlKey::Tunable(k) => {
                let mut t = Tunables::default();
                match t.apply(k.name(), value) {
                    Ok(_) => Ok(Some(t.value_string(k))),
                    Err(r) => Err(rejected(r.reason.name().to_string())),
                }
            }
            CtlKey::Target => parse_target_kib(value)
                .map(|_| None)
                .map_err(|e| rejected(e.to_string())),
            CtlKey::Workload => Spec::parse(value)
                .map(|_| None)
                .map_err(|e| rejected(e.to_string())),
        }
    }
}

/// Parses a key name or fails with [`Error::UnknownKey`].
pub fn parse(name: &str) -> Result<CtlKey, Error> {
    CtlKey::from_name(name).ok_or_else(|| Error::UnknownKey(name.to_string()))
}

/// Every key name `get`/`set` accept (canonical forms).
pub fn known_names() -> Vec<&'static str> {
    Key::ALL
        .iter()
        .map(|k| k.name())
        .chain(["memory/target", "memory/workload"])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[test]
    fn names_and_paths() {
        for k in Key::ALL {
            let c = CtlKey::from_name(k.name()).unwrap();
            assert_eq!(c, CtlKey::Tunable(k));
            assert_eq!(
                CtlKey::from_name(&format!("memory/selfballoon/{}", k.name())),
                Some(c)
            );
            assert_eq!(c.write_path(), format!("memory/selfballoon/{}", k.name()));
            assert_eq!(
                c.status_path(),
                Some(format!("data/selfballoon/{}", k.name()))
            );
        }
        assert_eq!(CtlKey::from_name("target"), Some(CtlKey::Target));
        assert_eq!(CtlKey::Target.write_path(), "memory/target");
        assert_eq!(CtlKey::Target.status_path(), None);
        assert_eq!(CtlKey::from_name("memory/workload"), Some(CtlKey::Workload));
        for bad in [
            "",
            "interval",
            "Mode",
            "mode ",
            "memory/selfballoon/",
            "data/selfballoon/mode",
        ] {
            assert_eq!(CtlKey::from_name(bad), None, "{bad:?}");
        }
        let e = parse("nope").unwrap_err();
        assert_eq!(e.exit_code(), exit::UNKNOWN_KEY);
        assert!(e
            .to_string()
            .starts_with("unknown key 'nope' (known: selfballooning, selfballoon_interval,"));
    }

    #[test]
    fn validation_is_the_guests() {
        let iv = CtlKey::Tunable(Key::Interval);
        assert_eq!(iv.validate("2").unwrap(), Some("2".into()));
        assert_eq!(iv.validate("007\n").unwrap(), Some("7".into()));
        let m = CtlKey::Tunable(Key::Mode);
        assert_eq!(m.validate("2011").unwrap(), Some("2011".into()));
        for (key, value, reason) in [
            (iv, "0", "zero"),
            (iv, "-1", "not-decimal"),
            (iv, "abc", "not-decimal"),
            (iv, "", "empty"),
            (iv, "4294967296", "out-of-range"),
            (CtlKey::Tunable(Key::Selfballooning), "2", "not-boolean"),
            (m, "Linux", "unknown-mode"),
            (
                CtlKey::Target,
                "12k",
                "memory/target is not a decimal number",
            ),
            (CtlKey::Target, "", "memory/target is empty"),
        ] {
            match key.validate(value) {
                Err(e @ Error::Rejected { .. }) => {
                    assert_eq!(e.exit_code(), exit::REJECTED);
                    let msg = e.to_string();
                    assert!(
                        msg.ends_with(&format!(": {reason}; nothing written")),
                        "{msg}"
                    );
                }
                other => panic!("{key:?} {value:?}: {other:?}"),
            }
        }
        // The guest's parser and this check agree on every value.
        for v in ["1", "0", "01", "99999999999", "1 ", "+1", "5\n"] {
            for k in Key::ALL {
                let guest = Tunables::default().apply(k.name(), v).is_ok();
                assert_eq!(CtlKey::Tunable(k).validate(v).is_ok(), guest, "{k:?} {v:?}");
            }
        }
        assert_eq!(CtlKey::Target.validate("524288").unwrap(), None);
        assert!(CtlKey::Workload
            .validate("alloc:8M,hold:1s,free:8M")
            .is_ok());
        let e = CtlKey::Workload.validate("alloc:lots").unwrap_err();
        assert!(
            e.to_string()
                .contains("refused by the guest's parser: phase 0"),
            "{e}"
        );
    }
}
