//! The workload grammar (`src/workload/spec.rs`), as given on the command
//! line or in a xenstore key.
//!
//! Properties: an accepted spec has 1..=`MAX_PHASES` phases, sizes and
//! durations within their limits, never frees more than is reserved in
//! any pass the engine runs (the first, and the later ones from
//! `repeat@from`), and
//! rendered in canonical form parses to the same spec; an error names a
//! phase that exists.

use selfballoon::workload::spec::{
    CacheOp, FreeAmount, Phase, Repeat, TouchPattern, MAX_DURATION_NS, MAX_PHASES, MAX_SIZE_PAGES,
    MAX_SPEC_LEN,
};
use selfballoon::workload::{ParseErrorKind, Spec};

/// The canonical text of a spec (sizes in K, durations in ms).
pub fn render(spec: &Spec) -> String {
    let mut parts: Vec<String> = spec
        .phases
        .iter()
        .map(|p| match *p {
            Phase::Alloc { pages } => format!("alloc:{}K", pages * 4),
            Phase::Touch(TouchPattern::Sequential) => "touch:seq".into(),
            Phase::Touch(TouchPattern::WorkingSet { percent }) => format!("touch:ws={percent}%"),
            Phase::Hold { duration_ns } => format!("hold:{}ms", duration_ns / 1_000_000),
            Phase::Free(FreeAmount::All) => "free:all".into(),
            Phase::Free(FreeAmount::Pages(n)) => format!("free:{}K", n * 4),
            Phase::Idle { duration_ns } => format!("idle:{}ms", duration_ns / 1_000_000),
            Phase::Content(kind) => format!("content:{}", kind.name()),
            Phase::Cache(CacheOp::Build { pages }) => format!("cache:{}K", pages * 4),
            Phase::Cache(CacheOp::Read) => "cache:read".into(),
            Phase::Cache(CacheOp::Free) => "cache:free".into(),
        })
        .collect();
    let from = match spec.repeat_from {
        0 => String::new(),
        f => format!("@{f}"),
    };
    match spec.repeat {
        Repeat::Once => {}
        Repeat::Forever => parts.push(format!("repeat{from}")),
        Repeat::Times(n) => parts.push(format!("repeat:{n}{from}")),
    }
    parts.join(",")
}

pub fn check(data: &[u8]) {
    let s = crate::text(data);
    check_spec(&s);
}

/// The checks on one spec string (also used by the command-line target).
pub fn check_spec(s: &str) {
    match Spec::parse(s) {
        Ok(spec) => {
            assert!(!spec.phases.is_empty() && spec.phases.len() <= MAX_PHASES);
            assert!(spec.repeat_from < spec.phases.len());
            // Every pass the engine runs (the first from phase 0, later
            // ones from `repeat_from`), up to PASSES of them, never frees
            // more than is reserved.
            const PASSES: u32 = 200;
            let passes = match spec.repeat {
                Repeat::Once => 1,
                Repeat::Times(n) => n.min(PASSES),
                Repeat::Forever => PASSES,
            };
            let mut reserved: u64 = 0;
            for pass in 0..passes {
                let skip = if pass == 0 { 0 } else { spec.repeat_from };
                for p in &spec.phases[skip..] {
                    if let Phase::Alloc { pages } = *p {
                        reserved = reserved.saturating_add(pages);
                    } else if let Phase::Free(FreeAmount::Pages(n)) = *p {
                        assert!(n <= reserved, "pass {pass} frees {n} of {reserved}");
                        reserved -= n;
                    } else if let Phase::Free(FreeAmount::All) = *p {
                        reserved = 0;
                    }
                }
            }
            for p in &spec.phases {
                match *p {
                    Phase::Alloc { pages } => assert!(pages > 0 && pages <= MAX_SIZE_PAGES),
                    Phase::Free(FreeAmount::Pages(n)) => assert!(n > 0 && n <= MAX_SIZE_PAGES),
                    Phase::Free(FreeAmount::All) | Phase::Content(_) => {}
                    Phase::Cache(CacheOp::Build { pages }) => {
                        assert!(pages > 0 && pages <= MAX_SIZE_PAGES)
                    }
                    Phase::Cache(CacheOp::Read | CacheOp::Free) => {}
                    Phase::Hold { duration_ns } | Phase::Idle { duration_ns } => {
                        assert!(duration_ns > 0 && duration_ns <= MAX_DURATION_NS);
                        assert_eq!(duration_ns % 1_000_000, 0);
                    }
                    Phase::Touch(TouchPattern::WorkingSet { percent }) => {
                        assert!((1..=100).contains(&percent));
                    }
                    Phase::Touch(TouchPattern::Sequential) => {}
                }
            }
            if let Repeat::Times(n) = spec.repeat {
                assert!(n > 0);
            }
            let text = render(&spec);
            if text.len() <= MAX_SPEC_LEN {
                assert_eq!(Spec::parse(&text), Ok(spec), "{text:?}");
            }
        }
        Err(e) => {
            let items = s.split(',').count();
            assert!(
                e.phase < items.max(1),
                "error in phase {} of {items}",
                e.phase
            );
            if s.len() > MAX_SPEC_LEN {
                assert_eq!(e.kind, ParseErrorKind::TooLong);
            }
        }
    }
}
