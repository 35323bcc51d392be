//! `cargo xtask`: host-side orchestration for selfballoon.
//!
//! Tiers of testing, from cheap to real:
//!   1. `qemu`   the kernel alone under QEMU (no hypervisor);
//!   2. `dom0`   Xen in QEMU with our kernel as the PVH dom0;
//!   3. `nested` Xen in QEMU with a Debian dom0 running the toolstack, our
//!      kernel created as a domU by `xl create` from a scenario script.
//!
//! `test` runs them all, `demo` shows the guest working in nested Xen.

mod common;
#[cfg(test)]
mod drift;
mod fuzz;
mod image;
mod nested;
mod plot;
mod qemu;
mod runner;
mod sim;
mod swaprun;
mod xen_tmem;

use anyhow::{anyhow, bail, Result};
use selfballoon_protocol::{console, ResultLine, TestResult};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  qemu  [opts] [--] <cmdline...>   tier 1: boot the kernel in QEMU (default cmdline: selftest)
  dom0  [opts] [--] <cmdline...>   tier 2: Xen in QEMU, the kernel as PVH dom0
                                   (--xen tmem: Xen 4.12.4 with tmem=1, dom0 capped at 128 MiB)
  image [--rebuild]                build (or show the cached) nested rig image
  nested <scenario> [opts]         tier 3: run tests/nested/<scenario>.sh in nested Xen
  nested shell [opts]              nested Xen with a shell on dom0's console
  plot <csv...>                    draw SVG charts next to rig CSVs
  test [--no-nested]               all tiers: host tests, build, qemu, dom0, nested scenarios
  demo                             build everything, show the guest in nested Xen, chart it;
                                   then `density` (short) with selfballoonctl top
  sim [sim options]                the policy simulator on traces (`cargo xtask sim --help`)
  fuzz [--target T] [--runs N]     coverage-guided fuzzing (libFuzzer) of the parsers of what
                                   other domains write: N inputs per target (default 1000000)
  fuzz --short                     the fuzz step of `test`: 50000 inputs per target, fixed seed

options:
  --timeout S     give up after S seconds
  --kernel PATH   use this kernel ELF instead of building one
  --no-build      use the existing release build (no `cargo build --release`)
  --xen V         dom0: which Xen, 4.17 (the host's, default) or tmem (4.12.4 from ../shared/xen-tmem)
  --dom0-mem S    dom0: Xen's dom0_mem= instead of the tier's (e.g. 128M,max:256M)
  --qemu-mem M    dom0: QEMU's RAM in MiB instead of the tier's (2048; tmem: 1024)
  --tcg M         nested: QEMU's TCG threading, single (default; see nested::Tcg) or multi
  -v, --verbose   show all serial output, not only the interesting lines
  --target T      fuzz: only this target (fuzz/fuzz_targets/T.rs)
  --runs N        fuzz: inputs per target
";

/// Parsed common options plus the words left over.
#[derive(Debug, Default)]
struct Args {
    timeout: Option<Duration>,
    kernel: Option<PathBuf>,
    no_build: bool,
    verbose: bool,
    rebuild: bool,
    no_nested: bool,
    xen: Option<qemu::Xen>,
    tcg: nested::Tcg,
    dom0_mem: Option<String>,
    qemu_mem_mib: Option<u32>,
    fuzz_target: Option<String>,
    runs: Option<u64>,
    short: bool,
    words: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "--" => {
                a.words.extend(it.by_ref().cloned());
                break;
            }
            "--timeout" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--timeout needs seconds"))?;
                let s: u64 = v
                    .parse()
                    .map_err(|_| anyhow!("--timeout: '{v}' is not a number of seconds"))?;
                a.timeout = Some(Duration::from_secs(s));
            }
            "--kernel" => {
                let v = it.next().ok_or_else(|| anyhow!("--kernel needs a path"))?;
                a.kernel = Some(PathBuf::from(v));
            }
            "--no-build" => a.no_build = true,
            "--xen" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--xen needs 4.17 or tmem"))?;
                a.xen = Some(
                    qemu::Xen::parse(v)
                        .ok_or_else(|| anyhow!("--xen: '{v}' is not 4.17 or tmem"))?,
                );
            }
            "--dom0-mem" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--dom0-mem needs Xen's dom0_mem value"))?;
                if v.is_empty() || v.contains(char::is_whitespace) {
                    bail!("--dom0-mem: '{v}' is not one word");
                }
                a.dom0_mem = Some(v.clone());
            }
            "--qemu-mem" => {
                let v = it.next().ok_or_else(|| anyhow!("--qemu-mem needs MiB"))?;
                a.qemu_mem_mib =
                    Some(v.parse().ok().filter(|&m| m >= 64).ok_or_else(|| {
                        anyhow!("--qemu-mem: '{v}' is not a size in MiB (>= 64)")
                    })?);
            }
            "--tcg" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--tcg needs single or multi"))?;
                a.tcg = nested::Tcg::parse(v)
                    .ok_or_else(|| anyhow!("--tcg: '{v}' is not single or multi"))?;
            }
            "--target" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--target needs a fuzz target"))?;
                a.fuzz_target = Some(v.clone());
            }
            "--runs" => {
                let v = it.next().ok_or_else(|| anyhow!("--runs needs a count"))?;
                a.runs = Some(
                    v.parse()
                        .map_err(|_| anyhow!("--runs: '{v}' is not a number of inputs"))?,
                );
            }
            "--short" => a.short = true,
            "-v" | "--verbose" => a.verbose = true,
            "--rebuild" => a.rebuild = true,
            "--no-nested" => a.no_nested = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            o if o.starts_with("--") => bail!("unknown option {o}\n\n{USAGE}"),
            _ => a.words.push(w.clone()),
        }
    }
    Ok(a)
}

fn qemu_opts(a: &Args, default_timeout: u64) -> qemu::Opts {
    qemu::Opts {
        kernel: a.kernel.clone(),
        build: !a.no_build,
        timeout: a.timeout.unwrap_or(Duration::from_secs(default_timeout)),
        verbose: a.verbose,
        cmdline: if a.words.is_empty() {
            "selftest".to_string()
        } else {
            a.words.join(" ")
        },
        dom0_mem: a.dom0_mem.clone(),
        qemu_mem_mib: a.qemu_mem_mib,
    }
}

fn nested_opts(a: &Args, scenario: &str) -> nested::Opts {
    nested::Opts {
        scenario: scenario.to_string(),
        tcg: a.tcg,
        timeout: a.timeout,
        kernel: a.kernel.clone(),
        build: !a.no_build,
        verbose: a.verbose,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = real_main(&argv) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(argv: &[String]) -> Result<()> {
    let Some((cmd, rest)) = argv.split_first() else {
        print!("{USAGE}");
        bail!("no command");
    };
    if cmd == "sim" {
        return sim::run(rest);
    }
    let a = parse(rest)?;
    match cmd.as_str() {
        "qemu" => qemu::tier1(&qemu_opts(&a, 60)),
        "dom0" => {
            qemu::tier2_on(&qemu_opts(&a, 120), a.xen.unwrap_or(qemu::Xen::Debian)).map(|_| ())
        }
        "image" => {
            common::host_deps()?;
            image::cmd(a.rebuild)
        }
        "nested" => {
            let scenario = a
                .words
                .first()
                .ok_or_else(|| anyhow!("nested: which scenario? ({})", list_scenarios()))?;
            if scenario == "shell" {
                return nested::shell(&nested_opts(&a, "shell"));
            }
            let out = nested::run(&nested_opts(&a, scenario))?;
            if !out.passed {
                bail!("scenario {scenario} failed: {}", out.summary);
            }
            Ok(())
        }
        "plot" => {
            if a.words.is_empty() {
                bail!("plot: which CSV files?");
            }
            for c in &a.words {
                let csv = PathBuf::from(c);
                let svg = csv.with_extension("svg");
                plot::render(&csv, &svg)?;
                println!("{}", svg.display());
            }
            Ok(())
        }
        "test" => test_all(&a),
        "fuzz" => fuzz::run(&fuzz::Opts {
            target: a.fuzz_target.clone(),
            runs: a.runs.unwrap_or(if a.short {
                fuzz::SHORT_RUNS
            } else {
                fuzz::LONG_RUNS
            }),
            short: a.short,
        })
        .map(drop),
        "demo" => demo(&a),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other}\n\n{USAGE}"),
    }
}

fn list_scenarios() -> String {
    nested::scenarios()
        .map(|v| v.join(", "))
        .unwrap_or_else(|e| format!("{e:#}"))
}

/// One step of `cargo xtask test`.
struct Outcome {
    name: String,
    ok: bool,
    secs: f64,
    note: String,
}

fn step(results: &mut Vec<Outcome>, name: &str, f: impl FnOnce() -> Result<String>) -> bool {
    println!("\n===== {name} =====");
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    let (ok, note) = match r {
        Ok(n) => (true, n),
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("xtask test: {name} FAILED: {msg}");
            (false, msg.lines().next().unwrap_or("").to_string())
        }
    };
    results.push(Outcome {
        name: name.to_string(),
        ok,
        secs,
        note,
    });
    ok
}

fn test_all(a: &Args) -> Result<()> {
    let total = Instant::now();
    common::host_deps()?;
    let mut res = Vec::new();
    step(&mut res, "host: cargo test", || {
        common::run_status(common::cargo().args(["test", "--workspace"]), "cargo test")?;
        Ok(String::new())
    });
    // Coverage-guided, a fixed small count per target (the long form is
    // `cargo xtask fuzz`); replays every kept crash input too.
    step(&mut res, "host: fuzz (short)", || {
        fuzz::run(&fuzz::Opts {
            target: None,
            runs: fuzz::SHORT_RUNS,
            short: true,
        })
    });
    let built = step(&mut res, "build: cargo build --release", || {
        let k = common::build_kernel()?;
        common::build_ctl()?;
        Ok(k.display().to_string())
    });
    let kopts = |timeout| qemu::Opts {
        build: false,
        ..qemu_opts(a, timeout)
    };
    if built {
        step(&mut res, "tier 1: qemu selftest", || {
            qemu::tier1(&kopts(60)).map(|_| String::new())
        });
        // A kernel that faults must say so (vector, error code, RIP) and
        // end with ERROR, not hang or reset; a failed check ends in FAILURE.
        let fatal = |name: &str| format!("{}{name}", console::FATAL_TRAP);
        let injected = format!("{}{}", console::SELFTEST_FAIL, console::INJECTED_CHECK);
        for (word, result, shows) in [
            ("pf", TestResult::Error, fatal("#PF")),
            ("ud", TestResult::Error, fatal("#UD")),
            ("panic", TestResult::Error, console::PANIC.to_string()),
            // Overflowing the boot stack hits its unmapped guard page.
            ("stack", TestResult::Error, fatal("#PF")),
            ("fail", TestResult::Failure, injected),
        ] {
            step(
                &mut res,
                &format!("tier 1: qemu crash={word} reported"),
                || {
                    let o = qemu::Opts {
                        cmdline: format!("selftest crash={word}"),
                        ..kopts(60)
                    };
                    match qemu::tier1(&o) {
                        Ok(()) => bail!("crash={word} ended in SUCCESS"),
                        Err(e) => {
                            let text = format!("{e:#}");
                            if text.contains(&ResultLine(result).to_string())
                                && text.contains(&shows)
                            {
                                Ok(format!("{result} with '{shows}'"))
                            } else {
                                bail!("crash={word} not reported as expected: {text}")
                            }
                        }
                    }
                },
            );
        }
        step(&mut res, "tier 2: dom0 selftest", || {
            qemu::tier2(&kopts(180)).map(|_| String::new())
        });
        step(&mut res, "tier 2: dom0 on Xen 4.12.4 with tmem", || {
            let o = qemu::Opts {
                cmdline: "selftest".to_string(),
                ..kopts(300)
            };
            let log = qemu::tier2_on(&o, qemu::Xen::Tmem)?;
            tmem_checks_passed(&log)
        });
        for r in &swaprun::RUNS {
            step(&mut res, r.name, || swaprun::run(r, &kopts(60)));
        }
    }
    if !a.no_nested {
        let have_image = step(&mut res, "tier 3: dom0 image", || {
            image::ensure(false).map(|d| d.display().to_string())
        });
        if have_image {
            // The rig must turn a guest that crashes, hangs or reports a
            // wrong result into a failed run, within the scenario's
            // timeout, naming the cause; the guest's console (which the
            // runner prints on failure) must hold the guest's last words.
            let failure_line = ResultLine(TestResult::Failure).to_string();
            let fatal_pf = format!("{}#PF", console::FATAL_TRAP);
            let hang_requested = format!("crash=Hang{}", console::CRASH_REQUESTED);
            let injected = format!("{}{}", console::SELFTEST_FAIL, console::INJECTED_CHECK);
            for (what, file, guest, says, console_shows) in [
                (
                    "crashing",
                    "guest-crash",
                    "crash",
                    "crash",
                    fatal_pf.as_str(),
                ),
                (
                    "hanging",
                    "guest-hang",
                    "hang",
                    "timeout",
                    hang_requested.as_str(),
                ),
                (
                    "failing",
                    "guest-failure",
                    "failure",
                    failure_line.as_str(),
                    injected.as_str(),
                ),
            ] {
                step(
                    &mut res,
                    &format!("tier 3: a {what} guest fails the run"),
                    || {
                        let o = nested::Opts {
                            build: false,
                            ..nested_opts(a, &format!("tests/nested/expect-fail/{file}.sh"))
                        };
                        let out = nested::run(&o)?;
                        let console = common::root()
                            .join(&out.dir)
                            .join(format!("console/guest-{guest}.log"));
                        let text = std::fs::read_to_string(&console).unwrap_or_default();
                        if out.passed {
                            bail!("the {what} guest passed: {}", out.summary)
                        } else if !out.summary.contains(says) || !text.contains(console_shows) {
                            bail!(
                                "failure not reported with '{says}' and '{console_shows}': {} ({})",
                                out.summary,
                                nested::rel(&out.dir)
                            )
                        } else {
                            Ok(out.summary)
                        }
                    },
                );
            }
            for s in nested::scenarios()? {
                step(&mut res, &format!("tier 3: nested {s}"), || {
                    let o = nested::Opts {
                        build: false,
                        ..nested_opts(a, &s)
                    };
                    let out = nested::run(&o)?;
                    if out.passed {
                        Ok(nested::rel(&out.dir))
                    } else {
                        bail!("{} — logs: {}", out.summary, nested::rel(&out.dir))
                    }
                });
            }
        }
    }
    println!(
        "\n===== summary ({:.0}s) =====",
        total.elapsed().as_secs_f64()
    );
    for r in &res {
        println!(
            "  {}  {:32} {:7.1}s  {}",
            if r.ok { "PASS" } else { "FAIL" },
            r.name,
            r.secs,
            r.note
        );
    }
    let passed = res.iter().filter(|r| r.ok).count();
    let failed = res.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Both tmem checks must have run and passed on the tmem hypervisor (a
/// SKIP would mean the probe found no tmem). Returns the figures.
fn tmem_checks_passed(log: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(log).map_err(|e| anyhow!("cannot read {}: {e}", log.display()))?;
    for check in ["tmem-persistent", "tmem-ephemeral"] {
        let pass = format!("selftest: PASS {check}:");
        if !text.lines().any(|l| l.contains(&pass)) {
            bail!(
                "{check} did not PASS on Xen 4.12.4 with tmem (log: {})",
                log.display()
            );
        }
    }
    // Xen splits long lines; the figures follow "ns per put".
    let flat: String = text
        .lines()
        .filter_map(|l| l.split_once("(d0) ").map(|(_, r)| r))
        .map(|r| r.split_once("] ").map_or(r, |(_, x)| x))
        .collect::<Vec<_>>()
        .join("");
    Ok(flat
        .split_once("ns per put")
        .map(|(_, r)| format!("ns per put{}", r.find(')').map_or(r, |i| &r[..=i])))
        .unwrap_or_default())
}

fn demo(a: &Args) -> Result<()> {
    common::host_deps()?;
    let o = nested::Opts {
        build: !a.no_build,
        ..nested_opts(a, "demo")
    };
    let out = nested::run(&nested::Opts {
        scenario: common::root()
            .join("tests/nested/demo.sh")
            .display()
            .to_string(),
        ..o
    })?;
    println!("\ndemo results: {}", nested::rel(&out.dir));
    if !out.passed {
        bail!("demo failed: {}", out.summary);
    }
    // Then many guests on one host: the short form of `density`, with
    // `selfballoonctl top`'s table on the terminal as it runs.
    let dense = nested::run(&nested::Opts {
        build: false,
        ..nested_opts(a, "density")
    })?;
    println!(
        "\ndensity results: {} (chart: density.svg)",
        nested::rel(&dense.dir)
    );
    if !dense.passed {
        bail!("density demo failed: {}", dense.summary);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmem_step_needs_both_checks_and_reads_the_figures() {
        let dir = std::env::temp_dir().join(format!("xtask-tmem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("serial.log");
        let pass = "(d0) [    9.1] selftest: PASS tmem-persistent: 2000 pages put, 1000\n\
                    (d0) [    9.2]  absent (-EEMPTY: 1000); ns per put 5 / get 6 via xen-tmem, \
                    zpool 7 / 8 (same run)\n\
                    (d0) [    9.4] selftest: PASS tmem-ephemeral: 256 pages\n";
        std::fs::write(&log, pass).unwrap();
        assert_eq!(
            tmem_checks_passed(&log).unwrap(),
            "ns per put 5 / get 6 via xen-tmem, zpool 7 / 8 (same run)"
        );
        let skip = pass.replace("PASS tmem-ephemeral", "SKIP tmem-ephemeral");
        std::fs::write(&log, skip).unwrap();
        assert!(tmem_checks_passed(&log).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
