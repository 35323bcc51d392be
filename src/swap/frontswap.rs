//! Frontswap: swap slots kept in tmem instead of on a swap device, as
//! Linux's mm/frontswap.c (2012–2021) did, over one persistent pool per
//! backend, with an optional second backend (tiering, for Xen tmem with
//! `zpool` behind it).
//!
//! # Slots and keys
//!
//! A swap slot (`u64`, the offset in one swap area) becomes a tmem key the
//! way Linux's drivers/xen/tmem.c built it for swap type 0: object
//! `[slot & 0xf, 0, 0]`, index `slot >> 4`. Sixteen objects spread the
//! pages, and a whole area is flushed with sixteen object flushes. Slots
//! go up to [`MAX_SLOT`] (2^36 − 1, 256 TiB of swap).
//!
//! # The slot map and its invariant
//!
//! `Frontswap` records, for every slot it holds, which tier holds it (the
//! role of Linux's `frontswap_map` bitmap, with the tier added). The
//! invariant, kept by every method: *a slot is in the map iff the tier
//! the map names holds the slot's latest stored page, and no other tier
//! holds a page for it that could be returned* (the other tier may keep a
//! stale copy only if a flush of it failed; it is never read, because
//! loads go to the named tier only). [`curr_pages`] is the map's size
//! (`frontswap_curr_pages()`).
//!
//! # Never lose a page
//!
//! [`store`] borrows the caller's page shared: whatever happens, the
//! caller still has it. `Ok` means the page is in a persistent pool and a
//! [`load`] of the slot returns it until [`invalidate`] or another store
//! of the slot. `Err(FrontswapError::Refused { .. })` means no tier took
//! it and *no tier holds an older copy either* (tmem's duplicate-put
//! rule, plus an explicit flush of the other tier): the caller must keep
//! the page resident, and counts it for the floor it publishes. A store
//! tries the primary first and, if it refuses or fails, the fallback.
//!
//! [`curr_pages`]: Frontswap::curr_pages
//! [`store`]: Frontswap::store
//! [`load`]: Frontswap::load
//! [`invalidate`]: Frontswap::invalidate

use alloc::collections::BTreeMap;

use super::cleancache::Cleancache;
use super::tmem::{Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError};

/// The highest slot frontswap takes (index is a `u32`, 16 objects).
pub const MAX_SLOT: u64 = (1 << 36) - 1;

/// Objects a swap area is spread over.
const SWIZ_OBJECTS: u64 = 16;

/// The tmem key for `slot`, or `None` above [`MAX_SLOT`].
pub const fn slot_key(slot: u64) -> Option<Key> {
    if slot > MAX_SLOT {
        return None;
    }
    Some(Key::new(
        ObjectId([slot % SWIZ_OBJECTS, 0, 0]),
        (slot / SWIZ_OBJECTS) as u32,
    ))
}

/// Which backend holds a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The first backend (Xen tmem when there is one).
    Primary,
    /// The second backend (`zpool` behind Xen tmem).
    Fallback,
}

/// A frontswap operation's error. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrontswapError {
    /// The slot is above [`MAX_SLOT`].
    SlotOutOfRange(u64),
    /// No tier stored the page: keep it resident. Carries each tier's
    /// answer (`fallback` is `None` without a second tier).
    Refused {
        /// The primary's error.
        primary: TmemError,
        /// The fallback's error, if there is a fallback.
        fallback: Option<TmemError>,
    },
    /// The slot is not in frontswap.
    NotStored(u64),
    /// The map says the tier holds the slot but the tier answered
    /// "absent": the backend broke the persistent-pool contract. The slot
    /// is dropped from the map (counted in `lost`).
    Lost(Tier),
    /// The tier's get or flush failed; the map is unchanged for a get.
    Backend(Tier, TmemError),
}

/// Counters (for the status: `pageouts`, `pageins`, `swap_refused`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontswapStats {
    /// Stores that succeeded.
    pub pageouts: u64,
    /// Loads that succeeded.
    pub pageins: u64,
    /// Stores no tier took.
    pub refused: u64,
    /// Stores the primary declined and the fallback took (not counting
    /// stores made while the primary was closed).
    pub fell_back: u64,
    /// Invalidations of a held slot.
    pub invalidates: u64,
    /// Pages a backend lost ([`FrontswapError::Lost`]); must stay 0.
    pub lost: u64,
    /// Gets or flushes that failed.
    pub backend_errors: u64,
    /// Stores that went straight to the fallback because the primary was
    /// closed to puts ([`Frontswap::set_primary_admits`]).
    pub primary_closed: u64,
}

/// A backend that is never there: the type of the fallback of a
/// single-tier [`Frontswap`]. It has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoFallback {}

impl Tmem for NoFallback {
    fn new_pool(&mut self, _: PoolKind) -> Result<PoolId, TmemError> {
        match *self {}
    }
    fn destroy_pool(&mut self, _: PoolId) -> Result<(), TmemError> {
        match *self {}
    }
    fn put(&mut self, _: PoolId, _: Key, _: &Page) -> Result<(), TmemError> {
        match *self {}
    }
    fn get(&mut self, _: PoolId, _: Key, _: &mut Page) -> Result<Lookup, TmemError> {
        match *self {}
    }
    fn flush_page(&mut self, _: PoolId, _: Key) -> Result<(), TmemError> {
        match *self {}
    }
    fn flush_object(&mut self, _: PoolId, _: ObjectId) -> Result<(), TmemError> {
        match *self {}
    }
}

/// Frontswap over a primary backend `P` and an optional fallback `F`.
#[derive(Debug)]
pub struct Frontswap<P, F = NoFallback> {
    primary: P,
    primary_pool: PoolId,
    fallback: Option<(F, PoolId)>,
    map: BTreeMap<u64, Tier>,
    primary_pages: u64,
    fallback_pages: u64,
    stats: FrontswapStats,
    /// Cleancache's ephemeral pools in the same backends.
    cleancache: Cleancache,
    /// Whether stores may go to the primary (see `set_primary_admits`).
    primary_admits: bool,
}

impl<P: Tmem> Frontswap<P, NoFallback> {
    /// Frontswap on one backend: creates its persistent pool.
    pub fn new(mut primary: P) -> Result<Self, TmemError> {
        let primary_pool = primary.new_pool(PoolKind::PERSISTENT)?;
        Ok(Frontswap {
            primary,
            primary_pool,
            fallback: None,
            map: BTreeMap::new(),
            primary_pages: 0,
            fallback_pages: 0,
            stats: FrontswapStats::default(),
            cleancache: Cleancache::new(),
            primary_admits: true,
        })
    }
}

impl<P: Tmem, F: Tmem> Frontswap<P, F> {
    /// Frontswap on two backends: pages go to `primary` and, per page,
    /// to `fallback` when the primary declines. Creates a persistent pool
    /// in each (if the fallback's fails, the primary's is destroyed).
    pub fn tiered(mut primary: P, mut fallback: F) -> Result<Self, TmemError> {
        let primary_pool = primary.new_pool(PoolKind::PERSISTENT)?;
        let fallback_pool = match fallback.new_pool(PoolKind::PERSISTENT) {
            Ok(p) => p,
            Err(e) => {
                // Best effort: the pool is empty, nothing can be lost.
                let _ = primary.destroy_pool(primary_pool);
                return Err(e);
            }
        };
        Ok(Frontswap {
            primary,
            primary_pool,
            fallback: Some((fallback, fallback_pool)),
            map: BTreeMap::new(),
            primary_pages: 0,
            fallback_pages: 0,
            stats: FrontswapStats::default(),
            cleancache: Cleancache::new(),
            primary_admits: true,
        })
    }

    /// Opens or closes the primary to new pages. Closed, a store goes to
    /// the fallback directly (a single-tier frontswap refuses it); what the
    /// primary holds stays there and gets, takes and flushes are
    /// unaffected. Xen 4.12 charges each page of a persistent tmem pool to
    /// the domain's `max_pages`, so the pager closes tmem when the domain
    /// has no room under it (a put would be refused, or would leave no
    /// frame for the next page-in).
    pub fn set_primary_admits(&mut self, admits: bool) {
        self.primary_admits = admits;
    }

    /// Whether the primary takes new pages.
    pub fn primary_admits(&self) -> bool {
        self.primary_admits
    }

    /// `frontswap_curr_pages()`: slots held, both tiers.
    pub fn curr_pages(&self) -> u64 {
        self.map.len() as u64
    }

    /// Slots held by `tier` (`frontswap_tmem_pages`,
    /// `frontswap_zpool_pages`).
    pub fn tier_pages(&self, tier: Tier) -> u64 {
        match tier {
            Tier::Primary => self.primary_pages,
            Tier::Fallback => self.fallback_pages,
        }
    }

    /// Counters.
    pub fn stats(&self) -> FrontswapStats {
        self.stats
    }

    /// Where `slot` is, if held.
    pub fn tier_of(&self, slot: u64) -> Option<Tier> {
        self.map.get(&slot).copied()
    }

    /// The slots held, ascending, with their tier (for a partial
    /// swap-off: `frontswap_shrink`).
    pub fn slots(&self) -> impl Iterator<Item = (u64, Tier)> + '_ {
        self.map.iter().map(|(&s, &t)| (s, t))
    }

    /// The primary backend.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The primary backend, mutably (statistics, limits).
    pub fn primary_mut(&mut self) -> &mut P {
        &mut self.primary
    }

    /// The fallback backend, if any.
    pub fn fallback(&self) -> Option<&F> {
        self.fallback.as_ref().map(|(f, _)| f)
    }

    /// The fallback backend, mutably.
    pub fn fallback_mut(&mut self) -> Option<&mut F> {
        self.fallback.as_mut().map(|(f, _)| f)
    }

    /// Cleancache's counters.
    pub fn cleancache(&self) -> &Cleancache {
        &self.cleancache
    }

    /// Cleancache with the backends it shares with frontswap (its own
    /// ephemeral pools in them; see `swap::cleancache`).
    pub fn cleancache_parts(&mut self) -> (&mut Cleancache, &mut dyn Tmem, Option<&mut dyn Tmem>)
    where
        P: Sized,
    {
        let fallback = self.fallback.as_mut().map(|(f, _)| f as &mut dyn Tmem);
        (&mut self.cleancache, &mut self.primary, fallback)
    }

    fn count(&mut self, tier: Tier, up: bool) {
        let c = match tier {
            Tier::Primary => &mut self.primary_pages,
            Tier::Fallback => &mut self.fallback_pages,
        };
        if up {
            *c += 1;
        } else {
            *c -= 1;
        }
    }

    fn forget(&mut self, slot: u64) -> Option<Tier> {
        let t = self.map.remove(&slot)?;
        self.count(t, false);
        Some(t)
    }

    fn record(&mut self, slot: u64, tier: Tier) {
        if let Some(old) = self.map.insert(slot, tier) {
            self.count(old, false);
        }
        self.count(tier, true);
    }

    /// Flushes `key` from `tier` (best effort: a failure leaves a stale,
    /// never-read copy and is counted).
    fn flush_stale(&mut self, tier: Tier, key: Key) {
        let r = match tier {
            Tier::Primary => self.primary.flush_page(self.primary_pool, key),
            Tier::Fallback => match &mut self.fallback {
                Some((f, pool)) => f.flush_page(*pool, key),
                None => Ok(()),
            },
        };
        if r.is_err() {
            self.stats.backend_errors += 1;
        }
    }

    /// Pages `page` out to `slot`. On `Ok` the page is held (in the tier
    /// returned) and any older copy of the slot is gone. On
    /// `Err(Refused)` no tier holds the slot any more: keep the page
    /// resident. The caller's page is never modified.
    pub fn store(&mut self, slot: u64, page: &Page) -> Result<Tier, FrontswapError> {
        let key = slot_key(slot).ok_or(FrontswapError::SlotOutOfRange(slot))?;
        let prev = self.tier_of(slot);
        let put = if self.primary_admits {
            self.primary.put(self.primary_pool, key, page)
        } else {
            self.stats.primary_closed += 1;
            if prev == Some(Tier::Primary) {
                // Not put again there: its older copy must go (the slot
                // is forgotten below, as after any declined put).
                self.flush_stale(Tier::Primary, key);
            }
            Err(TmemError::Refused(Refusal::Closed))
        };
        let primary_err = match put {
            Ok(()) => {
                if prev == Some(Tier::Fallback) {
                    self.flush_stale(Tier::Fallback, key);
                }
                self.record(slot, Tier::Primary);
                self.stats.pageouts += 1;
                return Ok(Tier::Primary);
            }
            Err(e) => e,
        };
        // The primary no longer holds the slot (duplicate-put rule).
        if prev == Some(Tier::Primary) {
            self.forget(slot);
        }
        let fallback_err = match self
            .fallback
            .as_mut()
            .map(|(f, pool)| f.put(*pool, key, page))
        {
            None => None,
            Some(Ok(())) => {
                self.record(slot, Tier::Fallback);
                self.stats.pageouts += 1;
                if self.primary_admits {
                    self.stats.fell_back += 1;
                }
                return Ok(Tier::Fallback);
            }
            Some(Err(e)) => Some(e),
        };
        // Neither tier holds the slot now.
        self.forget(slot);
        self.stats.refused += 1;
        Err(FrontswapError::Refused {
            primary: primary_err,
            fallback: fallback_err,
        })
    }

    /// Pages `slot` in: copies its page into `page`. The slot stays held
    /// (call [`invalidate`] when the swap slot is freed, or use [`take`]).
    /// On any error the content of `page` is unspecified.
    ///
    /// [`invalidate`]: Frontswap::invalidate
    /// [`take`]: Frontswap::take
    pub fn load(&mut self, slot: u64, page: &mut Page) -> Result<Tier, FrontswapError> {
        let key = slot_key(slot).ok_or(FrontswapError::SlotOutOfRange(slot))?;
        let tier = self.tier_of(slot).ok_or(FrontswapError::NotStored(slot))?;
        let r = match tier {
            Tier::Primary => self.primary.get(self.primary_pool, key, page),
            Tier::Fallback => match &mut self.fallback {
                Some((f, pool)) => f.get(*pool, key, page),
                None => Ok(Lookup::Absent),
            },
        };
        match r {
            Ok(Lookup::Found) => {
                self.stats.pageins += 1;
                Ok(tier)
            }
            Ok(Lookup::Absent) => {
                self.forget(slot);
                self.stats.lost += 1;
                Err(FrontswapError::Lost(tier))
            }
            Err(e) => {
                self.stats.backend_errors += 1;
                Err(FrontswapError::Backend(tier, e))
            }
        }
    }

    /// [`load`](Frontswap::load) then [`invalidate`](Frontswap::invalidate):
    /// an exclusive page-in that frees the pool's copy at once. A failed
    /// flush after a good load still returns `Ok` (the slot is forgotten;
    /// the stale copy is never read) and is counted.
    pub fn take(&mut self, slot: u64, page: &mut Page) -> Result<Tier, FrontswapError> {
        let tier = self.load(slot, page)?;
        // `load` succeeded, so the slot maps to a key.
        if let Some(key) = slot_key(slot) {
            self.forget(slot);
            self.stats.invalidates += 1;
            self.flush_stale(tier, key);
        }
        Ok(tier)
    }

    /// Forgets `slot` and flushes its page (`frontswap_invalidate_page`).
    /// A slot not held is not an error. If the flush fails the slot is
    /// still forgotten (its copy is never read again) and the error is
    /// returned.
    pub fn invalidate(&mut self, slot: u64) -> Result<(), FrontswapError> {
        let key = slot_key(slot).ok_or(FrontswapError::SlotOutOfRange(slot))?;
        let Some(tier) = self.forget(slot) else {
            return Ok(());
        };
        self.stats.invalidates += 1;
        let r = match tier {
            Tier::Primary => self.primary.flush_page(self.primary_pool, key),
            Tier::Fallback => match &mut self.fallback {
                Some((f, pool)) => f.flush_page(*pool, key),
                None => Ok(()),
            },
        };
        r.map_err(|e| {
            self.stats.backend_errors += 1;
            FrontswapError::Backend(tier, e)
        })
    }

    /// Forgets every slot and flushes the whole area from both tiers
    /// (`frontswap_invalidate_area`: sixteen object flushes per tier).
    /// Returns the first flush error, after trying them all.
    pub fn invalidate_all(&mut self) -> Result<(), FrontswapError> {
        let mut first = None;
        for o in 0..SWIZ_OBJECTS {
            let obj = ObjectId([o, 0, 0]);
            if let Err(e) = self.primary.flush_object(self.primary_pool, obj) {
                first.get_or_insert(FrontswapError::Backend(Tier::Primary, e));
            }
            if let Some((f, pool)) = &mut self.fallback {
                if let Err(e) = f.flush_object(*pool, obj) {
                    first.get_or_insert(FrontswapError::Backend(Tier::Fallback, e));
                }
            }
        }
        self.stats.invalidates += self.map.len() as u64;
        self.map.clear();
        self.primary_pages = 0;
        self.fallback_pages = 0;
        match first {
            Some(e) => {
                self.stats.backend_errors += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }
}
