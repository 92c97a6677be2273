//! Fuzz target: see `keyward_shell::fuzzing::git_credential`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_shell::fuzzing::git_credential(data));
