//! Page contents for tests, the benchmark and the workload: every page is
//! a pure function of its kind and a 64-bit identity, so a reader checks
//! a page it got back from its id alone ([`fill`], [`verify`]).
//!
//! - [`ContentKind::Zero`]: all zero (a same-filled page).
//! - [`ContentKind::Random`]: splitmix64 words; incompressible.
//! - [`ContentKind::Text`]: words, stock phrases, numbers and
//!   punctuation, as in buffers of logs or source text (lz4: about 2.5×).
//! - [`ContentKind::Mixed`]: shaped like a process's anonymous memory.
//!   One page in ten is entirely zero (never-written or freed memory);
//!   the others are 64 cache lines, each one of: a heap struct (links
//!   and parent pointers, mostly to a few hot objects of a kernel-style
//!   heap, small integers, flags, a zero word), an array of small
//!   integers, text, zero padding, or random bytes (hashes, keys,
//!   compressed data; at most one line in sixteen), in proportions drawn
//!   per page. lz4 makes about 2.9× of it over all pages (2.6× over the
//!   non-zero ones), inside the 2.5–3.5× Linux zswap reports on real
//!   anonymous memory (tested in `compression_ratios_are_as_documented`).
//!
//! Every non-zero page starts with its id (8 bytes, little endian), so
//! two pages never compare equal by accident and a page put under the
//! wrong key is caught.

use crate::swap::tmem::{Page, PAGE_BYTES};

/// Which content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// All zero.
    Zero,
    /// Incompressible.
    Random,
    /// Text.
    Text,
    /// Like anonymous memory.
    Mixed,
}

impl ContentKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ContentKind; 4] = [
        ContentKind::Zero,
        ContentKind::Random,
        ContentKind::Text,
        ContentKind::Mixed,
    ];

    /// The kind's name, as a workload spec or the bench writes it.
    pub const fn name(self) -> &'static str {
        match self {
            ContentKind::Zero => "zero",
            ContentKind::Random => "random",
            ContentKind::Text => "text",
            ContentKind::Mixed => "mixed",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// splitmix64: a bijective 64-bit mixer.
const fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic stream of words.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }
    /// A value in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 48] = [
    "the", "of", "and", "to", "in", "is", "page", "memory", "frame", "guest", "xen", "pool",
    "that", "for", "it", "with", "as", "was", "on", "be", "at", "by", "this", "from", "or", "have",
    "an", "they", "which", "one", "you", "were", "all", "we", "when", "there", "can", "balloon",
    "swap", "kernel", "error", "value", "return", "struct", "if", "else", "while", "static",
];

const PHRASES: [&str; 12] = [
    "balloon: target ",
    " pages, current ",
    "xen: event channel ",
    "error: out of memory",
    "static int ",
    "return -ENOMEM;",
    "struct page *",
    " for (i = 0; i < n; i++) ",
    "the guest gives memory back to the host",
    "frontswap: stored ",
    "if (ret < 0) goto out;",
    "INFO: ",
];

/// Writes text into `out` from the stream: words, stock phrases (as in
/// logs and source), numbers, punctuation.
fn text(s: &mut Stream, out: &mut [u8]) {
    let mut i = 0;
    while i < out.len() {
        let r = s.next();
        let word: &[u8] = match r % 16 {
            0 => match (r >> 8) % 4 {
                0 => b"0",
                1 => b"42",
                2 => b"4096",
                _ => b"-1",
            },
            1..=6 => PHRASES[((r >> 4) % PHRASES.len() as u64) as usize].as_bytes(),
            _ => WORDS[((r >> 4) % WORDS.len() as u64) as usize].as_bytes(),
        };
        for &b in word {
            if i == out.len() {
                return;
            }
            out[i] = b;
            i += 1;
        }
        if i < out.len() {
            out[i] = match (r >> 32) % 12 {
                0 => b'\n',
                1 => b',',
                2 => b'.',
                _ => b' ',
            };
            i += 1;
        }
    }
}

fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// One cache line of a heap struct: list links and a parent pointer
/// (mostly to a few hot objects of the page's heap), a small length,
/// flags, a refcount, a zero word and a data pointer.
fn heap_struct(s: &mut Stream, hot: &[u64; 8], line: &mut [u8]) {
    let ptr = |s: &mut Stream| {
        let r = s.next();
        if r.is_multiple_of(4) {
            // A pointer to some other object of the heap.
            hot[0] + (((r >> 8) % (1 << 14)) << 6)
        } else {
            hot[((r >> 8) % 8) as usize]
        }
    };
    let (a, b, c, d) = (ptr(s), ptr(s), ptr(s), ptr(s));
    put_u64(line, 0, a);
    put_u64(line, 8, b);
    put_u64(line, 16, c);
    put_u64(line, 24, s.below(256));
    put_u64(line, 32, [0, 1, 0x11, 0x8000_0001][s.below(4) as usize]);
    put_u64(line, 40, 1 + s.below(2));
    put_u64(line, 48, 0);
    put_u64(line, 56, d);
}

/// Writes the page `id` of `kind` into `page`.
pub fn fill(kind: ContentKind, id: u64, page: &mut Page) {
    match kind {
        ContentKind::Zero => *page = [0; PAGE_BYTES],
        ContentKind::Random => {
            let mut s = Stream(mix(id ^ 0x5241_4e44));
            for chunk in page.chunks_exact_mut(8) {
                chunk.copy_from_slice(&s.next().to_le_bytes());
            }
        }
        ContentKind::Text => {
            let mut s = Stream(mix(id ^ 0x5445_5854));
            text(&mut s, &mut page[8..]);
        }
        ContentKind::Mixed => {
            let mut s = Stream(mix(id ^ 0x4d49_5845));
            if s.below(10) == 0 {
                *page = [0; PAGE_BYTES];
                return;
            }
            // Per-page weights, out of 16: heap structs, integer arrays,
            // text, zero; random lines take the rest (0 or 1 in 16).
            let w_struct = 4 + s.below(4);
            let w_ints = 2 + s.below(3);
            let w_text = 1 + s.below(2);
            let w_random = s.below(2);
            let heap_base = 0xffff_8880_0000_0000 | (s.below(64) << 24);
            let mut hot = [0u64; 8];
            for h in hot.iter_mut() {
                *h = heap_base + (s.below(1 << 14) << 6);
            }
            for line in page.chunks_exact_mut(64) {
                let r = s.below(16);
                if r < w_struct {
                    heap_struct(&mut s, &hot, line);
                } else if r < w_struct + w_ints {
                    let base = s.below(1000) as u32;
                    let step = s.below(3) as u32;
                    for (j, v) in line.chunks_exact_mut(4).enumerate() {
                        v.copy_from_slice(&(base + j as u32 * step).to_le_bytes());
                    }
                } else if r < w_struct + w_ints + w_text {
                    text(&mut s, line);
                } else if r >= 16 - w_random {
                    for chunk in line.chunks_exact_mut(8) {
                        chunk.copy_from_slice(&s.next().to_le_bytes());
                    }
                } else {
                    line.fill(0);
                }
            }
        }
    }
    if kind != ContentKind::Zero && page.iter().any(|&b| b != 0) {
        put_u64(page, 0, id);
    }
}

/// Whether `page` holds exactly page `id` of `kind`.
pub fn verify(kind: ContentKind, id: u64, page: &Page) -> bool {
    let mut want = [0u8; PAGE_BYTES];
    fill(kind, id, &mut want);
    want == *page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_a_function_of_their_id() {
        for kind in ContentKind::ALL {
            let (mut a, mut b) = ([1u8; PAGE_BYTES], [2u8; PAGE_BYTES]);
            fill(kind, 77, &mut a);
            fill(kind, 77, &mut b);
            assert_eq!(a, b, "{kind:?}");
            assert!(verify(kind, 77, &a));
            if kind != ContentKind::Zero {
                assert!(!verify(kind, 78, &a), "{kind:?}");
            }
            assert_eq!(ContentKind::from_name(kind.name()), Some(kind));
        }
    }

    /// lz4 over all pages of a kind (zero pages count as the ~20-byte
    /// block lz4 makes of them).
    fn lz4_ratio(kind: ContentKind, pages: u64) -> f64 {
        let mut c = crate::swap::zpool::compress::Compressor::default();
        let mut p = [0u8; PAGE_BYTES];
        let total: usize = (0..pages)
            .map(|id| {
                fill(kind, id, &mut p);
                c.raw_len(&p)
            })
            .sum();
        (pages as usize * PAGE_BYTES) as f64 / total as f64
    }

    #[test]
    fn compression_ratios_are_as_documented() {
        let mixed = lz4_ratio(ContentKind::Mixed, 400);
        assert!((2.5..3.5).contains(&mixed), "mixed {mixed:.2}");
        let text = lz4_ratio(ContentKind::Text, 100);
        assert!((2.0..3.0).contains(&text), "text {text:.2}");
        let random = lz4_ratio(ContentKind::Random, 20);
        assert!(random < 1.0, "random {random:.2}");
    }

    #[test]
    fn mixed_pages_have_the_advertised_shape() {
        let mut page = [0u8; PAGE_BYTES];
        let (mut zero, mut nonzero_bytes) = (0, 0usize);
        for id in 0..1000 {
            fill(ContentKind::Mixed, id, &mut page);
            if page.iter().all(|&b| b == 0) {
                zero += 1;
            } else {
                assert_eq!(page[..8], id.to_le_bytes());
                nonzero_bytes += page.iter().filter(|&&b| b != 0).count();
            }
        }
        // About one page in ten is zero.
        assert!((50..150).contains(&zero), "{zero} zero pages");
        // The others are far from full (zero padding, high pointer bytes).
        let avg = nonzero_bytes / (1000 - zero);
        assert!((1000..3500).contains(&avg), "{avg} non-zero bytes per page");
    }
}
