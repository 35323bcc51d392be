//! The object store: variable-size objects packed in zspages, as
//! zsmalloc packs them (mm/zsmalloc.c has the idea; this is not its code).
//!
//! A *zspage* is 1..=4 frames taken from [`PoolFrames`], not necessarily
//! contiguous, that together form one run of `frames × 4096` bytes, cut
//! into the equal slots of one [size class](super::class). Slot `s` covers
//! bytes `[s × size, (s + 1) × size)` of the run; where that range crosses
//! a frame boundary the object is written and read in two pieces. An
//! object is named by a [`Handle`] (zspage id, slot). Unlike zsmalloc,
//! nothing is stored inside the frames but object bytes: which slots are
//! used is a bitmap in the zspage's metadata (on the kernel heap), and the
//! object's length is kept by the caller with its handle.
//!
//! # Invariants
//!
//! - A slot is used iff its bit is set in its zspage's `used` bitmap;
//!   `in_use` is the number of set bits, `1..=slots` for every live
//!   zspage (a zspage whose last object is freed releases its frames at
//!   once, in the same call).
//! - A class's `partial` list holds exactly its live zspages that have a
//!   free slot and are not being drained by compaction; each such zspage
//!   records its position in the list (`partial_pos`), so it is removed
//!   in O(1).
//! - `frames_used` is the sum of `frames` over live zspages, and equals
//!   the frames taken from [`PoolFrames`] and not returned. It never
//!   exceeds `max_frames` through an allocation of this store (lowering
//!   the limit below the current use only stops growth).
//! - Live objects never overlap: distinct (zspage, slot) pairs map to
//!   disjoint byte ranges of distinct frames (checked by the proptests in
//!   `swap::tests`).
//!
//! # Costs
//!
//! Allocation takes the most recently listed partial zspage of the class
//! and its first free slot: O(slots / 64) word scans. Freeing is O(1).
//! Allocation needs new frames only when the class has no partial zspage.
//! Fragmentation (many sparse zspages) is undone by [`ZsStore::begin_compaction`]
//! and [`ZsStore::relocate`]: the caller moves the objects out of the
//! sparsest zspages of each class into the free slots of the others.

use alloc::vec::Vec;

use super::class::{class_for, CLASSES, MAX_CLASS_BYTES, MAX_FRAMES_PER_ZSPAGE, NUM_CLASSES};
use super::frames::PoolFrames;
use crate::mm::Pfn;
use crate::swap::tmem::PAGE_BYTES;

const BITMAP_WORDS: usize = super::class::MAX_SLOTS_PER_ZSPAGE / 64;
const NOT_PARTIAL: u32 = u32::MAX;

/// Where an object lives: zspage id and slot. Only meaningful to the store
/// that returned it, until the object is freed or relocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    zspage: u32,
    slot: u16,
}

impl Handle {
    /// The zspage id.
    pub const fn zspage(self) -> u32 {
        self.zspage
    }
    /// The slot in the zspage.
    pub const fn slot(self) -> u16 {
        self.slot
    }
}

/// Why an allocation failed. The store is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// Longer than the largest class.
    TooLarge,
    /// A new zspage would take the store over `max_frames`.
    OverLimit,
    /// [`PoolFrames::alloc_frame`] had no frame.
    NoMemory,
}

#[derive(Clone, Debug)]
struct ZsPage {
    class: u8,
    draining: bool,
    in_use: u16,
    partial_pos: u32,
    frames: [Pfn; MAX_FRAMES_PER_ZSPAGE],
    used: [u64; BITMAP_WORDS],
}

impl ZsPage {
    fn nframes(&self) -> usize {
        usize::from(CLASSES[usize::from(self.class)].frames)
    }
}

#[derive(Clone, Debug, Default)]
struct Class {
    partial: Vec<u32>,
    zspages: u64,
    objects: u64,
}

/// Per-class occupancy, for statistics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Live zspages of the class.
    pub zspages: u64,
    /// Objects stored in the class.
    pub objects: u64,
}

/// The object store over a frame source `F`.
#[derive(Debug)]
pub struct ZsStore<F> {
    frames: F,
    zspages: Vec<Option<ZsPage>>,
    free_ids: Vec<u32>,
    classes: Vec<Class>,
    frames_used: u64,
    max_frames: u64,
    objects: u64,
}

/// Copies `len` bytes of slot `slot` (of `size`-byte slots) in the run made
/// of `frames`, piece by piece: `f(frame, range in frame, range in object)`.
fn pieces(
    frames: &[Pfn],
    size: usize,
    slot: usize,
    len: usize,
    mut f: impl FnMut(Pfn, core::ops::Range<usize>, core::ops::Range<usize>),
) {
    let mut off = slot * size;
    let mut done = 0;
    while done < len {
        let frame = off / PAGE_BYTES;
        let in_frame = off % PAGE_BYTES;
        let n = (PAGE_BYTES - in_frame).min(len - done);
        f(frames[frame], in_frame..in_frame + n, done..done + n);
        off += n;
        done += n;
    }
}

impl<F: PoolFrames> ZsStore<F> {
    /// An empty store that takes at most `max_frames` frames from `frames`.
    pub fn new(frames: F, max_frames: u64) -> Self {
        ZsStore {
            frames,
            zspages: Vec::new(),
            free_ids: Vec::new(),
            classes: (0..NUM_CLASSES).map(|_| Class::default()).collect(),
            frames_used: 0,
            max_frames,
            objects: 0,
        }
    }

    /// The frame source.
    pub fn frame_source(&self) -> &F {
        &self.frames
    }

    /// The frame source, mutably (tests use it to script failures).
    pub fn frame_source_mut(&mut self) -> &mut F {
        &mut self.frames
    }

    /// Frames held now.
    pub fn frames_used(&self) -> u64 {
        self.frames_used
    }

    /// The frame limit.
    pub fn max_frames(&self) -> u64 {
        self.max_frames
    }

    /// Sets the frame limit. Lowering it below [`frames_used`] frees
    /// nothing by itself; it only stops new zspages.
    ///
    /// [`frames_used`]: ZsStore::frames_used
    pub fn set_max_frames(&mut self, max_frames: u64) {
        self.max_frames = max_frames;
    }

    /// Objects stored.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    /// Occupancy of class `class`.
    pub fn class_stats(&self, class: usize) -> ClassStats {
        self.classes
            .get(class)
            .map(|c| ClassStats {
                zspages: c.zspages,
                objects: c.objects,
            })
            .unwrap_or_default()
    }

    /// Frames a store of `len` bytes would need now: 0 if its class has a
    /// free slot, else the class's zspage size. `None` if too large.
    pub fn frames_needed(&self, len: usize) -> Option<u64> {
        let c = class_for(len)?;
        if self.classes[c].partial.is_empty() {
            Some(u64::from(CLASSES[c].frames))
        } else {
            Some(0)
        }
    }

    fn page(&self, id: u32) -> &ZsPage {
        match self.zspages.get(id as usize) {
            Some(Some(z)) => z,
            _ => panic!("zspage {id} is not live"),
        }
    }

    fn page_mut(&mut self, id: u32) -> &mut ZsPage {
        match self.zspages.get_mut(id as usize) {
            Some(Some(z)) => z,
            _ => panic!("zspage {id} is not live"),
        }
    }

    fn partial_push(&mut self, id: u32) {
        let class = usize::from(self.page(id).class);
        let list = &mut self.classes[class].partial;
        let pos = list.len() as u32;
        list.push(id);
        self.page_mut(id).partial_pos = pos;
    }

    fn partial_remove(&mut self, id: u32) {
        let (class, pos) = {
            let z = self.page(id);
            (usize::from(z.class), z.partial_pos)
        };
        if pos == NOT_PARTIAL {
            return;
        }
        let list = &mut self.classes[class].partial;
        list.swap_remove(pos as usize);
        let moved = list.get(pos as usize).copied();
        self.page_mut(id).partial_pos = NOT_PARTIAL;
        if let Some(m) = moved {
            self.page_mut(m).partial_pos = pos;
        }
    }

    /// A new zspage for `class`, or an error with nothing taken.
    fn new_zspage(&mut self, class: usize) -> Result<u32, AllocError> {
        let n = usize::from(CLASSES[class].frames);
        let after = self
            .frames_used
            .checked_add(n as u64)
            .ok_or(AllocError::OverLimit)?;
        if after > self.max_frames {
            return Err(AllocError::OverLimit);
        }
        let mut frames = [0; MAX_FRAMES_PER_ZSPAGE];
        for i in 0..n {
            match self.frames.alloc_frame() {
                Some(p) => frames[i] = p,
                None => {
                    for &p in &frames[..i] {
                        self.frames.free_frame(p);
                    }
                    return Err(AllocError::NoMemory);
                }
            }
        }
        let z = ZsPage {
            class: class as u8,
            draining: false,
            in_use: 0,
            partial_pos: NOT_PARTIAL,
            frames,
            used: [0; BITMAP_WORDS],
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.zspages[id as usize] = Some(z);
                id
            }
            None => {
                self.zspages.push(Some(z));
                (self.zspages.len() - 1) as u32
            }
        };
        self.frames_used = after;
        self.classes[class].zspages += 1;
        self.partial_push(id);
        Ok(id)
    }

    /// Takes a free slot of zspage `id` (which must have one).
    fn take_slot(&mut self, id: u32) -> Handle {
        let z = self.page_mut(id);
        let slots = CLASSES[usize::from(z.class)].slots;
        let mut slot = None;
        for (w, word) in z.used.iter_mut().enumerate() {
            if *word != u64::MAX {
                let b = (!*word).trailing_zeros() as usize;
                let s = w * 64 + b;
                if s < usize::from(slots) {
                    *word |= 1 << b;
                    slot = Some(s as u16);
                }
                break;
            }
        }
        let Some(slot) = slot else {
            panic!("zspage {id} on the partial list has no free slot");
        };
        z.in_use += 1;
        let full = z.in_use == slots;
        let class = usize::from(z.class);
        self.classes[class].objects += 1;
        self.objects += 1;
        if full {
            self.partial_remove(id);
        }
        Handle { zspage: id, slot }
    }

    /// Allocates a slot for an object of `len` bytes. Takes a new zspage
    /// (and frames) only if the class has no free slot.
    pub fn alloc(&mut self, len: usize) -> Result<Handle, AllocError> {
        let class = class_for(len).ok_or(AllocError::TooLarge)?;
        let id = match self.classes[class].partial.last() {
            Some(&id) => id,
            None => self.new_zspage(class)?,
        };
        Ok(self.take_slot(id))
    }

    /// Frees the slot of `h`; releases the zspage's frames if it was the
    /// last object.
    pub fn free(&mut self, h: Handle) {
        let z = self.page_mut(h.zspage);
        let (w, b) = (usize::from(h.slot) / 64, usize::from(h.slot) % 64);
        assert!(z.used[w] & (1 << b) != 0, "double free of {h:?}");
        z.used[w] &= !(1 << b);
        let was_full = z.in_use == CLASSES[usize::from(z.class)].slots;
        z.in_use -= 1;
        let (class, empty, draining) = (usize::from(z.class), z.in_use == 0, z.draining);
        self.classes[class].objects -= 1;
        self.objects -= 1;
        if empty {
            self.partial_remove(h.zspage);
            let Some(z) = self.zspages[h.zspage as usize].take() else {
                unreachable!("checked live above");
            };
            let n = z.nframes();
            for &p in &z.frames[..n] {
                self.frames.free_frame(p);
            }
            self.frames_used -= n as u64;
            self.classes[class].zspages -= 1;
            self.free_ids.push(h.zspage);
        } else if was_full && !draining {
            self.partial_push(h.zspage);
        }
    }

    fn slot_geometry(&self, h: Handle) -> (&ZsPage, usize) {
        let z = self.page(h.zspage);
        (z, usize::from(CLASSES[usize::from(z.class)].slot_bytes))
    }

    /// Writes `bytes` (at most the slot's size) at the start of `h`'s slot.
    pub fn write(&mut self, h: Handle, bytes: &[u8]) {
        let (z, size) = self.slot_geometry(h);
        assert!(bytes.len() <= size, "object longer than its slot");
        let frames = z.frames;
        let n = z.nframes();
        let src = &mut self.frames;
        pieces(
            &frames[..n],
            size,
            usize::from(h.slot),
            bytes.len(),
            |pfn, fr, ob| src.frame_mut(pfn)[fr].copy_from_slice(&bytes[ob]),
        );
    }

    /// The first `len` bytes of `h`'s slot: borrowed from its frame when
    /// the slot does not cross a frame boundary, else copied into
    /// `scratch`.
    pub fn read<'a>(
        &'a self,
        h: Handle,
        len: usize,
        scratch: &'a mut [u8; MAX_CLASS_BYTES],
    ) -> &'a [u8] {
        let (z, size) = self.slot_geometry(h);
        assert!(len <= size, "read past the slot");
        let start = usize::from(h.slot) * size;
        let (frame, off) = (start / PAGE_BYTES, start % PAGE_BYTES);
        if off + len <= PAGE_BYTES {
            return &self.frames.frame(z.frames[frame])[off..off + len];
        }
        pieces(
            &z.frames[..z.nframes()],
            size,
            usize::from(h.slot),
            len,
            |pfn, fr, ob| scratch[ob].copy_from_slice(&self.frames.frame(pfn)[fr]),
        );
        &scratch[..len]
    }

    /// The frames backing `h`'s slot with the byte range in each, in
    /// order (for the overlap tests).
    pub fn extents(&self, h: Handle, len: usize) -> Vec<(Pfn, core::ops::Range<usize>)> {
        let (z, size) = self.slot_geometry(h);
        let mut out = Vec::new();
        pieces(
            &z.frames[..z.nframes()],
            size,
            usize::from(h.slot),
            len,
            |pfn, fr, _| out.push((pfn, fr)),
        );
        out
    }

    /// Starts a compaction: in every class, marks as *draining* the
    /// sparsest zspages whose objects fit in the free slots of the others,
    /// and takes them off the partial lists so that no allocation lands in
    /// them. Returns the number of frames that relocating every object of
    /// every draining zspage will free.
    ///
    /// The caller then calls [`relocate`] for every object whose handle is
    /// in a draining zspage ([`is_draining`]) and finally [`end_compaction`].
    /// Relocation never needs a new frame: a class with `objects` objects
    /// and `slots` per zspage keeps its `ceil(objects / slots)` fullest
    /// zspages, whose free slots are at least the objects of the rest.
    ///
    /// [`relocate`]: ZsStore::relocate
    /// [`is_draining`]: ZsStore::is_draining
    /// [`end_compaction`]: ZsStore::end_compaction
    pub fn begin_compaction(&mut self) -> u64 {
        let mut by_class: Vec<Vec<(u16, u32)>> = (0..NUM_CLASSES).map(|_| Vec::new()).collect();
        for (id, z) in self.zspages.iter().enumerate() {
            if let Some(z) = z {
                by_class[usize::from(z.class)].push((z.in_use, id as u32));
            }
        }
        let mut frames = 0;
        for (class, mut pages) in by_class.into_iter().enumerate() {
            let slots = u64::from(CLASSES[class].slots);
            let keep = self.classes[class].objects.div_ceil(slots);
            let drain = (pages.len() as u64).saturating_sub(keep);
            if drain == 0 {
                continue;
            }
            pages.sort_unstable();
            for &(_, id) in pages.iter().take(drain as usize) {
                self.partial_remove(id);
                self.page_mut(id).draining = true;
                frames += u64::from(CLASSES[class].frames);
            }
        }
        frames
    }

    /// Whether `h` lies in a zspage being drained.
    pub fn is_draining(&self, h: Handle) -> bool {
        self.page(h.zspage).draining
    }

    /// Moves the object at `h` (`len` bytes) to a free slot of a
    /// non-draining zspage of its class and frees the old slot. Returns
    /// the new handle, or `None` (object left in place) if the class has
    /// no such slot. Never takes frames.
    pub fn relocate(&mut self, h: Handle, len: usize) -> Option<Handle> {
        let class = usize::from(self.page(h.zspage).class);
        let &dest = self.classes[class].partial.last()?;
        let mut buf = [0u8; MAX_CLASS_BYTES];
        let mut scratch = [0u8; MAX_CLASS_BYTES];
        let n = {
            let bytes = self.read(h, len, &mut scratch);
            buf[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        };
        let new = self.take_slot(dest);
        self.write(new, &buf[..n]);
        self.free(h);
        Some(new)
    }

    /// Ends a compaction: zspages still holding objects stop draining and
    /// take new objects again.
    pub fn end_compaction(&mut self) {
        for id in 0..self.zspages.len() as u32 {
            let back = match &mut self.zspages[id as usize] {
                Some(z) if z.draining => {
                    z.draining = false;
                    z.in_use < CLASSES[usize::from(z.class)].slots
                }
                _ => false,
            };
            if back {
                self.partial_push(id);
            }
        }
    }

    /// Checks every invariant of the module documentation; panics with
    /// the first one broken. For tests (O(zspages)).
    pub fn check_invariants(&self) {
        let mut frames = 0u64;
        let mut objects = 0u64;
        let mut per_class = alloc::vec![(0u64, 0u64); NUM_CLASSES];
        for (id, z) in self.zspages.iter().enumerate() {
            let Some(z) = z else { continue };
            let c = CLASSES[usize::from(z.class)];
            let bits: u32 = z.used.iter().map(|w| w.count_ones()).sum();
            assert_eq!(bits, u32::from(z.in_use), "zspage {id} bitmap");
            assert!(z.in_use >= 1 && z.in_use <= c.slots, "zspage {id} in_use");
            for s in usize::from(c.slots)..BITMAP_WORDS * 64 {
                assert!(z.used[s / 64] & (1 << (s % 64)) == 0, "bit past slots");
            }
            let listed = z.partial_pos != NOT_PARTIAL;
            assert_eq!(
                listed,
                !z.draining && z.in_use < c.slots,
                "zspage {id} partial membership"
            );
            if listed {
                assert_eq!(
                    self.classes[usize::from(z.class)].partial[z.partial_pos as usize],
                    id as u32
                );
            }
            frames += u64::from(c.frames);
            objects += u64::from(z.in_use);
            per_class[usize::from(z.class)].0 += 1;
            per_class[usize::from(z.class)].1 += u64::from(z.in_use);
        }
        for (i, c) in self.classes.iter().enumerate() {
            assert_eq!((c.zspages, c.objects), per_class[i], "class {i} counts");
            for &id in &c.partial {
                assert_eq!(usize::from(self.page(id).class), i);
            }
        }
        assert_eq!(frames, self.frames_used, "frames_used");
        assert_eq!(objects, self.objects, "objects");
    }
}
