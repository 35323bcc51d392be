//! The emulator-fault marker: a file in the run directory that names the
//! guests whose saved vCPU state proved a fault of QEMU's emulated SVM
//! rather than of the guest (`_emulator_fault_check` in
//! `tests/nested/lib.sh`). `cargo xtask nested` runs a failed scenario
//! once more when the file holds an entry.
//!
//! One line per guest and event, appended by the shell:
//!
//! ```text
//! <domain name>: <what was seen>
//! ```

use core::fmt;

use crate::text::{bounded_utf8, Snippet, TextError};

/// The marker file's name in the run directory.
pub const EMULATOR_FAULT_FILE: &str = "emulator-fault";
/// Between the domain name and the detail on each line.
pub const FAULT_SEPARATOR: &str = ": ";
/// Largest marker file accepted, in bytes.
pub const MAX_FAULT_BYTES: usize = 64 * 1024;

/// One line of the marker file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultEntry<'a> {
    /// The guest's domain name (as `xl list` shows it).
    pub domain: &'a str,
    /// What the rig saw (the saved code selector and RIP).
    pub detail: &'a str,
}

impl fmt::Display for FaultEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{FAULT_SEPARATOR}{}", self.domain, self.detail)
    }
}

/// Why a marker file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError<'a> {
    /// The file is larger than [`MAX_FAULT_BYTES`].
    Overlong {
        /// Its size in bytes (at least what was read).
        len: usize,
    },
    /// The file is not UTF-8.
    NotUtf8 {
        /// Bytes of valid UTF-8 before the first bad one.
        valid_up_to: usize,
    },
    /// A line is not `<domain>: <detail>`.
    BadEntry {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: &'a str,
    },
}

impl fmt::Display for FaultError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::Overlong { len } => write!(
                f,
                "{EMULATOR_FAULT_FILE} file is larger than the {MAX_FAULT_BYTES} bytes allowed ({len} read)"
            ),
            FaultError::NotUtf8 { valid_up_to } => write!(
                f,
                "{EMULATOR_FAULT_FILE} file is not UTF-8 (bad byte at offset {valid_up_to})"
            ),
            FaultError::BadEntry { line, text } => write!(
                f,
                "{EMULATOR_FAULT_FILE} line {line} {} is not `<domain>: <detail>`",
                Snippet(text)
            ),
        }
    }
}

/// A validated marker file: every non-blank line is an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatorFaults<'a> {
    text: &'a str,
}

impl<'a> EmulatorFaults<'a> {
    /// Checks a marker file's bytes. A blank file is valid and empty.
    pub fn parse(bytes: &'a [u8]) -> Result<EmulatorFaults<'a>, FaultError<'a>> {
        let text = bounded_utf8(bytes, MAX_FAULT_BYTES).map_err(|e| match e {
            TextError::Overlong { len, .. } => FaultError::Overlong { len },
            TextError::NotUtf8 { valid_up_to } => FaultError::NotUtf8 { valid_up_to },
        })?;
        let faults = EmulatorFaults { text };
        for (i, line) in faults.lines() {
            if entry(line).is_none() {
                return Err(FaultError::BadEntry {
                    line: i + 1,
                    text: line,
                });
            }
        }
        Ok(faults)
    }

    fn lines(&self) -> impl Iterator<Item = (usize, &'a str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i, l.trim_end()))
            .filter(|(_, l)| !l.is_empty())
    }

    /// The entries, in the order they were written.
    pub fn entries(&self) -> impl Iterator<Item = FaultEntry<'a>> {
        self.lines().filter_map(|(_, l)| entry(l))
    }

    /// Whether the file names no fault (then nothing is run again).
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }
}

/// `<domain>: <detail>` with a domain name free of whitespace and colons.
fn entry(line: &str) -> Option<FaultEntry<'_>> {
    let (domain, detail) = line.split_once(FAULT_SEPARATOR)?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == ':';
    if domain.is_empty() || domain.contains(bad) {
        return None;
    }
    Some(FaultEntry {
        domain,
        detail: detail.trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const LINE: &str = "sb: saved vCPU state is Xen's own (cs e008, rip ffff82d040200000): \
                        emulated SVM fault in QEMU TCG, not a guest fault";

    #[test]
    fn what_the_shell_writes() {
        let file = std::format!("{LINE}\nsoak: saved vCPU state is Xen's own (cs e008, rip 1)\n");
        let f = EmulatorFaults::parse(file.as_bytes()).unwrap();
        let e: Vec<FaultEntry<'_>> = f.entries().collect();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].domain, "sb");
        assert!(e[0]
            .detail
            .starts_with("saved vCPU state is Xen's own (cs e008"));
        assert_eq!(e[1].domain, "soak");
        assert!(!f.is_empty());
        assert_eq!(e[0].to_string(), LINE);
    }

    #[test]
    fn round_trip() {
        let e = FaultEntry {
            domain: "guest-1",
            detail: "cs e008: Xen's",
        };
        let line = e.to_string();
        let f = EmulatorFaults::parse(line.as_bytes()).unwrap();
        assert_eq!(f.entries().next(), Some(e));
    }

    #[test]
    fn blank_is_no_fault() {
        for b in [&b""[..], b"\n", b"  \n\t\n"] {
            let f = EmulatorFaults::parse(b).unwrap();
            assert!(f.is_empty());
            assert_eq!(f.entries().count(), 0);
        }
    }

    #[test]
    fn hostile_files() {
        assert_eq!(
            EmulatorFaults::parse(b"garbage"),
            Err(FaultError::BadEntry {
                line: 1,
                text: "garbage"
            })
        );
        // Truncated second line.
        let file = std::format!("{LINE}\nsoa");
        assert_eq!(
            EmulatorFaults::parse(file.as_bytes()),
            Err(FaultError::BadEntry {
                line: 2,
                text: "soa"
            })
        );
        for bad in [
            ": detail",
            "two words: x",
            "a:b: x",
            "sb:x",
            "\u{7}: x",
            " sb: x",
        ] {
            assert!(
                matches!(
                    EmulatorFaults::parse(bad.as_bytes()),
                    Err(FaultError::BadEntry { line: 1, .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            EmulatorFaults::parse(b"sb: \xfe"),
            Err(FaultError::NotUtf8 { valid_up_to: 4 })
        );
        let mut big = String::new();
        while big.len() <= MAX_FAULT_BYTES {
            big.push_str(LINE);
            big.push('\n');
        }
        assert_eq!(
            EmulatorFaults::parse(big.as_bytes()),
            Err(FaultError::Overlong { len: big.len() })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = EmulatorFaults::parse(b"sb: ok\n\x1b[2Jwipe").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 2") && msg.contains("\\u{1b}"), "{msg}");
        assert!(msg.contains("emulator-fault"), "{msg}");
        let msg = FaultError::Overlong { len: 70_000 }.to_string();
        assert!(msg.contains("70000") && msg.contains("65536"), "{msg}");
    }
}
