//! [`Mode`]: which self-balloon policy is in force. The bottom of
//! `selfballoon`'s own layering: [`super::tunables`] stores a mode,
//! [`super::policy`] dispatches on it, and neither needs the other for it.

/// Which controller computes the target. Parsed from / shown as the
/// strings `"2011"`, `"linux"` and `"adaptive"`.
///
/// A new policy of ours goes here: add a variant, its name in
/// [`Mode::name`]/[`Mode::from_name`], and an arm in `Policy::decide` (`super::policy`).
/// Policies that need state across ticks can instead implement `Policy`
/// on their own type; the `Decision` they return is all the rest of the
/// system looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// The 2011 seed's arithmetic exactly (no floor).
    Seed2011,
    /// The final Linux form (reserve, floor). The default.
    #[default]
    Linux,
    /// Ours: fast up, slow down, probing by pressure
    /// (`super::adaptive`). Stateful: the controller keeps its state.
    Adaptive,
}

impl Mode {
    /// All modes, for documentation and tests.
    pub const ALL: [Mode; 3] = [Mode::Seed2011, Mode::Linux, Mode::Adaptive];

    /// The tunable/status string for this mode.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Seed2011 => "2011",
            Mode::Linux => "linux",
            Mode::Adaptive => "adaptive",
        }
    }

    /// Parses the exact mode name (no surrounding whitespace).
    pub fn from_name(s: &str) -> Option<Mode> {
        Mode::ALL.iter().copied().find(|m| m.name() == s)
    }
}
