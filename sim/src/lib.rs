//! The selfballoon policy simulator: replays memory-demand traces (real
//! ones, synthetic shapes, or the guest's own workload programs) through
//! the very controller code the guest runs
//! (`selfballoon::selfballoon::Controller`) against a model of a guest and
//! its host ([`model`]), and scores each policy ([`score`]).
//!
//! - [`trace`]: the trace file reader.
//! - [`synthetic`]: step, ramp, sawtooth and burst shapes.
//! - [`phases`]: a `workload=` program as a trace, for predictions.
//! - [`model`]: the guest/host model and its parameters.
//! - [`policy`]: which policies (static, oracle, controller modes).
//! - [`run`]: the replay.
//! - [`score`]: the scorecard (table, CSV).
//! - [`chart`]: SVG charts.
//! - [`rng`]: the seeded generator.
#![forbid(unsafe_code)]

pub mod chart;
pub mod model;
pub mod phases;
pub mod policy;
pub mod rng;
pub mod run;
pub mod score;
pub mod synthetic;
pub mod trace;

use model::Model;
use policy::PolicySpec;
use run::{Outcome, Record};
use trace::Trace;

/// Runs every policy over `trace` (in parallel, one thread per policy up
/// to the machine's cores; each run is deterministic, so the results do
/// not depend on the threads), calling `progress` with ticks done.
pub fn simulate(
    trace: &Trace,
    model: &Model,
    policies: &[PolicySpec],
    record: &Record,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Outcome> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut out: Vec<Option<Outcome>> = vec![None; policies.len()];
    for chunk in (0..policies.len()).collect::<Vec<_>>().chunks(threads) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let p = &policies[i];
                    (
                        i,
                        s.spawn(move || run::run(trace, model, p, record, progress)),
                    )
                })
                .collect();
            for (i, h) in handles {
                // A panicking run is a bug in the sim: pass it on.
                match h.join() {
                    Ok(o) => out[i] = Some(o),
                    Err(e) => std::panic::resume_unwind(e),
                }
            }
        });
    }
    out.into_iter().flatten().collect()
}
