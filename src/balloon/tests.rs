//! Host tests of the balloon driver against a fake hypervisor.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::mm::frame::{FrameAllocator, FrameMeta, FrameState};
use crate::mm::PfnRange;
use crate::testing::fake_store::FakeStore;
use crate::testing::fake_xen::{FakeXen, Inject, Op};
use crate::xen::errno::Errno;

#[derive(Debug, Default)]
struct RecScrub(Vec<Pfn>);

impl Scrubber for RecScrub {
    fn scrub(
        &mut self,
        frames: &FrameAllocator<'_>,
        pfn: Pfn,
    ) -> Result<(), crate::mm::direct::DirectMapError> {
        // The driver only scrubs frames it has taken.
        assert_eq!(frames.state(pfn), Some(FrameState::Taken));
        self.0.push(pfn);
        Ok(())
    }
}

const FRAMES: u64 = 4096;
const KERNEL: u64 = 64;

fn ram() -> Vec<PfnRange> {
    // A hole at 160..256 like the legacy VGA/BIOS area.
    vec![
        PfnRange {
            start: 0,
            count: 160,
        },
        PfnRange {
            start: 256,
            count: FRAMES - 256,
        },
    ]
}

fn ram_pfns() -> impl Iterator<Item = Pfn> {
    ram().into_iter().flat_map(|r| r.start..r.end())
}

fn allocator(meta: &mut [FrameMeta]) -> FrameAllocator<'_> {
    let mut fa = FrameAllocator::new(meta, 0, &ram()).unwrap();
    fa.reserve_range(0, KERNEL).unwrap();
    fa
}

fn config() -> BalloonConfig {
    BalloonConfig {
        margin_pages: 64,
        ..BalloonConfig::default()
    }
}

/// The accounting invariant, tied to both the allocator and Xen's view.
/// `held` are the frames the workload holds; none of them may be among the
/// frames released since the last check (drained here).
fn check(fa: &FrameAllocator<'_>, xen: &mut FakeXen, held: &BTreeSet<Pfn>) {
    fa.check_invariants().unwrap();
    let c = fa.counts();
    assert_eq!(c.taken_pages, 0, "frames left in transit");
    assert_eq!(c.populated_pages() + c.ballooned_pages, c.total_pages);
    for pfn in fa.base_pfn()..fa.end_pfn() {
        match fa.state(pfn).unwrap() {
            FrameState::Absent => assert!(!xen.backed.contains(&pfn)),
            FrameState::Ballooned => assert!(
                !xen.backed.contains(&pfn) || xen.stranded.contains(&pfn),
                "pfn {pfn} ballooned but backed"
            ),
            s => assert!(xen.backed.contains(&pfn), "pfn {pfn} {s:?} but not backed"),
        }
    }
    for p in held {
        assert_eq!(fa.state(*p), Some(FrameState::Allocated));
    }
    for p in xen.released.drain(..) {
        assert!(!held.contains(&p), "allocated frame {p} released");
    }
    assert!(xen.violations.is_empty(), "{:?}", xen.violations);
}

/// Steps until the driver stops asking to be called at once.
fn settle<M: MemoryOps>(
    b: &mut Balloon,
    xen: &mut M,
    fa: &mut FrameAllocator<'_>,
    s: &mut RecScrub,
    now_ns: u64,
) -> StepReport {
    for _ in 0..1000 {
        let r = b.step(xen, fa, s, now_ns);
        if r.next_call_ns != Some(now_ns) {
            return r;
        }
    }
    panic!("driver did not settle");
}

const S: u64 = 1_000_000_000;

#[test]
fn shrinks_and_grows_to_toolstack_target() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    let total = fa.total_pages();
    // Unknown toolstack target: hold the start size.
    assert_eq!(
        b.step(&mut xen, &mut fa, &mut s, 0).progress,
        Progress::Reached
    );
    assert_eq!(b.target_pages(), total);

    b.set_toolstack_target_kib(Some(4 * 1000));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().populated_pages(), 1000);
    assert_eq!(xen.backed.len(), 1000);
    // Highest frames go: the five top 2 MiB blocks in one call, the rest
    // (down to the 1000th populated frame) as order 0.
    let released: BTreeSet<Pfn> = xen.released.iter().copied().collect();
    assert_eq!(released, (1096..FRAMES).collect());
    assert_eq!(
        xen.calls,
        vec![(Op::Decrease, SUPERPAGE_ORDER, 5), (Op::Decrease, 0, 440)]
    );
    assert_eq!(b.counters().superpages_released, 5);
    assert_eq!(b.counters().released_pages, total - 1000);
    check(&fa, &mut xen, &BTreeSet::new());
    xen.calls.clear();

    b.set_toolstack_target_kib(Some(4 * FRAMES));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().ballooned_pages, 0);
    assert_eq!(fa.free_pages(), total - KERNEL);
    check(&fa, &mut xen, &BTreeSet::new());
    // The loose frames (most recently ballooned) first, then the blocks.
    assert_eq!(
        xen.calls,
        vec![(Op::Populate, 0, 440), (Op::Populate, SUPERPAGE_ORDER, 5)]
    );
    assert_eq!(b.counters().superpages_populated, 5);
    assert_eq!(b.counters().hypercalls, 4);
    assert_eq!(b.counters().batches, 4);
    // Nothing was dirty: nothing scrubbed.
    assert!(s.0.is_empty());
}

/// A 256 MiB guest: RAM 0..160 and 256..65536, kernel at 0..64.
const BIG: u64 = 65536;

fn big_allocator(meta: &mut [FrameMeta]) -> FrameAllocator<'_> {
    let ram = [
        PfnRange {
            start: 0,
            count: 160,
        },
        PfnRange {
            start: 256,
            count: BIG - 256,
        },
    ];
    let mut fa = FrameAllocator::new(meta, 0, &ram).unwrap();
    fa.reserve_range(0, KERNEL).unwrap();
    fa
}

#[test]
fn clean_shrink_256_to_64_mib_uses_superpages_only() {
    let mut meta = vec![FrameMeta::ABSENT; BIG as usize];
    let mut fa = big_allocator(&mut meta);
    let mut xen = FakeXen::new(fa.base_pfn()..0, 0);
    xen.backed = (0..160).chain(256..BIG).collect();
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    // xl: static-max 256 MiB, mem-set 64 MiB.
    b.set_static_max_kib(Some(4 * BIG));
    b.set_toolstack_target_kib(Some(64 * 1024));
    let target = 16384 - (BIG - fa.total_pages());
    assert_eq!(b.target_pages(), target);
    let r = b.step(&mut xen, &mut fa, &mut s, 0);
    // The step budget (32768 frames) bounds the first step.
    assert_eq!(r.released_pages, 32768);
    assert_eq!(r.progress, Progress::Working);
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().populated_pages(), target);
    check(&fa, &mut xen, &BTreeSet::new());
    // 96 blocks in 2 hypercalls, where order 0 took 96.
    assert_eq!(
        xen.calls,
        vec![
            (Op::Decrease, SUPERPAGE_ORDER, 64),
            (Op::Decrease, SUPERPAGE_ORDER, 32)
        ]
    );
    assert_eq!(b.counters().superpages_released, 96);
    assert_eq!(b.counters().hypercalls, 2);
    assert!(s.0.is_empty());

    // Back to 256 MiB on a fragmented host: each step tries order 9
    // once, then goes on in order 0 without backing off.
    xen.calls.clear();
    xen.fragmented = true;
    b.set_toolstack_target_kib(Some(4 * BIG));
    let mut steps = 0;
    loop {
        let r = b.step(&mut xen, &mut fa, &mut s, 0);
        steps += 1;
        assert_ne!(r.progress, Progress::BackingOff);
        check(&fa, &mut xen, &BTreeSet::new());
        if r.progress == Progress::Reached {
            break;
        }
    }
    assert_eq!(fa.counts().ballooned_pages, 0);
    assert_eq!(xen.count(Op::Populate, 0), 96);
    assert_eq!(xen.count(Op::Populate, SUPERPAGE_ORDER), steps - 1);
    assert_eq!(b.counters().superpage_fallbacks, steps as u64 - 1);
    assert_eq!(b.counters().superpages_populated, 0);
    assert_eq!(b.backoff_s(), 0);
    assert_eq!(b.status(fa.counts()).last_error, None);

    // Shrink again and grow on a healthy host: order 9 both ways.
    b.set_toolstack_target_kib(Some(64 * 1024));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    xen.fragmented = false;
    xen.calls.clear();
    b.set_toolstack_target_kib(Some(4 * BIG));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(fa.counts().ballooned_pages, 0);
    assert_eq!(
        xen.calls,
        vec![
            (Op::Populate, SUPERPAGE_ORDER, 64),
            (Op::Populate, SUPERPAGE_ORDER, 32)
        ]
    );
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn growth_falls_back_to_order_0_when_order_9_fails() {
    for case in 0..3 {
        let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
        let mut fa = allocator(&mut meta);
        let mut xen = FakeXen::new(ram_pfns(), 0);
        let mut s = RecScrub::default();
        let mut b = Balloon::new(config(), fa.counts());
        b.set_toolstack_target_kib(Some(4 * 1000));
        settle(&mut b, &mut xen, &mut fa, &mut s, 0);
        xen.calls.clear();
        match case {
            // Host memory fragmented: ENOMEM for order 9.
            0 => xen.fragmented = true,
            // Xen does not allow order 9: no progress.
            1 => xen.max_order = 0,
            // Order 9 does part of the batch, then nothing.
            _ => xen
                .script
                .extend([Inject::Partial(440), Inject::Partial(2), Inject::Partial(0)]),
        }
        b.set_toolstack_target_kib(Some(4 * FRAMES));
        let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
        assert_eq!(r.progress, Progress::Reached, "case {case}");
        assert_eq!(fa.counts().ballooned_pages, 0);
        check(&fa, &mut xen, &BTreeSet::new());
        let p0 = (Op::Populate, 0, 512);
        let p9 = |n| (Op::Populate, SUPERPAGE_ORDER, n);
        let want = match case {
            // The 440 loose frames, a failed order-9 try, the 5 blocks
            // in order 0.
            0 | 1 => vec![(Op::Populate, 0, 440), p9(5), p0, p0, p0, p0, p0],
            // Two blocks done; the next step's order-9 try for the other
            // three does nothing and they go in order 0.
            _ => vec![(Op::Populate, 0, 440), p9(5), p9(3), p0, p0, p0],
        };
        assert_eq!(xen.calls, want, "case {case}");
        assert_eq!(b.counters().superpage_fallbacks, 1);
        assert_eq!(b.counters().superpages_populated, 2 * u64::from(case == 2));
        assert_eq!(b.backoff_s(), 0);
    }
}

#[test]
fn partial_decrease_returns_the_rest_unchanged() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    b.set_toolstack_target_kib(Some(4 * (fa.total_pages() - 300)));
    xen.script.push_back(Inject::Partial(100));
    let r = b.step(&mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.released_pages, 100);
    assert_eq!(r.progress, Progress::Working);
    check(&fa, &mut xen, &BTreeSet::new());
    // The frames not released come back in the same order.
    let next = fa.take_for_balloon().unwrap();
    assert_eq!(next.pfn, FRAMES - 101);
    fa.return_taken(next.pfn).unwrap();
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.ballooned_pages(), 300);
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn partial_superpage_decrease_quarantines_the_stopped_extent() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    b.set_toolstack_target_kib(Some(4 * (fa.total_pages() - 4 * 512)));
    xen.script.push_back(Inject::Partial(1));
    let r = b.step(&mut xen, &mut fa, &mut s, 0);
    // Xen stopped inside the second block, half of which is gone: the
    // whole block is kept out of use as ballooned, never handed out, and
    // the driver backs off as for any failure.
    assert_eq!(r.released_pages, 1024);
    assert_eq!(r.progress, Progress::BackingOff);
    assert_eq!(xen.calls, vec![(Op::Decrease, SUPERPAGE_ORDER, 4)]);
    assert_eq!(b.counters().quarantined_extents, 1);
    assert_eq!(fa.ballooned_pages(), 1024);
    for pfn in FRAMES - 1024..FRAMES - 512 {
        assert_eq!(fa.state(pfn), Some(FrameState::Ballooned));
    }
    check(&fa, &mut xen, &BTreeSet::new());
    // The two blocks not tried are back in the same order.
    let next: Vec<Pfn> = (0..1024)
        .map(|_| fa.take_for_balloon().unwrap().pfn)
        .collect();
    assert_eq!(
        next,
        (FRAMES - 2048..FRAMES - 1024).rev().collect::<Vec<_>>()
    );
    for &p in next.iter().rev() {
        fa.return_taken(p).unwrap();
    }
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 2 * S);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.ballooned_pages(), 2048);
    assert_eq!(b.counters().superpages_released, 3);
    check(&fa, &mut xen, &BTreeSet::new());
    // Growing maps fresh pages over the quarantined block too.
    b.set_toolstack_target_kib(Some(4 * fa.total_pages()));
    xen.host_free_pages = 4096;
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 4 * S);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.ballooned_pages(), 0);
    assert_eq!(xen.leaked_pages, 256);
    assert!(xen.violations.is_empty(), "{:?}", xen.violations);
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn a_freed_dirty_block_is_scrubbed_and_released_whole() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    // The workload holds everything but one 2 MiB block it used and freed.
    let block = fa
        .alloc_contiguous(SUPERPAGE_PAGES, SUPERPAGE_PAGES)
        .unwrap();
    let held: BTreeSet<Pfn> = core::iter::from_fn(|| fa.alloc()).collect();
    // Freed in an order that leaves the dirty list scattered.
    for p in (block..block + SUPERPAGE_PAGES).filter(|p| p % 2 == 0) {
        fa.free(p).unwrap();
    }
    for p in (block..block + SUPERPAGE_PAGES).filter(|p| p % 2 == 1) {
        fa.free(p).unwrap();
    }
    b.set_toolstack_target_kib(Some(0));
    let r = b.step(&mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.released_pages, SUPERPAGE_PAGES);
    assert_eq!(r.progress, Progress::Limited(Limit::InUse));
    assert_eq!(xen.calls, vec![(Op::Decrease, SUPERPAGE_ORDER, 1)]);
    let scrubbed: BTreeSet<Pfn> = s.0.iter().copied().collect();
    assert_eq!(scrubbed, (block..block + SUPERPAGE_PAGES).collect());
    assert_eq!(s.0.len() as u64, SUPERPAGE_PAGES);
    check(&fa, &mut xen, &held);
}

#[test]
fn growth_never_overshoots_and_splits_blocks_only_when_it_must() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 1 << 20);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    // 1000 populated: blocks 1536.. ballooned whole, 1096..1536 loose.
    b.set_toolstack_target_kib(Some(4 * 1000));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    xen.calls.clear();
    // Grow by 440 + 512 + 100: the loose frames, one block, and 100
    // frames of the next block in order 0.
    b.set_toolstack_target_kib(Some(4 * (1000 + 440 + 512 + 100)));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().populated_pages(), 2052);
    assert_eq!(
        xen.calls,
        vec![
            (Op::Populate, 0, 440),
            (Op::Populate, SUPERPAGE_ORDER, 1),
            (Op::Populate, 0, 100)
        ]
    );
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn failures_back_off_doubling_to_cap_and_reset_on_success() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    b.set_toolstack_target_kib(Some(4 * 1000));
    let mut now = 0;
    let mut delays = Vec::new();
    for inj in [
        Inject::Partial(0),
        Inject::Fail(Errno::ENOMEM),
        Inject::Fail(Errno::ENOSYS),
        Inject::Fail(Errno::EINVAL),
        Inject::Partial(0),
        Inject::Fail(Errno::EPERM),
        Inject::Fail(Errno::EIO),
    ] {
        xen.script.push_back(inj);
        let calls = xen.decrease_calls;
        let r = b.step(&mut xen, &mut fa, &mut s, now);
        assert_eq!(r.progress, Progress::BackingOff);
        assert_eq!(xen.decrease_calls, calls + 1);
        let until = r.next_call_ns.unwrap();
        delays.push((until - now) / S);
        // Calling early does nothing.
        let r2 = b.step(&mut xen, &mut fa, &mut s, until - 1);
        assert_eq!(r2.progress, Progress::BackingOff);
        assert_eq!(xen.decrease_calls, calls + 1);
        check(&fa, &mut xen, &BTreeSet::new());
        now = until;
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 32]);
    let st = b.status(fa.counts());
    assert_eq!(st.backoff_s, 32);
    assert_eq!(st.last_error, Some(Errno::EIO));
    let r = b.step(&mut xen, &mut fa, &mut s, now);
    assert!(r.released_pages > 0);
    assert_eq!(b.backoff_s(), 0);
    // The next failure (growing now) starts again at 1 s.
    b.set_toolstack_target_kib(Some(4 * FRAMES));
    xen.script.push_back(Inject::Fail(Errno::ENOMEM));
    let r = b.step(&mut xen, &mut fa, &mut s, now);
    assert_eq!(r.next_call_ns, Some(now + S));
}

#[test]
fn grow_backs_off_while_host_is_full_then_reaches_target() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    let total = fa.total_pages();
    b.set_toolstack_target_kib(Some(4 * 1000));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    // Another domain takes the memory we gave back, but 200 pages.
    xen.host_free_pages = 200;
    b.set_toolstack_target_kib(Some(4 * total));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::BackingOff);
    assert_eq!(fa.counts().populated_pages(), 1200);
    assert_eq!(b.status(fa.counts()).last_error, Some(Errno::ENOMEM));
    check(&fa, &mut xen, &BTreeSet::new());
    // Still full a second later: back off longer, no spin.
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, S);
    assert_eq!(r.next_call_ns, Some(3 * S));
    xen.host_free_pages = 1 << 20;
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 3 * S);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().ballooned_pages, 0);
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn max_pages_stops_growth_and_e2big_halves_batches() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 1 << 20);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    xen.max_extents = 100;
    b.set_toolstack_target_kib(Some(4 * 1000));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().populated_pages(), 1000);
    assert_eq!(b.batch_limit, 64);
    xen.max_pages = 1500;
    b.set_toolstack_target_kib(Some(4 * FRAMES));
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::BackingOff);
    assert_eq!(fa.counts().populated_pages(), 1500);
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn floor_clamps_and_in_use_frames_are_never_released() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    assert_eq!(b.floor_pages(), KERNEL + 64);
    b.set_toolstack_target_kib(Some(0));
    assert!(b.clamped());
    let r = settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.progress, Progress::Reached);
    assert_eq!(fa.counts().populated_pages(), KERNEL + 64);
    let st = b.status(fa.counts());
    assert!(st.clamped);
    assert_eq!(st.target_kib, 4 * (KERNEL + 64));
    // Now the workload holds every free frame; a lower floor cannot be met.
    let held: BTreeSet<Pfn> = core::iter::from_fn(|| fa.alloc()).collect();
    b.floor_pages = 10;
    let r = b.step(&mut xen, &mut fa, &mut s, 5);
    assert_eq!(r.progress, Progress::Limited(Limit::InUse));
    assert_eq!(r.next_call_ns, Some(5 + S));
    assert_eq!(b.status(fa.counts()).limit, Some(Limit::InUse));
    check(&fa, &mut xen, &held);
}

#[test]
fn scrub_is_called_exactly_for_dirty_frames() {
    for scrub_on in [true, false] {
        let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
        let mut fa = allocator(&mut meta);
        let mut xen = FakeXen::new(ram_pfns(), 0);
        let mut s = RecScrub::default();
        let mut b = Balloon::new(config(), fa.counts());
        b.set_scrub(scrub_on);
        let used: Vec<Pfn> = (0..300).filter_map(|_| fa.alloc()).collect();
        let kept: BTreeSet<Pfn> = used[..50].iter().copied().collect();
        for p in &used[50..] {
            fa.free(*p).unwrap();
        }
        // Release everything down to the floor: all clean ones, then the
        // dirty ones.
        b.set_toolstack_target_kib(Some(0));
        settle(&mut b, &mut xen, &mut fa, &mut s, 0);
        let scrubbed: BTreeSet<Pfn> = s.0.iter().copied().collect();
        assert_eq!(scrubbed.len(), s.0.len(), "a frame scrubbed twice");
        let released: BTreeSet<Pfn> = xen.released.iter().copied().collect();
        let dirty_released: BTreeSet<Pfn> = used[50..]
            .iter()
            .copied()
            .filter(|p| released.contains(p))
            .collect();
        assert!(!dirty_released.is_empty());
        if scrub_on {
            assert_eq!(scrubbed, dirty_released);
        } else {
            assert!(scrubbed.is_empty());
        }
        check(&fa, &mut xen, &kept);
    }
}

#[test]
fn scrubbed_frames_that_xen_refuses_come_back_clean() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    let all: Vec<Pfn> = core::iter::from_fn(|| fa.alloc()).collect();
    for p in &all {
        fa.free(*p).unwrap();
    }
    b.set_toolstack_target_kib(Some(4 * (fa.total_pages() - 10)));
    xen.script.push_back(Inject::Partial(4));
    let r = b.step(&mut xen, &mut fa, &mut s, 0);
    assert_eq!(r.released_pages, 4);
    assert_eq!(s.0.len(), 10);
    assert_eq!(fa.counts().free_clean_pages, 6);
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn pod_boot_releases_untouched_high_frames_first() {
    // memory = maxmem: nothing to do, no hypercall.
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    let cur = xen.current_reservation().unwrap();
    assert_eq!(b.init_pod(&mut xen, &mut fa, &mut s, cur), Ok(0));
    assert_eq!(xen.decrease_calls, 0);

    // memory < maxmem: Xen holds 1500 pages behind a map of FRAMES.
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(0..0, 0);
    xen.pod = ram_pfns().collect();
    xen.extra_pages = 4;
    // Boot touched the kernel and a few heap frames.
    let held: BTreeSet<Pfn> = (0..20).filter_map(|_| fa.alloc()).collect();
    let mut b = Balloon::new(config(), fa.counts());
    let cur = 1500 + xen.extra_pages;
    let excess = fa.total_pages() - cur;
    assert_eq!(b.init_pod(&mut xen, &mut fa, &mut s, cur), Ok(excess));
    assert_eq!(fa.ballooned_pages(), excess);
    let released: BTreeSet<Pfn> = xen.released.iter().copied().collect();
    assert_eq!(*released.iter().next().unwrap(), FRAMES - excess);
    assert!(held.iter().all(|p| !released.contains(p)));
    assert!(s.0.is_empty());
    // Without memory/target the driver holds this size.
    assert_eq!(
        b.step(&mut xen, &mut fa, &mut s, 0).progress,
        Progress::Reached
    );
    // The toolstack target (static-max based) settles the rest.
    b.set_static_max_kib(Some(4 * (FRAMES + 8)));
    b.set_toolstack_target_kib(Some(4 * (1400 + FRAMES + 8 - fa.total_pages())));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(fa.counts().populated_pages(), 1400);
    assert!(xen.violations.is_empty());
}

#[test]
fn ensure_free_populates_within_toolstack_target_only() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 1 << 20);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    b.set_toolstack_target_kib(Some(4 * 2000));
    b.set_requested_target_pages(Some(500));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    assert_eq!(fa.counts().populated_pages(), 500);
    let free = fa.free_pages();
    assert_eq!(b.ensure_free(&mut xen, &mut fa, free + 1000), Ok(()));
    assert_eq!(fa.counts().populated_pages(), 1500);
    let want = fa.free_pages() + 600;
    let r = b.ensure_free(&mut xen, &mut fa, want);
    assert_eq!(r, Err(BalloonError::Limited(Limit::ToolstackTarget)));
    assert_eq!(fa.counts().populated_pages(), 2000);
    check(&fa, &mut xen, &BTreeSet::new());
    xen.host_free_pages = 0;
    b.set_toolstack_target_kib(Some(4 * 3000));
    let want = fa.free_pages() + 1;
    let r = b.ensure_free(&mut xen, &mut fa, want);
    assert_eq!(r, Err(BalloonError::Hypercall(Errno::ENOMEM)));
    check(&fa, &mut xen, &BTreeSet::new());
}

#[test]
fn target_parsing_is_strict_and_errors_change_nothing() {
    assert_eq!(parse_target_kib("262144"), Ok(262144));
    assert_eq!(parse_target_kib("0"), Ok(0));
    assert_eq!(parse_target_kib("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(
        parse_target_kib("18446744073709551616"),
        Err(TargetParseError::Overflow)
    );
    assert_eq!(parse_target_kib(""), Err(TargetParseError::Empty));
    for bad in [
        "-1", "+1", " 1", "1 ", "1\n", "0x10", "1e6", "١٢", "12kB", "1\0",
    ] {
        assert_eq!(
            parse_target_kib(bad),
            Err(TargetParseError::NotDigits),
            "{bad:?}"
        );
    }
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let fa = allocator(&mut meta);
    let mut b = Balloon::new(config(), fa.counts());
    b.apply_toolstack_target("8000").unwrap();
    let before = b.status(fa.counts());
    assert!(b.apply_toolstack_target("garbage").is_err());
    assert_eq!(b.status(fa.counts()), before);
    assert_eq!(before.toolstack_target_kib, 8000);
}

use crate::xen::xenstore::XsError;

#[test]
fn publishes_status_outside_memory() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let mut xen = FakeXen::new(ram_pfns(), 0);
    let mut s = RecScrub::default();
    let mut b = Balloon::new(config(), fa.counts());
    b.set_toolstack_target_kib(Some(4 * 1000));
    settle(&mut b, &mut xen, &mut fa, &mut s, 0);
    let st = b.status(fa.counts());
    let mut store = FakeStore {
        fail_write_path: Some("data/meminfo_total".to_string()),
        ..FakeStore::default()
    };
    assert_eq!(
        publish(&mut store, &st),
        Err(XsError::Remote(Errno::EACCES))
    );
    let want: Vec<(&str, String)> = vec![
        ("control/feature-balloon", "1".into()),
        ("data/meminfo_free", (4 * (1000 - KERNEL)).to_string()),
        (
            "data/selfballoon/ballooned",
            (4 * (fa.total_pages() - 1000)).to_string(),
        ),
        ("data/selfballoon/current", "4000".into()),
        ("data/selfballoon/target", "4000".into()),
    ];
    let got: Vec<(&str, String)> = store
        .nodes
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(got, want);
    assert!(XENSTORE_KEYS
        .iter()
        .all(|k| !k.starts_with("memory/") && !k.starts_with('/')));
}

#[derive(Clone, Debug)]
enum Ev {
    Toolstack(u64),
    Requested(Option<u64>),
    Alloc(u64),
    Free(usize),
    Inject(u8, usize),
    HostFree(u64),
    Urgent(u64),
    Step(u64),
    /// Hold a whole free 2 MiB block (freed later as a dirty block).
    AllocBlock,
    /// Host memory fragmented (order-9 populate fails with ENOMEM).
    Fragmented(bool),
    /// Xen allows order-9 populates (else they do nothing).
    AllowOrder9(bool),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        2 => (0..FRAMES + 200).prop_map(Ev::Toolstack),
        1 => proptest::option::of(0..FRAMES).prop_map(Ev::Requested),
        2 => (0u64..600).prop_map(Ev::Alloc),
        2 => any::<usize>().prop_map(Ev::Free),
        2 => (0u8..6, 0usize..600).prop_map(|(k, n)| Ev::Inject(k, n)),
        1 => (0u64..3000).prop_map(Ev::HostFree),
        1 => (0u64..800).prop_map(Ev::Urgent),
        1 => Just(Ev::AllocBlock),
        1 => any::<bool>().prop_map(Ev::Fragmented),
        1 => any::<bool>().prop_map(Ev::AllowOrder9),
        6 => (0u64..40).prop_map(Ev::Step),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn invariant_holds_after_every_step(
        events in proptest::collection::vec(ev(), 1..60),
        max_pages_per_step in prop_oneof![Just(1u64), 1u64..2000, Just(32768u64)],
        max_batches_per_step in 1u32..20,
    ) {
        let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
        let mut fa = allocator(&mut meta);
        let mut xen = FakeXen::new(ram_pfns(), 1000);
        let mut s = RecScrub::default();
        let mut b = Balloon::new(
            BalloonConfig { max_pages_per_step, max_batches_per_step, ..config() },
            fa.counts(),
        );
        let mut held: Vec<Pfn> = Vec::new();
        let mut now = 0u64;
        for e in events {
            match e {
                Ev::Toolstack(p) => b.set_toolstack_target_kib(Some(4 * p)),
                Ev::Requested(p) => b.set_requested_target_pages(p),
                Ev::Alloc(n) => held.extend((0..n).filter_map(|_| fa.alloc())),
                Ev::Free(k) => {
                    if !held.is_empty() {
                        let n = k % held.len();
                        for p in held.drain(..n) {
                            fa.free(p).unwrap();
                        }
                    }
                }
                Ev::Inject(k, n) => xen.script.push_back(match k {
                    0 => Inject::Partial(n),
                    1 => Inject::Partial(0),
                    2 => Inject::Fail(Errno::ENOMEM),
                    3 => Inject::Fail(Errno::E2BIG),
                    4 => Inject::Fail(Errno::ENOSYS),
                    _ => Inject::Fail(Errno(n as i32)),
                }),
                Ev::HostFree(n) => xen.host_free_pages = n,
                Ev::AllocBlock => {
                    if let Some(p) = fa.alloc_contiguous(SUPERPAGE_PAGES, SUPERPAGE_PAGES) {
                        held.extend(p..p + SUPERPAGE_PAGES);
                    }
                }
                Ev::Fragmented(f) => xen.fragmented = f,
                Ev::AllowOrder9(a) => xen.max_order = if a { SUPERPAGE_ORDER } else { 0 },
                Ev::Urgent(n) => {
                    let upper = b.upper_pages();
                    let before = fa.counts().populated_pages();
                    let _ = b.ensure_free(&mut xen, &mut fa, n);
                    let after = fa.counts().populated_pages();
                    prop_assert!(after == before || after <= upper.max(before));
                }
                Ev::Step(dt) => {
                    now += dt * S / 4;
                    let before = fa.counts().populated_pages();
                    let calls = xen.calls.len();
                    let r = b.step(&mut xen, &mut fa, &mut s, now);
                    let after = fa.counts().populated_pages();
                    prop_assert_eq!(after + r.released_pages, before + r.populated_pages);
                    // Bounded work: the page budget, and the batch count
                    // plus at most one order-0 retry.
                    prop_assert!(r.released_pages + r.populated_pages <= max_pages_per_step);
                    prop_assert!(xen.calls.len() - calls <= max_batches_per_step as usize + 1);
                    let target = b.target_pages();
                    // Never overshoot in the direction of travel.
                    if r.released_pages > 0 { prop_assert!(after >= target); }
                    if r.populated_pages > 0 { prop_assert!(after <= target.min(b.upper_pages()).max(before)); }
                    prop_assert!(after >= b.floor_pages() || r.released_pages == 0);
                    if let Some(n) = r.next_call_ns { prop_assert!(n >= now); }
                }
            }
            let held_set: BTreeSet<Pfn> = held.iter().copied().collect();
            check(&fa, &mut xen, &held_set);
            // The counters agree with the allocator: 512 frames per
            // order-9 extent.
            let c = b.counters();
            // Quarantined extents (Xen stopped inside them) are ballooned
            // without having been counted as released.
            prop_assert_eq!(
                c.released_pages + c.quarantined_extents * SUPERPAGE_PAGES - c.populated_pages,
                fa.ballooned_pages()
            );
        }
    }
}

/// Xen 4.12 charges the pages tmem holds for us to `max_pages`: the
/// balloon's bound leaves them room and never grows into it.
#[test]
fn the_bound_leaves_room_for_hypervisor_held_pages() {
    let mut meta = vec![FrameMeta::ABSENT; FRAMES as usize];
    let mut fa = allocator(&mut meta);
    let b0 = Balloon::new(config(), fa.counts());
    let total = fa.total_pages();
    let mut b = Balloon::new(config(), fa.counts());
    assert_eq!(b.hypervisor_room_pages(total), None);
    b.set_hypervisor_max_pages(Some(total + 10));
    assert_eq!(b.upper_pages(), b0.upper_pages());
    assert_eq!(b.hypervisor_room_pages(total), Some(10));
    b.set_hypervisor_held_pages(25);
    assert_eq!(b.hypervisor_held_pages(), 25);
    assert_eq!(b.upper_pages(), total - 15);
    assert_eq!(b.target_pages(), total - 15);
    assert_eq!(b.hypervisor_room_pages(total - 15), Some(0));
    assert_eq!(b.hypervisor_room_pages(total), Some(0), "saturates");
    // Growing stops at the bound: ensure_free asks for nothing above it.
    let mut xen = FakeXen::new(ram_pfns(), 0);
    assert!(b.ensure_free(&mut xen, &mut fa, u64::MAX).is_err());
    assert!(fa.counts().populated_pages() <= total);
    b.set_hypervisor_max_pages(None);
    assert_eq!(b.upper_pages(), b0.upper_pages());
}
