//! Fuzz target: see `keyward_agent::fuzzing::vault_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_agent::fuzzing::vault_header(data));
