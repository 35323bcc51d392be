//! The xenstore client: requests over the shared ring, replies matched by
//! `req_id`, watch events queued for their owners.
//!
//! One request is in flight at a time. While waiting for its reply the
//! client reads every message the peer sends: watch events go to a queue,
//! and any other reply is matched by `req_id`. Request ids come from the
//! client's own counter and only one is live at a time, so a reply with
//! an id the client handed out earlier is a late reply to a request given
//! up on (after a timeout or error), or a repeat: it is dropped and
//! counted ([`ClientStats::stale_replies`]), however many are owed, so
//! the client always resynchronises once the peer answers in order again.
//! A reply with an id never handed out (0, or ahead of the counter) is a
//! protocol error. Requests are written in pieces as the ring frees up; a
//! request that timed out half-written is completed before the next one,
//! so the stream stays framed.
//!
//! Work per call is bounded even when the peer keeps the response ring
//! full: [`XenstoreClient::poll`] reads at most [`MAX_MESSAGES_PER_POLL`]
//! messages, and a request looks at the clock every few messages and
//! reads at most [`MAX_MESSAGES_PER_REQUEST`] before it fails with
//! [`XsError::Timeout`]. Nothing is lost: unread messages stay in the
//! ring for the next call ([`XenstoreClient::has_pending_input`]).
//!
//! Errors: a reply whose header announces more than
//! [`XENSTORE_PAYLOAD_MAX`] bytes loses the framing for good; the client
//! then answers every call with [`XsError::Protocol`] (see
//! [`XenstoreClient::is_broken`]). Bad ring indices, malformed payloads,
//! replies with ids never issued and timeouts fail only the call that
//! met them.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::ring::{self, RingPage};
use super::wire::{self, Header, Message, HEADER_LEN};
use super::{Store, XsError};
use crate::xen::abi::{
    domid_t, DOMID_SELF, XENSTORE_PAYLOAD_MAX, XS_DIRECTORY, XS_ERROR, XS_READ, XS_RM,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
};
use crate::xen::errno::Errno;
use crate::xen::ops::Clock;

/// How the client signals and waits for xenstored.
///
/// The kernel implements it with the store event channel: `notify` is
/// EVTCHNOP_send on it, `wait` blocks (interrupts enabled, e.g.
/// SCHEDOP_block with a timer) until that channel fires or the deadline
/// passes. `wait` must not lose an event that fired after its previous
/// return: keep a pending flag that the upcall sets and `wait` clears.
/// Deadlines are in the [`Clock`]'s nanoseconds.
pub trait Waiter: Clock {
    /// Tells the peer that the ring has new requests or free space.
    fn notify(&mut self);
    /// Blocks until the store event fires or `now_ns() >= deadline_ns`.
    /// `Ok(())` means "look at the ring again" (spurious wake-ups are
    /// fine); [`XsError::Timeout`] means the deadline passed.
    fn wait(&mut self, deadline_ns: u64) -> Result<(), XsError>;
}

/// A watch that fired: `path` is the node that changed (the watched path
/// or one below it), `token` the token given to [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// For logs: the path and token, escaped and bounded (see
/// [`untrusted`](super::untrusted)).
impl core::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} (token {})",
            super::untrusted(&self.path),
            super::untrusted(&self.token)
        )
    }
}

/// Default time a request may take.
pub const DEFAULT_TIMEOUT_NS: u64 = 5_000_000_000;
/// Attempts [`XenstoreClient::transaction`] makes when commits keep
/// failing with EAGAIN.
pub const TRANSACTION_ATTEMPTS: u32 = 8;
/// Watch events kept before the oldest are dropped. Identical pending
/// events are coalesced, so this only matters for a flood of distinct
/// paths.
pub const MAX_QUEUED_EVENTS: usize = 256;
/// Messages one [`XenstoreClient::poll`] reads at most; the rest stay in
/// the ring for the next call (see [`XenstoreClient::has_pending_input`]).
pub const MAX_MESSAGES_PER_POLL: usize = 64;
/// Messages one request reads at most while waiting for its reply, so a
/// peer that keeps the ring full (of watch events, say) cannot hold a
/// call past its deadline, nor forever when the clock does not move.
pub const MAX_MESSAGES_PER_REQUEST: usize = 1024;
/// Messages read between two looks at the clock while a request waits.
const MESSAGES_PER_CLOCK_CHECK: usize = 16;

/// What one `pump` ended with.
enum Pumped {
    /// The reply asked for.
    Reply(Message),
    /// The ring holds no complete message.
    Drained,
    /// The message budget ran out; more may be waiting.
    Budget,
}

/// What the client has seen that did not go as it should, for
/// diagnostics. Counters saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests given up (timeout or error) after some of their bytes
    /// reached the ring: their replies may still come.
    pub given_up: u64,
    /// Replies with an id handed out earlier but not the live request's
    /// (late replies to requests given up on, or repeats): dropped.
    pub stale_replies: u64,
    /// Replies with an id never handed out: each failed the call that met
    /// it.
    pub unsolicited_replies: u64,
    /// Malformed watch events: each failed the call that met it.
    pub bad_events: u64,
}

/// A partly received message.
#[derive(Debug)]
struct Inbox {
    head: [u8; HEADER_LEN],
    head_fill: usize,
    header: Option<Header>,
    body: Vec<u8>,
    body_fill: usize,
}

impl Inbox {
    fn new() -> Self {
        Inbox {
            head: [0; HEADER_LEN],
            head_fill: 0,
            header: None,
            body: Vec::new(),
            body_fill: 0,
        }
    }
}

/// A xenstore client over a [`RingPage`], signalling through a
/// [`Waiter`].
#[derive(Debug)]
pub struct XenstoreClient<R: RingPage, W: Waiter> {
    page: R,
    waiter: W,
    /// Request bytes not yet in the ring.
    out: VecDeque<u8>,
    inbox: Inbox,
    next_req_id: u32,
    /// `next_req_id` has wrapped: every non-zero id has been handed out.
    ids_wrapped: bool,
    stats: ClientStats,
    /// Registered (path, token) pairs.
    watches: Vec<(String, String)>,
    events: VecDeque<WatchEvent>,
    timeout_ns: u64,
    domid: Option<domid_t>,
    broken: bool,
}

impl<R: RingPage, W: Waiter> XenstoreClient<R, W> {
    /// A client over the page; no I/O happens until the first call.
    pub fn new(page: R, waiter: W) -> Self {
        XenstoreClient {
            page,
            waiter,
            out: VecDeque::new(),
            inbox: Inbox::new(),
            next_req_id: 1,
            ids_wrapped: false,
            stats: ClientStats::default(),
            watches: Vec::new(),
            events: VecDeque::new(),
            timeout_ns: DEFAULT_TIMEOUT_NS,
            domid: None,
            broken: false,
        }
    }

    /// Sets how long one request may take before it fails with
    /// [`XsError::Timeout`].
    pub fn set_timeout_ns(&mut self, ns: u64) {
        self.timeout_ns = ns;
    }

    /// True once the peer broke the message framing; every call then
    /// fails with [`XsError::Protocol`].
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Counters of dropped and refused messages since the client was made.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    pub fn waiter(&mut self) -> &mut W {
        &mut self.waiter
    }

    pub fn page(&mut self) -> &mut R {
        &mut self.page
    }

    // -- Watch events -------------------------------------------------------

    /// Reads what the peer has sent without blocking (queueing watch
    /// events), at most [`MAX_MESSAGES_PER_POLL`] messages, and pushes out
    /// pending request bytes. Call it when the store event fires while no
    /// request is in flight, and again while
    /// [`has_pending_input`](Self::has_pending_input) says more is there.
    pub fn poll(&mut self) -> Result<(), XsError> {
        self.pump(None, MAX_MESSAGES_PER_POLL).map(|_| ())
    }

    /// Polls, then hands over every queued watch event, oldest first.
    pub fn poll_watch_events(&mut self) -> Result<Vec<WatchEvent>, XsError> {
        self.poll()?;
        Ok(self.events.drain(..).collect())
    }

    /// Polls, then hands over the paths of the queued events for `token`
    /// only, leaving other owners' events queued.
    pub fn take_watch_events(&mut self, token: &str) -> Result<Vec<String>, XsError> {
        self.poll()?;
        let mut paths = Vec::new();
        self.events.retain(|e| {
            if e.token == token {
                paths.push(e.path.clone());
                false
            } else {
                true
            }
        });
        Ok(paths)
    }

    /// True when the response ring holds bytes not read yet (the peer's
    /// indices are valid and differ). Each call reads a bounded number of
    /// messages and leaves the rest in the ring, and the store event does
    /// not fire again for bytes already announced: a caller that sees this
    /// should [`poll`](Self::poll) again soon instead of blocking on the
    /// event channel.
    pub fn has_pending_input(&self) -> bool {
        !self.broken && ring::used(self.page.rsp_cons(), self.page.rsp_prod()).is_ok_and(|n| n > 0)
    }

    /// Watch events queued and not yet taken.
    pub fn queued_watch_events(&self) -> usize {
        self.events.len()
    }

    // -- Home -----------------------------------------------------------------

    /// Our domain id, read once from the relative node "domid" (which the
    /// toolstack writes in every domain's home).
    pub fn domid(&mut self) -> Result<domid_t, XsError> {
        if let Some(d) = self.domid {
            return Ok(d);
        }
        let n = self.read_u64("domid")?;
        let d = domid_t::try_from(n).map_err(|_| XsError::Protocol)?;
        if d >= DOMID_SELF {
            return Err(XsError::Protocol);
        }
        self.domid = Some(d);
        Ok(d)
    }

    /// `/local/domain/<domid>`, the directory relative paths resolve in.
    pub fn home_path(&mut self) -> Result<String, XsError> {
        Ok(format!("/local/domain/{}", self.domid()?))
    }

    // -- Transactions ---------------------------------------------------------

    /// Starts a transaction and returns its id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        let reply = self.request(
            XS_TRANSACTION_START,
            0,
            wire::TRANSACTION_START_PAYLOAD.to_vec(),
        )?;
        wire::parse_tx_id(&reply)
    }

    /// Commits (`commit`) or aborts transaction `tx`. A commit that
    /// conflicted with another writer fails with `Remote(EAGAIN)`.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        let payload = wire::transaction_end_payload(commit).to_vec();
        let reply = self.request(XS_TRANSACTION_END, tx, payload)?;
        wire::parse_ack(&reply)
    }

    /// Runs `f` in a transaction and commits it, starting over while the
    /// commit (or an operation inside `f`) fails with EAGAIN, at most
    /// [`TRANSACTION_ATTEMPTS`] times. Any other error from `f` aborts the
    /// transaction and is returned. `f` may run several times.
    pub fn transaction<T, F>(&mut self, mut f: F) -> Result<T, XsError>
    where
        F: FnMut(&mut Transaction<'_, R, W>) -> Result<T, XsError>,
    {
        const EAGAIN: XsError = XsError::Remote(Errno::EAGAIN);
        for _ in 0..TRANSACTION_ATTEMPTS {
            let id = self.transaction_start()?;
            let result = f(&mut Transaction { client: self, id });
            match result {
                Ok(v) => match self.transaction_end(id, true) {
                    Ok(()) => return Ok(v),
                    Err(EAGAIN) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    // Best effort: the transaction is dropped either way.
                    let _ = self.transaction_end(id, false);
                    if e != EAGAIN {
                        return Err(e);
                    }
                }
            }
        }
        Err(EAGAIN)
    }

    // -- Operations with a transaction id -------------------------------------

    fn read_tx(&mut self, tx: u32, path: &str) -> Result<String, XsError> {
        let reply = self.request(XS_READ, tx, wire::path_payload(path)?)?;
        wire::parse_value(&reply)
    }

    fn write_tx(&mut self, tx: u32, path: &str, value: &str) -> Result<(), XsError> {
        let reply = self.request(XS_WRITE, tx, wire::write_payload(path, value)?)?;
        wire::parse_ack(&reply)
    }

    fn directory_tx(&mut self, tx: u32, path: &str) -> Result<Vec<String>, XsError> {
        let reply = self.request(XS_DIRECTORY, tx, wire::path_payload(path)?)?;
        wire::parse_directory(&reply)
    }

    fn rm_tx(&mut self, tx: u32, path: &str) -> Result<(), XsError> {
        let reply = self.request(XS_RM, tx, wire::path_payload(path)?)?;
        wire::parse_ack(&reply)
    }

    // -- The engine -------------------------------------------------------------

    fn alloc_req_id(&mut self) -> u32 {
        let id = self.next_req_id;
        // 0 is what xenstored puts in watch events; skip it.
        self.next_req_id = match self.next_req_id.checked_add(1) {
            Some(n) => n,
            None => {
                self.ids_wrapped = true;
                1
            }
        };
        id
    }

    /// Whether `req_id` is one this client has handed out (0 never is).
    fn was_issued(&self, req_id: u32) -> bool {
        req_id != 0 && (self.ids_wrapped || req_id < self.next_req_id)
    }

    /// Test hook: continue the request id counter from `id` (non-zero).
    #[cfg(test)]
    pub(super) fn set_next_req_id(&mut self, id: u32) {
        assert!(id != 0 && id >= self.next_req_id);
        self.next_req_id = id;
    }

    /// Sends one request and returns the payload of its reply. An XS_ERROR
    /// reply becomes `Remote(errno)`; a reply of another type than the
    /// request is a protocol error.
    fn request(&mut self, ty: u32, tx: u32, payload: Vec<u8>) -> Result<Vec<u8>, XsError> {
        if self.broken {
            return Err(XsError::Protocol);
        }
        let req_id = self.alloc_req_id();
        let msg = wire::encode(ty, req_id, tx, &payload)?;
        let msg_len = msg.len();
        self.out.extend(msg);
        let deadline = self.waiter.now_ns().saturating_add(self.timeout_ns);
        let mut read = 0;
        let result = loop {
            match self.pump(Some(req_id), MESSAGES_PER_CLOCK_CHECK) {
                Ok(Pumped::Reply(reply)) => break Ok(reply),
                Ok(Pumped::Drained) => {
                    if let Err(e) = self.waiter.wait(deadline) {
                        break Err(e);
                    }
                }
                // More in the ring: no waiting, but mind the deadline.
                Ok(Pumped::Budget) => {
                    read += MESSAGES_PER_CLOCK_CHECK;
                    if read >= MAX_MESSAGES_PER_REQUEST || self.waiter.now_ns() >= deadline {
                        break Err(XsError::Timeout);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(reply) => match reply.header.ty {
                XS_ERROR => Err(wire::parse_error(&reply.payload)),
                t if t == ty => Ok(reply.payload),
                _ => Err(XsError::Protocol),
            },
            Err(e) => {
                self.give_up(msg_len);
                Err(e)
            }
        }
    }

    /// Forgets the request whose `msg_len` bytes were queued last: if
    /// none of it reached the ring it is withdrawn, otherwise its reply
    /// (if it ever comes) is dropped as stale: its id is not the live one.
    fn give_up(&mut self, msg_len: usize) {
        match self.out.len().checked_sub(msg_len) {
            Some(keep) => self.out.truncate(keep),
            None => bump(&mut self.stats.given_up),
        }
    }

    /// Pushes out pending request bytes, then reads complete messages
    /// until the reply to `want` turns up, the ring runs dry or `budget`
    /// messages were read (the rest stay in the ring). Never blocks.
    fn pump(&mut self, want: Option<u32>, budget: usize) -> Result<Pumped, XsError> {
        if self.broken {
            return Err(XsError::Protocol);
        }
        self.flush()?;
        for _ in 0..budget {
            let Some(msg) = self.next_message()? else {
                return Ok(Pumped::Drained);
            };
            let h = msg.header;
            if h.ty == XS_WATCH_EVENT {
                if let Err(e) = self.queue_event(&msg.payload) {
                    bump(&mut self.stats.bad_events);
                    return Err(e);
                }
            } else if Some(h.req_id) == want {
                return Ok(Pumped::Reply(msg));
            } else if self.was_issued(h.req_id) {
                bump(&mut self.stats.stale_replies);
            } else {
                bump(&mut self.stats.unsolicited_replies);
                return Err(XsError::Protocol);
            }
        }
        Ok(Pumped::Budget)
    }

    /// Writes as much pending request data as the ring takes.
    fn flush(&mut self) -> Result<(), XsError> {
        let mut wrote = false;
        while !self.out.is_empty() {
            let (chunk, _) = self.out.as_slices();
            let n = ring::write_request(&mut self.page, chunk)?;
            if n == 0 {
                break;
            }
            self.out.drain(..n);
            wrote = true;
        }
        if wrote {
            self.waiter.notify();
        }
        Ok(())
    }

    /// Reads from the response ring into `buf`, notifying the peer when
    /// that made room it may be waiting for.
    fn read_ring(page: &mut R, waiter: &mut W, buf: &mut [u8]) -> Result<usize, XsError> {
        let r = ring::read_response(page, buf)?;
        if r.notify {
            waiter.notify();
        }
        Ok(r.n)
    }

    /// The next complete message, if the ring holds the rest of it.
    fn next_message(&mut self) -> Result<Option<Message>, XsError> {
        let inbox = &mut self.inbox;
        let header = match inbox.header {
            Some(h) => h,
            None => {
                let buf = &mut inbox.head[inbox.head_fill..];
                inbox.head_fill += Self::read_ring(&mut self.page, &mut self.waiter, buf)?;
                if inbox.head_fill < HEADER_LEN {
                    return Ok(None);
                }
                inbox.head_fill = 0;
                let h = match Header::from_bytes(&inbox.head) {
                    Ok(h) => h,
                    Err(e) => {
                        // The length is the only framing there is.
                        self.broken = true;
                        return Err(e);
                    }
                };
                debug_assert!(h.len as usize <= XENSTORE_PAYLOAD_MAX);
                inbox.header = Some(h);
                inbox.body = vec![0; h.len as usize];
                inbox.body_fill = 0;
                h
            }
        };
        if inbox.body_fill < inbox.body.len() {
            let buf = &mut inbox.body[inbox.body_fill..];
            inbox.body_fill += Self::read_ring(&mut self.page, &mut self.waiter, buf)?;
            if inbox.body_fill < inbox.body.len() {
                return Ok(None);
            }
        }
        inbox.header = None;
        Ok(Some(Message {
            header,
            payload: core::mem::take(&mut inbox.body),
        }))
    }

    /// Queues a watch event for a registered token; events for tokens we
    /// do not watch (e.g. arriving after an unwatch) are dropped.
    fn queue_event(&mut self, payload: &[u8]) -> Result<(), XsError> {
        let (path, token) = wire::parse_watch_event(payload)?;
        if !self.watches.iter().any(|(_, t)| *t == token) {
            return Ok(());
        }
        let ev = WatchEvent { path, token };
        if self.events.contains(&ev) {
            return Ok(());
        }
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
        Ok(())
    }
}

fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

impl<R: RingPage, W: Waiter> Store for XenstoreClient<R, W> {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.read_tx(0, path)
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.write_tx(0, path, value)
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.directory_tx(0, path)
    }

    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.rm_tx(0, path)
    }

    /// Registers the watch. xenstored fires it once right away; that
    /// event is queued like any other.
    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let payload = wire::watch_payload(path, token)?;
        // Registered first: the initial event may arrive before the reply.
        let entry = (String::from(path), String::from(token));
        self.watches.push(entry.clone());
        let result = self
            .request(XS_WATCH, 0, payload)
            .and_then(|r| wire::parse_ack(&r));
        if result.is_err() {
            if let Some(i) = self.watches.iter().rposition(|w| *w == entry) {
                self.watches.remove(i);
            }
            if !self.watches.iter().any(|(_, t)| t == token) {
                self.events.retain(|e| e.token != token);
            }
        }
        result
    }

    /// Removes the watch and, when no other watch uses the token, the
    /// events still queued for it.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let payload = wire::watch_payload(path, token)?;
        let reply = self.request(XS_UNWATCH, 0, payload)?;
        wire::parse_ack(&reply)?;
        if let Some(i) = self
            .watches
            .iter()
            .position(|(p, t)| p == path && t == token)
        {
            self.watches.remove(i);
        }
        if !self.watches.iter().any(|(_, t)| t == token) {
            self.events.retain(|e| e.token != token);
        }
        Ok(())
    }
}

/// Operations inside a transaction (see [`XenstoreClient::transaction`]).
/// Watches are not transactional: `watch`/`unwatch` act at once.
#[derive(Debug)]
pub struct Transaction<'a, R: RingPage, W: Waiter> {
    client: &'a mut XenstoreClient<R, W>,
    id: u32,
}

impl<R: RingPage, W: Waiter> Transaction<'_, R, W> {
    /// The transaction id xenstored assigned.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl<R: RingPage, W: Waiter> Store for Transaction<'_, R, W> {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.client.read_tx(self.id, path)
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        self.client.write_tx(self.id, path, value)
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.client.directory_tx(self.id, path)
    }

    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.client.rm_tx(self.id, path)
    }

    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.client.watch(path, token)
    }

    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.client.unwatch(path, token)
    }
}
