//! SmolLM2's tokenizer (byte-level BPE, `tokenizer.ggml.pre = "smollm"`) against Hugging Face
//! `tokenizers` built from the same GGUF's vocabulary with SmolLM2's published pipeline
//! (fixture made by tests/scripts/gen_smollm2_tokenizer_fixture.py): token-exact encoding of
//! tinyshakespeare lines and hard cases (digits, unicode, chat markup with and without
//! `parse_special`), and decode round trips.
//!
//! Needs .models/SmolLM2-135M-Instruct.Q4_1.gguf (tests/scripts/fetch_smollm2.sh): skipped
//! visibly when absent, a failure under CI=true.

mod common;

use embergpt::tokenizer::{token_type, PreTokenizer, Tokenizer};
use embergpt::Gguf;
use std::path::PathBuf;

fn model_bytes() -> Option<Vec<u8>> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        return Some(std::fs::read(&p).expect("read SmolLM2 GGUF"));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} missing under CI=true (run tests/scripts/fetch_smollm2.sh)",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: {} missing (run tests/scripts/fetch_smollm2.sh)",
        p.display()
    );
    None
}

fn encode(t: &mut Tokenizer<'_, '_>, text: &[u8], special: bool) -> Vec<u32> {
    let n = t.count(text, special);
    let mut out = vec![0u32; n];
    assert_eq!(t.encode(text, special, &mut out), Ok(n));
    out
}

#[test]
fn smollm2_matches_hf_tokenizers() {
    let Some(bytes) = model_bytes() else { return };
    let g = Gguf::parse(&bytes).expect("parse SmolLM2 GGUF");
    let mut arena = common::arena(Tokenizer::arena_size(&g).expect("arena_size"));
    let mut t = Tokenizer::new(&g, &mut arena).expect("SmolLM2 tokenizer");
    assert_eq!(t.n_vocab(), 49152);
    assert_eq!(t.pre_tokenizer(), PreTokenizer::SmolLm);
    for (id, text) in [
        (0u32, "<|endoftext|>"),
        (1, "<|im_start|>"),
        (2, "<|im_end|>"),
    ] {
        assert_eq!(t.token_text(id), Some(text.as_bytes()));
        assert_eq!(t.token_type(id), Some(token_type::CONTROL));
        assert!(t.is_special(id));
    }
    assert_eq!(t.eos(), Some(2));

    let fixture: serde_json::Value =
        serde_json::from_slice(&common::read_fixture("smollm2/tokenizer.json")).expect("json");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() > 150);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let text = c["text"].as_str().expect("text");
        let special = c["parse_special"].as_bool().expect("parse_special");
        let want: Vec<u32> = c["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect();
        let got = encode(&mut t, text.as_bytes(), special);
        if got != want {
            failures.push(format!("{name}: got {got:?}\n  want {want:?}"));
            continue;
        }
        let mut buf = vec![0u8; t.decode_len(&got, false).expect("decode_len")];
        let n = t.decode(&got, false, &mut buf).expect("decode");
        assert_eq!(&buf[..n], text.as_bytes(), "{name}: round trip");
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
