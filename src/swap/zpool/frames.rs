//! Where the pool's frames come from: [`PoolFrames`].
//!
//! The pool stores compressed data in whole guest frames it takes from
//! this trait, so every byte it holds is a frame the guest owns (and counts
//! as its memory). The kernel implements it over the frame allocator and
//! the direct map; host tests and the benchmark use [`VecFrames`].

use alloc::vec;
use alloc::vec::Vec;

use crate::mm::Pfn;
use crate::swap::tmem::{Page, PAGE_BYTES};

/// A source of frames the pool may write.
///
/// Contract (the pool relies on all of it):
/// - `alloc_frame` returns a frame no one else uses, or `None` when there
///   is none (the pool then refuses with [`Refusal::NoMemory`]); its
///   content is arbitrary;
/// - the pool calls `frame`/`frame_mut` and `free_frame` only with pfns
///   that `alloc_frame` returned and that it has not freed since, and
///   frees each exactly once;
/// - `frame(pfn)` always reads what the last `frame_mut(pfn)` wrote:
///   nothing else writes an allocated frame.
///
/// [`Refusal::NoMemory`]: crate::swap::tmem::Refusal::NoMemory
pub trait PoolFrames {
    /// Takes a frame for the pool.
    fn alloc_frame(&mut self) -> Option<Pfn>;
    /// Gives back a frame the pool took.
    fn free_frame(&mut self, pfn: Pfn);
    /// The contents of an allocated frame.
    fn frame(&self, pfn: Pfn) -> &Page;
    /// The contents of an allocated frame, for writing.
    fn frame_mut(&mut self, pfn: Pfn) -> &mut Page;
}

/// Frames in a `Vec`, for host tests and the benchmark: `capacity` frames
/// numbered `base..base + capacity`, handed out lowest first, freed frames
/// again first (LIFO). It checks the [`PoolFrames`] contract and panics on
/// a violation (a pool bug); freed frames are poisoned.
#[derive(Debug)]
pub struct VecFrames {
    base: Pfn,
    data: Vec<Page>,
    in_use: Vec<bool>,
    free: Vec<Pfn>,
    allocated: u64,
    /// Refuse allocations once this many frames are out (models an empty
    /// frame allocator).
    pub fail_after_frames: Option<u64>,
}

impl VecFrames {
    /// `capacity` frames starting at pfn `base`.
    pub fn new(base: Pfn, capacity: usize) -> Self {
        let free = (0..capacity as u64).rev().map(|i| base + i).collect();
        VecFrames {
            base,
            data: vec![[0xa5; PAGE_BYTES]; capacity],
            in_use: vec![false; capacity],
            free,
            allocated: 0,
            fail_after_frames: None,
        }
    }

    /// Frames currently handed out.
    pub fn allocated_frames(&self) -> u64 {
        self.allocated
    }

    fn slot(&self, pfn: Pfn) -> usize {
        let i = pfn
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.data.len());
        match i {
            Some(i) => i,
            None => panic!("pfn {pfn:#x} outside the pool's frames"),
        }
    }

    fn live(&self, pfn: Pfn) -> usize {
        let i = self.slot(pfn);
        assert!(self.in_use[i], "pfn {pfn:#x} used while free");
        i
    }
}

impl PoolFrames for VecFrames {
    fn alloc_frame(&mut self) -> Option<Pfn> {
        if self
            .fail_after_frames
            .is_some_and(|limit| self.allocated >= limit)
        {
            return None;
        }
        let pfn = self.free.pop()?;
        let i = self.slot(pfn);
        self.in_use[i] = true;
        self.allocated += 1;
        Some(pfn)
    }

    fn free_frame(&mut self, pfn: Pfn) {
        let i = self.live(pfn);
        self.in_use[i] = false;
        // Poison: a pool that reads a freed frame sees garbage, not its
        // old data.
        self.data[i] = [0x5a; PAGE_BYTES];
        self.allocated -= 1;
        self.free.push(pfn);
    }

    fn frame(&self, pfn: Pfn) -> &Page {
        &self.data[self.live(pfn)]
    }

    fn frame_mut(&mut self, pfn: Pfn) -> &mut Page {
        let i = self.live(pfn);
        &mut self.data[i]
    }
}
