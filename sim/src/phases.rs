//! A workload program of the guest (`workload=` grammar,
//! `selfballoon::workload::Spec`) as a one-VM demand trace, so the sim
//! predicts what the guest will hold in each phase.
//!
//! Committed memory follows the engine's accounting: `alloc` reserves
//! (committed at once), `free` releases the most recent reservations,
//! `touch` changes nothing committed. `alloc`, `touch` and `free` take
//! `op_s` seconds in the model, `hold` and `idle` their duration. The
//! guest's own committed memory (kernel heap, page tables) is
//! `base_committed_kib`.

use std::fmt;

use selfballoon::workload::spec::{FreeAmount, Phase, Repeat};
use selfballoon::workload::{ParseError, Spec};

use crate::trace::{Notes, Seg, Series, Trace};

/// Most passes of a program the model runs.
pub const MAX_PASSES: u32 = 1000;

/// One phase on the model's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Pass number (from 1) and phase index (from 0) in the program.
    pub pass: u32,
    /// As above.
    pub index: usize,
    /// `alloc`, `hold`, ... (`Phase::name`).
    pub name: &'static str,
    /// Start and end, s.
    pub start_s: u64,
    /// As above.
    pub end_s: u64,
    /// Workload pages reserved during it.
    pub reserved_pages: u64,
}

/// The program as a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// One VM.
    pub trace: Trace,
    /// Its phases.
    pub marks: Vec<Mark>,
}

/// A program the model cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhasesError {
    /// The guest's parser refused it.
    Parse(ParseError),
    /// It takes no time at all.
    NoDuration,
}

impl fmt::Display for PhasesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhasesError::Parse(e) => write!(f, "workload program: {e}"),
            PhasesError::NoDuration => f.write_str("workload program takes no time"),
        }
    }
}

impl std::error::Error for PhasesError {}

/// The model's view of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The guest's RAM (maxmem), KiB.
    pub ram_kib: u64,
    /// The guest's own committed memory, KiB.
    pub base_committed_kib: u64,
    /// Seconds an `alloc`, `touch` or `free` takes.
    pub op_s: u64,
    /// Passes of a `repeat` without a count (a `repeat:N` above
    /// [`MAX_PASSES`] is cut there too).
    pub passes: u32,
    /// Idle time after the program ends, s.
    pub tail_s: u64,
}

/// Builds the trace of `spec` (the `workload=` text).
pub fn program(spec: &str, s: &Setup) -> Result<Program, PhasesError> {
    let parsed = Spec::parse(spec).map_err(PhasesError::Parse)?;
    let passes = match parsed.repeat {
        Repeat::Once => 1,
        Repeat::Times(n) => n,
        Repeat::Forever => s.passes.max(1),
    }
    .min(MAX_PASSES);
    let mut reserved: u64 = 0;
    let mut stack: Vec<u64> = Vec::new();
    let mut t = 0u64;
    let mut segs = Vec::new();
    let mut marks = Vec::new();
    let push = |t0: u64, t1: u64, reserved: u64, segs: &mut Vec<Seg>| {
        if t1 > t0 {
            segs.push(Seg {
                start_s: t0,
                end_s: t1,
                ram_kib: s.ram_kib,
                usage_kib: s
                    .base_committed_kib
                    .saturating_add(reserved.saturating_mul(4))
                    .min(s.ram_kib),
            });
        }
    };
    for pass in 1..=passes {
        let from = if pass == 1 { 0 } else { parsed.repeat_from };
        for (index, ph) in parsed.phases.iter().enumerate().skip(from) {
            let dur = match *ph {
                Phase::Alloc { pages } => {
                    reserved = reserved.saturating_add(pages);
                    stack.push(pages);
                    s.op_s
                }
                Phase::Free(amount) => {
                    let mut left = match amount {
                        FreeAmount::Pages(p) => p,
                        FreeAmount::All => reserved,
                    };
                    while left > 0 {
                        let Some(top) = stack.pop() else { break };
                        let take = top.min(left);
                        if take < top {
                            stack.push(top - take);
                        }
                        left -= take;
                        reserved = reserved.saturating_sub(take);
                    }
                    s.op_s
                }
                // Cache pages are not committed memory: no demand here.
                Phase::Touch(_) | Phase::Cache(_) => s.op_s,
                // Takes no time in the guest (a setting for later allocs).
                Phase::Content(_) => 0,
                Phase::Hold { duration_ns } | Phase::Idle { duration_ns } => {
                    duration_ns / 1_000_000_000
                }
            };
            let t1 = t.saturating_add(dur);
            push(t, t1, reserved, &mut segs);
            marks.push(Mark {
                pass,
                index,
                name: ph.name(),
                start_s: t,
                end_s: t1,
                reserved_pages: reserved,
            });
            t = t1;
        }
    }
    if s.tail_s > 0 {
        push(t, t.saturating_add(s.tail_s), reserved, &mut segs);
        marks.push(Mark {
            pass: passes,
            index: parsed.phases.len(),
            name: "end",
            start_s: t,
            end_s: t.saturating_add(s.tail_s),
            reserved_pages: reserved,
        });
    }
    if segs.is_empty() {
        return Err(PhasesError::NoDuration);
    }
    Ok(Program {
        trace: Trace {
            series: vec![Series {
                name: "phases".to_string(),
                segs,
            }],
            notes: Notes::default(),
        },
        marks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_follows_the_program() {
        let s = Setup {
            ram_kib: 512 * 1024,
            base_committed_kib: 1024,
            op_s: 0,
            passes: 2,
            tail_s: 10,
        };
        let p = program("alloc:100M,touch:seq,hold:60s,free:40M,idle:30s,repeat", &s).unwrap();
        let segs = &p.trace.series[0].segs;
        // Zero-length alloc/touch/free: hold 60 s, idle 30 s, twice, tail.
        assert_eq!(segs.len(), 5);
        assert_eq!((segs[0].end_s, segs[0].usage_kib), (60, 1024 + 100 * 1024));
        assert_eq!(segs[1].usage_kib, 1024 + 60 * 1024);
        assert_eq!(segs[2].usage_kib, 1024 + 160 * 1024);
        assert_eq!(segs[4].usage_kib, 1024 + 120 * 1024);
        assert_eq!(p.marks.len(), 11);
        assert_eq!(p.marks[2].name, "hold");
        assert!(matches!(
            program("alloc:1M,free:2M", &s),
            Err(PhasesError::Parse(_))
        ));
        assert_eq!(
            program("alloc:1M", &Setup { tail_s: 0, ..s }),
            Err(PhasesError::NoDuration)
        );
    }
}
