//! A safe lz4 block decoder for exactly one page: the pool's page-in path.
//!
//! Why not `lz4_flex::block::decompress_into`: its safe decoder copies an
//! overlapping match (offset < length: runs, repeated words) one byte at
//! a time with a bounds check per byte, and memory pages are full of such
//! matches (zero runs after a zero word, repeated pointers). This decoder
//! copies an overlapping match by doubling (copy the `offset`-byte
//! pattern, then the doubled pattern, ...; each copy is a non-overlapping
//! `copy_within`), and literals up to 16 bytes and matches with an offset
//! of at least 8 as fixed 16- or 8-byte moves when there is room (the
//! bytes written past the end are inside the page and are overwritten by
//! what follows: lz4's "wild copy"), so the common short sequence costs
//! no `memcpy` call.
//!
//! The format (lz4_Block_format.md): a sequence is a token (literal
//! length in the high nibble, match length − 4 in the low; 15 means more
//! length bytes follow, each added, until one is not 255), the literals,
//! then a 2-byte little-endian offset back into the output and the match.
//! The last sequence is literals only and ends the input.
//!
//! Guarantees, for any input bytes: no panic, no write outside `page`;
//! `Ok` only if the input is a complete block that expands to exactly
//! 4,096 bytes, with every offset in `1..=bytes written`. Tested against
//! `lz4_flex` on real and random pages, and on arbitrary input.

use crate::swap::tmem::{Page, PAGE_BYTES};

/// Why a block did not decode. (The pool maps every case to
/// `TmemError::Corrupt`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a sequence.
    Truncated,
    /// An offset of 0 or beyond the bytes written so far.
    BadOffset,
    /// The block expands past 4,096 bytes, or short of it.
    WrongLength,
}

/// Reads an lz4 length extension starting at `*ip`, adding to `len`.
fn extend(input: &[u8], ip: &mut usize, mut len: usize) -> Result<usize, DecodeError> {
    loop {
        let b = *input.get(*ip).ok_or(DecodeError::Truncated)?;
        *ip += 1;
        len += usize::from(b);
        if len > PAGE_BYTES {
            return Err(DecodeError::WrongLength);
        }
        if b != 255 {
            return Ok(len);
        }
    }
}

/// Input bytes the fast loop may read from a sequence's token on: the
/// token, 16 literal bytes (wild), the offset; length extensions are read
/// with checks.
const FAST_IN: usize = 32;
/// Output bytes the fast loop may write from a sequence's start on: 14
/// literals, then a short match's wild writes of up to 32 bytes.
const FAST_OUT: usize = 64;

/// `idx[off][i] = i % off`: the source byte of pattern byte `i` for an
/// overlapping match at offset `off` (1..=7).
const PATTERN_IDX: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut off = 1;
    while off < 8 {
        let mut i = 0;
        while i < 16 {
            t[off][i] = (i % off) as u8;
            i += 1;
        }
        off += 1;
    }
    t
};

/// The 16 bytes of period `off` (1..=8) that start at `out[start]`, and
/// the largest multiple of `off` that is at most 16 (the step at which
/// the pattern repeats). Reads only `out[start..start + off]` (a wider
/// load would straddle the stores just made, and wait for them).
#[inline(always)]
fn pattern(out: &Page, start: usize, off: usize) -> ([u8; 16], usize) {
    let word = match off {
        1 => u64::from(out[start]).wrapping_mul(0x0101_0101_0101_0101),
        2 => {
            let v = u16::from_le_bytes([out[start], out[start + 1]]);
            u64::from(v).wrapping_mul(0x0001_0001_0001_0001)
        }
        4 => {
            let mut w = [0u8; 4];
            w.copy_from_slice(&out[start..start + 4]);
            u64::from(u32::from_le_bytes(w)).wrapping_mul(0x0000_0001_0000_0001)
        }
        8 => {
            let mut w = [0u8; 8];
            w.copy_from_slice(&out[start..start + 8]);
            u64::from_le_bytes(w)
        }
        _ => {
            let mut p = [0u8; 16];
            let idx = &PATTERN_IDX[off & 7];
            for (b, &i) in p.iter_mut().zip(idx) {
                *b = out[start + usize::from(i)];
            }
            return (p, 16 / off * off);
        }
    };
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&word.to_le_bytes());
    p[8..].copy_from_slice(&word.to_le_bytes());
    (p, 16)
}

/// Copies the match of `ml` bytes at offset `off` (`1..=op`) to
/// `out[op..op + ml]` (`op + ml <= PAGE_BYTES`), with wide moves where
/// the page has room for their overshoot.
#[inline(always)]
fn copy_match(out: &mut Page, op: usize, off: usize, ml: usize) {
    let start = op - off;
    if op + ml + 16 <= PAGE_BYTES {
        if off >= 16 {
            // Each 16-byte chunk reads bytes at least 16 before the ones
            // it writes, all written already (by earlier chunks where
            // the match overlaps itself).
            let mut k = 0;
            while k < ml {
                out.copy_within(start + k..start + k + 16, op + k);
                k += 16;
            }
        } else if off <= 8 {
            // Short period: stores of a 16-byte pattern, none of which
            // waits for another.
            let (p, step) = pattern(out, start, off);
            let mut k = 0;
            while k < ml {
                out[op + k..op + k + 16].copy_from_slice(&p);
                k += step;
            }
        } else {
            // 9..=15: 8-byte chunks, each reading bytes written before.
            let mut k = 0;
            while k < ml {
                copy8(out, start + k, op + k);
                k += 8;
            }
        }
    } else if off >= ml {
        out.copy_within(start..start + ml, op);
    } else {
        // Overlapping, near the end of the page: [start, op + done) has
        // period `off` and `done` is a multiple of `off` until the last
        // copy, so copying from `start` keeps the period; each copy reads
        // bytes before the ones it writes.
        let mut done = 0;
        while done < ml {
            let n = (off + done).min(ml - done);
            out.copy_within(start..start + n, op + done);
            done += n;
        }
    }
}

/// Copies 8 bytes `out[from..from + 8]` to `out[to..to + 8]`; the caller
/// ensures `from + 8 <= to` (no overlap) and `to + 8 <= out.len()`.
#[inline(always)]
fn copy8(out: &mut Page, from: usize, to: usize) {
    let mut t = [0u8; 8];
    t.copy_from_slice(&out[from..from + 8]);
    out[to..to + 8].copy_from_slice(&t);
}

/// Decodes one sequence at `*ip` (any position, every check), advancing
/// `*ip` and `*op`. `Ok(true)` if it was the last one.
fn sequence(
    input: &[u8],
    out: &mut Page,
    ip: &mut usize,
    op: &mut usize,
) -> Result<bool, DecodeError> {
    let token = *input.get(*ip).ok_or(DecodeError::Truncated)?;
    *ip += 1;

    // Literals.
    let mut lit = usize::from(token >> 4);
    if lit == 15 {
        lit = extend(input, ip, lit)?;
    }
    if lit <= 16 && *ip + 16 <= input.len() && *op + 16 <= PAGE_BYTES {
        // Wild copy: bytes past `op + lit` are overwritten later.
        let mut t = [0u8; 16];
        t.copy_from_slice(&input[*ip..*ip + 16]);
        out[*op..*op + 16].copy_from_slice(&t);
    } else {
        let src = input.get(*ip..*ip + lit).ok_or(DecodeError::Truncated)?;
        out.get_mut(*op..*op + lit)
            .ok_or(DecodeError::WrongLength)?
            .copy_from_slice(src);
    }
    *ip += lit;
    *op += lit;
    if *op > PAGE_BYTES || *ip > input.len() {
        return Err(DecodeError::Truncated);
    }
    if *ip == input.len() {
        // The last sequence: literals only.
        return if *op == PAGE_BYTES {
            Ok(true)
        } else {
            Err(DecodeError::WrongLength)
        };
    }

    // Match.
    let off = match input.get(*ip..*ip + 2) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        _ => return Err(DecodeError::Truncated),
    };
    *ip += 2;
    if off == 0 || off > *op {
        return Err(DecodeError::BadOffset);
    }
    let mut ml = usize::from(token & 15);
    if ml == 15 {
        ml = extend(input, ip, ml)?;
    }
    ml += 4;
    if *op + ml > PAGE_BYTES {
        return Err(DecodeError::WrongLength);
    }
    copy_match(out, *op, off, ml);
    *op += ml;
    Ok(false)
}

/// The match of a sequence in the fast loop: `off` read, `*ip` past it,
/// `*op` past the literals, with `FAST_OUT - 14` bytes of room after
/// `*op`.
#[inline(always)]
fn fast_match(
    input: &[u8],
    out: &mut Page,
    ip: &mut usize,
    op: &mut usize,
    token: u8,
    off: usize,
) -> Result<(), DecodeError> {
    if off == 0 || off > *op {
        return Err(DecodeError::BadOffset);
    }
    let mut ml = usize::from(token & 15);
    let start = *op - off;
    if ml < 15 && off >= 8 {
        // At most 18 bytes: three 8-byte moves, each reading bytes at
        // least 8 before the ones it writes.
        copy8(out, start, *op);
        copy8(out, start + 8, *op + 8);
        copy8(out, start + 16, *op + 16);
        *op += ml + 4;
        return Ok(());
    }
    if ml < 15 {
        // Overlapping, at most 18 bytes: two stores of the pattern (its
        // step is at least 12).
        let (p, step) = pattern(out, start, off);
        out[*op..*op + 16].copy_from_slice(&p);
        out[*op + step..*op + step + 16].copy_from_slice(&p);
        *op += ml + 4;
        return Ok(());
    }
    ml = extend(input, ip, ml)? + 4;
    if *op + ml > PAGE_BYTES {
        return Err(DecodeError::WrongLength);
    }
    copy_match(out, *op, off, ml);
    *op += ml;
    Ok(())
}

/// Decodes the lz4 block `input` into `page`. On error the page holds
/// whatever was decoded so far.
pub fn decode_page(input: &[u8], page: &mut Page) -> Result<(), DecodeError> {
    let out = page;
    let (mut ip, mut op) = (0usize, 0usize);
    // Touch every cache line of the block up front: the loads are
    // independent, so a cold block's lines are fetched together instead
    // of one demand miss at a time as the sequences reach them.
    let mut touch = 0u8;
    for &b in input.iter().step_by(64) {
        touch ^= b;
    }
    core::hint::black_box(touch);
    loop {
        // Fast path: a sequence with at most 14 literals, far from both
        // ends. It is not the last sequence (that ends the input, and
        // `FAST_IN` bytes follow its token), and checks once that its
        // bytes are there.
        if let (Some(win), true) = (input.get(ip..ip + FAST_IN), op + FAST_OUT <= PAGE_BYTES) {
            let token = win[0];
            let lit = usize::from(token >> 4);
            if lit < 15 {
                out[op..op + 16].copy_from_slice(&win[1..17]);
                op += lit;
                let off = usize::from(u16::from_le_bytes([win[1 + lit], win[2 + lit]]));
                ip += 3 + lit;
                fast_match(input, out, &mut ip, &mut op, token, off)?;
                continue;
            }
            // A long run of literals: 16-byte moves if `FAST_IN` bytes
            // follow it and the page has room after it.
            let mut i = ip + 1;
            let lit = extend(input, &mut i, lit)?;
            if let (Some(src), true) = (
                input.get(i..i + lit + FAST_IN),
                op + lit + FAST_OUT <= PAGE_BYTES,
            ) {
                let mut k = 0;
                while k < lit {
                    out[op + k..op + k + 16].copy_from_slice(&src[k..k + 16]);
                    k += 16;
                }
                op += lit;
                let off = usize::from(u16::from_le_bytes([src[lit], src[lit + 1]]));
                ip = i + lit + 2;
                fast_match(input, out, &mut ip, &mut op, token, off)?;
                continue;
            }
        }
        if sequence(input, out, &mut ip, &mut op)? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::content::{fill, ContentKind};
    use alloc::vec;
    use alloc::vec::Vec;
    use lz4_flex::block::{compress_into, get_maximum_output_size};
    use proptest::prelude::*;

    fn lz4(page: &Page) -> Vec<u8> {
        let mut out = vec![0u8; get_maximum_output_size(PAGE_BYTES)];
        let n = compress_into(page, &mut out).expect("room");
        out.truncate(n);
        out
    }

    #[test]
    fn decodes_every_content_kind() {
        for kind in ContentKind::ALL {
            for id in 0..40 {
                let mut p = [0u8; PAGE_BYTES];
                fill(kind, id, &mut p);
                let block = lz4(&p);
                let mut back = [0xeeu8; PAGE_BYTES];
                assert_eq!(decode_page(&block, &mut back), Ok(()), "{kind:?} {id}");
                assert_eq!(back, p, "{kind:?} {id}");
            }
        }
    }

    #[test]
    fn rejects_bad_blocks() {
        let mut p = [0u8; PAGE_BYTES];
        fill(ContentKind::Mixed, 3, &mut p);
        let block = lz4(&p);
        let mut back = [0u8; PAGE_BYTES];
        assert_eq!(decode_page(&[], &mut back), Err(DecodeError::Truncated));
        assert!(decode_page(&block[..block.len() - 1], &mut back).is_err());
        // A match before the start of the output.
        assert_eq!(
            decode_page(&[0x10, b'a', 0x05, 0x00], &mut back),
            Err(DecodeError::BadOffset)
        );
        // Zero offset.
        assert_eq!(
            decode_page(&[0x10, b'a', 0x00, 0x00], &mut back),
            Err(DecodeError::BadOffset)
        );
        // Short of a page.
        assert_eq!(
            decode_page(&[0x10, b'a'], &mut back),
            Err(DecodeError::WrongLength)
        );
    }

    /// Pages with runs, repeats and noise, to exercise every copy path.
    fn page_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec((any::<u8>(), 1usize..300, 0u8..4), 1..60).prop_map(|runs| {
            let mut v = Vec::with_capacity(PAGE_BYTES);
            let mut x = 1u64;
            while v.len() < PAGE_BYTES {
                for &(b, len, mode) in &runs {
                    for i in 0..len {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        v.push(match mode {
                            0 => b,
                            1 => b.wrapping_add((i % 7) as u8),
                            2 => (x >> 56) as u8,
                            _ => [b, 0, 0, 0, 0xff, 0xff, 0x88, 0x80][i % 8],
                        });
                    }
                }
            }
            v.truncate(PAGE_BYTES);
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn agrees_with_lz4_flex(v in page_strategy()) {
            let mut p = [0u8; PAGE_BYTES];
            p.copy_from_slice(&v);
            let block = lz4(&p);
            let mut back = [0u8; PAGE_BYTES];
            prop_assert_eq!(decode_page(&block, &mut back), Ok(()));
            prop_assert_eq!(&back[..], &p[..]);
        }

        #[test]
        fn never_panics_on_arbitrary_input(input in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let mut back = [0u8; PAGE_BYTES];
            let _ = decode_page(&input, &mut back);
        }

        #[test]
        fn never_panics_on_damaged_blocks(v in page_strategy(), at in any::<usize>(), x in 1u8..) {
            let mut p = [0u8; PAGE_BYTES];
            p.copy_from_slice(&v);
            let mut block = lz4(&p);
            let i = at % block.len();
            block[i] ^= x;
            let mut back = [0u8; PAGE_BYTES];
            let _ = decode_page(&block, &mut back);
        }
    }
}
