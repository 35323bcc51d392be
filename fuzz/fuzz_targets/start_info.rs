//! libFuzzer entry point for [`selfballoon_fuzz::start_info`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::start_info::check(data));
