//! Fakes shared by the host tests: the hypervisor's reservation calls
//! ([`fake_xen::FakeXen`]), xenstore ([`fake_store::FakeStore`]), page
//! bytes ([`fake_pages::FakePages`]) and time ([`fake_clock::FakeClock`]).
//! The first two can inject the partial results, refusals and errors the
//! real thing can produce; tests of every layer use the same fakes.

#![forbid(unsafe_code)]

pub mod fake_clock;
pub mod fake_pages;
pub mod fake_store;
pub mod fake_xen;
