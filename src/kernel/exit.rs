//! Ending a run: the selftest result line and leaving the machine in a way
//! the runner can read.

use crate::arch::x86_64::cpu;
use crate::arch::x86_64::trap::TrapFrame;

/// The XTF-style result of a run, its result line and its isa-debug-exit
/// value: the kernel-rig protocol (protocol/, shared with xtask and the
/// nested rig's shell side).
pub use selfballoon_protocol::{ResultLine, TestResult};

/// Prints the run's one result line, `Test result: WORD`.
pub fn print_result(result: TestResult) {
    crate::println!("{}", ResultLine(result));
}

/// How to leave: set by the boot code once it knows where it runs.
pub trait Exit: Sync {
    fn exit(&self, result: TestResult) -> !;
}

static EXIT: spin::Once<&'static dyn Exit> = spin::Once::new();

/// Installs the exit path (hypervisor shutdown for a domU).
pub fn set_exit(exit: &'static dyn Exit) {
    EXIT.call_once(|| exit);
}

/// Writes to QEMU's isa-debug-exit device. Without the device the write is
/// ignored and the caller goes on to its next way out.
pub fn qemu_debug_exit(result: TestResult) {
    cpu::qemu_debug_exit(result.debug_exit_value());
}

/// Ends the run with `result`: the installed exit path, else QEMU's debug
/// exit, else halt with interrupts enabled forever.
pub fn finish(result: TestResult) -> ! {
    if let Some(e) = EXIT.get() {
        e.exit(result);
    }
    qemu_debug_exit(result);
    // Nothing else worked. Halt with interrupts off: this may run on an
    // IST stack that a new interrupt would reuse, and under Xen it powers
    // the domain off, which is the right end here.
    loop {
        cpu::disable_interrupts();
        cpu::halt();
    }
}

/// Fatal exception hook: the selftest's result is ERROR.
pub fn fatal_trap(_frame: &TrapFrame) -> ! {
    print_result(TestResult::Error);
    finish(TestResult::Error)
}
