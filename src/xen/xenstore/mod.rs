//! xenstore client.
//!
//! [`Store`] is what the rest of the kernel (balloon driver, controller)
//! uses; the ring protocol implementation lives in submodules.

use alloc::string::String;
use alloc::vec::Vec;

use crate::xen::errno::Errno;

/// Why a xenstore operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered XS_ERROR with this errno (ENOENT, EACCES, ...).
    Remote(Errno),
    /// The peer broke the protocol (bad header, bad length, bad index).
    Protocol,
    /// A path, value or token is too long or contains a NUL.
    BadArgument,
    /// No reply within the deadline.
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
}
