//! Fuzz target: see `keyward_agent::fuzzing::aws_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_agent::fuzzing::aws_files(data));
