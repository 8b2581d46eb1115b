//! Every input that ever crashed a fuzz target, replayed on stable `cargo test`
//! through the same property functions the fuzz targets run (`fuzz/checks.rs`).
//!
//! To add one: copy the crash file from `fuzz/artifacts/<target>/` to
//! `tests/fixtures/regressions/<target>/` with a name saying what it found,
//! fix the bug, and run `cargo test --test regressions`. Also replays the
//! hand-made seeds of `fuzz/gen_corpus.py` in their input layouts, so the
//! properties themselves run in plain `cargo test`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"));
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        println!("replaying {}", f.display());
        check(&data);
    }
    files.len()
}

#[test]
#[cfg_attr(miri, ignore = "whole fixtures through the forward pass")]
fn gguf_parse_regressions() {
    let n = replay("gguf_parse", checks::gguf_parse);
    println!("{n} gguf_parse regression inputs");
}

#[test]
#[cfg_attr(miri, ignore = "whole fixtures through the forward pass")]
fn model_eval_regressions() {
    let n = replay("model_eval", checks::model_eval);
    println!("{n} model_eval regression inputs");
}

#[test]
#[cfg_attr(miri, ignore = "whole fixtures through the forward pass")]
fn arena_context_regressions() {
    let n = replay("arena_context", checks::arena_context);
    println!("{n} arena_context regression inputs");
}

/// The property functions on a few structured inputs, so they are exercised
/// even with no saved crash: unpatched fixtures, the header patch that turns
/// the tensor count into garbage, every context shape.
#[test]
#[cfg_attr(miri, ignore = "whole fixtures through the forward pass")]
fn properties_hold_on_seed_inputs() {
    for f in 0..5u8 {
        checks::model_eval(&[f, 0x4f, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        // One u64 patch of the tensor count (offset 8) to 2^32 - 1.
        checks::model_eval(&[f, 0x0f, 1, 2, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 1]);
        // Truncate to 100 bytes.
        checks::model_eval(&[f, 0x0f, 1, 0x83, 100, 0, 0, 0, 0, 0, 0, 1]);
    }
    for m in 0..3u8 {
        for (nc, nb, flags, len) in [
            (0u16, 32u16, 0u8, 0i32),
            (8, 4, 1, -1),
            (4, 0, 0, 0),
            (1, 1, 0x0a, 5),
        ] {
            let mut d = vec![m];
            d.extend_from_slice(&nc.to_le_bytes());
            d.extend_from_slice(&nb.to_le_bytes());
            d.push(flags);
            d.extend_from_slice(&3u16.to_le_bytes());
            d.extend_from_slice(&len.to_le_bytes());
            d.push(9);
            checks::arena_context(&d);
        }
    }
    for name in ["a.q4_0", "b.f16", "c.q8_0"] {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/gpt2/{name}.gguf"));
        checks::gguf_parse(&std::fs::read(p).unwrap());
    }
    checks::gguf_parse(b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
}
