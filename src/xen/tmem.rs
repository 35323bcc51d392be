//! Xen tmem (hypercall 38, Xen ≤ 4.12 built with `CONFIG_TMEM` and booted
//! with `tmem=1`) as typed operations: [`TmemOp`] builds each command's
//! 56-byte `struct tmem_op`, [`TmemHypervisor`] issues one and owns the
//! frame Xen copies pages through, [`XenTmemHypervisor`] is the real one.
//! The `swap::tmem::Tmem` backend on top is `swap::xen_tmem`.
//!
//! # Facts from Xen 4.12.4 (`common/tmem.c`, `public/tmem.h`)
//!
//! - Before any command: `-ENODEV` if tmem is not initialised (no
//!   `tmem=1`), `-EPERM` if XSM refuses; Xen ≥ 4.13 answers `-ENOSYS`.
//! - `TMEM_NEW_POOL` reads only `u.creat.flags` and `u.creat.uuid`
//!   (`pool_id` is ignored): spec version field must be 1, page-size field
//!   0 (4 KiB), no `TMEM_POOL_PRECOMPRESSED`, no reserved bits, not
//!   shared *and* persistent, else `-EPERM`; `-EPERM` too when all 16
//!   pool slots are taken; `-ENOMEM`; else the new pool id (≥ 0).
//! - `TMEM_DESTROY_POOL`: 1, or 0 if no such pool.
//! - Page commands read `pool_id`, `u.gen.oid`, `u.gen.index` and (put,
//!   get) `u.gen.cmfn`, a *guest* frame number (`get_page_from_gfn`; the
//!   page must be ordinary RAM, and writable for a get). `tmem_offset`,
//!   `pfn_offset` and `len` are not read by 4.12's guest interface (whole
//!   pages only); we send them as 0. A pool id that is not a live pool of
//!   ours: `-ENODEV`.
//! - Put: 1 stored. `-ENOMEM` when Xen has under 1 MiB free *before it
//!   looks at the key* (so an older copy of the key survives!), or when an
//!   allocation fails; `-ENOSPC` when replacing an existing copy failed
//!   (the old copy is flushed); `-EFAULT` for a bad frame.
//! - Get: 1 found (copied to `cmfn`; in a private ephemeral pool the page
//!   is deleted), 0 not found, `-EEMPTY` (1001) if the pool holds no page
//!   at all.
//! - Flush page / object: 1, found or not (`-EFROZEN`, 1000, while the
//!   toolstack has the client frozen for save/migration).
//!
//! # Pages go through one bounce frame
//!
//! Xen copies a page from or to a guest frame number. The caller of the
//! tmem interface passes `&Page` / `&mut Page` references, which are not
//! frame numbers: today every kernel address is identity mapped, but the
//! workload's pageable region (demand paging) will not be, and a wrong
//! gfn would let Xen read or write a frame nobody asked it to. So the
//! backend owns one frame, claimed from the direct map for good
//! ([`ClaimedFrames`]: nobody else ever touches it), copies the page into
//! it before a put and out of it after a get, and only ever gives Xen that
//! frame's gfn. A 4 KiB copy is small beside a hypercall (measured in the
//! selftest's figures); no Rust reference to the frame exists while Xen
//! writes it.

use core::fmt;
use core::sync::atomic::{AtomicI32, Ordering};

use crate::mm::direct::{ClaimedFrames, Page, PAGE_BYTES};
use crate::mm::Pfn;
use crate::xen::abi;
use crate::xen::calls;
use crate::xen::errno::Errno;

/// Size of `struct tmem_op` (layout-tested in `abi.rs`).
pub const TMEM_OP_BYTES: usize = 56;

/// tmem's own errno: the client is frozen (save/migration).
pub const EFROZEN: Errno = Errno(1000);
/// tmem's own errno: the pool holds no page at all (a get).
pub const EEMPTY: Errno = Errno(1001);

/// Xen's `MAX_POOLS_PER_DOMAIN`.
pub const MAX_POOLS: u32 = 16;

/// One `struct tmem_op`, every one of its 56 bytes initialised (the only
/// constructors start from an all-zero `gen` variant and then write
/// fields), so it can be looked at byte by byte ([`TmemOp::bytes`]).
#[derive(Clone, Copy)]
pub struct TmemOp(abi::tmem_op);

impl TmemOp {
    /// All 56 bytes zero: `gen` covers the whole union.
    const fn zeroed() -> abi::tmem_op {
        abi::tmem_op::page(0, 0, [0; 3], 0, 0)
    }

    /// `TMEM_NEW_POOL` with `flags` (`TMEM_POOL_*`, page-size and version
    /// fields included) and `uuid` (zero for a private pool).
    pub fn new_pool(flags: u32, uuid: [u64; 2]) -> TmemOp {
        let mut op = Self::zeroed();
        op.cmd = abi::TMEM_NEW_POOL;
        // A union field write stores that field's 24 bytes only; the rest
        // of the union stays the zeros written above.
        op.u.creat = abi::tmem_op_creat {
            uuid,
            flags,
            arg1: 0,
        };
        TmemOp(op)
    }

    /// `TMEM_DESTROY_POOL` of `pool`.
    pub fn destroy_pool(pool: i32) -> TmemOp {
        Self::gen(abi::TMEM_DESTROY_POOL, pool, [0; 3], 0, 0)
    }

    /// `TMEM_PUT_PAGE`: copy guest frame `gfn` to (`pool`, `oid`, `index`).
    pub fn put(pool: i32, oid: [u64; 3], index: u32, gfn: Pfn) -> TmemOp {
        Self::gen(abi::TMEM_PUT_PAGE, pool, oid, index, gfn)
    }

    /// `TMEM_GET_PAGE`: copy (`pool`, `oid`, `index`) to guest frame `gfn`.
    pub fn get(pool: i32, oid: [u64; 3], index: u32, gfn: Pfn) -> TmemOp {
        Self::gen(abi::TMEM_GET_PAGE, pool, oid, index, gfn)
    }

    /// `TMEM_FLUSH_PAGE` of (`pool`, `oid`, `index`).
    pub fn flush_page(pool: i32, oid: [u64; 3], index: u32) -> TmemOp {
        Self::gen(abi::TMEM_FLUSH_PAGE, pool, oid, index, 0)
    }

    /// `TMEM_FLUSH_OBJECT` of (`pool`, `oid`).
    pub fn flush_object(pool: i32, oid: [u64; 3]) -> TmemOp {
        Self::gen(abi::TMEM_FLUSH_OBJECT, pool, oid, 0, 0)
    }

    fn gen(cmd: u32, pool: i32, oid: [u64; 3], index: u32, cmfn: Pfn) -> TmemOp {
        TmemOp(abi::tmem_op::page(cmd, pool, oid, index, cmfn))
    }

    /// The command (`TMEM_*`).
    pub fn cmd(&self) -> u32 {
        self.0.cmd
    }

    /// The structure as Xen reads it from guest memory.
    pub fn bytes(&self) -> [u8; TMEM_OP_BYTES] {
        // SAFETY: `tmem_op` is 56 bytes (the transmute checks the size)
        // without padding: two u32 then a 48-byte union whose `gen`
        // variant has no padding and covers all of it. Every `TmemOp` is
        // made from `zeroed()` (all bytes initialised) by field writes, so
        // every byte is initialised, and any bytes are a valid [u8; 56].
        unsafe { core::mem::transmute::<abi::tmem_op, [u8; TMEM_OP_BYTES]>(self.0) }
    }
}

impl fmt::Debug for TmemOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the backend needs from the hypervisor: one `tmem_op` at a time,
/// and the one frame Xen copies pages to and from. The real one is
/// [`XenTmemHypervisor`]; host tests use a fake that decodes every op
/// byte by byte and plays tmem.
pub trait TmemHypervisor {
    /// The guest frame number of the bounce frame (what goes in `cmfn`).
    fn bounce_gfn(&self) -> Pfn;
    /// Copies `page` into the bounce frame (before a put).
    fn write_bounce(&mut self, page: &Page);
    /// Copies the bounce frame into `page` (after a get).
    fn read_bounce(&mut self, page: &mut Page);
    /// Issues `op` (`HYPERVISOR_tmem_op`): Xen's return value, or its
    /// errno (positive; tmem's own 1000/1001 included).
    fn tmem_op(&mut self, op: &TmemOp) -> Result<u64, Errno>;
}

impl<T: TmemHypervisor + ?Sized> TmemHypervisor for &mut T {
    fn bounce_gfn(&self) -> Pfn {
        (**self).bounce_gfn()
    }
    fn write_bounce(&mut self, page: &Page) {
        (**self).write_bounce(page)
    }
    fn read_bounce(&mut self, page: &mut Page) {
        (**self).read_bounce(page)
    }
    fn tmem_op(&mut self, op: &TmemOp) -> Result<u64, Errno> {
        (**self).tmem_op(op)
    }
}

/// The real hypervisor: hypercall 38, with a frame claimed for good as
/// the bounce frame.
#[derive(Debug)]
pub struct XenTmemHypervisor {
    bounce: ClaimedFrames,
}

/// Why [`XenTmemHypervisor::new`] refused a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOneFrame(pub u64);

impl XenTmemHypervisor {
    /// Takes one claimed frame as the bounce frame (for good: the token
    /// is never given back).
    pub fn new(bounce: ClaimedFrames) -> Result<Self, NotOneFrame> {
        if bounce.count() != 1 {
            return Err(NotOneFrame(bounce.count()));
        }
        Ok(XenTmemHypervisor { bounce })
    }

    fn ptr(&self) -> *mut u8 {
        self.bounce.as_mut_ptr::<u8>()
    }
}

impl TmemHypervisor for XenTmemHypervisor {
    fn bounce_gfn(&self) -> Pfn {
        // PVH: the identity map makes the frame's address its gfn.
        self.bounce.pfn()
    }

    fn write_bounce(&mut self, page: &Page) {
        // SAFETY: the token makes this frame ours alone for good (mapped,
        // RAM, reached by nothing else: `mm::direct` point 4); `page` is a
        // different object (the token's frame is never handed out as a
        // reference), so the copy does not overlap. Xen touches the frame
        // only inside `tmem_op`, which `&mut self` keeps from running now.
        unsafe { core::ptr::copy_nonoverlapping(page.as_ptr(), self.ptr(), PAGE_BYTES) }
    }

    fn read_bounce(&mut self, page: &mut Page) {
        // SAFETY: as in `write_bounce`; Xen's write (inside the last
        // `tmem_op`, an asm block that clobbers memory) is complete.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr(), page.as_mut_ptr(), PAGE_BYTES) }
    }

    fn tmem_op(&mut self, op: &TmemOp) -> Result<u64, Errno> {
        let mut raw = op.0;
        calls::tmem_op(&mut raw)
    }
}

/// What the boot probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Xen granted (and we destroyed) a persistent private pool.
    Present,
    /// No tmem: the errno Xen answered (ENOSYS: Xen ≥ 4.13; ENODEV: no
    /// `tmem=1`; EPERM: XSM), or EIO for an impossible reply.
    Absent(Errno),
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Presence::Present => f.write_str("present"),
            Presence::Absent(e) => write!(f, "absent ({})", errno_name(e)),
        }
    }
}

/// A name for the errnos the probe meets, tmem's own included.
pub fn errno_name(e: Errno) -> alloc::string::String {
    match e {
        EFROZEN => alloc::string::String::from("EFROZEN"),
        EEMPTY => alloc::string::String::from("EEMPTY"),
        e => alloc::format!("{e}"),
    }
}

/// Creates a persistent private pool and destroys it again: whether this
/// hypervisor offers tmem. Any error means no tmem.
pub fn probe<H: TmemHypervisor + ?Sized>(h: &mut H) -> Presence {
    let flags = abi::tmem_pool_flags(abi::TMEM_POOL_PERSIST);
    match h.tmem_op(&TmemOp::new_pool(flags, [0; 2])) {
        Err(e) => Presence::Absent(e),
        Ok(id) => match i32::try_from(id).ok().filter(|&p| (p as u32) < MAX_POOLS) {
            Some(p) => {
                // Best effort: a pool left behind costs Xen nothing while
                // empty, and the answer is "present" either way.
                let _ = h.tmem_op(&TmemOp::destroy_pool(p));
                Presence::Present
            }
            None => Presence::Absent(Errno::EIO),
        },
    }
}

/// The boot probe's answer: 0 not probed, -1 present, else the errno.
static BOOT_PRESENCE: AtomicI32 = AtomicI32::new(0);

/// The probe at boot, on the real hypervisor, said once in the log.
/// Needs no frame (NEW_POOL and DESTROY_POOL pass none).
pub fn probe_at_boot() -> Presence {
    let p = probe(&mut ProbeOnly);
    match p {
        Presence::Present => {
            BOOT_PRESENCE.store(-1, Ordering::Relaxed);
            log::info!(
                "tmem: Xen tmem present (a persistent pool was granted); \
                 swap backend xen-tmem, zpool behind it"
            );
        }
        Presence::Absent(e) => {
            // An errno of 0 or below cannot come from `from_ret`; keep
            // the encoding unambiguous anyway.
            BOOT_PRESENCE.store(e.0.max(1), Ordering::Relaxed);
            log::info!("tmem: absent ({}); swap backend zpool", errno_name(e));
        }
    }
    p
}

/// What [`probe_at_boot`] found (`None` before it ran, or without Xen).
pub fn boot_presence() -> Option<Presence> {
    match BOOT_PRESENCE.load(Ordering::Relaxed) {
        0 => None,
        -1 => Some(Presence::Present),
        e => Some(Presence::Absent(Errno(e))),
    }
}

/// The hypervisor without a bounce frame, for the commands that pass no
/// page (the probe). Page copies are refused by construction: they are
/// never called by `probe`.
struct ProbeOnly;

impl TmemHypervisor for ProbeOnly {
    fn bounce_gfn(&self) -> Pfn {
        0
    }
    fn write_bounce(&mut self, _: &Page) {}
    fn read_bounce(&mut self, _: &mut Page) {}
    fn tmem_op(&mut self, op: &TmemOp) -> Result<u64, Errno> {
        match op.cmd() {
            abi::TMEM_NEW_POOL | abi::TMEM_DESTROY_POOL => {
                let mut raw = op.0;
                calls::tmem_op(&mut raw)
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn new_pool_bytes_are_exactly_tmem_h() {
        let flags = abi::tmem_pool_flags(abi::TMEM_POOL_PERSIST);
        let b = TmemOp::new_pool(flags, [0x1122, 0x3344]).bytes();
        assert_eq!(u32_at(&b, 0), 1, "cmd TMEM_NEW_POOL");
        assert_eq!(u32_at(&b, 4), 0, "pool_id unused");
        assert_eq!((u64_at(&b, 8), u64_at(&b, 16)), (0x1122, 0x3344), "uuid");
        assert_eq!(u32_at(&b, 24), 0x0100_0001, "flags");
        assert_eq!(u32_at(&b, 28), 0, "arg1");
        assert!(b[32..].iter().all(|&x| x == 0), "rest of the union zero");
    }

    #[test]
    fn page_op_bytes_are_exactly_tmem_h() {
        let b = TmemOp::put(3, [0x0a, 0x0b, 0x0c], 0xdead_beef, 0x12_3456).bytes();
        assert_eq!((u32_at(&b, 0), u32_at(&b, 4)), (4, 3));
        assert_eq!(
            (u64_at(&b, 8), u64_at(&b, 16), u64_at(&b, 24)),
            (0x0a, 0x0b, 0x0c)
        );
        assert_eq!(u32_at(&b, 32), 0xdead_beef, "index");
        assert_eq!((u32_at(&b, 36), u32_at(&b, 40), u32_at(&b, 44)), (0, 0, 0));
        assert_eq!(u64_at(&b, 48), 0x12_3456, "cmfn");
        assert_eq!(u32_at(&TmemOp::get(1, [0; 3], 0, 9).bytes(), 0), 5);
        assert_eq!(u32_at(&TmemOp::flush_page(1, [0; 3], 0).bytes(), 0), 6);
        assert_eq!(u32_at(&TmemOp::flush_object(1, [0; 3]).bytes(), 0), 7);
        let d = TmemOp::destroy_pool(2).bytes();
        assert_eq!((u32_at(&d, 0), u32_at(&d, 4)), (2, 2));
        assert!(d[8..].iter().all(|&x| x == 0));
    }

    #[test]
    fn presence_reads() {
        assert_eq!(Presence::Present.to_string(), "present");
        assert!(Presence::Absent(Errno::ENOSYS)
            .to_string()
            .contains("ENOSYS"));
        assert!(Presence::Absent(EEMPTY).to_string().contains("EEMPTY"));
    }
}
