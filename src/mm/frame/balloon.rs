//! The balloon's transitions: free frames taken out for release (highest
//! clean frame first), marked ballooned when Xen has them, and made free
//! and clean again when Xen populates them; and the run checks for 2 MiB
//! extents.

use super::list::{push_back, push_front, unlink, Which};
use super::{FrameAllocator, FrameError, FrameState, TakenFrame, NIL};
use crate::mm::Pfn;

impl FrameAllocator<'_> {
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
}
