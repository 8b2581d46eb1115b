//! SentencePiece ("llama") tokenizer against llama.cpp.
//!
//! The vocabulary is stories260K's (tok512: 512 pieces with scores, `<0xXX>` byte tokens,
//! `<unk>`, `<s>`, `</s>`), converted here by the CLI's converter from ../shared/data (the
//! file llama.cpp read). Expected ids and decodings: tests/fixtures/tokenizer/llama_cases.json,
//! made by tests/scripts/gen_llama_tokenizer_fixture.py with llama.cpp's own tokenizer
//! (libllama via ctypes); transformers' GGUF loader is a recorded cross-check.
//! Synthetic vocabularies (made here) pin the merge order, the byte fallback and the
//! checks on hostile metadata.

use embergpt::gguf::{Gguf, Value};
use embergpt::tokenizer::{token_type, Detokenize, StreamDecoder, Tokenizer, SPM_WINDOW};
use embergpt::{Error, GgmlType};
use embergpt_cli::convert::convert;
use embergpt_cli::gguf_write::GgufWriter;
use std::path::PathBuf;
use std::sync::OnceLock;

// ------------------------------------------------------------------ helpers

/// stories260K converted (None, with a visible SKIPPED line, when ../shared is absent;
/// a failure under CI=true).
fn stories() -> Option<&'static [u8]> {
    static FILE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let (bin, tok) = (shared.join("stories260K.bin"), shared.join("tok512.bin"));
        if !bin.exists() || !tok.exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{} missing under CI=true", shared.display());
            }
            eprintln!(
                "SKIPPED: {} missing (the shared data folder sits beside the repository)",
                shared.display()
            );
            return None;
        }
        Some(
            convert(&bin, GgmlType::F32, Some(&tok), false)
                .expect("convert")
                .to_bytes(),
        )
    })
    .as_deref()
}

fn with_tok<T>(file: &[u8], f: impl FnOnce(&mut Tokenizer<'_, '_>) -> T) -> T {
    let g = Gguf::parse(file).expect("gguf");
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).expect("arena_size")];
    let mut t = Tokenizer::new(&g, &mut arena).expect("tokenizer");
    f(&mut t)
}

fn encode(t: &mut Tokenizer<'_, '_>, text: &[u8], special: bool) -> Vec<u32> {
    let n = t.count(text, special);
    let mut ids = vec![0u32; n];
    assert_eq!(t.encode(text, special, &mut ids), Ok(n));
    ids
}

fn decode(t: &Tokenizer<'_, '_>, ids: &[u32], skip: bool) -> Vec<u8> {
    let n = t.decode_len(ids, skip).expect("decode_len");
    let mut out = vec![0u8; n];
    assert_eq!(t.decode(ids, skip, &mut out), Ok(n));
    out
}

fn stream(t: &Tokenizer<'_, '_>, ids: &[u32], mut d: StreamDecoder) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 3 + t.max_token_len()];
    for &id in ids {
        let k = d.push(t, id, &mut buf).expect("push");
        let s = &buf[..k];
        // Whole characters only, for valid UTF-8 streams (checked by the caller's text).
        out.extend_from_slice(s);
    }
    let k = d.flush(&mut buf).expect("flush");
    out.extend_from_slice(&buf[..k]);
    out
}

struct Case {
    name: String,
    text: Vec<u8>,
    special: bool,
    ids: Vec<u32>,
    decoded: Vec<u8>,
    hf_agrees: Option<bool>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn cases() -> Vec<Case> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/llama_cases.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).expect("llama_cases.json")).expect("json");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let unit = match (c["text"].as_str(), c["hex"].as_str()) {
                (Some(t), _) => t.as_bytes().to_vec(),
                (None, Some(h)) => hex(h),
                _ => panic!("case without text"),
            };
            let text = unit.repeat(c["repeat"].as_u64().unwrap_or(1) as usize);
            let decoded = c["decoded_hex"].as_str().map_or(text.clone(), hex);
            Case {
                name: c["name"].as_str().expect("name").to_string(),
                special: c["parse_special"].as_bool().expect("parse_special"),
                ids: c["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|x| x.as_u64().expect("id") as u32)
                    .collect(),
                text,
                decoded,
                hf_agrees: c["hf_agrees"].as_bool(),
            }
        })
        .collect()
}

/// A GGUF with only tokenizer metadata: `tokens` with `scores` and `types`, plus `extra` keys.
fn vocab(
    tokens: &[&str],
    scores: &[f32],
    types: &[i32],
    extra: impl FnOnce(&mut GgufWriter),
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_str("tokenizer.ggml.model", "llama");
    w.add_str_array("tokenizer.ggml.tokens", tokens);
    w.add_f32_array("tokenizer.ggml.scores", scores);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    extra(&mut w);
    w.to_bytes()
}

/// `file` with its metadata passed through `edit` (which may drop a key or write another value).
fn rewrite(file: &[u8], edit: impl Fn(&str, &Value<'_>, &mut GgufWriter) -> bool) -> Vec<u8> {
    let g = Gguf::parse(file).expect("gguf");
    let mut w = GgufWriter::new();
    for (k, v) in g.metadata() {
        let k = std::str::from_utf8(k).expect("key");
        if !edit(k, &v, &mut w) {
            w.add_value(k, &v);
        }
    }
    w.to_bytes()
}

fn new_err(file: &[u8]) -> Option<Error> {
    let g = Gguf::parse(file).expect("gguf");
    let size = match Tokenizer::arena_size(&g) {
        Ok(n) => n,
        Err(e) => return Some(e),
    };
    let mut arena = vec![0u8; size];
    Tokenizer::new(&g, &mut arena).err()
}

// ------------------------------------------------------------------ against llama.cpp

#[test]
fn encode_decode_stream_match_llama_cpp() {
    let Some(file) = stories() else { return };
    let cases = cases();
    assert!(cases.len() > 450);
    with_tok(file, |t| {
        assert_eq!(t.n_vocab(), 512);
        assert_eq!((t.bos(), t.eos()), (Some(1), Some(2)));
        assert!(t.add_bos());
        let mut n_bytes = 0usize;
        for c in &cases {
            let ids = encode(t, &c.text, c.special);
            assert_eq!(ids, c.ids, "{} (parse_special {})", c.name, c.special);
            assert_eq!(decode(t, &ids, false), c.decoded, "decode: {}", c.name);
            assert_eq!(
                stream(t, &ids, StreamDecoder::at_start()),
                c.decoded,
                "stream: {}",
                c.name
            );
            // A continuing stream gives every token's bytes, the leading space included.
            let mut all = Vec::new();
            for &id in &ids {
                let mut b = vec![0u8; t.max_token_len()];
                let k = t.token_bytes(id, &mut b).unwrap();
                all.extend_from_slice(&b[..k]);
            }
            assert_eq!(stream(t, &ids, StreamDecoder::new()), all, "{}", c.name);
            n_bytes += c.text.len();
        }
        let hf = cases.iter().filter(|c| c.hf_agrees.is_some()).count();
        let hf_ok = cases.iter().filter(|c| c.hf_agrees == Some(true)).count();
        eprintln!(
            "{} cases ({} bytes) token-exact against llama.cpp; transformers agreed with llama.cpp on {hf_ok} of {hf}",
            cases.len(),
            n_bytes
        );
    });
}

#[test]
fn small_windows_give_the_same_ids() {
    let Some(file) = stories() else { return };
    with_tok(file, |t| {
        for w in [16, 64, 1000] {
            t.set_bpe_window(w).unwrap();
            for c in cases() {
                assert_eq!(
                    encode(t, &c.text, c.special),
                    c.ids,
                    "window {w}: {}",
                    c.name
                );
            }
        }
    });
}

#[test]
fn decode_of_encode_is_the_text() {
    let Some(file) = stories() else { return };
    with_tok(file, |t| {
        // Valid UTF-8 without U+2581, not starting with a special token: exact.
        for c in cases().iter().filter(|c| !c.special) {
            let Ok(s) = std::str::from_utf8(&c.text) else {
                continue;
            };
            if s.contains('\u{2581}') {
                continue;
            }
            let ids = encode(t, &c.text, false);
            assert_eq!(decode(t, &ids, false), c.text, "{}", c.name);
        }
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let alphabet: Vec<char> = "ab cdé \n\t語😀xyz".chars().collect();
        for len in 0..300 {
            let s: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let ids = encode(t, s.as_bytes(), false);
            assert_eq!(decode(t, &ids, false), s.as_bytes(), "{s:?}");
            assert_eq!(stream(t, &ids, StreamDecoder::at_start()), s.as_bytes());
        }
    });
}

#[test]
fn bos_and_special_tokens() {
    let Some(file) = stories() else { return };
    with_tok(file, |t| {
        for id in 0..3 {
            assert!(t.is_special(id), "{id}");
        }
        assert!(!t.is_special(3) && !t.is_special(300) && !t.is_special(512));
        assert_eq!(t.token_type(0), Some(token_type::UNKNOWN));
        assert_eq!(t.token_type(3), Some(token_type::BYTE));
        assert_eq!(t.token_text(1), Some(&b"<s>"[..]));
        let hello = encode(t, b"Hello", false);
        // A leading BOS keeps the first piece's space (llama.cpp's llama_detokenize).
        let mut with_bos = vec![1];
        with_bos.extend(&hello);
        assert_eq!(decode(t, &with_bos, false), b"<s> Hello");
        assert_eq!(decode(t, &with_bos, true), b" Hello");
        assert_eq!(decode(t, &hello, true), b"Hello");
        assert_eq!(decode(t, &[0, 2], true), b"");
        assert_eq!(decode(t, &[0, 2], false), b"<unk></s>");
        assert_eq!(
            stream(t, &with_bos, StreamDecoder::at_start()),
            b"<s> Hello"
        );
        // Byte tokens: a character split over byte tokens streams whole.
        let ids = encode(t, "語".as_bytes(), false);
        assert_eq!(ids.len(), 4, "▁ then three byte tokens");
        let mut d = StreamDecoder::new();
        let mut buf = [0u8; 64];
        assert_eq!(d.push(t, ids[0], &mut buf), Ok(1));
        assert_eq!(d.push(t, ids[1], &mut buf), Ok(0));
        assert_eq!(d.push(t, ids[2], &mut buf), Ok(0));
        assert_eq!(d.push(t, ids[3], &mut buf), Ok(3));
        assert_eq!(&buf[..3], "語".as_bytes());
        // token_id: normal pieces by their decoded bytes.
        let the = t.token_id(b" the").expect("piece ' the'");
        assert_eq!(t.token_text(the), Some("\u{2581}the".as_bytes()));
        assert_eq!(t.token_id(b"<s>"), None);
        assert_eq!(t.token_len(the), Ok(4));
        assert_eq!(t.token_len(512), Err(Error::TokenOutOfRange));
        let mut small = [0u8; 3];
        assert_eq!(t.token_bytes(the, &mut small), Err(Error::BufferTooSmall));
        assert_eq!(t.decode(&[the], false, &mut small), Ok(3)); // "the": the first space dropped
        assert_eq!(
            t.decode(&[512], false, &mut small),
            Err(Error::TokenOutOfRange)
        );
        assert_eq!(
            t.encode(b"Hello world", false, &mut [0u32; 2]),
            Err(Error::BufferTooSmall)
        );
    });
}

#[test]
fn arena_size_is_exact() {
    let Some(file) = stories() else { return };
    let g = Gguf::parse(file).unwrap();
    let n = Tokenizer::arena_size(&g).unwrap();
    let mut arena = vec![0u8; n + 64];
    // Any alignment of the arena start: the plan is exact for an aligned start.
    assert!(Tokenizer::new(&g, &mut arena[..n]).is_ok());
    assert!(matches!(
        Tokenizer::new(&g, &mut arena[..n - 1]),
        Err(Error::ArenaTooSmall { needed, available }) if needed == n && available == n - 1
    ));
    eprintln!("stories260K tokenizer arena: {n} bytes (SPM_WINDOW {SPM_WINDOW})");
}

#[test]
fn hostile_long_input_is_bounded() {
    let Some(file) = stories() else { return };
    with_tok(file, |t| {
        let mut x = 88172645463325252u64;
        let bytes: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let ids = encode(t, &bytes, true);
        assert!(ids.iter().all(|&id| id < 512));
        assert!(ids.len() <= bytes.len() * 3 + 3);
    });
}

// ------------------------------------------------------------------ synthetic vocabularies

const N: i32 = token_type::NORMAL;
const C: i32 = token_type::CONTROL;

/// A byte-complete vocabulary: <unk> <s> </s>, the 256 byte tokens, then `pieces`.
fn byte_vocab(pieces: &[(&str, f32)]) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut t: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut s = vec![0.0; 3];
    let mut ty = vec![token_type::UNKNOWN, C, C];
    for b in 0..256 {
        t.push(format!("<0x{b:02X}>"));
        s.push(0.0);
        ty.push(token_type::BYTE);
    }
    for (p, sc) in pieces {
        t.push(p.to_string());
        s.push(*sc);
        ty.push(N);
    }
    (t, s, ty)
}

fn synth(pieces: &[(&str, f32)], extra: impl FnOnce(&mut GgufWriter)) -> Vec<u8> {
    let (t, s, ty) = byte_vocab(pieces);
    let t: Vec<&str> = t.iter().map(|x| x.as_str()).collect();
    vocab(&t, &s, &ty, extra)
}

#[test]
fn merge_order_is_highest_score_then_leftmost() {
    // 259 ▁, 260 a, 261 b, 262 c, 263 ab, 264 bc, 265 abc
    let f = synth(
        &[
            ("▁", -9.0),
            ("a", -5.0),
            ("b", -5.0),
            ("c", -5.0),
            ("ab", -2.0),
            ("bc", -1.0),
            ("aa", -3.0),
        ],
        |w| w.add_bool("tokenizer.ggml.add_space_prefix", false),
    );
    with_tok(&f, |t| {
        // bc (-1) beats ab (-2).
        assert_eq!(encode(t, b"abc", false), [260, 264]);
        // aa ties: leftmost first.
        assert_eq!(encode(t, b"aaa", false), [265, 260]);
        assert_eq!(encode(t, b"aaaa", false), [265, 265]);
        // No piece: byte fallback (d = 0x64 -> id 3 + 0x64).
        assert_eq!(encode(t, b"d", false), [3 + 0x64]);
        assert_eq!(encode(t, b" ", false), [259]);
        assert_eq!(
            decode(t, &[259, 260], false),
            b" a",
            "no prefix: nothing stripped"
        );
        assert!(!t.add_bos() || t.bos().is_none());
    });
    // With the (default) space prefix.
    let f = synth(&[("▁", -9.0), ("a", -5.0), ("▁a", -1.0)], |w| {
        w.add_u32("tokenizer.ggml.bos_token_id", 1);
    });
    with_tok(&f, |t| {
        assert_eq!(encode(t, b"a a", false), [261, 261]);
        assert_eq!(decode(t, &[261, 261], false), b"a a");
        assert!(t.add_bos());
    });
}

#[test]
fn max_ids_bounds_the_worst_case() {
    // No ▁ piece: every space is three byte tokens, and every fragment gets a prefix space.
    let f = synth(&[("a", -1.0)], |_| {});
    with_tok(&f, |t| {
        for text in [&b" "[..], b"  ", b"<s> <s> ", b" <s>", b"a", b""] {
            let n = encode(t, text, true).len();
            assert!(n <= t.max_ids(text.len()), "{text:?}: {n}");
        }
        assert_eq!(encode(t, b" ", false).len(), 6);
        assert_eq!(encode(t, b"<s> <s> ", true).len(), 2 + 3 * 4);
    });
}

#[test]
fn missing_byte_tokens_fall_back_to_unk_and_user_defined_always_match() {
    let tokens = ["<unk>", "<s>", "</s>", "▁", "a", "<|u|>", "<0x62>"];
    let scores = [0.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0];
    let types = [
        token_type::UNKNOWN,
        C,
        C,
        N,
        N,
        token_type::USER_DEFINED,
        token_type::BYTE,
    ];
    let f = vocab(&tokens, &scores, &types, |w| {
        w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    });
    with_tok(&f, |t| {
        // 'b' has a byte token, 'c' falls back to <unk>.
        assert_eq!(encode(t, b"abc", false), [3, 4, 6, 0]);
        // User-defined text is matched without parse_special; control text only with it.
        assert_eq!(encode(t, b"a<|u|>a", false), [3, 4, 5, 3, 4]);
        assert_eq!(encode(t, b"<s>", true), [1]);
        assert!(t.is_special(5) && t.is_special(0));
    });
}

#[test]
fn hostile_metadata_is_bad_tokenizer() {
    let good = synth(&[("a", -1.0)], |_| {});
    assert_eq!(new_err(&good), None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "no scores",
            rewrite(&good, |k, _, _| k == "tokenizer.ggml.scores"),
        ),
        (
            "scores too short",
            rewrite(&good, |k, _, w| {
                (k == "tokenizer.ggml.scores")
                    .then(|| w.add_f32_array(k, &[0.0; 10]))
                    .is_some()
            }),
        ),
        (
            "scores of ints",
            rewrite(&good, |k, _, w| {
                (k == "tokenizer.ggml.scores")
                    .then(|| w.add_i32_array(k, &[0; 260]))
                    .is_some()
            }),
        ),
        ("NaN score", synth(&[("a", f32::NAN)], |_| {})),
        (
            "duplicate piece",
            synth(&[("a", -1.0), ("a", -2.0)], |_| {}),
        ),
        ("duplicate byte piece", synth(&[("<0x41>", -1.0)], |_| {})),
        (
            "types too short",
            rewrite(&good, |k, _, w| {
                (k == "tokenizer.ggml.token_type")
                    .then(|| w.add_i32_array(k, &[1; 3]))
                    .is_some()
            }),
        ),
        (
            "bos out of range",
            synth(&[("a", -1.0)], |w| {
                w.add_u32("tokenizer.ggml.bos_token_id", 260)
            }),
        ),
        (
            "add_bos not a bool",
            synth(&[("a", -1.0)], |w| {
                w.add_u32("tokenizer.ggml.add_bos_token", 1)
            }),
        ),
        (
            "tokens not strings",
            rewrite(&good, |k, _, w| {
                (k == "tokenizer.ggml.tokens")
                    .then(|| w.add_i32_array(k, &[0; 260]))
                    .is_some()
            }),
        ),
    ];
    for (name, f) in &cases {
        assert_eq!(new_err(f), Some(Error::BadTokenizer), "{name}");
    }
    // A byte token whose text is not <0xXX>.
    let tokens = ["<unk>", "<0xZZ>"];
    let f = vocab(
        &tokens,
        &[0.0, 0.0],
        &[token_type::UNKNOWN, token_type::BYTE],
        |_| {},
    );
    assert_eq!(new_err(&f), Some(Error::BadTokenizer));
    let f = vocab(
        &["<unk>", "<0x4>"],
        &[0.0, 0.0],
        &[token_type::UNKNOWN, token_type::BYTE],
        |_| {},
    );
    assert_eq!(new_err(&f), Some(Error::BadTokenizer));
    // An unknown model is still NoTokenizer.
    let f = rewrite(&good, |k, _, w| {
        (k == "tokenizer.ggml.model")
            .then(|| w.add_str(k, "bert"))
            .is_some()
    });
    assert_eq!(new_err(&f), Some(Error::NoTokenizer));
}

#[test]
fn gpt2_vocabularies_do_not_add_bos() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/gpt2-vocab.gguf");
    let f = std::fs::read(p).unwrap();
    with_tok(&f, |t| assert!(!t.add_bos()));
}

#[test]
fn random_bytes_keep_the_api_invariants() {
    let Some(file) = stories() else { return };
    with_tok(file, |t| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&[u8]; 10] = [
            b" ",
            b"a",
            b"<s>",
            b"</s>",
            b"<unk>",
            b"\xe2\x96\x81",
            b"\xff",
            b"\xc3",
            "語".as_bytes(),
            b"\n",
        ];
        for round in 0..3000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .flat_map(|_| {
                    let r = next();
                    if r % 3 == 0 {
                        pieces[(r / 3 % pieces.len() as u64) as usize].to_vec()
                    } else {
                        vec![(r >> 8) as u8]
                    }
                })
                .collect();
            for special in [false, true] {
                let ids = encode(t, &text, special);
                assert!(ids.iter().all(|&id| id < 512));
                assert!(ids.len() <= t.max_ids(text.len()));
                if !special {
                    assert!(ids.iter().all(|&id| !t.is_special(id)), "{text:?}");
                }
                if let Some(n) = ids.len().checked_sub(1) {
                    let mut short = vec![u32::MAX; n];
                    assert_eq!(
                        t.encode(&text, special, &mut short),
                        Err(Error::BufferTooSmall)
                    );
                    assert_eq!(short, ids[..n], "round {round}: a prefix is written");
                }
                let plain = decode(t, &ids, false);
                assert_eq!(stream(t, &ids, StreamDecoder::at_start()), plain);
                let kept: Vec<u32> = ids.iter().copied().filter(|&i| !t.is_special(i)).collect();
                // skip_special drops the specials; the leading-space rule looks at ids[0] only.
                if ids.first().is_none_or(|&i| !t.is_special(i)) {
                    assert_eq!(decode(t, &ids, true), decode(t, &kept, false));
                }
            }
        }
    });
}
