//! `cargo xtask fuzz`: coverage-guided fuzzing of the parsers that read
//! what another domain wrote (the targets in `fuzz/fuzz_targets/`, their
//! checks in `fuzz/src/`).
//!
//! libFuzzer on stable Rust: `libfuzzer-sys` builds libFuzzer itself (it
//! needs a C++ compiler) and the instrumentation is what `cargo fuzz
//! build --sanitizer none` asks of rustc, the SanitizerCoverage pass and
//! its options ([`SANCOV_FLAGS`]); no nightly and no sanitizer runtime
//! are needed. The build goes to its own target directory
//! (`target/fuzz`), so the instrumented crates never mix with the normal
//! build, and `RUSTFLAGS` reach target crates only (the workspace sets
//! `[build] target`), not build scripts.
//!
//! Each target runs a fixed number of inputs (`-runs`), starting from its
//! seeds (`fuzz/seeds/<t>/`) and every crash kept so far
//! (`fuzz/regressions/<t>/`), and reports inputs executed and crashes
//! found. Crash inputs land in `target/fuzz/artifacts/<t>/`; once the bug
//! is fixed, the input goes to `fuzz/regressions/<t>/` (replayed by every
//! run and by `cargo test`).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common;

/// Inputs per target of `cargo xtask fuzz` unless `--runs` says otherwise.
pub const LONG_RUNS: u64 = 1_000_000;
/// Inputs per target in `cargo xtask test` (a fixed count, the same
/// libFuzzer seed every time, a fresh working corpus).
pub const SHORT_RUNS: u64 = 50_000;

/// rustc flags for SanitizerCoverage as libFuzzer uses it, plus the
/// `fuzzing` cfg `cargo fuzz` sets.
pub const SANCOV_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
];

/// What to fuzz.
#[derive(Debug, Clone)]
pub struct Opts {
    /// One target, or all.
    pub target: Option<String>,
    /// Inputs per target.
    pub runs: u64,
    /// The short form: fixed libFuzzer seed and a fresh working corpus,
    /// so every run does the same work.
    pub short: bool,
}

/// One target's run.
#[derive(Debug)]
pub struct TargetRun {
    pub name: String,
    pub inputs: u64,
    pub secs: f64,
    pub crashes: Vec<PathBuf>,
}

fn fuzz_root() -> PathBuf {
    common::root().join("fuzz")
}

/// Where the instrumented build and the run state go.
fn work_dir() -> PathBuf {
    common::target_dir().join("fuzz")
}

/// The targets: one binary per file in `fuzz/fuzz_targets/`.
pub fn targets() -> Result<Vec<String>> {
    let dir = fuzz_root().join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(String::from)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Builds every target with coverage instrumentation; returns the
/// directory holding the binaries.
pub fn build() -> Result<PathBuf> {
    if Command::new("c++")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        bail!("no C++ compiler (c++): libFuzzer needs one (tests/nested/install-host-deps.sh installs g++)");
    }
    eprintln!("xtask: building the fuzz targets (libFuzzer, SanitizerCoverage)");
    let dir = work_dir();
    common::run_status(
        common::cargo()
            .args([
                "build",
                "--package",
                "selfballoon-fuzz",
                "--features",
                "libfuzzer",
                "--bins",
                "--profile",
                "fuzz",
                "--target-dir",
            ])
            .arg(&dir)
            .env("RUSTFLAGS", SANCOV_FLAGS.join(" "))
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
        "cargo build (fuzz targets)",
    )?;
    Ok(dir.join("x86_64-unknown-linux-gnu/fuzz"))
}

/// `stat::number_of_executed_units` from libFuzzer's final stats.
pub fn executed_units(log: &str) -> Option<u64> {
    log.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .find_map(|v| v.trim().parse().ok())
}

fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn run_one(bins: &Path, name: &str, o: &Opts) -> Result<TargetRun> {
    let work = work_dir();
    let corpus = work
        .join(if o.short { "corpus-short" } else { "corpus" })
        .join(name);
    if o.short {
        let _ = std::fs::remove_dir_all(&corpus);
    }
    let artifacts = work.join("artifacts").join(name);
    let logs = work.join("logs");
    for d in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let before = files_in(&artifacts);
    let log_path = logs.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;

    let mut cmd = Command::new(bins.join(name));
    cmd.arg(format!("-runs={}", o.runs))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-max_len=8192");
    if o.short {
        cmd.arg("-seed=1");
    }
    cmd.arg(&corpus);
    for kind in ["seeds", "regressions"] {
        let d = fuzz_root().join(kind).join(name);
        if d.is_dir() {
            cmd.arg(d);
        }
    }
    let t = Instant::now();
    let status = cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("cannot run fuzz target {name}"))?;
    let secs = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let crashes: Vec<PathBuf> = files_in(&artifacts).difference(&before).cloned().collect();
    let inputs = executed_units(&text).unwrap_or(0);
    println!(
        "fuzz {name:11} {inputs:>9} inputs in {secs:6.1}s ({:>7.0}/s), {} crash{}",
        inputs as f64 / secs.max(1e-3),
        crashes.len(),
        if crashes.len() == 1 { "" } else { "es" }
    );
    if !status.success() && crashes.is_empty() {
        bail!(
            "fuzz target {name} failed ({status}) without a crash input; log {}:\n{}",
            log_path.display(),
            common::file_tail(&log_path, 30)
        );
    }
    for c in &crashes {
        println!(
            "  crash input: {} (log {})",
            c.display(),
            log_path.display()
        );
        println!("  replay: {} {}", bins.join(name).display(), c.display());
    }
    Ok(TargetRun {
        name: name.to_string(),
        inputs,
        secs,
        crashes,
    })
}

/// Builds and runs the targets; returns a one-line summary, or an error
/// when a target crashed.
pub fn run(o: &Opts) -> Result<String> {
    let all = targets()?;
    let chosen: Vec<String> = match &o.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target {t} (targets: {})", all.join(", ")),
        None => all,
    };
    let bins = build()?;
    let mut runs = Vec::new();
    for t in &chosen {
        runs.push(run_one(&bins, t, o)?);
    }
    let inputs: u64 = runs.iter().map(|r| r.inputs).sum();
    let secs: f64 = runs.iter().map(|r| r.secs).sum();
    let crashed: Vec<&str> = runs
        .iter()
        .filter(|r| !r.crashes.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let summary = format!(
        "{} target{}, {inputs} inputs in {secs:.0}s, {} crash{}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        crashed.len(),
        if crashed.len() == 1 { "" } else { "es" }
    );
    println!("fuzz: {summary}");
    if !crashed.is_empty() {
        return Err(anyhow!(
            "{summary} (in {}): fix the parser, add a unit test next to it, and keep the input in fuzz/regressions/<target>/",
            crashed.join(", ")
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_stats() {
        let log = "#20000\tDONE   cov: 335 ft: 793 corp: 92/23Kb exec/s: 0 rss: 27Mb\n\
                   Done 20000 runs in 1 second(s)\n\
                   stat::number_of_executed_units: 20000\n\
                   stat::average_exec_per_sec:     0\n";
        assert_eq!(executed_units(log), Some(20000));
        assert_eq!(
            executed_units("==1== ERROR: libFuzzer: deadly signal\n"),
            None
        );
    }

    #[test]
    fn every_target_has_a_bin_entry() {
        let manifest = std::fs::read_to_string(fuzz_root().join("Cargo.toml")).unwrap();
        let names = targets().unwrap();
        assert!(names.len() >= 8, "{names:?}");
        for t in names {
            assert!(
                manifest.contains(&format!("path = \"fuzz_targets/{t}.rs\"")),
                "fuzz/Cargo.toml has no [[bin]] for {t}"
            );
        }
    }
}
