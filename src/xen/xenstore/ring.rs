//! Ring arithmetic over the xenstore page (`xenstore_domain_interface`,
//! public/io/xs_wire.h): we produce requests into `req` and consume
//! replies and watch events from `rsp`. Both rings are
//! [`XENSTORE_RING_SIZE`] bytes with free-running `u32` indices.
//!
//! The page is shared with xenstored's domain, so nothing read from it is
//! trusted: every index pair is read once, checked (`prod - cons`, in
//! wrapping arithmetic, must not exceed the ring size) and only that
//! snapshot is used. A bad pair is [`XsError::Protocol`]; the rings are
//! then left untouched, so a peer that repairs its indices can carry on.
//! Offsets into the byte arrays are always masked, so no value on the
//! page can cause an out-of-bounds access.
//!
//! The ordering follows Linux's `xenbus_comms.c` (`xb_write`/`xb_read`).

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{fence, Ordering};

use super::XsError;
use crate::xen::abi::{xenstore_domain_interface, XENSTORE_RING_SIZE};

const SIZE: u32 = XENSTORE_RING_SIZE as u32;
const MASK: u32 = SIZE - 1;

/// Access to the shared xenstore page, from the guest's (client's) side.
///
/// Implementations read and write the page with volatile accesses (the
/// peer changes it at any time). Index accessors each read or write one
/// aligned `u32`, which is atomic on x86. The byte accessors copy within
/// one ring: callers guarantee `offset + len <= XENSTORE_RING_SIZE`.
///
/// Memory ordering: the ring code calls the barriers at the points the
/// protocol requires, so implementations only have to make them real:
/// - [`rmb`](Self::rmb) orders earlier reads before later reads (read
///   `rsp_prod`, then the bytes it covers);
/// - [`wmb`](Self::wmb) orders earlier writes before later writes (write
///   the bytes, then publish `req_prod`);
/// - [`mb`](Self::mb) is a full barrier, including earlier writes before
///   later reads (publish `rsp_cons`, then re-read `rsp_prod` to decide
///   whether to notify).
///
/// The defaults use `core::sync::atomic::fence`, which on x86-64 is a
/// compiler barrier for acquire/release and `mfence` for `SeqCst`; that is
/// what x86's ordering needs between domains.
pub trait RingPage {
    fn req_cons(&self) -> u32;
    fn req_prod(&self) -> u32;
    fn set_req_prod(&mut self, v: u32);
    fn rsp_cons(&self) -> u32;
    fn rsp_prod(&self) -> u32;
    fn set_rsp_cons(&mut self, v: u32);
    /// Copies `data` to `req[offset..offset + data.len()]`.
    fn write_req(&mut self, offset: usize, data: &[u8]);
    /// Copies `rsp[offset..offset + buf.len()]` to `buf`.
    fn read_rsp(&self, offset: usize, buf: &mut [u8]);

    fn mb(&self) {
        fence(Ordering::SeqCst);
    }
    fn rmb(&self) {
        fence(Ordering::Acquire);
    }
    fn wmb(&self) {
        fence(Ordering::Release);
    }
}

/// Bytes in use between `cons` and `prod`, or a protocol error when the
/// pair is impossible (more than a ring's worth, including `cons` ahead of
/// `prod`).
pub fn used(cons: u32, prod: u32) -> Result<usize, XsError> {
    let used = prod.wrapping_sub(cons);
    if used > SIZE {
        return Err(XsError::Protocol);
    }
    Ok(used as usize)
}

/// Copies as much of `data` into the request ring as fits now and
/// publishes it. Returns the number of bytes written (0 when the ring is
/// full or `data` is empty); the caller notifies the peer when it is not 0.
pub fn write_request<P: RingPage + ?Sized>(page: &mut P, data: &[u8]) -> Result<usize, XsError> {
    let cons = page.req_cons();
    let prod = page.req_prod();
    let free = XENSTORE_RING_SIZE - used(cons, prod)?;
    let n = free.min(data.len());
    if n == 0 {
        return Ok(0);
    }
    // Write the bytes only after reading the consumer index.
    page.mb();
    let off = (prod & MASK) as usize;
    let first = n.min(XENSTORE_RING_SIZE - off);
    page.write_req(off, &data[..first]);
    if first < n {
        page.write_req(0, &data[first..n]);
    }
    // The peer must not see the new producer before the bytes.
    page.wmb();
    page.set_req_prod(prod.wrapping_add(n as u32));
    Ok(n)
}

/// What [`read_response`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Bytes copied into the buffer.
    pub n: usize,
    /// The ring was full before we made room: the peer may be waiting for
    /// space, so notify it.
    pub notify: bool,
}

/// Copies up to `buf.len()` bytes from the response ring and releases
/// them.
pub fn read_response<P: RingPage + ?Sized>(
    page: &mut P,
    buf: &mut [u8],
) -> Result<ReadOutcome, XsError> {
    let cons = page.rsp_cons();
    let prod = page.rsp_prod();
    let avail = used(cons, prod)?;
    let n = avail.min(buf.len());
    if n == 0 {
        return Ok(ReadOutcome {
            n: 0,
            notify: false,
        });
    }
    // Read the bytes only after reading the producer index.
    page.rmb();
    let off = (cons & MASK) as usize;
    let first = n.min(XENSTORE_RING_SIZE - off);
    page.read_rsp(off, &mut buf[..first]);
    if first < n {
        page.read_rsp(0, &mut buf[first..n]);
    }
    // Finish reading before the peer may overwrite the space.
    page.mb();
    page.set_rsp_cons(cons.wrapping_add(n as u32));
    // Publish the consumer before looking at the producer again.
    page.mb();
    let notify = page.rsp_prod().wrapping_sub(cons) >= SIZE;
    Ok(ReadOutcome { n, notify })
}

/// [`RingPage`] over the real shared page, through a raw pointer.
#[derive(Debug)]
pub struct VolatilePage {
    ptr: *mut xenstore_domain_interface,
}

// SAFETY: a VolatilePage only holds a pointer to a fixed mapping that is
// not tied to any thread (no thread-local state, no reference counts).
// Moving it to another thread moves the only handle `new`'s contract
// allows to write `req`, `req_prod` and `rsp_cons`, so writers stay
// unique; every access is a volatile read or write of plain bytes and
// u32 indices, which the protocol expects the peer to change at any time.
unsafe impl Send for VolatilePage {}

impl VolatilePage {
    /// # Safety
    /// `ptr` must point to a mapped `xenstore_domain_interface` that stays
    /// valid for reads and writes for as long as the returned value (or
    /// the client owning it) lives, and nothing in this domain other than
    /// the returned value may write its `req` ring or `req_prod` /
    /// `rsp_cons`.
    pub unsafe fn new(ptr: *mut xenstore_domain_interface) -> Self {
        Self { ptr }
    }

    /// Wraps the xenstore ring page Xen set up for this domain
    /// (HVM_PARAM_STORE_PFN), claimed from the direct map; the ring keeps
    /// it for good.
    pub fn from_claimed(page: crate::mm::direct::ClaimedFrames) -> Self {
        let ptr = page.into_permanent::<xenstore_domain_interface>();
        Self { ptr }
    }

    /// The raw pointer (e.g. for a test peer acting as xenstored).
    pub fn as_ptr(&self) -> *mut xenstore_domain_interface {
        self.ptr
    }
}

impl RingPage for VolatilePage {
    fn req_cons(&self) -> u32 {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays readable while `self`
        // lives; `addr_of!` reaches the aligned u32 field `req_cons` without
        // making a reference (the peer writes the page concurrently), and
        // one volatile u32 read of it is atomic on x86; any value is a
        // valid u32.
        unsafe { addr_of!((*self.ptr).req_cons).read_volatile() }
    }
    fn req_prod(&self) -> u32 {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays readable while `self`
        // lives; `addr_of!` reaches the aligned u32 field `req_prod` without
        // making a reference (the peer writes the page concurrently), and
        // one volatile u32 read of it is atomic on x86; any value is a
        // valid u32.
        unsafe { addr_of!((*self.ptr).req_prod).read_volatile() }
    }
    fn set_req_prod(&mut self, v: u32) {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays writable while `self`
        // lives, and only this value writes `req_prod` in this domain;
        // `addr_of_mut!` reaches the aligned u32 field without making a
        // reference, and one volatile u32 write of it is atomic on x86.
        unsafe { addr_of_mut!((*self.ptr).req_prod).write_volatile(v) }
    }
    fn rsp_cons(&self) -> u32 {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays readable while `self`
        // lives; `addr_of!` reaches the aligned u32 field `rsp_cons` without
        // making a reference (the peer writes the page concurrently), and
        // one volatile u32 read of it is atomic on x86; any value is a
        // valid u32.
        unsafe { addr_of!((*self.ptr).rsp_cons).read_volatile() }
    }
    fn rsp_prod(&self) -> u32 {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays readable while `self`
        // lives; `addr_of!` reaches the aligned u32 field `rsp_prod` without
        // making a reference (the peer writes the page concurrently), and
        // one volatile u32 read of it is atomic on x86; any value is a
        // valid u32.
        unsafe { addr_of!((*self.ptr).rsp_prod).read_volatile() }
    }
    fn set_rsp_cons(&mut self, v: u32) {
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays writable while `self`
        // lives, and only this value writes `rsp_cons` in this domain;
        // `addr_of_mut!` reaches the aligned u32 field without making a
        // reference, and one volatile u32 write of it is atomic on x86.
        unsafe { addr_of_mut!((*self.ptr).rsp_cons).write_volatile(v) }
    }
    fn write_req(&mut self, offset: usize, data: &[u8]) {
        assert!(offset <= XENSTORE_RING_SIZE && data.len() <= XENSTORE_RING_SIZE - offset);
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays writable while `self`
        // lives, and only this value writes its `req` ring in this domain.
        // The assert above keeps `offset..offset + data.len()` inside the
        // XENSTORE_RING_SIZE-byte `req` array, so `base` and every
        // `base.add(i)` stay in bounds; `addr_of_mut!` makes no reference
        // to the shared page, and bytes are written one volatile access at
        // a time. `data` is our own memory, not part of the page.
        unsafe {
            let base = addr_of_mut!((*self.ptr).req).cast::<u8>().add(offset);
            for (i, b) in data.iter().enumerate() {
                base.add(i).write_volatile(*b);
            }
        }
    }
    fn read_rsp(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset <= XENSTORE_RING_SIZE && buf.len() <= XENSTORE_RING_SIZE - offset);
        // SAFETY: by `new`'s contract `self.ptr` points at a mapped
        // xenstore_domain_interface that stays readable while `self`
        // lives. The assert above keeps `offset..offset + buf.len()`
        // inside the XENSTORE_RING_SIZE-byte `rsp` array, so `base` and
        // every `base.add(i)` stay in bounds; `addr_of!` makes no
        // reference to the shared page (the peer writes it concurrently),
        // bytes are read one volatile access at a time, and any byte is a
        // valid u8. `buf` is our own memory, not part of the page.
        unsafe {
            let base = addr_of!((*self.ptr).rsp).cast::<u8>().add(offset);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = base.add(i).read_volatile();
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A plain in-memory page; the test acts as the peer by touching the
    /// fields directly.
    #[derive(Clone)]
    pub(crate) struct BufPage {
        pub req: [u8; XENSTORE_RING_SIZE],
        pub rsp: [u8; XENSTORE_RING_SIZE],
        pub req_cons: u32,
        pub req_prod: u32,
        pub rsp_cons: u32,
        pub rsp_prod: u32,
    }

    impl BufPage {
        pub fn new(req_start: u32, rsp_start: u32) -> Self {
            BufPage {
                req: [0; XENSTORE_RING_SIZE],
                rsp: [0; XENSTORE_RING_SIZE],
                req_cons: req_start,
                req_prod: req_start,
                rsp_cons: rsp_start,
                rsp_prod: rsp_start,
            }
        }

        /// Peer side: produce up to `data.len()` bytes into `rsp`.
        pub fn peer_produce(&mut self, data: &[u8]) -> usize {
            let free = SIZE - self.rsp_prod.wrapping_sub(self.rsp_cons);
            let n = (free as usize).min(data.len());
            for (i, b) in data[..n].iter().enumerate() {
                self.rsp[(self.rsp_prod.wrapping_add(i as u32) & MASK) as usize] = *b;
            }
            self.rsp_prod = self.rsp_prod.wrapping_add(n as u32);
            n
        }

        /// Peer side: consume up to `max` bytes from `req`.
        pub fn peer_consume(&mut self, max: usize) -> Vec<u8> {
            let avail = self.req_prod.wrapping_sub(self.req_cons) as usize;
            let n = avail.min(max);
            let out = (0..n)
                .map(|i| self.req[(self.req_cons.wrapping_add(i as u32) & MASK) as usize])
                .collect();
            self.req_cons = self.req_cons.wrapping_add(n as u32);
            out
        }
    }

    impl RingPage for BufPage {
        fn req_cons(&self) -> u32 {
            self.req_cons
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
            self.rsp_prod
        }
        fn set_rsp_cons(&mut self, v: u32) {
            self.rsp_cons = v;
        }
        fn write_req(&mut self, offset: usize, data: &[u8]) {
            self.req[offset..offset + data.len()].copy_from_slice(data);
        }
        fn read_rsp(&self, offset: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.rsp[offset..offset + buf.len()]);
        }
    }

    #[test]
    fn used_checks_index_pairs() {
        assert_eq!(used(0, 0), Ok(0));
        assert_eq!(used(5, 1029), Ok(1024));
        assert_eq!(used(u32::MAX - 3, 4), Ok(8));
        assert_eq!(used(0, 1025), Err(XsError::Protocol));
        // cons beyond prod
        assert_eq!(used(10, 9), Err(XsError::Protocol));
        assert_eq!(used(0, u32::MAX), Err(XsError::Protocol));
    }

    #[test]
    fn write_wraps_and_stops_when_full() {
        let mut p = BufPage::new(1000, 0);
        let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
        assert_eq!(write_request(&mut p, &data), Ok(1024));
        assert_eq!(p.req_prod, 2024);
        assert_eq!(write_request(&mut p, &data[1024..]), Ok(0));
        assert_eq!(p.peer_consume(100), &data[..100]);
        assert_eq!(write_request(&mut p, &data[1024..]), Ok(100));
        let mut got = p.peer_consume(2000);
        assert_eq!(got.len(), 1024);
        got.truncate(924);
        assert_eq!(got, &data[100..1024]);
        assert_eq!(write_request(&mut p, &[]), Ok(0));
    }

    #[test]
    fn read_wraps_and_asks_to_notify_when_it_frees_a_full_ring() {
        let mut p = BufPage::new(0, u32::MAX - 10);
        let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(p.peer_produce(&data), 1024);
        let mut buf = vec![0u8; 600];
        let r = read_response(&mut p, &mut buf).unwrap();
        assert_eq!(
            r,
            ReadOutcome {
                n: 600,
                notify: true
            }
        );
        assert_eq!(buf, &data[..600]);
        let r = read_response(&mut p, &mut buf).unwrap();
        assert_eq!(
            r,
            ReadOutcome {
                n: 424,
                notify: false
            }
        );
        assert_eq!(&buf[..424], &data[600..]);
        assert_eq!(read_response(&mut p, &mut buf).unwrap().n, 0);
        assert_eq!(p.rsp_cons, (u32::MAX - 10).wrapping_add(1024));
    }

    #[test]
    fn hostile_indices_are_errors_and_leave_the_page_alone() {
        let mut buf = [0u8; 64];
        for (cons, prod) in [(0, 1025), (0, u32::MAX), (100, 99), (7, 0x8000_0000)] {
            let mut p = BufPage::new(0, 0);
            p.rsp_cons = cons;
            p.rsp_prod = prod;
            assert_eq!(read_response(&mut p, &mut buf), Err(XsError::Protocol));
            assert_eq!((p.rsp_cons, p.rsp_prod), (cons, prod));

            let mut p = BufPage::new(0, 0);
            p.req_cons = cons;
            p.req_prod = prod;
            assert_eq!(write_request(&mut p, b"hello"), Err(XsError::Protocol));
            assert_eq!((p.req_cons, p.req_prod), (cons, prod));
        }
    }

    #[test]
    fn volatile_page_reaches_the_right_fields() {
        // SAFETY: xenstore_domain_interface is a repr(C) struct of u8
        // arrays and u32 fields only, for which all-zero bytes are valid.
        let page: xenstore_domain_interface = unsafe { core::mem::zeroed() };
        let raw = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(page));
        // SAFETY: `raw` is a live, aligned allocation (from Box::into_raw)
        // that stays valid until freed at the end of this test, after the
        // last use of `p`; only `p` writes `req`, `req_prod` and
        // `rsp_cons` while it is in use (the test reads them, and writes
        // the peer's fields, only between `p`'s calls).
        let mut p = unsafe { VolatilePage::new(raw) };
        // SAFETY: `raw` is valid and aligned (above); the test is single
        // threaded and no call on `p` is running, so these plain writes
        // race with nothing; the array indices are reduced mod 1024, in
        // bounds of the 1024-byte `rsp`.
        unsafe {
            (*raw).rsp_prod = 1020 + 8;
            (*raw).rsp_cons = 1020;
            for (i, b) in b"abcdefgh".iter().enumerate() {
                (*raw).rsp[(1020 + i) % 1024] = *b;
            }
            (*raw).req_cons = 1022;
            (*raw).req_prod = 1022;
        }
        let mut buf = [0u8; 16];
        assert_eq!(read_response(&mut p, &mut buf).unwrap().n, 8);
        assert_eq!(&buf[..8], b"abcdefgh");
        assert_eq!(write_request(&mut p, b"wxyz"), Ok(4));
        // `p` is not used again.
        // SAFETY: `raw` is still the valid, aligned allocation from
        // Box::into_raw and `p`, the only other user, is done, so the
        // shared reference `req` and the reads alias no writer; the
        // allocation is freed exactly once, by Box::from_raw, after its
        // last use.
        unsafe {
            assert_eq!((*raw).rsp_cons, 1028);
            assert_eq!((*raw).req_prod, 1026);
            let req = &(*raw).req;
            assert_eq!(&req[1022..], b"wx");
            assert_eq!(&req[..2], b"yz");
            drop(alloc::boxed::Box::from_raw(raw));
        }
    }

    proptest! {
        /// A byte stream survives any chunking on both sides and any start
        /// index, in both directions.
        #[test]
        fn transfers_preserve_the_stream(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            start: u32,
            chunks in proptest::collection::vec(1usize..1100, 1..64),
        ) {
            // Responses: peer produces in chunks, we read in chunks.
            let mut p = BufPage::new(start, start);
            let (mut sent, mut got, mut i) = (0usize, Vec::new(), 0usize);
            let mut buf = vec![0u8; 1100];
            while got.len() < data.len() {
                let c = chunks[i % chunks.len()];
                i += 1;
                let end = (sent + c).min(data.len());
                sent += p.peer_produce(&data[sent..end]);
                let want = chunks[(i * 7 + 3) % chunks.len()];
                let r = read_response(&mut p, &mut buf[..want]).unwrap();
                got.extend_from_slice(&buf[..r.n]);
                prop_assert!(i < 100_000);
            }
            prop_assert_eq!(&got, &data);

            // Requests: we write in chunks, peer consumes in chunks.
            let mut p = BufPage::new(start.wrapping_mul(3), 0);
            let (mut sent, mut got, mut i) = (0usize, Vec::new(), 0usize);
            while got.len() < data.len() {
                let c = chunks[i % chunks.len()];
                i += 1;
                let end = (sent + c).min(data.len());
                sent += write_request(&mut p, &data[sent..end]).unwrap();
                got.extend(p.peer_consume(chunks[(i * 5 + 1) % chunks.len()]));
                prop_assert!(i < 100_000);
            }
            prop_assert_eq!(&got, &data);
        }

        /// Arbitrary index values never cause a panic or an access outside
        /// the rings, and anything accepted is within bounds.
        #[test]
        fn arbitrary_indices_never_panic(
            rc: u32, rp: u32, qc: u32, qp: u32, len in 0usize..3000,
        ) {
            let mut p = BufPage::new(0, 0);
            (p.rsp_cons, p.rsp_prod, p.req_cons, p.req_prod) = (rc, rp, qc, qp);
            let mut buf = vec![0u8; len];
            match read_response(&mut p, &mut buf) {
                Ok(r) => prop_assert!(r.n <= 1024 && r.n <= len),
                Err(e) => prop_assert_eq!(e, XsError::Protocol),
            }
            match write_request(&mut p, &buf) {
                Ok(n) => prop_assert!(n <= 1024 && n <= len),
                Err(e) => prop_assert_eq!(e, XsError::Protocol),
            }
        }
    }
}
