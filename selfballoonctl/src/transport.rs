//! xenstore over a byte stream: xenstored's Unix socket or the kernel's
//! `/dev/xen/xenbus`.
//!
//! Both carry the same messages as the shared ring of a guest: a 16-byte
//! `xsd_sockmsg` header and its payload (Xen's `docs/misc/xenstore.txt`).
//! Framing, payloads and reply parsing are the guest's own code,
//! [`selfballoon::xen::xenstore::wire`]; this module only moves the bytes
//! and matches replies to requests. One request is in flight at a time;
//! the reply must carry its `req_id` (xenstored copies the request's
//! header; Linux's xenbus device restores the caller's id). Watch events
//! (the tool registers none, so any are stray) are skipped, at most
//! [`MAX_SKIPPED`] per request.
//!
//! Whatever the peer sends cannot make this panic: a header announcing
//! more than `XENSTORE_PAYLOAD_MAX` bytes, a reply to another request, a
//! reply of another type, a payload that is not what its type needs, a
//! connection closed mid-message: each is an [`XsError`], with a
//! [`detail`](Connection::take_detail) for the error message. After any
//! failure but an XS_ERROR reply the stream's framing is no longer known
//! and every later call fails with [`XsError::Protocol`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use selfballoon::xen::abi::{
    XS_DIRECTORY, XS_ERROR, XS_READ, XS_RM, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
};
use selfballoon::xen::xenstore::wire::{self, Header, HEADER_LEN};
use selfballoon::xen::xenstore::{Store, XsError};

use crate::error::Error;

/// xenstored's socket, in the order libxenstore tries them.
pub const SOCKET_PATHS: [&str; 2] = ["/run/xenstored/socket", "/var/run/xenstored/socket"];
/// The kernel's xenstore device (dom0 without a local xenstored socket,
/// e.g. a xenstore stub domain), then its older place.
pub const DEVICE_PATHS: [&str; 2] = ["/dev/xen/xenbus", "/proc/xen/xenbus"];
/// Environment variable libxenstore also honours for the socket path.
pub const SOCKET_ENV: &str = "XENSTORED_PATH";
/// Stray messages (watch events) one request skips at most.
pub const MAX_SKIPPED: usize = 1024;

/// Where to find xenstored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix stream socket.
    Socket(PathBuf),
    /// A character device (`/dev/xen/xenbus`).
    Device(PathBuf),
}

impl Endpoint {
    pub fn path(&self) -> &Path {
        match self {
            Endpoint::Socket(p) | Endpoint::Device(p) => p,
        }
    }
}

/// The endpoints to try: the one asked for, else `$XENSTORED_PATH`, else
/// the standard sockets and devices.
pub fn endpoints(explicit: Option<&Path>, env: Option<&str>) -> Vec<Endpoint> {
    let classify = |p: &Path| {
        if p.starts_with("/dev") || p.starts_with("/proc") {
            Endpoint::Device(p.to_path_buf())
        } else {
            Endpoint::Socket(p.to_path_buf())
        }
    };
    if let Some(p) = explicit {
        return vec![classify(p)];
    }
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return vec![classify(Path::new(p))];
    }
    SOCKET_PATHS
        .iter()
        .map(|p| Endpoint::Socket(PathBuf::from(p)))
        .chain(
            DEVICE_PATHS
                .iter()
                .map(|p| Endpoint::Device(PathBuf::from(p))),
        )
        .collect()
}

/// An open socket or device.
#[derive(Debug)]
pub enum Stream {
    Socket(UnixStream),
    Device(File),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Socket(s) => s.read(buf),
            Stream::Device(f) => f.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Socket(s) => s.write(buf),
            Stream::Device(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Socket(s) => s.flush(),
            Stream::Device(f) => f.flush(),
        }
    }
}

/// Connects to the first endpoint that opens. A socket gets `timeout`
/// for each read and write; the device has none (the kernel's xenbus
/// driver answers, or fails, like `xenstore-read` over it).
pub fn connect(endpoints: &[Endpoint], timeout: Duration) -> Result<Connection<Stream>, Error> {
    let mut tried = Vec::new();
    for ep in endpoints {
        let opened = match ep {
            Endpoint::Socket(p) => UnixStream::connect(p).and_then(|s| {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Ok(Stream::Socket(s))
            }),
            Endpoint::Device(p) => OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map(Stream::Device),
        };
        match opened {
            Ok(s) => return Ok(Connection::new(s)),
            Err(e) => tried.push((ep.path().to_path_buf(), e)),
        }
    }
    Err(Error::NoXenstore(tried))
}

/// A xenstore connection over a byte stream; implements the guest's
/// [`Store`] trait, so the same calls serve the tool and the guest.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    next_req_id: u32,
    broken: bool,
    detail: Option<String>,
    skipped: u64,
}

impl<S: Read + Write> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            next_req_id: 1,
            broken: false,
            detail: None,
            skipped: 0,
        }
    }

    /// What the last failure looked like on the wire, once.
    pub fn take_detail(&mut self) -> Option<String> {
        self.detail.take()
    }

    /// Stray messages skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn fail(&mut self, err: XsError, detail: String) -> XsError {
        self.broken = true;
        self.detail = Some(detail);
        err
    }

    fn io_error(&mut self, e: io::Error, doing: &str) -> XsError {
        let err = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => XsError::Timeout,
            _ => XsError::Unavailable,
        };
        self.fail(err, format!("{doing}: {e}"))
    }

    /// Fills `buf`; returns how many bytes came before end of file.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    fn read_message(&mut self) -> Result<(Header, Vec<u8>), XsError> {
        let mut head = [0u8; HEADER_LEN];
        match self.read_full(&mut head) {
            Ok(HEADER_LEN) => {}
            Ok(0) => {
                return Err(self.fail(
                    XsError::Unavailable,
                    "xenstored closed the connection".into(),
                ))
            }
            Ok(n) => {
                return Err(self.fail(
                    XsError::Protocol,
                    format!("reply header cut short after {n} of {HEADER_LEN} bytes"),
                ))
            }
            Err(e) => return Err(self.io_error(e, "reading a reply")),
        }
        let header = match Header::from_bytes(&head) {
            Ok(h) => h,
            Err(e) => {
                let len = u32::from_ne_bytes([head[12], head[13], head[14], head[15]]);
                return Err(self.fail(
                    e,
                    format!(
                        "reply header announces {len} payload bytes, more than xenstore allows"
                    ),
                ));
            }
        };
        let mut payload = vec![0u8; header.len as usize];
        match self.read_full(&mut payload) {
            Ok(n) if n == payload.len() => Ok((header, payload)),
            Ok(n) => Err(self.fail(
                XsError::Protocol,
                format!("reply cut short after {n} of {} payload bytes", header.len),
            )),
            Err(e) => Err(self.io_error(e, "reading a reply")),
        }
    }

    /// Sends one request and returns its reply's payload. An XS_ERROR
    /// reply is `Remote(errno)` (and leaves the connection usable).
    pub fn request(&mut self, ty: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if self.broken {
            self.detail = Some("the connection failed before".into());
            return Err(XsError::Protocol);
        }
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.checked_add(1).unwrap_or(1);
        let msg = wire::encode(ty, req_id, 0, payload)?;
        if let Err(e) = self
            .stream
            .write_all(&msg)
            .and_then(|()| self.stream.flush())
        {
            return Err(self.io_error(e, "sending a request"));
        }
        for _ in 0..=MAX_SKIPPED {
            let (h, body) = self.read_message()?;
            if h.ty == XS_WATCH_EVENT {
                self.skipped = self.skipped.saturating_add(1);
                continue;
            }
            if h.req_id != req_id {
                return Err(self.fail(
                    XsError::Protocol,
                    format!("reply to request {} while waiting for {req_id}", h.req_id),
                ));
            }
            if h.ty == XS_ERROR {
                let e = wire::parse_error(&body);
                if e == XsError::Protocol {
                    return Err(self.fail(e, "malformed error reply".into()));
                }
                return Err(e);
            }
            if h.ty != ty {
                return Err(self.fail(
                    XsError::Protocol,
                    format!("reply of type {} to a request of type {ty}", h.ty),
                ));
            }
            return Ok(body);
        }
        Err(self.fail(
            XsError::Protocol,
            format!("more than {MAX_SKIPPED} stray messages before the reply"),
        ))
    }

    /// Parses a reply payload; a payload of the wrong shape breaks the
    /// connection like any other protocol error.
    fn parsed<T>(&mut self, r: Result<T, XsError>, what: &'static str) -> Result<T, XsError> {
        r.map_err(|e| self.fail(e, format!("malformed {what} reply")))
    }
}

impl<S: Read + Write> Store for Connection<S> {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        let reply = self.request(XS_READ, &wire::path_payload(path)?)?;
        let v = wire::parse_value(&reply);
        self.parsed(v, "read")
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        let reply = self.request(XS_WRITE, &wire::write_payload(path, value)?)?;
        let v = wire::parse_ack(&reply);
        self.parsed(v, "write")
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let reply = self.request(XS_DIRECTORY, &wire::path_payload(path)?)?;
        let v = wire::parse_directory(&reply);
        self.parsed(v, "directory")
    }

    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let reply = self.request(XS_RM, &wire::path_payload(path)?)?;
        let v = wire::parse_ack(&reply);
        self.parsed(v, "rm")
    }

    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let reply = self.request(XS_WATCH, &wire::watch_payload(path, token)?)?;
        let v = wire::parse_ack(&reply);
        self.parsed(v, "watch")
    }

    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let reply = self.request(XS_UNWATCH, &wire::watch_payload(path, token)?)?;
        let v = wire::parse_ack(&reply);
        self.parsed(v, "unwatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_order() {
        let all = endpoints(None, None);
        assert_eq!(
            all,
            vec![
                Endpoint::Socket("/run/xenstored/socket".into()),
                Endpoint::Socket("/var/run/xenstored/socket".into()),
                Endpoint::Device("/dev/xen/xenbus".into()),
                Endpoint::Device("/proc/xen/xenbus".into()),
            ]
        );
        assert_eq!(
            endpoints(None, Some("/tmp/xs")),
            vec![Endpoint::Socket("/tmp/xs".into())]
        );
        assert_eq!(endpoints(None, Some("")), all);
        assert_eq!(
            endpoints(Some(Path::new("/dev/xen/xenbus")), Some("/tmp/xs")),
            vec![Endpoint::Device("/dev/xen/xenbus".into())]
        );
    }

    #[test]
    fn missing_everything_is_no_xenstore() {
        let eps = [
            Endpoint::Socket("/nonexistent/selfballoonctl/socket".into()),
            Endpoint::Device("/nonexistent/selfballoonctl/xenbus".into()),
        ];
        let e = connect(&eps, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::NO_XENSTORE);
        let msg = e.to_string();
        assert!(
            msg.starts_with("no xenstore: /nonexistent/selfballoonctl/socket: "),
            "{msg}"
        );
        assert!(
            msg.contains("; /nonexistent/selfballoonctl/xenbus: "),
            "{msg}"
        );
    }
}
