//! The PV console ring (HVM_PARAM_CONSOLE_PFN / _EVTCHN): what `xl
//! console` and xenconsoled's log show for a domU.
//!
//! We produce into `out` and publish `out_prod`; xenconsoled consumes and
//! advances `out_cons`. The indices on the shared page are validated like
//! any peer input: a `prod - cons` larger than the ring means the peer is
//! broken and we stop writing rather than overrun. When the ring is full
//! (nobody reading), output is dropped after a short bounded wait and the
//! loss is counted: a console must never wedge the kernel.

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{fence, Ordering};

use crate::mm::direct::ClaimedFrames;
use crate::xen::abi::xencons_interface;
use crate::xen::calls;
use crate::xen::events::Port;

const OUT_SIZE: u32 = 2048;

/// A PV console ring we write to.
#[derive(Debug)]
pub struct PvConsole {
    page: *mut xencons_interface,
    port: Port,
    /// Bytes dropped because the ring stayed full or looked corrupt.
    pub dropped: u64,
}

// SAFETY: the console page is only touched through this struct, which the
// kernel keeps behind the console lock.
unsafe impl Send for PvConsole {}

impl PvConsole {
    /// Wraps the console page Xen set up for this domain
    /// (HVM_PARAM_CONSOLE_PFN), claimed from the direct map, with event
    /// channel `port`. The console keeps the page for good.
    pub fn new(page: ClaimedFrames, port: Port) -> PvConsole {
        let ptr = page.into_permanent::<xencons_interface>();
        PvConsole {
            page: ptr,
            port,
            dropped: 0,
        }
    }

    fn out_cons(&self) -> u32 {
        // SAFETY: the page is valid (a claimed page, see `new`); volatile because
        // the peer updates it.
        unsafe { addr_of!((*self.page).out_cons).read_volatile() }
    }

    fn out_prod(&self) -> u32 {
        // SAFETY: as above.
        unsafe { addr_of!((*self.page).out_prod).read_volatile() }
    }

    /// Writes as much of `bytes` as fits; returns how many were written.
    fn write_some(&mut self, bytes: &[u8]) -> Option<usize> {
        let cons = self.out_cons();
        fence(Ordering::Acquire);
        let mut prod = self.out_prod();
        let used = prod.wrapping_sub(cons);
        if used > OUT_SIZE {
            return None; // corrupt indices: refuse to write
        }
        let space = (OUT_SIZE - used) as usize;
        let n = space.min(bytes.len());
        for &b in &bytes[..n] {
            let idx = (prod & (OUT_SIZE - 1)) as usize;
            // SAFETY: idx < 2048 = out.len(); the page is valid.
            unsafe { addr_of_mut!((*self.page).out[idx]).write_volatile(b) };
            prod = prod.wrapping_add(1);
        }
        fence(Ordering::Release);
        // SAFETY: publishing our producer index on the valid page.
        unsafe { addr_of_mut!((*self.page).out_prod).write_volatile(prod) };
        Some(n)
    }

    fn notify(&self) {
        let _ = calls::evtchn_send(self.port);
    }
}

impl PvConsole {
    /// Writes all of `bytes`, waiting for xenconsoled while the ring is
    /// full; counts what it had to drop after 1000 stalls or a bad ring.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        let mut stalls = 0u32;
        while !rest.is_empty() {
            match self.write_some(rest) {
                Some(0) => {
                    self.notify();
                    stalls += 1;
                    if stalls > 1000 {
                        self.dropped += rest.len() as u64;
                        return;
                    }
                    let _ = calls::sched_yield();
                }
                Some(n) => {
                    rest = &rest[n..];
                    stalls = 0;
                }
                None => {
                    self.dropped += rest.len() as u64;
                    return;
                }
            }
        }
        self.notify();
    }
}
