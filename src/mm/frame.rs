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

use core::fmt;

use super::{Pfn, PfnRange};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct List {
    head: u32,
    tail: u32,
    len: u64,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Clean,
    Dirty,
    Ballooned,
}

fn push_front(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    meta[i as usize].prev = NIL;
    meta[i as usize].next = list.head;
    if list.head == NIL {
        list.tail = i;
    } else {
        meta[list.head as usize].prev = i;
    }
    list.head = i;
    list.len += 1;
}

fn push_back(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    meta[i as usize].next = NIL;
    meta[i as usize].prev = list.tail;
    if list.tail == NIL {
        list.head = i;
    } else {
        meta[list.tail as usize].next = i;
    }
    list.tail = i;
    list.len += 1;
}

fn unlink(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    let FrameMeta { prev, next, .. } = meta[i as usize];
    if prev == NIL {
        list.head = next;
    } else {
        meta[prev as usize].next = next;
    }
    if next == NIL {
        list.tail = prev;
    } else {
        meta[next as usize].prev = prev;
    }
    meta[i as usize].prev = NIL;
    meta[i as usize].next = NIL;
    list.len -= 1;
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

    /// Allocates the specific free frame `pfn`. O(1).
    pub fn take_free(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.expect(pfn, FrameState::Free)?;
        self.unlink_free(i, FrameState::Allocated);
        self.meta[i as usize].dirty = true;
        Ok(())
    }

    /// Takes a free frame for the balloon, preferring the highest clean
    /// frame, then the least recently freed dirty one. The frame becomes
    /// [`FrameState::Taken`] with its dirty bit unchanged. O(1).
    pub fn take_for_balloon(&mut self) -> Option<TakenFrame> {
        let (which, i) = if self.clean.tail != NIL {
            (Which::Clean, self.clean.tail)
        } else if self.dirty.tail != NIL {
            (Which::Dirty, self.dirty.tail)
        } else {
            return None;
        };
        let (meta, list) = self.split(which);
        unlink(meta, list, i);
        meta[i as usize].state = FrameState::Taken;
        self.taken_pages += 1;
        Some(TakenFrame {
            pfn: self.pfn_of(i),
            dirty: self.meta[i as usize].dirty,
        })
    }

    /// The frame [`take_for_balloon`] would take next, without
    /// taking it. O(1).
    ///
    /// [`take_for_balloon`]: Self::take_for_balloon
    pub fn peek_for_balloon(&self) -> Option<Pfn> {
        let i = if self.clean.tail != NIL {
            self.clean.tail
        } else if self.dirty.tail != NIL {
            self.dirty.tail
        } else {
            return None;
        };
        Some(self.pfn_of(i))
    }

    /// Checks that every frame of `[start, start + count)` is in `state`:
    /// `Ok` if so (also for `count == 0`), else the first frame that is
    /// not (`WrongState`) or lies outside the window (`OutOfRange`).
    /// O(count), stopping at the first mismatch.
    pub fn run_in_state(
        &self,
        start: Pfn,
        count: u64,
        state: FrameState,
    ) -> Result<(), FrameError> {
        if count == 0 {
            return Ok(());
        }
        let first = self.index(start)?;
        let last = start
            .checked_add(count - 1)
            .ok_or(FrameError::OutOfRange(start))?;
        self.index(last)?;
        for (k, m) in self.meta[first as usize..]
            .iter()
            .take(count as usize)
            .enumerate()
        {
            if m.state != state {
                return Err(FrameError::WrongState {
                    pfn: start + k as u64,
                    expected: state,
                    found: m.state,
                });
            }
        }
        Ok(())
    }

    /// Takes every frame of `[start, start + count)` for the balloon if all
    /// of them are free (all or nothing): each becomes
    /// [`FrameState::Taken`] with its dirty bit unchanged. On error nothing
    /// changes and the error names the first frame that is not free.
    /// O(count).
    pub fn take_run_for_balloon(&mut self, start: Pfn, count: u64) -> Result<(), FrameError> {
        self.run_in_state(start, count, FrameState::Free)?;
        for pfn in start..start + count {
            // In range and free: checked above.
            let i = (pfn - self.base_pfn) as u32;
            self.unlink_free(i, FrameState::Taken);
        }
        self.taken_pages += count;
        Ok(())
    }

    /// Records that a taken frame was zeroed. O(1).
    pub fn mark_scrubbed(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.expect(pfn, FrameState::Taken)?;
        self.meta[i as usize].dirty = false;
        Ok(())
    }

    /// Puts a taken frame back on the high end of its free list, so that
    /// returning frames in the reverse order of taking restores the lists
    /// exactly. O(1).
    pub fn return_taken(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.expect(pfn, FrameState::Taken)?;
        let which = self.free_list_of(i);
        let (meta, list) = self.split(which);
        meta[i as usize].state = FrameState::Free;
        push_back(meta, list, i);
        self.taken_pages -= 1;
        Ok(())
    }

    /// Records that Xen took a Taken (or Free) frame back. O(1).
    pub fn mark_ballooned(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.index(pfn)?;
        match self.meta[i as usize].state {
            FrameState::Taken => self.taken_pages -= 1,
            FrameState::Free => {
                let which = self.free_list_of(i);
                let (meta, list) = self.split(which);
                unlink(meta, list, i);
            }
            found => {
                return Err(FrameError::WrongState {
                    pfn,
                    expected: FrameState::Taken,
                    found,
                })
            }
        }
        let (meta, list) = self.split(Which::Ballooned);
        meta[i as usize].state = FrameState::Ballooned;
        meta[i as usize].dirty = false;
        push_front(meta, list, i);
        Ok(())
    }

    /// Records that Xen populated a ballooned frame again: it becomes Free
    /// and clean (Xen hands out zeroed pages), on the high end of the clean
    /// list so it is the first to go if the balloon shrinks again. O(1).
    pub fn unballoon(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let i = self.expect(pfn, FrameState::Ballooned)?;
        let (meta, list) = self.split(Which::Ballooned);
        unlink(meta, list, i);
        let (meta, list) = self.split(Which::Clean);
        meta[i as usize].state = FrameState::Free;
        meta[i as usize].dirty = false;
        push_back(meta, list, i);
        Ok(())
    }

    /// Fills `out` with ballooned frames (most recently ballooned first)
    /// without changing anything; returns how many were written.
    pub fn peek_ballooned(&self, out: &mut [Pfn]) -> usize {
        let mut i = self.ballooned.head;
        let mut n = 0;
        while i != NIL && n < out.len() {
            out[n] = self.pfn_of(i);
            n += 1;
            i = self.meta[i as usize].next;
        }
        n
    }

    /// Walks the ballooned list in the order of [`peek_ballooned`]: the
    /// first ballooned frame for `None`, else the one after `after`
    /// (`None` at the end, or if `after` is not ballooned). O(1).
    ///
    /// [`peek_ballooned`]: Self::peek_ballooned
    pub fn next_ballooned(&self, after: Option<Pfn>) -> Option<Pfn> {
        let i = match after {
            None => self.ballooned.head,
            Some(pfn) => self
                .expect(pfn, FrameState::Ballooned)
                .ok()
                .map_or(NIL, |i| self.meta[i as usize].next),
        };
        (i != NIL).then(|| self.pfn_of(i))
    }

    /// Allocates `count` consecutive free frames whose first pfn is a
    /// multiple of `align_pages`. O(frames); `None` if no such run exists
    /// or an argument is 0.
    pub fn alloc_contiguous(&mut self, count: u64, align_pages: u64) -> Option<Pfn> {
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
                None => break,
            }
        }
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
        let mut by_state = [0u64; 6];
        for m in self.meta.iter() {
            by_state[m.state as usize] += 1;
        }
        let [_, reserved, free, allocated, taken, ballooned] = by_state;
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

#[cfg(test)]
mod tests {
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
            core::iter::successors(fa.next_ballooned(None), |&p| fa.next_ballooned(Some(p)))
                .collect();
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
}
