//! The pager on the fakes: faults delivered by the fake MMU exactly as the
//! CPU would, frames from a real frame allocator, a real balloon over
//! `FakeXen`, and frontswap over a real `zpool`.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::test_rig::{allocator, balloon, full_xen, KERNEL};
use super::*;
use crate::balloon::Balloon;
use crate::mm::direct::PAGE_BYTES;
use crate::mm::fault::{with_fault_handler, Shared};
use crate::mm::frame::{FrameAllocator, FrameState};
use crate::mm::vm::RegionAccess;
use crate::swap::content::{fill, verify, ContentKind};
use crate::swap::frontswap::Frontswap;
use crate::swap::zpool::ZPool;
use crate::testing::fake_held::FakeHeldFrames;
use crate::testing::fake_mmu::{FakeAccess, FakeMmu};
use crate::testing::fake_xen::FakeXen;

type Swap = Frontswap<ZPool<PoolStock<FakeHeldFrames>>>;

/// A guest of `frames` RAM frames (64 reserved for the "kernel"), with
/// Xen holding all of them and no headroom to grow.
struct Rig {
    fa: FrameAllocator<'static>,
    heap_free: fn() -> u64,
    pager: Pager,
    mmu: FakeMmu,
    access: FakeAccess,
    swap: Swap,
    balloon: Balloon,
    xen: FakeXen,
}

impl Rig {
    fn new(frames: u64, region_pages: u64, watermark: u64, pool_max: u64) -> (Rig, u64) {
        let fa = allocator(frames, KERNEL);
        let total = fa.total_pages();
        let mmu = FakeMmu::new(region_pages);
        let access = mmu.access();
        let swap = Frontswap::new(ZPool::new(
            PoolStock::new(FakeHeldFrames::default()),
            pool_max,
        ))
        .unwrap();
        let xen = full_xen(frames);
        let balloon = balloon(&fa);
        (
            Rig {
                fa,
                heap_free: unbounded_heap,
                pager: Pager::new(region_pages, watermark),
                mmu,
                access,
                swap,
                balloon,
                xen,
            },
            total,
        )
    }
}

/// Runs `f` with the pager lent to the fault path, as the loop does for a
/// workload step.
fn with_ctx<T>(
    rig: &mut Rig,
    f: impl FnOnce(&Shared<PagerCtx<'_, '_, FakeMmu, Swap, FakeXen>>, &mut FakeAccess) -> T,
) -> T {
    let shared = Shared::new(PagerCtx {
        pager: &mut rig.pager,
        mmu: &mut rig.mmu,
        swap: &mut rig.swap,
        frames: &mut rig.fa,
        balloon: &mut rig.balloon,
        mem: &mut rig.xen,
        heap_free_bytes: rig.heap_free,
    });
    let access = &mut rig.access;
    let r = with_fault_handler(&shared, || f(&shared, access));
    rig.fa.check_invariants().unwrap();
    r
}

fn page_of(kind: ContentKind, id: u64) -> Box<Page> {
    let mut p = Box::new([0u8; PAGE_BYTES]);
    fill(kind, id, &mut p);
    p
}

#[test]
fn touch_more_pages_than_frames_and_read_them_all_back() {
    // 1024 frames, 960 usable; 2000 mixed pages (about 2.9x): they fit
    // only because the pool compresses them.
    let (mut rig, _) = Rig::new(1024, 4096, 160, 1024);
    let n = 2000u64;
    let vpns: Vec<Vpn> = with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..n).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            if access
                .store(v, &page_of(ContentKind::Mixed, i as u64))
                .is_err()
            {
                let c = ctx.lock();
                panic!(
                    "{i} {:?} {:?} {:?} {:?}",
                    c.pager.stats(),
                    c.swap.stats(),
                    c.swap.primary().stats(),
                    c.frames.counts()
                );
            }
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        for (i, &v) in vpns.iter().enumerate() {
            access.load(v, &mut buf).unwrap();
            assert!(verify(ContentKind::Mixed, i as u64, &buf), "page {i}");
        }
        vpns
    });
    let s = rig.pager.stats();
    let c = rig.pager.counts();
    assert!(s.pageouts > 1000, "{s:?}");
    assert!(s.pageins > 0 && s.page_faults >= n, "{s:?}");
    assert_eq!((s.lost_pages, s.fault_failures), (0, 0));
    assert_eq!(c.allocated_pages, n);
    assert_eq!(c.resident_pages + c.swapped_pages, n);
    assert_eq!(c.swapped_pages, rig.swap.curr_pages());
    rig.pager.check().unwrap();
    // Every mapping is a Paged frame, every Paged frame is mapped.
    let fa = &rig.fa;
    for (v, pfn) in rig.mmu.mappings() {
        assert_eq!(fa.state(pfn), Some(FrameState::Paged), "vpn {v}");
    }
    assert_eq!(fa.count_in(FrameState::Paged), rig.mmu.mapped());
    assert_eq!(fa.count_in(FrameState::Paged), c.resident_pages);
    // Free them all: frames and pool back to the allocator.
    with_ctx(&mut rig, |ctx, _| {
        for v in vpns {
            ctx.lock().free_page(v);
        }
    });
    assert_eq!(rig.pager.counts(), PagerCounts::default());
    assert_eq!(rig.swap.curr_pages(), 0);
    assert_eq!(rig.mmu.mapped(), 0);
    rig.pager.check().unwrap();
}

#[test]
fn refused_pages_stay_resident_and_are_passed_by() {
    let (mut rig, _) = Rig::new(512, 1024, 16, 256);
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..100).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            let kind = if i < 50 {
                ContentKind::Random
            } else {
                ContentKind::Text
            };
            access.store(v, &page_of(kind, i as u64)).unwrap();
        }
        let mut c = ctx.lock();
        // Everything cold: the text pages go, the random ones are refused.
        let freed = c.reclaim(100);
        assert_eq!(freed, 50, "{:?}", c.pager.stats());
        assert_eq!(c.pager.counts().refused_pages, 50);
        assert_eq!(c.pager.counts().swapped_pages, 50);
        let refused_before = c.pager.stats().swap_refused;
        // Asked again, the refused pages are not compressed again.
        assert_eq!(c.reclaim(10), 0);
        assert_eq!(c.pager.stats().swap_refused, refused_before);
        drop(c);
        // Written again, a refused page is a candidate again.
        access
            .store(vpns[0], &page_of(ContentKind::Zero, 0))
            .unwrap();
        let mut c = ctx.lock();
        assert_eq!(c.reclaim(10), 1);
        assert_eq!(c.pager.state(vpns[0]), Some(PageState::Swapped));
    });
    rig.pager.check().unwrap();
}

#[test]
fn clean_zero_pages_are_dropped_without_a_store() {
    let (mut rig, _) = Rig::new(256, 256, 8, 64);
    with_ctx(&mut rig, |ctx, access| {
        let a = ctx.lock().alloc_page().unwrap();
        let b = ctx.lock().alloc_page().unwrap();
        let mut buf = Box::new([1u8; PAGE_BYTES]);
        access.load(a, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0), "demand-zero reads zeros");
        access.store(b, &page_of(ContentKind::Text, 7)).unwrap();
        let mut c = ctx.lock();
        assert_eq!(c.reclaim(2), 2);
        assert_eq!(c.pager.state(a), Some(PageState::Zero));
        assert_eq!(c.pager.state(b), Some(PageState::Swapped));
        assert_eq!(c.pager.stats().clean_drops, 1);
        assert_eq!(c.pager.stats().pageouts, 1);
        drop(c);
        access.load(a, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0));
        access.load(b, &mut buf).unwrap();
        assert!(verify(ContentKind::Text, 7, &buf));
    });
}

#[test]
fn second_chance_keeps_the_hot_pages() {
    let (mut rig, _) = Rig::new(512, 512, 8, 256);
    let mmu = rig.mmu.clone();
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..64).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Text, i as u64))
                .unwrap();
        }
        // One sweep clears every accessed bit.
        let mut c = ctx.lock();
        assert_eq!(c.reclaim(1), 1);
        // The hot half is used again.
        for &v in &vpns[32..] {
            mmu.touch(v);
        }
        assert_eq!(c.reclaim(20), 20);
        for &v in &vpns[32..] {
            assert!(c.pager.state(v).unwrap().is_resident(), "hot {v} kept");
        }
    });
}

#[test]
fn shrink_brings_pages_back_without_paging_others_out() {
    let (mut rig, _) = Rig::new(1024, 1024, 16, 512);
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..400).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Mixed, i as u64))
                .unwrap();
        }
        let mut c = ctx.lock();
        c.reclaim(300);
        let out = c.swap.curr_pages();
        assert!(out >= 250, "{out}");
        let back = c.shrink_to(out - out / 20, 1000);
        assert_eq!(back, out / 20);
        assert_eq!(c.swap.curr_pages(), out - out / 20);
        assert_eq!(c.pager.stats().shrink_pageins, back);
        let pageouts = c.pager.stats().pageouts;
        c.shrink_to(0, 1000);
        assert_eq!(c.swap.curr_pages(), 0);
        assert_eq!(
            c.pager.stats().pageouts,
            pageouts,
            "shrinking pages nothing out"
        );
        drop(c);
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        for (i, &v) in vpns.iter().enumerate() {
            access.load(v, &mut buf).unwrap();
            assert!(verify(ContentKind::Mixed, i as u64, &buf));
        }
    });
    rig.pager.check().unwrap();
}

#[test]
fn faults_balloon_up_within_the_toolstack_target_first() {
    let (mut rig, total) = Rig::new(512, 512, 8, 256);
    // 100 frames ballooned out; the toolstack allows them back.
    {
        let fa = &mut rig.fa;
        for _ in 0..100 {
            let t = fa.take_for_balloon().unwrap();
            fa.mark_ballooned(t.pfn).unwrap();
            rig.xen.backed.remove(&t.pfn);
        }
    }
    rig.xen.host_free_pages = 1000;
    rig.balloon.set_toolstack_target_kib(Some(total * 4));
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..440).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Random, i as u64))
                .unwrap();
        }
        let c = ctx.lock();
        assert!(
            c.pager.stats().fault_balloon_pages >= 90,
            "{:?}",
            c.pager.stats()
        );
        assert_eq!(c.pager.stats().pageouts, 0, "no reclaim while Xen has room");
    });
}

#[test]
fn replenish_and_reclaim_for_target() {
    let (mut rig, total) = Rig::new(1024, 2048, 64, 1024);
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..900).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Text, i as u64))
                .unwrap();
        }
        let mut c = ctx.lock();
        assert!(c.replenish());
        assert!(c.frames.free_pages() >= 64);
        // Target 600 frames: free enough that 600 remain with 64 free.
        let target = 600;
        c.reclaim_for_target(target, u64::MAX);
        let counts = c.frames.counts();
        assert!(
            counts.free_pages >= counts.populated_pages() - target + 64,
            "{counts:?}"
        );
        assert_eq!(total, counts.total_pages);
    });
}

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    Free(usize),
    Write(usize, u8),
    Read(usize),
    Reclaim(u8),
    Shrink(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Alloc),
        1 => any::<usize>().prop_map(Op::Free),
        4 => (any::<usize>(), 0u8..4).prop_map(|(i, k)| Op::Write(i, k)),
        4 => any::<usize>().prop_map(Op::Read),
        1 => any::<u8>().prop_map(Op::Reclaim),
        1 => any::<u8>().prop_map(Op::Shrink),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sequence of allocations, frees, writes, reads, reclaims and
    /// shrinks: every read returns the last write (or zeros), counts and
    /// states agree, no frame is mapped twice, nothing is lost.
    #[test]
    fn pages_are_never_lost(ops in proptest::collection::vec(op(), 1..300)) {
        let (mut rig, _) = Rig::new(320, 1024, 24, 128);
        with_ctx(&mut rig, |ctx, access| {
            let mut live: Vec<Vpn> = Vec::new();
            let mut model: BTreeMap<Vpn, Option<(ContentKind, u64)>> = BTreeMap::new();
            let mut gen = 0u64;
            let mut buf = Box::new([0u8; PAGE_BYTES]);
            for op in ops {
                match op {
                    Op::Alloc => {
                        if let Some(v) = ctx.lock().alloc_page() {
                            live.push(v);
                            model.insert(v, None);
                        }
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let v = live.swap_remove(i % live.len());
                        ctx.lock().free_page(v);
                        model.remove(&v);
                    }
                    Op::Write(i, k) if !live.is_empty() => {
                        let v = live[i % live.len()];
                        let kind = ContentKind::ALL[usize::from(k) % ContentKind::ALL.len()];
                        gen += 1;
                        access.store(v, &page_of(kind, gen)).unwrap();
                        model.insert(v, Some((kind, gen)));
                    }
                    Op::Read(i) if !live.is_empty() => {
                        let v = live[i % live.len()];
                        access.load(v, &mut buf).unwrap();
                        match model[&v] {
                            None => prop_assert!(buf.iter().all(|&b| b == 0)),
                            Some((kind, id)) => prop_assert!(verify(kind, id, &buf)),
                        }
                    }
                    Op::Reclaim(n) => {
                        ctx.lock().reclaim(u64::from(n));
                    }
                    Op::Shrink(n) => {
                        let mut c = ctx.lock();
                        let cur = c.swap.curr_pages();
                        c.shrink_to(cur.saturating_sub(u64::from(n)), 64);
                    }
                    _ => {}
                }
                let c = ctx.lock();
                prop_assert_eq!(c.pager.check(), Ok(()));
                prop_assert_eq!(c.pager.counts().swapped_pages, c.swap.curr_pages());
                prop_assert_eq!(c.pager.stats().lost_pages, 0);
            }
            // Everything reads back at the end.
            for &v in &live {
                access.load(v, &mut buf).unwrap();
                match model[&v] {
                    None => prop_assert!(buf.iter().all(|&b| b == 0)),
                    Some((kind, id)) => prop_assert!(verify(kind, id, &buf)),
                }
            }
            Ok(())
        })?;
    }

    /// The clock's ring and positions stay consistent, and a victim is
    /// always a page on the ring.
    #[test]
    fn clock_ring_stays_consistent(ops in proptest::collection::vec((0u8..3, 0u64..64), 1..400)) {
        let mut c = SecondChance::new(64);
        let mut on = alloc::collections::BTreeSet::new();
        for (what, v) in ops {
            match what {
                0 => prop_assert_eq!(c.insert(v), on.insert(v)),
                1 => prop_assert_eq!(c.remove(v), on.remove(&v)),
                _ => {
                    let got = c.next_victim(|x| x % 3 == v % 3);
                    if let Some(x) = got {
                        prop_assert!(on.contains(&x));
                        prop_assert_eq!(x % 3, v % 3);
                    } else {
                        prop_assert!(on.iter().all(|x| x % 3 != v % 3));
                    }
                }
            }
            prop_assert!(c.check());
            prop_assert_eq!(c.len(), on.len());
        }
    }
}

#[test]
fn page_outs_stop_when_the_heap_runs_short() {
    let (mut rig, _) = Rig::new(512, 512, 8, 256);
    rig.heap_free = || HEAP_SPARE_BYTES - 1;
    with_ctx(&mut rig, |ctx, access| {
        let v = ctx.lock().alloc_page().unwrap();
        access.store(v, &page_of(ContentKind::Text, 1)).unwrap();
        let mut c = ctx.lock();
        assert_eq!(c.reclaim(1), 0);
        assert_eq!(c.pager.stats().index_full, 1);
        assert_eq!(c.pager.state(v), Some(PageState::ResidentZero));
    });
}

#[test]
fn page_outs_stop_at_the_index_bound() {
    let (mut rig, _) = Rig::new(512, 512, 8, 256);
    rig.pager.set_max_swapped_pages(10);
    with_ctx(&mut rig, |ctx, access| {
        let vpns: Vec<Vpn> = (0..50).map(|_| ctx.lock().alloc_page().unwrap()).collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Text, i as u64))
                .unwrap();
        }
        let mut c = ctx.lock();
        assert_eq!(c.reclaim(50), 10);
        assert_eq!(c.pager.counts().swapped_pages, 10);
        // A full index stops the reclaimer; the pages stay candidates.
        assert_eq!(c.pager.stats().index_full, 1);
        assert_eq!(c.pager.counts().resident_pages, 40);
        assert_eq!(c.pager.counts().refused_pages, 0);
        // Room again (a page back in): the next page-out goes.
        c.pager.set_max_swapped_pages(11);
        assert_eq!(c.reclaim(50), 1);
    });
    rig.pager.check().unwrap();
}

/// Frontswap on Xen's tmem (the byte-exact fake of Xen 4.12) with `zpool`
/// behind it: pages go to Xen until it is full, then to the pool, per
/// page; both come back intact and the figures say which holds what.
#[test]
fn tiered_swap_falls_back_to_the_pool_per_page() {
    use crate::swap::xen_fake::FakeXenTmem;
    use crate::swap::xen_tmem::XenTmem;
    let mut fa = allocator(4096, 0);
    let mut xen = FakeXenTmem::new(0x9000);
    xen.capacity_pages = Some(300);
    let pool = ZPool::new(PoolStock::new(FakeHeldFrames::default()), 1024);
    let mut swap: GuestSwap<FakeXenTmem, FakeHeldFrames> =
        GuestSwap::Tiered(Frontswap::tiered(XenTmem::new(xen), pool).unwrap());
    assert_eq!(swap.backend(), "xen-tmem");
    for i in 0..1000u64 {
        swap.store(&mut fa, i, &page_of(ContentKind::Text, i))
            .unwrap();
    }
    let f = swap.figures();
    assert_eq!((f.pages, f.tmem_pages, f.pool_pages), (1000, 300, 700));
    assert_eq!(f.tmem_refused, 700);
    assert!(f.pool_frames > 0 && f.pool_frames < 700);
    let mut p = Box::new([0u8; PAGE_BYTES]);
    for i in (0..1000u64).rev() {
        swap.take(&mut fa, i, &mut p).unwrap();
        assert!(verify(ContentKind::Text, i, &p), "page {i}");
    }
    assert_eq!(swap.pages(), 0);
    swap.compact(&mut fa);
    assert_eq!(
        fa.count_in(FrameState::Pooled),
        0,
        "the pool's frames are back"
    );
    fa.check_invariants().unwrap();
}

/// Xen 4.12 charges tmem's pages to the domain's `max_pages`: the pager
/// puts pages to tmem only while frames + tmem pages leave the slack free
/// under it, then closes tmem and the pool takes the rest; the balloon
/// never grows into the room tmem's pages use. Nothing is lost.
#[test]
fn tmem_takes_pages_only_within_max_pages() {
    use crate::swap::xen_fake::FakeXenTmem;
    use crate::swap::xen_tmem::XenTmem;
    type Tiered = GuestSwap<FakeXenTmem, FakeHeldFrames>;
    let frames = 1024u64;
    let mut fa = allocator(frames, KERNEL);
    let mut mmu = FakeMmu::new(4096);
    let mut access = mmu.access();
    let pool = ZPool::new(PoolStock::new(FakeHeldFrames::default()), 512);
    let mut swap: Tiered =
        GuestSwap::Tiered(Frontswap::tiered(XenTmem::new(FakeXenTmem::new(0x9000)), pool).unwrap());
    let mut xen = full_xen(frames);
    let mut balloon = balloon(&fa);
    // max_pages leaves 400 pages beside our frames for tmem.
    let max = frames + 400;
    balloon.set_hypervisor_max_pages(Some(max));
    let mut pager = Pager::new(4096, 64);
    let n = 1500u64;
    let shared = Shared::new(PagerCtx {
        pager: &mut pager,
        mmu: &mut mmu,
        swap: &mut swap,
        frames: &mut fa,
        balloon: &mut balloon,
        mem: &mut xen,
        heap_free_bytes: unbounded_heap,
    });
    with_fault_handler(&shared, || {
        let vpns: Vec<Vpn> = (0..n)
            .map(|_| shared.lock().alloc_page().unwrap())
            .collect();
        for (i, &v) in vpns.iter().enumerate() {
            access
                .store(v, &page_of(ContentKind::Mixed, i as u64))
                .unwrap();
            let c = shared.lock();
            let used = c.frames.counts().populated_pages() + c.swap.hypervisor_pages();
            assert!(used <= max, "page {i}: {used} > {max}");
            assert_eq!(c.balloon.hypervisor_held_pages(), c.swap.hypervisor_pages());
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        for (i, &v) in vpns.iter().enumerate() {
            access.load(v, &mut buf).unwrap();
            assert!(verify(ContentKind::Mixed, i as u64, &buf), "page {i}");
        }
    });
    let f = swap.figures();
    // tmem held pages up to the room less the slack, then was closed.
    assert!(f.tmem_pages > 0, "{f:?}");
    assert!(f.tmem_closed > 0, "{f:?}");
    assert!(f.pool_pages > 0, "{f:?}");
    assert_eq!(f.lost, 0);
    assert_eq!(pager.stats().lost_pages, 0);
    assert!(fa.counts().populated_pages() + f.tmem_pages <= max);
    fa.check_invariants().unwrap();
}
