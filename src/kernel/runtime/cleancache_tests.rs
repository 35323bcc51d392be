//! The loop with cache pages on the fakes: cache pages are not committed,
//! so the self-balloon controller squeezes them out into cleancache;
//! re-reads find them there or recompute them; nothing of the workload's
//! verified data is lost.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

#[test]
fn selfballooning_squeezes_cache_pages_into_cleancache() {
    let mut m = meta();
    let mut phases = Vec::from(["content:text,alloc:2M,touch:seq,cache:12M,idle:30s".to_string()]);
    for _ in 0..12 {
        phases.push(String::from("cache:read,idle:2s"));
    }
    let config = Config {
        workload: Some(phases.join(",")),
        mode: Some(Mode::Seed2011),
        ..Config::default()
    };
    // A small pool (3% of RAM): cleancache cannot keep them all.
    let mut st = store();
    st.dom0_write("memory/selfballoon/zpool_max_percent", "3");
    let mut r = rig(&mut m, config, Some(st));
    r.run_s(70);
    let e = r.rt.engine().unwrap().status();
    let p = r.rt.pager().stats();
    let num = |r: &mut Rig<'_>, k: &str| -> u64 {
        r.status(k)
            .unwrap_or_else(|| panic!("{k} published"))
            .parse()
            .unwrap()
    };
    let puts = num(&mut r, "cleancache_puts");
    let hits = num(&mut r, "cleancache_hits");
    let misses = num(&mut r, "cleancache_misses");
    let recomputed = num(&mut r, "cleancache_recomputed");
    assert!(puts > 1000, "squeezed into cleancache: {p:?} {e:?}");
    // Reclaim takes the clean cache pages first: few committed pages
    // went to frontswap (of 512).
    assert!(p.pageouts < 128, "{p:?}");
    assert!(hits > 0, "{p:?}");
    assert_eq!((hits, misses), (p.cache_hits, p.cache_misses));
    assert_eq!(recomputed, e.cache_recomputed);
    assert!(misses > 0, "the small pool dropped some: {p:?}");
    assert_eq!(recomputed, misses, "each miss recomputed once");
    // The guest came down below what its cache pages would need.
    assert!(
        r.populated() < FRAMES - 3 * MIB,
        "{} {:?}",
        r.populated(),
        r.rt.pager().counts()
    );
    assert_eq!((e.mismatches, e.map_errors), (0, 0));
    assert!(e.verified_pages >= 12 * 3 * MIB, "{e:?}");
    assert_eq!(p.lost_pages, 0);
    r.check();
}

/// A program that still holds cache pages is not dropped for a new one
/// (its pages would leak), as one holding reserved pages is not.
#[test]
fn a_program_holding_cache_pages_is_kept() {
    let mut m = meta();
    let config = Config {
        workload: Some(String::from("cache:1M")),
        ..no_selfballoon()
    };
    let mut r = rig(&mut m, config, Some(store()));
    r.run_s(2);
    assert_eq!(r.rt.engine().unwrap().status().cache_pages, 256);
    r.store().dom0_write("memory/workload", "idle:1s");
    r.run_s(2);
    let s = r.rt.engine().unwrap().status();
    assert_eq!((s.cache_pages, s.phase), (256, "done"), "kept");
    r.check();
}
