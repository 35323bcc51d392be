//! Host tests of the frame allocator, and a model-based property test.

use super::*;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

fn ranges(v: &[(u64, u64)]) -> Vec<PfnRange> {
    v.iter()
        .map(|&(start, count)| PfnRange { start, count })
        .collect()
}

#[test]
fn new_covers_ram_only() {
    let ram = ranges(&[(10, 4), (20, 2), (12, 4)]);
    let (base, len) = FrameAllocator::window_for(&ram);
    assert_eq!((base, len), (10, 12));
    let mut meta = vec![FrameMeta::ABSENT; len as usize];
    let fa = FrameAllocator::new(&mut meta, base, &ram).unwrap();
    assert_eq!(fa.total_pages(), 8);
    assert_eq!(fa.state(16), Some(FrameState::Absent));
    assert_eq!(fa.state(21), Some(FrameState::Free));
    assert_eq!(fa.state(22), None);
    fa.check_invariants().unwrap();
}

#[test]
fn alloc_low_balloon_high_and_dirty_reuse() {
    let ram = ranges(&[(0, 8)]);
    let mut meta = vec![FrameMeta::ABSENT; 8];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
    let a = fa.alloc_frame().unwrap();
    assert_eq!(
        a,
        Allocation {
            pfn: 0,
            zeroed: true
        }
    );
    assert_eq!(
        fa.take_for_balloon(),
        Some(TakenFrame {
            pfn: 7,
            dirty: false
        })
    );
    fa.free(0).unwrap();
    assert_eq!(
        fa.free(0),
        Err(FrameError::WrongState {
            pfn: 0,
            expected: FrameState::Allocated,
            found: FrameState::Free
        })
    );
    // The dirty frame is reused first and reported as not zeroed.
    assert_eq!(
        fa.alloc_frame(),
        Some(Allocation {
            pfn: 0,
            zeroed: false
        })
    );
    fa.check_invariants().unwrap();
}

#[test]
fn balloon_round_trip_restores_clean_frame() {
    let ram = ranges(&[(100, 4)]);
    let mut meta = vec![FrameMeta::ABSENT; 4];
    let mut fa = FrameAllocator::new(&mut meta, 100, &ram).unwrap();
    let p = fa.alloc().unwrap();
    fa.free(p).unwrap();
    // Take everything: clean high first, the dirty one last.
    let taken: Vec<_> = core::iter::from_fn(|| fa.take_for_balloon()).collect();
    assert_eq!(
        taken.iter().map(|t| t.pfn).collect::<Vec<_>>(),
        vec![103, 102, 101, 100]
    );
    assert!(taken[3].dirty);
    fa.mark_scrubbed(100).unwrap();
    for t in &taken {
        fa.mark_ballooned(t.pfn).unwrap();
    }
    assert_eq!(fa.ballooned_pages(), 4);
    let mut buf = [0; 8];
    assert_eq!(fa.peek_ballooned(&mut buf), 4);
    assert_eq!(fa.unballoon(buf[0]), Ok(()));
    assert_eq!(fa.is_dirty(buf[0]), Some(false));
    assert!(fa.unballoon(buf[0]).is_err());
    fa.check_invariants().unwrap();
}

#[test]
fn runs_and_the_ballooned_walk() {
    let ram = ranges(&[(0, 6), (8, 8)]);
    let mut meta = vec![FrameMeta::ABSENT; 16];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
    assert_eq!(fa.peek_for_balloon(), Some(15));
    assert_eq!(fa.run_in_state(8, 8, FrameState::Free), Ok(()));
    assert_eq!(fa.run_in_state(3, 0, FrameState::Free), Ok(()));
    assert_eq!(
        fa.run_in_state(4, 4, FrameState::Free),
        Err(FrameError::WrongState {
            pfn: 6,
            expected: FrameState::Free,
            found: FrameState::Absent
        })
    );
    assert_eq!(
        fa.run_in_state(12, 8, FrameState::Free),
        Err(FrameError::OutOfRange(19))
    );
    assert!(fa.run_in_state(u64::MAX, 2, FrameState::Free).is_err());
    let p = fa.alloc_contiguous(1, 1).unwrap();
    assert!(fa.take_run_for_balloon(0, 4).is_err());
    assert_eq!(fa.free(p), Ok(()));
    assert_eq!(fa.take_run_for_balloon(8, 8), Ok(()));
    assert_eq!(fa.counts().taken_pages, 8);
    assert_eq!(fa.is_dirty(8), Some(false));
    assert_eq!(fa.peek_for_balloon(), Some(5));
    for pfn in 8..16 {
        fa.mark_ballooned(pfn).unwrap();
    }
    assert_eq!(fa.run_in_state(8, 8, FrameState::Ballooned), Ok(()));
    // The walk sees the list as peek_ballooned does.
    let mut buf = [0; 16];
    let n = fa.peek_ballooned(&mut buf);
    let walk: Vec<Pfn> =
        core::iter::successors(fa.next_ballooned(None), |&p| fa.next_ballooned(Some(p))).collect();
    assert_eq!(walk, buf[..n].to_vec());
    assert_eq!(walk, (8..16).rev().collect::<Vec<_>>());
    assert_eq!(fa.next_ballooned(Some(3)), None);
    assert_eq!(fa.next_ballooned(Some(99)), None);
    fa.check_invariants().unwrap();
}

#[test]
fn return_taken_in_reverse_restores_order() {
    let ram = ranges(&[(0, 6)]);
    let mut meta = vec![FrameMeta::ABSENT; 6];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
    let a = fa.take_for_balloon().unwrap();
    let b = fa.take_for_balloon().unwrap();
    fa.return_taken(b.pfn).unwrap();
    fa.return_taken(a.pfn).unwrap();
    assert_eq!(fa.take_for_balloon(), Some(a));
    fa.check_invariants().unwrap();
}

#[test]
fn contiguous_respects_alignment_and_holes() {
    let ram = ranges(&[(1, 3), (5, 11)]);
    let mut meta = vec![FrameMeta::ABSENT; 16];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
    assert_eq!(fa.alloc_contiguous(4, 4), Some(8));
    assert_eq!(fa.alloc_contiguous(3, 1), Some(1));
    assert_eq!(fa.alloc_contiguous(3, 1), Some(5));
    assert_eq!(fa.alloc_contiguous(5, 1), None);
    assert_eq!(fa.alloc_contiguous(0, 1), None);
    assert_eq!(fa.alloc_contiguous(1, 0), None);
    assert_eq!(fa.allocated_pages(), 10);
    fa.check_invariants().unwrap();
}

#[test]
fn reserve_range_is_all_or_nothing() {
    let ram = ranges(&[(0, 8)]);
    let mut meta = vec![FrameMeta::ABSENT; 8];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
    let p = fa.alloc().unwrap();
    let before = fa.counts();
    assert!(fa.reserve_range(0, 4).is_err());
    assert_eq!(fa.counts(), before);
    assert_eq!(fa.reserve_range(4, 100), Ok(4));
    assert_eq!(fa.reserve_range(4, 2), Ok(0));
    assert_eq!(fa.reserve_range(u64::MAX - 1, 10), Ok(0));
    fa.free(p).unwrap();
    assert_eq!(fa.counts().reserved_pages, 4);
    fa.check_invariants().unwrap();
}

#[test]
fn bad_pfns_are_errors() {
    let ram = ranges(&[(10, 2)]);
    let mut meta = vec![FrameMeta::ABSENT; 4];
    let mut fa = FrameAllocator::new(&mut meta, 10, &ram).unwrap();
    assert_eq!(fa.free(3), Err(FrameError::OutOfRange(3)));
    assert_eq!(fa.free(u64::MAX), Err(FrameError::OutOfRange(u64::MAX)));
    assert!(matches!(
        fa.take_free(13),
        Err(FrameError::WrongState {
            found: FrameState::Absent,
            ..
        })
    ));
    assert!(fa.mark_ballooned(12).is_err());
    let mut big = vec![FrameMeta::ABSENT; 2];
    assert!(FrameAllocator::new(&mut big, u64::MAX, &ram).is_err());
}

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    Free(usize),
    TakeFree(usize),
    TakeBalloon,
    Scrub(usize),
    ReturnTaken(usize),
    MarkBallooned(usize),
    Unballoon(usize),
    Contig(u64, u64),
    Reserve(usize, u64),
    TakeRun(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Alloc),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::TakeFree),
        3 => Just(Op::TakeBalloon),
        1 => any::<usize>().prop_map(Op::Scrub),
        2 => any::<usize>().prop_map(Op::ReturnTaken),
        2 => any::<usize>().prop_map(Op::MarkBallooned),
        2 => any::<usize>().prop_map(Op::Unballoon),
        1 => (1u64..6, 1u64..5).prop_map(|(c, a)| Op::Contig(c, a)),
        1 => (any::<usize>(), 0u64..4).prop_map(|(s, c)| Op::Reserve(s, c)),
        2 => (any::<usize>(), 0u64..6).prop_map(|(s, c)| Op::TakeRun(s, c)),
    ]
}

/// Model: pfn -> (state, dirty) for RAM frames.
type Model = BTreeMap<Pfn, (FrameState, bool)>;

fn pick(model: &Model, k: usize) -> Pfn {
    // Any pfn of the window, including holes and one past the end.
    let keys: Vec<_> = model.keys().copied().collect();
    let span = keys.last().map_or(1, |l| l + 3);
    (k as u64) % span
}

fn check_same(fa: &FrameAllocator<'_>, model: &Model) {
    fa.check_invariants().unwrap();
    for (&pfn, &(st, dirty)) in model {
        assert_eq!(fa.state(pfn), Some(st), "pfn {pfn}");
        assert_eq!(fa.is_dirty(pfn), Some(dirty), "pfn {pfn}");
    }
    let count = |s| model.values().filter(|(st, _)| *st == s).count() as u64;
    let c = fa.counts();
    assert_eq!(c.free_pages, count(FrameState::Free));
    assert_eq!(c.allocated_pages, count(FrameState::Allocated));
    assert_eq!(c.ballooned_pages, count(FrameState::Ballooned));
    assert_eq!(c.taken_pages, count(FrameState::Taken));
    assert_eq!(c.reserved_pages, count(FrameState::Reserved));
    assert_eq!(c.total_pages, model.len() as u64);
}

proptest! {
    #[test]
    fn matches_model(
        holes in proptest::collection::btree_set(0u64..40, 0..10),
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let ram: Vec<PfnRange> = (0u64..40)
            .filter(|p| !holes.contains(p))
            .map(|p| PfnRange { start: p, count: 1 })
            .collect();
        let mut meta = vec![FrameMeta::ABSENT; 40];
        let mut fa = FrameAllocator::new(&mut meta, 0, &ram).unwrap();
        let mut model: Model = ram.iter().map(|r| (r.start, (FrameState::Free, false))).collect();
        let st = |m: &Model, p: Pfn| m.get(&p).map(|x| x.0);
        for op in ops {
            let before = fa.counts();
            match op {
                Op::Alloc => match fa.alloc_frame() {
                    Some(a) => {
                        let (s, d) = model[&a.pfn];
                        prop_assert_eq!(s, FrameState::Free);
                        prop_assert_eq!(a.zeroed, !d);
                        // Dirty frames are used before clean ones.
                        if !d { prop_assert!(model.values().all(|x| x.0 != FrameState::Free || !x.1)); }
                        model.insert(a.pfn, (FrameState::Allocated, true));
                    }
                    None => prop_assert!(model.values().all(|x| x.0 != FrameState::Free)),
                },
                Op::Free(k) => {
                    let p = pick(&model, k);
                    let r = fa.free(p);
                    if st(&model, p) == Some(FrameState::Allocated) {
                        prop_assert!(r.is_ok());
                        model.insert(p, (FrameState::Free, true));
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::TakeFree(k) => {
                    let p = pick(&model, k);
                    let r = fa.take_free(p);
                    if st(&model, p) == Some(FrameState::Free) {
                        prop_assert!(r.is_ok());
                        model.insert(p, (FrameState::Allocated, true));
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::TakeBalloon => match (fa.peek_for_balloon(), fa.take_for_balloon()) {
                    (peeked, Some(t)) => {
                        prop_assert_eq!(peeked, Some(t.pfn));
                        let (s, d) = model[&t.pfn];
                        prop_assert_eq!(s, FrameState::Free);
                        prop_assert_eq!(t.dirty, d);
                        if d { prop_assert!(model.values().all(|x| x.0 != FrameState::Free || x.1)); }
                        model.insert(t.pfn, (FrameState::Taken, d));
                    }
                    (peeked, None) => {
                        prop_assert_eq!(peeked, None);
                        prop_assert!(model.values().all(|x| x.0 != FrameState::Free));
                    }
                },
                Op::TakeRun(k, count) => {
                    let s = pick(&model, k);
                    let all_free = (s..s + count).all(|p| st(&model, p) == Some(FrameState::Free));
                    prop_assert_eq!(fa.run_in_state(s, count, FrameState::Free).is_ok(), all_free);
                    let r = fa.take_run_for_balloon(s, count);
                    if all_free {
                        prop_assert!(r.is_ok());
                        for p in s..s + count {
                            let d = model[&p].1;
                            model.insert(p, (FrameState::Taken, d));
                        }
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::Scrub(k) => {
                    let p = pick(&model, k);
                    let r = fa.mark_scrubbed(p);
                    if st(&model, p) == Some(FrameState::Taken) {
                        prop_assert!(r.is_ok());
                        model.insert(p, (FrameState::Taken, false));
                    } else {
                        prop_assert!(r.is_err());
                    }
                }
                Op::ReturnTaken(k) => {
                    let p = pick(&model, k);
                    let r = fa.return_taken(p);
                    if st(&model, p) == Some(FrameState::Taken) {
                        prop_assert!(r.is_ok());
                        let d = model[&p].1;
                        model.insert(p, (FrameState::Free, d));
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::MarkBallooned(k) => {
                    let p = pick(&model, k);
                    let r = fa.mark_ballooned(p);
                    if matches!(st(&model, p), Some(FrameState::Taken | FrameState::Free)) {
                        prop_assert!(r.is_ok());
                        model.insert(p, (FrameState::Ballooned, false));
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::Unballoon(k) => {
                    let p = pick(&model, k);
                    let r = fa.unballoon(p);
                    if st(&model, p) == Some(FrameState::Ballooned) {
                        prop_assert!(r.is_ok());
                        model.insert(p, (FrameState::Free, false));
                    } else {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    }
                }
                Op::Contig(count, align) => {
                    let exists = (0..40u64).filter(|s| s % align == 0).find(|&s| {
                        (s..s + count).all(|p| st(&model, p) == Some(FrameState::Free))
                    });
                    let got = fa.alloc_contiguous(count, align);
                    prop_assert_eq!(got, exists);
                    if let Some(s) = got {
                        for p in s..s + count {
                            model.insert(p, (FrameState::Allocated, true));
                        }
                    }
                }
                Op::Reserve(k, count) => {
                    let s = pick(&model, k);
                    let blocked = (s..s + count).any(|p| matches!(
                        st(&model, p),
                        Some(FrameState::Allocated | FrameState::Taken | FrameState::Ballooned)
                    ));
                    let r = fa.reserve_range(s, count);
                    if blocked {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(fa.counts(), before);
                    } else {
                        let mut n = 0;
                        for p in s..s + count {
                            if st(&model, p) == Some(FrameState::Free) {
                                model.insert(p, (FrameState::Reserved, true));
                                n += 1;
                            }
                        }
                        prop_assert_eq!(r, Ok(n));
                    }
                }
            }
            check_same(&fa, &model);
        }
    }
}
