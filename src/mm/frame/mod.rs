//! Physical frame allocator.
//!
//! The allocator never writes into the frames it manages: all bookkeeping
//! lives in a separate [`FrameMeta`] array supplied by the caller (carved
//! from low RAM at boot in the kernel, a `Vec` in tests). This matters
//! under Xen: a guest started in populate-on-demand mode must not touch
//! frames before it has released the excess, and ballooned-out frames are
//! not backed by memory at all, so an intrusive free list would fault or
//! silently populate them.
//!
//! Every frame of the covered window `[base_pfn, base_pfn + meta.len())` is
//! in exactly one [`FrameState`]. Free frames sit on one of two doubly
//! linked lists threaded through the metadata by `u32` index:
//!
//! - the *clean* list holds frames known to be zero (never handed out since
//!   boot, or freshly populated by Xen). At boot it is in ascending pfn
//!   order; [`FrameAllocator::alloc`] takes from its low end and
//!   [`FrameAllocator::take_for_balloon`] from its high end, so a
//!   PoD guest releases memory it has never touched first and the two users
//!   do not fight over the same frames;
//! - the *dirty* list holds frames that were handed out and freed (they may
//!   still hold data and are scrubbed before release). `alloc` prefers it
//!   (LIFO: cache-warm frames), the balloon uses it last.
//!
//! Ballooned frames sit on a third list so that growing can find them in
//! O(1). All single-frame operations are O(1); [`alloc_contiguous`]
//! and [`reserve_range`] are linear, and so are the run operations the
//! balloon uses for 2 MiB extents ([`run_in_state`],
//! [`take_run_for_balloon`]), in the length of the run.
//!
//! [`alloc_contiguous`]: FrameAllocator::alloc_contiguous
//! [`reserve_range`]: FrameAllocator::reserve_range
//! [`run_in_state`]: FrameAllocator::run_in_state
//! [`take_run_for_balloon`]: FrameAllocator::take_run_for_balloon

#![forbid(unsafe_code)]

mod balloon;
mod list;
#[cfg(test)]
mod tests;

use core::fmt;

use super::{Pfn, PfnRange};
use list::{push_back, unlink, List, Which};

/// "No frame" in the metadata links.
const NIL: u32 = u32::MAX;

/// The state of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameState {
    /// Not RAM (hole in the memory map); never counted, never touched.
    Absent,
    /// RAM the allocator never hands out (kernel image, boot data, the
    /// metadata array itself).
    Reserved,
    /// Backed and available.
    Free,
    /// Handed out by `alloc`, `alloc_contiguous` or `take_free`.
    Allocated,
    /// Removed from the free lists by the balloon driver, on its way to Xen
    /// (transient: a balloon operation either releases it or returns it).
    Taken,
    /// Given back to Xen: no memory behind it.
    Ballooned,
    /// Handed to the pager (`alloc_as`): mapped into the pageable region,
    /// reached only through that mapping. Counted as handed out.
    Paged,
    /// Handed to the compressed pool (`alloc_as`): holds pool data,
    /// reached only through the pool's frame access. Counted as handed
    /// out.
    Pooled,
}

/// Per-frame metadata, 12 bytes. Kept outside the frames themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    prev: u32,
    next: u32,
    state: FrameState,
    /// The frame was handed out since boot (or since it was last populated)
    /// and may hold data.
    dirty: bool,
}

impl FrameMeta {
    /// The initial value of every metadata entry before
    /// [`FrameAllocator::new`] runs.
    pub const ABSENT: FrameMeta = FrameMeta {
        prev: NIL,
        next: NIL,
        state: FrameState::Absent,
        dirty: false,
    };
}

impl Default for FrameMeta {
    fn default() -> Self {
        Self::ABSENT
    }
}

/// Why a frame operation was refused. The allocator is unchanged after
/// every error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The pfn lies outside the window the allocator covers.
    OutOfRange(Pfn),
    /// The frame is in the wrong state for the operation (double free,
    /// unballooning a populated frame, ...).
    WrongState {
        /// The frame concerned.
        pfn: Pfn,
        /// The state the operation needs.
        expected: FrameState,
        /// The state the frame is in.
        found: FrameState,
    },
    /// The metadata array is larger than `u32` indices can address, or the
    /// window would wrap the pfn space.
    TooManyFrames,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::OutOfRange(pfn) => write!(f, "pfn {pfn:#x} outside the allocator"),
            FrameError::WrongState {
                pfn,
                expected,
                found,
            } => write!(f, "pfn {pfn:#x} is {found:?}, expected {expected:?}"),
            FrameError::TooManyFrames => write!(f, "too many frames for the allocator"),
        }
    }
}

/// A frame taken out of the free lists for the balloon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakenFrame {
    /// The frame.
    pub pfn: Pfn,
    /// It may hold data and must be scrubbed before it leaves the domain.
    pub dirty: bool,
}

/// A frame handed out by [`FrameAllocator::alloc_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The frame.
    pub pfn: Pfn,
    /// The frame is known to read as zero (never used since boot or since
    /// Xen populated it); the caller may skip zeroing it.
    pub zeroed: bool,
}

/// Frame counts by state. `total_pages` is the RAM frames covered
/// (everything but [`FrameState::Absent`]) and always equals the sum of
/// the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// RAM frames covered.
    pub total_pages: u64,
    /// All free frames (`free_clean_pages + free_dirty_pages`).
    pub free_pages: u64,
    /// Free frames known to be zero.
    pub free_clean_pages: u64,
    /// Free frames that may hold data.
    pub free_dirty_pages: u64,
    /// Frames handed out.
    pub allocated_pages: u64,
    /// Frames in transit to the balloon.
    pub taken_pages: u64,
    /// Frames given back to Xen.
    pub ballooned_pages: u64,
    /// Frames never handed out.
    pub reserved_pages: u64,
}

impl FrameCounts {
    /// Frames backed by memory (everything not ballooned).
    pub const fn populated_pages(&self) -> u64 {
        self.total_pages.saturating_sub(self.ballooned_pages)
    }
}

/// The frame allocator. See the module documentation.
pub struct FrameAllocator<'m> {
    meta: &'m mut [FrameMeta],
    base_pfn: Pfn,
    clean: List,
    dirty: List,
    ballooned: List,
    total_pages: u64,
    taken_pages: u64,
    reserved_pages: u64,
}

impl fmt::Debug for FrameAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("base_pfn", &self.base_pfn)
            .field("frames", &self.meta.len())
            .field("counts", &self.counts())
            .finish()
    }
}

impl<'m> FrameAllocator<'m> {
    /// The metadata window `(base_pfn, frames)` needed to cover `ram`
    /// (sorted or not): from the lowest to one past the highest frame.
    pub fn window_for(ram: &[PfnRange]) -> (Pfn, u64) {
        let lo = ram
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| r.start)
            .min()
            .unwrap_or(0);
        let hi = ram
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| r.end())
            .max()
            .unwrap_or(0);
        (lo, hi.saturating_sub(lo))
    }

    /// Builds an allocator over the window `[base_pfn, base_pfn +
    /// meta.len())`. Every frame of `ram` inside the window becomes Free
    /// and clean; parts of `ram` outside the window are ignored, overlaps
    /// are harmless. The previous contents of `meta` are overwritten.
    ///
    /// Frames already in use at boot (kernel, stacks, page tables, start
    /// info, the metadata array) must be taken out with
    /// [`reserve_range`](Self::reserve_range) before anything is allocated.
    pub fn new(
        meta: &'m mut [FrameMeta],
        base_pfn: Pfn,
        ram: &[PfnRange],
    ) -> Result<Self, FrameError> {
        let len = meta.len() as u64;
        if len >= u64::from(NIL) || base_pfn.checked_add(len).is_none() {
            return Err(FrameError::TooManyFrames);
        }
        meta.fill(FrameMeta::ABSENT);
        let mut this = FrameAllocator {
            meta,
            base_pfn,
            clean: List::EMPTY,
            dirty: List::EMPTY,
            ballooned: List::EMPTY,
            total_pages: 0,
            taken_pages: 0,
            reserved_pages: 0,
        };
        // Mark first, then link in ascending order, so the clean list is
        // sorted whatever the order of `ram`.
        for r in ram {
            let start = r.start.max(base_pfn);
            let end = r.end().min(base_pfn + len);
            let mut pfn = start;
            while pfn < end {
                let i = (pfn - base_pfn) as usize;
                this.meta[i].state = FrameState::Free;
                pfn += 1;
            }
        }
        for i in 0..this.meta.len() {
            if this.meta[i].state == FrameState::Free {
                push_back(this.meta, &mut this.clean, i as u32);
                this.total_pages += 1;
            }
        }
        Ok(this)
    }

    /// First pfn of the covered window.
    pub fn base_pfn(&self) -> Pfn {
        self.base_pfn
    }

    /// One past the last pfn of the covered window.
    pub fn end_pfn(&self) -> Pfn {
        self.base_pfn + self.meta.len() as u64
    }

    #[inline]
    fn index(&self, pfn: Pfn) -> Result<u32, FrameError> {
        match pfn.checked_sub(self.base_pfn) {
            Some(i) if i < self.meta.len() as u64 => Ok(i as u32),
            _ => Err(FrameError::OutOfRange(pfn)),
        }
    }

    fn pfn_of(&self, i: u32) -> Pfn {
        self.base_pfn + u64::from(i)
    }

    fn split(&mut self, which: Which) -> (&mut [FrameMeta], &mut List) {
        let list = match which {
            Which::Clean => &mut self.clean,
            Which::Dirty => &mut self.dirty,
            Which::Ballooned => &mut self.ballooned,
        };
        (&mut *self.meta, list)
    }

    fn free_list_of(&self, i: u32) -> Which {
        if self.meta[i as usize].dirty {
            Which::Dirty
        } else {
            Which::Clean
        }
    }

    fn expect(&self, pfn: Pfn, expected: FrameState) -> Result<u32, FrameError> {
        let i = self.index(pfn)?;
        let found = self.meta[i as usize].state;
        if found == expected {
            Ok(i)
        } else {
            Err(FrameError::WrongState {
                pfn,
                expected,
                found,
            })
        }
    }

    /// Unlinks free frame `i` from its list and gives it `state`.
    fn unlink_free(&mut self, i: u32, state: FrameState) {
        let which = self.free_list_of(i);
        let (meta, list) = self.split(which);
        unlink(meta, list, i);
        meta[i as usize].state = state;
    }

    /// The state of `pfn`, or `None` outside the window.
    pub fn state(&self, pfn: Pfn) -> Option<FrameState> {
        let i = self.index(pfn).ok()?;
        Some(self.meta[i as usize].state)
    }

    /// Whether `pfn` may hold data, or `None` outside the window.
    pub fn is_dirty(&self, pfn: Pfn) -> Option<bool> {
        let i = self.index(pfn).ok()?;
        Some(self.meta[i as usize].dirty)
    }

    /// Allocates one frame: a recently freed one if any, else the lowest
    /// clean one. O(1).
    #[inline]
    pub fn alloc(&mut self) -> Option<Pfn> {
        self.alloc_frame().map(|a| a.pfn)
    }

    /// Like [`alloc`](Self::alloc), and says whether the frame is known
    /// to be zero.
    #[inline]
    pub fn alloc_frame(&mut self) -> Option<Allocation> {
        let (list, zeroed) = if self.dirty.head != NIL {
            (&mut self.dirty, false)
        } else if self.clean.head != NIL {
            (&mut self.clean, true)
        } else {
            return None;
        };
        // Pop the head (its `prev` is already NIL).
        let i = list.head;
        let m = &mut self.meta[i as usize];
        // Links of frames on no list are don't-care: leave `next`.
        let next = m.next;
        m.state = FrameState::Allocated;
        m.dirty = true;
        list.head = next;
        if next == NIL {
            list.tail = NIL;
        } else {
            self.meta[next as usize].prev = NIL;
        }
        list.len -= 1;
        Some(Allocation {
            pfn: self.pfn_of(i),
            zeroed,
        })
    }

    /// Returns an allocated frame. Double frees and frames that were never
    /// allocated are refused. O(1).
    #[inline]
    pub fn free(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let head = self.dirty.head;
        let Some((i, m)) = pfn
            .checked_sub(self.base_pfn)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| Some((i as u32, self.meta.get_mut(i)?)))
        else {
            return Err(FrameError::OutOfRange(pfn));
        };
        if m.state != FrameState::Allocated {
            return Err(FrameError::WrongState {
                pfn,
                expected: FrameState::Allocated,
                found: m.state,
            });
        }
        // Push on the front of the dirty list.
        m.state = FrameState::Free;
        m.dirty = true;
        m.prev = NIL;
        m.next = head;
        if head == NIL {
            self.dirty.tail = i;
        } else {
            self.meta[head as usize].prev = i;
        }
        self.dirty.head = i;
        self.dirty.len += 1;
        Ok(())
    }

    /// Allocates one frame, as [`alloc_frame`](Self::alloc_frame) does, for
    /// an owner with its own way to the frame's bytes: `state` is
    /// [`FrameState::Paged`] or [`FrameState::Pooled`] (anything else is
    /// refused with `None`). Such a frame is not `Allocated`, so the direct
    /// map's page access refuses it: its owner's access path is the only
    /// one.
    pub fn alloc_as(&mut self, state: FrameState) -> Option<Allocation> {
        if !matches!(state, FrameState::Paged | FrameState::Pooled) {
            return None;
        }
        let a = self.alloc_frame()?;
        let i = (a.pfn - self.base_pfn) as usize;
        self.meta[i].state = state;
        Some(a)
    }

    /// Returns a frame obtained from [`alloc_as`](Self::alloc_as) with the
    /// same `state`. Anything else is refused and nothing changes.
    pub fn free_as(&mut self, pfn: Pfn, state: FrameState) -> Result<(), FrameError> {
        if !matches!(state, FrameState::Paged | FrameState::Pooled) {
            return Err(FrameError::WrongState {
                pfn,
                expected: FrameState::Paged,
                found: state,
            });
        }
        let i = self.expect(pfn, state)? as usize;
        self.meta[i].state = FrameState::Allocated;
        self.free(pfn)
    }

    /// Frames handed out in `state` (O(frames); for status and tests).
    pub fn count_in(&self, state: FrameState) -> u64 {
        self.meta.iter().filter(|m| m.state == state).count() as u64
    }

    /// Allocates the specific free frame `pfn`. O(1).
    pub fn take_free(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.expect(pfn, FrameState::Free)?;
        self.unlink_free(i, FrameState::Allocated);
        self.meta[i as usize].dirty = true;
        Ok(())
    }

    /// The first run of `count` consecutive free frames whose first pfn is
    /// a multiple of `align_pages`, without taking it. O(frames); `None` if
    /// no such run exists or an argument is 0.
    pub fn find_free_run(&self, count: u64, align_pages: u64) -> Option<Pfn> {
        if count == 0 || align_pages == 0 {
            return None;
        }
        let align_up = |pfn: Pfn| -> Option<Pfn> {
            pfn.checked_add(align_pages - 1)
                .map(|p| p / align_pages * align_pages)
        };
        let end = self.end_pfn();
        let mut start = align_up(self.base_pfn)?;
        loop {
            if start.checked_add(count)? > end {
                return None;
            }
            // The first frame of the candidate run that is not free.
            let busy = (start..start + count)
                .find(|&pfn| self.meta[(pfn - self.base_pfn) as usize].state != FrameState::Free);
            match busy {
                // Every frame up to `pfn` is scanned at most once.
                Some(pfn) => start = align_up(pfn + 1)?,
                None => return Some(start),
            }
        }
    }

    /// Allocates `count` consecutive free frames whose first pfn is a
    /// multiple of `align_pages` ([`find_free_run`](Self::find_free_run)).
    pub fn alloc_contiguous(&mut self, count: u64, align_pages: u64) -> Option<Pfn> {
        let start = self.find_free_run(count, align_pages)?;
        for pfn in start..start + count {
            let i = (pfn - self.base_pfn) as u32;
            self.unlink_free(i, FrameState::Allocated);
            self.meta[i as usize].dirty = true;
        }
        Some(start)
    }

    /// Marks the free frames of `[start_pfn, start_pfn + count)` Reserved
    /// (for the kernel image and boot data). Parts outside the window,
    /// holes and already reserved frames are skipped. If any frame of the
    /// range is allocated, taken or ballooned nothing changes and the
    /// first such frame is reported. Returns the number of frames newly
    /// reserved.
    pub fn reserve_range(&mut self, start_pfn: Pfn, count: u64) -> Result<u64, FrameError> {
        let lo = start_pfn.max(self.base_pfn);
        let hi = start_pfn.saturating_add(count).min(self.end_pfn());
        for pfn in lo..hi.max(lo) {
            let found = self.meta[(pfn - self.base_pfn) as usize].state;
            match found {
                FrameState::Absent | FrameState::Reserved | FrameState::Free => {}
                _ => {
                    return Err(FrameError::WrongState {
                        pfn,
                        expected: FrameState::Free,
                        found,
                    })
                }
            }
        }
        let mut reserved = 0;
        for pfn in lo..hi.max(lo) {
            let i = (pfn - self.base_pfn) as u32;
            if self.meta[i as usize].state == FrameState::Free {
                self.unlink_free(i, FrameState::Reserved);
                self.meta[i as usize].dirty = true;
                reserved += 1;
            }
        }
        self.reserved_pages += reserved;
        Ok(reserved)
    }

    /// Counts by state.
    pub fn counts(&self) -> FrameCounts {
        FrameCounts {
            total_pages: self.total_pages,
            free_pages: self.clean.len + self.dirty.len,
            free_clean_pages: self.clean.len,
            free_dirty_pages: self.dirty.len,
            allocated_pages: self.handed_out_pages(),
            taken_pages: self.taken_pages,
            ballooned_pages: self.ballooned.len,
            reserved_pages: self.reserved_pages,
        }
    }

    /// Free frames.
    pub fn free_pages(&self) -> u64 {
        self.clean.len + self.dirty.len
    }

    /// Allocated frames (not counting taken ones in transit to the
    /// balloon). Derived from the other counts, which keeps the hot paths
    /// one counter lighter.
    pub fn allocated_pages(&self) -> u64 {
        self.handed_out_pages()
    }

    fn handed_out_pages(&self) -> u64 {
        self.total_pages
            - self.reserved_pages
            - self.clean.len
            - self.dirty.len
            - self.taken_pages
            - self.ballooned.len
    }

    /// Ballooned frames.
    pub fn ballooned_pages(&self) -> u64 {
        self.ballooned.len
    }

    /// Reserved frames.
    pub fn reserved_pages(&self) -> u64 {
        self.reserved_pages
    }

    /// RAM frames covered.
    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }

    /// Checks the whole structure (O(frames)): every list well linked and
    /// holding exactly the frames in its state, counts adding up. For
    /// tests and the in-guest self-test.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let n = self.meta.len();
        for (which, list) in [
            (Which::Clean, &self.clean),
            (Which::Dirty, &self.dirty),
            (Which::Ballooned, &self.ballooned),
        ] {
            let mut prev = NIL;
            let mut i = list.head;
            let mut len = 0u64;
            while i != NIL {
                if i as usize >= n || len > n as u64 {
                    return Err("list index out of range or cycle");
                }
                let m = &self.meta[i as usize];
                if m.prev != prev {
                    return Err("broken prev link");
                }
                let ok = match which {
                    Which::Clean => m.state == FrameState::Free && !m.dirty,
                    Which::Dirty => m.state == FrameState::Free && m.dirty,
                    Which::Ballooned => m.state == FrameState::Ballooned,
                };
                if !ok {
                    return Err("frame on the wrong list");
                }
                len += 1;
                prev = i;
                i = m.next;
            }
            if prev != list.tail || len != list.len {
                return Err("list tail or length wrong");
            }
        }
        let mut by_state = [0u64; 8];
        for m in self.meta.iter() {
            by_state[m.state as usize] += 1;
        }
        let [_, reserved, free, allocated, taken, ballooned, paged, pooled] = by_state;
        let allocated = allocated + paged + pooled;
        if reserved != self.reserved_pages
            || free != self.clean.len + self.dirty.len
            || allocated != self.handed_out_pages()
            || taken != self.taken_pages
            || ballooned != self.ballooned.len
        {
            return Err("state counts do not match");
        }
        if reserved + free + allocated + taken + ballooned != self.total_pages {
            return Err("counts do not add up to total");
        }
        Ok(())
    }
}
