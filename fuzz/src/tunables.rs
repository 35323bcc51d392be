//! Tunable values (`src/selfballoon/tunables.rs`), as dom0 writes them
//! under the controller's xenstore directory: a sequence of
//! `apply(key, value)` calls on one `Tunables`, with the guest's size
//! changing in between.
//!
//! Properties: a rejected value changes nothing and its report is
//! sanitized and bounded; an accepted one, rendered with `value_string`
//! and applied again, is accepted and changes nothing (render/parse round
//! trip); `changed` and the timer action describe what happened; the
//! number parsers agree with a reference on digit strings.

use selfballoon::selfballoon::tunables::{
    self, parse_bool, parse_positive, parse_u32, Key, RejectReason, TimerAction, Tunables,
    MAX_REPORTED_LEN,
};

use crate::Input;

/// Values worth trying often (the fuzzer mutates from them).
const VALUES: [&str; 10] = [
    "0",
    "1",
    "5\n",
    "2011",
    "linux",
    "adaptive",
    "4294967295",
    "4294967296",
    "16777215",
    "604800",
];

pub fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut t = Tunables::new(inp.bool());
    let mut steps = 0;
    while !inp.is_empty() && steps < 64 {
        steps += 1;
        let sel = inp.u8();
        if sel == 0xff {
            t.set_guest_max_pages(inp.u64());
            assert!(t.guest_max_mb >= 1 && t.guest_max_mb <= tunables::GUEST_MAX_MB_UNKNOWN);
            continue;
        }
        let key_string;
        let key = match Key::ALL.get(usize::from(sel % 24)) {
            Some(k) => k.name(),
            None => {
                key_string = inp.string();
                &key_string
            }
        };
        let value_string;
        let value = if sel >= 0xc0 {
            VALUES[usize::from(inp.u8()) % VALUES.len()]
        } else {
            value_string = inp.string();
            &value_string
        };
        apply_and_check(&mut t, key, value);
        numbers(value);
    }
}

fn apply_and_check(t: &mut Tunables, key: &str, value: &str) {
    let before = *t;
    match t.apply(key, value) {
        Err(r) => {
            assert_eq!(*t, before, "a rejected value changed something");
            for s in [&r.key, &r.value] {
                assert!(s.len() <= MAX_REPORTED_LEN);
                assert!(!s.chars().any(char::is_control));
            }
            assert_eq!(
                r.reason == RejectReason::UnknownKey,
                Key::from_name(key).is_none()
            );
        }
        Ok(a) => {
            assert_eq!(a.key.name(), key);
            assert_eq!(a.changed, *t != before);
            assert_eq!(a.interval_changed, t.interval_s != before.interval_s);
            let want = match (before.timer_wanted(), t.timer_wanted()) {
                (false, true) => TimerAction::Start,
                (true, false) => TimerAction::Stop,
                _ => TimerAction::Keep,
            };
            assert_eq!(a.timer, want);
            // Render and apply again: same value, nothing changes.
            let shown = t.value_string(a.key);
            let after = *t;
            let again = t
                .apply(key, &shown)
                .unwrap_or_else(|r| panic!("{key}={shown:?} (rendered) rejected: {r}"));
            assert!(!again.changed, "{key}={shown:?} changed the value again");
            assert_eq!(*t, after);
        }
    }
}

/// The number parsers against `str::parse` on digit strings.
fn numbers(value: &str) {
    let digits = value.strip_suffix('\n').unwrap_or(value);
    let reference = if digits.is_empty() {
        Err(RejectReason::Empty)
    } else if !digits.bytes().all(|b| b.is_ascii_digit()) {
        Err(RejectReason::NotDecimal)
    } else {
        digits.parse::<u32>().map_err(|_| RejectReason::OutOfRange)
    };
    assert_eq!(parse_u32(value), reference, "{value:?}");
    match (parse_positive(value), reference) {
        (Ok(n), Ok(v)) => assert_eq!(n.get(), v),
        (Err(RejectReason::Zero), Ok(0)) => {}
        (Err(e), Err(r)) => assert_eq!(e, r),
        (got, want) => panic!("parse_positive({value:?}) = {got:?}, parse_u32 {want:?}"),
    }
    match (parse_bool(value), reference) {
        (Ok(b), Ok(v)) => assert_eq!(u32::from(b), v),
        (Err(RejectReason::NotBoolean), Ok(v)) => assert!(v > 1),
        (Err(RejectReason::NotBoolean), Err(RejectReason::OutOfRange)) => {}
        (Err(e), Err(r)) => assert_eq!(e, r),
        (got, want) => panic!("parse_bool({value:?}) = {got:?}, parse_u32 {want:?}"),
    }
    if let Ok(v) = reference {
        for k in Key::ALL {
            if let Some((lo, hi)) = k.bounds() {
                let got = tunables::parse_bounded(value, Some((lo, hi)));
                let ok = v >= lo && v <= hi;
                assert_eq!(got.is_ok(), ok && v != 0, "{value:?} in {lo}..={hi}");
            }
        }
    }
}
