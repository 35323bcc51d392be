//! Kernel command line parsing (xl `extra=`).
//!
//! Words are separated by ASCII whitespace and are `key` or `key=value`
//! (split at the first `=`; no quoting, so values cannot contain spaces).
//! Known keys:
//!
//! | word | meaning |
//! |---|---|
//! | `selftest` | run the in-guest self-test |
//! | `loglevel=<error\|warn\|info\|debug\|trace>` | log level |
//! | `e9log=<off\|error\|warn\|info\|debug\|trace>` | what a domU still sends to port 0xe9 (`xl dmesg`) once its PV console carries the log (default `warn`) |
//! | `selfballooning` / `noselfballooning` | enable / disable self-ballooning |
//! | `selfshrink` / `noselfshrink` | enable / disable frontswap self-shrinking (the seed's `noselfshrink`; default on) |
//! | `selfballoon_mode=<2011\|linux\|adaptive>` | controller variant |
//! | `workload=<spec>` | workload spec, passed on as is |
//! | `scrub=<0\|1>` | scrub frames before releasing them |
//! | `balloon_floor_mb=<n>` | balloon safety floor in MiB |
//! | `swaprun[=<s>]` | a swap test run (tier 2): run the workload and the controllers (also in dom0, where the seed would not), then print a summary and `Test result:` when the workload has ended, or after `s` seconds (default 600) |
//! | `crash=<pf\|ud\|panic\|hang\|stack\|fail>` | fail on purpose at boot (tests of the fault reporting and the rig); `fail` makes one selftest check fail |
//!
//! Unknown words become warnings; a malformed word becomes an error for
//! that word only, the others still apply. When a key repeats, the last
//! valid occurrence wins. Warnings and errors are capped in number and
//! each kept word in length, so a hostile line cannot exhaust the heap.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use log::LevelFilter;

use crate::selfballoon::mode::Mode;

/// Most warnings and errors kept (the rest are counted only).
pub const MAX_REPORTED_WORDS: usize = 16;
/// Longest word kept in a warning or error, in bytes.
pub const MAX_REPORTED_WORD_BYTES: usize = 64;
/// Longest `workload=` value accepted, in bytes.
pub const MAX_WORKLOAD_BYTES: usize = 1024;

/// A deliberate failure at boot, for testing how failures are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// Read an unmapped address (#PF).
    PageFault,
    /// Execute `ud2` (#UD).
    InvalidOpcode,
    /// `panic!`.
    Panic,
    /// Block forever with interrupts enabled.
    Hang,
    /// Recurse until the boot stack overflows into its guard page (#PF).
    StackOverflow,
    /// Run normally, but with one selftest check that fails, so the
    /// result line is `FAILURE` (a wrong result rather than a fault).
    FailCheck,
}

/// The settings the command line asked for; `None` means "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelArgs {
    /// `selftest`.
    pub selftest: bool,
    /// `loglevel=`.
    pub loglevel: Option<LevelFilter>,
    /// `e9log=`.
    pub e9log: Option<LevelFilter>,
    /// `selfballooning` (true) / `noselfballooning` (false).
    pub selfballooning: Option<bool>,
    /// `selfshrink` (true) / `noselfshrink` (false).
    pub selfshrink: Option<bool>,
    /// `selfballoon_mode=`.
    pub selfballoon_mode: Option<Mode>,
    /// `workload=`, unparsed.
    pub workload: Option<String>,
    /// `scrub=`.
    pub scrub: Option<bool>,
    /// `balloon_floor_mb=`.
    pub balloon_floor_mb: Option<u64>,
    /// `crash=`.
    pub crash: Option<CrashKind>,
    /// `swaprun[=<s>]`: the run's time limit in seconds.
    pub swaprun_s: Option<u32>,
}

/// `swaprun`'s time limit when none is given.
pub const SWAPRUN_DEFAULT_S: u32 = 600;

impl KernelArgs {
    /// `balloon_floor_mb` in 4 KiB pages (saturating).
    pub fn balloon_floor_pages(&self) -> Option<u64> {
        self.balloon_floor_mb.map(|mb| mb.saturating_mul(256))
    }
}

/// What is wrong with a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineErrorKind {
    /// A key that needs a value has none (`loglevel`, `scrub=`).
    MissingValue,
    /// A flag was given a value (`selftest=1`).
    UnexpectedValue,
    /// The value is not one of those allowed.
    BadValue,
    /// The value is too long.
    TooLong,
}

impl fmt::Display for CmdlineErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmdlineErrorKind::MissingValue => "missing value",
            CmdlineErrorKind::UnexpectedValue => "takes no value",
            CmdlineErrorKind::BadValue => "bad value",
            CmdlineErrorKind::TooLong => "value too long",
        })
    }
}

/// A refused word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordError {
    /// The word (cut to [`MAX_REPORTED_WORD_BYTES`]).
    pub word: String,
    /// What is wrong with it.
    pub kind: CmdlineErrorKind,
}

/// The result of parsing a command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The settings from all valid words.
    pub args: KernelArgs,
    /// Unknown words (at most [`MAX_REPORTED_WORDS`]).
    pub unknown: Vec<String>,
    /// Malformed words (at most [`MAX_REPORTED_WORDS`]).
    pub errors: Vec<WordError>,
    /// Unknown or malformed words beyond the cap.
    pub dropped_reports: usize,
}

/// Cuts `word` to at most `MAX_REPORTED_WORD_BYTES` on a char boundary.
fn clip(word: &str) -> String {
    let mut end = word.len().min(MAX_REPORTED_WORD_BYTES);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&word[..end])
}

fn flag(value: Option<&str>) -> Result<(), CmdlineErrorKind> {
    match value {
        None => Ok(()),
        Some(_) => Err(CmdlineErrorKind::UnexpectedValue),
    }
}

fn required(value: Option<&str>) -> Result<&str, CmdlineErrorKind> {
    match value {
        None | Some("") => Err(CmdlineErrorKind::MissingValue),
        Some(v) => Ok(v),
    }
}

fn parse_level(v: &str) -> Result<LevelFilter, CmdlineErrorKind> {
    Ok(match v {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return Err(CmdlineErrorKind::BadValue),
    })
}

/// Decimal digits only, no sign, fits in u64.
fn parse_u64(v: &str) -> Result<u64, CmdlineErrorKind> {
    crate::parse::decimal_u64(v).map_err(|_| CmdlineErrorKind::BadValue)
}

/// Outcome of one word.
enum Word {
    Applied,
    Unknown,
}

fn apply(args: &mut KernelArgs, key: &str, value: Option<&str>) -> Result<Word, CmdlineErrorKind> {
    match key {
        "selftest" => {
            flag(value)?;
            args.selftest = true;
        }
        "selfballooning" => {
            flag(value)?;
            args.selfballooning = Some(true);
        }
        "noselfballooning" => {
            flag(value)?;
            args.selfballooning = Some(false);
        }
        "selfshrink" => {
            flag(value)?;
            args.selfshrink = Some(true);
        }
        "noselfshrink" => {
            flag(value)?;
            args.selfshrink = Some(false);
        }
        "loglevel" => args.loglevel = Some(parse_level(required(value)?)?),
        "e9log" => {
            args.e9log = Some(match required(value)? {
                "off" => LevelFilter::Off,
                v => parse_level(v)?,
            })
        }
        "selfballoon_mode" => {
            args.selfballoon_mode =
                Some(Mode::from_name(required(value)?).ok_or(CmdlineErrorKind::BadValue)?)
        }
        "workload" => {
            let v = required(value)?;
            if v.len() > MAX_WORKLOAD_BYTES {
                return Err(CmdlineErrorKind::TooLong);
            }
            args.workload = Some(String::from(v));
        }
        "scrub" => {
            args.scrub = Some(match required(value)? {
                "0" => false,
                "1" => true,
                _ => return Err(CmdlineErrorKind::BadValue),
            })
        }
        "swaprun" => {
            args.swaprun_s = Some(match value {
                None => SWAPRUN_DEFAULT_S,
                Some(v) => u32::try_from(parse_u64(v)?)
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or(CmdlineErrorKind::BadValue)?,
            })
        }
        "balloon_floor_mb" => args.balloon_floor_mb = Some(parse_u64(required(value)?)?),
        "crash" => {
            args.crash = Some(match required(value)? {
                "pf" => CrashKind::PageFault,
                "ud" => CrashKind::InvalidOpcode,
                "panic" => CrashKind::Panic,
                "hang" => CrashKind::Hang,
                "stack" => CrashKind::StackOverflow,
                "fail" => CrashKind::FailCheck,
                _ => return Err(CmdlineErrorKind::BadValue),
            })
        }
        _ => return Ok(Word::Unknown),
    }
    Ok(Word::Applied)
}

/// Appends `make()` unless `v` holds [`MAX_REPORTED_WORDS`] already.
fn push_capped<T>(v: &mut Vec<T>, make: impl FnOnce() -> T) -> bool {
    if v.len() < MAX_REPORTED_WORDS {
        v.push(make());
        true
    } else {
        false
    }
}

/// Parses a command line. Never fails as a whole.
pub fn parse(line: &str) -> Parsed {
    let mut out = Parsed::default();
    for word in line.split_ascii_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let kept = match apply(&mut out.args, key, value) {
            Ok(Word::Applied) => continue,
            Ok(Word::Unknown) => push_capped(&mut out.unknown, || clip(word)),
            Err(kind) => push_capped(&mut out.errors, || WordError {
                word: clip(word),
                kind,
            }),
        };
        if !kept {
            out.dropped_reports = out.dropped_reports.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn parses_known_words() {
        let p = parse(
            "selftest loglevel=debug selfballooning selfballoon_mode=linux \
             workload=grow:64M,hold:5s scrub=0 balloon_floor_mb=48",
        );
        assert!(p.errors.is_empty() && p.unknown.is_empty());
        let a = p.args;
        assert!(a.selftest);
        assert_eq!(a.loglevel, Some(LevelFilter::Debug));
        assert_eq!(a.selfballooning, Some(true));
        assert_eq!(a.selfballoon_mode, Some(Mode::Linux));
        assert_eq!(a.workload.as_deref(), Some("grow:64M,hold:5s"));
        assert_eq!(a.scrub, Some(false));
        assert_eq!(a.balloon_floor_mb, Some(48));
        assert_eq!(a.balloon_floor_pages(), Some(48 * 256));
    }

    #[test]
    fn swaprun_takes_an_optional_positive_limit() {
        assert_eq!(parse("swaprun").args.swaprun_s, Some(SWAPRUN_DEFAULT_S));
        assert_eq!(parse("swaprun=90").args.swaprun_s, Some(90));
        for bad in [
            "swaprun=0",
            "swaprun=-1",
            "swaprun=4294967296",
            "swaprun=1s",
            "swaprun=",
        ] {
            let p = parse(bad);
            assert_eq!(p.args.swaprun_s, None, "{bad}");
            assert_eq!(p.errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn empty_and_whitespace_lines() {
        for line in ["", "   ", "\t\n\r ", "\u{a0}"] {
            let p = parse(line);
            assert_eq!(p.args, KernelArgs::default());
            assert!(p.errors.is_empty());
        }
        // A non-breaking space is not ASCII whitespace: one unknown word.
        assert_eq!(parse("\u{a0}").unknown.len(), 1);
    }

    #[test]
    fn bad_words_are_reported_and_others_apply() {
        let p = parse(
            "selftest=1 loglevel=LOUD loglevel scrub=2 scrub= balloon_floor_mb=-1 \
             balloon_floor_mb=99999999999999999999999 selfballoon_mode=2019 \
             noselfballooning root=/dev/xvda1 = == foo=bar=baz loglevel=warn",
        );
        let kinds: Vec<_> = p.errors.iter().map(|e| (e.word.as_str(), e.kind)).collect();
        use CmdlineErrorKind::*;
        assert_eq!(
            kinds,
            vec![
                ("selftest=1", UnexpectedValue),
                ("loglevel=LOUD", BadValue),
                ("loglevel", MissingValue),
                ("scrub=2", BadValue),
                ("scrub=", MissingValue),
                ("balloon_floor_mb=-1", BadValue),
                ("balloon_floor_mb=99999999999999999999999", BadValue),
                ("selfballoon_mode=2019", BadValue),
            ]
        );
        assert_eq!(p.unknown, vec!["root=/dev/xvda1", "=", "==", "foo=bar=baz"]);
        assert!(!p.args.selftest);
        assert_eq!(p.args.selfballooning, Some(false));
        assert_eq!(p.args.loglevel, Some(LevelFilter::Warn));
        assert_eq!(parse("e9log=off").args.e9log, Some(LevelFilter::Off));
        assert_eq!(parse("e9log=info").args.e9log, Some(LevelFilter::Info));
        assert_eq!(parse("e9log=loud e9log").args.e9log, None);
        assert_eq!(p.args.scrub, None);
    }

    #[test]
    fn last_valid_occurrence_wins() {
        let p = parse("selfballooning noselfballooning scrub=0 scrub=1 scrub=x");
        assert_eq!(p.args.selfballooning, Some(false));
        assert_eq!(p.args.scrub, Some(true));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(parse("noselfshrink").args.selfshrink, Some(false));
        assert_eq!(parse("noselfshrink selfshrink").args.selfshrink, Some(true));
        assert!(!parse("noselfshrink=1").errors.is_empty());
    }

    #[test]
    fn hostile_lines_are_bounded() {
        let long = "é".repeat(10_000);
        let line = format!("{long} workload={long} {}", "x ".repeat(1000));
        let p = parse(&line);
        assert!(p.unknown.len() <= MAX_REPORTED_WORDS);
        assert!(p.unknown.iter().all(|w| w.len() <= MAX_REPORTED_WORD_BYTES));
        assert_eq!(p.errors[0].kind, CmdlineErrorKind::TooLong);
        assert!(p.errors[0].word.len() <= MAX_REPORTED_WORD_BYTES);
        assert_eq!(p.args.workload, None);
        assert!(p.dropped_reports > 900);
        let p = parse("crash=pf crash=bogus");
        assert_eq!(p.args.crash, Some(CrashKind::PageFault));
        assert_eq!(parse("crash=fail").args.crash, Some(CrashKind::FailCheck));
        assert_eq!(p.errors.len(), 1);
        let p = parse("workload=a\0b loglevel=info\0");
        assert_eq!(p.args.workload.as_deref(), Some("a\0b"));
        assert_eq!(p.errors[0].kind, CmdlineErrorKind::BadValue);
    }

    proptest! {
        #[test]
        fn never_panics_and_words_are_accounted(line in ".{0,300}") {
            let p = parse(&line);
            let words = line.split_ascii_whitespace().count();
            prop_assert!(p.unknown.len() + p.errors.len() + p.dropped_reports <= words);
        }

        #[test]
        fn floor_round_trips(n in any::<u64>()) {
            let p = parse(&format!("balloon_floor_mb={n}"));
            prop_assert_eq!(p.args.balloon_floor_mb, Some(n));
            prop_assert!(p.args.balloon_floor_pages().is_some());
            let _ = n.to_string();
        }
    }
}
