//! The hypercall page and raw hypercalls.
//!
//! Xen fills a page we own with one 32-byte stub per hypercall
//! (`mov $nr, %eax; vmcall/vmmcall; ret`) once we write the page's physical
//! address to the MSR that CPUID leaf base+2 names. The calling convention
//! is the 64-bit one: %rax = number, arguments in %rdi, %rsi, %rdx, %r10,
//! %r8; result in %rax.
//!
//! `xen-sys` has `hypercall_1`..`hypercall_5` against a symbol
//! `HYPERCALL_PAGE` (which we define here, with the page's name xen-sys
//! expects), but we do not call them: its `hypercall_5` puts the fifth
//! argument in %r9 instead of %r8, its asm is marked `nostack` although
//! `call` pushes a return address, and each wrapper declares only the
//! registers it passes as clobbered, while a debug build of Xen
//! deliberately overwrites every argument register a hypercall does not
//! use. `raw` is the one asm path: all five argument registers are
//! declared clobbered, whatever the arity. The hypercall numbers, and the
//! structure definitions `xen::abi` re-exports, do come from xen-sys.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::x86_64::cpu;
use crate::xen::errno::Errno;

/// One page of hypercall stubs, written by Xen.
#[repr(C, align(4096))]
pub struct HypercallPage(pub [u8; 4096]);

impl core::fmt::Debug for HypercallPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HypercallPage")
    }
}

/// The hypercall page. Only Xen writes it (through the physical address we
/// give it); Rust code only executes it. The name is what `xen-sys`
/// references.
#[no_mangle]
#[link_section = ".text.hypercall_page"]
pub static HYPERCALL_PAGE: HypercallPage = HypercallPage([0xc3; 4096]);

static READY: AtomicBool = AtomicBool::new(false);

/// Where Xen was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenCpuid {
    /// CPUID base leaf (0x40000000 + 0x100 k).
    pub base: u32,
    /// Highest leaf at that base.
    pub max_leaf: u32,
}

/// Looks for Xen's CPUID leaves ("XenVMMXenVMM"). Under another hypervisor
/// (or none) returns `None`. Xen may sit at a higher base when it offers
/// Viridian or another interface at 0x40000000.
pub fn detect() -> Option<XenCpuid> {
    // Bit 31 of CPUID.1:ECX is set when running under any hypervisor.
    if cpu::cpuid(1).ecx & (1 << 31) == 0 {
        return None;
    }
    (0..16u32)
        .map(|k| 0x4000_0000 + 0x100 * k)
        .find_map(|base| {
            let r = cpu::cpuid(base);
            let sig = [r.ebx, r.ecx, r.edx];
            let want = [
                u32::from_le_bytes(*b"XenV"),
                u32::from_le_bytes(*b"MMXe"),
                u32::from_le_bytes(*b"nVMM"),
            ];
            (sig == want && r.eax >= base + 2).then_some(XenCpuid {
                base,
                max_leaf: r.eax,
            })
        })
}

/// Xen's version from CPUID leaf base+1: (major, minor).
pub fn cpuid_version(xen: XenCpuid) -> (u32, u32) {
    let v = cpu::cpuid(xen.base + 1).eax;
    (v >> 16, v & 0xffff)
}

/// Asks Xen to fill the hypercall page.
///
/// # Safety
/// Must run under Xen (`xen` from [`detect`]) with the kernel image
/// identity mapped, so that the page's virtual address is its physical one.
pub unsafe fn init(xen: XenCpuid) {
    let msr = cpu::cpuid(xen.base + 2).ebx;
    let paddr = &HYPERCALL_PAGE as *const HypercallPage as u64;
    // SAFETY: the MSR from leaf base+2 takes the guest-physical address of
    // a page for Xen to write hypercall stubs into; HYPERCALL_PAGE is such
    // a page, page aligned, owned by us and never read as data.
    unsafe { cpu::wrmsr(msr, paddr) };
    READY.store(true, Ordering::Release);
}

/// Whether [`init`] has run.
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

fn checked(ret: i64) -> Result<u64, Errno> {
    Errno::from_ret(ret)
}

/// The one hypercall path: calls the stub for `op` with five arguments.
///
/// # Safety
/// [`init`] must have run, and the arguments must be what hypercall `op`
/// expects: pointers must point at live, correctly laid out structures
/// that Xen may read or write for the duration of the call.
unsafe fn raw(op: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> Result<u64, Errno> {
    if !ready() || op >= 128 {
        return Err(Errno::ENOSYS);
    }
    let entry = HYPERCALL_PAGE.0.as_ptr() as u64 + u64::from(op) * 32;
    let ret: i64;
    // SAFETY: `entry` is Xen's stub for `op` in the initialised page; the
    // caller guarantees the arguments. Xen may clobber every argument
    // register (debug builds do on purpose), so all are declared
    // clobbered. The kernel is built without a red zone, so the return
    // address that `call` pushes overwrites nothing live.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rax") 0i64 => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            out("r9") _,
            out("r11") _,
            out("rcx") _,
        );
    }
    checked(ret)
}

/// A hypercall with two arguments.
///
/// # Safety
/// As [`hypercall5`].
pub unsafe fn hypercall2(op: u32, a1: u64, a2: u64) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { raw(op, a1, a2, 0, 0, 0) }
}

/// A hypercall with three arguments.
///
/// # Safety
/// As [`hypercall5`].
pub unsafe fn hypercall3(op: u32, a1: u64, a2: u64, a3: u64) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { raw(op, a1, a2, a3, 0, 0) }
}

/// A hypercall with four arguments.
///
/// # Safety
/// As [`hypercall5`].
pub unsafe fn hypercall4(op: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { raw(op, a1, a2, a3, a4, 0) }
}

/// A hypercall with five arguments (the fifth in %r8, as Xen's ABI has it).
///
/// # Safety
/// [`init`] must have run, and the arguments must be what hypercall `op`
/// expects: pointers must point at live, correctly laid out structures
/// that Xen may read or write for the duration of the call.
pub unsafe fn hypercall5(
    op: u32,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { raw(op, a1, a2, a3, a4, a5) }
}

/// Hypercall numbers (xen/include/public/xen.h), from xen-sys.
pub mod nr {
    pub use xen_sys::{
        __HYPERVISOR_console_io as CONSOLE_IO, __HYPERVISOR_event_channel_op as EVENT_CHANNEL_OP,
        __HYPERVISOR_hvm_op as HVM_OP, __HYPERVISOR_memory_op as MEMORY_OP,
        __HYPERVISOR_sched_op as SCHED_OP, __HYPERVISOR_tmem_op as TMEM_OP,
        __HYPERVISOR_vcpu_op as VCPU_OP, __HYPERVISOR_xen_version as XEN_VERSION,
    };
}
