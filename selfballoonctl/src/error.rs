//! What can go wrong, and the exit code each failure ends the process
//! with (documented in the README and in `--help`).

use std::fmt;
use std::path::PathBuf;

use selfballoon::xen::xenstore::XsError;

/// Exit codes. 2 is clap's own for a command line it cannot parse.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Anything else: writing the output failed, an argument too long for
    /// xenstore, an `export --output` file that cannot be written.
    pub const OTHER: u8 = 1;
    /// The command line did not parse (clap).
    pub const USAGE: u8 = 2;
    /// No domain with that name or id (or a name that several share).
    pub const UNKNOWN_DOMAIN: u8 = 3;
    /// Not a key `get`/`set` know.
    pub const UNKNOWN_KEY: u8 = 4;
    /// The guest's parser refused the value; nothing was written.
    pub const REJECTED: u8 = 5;
    /// No xenstore: no socket or device, permission denied, refused, or
    /// the connection closed.
    pub const NO_XENSTORE: u8 = 6;
    /// xenstored answered with an error (EACCES, EINVAL, ...).
    pub const XENSTORED_ERROR: u8 = 7;
    /// xenstored's reply was malformed, or did not come in time.
    pub const BAD_REPLY: u8 = 8;
    /// `get`: the key is known but neither the guest nor dom0 has a value.
    pub const NO_VALUE: u8 = 9;
}

/// A failed command.
#[derive(Debug)]
pub enum Error {
    /// No domain matches.
    UnknownDomain(String),
    /// A name several domains share (their ids).
    AmbiguousDomain(String, Vec<u16>),
    /// Not a tunable (or `memory/target`, `memory/workload`).
    UnknownKey(String),
    /// The guest's parser refused the value: its own words.
    Rejected {
        key: String,
        value: String,
        reason: String,
    },
    /// Could not reach xenstored at any of these paths.
    NoXenstore(Vec<(PathBuf, std::io::Error)>),
    /// A xenstore request failed (`detail`: what the transport saw).
    Xenstore {
        what: String,
        err: XsError,
        detail: Option<String>,
    },
    /// `get`: no value anywhere.
    NoValue { domain: String, key: String },
    /// Writing the output.
    Output(std::io::Error),
    /// A value or path xenstore cannot carry, and similar.
    Other(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::UnknownDomain(_) | Error::AmbiguousDomain(..) => exit::UNKNOWN_DOMAIN,
            Error::UnknownKey(_) => exit::UNKNOWN_KEY,
            Error::Rejected { .. } => exit::REJECTED,
            Error::NoXenstore(_) => exit::NO_XENSTORE,
            Error::Xenstore { err, .. } => match err {
                XsError::Remote(_) => exit::XENSTORED_ERROR,
                XsError::Protocol | XsError::Timeout => exit::BAD_REPLY,
                XsError::Unavailable => exit::NO_XENSTORE,
                XsError::BadArgument => exit::OTHER,
            },
            Error::NoValue { .. } => exit::NO_VALUE,
            Error::Output(_) | Error::Other(_) => exit::OTHER,
        }
    }

    /// A xenstore failure while doing `what`.
    pub fn xs(what: impl Into<String>, err: XsError) -> Self {
        Error::Xenstore {
            what: what.into(),
            err,
            detail: None,
        }
    }
}

fn describe(err: &XsError) -> String {
    match err {
        XsError::Remote(e) => format!("xenstored refused it: {e}"),
        XsError::Protocol => "malformed reply from xenstored".into(),
        XsError::Timeout => "no reply from xenstored in time".into(),
        XsError::Unavailable => "lost the connection to xenstored".into(),
        XsError::BadArgument => "too long or contains a NUL for xenstore".into(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownDomain(d) => write!(f, "unknown domain '{d}'"),
            Error::AmbiguousDomain(d, ids) => {
                let ids: Vec<String> = ids.iter().map(u16::to_string).collect();
                write!(
                    f,
                    "domain name '{d}' is ambiguous (ids {}); give the id",
                    ids.join(", ")
                )
            }
            Error::UnknownKey(k) => write!(
                f,
                "unknown key '{k}' (known: {})",
                crate::keys::known_names().join(", ")
            ),
            Error::Rejected { key, value, reason } => write!(
                f,
                "value {value:?} for {key} refused by the guest's parser: {reason}; nothing written"
            ),
            Error::NoXenstore(tried) => {
                f.write_str("no xenstore")?;
                for (i, (p, e)) in tried.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{}: {e}", p.display())?;
                }
                if tried.is_empty() {
                    f.write_str(": nothing to try")?;
                }
                Ok(())
            }
            Error::Xenstore { what, err, detail } => {
                write!(f, "{what}: {}", describe(err))?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Error::NoValue { domain, key } => write!(
                f,
                "{key} of {domain}: no value (the guest has not published it and dom0 has not set it)"
            ),
            Error::Output(e) => write!(f, "writing output: {e}"),
            Error::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Output(e)
    }
}
