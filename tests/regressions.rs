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

#[test]
#[cfg_attr(miri, ignore = "fixture-sized vocabularies")]
fn tokenizer_regressions() {
    let n = replay("tokenizer", checks::tokenizer);
    println!("{n} tokenizer regression inputs");
}

#[test]
#[cfg_attr(miri, ignore = "see tests/miri_text.rs for the Miri run")]
fn sampler_regressions() {
    let n = replay("sampler", checks::sampler);
    println!("{n} sampler regression inputs");
}

#[cfg(feature = "capi")]
#[test]
#[cfg_attr(miri, ignore = "forward passes of the bundled model")]
fn capi_sequence_regressions() {
    let n = replay("capi_sequence", checks::capi_sequence);
    println!("{n} capi_sequence regression inputs");
}

/// The text-side properties on a few hand-made inputs, so they run in plain
/// `cargo test` even with no saved crash.
#[test]
#[cfg_attr(miri, ignore = "fixture-sized vocabularies")]
fn text_properties_hold_on_seed_inputs() {
    // 0 and 1: the two byte-level BPE vocabularies; 4: the SentencePiece one.
    for t in [0u8, 1, 4] {
        for text in [
            &b"Hello world<|endoftext|> and more"[..],
            b"\xff\xfe caf\xc3\xa9 \xe2\x82 \xf0\x9f\x98\x80!!  \n\n\t12345",
            b"",
            b"<|endoftext|><|endoftext|>",
            b"<s>the \xe6\x97\xa5\xe6\x9c\xac in  and</s> \xe2\x96\x81x   ",
        ] {
            let mut d = vec![t];
            d.extend_from_slice(text);
            checks::tokenizer(&d);
        }
        // Ids: in range, out of range, near u32::MAX.
        checks::tokenizer(&[t | 2, 1, 0, 0, 0xff, 0xff, 0x7f, 5, 0, 0xff]);
        checks::tokenizer(&[t | 2, 10, 0, 0, 20, 0, 0, 0xff, 1, 0]);
    }
    // Sampler: default-like and greedy parameters over NaN / inf / tie rows.
    for seed in [
        &[
            8u8, 0, 0x03, 0, 0, 0x0e, 0x00, 0x05, 0x03, 0x03, 10, 1, 0, 0, 0, 1, 2, 1, 2, 3, 0, 0,
            0,
        ][..],
        &[
            3, 0, 0x85, 2, 0, 0x05, 0x00, 0x05, 0x03, 0x03, 4, 7, 0, 0, 0, 1, 0, 0x01, 0x00, 0x02,
        ][..],
        &[
            5, 0, 0x03, 0, 0, 0x05, 0x03, 0x05, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x00,
        ][..],
        &[
            0, 2, 0x88, 0, 1, 0x05, 0x03, 0x07, 0x07, 0x07, 16, 9, 9, 9, 9, 0, 3, 0x85, 0x86,
        ][..],
    ] {
        checks::sampler(seed);
    }
    #[cfg(feature = "capi")]
    {
        // Context 12/4 with logits_all; evals, rewinds, tokenize, generate, bad handles.
        checks::capi_sequence(&[
            0x1b, 0x03, 0x00, 0x00, // context, sampler
            0, 2, 3, 1, 2, 3, // eval 3 tokens
            1, 2, 2, 4, 5, // eval_all 2
            3, 0, 0, 0, // logits
            2, 0, 1, // rewind to 1
            4, 0, 5, b'h', b'e', b'l', b'l', b'o', 1, // tokenize, short buffer
            9, 0, 3, 1, 1, b'e', 0x00, 2, 7, 9, 2, // generate
            10, 0, 2, 0, 0x00, 1, 3, 1, // generate, nasty callback
            0, 5, 1, 1, // eval with a NULL handle
            0, 6, 1, 1, // eval with a fake handle
            7, 0x10, 0, 0, 0, 0, // sample a NaN row
            6, 0x60, 1, 0, 4, // corrupted stream decoder
            5, 0x40, 3, 0x10, 2, 3, // token_to_piece, out of range
            11, 0x08, 12, 0, 13, 3, 0, 0, 0, 0, 7, // getters, second context
        ]);
    }
}
