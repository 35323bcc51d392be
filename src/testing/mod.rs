//! Fakes shared by the host tests: the hypervisor's reservation calls
//! ([`fake_xen::FakeXen`]) and xenstore ([`fake_store::FakeStore`]). Each
//! can inject the partial results, refusals and errors the real thing can
//! produce; tests of every layer use the same two.

pub mod fake_store;
pub mod fake_xen;
