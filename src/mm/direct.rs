//! The direct map: the one place where a frame number becomes memory.
//!
//! `boot/entry.S` maps guest-physical `[0, 4 GiB)` one to one (virtual ==
//! physical), writable, for the life of the kernel. Everything above `mm`
//! reaches a frame's bytes through this module, never by turning
//! `pfn << 12` into a pointer itself. The safety argument is made here,
//! once:
//!
//! 1. **Mapping.** [`DirectMap::new`] is `unsafe`: its caller promises the
//!    identity map covers `[0, end_pfn)` and that the ranges it passes are
//!    every byte of RAM already in use (kernel image, boot data, loader
//!    modules). Every access below checks `pfn < end_pfn`.
//! 2. **Ownership.** A frame's owner is recorded in the frame allocator. A
//!    frame in state `Allocated` or `Taken` belongs to the kernel's page
//!    users (the workload, the balloon on its way out, the selftest) and is
//!    reached *only* through [`DirectMap::page_mut`], which checks the
//!    state under a shared borrow of the allocator, so the frame cannot be
//!    freed or ballooned while the returned reference lives.
//! 3. **Aliasing.** `page_mut` takes `&mut self`: the kernel has a single
//!    `DirectMap`, so at most one page reference made from it is alive at
//!    a time.
//! 4. **Permanent users** (the heap, the frame metadata, pages shared with
//!    Xen: shared info, the console and xenstore rings) never hold
//!    `Allocated` frames: [`DirectMap::claim`] and [`DirectMap::claim_xen_page`]
//!    move their frames to `Reserved` (or find them outside RAM) and hand
//!    out a [`ClaimedFrames`] token, which is not `Clone`. Whoever holds the
//!    token is the only user of those bytes, for good; the typed
//!    constructors that take it (`KernelHeap::add_frames`,
//!    `PvConsole::new`, the xenstore ring, shared info) are the only ones
//!    that turn it into a pointer.
//!
//! So a page reference from here never aliases another live reference, and
//! no pointer is ever made to a frame the allocator could hand to someone
//! else.

use alloc::vec::Vec;
use core::fmt;

use super::frame::{FrameAllocator, FrameError, FrameMeta, FrameState};
use super::{Pfn, PfnRange, PAGE_SIZE};

/// Bytes in one page.
pub const PAGE_BYTES: usize = PAGE_SIZE as usize;

/// One page of memory.
pub type Page = [u8; PAGE_BYTES];

/// Frames the boot page tables map one to one: the first 4 GiB.
pub const IDENTITY_END_PFN: Pfn = (4u64 << 30) / PAGE_SIZE;

/// Why the direct map refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectMapError {
    /// The frame lies at or above the end of the identity map.
    Unmapped(Pfn),
    /// The frame is not one the caller may touch: the allocator shows it in
    /// another state (`None`: outside the allocator).
    NotOwned(Pfn, Option<FrameState>),
    /// The page was claimed before.
    AlreadyClaimed(Pfn),
    /// No free frames for the claim.
    NoFrames,
    /// The allocator refused the transition.
    Frame(FrameError),
}

impl fmt::Display for DirectMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DirectMapError::Unmapped(p) => write!(f, "pfn {p:#x} is outside the direct map"),
            DirectMapError::NotOwned(p, s) => write!(f, "pfn {p:#x} is not ours to touch ({s:?})"),
            DirectMapError::AlreadyClaimed(p) => write!(f, "pfn {p:#x} is claimed already"),
            DirectMapError::NoFrames => write!(f, "no free frames to claim"),
            DirectMapError::Frame(e) => write!(f, "{e}"),
        }
    }
}

/// Access to the bytes of frames the caller owns. The kernel implements it
/// with the [`DirectMap`]; host tests with a map of boxed pages.
pub trait PhysPages {
    /// The bytes of `pfn`, which `frames` must show `Allocated` or `Taken`.
    fn page_mut<'a>(
        &'a mut self,
        frames: &'a FrameAllocator<'_>,
        pfn: Pfn,
    ) -> Result<&'a mut Page, DirectMapError>;
}

/// Whether `frames` shows `pfn` in a state whose bytes the page users own.
pub fn check_owned(frames: &FrameAllocator<'_>, pfn: Pfn) -> Result<(), DirectMapError> {
    match frames.state(pfn) {
        Some(FrameState::Allocated | FrameState::Taken) => Ok(()),
        s => Err(DirectMapError::NotOwned(pfn, s)),
    }
}

/// Frames handed over for good to one permanent user. Not `Clone`: the
/// holder is the only user of these bytes for the rest of the kernel's
/// life (see the module documentation).
#[derive(Debug)]
pub struct ClaimedFrames {
    start: Pfn,
    count: u64,
}

impl ClaimedFrames {
    /// The first frame.
    pub fn pfn(&self) -> Pfn {
        self.start
    }

    /// How many frames.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Size in bytes.
    pub fn len_bytes(&self) -> usize {
        // Claims are bounded by the identity map (4 GiB), so this fits.
        usize::try_from(self.count.saturating_mul(PAGE_SIZE)).unwrap_or(usize::MAX)
    }

    /// The first byte, as the identity map addresses it. Making the pointer
    /// is safe; using it relies on this token's guarantee.
    pub fn as_mut_ptr<T>(&self) -> *mut T {
        (self.start * PAGE_SIZE) as *mut T
    }

    /// Consumes the token for a user that keeps the frames for the rest of
    /// the kernel's life (a ring, shared info): the pointer to the first
    /// byte. The frames are never claimed again.
    pub fn into_permanent<T>(self) -> *mut T {
        self.as_mut_ptr()
    }
}

/// The identity map of boot. One instance, made at boot.
#[derive(Debug)]
pub struct DirectMap {
    end_pfn: Pfn,
    /// Byte ranges in use before the allocator existed.
    in_use: Vec<(u64, u64)>,
    /// Pages Xen gave us outside the allocator's free frames.
    claimed_xen: Vec<Pfn>,
}

impl DirectMap {
    /// The direct map of `[0, end_pfn)`.
    ///
    /// # Safety
    /// Guest-physical `[0, end_pfn << 12)` is mapped at the same virtual
    /// addresses, writable, for the rest of the kernel's life; `in_use`
    /// lists (start, end) byte ranges covering every byte of RAM something
    /// already uses (image, stacks, boot data, loader modules); and no
    /// other `DirectMap` is ever made.
    pub unsafe fn new(end_pfn: Pfn, in_use: &[(u64, u64)]) -> DirectMap {
        DirectMap {
            end_pfn: end_pfn.min(IDENTITY_END_PFN),
            in_use: in_use.to_vec(),
            claimed_xen: Vec::new(),
        }
    }

    /// One past the last mapped frame.
    pub fn end_pfn(&self) -> Pfn {
        self.end_pfn
    }

    fn check_mapped(&self, start: Pfn, count: u64) -> Result<(), DirectMapError> {
        match start.checked_add(count) {
            Some(end) if end <= self.end_pfn => Ok(()),
            _ => Err(DirectMapError::Unmapped(start)),
        }
    }

    /// Finds `bytes` of RAM in `ram` (page-aligned start, below the end of
    /// the map) that overlap nothing in use, marks them in use, and returns
    /// their start address.
    fn find_unused(&mut self, ram: &[PfnRange], bytes: u64) -> Option<u64> {
        let pages = bytes.div_ceil(PAGE_SIZE);
        for r in ram {
            let mut pfn = r.start;
            while pfn.checked_add(pages)? <= r.end().min(self.end_pfn) {
                let start = pfn * PAGE_SIZE;
                let end = start + pages * PAGE_SIZE;
                match self.in_use.iter().find(|&&(s, e)| s < end && start < e) {
                    None => {
                        self.in_use.push((start, end));
                        return Some(start);
                    }
                    Some(&(_, e)) => pfn = e.div_ceil(PAGE_SIZE),
                }
            }
        }
        None
    }

    /// Carves the frame allocator's metadata (`frames` entries, all
    /// [`FrameMeta::ABSENT`]) from RAM in `ram` that nothing uses, for
    /// good. The caller reserves the returned byte range in the allocator
    /// it builds on the slice.
    pub fn carve_frame_meta(
        &mut self,
        ram: &[PfnRange],
        frames: u64,
    ) -> Option<(&'static mut [FrameMeta], (u64, u64))> {
        let count = usize::try_from(frames).ok()?;
        let bytes = u64::try_from(count.checked_mul(core::mem::size_of::<FrameMeta>())?).ok()?;
        let paddr = self.find_unused(ram, bytes)?;
        let p = paddr as *mut FrameMeta;
        // SAFETY: [paddr, paddr + bytes) is identity-mapped RAM (below
        // end_pfn, inside `ram`) that overlaps nothing in use (the
        // contract of `new` and `find_unused`), and is now recorded as in
        // use, so it is carved once; `p` is page-aligned, so aligned for
        // FrameMeta. Every element is written before the slice is made, so
        // the slice is initialised; it lives for the rest of the kernel.
        let meta = unsafe {
            for i in 0..count {
                p.add(i).write(FrameMeta::ABSENT);
            }
            core::slice::from_raw_parts_mut(p, count)
        };
        Some((meta, (paddr, paddr + bytes)))
    }

    /// Takes `count` contiguous free frames aligned to `align_pages` out of
    /// the allocator for good (they become `Reserved`).
    pub fn claim(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        count: u64,
        align_pages: u64,
    ) -> Result<ClaimedFrames, DirectMapError> {
        let start = frames
            .find_free_run(count, align_pages)
            .ok_or(DirectMapError::NoFrames)?;
        self.check_mapped(start, count)?;
        frames
            .reserve_range(start, count)
            .map_err(DirectMapError::Frame)?;
        Ok(ClaimedFrames { start, count })
    }

    /// Claims a page Xen placed for us (a ring or special page named by an
    /// HVM param): it must be mapped, not free memory someone else could
    /// be handed (a free frame is reserved now), not in use by the kernel,
    /// and not claimed before.
    pub fn claim_xen_page(
        &mut self,
        frames: &mut FrameAllocator<'_>,
        pfn: Pfn,
    ) -> Result<ClaimedFrames, DirectMapError> {
        self.check_mapped(pfn, 1)?;
        if pfn == 0 {
            return Err(DirectMapError::NotOwned(pfn, frames.state(pfn)));
        }
        if self.claimed_xen.contains(&pfn) {
            return Err(DirectMapError::AlreadyClaimed(pfn));
        }
        let start = pfn * PAGE_SIZE;
        if self
            .in_use
            .iter()
            .any(|&(s, e)| s < start + PAGE_SIZE && start < e)
        {
            return Err(DirectMapError::NotOwned(pfn, frames.state(pfn)));
        }
        match frames.state(pfn) {
            None | Some(FrameState::Absent) => {}
            Some(FrameState::Free) => {
                frames
                    .reserve_range(pfn, 1)
                    .map_err(DirectMapError::Frame)?;
            }
            s => return Err(DirectMapError::NotOwned(pfn, s)),
        }
        self.claimed_xen.push(pfn);
        Ok(ClaimedFrames {
            start: pfn,
            count: 1,
        })
    }
}

impl PhysPages for DirectMap {
    fn page_mut<'a>(
        &'a mut self,
        frames: &'a FrameAllocator<'_>,
        pfn: Pfn,
    ) -> Result<&'a mut Page, DirectMapError> {
        self.check_mapped(pfn, 1)?;
        check_owned(frames, pfn)?;
        let p = (pfn * PAGE_SIZE) as *mut Page;
        // SAFETY: the frame is mapped (checked above, contract of `new`),
        // owned by the page users (state checked; the shared borrow of the
        // allocator keeps it so for 'a), reached by nothing but this
        // method, and `&mut self` keeps any other reference made here from
        // living at the same time (module documentation, points 2 and 3).
        // A page is plain bytes: any content is a valid [u8; 4096].
        Ok(unsafe { &mut *p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn allocator(meta: &mut [FrameMeta]) -> FrameAllocator<'_> {
        let ram = [PfnRange {
            start: 0,
            count: meta.len() as u64,
        }];
        FrameAllocator::new(meta, 0, &ram).unwrap()
    }

    /// A map of `end` frames. The tests below never touch memory through
    /// it: they check the bookkeeping only.
    fn map(end: Pfn, in_use: &[(u64, u64)]) -> DirectMap {
        // SAFETY: no method these tests call dereferences an address
        // (claims and checks only; no page_mut, no carve_frame_meta).
        unsafe { DirectMap::new(end, in_use) }
    }

    #[test]
    fn claims_take_frames_for_good() {
        let mut meta = vec![FrameMeta::ABSENT; 64];
        let mut fa = allocator(&mut meta);
        let mut d = map(64, &[]);
        let c = d.claim(&mut fa, 8, 4).unwrap();
        assert_eq!((c.pfn() % 4, c.count(), c.len_bytes()), (0, 8, 8 * 4096));
        for p in c.pfn()..c.pfn() + 8 {
            assert_eq!(fa.state(p), Some(FrameState::Reserved));
            assert!(
                check_owned(&fa, p).is_err(),
                "claimed frames are nobody's pages"
            );
        }
        let c2 = d.claim(&mut fa, 8, 4).unwrap();
        assert!(c2.pfn() >= c.pfn() + 8 || c2.pfn() + 8 <= c.pfn());
        assert_eq!(
            d.claim(&mut fa, 1000, 1).unwrap_err(),
            DirectMapError::NoFrames
        );
        fa.check_invariants().unwrap();
    }

    #[test]
    fn xen_pages_are_checked_once() {
        let mut meta = vec![FrameMeta::ABSENT; 64];
        let mut fa = allocator(&mut meta);
        fa.reserve_range(0, 4).unwrap();
        let mut d = map(128, &[(0, 4 * 4096)]);
        // Outside RAM but mapped: fine, once.
        assert!(d.claim_xen_page(&mut fa, 100).is_ok());
        assert_eq!(
            d.claim_xen_page(&mut fa, 100).unwrap_err(),
            DirectMapError::AlreadyClaimed(100)
        );
        // Beyond the map, in boot data, or page 0: refused.
        assert_eq!(
            d.claim_xen_page(&mut fa, 128).unwrap_err(),
            DirectMapError::Unmapped(128)
        );
        assert!(matches!(
            d.claim_xen_page(&mut fa, 2),
            Err(DirectMapError::NotOwned(2, _))
        ));
        assert!(d.claim_xen_page(&mut fa, 0).is_err());
        // A free RAM frame is reserved; an allocated one is refused.
        assert!(d.claim_xen_page(&mut fa, 40).is_ok());
        assert_eq!(fa.state(40), Some(FrameState::Reserved));
        let a = fa.alloc().unwrap();
        assert_eq!(
            d.claim_xen_page(&mut fa, a).unwrap_err(),
            DirectMapError::NotOwned(a, Some(FrameState::Allocated))
        );
        assert_eq!(fa.state(a), Some(FrameState::Allocated), "unchanged");
    }

    #[test]
    fn ownership_is_allocated_or_taken() {
        let mut meta = vec![FrameMeta::ABSENT; 16];
        let mut fa = allocator(&mut meta);
        let a = fa.alloc().unwrap();
        assert!(check_owned(&fa, a).is_ok());
        let t = fa.take_for_balloon().unwrap().pfn;
        assert!(check_owned(&fa, t).is_ok());
        fa.free(a).unwrap();
        assert!(check_owned(&fa, a).is_err());
        assert!(check_owned(&fa, 1000).is_err());
    }
}
