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
}
