//! Verifiable page content. Every page the workload writes is a function of
//! (region id, page index in the region, generation) only, never of the
//! frame it sits in, so any frame that loses, mixes up or zeroes a page is
//! caught on the next read:
//!
//! ```text
//! bytes 0..8    MAGIC (little endian)
//! bytes 8..12   region id
//! bytes 12..16  page index in the region
//! bytes 16..20  generation
//! bytes 20..24  0
//! bytes 24..    64-bit words: splitmix64(seed + word index), seed derived
//!               from the three header fields
//! ```
//!
//! That is the `random` kind (incompressible). The other kinds
//! (`zero`, `text`, `mixed`) are `swap::content`'s pages for a 64-bit hash
//! of the same three fields: as verifiable (every non-zero page starts
//! with that hash), but compressible like real memory. A page of the
//! `zero` kind, and the one `mixed` page in ten that is all zero, carry
//! no identity: they verify as zero, which is what they must be.

use crate::swap::content::{self, ContentKind};

/// Bytes in one page.
pub const PAGE_BYTES: usize = 4096;

/// "SBWLPAGE" as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SBWLPAGE");

/// What a page should hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageId {
    /// The region (one `alloc:` phase execution).
    pub region: u32,
    /// Index of the page in its region.
    pub index: u32,
    /// Bumped on every rewrite.
    pub generation: u32,
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl PageId {
    fn seed(self) -> u64 {
        let packed = (u64::from(self.region) << 32) | u64::from(self.index);
        splitmix64(packed ^ splitmix64(u64::from(self.generation)))
    }

    fn header(self) -> [u8; 24] {
        let mut h = [0u8; 24];
        h[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        h[8..12].copy_from_slice(&self.region.to_le_bytes());
        h[12..16].copy_from_slice(&self.index.to_le_bytes());
        h[16..20].copy_from_slice(&self.generation.to_le_bytes());
        h
    }

    /// The body word at byte offset `24 + 8 * w`.
    fn word(seed: u64, w: usize) -> u64 {
        splitmix64(seed.wrapping_add(w as u64))
    }

    /// Writes this page's content into `page`.
    pub fn fill(self, page: &mut [u8; PAGE_BYTES]) {
        let (head, body) = page.split_at_mut(24);
        head.copy_from_slice(&self.header());
        let seed = self.seed();
        for (w, chunk) in body.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&Self::word(seed, w).to_le_bytes());
        }
    }

    /// Writes this page's content of `kind`: [`ContentKind::Random`] is
    /// the self-describing pattern above; the others are
    /// `swap::content`'s pages, keyed by a hash of the identity.
    pub fn fill_as(self, kind: ContentKind, page: &mut [u8; PAGE_BYTES]) {
        match kind {
            ContentKind::Random => self.fill(page),
            k => content::fill(k, self.seed(), page),
        }
    }

    /// Whether `page` holds exactly this page's content of `kind`.
    pub fn verify_as(self, kind: ContentKind, page: &[u8; PAGE_BYTES]) -> bool {
        match kind {
            ContentKind::Random => self.verify(page),
            k => content::verify(k, self.seed(), page),
        }
    }

    /// Whether `page` holds exactly this page's content.
    pub fn verify(self, page: &[u8; PAGE_BYTES]) -> bool {
        let (head, body) = page.split_at(24);
        if head != self.header() {
            return false;
        }
        let seed = self.seed();
        body.chunks_exact(8)
            .enumerate()
            .all(|(w, chunk)| chunk == Self::word(seed, w).to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: PageId = PageId {
        region: 1,
        index: 7,
        generation: 0,
    };

    #[test]
    fn fill_then_verify() {
        let mut p = [0u8; PAGE_BYTES];
        A.fill(&mut p);
        assert!(A.verify(&p));
        assert_eq!(&p[0..8], b"SBWLPAGE");
    }

    #[test]
    fn detects_any_single_byte_flip_and_mixups() {
        let mut p = [0u8; PAGE_BYTES];
        A.fill(&mut p);
        for i in (0..PAGE_BYTES).step_by(97).chain([PAGE_BYTES - 1]) {
            let mut q = p;
            q[i] ^= 1;
            assert!(!A.verify(&q), "flip at {i}");
        }
        assert!(!A.verify(&[0u8; PAGE_BYTES]));
        for other in [
            PageId { index: 8, ..A },
            PageId { region: 2, ..A },
            PageId { generation: 1, ..A },
        ] {
            assert!(!other.verify(&p));
            let mut q = [0u8; PAGE_BYTES];
            other.fill(&mut q);
            assert_ne!(&q[24..], &p[24..]);
        }
    }
}
