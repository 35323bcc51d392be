//! The pool's size limit: `zpool_max_percent`, zswap's `max_pool_percent`.
//!
//! The pool may hold at most `total_pages × percent / 100` frames (rounded
//! down), `total_pages` being the guest's RAM pages as the frame allocator
//! counts them (zswap uses `totalram_pages()`). The tunable is validated
//! here; the xenstore wiring lives with the other tunables.

use core::fmt;

/// A validated `zpool_max_percent`: `0..=100`. 0 disables the compressed
/// part of the pool (every put that needs a frame is refused; same-filled
/// pages, which take no frame, are still kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxPoolPercent(u8);

/// Why a `zpool_max_percent` value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitError {
    /// Above 100.
    AboveHundred(u64),
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LimitError::AboveHundred(v) => write!(f, "zpool_max_percent {v} > 100"),
        }
    }
}

impl MaxPoolPercent {
    /// zswap's default, 20 %.
    pub const DEFAULT: MaxPoolPercent = MaxPoolPercent(20);

    /// Validates a value as written to the tunable.
    pub const fn new(percent: u64) -> Result<Self, LimitError> {
        if percent > 100 {
            Err(LimitError::AboveHundred(percent))
        } else {
            Ok(MaxPoolPercent(percent as u8))
        }
    }

    /// The value in percent.
    pub const fn percent(self) -> u8 {
        self.0
    }

    /// The frame limit for a guest of `total_pages` pages:
    /// `floor(total_pages × percent / 100)`. Computed in `u128`, so it
    /// cannot overflow; the result is at most `total_pages`.
    pub const fn max_frames(self, total_pages: u64) -> u64 {
        let frames = (total_pages as u128 * self.0 as u128) / 100;
        // frames <= total_pages because percent <= 100, so it fits.
        if frames > u64::MAX as u128 {
            total_pages
        } else {
            frames as u64
        }
    }
}

impl Default for MaxPoolPercent {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_arithmetic() {
        assert_eq!(MaxPoolPercent::default().percent(), 20);
        assert!(MaxPoolPercent::new(100).is_ok());
        assert_eq!(MaxPoolPercent::new(101), Err(LimitError::AboveHundred(101)));
        assert_eq!(
            MaxPoolPercent::new(u64::MAX),
            Err(LimitError::AboveHundred(u64::MAX))
        );
        let p = MaxPoolPercent::DEFAULT;
        // 128 MiB guest: 32,768 pages, 20 % = 6,553.6 -> 6,553.
        assert_eq!(p.max_frames(32_768), 6_553);
        assert_eq!(p.max_frames(0), 0);
        assert_eq!(p.max_frames(4), 0);
        assert_eq!(p.max_frames(5), 1);
        // No overflow at the top of the range.
        assert_eq!(
            MaxPoolPercent::new(100).map(|p| p.max_frames(u64::MAX)),
            Ok(u64::MAX)
        );
        assert_eq!(p.max_frames(u64::MAX), u64::MAX / 5);
        assert_eq!(MaxPoolPercent::new(0).map(|p| p.max_frames(1 << 40)), Ok(0));
    }
}
