//! Frames held by one owner with its own way to their bytes: the
//! compressed pool's frames.
//!
//! The pool keeps its data in whole frames that it takes and gives back
//! while the kernel runs (unlike the permanent users of
//! [`ClaimedFrames`](super::direct::ClaimedFrames)). [`PooledFrames`]
//! moves them between the allocator and itself ([`HeldFrames::take`],
//! [`HeldFrames::give_back`]) in state `Pooled`, which the direct map's
//! page access refuses, and remembers which it holds in a bitmap: its
//! byte access answers only for those. So a frame's bytes are reachable
//! from exactly one place while the pool holds it, and from nowhere here
//! once it is given back.

use alloc::vec;
use alloc::vec::Vec;

use super::direct::{Page, IDENTITY_END_PFN};
use super::frame::{FrameAllocator, FrameError, FrameState};
use super::{Pfn, PAGE_SIZE};

/// Frames one owner takes from the allocator and reaches itself. The
/// kernel implements it with [`PooledFrames`]; host tests with
/// `testing::FakeHeldFrames`.
pub trait HeldFrames {
    /// Takes a free frame (it becomes `Pooled`), or `None` when the
    /// allocator has none.
    fn take(&mut self, frames: &mut FrameAllocator<'_>) -> Option<Pfn>;
    /// Gives a held frame back to the allocator (it becomes free).
    fn give_back(&mut self, frames: &mut FrameAllocator<'_>, pfn: Pfn) -> Result<(), FrameError>;
    /// The bytes of a held frame; `None` if `pfn` is not held.
    fn page(&self, pfn: Pfn) -> Option<&Page>;
    /// The bytes of a held frame, writable; `None` if `pfn` is not held.
    fn page_mut(&mut self, pfn: Pfn) -> Option<&mut Page>;
    /// Frames held now.
    fn held(&self) -> u64;
}

/// The kernel's [`HeldFrames`], through the identity map.
#[derive(Debug)]
pub struct PooledFrames {
    /// One bit per frame below `end_pfn`.
    bits: Vec<u64>,
    end_pfn: Pfn,
    held: u64,
}

impl PooledFrames {
    /// An empty set for frames below `end_pfn` (the allocator's window).
    ///
    /// # Safety
    /// `[0, end_pfn)` is identity-mapped RAM or holes for the rest of the
    /// kernel's life (the direct map's promise), and the allocator passed
    /// to [`HeldFrames::take`] is the kernel's one allocator, whose
    /// `Pooled` frames nothing else reaches (the direct map refuses them).
    pub unsafe fn new(end_pfn: Pfn) -> Self {
        let end_pfn = end_pfn.min(IDENTITY_END_PFN);
        PooledFrames {
            bits: vec![0; end_pfn.div_ceil(64) as usize],
            end_pfn,
            held: 0,
        }
    }

    fn is_held(&self, pfn: Pfn) -> bool {
        pfn < self.end_pfn && self.bits[(pfn / 64) as usize] & (1 << (pfn % 64)) != 0
    }
}

impl HeldFrames for PooledFrames {
    fn take(&mut self, frames: &mut FrameAllocator<'_>) -> Option<Pfn> {
        let a = frames.alloc_as(FrameState::Pooled)?;
        if a.pfn >= self.end_pfn || self.is_held(a.pfn) {
            // Not ours to reach: give it straight back.
            let _ = frames.free_as(a.pfn, FrameState::Pooled);
            return None;
        }
        self.bits[(a.pfn / 64) as usize] |= 1 << (a.pfn % 64);
        self.held += 1;
        Some(a.pfn)
    }

    fn give_back(&mut self, frames: &mut FrameAllocator<'_>, pfn: Pfn) -> Result<(), FrameError> {
        if !self.is_held(pfn) {
            return Err(FrameError::WrongState {
                pfn,
                expected: FrameState::Pooled,
                found: frames.state(pfn).unwrap_or(FrameState::Absent),
            });
        }
        frames.free_as(pfn, FrameState::Pooled)?;
        self.bits[(pfn / 64) as usize] &= !(1 << (pfn % 64));
        self.held -= 1;
        Ok(())
    }

    fn page(&self, pfn: Pfn) -> Option<&Page> {
        if !self.is_held(pfn) {
            return None;
        }
        // SAFETY: `pfn` is held: this set took it from the allocator as
        // `Pooled` (so nothing else reaches it) and has not given it back;
        // it is identity-mapped (below end_pfn, contract of `new`). The
        // shared borrow of `self` keeps `page_mut` from making a mutable
        // reference while this one lives. Any bytes are a valid page.
        Some(unsafe { &*((pfn * PAGE_SIZE) as *const Page) })
    }

    fn page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        if !self.is_held(pfn) {
            return None;
        }
        // SAFETY: as in `page`; `&mut self` makes this the only reference
        // made from the set while it lives.
        Some(unsafe { &mut *((pfn * PAGE_SIZE) as *mut Page) })
    }

    fn held(&self) -> u64 {
        self.held
    }
}
