//! xenstore client.
//!
//! [`Store`] is what the rest of the kernel (balloon driver, controller)
//! uses; the ring protocol implementation lives in submodules:
//!
//! - [`wire`]: encoding and decoding of `xsd_sockmsg` messages;
//! - [`ring`]: index arithmetic over the shared page, behind [`RingPage`]
//!   (the kernel's page is a [`VolatilePage`]);
//! - [`client`]: [`XenstoreClient`], which implements [`Store`] over a
//!   [`RingPage`] and a [`Waiter`] (the store event channel).
//!
//! Wiring in the kernel (sketch):
//!
//! ```text
//! // HVM_PARAM_STORE_PFN -> page mapped at `va`; HVM_PARAM_STORE_EVTCHN -> port
//! let page = unsafe { VolatilePage::new(va as *mut xenstore_domain_interface) };
//! let mut xs = XenstoreClient::new(page, StoreWaiter { port, .. });
//! let target_kib = xs.read_u64("memory/target")?;    // relative to ~
//! xs.watch("memory/target", "balloon")?;
//! // when the store event fires (or on each tick):
//! for path in xs.take_watch_events("balloon")? { /* re-read target */ }
//! // each call reads a bounded number of messages; if the peer left more,
//! // poll again soon rather than block on the event channel:
//! if xs.has_pending_input() { /* next loop iteration without waiting */ }
//! // logging anything dom0 wrote:
//! log::info!("value {}", untrusted(&value));
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::xen::errno::Errno;

pub mod client;
pub mod ring;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{ClientStats, Transaction, Waiter, WatchEvent, XenstoreClient};
pub use ring::{RingPage, VolatilePage};
pub use wire::parse_u64;

/// Why a xenstore operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered XS_ERROR with this errno (ENOENT, EACCES, ...).
    Remote(Errno),
    /// The peer broke the protocol (bad header, bad length, bad index,
    /// malformed payload), or a value did not have the form asked for
    /// (e.g. [`Store::read_u64`] on "12k").
    Protocol,
    /// A path, value or token is too long or contains a NUL.
    BadArgument,
    /// No reply within the deadline, or within the messages one call may
    /// read ([`client::MAX_MESSAGES_PER_REQUEST`]).
    Timeout,
    /// No xenstore here (dom0 without xenstored, no hypervisor).
    Unavailable,
}

/// The operations the kernel needs from xenstore. Paths are absolute
/// (`/local/domain/3/memory/target`) or relative to the domain's home.
pub trait Store {
    fn read(&mut self, path: &str) -> Result<String, XsError>;
    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError>;
    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError>;
    fn rm(&mut self, path: &str) -> Result<(), XsError>;
    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError>;
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError>;

    /// Reads a decimal number, strictly: digits only, no sign, space or
    /// newline, no overflow; anything else is [`XsError::Protocol`].
    fn read_u64(&mut self, path: &str) -> Result<u64, XsError> {
        parse_u64(&self.read(path)?)
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Remote(e) => write!(f, "xenstored: {e}"),
            XsError::Protocol => f.write_str("xenstore protocol error"),
            XsError::BadArgument => f.write_str("bad xenstore argument"),
            XsError::Timeout => f.write_str("xenstore timeout"),
            XsError::Unavailable => f.write_str("no xenstore"),
        }
    }
}

pub use crate::parse::{untrusted, Untrusted, LOG_MAX_BYTES};
