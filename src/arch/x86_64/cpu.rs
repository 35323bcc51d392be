//! Thin wrappers over single instructions: port I/O, CPUID, MSRs, TSC,
//! interrupt flag and halting.

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

/// Writes a byte to an I/O port.
///
/// # Safety
/// The port must be one whose write has no effect on memory safety (a
/// console or debug port, not e.g. a DMA controller).
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the port write is harmless.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Writes `bytes` to an I/O port with one `rep outsb`. Under a hypervisor
/// that is one exit for the whole buffer (per page it spans) instead of
/// one per byte. The `x86_64` crate has no string port I/O, hence the asm.
///
/// # Safety
/// As [`outb`]: the port's writes must have no memory-safety effects.
pub unsafe fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: the caller guarantees the port writes are harmless; `rep
    // outsb` only reads `bytes.len()` bytes from `bytes` (DF is clear, as
    // the ABI guarantees) and clobbers rsi and rcx, declared here.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags, readonly)
        )
    };
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// As [`outb`]: the read must have no memory-safety side effects.
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: the caller guarantees the port read is harmless.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// As [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller guarantees the port write is harmless.
    unsafe { Port::<u32>::new(port).write(value) }
}

/// Result of a CPUID leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpuid {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Executes CPUID for `leaf` (sub-leaf 0).
pub fn cpuid(leaf: u32) -> Cpuid {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    Cpuid {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must not break memory safety (e.g. the
/// hypercall-page MSR with the address of a page we own).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { Msr::new(msr).write(value) }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; CR4.TSD is clear in ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Enables interrupts and halts until the next one, atomically (the `sti`
/// shadow covers the `hlt`), so a wake-up that arrives between a check and
/// the halt is not lost. Under Xen a `hlt` with interrupts *disabled* would
/// power a PVH guest off; this never does that.
pub fn enable_interrupts_and_halt() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// Halts until the next interrupt (or forever with interrupts disabled;
/// under Xen that powers a PVH domain off).
pub fn halt() {
    x86_64::instructions::hlt();
}

/// Disables interrupts.
pub fn disable_interrupts() {
    x86_64::instructions::interrupts::disable();
}

/// Enables interrupts.
pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

/// Runs `f` with interrupts disabled, restoring the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(f)
}

/// A spin-loop hint.
pub fn relax() {
    core::hint::spin_loop();
}

/// Writes `bytes` to the debug console port 0xe9 (Xen's and QEMU's), one
/// `rep outsb` (one exit) for the lot.
pub fn debugcon_write(bytes: &[u8]) {
    // SAFETY: port 0xe9 is the debug console (or nothing): writing it has
    // no effect on memory or on any device the kernel drives.
    unsafe { outsb(0xe9, bytes) }
}

/// Writes `value` to QEMU's isa-debug-exit device (the rig's port,
/// `selfballoon_protocol::DEBUG_EXIT_PORT`), which ends QEMU with exit code
/// `value * 2 + 1`; without the device nothing happens.
pub fn qemu_debug_exit(value: u32) {
    // SAFETY: the port is QEMU's isa-debug-exit device (or nothing); the
    // write has no effect on memory.
    unsafe { outl(selfballoon_protocol::DEBUG_EXIT_PORT, value) }
}

/// Raises #UD on purpose (`crash=ud`). The fatal trap handler ends the
/// kernel, so this never returns.
pub fn invalid_opcode() -> ! {
    // SAFETY: ud2 touches no memory; #UD is fatal (trap.rs) and does not
    // return here.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Reads the u64 at virtual address `addr`, which must be unmapped, to
/// raise #PF on purpose (`crash=pf`). The fatal trap handler ends the
/// kernel, so this never returns.
pub fn fault_on_unmapped(addr: u64) -> ! {
    let p = addr as *const u64;
    // SAFETY: the read faults (the caller names an address no page table
    // maps) and the fatal #PF handler never returns, so no value is ever
    // produced from unmapped memory.
    let v = unsafe { p.read_volatile() };
    panic!("read {v:#x} from {addr:#x}, which should be unmapped");
}
