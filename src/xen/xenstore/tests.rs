//! Client tests against a fake xenstored that shares an in-memory
//! `xenstore_domain_interface` with the client (through the same
//! [`VolatilePage`] the kernel uses) and runs whenever the client waits.
//! Knobs let it move few bytes per step (splitting messages across steps
//! and the ring's wrap), inject watch events, stay silent, return EAGAIN
//! for commits, and mangle replies; tests also poke hostile indices.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::cell::RefCell;

use proptest::prelude::*;

use super::client::{Waiter, WatchEvent, XenstoreClient, TRANSACTION_ATTEMPTS};
use super::ring::tests::BufPage;
use super::ring::{RingPage, VolatilePage};
use super::wire::{self, Header, Message, HEADER_LEN};
use super::{Store, XsError};
use crate::xen::abi::*;
use crate::xen::errno::Errno;
use crate::xen::ops::Clock;

const MASK: u32 = XENSTORE_RING_SIZE as u32 - 1;

type Mangler = Box<dyn FnOnce(Message) -> Vec<u8>>;

struct Peer {
    page: *mut xenstore_domain_interface,
    /// Request bytes taken from the ring, not yet handled.
    inbuf: Vec<u8>,
    /// Reply bytes not yet in the ring.
    outq: VecDeque<u8>,
    store: BTreeMap<String, String>,
    /// (path as registered, token)
    watches: Vec<(String, String)>,
    domid: u16,
    next_tx: u32,
    time: u64,
    // Knobs
    chunk: usize,
    silent: bool,
    paused: bool,
    eagain_commits: u32,
    inject_before_reply: Vec<Vec<u8>>,
    mangle_next_reply: Option<Mangler>,
    // Records
    requests: Vec<Header>,
    commits: u32,
    notifies: u32,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: `self.page` came from Box::into_raw in `Peer::new` and
        // is freed only here, once. Every VolatilePage over it belongs to a
        // client whose TestWaiter holds an Rc to this peer, so this drop
        // runs only after the last such client (and its page) is gone,
        // and nothing uses the pointer afterwards.
        unsafe { drop(Box::from_raw(self.page)) };
    }
}

impl Peer {
    fn new(req_start: u32, rsp_start: u32) -> Self {
        // SAFETY: xenstore_domain_interface is a repr(C) struct of u8
        // arrays and u32 fields only, for which all-zero bytes are valid.
        let mut page: Box<xenstore_domain_interface> = Box::new(unsafe { core::mem::zeroed() });
        page.req_cons = req_start;
        page.req_prod = req_start;
        page.rsp_cons = rsp_start;
        page.rsp_prod = rsp_start;
        let mut store = BTreeMap::new();
        store.insert("/local/domain/7/domid".to_string(), "7".to_string());
        store.insert(
            "/local/domain/7/memory/target".to_string(),
            "524288".to_string(),
        );
        Peer {
            page: Box::into_raw(page),
            inbuf: Vec::new(),
            outq: VecDeque::new(),
            store,
            watches: Vec::new(),
            domid: 7,
            next_tx: 1,
            time: 0,
            chunk: usize::MAX,
            silent: false,
            paused: false,
            eagain_commits: 0,
            inject_before_reply: Vec::new(),
            mangle_next_reply: None,
            requests: Vec::new(),
            commits: 0,
            notifies: 0,
        }
    }

    fn pg(&mut self) -> &mut xenstore_domain_interface {
        // SAFETY: `self.page` is the live, aligned, initialised allocation
        // made in `Peer::new` (freed only in Drop). The tests are single
        // threaded and the client accesses the page only inside its own
        // calls, through raw-pointer volatile accesses that are complete
        // whenever it calls into the peer (from `Waiter::wait`) or returns
        // to the test; every caller uses the returned reference within one
        // statement, so no other access overlaps it.
        unsafe { &mut *self.page }
    }

    /// Runs the peer once: take requests, answer them, emit replies.
    /// Returns whether anything moved.
    fn step(&mut self) -> bool {
        if self.paused {
            return false;
        }
        let mut progress = false;
        // Consume requests.
        let (cons, prod) = (self.pg().req_cons, self.pg().req_prod);
        let n = (prod.wrapping_sub(cons) as usize).min(self.chunk);
        for i in 0..n {
            let b = self.pg().req[(cons.wrapping_add(i as u32) & MASK) as usize];
            self.inbuf.push(b);
        }
        self.pg().req_cons = cons.wrapping_add(n as u32);
        progress |= n > 0;
        // Handle complete requests.
        if !self.silent {
            while self.inbuf.len() >= HEADER_LEN {
                let h = Header::from_bytes(self.inbuf[..HEADER_LEN].try_into().unwrap()).unwrap();
                let total = HEADER_LEN + h.len as usize;
                if self.inbuf.len() < total {
                    break;
                }
                let payload: Vec<u8> = self.inbuf.drain(..total).skip(HEADER_LEN).collect();
                self.requests.push(h);
                self.handle(h, &payload);
                progress = true;
            }
        }
        // Produce replies.
        let (cons, prod) = (self.pg().rsp_cons, self.pg().rsp_prod);
        let free = XENSTORE_RING_SIZE - prod.wrapping_sub(cons) as usize;
        let n = free.min(self.chunk).min(self.outq.len());
        for i in 0..n {
            let b = self.outq.pop_front().unwrap();
            self.pg().rsp[(prod.wrapping_add(i as u32) & MASK) as usize] = b;
        }
        self.pg().rsp_prod = prod.wrapping_add(n as u32);
        progress | (n > 0)
    }

    fn abs(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/local/domain/{}/{}", self.domid, path)
        }
    }

    fn send(&mut self, bytes: Vec<u8>) {
        self.outq.extend(bytes);
    }

    fn reply(&mut self, h: Header, ty: u32, payload: &[u8]) {
        for ev in core::mem::take(&mut self.inject_before_reply) {
            self.send(ev);
        }
        let msg = Message {
            header: Header {
                ty,
                req_id: h.req_id,
                tx_id: h.tx_id,
                len: payload.len() as u32,
            },
            payload: payload.to_vec(),
        };
        let bytes = match self.mangle_next_reply.take() {
            Some(f) => f(msg),
            None => wire::encode(ty, h.req_id, h.tx_id, payload).unwrap(),
        };
        self.send(bytes);
    }

    fn error(&mut self, h: Header, name: &str) {
        self.reply(h, XS_ERROR, format!("{name}\0").as_bytes());
    }

    fn fire(&mut self, changed_abs: &str) {
        let home = format!("/local/domain/{}/", self.domid);
        let mut events = Vec::new();
        for (wpath, token) in &self.watches {
            let wabs = self.abs(wpath);
            if changed_abs == wabs || changed_abs.starts_with(&format!("{wabs}/")) {
                let shown = if wpath.starts_with('/') {
                    changed_abs.to_string()
                } else {
                    changed_abs.strip_prefix(&home).unwrap().to_string()
                };
                events.push(wire::encode_watch_event(&shown, token).unwrap());
            }
        }
        for ev in events {
            self.send(ev);
        }
    }

    fn handle(&mut self, h: Header, payload: &[u8]) {
        let strings: Vec<String> = payload
            .split(|&b| b == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect();
        match h.ty {
            XS_READ => match self.store.get(&self.abs(&strings[0])).cloned() {
                Some(v) => self.reply(h, XS_READ, v.as_bytes()),
                None => self.error(h, "ENOENT"),
            },
            XS_WRITE => {
                let path = self.abs(&strings[0]);
                let value = strings[1..].join("\0");
                let mut parent = path.as_str();
                while let Some(i) = parent.rfind('/') {
                    parent = &parent[..i];
                    if !parent.is_empty() {
                        self.store.entry(parent.to_string()).or_default();
                    }
                }
                self.store.insert(path.clone(), value);
                self.reply(h, XS_WRITE, b"OK\0");
                self.fire(&path);
            }
            XS_DIRECTORY => {
                let path = self.abs(&strings[0]);
                if !self.store.contains_key(&path) {
                    return self.error(h, "ENOENT");
                }
                let prefix = format!("{path}/");
                let mut names: Vec<&str> = self
                    .store
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .map(|rest| rest.split('/').next().unwrap())
                    .collect();
                names.dedup();
                let mut out = Vec::new();
                for n in names {
                    out.extend_from_slice(n.as_bytes());
                    out.push(0);
                }
                self.reply(h, XS_DIRECTORY, &out);
            }
            XS_RM => {
                let path = self.abs(&strings[0]);
                if !self.store.contains_key(&path) {
                    return self.error(h, "ENOENT");
                }
                let prefix = format!("{path}/");
                self.store
                    .retain(|k, _| *k != path && !k.starts_with(&prefix));
                self.reply(h, XS_RM, b"OK\0");
                self.fire(&path);
            }
            XS_WATCH => {
                let (path, token) = (strings[0].clone(), strings[1].clone());
                self.watches.push((path.clone(), token.clone()));
                self.reply(h, XS_WATCH, b"OK\0");
                // xenstored fires every new watch once.
                self.send(wire::encode_watch_event(&path, &token).unwrap());
            }
            XS_UNWATCH => {
                let w = (strings[0].clone(), strings[1].clone());
                match self.watches.iter().position(|x| *x == w) {
                    Some(i) => {
                        self.watches.remove(i);
                        self.reply(h, XS_UNWATCH, b"OK\0");
                    }
                    None => self.error(h, "ENOENT"),
                }
            }
            XS_TRANSACTION_START => {
                let id = self.next_tx;
                self.next_tx += 1;
                self.reply(h, XS_TRANSACTION_START, format!("{id}\0").as_bytes());
            }
            XS_TRANSACTION_END => {
                if strings[0] == "T" {
                    if self.eagain_commits > 0 {
                        self.eagain_commits -= 1;
                        return self.error(h, "EAGAIN");
                    }
                    self.commits += 1;
                }
                self.reply(h, XS_TRANSACTION_END, b"OK\0");
            }
            _ => self.error(h, "EINVAL"),
        }
    }
}

#[derive(Debug)]
struct TestWaiter {
    peer: Rc<RefCell<Peer>>,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Peer")
    }
}

impl Clock for TestWaiter {
    fn now_ns(&self) -> u64 {
        self.peer.borrow().time
    }
}

impl Waiter for TestWaiter {
    fn notify(&mut self) {
        self.peer.borrow_mut().notifies += 1;
    }

    /// One peer step per wait; a peer with nothing to do means the
    /// deadline passes.
    fn wait(&mut self, deadline_ns: u64) -> Result<(), XsError> {
        let mut p = self.peer.borrow_mut();
        p.time += 1;
        if p.time < deadline_ns && p.step() {
            Ok(())
        } else {
            p.time = p.time.max(deadline_ns);
            Err(XsError::Timeout)
        }
    }
}

type Client = XenstoreClient<VolatilePage, TestWaiter>;

fn setup_at(req_start: u32, rsp_start: u32, chunk: usize) -> (Client, Rc<RefCell<Peer>>) {
    let mut peer = Peer::new(req_start, rsp_start);
    peer.chunk = chunk;
    let peer = Rc::new(RefCell::new(peer));
    // SAFETY: the page is a live, aligned xenstore_domain_interface from
    // `Peer::new`, freed only when the peer drops; the client holds an Rc
    // to the peer in its waiter, so the page outlives the VolatilePage.
    // The peer writes only its own fields, except where a test plays a
    // hostile peer by poking `req_prod`/`rsp_cons`: that breaks the
    // protocol on purpose, not memory safety, since every access is
    // single-threaded and none overlaps another.
    let page = unsafe { VolatilePage::new(peer.borrow().page) };
    let mut client = XenstoreClient::new(page, TestWaiter { peer: peer.clone() });
    client.set_timeout_ns(1_000_000);
    (client, peer)
}

fn setup() -> (Client, Rc<RefCell<Peer>>) {
    setup_at(0, 0, usize::MAX)
}

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

#[test]
fn basic_operations() {
    let (mut c, peer) = setup();
    assert_eq!(c.read("memory/target").unwrap(), "524288");
    assert_eq!(c.read_u64("memory/target"), Ok(524_288));
    assert_eq!(c.read("/local/domain/7/memory/target").unwrap(), "524288");
    assert_eq!(c.read("nope"), Err(XsError::Remote(Errno::ENOENT)));

    c.write("data/meminfo_free", "1234").unwrap();
    c.write("control/feature-balloon", "1").unwrap();
    assert_eq!(c.read("data/meminfo_free").unwrap(), "1234");
    assert_eq!(
        c.directory("/local/domain/7").unwrap(),
        vec!["control", "data", "domid", "memory"]
    );
    assert_eq!(c.directory("data").unwrap(), vec!["meminfo_free"]);
    c.rm("data").unwrap();
    assert_eq!(
        c.read("data/meminfo_free"),
        Err(XsError::Remote(Errno::ENOENT))
    );
    assert_eq!(c.rm("data"), Err(XsError::Remote(Errno::ENOENT)));

    c.write("memory/target", "12k").unwrap();
    assert_eq!(c.read_u64("memory/target"), Err(XsError::Protocol));
    assert!(!c.is_broken());

    assert_eq!(c.domid(), Ok(7));
    assert_eq!(c.home_path().unwrap(), "/local/domain/7");
    // Cached: no further request.
    let before = peer.borrow().requests.len();
    assert_eq!(c.domid(), Ok(7));
    assert_eq!(peer.borrow().requests.len(), before);

    // Request ids are distinct and every request carries tx 0.
    let p = peer.borrow();
    let mut ids: Vec<u32> = p.requests.iter().map(|h| h.req_id).collect();
    assert!(p.requests.iter().all(|h| h.tx_id == 0));
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert!(p.notifies > 0);
}

#[test]
fn bad_arguments_are_refused_before_sending() {
    let (mut c, peer) = setup();
    assert_eq!(c.read(""), Err(XsError::BadArgument));
    assert_eq!(c.write("a\0b", "x"), Err(XsError::BadArgument));
    assert_eq!(c.write("a", "x\0"), Err(XsError::BadArgument));
    assert_eq!(c.watch("a", "t\0"), Err(XsError::BadArgument));
    assert_eq!(c.write("a", &"v".repeat(5000)), Err(XsError::BadArgument));
    assert!(peer.borrow().requests.is_empty());
    assert_eq!(c.read("domid").unwrap(), "7");
}

#[test]
fn bad_domid_is_refused() {
    for bad in ["", "x", "-1", "65536", "32752", "7 "] {
        let (mut c, peer) = setup();
        peer.borrow_mut()
            .store
            .insert("/local/domain/7/domid".into(), bad.into());
        assert_eq!(c.domid(), Err(XsError::Protocol), "{bad:?}");
    }
}

#[test]
fn replies_split_across_steps_and_the_wrap() {
    for (start, chunk) in [
        (1000, 7),
        (u32::MAX - 20, 3),
        (1024 * 1024 - 5, 1),
        (0, 1024),
    ] {
        let (mut c, _peer) = setup_at(start, start.wrapping_add(500), chunk);
        let big = "x".repeat(3000);
        c.write("data/big", &big).unwrap();
        assert_eq!(c.read("data/big").unwrap(), big);
        for i in 0..20 {
            c.write(&format!("data/k{i}"), &i.to_string()).unwrap();
        }
        assert_eq!(c.read_u64("data/k13"), Ok(13));
        assert_eq!(c.directory("data").unwrap().len(), 21);
    }
}

#[test]
fn watch_events_interleave_with_replies_and_reach_their_owners() {
    let (mut c, peer) = setup_at(1020, 1010, 5);
    c.watch("memory/target", "balloon").unwrap();
    c.watch("/local/domain/7/control", "ctl").unwrap();
    // Events injected ahead of the next replies.
    peer.borrow_mut().inject_before_reply = vec![
        wire::encode_watch_event("/local/domain/7/control/x", "ctl").unwrap(),
        wire::encode_watch_event("memory/target", "balloon").unwrap(),
        wire::encode_watch_event("other", "not-ours").unwrap(),
    ];
    assert_eq!(c.read("memory/target").unwrap(), "524288");
    c.write("memory/target", "1000").unwrap(); // fires "balloon"
    c.write("control/shutdown", "").unwrap(); // fires "ctl"
                                              // That event follows the reply; let the peer deliver it.
    while peer.borrow_mut().step() {}

    // Each owner takes only its own events; duplicates are coalesced and
    // the initial events from registration are there.
    assert_eq!(
        c.take_watch_events("balloon").unwrap(),
        vec!["memory/target"]
    );
    let ctl = c.take_watch_events("ctl").unwrap();
    assert_eq!(
        ctl,
        vec![
            "/local/domain/7/control",
            "/local/domain/7/control/x",
            "/local/domain/7/control/shutdown"
        ]
    );
    assert_eq!(c.queued_watch_events(), 0);

    // Events arriving while idle are picked up by polling.
    peer.borrow_mut()
        .send(wire::encode_watch_event("memory/target", "balloon").unwrap());
    while peer.borrow_mut().step() {}
    assert_eq!(
        c.poll_watch_events().unwrap(),
        vec![ev("memory/target", "balloon")]
    );

    // After unwatch, queued and later events for the token are dropped.
    peer.borrow_mut()
        .send(wire::encode_watch_event("memory/target", "balloon").unwrap());
    while peer.borrow_mut().step() {}
    c.poll().unwrap();
    assert_eq!(c.queued_watch_events(), 1);
    c.unwatch("memory/target", "balloon").unwrap();
    assert_eq!(c.queued_watch_events(), 0);
    c.write("memory/target", "2000").unwrap();
    assert_eq!(c.poll_watch_events().unwrap(), vec![]);
    assert_eq!(
        c.unwatch("memory/target", "balloon"),
        Err(XsError::Remote(Errno::ENOENT))
    );
}

#[test]
fn failed_watch_is_not_registered() {
    let (mut c, peer) = setup();
    peer.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(XS_ERROR, m.header.req_id, 0, b"EACCES\0").unwrap()
    }));
    assert_eq!(
        c.watch("memory/target", "t"),
        Err(XsError::Remote(Errno::EACCES))
    );
    // The peer fired its initial event anyway; it is not ours.
    assert_eq!(c.poll_watch_events().unwrap(), vec![]);
}

#[test]
fn transactions_retry_on_eagain() {
    let (mut c, peer) = setup();
    peer.borrow_mut().eagain_commits = 3;
    let mut runs = 0;
    let v = c
        .transaction(|tx| {
            runs += 1;
            assert!(tx.id() > 0);
            let t = tx.read_u64("memory/target")?;
            tx.write("data/seen", &t.to_string())?;
            Ok(t)
        })
        .unwrap();
    assert_eq!((v, runs), (524_288, 4));
    assert_eq!(peer.borrow().commits, 1);
    assert_eq!(c.read("data/seen").unwrap(), "524288");
    // Operations inside carried the transaction's id.
    let p = peer.borrow();
    assert!(p.requests.iter().any(|h| h.ty == XS_WRITE && h.tx_id == 4));
}

#[test]
fn transactions_give_up_after_bounded_retries() {
    let (mut c, peer) = setup();
    peer.borrow_mut().eagain_commits = 1000;
    let mut runs = 0;
    let r = c.transaction(|_| {
        runs += 1;
        Ok(())
    });
    assert_eq!(r, Err(XsError::Remote(Errno::EAGAIN)));
    assert_eq!(runs, TRANSACTION_ATTEMPTS);
}

#[test]
fn transaction_errors_abort() {
    let (mut c, peer) = setup();
    let r: Result<(), _> = c.transaction(|tx| tx.read("missing").map(|_| ()));
    assert_eq!(r, Err(XsError::Remote(Errno::ENOENT)));
    let p = peer.borrow();
    assert_eq!(p.commits, 0);
    assert_eq!(p.requests.last().unwrap().ty, XS_TRANSACTION_END);
    // An EAGAIN from inside the closure retries too.
    drop(p);
    let mut runs = 0;
    let r = c.transaction(|_| {
        runs += 1;
        if runs < 3 {
            Err(XsError::Remote(Errno::EAGAIN))
        } else {
            Ok(runs)
        }
    });
    assert_eq!(r, Ok(3));
}

#[test]
fn timeouts_then_late_replies_are_dropped() {
    let (mut c, peer) = setup();
    peer.borrow_mut().silent = true;
    assert_eq!(c.read("memory/target"), Err(XsError::Timeout));
    peer.borrow_mut().silent = false;
    // The late reply (to the abandoned read) arrives first and is dropped.
    c.write("memory/target", "42").unwrap();
    assert_eq!(c.read_u64("memory/target"), Ok(42));
    assert!(!c.is_broken());
}

#[test]
fn a_request_that_never_left_is_withdrawn_on_timeout() {
    let (mut c, peer) = setup();
    {
        let mut p = peer.borrow_mut();
        p.paused = true;
        p.pg().req_prod = 1024; // request ring full
    }
    assert_eq!(c.write("data/x", "1"), Err(XsError::Timeout));
    {
        let mut p = peer.borrow_mut();
        p.paused = false;
        p.pg().req_cons = 1024; // peer "consumed" the filler
    }
    assert_eq!(c.read("domid").unwrap(), "7");
    let p = peer.borrow();
    assert_eq!(p.requests.len(), 1);
    assert_eq!(p.requests[0].ty, XS_READ);
}

#[test]
fn half_sent_request_is_completed_after_a_timeout() {
    let (mut c, peer) = setup();
    {
        let mut p = peer.borrow_mut();
        p.paused = true;
        p.pg().req_prod = 1000; // only 24 bytes free
    }
    let value = "v".repeat(100);
    assert_eq!(c.write("data/x", &value), Err(XsError::Timeout));
    {
        let mut p = peer.borrow_mut();
        p.paused = false;
        p.pg().req_cons = 1000;
    }
    assert_eq!(c.read("data/x").unwrap(), value);
    let p = peer.borrow();
    assert_eq!(
        p.requests.iter().map(|h| h.ty).collect::<Vec<_>>(),
        vec![XS_WRITE, XS_READ]
    );
}

#[test]
fn hostile_response_indices() {
    // prod far ahead of cons; cons beyond prod.
    for (cons_delta, prod_delta) in [(0u32, 5000u32), (10, 0), (0, 1025), (0, u32::MAX)] {
        let (mut c, peer) = setup_at(0, 300, 64);
        {
            let mut p = peer.borrow_mut();
            let pg = p.pg();
            pg.rsp_cons = 300u32.wrapping_add(cons_delta);
            pg.rsp_prod = 300u32.wrapping_add(prod_delta);
        }
        assert_eq!(c.read("domid"), Err(XsError::Protocol));
        assert_eq!(c.poll(), Err(XsError::Protocol));
        // Indices were not touched; once repaired, the client recovers.
        {
            let mut p = peer.borrow_mut();
            let pg = p.pg();
            assert_eq!(pg.rsp_cons, 300u32.wrapping_add(cons_delta));
            pg.rsp_cons = 300;
            pg.rsp_prod = 300;
        }
        assert!(!c.is_broken());
        assert_eq!(c.read("memory/target").unwrap(), "524288");
    }
}

#[test]
fn hostile_request_indices() {
    let (mut c, peer) = setup_at(50, 0, 64);
    peer.borrow_mut().pg().req_cons = 60; // consumer beyond producer
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    peer.borrow_mut().pg().req_cons = 50;
    assert_eq!(c.read("domid").unwrap(), "7");
    assert_eq!(peer.borrow().requests.len(), 1);
}

#[test]
fn oversized_reply_breaks_the_connection() {
    let (mut c, peer) = setup();
    peer.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        let mut b = Header {
            len: 5000,
            ..m.header
        }
        .to_bytes()
        .to_vec();
        b.extend(vec![b'a'; 5000]);
        b
    }));
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    assert!(c.is_broken());
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    assert_eq!(c.poll_watch_events(), Err(XsError::Protocol));
}

#[test]
fn wrong_req_id_or_type_is_a_protocol_error() {
    let (mut c, _peer) = setup();
    let p = _peer.clone();
    p.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(
            m.header.ty,
            m.header.req_id.wrapping_add(100),
            0,
            &m.payload,
        )
        .unwrap()
    }));
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    assert_eq!(c.read("domid").unwrap(), "7");

    p.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(XS_DIRECTORY, m.header.req_id, 0, &m.payload).unwrap()
    }));
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    assert_eq!(c.read("domid").unwrap(), "7");

    // Malformed payloads.
    p.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(XS_ERROR, m.header.req_id, 0, b"garbage\0").unwrap()
    }));
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    p.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(XS_WRITE, m.header.req_id, 0, b"NOPE\0").unwrap()
    }));
    assert_eq!(c.write("data/a", "b"), Err(XsError::Protocol));
    p.borrow_mut().mangle_next_reply = Some(Box::new(|m: Message| {
        wire::encode(XS_READ, m.header.req_id, 0, b"\xff\xfe").unwrap()
    }));
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    p.borrow_mut().inject_before_reply =
        vec![wire::encode(XS_WATCH_EVENT, 0, 0, b"no-token").unwrap()];
    assert_eq!(c.read("domid"), Err(XsError::Protocol));
    // The real reply behind the bad event is dropped later; all is well.
    assert_eq!(c.read("domid").unwrap(), "7");
    assert!(!c.is_broken());
}

#[test]
fn unsolicited_reply_while_idle_is_reported() {
    let (mut c, peer) = setup();
    peer.borrow_mut()
        .send(wire::encode(XS_READ, 999, 0, b"x").unwrap());
    while peer.borrow_mut().step() {}
    assert_eq!(c.poll(), Err(XsError::Protocol));
    assert_eq!(c.read("domid").unwrap(), "7");
}

#[test]
fn event_flood_is_bounded() {
    let (mut c, peer) = setup_at(0, 0, usize::MAX);
    c.watch("data", "t").unwrap();
    for i in 0..1000 {
        peer.borrow_mut()
            .send(wire::encode_watch_event(&format!("data/{i}"), "t").unwrap());
        while peer.borrow_mut().step() {}
        c.poll().unwrap();
    }
    assert_eq!(c.queued_watch_events(), super::client::MAX_QUEUED_EVENTS);
    let evs = c.poll_watch_events().unwrap();
    assert_eq!(evs.last().unwrap().path, "data/999");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Writes and reads survive any chunking and start index.
    #[test]
    fn round_trips_with_random_chunking(
        req_start: u32, rsp_start: u32, chunk in 1usize..200,
        entries in proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,300}", 1..12),
    ) {
        let (mut c, _peer) = setup_at(req_start, rsp_start, chunk);
        c.set_timeout_ns(u64::MAX / 2);
        for (k, v) in &entries {
            c.write(&format!("data/{k}"), v).unwrap();
        }
        for (k, v) in &entries {
            prop_assert_eq!(&c.read(&format!("data/{k}")).unwrap(), v);
        }
        let names = c.directory("data").unwrap();
        prop_assert_eq!(names, entries.keys().cloned().collect::<Vec<_>>());
    }

    /// Arbitrary bytes and indices on the response side never panic the
    /// client: every call returns a result.
    #[test]
    fn garbage_from_the_peer_never_panics(
        rsp in proptest::collection::vec(any::<u8>(), 1024),
        cons: u32, fill in 0u32..1100, wild_prod: Option<u32>,
        replies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
    ) {
        let (mut c, peer) = setup();
        {
            let mut p = peer.borrow_mut();
            p.paused = true;
            let pg = p.pg();
            pg.rsp.copy_from_slice(&rsp);
            pg.rsp_cons = cons;
            pg.rsp_prod = wild_prod.unwrap_or(cons.wrapping_add(fill));
        }
        let _ = c.read("domid");
        let _ = c.poll_watch_events();
        let _ = c.directory("data");
        // Replies with random payloads behind valid headers.
        let (mut c, peer) = setup();
        for r in replies {
            peer.borrow_mut().mangle_next_reply = Some(Box::new(move |m: Message| {
                let ty = [XS_READ, XS_ERROR, XS_WATCH_EVENT, XS_DIRECTORY, m.header.ty][r.len() % 5];
                wire::encode(ty, m.header.req_id, 0, &r).unwrap()
            }));
            let _ = c.read("domid");
            let _ = c.directory("data");
            let _ = c.transaction(|tx| tx.read_u64("memory/target"));
        }
    }
}

// -- Late replies after many failed calls ------------------------------------

/// The fuzz reproduction: more than 32 reads time out while xenstored is
/// stalled, then it answers all of them. A caller that only issues
/// requests (never polls) must get every later read answered.
#[test]
fn recovers_after_many_timeouts_without_polling() {
    for n in [32, 33, 100, 1000] {
        let (mut c, peer) = setup();
        peer.borrow_mut().silent = true;
        for _ in 0..n {
            assert_eq!(c.read("memory/target"), Err(XsError::Timeout));
        }
        peer.borrow_mut().silent = false;
        for i in 0..2000 {
            assert_eq!(
                c.read("memory/target").as_deref(),
                Ok("524288"),
                "read {i} after {n} timeouts"
            );
        }
        assert!(!c.is_broken());
        let st = c.stats();
        assert_eq!((st.given_up, st.stale_replies), (n, n));
        assert_eq!((st.unsolicited_replies, st.bad_events), (0, 0));
    }
}

/// Same, when the late replies are met by `poll` while idle.
#[test]
fn late_replies_met_by_poll_are_dropped() {
    let (mut c, peer) = setup();
    c.watch("memory/target", "t").unwrap();
    assert_eq!(c.poll_watch_events().unwrap().len(), 1); // initial event
    peer.borrow_mut().silent = true;
    for _ in 0..50 {
        assert_eq!(c.read("memory/target"), Err(XsError::Timeout));
    }
    peer.borrow_mut().silent = false;
    // An event among the late replies still reaches its owner.
    peer.borrow_mut()
        .send(wire::encode_watch_event("memory/target", "t").unwrap());
    loop {
        let moved = peer.borrow_mut().step();
        assert_eq!(c.poll(), Ok(()));
        if !moved {
            break;
        }
    }
    assert_eq!(c.take_watch_events("t").unwrap(), vec!["memory/target"]);
    assert_eq!(c.read_u64("memory/target"), Ok(524_288));
    assert!(!c.is_broken());
}

/// Malformed watch events fail the call that meets them; the replies
/// behind them are owed and must not wedge the client.
#[test]
fn recovers_after_many_malformed_events() {
    for n in [33, 200] {
        let (mut c, peer) = setup();
        peer.borrow_mut().inject_before_reply =
            vec![wire::encode(XS_WATCH_EVENT, 0, 0, b"no-token").unwrap(); n];
        let mut failed = 0;
        while c.read("domid").is_err() {
            failed += 1;
            assert!(failed <= n, "still failing after {failed} calls");
        }
        assert_eq!(failed, n);
        for i in 0..500 {
            assert_eq!(c.read("domid").as_deref(), Ok("7"), "read {i}");
        }
        assert!(!c.is_broken());
        let st = c.stats();
        assert_eq!((st.bad_events, st.stale_replies), (n as u64, n as u64));
    }
}

/// A reply with an id the client never handed out (0, or ahead of its
/// counter) is the peer's error, not a late reply: it fails the call
/// that meets it, and the client carries on.
#[test]
fn replies_with_ids_never_issued_are_errors() {
    let (mut c, peer) = setup();
    assert_eq!(c.read("domid").as_deref(), Ok("7"));
    for bad_id in [0, 50, u32::MAX] {
        peer.borrow_mut()
            .send(wire::encode(XS_READ, bad_id, 0, b"x").unwrap());
        while peer.borrow_mut().step() {}
        assert_eq!(c.poll(), Err(XsError::Protocol), "{bad_id}");
        assert_eq!(c.read("domid").as_deref(), Ok("7"));
    }
    assert!(!c.is_broken());
    assert_eq!(c.stats().unsolicited_replies, 3);
    assert_eq!(c.stats().stale_replies, 0);
}

/// Across the wrap of the id counter (0 is skipped), ids handed out
/// before it are still recognised as stale, and after it every non-zero
/// id counts as handed out.
#[test]
fn late_replies_across_the_id_wrap() {
    let (mut c, peer) = setup();
    c.set_next_req_id(u32::MAX - 2);
    peer.borrow_mut().silent = true;
    for _ in 0..6 {
        assert_eq!(c.read("domid"), Err(XsError::Timeout));
    }
    peer.borrow_mut().silent = false;
    for _ in 0..50 {
        assert_eq!(c.read("domid").as_deref(), Ok("7"));
    }
    let ids: Vec<u32> = peer.borrow().requests.iter().map(|h| h.req_id).collect();
    assert_eq!(&ids[..6], &[u32::MAX - 2, u32::MAX - 1, u32::MAX, 1, 2, 3]);
    assert_eq!(c.stats().stale_replies, 6);
    // After the wrap any non-zero id counts as handed out (even one the
    // jump above skipped): stale, not an error.
    peer.borrow_mut()
        .send(wire::encode(XS_READ, 1_000_000, 0, b"x").unwrap());
    while peer.borrow_mut().step() {}
    assert_eq!(c.poll(), Ok(()));
    assert_eq!(c.stats().stale_replies, 7);
    // 0 never is.
    peer.borrow_mut()
        .send(wire::encode(XS_READ, 0, 0, b"x").unwrap());
    while peer.borrow_mut().step() {}
    assert_eq!(c.poll(), Err(XsError::Protocol));
    assert!(!c.is_broken());
}

/// A request withdrawn before any of it reached the ring owes no reply.
#[test]
fn withdrawn_requests_are_not_counted_as_given_up() {
    let (mut c, peer) = setup();
    {
        let mut p = peer.borrow_mut();
        p.paused = true;
        p.pg().req_prod = 1024; // request ring full
    }
    assert_eq!(c.write("data/x", "1"), Err(XsError::Timeout));
    assert_eq!(c.stats().given_up, 0);
}

// -- A peer that never lets the response ring go empty -----------------------

/// xenstored on another CPU that refills the response ring every time
/// the client looks at `rsp_prod`: first replies to requests it answers
/// (with "OK"), then numbered watch events `data/<i>` for token "t", up
/// to `limit` of them (so an unbounded client still ends, and a test can
/// see how much it consumed). Every look at `rsp_prod` also advances the
/// shared clock by `tick_ns`.
struct Flood {
    page: BufPage,
    /// Bytes produced in order: replies first, then events.
    stream: VecDeque<u8>,
    replies: VecDeque<u8>,
    inbuf: Vec<u8>,
    answer: bool,
    flooding: bool,
    produced: u64,
    limit: u64,
    clock: Rc<core::cell::Cell<u64>>,
    tick_ns: u64,
}

impl Flood {
    fn refill(&mut self) {
        // Take requests; answer them if told to.
        let req = self.page.peer_consume(usize::MAX);
        self.inbuf.extend(req);
        while self.inbuf.len() >= HEADER_LEN {
            let h = Header::from_bytes(self.inbuf[..HEADER_LEN].try_into().unwrap()).unwrap();
            let total = HEADER_LEN + h.len as usize;
            if self.inbuf.len() < total {
                break;
            }
            self.inbuf.drain(..total);
            if self.answer {
                let r = wire::encode(h.ty, h.req_id, h.tx_id, b"OK\0").unwrap();
                self.replies.extend(r);
            }
        }
        loop {
            if self.stream.is_empty() {
                if !self.replies.is_empty() {
                    self.stream.extend(self.replies.drain(..));
                } else if self.flooding && self.produced < self.limit {
                    let path = format!("data/{}", self.produced);
                    self.stream
                        .extend(wire::encode_watch_event(&path, "t").unwrap());
                    self.produced += 1;
                } else {
                    break;
                }
            }
            let (a, b) = self.stream.as_slices();
            let chunk = if a.is_empty() { b } else { a };
            let n = self.page.peer_produce(chunk);
            if n == 0 {
                break;
            }
            self.stream.drain(..n);
        }
    }
}

#[derive(Clone)]
struct FloodPage(Rc<RefCell<Flood>>);

impl RingPage for FloodPage {
    fn req_cons(&self) -> u32 {
        self.0.borrow().page.req_cons
    }
    fn req_prod(&self) -> u32 {
        self.0.borrow().page.req_prod
    }
    fn set_req_prod(&mut self, v: u32) {
        self.0.borrow_mut().page.req_prod = v;
    }
    fn rsp_cons(&self) -> u32 {
        self.0.borrow().page.rsp_cons
    }
    fn rsp_prod(&self) -> u32 {
        let mut f = self.0.borrow_mut();
        f.refill();
        let t = f.clock.get().saturating_add(f.tick_ns);
        f.clock.set(t);
        f.page.rsp_prod
    }
    fn set_rsp_cons(&mut self, v: u32) {
        self.0.borrow_mut().page.rsp_cons = v;
    }
    fn write_req(&mut self, offset: usize, data: &[u8]) {
        self.0.borrow_mut().page.write_req(offset, data);
    }
    fn read_rsp(&self, offset: usize, buf: &mut [u8]) {
        self.0.borrow().page.read_rsp(offset, buf);
    }
}

#[derive(Debug)]
struct FloodWaiter {
    clock: Rc<core::cell::Cell<u64>>,
}

impl Clock for FloodWaiter {
    fn now_ns(&self) -> u64 {
        self.clock.get()
    }
}

impl Waiter for FloodWaiter {
    fn notify(&mut self) {}
    fn wait(&mut self, deadline_ns: u64) -> Result<(), XsError> {
        let t = self.clock.get().saturating_add(1_000);
        if t >= deadline_ns {
            self.clock.set(t.max(deadline_ns));
            return Err(XsError::Timeout);
        }
        self.clock.set(t);
        Ok(())
    }
}

impl core::fmt::Debug for FloodPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FloodPage")
    }
}

const FLOOD_LIMIT: u64 = 20_000;

fn flood(tick_ns: u64) -> (XenstoreClient<FloodPage, FloodWaiter>, Rc<RefCell<Flood>>) {
    let clock = Rc::new(core::cell::Cell::new(0));
    let f = Rc::new(RefCell::new(Flood {
        page: BufPage::new(0, 0),
        stream: VecDeque::new(),
        replies: VecDeque::new(),
        inbuf: Vec::new(),
        answer: true,
        flooding: false,
        produced: 0,
        limit: FLOOD_LIMIT,
        clock: clock.clone(),
        tick_ns,
    }));
    let mut c = XenstoreClient::new(FloodPage(f.clone()), FloodWaiter { clock });
    c.set_timeout_ns(1_000_000);
    c.watch("data", "t").unwrap();
    f.borrow_mut().flooding = true;
    (c, f)
}

/// xenstored stalled except for an endless stream of watch events: a
/// request must still end at its deadline, after bounded work.
#[test]
fn endless_events_do_not_keep_a_request_from_timing_out() {
    let (mut c, f) = flood(1_000);
    f.borrow_mut().answer = false;
    assert_eq!(c.read("domid"), Err(XsError::Timeout));
    let produced = f.borrow().produced;
    // 1 ms at 1 us per look at the ring is a few hundred messages.
    assert!(produced < 2_000, "{produced} events consumed by one read");
    assert!(c.queued_watch_events() > 0);
}

/// The same with a clock that does not move (e.g. not set up yet): the
/// cap on messages per request still ends the call.
#[test]
fn endless_events_end_a_request_even_with_a_stuck_clock() {
    let (mut c, f) = flood(0);
    f.borrow_mut().answer = false;
    assert_eq!(c.read("domid"), Err(XsError::Timeout));
    let produced = f.borrow().produced;
    assert!(produced < 5_000, "{produced} events consumed by one read");
}

/// With the peer answering, the reply is found among the events.
#[test]
fn replies_among_endless_events_are_found() {
    let (mut c, f) = flood(0);
    for _ in 0..100 {
        c.write("data/x", "1").unwrap();
    }
    assert!(f.borrow().produced < FLOOD_LIMIT);
}

/// `poll` reads a bounded number of messages per call and leaves the
/// rest in the ring: events arrive in order with none lost, and
/// `has_pending_input` says there is more.
#[test]
fn poll_is_bounded_and_loses_nothing() {
    let (mut c, f) = flood(1_000);
    let mut next = 0u64;
    for _ in 0..100 {
        let evs = c.poll_watch_events().unwrap();
        assert!(!evs.is_empty() && evs.len() <= 64, "{} events", evs.len());
        for e in evs {
            assert_eq!(e.path, format!("data/{next}"));
            next += 1;
        }
        assert!(c.has_pending_input());
    }
    assert!(f.borrow().produced < 100 * 64 + 100);
    // Once the stream ends, everything produced is delivered.
    f.borrow_mut().flooding = false;
    while c.has_pending_input() {
        for e in c.poll_watch_events().unwrap() {
            assert_eq!(e.path, format!("data/{next}"));
            next += 1;
        }
    }
    assert_eq!(next, f.borrow().produced);
    assert_eq!(c.poll_watch_events().unwrap(), vec![]);
}

// -- Peer strings in logs --------------------------------------------------------

#[test]
fn untrusted_strings_are_escaped_and_bounded() {
    use super::{untrusted, LOG_MAX_BYTES};
    let show = |s: &str| untrusted(s).to_string();
    // Ordinary values are unchanged.
    for plain in ["524288", "/local/domain/7/memory/target", "été", ""] {
        assert_eq!(show(plain), plain);
    }
    // No way to start a new line, move the cursor or send escapes.
    assert_eq!(show("1\nFAKE: ok"), "1\\nFAKE: ok");
    assert_eq!(show("a\r\tb"), "a\\r\\tb");
    assert_eq!(show("\u{1b}[2J\0"), "\\u{1b}[2J\\0");
    assert_eq!(show("\u{7f}\u{85}\u{9b}"), "\\u{7f}\\u{85}\\u{9b}");
    // Bidi overrides and isolates (reordering what is shown).
    assert_eq!(show("a\u{202e}b\u{2066}"), "a\\u{202e}b\\u{2066}");
    // The escape character itself and quotes, so the form is unambiguous.
    assert_eq!(show("\\n'\""), "\\\\n\\'\\\"");
    // Bounded: at most LOG_MAX_BYTES, then "...", never half an escape or
    // half a character.
    let long = "x".repeat(5000);
    assert_eq!(show(&long), format!("{}...", "x".repeat(LOG_MAX_BYTES)));
    assert_eq!(show(&"x".repeat(LOG_MAX_BYTES)), "x".repeat(LOG_MAX_BYTES));
    assert_eq!(untrusted("ab\ncd").max_bytes(3).to_string(), "ab...");
    assert_eq!(untrusted("ab\ncd").max_bytes(4).to_string(), "ab\\n...");
    assert_eq!(untrusted("aé").max_bytes(2).to_string(), "a...");
    assert_eq!(untrusted("anything").max_bytes(0).to_string(), "...");
    // A watch event shows both strings that way.
    assert_eq!(
        ev("data/\n", "t\u{1b}").to_string(),
        "data/\\n (token t\\u{1b})"
    );
}

proptest! {
    /// Whatever the peer sends, the rendering has no control or format
    /// character and stays within the bound.
    #[test]
    fn untrusted_rendering_is_always_safe(s in any::<String>(), max in 0usize..200) {
        let out = super::untrusted(&s).max_bytes(max).to_string();
        prop_assert!(out.len() <= max + 3);
        prop_assert!(!out.chars().any(|c| c.is_control()));
        let bidi_or_zero_width = |c: char| {
            matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        let hidden = out.chars().any(bidi_or_zero_width);
        prop_assert!(!hidden, "hidden character in {:?}", out);
        if s.len() <= max && s.chars().all(|c| c.is_ascii_graphic() && c != '\\' && c != '\'' && c != '"') {
            prop_assert_eq!(out, s);
        }
    }
}
