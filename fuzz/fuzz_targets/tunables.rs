//! libFuzzer entry point for [`selfballoon_fuzz::tunables`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::tunables::check(data));
