//! The protocol between the selfballoon kernel and its test rig, written
//! down once.
//!
//! Three parties speak it:
//!
//! - the **kernel** prints one [`ResultLine`] at the end of a selftest and
//!   leaves QEMU through the isa-debug-exit device with
//!   [`TestResult::debug_exit_value`];
//! - **xtask** (tiers 1–3) reads QEMU's exit status
//!   ([`TestResult::from_qemu_exit_status`]), finds result lines
//!   ([`parse_result_line`]), and after a nested run reads the verdict
//!   file ([`parse_verdict`]) and the emulator-fault marker
//!   ([`EmulatorFaults::parse`]);
//! - the **shell side** in the nested rig's dom0 (`tests/nested/lib.sh`,
//!   `tests/nested/image/dom0-init.sh`, the scenarios) writes the verdict
//!   and the marker, waits for the kernel's console lines and ends QEMU
//!   with the same exit values. It gets every constant from
//!   `protocol.sh`, which xtask generates with [`shell::write`] into each
//!   run directory (`/rig/protocol.sh` in dom0) before the run starts, so
//!   that a protocol change never needs a new dom0 image.
//!
//! Every parser here takes untrusted input (a serial line, a file written
//! by a guest-controlled dom0) and answers with a typed error that says
//! what was wrong; none of them panics.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod console;
mod fault;
mod result;
pub mod rig;
pub mod shell;
mod text;
mod verdict;

pub use fault::{
    EmulatorFaults, FaultEntry, FaultError, EMULATOR_FAULT_FILE, FAULT_SEPARATOR, MAX_FAULT_BYTES,
};
pub use result::{
    parse_result_line, ResultLine, ResultLineError, TestResult, DEBUG_EXIT_PORT, MAX_LINE_BYTES,
    RESULT_PREFIX,
};
pub use verdict::{
    parse_verdict, Verdict, VerdictError, MAX_VERDICT_BYTES, VERDICT_FAIL, VERDICT_FILE,
    VERDICT_PASS, VERDICT_SEPARATOR,
};
