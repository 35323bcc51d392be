//! xenstore wire messages (`src/xen/xenstore/wire.rs`): the header and
//! message decoder and every reply-payload parser, on the same bytes.
//!
//! Properties: a decoded message encodes back to the same bytes; each
//! accepted payload has the shape its parser promises (no NUL, non-empty
//! names) and, built again with the request builders, parses to the same
//! value; request builders never emit a payload above the limit.

use selfballoon::xen::abi::XENSTORE_PAYLOAD_MAX;
use selfballoon::xen::xenstore::wire::{self, Header, HEADER_LEN};
use selfballoon::xen::xenstore::XsError;

pub fn check(data: &[u8]) {
    // Whole message.
    match wire::decode(data) {
        Ok(m) => {
            assert_eq!(m.payload.len(), m.header.len as usize);
            assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
            let again = wire::encode(m.header.ty, m.header.req_id, m.header.tx_id, &m.payload)
                .expect("a decoded payload is within the limit");
            assert_eq!(again, data, "decode/encode round trip");
        }
        Err(e) => assert_eq!(e, XsError::Protocol),
    }
    if let Some(head) = data.get(..HEADER_LEN) {
        let head: &[u8; HEADER_LEN] = head.try_into().unwrap();
        if let Ok(h) = Header::from_bytes(head) {
            assert_eq!(&h.to_bytes(), head);
        }
    }

    // Reply payloads: the same bytes through every parser.
    let p = data;
    // What the accepting parsers saw, without the optional final NUL.
    let body = p.strip_suffix(b"\0").unwrap_or(p);
    if let Ok(v) = wire::parse_value(p) {
        assert_eq!(v.as_bytes(), p);
    }
    if wire::parse_ack(p).is_ok() {
        assert!(p == b"OK" || p == b"OK\0");
    }
    if let Ok(names) = wire::parse_directory(p) {
        let mut rebuilt = Vec::new();
        for n in &names {
            assert!(!n.is_empty() && !n.contains('\0'));
            rebuilt.extend_from_slice(n.as_bytes());
            rebuilt.push(0);
        }
        let rebody = rebuilt.strip_suffix(b"\0").unwrap_or(&rebuilt);
        assert_eq!(body, rebody, "directory names rejoin to the payload");
    }
    if let Ok(id) = wire::parse_tx_id(p) {
        assert_ne!(id, 0);
        assert!(!body.is_empty() && body.iter().all(u8::is_ascii_digit));
        assert_eq!(std::str::from_utf8(body).unwrap().parse::<u32>(), Ok(id));
        assert_eq!(wire::parse_tx_id(id.to_string().as_bytes()), Ok(id));
    }
    match wire::parse_error(p) {
        XsError::Remote(_) => {
            assert!(body.len() >= 2 && body.len() <= 32 && body[0] == b'E');
            assert!(body
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        XsError::Protocol => {}
        other => panic!("parse_error gave {other:?}"),
    }
    if let Ok((path, token)) = wire::parse_watch_event(p) {
        assert!(!path.is_empty() && !path.contains('\0') && !token.contains('\0'));
        // Exactly `path\0token`, with or without the final NUL.
        let exact = [path.as_bytes(), b"\0", token.as_bytes()].concat();
        assert!(p == exact || p == [&exact[..], b"\0"].concat(), "{p:?}");
        // What xenstored would send for this event parses the same way
        // (when the path is one we could have watched at all).
        if let Ok(ev) = wire::encode_watch_event(&path, &token) {
            let m = wire::decode(&ev).unwrap();
            assert_eq!(
                wire::parse_watch_event(&m.payload),
                Ok((path.clone(), token.clone()))
            );
        }
    }

    // Request builders, on text taken from the input: a path, then a value.
    let s = crate::text(data);
    let (path, value) = s.split_once('\u{1}').unwrap_or((&s, ""));
    for built in [
        wire::path_payload(path),
        wire::write_payload(path, value),
        wire::watch_payload(path, value),
    ] {
        match built {
            Ok(b) => {
                assert!(b.len() <= XENSTORE_PAYLOAD_MAX);
                assert!(b.starts_with(path.as_bytes()));
                assert!(wire::check_path(path).is_ok());
            }
            Err(e) => assert_eq!(e, XsError::BadArgument),
        }
    }
    if let Ok(b) = wire::watch_payload(path, value) {
        assert_eq!(
            wire::parse_watch_event(&b),
            Ok((path.to_string(), value.to_string()))
        );
    }
    if let Ok(b) = wire::write_payload(path, value) {
        let (p2, v2) = b.split_at(path.len());
        assert_eq!(p2, path.as_bytes());
        assert_eq!(&v2[1..], value.as_bytes());
    }
}
