//! The controller's tunables, named like Linux's sysfs files under
//! `/sys/devices/system/xen_memory/xen_memory0/selfballoon/`, and their
//! strict parser.
//!
//! Validation follows the C store functions (2011 seed: `strict_strtoul`;
//! Linux 4.x–5.2: `kstrtoul`, same acceptance for base 10):
//!
//! - the value is decimal digits, optionally followed by exactly one
//!   `'\n'` (what `echo` writes); nothing else: no sign, no spaces, no
//!   `0x`. (The kernel's `kstrtoul` would also accept a leading `'+'`; we
//!   do not, "digits only" is the project rule.)
//! - numbers are rejected when 0. This holds for *every* numeric tunable
//!   in the final Linux source, including `selfballoon_min_usable_mb` and
//!   `selfballoon_reserved_mb`: their 0 ("piecewise floor" / "10% of boot
//!   RAM") exists only as the boot-time default and cannot be written back.
//!   We follow Linux. As in Linux, the 10% reserve is set only if
//!   self-ballooning or self-shrinking was on at boot (`Controller::tick`
//!   sets it on the first tick); enabled later, the reserve stays 0.
//! - `selfballoon_min_usable_mb` and `selfballoon_reserved_mb` must not
//!   exceed the guest's maximum size in MiB ([`Tunables::guest_max_mb`]).
//!   Linux's `MB2PAGES` on `unsigned int` wrapped for values >= 2^24 (a
//!   huge floor then became a small one); we compute in u64, and such a
//!   value, which would stop the guest ballooning down at all, is refused
//!   as [`RejectReason::OutOfRange`].
//! - numbers must fit the C `unsigned int` the value is stored in (u32).
//!   C parsed into `unsigned long` and silently truncated on assignment
//!   (4294967297 became 1); we reject instead.
//! - booleans (`selfballooning`, `frontswap_selfshrinking`) accept only 0
//!   or 1.
//! - `mode` (ours, no Linux counterpart) accepts `2011`, `linux` or
//!   `adaptive`.
//! - the `adaptive_*` tunables (ours, for [`Mode::Adaptive`]) are numbers
//!   like the others (digits, 0 rejected, u32) and must also lie within
//!   their bounds ([`Key::bounds`]); outside them they are rejected as
//!   [`RejectReason::OutOfRange`].
//!
//! A rejected value leaves the previous one in force and is reported as a
//! [`Rejection`].

use alloc::string::String;
use core::fmt;
use core::num::NonZeroU32;

use crate::parse::DecimalError;

use super::mode::Mode;

/// Default `selfballoon_interval`, seconds (both C versions).
pub const DEFAULT_INTERVAL_S: u32 = 5;
/// Default `selfballoon_downhysteresis` (both C versions).
pub const DEFAULT_DOWNHYSTERESIS: u32 = 8;
/// Default `selfballoon_uphysteresis` (both C versions).
pub const DEFAULT_UPHYSTERESIS: u32 = 1;
/// Default `frontswap_hysteresis` (both C versions).
pub const DEFAULT_FRONTSWAP_HYSTERESIS: u32 = 20;
/// Default `frontswap_inertia` (both C versions).
pub const DEFAULT_FRONTSWAP_INERTIA: u32 = 3;
/// Whether self-ballooning is on when neither `selfballooning` nor
/// `noselfballooning` is on the command line. The seed enabled it by
/// default when frontswap was configured; this kernel exists to
/// self-balloon, so on.
pub const DEFAULT_SELFBALLOONING: bool = true;
/// Default `zpool_max_percent` (zswap's `max_pool_percent` default).
pub const DEFAULT_ZPOOL_MAX_PERCENT: u32 = 20;
/// Default `adaptive_fast_halflife_s`: the fast estimate's decay.
pub const DEFAULT_ADAPTIVE_FAST_HALFLIFE_S: u32 = 60;
/// Default `adaptive_slow_halflife_s`: the slow estimate's half-life.
pub const DEFAULT_ADAPTIVE_SLOW_HALFLIFE_S: u32 = 1800;
/// Default `adaptive_headroom_min_pct`: where probing stops.
pub const DEFAULT_ADAPTIVE_HEADROOM_MIN_PCT: u32 = 10;
/// Default `adaptive_headroom_max_pct`: the headroom after pressure.
pub const DEFAULT_ADAPTIVE_HEADROOM_MAX_PCT: u32 = 50;
/// Default `adaptive_probe_halflife_s`: how slowly the headroom is probed
/// down.
pub const DEFAULT_ADAPTIVE_PROBE_HALFLIFE_S: u32 = 600;
/// Default `adaptive_backoff_s`: calm needed before probing again.
pub const DEFAULT_ADAPTIVE_BACKOFF_S: u32 = 300;
/// Default `adaptive_spike_pct`: headroom as a share of the largest
/// recent rise.
pub const DEFAULT_ADAPTIVE_SPIKE_PCT: u32 = 90;
/// Default `adaptive_spike_halflife_s`: how long a rise is remembered.
pub const DEFAULT_ADAPTIVE_SPIKE_HALFLIFE_S: u32 = 21_600;
/// Default `adaptive_min_headroom_mb`: the least headroom, MiB.
pub const DEFAULT_ADAPTIVE_MIN_HEADROOM_MB: u32 = 16;
/// Longest value kept in a [`Rejection`], bytes.
pub const MAX_REPORTED_LEN: usize = 64;

/// A tunable's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `selfballooning`: 0 or 1.
    Selfballooning,
    /// `selfballoon_interval`: seconds between ticks.
    Interval,
    /// `selfballoon_downhysteresis`.
    DownHysteresis,
    /// `selfballoon_uphysteresis`.
    UpHysteresis,
    /// `selfballoon_min_usable_mb` (Linux mode).
    MinUsableMb,
    /// `selfballoon_reserved_mb` (Linux mode).
    ReservedMb,
    /// `mode`: `2011` or `linux`.
    Mode,
    /// `frontswap_selfshrinking`: 0 or 1.
    FrontswapSelfshrinking,
    /// `frontswap_hysteresis`.
    FrontswapHysteresis,
    /// `frontswap_inertia`.
    FrontswapInertia,
    /// `adaptive_fast_halflife_s` (adaptive mode).
    AdaptiveFastHalflife,
    /// `adaptive_slow_halflife_s` (adaptive mode).
    AdaptiveSlowHalflife,
    /// `adaptive_headroom_min_pct` (adaptive mode).
    AdaptiveHeadroomMin,
    /// `adaptive_headroom_max_pct` (adaptive mode).
    AdaptiveHeadroomMax,
    /// `adaptive_probe_halflife_s` (adaptive mode).
    AdaptiveProbeHalflife,
    /// `adaptive_backoff_s` (adaptive mode).
    AdaptiveBackoff,
    /// `adaptive_spike_pct` (adaptive mode).
    AdaptiveSpike,
    /// `adaptive_spike_halflife_s` (adaptive mode).
    AdaptiveSpikeHalflife,
    /// `adaptive_min_headroom_mb` (adaptive mode).
    AdaptiveMinHeadroom,
    /// `zpool_max_percent`: the in-guest pool's frame limit, % of RAM
    /// (zswap's `max_pool_percent`).
    ZpoolMaxPercent,
}

impl Key {
    /// Every key, in publishing order.
    pub const ALL: [Key; 20] = [
        Key::Selfballooning,
        Key::Interval,
        Key::DownHysteresis,
        Key::UpHysteresis,
        Key::MinUsableMb,
        Key::ReservedMb,
        Key::Mode,
        Key::FrontswapSelfshrinking,
        Key::FrontswapHysteresis,
        Key::FrontswapInertia,
        Key::AdaptiveFastHalflife,
        Key::AdaptiveSlowHalflife,
        Key::AdaptiveHeadroomMin,
        Key::AdaptiveHeadroomMax,
        Key::AdaptiveProbeHalflife,
        Key::AdaptiveBackoff,
        Key::AdaptiveSpike,
        Key::AdaptiveSpikeHalflife,
        Key::AdaptiveMinHeadroom,
        Key::ZpoolMaxPercent,
    ];

    /// The xenstore/sysfs name.
    pub const fn name(self) -> &'static str {
        match self {
            Key::Selfballooning => "selfballooning",
            Key::Interval => "selfballoon_interval",
            Key::DownHysteresis => "selfballoon_downhysteresis",
            Key::UpHysteresis => "selfballoon_uphysteresis",
            Key::MinUsableMb => "selfballoon_min_usable_mb",
            Key::ReservedMb => "selfballoon_reserved_mb",
            Key::Mode => "mode",
            Key::FrontswapSelfshrinking => "frontswap_selfshrinking",
            Key::FrontswapHysteresis => "frontswap_hysteresis",
            Key::FrontswapInertia => "frontswap_inertia",
            Key::AdaptiveFastHalflife => "adaptive_fast_halflife_s",
            Key::AdaptiveSlowHalflife => "adaptive_slow_halflife_s",
            Key::AdaptiveHeadroomMin => "adaptive_headroom_min_pct",
            Key::AdaptiveHeadroomMax => "adaptive_headroom_max_pct",
            Key::AdaptiveProbeHalflife => "adaptive_probe_halflife_s",
            Key::AdaptiveBackoff => "adaptive_backoff_s",
            Key::AdaptiveSpike => "adaptive_spike_pct",
            Key::AdaptiveSpikeHalflife => "adaptive_spike_halflife_s",
            Key::AdaptiveMinHeadroom => "adaptive_min_headroom_mb",
            Key::ZpoolMaxPercent => "zpool_max_percent",
        }
    }

    /// The accepted range of a bounded tunable (the `adaptive_*` ones),
    /// inclusive; `None` for the others (any positive u32, or a boolean,
    /// or a mode). Half-lives up to a week, percentages up to 1000, the
    /// minimum headroom up to 1 TiB.
    pub const fn bounds(self) -> Option<(u32, u32)> {
        const WEEK_S: u32 = 7 * 24 * 3600;
        match self {
            Key::AdaptiveFastHalflife | Key::AdaptiveSlowHalflife => Some((1, WEEK_S)),
            Key::AdaptiveProbeHalflife | Key::AdaptiveSpikeHalflife => Some((1, WEEK_S)),
            Key::AdaptiveBackoff => Some((1, WEEK_S)),
            Key::AdaptiveHeadroomMin | Key::AdaptiveHeadroomMax | Key::AdaptiveSpike => {
                Some((1, 1000))
            }
            Key::AdaptiveMinHeadroom => Some((1, 1 << 20)),
            Key::ZpoolMaxPercent => Some((1, 100)),
            _ => None,
        }
    }

    /// Looks a name up (exact match).
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// Why a value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Not one of our tunables.
    UnknownKey,
    /// Empty (or just a newline).
    Empty,
    /// Something other than decimal digits (sign, space, letter, ...).
    NotDecimal,
    /// Larger than the C `unsigned int` (u32) it is stored in, or outside
    /// the tunable's bounds ([`Key::bounds`]).
    OutOfRange,
    /// 0 where the tunable needs a positive number.
    Zero,
    /// A boolean other than 0 or 1.
    NotBoolean,
    /// A `mode` other than `2011`, `linux` or `adaptive`.
    UnknownMode,
}

impl RejectReason {
    /// A short stable name, for status and logs.
    pub const fn name(self) -> &'static str {
        match self {
            RejectReason::UnknownKey => "unknown-key",
            RejectReason::Empty => "empty",
            RejectReason::NotDecimal => "not-decimal",
            RejectReason::OutOfRange => "out-of-range",
            RejectReason::Zero => "zero",
            RejectReason::NotBoolean => "not-boolean",
            RejectReason::UnknownMode => "unknown-mode",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value that was refused; the previous value stays in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The key as given, sanitized (see [`sanitize`]).
    pub key: String,
    /// The value as given, sanitized (see [`sanitize`]).
    pub value: String,
    /// Why.
    pub reason: RejectReason,
}

impl Rejection {
    fn new(key: &str, value: &str, reason: RejectReason) -> Self {
        Rejection {
            key: sanitize(key, MAX_REPORTED_LEN),
            value: sanitize(value, MAX_REPORTED_LEN),
            reason,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.key, self.value, self.reason)
    }
}

pub use crate::parse::sanitize;

/// What to do with the tick timer after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Leave it as it is.
    Keep,
    /// (Re)arm it for `interval_s` from now: something was enabled.
    Start,
    /// Stop it: nothing left to do on a tick.
    Stop,
}

/// The outcome of an accepted [`Tunables::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Which tunable.
    pub key: Key,
    /// The effective value differs from before.
    pub changed: bool,
    /// What the timer must do.
    pub timer: TimerAction,
    /// `selfballoon_interval` changed (re-arm with the new period if wanted;
    /// the seed only picked it up at the next reschedule).
    pub interval_changed: bool,
}

/// All tunables. Hysteresis and interval values are [`NonZeroU32`], so
/// the arithmetic can divide by them without a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunables {
    /// Self-ballooning on.
    pub selfballooning: bool,
    /// Seconds between ticks.
    pub interval_s: NonZeroU32,
    /// Down-hysteresis: fraction 1/n of the gap per tick when shrinking.
    pub downhysteresis: NonZeroU32,
    /// Up-hysteresis: fraction 1/n of the gap per tick when growing.
    pub uphysteresis: NonZeroU32,
    /// Linux mode floor in MiB above totalreserve; 0 = piecewise floor.
    pub min_usable_mb: u32,
    /// Linux mode reserve added to the goal, MiB. 0 only until the first
    /// tick of a controller that booted with self-ballooning or
    /// self-shrinking on, which sets 10% of boot RAM as Linux's
    /// `xen_selfballoon_init()` does (see `Controller::tick`); a controller
    /// enabled later keeps 0, as Linux does.
    pub reserved_mb: u32,
    /// Which controller.
    pub mode: Mode,
    /// Frontswap self-shrinking on. Off in `Tunables::new`; the runtime
    /// turns it on at boot unless `noselfshrink` is given, as the seed
    /// did whenever frontswap was there (this kernel always has it).
    pub frontswap_selfshrinking: bool,
    /// Frontswap shrink rate: 1/n of the pages per shrink.
    pub frontswap_hysteresis: NonZeroU32,
    /// Quiet ticks before frontswap shrinking starts.
    pub frontswap_inertia: NonZeroU32,
    /// Adaptive: half-life of the fast estimate's decay, s.
    pub adaptive_fast_halflife_s: u32,
    /// Adaptive: half-life of the slow estimate, s.
    pub adaptive_slow_halflife_s: u32,
    /// Adaptive: the least headroom the probe goes down to, % of the estimate.
    pub adaptive_headroom_min_pct: u32,
    /// Adaptive: the headroom at start and after pressure, %.
    pub adaptive_headroom_max_pct: u32,
    /// Adaptive: half-life of the probe's descent of the headroom, s.
    pub adaptive_probe_halflife_s: u32,
    /// Adaptive: seconds without pressure before probing resumes.
    pub adaptive_backoff_s: u32,
    /// Adaptive: headroom as a % of the largest recent rise.
    pub adaptive_spike_pct: u32,
    /// Adaptive: half-life of the largest recent rise, s.
    pub adaptive_spike_halflife_s: u32,
    /// Adaptive: the least headroom, MiB.
    pub adaptive_min_headroom_mb: u32,
    /// The in-guest compressed pool's frame limit, % of RAM (1..=100).
    pub zpool_max_percent: u32,
    /// Not a tunable: the guest's maximum size in MiB, the bound of
    /// `selfballoon_min_usable_mb` and `selfballoon_reserved_mb` (a floor
    /// or reserve above it makes no sense). Linux stores these in
    /// `unsigned int` and its `MB2PAGES` wraps at 2^24 MiB, so a larger
    /// value would have wrapped there; we compute in u64 and refuse values
    /// above this bound instead ([`GUEST_MAX_MB_UNKNOWN`] until known).
    pub guest_max_mb: u32,
}

/// [`Tunables::guest_max_mb`] before the guest's size is known: the
/// largest value Linux's `MB2PAGES` on `unsigned int` does not wrap for.
pub const GUEST_MAX_MB_UNKNOWN: u32 = (1 << 24) - 1;

const fn nz(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables::new(DEFAULT_SELFBALLOONING)
    }
}

impl Tunables {
    /// The defaults, with self-ballooning on or off as the boot options
    /// say (see [`boot_option`]).
    pub const fn new(selfballooning: bool) -> Self {
        Tunables {
            selfballooning,
            interval_s: nz(DEFAULT_INTERVAL_S),
            downhysteresis: nz(DEFAULT_DOWNHYSTERESIS),
            uphysteresis: nz(DEFAULT_UPHYSTERESIS),
            min_usable_mb: 0,
            reserved_mb: 0,
            guest_max_mb: GUEST_MAX_MB_UNKNOWN,
            mode: Mode::Linux,
            frontswap_selfshrinking: false,
            frontswap_hysteresis: nz(DEFAULT_FRONTSWAP_HYSTERESIS),
            frontswap_inertia: nz(DEFAULT_FRONTSWAP_INERTIA),
            adaptive_fast_halflife_s: DEFAULT_ADAPTIVE_FAST_HALFLIFE_S,
            adaptive_slow_halflife_s: DEFAULT_ADAPTIVE_SLOW_HALFLIFE_S,
            adaptive_headroom_min_pct: DEFAULT_ADAPTIVE_HEADROOM_MIN_PCT,
            adaptive_headroom_max_pct: DEFAULT_ADAPTIVE_HEADROOM_MAX_PCT,
            adaptive_probe_halflife_s: DEFAULT_ADAPTIVE_PROBE_HALFLIFE_S,
            adaptive_backoff_s: DEFAULT_ADAPTIVE_BACKOFF_S,
            adaptive_spike_pct: DEFAULT_ADAPTIVE_SPIKE_PCT,
            adaptive_spike_halflife_s: DEFAULT_ADAPTIVE_SPIKE_HALFLIFE_S,
            adaptive_min_headroom_mb: DEFAULT_ADAPTIVE_MIN_HEADROOM_MB,
            zpool_max_percent: DEFAULT_ZPOOL_MAX_PERCENT,
        }
    }

    /// Whether the tick timer should run: either function is on (the
    /// seed's `reset_timer` logic).
    pub const fn timer_wanted(&self) -> bool {
        self.selfballooning || self.frontswap_selfshrinking
    }

    /// The current value of `key`, as it would be published.
    pub fn value_string(&self, key: Key) -> String {
        use alloc::string::ToString;
        match key {
            Key::Selfballooning => u8::from(self.selfballooning).to_string(),
            Key::Interval => self.interval_s.to_string(),
            Key::DownHysteresis => self.downhysteresis.to_string(),
            Key::UpHysteresis => self.uphysteresis.to_string(),
            Key::MinUsableMb => self.min_usable_mb.to_string(),
            Key::ReservedMb => self.reserved_mb.to_string(),
            Key::Mode => self.mode.name().to_string(),
            Key::FrontswapSelfshrinking => u8::from(self.frontswap_selfshrinking).to_string(),
            Key::FrontswapHysteresis => self.frontswap_hysteresis.to_string(),
            Key::FrontswapInertia => self.frontswap_inertia.to_string(),
            Key::AdaptiveFastHalflife => self.adaptive_fast_halflife_s.to_string(),
            Key::AdaptiveSlowHalflife => self.adaptive_slow_halflife_s.to_string(),
            Key::AdaptiveHeadroomMin => self.adaptive_headroom_min_pct.to_string(),
            Key::AdaptiveHeadroomMax => self.adaptive_headroom_max_pct.to_string(),
            Key::AdaptiveProbeHalflife => self.adaptive_probe_halflife_s.to_string(),
            Key::AdaptiveBackoff => self.adaptive_backoff_s.to_string(),
            Key::AdaptiveSpike => self.adaptive_spike_pct.to_string(),
            Key::AdaptiveSpikeHalflife => self.adaptive_spike_halflife_s.to_string(),
            Key::AdaptiveMinHeadroom => self.adaptive_min_headroom_mb.to_string(),
            Key::ZpoolMaxPercent => self.zpool_max_percent.to_string(),
        }
    }

    /// Sets [`Tunables::guest_max_mb`] from the guest's maximum size in
    /// pages (saturating; at least 1 MiB).
    pub fn set_guest_max_pages(&mut self, pages: u64) {
        let mb = u32::try_from(pages >> 8).unwrap_or(u32::MAX);
        self.guest_max_mb = mb.clamp(1, GUEST_MAX_MB_UNKNOWN);
    }

    /// Validates and applies `value` to the tunable named `key`. On error
    /// nothing changes.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<Applied, Rejection> {
        let reject = |reason| Rejection::new(key, value, reason);
        let k = Key::from_name(key).ok_or_else(|| reject(RejectReason::UnknownKey))?;
        let before = *self;
        match k {
            Key::Selfballooning => self.selfballooning = parse_bool(value).map_err(reject)?,
            Key::FrontswapSelfshrinking => {
                self.frontswap_selfshrinking = parse_bool(value).map_err(reject)?
            }
            Key::Interval => self.interval_s = parse_positive(value).map_err(reject)?,
            Key::DownHysteresis => self.downhysteresis = parse_positive(value).map_err(reject)?,
            Key::UpHysteresis => self.uphysteresis = parse_positive(value).map_err(reject)?,
            Key::MinUsableMb | Key::ReservedMb => {
                let mb = parse_positive(value).map_err(reject)?.get();
                if mb > self.guest_max_mb {
                    return Err(reject(RejectReason::OutOfRange));
                }
                match k {
                    Key::MinUsableMb => self.min_usable_mb = mb,
                    _ => self.reserved_mb = mb,
                }
            }
            Key::FrontswapHysteresis => {
                self.frontswap_hysteresis = parse_positive(value).map_err(reject)?
            }
            Key::FrontswapInertia => {
                self.frontswap_inertia = parse_positive(value).map_err(reject)?
            }
            Key::AdaptiveFastHalflife
            | Key::AdaptiveSlowHalflife
            | Key::AdaptiveHeadroomMin
            | Key::AdaptiveHeadroomMax
            | Key::AdaptiveProbeHalflife
            | Key::AdaptiveBackoff
            | Key::AdaptiveSpike
            | Key::AdaptiveSpikeHalflife
            | Key::AdaptiveMinHeadroom => {
                let v = parse_bounded(value, k.bounds()).map_err(reject)?;
                *self.adaptive_field(k) = v;
            }
            Key::ZpoolMaxPercent => {
                self.zpool_max_percent = parse_bounded(value, k.bounds()).map_err(reject)?
            }
            Key::Mode => {
                let s = strip_newline(value);
                self.mode = Mode::from_name(s).ok_or_else(|| reject(RejectReason::UnknownMode))?;
            }
        }
        let timer = match (before.timer_wanted(), self.timer_wanted()) {
            (false, true) => TimerAction::Start,
            (true, false) => TimerAction::Stop,
            _ => TimerAction::Keep,
        };
        Ok(Applied {
            key: k,
            changed: before != *self,
            timer,
            interval_changed: before.interval_s != self.interval_s,
        })
    }
}

impl Tunables {
    /// The field of an `adaptive_*` key (a dummy for any other key, which
    /// [`Tunables::apply`] never passes).
    fn adaptive_field(&mut self, k: Key) -> &mut u32 {
        match k {
            Key::AdaptiveFastHalflife => &mut self.adaptive_fast_halflife_s,
            Key::AdaptiveSlowHalflife => &mut self.adaptive_slow_halflife_s,
            Key::AdaptiveHeadroomMin => &mut self.adaptive_headroom_min_pct,
            Key::AdaptiveHeadroomMax => &mut self.adaptive_headroom_max_pct,
            Key::AdaptiveProbeHalflife => &mut self.adaptive_probe_halflife_s,
            Key::AdaptiveBackoff => &mut self.adaptive_backoff_s,
            Key::AdaptiveSpike => &mut self.adaptive_spike_pct,
            Key::AdaptiveSpikeHalflife => &mut self.adaptive_spike_halflife_s,
            _ => &mut self.adaptive_min_headroom_mb,
        }
    }
}

/// [`parse_positive`] within `bounds` (inclusive), when there are any.
pub fn parse_bounded(value: &str, bounds: Option<(u32, u32)>) -> Result<u32, RejectReason> {
    let v = parse_positive(value)?.get();
    match bounds {
        Some((lo, hi)) if v < lo || v > hi => Err(RejectReason::OutOfRange),
        _ => Ok(v),
    }
}

/// Maps a boot command-line word to the self-ballooning default it sets:
/// `selfballooning` → `Some(true)`, `noselfballooning` → `Some(false)`,
/// anything else → `None`. Feed the result (or
/// [`DEFAULT_SELFBALLOONING`]) to [`Tunables::new`].
pub fn boot_option(word: &str) -> Option<bool> {
    match word {
        "selfballooning" => Some(true),
        "noselfballooning" => Some(false),
        _ => None,
    }
}

fn strip_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// Parses an unsigned decimal that fits a u32: digits only, one optional
/// trailing newline.
pub fn parse_u32(value: &str) -> Result<u32, RejectReason> {
    let v = crate::parse::decimal_u64(strip_newline(value)).map_err(|e| match e {
        DecimalError::Empty => RejectReason::Empty,
        DecimalError::NotDigits => RejectReason::NotDecimal,
        DecimalError::Overflow => RejectReason::OutOfRange,
    })?;
    u32::try_from(v).map_err(|_| RejectReason::OutOfRange)
}

/// [`parse_u32`], rejecting 0.
pub fn parse_positive(value: &str) -> Result<NonZeroU32, RejectReason> {
    NonZeroU32::new(parse_u32(value)?).ok_or(RejectReason::Zero)
}

/// [`parse_u32`], accepting only 0 and 1.
pub fn parse_bool(value: &str) -> Result<bool, RejectReason> {
    match parse_u32(value) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        Ok(_) | Err(RejectReason::OutOfRange) => Err(RejectReason::NotBoolean),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use proptest::prelude::*;

    #[test]
    fn key_names_round_trip() {
        for k in Key::ALL {
            assert_eq!(Key::from_name(k.name()), Some(k));
        }
        assert_eq!(Key::from_name("selfballoon_interval\n"), None);
    }

    #[test]
    fn numbers_hostile_strings() {
        assert_eq!(parse_u32("5"), Ok(5));
        assert_eq!(parse_u32("5\n"), Ok(5));
        assert_eq!(parse_u32("007"), Ok(7));
        assert_eq!(parse_u32("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_u32("4294967296"), Err(RejectReason::OutOfRange));
        // 2^70 as digits
        assert_eq!(
            parse_u32("1180591620717411303424"),
            Err(RejectReason::OutOfRange)
        );
        assert_eq!(parse_u32(""), Err(RejectReason::Empty));
        assert_eq!(parse_u32("\n"), Err(RejectReason::Empty));
        for bad in [
            "-1", "abc", " 5", "5 ", "5x", "+5", "0x10", "5\n\n", "\n5", "5\r\n", "5\0", "1e3",
            "٣", "5.0", "2^70",
        ] {
            assert_eq!(parse_u32(bad), Err(RejectReason::NotDecimal), "{bad:?}");
        }
        assert_eq!(parse_u32("99999999999999x"), Err(RejectReason::NotDecimal));
        assert_eq!(parse_positive("0"), Err(RejectReason::Zero));
        assert_eq!(parse_positive("000\n"), Err(RejectReason::Zero));
        assert_eq!(parse_positive("3").map(|n| n.get()), Ok(3));
    }

    #[test]
    fn booleans_only_zero_or_one() {
        assert_eq!(parse_bool("0"), Ok(false));
        assert_eq!(parse_bool("1\n"), Ok(true));
        assert_eq!(parse_bool("01"), Ok(true));
        assert_eq!(parse_bool("2"), Err(RejectReason::NotBoolean));
        assert_eq!(parse_bool("99999999999"), Err(RejectReason::NotBoolean));
        assert_eq!(parse_bool("true"), Err(RejectReason::NotDecimal));
        assert_eq!(parse_bool(""), Err(RejectReason::Empty));
    }

    #[test]
    fn rejection_leaves_value_in_force() {
        let mut t = Tunables::default();
        t.apply("selfballoon_downhysteresis", "2").unwrap();
        for bad in ["0", "-1", "abc", "1180591620717411303424", "", " 5", "5x"] {
            let before = t;
            let r = t.apply("selfballoon_downhysteresis", bad).unwrap_err();
            assert_eq!(t, before);
            assert_eq!(r.key, "selfballoon_downhysteresis");
            assert_eq!(r.value, sanitize(bad, MAX_REPORTED_LEN));
        }
        assert_eq!(t.downhysteresis.get(), 2);
        let r = t.apply("selfballoon_downhysteresis", "0").unwrap_err();
        assert_eq!(r.reason, RejectReason::Zero);
        assert_eq!(format!("{r}"), "selfballoon_downhysteresis=\"0\": zero");
    }

    #[test]
    fn min_usable_and_reserved_reject_zero_like_linux() {
        let mut t = Tunables::default();
        assert_eq!(t.min_usable_mb, 0);
        assert_eq!(
            t.apply("selfballoon_min_usable_mb", "0")
                .unwrap_err()
                .reason,
            RejectReason::Zero
        );
        assert_eq!(
            t.apply("selfballoon_reserved_mb", "0\n")
                .unwrap_err()
                .reason,
            RejectReason::Zero
        );
        let a = t.apply("selfballoon_reserved_mb", "64").unwrap();
        assert!(a.changed && !a.interval_changed);
        assert_eq!(t.reserved_mb, 64);
    }

    #[test]
    fn mode_values() {
        let mut t = Tunables::default();
        assert_eq!(t.mode, Mode::Linux);
        assert!(t.apply("mode", "2011\n").unwrap().changed);
        assert_eq!(t.mode, Mode::Seed2011);
        for bad in ["Linux", "linux ", "2012", "", "linux\n\n"] {
            assert_eq!(
                t.apply("mode", bad).unwrap_err().reason,
                RejectReason::UnknownMode
            );
        }
        assert!(!t.apply("mode", "2011").unwrap().changed);
        assert_eq!(t.value_string(Key::Mode), "2011");
    }

    #[test]
    fn adaptive_tunables_are_bounded() {
        let mut t = Tunables::default();
        assert_eq!(t.adaptive_headroom_min_pct, 10);
        let a = t.apply("adaptive_headroom_min_pct", "5\n").unwrap();
        assert!(a.changed && a.timer == TimerAction::Keep);
        assert_eq!(t.adaptive_headroom_min_pct, 5);
        assert_eq!(t.value_string(Key::AdaptiveHeadroomMin), "5");
        for (k, bad, why) in [
            ("adaptive_headroom_min_pct", "0", RejectReason::Zero),
            (
                "adaptive_headroom_max_pct",
                "1001",
                RejectReason::OutOfRange,
            ),
            ("adaptive_spike_pct", "-1", RejectReason::NotDecimal),
            (
                "adaptive_fast_halflife_s",
                "604801",
                RejectReason::OutOfRange,
            ),
            (
                "adaptive_min_headroom_mb",
                "1048577",
                RejectReason::OutOfRange,
            ),
            ("adaptive_backoff_s", "4294967296", RejectReason::OutOfRange),
            ("adaptive_slow_halflife_s", " 60", RejectReason::NotDecimal),
        ] {
            let before = t;
            assert_eq!(t.apply(k, bad).unwrap_err().reason, why, "{k}={bad}");
            assert_eq!(t, before);
        }
        for k in Key::ALL {
            if let Some((lo, hi)) = k.bounds() {
                t.apply(k.name(), &format!("{lo}")).unwrap();
                t.apply(k.name(), &format!("{hi}")).unwrap();
                assert_eq!(t.value_string(k), format!("{hi}"));
            }
        }
        assert!(t.apply("mode", "adaptive").unwrap().changed);
        assert_eq!(t.mode, Mode::Adaptive);
    }

    #[test]
    fn timer_follows_enable_disable_like_the_seed() {
        let mut t = Tunables::new(false);
        let a = t.apply("selfballooning", "1").unwrap();
        assert_eq!((a.timer, a.changed), (TimerAction::Start, true));
        // Writing 1 again: already running, nothing to do.
        assert_eq!(
            t.apply("selfballooning", "1").unwrap().timer,
            TimerAction::Keep
        );
        // Frontswap on while selfballooning runs: timer already running.
        assert_eq!(
            t.apply("frontswap_selfshrinking", "1").unwrap().timer,
            TimerAction::Keep
        );
        // Disabling one of two: still needed.
        assert_eq!(
            t.apply("selfballooning", "0").unwrap().timer,
            TimerAction::Keep
        );
        assert_eq!(
            t.apply("frontswap_selfshrinking", "0").unwrap().timer,
            TimerAction::Stop
        );
        let a = t.apply("selfballoon_interval", "7").unwrap();
        assert!(a.interval_changed && a.timer == TimerAction::Keep);
        assert_eq!(t.value_string(Key::Interval), "7");
        assert!(
            !t.apply("selfballoon_interval", "7")
                .unwrap()
                .interval_changed
        );
    }

    #[test]
    fn unknown_key_and_sanitizing() {
        let mut t = Tunables::default();
        let long = "k".repeat(500);
        let r = t.apply(&long, "1").unwrap_err();
        assert_eq!(r.reason, RejectReason::UnknownKey);
        assert_eq!(r.key.len(), MAX_REPORTED_LEN);
        let r = t.apply("selfballoon_interval", "1\0\n2").unwrap_err();
        assert_eq!(r.value, "1??2");
        // Multi-byte characters are cut at a boundary.
        let r = t.apply("mode", &"é".repeat(100)).unwrap_err();
        assert_eq!(r.value.len(), MAX_REPORTED_LEN);
        assert_eq!(sanitize("aé", 2), "a");
    }

    #[test]
    fn boot_options() {
        assert_eq!(boot_option("selfballooning"), Some(true));
        assert_eq!(boot_option("noselfballooning"), Some(false));
        assert_eq!(boot_option("selfballooning=1"), None);
        assert!(!Tunables::new(false).selfballooning);
        assert!(Tunables::default().selfballooning);
    }

    proptest! {
        #[test]
        fn parser_agrees_with_reference(s in "\\PC{0,24}") {
            let stripped = s.strip_suffix('\n').unwrap_or(&s);
            let reference = if stripped.is_empty() {
                Err(RejectReason::Empty)
            } else if !stripped.bytes().all(|b| b.is_ascii_digit()) {
                Err(RejectReason::NotDecimal)
            } else {
                stripped.parse::<u32>().map_err(|_| RejectReason::OutOfRange)
            };
            prop_assert_eq!(parse_u32(&s), reference);
        }

        #[test]
        fn digits_round_trip(n in any::<u32>()) {
            prop_assert_eq!(parse_u32(&format!("{n}\n")), Ok(n));
        }

        #[test]
        fn apply_never_changes_state_on_error(key in "[a-z_]{0,30}", value in "\\PC{0,12}") {
            let mut t = Tunables::default();
            let before = t;
            if t.apply(&key, &value).is_err() {
                prop_assert_eq!(t, before);
            }
        }
    }
}
