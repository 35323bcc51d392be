//! The verdict file a nested run leaves in its run directory.
//!
//! Written once per run by the shell side (`pass`/`fail` and `rig_run` in
//! `tests/nested/lib.sh`, `die` in `tests/nested/image/dom0-init.sh`), read
//! by `cargo xtask nested`. Its text is one of
//!
//! ```text
//! PASS
//! PASS: <note>
//! FAIL: <reason>
//! ```
//!
//! followed by a newline. Surrounding whitespace is ignored, and a message
//! may run over several lines (the reader keeps it whole).

use core::fmt;

use crate::text::{bounded_utf8, Snippet, TextError};

/// The verdict file's name in the run directory (`/rig/result` in dom0).
pub const VERDICT_FILE: &str = "result";
/// The word of a passed run.
pub const VERDICT_PASS: &str = "PASS";
/// The word of a failed run.
pub const VERDICT_FAIL: &str = "FAIL";
/// Between the word and the message. A reader also accepts a bare `:`.
pub const VERDICT_SEPARATOR: &str = ": ";
/// Largest verdict file accepted, in bytes (real ones are one short line).
pub const MAX_VERDICT_BYTES: usize = 64 * 1024;

/// A run's verdict; displays as the verdict file's line (without the
/// newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// The scenario passed; `note` may be empty.
    Pass {
        /// What the scenario said on passing (`pass "MSG"`).
        note: &'a str,
    },
    /// The scenario failed.
    Fail {
        /// Why (`fail "MSG"`); empty if the writer gave none.
        reason: &'a str,
    },
}

impl Verdict<'_> {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// The note or reason.
    pub fn message(&self) -> &str {
        match self {
            Verdict::Pass { note } => note,
            Verdict::Fail { reason } => reason,
        }
    }
}

impl fmt::Display for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass { note: "" } => f.write_str(VERDICT_PASS),
            Verdict::Pass { note } => write!(f, "{VERDICT_PASS}{VERDICT_SEPARATOR}{note}"),
            Verdict::Fail { reason } => write!(f, "{VERDICT_FAIL}{VERDICT_SEPARATOR}{reason}"),
        }
    }
}

/// Why a verdict file could not be read as a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictError<'a> {
    /// The file is empty or only whitespace: no verdict was written.
    Empty,
    /// The file is larger than [`MAX_VERDICT_BYTES`].
    Overlong {
        /// Its size in bytes (at least what was read).
        len: usize,
    },
    /// The file is not UTF-8.
    NotUtf8 {
        /// Bytes of valid UTF-8 before the first bad one.
        valid_up_to: usize,
    },
    /// The text stops inside `PASS` or `FAIL` (a cut write).
    Truncated(&'a str),
    /// The word is followed by something else than `: ` (e.g. `PASSED`).
    BadSeparator(&'a str),
    /// The text starts with neither `PASS` nor `FAIL`.
    Garbage(&'a str),
}

impl fmt::Display for VerdictError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expect = "expected `PASS`, `PASS: note` or `FAIL: reason`";
        match self {
            VerdictError::Empty => f.write_str("no verdict (the verdict file is empty)"),
            VerdictError::Overlong { len } => write!(
                f,
                "verdict file is larger than the {MAX_VERDICT_BYTES} bytes allowed ({len} read)"
            ),
            VerdictError::NotUtf8 { valid_up_to } => write!(
                f,
                "verdict file is not UTF-8 (bad byte at offset {valid_up_to})"
            ),
            VerdictError::Truncated(t) => {
                write!(f, "verdict {} is truncated; {expect}", Snippet(t))
            }
            VerdictError::BadSeparator(t) => {
                write!(
                    f,
                    "verdict {} lacks the `: ` separator; {expect}",
                    Snippet(t)
                )
            }
            VerdictError::Garbage(t) => write!(f, "verdict {} is garbage; {expect}", Snippet(t)),
        }
    }
}

/// Parses a verdict file's bytes.
pub fn parse_verdict(bytes: &[u8]) -> Result<Verdict<'_>, VerdictError<'_>> {
    let text = bounded_utf8(bytes, MAX_VERDICT_BYTES).map_err(|e| match e {
        TextError::Overlong { len, .. } => VerdictError::Overlong { len },
        TextError::NotUtf8 { valid_up_to } => VerdictError::NotUtf8 { valid_up_to },
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(VerdictError::Empty);
    }
    for (word, pass) in [(VERDICT_PASS, true), (VERDICT_FAIL, false)] {
        let Some(rest) = text.strip_prefix(word) else {
            if word.starts_with(text) {
                return Err(VerdictError::Truncated(text));
            }
            continue;
        };
        let message = if rest.is_empty() {
            ""
        } else if let Some(m) = rest.strip_prefix(VERDICT_SEPARATOR.trim_end()) {
            m.trim()
        } else {
            return Err(VerdictError::BadSeparator(text));
        };
        return Ok(if pass {
            Verdict::Pass { note: message }
        } else {
            Verdict::Fail { reason: message }
        });
    }
    Err(VerdictError::Garbage(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[test]
    fn what_the_shell_writes() {
        // lib.sh: printf 'PASS%s\n' "${1:+: $*}" / printf 'FAIL: %s\n' "$*".
        assert_eq!(parse_verdict(b"PASS\n"), Ok(Verdict::Pass { note: "" }));
        assert_eq!(
            parse_verdict(b"PASS: selftest SUCCESS, powered off\n"),
            Ok(Verdict::Pass {
                note: "selftest SUCCESS, powered off"
            })
        );
        assert_eq!(
            parse_verdict(b"FAIL: timeout (90s) waiting for /x/ on sb's console\n"),
            Ok(Verdict::Fail {
                reason: "timeout (90s) waiting for /x/ on sb's console"
            })
        );
        // `fail` without a message.
        assert_eq!(parse_verdict(b"FAIL: \n"), Ok(Verdict::Fail { reason: "" }));
        // dom0-init.sh's die.
        assert_eq!(
            parse_verdict(b"FAIL: dom0 init: xenstored\n"),
            Ok(Verdict::Fail {
                reason: "dom0 init: xenstored"
            })
        );
        // A message over several lines stays whole.
        assert_eq!(
            parse_verdict(b"FAIL: command failed: a\nb\n"),
            Ok(Verdict::Fail {
                reason: "command failed: a\nb"
            })
        );
        // Whitespace around it, a colon without its space, CRLF.
        assert_eq!(
            parse_verdict(b"  PASS:ok \r\n"),
            Ok(Verdict::Pass { note: "ok" })
        );
        assert_eq!(parse_verdict(b"FAIL"), Ok(Verdict::Fail { reason: "" }));
    }

    #[test]
    fn round_trips() {
        for v in [
            Verdict::Pass { note: "" },
            Verdict::Pass { note: "3 moves" },
            Verdict::Fail { reason: "" },
            Verdict::Fail {
                reason: "sb stopped (crash, state --p--c) while waiting for /runtime:/",
            },
        ] {
            let mut file = v.to_string();
            file.push('\n');
            assert_eq!(parse_verdict(file.as_bytes()), Ok(v), "{file:?}");
            assert_eq!(v.passed(), matches!(v, Verdict::Pass { .. }));
        }
        assert_eq!(format!("{}", Verdict::Pass { note: "" }), "PASS");
        assert_eq!(format!("{}", Verdict::Pass { note: "n" }), "PASS: n");
        assert_eq!(format!("{}", Verdict::Fail { reason: "r" }), "FAIL: r");
        assert_eq!(Verdict::Fail { reason: "r" }.message(), "r");
    }

    #[test]
    fn hostile_files() {
        assert_eq!(parse_verdict(b""), Err(VerdictError::Empty));
        assert_eq!(parse_verdict(b" \n\t\r\n"), Err(VerdictError::Empty));
        // Truncated writes.
        for t in ["P", "PA", "PAS", "F", "FA", "FAI"] {
            assert_eq!(
                parse_verdict(t.as_bytes()),
                Err(VerdictError::Truncated(t)),
                "{t}"
            );
        }
        // Near misses.
        assert_eq!(
            parse_verdict(b"PASSED"),
            Err(VerdictError::BadSeparator("PASSED"))
        );
        assert_eq!(
            parse_verdict(b"FAILURE: x"),
            Err(VerdictError::BadSeparator("FAILURE: x"))
        );
        assert_eq!(
            parse_verdict(b"PASS - fine"),
            Err(VerdictError::BadSeparator("PASS - fine"))
        );
        // Garbage.
        for g in [
            "pass",
            "ok",
            "SUCCESS",
            "\u{0}PASS",
            "Test result: SUCCESS",
            "PFAIL",
        ] {
            assert_eq!(
                parse_verdict(g.as_bytes()),
                Err(VerdictError::Garbage(g)),
                "{g}"
            );
        }
        assert_eq!(
            parse_verdict(b"PASS\xff"),
            Err(VerdictError::NotUtf8 { valid_up_to: 4 })
        );
        assert_eq!(
            parse_verdict(b"\x80"),
            Err(VerdictError::NotUtf8 { valid_up_to: 0 })
        );
        // Overlong: refused even though it starts well.
        let mut big = String::from("PASS: ");
        big.push_str(&"x".repeat(MAX_VERDICT_BYTES));
        assert_eq!(
            parse_verdict(big.as_bytes()),
            Err(VerdictError::Overlong { len: big.len() })
        );
        let mut fits = String::from("FAIL: ");
        fits.push_str(&"y".repeat(MAX_VERDICT_BYTES - fits.len()));
        assert!(parse_verdict(fits.as_bytes()).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator over bytes that matter.
        let alphabet = b"PASFIL: \n\r\t\x00\xff\xc3\xa9x";
        let mut state = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut v = Vec::new();
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let len = (state % 12) as usize;
            for i in 0..len {
                let pick = (state.rotate_left(i as u32 * 3) as usize) % alphabet.len();
                v.push(alphabet[pick]);
            }
            if let Ok(verdict) = parse_verdict(&v) {
                // Whatever parsed writes back to something that parses the same.
                let again = verdict.to_string();
                assert_eq!(parse_verdict(again.as_bytes()), Ok(verdict), "{v:?}");
            } else if let Err(e) = parse_verdict(&v) {
                assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = parse_verdict(b"PASSED").unwrap_err().to_string();
        assert!(
            msg.contains("\"PASSED\"") && msg.contains("separator"),
            "{msg}"
        );
        let msg = parse_verdict(b"garbage\x01").unwrap_err().to_string();
        assert!(msg.contains("garbage") && msg.contains("\\u{1}"), "{msg}");
        assert!(msg.contains("PASS: note"), "{msg}");
        let msg = parse_verdict(b"FAI").unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
        let long = "z".repeat(5000);
        let msg = parse_verdict(long.as_bytes()).unwrap_err().to_string();
        assert!(msg.len() < 200, "quotes too much: {msg}");
        let msg = VerdictError::Overlong { len: 70_000 }.to_string();
        assert!(msg.contains("70000") && msg.contains("65536"), "{msg}");
        assert!(VerdictError::NotUtf8 { valid_up_to: 3 }
            .to_string()
            .contains("offset 3"));
        assert!(VerdictError::Empty.to_string().contains("no verdict"));
    }
}
