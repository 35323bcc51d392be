//! SVG charts of the rig's memory samples.
//!
//! CSV layout written by lib.sh's sampler: `t` (seconds), `free_mib`
//! (host free memory), then per domain `<dom>.mem_mib` (`xl list`),
//! `<dom>.target_kib` (memory/target) and any sampled xenstore keys as
//! `<dom>.<key>` or `<key>`. Values in KiB are drawn in MiB. Empty cells
//! (domain not there yet) leave gaps.

use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// One column of the CSV: header name and values (None = empty cell).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

pub fn parse_csv(text: &str) -> Result<Vec<Column>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| anyhow!("empty CSV"))?;
    let mut cols: Vec<Column> = header
        .split(',')
        .map(|n| Column {
            name: n.trim().to_string(),
            values: Vec::new(),
        })
        .collect();
    for (i, l) in lines.enumerate() {
        let cells: Vec<&str> = l.split(',').collect();
        if cells.len() != cols.len() {
            // A row cut short by the end of the run: ignore it.
            if i > 0 {
                continue;
            }
            bail!(
                "row {} has {} cells, header has {}",
                i + 2,
                cells.len(),
                cols.len()
            );
        }
        for (c, v) in cols.iter_mut().zip(cells) {
            // A sample is a number or nothing: text, and numbers too large
            // for f64 (a hostile `memory/target` of 4,000 nines parses as
            // infinity, which would hang the axis code), are gaps.
            c.values
                .push(v.trim().parse::<f64>().ok().filter(|x| x.is_finite()));
        }
    }
    Ok(cols)
}

/// How a column is drawn: in MiB, with a label, or not at all.
fn scale_of(name: &str) -> Option<f64> {
    if name == "t" {
        return None;
    }
    if name.ends_with("_mib") {
        return Some(1.0);
    }
    let leaf = name.rsplit('/').next().unwrap_or(name);
    let kib_keys = [
        "target_kib",
        "current",
        "target",
        "ballooned",
        "committed",
        "goal",
        "static-max",
        "meminfo_total",
        "meminfo_free",
    ];
    if name.ends_with("_kib") || kib_keys.contains(&leaf) {
        return Some(1.0 / 1024.0);
    }
    None
}

/// Above this many domains a chart shows only each domain's memory (as
/// `xl list` shows it) and the host's series: one line per guest, so that
/// many guests and the host's free memory fit one readable chart.
const MAX_DOMAINS_WITH_DETAIL: usize = 4;

/// The columns drawn, with their scale to MiB.
fn plotted(cols: &[Column]) -> Vec<(&Column, f64)> {
    let mut doms: Vec<&str> = cols
        .iter()
        .filter_map(|c| c.name.split_once('.').map(|(d, _)| d))
        .collect();
    doms.sort_unstable();
    doms.dedup();
    let detail = doms.len() <= MAX_DOMAINS_WITH_DETAIL;
    cols.iter()
        .filter(|c| {
            detail
                || c.name
                    .split_once('.')
                    .is_none_or(|(_, key)| key == "mem_mib")
        })
        .filter_map(|c| scale_of(&c.name).map(|s| (c, s)))
        .collect()
}

/// Runs of consecutive samples with values (gaps split lines).
fn segments(t: &[Option<f64>], v: &[Option<f64>], scale: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (x, y) in t.iter().zip(v) {
        match (x, y) {
            (Some(x), Some(y)) => out.last_mut().map_or((), |s| s.push((*x, y * scale))),
            _ => {
                if out.last().is_some_and(|s| !s.is_empty()) {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

/// Draws `csv` as an SVG chart at `svg`.
pub fn render(csv: &Path, svg: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let cols = parse_csv(&text)?;
    let t = cols
        .iter()
        .find(|c| c.name == "t")
        .ok_or_else(|| anyhow!("no `t` column"))?;
    let tmax = t.values.iter().flatten().cloned().fold(1.0, f64::max);
    let plotted = plotted(&cols);
    let ymax = plotted
        .iter()
        .flat_map(|(c, s)| c.values.iter().flatten().map(move |v| v * s))
        .fold(16.0, f64::max)
        * 1.08;
    let title = csv
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    let root = SVGBackend::new(svg, (1100, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", svg.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: memory over time"), ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..tmax, 0f64..ymax)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("MiB")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| err(&e))?;

    // A colour per series; a domain's memory as `xl list` shows it is
    // thick and solid, its other series (targets, guest status) thin and
    // dashed; host series are grey.
    let mut next_colour = 0;
    for (c, scale) in &plotted {
        let (colour, width, dashed) = match c.name.split_once('.') {
            None => (RGBColor(120, 120, 120), 2, false),
            Some((_, key)) => {
                let colour = PALETTE[next_colour % PALETTE.len()];
                next_colour += 1;
                let main = key == "mem_mib";
                (colour, if main { 3 } else { 1 }, !main)
            }
        };
        let style = ShapeStyle::from(&colour).stroke_width(width);
        let mut first = true;
        for seg in segments(&t.values, &c.values, *scale) {
            let anno = if dashed {
                chart
                    .draw_series(DashedLineSeries::new(seg, 6, 4, style))
                    .map_err(|e| err(&e))?
            } else {
                chart
                    .draw_series(LineSeries::new(seg, style))
                    .map_err(|e| err(&e))?
            };
            if first {
                let label = if *scale == 1.0 {
                    c.name.clone()
                } else {
                    format!("{} (KiB→MiB)", c.name)
                };
                anno.label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                first = false;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_gaps() {
        let cols = parse_csv("t,free_mib,a.mem_mib\n0,100,\n1,90,10\n2,80,12\n3,70,\n4,75,9\n5,7")
            .unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[2].values.len(), 5);
        let segs = segments(&cols[0].values, &cols[2].values, 1.0);
        assert_eq!(segs, vec![vec![(1.0, 10.0), (2.0, 12.0)], vec![(4.0, 9.0)]]);
    }

    #[test]
    fn hostile_numbers_are_gaps() {
        // The abuse scenario samples a memory/target of 4,000 nines: f64
        // parses it as infinity, and plotters' axis code never returns.
        let big = "9".repeat(4000);
        let cols = parse_csv(&format!("t,g.target_kib\n0,1024\n1,{big}\n2,nan\n3,2048")).unwrap();
        assert_eq!(cols[1].values, vec![Some(1024.0), None, None, Some(2048.0)]);
        let dir = std::env::temp_dir().join(format!("xtask-plot-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("b.csv");
        std::fs::write(&csv, format!("t,g.target_kib\n0,1024\n1,{big}\n")).unwrap();
        render(&csv, &dir.join("b.svg")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_domains_show_memory_only() {
        let names = |cols: &[Column]| -> Vec<String> {
            plotted(cols).iter().map(|(c, _)| c.name.clone()).collect()
        };
        let few =
            parse_csv("t,free_mib,a.mem_mib,a.target_kib,b.mem_mib,b.target_kib\n0,1,2,3,4,5")
                .unwrap();
        assert_eq!(
            names(&few),
            [
                "free_mib",
                "a.mem_mib",
                "a.target_kib",
                "b.mem_mib",
                "b.target_kib"
            ]
        );
        let mut hdr = String::from("t,free_mib");
        for d in ["g1", "g2", "g3", "g4", "g5", "lx"] {
            hdr.push_str(&format!(
                ",{d}.mem_mib,{d}.target_kib,{d}.data/selfballoon/current"
            ));
        }
        let many = parse_csv(&format!("{hdr}\n")).unwrap();
        assert_eq!(
            names(&many),
            [
                "free_mib",
                "g1.mem_mib",
                "g2.mem_mib",
                "g3.mem_mib",
                "g4.mem_mib",
                "g5.mem_mib",
                "lx.mem_mib"
            ]
        );
    }

    #[test]
    fn scales() {
        assert_eq!(scale_of("free_mib"), Some(1.0));
        assert_eq!(scale_of("g.target_kib"), Some(1.0 / 1024.0));
        assert_eq!(scale_of("g.data/selfballoon/goal"), Some(1.0 / 1024.0));
        assert_eq!(scale_of("g.data/selfballoon/ticks"), None);
        assert_eq!(scale_of("t"), None);
    }

    #[test]
    fn renders_svg() {
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("m.csv");
        std::fs::write(
            &csv,
            "t,free_mib,g.mem_mib,g.target_kib\n0,1000,256,262144\n1,1100,128,131072\n",
        )
        .unwrap();
        let svg = dir.join("m.svg");
        render(&csv, &svg).unwrap();
        let s = std::fs::read_to_string(&svg).unwrap();
        assert!(s.contains("<svg") && s.contains("g.mem_mib"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
