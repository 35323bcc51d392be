//! The nested rig's images (Xen, Debian kernel, dom0 initramfs, Linux
//! guest initrd), built by tests/nested/image/build.sh and cached outside
//! the repository under a hash of the recipe.

use crate::common;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Files every complete image directory has.
pub const IMAGE_FILES: [&str; 5] = [
    "xen",
    "vmlinuz",
    "dom0.cpio.gz",
    "linux-guest.cpio.gz",
    "versions.txt",
];

/// `$SELFBALLOON_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/selfballoon`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("SELFBALLOON_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("selfballoon")
}

/// First 16 hex digits of SHA-256 over (name, length, content) records.
pub fn short_hash(parts: &[(&str, &[u8])]) -> String {
    let mut h = Sha256::new();
    for (name, data) in parts {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn recipe_dir() -> PathBuf {
    common::root().join("tests/nested/image")
}

/// The cache key: a hash of every file in the recipe directory.
pub fn recipe_key() -> Result<String> {
    let dir = recipe_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read recipe dir {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut files = Vec::new();
    for n in &names {
        let p = dir.join(n);
        files.push((
            n.clone(),
            std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
        ));
    }
    let parts: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    Ok(short_hash(&parts))
}

fn complete(dir: &Path) -> bool {
    IMAGE_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Returns the image directory for the current recipe, building it when
/// missing (or when `force`). Older `dom0-*` directories are removed after
/// a successful build.
pub fn ensure(force: bool) -> Result<PathBuf> {
    let key = recipe_key()?;
    let root = cache_root();
    let dir = root.join(format!("dom0-{key}"));
    if complete(&dir) && !force {
        return Ok(dir);
    }
    if !is_root() {
        bail!(
            "the dom0 image ({}) must be built, which needs root (debootstrap, chroot); \
             run as root, e.g. `sudo -E cargo xtask image`",
            dir.display()
        );
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let tmp = root.join(format!("dom0-{key}.building"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove stale {}", tmp.display()))?;
    }
    eprintln!(
        "xtask image: building {} (Debian packages from deb.debian.org, ~1 min)",
        dir.display()
    );
    let t = Instant::now();
    common::run_status(
        Command::new("bash")
            .arg(recipe_dir().join("build.sh"))
            .arg(recipe_dir())
            .arg(&tmp)
            .env("RIG_DEB_CACHE", root.join("debs")),
        "tests/nested/image/build.sh",
    )?;
    if !complete(&tmp) {
        bail!("build.sh finished but {} is incomplete", tmp.display());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot move image to {}", dir.display()))?;
    eprintln!(
        "xtask image: built in {:.0}s: {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    // Drop images of older recipes (each is ~60 MB).
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("dom0-") && e.path() != dir {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(dir)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cargo xtask image [--rebuild]`.
pub fn cmd(force: bool) -> Result<()> {
    let dir = ensure(force)?;
    let versions = std::fs::read_to_string(dir.join("versions.txt")).unwrap_or_default();
    println!("image: {}", dir.display());
    for f in IMAGE_FILES {
        let p = dir.join(f);
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        println!("  {f:22} {:>8.1} MiB", size as f64 / 1048576.0);
    }
    for l in versions.lines() {
        println!("  {l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_names_and_content() {
        let a = short_hash(&[("a", b"x"), ("b", b"y")]);
        assert_eq!(a.len(), 16);
        assert_ne!(a, short_hash(&[("a", b"xb"), ("", b"y")]));
        assert_ne!(a, short_hash(&[("a", b"x"), ("b", b"z")]));
        assert_eq!(a, short_hash(&[("a", b"x"), ("b", b"y")]));
    }
}
