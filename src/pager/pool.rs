//! The compressed pool's frames: [`PoolStock`] gives `zpool` frames from
//! a small stock of held frames, so that the pool never has to reach the
//! allocator itself (it cannot: it owns its frame source, and the
//! allocator belongs to the loop). The pager restocks before every store
//! and gives freed frames back after every operation, from the loop or
//! from fault context alike, with the allocator it has in hand.

use alloc::vec::Vec;

use crate::mm::direct::Page;
use crate::mm::frame::FrameAllocator;
use crate::mm::held::HeldFrames;
use crate::mm::Pfn;
use crate::swap::zpool::PoolFrames;

/// Frames a store may need at most: one zspage (1 to 4 frames).
pub const STORE_STOCK_FRAMES: usize = 4;

/// The pool's frame source over held frames.
#[derive(Debug)]
pub struct PoolStock<H> {
    held: H,
    /// Held frames the pool does not use yet.
    stock: Vec<Pfn>,
    /// Held frames the pool has given back, to return to the allocator.
    freed: Vec<Pfn>,
    /// Frames the pool uses.
    in_pool: u64,
}

impl<H: HeldFrames> PoolStock<H> {
    /// An empty stock over `held`.
    pub fn new(held: H) -> Self {
        PoolStock {
            held,
            stock: Vec::new(),
            freed: Vec::new(),
            in_pool: 0,
        }
    }

    /// Returns the frames the pool freed to the allocator, then takes
    /// frames until the stock holds `want` (fewer if the allocator runs
    /// out).
    pub fn restock(&mut self, frames: &mut FrameAllocator<'_>, want: usize) {
        self.settle(frames);
        while self.stock.len() < want {
            match self.held.take(frames) {
                Some(pfn) => self.stock.push(pfn),
                None => break,
            }
        }
    }

    /// Returns the frames the pool freed to the allocator.
    pub fn settle(&mut self, frames: &mut FrameAllocator<'_>) {
        while let Some(pfn) = self.freed.pop() {
            if let Err(e) = self.held.give_back(frames, pfn) {
                // Still held: it stays out of use, counted, never lost
                // to someone else.
                log::error!("pool frame {pfn:#x} not given back: {e}");
                self.stock.push(pfn);
                break;
            }
        }
    }

    /// Returns the stock too (the pool keeps what it uses).
    pub fn drain(&mut self, frames: &mut FrameAllocator<'_>) {
        self.freed.append(&mut self.stock);
        self.settle(frames);
    }

    /// Frames held in all: in the pool, in stock, freed and not yet
    /// returned.
    pub fn held_frames(&self) -> u64 {
        self.held.held()
    }

    /// Frames the pool uses.
    pub fn in_pool(&self) -> u64 {
        self.in_pool
    }
}

impl<H: HeldFrames> PoolFrames for PoolStock<H> {
    fn alloc_frame(&mut self) -> Option<Pfn> {
        let pfn = self.stock.pop()?;
        self.in_pool += 1;
        Some(pfn)
    }

    fn free_frame(&mut self, pfn: Pfn) {
        self.in_pool = self.in_pool.saturating_sub(1);
        self.freed.push(pfn);
    }

    fn frame(&self, pfn: Pfn) -> &Page {
        match self.held.page(pfn) {
            Some(p) => p,
            // The pool only names frames it was given (PoolFrames'
            // contract): anything else is a pool bug.
            None => panic!("zpool read frame {pfn:#x}, which it does not hold"),
        }
    }

    fn frame_mut(&mut self, pfn: Pfn) -> &mut Page {
        match self.held.page_mut(pfn) {
            Some(p) => p,
            None => panic!("zpool wrote frame {pfn:#x}, which it does not hold"),
        }
    }
}
