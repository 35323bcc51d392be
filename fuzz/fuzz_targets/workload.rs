//! libFuzzer entry point for [`selfballoon_fuzz::workload`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::workload::check(data));
