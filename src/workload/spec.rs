//! The workload program: a comma-separated list of phases, given on the
//! command line (`workload=...`) or in a xenstore key.
//!
//! ```text
//! spec    = phase *("," phase)
//! phase   = "alloc:" size          reserve size more (committed, not yet resident)
//!         | "touch:seq"            fault in / rewrite every reserved page, in order
//!         | "touch:ws=" pct "%"    same for a pseudo-random pct% of them (1..=100),
//!                                  a fresh selection on each pass
//!         | "hold:" dur            keep everything; one verification sweep of the
//!                                  resident pages, then wait out dur
//!         | "free:" size           verify and release the most recently reserved
//!         | "free:all"             size (LIFO), or everything
//!         | "idle:" dur            wait dur
//!         | "content:" kind        what later alloc: and cache: phases' pages hold:
//!                                  zero | random | text | mixed (the default)
//!         | "cache:" size          build size more cache pages: clean pages whose
//!                                  content is a function of their identity, each
//!                                  costing CACHE_ROUNDS_PER_PAGE hash rounds to
//!                                  compute; not committed, so the pager may drop
//!                                  them into cleancache (ephemeral tmem)
//!         | "cache:read"           re-read every cache page: a hit is verified, a
//!                                  page cleancache lost is recomputed (counted)
//!                                  and verified
//!         | "cache:free"           release every cache page
//!         | "repeat" [":" count] ["@" from]
//!                                  only as the last phase: run the list again,
//!                                  forever, or count times in all (count >= 1);
//!                                  with "@" from, passes after the first start
//!                                  at phase index `from` (0-based), so a program
//!                                  can allocate once and then loop
//! size    = digits ("K" | "M" | "G")   KiB (a multiple of 4), MiB, GiB; > 0
//! dur     = digits ("ms" | "s" | "m")  milliseconds, seconds, minutes
//! digits  = 1*("0".."9")
//! ```
//!
//! No spaces; names and units are case-sensitive. Example:
//! `alloc:200M,touch:seq,hold:30s,free:200M,idle:60s,repeat`.
//!
//! The parser also replays the reservation balance of one pass and refuses
//! a `free:` of more than is reserved at that point (later passes start
//! with at least as much reserved, so one pass is enough to check).

use alloc::vec::Vec;
use core::fmt;

use crate::mm::PAGE_SIZE;
pub use crate::swap::content::ContentKind;

/// Longest accepted spec, bytes.
pub const MAX_SPEC_LEN: usize = 1024;
/// Most phases in a spec.
pub const MAX_PHASES: usize = 64;
/// Largest single size, pages (1 TiB).
pub const MAX_SIZE_PAGES: u64 = 1 << 28;
/// Longest single duration, ns (7 days).
pub const MAX_DURATION_NS: u64 = 7 * 24 * 3600 * 1_000_000_000;

/// Which pages a `touch:` phase touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchPattern {
    /// All reserved pages, in order.
    Sequential,
    /// A pseudo-random `percent`% of the reserved pages.
    WorkingSet {
        /// 1..=100.
        percent: u8,
    },
}

/// How much to free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeAmount {
    /// This many pages (the most recently reserved ones).
    Pages(u64),
    /// Everything reserved.
    All,
}

/// What a `cache:` phase does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// Build this many more cache pages (`cache:SIZE`).
    Build {
        /// Pages to build.
        pages: u64,
    },
    /// Re-read every cache page, recomputing the lost ones
    /// (`cache:read`).
    Read,
    /// Release every cache page (`cache:free`).
    Free,
}

/// One phase of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reserve this many more pages.
    Alloc {
        /// Pages to reserve.
        pages: u64,
    },
    /// Touch reserved pages.
    Touch(TouchPattern),
    /// Verify once, then keep everything for this long.
    Hold {
        /// Duration, ns.
        duration_ns: u64,
    },
    /// Release pages.
    Free(FreeAmount),
    /// Do nothing for this long.
    Idle {
        /// Duration, ns.
        duration_ns: u64,
    },
    /// Pages reserved from now on hold this kind of content.
    Content(ContentKind),
    /// Cache pages: build, re-read, free.
    Cache(CacheOp),
}

impl Phase {
    /// A short name for status.
    pub const fn name(&self) -> &'static str {
        match self {
            Phase::Alloc { .. } => "alloc",
            Phase::Touch(TouchPattern::Sequential) => "touch-seq",
            Phase::Touch(TouchPattern::WorkingSet { .. }) => "touch-ws",
            Phase::Hold { .. } => "hold",
            Phase::Free(_) => "free",
            Phase::Idle { .. } => "idle",
            Phase::Content(_) => "content",
            Phase::Cache(CacheOp::Build { .. }) => "cache-build",
            Phase::Cache(CacheOp::Read) => "cache-read",
            Phase::Cache(CacheOp::Free) => "cache-free",
        }
    }
}

/// How often the program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Once (no `repeat`).
    Once,
    /// This many passes in all (`repeat:N`).
    Times(u32),
    /// Forever (`repeat`).
    Forever,
}

/// A parsed, checked program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The phases, in order (at least one).
    pub phases: Vec<Phase>,
    /// Repetition.
    pub repeat: Repeat,
    /// Where passes after the first start (`repeat@from`; 0 without).
    pub repeat_from: usize,
}

/// What is wrong with a spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The spec (or a phase) is empty.
    Empty,
    /// Longer than [`MAX_SPEC_LEN`].
    TooLong,
    /// More than [`MAX_PHASES`] phases.
    TooManyPhases,
    /// Not one of the phase names.
    UnknownPhase,
    /// The phase needs an argument (`alloc:`, `hold:`...) or takes none.
    BadArgument,
    /// A number that is not decimal digits.
    BadNumber,
    /// A missing or unknown unit.
    BadUnit,
    /// A size, duration, count or percentage of 0.
    Zero,
    /// Too large (sizes above 1 TiB, durations above 7 days, percentages
    /// above 100, counts above u32).
    OutOfRange,
    /// A KiB size that is not a whole number of pages.
    NotPageMultiple,
    /// `repeat` somewhere other than last.
    RepeatNotLast,
    /// A `free:` of more than is reserved at that point.
    FreeExceedsReserved,
    /// Only a `repeat`, no phases.
    NoPhases,
}

impl ParseErrorKind {
    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            ParseErrorKind::Empty => "empty",
            ParseErrorKind::TooLong => "spec too long",
            ParseErrorKind::TooManyPhases => "too many phases",
            ParseErrorKind::UnknownPhase => "unknown phase",
            ParseErrorKind::BadArgument => "bad or missing argument",
            ParseErrorKind::BadNumber => "not a decimal number",
            ParseErrorKind::BadUnit => "missing or unknown unit",
            ParseErrorKind::Zero => "zero",
            ParseErrorKind::OutOfRange => "out of range",
            ParseErrorKind::NotPageMultiple => "not a multiple of 4K",
            ParseErrorKind::RepeatNotLast => "repeat must be last",
            ParseErrorKind::FreeExceedsReserved => "free exceeds what is reserved",
            ParseErrorKind::NoPhases => "no phases",
        }
    }
}

/// A parse error: what, and in which phase (0-based; the spec as a whole
/// for `Empty`/`TooLong`/`TooManyPhases`/`NoPhases` reports 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Index of the offending phase.
    pub phase: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase {}: {}", self.phase, self.kind.describe())
    }
}

fn parse_digits(s: &str) -> Result<u64, ParseErrorKind> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseErrorKind::BadNumber);
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(b - b'0')))
            .ok_or(ParseErrorKind::OutOfRange)
    })
}

/// Splits "123M" into (123, "M").
fn split_unit(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn parse_size_pages(s: &str) -> Result<u64, ParseErrorKind> {
    let (num, unit) = split_unit(s);
    let n = parse_digits(num)?;
    let kib_per_unit: u64 = match unit {
        "K" => 1,
        "M" => 1024,
        "G" => 1024 * 1024,
        _ => return Err(ParseErrorKind::BadUnit),
    };
    if n == 0 {
        return Err(ParseErrorKind::Zero);
    }
    let kib = n
        .checked_mul(kib_per_unit)
        .ok_or(ParseErrorKind::OutOfRange)?;
    let kib_per_page = PAGE_SIZE / 1024;
    if kib % kib_per_page != 0 {
        return Err(ParseErrorKind::NotPageMultiple);
    }
    let pages = kib / kib_per_page;
    if pages > MAX_SIZE_PAGES {
        return Err(ParseErrorKind::OutOfRange);
    }
    Ok(pages)
}

fn parse_duration_ns(s: &str) -> Result<u64, ParseErrorKind> {
    let (num, unit) = split_unit(s);
    let n = parse_digits(num)?;
    let ns_per_unit: u64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(ParseErrorKind::BadUnit),
    };
    if n == 0 {
        return Err(ParseErrorKind::Zero);
    }
    match n.checked_mul(ns_per_unit) {
        Some(ns) if ns <= MAX_DURATION_NS => Ok(ns),
        _ => Err(ParseErrorKind::OutOfRange),
    }
}

fn parse_touch(arg: &str) -> Result<TouchPattern, ParseErrorKind> {
    if arg == "seq" {
        return Ok(TouchPattern::Sequential);
    }
    let pct = arg
        .strip_prefix("ws=")
        .and_then(|p| p.strip_suffix('%'))
        .ok_or(ParseErrorKind::BadArgument)?;
    match parse_digits(pct)? {
        0 => Err(ParseErrorKind::Zero),
        p @ 1..=100 => Ok(TouchPattern::WorkingSet { percent: p as u8 }),
        _ => Err(ParseErrorKind::OutOfRange),
    }
}

/// `repeat[@from]` with its optional `:count` (the `@from` may also
/// follow the count: `repeat:3@2`).
fn parse_repeat(from: Option<&str>, arg: Option<&str>) -> Result<Item, ParseErrorKind> {
    let (count, from) = match (from, arg.and_then(|a| a.split_once('@'))) {
        (Some(f), _) => (arg, Some(f)),
        (None, Some((c, f))) => (Some(c), Some(f)),
        (None, None) => (arg, None),
    };
    let repeat = match count {
        None => Repeat::Forever,
        Some(c) => match parse_digits(c)? {
            0 => return Err(ParseErrorKind::Zero),
            n => Repeat::Times(u32::try_from(n).map_err(|_| ParseErrorKind::OutOfRange)?),
        },
    };
    let from = match from {
        None => 0,
        Some(f) => usize::try_from(parse_digits(f)?).map_err(|_| ParseErrorKind::OutOfRange)?,
    };
    Ok(Item::Repeat(repeat, from))
}

enum Item {
    Phase(Phase),
    Repeat(Repeat, usize),
}

fn parse_item(s: &str) -> Result<Item, ParseErrorKind> {
    if s.is_empty() {
        return Err(ParseErrorKind::Empty);
    }
    let (name, arg) = match s.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    Ok(match name {
        "alloc" => Item::Phase(Phase::Alloc {
            pages: parse_size_pages(arg.ok_or(ParseErrorKind::BadArgument)?)?,
        }),
        "touch" => Item::Phase(Phase::Touch(parse_touch(
            arg.ok_or(ParseErrorKind::BadArgument)?,
        )?)),
        "hold" => Item::Phase(Phase::Hold {
            duration_ns: parse_duration_ns(arg.ok_or(ParseErrorKind::BadArgument)?)?,
        }),
        "idle" => Item::Phase(Phase::Idle {
            duration_ns: parse_duration_ns(arg.ok_or(ParseErrorKind::BadArgument)?)?,
        }),
        "free" => {
            let a = arg.ok_or(ParseErrorKind::BadArgument)?;
            Item::Phase(Phase::Free(if a == "all" {
                FreeAmount::All
            } else {
                FreeAmount::Pages(parse_size_pages(a)?)
            }))
        }
        "content" => Item::Phase(Phase::Content(
            ContentKind::from_name(arg.ok_or(ParseErrorKind::BadArgument)?)
                .ok_or(ParseErrorKind::BadArgument)?,
        )),
        "cache" => Item::Phase(Phase::Cache(
            match arg.ok_or(ParseErrorKind::BadArgument)? {
                "read" => CacheOp::Read,
                "free" => CacheOp::Free,
                size => CacheOp::Build {
                    pages: parse_size_pages(size)?,
                },
            },
        )),
        "repeat" => return parse_repeat(None, arg),
        _ if name.starts_with("repeat@") => return parse_repeat(Some(&name[7..]), arg),
        _ => return Err(ParseErrorKind::UnknownPhase),
    })
}

impl Spec {
    /// Parses and checks a spec (see the module documentation).
    pub fn parse(s: &str) -> Result<Spec, ParseError> {
        let whole = |kind| ParseError { phase: 0, kind };
        if s.is_empty() {
            return Err(whole(ParseErrorKind::Empty));
        }
        if s.len() > MAX_SPEC_LEN {
            return Err(whole(ParseErrorKind::TooLong));
        }
        let mut phases = Vec::new();
        let mut repeat = Repeat::Once;
        let mut repeat_from = 0;
        let mut reserved: u64 = 0;
        let mut seen_repeat = false;
        for (i, item) in s.split(',').enumerate() {
            let at = |kind| ParseError { phase: i, kind };
            if i >= MAX_PHASES {
                return Err(whole(ParseErrorKind::TooManyPhases));
            }
            if seen_repeat {
                return Err(at(ParseErrorKind::RepeatNotLast));
            }
            match parse_item(item).map_err(at)? {
                Item::Repeat(r, from) => {
                    if from > 0 && from >= phases.len() {
                        return Err(at(ParseErrorKind::OutOfRange));
                    }
                    repeat = r;
                    repeat_from = from;
                    seen_repeat = true;
                }
                Item::Phase(p) => {
                    match p {
                        Phase::Alloc { pages } => {
                            reserved = reserved.saturating_add(pages);
                        }
                        Phase::Free(FreeAmount::Pages(n)) => {
                            reserved = reserved
                                .checked_sub(n)
                                .ok_or_else(|| at(ParseErrorKind::FreeExceedsReserved))?;
                        }
                        Phase::Free(FreeAmount::All) => reserved = 0,
                        _ => {}
                    }
                    phases.push(p);
                }
            }
        }
        if phases.is_empty() {
            return Err(whole(ParseErrorKind::NoPhases));
        }
        // The phases a later pass runs, replayed once more from where the
        // first pass left the balance: if they free more than they
        // allocate, a later pass would free what is not reserved.
        if repeat != Repeat::Once && repeat_from > 0 {
            let start = reserved;
            // The lowest balance after a free in the replayed pass, and
            // that free's phase.
            let mut low = (reserved, repeat_from);
            for (i, p) in phases.iter().enumerate().skip(repeat_from) {
                match *p {
                    Phase::Alloc { pages } => reserved = reserved.saturating_add(pages),
                    Phase::Free(FreeAmount::Pages(n)) => {
                        reserved = reserved.checked_sub(n).ok_or(ParseError {
                            phase: i,
                            kind: ParseErrorKind::FreeExceedsReserved,
                        })?;
                        if reserved < low.0 {
                            low = (reserved, i);
                        }
                    }
                    Phase::Free(FreeAmount::All) => reserved = 0,
                    _ => {}
                }
            }
            // A pass that ends lower than it started (no `free:all`: that
            // makes every pass end alike) loses as much again on every
            // pass after it, so one replay is not enough: the last pass
            // starts `loss` lower per pass in between, and must still
            // find its lowest point reserved.
            if reserved < start {
                let loss = start - reserved;
                let more = match repeat {
                    Repeat::Times(n) => u64::from(n).saturating_sub(2),
                    _ => u64::MAX,
                };
                if more.checked_mul(loss).is_none_or(|d| d > low.0) {
                    return Err(ParseError {
                        phase: low.1,
                        kind: ParseErrorKind::FreeExceedsReserved,
                    });
                }
            }
        }
        Ok(Spec {
            phases,
            repeat,
            repeat_from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const MIB: u64 = 256;

    #[test]
    fn parses_the_example() {
        let s = Spec::parse("alloc:200M,touch:seq,hold:30s,free:200M,idle:60s,repeat").unwrap();
        assert_eq!(
            s.phases,
            [
                Phase::Alloc { pages: 200 * MIB },
                Phase::Touch(TouchPattern::Sequential),
                Phase::Hold {
                    duration_ns: 30_000_000_000
                },
                Phase::Free(FreeAmount::Pages(200 * MIB)),
                Phase::Idle {
                    duration_ns: 60_000_000_000
                },
            ]
        );
        assert_eq!(s.repeat, Repeat::Forever);
    }

    #[test]
    fn units_and_forms() {
        let s = Spec::parse("alloc:8K,alloc:1G,touch:ws=25%,hold:500ms,idle:2m,free:all,repeat:3")
            .unwrap();
        assert_eq!(s.phases[0], Phase::Alloc { pages: 2 });
        assert_eq!(s.phases[1], Phase::Alloc { pages: 1024 * MIB });
        assert_eq!(
            s.phases[2],
            Phase::Touch(TouchPattern::WorkingSet { percent: 25 })
        );
        assert_eq!(
            s.phases[3],
            Phase::Hold {
                duration_ns: 500_000_000
            }
        );
        assert_eq!(
            s.phases[4],
            Phase::Idle {
                duration_ns: 120_000_000_000
            }
        );
        assert_eq!(s.phases[5], Phase::Free(FreeAmount::All));
        assert_eq!(s.repeat, Repeat::Times(3));
        assert_eq!(Spec::parse("idle:1s").unwrap().repeat, Repeat::Once);
        let s = Spec::parse("alloc:160M,touch:seq,touch:ws=25%,idle:2s,repeat@2").unwrap();
        assert_eq!((s.repeat, s.repeat_from), (Repeat::Forever, 2));
        let s = Spec::parse("alloc:4M,idle:1s,free:4M,repeat:3@0").unwrap();
        assert_eq!((s.repeat, s.repeat_from), (Repeat::Times(3), 0));
        let s = Spec::parse("alloc:4M,idle:1s,repeat:3@1").unwrap();
        assert_eq!((s.repeat, s.repeat_from), (Repeat::Times(3), 1));
    }

    fn err(s: &str) -> (usize, ParseErrorKind) {
        let e = Spec::parse(s).unwrap_err();
        (e.phase, e.kind)
    }

    #[test]
    fn content_kinds() {
        let s = Spec::parse("content:text,alloc:4M,content:zero,alloc:4K").unwrap();
        assert_eq!(s.phases[0], Phase::Content(ContentKind::Text));
        assert_eq!(s.phases[2], Phase::Content(ContentKind::Zero));
        for bad in ["content:", "content", "content:Mixed", "content:mixed2"] {
            assert_eq!(
                Spec::parse(bad).unwrap_err().kind,
                ParseErrorKind::BadArgument,
                "{bad}"
            );
        }
    }

    /// Found by the `workload` fuzz target (fuzz/regressions/workload/):
    /// a loop (`repeat@from`) that frees more than it allocates was
    /// checked for one later pass only, so a third pass freed pages that
    /// were not reserved.
    #[test]
    fn loops_that_lose_pages_are_checked_for_every_pass() {
        use ParseErrorKind::*;
        // Each pass after the first frees one page more than it reserves.
        assert_eq!(
            err("alloc:8K,idle:1s,free:4K,repeat:9@2"),
            (2, FreeExceedsReserved)
        );
        assert_eq!(
            err("alloc:8K,idle:1s,free:4K,repeat@1"),
            (2, FreeExceedsReserved)
        );
        assert_eq!(
            err("alloc:8K,idle:1s,free:4K,repeat:3@1"),
            (2, FreeExceedsReserved)
        );
        // As many passes as the pages last.
        assert!(Spec::parse("alloc:8K,idle:1s,free:4K,repeat:2@1").is_ok());
        assert!(Spec::parse("alloc:12K,idle:1s,free:4K,repeat:3@1").is_ok());
        assert_eq!(
            err("alloc:12K,idle:1s,free:4K,repeat:4@1"),
            (2, FreeExceedsReserved)
        );
        // The lowest point of the pass counts, not only its end.
        assert_eq!(
            err("alloc:16K,idle:1s,free:12K,alloc:8K,repeat:3@1"),
            (2, FreeExceedsReserved)
        );
        assert!(Spec::parse("alloc:20K,idle:1s,free:12K,alloc:8K,repeat:3@1").is_ok());
        // Loops that keep their balance, or reset it, run forever.
        assert!(Spec::parse("alloc:4K,idle:1s,alloc:4K,free:4K,repeat@1").is_ok());
        assert!(Spec::parse("alloc:8K,idle:1s,free:all,alloc:4K,repeat@1").is_ok());
    }

    #[test]
    fn cache_phases() {
        let s = Spec::parse("content:text,cache:8M,idle:1s,cache:read,cache:free,repeat").unwrap();
        assert_eq!(s.phases[1], Phase::Cache(CacheOp::Build { pages: 8 * MIB }));
        assert_eq!(s.phases[3], Phase::Cache(CacheOp::Read));
        assert_eq!(s.phases[4], Phase::Cache(CacheOp::Free));
        assert_eq!(s.phases[1].name(), "cache-build");
        assert_eq!(s.phases[3].name(), "cache-read");
        // Cache pages are not reserved: they do not enter the free balance.
        assert_eq!(
            err("cache:4M,free:4K"),
            (1, ParseErrorKind::FreeExceedsReserved)
        );
        assert!(Spec::parse("alloc:4K,cache:1G,free:4K,cache:free").is_ok());
        // README's example: build once, then loop over the re-reads.
        let s =
            Spec::parse("content:text,alloc:32M,touch:seq,cache:96M,idle:30s,cache:read,repeat@4")
                .unwrap();
        assert_eq!((s.repeat, s.repeat_from), (Repeat::Forever, 4));
        use ParseErrorKind::*;
        assert_eq!(err("cache"), (0, BadArgument));
        assert_eq!(err("cache:"), (0, BadNumber));
        assert_eq!(err("cache:Read"), (0, BadNumber));
        assert_eq!(err("cache:0M"), (0, Zero));
        assert_eq!(err("cache:6K"), (0, NotPageMultiple));
        assert_eq!(err("cache:4M,cache:all"), (1, BadNumber));
        assert_eq!(err("cache:2048G"), (0, OutOfRange));
    }

    #[test]
    fn hostile_specs() {
        use ParseErrorKind::*;
        assert_eq!(err(""), (0, Empty));
        assert_eq!(err("idle:1s,"), (1, Empty));
        assert_eq!(err(",idle:1s"), (0, Empty));
        assert_eq!(err("alloc:200"), (0, BadUnit));
        assert_eq!(err("alloc:200MB"), (0, BadUnit));
        assert_eq!(err("alloc:200m"), (0, BadUnit));
        assert_eq!(err("alloc:M"), (0, BadNumber));
        assert_eq!(err("alloc:-5M"), (0, BadNumber));
        assert_eq!(err("alloc: 5M"), (0, BadNumber));
        assert_eq!(err("alloc:0M"), (0, Zero));
        assert_eq!(err("alloc:6K"), (0, NotPageMultiple));
        assert_eq!(err("alloc:1180591620717411303424M"), (0, OutOfRange));
        assert_eq!(err("alloc:18446744073709551615G"), (0, OutOfRange));
        assert_eq!(err("alloc:2048G"), (0, OutOfRange));
        assert_eq!(err("alloc"), (0, BadArgument));
        assert_eq!(err("Alloc:1M"), (0, UnknownPhase));
        assert_eq!(err("alloc:1M,touch:rand"), (1, BadArgument));
        assert_eq!(err("touch:ws=0%"), (0, Zero));
        assert_eq!(err("touch:ws=101%"), (0, OutOfRange));
        assert_eq!(err("touch:ws=25"), (0, BadArgument));
        assert_eq!(err("hold:10"), (0, BadUnit));
        assert_eq!(err("hold:0s"), (0, Zero));
        assert_eq!(err("hold:8d"), (0, BadUnit));
        assert_eq!(err("idle:100000000m"), (0, OutOfRange));
        assert_eq!(err("repeat"), (0, NoPhases));
        assert_eq!(err("idle:1s,repeat,idle:1s"), (2, RepeatNotLast));
        assert_eq!(err("idle:1s,repeat:0"), (1, Zero));
        assert_eq!(err("idle:1s,repeat:x"), (1, BadNumber));
        assert_eq!(err("idle:1s,repeat@1"), (1, OutOfRange));
        assert_eq!(err("idle:1s,repeat@x"), (1, BadNumber));
        assert_eq!(err("idle:1s,repeat:2@"), (1, BadNumber));
        assert_eq!(err("idle:1s,repeat@"), (1, BadNumber));
        assert_eq!(
            err("alloc:4M,idle:1s,free:4M,repeat@1"),
            (2, FreeExceedsReserved)
        );
        assert_eq!(err("idle:1s,repeat:4294967296"), (1, OutOfRange));
        assert_eq!(err("alloc:1M,free:2M"), (1, FreeExceedsReserved));
        assert_eq!(err("alloc:1M,free:all,free:4K"), (2, FreeExceedsReserved));
        assert_eq!(err("free:1M"), (0, FreeExceedsReserved));
        assert_eq!(err(&"idle:1s,".repeat(200)), (0, TooLong));
        let many = ["idle:1s"; 65].join(",");
        assert_eq!(err(&many), (0, TooManyPhases));
        assert_eq!(
            Spec::parse("hold:1s,alloc:1M")
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            Spec::parse("alloc:1M,free:2M").unwrap_err().to_string(),
            "phase 1: free exceeds what is reserved"
        );
    }
}
