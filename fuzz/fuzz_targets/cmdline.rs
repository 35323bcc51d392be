//! libFuzzer entry point for [`selfballoon_fuzz::cmdline`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::cmdline::check(data));
