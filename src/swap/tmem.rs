//! The tmem interface: "transcendent memory" as Xen defined it
//! (xen/include/public/tmem.h, 4.12 and earlier), reduced to what a guest
//! needs, so that the in-guest [`zpool`](super::zpool) and a Xen tmem
//! backend are interchangeable behind [`Tmem`].
//!
//! # Model
//!
//! A backend holds *pools*. A page in a pool is named by a [`Key`]: an
//! [`ObjectId`] (three `u64`, Xen's `oid[3]`) and a page index within the
//! object (`u32`). A pool is created [`Persistence::Persistent`] or
//! [`Persistence::Ephemeral`]:
//!
//! - **persistent** (frontswap): a put may be refused, but once a put has
//!   returned `Ok`, a get of that key returns exactly those bytes, every
//!   time, until the key is flushed (page or object), overwritten by
//!   another put of the same key, or the pool destroyed. Gets do not
//!   remove the page.
//! - **ephemeral** (cleancache): an accepted put may be dropped by the
//!   backend at any time, without notice; a get that finds the page
//!   removes it ("destructive get", as in a private ephemeral pool of
//!   Xen 4.12's `common/tmem.c`). The caller must be able to recreate
//!   every ephemeral page.
//!
//! A put of a key that is already present replaces it. If that put fails
//! for any reason, the old copy is gone as well (tmem's rule for duplicate
//! puts): a key never answers with data older than the last put. This is
//! what lets frontswap keep a newer page resident after a refused put
//! without fear of a stale copy coming back.
//!
//! Only private pools are modelled: shared ephemeral pools (cleancache
//! shared between guests mounting one filesystem, keyed by a UUID) have no
//! use in a single-address-space unikernel. The bit is reserved in
//! [`PoolKind::xen_flags`] for completeness.
//!
//! # Pages by reference, frames by number
//!
//! Page data moves as `&[u8; 4096]` / `&mut [u8; 4096]`. Xen's tmem copies
//! from and to the guest by frame number (`cmfn` in `struct tmem_op`, a
//! gfn for a PVH guest, reached with `get_page_from_gfn`). A Xen backend
//! therefore adapts in one of two ways, without changing any caller:
//!
//! 1. *bounce frame*: the backend owns one frame whose gfn it knows; put
//!    copies the caller's page into it and passes its gfn, get passes its
//!    gfn and copies out (one 4 KiB copy, small beside a hypercall);
//! 2. *direct*: if the kernel can tell the gfn of a page-aligned reference
//!    (a direct-map address: `gfn = (va - DIRECT_MAP_BASE) >> 12`), the
//!    backend computes it and passes the caller's own frame; references it
//!    cannot translate fall back to the bounce frame.
//!
//! # Errors
//!
//! [`TmemError`] is a small `Copy` enum. A *refusal* ([`TmemError::Refused`])
//! is the normal "did not store" answer of a put (Xen: put returned 0 or
//! -ENOMEM; zpool: over its frame limit or the page does not compress) and
//! is not a loss: the caller still has the page. Everything else is a
//! failure of the call; the operation had no effect except as the method
//! documents.

use core::fmt;

/// Bytes in one page. tmem pools in this crate use 4 KiB pages only.
pub const PAGE_BYTES: usize = 4096;

/// One page of data.
pub type Page = [u8; PAGE_BYTES];

/// Xen's `MAX_POOLS_PER_DOMAIN` (4.12 `common/tmem.c`): pool ids are
/// `0..16`.
pub const MAX_POOLS: u32 = 16;

/// An object id: Xen's `struct tmem_oid { uint64_t oid[3]; }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u64; 3]);

/// A page in a pool: its object and its index in the object (Xen's
/// `index`, a `uint32_t`). Ordered by object first, so that the pages of
/// one object are adjacent in an ordered map (flush of an object is a
/// range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// The object.
    pub object: ObjectId,
    /// The page's index in the object.
    pub index: u32,
}

impl Key {
    /// A key from its parts.
    pub const fn new(object: ObjectId, index: u32) -> Self {
        Key { object, index }
    }
}

/// A pool handle as the backend returned it (Xen's `pool_id`, `0..16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(pub u32);

/// What a pool promises about the pages it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Accepted pages stay until flushed; gets are not destructive.
    Persistent,
    /// Accepted pages may vanish at any time; gets are destructive.
    Ephemeral,
}

/// The kind of pool to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolKind {
    /// Persistent or ephemeral.
    pub persistence: Persistence,
}

/// Xen's `TMEM_POOL_PERSIST`.
pub const XEN_POOL_PERSIST: u32 = 1;
/// Xen's `TMEM_POOL_SHARED` (not used: private pools only).
pub const XEN_POOL_SHARED: u32 = 2;
/// Xen's `TMEM_POOL_PAGESIZE_SHIFT`: the field holds log2(page size) − 12.
pub const XEN_POOL_PAGESIZE_SHIFT: u32 = 4;
/// Xen's `TMEM_SPEC_VERSION` (1) in its place, `<< TMEM_POOL_VERSION_SHIFT`
/// (24).
pub const XEN_POOL_VERSION: u32 = 1 << 24;

impl PoolKind {
    /// A persistent private pool (frontswap's).
    pub const PERSISTENT: PoolKind = PoolKind {
        persistence: Persistence::Persistent,
    };
    /// An ephemeral private pool (cleancache's).
    pub const EPHEMERAL: PoolKind = PoolKind {
        persistence: Persistence::Ephemeral,
    };

    /// Whether the pool is persistent.
    pub const fn is_persistent(self) -> bool {
        matches!(self.persistence, Persistence::Persistent)
    }

    /// The `flags` word of `TMEM_NEW_POOL` for this kind: persistence bit,
    /// page size 4 KiB (field 0), spec version 1. Private, so no UUID.
    pub const fn xen_flags(self) -> u32 {
        let persist = if self.is_persistent() {
            XEN_POOL_PERSIST
        } else {
            0
        };
        // The page-size field (bits 4..8, log2(4096) - 12) is 0.
        persist | XEN_POOL_VERSION
    }
}

/// Why a put did not store the page. Not a loss: the caller keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The backend has no memory for it (Xen: put returned 0 or -ENOMEM;
    /// zpool: the frame allocator had no frame).
    NoMemory,
    /// The pool is at its configured limit (zpool: `zpool_max_percent`).
    OverLimit,
    /// The page does not compress below the backend's threshold.
    Incompressible,
    /// The caller closed the tier to new pages (frontswap's primary, when
    /// the domain has no room under Xen's `max_pages` for another tmem
    /// page); the backend was not asked.
    Closed,
}

/// A tmem operation's error. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TmemError {
    /// A put was declined (see [`Refusal`]); nothing was lost but the
    /// previous copy of the key, if any (duplicate-put rule).
    Refused(Refusal),
    /// No pool with this id (never created, or destroyed).
    NoSuchPool(PoolId),
    /// The backend cannot create another pool.
    NoPoolSlots,
    /// The backend does not offer this (no tmem at all: Xen's -ENOSYS or
    /// -ENODEV at the probe; or a pool kind it lacks).
    Unsupported,
    /// The stored data failed to decode (a broken invariant of the
    /// backend, never an expected answer).
    Corrupt,
    /// Any other error the hypervisor returned, as a positive errno
    /// (Xen's, or tmem's own: 1000 `EFROZEN`, 1001 `EEMPTY`).
    Hypervisor(i32),
}

impl fmt::Display for TmemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TmemError::Refused(r) => write!(f, "put refused ({r:?})"),
            TmemError::NoSuchPool(p) => write!(f, "no tmem pool {}", p.0),
            TmemError::NoPoolSlots => write!(f, "no tmem pool slots left"),
            TmemError::Unsupported => write!(f, "tmem operation not supported"),
            TmemError::Corrupt => write!(f, "tmem page failed to decode"),
            TmemError::Hypervisor(e) => write!(f, "tmem hypercall error {e}"),
        }
    }
}

/// Whether a get found the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// The page was there; the buffer holds it. In an ephemeral pool the
    /// page is now gone from the pool.
    Found,
    /// The key is not in the pool (never put, flushed, or, in an ephemeral
    /// pool, dropped). Xen answers 0, or -EEMPTY for a pool holding no
    /// page at all; both are this.
    Absent,
}

/// A tmem backend. See the [module documentation](self) for the
/// semantics every implementation must keep.
pub trait Tmem {
    /// Creates a private pool of `kind`.
    fn new_pool(&mut self, kind: PoolKind) -> Result<PoolId, TmemError>;

    /// Destroys `pool` and every page in it.
    fn destroy_pool(&mut self, pool: PoolId) -> Result<(), TmemError>;

    /// Stores a copy of `page` under `key`, replacing any copy already
    /// there. On `Err` the key is absent afterwards (duplicate-put rule)
    /// and `page` is untouched (it is borrowed shared).
    fn put(&mut self, pool: PoolId, key: Key, page: &Page) -> Result<(), TmemError>;

    /// Copies the page stored under `key` into `page`. On
    /// `Ok(Lookup::Absent)` and on `Err`, the buffer's content is
    /// unspecified (a backend may have written part of it).
    /// In an ephemeral pool a found page is removed.
    fn get(&mut self, pool: PoolId, key: Key, page: &mut Page) -> Result<Lookup, TmemError>;

    /// Removes the page under `key`, if any. Absent keys are not an error.
    fn flush_page(&mut self, pool: PoolId, key: Key) -> Result<(), TmemError>;

    /// Removes every page of `object`, if any.
    fn flush_object(&mut self, pool: PoolId, object: ObjectId) -> Result<(), TmemError>;
}

impl<T: Tmem + ?Sized> Tmem for &mut T {
    fn new_pool(&mut self, kind: PoolKind) -> Result<PoolId, TmemError> {
        (**self).new_pool(kind)
    }
    fn destroy_pool(&mut self, pool: PoolId) -> Result<(), TmemError> {
        (**self).destroy_pool(pool)
    }
    fn put(&mut self, pool: PoolId, key: Key, page: &Page) -> Result<(), TmemError> {
        (**self).put(pool, key, page)
    }
    fn get(&mut self, pool: PoolId, key: Key, page: &mut Page) -> Result<Lookup, TmemError> {
        (**self).get(pool, key, page)
    }
    fn flush_page(&mut self, pool: PoolId, key: Key) -> Result<(), TmemError> {
        (**self).flush_page(pool, key)
    }
    fn flush_object(&mut self, pool: PoolId, object: ObjectId) -> Result<(), TmemError> {
        (**self).flush_object(pool, object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_flags_match_tmem_h() {
        // TMEM_POOL_PERSIST | pagesize 4 KiB | TMEM_SPEC_VERSION << 24.
        assert_eq!(PoolKind::PERSISTENT.xen_flags(), 0x0100_0001);
        assert_eq!(PoolKind::EPHEMERAL.xen_flags(), 0x0100_0000);
    }

    #[test]
    fn keys_order_by_object_then_index() {
        let a = Key::new(ObjectId([1, 0, 0]), 9);
        let b = Key::new(ObjectId([2, 0, 0]), 0);
        let c = Key::new(ObjectId([2, 0, 0]), 1);
        assert!(a < b && b < c);
    }
}
