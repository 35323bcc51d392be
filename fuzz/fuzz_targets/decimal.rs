//! libFuzzer entry point for [`selfballoon_fuzz::decimal`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::decimal::check(data));
