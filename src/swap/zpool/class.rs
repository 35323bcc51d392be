//! Size classes, after zsmalloc's (mm/zsmalloc.c).
//!
//! A compressed page of `len` bytes goes to the smallest class whose slot
//! size is `>= len`. Slot sizes run from [`MIN_CLASS_BYTES`] to
//! [`MAX_CLASS_BYTES`] in steps of [`CLASS_DELTA_BYTES`], so at most 15
//! bytes per object are lost to rounding. Each class packs its slots
//! back to back in a *zspage* of 1 to [`MAX_FRAMES_PER_ZSPAGE`] frames: a
//! slot may start in one frame and end in the next. The frame count of a
//! class is the one (of 1..=4) that leaves the smallest fraction of the
//! zspage unused, fewer frames on a tie (zsmalloc's
//! `get_pages_per_zspage()` does the same search). For example a 1,376
//! byte class in one frame holds 2 slots and wastes 33 %; in 4 frames it
//! holds 11 and wastes 7.6 %. The worst class (2,064 bytes, 7 slots in 4
//! frames) wastes 11.8 %; the mean over all classes is about 3 %.
//!
//! Invariants (checked by the tests below for every class):
//! - `slots_per_zspage * slot_bytes <= frames * 4096`, and
//!   `slots_per_zspage <= MAX_SLOTS_PER_ZSPAGE` (the per-zspage bitmap);
//! - `slots_per_zspage >= 1`;
//! - slot sizes strictly increase with the class index.

use crate::swap::tmem::PAGE_BYTES;

/// The smallest slot. Anything shorter is rounded up to it (an lz4 block
/// for a 4 KiB page is never shorter than about 20 bytes, and same-filled
/// pages never reach the classes).
pub const MIN_CLASS_BYTES: usize = 32;
/// Distance between consecutive slot sizes (zsmalloc: `PAGE_SIZE >> 8`).
pub const CLASS_DELTA_BYTES: usize = 16;
/// The largest slot: the refusal threshold. A page whose compressed form
/// is longer is refused (see `MAX_STORED_BYTES` in the parent module).
pub const MAX_CLASS_BYTES: usize = 3072;
/// Frames per zspage at most (zsmalloc's `ZS_MAX_PAGES_PER_ZSPAGE`).
pub const MAX_FRAMES_PER_ZSPAGE: usize = 4;
/// Number of classes.
pub const NUM_CLASSES: usize = (MAX_CLASS_BYTES - MIN_CLASS_BYTES) / CLASS_DELTA_BYTES + 1;
/// Slots per zspage at most: the smallest class in the largest zspage.
pub const MAX_SLOTS_PER_ZSPAGE: usize = MAX_FRAMES_PER_ZSPAGE * PAGE_BYTES / MIN_CLASS_BYTES;

/// One size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeClass {
    /// Bytes per slot.
    pub slot_bytes: u16,
    /// Frames per zspage (1..=4).
    pub frames: u8,
    /// Slots per zspage.
    pub slots: u16,
}

const fn build() -> [SizeClass; NUM_CLASSES] {
    let mut out = [SizeClass {
        slot_bytes: 0,
        frames: 0,
        slots: 0,
    }; NUM_CLASSES];
    let mut i = 0;
    while i < NUM_CLASSES {
        let size = MIN_CLASS_BYTES + i * CLASS_DELTA_BYTES;
        // Minimise waste / zspage bytes; compare a/b < c/d as a*d < c*b.
        let mut best_frames = 1;
        let mut best_waste = PAGE_BYTES % size;
        let mut k = 2;
        while k <= MAX_FRAMES_PER_ZSPAGE {
            let waste = (k * PAGE_BYTES) % size;
            if waste * best_frames < best_waste * k {
                best_frames = k;
                best_waste = waste;
            }
            k += 1;
        }
        out[i] = SizeClass {
            slot_bytes: size as u16,
            frames: best_frames as u8,
            slots: (best_frames * PAGE_BYTES / size) as u16,
        };
        i += 1;
    }
    out
}

/// The class table.
pub static CLASSES: [SizeClass; NUM_CLASSES] = build();

/// The class index for an object of `len` bytes, or `None` when it is
/// longer than [`MAX_CLASS_BYTES`].
pub const fn class_for(len: usize) -> Option<usize> {
    if len > MAX_CLASS_BYTES {
        None
    } else if len <= MIN_CLASS_BYTES {
        Some(0)
    } else {
        Some((len - MIN_CLASS_BYTES).div_ceil(CLASS_DELTA_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_consistent() {
        let mut prev = 0;
        for (i, c) in CLASSES.iter().enumerate() {
            let size = usize::from(c.slot_bytes);
            assert!(size > prev, "class {i} not increasing");
            prev = size;
            assert!((1..=MAX_FRAMES_PER_ZSPAGE).contains(&usize::from(c.frames)));
            assert!(c.slots >= 1);
            assert!(usize::from(c.slots) <= MAX_SLOTS_PER_ZSPAGE);
            assert!(usize::from(c.slots) * size <= usize::from(c.frames) * PAGE_BYTES);
            // No room for one more slot: the zspage is packed.
            assert!((usize::from(c.slots) + 1) * size > usize::from(c.frames) * PAGE_BYTES);
        }
        assert_eq!(
            usize::from(CLASSES[NUM_CLASSES - 1].slot_bytes),
            MAX_CLASS_BYTES
        );
    }

    #[test]
    fn class_for_picks_the_smallest_fitting_slot() {
        assert_eq!(class_for(0), Some(0));
        assert_eq!(class_for(32), Some(0));
        assert_eq!(class_for(33), Some(1));
        assert_eq!(class_for(48), Some(1));
        assert_eq!(class_for(MAX_CLASS_BYTES), Some(NUM_CLASSES - 1));
        assert_eq!(class_for(MAX_CLASS_BYTES + 1), None);
        for len in 0..=MAX_CLASS_BYTES {
            let c = class_for(len).expect("fits");
            assert!(usize::from(CLASSES[c].slot_bytes) >= len);
            if c > 0 {
                assert!(usize::from(CLASSES[c - 1].slot_bytes) < len);
            }
        }
    }

    #[test]
    fn packing_waste_is_small() {
        // The worst class wastes under 12 % of its zspage (the best of
        // 1..=4 frames); the examples of the module docs.
        let mut sum_pct = 0;
        for c in CLASSES.iter() {
            let total = usize::from(c.frames) * PAGE_BYTES;
            let waste = total - usize::from(c.slots) * usize::from(c.slot_bytes);
            assert!(waste * 100 < total * 12, "{c:?}");
            sum_pct += waste * 100 / total;
        }
        assert!(
            sum_pct / NUM_CLASSES <= 3,
            "mean waste {}",
            sum_pct / NUM_CLASSES
        );
        let c = CLASSES[class_for(1376).expect("fits")];
        assert_eq!((c.frames, c.slots), (4, 11));
        let c = CLASSES[class_for(2064).expect("fits")];
        assert_eq!((c.frames, c.slots), (4, 7));
    }
}
