//! The xenstore client (`src/xen/xenstore/client.rs`) against a hostile
//! xenstored: the input scripts the client's calls and, each time the
//! client waits, what the peer does (answer the last request with a
//! reply of any type, id and payload, send a watch event, write raw
//! bytes, set the indices to anything, stay silent).
//!
//! Properties: no panic; every call returns (the clock moves on each
//! wait, and the client bounds the messages one call reads); once the
//! client says the framing is broken every call fails with `Protocol`;
//! what it returns has the promised shape (values and names without NUL,
//! non-empty names, at most `MAX_QUEUED_EVENTS` events queued); the
//! request stream it writes stays framed: the peer always decodes whole
//! messages with increasing request ids.

use std::cell::RefCell;
use std::rc::Rc;

use selfballoon::xen::abi::*;
use selfballoon::xen::ops::Clock;
use selfballoon::xen::xenstore::client::{Waiter, XenstoreClient, MAX_QUEUED_EVENTS};
use selfballoon::xen::xenstore::ring::RingPage;
use selfballoon::xen::xenstore::wire::{self, Header, HEADER_LEN};
use selfballoon::xen::xenstore::{Store, XsError};

use crate::Input;

const SIZE: u32 = XENSTORE_RING_SIZE as u32;
const MASK: u32 = SIZE - 1;
const TIMEOUT_NS: u64 = 1_000;
const WAIT_STEP_NS: u64 = 100;

struct State<'a> {
    req: [u8; XENSTORE_RING_SIZE],
    rsp: [u8; XENSTORE_RING_SIZE],
    req_cons: u32,
    req_prod: u32,
    rsp_cons: u32,
    rsp_prod: u32,
    inp: Input<'a>,
    now: u64,
    /// Request bytes the peer consumed, not yet decoded.
    inbuf: Vec<u8>,
    /// Last decoded request.
    last: Option<Header>,
    /// The peer lost the request framing (it scribbled on the indices).
    peer_lost_framing: bool,
}

impl State<'_> {
    fn consume_requests(&mut self) {
        let avail = self.req_prod.wrapping_sub(self.req_cons);
        if avail > SIZE {
            return;
        }
        for i in 0..avail {
            let b = self.req[(self.req_cons.wrapping_add(i) & MASK) as usize];
            self.inbuf.push(b);
        }
        self.req_cons = self.req_prod;
        while !self.peer_lost_framing && self.inbuf.len() >= HEADER_LEN {
            let head: [u8; HEADER_LEN] = self.inbuf[..HEADER_LEN].try_into().unwrap();
            let h = Header::from_bytes(&head).expect("the client sent a bad header");
            let total = HEADER_LEN + h.len as usize;
            if self.inbuf.len() < total {
                break;
            }
            wire::decode(&self.inbuf[..total]).expect("the client sent a bad message");
            if let Some(prev) = self.last {
                assert!(
                    h.req_id > prev.req_id || (prev.req_id > u32::MAX / 2 && h.req_id < 16),
                    "request ids go backwards: {} after {}",
                    h.req_id,
                    prev.req_id
                );
            }
            self.last = Some(h);
            self.inbuf.drain(..total);
        }
    }

    /// Writes `bytes` into the response ring honestly, as far as they fit.
    fn produce(&mut self, bytes: &[u8]) {
        let used = self.rsp_prod.wrapping_sub(self.rsp_cons);
        if used > SIZE {
            return;
        }
        let n = (SIZE - used).min(bytes.len() as u32);
        for (i, &b) in bytes[..n as usize].iter().enumerate() {
            self.rsp[(self.rsp_prod.wrapping_add(i as u32) & MASK) as usize] = b;
        }
        self.rsp_prod = self.rsp_prod.wrapping_add(n);
    }

    /// One peer action, chosen by the input.
    fn peer_step(&mut self) {
        match self.inp.u8() % 8 {
            0 => {}
            1 => {
                let n = usize::from(self.inp.u16() % 2048);
                let raw = self.inp.bytes(n).to_vec();
                self.produce(&raw);
            }
            2 => {
                self.rsp_cons = self.inp.u32();
                self.rsp_prod = self.inp.u32();
            }
            3 => {
                self.req_cons = self.inp.u32();
                self.peer_lost_framing = true;
            }
            _ => {
                // A whole message: a reply to the last request (or not).
                let last = self.last.unwrap_or(Header {
                    ty: XS_READ,
                    req_id: 1,
                    tx_id: 0,
                    len: 0,
                });
                let sel = self.inp.u8();
                let ty = match sel % 6 {
                    0 | 1 => last.ty,
                    2 => XS_ERROR,
                    3 => XS_WATCH_EVENT,
                    _ => u32::from(self.inp.u8()),
                };
                let req_id = match (sel / 6) % 4 {
                    0 | 1 => last.req_id,
                    2 => last.req_id.wrapping_sub(u32::from(self.inp.u8())),
                    _ => self.inp.u32(),
                };
                let payload = match self.inp.u8() % 4 {
                    0 => b"OK\0".to_vec(),
                    1 => b"memory/target\0tok\0".to_vec(),
                    _ => {
                        let n = usize::from(self.inp.u16() % 600);
                        self.inp.bytes(n).to_vec()
                    }
                };
                if let Ok(m) = wire::encode(ty, req_id, last.tx_id, &payload) {
                    self.produce(&m);
                }
            }
        }
    }
}

#[derive(Clone)]
struct Shared<'a>(Rc<RefCell<State<'a>>>);

impl RingPage for Shared<'_> {
    fn req_cons(&self) -> u32 {
        self.0.borrow().req_cons
    }
    fn req_prod(&self) -> u32 {
        self.0.borrow().req_prod
    }
    fn set_req_prod(&mut self, v: u32) {
        self.0.borrow_mut().req_prod = v;
    }
    fn rsp_cons(&self) -> u32 {
        self.0.borrow().rsp_cons
    }
    fn rsp_prod(&self) -> u32 {
        self.0.borrow().rsp_prod
    }
    fn set_rsp_cons(&mut self, v: u32) {
        self.0.borrow_mut().rsp_cons = v;
    }
    fn write_req(&mut self, offset: usize, data: &[u8]) {
        assert!(offset < XENSTORE_RING_SIZE && data.len() <= XENSTORE_RING_SIZE - offset);
        self.0.borrow_mut().req[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_rsp(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset < XENSTORE_RING_SIZE && buf.len() <= XENSTORE_RING_SIZE - offset);
        buf.copy_from_slice(&self.0.borrow().rsp[offset..offset + buf.len()]);
    }
}

impl Clock for Shared<'_> {
    fn now_ns(&self) -> u64 {
        self.0.borrow().now
    }
}

impl Waiter for Shared<'_> {
    fn notify(&mut self) {
        self.0.borrow_mut().consume_requests();
    }
    fn wait(&mut self, deadline_ns: u64) -> Result<(), XsError> {
        let mut s = self.0.borrow_mut();
        s.now = s.now.saturating_add(WAIT_STEP_NS);
        if s.inp.is_empty() {
            s.now = s.now.max(deadline_ns);
        }
        if s.now >= deadline_ns {
            return Err(XsError::Timeout);
        }
        s.consume_requests();
        s.peer_step();
        Ok(())
    }
}

const PATHS: [&str; 4] = ["memory/target", "/local/domain/7/data", "domid", "a"];

fn no_nul(s: &str) {
    assert!(!s.contains('\0'), "NUL in {s:?}");
}

pub fn check(data: &[u8]) {
    let state = Shared(Rc::new(RefCell::new(State {
        req: [0; XENSTORE_RING_SIZE],
        rsp: [0; XENSTORE_RING_SIZE],
        req_cons: 0,
        req_prod: 0,
        rsp_cons: 0,
        rsp_prod: 0,
        inp: Input::new(data),
        now: 0,
        inbuf: Vec::new(),
        last: None,
        peer_lost_framing: false,
    })));
    {
        let mut s = state.0.borrow_mut();
        let start = s.inp.u32();
        (s.req_cons, s.req_prod, s.rsp_cons, s.rsp_prod) = (start, start, start, start);
    }
    let mut c = XenstoreClient::new(state.clone(), state.clone());
    c.set_timeout_ns(TIMEOUT_NS);
    let mut domid = None;
    for _ in 0..64 {
        let (op, path) = {
            let mut s = state.0.borrow_mut();
            if s.inp.is_empty() {
                break;
            }
            let op = s.inp.u8();
            (op, PATHS[usize::from(op >> 4) % PATHS.len()])
        };
        let was_broken = c.is_broken();
        // The domid is read once and kept: it needs no I/O afterwards.
        let cached = op % 12 == 10 && domid.is_some();
        let result: Result<(), XsError> = match op % 12 {
            0 => c.read(path).map(|v| no_nul(&v)),
            1 => c.read_u64(path).map(drop),
            2 => c.write(path, "524288"),
            3 => c.directory(path).map(|names| {
                for n in names {
                    no_nul(&n);
                    assert!(!n.is_empty());
                }
            }),
            4 => c.rm(path),
            5 => c.watch(path, "tok"),
            6 => c.unwatch(path, "tok"),
            7 => c.poll_watch_events().map(|evs| {
                for e in evs {
                    no_nul(&e.path);
                    assert!(!e.path.is_empty());
                    assert_eq!(e.token, "tok");
                }
            }),
            8 => c.take_watch_events("tok").map(drop),
            9 => c
                .transaction(|t| {
                    let v = t.read(path)?;
                    t.write(path, &v)
                })
                .map(drop),
            10 => c.domid().map(|d| {
                assert!(d < DOMID_SELF);
                assert_eq!(*domid.get_or_insert(d), d, "domid changed");
            }),
            _ => {
                let _ = c.has_pending_input();
                c.poll()
            }
        };
        assert!(c.queued_watch_events() <= MAX_QUEUED_EVENTS);
        if was_broken && !cached {
            assert_eq!(result, Err(XsError::Protocol), "a broken client answered");
            assert!(c.is_broken());
            assert!(!c.has_pending_input());
        }
        if let Err(e) = result {
            assert_ne!(e, XsError::BadArgument, "our own arguments are valid");
            assert_ne!(e, XsError::Unavailable);
        }
    }
}
