#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| timelined_fuzz::checkpoint(data));
