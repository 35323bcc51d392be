//! Swap tier benchmark: `cargo bench --bench swap`.
//!
//! For each page content kind (`zero`, `random`, `text`, `mixed`, see
//! `selfballoon::swap::content`), 8,192 distinct pages (32 MiB) are
//! paged out into an empty `zpool` and paged back in, through
//! `Frontswap<ZPool<VecFrames>>` (what the kernel runs where Xen has no
//! tmem) and through the bare pool. Printed per kind:
//!
//! - ns per page-out and per page-in (median of several repetitions; every
//!   page-in is verified against its id after the timed loop);
//! - the effective pool ratio, logical bytes / (pool frames × 4096),
//!   beside the raw lz4 ratio of the same pages (4096 × pages / sum of
//!   lz4 block lengths) and their quotient (target >= 0.8);
//! - pages refused (incompressible: lz4 block > 3,072 bytes).
//!
//! Figures, not a test: the machine is shared, so expect noise.

use std::hint::black_box;
use std::time::Instant;

use selfballoon::swap::content::{fill, verify, ContentKind};
use selfballoon::swap::frontswap::Frontswap;
use selfballoon::swap::tmem::{Key, ObjectId, Page, PoolKind, Tmem, PAGE_BYTES};
use selfballoon::swap::zpool::compress::{Compressor, LZ4_MAX_BYTES};
use selfballoon::swap::zpool::{VecFrames, ZPool};

const PAGES: usize = 8192;
const REPEATS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pages(kind: ContentKind) -> Vec<Page> {
    (0..PAGES as u64)
        .map(|id| {
            let mut p = [0u8; PAGE_BYTES];
            fill(kind, id, &mut p);
            p
        })
        .collect()
}

struct Figures {
    out_ns: f64,
    in_ns: f64,
    stored: u64,
    frames: u64,
}

fn pool() -> ZPool<VecFrames> {
    ZPool::new(VecFrames::new(0x10_0000, PAGES + 64), u64::MAX)
}

/// Through frontswap (slot = page number).
fn bench_frontswap(kind: ContentKind, pages: &[Page]) -> Figures {
    let (mut outs, mut ins) = (Vec::new(), Vec::new());
    let mut last = None;
    let mut back = [0u8; PAGE_BYTES];
    for _ in 0..REPEATS {
        let mut fs = Frontswap::new(pool()).expect("pool");
        let t = Instant::now();
        for (slot, p) in pages.iter().enumerate() {
            let _ = black_box(fs.store(slot as u64, p));
        }
        outs.push(t.elapsed().as_nanos() as f64 / pages.len() as f64);
        let held: Vec<u64> = fs.slots().map(|(s, _)| s).collect();
        let t = Instant::now();
        for &slot in &held {
            fs.load(slot, black_box(&mut back)).expect("load");
        }
        if !held.is_empty() {
            ins.push(t.elapsed().as_nanos() as f64 / held.len() as f64);
        }
        for &slot in &held {
            fs.load(slot, &mut back).expect("load");
            assert!(verify(kind, slot, &back), "{kind:?} slot {slot} corrupt");
        }
        last = Some((held.len() as u64, fs.primary().stats().frames_used));
    }
    let (stored, frames) = last.unwrap_or_default();
    Figures {
        out_ns: median(outs),
        in_ns: if ins.is_empty() {
            f64::NAN
        } else {
            median(ins)
        },
        stored,
        frames,
    }
}

/// The bare pool (tmem calls, no slot map).
fn bench_pool(pages: &[Page]) -> (f64, f64) {
    let (mut outs, mut ins) = (Vec::new(), Vec::new());
    let mut back = [0u8; PAGE_BYTES];
    for _ in 0..REPEATS {
        let mut zp = pool();
        let id = zp.new_pool(PoolKind::PERSISTENT).expect("pool");
        let key = |i: usize| Key::new(ObjectId([i as u64 % 16, 0, 0]), (i / 16) as u32);
        let t = Instant::now();
        let mut stored = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            if zp.put(id, key(i), p).is_ok() {
                stored.push(i);
            }
        }
        outs.push(t.elapsed().as_nanos() as f64 / pages.len() as f64);
        let t = Instant::now();
        for &i in &stored {
            zp.get(id, key(i), black_box(&mut back)).expect("get");
        }
        if !stored.is_empty() {
            ins.push(t.elapsed().as_nanos() as f64 / stored.len() as f64);
        }
    }
    (
        median(outs),
        if ins.is_empty() {
            f64::NAN
        } else {
            median(ins)
        },
    )
}

/// Raw lz4 on the same pages: ratio, compress ns and decompress ns.
fn bench_raw(pages: &[Page]) -> (f64, f64, f64) {
    let mut c = Compressor::default();
    let total: usize = pages.iter().map(|p| c.raw_len(p)).sum();
    let ratio = (pages.len() * PAGE_BYTES) as f64 / total as f64;
    let blocks: Vec<Vec<u8>> = pages
        .iter()
        .map(|p| {
            let mut out = vec![0u8; LZ4_MAX_BYTES];
            let n = lz4_flex::block::compress_into(p, &mut out).expect("fits");
            out.truncate(n);
            out
        })
        .collect();
    let comp = median(
        (0..REPEATS)
            .map(|_| {
                let t = Instant::now();
                for p in pages {
                    black_box(c.raw_len(black_box(p)));
                }
                t.elapsed().as_nanos() as f64 / pages.len() as f64
            })
            .collect(),
    );
    let mut back = [0u8; PAGE_BYTES];
    let dec = median(
        (0..REPEATS)
            .map(|_| {
                let t = Instant::now();
                for b in &blocks {
                    let _ = black_box(lz4_flex::block::decompress_into(b, &mut back));
                }
                t.elapsed().as_nanos() as f64 / pages.len() as f64
            })
            .collect(),
    );
    (ratio, comp, dec)
}

fn main() {
    println!(
        "swap tier benchmark ({PAGES} pages per kind, median of {REPEATS}; lz4_flex safe-encode+safe-decode)"
    );
    println!(
        "{:<7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "kind",
        "fs out",
        "fs in",
        "pool out",
        "pool in",
        "lz4 comp",
        "lz4 dec",
        "stored",
        "frames",
        "pool x",
        "raw x",
        "pool/raw"
    );
    for kind in ContentKind::ALL {
        let pages = pages(kind);
        let fs = bench_frontswap(kind, &pages);
        let (pool_out, pool_in) = bench_pool(&pages);
        let (raw, comp, dec) = bench_raw(&pages);
        let eff = if fs.frames == 0 {
            f64::INFINITY
        } else {
            (fs.stored * PAGE_BYTES as u64) as f64 / (fs.frames * PAGE_BYTES as u64) as f64
        };
        let eff_s = if fs.stored == 0 {
            "n/a".to_string()
        } else if fs.frames == 0 {
            "inf".to_string()
        } else {
            format!("{eff:.2}")
        };
        let quot = if fs.stored == 0 {
            "n/a".to_string()
        } else if fs.frames == 0 {
            "inf".to_string()
        } else {
            format!("{:.2}", eff / raw)
        };
        println!(
            "{:<7} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8.2} {:>7}",
            kind.name(),
            fs.out_ns,
            fs.in_ns,
            pool_out,
            pool_in,
            comp,
            dec,
            fs.stored,
            fs.frames,
            eff_s,
            raw,
            quot
        );
    }
    println!("times in ns per page; 'fs' = Frontswap<ZPool>, 'pool' = ZPool tmem calls");
    println!("pool x = logical bytes / (pool frames x 4096); raw x = lz4 on the same pages");
    println!("targets: pool/raw >= 0.8; fs in < 2000 ns for mixed");
}
