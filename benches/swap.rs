//! Swap tier benchmark: `cargo bench --bench swap`.
//!
//! For each page content kind (`zero`, `random`, `text`, `mixed`, see
//! `selfballoon::swap::content`), 8,192 distinct pages (32 MiB) are
//! paged out into an empty `zpool` and paged back in, through
//! `Frontswap<ZPool<VecFrames>>` (what the kernel runs where Xen has no
//! tmem) and through the bare pool. Printed per kind:
//!
//! - ns per page-out and per page-in (median of several repetitions; every
//!   page-in is verified against its id after the timed loop), and, on
//!   the same pages, raw lz4_flex compress and decompress and the pool's
//!   own decoder (`zpool::lz4dec`, checked against lz4_flex);
//! - the effective pool ratio, logical bytes / (pool frames × 4096),
//!   beside the raw lz4 ratio of the same pages (4096 × pages / sum of
//!   lz4 block lengths) and their quotient (target >= 0.8);
//! - pages refused (incompressible: lz4 block > 3,072 bytes).
//!
//! With `SWAP_BENCH_DUMP=DIR` the pages are also written to
//! `DIR/<kind>.pages` (8,192 × 4,096 bytes), to run other compressors on
//! exactly the same input.
//!
//! Figures, not a test. The machine is shared (2 cores, several builds at
//! once), so every time is taken twice: on the thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`: time this thread ran, what the code costs)
//! and on the wall clock (which also counts time other processes had the
//! core). The table shows CPU time; the wall-clock figures follow it.

use std::hint::black_box;
use std::time::Instant;

use selfballoon::swap::content::{fill, verify, ContentKind};
use selfballoon::swap::frontswap::Frontswap;
use selfballoon::swap::tmem::{Key, ObjectId, Page, PoolKind, Tmem, PAGE_BYTES};
use selfballoon::swap::zpool::compress::{Compressor, LZ4_MAX_BYTES};
use selfballoon::swap::zpool::lz4dec::decode_page;
use selfballoon::swap::zpool::{VecFrames, ZPool};

const PAGES: usize = 8192;
const REPEATS: usize = 5;

/// This thread's CPU time in ns.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// (cpu ns, wall ns) per operation.
type CpuWall = (f64, f64);

/// A started measurement on both clocks.
struct Timer(Instant, u128);

impl Timer {
    fn start() -> Self {
        Timer(Instant::now(), thread_cpu_ns())
    }
    /// (cpu ns, wall ns) per `n` operations.
    fn per(&self, n: usize) -> (f64, f64) {
        let cpu = (thread_cpu_ns() - self.1) as f64 / n as f64;
        let wall = self.0.elapsed().as_nanos() as f64 / n as f64;
        (cpu, wall)
    }
}

/// Medians of (cpu, wall) pairs.
fn median2(v: Vec<(f64, f64)>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (
        median(v.iter().map(|x| x.0).collect()),
        median(v.iter().map(|x| x.1).collect()),
    )
}

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
    out_ns: (f64, f64),
    in_ns: (f64, f64),
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
        let t = Timer::start();
        for (slot, p) in pages.iter().enumerate() {
            let _ = black_box(fs.store(slot as u64, p));
        }
        outs.push(t.per(pages.len()));
        let held: Vec<u64> = fs.slots().map(|(s, _)| s).collect();
        let t = Timer::start();
        for &slot in &held {
            fs.load(slot, black_box(&mut back)).expect("load");
        }
        if !held.is_empty() {
            ins.push(t.per(held.len()));
        }
        for &slot in &held {
            fs.load(slot, &mut back).expect("load");
            assert!(verify(kind, slot, &back), "{kind:?} slot {slot} corrupt");
        }
        last = Some((held.len() as u64, fs.primary().stats().frames_used));
    }
    let (stored, frames) = last.unwrap_or_default();
    Figures {
        out_ns: median2(outs),
        in_ns: median2(ins),
        stored,
        frames,
    }
}

/// The bare pool (tmem calls, no slot map).
fn bench_pool(pages: &[Page]) -> (CpuWall, CpuWall) {
    let (mut outs, mut ins) = (Vec::new(), Vec::new());
    let mut back = [0u8; PAGE_BYTES];
    for _ in 0..REPEATS {
        let mut zp = pool();
        let id = zp.new_pool(PoolKind::PERSISTENT).expect("pool");
        let key = |i: usize| Key::new(ObjectId([i as u64 % 16, 0, 0]), (i / 16) as u32);
        let mut stored = Vec::with_capacity(pages.len());
        let t = Timer::start();
        for (i, p) in pages.iter().enumerate() {
            if zp.put(id, key(i), p).is_ok() {
                stored.push(i);
            }
        }
        outs.push(t.per(pages.len()));
        let t = Timer::start();
        for &i in &stored {
            zp.get(id, key(i), black_box(&mut back)).expect("get");
        }
        if !stored.is_empty() {
            ins.push(t.per(stored.len()));
        }
    }
    (median2(outs), median2(ins))
}

/// Raw lz4 on the same pages: ratio, lz4_flex compress and decompress ns,
/// and the pool's own decoder (`lz4dec::decode_page`) on the same blocks.
fn bench_raw(pages: &[Page]) -> (f64, CpuWall, CpuWall, CpuWall) {
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
    let comp = median2(
        (0..REPEATS)
            .map(|_| {
                let t = Timer::start();
                for p in pages {
                    black_box(c.raw_len(black_box(p)));
                }
                t.per(pages.len())
            })
            .collect(),
    );
    let mut back = [0u8; PAGE_BYTES];
    let dec = median2(
        (0..REPEATS)
            .map(|_| {
                let t = Timer::start();
                for b in &blocks {
                    let _ = black_box(lz4_flex::block::decompress_into(b, &mut back));
                }
                t.per(pages.len())
            })
            .collect(),
    );
    let ours = median2(
        (0..REPEATS)
            .map(|_| {
                let t = Timer::start();
                for b in &blocks {
                    let _ = black_box(decode_page(b, &mut back));
                }
                t.per(pages.len())
            })
            .collect(),
    );
    for (b, p) in blocks.iter().zip(pages) {
        decode_page(b, &mut back).expect("decodes");
        assert_eq!(&back, p, "decoder disagrees with lz4_flex");
    }
    (ratio, comp, dec, ours)
}

fn main() {
    println!(
        "swap tier benchmark ({PAGES} pages per kind, median of {REPEATS}; lz4_flex safe-encode+safe-decode)"
    );
    let header = format!(
        "{:<7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "fs out", "fs in", "pool out", "pool in", "lz4 comp", "lz4 dec", "ours dec"
    );
    println!(
        "{header} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "stored", "frames", "pool x", "raw x", "pool/raw"
    );
    let mut wall = Vec::new();
    // Mixed pages' (fs in cpu ns, pool/raw), for the targets line.
    let mut mixed = None;
    let dump = std::env::var_os("SWAP_BENCH_DUMP");
    for kind in ContentKind::ALL {
        let pages = pages(kind);
        if let Some(dir) = &dump {
            // The same pages for other compressors: DIR/<kind>.pages.
            let path = std::path::Path::new(dir).join(format!("{}.pages", kind.name()));
            std::fs::write(&path, pages.concat()).expect("write pages");
        }
        let fs = bench_frontswap(kind, &pages);
        let (pool_out, pool_in) = bench_pool(&pages);
        let (raw, comp, dec, ours) = bench_raw(&pages);
        let (eff_s, quot) = if fs.stored == 0 {
            ("n/a".to_string(), "n/a".to_string())
        } else if fs.frames == 0 {
            ("inf".to_string(), "inf".to_string())
        } else {
            let eff = fs.stored as f64 / fs.frames as f64;
            (format!("{eff:.2}"), format!("{:.2}", eff / raw))
        };
        if kind == ContentKind::Mixed && fs.frames > 0 {
            mixed = Some((fs.in_ns.0, fs.stored as f64 / fs.frames as f64 / raw));
        }
        let times = [fs.out_ns, fs.in_ns, pool_out, pool_in, comp, dec, ours];
        let row = |pick: fn(&(f64, f64)) -> f64| {
            let mut r = format!("{:<7}", kind.name());
            for t in &times {
                r.push_str(&format!(" {:>9.0}", pick(t)));
            }
            r
        };
        println!(
            "{} {:>8} {:>8} {:>8} {:>8.2} {:>8}",
            row(|t| t.0),
            fs.stored,
            fs.frames,
            eff_s,
            raw,
            quot
        );
        wall.push(row(|t| t.1));
    }
    // A yardstick for the machine's state: one 4 KiB copy.
    let src = pages(ContentKind::Mixed);
    let mut dst = [0u8; PAGE_BYTES];
    let copy = median2(
        (0..REPEATS)
            .map(|_| {
                let t = Timer::start();
                for p in &src {
                    dst.copy_from_slice(black_box(p));
                    black_box(&mut dst);
                }
                t.per(src.len())
            })
            .collect(),
    );
    println!(
        "yardstick: 4 KiB memcpy {:.0} ns cpu, {:.0} ns wall (same cache-cold pages)",
        copy.0, copy.1
    );
    println!("wall clock, same runs:");
    println!("{header}");
    for r in wall {
        println!("{r}");
    }
    println!("times in ns per page; 'fs' = Frontswap<ZPool>, 'pool' = ZPool tmem calls;");
    println!("'lz4' = lz4_flex block calls, 'ours dec' = the pool's decoder on the same blocks");
    println!("pool x = logical bytes / (pool frames x 4096); raw x = lz4 on the same pages");
    match mixed {
        Some((fs_in, quot)) => println!(
            "targets, mixed: pool/raw >= 0.8 ({quot:.2}: {}); fs in < 2000 ns ({fs_in:.0}: {})",
            if quot >= 0.8 { "met" } else { "NOT met" },
            if fs_in < 2000.0 { "met" } else { "NOT met" },
        ),
        None => {
            println!("targets, mixed: pool/raw >= 0.8; fs in < 2000 ns (no mixed pages stored)")
        }
    }
}
