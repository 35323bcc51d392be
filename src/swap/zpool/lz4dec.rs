//! A safe lz4 block decoder for exactly one page: the pool's page-in path.
//!
//! Why not `lz4_flex::block::decompress_into`: its safe decoder copies an
//! overlapping match (offset < length: runs, repeated words) one byte at
//! a time with a bounds check per byte, and memory pages are full of such
//! matches (zero runs after a zero word, repeated pointers); on the
//! benchmark's `mixed` pages it takes 2.8 µs a page against 1.7 µs here
//! (`cargo bench --bench swap`, columns `lz4 dec` and `ours dec`).
//!
//! How: a *fast loop* takes every sequence that has at least `FAST_IN`
//! (32) block bytes from its token on and whose output starts at least
//! `FAST_OUT` (64) bytes before the end of the page (all but the last few
//! sequences). It checks those two bounds once, then copies with fixed
//! moves that may write past the sequence's end but stay inside the page
//! (lz4's "wild copy": the excess is overwritten by what follows): 16
//! literal bytes whatever their count (up to 14), a short match (up to
//! 18 bytes) at offset 8 or more as three 8-byte moves, one at a smaller
//! offset as two stores of a 16-byte pattern of its period, long runs in
//! 16-byte chunks (each reading only bytes already written). No `memcpy`
//! call, and no per-byte work. The sequences near either end go through
//! `sequence`, which checks every length before it copies and copies
//! an overlapping match by doubling (copy the `offset`-byte pattern, then
//! the doubled pattern, ...).
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
//! `lz4_flex` on real and random pages, against a byte-at-a-time
//! reference decoder on generated blocks (every offset 1..=40, matches
//! ending the page, bad offsets and lengths in and out of the fast loop,
//! every truncation, damaged blocks), and on arbitrary input.

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

/// Blocks up to this long are touched before decoding (the pool's
/// largest object, [`super::class::MAX_CLASS_BYTES`]).
const TOUCH_MAX_BYTES: usize = 3072;

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
    // of one demand miss at a time as the sequences reach them (about 3%
    // on `mixed` pages). Not for blocks longer than the pool stores: an
    // incompressible page is one 4 KiB literal run, which `memcpy`
    // streams faster untouched (measured: +40% with the touch).
    if input.len() <= TOUCH_MAX_BYTES {
        let mut touch = 0u8;
        for &b in input.iter().step_by(64) {
            touch ^= b;
        }
        core::hint::black_box(touch);
    }
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

    /// Writes an lz4 length: the nibble is in the token, the rest here.
    fn push_len(block: &mut Vec<u8>, mut rest: usize) {
        while rest >= 255 {
            block.push(255);
            rest -= 255;
        }
        block.push(rest as u8);
    }

    /// Appends one sequence: `lits`, then a match of `ml` (>= 4) bytes at
    /// `off` (any value: the tests also build bad ones).
    fn push_seq(block: &mut Vec<u8>, lits: &[u8], off: u16, ml: usize) {
        let (l, m) = (lits.len(), ml - 4);
        block.push(((l.min(15) as u8) << 4) | m.min(15) as u8);
        if l >= 15 {
            push_len(block, l - 15);
        }
        block.extend_from_slice(lits);
        block.extend_from_slice(&off.to_le_bytes());
        if m >= 15 {
            push_len(block, m - 15);
        }
    }

    /// Appends the last sequence: literals only.
    fn push_last(block: &mut Vec<u8>, lits: &[u8]) {
        let l = lits.len();
        block.push((l.min(15) as u8) << 4);
        if l >= 15 {
            push_len(block, l - 15);
        }
        block.extend_from_slice(lits);
    }

    /// The reference: the format decoded one byte at a time, `None` for
    /// any block that is not exactly one page.
    fn naive(block: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut ip = 0;
        let len = |ip: &mut usize, nibble: u8| -> Option<usize> {
            let mut n = usize::from(nibble);
            if n == 15 {
                loop {
                    let b = *block.get(*ip)?;
                    *ip += 1;
                    n += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
            }
            Some(n)
        };
        loop {
            let token = *block.get(ip)?;
            ip += 1;
            let l = len(&mut ip, token >> 4)?;
            out.extend_from_slice(block.get(ip..ip + l)?);
            ip += l;
            if ip == block.len() {
                return (out.len() == PAGE_BYTES).then_some(out);
            }
            let off = usize::from(u16::from_le_bytes([*block.get(ip)?, *block.get(ip + 1)?]));
            ip += 2;
            let ml = len(&mut ip, token & 15)? + 4;
            if off == 0 || off > out.len() || out.len() + ml > PAGE_BYTES {
                return None;
            }
            for _ in 0..ml {
                out.push(out[out.len() - off]);
            }
        }
    }

    /// Decodes `block` both ways; they must agree (and an `Ok` page must
    /// be the reference's).
    fn check(block: &[u8]) -> Result<(), DecodeError> {
        let mut back = [0x5au8; PAGE_BYTES];
        let got = decode_page(block, &mut back);
        match naive(block) {
            Some(want) => {
                assert_eq!(got, Ok(()));
                assert_eq!(&back[..], &want[..]);
            }
            None => assert!(got.is_err(), "accepted a bad block"),
        }
        got
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A block: `pre` literals, one match at `off` of `ml` bytes, then
    /// literals to the end of the page (or an empty last sequence if the
    /// match ends the page).
    fn one_match(pre: usize, off: u16, ml: usize) -> Vec<u8> {
        let mut b = Vec::new();
        push_seq(&mut b, &noise(pre, pre as u64 * 31 + ml as u64), off, ml);
        push_last(&mut b, &noise(PAGE_BYTES - pre - ml, 7));
        b
    }

    #[test]
    fn overlapping_matches_of_every_short_offset() {
        // Offsets 1..=40 (the pattern, 8-byte and 16-byte paths), short
        // and long matches, in the fast loop (early) and near the end of
        // the page (late, where the wide moves have no room).
        for off in 1..=40u16 {
            for ml in (4..=40).chain([63, 64, 65, 100, 255, 300, 1000]) {
                for pre in [usize::from(off), 40, 100] {
                    assert_eq!(check(&one_match(pre, off, ml)), Ok(()), "{off} {ml} {pre}");
                }
                for tail in [0, 1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
                    let pre = PAGE_BYTES - ml - tail;
                    assert_eq!(
                        check(&one_match(pre, off, ml)),
                        Ok(()),
                        "{off} {ml} end-{tail}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_up_to_the_last_byte() {
        // The page ends with a match; the block with an empty last
        // sequence. Every copy path, with and without room.
        for off in [1u16, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 200] {
            for ml in [4, 5, 8, 16, 18, 19, 32, 33, 100] {
                let mut b = Vec::new();
                let pre = PAGE_BYTES - ml - 4;
                push_seq(&mut b, &noise(pre, 3), off, 4);
                push_seq(&mut b, &[], off, ml);
                push_last(&mut b, &[]);
                assert_eq!(check(&b), Ok(()), "{off} {ml}");
            }
        }
    }

    #[test]
    fn chains_of_short_sequences() {
        // Many short sequences in a row (the fast loop's common case),
        // every literal count 0..=20 and match length 4..=20.
        let mut b = Vec::new();
        let mut op = 0;
        let mut i = 0u64;
        while op < PAGE_BYTES - 200 {
            let lit = (i % 21) as usize;
            let ml = 4 + (i / 21 % 17) as usize;
            let off = [1u16, 2, 3, 4, 6, 8, 12, 16, 24, 40, 300][(i % 11) as usize];
            let lits = noise(lit, i);
            if op + lit < usize::from(off) {
                push_seq(&mut b, &noise(usize::from(off), i), 1, 4);
                op += usize::from(off) + 4;
            }
            push_seq(&mut b, &lits, off, ml);
            op += lit + ml;
            i += 1;
        }
        push_last(&mut b, &noise(PAGE_BYTES - op, 9));
        assert_eq!(check(&b), Ok(()));
    }

    #[test]
    fn bad_offsets_and_lengths_are_errors() {
        let early = 40;
        for (pre, at) in [(8, "start"), (early, "fast"), (PAGE_BYTES - 60, "end")] {
            let ok = one_match(pre, 8, 20);
            assert_eq!(check(&ok), Ok(()), "{at}");
            // Offset 0 and beyond the output.
            for off in [0u16, pre as u16 + 1, u16::MAX] {
                assert_eq!(
                    check(&one_match(pre, off, 20)),
                    Err(DecodeError::BadOffset),
                    "{at} {off}"
                );
            }
            // A match past the end of the page, short and extended.
            for ml in [PAGE_BYTES - pre + 1, PAGE_BYTES, PAGE_BYTES + 300, 70_000] {
                let mut b = Vec::new();
                push_seq(&mut b, &noise(pre, 1), 1, ml);
                push_last(&mut b, &noise(40, 2));
                assert_eq!(check(&b), Err(DecodeError::WrongLength), "{at} {ml}");
            }
            // Literals past the end of the page.
            let mut b = Vec::new();
            push_seq(&mut b, &noise(pre, 1), 1, 4);
            push_last(&mut b, &noise(PAGE_BYTES - pre - 4 + 1, 2));
            assert!(check(&b).is_err(), "{at} literals");
        }
        // A literal length that claims more than the page, in the fast
        // loop's window (bytes follow) and at the end.
        let mut b = vec![0xf0];
        push_len(&mut b, 5000);
        b.extend_from_slice(&[0u8; 64]);
        assert_eq!(check(&b), Err(DecodeError::WrongLength));
        // Length bytes that never end.
        assert!(check(&[0xf0, 255, 255, 255]).is_err());
        assert!(check(&[0x0f, 255, 255, 255]).is_err());
        let mut b = Vec::new();
        push_seq(&mut b, &noise(40, 1), 8, 4);
        b.extend_from_slice(&[0x0f, 8, 0]);
        b.extend_from_slice(&[255; 40]);
        assert!(check(&b).is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut blocks = vec![one_match(40, 3, 100), one_match(PAGE_BYTES - 70, 16, 30)];
        let mut p = [0u8; PAGE_BYTES];
        fill(ContentKind::Mixed, 5, &mut p);
        blocks.push(lz4(&p));
        for b in &blocks {
            assert_eq!(check(b), Ok(()));
            for n in 0..b.len() {
                assert!(check(&b[..n]).is_err(), "prefix {n}");
            }
        }
    }

    /// A block of random sequences (offsets biased to 1..=40, long and
    /// short lengths) that expands to exactly one page.
    fn block_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            (0usize..40, any::<u16>(), 0u8..4, 0usize..80, any::<u64>()),
            1..300,
        )
        .prop_map(|seqs| {
            let mut b = Vec::new();
            let mut op = 0usize;
            for (lit, off, kind, ml, seed) in seqs {
                let ml = if kind == 0 { ml * 7 + 4 } else { ml % 20 + 4 };
                let lit = if op == 0 { lit.max(1) } else { lit };
                if op + lit + ml > PAGE_BYTES {
                    break;
                }
                let room = (op + lit).min(usize::from(u16::MAX));
                let off = if kind == 3 {
                    usize::from(off) % room + 1
                } else {
                    usize::from(off) % room.min(40) + 1
                };
                push_seq(&mut b, &noise(lit, seed), off as u16, ml);
                op += lit + ml;
            }
            push_last(&mut b, &noise(PAGE_BYTES - op, 11));
            b
        })
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
        fn agrees_with_the_reference(b in block_strategy()) {
            prop_assert_eq!(check(&b), Ok(()));
        }

        #[test]
        fn damaged_blocks_agree_with_the_reference(
            b in block_strategy(),
            at in any::<usize>(),
            x in 1u8..,
            cut in any::<usize>(),
        ) {
            let mut b = b;
            let i = at % b.len();
            b[i] ^= x;
            let _ = check(&b);
            let _ = check(&b[..cut % (b.len() + 1)]);
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
