//! A fake tmem for host tests: tmem's semantics exactly (see
//! [`tmem`](super::tmem)), with a script of injected answers, like
//! `FakeXen`'s `Inject` in the balloon tests.
//!
//! Pages are kept as plain copies. A capacity in pages models a
//! hypervisor running out of memory: at capacity the fake drops
//! ephemeral pages first (oldest first) and refuses with
//! [`Refusal::NoMemory`] when none is left, as Xen's tmem does when it
//! cannot allocate (`-ENOMEM`).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::tmem::{
    Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError, MAX_POOLS,
};

/// One injected answer, consumed by the next call that it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inject {
    /// The next put is refused for this reason (the old copy of its key
    /// goes, by the duplicate-put rule).
    Refuse(Refusal),
    /// The next call of any kind fails with this error. A put that fails
    /// loses the old copy of its key (duplicate-put rule); any other call
    /// changes nothing.
    Fail(TmemError),
    /// The next put to an *ephemeral* pool answers `Ok` and keeps nothing
    /// (tmem may drop an ephemeral page at any time). Skipped by puts to
    /// persistent pools, where it would break the contract.
    DropEphemeral,
}

#[derive(Debug)]
struct FakePool {
    kind: PoolKind,
    pages: BTreeMap<Key, (u64, Box<Page>)>,
}

/// Operation counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Calls {
    pub new_pool: u64,
    pub destroy_pool: u64,
    pub put: u64,
    pub get: u64,
    pub flush_page: u64,
    pub flush_object: u64,
}

/// The fake.
#[derive(Debug, Default)]
pub(crate) struct FakeTmem {
    pools: Vec<Option<FakePool>>,
    /// Injected answers, front first.
    pub script: VecDeque<Inject>,
    /// Pages held at most (all pools); `None`: unlimited.
    pub capacity_pages: Option<u64>,
    /// Every call refuses with `Unsupported` (no tmem: Xen 4.13+).
    pub absent: bool,
    pub calls: Calls,
    /// Ephemeral pages the fake dropped (capacity, or on command).
    pub dropped: u64,
    seq: u64,
}

impl FakeTmem {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pages held, all pools.
    pub fn pages(&self) -> u64 {
        self.pools
            .iter()
            .flatten()
            .map(|p| p.pages.len() as u64)
            .sum()
    }

    /// Drops up to `n` ephemeral pages, oldest first (what the hypervisor
    /// may do at any time). Returns how many it dropped.
    pub fn drop_ephemeral(&mut self, n: u64) -> u64 {
        let mut done = 0;
        while done < n && self.drop_oldest_ephemeral() {
            done += 1;
        }
        done
    }

    fn drop_oldest_ephemeral(&mut self) -> bool {
        let oldest = self
            .pools
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
            .filter(|(_, p)| !p.kind.is_persistent())
            .flat_map(|(i, p)| p.pages.iter().map(move |(k, (s, _))| (*s, i, *k)))
            .min();
        let Some((_, i, k)) = oldest else {
            return false;
        };
        if let Some(Some(p)) = self.pools.get_mut(i) {
            p.pages.remove(&k);
        }
        self.dropped += 1;
        true
    }

    fn scripted_failure(&mut self) -> Result<(), TmemError> {
        if self.absent {
            return Err(TmemError::Unsupported);
        }
        if let Some(&Inject::Fail(e)) = self.script.front() {
            self.script.pop_front();
            return Err(e);
        }
        Ok(())
    }

    fn pool_mut(&mut self, pool: PoolId) -> Result<&mut FakePool, TmemError> {
        match self.pools.get_mut(pool.0 as usize) {
            Some(Some(p)) => Ok(p),
            _ => Err(TmemError::NoSuchPool(pool)),
        }
    }
}

impl Tmem for FakeTmem {
    fn new_pool(&mut self, kind: PoolKind) -> Result<PoolId, TmemError> {
        self.calls.new_pool += 1;
        self.scripted_failure()?;
        let p = Some(FakePool {
            kind,
            pages: BTreeMap::new(),
        });
        if let Some(i) = self.pools.iter().position(Option::is_none) {
            self.pools[i] = p;
            return Ok(PoolId(i as u32));
        }
        if self.pools.len() >= MAX_POOLS as usize {
            return Err(TmemError::NoPoolSlots);
        }
        self.pools.push(p);
        Ok(PoolId(self.pools.len() as u32 - 1))
    }

    fn destroy_pool(&mut self, pool: PoolId) -> Result<(), TmemError> {
        self.calls.destroy_pool += 1;
        self.scripted_failure()?;
        self.pool_mut(pool)?;
        self.pools[pool.0 as usize] = None;
        Ok(())
    }

    fn put(&mut self, pool: PoolId, key: Key, page: &Page) -> Result<(), TmemError> {
        self.calls.put += 1;
        if self.absent {
            return Err(TmemError::Unsupported);
        }
        let persistent = self.pool_mut(pool)?.kind.is_persistent();
        // Duplicate-put rule: the old copy goes whatever happens next.
        self.pool_mut(pool)?.pages.remove(&key);
        match self.script.front().copied() {
            Some(Inject::Fail(e)) => {
                self.script.pop_front();
                return Err(e);
            }
            Some(Inject::Refuse(r)) => {
                self.script.pop_front();
                return Err(TmemError::Refused(r));
            }
            Some(Inject::DropEphemeral) if !persistent => {
                self.script.pop_front();
                self.dropped += 1;
                return Ok(());
            }
            _ => {}
        }
        if let Some(cap) = self.capacity_pages {
            while self.pages() >= cap {
                if !self.drop_oldest_ephemeral() {
                    return Err(TmemError::Refused(Refusal::NoMemory));
                }
            }
        }
        self.seq += 1;
        let seq = self.seq;
        self.pool_mut(pool)?
            .pages
            .insert(key, (seq, Box::new(*page)));
        Ok(())
    }

    fn get(&mut self, pool: PoolId, key: Key, page: &mut Page) -> Result<Lookup, TmemError> {
        self.calls.get += 1;
        self.scripted_failure()?;
        let p = self.pool_mut(pool)?;
        let destructive = !p.kind.is_persistent();
        let found = if destructive {
            p.pages.remove(&key).map(|(_, b)| b)
        } else {
            p.pages.get(&key).map(|(_, b)| b.clone())
        };
        match found {
            Some(b) => {
                *page = *b;
                Ok(Lookup::Found)
            }
            None => Ok(Lookup::Absent),
        }
    }

    fn flush_page(&mut self, pool: PoolId, key: Key) -> Result<(), TmemError> {
        self.calls.flush_page += 1;
        self.scripted_failure()?;
        self.pool_mut(pool)?.pages.remove(&key);
        Ok(())
    }

    fn flush_object(&mut self, pool: PoolId, object: ObjectId) -> Result<(), TmemError> {
        self.calls.flush_object += 1;
        self.scripted_failure()?;
        let p = self.pool_mut(pool)?;
        p.pages.retain(|k, _| k.object != object);
        Ok(())
    }
}
