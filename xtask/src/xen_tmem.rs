//! Xen 4.12.4 with tmem (the last Xen that has it) for tier 2 on the tmem
//! hypervisor: the prebuilt `xen-4.12.4-tmem.gz` from the project's
//! shared folder (`../shared/xen-tmem/` beside the repository), checked
//! against its SHA256SUMS and unpacked into the cache under a hash of its
//! content; if only the source tarball and its recipe `build.sh` are
//! there, built by the recipe once and cached under a hash of the recipe
//! and the tarball.

use crate::image::{cache_root, short_hash};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The prebuilt hypervisor, gzipped.
const PREBUILT: &str = "xen-4.12.4-tmem.gz";
/// The hypervisor source (tag RELEASE-4.12.4) and its recipe.
const TARBALL: &str = "xen-4.12.4-hypervisor-src.tar.xz";
const RECIPE: &str = "build.sh";
/// What the recipe writes into its output folder.
const BUILT: &str = "xen-4.12.4-tmem";

/// The Xen command line: tmem on, dom0 our PVH kernel capped at 128 MiB
/// (with no max, 4.12 lets dom0 grow).
pub const XEN_ARGS: &str = "loglvl=all guest_loglvl=all console=com1 noreboot \
     console_timestamps=boot dom0=pvh dom0_mem=128M,max:128M tmem=1";

/// `$SELFBALLOON_XEN_TMEM_DIR`, else `../shared/xen-tmem` from the
/// repository root.
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SELFBALLOON_XEN_TMEM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    crate::common::root().join("../shared/xen-tmem")
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash SHA256SUMS gives for `name`.
fn expected_sum(sums: &str, name: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let (h, n) = (w.next()?, w.next()?);
        (n.trim_start_matches('*') == name).then(|| h.to_ascii_lowercase())
    })
}

fn read_verified(dir: &Path, sums: &str, name: &str) -> Result<Vec<u8>> {
    let p = dir.join(name);
    let data = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let want = expected_sum(sums, name).ok_or_else(|| anyhow!("{name} is not in SHA256SUMS"))?;
    let got = sha256_hex(&data);
    if got != want {
        bail!(
            "{} fails its SHA256SUMS check: {got}, want {want}",
            p.display()
        );
    }
    Ok(data)
}

/// Writes `out` through a temporary file and a rename (a half-written
/// image is never taken for a cached one).
fn install(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    fill(&tmp)?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot rename to {}", out.display()))
}

/// The uncompressed multiboot ELF of Xen 4.12.4 with tmem, from the cache.
pub fn image() -> Result<PathBuf> {
    let dir = shared_dir();
    let sums_path = dir.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).with_context(|| {
        format!(
            "no {} (the Xen 4.12.4 tmem build lives in ../shared/xen-tmem beside the \
             repository, or set SELFBALLOON_XEN_TMEM_DIR)",
            sums_path.display()
        )
    })?;
    if dir.join(PREBUILT).is_file() {
        let gz = read_verified(&dir, &sums, PREBUILT)?;
        let key = short_hash(&[(PREBUILT, &gz)]);
        let out = cache_root().join(format!("{BUILT}-{key}"));
        if !out.is_file() {
            install(&out, |tmp| {
                let f = std::fs::File::create(tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let st = Command::new("gzip")
                    .arg("-dc")
                    .arg(dir.join(PREBUILT))
                    .stdout(f)
                    .status()
                    .context("cannot run gzip")?;
                if !st.success() {
                    bail!("gzip -dc {PREBUILT} failed");
                }
                Ok(())
            })?;
        }
        return Ok(out);
    }
    // No prebuilt: the recipe, from the verified tarball.
    let tarball = read_verified(&dir, &sums, TARBALL)?;
    let recipe = std::fs::read(dir.join(RECIPE))
        .with_context(|| format!("neither {PREBUILT} nor {RECIPE} in {}", dir.display()))?;
    let key = short_hash(&[(RECIPE, &recipe), (TARBALL, &tarball)]);
    let out = cache_root().join(format!("{BUILT}-build-{key}"));
    if !out.is_file() {
        eprintln!(
            "xtask: building Xen 4.12.4 with tmem by {} (about 3 minutes)",
            dir.join(RECIPE).display()
        );
        let work = cache_root().join(format!("{BUILT}-build-{key}.work"));
        let _ = std::fs::remove_dir_all(&work);
        crate::common::run_status(
            Command::new("bash").arg(dir.join(RECIPE)).arg(&work),
            "xen-tmem build.sh",
        )?;
        install(&out, |tmp| {
            std::fs::rename(work.join(BUILT), tmp)
                .with_context(|| format!("build.sh left no {BUILT}"))
        })?;
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_looked_up_by_name() {
        let s = "AB12  xen-4.12.4-tmem.gz\ncd34 *other\n";
        assert_eq!(expected_sum(s, PREBUILT).as_deref(), Some("ab12"));
        assert_eq!(expected_sum(s, "other").as_deref(), Some("cd34"));
        assert_eq!(expected_sum(s, "missing"), None);
    }

    #[test]
    fn the_shared_prebuilt_verifies_when_present() {
        let dir = shared_dir();
        let Ok(sums) = std::fs::read_to_string(dir.join("SHA256SUMS")) else {
            return; // no shared folder here (CI without ../shared)
        };
        if dir.join(PREBUILT).is_file() {
            read_verified(&dir, &sums, PREBUILT).expect("prebuilt verifies");
        }
    }
}
