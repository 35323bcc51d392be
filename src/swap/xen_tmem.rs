//! The `xen-tmem` backend: [`Tmem`] on Xen's own tmem (hypercall 38,
//! Xen 4.12 and earlier), over any [`TmemHypervisor`], so that the same
//! code runs on the real hypervisor and, in host tests, on a fake that
//! checks every `tmem_op` byte by byte.
//!
//! # Mapping Xen's answers onto the interface
//!
//! | call | Xen answers | here |
//! |---|---|---|
//! | new pool | id 0..16 | `Ok(PoolId)` |
//! | | `-EPERM` (slots full; our flags are valid) | `NoPoolSlots` |
//! | | `-ENOSYS`, `-ENODEV` (no tmem) | `Unsupported` |
//! | destroy | 1 / 0 | `Ok` / `NoSuchPool` |
//! | put | 1 | `Ok` |
//! | | 0, `-ENOMEM`, `-ENOSPC` (no memory; a failed replacement) | `Refused(NoMemory)`, key flushed |
//! | | any other error | that error, key flushed |
//! | get | 1 | `Found` (copied out of the bounce frame) |
//! | | 0, `-EEMPTY` (1001: the pool holds nothing) | `Absent` |
//! | any page op | `-ENODEV` (not a live pool) | `NoSuchPool` |
//! | flush page / object | 1 (found or not) | `Ok` |
//!
//! **Why a failed put flushes the key.** The interface promises that after
//! a failed put the key is absent (the duplicate-put rule frontswap relies
//! on to keep a newer page resident without a stale copy coming back).
//! Xen 4.12 keeps that rule for a failed *replacement* (`-ENOSPC`, old
//! copy flushed), but its "under 1 MiB free" check answers `-ENOMEM`
//! before it looks at the key at all, leaving an older copy in place. So
//! every failed put is followed by a flush of its key (one more hypercall,
//! only on the refusal path). If that flush fails too the put's error is
//! returned all the same and the failure is counted in
//! [`XenTmemStats::stale_flush_errors`] (Xen's flush fails only for a
//! frozen client or a pool that is gone, neither of which a running dom0
//! or domU meets).
//!
//! Replies outside these sets (a success value other than 0 or 1, a pool
//! id of 16 or more) are not trusted: they become `Hypervisor(EIO)`.
//!
//! Pages move through the hypervisor's bounce frame (see `xen::tmem` for
//! why not the caller's own frame).

use crate::xen::abi;
use crate::xen::errno::Errno;
use crate::xen::tmem::{TmemHypervisor, TmemOp, EEMPTY, MAX_POOLS};

use super::tmem::{Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError};

/// Which backend frontswap uses first (the status's `swap_backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SwapBackend {
    /// The in-guest compressed pool alone (no tmem: Xen ≥ 4.13, or no
    /// `tmem=1`).
    Zpool,
    /// Xen's tmem, with `zpool` behind it per page.
    XenTmem,
}

impl SwapBackend {
    /// From the boot probe (`xen::tmem::boot_presence`); `None` (not
    /// probed, no Xen) is `zpool`.
    pub fn from_presence(p: Option<crate::xen::tmem::Presence>) -> SwapBackend {
        match p {
            Some(crate::xen::tmem::Presence::Present) => SwapBackend::XenTmem,
            _ => SwapBackend::Zpool,
        }
    }

    /// What the boot probe chose: the value of `swap_backend`.
    pub fn at_boot() -> SwapBackend {
        Self::from_presence(crate::xen::tmem::boot_presence())
    }

    /// The status value: `zpool` or `xen-tmem`.
    pub const fn name(self) -> &'static str {
        match self {
            SwapBackend::Zpool => "zpool",
            SwapBackend::XenTmem => "xen-tmem",
        }
    }
}

/// Counters of the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenTmemStats {
    /// Hypercalls issued.
    pub hypercalls: u64,
    /// Puts Xen stored.
    pub puts_stored: u64,
    /// Puts Xen refused for memory (0, -ENOMEM, -ENOSPC).
    pub puts_refused: u64,
    /// Puts that failed otherwise.
    pub puts_failed: u64,
    /// Gets that found the page.
    pub gets_found: u64,
    /// Gets answered 0 (not in the pool).
    pub gets_absent: u64,
    /// Gets answered -EEMPTY (the pool held nothing).
    pub gets_empty: u64,
    /// Flushes after a failed put that failed themselves.
    pub stale_flush_errors: u64,
    /// Replies outside what tmem answers.
    pub bad_replies: u64,
}

/// The backend.
#[derive(Debug)]
pub struct XenTmem<H> {
    hyp: H,
    stats: XenTmemStats,
}

fn pool_arg(pool: PoolId) -> Result<i32, TmemError> {
    // Xen compares `(uint32_t)pool_id` with 16; anything that does not fit
    // an i32 cannot name a pool.
    i32::try_from(pool.0).map_err(|_| TmemError::NoSuchPool(pool))
}

/// A page command's errno as the interface's error.
fn page_error(pool: PoolId, e: Errno) -> TmemError {
    match e {
        Errno::ENODEV => TmemError::NoSuchPool(pool),
        Errno::ENOSYS => TmemError::Unsupported,
        Errno(n) => TmemError::Hypervisor(n),
    }
}

impl<H: TmemHypervisor> XenTmem<H> {
    /// The backend over `hyp`. Whether tmem is there shows at the first
    /// `new_pool` (`Unsupported` if not); see `xen::tmem::probe`.
    pub fn new(hyp: H) -> Self {
        XenTmem {
            hyp,
            stats: XenTmemStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> XenTmemStats {
        self.stats
    }

    /// The hypervisor.
    pub fn hypervisor(&self) -> &H {
        &self.hyp
    }

    /// The hypervisor, mutably (host tests script it).
    pub fn hypervisor_mut(&mut self) -> &mut H {
        &mut self.hyp
    }

    fn call(&mut self, op: &TmemOp) -> Result<u64, Errno> {
        self.stats.hypercalls = self.stats.hypercalls.saturating_add(1);
        self.hyp.tmem_op(op)
    }

    fn bad_reply(&mut self) -> TmemError {
        self.stats.bad_replies = self.stats.bad_replies.saturating_add(1);
        TmemError::Hypervisor(Errno::EIO.0)
    }

    /// After a failed put: make sure no older copy of `key` answers.
    fn flush_after_failed_put(&mut self, pool: i32, key: Key) {
        let op = TmemOp::flush_page(pool, key.object.0, key.index);
        if self.call(&op).is_err() {
            self.stats.stale_flush_errors = self.stats.stale_flush_errors.saturating_add(1);
        }
    }
}

impl<H: TmemHypervisor> Tmem for XenTmem<H> {
    fn new_pool(&mut self, kind: PoolKind) -> Result<PoolId, TmemError> {
        let op = TmemOp::new_pool(kind.xen_flags(), [0; 2]);
        match self.call(&op) {
            Ok(id) => match u32::try_from(id).ok().filter(|&i| i < MAX_POOLS) {
                Some(i) => Ok(PoolId(i)),
                None => Err(self.bad_reply()),
            },
            Err(Errno::EPERM) => Err(TmemError::NoPoolSlots),
            Err(Errno::ENOSYS | Errno::ENODEV) => Err(TmemError::Unsupported),
            Err(Errno(n)) => Err(TmemError::Hypervisor(n)),
        }
    }

    fn destroy_pool(&mut self, pool: PoolId) -> Result<(), TmemError> {
        let p = pool_arg(pool)?;
        match self.call(&TmemOp::destroy_pool(p)) {
            Ok(1) => Ok(()),
            Ok(0) => Err(TmemError::NoSuchPool(pool)),
            Ok(_) => Err(self.bad_reply()),
            Err(e) => Err(page_error(pool, e)),
        }
    }

    fn put(&mut self, pool: PoolId, key: Key, page: &Page) -> Result<(), TmemError> {
        let p = pool_arg(pool)?;
        self.hyp.write_bounce(page);
        let gfn = self.hyp.bounce_gfn();
        let r = self.call(&TmemOp::put(p, key.object.0, key.index, gfn));
        let err = match r {
            Ok(1) => {
                self.stats.puts_stored = self.stats.puts_stored.saturating_add(1);
                return Ok(());
            }
            Ok(0) | Err(Errno::ENOMEM | Errno::ENOSPC) => {
                self.stats.puts_refused = self.stats.puts_refused.saturating_add(1);
                TmemError::Refused(Refusal::NoMemory)
            }
            // No such pool: there is nothing to flush either.
            Err(Errno::ENODEV) => return Err(TmemError::NoSuchPool(pool)),
            Err(Errno::ENOSYS) => return Err(TmemError::Unsupported),
            Ok(_) => {
                self.stats.puts_failed = self.stats.puts_failed.saturating_add(1);
                self.bad_reply()
            }
            Err(Errno(n)) => {
                self.stats.puts_failed = self.stats.puts_failed.saturating_add(1);
                TmemError::Hypervisor(n)
            }
        };
        self.flush_after_failed_put(p, key);
        Err(err)
    }

    fn get(&mut self, pool: PoolId, key: Key, page: &mut Page) -> Result<Lookup, TmemError> {
        let p = pool_arg(pool)?;
        let gfn = self.hyp.bounce_gfn();
        match self.call(&TmemOp::get(p, key.object.0, key.index, gfn)) {
            Ok(1) => {
                self.hyp.read_bounce(page);
                self.stats.gets_found = self.stats.gets_found.saturating_add(1);
                Ok(Lookup::Found)
            }
            Ok(0) => {
                self.stats.gets_absent = self.stats.gets_absent.saturating_add(1);
                Ok(Lookup::Absent)
            }
            Err(EEMPTY) => {
                self.stats.gets_empty = self.stats.gets_empty.saturating_add(1);
                Ok(Lookup::Absent)
            }
            Ok(_) => Err(self.bad_reply()),
            Err(e) => Err(page_error(pool, e)),
        }
    }

    fn flush_page(&mut self, pool: PoolId, key: Key) -> Result<(), TmemError> {
        let p = pool_arg(pool)?;
        match self.call(&TmemOp::flush_page(p, key.object.0, key.index)) {
            Ok(_) => Ok(()),
            Err(e) => Err(page_error(pool, e)),
        }
    }

    fn flush_object(&mut self, pool: PoolId, object: ObjectId) -> Result<(), TmemError> {
        let p = pool_arg(pool)?;
        match self.call(&TmemOp::flush_object(p, object.0)) {
            Ok(_) => Ok(()),
            Err(e) => Err(page_error(pool, e)),
        }
    }
}

/// The `TMEM_NEW_POOL` flags the backend sends for `kind` are the ABI's
/// (checked in the tests against `abi::tmem_pool_flags`).
pub const fn xen_pool_flags(kind: PoolKind) -> u32 {
    let extra = if kind.is_persistent() {
        abi::TMEM_POOL_PERSIST
    } else {
        0
    };
    abi::tmem_pool_flags(extra)
}
