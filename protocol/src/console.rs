//! Lines the kernel prints that the rig waits for or checks, besides the
//! [`ResultLine`](crate::ResultLine).
//!
//! The scenarios use these (as `RIG_MARK_*` from `protocol.sh`) as
//! extended regular expressions for `wait_console`, so none of them holds
//! a regex metacharacter; `cargo xtask test` and the xtask host tests
//! check that the kernel's sources still print each one.

/// Starts the line the kernel logs when its main loop runs (`runtime: N
/// frames, floor ...`): the guest is up and follows its targets.
pub const RUNTIME_BANNER: &str = "runtime:";

/// Starts the line logged when a populate-on-demand boot gave back the
/// pages Xen never backed.
pub const POD_RELEASED: &str = "pod: released";

/// Starts the report of a fatal exception, followed by its name
/// (`FATAL #PF (vector 14) ...`).
pub const FATAL_TRAP: &str = "FATAL ";

/// Starts the report of a kernel panic (`PANIC: <message>`).
pub const PANIC: &str = "PANIC";

/// Starts the line of a failed selftest check, followed by its name
/// (`selftest: FAIL injected: ...`).
pub const SELFTEST_FAIL: &str = "selftest: FAIL ";

/// The check `crash=fail` makes fail on purpose.
pub const INJECTED_CHECK: &str = "injected";

/// Ends the warning logged before failing on purpose (`crash=Hang
/// requested`; the kind as Rust's `Debug` shows it).
pub const CRASH_REQUESTED: &str = " requested";

/// Every marker with a short name (`RIG_MARK_<NAME>` in `protocol.sh`).
pub const MARKERS: [(&str, &str); 7] = [
    ("RUNTIME", RUNTIME_BANNER),
    ("POD_RELEASED", POD_RELEASED),
    ("FATAL", FATAL_TRAP),
    ("PANIC", PANIC),
    ("SELFTEST_FAIL", SELFTEST_FAIL),
    ("INJECTED", INJECTED_CHECK),
    ("CRASH_REQUESTED", CRASH_REQUESTED),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_literal_regexes() {
        for (name, m) in MARKERS {
            assert!(!m.is_empty(), "{name}");
            assert!(
                !m.contains(|c: char| ".[]()*+?{}|^$\\'\"`".contains(c) || c.is_control()),
                "{name} = {m:?} holds a regex or shell metacharacter"
            );
        }
        assert!(!crate::RESULT_PREFIX.contains(|c: char| ".[]()*+?{}|^$\\".contains(c)));
    }

    #[test]
    fn names_are_unique() {
        for (i, (a, _)) in MARKERS.iter().enumerate() {
            for (b, _) in &MARKERS[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
