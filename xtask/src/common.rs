//! Paths, the kernel build and small helpers shared by the subcommands.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository root (the workspace containing xtask).
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The cargo that runs us (so `cargo +toolchain xtask` stays consistent).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR like cargo does.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
            }
        }
        _ => root().join("target"),
    }
}

/// Where `cargo build --release` puts the kernel ELF.
pub fn kernel_path() -> PathBuf {
    target_dir().join("x86_64-unknown-linux-gnu/release/selfballoon")
}

/// Runs a command to completion with inherited output; errors on failure.
pub fn run_status(cmd: &mut Command, what: &str) -> Result<()> {
    let st = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}

/// Installs missing host packages (QEMU 10, Xen, debootstrap, ...) with
/// tests/nested/install-host-deps.sh; a no-op when all is present.
pub fn host_deps() -> Result<()> {
    run_status(
        Command::new("bash").arg(root().join("tests/nested/install-host-deps.sh")),
        "tests/nested/install-host-deps.sh",
    )
}

/// `cargo build --release` of the kernel; returns the ELF path.
pub fn build_kernel() -> Result<PathBuf> {
    eprintln!("xtask: cargo build --release (kernel)");
    run_status(
        cargo().args(["build", "--release", "--bin", "selfballoon"]),
        "cargo build --release",
    )?;
    let k = kernel_path();
    if !k.is_file() {
        bail!("cargo build succeeded but {} is missing", k.display());
    }
    Ok(k)
}

/// Where `cargo build --release -p selfballoonctl` puts the dom0 tool.
pub fn ctl_path() -> PathBuf {
    target_dir().join("x86_64-unknown-linux-gnu/release/selfballoonctl")
}

/// `cargo build --release -p selfballoonctl` (the dom0 tool, for the host
/// target, whose glibc matches dom0's Debian bookworm); returns its path.
pub fn build_ctl() -> Result<PathBuf> {
    eprintln!("xtask: cargo build --release -p selfballoonctl (dom0 tool)");
    run_status(
        cargo().args(["build", "--release", "-p", "selfballoonctl"]),
        "cargo build --release -p selfballoonctl",
    )?;
    let p = ctl_path();
    if !p.is_file() {
        bail!("cargo build succeeded but {} is missing", p.display());
    }
    Ok(p)
}

/// The kernel to run: `--kernel PATH` if given, else a fresh release build
/// (or the existing ELF with `--no-build`).
pub fn kernel(explicit: Option<&Path>, build: bool) -> Result<PathBuf> {
    if let Some(k) = explicit {
        if !k.is_file() {
            bail!("kernel {} does not exist", k.display());
        }
        return Ok(k.to_path_buf());
    }
    if build {
        return build_kernel();
    }
    let k = kernel_path();
    if !k.is_file() {
        bail!(
            "no kernel at {} (run `cargo build --release` or drop --no-build)",
            k.display()
        );
    }
    Ok(k)
}

/// QEMU's `-device` argument for the isa-debug-exit device at the port
/// the kernel and dom0's /init write their result to.
pub fn debug_exit_device() -> String {
    format!(
        "isa-debug-exit,iobase={:#x},iosize=0x04",
        selfballoon_protocol::DEBUG_EXIT_PORT
    )
}

/// Reads at most `max + 1` bytes of a file the rig's guest side wrote (so
/// that a parser limited to `max` sees an overlong file as such without
/// xtask reading all of it); `None` if the file does not exist.
pub fn read_bounded(path: &Path, max: usize) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut buf = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(buf))
}

/// A new folder `results/<kind>-<UTC stamp>` (suffixed `-2`, `-3`, ...
/// if a run in the same second took the name).
pub fn new_result_dir(kind: &str) -> Result<PathBuf> {
    let base = root().join("results");
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let stamp = utc_stamp();
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{kind}-{stamp}")
        } else {
            format!("{kind}-{stamp}-{n}")
        };
        let d = base.join(name);
        // create_dir (not _all) fails if another run got there first.
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", d.display())),
        }
    }
    bail!("cannot find a free result folder name for {kind}")
}

/// `YYYYmmdd-HHMMSS` in UTC, for result folder names.
pub fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Last `n` lines of a text file (lossy), or a note why there are none.
pub fn file_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = s.lines().collect();
            let mut out = String::new();
            for l in &lines[lines.len().saturating_sub(n)..] {
                out.push_str("    | ");
                out.push_str(l);
                out.push('\n');
            }
            if out.is_empty() {
                out.push_str("    (empty)\n");
            }
            out
        }
        Err(e) => format!("    (cannot read {}: {e})\n", path.display()),
    }
}

/// Escapes a command line for QEMU's `-initrd "file args,file2"` list, in
/// which a literal comma is written as two.
pub fn qemu_list_escape(s: &str) -> String {
    s.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_exit_device_at_the_protocols_port() {
        assert_eq!(
            debug_exit_device(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04"
        );
    }

    #[test]
    fn bounded_reads() {
        let dir = std::env::temp_dir().join(format!("xtask-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(
            read_bounded(&f, 100).unwrap().as_deref(),
            Some(&b"0123456789"[..])
        );
        assert_eq!(read_bounded(&f, 4).unwrap().as_deref(), Some(&b"01234"[..]));
        assert_eq!(read_bounded(&dir.join("missing"), 4).unwrap(), None);
        assert!(read_bounded(&dir, 4).is_err(), "a directory is an error");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stamp_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15);
        assert_eq!(&s[8..9], "-");
    }

    #[test]
    fn escape_commas() {
        assert_eq!(qemu_list_escape("a=1,2 b"), "a=1,,2 b");
    }
}
