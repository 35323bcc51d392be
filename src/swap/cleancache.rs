//! Cleancache: clean, recomputable pages kept in an *ephemeral* tmem pool
//! (Linux's mm/cleancache.c, 2012–2019, over drivers/xen/tmem.c), beside
//! frontswap's persistent pool in the same backends.
//!
//! # Sharing the backends
//!
//! [`Frontswap`](super::frontswap::Frontswap) owns the backends (Xen's
//! tmem behind its one bounce frame, and `zpool`). Cleancache owns no
//! backend: it holds a second pool id in each, an ephemeral one, opened
//! on the first put (`TMEM_NEW_POOL` without `TMEM_POOL_PERSIST` on Xen, a
//! second pool in the same `ZPool`), and is handed the backends for each
//! call ([`Frontswap::cleancache_parts`](super::frontswap::Frontswap::cleancache_parts)).
//! So one `XenTmem` and its bounce frame serve both pools, and in `zpool`
//! the ephemeral pages are the first dropped when frontswap needs room.
//! A pool that cannot be opened (no slot, no tmem) is not retried: that
//! tier takes no cache pages.
//!
//! Xen 4.12 takes an ephemeral pool's pages from its own heap
//! (`__tmem_alloc_page`), not from the domain's allowance as it does a
//! persistent pool's (`__tmem_alloc_page_thispool`, refused at
//! `max_pages`), so cleancache puts are not gated by frontswap's tmem
//! accounting (`Frontswap::set_primary_admits`): a page put there costs the guest
//! nothing, which is what lets the self-balloon controller give its frame
//! back to Xen.
//!
//! # Keys and tiers
//!
//! A cache page is named by the pager's page number, through frontswap's
//! key layout ([`slot_key`]) in the cleancache pool. A put tries the
//! primary (Xen's tmem where there is one) and, if it declines, the
//! fallback (`zpool`); a get tries the primary, then the fallback. Gets
//! are destructive in both (ephemeral pools), so after a hit no tier
//! holds the page; after a miss none does either. A key is therefore held
//! by at most one tier at a time: it is put only for a page that was
//! resident, which it became by a get (that removed every copy) or by
//! being written. A failed put leaves the key absent in that tier
//! (tmem's duplicate-put rule).
//!
//! # Never trusted for data
//!
//! An ephemeral page may vanish at any time, and an error of the backend
//! on a get is a miss here (after a best-effort flush of the key), so the
//! caller must be able to recompute every page it puts. The workload
//! verifies every cache page it reads, hit or recomputed.

use super::frontswap::{slot_key, Tier};
use super::tmem::{Key, Lookup, Page, PoolId, PoolKind, Tmem, TmemError};

/// Counters (the status's `cleancache_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleancacheStats {
    /// Puts a tier accepted (`cleancache_puts`).
    pub puts: u64,
    /// Of which the fallback took (the primary declined).
    pub fallback_puts: u64,
    /// Puts no tier took (the page is simply dropped: it is clean).
    pub put_refused: u64,
    /// Gets that found the page (`cleancache_hits`).
    pub hits: u64,
    /// Of which in the fallback.
    pub fallback_hits: u64,
    /// Gets that did not (`cleancache_misses`).
    pub misses: u64,
    /// Flushes of a page (freed while in cleancache).
    pub flushes: u64,
    /// Calls that failed (a get error counts as a miss too).
    pub errors: u64,
}

impl CleancacheStats {
    /// Gets so far: hits plus misses.
    pub fn lookups(&self) -> u64 {
        self.hits.saturating_add(self.misses)
    }
}

/// A cleancache operation's error. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CleancacheError {
    /// The page number is above frontswap's key range.
    KeyOutOfRange(u64),
    /// No tier took the page; nothing is held for it. Carries the
    /// primary's answer (or `Unsupported` if its pool could not be
    /// opened).
    Refused(TmemError),
}

/// An ephemeral pool in one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    /// Not asked for yet.
    Unopened,
    /// Open.
    Open(PoolId),
    /// The backend would not create it: not retried.
    Unavailable,
}

/// Cleancache's pools in the primary backend and the fallback, and its
/// counters. Backends are lent per call.
#[derive(Debug)]
pub struct Cleancache {
    pools: [Pool; 2],
    stats: CleancacheStats,
}

impl Default for Cleancache {
    fn default() -> Self {
        Self::new()
    }
}

fn index(tier: Tier) -> usize {
    match tier {
        Tier::Primary => 0,
        Tier::Fallback => 1,
    }
}

impl Cleancache {
    /// No pool opened yet.
    pub const fn new() -> Self {
        Cleancache {
            pools: [Pool::Unopened; 2],
            stats: CleancacheStats {
                puts: 0,
                fallback_puts: 0,
                put_refused: 0,
                hits: 0,
                fallback_hits: 0,
                misses: 0,
                flushes: 0,
                errors: 0,
            },
        }
    }

    /// Counters.
    pub fn stats(&self) -> CleancacheStats {
        self.stats
    }

    /// The ephemeral pool of `tier`, if open.
    pub fn pool(&self, tier: Tier) -> Option<PoolId> {
        match self.pools[index(tier)] {
            Pool::Open(p) => Some(p),
            _ => None,
        }
    }

    /// The pool of `tier` in `backend`, opened on first use.
    fn open(&mut self, tier: Tier, backend: &mut dyn Tmem) -> Result<PoolId, TmemError> {
        let slot = &mut self.pools[index(tier)];
        match *slot {
            Pool::Open(p) => Ok(p),
            Pool::Unavailable => Err(TmemError::Unsupported),
            Pool::Unopened => match backend.new_pool(PoolKind::EPHEMERAL) {
                Ok(p) => {
                    *slot = Pool::Open(p);
                    Ok(p)
                }
                Err(e) => {
                    log::warn!("cleancache: no ephemeral pool in the {tier:?} tier: {e}");
                    *slot = Pool::Unavailable;
                    Err(e)
                }
            },
        }
    }

    fn key(page_no: u64) -> Result<Key, CleancacheError> {
        slot_key(page_no).ok_or(CleancacheError::KeyOutOfRange(page_no))
    }

    /// Puts the clean page `page_no` (`cleancache_put_page`): the primary
    /// first, then the fallback. `Err(Refused)`: no tier holds it.
    pub fn put(
        &mut self,
        primary: &mut dyn Tmem,
        fallback: Option<&mut dyn Tmem>,
        page_no: u64,
        page: &Page,
    ) -> Result<Tier, CleancacheError> {
        let key = Self::key(page_no)?;
        let first = match self.open(Tier::Primary, primary) {
            Ok(pool) => match primary.put(pool, key, page) {
                Ok(()) => {
                    self.stats.puts = self.stats.puts.saturating_add(1);
                    return Ok(Tier::Primary);
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        if let Some(f) = fallback {
            if let Ok(pool) = self.open(Tier::Fallback, f) {
                if f.put(pool, key, page).is_ok() {
                    self.stats.puts = self.stats.puts.saturating_add(1);
                    self.stats.fallback_puts = self.stats.fallback_puts.saturating_add(1);
                    return Ok(Tier::Fallback);
                }
            }
        }
        self.stats.put_refused = self.stats.put_refused.saturating_add(1);
        Err(CleancacheError::Refused(first))
    }

    /// Gets `page_no` into `page` (`cleancache_get_page`), removing it
    /// from the tier that held it. `Ok(None)`: a miss (never put,
    /// dropped by the backend, or a backend error); `page` is then
    /// unspecified.
    pub fn get(
        &mut self,
        primary: &mut dyn Tmem,
        fallback: Option<&mut dyn Tmem>,
        page_no: u64,
        page: &mut Page,
    ) -> Result<Option<Tier>, CleancacheError> {
        let key = Self::key(page_no)?;
        if self.get_in(Tier::Primary, primary, key, page) {
            return Ok(Some(Tier::Primary));
        }
        if let Some(f) = fallback {
            if self.get_in(Tier::Fallback, f, key, page) {
                return Ok(Some(Tier::Fallback));
            }
        }
        self.stats.misses = self.stats.misses.saturating_add(1);
        Ok(None)
    }

    /// A get in one tier: `true` on a hit (counted); an error is a miss
    /// here, after a flush of the key.
    fn get_in(&mut self, tier: Tier, b: &mut dyn Tmem, key: Key, page: &mut Page) -> bool {
        let Some(pool) = self.pool(tier) else {
            return false;
        };
        match b.get(pool, key, page) {
            Ok(Lookup::Found) => {
                self.stats.hits = self.stats.hits.saturating_add(1);
                if tier == Tier::Fallback {
                    self.stats.fallback_hits = self.stats.fallback_hits.saturating_add(1);
                }
                true
            }
            Ok(Lookup::Absent) => false,
            Err(_) => {
                // A miss all the same; make sure no copy answers later.
                self.stats.errors = self.stats.errors.saturating_add(1);
                self.flush_in(tier, b, key);
                false
            }
        }
    }

    /// A flush in one tier, if its pool is open; a failure is counted.
    fn flush_in(&mut self, tier: Tier, b: &mut dyn Tmem, key: Key) {
        if let Some(pool) = self.pool(tier) {
            if b.flush_page(pool, key).is_err() {
                self.stats.errors = self.stats.errors.saturating_add(1);
            }
        }
    }

    /// Drops `page_no` from every tier (`cleancache_invalidate_page`):
    /// the page was freed. Best effort; failures are counted.
    pub fn flush(
        &mut self,
        primary: &mut dyn Tmem,
        fallback: Option<&mut dyn Tmem>,
        page_no: u64,
    ) -> Result<(), CleancacheError> {
        let key = Self::key(page_no)?;
        self.stats.flushes = self.stats.flushes.saturating_add(1);
        self.flush_in(Tier::Primary, primary, key);
        if let Some(f) = fallback {
            self.flush_in(Tier::Fallback, f, key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::content::{fill, verify, ContentKind};
    use crate::swap::fake::{FakeTmem, Inject};
    use crate::swap::tmem::{Refusal, PAGE_BYTES};

    fn page(id: u64) -> Page {
        let mut p = [0; PAGE_BYTES];
        fill(ContentKind::Text, id, &mut p);
        p
    }

    #[test]
    fn gets_are_destructive_and_drops_are_misses() {
        let mut cc = Cleancache::new();
        let mut t = FakeTmem::new();
        for i in 0..10 {
            assert_eq!(cc.put(&mut t, None, i, &page(i)), Ok(Tier::Primary));
        }
        // The first pool opened is ephemeral (the fake has no other).
        assert_eq!(cc.pool(Tier::Primary), Some(PoolId(0)));
        assert_eq!(t.drop_ephemeral(3), 3);
        let mut buf = [0; PAGE_BYTES];
        let mut hits = 0;
        for i in 0..10 {
            if cc.get(&mut t, None, i, &mut buf) == Ok(Some(Tier::Primary)) {
                assert!(verify(ContentKind::Text, i, &buf));
                hits += 1;
            }
        }
        assert_eq!(hits, 7, "the oldest 3 were dropped");
        // A second get of a hit misses: the first removed it.
        assert_eq!(cc.get(&mut t, None, 9, &mut buf), Ok(None));
        let s = cc.stats();
        assert_eq!((s.puts, s.hits, s.misses, s.lookups()), (10, 7, 4, 11));
        assert_eq!(t.pages(), 0);
    }

    fn fb(p: &mut FakeTmem) -> Option<&mut dyn Tmem> {
        Some(p)
    }

    #[test]
    fn the_fallback_takes_what_the_primary_refuses_and_is_looked_up_second() {
        let mut cc = Cleancache::new();
        let (mut xen, mut pool) = (FakeTmem::new(), FakeTmem::new());
        xen.script.push_back(Inject::Refuse(Refusal::NoMemory));
        assert_eq!(
            cc.put(&mut xen, fb(&mut pool), 1, &page(1)),
            Ok(Tier::Fallback)
        );
        assert_eq!(
            cc.put(&mut xen, fb(&mut pool), 2, &page(2)),
            Ok(Tier::Primary)
        );
        let mut buf = [0; PAGE_BYTES];
        assert_eq!(
            cc.get(&mut xen, fb(&mut pool), 1, &mut buf),
            Ok(Some(Tier::Fallback))
        );
        assert!(verify(ContentKind::Text, 1, &buf));
        assert_eq!(
            cc.get(&mut xen, fb(&mut pool), 2, &mut buf),
            Ok(Some(Tier::Primary))
        );
        assert_eq!((xen.pages(), pool.pages()), (0, 0));
        // Both refuse: nothing is held, the put says so.
        xen.script.push_back(Inject::Refuse(Refusal::NoMemory));
        pool.script.push_back(Inject::Refuse(Refusal::OverLimit));
        assert_eq!(
            cc.put(&mut xen, fb(&mut pool), 3, &page(3)),
            Err(CleancacheError::Refused(TmemError::Refused(
                Refusal::NoMemory
            )))
        );
        assert_eq!(cc.get(&mut xen, fb(&mut pool), 3, &mut buf), Ok(None));
        let s = cc.stats();
        assert_eq!((s.fallback_puts, s.fallback_hits, s.put_refused), (1, 1, 1));
    }

    #[test]
    fn a_failed_get_is_a_miss_and_flushes_the_key() {
        let mut cc = Cleancache::new();
        let mut t = FakeTmem::new();
        cc.put(&mut t, None, 5, &page(5)).unwrap();
        t.script.push_back(Inject::Fail(TmemError::Hypervisor(5)));
        let mut buf = [0; PAGE_BYTES];
        assert_eq!(cc.get(&mut t, None, 5, &mut buf), Ok(None));
        assert_eq!(t.pages(), 0, "flushed after the failed get");
        assert_eq!(cc.stats().errors, 1);
    }

    #[test]
    fn the_error_is_small() {
        assert!(core::mem::size_of::<CleancacheError>() <= 16);
    }

    #[test]
    fn a_pool_that_cannot_be_opened_is_not_asked_again() {
        let mut cc = Cleancache::new();
        let mut t = FakeTmem::new();
        t.absent = true;
        for i in 0..3 {
            assert!(cc.put(&mut t, None, i, &page(i)).is_err());
        }
        assert_eq!(t.calls.new_pool, 1);
        let mut buf = [0; PAGE_BYTES];
        assert_eq!(cc.get(&mut t, None, 0, &mut buf), Ok(None));
        assert_eq!(t.calls.get, 0, "no pool: no get");
        assert_eq!(
            cc.put(&mut t, None, 1 << 40, &page(0)),
            Err(CleancacheError::KeyOutOfRange(1 << 40))
        );
    }
}
