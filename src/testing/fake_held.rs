//! `FakeHeldFrames`: the pool's frames for host tests, taken from the
//! real frame allocator (so the accounting is the kernel's) with their
//! bytes in boxes.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::frame::{FrameAllocator, FrameError, FrameState};
use crate::mm::held::HeldFrames;
use crate::mm::Pfn;

/// Held frames and their bytes.
#[derive(Debug, Default)]
pub struct FakeHeldFrames {
    pages: BTreeMap<Pfn, Box<Page>>,
}

impl HeldFrames for FakeHeldFrames {
    fn take(&mut self, frames: &mut FrameAllocator<'_>) -> Option<Pfn> {
        let a = frames.alloc_as(FrameState::Pooled)?;
        self.pages.insert(a.pfn, Box::new([0xa5; PAGE_BYTES]));
        Some(a.pfn)
    }

    fn give_back(&mut self, frames: &mut FrameAllocator<'_>, pfn: Pfn) -> Result<(), FrameError> {
        if !self.pages.contains_key(&pfn) {
            return Err(FrameError::WrongState {
                pfn,
                expected: FrameState::Pooled,
                found: frames.state(pfn).unwrap_or(FrameState::Absent),
            });
        }
        frames.free_as(pfn, FrameState::Pooled)?;
        self.pages.remove(&pfn);
        Ok(())
    }

    fn page(&self, pfn: Pfn) -> Option<&Page> {
        self.pages.get(&pfn).map(|b| &**b)
    }

    fn page_mut(&mut self, pfn: Pfn) -> Option<&mut Page> {
        self.pages.get_mut(&pfn).map(|b| &mut **b)
    }

    fn held(&self) -> u64 {
        self.pages.len() as u64
    }
}
