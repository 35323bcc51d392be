//! The selftest's result (XTF convention): one `Test result: WORD` line
//! on the console, and QEMU's exit status through isa-debug-exit.

use core::fmt;

use crate::text::Snippet;

/// What precedes the result word on the kernel's result line.
pub const RESULT_PREFIX: &str = "Test result: ";

/// I/O port of QEMU's isa-debug-exit device (`-device
/// isa-debug-exit,iobase=0xf4,iosize=0x04`, as every tier starts QEMU).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Longest line [`parse_result_line`] looks at, in bytes. The kernel's
/// line is about 20 bytes, 40 more with Xen's `(XEN) [ts] (d0) ` prefix.
pub const MAX_LINE_BYTES: usize = 4096;

/// The result of a run: of the kernel's selftest, and (as QEMU's exit
/// status) of a nested rig's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestResult {
    /// Every check passed.
    Success,
    /// A check failed.
    Failure,
    /// The run broke: a fatal trap, a panic, a failed boot.
    Error,
    /// Nothing could run here (no check passed and none failed).
    Skip,
}

impl TestResult {
    /// Every result, in the order of their exit values.
    pub const ALL: [TestResult; 4] = [
        TestResult::Success,
        TestResult::Failure,
        TestResult::Error,
        TestResult::Skip,
    ];

    /// The word printed after [`RESULT_PREFIX`].
    pub const fn word(self) -> &'static str {
        match self {
            TestResult::Success => "SUCCESS",
            TestResult::Failure => "FAILURE",
            TestResult::Error => "ERROR",
            TestResult::Skip => "SKIP",
        }
    }

    /// The result whose [`word`](Self::word) is exactly `word`.
    pub fn from_word(word: &str) -> Option<TestResult> {
        TestResult::ALL.into_iter().find(|r| r.word() == word)
    }

    /// The value written to [`DEBUG_EXIT_PORT`] to end the run.
    pub const fn debug_exit_value(self) -> u32 {
        match self {
            TestResult::Success => 0x10,
            TestResult::Failure => 0x11,
            TestResult::Error => 0x12,
            TestResult::Skip => 0x13,
        }
    }

    /// QEMU's exit status after the value was written: isa-debug-exit
    /// makes QEMU exit with `(value << 1) | 1` (33, 35, 37, 39).
    pub const fn qemu_exit_status(self) -> i32 {
        ((self.debug_exit_value() << 1) | 1) as i32
    }

    /// The result QEMU's exit status `status` stands for, if any (0 is a
    /// reset with `-no-reboot`, 1 an error of QEMU's own, ...).
    pub fn from_qemu_exit_status(status: i32) -> Option<TestResult> {
        TestResult::ALL
            .into_iter()
            .find(|r| r.qemu_exit_status() == status)
    }
}

impl fmt::Display for TestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The kernel's result line: displays as `Test result: SUCCESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultLine(pub TestResult);

impl fmt::Display for ResultLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(RESULT_PREFIX)?;
        f.write_str(self.0.word())
    }
}

/// Why a line gave no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultLineError<'a> {
    /// The line has no [`RESULT_PREFIX`]: an ordinary console line.
    NoResult,
    /// The line is longer than [`MAX_LINE_BYTES`].
    Overlong {
        /// The line's length in bytes.
        len: usize,
    },
    /// Nothing follows the prefix (a line cut short).
    MissingWord,
    /// The word after the prefix is none of [`TestResult::word`]'s.
    UnknownWord(&'a str),
}

impl fmt::Display for ResultLineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultLineError::NoResult => write!(f, "no `{}` in the line", RESULT_PREFIX.trim_end()),
            ResultLineError::Overlong { len } => write!(
                f,
                "result line of {len} bytes is longer than the {MAX_LINE_BYTES} allowed"
            ),
            ResultLineError::MissingWord => write!(
                f,
                "`{}` is not followed by a result (truncated line?)",
                RESULT_PREFIX.trim_end()
            ),
            ResultLineError::UnknownWord(w) => write!(
                f,
                "unknown result {} (expected SUCCESS, FAILURE, ERROR or SKIP)",
                Snippet(w)
            ),
        }
    }
}

/// Finds the result in a console line. The prefix may appear anywhere
/// (serial lines under Xen carry `(XEN) [ts] (d0) `); the result is the
/// whitespace-delimited word after its first occurrence, and whatever
/// follows that word is ignored (`Test result: FAILURE (2 checks)`).
pub fn parse_result_line(line: &str) -> Result<TestResult, ResultLineError<'_>> {
    if line.len() > MAX_LINE_BYTES {
        return Err(ResultLineError::Overlong { len: line.len() });
    }
    let at = line.find(RESULT_PREFIX).ok_or(ResultLineError::NoResult)?;
    let word = line[at + RESULT_PREFIX.len()..]
        .split_whitespace()
        .next()
        .ok_or(ResultLineError::MissingWord)?;
    TestResult::from_word(word).ok_or(ResultLineError::UnknownWord(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    #[test]
    fn codes_are_the_established_ones() {
        let codes: [(TestResult, u32, i32, &str); 4] = [
            (TestResult::Success, 0x10, 33, "SUCCESS"),
            (TestResult::Failure, 0x11, 35, "FAILURE"),
            (TestResult::Error, 0x12, 37, "ERROR"),
            (TestResult::Skip, 0x13, 39, "SKIP"),
        ];
        for (r, value, status, word) in codes {
            assert_eq!(r.debug_exit_value(), value);
            assert_eq!(r.qemu_exit_status(), status);
            assert_eq!(r.word(), word);
        }
        assert_eq!(DEBUG_EXIT_PORT, 0xf4);
    }

    #[test]
    fn round_trips() {
        for r in TestResult::ALL {
            assert_eq!(TestResult::from_word(r.word()), Some(r));
            assert_eq!(
                TestResult::from_qemu_exit_status(r.qemu_exit_status()),
                Some(r)
            );
            let line = format!("{}", ResultLine(r));
            assert_eq!(line, format!("Test result: {}", r.word()));
            assert_eq!(parse_result_line(&line), Ok(r));
            assert_eq!(format!("{r}"), r.word());
        }
    }

    #[test]
    fn exit_values_fit_a_byte_and_an_exit_status() {
        // dom0-init.sh writes the value as one byte; the status must be
        // an exit status (0..=255) that is neither 0 nor 1.
        for r in TestResult::ALL {
            assert!(r.debug_exit_value() < 0x80);
            assert!((2..=255).contains(&r.qemu_exit_status()));
        }
    }

    #[test]
    fn other_exit_statuses_are_no_result() {
        for s in [
            -1,
            0,
            1,
            2,
            32,
            34,
            36,
            38,
            40,
            41,
            255,
            256,
            i32::MIN,
            i32::MAX,
        ] {
            assert_eq!(TestResult::from_qemu_exit_status(s), None, "{s}");
        }
    }

    #[test]
    fn finds_the_word_behind_prefixes() {
        assert_eq!(
            parse_result_line("(XEN) [    3.1] (d0) Test result: SUCCESS"),
            Ok(TestResult::Success)
        );
        assert_eq!(
            parse_result_line("Test result: FAILURE (2 checks)"),
            Ok(TestResult::Failure)
        );
        assert_eq!(
            parse_result_line("Test result: SKIP\r"),
            Ok(TestResult::Skip)
        );
        // The first occurrence counts.
        assert_eq!(
            parse_result_line("Test result: ERROR Test result: SUCCESS"),
            Ok(TestResult::Error)
        );
    }

    #[test]
    fn hostile_lines() {
        assert_eq!(parse_result_line(""), Err(ResultLineError::NoResult));
        assert_eq!(
            parse_result_line("no result"),
            Err(ResultLineError::NoResult)
        );
        assert_eq!(
            parse_result_line("Test result:SUCCESS"),
            Err(ResultLineError::NoResult)
        );
        assert_eq!(
            parse_result_line("test result: SUCCESS"),
            Err(ResultLineError::NoResult)
        );
        // Truncated.
        assert_eq!(
            parse_result_line("Test result: "),
            Err(ResultLineError::MissingWord)
        );
        assert_eq!(
            parse_result_line("Test result:  \t "),
            Err(ResultLineError::MissingWord)
        );
        assert_eq!(
            parse_result_line("Test res"),
            Err(ResultLineError::NoResult)
        );
        assert_eq!(
            parse_result_line("Test result: SUCC"),
            Err(ResultLineError::UnknownWord("SUCC"))
        );
        // Garbage and near misses.
        for w in [
            "maybe",
            "success",
            "SUCCESSFUL",
            "SUCCESS,",
            "\u{0}",
            "ÉRROR",
        ] {
            let line = format!("Test result: {w}");
            assert_eq!(
                parse_result_line(&line),
                Err(ResultLineError::UnknownWord(w))
            );
        }
        // Overlong: refused whatever it holds.
        let mut long = String::from("Test result: SUCCESS ");
        long.push_str(&"x".repeat(MAX_LINE_BYTES));
        assert_eq!(
            parse_result_line(&long),
            Err(ResultLineError::Overlong { len: long.len() })
        );
        let fits = format!("{}Test result: SUCCESS", " ".repeat(MAX_LINE_BYTES - 20));
        assert_eq!(fits.len(), MAX_LINE_BYTES);
        assert_eq!(parse_result_line(&fits), Ok(TestResult::Success));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let long_word = "Z".repeat(1000);
        let line = format!("Test result: {long_word}");
        let msg = format!("{}", parse_result_line(&line).unwrap_err());
        assert!(msg.starts_with("unknown result \"ZZZ"), "{msg}");
        assert!(msg.len() < 120, "error quotes too much: {msg}");
        let msg = format!(
            "{}",
            parse_result_line("Test result: \u{1b}[31m").unwrap_err()
        );
        assert!(msg.contains("\\u{1b}"), "control characters escaped: {msg}");
        let msg = format!("{}", parse_result_line("Test result: ").unwrap_err());
        assert!(msg.contains("truncated"), "{msg}");
        let msg = format!("{}", ResultLineError::Overlong { len: 5000 });
        assert!(msg.contains("5000") && msg.contains("4096"), "{msg}");
    }
}
