#![no_main]
// The entry point and what it checks: floodgate_fuzz::rls_request (crates/fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| floodgate_fuzz::rls_request(data));
