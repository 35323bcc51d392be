//! The kernel command line (`src/cmdline.rs`), which the toolstack's
//! `extra=` supplies, and the workload spec it may carry.
//!
//! Properties: reports are capped in number and length; `workload=` is
//! bounded; every word is accounted for (applied, reported or counted as
//! dropped); the settings, rendered back into a command line, parse to
//! the same settings with nothing reported.

use log::LevelFilter;
use selfballoon::cmdline::{
    parse, CrashKind, KernelArgs, MAX_REPORTED_WORDS, MAX_REPORTED_WORD_BYTES, MAX_WORKLOAD_BYTES,
};

fn level(l: LevelFilter) -> &'static str {
    match l {
        LevelFilter::Off => "off",
        LevelFilter::Error => "error",
        LevelFilter::Warn => "warn",
        LevelFilter::Info => "info",
        LevelFilter::Debug => "debug",
        LevelFilter::Trace => "trace",
    }
}

/// A command line that asks for exactly `a`.
pub fn render(a: &KernelArgs) -> String {
    let mut w: Vec<String> = Vec::new();
    if a.selftest {
        w.push("selftest".into());
    }
    if let Some(l) = a.loglevel {
        w.push(format!("loglevel={}", level(l)));
    }
    if let Some(l) = a.e9log {
        w.push(format!("e9log={}", level(l)));
    }
    match a.selfballooning {
        Some(true) => w.push("selfballooning".into()),
        Some(false) => w.push("noselfballooning".into()),
        None => {}
    }
    match a.selfshrink {
        Some(true) => w.push("selfshrink".into()),
        Some(false) => w.push("noselfshrink".into()),
        None => {}
    }
    if let Some(m) = a.selfballoon_mode {
        w.push(format!("selfballoon_mode={}", m.name()));
    }
    if let Some(s) = &a.workload {
        w.push(format!("workload={s}"));
    }
    if let Some(s) = a.scrub {
        w.push(format!("scrub={}", u8::from(s)));
    }
    if let Some(n) = a.balloon_floor_mb {
        w.push(format!("balloon_floor_mb={n}"));
    }
    if let Some(c) = a.crash {
        let name = match c {
            CrashKind::PageFault => "pf",
            CrashKind::InvalidOpcode => "ud",
            CrashKind::Panic => "panic",
            CrashKind::Hang => "hang",
            CrashKind::StackOverflow => "stack",
            CrashKind::FailCheck => "fail",
        };
        w.push(format!("crash={name}"));
    }
    w.join(" ")
}

pub fn check(data: &[u8]) {
    let line = crate::text(data);
    let p = parse(&line);
    assert!(p.unknown.len() <= MAX_REPORTED_WORDS);
    assert!(p.errors.len() <= MAX_REPORTED_WORDS);
    for w in p.unknown.iter().chain(p.errors.iter().map(|e| &e.word)) {
        assert!(w.len() <= MAX_REPORTED_WORD_BYTES);
        assert!(!w.is_empty() && !w.bytes().any(|b| b.is_ascii_whitespace()));
    }
    let words = line.split_ascii_whitespace().count();
    assert!(p.unknown.len() + p.errors.len() + p.dropped_reports <= words);
    if p.dropped_reports > 0 {
        assert_eq!(p.unknown.len().max(p.errors.len()), MAX_REPORTED_WORDS);
    }
    if let Some(w) = &p.args.workload {
        assert!(!w.is_empty() && w.len() <= MAX_WORKLOAD_BYTES);
        crate::workload::check_spec(w);
    }
    if let Some(n) = p.args.balloon_floor_mb {
        assert_eq!(p.args.balloon_floor_pages(), Some(n.saturating_mul(256)));
    }
    let again = parse(&render(&p.args));
    assert_eq!(again.args, p.args, "render/parse round trip");
    assert!(again.unknown.is_empty() && again.errors.is_empty());
}
