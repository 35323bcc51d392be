//! The run directory xtask shares with the nested rig's dom0, and the
//! lines dom0 sends back.
//!
//! dom0's `/init` (`tests/nested/image/dom0-init.sh`, part of the cached
//! image) knows only the bootstrap: it mounts the 9p share [`SHARE_TAG`] at
//! [`DOM0_RUN_DIR`], sources [`PROTOCOL_SCRIPT`] from it and runs
//! [`JOB_SCRIPT`]. Everything else reaches it through the script, at run
//! time.

/// The 9p mount tag of the run directory.
pub const SHARE_TAG: &str = "rig";

/// Where dom0 mounts the run directory.
pub const DOM0_RUN_DIR: &str = "/rig";

/// The shell rendering of this crate ([`crate::shell::write`]), written by
/// xtask into every run directory.
pub const PROTOCOL_SCRIPT: &str = "protocol.sh";

/// The job dom0's `/init` runs (`sh /rig/job.sh`); its exit status picks
/// QEMU's: 0 gives [`Success`](crate::TestResult::Success), anything else
/// [`Failure`](crate::TestResult::Failure), and a failure of `/init` itself
/// [`Error`](crate::TestResult::Error).
pub const JOB_SCRIPT: &str = "job.sh";

/// Starts every line of dom0's that the runner shows (`[rig] ...`).
pub const LOG_PREFIX: &str = "[rig] ";

/// After [`LOG_PREFIX`]: the scenario's current step, which the runner
/// quotes when a run times out.
pub const STEP_PREFIX: &str = "step: ";

/// Figures for the report, one `NAME VALUE` per line, in the run
/// directory.
pub const METRICS_FILE: &str = "metrics.txt";
