//! Bringing up the Xen side of the kernel: hypercall page (done earlier),
//! shared info, the event-channel callback vector, the timer VIRQ, and a
//! blocking wait on events with a deadline.

use crate::arch::x86_64::trap;
use crate::mm::direct::ClaimedFrames;
use crate::xen::abi;
use crate::xen::errno::Errno;
use crate::xen::events::{self, Port};
use crate::xen::{calls, time};

/// The vector Xen raises for event-channel upcalls.
pub const CALLBACK_VECTOR: u8 = 0xf3;

/// Event plumbing that is up.
#[derive(Clone, Copy, Debug)]
pub struct Events {
    pub timer_port: Port,
}

/// Maps shared info over `page` (a frame claimed for it), installs the
/// upcall handler and callback vector, and binds VIRQ_TIMER. The IDT must
/// be loaded (it is, before anything Xen-related starts).
pub fn init_events(page: ClaimedFrames) -> Result<Events, Errno> {
    events::map_shared_info(page)?;
    trap::set_irq_handler(CALLBACK_VECTOR, events::upcall);
    calls::set_callback_vector(CALLBACK_VECTOR)?;
    let timer_port = calls::bind_virq(abi::VIRQ_TIMER, 0)?;
    // Interrupts stay disabled: upcalls are taken only while the kernel
    // waits in `wait` (trap::halt_until_interrupt).
    Ok(Events { timer_port })
}

/// Why [`wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// One of the watched ports fired (consumed).
    Port(Port),
    /// The deadline passed.
    Deadline,
}

/// Blocks until one of `ports` fires or Xen system time reaches
/// `deadline_ns`. Interrupts are enabled only while blocked, in
/// [`trap::halt_until_interrupt`]; the kernel otherwise runs with them
/// disabled, and events wait in Xen's pending bits (`evtchn_upcall_pending`
/// makes Xen deliver the upcall as soon as they are enabled).
pub fn wait(ev: &Events, ports: &[Port], deadline_ns: u64) -> Wake {
    loop {
        for &p in ports {
            if events::take(p) {
                return Wake::Port(p);
            }
        }
        if time::now_ns() >= deadline_ns {
            return Wake::Deadline;
        }
        // A deadline in the past fires at once, so no wake-up is lost
        // between the check above and the halt below.
        if calls::set_singleshot_timer(deadline_ns).is_err() {
            // Without a timer we can still poll.
            let _ = calls::sched_yield();
            continue;
        }
        let ready = ports.iter().any(|&p| events::peek(p)) || events::peek(ev.timer_port);
        if !ready {
            trap::halt_until_interrupt();
        }
        events::take(ev.timer_port);
    }
}

/// Sleeps for `ns` nanoseconds.
pub fn sleep_ns(ev: &Events, ns: u64) {
    let deadline = time::now_ns().saturating_add(ns);
    while wait(ev, &[], deadline) != Wake::Deadline {}
}
