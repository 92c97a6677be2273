//! Fuzz target: see `keyward_agent::fuzzing::interpreter_args`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_agent::fuzzing::interpreter_args(data));
