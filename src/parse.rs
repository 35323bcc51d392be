//! Strict decimal numbers, as dom0 and the toolstack write them in
//! xenstore: ASCII digits only (no sign, space, `+`, hex or suffix), no
//! overflow. One parser serves the xenstore client, the balloon driver's
//! `memory/target` and the controller's tunables, each mapping the error
//! to its own vocabulary.

#![forbid(unsafe_code)]

use alloc::string::String;
use core::fmt::{self, Write};

/// Why a string is not a strict decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// No digits at all.
    Empty,
    /// A byte that is not an ASCII digit (reported even when the digits
    /// before it already overflowed, so "99999999999999999999x" is
    /// `NotDigits`).
    NotDigits,
    /// More than `u64::MAX`.
    Overflow,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecimalError::Empty => "empty",
            DecimalError::NotDigits => "not a decimal number",
            DecimalError::Overflow => "too large",
        })
    }
}

/// Parses `s` as a strict decimal `u64`.
pub fn decimal_u64(s: &str) -> Result<u64, DecimalError> {
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDigits);
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(DecimalError::Overflow)
    })
}

/// Most bytes an [`untrusted`] rendering writes, not counting the `...`
/// that marks a cut.
pub const LOG_MAX_BYTES: usize = 96;

/// A string another domain supplied (a path, value, token or error payload),
/// wrapped for a log line by [`untrusted`].
#[derive(Clone, Copy, Debug)]
pub struct Untrusted<'a> {
    text: &'a str,
    max: usize,
}

/// Wraps a string dom0 (or xenstored) wrote, for logging: its `Display`
/// escapes every character that is not printable (newline, CR, ESC, NUL
/// and other C0/C1 controls, DEL, bidi overrides and other format or
/// combining characters) and the backslash and quotes, Rust-style (`\n`,
/// `\u{1b}`, `\\`, `\'`), writes at most [`LOG_MAX_BYTES`] bytes of
/// that (never part of an escape or of a character), and ends with `...`
/// when something was left out. A value can thus neither forge log
/// lines, nor reach the terminal as control sequences, nor flood the log.
/// Allocates nothing.
///
/// ```text
/// log::warn!("memory/target '{}' rejected: {e}", untrusted(&v));
/// ```
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted {
        text,
        max: LOG_MAX_BYTES,
    }
}

impl Untrusted<'_> {
    /// The same with another output bound, in bytes.
    pub fn max_bytes(self, max: usize) -> Self {
        Untrusted { max, ..self }
    }
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut used = 0usize;
        for c in self.text.chars() {
            let escaped = c.escape_debug();
            let len: usize = escaped.clone().map(char::len_utf8).sum();
            match used.checked_add(len) {
                Some(total) if total <= self.max => used = total,
                _ => return f.write_str("..."),
            }
            for e in escaped {
                f.write_char(e)?;
            }
        }
        Ok(())
    }
}

/// Makes an untrusted string safe to write back to xenstore (a status
/// value such as `last_rejection_value`): control characters (NUL,
/// newline, ...) become `'?'`, and the result is cut at a character
/// boundary to at most `max_bytes` bytes. For a log line use [`untrusted`],
/// which escapes instead and allocates nothing.
pub fn sanitize(s: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strict() {
        assert_eq!(decimal_u64("0"), Ok(0));
        assert_eq!(decimal_u64("007"), Ok(7));
        assert_eq!(decimal_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            decimal_u64("18446744073709551616"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            decimal_u64("1180591620717411303424"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            decimal_u64("99999999999999999999x"),
            Err(DecimalError::NotDigits)
        );
        for bad in ["-1", "+1", " 1", "1 ", "1\n", "0x10", "abc", "1k", "١"] {
            assert_eq!(decimal_u64(bad), Err(DecimalError::NotDigits), "{bad:?}");
        }
        assert_eq!(decimal_u64(""), Err(DecimalError::Empty));
    }

    proptest! {
        #[test]
        fn agrees_with_std_on_digit_strings(s in "[0-9]{1,25}") {
            prop_assert_eq!(decimal_u64(&s).ok(), s.parse::<u64>().ok());
        }

        #[test]
        fn round_trips(v: u64) {
            prop_assert_eq!(decimal_u64(&v.to_string()), Ok(v));
        }
    }
}
