//! Tier 1 (the kernel straight under QEMU) and tier 2 (Xen in QEMU with
//! our kernel as the PVH dom0).

use crate::common;
use crate::runner::{self, End, Verdict};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use selfballoon_protocol::{
    parse_result_line, ResultLine, ResultLineError, TestResult, RESULT_PREFIX,
};

/// Options shared by `qemu` and `dom0`.
#[derive(Debug, Clone)]
pub struct Opts {
    pub kernel: Option<PathBuf>,
    pub build: bool,
    pub timeout: Duration,
    pub verbose: bool,
    pub cmdline: String,
    /// Tier 2: Xen's `dom0_mem=` instead of the tier's default.
    pub dom0_mem: Option<String>,
    /// Tier 2: QEMU's RAM (MiB) instead of the tier's default.
    pub qemu_mem_mib: Option<u32>,
}

/// `args` with its `dom0_mem=` word replaced by `dom0_mem=<spec>`.
pub fn with_dom0_mem(args: &str, spec: Option<&str>) -> String {
    let Some(spec) = spec else {
        return args.to_string();
    };
    args.split_whitespace()
        .map(|w| {
            if w.starts_with("dom0_mem=") {
                format!("dom0_mem={spec}")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Xen command line for tier 2; the dom0 is our kernel (PVH).
const XEN_DOM0_ARGS: &str = "loglvl=all guest_loglvl=all console=com1 noreboot \
     console_timestamps=boot dom0=pvh dom0_mem=256M,max:256M";

fn result_dir(kind: &str) -> Result<PathBuf> {
    common::new_result_dir(kind)
}

/// The uncompressed Xen image QEMU's multiboot loader needs: the host's
/// /boot/xen-4.17-amd64.gz (install-host-deps.sh), unpacked into the cache
/// once per content, or the one from the nested rig's image.
pub fn xen_image() -> Result<PathBuf> {
    let gz = Path::new("/boot/xen-4.17-amd64.gz");
    if gz.is_file() {
        let data = std::fs::read(gz).with_context(|| format!("cannot read {}", gz.display()))?;
        let key = crate::image::short_hash(&[("xen.gz", &data)]);
        let out = crate::image::cache_root().join(format!("xen-{key}"));
        if !out.is_file() {
            std::fs::create_dir_all(crate::image::cache_root())?;
            let tmp = out.with_extension("tmp");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let st = Command::new("gzip")
                .arg("-dc")
                .arg(gz)
                .stdout(f)
                .status()
                .context("cannot run gzip")?;
            if !st.success() {
                bail!("gzip -dc {} failed", gz.display());
            }
            std::fs::rename(&tmp, &out)?;
        }
        return Ok(out);
    }
    let img = crate::image::ensure(false)?;
    Ok(img.join("xen"))
}

/// Tier 1: `qemu-system-x86_64 -kernel selfballoon`, no hypervisor.
pub fn tier1(o: &Opts) -> Result<()> {
    let kernel = common::kernel(o.kernel.as_deref(), o.build)?;
    let dir = result_dir("qemu")?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel", "tcg", "-machine", "q35", "-cpu", "qemu64", "-m", "256",
    ])
    .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
    .args(["-no-reboot", "-kernel"])
    .arg(&kernel)
    .args(["-append", &o.cmdline])
    .arg("-device")
    .arg(common::debug_exit_device());
    eprintln!(
        "xtask qemu: {} \"{}\" (timeout {}s)",
        kernel.display(),
        o.cmdline,
        o.timeout.as_secs()
    );
    judge(cmd, o, &dir, false)
}

/// Which Xen tier 2 boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xen {
    /// The host's Debian Xen 4.17 (no tmem: hypercall 38 is -ENOSYS).
    Debian,
    /// Xen 4.12.4 built with tmem, booted with `tmem=1`.
    Tmem,
}

impl Xen {
    /// `--xen` values: `4.17` (default) or `tmem`.
    pub fn parse(s: &str) -> Option<Xen> {
        match s {
            "4.17" | "debian" => Some(Xen::Debian),
            "tmem" | "4.12" => Some(Xen::Tmem),
            _ => None,
        }
    }
}

/// Tier 2: Xen in QEMU, our kernel as the PVH dom0.
pub fn tier2(o: &Opts) -> Result<()> {
    tier2_on(o, Xen::Debian).map(|_| ())
}

/// Tier 2 on `which` Xen; returns the serial log of a successful run.
pub fn tier2_on(o: &Opts, which: Xen) -> Result<PathBuf> {
    let kernel = common::kernel(o.kernel.as_deref(), o.build)?;
    let (xen, xen_args) = match which {
        Xen::Debian => (xen_image()?, XEN_DOM0_ARGS),
        Xen::Tmem => (crate::xen_tmem::image()?, crate::xen_tmem::XEN_ARGS),
    };
    let xen_args = with_dom0_mem(xen_args, o.dom0_mem.as_deref());
    let dir = result_dir("dom0")?;
    let module = format!(
        "{} {}",
        common::qemu_list_escape(&kernel.to_string_lossy()),
        common::qemu_list_escape(&o.cmdline)
    );
    let mem = |default: u32| o.qemu_mem_mib.unwrap_or(default).to_string();
    let mut cmd = Command::new("qemu-system-x86_64");
    match which {
        Xen::Debian => cmd
            .args(["-accel", "tcg", "-machine", "q35", "-device", "intel-iommu"])
            .args(["-cpu", "qemu64,+svm,+npt", "-m", &mem(2048), "-smp", "2"]),
        // 4.12 wants the IOMMU of the CPU's vendor: AMD-Vi for +svm (with
        // intel-iommu it panics, "iommu must be enabled for PVH hardware
        // domain"). The line measured in ../shared/xen-tmem/README.md.
        Xen::Tmem => cmd
            .args(["-accel", "tcg", "-machine", "q35", "-device", "amd-iommu"])
            .args(["-cpu", "qemu64,+svm,+npt", "-m", &mem(1024), "-smp", "1"]),
    };
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-kernel"])
        .arg(&xen)
        .args(["-append", &xen_args, "-initrd", &module])
        .arg("-device")
        .arg(common::debug_exit_device());
    eprintln!(
        "xtask dom0: Xen {} + dom0 {} \"{}\" (timeout {}s)",
        xen.display(),
        kernel.display(),
        o.cmdline,
        o.timeout.as_secs()
    );
    judge(cmd, o, &dir, true)?;
    Ok(dir.join("serial.log"))
}

/// Runs the QEMU command, streams the kernel's lines, and decides.
fn judge(cmd: Command, o: &Opts, dir: &Path, under_xen: bool) -> Result<()> {
    let log = dir.join("serial.log");
    let mut results: Vec<TestResult> = Vec::new();
    // The first line that named a result the protocol does not know.
    let mut malformed: Option<String> = None;
    let mut xen_panic = false;
    let fin = runner::run(cmd, o.timeout, &log, |line, t| {
        // Under Xen only the dom0's own lines (`(d0) ...`) and Xen's
        // alarms are interesting; the rest goes to the log.
        let ours = !under_xen || line.contains("(d0)");
        let alarm = under_xen && (line.contains("Panic on CPU") || line.contains("FATAL"));
        if o.verbose || ours || alarm {
            let shown = match line.find("(d0) ") {
                Some(i) if !o.verbose => &line[i + 5..],
                _ => line,
            };
            println!("[{:6.1}s] {shown}", t.as_secs_f64());
        }
        if alarm && line.contains("Panic on CPU") {
            xen_panic = true;
            return Verdict::Stop {
                grace: Duration::from_secs(3),
            };
        }
        match parse_result_line(line) {
            Ok(r) => {
                results.push(r);
                // QEMU should exit at once through isa-debug-exit; under Xen
                // a dom0 that fell back to SCHEDOP_shutdown leaves Xen idling.
                Verdict::Stop {
                    grace: Duration::from_secs(10),
                }
            }
            Err(ResultLineError::NoResult) => Verdict::Continue,
            Err(e) => {
                malformed.get_or_insert_with(|| e.to_string());
                Verdict::Continue
            }
        }
    })?;
    let fail = |why: String| -> Result<()> {
        bail!(
            "{why}\n  last output:\n{}  full log: {}",
            fin.tail_text(25),
            log.display()
        )
    };
    let secs = fin.elapsed.as_secs_f64();
    let prefix = RESULT_PREFIX.trim_end();
    let bad = malformed
        .map(|e| format!("; a malformed result line: {e}"))
        .unwrap_or_default();
    if xen_panic {
        return fail(format!("Xen panicked after {secs:.1}s"));
    }
    let code_result = match fin.end {
        End::Exit(Some(c)) => TestResult::from_qemu_exit_status(c),
        _ => None,
    };
    match (results.as_slice(), fin.end) {
        ([], End::Timeout) => fail(format!(
            "timeout after {secs:.1}s without a `{prefix}` line{bad}"
        )),
        ([], End::Exit(c)) => fail(format!(
            "QEMU exited {} after {secs:.1}s without a `{prefix}` line{}{bad}",
            c.map_or("by a signal".to_string(), |c| c.to_string()),
            match c {
                Some(0) => " (reset/triple fault with -no-reboot?)",
                Some(c) if TestResult::from_qemu_exit_status(c).is_some() => {
                    " (the kernel exited through isa-debug-exit without printing it)"
                }
                _ => "",
            }
        )),
        ([r], end) => {
            if let Some(c) = code_result {
                if c != *r {
                    return fail(format!("result line says {r} but the exit code says {c}"));
                }
            } else if !under_xen {
                return fail(format!(
                    "result {r} printed but QEMU did not exit through isa-debug-exit ({end:?})"
                ));
            }
            if *r != TestResult::Success {
                return fail(format!("{} ({secs:.1}s)", ResultLine(*r)));
            }
            let how = match end {
                End::Exit(_) => "QEMU exited through isa-debug-exit",
                _ => "QEMU stopped after the result (no isa-debug-exit)",
            };
            println!(
                "xtask: {} in {secs:.1}s ({how}); log: {}",
                ResultLine(TestResult::Success),
                log.display()
            );
            Ok(())
        }
        (many, _) => fail(format!(
            "{} `{prefix}` lines (expected exactly one)",
            many.len()
        )),
    }
}
