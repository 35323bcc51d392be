//! Tier 3: Xen 4.17 in QEMU with a Debian dom0 that runs a scenario
//! (tests/nested/<scenario>.sh) with the helpers of tests/nested/lib.sh.
//!
//! The run directory `results/<scenario>-<stamp>/` is shared with dom0
//! over 9p (tag `rig`, mounted at /rig) and receives every result: the
//! serial log, guest console logs (xenconsoled writes them there), CSVs,
//! charts, metrics and the verdict file `result`.

use crate::common;
use crate::image;
use crate::runner::{self, End, Verdict};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use selfballoon_protocol::rig::{
    DOM0_RUN_DIR, JOB_SCRIPT, LOG_PREFIX, METRICS_FILE, PROTOCOL_SCRIPT, SHARE_TAG, STEP_PREFIX,
};
use selfballoon_protocol::{
    parse_verdict, shell, EmulatorFaults, TestResult, Verdict as ScenarioVerdict, VerdictError,
    EMULATOR_FAULT_FILE, MAX_FAULT_BYTES, MAX_VERDICT_BYTES, VERDICT_FILE,
};

/// Xen's command line in the nested rig: the Debian kernel as PV dom0.
const XEN_ARGS: &str = "loglvl=all guest_loglvl=all console=com1 noreboot \
     console_timestamps=boot dom0_mem=512M,max:512M";
/// dom0's kernel command line (its console is Xen's, i.e. the serial).
const DOM0_ARGS: &str = "console=hvc0 loglevel=4";
/// QEMU's RAM for Xen: 512 MiB go to dom0, the rest to guests.
const QEMU_MEM_MIB: &str = "2048";
/// Default scenario timeout when the script has no `# timeout: N` line.
const DEFAULT_TIMEOUT_S: u64 = 300;

/// How QEMU's TCG runs the nested rig's two vCPUs.
///
/// Measured with a 90-second abuse load (xenstore writes as fast as dom0
/// makes them, a verifying workload): multi-threaded TCG lost the guest to
/// a triple fault in 3 of 6 runs, one host thread for both vCPUs in 0 of
/// 5, at about the same wall time; CI then lost `stress` once to the same
/// kind of fault under threaded TCG. So one thread is the rig's default,
/// and `--tcg multi` stays for measuring the difference. The density and
/// hostoom scenarios agree (README, "fault rate per TCG mode"): 6 guests
/// lost in ~50 guest-minutes threaded, none in ~4.5 guest-hours single.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tcg {
    #[default]
    Single,
    Multi,
}

impl Tcg {
    /// `--tcg` values.
    pub fn parse(s: &str) -> Option<Tcg> {
        [Tcg::Single, Tcg::Multi]
            .into_iter()
            .find(|t| t.name() == s)
    }

    /// The `--tcg` value naming this mode.
    pub fn name(self) -> &'static str {
        match self {
            Tcg::Single => "single",
            Tcg::Multi => "multi",
        }
    }

    /// QEMU's `-accel` argument.
    fn accel(self) -> &'static str {
        match self {
            Tcg::Single => "tcg,thread=single",
            Tcg::Multi => "tcg,thread=multi",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Opts {
    pub scenario: String,
    /// TCG threading of the rig's QEMU.
    pub tcg: Tcg,
    pub timeout: Option<Duration>,
    pub kernel: Option<PathBuf>,
    /// Build the kernel first (otherwise use the existing ELF, if any).
    pub build: bool,
    pub verbose: bool,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub passed: bool,
    pub summary: String,
}

/// Variables of the host's environment a scenario may read (its long
/// forms: `ABUSE_S=600 cargo xtask nested abuse`). `job.sh` exports the
/// ones set; a name ending in `_S` is seconds the scenario runs longer,
/// added to its timeout.
const SCENARIO_ENV: [&str; 4] = ["ABUSE_S", "DENSITY_S", "DENSITY_N", "DENSITY_LX"];

/// The forwarded variables that are set, from `get` (the environment).
/// A value is at most 64 characters of `[A-Za-z0-9_.,:%=-]`, so that it
/// needs no quoting in `job.sh`; any other value is an error.
fn scenario_env(get: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for k in SCENARIO_ENV {
        let Some(v) = get(k) else { continue };
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.,:%=-".contains(c));
        if !ok {
            bail!("{k}={v:?}: a scenario variable is 1-64 characters of [A-Za-z0-9_.,:%=-]");
        }
        out.push((k.to_string(), v));
    }
    Ok(out)
}

/// Seconds the forwarded `*_S` variables add to a scenario's timeout.
fn extra_seconds(env: &[(String, String)]) -> Result<u64> {
    env.iter()
        .filter(|(k, _)| k.ends_with("_S"))
        .try_fold(0u64, |acc, (k, v)| {
            let s: u64 = v
                .parse()
                .with_context(|| format!("{k}={v}: not a number of seconds"))?;
            Ok(acc.saturating_add(s))
        })
}

/// Files in tests/nested/ that are not scenarios.
const NOT_SCENARIOS: [&str; 3] = ["lib", "install-host-deps", "demo"];

/// Scenario names in tests/nested/, the two basic ones first.
pub fn scenarios() -> Result<Vec<String>> {
    let dir = common::root().join("tests/nested");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".sh").map(str::to_string)
        })
        .filter(|n| !NOT_SCENARIOS.contains(&n.as_str()))
        .collect();
    let rank = |n: &str| match n {
        "smoke" => 0,
        "linux-baseline" => 1,
        "balloon" => 2,
        "selfballoon" => 3,
        "stress" => 4,
        _ => 5,
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    Ok(names)
}

fn scenario_path(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    let path = if name.ends_with(".sh") && p.is_file() {
        p.to_path_buf()
    } else {
        common::root()
            .join("tests/nested")
            .join(format!("{name}.sh"))
    };
    if !path.is_file() {
        let known = scenarios().unwrap_or_default().join(", ");
        bail!("no scenario {} (known: {known})", path.display());
    }
    Ok(path)
}

/// `# timeout: N` (seconds) in the scenario's header comments.
fn declared_timeout(script: &str) -> Option<Duration> {
    script
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("timeout:"))
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Lays out the run directory: the protocol for the shell side, lib,
/// scenario, configs, kernel, job.
fn prepare(
    dir: &Path,
    scenario: &Path,
    name: &str,
    kernel: Option<&Path>,
    ctl: Option<&Path>,
    env: &[(String, String)],
) -> Result<()> {
    let root = common::root();
    std::fs::create_dir_all(dir.join("cfg"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("console"))?;
    // Generated here for every run (never checked in): dom0's /init and
    // lib.sh source it, so the shell side always speaks this xtask's
    // protocol and the cached dom0 image never needs rebuilding for it.
    let protocol = dir.join(PROTOCOL_SCRIPT);
    std::fs::write(&protocol, shell::Script.to_string())
        .with_context(|| format!("cannot write {}", protocol.display()))?;
    copy(&root.join("tests/nested/lib.sh"), &dir.join("lib.sh"))?;
    copy(scenario, &dir.join("scenario.sh"))?;
    let cfgdir = root.join("xen-config");
    for e in std::fs::read_dir(&cfgdir)
        .with_context(|| format!("cannot read {}", cfgdir.display()))?
        .filter_map(|e| e.ok())
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "cfg") {
            copy(&p, &dir.join("cfg").join(e.file_name()))?;
        }
    }
    if let Some(k) = kernel {
        copy(k, &dir.join("selfballoon"))?;
        write_symbol_map(k, &dir.join("selfballoon.map"));
    }
    if let Some(c) = ctl {
        copy(c, &dir.join("selfballoonctl"))?;
    }
    // dom0's init runs `sh /rig/job.sh`; the helpers want bash.
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    let job = format!(
        "#!/bin/sh\n# Written by cargo xtask nested; run by dom0's /init.\n\
         export RIG_SCENARIO='{name}' RIG_DIR={DOM0_RUN_DIR} RIG_IMG=/img\n\
         {exports}exec bash -c '. {DOM0_RUN_DIR}/lib.sh && rig_run {DOM0_RUN_DIR}/scenario.sh'\n"
    );
    std::fs::write(dir.join(JOB_SCRIPT), job)?;
    Ok(())
}

/// The kernel's symbols in System.map form (`nm -n`), for xenctx's
/// post-mortem. Best effort: without `nm` the dump shows bare addresses.
fn write_symbol_map(kernel: &Path, to: &Path) {
    match Command::new("nm").arg("-n").arg("-C").arg(kernel).output() {
        Ok(o) if o.status.success() => {
            if let Err(e) = std::fs::write(to, o.stdout) {
                eprintln!("xtask: cannot write {}: {e}", to.display());
            }
        }
        Ok(o) => eprintln!(
            "xtask: nm {} failed: {}",
            kernel.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("xtask: no symbol map (nm: {e})"),
    }
}

fn qemu_command(img: &Path, share: Option<&Path>, interactive: bool, tcg: Tcg) -> Command {
    let e = |p: &Path| common::qemu_list_escape(&p.to_string_lossy());
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        tcg.accel(),
        "-machine",
        "q35",
        "-cpu",
        "qemu64,+svm,+npt",
    ])
    .args(["-m", QEMU_MEM_MIB, "-smp", "2", "-no-reboot"]);
    if interactive {
        cmd.arg("-nographic");
    } else {
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
    }
    cmd.arg("-kernel")
        .arg(img.join("xen"))
        .args(["-append", XEN_ARGS, "-initrd"])
        .arg(format!(
            "{} {DOM0_ARGS},{}",
            e(&img.join("vmlinuz")),
            e(&img.join("dom0.cpio.gz"))
        ))
        .arg("-device")
        .arg(common::debug_exit_device());
    if let Some(s) = share {
        cmd.arg("-virtfs").arg(format!(
            "local,path={},mount_tag={SHARE_TAG},security_model=none,id={SHARE_TAG}",
            e(s)
        ));
    }
    cmd.arg("-virtfs").arg(format!(
        "local,path={},mount_tag=img,security_model=none,readonly=on,id=img",
        e(img)
    ));
    cmd
}

/// Resolves the guest kernel for a run: explicit, freshly built, or
/// whatever is in the target dir (none is fine for Linux-only scenarios).
fn guest_kernel(o: &Opts) -> Result<Option<PathBuf>> {
    if o.kernel.is_some() || o.build {
        return common::kernel(o.kernel.as_deref(), o.build).map(Some);
    }
    let k = common::kernel_path();
    if k.is_file() {
        Ok(Some(k))
    } else {
        eprintln!(
            "xtask nested: no kernel at {} (only Linux guests will work)",
            k.display()
        );
        Ok(None)
    }
}

/// The dom0 tool for a run (/rig/selfballoonctl): freshly built with the
/// kernel, else whatever is in the target dir (none: scenarios that use
/// it fail saying so).
fn ctl_tool(o: &Opts) -> Result<Option<PathBuf>> {
    if o.build {
        return common::build_ctl().map(Some);
    }
    let p = common::ctl_path();
    Ok(p.is_file().then_some(p))
}

/// `cargo xtask nested <scenario>`: runs it and reports. Errors only on
/// problems of the rig itself; a failed scenario is `passed: false`.
///
/// A run that failed because QEMU's emulated SVM corrupted a guest's
/// state (the guest's saved registers are Xen's own; the rig writes
/// `emulator-fault`) is run once more. Both runs are reported, and the
/// summary of a pass says it needed the second run; any other failure,
/// and a second emulator fault, stand.
pub fn run(o: &Opts) -> Result<Outcome> {
    let first = run_once(o)?;
    if first.passed {
        return Ok(first);
    }
    let path = first.dir.join(EMULATOR_FAULT_FILE);
    let bytes = match common::read_bounded(&path, MAX_FAULT_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(first),
        Err(e) => {
            eprintln!("xtask nested: {e:#}; not running the scenario again");
            return Ok(first);
        }
    };
    let fault = match EmulatorFaults::parse(&bytes) {
        Ok(f) => f.entries().next(),
        Err(e) => {
            eprintln!(
                "xtask nested: {} in {}: {e}; not running the scenario again",
                EMULATOR_FAULT_FILE,
                rel(&first.dir)
            );
            return Ok(first);
        }
    };
    let Some(fault) = fault else {
        return Ok(first);
    };
    eprintln!(
        "xtask nested: emulator fault in {} ({fault}); running the scenario once more",
        rel(&first.dir),
    );
    let mut second = run_once(o)?;
    second.summary = format!(
        "{} [second run: the first hit an emulator fault, {}]",
        second.summary,
        rel(&first.dir)
    );
    Ok(second)
}

fn run_once(o: &Opts) -> Result<Outcome> {
    let scen = scenario_path(&o.scenario)?;
    let name = scen
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| o.scenario.clone());
    let script = std::fs::read_to_string(&scen)
        .with_context(|| format!("cannot read {}", scen.display()))?;
    let mut env = scenario_env(|k| std::env::var(k).ok())?;
    let extra = Duration::from_secs(extra_seconds(&env)?);
    let timeout = o.timeout.unwrap_or_else(|| {
        declared_timeout(&script).unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_S)) + extra
    });
    let kernel = guest_kernel(o)?;
    let ctl = ctl_tool(o)?;
    let img = image::ensure(false)?;
    let dir = common::new_result_dir(&name)?;
    // The scenario may record how its QEMU ran (fault rates per mode).
    env.push(("RIG_TCG".to_string(), o.tcg.name().to_string()));
    prepare(&dir, &scen, &name, kernel.as_deref(), ctl.as_deref(), &env)?;
    for (k, v) in &env {
        eprintln!("xtask nested {name}: {k}={v} (exported to the scenario)");
    }
    let cmd = qemu_command(&img, Some(&dir), false, o.tcg);
    std::fs::write(dir.join("qemu-cmdline.txt"), format!("{cmd:?}\n"))?;
    eprintln!(
        "xtask nested {name}: Xen + Debian dom0 in QEMU (timeout {}s), results in {}",
        timeout.as_secs(),
        rel(&dir)
    );

    let mut step = String::from("boot");
    let mut xen_panic = false;
    let fin = runner::run(cmd, timeout, &dir.join("serial.log"), |line, t| {
        let rig = line.strip_prefix(LOG_PREFIX);
        if let Some(r) = rig {
            if let Some(s) = r.strip_prefix(STEP_PREFIX) {
                step = s.to_string();
            }
        }
        let panic = line.contains("Panic on CPU") || line.contains("Kernel panic");
        if o.verbose || rig.is_some() || panic {
            println!("[{:6.1}s] {}", t.as_secs_f64(), rig.unwrap_or(line));
        }
        if panic {
            xen_panic = true;
            return Verdict::Stop {
                grace: Duration::from_secs(5),
            };
        }
        Verdict::Continue
    })?;

    // The verdict file (see selfballoon_protocol::parse_verdict).
    let verdict_path = dir.join(VERDICT_FILE);
    let verdict_bytes = common::read_bounded(&verdict_path, MAX_VERDICT_BYTES);
    let verdict = match &verdict_bytes {
        Ok(Some(b)) => parse_verdict(b).map_err(|e| match e {
            VerdictError::Empty => None,
            e => Some(e.to_string()),
        }),
        Ok(None) => Err(None),
        Err(e) => Err(Some(format!("{e:#}"))),
    };
    let secs = fin.elapsed.as_secs_f64();
    let dom0_passed = matches!(fin.end, End::Exit(Some(c))
        if TestResult::from_qemu_exit_status(c) == Some(TestResult::Success));
    let (passed, mut summary) = match (fin.end, verdict) {
        (End::Exit(_), Ok(ScenarioVerdict::Pass { note })) if dom0_passed => {
            (true, note.to_string())
        }
        (End::Timeout, v) => (
            false,
            format!("timeout after {secs:.0}s (step: {step}){}", with(&v)),
        ),
        (End::Exit(code), Ok(v)) => (
            false,
            format!("{} (QEMU exit {})", reason(&v), code.unwrap_or(-1)),
        ),
        (End::Exit(code), Err(Some(e))) => {
            (false, format!("{e} (QEMU exit {})", code.unwrap_or(-1)))
        }
        (End::Exit(code), Err(None)) => (
            false,
            format!(
                "no verdict from dom0 (QEMU exit {}, step: {step}){}",
                code.map_or("signal".into(), |c| c.to_string()),
                if xen_panic {
                    "; a kernel or Xen panicked"
                } else {
                    ""
                }
            ),
        ),
        (End::Stopped, _) => (
            false,
            format!("panic in Xen or dom0 after {secs:.0}s (step: {step})"),
        ),
    };

    for csv in files_with_ext(&dir, "csv") {
        let svg = csv.with_extension("svg");
        match crate::plot::render(&csv, &svg) {
            Ok(()) => eprintln!("chart: {}", rel(&svg)),
            Err(e) => eprintln!("chart for {} failed: {e:#}", rel(&csv)),
        }
    }
    let metrics = std::fs::read_to_string(dir.join(METRICS_FILE)).unwrap_or_default();
    for m in metrics.lines() {
        println!("metric: {m}");
    }

    if !passed {
        let mut msg = format!(
            "nested {name}: FAIL: {summary}\n  serial log tail:\n{}",
            fin.tail_text(20)
        );
        for log in files_with_ext(&dir.join("console"), "log") {
            msg.push_str(&format!(
                "  console {}:\n{}",
                rel(&log),
                common::file_tail(&log, 20)
            ));
        }
        eprintln!("{msg}");
    }
    summary = format!("{summary} ({secs:.0}s)");
    println!(
        "nested {name}: {} {summary}\n  logs: {}",
        if passed { "PASS" } else { "FAIL" },
        rel(&dir)
    );
    Ok(Outcome {
        dir,
        passed,
        summary,
    })
}

/// `cargo xtask nested shell`: boots the rig with a shell on dom0's
/// console (no job), for poking at xl by hand. Exit the shell to stop.
pub fn shell(o: &Opts) -> Result<()> {
    let kernel = guest_kernel(o)?;
    let ctl = ctl_tool(o)?;
    let img = image::ensure(false)?;
    let dir = common::new_result_dir("shell")?;
    prepare(
        &dir,
        &common::root().join("tests/nested/lib.sh"),
        "shell",
        kernel.as_deref(),
        ctl.as_deref(),
        &[],
    )?;
    std::fs::remove_file(dir.join(JOB_SCRIPT))?;
    eprintln!(
        "xtask nested shell: /rig is {}; `. /rig/lib.sh` for the helpers; Ctrl-A x quits QEMU",
        rel(&dir)
    );
    common::run_status(&mut qemu_command(&img, Some(&dir), true, o.tcg), "qemu")
}

/// What a timeout's summary adds about the verdict file.
fn with(verdict: &Result<ScenarioVerdict<'_>, Option<String>>) -> String {
    match verdict {
        Ok(v) => format!("; last verdict: {v}"),
        Err(None) => String::new(),
        Err(Some(e)) => format!("; {e}"),
    }
}

/// A failed run's verdict for its summary: the reason of a `FAIL`, else
/// the whole verdict line (a `PASS` whose dom0 did not exit as passed).
fn reason(v: &ScenarioVerdict<'_>) -> String {
    match v {
        ScenarioVerdict::Fail { reason } if !reason.is_empty() => reason.to_string(),
        v => v.to_string().trim_end().to_string(),
    }
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A path relative to the repository root when it is inside it.
pub fn rel(p: &Path) -> String {
    p.strip_prefix(common::root())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_directory_gets_the_protocol_and_the_bootstrap_names() {
        let dir = std::env::temp_dir().join(format!("xtask-prepare-{}", std::process::id()));
        let scen = common::root().join("tests/nested/smoke.sh");
        let ctl = std::env::temp_dir().join(format!("xtask-ctl-{}", std::process::id()));
        std::fs::write(&ctl, b"tool").unwrap();
        let env = vec![("ABUSE_S".to_string(), "600".to_string())];
        prepare(&dir, &scen, "smoke", None, Some(&ctl), &env).unwrap();
        assert_eq!(std::fs::read(dir.join("selfballoonctl")).unwrap(), b"tool");
        std::fs::remove_file(&ctl).unwrap();
        let sh = std::fs::read_to_string(dir.join(PROTOCOL_SCRIPT)).unwrap();
        assert_eq!(sh, shell::Script.to_string());
        let job = std::fs::read_to_string(dir.join(JOB_SCRIPT)).unwrap();
        assert!(job.contains("RIG_DIR=/rig "), "{job}");
        assert!(job.contains("\nexport ABUSE_S='600'\nexec bash"), "{job}");
        assert!(
            job.contains(". /rig/lib.sh && rig_run /rig/scenario.sh"),
            "{job}"
        );
        assert!(dir.join("lib.sh").is_file() && dir.join("scenario.sh").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn summaries_of_verdicts() {
        let v = |t: &'static str| parse_verdict(t.as_bytes()).unwrap();
        assert_eq!(reason(&v("FAIL: why\n")), "why");
        assert_eq!(reason(&v("FAIL: \n")), "FAIL:");
        assert_eq!(reason(&v("PASS: odd\n")), "PASS: odd");
        assert_eq!(with(&Ok(v("FAIL: x"))), "; last verdict: FAIL: x");
        assert_eq!(with(&Err(None)), "");
        assert_eq!(with(&Err(Some("bad".into()))), "; bad");
    }

    #[test]
    fn scenario_variables_are_checked_and_lengthen_the_timeout() {
        let get = |vals: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vals.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let env = scenario_env(get(&[
            ("DENSITY_S", "600"),
            ("DENSITY_N", "8"),
            ("HOME", "/x"),
        ]))
        .unwrap();
        assert_eq!(
            env,
            vec![
                ("DENSITY_S".to_string(), "600".to_string()),
                ("DENSITY_N".to_string(), "8".to_string())
            ]
        );
        assert_eq!(extra_seconds(&env).unwrap(), 600);
        assert!(scenario_env(get(&[("ABUSE_S", "1'; reboot")])).is_err());
        assert!(scenario_env(get(&[("ABUSE_S", "")])).is_err());
        let bad = scenario_env(get(&[("ABUSE_S", "ten")])).unwrap();
        assert!(extra_seconds(&bad).is_err());
        assert!(scenario_env(get(&[])).unwrap().is_empty());
        for t in [Tcg::Single, Tcg::Multi] {
            assert_eq!(Tcg::parse(t.name()), Some(t));
        }
    }

    #[test]
    fn timeout_header() {
        let s = "#!/bin/bash\n# Smoke test.\n# timeout: 180\n\nstep x\n# timeout: 5\n";
        assert_eq!(declared_timeout(s), Some(Duration::from_secs(180)));
        assert_eq!(declared_timeout("step x\n# timeout: 5"), None);
    }
}
