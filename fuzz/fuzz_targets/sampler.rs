//! Fuzz target `sampler`: see `checks::sampler` for the properties.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sampler(data));
