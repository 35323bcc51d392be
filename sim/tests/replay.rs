//! The simulator against hand-computed small traces, the controller's
//! golden tests, and determinism.

use sim::model::{Model, PAGES_PER_GIB};
use sim::policy;
use sim::run::{self, Outcome, Record};
use sim::score::{self, Row};
use sim::synthetic::{self, Shape, Synthetic};
use sim::trace::{self, Trace};

const HEADER: &str = "vm,timestamp_s,mem_provisioned_kb,mem_usage_kb\n";

fn trace(rows: &str) -> Trace {
    trace::read(format!("{HEADER}{rows}").as_bytes(), 900).unwrap()
}

/// Balloon so fast that ramps vanish from the integrals.
fn instant() -> Model {
    Model {
        balloon_pages_per_s: 1 << 45,
        floor_pages: 0,
        ..Model::default()
    }
}

fn run_one(t: &Trace, m: &Model, p: &str) -> Outcome {
    let spec = policy::parse(p, m.tick_s).unwrap();
    let record = Record {
        trace_vms: vec![0],
        ..Record::default()
    };
    run::run(t, m, &spec, &record, &|_| {})
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// A 1 GiB VM (262144 pages, 1024 of them the kernel's): 100 MiB of
/// usage for 300 s, then 300 MiB for 300 s; 120 ticks of 5 s.
const TWO_STEPS: &str = "1,0,1048576,102400\n1,300,1048576,307200\n";

#[test]
fn static_and_oracle_integrals() {
    let t = trace(TWO_STEPS);
    let m = instant();
    let s = run_one(&t, &m, "static").tally;
    assert!(close(s.held_ps, 262_144.0 * 600.0));
    // needed = usage + kernel: 25600 + 1024, then 76800 + 1024.
    let demand = 26_624.0 * 300.0 + 77_824.0 * 300.0;
    assert!(close(s.demand_ps, demand));
    assert_eq!(s.short_ps, 0.0);
    assert_eq!((s.vms, s.vm_s), (1, 600.0));
    let o = run_one(&t, &m, "oracle").tally;
    assert!(close(o.held_ps, demand));
    assert_eq!(o.short_ps, 0.0);
    assert!(o.episodes.is_empty());
    // Boot at 262144, down to 26624, up to 77824.
    assert_eq!(o.moved_pages, (262_144 - 26_624) + (77_824 - 26_624));
    assert_eq!(o.reversals, 1);
}

#[test]
fn seed_policy_with_one_tick_of_lag() {
    // 2011 with downhysteresis 1 goes straight to its goal (committed +
    // current - totalram = usage + kernel): 26624 from the first tick.
    // The rise at t = 300 (tick 60) is seen one tick late: tick 60 holds
    // 26624 against 77824 (shortfall 51200 pages for 5 s), tick 61 grows.
    let t = trace(TWO_STEPS);
    let m = instant();
    let o = run_one(&t, &m, "2011:selfballoon_downhysteresis=1");
    let x = &o.tally;
    let held = 26_624.0 * 5.0 * 61.0 + 77_824.0 * 5.0 * 59.0;
    assert!(close(x.held_ps, held), "{} vs {held}", x.held_ps);
    assert!(close(x.short_ps, 51_200.0 * 5.0), "{}", x.short_ps);
    assert_eq!(x.episodes, vec![1]);
    assert_eq!(x.spikes, vec![1]);
    let ticks = &o.ticks[0];
    assert_eq!(ticks.len(), 120);
    assert_eq!(ticks[60].held_end_pages, 26_624);
    assert_eq!(ticks[61].held_end_pages, 77_824);
    // 51200 short pages need 76800 in the 3:1 tier (capacity 25% of RAM
    // = 65536): that tick is an OOM.
    assert_eq!(x.oom_events, 1);
    assert_eq!(x.pageouts, 65_536);
    // The tier holds 65536 pages; cold is half of 77824 = 38912, so
    // 26624 hot pages are in it, touched once a minute: /12 per tick.
    assert!(close(x.pageins, 26_624.0 / 12.0));
}

/// The 2011 golden test of `selfballoon::selfballoon::policy`: a 512 MiB
/// guest (131072 pages, 4096 of them the kernel's), committed 20000:
/// 131072 -> 117700 -> 106000.
#[test]
fn seed_policy_matches_the_controller_golden_test() {
    let t = trace("g,0,524288,80000\n");
    let m = Model {
        kernel_pages: 4096,
        ..instant()
    };
    let o = run_one(&t, &m, "2011");
    let held: Vec<u64> = o.ticks[0].iter().map(|t| t.held_end_pages).collect();
    assert_eq!(&held[..2], &[117_700, 106_000]);
    assert_eq!(o.ticks[0][0].held_start_pages, 131_072);
}

/// And the linux one: totalreserve 1000, the same guest: 119393.
#[test]
fn linux_policy_matches_the_controller_golden_test() {
    let t = trace("g,0,524288,80000\n");
    let m = Model {
        kernel_pages: 4096,
        totalreserve_pages: 1000,
        ..instant()
    };
    let o = run_one(&t, &m, "linux");
    assert_eq!(o.ticks[0][0].held_end_pages, 119_393);
}

#[test]
fn ramp_integrals_follow_the_balloon_speed() {
    // 1 GiB/s: the first descent of 262144 - 26624 = 235520 pages takes
    // 235520 / 262144 s; held over that ramp is a trapezoid.
    let t = trace("1,0,1048576,102400\n");
    let m = Model {
        balloon_pages_per_s: PAGES_PER_GIB,
        ..instant()
    };
    let o = run_one(&t, &m, "2011:selfballoon_downhysteresis=1");
    let ramp = 235_520.0 / 262_144.0;
    let first = (262_144.0 + 26_624.0) / 2.0 * ramp + 26_624.0 * (5.0 - ramp);
    let held = first + 26_624.0 * 5.0 * 59.0;
    assert!(close(o.tally.held_ps, held), "{}", o.tally.held_ps);
}

fn scorecard(seed: u64) -> String {
    let t = synthetic::generate(&Synthetic {
        shape: Shape::Bursts,
        vms: 3,
        ram_kib: 1 << 20,
        duration_s: 4 * 3600,
        sample_s: 5,
        seed,
    });
    let m = Model::default();
    let pols: Vec<_> = ["static", "oracle", "2011", "linux"]
        .iter()
        .map(|p| policy::parse(p, 5).unwrap())
        .collect();
    let outs = sim::simulate(&t, &m, &pols, &Record::default(), &|_| {});
    let h = |i: usize| outs[i].tally.held_ps / PAGES_PER_GIB as f64 / 3600.0;
    let rows: Vec<Row> = pols
        .iter()
        .zip(&outs)
        .map(|(p, o)| Row::new(&p.label, &o.tally, h(0), h(1), 1, 1))
        .collect();
    score::csv(&rows)
}

#[test]
fn same_seed_same_scorecard() {
    let a = scorecard(42);
    assert_eq!(a, scorecard(42));
    assert_ne!(a, scorecard(43));
    assert_eq!(a.lines().count(), 5);
}

/// On a step, adaptive grows within a tick of seeing the rise and comes
/// back down slowly after the fall: the fast average decays, the slow
/// one and the remembered rise hold some of it for a while.
#[test]
fn adaptive_fast_up_slow_down_on_a_step() {
    let t = synthetic::generate(&Synthetic {
        shape: Shape::Step,
        vms: 1,
        ram_kib: 1 << 20,
        duration_s: 3 * 3600,
        sample_s: 5,
        seed: 1,
    });
    let m = Model::default();
    let o = run_one(&t, &m, "adaptive");
    let ticks = &o.ticks[0];
    let rise = 720; // the step up at 1 h
    assert!(ticks[rise].needed_pages > ticks[rise - 1].needed_pages);
    // One tick late, then covered.
    assert!(ticks[rise].held_end_pages < ticks[rise].needed_pages);
    assert!(ticks[rise + 1].held_end_pages >= ticks[rise + 1].needed_pages);
    // After the fall at 2 h: coming down, but slowly.
    let fall = 1440;
    let before = ticks[fall - 1].held_end_pages;
    let later = &ticks[fall + 120];
    let end = ticks[ticks.len() - 1];
    assert!(later.held_end_pages > later.needed_pages);
    assert!(later.held_end_pages < before);
    assert!(end.held_end_pages < later.held_end_pages);
    assert!(end.held_end_pages > end.needed_pages);
}
