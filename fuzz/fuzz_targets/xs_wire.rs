//! libFuzzer entry point for [`selfballoon_fuzz::xs_wire`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::xs_wire::check(data));
