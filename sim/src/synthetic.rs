//! Synthetic demand shapes for the controllers' dynamics: `step`,
//! `ramp`, `sawtooth` and `bursts`, sampled every `sample_s`, as a
//! [`Trace`] of `vms` VMs (bursts differ per VM, from the seed).

use std::fmt;

use crate::rng::Rng;
use crate::trace::{Notes, Seg, Series, Trace};

/// A shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// 10% of RAM, 60% from a third of the run to two thirds, then 10%.
    Step,
    /// 10% → 70% over the first half, then back down over the second.
    Ramp,
    /// 10% rising to 60% over each 20-minute period, then dropping.
    Sawtooth,
    /// 10% with random bursts (every 30 min on average, 20–70% of RAM,
    /// lasting 1–15 min).
    Bursts,
}

impl Shape {
    /// All shapes.
    pub const ALL: [Shape; 4] = [Shape::Step, Shape::Ramp, Shape::Sawtooth, Shape::Bursts];

    /// Its name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Step => "step",
            Shape::Ramp => "ramp",
            Shape::Sawtooth => "sawtooth",
            Shape::Bursts => "bursts",
        }
    }

    /// Looks a name up.
    pub fn from_name(s: &str) -> Option<Shape> {
        Shape::ALL.iter().copied().find(|x| x.name() == s)
    }
}

/// An unknown shape name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownShape;

impl fmt::Display for UnknownShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown shape (step, ramp, sawtooth, bursts)")
    }
}

impl std::error::Error for UnknownShape {}

/// The parameters of a synthetic trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synthetic {
    /// The shape.
    pub shape: Shape,
    /// VMs (each with its own burst draws).
    pub vms: u32,
    /// RAM per VM, KiB.
    pub ram_kib: u64,
    /// Length, s.
    pub duration_s: u64,
    /// Sampling interval, s (>= 1).
    pub sample_s: u64,
    /// Seed for the bursts.
    pub seed: u64,
}

/// Builds the trace.
pub fn generate(p: &Synthetic) -> Trace {
    let step = p.sample_s.max(1);
    let n = p.duration_s / step;
    let mut series = Vec::new();
    for v in 0..p.vms {
        let mut rng = Rng::new(p.seed ^ (u64::from(v) + 1).wrapping_mul(0x9e37_79b9));
        let bursts = if p.shape == Shape::Bursts {
            draw_bursts(&mut rng, p.duration_s)
        } else {
            Vec::new()
        };
        let mut segs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = i * step;
            let frac = level(p.shape, t, p.duration_s, &bursts);
            let usage_kib = (p.ram_kib as f64 * frac).round() as u64;
            segs.push(Seg {
                start_s: t,
                end_s: t + step,
                ram_kib: p.ram_kib,
                usage_kib: usage_kib.min(p.ram_kib),
            });
        }
        series.push(Series {
            name: format!("{}-{}", p.shape.name(), v + 1),
            segs,
        });
    }
    Trace {
        series,
        notes: Notes::default(),
    }
}

/// (start s, end s, level) of each burst.
fn draw_bursts(rng: &mut Rng, duration_s: u64) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let mut t = rng.exponential(1800.0);
    while t < duration_s as f64 {
        let len = rng.range(60.0, 900.0);
        let lvl = rng.range(0.2, 0.7);
        out.push((t, t + len, lvl));
        t += len + rng.exponential(1800.0);
    }
    out
}

fn level(shape: Shape, t: u64, dur: u64, bursts: &[(f64, f64, f64)]) -> f64 {
    let x = t as f64 / dur.max(1) as f64;
    match shape {
        Shape::Step => {
            if (1.0 / 3.0..2.0 / 3.0).contains(&x) {
                0.6
            } else {
                0.1
            }
        }
        Shape::Ramp => {
            if x < 0.5 {
                0.1 + 0.6 * (x / 0.5)
            } else {
                0.7 - 0.6 * ((x - 0.5) / 0.5)
            }
        }
        Shape::Sawtooth => {
            let p = (t % 1200) as f64 / 1200.0;
            0.1 + 0.5 * p
        }
        Shape::Bursts => {
            let tf = t as f64;
            bursts
                .iter()
                .filter(|(a, b, _)| (*a..*b).contains(&tf))
                .map(|&(_, _, l)| l)
                .fold(0.1, f64::max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(shape: Shape) -> Synthetic {
        Synthetic {
            shape,
            vms: 2,
            ram_kib: 1 << 20,
            duration_s: 6 * 3600,
            sample_s: 5,
            seed: 1,
        }
    }

    #[test]
    fn shapes_have_their_levels() {
        let t = generate(&p(Shape::Step));
        let s = &t.series[0].segs;
        assert_eq!(s.len(), 6 * 720);
        assert_eq!(s[0].usage_kib, 104_858);
        assert_eq!(s[s.len() / 2].usage_kib, 629_146);
        let r = generate(&p(Shape::Ramp));
        let mid = r.series[0].segs[6 * 360].usage_kib;
        assert!(mid > 700_000, "{mid}");
        for shape in Shape::ALL {
            assert_eq!(Shape::from_name(shape.name()), Some(shape));
        }
    }

    #[test]
    fn bursts_are_seeded() {
        let a = generate(&p(Shape::Bursts));
        let b = generate(&p(Shape::Bursts));
        assert_eq!(a, b);
        assert_ne!(a.series[0].segs, a.series[1].segs);
        let c = generate(&Synthetic {
            seed: 2,
            ..p(Shape::Bursts)
        });
        assert_ne!(a.series[0].segs, c.series[0].segs);
    }
}
