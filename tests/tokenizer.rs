//! GPT-2 tokenizer exactness against tiktoken's `gpt2` encoding (fixtures made by
//! tests/scripts/gen_tokenizer_fixtures.py), round trips, streaming, buffers and hostile metadata.

mod common;

use embergpt::tokenizer::{token_type, Detokenize, StreamDecoder, Tokenizer, BPE_WINDOW};
use embergpt::{Error, Gguf};
use std::path::PathBuf;

const EOT: u32 = 50256;

fn vocab_bytes() -> Vec<u8> {
    common::read_fixture("tokenizer/gpt2-vocab.gguf")
}

fn with_tokenizer<R>(f: impl FnOnce(&mut Tokenizer<'_, '_>) -> R) -> R {
    let bytes = vocab_bytes();
    let g = Gguf::parse(&bytes).expect("parse vocab gguf");
    let mut arena = common::arena(Tokenizer::arena_size(&g).expect("arena_size"));
    let mut t = Tokenizer::new(&g, &mut arena).expect("tokenizer");
    f(&mut t)
}

fn encode(t: &mut Tokenizer<'_, '_>, text: &[u8], special: bool) -> Vec<u32> {
    let n = t.count(text, special);
    let mut out = vec![0u32; n];
    assert_eq!(t.encode(text, special, &mut out), Ok(n));
    out
}

fn decode(t: &Tokenizer<'_, '_>, ids: &[u32], skip: bool) -> Vec<u8> {
    let n = t.decode_len(ids, skip).unwrap();
    let mut out = vec![0u8; n];
    assert_eq!(t.decode(ids, skip, &mut out), Ok(n));
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

struct Case {
    name: String,
    special: bool,
    reference: String,
    text: Vec<u8>,
    ids: Vec<u32>,
}

fn hard_cases() -> Vec<Case> {
    let v: serde_json::Value =
        serde_json::from_slice(&common::read_fixture("tokenizer/hard_cases.json")).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            special: c["special"].as_bool().unwrap(),
            reference: c["reference"].as_str().unwrap().to_string(),
            text: match c["text"].as_str() {
                Some(t) => t.as_bytes().to_vec(),
                None => hex(c["text_hex"].as_str().unwrap()),
            },
            ids: c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
        })
        .collect()
}

#[test]
fn vocabulary_metadata() {
    with_tokenizer(|t| {
        let size = Tokenizer::arena_size(&Gguf::parse(&vocab_bytes()).unwrap()).unwrap();
        println!("GPT-2 vocabulary: arena {size} bytes");
        // Pinned so growth is seen: id->offset 50,257 u32 (201,088 B padded to 64), token table
        // 131,072 u32, merges 3 x 50,000 u32, merge table 131,072 u32, 1 special (64 B), BPE
        // scratch 3 x 8,192 u32, plus 63 B of start-alignment slack.
        assert_eq!(
            size,
            201_088 + 524_288 + 600_000 + 524_288 + 64 + 98_304 + 63
        );
        assert_eq!(t.n_vocab(), 50257);
        assert_eq!(t.n_merges(), 50000);
        assert_eq!(t.bos(), Some(EOT));
        assert_eq!(Detokenize::eos(t), Some(EOT));
        assert_eq!(t.token_type(EOT), Some(token_type::CONTROL));
        assert_eq!(t.token_type(0), Some(token_type::NORMAL));
        assert_eq!(t.token_type(50257), None);
        assert_eq!(t.token_text(EOT), Some(&b"<|endoftext|>"[..]));
        assert_eq!(t.max_token_len(), 128); // tiktoken: longest gpt2 token is 128 bytes
        assert_eq!(t.token_id(b" the"), Some(262));
        assert_eq!(t.token_id(b"<|endoftext|>"), None);
        let mut b = [0u8; 16];
        assert_eq!(t.token_bytes(262, &mut b), Ok(4));
        assert_eq!(&b[..4], b" the");
        assert_eq!(t.token_bytes(EOT, &mut b), Ok(13));
        assert_eq!(t.token_bytes(50257, &mut b), Err(Error::TokenOutOfRange));
        assert_eq!(t.token_bytes(262, &mut b[..3]), Err(Error::BufferTooSmall));
    });
}

fn check_hard_cases(t: &mut Tokenizer<'_, '_>, label: &str) {
    let cases = hard_cases();
    let mut ok = 0;
    let mut failed = Vec::new();
    for c in &cases {
        let got = encode(t, &c.text, c.special);
        if got == c.ids {
            ok += 1;
        } else {
            let first = got.iter().zip(&c.ids).position(|(a, b)| a != b);
            failed.push(format!(
                "{} ({}): got {} ids, want {}, first difference at {:?}",
                c.name,
                c.reference,
                got.len(),
                c.ids.len(),
                first
            ));
        }
    }
    println!("hard cases ({label}): {ok}/{} matched", cases.len());
    assert!(failed.is_empty(), "mismatches:\n{}", failed.join("\n"));
}

#[test]
fn hard_cases_match_tiktoken() {
    with_tokenizer(|t| check_hard_cases(t, &format!("window {BPE_WINDOW}")));
}

#[test]
fn hard_cases_match_with_a_small_bpe_window() {
    // Pieces longer than the window (10,000 letters, 5,000 spaces, ...) take the windowed path.
    with_tokenizer(|t| {
        for w in [16, 512] {
            t.set_bpe_window(w).unwrap();
            check_hard_cases(t, &format!("window {w}"));
        }
    });
}

#[test]
fn control_tokens_only_on_request() {
    with_tokenizer(|t| {
        for c in hard_cases() {
            let ids = encode(t, &c.text, false);
            if !c.special {
                assert!(!ids.contains(&EOT), "{}", c.name);
            }
            assert_eq!(decode(t, &ids, false), c.text, "{}", c.name);
        }
        let ids = encode(t, b"a<|endoftext|>b", true);
        assert_eq!(ids.iter().filter(|&&i| i == EOT).count(), 1);
        assert_eq!(decode(t, &ids, false), b"a<|endoftext|>b");
        assert_eq!(decode(t, &ids, true), b"ab");
    });
}

#[test]
fn round_trip_any_bytes() {
    with_tokenizer(|t| {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let len = (next() % 64) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    match round % 3 {
                        0 => r as u8, // any byte
                        1 => {
                            let frag = b" a\n'\xc3\xa9\xe2\x82\xac\xf0\x9f"; // UTF-8 fragments
                            frag[r as usize % frag.len()]
                        }
                        _ => {
                            let soup = b"ab '\t\n1.!"; // ASCII soup
                            soup[r as usize % soup.len()]
                        }
                    }
                })
                .collect();
            let ids = encode(t, &text, round % 2 == 0);
            assert_eq!(decode(t, &ids, false), text, "round {round}: {text:?}");
        }
    });
}

#[test]
fn short_buffers() {
    with_tokenizer(|t| {
        let text = b"Hello world, this is a test.";
        let n = t.count(text, false);
        assert!(n > 3);
        let mut out = vec![0u32; n - 1];
        assert_eq!(t.encode(text, false, &mut out), Err(Error::BufferTooSmall));
        assert_eq!(t.encode(text, false, &mut []), Err(Error::BufferTooSmall));
        assert_eq!(t.encode(b"", false, &mut []), Ok(0));
        let ids = encode(t, text, false);
        let len = t.decode_len(&ids, false).unwrap();
        assert_eq!(len, text.len());
        let mut buf = vec![0u8; len - 1];
        assert_eq!(t.decode(&ids, false, &mut buf), Err(Error::BufferTooSmall));
        assert_eq!(
            t.decode(&[50257], false, &mut buf),
            Err(Error::TokenOutOfRange)
        );
        assert_eq!(
            t.decode_len(&[u32::MAX], false),
            Err(Error::TokenOutOfRange)
        );
    });
}

#[test]
fn stream_decoder_never_splits_characters() {
    with_tokenizer(|t| {
        let mut buf = vec![0u8; 3 + t.max_token_len()];
        for c in hard_cases() {
            let ids = encode(t, &c.text, c.special);
            let valid = std::str::from_utf8(&c.text).is_ok();
            let mut d = StreamDecoder::new();
            let mut all = Vec::new();
            for &id in &ids {
                let n = d.push(&*t, id, &mut buf).unwrap();
                if valid {
                    assert!(
                        std::str::from_utf8(&buf[..n]).is_ok(),
                        "{}: broken chunk",
                        c.name
                    );
                }
                all.extend_from_slice(&buf[..n]);
            }
            let n = d.flush(&mut buf).unwrap();
            if valid {
                assert_eq!(n, 0, "{}", c.name);
            }
            all.extend_from_slice(&buf[..n]);
            assert_eq!(all, c.text, "{}", c.name);
        }
        // A held prefix survives a too-small buffer unchanged.
        let candidates: Vec<Vec<u32>> = ["𪚥", "ꦗ", "ᏣᎳ", "€"]
            .iter()
            .map(|c| encode(t, c.as_bytes(), false))
            .collect();
        let euro = candidates
            .into_iter()
            .find(|ids| ids.len() > 1 && t.token_len(ids[0]).unwrap() < 3)
            .expect("a character that GPT-2 splits into several tokens");
        let mut d = StreamDecoder::new();
        assert_eq!(d.push(&*t, euro[0], &mut buf), Ok(0));
        let held = d;
        assert_eq!(
            d.push(&*t, euro[1], &mut buf[..1]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(d, held);
        // An invalid continuation releases the held bytes as they are.
        let a = t.token_id(b"a").unwrap();
        let n = d.push(&*t, a, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[held.held(), b"a"].concat()[..]);
    });
}

// ------------------------------------------------------------------ tinyshakespeare

fn shakespeare() -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tinyshakespeare.txt");
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{} is required under CI=true: {e}", p.display());
            }
            println!("SKIPPED: {} not found ({e})", p.display());
            None
        }
    }
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn fnv1a64_ids(ids: &[u32]) -> u64 {
    let mut h: u64 = 0xCBF29CE484222325;
    for id in ids {
        for b in id.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100000001B3);
        }
    }
    h
}

#[test]
fn tinyshakespeare_paragraphs_match_tiktoken() {
    let Some(text) = shakespeare() else { return };
    let text = String::from_utf8(text).unwrap();
    let fx = common::read_fixture("tokenizer/shakespeare_paragraphs.bin");
    with_tokenizer(|t| {
        let paras: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(u32le(&fx, 0) as usize, paras.len(), "paragraph count");
        let (mut at, mut ok, mut first_bad) = (4usize, 0usize, None);
        let mut total = 0usize;
        for (i, p) in paras.iter().enumerate() {
            let (len, n) = (u32le(&fx, at) as usize, u32le(&fx, at + 4) as usize);
            at += 8;
            assert_eq!(len, p.len(), "paragraph {i} length");
            let want: Vec<u32> = fx[at..at + 2 * n]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                .collect();
            at += 2 * n;
            total += n;
            let got = encode(t, p.as_bytes(), false);
            if got == want {
                ok += 1;
            } else if first_bad.is_none() {
                first_bad = Some((i, got, want));
            }
        }
        assert_eq!(at, fx.len());
        println!(
            "tinyshakespeare paragraphs: {ok}/{} matched ({total} tokens)",
            paras.len()
        );
        if let Some((i, got, want)) = first_bad {
            panic!(
                "paragraph {i} differs: {:?}\ngot  {got:?}\nwant {want:?}",
                paras[i]
            );
        }
    });
}

#[test]
fn tinyshakespeare_lines_match_tiktoken() {
    let Some(text) = shakespeare() else { return };
    let text = String::from_utf8(text).unwrap();
    let fx = common::read_fixture("tokenizer/shakespeare_lines.bin");
    with_tokenizer(|t| {
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(u32le(&fx, 0) as usize, lines.len(), "line count");
        let mut ok = 0;
        let mut bad = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let r = &fx[4 + 8 * i..4 + 8 * (i + 1)];
            let len = u16::from_le_bytes([r[0], r[1]]) as usize;
            let n = u16::from_le_bytes([r[2], r[3]]) as usize;
            let h = u32le(r, 4);
            assert_eq!(len, l.len(), "line {i} length");
            let got = encode(t, l.as_bytes(), false);
            let g = fnv1a64_ids(&got);
            if got.len() == n && (g ^ (g >> 32)) as u32 == h {
                ok += 1;
            } else {
                bad.push(i);
            }
        }
        println!("tinyshakespeare lines: {ok}/{} matched", lines.len());
        assert!(
            bad.is_empty(),
            "{} lines differ, first {:?}: {:?}",
            bad.len(),
            bad[0],
            lines[bad[0]]
        );
    });
}

// ------------------------------------------------------------------ hostile metadata

enum Kv {
    Str(Vec<u8>),
    U32(u32),
    F32(f32),
    StrArr(Vec<Vec<u8>>),
    I32Arr(Vec<i32>),
}

fn gguf(kvs: &[(&str, Kv)]) -> Vec<u8> {
    fn s(o: &mut Vec<u8>, b: &[u8]) {
        o.extend_from_slice(&(b.len() as u64).to_le_bytes());
        o.extend_from_slice(b);
    }
    let mut o = b"GGUF".to_vec();
    o.extend_from_slice(&3u32.to_le_bytes());
    o.extend_from_slice(&0u64.to_le_bytes());
    o.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        s(&mut o, k.as_bytes());
        match v {
            Kv::Str(b) => {
                o.extend_from_slice(&8u32.to_le_bytes());
                s(&mut o, b);
            }
            Kv::U32(x) => {
                o.extend_from_slice(&4u32.to_le_bytes());
                o.extend_from_slice(&x.to_le_bytes());
            }
            Kv::F32(x) => {
                o.extend_from_slice(&6u32.to_le_bytes());
                o.extend_from_slice(&x.to_le_bytes());
            }
            Kv::StrArr(a) => {
                o.extend_from_slice(&9u32.to_le_bytes());
                o.extend_from_slice(&8u32.to_le_bytes());
                o.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for b in a {
                    s(&mut o, b);
                }
            }
            Kv::I32Arr(a) => {
                o.extend_from_slice(&9u32.to_le_bytes());
                o.extend_from_slice(&5u32.to_le_bytes());
                o.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    o.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    o
}

/// GPT-2's bytes_to_unicode, written out independently of the library.
fn byte_str(b: u8) -> Vec<u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let c = if printable(b) {
        b as u32
    } else {
        256 + (0..b).filter(|&x| !printable(x)).count() as u32
    };
    char::from_u32(c).unwrap().to_string().into_bytes()
}

/// A small valid vocabulary: 256 byte tokens, "ab", "abc", control "<eot>".
fn small(edit: impl FnOnce(&mut Vec<Vec<u8>>, &mut Vec<Vec<u8>>, &mut Vec<i32>)) -> Vec<u8> {
    let mut toks: Vec<Vec<u8>> = (0..=255u8).map(byte_str).collect();
    toks.push(b"ab".to_vec());
    toks.push(b"abc".to_vec());
    toks.push(b"<eot>".to_vec());
    let mut merges = vec![b"a b".to_vec(), b"ab c".to_vec()];
    let mut types = vec![1; toks.len()];
    *types.last_mut().unwrap() = 3;
    edit(&mut toks, &mut merges, &mut types);
    let eot = toks.len() as u32 - 1;
    gguf(&[
        ("general.architecture", Kv::Str(b"gpt2".to_vec())),
        ("tokenizer.ggml.model", Kv::Str(b"gpt2".to_vec())),
        ("tokenizer.ggml.tokens", Kv::StrArr(toks)),
        ("tokenizer.ggml.token_type", Kv::I32Arr(types)),
        ("tokenizer.ggml.merges", Kv::StrArr(merges)),
        ("tokenizer.ggml.eos_token_id", Kv::U32(eot)),
    ])
}

fn build(bytes: &[u8]) -> Result<(), Error> {
    let g = Gguf::parse(bytes)?;
    let n = Tokenizer::arena_size(&g)?;
    let mut arena = vec![0u8; n];
    Tokenizer::new(&g, &mut arena).map(|_| ())
}

#[test]
fn small_vocabulary_works() {
    let bytes = small(|_, _, _| {});
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    assert_eq!(encode(&mut t, b"abcab ab", false), vec![257, 256, 32, 256]);
    assert_eq!(encode(&mut t, b"x<eot>", true), vec![b'x' as u32, 258]);
    assert_eq!(Detokenize::eos(&t), Some(258));
    // Too small an arena is an error value.
    let mut short = vec![0u8; 100];
    assert!(matches!(
        Tokenizer::new(&g, &mut short),
        Err(Error::ArenaTooSmall { .. })
    ));
}

#[test]
fn hostile_metadata_is_an_error() {
    use Error::{BadTokenizer, NoTokenizer};
    let base = |model: &[u8], pre: Option<&[u8]>| {
        let mut kv = vec![("tokenizer.ggml.model", Kv::Str(model.to_vec()))];
        if let Some(p) = pre {
            kv.push(("tokenizer.ggml.pre", Kv::Str(p.to_vec())));
        }
        kv.push((
            "tokenizer.ggml.tokens",
            Kv::StrArr((0..=255u8).map(byte_str).collect()),
        ));
        gguf(&kv)
    };
    assert_eq!(build(&base(b"gpt2", None)), Ok(()));
    assert_eq!(build(&base(b"gpt2", Some(b"gpt-2"))), Ok(()));
    // A SentencePiece vocabulary needs scores (tests/tokenizer_llama.rs has the rest).
    assert_eq!(build(&base(b"llama", None)), Err(BadTokenizer));
    assert_eq!(build(&base(b"bert", None)), Err(NoTokenizer));
    assert_eq!(build(&base(b"gpt2", Some(b"qwen2"))), Err(NoTokenizer));
    assert_eq!(build(&gguf(&[])), Err(NoTokenizer));
    assert_eq!(
        build(&gguf(&[("tokenizer.ggml.model", Kv::U32(1))])),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&gguf(&[(
            "tokenizer.ggml.model",
            Kv::Str(b"gpt2".to_vec())
        )])),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&gguf(&[
            ("tokenizer.ggml.model", Kv::Str(b"gpt2".to_vec())),
            ("tokenizer.ggml.tokens", Kv::I32Arr(vec![1, 2])),
        ])),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&gguf(&[
            ("tokenizer.ggml.model", Kv::Str(b"gpt2".to_vec())),
            ("tokenizer.ggml.tokens", Kv::F32(1.0)),
        ])),
        Err(BadTokenizer)
    );
    assert_eq!(build(&small(|_, _, _| {})), Ok(()));
    // Duplicate token.
    assert_eq!(
        build(&small(|t, _, ty| {
            t.push(b"ab".to_vec());
            ty.push(1);
        })),
        Err(BadTokenizer)
    );
    // A duplicate control token text is fine (it is not looked up by text in BPE).
    assert_eq!(
        build(&small(|t, _, ty| {
            t.push(b"<eot>".to_vec());
            ty.push(3);
        })),
        Ok(())
    );
    // Merges naming unknown tokens, or whose result is not a token, or malformed.
    assert_eq!(
        build(&small(|_, m, _| m.push(b"x yz".to_vec()))),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|_, m, _| m.push(b"b c".to_vec()))),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|_, m, _| m.push(b"abc".to_vec()))),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|_, m, _| m.push(b"a  b".to_vec()))),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|_, m, _| m.push(b" ab".to_vec()))),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|_, m, _| m.push(b"<eot> a".to_vec()))),
        Err(BadTokenizer)
    );
    // Duplicate merge: allowed, first rank wins.
    assert_eq!(build(&small(|_, m, _| m.push(b"a b".to_vec()))), Ok(()));
    // Types of the wrong length; a normal token outside bytes_to_unicode.
    assert_eq!(
        build(&small(|_, _, ty| {
            ty.pop();
        })),
        Err(BadTokenizer)
    );
    // A missing byte token is allowed (SmolLM2 lacks 21); tested in missing_byte_token_is_dropped.
    assert_eq!(build(&small(|t, _, _| t[0] = b"zz".to_vec())), Ok(()));
    assert_eq!(
        build(&small(|t, _, _| t[256] = b"a b".to_vec())),
        Err(BadTokenizer)
    );
    assert_eq!(
        build(&small(|t, _, _| t[256] = vec![0xff])),
        Err(BadTokenizer)
    );
    assert_eq!(build(&small(|t, _, _| t[256] = vec![])), Err(BadTokenizer));
    // Out-of-range eos.
    let mut bytes = small(|_, _, _| {});
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(build(&bytes), Err(BadTokenizer));
}

/// A byte without a token is dropped, as Hugging Face's BPE (no unk, no byte fallback) drops it.
#[test]
fn missing_byte_token_is_dropped() {
    // Byte 0x00 (GPT-2 character U+0100) has no token: its slot holds "zz".
    let bytes = small(|t, _, _| t[0] = b"zz".to_vec());
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    assert_eq!(
        encode(&mut t, b"x\0y", false),
        vec![b'x' as u32, b'y' as u32]
    );
    assert_eq!(encode(&mut t, b"\0", false), Vec::<u32>::new());
    assert_eq!(encode(&mut t, &[0u8; 100], false), Vec::<u32>::new());
    t.set_bpe_window(16).unwrap();
    assert_eq!(encode(&mut t, &[0u8; 100], false), Vec::<u32>::new());
    assert_eq!(
        encode(&mut t, b"x\0y", false),
        vec![b'x' as u32, b'y' as u32]
    );
    // Dropped inside a piece: the neighbours meet and merge. No tokens for 0xC3 and 0xA9,
    // the bytes of 'é' (a letter, so "aébc" is one piece): "a" "b" -> "ab", "ab" "c" -> "abc".
    let bytes = small(|t, _, _| {
        t[0xC3] = b"zz".to_vec();
        t[0xA9] = b"yy".to_vec();
    });
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    assert_eq!(encode(&mut t, "aébc é".as_bytes(), false), vec![257, 32]);
}

#[test]
fn mutated_metadata_never_panics() {
    let base = small(|_, _, _| {});
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut parsed, mut built) = (0, 0);
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = next() as usize % b.len();
            b[i] = next() as u8;
        }
        if next() % 8 == 0 {
            b.truncate(next() as usize % b.len());
        }
        let Ok(g) = Gguf::parse(&b) else { continue };
        parsed += 1;
        let Ok(n) = Tokenizer::arena_size(&g) else {
            continue;
        };
        let mut arena = vec![0u8; n];
        let Ok(mut t) = Tokenizer::new(&g, &mut arena) else {
            continue;
        };
        built += 1;
        for text in [&b"abcab <eot> ab\xff\xc3"[..], b"", b"  x\n\n"] {
            for special in [false, true] {
                let ids = encode(&mut t, text, special);
                // Bytes without a token (a mutation can remove one) are dropped; with
                // `special`, a special token's text is not, so compare only when none is.
                let kept: Vec<u8> = text
                    .iter()
                    .copied()
                    .filter(|&b| t.token_id(&[b]).is_some())
                    .collect();
                if !special || kept.len() == text.len() {
                    assert_eq!(decode(&t, &ids, false), kept);
                }
            }
        }
    }
    println!("mutated vocabularies: {parsed} parsed, {built} built, none panicked");
    assert!(built > 0);
}

/// The bundled default model (512-token GPT-2-style vocabulary, id b = byte b) against the
/// cases its training script produced with its own GPT-2 `bpe()` implementation. The model file
/// is produced elsewhere and may not be in the tree yet: skipped (with a message) when absent.
#[test]
fn default_model_tokenizer_cases() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cli/assets/shakespeare-q8_0.gguf");
    let Ok(bytes) = std::fs::read(&p) else {
        println!("SKIPPED: {} not present", p.display());
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];
    let mut t = Tokenizer::new(&g, &mut arena).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&common::read_fixture("default_model/tokenizer_cases.json"))
            .unwrap();
    let cases = v["cases"].as_array().unwrap();
    let mut ok = 0;
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let got = encode(&mut t, text.as_bytes(), false);
        assert_eq!(got, want, "{text:?}");
        assert_eq!(decode(&t, &got, false), text.as_bytes());
        ok += 1;
    }
    println!(
        "default model tokenizer cases: {ok}/{} matched",
        cases.len()
    );
}
