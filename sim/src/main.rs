//! `sim`: the command line of the policy simulator (also run as
//! `cargo xtask sim`). See `sim --help`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use sim::model::{Model, PAGES_PER_GIB, PAGES_PER_MIB};
use sim::phases::{self, Setup};
use sim::policy::{self, PolicySpec};
use sim::run::{self, Record};
use sim::score::{self, Row};
use sim::synthetic::{self, Shape, Synthetic};
use sim::trace::{self, Trace};

/// Replays memory-demand traces through the guest's self-balloon
/// controller and scores each policy.
#[derive(Parser, Debug)]
#[command(name = "sim", version)]
struct Cli {
    /// Trace file (CSV, optionally gzip'd: vm,timestamp_s,mem_provisioned_kb,mem_usage_kb).
    #[arg(long, group = "input")]
    trace: Option<PathBuf>,
    /// A synthetic shape instead: step, ramp, sawtooth, bursts.
    #[arg(long, group = "input")]
    synthetic: Option<String>,
    /// A guest workload program (`workload=` grammar) instead: prints the
    /// frames held at the end of each phase (the prediction).
    #[arg(long, group = "input")]
    phases: Option<String>,
    /// Comma-separated policies: static, oracle, 2011, linux, adaptive;
    /// each may carry tunables as name:key=value:key=value.
    #[arg(long, default_value = "static,oracle,2011,linux,adaptive")]
    policies: String,
    /// Directory for scorecard.csv and the charts.
    #[arg(long, default_value = "results/sim")]
    out: PathBuf,
    /// VMs to chart (names in the trace, comma-separated; default the
    /// first three).
    #[arg(long)]
    chart_vms: Option<String>,
    /// Hours of the run the VM charts show (0: all).
    #[arg(long, default_value_t = 48)]
    chart_hours: u64,
    /// Seed of the synthetic shapes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rerun the scorecard for each of these hot working-set percentages.
    #[arg(long, value_delimiter = ',')]
    sweep_hot: Vec<u32>,

    /// Controller tick, s (the controller's selfballoon_interval).
    #[arg(long, default_value_t = 5)]
    tick_s: u32,
    /// Ticks between a measurement and the decision that uses it.
    #[arg(long, default_value_t = 1)]
    lag_ticks: u32,
    /// Balloon speed, GiB/s.
    #[arg(long, default_value_t = 7.0)]
    balloon_gib_per_s: f64,
    /// Frames of the kernel that are not usable RAM, MiB.
    #[arg(long, default_value_t = 4)]
    kernel_mib: u64,
    /// The same in KiB (overrides --kernel-mib; a multiple of 4).
    #[arg(long)]
    kernel_kib: Option<u64>,
    /// totalreserve the guest reports, MiB.
    #[arg(long, default_value_t = 0)]
    totalreserve_mib: u64,
    /// The balloon driver's safety floor, MiB.
    #[arg(long, default_value_t = 8)]
    floor_mib: u64,
    /// The same in KiB (overrides --floor-mib; a multiple of 4).
    #[arg(long)]
    floor_kib: Option<u64>,
    /// Committed memory as a percentage of the trace's usage.
    #[arg(long, default_value_t = 100)]
    committed_pct: u32,
    /// Committed memory added to every sample, MiB.
    #[arg(long, default_value_t = 0)]
    committed_extra_mib: u64,
    /// The toolstack target as a percentage of the VM's RAM.
    #[arg(long, default_value_t = 100)]
    toolstack_pct: u32,
    /// Host free memory shared by the run's VMs, GiB (default unlimited).
    #[arg(long)]
    host_free_gib: Option<u64>,
    /// Swap tier capacity, % of RAM (uncompressed pages).
    #[arg(long, default_value_t = 25)]
    swap_pct: u32,
    /// Compression ratio of the tier (> 1.01).
    #[arg(long, default_value_t = 3.0)]
    swap_ratio: f64,
    /// Cost of a page-out, ns.
    #[arg(long, default_value_t = 4000)]
    pageout_ns: u64,
    /// Cost of a page-in, ns.
    #[arg(long, default_value_t = 1500)]
    pagein_ns: u64,
    /// Hot share of the demand, %.
    #[arg(long, default_value_t = 50)]
    hot_pct: u32,
    /// Seconds between touches of each hot page.
    #[arg(long, default_value_t = 60)]
    ws_period_s: u32,
    /// Longest a trace sample is held, s.
    #[arg(long, default_value_t = 900)]
    max_hold_s: u64,
    /// A demand rise above this % (and 1 MiB) counts as a spike.
    #[arg(long, default_value_t = 10)]
    spike_rise_pct: u32,

    /// Synthetic: VMs.
    #[arg(long, default_value_t = 4)]
    vms: u32,
    /// Synthetic and --phases: RAM per VM, MiB.
    #[arg(long, default_value_t = 1024)]
    ram_mib: u64,
    /// Synthetic: hours.
    #[arg(long, default_value_t = 6)]
    hours: u64,
    /// Synthetic: sampling interval, s.
    #[arg(long, default_value_t = 5)]
    sample_s: u64,
    /// --phases: the guest's own committed memory (heap, page tables), KiB.
    #[arg(long, default_value_t = 4096)]
    base_committed_kib: u64,
    /// --phases: seconds an alloc, touch or free takes.
    #[arg(long, default_value_t = 0)]
    op_s: u64,
    /// --phases: passes of a `repeat` without a count.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// --phases: idle time after the program, s.
    #[arg(long, default_value_t = 120)]
    tail_s: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sim: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

fn model(cli: &Cli) -> Result<Model, Error> {
    if !(cli.swap_ratio.is_finite() && cli.swap_ratio >= 1.01 && cli.swap_ratio <= 100.0) {
        return Err("--swap-ratio must be between 1.01 and 100".into());
    }
    if !(cli.balloon_gib_per_s.is_finite() && cli.balloon_gib_per_s > 0.0) {
        return Err("--balloon-gib-per-s must be positive".into());
    }
    if cli.tick_s == 0 || cli.ws_period_s == 0 || cli.max_hold_s == 0 {
        return Err("--tick-s, --ws-period-s and --max-hold-s must be positive".into());
    }
    if cli.hot_pct > 100 || cli.sweep_hot.iter().any(|&h| h > 100) {
        return Err("hot percentages are 0..=100".into());
    }
    let mib = |m: u64| {
        m.checked_mul(PAGES_PER_MIB)
            .ok_or_else(|| Error::from(format!("{m} MiB overflows a page count")))
    };
    Ok(Model {
        tick_s: cli.tick_s,
        lag_ticks: cli.lag_ticks,
        balloon_pages_per_s: (cli.balloon_gib_per_s * PAGES_PER_GIB as f64) as u64,
        kernel_pages: match cli.kernel_kib {
            Some(k) => Model::kib_to_pages(k),
            None => mib(cli.kernel_mib)?,
        },
        totalreserve_pages: mib(cli.totalreserve_mib)?,
        floor_pages: match cli.floor_kib {
            Some(k) => Model::kib_to_pages(k),
            None => mib(cli.floor_mib)?,
        },
        committed_pct: cli.committed_pct,
        committed_extra_pages: mib(cli.committed_extra_mib)?,
        toolstack_pct: cli.toolstack_pct,
        host_free_pages: match cli.host_free_gib {
            Some(g) => Some(
                g.checked_mul(PAGES_PER_GIB)
                    .ok_or("--host-free-gib overflows")?,
            ),
            None => None,
        },
        swap_capacity_pct: cli.swap_pct,
        swap_ratio_x100: (cli.swap_ratio * 100.0).round() as u32,
        pageout_ns: cli.pageout_ns,
        pagein_ns: cli.pagein_ns,
        hot_pct: cli.hot_pct,
        ws_period_s: cli.ws_period_s,
        max_hold_s: cli.max_hold_s,
        spike_rise_pct: cli.spike_rise_pct,
    })
}

fn policies(cli: &Cli) -> Result<Vec<PolicySpec>, Error> {
    let mut v = Vec::new();
    for item in cli.policies.split(',').filter(|s| !s.is_empty()) {
        v.push(policy::parse(item, cli.tick_s).map_err(|e| format!("policy '{item}': {e}"))?);
    }
    if v.is_empty() {
        return Err("--policies is empty".into());
    }
    Ok(v)
}

fn real_main(cli: &Cli) -> Result<(), Error> {
    let m = model(cli)?;
    let pols = policies(cli)?;
    if let Some(spec) = &cli.phases {
        return predict(cli, &m, &pols, spec);
    }
    let trace = load(cli, &m)?;
    if trace.series.is_empty() {
        return Err("the trace has no VM with a running sample".into());
    }
    let n = &trace.notes;
    eprintln!(
        "sim: {} VMs, {} rows ({} duplicates merged, {} off samples, {} clamped, {} long gaps)",
        trace.series.len(),
        n.rows,
        n.duplicate_rows,
        n.off_samples,
        n.clamped_samples,
        n.long_gaps
    );
    std::fs::create_dir_all(&cli.out)
        .map_err(|e| format!("cannot create {}: {e}", cli.out.display()))?;
    let chart_vms = chart_indices(cli, &trace)?;
    let hots: Vec<u32> = if cli.sweep_hot.is_empty() {
        vec![m.hot_pct]
    } else {
        cli.sweep_hot.clone()
    };
    for hot in hots {
        let m = Model { hot_pct: hot, ..m };
        let suffix = if cli.sweep_hot.is_empty() {
            String::new()
        } else {
            format!("-hot{hot}")
        };
        let rows = scorecard(cli, &m, &pols, &trace, &chart_vms, &suffix)?;
        println!(
            "hot working set {hot}%, tick {} s, lag {} tick(s):",
            m.tick_s, m.lag_ticks
        );
        print!("{}", score::table(&rows));
        let csv_path = cli.out.join(format!("scorecard{suffix}.csv"));
        std::fs::write(&csv_path, score::csv(&rows))
            .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
        println!("wrote {}", csv_path.display());
    }
    Ok(())
}

fn load(cli: &Cli, m: &Model) -> Result<Trace, Error> {
    if let Some(p) = &cli.trace {
        return trace::read_file(p, m.max_hold_s)
            .map_err(|e| format!("{}: {e}", p.display()).into());
    }
    let shape = cli.synthetic.as_deref().unwrap_or("bursts");
    let shape = Shape::from_name(shape).ok_or(synthetic::UnknownShape)?;
    let ram_kib = cli.ram_mib.checked_mul(1024).ok_or("--ram-mib overflows")?;
    Ok(synthetic::generate(&Synthetic {
        shape,
        vms: cli.vms,
        ram_kib,
        duration_s: cli.hours.saturating_mul(3600),
        sample_s: cli.sample_s,
        seed: cli.seed,
    }))
}

fn chart_indices(cli: &Cli, trace: &Trace) -> Result<Vec<usize>, Error> {
    match &cli.chart_vms {
        None => Ok((0..trace.series.len().min(3)).collect()),
        Some(list) => list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|name| {
                trace
                    .series
                    .iter()
                    .position(|s| s.name == name)
                    .ok_or_else(|| Error::from(format!("--chart-vms: no VM '{name}' in the trace")))
            })
            .collect(),
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:40}] {percent:>3}% {elapsed} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix("sim");
    pb
}

fn scorecard(
    cli: &Cli,
    m: &Model,
    pols: &[PolicySpec],
    trace: &Trace,
    chart_vms: &[usize],
    suffix: &str,
) -> Result<Vec<Row>, Error> {
    // static and oracle are always run: `captured` needs them.
    let mut all: Vec<PolicySpec> = pols.to_vec();
    for base in ["static", "oracle"] {
        if !all.iter().any(|p| p.label == base) {
            all.push(policy::parse(base, m.tick_s)?);
        }
    }
    let (_, ticks) = run::clock(trace, m.tick_s);
    let pb = progress_bar(ticks.saturating_mul(all.len() as u64));
    let record = Record {
        chart_vms: chart_vms.to_vec(),
        chart_every_ticks: (60 / u64::from(m.tick_s)).max(1),
        chart_span_s: cli.chart_hours.saturating_mul(3600),
        trace_vms: Vec::new(),
    };
    let outs = sim::simulate(trace, m, &all, &record, &|n| pb.inc(n));
    pb.finish_and_clear();
    let held_of = |label: &str| {
        all.iter()
            .zip(&outs)
            .find(|(p, _)| p.label == label)
            .map(|(_, o)| o.tally.held_ps / PAGES_PER_GIB as f64 / 3600.0)
            .unwrap_or(0.0)
    };
    let (st, or) = (held_of("static"), held_of("oracle"));
    let rows: Vec<Row> = pols
        .iter()
        .zip(&outs)
        .map(|(p, o)| Row::new(&p.label, &o.tally, st, or, m.pageout_ns, m.pagein_ns))
        .collect();
    charts(&cli.out, suffix, pols, &outs, &rows)?;
    Ok(rows)
}

fn charts(
    out: &Path,
    suffix: &str,
    pols: &[PolicySpec],
    outs: &[run::Outcome],
    rows: &[Row],
) -> Result<(), Error> {
    let Some(first) = outs.first() else {
        return Ok(());
    };
    for (j, rec) in first.recordings.iter().enumerate() {
        let runs: Vec<(&str, &run::Recording)> = pols
            .iter()
            .zip(outs)
            .filter_map(|(p, o)| o.recordings.get(j).map(|r| (p.label.as_str(), r)))
            .collect();
        let safe: String = rec
            .vm
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = out.join(format!("vm-{safe}{suffix}.svg"));
        sim::chart::vm_chart(&path, &rec.vm, &runs)?;
    }
    sim::chart::scorecard_chart(&out.join(format!("scorecard{suffix}.svg")), rows)?;
    Ok(())
}

/// `--phases`: the prediction of the frames held at the end of each phase.
fn predict(cli: &Cli, m: &Model, pols: &[PolicySpec], spec: &str) -> Result<(), Error> {
    let setup = Setup {
        ram_kib: cli.ram_mib.checked_mul(1024).ok_or("--ram-mib overflows")?,
        base_committed_kib: cli.base_committed_kib,
        op_s: cli.op_s,
        passes: cli.passes,
        tail_s: cli.tail_s,
    };
    let prog = phases::program(spec, &setup)?;
    println!("policy,pass,phase,name,start_s,end_s,reserved_mib,needed_mib,held_mib");
    for p in pols {
        let out = run::run(
            &prog.trace,
            m,
            p,
            &Record {
                trace_vms: vec![0],
                ..Record::default()
            },
            &|_| {},
        );
        for mark in &prog.marks {
            if mark.end_s == mark.start_s {
                continue;
            }
            let Some(t) = sim::run::settled(&out.ticks[0], mark.end_s, m.tick_s) else {
                continue;
            };
            println!(
                "{},{},{},{},{},{},{:.1},{:.1},{:.1}",
                p.label,
                mark.pass,
                mark.index,
                mark.name,
                mark.start_s,
                mark.end_s,
                mark.reserved_pages as f64 / PAGES_PER_MIB as f64,
                t.needed_pages as f64 / PAGES_PER_MIB as f64,
                t.held_end_pages as f64 / PAGES_PER_MIB as f64,
            );
        }
    }
    Ok(())
}
