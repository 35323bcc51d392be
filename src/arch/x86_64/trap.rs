//! Trap dispatch: the Rust side of `boot/isr.S`.
//!
//! Exceptions are fatal for now (reported with vector, error code, RIP and
//! CR2, then the registered fatal hook runs, e.g. to print the selftest
//! result and shut down). External interrupts go to the handler registered
//! for their vector. A page-fault hook slot is reserved for demand paging.

use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use super::gdt;

extern "C" {
    /// `boot/isr.S`: saves the callee-saved registers and `%rsp`, sets
    /// `IN_IDLE`, `sti; hlt`; returns after an interrupt with interrupts
    /// disabled again.
    fn idle_halt();
    /// The instruction after the `hlt` in `idle_halt`.
    static idle_resume: u8;
    /// `idle_halt` with `int $SELFTEST_VECTOR` instead of `sti; hlt`.
    fn idle_selftest();
}

/// The vector `idle_selftest` raises (`boot/isr.S`).
pub const SELFTEST_VECTOR: u8 = 0xf0;

/// Raises [`SELFTEST_VECTOR`] as if an interrupt arrived in
/// `idle_halt`, for the selftest of nested deliveries. Interrupts stay
/// disabled (`int n` ignores IF).
pub fn simulate_idle_interrupt() {
    // SAFETY: as halt_until_interrupt: idle_selftest saves and restores
    // the callee-saved registers and returns on our stack; the vector's
    // handler runs on the IRQ IST stack.
    unsafe { idle_selftest() }
}

/// `%rsp` inside `idle_halt` while it waits (written by the asm).
#[no_mangle]
static IDLE_RSP: AtomicU64 = AtomicU64::new(0);
/// 1 while `idle_halt` has interrupts enabled or is being interrupted.
#[no_mangle]
static IN_IDLE: AtomicU8 = AtomicU8::new(0);

/// Interrupts delivered while the IRQ stack was in use (a duplicate
/// injection by the hypervisor or emulator; see [`trap_dispatch`]).
pub static NESTED_IRQS: AtomicU64 = AtomicU64::new(0);
/// Interrupts delivered although the interrupted code had interrupts
/// disabled (only an injecting hypervisor does that).
pub static MASKED_IRQS: AtomicU64 = AtomicU64::new(0);
/// Interrupts on vectors without a handler.
pub static SPURIOUS_IRQS: AtomicU64 = AtomicU64::new(0);

const RFLAGS_IF: u64 = 1 << 9;
/// Bit 1 of RFLAGS is always set.
const RFLAGS_FIXED: u64 = 1 << 1;

/// Waits for the next interrupt: the only place where the kernel runs
/// with interrupts enabled. Returns with them disabled. (A `hlt` with
/// interrupts off would power a PVH domain off; this `hlt` has them on.)
pub fn halt_until_interrupt() {
    // SAFETY: idle_halt preserves every callee-saved register and the
    // stack (the C ABI of its declaration); interrupt handlers run on the
    // IRQ IST stack, never on ours, and return to idle_resume.
    unsafe { idle_halt() }
}

/// Register state saved by `isr_common`, lowest address first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// An interrupt handler for one vector.
pub type IrqHandler = fn(vector: u8);

/// What to do with a fault: `true` if it was resolved and the faulting
/// instruction may be retried (demand paging will use this for #PF).
pub type FaultHandler = fn(frame: &TrapFrame, cr2: u64) -> bool;

/// Called for an unrecoverable exception, after it has been reported.
pub type FatalHook = fn(frame: &TrapFrame) -> !;

static IRQ_HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static PAGE_FAULT: AtomicUsize = AtomicUsize::new(0);
static FATAL: AtomicUsize = AtomicUsize::new(0);
static BREAKPOINT: AtomicUsize = AtomicUsize::new(0);

/// Called for `int3`; execution resumes after the instruction.
pub type BreakpointHook = fn(frame: &TrapFrame);

/// Registers `handler` for external interrupt `vector` (32..=255).
pub fn set_irq_handler(vector: u8, handler: IrqHandler) {
    IRQ_HANDLERS[usize::from(vector)].store(handler as usize, Ordering::Release);
}

/// Registers the page-fault resolver (demand paging).
pub fn set_page_fault_handler(handler: FaultHandler) {
    PAGE_FAULT.store(handler as usize, Ordering::Release);
}

/// Registers what runs after a fatal exception has been reported.
pub fn set_fatal_hook(hook: FatalHook) {
    FATAL.store(hook as usize, Ordering::Release);
}

/// Registers a hook for `int3` (the selftest uses it to prove that the
/// IDT, the IST stacks and the return path work).
pub fn set_breakpoint_hook(hook: BreakpointHook) {
    BREAKPOINT.store(hook as usize, Ordering::Release);
}

/// Name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD exception",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "exception",
    }
}

fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// An external interrupt. Nothing here logs: the interrupted code may hold
/// the console lock (an injected interrupt can arrive with IF clear).
///
/// Interrupts are only enabled in `idle_halt`, and handlers run on the IRQ
/// IST stack with interrupts disabled, so a second delivery while the
/// stack is in use cannot come from the CPU: it is an injection that
/// ignored IF (QEMU's emulated SVM re-injects an event it already
/// delivered). It wrote its frame where the first one was, at the top of
/// the IRQ stack, so the first return address is gone and returning
/// through the new frame would loop in the entry stub forever. The first
/// delivery can only have come from `idle_halt`: return there instead,
/// with the stack pointer it saved.
fn irq(frame: &mut TrapFrame) {
    let (bottom, top) = gdt::ist_range(gdt::IST_IRQ);
    if (bottom..=top).contains(&frame.rsp) {
        NESTED_IRQS.fetch_add(1, Ordering::Relaxed);
        if IN_IDLE.load(Ordering::Acquire) == 0 {
            // The first delivery interrupted something else: its state
            // is lost and there is nothing to return to.
            fatal(
                frame,
                "interrupt nested on the IRQ stack outside idle_halt",
                0,
            );
        }
        let (code, data) = gdt::selectors();
        frame.rip = core::ptr::addr_of!(idle_resume) as u64;
        frame.cs = u64::from(code);
        frame.rflags = RFLAGS_FIXED;
        frame.rsp = IDLE_RSP.load(Ordering::Acquire);
        frame.ss = u64::from(data);
    } else if frame.rflags & RFLAGS_IF == 0 {
        MASKED_IRQS.fetch_add(1, Ordering::Relaxed);
    }
    let vector = frame.vector;
    let h = IRQ_HANDLERS[(vector & 0xff) as usize].load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only set_irq_handler stores non-zero values, and it
        // stores IrqHandler function pointers.
        let handler: IrqHandler = unsafe { core::mem::transmute::<usize, IrqHandler>(h) };
        handler(vector as u8);
    } else {
        SPURIOUS_IRQS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reports an unrecoverable trap (`what`: its name, `cr2`: the faulting
/// address for #PF, else 0) with the saved registers, runs the fatal hook
/// and ends the kernel.
fn fatal(frame: &TrapFrame, what: &str, cr2: u64) -> ! {
    log::error!(
        "FATAL {what} (vector {}) error_code={:#x} rip={:#x} rsp={:#x} cr2={:#x} rflags={:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        frame.rsp,
        cr2,
        frame.rflags
    );
    log::error!(
        "rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp
    );
    let hook = FATAL.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: only set_fatal_hook stores non-zero values.
        let hook: FatalHook = unsafe { core::mem::transmute::<usize, FatalHook>(hook) };
        hook(frame);
    }
    loop {
        super::cpu::enable_interrupts_and_halt();
    }
}

/// Entry from `isr_common`.
///
/// # Safety
/// Only `isr_common` calls this, with a pointer to the frame it just
/// pushed on the current (IST) stack.
#[no_mangle]
pub unsafe extern "C" fn trap_dispatch(frame: *mut TrapFrame) {
    // SAFETY: isr_common passes a valid, exclusive pointer to the saved
    // registers for the duration of this call.
    let frame = unsafe { &mut *frame };
    let vector = frame.vector;
    if vector >= 32 {
        irq(frame);
        return;
    }
    if vector == 3 {
        let h = BREAKPOINT.load(Ordering::Acquire);
        if h != 0 {
            // SAFETY: only set_breakpoint_hook stores non-zero values.
            let hook: BreakpointHook = unsafe { core::mem::transmute::<usize, BreakpointHook>(h) };
            hook(frame);
            return;
        }
    }
    let cr2 = if vector == 14 { read_cr2() } else { 0 };
    if vector == 14 {
        let h = PAGE_FAULT.load(Ordering::Acquire);
        if h != 0 {
            // SAFETY: only set_page_fault_handler stores non-zero values.
            let handler: FaultHandler = unsafe { core::mem::transmute::<usize, FaultHandler>(h) };
            if handler(frame, cr2) {
                return;
            }
        }
    }
    fatal(frame, exception_name(vector), cr2)
}

/// Raises #BP (`int3`): the breakpoint hook runs on the exception IST stack
/// and execution continues after the instruction.
pub fn breakpoint() {
    // SAFETY: the IDT gate for #BP (idt::init) returns to the next
    // instruction; int3 touches no memory of ours.
    unsafe { core::arch::asm!("int3") }
}

/// Raises [`SELFTEST_VECTOR`] by software interrupt, into the handler
/// installed with [`set_irq_handler`] (the selftest's nesting check).
pub fn raise_selftest_vector() {
    // SAFETY: `int` into our own IDT gate on the IRQ IST stack; the
    // dispatcher returns (or resumes the idle context, see trap_dispatch).
    unsafe { core::arch::asm!("int {v}", v = const SELFTEST_VECTOR) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_frame_matches_isr_common_layout() {
        // 15 GPRs pushed by isr_common, vector + error code, then the
        // 5-word hardware frame.
        assert_eq!(core::mem::size_of::<TrapFrame>(), (15 + 2 + 5) * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rax), 14 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 15 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rip), 17 * 8);
    }
}
