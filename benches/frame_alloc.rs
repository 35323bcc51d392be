//! Frame allocator benchmark: `cargo bench --bench frame_alloc`.
//!
//! Prints ns per alloc+free of one frame (hot loop) and ns per frame when
//! 8192 frames are allocated and then freed in random order, for our
//! allocator, `linked_list_allocator::Heap` (4 KiB-aligned 4 KiB blocks)
//! and an intrusive LIFO free list threaded through a Vec-backed arena.
//! Each figure is the median of several repetitions.
//!
//! In the hot loop each allocator is passed through `black_box(&mut ..)`
//! every iteration: otherwise the compiler sees that the LIFO list's
//! alloc+free pair stores back the value it loaded and folds it to almost
//! nothing, which measures the optimiser rather than the data structure.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

use linked_list_allocator::Heap;
use selfballoon::mm::frame::{FrameAllocator, FrameMeta};
use selfballoon::mm::PfnRange;

const FRAMES: usize = 8192;
const PAGE: usize = 4096;
const HOT_ITERS: u64 = 1_000_000;
const REPEATS: usize = 9;

/// xorshift64*, fixed seed: the same "random" order in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A permutation of 0..n (Fisher-Yates).
fn shuffled(n: usize) -> Vec<usize> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `f` REPEATS times; returns the median ns per `per` operations.
fn measure(per: u64, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    median(
        (0..REPEATS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_nanos() as f64 / per as f64
            })
            .collect(),
    )
}

/// The plain intrusive LIFO list: the next index lives in the first 8
/// bytes of each free frame.
struct Lifo {
    arena: Vec<u8>,
    head: usize,
}

const LIFO_NONE: usize = usize::MAX;

impl Lifo {
    fn new(frames: usize) -> Self {
        let mut l = Lifo {
            arena: vec![0; frames * PAGE],
            head: LIFO_NONE,
        };
        for i in (0..frames).rev() {
            l.free(i);
        }
        l
    }

    fn alloc(&mut self) -> Option<usize> {
        let i = self.head;
        if i == LIFO_NONE {
            return None;
        }
        let mut next = [0u8; 8];
        next.copy_from_slice(&self.arena[i * PAGE..i * PAGE + 8]);
        self.head = usize::from_le_bytes(next);
        Some(i)
    }

    fn free(&mut self, i: usize) {
        self.arena[i * PAGE..i * PAGE + 8].copy_from_slice(&self.head.to_le_bytes());
        self.head = i;
    }
}

fn bench_ours(order: &[usize]) -> (f64, f64) {
    let ram = [PfnRange {
        start: 0,
        count: FRAMES as u64 + 64,
    }];
    let mut meta = vec![FrameMeta::ABSENT; FRAMES + 64];
    let mut fa = FrameAllocator::new(&mut meta, 0, &ram).expect("allocator");
    let hot = measure(HOT_ITERS, || {
        for _ in 0..HOT_ITERS {
            let fa = black_box(&mut fa);
            let p = black_box(fa.alloc().expect("frame"));
            fa.free(p).expect("free");
        }
    });
    let mut held = vec![0u64; FRAMES];
    let random = measure(FRAMES as u64, || {
        for slot in held.iter_mut() {
            *slot = fa.alloc().expect("frame");
        }
        for &i in order {
            fa.free(black_box(held[i])).expect("free");
        }
    });
    (hot, random)
}

fn bench_lifo(order: &[usize]) -> (f64, f64) {
    let mut l = Lifo::new(FRAMES + 64);
    let hot = measure(HOT_ITERS, || {
        for _ in 0..HOT_ITERS {
            let l = black_box(&mut l);
            let p = black_box(l.alloc().expect("frame"));
            l.free(p);
        }
    });
    let mut held = vec![0usize; FRAMES];
    let random = measure(FRAMES as u64, || {
        for slot in held.iter_mut() {
            *slot = l.alloc().expect("frame");
        }
        for &i in order {
            l.free(black_box(held[i]));
        }
    });
    (hot, random)
}

fn bench_lla(order: &[usize]) -> (f64, f64) {
    let layout = Layout::from_size_align(PAGE, PAGE).expect("layout");
    let size = (FRAMES + 64) * PAGE;
    let backing = Layout::from_size_align(size, PAGE).expect("layout");
    // SAFETY: `backing` has a non-zero size.
    let mem = unsafe { std::alloc::alloc(backing) };
    assert!(!mem.is_null(), "out of memory");
    let mut heap = Heap::empty();
    // SAFETY: `mem` is a fresh, exclusively owned allocation of `size`
    // bytes that outlives `heap` (freed at the end of this function).
    unsafe { heap.init(mem, size) };
    let hot = measure(HOT_ITERS / 10, || {
        for _ in 0..HOT_ITERS / 10 {
            let heap = black_box(&mut heap);
            let p = black_box(heap.allocate_first_fit(layout).expect("block"));
            // SAFETY: `p` was just allocated from `heap` with `layout`.
            unsafe { heap.deallocate(p, layout) };
        }
    });
    let mut held: Vec<Option<NonNull<u8>>> = vec![None; FRAMES];
    let random = measure(FRAMES as u64, || {
        for slot in held.iter_mut() {
            *slot = Some(heap.allocate_first_fit(layout).expect("block"));
        }
        for &i in order {
            if let Some(p) = held[i].take() {
                // SAFETY: `p` came from `heap` with `layout` and is freed
                // exactly once (taken out of `held`).
                unsafe { heap.deallocate(black_box(p), layout) };
            }
        }
    });
    // SAFETY: `mem` was allocated above with `backing`, and the heap that
    // used it is not used any more (it holds no destructor).
    unsafe { std::alloc::dealloc(mem, backing) };
    (hot, random)
}

fn main() {
    let order = shuffled(FRAMES);
    let (ours_hot, ours_rand) = bench_ours(&order);
    let (lifo_hot, lifo_rand) = bench_lifo(&order);
    let (lla_hot, lla_rand) = bench_lla(&order);
    println!("frame allocator benchmark (median of {REPEATS}, {FRAMES} frames)");
    println!(
        "{:<24} {:>16} {:>24}",
        "allocator", "alloc+free ns", "random release ns/frame"
    );
    for (name, hot, rand) in [
        ("ours", ours_hot, ours_rand),
        ("intrusive LIFO", lifo_hot, lifo_rand),
        ("linked_list_allocator", lla_hot, lla_rand),
    ] {
        println!("{name:<24} {hot:>16.2} {rand:>24.2}");
    }
    println!(
        "ratio ours/LIFO: hot {:.2}x, random {:.2}x (target <= 2x)",
        ours_hot / lifo_hot,
        ours_rand / lifo_rand
    );
    println!(
        "ratio lla/ours: hot {:.1}x, random {:.1}x (target >= 100x on random)",
        lla_hot / ours_hot,
        lla_rand / ours_rand
    );
}
