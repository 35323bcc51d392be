//! libFuzzer entry point for [`selfballoon_fuzz::xs_client`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfballoon_fuzz::xs_client::check(data));
