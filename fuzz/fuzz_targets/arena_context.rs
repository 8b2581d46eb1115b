//! Fuzz target `arena_context`: see `checks::arena_context` for the properties.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::arena_context(data));
