//! The selftest's `cleancache` check on the machine: the workload's cache
//! pages through the pager's real path (real page tables, `#PF` into the
//! pager, cleancache gets in the fault path) on the swap device the
//! runtime would build: `zpool` alone, or Xen's tmem (its ephemeral pool
//! beside frontswap's persistent one, through the same bounce frame) with
//! `zpool` behind it.
//!
//! 1. The engine builds [`PAGES`] cache pages (`content:text,cache:2M`):
//!    each faults in, is computed and marked clean.
//! 2. Reclaim pages them all out: clean, so each is put to cleancache and
//!    its frame freed; nothing goes to frontswap.
//! 3. One page in [`DROP_EVERY`] is flushed from cleancache behind the
//!    engine's back (what the backend may do to an ephemeral page).
//! 4. The engine re-reads them all (`cache:read`): each read faults, the
//!    pager tries cleancache first; a miss maps zeros, the engine sees it,
//!    recomputes and verifies. Every page must verify, hits + misses must
//!    be the pages, and at least the dropped ones must miss.
//!
//! It also times puts and gets of the device alone (no pager), so the
//! figures of Xen's ephemeral pool and `zpool`'s can be set side by side
//! (on Xen; without a hypervisor there is no clock).

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::num::NonZeroU32;

use crate::balloon::{Balloon, BalloonConfig};
use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::fault::{with_fault_handler, Shared};
use crate::mm::vm::Mmu;
use crate::pager::{GuestSwap, PagedSource, Pager, PagerCtx, PoolStock, SwapDevice};
use crate::swap::content::{fill, verify, ContentKind};
use crate::swap::frontswap::Frontswap;
use crate::swap::xen_tmem::XenTmem;
use crate::swap::zpool::ZPool;
use crate::workload::engine::{Engine, StepOutcome};
use crate::workload::spec::Spec;
use crate::xen::time;
use crate::xen::tmem::{Presence, XenTmemHypervisor};

use super::swapcheck::NoReservation;
use super::Kernel;

/// Cache pages the check builds (2 MiB).
pub const PAGES: u64 = 512;
/// One page in this many is dropped from cleancache before the re-read.
pub const DROP_EVERY: u64 = 4;
/// Pages the device-only timing puts and gets.
const TIMING_PAGES: u64 = 256;

type Swap = GuestSwap<XenTmemHypervisor, crate::mm::held::PooledFrames>;

/// What one run found.
struct Run {
    hits: u64,
    misses: u64,
    recomputed: u64,
    recompute_ns: u64,
    /// ns per page: page-out into cleancache, re-read (fault + get).
    pageout_ns: u64,
    reread_ns: u64,
    /// ns per put / get of the device alone.
    put_ns: u64,
    get_ns: u64,
}

fn pool(k: &Kernel) -> ZPool<PoolStock<crate::mm::held::PooledFrames>> {
    ZPool::new(PoolStock::new(super::boot::pooled_frames(&k.frames)), 2048)
}

/// The device as the runtime builds it, and whether it is on Xen's tmem.
fn device(k: &mut Kernel, tmem: bool) -> Result<Swap, String> {
    let zpool = pool(k);
    if tmem {
        let frame = k
            .direct
            .claim(&mut k.frames, 1, 1)
            .map_err(|e| format!("a frame for tmem's bounce page: {e}"))?;
        let hyp = XenTmemHypervisor::new(frame).map_err(|e| format!("bounce frame: {e:?}"))?;
        return Frontswap::tiered(XenTmem::new(hyp), zpool)
            .map(GuestSwap::Tiered)
            .map_err(|e| format!("frontswap on Xen tmem: {e}"));
    }
    Frontswap::new(zpool)
        .map(GuestSwap::Pool)
        .map_err(|e| format!("frontswap pool: {e}"))
}

fn per_page(ns: u64, pages: u64) -> u64 {
    ns.checked_div(pages).unwrap_or(0)
}

/// Puts and gets of the device alone, ns per page.
fn time_device(k: &mut Kernel, swap: &mut Swap) -> Result<(u64, u64), String> {
    let mut page: Box<Page> = Box::new([0; PAGE_BYTES]);
    let base = 1 << 20;
    let t0 = time::now_ns();
    let mut stored = 0u64;
    for i in 0..TIMING_PAGES {
        fill(ContentKind::Text, base + i, &mut page);
        if swap.cache_put(&mut k.frames, base + i, &page).is_ok() {
            stored += 1;
        }
    }
    let t1 = time::now_ns();
    let mut found = 0u64;
    for i in 0..TIMING_PAGES {
        if swap.cache_get(&mut k.frames, base + i, &mut page) {
            if !verify(ContentKind::Text, base + i, &page) {
                return Err(format!("cleancache page {i} came back wrong"));
            }
            found += 1;
        }
    }
    let t2 = time::now_ns();
    if found != stored || stored == 0 {
        return Err(format!(
            "device: {stored} of {TIMING_PAGES} put, {found} got back"
        ));
    }
    Ok((
        per_page(t1.saturating_sub(t0), stored),
        per_page(t2.saturating_sub(t1), found),
    ))
}

/// Steps `engine` at `now_ns` until it sleeps or ends.
fn run_engine<S: crate::workload::PageSource>(
    engine: &mut Engine,
    now_ns: u64,
    src: &mut S,
) -> Result<StepOutcome, String> {
    for _ in 0..100_000 {
        match engine.step(now_ns, src) {
            StepOutcome::Busy => {}
            o @ (StepOutcome::Sleep { .. } | StepOutcome::Done) => return Ok(o),
            o => return Err(format!("workload: {o:?} {:?}", engine.status())),
        }
    }
    Err(String::from("workload made no progress"))
}

fn run_on(k: &mut Kernel, swap: &mut Swap) -> Result<Run, String> {
    let spec = Spec::parse("content:text,cache:2M,idle:1s,cache:read,cache:free")
        .map_err(|e| format!("spec: {e}"))?;
    let mut engine = Engine::new(spec, NonZeroU32::MIN.saturating_add(255));
    engine.set_clock(time::now_ns);
    let mut pager = Pager::new(k.tables.pages(), 16);
    let mut balloon = Balloon::new(BalloonConfig::default(), k.frames.counts());
    let mut mem = NoReservation;
    let mut access = k.tables.access();
    let mut buf: Box<Page> = Box::new([0; PAGE_BYTES]);
    let shared = Shared::new(PagerCtx {
        pager: &mut pager,
        mmu: &mut k.tables,
        swap,
        frames: &mut k.frames,
        balloon: &mut balloon,
        mem: &mut mem,
        heap_free_bytes: super::heap_free_bytes,
    });
    let r = with_fault_handler(&shared, || -> Result<Run, String> {
        let mut src = PagedSource {
            ctx: &shared,
            access: &mut access,
            buf: &mut buf,
        };
        run_engine(&mut engine, 0, &mut src)?;
        let t0 = time::now_ns();
        let out = shared.lock().reclaim(PAGES);
        let t1 = time::now_ns();
        {
            let mut c = shared.lock();
            let counts = c.pager.counts();
            if out != PAGES || counts.cached_pages != PAGES || c.swap.pages() != 0 {
                return Err(format!(
                    "page-out: {out} of {PAGES} out, {counts:?}, {} in frontswap",
                    c.swap.pages()
                ));
            }
            let c = &mut *c;
            // The engine's pages are the region's first (a fresh pager).
            for vpn in (0..PAGES).step_by(DROP_EVERY as usize) {
                c.swap.cache_flush(c.frames, vpn);
            }
        }
        let t2 = time::now_ns();
        run_engine(&mut engine, 2_000_000_000, &mut src)?;
        let t3 = time::now_ns();
        let s = engine.status();
        let p = shared.lock().pager.stats();
        let dropped = PAGES / DROP_EVERY;
        if s.mismatches != 0 || s.map_errors != 0 || s.verified_pages != PAGES {
            return Err(format!("re-read: {s:?}"));
        }
        if p.cache_hits + p.cache_misses != PAGES
            || p.cache_misses < dropped
            || s.cache_recomputed != p.cache_misses
            || p.lost_pages != 0
        {
            return Err(format!("cleancache: {p:?} {s:?}"));
        }
        Ok(Run {
            hits: p.cache_hits,
            misses: p.cache_misses,
            recomputed: s.cache_recomputed,
            recompute_ns: per_page(s.cache_recompute_ns, s.cache_recomputed),
            pageout_ns: per_page(t1.saturating_sub(t0), PAGES),
            reread_ns: per_page(t3.saturating_sub(t2), PAGES),
            put_ns: 0,
            get_ns: 0,
        })
    });
    let mut r = r?;
    if !matches!(engine.status().phase, "done") {
        return Err(format!("workload did not end: {:?}", engine.status()));
    }
    let (put, get) = time_device(k, swap)?;
    r.put_ns = put;
    r.get_ns = get;
    swap.compact(&mut k.frames);
    Ok(r)
}

fn describe(name: &str, r: &Run) -> String {
    if time::now_ns() == 0 {
        return format!(
            "{name}: {} hits, {} misses ({} recomputed); no clock without a hypervisor",
            r.hits, r.misses, r.recomputed
        );
    }
    format!(
        "{name}: {} hits, {} misses ({} recomputed, {} ns each); per page: \
         page-out {} ns, re-read {} ns; device put {} ns, get {} ns",
        r.hits,
        r.misses,
        r.recomputed,
        r.recompute_ns,
        r.pageout_ns,
        r.reread_ns,
        r.put_ns,
        r.get_ns
    )
}

/// The `cleancache` check.
pub fn cleancache(k: &mut Kernel) -> Result<String, String> {
    let tmem = crate::xen::tmem::boot_presence() == Some(Presence::Present);
    let mut out = alloc::vec::Vec::new();
    // On tmem: Xen's ephemeral pool first, then zpool's for comparison.
    let runs: &[(bool, &str)] = if tmem {
        &[(true, "xen-tmem"), (false, "zpool")]
    } else {
        &[(false, "zpool")]
    };
    for &(on_tmem, name) in runs {
        let mut swap = device(k, on_tmem)?;
        let free_before = k.frames.free_pages();
        let r = run_on(k, &mut swap).map_err(|e| format!("{name}: {e}"))?;
        if k.frames.free_pages() != free_before {
            return Err(format!(
                "{name}: frames not all back: {} free, {} before",
                k.frames.free_pages(),
                free_before
            ));
        }
        if on_tmem {
            let GuestSwap::Tiered(f) = &swap else {
                return Err(String::from("not on tmem"));
            };
            let fallback = f.cleancache().stats().fallback_puts;
            out.push(format!(
                "{} ({fallback} put to zpool behind Xen)",
                describe(name, &r)
            ));
        } else {
            out.push(describe(name, &r));
        }
    }
    Ok(out.join("; "))
}
