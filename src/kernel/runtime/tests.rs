//! Host tests of the main loop on the shared fakes: watch events lost,
//! duplicated or late; store errors and a store that vanishes; the target
//! changing in the middle of a balloon step; tunables changing between
//! ticks; status publishing.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::mm::frame::FrameMeta;
use crate::mm::PfnRange;
use crate::pager::PoolStock;
use crate::swap::frontswap::Frontswap;
use crate::swap::zpool::ZPool;
use crate::testing::fake_clock::FakeClock;
use crate::testing::fake_held::FakeHeldFrames;
use crate::testing::fake_mmu::{FakeAccess, FakeMmu};
use crate::testing::fake_pages::FakePages;
use crate::testing::fake_store::FakeStore;
use crate::testing::fake_xen::{FakeXen, Inject};
use crate::xen::errno::Errno;
use crate::xen::xenstore::XsError;

struct TestEnv;

impl WatchStore for FakeStore {
    fn poll(&mut self) -> Result<(), XsError> {
        if self.vanished {
            Err(XsError::Unavailable)
        } else {
            Ok(())
        }
    }
    fn take_watch_events(&mut self, token: &str) -> Result<Vec<String>, XsError> {
        self.take_events(token)
    }
    fn home_path(&mut self) -> Result<String, XsError> {
        Ok(self.home.clone())
    }
    fn is_broken(&self) -> bool {
        false
    }
    fn queued_watch_events(&self) -> usize {
        self.events.len()
    }
    fn has_pending_input(&self) -> bool {
        false
    }
}

impl Env for TestEnv {
    type Mem = FakeXen;
    type Pages = FakePages;
    type Store = FakeStore;
    type Clock = FakeClock;
    type Mmu = FakeMmu;
    type Access = FakeAccess;
    type Swap = Frontswap<ZPool<PoolStock<FakeHeldFrames>>>;
}

/// The paging parts over a fake MMU of twice the RAM.
fn paging() -> Paging<TestEnv> {
    let mmu = FakeMmu::new(2 * FRAMES);
    let access = mmu.access();
    Paging {
        mmu,
        access,
        swap: Frontswap::new(ZPool::new(PoolStock::new(FakeHeldFrames::default()), 0)).unwrap(),
        watermark_pages: crate::pager::DEFAULT_WATERMARK_PAGES,
        heap_free_bytes: crate::pager::unbounded_heap,
    }
}

const HOME: &str = "/local/domain/7";
/// 32 MiB of RAM, the first 1 MiB the kernel's.
const FRAMES: u64 = 8192;
const KERNEL: u64 = 256;
const MIB: u64 = 256;

fn ram() -> Vec<PfnRange> {
    vec![PfnRange {
        start: 0,
        count: FRAMES,
    }]
}

fn store() -> FakeStore {
    let mut s = FakeStore::with_home(HOME);
    s.read_only = Some("/memory/");
    s.dom0_write("memory/static-max", &(FRAMES * 4).to_string());
    s.dom0_write("memory/target", &(FRAMES * 4).to_string());
    s
}

/// A test rig: the runtime over the fakes, and the clock's handle.
struct Rig<'f> {
    rt: Runtime<'f, TestEnv>,
    clock: FakeClock,
}

fn rig<'f>(meta: &'f mut [FrameMeta], config: Config, st: Option<FakeStore>) -> Rig<'f> {
    let mut fa = FrameAllocator::new(meta, 0, &ram()).unwrap();
    fa.reserve_range(0, KERNEL).unwrap();
    let xen = FakeXen::new(0..FRAMES, 1 << 20);
    let clock = FakeClock::default();
    let config = Config {
        kernel_pages: KERNEL,
        heap_pages: 64,
        page_table_pages: 8,
        max_pfn: FRAMES,
        use_store: st.is_some(),
        ..config
    };
    let rt = Runtime::<TestEnv>::new(
        config,
        xen,
        FakePages::default(),
        st,
        clock.clone(),
        fa,
        paging(),
    );
    Rig { rt, clock }
}

fn meta() -> Vec<FrameMeta> {
    vec![FrameMeta::ABSENT; FRAMES as usize]
}

impl Rig<'_> {
    fn store(&mut self) -> &mut FakeStore {
        self.rt.store_mut().unwrap()
    }

    /// Turns the loop until `until_ns`, jumping from deadline to deadline
    /// (at most `max` turns).
    fn run_until(&mut self, until_ns: u64) {
        for _ in 0..10_000 {
            let next = self.rt.turn();
            let now = self.clock.now_ns();
            if now >= until_ns {
                return;
            }
            self.clock.set(next.clamp(now + 1, until_ns));
        }
        panic!("the loop did not reach {until_ns} ns in 10000 turns");
    }

    /// Runs for `s` more seconds.
    fn run_s(&mut self, s: u64) {
        let until = self.clock.now_ns() + s * NS_PER_S;
        self.run_until(until);
    }

    fn populated(&self) -> u64 {
        self.rt.frames().counts().populated_pages()
    }

    fn status(&mut self, key: &str) -> Option<String> {
        self.store()
            .get(&alloc::format!("data/selfballoon/{key}"))
            .map(String::from)
    }

    fn check(&self) {
        self.rt.frames().check_invariants().unwrap();
        let xen = &self.rt.mem;
        assert!(xen.violations.is_empty(), "{:?}", xen.violations);
        // Pages of an extent Xen stopped inside stay backed but are
        // quarantined as ballooned by the guest (balloon::release).
        assert_eq!(
            (xen.backed.len() - xen.stranded.len()) as u64,
            self.populated(),
            "Xen and the guest disagree"
        );
    }
}

/// Neither controller (`noselfballooning noselfshrink`): no timer.
fn no_selfballoon() -> Config {
    Config {
        selfballooning: Some(false),
        selfshrinking: Some(false),
        ..Config::default()
    }
}

#[test]
fn follows_memory_target_from_a_watch_event() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    assert_eq!(r.populated(), FRAMES);
    r.store()
        .dom0_write("memory/target", &(16 * 1024).to_string());
    r.run_s(1);
    assert_eq!(r.populated(), 16 * MIB);
    assert_eq!(r.rt.counters().target_missed_events, 0);
    assert!(r.rt.counters().target_events >= 1);
    r.check();
}

#[test]
fn a_lost_event_is_made_up_by_the_re_read() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    r.store().drop_events = true;
    r.store()
        .dom0_write("memory/target", &(16 * 1024).to_string());
    r.run_s(5);
    assert_eq!(r.populated(), FRAMES, "nothing said so yet");
    r.run_s(6);
    assert_eq!(r.populated(), 16 * MIB);
    assert_eq!(r.rt.counters().target_missed_events, 1);
    assert_eq!(r.status("target_missed_events").as_deref(), Some("1"));
    r.check();
}

#[test]
fn duplicated_and_late_events_are_harmless() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    // Duplicates: the same change announced three times.
    r.store()
        .dom0_write("memory/target", &(20 * 1024).to_string());
    r.store().fire("memory/target");
    r.store().fire("memory/target");
    r.run_s(1);
    assert_eq!(r.populated(), 20 * MIB);
    let released = r.rt.balloon().counters().released_pages;
    // Late: a change the re-read found first, then its event arrives.
    r.store().drop_events = true;
    r.store()
        .dom0_write("memory/target", &(12 * 1024).to_string());
    r.run_s(11);
    assert_eq!(r.populated(), 12 * MIB);
    assert_eq!(r.rt.counters().target_missed_events, 1);
    r.store().drop_events = false;
    r.store().fire("memory/target");
    r.run_s(1);
    assert_eq!(r.populated(), 12 * MIB);
    assert_eq!(r.rt.counters().target_missed_events, 1);
    assert_eq!(
        r.rt.balloon().counters().released_pages,
        released + 8 * MIB,
        "each change moved the balloon once"
    );
    r.check();
}

#[test]
fn store_errors_leave_state_unchanged() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    let path = alloc::format!("{HOME}/memory/target");
    r.store().fail_read = Some((path, XsError::Remote(Errno::EACCES)));
    r.store()
        .dom0_write("memory/target", &(16 * 1024).to_string());
    r.run_s(12);
    assert_eq!(r.populated(), FRAMES);
    assert_eq!(r.rt.balloon().upper_pages(), FRAMES);
    // The store heals; the re-read applies the value.
    r.store().fail_read = None;
    r.run_s(11);
    assert_eq!(r.populated(), 16 * MIB);
    // Garbage from dom0 is rejected and changes nothing.
    for bad in [
        "",
        "-5",
        "12k",
        "99999999999999999999999",
        "16384\n",
        "\u{1b}[2J",
    ] {
        r.store().dom0_write("memory/target", bad);
        r.run_s(1);
        assert_eq!(r.populated(), 16 * MIB, "after {bad:?}");
        assert_eq!(r.rt.balloon().upper_pages(), 16 * MIB);
    }
    r.check();
}

#[test]
fn a_vanished_store_stops_nothing_else() {
    let mut m = meta();
    let config = Config {
        workload: Some(String::from("alloc:2M,touch:seq,hold:1s,free:all,repeat")),
        ..no_selfballoon()
    };
    let mut r = rig(&mut m, config, Some(store()));
    r.store()
        .dom0_write("memory/target", &(16 * 1024).to_string());
    r.run_s(2);
    r.store().vanished = true;
    r.run_s(30);
    assert_eq!(r.populated(), 16 * MIB, "the balloon kept its target");
    assert!(r.rt.counters().publish_errors > 0);
    let verified = r.rt.engine().unwrap().status().verified_pages;
    assert!(verified > 0, "the workload kept running");
    assert_eq!(r.rt.engine().unwrap().status().mismatches, 0);
    // It comes back with a new target that no event announces.
    r.store().vanished = false;
    r.store().drop_events = true;
    r.store()
        .dom0_write("memory/target", &(24 * 1024).to_string());
    r.run_s(11);
    assert_eq!(r.populated(), 24 * MIB);
    r.check();
}

#[test]
fn a_target_change_in_the_middle_of_a_step_wins() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    // Xen does one extent and stops: the step ends short of 8 MiB.
    r.rt.mem.script.push_back(Inject::Partial(1));
    r.store()
        .dom0_write("memory/target", &(8 * 1024).to_string());
    r.rt.turn();
    let mid = r.populated();
    assert!(mid < FRAMES && mid > 8 * MIB, "stopped part way: {mid}");
    // Before the next step, the toolstack changes its mind.
    r.store()
        .dom0_write("memory/target", &(28 * 1024).to_string());
    r.run_s(2);
    assert_eq!(r.populated(), 28 * MIB);
    r.check();
}

fn selfballoon_2011() -> Config {
    Config {
        selfballooning: Some(true),
        mode: Some(Mode::Seed2011),
        ..Config::default()
    }
}

#[test]
fn selfballooning_off_takes_effect_at_once() {
    let mut m = meta();
    let mut r = rig(&mut m, selfballoon_2011(), Some(store()));
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "1");
    r.run_s(60);
    let low = r.populated();
    assert!(low < FRAMES / 2, "self-ballooned down: {low}");
    // A long interval, then off: the guest goes back to the toolstack's
    // target now, not at a tick (there will be none).
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "2011");
    r.run_s(1);
    r.store()
        .dom0_write("memory/selfballoon/selfballooning", "0");
    r.run_s(1);
    assert_eq!(r.populated(), FRAMES);
    assert_eq!(r.rt.balloon().requested_target_pages(), None);
    r.check();
}

#[test]
fn a_new_toolstack_target_takes_effect_while_selfballooning() {
    let mut m = meta();
    let mut r = rig(&mut m, selfballoon_2011(), Some(store()));
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "1");
    r.run_s(60);
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "2011");
    r.run_s(1);
    let ticks = r.rt.controller().ticks();
    // `xl mem-set 24m`: followed now, as Linux's balloon watch does; the
    // controller's next tick (2011 s away) decides again.
    r.store()
        .dom0_write("memory/target", &(24 * 1024).to_string());
    r.run_s(1);
    assert_eq!(r.populated(), 24 * MIB);
    assert_eq!(r.rt.controller().ticks(), ticks);
    r.check();
}

#[test]
fn a_mode_change_decides_at_once() {
    let mut m = meta();
    let config = Config {
        selfballooning: Some(true),
        mode: Some(Mode::Linux),
        ..Config::default()
    };
    let mut r = rig(&mut m, config, Some(store()));
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "2011");
    r.run_s(1);
    let ticks = r.rt.controller().ticks();
    r.store().dom0_write("memory/selfballoon/mode", "2011");
    r.rt.turn();
    assert_eq!(r.rt.controller().ticks(), ticks + 1);
    assert_eq!(r.rt.controller().tunables().mode, Mode::Seed2011);
    // A bad mode is rejected and published, and changes nothing.
    r.store().dom0_write("memory/selfballoon/mode", "fastest");
    r.run_s(3);
    assert_eq!(r.rt.controller().ticks(), ticks + 1);
    assert_eq!(r.rt.controller().tunables().mode, Mode::Seed2011);
    assert_eq!(r.status("last_rejection_key").as_deref(), Some("mode"));
    r.check();
}

#[test]
fn a_tunable_change_between_ticks_rearms_the_timer() {
    let mut m = meta();
    let mut r = rig(&mut m, selfballoon_2011(), Some(store()));
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "100");
    r.run_s(1);
    let t0 = r.rt.controller().ticks();
    r.run_s(50);
    assert_eq!(r.rt.controller().ticks(), t0, "no tick before 100 s");
    r.store()
        .dom0_write("memory/selfballoon/selfballoon_interval", "2");
    r.run_s(3);
    assert!(
        r.rt.controller().ticks() > t0,
        "the new interval counts from now"
    );
    // The seed's timer runs while either controller is on.
    r.store()
        .dom0_write("memory/selfballoon/selfballooning", "0");
    r.run_s(5);
    assert!(
        r.rt.controller().ticks() > t0 + 1,
        "self-shrinking still ticks"
    );
    r.store()
        .dom0_write("memory/selfballoon/frontswap_selfshrinking", "0");
    r.run_s(1);
    let t1 = r.rt.controller().ticks();
    r.run_s(20);
    assert_eq!(r.rt.controller().ticks(), t1, "stopped");
    r.store()
        .dom0_write("memory/selfballoon/selfballooning", "1");
    r.run_s(5);
    assert!(r.rt.controller().ticks() > t1, "started again");
    r.check();
}

#[test]
fn status_is_published_and_unchanged_values_cost_nothing() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(5);
    assert_eq!(
        r.status("current").as_deref(),
        Some((FRAMES * 4).to_string().as_str())
    );
    assert_eq!(r.store().get("control/feature-balloon"), Some("1"));
    let writes = r.store().writes;
    r.run_s(10);
    assert_eq!(r.store().writes, writes, "nothing changed, nothing written");
    // Writes to dom0's directory are never attempted.
    assert!(r
        .store()
        .nodes
        .keys()
        .filter(|k| k.contains("/memory/"))
        .all(|k| k.ends_with("static-max") || k.ends_with("target")));
}

#[test]
fn without_xenstore_the_loop_still_balloons_and_ticks() {
    let mut m = meta();
    let mut r = rig(&mut m, selfballoon_2011(), None);
    r.run_s(120);
    assert!(
        r.populated() < FRAMES / 2,
        "self-ballooned: {}",
        r.populated()
    );
    r.check();
}

#[test]
fn workload_pages_live_in_the_pageable_region() {
    let mut m = meta();
    let config = Config {
        workload: Some(String::from("alloc:4M,touch:seq,hold:1s,free:all,repeat:3")),
        ..no_selfballoon()
    };
    let mut r = rig(&mut m, config, Some(store()));
    r.run_s(30);
    let s = r.rt.engine().unwrap().status();
    assert!(s.verified_pages >= 3 * 4 * MIB, "{s:?}");
    assert_eq!(s.mismatches, 0);
    assert_eq!(s.map_errors, 0);
    // Faulted in on first touch, through the region; nothing through the
    // direct map.
    assert!(
        r.rt.pager().stats().page_faults >= 1024,
        "{:?}",
        r.rt.pager().stats()
    );
    assert!(r.rt.pages.pages.is_empty());
    // Freed at the end of each pass: no page held, no frame mapped.
    r.run_s(5);
    assert_eq!(r.rt.pager().counts().allocated_pages, 0);
    assert_eq!(r.rt.mmu.mapped(), 0);
    assert_eq!(
        r.rt.frames().count_in(crate::mm::frame::FrameState::Paged),
        0
    );
    r.check();
}

#[test]
fn dom0_values_are_shown_sanitised() {
    let v = "\u{1b}[2Jrm -rf\n".repeat(100);
    let s = alloc::format!("{}", crate::parse::untrusted(&v));
    assert!(s.len() <= crate::parse::LOG_MAX_BYTES + 3);
    assert!(!s.chars().any(char::is_control));
}

/// The swap tier end to end on the fakes: a workload that committed more
/// than the toolstack allows pages out and keeps verifying; a target far
/// below what compression can reach stops at a published floor; when the
/// target goes back up, self-shrinking brings the pages back in the
/// seed's inertia/hysteresis shape.
#[test]
fn swap_follows_the_target_loses_nothing_and_shrinks_like_the_seed() {
    let mut m = meta();
    let config = Config {
        workload: Some(String::from(
            "alloc:24M,touch:seq,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,\
             touch:ws=20%,idle:1s,touch:ws=20%,idle:1s,touch:ws=20%,idle:1s",
        )),
        selfballooning: Some(false),
        mode: Some(Mode::Seed2011),
        ..Config::default()
    };
    let mut r = rig(&mut m, config, Some(store()));
    r.run_s(5);
    assert!(
        r.rt.pager().counts().resident_pages >= 6000,
        "{:?} {:?} {:?} {:?}",
        r.rt.pager().counts(),
        r.rt.pager().stats(),
        r.rt.engine().unwrap().status(),
        r.rt.frames().counts()
    );
    // 32 MiB guest, 24 MiB of mixed pages: mem-set to 20 MiB.
    let target_kib = 20 * 1024;
    r.store()
        .dom0_write("memory/target", &target_kib.to_string());
    r.run_s(30);
    let keys: Vec<String> = r.store().nodes.keys().cloned().collect();
    let current_kib: u64 = r
        .status("current")
        .unwrap_or_else(|| panic!("{keys:?} {:?}", r.rt.counters()))
        .parse()
        .unwrap();
    assert!(
        current_kib <= target_kib,
        "at the target: {current_kib} {:?} {:?} {:?} {:?}",
        r.rt.pager().stats(),
        r.rt.counters(),
        r.rt.balloon().status(r.rt.frames().counts()),
        r.rt.frames().counts()
    );
    let out: u64 = r.status("frontswap_pages").unwrap().parse().unwrap();
    assert!(out > 1000, "pages went to frontswap: {out}");
    assert_eq!(r.status("swap_backend").as_deref(), Some("zpool"));
    assert_eq!(r.status("swap_floor").as_deref(), Some("0"));
    let zf: u64 = r.status("zpool_frames").unwrap().parse().unwrap();
    assert!(zf > 0 && zf * 2 < out, "compressed: {zf} frames for {out}");
    let s = r.rt.engine().unwrap().status();
    assert_eq!((s.mismatches, s.map_errors), (0, 0));
    assert!(s.verified_pages > 6000);

    // Far lower: the floor is what compression can reach.
    r.store().dom0_write("memory/target", "4096");
    r.run_s(30);
    let floor: u64 = r.status("swap_floor").unwrap().parse().unwrap();
    let current_kib: u64 = r.status("current").unwrap().parse().unwrap();
    assert!(
        floor > 4096 && floor == current_kib,
        "floor {floor} at {current_kib}"
    );
    let s = r.rt.engine().unwrap().status();
    assert_eq!((s.mismatches, s.map_errors), (0, 0));

    // Back up: nothing pushes pages out, self-shrinking brings them back,
    // 1/20 per tick (hysteresis 20).
    r.store()
        .dom0_write("memory/target", &(FRAMES * 4).to_string());
    r.run_s(1);
    let mut samples = Vec::new();
    for _ in 0..12 {
        r.run_s(5);
        samples.push(r.rt.swap().curr_pages());
    }
    // The inertia counted down while the count stood still at the floor
    // (the seed counts ticks since frontswap last grew), so the seed
    // (2011) shrinks on every tick now, to cur - cur/20.
    assert!(samples[0] > 1000, "{samples:?}");
    for w in samples.windows(2) {
        assert_eq!(w[1], w[0] - w[0] / 20, "hysteresis 20: {samples:?}");
    }
    let s = r.rt.engine().unwrap().status();
    assert_eq!((s.mismatches, s.map_errors), (0, 0));
    r.check();
}

/// A dom0 writing garbage as fast as it can: every value is rejected and
/// leaves the target as it was, and the log says at most a burst of them
/// per window (the rest are counted, not logged).
#[test]
fn a_flood_of_rejected_writes_is_logged_within_the_rate_limit() {
    let mut m = meta();
    let mut r = rig(&mut m, no_selfballoon(), Some(store()));
    r.run_s(1);
    r.store()
        .dom0_write("memory/target", &(16 * 1024).to_string());
    r.run_s(1);
    for i in 0..40u32 {
        r.store()
            .dom0_write("memory/target", &alloc::format!("-{i}"));
        r.store()
            .dom0_write("memory/workload", &alloc::format!("alloc:{i}X"));
        r.store().dom0_write(
            "memory/selfballoon/selfballoon_interval",
            &alloc::format!("{i}x"),
        );
        r.rt.turn();
    }
    assert_eq!(r.populated(), 16 * MIB, "the last good target holds");
    let limit = u64::from(super::ratelimit::BURST);
    assert!(
        r.rt.rejections_not_logged() == 3 * 40 - limit,
        "{} not logged",
        r.rt.rejections_not_logged()
    );
    r.check();
}

#[path = "cleancache_tests.rs"]
mod cleancache;
