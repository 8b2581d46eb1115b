//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a file under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Read a fixture file (they are committed, so missing is a hard failure).
pub fn read_fixture(rel: &str) -> Vec<u8> {
    let p = fixture(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {} missing: {e}", p.display()))
}

/// Little-endian f32 file to a vector.
pub fn f32_file(rel: &str) -> Vec<f32> {
    read_fixture(rel)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The GPT-2 fixture manifest.
pub fn manifest() -> serde_json::Value {
    serde_json::from_slice(&read_fixture("gpt2/manifest.json")).expect("manifest.json")
}

/// A byte buffer of `n` bytes (the arena).
pub fn arena(n: usize) -> Vec<u8> {
    vec![0u8; n]
}
