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
    /// Nanoseconds of Xen system time at TSC value `tsc`:
    /// `system_time_ns + scale(tsc - tsc_timestamp)`, saturating at
    /// `u64::MAX` (see `scale_delta` for what any `tsc_shift` and
    /// `tsc_to_system_mul` yield). Never panics.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        // Free-running u64 arithmetic, as pvclock defines it: with a TSC
        // offset the guest's timestamp can be "negative" (seen on Xen 4.17:
        // tsc_timestamp 0xffff_ffff_dd0f_..., TSC 0x9a9e_...). A TSC
        // slightly behind the stamp (another CPU's record) counts as 0.
        let delta = match tsc.wrapping_sub(self.tsc_timestamp) {
            d if (d as i64) < 0 => 0,
            d => d,
        };
        let scaled = scale_delta(delta, self.tsc_to_system_mul, self.tsc_shift);
        self.system_time_ns.saturating_add(scaled)
    }
}

/// The pvclock scaling of a TSC delta to nanoseconds, for any values the
/// hypervisor writes: `floor(d * 2^shift * mul / 2^32)`, where for a
/// negative `shift` `d = floor(delta / 2^-shift)` (the low bits are
/// dropped before multiplying, as pvclock does) and otherwise `d = delta`.
/// The result saturates at `u64::MAX` instead of wrapping.
///
/// Real records have a small `|tsc_shift|`; any other value still means
/// the same formula: a shift of -64 or below shifts the whole delta out
/// and gives 0; a shift `s` of 32 or more multiplies `delta * mul` by
/// `2^(s - 32)`, which saturates unless `delta * mul < 2^(96 - s)` (so
/// from 96 up, everything but 0 saturates). A `mul` of 0 gives 0. The
/// result never decreases as `delta`, `shift` or `mul` grow.
fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift < 0 {
        // A shift of 64 or more leaves nothing.
        delta
            .checked_shr(u32::from(shift.unsigned_abs()))
            .unwrap_or(0)
    } else {
        delta
    };
    // < 2^96: cannot overflow.
    let product = u128::from(d) * u128::from(mul);
    // 0..=127
    let up = u32::from(shift.max(0).unsigned_abs());
    let scaled = match up.checked_sub(32) {
        // Net shift right by 0..=32.
        None | Some(0) => product >> (32 - up),
        // Net shift left by 1..=95, saturating when bits would be lost.
        Some(_) if product == 0 => 0,
        Some(left) if left >= product.leading_zeros() => return u64::MAX,
        Some(left) => product << left,
    };
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Reads one consistent snapshot of the record at `p`, retrying while Xen
/// is updating it.
///
/// # Safety
/// `p` must point at a `vcpu_time_info` that stays mapped and readable
/// for the duration of the call (a record in the shared-info page).
unsafe fn read_record(p: *const vcpu_time_info) -> TimeInfo {
    loop {
        // SAFETY: by the caller's contract `p` points at a readable
        // vcpu_time_info. `addr_of!` reaches each field without making a
        // reference (Xen writes the record concurrently), each field is
        // read with one volatile read of its own aligned integer type, and
        // any bit pattern is a valid integer; a snapshot torn by a
        // concurrent update is rejected by the version check below.
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
        // SAFETY: `shared_info_ptr` only returns the pointer registered
        // with `set_shared_info`, whose contract is that it points at
        // Xen's shared-info page, mapped for the rest of the kernel's
        // life. `addr_of!` projects to vcpu_info[0].time (index 0 of a
        // fixed-size array) without making a reference, and that record
        // stays mapped and readable, as `read_record` requires.
        let t = unsafe { read_record(core::ptr::addr_of!((*sh).vcpu_info[0].time)) };
        (t, cpu::rdtsc())
    })
}

/// Xen system time in ns (time since the domain's host booted, monotonic),
/// or 0 before the shared-info page is mapped.
pub fn now_ns() -> u64 {
    match events::shared_info_ptr() {
        Some(sh) => {
            // SAFETY: as in `record`: `sh` is the shared-info page that
            // `set_shared_info`'s contract keeps mapped for the kernel's
            // life, the projection to vcpu_info[0].time makes no
            // reference, and that record stays readable during the call.
            let t = unsafe { read_record(core::ptr::addr_of!((*sh).vcpu_info[0].time)) };
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
        // A shift that would overflow 64 bits neither wraps nor saturates
        // early: 2^60 << 8 is kept in 128 bits, then scaled.
        let v = TimeInfo {
            tsc_shift: 8,
            tsc_to_system_mul: 1,
            ..t
        };
        assert_eq!(v.ns_at(1000 + (1 << 60)), 5_000 + (1 << 36));
    }

    const STAMP: u64 = 0x1234_5678;

    fn rec(shift: i8, mul: u32) -> TimeInfo {
        TimeInfo {
            tsc_timestamp: STAMP,
            system_time_ns: 1_000,
            tsc_to_system_mul: mul,
            tsc_shift: shift,
        }
    }

    /// Every `tsc_shift` Xen could hand us, with extreme multipliers and
    /// deltas: no panic, no time at delta 0, and the exact value
    /// floor(delta * 2^shift * mul / 2^32) (delta shifted right first for
    /// a negative shift), saturated at u64::MAX.
    #[test]
    fn extreme_shift_and_mul_never_panic_and_are_exact() {
        let deltas = [0, 1, 2, 0xffff_ffff, 1 << 40, (1 << 63) - 1];
        for shift in i8::MIN..=i8::MAX {
            for mul in [0, 1, 1 << 31, u32::MAX] {
                let t = rec(shift, mul);
                assert_eq!(t.ns_at(STAMP), 1_000, "shift {shift} mul {mul}");
                let mut last = 0;
                for d in deltas {
                    let ns = t.ns_at(STAMP.wrapping_add(d));
                    assert!(ns >= last, "shift {shift} mul {mul} delta {d}");
                    last = ns;
                }
            }
        }
        let at = |shift, mul, d: u64| rec(shift, mul).ns_at(STAMP + d) - 1_000;
        // 2^63 * (2^32 - 1) / 2^32
        assert_eq!(at(63, u32::MAX, 1), (1 << 63) - (1 << 31));
        // 2^64 * (2^32 - 1) / 2^32 still fits.
        assert_eq!(at(64, u32::MAX, 1), u64::MAX - 0xffff_ffff);
        assert_eq!(at(64, 0, 1), 0);
        assert_eq!(at(64, 1, 1), 1 << 32);
        assert_eq!(at(40, 1, 1 << 40), 1 << 48);
        assert_eq!(at(65, u32::MAX, 1), u64::MAX - 1_000);
        assert_eq!(at(95, 1, 1), 1 << 63);
        assert_eq!(at(95, 1, 2), u64::MAX - 1_000);
        assert_eq!(at(96, 1, 1), u64::MAX - 1_000);
        assert_eq!(at(127, 1, 1), u64::MAX - 1_000);
        assert_eq!(at(127, 0, (1 << 63) - 1), 0);
        // (2^63 - 1) >> 31 = 2^32 - 1; times (2^32 - 1) / 2^32.
        assert_eq!(at(-31, u32::MAX, (1 << 63) - 1), 0xffff_fffe);
        assert_eq!(at(-63, u32::MAX, (1 << 63) - 1), 0);
        assert_eq!(at(-62, u32::MAX, 1 << 62), 0);
        assert_eq!(at(-61, 1 << 31, 3 << 61), 1);
        for shift in [-64, -65, -100, -128] {
            assert_eq!(at(shift, u32::MAX, (1 << 63) - 1), 0, "{shift}");
        }
        // System time itself saturates.
        let t = TimeInfo {
            system_time_ns: u64::MAX - 5,
            ..rec(0, u32::MAX)
        };
        assert_eq!(t.ns_at(STAMP + 1_000_000), u64::MAX);
    }

    proptest::proptest! {
        /// For any record, time never goes backwards as the TSC advances
        /// (within the 2^63 ticks counted as "after the stamp"), and a
        /// larger shift or multiplier never gives an earlier time.
        #[test]
        fn monotone_in_tsc_shift_and_mul(
            stamp: u64, system: u64, mul: u32, shift: i8,
            d1 in 0u64..1 << 63, d2 in 0u64..1 << 63,
        ) {
            let (lo, hi) = (d1.min(d2), d1.max(d2));
            let t = TimeInfo {
                tsc_timestamp: stamp,
                system_time_ns: system,
                tsc_to_system_mul: mul,
                tsc_shift: shift,
            };
            let at = |t: &TimeInfo, d: u64| t.ns_at(stamp.wrapping_add(d));
            proptest::prop_assert!(at(&t, lo) <= at(&t, hi));
            proptest::prop_assert!(at(&t, lo) >= system);
            if shift < i8::MAX {
                let t2 = TimeInfo { tsc_shift: shift + 1, ..t };
                proptest::prop_assert!(at(&t, hi) <= at(&t2, hi));
            }
            if mul < u32::MAX {
                let t2 = TimeInfo { tsc_to_system_mul: mul + 1, ..t };
                proptest::prop_assert!(at(&t, hi) <= at(&t2, hi));
            }
        }
    }
}
