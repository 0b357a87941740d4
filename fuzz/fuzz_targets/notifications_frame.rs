#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| timelined_fuzz::notifications_frame(data));
