//! Tokenizer construction (into a pre-made arena), encoding and decoding allocate nothing.

mod common;

use embergpt::tokenizer::{StreamDecoder, Tokenizer};
use embergpt::Gguf;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_in_build_encode_decode() {
    let bytes = common::read_fixture("tokenizer/gpt2-vocab.gguf");
    let text = "Hello, wörld! It's 2024 — 漢字 😀 \u{a0}\r\n  done\n".repeat(20)
        + &"a".repeat(20_000)
        + " <|endoftext|> tail";
    let mut invalid = text.as_bytes().to_vec();
    invalid.extend_from_slice(b"\xff\xe2\x82 x\x80");
    let mut ids = vec![0u32; 100_000];
    let mut out = vec![0u8; 200_000];
    let mut piece = [0u8; 256];
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];

    let before = ALLOCS.load(Ordering::SeqCst);
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    let mut total = 0usize;
    for (input, special) in [
        (text.as_bytes(), false),
        (text.as_bytes(), true),
        (&invalid[..], false),
    ] {
        let n = t.count(input, special);
        assert_eq!(t.encode(input, special, &mut ids), Ok(n));
        let m = t.decode(&ids[..n], false, &mut out).unwrap();
        assert_eq!(&out[..m], input);
        let mut d = StreamDecoder::new();
        for &id in &ids[..n] {
            total += d.push(&t, id, &mut piece).unwrap();
        }
        total += d.flush(&mut piece).unwrap();
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert!(total > 0);
    assert_eq!(
        after - before,
        0,
        "tokenizer allocated {} times",
        after - before
    );
    // In the same test: the counter is global, a parallel test would disturb it.
    sentencepiece_allocates_nothing();
}

/// The same for a SentencePiece ("llama") vocabulary: byte tokens and a few scored pieces.
fn sentencepiece_allocates_nothing() {
    use embergpt::tokenizer::token_type;
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![
        token_type::UNKNOWN,
        token_type::CONTROL,
        token_type::CONTROL,
    ];
    tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    types.extend([token_type::BYTE; 256]);
    for p in ["\u{2581}", "a", "b", "\u{2581}a", "ab", "\u{2581}ab", "aa"] {
        tokens.push(p.to_string());
        types.push(token_type::NORMAL);
    }
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let mut w = embergpt_cli::gguf_write::GgufWriter::new();
    w.add_str("tokenizer.ggml.model", "llama");
    w.add_str_array("tokenizer.ggml.tokens", &tokens);
    w.add_f32_array("tokenizer.ggml.scores", &scores);
    w.add_i32_array("tokenizer.ggml.token_type", &types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    let bytes = w.to_bytes();
    let text = "ab a b aab 漢字 😀\n".repeat(50) + &"a".repeat(20_000) + " <s> tail";
    let mut ids = vec![0u32; 200_000];
    let mut out = vec![0u8; 200_000];
    let mut piece = [0u8; 256];
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];

    let before = ALLOCS.load(Ordering::SeqCst);
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    for special in [false, true] {
        let n = t.count(text.as_bytes(), special);
        assert_eq!(t.encode(text.as_bytes(), special, &mut ids), Ok(n));
        let m = t.decode(&ids[..n], false, &mut out).unwrap();
        if !special {
            assert_eq!(&out[..m], text.as_bytes());
        }
        let mut d = StreamDecoder::at_start();
        let mut k = 0;
        for &id in &ids[..n] {
            k += d.push(&t, id, &mut piece).unwrap();
        }
        k += d.flush(&mut piece).unwrap();
        assert_eq!(k, m);
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "SentencePiece tokenizer allocated");
}
