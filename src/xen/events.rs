//! Event channels (2-level ABI) delivered through the HVM callback vector.
//!
//! Xen sets bits in `shared_info.evtchn_pending` and raises our callback
//! vector. The interrupt handler ([`upcall`]) moves pending, unmasked ports
//! into a `fired` bitmap of our own and clears Xen's bits; the kernel's
//! main loop and blocking waits consume `fired` with [`take`]. No work is
//! done in interrupt context beyond that, so handlers never race with the
//! code they interrupt.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use xen_sys::shared_info;

use crate::mm::direct::ClaimedFrames;
use crate::xen::errno::Errno;

/// An event channel port.
pub type Port = u32;

/// Ports the 2-level ABI can name on x86-64 (64 words of 64 bits).
pub const MAX_PORTS: usize = 64 * 64;

static SHARED: AtomicPtr<shared_info> = AtomicPtr::new(core::ptr::null_mut());
static FIRED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
/// Count of upcalls taken, for the selftest and status.
pub static UPCALLS: AtomicU64 = AtomicU64::new(0);

/// Makes the mapped shared-info page known to the event and time code.
///
/// # Safety
/// `shared` must point at Xen's shared_info page, mapped for the rest of
/// the kernel's life. Xen writes it concurrently, so it is only accessed
/// with volatile or atomic operations.
pub unsafe fn set_shared_info(shared: *mut shared_info) {
    SHARED.store(shared, Ordering::Release);
}

/// Asks Xen to place the shared-info page over the claimed frame
/// (XENMAPSPACE_shared_info) and publishes it to the upcall handler.
pub fn map_shared_info(page: ClaimedFrames) -> Result<(), Errno> {
    super::calls::map_shared_info(page.pfn())?;
    // The claimed frame holds shared info for good.
    let ptr = page.into_permanent::<shared_info>();
    // SAFETY: Xen backs the claimed frame with shared info from now on;
    // the identity map addresses it at `ptr`; the frame is ours alone for
    // good (ClaimedFrames, consumed above).
    unsafe { set_shared_info(ptr) };
    // HVM guests ignore the PV upcall mask, but clear it for clarity.
    // SAFETY: vcpu 0's mask byte in the page just published; a raw
    // projection, no reference is made.
    unsafe { core::ptr::addr_of_mut!((*ptr).vcpu_info[0].evtchn_upcall_mask).write_volatile(0) };
    Ok(())
}

/// The shared-info page, once mapped.
pub fn shared_info_ptr() -> Option<*mut shared_info> {
    let p = SHARED.load(Ordering::Acquire);
    (!p.is_null()).then_some(p)
}

fn word(p: *mut u64) -> &'static AtomicU64 {
    // SAFETY: callers pass pointers into the shared-info page (mapped for
    // the kernel's lifetime, 8-byte aligned fields); Xen updates those words
    // with atomic operations too, so atomics are the right view of them.
    unsafe { AtomicU64::from_ptr(p) }
}

/// The callback-vector interrupt handler: collect pending ports.
pub fn upcall(_vector: u8) {
    let Some(sh) = shared_info_ptr() else { return };
    UPCALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: (for the raw field projections below) `sh` is the live
    // shared-info page; addr_of_mut! creates no references.
    let vcpu0 = unsafe { core::ptr::addr_of_mut!((*sh).vcpu_info[0]) };
    loop {
        // SAFETY: byte field of vcpu_info 0 in the shared page; Xen sets
        // it, we clear it before scanning so that a new event re-raises it.
        unsafe { core::ptr::addr_of_mut!((*vcpu0).evtchn_upcall_pending).write_volatile(0) };
        // SAFETY: as above, the pending selector word.
        let sel = word(unsafe { core::ptr::addr_of_mut!((*vcpu0).evtchn_pending_sel) })
            .swap(0, Ordering::AcqRel);
        if sel == 0 {
            break;
        }
        for i in BitIter(sel) {
            // SAFETY: i < 64, within the pending and mask arrays.
            let pending = word(unsafe { core::ptr::addr_of_mut!((*sh).evtchn_pending[i]) });
            // SAFETY: as above.
            let mask = word(unsafe { core::ptr::addr_of_mut!((*sh).evtchn_mask[i]) });
            let ready = pending.load(Ordering::Acquire) & !mask.load(Ordering::Acquire);
            if ready != 0 {
                pending.fetch_and(!ready, Ordering::AcqRel);
                FIRED[i].fetch_or(ready, Ordering::AcqRel);
            }
        }
    }
}

/// Consumes a fired event on `port`: true if it fired since the last call.
pub fn take(port: Port) -> bool {
    let (w, b) = split(port);
    match FIRED.get(w) {
        Some(f) => f.fetch_and(!(1 << b), Ordering::AcqRel) & (1 << b) != 0,
        None => false,
    }
}

/// Whether `port` has fired (without consuming it).
pub fn peek(port: Port) -> bool {
    let (w, b) = split(port);
    FIRED
        .get(w)
        .is_some_and(|f| f.load(Ordering::Acquire) & (1 << b) != 0)
}

/// Marks `port` as fired (used to re-arm a wait that consumed too much).
pub fn mark(port: Port) {
    let (w, b) = split(port);
    if let Some(f) = FIRED.get(w) {
        f.fetch_or(1 << b, Ordering::AcqRel);
    }
}

fn split(port: Port) -> (usize, u32) {
    ((port / 64) as usize, port % 64)
}

/// Checks a port number from Xen or xenstore against the 2-level limit.
pub fn valid_port(port: u64) -> Result<Port, Errno> {
    if port == 0 || port >= MAX_PORTS as u64 {
        Err(Errno::EINVAL)
    } else {
        Ok(port as Port)
    }
}

struct BitIter(u64);

impl Iterator for BitIter {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_iter_yields_set_bits() {
        let v: Vec<usize> = BitIter(0b1010_0001).collect();
        assert_eq!(v, vec![0, 5, 7]);
        assert_eq!(BitIter(0).count(), 0);
        assert_eq!(BitIter(u64::MAX).count(), 64);
    }

    #[test]
    fn fired_bitmap_take_and_peek() {
        mark(130);
        assert!(peek(130));
        assert!(take(130));
        assert!(!take(130));
        assert!(!take(5000));
        assert_eq!(valid_port(0), Err(Errno::EINVAL));
        assert_eq!(valid_port(4096), Err(Errno::EINVAL));
        assert_eq!(valid_port(7), Ok(7));
    }
}
