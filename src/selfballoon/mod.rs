//! Self-ballooning: the controllers that pick a balloon target from the
//! committed memory every `selfballoon_interval` seconds, their tunables,
//! and the xenstore glue.
//!
//! Everything here except [`xs`] is pure: the kernel measures a
//! [`TickInput`], calls [`Controller::tick`], and hands the decision's
//! `target_pages` to the balloon driver. The same code runs in a host-side
//! policy simulator.
//!
//! - [`mode`]: which policy is in force ([`Mode`]).
//! - [`policy`]: the arithmetic of the 2011 seed and of the final Linux
//!   driver ([`Mode`]), and the [`Policy`] trait for new policies.
//! - [`adaptive`]: our policy: fast up, slow down, probing by pressure.
//! - [`tunables`]: the sysfs-named tunables and their strict parser.
//! - [`frontswap`]: the frontswap self-shrink state machine.
//! - [`controller`]: ties them together per tick and produces the status.
//! - [`xs`]: reads tunables from and publishes status to xenstore.

#![forbid(unsafe_code)]

pub mod adaptive;
pub mod controller;
pub mod frontswap;
pub mod mode;
pub mod policy;
pub mod tunables;
pub mod xs;

pub use adaptive::Adaptive;
pub use controller::{Controller, TickOutput};
pub use frontswap::{FrontswapShrink, ShrinkVariant};
pub use mode::Mode;
pub use policy::{Decision, Policy, TickInput};
pub use tunables::{boot_option, Applied, Key, RejectReason, Rejection, TimerAction, Tunables};
pub use xs::{WatchReport, XsGlue};
