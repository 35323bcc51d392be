//! The xenstore wire format (public/io/xs_wire.h): a 16-byte
//! `xsd_sockmsg` header (type, req_id, tx_id, len) in native byte order,
//! then `len` payload bytes, usually NUL-terminated strings.
//!
//! Everything that comes from the peer is checked here: a header whose
//! `len` exceeds [`XENSTORE_PAYLOAD_MAX`] and any payload that does not
//! have the shape its type requires is [`XsError::Protocol`]. Arguments
//! we are about to send that are too long or contain a NUL are
//! [`XsError::BadArgument`].

use alloc::string::String;
use alloc::vec::Vec;

use super::XsError;
use crate::xen::abi::{
    XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX, XS_WATCH_EVENT,
};
use crate::xen::errno::Errno;

/// Size of the `xsd_sockmsg` header.
pub const HEADER_LEN: usize = 16;

/// A decoded `xsd_sockmsg` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// XS_* message type.
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    /// Payload length, at most [`XENSTORE_PAYLOAD_MAX`] once decoded.
    pub len: u32,
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.ty.to_ne_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_ne_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_ne_bytes());
        b[12..16].copy_from_slice(&self.len.to_ne_bytes());
        b
    }

    /// Decodes a header received from the peer; a payload length above
    /// [`XENSTORE_PAYLOAD_MAX`] is a protocol error.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<Header, XsError> {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let h = Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        };
        if h.len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::Protocol);
        }
        Ok(h)
    }
}

/// A whole message: header plus payload (`payload.len() == header.len`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payload: Vec<u8>,
}

/// Encodes a message for the ring. A payload above
/// [`XENSTORE_PAYLOAD_MAX`] is [`XsError::BadArgument`].
pub fn encode(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
    if payload.len() > XENSTORE_PAYLOAD_MAX {
        return Err(XsError::BadArgument);
    }
    let header = Header {
        ty,
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes one complete message from `bytes` (header and exactly `len`
/// payload bytes, nothing more).
pub fn decode(bytes: &[u8]) -> Result<Message, XsError> {
    let head: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(XsError::Protocol)?;
    let header = Header::from_bytes(head)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != header.len as usize {
        return Err(XsError::Protocol);
    }
    Ok(Message {
        header,
        payload: payload.to_vec(),
    })
}

// ---------------------------------------------------------------------------
// Request payloads
// ---------------------------------------------------------------------------

/// Checks a path we are about to send: non-empty, no NUL, within
/// xenstored's limits for absolute (`/...`) or relative paths.
pub fn check_path(path: &str) -> Result<(), XsError> {
    let max = if path.starts_with('/') {
        XENSTORE_ABS_PATH_MAX
    } else {
        XENSTORE_REL_PATH_MAX
    };
    if path.is_empty() || path.len() > max || path.contains('\0') {
        return Err(XsError::BadArgument);
    }
    Ok(())
}

/// Checks a value or token we are about to send: no NUL.
pub fn check_text(s: &str) -> Result<(), XsError> {
    if s.contains('\0') {
        return Err(XsError::BadArgument);
    }
    Ok(())
}

fn finish(payload: Vec<u8>) -> Result<Vec<u8>, XsError> {
    if payload.len() > XENSTORE_PAYLOAD_MAX {
        return Err(XsError::BadArgument);
    }
    Ok(payload)
}

/// `path\0`: XS_READ, XS_DIRECTORY, XS_RM, XS_MKDIR.
pub fn path_payload(path: &str) -> Result<Vec<u8>, XsError> {
    check_path(path)?;
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path.as_bytes());
    p.push(0);
    finish(p)
}

/// `path\0value` (the value is not NUL-terminated): XS_WRITE.
pub fn write_payload(path: &str, value: &str) -> Result<Vec<u8>, XsError> {
    check_path(path)?;
    check_text(value)?;
    let mut p = Vec::with_capacity(path.len() + 1 + value.len());
    p.extend_from_slice(path.as_bytes());
    p.push(0);
    p.extend_from_slice(value.as_bytes());
    finish(p)
}

/// `path\0token\0`: XS_WATCH, XS_UNWATCH (and the XS_WATCH_EVENT payload).
pub fn watch_payload(path: &str, token: &str) -> Result<Vec<u8>, XsError> {
    check_path(path)?;
    check_text(token)?;
    let mut p = Vec::with_capacity(path.len() + token.len() + 2);
    p.extend_from_slice(path.as_bytes());
    p.push(0);
    p.extend_from_slice(token.as_bytes());
    p.push(0);
    finish(p)
}

/// XS_TRANSACTION_START takes an empty string.
pub const TRANSACTION_START_PAYLOAD: &[u8] = b"\0";

/// XS_TRANSACTION_END: "T" commits, "F" aborts.
pub fn transaction_end_payload(commit: bool) -> &'static [u8] {
    if commit {
        b"T\0"
    } else {
        b"F\0"
    }
}

// ---------------------------------------------------------------------------
// Reply payloads
// ---------------------------------------------------------------------------

/// Drops one trailing NUL, if present (xenstored terminates most string
/// replies; some implementations do not).
fn strip_nul(p: &[u8]) -> &[u8] {
    p.strip_suffix(b"\0").unwrap_or(p)
}

/// UTF-8 without NULs, or a protocol error.
fn text(p: &[u8]) -> Result<&str, XsError> {
    if p.contains(&0) {
        return Err(XsError::Protocol);
    }
    core::str::from_utf8(p).map_err(|_| XsError::Protocol)
}

/// The value of an XS_READ reply: the raw bytes, which must be UTF-8
/// without NULs to be represented as a `String`.
pub fn parse_value(p: &[u8]) -> Result<String, XsError> {
    text(p).map(String::from)
}

/// An acknowledgement ("OK", usually NUL-terminated).
pub fn parse_ack(p: &[u8]) -> Result<(), XsError> {
    if strip_nul(p) == b"OK" {
        Ok(())
    } else {
        Err(XsError::Protocol)
    }
}

/// An XS_DIRECTORY reply: NUL-terminated child names, possibly none.
/// Empty names are a protocol error.
pub fn parse_directory(p: &[u8]) -> Result<Vec<String>, XsError> {
    let body = strip_nul(p);
    if p.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == 0)
        .map(|name| match text(name)? {
            "" => Err(XsError::Protocol),
            s => Ok(String::from(s)),
        })
        .collect()
}

/// An XS_TRANSACTION_START reply: the id in decimal, non-zero.
pub fn parse_tx_id(p: &[u8]) -> Result<u32, XsError> {
    let id = parse_u64(text(strip_nul(p))?)?;
    match u32::try_from(id) {
        Ok(0) | Err(_) => Err(XsError::Protocol),
        Ok(id) => Ok(id),
    }
}

/// An XS_ERROR payload ("ENOENT\0") as the error it reports. A well-formed
/// name that [`Errno::from_name`] does not know becomes EINVAL (as Linux
/// does); anything else is a protocol error.
pub fn parse_error(p: &[u8]) -> XsError {
    let name = match text(strip_nul(p)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let well_formed = name.len() >= 2
        && name.len() <= 32
        && name.starts_with('E')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return XsError::Protocol;
    }
    XsError::Remote(Errno::from_name(name).unwrap_or(Errno::EINVAL))
}

/// An XS_WATCH_EVENT payload: `path\0token\0` (the final NUL optional).
/// Returns (path, token); the path must be non-empty.
pub fn parse_watch_event(p: &[u8]) -> Result<(String, String), XsError> {
    let body = strip_nul(p);
    let sep = body.iter().position(|&b| b == 0).ok_or(XsError::Protocol)?;
    let path = text(&body[..sep])?;
    let token = text(&body[sep + 1..])?;
    if path.is_empty() {
        return Err(XsError::Protocol);
    }
    Ok((String::from(path), String::from(token)))
}

/// Builds an XS_WATCH_EVENT message (what xenstored sends), for peers and
/// tests.
pub fn encode_watch_event(path: &str, token: &str) -> Result<Vec<u8>, XsError> {
    encode(XS_WATCH_EVENT, 0, 0, &watch_payload(path, token)?)
}

/// Parses a decimal number strictly: ASCII digits only (no sign, space or
/// newline), at least one, no overflow. Anything else is
/// [`XsError::Protocol`] (the value did not have the agreed form).
pub fn parse_u64(s: &str) -> Result<u64, XsError> {
    crate::parse::decimal_u64(s).map_err(|_| XsError::Protocol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::abi::{XS_ERROR, XS_READ, XS_WRITE};
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            ty: XS_WRITE,
            req_id: 0x0102_0304,
            tx_id: 9,
            len: 4096,
        };
        let b = h.to_bytes();
        // Native (little-endian on x86) u32 fields in xsd_sockmsg order.
        assert_eq!(&b[0..4], &11u32.to_le_bytes());
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(Header::from_bytes(&b), Ok(h));
        let too_long = Header { len: 4097, ..h }.to_bytes();
        assert_eq!(Header::from_bytes(&too_long), Err(XsError::Protocol));
        let huge = Header { len: u32::MAX, ..h }.to_bytes();
        assert_eq!(Header::from_bytes(&huge), Err(XsError::Protocol));
    }

    #[test]
    fn message_round_trip() {
        let payload = write_payload("/local/domain/3/memory/target", "524288").unwrap();
        let bytes = encode(XS_WRITE, 7, 0, &payload).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + payload.len());
        let m = decode(&bytes).unwrap();
        assert_eq!(m.header.ty, XS_WRITE);
        assert_eq!(m.header.req_id, 7);
        assert_eq!(m.payload, b"/local/domain/3/memory/target\x00524288");

        // Truncated, over-long and short inputs.
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Err(XsError::Protocol));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(XsError::Protocol));
        assert_eq!(decode(&bytes[..10]), Err(XsError::Protocol));
        assert_eq!(decode(&[]), Err(XsError::Protocol));

        // The payload limit applies to what we send too.
        assert!(encode(XS_READ, 1, 0, &vec![b'a'; 4096]).is_ok());
        assert_eq!(
            encode(XS_READ, 1, 0, &vec![b'a'; 4097]),
            Err(XsError::BadArgument)
        );
    }

    #[test]
    fn request_payloads() {
        assert_eq!(path_payload("memory/target").unwrap(), b"memory/target\0");
        assert_eq!(
            watch_payload("memory/target", "balloon").unwrap(),
            b"memory/target\0balloon\0"
        );
        assert_eq!(write_payload("a", "").unwrap(), b"a\0");
        assert_eq!(transaction_end_payload(true), b"T\0");
        assert_eq!(transaction_end_payload(false), b"F\0");

        assert_eq!(path_payload(""), Err(XsError::BadArgument));
        assert_eq!(path_payload("a\0b"), Err(XsError::BadArgument));
        assert_eq!(write_payload("a", "x\0y"), Err(XsError::BadArgument));
        assert_eq!(watch_payload("a", "t\0"), Err(XsError::BadArgument));
        let rel = "a".repeat(XENSTORE_REL_PATH_MAX);
        assert!(path_payload(&rel).is_ok());
        assert_eq!(path_payload(&(rel + "a")), Err(XsError::BadArgument));
        let abs = alloc::format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX - 1));
        assert!(path_payload(&abs).is_ok());
        assert_eq!(path_payload(&(abs + "a")), Err(XsError::BadArgument));
        // Path fits but path + value exceeds the payload limit.
        assert_eq!(
            write_payload("a", &"v".repeat(XENSTORE_PAYLOAD_MAX)),
            Err(XsError::BadArgument)
        );
        assert!(write_payload("a", &"v".repeat(XENSTORE_PAYLOAD_MAX - 2)).is_ok());
    }

    #[test]
    fn reply_payloads() {
        assert_eq!(parse_value(b"524288").unwrap(), "524288");
        assert_eq!(parse_value(b"").unwrap(), "");
        assert_eq!(parse_value(b"a\0b"), Err(XsError::Protocol));
        assert_eq!(parse_value(&[0xff, 0xfe]), Err(XsError::Protocol));

        assert_eq!(parse_ack(b"OK\0"), Ok(()));
        assert_eq!(parse_ack(b"OK"), Ok(()));
        assert_eq!(parse_ack(b"NO\0"), Err(XsError::Protocol));
        assert_eq!(parse_ack(b""), Err(XsError::Protocol));

        assert_eq!(parse_directory(b"").unwrap(), Vec::<String>::new());
        assert_eq!(parse_directory(b"a\0bb\0").unwrap(), vec!["a", "bb"]);
        assert_eq!(parse_directory(b"a\0bb").unwrap(), vec!["a", "bb"]);
        assert_eq!(parse_directory(b"\0"), Err(XsError::Protocol));
        assert_eq!(parse_directory(b"a\0\0b\0"), Err(XsError::Protocol));
        assert_eq!(parse_directory(b"a\0\xff\0"), Err(XsError::Protocol));

        assert_eq!(parse_tx_id(b"17\0"), Ok(17));
        assert_eq!(parse_tx_id(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_tx_id(b"4294967296\0"), Err(XsError::Protocol));
        assert_eq!(parse_tx_id(b"0\0"), Err(XsError::Protocol));
        assert_eq!(parse_tx_id(b"-1\0"), Err(XsError::Protocol));
        assert_eq!(parse_tx_id(b"\0"), Err(XsError::Protocol));
    }

    #[test]
    fn error_payloads() {
        assert_eq!(parse_error(b"ENOENT\0"), XsError::Remote(Errno::ENOENT));
        assert_eq!(parse_error(b"EAGAIN"), XsError::Remote(Errno::EAGAIN));
        assert_eq!(parse_error(b"E2BIG\0"), XsError::Remote(Errno::E2BIG));
        // Every name xs_wire.h's xsd_errors table lists is known.
        for name in [
            "EINVAL",
            "EACCES",
            "EEXIST",
            "EISDIR",
            "ENOENT",
            "ENOMEM",
            "ENOSPC",
            "EIO",
            "ENOTEMPTY",
            "ENOSYS",
            "EROFS",
            "EBUSY",
            "EAGAIN",
            "EISCONN",
            "E2BIG",
            "EPERM",
        ] {
            let e = parse_error(name.as_bytes());
            assert_eq!(
                e,
                XsError::Remote(Errno::from_name(name).unwrap()),
                "{name}"
            );
        }
        // Well-formed but unknown: EINVAL, like Linux.
        assert_eq!(parse_error(b"EQUOTA\0"), XsError::Remote(Errno::EINVAL));
        // Malformed.
        for bad in [
            &b""[..],
            b"\0",
            b"enoent\0",
            b"ENO ENT",
            b"ENOENT\0\0",
            b"\xff\xfe",
            b"X",
        ] {
            assert_eq!(parse_error(bad), XsError::Protocol, "{bad:?}");
        }
        assert_eq!(parse_error(&[b'E'; 100]), XsError::Protocol);
    }

    #[test]
    fn watch_event_payloads() {
        let ev = encode_watch_event("/local/domain/3/memory/target", "tok").unwrap();
        let m = decode(&ev).unwrap();
        assert_eq!(m.header.ty, XS_WATCH_EVENT);
        assert_eq!(
            parse_watch_event(&m.payload).unwrap(),
            ("/local/domain/3/memory/target".into(), "tok".into())
        );
        assert_eq!(
            parse_watch_event(b"p\0t").unwrap(),
            ("p".into(), "t".into())
        );
        assert_eq!(
            parse_watch_event(b"p\0\0").unwrap(),
            ("p".into(), "".into())
        );
        assert_eq!(parse_watch_event(b"p\0"), Err(XsError::Protocol));
        assert_eq!(parse_watch_event(b"pt"), Err(XsError::Protocol));
        assert_eq!(parse_watch_event(b"\0t\0"), Err(XsError::Protocol));
        assert_eq!(parse_watch_event(b"p\0t\0x\0"), Err(XsError::Protocol));
        assert_eq!(parse_watch_event(b""), Err(XsError::Protocol));
        let _ = XS_ERROR;
    }

    #[test]
    fn strict_u64() {
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("524288"), Ok(524_288));
        assert_eq!(parse_u64("007"), Ok(7));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "18446744073709551616",
            "99999999999999999999",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1\n",
            "0x10",
            "1e3",
            "١",
        ] {
            assert_eq!(parse_u64(bad), Err(XsError::Protocol), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn u64_round_trips(n: u64) {
            prop_assert_eq!(parse_u64(&n.to_string()), Ok(n));
        }

        #[test]
        fn encode_decode_round_trip(
            ty in 0u32..30, req_id: u32, tx_id: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..=4096),
        ) {
            let bytes = encode(ty, req_id, tx_id, &payload).unwrap();
            let m = decode(&bytes).unwrap();
            prop_assert_eq!(m.header, Header { ty, req_id, tx_id, len: payload.len() as u32 });
            prop_assert_eq!(m.payload, payload);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = parse_value(&bytes);
            let _ = parse_ack(&bytes);
            let _ = parse_directory(&bytes);
            let _ = parse_tx_id(&bytes);
            let _ = parse_error(&bytes);
            let _ = parse_watch_event(&bytes);
            if let Ok(s) = core::str::from_utf8(&bytes) {
                let _ = parse_u64(s);
            }
        }

        #[test]
        fn watch_event_round_trip(path in "/[a-z0-9/_-]{1,40}", token in "[ -~]{0,20}") {
            let m = decode(&encode_watch_event(&path, &token).unwrap()).unwrap();
            prop_assert_eq!(parse_watch_event(&m.payload).unwrap(), (path, token));
        }
    }
}
