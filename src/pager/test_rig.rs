//! The pieces every pager test builds its guest from (host tests only): a
//! frame allocator, a Xen that holds every frame and has none to give,
//! and a balloon with no margin.

use alloc::boxed::Box;
use alloc::vec;

use crate::balloon::{Balloon, BalloonConfig};
use crate::mm::frame::{FrameAllocator, FrameMeta};
use crate::mm::PfnRange;
use crate::testing::fake_xen::FakeXen;

/// Frames the tests' "kernel" holds (reserved at the bottom of RAM).
pub const KERNEL: u64 = 64;

/// An allocator over `frames` RAM frames from 0, the first `reserved` of
/// them the "kernel"'s. Its metadata is leaked: the allocator borrows it
/// for the whole test.
pub fn allocator(frames: u64, reserved: u64) -> FrameAllocator<'static> {
    let meta = Box::leak(vec![FrameMeta::ABSENT; frames as usize].into_boxed_slice());
    let ram = [PfnRange {
        start: 0,
        count: frames,
    }];
    let mut fa = FrameAllocator::new(meta, 0, &ram).unwrap();
    if reserved > 0 {
        fa.reserve_range(0, reserved).unwrap();
    }
    fa
}

/// A Xen that backs all `frames` and has no free memory for the domain.
pub fn full_xen(frames: u64) -> FakeXen {
    let mut xen = FakeXen {
        max_pages: frames,
        host_free_pages: 0,
        max_extents: 512,
        max_order: 9,
        ..FakeXen::default()
    };
    xen.backed.extend(0..frames);
    xen
}

/// A balloon for `fa`'s guest, with no margin above what is in use.
pub fn balloon(fa: &FrameAllocator<'_>) -> Balloon {
    Balloon::new(
        BalloonConfig {
            margin_pages: 0,
            ..BalloonConfig::default()
        },
        fa.counts(),
    )
}
