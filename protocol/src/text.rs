//! Showing untrusted text in error messages: short and escaped.

use core::fmt;

/// At most this many characters of an offending input appear in an error.
pub(crate) const SNIPPET_CHARS: usize = 40;

/// Displays the start of `self.0`, control characters escaped, with `...`
/// when it was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snippet<'a>(pub &'a str);

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars().take(SNIPPET_CHARS) {
            for e in c.escape_debug() {
                fmt::Write::write_char(f, e)?;
            }
        }
        f.write_str("\"")?;
        if self.0.chars().nth(SNIPPET_CHARS).is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// `bytes` as UTF-8 of at most `max` bytes, or where it fails.
pub(crate) fn bounded_utf8(bytes: &[u8], max: usize) -> Result<&str, TextError> {
    if bytes.len() > max {
        return Err(TextError::Overlong {
            len: bytes.len(),
            max,
        });
    }
    core::str::from_utf8(bytes).map_err(|e| TextError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Why bytes were refused before they were parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextError {
    Overlong { len: usize, max: usize },
    NotUtf8 { valid_up_to: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    #[test]
    fn snippets_are_short_and_escaped() {
        assert_eq!(format!("{}", Snippet("a\u{0}b\n")), "\"a\\0b\\n\"");
        let long: String = "x".repeat(100);
        let s = format!("{}", Snippet(&long));
        assert!(s.ends_with("\"..."), "{s}");
        assert_eq!(s.len(), SNIPPET_CHARS + 5);
        assert_eq!(
            format!("{}", Snippet(&long[..SNIPPET_CHARS])).len(),
            SNIPPET_CHARS + 2
        );
    }

    #[test]
    fn bounded() {
        assert_eq!(bounded_utf8(b"ok", 2), Ok("ok"));
        assert_eq!(
            bounded_utf8(b"abc", 2),
            Err(TextError::Overlong { len: 3, max: 2 })
        );
        assert_eq!(
            bounded_utf8(b"a\xffb", 9),
            Err(TextError::NotUtf8 { valid_up_to: 1 })
        );
    }
}
