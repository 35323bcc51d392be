//! The policies a run compares: `static` (the VM keeps its RAM),
//! `oracle` (holds exactly what it needs, at once, knowing the future),
//! and every [`Mode`] of the guest's controller, run through the guest's
//! own [`selfballoon::selfballoon::Controller`].
//!
//! A policy is written `name[:key=value]...`; the settings are tunables
//! applied with the guest's strict parser (`Tunables::apply`), so the sim
//! accepts exactly what the guest would: `adaptive:adaptive_headroom_min_pct=5`.

use std::fmt;

use selfballoon::selfballoon::{Key, Mode, RejectReason, Tunables};

/// What drives the frames held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Holds the toolstack target all the time.
    Static,
    /// Holds what the demand needs, with no lag.
    Oracle,
    /// The guest's controller with these tunables.
    Controller(Tunables),
}

/// A policy to run, and the label of its scorecard row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpec {
    /// As written on the command line.
    pub label: String,
    /// What it is.
    pub kind: Kind,
}

/// Why a policy could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// Not `static`, `oracle` or a controller mode.
    Unknown,
    /// A setting without `=`.
    NoEquals,
    /// `mode` cannot be set: the policy's name is its mode.
    ModeSetting,
    /// A setting on `static` or `oracle`.
    NotTunable,
    /// The guest's parser refused the value.
    Rejected(RejectReason),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Unknown => {
                let modes: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                write!(f, "unknown policy (static, oracle, {})", modes.join(", "))
            }
            PolicyError::NoEquals => f.write_str("a setting must be key=value"),
            PolicyError::ModeSetting => f.write_str("the policy name is the mode; no mode="),
            PolicyError::NotTunable => f.write_str("static and oracle take no settings"),
            PolicyError::Rejected(r) => write!(f, "rejected by the guest's parser: {r}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Parses one policy; `interval_s` is the tick the model runs (set as
/// `selfballoon_interval` unless the policy sets its own).
pub fn parse(item: &str, interval_s: u32) -> Result<PolicySpec, PolicyError> {
    let mut parts = item.split(':');
    let name = parts.next().unwrap_or("");
    let kind = match name {
        "static" => Kind::Static,
        "oracle" => Kind::Oracle,
        m => {
            let mode = Mode::from_name(m).ok_or(PolicyError::Unknown)?;
            let mut t = Tunables {
                mode,
                ..Tunables::new(true)
            };
            t.apply(Key::Interval.name(), &interval_s.to_string())
                .map_err(|r| PolicyError::Rejected(r.reason))?;
            Kind::Controller(t)
        }
    };
    let mut kind = kind;
    for setting in parts {
        let (k, v) = setting.split_once('=').ok_or(PolicyError::NoEquals)?;
        match &mut kind {
            Kind::Controller(t) => {
                if k == Key::Mode.name() {
                    return Err(PolicyError::ModeSetting);
                }
                t.apply(k, v).map_err(|r| PolicyError::Rejected(r.reason))?;
            }
            _ => return Err(PolicyError::NotTunable),
        }
    }
    Ok(PolicySpec {
        label: item.to_string(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_settings() {
        assert_eq!(parse("static", 5).unwrap().kind, Kind::Static);
        assert_eq!(parse("oracle", 5).unwrap().kind, Kind::Oracle);
        let Kind::Controller(t) = parse("2011:selfballoon_downhysteresis=2", 5).unwrap().kind
        else {
            panic!("not a controller")
        };
        assert_eq!((t.mode, t.downhysteresis.get()), (Mode::Seed2011, 2));
        let Kind::Controller(t) = parse("linux", 7).unwrap().kind else {
            panic!("not a controller")
        };
        assert_eq!(t.interval_s.get(), 7);
        assert_eq!(parse("nope", 5).unwrap_err(), PolicyError::Unknown);
        assert_eq!(parse("linux:x", 5).unwrap_err(), PolicyError::NoEquals);
        assert_eq!(
            parse("linux:mode=2011", 5).unwrap_err(),
            PolicyError::ModeSetting
        );
        assert_eq!(parse("static:a=1", 5).unwrap_err(), PolicyError::NotTunable);
        assert_eq!(
            parse("linux:selfballoon_downhysteresis=0", 5).unwrap_err(),
            PolicyError::Rejected(RejectReason::Zero)
        );
        assert_eq!(
            parse("linux", 0).unwrap_err(),
            PolicyError::Rejected(RejectReason::Zero)
        );
    }
}
