//! `FakePages`: page bytes for host tests, one boxed page per frame made
//! on first access, with the same ownership check as the direct map.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use crate::mm::direct::{check_owned, DirectMapError, Page, PhysPages, PAGE_BYTES};
use crate::mm::frame::FrameAllocator;
use crate::mm::Pfn;

/// Page bytes by frame.
#[derive(Debug, Default)]
pub struct FakePages {
    pub pages: BTreeMap<Pfn, Box<Page>>,
}

impl PhysPages for FakePages {
    fn page_mut<'a>(
        &'a mut self,
        frames: &'a FrameAllocator<'_>,
        pfn: Pfn,
    ) -> Result<&'a mut Page, DirectMapError> {
        check_owned(frames, pfn)?;
        Ok(self
            .pages
            .entry(pfn)
            .or_insert_with(|| Box::new([0u8; PAGE_BYTES])))
    }
}
