//! Fuzz target `capi_sequence`: see `checks::capi_sequence` for the properties.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::capi_sequence(data));
