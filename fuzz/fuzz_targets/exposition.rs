#![no_main]
// The entry point and what it checks: floodgate_fuzz::exposition (crates/fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| floodgate_fuzz::exposition(data));
