#![forbid(unsafe_code)]
//! The swap tier's host-testable core: a tmem interface, an in-guest
//! compressed pool that implements it, frontswap over any such backend,
//! and verifiable page contents.
//!
//! ```text
//!   page-out / page-in by swap slot
//!              │
//!        ┌─────▼──────┐   one persistent pool per tier; a slot lives in
//!        │ Frontswap  │   exactly one tier, recorded in its slot map
//!        └──┬──────┬──┘
//!   primary │      │ fallback (per page, when the primary refuses)
//!     ┌─────▼─┐  ┌─▼─────┐
//!     │ Tmem  │  │ Tmem  │   trait `tmem::Tmem`: pools, put/get/flush
//!     └───────┘  └───────┘
//!   Xen tmem (hypercall 38)   `zpool::ZPool`: lz4 + size classes over
//!   `xen_tmem::XenTmem`       frames from `zpool::PoolFrames`
//! ```
//!
//! Nothing here touches hardware or the hypervisor: the page tables, the
//! fault handler and the Xen backend implement the small traits
//! ([`tmem::Tmem`], [`zpool::PoolFrames`]) and call in. No `unsafe` is
//! allowed anywhere under this module.
//!
//! - [`tmem`]: the interface and its semantics (what "persistent" and
//!   "ephemeral" promise).
//! - [`zpool`]: the compressed pool, the backend where Xen has no tmem.
//! - [`frontswap`]: swap slots over one or two tmem backends.
//! - [`xen_tmem`]: the `xen-tmem` backend, Xen's own tmem over any
//!   `xen::tmem::TmemHypervisor`; `xen_fake` (tests only) is a Xen 4.12
//!   tmem that checks every `tmem_op` byte by byte.
//! - [`cleancache`]: clean, recomputable pages in ephemeral pools of the
//!   same backends (a second pool id beside frontswap's).
//! - [`checks`]: the in-guest tmem checks and timings, generic over
//!   [`tmem::Tmem`] (run on the fakes here, on Xen by the selftest).
//! - [`content`]: page contents (`zero`, `random`, `text`, `mixed`) that
//!   are a pure function of a page identity.
//! - `fake` (tests only): a scripted tmem that refuses, drops and fails on
//!   command.

pub mod checks;
pub mod cleancache;
pub mod content;
#[cfg(test)]
pub(crate) mod fake;
pub mod frontswap;
pub mod tmem;
#[cfg(test)]
pub(crate) mod xen_fake;
pub mod xen_tmem;
pub mod zpool;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod xen_tests;
