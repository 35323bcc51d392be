//! Fakes shared by the host tests: the hypervisor's reservation calls
//! ([`fake_xen::FakeXen`]), xenstore ([`fake_store::FakeStore`]), page
//! bytes ([`fake_pages::FakePages`]), time ([`fake_clock::FakeClock`]),
//! the pageable region's MMU ([`fake_mmu::FakeMmu`], which delivers page
//! faults like the CPU) and the pool's frames ([`fake_held::FakeHeldFrames`]).
//! The first two can inject the partial results, refusals and errors the
//! real thing can produce; tests of every layer use the same fakes.

#![forbid(unsafe_code)]

pub mod fake_clock;
pub mod fake_held;
pub mod fake_mmu;
pub mod fake_pages;
pub mod fake_store;
pub mod fake_xen;
