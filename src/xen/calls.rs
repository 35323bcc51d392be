//! Typed hypercall wrappers: each builds the argument structure of
//! `xen::abi`, makes the call and returns `Result` with Xen's errno.

use alloc::vec::Vec;

use crate::mm::Pfn;
use crate::xen::abi::{self, domid_t, DOMID_SELF};
use crate::xen::errno::Errno;
use crate::xen::events::Port;
use crate::xen::hypercall::{hypercall2, hypercall3, nr};
use crate::xen::ops::{extent_pages, MemoryOps};

/// Largest batch of extents one reservation call takes (one page of
/// xen_pfn_t, as Linux's balloon driver uses), whatever their order.
pub const MAX_BATCH: usize = 512;

/// A XENMEM_* sub-op number as the memory_op hypercall takes it.
const fn mem_op(cmd: u32) -> u64 {
    cmd as u64
}

// ---- xen_version -------------------------------------------------------

/// XENVER_version: (major, minor).
pub fn xen_version() -> Result<(u32, u32), Errno> {
    // SAFETY: XENVER_version takes no argument buffer.
    let v = unsafe { hypercall2(nr::XEN_VERSION, u64::from(abi::XENVER_version), 0) }?;
    Ok(((v >> 16) as u32, (v & 0xffff) as u32))
}

/// XENVER_extraversion, e.g. ".7" or "-4.17.7".
pub fn xen_extraversion() -> Result<[u8; 16], Errno> {
    let mut buf: abi::xen_extraversion_t = [0; 16];
    // SAFETY: XENVER_extraversion writes 16 bytes to the buffer we pass.
    unsafe {
        hypercall2(
            nr::XEN_VERSION,
            u64::from(abi::XENVER_extraversion),
            buf.as_mut_ptr() as u64,
        )
    }?;
    Ok(buf)
}

// ---- memory_op ---------------------------------------------------------

/// One reservation call on DOMID_SELF over the extents of `extent_order`
/// starting at `pfns`. Misaligned extents and orders too large for a frame
/// count are refused with EINVAL before Xen sees them.
fn reservation_op(cmd: u64, extent_order: u32, pfns: &mut [u64]) -> Result<usize, Errno> {
    if pfns.is_empty() {
        return Ok(0);
    }
    if pfns.len() > MAX_BATCH {
        return Err(Errno::E2BIG);
    }
    let mask = extent_pages(extent_order)
        .ok_or(Errno::EINVAL)?
        .wrapping_sub(1);
    if pfns.iter().any(|&pfn| pfn & mask != 0) {
        return Err(Errno::EINVAL);
    }
    let mut r = abi::xen_memory_reservation {
        extent_order,
        ..abi::xen_memory_reservation::order0_self(pfns.as_mut_ptr() as u64, pfns.len() as u64)
    };
    // SAFETY: `r` is a valid xen_memory_reservation whose extent_start
    // points at `pfns`, which Xen reads and (for populate) may write, for
    // exactly nr_extents entries; both outlive the call. The extents are
    // aligned to their order, as Xen requires.
    let done = unsafe { hypercall2(nr::MEMORY_OP, cmd, &mut r as *mut _ as u64) }?;
    // Xen never reports more than it was asked for; a hypervisor that does
    // is treated as having done none rather than trusted.
    usize::try_from(done)
        .ok()
        .filter(|&d| d <= pfns.len())
        .ok_or(Errno::EIO)
}

fn domid_op(cmd: u64) -> Result<u64, Errno> {
    let mut domid: domid_t = DOMID_SELF;
    // SAFETY: current/maximum_reservation read one domid_t at the pointer.
    unsafe { hypercall2(nr::MEMORY_OP, cmd, &mut domid as *mut domid_t as u64) }
}

/// XENMEM_memory_map: the domain's E820 map, at most `max` entries.
pub fn memory_map(max: usize) -> Result<Vec<abi::e820entry>, Errno> {
    let mut entries = alloc::vec![abi::e820entry::default(); max];
    let mut map = abi::xen_memory_map {
        nr_entries: u32::try_from(max).map_err(|_| Errno::E2BIG)?,
        buffer: entries.as_mut_ptr() as u64,
    };
    // SAFETY: buffer points at `max` e820entry slots that Xen fills; it
    // writes back nr_entries.
    unsafe {
        hypercall2(
            nr::MEMORY_OP,
            mem_op(abi::XENMEM_memory_map),
            &mut map as *mut _ as u64,
        )
    }?;
    let n = (map.nr_entries as usize).min(max);
    entries.truncate(n);
    Ok(entries)
}

/// XENMEM_add_to_physmap of the shared-info page at `gpfn`. Only
/// `events::map_shared_info` calls it, with a frame claimed for good: Xen
/// replaces whatever backed `gpfn`.
pub(in crate::xen) fn map_shared_info(gpfn: Pfn) -> Result<(), Errno> {
    let mut a = abi::xen_add_to_physmap {
        domid: DOMID_SELF,
        size: 0,
        space: abi::XENMAPSPACE_shared_info,
        idx: 0,
        gpfn,
    };
    // SAFETY: a valid xen_add_to_physmap living across the call.
    unsafe {
        hypercall2(
            nr::MEMORY_OP,
            mem_op(abi::XENMEM_add_to_physmap),
            &mut a as *mut _ as u64,
        )
    }?;
    Ok(())
}

/// HYPERVISOR_tmem_op (hypercall 38): one `tmem_op`, which Xen may write
/// back. Xen >= 4.13 has no tmem and answers ENOSYS without reading it.
pub fn tmem_op(op: &mut abi::tmem_op) -> Result<u64, Errno> {
    // SAFETY: `op` is a valid, exclusively borrowed tmem_op that lives
    // across the call; Xen reads and writes only its 56 bytes (layout
    // tested in abi.rs).
    unsafe { hypercall2(nr::TMEM_OP, op as *mut abi::tmem_op as u64, 0) }
}

/// The real [`MemoryOps`]: reservation hypercalls on DOMID_SELF.
#[derive(Debug, Default)]
pub struct XenMemory {
    /// Scratch copy of a batch: populate_physmap may write the array.
    scratch: Vec<u64>,
}

impl XenMemory {
    pub fn new() -> XenMemory {
        XenMemory {
            scratch: Vec::with_capacity(MAX_BATCH),
        }
    }

    fn batch(&mut self, cmd: u64, extent_order: u32, pfns: &[Pfn]) -> Result<usize, Errno> {
        self.scratch.clear();
        self.scratch.extend_from_slice(pfns);
        reservation_op(cmd, extent_order, &mut self.scratch)
    }
}

impl MemoryOps for XenMemory {
    fn decrease_reservation(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.batch(
            mem_op(abi::XENMEM_decrease_reservation),
            extent_order,
            extents,
        )
    }

    fn populate_physmap(&mut self, extent_order: u32, extents: &[Pfn]) -> Result<usize, Errno> {
        self.batch(mem_op(abi::XENMEM_populate_physmap), extent_order, extents)
    }

    fn current_reservation(&mut self) -> Result<u64, Errno> {
        domid_op(mem_op(abi::XENMEM_current_reservation))
    }

    fn maximum_reservation(&mut self) -> Result<u64, Errno> {
        domid_op(mem_op(abi::XENMEM_maximum_reservation))
    }
}

// ---- hvm_op --------------------------------------------------------------

/// HVMOP_get_param for our own domain.
pub fn hvm_get_param(index: u32) -> Result<u64, Errno> {
    let mut p = abi::xen_hvm_param::new(index, 0);
    // SAFETY: a valid xen_hvm_param that Xen fills in.
    unsafe {
        hypercall2(
            nr::HVM_OP,
            u64::from(abi::HVMOP_get_param),
            &mut p as *mut _ as u64,
        )
    }?;
    Ok(p.value)
}

/// HVMOP_set_param for our own domain.
pub fn hvm_set_param(index: u32, value: u64) -> Result<(), Errno> {
    let mut p = abi::xen_hvm_param::new(index, value);
    // SAFETY: a valid xen_hvm_param living across the call.
    unsafe {
        hypercall2(
            nr::HVM_OP,
            u64::from(abi::HVMOP_set_param),
            &mut p as *mut _ as u64,
        )
    }?;
    Ok(())
}

/// Routes event-channel upcalls to `vector` through the domain-wide
/// callback (HVM_PARAM_CALLBACK_IRQ, type vector). Unlike the per-vCPU
/// HVMOP_set_evtchn_upcall_vector, this needs no local-APIC EOI.
pub fn set_callback_vector(vector: u8) -> Result<(), Errno> {
    hvm_set_param(
        abi::HVM_PARAM_CALLBACK_IRQ,
        abi::hvm_callback_via_vector(vector),
    )
}

/// HVMOP_set_evtchn_upcall_vector for `vcpu` (needs a LAPIC EOI per
/// upcall; the kernel uses [`set_callback_vector`] instead).
pub fn set_evtchn_upcall_vector(vcpu: u32, vector: u8) -> Result<(), Errno> {
    let mut a = abi::xen_hvm_evtchn_upcall_vector { vcpu, vector };
    // SAFETY: a valid argument structure living across the call.
    unsafe {
        hypercall2(
            nr::HVM_OP,
            u64::from(abi::HVMOP_set_evtchn_upcall_vector),
            &mut a as *mut _ as u64,
        )
    }?;
    Ok(())
}

// ---- event_channel_op ----------------------------------------------------

fn evtchn_op<T>(cmd: u32, arg: &mut T) -> Result<u64, Errno> {
    // SAFETY: callers pass the argument structure matching `cmd`.
    unsafe { hypercall2(nr::EVENT_CHANNEL_OP, u64::from(cmd), arg as *mut T as u64) }
}

/// EVTCHNOP_bind_virq on `vcpu`: returns the new port.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<Port, Errno> {
    let mut a = abi::evtchn_bind_virq {
        virq,
        vcpu,
        port: 0,
    };
    evtchn_op(abi::EVTCHNOP_bind_virq, &mut a)?;
    Ok(a.port)
}

/// EVTCHNOP_send.
pub fn evtchn_send(port: Port) -> Result<(), Errno> {
    let mut a = abi::evtchn_send { port };
    evtchn_op(abi::EVTCHNOP_send, &mut a).map(|_| ())
}

/// EVTCHNOP_unmask (Xen re-raises the event if it is pending).
pub fn evtchn_unmask(port: Port) -> Result<(), Errno> {
    let mut a = abi::evtchn_unmask { port };
    evtchn_op(abi::EVTCHNOP_unmask, &mut a).map(|_| ())
}

/// EVTCHNOP_close.
pub fn evtchn_close(port: Port) -> Result<(), Errno> {
    let mut a = abi::evtchn_close { port };
    evtchn_op(abi::EVTCHNOP_close, &mut a).map(|_| ())
}

// ---- vcpu_op, sched_op, console_io ----------------------------------------

/// VCPUOP_set_singleshot_timer on vCPU 0 at absolute Xen system time.
/// Without `VCPU_SSHOTTMR_future`, a deadline in the past fires at once.
pub fn set_singleshot_timer(timeout_abs_ns: u64) -> Result<(), Errno> {
    let mut t = abi::vcpu_set_singleshot_timer {
        timeout_abs_ns,
        flags: 0,
    };
    // SAFETY: a valid vcpu_set_singleshot_timer living across the call.
    unsafe {
        hypercall3(
            nr::VCPU_OP,
            u64::from(abi::VCPUOP_set_singleshot_timer),
            0,
            &mut t as *mut _ as u64,
        )
    }?;
    Ok(())
}

/// SCHEDOP_yield.
pub fn sched_yield() -> Result<(), Errno> {
    // SAFETY: SCHEDOP_yield takes no argument.
    unsafe { hypercall2(nr::SCHED_OP, u64::from(abi::SCHEDOP_yield), 0) }.map(|_| ())
}

/// SCHEDOP_block: sleeps until an event is pending (and enables event
/// delivery, like `sti; hlt`).
pub fn sched_block() -> Result<(), Errno> {
    // SAFETY: SCHEDOP_block takes no argument.
    unsafe { hypercall2(nr::SCHED_OP, u64::from(abi::SCHEDOP_block), 0) }.map(|_| ())
}

/// SCHEDOP_shutdown with `reason` (SHUTDOWN_*). Takes a pointer to a
/// `sched_shutdown`, not the reason by value. Returns only on failure.
pub fn sched_shutdown(reason: u32) -> Errno {
    let mut s = abi::sched_shutdown { reason };
    // SAFETY: a valid sched_shutdown living across the call.
    match unsafe {
        hypercall2(
            nr::SCHED_OP,
            u64::from(abi::SCHEDOP_shutdown),
            &mut s as *mut _ as u64,
        )
    } {
        Ok(_) => Errno::EINTR,
        Err(e) => e,
    }
}

/// CONSOLEIO_write (shown by Xen for dom0; dropped for a domU by release
/// builds).
pub fn console_write(bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: Xen reads `len` bytes from the pointer.
    unsafe {
        hypercall3(
            nr::CONSOLE_IO,
            u64::from(abi::CONSOLEIO_write),
            bytes.len() as u64,
            bytes.as_ptr() as u64,
        )
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_reservation_batches_are_refused_before_the_hypercall() {
        let op = mem_op(abi::XENMEM_decrease_reservation);
        assert_eq!(reservation_op(op, 9, &mut []), Ok(0));
        assert_eq!(reservation_op(op, 9, &mut [512, 1025]), Err(Errno::EINVAL));
        assert_eq!(reservation_op(op, 64, &mut [0]), Err(Errno::EINVAL));
        assert_eq!(
            reservation_op(op, 0, &mut [0; MAX_BATCH + 1]),
            Err(Errno::E2BIG)
        );
    }
}
