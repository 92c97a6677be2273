//! Fuzz target: see `keyward_agent::fuzzing::request_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_agent::fuzzing::request_frame(data));
