//! Fuzz target `gguf_parse`: see `checks::gguf_parse` for the properties.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::gguf_parse(data));
