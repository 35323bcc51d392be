//! SVG charts: frames held against demand over time for chosen VMs, and
//! the scorecard across policies.

use std::path::Path;

use plotters::prelude::*;

use crate::run::Recording;
use crate::score::Row;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// A chart that could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartError(pub String);

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChartError {}

fn err(svg: &Path) -> impl Fn(&dyn std::fmt::Display) -> ChartError + '_ {
    move |e| ChartError(format!("drawing {}: {e}", svg.display()))
}

/// Demand and each policy's frames over time for one VM: `runs` pairs a
/// policy label with that VM's recording.
pub fn vm_chart(svg: &Path, vm: &str, runs: &[(&str, &Recording)]) -> Result<(), ChartError> {
    let e = err(svg);
    let tmax = runs
        .iter()
        .flat_map(|(_, r)| r.points.iter().map(|p| p.0))
        .fold(0.01, f64::max);
    let ymax = runs
        .iter()
        .flat_map(|(_, r)| r.points.iter().map(|p| p.1.max(p.2)))
        .fold(1.0, f64::max)
        * 1.05;
    let root = SVGBackend::new(svg, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("VM {vm}: demand and frames held"),
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..tmax, 0f64..ymax)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("MiB")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (label, r)) in runs.iter().enumerate() {
        let style = ShapeStyle::from(&PALETTE[i % PALETTE.len()]).stroke_width(2);
        chart
            .draw_series(LineSeries::new(r.points.iter().map(|p| (p.0, p.2)), style))
            .map_err(|x| e(&x))?
            .label(label.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    // Demand last, on top of the policies that hold it exactly.
    if let Some((_, r)) = runs.first() {
        let style = ShapeStyle::from(&BLACK).stroke_width(1);
        chart
            .draw_series(LineSeries::new(r.points.iter().map(|p| (p.0, p.1)), style))
            .map_err(|x| e(&x))?
            .label("demand")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Bars of held, shortfall and OOM events per policy, each relative to
/// the largest value of the run (labels give the figures).
pub fn scorecard_chart(svg: &Path, rows: &[Row]) -> Result<(), ChartError> {
    let e = err(svg);
    type Metric = (&'static str, fn(&Row) -> f64);
    let metrics: [Metric; 4] = [
        ("held GiB·h", |r| r.held_gib_h),
        ("shortfall GiB·h", |r| r.shortfall_gib_h),
        ("OOM events", |r| r.oom_events as f64),
        ("page-ins p99 %ws/min", |r| r.pageins_p99_pct_ws_per_min),
    ];
    let root = SVGBackend::new(svg, (1200, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let panels = root.split_evenly((2, 2));
    let n = rows.len().max(1);
    for (panel, (name, f)) in panels.iter().zip(metrics) {
        let max = rows.iter().map(f).fold(0.0, f64::max);
        let ymax = if max > 0.0 { max * 1.15 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, r) in rows.iter().enumerate() {
            let v = f(r);
            let x0 = i as f64 + 0.15;
            let x1 = i as f64 + 0.85;
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, v)],
                    c.filled(),
                )))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{}: {v:.3}", r.policy),
                    (x0, v + ymax * 0.03),
                    ("sans-serif", 12),
                )))
                .map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
