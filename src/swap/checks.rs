//! The bodies of the in-guest tmem checks (selftest `tmem-persistent`,
//! `tmem-ephemeral`) and the put/get timing beside `zpool`, generic over
//! any [`Tmem`] so that host tests run them on the fakes and the kernel
//! runs them on Xen's tmem. Page contents are `mixed` pages that are a
//! function of their number, so nothing but one page buffer is kept.

use super::content::{fill, verify, ContentKind};
use super::tmem::{Key, Lookup, ObjectId, PoolKind, Tmem, TmemError, PAGE_BYTES};
use super::zpool::{VecFrames, ZPool};

/// Objects the persistent check spreads its pages over (as frontswap).
const OBJECTS: u64 = 16;

/// Object and index of page `i` of a check.
fn key_of(tag: u64, i: u64) -> Key {
    // `i / OBJECTS` fits an index for every page count a check takes
    // (a u32 count), so the conversion never saturates.
    let index = u32::try_from(i / OBJECTS).unwrap_or(u32::MAX);
    Key::new(ObjectId([i % OBJECTS, tag, 0]), index)
}

/// What the persistent check saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistentReport {
    /// Pages put and accepted.
    pub stored: u64,
    /// Puts refused (no loss: the check keeps nothing).
    pub refused: u64,
    /// Pages read back with the wrong content, or absent although stored.
    pub mismatches: u64,
    /// Pages found again by a second get (gets are not destructive).
    pub regot: u64,
    /// Pages flushed one by one whose get then answered absent.
    pub absent_after_page_flush: u64,
    /// Pages whose object was flushed and whose get then answered absent.
    pub absent_after_object_flush: u64,
    /// Gets that found a page that had been flushed (must be 0).
    pub found_after_flush: u64,
    /// Mean ns per accepted put and per found get.
    pub put_ns: u64,
    /// See `put_ns`.
    pub get_ns: u64,
}

impl PersistentReport {
    /// Whether the check passed for `pages` pages.
    pub fn ok(&self, pages: u64) -> bool {
        self.stored == pages
            && self.mismatches == 0
            && self.found_after_flush == 0
            && self.absent_after_page_flush + self.absent_after_object_flush == pages
    }
}

fn mean(total: u64, n: u64) -> u64 {
    total.checked_div(n).unwrap_or(0)
}

/// Puts `pages` distinct pages into a new persistent pool, gets each and
/// checks it, gets some again, flushes the first half page by page and
/// the rest object by object (the last object flush empties the pool, so
/// Xen answers its last gets with -EEMPTY), checking every get after a
/// flush answers absent, then destroys the pool. `now` reads a clock in
/// ns. An error of the backend ends the check.
pub fn persistent_check<T: Tmem>(
    t: &mut T,
    pages: u32,
    now: &dyn Fn() -> u64,
) -> Result<PersistentReport, TmemError> {
    let pool = t.new_pool(PoolKind::PERSISTENT)?;
    let r = persistent_body(t, pool, u64::from(pages), now);
    let d = t.destroy_pool(pool);
    let r = r?;
    d?;
    Ok(r)
}

fn persistent_body<T: Tmem>(
    t: &mut T,
    pool: super::tmem::PoolId,
    n: u64,
    now: &dyn Fn() -> u64,
) -> Result<PersistentReport, TmemError> {
    const TAG: u64 = 0x7e57;
    let mut r = PersistentReport::default();
    let mut pg = [0u8; PAGE_BYTES];
    let mut put_total = 0u64;
    for i in 0..n {
        fill(ContentKind::Mixed, i, &mut pg);
        let t0 = now();
        let res = t.put(pool, key_of(TAG, i), &pg);
        put_total = put_total.saturating_add(now().saturating_sub(t0));
        match res {
            Ok(()) => r.stored += 1,
            Err(TmemError::Refused(_)) => r.refused += 1,
            Err(e) => return Err(e),
        }
    }
    let mut get_total = 0u64;
    let mut found = 0u64;
    for i in 0..n {
        pg.fill(0);
        let t0 = now();
        let res = t.get(pool, key_of(TAG, i), &mut pg)?;
        get_total = get_total.saturating_add(now().saturating_sub(t0));
        match res {
            Lookup::Found if verify(ContentKind::Mixed, i, &pg) => found += 1,
            _ => r.mismatches += 1,
        }
    }
    r.put_ns = mean(put_total, r.stored);
    r.get_ns = mean(get_total, found);
    // Persistent gets are not destructive.
    for i in (0..n).step_by(16) {
        match t.get(pool, key_of(TAG, i), &mut pg)? {
            Lookup::Found if verify(ContentKind::Mixed, i, &pg) => r.regot += 1,
            _ => r.mismatches += 1,
        }
    }
    // First half of the objects: page flushes, then gets (Xen: 0).
    let half = OBJECTS / 2;
    for i in (0..n).filter(|i| i % OBJECTS < half) {
        t.flush_page(pool, key_of(TAG, i))?;
    }
    for i in (0..n).filter(|i| i % OBJECTS < half) {
        match t.get(pool, key_of(TAG, i), &mut pg)? {
            Lookup::Absent => r.absent_after_page_flush += 1,
            Lookup::Found => r.found_after_flush += 1,
        }
    }
    // The other objects: one object flush each, then gets; the last
    // flush leaves the pool empty (Xen: -EEMPTY).
    for o in half..OBJECTS {
        t.flush_object(pool, ObjectId([o, TAG, 0]))?;
    }
    for i in (0..n).filter(|i| i % OBJECTS >= half) {
        match t.get(pool, key_of(TAG, i), &mut pg)? {
            Lookup::Absent => r.absent_after_object_flush += 1,
            Lookup::Found => r.found_after_flush += 1,
        }
    }
    Ok(r)
}

/// What the ephemeral check saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EphemeralReport {
    /// Pages put and accepted.
    pub stored: u64,
    /// Puts refused.
    pub refused: u64,
    /// First gets that found the page, content right.
    pub found: u64,
    /// First gets that found nothing: the backend dropped the page
    /// (allowed in an ephemeral pool; counted).
    pub dropped: u64,
    /// Second gets that found the page again (must be 0: destructive).
    pub found_twice: u64,
    /// Found pages with the wrong content.
    pub mismatches: u64,
}

impl EphemeralReport {
    /// Whether the check passed: gets destructive, contents right, and at
    /// least one page came back (else nothing was shown).
    pub fn ok(&self) -> bool {
        self.found_twice == 0 && self.mismatches == 0 && self.found > 0
    }
}

/// Puts `pages` pages into a new ephemeral pool, then gets each twice:
/// the first get returns it once (or finds it dropped), the second must
/// find nothing. Destroys the pool.
pub fn ephemeral_check<T: Tmem>(t: &mut T, pages: u32) -> Result<EphemeralReport, TmemError> {
    const TAG: u64 = 0xe9e;
    let pool = t.new_pool(PoolKind::EPHEMERAL)?;
    let body = |t: &mut T| -> Result<EphemeralReport, TmemError> {
        let mut r = EphemeralReport::default();
        let mut pg = [0u8; PAGE_BYTES];
        for i in 0..u64::from(pages) {
            fill(ContentKind::Mixed, i, &mut pg);
            match t.put(pool, key_of(TAG, i), &pg) {
                Ok(()) => r.stored += 1,
                Err(TmemError::Refused(_)) => r.refused += 1,
                Err(e) => return Err(e),
            }
        }
        for i in 0..u64::from(pages) {
            pg.fill(0);
            match t.get(pool, key_of(TAG, i), &mut pg)? {
                Lookup::Found if verify(ContentKind::Mixed, i, &pg) => r.found += 1,
                Lookup::Found => r.mismatches += 1,
                Lookup::Absent => r.dropped += 1,
            }
            if t.get(pool, key_of(TAG, i), &mut pg)? == Lookup::Found {
                r.found_twice += 1;
            }
        }
        Ok(r)
    };
    let r = body(t);
    let d = t.destroy_pool(pool);
    let r = r?;
    d?;
    Ok(r)
}

/// `zpool`'s mean ns per put and per get of `pages` `mixed` pages, in a
/// pool of at most `frames` frames on the heap ([`VecFrames`]), with
/// (put ns, get ns, pages stored, mismatches).
pub fn zpool_timing(pages: u32, frames: usize, now: &dyn Fn() -> u64) -> (u64, u64, u64, u64) {
    let mut z = ZPool::new(VecFrames::new(0, frames), frames as u64);
    let Ok(pool) = z.new_pool(PoolKind::PERSISTENT) else {
        return (0, 0, 0, 1);
    };
    let mut pg = [0u8; PAGE_BYTES];
    let (mut put_total, mut get_total, mut stored, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut ok = alloc::vec![false; pages as usize];
    for i in 0..u64::from(pages) {
        fill(ContentKind::Mixed, i, &mut pg);
        let t0 = now();
        let res = z.put(pool, key_of(1, i), &pg);
        put_total = put_total.saturating_add(now().saturating_sub(t0));
        if res.is_ok() {
            stored += 1;
            if let Some(f) = ok.get_mut(i as usize) {
                *f = true;
            }
        }
    }
    for i in 0..u64::from(pages) {
        if !ok.get(i as usize).copied().unwrap_or(false) {
            continue;
        }
        let t0 = now();
        let res = z.get(pool, key_of(1, i), &mut pg);
        get_total = get_total.saturating_add(now().saturating_sub(t0));
        if res != Ok(Lookup::Found) || !verify(ContentKind::Mixed, i, &pg) {
            bad += 1;
        }
    }
    let _ = z.destroy_pool(pool);
    (
        mean(put_total, stored),
        mean(get_total, stored),
        stored,
        bad,
    )
}
