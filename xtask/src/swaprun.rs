//! Tier-2 swap runs: our kernel as dom0 with `swaprun`, a workload that
//! commits more than dom0's RAM, and the summary the kernel prints at the
//! end (`swaprun: key=value ...` lines, `src/kernel/swaprun.rs`). The
//! guest judges its data (0 mismatches, nothing lost, pages shrunk back);
//! each run here adds what it is about: pages in Xen's tmem, Xen's
//! refusals once its memory is full, or `zpool` alone on Xen 4.17.

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

use crate::qemu::{self, Xen};

/// One swap run: where, how big, and what its summary must show.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// The step's name in `cargo xtask test`.
    pub name: &'static str,
    pub xen: Xen,
    /// Xen's `dom0_mem=`.
    pub dom0_mem: &'static str,
    /// QEMU's RAM (MiB), `None` for the tier's default.
    pub qemu_mem_mib: Option<u32>,
    /// The workload (`workload=`).
    pub workload: &'static str,
    /// The backend the summary must name.
    pub backend: &'static str,
    /// Summary keys that must be above 0.
    pub nonzero: &'static [&'static str],
    /// Summary keys that must be 0 (besides `mismatches` and `lost`).
    pub zero: &'static [&'static str],
}

/// The guest's time limit (s) and the run's (s).
const GUEST_LIMIT_S: u32 = 240;
const TIMEOUT_S: u64 = 330;

/// The runs `cargo xtask test` makes.
///
/// Xen 4.12 charges each page of a persistent tmem pool to the domain
/// (`max_pages`), so dom0's RAM is 128 MiB with room up to 256 MiB for
/// what tmem holds: with `max:128M` tmem could only hold what dom0 gives
/// up of its own RAM, and the pager rightly keeps such pages in `zpool`,
/// compressed, instead. With 240 MiB of QEMU RAM, Xen's own free memory
/// runs out before the workload's pages do.
///
/// With `max:128M` itself, the accounting keeps tmem closed (no room under
/// `max_pages`): every page-out goes to `zpool` and Xen is never asked a
/// put it would refuse.
pub const RUNS: [Run; 5] = [
    Run {
        name: "tier 2: dom0 swap run on Xen 4.12.4 tmem",
        xen: Xen::Tmem,
        dom0_mem: "128M,max:256M",
        qemu_mem_mib: None,
        workload: "content:mixed,alloc:256M,touch:seq,hold:1s,free:192M,idle:30s,hold:1s",
        backend: "xen-tmem",
        nonzero: &["peak_tmem", "shrunk", "verified"],
        zero: &[],
    },
    Run {
        name: "tier 2: dom0 swap run, Xen 4.12.4 out of memory",
        xen: Xen::Tmem,
        dom0_mem: "128M,max:256M",
        qemu_mem_mib: Some(240),
        workload: "content:mixed,alloc:224M,touch:seq,hold:1s,free:160M,idle:30s,hold:1s",
        backend: "xen-tmem",
        nonzero: &[
            "peak_tmem",
            "tmem_refused",
            "peak_zpool",
            "shrunk",
            "verified",
        ],
        zero: &[],
    },
    Run {
        name: "tier 2: dom0 swap run, Xen 4.12.4 at max_pages",
        xen: Xen::Tmem,
        dom0_mem: "128M,max:128M",
        qemu_mem_mib: None,
        workload: "content:mixed,alloc:160M,touch:seq,hold:1s,free:128M,idle:30s,hold:1s",
        backend: "xen-tmem",
        nonzero: &["tmem_closed", "peak_zpool", "shrunk", "verified"],
        zero: &["tmem_refused"],
    },
    Run {
        name: "tier 2: dom0 swap run on Xen 4.17 (zpool)",
        xen: Xen::Debian,
        dom0_mem: "128M,max:128M",
        qemu_mem_mib: None,
        // Then cache pages beside what is left: cleancache on zpool's
        // ephemeral side (first dropped under pressure: misses recomputed).
        workload: "content:mixed,alloc:160M,touch:seq,hold:1s,free:128M,idle:30s,hold:1s,\
                   content:text,cache:96M,idle:10s,cache:read,idle:5s,cache:read",
        backend: "zpool",
        nonzero: &[
            "peak_zpool",
            "shrunk",
            "verified",
            "cc_puts",
            "cc_hits",
            "cc_recomputed",
        ],
        zero: &[],
    },
    // Cache pages beside committed ones: reclaim drops them clean into
    // Xen's ephemeral pool (cleancache) and the re-reads find them there.
    Run {
        name: "tier 2: dom0 swap run with cleancache on Xen 4.12.4 tmem",
        xen: Xen::Tmem,
        dom0_mem: "128M,max:256M",
        qemu_mem_mib: None,
        workload: "content:mixed,alloc:160M,touch:seq,hold:1s,free:128M,content:text,\
                   cache:96M,idle:10s,cache:read,idle:5s,cache:read,hold:1s",
        backend: "xen-tmem",
        nonzero: &["cc_puts", "cc_hits", "peak_tmem", "shrunk", "verified"],
        zero: &[],
    },
];

/// Runs `run` with the kernel options `base` (build, kernel path,
/// verbosity); returns the step's note (the figures).
pub fn run(run: &Run, base: &qemu::Opts) -> Result<String> {
    let o = qemu::Opts {
        cmdline: format!(
            "swaprun={GUEST_LIMIT_S} loglevel=info workload={}",
            run.workload
        ),
        dom0_mem: Some(run.dom0_mem.to_string()),
        qemu_mem_mib: run.qemu_mem_mib,
        timeout: std::time::Duration::from_secs(TIMEOUT_S),
        ..base.clone()
    };
    let log = qemu::tier2_on(&o, run.xen)?;
    let text =
        std::fs::read_to_string(&log).map_err(|e| anyhow!("cannot read {}: {e}", log.display()))?;
    let (backend, figures) = summary(&text)?;
    check(run, &backend, &figures).map_err(|e| anyhow!("{e} (log: {})", log.display()))?;
    Ok(note(&figures))
}

/// The summary's words: the backend, and every `key=number`.
pub fn summary(log: &str) -> Result<(String, BTreeMap<String, u64>)> {
    let mut backend = None;
    let mut figures = BTreeMap::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("swaprun: ") else {
            continue;
        };
        for word in rest.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            if k == "backend" {
                backend = Some(v.to_string());
            } else if let Ok(n) = v.parse::<u64>() {
                figures.insert(k.to_string(), n);
            }
        }
    }
    let backend = backend.ok_or_else(|| anyhow!("no swaprun summary in the log"))?;
    Ok((backend, figures))
}

/// What the run must show beyond the guest's own verdict.
pub fn check(run: &Run, backend: &str, f: &BTreeMap<String, u64>) -> Result<()> {
    if backend != run.backend {
        bail!("backend {backend}, want {}", run.backend);
    }
    for &key in ["mismatches", "lost"].iter().chain(run.zero) {
        match f.get(key) {
            Some(0) => {}
            Some(n) => bail!("{key} = {n}"),
            None => bail!("the summary has no {key}"),
        }
    }
    for &key in run.nonzero {
        match f.get(key) {
            Some(n) if *n > 0 => {}
            Some(_) => bail!("{key} = 0"),
            None => bail!("the summary has no {key}"),
        }
    }
    Ok(())
}

fn note(f: &BTreeMap<String, u64>) -> String {
    let g = |k: &str| f.get(k).copied().unwrap_or(0);
    let refused_pct = (g("tmem_refused") * 1000)
        .checked_div(g("pageouts"))
        .map_or(String::from("-"), |p| format!("{}.{}%", p / 10, p % 10));
    let cleancache = if g("cc_puts") > 0 {
        format!(
            "; cleancache {} puts, {} hits, {} recomputed",
            g("cc_puts"),
            g("cc_hits"),
            g("cc_recomputed")
        )
    } else {
        String::new()
    };
    format!(
        "peak {} pages out (tmem {}, zpool {}); tmem refused {} ({refused_pct} of page-outs), \
         closed {}; {} shrunk back; {} verified, 0 mismatches{cleancache}",
        g("peak_frontswap"),
        g("peak_tmem"),
        g("peak_zpool"),
        g("tmem_refused"),
        g("tmem_closed"),
        g("shrunk"),
        g("verified")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
(XEN) [    71.407711] (d0) [   71.407495] INFO  swaprun: backend=xen-tmem secs=69 peak_frontswap=26998
(XEN) [    71.408290] (d0) [   71.408145] INFO  swaprun: peak_tmem=23983 peak_zpool=5150
(XEN) [    71.408735] (d0) [   71.408593] INFO  swaprun: tmem_refused=14493 tmem_closed=0 swap_refused=0
(XEN) [    71.409205] (d0) [   71.409057] INFO  swaprun: pageouts=86477 pageins=86477 shrunk=6571
(XEN) [    71.409783] (d0) [   71.409606] INFO  swaprun: frontswap_end=0 verified=114688 mismatches=0 lost=0
(XEN) [    71.410107] (d0) [   71.409998] INFO  swaprun: nothing lost
";

    #[test]
    fn reads_the_summary_and_checks_each_run() {
        let (b, f) = summary(LOG).unwrap();
        assert_eq!(b, "xen-tmem");
        assert_eq!(f["tmem_refused"], 14493);
        assert_eq!(f["lost"], 0);
        check(&RUNS[0], &b, &f).unwrap();
        check(&RUNS[1], &b, &f).unwrap();
        let e = check(&RUNS[2], &b, &f).unwrap_err().to_string();
        assert!(e.contains("tmem_refused = 14493"), "{e}");
        assert!(check(&RUNS[4], &b, &f).is_err(), "no cleancache line");
        let e = check(&RUNS[3], &b, &f).unwrap_err().to_string();
        assert!(e.contains("backend xen-tmem, want zpool"), "{e}");
        assert!(
            note(&f).contains("tmem refused 14493 (16.7% of page-outs)"),
            "{}",
            note(&f)
        );
    }

    #[test]
    fn missing_or_bad_figures_fail() {
        assert!(summary("Test result: SUCCESS").is_err());
        let (b, mut f) = summary(LOG).unwrap();
        f.insert("mismatches".into(), 3);
        assert!(check(&RUNS[0], &b, &f)
            .unwrap_err()
            .to_string()
            .contains("mismatches = 3"));
        let (b, mut f) = summary(LOG).unwrap();
        f.insert("tmem_refused".into(), 0);
        assert!(check(&RUNS[1], &b, &f)
            .unwrap_err()
            .to_string()
            .contains("tmem_refused = 0"));
        f.remove("lost");
        assert!(check(&RUNS[0], &b, &f)
            .unwrap_err()
            .to_string()
            .contains("no lost"));
    }
}
