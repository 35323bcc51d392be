//! Host tests of the swap tier: one tmem conformance suite run on the
//! fake and on `zpool`, directed tests of refusals, drops, limits and
//! compaction, proptests of the size-class store, and long random runs of
//! the pool and of (tiered) frontswap against model maps.
//!
//! The random runs have two sizes: an always-on one (6,000 operations,
//! a few seconds in a debug build) and the 10^6-operation one,
//! `#[cfg_attr(debug_assertions, ignore)]`, run by
//! `cargo test --release --lib swap:: -- --include-ignored` (lz4 in a
//! debug build costs ~0.3 ms per page, too slow for 10^6).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::content::{fill, verify, ContentKind};
use super::fake::{FakeTmem, Inject};
use super::frontswap::{slot_key, Frontswap, FrontswapError, Tier, MAX_SLOT};
use super::tmem::{
    Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError, MAX_POOLS, PAGE_BYTES,
};
use super::zpool::class::{class_for, CLASSES, MAX_CLASS_BYTES};
use super::zpool::zspage::{Handle, ZsStore};
use super::zpool::{MaxPoolPercent, VecFrames, ZPool};

/// xorshift64*, fixed seeds: every run is the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn page(kind: ContentKind, id: u64) -> Page {
    let mut p = [0u8; PAGE_BYTES];
    fill(kind, id, &mut p);
    p
}

fn key(o: u64, i: u32) -> Key {
    Key::new(ObjectId([o, 0, 0]), i)
}

fn zpool(max_frames: u64) -> ZPool<VecFrames> {
    ZPool::new(VecFrames::new(0x1000, 4096), max_frames)
}

// ---------------------------------------------------------------------
// Conformance: the fake and zpool give the same answers.

pub(super) fn conformance<T: Tmem>(t: &mut T) {
    let p = t.new_pool(PoolKind::PERSISTENT).expect("pool");
    let e = t.new_pool(PoolKind::EPHEMERAL).expect("pool");
    assert_ne!(p, e);
    let a = page(ContentKind::Mixed, 1);
    let b = page(ContentKind::Text, 2);
    let z = page(ContentKind::Zero, 3);
    let mut out = [0u8; PAGE_BYTES];

    // Persistent: non-destructive gets, overwrite, flushes.
    t.put(p, key(1, 0), &a).expect("put");
    t.put(p, key(1, 1), &z).expect("put");
    t.put(p, key(2, 0), &b).expect("put");
    for _ in 0..2 {
        assert_eq!(t.get(p, key(1, 0), &mut out), Ok(Lookup::Found));
        assert_eq!(out, a);
    }
    assert_eq!(t.get(p, key(1, 1), &mut out), Ok(Lookup::Found));
    assert_eq!(out, z);
    assert_eq!(t.get(p, key(9, 9), &mut out), Ok(Lookup::Absent));
    t.put(p, key(1, 0), &b).expect("overwrite");
    assert_eq!(t.get(p, key(1, 0), &mut out), Ok(Lookup::Found));
    assert_eq!(out, b);
    t.flush_page(p, key(1, 0)).expect("flush");
    t.flush_page(p, key(1, 0)).expect("flush of an absent key");
    assert_eq!(t.get(p, key(1, 0), &mut out), Ok(Lookup::Absent));
    t.put(p, key(1, 7), &a).expect("put");
    t.flush_object(p, ObjectId([1, 0, 0]))
        .expect("flush object");
    assert_eq!(t.get(p, key(1, 1), &mut out), Ok(Lookup::Absent));
    assert_eq!(t.get(p, key(1, 7), &mut out), Ok(Lookup::Absent));
    assert_eq!(t.get(p, key(2, 0), &mut out), Ok(Lookup::Found));
    assert_eq!(out, b);

    // Ephemeral: the same key in another pool is another page; gets are
    // destructive.
    t.put(e, key(2, 0), &a).expect("put");
    assert_eq!(t.get(e, key(2, 0), &mut out), Ok(Lookup::Found));
    assert_eq!(out, a);
    assert_eq!(t.get(e, key(2, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(t.get(p, key(2, 0), &mut out), Ok(Lookup::Found));
    assert_eq!(out, b);

    // Destroy.
    t.destroy_pool(p).expect("destroy");
    assert_eq!(t.get(p, key(2, 0), &mut out), Err(TmemError::NoSuchPool(p)));
    assert_eq!(t.put(p, key(2, 0), &a), Err(TmemError::NoSuchPool(p)));
    assert_eq!(t.destroy_pool(p), Err(TmemError::NoSuchPool(p)));
    assert_eq!(
        t.flush_page(PoolId(99), key(0, 0)),
        Err(TmemError::NoSuchPool(PoolId(99)))
    );
    // Pool ids are reused; at most MAX_POOLS at once.
    let mut ids = vec![e];
    while let Ok(id) = t.new_pool(PoolKind::PERSISTENT) {
        ids.push(id);
    }
    assert_eq!(ids.len(), MAX_POOLS as usize);
    assert_eq!(
        t.new_pool(PoolKind::PERSISTENT),
        Err(TmemError::NoPoolSlots)
    );
    for id in ids {
        t.destroy_pool(id).expect("destroy");
    }
}

#[test]
fn fake_tmem_conforms() {
    conformance(&mut FakeTmem::new());
}

#[test]
fn zpool_conforms() {
    let mut z = zpool(u64::MAX);
    conformance(&mut z);
    z.check_invariants();
    // Everything was flushed or destroyed: no frame is left.
    assert_eq!(z.stats().frames_used, 0);
    assert_eq!(z.frames().allocated_frames(), 0);
    assert_eq!(z.stats().logical_pages, 0);
}

// ---------------------------------------------------------------------
// zpool: refusals, limits, ephemeral pressure, compaction.

#[test]
fn failed_duplicate_put_removes_the_old_copy() {
    let mut z = zpool(u64::MAX);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    z.put(p, key(0, 0), &page(ContentKind::Mixed, 5))
        .expect("put");
    assert_eq!(
        z.put(p, key(0, 0), &page(ContentKind::Random, 5)),
        Err(TmemError::Refused(Refusal::Incompressible))
    );
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(z.get(p, key(0, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(z.stats().refused_incompressible, 1);
    assert_eq!(z.stats().frames_used, 0);

    // Same rule in the fake, by script.
    let mut f = FakeTmem::new();
    let p = f.new_pool(PoolKind::PERSISTENT).expect("pool");
    f.put(p, key(0, 0), &page(ContentKind::Mixed, 5))
        .expect("put");
    f.script.push_back(Inject::Refuse(Refusal::NoMemory));
    assert_eq!(
        f.put(p, key(0, 0), &page(ContentKind::Mixed, 6)),
        Err(TmemError::Refused(Refusal::NoMemory))
    );
    assert_eq!(f.get(p, key(0, 0), &mut out), Ok(Lookup::Absent));
}

#[test]
fn same_filled_pages_take_no_frame() {
    let mut z = zpool(0);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let mut w = [0u8; PAGE_BYTES];
    super::zpool::compress::fill_same(&mut w, 0x0123_4567_89ab_cdef);
    z.put(p, key(0, 0), &page(ContentKind::Zero, 0))
        .expect("zero page with a limit of 0 frames");
    z.put(p, key(0, 1), &w).expect("same-filled page");
    let mut out = [1u8; PAGE_BYTES];
    assert_eq!(z.get(p, key(0, 1), &mut out), Ok(Lookup::Found));
    assert_eq!(out, w);
    assert_eq!(z.get(p, key(0, 0), &mut out), Ok(Lookup::Found));
    assert_eq!(out, [0u8; PAGE_BYTES]);
    let s = z.stats();
    assert_eq!(
        (s.frames_used, s.same_filled_pages, s.logical_pages),
        (0, 2, 2)
    );
    assert_eq!(s.ratio_pct(), None);
    // A page that needs a frame is refused at limit 0.
    assert_eq!(
        z.put(p, key(0, 2), &page(ContentKind::Mixed, 1)),
        Err(TmemError::Refused(Refusal::OverLimit))
    );
}

#[test]
fn the_frame_limit_is_honoured_exactly() {
    // 20 % of a 100-page guest: 20 frames.
    let limit = MaxPoolPercent::DEFAULT.max_frames(100);
    assert_eq!(limit, 20);
    let mut z = zpool(limit);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let mut stored = Vec::new();
    let mut refused = 0;
    for id in 0..400 {
        let pg = page(ContentKind::Mixed, id);
        match z.put(p, key(0, id as u32), &pg) {
            Ok(()) => stored.push(id),
            Err(TmemError::Refused(Refusal::OverLimit)) => {
                refused += 1;
                // Refused only when a new zspage would cross the limit.
                let mut c = super::zpool::compress::Compressor::default();
                let len = c.compress(&pg).expect("compressible");
                let need = z.store().frames_needed(len).expect("fits a class");
                assert!(need > 0 && z.stats().frames_used + need > limit);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(z.stats().frames_used <= limit);
    }
    assert!(refused > 0);
    // The limit is reached, not merely approached: no class can take a
    // zspage more (the largest zspage is 4 frames).
    assert!(z.stats().frames_used + 4 > limit);
    assert_eq!(z.frames().allocated_frames(), z.stats().frames_used);
    let mut out = [0u8; PAGE_BYTES];
    for id in stored {
        assert_eq!(z.get(p, key(0, id as u32), &mut out), Ok(Lookup::Found));
        assert!(verify(ContentKind::Mixed, id, &out));
    }
    z.check_invariants();
}

#[test]
fn an_empty_frame_allocator_refuses_with_no_memory_and_leaks_nothing() {
    let mut z = zpool(u64::MAX);
    z.frames_mut().fail_after_frames = Some(3);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let mut refused = 0;
    for id in 0..200 {
        match z.put(p, key(0, id), &page(ContentKind::Mixed, u64::from(id))) {
            Ok(()) => {}
            Err(TmemError::Refused(Refusal::NoMemory)) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
        // A zspage of 4 frames that got only some is given back whole.
        assert_eq!(z.frames().allocated_frames(), z.stats().frames_used);
    }
    assert!(refused > 0);
    assert_eq!(z.stats().refused_no_memory, refused);
    z.check_invariants();
}

#[test]
fn ephemeral_pages_are_dropped_first_and_persistent_never() {
    let mut z = zpool(40);
    let eph = z.new_pool(PoolKind::EPHEMERAL).expect("pool");
    let per = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    // Fill the pool with ephemeral pages.
    let mut n_eph = 0;
    for id in 0..2000u32 {
        if z.put(eph, key(1, id), &page(ContentKind::Mixed, u64::from(id)))
            .is_ok()
        {
            n_eph += 1;
        }
    }
    assert!(z.stats().frames_used <= 40);
    assert!(n_eph > 40, "{n_eph}");
    // Older ephemeral pages were dropped for younger ones: the oldest is
    // gone, the youngest is there.
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(z.get(eph, key(1, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(z.get(eph, key(1, 1999), &mut out), Ok(Lookup::Found));
    assert!(verify(ContentKind::Mixed, 1999, &out));
    // Persistent puts push ephemeral pages out until none is left.
    let mut stored = Vec::new();
    for id in 0..2000u32 {
        match z.put(per, key(2, id), &page(ContentKind::Text, u64::from(id))) {
            Ok(()) => stored.push(id),
            Err(TmemError::Refused(Refusal::OverLimit)) => break,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let s = z.stats();
    assert_eq!(s.ephemeral_pages, 0);
    assert!(s.ephemeral_evicted >= n_eph - 1);
    assert!(s.frames_used <= 40);
    for &id in &stored {
        assert_eq!(z.get(per, key(2, id), &mut out), Ok(Lookup::Found));
        assert!(verify(ContentKind::Text, u64::from(id), &out));
    }
    // Ephemeral puts cannot push out persistent pages: they land in free
    // slots or are refused.
    for id in 0..200u32 {
        match z.put(eph, key(3, id), &page(ContentKind::Mixed, u64::from(id))) {
            Ok(()) | Err(TmemError::Refused(Refusal::OverLimit)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let s = z.stats();
    assert_eq!(s.logical_pages - s.ephemeral_pages, stored.len() as u64);
    for &id in &stored {
        assert_eq!(z.get(per, key(2, id), &mut out), Ok(Lookup::Found));
    }
    z.check_invariants();
}

#[test]
fn lowering_the_limit_drops_ephemeral_pages_and_compacts() {
    let mut z = zpool(1000);
    let eph = z.new_pool(PoolKind::EPHEMERAL).expect("pool");
    let per = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    for id in 0..300u32 {
        z.put(per, key(0, id), &page(ContentKind::Mixed, u64::from(id)))
            .expect("put");
        z.put(
            eph,
            key(0, id),
            &page(ContentKind::Mixed, 1000 + u64::from(id)),
        )
        .expect("put");
    }
    let persistent_frames = {
        let mut solo = zpool(u64::MAX);
        let p = solo.new_pool(PoolKind::PERSISTENT).expect("pool");
        for id in 0..300u32 {
            solo.put(p, key(0, id), &page(ContentKind::Mixed, u64::from(id)))
                .expect("put");
        }
        solo.stats().frames_used
    };
    assert!(z.set_max_frames(persistent_frames + 4));
    assert!(z.stats().frames_used <= persistent_frames + 4);
    // Below what the persistent pages need: they stay, the pool says so.
    assert!(!z.set_max_frames(persistent_frames / 2));
    assert_eq!(z.stats().ephemeral_pages, 0);
    let mut out = [0u8; PAGE_BYTES];
    for id in 0..300u32 {
        assert_eq!(z.get(per, key(0, id), &mut out), Ok(Lookup::Found));
        assert!(verify(ContentKind::Mixed, u64::from(id), &out));
    }
    z.check_invariants();
}

#[test]
fn compaction_frees_sparse_zspages_and_keeps_every_page() {
    let mut z = zpool(u64::MAX);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let mut rng = Rng(7);
    for id in 0..1500u32 {
        z.put(p, key(0, id), &page(ContentKind::Mixed, u64::from(id)))
            .expect("put");
    }
    let mut kept = Vec::new();
    for id in 0..1500u32 {
        if rng.below(4) == 0 {
            kept.push(id);
        } else {
            z.flush_page(p, key(0, id)).expect("flush");
        }
    }
    let before = z.stats().frames_used;
    let c = z.compact();
    let after = z.stats().frames_used;
    assert!(c.moved > 0);
    assert_eq!(c.frames_freed, before - after);
    // A quarter of the pages in well under 60 % of the frames (each class
    // keeps at most one partly filled zspage).
    assert!(after * 10 < before * 6, "{before} -> {after}");
    z.check_invariants();
    // Each class is now as dense as it can be.
    for (i, class) in CLASSES.iter().enumerate() {
        let s = z.store().class_stats(i);
        assert_eq!(s.zspages, s.objects.div_ceil(u64::from(class.slots)));
    }
    let mut out = [0u8; PAGE_BYTES];
    for id in kept {
        assert_eq!(z.get(p, key(0, id), &mut out), Ok(Lookup::Found));
        assert!(verify(ContentKind::Mixed, u64::from(id), &out));
    }
    // Nothing to do a second time.
    assert_eq!(z.compact().moved, 0);
}

#[test]
fn destroying_a_pool_returns_its_frames() {
    let mut z = zpool(u64::MAX);
    let a = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let b = z.new_pool(PoolKind::EPHEMERAL).expect("pool");
    for id in 0..100u32 {
        z.put(a, key(0, id), &page(ContentKind::Mixed, u64::from(id)))
            .expect("put");
        z.put(b, key(0, id), &page(ContentKind::Text, u64::from(id)))
            .expect("put");
    }
    z.destroy_pool(a).expect("destroy");
    z.destroy_pool(b).expect("destroy");
    assert_eq!(z.stats().frames_used, 0);
    assert_eq!(z.frames().allocated_frames(), 0);
    z.check_invariants();
}

#[test]
fn ratio_is_reported_in_percent() {
    let mut z = zpool(u64::MAX);
    let p = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    for id in 0..3000u32 {
        let _ = z.put(p, key(0, id), &page(ContentKind::Mixed, u64::from(id)));
    }
    let s = z.stats();
    let pct = s.ratio_pct().expect("frames used");
    assert_eq!(pct, s.logical_pages * 100 / s.frames_used);
    // mixed: lz4 ~2.9x, less class rounding and the partly filled last
    // zspage of each class; zero pages are free.
    assert!((230..400).contains(&pct), "{pct}");
    assert_eq!(s.frame_bytes(), s.frames_used * 4096);
}

// ---------------------------------------------------------------------
// The fake itself: capacity and drops.

#[test]
fn fake_drops_ephemeral_pages_first_at_capacity() {
    let mut f = FakeTmem::new();
    f.capacity_pages = Some(4);
    let e = f.new_pool(PoolKind::EPHEMERAL).expect("pool");
    let p = f.new_pool(PoolKind::PERSISTENT).expect("pool");
    let pg = page(ContentKind::Text, 1);
    for i in 0..3 {
        f.put(e, key(0, i), &pg).expect("put");
    }
    for i in 0..4 {
        f.put(p, key(0, i), &pg).expect("persistent put evicts");
    }
    assert_eq!(f.dropped, 3);
    assert_eq!(
        f.put(p, key(0, 9), &pg),
        Err(TmemError::Refused(Refusal::NoMemory))
    );
    f.script.push_back(Inject::DropEphemeral);
    f.capacity_pages = None;
    f.put(e, key(1, 0), &pg).expect("accepted");
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(f.get(e, key(1, 0), &mut out), Ok(Lookup::Absent));
    f.put(e, key(1, 1), &pg).expect("put");
    assert_eq!(f.drop_ephemeral(10), 1);
    f.absent = true;
    assert_eq!(
        f.new_pool(PoolKind::PERSISTENT),
        Err(TmemError::Unsupported)
    );
}

// ---------------------------------------------------------------------
// Frontswap: directed.

#[test]
fn error_types_are_small() {
    assert!(core::mem::size_of::<TmemError>() <= 8);
    assert!(core::mem::size_of::<FrontswapError>() <= 24);
}

#[test]
fn slots_map_to_linux_frontswap_keys() {
    assert_eq!(slot_key(0), Some(key(0, 0)));
    assert_eq!(slot_key(17), Some(key(1, 1)));
    assert_eq!(slot_key(MAX_SLOT), Some(key(15, u32::MAX)));
    assert_eq!(slot_key(MAX_SLOT + 1), None);
    let mut fs = Frontswap::new(FakeTmem::new()).expect("pool");
    let pg = page(ContentKind::Mixed, 1);
    assert_eq!(
        fs.store(MAX_SLOT + 1, &pg),
        Err(FrontswapError::SlotOutOfRange(MAX_SLOT + 1))
    );
}

#[test]
fn a_refused_store_is_reported_and_leaves_no_copy() {
    let mut fs = Frontswap::new(FakeTmem::new()).expect("pool");
    let a = page(ContentKind::Mixed, 1);
    let b = page(ContentKind::Mixed, 2);
    assert_eq!(fs.store(5, &a), Ok(Tier::Primary));
    assert_eq!(fs.curr_pages(), 1);
    fs.primary_mut()
        .script
        .push_back(Inject::Refuse(Refusal::NoMemory));
    let before = b;
    assert_eq!(
        fs.store(5, &b),
        Err(FrontswapError::Refused {
            primary: TmemError::Refused(Refusal::NoMemory),
            fallback: None
        })
    );
    assert_eq!(b, before, "the caller's page is untouched");
    // The slot's old copy must not come back: the caller holds a newer one.
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(fs.load(5, &mut out), Err(FrontswapError::NotStored(5)));
    assert_eq!(fs.curr_pages(), 0);
    assert_eq!(fs.primary().pages(), 0);
    let s = fs.stats();
    assert_eq!((s.pageouts, s.refused, s.lost), (1, 1, 0));
    // A hypervisor error is a refusal too, for the caller.
    fs.primary_mut()
        .script
        .push_back(Inject::Fail(TmemError::Hypervisor(22)));
    assert!(matches!(
        fs.store(6, &a),
        Err(FrontswapError::Refused { .. })
    ));
}

#[test]
fn tiered_frontswap_falls_back_per_page_and_loads_from_where_the_page_is() {
    let mut primary = FakeTmem::new();
    primary.capacity_pages = Some(10);
    let mut fs = Frontswap::tiered(primary, zpool(u64::MAX)).expect("pools");
    let mut tiers = Vec::new();
    for slot in 0..30u64 {
        tiers.push(
            fs.store(slot, &page(ContentKind::Mixed, slot))
                .expect("store"),
        );
    }
    assert_eq!(tiers.iter().filter(|&&t| t == Tier::Primary).count(), 10);
    assert_eq!(fs.tier_pages(Tier::Primary), 10);
    assert_eq!(fs.tier_pages(Tier::Fallback), 20);
    assert_eq!(fs.curr_pages(), 30);
    assert_eq!(fs.stats().fell_back, 20);
    let mut out = [0u8; PAGE_BYTES];
    for slot in 0..30u64 {
        assert_eq!(fs.load(slot, &mut out), Ok(tiers[slot as usize]));
        assert!(verify(ContentKind::Mixed, slot, &out));
    }
    // Free a primary slot; restore a fallback slot: it moves to the
    // primary and the fallback's copy is flushed.
    fs.invalidate(0).expect("invalidate");
    assert_eq!(
        fs.store(29, &page(ContentKind::Text, 29)),
        Ok(Tier::Primary)
    );
    assert_eq!(fs.tier_pages(Tier::Fallback), 19);
    assert_eq!(fs.fallback().map(|z| z.stats().logical_pages), Some(19));
    assert_eq!(fs.load(29, &mut out), Ok(Tier::Primary));
    assert!(verify(ContentKind::Text, 29, &out));
    // Both refuse: nothing stays anywhere.
    fs.primary_mut()
        .script
        .push_back(Inject::Refuse(Refusal::NoMemory));
    assert!(matches!(
        fs.store(3, &page(ContentKind::Random, 3)),
        Err(FrontswapError::Refused {
            fallback: Some(TmemError::Refused(Refusal::Incompressible)),
            ..
        })
    ));
    assert_eq!(fs.tier_of(3), None);
    assert_eq!(fs.curr_pages(), 28);
    // take = load + invalidate.
    assert_eq!(fs.take(12, &mut out), Ok(Tier::Fallback));
    assert!(verify(ContentKind::Mixed, 12, &out));
    assert_eq!(fs.tier_of(12), None);
    fs.invalidate_all().expect("flush area");
    assert_eq!(fs.curr_pages(), 0);
    assert_eq!(fs.primary().pages(), 0);
    assert_eq!(fs.fallback().map(|z| z.stats().frames_used), Some(0));
    assert_eq!(fs.stats().lost, 0);
}

#[test]
fn a_backend_that_loses_a_persistent_page_is_caught() {
    let mut fs = Frontswap::new(FakeTmem::new()).expect("pool");
    fs.store(1, &page(ContentKind::Mixed, 1)).expect("store");
    // Break the contract behind frontswap's back.
    let p = PoolId(0);
    fs.primary_mut().flush_page(p, key(1, 0)).expect("flush");
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(
        fs.load(1, &mut out),
        Err(FrontswapError::Lost(Tier::Primary))
    );
    assert_eq!(fs.stats().lost, 1);
    assert_eq!(fs.curr_pages(), 0);
    // A failing get is an error, not a loss; the slot stays.
    fs.store(2, &page(ContentKind::Mixed, 2)).expect("store");
    fs.primary_mut()
        .script
        .push_back(Inject::Fail(TmemError::Hypervisor(14)));
    assert_eq!(
        fs.load(2, &mut out),
        Err(FrontswapError::Backend(
            Tier::Primary,
            TmemError::Hypervisor(14)
        ))
    );
    assert_eq!(fs.load(2, &mut out), Ok(Tier::Primary));
    assert!(verify(ContentKind::Mixed, 2, &out));
}

// ---------------------------------------------------------------------
// The size-class store: properties.

#[derive(Clone, Debug)]
enum StoreOp {
    Alloc(usize),
    Free(usize),
    Compact,
}

fn store_op() -> impl Strategy<Value = StoreOp> {
    prop_oneof![
        6 => (1usize..=MAX_CLASS_BYTES).prop_map(StoreOp::Alloc),
        // Mostly small and mid objects, like compressed pages.
        4 => (20usize..1600).prop_map(StoreOp::Alloc),
        6 => any::<usize>().prop_map(StoreOp::Free),
        1 => Just(StoreOp::Compact),
    ]
}

/// The bytes of object `tag`, `len` long.
fn pattern(tag: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag.wrapping_mul(31).wrapping_add(i as u64 * 7) >> 2) as u8)
        .collect()
}

fn check_store(store: &ZsStore<VecFrames>, live: &[(Handle, usize, u64)]) {
    store.check_invariants();
    assert_eq!(store.frames_used(), store.frame_source().allocated_frames());
    assert_eq!(store.objects(), live.len() as u64);
    // No two live objects share a byte.
    let mut ranges: Vec<(u64, usize, usize)> = live
        .iter()
        .flat_map(|&(h, len, _)| {
            store
                .extents(h, len.max(1))
                .into_iter()
                .map(|(pfn, r)| (pfn, r.start, r.end))
        })
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(
            w[0].0 != w[1].0 || w[0].2 <= w[1].1,
            "overlap: {:?} {:?}",
            w[0],
            w[1]
        );
    }
    let mut scratch = [0u8; MAX_CLASS_BYTES];
    for &(h, len, tag) in live {
        assert_eq!(store.read(h, len, &mut scratch), &pattern(tag, len)[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn size_class_store_never_overlaps_and_accounts_frames_exactly(
        ops in proptest::collection::vec(store_op(), 1..200),
        max_frames in 4u64..64,
    ) {
        let mut store = ZsStore::new(VecFrames::new(0x40, 256), max_frames);
        let mut live: Vec<(Handle, usize, u64)> = Vec::new();
        for (tag, op) in ops.into_iter().enumerate() {
            let tag = tag as u64;
            match op {
                StoreOp::Alloc(len) => {
                    let before = store.frames_used();
                    let need = store.frames_needed(len).expect("fits");
                    match store.alloc(len) {
                        Ok(h) => {
                            prop_assert_eq!(store.frames_used(), before + need);
                            store.write(h, &pattern(tag, len));
                            live.push((h, len, tag));
                        }
                        Err(_) => {
                            prop_assert!(need > 0 && before + need > max_frames);
                            prop_assert_eq!(store.frames_used(), before);
                        }
                    }
                    prop_assert!(store.frames_used() <= max_frames);
                }
                StoreOp::Free(i) if !live.is_empty() => {
                    let (h, len, _) = live.swap_remove(i % live.len());
                    store.free(h);
                    // The freed slot is reusable at once without a frame,
                    // unless its zspage went away with it.
                    if store.frames_needed(len) == Some(0) {
                        let before = store.frames_used();
                        let h2 = store.alloc(len).expect("free slot");
                        prop_assert_eq!(store.frames_used(), before);
                        store.write(h2, &pattern(tag, len));
                        live.push((h2, len, tag));
                    }
                }
                StoreOp::Free(_) => {}
                StoreOp::Compact => {
                    let promised = store.begin_compaction();
                    let before = store.frames_used();
                    for entry in live.iter_mut() {
                        if store.is_draining(entry.0) {
                            let h = store.relocate(entry.0, entry.1);
                            prop_assert!(h.is_some(), "relocation found no slot");
                            if let Some(h) = h {
                                entry.0 = h;
                            }
                        }
                    }
                    store.end_compaction();
                    prop_assert_eq!(before - store.frames_used(), promised);
                    for (i, class) in CLASSES.iter().enumerate() {
                        let s = store.class_stats(i);
                        prop_assert_eq!(s.zspages, s.objects.div_ceil(u64::from(class.slots)));
                    }
                }
            }
            check_store(&store, &live);
        }
        for (h, _, _) in live.drain(..) {
            store.free(h);
        }
        prop_assert_eq!(store.frames_used(), 0);
        prop_assert_eq!(store.frame_source().allocated_frames(), 0);
    }

    #[test]
    fn class_for_is_the_smallest_fitting_class(len in 0usize..=MAX_CLASS_BYTES) {
        let c = class_for(len).expect("fits");
        prop_assert!(usize::from(CLASSES[c].slot_bytes) >= len);
        prop_assert!(c == 0 || usize::from(CLASSES[c - 1].slot_bytes) < len);
    }
}

// ---------------------------------------------------------------------
// Long random runs against model maps.

/// Content of page `id` in the random runs: mostly `mixed`, some text,
/// zero and random (refused) pages.
fn kind_of(id: u64) -> ContentKind {
    match id % 20 {
        0 => ContentKind::Zero,
        1 => ContentKind::Random,
        2..=4 => ContentKind::Text,
        _ => ContentKind::Mixed,
    }
}

/// `ops` random operations on a zpool with a persistent and an
/// ephemeral pool, checked against a model map after every one. Returns
/// (mismatches, puts refused, ephemeral misses).
fn zpool_model_run(ops: u64, seed: u64) -> (u64, u64, u64) {
    let mut rng = Rng(seed);
    let mut limit = 300u64;
    let mut ceiling = limit;
    let mut z = ZPool::new(VecFrames::new(0x1000, 2048), limit);
    let per = z.new_pool(PoolKind::PERSISTENT).expect("pool");
    let eph = z.new_pool(PoolKind::EPHEMERAL).expect("pool");
    let mut model: [BTreeMap<Key, u64>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let (mut mismatches, mut refused, mut eph_misses) = (0, 0, 0);
    let mut pg = [0u8; PAGE_BYTES];
    let mut next_id = 0u64;
    for op in 0..ops {
        let which = usize::from(rng.below(4) == 0);
        let pool = [per, eph][which];
        let k = key(rng.below(6), rng.below(700) as u32);
        match rng.below(100) {
            0..=44 => {
                next_id += 1;
                let id = next_id;
                fill(kind_of(id), id, &mut pg);
                match z.put(pool, k, &pg) {
                    Ok(()) => {
                        model[which].insert(k, id);
                    }
                    Err(TmemError::Refused(_)) => {
                        refused += 1;
                        model[which].remove(&k);
                    }
                    Err(_) => mismatches += 1,
                }
            }
            45..=84 => match (z.get(pool, k, &mut pg), model[which].get(&k).copied()) {
                (Ok(Lookup::Found), Some(id)) => {
                    if !verify(kind_of(id), id, &pg) {
                        mismatches += 1;
                    }
                    if which == 1 {
                        model[1].remove(&k);
                    }
                }
                (Ok(Lookup::Absent), None) => {}
                // Ephemeral pages may have been dropped.
                (Ok(Lookup::Absent), Some(_)) if which == 1 => {
                    eph_misses += 1;
                    model[1].remove(&k);
                }
                _ => mismatches += 1,
            },
            85..=96 => {
                z.flush_page(pool, k).expect("flush");
                model[which].remove(&k);
            }
            97..=98 => {
                z.flush_object(pool, k.object).expect("flush object");
                model[which].retain(|m, _| m.object != k.object);
            }
            _ => {
                if rng.below(4) == 0 {
                    // Move the limit; the pool may stay above a lowered
                    // limit only by what its persistent pages need.
                    limit = 150 + rng.below(300);
                    z.set_max_frames(limit);
                    ceiling = limit.max(z.stats().frames_used);
                } else {
                    z.compact();
                }
            }
        }
        let s = z.stats();
        if s.frames_used <= limit {
            ceiling = limit;
        }
        assert!(
            s.frames_used <= ceiling,
            "op {op}: {} > {ceiling}",
            s.frames_used
        );
        // Persistent pages are all there; ephemeral at most the model's.
        let live_eph = s.ephemeral_pages;
        assert_eq!(s.logical_pages - live_eph, model[0].len() as u64, "op {op}");
        assert!(live_eph <= model[1].len() as u64);
        if op % 1024 == 0 {
            z.check_invariants();
        }
    }
    // Every persistent page, at the end.
    for (&k, &id) in &model[0] {
        match z.get(per, k, &mut pg) {
            Ok(Lookup::Found) if verify(kind_of(id), id, &pg) => {}
            _ => mismatches += 1,
        }
    }
    z.check_invariants();
    (mismatches, refused, eph_misses)
}

#[test]
fn zpool_matches_a_model_under_random_operations() {
    let (mismatches, refused, eph_misses) = zpool_model_run(6_000, 0x5eed);
    assert_eq!(mismatches, 0);
    assert!(refused > 0 && eph_misses > 0, "{refused} {eph_misses}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "10^6 lz4 pages: run with --release")]
fn zpool_matches_a_model_under_a_million_random_operations() {
    let (mismatches, refused, eph_misses) = zpool_model_run(1_000_000, 0xfeed_f00d);
    assert_eq!(mismatches, 0);
    assert!(refused > 0 && eph_misses > 0, "{refused} {eph_misses}");
}

/// `ops` random operations on tiered frontswap (a fake primary that
/// fills up, refuses and fails on command; a zpool behind it), checked
/// against a model after every one. Returns (mismatches, stores refused,
/// stores that fell back).
fn frontswap_model_run(ops: u64, seed: u64) -> (u64, u64, u64) {
    let mut rng = Rng(seed);
    let mut primary = FakeTmem::new();
    primary.capacity_pages = Some(400);
    let mut fs =
        Frontswap::tiered(primary, ZPool::new(VecFrames::new(0x1000, 1024), 250)).expect("pools");
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let mut mismatches = 0;
    let mut pg = [0u8; PAGE_BYTES];
    let mut next_id = 0u64;
    for op in 0..ops {
        let slot = rng.below(3000);
        // Script the primary now and then.
        let inject = match rng.below(50) {
            0 => Some(Inject::Refuse(Refusal::NoMemory)),
            1 => Some(Inject::Fail(TmemError::Hypervisor(12))),
            _ => None,
        };
        fs.primary_mut().script.clear();
        if let Some(i) = inject {
            fs.primary_mut().script.push_back(i);
        }
        match rng.below(100) {
            0..=49 => {
                next_id += 1;
                let id = next_id;
                fill(kind_of(id), id, &mut pg);
                let copy = pg;
                match fs.store(slot, &pg) {
                    Ok(_) => {
                        model.insert(slot, id);
                    }
                    Err(FrontswapError::Refused { .. }) => {
                        model.remove(&slot);
                    }
                    Err(_) => mismatches += 1,
                }
                if copy != pg {
                    mismatches += 1;
                }
            }
            50..=84 => {
                let take = rng.below(4) == 0;
                let r = if take {
                    fs.take(slot, &mut pg)
                } else {
                    fs.load(slot, &mut pg)
                };
                match (r, model.get(&slot).copied()) {
                    (Ok(_), Some(id)) => {
                        if !verify(kind_of(id), id, &pg) {
                            mismatches += 1;
                        }
                        if take {
                            model.remove(&slot);
                        }
                    }
                    (Err(FrontswapError::NotStored(_)), None) => {}
                    // An injected failure of the primary's get.
                    (Err(FrontswapError::Backend(Tier::Primary, _)), Some(_))
                        if matches!(inject, Some(Inject::Fail(_))) => {}
                    _ => mismatches += 1,
                }
            }
            _ => {
                match fs.invalidate(slot) {
                    Ok(()) => {}
                    Err(FrontswapError::Backend(Tier::Primary, _))
                        if matches!(inject, Some(Inject::Fail(_))) => {}
                    Err(_) => mismatches += 1,
                }
                model.remove(&slot);
            }
        }
        assert_eq!(fs.curr_pages(), model.len() as u64, "op {op}");
        assert_eq!(
            fs.tier_pages(Tier::Primary) + fs.tier_pages(Tier::Fallback),
            fs.curr_pages()
        );
        if op % 1024 == 0 {
            if let Some(z) = fs.fallback() {
                z.check_invariants();
                assert!(z.stats().frames_used <= 250);
            }
        }
    }
    fs.primary_mut().script.clear();
    for (&slot, &id) in &model {
        match fs.load(slot, &mut pg) {
            Ok(_) if verify(kind_of(id), id, &pg) => {}
            _ => mismatches += 1,
        }
    }
    let s = fs.stats();
    assert_eq!(s.lost, 0);
    (mismatches, s.refused, s.fell_back)
}

#[test]
fn tiered_frontswap_matches_a_model_under_random_operations() {
    let (mismatches, refused, fell_back) = frontswap_model_run(6_000, 0xabcd);
    assert_eq!(mismatches, 0);
    assert!(refused > 0 && fell_back > 0, "{refused} {fell_back}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "10^6 lz4 pages: run with --release")]
fn tiered_frontswap_matches_a_model_under_a_million_random_operations() {
    let (mismatches, refused, fell_back) = frontswap_model_run(1_000_000, 0x1234_5678);
    assert_eq!(mismatches, 0);
    assert!(refused > 0 && fell_back > 0, "{refused} {fell_back}");
}

#[test]
fn single_tier_frontswap_on_zpool_never_loses_a_page() {
    let mut fs = Frontswap::new(ZPool::new(VecFrames::new(0, 512), 64)).expect("pool");
    let mut resident = BTreeMap::new();
    let mut model = BTreeMap::new();
    let mut pg = [0u8; PAGE_BYTES];
    for slot in 0..2000u64 {
        fill(kind_of(slot), slot, &mut pg);
        match fs.store(slot, &pg) {
            Ok(t) => {
                assert_eq!(t, Tier::Primary);
                model.insert(slot, slot);
            }
            Err(FrontswapError::Refused { .. }) => {
                resident.insert(slot, pg);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(!resident.is_empty() && !model.is_empty());
    assert_eq!(fs.stats().refused, resident.len() as u64);
    assert_eq!(fs.curr_pages() + resident.len() as u64, 2000);
    for (&slot, &id) in &model {
        assert!(fs.load(slot, &mut pg).is_ok());
        assert!(verify(kind_of(id), id, &pg));
    }
    for (&slot, p) in &resident {
        assert!(verify(kind_of(slot), slot, p));
    }
    assert!(fs.primary().stats().frames_used <= 64);
}

/// A closed primary is not asked: the page goes to the fallback, an older
/// copy of the slot in the primary is flushed, and what the primary holds
/// still comes back.
#[test]
fn a_closed_primary_sends_new_pages_to_the_fallback() {
    let mut fs = Frontswap::tiered(FakeTmem::new(), zpool(u64::MAX)).expect("pools");
    for slot in 0..4u64 {
        let t = fs.store(slot, &page(ContentKind::Mixed, slot));
        assert_eq!(t, Ok(Tier::Primary));
    }
    fs.set_primary_admits(false);
    assert!(!fs.primary_admits());
    assert_eq!(
        fs.store(9, &page(ContentKind::Mixed, 9)),
        Ok(Tier::Fallback)
    );
    // Slot 2 again, newer content: the primary's copy must go.
    assert_eq!(fs.store(2, &page(ContentKind::Text, 2)), Ok(Tier::Fallback));
    assert_eq!(fs.primary().pages(), 3, "the stale copy was flushed");
    assert_eq!(fs.tier_pages(Tier::Primary), 3);
    assert_eq!(fs.tier_pages(Tier::Fallback), 2);
    let s = fs.stats();
    assert_eq!((s.primary_closed, s.fell_back), (2, 0));
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(fs.load(2, &mut out), Ok(Tier::Fallback));
    assert!(verify(ContentKind::Text, 2, &out));
    assert_eq!(fs.load(1, &mut out), Ok(Tier::Primary));
    assert!(verify(ContentKind::Mixed, 1, &out));
    fs.set_primary_admits(true);
    assert_eq!(
        fs.store(10, &page(ContentKind::Mixed, 10)),
        Ok(Tier::Primary)
    );
}
