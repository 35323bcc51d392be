//! libFuzzer entry point for [`selfballoon_fuzz::xs_ring`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::xs_ring::check(data));
