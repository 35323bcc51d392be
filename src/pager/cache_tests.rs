//! Cache pages and cleancache against a model, on both backends the guest
//! builds: `zpool` alone, and Xen's tmem (the byte-exact fake of 4.12)
//! with `zpool` behind it. Faults come from the fake MMU as the CPU
//! raises them; the fakes drop ephemeral pages on command.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::test_rig::{allocator, balloon, full_xen, KERNEL};
use super::*;
use crate::balloon::Balloon;
use crate::mm::direct::PAGE_BYTES;
use crate::mm::fault::{with_fault_handler, Shared};
use crate::mm::frame::FrameAllocator;
use crate::mm::vm::RegionAccess;
use crate::swap::content::{fill, verify, ContentKind};
use crate::swap::frontswap::Frontswap;
use crate::swap::xen_fake::{Decoded, FakeXenTmem};
use crate::swap::xen_tmem::XenTmem;
use crate::swap::zpool::ZPool;
use crate::testing::fake_held::FakeHeldFrames;
use crate::testing::fake_mmu::{FakeAccess, FakeMmu};
use crate::testing::fake_xen::FakeXen;
use crate::xen::abi;

type Swap = GuestSwap<FakeXenTmem, FakeHeldFrames>;
type Ctx<'a, 'f> = PagerCtx<'a, 'f, FakeMmu, Swap, FakeXen>;

/// A guest of `frames` frames with no room to grow, its swap `tiered`
/// (Xen's tmem holding at most `xen_pages`) or `zpool` alone.
struct Rig {
    fa: FrameAllocator<'static>,
    pager: Pager,
    mmu: FakeMmu,
    access: FakeAccess,
    swap: Swap,
    balloon: Balloon,
    xen: FakeXen,
}

fn rig(frames: u64, region: u64, watermark: u64, pool_max: u64, xen_pages: Option<u64>) -> Rig {
    let fa = allocator(frames, KERNEL);
    let mmu = FakeMmu::new(region);
    let access = mmu.access();
    let pool = ZPool::new(PoolStock::new(FakeHeldFrames::default()), pool_max);
    let swap = match xen_pages {
        Some(cap) => {
            let mut x = FakeXenTmem::new(0x9_0000);
            x.capacity_pages = Some(cap);
            GuestSwap::Tiered(Frontswap::tiered(XenTmem::new(x), pool).unwrap())
        }
        None => GuestSwap::Pool(Frontswap::new(pool).unwrap()),
    };
    let xen = full_xen(frames);
    let balloon = balloon(&fa);
    Rig {
        fa,
        pager: Pager::new(region, watermark),
        mmu,
        access,
        swap,
        balloon,
        xen,
    }
}

fn with_ctx<T>(rig: &mut Rig, f: impl FnOnce(&Shared<Ctx<'_, '_>>, &mut FakeAccess) -> T) -> T {
    let shared = Shared::new(PagerCtx {
        pager: &mut rig.pager,
        mmu: &mut rig.mmu,
        swap: &mut rig.swap,
        frames: &mut rig.fa,
        balloon: &mut rig.balloon,
        mem: &mut rig.xen,
        heap_free_bytes: unbounded_heap,
    });
    let access = &mut rig.access;
    let r = with_fault_handler(&shared, || f(&shared, access));
    rig.fa.check_invariants().unwrap();
    r
}

/// Drops up to `n` ephemeral pages behind the guest's back: Xen evicts
/// (oldest first), or `zpool` is squeezed to fewer frames and given its
/// limit back.
fn backend_drop(swap: &mut Swap, n: u64) {
    match swap {
        GuestSwap::Tiered(f) => {
            f.primary_mut().hypervisor_mut().evict_ephemeral(n);
        }
        GuestSwap::Pool(f) => {
            let z = f.primary_mut();
            let s = z.stats();
            z.set_max_frames(s.frames_used.saturating_sub(n));
            z.set_max_frames(s.max_frames);
        }
    }
}

fn page_of(kind: ContentKind, id: u64) -> Box<Page> {
    let mut p = Box::new([0u8; PAGE_BYTES]);
    fill(kind, id, &mut p);
    p
}

/// The workload's protocol for a cache page: write its content, mark it
/// clean.
fn build(ctx: &Shared<Ctx<'_, '_>>, access: &mut FakeAccess, v: Vpn, kind: ContentKind, id: u64) {
    access.store(v, &page_of(kind, id)).unwrap();
    assert!(ctx.lock().mark_clean(v));
}

/// Reads a cache page as the workload does: a miss is recomputed and
/// read again. Returns whether it missed; the page read is in `buf`.
fn read_cache(
    ctx: &Shared<Ctx<'_, '_>>,
    access: &mut FakeAccess,
    v: Vpn,
    kind: ContentKind,
    id: u64,
    buf: &mut Page,
) -> bool {
    access.load(v, buf).unwrap();
    if !ctx.lock().cache_missed(v) {
        return false;
    }
    build(ctx, access, v, kind, id);
    access.load(v, buf).unwrap();
    true
}

#[test]
fn clean_pages_go_to_xen_ephemeral_pool_and_come_back_or_are_recomputed() {
    let mut r = rig(512, 1024, 16, 256, Some(10_000));
    let n = 200u64;
    let (hits, misses) = with_ctx(&mut r, |ctx, access| {
        let vs: Vec<Vpn> = (0..n).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vs.iter().enumerate() {
            build(ctx, access, v, ContentKind::Text, i as u64);
        }
        // Everything out: the clean pages go to cleancache, not frontswap.
        let freed = ctx.lock().reclaim(n);
        assert_eq!(freed, n);
        {
            let mut c = ctx.lock();
            assert_eq!(c.swap.pages(), 0, "nothing in frontswap");
            assert_eq!(c.pager.counts().cached_pages, n);
            assert_eq!(c.pager.stats().cache_puts, n);
            // Xen drops 50 of them.
            backend_drop(c.swap, 50);
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        let mut misses = 0;
        for (i, &v) in vs.iter().enumerate() {
            if read_cache(ctx, access, v, ContentKind::Text, i as u64, &mut buf) {
                misses += 1;
            }
            assert!(verify(ContentKind::Text, i as u64, &buf), "page {i}");
        }
        let c = ctx.lock();
        let s = c.pager.stats();
        assert_eq!(s.cache_hits + s.cache_misses, n);
        assert_eq!(s.cache_misses, misses);
        assert_eq!(c.swap.cache_stats().lookups(), n);
        assert_eq!(c.pager.counts().clean_pages, n);
        c.pager.check().unwrap();
        (s.cache_hits, s.cache_misses)
    });
    assert_eq!((hits, misses), (150, 50), "Xen evicted the oldest 50");
    // The pool was Xen's, ephemeral, beside frontswap's persistent one.
    let GuestSwap::Tiered(f) = &r.swap else {
        unreachable!()
    };
    let pools: Vec<u32> = f
        .primary()
        .hypervisor()
        .ops
        .iter()
        .filter_map(|o| match o {
            Decoded::NewPool { flags, .. } => Some(*flags),
            _ => None,
        })
        .collect();
    assert_eq!(pools.len(), 2);
    assert_ne!(pools[0] & abi::TMEM_POOL_PERSIST, 0);
    assert_eq!(pools[1] & abi::TMEM_POOL_PERSIST, 0, "ephemeral");
    assert_eq!(f.cleancache().stats().fallback_puts, 0);
}

#[test]
fn written_clean_pages_go_to_frontswap_and_freed_ones_are_flushed() {
    let mut r = rig(512, 1024, 16, 256, None);
    with_ctx(&mut r, |ctx, access| {
        let a = ctx.lock().alloc_page().unwrap();
        let b = ctx.lock().alloc_page().unwrap();
        build(ctx, access, a, ContentKind::Mixed, 1);
        build(ctx, access, b, ContentKind::Mixed, 2);
        // `a` is written after it was marked clean: it is data now.
        access.store(a, &page_of(ContentKind::Mixed, 3)).unwrap();
        assert_eq!(ctx.lock().reclaim(2), 2);
        {
            let c = ctx.lock();
            assert_eq!(c.pager.state(a), Some(PageState::Swapped));
            assert_eq!(c.pager.state(b), Some(PageState::Cached));
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        access.load(a, &mut buf).unwrap();
        assert!(verify(ContentKind::Mixed, 3, &buf));
        assert!(!ctx.lock().cache_missed(a));
        // Freed while in cleancache: flushed.
        ctx.lock().free_page(b);
        let c = ctx.lock();
        let cs = c.swap.cache_stats();
        assert_eq!((cs.puts, cs.flushes), (1, 1));
        let GuestSwap::Pool(f) = &*c.swap else {
            unreachable!()
        };
        assert_eq!(f.primary().stats().ephemeral_pages, 0);
    });
}

/// Reclaim takes cold clean cache pages before cold data pages, even
/// when frontswap could take the data.
#[test]
fn reclaim_prefers_clean_pages() {
    let mut r = rig(1024, 2048, 16, 512, None);
    with_ctx(&mut r, |ctx, access| {
        let data: Vec<Vpn> = (0..100).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in data.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Text, i as u64))
                .unwrap();
        }
        let cache: Vec<Vpn> = (0..100).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in cache.iter().enumerate() {
            build(ctx, access, v, ContentKind::Text, 1000 + i as u64);
        }
        assert_eq!(ctx.lock().reclaim(100), 100);
        let c = ctx.lock();
        assert_eq!(c.pager.counts().cached_pages, 100);
        assert_eq!(c.swap.pages(), 0, "no data page went out");
        // With the clean ones gone, data goes next.
        drop(c);
        assert_eq!(ctx.lock().reclaim(10), 10);
        assert_eq!(ctx.lock().swap.pages(), 10);
    });
}

/// A write that faults on a cache page cleancache lost: the miss maps
/// zeros, the write lands, and the page is data from then on (not
/// reported as a miss, paged out to frontswap).
#[test]
fn a_write_after_a_miss_is_data() {
    let mut r = rig(512, 1024, 16, 256, Some(1000));
    with_ctx(&mut r, |ctx, access| {
        let v = ctx.lock().alloc_page().unwrap();
        build(ctx, access, v, ContentKind::Text, 1);
        assert_eq!(ctx.lock().reclaim(1), 1);
        backend_drop(ctx.lock().swap, 1);
        access.store(v, &page_of(ContentKind::Text, 2)).unwrap();
        assert_eq!(ctx.lock().pager.stats().cache_misses, 1);
        assert!(!ctx.lock().cache_missed(v), "written since the miss");
        assert_eq!(ctx.lock().reclaim(1), 1);
        assert_eq!(ctx.lock().pager.state(v), Some(PageState::Swapped));
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        access.load(v, &mut buf).unwrap();
        assert!(verify(ContentKind::Text, 2, &buf));
    });
}

/// In `zpool`, frontswap's pages push cleancache's out (ephemeral pages
/// are dropped first), and no committed page is lost.
#[test]
fn frontswap_pressure_drops_cleancache_first_in_zpool() {
    let mut r = rig(700, 4096, 16, 64, None);
    with_ctx(&mut r, |ctx, access| {
        let cache: Vec<Vpn> = (0..150).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in cache.iter().enumerate() {
            build(ctx, access, v, ContentKind::Text, i as u64);
        }
        ctx.lock().reclaim(150);
        let before = ctx.lock().swap.figures().pool_frames;
        assert!(before > 0);
        let data: Vec<Vpn> = (0..400).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in data.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Text, 1000 + i as u64))
                .unwrap();
        }
        ctx.lock().reclaim(400);
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        for (i, &v) in data.iter().enumerate() {
            access.load(v, &mut buf).unwrap();
            assert!(verify(ContentKind::Text, 1000 + i as u64, &buf));
        }
        let mut misses = 0;
        for (i, &v) in cache.iter().enumerate() {
            misses += u64::from(read_cache(
                ctx,
                access,
                v,
                ContentKind::Text,
                i as u64,
                &mut buf,
            ));
            assert!(verify(ContentKind::Text, i as u64, &buf));
        }
        let c = ctx.lock();
        let GuestSwap::Pool(f) = &*c.swap else {
            unreachable!()
        };
        assert!(f.primary().stats().ephemeral_evicted > 0);
        assert!(misses > 0, "pressure dropped cache pages");
        assert_eq!(c.pager.stats().lost_pages, 0);
        c.pager.check().unwrap();
    });
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A new cache page, built and marked clean.
    Build,
    /// A cache page read back (recomputed on a miss).
    ReadCache(usize),
    /// A cache page written over: data from now on.
    Dirty(usize),
    /// A committed page, written.
    Write(u8),
    /// A committed page read back.
    Read(usize),
    /// Any page freed.
    Free(usize),
    /// Reclaim that many pages.
    Reclaim(u8),
    /// Reclaim for a balloon target that many pages under the populated.
    Pressure(u8),
    /// The backend drops that many ephemeral pages.
    BackendDrop(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Build),
        4 => any::<usize>().prop_map(Op::ReadCache),
        1 => any::<usize>().prop_map(Op::Dirty),
        2 => any::<u8>().prop_map(Op::Write),
        2 => any::<usize>().prop_map(Op::Read),
        1 => any::<usize>().prop_map(Op::Free),
        2 => any::<u8>().prop_map(Op::Reclaim),
        1 => any::<u8>().prop_map(Op::Pressure),
        1 => any::<u8>().prop_map(Op::BackendDrop),
    ]
}

/// What a page of the model holds.
#[derive(Clone, Copy, Debug)]
struct Want {
    kind: ContentKind,
    id: u64,
    /// A cache page (recomputable) rather than data.
    cache: bool,
}

fn run_model(ops: Vec<Op>, xen_pages: Option<u64>) -> Result<(), TestCaseError> {
    let mut r = rig(360, 2048, 24, 96, xen_pages);
    with_ctx(&mut r, |ctx, access| {
        let mut live: Vec<Vpn> = Vec::new();
        let mut model: BTreeMap<Vpn, Want> = BTreeMap::new();
        let mut next_id = 0u64;
        let mut lookups = 0u64;
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        let kinds = [ContentKind::Text, ContentKind::Mixed, ContentKind::Random];
        let pick = |live: &Vec<Vpn>, model: &BTreeMap<Vpn, Want>, i: usize, cache: bool| {
            let of: Vec<Vpn> = live
                .iter()
                .copied()
                .filter(|v| model[v].cache == cache)
                .collect();
            (!of.is_empty()).then(|| of[i % of.len()])
        };
        for op in ops {
            match op {
                Op::Build | Op::Write(_) => {
                    let Some(v) = ctx.lock().alloc_page() else {
                        continue;
                    };
                    next_id += 1;
                    let k = match op {
                        Op::Write(k) => kinds[usize::from(k) % kinds.len()],
                        _ => kinds[(next_id % 3) as usize],
                    };
                    let cache = matches!(op, Op::Build);
                    if cache {
                        build(ctx, access, v, k, next_id);
                    } else {
                        access.store(v, &page_of(k, next_id)).unwrap();
                    }
                    live.push(v);
                    model.insert(
                        v,
                        Want {
                            kind: k,
                            id: next_id,
                            cache,
                        },
                    );
                }
                Op::ReadCache(i) => {
                    let Some(v) = pick(&live, &model, i, true) else {
                        continue;
                    };
                    let w = model[&v];
                    let was_cached = ctx.lock().pager.state(v) == Some(PageState::Cached);
                    lookups += u64::from(was_cached);
                    let missed = read_cache(ctx, access, v, w.kind, w.id, &mut buf);
                    prop_assert!(!missed || was_cached, "a miss without a lookup");
                    prop_assert!(verify(w.kind, w.id, &buf), "cache page {v:#x}");
                }
                Op::Dirty(i) => {
                    let Some(v) = pick(&live, &model, i, true) else {
                        continue;
                    };
                    // Read first (as the workload would), then overwrite.
                    let w = model[&v];
                    let was_cached = ctx.lock().pager.state(v) == Some(PageState::Cached);
                    lookups += u64::from(was_cached);
                    read_cache(ctx, access, v, w.kind, w.id, &mut buf);
                    prop_assert!(verify(w.kind, w.id, &buf), "cache page {v:#x}");
                    next_id += 1;
                    access.store(v, &page_of(w.kind, next_id)).unwrap();
                    model.insert(
                        v,
                        Want {
                            id: next_id,
                            cache: false,
                            ..w
                        },
                    );
                }
                Op::Read(i) => {
                    let Some(v) = pick(&live, &model, i, false) else {
                        continue;
                    };
                    let w = model[&v];
                    access.load(v, &mut buf).unwrap();
                    prop_assert!(verify(w.kind, w.id, &buf), "data page {v:#x}");
                    prop_assert!(!ctx.lock().cache_missed(v));
                }
                Op::Free(i) if !live.is_empty() => {
                    let v = live.swap_remove(i % live.len());
                    ctx.lock().free_page(v);
                    model.remove(&v);
                }
                Op::Reclaim(n) => {
                    ctx.lock().reclaim(u64::from(n));
                }
                Op::Pressure(n) => {
                    let mut c = ctx.lock();
                    let populated = c.frames.counts().populated_pages();
                    c.reclaim_for_target(populated.saturating_sub(u64::from(n)), 256);
                }
                Op::BackendDrop(n) => {
                    backend_drop(ctx.lock().swap, u64::from(n % 32));
                }
                _ => {}
            }
            let c = ctx.lock();
            prop_assert_eq!(c.pager.check(), Ok(()));
            prop_assert_eq!(c.pager.counts().swapped_pages, c.swap.pages());
            prop_assert_eq!(c.pager.stats().lost_pages, 0);
            let s = c.pager.stats();
            prop_assert_eq!(s.cache_hits + s.cache_misses, lookups);
            let cs = c.swap.cache_stats();
            prop_assert_eq!((cs.hits, cs.misses), (s.cache_hits, s.cache_misses));
            prop_assert_eq!(cs.puts, s.cache_puts);
        }
        // Everything reads back at the end.
        for &v in &live {
            let w = model[&v];
            if w.cache {
                read_cache(ctx, access, v, w.kind, w.id, &mut buf);
            } else {
                access.load(v, &mut buf).unwrap();
            }
            prop_assert!(verify(w.kind, w.id, &buf), "page {v:#x} at the end");
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// `zpool` alone: any sequence of cache builds, re-reads, writes over
    /// cache pages, committed pages, frees, reclaim, balloon pressure and
    /// backend drops: every read returns the right content (a miss is
    /// always reported, never read as data), hits + misses = lookups,
    /// nothing is lost.
    #[test]
    fn cache_pages_are_never_wrong_on_zpool(ops in proptest::collection::vec(op(), 1..250)) {
        run_model(ops, None)?;
    }

    /// The same on Xen's tmem with `zpool` behind it (Xen small enough
    /// that both tiers take pages of both pools).
    #[test]
    fn cache_pages_are_never_wrong_tiered(ops in proptest::collection::vec(op(), 1..250)) {
        run_model(ops, Some(16))?;
    }
}
