//! `zpool`: a compressed page pool inside the guest, the tmem backend
//! where Xen has none (every Xen since 4.13).
//!
//! What zswap (mm/zswap.c) does in front of zsmalloc (mm/zsmalloc.c),
//! behind the [`Tmem`] interface:
//!
//! 1. a put first removes any copy of the key (tmem's duplicate-put rule:
//!    whatever happens next, the old data is gone);
//! 2. a *same-filled* page (every 64-bit word equal, the zero page above
//!    all) is kept as that one word, in the index only: no frame, no
//!    compression (zswap's `zswap_is_page_same_filled`);
//! 3. any other page is compressed with lz4 ([`compress`]); a block longer
//!    than [`MAX_STORED_BYTES`] (3/4 of a page) is refused as
//!    [`Refusal::Incompressible`];
//! 4. the block is stored in a slot of its size class ([`zspage`]), packed
//!    densely with others in zspages of 1..=4 frames, crossing frame
//!    boundaries; a new zspage is taken only if the class has no free
//!    slot, and only within the frame limit ([`limit`]);
//! 5. when there is no room (the limit, or no frame from [`PoolFrames`]),
//!    *ephemeral* pages are dropped, oldest put first, until the put fits
//!    or none is left; persistent pages are never dropped. Then the put is
//!    refused ([`Refusal::OverLimit`] or [`Refusal::NoMemory`]). A dropped
//!    page frees a frame only when it empties its zspage, or frees a slot
//!    the put can use only when it is of the same class, so under
//!    fragmentation one put may drop many ephemeral pages (zswap's
//!    writeback has the same property); [`ZPool::compact`] is the remedy.
//!
//! A get decompresses straight from the frame into the caller's page
//! (through a 3 KiB bounce buffer only when the object crosses a frame
//! boundary); in an ephemeral pool it then frees the object. The
//! compressor's state (hash table and output, 12.6 KiB) and the bounce
//! buffer are on the heap, kept with the pool, so neither direction needs
//! a deep stack, and a get does not clear 3 KiB of stack first.
//!
//! # What "never lost" rests on
//!
//! A persistent page, once its put returned `Ok`, is removed only by a
//! flush, a put of the same key, or destroying the pool: eviction looks at
//! ephemeral pools only, compaction moves bytes and rewrites the handle in
//! the same step, and a slot is reused only after it was freed. The store
//! never writes a frame outside the slot it is given (slots are disjoint),
//! and the frames come from [`PoolFrames`], whose contract is that no one
//! else writes them. The decoder is bounds-checked (a broken block is
//! [`TmemError::Corrupt`], never a wild write).
//!
//! # Accounting
//!
//! [`ZPoolStats`] reports `frames_used` (frames taken from [`PoolFrames`]
//! and not returned: the pool's cost in guest memory), `compressed_bytes`
//! (lz4 bytes stored, before class rounding), `logical_pages` (pages the
//! pool answers for, same-filled ones included). The index (per pool, a
//! `BTreeMap` of objects each with a `BTreeMap` of page indices) lives on
//! the kernel heap, about 30–45 bytes per page depending on B-tree fill,
//! and is not in `frames_used`.
//!
//! # Fragmentation
//!
//! Freed slots are reused by the next object of their class; a zspage
//! whose last object goes releases its frames at once. Scattered frees can
//! still leave many sparse zspages; [`ZPool::compact`] moves objects out
//! of the sparsest zspage of each class into the free slots of the others
//! and frees the emptied frames (zsmalloc's compaction). It is O(pages
//! stored) and meant for the controller's tick or a shrinker, not for the
//! fault path.

#![forbid(unsafe_code)]

pub mod class;
pub mod compress;
pub mod frames;
pub mod limit;
pub mod lz4dec;
pub mod zspage;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

pub use self::compress::MAX_STORED_BYTES;
use self::compress::{decompress, fill_same, same_filled, Compressor};
pub use self::frames::{PoolFrames, VecFrames};
pub use self::limit::{LimitError, MaxPoolPercent};
use self::zspage::{AllocError, Handle, ZsStore};
use crate::swap::tmem::{
    Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError, MAX_POOLS, PAGE_BYTES,
};

/// How a page is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// Every word is this one.
    Same(u64),
    /// An lz4 block of `len` bytes at `handle`.
    Object { handle: Handle, len: u16 },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    stored: Stored,
    /// Put order (for ephemeral eviction, oldest first).
    seq: u64,
}

/// A pool's pages by key, in two levels: per object, then per index. A
/// lookup compares the 24-byte object id only against the pool's objects
/// (frontswap uses 16), then 4-byte indices: half the time of one
/// `BTreeMap<Key, _>` on the benchmark's 8,192 keys, and half the memory
/// per page (the tree holds the index, not the whole key).
#[derive(Debug, Default)]
struct Index {
    objects: BTreeMap<ObjectId, BTreeMap<u32, Entry>>,
    len: usize,
}

impl Index {
    fn get(&self, key: &Key) -> Option<&Entry> {
        self.objects.get(&key.object)?.get(&key.index)
    }

    fn insert(&mut self, key: Key, entry: Entry) -> Option<Entry> {
        let old = self
            .objects
            .entry(key.object)
            .or_default()
            .insert(key.index, entry);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let pages = self.objects.get_mut(&key.object)?;
        let e = pages.remove(&key.index)?;
        if pages.is_empty() {
            self.objects.remove(&key.object);
        }
        self.len -= 1;
        Some(e)
    }

    /// Removes every page of `object`.
    fn remove_object(&mut self, object: &ObjectId) -> BTreeMap<u32, Entry> {
        let pages = self.objects.remove(object).unwrap_or_default();
        self.len -= pages.len();
        pages
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Every page, in key order.
    fn iter(&self) -> impl Iterator<Item = (Key, &Entry)> + '_ {
        self.objects
            .iter()
            .flat_map(|(o, pages)| pages.iter().map(|(i, e)| (Key::new(*o, *i), e)))
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> + '_ {
        self.objects
            .values_mut()
            .flat_map(|pages| pages.values_mut())
    }

    fn into_values(self) -> impl Iterator<Item = Entry> {
        self.objects
            .into_values()
            .flat_map(|pages| pages.into_values())
    }
}

#[derive(Debug)]
struct PoolState {
    kind: PoolKind,
    map: Index,
    /// Ephemeral pools: `(seq, key)` in put order. May hold stale pairs
    /// (the key was since flushed, got or put again); a pair is live iff
    /// the map holds the key with that `seq`.
    fifo: VecDeque<(u64, Key)>,
}

/// Pool statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZPoolStats {
    /// Frames held (the pool's cost in guest memory).
    pub frames_used: u64,
    /// The frame limit.
    pub max_frames: u64,
    /// lz4 bytes stored (before rounding to the class size).
    pub compressed_bytes: u64,
    /// Pages the pool holds, all pools, same-filled included.
    pub logical_pages: u64,
    /// Of which same-filled (no frame).
    pub same_filled_pages: u64,
    /// Of which in ephemeral pools.
    pub ephemeral_pages: u64,
    /// Puts that stored their page.
    pub stored_puts: u64,
    /// Puts refused because the page did not compress enough.
    pub refused_incompressible: u64,
    /// Puts refused at the frame limit.
    pub refused_over_limit: u64,
    /// Puts refused because no frame was to be had.
    pub refused_no_memory: u64,
    /// Ephemeral pages dropped to make room.
    pub ephemeral_evicted: u64,
    /// Objects moved by compaction.
    pub compaction_moves: u64,
}

impl ZPoolStats {
    /// `logical bytes / (frames × 4096)` in percent (`zpool_ratio_pct`):
    /// 300 means 3 pages held per frame used. `None` while no frame is
    /// used.
    pub fn ratio_pct(&self) -> Option<u64> {
        if self.frames_used == 0 {
            return None;
        }
        self.logical_pages
            .checked_mul(100)
            .map(|x| x / self.frames_used)
    }

    /// Bytes the pool occupies in guest memory (`zpool_bytes` is the
    /// compressed bytes; this is the frames).
    pub fn frame_bytes(&self) -> u64 {
        self.frames_used.saturating_mul(PAGE_BYTES as u64)
    }
}

/// Result of one [`ZPool::compact`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Objects moved.
    pub moved: u64,
    /// Frames freed.
    pub frames_freed: u64,
}

/// The compressed pool over frames from `F`.
#[derive(Debug)]
pub struct ZPool<F> {
    store: ZsStore<F>,
    pools: Vec<Option<PoolState>>,
    compressor: Box<Compressor>,
    /// Where a get gathers an object that crosses a frame boundary.
    bounce: Box<[u8; class::MAX_CLASS_BYTES]>,
    next_seq: u64,
    stats: ZPoolStats,
}

impl<F: PoolFrames> ZPool<F> {
    /// An empty pool that takes at most `max_frames` frames from `frames`.
    /// See [`MaxPoolPercent::max_frames`] for the limit from the tunable.
    pub fn new(frames: F, max_frames: u64) -> Self {
        ZPool {
            store: ZsStore::new(frames, max_frames),
            pools: Vec::new(),
            compressor: Box::default(),
            bounce: Box::new([0; class::MAX_CLASS_BYTES]),
            next_seq: 0,
            stats: ZPoolStats::default(),
        }
    }

    /// Statistics now.
    pub fn stats(&self) -> ZPoolStats {
        let mut s = self.stats;
        s.frames_used = self.store.frames_used();
        s.max_frames = self.store.max_frames();
        s
    }

    /// The object store (tests and statistics).
    pub fn store(&self) -> &ZsStore<F> {
        &self.store
    }

    /// The frame source.
    pub fn frames(&self) -> &F {
        self.store.frame_source()
    }

    /// The frame source, mutably (tests script frame shortages with it).
    pub fn frames_mut(&mut self) -> &mut F {
        self.store.frame_source_mut()
    }

    /// Sets the frame limit (the tunable changed, or the guest's size).
    /// If the pool is now over it, ephemeral pages are dropped, then the
    /// pool is compacted, to come back under; persistent pages stay, so
    /// the pool may remain above a lowered limit until they are loaded or
    /// flushed. Returns whether the pool is within the limit.
    pub fn set_max_frames(&mut self, max_frames: u64) -> bool {
        self.store.set_max_frames(max_frames);
        while self.store.frames_used() > max_frames && self.evict_one() {}
        if self.store.frames_used() > max_frames {
            self.compact();
        }
        self.store.frames_used() <= max_frames
    }

    fn pool(&self, pool: PoolId) -> Result<&PoolState, TmemError> {
        match self.pools.get(pool.0 as usize) {
            Some(Some(p)) => Ok(p),
            _ => Err(TmemError::NoSuchPool(pool)),
        }
    }

    fn pool_mut(&mut self, pool: PoolId) -> Result<&mut PoolState, TmemError> {
        match self.pools.get_mut(pool.0 as usize) {
            Some(Some(p)) => Ok(p),
            _ => Err(TmemError::NoSuchPool(pool)),
        }
    }

    /// Frees what `entry` holds and updates the counters.
    fn release(store: &mut ZsStore<F>, stats: &mut ZPoolStats, persistent: bool, entry: Entry) {
        stats.logical_pages -= 1;
        if !persistent {
            stats.ephemeral_pages -= 1;
        }
        match entry.stored {
            Stored::Same(_) => stats.same_filled_pages -= 1,
            Stored::Object { handle, len } => {
                stats.compressed_bytes -= u64::from(len);
                store.free(handle);
            }
        }
    }

    fn remove(&mut self, pool: PoolId, key: Key) -> Result<Option<Entry>, TmemError> {
        let i = pool.0 as usize;
        let p = match self.pools.get_mut(i) {
            Some(Some(p)) => p,
            _ => return Err(TmemError::NoSuchPool(pool)),
        };
        let persistent = p.kind.is_persistent();
        let e = p.map.remove(&key);
        if let Some(e) = e {
            Self::release(&mut self.store, &mut self.stats, persistent, e);
        }
        Ok(e)
    }

    /// Drops the oldest ephemeral page of any pool. Returns false if there
    /// is none.
    fn evict_one(&mut self) -> bool {
        loop {
            // The ephemeral pool whose queue front is oldest.
            let mut best: Option<(u64, usize)> = None;
            for (i, p) in self.pools.iter().enumerate() {
                if let Some(p) = p {
                    if let Some(&(seq, _)) = p.fifo.front() {
                        if best.is_none_or(|(s, _)| seq < s) {
                            best = Some((seq, i));
                        }
                    }
                }
            }
            let Some((_, i)) = best else { return false };
            let Some(Some(p)) = self.pools.get_mut(i) else {
                return false;
            };
            let Some((seq, key)) = p.fifo.pop_front() else {
                continue;
            };
            if p.map.get(&key).is_some_and(|e| e.seq == seq) {
                if let Some(e) = p.map.remove(&key) {
                    Self::release(&mut self.store, &mut self.stats, false, e);
                    self.stats.ephemeral_evicted += 1;
                    return true;
                }
            }
        }
    }

    /// Compacts every class (see the module docs). O(pages stored).
    pub fn compact(&mut self) -> CompactStats {
        let before = self.store.frames_used();
        if self.store.begin_compaction() == 0 {
            self.store.end_compaction();
            return CompactStats::default();
        }
        let mut moved = 0;
        for p in self.pools.iter_mut().flatten() {
            for e in p.map.values_mut() {
                if let Stored::Object { handle, len } = &mut e.stored {
                    if self.store.is_draining(*handle) {
                        if let Some(h) = self.store.relocate(*handle, usize::from(*len)) {
                            *handle = h;
                            moved += 1;
                        }
                    }
                }
            }
        }
        self.store.end_compaction();
        self.stats.compaction_moves += moved;
        CompactStats {
            moved,
            frames_freed: before.saturating_sub(self.store.frames_used()),
        }
    }

    /// Drops ephemeral stale queue pairs when they outnumber live pages,
    /// keeping the queue O(live pages).
    fn trim_fifo(p: &mut PoolState) {
        if p.fifo.len() <= 2 * p.map.len() + 64 {
            return;
        }
        let mut live: Vec<(u64, Key)> = p.map.iter().map(|(k, e)| (e.seq, k)).collect();
        live.sort_unstable();
        p.fifo = live.into();
    }

    /// Checks the pool's invariants (tests): the store's, and that the
    /// counters match the index.
    pub fn check_invariants(&self) {
        self.store.check_invariants();
        let (mut logical, mut same, mut eph, mut bytes, mut objects) = (0, 0, 0, 0, 0);
        for p in self.pools.iter().flatten() {
            for (_, e) in p.map.iter() {
                logical += 1;
                if !p.kind.is_persistent() {
                    eph += 1;
                }
                match e.stored {
                    Stored::Same(_) => same += 1,
                    Stored::Object { len, .. } => {
                        bytes += u64::from(len);
                        objects += 1;
                    }
                }
            }
        }
        let s = self.stats;
        assert_eq!(s.logical_pages, logical, "logical_pages");
        assert_eq!(s.same_filled_pages, same, "same_filled_pages");
        assert_eq!(s.ephemeral_pages, eph, "ephemeral_pages");
        assert_eq!(s.compressed_bytes, bytes, "compressed_bytes");
        assert_eq!(self.store.objects(), objects, "objects");
        assert!(self.store.frames_used() <= self.store.max_frames() || eph == 0);
    }
}

impl<F: PoolFrames> Tmem for ZPool<F> {
    fn new_pool(&mut self, kind: PoolKind) -> Result<PoolId, TmemError> {
        let state = PoolState {
            kind,
            map: Index::default(),
            fifo: VecDeque::new(),
        };
        if let Some(i) = self.pools.iter().position(Option::is_none) {
            self.pools[i] = Some(state);
            return Ok(PoolId(i as u32));
        }
        if self.pools.len() >= MAX_POOLS as usize {
            return Err(TmemError::NoPoolSlots);
        }
        self.pools.push(Some(state));
        Ok(PoolId((self.pools.len() - 1) as u32))
    }

    fn destroy_pool(&mut self, pool: PoolId) -> Result<(), TmemError> {
        self.pool(pool)?;
        let Some(p) = self.pools.get_mut(pool.0 as usize).and_then(Option::take) else {
            return Err(TmemError::NoSuchPool(pool));
        };
        let persistent = p.kind.is_persistent();
        for e in p.map.into_values() {
            Self::release(&mut self.store, &mut self.stats, persistent, e);
        }
        Ok(())
    }

    fn put(&mut self, pool: PoolId, key: Key, page: &Page) -> Result<(), TmemError> {
        // Duplicate-put rule: the old copy goes first, whatever follows.
        self.remove(pool, key)?;
        let persistent = self.pool(pool)?.kind.is_persistent();
        let stored = if let Some(word) = same_filled(page) {
            self.stats.same_filled_pages += 1;
            Stored::Same(word)
        } else {
            let Some(len) = self.compressor.compress(page) else {
                self.stats.refused_incompressible += 1;
                return Err(TmemError::Refused(Refusal::Incompressible));
            };
            let handle = loop {
                match self.store.alloc(len) {
                    Ok(h) => break h,
                    Err(e) => {
                        // Make room by dropping ephemeral pages; the block
                        // stays in the compressor's buffer meanwhile.
                        if self.evict_one() {
                            continue;
                        }
                        let r = match e {
                            AllocError::OverLimit => {
                                self.stats.refused_over_limit += 1;
                                Refusal::OverLimit
                            }
                            AllocError::NoMemory => {
                                self.stats.refused_no_memory += 1;
                                Refusal::NoMemory
                            }
                            AllocError::TooLarge => {
                                self.stats.refused_incompressible += 1;
                                Refusal::Incompressible
                            }
                        };
                        return Err(TmemError::Refused(r));
                    }
                }
            };
            // `compress` bounded the block by MAX_STORED_BYTES, which fits
            // u16; eviction did not touch the compressor's buffer.
            let bytes = self.compressor.block(len);
            self.store.write(handle, bytes);
            self.stats.compressed_bytes += len as u64;
            Stored::Object {
                handle,
                len: len as u16,
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.logical_pages += 1;
        self.stats.stored_puts += 1;
        if !persistent {
            self.stats.ephemeral_pages += 1;
        }
        let p = self.pool_mut(pool)?;
        p.map.insert(key, Entry { stored, seq });
        if !persistent {
            p.fifo.push_back((seq, key));
            Self::trim_fifo(p);
        }
        Ok(())
    }

    fn get(&mut self, pool: PoolId, key: Key, page: &mut Page) -> Result<Lookup, TmemError> {
        let p = self.pool(pool)?;
        let persistent = p.kind.is_persistent();
        let Some(&entry) = p.map.get(&key) else {
            return Ok(Lookup::Absent);
        };
        match entry.stored {
            Stored::Same(word) => fill_same(page, word),
            Stored::Object { handle, len } => {
                let block = self.store.read(handle, usize::from(len), &mut self.bounce);
                decompress(block, page)?;
            }
        }
        if !persistent {
            self.remove(pool, key)?;
        }
        Ok(Lookup::Found)
    }

    fn flush_page(&mut self, pool: PoolId, key: Key) -> Result<(), TmemError> {
        self.remove(pool, key).map(|_| ())
    }

    fn flush_object(&mut self, pool: PoolId, object: ObjectId) -> Result<(), TmemError> {
        let i = pool.0 as usize;
        let p = match self.pools.get_mut(i) {
            Some(Some(p)) => p,
            _ => return Err(TmemError::NoSuchPool(pool)),
        };
        let persistent = p.kind.is_persistent();
        for e in p.map.remove_object(&object).into_values() {
            Self::release(&mut self.store, &mut self.stats, persistent, e);
        }
        Ok(())
    }
}
