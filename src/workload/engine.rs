//! The workload engine: runs a [`Spec`] as a state machine, a bounded
//! amount of work per [`Engine::step`], against frames from a
//! [`PageSource`] the kernel implements.
//!
//! Pages are reserved by `alloc:` (they count as committed at once but
//! hold no frame), get a frame when first touched, and are verified on
//! every read: when touched again, during the sweep at the start of a
//! `hold:`, and just before `free:` releases them. A frame that cannot be
//! had now makes the step return [`StepOutcome::NeedFrames`] so the kernel
//! can balloon up at once; the next step resumes at the same page.
//!
//! *Cache pages* (`cache:` phases) are kept apart: they are not committed
//! ([`Engine::committed_pages`] leaves them out, as Linux's page cache is
//! not in `Committed_AS`), their content is a pure function of their
//! identity that costs [`CACHE_ROUNDS_PER_PAGE`] hash rounds to compute,
//! and after computing one the engine tells the source it is clean
//! ([`PageSource::mark_clean`]), so the pager may drop it into
//! cleancache. `cache:read` reads each back: a page the source lost
//! ([`PageSource::cache_missed`]) is recomputed, written, marked clean
//! again and read once more; every read is verified and counted with the
//! others.

use alloc::vec::Vec;
use core::num::NonZeroU32;

use super::pattern::{PageId, PAGE_BYTES};
use super::spec::{CacheOp, ContentKind, FreeAmount, Phase, Repeat, Spec, TouchPattern};
use crate::mm::Pfn;

/// Default page operations per step (1 MiB).
pub const DEFAULT_BUDGET_PAGES: u32 = 256;

/// Hash rounds over the whole page that computing one cache page costs
/// (each round mixes all 512 words): the deliberate price of a miss.
pub const CACHE_ROUNDS_PER_PAGE: u32 = 8;

/// A frame could not be mapped for access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapError;

/// Where the workload's frames come from. The kernel implements it over
/// the frame allocator and its direct map.
pub trait PageSource {
    /// Takes a free frame, or `None` when there is none now.
    fn alloc_frame(&mut self) -> Option<Pfn>;
    /// Calls `f` with the frame's bytes, writable.
    fn write_frame(
        &mut self,
        pfn: Pfn,
        f: &mut dyn FnMut(&mut [u8; PAGE_BYTES]),
    ) -> Result<(), MapError>;
    /// Calls `f` with the frame's bytes.
    fn read_frame(
        &mut self,
        pfn: Pfn,
        f: &mut dyn FnMut(&[u8; PAGE_BYTES]),
    ) -> Result<(), MapError>;
    /// Gives a frame obtained from [`PageSource::alloc_frame`] back.
    fn free_frame(&mut self, pfn: Pfn);
    /// Says the page's content, just written, is clean and recomputable
    /// (a cache page): the pager may drop it into cleancache. A source
    /// that does not page ignores it.
    fn mark_clean(&mut self, _pfn: Pfn) {}
    /// Whether the last read of a clean page found nothing in cleancache
    /// (it read zeros and must be recomputed). `false` for a source that
    /// does not page.
    fn cache_missed(&mut self, _pfn: Pfn) -> bool {
        false
    }
}

/// What a step did and what the engine wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Did its budget of work; call again soon.
    Busy,
    /// Needs this many more frames to finish the current phase; grow the
    /// balloon now (within the toolstack target) and call again.
    NeedFrames {
        /// Frames still missing for this phase.
        pages: u64,
    },
    /// Nothing to do before this time.
    Sleep {
        /// Monotonic deadline, ns.
        until_ns: u64,
    },
    /// The kernel heap could not hold the bookkeeping for an `alloc:`;
    /// nothing changed, the step will be retried.
    OutOfHeap,
    /// The program has ended; what it still holds stays held.
    Done,
}

/// Counters, for status and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// Pages reserved (committed) now.
    pub reserved_pages: u64,
    /// Reserved pages that hold a frame now.
    pub resident_pages: u64,
    /// Page writes so far.
    pub written_pages: u64,
    /// Reads that matched so far.
    pub verified_pages: u64,
    /// Reads that did not match (must stay 0).
    pub mismatches: u64,
    /// Frames that could not be mapped.
    pub map_errors: u64,
    /// Frames the current phase is waiting for (0 when not starved).
    pub need_frames_pages: u64,
    /// Index of the current phase.
    pub phase_index: usize,
    /// Name of the current phase (`"done"` at the end).
    pub phase: &'static str,
    /// Pass number, from 0.
    pub pass: u64,
    /// Cache pages held now (not in `reserved_pages`: not committed).
    pub cache_pages: u64,
    /// Cache pages computed by `cache:` builds.
    pub cache_built: u64,
    /// Cache pages recomputed after cleancache lost them
    /// (`cleancache_recomputed`).
    pub cache_recomputed: u64,
    /// Hash rounds spent recomputing them.
    pub cache_recompute_rounds: u64,
    /// Nanoseconds spent recomputing them (0 without a clock:
    /// [`Engine::set_clock`]).
    pub cache_recompute_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: PageId,
    pfn: Pfn,
    resident: bool,
    kind: ContentKind,
}

#[derive(Clone, Copy, Debug)]
enum Cursor {
    Enter,
    Touch {
        next: usize,
        seed: u64,
        pending: Option<u64>,
    },
    Hold {
        next: usize,
        until_ns: u64,
    },
    Free {
        remaining: u64,
    },
    Idle {
        until_ns: u64,
    },
    CacheBuild {
        next: usize,
    },
    CacheRead {
        next: usize,
    },
    CacheFree,
}

/// The workload engine.
#[derive(Debug)]
pub struct Engine {
    spec: Spec,
    budget_pages: u32,
    slots: Vec<Slot>,
    next_region: u32,
    phase: usize,
    pass: u64,
    cursor: Cursor,
    done: bool,
    st: Status,
    /// The content of pages reserved from now on.
    content: ContentKind,
    /// Cache pages, apart from the committed ones.
    cache: Vec<Slot>,
    /// Where recomputation time comes from, if anywhere.
    clock: Option<fn() -> u64>,
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn selected(pattern: TouchPattern, seed: u64, i: usize) -> bool {
    match pattern {
        TouchPattern::Sequential => true,
        TouchPattern::WorkingSet { percent } => mix(seed ^ (i as u64)) % 100 < u64::from(percent),
    }
}

/// Reads and checks a resident slot.
fn verify(src: &mut dyn PageSource, slot: &Slot, st: &mut Status) {
    let id = slot.id;
    let mut ok = false;
    let kind = slot.kind;
    match src.read_frame(slot.pfn, &mut |b| ok = id.verify_as(kind, b)) {
        Ok(()) if ok => st.verified_pages = st.verified_pages.saturating_add(1),
        Ok(()) => st.mismatches = st.mismatches.saturating_add(1),
        Err(MapError) => st.map_errors = st.map_errors.saturating_add(1),
    }
}

/// Computes a cache page: its content of `kind`, then the rounds that
/// make it costly (their digest is kept from the optimiser, not stored:
/// the content stays verifiable as `kind`).
fn compute_cache_page(id: PageId, kind: ContentKind, page: &mut [u8; PAGE_BYTES]) {
    id.fill_as(kind, page);
    let mut h = 0u64;
    for r in 0..CACHE_ROUNDS_PER_PAGE {
        for w in page.chunks_exact(8) {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            h = mix(h ^ u64::from_le_bytes(x) ^ u64::from(r));
        }
    }
    core::hint::black_box(h);
}

/// Computes a cache slot's page into its frame and tells the source it
/// is clean.
fn write_cache(src: &mut dyn PageSource, slot: &Slot, st: &mut Status) -> Result<(), MapError> {
    let (id, kind) = (slot.id, slot.kind);
    let r = src.write_frame(slot.pfn, &mut |b| compute_cache_page(id, kind, b));
    match r {
        Ok(()) => {
            st.written_pages = st.written_pages.saturating_add(1);
            src.mark_clean(slot.pfn);
        }
        Err(MapError) => st.map_errors = st.map_errors.saturating_add(1),
    }
    r
}

/// Writes a slot's content to its frame.
fn write(src: &mut dyn PageSource, slot: &Slot, st: &mut Status) -> Result<(), MapError> {
    let id = slot.id;
    let kind = slot.kind;
    let r = src.write_frame(slot.pfn, &mut |b| id.fill_as(kind, b));
    match r {
        Ok(()) => st.written_pages = st.written_pages.saturating_add(1),
        Err(MapError) => st.map_errors = st.map_errors.saturating_add(1),
    }
    r
}

impl Engine {
    /// An engine that will run `spec`, doing at most `budget_pages` page
    /// operations per step.
    pub fn new(spec: Spec, budget_pages: NonZeroU32) -> Self {
        let mut e = Engine {
            spec,
            budget_pages: budget_pages.get(),
            slots: Vec::new(),
            next_region: 0,
            phase: 0,
            pass: 0,
            cursor: Cursor::Enter,
            done: false,
            st: Status::default(),
            content: ContentKind::Mixed,
            cache: Vec::new(),
            clock: None,
        };
        e.refresh_phase();
        e
    }

    /// Pages the workload has reserved: its share of committed memory.
    pub fn committed_pages(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The counters.
    pub fn status(&self) -> Status {
        self.st
    }

    /// A monotonic clock (ns) to time recomputations with.
    pub fn set_clock(&mut self, now_ns: fn() -> u64) {
        self.clock = Some(now_ns);
    }

    fn refresh_phase(&mut self) {
        self.st.phase_index = self.phase;
        self.st.pass = self.pass;
        self.st.phase = match (self.done, self.spec.phases.get(self.phase)) {
            (false, Some(p)) => p.name(),
            _ => "done",
        };
        self.st.reserved_pages = self.slots.len() as u64;
        self.st.cache_pages = self.cache.len() as u64;
    }

    fn advance(&mut self) {
        self.cursor = Cursor::Enter;
        self.phase += 1;
        if self.phase >= self.spec.phases.len() {
            let again = match self.spec.repeat {
                Repeat::Once => false,
                Repeat::Times(n) => self.pass.saturating_add(1) < u64::from(n),
                Repeat::Forever => true,
            };
            if again {
                self.phase = self
                    .spec
                    .repeat_from
                    .min(self.spec.phases.len().saturating_sub(1));
                self.pass = self.pass.saturating_add(1);
            } else {
                self.done = true;
            }
        }
        self.st.need_frames_pages = 0;
        self.refresh_phase();
    }

    /// Runs up to the budget of work at time `now_ns`.
    pub fn step(&mut self, now_ns: u64, src: &mut dyn PageSource) -> StepOutcome {
        let budget = u64::from(self.budget_pages);
        // Every page operation and every phase change costs one unit, so a
        // step always ends, even for a program that does nothing.
        let mut ops: u64 = 0;
        let outcome = loop {
            if self.done {
                break StepOutcome::Done;
            }
            if ops >= budget {
                break StepOutcome::Busy;
            }
            let Some(&phase) = self.spec.phases.get(self.phase) else {
                self.done = true;
                continue;
            };
            match self.cursor {
                Cursor::Enter => {
                    ops += 1;
                    match self.enter(phase, now_ns) {
                        Ok(true) => self.advance(),
                        Ok(false) => {}
                        Err(o) => break o,
                    }
                }
                Cursor::Touch {
                    next,
                    seed,
                    pending,
                } => {
                    let Phase::Touch(pattern) = phase else {
                        self.advance();
                        continue;
                    };
                    match self.touch(src, pattern, next, seed, pending, &mut ops, budget) {
                        Some(o) => break o,
                        None => self.advance(),
                    }
                }
                Cursor::Hold { next, until_ns } => {
                    let mut i = next;
                    while i < self.slots.len() && ops < budget {
                        if self.slots[i].resident {
                            verify(src, &self.slots[i], &mut self.st);
                            ops += 1;
                        }
                        i += 1;
                    }
                    self.cursor = Cursor::Hold { next: i, until_ns };
                    if i < self.slots.len() {
                        break StepOutcome::Busy;
                    }
                    if now_ns < until_ns {
                        break StepOutcome::Sleep { until_ns };
                    }
                    self.advance();
                }
                Cursor::Free { mut remaining } => {
                    while remaining > 0 && ops < budget {
                        let Some(slot) = self.slots.pop() else {
                            remaining = 0;
                            break;
                        };
                        if slot.resident {
                            verify(src, &slot, &mut self.st);
                            src.free_frame(slot.pfn);
                            self.st.resident_pages = self.st.resident_pages.saturating_sub(1);
                        }
                        remaining -= 1;
                        ops += 1;
                    }
                    self.st.reserved_pages = self.slots.len() as u64;
                    self.cursor = Cursor::Free { remaining };
                    if remaining > 0 {
                        break StepOutcome::Busy;
                    }
                    self.advance();
                }
                Cursor::Idle { until_ns } => {
                    if now_ns < until_ns {
                        break StepOutcome::Sleep { until_ns };
                    }
                    self.advance();
                }
                Cursor::CacheBuild { next } => {
                    match self.cache_build(src, next, &mut ops, budget) {
                        Some(o) => break o,
                        None => self.advance(),
                    }
                }
                Cursor::CacheRead { next } => {
                    if self.cache_read(src, next, &mut ops, budget) {
                        break StepOutcome::Busy;
                    }
                    self.advance();
                }
                Cursor::CacheFree => {
                    // The source drops whatever it holds of them,
                    // cleancache included; nothing to verify (they are
                    // recomputable).
                    while ops < budget {
                        let Some(slot) = self.cache.pop() else { break };
                        if slot.resident {
                            src.free_frame(slot.pfn);
                        }
                        ops += 1;
                    }
                    self.st.cache_pages = self.cache.len() as u64;
                    if !self.cache.is_empty() {
                        break StepOutcome::Busy;
                    }
                    self.advance();
                }
            }
        };
        self.refresh_phase();
        outcome
    }

    /// Starts `phase`. `Ok(true)`: the phase is complete already.
    fn enter(&mut self, phase: Phase, now_ns: u64) -> Result<bool, StepOutcome> {
        match phase {
            Phase::Alloc { pages } => {
                let n = usize::try_from(pages).map_err(|_| StepOutcome::OutOfHeap)?;
                self.slots
                    .try_reserve(n)
                    .map_err(|_| StepOutcome::OutOfHeap)?;
                let region = self.next_region;
                self.next_region = self.next_region.wrapping_add(1);
                // Sizes are at most 2^28 pages (spec::MAX_SIZE_PAGES); a
                // hand-built larger one wraps the index, which only makes
                // two pages of a region share a pattern seed.
                self.slots.extend((0..n).map(|i| Slot {
                    id: PageId {
                        region,
                        index: i as u32,
                        generation: 0,
                    },
                    pfn: 0,
                    resident: false,
                    kind: self.content,
                }));
                Ok(true)
            }
            Phase::Content(kind) => {
                self.content = kind;
                Ok(true)
            }
            Phase::Touch(_) => {
                let seed = mix((self.pass << 8) ^ self.phase as u64);
                self.cursor = Cursor::Touch {
                    next: 0,
                    seed,
                    pending: None,
                };
                Ok(false)
            }
            Phase::Hold { duration_ns } => {
                self.cursor = Cursor::Hold {
                    next: 0,
                    until_ns: now_ns.saturating_add(duration_ns),
                };
                Ok(false)
            }
            Phase::Free(amount) => {
                let all = self.slots.len() as u64;
                let remaining = match amount {
                    FreeAmount::All => all,
                    FreeAmount::Pages(n) => n.min(all),
                };
                self.cursor = Cursor::Free { remaining };
                Ok(false)
            }
            Phase::Idle { duration_ns } => {
                self.cursor = Cursor::Idle {
                    until_ns: now_ns.saturating_add(duration_ns),
                };
                Ok(false)
            }
            Phase::Cache(CacheOp::Build { pages }) => {
                let n = usize::try_from(pages).map_err(|_| StepOutcome::OutOfHeap)?;
                self.cache
                    .try_reserve(n)
                    .map_err(|_| StepOutcome::OutOfHeap)?;
                let region = self.next_region;
                self.next_region = self.next_region.wrapping_add(1);
                let next = self.cache.len();
                self.cache.extend((0..n).map(|i| Slot {
                    id: PageId {
                        region,
                        index: i as u32,
                        generation: 0,
                    },
                    pfn: 0,
                    resident: false,
                    kind: self.content,
                }));
                self.cursor = Cursor::CacheBuild { next };
                Ok(false)
            }
            Phase::Cache(CacheOp::Read) => {
                self.cursor = Cursor::CacheRead { next: 0 };
                Ok(false)
            }
            Phase::Cache(CacheOp::Free) => {
                self.cursor = Cursor::CacheFree;
                Ok(false)
            }
        }
    }

    /// Continues a `cache:` build from slot `next`. `None`: complete.
    fn cache_build(
        &mut self,
        src: &mut dyn PageSource,
        mut next: usize,
        ops: &mut u64,
        budget: u64,
    ) -> Option<StepOutcome> {
        let result = loop {
            if next >= self.cache.len() {
                break None;
            }
            if *ops >= budget {
                break Some(StepOutcome::Busy);
            }
            let slot = &mut self.cache[next];
            let Some(pfn) = src.alloc_frame() else {
                let missing = (self.cache.len() - next) as u64;
                self.st.need_frames_pages = missing;
                break Some(StepOutcome::NeedFrames { pages: missing });
            };
            slot.pfn = pfn;
            if write_cache(src, slot, &mut self.st).is_ok() {
                slot.resident = true;
                self.st.cache_built = self.st.cache_built.saturating_add(1);
            } else {
                src.free_frame(pfn);
            }
            self.st.need_frames_pages = 0;
            *ops += 1;
            next += 1;
        };
        self.cursor = Cursor::CacheBuild { next };
        result
    }

    /// Continues a `cache:read` from slot `next`: verifies each page,
    /// recomputing the ones the source lost. `true`: out of budget.
    fn cache_read(
        &mut self,
        src: &mut dyn PageSource,
        mut next: usize,
        ops: &mut u64,
        budget: u64,
    ) -> bool {
        let busy = loop {
            if next >= self.cache.len() {
                break false;
            }
            if *ops >= budget {
                break true;
            }
            let slot = self.cache[next];
            next += 1;
            if !slot.resident {
                continue;
            }
            *ops += 1;
            let (id, kind) = (slot.id, slot.kind);
            let mut ok = false;
            if src
                .read_frame(slot.pfn, &mut |b| ok = id.verify_as(kind, b))
                .is_err()
            {
                self.st.map_errors = self.st.map_errors.saturating_add(1);
                continue;
            }
            if !src.cache_missed(slot.pfn) {
                if ok {
                    self.st.verified_pages = self.st.verified_pages.saturating_add(1);
                } else {
                    self.st.mismatches = self.st.mismatches.saturating_add(1);
                }
                continue;
            }
            // Lost: recompute, then read it back like any other.
            let t0 = self.clock.map(|c| c());
            let _ = write_cache(src, &slot, &mut self.st);
            if let (Some(c), Some(t0)) = (self.clock, t0) {
                let spent = c().saturating_sub(t0);
                self.st.cache_recompute_ns = self.st.cache_recompute_ns.saturating_add(spent);
            }
            self.st.cache_recomputed = self.st.cache_recomputed.saturating_add(1);
            self.st.cache_recompute_rounds = self
                .st
                .cache_recompute_rounds
                .saturating_add(u64::from(CACHE_ROUNDS_PER_PAGE));
            verify(src, &slot, &mut self.st);
        };
        self.cursor = Cursor::CacheRead { next };
        busy
    }

    /// Continues a touch phase. `None`: the phase is complete.
    #[allow(clippy::too_many_arguments)]
    fn touch(
        &mut self,
        src: &mut dyn PageSource,
        pattern: TouchPattern,
        mut next: usize,
        seed: u64,
        mut pending: Option<u64>,
        ops: &mut u64,
        budget: u64,
    ) -> Option<StepOutcome> {
        let scan_limit = budget.saturating_mul(64);
        let mut scanned: u64 = 0;
        let result = loop {
            if next >= self.slots.len() {
                break None;
            }
            if *ops >= budget || scanned >= scan_limit {
                break Some(StepOutcome::Busy);
            }
            scanned += 1;
            if !selected(pattern, seed, next) {
                next += 1;
                continue;
            }
            let slot = &mut self.slots[next];
            if slot.resident {
                verify(src, slot, &mut self.st);
                slot.id.generation = slot.id.generation.wrapping_add(1);
                // A failed write leaves the page's content unknown; the
                // next read will count it.
                let _ = write(src, slot, &mut self.st);
            } else {
                let Some(pfn) = src.alloc_frame() else {
                    let missing = match pending {
                        Some(p) => p,
                        None => {
                            let slots = &self.slots;
                            (next..slots.len())
                                .filter(|&i| selected(pattern, seed, i) && !slots[i].resident)
                                .count() as u64
                        }
                    };
                    pending = Some(missing);
                    self.st.need_frames_pages = missing;
                    break Some(StepOutcome::NeedFrames { pages: missing });
                };
                slot.pfn = pfn;
                if write(src, slot, &mut self.st).is_ok() {
                    slot.resident = true;
                    self.st.resident_pages = self.st.resident_pages.saturating_add(1);
                } else {
                    src.free_frame(pfn);
                }
                pending = pending.map(|p| p.saturating_sub(1));
                self.st.need_frames_pages = pending.unwrap_or(0);
            }
            *ops += 1;
            next += 1;
        };
        self.cursor = Cursor::Touch {
            next,
            seed,
            pending,
        };
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;

    /// Frames in a map; a capacity that can be raised; can corrupt a page.
    struct FakeSource {
        frames: BTreeMap<Pfn, Box<[u8; PAGE_BYTES]>>,
        free: Vec<Pfn>,
        next_pfn: Pfn,
        capacity: usize,
        unmappable: Option<Pfn>,
        /// Frames marked clean, and those "cleancache lost" (zeroed).
        clean: alloc::collections::BTreeSet<Pfn>,
        lost: alloc::collections::BTreeSet<Pfn>,
    }

    impl FakeSource {
        fn new(capacity: usize) -> Self {
            FakeSource {
                frames: BTreeMap::new(),
                free: Vec::new(),
                next_pfn: 0x100,
                capacity,
                unmappable: None,
                clean: Default::default(),
                lost: Default::default(),
            }
        }
        /// Drops every clean frame (as reclaim into a cleancache that
        /// then lost them would): they read as zeros and say so.
        fn lose_clean(&mut self) {
            for &pfn in &self.clean {
                **self.frames.get_mut(&pfn).unwrap() = [0; PAGE_BYTES];
                self.lost.insert(pfn);
            }
        }
        fn in_use(&self) -> usize {
            self.frames.len()
        }
        fn corrupt(&mut self, pfn: Pfn, byte: usize) {
            self.frames.get_mut(&pfn).unwrap()[byte] ^= 0x40;
        }
    }

    impl PageSource for FakeSource {
        fn alloc_frame(&mut self) -> Option<Pfn> {
            if self.frames.len() >= self.capacity {
                return None;
            }
            let pfn = self.free.pop().unwrap_or_else(|| {
                self.next_pfn += 1;
                self.next_pfn
            });
            // Frames come back dirty, as real ones may.
            self.frames.insert(pfn, Box::new([0xAA; PAGE_BYTES]));
            Some(pfn)
        }
        fn write_frame(
            &mut self,
            pfn: Pfn,
            f: &mut dyn FnMut(&mut [u8; PAGE_BYTES]),
        ) -> Result<(), MapError> {
            if self.unmappable == Some(pfn) {
                return Err(MapError);
            }
            f(self.frames.get_mut(&pfn).expect("write to unowned frame"));
            Ok(())
        }
        fn read_frame(
            &mut self,
            pfn: Pfn,
            f: &mut dyn FnMut(&[u8; PAGE_BYTES]),
        ) -> Result<(), MapError> {
            if self.unmappable == Some(pfn) {
                return Err(MapError);
            }
            f(self.frames.get(&pfn).expect("read of unowned frame"));
            Ok(())
        }
        fn free_frame(&mut self, pfn: Pfn) {
            assert!(self.frames.remove(&pfn).is_some(), "double free");
            self.clean.remove(&pfn);
            self.lost.remove(&pfn);
            self.free.push(pfn);
        }
        fn mark_clean(&mut self, pfn: Pfn) {
            self.clean.insert(pfn);
            self.lost.remove(&pfn);
        }
        fn cache_missed(&mut self, pfn: Pfn) -> bool {
            self.lost.contains(&pfn)
        }
    }

    fn engine(spec: &str, budget: u32) -> Engine {
        Engine::new(Spec::parse(spec).unwrap(), NonZeroU32::new(budget).unwrap())
    }

    /// Steps until Sleep/Done/NeedFrames, advancing nothing else.
    fn run(e: &mut Engine, now: u64, src: &mut FakeSource) -> StepOutcome {
        for _ in 0..100_000 {
            match e.step(now, src) {
                StepOutcome::Busy => continue,
                o => return o,
            }
        }
        panic!("no progress")
    }

    #[test]
    fn full_cycle_no_mismatch_and_frames_returned() {
        let mut src = FakeSource::new(10_000);
        let mut e = engine("alloc:4M,touch:seq,hold:1s,free:4M,idle:1s", 100);
        assert_eq!(e.status().phase, "alloc");
        // Alloc + touch + hold sweep, then sleep until t=1s.
        assert_eq!(
            run(&mut e, 0, &mut src),
            StepOutcome::Sleep {
                until_ns: 1_000_000_000
            }
        );
        let s = e.status();
        assert_eq!((s.reserved_pages, s.resident_pages), (1024, 1024));
        assert_eq!((s.written_pages, s.verified_pages), (1024, 1024));
        assert_eq!(e.committed_pages(), 1024);
        assert_eq!(src.in_use(), 1024);
        assert_eq!(s.phase, "hold");
        // Free, then idle until 2s.
        assert_eq!(
            run(&mut e, 1_000_000_000, &mut src),
            StepOutcome::Sleep {
                until_ns: 2_000_000_000
            }
        );
        let s = e.status();
        assert_eq!((s.reserved_pages, s.resident_pages), (0, 0));
        assert_eq!(s.verified_pages, 2048);
        assert_eq!(s.mismatches, 0);
        assert_eq!(src.in_use(), 0);
        assert_eq!(run(&mut e, 2_000_000_000, &mut src), StepOutcome::Done);
        assert_eq!(e.status().phase, "done");
    }

    #[test]
    fn steps_are_bounded_by_the_budget() {
        let mut src = FakeSource::new(10_000);
        let mut e = engine("alloc:1M,touch:seq", 10);
        // Step 1: enter alloc (1 op, done) + enter touch (1) + 8 pages.
        assert_eq!(e.step(0, &mut src), StepOutcome::Busy);
        assert_eq!(e.status().resident_pages, 8);
        assert_eq!(e.step(0, &mut src), StepOutcome::Busy);
        assert_eq!(e.status().resident_pages, 18);
    }

    #[test]
    fn starved_touch_asks_for_frames_and_resumes_without_loss() {
        let mut src = FakeSource::new(100);
        let mut e = engine("alloc:1M,touch:seq,hold:1s", 64);
        assert_eq!(
            run(&mut e, 0, &mut src),
            StepOutcome::NeedFrames { pages: 156 }
        );
        assert_eq!(e.status().need_frames_pages, 156);
        // Still starved: same answer, nothing lost.
        assert_eq!(e.step(0, &mut src), StepOutcome::NeedFrames { pages: 156 });
        assert_eq!(e.status().resident_pages, 100);
        // The balloon grows by 50.
        src.capacity = 150;
        assert_eq!(
            run(&mut e, 0, &mut src),
            StepOutcome::NeedFrames { pages: 106 }
        );
        src.capacity = 256;
        assert!(matches!(
            run(&mut e, 0, &mut src),
            StepOutcome::Sleep { .. }
        ));
        let s = e.status();
        assert_eq!(
            (s.resident_pages, s.verified_pages, s.mismatches),
            (256, 256, 0)
        );
        assert_eq!(s.need_frames_pages, 0);
    }

    #[test]
    fn corruption_is_detected_once() {
        let mut src = FakeSource::new(1000);
        let mut e = engine("alloc:64K,touch:seq,hold:1s,touch:seq,free:all", 1000);
        run(&mut e, 0, &mut src);
        let victim = *src.frames.keys().nth(5).unwrap();
        src.corrupt(victim, 3000);
        // Hold ends, touch reads (mismatch, then rewrites), free verifies.
        assert_eq!(run(&mut e, 1_000_000_000, &mut src), StepOutcome::Done);
        let s = e.status();
        assert_eq!(s.mismatches, 1);
        // 16 pages: hold sweep 16, touch 15 good, free 16 good.
        assert_eq!(s.verified_pages, 16 + 15 + 16);
        assert_eq!(src.in_use(), 0);
    }

    #[test]
    fn zeroed_or_swapped_pages_are_mismatches() {
        let mut src = FakeSource::new(1000);
        let mut e = engine("alloc:8K,touch:seq,hold:1s,free:all", 1000);
        run(&mut e, 0, &mut src);
        let pfns: Vec<Pfn> = src.frames.keys().copied().collect();
        // Swap the two frames' contents: each header names the other page.
        let a = *src.frames[&pfns[0]];
        let b = *src.frames[&pfns[1]];
        **src.frames.get_mut(&pfns[0]).unwrap() = b;
        **src.frames.get_mut(&pfns[1]).unwrap() = a;
        run(&mut e, 1_000_000_000, &mut src);
        assert_eq!(e.status().mismatches, 2);
    }

    #[test]
    fn map_errors_are_counted() {
        let mut src = FakeSource::new(1000);
        src.unmappable = Some(0x101); // the first frame handed out
        let mut e = engine("alloc:8K,touch:seq", 1000);
        assert_eq!(run(&mut e, 0, &mut src), StepOutcome::Done);
        let s = e.status();
        // The unmappable frame goes back each time (and this source hands
        // it out again for the second page); the pages stay non-resident
        // and nothing leaks.
        assert_eq!(s.map_errors, 2);
        assert_eq!(s.resident_pages, 0);
        assert_eq!(src.in_use(), 0);
    }

    #[test]
    fn working_set_touches_about_the_fraction() {
        let mut src = FakeSource::new(100_000);
        let mut e = engine("alloc:16M,touch:ws=25%", 4096);
        assert_eq!(run(&mut e, 0, &mut src), StepOutcome::Done);
        let r = e.status().resident_pages;
        // 4096 pages, 25% expected = 1024.
        assert!((900..1150).contains(&r), "{r}");
    }

    #[test]
    fn repeat_times_and_forever() {
        let mut src = FakeSource::new(1000);
        let mut e = engine("alloc:8K,touch:seq,free:all,repeat:3", 1000);
        assert_eq!(run(&mut e, 0, &mut src), StepOutcome::Done);
        let s = e.status();
        assert_eq!(s.pass, 2);
        assert_eq!(s.written_pages, 6);
        assert_eq!(s.verified_pages, 6);

        // A program that does nothing still yields each step.
        let mut e = engine("touch:seq,repeat", 5);
        for _ in 0..10 {
            assert_eq!(e.step(0, &mut src), StepOutcome::Busy);
        }
        assert!(e.status().pass > 5);

        let mut e = engine("idle:1s,repeat", 5);
        assert_eq!(
            e.step(0, &mut src),
            StepOutcome::Sleep {
                until_ns: 1_000_000_000
            }
        );
        assert_eq!(
            e.step(1_000_000_000, &mut src),
            StepOutcome::Sleep {
                until_ns: 2_000_000_000
            }
        );
        assert_eq!(e.status().pass, 1);
    }

    #[test]
    fn hand_built_empty_spec_is_done() {
        let mut src = FakeSource::new(0);
        let mut e = Engine::new(
            Spec {
                phases: Vec::new(),
                repeat: Repeat::Forever,
                repeat_from: 0,
            },
            NonZeroU32::new(1).unwrap(),
        );
        assert_eq!(e.step(0, &mut src), StepOutcome::Done);
    }

    #[test]
    fn cache_pages_are_not_committed_and_lost_ones_are_recomputed() {
        let mut src = FakeSource::new(1000);
        let mut e = engine(
            "alloc:8K,content:text,cache:40K,idle:1s,cache:read,idle:1s,cache:read,cache:free",
            1000,
        );
        e.set_clock(|| 7);
        assert!(matches!(
            run(&mut e, 0, &mut src),
            StepOutcome::Sleep { .. }
        ));
        let s = e.status();
        assert_eq!((s.cache_pages, s.cache_built), (10, 10));
        assert_eq!(e.committed_pages(), 2, "cache pages are not committed");
        assert_eq!(src.clean.len(), 10);
        // First read: everything there.
        assert!(matches!(
            run(&mut e, 1_000_000_000, &mut src),
            StepOutcome::Sleep { .. }
        ));
        let s = e.status();
        assert_eq!(
            (s.verified_pages, s.cache_recomputed, s.mismatches),
            (10, 0, 0)
        );
        // Cleancache loses them all: the second read recomputes each.
        src.lose_clean();
        assert_eq!(run(&mut e, 2_000_000_000, &mut src), StepOutcome::Done);
        let s = e.status();
        assert_eq!(
            (s.verified_pages, s.cache_recomputed, s.mismatches),
            (20, 10, 0)
        );
        assert_eq!(
            s.cache_recompute_rounds,
            10 * u64::from(CACHE_ROUNDS_PER_PAGE)
        );
        assert_eq!(s.cache_recompute_ns, 0, "a constant clock");
        assert_eq!(s.cache_pages, 0);
        assert_eq!(src.in_use(), 0);
    }

    #[test]
    fn a_lost_page_that_is_not_reported_is_a_mismatch() {
        let mut src = FakeSource::new(1000);
        let mut e = engine("content:text,cache:8K,idle:1s,cache:read", 1000);
        run(&mut e, 0, &mut src);
        for f in src.frames.values_mut() {
            **f = [0; PAGE_BYTES];
        }
        run(&mut e, 1_000_000_000, &mut src);
        assert_eq!(e.status().mismatches, 2);
    }

    #[test]
    fn retouch_bumps_generation_and_verifies() {
        let mut src = FakeSource::new(1000);
        let mut e = engine(
            "content:random,alloc:8K,touch:seq,touch:seq,touch:seq",
            1000,
        );
        assert_eq!(run(&mut e, 0, &mut src), StepOutcome::Done);
        let s = e.status();
        assert_eq!((s.written_pages, s.verified_pages, s.mismatches), (6, 4, 0));
        // The frames hold generation 2 now.
        for f in src.frames.values() {
            assert_eq!(&f[16..20], &2u32.to_le_bytes());
        }
    }

    #[test]
    fn repeat_from_loops_without_allocating_again() {
        let mut src = FakeSource::new(1000);
        let mut e = engine("alloc:40K,touch:seq,touch:ws=50%,idle:1s,repeat:4@2", 1000);
        let mut now = 0;
        while run(&mut e, now, &mut src) != StepOutcome::Done {
            now += 2_000_000_000;
        }
        let s = e.status();
        assert_eq!(s.reserved_pages, 10, "allocated once");
        assert_eq!(s.pass, 3);
        assert_eq!(s.mismatches, 0);
    }

    #[test]
    fn every_content_kind_verifies_and_mixed_is_the_default() {
        for (spec, kind) in [
            ("alloc:400K,touch:seq,touch:seq", ContentKind::Mixed),
            (
                "content:zero,alloc:400K,touch:seq,touch:seq",
                ContentKind::Zero,
            ),
            (
                "content:text,alloc:400K,touch:seq,touch:seq",
                ContentKind::Text,
            ),
            (
                "content:random,alloc:400K,touch:seq,touch:seq",
                ContentKind::Random,
            ),
        ] {
            let mut src = FakeSource::new(1000);
            let mut e = engine(spec, 1000);
            assert_eq!(run(&mut e, 0, &mut src), StepOutcome::Done, "{spec}");
            let s = e.status();
            assert_eq!((s.verified_pages, s.mismatches), (100, 0), "{spec}");
            // The content is the kind's: zero pages are zero, the others
            // are the kind's pages of the identity.
            let f = src.frames.values().next().unwrap();
            match kind {
                ContentKind::Zero => assert!(f.iter().all(|&b| b == 0)),
                ContentKind::Random => assert_eq!(&f[0..8], b"SBWLPAGE"),
                _ => assert_ne!(&f[0..8], b"SBWLPAGE"),
            }
        }
        // Text pages written as mixed ones do not verify.
        let id = PageId {
            region: 0,
            index: 3,
            generation: 0,
        };
        let mut p = [0u8; PAGE_BYTES];
        id.fill_as(ContentKind::Text, &mut p);
        assert!(id.verify_as(ContentKind::Text, &p));
        assert!(!id.verify_as(ContentKind::Mixed, &p));
        assert!(!id.verify_as(ContentKind::Random, &p));
    }
}
