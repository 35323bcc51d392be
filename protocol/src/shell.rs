//! The protocol for the shell side: `protocol.sh`, a POSIX sh file of
//! `RIG_*` variable assignments that `tests/nested/lib.sh` and dom0's
//! `/init` source.
//!
//! `cargo xtask nested` writes it into every run directory before QEMU
//! starts (dom0 reads it as `/rig/protocol.sh`), so it always matches the
//! xtask and kernel of that run and is never checked in; the dom0 image
//! only knows its path.

use core::fmt;

use crate::console::MARKERS;
use crate::fault::{EMULATOR_FAULT_FILE, FAULT_SEPARATOR};
use crate::result::{TestResult, DEBUG_EXIT_PORT, RESULT_PREFIX};
use crate::rig::{LOG_PREFIX, METRICS_FILE, STEP_PREFIX};
use crate::verdict::{VERDICT_FAIL, VERDICT_FILE, VERDICT_PASS, VERDICT_SEPARATOR};

/// A variable's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Written single-quoted.
    Str(&'static str),
    /// Written in decimal.
    Num(u32),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => {
                f.write_str("'")?;
                for (i, part) in s.split('\'').enumerate() {
                    if i > 0 {
                        f.write_str("'\\''")?;
                    }
                    f.write_str(part)?;
                }
                f.write_str("'")
            }
        }
    }
}

/// Every variable of `protocol.sh` that is not a console marker, in the
/// order written.
pub const VARIABLES: [(&str, Value); 18] = [
    ("RIG_RESULT_PREFIX", Value::Str(RESULT_PREFIX)),
    ("RIG_RESULT_SUCCESS", Value::Str(TestResult::Success.word())),
    ("RIG_RESULT_FAILURE", Value::Str(TestResult::Failure.word())),
    ("RIG_RESULT_ERROR", Value::Str(TestResult::Error.word())),
    ("RIG_RESULT_SKIP", Value::Str(TestResult::Skip.word())),
    ("RIG_DEBUG_EXIT_PORT", Value::Num(DEBUG_EXIT_PORT as u32)),
    (
        "RIG_DEBUG_EXIT_SUCCESS",
        Value::Num(TestResult::Success.debug_exit_value()),
    ),
    (
        "RIG_DEBUG_EXIT_FAILURE",
        Value::Num(TestResult::Failure.debug_exit_value()),
    ),
    (
        "RIG_DEBUG_EXIT_ERROR",
        Value::Num(TestResult::Error.debug_exit_value()),
    ),
    (
        "RIG_DEBUG_EXIT_SKIP",
        Value::Num(TestResult::Skip.debug_exit_value()),
    ),
    ("RIG_VERDICT_FILE", Value::Str(VERDICT_FILE)),
    ("RIG_VERDICT_PASS", Value::Str(VERDICT_PASS)),
    ("RIG_VERDICT_FAIL", Value::Str(VERDICT_FAIL)),
    ("RIG_VERDICT_SEP", Value::Str(VERDICT_SEPARATOR)),
    ("RIG_EMULATOR_FAULT_FILE", Value::Str(EMULATOR_FAULT_FILE)),
    ("RIG_EMULATOR_FAULT_SEP", Value::Str(FAULT_SEPARATOR)),
    ("RIG_LOG_PREFIX", Value::Str(LOG_PREFIX)),
    ("RIG_STEP_PREFIX", Value::Str(STEP_PREFIX)),
];

/// The metrics file's variable (kept apart: it is rig-internal, not a
/// kernel string).
pub const METRICS_VARIABLE: (&str, Value) = ("RIG_METRICS_FILE", Value::Str(METRICS_FILE));

/// Prefix of the console markers' variables (`RIG_MARK_RUNTIME`, ...).
pub const MARK_PREFIX: &str = "RIG_MARK_";

/// Writes `protocol.sh`.
pub fn write(out: &mut dyn fmt::Write) -> fmt::Result {
    out.write_str(
        "# protocol.sh: the kernel-rig protocol for the shell side.\n\
         # Generated from the selfballoon-protocol crate (protocol/src/shell.rs)\n\
         # by `cargo xtask nested` into every run directory; do not edit.\n\
         # shellcheck shell=sh disable=SC2034\n",
    )?;
    for (name, value) in VARIABLES.iter().chain([&METRICS_VARIABLE]) {
        writeln!(out, "{name}={value}")?;
    }
    for (name, value) in MARKERS {
        writeln!(out, "{MARK_PREFIX}{name}={}", Value::Str(value))?;
    }
    Ok(())
}

/// `protocol.sh`'s text as a `Display` (for `to_string`, `write!`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Script;

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn names() -> Vec<String> {
        VARIABLES
            .iter()
            .chain([&METRICS_VARIABLE])
            .map(|(n, _)| String::from(*n))
            .chain(
                MARKERS
                    .iter()
                    .map(|(n, _)| std::format!("{MARK_PREFIX}{n}")),
            )
            .collect()
    }

    #[test]
    fn names_are_unique_shell_identifiers() {
        let names = names();
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with("RIG_"), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
            assert!(!names[i + 1..].contains(n), "{n} twice");
        }
    }

    #[test]
    fn script_shape() {
        let s = Script.to_string();
        let assignments: Vec<&str> = s.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(assignments.len(), names().len());
        assert!(s.contains("RIG_RESULT_PREFIX='Test result: '\n"));
        assert!(s.contains("RIG_DEBUG_EXIT_PORT=244\n"));
        assert!(s.contains("RIG_DEBUG_EXIT_SUCCESS=16\n"));
        assert!(s.contains("RIG_DEBUG_EXIT_ERROR=18\n"));
        assert!(s.contains("RIG_VERDICT_FILE='result'\n"));
        assert!(s.contains("RIG_EMULATOR_FAULT_FILE='emulator-fault'\n"));
        assert!(s.contains("RIG_MARK_RUNTIME='runtime:'\n"));
        assert!(s.ends_with('\n'));
    }

    #[test]
    fn quoting() {
        assert_eq!(Value::Str("a b").to_string(), "'a b'");
        assert_eq!(Value::Str("it's").to_string(), "'it'\\''s'");
        assert_eq!(Value::Str("").to_string(), "''");
        assert_eq!(Value::Num(7).to_string(), "7");
    }
}
