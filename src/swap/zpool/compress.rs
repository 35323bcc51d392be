//! Page compression: same-filled detection (zswap's) and lz4 blocks.
//!
//! `lz4_flex` compresses, with `default-features = false` plus
//! `safe-encode` and `safe-decode`: the block format only
//! (`compress_into_with_table`), no `std`, no `alloc`, in the crate's
//! `#![forbid(unsafe_code)]` modules. Pages are decoded by our own safe
//! decoder, [`super::lz4dec`], which is bounds-checked like lz4_flex's
//! (a corrupt object yields an error, never a write outside the page) and
//! faster on memory pages. lz4_flex's decoder stays the reference in the
//! tests and the benchmark.
//!
//! Measured on this project's 2-core EPYC build machine, busy, thread CPU
//! time per 4 KiB page, on the bench's 8,192 `mixed` pages (`cargo bench
//! --bench swap`; `SWAP_BENCH_DUMP` writes the pages for other tools):
//! lz4_flex 0.14 safe decode 3.4–4.8 µs, its `unsafe` decoder (features
//! off) about the same, C liblz4 1.9.4 `LZ4_decompress_safe` 1.8 µs, for
//! the same ratio (2.90 vs 2.91). Decoding is where page-in time goes (the
//! pool's own work is under 0.5 µs); building lz4_flex at `opt-level = 3`
//! (the release profile is 2) gave 3.4 µs. Hence [`super::lz4dec`]: best
//! of 21 runs on the same blocks, 2.8 µs against lz4_flex's 3.4 µs (text
//! pages: 3.0 against 2.8); its figure is the benchmark's `ours dec`
//! column. With its fast loop (one bounds check per sequence, fixed
//! wide moves), on a quieter machine, best of 15 on the same blocks:
//! 1.71 µs against 2.39 µs before it and lz4_flex's 2.79 µs (text: 2.34
//! against 2.76 and 2.47). What is left is per-sequence work: a `mixed`
//! block is about 180 sequences, and only parsing them (no copies) takes
//! 0.86 µs; the fast path of the common sequence (up to 14 literals, a
//! match of up to 18 bytes at offset 8 or more) is about 50 instructions.

use lz4_flex::block::{compress_into_with_table, CompressTable};

use super::lz4dec::decode_page;

use super::class::MAX_CLASS_BYTES;
use crate::swap::tmem::{Page, TmemError, PAGE_BYTES};

/// Worst-case lz4 block for one page (`get_maximum_output_size(4096)`).
pub const LZ4_MAX_BYTES: usize = lz4_flex::block::get_maximum_output_size(PAGE_BYTES);

/// The refusal threshold: a page whose lz4 block is longer than this is
/// not stored (3/4 of a page, 3,072 bytes). Storing such a page would
/// free at most a quarter of a frame per page while costing a compression
/// on the way out and a decompression on every page-in, and it would
/// need the least dense classes; zsmalloc treats objects of this size as
/// "huge" (one per frame) for the same reason. The caller keeps the page
/// resident (or, with tiering, offers it to the next tier).
pub const MAX_STORED_BYTES: usize = MAX_CLASS_BYTES;

/// If every 64-bit word of `page` is the same, that word.
///
/// A page is same-filled iff it equals itself shifted by one word, which
/// is one `memcmp` of 4,088 bytes (much faster than a word loop that
/// must exit early).
pub fn same_filled(page: &Page) -> Option<u64> {
    if page[8..] != page[..PAGE_BYTES - 8] {
        return None;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&page[..8]);
    Some(u64::from_ne_bytes(w))
}

/// Fills `page` with the word `word` (the inverse of [`same_filled`]).
pub fn fill_same(page: &mut Page, word: u64) {
    let bytes = word.to_ne_bytes();
    if bytes.iter().all(|&b| b == bytes[0]) {
        // The zero page above all: one `memset`.
        page.fill(bytes[0]);
        return;
    }
    let mut line = [0u8; 64];
    for chunk in line.chunks_exact_mut(8) {
        chunk.copy_from_slice(&bytes);
    }
    for chunk in page.chunks_exact_mut(64) {
        chunk.copy_from_slice(&line);
    }
}

/// A compressor with its hash table and output buffer (12.6 KiB, kept off
/// the stack: the fault path must not need a deep stack).
pub struct Compressor {
    table: CompressTable,
    out: [u8; LZ4_MAX_BYTES],
}

impl core::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            table: CompressTable::default(),
            out: [0; LZ4_MAX_BYTES],
        }
    }
}

impl Compressor {
    /// Compresses `page` into the internal buffer and returns the block's
    /// length (read it with [`block`]); `None` if the block is longer than
    /// [`MAX_STORED_BYTES`].
    ///
    /// [`block`]: Compressor::block
    pub fn compress(&mut self, page: &Page) -> Option<usize> {
        let n = compress_into_with_table(page, &mut self.out, &mut self.table).ok()?;
        (n <= MAX_STORED_BYTES).then_some(n)
    }

    /// The first `len` bytes of the last block (`len` as [`compress`]
    /// returned it).
    ///
    /// [`compress`]: Compressor::compress
    pub fn block(&self, len: usize) -> &[u8] {
        &self.out[..len.min(LZ4_MAX_BYTES)]
    }

    /// The raw lz4 block length of `page` (no threshold), for the
    /// benchmark's comparison.
    pub fn raw_len(&mut self, page: &Page) -> usize {
        compress_into_with_table(page, &mut self.out, &mut self.table).unwrap_or(LZ4_MAX_BYTES)
    }
}

/// Decompresses an lz4 block that must expand to exactly one page (with
/// [`decode_page`], not lz4_flex's decoder: see [`super::lz4dec`]).
pub fn decompress(block: &[u8], page: &mut Page) -> Result<(), TmemError> {
    decode_page(block, page).map_err(|_| TmemError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_filled_finds_only_uniform_words() {
        let mut p = [0u8; PAGE_BYTES];
        assert_eq!(same_filled(&p), Some(0));
        for w in [
            0xdead_beef_0123_4567,
            u64::MAX,
            0x0101_0101_0101_0101,
            0,
            1 << 63,
        ] {
            fill_same(&mut p, w);
            assert_eq!(same_filled(&p), Some(w));
            assert!(p.chunks_exact(8).all(|c| c == w.to_ne_bytes()));
        }
        fill_same(&mut p, 0xdead_beef_0123_4567);
        p[PAGE_BYTES - 1] ^= 1;
        assert_eq!(same_filled(&p), None);
        let mut q = [7u8; PAGE_BYTES];
        q[3] = 8;
        assert_eq!(same_filled(&q), None);
    }

    #[test]
    fn round_trip_and_threshold() {
        let mut c = Compressor::default();
        let mut p = [0u8; PAGE_BYTES];
        for (i, b) in p.iter_mut().enumerate() {
            *b = (i % 251) as u8 / 8;
        }
        let n = c.compress(&p).expect("compressible");
        let block = c.block(n).to_vec();
        let mut back = [0xffu8; PAGE_BYTES];
        decompress(&block, &mut back).expect("decodes");
        assert_eq!(back, p);
        // Incompressible: xorshift bytes.
        let mut x = 0x1234_5678_9abc_def0u64;
        for b in p.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert!(c.compress(&p).is_none());
        assert!(c.raw_len(&p) > MAX_STORED_BYTES);
        // A truncated block is an error, not a panic.
        assert_eq!(
            decompress(&block[..block.len() / 2], &mut back),
            Err(TmemError::Corrupt)
        );
    }
}
