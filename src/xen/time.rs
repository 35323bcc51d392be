//! Xen system time (pvclock) from the shared-info page.
//!
//! system_time_ns = system_time + scale(tsc - tsc_timestamp), where scale
//! shifts by tsc_shift and multiplies by tsc_to_system_mul / 2^32. The
//! record is consistent when its version is even and unchanged across the
//! read.

use core::sync::atomic::{fence, Ordering};

use xen_sys::vcpu_time_info;

use crate::arch::x86_64::cpu;
use crate::xen::events;

/// One consistent snapshot of a vcpu_time_info record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    pub tsc_timestamp: u64,
    pub system_time_ns: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
}

impl TimeInfo {
    /// Nanoseconds of Xen system time at TSC value `tsc`.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        // Free-running u64 arithmetic, as pvclock defines it: with a TSC
        // offset the guest's timestamp can be "negative" (seen on Xen 4.17:
        // tsc_timestamp 0xffff_ffff_dd0f_..., TSC 0x9a9e_...). A TSC
        // slightly behind the stamp (another CPU's record) counts as 0.
        let mut delta = match tsc.wrapping_sub(self.tsc_timestamp) {
            d if (d as i64) < 0 => 0,
            d => d,
        };
        if self.tsc_shift >= 0 {
            // Saturate rather than drop the high bits.
            let shift = self.tsc_shift as u32;
            delta = if delta.leading_zeros() >= shift {
                delta << shift
            } else {
                u64::MAX
            };
        } else {
            delta >>= u32::from(self.tsc_shift.unsigned_abs()).min(63);
        }
        let scaled = ((u128::from(delta) * u128::from(self.tsc_to_system_mul)) >> 32) as u64;
        self.system_time_ns.saturating_add(scaled)
    }
}

fn read_record(p: *const vcpu_time_info) -> TimeInfo {
    loop {
        // SAFETY: `p` points at vcpu 0's time record inside the mapped
        // shared-info page; Xen updates it concurrently, hence volatile
        // reads bracketed by the version protocol.
        unsafe {
            let v1 = core::ptr::addr_of!((*p).version).read_volatile();
            fence(Ordering::Acquire);
            let t = TimeInfo {
                tsc_timestamp: core::ptr::addr_of!((*p).tsc_timestamp).read_volatile(),
                system_time_ns: core::ptr::addr_of!((*p).system_time).read_volatile(),
                tsc_to_system_mul: core::ptr::addr_of!((*p).tsc_to_system_mul).read_volatile(),
                tsc_shift: core::ptr::addr_of!((*p).tsc_shift).read_volatile(),
            };
            fence(Ordering::Acquire);
            let v2 = core::ptr::addr_of!((*p).version).read_volatile();
            if v1 == v2 && v1 & 1 == 0 {
                return t;
            }
        }
        cpu::relax();
    }
}

/// The current time record of vCPU 0 and the TSC, for diagnostics.
pub fn record() -> Option<(TimeInfo, u64)> {
    events::shared_info_ptr().map(|sh| {
        // SAFETY: projection to vcpu 0's time record; no reference made.
        let p = unsafe { core::ptr::addr_of!((*sh).vcpu_info[0].time) };
        (read_record(p), cpu::rdtsc())
    })
}

/// Xen system time in ns (time since the domain's host booted, monotonic),
/// or 0 before the shared-info page is mapped.
pub fn now_ns() -> u64 {
    match events::shared_info_ptr() {
        Some(sh) => {
            // SAFETY: projection to vcpu 0's time record; no reference made.
            let p = unsafe { core::ptr::addr_of!((*sh).vcpu_info[0].time) };
            let t = read_record(p);
            t.ns_at(cpu::rdtsc())
        }
        None => 0,
    }
}

/// A [`Clock`](crate::xen::ops::Clock) over Xen system time.
#[derive(Clone, Copy, Debug, Default)]
pub struct XenClock;

impl crate::xen::ops::Clock for XenClock {
    fn now_ns(&self) -> u64 {
        now_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_pvclock_formula() {
        // 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
        let t = TimeInfo {
            tsc_timestamp: 1000,
            system_time_ns: 5_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 0,
        };
        assert_eq!(t.ns_at(1000), 5_000);
        assert_eq!(t.ns_at(3000), 6_000);
        // TSC behind the timestamp (another vCPU's record): no underflow.
        assert_eq!(t.ns_at(10), 5_000);
        // A timestamp that wrapped below zero (TSC offset), as measured.
        let w = TimeInfo {
            tsc_timestamp: 0u64.wrapping_sub(1000),
            ..t
        };
        assert_eq!(w.ns_at(1000), 5_000 + 1000);
        let s = TimeInfo { tsc_shift: -1, ..t };
        assert_eq!(s.ns_at(5000), 5_000 + 1000);
        let u = TimeInfo { tsc_shift: 1, ..t };
        assert_eq!(u.ns_at(2000), 5_000 + 1000);
        // A shift that would overflow saturates instead of wrapping.
        let v = TimeInfo {
            tsc_shift: 8,
            tsc_to_system_mul: 1,
            ..t
        };
        assert_eq!(v.ns_at(1000 + (1 << 60)), 5_000 + (u64::MAX >> 32));
    }
}
