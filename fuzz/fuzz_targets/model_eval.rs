//! Fuzz target `model_eval`: see `checks::model_eval` for the properties.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::model_eval(data));
