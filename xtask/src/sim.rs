//! `cargo xtask sim ...`: the policy simulator (the `sim` crate), built in
//! release mode and run from the repository root with the arguments as
//! given (`cargo xtask sim --help` for its options). Relative paths are
//! taken from the directory it is run in.

use anyhow::{bail, Context, Result};

use crate::common;

/// Runs the simulator with `args`.
pub fn run(args: &[String]) -> Result<()> {
    let manifest = common::root().join("Cargo.toml");
    let here = std::env::current_dir().context("no current directory")?;
    let status = common::cargo()
        .current_dir(here)
        .arg("run")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--quiet", "--release", "--package", "sim", "--"])
        .args(args)
        .status()
        .context("cannot run cargo for the simulator")?;
    if !status.success() {
        bail!("the simulator failed ({status})");
    }
    Ok(())
}
