//! Strict decimals as dom0 writes them (`src/parse.rs`), through every
//! user: `memory/target` (`parse_target_kib`, `src/balloon/status.rs`),
//! the xenstore client's `parse_u64`; and the two ways untrusted text
//! reaches a log or xenstore (`untrusted`, `sanitize`).
//!
//! Properties: the parsers agree with each other and with `str::parse`
//! on digit strings (no sign, space or newline accepted); an accepted
//! value rendered parses back to itself; `untrusted` output is bounded
//! and has no control or format character left unescaped; `sanitize`
//! output is bounded, has no control character, and is the input with
//! control characters replaced, cut at a character boundary.

use std::fmt::Write;

use selfballoon::balloon::{parse_target_kib, TargetParseError};
use selfballoon::parse::{decimal_u64, sanitize, untrusted, DecimalError, LOG_MAX_BYTES};
use selfballoon::xen::xenstore::{parse_u64, XsError};

pub fn check(data: &[u8]) {
    let (&knob, rest) = data.split_first().unwrap_or((&0, &[]));
    let s = &*crate::text(rest);

    let reference = if s.is_empty() {
        Err(DecimalError::Empty)
    } else if !s.bytes().all(|b| b.is_ascii_digit()) {
        Err(DecimalError::NotDigits)
    } else {
        s.parse::<u64>().map_err(|_| DecimalError::Overflow)
    };
    let got = decimal_u64(s);
    assert_eq!(got, reference, "{s:?}");
    if let Ok(v) = got {
        assert_eq!(decimal_u64(&v.to_string()), Ok(v));
    }
    let target = parse_target_kib(s);
    match (got, target) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(DecimalError::Empty), Err(TargetParseError::Empty))
        | (Err(DecimalError::NotDigits), Err(TargetParseError::NotDigits))
        | (Err(DecimalError::Overflow), Err(TargetParseError::Overflow)) => {}
        (a, b) => panic!("decimal_u64 {a:?} but parse_target_kib {b:?}"),
    }
    assert_eq!(parse_u64(s), got.map_err(|_| XsError::Protocol));

    // Logging what another domain wrote.
    let max = if knob & 0x80 != 0 {
        usize::from(knob & 0x7f)
    } else {
        LOG_MAX_BYTES
    };
    let mut shown = String::new();
    write!(shown, "{}", untrusted(s).max_bytes(max)).unwrap();
    for c in shown.chars() {
        assert!(
            !c.is_control() && (matches!(c, '\\' | '\'' | '"') || c.escape_debug().count() == 1),
            "untrusted left {c:?} unescaped in {shown:?}"
        );
    }
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.len() <= max {
        assert_eq!(shown, escaped);
    } else {
        let body = shown.strip_suffix("...").expect("a cut ends with ...");
        assert!(
            body.len() <= max,
            "untrusted wrote {} > {max} bytes",
            body.len()
        );
        // Whole escapes only, as many as fit.
        let mut whole = String::new();
        for c in s.chars() {
            let e: String = c.escape_debug().collect();
            if whole.len() + e.len() > max {
                break;
            }
            whole.push_str(&e);
        }
        assert_eq!(body, whole, "untrusted cut inside an escape or too early");
    }

    // Writing it back to xenstore.
    let kept = sanitize(s, max);
    assert!(kept.len() <= max);
    assert!(!kept.chars().any(char::is_control));
    let expect: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    assert!(expect.starts_with(&kept), "sanitize is not a prefix");
    if kept.len() < expect.len() {
        let next = expect[kept.len()..].chars().next().unwrap();
        assert!(kept.len() + next.len_utf8() > max, "sanitize cut too early");
    }
}
