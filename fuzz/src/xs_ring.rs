//! xenstore ring indices (`src/xen/xenstore/ring.rs`) against a hostile
//! peer: the input is a script of peer actions (honest produce/consume,
//! arbitrary index values, indices that change on every read) and client
//! reads and writes.
//!
//! Properties, checked against a model of the page: no access outside
//! the two 1024-byte arrays (the page's accessors assert it); a bad index
//! pair is `Protocol` and leaves the indices alone; otherwise the client
//! moves exactly `min(available, asked)` bytes, they are the bytes at the
//! masked offsets, its own index advances by that much and the peer's
//! index is untouched; with indices that change under it, it still never
//! returns more than it was asked for or than a ring holds.

use std::cell::Cell;

use selfballoon::xen::abi::XENSTORE_RING_SIZE;
use selfballoon::xen::xenstore::ring::{self, RingPage};
use selfballoon::xen::xenstore::XsError;

use crate::Input;

const SIZE: u32 = XENSTORE_RING_SIZE as u32;
const MASK: u32 = SIZE - 1;

/// The shared page as the peer sees it. With `flicker` set, every index
/// read returns a fresh value from `noise` (a peer racing the client).
struct Page {
    req: [u8; XENSTORE_RING_SIZE],
    rsp: [u8; XENSTORE_RING_SIZE],
    req_cons: Cell<u32>,
    req_prod: u32,
    rsp_cons: u32,
    rsp_prod: Cell<u32>,
    flicker: bool,
    noise: Cell<u64>,
}

impl Page {
    /// The peer-written indices, as the client reads them.
    fn peer_index(&self, slot: &Cell<u32>) -> u32 {
        if self.flicker {
            // xorshift: deterministic, from the input's seed.
            let mut x = self.noise.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.noise.set(x);
            // Mostly near the current value, sometimes anything.
            let v = if x & 3 == 0 {
                (x >> 32) as u32
            } else {
                slot.get().wrapping_add(((x >> 32) as u32) % (2 * SIZE + 2))
            };
            slot.set(v);
        }
        slot.get()
    }
}

impl RingPage for Page {
    fn req_cons(&self) -> u32 {
        self.peer_index(&self.req_cons)
    }
    fn req_prod(&self) -> u32 {
        self.req_prod
    }
    fn set_req_prod(&mut self, v: u32) {
        self.req_prod = v;
    }
    fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }
    fn rsp_prod(&self) -> u32 {
        self.peer_index(&self.rsp_prod)
    }
    fn set_rsp_cons(&mut self, v: u32) {
        self.rsp_cons = v;
    }
    fn write_req(&mut self, offset: usize, data: &[u8]) {
        assert!(
            offset < XENSTORE_RING_SIZE && data.len() <= XENSTORE_RING_SIZE - offset,
            "write_req({offset}, {}) outside the ring",
            data.len()
        );
        assert!(!data.is_empty(), "empty write_req");
        self.req[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_rsp(&self, offset: usize, buf: &mut [u8]) {
        assert!(
            offset < XENSTORE_RING_SIZE && buf.len() <= XENSTORE_RING_SIZE - offset,
            "read_rsp({offset}, {}) outside the ring",
            buf.len()
        );
        assert!(!buf.is_empty(), "empty read_rsp");
        buf.copy_from_slice(&self.rsp[offset..offset + buf.len()]);
    }
}

pub fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    let start = inp.u32();
    let mut p = Page {
        req: [0; XENSTORE_RING_SIZE],
        rsp: [0; XENSTORE_RING_SIZE],
        req_cons: Cell::new(start),
        req_prod: start,
        rsp_cons: start,
        rsp_prod: Cell::new(start),
        flicker: false,
        noise: Cell::new(0),
    };
    let mut fill = 0u8;
    let mut steps = 0;
    while !inp.is_empty() && steps < 64 {
        steps += 1;
        match inp.u8() % 8 {
            // Peer: arbitrary response indices.
            0 => {
                p.rsp_cons = inp.u32();
                p.rsp_prod.set(inp.u32());
            }
            // Peer: arbitrary request indices.
            1 => {
                p.req_cons.set(inp.u32());
                p.req_prod = inp.u32();
            }
            // Peer: honest produce of up to n bytes (if the pair is sane).
            2 => {
                let n = u32::from(inp.u16()) % (SIZE + 1);
                if let Ok(used) = ring::used(p.rsp_cons, p.rsp_prod.get()) {
                    let n = n.min(SIZE - used as u32);
                    for i in 0..n {
                        fill = fill.wrapping_add(1);
                        p.rsp[(p.rsp_prod.get().wrapping_add(i) & MASK) as usize] = fill;
                    }
                    p.rsp_prod.set(p.rsp_prod.get().wrapping_add(n));
                }
            }
            // Peer: honest consume of up to n bytes.
            3 => {
                let n = u32::from(inp.u16()) % (SIZE + 1);
                if let Ok(used) = ring::used(p.req_cons.get(), p.req_prod) {
                    p.req_cons
                        .set(p.req_cons.get().wrapping_add(n.min(used as u32)));
                }
            }
            // Client read.
            4 => client_read(&mut p, usize::from(inp.u16()) % 3000),
            // Client write.
            5 => {
                let len = usize::from(inp.u16()) % 3000;
                client_write(&mut p, len, inp.u8());
            }
            // Client read and write while the peer's indices flicker.
            _ => {
                p.flicker = true;
                p.noise.set(inp.u64() | 1);
                let mut buf = vec![0u8; usize::from(inp.u16()) % 3000];
                if let Ok(r) = ring::read_response(&mut p, &mut buf) {
                    assert!(r.n <= buf.len() && r.n <= XENSTORE_RING_SIZE);
                }
                let data = vec![7u8; usize::from(inp.u16()) % 3000];
                if let Ok(n) = ring::write_request(&mut p, &data) {
                    assert!(n <= data.len() && n <= XENSTORE_RING_SIZE);
                }
                p.flicker = false;
            }
        }
    }
}

fn client_read(p: &mut Page, len: usize) {
    let (cons, prod) = (p.rsp_cons, p.rsp_prod.get());
    let before = p.rsp;
    let mut buf = vec![0u8; len];
    let r = ring::read_response(p, &mut buf);
    assert_eq!(p.rsp_prod.get(), prod, "the client wrote the peer's index");
    assert_eq!(p.rsp, before, "the client wrote the response ring");
    match (ring::used(cons, prod), r) {
        (Err(_), Err(e)) => {
            assert_eq!(e, XsError::Protocol);
            assert_eq!(p.rsp_cons, cons, "a bad pair moved the index");
        }
        (Ok(avail), Ok(r)) => {
            assert_eq!(r.n, avail.min(len));
            assert_eq!(p.rsp_cons, cons.wrapping_add(r.n as u32));
            for (i, &b) in buf[..r.n].iter().enumerate() {
                assert_eq!(b, p.rsp[(cons.wrapping_add(i as u32) & MASK) as usize]);
            }
            assert!(buf[r.n..].iter().all(|&b| b == 0), "wrote past n");
            assert_eq!(r.notify, r.n > 0 && avail == XENSTORE_RING_SIZE);
        }
        (used, r) => panic!("used {used:?} but read_response {r:?}"),
    }
}

fn client_write(p: &mut Page, len: usize, seed: u8) {
    let (cons, prod) = (p.req_cons.get(), p.req_prod);
    let data: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
    let before = p.req;
    let r = ring::write_request(p, &data);
    assert_eq!(p.req_cons.get(), cons, "the client wrote the peer's index");
    match (ring::used(cons, prod), r) {
        (Err(_), Err(e)) => {
            assert_eq!(e, XsError::Protocol);
            assert_eq!(p.req_prod, prod, "a bad pair moved the index");
            assert_eq!(p.req, before);
        }
        (Ok(used), Ok(n)) => {
            assert_eq!(n, (XENSTORE_RING_SIZE - used).min(len));
            assert_eq!(p.req_prod, prod.wrapping_add(n as u32));
            // The data at the masked offsets, and nothing else changed.
            let mut want = before;
            for (i, &b) in data[..n].iter().enumerate() {
                want[(prod.wrapping_add(i as u32) & MASK) as usize] = b;
            }
            assert!(p.req == want, "the request ring holds other bytes");
        }
        (used, r) => panic!("used {used:?} but write_request {r:?}"),
    }
}
